/* executor.c — the plan pipeline as asynchronous steps; see executor.h.
 *
 * The steps of a plan, in order (ref §7.4):
 *
 *     step_fetch → step_place → step_engine → step_render → step_init → step_plan → step_show → step_upload_plan
 *     → step_changes → step_decide → step_status → step_log → task_done
 *
 * Each step starts one asynchronous operation (an HTTP call, a child process, an engine resolution) whose
 * completion calls exec_next(); a failure calls exec_fail(), which turns the rest of the task into the failure path
 * (status failed with the extracted error, log upload, task_failed). Reporting steps (status, log) run on both
 * paths. Every terraform and agent line of the task is written to the spill file and fed to the error extractor as
 * it arrives, so nothing is re-read at the end. */
#include "executor.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "engine.h"
#include "iac/digest.h"
#include "iac/fsutil.h"
#include "iac/json.h"
#include "iac/log.h"
#include "planjson.h"
#include "proc.h"
#include "render.h"
#include "taskenv.h"
#include "tasklog.h"
#include "workdir.h"

#define EXEC_MAX_TASKS (SLOTS_MAX + 16)  /* tasks fetching or running at once */
#define EXEC_PLAN_UPLOAD_TRIES 3
#define EXEC_MAX_PLAN_FILE (512u << 20)
#define EXEC_MAX_PLAN_JSON (256u << 20)
#define EXEC_TASK_LOG ".iac-task.log" /* in the work directory */
#define EXEC_SETTLE_MS 2 /* how long a spawn's bookkeeping waits for the engine to start (exec_settle) */

/* Stages as the metrics page names them; the index is what steps record. */
enum {
    STAGE_FETCHING, STAGE_INIT, STAGE_PLANNING, STAGE_SAVING_PLAN, STAGE_RESTORING_PLAN, STAGE_APPLYING,
    STAGE_SAVING_STATE, STAGE_REPORTING, STAGE__N
};
static const char *const stage_names[] = { "fetching", "init", "planning", "saving_plan", "restoring_plan",
                                            "applying", "saving_state", "reporting" };
const double executor_stage_bounds[7] = { 0.1, 0.5, 1, 5, 15, 60, 300 };

const char *executor_stage_name(int stage)
{
    return stage >= 0 && stage < STAGE__N ? stage_names[stage] : NULL;
}

typedef struct exec_task exec_task;
typedef void (*exec_step)(exec_task *t);

struct exec_task {
    executor     *x;
    uint64_t      id;
    char          workspace_id[128];
    task_type     type;        /* TASK_TYPE_NONE until known */
    task_action   action;
    int           slot;        /* -1 until placed */
    const exec_step *steps;    /* the story this task follows */
    int           step;        /* index of the running step */
    bool          failing;     /* on the failure path */
    bool          cancelled;
    bool          take_unsaved; /* its slot taken, slots_changed not called yet (see exec_take) */
    cJSON        *bundle;
    char          workdir[PATH_MAX];
    char          log_path[PATH_MAX + 32];
    char          engine[PATH_MAX];
    tasklog      *log;
    planjson_errors errors;
    proc         *child;
    httpc_call   *call;
    engine_wait  *engine_wait;
    uv_timer_t    timer;       /* waits between init or state-upload attempts */
    uv_timer_t    deadline;    /* IAC_AGENT_TASK_TIMEOUT */
    int           handles_open;
    bool          timed_out;
    const char   *stop_reason; /* set by executor_interrupt_all: why the agent stops this task */
    bool          reason_wins; /* the agent stopped it: its reason is the message, not terraform's Error: block */
    /* the apply phase */
    cJSON        *plan_task;   /* E4 document */
    bool          warm_slot;   /* slot 0 was reserved for this task here */
    bool          warm;        /* init and plan restore skipped: plan.out matches the plan hash */
    bool          state_tried; /* the state upload ran (on the main or the failure path) */
    bool          state_unsaved; /* it failed: the workspace stays locked and the state is kept on disk */
    int           state_try;
    int64_t       max_version_before;
    char         *state;       /* terraform.tfstate being uploaded */
    size_t        state_len;
    char          state_kept[PATH_MAX + 256];
    int64_t       apply_started_ms;
    int64_t       apply_seconds;
    int           init_attempt;
    bool          init_retryable;
    int           upload_try;
    bool          uploading_json; /* which half of the plan pair is in flight */
    int64_t       started_ms;
    int64_t       stage_started_ms;
    int           stage;
    int64_t       plan_started_ms;
    int64_t       plan_seconds;
    char          plan_hash[DIGEST_SHA256_HEX_LEN + 1];
    planjson_counts counts;
    bool          have_json;
    bool          output_changed;
    char         *plan_json;   /* the plan JSON text (uploaded, then parsed) */
    size_t        plan_json_len;
    const char   *final_status;
    const char   *final_stage;
    bool          reserve;     /* plan_and_apply with changes: keep the work dir and slot 0 */
    char         *error;       /* the failure's own text, when no Error: block was found */
    tasklog_reader *reader;
    const char   *best_effort; /* what the best-effort call in flight does, for its log line */
    void        (*child_done)(exec_task *t, int64_t status, int sig); /* what the running child's exit continues */
};

struct executor {
    executor_config   cfg;
    engine_cache     *engines;
    workdir_pool     *workdirs;  /* spare work directories (workdir.h); NULL when out of memory: none */
    int               workdir_err; /* the last spare failure logged, so that a full disk logs once, not per task */
    uv_timer_t       *settle;    /* runs the bookkeeping a spawn put off (exec_settle); malloc'd: it outlives x */
    bool              take_unannounced; /* a spawned task's slot awaits slots_changed (exec_take) */
    exec_task        *tasks[EXEC_MAX_TASKS];
    executor_counters n;
};

static void exec_next(exec_task *t);
static void exec_fail(exec_task *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- small helpers ------------------------------------------------------------------------------------------ */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void rfc3339_now(char *out, size_t n)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t len = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + len, n - len, ".%03dZ", (int)(ts.tv_nsec / 1000000));
}

static void task_url(const exec_task *t, const char *suffix, char *out, size_t n)
{
    snprintf(out, n, "%s/api/v1/agents/tasks/%" PRIu64 "/%s", t->x->cfg.base_url, t->id, suffix);
}

static void workspace_url(const exec_task *t, const char *suffix, char *out, size_t n)
{
    snprintf(out, n, "%s/api/v1/agents/workspaces/%s/%s", t->x->cfg.base_url, t->workspace_id, suffix);
}

static httpc_call *exec_http(exec_task *t, const char *method, const char *url, const char *body, size_t len,
                             httpc_mode mode, httpc_cb cb)
{
    httpc_req req = { .method = method, .url = url, .bearer = *t->x->cfg.token, .body = body, .body_len = len,
                      .mode = mode };
    return httpc_request(t->x->cfg.http, &req, cb, t);
}

static bool http_ok(const httpc_response *r) { return r->error == HTTPC_OK && r->status >= 200 && r->status < 300; }

