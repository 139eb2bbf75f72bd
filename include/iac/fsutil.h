/* fsutil.h — the few file-system operations the agent needs, done carefully.
 *
 * Blocking calls, meant for small files and directory trees (state files, work directories); errors are returned
 * as negative errno values and never printed. fs_write_atomic() is the only way the project replaces a file that
 * must survive a crash: write a temporary file beside it, fsync it, rename it over the target, fsync the
 * directory — a reader sees the old content or the new, never a torn one. fs_write_atomic_nosync() replaces a
 * file the same way for readers but leaves out the fsyncs, for files that need not outlive a crash of the kernel. */
#ifndef IAC_FSUTIL_H
#define IAC_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* Creates path and its missing parents with mode (existing directories are left as they are). 0 or -errno. */
int fs_mkdir_p(const char *path, mode_t mode);
/* fs_mkdir_p that also tells whether this call made path itself: 1 (it is new, hence empty), 0 (it was there), or
 * -errno. */
int fs_mkdir_p_made(const char *path, mode_t mode);
/* Removes path recursively; does not follow symbolic links (a link, even given as "link/", is removed as a link);
 * a missing path is success; "/" and paths ending in "." or ".." are refused with -EINVAL. 0 or -errno. */
int fs_rm_rf(const char *path);
/* Atomically replaces path with len bytes of data, file mode exactly `mode` (the umask does not apply). 0 or
 * -errno. */
int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* The same replacement without fsync of the file or of its directory (a journal commit each: together about half
 * a millisecond for a small file on an ext4 disk). Readers, and a process started after the call (a child, or the
 * agent restarted after a crash of its own), still see the old content or the new, never a torn file: the data is
 * in the page cache. Only a crash of the kernel (power loss) may leave the old content, the new, or an empty file.
 * For files whose loss in such a crash costs nothing: what a child reads at once in a work directory that a crash
 * discards anyway. 0 or -errno. */
int fs_write_atomic_nosync(const char *path, const void *data, size_t len, mode_t mode);
/* Writes a file of a fresh directory in place, without fsync: creates path, or fills the empty regular file that
 * stands there (a placeholder made ahead: agent/workdir.h); len bytes of data, mode exactly `mode`. Anything else
 * at path — a file with content, a directory, a symbolic link (never followed), a FIFO — is refused with -EEXIST
 * and left alone (a file this process may not open gives that error instead). Not atomic: a reader may see the file partly written, and a failure removes a file this call
 * created. For files in a directory that no one reads until the writer is done with it and that a crash discards
 * — a task's new work directory — where it saves the temporary file and the rename of fs_write_atomic_nosync (one
 * metadata change of ext4's journal each). 0 or -errno. */
int fs_write_fresh(const char *path, const void *data, size_t len, mode_t mode);
/* Reads a whole file of at most max bytes into a malloc'd NUL-terminated buffer (*out, caller frees) and *len.
 * -EFBIG when larger than max; other -errno on failure. */
int fs_read_file(const char *path, size_t max, char **out, size_t *len);

#endif
