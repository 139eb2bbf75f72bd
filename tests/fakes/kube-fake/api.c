/* api.c — the Kubernetes API of kube-fake (see api.h).
 *
 * A request becomes a kreq: the resource (from resources.h's table), namespace, name, subresource and verb. Most
 * verbs are generic over the store (get, list, create, update, patch, delete, with the per-kind rules of kinds.h);
 * the few that are not — the scale subresource, SelfSubjectAccessReviews, implicit namespaces, graceful pod
 * deletion — are found first in the `special` table. Every list, the implicit namespaces' too, goes through one
 * chunking path (list_request, list_chunk_of, list_open): limit and continue as paging.h describes. */
#include "api.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "iac/json.h"
#include "iac/jsonw.h"
#include "iac/log.h"
#include "kinds.h"
#include "kstatus.h"
#include "mergepatch.h"
#include "paging.h"
#include "resources.h"
#include "selector.h"

#define MAX_SEGS     8
#define SELECTOR_MAX 4096

struct api {
    store   *st;
    kubelet *k;
    rbac    *rb;
    char    *token;
    char    *user;
    bool     no_kubelet;
    char     server[128];
};

typedef struct {
    api                 *a;
    const https_request *http;
    https_response      *res;
    const resource_def  *r;
    verb                 v;
    bool                 has_ns;
    char                 ns[STORE_NS_MAX];
    char                 name[STORE_NAME_MAX];
    char                 sub[32];
    char                 qname[96]; /* "deployments.apps" */
} kreq;

typedef void (*handler_fn)(kreq *q);

/* ---- replies ---- */

static kstatus_details details(const kreq *q, const char *name)
{
    kstatus_details d = { name && *name ? name : NULL, *q->r->group ? q->r->group : NULL, q->r->plural, NULL, NULL };
    return d;
}

static void not_found(kreq *q)
{
    kstatus_details d = details(q, q->name);
    kstatus_reply(q->res, KS_NOT_FOUND, &d, "%s \"%s\" not found", q->qname, q->name);
}

static void conflict(kreq *q)
{
    kstatus_details d = details(q, q->name);
    kstatus_reply(q->res, KS_CONFLICT, &d,
                  "Operation cannot be fulfilled on %s \"%s\": the object has been modified; please apply your "
                  "changes to the latest version and try again",
                  q->qname, q->name);
}

static void bad_request(kreq *q, const char *msg) { kstatus_reply(q->res, KS_BAD_REQUEST, NULL, "%s", msg); }

/* A kinds_validate() failure: 400 as it is, 422 in the API server's "Kind.group \"name\" is invalid: …" form. */
static void invalid(kreq *q, const char *kind, const char *group, const char *name, const kind_error *e)
{
    if (e->reason != KS_INVALID) {
        bad_request(q, e->msg);
        return;
    }
    kstatus_details d = { name && *name ? name : NULL, *group ? group : NULL, kind, e->field, "FieldValueInvalid" };
    kstatus_reply(q->res, KS_INVALID, &d, "%s%s%s \"%s\" is invalid: %s", kind, *group ? "." : "", group,
                  name ? name : "", e->msg);
}

/* ---- reading requests ---- */

