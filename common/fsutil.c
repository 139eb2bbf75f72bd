/* fsutil.c — mkdir -p, rm -rf, atomic replace and bounded whole-file reads; see fsutil.h.
 *
 * rm -rf walks with openat()/unlinkat() relative to open directory descriptors and opens every directory with
 * O_NOFOLLOW, so a symbolic link inside the tree is removed as a link and never followed, whatever it points to
 * and even if it is swapped in while the walk runs. fs_write_atomic() and fs_write_atomic_nosync() create their
 * temporary file beside the target (a rename across file systems is not atomic) under a unique name, and remove it
 * on every failure path; they differ only in the two fsyncs. fs_write_fresh() writes a file of a fresh directory in
 * place, for a directory no one reads before the writer is done. */
#include "iac/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Copies path into buf (PATH_MAX) without trailing slashes ("a/b/" → "a/b", "/" stays "/"). */
static int path_copy(const char *path, char *buf)
{
    if (!path || !*path)
        return -EINVAL;
    size_t len = strlen(path);
    if (len >= PATH_MAX)
        return -ENAMETOOLONG;
    memcpy(buf, path, len + 1);
    while (len > 1 && buf[len - 1] == '/')
        buf[--len] = '\0';
    return 0;
}

/* 1 when the last mkdir (path itself) was made here, 0 when path was there, or -errno. */
static int mkdir_p(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    int r = path_copy(path, buf);
    if (r < 0)
        return r;
    /* Usually only the last level is missing (a task's work directory) or none is: one mkdir, and a stat when it
     * exists. Anything else (a missing or odd parent) takes the walk below, which gives the precise answer. */
    struct stat st;
    if (mkdir(buf, mode) == 0)
        return 1;
    if (errno == EEXIST && stat(buf, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    /* Each prefix that ends before a '/' (and the whole path last), skipping the root and repeated slashes. */
    for (char *p = buf + 1;; p++) {
        bool last = *p == '\0';
        if (!last && (*p != '/' || p[-1] == '/'))
            continue;
        *p = '\0';
        bool made = mkdir(buf, mode) == 0;
        if (!made) {
            int e = errno;
            if (e != EEXIST)
                return -e;
            if (stat(buf, &st) < 0)
                return -errno;
            if (!S_ISDIR(st.st_mode))
                return last ? -EEXIST : -ENOTDIR;
        }
        if (last)
            return made;
        *p = '/';
    }
}

int fs_mkdir_p(const char *path, mode_t mode)
{
    int r = mkdir_p(path, mode);
    return r < 0 ? r : 0;
}

int fs_mkdir_p_made(const char *path, mode_t mode)
{
    return mkdir_p(path, mode);
}

static int rm_at(int dirfd, const char *name);

/* Empties the directory open at fd (consumed). Entries removed while reading may or may not be returned again, so
 * the directory is read until a pass finds nothing left to remove — a bounded number of times, so that a directory
 * something keeps filling ends in -ENOTEMPTY rather than a loop. */
#define RM_PASSES_MAX 8
static int rm_contents(int fd)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return -e;
    }
    int r = 0, passes = 0;
    for (bool removed = true; removed && r == 0;) {
        if (++passes > RM_PASSES_MAX) {
            r = -ENOTEMPTY;
            break;
        }
        removed = false;
        rewinddir(d);
        struct dirent *de;
        errno = 0;
        while (r == 0 && (de = readdir(d))) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            r = rm_at(dirfd(d), de->d_name);
            removed = true;
            errno = 0;
        }
        if (r == 0 && errno)
            r = -errno;
    }
    closedir(d);
    return r;
}

/* Removes name (relative to dirfd) and everything below it, never following a symbolic link. */
static int rm_at(int dirfd, const char *name)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode)) {
        if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
            return -errno;
        return 0;
    }
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == EACCES) {
        /* A directory without read or search permission (terraform's plugin cache makes some): ours to remove. */
        if (fchmodat(dirfd, name, 0700, 0) == 0)
            fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!(st.st_mode & S_IWUSR))
        (void)fchmod(fd, st.st_mode | S_IRWXU); /* so its entries can be unlinked; failing here fails below */
    int r = rm_contents(fd);
    if (r < 0)
        return r;
    if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        return -errno;
    return 0;
}

