/* proto.c — the C&C frame codec; see proto.h and ref §3.2–3.4, §3.9, DESIGN §6.
 *
 * One table row per message type holds its wire name, its decoder, its encoder and its destructor, so adding a
 * message is one row and three small functions, and nothing dispatches through a switch.
 *
 * Decoding is strict in a fixed order: size (before any parsing), UTF-8, JSON, envelope, payload fields. A frame is
 * UTF-8 or it is rejected: RFC 6455 requires text frames to be UTF-8 and RFC 8259 requires it of JSON, and our
 * encoder never produces anything else. Field decisions where the reference leaves room (documented here once):
 *   - payload: must be an object for every type; only drain and undrain, which carry no fields, accept a missing
 *     or null payload (the local HTTP calls they mirror take no body). Unknown types still need an object payload:
 *     a frame that breaks the envelope is an error whatever its type.
 *   - run_task: task_id and workspace_id required; action optional and defaults to "plan" (upstream runs a plan for
 *     anything that is not "apply"); task_type optional (extension).
 *   - a task_id is a whole number from 1 to 2^53-1 (ref §3.2: ids are < 2^53; 0 is never a task). Upstream
 *     truncates 1.5 to 1; we refuse it, since a fractional id means the peer is broken.
 *   - refresh_credentials, heartbeat, credentials_refreshed: nothing required, every field type-checked when
 *     present. A heartbeat's current_tasks absent or null both decode as current_tasks_null ("no list given").
 *   - log_stream: task_id required. task_failed: task_id and error (may be empty). task_rejected: all three.
 *   - task_request: free (with both counts) required, reserved optional.
 *   - JSON null counts as absent everywhere (json.h).
 *
 * Encoding writes text straight into a strbuf in a fixed key order: upstream fields always, extension fields only
 * when set. Strings are escaped and any invalid UTF-8 in them is replaced by U+FFFD (as Go's encoder does), so a
 * terraform line with stray bytes still makes a valid frame. Doubles are written in their shortest exact form, and
 * NaN or infinity, which JSON cannot carry, as 0. */
#include "iac/proto.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iac/json.h"
#include "iac/strbuf.h"

#define PROTO_ID_MAX 9007199254740991.0 /* 2^53 - 1 */

/* ---- UTF-8 ---------------------------------------------------------------------------------------------------- */

/* Well-formed sequences (RFC 3629 §4): by lead byte, the sequence length and the allowed range of the second byte;
 * later bytes are always 80..BF. The narrowed second-byte ranges exclude overlong forms, surrogates and code points
 * above U+10FFFF. */
static const struct { unsigned char lo, hi, len, second_lo, second_hi; } utf8_leads[] = {
    { 0x00, 0x7F, 1, 0, 0 },       { 0xC2, 0xDF, 2, 0x80, 0xBF }, { 0xE0, 0xE0, 3, 0xA0, 0xBF },
    { 0xE1, 0xEC, 3, 0x80, 0xBF }, { 0xED, 0xED, 3, 0x80, 0x9F }, { 0xEE, 0xEF, 3, 0x80, 0xBF },
    { 0xF0, 0xF0, 4, 0x90, 0xBF }, { 0xF1, 0xF3, 4, 0x80, 0xBF }, { 0xF4, 0xF4, 4, 0x80, 0x8F },
};

/* Length of the well-formed sequence at s (n bytes available), or 0 if there is none. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    for (size_t k = 0; k < sizeof utf8_leads / sizeof utf8_leads[0]; k++) {
        if (s[0] < utf8_leads[k].lo || s[0] > utf8_leads[k].hi)
            continue;
        size_t len = utf8_leads[k].len;
        if (len > n)
            return 0;
        if (len > 1 && (s[1] < utf8_leads[k].second_lo || s[1] > utf8_leads[k].second_hi))
            return 0;
        for (size_t i = 2; i < len; i++)
            if (s[i] < 0x80 || s[i] > 0xBF)
                return 0;
        return len;
    }
    return 0;
}

/* Offset of the first byte that is not part of a well-formed sequence, or n. */
static size_t utf8_valid_prefix(const char *text, size_t n)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < n) {
        size_t len = utf8_seq(s + i, n - i);
        if (len == 0)
            return i;
        i += len;
    }
    return n;
}

