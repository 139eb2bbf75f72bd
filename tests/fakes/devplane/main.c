/* main.c — iac-devplane: a small Terranova-compatible control plane for tests and `make run` (see README.md).
 *
 * Wires the flags, the logger, the registry, the task store and its dispatcher, the API port (api.c on
 * common/https, with the task side's agentapi.c and adminapi.c behind it) and the C&C port (cc.c) onto one libuv
 * loop, prints the ready line, writes the ready file, checks liveness on a timer and shuts down on SIGTERM or
 * SIGINT. Exit status: 0 after a signal, 1 when a port cannot be bound, the data directory created or the ready file
 * written, 2 on a bad flag. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>
#include <uv.h>

#include "adminapi.h"
#include "agentapi.h"
#include "api.h"
#include "cc.h"
#include "dispatch.h"
#include "faults.h"
#include "iac/config.h"
#include "iac/digest.h"
#include "iac/fsutil.h"
#include "iac/log.h"
#include "registry.h"
#include "tasks.h"

#ifndef IAC_VERSION
#define IAC_VERSION "dev"
#endif

#define PROG "iac-devplane"

extern char **environ;

typedef struct {
    const char *listen;
    int64_t     port;
    int64_t     cc_port; /* -1 until given: then port+10 */
    const char *pool;
    const char *token;
    int64_t     hb_timeout_ms;
    int64_t     hb_check_ms;
    const char *ready_file;
    int         log_level;
    int         log_format;
    int         dispatch_mode; /* dispatch_mode */
    int         plan_dispatch;  /* dispatch_choice */
    int         apply_dispatch; /* dispatch_choice */
    const char *data_dir;
    const char *engine_zip;
    const char *engine_version;
    char        token_buf[sizeof "apt__" + REG_POOL_MAX + DIGEST_SHA256_HEX_LEN];
} dp_config;

typedef struct {
    uv_loop_t   loop;
    dp_config   cfg;
    registry   *reg;
    tasks      *store;
    dispatch   *disp;
    agentapi   *agentapi;
    adminapi   *adminapi;
    faults     *faults;
    char        data_dir[4096];
    cc_server  *cc;
    api        *api;
    uv_timer_t  liveness;
    uv_signal_t signals[2];
    bool        stopping;
} devplane;

/* ---- configuration ---- */

#define DP_NOPTIONS 16

