/* test_workdir.c — a task's work directory (agent/workdir.c): spares made ahead, renamed into place, never over
 * anything that is there, the leftovers of an earlier process removed, every failure falling back to a plain mkdir;
 * and a finished directory out of its path at once, removed on a thread that ends with the removal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../agent/workdir.h"
#include "iac/fsutil.h"
#include "selfproc.h"

static const workdir_file files[] = { { ".iac-task.log", 0600 }, { "main.tf.json", 0644 },
                                      { "variables.tfvars", 0644 } };
#define NFILES (sizeof files / sizeof files[0])

typedef struct {
    char *root;
    char  path[8][256];
    int   n;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    char tmpl[] = "/tmp/iac-test-workdir-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    f->root = strdup(tmpl);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    fs_rm_rf(f->root);
    free(f->root);
    free(f);
    return 0;
}

/* A path under the fixture's root (valid until the fixture ends; eight at most per test). */
static const char *at(fixture *f, const char *rel)
{
    char *p = f->path[f->n++ % 8];
    snprintf(p, 256, "%s/%s", f->root, rel);
    return p;
}

static int entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    return n;
}

static ino_t inode_of(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_ino;
}

static int mode_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

/* The spare's files are all there, empty, each with its mode (exactly: the umask is 077 in these tests). */
static void assert_holds_the_files(const char *dir)
{
    char p[512];
    assert_int_equal(entries(dir), (int)NFILES);
    for (size_t i = 0; i < NFILES; i++) {
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, files[i].name);
        assert_int_equal(lstat(p, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_size, 0);
        assert_int_equal(st.st_mode & 07777, files[i].mode);
    }
}

/* With no spare made yet (a new process), a task's directory is made on the spot, with its missing parents; a
 * second call says it was there. */
static void without_a_spare_the_directory_is_made(void **state)
{
    fixture *f = *state;
    workdir_pool *w = workdir_new(f->root, 2, files, NFILES);
    assert_non_null(w);
    assert_int_equal(workdir_ready(w), 0);
    const char *dir = at(f, "workspaces/ws-1/7");
    assert_int_equal(workdir_make(w, dir), 1);
    assert_int_equal(mode_of(dir), 0700);
    assert_int_equal(entries(dir), 0);
    assert_int_equal(workdir_make(w, dir), 0);
    assert_int_equal(mode_of(at(f, "workdir-pool")), -1); /* nothing made ahead without a fill */
    assert_int_equal(workdir_make(NULL, at(f, "workspaces/ws-1/8")), 1);
    workdir_free(w);
}

/* A fill makes one spare per place in the pool; a task's directory is a spare renamed into place (the same inode,
 * with its empty files), its workspace directory made when missing; once the spares are used up, directories are
 * made on the spot again, and the next fill makes new spares. */
static void a_spare_is_renamed_into_place(void **state)
{
    fixture *f = *state;
    char err[512];
    workdir_pool *w = workdir_new(f->root, 2, files, NFILES);
    assert_int_equal(workdir_fill(w, err, sizeof err), 0);
    assert_int_equal(workdir_ready(w), 2);
    assert_int_equal(mode_of(at(f, "workdir-pool/spare-0")), 0700);
    assert_holds_the_files(at(f, "workdir-pool/spare-0"));
    assert_holds_the_files(at(f, "workdir-pool/spare-1"));
    ino_t spare1 = inode_of(at(f, "workdir-pool/spare-1"));

    const char *a = at(f, "workspaces/ws-1/7");
    assert_int_equal(workdir_make(w, a), 1);
    assert_int_equal(workdir_ready(w), 1);
    assert_int_equal(inode_of(a), spare1);
    assert_holds_the_files(a);
    assert_int_equal(mode_of(at(f, "workdir-pool/spare-1")), -1);

    const char *b = at(f, "workspaces/ws-2/8");
    assert_int_equal(workdir_make(w, b), 1);
    assert_int_equal(workdir_ready(w), 0);
    assert_holds_the_files(b);
    const char *c = at(f, "workspaces/ws-2/9");
    assert_int_equal(workdir_make(w, c), 1);
    assert_int_equal(entries(c), 0);

    assert_int_equal(workdir_fill(w, err, sizeof err), 0);
    assert_int_equal(workdir_ready(w), 2);
    assert_int_equal(entries(at(f, "workdir-pool")), 2);
    assert_holds_the_files(at(f, "workdir-pool/spare-0"));
    workdir_free(w);
}

