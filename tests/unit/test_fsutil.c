/* test_fsutil.c — mkdir -p, rm -rf (never through a symbolic link), atomic replace and bounded reads, each test in
 * its own mkdtemp directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iac/fsutil.h"

typedef struct {
    char root[64];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    strcpy(f->root, "/tmp/iac-test-fsutil-XXXXXX");
    if (!mkdtemp(f->root)) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[256];
    /* Restore permissions a test may have taken away, then remove with the system's rm, not the code under test. */
    snprintf(cmd, sizeof cmd, "chmod -R u+rwx '%s' 2>/dev/null; rm -rf '%s'", f->root, f->root);
    int r = system(cmd);
    free(f);
    return r == 0 ? 0 : -1;
}

/* Joins root and a relative path into a static buffer (tests are single-threaded). */
static const char *at(const fixture *f, const char *rel)
{
    static char bufs[4][PATH_MAX];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, PATH_MAX, "%s/%s", f->root, rel);
    return b;
}

static void put_file(const char *path, const char *content)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(content, fp);
    assert_int_equal(fclose(fp), 0);
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* mkdir -p creates every missing level with the given mode, tolerates repeated and trailing slashes, and leaves
 * existing directories as they are. */
static void mkdir_p_creates_nested_directories(void **state)
{
    fixture *f = *state;
    mode_t old = umask(022);
    assert_int_equal(fs_mkdir_p(at(f, "a/b//c/d/"), 0750), 0);
    umask(old);
    struct stat st;
    assert_int_equal(stat(at(f, "a/b/c/d"), &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0750);
    assert_int_equal(stat(at(f, "a"), &st), 0);
    assert_true(S_ISDIR(st.st_mode));

    assert_int_equal(chmod(at(f, "a/b"), 0700), 0);
    assert_int_equal(fs_mkdir_p(at(f, "a/b/c/d"), 0755), 0); /* all there: success, nothing changed */
    assert_int_equal(fs_mkdir_p(at(f, "a/b/e"), 0755), 0);
    assert_int_equal(stat(at(f, "a/b"), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    assert_int_equal(fs_mkdir_p(f->root, 0755), 0);
    assert_int_equal(fs_mkdir_p("/", 0755), 0);
}

/* A file in the way is an error: -EEXIST when it is the directory to create, -ENOTDIR when it is a parent. */
static void mkdir_p_refuses_a_file_in_the_way(void **state)
{
    fixture *f = *state;
    put_file(at(f, "file"), "x");
    assert_int_equal(fs_mkdir_p(at(f, "file"), 0755), -EEXIST);
    assert_int_equal(fs_mkdir_p(at(f, "file/sub/deeper"), 0755), -ENOTDIR);
    assert_int_equal(fs_mkdir_p("", 0755), -EINVAL);
}

/* fs_mkdir_p_made says 1 only when this call made the last level (whatever it made above it), 0 when it was there,
 * and the errors of fs_mkdir_p otherwise. */
static void mkdir_p_made_says_whether_it_made_the_directory(void **state)
{
    fixture *f = *state;
    assert_int_equal(fs_mkdir_p_made(at(f, "w/ws-1/7"), 0700), 1); /* parents and all: the walk */
    assert_int_equal(fs_mkdir_p_made(at(f, "w/ws-1/8"), 0700), 1); /* only the last level: one mkdir */
    assert_int_equal(fs_mkdir_p_made(at(f, "w/ws-1/8"), 0700), 0);
    assert_int_equal(fs_mkdir_p_made(at(f, "w/ws-1/8/"), 0700), 0);
    assert_int_equal(fs_mkdir_p_made(at(f, "w"), 0700), 0);
    put_file(at(f, "file"), "x");
    assert_int_equal(fs_mkdir_p_made(at(f, "file"), 0755), -EEXIST);
    assert_int_equal(fs_mkdir_p_made(at(f, "file/sub"), 0755), -ENOTDIR);
}

/* A symbolic link to a directory counts as that directory when it is a parent. */
static void mkdir_p_goes_through_a_linked_parent(void **state)
{
    fixture *f = *state;
    assert_int_equal(mkdir(at(f, "real"), 0755), 0);
    assert_int_equal(symlink(at(f, "real"), at(f, "link")), 0);
    assert_int_equal(fs_mkdir_p(at(f, "link/x/y"), 0755), 0);
    assert_true(exists(at(f, "real/x/y")));
}

/* rm -rf removes a tree with files, nested and empty directories and symbolic links — the links themselves, never
 * what they point to: an outside directory and file survive whole. */
static void rm_rf_removes_tree_without_following_symlinks(void **state)
{
    fixture *f = *state;
    assert_int_equal(fs_mkdir_p(at(f, "outside/keep"), 0755), 0);
    put_file(at(f, "outside/keep/precious"), "data");
    put_file(at(f, "outside-file"), "data");
    assert_int_equal(fs_mkdir_p(at(f, "tree/a/b/c"), 0755), 0);
    assert_int_equal(fs_mkdir_p(at(f, "tree/empty"), 0755), 0);
    put_file(at(f, "tree/top"), "1");
    put_file(at(f, "tree/a/b/c/deep"), "2");
    put_file(at(f, "tree/.hidden"), "3");
    assert_int_equal(symlink(at(f, "outside"), at(f, "tree/a/to-outside-dir")), 0);
    assert_int_equal(symlink(at(f, "outside-file"), at(f, "tree/to-outside-file")), 0);
    assert_int_equal(symlink("/nonexistent/target", at(f, "tree/dangling")), 0);
    assert_int_equal(mkfifo(at(f, "tree/a/fifo"), 0600), 0);

    assert_int_equal(fs_rm_rf(at(f, "tree")), 0);
    assert_false(exists(at(f, "tree")));
    assert_true(exists(at(f, "outside/keep/precious")));
    assert_true(exists(at(f, "outside-file")));
}

/* rm -rf of a symbolic link removes the link only; a trailing slash does not make it follow the link. */
static void rm_rf_of_a_link_removes_only_the_link(void **state)
{
    fixture *f = *state;
    assert_int_equal(fs_mkdir_p(at(f, "target"), 0755), 0);
    put_file(at(f, "target/file"), "x");
    assert_int_equal(symlink(at(f, "target"), at(f, "link")), 0);
    assert_int_equal(fs_rm_rf(at(f, "link/")), 0);
    assert_false(exists(at(f, "link")));
    assert_true(exists(at(f, "target/file")));
}

/* A missing path is success; a plain file is removed; "." and ".." are refused. */
static void rm_rf_of_missing_path_file_and_dot(void **state)
{
    fixture *f = *state;
    assert_int_equal(fs_rm_rf(at(f, "nothing/here")), 0);
    put_file(at(f, "plain"), "x");
    assert_int_equal(fs_rm_rf(at(f, "plain")), 0);
    assert_false(exists(at(f, "plain")));
    assert_int_equal(fs_mkdir_p(at(f, "sub"), 0755), 0);
    assert_int_equal(fs_rm_rf(at(f, "sub/..")), -EINVAL);
    assert_int_equal(fs_rm_rf(at(f, "sub/.")), -EINVAL);
    assert_int_equal(fs_rm_rf(""), -EINVAL);
    assert_true(exists(at(f, "sub")));
}

/* Directories without write or read permission inside the tree (as terraform's caches leave them) are removed. */
static void rm_rf_removes_read_only_directories(void **state)
{
    fixture *f = *state;
    assert_int_equal(fs_mkdir_p(at(f, "ro/inner/locked"), 0755), 0);
    put_file(at(f, "ro/inner/file"), "x");
    put_file(at(f, "ro/inner/locked/file"), "x");
    assert_int_equal(chmod(at(f, "ro/inner/locked"), 0), 0);
    assert_int_equal(chmod(at(f, "ro/inner"), 0555), 0);
    assert_int_equal(fs_rm_rf(at(f, "ro")), 0);
    assert_false(exists(at(f, "ro")));
}

/* A wide directory (more entries than one readdir buffer holds) is emptied completely. */
static void rm_rf_removes_wide_directories(void **state)
{
    fixture *f = *state;
    assert_int_equal(fs_mkdir_p(at(f, "wide"), 0755), 0);
    char name[64];
    for (int i = 0; i < 2000; i++) {
        snprintf(name, sizeof name, "wide/entry-with-a-longish-name-%04d", i);
        put_file(at(f, name), "");
    }
    assert_int_equal(fs_rm_rf(at(f, "wide")), 0);
    assert_false(exists(at(f, "wide")));
}

/* An atomic write creates the file, then replaces content and mode; no temporary file is left behind. */
static void write_atomic_replaces_content_and_mode(void **state)
{
    fixture *f = *state;
    const char *p = at(f, "state.json");
    assert_int_equal(fs_write_atomic(p, "{\"v\":1}", 7, 0600), 0);
    char *data;
    size_t len;
    assert_int_equal(fs_read_file(p, 1024, &data, &len), 0);
    assert_string_equal(data, "{\"v\":1}");
    free(data);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);

    assert_int_equal(fs_write_atomic(p, "{\"v\":22}", 8, 0644), 0);
    assert_int_equal(fs_read_file(p, 1024, &data, &len), 0);
    assert_string_equal(data, "{\"v\":22}");
    assert_int_equal(len, 8);
    free(data);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);

    assert_int_equal(fs_write_atomic(p, "", 0, 0640), 0); /* empty content is content */
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_size, 0);
    assert_int_equal(count_entries(f->root), 1);
}