static const cJSON *get(const cJSON *o, const char *key)
{
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

static const char *get_str(const cJSON *o, const char *key)
{
    const cJSON *v = get(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The media type of a Content-Type header, lowercased, without parameters. */
static void media_type(const char *ctype, char *out, size_t outlen)
{
    size_t n = 0;
    const char *p = ctype ? ctype : "";
    while (*p == ' ')
        p++;
    for (; *p && *p != ';' && *p != ' ' && n + 1 < outlen; p++)
        out[n++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    out[n] = '\0';
}

/* The request body as a JSON object; NULL after answering 415 or 400. */
static cJSON *body_object(kreq *q, bool optional)
{
    char mt[128], err[256];
    media_type(q->http->content_type, mt, sizeof mt);
    if (q->http->body_len == 0 && optional)
        return cJSON_CreateObject();
    if (*mt && strcmp(mt, "application/json") != 0) {
        kstatus_reply(q->res, KS_UNSUPPORTED_MEDIA_TYPE, NULL,
                      "the body of the request was in an unknown format - accepted media types include: "
                      "application/json");
        return NULL;
    }
    if (q->http->body_len == 0) {
        bad_request(q, "the request body is empty: expected a JSON object");
        return NULL;
    }
    cJSON *doc = json_parse_object(q->http->body, q->http->body_len, err, sizeof err);
    if (!doc) {
        char msg[320];
        snprintf(msg, sizeof msg, "the request body is not a JSON object: %s", err);
        bad_request(q, msg);
    }
    return doc;
}

typedef enum { PATCH_MERGE, PATCH_STRATEGIC } patch_kind;

/* The patch body and its kind; NULL after answering 415 or 400. */
static cJSON *patch_body(kreq *q, patch_kind *kind)
{
    char mt[128], err[256];
    media_type(q->http->content_type, mt, sizeof mt);
    if (strcmp(mt, "application/merge-patch+json") == 0) {
        *kind = PATCH_MERGE;
    } else if (strcmp(mt, "application/strategic-merge-patch+json") == 0) {
        *kind = PATCH_STRATEGIC;
    } else {
        kstatus_reply(q->res, KS_UNSUPPORTED_MEDIA_TYPE, NULL,
                      "the body of the request was in an unknown format - accepted media types include: "
                      "application/merge-patch+json, application/strategic-merge-patch+json (kube-fake serves no "
                      "JSON patch or server-side apply)");
        return NULL;
    }
    cJSON *doc = q->http->body_len ? json_parse_object(q->http->body, q->http->body_len, err, sizeof err) : NULL;
    if (!doc) {
        char msg[320];
        snprintf(msg, sizeof msg, "the patch is not a JSON object: %s", q->http->body_len ? err : "empty body");
        bad_request(q, msg);
    }
    return doc;
}

/* kind and apiVersion of a body: absent, or the resource's own. Fills them in. false after answering 400. */
static bool check_kind(kreq *q, cJSON *doc, const char *kind, const char *api_version)
{
    const cJSON *k = get(doc, "kind"), *v = get(doc, "apiVersion");
    if ((k && !cJSON_IsString(k)) || (v && !cJSON_IsString(v))) {
        bad_request(q, "kind and apiVersion must be strings");
        return false;
    }
    if (v && strcmp(v->valuestring, api_version) != 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "the API version in the data (%.64s) does not match the expected API version (%s)",
                 v->valuestring, api_version);
        bad_request(q, msg);
        return false;
    }
    if (k && strcmp(k->valuestring, kind) != 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "the kind in the data (%.64s) does not match the expected kind (%s)", k->valuestring,
                 kind);
        bad_request(q, msg);
        return false;
    }
    /* Go's encoder writes kind and apiVersion first; so do we (cJSON keeps a member's key in ->string). */
    cJSON_DeleteItemFromObjectCaseSensitive(doc, "kind");
    cJSON_DeleteItemFromObjectCaseSensitive(doc, "apiVersion");
    cJSON *kd = cJSON_CreateString(kind), *av = cJSON_CreateString(api_version);
    char *kkey = strdup("kind"), *akey = strdup("apiVersion");
    if (kd && av && kkey && akey) {
        kd->string = kkey;
        av->string = akey;
        cJSON_InsertItemInArray(doc, 0, av);
        cJSON_InsertItemInArray(doc, 0, kd);
        return true;
    }
    free(kkey);
    free(akey);
    cJSON_Delete(kd);
    cJSON_Delete(av);
    kstatus_reply(q->res, KS_INTERNAL, NULL, "out of memory");
    return false;
}

static bool rv_matches(const kobj *o, const char *rv)
{
    char cur[24];
    snprintf(cur, sizeof cur, "%" PRIu64, o->rv);
    return strcmp(cur, rv) == 0;
}

/* ---- generic verbs ---- */

static void obj_get(kreq *q)
{
    kobj *o = store_find(q->a->st, q->r->id, q->ns, q->name);
    if (!o) {
        not_found(q);
        return;
    }
    kstatus_reply_obj(q->res, 200, o->doc);
}

typedef struct {
    kobj **v;
    size_t n;
} objv;

static int by_ns_name(const void *pa, const void *pb)
{
    const kobj *a = *(const kobj *const *)pa, *b = *(const kobj *const *)pb;
    int c = strcmp(a->ns, b->ns);
    return c ? c : strcmp(a->name, b->name);
}

/* labelSelector and fieldSelector of the query. false after answering 400. */
static bool selectors(kreq *q, selector *labels, selector *fields)
{
    char text[SELECTOR_MAX], err[256];
    memset(labels, 0, sizeof *labels);
    memset(fields, 0, sizeof *fields);
    if (https_query_param(q->http->query, "labelSelector", text, sizeof text) == 0 &&
        selector_parse_labels(text, labels, err, sizeof err) < 0) {
        char msg[320];
        snprintf(msg, sizeof msg, "labelSelector: %s", err);
        bad_request(q, msg);
        return false;
    }
    if (https_query_param(q->http->query, "fieldSelector", text, sizeof text) == 0 &&
        selector_parse_fields(text, fields, err, sizeof err) < 0) {
        char msg[320];
        snprintf(msg, sizeof msg, "fieldSelector: %s", err);
        bad_request(q, msg);
        selector_free(labels);
        return false;
    }
    return true;
}

/* ---- lists, in chunks (paging.h) ---- */

/* What a list request asks for beyond its selectors. */
typedef struct {
    int64_t      limit;     /* ≤ 0: no limit */
    bool         continued; /* a continue token was given: … */
    paging_token from;      /* … this one */
    bool         selected;  /* a label or field selector: remainingItemCount is not known (the API server's rule) */
} list_req;

/* The chunk a list request gets of its sorted items. */
typedef struct {
    size_t   first, end;              /* items [first, end) */
    uint64_t rv;                      /* the list's resourceVersion: the first chunk's, for every chunk */
    char     cont[PAGING_TOKEN_MAX];  /* "" when the list is complete */
    int64_t  remaining;               /* items after this chunk; -1 when not told */
} list_chunk;

/* The namespace and name of item i of a sorted array. */
typedef void (*key_fn)(const void *items, size_t i, const char **ns, const char **name);

/* Whether the query has parameter name, whatever its value (https_query_param fails alike for absent and for
 * too long, and a continue token too long to be ours must be refused, not ignored). */
static bool query_has(const char *query, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = query; *p;) {
        size_t len = strcspn(p, "&");
        if (len >= n && strncmp(p, name, n) == 0 && (len == n || p[n] == '='))
            return true;
        p += len;
        if (*p)
            p++;
    }
    return false;
}

/* limit and continue of the query, in the API server's order: the limit's syntax, then the token's, then whether
 * the store still holds its version. false after answering 400 (a bad limit or token, a resourceVersion beside a
 * continue) or 410 Expired (compacted: the answer carries a token that goes on from the same key). */
static bool list_request(kreq *q, bool selected, list_req *lr)
{
    char text[PAGING_TOKEN_MAX], err[160], msg[256];
    memset(lr, 0, sizeof *lr);
    lr->selected = selected;
    if (https_query_param(q->http->query, "limit", text, sizeof text) == 0 && *text &&
        paging_parse_limit(text, &lr->limit) < 0) {
        bad_request(q, "limit: expected a whole number");
        return false;
    }
    if (!query_has(q->http->query, "continue"))
        return true;
    bool readable = https_query_param(q->http->query, "continue", text, sizeof text) == 0;
    if (readable && !*text)
        return true; /* continue= is no continue, as in Go's url.Values */
    char rv[32];
    if (query_has(q->http->query, "resourceVersion") &&
        (https_query_param(q->http->query, "resourceVersion", rv, sizeof rv) != 0 || (*rv && strcmp(rv, "0") != 0))) {
        bad_request(q, "specifying resource version is not allowed when using continue");
        return false;
    }
    if (!readable || paging_decode(text, &lr->from, err, sizeof err) < 0) {
        snprintf(msg, sizeof msg, "invalid continue token: continue key is not valid: %s",
                 readable ? err : "too long");
        bad_request(q, msg);
        return false;
    }
    lr->continued = true;
    store_compact_due(q->a->st);
    if (lr->from.rv <= store_compacted(q->a->st)) {
        paging_token now = lr->from;
        char cont[PAGING_TOKEN_MAX];
        now.rv = store_version(q->a->st);
        kstatus_reply_expired(q->res, paging_encode(&now, cont, sizeof cont) == 0 ? cont : NULL,
                              "The provided continue parameter is too old to display a consistent list result. You "
                              "can start a new list without the continue parameter, or use the continue token in "
                              "this response to retrieve the remainder of the results. Continuing with the provided "
                              "token results in an inconsistent list - objects that were created, modified, or "
                              "deleted between the time the first chunk was returned and now may show up in the "
                              "list.");
        return false;
    }
    return true;
}

/* Which of n sorted items the request gets, and the token for the rest. */
static void list_chunk_of(const kreq *q, const list_req *lr, const void *items, size_t n, key_fn key, list_chunk *c)
{
    const char *ns, *name;
    c->first = 0;
    c->rv = lr->continued ? lr->from.rv : store_version(q->a->st);
    c->cont[0] = '\0';
    c->remaining = -1;
    for (; lr->continued && c->first < n; c->first++) {
        key(items, c->first, &ns, &name);
        if (paging_after(&lr->from, ns, name))
            break;
    }
    c->end = lr->limit > 0 && (uint64_t)lr->limit < n - c->first ? c->first + (size_t)lr->limit : n;
    if (c->end == n)
        return;
    paging_token next = { .rv = c->rv };
    key(items, c->end - 1, &ns, &name);
    snprintf(next.ns, sizeof next.ns, "%s", ns);
    snprintf(next.name, sizeof next.name, "%s", name);
    if (paging_encode(&next, c->cont, sizeof c->cont) < 0)
        c->cont[0] = '\0';
    if (!lr->selected)
        c->remaining = (int64_t)(n - c->end);
}

/* `{"kind":…,"apiVersion":…,"metadata":{…},"items":[` of a chunk; the caller writes the items and "]}". */
static void list_open(strbuf *b, const char *list_kind, const char *gv, const list_chunk *c)
{
    strbuf_printf(b, "{\"kind\":\"%s\",\"apiVersion\":\"%s\",\"metadata\":{\"resourceVersion\":\"%" PRIu64 "\"",
                  list_kind, gv, c->rv);
    if (c->cont[0]) {
        strbuf_puts(b, ",\"continue\":\"");
        strbuf_json_escape(b, c->cont, strlen(c->cont));
        strbuf_putc(b, '"');
        if (c->remaining >= 0)
            strbuf_printf(b, ",\"remainingItemCount\":%" PRId64, c->remaining);
    }
    strbuf_puts(b, "},\"items\":[");
}

static void obj_key(const void *items, size_t i, const char **ns, const char **name)
{
    const kobj *o = ((kobj *const *)items)[i];
    *ns = o->ns;
    *name = o->name;
}

static void write_list(kreq *q, const list_req *lr, objv *items)
{
    char gv[96];
    list_chunk c;
    resources_api_version(q->r, gv, sizeof gv);
    list_chunk_of(q, lr, items->v, items->n, obj_key, &c);
    strbuf *b = &q->res->body;
    strbuf_reset(b);
    list_open(b, q->r->list_kind, gv, &c);
    for (size_t i = c.first; i < c.end; i++) {
        if (i > c.first)
            strbuf_putc(b, ',');
        jsonw_write(b, items->v[i]->doc, 0);
    }
    strbuf_puts(b, "]}");
    q->res->status = 200;
    q->res->content_type = "application/json";
}

static void obj_list(kreq *q)
{
    selector labels, fields;
    list_req lr;
    if (!selectors(q, &labels, &fields))
        return;
    bool selected = labels.n > 0 || fields.n > 0;
    if (!list_request(q, selected, &lr)) {
        selector_free(&labels);
        selector_free(&fields);
        return;
    }
    objv items = { calloc(store_count(q->a->st, q->r->id) + 1, sizeof(kobj *)), 0 };
    if (!items.v) {
        selector_free(&labels);
        selector_free(&fields);
        kstatus_reply(q->res, KS_INTERNAL, NULL, "out of memory");
        return;
    }
    for (kobj *o = store_first(q->a->st, q->r->id); o; o = o->next) {
        if (q->has_ns && strcmp(o->ns, q->ns) != 0)
            continue;
        if (!selector_match_labels(&labels, get(get(o->doc, "metadata"), "labels")) ||
            !selector_match_fields(&fields, o->doc))
            continue;
        items.v[items.n++] = o;
    }
    qsort(items.v, items.n, sizeof *items.v, by_ns_name);
    write_list(q, &lr, &items);
    free(items.v);
    selector_free(&labels);
    selector_free(&fields);
}

/* What happens after a create, per resource. */
static void created_pod(kreq *q, kobj *o)
{
    if (q->a->no_kubelet) /* the pod is only an object: nothing runs it */
        return;
    if (kubelet_run(q->a->k, o) < 0)
        log_warn("api", "pod %s/%s: out of memory: it will not run", o->ns, o->name);
}

static void (*const on_created[RES_COUNT])(kreq *q, kobj *o) = { [RES_PODS] = created_pod };

/* Creates doc (consumed) as a new object of q->r in q->ns and answers 201, or the error. */
static kobj *create(kreq *q, cJSON *doc)
{
    char gv[96];
    kind_error e;
    resources_api_version(q->r, gv, sizeof gv);
    if (!check_kind(q, doc, q->r->kind, gv)) {
        cJSON_Delete(doc);
        return NULL;
    }
    cJSON *m = store_meta(doc);
    const char *ns = get_str(m, "namespace");
    if (m && ns && *q->ns && strcmp(ns, q->ns) != 0) {
        bad_request(q, "the namespace of the provided object does not match the namespace sent on the request");
        cJSON_Delete(doc);
        return NULL;
    }
    if (kinds_validate(q->r->id, doc, &e) < 0) {
        invalid(q, q->r->kind, q->r->group, get_str(m, "name"), &e);
        cJSON_Delete(doc);
        return NULL;
    }
    static const char *const server_set[] = { "uid", "resourceVersion", "creationTimestamp", "deletionTimestamp",
                                              "deletionGracePeriodSeconds", "generation", "selfLink" };
    for (size_t i = 0; i < sizeof server_set / sizeof server_set[0]; i++)
        cJSON_DeleteItemFromObjectCaseSensitive(m, server_set[i]);
    if (kinds_has_generation(q->r->id))
        cJSON_AddNumberToObject(m, "generation", 1);
    if (kinds_status_is_subresource(q->r->id)) {
        /* Without a kubelet nothing would ever write a pod's status: the one it was created with stands. */
        bool keep = q->r->id == RES_PODS && q->a->no_kubelet && cJSON_IsObject(get(doc, "status"));
        if (!keep)
            cJSON_DeleteItemFromObjectCaseSensitive(doc, "status");
        if (q->r->id == RES_PODS && !keep)
            cJSON_AddStringToObject(cJSON_AddObjectToObject(doc, "status"), "phase", "Pending");
    }
    char name[STORE_NAME_MAX];
    snprintf(name, sizeof name, "%s", get_str(m, "name") ? get_str(m, "name") : "");
    kobj *o;
    int rc = store_add(q->a->st, q->r->id, q->r->namespaced ? q->ns : "", doc, &o);
    if (rc == -EEXIST) {
        kstatus_details d = details(q, name);
        kstatus_reply(q->res, KS_ALREADY_EXISTS, &d, "%s \"%s\" already exists", q->qname, name);
        return NULL;
    }
    if (rc == -EINVAL) {
        kind_error ne = { KS_INVALID, "metadata.name", "metadata.name: Required value: name or generateName is "
                                                       "required" };
        invalid(q, q->r->kind, q->r->group, "", &ne);
        return NULL;
    }
    if (rc == -ENOSPC) {
        kstatus_details d = details(q, name);
        kstatus_reply(q->res, KS_FORBIDDEN, &d, "%s \"%s\" is forbidden: exceeded quota: kube-fake holds at most %d "
                      "%s", q->qname, name, STORE_MAX_OBJECTS, q->r->plural);
        return NULL;
    }
    if (rc < 0) {
        kstatus_reply(q->res, KS_INTERNAL, NULL, "out of memory");
        return NULL;
    }
    if (on_created[q->r->id])
        on_created[q->r->id](q, o);
    kstatus_reply_obj(q->res, 201, o->doc);
    return o;
}

static void obj_create(kreq *q)
{
    cJSON *doc = body_object(q, false);
    if (doc)
        create(q, doc);
}

/* The last steps of update and patch: nd (consumed) is the new document of o, already validated. */
static void finish_update(kreq *q, kobj *o, cJSON *nd)
{
    cJSON *m = store_meta(nd);
    const cJSON *om = get(o->doc, "metadata");
    const char *uid = get_str(m, "uid");
    if (uid && strcmp(uid, o->uid) != 0) {
        kstatus_details d = details(q, q->name);
        kstatus_reply(q->res, KS_CONFLICT, &d, "Precondition failed: UID in precondition: %.40s, UID in object meta: "
                      "%s", uid, o->uid);
        cJSON_Delete(nd);
        return;
    }
    const cJSON *old_spec = get(o->doc, "spec"), *new_spec = get(nd, "spec");
    bool spec_same = (!old_spec && !new_spec) || (old_spec && new_spec && cJSON_Compare(old_spec, new_spec, 1));
    if (kinds_spec_immutable(q->r->id) && !spec_same) {
        kind_error e = { KS_INVALID, "spec", "spec: Forbidden: pod updates may not change fields other than "
                                             "metadata (kube-fake)" };
        invalid(q, q->r->kind, q->r->group, q->name, &e);
        cJSON_Delete(nd);
        return;
    }
    if (kinds_status_is_subresource(q->r->id)) {
        cJSON_DeleteItemFromObjectCaseSensitive(nd, "status");
        const cJSON *st = get(o->doc, "status");
        if (st)
            cJSON_AddItemToObject(nd, "status", cJSON_Duplicate(st, 1));
    }
    /* Server-owned metadata survives whatever the client sent. */
    static const char *const kept[] = { "generation", "deletionTimestamp", "deletionGracePeriodSeconds" };
    for (size_t i = 0; m && i < sizeof kept / sizeof kept[0]; i++) {
        cJSON_DeleteItemFromObjectCaseSensitive(m, kept[i]);
        const cJSON *v = get(om, kept[i]);
        if (v)
            cJSON_AddItemToObject(m, kept[i], cJSON_Duplicate(v, 1));
    }
    if (kinds_has_generation(q->r->id) && !spec_same) {
        cJSON *g = cJSON_GetObjectItemCaseSensitive(m, "generation");
        if (cJSON_IsNumber(g))
            cJSON_SetNumberValue(g, g->valuedouble + 1);
    }
    store_replace(q->a->st, o, nd);
    kstatus_reply_obj(q->res, 200, o->doc);
}

/* name and namespace of a changed document must be the URL's. false after answering 400. */
static bool same_identity(kreq *q, const cJSON *doc)
{
    const cJSON *m = get(doc, "metadata");
    const char *name = get_str(m, "name"), *ns = get_str(m, "namespace");
    if (name && strcmp(name, q->name) != 0) {
        char msg[640];
        snprintf(msg, sizeof msg, "the name of the object (%.253s) does not match the name on the URL (%s)", name,
                 q->name);
        bad_request(q, msg);
        return false;
    }
    if (ns && q->r->namespaced && strcmp(ns, q->ns) != 0) {
        bad_request(q, "the namespace of the provided object does not match the namespace sent on the request");
        return false;
    }
    return true;
}

static void obj_update(kreq *q)
{
    char gv[96];
    kind_error e;
    kobj *o = store_find(q->a->st, q->r->id, q->ns, q->name);
    if (!o) {
        not_found(q);
        return;
    }
    cJSON *doc = body_object(q, false);
    if (!doc)
        return;
    resources_api_version(q->r, gv, sizeof gv);
    const char *rv = get_str(get(doc, "metadata"), "resourceVersion");
    if (!check_kind(q, doc, q->r->kind, gv) || !same_identity(q, doc)) {
        cJSON_Delete(doc);
        return;
    }
    if (rv && !rv_matches(o, rv)) {
        conflict(q);
        cJSON_Delete(doc);
        return;
    }
    if (kinds_validate(q->r->id, doc, &e) < 0) {
        invalid(q, q->r->kind, q->r->group, q->name, &e);
        cJSON_Delete(doc);
        return;
    }
    finish_update(q, o, doc);
}

static void obj_patch(kreq *q)
{
    patch_kind pk;
    kind_error e;
    kobj *o = store_find(q->a->st, q->r->id, q->ns, q->name);
    if (!o) {
        not_found(q);
        return;
    }
    cJSON *patch = patch_body(q, &pk);
    if (!patch)
        return;
    const char *rv = get_str(get(patch, "metadata"), "resourceVersion");
    if (rv && !rv_matches(o, rv)) {
        conflict(q);
        cJSON_Delete(patch);
        return;
    }
    cJSON *nd = cJSON_Duplicate(o->doc, 1);
    if (!nd || mergepatch_apply(&nd, patch, pk == PATCH_STRATEGIC) < 0) {
        cJSON_Delete(nd);
        cJSON_Delete(patch);
        kstatus_reply(q->res, KS_INTERNAL, NULL, "out of memory");
        return;
    }
    cJSON_Delete(patch);
    char gv[96];
    resources_api_version(q->r, gv, sizeof gv);
    if (!same_identity(q, nd) || !check_kind(q, nd, q->r->kind, gv)) {
        cJSON_Delete(nd);
        return;
    }
    if (kinds_validate(q->r->id, nd, &e) < 0) {
        invalid(q, q->r->kind, q->r->group, q->name, &e);
        cJSON_Delete(nd);
        return;
    }
    finish_update(q, o, nd);
}

/* DeleteOptions (body or query): the grace period (-1: the object's own) and preconditions. false after
 * answering. */
static bool delete_options(kreq *q, const kobj *o, int64_t *grace_ms)
{
    char text[32];
    *grace_ms = -1;
    if (https_query_param(q->http->query, "gracePeriodSeconds", text, sizeof text) == 0) {
        char *end;
        long long g = strtoll(text, &end, 10);
        if (!*text || *end || g < 0) {
            bad_request(q, "gracePeriodSeconds must be a whole number of seconds, 0 or more");
            return false;
        }
        *grace_ms = g * 1000;
    }
    cJSON *opts = body_object(q, true);
    if (!opts)
        return false;
    const cJSON *g = get(opts, "gracePeriodSeconds"), *pre = get(opts, "preconditions");
    bool ok = true;
    if (g && (!cJSON_IsNumber(g) || g->valuedouble < 0)) {
        bad_request(q, "gracePeriodSeconds must be a whole number of seconds, 0 or more");
        ok = false;
    } else if (g) {
        *grace_ms = (int64_t)g->valuedouble * 1000;
    }
    const char *uid = get_str(pre, "uid"), *rv = get_str(pre, "resourceVersion");
    if (ok && uid && strcmp(uid, o->uid) != 0) {
        kstatus_details d = details(q, q->name);
        kstatus_reply(q->res, KS_CONFLICT, &d, "Precondition failed: UID in precondition: %.40s, UID in object meta: "
                      "%s", uid, o->uid);
        ok = false;
    } else if (ok && rv && !rv_matches(o, rv)) {
        kstatus_details d = details(q, q->name);
        kstatus_reply(q->res, KS_CONFLICT, &d, "Precondition failed: ResourceVersion in precondition: %.24s, "
                      "ResourceVersion in object meta: %" PRIu64, rv, o->rv);
        ok = false;
    }
    cJSON_Delete(opts);
    return ok;
}

static void obj_delete(kreq *q)
{
    int64_t grace;
    kobj *o = store_find(q->a->st, q->r->id, q->ns, q->name);
    if (!o) {
        not_found(q);
        return;
    }
    if (!delete_options(q, o, &grace))
        return;
    kstatus_details d = details(q, q->name);
    store_remove(q->a->st, o);
    kstatus_success(q->res, &d);
}

/* ---- special handlers ---- */

/* DELETE a pod: graceful (kubelet.h). Answers the pod as it is: terminating, or as it was when it went at once. */
static void pod_delete(kreq *q)
{
    int64_t grace;
    kobj *o = store_find(q->a->st, RES_PODS, q->ns, q->name);
    if (!o) {
        not_found(q);
        return;
    }
    if (!delete_options(q, o, &grace))
        return;
    kstatus_reply_obj(q->res, 200, o->doc); /* as it is now: kept if the pod goes at once */
    if (kubelet_delete(q->a->k, o, grace) == KUBELET_TERMINATING)
        kstatus_reply_obj(q->res, 200, o->doc);
}

/* The autoscaling/v1 Scale of a Deployment. */
static cJSON *scale_of(const kobj *d)
{
    char rv[24];
    const cJSON *spec = get(d->doc, "spec"), *st = get(d->doc, "status");
    const cJSON *r = get(spec, "replicas"), *sr = get(st, "replicas");
    strbuf sel = STRBUF_INIT;
    selector_format_match_labels(get(get(spec, "selector"), "matchLabels"), &sel);
    snprintf(rv, sizeof rv, "%" PRIu64, d->rv);
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "kind", "Scale");
    cJSON_AddStringToObject(s, "apiVersion", "autoscaling/v1");
    cJSON *m = cJSON_AddObjectToObject(s, "metadata");
    cJSON_AddStringToObject(m, "name", d->name);
    cJSON_AddStringToObject(m, "namespace", d->ns);
    cJSON_AddStringToObject(m, "uid", d->uid);
    cJSON_AddStringToObject(m, "resourceVersion", rv);
    const char *ct = get_str(get(d->doc, "metadata"), "creationTimestamp");
    cJSON_AddStringToObject(m, "creationTimestamp", ct ? ct : "");
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(s, "spec"), "replicas", cJSON_IsNumber(r) ? r->valuedouble : 1);
    cJSON *ss = cJSON_AddObjectToObject(s, "status");
    cJSON_AddNumberToObject(ss, "replicas", cJSON_IsNumber(sr) ? sr->valuedouble : 0);
    cJSON_AddStringToObject(ss, "selector", sel.data && !sel.oom ? sel.data : "");
    strbuf_free(&sel);
    return s;
}