/* ---- numbers -------------------------------------------------------------------------------------------------- */

/* The shortest of %.15g..%.17g that reads back as v: "0.5", not "0.50000000000000000". */
static void fmt_double(double v, char *buf, size_t len)
{
    if (!isfinite(v)) {
        snprintf(buf, len, "0");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

/* ---- decoding helpers ----------------------------------------------------------------------------------------- */

typedef struct {
    const char *msg;  /* message type for error messages ("run_task") */
    char        path[48]; /* prefix inside the payload ("slots[2]: "), or "" */
    char       *err;
    size_t      errlen;
} pctx;

static int p_fail(pctx *c, int code, const char *detail)
{
    if (c->err && c->errlen)
        snprintf(c->err, c->errlen, "%s: %s%s", c->msg, c->path, detail);
    return code;
}

static int p_nomem(pctx *c) { return p_fail(c, PROTO_E_NOMEM, "out of memory"); }

/* An owned copy of an optional or required string member; *out stays NULL when absent. */
static int p_str(pctx *c, const cJSON *o, const char *key, bool required, char **out)
{
    char tmp[160];
    const char *s;
    int rc = json_get_string(o, key, required, &s, tmp, sizeof tmp);
    if (rc < 0)
        return p_fail(c, PROTO_E_FIELD, tmp);
    if (rc == 0 && !(*out = strdup(s)))
        return p_nomem(c);
    return 0;
}

static int p_i64(pctx *c, const cJSON *o, const char *key, bool required, int64_t *out)
{
    char tmp[160];
    return json_get_i64(o, key, required, out, tmp, sizeof tmp) < 0 ? p_fail(c, PROTO_E_FIELD, tmp) : 0;
}

/* A count: a whole number from 0. */
static int p_count(pctx *c, const cJSON *o, const char *key, bool required, int64_t *out)
{
    char tmp[160];
    uint64_t v;
    int rc = json_get_u64(o, key, required, &v, tmp, sizeof tmp);
    if (rc < 0)
        return p_fail(c, PROTO_E_FIELD, tmp);
    if (rc == 0)
        *out = (int64_t)v;
    return 0;
}

static int p_double(pctx *c, const cJSON *o, const char *key, bool required, double *out)
{
    char tmp[160];
    return json_get_double(o, key, required, out, tmp, sizeof tmp) < 0 ? p_fail(c, PROTO_E_FIELD, tmp) : 0;
}

static int p_bool(pctx *c, const cJSON *o, const char *key, bool required, bool *out)
{
    char tmp[160];
    return json_get_bool(o, key, required, out, tmp, sizeof tmp) < 0 ? p_fail(c, PROTO_E_FIELD, tmp) : 0;
}

static int p_bad_id(pctx *c, const char *what, double v)
{
    char num[40], tmp[160];
    fmt_double(v, num, sizeof num);
    snprintf(tmp, sizeof tmp, "%s: expected a whole number from 1 to 2^53-1, got %s", what, num);
    return p_fail(c, PROTO_E_FIELD, tmp);
}

static int p_task_id(pctx *c, const cJSON *o, const char *key, bool required, uint64_t *out)
{
    char tmp[160];
    uint64_t v;
    int rc = json_get_u64(o, key, required, &v, tmp, sizeof tmp);
    if (rc < 0)
        return p_fail(c, PROTO_E_FIELD, tmp);
    if (rc == 1)
        return 0;
    if (v < 1 || (double)v > PROTO_ID_MAX)
        return p_bad_id(c, key, (double)v);
    *out = v;
    return 0;
}

static const char *p_type_name(const cJSON *it)
{
    static const struct { cJSON_bool (*is)(const cJSON *); const char *name; } names[] = {
        { cJSON_IsNull, "null" },     { cJSON_IsBool, "boolean" }, { cJSON_IsNumber, "number" },
        { cJSON_IsString, "string" }, { cJSON_IsArray, "array" },  { cJSON_IsObject, "object" },
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].is(it))
            return names[i].name;
    return "an invalid value";
}

/* Array elements have no key for the json.h getters; these check one element, named by what ("reserved[3]"). */
static int p_elem_task_id(pctx *c, const cJSON *it, const char *what, uint64_t *out)
{
    char tmp[160];
    if (!cJSON_IsNumber(it)) {
        snprintf(tmp, sizeof tmp, "%s: expected a whole number, got %s", what, p_type_name(it));
        return p_fail(c, PROTO_E_FIELD, tmp);
    }
    double v = it->valuedouble;
    if (!isfinite(v) || v != floor(v) || v < 1 || v > PROTO_ID_MAX)
        return p_bad_id(c, what, v);
    *out = (uint64_t)v;
    return 0;
}

/* An owned array of task ids from an optional array member; absent leaves *ids NULL and *n 0. Returns
 * PROTO_OK, or an error; *present (if given) says whether the member was there. */
static int p_id_array(pctx *c, const cJSON *o, const char *key, uint64_t **ids, size_t *n, bool *present)
{
    char tmp[160];
    const cJSON *arr;
    int rc = json_get_array(o, key, false, &arr, tmp, sizeof tmp);
    if (rc < 0)
        return p_fail(c, PROTO_E_FIELD, tmp);
    if (present)
        *present = rc == 0;
    if (rc == 1)
        return 0;
    int count = cJSON_GetArraySize(arr);
    if (count <= 0)
        return 0;
    if (!(*ids = calloc((size_t)count, sizeof **ids)))
        return p_nomem(c);
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        char what[48];
        snprintf(what, sizeof what, "%s[%zu]", key, *n);
        int err = p_elem_task_id(c, it, what, &(*ids)[*n]);
        if (err)
            return err;
        (*n)++;
    }
    return 0;
}

