/* agent.c — the agent's lifecycle state machine; see agent.h.
 *
 * The story, in order: agent_register → on_registered → agent_fetch_creds and agent_connect side by side →
 * cc_opened (heartbeat at once, then every 10 s; messages held until on_creds ends the first fetch) … cc_closed →
 * agent_connect again after a jittered backoff, or agent_register after a 403, or the token path after a 401.
 * SIGTERM: agent_drain(exit) → a last heartbeat that says "draining" → clean close → agent_finish. Every libuv
 * handle of the struct is closed in agent_finish, so the loop returns by itself. */
#include "agent.h"

#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern char **environ;

#include <cjson/cJSON.h>

#include "creds.h"
#include "heartbeat.h"
#include "iac/json.h"
#include "iac/log.h"
#include "iac/strbuf.h"
#include "status.h"

#define HEARTBEAT_INTERVAL_MS 10000
#define CREDS_INTERVAL_MS (5 * 60 * 1000)
#define RETRY_BASE_MS 500
#define RETRY_CAP_MS 30000
#define EXIT_FLUSH_MS 600             /* longest wait for the last heartbeat and close handshake on exit */

enum { CREDS_INITIAL = 0, CREDS_PERIODIC, CREDS_COMMAND };

static void agent_register(agent *a);
static void agent_connect(agent *a);
static void agent_finish_soon(agent *a);
static void agent_finish(agent *a);
static void agent_fetch_creds(agent *a, int why);
static void agent_request_work(agent *a);

int64_t agent_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *agent_phase_name(agent_phase p)
{
    static const char *const names[] = { "registering", "connecting", "connected", "stopping" };
    return (unsigned)p < sizeof names / sizeof names[0] ? names[p] : "unknown";
}

bool agent_ready(const agent *a) { return a->registered && a->phase == AGENT_CONNECTED; }

static void agent_save(agent *a)
{
    a->identity_unsaved = false; /* every save writes the identity too */
    int rc = store_save(a->opt->data_dir, &a->store);
    if (rc < 0)
        log_error("agent", "cannot save state in %s: %s (the slot table is kept in memory)", a->opt->data_dir,
                  strerror(-rc));
}

/* ---- heartbeats -------------------------------------------------------------------------------------------- */

static void agent_heartbeat(agent *a)
{
    if (!cc_is_open(a->cc))
        return;
    heartbeat_frame f;
    heartbeat_build(&f, &a->store.slots, a->draining, agent_now_ms() / 1000, heartbeat_mem_usage(), IAC_VERSION);
    if (cc_send(a->cc, &f.msg) == 0)
        a->n.heartbeats_sent++;
    else
        log_warn("agent", "heartbeat not sent: the C&C queue is full or closed");
}

static void on_hb_timer(uv_timer_t *t) { agent_heartbeat(t->data); }

/* Every slot or state change: persist, and tell the plane on the next loop turn. A 0 ms timer runs after the
 * callbacks of the current turn, so the changes they make (a task ends, its slot frees, the next run_task takes
 * it) share one heartbeat; waiting any longer only keeps a free slot unseen by the plane, which places work by
 * the slots of the last heartbeat. */
static void agent_state_changed(agent *a)
{
    agent_save(a);
    if (a->resv)
        reservation_slots_changed(a->resv);
    if (!uv_is_active((uv_handle_t *)&a->hb_soon_timer))
        uv_timer_start(&a->hb_soon_timer, on_hb_timer, 0, 0);
}

/* ---- retries ----------------------------------------------------------------------------------------------- */

static void on_retry_timer(uv_timer_t *t)
{
    agent *a = t->data;
    void (*step)(agent *) = a->retry_step;
    a->retry_step = NULL;
    if (step && a->phase != AGENT_STOPPING)
        step(a);
}

static void agent_retry(agent *a, backoff *b, void (*step)(agent *))
{
    uint64_t delay = backoff_next(b);
    a->retry_step = step;
    uv_timer_start(&a->retry_timer, on_retry_timer, delay, 0);
    log_debug("agent", "next attempt in %" PRIu64 " ms", delay);
}

/* ---- the token ------------------------------------------------------------------------------------------- */

/* The plane answered 401 at `where`. With a token file, a changed token is tried at once and an unchanged one
 * after a backoff (a rotated Secret may not have reached the pod yet); without one the agent cannot recover:
 * exit 3 with the cause, never a silent loop (ref §8 entry 41). */
