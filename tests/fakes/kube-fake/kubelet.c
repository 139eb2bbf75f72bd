/* kubelet.c — the pod simulator (see kubelet.h).
 *
 * Each pod object under the kubelet's charge carries a kpod (o->ext): its process, one timer (start retry, or
 * the grace period's SIGKILL), its address and probe state. The pod's status is rebuilt from the kpod whenever
 * the kpod changes (status_write), so the object never disagrees with the process. A kpod is detached from its
 * object when the object goes (or at kubelet_free) and freed once its libuv handles are closed.
 *
 *   kubelet_run → start ──spawned──▶ RUNNING ──exit──▶ TERMINATED (Succeeded/Failed; the controller replaces it)
 *                   │ └─no IP / bad env / no exe──▶ WAITING, retry in 1 s…30 s
 *   kubelet_delete: RUNNING → SIGTERM, deletionTimestamp, SIGKILL after grace → exit → object removed;
 *                   anything else → object removed at once. */
#include "kubelet.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iac/fsutil.h"
#include "iac/httpc.h"
#include "iac/log.h"
#include "podenv.h"

#define RETRY_FIRST_MS 1000
#define RETRY_MAX_MS   30000
#define IP_MAX         (KUBELET_IP_LAST + 1)

typedef enum { KP_WAITING, KP_RUNNING, KP_TERMINATED } kp_state;

enum { COND_SCHEDULED, COND_INITIALIZED, COND_CONTAINERS_READY, COND_READY, COND_COUNT };
static const char *const cond_types[COND_COUNT] = { "PodScheduled", "Initialized", "ContainersReady", "Ready" };

typedef struct kpod kpod;
struct kpod {
    kubelet    *k;   /* NULL once detached */
    kobj       *obj; /* NULL once detached */
    kpod       *prev, *next;
    uv_process_t proc;
    uv_timer_t  timer;
    int         handles;   /* open libuv handles; the kpod is freed when detached and this reaches 0 */
    bool        proc_open; /* proc is initialised and not yet closed */
    kp_state    state;
    bool        deleting, ready, scheduled;
    int         pid;
    int         ip;                 /* last octet while the address is held, else 0 */
    char        ipstr[16];          /* the address the pod had (kept in status after exit) */
    int         port;
    bool        probe;
    char        probe_url[512];
    int         probe_timeout_ms, failure_threshold, fails;
    httpc_call *probing;
    int         attempts;           /* failed starts in a row */
    char        reason[64], message[512];
    int         exit_code, term_signal;
    int64_t     run_ms, started_ms, finished_ms, kill_at; /* kill_at: loop time of the scheduled SIGKILL */
    bool        cond_val[COND_COUNT];
    int64_t     cond_since[COND_COUNT];
};

typedef struct {
    char    ns[STORE_NS_MAX];
    char    name[STORE_NAME_MAX];
    int     pid;
    char    ip[16];
    int     exit_code, term_signal;
    bool    deleted;
    int64_t at_ms;
} gone_rec;

struct kubelet {
    uv_loop_t *loop;
    store     *st;
    char      *bin_dir, *work_dir, *self_exe, *host_path;
    char     **inherit;
    int        ip_first;
    int64_t    probe_ms, stop_grace_ms;
    httpc     *http;
    uv_timer_t probe_timer, stop_timer;
    int        handles;
    kpod      *pods;
    bool       ip_used[IP_MAX];
    gone_rec   gone[KUBELET_GONE_KEPT];
    size_t     ngone, gone_next;
    kubelet_finished_cb finished;
    void      *finished_arg;
    bool       stopping, stop_reported;
    void     (*stop_done)(void *arg);
    void      *stop_arg;
};

static void start(kpod *p);

/* ---- small helpers ---- */

static const char *pod_ns(const kpod *p) { return p->obj ? p->obj->ns : "?"; }
static const char *pod_name(const kpod *p) { return p->obj ? p->obj->name : "?"; }

static void pod_dir(const kubelet *k, const kobj *o, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/pods/%s", k->work_dir, o->name);
}

static int ip_alloc(kubelet *k)
{
    for (int i = k->ip_first; i <= KUBELET_IP_LAST; i++)
        if (!k->ip_used[i]) {
            k->ip_used[i] = true;
            return i;
        }
    return 0;
}