/* ---- per-type decoders ---------------------------------------------------------------------------------------- */

static int dec_none(pctx *c, const cJSON *p, proto_msg *m)
{
    (void)c, (void)p, (void)m;
    return 0;
}

static int dec_run_task(pctx *c, const cJSON *p, proto_msg *m)
{
    proto_run_task *r = &m->u.run_task;
    int rc;
    if ((rc = p_task_id(c, p, "task_id", true, &r->task_id))
        || (rc = p_str(c, p, "workspace_id", true, &r->workspace_id))
        || (rc = p_str(c, p, "action", false, &r->action)) || (rc = p_str(c, p, "task_type", false, &r->task_type)))
        return rc;
    if (!r->action && !(r->action = strdup("plan")))
        return p_nomem(c);
    return 0;
}

static int dec_task_ref(pctx *c, const cJSON *p, proto_msg *m)
{
    return p_task_id(c, p, "task_id", true, &m->u.task_ref.task_id);
}

static int dec_refresh_credentials(pctx *c, const cJSON *p, proto_msg *m)
{
    proto_refresh_credentials *r = &m->u.refresh_credentials;
    int rc;
    if ((rc = p_str(c, p, "pool_id", false, &r->pool_id)) || (rc = p_i64(c, p, "timestamp", false, &r->timestamp)))
        return rc;
    return 0;
}

static int dec_slot(pctx *c, const cJSON *o, proto_slot *s)
{
    int64_t slot_id = 0;
    int rc;
    if ((rc = p_i64(c, o, "slot_id", true, &slot_id)))
        return rc;
    if (slot_id < 0 || slot_id > INT_MAX) {
        char tmp[96];
        snprintf(tmp, sizeof tmp, "slot_id: expected a whole number from 0 to %d, got %lld", INT_MAX,
                 (long long)slot_id);
        return p_fail(c, PROTO_E_FIELD, tmp);
    }
    s->slot_id = (int)slot_id;
    if ((rc = p_str(c, o, "status", true, &s->status)) || (rc = p_task_id(c, o, "task_id", false, &s->task_id))
        || (rc = p_str(c, o, "task_type", false, &s->task_type)) || (rc = p_str(c, o, "action", false, &s->action))
        || (rc = p_i64(c, o, "since", false, &s->since)))
        return rc;
    return 0;
}

