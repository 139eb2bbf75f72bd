/* leader.c — leader election on a coordination.k8s.io/v1 Lease; see leader.h.
 *
 * One attempt is client-go's tryAcquireOrRenew as a chain of asynchronous steps:
 *
 *     GET the Lease ──404──▶ POST a new one naming us            (409: someone else created it first)
 *         │200
 *         ▼
 *     note whether its spec changed (if so, the change is "observed now", on our monotonic clock)
 *     held by another identity, and observed less than its leaseDurationSeconds ago? ──▶ not ours, done
 *         │
 *         ▼
 *     PUT it back, with its resourceVersion, naming us           (409: someone else wrote it first)
 *
 * Expiry is never judged by comparing our clock with the renewTime written by another machine: a record that has
 * not changed for leaseDurationSeconds since we first saw it is expired, whatever its timestamps say. The
 * resourceVersion makes every write a compare-and-swap, so two replicas can never both succeed on one version.
 *
 * Timing. One timer (tick) starts the next attempt: retry_period after the previous one ended while leading, with
 * a jitter of up to 0.2 × retry_period more while not (client-go's 1.2 would let a follower see a renewal up to
 * 4.4 s late and take over a killed leader's Lease only ~24 s after the kill), and at the moment a Lease held by
 * another expires by our clock, whichever comes first: a killed leader is replaced within lease_duration plus
 * about one retry period. While a request is in flight the same timer is a
 * watchdog: a request older than renew_deadline is abandoned and counts as a failure. A second timer (deadline)
 * runs while leading: it fires renew_deadline after the send time of the last write that succeeded, and then we
 * stop acting at once — before any other replica can consider the Lease expired, since they wait lease_duration
 * from when they saw that write, which came after we sent it. A success that arrives after its own deadline does
 * not make us leader.
 *
 * Callbacks to the user (on_change, release's done) are the last thing a step does: they may free the elector. */
#include "leader.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "iac/json.h"
#include "iac/log.h"

#define LEASE_API        "/apis/coordination.k8s.io/v1"
#define DEFAULT_LEASE_MS 15000
#define DEFAULT_RENEW_MS 10000
#define DEFAULT_RETRY_MS 2000
#define JITTER_FACTOR    0.2 /* smaller than client-go's 1.2: see "Timing" above */
#define MICROTIME_LEN    48

struct leader {
    uv_loop_t       *loop;
    k8s             *client;
    char            *ns, *name, *identity;
    char            *path;       /* …/namespaces/{ns}/leases/{name} */
    char            *collection; /* …/namespaces/{ns}/leases */
    int64_t          lease_ms, renew_ms, retry_ms;
    leader_change_cb on_change;
    void            *arg;

    uv_timer_t tick;     /* next attempt; watchdog of the request in flight */
    uv_timer_t deadline; /* while leading: renew_deadline after the last successful write was sent */
    int        open_handles;
    bool       closing;  /* leader_free was called: touch nothing but what is needed to close */
    bool       stopped;  /* leader_release was called: no more attempts */

    k8s_call *call;      /* the one request in flight, or NULL */
    int64_t   call_sent_ms;

    bool     leading;
    cJSON   *lease;            /* the Lease as last read or written (owned) */
    char    *observed_spec;    /* its spec as text: a different text is a change */
    int64_t  observed_ms;      /* when we saw the spec change, our clock */
    int64_t  observed_duration_ms;
    char     holder[256];
    char     last_error[256];  /* logged once per change, so a broken RBAC says so without flooding */
    uint64_t rng;

    void (*release_done)(void *arg);
    void *release_arg;
};

static int64_t now_ms(void) { return (int64_t)(uv_hrtime() / 1000000u); }

/* Lease MicroTime, "2006-01-02T15:04:05.000000Z"; informative only (nobody's expiry depends on it). */
static void microtime(char out[MICROTIME_LEN])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, MICROTIME_LEN, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, MICROTIME_LEN - n, ".%06dZ", (int)(ts.tv_nsec / 1000) % 1000000);
}

