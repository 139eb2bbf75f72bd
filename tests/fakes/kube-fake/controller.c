/* controller.c — Deployment + ReplicaSet controller (see controller.h).
 *
 * One pass reads every Deployment and the pods it owns straight from the store (ground truth, nothing carried
 * between passes except the replacement backoff), acts, and rewrites the Deployment's status. Pods are owned by
 * uid (kobj.owner), set when the controller creates them. */
#include "controller.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iac/jsonw.h"
#include "iac/log.h"
#include "iac/strbuf.h"

#define BACKOFF_FIRST_MS 500
#define BACKOFF_MAX_MS   30000
#define DELETION_COST    "controller.kubernetes.io/pod-deletion-cost"

typedef struct {
    char     uid[STORE_UID_MAX];
    int      streak;     /* pods that ended on their own since the Deployment last had a Ready pod */
    uint64_t hold_until; /* loop time before which no replacement is created */
} backoff;

struct controller {
    uv_loop_t *loop;
    store     *st;
    kubelet   *k;
    uv_timer_t timer;
    bool       running; /* inside a pass */
    bool       stopped;
    backoff   *bo;
    size_t     nbo, capbo;
};

/* ---- reading objects ---- */

static const cJSON *get(const cJSON *o, const char *key)
{
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

static const char *pod_phase(const kobj *p)
{
    const cJSON *ph = get(get(p->doc, "status"), "phase");
    return cJSON_IsString(ph) ? ph->valuestring : "Pending";
}

static bool pod_terminating(const kobj *p) { return get(get(p->doc, "metadata"), "deletionTimestamp") != NULL; }

static bool pod_finished(const kobj *p)
{
    const char *ph = pod_phase(p);
    return strcmp(ph, "Succeeded") == 0 || strcmp(ph, "Failed") == 0;
}

static bool pod_active(const kobj *p) { return !pod_terminating(p) && !pod_finished(p); }

static bool pod_ready(const kobj *p)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, get(get(p->doc, "status"), "conditions"))
    {
        const cJSON *t = get(c, "type"), *s = get(c, "status");
        if (cJSON_IsString(t) && strcmp(t->valuestring, "Ready") == 0)
            return cJSON_IsString(s) && strcmp(s->valuestring, "True") == 0;
    }
    return false;
}

static long long deletion_cost(const kobj *p)
{
    const cJSON *v = get(get(get(p->doc, "metadata"), "annotations"), DELETION_COST);
    if (!cJSON_IsString(v))
        return 0;
    char *end;
    long long n = strtoll(v->valuestring, &end, 10);
    return *v->valuestring && !*end && n >= INT32_MIN && n <= INT32_MAX ? n : 0;
}

static int64_t desired_replicas(const kobj *d)
{
    const cJSON *r = get(get(d->doc, "spec"), "replicas");
    return cJSON_IsNumber(r) && r->valuedouble >= 0 ? (int64_t)r->valuedouble : 1;
}

/* ---- the scale-down order: a table of rules, each deciding or passing to the next ---- */

static int phase_rank(const kobj *p)
{
    const char *ph = pod_phase(p);
    return strcmp(ph, "Pending") == 0 ? 0 : strcmp(ph, "Running") == 0 ? 2 : 1; /* Unknown between */
}

static int by_phase(const kobj *a, const kobj *b) { return phase_rank(a) - phase_rank(b); }
static int by_ready(const kobj *a, const kobj *b) { return (int)pod_ready(a) - (int)pod_ready(b); }
static int by_cost(const kobj *a, const kobj *b)
{
    long long ca = deletion_cost(a), cb = deletion_cost(b);
    return ca < cb ? -1 : ca > cb;
}
static int by_newest(const kobj *a, const kobj *b)
{
    return a->created_ms > b->created_ms ? -1 : a->created_ms < b->created_ms;
}
static int by_name(const kobj *a, const kobj *b) { return strcmp(a->name, b->name); }

/* Which pod goes first when a ReplicaSet shrinks (controller.ActivePodsWithRanks, without node ranks). */
static int (*const victim_rules[])(const kobj *, const kobj *) = {
    by_phase,  /* Pending < Unknown < Running */
    by_ready,  /* not Ready < Ready */
    by_cost,   /* lower pod-deletion-cost first */
    by_newest, /* newer before older */
    by_name,   /* a total order */
};