static void retry_cb(uv_timer_t *t);

/* Frees p's address; a pod waiting for one is retried at once rather than at its next backoff. */
static void ip_release(kpod *p)
{
    kubelet *k = p->k;
    if (!k || !p->ip) {
        p->ip = 0;
        return;
    }
    k->ip_used[p->ip] = false;
    p->ip = 0;
    for (kpod *w = k->pods; w && !k->stopping; w = w->next)
        if (w != p && w->state == KP_WAITING && !w->scheduled && !w->deleting && w->reason[0]) {
            uv_timer_start(&w->timer, retry_cb, 0, 0);
            break;
        }
}

/* The process leads its own group (setsid), so the group id is its pid. Never the pid alone: after the exit it may
 * already belong to another process. */
static void signal_group(kpod *p, int sig)
{
    if (p->pid > 0)
        kill(-p->pid, sig);
}

static const cJSON *first_container(const cJSON *doc)
{
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(doc, "spec");
    const cJSON *cs = cJSON_IsObject(spec) ? cJSON_GetObjectItemCaseSensitive(spec, "containers") : NULL;
    return cJSON_IsArray(cs) ? cJSON_GetArrayItem(cs, 0) : NULL;
}

static const char *container_str(const cJSON *doc, const char *key, const char *def)
{
    const cJSON *c = first_container(doc);
    const cJSON *v = cJSON_IsObject(c) ? cJSON_GetObjectItemCaseSensitive(c, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : def;
}

/* ---- status ---- */

static void set_cond(kpod *p, int which, bool v)
{
    if (p->cond_since[which] == 0 || p->cond_val[which] != v) {
        p->cond_val[which] = v;
        p->cond_since[which] = store_now_ms();
    }
}

static cJSON *conditions(kpod *p)
{
    set_cond(p, COND_SCHEDULED, p->scheduled);
    set_cond(p, COND_INITIALIZED, p->scheduled);
    set_cond(p, COND_CONTAINERS_READY, p->ready);
    set_cond(p, COND_READY, p->ready);
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; arr && i < COND_COUNT; i++) {
        if (!p->scheduled && i != COND_SCHEDULED)
            continue;
        char ts[STORE_TIME_MAX];
        store_time(p->cond_since[i], ts);
        cJSON *c = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, c);
        cJSON_AddStringToObject(c, "type", cond_types[i]);
        cJSON_AddStringToObject(c, "status", p->cond_val[i] ? "True" : "False");
        cJSON_AddNullToObject(c, "lastProbeTime");
        cJSON_AddStringToObject(c, "lastTransitionTime", ts);
        if (i == COND_SCHEDULED && !p->scheduled) {
            cJSON_AddStringToObject(c, "reason", "Unschedulable");
            cJSON_AddStringToObject(c, "message", p->message);
        } else if ((i == COND_READY || i == COND_CONTAINERS_READY) && !p->ready) {
            char msg[128];
            snprintf(msg, sizeof msg, "containers with unready status: [%s]",
                     container_str(p->obj->doc, "name", "?"));
            cJSON_AddStringToObject(c, "reason",
                                    p->state == KP_TERMINATED ? "PodCompleted" : "ContainersNotReady");
            cJSON_AddStringToObject(c, "message", msg);
        }
    }
    return arr;
}

static cJSON *container_state(const kpod *p)
{
    cJSON *st = cJSON_CreateObject(), *s;
    char t1[STORE_TIME_MAX], t2[STORE_TIME_MAX], cid[48];
    switch (p->state) {
    case KP_WAITING:
        s = cJSON_AddObjectToObject(st, "waiting");
        cJSON_AddStringToObject(s, "reason", p->reason[0] ? p->reason : "ContainerCreating");
        if (p->message[0])
            cJSON_AddStringToObject(s, "message", p->message);
        break;
    case KP_RUNNING:
        s = cJSON_AddObjectToObject(st, "running");
        store_time(p->started_ms, t1);
        cJSON_AddStringToObject(s, "startedAt", t1);
        break;
    case KP_TERMINATED:
        s = cJSON_AddObjectToObject(st, "terminated");
        cJSON_AddNumberToObject(s, "exitCode", p->exit_code);
        if (p->term_signal)
            cJSON_AddNumberToObject(s, "signal", p->term_signal);
        cJSON_AddStringToObject(s, "reason", p->exit_code == 0 && !p->term_signal ? "Completed" : "Error");
        store_time(p->started_ms, t1);
        store_time(p->finished_ms, t2);
        cJSON_AddStringToObject(s, "startedAt", t1);
        cJSON_AddStringToObject(s, "finishedAt", t2);
        snprintf(cid, sizeof cid, "kube-fake://%d", p->pid);
        cJSON_AddStringToObject(s, "containerID", cid);
        break;
    }
    return st;
}

