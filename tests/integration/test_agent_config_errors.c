/* test_agent_config_errors.c — bad configuration stops the agent at once with status 2 and one stderr line that
 * names the variable and the bad value (never a token); --help documents the variables. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* A token that must never show up in any output; it is set in every case below. */
#define SECRET_TOKEN "apt_pool-it_5ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7"

/* One bad input per case: set name to value (NULL: unset it); stderr must name the variable and, when shown,
 * contain `shown` (the house format quotes the value: IAC_AGENT_SLOTS="1"). */
static const struct {
    const char *name, *value, *shown;
} bad_inputs[] = {
    { "IAC_AGENT_SLOTS", "1", "IAC_AGENT_SLOTS=\"1\"" },       /* below the minimum of 2 */
    { "IAC_AGENT_SLOTS", "abc", "IAC_AGENT_SLOTS=\"abc\"" },   /* not a number */
    { "IAC_AGENT_SLOTS", "65", "IAC_AGENT_SLOTS=\"65\"" },     /* above the maximum of 64 */
    { "IAC_API_ENDPOINT", NULL, NULL },                        /* required */
    { "IAC_AGENT_PROTOCOL", "ftp", "IAC_AGENT_PROTOCOL=\"ftp\"" },
};

static harness_proc *start_with(harness *h, const char *name, const char *value) {
    harness_devplane dp; /* never started: configuration is checked before any network call */
    harness_agent ag;
    harness_env env = { .n = 0 };
    harness_devplane_init(h, &dp);
    harness_agent_env(h, &ag, &dp, &env);
    harness_env_set(&env, "IAC_AGENT_TOKEN", SECRET_TOKEN);
    if (value)
        harness_env_set(&env, name, value);
    else
        harness_env_unset(&env, name);
    harness_proc *p = harness_agent_start(h, &ag, &env);
    harness_env_free(&env);
    return p;
}

/* The agent exited 2 within 1 s with exactly one stderr line that contains each of needles, and never printed
 * the token. */
static void assert_config_error(harness_proc *p, const char *what, const char *needle1, const char *needle2) {
    int64_t ms;
    int code = harness_wait_exit(p, 3000, &ms);
    char *err = harness_read_file(p->err_path, NULL);
    print_message("%s: exit %d after %lld ms, stderr: %s", what, code, (long long)ms, err ? err : "(none)\n");
    free(err);
    assert_int_equal(code, 2);
    assert_true(ms < 1000);
    assert_int_equal(harness_count_lines(p->err_path), 1);
    if (needle1) assert_true(harness_file_contains(p->err_path, needle1));
    if (needle2) assert_true(harness_file_contains(p->err_path, needle2));
    assert_false(harness_file_contains(p->err_path, SECRET_TOKEN));
    assert_false(harness_file_contains(p->out_path, SECRET_TOKEN));
    assert_false(harness_file_contains(p->err_path, strrchr(SECRET_TOKEN, '_') + 1));
}

/* Each bad value of bad_inputs: exit 2 in under 1 s, one stderr line naming the variable and the value. */
static void bad_values_exit_2_with_one_line(void **state) {
    harness *h = *state;
    for (size_t i = 0; i < sizeof bad_inputs / sizeof bad_inputs[0]; i++) {
        harness_proc *p = start_with(h, bad_inputs[i].name, bad_inputs[i].value);
        assert_non_null(p);
        assert_config_error(p, bad_inputs[i].name, bad_inputs[i].name, bad_inputs[i].shown);
    }
    harness_done(h);
}

/* A token that cannot be sent in an Authorization header (it holds a newline) is a configuration error, and the
 * message names IAC_AGENT_TOKEN without printing the value. */
static void bad_token_is_named_never_printed(void **state) {
    harness *h = *state;
    harness_proc *p = start_with(h, "IAC_AGENT_TOKEN", SECRET_TOKEN "\nX-Injected: 1");
    assert_non_null(p);
    assert_config_error(p, "IAC_AGENT_TOKEN", "IAC_AGENT_TOKEN", NULL);
    assert_false(harness_file_contains(p->err_path, "X-Injected"));
    harness_done(h);
}

/* Neither IAC_AGENT_TOKEN nor IAC_AGENT_TOKEN_FILE: exit 2 naming IAC_AGENT_TOKEN. */
static void missing_token_exits_2(void **state) {
    harness *h = *state;
    harness_proc *p = start_with(h, "IAC_AGENT_TOKEN", NULL);
    assert_non_null(p);
    assert_config_error(p, "no token", "IAC_AGENT_TOKEN", NULL);
    harness_done(h);
}

/* --help exits 0 at once and lists IAC_AGENT_SLOTS. */
static void help_exits_0_and_lists_variables(void **state) {
    harness *h = *state;
    char bin[HARNESS_PATH_LEN + 16];
    harness_bin(h, "iac-agent", bin, sizeof bin);
    char *argv[] = { bin, "--help", NULL };
    harness_proc *p = harness_spawn(h, "agent-help", argv, NULL);
    assert_non_null(p);
    int64_t ms;
    assert_int_equal(harness_wait_exit(p, 3000, &ms), 0);
    assert_true(ms < 1000);
    assert_true(harness_file_contains(p->out_path, "IAC_AGENT_SLOTS") ||
                harness_file_contains(p->err_path, "IAC_AGENT_SLOTS"));
    harness_done(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(bad_values_exit_2_with_one_line, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(bad_token_is_named_never_printed, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(missing_token_exits_2, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(help_exits_0_and_lists_variables, harness_setup, harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
