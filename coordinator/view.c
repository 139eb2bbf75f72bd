/* view.c — one pool as the coordinator sees it in one cycle; see view.h.
 *
 * Four parsers, one story each: check the document's shape member by member with common/json's strict getters,
 * build the result aside, and commit it only when the whole document was read — a bad document leaves nothing
 * half-written and says which field was wrong ("items[3].status.phase: expected a string, got number"). Messages
 * carry a path prefix in front of the getter's own text and never echo a string value (json.h's rule: a document
 * may carry something secret).
 *
 * Decisions the header leaves open:
 *   - Deployment: spec.replicas absent reads as 1 (Kubernetes' default), status.readyReplicas absent as 0 (it is
 *     omitted when zero); both must fit an int32. A parse error resets the Deployment fields (found false) and
 *     copies the message into deployment_error.
 *   - PodList: read whole (view_parse_pods) or a page at a time (view_parse_pod_page); both read items the same
 *     way and commit a whole list or a whole page, never part of one. A page's rows are appended with one
 *     realloc to the exact count, so the rows of a 1,000-pod pool never hold slack or a doubled buffer.
 *     "items": null reads as no pods (a Go nil slice); absent is an error. An item without metadata or
 *     without a name is skipped (header), but a name of the wrong type is an error. creationTimestamp is required
 *     (the API server always sets it: without it the startup timeout and the youngest-first rule mean nothing).
 *     A missing status.phase reads as "Pending" (what the API server defaults a new pod to). The deletion cost
 *     is an int32 in decimal, as Kubernetes parses it; anything else reads as absent.
 *   - /v1/status (agent/status.c status_write_json): agent_id, pool_id, state and connected are required, so are
 *     the slots (2..SLOTS_MAX, slot_id equal to the position, status, since); a running or reserved slot needs a
 *     task_id ≥ 1 and a task_type; action is "plan" or "apply" when given. Optional members are type-checked all
 *     the same. A refused body sets status_error to the message; the Kubernetes fields are never touched.
 *   - Demand: the three counts are required (a plane that serves the document writes all three; a misspelt key
 *     must not read as "no demand") and must be whole numbers from 0 to INT_MAX. The task list is kept in the
 *     plane's order, at most VIEW_MAX_WAITING entries (the counts carry the demand; the list is for explain). An
 *     error clears the demand and sets demand_error. */
#include "view.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iac/json.h"
#include "iac/strbuf.h"

#define VIEW_PATH_MAX 96

/* ---- errors and paths ---- */


/* Where a reader is in a document: every message starts with this prefix ("items[3].status."). */
typedef struct {
    char   where[VIEW_PATH_MAX];
    char  *err;
    size_t errlen;
} view_rd;

static void rd_at(view_rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void rd_at(view_rd *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->where, sizeof r->where, fmt, ap);
    va_end(ap);
}

