/* store.c — persisted agent state as a small JSON document; see store.h.
 *
 * Format (version 1):
 *   {"version":1,"agent_id":"…","pool_id":"…","past_ids":["…"],
 *    "slots":[{"slot_id":0,"status":"reserved","task_id":7,"task_type":"plan_and_apply","action":"plan","since_ms":…}],
 *    "interrupted":[{"task_id":9,"task_type":"plan","action":"plan"}]}
 * Only non-idle slots are written. Loading is strict about types (a wrong type means corruption) and tolerant of
 * a different slot count: a slot beyond the configured count is dropped with its task reported as interrupted. */
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "iac/fsutil.h"
#include "iac/json.h"
#include "iac/strbuf.h"

#define STORE_FILE "state.json"
#define STORE_MAX_BYTES (1u << 20)

static void store_path(const char *dir, const char *name, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%s", dir, name);
}

static void store_add_interrupted(agent_store *st, uint64_t task_id, task_type type, task_action action)
{
    for (int i = 0; i < st->n_interrupted; i++)
        if (st->interrupted[i].task_id == task_id)
            return;
    if (st->n_interrupted < STORE_INTERRUPTED_MAX)
        st->interrupted[st->n_interrupted++] = (store_task){ task_id, type, action };
}

static int copy_id(char *dst, const char *src)
{
    size_t n = strlen(src);
    if (n >= STORE_ID_MAX)
        return -1;
    memcpy(dst, src, n + 1);
    return 0;
}

/* Parses one entry of "slots" into the table. -1 with a message on a malformed entry. */
static int store_parse_slot(agent_store *st, const cJSON *e, char *err, size_t errlen)
{
    uint64_t id = 0, task_id = 0;
    int64_t since = 0;
    const char *status = NULL, *type_s = NULL, *action_s = "plan";
    if (!cJSON_IsObject(e)) {
        snprintf(err, errlen, "slots: entry is not an object");
        return -1;
    }
    if (json_get_u64(e, "slot_id", true, &id, err, errlen) < 0 ||
        json_get_string(e, "status", true, &status, err, errlen) < 0 ||
        json_get_u64(e, "task_id", true, &task_id, err, errlen) < 0 ||
        json_get_string(e, "task_type", true, &type_s, err, errlen) < 0 ||
        json_get_string(e, "action", false, &action_s, err, errlen) < 0 ||
        json_get_i64(e, "since_ms", false, &since, err, errlen) < 0)
        return -1;
    task_type type;
    if (slots_type_parse(type_s, &type) < 0 || task_id == 0) {
        snprintf(err, errlen, "slots: bad task_type or task_id");
        return -1;
    }
    task_action action = slots_action_parse(action_s);
    bool reserved = strcmp(status, "reserved") == 0;
    if (!reserved && strcmp(status, "running") != 0) {
        snprintf(err, errlen, "slots: bad status \"%s\"", status);
        return -1;
    }
    /* A reservation survives only where it can exist: slot 0 of a table that has one. Anything else that was in
     * flight is a task to report. */
    if (reserved && id == 0 && type == TASK_PLAN_AND_APPLY) {
        slot *s = &st->slots.s[0];
        s->status = SLOT_RESERVED;
        s->task_id = task_id;
        s->type = type;
        s->action = ACTION_PLAN;
        s->since_ms = since;
    } else if (!reserved) {
        store_add_interrupted(st, task_id, type, action);
    }
    return 0;
}

