/* creds.h — the Terraform registry credentials file (ref §1.5).
 *
 * The pool's registry tokens come from GET /api/v1/agents/pool/secrets as {"credentials": {host: {...}}} and are
 * written to $HOME/.terraform.d/credentials.tfrc.json (directory 0700, file 0600, two-space indented, as the Go
 * agent writes it) where terraform finds them. An empty object means "leave the file alone" at start-up and on
 * the periodic refresh, and "delete the file" on a refresh_credentials command. Blocking file I/O on a file of a
 * few hundred bytes. Nothing here logs: the content is secret. */
#ifndef IAC_AGENT_CREDS_H
#define IAC_AGENT_CREDS_H

#include <stdbool.h>
#include <stddef.h>

enum { CREDS_WRITTEN = 0, CREDS_UNCHANGED = 1, CREDS_DELETED = 2 };

/* Applies an E2 response body. delete_when_empty: true for refresh_credentials. Returns CREDS_* and the number of
 * hosts in *count, or -1 with a message (no secret in it) in err. */
int creds_apply(const char *home, const char *body, size_t len, bool delete_when_empty, int *count, char *err,
                size_t errlen);

#endif
