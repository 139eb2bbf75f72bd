/* workdir.c — a task's work directory: its inodes allocated ahead of the task, its removal off the loop; see
 * workdir.h.
 *
 * A spare is renamed into place with RENAME_NOREPLACE, so that a directory already at the target (a kept one, or
 * one someone made) is never replaced and reads as "there already" — exactly what a mkdir would have said. A
 * rename the file system refuses for good (another mount under the data directory: EXDEV; no RENAME_NOREPLACE:
 * EINVAL) switches the spares off for the life of the process, once, with one log line. A discarded directory is
 * renamed with RENAME_NOREPLACE too, under a name of this process (its pid, a counter), so that it never lands on
 * one an earlier process left. */
#include "workdir.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iac/fsutil.h"
#include "iac/log.h"

struct workdir_pool {
    char     root[PATH_MAX];  /* <data_dir>/workdir-pool */
    int      spares;          /* the pool's size */
    uint64_t ready;           /* bit n: <root>/spare-<n> is complete and not taken */
    bool     cleaned;         /* the first call removed what an earlier process left */
    bool     off;             /* the file system cannot rename a spare into place */
    uint64_t gone;            /* discarded directories so far (their names) */
    size_t   nfiles;
    char   **files;
    mode_t  *modes;
};

static bool plain_name(const char *name)
{
    return name && name[0] && strcmp(name, ".") != 0 && strcmp(name, "..") != 0 && !strchr(name, '/');
}

workdir_pool *workdir_new(const char *data_dir, int spares, const workdir_file *files, size_t nfiles)
{
    for (size_t i = 0; i < nfiles; i++)
        if (!plain_name(files[i].name))
            return NULL;
    workdir_pool *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    if (nfiles && (!(w->files = calloc(nfiles, sizeof *w->files)) || !(w->modes = calloc(nfiles, sizeof *w->modes)))) {
        free(w->files);
        free(w);
        return NULL;
    }
    if ((size_t)snprintf(w->root, sizeof w->root, "%s/workdir-pool", data_dir) >= sizeof w->root)
        w->off = true; /* no path left for a spare: every directory is made on the spot */
    w->spares = spares < 0 ? 0 : spares > WORKDIR_SPARES_MAX ? WORKDIR_SPARES_MAX : spares;
    for (w->nfiles = 0; w->nfiles < nfiles; w->nfiles++) {
        w->modes[w->nfiles] = files[w->nfiles].mode & 07777;
        if (!(w->files[w->nfiles] = strdup(files[w->nfiles].name))) {
            workdir_free(w);
            return NULL;
        }
    }
    return w;
}

void workdir_free(workdir_pool *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->nfiles; i++)
        free(w->files[i]);
    free(w->files);
    free(w->modes);
    free(w);
}

int workdir_ready(const workdir_pool *w)
{
    return w && !w->off ? __builtin_popcountll(w->ready) : 0;
}

static void spare_path(const workdir_pool *w, int n, char *out, size_t len)
{
    snprintf(out, len, "%s/spare-%d", w->root, n);
}

/* The pool's first call in a process removes what an earlier one left, before anything of ours is there. When it
 * cannot, the pool is off (directories are made on the spot and removed where they are) and the error is in err,
 * once. */
static int clean_once(workdir_pool *w, char *err, size_t errlen)
{
    if (w->cleaned)
        return 0;
    w->cleaned = true;
    int r = fs_rm_rf(w->root);
    if (r < 0) {
        w->off = true;
        snprintf(err, errlen, "cannot remove what an earlier run left in %s: %s", w->root, strerror(-r));
    }
    return r;
}

/* Makes path's parent (and its missing parents); 0 or -errno. */
static int make_parent(const char *path)
{
    char parent[PATH_MAX];
    if ((size_t)snprintf(parent, sizeof parent, "%s", path) >= sizeof parent)
        return -ENAMETOOLONG;
    size_t len = strlen(parent);
    while (len > 1 && parent[len - 1] == '/')
        parent[--len] = '\0';
    char *slash = strrchr(parent, '/');
    if (!slash)
        return 0; /* relative to the working directory, which exists */
    if (slash == parent)
        return 0; /* "/x": the root */
    *slash = '\0';
    return fs_mkdir_p(parent, 0700);
}