static int rd_fail(const view_rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int rd_fail(const view_rd *r, const char *fmt, ...)
{
    char msg[VIEW_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    strbuf_fixed_printf(r->err, r->errlen, "%s%s", r->where, msg);
    return -1;
}

/* A getter's result: its message gets the reader's prefix. */
static int rd_got(const view_rd *r, int rc, const char *msg)
{
    if (rc < 0)
        rd_fail(r, "%s", msg);
    return rc;
}

static int rd_str(const view_rd *r, const cJSON *o, const char *key, bool req, const char **out)
{
    char msg[VIEW_ERR_MAX];
    return rd_got(r, json_get_string(o, key, req, out, msg, sizeof msg), msg);
}

static int rd_bool(const view_rd *r, const cJSON *o, const char *key, bool req, bool *out)
{
    char msg[VIEW_ERR_MAX];
    return rd_got(r, json_get_bool(o, key, req, out, msg, sizeof msg), msg);
}

static int rd_i64(const view_rd *r, const cJSON *o, const char *key, bool req, int64_t *out)
{
    char msg[VIEW_ERR_MAX];
    return rd_got(r, json_get_i64(o, key, req, out, msg, sizeof msg), msg);
}

static int rd_u64(const view_rd *r, const cJSON *o, const char *key, bool req, uint64_t *out)
{
    char msg[VIEW_ERR_MAX];
    return rd_got(r, json_get_u64(o, key, req, out, msg, sizeof msg), msg);
}

static int rd_obj(const view_rd *r, const cJSON *o, const char *key, bool req, const cJSON **out)
{
    char msg[VIEW_ERR_MAX];
    return rd_got(r, json_get_object(o, key, req, out, msg, sizeof msg), msg);
}

static int rd_arr(const view_rd *r, const cJSON *o, const char *key, bool req, const cJSON **out)
{
    char msg[VIEW_ERR_MAX];
    return rd_got(r, json_get_array(o, key, req, out, msg, sizeof msg), msg);
}

/* A whole number in [lo, hi] into an int; absent and optional leaves *out. */
static int rd_int(const view_rd *r, const cJSON *o, const char *key, bool req, int64_t lo, int64_t hi, int *out)
{
    int64_t v;
    int rc = rd_i64(r, o, key, req, &v);
    if (rc != 0)
        return rc;
    if (v < lo || v > hi)
        return rd_fail(r, "%s: expected a whole number from %lld to %lld, got %lld", key, (long long)lo,
                       (long long)hi, (long long)v);
    *out = (int)v;
    return 0;
}

/* The document itself must be an object (a NULL one too: the getters would read it as empty). */
static int rd_root(const view_rd *r, const cJSON *doc, const char *what)
{
    if (!cJSON_IsObject(doc))
        return rd_fail(r, "%s: expected an object", what);
    return 0;
}

/* Copies src into dst (cap bytes), cut at a UTF-8 character boundary when too long. */
static void view_copy(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap);
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--; /* src[n] would be the first byte cut: back off to the start of its character */
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* ---- RFC 3339 ---- */

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* "2024-05-01T12:00:00Z", with an optional fraction and a Z or ±hh:mm offset (RFC 3339 §5.6; 'T' and 'Z' in
 * either case) → epoch milliseconds. Fractions beyond milliseconds are cut. */
static int parse_rfc3339(const char *s, int64_t *out_ms)
{
    static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int y, mo, d, h, mi, sec, frac_ms = 0, off_min = 0;

    if (strlen(s) < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &h) || s[13] != ':' ||
        !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap(y)) || h > 23 || mi > 59 || sec > 59)
        return -1;
    const char *p = s + 19;
    if (*p == '.') {
        int n = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, n++)
            if (n < 3)
                frac_ms = frac_ms * 10 + (*p - '0');
        if (n == 0)
            return -1;
        for (; n < 3; n++)
            frac_ms *= 10;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return -1;
        off_min = (oh * 60 + om) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - (int64_t)off_min * 60;
    *out_ms = secs * 1000 + frac_ms;
    return 0;
}

static int rd_time(const view_rd *r, const cJSON *o, const char *key, bool req, bool *present, int64_t *out_ms)
{
    const char *s = NULL;
    int rc = rd_str(r, o, key, req, &s);
    *present = rc == 0;
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    if (parse_rfc3339(s, out_ms) < 0)
        return rd_fail(r, "%s: not an RFC 3339 time", key);
    return 0;
}

/* Kubernetes reads the deletion cost as a decimal int32 (strconv.ParseInt(s, 10, 32)). */
static bool parse_cost(const char *s, int64_t *out)
{
    const char *p = s + (*s == '+' || *s == '-');
    int64_t v = 0;
    if (*p == '\0')
        return false;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (*p - '0');
        if (v > (int64_t)INT32_MAX + 1)
            return false;
    }
    v = *s == '-' ? -v : v;
    if (v > INT32_MAX || v < INT32_MIN)
        return false;
    *out = v;
    return true;
}

/* ---- the pool ---- */

void view_pod_free(view_pod *p)
{
    if (!p)
        return;
    free(p->slots_ext);
    memset(p, 0, sizeof *p);
}

static void free_rows(view_pod *pods, int n)
{
    for (int i = 0; pods && i < n; i++)
        free(pods[i].slots_ext);
    free(pods);
}

void view_pool_free_pods(view_pool *v)
{
    if (!v)
        return;
    free_rows(v->pods, v->npods);
    v->pods = NULL;
    v->npods = 0;
}

