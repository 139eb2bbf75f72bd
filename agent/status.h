/* status.h — the agent's local HTTP server (DESIGN §6): health, readiness, metrics, slots, drain.
 *
 *   GET    /healthz                 200 while the loop turns
 *   GET    /readyz                  200 when registered and connected, else 503 (never tied to busy slots: a busy
 *                                   pod must stay Ready, or Kubernetes deletes it first on scale-down)
 *   GET    /metrics                 Prometheus text
 *   GET    /v1/status               agent id, pool id, state, connection, slots (JSON)
 *   POST   /v1/drain                stop accepting tasks          } need the pool token as
 *   POST   /v1/undrain              accept tasks again            } "Authorization: Bearer …"
 *   DELETE /v1/slots/0/reservation  end slot 0's reservation      }
 * Reads the agent struct; changes it only through agent_drain/agent_undrain/agent_release_reservation. */
#ifndef IAC_AGENT_STATUS_H
#define IAC_AGENT_STATUS_H

#include <stddef.h>

#include "iac/strbuf.h"

struct agent;

/* Listens on the configured address. 0, or -1 with a message in err. */
int status_start(struct agent *a, char *err, size_t errlen);
void status_stop(struct agent *a);

/* The /v1/status document and the /metrics page, for the server and for tests. */
void status_write_json(const struct agent *a, strbuf *out);
void status_write_metrics(const struct agent *a, strbuf *out);

#endif