static const char *phase(const kpod *p)
{
    switch (p->state) {
    case KP_WAITING:
        return "Pending";
    case KP_RUNNING:
        return "Running";
    case KP_TERMINATED:
        return p->exit_code == 0 && !p->term_signal ? "Succeeded" : "Failed";
    }
    return "Unknown";
}

/* Rebuilds the pod's status from p and stores it when it changed. */
static void status_write(kpod *p)
{
    if (!p->k || !p->obj)
        return;
    cJSON *doc = p->obj->doc;
    cJSON *st = cJSON_CreateObject();
    char ts[STORE_TIME_MAX], cid[48];
    if (!st)
        return;
    cJSON_AddStringToObject(st, "phase", phase(p));
    cJSON_AddItemToObject(st, "conditions", conditions(p));
    if (p->scheduled) {
        cJSON_AddStringToObject(st, "hostIP", "127.0.0.1");
        cJSON *hips = cJSON_AddArrayToObject(st, "hostIPs"), *h = cJSON_CreateObject();
        cJSON_AddStringToObject(h, "ip", "127.0.0.1");
        cJSON_AddItemToArray(hips, h);
    }
    if (p->ipstr[0]) {
        cJSON_AddStringToObject(st, "podIP", p->ipstr);
        cJSON *ips = cJSON_AddArrayToObject(st, "podIPs"), *i = cJSON_CreateObject();
        cJSON_AddStringToObject(i, "ip", p->ipstr);
        cJSON_AddItemToArray(ips, i);
    }
    store_time(p->run_ms, ts);
    cJSON_AddStringToObject(st, "startTime", ts);
    cJSON *css = cJSON_AddArrayToObject(st, "containerStatuses"), *cs = cJSON_CreateObject();
    cJSON_AddItemToArray(css, cs);
    cJSON_AddStringToObject(cs, "name", container_str(doc, "name", "agent"));
    cJSON_AddItemToObject(cs, "state", container_state(p));
    cJSON_AddItemToObject(cs, "lastState", cJSON_CreateObject());
    cJSON_AddBoolToObject(cs, "ready", p->ready);
    cJSON_AddNumberToObject(cs, "restartCount", 0);
    cJSON_AddStringToObject(cs, "image", container_str(doc, "image", "iac-agent"));
    cJSON_AddStringToObject(cs, "imageID", "");
    if (p->pid > 0) {
        snprintf(cid, sizeof cid, "kube-fake://%d", p->pid);
        cJSON_AddStringToObject(cs, "containerID", cid);
    }
    cJSON_AddBoolToObject(cs, "started", p->state == KP_RUNNING);
    cJSON_AddStringToObject(st, "qosClass", "BestEffort");

    cJSON *old = cJSON_GetObjectItemCaseSensitive(doc, "status");
    if (old && cJSON_Compare(old, st, 1)) {
        cJSON_Delete(st);
        return;
    }
    if (old)
        cJSON_ReplaceItemInObjectCaseSensitive(doc, "status", st);
    else
        cJSON_AddItemToObject(doc, "status", st);
    store_changed(p->k->st, p->obj);
}

/* ---- lifetime of a kpod ---- */

static void kpod_closed(uv_handle_t *h)
{
    kpod *p = h->data;
    if (--p->handles == 0 && !p->obj)
        free(p);
}

/* Cuts p from its object and the kubelet; p is freed once its handles are closed. A process still running keeps
 * running (kubelet_free at exit: PR_SET_PDEATHSIG ends it). */