static int dec_slots(pctx *c, const cJSON *p, proto_heartbeat *h)
{
    char tmp[160];
    const cJSON *arr;
    int rc = json_get_array(p, "slots", false, &arr, tmp, sizeof tmp);
    if (rc < 0)
        return p_fail(c, PROTO_E_FIELD, tmp);
    if (rc == 1)
        return 0;
    h->has_slots = true;
    int count = cJSON_GetArraySize(arr);
    if (count <= 0)
        return 0;
    if (!(h->slots = calloc((size_t)count, sizeof *h->slots)))
        return p_nomem(c);
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        snprintf(c->path, sizeof c->path, "slots[%zu]: ", h->n_slots);
        if (!cJSON_IsObject(it)) {
            snprintf(tmp, sizeof tmp, "expected an object, got %s", p_type_name(it));
            return p_fail(c, PROTO_E_FIELD, tmp);
        }
        /* Counted before decoding so that a half-filled entry is freed with the rest. */
        h->n_slots++;
        if ((rc = dec_slot(c, it, &h->slots[h->n_slots - 1])))
            return rc;
    }
    c->path[0] = '\0';
    return 0;
}

static int dec_capabilities(pctx *c, const cJSON *p, proto_heartbeat *h)
{
    char tmp[160];
    const cJSON *arr;
    int rc = json_get_array(p, "capabilities", false, &arr, tmp, sizeof tmp);
    if (rc < 0)
        return p_fail(c, PROTO_E_FIELD, tmp);
    int count = rc == 0 ? cJSON_GetArraySize(arr) : 0;
    if (count <= 0)
        return 0;
    if (!(h->capabilities = calloc((size_t)count, sizeof *h->capabilities)))
        return p_nomem(c);
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        if (!cJSON_IsString(it) || !it->valuestring) {
            snprintf(tmp, sizeof tmp, "capabilities[%zu]: expected a string, got %s", h->n_capabilities,
                     p_type_name(it));
            return p_fail(c, PROTO_E_FIELD, tmp);
        }
        if (!(h->capabilities[h->n_capabilities] = strdup(it->valuestring)))
            return p_nomem(c);
        h->n_capabilities++;
    }
    return 0;
}

static int dec_heartbeat(pctx *c, const cJSON *p, proto_msg *m)
{
    proto_heartbeat *h = &m->u.heartbeat;
    bool have_tasks = false;
    int rc;
    if ((rc = p_i64(c, p, "plan_running", false, &h->plan_running))
        || (rc = p_i64(c, p, "plan_limit", false, &h->plan_limit))
        || (rc = p_bool(c, p, "apply_running", false, &h->apply_running))
        || (rc = p_id_array(c, p, "current_tasks", &h->current_tasks, &h->n_current_tasks, &have_tasks))
        || (rc = p_double(c, p, "cpu_usage", false, &h->cpu_usage))
        || (rc = p_double(c, p, "mem_usage", false, &h->mem_usage))
        || (rc = p_str(c, p, "status", false, &h->status)) || (rc = p_i64(c, p, "timestamp", false, &h->timestamp))
        || (rc = dec_slots(c, p, h)) || (rc = p_str(c, p, "state", false, &h->state))
        || (rc = p_str(c, p, "agent_version", false, &h->agent_version)) || (rc = dec_capabilities(c, p, h)))
        return rc;
    h->current_tasks_null = !have_tasks;
    return 0;
}

static int dec_log_stream(pctx *c, const cJSON *p, proto_msg *m)
{
    proto_log_stream *l = &m->u.log_stream;
    int rc;
    if ((rc = p_task_id(c, p, "task_id", true, &l->task_id)) || (rc = p_str(c, p, "type", false, &l->type))
        || (rc = p_str(c, p, "line", false, &l->line)) || (rc = p_str(c, p, "timestamp", false, &l->timestamp))
        || (rc = p_i64(c, p, "line_num", false, &l->line_num)) || (rc = p_str(c, p, "stage", false, &l->stage))
        || (rc = p_str(c, p, "status", false, &l->status)))
        return rc;
    return 0;
}

static int dec_task_failed(pctx *c, const cJSON *p, proto_msg *m)
{
    proto_task_failed *f = &m->u.task_failed;
    int rc;
    if ((rc = p_task_id(c, p, "task_id", true, &f->task_id)) || (rc = p_str(c, p, "error", true, &f->error)))
        return rc;
    return 0;
}

