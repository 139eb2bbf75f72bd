/* api.c — the devplane's HTTP routes; see api.h.
 *
 * One table maps (method, path pattern) to a handler; a pattern segment "*" captures one path segment (an agent
 * id). Agent routes go through upstream's pool-token check first (ref §2.2, with its {"code","message"} bodies);
 * the admin routes are unauthenticated — this is a dev tool. Handlers answer synchronously: the registry and the
 * C&C server are in memory on the same loop. A path the table does not know goes to the api_more tables given at
 * listen time (the task side, agentapi.c and adminapi.c) before it is a 404. */
#include "api.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "iac/https.h"
#include "iac/json.h"
#include "iac/log.h"

#define API_NAME_MAX_RUNES 100   /* upstream's binding limits (ref E1) */
#define API_VERSION_MAX_RUNES 50
#define API_TOKEN_MAX 256

#define API_MAX_MORE 4

struct api {
    registry     *reg;
    cc_server    *cc;
    https_server *http;
    cJSON        *credentials; /* what /pool/secrets returns */
    api_more      more[API_MAX_MORE];
    size_t        nmore;
};

typedef void (*route_fn)(api *a, const https_request *req, https_response *res, const char *param);

/* ---- helpers ---- */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* RFC 3339 in UTC with the fraction Go's time.Time JSON encoding writes (trailing zeros dropped). */
static void rfc3339(int64_t ns, char out[40])
{
    time_t secs = (time_t)(ns / 1000000000);
    long frac = (long)(ns % 1000000000);
    struct tm tm;
    char digits[16];
    int n;

    gmtime_r(&secs, &tm);
    n = (int)strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    if (frac) {
        int len = snprintf(digits, sizeof digits, "%09ld", frac);
        while (len > 0 && digits[len - 1] == '0')
            digits[--len] = '\0';
        n += snprintf(out + n, (size_t)(40 - n), ".%s", digits);
    }
    snprintf(out + n, (size_t)(40 - n), "Z");
}

static size_t utf8_runes(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

/* Writes obj (consumed) as the response body. */
static void reply_json(https_response *res, int status, cJSON *obj)
{
    char *text = obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    if (!text) {
        https_reply_error(res, 500, "out of memory");
        return;
    }
    res->status = status;
    strbuf_puts(&res->body, text);
    cJSON_free(text);
}

/* Upstream middleware errors: {"code": N, "message": "..."}. */
static void reply_code(https_response *res, int status, const char *message)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "code", status);
    cJSON_AddStringToObject(o, "message", message);
    reply_json(res, status, o);
}

/* The body as a JSON object, or NULL (and a 400 already written). An empty body is allowed when optional. */
static cJSON *body_object(const https_request *req, https_response *res, bool optional)
{
    char err[128];
    cJSON *o;

    if (optional && req->body_len == 0)
        return cJSON_CreateObject();
    o = json_parse_object(req->body, req->body_len, err, sizeof err);
    if (!o)
        https_reply_error(res, 400, "invalid request body");
    return o;
}

const char *api_pool_auth(registry *reg, const char *authorization)
{
    char hash[REG_HASH_SIZE];

    if (!authorization || !*authorization)
        return "Missing authorization header";
    if (strncmp(authorization, "Bearer ", 7) != 0)
        return "Invalid authorization format";
    if (strncmp(authorization + 7, "apt_", 4) != 0)
        return "Invalid token format";
    registry_token_hash(authorization + 7, hash);
    return registry_token_active(reg, hash) ? NULL : "Invalid token";
}

static const char *pool_auth(api *a, const char *authorization)
{
    return api_pool_auth(a->reg, authorization);
}

/* ---- agent API (ref §2.4) ---- */

