/* test_config.c — the table-driven configuration parser: every kind, precedence (flag > environment > default),
 * every message form, durations, --help/--version, positionals and the help listing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iac/config.h"

typedef struct {
    const char *endpoint, *token, *name;
    char listen_host[CFG_HOST_MAX];
    int64_t     slots, ttl, listen_port, server_port, retries;
    int         log_format, log_level;
    bool        dry_run;
} conf;

enum { O_ENDPOINT, O_TOKEN, O_NAME, O_SLOTS, O_TTL, O_FORMAT, O_LEVEL, O_LISTEN, O_PORT, O_DRY, O_RETRIES, O_N };

/* A table shaped like the agent's. */
static void make_table(conf *c, cfg_option o[O_N])
{
    memset(c, 0, sizeof *c);
    c->retries = -7; /* no default: left as it is */
    cfg_option t[O_N] = {
        [O_ENDPOINT] = { .env = "IAC_API_ENDPOINT", .flag = "api-endpoint", .kind = CFG_STRING, .dst = &c->endpoint,
                         .help = "URL of the control plane, e.g. https://terranova.example.com", .required = true },
        [O_TOKEN] = { .env = "IAC_AGENT_TOKEN", .flag = "token", .kind = CFG_STRING, .dst = &c->token, .min = 10,
                      .what = "token", .help = "pool token", .secret = true },
        [O_NAME] = { .env = "IAC_AGENT_NAME", .flag = "name", .kind = CFG_STRING, .dst = &c->name, .def = "agent",
                     .min = 1, .help = "agent name" },
        [O_SLOTS] = { .env = "IAC_AGENT_SLOTS", .flag = "slots", .kind = CFG_INT, .dst = &c->slots, .def = "4",
                      .min = 2, .max = 64, .what = "slots", .help = "task slots in this pod" },
        [O_TTL] = { .env = "IAC_AGENT_RESERVATION_TTL", .flag = "reservation-ttl", .kind = CFG_DURATION,
                    .dst = &c->ttl, .def = "24h", .min = 60000, .max = 168 * 3600000LL, .what = "reservation TTL",
                    .help = "how long slot 0 stays reserved" },
        [O_FORMAT] = { .env = "IAC_AGENT_LOG_FORMAT", .flag = "log-format", .kind = CFG_ENUM, .dst = &c->log_format,
                       .def = "text", .allowed = "text|json", .help = "log line format" },
        [O_LEVEL] = { .env = "IAC_AGENT_LOG_LEVEL", .flag = "log-level", .kind = CFG_ENUM, .dst = &c->log_level,
                      .def = "info", .allowed = "debug|info|warn|error", .what = "log level", .help = "minimum level" },
        [O_LISTEN] = { .env = "IAC_AGENT_LISTEN", .flag = "listen", .kind = CFG_HOSTPORT, .dst = c->listen_host,
                       .dst2 = &c->listen_port, .def = "0.0.0.0:9180", .min = 1, .what = "listen address",
                       .help = "status server address" },
        [O_PORT] = { .env = "SERVER_PORT", .flag = "server-port", .kind = CFG_PORT, .dst = &c->server_port,
                     .def = "8080", .min = 1, .help = "upstream server port" },
        [O_DRY] = { .env = NULL, .flag = "dry-run", .kind = CFG_BOOL, .dst = &c->dry_run, .def = "false",
                    .help = "do nothing" },
        [O_RETRIES] = { .env = "IAC_RETRIES", .flag = NULL, .kind = CFG_INT, .dst = &c->retries, .min = 0,
                        .max = 10, .help = "retries" },
    };
    memcpy(o, t, sizeof t);
}

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])) - 1)

static char env_endpoint[] = "IAC_API_ENDPOINT=http://127.0.0.1:8080";

/* Parses with the table above; returns the result and leaves the message in err. */
static int parse(conf *c, int argc, char **argv, char **envp, char *err, size_t errlen)
{
    cfg_option o[O_N];
    make_table(c, o);
    return cfg_parse(o, O_N, argc, argv, envp, NULL, NULL, err, errlen);
}

/* With only the required setting given, every other destination receives its default; an option without a
 * default keeps the value it had. */
