/* proc.c — a child process in its own process group, its output split into lines; see proc.h.
 *
 * The child is started with posix_spawn(), not uv_spawn(): libuv 1.44 forks, which copies the agent's page tables
 * and costs about 0.5 ms more than glibc's posix_spawn (clone with CLONE_VM | CLONE_VFORK: the parent waits only
 * until the exec), and the engine's exec is on the way of every task (bench/README.md, row 3). What uv_spawn did
 * is done here: stdin from /dev/null, pipes (or a file) for stdout and stderr, a new session (POSIX_SPAWN_SETSID),
 * every signal back to its default and none blocked (the agent ignores SIGPIPE; terraform must not inherit that;
 * glibc leaves only its two internal real-time signals, 32 and 33, ignored, which nothing sends to terraform),
 * the program searched in the PATH of the child's environment, and a start failure (missing program, bad cwd)
 * returned by proc_spawn() itself, which glibc's posix_spawn reports from the child before it returns. The exit is
 * seen through a SIGCHLD watcher of the proc's own (libuv's signal handles multiplex one signal to every watcher)
 * that reaps only its own pid; it is started before the spawn, so an exit that comes at once is not missed.
 *
 * The proc owns up to five libuv handles: the SIGCHLD watcher, a pipe per captured stream and two timers (the
 * SIGKILL that follows an interrupt, and the linger after exit). All are closed together by proc_release(); the
 * memory goes in the close callback of the last one, so the proc stays valid while a callback that freed it
 * unwinds.
 *
 * Line splitting keeps at most PROC_LINE_MAX bytes per stream: a line that fits a read is delivered straight from
 * the read buffer; only a line that straddles reads is copied. A piece of a long line is delivered only once the
 * line goes on past it, so a line of exactly PROC_LINE_MAX bytes is one line, not a line and an empty piece. */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define PROC_READ_SIZE (64 * 1024)

typedef struct {
    uv_pipe_t   pipe;
    proc       *owner;
    proc_stream id;
    bool        used;      /* this stream is captured */
    bool        eof;       /* end of file, read error, or cut off after the linger */
    bool        continued; /* pieces of the current line were delivered already */
    size_t      len;       /* bytes of the current line held in `line` */
    char        line[PROC_LINE_MAX];
    char        rbuf[PROC_READ_SIZE];
} proc_pipe;

struct proc {
    uv_signal_t    chld;         /* SIGCHLD: is our child gone? */
    uv_timer_t     kill_timer;
    uv_timer_t     linger_timer;
    proc_pipe      io[2]; /* stdout, stderr */
    proc_callbacks cb;
    void          *arg;
    unsigned       linger_ms;
    int            pid;
    int            handles;      /* initialised and not yet closed; the memory goes with the last */
    bool           exited;       /* the child was reaped */
    bool           finished;     /* on_exit delivered (or would have been, after proc_free) */
    bool           freed;        /* proc_free() or a failed spawn: no more callbacks */
    bool           interrupting; /* proc_interrupt() pending its SIGKILL */
    int64_t        exit_status;
    int            term_signal;
};

static void proc_on_close(uv_handle_t *h)
{
    proc *p = h->data;
    if (--p->handles == 0)
        free(p);
}

static void proc_close(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, proc_on_close);
}

/* Closes every handle; the SIGCHLD watcher only once the child is reaped, or it would stay a zombie. */
static void proc_release(proc *p)
{
    p->freed = true;
    for (int i = 0; i < 2; i++)
        if (p->io[i].used)
            proc_close((uv_handle_t *)&p->io[i].pipe);
    proc_close((uv_handle_t *)&p->kill_timer);
    proc_close((uv_handle_t *)&p->linger_timer);
    if (p->exited || p->pid == 0)
        proc_close((uv_handle_t *)&p->chld);
}

static int proc_kill_group(proc *p, int sig)
{
    if (p->pid <= 0)
        return -ESRCH;
    return kill(-p->pid, sig) == 0 ? 0 : -errno;
}

/* on_exit once the process is gone and no more output can come. */
static void proc_maybe_finish(proc *p)
{
    if (p->finished || !p->exited)
        return;
    for (int i = 0; i < 2; i++)
        if (p->io[i].used && !p->io[i].eof)
            return;
    p->finished = true;
    uv_timer_stop(&p->kill_timer);
    uv_timer_stop(&p->linger_timer);
    if (!p->freed && p->cb.on_exit)
        p->cb.on_exit(p->exit_status, p->term_signal, p->arg); /* may free p: nothing after this */
}

/* ---- line splitting ------------------------------------------------------------------------------------------- */

