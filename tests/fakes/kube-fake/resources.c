/* resources.c — the resource table and the discovery documents written from it (see resources.h).
 *
 * Discovery is the legacy (unaggregated) form: kubectl 1.32 asks for the aggregated apidiscovery.k8s.io/v2 form
 * first, and an answer with Content-Type application/json makes client-go fall back to reading /api, /apis and
 * each /apis/<group>/<version> one by one. */
#include "resources.h"

#include <stdio.h>
#include <string.h>

#define CRUD (VB(VERB_GET) | VB(VERB_LIST) | VB(VERB_CREATE) | VB(VERB_UPDATE) | VB(VERB_PATCH) | VB(VERB_DELETE))

static const resource_def table[RES_COUNT] = {
    [RES_NAMESPACES] = { RES_NAMESPACES, "namespaces", "namespace", "Namespace", "NamespaceList", "", "v1", false,
                         VB(VERB_GET) | VB(VERB_LIST), "ns", false, NULL, NULL, NULL, NULL, 0 },
    [RES_PODS] = { RES_PODS, "pods", "pod", "Pod", "PodList", "", "v1", true,
                   VB(VERB_GET) | VB(VERB_LIST) | VB(VERB_CREATE) | VB(VERB_PATCH) | VB(VERB_DELETE), "po", true, NULL,
                   NULL, NULL, NULL, 0 },
    [RES_EVENTS] = { RES_EVENTS, "events", "event", "Event", "EventList", "", "v1", true, CRUD, "ev", false, NULL,
                     NULL, NULL, NULL, 0 },
    [RES_SECRETS] = { RES_SECRETS, "secrets", "secret", "Secret", "SecretList", "", "v1", true, CRUD, "", false,
                      NULL, NULL, NULL, NULL, 0 },
    [RES_DEPLOYMENTS] = { RES_DEPLOYMENTS, "deployments", "deployment", "Deployment", "DeploymentList", "apps", "v1",
                          true, CRUD, "deploy", true, "scale", "autoscaling", "v1", "Scale",
                          VB(VERB_GET) | VB(VERB_UPDATE) | VB(VERB_PATCH) },
    [RES_LEASES] = { RES_LEASES, "leases", "lease", "Lease", "LeaseList", "coordination.k8s.io", "v1", true, CRUD, "",
                     false, NULL, NULL, NULL, NULL, 0 },
    [RES_SSAR] = { RES_SSAR, "selfsubjectaccessreviews", "selfsubjectaccessreview", "SelfSubjectAccessReview",
                   "SelfSubjectAccessReviewList", "authorization.k8s.io", "v1", false, VB(VERB_CREATE), "", false, NULL,
                   NULL, NULL, NULL, 0 },
};

static const char *const verb_names[VERB_COUNT] = {
    [VERB_GET] = "get",       [VERB_LIST] = "list",   [VERB_WATCH] = "watch",
    [VERB_CREATE] = "create", [VERB_UPDATE] = "update", [VERB_PATCH] = "patch",
    [VERB_DELETE] = "delete", [VERB_DELETECOLLECTION] = "deletecollection",
};

/* Discovery lists verbs sorted, as the API server does. */
static const verb verb_order[] = { VERB_CREATE, VERB_DELETE, VERB_DELETECOLLECTION, VERB_GET,
                                   VERB_LIST,   VERB_PATCH,  VERB_UPDATE,           VERB_WATCH };

const resource_def *resources_get(res_id id) { return id < RES_COUNT ? &table[id] : NULL; }

const resource_def *resources_find(const char *group, const char *version, const char *plural)
{
    for (size_t i = 0; i < RES_COUNT; i++)
        if (strcmp(table[i].group, group) == 0 && strcmp(table[i].version, version) == 0 &&
            strcmp(table[i].plural, plural) == 0)
            return &table[i];
    return NULL;
}

const char *verb_name(verb v) { return v < VERB_COUNT ? verb_names[v] : "?"; }

int verb_parse(const char *s, size_t len)
{
    for (int v = 0; v < VERB_COUNT; v++)
        if (strlen(verb_names[v]) == len && memcmp(verb_names[v], s, len) == 0)
            return v;
    return -1;
}

void resources_qualified(const resource_def *r, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s%s%s", r->plural, *r->group ? "." : "", r->group);
}

void resources_api_version(const resource_def *r, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s%s%s", r->group, *r->group ? "/" : "", r->version);
}

/* ---- discovery documents ---- */

static void put_str(strbuf *b, const char *key, const char *v, bool comma)
{
    strbuf_printf(b, "%s\"%s\":\"", comma ? "," : "", key);
    strbuf_json_escape(b, v, strlen(v));
    strbuf_putc(b, '"');
}

static void put_verbs(strbuf *b, unsigned verbs)
{
    strbuf_puts(b, ",\"verbs\":[");
    bool first = true;
    for (size_t i = 0; i < sizeof verb_order / sizeof verb_order[0]; i++)
        if (verbs & VB(verb_order[i])) {
            strbuf_printf(b, "%s\"%s\"", first ? "" : ",", verb_names[verb_order[i]]);
            first = false;
        }
    strbuf_putc(b, ']');
}

static void put_short_names(strbuf *b, const char *csv)
{
    if (!*csv)
        return;
    strbuf_puts(b, ",\"shortNames\":[");
    for (const char *p = csv; *p;) {
        size_t n = strcspn(p, ",");
        strbuf_printf(b, "%s\"%.*s\"", p == csv ? "" : ",", (int)n, p);
        p += n;
        if (*p)
            p++;
    }
    strbuf_putc(b, ']');
}