static uint64_t next_random(leader *l)
{
    /* xorshift64: jitter only needs to differ between replicas, not to be unpredictable. */
    l->rng ^= l->rng << 13;
    l->rng ^= l->rng >> 7;
    l->rng ^= l->rng << 17;
    return l->rng;
}

/* ---- the record ---- */

typedef struct {
    const char *holder;       /* "" when none */
    int64_t     duration_s;   /* 0 when absent */
    const char *acquire_time; /* NULL when absent */
    int64_t     transitions;
} lease_record;

/* Reads the spec of a Lease. -1 when the object is not a Lease we can read. */
static int record_read(const cJSON *lease, lease_record *r, char *err, size_t errlen)
{
    const cJSON *spec = NULL;
    *r = (lease_record){ "", 0, NULL, 0 };
    if (json_get_object(lease, "spec", false, &spec, err, errlen) < 0 ||
        json_get_string(spec, "holderIdentity", false, &r->holder, err, errlen) < 0 ||
        json_get_i64(spec, "leaseDurationSeconds", false, &r->duration_s, err, errlen) < 0 ||
        json_get_string(spec, "acquireTime", false, &r->acquire_time, err, errlen) < 0 ||
        json_get_i64(spec, "leaseTransitions", false, &r->transitions, err, errlen) < 0)
        return -1;
    return 0;
}

/* The spec we write: whole seconds, rounded up so that nobody takes over before our own lease_duration. */
static cJSON *spec_new(const char *holder, int64_t duration_s, const char *acquire_time,
                       int64_t transitions)
{
    char renew[MICROTIME_LEN];
    microtime(renew);
    cJSON *spec = cJSON_CreateObject();
    if (!spec || !cJSON_AddStringToObject(spec, "holderIdentity", holder) ||
        !cJSON_AddNumberToObject(spec, "leaseDurationSeconds", (double)duration_s) ||
        !cJSON_AddStringToObject(spec, "acquireTime", acquire_time ? acquire_time : renew) ||
        !cJSON_AddStringToObject(spec, "renewTime", renew) ||
        !cJSON_AddNumberToObject(spec, "leaseTransitions", (double)transitions)) {
        cJSON_Delete(spec);
        return NULL;
    }
    return spec;
}

static int64_t our_duration_s(const leader *l) { return (l->lease_ms + 999) / 1000; }

/* A whole Lease for POST. */
static char *lease_create_body(const leader *l)
{
    cJSON *root = cJSON_CreateObject(), *meta = cJSON_CreateObject();
    cJSON *spec = spec_new(l->identity, our_duration_s(l), NULL, 0);
    char *text = NULL;
    if (root && meta && spec && cJSON_AddStringToObject(root, "apiVersion", "coordination.k8s.io/v1") &&
        cJSON_AddStringToObject(root, "kind", "Lease") && cJSON_AddStringToObject(meta, "name", l->name) &&
        cJSON_AddStringToObject(meta, "namespace", l->ns)) {
        cJSON_AddItemToObject(root, "metadata", meta);
        cJSON_AddItemToObject(root, "spec", spec);
        meta = spec = NULL;
        text = cJSON_PrintUnformatted(root);
    }
    cJSON_Delete(root);
    cJSON_Delete(meta);
    cJSON_Delete(spec);
    return text;
}

/* The Lease as read, with a new spec: PUT replaces the whole object, so metadata (resourceVersion, labels, uid)
 * goes back as it came. */
static char *lease_update_body(const cJSON *read, cJSON *spec)
{
    cJSON *copy = cJSON_Duplicate(read, 1);
    char *text = NULL;
    if (copy && spec) {
        cJSON_DeleteItemFromObjectCaseSensitive(copy, "spec");
        cJSON_DeleteItemFromObjectCaseSensitive(copy, "status");
        cJSON_AddItemToObject(copy, "spec", spec);
        spec = NULL;
        text = cJSON_PrintUnformatted(copy);
    }
    cJSON_Delete(copy);
    cJSON_Delete(spec);
    return text;
}