/* Whatever is at the path already is never replaced: a directory (a kept one, with its plan) reads as "there" and
 * keeps every file, a file is refused with EEXIST; the spare stays ready for the next task. */
static void nothing_at_the_path_is_replaced(void **state)
{
    fixture *f = *state;
    char err[512];
    workdir_pool *w = workdir_new(f->root, 1, files, NFILES);
    assert_int_equal(workdir_fill(w, err, sizeof err), 0);
    const char *kept = at(f, "workspaces/ws-1/7");
    assert_int_equal(fs_mkdir_p(kept, 0700), 0);
    assert_int_equal(fs_write_atomic(at(f, "workspaces/ws-1/7/plan.out"), "plan", 4, 0644), 0);
    assert_int_equal(workdir_make(w, kept), 0);
    assert_int_equal(entries(kept), 1);
    assert_int_equal(workdir_ready(w), 1);

    assert_int_equal(fs_write_atomic(at(f, "workspaces/ws-1/8"), "x", 1, 0644), 0);
    assert_int_equal(workdir_make(w, at(f, "workspaces/ws-1/8")), -EEXIST);
    assert_int_equal(workdir_ready(w), 1);
    assert_holds_the_files(at(f, "workdir-pool/spare-0"));
    workdir_free(w);
}

/* The first fill of a process removes what an earlier one left (a half-made spare, one past the pool's size, a
 * stray file); a spare that someone removed meanwhile is not missed: the task's directory is made on the spot. */
static void leftovers_are_removed_and_a_missing_spare_is_not_missed(void **state)
{
    fixture *f = *state;
    char err[512];
    assert_int_equal(fs_mkdir_p(at(f, "workdir-pool/spare-0"), 0700), 0);
    assert_int_equal(fs_write_atomic(at(f, "workdir-pool/spare-0/junk"), "x", 1, 0644), 0);
    assert_int_equal(fs_mkdir_p(at(f, "workdir-pool/spare-9"), 0700), 0);
    assert_int_equal(fs_write_atomic(at(f, "workdir-pool/stray"), "x", 1, 0644), 0);
    workdir_pool *w = workdir_new(f->root, 2, files, NFILES);
    assert_int_equal(workdir_fill(w, err, sizeof err), 0);
    assert_int_equal(entries(at(f, "workdir-pool")), 2);
    assert_holds_the_files(at(f, "workdir-pool/spare-0"));

    assert_int_equal(fs_rm_rf(at(f, "workdir-pool/spare-1")), 0);
    const char *dir = at(f, "workspaces/ws-1/7");
    assert_int_equal(workdir_make(w, dir), 1);
    assert_int_equal(entries(dir), 0); /* made on the spot, not the spare */
    assert_int_equal(workdir_ready(w), 1);
    assert_int_equal(workdir_make(w, at(f, "workspaces/ws-1/8")), 1);
    assert_holds_the_files(at(f, "workspaces/ws-1/8"));
    assert_int_equal(workdir_ready(w), 0);
    workdir_free(w);
}

/* A fill that cannot make its spares says which path and why, and tasks still get their directories. */
static void a_failed_fill_names_the_path(void **state)
{
    fixture *f = *state;
    char err[512];
    assert_int_equal(fs_write_atomic(at(f, "workdir-pool"), "not a directory", 15, 0644), 0);
    assert_int_equal(chmod(f->root, 0500), 0); /* the leftover cannot be removed (unless we are root) */
    workdir_pool *w = workdir_new(f->root, 1, files, NFILES);
    int rc = workdir_fill(w, err, sizeof err);
    assert_int_equal(chmod(f->root, 0700), 0);
    if (rc == 0) { /* root: the leftover went; make the spare's place unusable another way */
        workdir_free(w);
        assert_int_equal(fs_rm_rf(at(f, "workdir-pool")), 0);
        assert_int_equal(fs_write_atomic(at(f, "workdir-pool"), "x", 1, 0644), 0);
        char sub[300];
        snprintf(sub, sizeof sub, "%s/workdir-pool", f->root); /* data_dir/workdir-pool/workdir-pool: under a file */
        w = workdir_new(sub, 1, files, NFILES);
        rc = workdir_fill(w, err, sizeof err);
    }
    assert_true(rc < 0);
    assert_non_null(strstr(err, "/workdir-pool"));
    assert_non_null(strstr(err, strerror(-rc)));
    assert_int_equal(workdir_ready(w), 0);
    workdir_free(w);
}

