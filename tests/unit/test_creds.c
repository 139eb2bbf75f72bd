/* test_creds.c — the registry credentials file (ref §1.5): content, modes, and the empty-object rules. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../agent/creds.h"
#include "iac/fsutil.h"

static int setup_home(void **state)
{
    char tmpl[] = "/tmp/iac-test-creds-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    *state = strdup(tmpl);
    return 0;
}

static int teardown_home(void **state)
{
    fs_rm_rf(*state);
    free(*state);
    return 0;
}

static void creds_path(const char *home, char *out, size_t n)
{
    snprintf(out, n, "%s/.terraform.d/credentials.tfrc.json", home);
}

/* The file holds {"credentials": …} indented by two spaces with sorted keys, as the Go agent writes it; the
 * directory is 0700 and the file 0600. */
static void credentials_are_written_like_upstream(void **state)
{
    const char *home = *state;
    const char *body = "{\"credentials\":{\"b.example\":{\"token\":\"t2\"},\"app.terraform.io\":{\"token\":\"t1\"}}}";
    char err[256], path[512];
    int count = -1;
    assert_int_equal(creds_apply(home, body, strlen(body), false, &count, err, sizeof err), CREDS_WRITTEN);
    assert_int_equal(count, 2);
    creds_path(home, path, sizeof path);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(fs_read_file(path, 4096, &text, &len), 0);
    assert_string_equal(text, "{\n"
                              "  \"credentials\": {\n"
                              "    \"app.terraform.io\": {\n"
                              "      \"token\": \"t1\"\n"
                              "    },\n"
                              "    \"b.example\": {\n"
                              "      \"token\": \"t2\"\n"
                              "    }\n"
                              "  }\n"
                              "}");
    free(text);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/.terraform.d", home);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
}

/* An empty object leaves an existing file alone at start-up and on the periodic refresh, and deletes it on a
 * refresh_credentials command. */
static void empty_credentials_keep_or_delete(void **state)
{
    const char *home = *state;
    const char *full = "{\"credentials\":{\"h\":{\"token\":\"t\"}}}";
    const char *empty = "{\"credentials\":{}}";
    char err[256], path[512];
    int count;
    creds_path(home, path, sizeof path);
    assert_int_equal(creds_apply(home, full, strlen(full), false, &count, err, sizeof err), CREDS_WRITTEN);
    assert_int_equal(creds_apply(home, empty, strlen(empty), false, &count, err, sizeof err), CREDS_UNCHANGED);
    assert_int_equal(count, 0);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(creds_apply(home, empty, strlen(empty), true, &count, err, sizeof err), CREDS_DELETED);
    assert_int_not_equal(access(path, F_OK), 0);
    /* Deleting what is not there is fine too. */
    assert_int_equal(creds_apply(home, empty, strlen(empty), true, &count, err, sizeof err), CREDS_DELETED);
}

/* A non-object credentials value or a body that is not JSON changes nothing and says why, without secrets. */
static void malformed_answers_change_nothing(void **state)
{
    const char *home = *state;
    static const char *const bad[] = { "{\"credentials\":[\"x\"]}", "{\"credentials\":\"secret-value\"}", "nope",
                                       "{}" };
    char err[256], path[512];
    int count;
    creds_path(home, path, sizeof path);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(creds_apply(home, bad[i], strlen(bad[i]), true, &count, err, sizeof err), -1);
        assert_true(err[0] != '\0');
        assert_null(strstr(err, "secret-value"));
        assert_int_not_equal(access(path, F_OK), 0);
    }
    assert_int_equal(creds_apply(NULL, "{}", 2, false, &count, err, sizeof err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(credentials_are_written_like_upstream, setup_home, teardown_home),
        cmocka_unit_test_setup_teardown(empty_credentials_keep_or_delete, setup_home, teardown_home),
        cmocka_unit_test_setup_teardown(malformed_answers_change_nothing, setup_home, teardown_home),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