/* Renames spare n to path, making path's parent when it is missing; 0 or -errno. */
static int spare_rename(const workdir_pool *w, int n, const char *path)
{
    char spare[PATH_MAX + 32];
    spare_path(w, n, spare, sizeof spare);
    if (renameat2(AT_FDCWD, spare, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != ENOENT)
        return -errno;
    /* the parent (workspaces/<ws>) is missing, or the spare is */
    int r = make_parent(path);
    if (r < 0)
        return r;
    return renameat2(AT_FDCWD, spare, AT_FDCWD, path, RENAME_NOREPLACE) == 0 ? 0 : -errno;
}

int workdir_make(workdir_pool *w, const char *path)
{
    char err[PATH_MAX + 128];
    if (w && !w->off && clean_once(w, err, sizeof err) < 0)
        log_warn("workdir", "%s (work directories are made on the spot)", err);
    if (w && !w->off && w->ready) {
        int n = 63 - __builtin_clzll(w->ready);
        int r = spare_rename(w, n, path);
        if (r == 0) {
            w->ready &= ~(UINT64_C(1) << n);
            return 1;
        }
        if (r == -ENOENT) { /* someone removed the spare */
            w->ready &= ~(UINT64_C(1) << n);
        } else if (r == -EXDEV || r == -EINVAL || r == -ENOSYS || r == -EOPNOTSUPP) {
            w->off = true;
            log_info("workdir", "work directories are made on the spot from now on: cannot rename a spare from %s to "
                     "%s: %s", w->root, path, strerror(-r));
        }
        /* -EEXIST: path is there already (mkdir says what it is); anything else, mkdir meets it again and says so */
    }
    return fs_mkdir_p_made(path, 0700);
}

/* Makes spare n: the directory, then each empty file. A leftover of a failed fill is removed first. */
static int spare_make(const workdir_pool *w, int n, char *err, size_t errlen)
{
    char dir[PATH_MAX + 32], file[2 * PATH_MAX + 32];
    spare_path(w, n, dir, sizeof dir);
    int r = mkdir(dir, 0700) == 0 ? 0 : -errno;
    if (r == -EEXIST && (r = fs_rm_rf(dir)) == 0)
        r = mkdir(dir, 0700) == 0 ? 0 : -errno;
    if (r < 0) {
        snprintf(err, errlen, "cannot make the spare work directory %s: %s", dir, strerror(-r));
        return r;
    }
    for (size_t i = 0; i < w->nfiles; i++) {
        snprintf(file, sizeof file, "%s/%s", dir, w->files[i]);
        int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, w->modes[i]);
        r = fd < 0 ? -errno : 0;
        if (fd >= 0 && fchmod(fd, w->modes[i]) < 0) /* exactly the mode, whatever the umask */
            r = -errno;
        if (fd >= 0 && close(fd) < 0 && r == 0)
            r = -errno;
        if (r < 0) {
            snprintf(err, errlen, "cannot make %s: %s", file, strerror(-r));
            fs_rm_rf(dir);
            return r;
        }
    }
    return 0;
}

int workdir_fill(workdir_pool *w, char *err, size_t errlen)
{
    if (!w || w->off || workdir_ready(w) == w->spares)
        return 0;
    int r = clean_once(w, err, errlen);
    if (r < 0)
        return r;
    if ((r = fs_mkdir_p(w->root, 0700)) < 0) {
        snprintf(err, errlen, "cannot make %s: %s", w->root, strerror(-r));
        return r;
    }
    for (int n = 0; n < w->spares; n++) {
        if (w->ready & (UINT64_C(1) << n))
            continue;
        if ((r = spare_make(w, n, err, errlen)) < 0)
            return r;
        w->ready |= UINT64_C(1) << n;
    }
    return 0;
}

int workdir_discard(workdir_pool *w, uv_loop_t *loop, const char *path, rmtree_cb done, void *arg)
{
    char gone[PATH_MAX + 64], err[PATH_MAX + 128];
    const char *target = path;
    if (w && !w->off && clean_once(w, err, sizeof err) < 0)
        log_warn("workdir", "%s (work directories are made on the spot)", err);
    /* Renamed first, so that the path is free at once; a root that is missing is made, and the rename tried again. */
    for (int tries = 0; w && !w->off && tries < 2; tries++) {
        snprintf(gone, sizeof gone, "%s/gone-%ld-%" PRIu64, w->root, (long)getpid(), w->gone);
        if (renameat2(AT_FDCWD, path, AT_FDCWD, gone, RENAME_NOREPLACE) == 0) {
            w->gone++;
            target = gone;
            break;
        }
        if (errno == EEXIST) /* a name of ours cannot be taken, but should it be: the next */
            w->gone++;
        else if (errno != ENOENT || access(path, F_OK) != 0 || fs_mkdir_p(w->root, 0700) < 0)
            break; /* nothing there, another file system, …: rmtree takes it where it is */
    }
    return rmtree_start(loop, target, done, arg);
}