static void defaults_fill_every_destination(void **state)
{
    (void)state;
    conf c;
    char *argv[] = { "iac-agent", NULL };
    char *envp[] = { env_endpoint, NULL };
    char err[256];
    assert_int_equal(parse(&c, ARGC(argv), argv, envp, err, sizeof err), CFG_OK);
    assert_string_equal(err, "");
    assert_string_equal(c.endpoint, "http://127.0.0.1:8080");
    assert_null(c.token);
    assert_string_equal(c.name, "agent");
    assert_int_equal(c.slots, 4);
    assert_int_equal(c.ttl, 24 * 3600000LL);
    assert_int_equal(c.log_format, 0);
    assert_int_equal(c.log_level, 1);
    assert_string_equal(c.listen_host, "0.0.0.0");
    assert_int_equal(c.listen_port, 9180);
    assert_int_equal(c.server_port, 8080);
    assert_false(c.dry_run);
    assert_int_equal(c.retries, -7);
}

/* The environment overrides defaults, and string destinations point at the environment's own text. */
static void environment_overrides_defaults(void **state)
{
    (void)state;
    conf c;
    char *argv[] = { "iac-agent", NULL };
    char *envp[] = { "PATH=/bin",
                     env_endpoint,
                     "IAC_AGENT_TOKEN=apt_pool_0123456789",
                     "IAC_AGENT_SLOTS=8",
                     "IAC_AGENT_RESERVATION_TTL=1h30m",
                     "IAC_AGENT_LOG_FORMAT=json",
                     "IAC_AGENT_LOG_LEVEL=debug",
                     "IAC_AGENT_LISTEN=127.0.0.5:9190",
                     "SERVER_PORT=443",
                     "IAC_RETRIES=3",
                     NULL };
    char err[256];
    assert_int_equal(parse(&c, ARGC(argv), argv, envp, err, sizeof err), CFG_OK);
    assert_ptr_equal(c.token, envp[2] + strlen("IAC_AGENT_TOKEN="));
    assert_int_equal(c.slots, 8);
    assert_int_equal(c.ttl, 5400000);
    assert_int_equal(c.log_format, 1);
    assert_int_equal(c.log_level, 0);
    assert_string_equal(c.listen_host, "127.0.0.5");
    assert_int_equal(c.listen_port, 9190);
    assert_int_equal(c.server_port, 443);
    assert_int_equal(c.retries, 3);
}

/* Flags override the environment, in both "--flag=value" and "--flag value" forms, and the last flag wins. */
static void flags_override_environment_in_both_forms(void **state)
{
    (void)state;
    conf c;
    char *argv[] = { "iac-agent", "--slots=16", "--log-format", "json", "--listen", ":9000", "--slots", "32",
                     "--name=", NULL };
    char *envp[] = { env_endpoint, "IAC_AGENT_SLOTS=8", "IAC_AGENT_LOG_FORMAT=text", NULL };
    char err[256];
    assert_int_equal(parse(&c, ARGC(argv), argv, envp, err, sizeof err), CFG_ERR);
    /* "--name=" is an explicit empty value, judged like any other: the name may not be empty. */
    assert_string_equal(err, "--name=\"\" is not allowed: must not be empty");

    argv[ARGC(argv) - 1] = "--name=pod-1";
    assert_int_equal(parse(&c, ARGC(argv), argv, envp, err, sizeof err), CFG_OK);
    assert_int_equal(c.slots, 32);
    assert_int_equal(c.log_format, 1);
    assert_string_equal(c.listen_host, "0.0.0.0");
    assert_int_equal(c.listen_port, 9000);
    assert_string_equal(c.name, "pod-1");
}

/* An empty environment variable counts as unset: the default applies, and a required one is still missing. */
static void empty_environment_variable_counts_as_unset(void **state)
{
    (void)state;
    conf c;
    char *argv[] = { "iac-agent", NULL };
    char *envp[] = { "IAC_API_ENDPOINT=", "IAC_AGENT_SLOTS=", "IAC_AGENT_NAME=", NULL };
    char err[256];
    assert_int_equal(parse(&c, ARGC(argv), argv, envp, err, sizeof err), CFG_ERR);
    assert_string_equal(err, "IAC_API_ENDPOINT is required: URL of the control plane, e.g. "
                             "https://terranova.example.com");
    envp[0] = env_endpoint;
    assert_int_equal(parse(&c, ARGC(argv), argv, envp, err, sizeof err), CFG_OK);
    assert_int_equal(c.slots, 4);
    assert_string_equal(c.name, "agent");
}