/* E1 */
static void h_register(api *a, const https_request *req, https_response *res, const char *param)
{
    const char *name = NULL, *version = NULL;
    char err[128], when[40];
    reg_agent *ag;
    cJSON *body, *o;
    int rc;

    (void)param;
    if (!(body = body_object(req, res, false)))
        return;
    if (json_get_string(body, "name", false, &name, err, sizeof err) < 0 ||
        json_get_string(body, "version", false, &version, err, sizeof err) < 0 ||
        (name && utf8_runes(name) > API_NAME_MAX_RUNES) || (version && utf8_runes(version) > API_VERSION_MAX_RUNES)) {
        cJSON_Delete(body);
        https_reply_error(res, 400, "invalid request body");
        return;
    }
    rc = registry_agent_add(a->reg, name, now_ns(), &ag);
    cJSON_Delete(body);
    if (rc < 0) {
        https_reply_error(res, 500, rc == -ENOSPC ? "failed to register agent: too many agents"
                                                  : "failed to register agent: out of memory");
        return;
    }
    log_info("api", "registered %s (name %s)", ag->id, ag->name);
    rfc3339(ag->registered_at_ns, when);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "agent_id", ag->id);
    cJSON_AddStringToObject(o, "pool_id", registry_pool(a->reg));
    cJSON_AddStringToObject(o, "status", "online");
    cJSON_AddStringToObject(o, "registered_at", when);
    cJSON_AddBoolToObject(o, "hcp_credentials_generated", false);
    reply_json(res, 200, o);
}

static cJSON *credentials_reply(api *a)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "credentials", cJSON_Duplicate(a->credentials, true));
    return o;
}

/* E2 */
static void h_secrets(api *a, const https_request *req, https_response *res, const char *param)
{
    (void)req;
    (void)param;
    reply_json(res, 200, credentials_reply(a));
}

/* E21: the C&C socket is not on this port. */
static void h_control_moved(api *a, const https_request *req, https_response *res, const char *param)
{
    (void)a;
    (void)req;
    (void)param;
    res->status = 410;
    strbuf_puts(&res->body, "{\"error\":\"WebSocket endpoint has moved\",\"message\":\"Please connect to port 8091 "
                            "for Agent C&C WebSocket\",\"new_endpoint\":\"ws://server:8091/api/v1/agents/control\"}");
}

/* ---- admin API ---- */

static void h_admin_agents(api *a, const https_request *req, https_response *res, const char *param)
{
    cJSON *o = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(o, "agents");
    char when[40];

    (void)req;
    (void)param;
    for (size_t i = 0; i < registry_agent_count(a->reg); i++) {
        reg_agent *ag = registry_agent_at(a->reg, i);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "agent_id", ag->id);
        cJSON_AddStringToObject(e, "name", ag->name);
        cJSON_AddStringToObject(e, "pool_id", registry_pool(a->reg));
        cJSON_AddStringToObject(e, "status", ag->online ? "online" : "offline");
        cJSON_AddBoolToObject(e, "connected", ag->conn != NULL);
        rfc3339(ag->registered_at_ns, when);
        cJSON_AddStringToObject(e, "registered_at", when);
        rfc3339(ag->last_ping_at_ns, when);
        cJSON_AddStringToObject(e, "last_ping_at", when);
        cJSON_AddNumberToObject(e, "heartbeats", (double)ag->heartbeats);
        /* kept as the compact text of a payload that common/proto accepted: valid JSON */
        cJSON_AddItemToObject(e, "last_heartbeat",
                              ag->last_heartbeat ? cJSON_CreateRaw(ag->last_heartbeat) : cJSON_CreateNull());
        cJSON_AddItemToArray(list, e);
    }
    reply_json(res, 200, o);
}

/* Like upstream's cleanup of a stale row (ref §3.5): the row goes, and so does its socket. */
static void h_admin_agent_delete(api *a, const https_request *req, https_response *res, const char *id)
{
    cJSON *o;

    (void)req;
    cc_disconnect_agent(a->cc, id, CC_CLOSE_NORMAL, "agent deleted");
    if (registry_agent_remove(a->reg, id) < 0) {
        https_reply_error(res, 404, "agent not found");
        return;
    }
    log_info("api", "deleted %s", id);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "deleted", id);
    reply_json(res, 200, o);
}