static int dec_credentials_refreshed(pctx *c, const cJSON *p, proto_msg *m)
{
    proto_credentials_refreshed *r = &m->u.credentials_refreshed;
    int rc;
    if ((rc = p_str(c, p, "agent_id", false, &r->agent_id)) || (rc = p_str(c, p, "pool_id", false, &r->pool_id))
        || (rc = p_i64(c, p, "timestamp", false, &r->timestamp)) || (rc = p_i64(c, p, "count", false, &r->count)))
        return rc;
    return 0;
}

static int dec_task_rejected(pctx *c, const cJSON *p, proto_msg *m)
{
    proto_task_rejected *r = &m->u.task_rejected;
    int rc;
    if ((rc = p_task_id(c, p, "task_id", true, &r->task_id)) || (rc = p_str(c, p, "action", true, &r->action))
        || (rc = p_str(c, p, "reason", true, &r->reason)))
        return rc;
    return 0;
}

static int dec_task_request(pctx *c, const cJSON *p, proto_msg *m)
{
    proto_task_request *r = &m->u.task_request;
    char tmp[160];
    const cJSON *free_obj;
    if (json_get_object(p, "free", true, &free_obj, tmp, sizeof tmp) < 0)
        return p_fail(c, PROTO_E_FIELD, tmp);
    snprintf(c->path, sizeof c->path, "free: ");
    int rc;
    if ((rc = p_count(c, free_obj, "plan_and_apply", true, &r->free_plan_and_apply))
        || (rc = p_count(c, free_obj, "plan", true, &r->free_plan)))
        return rc;
    c->path[0] = '\0';
    return p_id_array(c, p, "reserved", &r->reserved, &r->n_reserved, NULL);
}

/* ---- destructors ---------------------------------------------------------------------------------------------- */

static void free_none(proto_msg *m) { (void)m; }

static void free_run_task(proto_msg *m)
{
    free(m->u.run_task.workspace_id);
    free(m->u.run_task.action);
    free(m->u.run_task.task_type);
}

static void free_refresh_credentials(proto_msg *m) { free(m->u.refresh_credentials.pool_id); }

static void free_heartbeat(proto_msg *m)
{
    proto_heartbeat *h = &m->u.heartbeat;
    free(h->current_tasks);
    for (size_t i = 0; i < h->n_slots; i++) {
        free(h->slots[i].status);
        free(h->slots[i].task_type);
        free(h->slots[i].action);
    }
    free(h->slots);
    free(h->status);
    free(h->state);
    free(h->agent_version);
    for (size_t i = 0; i < h->n_capabilities; i++)
        free(h->capabilities[i]);
    free(h->capabilities);
}

static void free_log_stream(proto_msg *m)
{
    proto_log_stream *l = &m->u.log_stream;
    free(l->type);
    free(l->line);
    free(l->timestamp);
    free(l->stage);
    free(l->status);
}

static void free_task_failed(proto_msg *m) { free(m->u.task_failed.error); }

static void free_credentials_refreshed(proto_msg *m)
{
    free(m->u.credentials_refreshed.agent_id);
    free(m->u.credentials_refreshed.pool_id);
}

static void free_task_rejected(proto_msg *m)
{
    free(m->u.task_rejected.action);
    free(m->u.task_rejected.reason);
}

static void free_task_request(proto_msg *m) { free(m->u.task_request.reserved); }

/* ---- encoding helpers ----------------------------------------------------------------------------------------- */

/* Writes the members of one JSON object; `first` decides the comma. */
typedef struct {
    strbuf *b;
    bool    first;
} jw;

static void jw_key(jw *w, const char *key)
{
    if (!w->first)
        strbuf_putc(w->b, ',');
    w->first = false;
    strbuf_putc(w->b, '"');
    strbuf_puts(w->b, key);
    strbuf_puts(w->b, "\":");
}

/* A quoted JSON string; NULL is written as "", invalid UTF-8 bytes as U+FFFD. */
static void put_string(strbuf *b, const char *s)
{
    strbuf_putc(b, '"');
    size_t n = s ? strlen(s) : 0;
    while (n > 0) {
        size_t ok = utf8_valid_prefix(s, n);
        strbuf_json_escape(b, s, ok);
        if (ok == n)
            break;
        strbuf_puts(b, "\\ufffd");
        s += ok + 1;
        n -= ok + 1;
    }
    strbuf_putc(b, '"');
}

