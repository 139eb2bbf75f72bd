/* test_poolcfg.c — the coordinator's configuration: global flags and variables, the pool file, the single-pool
 * flags, the messages that name a bad input and what is allowed, and the checks run every cycle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../coordinator/poolcfg.h"
#include "iac/fsutil.h"

#define ERRLEN 1024

static char tmpdir[64];

static int make_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/iac-test-poolcfg-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
    (void)state;
    return fs_rm_rf(tmpdir) == 0 ? 0 : -1;
}

/* Writes text to a file of the test directory; path receives its name. */
static void write_file(const char *name, const char *text, char *path, size_t pathlen)
{
    snprintf(path, pathlen, "%s/%s", tmpdir, name);
    assert_int_equal(fs_write_atomic(path, text, strlen(text), 0600), 0);
}

static int load(poolcfg *c, char **env, char **argv, char *err)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    err[0] = '\0';
    return poolcfg_load(c, argc, argv, env, err, ERRLEN);
}

static void assert_mentions(const char *err, const char *const *expect)
{
    for (int k = 0; expect[k]; k++)
        if (!strstr(err, expect[k]))
            fail_msg("message \"%s\" lacks \"%s\"", err, expect[k]);
}

/* --pool alone gives one pool with every documented default, and the global defaults. */
static void single_pool_flag_gives_defaults(void **state)
{
    (void)state;
    static poolcfg c;
    char err[ERRLEN];
    char *env[] = { NULL };
    char *argv[] = { "iac-coordinator", "--pool", "pool-a", NULL };
    assert_int_equal(load(&c, env, argv, err), POOLCFG_OK);
    assert_int_equal(c.npools, 1);
    const poolcfg_pool *p = &c.pools[0];
    assert_string_equal(p->id, "pool-a");
    assert_string_equal(p->namespace_, "terraform");
    assert_string_equal(p->deployment, "iac-agent-pool-a");
    assert_int_equal(p->agent_port, 9180);
    assert_int_equal(p->scale.slots_per_pod, 4);
    assert_int_equal(p->scale.min_replicas, 0);
    assert_int_equal(p->scale.max_replicas, 10);
    assert_int_equal(p->scale.headroom_slot0, 1);
    assert_int_equal(p->scale.headroom_plan, 1);
    assert_int_equal(p->scale.scale_up_window_ms, 0);
    assert_int_equal(p->scale.scale_down_window_ms, 5 * 60 * 1000);
    assert_int_equal(p->scale.max_remove_per_cycle, 1);
    assert_int_equal(p->scale.pod_startup_timeout_ms, 5 * 60 * 1000);
    assert_string_equal(p->demand_url, "");
    assert_string_equal(p->token_file, "");
    assert_int_equal(c.cycle_ms, 5000);
    assert_string_equal(c.listen_host, "0.0.0.0");
    assert_int_equal(c.listen_port, 9190);
    assert_null(c.config_path);
    assert_null(c.kubeconfig);
    assert_null(c.context);
    assert_true(c.leader_elect);
    assert_string_equal(c.lease_name, "iac-coordinator");
    assert_null(c.lease_namespace);
    assert_non_null(c.identity);
    assert_true(strlen(c.identity) > 0);
    assert_int_equal(c.lease_duration_ms, 15000);
    assert_int_equal(c.renew_deadline_ms, 10000);
    assert_int_equal(c.retry_period_ms, 2000);
    assert_int_equal(c.log_level, 1);  /* info */
    assert_int_equal(c.log_format, 0); /* text */
    char reason[64];
    assert_int_equal(poolcfg_check(p, reason, sizeof reason, err, ERRLEN), 0);
}