static void agent_token_rejected(agent *a, const char *where, const char *detail, void (*retry)(agent *))
{
    a->n.token_rejections++;
    if (!a->opt->token_file) {
        log_error("agent", "the control plane rejected the pool token (HTTP 401 at %s: %s): the token was revoked, "
                  "expired or is wrong; set IAC_AGENT_TOKEN to a valid pool token, or IAC_AGENT_TOKEN_FILE so that "
                  "a rotated token is picked up; exiting with status 3", where, detail);
        a->exit_code = 3;
        agent_finish_soon(a);
        return;
    }
    char err[512];
    int rc = agent_options_reload_token(a->opt, err, sizeof err);
    if (rc == 1) {
        log_info("agent", "the control plane rejected the pool token (HTTP 401 at %s); re-read %s: trying the new "
                 "token", where, a->opt->token_file);
        retry(a);
        return;
    }
    log_warn("agent", "the control plane rejected the pool token (HTTP 401 at %s: %s); %s; retrying until %s "
             "holds a valid token", where, detail, rc == 0 ? "the token file still holds the same token" : err,
             a->opt->token_file);
    agent_retry(a, &a->reg_backoff, retry);
}

/* A short, secret-free description of an HTTP failure for logs. */
static void http_failure(const httpc_response *r, char *out, size_t outlen)
{
    if (r->error != HTTPC_OK)
        snprintf(out, outlen, "%s", r->errmsg);
    else
        snprintf(out, outlen, "HTTP %ld: %.200s", r->status, r->body);
}

/* ---- registration (ref E1) ------------------------------------------------------------------------------ */

static void on_registered(const httpc_response *r, void *arg)
{
    agent *a = arg;
    a->reg_call = NULL;
    char detail[512];
    if (r->error == HTTPC_OK && r->status == 401) {
        http_failure(r, detail, sizeof detail);
        agent_token_rejected(a, "registration", detail, agent_register);
        return;
    }
    const char *agent_id = NULL, *pool_id = NULL;
    cJSON *root = NULL;
    if (r->error == HTTPC_OK && r->status >= 200 && r->status < 300) {
        root = json_parse_object(r->body, r->body_len, detail, sizeof detail);
        if (root && (json_get_string(root, "agent_id", true, &agent_id, detail, sizeof detail) < 0 ||
                     json_get_string(root, "pool_id", true, &pool_id, detail, sizeof detail) < 0))
            agent_id = NULL;
        if (agent_id && (!agent_id[0] || strlen(agent_id) >= STORE_ID_MAX || strlen(pool_id) >= STORE_ID_MAX)) {
            snprintf(detail, sizeof detail, "agent_id or pool_id empty or too long");
            agent_id = NULL;
        }
    } else {
        http_failure(r, detail, sizeof detail);
    }
    if (!agent_id) {
        a->n.registration_errors++;
        log_warn("agent", "registration at %s failed: %s", a->base_url, detail);
        cJSON_Delete(root);
        agent_retry(a, &a->reg_backoff, agent_register);
        return;
    }
    store_set_identity(&a->store, agent_id, pool_id);
    cJSON_Delete(root);
    a->registered = true;
    a->n.registrations++;
    backoff_reset(&a->reg_backoff);
    /* Saved (with an fsync of file and directory, ~0.5 ms or more) once the first frames are out: nothing needs
     * the new id on disk before that, and an agent that dies sooner registers again anyway. */
    a->identity_unsaved = true;
    log_info("agent", "registered as %s in pool %s", a->store.agent_id, a->store.pool_id);
    agent_fetch_creds(a, CREDS_INITIAL);
    agent_connect(a);
}

static void agent_register(agent *a)
{
    if (a->phase == AGENT_STOPPING || a->reg_call)
        return;
    a->phase = AGENT_REGISTERING;
    a->registered = false;
    char url[700], body[256];
    strbuf name = STRBUF_INIT;
    strbuf_json_escape(&name, a->opt->name, strlen(a->opt->name));
    snprintf(url, sizeof url, "%s/api/v1/agents/register", a->base_url);
    snprintf(body, sizeof body, "{\"name\":\"%s\"}", name.data ? name.data : "");
    strbuf_free(&name);
    httpc_req req = { .method = "POST", .url = url, .bearer = a->opt->token, .body = body,
                      .body_len = strlen(body), .mode = HTTPC_PLAIN };
    a->reg_call = httpc_request(a->http, &req, on_registered, a);
    if (!a->reg_call)
        agent_retry(a, &a->reg_backoff, agent_register);
}