static void exec_next(exec_task *t);
static void exec_say(exec_task *t, log_level level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void http_describe(const httpc_response *r, char *out, size_t n);

static void on_best_effort(const httpc_response *r, void *arg)
{
    exec_task *t = arg;
    t->call = NULL;
    if (!http_ok(r)) {
        char err[512];
        http_describe(r, err, sizeof err);
        exec_say(t, LOG_WARN, "%s: %s", t->best_effort, err);
    }
    exec_next(t);
}

/* A call whose failure is only logged (the lock file E17, resource changes E10, unlock E13: ref §7.4, §7.5); the
 * story goes on either way. */
static void exec_best_effort(exec_task *t, const char *method, const char *url, const char *body, size_t len,
                             const char *what)
{
    t->best_effort = what;
    t->call = exec_http(t, method, url, body, len, HTTPC_PLAIN, on_best_effort);
    if (!t->call)
        exec_next(t);
}

static void http_describe(const httpc_response *r, char *out, size_t n)
{
    if (r->error != HTTPC_OK)
        snprintf(out, n, "%s", r->errmsg);
    else
        snprintf(out, n, "request failed with status %ld: %.300s", r->status, r->body);
}

/* An agent line: to the task log at `level` (spill + live; the error extractor sees a "[" line) and to the agent's
 * own log at `agent_level`. */
static void exec_say_text(exec_task *t, log_level level, log_level agent_level, const char *text)
{
    if (t->log) {
        tasklog_agent_line(t->log, level, text);
        planjson_errors_feed(&t->errors, "[agent]", 7); /* an agent line ends an Error: block (ref §7.7) */
    }
    log_write(agent_level, "task", "task %" PRIu64 ": %s", t->id, text);
}

/* An agent line at the same level in the task log and the agent's log. */
static void exec_say(exec_task *t, log_level level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void exec_say(exec_task *t, log_level level, const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    exec_say_text(t, level, level, text);
}

static void stage_begin(exec_task *t, int stage)
{
    t->stage = stage;
    t->stage_started_ms = now_ms();
    if (t->log)
        tasklog_stage(t->log, stage_names[stage], true);
}

static void stage_end(exec_task *t)
{
    executor_counters *n = &t->x->n;
    double secs = (double)(now_ms() - t->stage_started_ms) / 1000.0;
    int b = 0;
    while (b < 7 && secs > executor_stage_bounds[b])
        b++;
    n->stage_hist[t->stage][b]++;
    n->stage_count[t->stage]++;
    n->stage_seconds[t->stage] += secs;
    if (t->log)
        tasklog_stage(t->log, stage_names[t->stage], false);
}

/* ---- task table --------------------------------------------------------------------------------------------- */

static exec_task *exec_find(const executor *x, uint64_t id)
{
    for (int i = 0; i < EXEC_MAX_TASKS; i++)
        if (x->tasks[i] && x->tasks[i]->id == id)
            return x->tasks[i];
    return NULL;
}

static void timer_closed(uv_handle_t *h)
{
    exec_task *t = h->data;
    if (--t->handles_open == 0)
        free(t);
}

static void exec_task_free(exec_task *t)
{
    executor *x = t->x;
    for (int i = 0; i < EXEC_MAX_TASKS; i++)
        if (x->tasks[i] == t)
            x->tasks[i] = NULL;
    if (t->call)
        httpc_cancel(t->call);
    if (t->engine_wait)
        engine_cancel(t->engine_wait);
    if (t->child)
        proc_free(t->child);
    if (t->reader)
        tasklog_reader_close(t->reader);
    if (t->log) {
        x->n.live_frames_dropped += tasklog_dropped(t->log);
        tasklog_close(t->log);
    }
    planjson_errors_free(&t->errors);
    cJSON_Delete(t->bundle);
    cJSON_Delete(t->plan_task);
    free(t->plan_json);
    free(t->state);
    free(t->error);
    uv_close((uv_handle_t *)&t->timer, timer_closed);
    uv_close((uv_handle_t *)&t->deadline, timer_closed);
}

/* ---- the end of a task -------------------------------------------------------------------------------------- */

static void exec_send_task_ref(exec_task *t, msg_type type, const char *error)
{
    proto_msg m = { .type = type };
    if (type == MSG_TASK_FAILED) {
        m.u.task_failed.task_id = t->id;
        m.u.task_failed.error = (char *)error;
    } else {
        m.u.task_ref.task_id = t->id;
    }
    t->x->cfg.send(&m, t->x->cfg.arg);
}

static void on_workdir_removed(const char *path, int result, void *arg)
{
    (void)arg;
    if (result < 0)
        log_warn("task", "cannot remove the work directory %s: %s", path, strerror(-result));
}

/* A finished task's directory leaves its path at once and is removed on a thread (workdir_discard says why). */
void executor_discard_workdir(executor *x, const char *dir)
{
    if (!x || workdir_discard(x->workdirs, x->cfg.loop, dir, on_workdir_removed, NULL) < 0)
        on_workdir_removed(dir, fs_rm_rf(dir), NULL); /* no thread: here and now */
}

static void task_done(exec_task *t)
{
    executor *x = t->x;
    int outcome = t->cancelled ? EXEC_CANCELLED : t->failing ? EXEC_FAILED : EXEC_SUCCESS;
    if (t->slot >= 0) {
        const slot *s = &x->cfg.slots->s[t->slot];
        if (s->status == SLOT_RESERVED && outcome != EXEC_SUCCESS)
            slots_release(x->cfg.slots, t->id, now_ms()); /* reserved, then the report failed or was cancelled */
        else if (s->status == SLOT_RUNNING)
            slots_finish(x->cfg.slots, t->id, now_ms());
    }
    if (!(t->reserve && outcome == EXEC_SUCCESS) && t->workdir[0]) {
        if (t->log) {
            x->n.live_frames_dropped += tasklog_dropped(t->log);
            tasklog_close(t->log);
            t->log = NULL;
        }
        executor_discard_workdir(x, t->workdir);
    }
    if (outcome == EXEC_SUCCESS)
        exec_send_task_ref(t, MSG_TASK_COMPLETED, NULL);
    else
        exec_send_task_ref(t, MSG_TASK_FAILED, t->cancelled ? "task cancelled by user" : t->error ? t->error : "failed");
    if (t->type != TASK_TYPE_NONE)
        x->n.tasks[t->type][outcome]++;
    log_info("task", "task %" PRIu64 " (%s) finished: %s", t->id, slots_type_name(t->type),
             t->final_status ? t->final_status : "failed");
    uint64_t id = t->id;
    bool placed = t->slot >= 0;
    exec_task_free(t);
    if (placed)
        x->cfg.slots_changed(x->cfg.arg);
    x->cfg.finished(id, outcome, x->cfg.arg);
}

/* ---- failure path (ref §7.7) -------------------------------------------------------------------------------- */

static void step_status(exec_task *t);
static void step_log(exec_task *t);
static void step_save_state(exec_task *t);
static void step_unlock(exec_task *t);
static const exec_step fail_steps[] = { step_status, step_log, NULL };
/* A failed or cancelled apply: its partial state is uploaded, then the workspace unlocked (ref §7.7, §8 entry 42). */
static const exec_step apply_fail_steps[] = { step_save_state, step_unlock, step_status, step_log, NULL };

static void exec_fail(exec_task *t, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (t->failing) { /* a report of the failure failed: nothing more to do than finish */
        log_warn("task", "task %" PRIu64 ": %s", t->id, text);
        task_done(t);
        return;
    }
    t->failing = true;
    free(t->error);
    t->error = strdup(text);
    exec_say(t, LOG_ERROR, "%s", text);
    t->final_status = "failed";
    t->final_stage = NULL; /* upstream leaves the stage as it was */
    t->reserve = false;
    t->steps = t->action == ACTION_APPLY ? apply_fail_steps : fail_steps;
    t->step = -1;
    exec_next(t);
}

static void exec_next(exec_task *t)
{
    exec_step s = t->steps[++t->step];
    if (!s) {
        task_done(t);
        return;
    }
    s(t);
}

/* ---- step: fetch the bundle (E3) ---------------------------------------------------------------------------- */

/* The workspace id names a directory (workspaces/<ws>/<task>), a URL path segment and a file of unsaved states:
 * "ws-…" ids fit (ref E3); a '/', "..", a leading '.' or an id cut short by the buffer must never reach a path. */
static bool exec_workspace_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n >= sizeof ((exec_task *)0)->workspace_id || !isalnum((unsigned char)id[0]))
        return false;
    return strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") == n;
}

static bool exec_printable(const char *s)
{
    for (; *s; s++)
        if (*s < 0x20 || *s > 0x7e)
            return false;
    return true;
}

static void on_bundle(const httpc_response *r, void *arg)
{
    exec_task *t = arg;
    t->call = NULL;
    char err[512];
    if (!http_ok(r)) {
        http_describe(r, err, sizeof err);
        exec_fail(t, "Failed to load task data: %s", err);
        return;
    }
    t->bundle = json_parse_object(r->body, r->body_len, err, sizeof err);
    const cJSON *task = NULL, *ws = NULL;
    const char *ws_id = NULL, *type_s = NULL;
    if (!t->bundle || json_get_object(t->bundle, "task", true, &task, err, sizeof err) < 0 ||
        json_get_object(t->bundle, "workspace", true, &ws, err, sizeof err) < 0 ||
        json_get_string(task, "workspace_id", true, &ws_id, err, sizeof err) < 0 ||
        json_get_string(task, "task_type", true, &type_s, err, sizeof err) < 0) {
        exec_fail(t, "Failed to load task data: %s", err);
        return;
    }
    if (!exec_workspace_id_ok(ws_id)) {
        exec_fail(t, "Failed to load task data: task.workspace_id %s%.64s%s cannot name a directory: 1 to %zu letters, "
                  "digits, '.', '-' or '_', starting with a letter or digit", exec_printable(ws_id) ? "\"" : "",
                  exec_printable(ws_id) ? ws_id : "(with bytes that are not printable ASCII)",
                  exec_printable(ws_id) ? "\"" : "", sizeof t->workspace_id - 1);
        return;
    }
    snprintf(t->workspace_id, sizeof t->workspace_id, "%s", ws_id);
    task_type type;
    if (slots_type_parse(type_s, &type) < 0) {
        exec_fail(t, "Failed to load task data: task_type \"%.40s\" is not plan, plan_and_apply or drift_check",
                  type_s);
        return;
    }
    if (t->type != TASK_TYPE_NONE && t->type != type)
        log_warn("task", "task %" PRIu64 ": run_task said %s, the bundle says %s; using the bundle", t->id,
                 slots_type_name(t->type), type_s);
    if (t->slot >= 0 && t->type != type) {
        /* placed by the hint in the wrong kind of slot: give it back and place again */
        slots_finish(t->x->cfg.slots, t->id, now_ms());
        t->slot = -1;
    }
    t->type = type;
    exec_next(t);
}