static size_t option_table(dp_config *c, cfg_option *t)
{
    const cfg_option table[] = {
        { NULL, "listen", CFG_STRING, &c->listen, NULL, "127.0.0.1", 1, 0, NULL, "listen address",
          "address for both listeners", false, false },
        { NULL, "port", CFG_PORT, &c->port, NULL, "8080", 0, 65535, NULL, "API port",
          "API port (0: ephemeral)", false, false },
        { NULL, "cc-port", CFG_PORT, &c->cc_port, NULL, NULL, 0, 65535, NULL, "C&C port",
          "C&C WebSocket port (default: --port + 10; 0: ephemeral)", false, false },
        { NULL, "pool", CFG_STRING, &c->pool, NULL, "pool-dev", 1, 0, NULL, "pool id", "pool id", false, false },
        { NULL, "token", CFG_STRING, &c->token, NULL, NULL, 0, 0, NULL, "pool token",
          "the pool token apt_<pool>_<64 lowercase hex> (default: a fixed dev-only token derived from the pool id)",
          false, true },
        { NULL, "heartbeat-timeout", CFG_DURATION, &c->hb_timeout_ms, NULL, "120s", 100, 86400000, NULL,
          "heartbeat timeout", "drop an agent whose last heartbeat is older", false, false },
        { NULL, "heartbeat-check", CFG_DURATION, &c->hb_check_ms, NULL, "30s", 100, 86400000, NULL,
          "heartbeat check interval", "how often to check heartbeats", false, false },
        { NULL, "ready-file", CFG_STRING, &c->ready_file, NULL, NULL, 0, 0, NULL, "ready file",
          "once both listeners are bound, write {\"api_port\",\"cc_port\",\"pid\"} here", false, false },
        { NULL, "log-level", CFG_ENUM, &c->log_level, NULL, "info", 0, 0, "debug|info|warn|error", "log level",
          "log level", false, false },
        { NULL, "log-format", CFG_ENUM, &c->log_format, NULL, "text", 0, 0, "text|json", "log format",
          "log line format", false, false },
        { NULL, "dispatch", CFG_ENUM, &c->dispatch_mode, NULL, "push", 0, 0, "push|pull", "dispatch mode",
          "push: send run_task to agents with capacity; pull: only in answer to task_request", false, false },
        { NULL, "plan-dispatch", CFG_ENUM, &c->plan_dispatch, NULL, "slot-aware", 0, 0, "slot-aware|upstream",
          "plan dispatch", "push targets of pending tasks: slot-aware (heartbeat slots) or upstream (ref §4.7 only)",
          false, false },
        { NULL, "apply-dispatch", CFG_ENUM, &c->apply_dispatch, NULL, "slot-aware", 0, 0, "slot-aware|upstream",
          "apply dispatch",
          "targets of confirmed applies: slot-aware (the reserved slot 0, else an idle one) or upstream (any agent "
          "with apply_running false, round-robin)", false, false },
        { NULL, "data-dir", CFG_STRING, &c->data_dir, NULL, NULL, 0, 0, NULL, "data directory",
          "where task outputs are kept, as unnamed files (default: $TMPDIR or /tmp)", false, false },
        { NULL, "engine-zip", CFG_STRING, &c->engine_zip, NULL, NULL, 0, 0, NULL, "engine zip",
          "a terraform/tofu zip served at /engines/<file> and advertised by the terraform-versions routes", false,
          false },
        { NULL, "engine-version", CFG_STRING, &c->engine_version, NULL, NULL, 0, 0, NULL, "engine version",
          "the version string of --engine-zip (required with it)", false, false },
    };
    _Static_assert(sizeof table / sizeof table[0] == DP_NOPTIONS, "DP_NOPTIONS is the size of the table");
    memcpy(t, table, sizeof table);
    return sizeof table / sizeof table[0];
}

static bool pool_ok(const char *p)
{
    size_t n = strlen(p);
    if (n < 1 || n > REG_POOL_MAX)
        return false;
    for (; *p; p++)
        if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') && !(*p >= '0' && *p <= '9') && *p != '-' &&
            *p != '_' && *p != '.')
            return false;
    return true;
}

static bool token_ok(const char *token, const char *pool)
{
    size_t pl = strlen(pool);
    if (strncmp(token, "apt_", 4) != 0 || strncmp(token + 4, pool, pl) != 0 || token[4 + pl] != '_')
        return false;
    const char *hex = token + 4 + pl + 1;
    if (strlen(hex) != DIGEST_SHA256_HEX_LEN)
        return false;
    for (; *hex; hex++)
        if (!(*hex >= '0' && *hex <= '9') && !(*hex >= 'a' && *hex <= 'f'))
            return false;
    return true;
}

static bool address_ok(const char *a)
{
    struct sockaddr_in6 s6;
    struct sockaddr_in s4;
    return uv_ip4_addr(a, 0, &s4) == 0 || uv_ip6_addr(a, 0, &s6) == 0;
}

static bool version_ok(const char *v)
{
    size_t n = strlen(v);
    if (n < 1 || n > 63)
        return false;
    for (; *v; v++)
        if (!(*v >= 'a' && *v <= 'z') && !(*v >= 'A' && *v <= 'Z') && !(*v >= '0' && *v <= '9') && *v != '-' &&
            *v != '_' && *v != '.' && *v != '+')
            return false;
    return true;
}