static void h_admin_agent_send(api *a, const https_request *req, https_response *res, const char *id)
{
    static const struct { int rc, status; const char *msg; } outcomes[] = {
        { -ENOENT, 404, "agent not found" },
        { -ENOTCONN, 409, "agent not connected" },
        { -ENOBUFS, 503, "send queue full" },
        { -ENOMEM, 500, "out of memory" },
    };
    int rc;

    if (req->body_len == 0) {
        https_reply_error(res, 400, "empty frame");
        return;
    }
    rc = cc_send(a->cc, id, req->body, req->body_len);
    for (size_t i = 0; i < sizeof outcomes / sizeof outcomes[0]; i++)
        if (outcomes[i].rc == rc) {
            https_reply_error(res, outcomes[i].status, outcomes[i].msg);
            return;
        }
    log_info("api", "sent %zu bytes to %s", req->body_len, id);
    strbuf_puts(&res->body, "{\"sent\":true}");
}

/* Reads the optional {"token": "..."} of a token route into *token (NULL when absent). 0, or -1 with a 400. */
static int token_arg(const https_request *req, https_response *res, bool optional, cJSON **body, const char **token)
{
    char err[128];

    *token = NULL;
    if (!(*body = body_object(req, res, optional)))
        return -1;
    if (json_get_string(*body, "token", !optional, token, err, sizeof err) < 0 ||
        (*token && (!**token || strlen(*token) > API_TOKEN_MAX))) {
        cJSON_Delete(*body);
        *body = NULL;
        https_reply_error(res, 400, optional ? "token must be a non-empty string"
                                             : "body must be {\"token\": \"apt_...\"}");
        return -1;
    }
    return 0;
}

static void h_admin_revoke(api *a, const https_request *req, https_response *res, const char *param)
{
    char hash[REG_HASH_SIZE];
    const char *token;
    cJSON *body;
    size_t closed;

    (void)param;
    if (token_arg(req, res, true, &body, &token) < 0)
        return;
    if (registry_token_revoke(a->reg, token, hash) < 0) {
        cJSON_Delete(body);
        https_reply_error(res, 404, "token not found");
        return;
    }
    cJSON_Delete(body);
    closed = cc_disconnect_token(a->cc, hash, CC_CLOSE_POLICY, "token revoked");
    log_info("api", "revoked %s token; closed %zu connection(s)", token ? "a" : "the pool", closed);
    strbuf_puts(&res->body, "{\"revoked\":true}");
}

static void h_admin_token_add(api *a, const https_request *req, https_response *res, const char *param)
{
    const char *token;
    cJSON *body;
    int rc;

    (void)param;
    if (token_arg(req, res, false, &body, &token) < 0)
        return;
    if (strncmp(token, "apt_", 4) != 0) {
        cJSON_Delete(body);
        https_reply_error(res, 400, "token must start with apt_");
        return;
    }
    log_secret_add(token);
    rc = registry_token_add(a->reg, token);
    cJSON_Delete(body);
    if (rc < 0) {
        https_reply_error(res, 507, "too many tokens");
        return;
    }
    log_info("api", "added a pool token");
    strbuf_puts(&res->body, "{\"added\":true}");
}

static void h_admin_secrets(api *a, const https_request *req, https_response *res, const char *param)
{
    const cJSON *creds = NULL;
    char err[128];
    cJSON *body;

    (void)param;
    if (!(body = body_object(req, res, false)))
        return;
    if (json_get_object(body, "credentials", true, &creds, err, sizeof err) < 0) {
        cJSON_Delete(body);
        https_reply_error(res, 400, "body must be {\"credentials\": {...}}");
        return;
    }
    cJSON_Delete(a->credentials);
    a->credentials = cJSON_Duplicate(creds, true);
    cJSON_Delete(body);
    if (!a->credentials)
        a->credentials = cJSON_CreateObject();
    log_info("api", "pool secrets replaced (%d host(s))", cJSON_GetArraySize(a->credentials));
    reply_json(res, 200, credentials_reply(a));
}

