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

int store_save(const char *dir, const agent_store *st)
{
    strbuf b = STRBUF_INIT;
    strbuf_puts(&b, "{\"version\":1,\"agent_id\":\"");
    strbuf_json_escape(&b, st->agent_id, strlen(st->agent_id));
    strbuf_puts(&b, "\",\"pool_id\":\"");
    strbuf_json_escape(&b, st->pool_id, strlen(st->pool_id));
    strbuf_puts(&b, "\",\"past_ids\":[");
    for (int i = 0; i < st->n_past_ids; i++) {
        strbuf_puts(&b, i ? ",\"" : "\"");
        strbuf_json_escape(&b, st->past_ids[i], strlen(st->past_ids[i]));
        strbuf_putc(&b, '"');
    }
    strbuf_puts(&b, "],\"slots\":[");
    bool first = true;
    for (int i = 0; i < st->slots.n; i++) {
        const slot *s = &st->slots.s[i];
        if (s->status == SLOT_IDLE)
            continue;
        strbuf_printf(&b, "%s{\"slot_id\":%d,\"status\":\"%s\",", first ? "" : ",", i, slots_status_name(s->status));
        store_write_task_fields(&b, s->task_id, s->type, s->action);
        strbuf_printf(&b, ",\"since_ms\":%lld}", (long long)s->since_ms);
        first = false;
    }
    strbuf_puts(&b, "],\"interrupted\":[");
    for (int i = 0; i < st->n_interrupted; i++) {
        strbuf_puts(&b, i ? ",{" : "{");
        store_write_task_fields(&b, st->interrupted[i].task_id, st->interrupted[i].type, st->interrupted[i].action);
        strbuf_putc(&b, '}');
    }
    strbuf_puts(&b, "]}\n");
    if (b.oom) {
        strbuf_free(&b);
        return -ENOMEM;
    }
    char path[4096];
    store_path(dir, STORE_FILE, path, sizeof path);
    int rc = fs_write_atomic(path, b.data, b.len, 0600);
    strbuf_free(&b);
    return rc;
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