static int store_parse(agent_store *st, const char *text, size_t len, char *err, size_t errlen)
{
    cJSON *root = json_parse_object(text, len, err, errlen);
    if (!root)
        return -1;
    int rc = -1;
    int64_t version = 0;
    const char *agent_id = "", *pool_id = "";
    const cJSON *past = NULL, *slots = NULL, *intr = NULL;
    if (json_get_i64(root, "version", true, &version, err, errlen) < 0 ||
        json_get_string(root, "agent_id", false, &agent_id, err, errlen) < 0 ||
        json_get_string(root, "pool_id", false, &pool_id, err, errlen) < 0 ||
        json_get_array(root, "past_ids", false, &past, err, errlen) < 0 ||
        json_get_array(root, "slots", false, &slots, err, errlen) < 0 ||
        json_get_array(root, "interrupted", false, &intr, err, errlen) < 0)
        goto out;
    if (version != 1) {
        snprintf(err, errlen, "unsupported version %lld", (long long)version);
        goto out;
    }
    if (copy_id(st->agent_id, agent_id) < 0 || copy_id(st->pool_id, pool_id) < 0) {
        snprintf(err, errlen, "agent_id or pool_id too long");
        goto out;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, past) {
        if (!cJSON_IsString(e) || strlen(e->valuestring) >= STORE_ID_MAX) {
            snprintf(err, errlen, "past_ids: expected strings");
            goto out;
        }
        if (st->n_past_ids < STORE_PAST_IDS)
            memcpy(st->past_ids[st->n_past_ids++], e->valuestring, strlen(e->valuestring) + 1);
    }
    cJSON_ArrayForEach(e, slots) {
        if (store_parse_slot(st, e, err, errlen) < 0)
            goto out;
    }
    cJSON_ArrayForEach(e, intr) {
        uint64_t task_id = 0;
        const char *type_s = NULL, *action_s = "plan";
        task_type type;
        if (!cJSON_IsObject(e) || json_get_u64(e, "task_id", true, &task_id, err, errlen) < 0 ||
            json_get_string(e, "task_type", true, &type_s, err, errlen) < 0 ||
            json_get_string(e, "action", false, &action_s, err, errlen) < 0 ||
            slots_type_parse(type_s, &type) < 0 || task_id == 0) {
            if (!err[0])
                snprintf(err, errlen, "interrupted: malformed entry");
            goto out;
        }
        store_add_interrupted(st, task_id, type, slots_action_parse(action_s));
    }
    rc = 0;
out:
    cJSON_Delete(root);
    return rc;
}

/* Back to a first start, keeping the caller's slot count and start time. */
static void store_reset(agent_store *st)
{
    int n = st->slots.n;
    int64_t now = st->slots.s[0].since_ms;
    memset(st, 0, sizeof *st);
    slots_init(&st->slots, n, now);
}

int store_load(const char *dir, agent_store *st, char *msg, size_t msglen)
{
    char path[4096];
    msg[0] = '\0';
    int rc = fs_mkdir_p(dir, 0700);
    if (rc < 0) {
        snprintf(msg, msglen, "cannot create data directory %s: %s", dir, strerror(-rc));
        return rc;
    }
    store_reset(st);
    store_path(dir, STORE_FILE, path, sizeof path);
    char *text = NULL;
    size_t len = 0;
    rc = fs_read_file(path, STORE_MAX_BYTES, &text, &len);
    if (rc == -ENOENT)
        return STORE_FRESH;
    char err[256] = "";
    if (rc == 0 && store_parse(st, text, len, err, sizeof err) == 0) {
        free(text);
        return STORE_LOADED;
    }
    free(text);
    if (rc < 0 && rc != -EFBIG) {
        snprintf(msg, msglen, "cannot read %s: %s", path, strerror(-rc));
        return rc;
    }
    if (rc == -EFBIG)
        snprintf(err, sizeof err, "larger than %u bytes", STORE_MAX_BYTES);
    store_reset(st);
    char aside[4200];
    snprintf(aside, sizeof aside, "%s.corrupt-%lld", path, (long long)time(NULL));
    if (rename(path, aside) < 0)
        snprintf(msg, msglen, "state file %s is corrupt (%s) and could not be moved aside (%s); starting fresh",
                 path, err, strerror(errno));
    else
        snprintf(msg, msglen, "state file %s is corrupt (%s); moved it to %s and starting fresh", path, err, aside);
    return STORE_CORRUPT;
}