/* A target that cannot be replaced fails with -errno and leaves no temporary file; a missing directory fails. */
static void write_atomic_failure_leaves_nothing_behind(void **state)
{
    fixture *f = *state;
    assert_int_equal(fs_mkdir_p(at(f, "dir/child"), 0755), 0);
    int r = fs_write_atomic(at(f, "dir"), "x", 1, 0644);
    assert_true(r == -EISDIR || r == -ENOTEMPTY || r == -EEXIST);
    assert_int_equal(count_entries(f->root), 1);
    assert_int_equal(count_entries(at(f, "dir")), 1);
    assert_int_equal(fs_write_atomic(at(f, "missing/file"), "x", 1, 0644), -ENOENT);
    assert_int_equal(fs_write_atomic(at(f, "."), "x", 1, 0644), -EISDIR);
}

/* fs_write_fresh creates a file with exactly the mode asked for (the umask does not apply) and refuses whatever
 * is there but an empty regular file — content, a dangling symbolic link (never followed), a directory, a FIFO
 * (without blocking) — leaving it as it was; a failure leaves nothing it made. */
static void write_fresh_creates_and_never_replaces(void **state)
{
    fixture *f = *state;
    const char *p = at(f, "main.tf.json");
    mode_t old = umask(077);
    assert_int_equal(fs_write_fresh(p, "{}", 2, 0644), 0);
    umask(old);
    char *data;
    size_t len;
    assert_int_equal(fs_read_file(p, 1024, &data, &len), 0);
    assert_string_equal(data, "{}");
    free(data);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);

    assert_int_equal(fs_write_fresh(p, "new", 3, 0644), -EEXIST);
    assert_int_equal(fs_read_file(p, 1024, &data, &len), 0);
    assert_string_equal(data, "{}");
    free(data);
    assert_int_equal(symlink(at(f, "target"), at(f, "link")), 0);
    assert_int_equal(fs_write_fresh(at(f, "link"), "x", 1, 0644), -EEXIST);
    assert_false(exists(at(f, "target")));
    assert_int_equal(mkdir(at(f, "dir"), 0700), 0);
    assert_int_equal(fs_write_fresh(at(f, "dir"), "x", 1, 0644), -EEXIST);
    assert_int_equal(mkfifo(at(f, "fifo"), 0600), 0);
    assert_int_equal(fs_write_fresh(at(f, "fifo"), "x", 1, 0644), -EEXIST);
    assert_int_equal(fs_write_fresh(at(f, "missing/file"), "x", 1, 0644), -ENOENT);
    assert_int_equal(count_entries(f->root), 4);
}