/* Delivers one line or piece. false when the callback freed the proc: the caller stops at once. */
static bool pipe_emit(proc_pipe *pp, const char *s, size_t n)
{
    proc *p = pp->owner;
    if (p->cb.on_line)
        p->cb.on_line(pp->id, s, n, p->arg);
    return !p->freed;
}

/* A whole line that is in the read buffer (n bytes, its '\n' excluded): delivered without copying. */
static bool pipe_line_direct(proc_pipe *pp, const char *s, size_t n)
{
    if (n > 0 && s[n - 1] == '\r')
        n--;
    while (n > PROC_LINE_MAX) {
        if (!pipe_emit(pp, s, PROC_LINE_MAX))
            return false;
        s += PROC_LINE_MAX;
        n -= PROC_LINE_MAX;
    }
    return pipe_emit(pp, s, n);
}

/* Adds n bytes (no '\n' among them) to the current line. A full buffer with more bytes of the line coming is a
 * piece, delivered at once; the more bytes may turn out to be just the '\r' of a CRLF, which pipe_line_end()
 * accounts for. */
static bool pipe_append(proc_pipe *pp, const char *s, size_t n)
{
    while (n > 0) {
        if (pp->len == PROC_LINE_MAX) {
            pp->continued = true;
            pp->len = 0;
            if (!pipe_emit(pp, pp->line, PROC_LINE_MAX))
                return false;
        }
        if (pp->len == 0 && n > PROC_LINE_MAX) { /* a piece straight from the read buffer */
            pp->continued = true;
            if (!pipe_emit(pp, s, PROC_LINE_MAX))
                return false;
            s += PROC_LINE_MAX;
            n -= PROC_LINE_MAX;
            continue;
        }
        size_t k = PROC_LINE_MAX - pp->len < n ? PROC_LINE_MAX - pp->len : n;
        memcpy(pp->line + pp->len, s, k);
        pp->len += k;
        s += k;
        n -= k;
    }
    return true;
}

/* The current line ended (newline or end of file). Nothing is left after the pieces when the byte that made the
 * last piece was only the '\r' of a CRLF: the line was exactly a multiple of PROC_LINE_MAX long. */
static bool pipe_line_end(proc_pipe *pp)
{
    size_t n = pp->len;
    if (n > 0 && pp->line[n - 1] == '\r')
        n--;
    bool nothing_left = n == 0 && pp->continued;
    pp->len = 0;
    pp->continued = false;
    return nothing_left || pipe_emit(pp, pp->line, n);
}

static void pipe_feed(proc_pipe *pp, const char *s, size_t n)
{
    while (n > 0) {
        const char *nl = memchr(s, '\n', n);
        size_t seg = nl ? (size_t)(nl - s) : n;
        bool alive;
        if (nl && pp->len == 0)
            alive = pipe_line_direct(pp, s, seg);
        else
            alive = pipe_append(pp, s, seg) && (!nl || pipe_line_end(pp));
        if (!alive || !nl)
            return;
        s += seg + 1;
        n -= seg + 1;
    }
}

/* End of this stream: a last line without newline is still a line. false when the proc was freed meanwhile. */
static bool pipe_finish(proc_pipe *pp)
{
    if (pp->eof)
        return true;
    pp->eof = true;
    uv_read_stop((uv_stream_t *)&pp->pipe);
    if (pp->len > 0 || pp->continued)
        return pipe_line_end(pp);
    return true;
}

static void pipe_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    proc_pipe *pp = (proc_pipe *)h; /* the pipe is the first member */
    buf->base = pp->rbuf;
    buf->len = sizeof pp->rbuf;
}

static void pipe_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    proc_pipe *pp = (proc_pipe *)s;
    proc *p = pp->owner;
    if (p->freed)
        return;
    if (nread > 0) {
        pipe_feed(pp, buf->base, (size_t)nread);
        return;
    }
    if (nread == 0) /* EAGAIN */
        return;
    /* UV_EOF, or a read error: either way no more output will come through this pipe. */
    if (pipe_finish(pp))
        proc_maybe_finish(p);
}

/* ---- process and timers --------------------------------------------------------------------------------------- */

/* The grace of proc_interrupt() is over. */
static void proc_on_kill_timer(uv_timer_t *t)
{
    proc *p = t->data;
    if (!p->finished)
        proc_kill_group(p, SIGKILL);
}

/* The process exited but something it started still holds a pipe: kill the rest of its group, stop reading. */
static void proc_on_linger_timer(uv_timer_t *t)
{
    proc *p = t->data;
    proc_kill_group(p, SIGKILL);
    for (int i = 0; i < 2; i++)
        if (p->io[i].used && !pipe_finish(&p->io[i]))
            return;
    proc_maybe_finish(p);
}