/* A required option may come from a flag instead; an explicitly empty one is still missing. */
static void required_option_is_satisfied_by_a_flag_only_when_not_empty(void **state)
{
    (void)state;
    conf c;
    char *argv[] = { "iac-agent", "--api-endpoint", "http://x", NULL };
    char *envp[] = { NULL };
    char err[256];
    assert_int_equal(parse(&c, ARGC(argv), argv, envp, err, sizeof err), CFG_OK);
    assert_string_equal(c.endpoint, "http://x");
    argv[2] = "";
    assert_int_equal(parse(&c, ARGC(argv), argv, envp, err, sizeof err), CFG_ERR);
    assert_non_null(strstr(err, "IAC_API_ENDPOINT is required: "));
    assert_int_equal(parse(&c, ARGC(argv), argv, NULL, err, sizeof err), CFG_ERR); /* no environment at all */
}

/* A bad environment value that a flag overrides is not judged: flags win. */
static void overridden_environment_value_is_not_judged(void **state)
{
    (void)state;
    conf c;
    char *argv[] = { "iac-agent", "--slots", "3", NULL };
    char *envp[] = { env_endpoint, "IAC_AGENT_SLOTS=lots", NULL };
    char err[256];
    assert_int_equal(parse(&c, ARGC(argv), argv, envp, err, sizeof err), CFG_OK);
    assert_int_equal(c.slots, 3);
}

/* Whole numbers: limits inclusive; the message names the source, quotes the value and states the range. */
static void int_values_and_messages(void **state)
{
    (void)state;
    static const struct {
        const char *env;
        int         rc;
        int64_t     value;
    } cases[] = {
        { "IAC_AGENT_SLOTS=2", CFG_OK, 2 },     { "IAC_AGENT_SLOTS=64", CFG_OK, 64 },
        { "IAC_AGENT_SLOTS=007", CFG_OK, 7 },   { "IAC_AGENT_SLOTS=1", CFG_ERR, 0 },
        { "IAC_AGENT_SLOTS=65", CFG_ERR, 0 },   { "IAC_AGENT_SLOTS=-4", CFG_ERR, 0 },
        { "IAC_AGENT_SLOTS=4x", CFG_ERR, 0 },   { "IAC_AGENT_SLOTS= 4", CFG_ERR, 0 },
        { "IAC_AGENT_SLOTS=+4", CFG_ERR, 0 },   { "IAC_AGENT_SLOTS=4.0", CFG_ERR, 0 },
        { "IAC_AGENT_SLOTS=99999999999999999999", CFG_ERR, 0 },
    };
    char *argv[] = { "iac-agent", NULL };
    char err[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        conf c;
        char *envp[] = { env_endpoint, (char *)cases[i].env, NULL };
        assert_int_equal(parse(&c, ARGC(argv), argv, envp, err, sizeof err), cases[i].rc);
        if (cases[i].rc == CFG_OK) {
            assert_int_equal(c.slots, cases[i].value);
        } else {
            char want[256];
            snprintf(want, sizeof want, "%.15s=\"%s\" is not allowed: slots must be a whole number from 2 to 64",
                     cases[i].env, cases[i].env + 16);
            assert_string_equal(err, want);
        }
    }

    conf c;
    char *argv2[] = { "iac-agent", "--slots=1", NULL };
    char *envp[] = { env_endpoint, NULL };
    assert_int_equal(parse(&c, ARGC(argv2), argv2, envp, err, sizeof err), CFG_ERR);
    assert_string_equal(err, "--slots=\"1\" is not allowed: slots must be a whole number from 2 to 64");

    /* Limits of 0..0 mean "no limits"; a one-sided limit says so. */
    int64_t v = 0;
    cfg_option free_int = { .env = "N", .kind = CFG_INT, .dst = &v };
    char *e1[] = { "N=-9000000000", NULL };
    assert_int_equal(cfg_parse(&free_int, 1, 1, argv, e1, NULL, NULL, err, sizeof err), CFG_OK);
    assert_int_equal(v, -9000000000LL);
    cfg_option at_least = { .env = "N", .kind = CFG_INT, .dst = &v, .min = 1, .max = INT64_MAX, .what = "workers" };
    char *e2[] = { "N=0", NULL };
    assert_int_equal(cfg_parse(&at_least, 1, 1, argv, e2, NULL, NULL, err, sizeof err), CFG_ERR);
    assert_string_equal(err, "N=\"0\" is not allowed: workers must be a whole number of at least 1");
}