/* An empty regular file — a placeholder made ahead (agent/workdir.h) — is filled in place: the same inode, the
 * bytes written, exactly the mode asked for whatever the placeholder's was. */
static void write_fresh_fills_an_empty_placeholder_in_place(void **state)
{
    fixture *f = *state;
    const char *p = at(f, "variables.tfvars");
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    close(fd);
    struct stat before, after;
    assert_int_equal(stat(p, &before), 0);
    assert_int_equal(fs_write_fresh(p, "a = 1\n", 6, 0644), 0);
    assert_int_equal(stat(p, &after), 0);
    assert_int_equal(after.st_ino, before.st_ino);
    assert_int_equal(after.st_mode & 07777, 0644);
    /* a placeholder of the right mode keeps it; an empty body writes nothing and is fine */
    const char *q = at(f, "main.tf.json");
    fd = open(q, O_WRONLY | O_CREAT | O_EXCL, 0644);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(fs_write_fresh(q, "", 0, 0644), 0);
    assert_int_equal(stat(q, &after), 0);
    assert_int_equal(after.st_mode & 07777, 0644);
    assert_int_equal(after.st_size, 0);
    char *data;
    size_t len;
    assert_int_equal(fs_read_file(p, 1024, &data, &len), 0);
    assert_string_equal(data, "a = 1\n");
    free(data);
    assert_int_equal(count_entries(f->root), 2);
}

/* A relative path works too (the directory synced is "."). */
static void write_atomic_with_a_relative_path(void **state)
{
    fixture *f = *state;
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(f->root), 0);
    int r = fs_write_atomic("rel.txt", "rel", 3, 0600);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(r, 0);
    assert_true(exists(at(f, "rel.txt")));
}

/* The replacement without fsync is still a replacement: new content and mode under the name, the old file
 * untouched for whoever holds it (a hard link keeps the old bytes, a symbolic link in the way is replaced, not
 * followed), no temporary file left; a failure leaves nothing either. */
