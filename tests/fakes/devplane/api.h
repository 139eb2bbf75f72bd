/* api.h — the devplane's HTTP port: the agent API of ref §2 that an agent uses before and beside its C&C socket
 * (register, pool secrets, the legacy control route), and the admin API tests drive the plane with.
 *
 * Built on common/https. The api holds the pool's registry credentials (what /pool/secrets returns); agents and
 * tokens live in the registry, connections in cc. */
#ifndef DEVPLANE_API_H
#define DEVPLANE_API_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "cc.h"
#include "iac/https.h"
#include "registry.h"

typedef struct api api;

/* Request bodies up to this size are read (the agent uploads whole task logs in E5 and E6, DESIGN §4.4: a 200 MB
 * log is JSON-escaped into a body of a little more); larger ones get 413. One limit for the whole port: common/https
 * has one per server. */
#define API_MAX_BODY (512u << 20)

/* More routes, served when none of api.c's own matches the path (the task side: agentapi.c, adminapi.c): fn answers
 * a request whose path it knows and returns true, or returns false to leave the path unknown (404). */
typedef struct {
    bool (*fn)(void *arg, const https_request *req, https_response *res);
    void *arg;
} api_more;

/* Listens on host:port (0: ephemeral), with nmore route tables tried in order after api.c's own. NULL with a
 * message in err on failure. */
api *api_listen(uv_loop_t *loop, const char *host, int port, registry *reg, cc_server *cc, const api_more *more,
                size_t nmore, char *err, size_t errlen);
int api_port(const api *a);
/* ref §2.2, flavour "pool": NULL when authorization carries an active pool token, else the middleware's message
 * ("Missing authorization header", "Invalid authorization format", "Invalid token format", "Invalid token"). */
const char *api_pool_auth(registry *reg, const char *authorization);
/* Stops listening and frees the api; the loop must keep running until it has nothing left. */
void api_free(api *a);

#endif