static void step_fetch(exec_task *t)
{
    char url[512];
    task_url(t, "data", url, sizeof url);
    t->call = exec_http(t, "GET", url, NULL, 0, HTTPC_RETRYING, on_bundle);
    if (!t->call)
        exec_fail(t, "Failed to load task data: cannot start the request");
}

/* ---- rejection: the task goes back to the queue ------------------------------------------------------------- */

/* The PUT that returned a rejected task; fire and forget (arg is the task id, not a task). */
static void on_returned(const httpc_response *r, void *arg)
{
    if (!http_ok(r)) {
        char err[512];
        http_describe(r, err, sizeof err);
        log_warn("task", "task %" PRIu64 ": could not return it to the queue: %s", (uint64_t)(uintptr_t)arg, err);
    }
}

void executor_reject(executor *x, uint64_t task_id, task_action action, const char *reason)
{
    log_info("task", "task %" PRIu64 " (%s) rejected: %s", task_id, slots_action_name(action), reason);
    proto_msg m = { .type = MSG_TASK_REJECTED };
    m.u.task_rejected.task_id = task_id;
    m.u.task_rejected.action = (char *)slots_action_name(action);
    m.u.task_rejected.reason = (char *)reason;
    x->cfg.send(&m, x->cfg.arg);
    char url[512], body[96];
    snprintf(url, sizeof url, "%s/api/v1/agents/tasks/%" PRIu64 "/status", x->cfg.base_url, task_id);
    /* back to the queue it came from, status and stage alike (the plane's own dispatch rollback) */
    const char *queue_status = action == ACTION_APPLY ? "apply_pending" : "pending";
    snprintf(body, sizeof body, "{\"status\":\"%s\",\"stage\":\"%s\"}", queue_status, queue_status);
    httpc_req req = { .method = "PUT", .url = url, .bearer = *x->cfg.token, .body = body, .body_len = strlen(body),
                      .mode = HTTPC_RETRYING };
    httpc_request(x->cfg.http, &req, on_returned, (void *)(uintptr_t)task_id);
}

/* A task that could not be placed after its bundle told its type. */
static void exec_reject(exec_task *t, const char *reason)
{
    executor *x = t->x;
    uint64_t id = t->id;
    executor_reject(x, id, t->action, reason);
    x->n.tasks[t->type][EXEC_REJECTED]++;
    exec_task_free(t);
    x->cfg.finished(id, EXEC_REJECTED, x->cfg.arg);
}

/* ---- step: place the task in a slot ------------------------------------------------------------------------- */

/* A slot was just taken for t. It is saved and heartbeated (slots_changed) EXEC_SETTLE_MS after t's first command
 * is spawned (exec_spawn, exec_settle), or when t ends before that (task_done) — not now.
 *
 * Why it waits: until terraform runs, the task has done nothing outside the pod — a GET of its bundle, and files
 * in its own new work directory, which recovery removes after a crash because no slot names it. A crash in that
 * window leaves exactly what a crash just before the run_task frame arrived leaves: the plane fails the task when
 * the connection drops (ref §3.6). Once the slot is on disk a restart reports the task and keeps its directory;
 * the first milliseconds of an engine's start (a Go runtime coming up) change nothing outside the pod either.
 * Neither does the plane need the heartbeat earlier: it placed the task itself, and a slot taken frees nothing it
 * could place more work in. Meanwhile the save (about 0.2 ms of ext4 work: a new file, and a rename over the old
 * one that frees its blocks) and the heartbeat (which the plane handles before the bundle request) would sit
 * between run_task and terraform's exec (bench row 3). */
static void exec_take(exec_task *t)
{
    t->take_unsaved = true;
}

static void step_place(exec_task *t)
{
    if (t->slot < 0) {
        int where = slots_place(t->x->cfg.slots, t->type, t->action, t->id);
        if (where < 0) {
            exec_reject(t, slots_strerror(where));
            return;
        }
        slots_start(t->x->cfg.slots, where, t->id, t->type, t->action, now_ms());
        t->slot = where;
        exec_take(t);
    }
    log_info("task", "task %" PRIu64 " (%s, workspace %s) runs in slot %d", t->id, slots_type_name(t->type),
             t->workspace_id, t->slot);
    exec_next(t);
}

/* ---- step: the engine binary -------------------------------------------------------------------------------- */

static void on_engine(const char *path, const char *error, void *arg)
{
    exec_task *t = arg;
    t->engine_wait = NULL;
    if (!path) {
        exec_fail(t, "%s", error ? error : "cannot resolve the terraform binary");
        return;
    }
    snprintf(t->engine, sizeof t->engine, "%s", path);
    exec_next(t);
}

static void step_engine(exec_task *t)
{
    const cJSON *ws = cJSON_GetObjectItemCaseSensitive(t->bundle, "workspace");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(ws, "terraform_version");
    const char *version = cJSON_IsString(v) ? v->valuestring : "";
    t->engine_wait = engine_ensure(t->x->engines, version, on_engine, t); /* always answers later */
    if (!t->engine_wait)
        exec_fail(t, "cannot resolve terraform %s: out of memory", version[0] ? version : "(default)");
}

/* ---- step: work directory and files ------------------------------------------------------------------------- */

/* The fetching stage's description of the task: its resources, its variables (non-sensitive values in clear), its
 * region and state version. It is the task's content, for the task's log; the agent's own log (the pod's) gets it
 * only at debug level — a dozen lines per task there would bury the agent's own story, and a value that is not
 * marked sensitive is still the workspace's business. */
static void log_sink_line(const char *line, void *arg)
{
    exec_task *t = arg;
    exec_say_text(t, LOG_INFO, LOG_DEBUG, line);
}

/* Live frames go straight to the C&C queue; when it refuses (slow or down), tasklog drops and counts them. */
static int exec_live_send(const proto_log_stream *ls, void *arg)
{
    exec_task *t = arg;
    proto_msg m = { .type = MSG_LOG_STREAM };
    m.u.log_stream = *ls;
    return t->x->cfg.send(&m, t->x->cfg.arg);
}

/* The queue's probe, asked before a live frame is built (tasklog_opts.ready). */
static bool exec_live_ready(void *arg)
{
    exec_task *t = arg;
    return t->x->cfg.live_ready(t->x->cfg.arg);
}

static tasklog_opts exec_log_opts(exec_task *t)
{
    tasklog_opts lo = { .task_id = t->id, .send = exec_live_send, .send_arg = t,
                        .ready = t->x->cfg.live_ready ? exec_live_ready : NULL };
    return lo;
}

static void step_render(exec_task *t)
{
    char err[512];
    snprintf(t->workdir, sizeof t->workdir, "%s/workspaces/%s/%" PRIu64, t->x->cfg.data_dir, t->workspace_id, t->id);
    int made = workdir_make(t->x->workdirs, t->workdir);
    if (made < 0) {
        exec_fail(t, "cannot create the work directory %s: %s", t->workdir, strerror(-made));
        return;
    }
    snprintf(t->log_path, sizeof t->log_path, "%s/" EXEC_TASK_LOG, t->workdir);
    tasklog_opts lo = exec_log_opts(t);
    int rc = tasklog_open(t->log_path, &lo, &t->log);
    if (rc < 0) {
        t->log = NULL;
        t->log_path[0] = '\0';
        exec_fail(t, "cannot open the task log %s: %s", t->log_path, strerror(-rc));
        return;
    }
    stage_begin(t, STAGE_FETCHING);
    exec_say(t, LOG_INFO, "task %" PRIu64 " (%s) in slot %d, terraform %s", t->id, slots_type_name(t->type), t->slot,
             t->engine);
    render_describe(t->bundle, log_sink_line, t);
    if (render_plan_workdir(t->bundle, t->workdir, made == 1, err, sizeof err) < 0) {
        stage_end(t);
        exec_fail(t, "cannot write the configuration: %s", err);
        return;
    }
    stage_end(t);
    exec_next(t);
}