static void h_healthz(api *a, const https_request *req, https_response *res, const char *param)
{
    (void)a;
    (void)req;
    (void)param;
    strbuf_puts(&res->body, "{\"ok\":true}");
}

/* ---- routing ---- */

static const struct {
    const char *method;
    const char *pattern; /* "*" matches one segment, handed to the handler */
    bool        pool_auth;
    route_fn    fn;
} routes[] = {
    { "POST", "/api/v1/agents/register", true, h_register },
    { "GET", "/api/v1/agents/pool/secrets", true, h_secrets },
    { "GET", "/api/v1/agents/control", false, h_control_moved },
    { "GET", "/admin/agents", false, h_admin_agents },
    { "DELETE", "/admin/agents/*", false, h_admin_agent_delete },
    { "POST", "/admin/agents/*/send", false, h_admin_agent_send },
    { "POST", "/admin/tokens/revoke", false, h_admin_revoke },
    { "POST", "/admin/tokens", false, h_admin_token_add },
    { "PUT", "/admin/secrets", false, h_admin_secrets },
    { "GET", "/admin/healthz", false, h_healthz },
};

/* Does path match pattern? The "*" segment (non-empty, no '/') is copied into param. */
static bool path_match(const char *pattern, const char *path, char *param, size_t paramlen)
{
    while (*pattern && *path) {
        if (*pattern == '*') {
            size_t n = strcspn(path, "/");
            if (n == 0 || n >= paramlen)
                return false;
            memcpy(param, path, n);
            param[n] = '\0';
            path += n;
            pattern++;
            continue;
        }
        if (*pattern++ != *path++)
            return false;
    }
    return !*pattern && !*path;
}

static void api_handler(const https_request *req, https_response *res, void *arg)
{
    api *a = arg;
    char param[REG_ID_MAX + 64];
    bool path_known = false;

    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (!path_match(routes[i].pattern, req->path, param, sizeof param))
            continue;
        path_known = true;
        if (strcmp(routes[i].method, req->method) != 0)
            continue;
        const char *denied = routes[i].pool_auth ? pool_auth(a, req->authorization) : NULL;
        if (denied)
            reply_code(res, 401, denied);
        else
            routes[i].fn(a, req, res, param);
        log_debug("api", "%s %s -> %d", req->method, req->path, res->status);
        return;
    }
    for (size_t i = 0; !path_known && i < a->nmore; i++)
        if (a->more[i].fn(a->more[i].arg, req, res)) {
            log_debug("api", "%s %s -> %d", req->method, req->path, res->status);
            return;
        }
    https_reply_error(res, path_known ? 405 : 404, path_known ? "method not allowed" : "not found");
    log_debug("api", "%s %s -> %d", req->method, req->path, res->status);
}

/* ---- lifetime ---- */

api *api_listen(uv_loop_t *loop, const char *host, int port, registry *reg, cc_server *cc, const api_more *more,
                size_t nmore, char *err, size_t errlen)
{
    api *a = calloc(1, sizeof *a);
    https_opts opts = { .host = host, .port = port, .max_body = API_MAX_BODY, .handler = api_handler };

    if (nmore > API_MAX_MORE) {
        free(a);
        snprintf(err, errlen, "too many route tables");
        return NULL;
    }
    if (!a || !(a->credentials = cJSON_CreateObject())) {
        free(a);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->reg = reg;
    a->cc = cc;
    if (nmore)
        memcpy(a->more, more, nmore * sizeof *more);
    a->nmore = nmore;
    opts.arg = a;
    a->http = https_listen(loop, &opts, err, errlen);
    if (!a->http) {
        cJSON_Delete(a->credentials);
        free(a);
        return NULL;
    }
    return a;
}

int api_port(const api *a)
{
    return https_port(a->http);
}

void api_free(api *a)
{
    if (!a)
        return;
    https_free(a->http); /* no handler call after this */
    cJSON_Delete(a->credentials);
    free(a);
}