/* Takes a Lease we read or wrote as the latest we know. Its spec changing counts as observed now. */
static void observe(leader *l, const cJSON *lease, const lease_record *r)
{
    char *spec = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(lease, "spec"));
    if (!l->observed_spec || !spec || strcmp(spec, l->observed_spec) != 0) {
        l->observed_ms = now_ms();
        free(l->observed_spec);
        l->observed_spec = spec;
        spec = NULL;
    }
    free(spec);
    l->observed_duration_ms = r->duration_s > 0 ? r->duration_s * 1000 : l->lease_ms;
    snprintf(l->holder, sizeof l->holder, "%s", r->holder);
    cJSON *copy = cJSON_Duplicate(lease, 1);
    if (copy) {
        cJSON_Delete(l->lease);
        l->lease = copy;
    }
}

/* ---- leading or not ---- */

static void on_tick(uv_timer_t *t);

static void schedule(leader *l, int64_t delay_ms)
{
    if (l->closing || l->stopped)
        return;
    uv_timer_start(&l->tick, on_tick, (uint64_t)(delay_ms > 0 ? delay_ms : 0), 0);
}

static int64_t next_delay(leader *l)
{
    if (l->leading)
        return l->retry_ms;
    double jitter = (double)(next_random(l) % 1000001) / 1000000.0 * JITTER_FACTOR;
    return l->retry_ms + (int64_t)((double)l->retry_ms * jitter);
}