/* Variables are read, and a flag wins over its variable; the flag-only settings are exposed. */
static void flags_override_environment(void **state)
{
    (void)state;
    static poolcfg c;
    char err[ERRLEN];
    char *env[] = { "IAC_COORD_CYCLE=10s", "IAC_COORD_LISTEN=127.0.0.1:8000", "IAC_COORD_LEADER_ELECT=false",
                    "POD_NAME=coord-0", "IAC_COORD_LOG_LEVEL=debug", "IAC_COORD_LOG_FORMAT=json", NULL };
    char *only_env[] = { "iac-coordinator", "--pool=p", NULL };
    assert_int_equal(load(&c, env, only_env, err), POOLCFG_OK);
    assert_int_equal(c.cycle_ms, 10000);
    assert_string_equal(c.listen_host, "127.0.0.1");
    assert_int_equal(c.listen_port, 8000);
    assert_false(c.leader_elect);
    assert_string_equal(c.identity, "coord-0");
    assert_int_equal(c.log_level, 0);
    assert_int_equal(c.log_format, 1);

    char *argv[] = { "iac-coordinator", "--pool=p", "--cycle", "3s", "--listen=:9999", "--leader-elect",
                     "--identity=coord-1", "--log-level=warn", "--log-format=text", "--kubeconfig=/k/config",
                     "--context=dev", "--lease-name=my-lease", "--lease-namespace=ops", "--lease-duration=30s",
                     "--renew-deadline=20s", "--retry-period=1500ms", "--namespace=tf", "--deployment=agents",
                     "--agent-port=9000", "--slots-per-pod=8", "--min-replicas=2", "--max-replicas=20",
                     "--headroom-slot0=3", "--headroom-plan=5", "--scale-up-window=10s", "--scale-down-window=1m",
                     "--max-remove-per-cycle=2", "--pod-startup-timeout=2m", "--demand-url=http://plane:8080/d",
                     "--token-file=/etc/token", NULL };
    assert_int_equal(load(&c, env, argv, err), POOLCFG_OK);
    assert_int_equal(c.cycle_ms, 3000);
    assert_string_equal(c.listen_host, "0.0.0.0");
    assert_int_equal(c.listen_port, 9999);
    assert_true(c.leader_elect);
    assert_string_equal(c.identity, "coord-1");
    assert_int_equal(c.log_level, 2);
    assert_int_equal(c.log_format, 0);
    assert_string_equal(c.kubeconfig, "/k/config");
    assert_string_equal(c.context, "dev");
    assert_string_equal(c.lease_name, "my-lease");
    assert_string_equal(c.lease_namespace, "ops");
    assert_int_equal(c.lease_duration_ms, 30000);
    assert_int_equal(c.renew_deadline_ms, 20000);
    assert_int_equal(c.retry_period_ms, 1500);
    const poolcfg_pool *p = &c.pools[0];
    assert_string_equal(p->namespace_, "tf");
    assert_string_equal(p->deployment, "agents");
    assert_int_equal(p->agent_port, 9000);
    assert_int_equal(p->scale.slots_per_pod, 8);
    assert_int_equal(p->scale.min_replicas, 2);
    assert_int_equal(p->scale.max_replicas, 20);
    assert_int_equal(p->scale.headroom_slot0, 3);
    assert_int_equal(p->scale.headroom_plan, 5);
    assert_int_equal(p->scale.scale_up_window_ms, 10000);
    assert_int_equal(p->scale.scale_down_window_ms, 60000);
    assert_int_equal(p->scale.max_remove_per_cycle, 2);
    assert_int_equal(p->scale.pod_startup_timeout_ms, 120000);
    assert_string_equal(p->demand_url, "http://plane:8080/d");
    assert_string_equal(p->token_file, "/etc/token");
}

/* A pool file with every key, and a second pool left to the defaults, loads exactly; durations may be strings or
 * whole seconds, and null reads as absent. */
