/* test_agent_options.c — the agent's configuration: upstream variables, our additions, and the messages that
 * name a bad value. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../agent/options.h"
#include "iac/fsutil.h"

#define TOKEN "apt_pool-x_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static int parse(agent_options *o, char **env, int argc, char **argv, char *err)
{
    static char *noargs[] = { "iac-agent", NULL };
    if (!argv) {
        argv = noargs;
        argc = 1;
    }
    err[0] = '\0';
    return agent_options_parse(o, argc, argv, env, err, 1024);
}

/* The three upstream-required variables are enough; everything else has the documented default. */
static void minimal_environment_gives_defaults(void **state)
{
    (void)state;
    char *env[] = { "IAC_API_ENDPOINT=plane.example", "IAC_AGENT_TOKEN=" TOKEN, "IAC_AGENT_NAME=pod-1", NULL };
    agent_options o;
    char err[1024];
    assert_int_equal(parse(&o, env, 0, NULL, err), AGENT_OPTIONS_OK);
    assert_string_equal(o.endpoint, "plane.example");
    assert_string_equal(o.token, TOKEN);
    assert_false(o.https);
    assert_int_equal(o.server_port, 8080);
    assert_int_equal(o.cc_port, 8090); /* SERVER_PORT + 10, the server's own rule (ref §1.2) */
    assert_int_equal(o.slots, 4);
    assert_string_equal(o.data_dir, "/var/lib/iac-agent");
    assert_string_equal(o.listen_host, "0.0.0.0");
    assert_int_equal(o.listen_port, 9180);
    assert_int_equal(o.reservation_ttl_ms, 24LL * 3600 * 1000);
    assert_int_equal(o.task_timeout_ms, 60LL * 60 * 1000);
    assert_int_equal(o.cancel_grace_ms, 30000);
    assert_int_equal(o.drain_timeout_ms, 55LL * 60 * 1000);
    agent_options_free(&o);
}

/* Flags override the environment; CC_SERVER_PORT follows a changed SERVER_PORT unless set itself. */
static void flags_override_environment(void **state)
{
    (void)state;
    char *env[] = { "IAC_API_ENDPOINT=plane", "IAC_AGENT_TOKEN=" TOKEN, "IAC_AGENT_NAME=pod-1", "SERVER_PORT=9000",
                    "IAC_AGENT_SLOTS=6", NULL };
    char *argv[] = { "iac-agent", "--slots", "8", "--protocol=https", NULL };
    agent_options o;
    char err[1024];
    assert_int_equal(parse(&o, env, 4, argv, err), AGENT_OPTIONS_OK);
    assert_int_equal(o.slots, 8);
    assert_true(o.https);
    assert_int_equal(o.cc_port, 9010);
    agent_options_free(&o);
}

/* Every bad value is refused with one message naming the variable, the value and what is allowed. */
static void bad_values_are_named(void **state)
{
    (void)state;
    static const struct { const char *var; const char *expect[3]; } cases[] = {
        { "IAC_AGENT_SLOTS=1", { "IAC_AGENT_SLOTS", "\"1\"", "2" } },
        { "IAC_AGENT_SLOTS=abc", { "IAC_AGENT_SLOTS", "\"abc\"", "64" } },
        { "IAC_AGENT_PROTOCOL=ftp", { "IAC_AGENT_PROTOCOL", "\"ftp\"", "https" } },
        { "SERVER_PORT=70000", { "SERVER_PORT", "70000", "65535" } },
        { "IAC_AGENT_RESERVATION_TTL=soon", { "IAC_AGENT_RESERVATION_TTL", "soon", NULL } },
        { "IAC_AGENT_LOG_FORMAT=xml", { "IAC_AGENT_LOG_FORMAT", "xml", "json" } },
        { "IAC_API_ENDPOINT=http://plane:8080", { "IAC_API_ENDPOINT", "http://plane:8080", "bare host" } },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* The case comes first: like getenv(), the first of two entries with one name wins. */
        char *env[] = { (char *)cases[i].var, "IAC_API_ENDPOINT=plane", "IAC_AGENT_TOKEN=" TOKEN,
                        "IAC_AGENT_NAME=pod-1", NULL };
        agent_options o;
        char err[1024];
        assert_int_equal(parse(&o, env, 0, NULL, err), AGENT_OPTIONS_ERR);
        for (int k = 0; k < 3 && cases[i].expect[k]; k++)
            if (!strstr(err, cases[i].expect[k]))
                fail_msg("case %s: message \"%s\" lacks \"%s\"", cases[i].var, err, cases[i].expect[k]);
        assert_null(strstr(err, TOKEN));
        agent_options_free(&o);
    }
}