static int victim_cmp(const void *pa, const void *pb)
{
    const kobj *a = *(const kobj *const *)pa, *b = *(const kobj *const *)pb;
    for (size_t i = 0; i < sizeof victim_rules / sizeof victim_rules[0]; i++) {
        int r = victim_rules[i](a, b);
        if (r)
            return r;
    }
    return 0;
}

static int oldest_first(const void *pa, const void *pb)
{
    const kobj *a = *(const kobj *const *)pa, *b = *(const kobj *const *)pb;
    return -by_newest(a, b);
}

/* ---- backoff ---- */

static backoff *backoff_for(controller *c, const char *uid, bool create)
{
    for (size_t i = 0; i < c->nbo; i++)
        if (strcmp(c->bo[i].uid, uid) == 0)
            return &c->bo[i];
    if (!create)
        return NULL;
    if (c->nbo == c->capbo) {
        size_t cap = c->capbo ? c->capbo * 2 : 16;
        backoff *n = realloc(c->bo, cap * sizeof *n);
        if (!n)
            return NULL;
        c->bo = n;
        c->capbo = cap;
    }
    backoff *b = &c->bo[c->nbo++];
    memset(b, 0, sizeof *b);
    snprintf(b->uid, sizeof b->uid, "%s", uid);
    return b;
}

static kobj *deployment_by_uid(const controller *c, const char *uid)
{
    for (kobj *d = store_first(c->st, RES_DEPLOYMENTS); d; d = d->next)
        if (strcmp(d->uid, uid) == 0)
            return d;
    return NULL;
}

/* Drops the backoff of Deployments that are gone. */
static void backoff_prune(controller *c)
{
    for (size_t i = 0; i < c->nbo;)
        if (!deployment_by_uid(c, c->bo[i].uid))
            c->bo[i] = c->bo[--c->nbo];
        else
            i++;
}

/* ---- creating pods ---- */

static uint32_t fnv32a(const char *s, size_t n, uint32_t h)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

void controller_template_hash(const cJSON *deployment, char out[11])
{
    static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
    strbuf b = STRBUF_INIT;
    jsonw_write(&b, get(get(deployment, "spec"), "template"), JSONW_SORT_KEYS);
    uint32_t h = fnv32a(b.data ? b.data : "", b.len, 2166136261u);
    strbuf_free(&b);
    char dec[16];
    snprintf(dec, sizeof dec, "%010" PRIu32, h); /* as Kubernetes: the decimal digits, each mapped to a letter */
    for (int i = 0; i < 10; i++)
        out[i] = alphabet[(unsigned char)dec[i] % (sizeof alphabet - 1)];
    out[10] = '\0';
}

/* A stable uid for the ReplicaSet <deployment>-<hash> (there is no such object: the uid names it in pods). */
static void rs_uid(const kobj *d, const char *hash, char out[STORE_UID_MAX])
{
    uint32_t h[4];
    h[0] = fnv32a(d->uid, strlen(d->uid), 2166136261u);
    h[1] = fnv32a(hash, strlen(hash), h[0]);
    h[2] = fnv32a(d->uid, strlen(d->uid), h[1] ^ 0x5bd1e995u);
    h[3] = fnv32a(hash, strlen(hash), h[2]);
    snprintf(out, STORE_UID_MAX, "%08" PRIx32 "-%04" PRIx32 "-4%03" PRIx32 "-8%03" PRIx32 "-%04" PRIx32 "%08" PRIx32,
             h[0], h[1] >> 16, h[1] & 0xfff, h[2] >> 20, h[2] & 0xffff, h[3]);
}

static cJSON *dup_or_empty(const cJSON *v)
{
    return cJSON_IsObject(v) ? cJSON_Duplicate(v, 1) : cJSON_CreateObject();
}

