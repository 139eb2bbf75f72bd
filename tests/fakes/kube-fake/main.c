/* main.c — kube-fake: a small Kubernetes API server with a pod simulator, for tests (see README.md).
 *
 * Wires the flags, the logger, the object store, the deny list, the kubelet (pods as real processes), the
 * controller (Deployments → pods) and the API (api.c, admin.c on common/https) onto one libuv loop; seeds objects
 * from --seed; writes the ready file; on SIGTERM or SIGINT stops every pod process (SIGTERM, SIGKILL after
 * --stop-grace, 3 s by default) and exits 0. Exit status 1: the port cannot be bound, the work directory created or
 * the ready file written; 2: a bad flag or seed file, with one line naming it.
 *
 * With --no-kubelet pods are only objects: none runs, a created Pod keeps the status it was given and Deployments'
 * replicas do not become pods — a pool of any size whose agents something else serves (bench/coordcycle.sh).
 *
 * It is also its own exec trampoline: `kube-fake --pod-exec <pid> <exe> <argv…>` sets PR_SET_PDEATHSIG and execs
 * the container's command, so pods die with the kube-fake that started them (kubelet.h). */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <uv.h>

#include "admin.h"
#include "api.h"
#include "controller.h"
#include "iac/config.h"
#include "iac/fsutil.h"
#include "iac/json.h"
#include "iac/log.h"
#include "kubelet.h"
#include "rbac.h"
#include "store.h"

#ifndef IAC_VERSION
#define IAC_VERSION "dev"
#endif

#define PROG          "kube-fake"
#define MAX_BODY      (3u << 20) /* the API server's own request limit is about 3 MiB */
#define SEED_MAX      (16u << 20)
#define DEFAULT_USER  "system:serviceaccount:default:default"

extern char **environ;

typedef struct {
    const char *listen;
    int64_t     port;
    const char *ready_file;
    const char *token;
    const char *seed;
    const char *bin_dir;
    const char *work_dir;
    const char *ip_base;
    const char *deny_help; /* never set: --deny is taken out of argv before parsing (it repeats) */
    int64_t     readiness_ms;
    int64_t     stop_grace_ms;
    bool        no_kubelet;
    const char *user;
    int         log_level;
    int         log_format;
} kf_config;

typedef struct {
    uv_loop_t     loop;
    kf_config     cfg;
    store        *st;
    rbac         *rb;
    kubelet      *kl;
    controller   *ctl;
    api          *api;
    admin         adm;
    https_server *http;
    uv_signal_t   signals[2];
    bool          stopping;
    char          self_exe[PATH_MAX];
    char          bin_dir[PATH_MAX];
    char          work_dir[PATH_MAX];
    bool          work_dir_temp; /* made by us: removed at exit */
    int           ip_first;
    const char   *deny[RBAC_MAX_RULES + 1];
    size_t        ndeny;
    char         *inherit[8];
} kubefake;

/* ---- the exec trampoline ---- */

static int pod_exec(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, PROG ": --pod-exec needs <parent pid> <executable> <argv0> [args…]\n");
        return 2;
    }
    pid_t parent = (pid_t)atol(argv[2]);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) /* kube-fake died before the line above: don't run at all */
        return 1;
    execv(argv[3], argv + 4);
    fprintf(stderr, PROG ": exec %s: %s\n", argv[3], strerror(errno));
    return 127;
}

/* ---- configuration ---- */

#define KF_NOPTIONS 15