/* One resource_status_update frame (ref §3.9, §7.9): the plane records per-resource apply progress from it. */
static void exec_send_progress(exec_task *t, const planjson_progress *pr)
{
    if (t->x->cfg.live_ready && !t->x->cfg.live_ready(t->x->cfg.arg)) {
        t->x->n.live_frames_dropped++;
        return;
    }
    strbuf json = STRBUF_INIT;
    char ts[40];
    planjson_status_update_json(&json, t->id, pr);
    rfc3339_now(ts, sizeof ts);
    proto_msg m = { .type = MSG_LOG_STREAM };
    m.u.log_stream.task_id = t->id;
    m.u.log_stream.type = (char *)"resource_status_update";
    m.u.log_stream.line = json.data ? json.data : (char *)"";
    m.u.log_stream.timestamp = ts;
    m.u.log_stream.stage = (char *)"applying";
    m.u.log_stream.status = (char *)"";
    if (json.oom || t->x->cfg.send(&m, t->x->cfg.arg) != 0)
        t->x->n.live_frames_dropped++;
    strbuf_free(&json);
}

/* ---- children ----------------------------------------------------------------------------------------------- */

/* An init attempt is retried only when its output names a network problem (ref §7.4 step 2). */
static const char *const init_retryable[] = {
    "context deadline exceeded", "Client.Timeout exceeded", "connection refused", "connection reset",
    "no such host", "i/o timeout", "TLS handshake timeout", "failed to request discovery document",
    "Error accessing remote module registry", "Failed to retrieve available versions", "registry.terraform.io",
    "registry.opentofu.org", "could not download module", "error downloading", "network is unreachable",
    "temporary failure in name resolution",
};

static bool init_error_is_retryable(const char *line, size_t len)
{
    for (size_t i = 0; i < sizeof init_retryable / sizeof init_retryable[0]; i++)
        if (memmem(line, len, init_retryable[i], strlen(init_retryable[i])))
            return true;
    return false;
}

static void child_line(proc_stream stream, const char *line, size_t len, void *arg)
{
    (void)stream;
    exec_task *t = arg;
    t->x->n.log_lines++;
    tasklog_line(t->log, stage_names[t->stage], line, len);
    planjson_errors_feed(&t->errors, line, len);
    if (t->stage == STAGE_INIT && !t->init_retryable)
        t->init_retryable = init_error_is_retryable(line, len);
    planjson_progress pr;
    if (t->stage == STAGE_APPLYING && planjson_parse_progress(line, len, &pr))
        exec_send_progress(t, &pr);
}

static void child_exit(int64_t status, int sig, void *arg)
{
    exec_task *t = arg;
    proc_free(t->child);
    t->child = NULL;
    t->child_done(t, status, sig);
}

/* A cancel or the task timeout ends the task at its next child: true when it did (the failure path runs). */
static bool exec_stopped(exec_task *t)
{
    if (t->cancelled)
        exec_fail(t, "task cancelled by user");
    else if (t->timed_out || t->stop_reason) {
        t->reason_wins = true;
        if (t->timed_out)
            exec_fail(t, "task timed out after %" PRId64 " s", t->x->cfg.task_timeout_ms / 1000);
        else
            exec_fail(t, "%s", t->stop_reason);
    } else {
        return false;
    }
    return true;
}

/* Tops the spare work directories up; a failure is logged when it differs from the last one logged. */
static void exec_fill_workdirs(executor *x)
{
    char err[PATH_MAX + 128];
    int rc = workdir_fill(x->workdirs, err, sizeof err);
    if (rc < 0 && rc != x->workdir_err)
        log_warn("task", "%s (tasks make their work directories when they start meanwhile)", err);
    x->workdir_err = rc;
}

static void settle_closed(uv_handle_t *h)
{
    free(h);
}

static void on_settled(uv_timer_t *h)
{
    executor *x = h->data;
    if (x->take_unannounced) {
        x->take_unannounced = false;
        x->cfg.slots_changed(x->cfg.arg);
    }
    exec_fill_workdirs(x);
}

/* What a spawn leaves to do — announce a slot taken (exec_take), make the spare work directory the task used —
 * waits EXEC_SETTLE_MS. The engine is starting meanwhile: the save, the heartbeat (and the plane's handling of it)
 * and the inode allocations would compete with its exec and loading for the CPUs of a small pod, and nothing
 * waits for them: the plane placed the task itself, and the next task is not here yet. One timer serves every
 * spawn of a burst. */
static void exec_settle(executor *x)
{
    if (!x->settle) {
        if (!(x->settle = malloc(sizeof *x->settle))) {
            on_settled(&(uv_timer_t){ .data = x }); /* no timer: do it now */
            return;
        }
        uv_timer_init(x->cfg.loop, x->settle);
        x->settle->data = x;
    }
    if (!uv_is_active((uv_handle_t *)x->settle))
        uv_timer_start(x->settle, on_settled, EXEC_SETTLE_MS, 0);
}

/* Runs argv in the work directory with env; done(t, status, signal) continues the story. */
static void exec_spawn(exec_task *t, char **argv, char **env, const char *stdout_path,
                       void (*done)(exec_task *, int64_t, int))
{
    if (exec_stopped(t))
        return;
    proc_options opts = { .stdout_path = stdout_path };
    static const proc_callbacks cb = { child_line, child_exit };
    t->child_done = done;
    int rc = proc_spawn(t->x->cfg.loop, argv, env, t->workdir, &opts, &cb, t, &t->child);
    if (rc == 0) {
        t->x->take_unannounced |= t->take_unsaved; /* see exec_take */
        t->take_unsaved = false;
        exec_settle(t->x);
    }
    if (rc < 0) {
        t->child = NULL;
        exec_fail(t, "cannot run %s: %s", argv[0], strerror(-rc));
    }
}

/* The environment a command gets (ref §7.6): the base one of plan and apply, init's (base + plugin cache), or the
 * agent's own (show -json). */
typedef enum { ENV_BASE, ENV_INIT, ENV_AGENT } exec_env_kind;

/* Runs the command argv (taken: freed here; NULL means it could not be built, with the reason in err) in the work
 * directory with the environment of its kind; done(t, status, signal) continues the story. */
static void exec_command(exec_task *t, char **argv, exec_env_kind kind, const char *stdout_path,
                         void (*done)(exec_task *, int64_t, int), const char *err)
{
    char why[512];
    snprintf(why, sizeof why, "%s", argv ? "out of memory" : err);
    char **env = NULL;
    if (argv) {
        const cJSON *vars = kind == ENV_AGENT ? NULL : cJSON_GetObjectItemCaseSensitive(t->bundle, "variables");
        const cJSON *ws = cJSON_GetObjectItemCaseSensitive(t->bundle, "workspace");
        const cJSON *provider = kind == ENV_AGENT ? NULL : cJSON_GetObjectItemCaseSensitive(ws, "provider_config");
        env = taskenv_env(t->x->cfg.environ, vars, provider, kind == ENV_INIT ? t->workdir : NULL, why, sizeof why);
    }
    if (!argv || !env) {
        taskenv_free(argv);
        stage_end(t);
        exec_fail(t, "%s", why);
        return;
    }
    exec_spawn(t, argv, env, stdout_path, done);
    taskenv_free(argv);
    taskenv_free(env);
}

/* The end of a plan or apply command: false (and the failure path started) unless it exited 0. */
static bool command_succeeded(exec_task *t, const char *what, int64_t status, int sig)
{
    if (exec_stopped(t))
        return false;
    if (sig)
        exec_fail(t, "terraform %s was killed by signal %d", what, sig);
    else if (status != 0)
        exec_fail(t, "exit status %" PRId64, status);
    return status == 0 && sig == 0;
}

/* ---- step: init (3 attempts, ref §7.4 step 2) ---------------------------------------------------------------- */

static void step_init(exec_task *t);


/* After a successful init, the lock file goes to the plane (E17); failures are only logged. */
static void save_lock_file(exec_task *t)
{
    char path[PATH_MAX + 32], *text = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/.terraform.lock.hcl", t->workdir);
    if (fs_read_file(path, 1u << 20, &text, &len) < 0 || len == 0) {
        free(text);
        exec_next(t);
        return;
    }
    strbuf body = STRBUF_INIT;
    strbuf_puts(&body, "{\"terraform_lock_hcl\":\"");
    strbuf_json_escape(&body, text, len);
    strbuf_puts(&body, "\"}");
    free(text);
    char url[512];
    workspace_url(t, "terraform-lock-hcl", url, sizeof url);
    exec_best_effort(t, "PUT", url, body.data, body.len, "could not save .terraform.lock.hcl");
    strbuf_free(&body);
}

static void on_init_wait(uv_timer_t *timer)
{
    step_init(timer->data);
}