/* A spare on another file system than the task's directory (EXDEV) switches the pool off for good: the task's
 * directory is made on the spot, and no fill makes spares again. */
static void another_file_system_switches_the_pool_off(void **state)
{
    fixture *f = *state;
    char err[512], other[64] = "/dev/shm/iac-test-workdir-XXXXXX";
    struct stat a, b;
    if (stat("/dev/shm", &b) != 0 || stat(f->root, &a) != 0 || a.st_dev == b.st_dev || !mkdtemp(other))
        skip(); /* no second file system to cross to */
    workdir_pool *w = workdir_new(f->root, 1, files, NFILES);
    assert_int_equal(workdir_fill(w, err, sizeof err), 0);
    char dir[128];
    snprintf(dir, sizeof dir, "%s/ws-1/7", other);
    assert_int_equal(workdir_make(w, dir), 1);
    assert_int_equal(entries(dir), 0);
    assert_int_equal(workdir_ready(w), 0);
    assert_int_equal(workdir_fill(w, err, sizeof err), 0);
    assert_int_equal(workdir_ready(w), 0);
    workdir_free(w);
    fs_rm_rf(other);
}

/* ---- discarding ---- */

typedef struct {
    int  calls, result;
    char path[512];
} removed;

static void on_removed(const char *path, int result, void *arg)
{
    removed *r = arg;
    r->calls++;
    r->result = result;
    snprintf(r->path, sizeof r->path, "%s", path);
}

/* A tree with a subdirectory, files and a link to something outside it (removed as a link). */
static void make_tree(fixture *f, const char *dir)
{
    char p[512];
    assert_int_equal(fs_mkdir_p(dir, 0700), 0);
    snprintf(p, sizeof p, "%s/.terraform/providers", dir);
    assert_int_equal(fs_mkdir_p(p, 0700), 0);
    snprintf(p, sizeof p, "%s/.terraform/providers/provider.bin", dir);
    static char blob[1 << 20];
    assert_int_equal(fs_write_atomic(p, blob, sizeof blob, 0755), 0);
    snprintf(p, sizeof p, "%s/plan.out", dir);
    assert_int_equal(fs_write_atomic(p, "plan", 4, 0644), 0);
    assert_int_equal(fs_write_atomic(at(f, "outside"), "keep", 4, 0644), 0);
    snprintf(p, sizeof p, "%s/link", dir);
    assert_int_equal(symlink(at(f, "outside"), p), 0);
}

/* A finished directory leaves its path at once (a new one can be made there before the loop even runs), is
 * removed on a thread, and the callback says so on the loop; the thread is gone afterwards, and what a link in it
 * pointed to is untouched. */
static void a_discarded_directory_leaves_at_once_and_goes_off_the_loop(void **state)
{
    fixture *f = *state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    workdir_pool *w = workdir_new(f->root, 1, files, NFILES);
    const char *dir = at(f, "workspaces/ws-1/7");
    make_tree(f, dir);
    removed r = { 0 };
    assert_int_equal(workdir_discard(w, &loop, dir, on_removed, &r), 0);
    assert_int_equal(mode_of(dir), -1);
    assert_int_equal(entries(at(f, "workdir-pool")), 1); /* gone-<pid>-0, being removed */
    assert_int_equal(workdir_make(w, dir), 1);           /* the path is free: a new, empty directory */
    assert_int_equal(entries(dir), 0);
    assert_int_equal(r.calls, 0); /* reported on the loop only */
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.result, 0);
    char want[64];
    snprintf(want, sizeof want, "/workdir-pool/gone-%ld-0", (long)getpid());
    assert_non_null(strstr(r.path, want));
    assert_int_equal(entries(at(f, "workdir-pool")), 0);
    assert_int_equal(entries(dir), 0);
    char *kept;
    size_t len;
    assert_int_equal(fs_read_file(at(f, "outside"), 16, &kept, &len), 0);
    assert_string_equal(kept, "keep");
    free(kept);
    for (int i = 0; i < 100 && self_threads() != 1; i++)
        usleep(10000);
    assert_int_equal(self_threads(), 1);
    workdir_free(w);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* Where a directory cannot be renamed into the pool — no pool, another file system — it is removed where it is,
 * on a thread all the same; a path that is not there is reported removed. */