static void full_valid_file_loads(void **state)
{
    (void)state;
    static poolcfg c;
    char err[ERRLEN], path[256], envvar[300];
    write_file("pools.json",
               "{\"pools\": [\n"
               "  {\"id\": \"pool-a\", \"namespace\": \"terraform\", \"deployment\": \"iac-agent-pool-a\",\n"
               "   \"agent_port\": 9181, \"slots_per_pod\": 6, \"min_replicas\": 1, \"max_replicas\": 12,\n"
               "   \"headroom\": {\"slot0\": 2, \"plan\": 3}, \"scale_up_window\": \"15s\",\n"
               "   \"scale_down_window\": 600, \"max_remove_per_cycle\": 3, \"pod_startup_timeout\": \"1h30m\",\n"
               "   \"demand_url\": \"https://plane.example/api/demand\", \"token_file\": \"/etc/iac/token\"},\n"
               "  {\"id\": \"Pool_B.2\", \"deployment\": \"agents-b\", \"demand_url\": null}\n"
               "]}\n",
               path, sizeof path);
    snprintf(envvar, sizeof envvar, "IAC_COORD_CONFIG=%s", path);
    char *env[] = { envvar, NULL };
    char *argv[] = { "iac-coordinator", NULL };
    assert_int_equal(load(&c, env, argv, err), POOLCFG_OK);
    assert_string_equal(c.config_path, path);
    assert_int_equal(c.npools, 2);
    const poolcfg_pool *a = &c.pools[0], *b = &c.pools[1];
    assert_string_equal(a->id, "pool-a");
    assert_string_equal(a->namespace_, "terraform");
    assert_string_equal(a->deployment, "iac-agent-pool-a");
    assert_int_equal(a->agent_port, 9181);
    assert_int_equal(a->scale.slots_per_pod, 6);
    assert_int_equal(a->scale.min_replicas, 1);
    assert_int_equal(a->scale.max_replicas, 12);
    assert_int_equal(a->scale.headroom_slot0, 2);
    assert_int_equal(a->scale.headroom_plan, 3);
    assert_int_equal(a->scale.scale_up_window_ms, 15000);
    assert_int_equal(a->scale.scale_down_window_ms, 600000);
    assert_int_equal(a->scale.max_remove_per_cycle, 3);
    assert_int_equal(a->scale.pod_startup_timeout_ms, 90 * 60 * 1000);
    assert_string_equal(a->demand_url, "https://plane.example/api/demand");
    assert_string_equal(a->token_file, "/etc/iac/token");
    assert_string_equal(b->id, "Pool_B.2");
    assert_string_equal(b->namespace_, "terraform");
    assert_string_equal(b->deployment, "agents-b");
    assert_int_equal(b->scale.max_replicas, 10);
    assert_int_equal(b->scale.headroom_plan, 1);
    assert_string_equal(b->demand_url, "");
}

/* Every kind of mistake in a pool file is refused with one message that names the file, the pool and the key,
 * says what is allowed and shows what was found. */