static void write_atomic_nosync_replaces_without_writing_through(void **state)
{
    fixture *f = *state;
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", at(f, "main.tf.json"));
    put_file(p, "old");
    assert_int_equal(link(p, at(f, "held")), 0);
    put_file(at(f, "target"), "target");
    assert_int_equal(symlink(at(f, "target"), at(f, "linked")), 0);

    assert_int_equal(fs_write_atomic_nosync(p, "{\"new\":1}", 9, 0640), 0);
    assert_int_equal(fs_write_atomic_nosync(at(f, "linked"), "replaced", 8, 0600), 0);
    char *data;
    size_t len;
    assert_int_equal(fs_read_file(p, 1024, &data, &len), 0);
    assert_string_equal(data, "{\"new\":1}");
    free(data);
    assert_int_equal(fs_read_file(at(f, "held"), 1024, &data, &len), 0);
    assert_string_equal(data, "old");
    free(data);
    assert_int_equal(fs_read_file(at(f, "target"), 1024, &data, &len), 0);
    assert_string_equal(data, "target");
    free(data);
    struct stat st;
    assert_int_equal(lstat(at(f, "linked"), &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    assert_int_equal(count_entries(f->root), 4); /* main.tf.json, held, target, linked */

    assert_int_equal(fs_write_atomic_nosync(at(f, "missing/file"), "x", 1, 0644), -ENOENT);
    assert_int_equal(fs_write_atomic_nosync(at(f, "."), "x", 1, 0644), -EISDIR);
    assert_int_equal(count_entries(f->root), 4);
}

/* Reads return the content NUL-terminated with its length; a file of exactly max bytes fits, one more is -EFBIG. */
static void read_file_enforces_its_limit(void **state)
{
    fixture *f = *state;
    const char *p = at(f, "ten");
    put_file(p, "0123456789");
    char *data = (char *)0x1;
    size_t len = 0;
    assert_int_equal(fs_read_file(p, 10, &data, &len), 0);
    assert_int_equal(len, 10);
    assert_string_equal(data, "0123456789");
    free(data);
    assert_int_equal(fs_read_file(p, 9, &data, &len), -EFBIG);
    assert_null(data);

    put_file(p, "");
    assert_int_equal(fs_read_file(p, 0, &data, &len), 0);
    assert_int_equal(len, 0);
    assert_string_equal(data, "");
    free(data);

    assert_int_equal(fs_read_file(at(f, "missing"), 10, &data, &len), -ENOENT);
    assert_int_equal(fs_read_file(f->root, 10, &data, &len), -EISDIR);
}

/* Files whose reported size is wrong (/proc reports 0) are read to their end, and the limit still holds. */
static void read_file_of_unsized_files(void **state)
{
    (void)state;
    char *data;
    size_t len;
    assert_int_equal(fs_read_file("/proc/self/status", 1 << 20, &data, &len), 0);
    assert_true(len > 100);
    assert_int_equal(strlen(data), len);
    assert_non_null(strstr(data, "Name:"));
    free(data);
    assert_int_equal(fs_read_file("/proc/self/status", 50, &data, &len), -EFBIG);
    assert_null(data);
}

/* A large file crosses several buffer growths intact. */
static void read_file_of_a_large_file(void **state)
{
    fixture *f = *state;
    size_t n = 300000;
    char *big = malloc(n);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 23);
    const char *p = at(f, "big");
    assert_int_equal(fs_write_atomic(p, big, n, 0644), 0);
    char *data;
    size_t len;
    assert_int_equal(fs_read_file(p, n, &data, &len), 0);
    assert_int_equal(len, n);
    assert_memory_equal(data, big, n);
    free(data);
    assert_int_equal(fs_read_file(p, n - 1, &data, &len), -EFBIG);
    free(big);
}

int main(void)
{
    umask(022);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(mkdir_p_creates_nested_directories),
        T(mkdir_p_refuses_a_file_in_the_way),
        T(mkdir_p_made_says_whether_it_made_the_directory),
        T(mkdir_p_goes_through_a_linked_parent),
        T(rm_rf_removes_tree_without_following_symlinks),
        T(rm_rf_of_a_link_removes_only_the_link),
        T(rm_rf_of_missing_path_file_and_dot),
        T(rm_rf_removes_read_only_directories),
        T(rm_rf_removes_wide_directories),
        T(write_atomic_replaces_content_and_mode),
        T(write_atomic_failure_leaves_nothing_behind),
        T(write_atomic_with_a_relative_path),
        T(write_fresh_creates_and_never_replaces),
        T(write_fresh_fills_an_empty_placeholder_in_place),
        T(write_atomic_nosync_replaces_without_writing_through),
        T(read_file_enforces_its_limit),
        T(read_file_of_unsized_files),
        T(read_file_of_a_large_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