static void a_directory_that_cannot_move_is_removed_where_it_is(void **state)
{
    fixture *f = *state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    const char *dir = at(f, "workspaces/ws-1/8");
    make_tree(f, dir);
    removed r = { 0 }, missing = { 0 }, other = { 0 };
    assert_int_equal(workdir_discard(NULL, &loop, dir, on_removed, &r), 0);
    workdir_pool *w = workdir_new(f->root, 1, files, NFILES);
    assert_int_equal(workdir_discard(w, &loop, at(f, "workspaces/ws-1/none"), on_removed, &missing), 0);
    char shm[64] = "/dev/shm/iac-test-workdir-XXXXXX";
    struct stat a, b;
    bool cross = stat("/dev/shm", &b) == 0 && stat(f->root, &a) == 0 && a.st_dev != b.st_dev && mkdtemp(shm);
    if (cross) {
        char sub[128];
        snprintf(sub, sizeof sub, "%s/t", shm);
        assert_int_equal(fs_mkdir_p(sub, 0700), 0);
        assert_int_equal(workdir_discard(w, &loop, sub, on_removed, &other), 0);
    }
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.result, 0);
    assert_string_equal(r.path, dir);
    assert_int_equal(mode_of(dir), -1);
    assert_int_equal(missing.calls, 1);
    assert_int_equal(missing.result, 0);
    if (cross) {
        assert_int_equal(other.calls, 1);
        assert_int_equal(other.result, 0);
        assert_int_equal(entries(shm), 0);
        fs_rm_rf(shm);
    }
    workdir_free(w);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* What an earlier process left being removed (its gone-<pid>-<n>) goes with the first call, before ours arrive. */
static void an_earlier_process_removals_are_finished(void **state)
{
    fixture *f = *state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    make_tree(f, at(f, "workdir-pool/gone-1-3"));
    workdir_pool *w = workdir_new(f->root, 1, files, NFILES);
    removed r = { 0 };
    make_tree(f, at(f, "workspaces/ws-1/9"));
    assert_int_equal(workdir_discard(w, &loop, at(f, "workspaces/ws-1/9"), on_removed, &r), 0);
    assert_int_equal(mode_of(at(f, "workdir-pool/gone-1-3")), -1);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r.result, 0);
    assert_int_equal(entries(at(f, "workdir-pool")), 0);
    workdir_free(w);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A file name that is not a plain name is refused when the pool is made. */
static void file_names_must_be_plain(void **state)
{
    fixture *f = *state;
    static const char *const bad[] = { "", ".", "..", "a/b", "/abs" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const workdir_file one[] = { { "main.tf.json", 0644 }, { bad[i], 0644 } };
        assert_null(workdir_new(f->root, 1, one, 2));
    }
    workdir_pool *w = workdir_new(f->root, 1000, files, NFILES); /* clamped, not refused */
    assert_non_null(w);
    workdir_free(w);
}

int main(void)
{
    umask(077); /* a spare's modes are exact, not what the umask leaves */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(without_a_spare_the_directory_is_made, setup, teardown),
        cmocka_unit_test_setup_teardown(a_spare_is_renamed_into_place, setup, teardown),
        cmocka_unit_test_setup_teardown(nothing_at_the_path_is_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(leftovers_are_removed_and_a_missing_spare_is_not_missed, setup, teardown),
        cmocka_unit_test_setup_teardown(a_failed_fill_names_the_path, setup, teardown),
        cmocka_unit_test_setup_teardown(another_file_system_switches_the_pool_off, setup, teardown),
        cmocka_unit_test_setup_teardown(a_discarded_directory_leaves_at_once_and_goes_off_the_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(a_directory_that_cannot_move_is_removed_where_it_is, setup, teardown),
        cmocka_unit_test_setup_teardown(an_earlier_process_removals_are_finished, setup, teardown),
        cmocka_unit_test_setup_teardown(file_names_must_be_plain, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