static size_t option_table(kf_config *c, cfg_option *t)
{
    const cfg_option table[] = {
        { NULL, "listen", CFG_STRING, &c->listen, NULL, "127.0.0.1", 1, 0, NULL, "listen address",
          "IP address of the API", false, false },
        { NULL, "port", CFG_PORT, &c->port, NULL, "0", 0, 65535, NULL, "API port", "API port (0: ephemeral)", false,
          false },
        { NULL, "ready-file", CFG_STRING, &c->ready_file, NULL, NULL, 0, 0, NULL, "ready file",
          "once listening, write {\"port\",\"pid\"} here (atomically)", false, false },
        { NULL, "token", CFG_STRING, &c->token, NULL, NULL, 0, 0, NULL, "token",
          "require Authorization: Bearer <token> on every API request (default: no authentication)", false, true },
        { NULL, "seed", CFG_STRING, &c->seed, NULL, NULL, 0, 0, NULL, "seed file",
          "JSON {\"items\": [objects]} created at start (Secrets, Leases and Events first)", false, false },
        { NULL, "bin-dir", CFG_STRING, &c->bin_dir, NULL, NULL, 0, 0, NULL, "bin directory",
          "where container commands without '/' are found (default: PATH)", false, false },
        { NULL, "work-dir", CFG_STRING, &c->work_dir, NULL, NULL, 0, 0, NULL, "work directory",
          "pods live in <dir>/pods/<name>/ (default: a temporary directory removed at exit)", false, false },
        { NULL, "pod-ip-base", CFG_STRING, &c->ip_base, NULL, "127.0.0.10", 1, 0, NULL, "pod IP base",
          "first pod address, 127.0.0.N (N from 2 to 250); each pod takes the lowest free one up to .250", false,
          false },
        { NULL, "deny", CFG_STRING, &c->deny_help, NULL, NULL, 0, 0, NULL, "deny rule",
          "VERB:RESOURCE the client may not do, e.g. patch:deployments/scale (repeatable)", false, false },
        { NULL, "readiness-interval", CFG_DURATION, &c->readiness_ms, NULL, "200ms", 10, 60000, NULL,
          "readiness interval", "how often pods' readiness probes run", false, false },
        { NULL, "stop-grace", CFG_DURATION, &c->stop_grace_ms, NULL, "3s", 100, 600000, NULL, "stop grace",
          "at shutdown, time between SIGTERM and SIGKILL to pod processes", false, false },
        { NULL, "no-kubelet", CFG_BOOL, &c->no_kubelet, NULL, "false", 0, 0, NULL, "no kubelet",
          "run no pods: a created Pod keeps the status it was given; Deployments' replicas do not become pods",
          false, false },
        { NULL, "user", CFG_STRING, &c->user, NULL, DEFAULT_USER, 1, 0, NULL, "user",
          "the user named in Forbidden answers", false, false },
        { NULL, "log-level", CFG_ENUM, &c->log_level, NULL, "info", 0, 0, "debug|info|warn|error", "log level",
          "log level", false, false },
        { NULL, "log-format", CFG_ENUM, &c->log_format, NULL, "text", 0, 0, "text|json", "log format",
          "log line format", false, false },
    };
    _Static_assert(sizeof table / sizeof table[0] == KF_NOPTIONS, "KF_NOPTIONS is the size of the table");
    memcpy(t, table, sizeof table);
    return sizeof table / sizeof table[0];
}

/* Takes every --deny out of argv (cfg keeps only the last value of a flag) into k->deny. The rest stays in order.
 * 0, or -1 with a message. */
static int take_deny(kubefake *k, int *argc, char **argv, char *err, size_t errlen)
{
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        const char *v = NULL;
        if (strcmp(argv[i], "--") == 0) { /* positional from here on: keep as is */
            while (i < *argc)
                argv[out++] = argv[i++];
            break;
        }
        if (strncmp(argv[i], "--deny=", 7) == 0) {
            v = argv[i] + 7;
        } else if (strcmp(argv[i], "--deny") == 0) {
            if (i + 1 >= *argc) {
                snprintf(err, errlen, "--deny needs a value such as patch:deployments/scale");
                return -1;
            }
            v = argv[++i];
        } else {
            argv[out++] = argv[i];
            continue;
        }
        char why[256];
        if (rbac_check_rule(v, why, sizeof why) < 0) {
            snprintf(err, errlen, "--deny=%s", why);
            return -1;
        }
        if (k->ndeny >= RBAC_MAX_RULES) {
            snprintf(err, errlen, "--deny is not allowed more than %d times", RBAC_MAX_RULES);
            return -1;
        }
        k->deny[k->ndeny++] = v;
    }
    argv[out] = NULL;
    *argc = out;
    return 0;
}

static bool address_ok(const char *a)
{
    struct sockaddr_in6 s6;
    struct sockaddr_in s4;
    return uv_ip4_addr(a, 0, &s4) == 0 || uv_ip6_addr(a, 0, &s6) == 0;
}