static void pool_file_mistakes_are_named(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        const char *expect[6];
    } cases[] = {
        /* JSON syntax: where it broke. */
        { "{\"pools\": [{\"id\": \"a\",]}", { "f.json", "not valid JSON", "byte", NULL } },
        { "[1, 2]", { "f.json", "expected a JSON object", "array", NULL } },
        /* The document's shape. */
        { "{}", { "f.json", "\"pools\" is required", "array of pool objects", NULL } },
        { "{\"pools\": {\"id\": \"a\"}}", { "f.json", "\"pools\" must be an array", "got an object", NULL } },
        { "{\"pools\": []}", { "f.json", "\"pools\" is empty", "at least one pool", NULL } },
        { "{\"pool\": []}", { "f.json", "unknown key \"pool\"", "allowed: pools", NULL } },
        { "{\"pools\": [], \"pools\": []}", { "f.json", "\"pools\" appears twice", NULL } },
        { "{\"pools\": [\"a\"]}", { "f.json: pools[0]", "must be an object", "got \"a\"", NULL } },
        /* Keys. */
        { "{\"pools\": [{\"max_replicas\": 3}]}", { "f.json: pools[0]", "\"id\" is required", "1 to 64", NULL } },
        { "{\"pools\": [{\"id\": \"a\", \"max_replica\": 3}]}",
          { "f.json: pools[0] (\"a\")", "unknown key \"max_replica\"", "max_replicas", "headroom", NULL } },
        { "{\"pools\": [{\"id\": \"a\", \"headroom\": {\"slots0\": 1}}]}",
          { "pools[0] (\"a\")", "unknown key \"headroom.slots0\"", "allowed: slot0, plan", NULL } },
        { "{\"pools\": [{\"id\": \"a\", \"min_replicas\": 1, \"min_replicas\": 2}]}",
          { "pools[0]", "\"min_replicas\" appears twice", NULL } },
        /* Types. */
        { "{\"pools\": [{\"id\": \"a\", \"max_replicas\": \"3\"}]}",
          { "pools[0] (\"a\")", "\"max_replicas\" must be a whole number from 0 to 2048", "got \"3\"", NULL } },
        { "{\"pools\": [{\"id\": \"a\", \"max_replicas\": 2.5}]}",
          { "\"max_replicas\" must be a whole number", "got 2.5", NULL } },
        { "{\"pools\": [{\"id\": 7}]}", { "pools[0]", "\"id\" must be 1 to 64", "got 7", NULL } },
        { "{\"pools\": [{\"id\": \"a\", \"headroom\": 2}]}",
          { "pools[0] (\"a\")", "\"headroom\" must be an object", "got 2", NULL } },
        { "{\"pools\": [{\"id\": \"a\", \"scale_down_window\": true}]}",
          { "\"scale_down_window\" must be a duration", "from 0s to 24h", "got true", NULL } },
        { "{\"pools\": [{\"id\": \"a\", \"scale_down_window\": \"5 minutes\"}]}",
          { "\"scale_down_window\" must be a duration", "got \"5 minutes\"", NULL } },
        /* Ranges. */
        { "{\"pools\": [{\"id\": \"ok\"}, {\"id\": \"pool-b\", \"max_replicas\": 5000}]}",
          { "f.json: pools[1] (\"pool-b\")", "\"max_replicas\" must be a whole number from 0 to 2048", "got 5000",
            NULL } },
        { "{\"pools\": [{\"id\": \"a\", \"slots_per_pod\": 1}]}",
          { "\"slots_per_pod\" must be a whole number from 2 to 64", "got 1", NULL } },
        { "{\"pools\": [{\"id\": \"a\", \"agent_port\": 70000}]}",
          { "\"agent_port\" must be a port number from 1 to 65535", "got 70000", NULL } },
        { "{\"pools\": [{\"id\": \"a\", \"max_remove_per_cycle\": 0}]}",
          { "\"max_remove_per_cycle\" must be a whole number from 1 to 16", NULL } },
        { "{\"pools\": [{\"id\": \"a\", \"headroom\": {\"plan\": -1}}]}",
          { "\"headroom.plan\" must be a whole number from 0", "got -1", NULL } },
        { "{\"pools\": [{\"id\": \"a\", \"pod_startup_timeout\": \"0s\"}]}",
          { "\"pod_startup_timeout\" must be a duration", "from 1s to 24h", "got \"0s\"", NULL } },
        { "{\"pools\": [{\"id\": \"a\", \"scale_up_window\": 999999999}]}",
          { "\"scale_up_window\" must be a duration", "to 1h", "got 999999999", NULL } },
        /* Names. */
        { "{\"pools\": [{\"id\": \"pool a\"}]}", { "pools[0]", "\"id\" must be 1 to 64", "got \"pool a\"", NULL } },
        { "{\"pools\": [{\"id\": \"a\", \"namespace\": \"Terraform\"}]}",
          { "pools[0] (\"a\")", "\"namespace\" must be a DNS-1123 label", "got \"Terraform\"", NULL } },
        { "{\"pools\": [{\"id\": \"a\", \"deployment\": \"-agents\"}]}",
          { "\"deployment\" must be a DNS-1123 subdomain", "got \"-agents\"", NULL } },
        { "{\"pools\": [{\"id\": \"Pool_A\"}]}",
          { "pools[0] (\"Pool_A\")", "\"deployment\" is not set", "\"iac-agent-Pool_A\"", "DNS-1123 subdomain",
            "set \"deployment\"" } },
        { "{\"pools\": [{\"id\": \"a\", \"demand_url\": \"plane:8080\"}]}",
          { "\"demand_url\" must be an http:// or https:// URL", "got \"plane:8080\"", NULL } },
        { "{\"pools\": [{\"id\": \"a\", \"token_file\": \"\"}]}", { "\"token_file\" must be a file path", NULL } },
        /* Uniqueness. */
        { "{\"pools\": [{\"id\": \"a\"}, {\"id\": \"b\"}, {\"id\": \"a\"}]}",
          { "f.json: pools[2]", "id \"a\" is already the id of pools[0]", "own id", NULL } },
        { "{\"pools\": [{\"id\": \"a\", \"deployment\": \"d\"}, {\"id\": \"b\", \"deployment\": \"d\"}]}",
          { "pools[1] (\"b\")", "terraform/d", "already scaled by pools[0] (\"a\")", NULL } },
    };
    static poolcfg c;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[ERRLEN] = "";
        if (poolcfg_parse_pools(&c, cases[i].json, strlen(cases[i].json), "f.json", err, sizeof err) != -1)
            fail_msg("case %zu (%s) was accepted", i, cases[i].json);
        assert_int_equal(c.npools, 0);
        for (int k = 0; k < 6 && cases[i].expect[k]; k++)
            if (!strstr(err, cases[i].expect[k]))
                fail_msg("case %zu (%s): message \"%s\" lacks \"%s\"", i, cases[i].json, err, cases[i].expect[k]);
    }
}

