/* main.c — iac-coordinator: wires the configuration, the Kubernetes client, leader election, the pools' control
 * loops and the read API onto one libuv loop.
 *
 *     iac-coordinator [flags]            run (see --help)
 *     iac-coordinator status [--server URL]
 *     iac-coordinator explain TASK_ID [--server URL]
 *
 * Every cycle (--cycle) each pool observes, decides and — on the Lease holder only — acts; a pool whose previous
 * cycle is still running skips that tick. SIGTERM or SIGINT: stop the cycles, hand the Lease over, exit 0.
 * Exit status: 0 after a clean shutdown, 1 when it cannot start (the API address), 2 on bad configuration
 * (flags, the pools file, no Kubernetes access). */
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "api.h"
#include "ccli.h"
#include "iac/httpc.h"
#include "iac/log.h"
#include "k8s.h"
#include "leader.h"
#include "pool.h"
#include "poolcfg.h"

extern char **environ;

typedef struct {
    uv_loop_t   *loop;
    poolcfg      cfg;
    k8s_auth     auth;
    k8s         *kube;
    httpc       *http;      /* agents' /v1/status, /v1/drain, and demand URLs */
    pool        *pools[POOLCFG_MAX_POOLS];
    leader      *lead;      /* NULL without leader election */
    api         *api;
    uv_timer_t   tick;
    uv_signal_t  sigterm, sigint;
    bool         stopping;
} coord;

static bool coord_is_leader(void *arg)
{
    coord *c = arg;
    return !c->lead || leader_is_leader(c->lead);
}

static const char *coord_holder(void *arg)
{
    coord *c = arg;
    return c->lead ? leader_holder(c->lead) : c->cfg.identity;
}

static const pool_state *coord_pool_state(void *arg, int i)
{
    coord *c = arg;
    return pool_get_state(c->pools[i]);
}

static void coord_on_leading(bool leading, void *arg)
{
    coord *c = arg;
    (void)c;
    log_info("coordinator", leading ? "this replica leads: it acts on the pools"
                                    : "this replica no longer leads: it only observes");
}

static void coord_cycle_done(pool *p, void *arg)
{
    (void)p;
    (void)arg;
}

static void coord_on_tick(uv_timer_t *t)
{
    coord *c = t->data;
    for (int i = 0; i < c->cfg.npools; i++)
        if (pool_cycle(c->pools[i], coord_cycle_done, c) < 0)
            log_debug("coordinator", "pool \"%s\": previous cycle still running; skipping this one",
                      c->cfg.pools[i].id);
}

static void coord_close_cb(uv_handle_t *h) { (void)h; }

/* After the Lease is handed over (or there was none): free everything; the loop ends once handles are closed. */
static void coord_released(void *arg)
{
    coord *c = arg;
    for (int i = 0; i < c->cfg.npools; i++) {
        pool_free(c->pools[i]);
        c->pools[i] = NULL;
    }
    if (c->lead) {
        leader_free(c->lead);
        c->lead = NULL;
    }
    if (c->api) {
        api_free(c->api);
        c->api = NULL;
    }
    k8s_free(c->kube);
    c->kube = NULL;
    httpc_free(c->http);
    c->http = NULL;
}

static void coord_stop(coord *c)
{
    if (c->stopping)
        return;
    c->stopping = true;
    log_info("coordinator", "stopping");
    uv_timer_stop(&c->tick);
    uv_close((uv_handle_t *)&c->tick, coord_close_cb);
    uv_close((uv_handle_t *)&c->sigterm, coord_close_cb);
    uv_close((uv_handle_t *)&c->sigint, coord_close_cb);
    if (c->lead)
        leader_release(c->lead, coord_released, c);
    else
        coord_released(c);
}

static void coord_on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    coord_stop(s->data);
}