/* Checks that cfg cannot express, and resolves paths. 0, or -1 with a message. */
static int config_finish(kubefake *k, char *err, size_t errlen)
{
    kf_config *c = &k->cfg;
    if (!address_ok(c->listen)) {
        snprintf(err, errlen, "--listen=\"%s\" is not allowed: must be an IP address such as 127.0.0.1", c->listen);
        return -1;
    }
    int n = -1, used = 0;
    if (sscanf(c->ip_base, "127.0.0.%d%n", &n, &used) != 1 || c->ip_base[used] || n < 2 || n > KUBELET_IP_LAST) {
        snprintf(err, errlen, "--pod-ip-base=\"%s\" is not allowed: must be 127.0.0.N with N from 2 to %d",
                 c->ip_base, KUBELET_IP_LAST);
        return -1;
    }
    k->ip_first = n;
    if (c->bin_dir && *c->bin_dir && !realpath(c->bin_dir, k->bin_dir)) {
        snprintf(err, errlen, "--bin-dir=\"%s\" is not allowed: %s", c->bin_dir, strerror(errno));
        return -1;
    }
    if (c->token && *c->token && strpbrk(c->token, " \t\r\n")) {
        snprintf(err, errlen, "--token is not allowed: it must not contain white space");
        return -1;
    }
    ssize_t len = readlink("/proc/self/exe", k->self_exe, sizeof k->self_exe - 1);
    if (len <= 0) {
        snprintf(err, errlen, "cannot find my own executable (/proc/self/exe): %s", strerror(errno));
        return -1;
    }
    k->self_exe[len] = '\0';
    return 0;
}

/* ---- seeding ---- */

/* Kinds that pods may depend on go first, whatever the file's order. */
static bool seed_first(const cJSON *obj)
{
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(obj, "kind");
    return !(cJSON_IsString(kind) &&
             (strcmp(kind->valuestring, "Deployment") == 0 || strcmp(kind->valuestring, "Pod") == 0));
}

static int seed(kubefake *k, char *err, size_t errlen)
{
    char *text, why[512];
    size_t len;
    const char *path = k->cfg.seed;
    int rc = fs_read_file(path, SEED_MAX, &text, &len);
    if (rc < 0) {
        snprintf(err, errlen, "--seed=\"%s\": %s", path, rc == -EFBIG ? "larger than 16 MiB" : strerror(-rc));
        return -1;
    }
    cJSON *doc = json_parse_object(text, len, why, sizeof why);
    free(text);
    const cJSON *items;
    if (!doc || json_get_array(doc, "items", true, &items, why, sizeof why) < 0) {
        snprintf(err, errlen, "--seed=\"%s\": %s", path, why);
        cJSON_Delete(doc);
        return -1;
    }
    int total = cJSON_GetArraySize(items);
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < total; i++) {
            const cJSON *it = cJSON_GetArrayItem(items, i);
            if (!cJSON_IsObject(it)) {
                snprintf(err, errlen, "--seed=\"%s\": items[%d] is not an object", path, i);
                cJSON_Delete(doc);
                return -1;
            }
            if (seed_first(it) != (pass == 0))
                continue;
            cJSON *copy = cJSON_Duplicate(it, 1);
            if (!copy || api_seed_object(k->api, copy, why, sizeof why) < 0) {
                snprintf(err, errlen, "--seed=\"%s\": items[%d]: %s", path, i, copy ? why : "out of memory");
                cJSON_Delete(doc);
                return -1;
            }
        }
    cJSON_Delete(doc);
    log_info("kube-fake", "seeded %d object(s) from %s", total, path);
    return 0;
}

/* ---- running ---- */

static void on_store_change(void *arg, kobj *o, store_event ev)
{
    (void)ev;
    kubefake *k = arg;
    if (o->res == RES_DEPLOYMENTS || o->res == RES_PODS)
        controller_kick(k->ctl);
}

static void handle(const https_request *req, https_response *res, void *arg)
{
    kubefake *k = arg;
    if (admin_path(req->path))
        admin_handle(req, res, &k->adm);
    else
        api_handle(req, res, k->api);
}

static void pods_stopped(void *arg)
{
    kubefake *k = arg;
    log_info("kube-fake", "every pod process has stopped");
    kubelet_free(k->kl);
    k->kl = NULL;
    for (size_t i = 0; i < 2; i++)
        uv_close((uv_handle_t *)&k->signals[i], NULL);
}