void view_pool_free(view_pool *v)
{
    if (!v)
        return;
    view_pool_free_pods(v);
    free(v->waiting);
    memset(v, 0, sizeof *v);
}

/* ---- Deployment ---- */

/* spec.selector.matchLabels as "a=b,c=d"; matchExpressions refused. */
static int read_selector(view_rd *r, const cJSON *spec, char *out, size_t cap)
{
    const cJSON *sel = NULL, *labels = NULL, *exprs = NULL, *kv;
    size_t len = 0;

    rd_at(r, "spec.");
    if (rd_obj(r, spec, "selector", true, &sel) < 0)
        return -1;
    rd_at(r, "spec.selector.");
    if (rd_arr(r, sel, "matchExpressions", false, &exprs) < 0)
        return -1;
    if (exprs && cJSON_GetArraySize(exprs) > 0)
        return rd_fail(r, "matchExpressions: not supported (select the pool's pods with matchLabels only)");
    if (rd_obj(r, sel, "matchLabels", true, &labels) < 0)
        return -1;
    if (!labels->child)
        return rd_fail(r, "matchLabels: empty (it would select every pod of the namespace)");
    rd_at(r, "spec.selector.matchLabels.");
    out[0] = '\0';
    cJSON_ArrayForEach(kv, labels)
    {
        if (!kv->string || !cJSON_IsString(kv) || !kv->valuestring)
            return rd_fail(r, "%s: expected a string", kv->string ? kv->string : "");
        int n = snprintf(out + len, cap - len, "%s%s=%s", len ? "," : "", kv->string, kv->valuestring);
        if (n < 0 || (size_t)n >= cap - len) {
            rd_at(r, "spec.selector.");
            return rd_fail(r, "matchLabels: longer than %zu characters as a label selector", cap - 1);
        }
        len += (size_t)n;
    }
    return 0;
}

int view_parse_deployment(const cJSON *deploy, view_pool *v, char *err, size_t errlen)
{
    view_rd r = { .err = err, .errlen = errlen };
    const cJSON *spec = NULL, *status = NULL;
    int replicas = 1, ready = 0;
    char selector[sizeof v->selector];

    if (rd_root(&r, deploy, "deployment") < 0 || rd_obj(&r, deploy, "spec", true, &spec) < 0)
        goto fail;
    rd_at(&r, "spec.");
    if (rd_int(&r, spec, "replicas", false, 0, INT32_MAX, &replicas) < 0 || read_selector(&r, spec, selector,
                                                                                         sizeof selector) < 0)
        goto fail;
    rd_at(&r, "%s", "");
    if (rd_obj(&r, deploy, "status", false, &status) < 0)
        goto fail;
    rd_at(&r, "status.");
    if (rd_int(&r, status, "readyReplicas", false, 0, INT32_MAX, &ready) < 0)
        goto fail;

    v->deployment_found = true;
    v->deployment_error[0] = '\0';
    v->replicas = replicas;
    v->ready_replicas = ready;
    memcpy(v->selector, selector, sizeof selector);
    return 0;
fail:
    v->deployment_found = false;
    v->replicas = v->ready_replicas = 0;
    v->selector[0] = '\0';
    view_copy(v->deployment_error, sizeof v->deployment_error, err && errlen ? err : "invalid deployment");
    return -1;
}

/* ---- PodList ---- */

/* The Ready condition of status.conditions. */
static int read_conditions(view_rd *r, const cJSON *status, int item, bool *ready)
{
    const cJSON *conds = NULL, *c;
    int k = 0;

    if (rd_arr(r, status, "conditions", false, &conds) < 0)
        return -1;
    cJSON_ArrayForEach(c, conds)
    {
        const char *type, *value;
        rd_at(r, "items[%d].status.conditions[%d]", item, k);
        if (rd_root(r, c, "") < 0)
            return -1;
        rd_at(r, "items[%d].status.conditions[%d].", item, k++);
        if (rd_str(r, c, "type", true, &type) < 0 || rd_str(r, c, "status", true, &value) < 0)
            return -1;
        if (strcmp(type, "Ready") == 0)
            *ready = strcmp(value, "True") == 0;
    }
    return 0;
}