int fs_rm_rf(const char *path)
{
    char buf[PATH_MAX];
    int r = path_copy(path, buf);
    if (r < 0)
        return r;
    /* Refuse what no caller can mean: the root, and "." or ".." (which rmdir refuses anyway, after the damage). */
    const char *base = strrchr(buf, '/');
    base = base ? base + 1 : buf;
    if (strcmp(buf, "/") == 0 || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
        return -EINVAL;
    return rm_at(AT_FDCWD, buf);
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Writes a temporary file beside path and renames it over path; with sync, the file is fsync'd before the rename
 * and the directory after it, so that the new content survives a crash of the kernel too. */
static int write_replace(const char *path, const void *data, size_t len, mode_t mode, bool sync)
{
    char target[PATH_MAX], dir[PATH_MAX], tmp[PATH_MAX];
    int r = path_copy(path, target);
    if (r < 0)
        return r;
    const char *slash = strrchr(target, '/');
    size_t baseoff = slash ? (size_t)(slash - target) + 1 : 0;
    if (strcmp(target + baseoff, "..") == 0 || strcmp(target + baseoff, ".") == 0 || strcmp(target, "/") == 0)
        return -EISDIR;
    /* The directory to fsync after the rename: "." for a bare name, "/" for "/name". */
    if (!slash)
        strcpy(dir, ".");
    else if (slash == target)
        strcpy(dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - target), target);

    /* ".name.XXXXXX" beside the target: hidden from globs, and unique with O_EXCL thanks to mkostemp. */
    int n = snprintf(tmp, sizeof tmp, "%.*s.%s.XXXXXX", (int)baseoff, target, target + baseoff);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return -ENAMETOOLONG;

    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return -errno;
    r = write_all(fd, data, len);
    if (r == 0 && fchmod(fd, mode) < 0)
        r = -errno;
    if (r == 0 && sync && fsync(fd) < 0)
        r = -errno;
    if (close(fd) < 0 && r == 0)
        r = -errno;
    if (r == 0 && rename(tmp, target) < 0)
        r = -errno;
    if (r < 0) {
        unlink(tmp);
        return r;
    }
    if (!sync)
        return 0;
    /* The rename is durable only once the directory entry is. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    if (fsync(dfd) < 0)
        r = -errno;
    close(dfd);
    return r;
}

int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    return write_replace(path, data, len, mode, true);
}

int fs_write_atomic_nosync(const char *path, const void *data, size_t len, mode_t mode)
{
    return write_replace(path, data, len, mode, false);
}

/* Opens path for fs_write_fresh: the empty regular file already there (its mode in *had), or one created here
 * (*made); anything else is -EEXIST. The placeholder is looked for first: where one stands, that is the one open,
 * and where none does, the failed lookup costs less than the failed exclusive create would have. O_NONBLOCK keeps
 * a FIFO someone put there from blocking the loop (it fails with ENXIO). */
static int open_fresh(const char *path, mode_t mode, bool *made, mode_t *had)
{
    *made = false;
    int fd = open(path, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) {
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size != 0) {
            close(fd);
            return -EEXIST;
        }
        *had = st.st_mode & 07777;
        return fd;
    }
    if (errno == ELOOP || errno == EISDIR || errno == ENXIO) /* a link, a directory, a FIFO: something is there */
        return -EEXIST;
    if (errno != ENOENT)
        return -errno;
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 07777);
    if (fd < 0)
        return -errno;
    *made = true;
    *had = (mode_t)-1; /* the umask may have taken bits */
    return fd;
}

int fs_write_fresh(const char *path, const void *data, size_t len, mode_t mode)
{
    bool made;
    mode_t had = (mode_t)-1;
    int fd = open_fresh(path, mode, &made, &had);
    if (fd < 0)
        return fd;
    int r = write_all(fd, data, len);
    if (r == 0 && had != (mode & 07777) && fchmod(fd, mode) < 0) /* exactly mode, whatever the umask */
        r = -errno;
    if (close(fd) < 0 && r == 0)
        r = -errno;
    if (r < 0 && made)
        unlink(path);
    return r;
}

int fs_read_file(const char *path, size_t max, char **out, size_t *len)
{
    *out = NULL;
    if (len)
        *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return -EISDIR;
    }
    if (S_ISREG(st.st_mode) && (uintmax_t)st.st_size > max) {
        close(fd);
        return -EFBIG;
    }
    /* The size is a hint (it changes, and /proc files report 0): read until EOF, one byte past max at most. */
    size_t limit = max < SIZE_MAX - 1 ? max + 1 : SIZE_MAX - 1;
    size_t cap = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size + 1 : 4096;
    if (cap > limit + 1)
        cap = limit + 1;
    char *buf = malloc(cap);
    size_t used = 0;
    int r = buf ? 0 : -ENOMEM;
    while (r == 0) {
        if (used + 1 == cap) {
            size_t ncap = cap > (limit + 1) / 2 ? limit + 1 : cap * 2;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                r = -ENOMEM;
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t want = cap - 1 - used;
        if (want > limit - used)
            want = limit - used;
        ssize_t got = read(fd, buf + used, want);
        if (got < 0) {
            if (errno != EINTR)
                r = -errno;
            continue;
        }
        if (got == 0)
            break;
        used += (size_t)got;
        if (used >= limit)
            break;
    }
    close(fd);
    if (r == 0 && used > max)
        r = -EFBIG;
    if (r < 0) {
        free(buf);
        return r;
    }
    buf[used] = '\0';
    *out = buf;
    if (len)
        *len = used;
    return 0;
}