/* Enumerations: the index of the matching word; the message lists the words, with `what` when the table has it. */
static void enum_values_and_messages(void **state)
{
    (void)state;
    conf c;
    char *envp[] = { env_endpoint, NULL };
    char err[256];
    char *a1[] = { "iac-agent", "--log-format=xml", NULL };
    assert_int_equal(parse(&c, ARGC(a1), a1, envp, err, sizeof err), CFG_ERR);
    assert_string_equal(err, "--log-format=\"xml\" is not allowed: must be one of text, json");

    char *a2[] = { "iac-agent", NULL };
    char *e2[] = { env_endpoint, "IAC_AGENT_LOG_LEVEL=loud", NULL };
    assert_int_equal(parse(&c, ARGC(a2), a2, e2, err, sizeof err), CFG_ERR);
    assert_string_equal(err, "IAC_AGENT_LOG_LEVEL=\"loud\" is not allowed: log level must be one of debug, info, "
                             "warn, error");

    char *a3[] = { "iac-agent", "--log-level", "error", NULL };
    assert_int_equal(parse(&c, ARGC(a3), a3, envp, err, sizeof err), CFG_OK);
    assert_int_equal(c.log_level, 3);
    char *a4[] = { "iac-agent", "--log-level", "inf", NULL }; /* a prefix of a word is not the word */
    assert_int_equal(parse(&c, ARGC(a4), a4, envp, err, sizeof err), CFG_ERR);
}

/* Booleans: a bare flag means true; the usual words in any case; anything else is refused with the list. */
static void bool_values_and_messages(void **state)
{
    (void)state;
    static const struct {
        const char *arg;
        int         rc;
        bool        value;
    } cases[] = {
        { "--dry-run", CFG_OK, true },        { "--dry-run=1", CFG_OK, true },   { "--dry-run=TRUE", CFG_OK, true },
        { "--dry-run=yes", CFG_OK, true },    { "--dry-run=on", CFG_OK, true },  { "--dry-run=0", CFG_OK, false },
        { "--dry-run=false", CFG_OK, false }, { "--dry-run=No", CFG_OK, false }, { "--dry-run=off", CFG_OK, false },
        { "--dry-run=maybe", CFG_ERR, false }, { "--dry-run=", CFG_ERR, false },
    };
    char *envp[] = { env_endpoint, NULL };
    char err[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        conf c;
        char *argv[] = { "iac-agent", (char *)cases[i].arg, NULL };
        assert_int_equal(parse(&c, ARGC(argv), argv, envp, err, sizeof err), cases[i].rc);
        if (cases[i].rc == CFG_OK)
            assert_int_equal(c.dry_run, cases[i].value);
    }
    conf c;
    char *argv[] = { "iac-agent", "--dry-run=maybe", NULL };
    assert_int_equal(parse(&c, ARGC(argv), argv, envp, err, sizeof err), CFG_ERR);
    assert_string_equal(err, "--dry-run=\"maybe\" is not allowed: must be one of true, false, 1, 0, yes, no, on, off");

    /* A bare bool flag does not swallow the next argument. */
    char *a2[] = { "iac-agent", "--dry-run", "--slots", "5", NULL };
    assert_int_equal(parse(&c, ARGC(a2), a2, envp, err, sizeof err), CFG_OK);
    assert_true(c.dry_run);
    assert_int_equal(c.slots, 5);
}