/* ---- registry credentials (ref E2, §1.5) -------------------------------------------------------------- */

static void agent_send_credentials_refreshed(agent *a, int count)
{
    proto_msg m = { .type = MSG_CREDENTIALS_REFRESHED };
    m.u.credentials_refreshed.agent_id = a->store.agent_id;
    m.u.credentials_refreshed.pool_id = a->store.pool_id;
    m.u.credentials_refreshed.timestamp = agent_now_ms() / 1000;
    m.u.credentials_refreshed.count = count;
    cc_send(a->cc, &m);
}

static void agent_creds_settle(agent *a);

static void on_creds(const httpc_response *r, void *arg)
{
    agent *a = arg;
    int why = a->creds_why;
    a->creds_call = NULL;
    char err[512];
    int count = 0;
    if (r->error == HTTPC_OK && r->status >= 200 && r->status < 300) {
        int rc = creds_apply(getenv("HOME"), r->body, r->body_len, why == CREDS_COMMAND, &count, err, sizeof err);
        if (rc < 0)
            log_warn("agent", "registry credentials not updated: %s", err);
        else if (rc != CREDS_UNCHANGED)
            log_info("agent", "registry credentials %s (%d host%s)", rc == CREDS_DELETED ? "removed" : "written",
                     count, count == 1 ? "" : "s");
        a->n.credentials_refreshes++;
        if (why == CREDS_COMMAND)
            agent_send_credentials_refreshed(a, count);
    } else {
        http_failure(r, err, sizeof err);
        log_warn("agent", "registry credentials not fetched (the next refresh retries): %s", err);
    }
    agent_creds_settle(a);
}

static void agent_fetch_creds(agent *a, int why)
{
    if (a->creds_call) {
        if (why == CREDS_COMMAND) /* answer the command when the call in flight completes */
            a->creds_why = CREDS_COMMAND;
        return;
    }
    char url[700];
    snprintf(url, sizeof url, "%s/api/v1/agents/pool/secrets", a->base_url);
    httpc_req req = { .method = "GET", .url = url, .bearer = a->opt->token, .mode = HTTPC_PLAIN };
    a->creds_why = why;
    a->creds_call = httpc_request(a->http, &req, on_creds, a);
    if (!a->creds_call) {
        log_warn("agent", "registry credentials not fetched: the request could not be started");
        agent_creds_settle(a); /* as a failed fetch: tasks go on without (ref §1.3, failures are ignored) */
    }
}

static void on_creds_timer(uv_timer_t *t)
{
    agent *a = t->data;
    if (a->registered)
        agent_fetch_creds(a, CREDS_PERIODIC);
}

/* ---- C&C ------------------------------------------------------------------------------------------------- */

static void agent_connect(agent *a)
{
    if (a->phase == AGENT_STOPPING)
        return;
    if (!a->registered) {
        agent_register(a);
        return;
    }
    a->phase = AGENT_CONNECTING;
    int rc = cc_connect(a->cc, a->opt->https, a->opt->endpoint, (int)a->opt->cc_port, a->store.agent_id,
                        a->opt->token);
    if (rc != 0) {
        log_warn("agent", "cannot start the C&C connection (error %d)", rc);
        agent_retry(a, &a->cc_backoff, agent_connect);
    }
}

static void cc_opened(void *arg)
{
    agent *a = arg;
    if (a->phase == AGENT_STOPPING)
        return;
    a->phase = AGENT_CONNECTED;
    a->refused_403 = 0;
    if (a->n.connects++)
        a->n.reconnects++;
    backoff_reset(&a->cc_backoff);
    log_info("agent", "C&C connected to %s:%lld as %s", a->opt->endpoint, (long long)a->opt->cc_port,
             a->store.agent_id);
    agent_heartbeat(a);
    uv_timer_start(&a->hb_timer, on_hb_timer, HEARTBEAT_INTERVAL_MS, HEARTBEAT_INTERVAL_MS);
    agent_request_work(a);
    /* After every (re)connect: is the reservation still ours, and is any report from before a restart owed? */
    reservation_check_now(a->resv);
    recovery_report(a->recov);
}