/* The pod the Deployment's template describes. NULL on OOM. */
static cJSON *pod_from_template(const kobj *d, const char *hash)
{
    const cJSON *tmpl = get(get(d->doc, "spec"), "template");
    const cJSON *tmeta = get(tmpl, "metadata");
    char rs[STORE_NAME_MAX], gen[STORE_NAME_MAX + 1], uid[STORE_UID_MAX];
    snprintf(rs, sizeof rs, "%.200s-%s", d->name, hash);
    snprintf(gen, sizeof gen, "%s-", rs);
    rs_uid(d, hash, uid);

    cJSON *pod = cJSON_CreateObject();
    cJSON_AddStringToObject(pod, "kind", "Pod");
    cJSON_AddStringToObject(pod, "apiVersion", "v1");
    cJSON *m = cJSON_AddObjectToObject(pod, "metadata");
    cJSON_AddStringToObject(m, "generateName", gen);
    cJSON *labels = dup_or_empty(get(tmeta, "labels"));
    cJSON_DeleteItemFromObjectCaseSensitive(labels, "pod-template-hash");
    cJSON_AddStringToObject(labels, "pod-template-hash", hash);
    cJSON_AddItemToObject(m, "labels", labels);
    if (cJSON_IsObject(get(tmeta, "annotations")))
        cJSON_AddItemToObject(m, "annotations", cJSON_Duplicate(get(tmeta, "annotations"), 1));
    cJSON *refs = cJSON_AddArrayToObject(m, "ownerReferences"), *ref = cJSON_CreateObject();
    cJSON_AddItemToArray(refs, ref);
    cJSON_AddStringToObject(ref, "apiVersion", "apps/v1");
    cJSON_AddStringToObject(ref, "kind", "ReplicaSet");
    cJSON_AddStringToObject(ref, "name", rs);
    cJSON_AddStringToObject(ref, "uid", uid);
    cJSON_AddBoolToObject(ref, "controller", true);
    cJSON_AddBoolToObject(ref, "blockOwnerDeletion", true);

    cJSON *spec = dup_or_empty(get(tmpl, "spec"));
    static const struct {
        const char *key, *value;
    } defaults[] = { { "restartPolicy", "Always" }, { "dnsPolicy", "ClusterFirst" },
                     { "schedulerName", "default-scheduler" }, { "serviceAccountName", "default" } };
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
        if (!get(spec, defaults[i].key))
            cJSON_AddStringToObject(spec, defaults[i].key, defaults[i].value);
    if (!get(spec, "terminationGracePeriodSeconds"))
        cJSON_AddNumberToObject(spec, "terminationGracePeriodSeconds", 30);
    cJSON_AddItemToObject(pod, "spec", spec);
    cJSON *st = cJSON_AddObjectToObject(pod, "status");
    cJSON_AddStringToObject(st, "phase", "Pending");

    /* Any failed allocation above leaves a missing member; check the ones that matter. */
    if (!m || !labels || !refs || !get(ref, "uid") || !get(pod, "spec") || !st) {
        cJSON_Delete(pod);
        return NULL;
    }
    return pod;
}

static int create_pod(controller *c, kobj *d, const char *hash)
{
    cJSON *doc = pod_from_template(d, hash);
    if (!doc)
        return -ENOMEM;
    kobj *o;
    int rc = store_add(c->st, RES_PODS, d->ns, doc, &o);
    if (rc < 0)
        return rc;
    snprintf(o->owner, sizeof o->owner, "%s", d->uid);
    return kubelet_run(c->k, o);
}

/* ---- status ---- */

static void add_condition(cJSON *conds, const cJSON *old_conds, const char *type, bool ok, const char *reason,
                          const char *message)
{
    char now[STORE_TIME_MAX];
    store_time(store_now_ms(), now);
    const char *since = now, *updated = now;
    const cJSON *o;
    cJSON_ArrayForEach(o, old_conds)
    {
        const cJSON *t = get(o, "type"), *s = get(o, "status"), *r = get(o, "reason");
        const cJSON *lt = get(o, "lastTransitionTime"), *lu = get(o, "lastUpdateTime");
        if (!cJSON_IsString(t) || strcmp(t->valuestring, type) != 0 || !cJSON_IsString(s))
            continue;
        if (strcmp(s->valuestring, ok ? "True" : "False") == 0 && cJSON_IsString(lt))
            since = lt->valuestring;
        if (cJSON_IsString(r) && strcmp(r->valuestring, reason) == 0 && cJSON_IsString(lu) && since != now)
            updated = lu->valuestring;
    }
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "type", type);
    cJSON_AddStringToObject(c, "status", ok ? "True" : "False");
    cJSON_AddStringToObject(c, "lastUpdateTime", updated);
    cJSON_AddStringToObject(c, "lastTransitionTime", since);
    cJSON_AddStringToObject(c, "reason", reason);
    cJSON_AddStringToObject(c, "message", message);
    cJSON_AddItemToArray(conds, c);
}