static void stop(kubefake *k)
{
    if (k->stopping)
        return;
    k->stopping = true;
    for (size_t i = 0; i < 2; i++)
        uv_signal_stop(&k->signals[i]);
    https_free(k->http);
    k->http = NULL;
    controller_free(k->ctl);
    k->ctl = NULL;
    if (k->kl)
        kubelet_shutdown(k->kl, pods_stopped, k);
    else
        pods_stopped(k);
}

static void signal_cb(uv_signal_t *h, int signum)
{
    kubefake *k = h->data;
    log_info("kube-fake", "signal %d: shutting down", signum);
    stop(k);
}

static int work_dir_open(kubefake *k, char *err, size_t errlen)
{
    int rc;
    if (k->cfg.work_dir && *k->cfg.work_dir) {
        if ((rc = fs_mkdir_p(k->cfg.work_dir, 0700)) < 0 || !realpath(k->cfg.work_dir, k->work_dir)) {
            snprintf(err, errlen, "cannot create the work directory %s: %s", k->cfg.work_dir,
                     strerror(rc < 0 ? -rc : errno));
            return -1;
        }
        return 0;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(k->work_dir, sizeof k->work_dir, "%s/kube-fake-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(k->work_dir)) {
        snprintf(err, errlen, "cannot create a work directory in %s: %s", tmp && *tmp ? tmp : "/tmp",
                 strerror(errno));
        return -1;
    }
    k->work_dir_temp = true;
    return 0;
}

/* Sanitizer settings kube-fake runs with reach the pods too (an ASan build of the agent under make check-asan). */
static void collect_inherit(kubefake *k)
{
    static const char *const names[] = { "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS" };
    size_t n = 0;
    for (char **e = environ; e && *e; e++)
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            size_t len = strlen(names[i]);
            if (strncmp(*e, names[i], len) == 0 && (*e)[len] == '=' && n + 1 < sizeof k->inherit / sizeof k->inherit[0])
                k->inherit[n++] = *e;
        }
    k->inherit[n] = NULL;
}

static int write_ready_file(kubefake *k, int port)
{
    char text[96];
    int n = snprintf(text, sizeof text, "{\"port\":%d,\"pid\":%d}\n", port, (int)getpid());
    return fs_write_atomic(k->cfg.ready_file, text, (size_t)n, 0644);
}