/* Everything queued is on the wire: the first time after a registration, the moment to write its identity. The
 * first time at all, start-up is over: its transient allocations (option and store parsing, the registration's
 * request and answer) are freed but their pages stay in the heap, so they are handed back to the kernel once. */
static void cc_drained(void *arg)
{
    agent *a = arg;
    if (a->identity_unsaved)
        agent_save(a);
    if (!a->heap_trimmed) {
        malloc_trim(0);
        a->heap_trimmed = true;
    }
}

static void cc_closed(int http_status, const char *reason, void *arg)
{
    agent *a = arg;
    bool was_open = a->phase == AGENT_CONNECTED;
    uv_timer_stop(&a->hb_timer);
    if (a->identity_unsaved)
        agent_save(a);
    if (a->phase == AGENT_STOPPING || a->exiting) {
        agent_finish_soon(a);
        return;
    }
    a->phase = AGENT_CONNECTING;
    if (http_status == 401) {
        agent_token_rejected(a, "the C&C handshake", reason, agent_connect);
        return;
    }
    if (http_status == 403) {
        /* The plane no longer knows this agent id (its row was deleted after 5 minutes offline, or the plane lost
         * its data): register again for a new id (ref §8 entry 41). A second 403 in a row waits first, so that a
         * plane that refuses every id is not hammered. */
        a->registered = false;
        log_info("agent", "the control plane does not know agent %s (HTTP 403 on the C&C handshake); registering "
                 "again", a->store.agent_id);
        if (a->refused_403++ == 0)
            agent_register(a);
        else
            agent_retry(a, &a->cc_backoff, agent_register);
        return;
    }
    if (was_open)
        log_warn("agent", "C&C connection lost (%s); reconnecting", reason);
    else
        log_info("agent", "C&C connection failed (%s)", reason);
    agent_retry(a, &a->cc_backoff, agent_connect);
}

/* ---- tasks ------------------------------------------------------------------------------------------------ */

/* DESIGN §6 task_request: the free capacity and held reservations, so that a pull-capable plane sends work. Sent
 * at connect and whenever a slot frees. */
static void agent_request_work(agent *a)
{
    if (!cc_is_open(a->cc) || a->draining)
        return;
    slots_summary sum;
    slots_summarize(&a->store.slots, &sum);
    uint64_t reserved[1];
    size_t n = 0;
    if (a->store.slots.s[0].status == SLOT_RESERVED)
        reserved[n++] = a->store.slots.s[0].task_id;
    proto_msg m = { .type = MSG_TASK_REQUEST };
    m.u.task_request.free_plan_and_apply = sum.free_plan_and_apply;
    m.u.task_request.free_plan = sum.free_plan;
    m.u.task_request.reserved = reserved;
    m.u.task_request.n_reserved = n;
    cc_send(a->cc, &m);
}

static void agent_on_run_task(agent *a, const proto_run_task *rt)
{
    task_action action = slots_action_parse(rt->action);
    int rc = executor_run(a->exec, rt->task_id, rt->workspace_id, action, rt->task_type);
    if (rc == 1) {
        log_info("agent", "task %" PRIu64 " is already running here; duplicate run_task ignored", rt->task_id);
        return;
    }
    if (rc < 0) { /* refused before anything started */
        a->n.tasks[TASK_OUTCOME_REJECTED]++;
        executor_reject(a->exec, rt->task_id, action, slots_strerror(rc));
    }
}

/* Live log frames may use only half of the C&C queue, so that heartbeats and task reports always find room. */
#define LIVE_LOG_QUEUE_SHARE 128
/* And at most this many a second, with bursts of LIVE_LOG_BURST (a token bucket, common/bucket, for the whole
 * agent). Upstream sends a frame per line and drops what its socket cannot take, and the plane turns each frame
 * into a broadcast and a PostgreSQL NOTIFY (ref §3.9); an engine printing hundreds of thousands of lines a second
 * would make the plane do that much work for a stream no one can read at that speed. The full log is uploaded at
 * the end whatever the live stream dropped (counted in iac_agent_live_frames_dropped_total). */
#define LIVE_LOG_PER_SECOND 10000
#define LIVE_LOG_BURST 2000

/* Whether a live log frame would be sent now; the executor asks before building one, so that a flood of output
 * the queue or the rate cannot take costs no formatting. */
static bool exec_live_ready(void *arg)
{
    agent *a = arg;
    return cc_is_open(a->cc) && cc_queued(a->cc) < LIVE_LOG_QUEUE_SHARE && bucket_ready(&a->live, uv_now(a->loop));
}