static int coord_run(coord *c)
{
    char err[1024];
    c->loop = uv_default_loop();
    const poolcfg *cfg = &c->cfg;

    if (k8s_auth_load(cfg->kubeconfig, cfg->context, environ, &c->auth, err, sizeof err) < 0) {
        fprintf(stderr, "iac-coordinator: no Kubernetes access: %s\n", err);
        return 2;
    }
    k8s_opts kopts = { .timeout_ms = 5000 };
    c->kube = k8s_new(c->loop, &c->auth, &kopts, err, sizeof err);
    if (!c->kube) {
        fprintf(stderr, "iac-coordinator: Kubernetes client (%s): %s\n", c->auth.source, err);
        k8s_auth_free(&c->auth);
        return 2;
    }
    httpc_opts hopts = { .connect_timeout_ms = 1000, .total_timeout_ms = 3000, .max_response = 1 << 20 };
    c->http = httpc_new(c->loop, &hopts);
    if (!c->http) {
        fprintf(stderr, "iac-coordinator: cannot initialise the HTTP client\n");
        k8s_free(c->kube);
        k8s_auth_free(&c->auth);
        return 1;
    }
    const char *lease_ns = cfg->lease_namespace && cfg->lease_namespace[0] ? cfg->lease_namespace
                                                                           : k8s_namespace(c->kube);
    for (int i = 0; i < cfg->npools; i++) {
        pool_deps d = { .loop = c->loop, .kube = c->kube, .http = c->http, .cfg = &cfg->pools[i],
                        .lease_namespace = lease_ns, .check_leases = cfg->leader_elect,
                        .is_leader = coord_is_leader, .leader_arg = c };
        c->pools[i] = pool_new(&d);
        if (!c->pools[i]) {
            fprintf(stderr, "iac-coordinator: out of memory\n");
            return 1;
        }
    }
    api_source src = { .npools = cfg->npools, .pool = coord_pool_state, .is_leader = coord_is_leader,
                       .holder = coord_holder, .identity = cfg->identity, .arg = c };
    c->api = api_start(c->loop, cfg->listen_host, (int)cfg->listen_port, &src, err, sizeof err);
    if (!c->api) {
        fprintf(stderr, "iac-coordinator: %s\n", err);
        coord_released(c);
        uv_run(c->loop, UV_RUN_DEFAULT);
        k8s_auth_free(&c->auth);
        return 1;
    }
    if (cfg->leader_elect) {
        leader_opts lo = { .namespace_ = lease_ns, .name = cfg->lease_name, .identity = cfg->identity,
                           .lease_duration_ms = cfg->lease_duration_ms, .renew_deadline_ms = cfg->renew_deadline_ms,
                           .retry_period_ms = cfg->retry_period_ms, .on_change = coord_on_leading, .arg = c };
        c->lead = leader_start(c->loop, c->kube, &lo);
        if (!c->lead) {
            fprintf(stderr, "iac-coordinator: cannot start leader election (check --lease-duration, "
                            "--renew-deadline, --retry-period)\n");
            coord_released(c);
            uv_run(c->loop, UV_RUN_DEFAULT);
            k8s_auth_free(&c->auth);
            return 2;
        }
    }
    log_info("coordinator", "iac-coordinator %s: %d pools, cycle %lld ms, API on %s:%d, Kubernetes %s (%s), %s",
             IAC_VERSION, cfg->npools, (long long)cfg->cycle_ms, cfg->listen_host, api_port(c->api),
             c->auth.server, c->auth.source,
             cfg->leader_elect ? "leader election on" : "leader election off: this replica acts");

    uv_timer_init(c->loop, &c->tick);
    c->tick.data = c;
    uv_timer_start(&c->tick, coord_on_tick, 0, (uint64_t)cfg->cycle_ms);
    uv_signal_init(c->loop, &c->sigterm);
    uv_signal_init(c->loop, &c->sigint);
    c->sigterm.data = c->sigint.data = c;
    uv_signal_start(&c->sigterm, coord_on_signal, SIGTERM);
    uv_signal_start(&c->sigint, coord_on_signal, SIGINT);

    uv_run(c->loop, UV_RUN_DEFAULT);
    uv_loop_close(c->loop);
    k8s_auth_free(&c->auth);
    log_info("coordinator", "stopped");
    return 0;
}

/* A pool of a thousand pods means a thousand agents and pods to talk to; requests are bounded, but the soft limit
 * of open files (often 1,024) is raised to the hard limit so that bursts and the API's clients never hit it. */
static void coord_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    coord_raise_nofile();
    if (argc > 1 && ccli_is_command(argv[1]))
        return ccli_main(argc - 1, argv + 1);

    static coord c; /* large (the config holds every pool); lives as long as the process */
    char err[1024];
    int rc = poolcfg_load(&c.cfg, argc, argv, environ, err, sizeof err);
    if (rc == POOLCFG_HELP) {
        poolcfg_print_help(stdout);
        return 0;
    }
    if (rc == POOLCFG_VERSION) {
        printf("iac-coordinator %s\n", IAC_VERSION);
        return 0;
    }
    if (rc != POOLCFG_OK) {
        fprintf(stderr, "iac-coordinator: %s\n", err);
        return 2;
    }
    log_setup((log_level)c.cfg.log_level, (log_format)c.cfg.log_format);
    return coord_run(&c);
}
