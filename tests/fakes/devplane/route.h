/* route.h — route tables and reply helpers of the devplane's task-side HTTP modules (agentapi.c, adminapi.c).
 *
 * A route is (method, pattern, tag, handler); a pattern segment "*" captures one path segment (a task or workspace
 * id), handed to the handler; with two "*" the handler gets both joined by '/' ("ws-1/7"). route_find() only matches: the caller runs its own gate (the token flavours of ref
 * §2.2, chosen by the tag) before calling the handler, and answers 405 when the path is known under another method.
 * Tables are chained behind api.c's own through api.h's api_more hook.
 *
 * Upstream has two error shapes: the middleware's {"code": N, "message": "..."} (route_reply_code) and the
 * handlers' {"error": "..."} (https_reply_error, or route_reply_error with a formatted message). */
#ifndef DEVPLANE_ROUTE_H
#define DEVPLANE_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "iac/https.h"

#define ROUTE_PARAM_MAX 256
#define ROUTE_TIME_MAX 40 /* an RFC 3339 time and its NUL */

typedef void (*route_fn)(void *ctx, const https_request *req, https_response *res, const char *param);

typedef struct {
    const char *method;
    const char *pattern; /* "*" matches one non-empty segment, copied to param (two: joined by '/') */
    int         tag;     /* the caller's (auth flavour) */
    route_fn    fn;
} route;

/* The route for req, with its "*" segment in param; NULL when none matches, and then *path_known says whether the
 * path matched under another method (→ 405). */
const route *route_find(const route *table, size_t n, const https_request *req, char *param, size_t paramlen,
                        bool *path_known);

/* Writes obj (consumed; NULL → 500 out of memory) as the body with status. */
void route_reply_json(https_response *res, int status, cJSON *obj);
/* The middleware's {"code": status, "message": message}. */
void route_reply_code(https_response *res, int status, const char *message);
/* {"error": "<printf>"} with status. */
void route_reply_error(https_response *res, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The body as a JSON object, or NULL with the reason in err. An empty body reads as {} when optional. */
cJSON *route_body(const https_request *req, bool optional, char *err, size_t errlen);

int64_t route_now_ns(void);
/* RFC 3339 in UTC with Go's fraction (trailing zeros dropped), as api.c writes registration times. */
void route_time(int64_t ns, char out[ROUTE_TIME_MAX]);
/* Adds key: the time, or null when ns is 0 (a NULL column). */
void route_add_time(cJSON *obj, const char *key, int64_t ns);
/* Adds key: s, or null when s is NULL. */
void route_add_str_or_null(cJSON *obj, const char *key, const char *s);

#endif