static int exec_send(const proto_msg *m, void *arg)
{
    agent *a = arg;
    if (m->type != MSG_LOG_STREAM)
        return cc_send(a->cc, m);
    if (!exec_live_ready(a))
        return -1;
    bucket_take(&a->live, uv_now(a->loop));
    return cc_send(a->cc, m);
}

static void exec_slots_changed(void *arg)
{
    agent_state_changed(arg);
}

static void agent_exit_when_idle(agent *a);

static void resv_release(uint64_t task_id, const char *why, void *arg)
{
    agent *a = arg;
    if (a->store.slots.s[0].status == SLOT_RESERVED && a->store.slots.s[0].task_id == task_id)
        agent_release_reservation(a, why);
}

static void recov_reported(uint64_t task_id, void *arg)
{
    agent *a = arg;
    log_info("agent", "reported task %" PRIu64 " as failed: it was running when the agent stopped", task_id);
    store_forget_interrupted(&a->store, task_id);
    agent_save(a);
}

static void exec_finished(uint64_t task_id, int outcome, void *arg)
{
    agent *a = arg;
    static const int outcome_map[EXEC__OUTCOMES] = { TASK_OUTCOME_SUCCESS, TASK_OUTCOME_FAILED,
                                                     TASK_OUTCOME_CANCELLED, TASK_OUTCOME_REJECTED };
    a->n.tasks[outcome_map[outcome]]++;
    (void)task_id;
    if (a->exiting && executor_active(a->exec) == 0) {
        agent_exit_when_idle(a);
        return;
    }
    agent_request_work(a);
}

static void agent_handle_message(agent *a, const proto_msg *m)
{
    switch (m->type) {
    case MSG_RUN_TASK:
        agent_on_run_task(a, &m->u.run_task);
        break;
    case MSG_REFRESH_CREDENTIALS:
        agent_fetch_creds(a, CREDS_COMMAND);
        break;
    case MSG_RELEASE_RESERVATION:
        if (slots_find(&a->store.slots, m->u.task_ref.task_id) == 0 &&
            a->store.slots.s[0].status == SLOT_RESERVED)
            agent_release_reservation(a, "release_reservation from the control plane");
        break;
    case MSG_DRAIN:
        agent_drain(a, false);
        break;
    case MSG_UNDRAIN:
        agent_undrain(a);
        break;
    case MSG_CANCEL_TASK:
        if (executor_cancel(a->exec, m->u.task_ref.task_id, "cancel_task from the control plane"))
            break;
        if (a->store.slots.s[0].status == SLOT_RESERVED && a->store.slots.s[0].task_id == m->u.task_ref.task_id)
            agent_release_reservation(a, "the task was cancelled");
        else
            log_debug("agent", "cancel_task for task %" PRIu64 ": not running here", m->u.task_ref.task_id);
        break;
    default:
        log_debug("agent", "ignored C&C message of type %s", m->type_name ? m->type_name : "?");
        break;
    }
}

/* ---- messages that wait for the first credentials (see agent.h) ------------------------------------------- */

/* At most this many messages wait; a plane that sends more before the credentials come has them handled at once
 * (the wait ends early, with a warning). A ~1 ms wait sees a run_task or two. */
#define HELD_MAX 64

/* A held message, kept as its encoded frame (the decoded one points into memory freed after cc_message). */
struct held_msg {
    struct held_msg *next;
    size_t           len;
    char             frame[];
};

static void held_clear(agent *a)
{
    while (a->held) {
        struct held_msg *next = a->held->next;
        free(a->held);
        a->held = next;
    }
    a->held_tail = &a->held;
    a->n_held = 0;
}

/* Keeps m for later. 0, or -1 when it cannot be kept (the queue is full, out of memory, a type without an
 * encoding: MSG_UNKNOWN, which is ignored anyway). */
static int held_push(agent *a, const proto_msg *m)
{
    if (a->n_held >= HELD_MAX)
        return -1;
    size_t len = 0;
    char *frame = proto_encode(m, &len);
    struct held_msg *h = frame ? malloc(sizeof *h + len + 1) : NULL;
    if (!h) {
        free(frame);
        return -1;
    }
    h->next = NULL;
    h->len = len;
    memcpy(h->frame, frame, len + 1);
    free(frame);
    if (!a->held_tail)
        a->held_tail = &a->held;
    *a->held_tail = h;
    a->held_tail = &h->next;
    a->n_held++;
    return 0;
}