static void add_count(cJSON *st, const char *key, int n)
{
    if (n) /* the API server omits zero counts (omitempty) */
        cJSON_AddNumberToObject(st, key, n);
}

static void update_status(controller *c, kobj *d, const char *hash)
{
    int replicas = 0, ready = 0, updated = 0;
    for (kobj *p = store_first(c->st, RES_PODS); p; p = p->next) {
        if (strcmp(p->owner, d->uid) != 0 || !pod_active(p))
            continue;
        replicas++;
        if (pod_ready(p))
            ready++;
        const cJSON *h = get(get(get(p->doc, "metadata"), "labels"), "pod-template-hash");
        if (cJSON_IsString(h) && strcmp(h->valuestring, hash) == 0)
            updated++;
    }
    int64_t want = desired_replicas(d);
    const cJSON *gen = get(get(d->doc, "metadata"), "generation");
    cJSON *old = cJSON_GetObjectItemCaseSensitive(d->doc, "status");
    cJSON *st = cJSON_CreateObject();
    if (!st)
        return;
    cJSON_AddNumberToObject(st, "observedGeneration", cJSON_IsNumber(gen) ? gen->valuedouble : 1);
    add_count(st, "replicas", replicas);
    add_count(st, "updatedReplicas", updated);
    add_count(st, "readyReplicas", ready);
    add_count(st, "availableReplicas", ready);
    add_count(st, "unavailableReplicas", want > ready ? (int)(want - ready) : 0);
    cJSON *conds = cJSON_AddArrayToObject(st, "conditions");
    char msg[STORE_NAME_MAX + 64];
    bool available = ready >= want;
    add_condition(conds, get(old, "conditions"), "Available", available,
                  available ? "MinimumReplicasAvailable" : "MinimumReplicasUnavailable",
                  available ? "Deployment has minimum availability." : "Deployment does not have minimum availability.");
    snprintf(msg, sizeof msg, "ReplicaSet \"%.200s-%s\" has successfully progressed.", d->name, hash);
    add_condition(conds, get(old, "conditions"), "Progressing", true, "NewReplicaSetAvailable", msg);
    if (old && cJSON_Compare(old, st, 1)) {
        cJSON_Delete(st);
        return;
    }
    if (old)
        cJSON_ReplaceItemInObjectCaseSensitive(d->doc, "status", st);
    else
        cJSON_AddItemToObject(d->doc, "status", st);
    store_changed(c->st, d);
}

/* ---- one pass ---- */

/* The pods d owns, sorted into active and finished (arrays the caller frees). */
static int owned(controller *c, const kobj *d, kobj ***active, size_t *nactive, kobj ***finished,
                 size_t *nfinished)
{
    size_t n = store_count(c->st, RES_PODS);
    *active = calloc(n + 1, sizeof **active);
    *finished = calloc(n + 1, sizeof **finished);
    *nactive = *nfinished = 0;
    if (!*active || !*finished) {
        free(*active);
        free(*finished);
        return -ENOMEM;
    }
    for (kobj *p = store_first(c->st, RES_PODS); p; p = p->next) {
        if (strcmp(p->owner, d->uid) != 0 || pod_terminating(p))
            continue;
        if (pod_finished(p))
            (*finished)[(*nfinished)++] = p;
        else
            (*active)[(*nactive)++] = p;
    }
    return 0;
}

