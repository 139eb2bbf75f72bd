/* test_leader.c — Lease leader election against a fake Lease API on loopback.
 *
 * The fake (common/https on 127.0.0.1, an ephemeral port) keeps one Lease and behaves like the API server where it
 * matters: 404 on GET while absent, 409 on POST when it exists, 409 on a PUT whose resourceVersion is not the
 * current one, and on demand 500 for everything. Electors run on the same loop with real k8s clients and short
 * durations; a 10 ms sampler checks after every loop turn that no two electors lead at once, and each on_change
 * is checked against the value before it (it must never repeat). Timing assertions keep wide margins: the
 * machine may be loaded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "../../coordinator/leader.h"
#include "iac/https.h"

#define LEASE_PATH "/apis/coordination.k8s.io/v1/namespaces/default/leases/coord"
#define LEASES     "/apis/coordination.k8s.io/v1/namespaces/default/leases"
#define NELECTORS  2

typedef struct {
    cJSON  *lease;       /* NULL while absent */
    int64_t rv;
    int     fail_status; /* 0, or the status every request gets */
    int     created, updated, conflicts;
} fake_api;

typedef struct fixture fixture;

typedef struct {
    fixture *f;
    char     id[16];
    k8s     *client;
    leader  *l;
    bool     leading;    /* as on_change last said */
    int      changes;
    int64_t  changed_ms;
} elector;

struct fixture {
    uv_loop_t     loop;
    uv_timer_t    sampler;
    https_server *srv;
    int           port;
    fake_api      api;
    elector       e[NELECTORS];
    int           violations;
    char          violation[256];
};

static int64_t now_ms(void) { return (int64_t)(uv_hrtime() / 1000000u); }