/* APIResourceList of one group version. */
static void resource_list(strbuf *b, const char *group, const char *version)
{
    char gv[128];
    snprintf(gv, sizeof gv, "%s%s%s", group, *group ? "/" : "", version);
    strbuf_puts(b, "{\"kind\":\"APIResourceList\",\"apiVersion\":\"v1\"");
    put_str(b, "groupVersion", gv, true);
    strbuf_puts(b, ",\"resources\":[");
    bool first = true;
    for (size_t i = 0; i < RES_COUNT; i++) {
        const resource_def *r = &table[i];
        if (strcmp(r->group, group) != 0 || strcmp(r->version, version) != 0)
            continue;
        strbuf_printf(b, "%s{", first ? "" : ",");
        first = false;
        put_str(b, "name", r->plural, false);
        put_str(b, "singularName", r->singular, true);
        strbuf_printf(b, ",\"namespaced\":%s", r->namespaced ? "true" : "false");
        put_str(b, "kind", r->kind, true);
        put_verbs(b, r->verbs);
        put_short_names(b, r->short_names);
        if (r->category_all)
            strbuf_puts(b, ",\"categories\":[\"all\"]");
        strbuf_putc(b, '}');
        if (r->sub) {
            char name[96];
            snprintf(name, sizeof name, "%s/%s", r->plural, r->sub);
            strbuf_puts(b, ",{");
            put_str(b, "name", name, false);
            put_str(b, "singularName", "", true);
            strbuf_printf(b, ",\"namespaced\":%s", r->namespaced ? "true" : "false");
            put_str(b, "group", r->sub_group, true);
            put_str(b, "version", r->sub_version, true);
            put_str(b, "kind", r->sub_kind, true);
            put_verbs(b, r->sub_verbs);
            strbuf_putc(b, '}');
        }
    }
    strbuf_puts(b, "]}");
}

/* Whether an earlier table entry has the same group (groups are listed once, in table order). */
static bool group_seen_before(size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (strcmp(table[j].group, table[i].group) == 0)
            return true;
    return false;
}

static void api_group(strbuf *b, const char *group, const char *version, bool with_kind)
{
    char gv[128];
    snprintf(gv, sizeof gv, "%s/%s", group, version);
    strbuf_puts(b, "{");
    if (with_kind)
        strbuf_puts(b, "\"kind\":\"APIGroup\",\"apiVersion\":\"v1\",");
    put_str(b, "name", group, false);
    strbuf_puts(b, ",\"versions\":[{");
    put_str(b, "groupVersion", gv, false);
    put_str(b, "version", version, true);
    strbuf_puts(b, "}],\"preferredVersion\":{");
    put_str(b, "groupVersion", gv, false);
    put_str(b, "version", version, true);
    strbuf_puts(b, "}}");
}

static void group_list(strbuf *b)
{
    strbuf_puts(b, "{\"kind\":\"APIGroupList\",\"apiVersion\":\"v1\",\"groups\":[");
    bool first = true;
    for (size_t i = 0; i < RES_COUNT; i++) {
        if (!*table[i].group || group_seen_before(i))
            continue;
        if (!first)
            strbuf_putc(b, ',');
        first = false;
        api_group(b, table[i].group, table[i].version, false);
    }
    strbuf_puts(b, "]}");
}

static const resource_def *group_find(const char *group, size_t len)
{
    for (size_t i = 0; i < RES_COUNT; i++)
        if (*table[i].group && strlen(table[i].group) == len && memcmp(table[i].group, group, len) == 0)
            return &table[i];
    return NULL;
}

bool resources_discovery(const char *path, const char *server, strbuf *out)
{
    if (strcmp(path, "/version") == 0 || strcmp(path, "/version/") == 0) {
        strbuf_puts(out, "{\"major\":\"1\",\"minor\":\"32\",\"gitVersion\":\"v1.32.0-kube-fake\","
                         "\"gitCommit\":\"0000000000000000000000000000000000000000\",\"gitTreeState\":\"clean\","
                         "\"buildDate\":\"2024-12-11T00:00:00Z\",\"goVersion\":\"go1.23.3\",\"compiler\":\"gc\","
                         "\"platform\":\"linux/amd64\"}");
        return true;
    }
    if (strcmp(path, "/api") == 0 || strcmp(path, "/api/") == 0) {
        strbuf_puts(out, "{\"kind\":\"APIVersions\",\"versions\":[\"v1\"],\"serverAddressByClientCIDRs\":[{"
                         "\"clientCIDR\":\"0.0.0.0/0\",");
        put_str(out, "serverAddress", server, false);
        strbuf_puts(out, "}]}");
        return true;
    }
    if (strcmp(path, "/api/v1") == 0 || strcmp(path, "/api/v1/") == 0) {
        resource_list(out, "", "v1");
        return true;
    }
    if (strcmp(path, "/apis") == 0 || strcmp(path, "/apis/") == 0) {
        group_list(out);
        return true;
    }
    if (strncmp(path, "/apis/", 6) != 0)
        return false;
    const char *g = path + 6;
    size_t glen = strcspn(g, "/");
    const resource_def *r = group_find(g, glen);
    if (!r)
        return false;
    const char *rest = g + glen;
    if (*rest == '\0' || strcmp(rest, "/") == 0) {
        api_group(out, r->group, r->version, true);
        return true;
    }
    if (rest[0] == '/' && strncmp(rest + 1, r->version, strlen(r->version)) == 0) {
        const char *end = rest + 1 + strlen(r->version);
        if (*end == '\0' || strcmp(end, "/") == 0) {
            resource_list(out, r->group, r->version);
            return true;
        }
    }
    return false;
}