/* One item into p. 1: skipped (not an object, no metadata, no name); 0: read; -1: a field is wrong. */
static int read_pod(view_rd *r, const cJSON *item, int i, view_pod *p)
{
    const cJSON *meta, *annotations = NULL, *status = NULL;
    const char *name = NULL, *phase = NULL, *ip = NULL, *cost = NULL;
    bool present;
    int64_t deleted_ms;

    if (!cJSON_IsObject(item))
        return 1;
    meta = cJSON_GetObjectItemCaseSensitive(item, "metadata");
    if (!cJSON_IsObject(meta))
        return 1;
    rd_at(r, "items[%d].metadata.", i);
    if (rd_str(r, meta, "name", false, &name) < 0)
        return -1;
    if (!name || !*name)
        return 1;
    memset(p, 0, sizeof *p);
    view_copy(p->name, sizeof p->name, name);
    if (rd_time(r, meta, "creationTimestamp", true, &present, &p->created_ms) < 0 ||
        rd_time(r, meta, "deletionTimestamp", false, &p->terminating, &deleted_ms) < 0 ||
        rd_obj(r, meta, "annotations", false, &annotations) < 0)
        return -1;
    rd_at(r, "items[%d].metadata.annotations.", i);
    if (rd_str(r, annotations, VIEW_DELETION_COST, false, &cost) < 0)
        return -1;
    p->has_cost = cost && parse_cost(cost, &p->deletion_cost);

    rd_at(r, "items[%d].", i);
    if (rd_obj(r, item, "status", false, &status) < 0)
        return -1;
    rd_at(r, "items[%d].status.", i);
    if (rd_str(r, status, "phase", false, &phase) < 0 || rd_str(r, status, "podIP", false, &ip) < 0 ||
        read_conditions(r, status, i, &p->ready) < 0)
        return -1;
    view_copy(p->phase, sizeof p->phase, phase && *phase ? phase : "Pending");
    view_copy(p->ip, sizeof p->ip, ip ? ip : "");
    return 0;
}

/* The items of a PodList into a new array of rows (*out, NULL when none; *nout rows), for a view that holds `have`
 * pods already. 0, or -1 with nothing allocated. */
static int read_items(view_rd *r, const cJSON *list, int have, view_pod **out, int *nout)
{
    const cJSON *items = NULL, *item;
    view_pod *pods = NULL;
    int n = 0, i = 0;

    *out = NULL;
    *nout = 0;
    if (rd_root(r, list, "pod list") < 0)
        return -1;
    if (!cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(list, "items")) && rd_arr(r, list, "items", true, &items) < 0)
        return -1;
    int count = items ? cJSON_GetArraySize(items) : 0;
    if (count > VIEW_MAX_PODS - have) {
        if (have == 0)
            return rd_fail(r, "items: %d pods, more than the %d a pool may have", count, VIEW_MAX_PODS);
        return rd_fail(r, "items: %d more pods after %d, more than the %d a pool may have", count, have,
                       VIEW_MAX_PODS);
    }
    if (count > 0 && !(pods = calloc((size_t)count, sizeof *pods)))
        return rd_fail(r, "items: out of memory");
    cJSON_ArrayForEach(item, items)
    {
        int rc = read_pod(r, item, i++, &pods[n]);
        if (rc < 0) {
            free(pods);
            return -1;
        }
        n += rc == 0;
    }
    *out = pods;
    *nout = n;
    return 0;
}

int view_parse_pods(const cJSON *list, view_pool *v, char *err, size_t errlen)
{
    view_rd r = { .err = err, .errlen = errlen };
    view_pod *pods;
    int n;

    if (read_items(&r, list, 0, &pods, &n) < 0)
        return -1;
    view_pool_free_pods(v);
    v->pods = pods;
    v->npods = n;
    return 0;
}