static void init_done(exec_task *t, int64_t status, int sig)
{
    stage_end(t);
    if (status == 0 && sig == 0) {
        save_lock_file(t);
        return;
    }
    if (exec_stopped(t))
        return;
    if (t->init_attempt >= 3 || !t->init_retryable) {
        exec_fail(t, "terraform init failed (attempt %d): exit status %" PRId64, t->init_attempt, status);
        return;
    }
    int64_t wait = t->x->cfg.init_retry_wait_ms * (t->init_attempt == 1 ? 1 : 2);
    exec_say(t, LOG_WARN, "terraform init failed with a retryable error (attempt %d of 3); retrying in %" PRId64 " ms",
             t->init_attempt, wait);
    uv_timer_start(&t->timer, on_init_wait, (uint64_t)wait, 0);
}

static void step_init(exec_task *t)
{
    if (t->warm) { /* the apply runs in the plan's own directory: providers and .terraform are there */
        exec_next(t);
        return;
    }
    t->init_attempt++;
    t->init_retryable = false;
    if (t->init_attempt == 1) {
        char dot[PATH_MAX + 16];
        snprintf(dot, sizeof dot, "%s/.terraform", t->workdir);
        fs_rm_rf(dot);
    }
    stage_begin(t, STAGE_INIT);
    exec_command(t, taskenv_argv_init(t->engine), ENV_INIT, NULL, init_done, "out of memory");
}

/* ---- step: plan ---------------------------------------------------------------------------------------------- */

static void plan_done(exec_task *t, int64_t status, int sig)
{
    t->plan_seconds = (now_ms() - t->plan_started_ms) / 1000;
    stage_end(t);
    if (command_succeeded(t, "plan", status, sig))
        exec_next(t);
}

static void step_plan(exec_task *t)
{
    stage_begin(t, STAGE_PLANNING);
    t->plan_started_ms = now_ms();
    char err[512] = "out of memory";
    const cJSON *vars = cJSON_GetObjectItemCaseSensitive(t->bundle, "variables");
    char **argv = taskenv_argv_plan(t->engine, t->workdir, t->type == TASK_DRIFT_CHECK, vars, err, sizeof err);
    exec_say(t, LOG_INFO, "running terraform plan%s", t->type == TASK_DRIFT_CHECK ? " -refresh-only" : "");
    exec_command(t, argv, ENV_BASE, NULL, plan_done, err);
}

/* ---- step: show -json and the counts ------------------------------------------------------------------------ */

static void show_done(exec_task *t, int64_t status, int sig)
{
    char path[PATH_MAX + 16], err[256];
    snprintf(path, sizeof path, "%s/plan.json", t->workdir);
    if (status != 0 || sig != 0) {
        exec_say(t, LOG_WARN, "terraform show -json failed (exit %" PRId64 "): no counts and no plan JSON", status);
        exec_next(t);
        return;
    }
    int rc = fs_read_file(path, EXEC_MAX_PLAN_JSON, &t->plan_json, &t->plan_json_len);
    cJSON *plan = rc == 0 ? planjson_parse(t->plan_json, t->plan_json_len, err, sizeof err) : NULL;
    if (!plan) {
        exec_say(t, LOG_WARN, "plan JSON unreadable (%s): no counts", rc < 0 ? strerror(-rc) : err);
        free(t->plan_json);
        t->plan_json = NULL;
        exec_next(t);
        return;
    }
    if (planjson_count(plan, &t->counts, err, sizeof err) < 0 ||
        planjson_output_changed(plan, &t->output_changed, err, sizeof err) < 0) {
        exec_say(t, LOG_WARN, "plan JSON not understood (%s): no counts", err);
        memset(&t->counts, 0, sizeof t->counts);
        t->output_changed = false;
    }
    t->have_json = true;
    cJSON_Delete(plan);
    exec_say(t, LOG_INFO, "plan: %d to add, %d to change, %d to destroy", t->counts.add, t->counts.change,
             t->counts.destroy);
    exec_next(t);
}

static void step_show(exec_task *t)
{
    stage_begin(t, STAGE_SAVING_PLAN);
    char plan_out[PATH_MAX + 16], json_out[PATH_MAX + 16];
    snprintf(plan_out, sizeof plan_out, "%s/plan.out", t->workdir);
    snprintf(json_out, sizeof json_out, "%s/plan.json", t->workdir);
    if (digest_sha256_file_hex(plan_out, t->plan_hash) < 0) {
        t->plan_hash[0] = '\0';
        exec_say(t, LOG_WARN, "cannot hash plan.out");
    }
    exec_command(t, taskenv_argv_show(t->engine, t->workdir), ENV_AGENT, json_out, show_done, "out of memory");
}

/* ---- step: upload plan file and plan JSON (E8, E9; 3 attempts for the pair) ---------------------------------- */

static void upload_plan_pair(exec_task *t);

static void upload_plan_json(exec_task *t);

/* One answer for both halves of the pair: a failure re-sends the pair (plan file first), as upstream does. */
static void on_plan_upload(const httpc_response *r, void *arg)
{
    exec_task *t = arg;
    t->call = NULL;
    if (!http_ok(r)) {
        char err[512];
        http_describe(r, err, sizeof err);
        if (++t->upload_try < EXEC_PLAN_UPLOAD_TRIES) {
            upload_plan_pair(t);
            return;
        }
        exec_say(t, LOG_WARN, "%s upload failed: %s", t->uploading_json ? "plan JSON" : "plan file (an apply on "
                 "another pod would find no plan)", err);
        exec_next(t);
        return;
    }
    if (t->uploading_json)
        exec_next(t);
    else
        upload_plan_json(t);
}

static void upload_plan_json(exec_task *t)
{
    if (!t->have_json) {
        exec_next(t);
        return;
    }
    strbuf body = STRBUF_INIT;
    strbuf_puts(&body, "{\"plan_json\":");
    strbuf_append(&body, t->plan_json, t->plan_json_len);
    strbuf_puts(&body, "}");
    char url[512];
    task_url(t, "plan-json", url, sizeof url);
    t->uploading_json = true;
    t->call = body.oom ? NULL : exec_http(t, "POST", url, body.data, body.len, HTTPC_PLAIN, on_plan_upload);
    strbuf_free(&body);
    if (!t->call) {
        exec_say(t, LOG_WARN, "plan JSON not uploaded: out of memory");
        exec_next(t);
    }
}

static void upload_plan_pair(exec_task *t)
{
    char path[PATH_MAX + 16], *data = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/plan.out", t->workdir);
    if (fs_read_file(path, EXEC_MAX_PLAN_FILE, &data, &len) < 0) {
        exec_say(t, LOG_WARN, "cannot read plan.out: the plan is not uploaded");
        exec_next(t);
        return;
    }
    strbuf body = STRBUF_INIT;
    strbuf_puts(&body, "{\"plan_data\":\"");
    char *b64 = malloc(digest_base64_encoded_len(len));
    if (b64) {
        size_t n = digest_base64_encode(data, len, b64);
        strbuf_append(&body, b64, n);
    }
    strbuf_puts(&body, "\"}");
    free(b64);
    free(data);
    char url[512];
    task_url(t, "plan-data", url, sizeof url);
    t->uploading_json = false;
    t->call = (!b64 || body.oom) ? NULL : exec_http(t, "POST", url, body.data, body.len, HTTPC_PLAIN, on_plan_upload);
    strbuf_free(&body);
    if (!t->call) {
        exec_say(t, LOG_WARN, "plan not uploaded: out of memory");
        exec_next(t);
    }
}

static void step_upload_plan(exec_task *t)
{
    t->upload_try = 0;
    upload_plan_pair(t);
}

/* ---- step: resource changes (E10) --------------------------------------------------------------------------- */


static void step_changes(exec_task *t)
{
    strbuf body = STRBUF_INIT;
    char err[256];
    int count = 0;
    cJSON *plan = t->have_json ? planjson_parse(t->plan_json, t->plan_json_len, err, sizeof err) : NULL;
    if (!plan || planjson_resource_changes(plan, &body, &count, err, sizeof err) < 0 || body.oom) {
        cJSON_Delete(plan);
        strbuf_free(&body);
        stage_end(t);
        exec_next(t);
        return;
    }
    cJSON_Delete(plan);
    char url[512];
    task_url(t, "parse-plan-changes", url, sizeof url);
    stage_end(t);
    exec_best_effort(t, "POST", url, body.data, body.len, "resource changes not saved");
    strbuf_free(&body);
}

/* ---- step: decide the outcome; lock for a plan_and_apply with changes (E12) ---------------------------------- */

