/* workdir.h — a task's work directory: its inodes allocated ahead of the task, its removal off the loop.
 *
 * Between run_task and terraform's exec the agent makes the task's directory, its log file and the files of the
 * configuration: a new inode each. On some file systems an inode allocation is the slowest step of that path. ext4
 * without a journal, for one, passes over every inode freed in the last minutes on each create, and each task frees
 * a dozen when its directory is removed: after a busy minute a create costs about 0.13 ms there, and a dispatch made
 * five (bench/README.md, row 3). So the inodes are allocated when nothing waits for them: a spare is a directory
 * (mode 0700) holding empty files named as the files nearly every task's directory gets (the task log, and
 * render_placeholders), made by workdir_fill() shortly after a task's first command is spawned. workdir_make()
 * renames a spare into place — no inode allocated — and the caller fills its files in place (tasklog_open truncates
 * the log, fs_write_fresh fills a placeholder, render removes one it does not need). With no spare ready, or on a
 * file system that cannot rename one there, it makes the directory as it would without a pool.
 *
 * At the other end, workdir_discard() renames a finished task's directory out of the way at once and removes it on
 * a thread (common/rmtree: providers downloaded into it can make that long), so that neither the loop waits for the
 * removal nor a new directory at the same path ever meets the old one's.
 *
 * Both live in <data_dir>/workdir-pool/: spare-<n> (n < the pool's size; only ever renamed into place or removed)
 * and gone-<pid>-<n> (being removed). The pool's first call in a process removes whatever an earlier process left
 * there (a half-made spare, a removal a crash cut short), so a start does no work here before its first task.
 *
 * Ownership: workdir_new() copies data_dir and the file names; the executor owns the pool and frees it with
 * workdir_free() (spares stay on disk for the next process to remove; removals under way finish on their threads,
 * and the loop runs until they have). Loop thread only; no global state. */
#ifndef IAC_AGENT_WORKDIR_H
#define IAC_AGENT_WORKDIR_H

#include <stddef.h>
#include <sys/types.h>

#include <uv.h>

#include "iac/rmtree.h"

#define WORKDIR_SPARES_MAX 64

typedef struct workdir_pool workdir_pool;

/* A file every spare holds, empty: a plain name, and the mode the file will have in use (so that filling it in
 * place changes no mode). */
typedef struct {
    const char *name;
    mode_t      mode;
} workdir_file;

/* A pool of up to `spares` (clamped to 0..WORKDIR_SPARES_MAX) spares, each holding the nfiles empty files of files.
 * No file system work. NULL on OOM or a name that is not a plain file name ("", ".", "..", or one with a '/'). */
workdir_pool *workdir_new(const char *data_dir, int spares, const workdir_file *files, size_t nfiles);
void workdir_free(workdir_pool *w);

/* Makes path (its missing parents 0700) as a task's new work directory: 1 when it is new — a spare renamed into
 * place, holding the spare's empty files, or made here, empty — 0 when path was a directory already (untouched,
 * no spare used), or -errno (-EEXIST when it is something other than a directory). w may be NULL: no spares. */
int workdir_make(workdir_pool *w, const char *path);

/* Makes spares until the pool is full. 0, or -errno of the first failure with the path and the reason in err (the
 * caller logs it; the spare that failed is removed and tried again at the next call). */
int workdir_fill(workdir_pool *w, char *err, size_t errlen);

/* Takes path (a task's directory, done with) out of the way at once — renamed to gone-<pid>-<n>, so that the path
 * is free — and removes it on a thread. Where it cannot be renamed there (another file system; w NULL), it is
 * removed where it is, on a thread all the same. done(path removed, fs_rm_rf's result, arg) runs on the loop as
 * rmtree's does. 0, or a negative errno when nothing was started (the caller removes it itself). */
int workdir_discard(workdir_pool *w, uv_loop_t *loop, const char *path, rmtree_cb done, void *arg);

/* Spares ready to be taken. */
int workdir_ready(const workdir_pool *w);

#endif