static int run(kubefake *k)
{
    char err[1024];
    int rc;
    static const int signums[2] = { SIGTERM, SIGINT };
    for (size_t i = 0; i < 2; i++) {
        uv_signal_init(&k->loop, &k->signals[i]);
        k->signals[i].data = k;
        uv_signal_start(&k->signals[i], signal_cb, signums[i]);
    }
    if (work_dir_open(k, err, sizeof err) < 0) {
        fprintf(stderr, PROG ": %s\n", err);
        stop(k);
        uv_run(&k->loop, UV_RUN_DEFAULT);
        return 1;
    }
    collect_inherit(k);
    const char *path = getenv("PATH");
    const kubelet_opts kopts = {
        .bin_dir = k->bin_dir[0] ? k->bin_dir : NULL,
        .work_dir = k->work_dir,
        .self_exe = k->self_exe,
        .ip_first = k->ip_first,
        .probe_interval_ms = k->cfg.readiness_ms,
        .stop_grace_ms = k->cfg.stop_grace_ms,
        .host_path = path && *path ? path : "/usr/local/bin:/usr/bin:/bin",
        .inherit = k->inherit,
    };
    const api_opts aopts = { k->cfg.token, k->cfg.user, k->cfg.no_kubelet };
    k->st = store_new();
    k->rb = rbac_new();
    k->kl = k->st ? kubelet_new(&k->loop, k->st, &kopts) : NULL;
    k->ctl = k->kl ? controller_new(&k->loop, k->st, k->cfg.no_kubelet ? NULL : k->kl) : NULL;
    k->api = k->rb ? api_new(k->st, k->kl, k->rb, &aopts) : NULL;
    if (!k->st || !k->rb || !k->kl || !k->ctl || !k->api) {
        fprintf(stderr, PROG ": out of memory\n");
        stop(k);
        uv_run(&k->loop, UV_RUN_DEFAULT);
        return 1;
    }
    k->adm = (admin){ k->st, k->kl, k->rb };
    for (size_t i = 0; i < k->ndeny; i++)
        rbac_deny(k->rb, k->deny[i], err, sizeof err); /* checked in take_deny */
    store_set_hook(k->st, on_store_change, k);
    kubelet_set_finished(k->kl, controller_pod_finished, k->ctl);

    if (k->cfg.seed && *k->cfg.seed && seed(k, err, sizeof err) < 0) {
        fprintf(stderr, PROG ": %s\n", err);
        stop(k);
        uv_run(&k->loop, UV_RUN_DEFAULT);
        return 2;
    }
    const https_opts hopts = { k->cfg.listen, (int)k->cfg.port, MAX_BODY, handle, k };
    k->http = https_listen(&k->loop, &hopts, err, sizeof err);
    if (!k->http) {
        fprintf(stderr, PROG ": %s\n", err);
        stop(k);
        uv_run(&k->loop, UV_RUN_DEFAULT);
        return 1;
    }
    int port = https_port(k->http);
    const char *host = k->cfg.listen;
    const char *lb = strchr(host, ':') ? "[" : "", *rb = strchr(host, ':') ? "]" : "";
    char server[128];
    snprintf(server, sizeof server, "%s%s%s:%d", lb, host, rb, port);
    api_set_server(k->api, server);
    if (k->cfg.ready_file && *k->cfg.ready_file && (rc = write_ready_file(k, port)) < 0) {
        fprintf(stderr, PROG ": cannot write the ready file %s: %s\n", k->cfg.ready_file, strerror(-rc));
        stop(k);
        uv_run(&k->loop, UV_RUN_DEFAULT);
        return 1;
    }
    printf(PROG ": ready http://%s\n", server);
    fflush(stdout);
    if (k->cfg.no_kubelet)
        log_info("kube-fake", "API on http://%s%s; no kubelet: pods are not run; %zu deny rule(s)", server,
                 k->cfg.token && *k->cfg.token ? " (bearer token required)" : "", k->ndeny);
    else
        log_info("kube-fake", "API on http://%s%s; pods in %s, addresses from 127.0.0.%d; %zu deny rule(s)", server,
                 k->cfg.token && *k->cfg.token ? " (bearer token required)" : "", k->work_dir, k->ip_first,
                 k->ndeny);
    uv_run(&k->loop, UV_RUN_DEFAULT);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--pod-exec") == 0)
        return pod_exec(argc, argv);

    static kubefake k; /* large (paths), and main's only state */
    cfg_option table[KF_NOPTIONS];
    size_t n = option_table(&k.cfg, table);
    char err[1024];

    int rc = take_deny(&k, &argc, argv, err, sizeof err);
    if (rc == 0)
        rc = cfg_parse(table, n, argc, argv, environ, NULL, NULL, err, sizeof err);
    if (rc == CFG_HELP) {
        printf("Usage: " PROG " [flags]\n\nA small Kubernetes API server for tests: Deployments, Pods, Secrets, "
               "Events, Leases and\nSelfSubjectAccessReviews, with a controller that runs each pod's container as "
               "a real process\non its own 127.0.0.N address. See tests/fakes/kube-fake/README.md.\n\n");
        cfg_print_help(stdout, table, n);
        return 0;
    }
    if (rc == CFG_VERSION) {
        printf(PROG " %s\n", IAC_VERSION);
        return 0;
    }
    if (rc != CFG_OK || config_finish(&k, err, sizeof err) < 0) {
        fprintf(stderr, PROG ": %s\n", err);
        return 2;
    }

    log_setup((log_level)k.cfg.log_level, (log_format)k.cfg.log_format);
    if (k.cfg.token && *k.cfg.token)
        log_secret_add(k.cfg.token);
    signal(SIGPIPE, SIG_IGN);

    uv_loop_init(&k.loop);
    rc = run(&k);
    api_free(k.api);
    store_free(k.st);
    rbac_free(k.rb);
    if (k.work_dir_temp)
        fs_rm_rf(k.work_dir);
    if (uv_loop_close(&k.loop) != 0)
        log_warn("kube-fake", "loop closed with handles still open");
    log_secret_remove(NULL);
    return rc;
}