/* The first credentials fetch has ended: handle what waited, in the order it came. A message handled here may
 * start another fetch (refresh_credentials) or more work; none of it waits any more. */
static void agent_creds_settle(agent *a)
{
    if (a->creds_settled)
        return;
    a->creds_settled = true;
    while (a->held && a->phase != AGENT_STOPPING) {
        struct held_msg *h = a->held;
        a->held = h->next;
        if (!a->held)
            a->held_tail = &a->held;
        a->n_held--;
        proto_msg m;
        char err[256];
        if (proto_decode(h->frame, h->len, &m, err, sizeof err) == PROTO_OK)
            agent_handle_message(a, &m);
        else
            log_warn("agent", "a held C&C message could not be read back: %s", err);
        proto_msg_free(&m);
        free(h);
    }
    held_clear(a);
}

static void cc_message(const proto_msg *m, void *arg)
{
    agent *a = arg;
    if (!a->creds_settled) {
        if (held_push(a, m) == 0)
            return;
        if (m->type != MSG_UNKNOWN) {
            log_warn("agent", "C&C messages keep coming before the registry credentials (%d held): handling them "
                     "now", a->n_held);
            agent_creds_settle(a);
        }
    }
    agent_handle_message(a, m);
}

/* ---- draining and exit ----------------------------------------------------------------------------------- */

static void on_close_handle(uv_handle_t *h)
{
    agent *a = h->data;
    a->handles_open--;
}

static void agent_finish(agent *a)
{
    if (a->phase == AGENT_STOPPING && !a->http)
        return;
    a->phase = AGENT_STOPPING;
    if (a->reg_call)
        httpc_cancel(a->reg_call);
    if (a->creds_call)
        httpc_cancel(a->creds_call);
    a->reg_call = a->creds_call = NULL;
    executor_free(a->exec);
    a->exec = NULL;
    reservation_free(a->resv);
    a->resv = NULL;
    recovery_free(a->recov);
    a->recov = NULL;
    httpc_free(a->http);
    a->http = NULL;
    cc_free(a->cc);
    a->cc = NULL;
    status_stop(a);
    held_clear(a);
    if (a->identity_unsaved)
        agent_save(a);
    uv_handle_t *handles[] = { (uv_handle_t *)&a->retry_timer, (uv_handle_t *)&a->hb_timer,
                               (uv_handle_t *)&a->hb_soon_timer, (uv_handle_t *)&a->creds_timer,
                               (uv_handle_t *)&a->exit_timer, (uv_handle_t *)&a->drain_timer,
                               (uv_handle_t *)&a->sig_term, (uv_handle_t *)&a->sig_int };
    for (size_t i = 0; i < sizeof handles / sizeof handles[0]; i++)
        if (!uv_is_closing(handles[i]))
            uv_close(handles[i], on_close_handle);
    log_info("agent", "stopped");
}

static void on_exit_timer(uv_timer_t *t) { agent_finish(t->data); }

/* Finishing frees the C&C session and the HTTP client; never do that from inside their own callbacks. */
static void agent_finish_soon(agent *a)
{
    if (a->phase == AGENT_STOPPING)
        return;
    uv_timer_start(&a->exit_timer, on_exit_timer, 0, 0);
}

/* Idle and asked to exit: one last heartbeat that says "draining", then a clean close (bounded in time). */
static void agent_exit_when_idle(agent *a)
{
    uv_timer_stop(&a->retry_timer);
    a->retry_step = NULL;
    if (a->reg_call) {
        httpc_cancel(a->reg_call);
        a->reg_call = NULL;
    }
    if (!cc_is_open(a->cc)) {
        agent_finish_soon(a);
        return;
    }
    agent_heartbeat(a);
    cc_close(a->cc);
    uv_timer_start(&a->exit_timer, on_exit_timer, EXIT_FLUSH_MS, 0);
}

static void on_drain_timer(uv_timer_t *t)
{
    agent *a = t->data;
    log_warn("agent", "drain timeout: %zu task(s) still running are interrupted and reported",
             executor_active(a->exec));
    executor_interrupt_all(a->exec, "interrupted: the agent is shutting down (drain timeout)", false);
}