static void store_write_task_fields(strbuf *b, uint64_t task_id, task_type type, task_action action)
{
    strbuf_printf(b, "\"task_id\":%llu,\"task_type\":\"%s\",\"action\":\"%s\"", (unsigned long long)task_id,
                  slots_type_name(type), slots_action_name(action));
}

/* The document; without the running slots when with_running is false (what the durability rule compares). */
static void store_render(const agent_store *st, bool with_running, strbuf *b)
{
    strbuf_puts(b, "{\"version\":1,\"agent_id\":\"");
    strbuf_json_escape(b, st->agent_id, strlen(st->agent_id));
    strbuf_puts(b, "\",\"pool_id\":\"");
    strbuf_json_escape(b, st->pool_id, strlen(st->pool_id));
    strbuf_puts(b, "\",\"past_ids\":[");
    for (int i = 0; i < st->n_past_ids; i++) {
        strbuf_puts(b, i ? ",\"" : "\"");
        strbuf_json_escape(b, st->past_ids[i], strlen(st->past_ids[i]));
        strbuf_putc(b, '"');
    }
    strbuf_puts(b, "],\"slots\":[");
    bool first = true;
    for (int i = 0; i < st->slots.n; i++) {
        const slot *s = &st->slots.s[i];
        if (s->status == SLOT_IDLE || (s->status == SLOT_RUNNING && !with_running))
            continue;
        strbuf_printf(b, "%s{\"slot_id\":%d,\"status\":\"%s\",", first ? "" : ",", i, slots_status_name(s->status));
        store_write_task_fields(b, s->task_id, s->type, s->action);
        strbuf_printf(b, ",\"since_ms\":%lld}", (long long)s->since_ms);
        first = false;
    }
    strbuf_puts(b, "],\"interrupted\":[");
    for (int i = 0; i < st->n_interrupted; i++) {
        strbuf_puts(b, i ? ",{" : "{");
        store_write_task_fields(b, st->interrupted[i].task_id, st->interrupted[i].type, st->interrupted[i].action);
        strbuf_putc(b, '}');
    }
    strbuf_puts(b, "]}\n");
}

/* FNV-1a, never 0 (0 means "nothing written yet"). */
static uint64_t store_hash(const char *p, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h ? h : 1;
}

/* The task running in slot i, or 0. */
static uint64_t store_running(const agent_store *st, int i)
{
    const slot *s = &st->slots.s[i];
    return i < st->slots.n && s->status == SLOT_RUNNING ? s->task_id : 0;
}

/* Durability: which saves are fsync'd.
 *
 * state.json is read back by the agent after a restart, to keep slot 0's reservation and to report the tasks that
 * were running (recovery.c). A restart of the process alone — a crash, an OOM kill, a container restart in the
 * same pod — reads the page cache, where a rename is complete at once: for it, fsync adds nothing. It matters only
 * when the kernel crashes and the data directory survives the reboot (the chart's emptyDir does, if the pod comes
 * back on the same node). Then what the latest save carried may be lost, and losing it is harmless for exactly one
 * change, the one on the dispatch path:
 *
 *   a slot taken (idle → running), saved as terraform's first command is spawned (executor.c, exec_take, says
 *   why not earlier), where the two fsyncs would cost about half a millisecond of every dispatch. Lost, the file
 *   shows the slot as before and recovery does not report the task; but a kernel crash also ends the C&C
 *   connection (the plane sees it at its heartbeat timeout at the latest, ref §3.5), and the plane fails every
 *   running task of a disconnected agent itself (ref §3.6).
 *   So such a save is renamed into place without fsync. It keeps the file listing every task that runs a command
 *   whenever the process dies.
 *
 *   Everything else is fsync'd as before, and with it the whole file (earlier takes included): a task that ended —
 *   lost, recovery would report a task that succeeded as failed —, a reservation made, used or released, a new
 *   identity, the interrupted list.
 *
 * After a kernel crash, a file renamed without fsync can also come back empty; store_load then moves it aside and
 * starts fresh: a reservation lost is a cold apply instead of a warm one, an interrupted task forgotten was failed
 * by the plane on the disconnect. Slower outcomes, never wrong ones.
 *
 * The rule needs what was written last (st->written): a save is a take when everything but the running slots is
 * unchanged, every task that was running still runs in the same slot, and some slot runs a task it did not run.
 * A save that changes nothing writes nothing after a durable save, and is fsync'd after a take (it must not leave
 * a file less durable than its caller asked for). */