static void scale_get(kreq *q)
{
    kobj *d = store_find(q->a->st, RES_DEPLOYMENTS, q->ns, q->name);
    if (!d) {
        not_found(q);
        return;
    }
    cJSON *s = scale_of(d);
    kstatus_reply_obj(q->res, 200, s);
    cJSON_Delete(s);
}

/* spec.replicas of a Scale document: a whole number ≥ 0. false after answering. */
static bool scale_replicas(kreq *q, const cJSON *scale, int64_t *out)
{
    const cJSON *r = get(get(scale, "spec"), "replicas");
    if (r && !cJSON_IsNumber(r)) {
        bad_request(q, "spec.replicas: expected a whole number");
        return false;
    }
    if (!r || r->valuedouble != (double)(int64_t)r->valuedouble || r->valuedouble < 0 ||
        r->valuedouble > 2147483647.0) {
        char msg[96];
        kind_error e = { KS_INVALID, "spec.replicas", "" };
        if (r)
            snprintf(msg, sizeof msg, "spec.replicas: Invalid value: %g: must be greater than or equal to 0",
                     r->valuedouble);
        else
            snprintf(msg, sizeof msg, "spec.replicas: Required value");
        snprintf(e.msg, sizeof e.msg, "%s", msg);
        invalid(q, "Scale", "autoscaling", q->name, &e);
        return false;
    }
    *out = (int64_t)r->valuedouble;
    return true;
}