void agent_drain(agent *a, bool exit)
{
    if (exit && a->exiting) {
        if (executor_active(a->exec) == 0) {
            log_warn("agent", "second stop request: exiting now");
            agent_finish_soon(a);
            return;
        }
        /* Interrupt at once, but still report every task before exiting (bounded by the exit deadline). */
        log_warn("agent", "second stop request: interrupting %zu running task(s) now", executor_active(a->exec));
        executor_interrupt_all(a->exec, "interrupted: the agent is shutting down", true);
        uv_timer_start(&a->exit_timer, on_exit_timer, 30000, 0);
        return;
    }
    if (!a->draining)
        log_info("agent", "draining: no new tasks are accepted%s", exit ? "; exiting when idle" : "");
    a->draining = true;
    a->store.slots.draining = true;
    if (exit) {
        a->exiting = true;
        if (executor_active(a->exec) == 0) {
            agent_exit_when_idle(a);
            return;
        }
        log_info("agent", "waiting up to %lld s for %zu running task(s) before exiting",
                 (long long)(a->opt->drain_timeout_ms / 1000), executor_active(a->exec));
        uv_timer_start(&a->drain_timer, on_drain_timer, (uint64_t)a->opt->drain_timeout_ms, 0);
    }
    agent_state_changed(a);
}

bool agent_undrain(agent *a)
{
    if (a->exiting)
        return false;
    if (a->draining)
        log_info("agent", "undrained: accepting tasks again");
    a->draining = false;
    a->store.slots.draining = false;
    agent_state_changed(a);
    agent_request_work(a);
    return true;
}

/* Removes the kept work directory of a task: {data_dir}/workspaces/<any workspace>/<task id>. */
static void agent_remove_workdir(agent *a, uint64_t task_id)
{
    char pattern[PATH_MAX];
    snprintf(pattern, sizeof pattern, "%s/workspaces/*/%" PRIu64, a->opt->data_dir, task_id);
    glob_t g;
    if (glob(pattern, GLOB_NOSORT | GLOB_ONLYDIR, NULL, &g) != 0)
        return;
    for (size_t i = 0; i < g.gl_pathc; i++)
        executor_discard_workdir(a->exec, g.gl_pathv[i]); /* a kept plan's directory: off the loop, as a task's */
    globfree(&g);
}

uint64_t agent_release_reservation(agent *a, const char *why)
{
    slot *s0 = &a->store.slots.s[0];
    if (s0->status != SLOT_RESERVED)
        return 0;
    uint64_t task_id = s0->task_id;
    slots_release(&a->store.slots, task_id, agent_now_ms());
    agent_remove_workdir(a, task_id);
    log_info("agent", "slot 0 reservation for task %" PRIu64 " released: %s", task_id, why);
    agent_state_changed(a);
    agent_request_work(a); /* slot 0 is free again */
    return task_id;
}