int view_parse_pod_page(const cJSON *page, view_pool *v, char *cont, size_t cont_len, char *err, size_t errlen)
{
    view_rd r = { .err = err, .errlen = errlen };
    const cJSON *meta = NULL;
    const char *token = NULL;
    view_pod *pods;
    int n;

    if (rd_root(&r, page, "pod list") < 0 || rd_obj(&r, page, "metadata", false, &meta) < 0)
        return -1;
    rd_at(&r, "metadata.");
    if (rd_str(&r, meta, "continue", false, &token) < 0)
        return -1;
    if (token && strlen(token) >= cont_len)
        return rd_fail(&r, "continue: a token of %zu bytes, more than the %zu kept", strlen(token), cont_len - 1);
    rd_at(&r, "%s", "");
    if (read_items(&r, page, v->npods, &pods, &n) < 0)
        return -1;
    if (n > 0) {
        view_pod *all = realloc(v->pods, (size_t)(v->npods + n) * sizeof *all);
        if (!all) {
            free(pods);
            return rd_fail(&r, "items: out of memory");
        }
        memcpy(all + v->npods, pods, (size_t)n * sizeof *all);
        v->pods = all;
        v->npods += n;
    }
    free(pods);
    memcpy(cont, token ? token : "", token ? strlen(token) + 1 : 1);
    return 0;
}

/* ---- the agent's /v1/status ---- */

static int read_slot_status(const view_rd *r, const cJSON *s, slot_status *out)
{
    static const slot_status all[] = { SLOT_IDLE, SLOT_RUNNING, SLOT_RESERVED };
    const char *name;
    if (rd_str(r, s, "status", true, &name) < 0)
        return -1;
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
        if (strcmp(name, slots_status_name(all[k])) == 0) {
            *out = all[k];
            return 0;
        }
    return rd_fail(r, "status: not one of idle, running, reserved");
}

static int read_slot(view_rd *r, const cJSON *s, int i, view_slot *out)
{
    uint64_t id, task = 0;
    int64_t since;
    const char *type = NULL, *action = NULL;

    rd_at(r, "slots[%d]", i);
    if (rd_root(r, s, "") < 0)
        return -1;
    rd_at(r, "slots[%d].", i);
    if (rd_u64(r, s, "slot_id", true, &id) < 0 || read_slot_status(r, s, &out->status) < 0 ||
        rd_i64(r, s, "since", true, &since) < 0 || rd_u64(r, s, "task_id", false, &task) < 0 ||
        rd_str(r, s, "task_type", false, &type) < 0 || rd_str(r, s, "action", false, &action) < 0)
        return -1;
    if (id != (uint64_t)i)
        return rd_fail(r, "slot_id: expected %d (slots are listed in order), got %llu", i, (unsigned long long)id);
    out->since_ms = since * 1000; /* |since| ≤ 2^53: the product fits */
    if (action && strcmp(action, "plan") != 0 && strcmp(action, "apply") != 0)
        return rd_fail(r, "action: not one of plan, apply");
    if (out->status == SLOT_IDLE)
        return 0; /* an idle slot holds nothing, whatever else it says */
    if (task == 0)
        return rd_fail(r, "task_id: a %s slot needs a task id from 1", slots_status_name(out->status));
    if (!type)
        return rd_fail(r, "task_type: required for a %s slot", slots_status_name(out->status));
    if (slots_type_parse(type, &out->type) < 0)
        return rd_fail(r, "task_type: not one of plan, plan_and_apply, drift_check");
    out->task_id = task;
    out->apply = action && strcmp(action, "apply") == 0;
    return 0;
}

/* The agent's fields into a, its slots into out (room for SLOTS_MAX; a->nslots of them). */
static int read_agent(view_rd *r, const cJSON *st, view_pod *a, view_slot *out)
{
    const char *id, *pool, *state, *ignored;
    const cJSON *slots = NULL, *s;
    bool flag;
    int64_t started;
    int i = 0;

    if (rd_root(r, st, "status") < 0 || rd_str(r, st, "agent_id", true, &id) < 0 ||
        rd_str(r, st, "pool_id", true, &pool) < 0 || rd_str(r, st, "state", true, &state) < 0 ||
        rd_bool(r, st, "connected", true, &a->connected) < 0 || rd_arr(r, st, "slots", true, &slots) < 0)
        return -1;
    /* Not used, but a body whose members have the wrong types is not the agent's. */
    if (rd_str(r, st, "name", false, &ignored) < 0 || rd_str(r, st, "version", false, &ignored) < 0 ||
        rd_str(r, st, "phase", false, &ignored) < 0 || rd_bool(r, st, "registered", false, &flag) < 0 ||
        rd_bool(r, st, "ready", false, &flag) < 0 || rd_i64(r, st, "started_at", false, &started) < 0)
        return -1;
    if (strcmp(state, "ready") != 0 && strcmp(state, "draining") != 0)
        return rd_fail(r, "state: not one of ready, draining");
    a->draining = strcmp(state, "draining") == 0;
    view_copy(a->agent_id, sizeof a->agent_id, id);
    view_copy(a->agent_pool, sizeof a->agent_pool, pool);
    int n = cJSON_GetArraySize(slots);
    if (n < SLOTS_MIN || n > SLOTS_MAX)
        return rd_fail(r, "slots: expected %d to %d slots, got %d", SLOTS_MIN, SLOTS_MAX, n);
    cJSON_ArrayForEach(s, slots)
    {
        if (read_slot(r, s, i, &out[i]) < 0)
            return -1;
        i++;
    }
    a->nslots = n;
    return 0;
}