/* More than POOLCFG_MAX_POOLS pools are refused, naming the limit. */
static void too_many_pools_are_refused(void **state)
{
    (void)state;
    static poolcfg c;
    char text[8192], err[ERRLEN];
    size_t o = (size_t)snprintf(text, sizeof text, "{\"pools\": [");
    for (int i = 0; i <= POOLCFG_MAX_POOLS; i++)
        o += (size_t)snprintf(text + o, sizeof text - o, "%s{\"id\": \"p%d\"}", i ? "," : "", i);
    snprintf(text + o, sizeof text - o, "]}");
    assert_int_equal(poolcfg_parse_pools(&c, text, strlen(text), "f.json", err, sizeof err), -1);
    const char *expect[] = { "f.json", "65 entries", "at most 64", NULL };
    assert_mentions(err, expect);
}

/* A pool file that cannot be read is named with the way it was given and the system's reason. */
static void unreadable_file_is_named(void **state)
{
    (void)state;
    static poolcfg c;
    char err[ERRLEN], missing[256], envvar[300];
    snprintf(missing, sizeof missing, "%s/absent.json", tmpdir);
    char *env[] = { NULL };
    char *argv[] = { "iac-coordinator", "--config", missing, NULL };
    assert_int_equal(load(&c, env, argv, err), POOLCFG_ERR);
    const char *expect[] = { "--config=", missing, "cannot be read", "No such file or directory", NULL };
    assert_mentions(err, expect);

    snprintf(envvar, sizeof envvar, "IAC_COORD_CONFIG=%s", missing);
    char *env2[] = { envvar, NULL };
    char *noargs[] = { "iac-coordinator", NULL };
    assert_int_equal(load(&c, env2, noargs, err), POOLCFG_ERR);
    const char *expect2[] = { "IAC_COORD_CONFIG=", missing, "No such file or directory", NULL };
    assert_mentions(err, expect2);

    char path[256];
    write_file("bad.json", "{\"pools\": [{\"id\": \"a\", \"max_replicas\": -1}]}", path, sizeof path);
    char *argv3[] = { "iac-coordinator", "--config", path, NULL };
    assert_int_equal(load(&c, env, argv3, err), POOLCFG_ERR);
    const char *expect3[] = { "--config=", path, ": pools[0] (\"a\"): \"max_replicas\"", "from 0 to 2048", NULL };
    assert_mentions(err, expect3);
}

/* Where the pools come from must be unambiguous: a file or --pool, not both, not neither, and no pool flag that
 * would be silently ignored. */
static void pool_sources_are_exclusive(void **state)
{
    (void)state;
    static poolcfg c;
    char err[ERRLEN], path[256];
    write_file("one.json", "{\"pools\": [{\"id\": \"a\"}]}", path, sizeof path);
    char *env[] = { NULL };
    static const struct {
        const char *args[4];
        const char *expect[3];
    } cases[] = {
        { { "--config", "FILE", "--pool=a", NULL }, { "--config and --pool cannot be used together", NULL } },
        { { "--config", "FILE", "--max-replicas=3", NULL },
          { "--max-replicas is not allowed with --config", "\"max_replicas\" in the file", NULL } },
        { { "--namespace=tf", NULL }, { "--namespace needs --pool", NULL } },
        { { NULL }, { "no pools", "--config FILE", "--pool ID" } },
        { { "serve", NULL }, { "unexpected argument \"serve\"", NULL } },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *argv[6] = { "iac-coordinator" };
        int n = 1;
        for (int k = 0; cases[i].args[k]; k++)
            argv[n++] = strcmp(cases[i].args[k], "FILE") == 0 ? path : (char *)cases[i].args[k];
        argv[n] = NULL;
        assert_int_equal(load(&c, env, argv, err), POOLCFG_ERR);
        for (int k = 0; k < 3 && cases[i].expect[k]; k++)
            if (!strstr(err, cases[i].expect[k]))
                fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, err, cases[i].expect[k]);
    }
    char *ok[] = { "iac-coordinator", "--config", path, NULL };
    assert_int_equal(load(&c, env, ok, err), POOLCFG_OK);
    assert_int_equal(c.npools, 1);

    /* The file given through the environment is named as such. */
    char envvar[300];
    snprintf(envvar, sizeof envvar, "IAC_COORD_CONFIG=%s", path);
    char *env2[] = { envvar, NULL };
    char *pool[] = { "iac-coordinator", "--pool=a", NULL };
    assert_int_equal(load(&c, env2, pool, err), POOLCFG_ERR);
    assert_non_null(strstr(err, "IAC_COORD_CONFIG and --pool cannot be used together"));
}

