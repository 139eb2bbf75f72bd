/* rmtree.h — a directory tree removed on a short-lived thread, off the loop.
 *
 * Why: removing a task's work directory can take long. Without TF_PLUGIN_CACHE_DIR each task downloads its
 * providers into it (ref §7.6; hundreds of MB for the big clouds' providers), and on a file system mounted with
 * discard every freed extent waits for the disk (bench/README.md, row 3). On the loop thread that stalls heartbeats,
 * live logs and every other slot for as long. Each removal runs fs_rm_rf on a thread of its own that ends with it —
 * as common/dial's name lookups do, so an idle process keeps one thread — and reports back through a uv_async.
 *
 * Ownership: rmtree_start() copies path. done (may be NULL) runs once on the loop with the path and fs_rm_rf's
 * result (0 or -errno), after which the removal frees itself; arg must stay valid until then. The report is an
 * active handle: a loop run to its end waits for the removal. */
#ifndef IAC_RMTREE_H
#define IAC_RMTREE_H

#include <uv.h>

typedef void (*rmtree_cb)(const char *path, int result, void *arg);

/* Starts removing path (fs_rm_rf: a link is removed as a link, never followed). 0, or a negative errno when no
 * thread could be started: then nothing was done and done will not run. */
int rmtree_start(uv_loop_t *loop, const char *path, rmtree_cb done, void *arg);

#endif
