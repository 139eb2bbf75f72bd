/* poolcfg.h — what iac-coordinator is told: its own settings and the pools it scales.
 *
 * Two sources. Global settings (cycle, API listen address, lease, Kubernetes access, logs, the config file path)
 * are environment variables and flags (common/config tables). Pools come from a JSON file (--config, usually a
 * ConfigMap) or, for a single pool, from flags (--pool, --namespace, --deployment, …); giving both is an error.
 *
 *     {"pools": [{"id": "pool-a", "namespace": "terraform", "deployment": "iac-agent-pool-a",
 *                 "agent_port": 9180, "slots_per_pod": 4, "min_replicas": 1, "max_replicas": 10,
 *                 "headroom": {"slot0": 1, "plan": 2},
 *                 "scale_up_window": "0s", "scale_down_window": "5m", "max_remove_per_cycle": 1,
 *                 "pod_startup_timeout": "5m", "demand_url": "http://plane:8080/…", "token_file": "/etc/…"}]}
 *
 * Durations are strings as in common/config ("30s", "5m", "1h30m") or whole seconds. Unknown keys are refused
 * (a typo must not silently fall back to a default). Loading checks only what a person must fix in the file
 * itself: JSON syntax, types, ranges, names (exit 2 with one message naming the file, the pool and the key).
 * What can be fixed in the cluster or depends on the pair (min ≤ max, max ≥ 1, the Deployment exists, RBAC) is
 * checked every cycle by the pool (poolcfg_check) and reported once per change, so one bad pool never stops the
 * others — the lesson of incident "task 511".
 *
 * Ownership: plain structs with fixed buffers; nothing allocates after poolcfg_load returns. */
#ifndef IAC_COORD_POOLCFG_H
#define IAC_COORD_POOLCFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "scaler.h"

#define POOLCFG_MAX_POOLS 64
#define POOLCFG_ID_MAX    65   /* 1–64 of [A-Za-z0-9._-] */
#define POOLCFG_NAME_MAX  254  /* Kubernetes names: DNS-1123 subdomain (namespace: label, ≤ 63) */
#define POOLCFG_URL_MAX   512
#define POOLCFG_PATH_MAX  1024

typedef struct {
    char          id[POOLCFG_ID_MAX];
    char          namespace_[64];                 /* default "terraform" (upstream's namespace, ref §5.3) */
    char          deployment[POOLCFG_NAME_MAX];   /* default "iac-agent-<id>" */
    int           agent_port;                     /* the agents' status port, default 9180 */
    scaler_config scale;       /* slots_per_pod 4, min 0, max 10, headroom 1/1, up 0 s, down 5 m, remove 1, startup 5 m */
    char          demand_url[POOLCFG_URL_MAX];    /* "" = headroom only */
    char          token_file[POOLCFG_PATH_MAX];   /* the pool token, for the agents' POST /v1/drain; "" = none (then
                                                   * no pod is drained and none is removed: scale-down is skipped
                                                   * and said so) */
} poolcfg_pool;

typedef struct {
    poolcfg_pool pools[POOLCFG_MAX_POOLS];
    int          npools;
    int64_t      cycle_ms;          /* --cycle / IAC_COORD_CYCLE, default 5 s, 100 ms–5 m */
    char         listen_host[256];  /* --listen / IAC_COORD_LISTEN, default 0.0.0.0:9190 */
    int64_t      listen_port;
    const char  *config_path;       /* --config / IAC_COORD_CONFIG, or NULL */
    const char  *kubeconfig;        /* --kubeconfig, else KUBECONFIG (read by k8s_auth_load) */
    const char  *context;           /* --context */
    bool         leader_elect;      /* --leader-elect, default true */
    const char  *lease_name;        /* --lease-name, default "iac-coordinator" */
    const char  *lease_namespace;   /* --lease-namespace, default: the client's namespace */
    const char  *identity;          /* --identity / POD_NAME, default hostname + pid (in identity_buf) */
    char         identity_buf[300]; /* holds the default identity */
    int64_t      lease_duration_ms; /* 15 s */
    int64_t      renew_deadline_ms; /* 10 s */
    int64_t      retry_period_ms;   /* 2 s */
    int          log_level;         /* index into "debug|info|warn|error" */
    int          log_format;        /* index into "text|json" */
} poolcfg;

enum { POOLCFG_OK = 0, POOLCFG_ERR = -1, POOLCFG_HELP = 1, POOLCFG_VERSION = 2 };

/* Parses flags and environment (argv[1..], envp), then the pool file or the single-pool flags. Positional
 * arguments are refused (the subcommands are handled by main before this). Returns POOLCFG_OK, POOLCFG_HELP,
 * POOLCFG_VERSION, or POOLCFG_ERR with one message in err, e.g.
 *     --config=/etc/iac/pools.json: pools[1] ("pool-b"): "max_replicas" must be a whole number from 0 to 2048
 *     --config=/etc/iac/pools.json: pools[0]: unknown key "max_replica"
 *     no pools: give --config FILE or --pool ID */
int poolcfg_load(poolcfg *cfg, int argc, char **argv, char **envp, char *err, size_t errlen);

/* Loads only the pools of a JSON document (text, len) into cfg->pools; what poolcfg_load does with the file.
 * source names it in messages. Returns 0 or -1 with err. */
int poolcfg_parse_pools(poolcfg *cfg, const char *text, size_t len, const char *source, char *err, size_t errlen);

/* The checks that do not need the cluster: min ≤ max, max ≥ 1, and scaler_config's own ranges. Returns 0, or -1
 * with the reason for a person in err ("min_replicas 5 is above max_replicas 3") and a short machine reason in
 * reason ("min_above_max", "max_zero") for the iac_pool_config_error metric's label. */
int poolcfg_check(const poolcfg_pool *p, char *reason, size_t reasonlen, char *err, size_t errlen);

/* Prints --help (every flag and variable with its default, and the pool file's keys). */
void poolcfg_print_help(FILE *out);

#endif