static void jw_str(jw *w, const char *key, const char *s)
{
    jw_key(w, key);
    put_string(w->b, s);
}

/* Extension strings: written only when set. */
static void jw_opt_str(jw *w, const char *key, const char *s)
{
    if (s)
        jw_str(w, key, s);
}

static void jw_u64(jw *w, const char *key, uint64_t v)
{
    jw_key(w, key);
    strbuf_printf(w->b, "%llu", (unsigned long long)v);
}

static void jw_i64(jw *w, const char *key, int64_t v)
{
    jw_key(w, key);
    strbuf_printf(w->b, "%lld", (long long)v);
}

static void jw_double(jw *w, const char *key, double v)
{
    char num[40];
    fmt_double(v, num, sizeof num);
    jw_key(w, key);
    strbuf_puts(w->b, num);
}

static void jw_bool(jw *w, const char *key, bool v)
{
    jw_key(w, key);
    strbuf_puts(w->b, v ? "true" : "false");
}

static void jw_ids(jw *w, const char *key, const uint64_t *ids, size_t n)
{
    jw_key(w, key);
    strbuf_putc(w->b, '[');
    for (size_t i = 0; i < n; i++)
        strbuf_printf(w->b, "%s%llu", i ? "," : "", (unsigned long long)ids[i]);
    strbuf_putc(w->b, ']');
}

/* ---- per-type encoders ---------------------------------------------------------------------------------------- */

static void enc_none(jw *w, const proto_msg *m) { (void)w, (void)m; }

static void enc_run_task(jw *w, const proto_msg *m)
{
    const proto_run_task *r = &m->u.run_task;
    jw_u64(w, "task_id", r->task_id);
    jw_str(w, "workspace_id", r->workspace_id);
    jw_str(w, "action", r->action ? r->action : "plan");
    jw_opt_str(w, "task_type", r->task_type);
}

static void enc_task_ref(jw *w, const proto_msg *m) { jw_u64(w, "task_id", m->u.task_ref.task_id); }

static void enc_refresh_credentials(jw *w, const proto_msg *m)
{
    jw_str(w, "pool_id", m->u.refresh_credentials.pool_id);
    jw_i64(w, "timestamp", m->u.refresh_credentials.timestamp);
}

/* An idle slot has no task: task_id, task_type and action are written as null (DESIGN §6). */
static void enc_slot(strbuf *b, const proto_slot *s)
{
    jw w = { b, true };
    strbuf_putc(b, '{');
    jw_i64(&w, "slot_id", s->slot_id);
    jw_str(&w, "status", s->status);
    if (s->task_id)
        jw_u64(&w, "task_id", s->task_id);
    else
        jw_key(&w, "task_id"), strbuf_puts(b, "null");
    if (s->task_type)
        jw_str(&w, "task_type", s->task_type);
    else
        jw_key(&w, "task_type"), strbuf_puts(b, "null");
    if (s->action)
        jw_str(&w, "action", s->action);
    else
        jw_key(&w, "action"), strbuf_puts(b, "null");
    jw_i64(&w, "since", s->since);
    strbuf_putc(b, '}');
}

static void enc_heartbeat(jw *w, const proto_msg *m)
{
    const proto_heartbeat *h = &m->u.heartbeat;
    jw_i64(w, "plan_running", h->plan_running);
    jw_i64(w, "plan_limit", h->plan_limit);
    jw_bool(w, "apply_running", h->apply_running);
    if (h->current_tasks_null)
        jw_key(w, "current_tasks"), strbuf_puts(w->b, "null");
    else
        jw_ids(w, "current_tasks", h->current_tasks, h->n_current_tasks);
    jw_double(w, "cpu_usage", h->cpu_usage);
    jw_double(w, "mem_usage", h->mem_usage);
    jw_str(w, "status", h->status);
    jw_i64(w, "timestamp", h->timestamp);
    if (h->has_slots) {
        jw_key(w, "slots");
        strbuf_putc(w->b, '[');
        for (size_t i = 0; i < h->n_slots; i++) {
            if (i)
                strbuf_putc(w->b, ',');
            enc_slot(w->b, &h->slots[i]);
        }
        strbuf_putc(w->b, ']');
    }
    jw_opt_str(w, "state", h->state);
    jw_opt_str(w, "agent_version", h->agent_version);
    if (h->n_capabilities) {
        jw_key(w, "capabilities");
        strbuf_putc(w->b, '[');
        for (size_t i = 0; i < h->n_capabilities; i++) {
            if (i)
                strbuf_putc(w->b, ',');
            put_string(w->b, h->capabilities[i]);
        }
        strbuf_putc(w->b, ']');
    }
}