/* A SIGCHLD: ours, or another child's (every watcher hears every one). */
static void proc_on_sigchld(uv_signal_t *h, int signum)
{
    (void)signum;
    proc *p = h->data;
    int status;
    pid_t r;
    if (p->exited || p->pid <= 0)
        return;
    do
        r = waitpid(p->pid, &status, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == 0 || (r < 0 && errno != ECHILD))
        return; /* still running */
    p->exited = true;
    /* ECHILD: someone else reaped it and its status is lost; that must not read as success. */
    p->exit_status = r < 0 ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : 0;
    p->term_signal = r > 0 && WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    uv_signal_stop(&p->chld);
    if (p->freed) {
        proc_close((uv_handle_t *)&p->chld);
        return;
    }
    proc_maybe_finish(p);
    if (!p->finished && !p->freed)
        uv_timer_start(&p->linger_timer, proc_on_linger_timer, p->linger_ms, 0);
}

/* ---- public --------------------------------------------------------------------------------------------------- */

static int proc_open_stdout(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -errno;
    /* An existing file keeps its mode through O_TRUNC. Only a regular file: never chmod a device. */
    struct stat st;
    if (fstat(fd, &st) < 0 || (S_ISREG(st.st_mode) && (st.st_mode & 07777) != 0600 && fchmod(fd, 0600) < 0)) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

/* argv[0] as execvp() in the child would find it in the PATH of envp: a name with a slash is used as it is (the
 * exec resolves a relative one in the child's cwd); else the first directory holding an executable file of that
 * name, a relative directory (an empty entry is ".") taken in the child's cwd as it was under uv_spawn, which
 * changed directory before its execvp. 0 and the path in out, or -ENOENT / -EACCES (one was found but may not be
 * run) like execvp. */
static int proc_find_program(const char *name, char *const envp[], const char *cwd, char *out, size_t outlen)
{
    if (strchr(name, '/'))
        return strlen(name) < outlen ? (memcpy(out, name, strlen(name) + 1), 0) : -ENAMETOOLONG;
    if (!*name)
        return -ENOENT;
    const char *path = NULL;
    for (char *const *e = envp; *e && !path; e++)
        if (strncmp(*e, "PATH=", 5) == 0)
            path = *e + 5;
    if (!path)
        path = "/bin:/usr/bin"; /* execvp's default */
    int rc = -ENOENT;
    for (const char *d = path;; d++) {
        const char *end = strchrnul(d, ':');
        size_t dl = (size_t)(end - d);
        bool relative = dl == 0 || d[0] != '/';
        int n = snprintf(out, outlen, "%s%s%.*s%s%s", relative && cwd ? cwd : "", relative && cwd ? "/" : "",
                         (int)dl, d, dl ? "/" : "", name);
        struct stat st;
        if (n > 0 && (size_t)n < outlen && stat(out, &st) == 0 && S_ISREG(st.st_mode)) {
            if (access(out, X_OK) == 0)
                return 0;
            rc = -EACCES;
        }
        if (!*end)
            return rc;
        d = end;
    }
}

/* What posix_spawn needs beside argv and envp: stdin from /dev/null, fd 1 and 2 from child_fd, the cwd; a new
 * session, every signal at its default and none blocked. Positive errno values, like posix_spawn's. */
static int proc_spawn_setup(posix_spawn_file_actions_t *fa, posix_spawnattr_t *at, const int child_fd[2],
                            const char *cwd)
{
    int rc;
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    if ((rc = posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0)) != 0 ||
        (rc = posix_spawn_file_actions_adddup2(fa, child_fd[0], 1)) != 0 ||
        (rc = posix_spawn_file_actions_adddup2(fa, child_fd[1], 2)) != 0 ||
        (cwd && (rc = posix_spawn_file_actions_addchdir_np(fa, cwd)) != 0))
        return rc;
    if ((rc = posix_spawnattr_setflags(at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)) != 0 ||
        (rc = posix_spawnattr_setsigdefault(at, &all)) != 0 || (rc = posix_spawnattr_setsigmask(at, &none)) != 0)
        return rc;
    return 0;
}

/* Starts the child with its stdout and stderr on child_fd (the write ends, or the stdout file). 0 and p->pid, or a
 * negative errno. */
