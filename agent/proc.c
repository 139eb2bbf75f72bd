/* proc.c — a child process in its own process group, its output split into lines; see proc.h.
 *
 * The proc owns up to five libuv handles: the process, a pipe per captured stream and two timers (the SIGKILL that
 * follows an interrupt, and the linger after exit). All are closed together by proc_release(); the memory goes in
 * the close callback of the last one, so the proc stays valid while a callback that freed it unwinds.
 *
 * Line splitting keeps at most PROC_LINE_MAX bytes per stream: a line that fits a read is delivered straight from
 * the read buffer; only a line that straddles reads is copied. A piece of a long line is delivered only once the
 * line goes on past it, so a line of exactly PROC_LINE_MAX bytes is one line, not a line and an empty piece. */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
    uv_process_t   process;
    uv_timer_t     kill_timer;
    uv_timer_t     linger_timer;
    proc_pipe      io[2]; /* stdout, stderr */
    proc_callbacks cb;
    void          *arg;
    unsigned       linger_ms;
    int            pid;
    int            handles;      /* initialised and not yet closed; the memory goes with the last */
    bool           exited;       /* exit_cb ran */
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

/* Closes every handle; the process handle only once the child is reaped, or it would stay a zombie. */
static void proc_release(proc *p)
{
    p->freed = true;
    for (int i = 0; i < 2; i++)
        if (p->io[i].used)
            proc_close((uv_handle_t *)&p->io[i].pipe);
    proc_close((uv_handle_t *)&p->kill_timer);
    proc_close((uv_handle_t *)&p->linger_timer);
    if (p->exited || p->pid == 0)
        proc_close((uv_handle_t *)&p->process);
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

static void proc_on_exit(uv_process_t *h, int64_t exit_status, int term_signal)
{
    proc *p = h->data;
    p->exited = true;
    p->exit_status = exit_status;
    p->term_signal = term_signal;
    if (p->freed) {
        proc_close((uv_handle_t *)&p->process);
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

    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_IGNORE; /* libuv opens /dev/null for an ignored fd 0..2 */
    for (int i = 0; i < 2; i++) {
        proc_pipe *pp = &p->io[i];
        pp->owner = p;
        pp->id = i == 0 ? PROC_STDOUT : PROC_STDERR;
        if (i == 0 && out_fd >= 0) {
            stdio[1].flags = UV_INHERIT_FD;
            stdio[1].data.fd = out_fd;
            continue;
        }
        uv_pipe_init(loop, &pp->pipe, 0); /* cannot fail for ipc = 0 */
        pp->pipe.data = p;
        pp->used = true;
        p->handles++;
        /* UV_WRITABLE_PIPE is from the child's point of view: it writes, we read. */
        stdio[i + 1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
        stdio[i + 1].data.stream = (uv_stream_t *)&pp->pipe;
    }
    uv_timer_init(loop, &p->kill_timer);
    uv_timer_init(loop, &p->linger_timer);
    p->kill_timer.data = p->linger_timer.data = p;
    p->handles += 2;

    uv_process_options_t o;
    memset(&o, 0, sizeof o);
    o.exit_cb = proc_on_exit;
    o.file = argv[0];
    o.args = (char **)argv;
    o.env = (char **)envp;
    o.cwd = cwd;
    o.flags = UV_PROCESS_DETACHED; /* setsid(): a process group of its own (see proc.h) */
    o.stdio_count = 3;
    o.stdio = stdio;
    p->process.data = p;
    int rc = uv_spawn(loop, &p->process, &o);
    p->handles++; /* uv_spawn initialises the handle even when it fails; it must be closed either way */
    if (out_fd >= 0)
        close(out_fd); /* the child has its copy */
    if (rc < 0) {
        proc_release(p);
        return rc;
    }
    p->pid = p->process.pid;
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
    if (!p->exited)
        proc_kill_group(p, SIGKILL);
    proc_release(p);
}