/* Durations: the accepted spellings and their values in milliseconds. */
static void durations_parse_to_milliseconds(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t     ms;
    } ok[] = {
        { "500ms", 500 },     { "30s", 30000 },     { "15m", 900000 },        { "24h", 86400000 },
        { "1h30m", 5400000 }, { "30", 30000 },      { "0", 0 },               { "0s", 0 },
        { "1.5s", 1500 },     { "0.25h", 900000 },  { "1m30s500ms", 90500 },  { "2h0m5s", 7200000 + 5000 },
        { "1.001s", 1001 },   { "10ms", 10 },       { "9223372036854775807ms", INT64_MAX },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t ms = -1;
        assert_int_equal(cfg_parse_duration(ok[i].s, &ms), 0);
        assert_int_equal(ms, ok[i].ms);
    }
    static const char *const bad[] = {
        "",      "-5s",   "+5s",
        "s",     "5x",    "5 s",    " 5s",  "5s ",   "1h30",   "30m1h", "1m1m",   "1.5",  ".5s",  "1.s",
        "1.0005s", "1.5ms", "5d",  "1e3s", "9223372036854775808ms", "9223372036854776s", "99999999999999999999",
        "0x10s", "1h-30m", "ms",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = -1;
        assert_int_equal(cfg_parse_duration(bad[i], &ms), -1);
        assert_int_equal(ms, -1);
    }
    assert_int_equal(cfg_parse_duration(NULL, &(int64_t){ 0 }), -1);
}

/* A duration option outside its limits says what is allowed, with the limits as durations. */
static void duration_option_limits_message(void **state)
{
    (void)state;
    conf c;
    char *argv[] = { "iac-agent", NULL };
    char err[256];
    char *e1[] = { env_endpoint, "IAC_AGENT_RESERVATION_TTL=30s", NULL };
    assert_int_equal(parse(&c, ARGC(argv), argv, e1, err, sizeof err), CFG_ERR);
    assert_string_equal(err, "IAC_AGENT_RESERVATION_TTL=\"30s\" is not allowed: reservation TTL must be a duration "
                             "such as 500ms, 30s, 15m or 1h30m, from 1m to 168h");
    char *e2[] = { env_endpoint, "IAC_AGENT_RESERVATION_TTL=1 day", NULL };
    assert_int_equal(parse(&c, ARGC(argv), argv, e2, err, sizeof err), CFG_ERR);
    assert_non_null(strstr(err, "IAC_AGENT_RESERVATION_TTL=\"1 day\" is not allowed: "));
    char *e3[] = { env_endpoint, "IAC_AGENT_RESERVATION_TTL=168h", NULL };
    assert_int_equal(parse(&c, ARGC(argv), argv, e3, err, sizeof err), CFG_OK);
    assert_int_equal(c.ttl, 168 * 3600000LL);
}

/* host:port, :port and [v6]:port fill host and port; anything else is refused with what is allowed. */
static void hostport_values_and_messages(void **state)
{
    (void)state;
    static const struct {
        const char *v, *host;
        int64_t     port;
    } ok[] = {
        { "127.0.0.5:9190", "127.0.0.5", 9190 },
        { ":1", "0.0.0.0", 1 },
        { "[::1]:80", "::1", 80 },
        { "status.local:65535", "status.local", 65535 },
    };
    static const char *const bad[] = {
        "localhost", "host:", "host:0", "host:65536", "a b:80", "::1:80", "[::1]80", "[]:80", ":", ":80x",
        "host:-1",   "",
    };
    char *argv[] = { "iac-agent", "--listen", NULL, NULL };
    char *envp[] = { env_endpoint, NULL };
    char err[256];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        conf c;
        argv[2] = (char *)ok[i].v;
        assert_int_equal(parse(&c, 3, argv, envp, err, sizeof err), CFG_OK);
        assert_string_equal(c.listen_host, ok[i].host);
        assert_int_equal(c.listen_port, ok[i].port);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        conf c;
        argv[2] = (char *)bad[i];
        assert_int_equal(parse(&c, 3, argv, envp, err, sizeof err), CFG_ERR);
        char want[256];
        snprintf(want, sizeof want,
                 "--listen=\"%s\" is not allowed: listen address must be host:port or :port with a port from 1 to "
                 "65535",
                 bad[i]);
        assert_string_equal(err, want);
    }

    /* The host is copied into the caller's buffer: it stays valid after its source is gone. */
    char src[] = "10.1.2.3:80";
    argv[2] = src;
    conf c1, c2;
    assert_int_equal(parse(&c1, 3, argv, envp, err, sizeof err), CFG_OK);
    memset(src, 'x', sizeof src - 1);
    assert_string_equal(c1.listen_host, "10.1.2.3");
    argv[2] = "10.1.2.4:81";
    assert_int_equal(parse(&c2, 3, argv, envp, err, sizeof err), CFG_OK);
    assert_string_equal(c2.listen_host, "10.1.2.4");
    assert_string_equal(c1.listen_host, "10.1.2.3");
}