static void scale_set(kreq *q, kobj *d, int64_t replicas)
{
    cJSON *spec = cJSON_GetObjectItemCaseSensitive(d->doc, "spec");
    cJSON *r = cJSON_GetObjectItemCaseSensitive(spec, "replicas");
    int64_t before = cJSON_IsNumber(r) ? (int64_t)r->valuedouble : 1;
    if (before != replicas && cJSON_IsObject(spec)) {
        cJSON_DeleteItemFromObjectCaseSensitive(spec, "replicas");
        cJSON_AddNumberToObject(spec, "replicas", (double)replicas);
        cJSON *g = cJSON_GetObjectItemCaseSensitive(store_meta(d->doc), "generation");
        if (cJSON_IsNumber(g))
            cJSON_SetNumberValue(g, g->valuedouble + 1);
        store_changed(q->a->st, d);
        log_info("api", "deployment %s/%s: scaled from %lld to %lld replicas", d->ns, d->name, (long long)before,
                 (long long)replicas);
    }
    cJSON *s = scale_of(d);
    kstatus_reply_obj(q->res, 200, s);
    cJSON_Delete(s);
}

static void scale_update(kreq *q)
{
    int64_t n;
    kobj *d = store_find(q->a->st, RES_DEPLOYMENTS, q->ns, q->name);
    if (!d) {
        not_found(q);
        return;
    }
    cJSON *doc = body_object(q, false);
    if (!doc)
        return;
    const char *rv = get_str(get(doc, "metadata"), "resourceVersion");
    if (!check_kind(q, doc, "Scale", "autoscaling/v1") || !same_identity(q, doc)) {
        cJSON_Delete(doc);
        return;
    }
    if (rv && !rv_matches(d, rv))
        conflict(q);
    else if (scale_replicas(q, doc, &n))
        scale_set(q, d, n);
    cJSON_Delete(doc);
}