static void reconcile_one(controller *c, kobj *d, uint64_t now, uint64_t *wake)
{
    char hash[11];
    controller_template_hash(d->doc, hash);
    if (!c->k) { /* --no-kubelet: replicas are not turned into pods */
        update_status(c, d, hash);
        return;
    }
    kobj **active, **finished;
    size_t nactive, nfinished;
    if (owned(c, d, &active, &nactive, &finished, &nfinished) < 0)
        return;
    backoff *bo = backoff_for(c, d->uid, false);
    for (size_t i = 0; bo && i < nactive; i++)
        if (pod_ready(active[i]))
            bo->streak = 0;

    int64_t want = desired_replicas(d);
    if ((int64_t)nactive < want) {
        if (bo && bo->hold_until > now) {
            if (bo->hold_until < *wake)
                *wake = bo->hold_until;
        } else {
            int64_t n = want - (int64_t)nactive;
            if (n > CONTROLLER_BURST)
                n = CONTROLLER_BURST;
            log_info("controller", "deployment %s/%s: %zu of %lld replicas: creating %lld pod(s)", d->ns, d->name,
                     nactive, (long long)want, (long long)n);
            for (int64_t i = 0; i < n; i++) {
                int rc = create_pod(c, d, hash);
                if (rc < 0) {
                    log_warn("controller", "deployment %s/%s: cannot create a pod: %s", d->ns, d->name,
                             rc == -ENOSPC ? "too many pods" : strerror(-rc));
                    break;
                }
            }
        }
    } else if ((int64_t)nactive > want) {
        qsort(active, nactive, sizeof *active, victim_cmp);
        size_t n = nactive - (size_t)want;
        log_info("controller", "deployment %s/%s: %zu of %lld replicas: deleting %zu pod(s)", d->ns, d->name, nactive,
                 (long long)want, n);
        for (size_t i = 0; i < n; i++) {
            log_info("controller", "deployment %s/%s: scale-down victim %s (%s, %s, deletion cost %lld)", d->ns,
                     d->name, active[i]->name, pod_phase(active[i]), pod_ready(active[i]) ? "ready" : "not ready",
                     deletion_cost(active[i]));
            kubelet_delete(c->k, active[i], -1);
        }
    }
    if (nfinished > CONTROLLER_KEEP_FINISHED) {
        qsort(finished, nfinished, sizeof *finished, oldest_first);
        for (size_t i = 0; i < nfinished - CONTROLLER_KEEP_FINISHED; i++)
            kubelet_delete(c->k, finished[i], 0);
    }
    free(active);
    free(finished);
    update_status(c, d, hash);
}

/* Pods whose Deployment is gone (background cascading deletion). */
static void collect_orphans(controller *c)
{
    size_t n = store_count(c->st, RES_PODS), k = 0;
    kobj **orphans = calloc(n + 1, sizeof *orphans);
    if (!orphans)
        return;
    for (kobj *p = store_first(c->st, RES_PODS); p; p = p->next)
        if (p->owner[0] && !pod_terminating(p) && !deployment_by_uid(c, p->owner))
            orphans[k++] = p;
    for (size_t i = 0; i < k; i++) {
        log_info("controller", "pod %s/%s: its deployment is gone: deleting", orphans[i]->ns, orphans[i]->name);
        kubelet_delete(c->k, orphans[i], -1);
    }
    free(orphans);
}

static void pass(uv_timer_t *t)
{
    controller *c = t->data;
    if (c->stopped)
        return;
    c->running = true;
    uint64_t now = uv_now(c->loop), wake = UINT64_MAX;
    backoff_prune(c);
    for (kobj *d = store_first(c->st, RES_DEPLOYMENTS); d; d = d->next)
        reconcile_one(c, d, now, &wake);
    if (c->k)
        collect_orphans(c);
    c->running = false;
    if (wake != UINT64_MAX)
        uv_timer_start(&c->timer, pass, wake - now, 0);
}

controller *controller_new(uv_loop_t *loop, store *st, kubelet *k)
{
    controller *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->loop = loop;
    c->st = st;
    c->k = k;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    return c;
}

void controller_kick(controller *c)
{
    if (!c || c->running || c->stopped)
        return;
    uv_timer_start(&c->timer, pass, 0, 0);
}

void controller_pod_finished(void *arg, kobj *pod)
{
    controller *c = arg;
    if (c->stopped || !pod->owner[0])
        return;
    backoff *b = backoff_for(c, pod->owner, true);
    if (b) {
        b->streak++;
        uint64_t delay = 0;
        if (b->streak > 1) {
            int shift = b->streak - 2 < 6 ? b->streak - 2 : 6;
            delay = (uint64_t)BACKOFF_FIRST_MS << shift;
            if (delay > BACKOFF_MAX_MS)
                delay = BACKOFF_MAX_MS;
        }
        b->hold_until = uv_now(c->loop) + delay;
        if (delay)
            log_info("controller", "pod %s/%s ended: replacement in %llu ms (%d ended in a row without a ready pod)",
                     pod->ns, pod->name, (unsigned long long)delay, b->streak);
    }
    controller_kick(c);
}

static void controller_closed(uv_handle_t *h)
{
    controller *c = h->data;
    free(c->bo);
    free(c);
}

void controller_free(controller *c)
{
    if (!c)
        return;
    c->stopped = true;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, controller_closed);
}