/* A bad flag or variable is named with its value and what is allowed, including the lease timings' order. */
static void bad_flags_are_named(void **state)
{
    (void)state;
    static const struct {
        const char *env;
        const char *arg;
        const char *expect[3];
    } cases[] = {
        { "IAC_COORD_CYCLE=50ms", NULL, { "IAC_COORD_CYCLE=\"50ms\"", "from 100ms to 5m", NULL } },
        { NULL, "--cycle=fast", { "--cycle=\"fast\"", "duration", NULL } },
        { "IAC_COORD_LISTEN=nowhere", NULL, { "IAC_COORD_LISTEN=\"nowhere\"", "host:port", NULL } },
        { "IAC_COORD_LEADER_ELECT=maybe", NULL, { "IAC_COORD_LEADER_ELECT=\"maybe\"", "true, false", NULL } },
        { "IAC_COORD_LOG_LEVEL=loud", NULL, { "IAC_COORD_LOG_LEVEL=\"loud\"", "debug, info, warn, error", NULL } },
        { "IAC_COORD_LOG_FORMAT=xml", NULL, { "IAC_COORD_LOG_FORMAT=\"xml\"", "text, json", NULL } },
        { NULL, "--max-replicas=5000", { "--max-replicas=\"5000\"", "max_replicas must be a whole number from 0 "
                                         "to 2048", NULL } },
        { NULL, "--scale-down-window=2d", { "--scale-down-window=\"2d\"", "duration", NULL } },
        { NULL, "--agent-port=0", { "--agent-port=\"0\"", "port number from 1 to 65535", NULL } },
        { NULL, "--namespace=Bad_NS", { "--namespace=\"Bad_NS\"", "DNS-1123 label", NULL } },
        { NULL, "--deployment=a..b", { "--deployment=\"a..b\"", "DNS-1123 subdomain", NULL } },
        { NULL, "--demand-url=ftp://x", { "--demand-url=\"ftp://x\"", "http:// or https://", NULL } },
        { NULL, "--renew-deadline=20s", { "--renew-deadline=20s", "shorter than --lease-duration (15s)", NULL } },
        { NULL, "--retry-period=10s", { "--retry-period=10s", "shorter than --renew-deadline (10s)", NULL } },
        { NULL, "--lease-name=Lease!", { "--lease-name=\"Lease!\"", "DNS-1123 subdomain", NULL } },
        { NULL, "--frobnicate", { "unknown flag --frobnicate", NULL } },
    };
    static poolcfg c;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[ERRLEN];
        char *env[] = { (char *)cases[i].env, NULL };
        char *argv[] = { "iac-coordinator", "--pool=a", (char *)cases[i].arg, NULL };
        assert_int_equal(load(&c, env, argv, err), POOLCFG_ERR);
        for (int k = 0; k < 3 && cases[i].expect[k]; k++)
            if (!strstr(err, cases[i].expect[k]))
                fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, err, cases[i].expect[k]);
    }
    /* An id that is no Kubernetes name needs --deployment. */
    char err[ERRLEN];
    char *env[] = { NULL };
    char *argv[] = { "iac-coordinator", "--pool=Pool_A", NULL };
    assert_int_equal(load(&c, env, argv, err), POOLCFG_ERR);
    const char *expect[] = { "--deployment is not set", "iac-agent-Pool_A", "give --deployment", NULL };
    assert_mentions(err, expect);
    char *fixed[] = { "iac-coordinator", "--pool=Pool_A", "--deployment=pool-a", NULL };
    assert_int_equal(load(&c, env, fixed, err), POOLCFG_OK);
}

/* min > max and max = 0 load (so other pools keep working) and poolcfg_check reports each with a machine reason
 * and a sentence; a sound pool passes; a value outside the file's ranges is caught too. */
