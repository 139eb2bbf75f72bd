/* paging.h — lists in chunks (`limit` and `continue`), as the API server serves them.
 *
 * A client asks for at most `limit` items; when more remain, the list's metadata carries `continue`, a token the
 * client sends back (with the same path and selectors) for the next chunk, and `remainingItemCount` when the
 * server knows it. The token is opaque to clients. Ours is made like the API server's: base64url without padding
 * of {"v":"kube-fake/v1","rv":N,"start":"<namespace>/<name>"} — the resourceVersion of the list's first chunk and
 * the key of the last item served; the next chunk starts after that key, in list order (namespace, then name).
 * The key, not a position, so that an object created or deleted between two chunks moves nothing else.
 *
 * Unlike the API server kube-fake keeps no snapshot: a chunk shows the objects as they are when it is served (an
 * object that changed meanwhile is shown changed, one deleted behind the key is not missed). The API conventions
 * allow that much of a continued list after a compaction; clients that need one consistent list must not rely on
 * chunks anyway. Expiry (410) is api.c's, against store_compacted().
 *
 * Pure: no store, no I/O. */
#ifndef KUBEFAKE_PAGING_H
#define KUBEFAKE_PAGING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Room for any token we issue: a namespace and a name at their longest, in JSON, in base64. */
#define PAGING_TOKEN_MAX 1024

typedef struct {
    uint64_t rv;                   /* the list's resourceVersion (≥ 1) */
    char     ns[STORE_NS_MAX];     /* key of the last item served: "" for cluster-scoped resources */
    char     name[STORE_NAME_MAX];
} paging_token;

/* The token's text into out (NUL-terminated). 0, or -1 when out is too small (never with PAGING_TOKEN_MAX). */
int paging_encode(const paging_token *t, char *out, size_t outlen);

/* Reads a token. 0, or -1 with why it is not one of ours in err ("illegal base64 data", "no start key"), which
 * the API server's message completes: "invalid continue token: continue key is not valid: <err>". */
int paging_decode(const char *text, paging_token *t, char *err, size_t errlen);

/* Whether the object (ns, name) comes after the token's key in list order. */
bool paging_after(const paging_token *t, const char *ns, const char *name);

/* `limit` of a query: a decimal whole number (Go's strconv.ParseInt: an optional sign, no spaces). 0, or -1 when
 * the text is not one. A limit ≤ 0 means no limit, as for the API server. */
int paging_parse_limit(const char *text, int64_t *out);

#endif