/* Ports: 1..65535, or 0..65535 when the table's minimum is 0. */
static void port_values_and_messages(void **state)
{
    (void)state;
    conf c;
    char *argv[] = { "iac-agent", NULL };
    char err[256];
    char *e1[] = { env_endpoint, "SERVER_PORT=0", NULL };
    assert_int_equal(parse(&c, ARGC(argv), argv, e1, err, sizeof err), CFG_ERR);
    assert_string_equal(err, "SERVER_PORT=\"0\" is not allowed: must be a port number from 1 to 65535");
    char *e2[] = { env_endpoint, "SERVER_PORT=65536", NULL };
    assert_int_equal(parse(&c, ARGC(argv), argv, e2, err, sizeof err), CFG_ERR);
    char *e3[] = { env_endpoint, "SERVER_PORT=http", NULL };
    assert_int_equal(parse(&c, ARGC(argv), argv, e3, err, sizeof err), CFG_ERR);
    char *e4[] = { env_endpoint, "SERVER_PORT=65535", NULL };
    assert_int_equal(parse(&c, ARGC(argv), argv, e4, err, sizeof err), CFG_OK);
    assert_int_equal(c.server_port, 65535);

    int64_t p = -1;
    cfg_option ephemeral = { .env = "P", .kind = CFG_PORT, .dst = &p, .min = 0 };
    char *e5[] = { "P=0", NULL };
    assert_int_equal(cfg_parse(&ephemeral, 1, 1, argv, e5, NULL, NULL, err, sizeof err), CFG_OK);
    assert_int_equal(p, 0);
}

/* A secret's value never appears in a message, whether it came from the environment or a flag. */
static void secret_value_never_appears_in_a_message(void **state)
{
    (void)state;
    conf c;
    char *argv[] = { "iac-agent", NULL };
    char err[256];
    char *e1[] = { env_endpoint, "IAC_AGENT_TOKEN=hunter2", NULL };
    assert_int_equal(parse(&c, ARGC(argv), argv, e1, err, sizeof err), CFG_ERR);
    assert_string_equal(err, "IAC_AGENT_TOKEN is not allowed: token must be at least 10 characters long");
    char *a2[] = { "iac-agent", "--token", "hunter2", NULL };
    char *e2[] = { env_endpoint, NULL };
    assert_int_equal(parse(&c, ARGC(a2), a2, e2, err, sizeof err), CFG_ERR);
    assert_string_equal(err, "--token is not allowed: token must be at least 10 characters long");
    assert_null(strstr(err, "hunter2"));
}

/* Unknown flags are named without their value (which may be a secret); single-dash words are flags too. */
static void unknown_flag_message(void **state)
{
    (void)state;
    static const struct {
        const char *arg, *msg;
    } cases[] = {
        { "--frob", "unknown flag --frob (see --help)" },
        { "--frob=apt_secret", "unknown flag --frob (see --help)" },
        { "-x", "unknown flag -x (see --help)" },
        { "-slots=3", "unknown flag -slots (see --help)" },
        { "--=3", "unknown flag -- (see --help)" },
        { "--SLOTS=3", "unknown flag --SLOTS (see --help)" },
    };
    char *envp[] = { env_endpoint, NULL };
    char err[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        conf c;
        char *argv[] = { "iac-agent", (char *)cases[i].arg, NULL };
        assert_int_equal(parse(&c, ARGC(argv), argv, envp, err, sizeof err), CFG_ERR);
        assert_string_equal(err, cases[i].msg);
    }
}

