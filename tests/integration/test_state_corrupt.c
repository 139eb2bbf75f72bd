/* test_state_corrupt.c — a corrupt state file never keeps the agent from starting: it is moved aside (kept for a
 * post-mortem), reported in the log, and the agent registers and heartbeats as usual. */
#include "harness.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define GARBAGE "{\"slots\": [garbage-4b1d \x01\x02 not json"

/* The name of a file in dir, other than state.json, whose content is exactly GARBAGE; "" when none. */
static void find_moved_garbage(const char *dir, char *name, size_t namelen) {
    name[0] = '\0';
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, "state.json") == 0 || strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[HARNESS_PATH_LEN + 300];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t len;
        char *s = harness_read_file(path, &len);
        bool same = s && len == strlen(GARBAGE) && memcmp(s, GARBAGE, len) == 0;
        free(s);
        if (same) {
            snprintf(name, namelen, "%s", e->d_name);
            break;
        }
    }
    closedir(d);
}

/* A garbage {data dir}/state.json: the agent heartbeats within 1 s of its start, logs that the state file was
 * corrupt, and the garbage is found beside it under another name (state.json, if rewritten, is not the garbage). */
static void corrupt_state_moved_aside_agent_starts(void **state) {
    harness *h = *state;
    harness_devplane dp = { 0 };
    harness_agent ag;
    harness_env env = { .n = 0 };
    char path[HARNESS_PATH_LEN + 16], moved[256];

    harness_devplane_init(h, &dp);
    harness_agent_env(h, &ag, &dp, &env);
    snprintf(path, sizeof path, "%s/state.json", ag.data_dir);
    assert_int_equal(harness_write_file(path, GARBAGE, strlen(GARBAGE)), 0);
    int64_t ms = harness_start_pair(h, &dp, &ag, &env, NULL, 0);
    harness_env_free(&env);
    print_message("first heartbeat %lld ms after the agent's start\n", (long long)ms);
    assert_true(ms >= 0);
    assert_true(ms <= 1000);

    assert_true(harness_file_contains_nocase(ag.proc->err_path, "corrupt"));
    assert_true(harness_file_contains(ag.proc->err_path, "state"));
    find_moved_garbage(ag.data_dir, moved, sizeof moved);
    print_message("garbage moved to %s\n", moved[0] ? moved : "(nowhere)");
    assert_true(moved[0] != '\0');
    assert_false(harness_file_contains(path, "garbage-4b1d"));
    assert_true(harness_running(ag.proc));
    harness_done(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(corrupt_state_moved_aside_agent_starts, harness_setup, harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