static void scale_patch(kreq *q)
{
    patch_kind pk;
    int64_t n;
    kobj *d = store_find(q->a->st, RES_DEPLOYMENTS, q->ns, q->name);
    if (!d) {
        not_found(q);
        return;
    }
    cJSON *patch = patch_body(q, &pk);
    if (!patch)
        return;
    const char *rv = get_str(get(patch, "metadata"), "resourceVersion");
    if (rv && !rv_matches(d, rv)) {
        conflict(q);
        cJSON_Delete(patch);
        return;
    }
    cJSON *s = scale_of(d);
    if (!s || mergepatch_apply(&s, patch, pk == PATCH_STRATEGIC) < 0)
        kstatus_reply(q->res, KS_INTERNAL, NULL, "out of memory");
    else if (same_identity(q, s) && scale_replicas(q, s, &n))
        scale_set(q, d, n);
    cJSON_Delete(s);
    cJSON_Delete(patch);
}

static void ssar_create(kreq *q)
{
    cJSON *doc = body_object(q, false);
    if (!doc)
        return;
    const cJSON *spec = get(doc, "spec");
    const cJSON *ra = get(spec, "resourceAttributes"), *nra = get(spec, "nonResourceAttributes");
    if (!check_kind(q, doc, "SelfSubjectAccessReview", "authorization.k8s.io/v1")) {
        cJSON_Delete(doc);
        return;
    }
    if (!cJSON_IsObject(ra) == !cJSON_IsObject(nra)) {
        kind_error e = { KS_INVALID, "spec", "spec: Invalid value: exactly one of nonResourceAttributes or "
                                             "resourceAttributes must be specified" };
        invalid(q, "SelfSubjectAccessReview", "authorization.k8s.io", "", &e);
        cJSON_Delete(doc);
        return;
    }
    const char *verb = get_str(ra, "verb"), *res = get_str(ra, "resource"), *sub = get_str(ra, "subresource");
    bool allowed = !ra || rbac_allowed(q->a->rb, verb ? verb : "", res ? res : "", sub);
    cJSON_DeleteItemFromObjectCaseSensitive(doc, "status");
    cJSON *m = store_meta(doc);
    cJSON_DeleteItemFromObjectCaseSensitive(m, "creationTimestamp");
    cJSON_AddNullToObject(m, "creationTimestamp");
    cJSON *st = cJSON_AddObjectToObject(doc, "status");
    cJSON_AddBoolToObject(st, "allowed", allowed);
    if (!allowed) {
        char reason[256];
        snprintf(reason, sizeof reason, "kube-fake denies %s on %s%s%s", verb ? verb : "", res ? res : "",
                 sub && *sub ? "/" : "", sub ? sub : "");
        cJSON_AddStringToObject(st, "reason", reason);
    }
    kstatus_reply_obj(q->res, 201, doc);
    cJSON_Delete(doc);
}