/* A flag that needs a value and is last on the line says so. */
static void flag_without_value_message(void **state)
{
    (void)state;
    conf c;
    char *argv[] = { "iac-agent", "--slots", NULL };
    char *envp[] = { env_endpoint, NULL };
    char err[256];
    assert_int_equal(parse(&c, ARGC(argv), argv, envp, err, sizeof err), CFG_ERR);
    assert_string_equal(err, "--slots needs a value (see --help)");
}

/* --help, -h and --version are answered before anything is judged, even beside a mistake. */
static void help_and_version_win(void **state)
{
    (void)state;
    conf c;
    char *envp[] = { NULL }; /* the required endpoint is missing too */
    char err[256];
    char *a1[] = { "iac-agent", "--frob", "--help", NULL };
    assert_int_equal(parse(&c, ARGC(a1), a1, envp, err, sizeof err), CFG_HELP);
    char *a2[] = { "iac-agent", "-h", NULL };
    assert_int_equal(parse(&c, ARGC(a2), a2, envp, err, sizeof err), CFG_HELP);
    char *a3[] = { "iac-agent", "--slots=1", "--version", NULL };
    assert_int_equal(parse(&c, ARGC(a3), a3, envp, err, sizeof err), CFG_VERSION);
    char *a4[] = { "iac-agent", "--name", "--help", NULL }; /* a flag's value, not a request for help */
    assert_int_equal(parse(&c, ARGC(a4), a4, envp, err, sizeof err), CFG_ERR);
    assert_non_null(strstr(err, "IAC_API_ENDPOINT is required"));
}

/* Positional arguments are collected in order (after "--" everything is positional); a program that takes none
 * rejects them. */
static void positional_arguments(void **state)
{
    (void)state;
    conf c;
    cfg_option o[O_N];
    make_table(&c, o);
    char *argv[] = { "iac-coordinator", "explain", "--slots", "3", "-", "--", "--slots", NULL };
    char *envp[] = { env_endpoint, NULL };
    const char *pos[8];
    int npos = -1;
    char err[256];
    assert_int_equal(cfg_parse(o, O_N, ARGC(argv), argv, envp, pos, &npos, err, sizeof err), CFG_OK);
    assert_int_equal(npos, 3);
    assert_string_equal(pos[0], "explain");
    assert_string_equal(pos[1], "-");
    assert_string_equal(pos[2], "--slots");
    assert_int_equal(c.slots, 3);

    assert_int_equal(cfg_parse(o, O_N, ARGC(argv), argv, envp, NULL, NULL, err, sizeof err), CFG_ERR);
    assert_string_equal(err, "unexpected argument \"explain\" (see --help)");
}

/* Values in messages are quoted with control bytes and quotes escaped, and long ones are shortened. */
static void values_in_messages_are_escaped_and_bounded(void **state)
{
    (void)state;
    conf c;
    char *argv[] = { "iac-agent", NULL };
    char err[512];
    char *e1[] = { env_endpoint, "IAC_AGENT_SLOTS=4\n\"x\"", NULL };
    assert_int_equal(parse(&c, ARGC(argv), argv, e1, err, sizeof err), CFG_ERR);
    assert_string_equal(err, "IAC_AGENT_SLOTS=\"4\\x0a\\\"x\\\"\" is not allowed: slots must be a whole number from 2 "
                             "to 64");
    char long_env[400] = "IAC_AGENT_SLOTS=";
    memset(long_env + 16, '9', 300);
    char *e2[] = { env_endpoint, long_env, NULL };
    assert_int_equal(parse(&c, ARGC(argv), argv, e2, err, sizeof err), CFG_ERR);
    assert_true(strlen(err) < 200);
    assert_non_null(strstr(err, "9\xe2\x80\xa6\" is not allowed"));

    char tiny[16];
    assert_int_equal(parse(&c, ARGC(argv), argv, e2, tiny, sizeof tiny), CFG_ERR);
    assert_int_equal(strlen(tiny), sizeof tiny - 1);
}