int view_parse_agent_status(const cJSON *status, view_pod *pod, char *err, size_t errlen)
{
    view_rd r = { .err = err, .errlen = errlen };
    view_pod a;
    view_slot slots[SLOTS_MAX];
    view_slot *ext = NULL;

    memset(&a, 0, sizeof a);
    memset(slots, 0, sizeof slots);
    int rc = read_agent(&r, status, &a, slots);
    if (rc == 0 && a.nslots > VIEW_SLOTS_INLINE && !(ext = malloc((size_t)a.nslots * sizeof *ext)))
        rc = rd_fail(&r, "slots: out of memory");
    if (rc < 0) {
        pod->has_status = false;
        view_copy(pod->status_error, sizeof pod->status_error, err && errlen ? err : "invalid /v1/status");
        return -1;
    }
    free(pod->slots_ext);
    pod->slots_ext = ext;
    if (ext)
        memcpy(ext, slots, (size_t)a.nslots * sizeof *ext);
    else
        memcpy(pod->slots, slots, sizeof pod->slots);
    pod->has_status = true;
    pod->status_error[0] = '\0';
    memcpy(pod->agent_id, a.agent_id, sizeof pod->agent_id);
    memcpy(pod->agent_pool, a.agent_pool, sizeof pod->agent_pool);
    pod->draining = a.draining;
    pod->connected = a.connected;
    pod->nslots = a.nslots;
    return 0;
}

/* ---- demand ---- */

/* The counts of the demand document, by key. */
static const struct {
    const char *key;
    size_t      offset;
} demand_counts[] = {
    { "plan_and_apply", offsetof(scaler_demand, plan_and_apply) },
    { "plan", offsetof(scaler_demand, plan) },
    { "drift_check", offsetof(scaler_demand, drift_check) },
};

static int read_waiting(view_rd *r, const char *pool, const cJSON *entry, view_waiting **out, int *nout)
{
    const cJSON *tasks = NULL, *t;
    int i = 0, n = 0;

    if (rd_arr(r, entry, "tasks", false, &tasks) < 0)
        return -1;
    int count = tasks ? cJSON_GetArraySize(tasks) : 0;
    if (count > VIEW_MAX_WAITING)
        count = VIEW_MAX_WAITING;
    if (count > 0 && !(*out = calloc((size_t)count, sizeof **out)))
        return rd_fail(r, "tasks: out of memory");
    cJSON_ArrayForEach(t, tasks)
    {
        if (n == count)
            break;
        view_waiting *w = &(*out)[n];
        const char *type;
        int64_t since = 0;
        rd_at(r, "pools.%s.tasks[%d]", pool, i);
        if (rd_root(r, t, "") < 0)
            return -1;
        rd_at(r, "pools.%s.tasks[%d].", pool, i++);
        if (rd_u64(r, t, "task_id", true, &w->task_id) < 0 || rd_str(r, t, "task_type", true, &type) < 0 ||
            rd_i64(r, t, "waiting_since", false, &since) < 0)
            return -1;
        if (w->task_id == 0)
            return rd_fail(r, "task_id: expected a task id from 1");
        if (slots_type_parse(type, &w->type) < 0)
            return rd_fail(r, "task_type: not one of plan, plan_and_apply, drift_check");
        w->waiting_since_ms = since * 1000;
        n++;
    }
    *nout = n;
    return 0;
}

