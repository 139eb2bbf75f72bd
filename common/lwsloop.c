/* lwsloop.c — libwebsockets contexts on a foreign libuv loop; see lwsloop.h.
 *
 * Creating is a matter of the right creation fields. Destroying is not: on a foreign loop lws 4.1.6 has two
 * defects (2 and 3 below), and each context is handed to a reaper — an idle handle, so one call per loop turn —
 * that works around them and takes one precaution (1):
 *
 *  1. Not from inside lws. The first lws_context_destroy() closes every wsi, possibly one whose callback is on the
 *     stack when the owner decides to go (an HTTP handler, a WebSocket on_message) and which lws goes on using once
 *     that callback returns. lws 4.1 on libuv happens to defer the frees to close callbacks, but makes no promise;
 *     so the reaper makes the call from the loop, never from the caller's stack.
 *  2. Two calls, the loop running in between. The first call closes every wsi and, from their libuv close
 *     callbacks, lws's own timer and idle handles; nothing makes the second step on a foreign loop
 *     (lws_uv_close_cb_sa only finishes the destroy for a loop lws owns), so the context would leak. A second
 *     lws_context_destroy() frees it, but only after those close callbacks have run, because they still use the
 *     context. The reaper waits until no handle on the loop is closing any more, then makes the second call.
 *  3. One fd closed twice. The first call closes the context's event pipe (an eventfd), and the libuv close
 *     callback of the pipe's wsi closes the same number again a little later. Whatever was opened with that number
 *     in between — the next context's /dev/urandom, a socket, a file — is closed under its owner (seen with
 *     strace: a TLS context created right after a plain one lost its random fd and every handshake failed). So
 *     the numbers the first call closes are occupied at once by placeholders (close-on-exec dups of one fd of
 *     ours); the stray close hits a placeholder, and the reaper closes the placeholders that are still ours once
 *     the context is freed. "Still ours" is "same inode as the source", so the source is the read end of a pipe:
 *     every pipe has an inode of its own, while all eventfds share one (lws's next event fd would pass for ours).
 *
 * The placeholders come from a before/after listing of /proc/self/fd around the first call. A number the first
 * call closed that someone else (another thread) takes before the placeholder does is left alone: F_DUPFD never
 * replaces an open fd. Without /proc or memory the destroy still happens, unprotected against (3). */
#include "iac/lwsloop.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libwebsockets.h>

typedef struct {
    uv_idle_t           idle;
    struct lws_context *ctx;
    bool                started; /* the first lws_context_destroy() was made */
    lwsloop_done_cb     done;
    void               *arg;
    int                 ph_src;  /* the pipe end the placeholders are dups of, or -1 */
    int                *ph;      /* placeholder fd numbers */
    size_t              n_ph;
} reaper;

struct lws_context *lwsloop_create(uv_loop_t *loop, const struct lws_context_creation_info *info)
{
    struct lws_context_creation_info ci = *info;
    void *loops[1] = { loop };

    ci.options |= LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN;
    ci.foreign_loops = loops; /* read during creation only */
    ci.count_threads = 1;
    if (!ci.fd_limit_per_thread)
        ci.fd_limit_per_thread = LWSLOOP_FD_LIMIT;
    return lws_create_context(&ci);
}

/* The open fds of the process (in no particular order). 0 or -errno. */
static int fds_open(int **out, size_t *n)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    int *v = NULL, dfd;
    size_t len = 0, cap = 0;

    if (!d)
        return -errno;
    dfd = dirfd(d);
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        int fd = atoi(de->d_name);
        if (fd == dfd)
            continue;
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            int *nv = realloc(v, ncap * sizeof *nv);
            if (!nv) {
                free(v);
                closedir(d);
                return -ENOMEM;
            }
            v = nv;
            cap = ncap;
        }
        v[len++] = fd;
    }
    closedir(d);
    *out = v;
    *n = len;
    return 0;
}

static bool fd_in(const int *v, size_t n, int fd)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == fd)
            return true;
    return false;
}

static bool same_file(int a, int b)
{
    struct stat sa, sb;
    return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Takes fd number `want` for a placeholder if it is still free. */
static void placeholder_take(reaper *r, int want)
{
    int fd = fcntl(r->ph_src, F_DUPFD_CLOEXEC, want);
    if (fd == want)
        r->ph[r->n_ph++] = fd;
    else if (fd >= 0)
        close(fd); /* someone else has `want` already */
}

/* Defect 1 and 3: the first call, from the loop, with placeholders over what it closed. The placeholder source is
 * opened before the listing, so that it cannot land on a number lws is about to close again. */
static void destroy_first(reaper *r)
{
    int *before = NULL, *after = NULL, p[2];
    size_t nb = 0, na = 0;
    bool listed = false;

    if (pipe2(p, O_CLOEXEC) == 0) {
        close(p[1]);
        r->ph_src = p[0];
        listed = fds_open(&before, &nb) == 0;
    }
    lws_context_destroy(r->ctx);
    if (listed && fds_open(&after, &na) == 0 && (r->ph = malloc((nb ? nb : 1) * sizeof *r->ph)) != NULL)
        for (size_t i = 0; i < nb; i++)
            if (!fd_in(after, na, before[i]))
                placeholder_take(r, before[i]);
    free(before);
    free(after);
}

static void reaper_closed(uv_handle_t *h)
{
    reaper *r = h->data;

    for (size_t i = 0; i < r->n_ph; i++)
        if (same_file(r->ph[i], r->ph_src))
            close(r->ph[i]);
    if (r->ph_src >= 0)
        close(r->ph_src);
    free(r->ph);
    if (r->done)
        r->done(r->arg);
    free(r);
}

static void count_closing(uv_handle_t *h, void *arg)
{
    if (uv_is_closing(h))
        ++*(int *)arg;
}

static void reaper_cb(uv_idle_t *h)
{
    reaper *r = h->data;
    int closing = 0;

    if (!r->started) {
        r->started = true;
        destroy_first(r);
        return;
    }
    /* Defect 2: lws's close callbacks (and the closes they start) must all have run. */
    uv_walk(h->loop, count_closing, &closing);
    if (closing)
        return;
    lws_context_destroy(r->ctx);
    r->ctx = NULL;
    uv_idle_stop(h);
    uv_close((uv_handle_t *)h, reaper_closed);
}

static reaper *reaper_new(void)
{
    reaper *r = calloc(1, sizeof *r);
    if (r)
        r->ph_src = -1;
    return r;
}

static int reaper_start(uv_loop_t *loop, reaper *r, struct lws_context *ctx, lwsloop_done_cb done, void *arg)
{
    int rc = uv_idle_init(loop, &r->idle);
    if (rc < 0)
        return rc;
    r->ctx = ctx;
    r->done = done;
    r->arg = arg;
    r->idle.data = r;
    uv_idle_start(&r->idle, reaper_cb);
    return 0;
}

int lwsloop_destroy(uv_loop_t *loop, struct lws_context *ctx, lwsloop_done_cb done, void *arg)
{
    reaper *r = reaper_new();

    if (!r)
        return -ENOMEM;
    int rc = reaper_start(loop, r, ctx, done, arg);
    if (rc < 0)
        free(r);
    return rc;
}