/* Missing required settings are named; a token with spaces is refused without printing it. */
static void missing_and_secret_values(void **state)
{
    (void)state;
    agent_options o;
    char err[1024];
    char *no_endpoint[] = { "IAC_AGENT_TOKEN=" TOKEN, "IAC_AGENT_NAME=pod-1", NULL };
    assert_int_equal(parse(&o, no_endpoint, 0, NULL, err), AGENT_OPTIONS_ERR);
    assert_non_null(strstr(err, "IAC_API_ENDPOINT"));
    agent_options_free(&o);
    char *no_token[] = { "IAC_API_ENDPOINT=plane", "IAC_AGENT_NAME=pod-1", NULL };
    assert_int_equal(parse(&o, no_token, 0, NULL, err), AGENT_OPTIONS_ERR);
    assert_non_null(strstr(err, "IAC_AGENT_TOKEN"));
    agent_options_free(&o);
    char *bad_token[] = { "IAC_API_ENDPOINT=plane", "IAC_AGENT_NAME=pod-1", "IAC_AGENT_TOKEN=apt_x secret-part",
                          NULL };
    assert_int_equal(parse(&o, bad_token, 0, NULL, err), AGENT_OPTIONS_ERR);
    assert_non_null(strstr(err, "IAC_AGENT_TOKEN"));
    assert_null(strstr(err, "secret-part"));
    agent_options_free(&o);
}

/* The token file is read (trailing newline trimmed) and re-read: 1 when it changed, 0 when not. */
static void token_file_is_read_and_reread(void **state)
{
    (void)state;
    char dir[] = "/tmp/iac-test-opts-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], envfile[300];
    snprintf(path, sizeof path, "%s/token", dir);
    snprintf(envfile, sizeof envfile, "IAC_AGENT_TOKEN_FILE=%s", path);
    assert_int_equal(fs_write_atomic(path, TOKEN "\n", strlen(TOKEN) + 1, 0600), 0);
    char *env[] = { "IAC_API_ENDPOINT=plane", "IAC_AGENT_NAME=pod-1", envfile, NULL };
    agent_options o;
    char err[1024];
    assert_int_equal(parse(&o, env, 0, NULL, err), AGENT_OPTIONS_OK);
    assert_string_equal(o.token, TOKEN);
    assert_int_equal(agent_options_reload_token(&o, err, sizeof err), 0);
    assert_int_equal(fs_write_atomic(path, "apt_new_token\n", 14, 0600), 0);
    assert_int_equal(agent_options_reload_token(&o, err, sizeof err), 1);
    assert_string_equal(o.token, "apt_new_token");
    assert_int_equal(fs_write_atomic(path, "  \n", 3, 0600), 0);
    assert_int_equal(agent_options_reload_token(&o, err, sizeof err), -1);
    assert_string_equal(o.token, "apt_new_token"); /* the old token is kept */
    agent_options_free(&o);
    unlink(path);
    char *missing[] = { "IAC_API_ENDPOINT=plane", "IAC_AGENT_NAME=pod-1", envfile, NULL };
    assert_int_equal(parse(&o, missing, 0, NULL, err), AGENT_OPTIONS_ERR);
    assert_non_null(strstr(err, "IAC_AGENT_TOKEN_FILE"));
    agent_options_free(&o);
    rmdir(dir);
}

/* --help and --version are recognised before validation (they work without any configuration). */
static void help_and_version(void **state)
{
    (void)state;
    char *env[] = { NULL };
    char *help[] = { "iac-agent", "--help", NULL };
    char *version[] = { "iac-agent", "--version", NULL };
    agent_options o;
    char err[1024];
    assert_int_equal(parse(&o, env, 2, help, err), AGENT_OPTIONS_HELP);
    agent_options_free(&o);
    assert_int_equal(parse(&o, env, 2, version, err), AGENT_OPTIONS_VERSION);
    agent_options_free(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(minimal_environment_gives_defaults),
        cmocka_unit_test(flags_override_environment),
        cmocka_unit_test(bad_values_are_named),
        cmocka_unit_test(missing_and_secret_values),
        cmocka_unit_test(token_file_is_read_and_reread),
        cmocka_unit_test(help_and_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