static void violate(fixture *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void violate(fixture *f, const char *fmt, ...)
{
    if (f->violations++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(f->violation, sizeof f->violation, fmt, ap);
        va_end(ap);
    }
}

/* ---- the fake Lease API ---- */

static void reply_status(https_response *res, int code, const char *reason, const char *message)
{
    res->status = code;
    strbuf_printf(&res->body, "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"%s\","
                  "\"reason\":\"%s\",\"code\":%d}", message, reason, code);
}

static void reply_lease(https_response *res, int code, const cJSON *lease)
{
    char *text = cJSON_PrintUnformatted(lease);
    res->status = code;
    strbuf_puts(&res->body, text ? text : "{}");
    free(text);
}

/* Stores body as the Lease with the next resourceVersion. */
static cJSON *store(fake_api *api, cJSON *body)
{
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(body, "metadata");
    char rv[32];
    snprintf(rv, sizeof rv, "%lld", (long long)++api->rv);
    cJSON_DeleteItemFromObjectCaseSensitive(meta, "resourceVersion");
    cJSON_AddStringToObject(meta, "resourceVersion", rv);
    cJSON_Delete(api->lease);
    api->lease = body;
    return body;
}

static void fake_handler(const https_request *req, https_response *res, void *arg)
{
    fake_api *api = arg;
    if (api->fail_status) {
        reply_status(res, api->fail_status, "InternalError", "injected failure");
        return;
    }
    bool one = strcmp(req->path, LEASE_PATH) == 0, all = strcmp(req->path, LEASES) == 0;
    if (one && strcmp(req->method, "GET") == 0) {
        if (!api->lease)
            reply_status(res, 404, "NotFound", "leases.coordination.k8s.io \\\"coord\\\" not found");
        else
            reply_lease(res, 200, api->lease);
        return;
    }
    cJSON *body = cJSON_Parse(req->body);
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(body, "metadata");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(meta, "name");
    if (!cJSON_IsObject(body) || !cJSON_IsString(name) || strcmp(name->valuestring, "coord") != 0) {
        cJSON_Delete(body);
        reply_status(res, 400, "BadRequest", "not a Lease named coord");
        return;
    }
    if (all && strcmp(req->method, "POST") == 0) {
        if (api->lease) {
            api->conflicts++;
            cJSON_Delete(body);
            reply_status(res, 409, "AlreadyExists", "leases.coordination.k8s.io \\\"coord\\\" already exists");
            return;
        }
        api->created++;
        reply_lease(res, 201, store(api, body));
        return;
    }
    if (one && strcmp(req->method, "PUT") == 0) {
        const cJSON *rv = cJSON_GetObjectItemCaseSensitive(meta, "resourceVersion");
        const cJSON *cur = api->lease ? cJSON_GetObjectItemCaseSensitive(
                                            cJSON_GetObjectItemCaseSensitive(api->lease, "metadata"), "resourceVersion")
                                      : NULL;
        if (!api->lease) {
            cJSON_Delete(body);
            reply_status(res, 404, "NotFound", "not found");
        } else if (!cJSON_IsString(rv) || strcmp(rv->valuestring, cur->valuestring) != 0) {
            api->conflicts++;
            cJSON_Delete(body);
            reply_status(res, 409, "Conflict", "the object has been modified");
        } else {
            api->updated++;
            reply_lease(res, 200, store(api, body));
        }
        return;
    }
    cJSON_Delete(body);
    reply_status(res, 405, "MethodNotAllowed", "not here");
}

static const char *lease_holder(const fake_api *api)
{
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(api->lease, "spec");
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(spec, "holderIdentity");
    return cJSON_IsString(h) ? h->valuestring : "";
}

static int lease_number(const fake_api *api, const char *key)
{
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(api->lease, "spec");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(spec, key);
    return cJSON_IsNumber(n) ? (int)n->valuedouble : -1;
}

/* ---- electors and the loop ---- */

static void on_change(bool leading, void *arg)
{
    elector *e = arg;
    fixture *f = e->f;
    if (leading == e->leading)
        violate(f, "%s: on_change(%s) repeated", e->id, leading ? "true" : "false");
    e->leading = leading;
    e->changes++;
    e->changed_ms = now_ms();
    for (int i = 0; leading && i < NELECTORS; i++)
        if (&f->e[i] != e && f->e[i].l && leader_is_leader(f->e[i].l))
            violate(f, "%s leads while %s leads", e->id, f->e[i].id);
}

/* After every loop turn: never two leaders, and what is_leader says agrees with on_change. */
static void on_sample(uv_timer_t *t)
{
    fixture *f = t->data;
    int leaders = 0;
    for (int i = 0; i < NELECTORS; i++) {
        if (!f->e[i].l)
            continue;
        bool is = leader_is_leader(f->e[i].l);
        leaders += is;
        if (is != f->e[i].leading)
            violate(f, "%s: is_leader %d but on_change said %d", f->e[i].id, is, f->e[i].leading);
    }
    if (leaders > 1)
        violate(f, "%d leaders at once", leaders);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    char err[256];
    https_opts o = { .host = "127.0.0.1", .port = 0, .handler = fake_handler, .arg = &f->api };
    f->srv = https_listen(&f->loop, &o, err, sizeof err);
    if (!f->srv)
        fail_msg("https_listen: %s", err);
    f->port = https_port(f->srv);
    uv_timer_init(&f->loop, &f->sampler);
    f->sampler.data = f;
    uv_timer_start(&f->sampler, on_sample, 10, 10);
    for (int i = 0; i < NELECTORS; i++) {
        elector *e = &f->e[i];
        e->f = f;
        snprintf(e->id, sizeof e->id, "coord-%c", 'a' + i);
        char server[64], ns[] = "default", source[] = "test";
        snprintf(server, sizeof server, "http://127.0.0.1:%d", f->port);
        k8s_auth auth = { .server = server, .namespace = ns, .source = source };
        k8s_opts ko = { .timeout_ms = 2000 };
        e->client = k8s_new(&f->loop, &auth, &ko, err, sizeof err);
        if (!e->client)
            fail_msg("k8s_new: %s", err);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < NELECTORS; i++) {
        leader_free(f->e[i].l);
        k8s_free(f->e[i].client);
    }
    https_free(f->srv);
    uv_close((uv_handle_t *)&f->sampler, NULL);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    cJSON_Delete(f->api.lease);
    free(f);
    return 0;
}

typedef struct {
    int64_t lease, renew, retry;
} timings;

static const timings fast = { 600, 400, 100 };

static void start(fixture *f, int i, timings t)
{
    leader_opts o = { .namespace_ = "default", .name = "coord", .identity = f->e[i].id,
                      .lease_duration_ms = t.lease, .renew_deadline_ms = t.renew, .retry_period_ms = t.retry,
                      .on_change = on_change, .arg = &f->e[i] };
    f->e[i].l = leader_start(&f->loop, f->e[i].client, &o);
    assert_non_null(f->e[i].l);
}

/* Turns the loop until cond holds (true) or timeout_ms passes (false); cond NULL: just for timeout_ms. */
static bool run_until(fixture *f, bool (*cond)(fixture *), int64_t timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    while (!(cond && cond(f))) {
        if (now_ms() >= end)
            return false;
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    return true;
}

static bool someone_leads(fixture *f) { return f->e[0].leading || f->e[1].leading; }
static bool a_leads(fixture *f) { return f->e[0].leading; }
static bool a_follows(fixture *f) { return !f->e[0].leading; }

static int the_leader(fixture *f) { return f->e[0].leading ? 0 : f->e[1].leading ? 1 : -1; }

static void assert_no_violation(fixture *f)
{
    if (f->violations)
        fail_msg("%d violation(s), first: %s", f->violations, f->violation);
}

/* ---- tests ---- */

/* Alone, an elector creates the Lease, leads, and keeps leading by renewing it. */
static void one_elector_becomes_leader(void **state)
{
    fixture *f = *state;
    start(f, 0, fast);
    assert_true(run_until(f, a_leads, 3000));
    assert_int_equal(f->api.created, 1);
    assert_string_equal(lease_holder(&f->api), "coord-a");
    assert_int_equal(lease_number(&f->api, "leaseTransitions"), 0);
    assert_int_equal(lease_number(&f->api, "leaseDurationSeconds"), 1); /* 600 ms, rounded up */
    assert_string_equal(leader_holder(f->e[0].l), "coord-a");
    int updated = f->api.updated;
    run_until(f, NULL, 700); /* longer than the lease: only renewals keep it */
    assert_true(leader_is_leader(f->e[0].l));
    assert_true(f->api.updated >= updated + 2);
    assert_int_equal(f->e[0].changes, 1);
    assert_no_violation(f);
}

/* Two electors on one Lease: exactly one leads, the other names it as holder, and nobody flips. */
static void two_electors_exactly_one_leads(void **state)
{
    fixture *f = *state;
    start(f, 0, fast);
    start(f, 1, fast);
    assert_true(run_until(f, someone_leads, 3000));
    run_until(f, NULL, 1000);
    int x = the_leader(f);
    assert_true(x >= 0);
    assert_false(f->e[1 - x].leading);
    assert_string_equal(leader_holder(f->e[1 - x].l), f->e[x].id);
    assert_string_equal(lease_holder(&f->api), f->e[x].id);
    assert_int_equal(f->e[x].changes, 1);
    assert_int_equal(f->e[1 - x].changes, 0);
    assert_int_equal(f->api.created, 1);
    assert_no_violation(f);
}

/* A leader that stops renewing without releasing (killed) is replaced once the lease duration has passed on the
 * other's clock, not before; leaseTransitions grows by one. */
static void stopped_leader_is_replaced_after_lease_duration(void **state)
{
    fixture *f = *state;
    start(f, 0, fast);
    start(f, 1, fast);
    assert_true(run_until(f, someone_leads, 3000));
    run_until(f, NULL, 200);
    int x = the_leader(f), y = 1 - x;
    int transitions = lease_number(&f->api, "leaseTransitions");
    int64_t t0 = now_ms();
    leader_free(f->e[x].l);
    f->e[x].l = NULL;
    f->e[x].leading = false;
    assert_true(run_until(f, someone_leads, 5000));
    int64_t took = now_ms() - t0;
    assert_true(f->e[y].leading);
    if (took < fast.lease)
        fail_msg("took over after %lld ms, before the lease duration of %lld ms", (long long)took,
                 (long long)fast.lease);
    assert_string_equal(lease_holder(&f->api), f->e[y].id);
    assert_int_equal(lease_number(&f->api, "leaseTransitions"), transitions + 1);
    assert_no_violation(f);
}

static void count_done(void *arg) { ++*(int *)arg; }

/* leader_release hands over at once: the other leads well before the lease duration, the releaser hears no
 * on_change, and done runs. */
static void release_hands_over_at_once(void **state)
{
    fixture *f = *state;
    const timings slow = { 3000, 2000, 100 };
    start(f, 0, slow);
    start(f, 1, slow);
    assert_true(run_until(f, someone_leads, 3000));
    int x = the_leader(f), y = 1 - x;
    int transitions = lease_number(&f->api, "leaseTransitions");
    int done = 0;
    int64_t t0 = now_ms();
    leader_release(f->e[x].l, count_done, &done);
    f->e[x].leading = false; /* released: not a change the elector reports */
    assert_false(leader_is_leader(f->e[x].l));
    assert_true(run_until(f, someone_leads, 2500));
    int64_t took = now_ms() - t0;
    assert_true(f->e[y].leading);
    if (took >= slow.lease / 2)
        fail_msg("took over after %lld ms: the release did not hand over", (long long)took);
    assert_int_equal(done, 1);
    assert_int_equal(f->e[x].changes, 1);
    assert_string_equal(lease_holder(&f->api), f->e[y].id);
    assert_int_equal(lease_number(&f->api, "leaseTransitions"), transitions + 1);
    assert_no_violation(f);
}

/* Releasing when not leading writes nothing, and done still runs — from the loop, not from inside the call. */
static void release_without_lease_calls_done_from_loop(void **state)
{
    fixture *f = *state;
    start(f, 0, fast);
    int done = 0;
    leader_release(f->e[0].l, count_done, &done);
    assert_int_equal(done, 0);
    run_until(f, NULL, 300);
    assert_int_equal(done, 1);
    assert_null(f->api.lease);
    assert_int_equal(f->e[0].changes, 0);
}

/* A leader whose renewals fail (the API answers 500) stops leading within renew_deadline, and leads again once
 * the API is back (the Lease still names it: no transition). */
static void failing_renewals_stop_leading_within_renew_deadline(void **state)
{
    fixture *f = *state;
    start(f, 0, fast);
    assert_true(run_until(f, a_leads, 3000));
    run_until(f, NULL, 200);
    int64_t t0 = now_ms();
    f->api.fail_status = 500;
    assert_true(run_until(f, a_follows, 3000));
    int64_t took = f->e[0].changed_ms - t0;
    if (took > fast.renew + 600) /* the last good renewal was sent before t0: the deadline falls before t0+400 */
        fail_msg("stopped leading %lld ms after renewals began to fail (renew deadline %lld ms)", (long long)took,
                 (long long)fast.renew);
    assert_false(leader_is_leader(f->e[0].l));
    f->api.fail_status = 0;
    assert_true(run_until(f, a_leads, 3000));
    assert_int_equal(f->e[0].changes, 3);
    assert_int_equal(lease_number(&f->api, "leaseTransitions"), 0);
    assert_no_violation(f);
}

/* Expiry is judged on our clock from when the record last changed, never from its timestamps: a Lease whose
 * renewTime is decades old is not taken over at once, and one dated in the future is not held forever. */
static void lease_timestamps_are_not_trusted(void **state)
{
    fixture *f = *state;
    static const char *const times[] = { "2000-01-01T00:00:00.000000Z", "2100-01-01T00:00:00.000000Z" };
    for (int i = 0; i < 2; i++) {
        char text[512];
        snprintf(text, sizeof text,
                 "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\",\"metadata\":{\"name\":\"coord\","
                 "\"namespace\":\"default\"},\"spec\":{\"holderIdentity\":\"ghost-%d\",\"leaseDurationSeconds\":1,"
                 "\"acquireTime\":\"%s\",\"renewTime\":\"%s\",\"leaseTransitions\":4}}",
                 i, times[i], times[i]);
        store(&f->api, cJSON_Parse(text));
        start(f, 0, fast);
        int64_t t0 = now_ms();
        assert_true(run_until(f, a_leads, 4000));
        int64_t took = now_ms() - t0;
        if (took < 900)
            fail_msg("%s: took over after %lld ms, before the record's 1 s had passed", times[i], (long long)took);
        assert_int_equal(lease_number(&f->api, "leaseTransitions"), 5);
        assert_string_equal(lease_holder(&f->api), "coord-a");
        leader_free(f->e[0].l);
        f->e[0].l = NULL;
        f->e[0].leading = false;
    }
    assert_no_violation(f);
}

/* Durations out of order, or a missing identity, are refused. */
static void bad_options_are_refused(void **state)
{
    fixture *f = *state;
    static const struct {
        int64_t     lease, renew, retry;
        const char *identity;
    } bad[] = {
        { 1000, 1000, 100, "x" }, /* renew deadline not below the lease */
        { 1000, 500, 500, "x" },  /* retry not below the renew deadline */
        { 0, 20000, 0, "x" },     /* against a default */
        { 1000, 500, 100, "" },
        { 1000, 500, -5, "x" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        leader_opts o = { .namespace_ = "default", .name = "coord", .identity = bad[i].identity,
                          .lease_duration_ms = bad[i].lease, .renew_deadline_ms = bad[i].renew,
                          .retry_period_ms = bad[i].retry };
        if (leader_start(&f->loop, f->e[0].client, &o))
            fail_msg("case %zu accepted", i);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(one_elector_becomes_leader, setup, teardown),
        cmocka_unit_test_setup_teardown(two_electors_exactly_one_leads, setup, teardown),
        cmocka_unit_test_setup_teardown(stopped_leader_is_replaced_after_lease_duration, setup, teardown),
        cmocka_unit_test_setup_teardown(release_hands_over_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(release_without_lease_calls_done_from_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(failing_renewals_stop_leading_within_renew_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(lease_timestamps_are_not_trusted, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_options_are_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