static int proc_start(proc *p, char *const argv[], char *const envp[], const char *cwd, const int child_fd[2])
{
    char file[PATH_MAX];
    int rc = proc_find_program(argv[0], envp, cwd, file, sizeof file);
    if (rc < 0)
        return rc;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    if ((rc = posix_spawn_file_actions_init(&fa)) != 0)
        return -rc;
    if ((rc = posix_spawnattr_init(&at)) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return -rc;
    }
    pid_t pid = 0;
    rc = proc_spawn_setup(&fa, &at, child_fd, cwd);
    if (rc == 0)
        rc = posix_spawn(&pid, file, &fa, &at, argv, envp);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -rc;
    p->pid = pid;
    return 0;
}

int proc_spawn(uv_loop_t *loop, char *const argv[], char *const envp[], const char *cwd, const proc_options *opts,
               const proc_callbacks *cb, void *arg, proc **out)
{
    *out = NULL;
    if (!argv || !argv[0] || !cb)
        return -EINVAL;
    int out_fd = -1;
    if (opts && opts->stdout_path && (out_fd = proc_open_stdout(opts->stdout_path)) < 0)
        return out_fd;
    proc *p = calloc(1, sizeof *p);
    if (!p) {
        if (out_fd >= 0)
            close(out_fd);
        return -ENOMEM;
    }
    p->cb = *cb;
    p->arg = arg;
    p->linger_ms = opts && opts->linger_ms ? opts->linger_ms : PROC_LINGER_DEFAULT_MS;
    uv_timer_init(loop, &p->kill_timer);
    uv_timer_init(loop, &p->linger_timer);
    uv_signal_init(loop, &p->chld);
    p->kill_timer.data = p->linger_timer.data = p->chld.data = p;
    p->handles += 3;

    /* Each captured stream is a Unix socket pair, as uv_spawn's UV_CREATE_PIPE made it: the engine sees the same
     * kind of stdout as it always has, and a socket buffers more than a pipe's 64 KiB. Our end is non-blocking and
     * close-on-exec; the other goes to the child as fd 1 or 2 (dup2 clears close-on-exec on the copy) and is closed
     * here once it has it. */
    int child_fd[2] = { out_fd, -1 }, rc = 0;
    for (int i = 0; i < 2 && rc == 0; i++) {
        proc_pipe *pp = &p->io[i];
        pp->owner = p;
        pp->id = i == 0 ? PROC_STDOUT : PROC_STDERR;
        if (i == 0 && out_fd >= 0)
            continue;
        int fds[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0) {
            rc = -errno;
            break;
        }
        child_fd[i] = fds[1];
        uv_pipe_init(loop, &pp->pipe, 0); /* cannot fail for ipc = 0 */
        pp->pipe.data = p;
        pp->used = true;
        p->handles++;
        if ((rc = uv_pipe_open(&pp->pipe, fds[0])) < 0) /* also makes it non-blocking */
            close(fds[0]);
    }
    if (rc == 0)
        rc = uv_signal_start(&p->chld, proc_on_sigchld, SIGCHLD);
    if (rc == 0)
        rc = proc_start(p, argv, envp ? envp : environ, cwd, child_fd);
    for (int i = 0; i < 2; i++)
        if (child_fd[i] >= 0)
            close(child_fd[i]); /* the child has its copies */
    if (rc < 0) {
        proc_release(p);
        return rc;
    }
    for (int i = 0; i < 2; i++) {
        if (!p->io[i].used)
            continue;
        rc = uv_read_start((uv_stream_t *)&p->io[i].pipe, pipe_on_alloc, pipe_on_read);
        if (rc < 0) {
            proc_kill_group(p, SIGKILL);
            proc_release(p);
            return rc;
        }
    }
    *out = p;
    return 0;
}

int proc_pid(const proc *p) { return p->pid; }

int proc_signal_group(proc *p, int sig)
{
    if (p->finished || p->freed)
        return -ESRCH;
    return proc_kill_group(p, sig);
}

int proc_interrupt(proc *p, unsigned grace_ms)
{
    if (p->finished || p->freed)
        return -ESRCH;
    if (p->interrupting) {
        uv_timer_stop(&p->kill_timer);
        return proc_kill_group(p, SIGKILL);
    }
    p->interrupting = true;
    int rc = proc_kill_group(p, SIGINT);
    /* The SIGKILL is armed even when SIGINT found no one: leftovers may still appear until on_exit. */
    uv_timer_start(&p->kill_timer, proc_on_kill_timer, grace_ms, 0);
    return rc == -ESRCH ? 0 : rc;
}

void proc_free(proc *p)
{
    if (!p || p->freed)
        return;
    if (!p->finished) /* running, or exited with something of its group still holding a pipe */
        proc_kill_group(p, SIGKILL);
    proc_release(p);
}
