/* intr.c — interrupt handling; see intr.h.
 *
 * The handler does only async-signal-safe things: write(2) of a constant message, a byte into a self-pipe,
 * _exit on the second signal. Sleepers poll the pipe, so a signal that lands just before a sleep starts still
 * wakes it (no race between checking a flag and going to sleep).
 *
 * The signal record is written by the handler itself, not later by the main flow: in "ignore" mode the main flow
 * never looks, a second signal _exits at once, and the agent may SIGKILL the process group right after its grace.
 * It stays async-signal-safe: the JSON prefix (command, cwd, pid — the parts that need escaping) is formatted at
 * install time, the log is opened O_APPEND then, and the handler only copies bytes into a stack buffer and issues
 * one write(2) (O_APPEND keeps lines of concurrent processes whole). */
#include "intr.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "iac/jsonw.h"
#include "iac/strbuf.h"
static volatile sig_atomic_t ft_intr_hits;
static volatile sig_atomic_t ft_intr_count; /* every signal received, for the record */
static ft_sigint_mode ft_intr_mode;
static int ft_intr_pipe[2] = { -1, -1 };
static int ft_intr_log_fd = -1;
static char ft_intr_prefix[8192]; /* {"cmd":…,"cwd":…,"pid":N,"signal":"  — formatted at install */
static size_t ft_intr_prefix_len;

static const char ft_intr_msg[] = "\nInterrupt received.\nPlease wait for Terraform to exit or data loss may occur.\n"
                                   "Gracefully shutting down...\n\nStopping operation...\n";
static const char ft_intr_fatal[] =
    "Two interrupts received. Exiting immediately. Note that data loss may have occurred.\n";

static void ft_intr_write(int fd, const char *s, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, s, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        s += n;
        len -= (size_t)n;
    }
}

/* Appends src to dst[*n] within cap bytes (async-signal-safe: no library call). */
static void ft_intr_put(char *dst, size_t *n, size_t cap, const char *src, size_t len)
{
    for (size_t i = 0; i < len && *n < cap; i++)
        dst[(*n)++] = src[i];
}

/* The record line of one signal, written with a single write(2). */
static void ft_intr_note(int sig)
{
    char line[sizeof ft_intr_prefix + 64], digits[24];
    size_t n = 0, d = 0;
    const char *name = sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "SIGNAL";
    unsigned long count = (unsigned long)ft_intr_count;

    if (ft_intr_log_fd < 0)
        return;
    ft_intr_put(line, &n, sizeof line, ft_intr_prefix, ft_intr_prefix_len);
    ft_intr_put(line, &n, sizeof line, name, strlen(name)); /* strlen is async-signal-safe (POSIX.1-2016) */
    ft_intr_put(line, &n, sizeof line, "\",\"n\":", 6);
    do
        digits[d++] = (char)('0' + count % 10);
    while ((count /= 10) && d < sizeof digits);
    while (d)
        ft_intr_put(line, &n, sizeof line, &digits[--d], 1);
    ft_intr_put(line, &n, sizeof line, "}\n", 2);
    ssize_t w = write(ft_intr_log_fd, line, n);
    (void)w; /* nothing to do about a failed record from a handler */
}

static void ft_intr_handler(int sig)
{
    int saved = errno;
    ft_intr_count++;
    ft_intr_note(sig);
    if (ft_intr_hits == 0) {
        ft_intr_hits = 1;
        ft_intr_write(STDOUT_FILENO, ft_intr_msg, sizeof ft_intr_msg - 1);
        if (ft_intr_mode == FT_SIGINT_GRACEFUL && ft_intr_pipe[1] >= 0) {
            char c = 1;
            ssize_t n = write(ft_intr_pipe[1], &c, 1);
            (void)n; /* non-blocking; a full pipe already wakes sleepers */
        }
    } else if (ft_intr_mode == FT_SIGINT_GRACEFUL) {
        ft_intr_write(STDERR_FILENO, ft_intr_fatal, sizeof ft_intr_fatal - 1);
        _exit(1);
    }
    errno = saved;
}

/* Opens the record log and formats the constant part of each line. Failure only disables the record. */
static void ft_intr_record_open(const char *path, const char *cmd)
{
    char cwd[4096];
    cJSON *o = cJSON_CreateObject();
    strbuf b = STRBUF_INIT;

    if (!o)
        return;
    cJSON_AddStringToObject(o, "cmd", cmd);
    cJSON_AddStringToObject(o, "cwd", getcwd(cwd, sizeof cwd) ? cwd : "");
    cJSON_AddNumberToObject(o, "pid", (double)getpid());
    jsonw_write(&b, o, JSONW_HTML_ESCAPE);
    cJSON_Delete(o);
    /* "{…}" → "{…,\"signal\":\"" */
    if (!b.oom && b.len >= 2 && b.len + 12 < sizeof ft_intr_prefix) {
        memcpy(ft_intr_prefix, b.data, b.len - 1);
        memcpy(ft_intr_prefix + b.len - 1, ",\"signal\":\"", 11);
        ft_intr_prefix_len = b.len - 1 + 11;
        ft_intr_log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    }
    strbuf_free(&b);
}

int ft_intr_install(ft_sigint_mode mode, const char *record_path, const char *cmd)
{
    ft_intr_mode = mode;
    if (record_path)
        ft_intr_record_open(record_path, cmd);
    if (pipe2(ft_intr_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return -errno;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = ft_intr_handler;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGINT);
    sigaddset(&sa.sa_mask, SIGTERM);
    if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
        return -errno;
    /* a parent may have left them blocked (the mask survives exec): terraform would still see them */
    return sigprocmask(SIG_UNBLOCK, &sa.sa_mask, NULL) < 0 ? -errno : 0;
}

bool ft_intr_requested(void)
{
    return ft_intr_hits > 0 && ft_intr_mode == FT_SIGINT_GRACEFUL;
}

static long ft_ms_until(const struct timespec *end)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long ms = (long)(end->tv_sec - now.tv_sec) * 1000 + (end->tv_nsec - now.tv_nsec) / 1000000;
    return ms < 0 ? 0 : ms;
}

bool ft_intr_sleep(long ms, bool interruptible)
{
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += ms / 1000;
    end.tv_nsec += (ms % 1000) * 1000000L;
    if (end.tv_nsec >= 1000000000L) {
        end.tv_sec++;
        end.tv_nsec -= 1000000000L;
    }
    for (;;) {
        if (interruptible && ft_intr_requested())
            return true;
        if (!interruptible || ft_intr_pipe[0] < 0) {
            int r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &end, NULL);
            if (r == 0)
                return false;
            if (r != EINTR)
                return false;
            continue;
        }
        long left = ft_ms_until(&end);
        if (left == 0)
            return false;
        struct pollfd p = { .fd = ft_intr_pipe[0], .events = POLLIN };
        int r = poll(&p, 1, left > 1000000 ? 1000000 : (int)left);
        if (r < 0 && errno != EINTR)
            return false;
    }
}