/* Checks that span options or that cfg cannot express. 0, or -1 with a message in err. */
static int config_finish(dp_config *c, char *err, size_t errlen)
{
    char why[256];

    if (!address_ok(c->listen)) {
        snprintf(err, errlen, "--listen=\"%s\" is not allowed: must be an IP address such as 127.0.0.1", c->listen);
        return -1;
    }
    if (!pool_ok(c->pool)) {
        snprintf(err, errlen, "--pool=\"%s\" is not allowed: pool id must be 1 to %d letters, digits, '.', '_' or '-'",
                 c->pool, REG_POOL_MAX);
        return -1;
    }
    if (c->cc_port < 0) {
        if (c->port > 65525) {
            snprintf(err, errlen, "--cc-port is required when --port is above 65525 (its default is --port + 10)");
            return -1;
        }
        c->cc_port = c->port ? c->port + 10 : 0;
    }
    if (c->engine_zip && *c->engine_zip && (!c->engine_version || !*c->engine_version)) {
        snprintf(err, errlen, "--engine-version is required with --engine-zip");
        return -1;
    }
    if (c->engine_zip && *c->engine_zip && agentapi_engine_check(c->engine_zip, why, sizeof why) < 0) {
        snprintf(err, errlen, "--engine-zip=\"%s\" is not allowed: %s", c->engine_zip, why);
        return -1;
    }
    if (c->engine_version && *c->engine_version && !version_ok(c->engine_version)) {
        snprintf(err, errlen, "--engine-version=\"%s\" is not allowed: must be 1 to 63 letters, digits, '.', '_', "
                 "'+' or '-'", c->engine_version);
        return -1;
    }
    if (!c->token || !*c->token) {
        /* Deterministic and documented as dev-only: apt_<pool>_<sha256hex("iac-devplane:" + pool)>. */
        char seed[sizeof "iac-devplane:" + REG_POOL_MAX], hex[DIGEST_SHA256_HEX_LEN + 1];
        int n = snprintf(seed, sizeof seed, "iac-devplane:%s", c->pool);
        digest_sha256_hex(seed, (size_t)n, hex);
        snprintf(c->token_buf, sizeof c->token_buf, "apt_%s_%s", c->pool, hex);
        c->token = c->token_buf;
    } else if (!token_ok(c->token, c->pool)) {
        snprintf(err, errlen, "--token is not allowed: must be apt_%s_ followed by 64 lowercase hex digits", c->pool);
        return -1;
    }
    return 0;
}

/* ---- running ---- */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void liveness_cb(uv_timer_t *t)
{
    devplane *d = t->data;
    size_t n = cc_check_liveness(d->cc, now_ns(), d->cfg.hb_timeout_ms * 1000000);
    if (n)
        log_info("devplane", "disconnected %zu agent(s) without a heartbeat for %lld ms", n,
                 (long long)d->cfg.hb_timeout_ms);
}

static void stop(devplane *d)
{
    if (d->stopping)
        return;
    d->stopping = true;
    uv_timer_stop(&d->liveness);
    uv_close((uv_handle_t *)&d->liveness, NULL);
    for (size_t i = 0; i < 2; i++) {
        uv_signal_stop(&d->signals[i]);
        uv_close((uv_handle_t *)&d->signals[i], NULL);
    }
    api_free(d->api);
    d->api = NULL;
    if (d->cc)
        cc_set_hooks(d->cc, NULL); /* connections that close from here on fail no task */
    cc_free(d->cc); /* its connections still reach the registry while they close: freed after the loop */
    d->cc = NULL;
    dispatch_close(d->disp);
    d->disp = NULL;
}

static void signal_cb(uv_signal_t *h, int signum)
{
    devplane *d = h->data;
    log_info("devplane", "signal %d: shutting down", signum);
    stop(d);
}

/* libwebsockets logs process-wide; its errors go through our logger, its warnings only at debug level. */
static void lws_log(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    log_write(level == LLL_ERR ? LOG_WARN : LOG_DEBUG, "lws", "%.*s", (int)n, line);
}

static int write_ready_file(devplane *d, int api_port, int cc_port)
{
    char text[128];
    int n = snprintf(text, sizeof text, "{\"api_port\":%d,\"cc_port\":%d,\"pid\":%d}\n", api_port, cc_port,
                     (int)getpid());
    return fs_write_atomic(d->cfg.ready_file, text, (size_t)n, 0644);
}