/* A default that breaks its own limits is reported as the table's mistake. */
static void bad_default_is_reported(void **state)
{
    (void)state;
    int64_t v;
    cfg_option o = { .env = "W", .flag = "workers", .kind = CFG_INT, .dst = &v, .def = "0", .min = 1, .max = 4 };
    char *argv[] = { "p", NULL };
    char err[256];
    assert_int_equal(cfg_parse(&o, 1, 1, argv, NULL, NULL, NULL, err, sizeof err), CFG_ERR);
    assert_string_equal(err, "default of --workers=\"0\" is not allowed: must be a whole number from 1 to 4");
}

/* --help lists every option with its flag, environment variable, default and help, in aligned columns; a
 * secret's default is never shown. */
static void help_lists_flag_env_default_and_help_aligned(void **state)
{
    (void)state;
    conf c;
    cfg_option o[O_N];
    make_table(&c, o);
    o[O_TOKEN].def = "do-not-print-me";
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    assert_non_null(f);
    cfg_print_help(f, o, O_N);
    fclose(f);
    assert_null(strstr(text, "do-not-print-me"));
    static const char *const expect[][4] = {
        { "--slots=N", "IAC_AGENT_SLOTS", "(default 4)", "task slots in this pod" },
        { "--log-format=text|json", "IAC_AGENT_LOG_FORMAT", "(default text)", "log line format" },
        { "--reservation-ttl=DURATION", "IAC_AGENT_RESERVATION_TTL", "(default 24h)", "how long slot 0" },
        { "--listen=HOST:PORT", "IAC_AGENT_LISTEN", "(default 0.0.0.0:9180)", "status server address" },
        { "--api-endpoint=VALUE", "IAC_API_ENDPOINT", "(required)", "URL of the control plane" },
        { "--dry-run", "-", "(default false)", "do nothing" },
        { "--token=VALUE", "IAC_AGENT_TOKEN", "(default set)", "pool token" },
        { "-", "IAC_RETRIES", "", "retries" },
    };
    /* Column starts, taken from the first line and required of every line. */
    long col[4] = { -1, -1, -1, -1 };
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        char *line = NULL;
        for (char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
            if (strncmp(l + 2, expect[i][0], strlen(expect[i][0])) == 0 && l[2 + strlen(expect[i][0])] == ' ') {
                line = l;
                break;
            }
        }
        assert_non_null(line);
        char *end = strchr(line, '\n');
        for (int k = 1; k < 4; k++) {
            if (!*expect[i][k])
                continue;
            char *at = strstr(line + 2 + strlen(expect[i][0]), expect[i][k]);
            assert_non_null(at);
            assert_true(at < end);
            long pos = at - line;
            if (col[k] < 0)
                col[k] = pos;
            assert_int_equal(pos, col[k]);
        }
    }
    assert_non_null(strstr(text, "--help, -h"));
    assert_non_null(strstr(text, "--version"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_fill_every_destination),
        cmocka_unit_test(environment_overrides_defaults),
        cmocka_unit_test(flags_override_environment_in_both_forms),
        cmocka_unit_test(empty_environment_variable_counts_as_unset),
        cmocka_unit_test(required_option_is_satisfied_by_a_flag_only_when_not_empty),
        cmocka_unit_test(overridden_environment_value_is_not_judged),
        cmocka_unit_test(int_values_and_messages),
        cmocka_unit_test(enum_values_and_messages),
        cmocka_unit_test(bool_values_and_messages),
        cmocka_unit_test(durations_parse_to_milliseconds),
        cmocka_unit_test(duration_option_limits_message),
        cmocka_unit_test(hostport_values_and_messages),
        cmocka_unit_test(port_values_and_messages),
        cmocka_unit_test(secret_value_never_appears_in_a_message),
        cmocka_unit_test(unknown_flag_message),
        cmocka_unit_test(flag_without_value_message),
        cmocka_unit_test(help_and_version_win),
        cmocka_unit_test(positional_arguments),
        cmocka_unit_test(values_in_messages_are_escaped_and_bounded),
        cmocka_unit_test(bad_default_is_reported),
        cmocka_unit_test(help_lists_flag_env_default_and_help_aligned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