static void detach(kpod *p)
{
    kubelet *k = p->k;
    if (!k)
        return;
    if (p->probing) {
        httpc_cancel(p->probing);
        p->probing = NULL;
    }
    ip_release(p);
    if (p->prev)
        p->prev->next = p->next;
    else
        k->pods = p->next;
    if (p->next)
        p->next->prev = p->prev;
    if (p->obj)
        p->obj->ext = NULL;
    p->obj = NULL;
    p->k = NULL;
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, kpod_closed);
    if (p->proc_open) {
        p->proc_open = false;
        uv_close((uv_handle_t *)&p->proc, kpod_closed);
    }
}

static void remember_gone(kubelet *k, const kpod *p)
{
    gone_rec *g = &k->gone[k->gone_next];
    k->gone_next = (k->gone_next + 1) % KUBELET_GONE_KEPT;
    if (k->ngone < KUBELET_GONE_KEPT)
        k->ngone++;
    memset(g, 0, sizeof *g);
    snprintf(g->ns, sizeof g->ns, "%s", pod_ns(p));
    snprintf(g->name, sizeof g->name, "%s", pod_name(p));
    snprintf(g->ip, sizeof g->ip, "%s", p->ipstr);
    g->pid = p->pid;
    g->exit_code = p->exit_code;
    g->term_signal = p->term_signal;
    g->deleted = p->deleting;
    g->at_ms = p->finished_ms;
}

static bool any_running(const kubelet *k)
{
    for (const kpod *p = k->pods; p; p = p->next)
        if (p->state == KP_RUNNING)
            return true;
    return false;
}

static void stop_report(kubelet *k)
{
    if (k->stopping && !k->stop_reported && !any_running(k)) {
        k->stop_reported = true;
        uv_timer_stop(&k->stop_timer);
        if (k->stop_done)
            k->stop_done(k->stop_arg);
    }
}

/* ---- process ---- */

static void proc_exited(uv_process_t *proc, int64_t status, int sig)
{
    kpod *p = proc->data;
    kubelet *k = p->k;
    signal_group(p, SIGKILL); /* whatever the container left behind goes with it, as with a cgroup */
    p->state = KP_TERMINATED;
    p->exit_code = (int)status;
    p->term_signal = sig;
    p->finished_ms = store_now_ms();
    p->ready = false;
    if (p->probing) {
        httpc_cancel(p->probing);
        p->probing = NULL;
    }
    uv_timer_stop(&p->timer);
    p->proc_open = false;
    uv_close((uv_handle_t *)proc, kpod_closed);
    if (!k)
        return;
    ip_release(p);
    remember_gone(k, p);
    log_info("kubelet", "pod %s/%s: exited pid %d %s %d%s", pod_ns(p), pod_name(p), p->pid,
             sig ? "signal" : "code", sig ? sig : (int)status, p->deleting ? " (deleted)" : "");
    if (p->deleting) {
        kobj *o = p->obj;
        log_info("kubelet", "pod %s/%s: removed", pod_ns(p), pod_name(p));
        detach(p);
        store_remove(k->st, o);
    } else {
        status_write(p);
        if (!k->stopping && k->finished)
            k->finished(k->finished_arg, p->obj);
    }
    stop_report(k);
}

static void retry_cb(uv_timer_t *t)
{
    start(t->data);
}

static void retry_later(kpod *p)
{
    int shift = p->attempts < 5 ? p->attempts : 5;
    int64_t delay = (int64_t)RETRY_FIRST_MS << shift;
    if (delay > RETRY_MAX_MS)
        delay = RETRY_MAX_MS;
    p->attempts++;
    uv_timer_start(&p->timer, retry_cb, (uint64_t)delay, 0);
}

/* The pod cannot start yet: say why in its status (logged when the reason changes) and try again later. */
static void waiting(kpod *p, const char *reason, const char *message)
{
    bool news = strcmp(p->reason, reason) != 0 || strcmp(p->message, message) != 0;
    snprintf(p->reason, sizeof p->reason, "%s", reason);
    snprintf(p->message, sizeof p->message, "%s", message);
    if (news)
        log_warn("kubelet", "pod %s/%s: cannot start: %s: %s", pod_ns(p), pod_name(p), reason, message);
    status_write(p);
    retry_later(p);
}