/* Namespaces are implicit: "default", "kube-system" and every namespace that holds an object. */
static bool ns_known(const api *a, const char *ns)
{
    if (strcmp(ns, "default") == 0 || strcmp(ns, "kube-system") == 0)
        return true;
    for (int r = 0; r < RES_COUNT; r++)
        for (kobj *o = store_first(a->st, (res_id)r); o; o = o->next)
            if (strcmp(o->ns, ns) == 0)
                return true;
    return false;
}

static void ns_object(strbuf *b, const char *name)
{
    strbuf_puts(b, "{\"kind\":\"Namespace\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"");
    strbuf_json_escape(b, name, strlen(name));
    strbuf_puts(b, "\",\"labels\":{\"kubernetes.io/metadata.name\":\"");
    strbuf_json_escape(b, name, strlen(name));
    strbuf_puts(b, "\"}},\"spec\":{\"finalizers\":[\"kubernetes\"]},\"status\":{\"phase\":\"Active\"}}");
}

static void ns_get(kreq *q)
{
    if (!ns_known(q->a, q->name)) {
        not_found(q);
        return;
    }
    strbuf_reset(&q->res->body);
    ns_object(&q->res->body, q->name);
    q->res->status = 200;
}

static int str_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void ns_key(const void *items, size_t i, const char **ns, const char **name)
{
    *ns = "";
    *name = ((const char *const *)items)[i];
}

static void ns_list(kreq *q)
{
    const char *names[RES_COUNT * STORE_MAX_OBJECTS / 16 + 2];
    size_t n = 0, cap = sizeof names / sizeof names[0];
    list_req lr;
    if (!list_request(q, false, &lr))
        return;
    names[n++] = "default";
    names[n++] = "kube-system";
    for (int r = 0; r < RES_COUNT; r++)
        for (kobj *o = store_first(q->a->st, (res_id)r); o; o = o->next) {
            bool seen = !*o->ns;
            for (size_t i = 0; i < n && !seen; i++)
                seen = strcmp(names[i], o->ns) == 0;
            if (!seen && n < cap)
                names[n++] = o->ns;
        }
    qsort(names, n, sizeof names[0], str_cmp);
    list_chunk c;
    list_chunk_of(q, &lr, names, n, ns_key, &c);
    strbuf *b = &q->res->body;
    strbuf_reset(b);
    list_open(b, "NamespaceList", "v1", &c);
    for (size_t i = c.first; i < c.end; i++) {
        if (i > c.first)
            strbuf_putc(b, ',');
        ns_object(b, names[i]);
    }
    strbuf_puts(b, "]}");
    q->res->status = 200;
}

static const struct {
    res_id     res;
    bool       sub;
    verb       v;
    handler_fn fn;
} special[] = {
    { RES_DEPLOYMENTS, true, VERB_GET, scale_get },   { RES_DEPLOYMENTS, true, VERB_UPDATE, scale_update },
    { RES_DEPLOYMENTS, true, VERB_PATCH, scale_patch }, { RES_SSAR, false, VERB_CREATE, ssar_create },
    { RES_NAMESPACES, false, VERB_GET, ns_get },      { RES_NAMESPACES, false, VERB_LIST, ns_list },
    { RES_PODS, false, VERB_DELETE, pod_delete },
};

static const handler_fn generic[VERB_COUNT] = {
    [VERB_GET] = obj_get,       [VERB_LIST] = obj_list,   [VERB_CREATE] = obj_create,
    [VERB_UPDATE] = obj_update, [VERB_PATCH] = obj_patch, [VERB_DELETE] = obj_delete,
};

/* ---- routing ---- */

/* Splits path into at most MAX_SEGS non-empty segments of < STORE_NAME_MAX bytes; -1 otherwise. */
static int split(const char *path, char segs[MAX_SEGS][STORE_NAME_MAX])
{
    int n = 0;
    for (const char *p = path; *p;) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        size_t len = strcspn(p, "/");
        if (n == MAX_SEGS || len >= STORE_NAME_MAX)
            return -1;
        memcpy(segs[n], p, len);
        segs[n][len] = '\0';
        n++;
        p += len;
    }
    return n;
}