/* The data directory: --data-dir (created if missing), else $TMPDIR or /tmp. The output files in it have no
 * names (blob.h), so there is nothing to remove at exit. 0, or -1 with a message in err. */
static int data_dir_open(devplane *d, char *err, size_t errlen)
{
    const char *tmp = getenv("TMPDIR");
    const char *dir = d->cfg.data_dir && *d->cfg.data_dir ? d->cfg.data_dir : tmp && *tmp ? tmp : "/tmp";
    int rc;

    if (strlen(dir) >= sizeof d->data_dir) {
        snprintf(err, errlen, "data directory %.300s: path too long", dir);
        return -1;
    }
    snprintf(d->data_dir, sizeof d->data_dir, "%s", dir);
    if ((rc = fs_mkdir_p(d->data_dir, 0700)) < 0) {
        snprintf(err, errlen, "cannot create the data directory %.300s: %s", d->data_dir, strerror(-rc));
        return -1;
    }
    return 0;
}

/* The task store, its dispatcher and the task side's routes. 0, or -1 with a message in err. */
static int task_side_open(devplane *d, char *err, size_t errlen)
{
    char why[256];

    if (data_dir_open(d, err, errlen) < 0)
        return -1;
    const dispatch_opts dopts = { (dispatch_mode)d->cfg.dispatch_mode, (dispatch_choice)d->cfg.plan_dispatch,
                                  (dispatch_choice)d->cfg.apply_dispatch };
    d->store = tasks_new(d->data_dir, d->cfg.pool);
    d->faults = faults_new();
    d->disp = d->store && d->faults ? dispatch_new(&d->loop, d->store, d->reg, d->cc, &dopts) : NULL;
    d->agentapi = d->disp ? agentapi_new(d->store, d->reg, d->disp, d->faults) : NULL;
    d->adminapi = d->disp ? adminapi_new(d->store, d->disp, d->faults) : NULL;
    if (!d->agentapi || !d->adminapi) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (d->cfg.engine_zip && *d->cfg.engine_zip &&
        agentapi_set_engine(d->agentapi, d->cfg.engine_zip, d->cfg.engine_version, why, sizeof why) < 0) {
        snprintf(err, errlen, "engine zip %s: %s", d->cfg.engine_zip, why);
        return -1;
    }
    log_info("devplane", "task outputs in %s; dispatch by %s, plans %s, applies %s", d->data_dir,
             d->cfg.dispatch_mode == DISPATCH_PULL ? "pull (task_request)" : "push",
             d->cfg.plan_dispatch == DISPATCH_UPSTREAM ? "upstream" : "slot-aware",
             d->cfg.apply_dispatch == DISPATCH_UPSTREAM ? "upstream" : "slot-aware");
    return 0;
}

/* After the loop: what the handlers and hooks used. */
static void task_side_free(devplane *d)
{
    agentapi_free(d->agentapi);
    adminapi_free(d->adminapi);
    faults_free(d->faults);
    tasks_free(d->store);
}

