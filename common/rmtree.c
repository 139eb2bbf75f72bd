/* rmtree.c — a directory tree removed on a short-lived thread, off the loop; see rmtree.h.
 *
 * A removal owns a block with its path and its uv_async; the thread runs fs_rm_rf, stores the result and sends the
 * async, after which it touches nothing of the block. The async callback, on the loop, closes the handle and the
 * close callback calls done and frees the block. fs_rm_rf has no state of its own, so any number may run at once. */
#include "iac/rmtree.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "iac/fsutil.h"

typedef struct {
    uv_async_t async; /* the thread's "done"; first, so that the handle is the block */
    rmtree_cb  done;
    void      *arg;
    int        result;
    char       path[];
} rmtree_job;

static void *rmtree_run(void *arg)
{
    rmtree_job *j = arg;
    j->result = fs_rm_rf(j->path);
    uv_async_send(&j->async); /* after this the thread touches nothing of j */
    return NULL;
}

static void rmtree_closed(uv_handle_t *h)
{
    rmtree_job *j = (rmtree_job *)h;
    if (j->done)
        j->done(j->path, j->result, j->arg);
    free(j);
}

static void rmtree_reported(uv_async_t *a)
{
    uv_close((uv_handle_t *)a, rmtree_closed);
}

int rmtree_start(uv_loop_t *loop, const char *path, rmtree_cb done, void *arg)
{
    size_t len = path ? strlen(path) : 0;
    if (len == 0)
        return -EINVAL;
    rmtree_job *j = calloc(1, sizeof *j + len + 1);
    if (!j)
        return -ENOMEM;
    memcpy(j->path, path, len + 1);
    j->done = done;
    j->arg = arg;
    int rc = uv_async_init(loop, &j->async, rmtree_reported);
    if (rc < 0) {
        free(j);
        return rc;
    }
    pthread_attr_t attr;
    pthread_t tid;
    rc = pthread_attr_init(&attr);
    if (rc == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        rc = pthread_create(&tid, &attr, rmtree_run, j);
        pthread_attr_destroy(&attr);
    }
    if (rc != 0) {
        j->done = NULL; /* nothing was done: the caller hears it from the return value */
        uv_close((uv_handle_t *)&j->async, rmtree_closed);
        return -rc;
    }
    return 0;
}