/* Fills q's resource, namespace, name and subresource from the path. false: not an API path we serve. */
static bool route(kreq *q, const char *path)
{
    char segs[MAX_SEGS][STORE_NAME_MAX];
    int n = split(path, segs), i;
    const char *group, *version;
    if (n >= 2 && strcmp(segs[0], "api") == 0) {
        group = "";
        version = segs[1];
        i = 2;
    } else if (n >= 3 && strcmp(segs[0], "apis") == 0) {
        group = segs[1];
        version = segs[2];
        i = 3;
    } else {
        return false;
    }
    int rest = n - i;
    const char *res, *name = NULL, *sub = NULL;
    if (rest >= 3 && strcmp(segs[i], "namespaces") == 0) {
        if (rest > 5 || strlen(segs[i + 1]) >= STORE_NS_MAX)
            return false;
        q->has_ns = true;
        snprintf(q->ns, sizeof q->ns, "%s", segs[i + 1]);
        i += 2;
        rest -= 2;
    }
    if (rest < 1 || rest > 3)
        return false;
    res = segs[i];
    if (rest >= 2)
        name = segs[i + 1];
    if (rest == 3)
        sub = segs[i + 2];
    q->r = resources_find(group, version, res);
    if (!q->r || (q->has_ns && !q->r->namespaced) || (q->r->namespaced && name && !q->has_ns))
        return false;
    if (sub && (!q->r->sub || strcmp(sub, q->r->sub) != 0))
        return false;
    snprintf(q->name, sizeof q->name, "%s", name ? name : "");
    snprintf(q->sub, sizeof q->sub, "%s", sub ? sub : "");
    resources_qualified(q->r, q->qname, sizeof q->qname);
    return true;
}

/* The verb of the request, or -1 for a method the path does not take. */
static int verb_of(const kreq *q, const char *method)
{
    bool named = q->name[0] != '\0';
    char w[8];
    if (strcmp(method, "GET") == 0) {
        if (named)
            return VERB_GET;
        bool watch = https_query_param(q->http->query, "watch", w, sizeof w) == 0 &&
                     (strcmp(w, "true") == 0 || strcmp(w, "1") == 0);
        return watch ? VERB_WATCH : VERB_LIST;
    }
    if (strcmp(method, "POST") == 0)
        return named || (q->r->namespaced && !q->has_ns) ? -1 : VERB_CREATE;
    if (strcmp(method, "PUT") == 0)
        return named ? VERB_UPDATE : -1;
    if (strcmp(method, "PATCH") == 0)
        return named ? VERB_PATCH : -1;
    if (strcmp(method, "DELETE") == 0)
        return named ? VERB_DELETE : VERB_DELETECOLLECTION;
    return -1;
}