static void check_reports_what_loading_lets_through(void **state)
{
    (void)state;
    static poolcfg c;
    char err[ERRLEN], reason[64];
    const char *json = "{\"pools\": [{\"id\": \"a\", \"min_replicas\": 5, \"max_replicas\": 3},"
                       " {\"id\": \"b\", \"max_replicas\": 0}, {\"id\": \"c\", \"min_replicas\": 2}]}";
    assert_int_equal(poolcfg_parse_pools(&c, json, strlen(json), "f.json", err, sizeof err), 0);
    assert_int_equal(c.npools, 3);

    assert_int_equal(poolcfg_check(&c.pools[0], reason, sizeof reason, err, sizeof err), -1);
    assert_string_equal(reason, "min_above_max");
    assert_non_null(strstr(err, "min_replicas 5 is above max_replicas 3"));

    assert_int_equal(poolcfg_check(&c.pools[1], reason, sizeof reason, err, sizeof err), -1);
    assert_string_equal(reason, "max_zero");
    assert_non_null(strstr(err, "max_replicas is 0"));
    assert_non_null(strstr(err, "at least 1"));

    assert_int_equal(poolcfg_check(&c.pools[2], reason, sizeof reason, err, sizeof err), 0);
    assert_string_equal(reason, "");

    poolcfg_pool odd = c.pools[2];
    odd.scale.slots_per_pod = 1;
    assert_int_equal(poolcfg_check(&odd, reason, sizeof reason, err, sizeof err), -1);
    assert_string_equal(reason, "out_of_range");
    assert_non_null(strstr(err, "slots_per_pod is 1"));
    assert_non_null(strstr(err, "from 2 to 64"));
}

/* --help and --version win over anything else; the help lists every flag with its variable and default, and the
 * pool file's keys. */
static void help_lists_flags_and_pool_keys(void **state)
{
    (void)state;
    static poolcfg c;
    char err[ERRLEN];
    char *env[] = { "IAC_COORD_CYCLE=bad", NULL };
    char *help[] = { "iac-coordinator", "--frob", "--help", NULL };
    char *version[] = { "iac-coordinator", "--version", NULL };
    assert_int_equal(load(&c, env, help, err), POOLCFG_HELP);
    assert_int_equal(load(&c, env, version, err), POOLCFG_VERSION);

    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    poolcfg_print_help(out);
    fclose(out);
    static const char *const expect[] = {
        "--config=VALUE", "IAC_COORD_CONFIG", "--cycle=DURATION", "IAC_COORD_CYCLE", "(default 5s)",
        "IAC_COORD_LISTEN", "(default 0.0.0.0:9190)", "--kubeconfig", "--context", "--leader-elect",
        "IAC_COORD_LEADER_ELECT", "(default true)", "--lease-name", "(default iac-coordinator)", "--lease-namespace",
        "--identity", "POD_NAME", "--lease-duration", "(default 15s)", "--renew-deadline", "(default 10s)",
        "--retry-period", "(default 2s)", "IAC_COORD_LOG_LEVEL", "(default info)", "IAC_COORD_LOG_FORMAT",
        "(default text)", "--pool=VALUE", "--namespace", "(default terraform)", "--deployment",
        "(default iac-agent-<pool>)", "--agent-port", "(default 9180)", "--slots-per-pod", "(default 4)",
        "--min-replicas", "(default 0)", "--max-replicas", "(default 10)", "--headroom-slot0", "--headroom-plan",
        "--scale-up-window", "(default 0s)", "--scale-down-window", "(default 5m)", "--max-remove-per-cycle",
        "--pod-startup-timeout", "--demand-url", "--token-file", "Pool file", "headroom.slot0", "headroom.plan",
        "scale_down_window", "max_remove_per_cycle", "pod_startup_timeout", "demand_url", "token_file", NULL,
    };
    for (int k = 0; expect[k]; k++)
        if (!strstr(text, expect[k]))
            fail_msg("help lacks \"%s\"", expect[k]);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(single_pool_flag_gives_defaults),
        cmocka_unit_test(flags_override_environment),
        cmocka_unit_test(full_valid_file_loads),
        cmocka_unit_test(pool_file_mistakes_are_named),
        cmocka_unit_test(too_many_pools_are_refused),
        cmocka_unit_test(unreadable_file_is_named),
        cmocka_unit_test(pool_sources_are_exclusive),
        cmocka_unit_test(bad_flags_are_named),
        cmocka_unit_test(check_reports_what_loading_lets_through),
        cmocka_unit_test(help_lists_flags_and_pool_keys),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
