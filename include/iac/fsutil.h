/* fsutil.h — the few file-system operations the agent needs, done carefully.
 *
 * Blocking calls, meant for small files and directory trees (state files, work directories); errors are returned
 * as negative errno values and never printed. fs_write_atomic() is the only way the project replaces a file that
 * must survive a crash: write a temporary file beside it, fsync it, rename it over the target, fsync the
 * directory — a reader sees the old content or the new, never a torn one. */
#ifndef IAC_FSUTIL_H
#define IAC_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* Creates path and its missing parents with mode (existing directories are left as they are). 0 or -errno. */
int fs_mkdir_p(const char *path, mode_t mode);
/* Removes path recursively; does not follow symbolic links (a link, even given as "link/", is removed as a link);
 * a missing path is success; "/" and paths ending in "." or ".." are refused with -EINVAL. 0 or -errno. */
int fs_rm_rf(const char *path);
/* Atomically replaces path with len bytes of data, file mode exactly `mode` (the umask does not apply). 0 or
 * -errno. */
int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* Reads a whole file of at most max bytes into a malloc'd NUL-terminated buffer (*out, caller frees) and *len.
 * -EFBIG when larger than max; other -errno on failure. */
int fs_read_file(const char *path, size_t max, char **out, size_t *len);

#endif
