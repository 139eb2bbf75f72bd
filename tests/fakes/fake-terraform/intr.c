/* intr.c — interrupt handling; see intr.h.
 *
 * The handler does only async-signal-safe things: write(2) of a constant message, a byte into a self-pipe,
 * _exit on the second signal. Sleepers poll the pipe, so a signal that lands just before a sleep starts still
 * wakes it (no race between checking a flag and going to sleep). */
#include "intr.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t ft_intr_hits;
static ft_sigint_mode ft_intr_mode;
static int ft_intr_pipe[2] = { -1, -1 };

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

static void ft_intr_handler(int sig)
{
    (void)sig;
    int saved = errno;
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

int ft_intr_install(ft_sigint_mode mode)
{
    ft_intr_mode = mode;
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
