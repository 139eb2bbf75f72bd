/* reservation.c — the lifecycle guard of slot 0's reservation; see reservation.h.
 *
 * One timer does everything. Each wake-up runs reservation_check(): if slot 0 is reserved, the TTL is tested
 * first, then, when the periodic check is due (or was asked for), one E4 request starts. The timer is then set to
 * the earlier of the next check and the TTL expiry, so expiry is honoured to the millisecond while the ownership
 * request still runs only once a minute. The clock is Unix time (CLOCK_REALTIME), the one slot since_ms uses; the
 * delay handed to libuv is the difference.
 *
 * A reservation is identified by (task id, since_ms): an answer is applied only if slot 0 still holds that same
 * reservation, so a release (or a release and a new reservation) that happened while the request was in flight
 * wins over a late answer. */
#include "reservation.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "iac/json.h"
#include "iac/log.h"

#define RES_BASE_URL_MAX 512

struct reservation {
    reservation_config cfg;
    char        base_url[RES_BASE_URL_MAX];
    uv_timer_t  timer;
    bool        closing;
    bool        forced;       /* reservation_check_now() asked for a request at the next wake-up */
    bool        again;        /* asked while a request was in flight: check again if its answer keeps */
    httpc_call *call;
    uint64_t    call_task;    /* the reservation the request in flight is about */
    int64_t     call_since;
    uint64_t    seen_task;    /* the reservation seen at the last arming (0: none) */
    int64_t     seen_since;
    int64_t     next_check_ms;
    uint64_t    warned_task;  /* a failed check was already logged at warn for this task */
};

/* What an answer means for the reservation. */
typedef enum { VERDICT_KEEP, VERDICT_RELEASE } verdict;

static void reservation_check(reservation *w);
static void res_on_timer(uv_timer_t *t);

static int64_t res_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The reservation slot 0 holds, if any. */
static bool res_current(const reservation *w, uint64_t *task, int64_t *since)
{
    const slot_table *t = w->cfg.slots;
    if (t->n < 1 || t->s[0].status != SLOT_RESERVED || t->s[0].task_id == 0)
        return false;
    *task = t->s[0].task_id;
    *since = t->s[0].since_ms;
    return true;
}

/* "24h", "90m", "45s", "1500ms": the TTL as an operator wrote it, more or less. */
static void res_duration(int64_t ms, char *out, size_t n)
{
    static const struct { int64_t unit; const char *suffix; } units[] = {
        { 3600000, "h" }, { 60000, "m" }, { 1000, "s" }, { 1, "ms" },
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (ms % units[i].unit == 0) {
            snprintf(out, n, "%" PRId64 "%s", ms / units[i].unit, units[i].suffix);
            return;
        }
    }
}

/* Sets the timer to the earlier of the next ownership check and the TTL expiry (the check interval when idle).
 * A reservation seen for the first time gets its first check one interval from now. */
static void res_arm(reservation *w)
{
    if (w->closing)
        return;
    uv_update_time(w->cfg.loop); /* the timer counts from the loop's clock: make it current */
    int64_t now = res_now_ms(), delay = w->cfg.check_interval_ms;
    uint64_t task;
    int64_t since;
    if (res_current(w, &task, &since)) {
        if (task != w->seen_task || since != w->seen_since) {
            w->seen_task = task;
            w->seen_since = since;
            w->next_check_ms = now + w->cfg.check_interval_ms;
        }
        int64_t wake = w->next_check_ms;
        if (w->forced && !w->call)
            wake = now;
        if (w->cfg.ttl_ms > 0 && since + w->cfg.ttl_ms < wake)
            wake = since + w->cfg.ttl_ms;
        delay = wake > now ? wake - now : 0;
    } else {
        w->seen_task = 0;
        w->forced = false;
    }
    uv_timer_start(&w->timer, res_on_timer, (uint64_t)delay, 0);
}

static void res_on_timer(uv_timer_t *t)
{
    reservation_check(t->data);
}

/* Calls release unless the guard was freed; true when the caller may go on using w. */
static bool res_release(reservation *w, uint64_t task, const char *why)
{
    log_info("reservation", "ending slot 0's reservation for task %" PRIu64 ": %s", task, why);
    w->warned_task = 0;
    w->cfg.release(task, why, w->cfg.arg);
    return !w->closing;
}

/* A check that could not conclude: warn once per run of failures, then only at debug. */
static void res_inconclusive(reservation *w, uint64_t task, const char *what)
{
    if (w->warned_task != task) {
        w->warned_task = task;
        log_warn("reservation", "cannot check who applies task %" PRIu64 " (%s); keeping slot 0 reserved and "
                 "asking again in %" PRId64 " s", task, what, w->cfg.check_interval_ms / 1000);
    } else {
        log_debug("reservation", "ownership check of task %" PRIu64 " failed again: %s", task, what);
    }
}

/* Reads an E4 answer. VERDICT_RELEASE with why filled, or VERDICT_KEEP with what (the reason it did not conclude,
 * or "" when the task is still ours). */
