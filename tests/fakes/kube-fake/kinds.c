/* kinds.c — validation and defaults per kind (see kinds.h).
 *
 * Each kind has one validator in the rules table; they share small checkers that name the field and what was
 * wrong. Only what kube-fake's clients and pods rely on is checked: the fake must refuse what a cluster refuses
 * where a test could notice, not replicate every rule of the API server. */
#include "kinds.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iac/digest.h"
#include "selector.h"
#include "store.h"

/* ---- checkers ---- */

/* A field path ("spec.template.spec.containers[0].env[2].name"), cut short if it ever were too long. */
static void fpath(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fpath(char *out, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, n, fmt, ap);
    va_end(ap);
}

static int fail(kind_error *e, kstatus_reason r, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(kind_error *e, kstatus_reason r, const char *field, const char *fmt, ...)
{
    va_list ap;
    e->reason = r;
    snprintf(e->field, sizeof e->field, "%s", field);
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *json_type(const cJSON *v)
{
    return cJSON_IsString(v) ? "string" : cJSON_IsNumber(v) ? "number" : cJSON_IsBool(v) ? "bool"
         : cJSON_IsArray(v) ? "array" : cJSON_IsObject(v) ? "object" : cJSON_IsNull(v) ? "null" : "?";
}

enum { T_STR = 1, T_INT = 2, T_OBJ = 4, T_ARR = 8, T_BOOL = 16, T_NULL = 32 };

/* v (at field) absent or of one of the types in mask; a whole number for T_INT. */
static int want(const cJSON *v, int mask, const char *field, kind_error *e)
{
    if (!v)
        return 0;
    bool ok = ((mask & T_STR) && cJSON_IsString(v)) || ((mask & T_OBJ) && cJSON_IsObject(v)) ||
              ((mask & T_ARR) && cJSON_IsArray(v)) || ((mask & T_BOOL) && cJSON_IsBool(v)) ||
              ((mask & T_NULL) && cJSON_IsNull(v)) ||
              ((mask & T_INT) && cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) &&
               fabs(v->valuedouble) <= 2147483647.0);
    if (ok)
        return 0;
    const char *w = (mask & T_INT) ? "a whole number" : (mask & T_STR) ? "a string" : (mask & T_OBJ) ? "an object"
                  : (mask & T_ARR) ? "an array" : "a bool";
    return fail(e, KS_BAD_REQUEST, field, "%s: expected %s, got %s", field, w, json_type(v));
}

static const cJSON *get(const cJSON *o, const char *key)
{
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

/* An object whose values are all strings (labels, annotations, matchLabels, secret data). */
static int want_string_map(const cJSON *v, const char *field, kind_error *e)
{
    if (want(v, T_OBJ | T_NULL, field, e) < 0)
        return -1;
    const cJSON *it, *map = cJSON_IsObject(v) ? v : NULL;
    cJSON_ArrayForEach(it, map)
    {
        if (!cJSON_IsString(it)) {
            char f[128];
            fpath(f, sizeof f, "%s.%s", field, it->string);
            return fail(e, KS_BAD_REQUEST, f, "%s: expected a string, got %s", f, json_type(it));
        }
    }
    return 0;
}

static bool dns_chars(const char *s, size_t max, bool dots)
{
    size_t n = strlen(s);
    if (n == 0 || n > max || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || (dots && *s == '.')))
            return false;
    return true;
}

bool kinds_dns_subdomain(const char *s) { return dns_chars(s, 253, true); }
bool kinds_dns_label(const char *s) { return dns_chars(s, 63, false); }

static int check_metadata(cJSON *doc, kind_error *e)
{
    const cJSON *m = get(doc, "metadata");
    if (want(m, T_OBJ, "metadata", e) < 0)
        return -1;
    const cJSON *name = get(m, "name");
    if (want(name, T_STR, "metadata.name", e) < 0 || want(get(m, "generateName"), T_STR, "metadata.generateName", e) < 0 ||
        want(get(m, "namespace"), T_STR, "metadata.namespace", e) < 0 ||
        want(get(m, "resourceVersion"), T_STR, "metadata.resourceVersion", e) < 0 ||
        want_string_map(get(m, "labels"), "metadata.labels", e) < 0 ||
        want_string_map(get(m, "annotations"), "metadata.annotations", e) < 0 ||
        want(get(m, "ownerReferences"), T_ARR, "metadata.ownerReferences", e) < 0)
        return -1;
    if (cJSON_IsString(name) && *name->valuestring && !kinds_dns_subdomain(name->valuestring))
        return fail(e, KS_INVALID, "metadata.name",
                    "metadata.name: Invalid value: \"%.253s\": a lowercase RFC 1123 subdomain must consist of lower "
                    "case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
                    name->valuestring);
    return 0;
}

/* ---- pods and templates ---- */

static int check_container(const cJSON *c, const char *field, kind_error *e)
{
    char f[160];
    if (want(c, T_OBJ, field, e) < 0)
        return -1;
    const cJSON *name = get(c, "name");
    fpath(f, sizeof f, "%s.name", field);
    if (want(name, T_STR, f, e) < 0)
        return -1;
    if (!cJSON_IsString(name) || !kinds_dns_label(name->valuestring))
        return fail(e, KS_INVALID, f, "%s: Required value: a container needs a DNS-1123 label as its name", f);
    static const struct {
        const char *key;
        int         mask;
    } members[] = { { "image", T_STR }, { "command", T_ARR }, { "args", T_ARR }, { "env", T_ARR },
                    { "ports", T_ARR }, { "readinessProbe", T_OBJ }, { "livenessProbe", T_OBJ },
                    { "workingDir", T_STR } };
    for (size_t i = 0; i < sizeof members / sizeof members[0]; i++) {
        fpath(f, sizeof f, "%s.%s", field, members[i].key);
        if (want(get(c, members[i].key), members[i].mask, f, e) < 0)
            return -1;
    }
    static const char *const lists[] = { "command", "args" };
    for (size_t l = 0; l < 2; l++) {
        const cJSON *it;
        int i = 0;
        cJSON_ArrayForEach(it, get(c, lists[l]))
        {
            fpath(f, sizeof f, "%s.%s[%d]", field, lists[l], i++);
            if (want(it, T_STR, f, e) < 0)
                return -1;
        }
    }
    const cJSON *var;
    int i = 0;
    cJSON_ArrayForEach(var, get(c, "env"))
    {
        fpath(f, sizeof f, "%s.env[%d]", field, i++);
        if (want(var, T_OBJ, f, e) < 0)
            return -1;
        char g[200];
        fpath(g, sizeof g, "%s.name", f);
        const cJSON *n = get(var, "name");
        if (want(n, T_STR, g, e) < 0)
            return -1;
        if (!cJSON_IsString(n) || !*n->valuestring)
            return fail(e, KS_INVALID, g, "%s: Required value", g);
        fpath(g, sizeof g, "%s.value", f);
        if (want(get(var, "value"), T_STR, g, e) < 0)
            return -1;
        fpath(g, sizeof g, "%s.valueFrom", f);
        if (want(get(var, "valueFrom"), T_OBJ, g, e) < 0)
            return -1;
    }
    const cJSON *port;
    i = 0;
    cJSON_ArrayForEach(port, get(c, "ports"))
    {
        fpath(f, sizeof f, "%s.ports[%d]", field, i++);
        char g[200];
        fpath(g, sizeof g, "%s.containerPort", f);
        const cJSON *cp = get(port, "containerPort");
        if (want(port, T_OBJ, f, e) < 0 || want(cp, T_INT, g, e) < 0)
            return -1;
        if (!cJSON_IsNumber(cp) || cp->valuedouble < 1 || cp->valuedouble > 65535)
            return fail(e, KS_INVALID, g, "%s: Invalid value: must be between 1 and 65535, inclusive", g);
        fpath(g, sizeof g, "%s.name", f);
        if (want(get(port, "name"), T_STR, g, e) < 0)
            return -1;
    }
    return 0;
}

static int check_pod_spec(const cJSON *spec, const char *field, kind_error *e)
{
    char f[128];
    if (want(spec, T_OBJ, field, e) < 0)
        return -1;
    fpath(f, sizeof f, "%s.containers", field);
    const cJSON *cs = get(spec, "containers");
    if (want(cs, T_ARR, f, e) < 0)
        return -1;
    if (cJSON_GetArraySize(cs) == 0)
        return fail(e, KS_INVALID, f, "%s: Required value", f);
    const cJSON *c;
    int i = 0;
    cJSON_ArrayForEach(c, cs)
    {
        char g[160];
        fpath(g, sizeof g, "%s[%d]", f, i++);
        if (check_container(c, g, e) < 0)
            return -1;
    }
    fpath(f, sizeof f, "%s.terminationGracePeriodSeconds", field);
    const cJSON *g = get(spec, "terminationGracePeriodSeconds");
    if (want(g, T_INT, f, e) < 0)
        return -1;
    if (g && g->valuedouble < 0)
        return fail(e, KS_INVALID, f, "%s: Invalid value: %g: must be greater than or equal to 0", f, g->valuedouble);
    fpath(f, sizeof f, "%s.restartPolicy", field);
    return want(get(spec, "restartPolicy"), T_STR, f, e);
}

static int v_pod(cJSON *doc, kind_error *e)
{
    const cJSON *spec = get(doc, "spec");
    if (!spec)
        return fail(e, KS_INVALID, "spec", "spec: Required value");
    return check_pod_spec(spec, "spec", e);
}

/* ---- deployments ---- */

static int v_deployment(cJSON *doc, kind_error *e)
{
    cJSON *spec = cJSON_GetObjectItemCaseSensitive(doc, "spec");
    if (want(spec, T_OBJ, "spec", e) < 0)
        return -1;
    if (!spec)
        return fail(e, KS_INVALID, "spec.selector", "spec.selector: Required value");
    const cJSON *replicas = get(spec, "replicas");
    if (want(replicas, T_INT, "spec.replicas", e) < 0)
        return -1;
    if (replicas && replicas->valuedouble < 0)
        return fail(e, KS_INVALID, "spec.replicas", "spec.replicas: Invalid value: %g: must be greater than or equal "
                    "to 0", replicas->valuedouble);
    if (!replicas)
        cJSON_AddNumberToObject(spec, "replicas", 1);
    const cJSON *sel = get(spec, "selector");
    if (want(sel, T_OBJ, "spec.selector", e) < 0)
        return -1;
    const cJSON *ml = get(sel, "matchLabels");
    if (want_string_map(ml, "spec.selector.matchLabels", e) < 0)
        return -1;
    if (get(sel, "matchExpressions"))
        return fail(e, KS_INVALID, "spec.selector.matchExpressions",
                    "spec.selector.matchExpressions: Unsupported value: kube-fake takes matchLabels only");
    if (cJSON_GetArraySize(ml) == 0)
        return fail(e, KS_INVALID, "spec.selector", "spec.selector: Invalid value: empty selector is invalid for "
                    "deployment");
    const cJSON *tmpl = get(spec, "template");
    if (want(tmpl, T_OBJ, "spec.template", e) < 0 || want(get(tmpl, "metadata"), T_OBJ, "spec.template.metadata", e) < 0 ||
        want_string_map(get(get(tmpl, "metadata"), "labels"), "spec.template.metadata.labels", e) < 0 ||
        want_string_map(get(get(tmpl, "metadata"), "annotations"), "spec.template.metadata.annotations", e) < 0)
        return -1;
    if (!tmpl)
        return fail(e, KS_INVALID, "spec.template", "spec.template: Required value");
    const cJSON *labels = get(get(tmpl, "metadata"), "labels"), *it;
    cJSON_ArrayForEach(it, ml)
    {
        const cJSON *l = get(labels, it->string);
        if (!cJSON_IsString(l) || strcmp(l->valuestring, it->valuestring) != 0)
            return fail(e, KS_INVALID, "spec.template.metadata.labels",
                        "spec.template.metadata.labels: Invalid value: `selector` does not match template `labels`");
    }
    return check_pod_spec(get(tmpl, "spec"), "spec.template.spec", e);
}

/* ---- secrets ---- */

static int v_secret(cJSON *doc, kind_error *e)
{
    cJSON *data = cJSON_GetObjectItemCaseSensitive(doc, "data");
    const cJSON *sd = get(doc, "stringData"), *it;
    if (want_string_map(data, "data", e) < 0 || want_string_map(sd, "stringData", e) < 0 ||
        want(get(doc, "type"), T_STR, "type", e) < 0 || want(get(doc, "immutable"), T_BOOL, "immutable", e) < 0)
        return -1;
    cJSON_ArrayForEach(it, data)
    {
        uint8_t *raw;
        size_t len;
        if (digest_base64_decode(it->valuestring, strlen(it->valuestring), &raw, &len) < 0) {
            char f[128];
            fpath(f, sizeof f, "data.%s", it->string);
            return fail(e, KS_BAD_REQUEST, f, "%s: illegal base64 data", f);
        }
        free(raw);
    }
    /* stringData is write-only: merged into data, as the API server does. */
    if (cJSON_GetArraySize(sd)) {
        if (!cJSON_IsObject(data)) {
            cJSON_DeleteItemFromObjectCaseSensitive(doc, "data");
            data = cJSON_AddObjectToObject(doc, "data");
        }
        cJSON_ArrayForEach(it, sd)
        {
            size_t n = strlen(it->valuestring);
            char *b64 = malloc(digest_base64_encoded_len(n));
            if (!b64)
                return fail(e, KS_INVALID, "stringData", "out of memory");
            digest_base64_encode(it->valuestring, n, b64);
            cJSON_DeleteItemFromObjectCaseSensitive(data, it->string);
            cJSON_AddStringToObject(data, it->string, b64);
            free(b64);
        }
    }
    cJSON_DeleteItemFromObjectCaseSensitive(doc, "stringData");
    if (!get(doc, "type"))
        cJSON_AddStringToObject(doc, "type", "Opaque");
    return 0;
}

/* ---- leases and events ---- */

static int v_lease(cJSON *doc, kind_error *e)
{
    const cJSON *spec = get(doc, "spec");
    if (want(spec, T_OBJ, "spec", e) < 0 || want(get(spec, "holderIdentity"), T_STR | T_NULL, "spec.holderIdentity", e) < 0 ||
        want(get(spec, "leaseDurationSeconds"), T_INT | T_NULL, "spec.leaseDurationSeconds", e) < 0 ||
        want(get(spec, "acquireTime"), T_STR | T_NULL, "spec.acquireTime", e) < 0 ||
        want(get(spec, "renewTime"), T_STR | T_NULL, "spec.renewTime", e) < 0 ||
        want(get(spec, "leaseTransitions"), T_INT | T_NULL, "spec.leaseTransitions", e) < 0)
        return -1;
    if (!spec)
        cJSON_AddObjectToObject(doc, "spec");
    return 0;
}

static int v_event(cJSON *doc, kind_error *e)
{
    static const struct {
        const char *key;
        int         mask;
    } members[] = { { "involvedObject", T_OBJ }, { "reason", T_STR }, { "message", T_STR }, { "type", T_STR },
                    { "count", T_INT },          { "source", T_OBJ }, { "firstTimestamp", T_STR | T_NULL },
                    { "lastTimestamp", T_STR | T_NULL }, { "eventTime", T_STR | T_NULL },
                    { "reportingComponent", T_STR }, { "reportingInstance", T_STR }, { "action", T_STR } };
    for (size_t i = 0; i < sizeof members / sizeof members[0]; i++)
        if (want(get(doc, members[i].key), members[i].mask, members[i].key, e) < 0)
            return -1;
    if (!get(doc, "involvedObject"))
        return fail(e, KS_INVALID, "involvedObject", "involvedObject: Required value");
    char now[STORE_TIME_MAX];
    store_time(store_now_ms(), now);
    if (!get(doc, "count"))
        cJSON_AddNumberToObject(doc, "count", 1);
    if (!cJSON_IsString(get(doc, "firstTimestamp")) && !cJSON_IsString(get(doc, "eventTime"))) {
        cJSON_DeleteItemFromObjectCaseSensitive(doc, "firstTimestamp");
        cJSON_AddStringToObject(doc, "firstTimestamp", now);
    }
    if (!cJSON_IsString(get(doc, "lastTimestamp")) && !cJSON_IsString(get(doc, "eventTime"))) {
        cJSON_DeleteItemFromObjectCaseSensitive(doc, "lastTimestamp");
        cJSON_AddStringToObject(doc, "lastTimestamp", now);
    }
    if (!get(doc, "type"))
        cJSON_AddStringToObject(doc, "type", "Normal");
    return 0;
}

static int v_none(cJSON *doc, kind_error *e)
{
    (void)doc, (void)e;
    return 0;
}

static const struct {
    int (*validate)(cJSON *doc, kind_error *e);
    bool status_sub, spec_immutable, generation;
} rules[RES_COUNT] = {
    [RES_NAMESPACES] = { v_none, true, false, false },
    [RES_PODS] = { v_pod, true, true, false },
    [RES_EVENTS] = { v_event, false, false, false },
    [RES_SECRETS] = { v_secret, false, false, false },
    [RES_DEPLOYMENTS] = { v_deployment, true, false, true },
    [RES_LEASES] = { v_lease, false, false, false },
    [RES_SSAR] = { v_none, false, false, false },
};

int kinds_validate(res_id res, cJSON *doc, kind_error *e)
{
    memset(e, 0, sizeof *e);
    if (res >= RES_COUNT)
        return fail(e, KS_BAD_REQUEST, "", "unknown resource");
    if (!cJSON_IsObject(doc))
        return fail(e, KS_BAD_REQUEST, "", "the object must be a JSON object");
    if (check_metadata(doc, e) < 0)
        return -1;
    return rules[res].validate(doc, e);
}

bool kinds_status_is_subresource(res_id res) { return res < RES_COUNT && rules[res].status_sub; }
bool kinds_spec_immutable(res_id res) { return res < RES_COUNT && rules[res].spec_immutable; }
bool kinds_has_generation(res_id res) { return res < RES_COUNT && rules[res].generation; }