static void enc_log_stream(jw *w, const proto_msg *m)
{
    const proto_log_stream *l = &m->u.log_stream;
    jw_u64(w, "task_id", l->task_id);
    jw_str(w, "type", l->type);
    jw_str(w, "line", l->line);
    jw_str(w, "timestamp", l->timestamp);
    jw_i64(w, "line_num", l->line_num);
    jw_str(w, "stage", l->stage);
    jw_str(w, "status", l->status);
}

static void enc_task_failed(jw *w, const proto_msg *m)
{
    jw_u64(w, "task_id", m->u.task_failed.task_id);
    jw_str(w, "error", m->u.task_failed.error);
}

static void enc_credentials_refreshed(jw *w, const proto_msg *m)
{
    const proto_credentials_refreshed *r = &m->u.credentials_refreshed;
    jw_str(w, "agent_id", r->agent_id);
    jw_str(w, "pool_id", r->pool_id);
    jw_i64(w, "timestamp", r->timestamp);
    jw_i64(w, "count", r->count);
}

static void enc_task_rejected(jw *w, const proto_msg *m)
{
    const proto_task_rejected *r = &m->u.task_rejected;
    jw_u64(w, "task_id", r->task_id);
    jw_str(w, "action", r->action);
    jw_str(w, "reason", r->reason);
}

static void enc_task_request(jw *w, const proto_msg *m)
{
    const proto_task_request *r = &m->u.task_request;
    jw_key(w, "free");
    strbuf_putc(w->b, '{');
    jw inner = { w->b, true };
    jw_i64(&inner, "plan_and_apply", r->free_plan_and_apply);
    jw_i64(&inner, "plan", r->free_plan);
    strbuf_putc(w->b, '}');
    jw_ids(w, "reserved", r->reserved, r->n_reserved);
}

/* ---- the table ------------------------------------------------------------------------------------------------ */

static const struct {
    const char *name;
    bool        payload_optional; /* a missing or null payload reads as {} */
    int (*decode)(pctx *c, const cJSON *payload, proto_msg *m);
    void (*encode)(jw *w, const proto_msg *m);
    void (*destroy)(proto_msg *m);
} proto_types[MSG__COUNT] = {
    [MSG_UNKNOWN] = { "unknown", false, dec_none, NULL, free_none },
    [MSG_RUN_TASK] = { "run_task", false, dec_run_task, enc_run_task, free_run_task },
    [MSG_CANCEL_TASK] = { "cancel_task", false, dec_task_ref, enc_task_ref, free_none },
    [MSG_REFRESH_CREDENTIALS] = { "refresh_credentials", false, dec_refresh_credentials, enc_refresh_credentials,
                                  free_refresh_credentials },
    [MSG_START_REALTIME_STREAM] = { "start_realtime_stream", false, dec_task_ref, enc_task_ref, free_none },
    [MSG_STOP_REALTIME_STREAM] = { "stop_realtime_stream", false, dec_task_ref, enc_task_ref, free_none },
    [MSG_RELEASE_RESERVATION] = { "release_reservation", false, dec_task_ref, enc_task_ref, free_none },
    [MSG_DRAIN] = { "drain", true, dec_none, enc_none, free_none },
    [MSG_UNDRAIN] = { "undrain", true, dec_none, enc_none, free_none },
    [MSG_HEARTBEAT] = { "heartbeat", false, dec_heartbeat, enc_heartbeat, free_heartbeat },
    [MSG_LOG_STREAM] = { "log_stream", false, dec_log_stream, enc_log_stream, free_log_stream },
    [MSG_TASK_COMPLETED] = { "task_completed", false, dec_task_ref, enc_task_ref, free_none },
    [MSG_TASK_FAILED] = { "task_failed", false, dec_task_failed, enc_task_failed, free_task_failed },
    [MSG_CREDENTIALS_REFRESHED] = { "credentials_refreshed", false, dec_credentials_refreshed,
                                    enc_credentials_refreshed, free_credentials_refreshed },
    [MSG_TASK_REJECTED] = { "task_rejected", false, dec_task_rejected, enc_task_rejected, free_task_rejected },
    [MSG_TASK_REQUEST] = { "task_request", false, dec_task_request, enc_task_request, free_task_request },
};