static void note_error(leader *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_error(leader *l, const char *fmt, ...)
{
    char msg[sizeof l->last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (strcmp(msg, l->last_error) != 0)
        log_warn("leader", "lease %s/%s: %s", l->ns, l->name, msg);
    snprintf(l->last_error, sizeof l->last_error, "%s", msg);
}

/* Stops acting at once; the next attempts compete like any replica. */
static void lose(leader *l)
{
    if (!l->leading)
        return;
    l->leading = false;
    uv_timer_stop(&l->deadline);
    log_info("leader", "lease %s/%s: %s stops leading", l->ns, l->name, l->identity);
    if (l->on_change)
        l->on_change(false, l->arg);
}

static void on_deadline(uv_timer_t *t)
{
    leader *l = t->data;
    note_error(l, "no renewal succeeded for %" PRId64 " ms (renew deadline)", l->renew_ms);
    lose(l);
}

/* A write naming us succeeded; sent_ms is when it was sent. */
static void won(leader *l, const cJSON *lease, int64_t sent_ms)
{
    lease_record r;
    char err[160];
    int64_t left = sent_ms + l->renew_ms - now_ms();
    if (!lease || record_read(lease, &r, err, sizeof err) < 0 || strcmp(r.holder, l->identity) != 0) {
        note_error(l, "the API server answered the write with no readable Lease");
        schedule(l, next_delay(l));
        return;
    }
    observe(l, lease, &r);
    l->last_error[0] = '\0';
    if (left <= 0) { /* too late: acting now could overlap a replica that already took over */
        schedule(l, next_delay(l));
        return;
    }
    uv_timer_start(&l->deadline, on_deadline, (uint64_t)left, 0);
    bool was = l->leading;
    l->leading = true;
    schedule(l, next_delay(l));
    if (!was) {
        log_info("leader", "lease %s/%s: %s leads", l->ns, l->name, l->identity);
        if (l->on_change)
            l->on_change(true, l->arg);
    }
}

/* ---- the steps of one attempt ---- */

static bool answered(leader *l, const k8s_result *r, const char *what)
{
    l->call = NULL;
    if (r->error == 0 && r->status >= 200 && r->status <= 299)
        return true;
    if (r->error != 0)
        note_error(l, "%s failed: %s", what, r->errmsg);
    else if (r->status != 409 && r->status != 404)
        note_error(l, "%s: HTTP %ld %s", what, r->status, r->errmsg);
    return false;
}

static void on_written(const k8s_result *r, void *arg)
{
    leader *l = arg;
    int64_t sent = l->call_sent_ms;
    if (!answered(l, r, "writing the Lease")) {
        schedule(l, next_delay(l)); /* 409: another replica wrote first; the next read shows who */
        return;
    }
    won(l, r->obj, sent);
}

static void request(leader *l, const char *method, const char *path, char *body, k8s_cb cb)
{
    if (!body) {
        note_error(l, "out of memory building the Lease");
        schedule(l, next_delay(l));
        return;
    }
    l->call_sent_ms = now_ms();
    l->call = k8s_request(l->client, method, path, NULL, body, cb, l);
    free(body);
    if (!l->call) {
        note_error(l, "out of memory sending a request");
        schedule(l, next_delay(l));
        return;
    }
    /* Watchdog: a request that hangs must not hold leadership or the next attempt hostage. */
    uv_timer_start(&l->tick, on_tick, (uint64_t)l->renew_ms, 0);
}

static void on_read(const k8s_result *r, void *arg)
{
    leader *l = arg;
    char err[160];
    lease_record rec;
    if (r->error == 0 && r->status == 404) {
        l->call = NULL;
        request(l, "POST", l->collection, lease_create_body(l), on_written);
        return;
    }
    if (!answered(l, r, "reading the Lease")) {
        schedule(l, next_delay(l));
        return;
    }
    if (!r->obj || record_read(r->obj, &rec, err, sizeof err) < 0) {
        note_error(l, "the Lease cannot be read: %s", r->obj ? err : "no JSON object");
        schedule(l, next_delay(l));
        return;
    }
    observe(l, r->obj, &rec);
    bool ours = strcmp(rec.holder, l->identity) == 0;
    if (rec.holder[0] && !ours && now_ms() < l->observed_ms + l->observed_duration_ms) {
        /* Held by another and not expired by our clock. If we thought we led, we do not. Try again at the next
         * retry or the moment it expires, whichever is first. */
        int64_t until_expiry = l->observed_ms + l->observed_duration_ms - now_ms() + 1;
        int64_t delay = next_delay(l);
        schedule(l, until_expiry < delay ? until_expiry : delay);
        lose(l);
        return;
    }
    /* Renewing keeps the acquire time and the count; taking over (from another, or from nobody) adds one. */
    cJSON *spec = spec_new(l->identity, our_duration_s(l), ours ? rec.acquire_time : NULL,
                           ours ? rec.transitions : rec.transitions + 1);
    request(l, "PUT", l->path, lease_update_body(r->obj, spec), on_written);
}

static void attempt(leader *l)
{
    if (l->closing || l->stopped)
        return;
    if (l->call) { /* the watchdog fired */
        k8s_cancel(l->call);
        l->call = NULL;
        note_error(l, "the API server did not answer within %" PRId64 " ms", l->renew_ms);
    }
    l->call_sent_ms = now_ms();
    l->call = k8s_request(l->client, "GET", l->path, NULL, NULL, on_read, l);
    if (!l->call) {
        schedule(l, next_delay(l));
        return;
    }
    uv_timer_start(&l->tick, on_tick, (uint64_t)l->renew_ms, 0);
}

static void on_tick(uv_timer_t *t) { attempt(t->data); }

/* ---- life cycle ---- */

static char *lease_path(const char *ns, const char *name)
{
    char ens[256], ename[1024];
    if (k8s_escape(ns, ens, sizeof ens) < 0 || (name && k8s_escape(name, ename, sizeof ename) < 0))
        return NULL;
    size_t len = strlen(LEASE_API) + strlen(ens) + (name ? strlen(ename) : 0) + 40;
    char *p = malloc(len);
    if (p)
        snprintf(p, len, LEASE_API "/namespaces/%s/leases%s%s", ens, name ? "/" : "", name ? ename : "");
    return p;
}

static void free_all(leader *l)
{
    cJSON_Delete(l->lease);
    free(l->observed_spec);
    free(l->ns);
    free(l->name);
    free(l->identity);
    free(l->path);
    free(l->collection);
    free(l);
}

static void on_closed(uv_handle_t *h)
{
    leader *l = h->data;
    if (--l->open_handles == 0)
        free_all(l);
}

leader *leader_start(uv_loop_t *loop, k8s *client, const leader_opts *o)
{
    if (!loop || !client || !o || !o->namespace_ || !*o->namespace_ || !o->name || !*o->name || !o->identity ||
        !*o->identity)
        return NULL;
    int64_t lease = o->lease_duration_ms ? o->lease_duration_ms : DEFAULT_LEASE_MS;
    int64_t renew = o->renew_deadline_ms ? o->renew_deadline_ms : DEFAULT_RENEW_MS;
    int64_t retry = o->retry_period_ms ? o->retry_period_ms : DEFAULT_RETRY_MS;
    if (retry <= 0 || renew <= retry || lease <= renew || strlen(o->identity) >= sizeof ((leader *)0)->holder)
        return NULL;
    leader *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->loop = loop;
    l->client = client;
    l->lease_ms = lease;
    l->renew_ms = renew;
    l->retry_ms = retry;
    l->on_change = o->on_change;
    l->arg = o->arg;
    l->rng = uv_hrtime() ^ (uint64_t)(uintptr_t)l;
    l->rng = l->rng ? l->rng : 88172645463325252u;
    l->ns = strdup(o->namespace_);
    l->name = strdup(o->name);
    l->identity = strdup(o->identity);
    l->path = lease_path(o->namespace_, o->name);
    l->collection = lease_path(o->namespace_, NULL);
    if (!l->ns || !l->name || !l->identity || !l->path || !l->collection) {
        free_all(l);
        return NULL;
    }
    uv_timer_init(loop, &l->tick);
    uv_timer_init(loop, &l->deadline);
    l->tick.data = l->deadline.data = l;
    l->open_handles = 2;
    schedule(l, 0);
    return l;
}

bool leader_is_leader(const leader *l) { return l && l->leading; }

const char *leader_holder(const leader *l) { return l ? l->holder : ""; }

static void released(leader *l)
{
    void (*done)(void *) = l->release_done;
    l->release_done = NULL;
    if (done)
        done(l->release_arg);
}

static void on_release_timer(uv_timer_t *t) { released(t->data); }

static void on_release_written(const k8s_result *r, void *arg)
{
    leader *l = arg;
    if (answered(l, r, "releasing the Lease"))
        log_info("leader", "lease %s/%s: released by %s", l->ns, l->name, l->identity);
    released(l);
}

void leader_release(leader *l, void (*done)(void *arg), void *arg)
{
    if (!l || l->closing)
        return;
    bool was_leading = l->leading && l->lease && !l->stopped;
    l->stopped = true;
    l->leading = false;
    uv_timer_stop(&l->tick);
    uv_timer_stop(&l->deadline);
    if (l->call) {
        k8s_cancel(l->call);
        l->call = NULL;
    }
    l->release_done = done;
    l->release_arg = arg;
    if (was_leading) {
        /* client-go's release: no holder, a one-second lease, the count kept; whoever reads it next takes over. */
        lease_record r;
        char err[160];
        int64_t transitions = record_read(l->lease, &r, err, sizeof err) == 0 ? r.transitions : 0;
        char *body = lease_update_body(l->lease, spec_new("", 1, NULL, transitions));
        if (body) {
            l->call = k8s_request(l->client, "PUT", l->path, NULL, body, on_release_written, l);
            free(body);
            if (l->call)
                return;
        }
    }
    uv_timer_start(&l->tick, on_release_timer, 0, 0);
}

void leader_free(leader *l)
{
    if (!l || l->closing)
        return;
    l->closing = true;
    l->release_done = NULL;
    if (l->call) {
        k8s_cancel(l->call);
        l->call = NULL;
    }
    uv_timer_stop(&l->tick);
    uv_timer_stop(&l->deadline);
    uv_close((uv_handle_t *)&l->tick, on_closed);
    uv_close((uv_handle_t *)&l->deadline, on_closed);
}