static verdict res_judge(reservation *w, uint64_t task, const httpc_response *res, char *why, size_t whylen,
                         char *what, size_t whatlen)
{
    what[0] = 0;
    if (res->error != HTTPC_OK) {
        snprintf(what, whatlen, "%s", res->errmsg);
        return VERDICT_KEEP;
    }
    if (res->status == 404) {
        snprintf(why, whylen, "task %" PRIu64 " no longer exists", task);
        return VERDICT_RELEASE;
    }
    if (res->status < 200 || res->status > 299) {
        snprintf(what, whatlen, "HTTP %ld", res->status);
        return VERDICT_KEEP;
    }
    char err[160];
    const cJSON *obj = NULL;
    const char *agent_id = NULL;
    cJSON *root = json_parse_object(res->body, res->body_len, err, sizeof err);
    if (!root || json_get_object(root, "task", true, &obj, err, sizeof err) != 0 ||
        json_get_string(obj, "agent_id", false, &agent_id, err, sizeof err) < 0) {
        snprintf(what, whatlen, "unreadable answer: %s", err);
        cJSON_Delete(root);
        return VERDICT_KEEP;
    }
    verdict v = VERDICT_KEEP;
    const agent_store *st = w->cfg.store;
    if (!agent_id || !agent_id[0])
        snprintf(what, whatlen, "the task names no agent");
    else if (!st->agent_id[0] && st->n_past_ids == 0)
        snprintf(what, whatlen, "this agent has no id yet");
    else if (!store_is_own_id(st, agent_id)) {
        snprintf(why, whylen, "the apply of task %" PRIu64 " was given to agent %.*s", task, STORE_ID_MAX, agent_id);
        v = VERDICT_RELEASE;
    }
    cJSON_Delete(root);
    return v;
}

static void res_on_answer(const httpc_response *res, void *arg)
{
    reservation *w = arg;
    uint64_t task = w->call_task, now_task;
    int64_t since = w->call_since, now_since;
    bool again = w->again;
    w->call = NULL;
    w->again = false;
    if (!res_current(w, &now_task, &now_since) || now_task != task || now_since != since) {
        log_debug("reservation", "answer about task %" PRIu64 " ignored: its reservation ended meanwhile", task);
        res_arm(w);
        return;
    }
    char why[256], what[256];
    if (res_judge(w, task, res, why, sizeof why, what, sizeof what) == VERDICT_RELEASE) {
        if (!res_release(w, task, why))
            return;
    } else if (what[0]) {
        res_inconclusive(w, task, what);
        w->forced = again; /* a reconnect asked while this one was failing: try once more now */
    } else {
        w->warned_task = 0;
    }
    res_arm(w);
}

static void res_request(reservation *w, uint64_t task, int64_t since, int64_t now)
{
    char url[RES_BASE_URL_MAX + 80];
    snprintf(url, sizeof url, "%s/api/v1/agents/tasks/%" PRIu64 "/plan-task", w->base_url, task);
    httpc_req req = { .method = "GET", .url = url, .bearer = *w->cfg.token, .mode = HTTPC_PLAIN };
    w->next_check_ms = now + w->cfg.check_interval_ms;
    w->call_task = task;
    w->call_since = since;
    w->call = httpc_request(w->cfg.http, &req, res_on_answer, w);
    if (!w->call)
        res_inconclusive(w, task, "out of memory");
}

/* One wake-up: TTL first, then the ownership request when it is due. */
static void reservation_check(reservation *w)
{
    uint64_t task;
    int64_t since, now = res_now_ms();
    if (w->closing)
        return;
    if (res_current(w, &task, &since)) {
        if (w->cfg.ttl_ms > 0 && now - since >= w->cfg.ttl_ms) {
            char why[96], ttl[32];
            res_duration(w->cfg.ttl_ms, ttl, sizeof ttl);
            snprintf(why, sizeof why, "reservation TTL of %s passed", ttl);
            w->forced = false;
            if (!res_release(w, task, why))
                return;
        } else if (w->call) {
            /* One request at a time; its answer re-arms. */
        } else if (w->forced || now >= w->next_check_ms) {
            w->forced = false;
            res_request(w, task, since, now);
        }
    }
    res_arm(w);
}

/* ---- public API ---------------------------------------------------------------------------------------------- */

reservation *reservation_new(const reservation_config *cfg)
{
    if (!cfg || !cfg->loop || !cfg->http || !cfg->base_url || !cfg->token || !cfg->store || !cfg->slots ||
        !cfg->release || strlen(cfg->base_url) > RES_BASE_URL_MAX - 12)
        return NULL;
    reservation *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->cfg = *cfg;
    if (w->cfg.check_interval_ms <= 0)
        w->cfg.check_interval_ms = RESERVATION_CHECK_INTERVAL_MS;
    snprintf(w->base_url, sizeof w->base_url, "%s", cfg->base_url);
    w->cfg.base_url = w->base_url;
    uv_timer_init(cfg->loop, &w->timer);
    w->timer.data = w;
    res_arm(w);
    return w;
}

void reservation_check_now(reservation *w)
{
    if (!w || w->closing)
        return;
    if (w->call)
        w->again = true;
    else
        w->forced = true;
    uv_timer_start(&w->timer, res_on_timer, 0, 0); /* from the loop: release never runs inside this call */
}

void reservation_slots_changed(reservation *w)
{
    if (w && !w->closing)
        res_arm(w);
}

static void res_closed(uv_handle_t *h)
{
    free(h->data);
}

void reservation_free(reservation *w)
{
    if (!w || w->closing)
        return;
    w->closing = true;
    if (w->call)
        httpc_cancel(w->call);
    w->call = NULL;
    uv_close((uv_handle_t *)&w->timer, res_closed);
}
