/* registry.h — the devplane's agents and pool tokens (what upstream keeps in its agents and pool_tokens tables).
 *
 * Pure bookkeeping, no I/O. Agents are kept in registration order (oldest first) and bounded; tokens are stored
 * only as base64(sha256(token)), like upstream (ref §2.2), and are never copied anywhere else. The C&C module hangs
 * its connection on an agent (conn) and clears it when the connection ends. */
#ifndef DEVPLANE_REGISTRY_H
#define DEVPLANE_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REG_MAX_AGENTS 1024
#define REG_MAX_TOKENS 64
#define REG_POOL_MAX 64                       /* pool id bytes */
#define REG_ID_MAX (sizeof "agent-" + REG_POOL_MAX + 24) /* "agent-{pool}-{unix nanos}" and its NUL */
#define REG_NAME_MAX 401                      /* upstream: name ≤ 100 characters (UTF-8: ≤ 400 bytes) */
#define REG_HASH_SIZE 45                      /* base64 of a SHA-256 and its NUL */
#define REG_HEARTBEAT_MAX (256u << 10)        /* bytes of a kept heartbeat payload */

typedef struct registry registry;

typedef struct {
    char     id[REG_ID_MAX];
    char     name[REG_NAME_MAX];
    int64_t  registered_at_ns; /* Unix nanoseconds */
    int64_t  last_ping_at_ns;
    bool     online;
    uint64_t heartbeats;
    char    *last_heartbeat; /* payload of the last heartbeat as compact JSON text, or NULL */
    void    *conn;           /* the C&C connection (owned by cc), NULL when not connected */
} reg_agent;

/* NULL on OOM. pool_token is hashed and added as the first active token. */
registry *registry_new(const char *pool_id, const char *pool_token);
void registry_free(registry *r);
const char *registry_pool(const registry *r);

/* base64(sha256(token)) into out. */
void registry_token_hash(const char *token, char out[REG_HASH_SIZE]);
bool registry_token_active(const registry *r, const char *hash);
/* Adds token as active (re-activates it when known). 0 or -ENOSPC. */
int registry_token_add(registry *r, const char *token);
/* Marks token inactive (NULL: the pool token) and puts its hash in hash_out. 0 or -ENOENT. */
int registry_token_revoke(registry *r, const char *token, char hash_out[REG_HASH_SIZE]);

/* A new agent "agent-{pool}-{now_ns}" (bumped to stay unique), online, last ping = registration. name NULL or ""
 * → the id. 0 and *out, -ENOSPC (REG_MAX_AGENTS reached) or -ENOMEM. */
int registry_agent_add(registry *r, const char *name, int64_t now_ns, reg_agent **out);
reg_agent *registry_agent_find(registry *r, const char *id);
/* 0 or -ENOENT. The caller has closed the agent's connection first. */
int registry_agent_remove(registry *r, const char *id);
size_t registry_agent_count(const registry *r);
/* i-th agent, oldest first. */
reg_agent *registry_agent_at(registry *r, size_t i);
/* Counts a heartbeat: keeps a copy of the payload (len bytes of compact JSON; over REG_HEARTBEAT_MAX it is replaced
 * by a note saying so), refreshes last ping and marks the agent online. 0 or -ENOMEM. */
int registry_agent_heartbeat(reg_agent *a, const char *payload, size_t len, int64_t now_ns);

#endif