static bool store_unchanged(const agent_store *st, uint64_t rest)
{
    const store_written *w = &st->written;
    if (w->rest == 0 || w->rest != rest)
        return false;
    for (int i = 0; i < SLOTS_MAX; i++)
        if (w->running[i] != store_running(st, i))
            return false;
    return true;
}

static bool store_is_take(const agent_store *st, uint64_t rest)
{
    const store_written *w = &st->written;
    bool took = false;
    if (w->rest == 0 || w->rest != rest)
        return false;
    for (int i = 0; i < SLOTS_MAX; i++) {
        uint64_t now = store_running(st, i);
        if (w->running[i] && w->running[i] != now)
            return false;
        took |= !w->running[i] && now;
    }
    return took;
}

int store_save(const char *dir, agent_store *st)
{
    strbuf rest = STRBUF_INIT, b = STRBUF_INIT;
    store_render(st, false, &rest);
    store_render(st, true, &b);
    uint64_t rest_hash = store_hash(rest.data, rest.len);
    bool oom = rest.oom || b.oom;
    strbuf_free(&rest);
    if (oom) {
        strbuf_free(&b);
        return -ENOMEM;
    }
    if (st->written.durable && store_unchanged(st, rest_hash)) {
        strbuf_free(&b);
        return 0;
    }
    char path[4096];
    store_path(dir, STORE_FILE, path, sizeof path);
    bool durable = !store_is_take(st, rest_hash);
    int rc = durable ? fs_write_atomic(path, b.data, b.len, 0600) : fs_write_atomic_nosync(path, b.data, b.len, 0600);
    strbuf_free(&b);
    if (rc < 0)
        return rc;
    st->written.rest = rest_hash;
    for (int i = 0; i < SLOTS_MAX; i++)
        st->written.running[i] = store_running(st, i);
    st->written.durable = durable;
    return 0;
}

void store_set_identity(agent_store *st, const char *agent_id, const char *pool_id)
{
    if (st->agent_id[0] && strcmp(st->agent_id, agent_id) != 0) {
        int keep = st->n_past_ids < STORE_PAST_IDS ? st->n_past_ids : STORE_PAST_IDS - 1;
        int j = 0;
        char kept[STORE_PAST_IDS][STORE_ID_MAX];
        for (int i = 0; i < st->n_past_ids && j < keep; i++)
            if (strcmp(st->past_ids[i], st->agent_id) != 0 && strcmp(st->past_ids[i], agent_id) != 0)
                memcpy(kept[j++], st->past_ids[i], STORE_ID_MAX);
        memcpy(st->past_ids[0], st->agent_id, STORE_ID_MAX);
        memcpy(st->past_ids[1], kept, (size_t)j * STORE_ID_MAX);
        st->n_past_ids = j + 1;
    }
    snprintf(st->agent_id, STORE_ID_MAX, "%s", agent_id);
    snprintf(st->pool_id, STORE_ID_MAX, "%s", pool_id);
}

bool store_is_own_id(const agent_store *st, const char *id)
{
    if (!id || !id[0])
        return false;
    if (strcmp(st->agent_id, id) == 0)
        return true;
    for (int i = 0; i < st->n_past_ids; i++)
        if (strcmp(st->past_ids[i], id) == 0)
            return true;
    return false;
}

void store_forget_interrupted(agent_store *st, uint64_t task_id)
{
    for (int i = 0; i < st->n_interrupted; i++) {
        if (st->interrupted[i].task_id != task_id)
            continue;
        memmove(&st->interrupted[i], &st->interrupted[i + 1],
                (size_t)(st->n_interrupted - i - 1) * sizeof st->interrupted[0]);
        st->n_interrupted--;
        return;
    }
}