static void on_locked(const httpc_response *r, void *arg)
{
    exec_task *t = arg;
    t->call = NULL;
    if (!http_ok(r)) {
        char err[512];
        http_describe(r, err, sizeof err);
        exec_fail(t, "failed to lock workspace: %s", err);
        return;
    }
    t->final_status = "apply_pending";
    t->final_stage = "apply_pending";
    /* Reserve before the plane hears apply_pending, so that its next look at this pod already shows slot 0 held
     * for the task (DESIGN §4.2). */
    t->reserve = true;
    slots_reserve(t->x->cfg.slots, t->id, now_ms());
    t->x->cfg.slots_changed(t->x->cfg.arg);
    exec_next(t);
}

static void step_decide(exec_task *t)
{
    if (t->log)
        tasklog_completed(t->log);
    if (exec_stopped(t))
        return;
    if (t->type != TASK_PLAN_AND_APPLY) {
        t->final_status = "success";
        t->final_stage = "completed";
        exec_next(t);
        return;
    }
    if (t->counts.add + t->counts.change + t->counts.destroy == 0 && !t->output_changed) {
        t->final_status = "planned_and_finished";
        t->final_stage = "planned_and_finished";
        exec_next(t);
        return;
    }
    char url[512], body[256];
    workspace_url(t, "lock", url, sizeof url);
    snprintf(body, sizeof body,
             "{\"user_id\":\"system\",\"reason\":\"Locked for apply (task #%" PRIu64 "). Do not modify "
             "resources/variables until apply completes.\"}",
             t->id);
    t->call = exec_http(t, "POST", url, body, strlen(body), HTTPC_PLAIN, on_locked);
    if (!t->call)
        exec_fail(t, "failed to lock workspace: cannot start the request");
}

/* ---- steps: final status (E5) and full log (E6), streamed from the spill file -------------------------------- */

static void on_status(const httpc_response *r, void *arg)
{
    exec_task *t = arg;
    t->call = NULL;
    tasklog_reader_close(t->reader);
    t->reader = NULL;
    if (!http_ok(r)) {
        char err[512];
        http_describe(r, err, sizeof err);
        if (r->error == HTTPC_OK && r->status == 409)
            t->cancelled = true; /* the task was cancelled meanwhile: expected, not an error (ref §7.8) */
        if (!t->failing && !t->cancelled) {
            exec_fail(t, "failed to update task: %s", err);
            return;
        }
        log_warn("task", "task %" PRIu64 ": status not updated: %s", t->id, err);
    }
    exec_next(t);
}

/* Streams prefix + the escaped log + suffix as the request body of method url. */
static void exec_upload_with_log(exec_task *t, const char *method, const char *url, const char *prefix,
                                 const char *suffix, httpc_cb cb)
{
    if (t->log)
        tasklog_flush(t->log);
    t->reader = NULL;
    if (t->log_path[0] && tasklog_reader_open(t->log_path, prefix, suffix, &t->reader) < 0)
        t->reader = NULL;
    httpc_req req = { .method = method, .url = url, .bearer = *t->x->cfg.token, .mode = HTTPC_RETRYING };
    strbuf whole = STRBUF_INIT;
    if (t->reader) {
        req.body_read = tasklog_reader_read;
        req.body_rewind = tasklog_reader_rewind;
        req.body_arg = t->reader;
        req.body_size = tasklog_reader_size(t->reader);
    } else { /* failed before there was a log: the body is prefix + suffix */
        strbuf_puts(&whole, prefix);
        strbuf_puts(&whole, suffix);
        req.body = whole.data;
        req.body_len = whole.len;
    }
    t->call = httpc_request(t->x->cfg.http, &req, cb, t);
    strbuf_free(&whole);
    if (!t->call) {
        httpc_response none = { .error = HTTPC_E_NOMEM, .errmsg = "cannot start the request", .body = "" };
        cb(&none, t);
    }
}

static void step_status(exec_task *t)
{
    stage_begin(t, STAGE_REPORTING);
    bool apply = t->action == ACTION_APPLY;
    char url[512], completed[40];
    task_url(t, "status", url, sizeof url);
    rfc3339_now(completed, sizeof completed);
    strbuf pre = STRBUF_INIT;
    if (t->cancelled) /* ref §7.8: the plane has already written cancelled; a 409 is expected */
        t->final_status = "cancelled";
    strbuf_printf(&pre, "{\"status\":\"%s\"", t->final_status ? t->final_status : "failed");
    if (t->final_stage)
        strbuf_printf(&pre, ",\"stage\":\"%s\"", t->final_stage);
    if (t->failing) {
        char *blocks = t->cancelled || t->reason_wins ? NULL : planjson_errors_finish(&t->errors);
        if (blocks && !t->state_unsaved) { /* terraform's Error: blocks are the message; task_failed says the same */
            free(t->error);
            t->error = blocks;
        } else {
            free(blocks);
        }
        const char *text = t->cancelled ? "Task cancelled by user" : t->error ? t->error : "failed";
        strbuf_puts(&pre, ",\"error_message\":\"");
        strbuf_json_escape(&pre, text, strlen(text));
        strbuf_putc(&pre, '"');
    } else if (apply) {
        if (t->apply_seconds > 0)
            strbuf_printf(&pre, ",\"duration\":%" PRId64, t->apply_seconds);
        strbuf_printf(&pre, ",\"plan_task_id\":%" PRIu64, t->id);
    } else {
        strbuf_printf(&pre, ",\"changes_add\":%d,\"changes_change\":%d,\"changes_destroy\":%d", t->counts.add,
                      t->counts.change, t->counts.destroy);
        if (t->plan_seconds > 0)
            strbuf_printf(&pre, ",\"duration\":%" PRId64, t->plan_seconds);
        if (t->plan_hash[0])
            strbuf_printf(&pre, ",\"plan_hash\":\"%s\"", t->plan_hash);
        if (t->reserve)
            strbuf_printf(&pre, ",\"plan_task_id\":%" PRIu64, t->id);
    }
    strbuf_printf(&pre, ",\"completed_at\":\"%s\",\"%s\":\"", completed, apply ? "apply_output" : "plan_output");
    if (pre.oom) {
        strbuf_free(&pre);
        exec_fail(t, "out of memory");
        return;
    }
    exec_upload_with_log(t, "PUT", url, pre.data, "\"}", on_status);
    strbuf_free(&pre);
}

static void on_log(const httpc_response *r, void *arg)
{
    exec_task *t = arg;
    t->call = NULL;
    tasklog_reader_close(t->reader);
    t->reader = NULL;
    if (!http_ok(r)) {
        char err[512];
        http_describe(r, err, sizeof err);
        log_warn("task", "task %" PRIu64 ": full log not uploaded: %s", t->id, err);
    }
    stage_end(t);
    exec_next(t);
}

static void step_log(exec_task *t)
{
    if (t->stage != STAGE_REPORTING)
        stage_begin(t, STAGE_REPORTING);
    if (!t->log_path[0]) { /* E6 needs content: nothing was logged, nothing to send */
        stage_end(t);
        exec_next(t);
        return;
    }
    char url[512];
    task_url(t, "logs/chunk", url, sizeof url);
    exec_upload_with_log(t, "POST", url,
                         t->action == ACTION_APPLY ? "{\"phase\":\"apply\",\"offset\":0,\"checksum\":\"\",\"content\":\""
                                                   : "{\"phase\":\"plan\",\"offset\":0,\"checksum\":\"\",\"content\":\"",
                         "\"}", on_log);
}

/* ---- the apply phase (ref §7.5) ----------------------------------------------------------------------------- */

/* E4: the plan's artefacts and snapshot. */
static void on_plan_task(const httpc_response *r, void *arg)
{
    exec_task *t = arg;
    t->call = NULL;
    char err[512];
    if (!http_ok(r)) {
        http_describe(r, err, sizeof err);
        exec_fail(t, "failed to get plan task: %s", err);
        return;
    }
    t->plan_task = json_parse_object(r->body, r->body_len, err, sizeof err);
    if (!t->plan_task) {
        exec_fail(t, "failed to get plan task: %s", err);
        return;
    }
    if (render_validate_snapshot(t->plan_task, err, sizeof err) < 0) {
        exec_fail(t, "%s", err);
        return;
    }
    exec_next(t);
}

static void step_plan_task(exec_task *t)
{
    if (t->type != TASK_PLAN_AND_APPLY) {
        exec_fail(t, "apply task has no associated plan task (task type %s)", slots_type_name(t->type));
        return;
    }
    char url[512];
    task_url(t, "plan-task", url, sizeof url);
    t->call = exec_http(t, "GET", url, NULL, 0, HTTPC_RETRYING, on_plan_task);
    if (!t->call)
        exec_fail(t, "failed to get plan task: cannot start the request");
}

