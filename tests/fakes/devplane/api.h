/* api.h — the devplane's HTTP port: the agent API of ref §2 that an agent uses before and beside its C&C socket
 * (register, pool secrets, the legacy control route), and the admin API tests drive the plane with.
 *
 * Built on common/https. The api holds the pool's registry credentials (what /pool/secrets returns); agents and
 * tokens live in the registry, connections in cc. */
#ifndef DEVPLANE_API_H
#define DEVPLANE_API_H

#include <stddef.h>

#include <uv.h>

#include "cc.h"
#include "registry.h"

typedef struct api api;

/* Listens on host:port (0: ephemeral). NULL with a message in err on failure. */
api *api_listen(uv_loop_t *loop, const char *host, int port, registry *reg, cc_server *cc, char *err,
                size_t errlen);
int api_port(const api *a);
/* Stops listening and frees the api; the loop must keep running until it has nothing left. */
void api_free(api *a);

#endif
