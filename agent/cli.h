/* cli.h — `iac-agent status`: asks a running agent for its slot table and prints it for a person.
 *
 * For operators (`kubectl exec POD -- iac-agent status`) and for `make run`. Talks to the agent's status server
 * (IAC_AGENT_LISTEN, or --listen), so it shows exactly what the coordinator and the plane see. */
#ifndef IAC_AGENT_CLI_H
#define IAC_AGENT_CLI_H

#include <stdio.h>

/* Fetches /v1/status from host:port and prints it to out. Returns the process exit status: 0, or 1 with a message
 * on stderr when the agent cannot be reached or answers something unreadable. */
int cli_status(const char *host, int port, FILE *out);

/* Formats a /v1/status JSON document as the table cli_status prints. 0, or -1 when the document is malformed. */
int cli_format_status(const char *json, size_t len, long long now_s, FILE *out);

#endif