/* Warm when this pod kept the plan's directory and its plan.out is the plan that was approved (its SHA-256 is the
 * plan hash); otherwise the directory is rebuilt from the snapshot (cold). */
static void step_apply_prepare(exec_task *t)
{
    char err[512], plan_out[PATH_MAX + 16], hash[DIGEST_SHA256_HEX_LEN + 1];
    snprintf(t->workdir, sizeof t->workdir, "%s/workspaces/%s/%" PRIu64, t->x->cfg.data_dir, t->workspace_id, t->id);
    snprintf(plan_out, sizeof plan_out, "%s/plan.out", t->workdir);
    const cJSON *task = cJSON_GetObjectItemCaseSensitive(t->plan_task, "task");
    const cJSON *want = cJSON_GetObjectItemCaseSensitive(task, "plan_hash");
    t->warm = t->warm_slot && cJSON_IsString(want) && want->valuestring[0] &&
              digest_sha256_file_hex(plan_out, hash) == 0 && strcmp(hash, want->valuestring) == 0;
    int made = workdir_make(t->x->workdirs, t->workdir);
    if (made < 0) {
        exec_fail(t, "cannot create the work directory %s: %s", t->workdir, strerror(-made));
        return;
    }
    snprintf(t->log_path, sizeof t->log_path, "%s/" EXEC_TASK_LOG, t->workdir);
    tasklog_opts lo = exec_log_opts(t);
    int rc = tasklog_open(t->log_path, &lo, &t->log);
    if (rc < 0) {
        t->log = NULL;
        exec_fail(t, "cannot open the task log %s: %s", t->log_path, strerror(-rc));
        t->log_path[0] = '\0';
        return;
    }
    stage_begin(t, STAGE_FETCHING);
    exec_say(t, LOG_INFO, "apply of task %" PRIu64 " in slot %d, terraform %s: %s", t->id, t->slot, t->engine,
             t->warm ? "warm (the plan's own work directory; init and plan restore skipped)"
                     : "cold (rebuilt from the plan's snapshot)");
    if (!t->warm && render_apply_workdir(t->bundle, t->plan_task, t->workdir, made == 1, err, sizeof err) < 0) {
        stage_end(t);
        exec_fail(t, "cannot write the configuration: %s", err);
        return;
    }
    stage_end(t);
    exec_next(t);
}

/* Cold: plan.out comes from the plan_data the plan uploaded (E8). */
static void step_restore_plan(exec_task *t)
{
    if (t->warm) {
        exec_next(t);
        return;
    }
    stage_begin(t, STAGE_RESTORING_PLAN);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(t->plan_task, "plan_data");
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (!cJSON_IsString(data) || !data->valuestring[0]) {
        stage_end(t);
        exec_fail(t, "plan data is empty");
        return;
    }
    if (digest_base64_decode(data->valuestring, strlen(data->valuestring), &bytes, &len) < 0) {
        stage_end(t);
        exec_fail(t, "plan data is not valid base64");
        return;
    }
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/plan.out", t->workdir);
    int rc = fs_write_atomic_nosync(path, bytes, len, 0600); /* read at once by terraform: see render.c */
    free(bytes);
    stage_end(t);
    if (rc < 0) {
        exec_fail(t, "cannot write %s: %s", path, strerror(-rc));
        return;
    }
    exec_say(t, LOG_INFO, "restored plan.out (%zu bytes) from the plan's upload", len);
    exec_next(t);
}

static void apply_done(exec_task *t, int64_t status, int sig)
{
    t->apply_seconds = (now_ms() - t->apply_started_ms) / 1000;
    stage_end(t);
    if (command_succeeded(t, "apply", status, sig))
        exec_next(t);
}

static void step_apply(exec_task *t)
{
    stage_begin(t, STAGE_APPLYING);
    t->apply_started_ms = now_ms();
    exec_command(t, taskenv_argv_apply(t->engine, t->workdir), ENV_BASE, NULL, apply_done, "out of memory");
}

/* ---- state upload (E14 + E7), made idempotent (DESIGN §4.4) ------------------------------------------------- */

#define STATE_TRIES 5

static void state_attempt(exec_task *t);

/* Every attempt failed: keep the state where a person finds it; the workspace stays locked (never unlock over
 * unsaved state). */
static void state_give_up(exec_task *t, const char *why)
{
    t->state_unsaved = true;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/unsaved-states", t->x->cfg.data_dir);
    snprintf(t->state_kept, sizeof t->state_kept, "%s/ws_%s_task_%" PRIu64 "_%lld.tfstate", dir, t->workspace_id,
             t->id, (long long)(now_ms() / 1000));
    int rc = fs_mkdir_p(dir, 0700);
    if (rc == 0)
        rc = fs_write_atomic(t->state_kept, t->state, t->state_len, 0600);
    stage_end(t);
    char msg[PATH_MAX + 600];
    if (rc == 0)
        snprintf(msg, sizeof msg, "state upload failed after %d attempts (%s); the state is kept at %s on this pod and "
                 "the workspace stays locked", t->state_try, why, t->state_kept);
    else
        snprintf(msg, sizeof msg, "state upload failed after %d attempts (%s) and the state could not be kept (%s); "
                 "the workspace stays locked", t->state_try, why, strerror(-rc));
    if (t->failing) { /* already failing: the message joins the task's own */
        exec_say(t, LOG_ERROR, "%s", msg);
        free(t->error);
        t->error = strdup(msg);
        exec_next(t);
        return;
    }
    exec_fail(t, "%s", msg); /* t may be gone after this */
}

static void state_saved(exec_task *t, const char *how)
{
    exec_say(t, LOG_INFO, "state saved (%zu bytes, %s)", t->state_len, how);
    stage_end(t);
    exec_next(t);
}

static void on_state_posted(const httpc_response *r, void *arg);

static void on_max_recheck(const httpc_response *r, void *arg)
{
    exec_task *t = arg;
    t->call = NULL;
    int64_t now_max = -1;
    if (http_ok(r)) {
        char err[128];
        cJSON *doc = json_parse_object(r->body, r->body_len, err, sizeof err);
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(doc, "max_version");
        if (cJSON_IsNumber(m))
            now_max = (int64_t)m->valuedouble;
        cJSON_Delete(doc);
    }
    /* E7 is not idempotent (ref E7): if the version moved, an attempt that looked failed did land. */
    if (now_max > t->max_version_before) {
        state_saved(t, "an earlier attempt had landed");
        return;
    }
    state_attempt(t);
}

static void on_state_wait(uv_timer_t *h)
{
    exec_task *t = h->data;
    char url[512];
    workspace_url(t, "state/max-version", url, sizeof url);
    t->call = exec_http(t, "GET", url, NULL, 0, HTTPC_PLAIN, on_max_recheck);
    if (!t->call)
        state_attempt(t);
}

static void on_state_posted(const httpc_response *r, void *arg)
{
    exec_task *t = arg;
    t->call = NULL;
    if (http_ok(r)) {
        state_saved(t, "new state version");
        return;
    }
    char err[512];
    http_describe(r, err, sizeof err);
    if (t->state_try >= STATE_TRIES || (r->error == HTTPC_OK && r->status >= 400 && r->status < 500)) {
        state_give_up(t, err);
        return;
    }
    uint64_t wait = (uint64_t)t->x->cfg.state_retry_wait_ms * (uint64_t)t->state_try; /* 2, 4, 6, 8 s upstream */
    exec_say(t, LOG_WARN, "state upload attempt %d of %d failed (%s); retrying in %" PRIu64 " ms", t->state_try,
             STATE_TRIES, err, wait);
    uv_timer_start(&t->timer, on_state_wait, wait, 0);
}

static void state_attempt(exec_task *t)
{
    t->state_try++;
    char url[512], checksum[DIGEST_SHA256_HEX_LEN + 1];
    task_url(t, "state", url, sizeof url);
    digest_sha256_hex(t->state, t->state_len, checksum);
    strbuf body = STRBUF_INIT;
    strbuf_puts(&body, "{\"content\":");
    strbuf_append(&body, t->state, t->state_len);
    strbuf_printf(&body, ",\"checksum\":\"%s\",\"size\":%zu}", checksum, t->state_len);
    t->call = body.oom ? NULL : exec_http(t, "POST", url, body.data, body.len, HTTPC_PLAIN, on_state_posted);
    strbuf_free(&body);
    if (!t->call)
        state_give_up(t, "out of memory");
}

