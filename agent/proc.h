/* proc.h — one child process (terraform, tofu) on the loop: its own process group, output split into lines.
 *
 * Terraform starts provider plugins as its own children. To stop a run we must reach all of them, so the child is
 * spawned with POSIX_SPAWN_SETSID, which makes it call setsid(): it leads a new session and a new process group
 * whose id is its pid, and everything it starts stays in that group unless it moves itself out. Signals go to the
 * group (kill(-pid, sig)). A side effect of setsid() is that the child has no controlling terminal, which is what
 * we want for a batch run anyway.
 *
 * stdin is /dev/null. stdout and stderr are pipes read on the loop and split into lines: on_line gets each line
 * without its "\n" (and without a "\r" before it); a line longer than PROC_LINE_MAX arrives in pieces of
 * PROC_LINE_MAX bytes (the last piece shorter), so output of any shape is delivered whole with bounded memory; a
 * last line without a newline is delivered at end of file. With options.stdout_path, stdout goes straight to that
 * file (created or truncated, mode 0600) instead — for `terraform show -json`, whose one line can be many MB.
 *
 * on_exit is called exactly once, after the process has exited AND both pipes have reached end of file, so no line
 * ever arrives after it. A process that exits while something it started still holds a pipe (a leftover plugin)
 * would keep on_exit waiting forever; after options.linger_ms the rest of its group is sent SIGKILL, the pipes are
 * closed (a partial line is delivered first) and on_exit follows.
 *
 * A program that cannot be started (missing, not executable, bad cwd) is reported by proc_spawn() itself as a
 * negative errno (-ENOENT, -EACCES, …): posix_spawn reports the child's exec/chdir failure synchronously, so there is
 * no exit code 127 and no callback in that case. (`/bin/sh -c missing-binary` is different: sh starts, prints its
 * own error on stderr and exits 127.)
 *
 * Ownership: proc_spawn() allocates the proc; the caller releases it with proc_free(), usually from on_exit. Handles
 * are closed asynchronously and the memory goes when the last one is closed; no callback runs after proc_free().
 * Freeing a proc before its on_exit (the process still runs, or something it started still holds its output) sends
 * SIGKILL to its group first (a forgotten terraform or plugin must not outlive its task); the process is still
 * reaped. Callbacks run on the loop and may call proc_free(). */
#ifndef IAC_AGENT_PROC_H
#define IAC_AGENT_PROC_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define PROC_LINE_MAX (64 * 1024)  /* longest line delivered in one piece (Go's scanner limit upstream) */
#define PROC_LINGER_DEFAULT_MS 5000

typedef struct proc proc;

typedef enum { PROC_STDOUT = 1, PROC_STDERR = 2 } proc_stream;

typedef struct {
    /* One line (or piece of a long line), not NUL-terminated, valid during the call only. */
    void (*on_line)(proc_stream stream, const char *line, size_t len, void *arg);
    /* Once, last. exit_status is the exit code (0 when killed by a signal, -1 when its status was lost: reaped by
     * someone else); term_signal the signal, else 0. */
    void (*on_exit)(int64_t exit_status, int term_signal, void *arg);
} proc_callbacks;

typedef struct {
    const char *stdout_path; /* NULL: stdout is split into lines like stderr; else written to this file */
    unsigned    linger_ms;   /* after exit, how long pipes held open by leftovers are waited for; 0 → default */
} proc_options;

/* Starts argv[0] (a path; a bare name is searched in the PATH of envp, or of the agent) with argv, envp (NULL →
 * the agent's environment) and cwd (NULL → the agent's). opts may be NULL. Returns 0 and *out, or a negative
 * errno (nothing to free; no callback will run). */
int proc_spawn(uv_loop_t *loop, char *const argv[], char *const envp[], const char *cwd, const proc_options *opts,
               const proc_callbacks *cb, void *arg, proc **out);

/* The child's pid, which is also its process group id. */
int proc_pid(const proc *p);

/* kill(-pid, sig): the child and everything in its group. 0, or a negative errno; -ESRCH once on_exit has been
 * delivered (the group is gone, and the id may be reused). */
int proc_signal_group(proc *p, int sig);

/* Graceful stop: SIGINT to the group now, SIGKILL to the group after grace_ms unless on_exit came first (terraform
 * stops at the next safe point on SIGINT and writes its state). A second call while the first is pending sends
 * SIGKILL at once: it is the "I really mean it" of an operator's second Ctrl-C or SIGTERM. 0 or a negative errno. */
int proc_interrupt(proc *p, unsigned grace_ms);

/* Releases p; see Ownership above. NULL is a no-op. */
void proc_free(proc *p);

#endif