const char *proto_type_name(msg_type t)
{
    return (unsigned)t < MSG__COUNT ? proto_types[t].name : "unknown";
}

static msg_type proto_type_lookup(const char *name)
{
    for (int t = MSG_UNKNOWN + 1; t < MSG__COUNT; t++)
        if (strcmp(proto_types[t].name, name) == 0)
            return (msg_type)t;
    return MSG_UNKNOWN;
}

/* ---- public --------------------------------------------------------------------------------------------------- */

static int proto_errf(char *err, size_t errlen, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int proto_errf(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* The payload decoded from a parsed envelope into *m; a message in c on error. */
static int proto_decode_tree(const cJSON *root, proto_msg *m, char *err, size_t errlen)
{
    char tmp[160];
    const char *type;
    if (json_get_string(root, "type", true, &type, tmp, sizeof tmp) < 0)
        return proto_errf(err, errlen, PROTO_E_ENVELOPE, "frame: %s", tmp);
    m->type = proto_type_lookup(type);
    /* An unknown type name is not echoed: it is arbitrary peer input. */
    pctx c = { .msg = m->type == MSG_UNKNOWN ? "unknown type" : proto_types[m->type].name, .err = err,
               .errlen = errlen };
    const cJSON *payload = NULL;
    if (json_get_object(root, "payload", !proto_types[m->type].payload_optional, &payload, tmp, sizeof tmp) < 0)
        return p_fail(&c, PROTO_E_ENVELOPE, tmp);
    if (!(m->type_name = strdup(type)))
        return p_nomem(&c);
    return proto_types[m->type].decode(&c, payload, m);
}

int proto_decode(const char *frame, size_t len, proto_msg *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (err && errlen)
        err[0] = '\0';
    if (len > PROTO_MAX_FRAME)
        return proto_errf(err, errlen, PROTO_E_TOOBIG, "frame: %zu bytes is over the limit of %u", len,
                          PROTO_MAX_FRAME);
    if (!frame)
        len = 0;
    size_t bad = utf8_valid_prefix(frame, len);
    if (bad < len)
        return proto_errf(err, errlen, PROTO_E_JSON, "frame: not valid UTF-8 (byte %zu)", bad);

    char tmp[160];
    cJSON *root = json_parse_object(frame, len, tmp, sizeof tmp);
    if (!root)
        return proto_errf(err, errlen, PROTO_E_JSON, "frame: %s", tmp);
    proto_msg m = { 0 };
    int rc = proto_decode_tree(root, &m, err, errlen);
    cJSON_Delete(root);
    if (rc != PROTO_OK)
        proto_msg_free(&m);
    else
        *out = m;
    return rc;
}

char *proto_encode(const proto_msg *m, size_t *len)
{
    if (len)
        *len = 0;
    if (!m || (unsigned)m->type >= MSG__COUNT || !proto_types[m->type].encode)
        return NULL;
    strbuf b = STRBUF_INIT;
    strbuf_puts(&b, "{\"type\":\"");
    strbuf_puts(&b, proto_types[m->type].name);
    strbuf_puts(&b, "\",\"payload\":{");
    jw w = { &b, true };
    proto_types[m->type].encode(&w, m);
    strbuf_puts(&b, "}}");
    return strbuf_detach(&b, len);
}

void proto_msg_free(proto_msg *m)
{
    if (!m)
        return;
    if ((unsigned)m->type < MSG__COUNT)
        proto_types[m->type].destroy(m);
    free(m->type_name);
    memset(m, 0, sizeof *m);
}