static void on_max_before(const httpc_response *r, void *arg)
{
    exec_task *t = arg;
    t->call = NULL;
    char err[512];
    cJSON *doc = http_ok(r) ? json_parse_object(r->body, r->body_len, err, sizeof err) : NULL;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(doc, "max_version");
    if (!cJSON_IsNumber(m)) {
        if (!http_ok(r))
            http_describe(r, err, sizeof err);
        else if (doc)
            snprintf(err, sizeof err, "no max_version in the answer");
        cJSON_Delete(doc);
        char why[600];
        snprintf(why, sizeof why, "failed to get max state version: %s", err);
        state_give_up(t, why);
        return;
    }
    t->max_version_before = (int64_t)m->valuedouble;
    cJSON_Delete(doc);
    state_attempt(t);
}

/* Uploads terraform.tfstate: after a successful apply, and on the failure path after terraform ran (a failed or
 * cancelled apply's partial state is recorded too, ref §8 entry 42). */
static void step_save_state(exec_task *t)
{
    if (t->state_tried || (t->failing && !t->apply_started_ms)) {
        exec_next(t);
        return;
    }
    t->state_tried = true;
    char path[PATH_MAX + 32], err[256];
    snprintf(path, sizeof path, "%s/terraform.tfstate", t->workdir);
    int rc = fs_read_file(path, 1u << 30, &t->state, &t->state_len);
    if (rc < 0) {
        if (t->failing) {
            exec_next(t);
            return;
        }
        exec_fail(t, "cannot read %s after the apply: %s", path, strerror(-rc));
        return;
    }
    cJSON *check = json_parse_object(t->state, t->state_len, err, sizeof err);
    cJSON_Delete(check);
    stage_begin(t, STAGE_SAVING_STATE);
    if (!check) {
        char why[300];
        snprintf(why, sizeof why, "terraform.tfstate is not valid JSON: %s", err);
        state_give_up(t, why);
        return;
    }
    char url[512];
    workspace_url(t, "state/max-version", url, sizeof url);
    t->call = exec_http(t, "GET", url, NULL, 0, HTTPC_PLAIN, on_max_before);
    if (!t->call)
        state_give_up(t, "out of memory");
}

/* E13, unless the state could not be saved: a workspace is never unlocked over unsaved state. */
static void step_unlock(exec_task *t)
{
    if (t->state_unsaved) {
        exec_next(t);
        return;
    }
    char url[512];
    workspace_url(t, "unlock", url, sizeof url);
    exec_best_effort(t, "POST", url, NULL, 0, "could not unlock the workspace");
}

static void step_applied(exec_task *t)
{
    t->final_status = "applied";
    t->final_stage = "applied";
    if (t->log)
        tasklog_completed(t->log);
    exec_next(t);
}

/* ---- entry points ------------------------------------------------------------------------------------------- */

static const exec_step plan_steps[] = {
    step_fetch, step_place, step_engine, step_render, step_init, step_plan, step_show, step_upload_plan,
    step_changes, step_decide, step_status, step_log, NULL,
};

static const exec_step apply_steps[] = {
    step_fetch, step_place, step_plan_task, step_engine, step_apply_prepare, step_init, step_restore_plan,
    step_apply, step_save_state, step_applied, step_status, step_log, step_unlock, NULL,
};

static void on_deadline(uv_timer_t *h)
{
    exec_task *t = h->data;
    t->timed_out = true;
    log_warn("task", "task %" PRIu64 ": timed out after %" PRId64 " s; interrupting terraform", t->id,
             t->x->cfg.task_timeout_ms / 1000);
    if (t->child)
        proc_interrupt(t->child, (unsigned)t->x->cfg.cancel_grace_ms);
}

executor *executor_new(const executor_config *cfg)
{
    executor *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    x->cfg = *cfg;
    workdir_file spare_files[1 + RENDER_PLACEHOLDERS] = { { EXEC_TASK_LOG, TASKLOG_MODE } };
    for (size_t i = 0; i < RENDER_PLACEHOLDERS; i++)
        spare_files[1 + i] = (workdir_file){ render_placeholders[i], RENDER_FILE_MODE };
    /* one spare per slot: a burst of run_task frames finds one each before the first spawn refills the pool */
    x->workdirs = workdir_new(cfg->data_dir, cfg->slots->n, spare_files, 1 + RENDER_PLACEHOLDERS);
    engine_config ec = { .loop = cfg->loop, .http = cfg->http, .base_url = cfg->base_url, .token = cfg->token,
                         .data_dir = cfg->data_dir, .engine_path = cfg->engine_path };
    x->engines = engine_cache_new(&ec);
    if (!x->engines) {
        free(x);
        return NULL;
    }
    return x;
}

int executor_run(executor *x, uint64_t task_id, const char *workspace_id, task_action action, const char *type_name)
{
    int held = slots_find(x->cfg.slots, task_id);
    if (exec_find(x, task_id) || (held >= 0 && x->cfg.slots->s[held].status == SLOT_RUNNING))
        return 1; /* ref §8 entry 33: the same task dispatched twice */
    task_type hint = TASK_TYPE_NONE;
    if (type_name && slots_type_parse(type_name, &hint) < 0)
        hint = TASK_TYPE_NONE;
    if (action == ACTION_APPLY)
        hint = TASK_PLAN_AND_APPLY; /* only a plan_and_apply has an apply phase, and it runs in slot 0 */
    /* With a type hint, place before fetching so that a full agent rejects at once. */
    int where = -1;
    if (hint != TASK_TYPE_NONE || x->cfg.slots->draining) {
        where = slots_place(x->cfg.slots, hint == TASK_TYPE_NONE ? TASK_PLAN : hint, action, task_id);
        if (where < 0)
            return where;
    }
    int free_i = -1;
    for (int i = 0; i < EXEC_MAX_TASKS && free_i < 0; i++)
        if (!x->tasks[i])
            free_i = i;
    exec_task *t = free_i < 0 ? NULL : calloc(1, sizeof *t);
    if (!t)
        return SLOTS_E_NO_SLOT;
    t->x = x;
    t->id = task_id;
    snprintf(t->workspace_id, sizeof t->workspace_id, "%s", workspace_id ? workspace_id : "");
    t->type = hint;
    t->action = action;
    t->slot = -1;
    t->steps = action == ACTION_APPLY ? apply_steps : plan_steps;
    t->step = -1;
    t->started_ms = now_ms();
    planjson_errors_init(&t->errors, 0);
    uv_timer_init(x->cfg.loop, &t->timer);
    uv_timer_init(x->cfg.loop, &t->deadline);
    t->timer.data = t->deadline.data = t;
    t->handles_open = 2;
    if (x->cfg.task_timeout_ms > 0)
        uv_timer_start(&t->deadline, on_deadline, (uint64_t)x->cfg.task_timeout_ms, 0);
    x->tasks[free_i] = t;
    if (where >= 0 && hint != TASK_TYPE_NONE) {
        t->warm_slot = action == ACTION_APPLY && x->cfg.slots->s[where].status == SLOT_RESERVED;
        slots_start(x->cfg.slots, where, task_id, hint, action, now_ms());
        t->slot = where;
        exec_take(t);
    }
    exec_next(t);
    return 0;
}

bool executor_cancel(executor *x, uint64_t task_id, const char *why)
{
    exec_task *t = exec_find(x, task_id);
    if (!t)
        return false;
    t->cancelled = true;
    log_info("task", "task %" PRIu64 ": cancelling (%s)", task_id, why);
    if (t->child)
        proc_interrupt(t->child, (unsigned)t->x->cfg.cancel_grace_ms);
    return true;
}

void executor_interrupt_all(executor *x, const char *why, bool now)
{
    for (int i = 0; i < EXEC_MAX_TASKS; i++) {
        exec_task *t = x->tasks[i];
        if (!t)
            continue;
        t->stop_reason = why;
        if (t->child)
            proc_interrupt(t->child, now ? 0 : (unsigned)x->cfg.cancel_grace_ms);
    }
}

size_t executor_active(const executor *x)
{
    size_t n = 0;
    for (int i = 0; i < EXEC_MAX_TASKS; i++)
        n += x->tasks[i] != NULL;
    return n;
}

const executor_counters *executor_stats(const executor *x) { return &x->n; }

void executor_free(executor *x)
{
    if (!x)
        return;
    for (int i = 0; i < EXEC_MAX_TASKS; i++)
        if (x->tasks[i])
            exec_task_free(x->tasks[i]);
    engine_cache_free(x->engines);
    workdir_free(x->workdirs);
    if (x->take_unannounced) /* put off by a spawn that just happened: a restart must still report the task */
        x->cfg.slots_changed(x->cfg.arg);
    if (x->settle)
        uv_close((uv_handle_t *)x->settle, settle_closed);
    free(x);
}