static int run(devplane *d)
{
    char err[512];
    const char *host = d->cfg.listen;
    const char *lb = strchr(host, ':') ? "[" : "", *rb = strchr(host, ':') ? "]" : "";
    int rc;

    /* The loop's own handles first, so that stop() can close them on any later failure. */
    uv_timer_init(&d->loop, &d->liveness);
    d->liveness.data = d;
    static const int signums[2] = { SIGTERM, SIGINT };
    for (size_t i = 0; i < 2; i++) {
        uv_signal_init(&d->loop, &d->signals[i]);
        d->signals[i].data = d;
        uv_signal_start(&d->signals[i], signal_cb, signums[i]);
    }

    d->reg = registry_new(d->cfg.pool, d->cfg.token);
    if (d->reg)
        d->cc = cc_listen(&d->loop, host, (int)d->cfg.cc_port, d->reg, err, sizeof err);
    if (!d->cc) {
        fprintf(stderr, PROG ": C&C port: %s\n", d->reg ? err : "out of memory");
        stop(d);
        uv_run(&d->loop, UV_RUN_NOWAIT); /* our handles' close callbacks; not until empty: see cc_listen */
        return 1;
    }
    if (task_side_open(d, err, sizeof err) < 0) {
        fprintf(stderr, PROG ": %s\n", err);
        stop(d);
        uv_run(&d->loop, UV_RUN_DEFAULT);
        return 1;
    }
    const api_more more[] = { { agentapi_handle, d->agentapi }, { adminapi_handle, d->adminapi } };
    d->api = api_listen(&d->loop, host, (int)d->cfg.port, d->reg, d->cc, more, sizeof more / sizeof more[0], err,
                        sizeof err);
    if (!d->api) {
        fprintf(stderr, PROG ": API port: %s\n", err);
        stop(d);
        uv_run(&d->loop, UV_RUN_DEFAULT);
        return 1;
    }
    agentapi_set_address(d->agentapi, host, api_port(d->api));
    const cc_hooks hooks = { dispatch_frame, dispatch_disconnected, d->disp };
    cc_set_hooks(d->cc, &hooks);

    uv_timer_start(&d->liveness, liveness_cb, (uint64_t)d->cfg.hb_check_ms, (uint64_t)d->cfg.hb_check_ms);

    if (d->cfg.ready_file && *d->cfg.ready_file &&
        (rc = write_ready_file(d, api_port(d->api), cc_port(d->cc))) < 0) {
        fprintf(stderr, PROG ": cannot write the ready file %s: %s\n", d->cfg.ready_file, strerror(-rc));
        stop(d);
        uv_run(&d->loop, UV_RUN_DEFAULT);
        return 1;
    }
    printf(PROG ": ready api=%s%s%s:%d cc=%s%s%s:%d pool=%s\n", lb, host, rb, api_port(d->api), lb, host, rb,
           cc_port(d->cc), d->cfg.pool);
    fflush(stdout);
    log_info("devplane", "pool %s: API on port %d, C&C on port %d", d->cfg.pool, api_port(d->api), cc_port(d->cc));

    uv_run(&d->loop, UV_RUN_DEFAULT);
    return 0;
}

int main(int argc, char **argv)
{
    static devplane d; /* large (token buffers), and main's only state */
    cfg_option table[DP_NOPTIONS];
    size_t n = option_table(&d.cfg, table);
    char err[512];
    int rc;

    d.cfg.cc_port = -1;
    rc = cfg_parse(table, n, argc, argv, environ, NULL, NULL, err, sizeof err);
    if (rc == CFG_HELP) {
        printf("Usage: " PROG " [flags]\n\nA small Terranova-compatible control plane for tests and local runs: the "
               "agent API and the\nadmin API on --port, the C&C WebSocket on --cc-port. See tests/fakes/devplane/"
               "README.md.\n\n");
        cfg_print_help(stdout, table, n);
        return 0;
    }
    if (rc == CFG_VERSION) {
        printf(PROG " %s\n", IAC_VERSION);
        return 0;
    }
    if (rc != CFG_OK || config_finish(&d.cfg, err, sizeof err) < 0) {
        fprintf(stderr, PROG ": %s\n", err);
        return 2;
    }

    log_setup((log_level)d.cfg.log_level, (log_format)d.cfg.log_format);
    log_secret_add(d.cfg.token);
    lws_set_log_level(d.cfg.log_level == LOG_DEBUG ? LLL_ERR | LLL_WARN | LLL_NOTICE : LLL_ERR, lws_log);
    signal(SIGPIPE, SIG_IGN);

    uv_loop_init(&d.loop);
    rc = run(&d);
    task_side_free(&d);
    registry_free(d.reg);
    if (uv_loop_close(&d.loop) != 0)
        log_warn("devplane", "loop closed with handles still open");
    log_secret_remove(NULL);
    return rc;
}
