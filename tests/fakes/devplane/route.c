/* route.c — route matching and reply helpers for the devplane's task-side HTTP modules; see route.h.
 *
 * Small on purpose: the tables are short and scanned in order; a pattern has one "*" (an id), or two for the
 * user routes under /api/v1/workspaces/{id}/tasks/{task_id}. The helpers are
 * the same shapes api.c writes for its own routes, so every answer of the plane looks alike. */
#include "route.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "iac/json.h"

/* Does path match pattern? Each "*" segment (non-empty, no '/') is copied into param; a second one follows the
 * first after a '/' ("ws-1/7" for /api/v1/workspaces/ * /tasks/ * /…), so one-star patterns see the bare segment. */
static bool path_match(const char *pattern, const char *path, char *param, size_t paramlen)
{
    size_t used = 0;

    param[0] = '\0';
    while (*pattern && *path) {
        if (*pattern == '*') {
            size_t n = strcspn(path, "/"), sep = used ? 1 : 0;
            if (n == 0 || used + sep + n >= paramlen)
                return false;
            if (sep)
                param[used++] = '/';
            memcpy(param + used, path, n);
            used += n;
            param[used] = '\0';
            path += n;
            pattern++;
            continue;
        }
        if (*pattern++ != *path++)
            return false;
    }
    return !*pattern && !*path;
}

const route *route_find(const route *table, size_t n, const https_request *req, char *param, size_t paramlen,
                        bool *path_known)
{
    *path_known = false;
    for (size_t i = 0; i < n; i++) {
        if (!path_match(table[i].pattern, req->path, param, paramlen))
            continue;
        *path_known = true;
        if (strcmp(table[i].method, req->method) == 0)
            return &table[i];
    }
    return NULL;
}

void route_reply_json(https_response *res, int status, cJSON *obj)
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

void route_reply_code(https_response *res, int status, const char *message)
{
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddNumberToObject(o, "code", status);
        cJSON_AddStringToObject(o, "message", message);
    }
    route_reply_json(res, status, o);
}

void route_reply_error(https_response *res, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    https_reply_error(res, status, msg);
}

cJSON *route_body(const https_request *req, bool optional, char *err, size_t errlen)
{
    if (optional && req->body_len == 0)
        return cJSON_CreateObject();
    return json_parse_object(req->body, req->body_len, err, errlen);
}

int64_t route_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void route_time(int64_t ns, char out[ROUTE_TIME_MAX])
{
    time_t secs = (time_t)(ns / 1000000000);
    long frac = (long)(ns % 1000000000);
    struct tm tm;
    char digits[16];
    int n;

    gmtime_r(&secs, &tm);
    n = (int)strftime(out, ROUTE_TIME_MAX, "%Y-%m-%dT%H:%M:%S", &tm);
    if (frac) {
        int len = snprintf(digits, sizeof digits, "%09ld", frac);
        while (len > 0 && digits[len - 1] == '0')
            digits[--len] = '\0';
        n += snprintf(out + n, (size_t)(ROUTE_TIME_MAX - n), ".%s", digits);
    }
    snprintf(out + n, (size_t)(ROUTE_TIME_MAX - n), "Z");
}

void route_add_time(cJSON *obj, const char *key, int64_t ns)
{
    char when[ROUTE_TIME_MAX];
    if (!ns) {
        cJSON_AddNullToObject(obj, key);
        return;
    }
    route_time(ns, when);
    cJSON_AddStringToObject(obj, key, when);
}

void route_add_str_or_null(cJSON *obj, const char *key, const char *s)
{
    if (s)
        cJSON_AddStringToObject(obj, key, s);
    else
        cJSON_AddNullToObject(obj, key);
}