int view_parse_demand(const cJSON *doc, const char *pool, view_pool *v, char *err, size_t errlen)
{
    view_rd r = { .err = err, .errlen = errlen };
    const cJSON *pools = NULL, *entry = NULL;
    scaler_demand d = { 0, 0, 0 };
    view_waiting *waiting = NULL;
    int nwaiting = 0;

    if (!pool)
        pool = "";
    if (rd_root(&r, doc, "demand") < 0 || rd_obj(&r, doc, "pools", true, &pools) < 0)
        goto fail;
    rd_at(&r, "pools.");
    if (rd_obj(&r, pools, pool, false, &entry) < 0)
        goto fail;
    if (entry) {
        rd_at(&r, "pools.%s.", pool);
        for (size_t k = 0; k < sizeof demand_counts / sizeof demand_counts[0]; k++)
            if (rd_int(&r, entry, demand_counts[k].key, true, 0, INT_MAX,
                       (int *)((char *)&d + demand_counts[k].offset)) < 0)
                goto fail;
        if (read_waiting(&r, pool, entry, &waiting, &nwaiting) < 0)
            goto fail;
    }
    free(v->waiting);
    v->demand_ok = true;
    v->demand_error[0] = '\0';
    v->demand = d;
    v->waiting = waiting;
    v->nwaiting = nwaiting;
    return 0;
fail:
    free(waiting);
    free(v->waiting);
    v->waiting = NULL;
    v->nwaiting = 0;
    v->demand_ok = false;
    v->demand = (scaler_demand){ 0, 0, 0 };
    view_copy(v->demand_error, sizeof v->demand_error, err && errlen ? err : "invalid demand document");
    return -1;
}

/* ---- to the scaler ---- */

/* Phases in which a pod that is not Ready yet is on its way to being capacity. Failed and Succeeded pods are
 * finished, Unknown ones lost: neither counts. */
static const char *const coming_phases[] = { "Pending", "Running" };

static bool phase_coming(const char *phase)
{
    for (size_t k = 0; k < sizeof coming_phases / sizeof coming_phases[0]; k++)
        if (strcmp(phase, coming_phases[k]) == 0)
            return true;
    return false;
}

void view_to_scaler_pod(const view_pod *p, scaler_pod *out, int64_t now_ms)
{
    memset(out, 0, sizeof *out);
    out->name = p->name;
    out->created_ms = p->created_ms;
    out->ready = p->ready && !p->terminating;
    out->starting = !p->ready && !p->terminating && phase_coming(p->phase);
    out->draining = p->terminating || (p->has_status && p->draining);
    out->has_status = p->has_status && p->nslots > 0;
    out->slot0 = SLOT_IDLE;
    if (!out->has_status)
        return;
    const view_slot *slots = view_pod_slots(p), *s0 = &slots[0];
    out->slot0 = s0->status;
    if (s0->status == SLOT_RESERVED) {
        out->reserved_task_id = s0->task_id;
        out->reserved_age_ms = now_ms > s0->since_ms ? now_ms - s0->since_ms : 0;
    }
    for (int i = 1; i < p->nslots; i++) {
        if (slots[i].status == SLOT_IDLE)
            out->plan_idle++;
        else
            out->plan_busy++;
    }
}

int view_find_task(const view_pool *v, uint64_t task_id, int *slot_out)
{
    int pod = -1, slot = -1;

    if (task_id == 0)
        return -1;
    for (int i = 0; i < v->npods; i++) {
        const view_pod *p = &v->pods[i];
        const view_slot *slots = view_pod_slots(p);
        for (int k = 0; p->has_status && k < p->nslots; k++) {
            if (slots[k].status == SLOT_IDLE || slots[k].task_id != task_id)
                continue;
            /* A running slot is where the task is; a reservation elsewhere is one its pod has not let go of yet
             * (an upstream plane gave the apply to another pod): it only counts when nothing runs the task. */
            if (slots[k].status == SLOT_RUNNING) {
                if (slot_out)
                    *slot_out = k;
                return i;
            }
            if (pod < 0) {
                pod = i;
                slot = k;
            }
        }
    }
    if (pod >= 0 && slot_out)
        *slot_out = slot;
    return pod;
}