static void on_signal(uv_signal_t *s, int signum)
{
    agent *a = s->data;
    log_info("agent", "received %s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    agent_drain(a, true);
}

/* ---- set-up ---------------------------------------------------------------------------------------------- */

int agent_init(agent *a, uv_loop_t *loop, agent_options *opt, char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    a->loop = loop;
    a->opt = opt;
    a->started_ms = agent_now_ms();
    bucket_init(&a->live, LIVE_LOG_PER_SECOND, LIVE_LOG_BURST, uv_now(loop));
    snprintf(a->base_url, sizeof a->base_url, "%s://%s:%lld", opt->https ? "https" : "http", opt->endpoint,
             (long long)opt->server_port);
    slots_init(&a->store.slots, (int)opt->slots, a->started_ms);
    char msg[1024];
    int rc = store_load(opt->data_dir, &a->store, msg, sizeof msg);
    if (rc < 0) {
        snprintf(err, errlen, "%s", msg);
        return -1;
    }
    if (rc == STORE_CORRUPT)
        log_error("agent", "%s", msg);
    if (a->store.slots.s[0].status == SLOT_RESERVED)
        log_info("agent", "slot 0 is still reserved for task %" PRIu64 " from before the restart",
                 a->store.slots.s[0].task_id);
    if (a->store.n_interrupted)
        log_warn("agent", "%d task(s) were running when the agent stopped; they are kept to be reported as failed",
                 a->store.n_interrupted);
    uint64_t seed = (uint64_t)a->started_ms ^ ((uint64_t)getpid() << 32);
    backoff_init(&a->reg_backoff, RETRY_BASE_MS, RETRY_CAP_MS, seed);
    backoff_init(&a->cc_backoff, RETRY_BASE_MS, RETRY_CAP_MS, seed * 2654435761u + 1);
    httpc_opts hopts = { .ca_file = opt->ssl_cert_file };
    a->http = httpc_new(loop, &hopts);
    static const cc_handlers h = { cc_opened, cc_closed, cc_message, cc_drained };
    a->cc = a->http ? cc_new(loop, &h, a) : NULL;
    if (!a->http || !a->cc) {
        snprintf(err, errlen, "cannot initialise the %s client", a->http ? "WebSocket" : "HTTP");
        httpc_free(a->http);
        a->http = NULL;
        return -1;
    }
    executor_config xc = { .loop = loop, .http = a->http, .base_url = a->base_url, .token = &opt->token,
                           .data_dir = opt->data_dir, .engine_path = opt->engine_path,
                           .plugin_cache_dir = opt->plugin_cache_dir, .environ = environ,
                           .init_retry_wait_ms = opt->init_retry_wait_ms,
                           .state_retry_wait_ms = opt->state_retry_wait_ms, .task_timeout_ms = opt->task_timeout_ms,
                           .cancel_grace_ms = opt->cancel_grace_ms, .slots = &a->store.slots, .send = exec_send,
                           .live_ready = exec_live_ready, .slots_changed = exec_slots_changed,
                           .finished = exec_finished, .arg = a };
    a->exec = executor_new(&xc);
    if (!a->exec) {
        snprintf(err, errlen, "cannot initialise the task executor");
        cc_free(a->cc);
        httpc_free(a->http);
        a->cc = NULL;
        a->http = NULL;
        return -1;
    }
    reservation_config resv_cfg = { .loop = loop, .http = a->http, .base_url = a->base_url, .token = &opt->token,
                                    .store = &a->store, .slots = &a->store.slots, .ttl_ms = opt->reservation_ttl_ms,
                                    .release = resv_release, .arg = a };
    recovery_config vc = { .http = a->http, .base_url = a->base_url, .token = &opt->token, .store = &a->store,
                           .send = exec_send, .reported = recov_reported, .arg = a };
    a->resv = reservation_new(&resv_cfg);
    a->recov = recovery_new(&vc);
    if (!a->resv || !a->recov) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int orphans = recovery_clean_orphans(opt->data_dir, &a->store.slots);
    if (orphans > 0)
        log_info("agent", "removed %d work director%s left by tasks that are not held here", orphans,
                 orphans == 1 ? "y" : "ies");
    uv_timer_t *timers[] = { &a->retry_timer, &a->hb_timer, &a->hb_soon_timer, &a->creds_timer, &a->exit_timer,
                             &a->drain_timer };
    for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++) {
        uv_timer_init(loop, timers[i]);
        timers[i]->data = a;
        a->handles_open++;
    }
    uv_signal_init(loop, &a->sig_term);
    uv_signal_init(loop, &a->sig_int);
    a->sig_term.data = a->sig_int.data = a;
    a->handles_open += 2;
    return 0;
}

int agent_start(agent *a, char *err, size_t errlen)
{
    /* Before anything reaches the plane: an agent that cannot serve its status does not register. */
    if (status_start(a, err, errlen) < 0) {
        agent_finish(a); /* closes the handles; the caller runs the loop to let them close */
        return -1;
    }
    uv_signal_start(&a->sig_term, on_signal, SIGTERM);
    uv_signal_start(&a->sig_int, on_signal, SIGINT);
    uv_timer_start(&a->creds_timer, on_creds_timer, CREDS_INTERVAL_MS, CREDS_INTERVAL_MS);
    log_info("agent", "iac-agent %s starting: %lld slots, control plane %s (C&C port %lld), data %s", IAC_VERSION,
             (long long)a->opt->slots, a->base_url, (long long)a->opt->cc_port, a->opt->data_dir);
    agent_register(a);
    return 0;
}

void agent_dispose(agent *a)
{
    executor_free(a->exec);
    a->exec = NULL;
    reservation_free(a->resv);
    a->resv = NULL;
    recovery_free(a->recov);
    a->recov = NULL;
    if (a->http)
        httpc_free(a->http);
    cc_free(a->cc);
    a->http = NULL;
    a->cc = NULL;
    held_clear(a);
}