static void forbidden(kreq *q)
{
    char scope[STORE_NS_MAX + 32], what[STORE_NAME_MAX + 128], res[96];
    kstatus_details d = details(q, q->name);
    if (q->has_ns)
        snprintf(scope, sizeof scope, "in the namespace \"%s\"", q->ns);
    else
        snprintf(scope, sizeof scope, "at the cluster scope");
    if (q->name[0])
        snprintf(what, sizeof what, "%s \"%s\" is", q->qname, q->name);
    else
        snprintf(what, sizeof what, "%s is", q->qname);
    snprintf(res, sizeof res, "%s%s%s", q->r->plural, q->sub[0] ? "/" : "", q->sub);
    kstatus_reply(q->res, KS_FORBIDDEN, &d, "%s forbidden: User \"%s\" cannot %s resource \"%s\" in API group \"%s\" %s",
                  what, q->a->user, verb_name(q->v), res, q->r->group, scope);
}

/* Constant-time: the token must not leak through timing. */
static bool bearer_ok(const char *header, const char *token)
{
    if (!header || strncasecmp(header, "Bearer ", 7) != 0)
        return false;
    const char *got = header + 7;
    size_t n = strlen(token), m = strlen(got);
    unsigned char diff = (unsigned char)(n != m);
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(token[i] ^ (i < m ? got[i] : 0));
    return diff == 0;
}

static void dispatch(kreq *q)
{
    const https_request *req = q->http;
    if (!route(q, req->path)) {
        kstatus_details d = { NULL, NULL, NULL, NULL, NULL };
        kstatus_reply(q->res, KS_NOT_FOUND, &d, "the server could not find the requested resource");
        return;
    }
    int v = verb_of(q, req->method);
    if (v < 0) {
        kstatus_reply(q->res, KS_METHOD_NOT_ALLOWED, NULL,
                      "the server does not allow this method on the requested resource");
        return;
    }
    q->v = (verb)v;
    if (!rbac_allowed(q->a->rb, verb_name(q->v), q->r->plural, q->sub)) {
        forbidden(q);
        return;
    }
    unsigned allowed = q->sub[0] ? q->r->sub_verbs : q->r->verbs;
    if (!(allowed & VB(q->v))) {
        kstatus_reply(q->res, KS_METHOD_NOT_ALLOWED, NULL, "the server does not allow this method on the requested "
                      "resource (kube-fake does not serve %s on %s%s%s)", verb_name(q->v), q->r->plural,
                      q->sub[0] ? "/" : "", q->sub);
        return;
    }
    char dry[16];
    if (https_query_param(req->query, "dryRun", dry, sizeof dry) == 0 && *dry) {
        bad_request(q, "dryRun is not supported by kube-fake");
        return;
    }
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
        if (special[i].res == q->r->id && special[i].sub == (q->sub[0] != '\0') && special[i].v == q->v) {
            special[i].fn(q);
            return;
        }
    generic[q->v](q);
}

void api_handle(const https_request *req, https_response *res, void *arg)
{
    api *a = arg;
    kreq q = { .a = a, .http = req, .res = res };
    static const char *const health[] = { "/healthz", "/livez", "/readyz" };
    for (size_t i = 0; i < sizeof health / sizeof health[0]; i++)
        if (strcmp(req->path, health[i]) == 0) {
            res->content_type = "text/plain; charset=utf-8";
            strbuf_puts(&res->body, "ok");
            return;
        }
    if (a->token && !bearer_ok(req->authorization, a->token)) {
        kstatus_reply(res, KS_UNAUTHORIZED, NULL, "Unauthorized");
    } else if (strcmp(req->method, "GET") == 0 && resources_discovery(req->path, a->server, &res->body)) {
        res->status = 200;
    } else {
        dispatch(&q);
    }
    log_debug("api", "%s %s%s%s -> %d", req->method, req->path, *req->query ? "?" : "", req->query, res->status);
}

/* ---- seeding ---- */

static const resource_def *resource_of_kind(const char *kind, const char *api_version)
{
    for (int i = 0; i < RES_COUNT; i++) {
        const resource_def *r = resources_get((res_id)i);
        char gv[96];
        resources_api_version(r, gv, sizeof gv);
        if (strcmp(r->kind, kind) == 0 && strcmp(gv, api_version) == 0)
            return r;
    }
    return NULL;
}

int api_seed_object(api *a, cJSON *obj, char *err, size_t errlen)
{
    const char *kind = get_str(obj, "kind"), *av = get_str(obj, "apiVersion");
    const resource_def *r = kind && av ? resource_of_kind(kind, av) : NULL;
    if (!r || r->id == RES_SSAR || r->id == RES_NAMESPACES) {
        snprintf(err, errlen, "kind %s (apiVersion %s) cannot be seeded: Deployment (apps/v1), Pod, Secret, Event "
                 "(v1) and Lease (coordination.k8s.io/v1) can", kind ? kind : "?", av ? av : "?");
        cJSON_Delete(obj);
        return -1;
    }
    const char *ns = get_str(get(obj, "metadata"), "namespace");
    https_request req = { .method = "POST", .path = "", .query = "", .body = "", .peer = "seed" };
    https_response res = { 200, "application/json", STRBUF_INIT };
    kreq q = { .a = a, .http = &req, .res = &res, .r = r, .v = VERB_CREATE };
    q.has_ns = r->namespaced;
    snprintf(q.ns, sizeof q.ns, "%s", r->namespaced ? ns && *ns ? ns : "default" : "");
    resources_qualified(r, q.qname, sizeof q.qname);
    kobj *o = create(&q, obj);
    int rc = 0;
    if (!o) {
        cJSON *st = res.body.data ? cJSON_Parse(res.body.data) : NULL;
        const char *msg = get_str(st, "message");
        snprintf(err, errlen, "%s: %s", q.qname, msg ? msg : "out of memory");
        cJSON_Delete(st);
        rc = -1;
    }
    strbuf_free(&res.body);
    return rc;
}

/* ---- life ---- */

api *api_new(store *st, kubelet *k, rbac *rb, const api_opts *opts)
{
    api *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->st = st;
    a->k = k;
    a->rb = rb;
    a->no_kubelet = opts->no_kubelet;
    a->token = opts->token && *opts->token ? strdup(opts->token) : NULL;
    a->user = strdup(opts->user ? opts->user : "system:serviceaccount:default:default");
    snprintf(a->server, sizeof a->server, "127.0.0.1:6443");
    if ((opts->token && *opts->token && !a->token) || !a->user) {
        api_free(a);
        return NULL;
    }
    return a;
}

void api_set_server(api *a, const char *server) { snprintf(a->server, sizeof a->server, "%s", server); }

void api_free(api *a)
{
    if (!a)
        return;
    free(a->token);
    free(a->user);
    free(a);
}
