/* agentapi.h — the agent API of the task side (ref §2.4 E3–E19, with E4 for applies) and the engine download the
 * devplane serves itself.
 *
 * Routes behind api.c's own (api_more hook), with upstream's three auth flavours (ref §2.2): pool, pool+task and
 * pool+workspace. The engine is one zip given on the command line: E18 and E19 advertise it with
 * download_url = http://<listen>:<api port>/engines/<file name> and checksum = the zip's SHA-256, and
 * GET /engines/<file name> (no auth, like the Go downloader) returns it. */
#ifndef DEVPLANE_AGENTAPI_H
#define DEVPLANE_AGENTAPI_H

#include <stdbool.h>
#include <stddef.h>

#include "dispatch.h"
#include "faults.h"
#include "iac/https.h"
#include "registry.h"
#include "tasks.h"

typedef struct agentapi agentapi;

/* NULL on OOM. The store, registry, dispatcher and fault rules are the caller's. */
agentapi *agentapi_new(tasks *store, registry *reg, dispatch *disp, faults *faults);
/* Can zip_path be served (a readable regular file whose name is 1-127 of [A-Za-z0-9._-])? 0, or -1 with the reason
 * in err. For the flag check, before anything starts. */
int agentapi_engine_check(const char *zip_path, char *err, size_t errlen);
/* Loads the engine zip (read whole: it is a test binary of a few MB) and its version. 0, or -errno with a message
 * in err. */
int agentapi_set_engine(agentapi *a, const char *zip_path, const char *version, char *err, size_t errlen);
/* Where the API listens, for download URLs. */
void agentapi_set_address(agentapi *a, const char *host, int port);
/* The api_more hook: answers a request whose path it knows (true), else false. */
bool agentapi_handle(void *arg, const https_request *req, https_response *res);
void agentapi_free(agentapi *a);

#endif