static int open_log(const char *dir)
{
    char path[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/log", dir);
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

static void start(kpod *p)
{
    kubelet *k = p->k;
    char dir[PATH_MAX], data[PATH_MAX + 8], reason[64], err[512];
    if (!k || p->deleting || k->stopping || p->state != KP_WAITING)
        return;
    if (p->proc_open) { /* a failed spawn's handle is still closing */
        uv_timer_start(&p->timer, retry_cb, 10, 0);
        return;
    }
    if (!p->ip && !(p->ip = ip_alloc(k))) {
        p->scheduled = false;
        char msg[128];
        snprintf(msg, sizeof msg, "0/1 nodes are available: no free pod address in 127.0.0.%d-%d", k->ip_first,
                 KUBELET_IP_LAST);
        waiting(p, "Unschedulable", msg);
        return;
    }
    p->scheduled = true;
    snprintf(p->ipstr, sizeof p->ipstr, "127.0.0.%d", p->ip);
    pod_dir(k, p->obj, dir, sizeof dir);

    podenv env;
    const podenv_ctx ctx = { p->ipstr, dir, k->bin_dir, KUBELET_NODE, k->host_path, k->inherit, k->st };
    if (podenv_build(p->obj->doc, &ctx, &env, reason, sizeof reason, err, sizeof err) < 0) {
        waiting(p, reason, err);
        return;
    }
    snprintf(data, sizeof data, "%s/data", dir);
    int rc = fs_mkdir_p(data, 0700);
    int fd = rc < 0 ? rc : open_log(dir);
    if (fd < 0) {
        snprintf(err, sizeof err, "cannot prepare %.300s: %s", dir, strerror(fd == -1 ? errno : -fd));
        podenv_free(&env);
        waiting(p, "RunContainerError", err);
        return;
    }

    /* kube-fake --pod-exec <our pid> <exe> <argv…>: the trampoline sets PR_SET_PDEATHSIG, then execs. */
    size_t argc = 0;
    while (env.argv[argc])
        argc++;
    char ppid[16];
    snprintf(ppid, sizeof ppid, "%d", (int)getpid());
    char **argv = calloc(argc + 5, sizeof *argv);
    if (!argv) {
        close(fd);
        podenv_free(&env);
        waiting(p, "RunContainerError", "out of memory");
        return;
    }
    argv[0] = k->self_exe;
    argv[1] = "--pod-exec";
    argv[2] = ppid;
    argv[3] = env.exe;
    memcpy(argv + 4, env.argv, argc * sizeof *argv);

    uv_stdio_container_t stdio[3] = {
        { .flags = UV_IGNORE },
        { .flags = UV_INHERIT_FD, .data.fd = fd },
        { .flags = UV_INHERIT_FD, .data.fd = fd },
    };
    uv_process_options_t o = {
        .exit_cb = proc_exited,
        .file = k->self_exe,
        .args = argv,
        .env = env.env,
        .cwd = env.workdir,
        .flags = UV_PROCESS_DETACHED, /* setsid(): a process group of its own */
        .stdio_count = 3,
        .stdio = stdio,
    };
    p->proc.data = p;
    rc = uv_spawn(k->loop, &p->proc, &o);
    p->proc_open = true; /* uv_spawn initialises the handle even when it fails */
    p->handles++;
    close(fd);
    free(argv);
    if (rc < 0) {
        p->proc_open = false;
        uv_close((uv_handle_t *)&p->proc, kpod_closed);
        snprintf(err, sizeof err, "cannot start %s: %s", env.exe, uv_strerror(rc));
        podenv_free(&env);
        waiting(p, "RunContainerError", err);
        return;
    }
    p->state = KP_RUNNING;
    p->pid = p->proc.pid;
    p->started_ms = store_now_ms();
    p->attempts = 0;
    p->reason[0] = p->message[0] = '\0';
    p->port = env.status_port;
    p->probe = env.probe;
    p->ready = !env.probe;
    p->fails = 0;
    p->probe_timeout_ms = env.probe_timeout_ms;
    p->failure_threshold = env.probe_failure_threshold;
    snprintf(p->probe_url, sizeof p->probe_url, "http://%s:%d%s", env.probe_host ? env.probe_host : p->ipstr,
             env.probe_port, env.probe_path);
    log_info("kubelet", "pod %s/%s: started pid %d on %s (status port %d): %s", pod_ns(p), pod_name(p), p->pid,
             p->ipstr, p->port, env.exe);
    podenv_free(&env);
    status_write(p);
}

static void kill_cb(uv_timer_t *t)
{
    kpod *p = t->data;
    if (p->state == KP_RUNNING) {
        log_info("kubelet", "pod %s/%s: grace period over: SIGKILL to pid %d", pod_ns(p), pod_name(p), p->pid);
        signal_group(p, SIGKILL);
    }
}

/* ---- probes ---- */

static void probe_done(const httpc_response *res, void *arg)
{
    kpod *p = arg;
    p->probing = NULL;
    if (p->state != KP_RUNNING)
        return;
    bool ok = res->error == HTTPC_OK && res->status >= 200 && res->status < 400;
    if (ok) {
        p->fails = 0;
        if (!p->ready) {
            p->ready = true;
            log_info("kubelet", "pod %s/%s: ready", pod_ns(p), pod_name(p));
            status_write(p);
        }
        return;
    }
    p->fails++;
    if (p->ready && p->fails >= p->failure_threshold) {
        p->ready = false;
        log_info("kubelet", "pod %s/%s: not ready: %s", pod_ns(p), pod_name(p),
                 res->error == HTTPC_OK ? "probe answered an error status" : res->errmsg);
        status_write(p);
    }
}

static void probe_tick(uv_timer_t *t)
{
    kubelet *k = t->data;
    for (kpod *p = k->pods; p; p = p->next) {
        if (p->state != KP_RUNNING || !p->probe || p->probing)
            continue;
        const httpc_req req = { .method = "GET", .url = p->probe_url, .mode = HTTPC_PLAIN,
                                .timeout_ms = p->probe_timeout_ms };
        p->probing = httpc_request(k->http, &req, probe_done, p);
    }
}

/* ---- API ---- */

kubelet *kubelet_new(uv_loop_t *loop, store *st, const kubelet_opts *opts)
{
    kubelet *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->loop = loop;
    k->st = st;
    k->ip_first = opts->ip_first;
    k->probe_ms = opts->probe_interval_ms > 0 ? opts->probe_interval_ms : 200;
    k->stop_grace_ms = opts->stop_grace_ms > 0 ? opts->stop_grace_ms : KUBELET_STOP_GRACE;
    k->bin_dir = opts->bin_dir ? strdup(opts->bin_dir) : NULL;
    k->work_dir = strdup(opts->work_dir);
    k->self_exe = strdup(opts->self_exe);
    k->host_path = strdup(opts->host_path ? opts->host_path : "/usr/local/bin:/usr/bin:/bin");
    size_t n = 0;
    while (opts->inherit && opts->inherit[n])
        n++;
    k->inherit = calloc(n + 1, sizeof *k->inherit);
    for (size_t i = 0; k->inherit && i < n; i++)
        if (!(k->inherit[i] = strdup(opts->inherit[i])))
            break;
    const httpc_opts hopts = { .connect_timeout_ms = 1000, .total_timeout_ms = 2000, .max_response = 64 << 10 };
    k->http = httpc_new(loop, &hopts);
    bool ok = k->work_dir && k->self_exe && k->host_path && k->inherit && k->http &&
              (!opts->bin_dir || k->bin_dir) && (n == 0 || k->inherit[n - 1]);
    uv_timer_init(loop, &k->probe_timer);
    uv_timer_init(loop, &k->stop_timer);
    k->probe_timer.data = k->stop_timer.data = k;
    k->handles = 2;
    if (!ok) {
        kubelet_free(k);
        return NULL;
    }
    uv_timer_start(&k->probe_timer, probe_tick, (uint64_t)k->probe_ms, (uint64_t)k->probe_ms);
    return k;
}

void kubelet_set_finished(kubelet *k, kubelet_finished_cb cb, void *arg)
{
    k->finished = cb;
    k->finished_arg = arg;
}

int kubelet_run(kubelet *k, kobj *pod)
{
    kpod *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->k = k;
    p->obj = pod;
    p->state = KP_WAITING;
    p->run_ms = store_now_ms();
    uv_timer_init(k->loop, &p->timer);
    p->timer.data = p;
    p->handles = 1;
    p->next = k->pods;
    if (k->pods)
        k->pods->prev = p;
    k->pods = p;
    pod->ext = p;

    /* Bound to our one node, as the scheduler would. */
    cJSON *spec = cJSON_GetObjectItemCaseSensitive(pod->doc, "spec");
    if (cJSON_IsObject(spec)) {
        cJSON_DeleteItemFromObjectCaseSensitive(spec, "nodeName");
        cJSON_AddStringToObject(spec, "nodeName", KUBELET_NODE);
    }
    log_info("kubelet", "pod %s/%s: created", pod->ns, pod->name);
    status_write(p);
    start(p);
    return 0;
}

int kubelet_delete(kubelet *k, kobj *pod, int64_t grace_ms)
{
    kpod *p = pod->ext;
    if (grace_ms < 0)
        grace_ms = podenv_grace_ms(pod->doc);
    if (!p || p->state != KP_RUNNING) {
        if (p)
            detach(p);
        log_info("kubelet", "pod %s/%s: deleted (no process)", pod->ns, pod->name);
        store_remove(k->st, pod);
        return KUBELET_REMOVED;
    }
    uint64_t now = uv_now(k->loop);
    if (p->deleting) { /* a second delete may only shorten the grace period */
        if (now + (uint64_t)grace_ms < (uint64_t)p->kill_at) {
            p->kill_at = (int64_t)(now + (uint64_t)grace_ms);
            uv_timer_start(&p->timer, kill_cb, (uint64_t)grace_ms, 0);
        }
        return KUBELET_TERMINATING;
    }
    p->deleting = true;
    p->kill_at = (int64_t)(now + (uint64_t)grace_ms);
    cJSON *m = store_meta(pod->doc);
    char ts[STORE_TIME_MAX];
    store_time(store_now_ms() + grace_ms, ts);
    if (m) {
        cJSON_DeleteItemFromObjectCaseSensitive(m, "deletionTimestamp");
        cJSON_DeleteItemFromObjectCaseSensitive(m, "deletionGracePeriodSeconds");
        cJSON_AddStringToObject(m, "deletionTimestamp", ts);
        cJSON_AddNumberToObject(m, "deletionGracePeriodSeconds", (double)(grace_ms / 1000));
    }
    store_changed(k->st, pod);
    log_info("kubelet", "pod %s/%s: deleting: SIGTERM to pid %d, SIGKILL after %lld ms", pod->ns, pod->name,
             p->pid, (long long)grace_ms);
    signal_group(p, grace_ms == 0 ? SIGKILL : SIGTERM);
    uv_timer_start(&p->timer, kill_cb, (uint64_t)grace_ms, 0);
    return KUBELET_TERMINATING;
}

int kubelet_signal(kubelet *k, kobj *pod, int sig)
{
    (void)k;
    kpod *p = pod->ext;
    if (!p || p->state != KP_RUNNING)
        return -ESRCH;
    log_info("kubelet", "pod %s/%s: signal %d to pid %d (admin)", pod->ns, pod->name, sig, p->pid);
    signal_group(p, sig);
    return 0;
}

static const char *owner_name(const kubelet *k, const kobj *o)
{
    if (!o->owner[0])
        return NULL;
    for (kobj *d = store_first(k->st, RES_DEPLOYMENTS); d; d = d->next)
        if (strcmp(d->uid, o->owner) == 0)
            return d->name;
    return NULL;
}

cJSON *kubelet_admin_json(const kubelet *k)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *pods = cJSON_AddArrayToObject(doc, "pods");
    cJSON *gone = cJSON_AddArrayToObject(doc, "gone");
    char dir[PATH_MAX];
    for (kobj *o = store_first(k->st, RES_PODS); o; o = o->next) {
        const kpod *p = o->ext;
        cJSON *row = cJSON_CreateObject();
        cJSON_AddItemToArray(pods, row);
        cJSON_AddStringToObject(row, "namespace", o->ns);
        cJSON_AddStringToObject(row, "name", o->name);
        cJSON_AddNumberToObject(row, "pid", p && p->state == KP_RUNNING ? p->pid : 0);
        cJSON_AddStringToObject(row, "ip", p ? p->ipstr : "");
        cJSON_AddNumberToObject(row, "port", p ? p->port : 0);
        cJSON_AddStringToObject(row, "phase", p ? phase(p) : "Unknown");
        cJSON_AddBoolToObject(row, "ready", p && p->ready);
        cJSON_AddBoolToObject(row, "deleting", p && p->deleting);
        const char *owner = owner_name(k, o);
        if (owner)
            cJSON_AddStringToObject(row, "deployment", owner);
        else
            cJSON_AddNullToObject(row, "deployment");
        if (p && p->state == KP_WAITING && p->reason[0]) {
            cJSON_AddStringToObject(row, "waiting", p->reason);
            cJSON_AddStringToObject(row, "message", p->message);
        }
        pod_dir(k, o, dir, sizeof dir);
        cJSON_AddStringToObject(row, "dir", dir);
    }
    for (size_t i = 0; i < k->ngone; i++) { /* oldest first */
        const gone_rec *g = &k->gone[(k->gone_next + KUBELET_GONE_KEPT - k->ngone + i) % KUBELET_GONE_KEPT];
        char ts[STORE_TIME_MAX];
        cJSON *row = cJSON_CreateObject();
        cJSON_AddItemToArray(gone, row);
        cJSON_AddStringToObject(row, "namespace", g->ns);
        cJSON_AddStringToObject(row, "name", g->name);
        cJSON_AddNumberToObject(row, "pid", g->pid);
        cJSON_AddStringToObject(row, "ip", g->ip);
        if (g->term_signal)
            cJSON_AddNullToObject(row, "exit_code");
        else
            cJSON_AddNumberToObject(row, "exit_code", g->exit_code);
        cJSON_AddNumberToObject(row, "signal", g->term_signal);
        cJSON_AddBoolToObject(row, "deleted", g->deleted);
        store_time(g->at_ms, ts);
        cJSON_AddStringToObject(row, "finished", ts);
    }
    return doc;
}

static void stop_kill_cb(uv_timer_t *t)
{
    kubelet *k = t->data;
    if (!k->stop_reported) { /* the first firing (0 ms) only reports an empty node */
        stop_report(k);
        if (k->stop_reported)
            return;
    }
    for (kpod *p = k->pods; p; p = p->next)
        if (p->state == KP_RUNNING) {
            log_warn("kubelet", "pod %s/%s: still running %lld ms after SIGTERM: SIGKILL", pod_ns(p), pod_name(p),
                     (long long)k->stop_grace_ms);
            signal_group(p, SIGKILL);
        }
}

void kubelet_shutdown(kubelet *k, void (*done)(void *arg), void *arg)
{
    if (k->stopping)
        return;
    k->stopping = true;
    k->stop_done = done;
    k->stop_arg = arg;
    uv_timer_stop(&k->probe_timer);
    int n = 0;
    for (kpod *p = k->pods; p; p = p->next) {
        uv_timer_stop(&p->timer);
        if (p->state == KP_RUNNING) {
            signal_group(p, SIGTERM);
            n++;
        }
    }
    if (n)
        log_info("kubelet", "stopping %d pod process(es): SIGTERM, SIGKILL after %lld ms", n,
                 (long long)k->stop_grace_ms);
    /* 0 ms: report from the loop when nothing runs; otherwise the SIGKILL deadline. */
    uv_timer_start(&k->stop_timer, stop_kill_cb, n ? (uint64_t)k->stop_grace_ms : 0, 0);
}

static void kubelet_closed(uv_handle_t *h)
{
    kubelet *k = h->data;
    if (--k->handles == 0) {
        for (size_t i = 0; k->inherit && k->inherit[i]; i++)
            free(k->inherit[i]);
        free(k->inherit);
        free(k->bin_dir);
        free(k->work_dir);
        free(k->self_exe);
        free(k->host_path);
        free(k);
    }
}

void kubelet_free(kubelet *k)
{
    if (!k)
        return;
    while (k->pods)
        detach(k->pods);
    httpc_free(k->http);
    k->http = NULL;
    uv_close((uv_handle_t *)&k->probe_timer, kubelet_closed);
    uv_close((uv_handle_t *)&k->stop_timer, kubelet_closed);
}
