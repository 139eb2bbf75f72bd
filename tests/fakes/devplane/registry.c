/* registry.c — agents and pool tokens of the devplane; see registry.h.
 *
 * Small fixed bounds make linear scans the simplest correct structure: at most REG_MAX_AGENTS agents in an array of
 * pointers kept in registration order (a removal shifts the tail), at most REG_MAX_TOKENS token hashes. Agent ids
 * follow upstream ("agent-{pool}-{UnixNano}"); where upstream retries a colliding id 1 ms later, we take the next
 * free nanosecond, so two registrations within one nanosecond still get distinct ids. */
#include "registry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "iac/digest.h"

typedef struct {
    char hash[REG_HASH_SIZE];
    bool active;
} reg_token;

struct registry {
    char       pool[REG_POOL_MAX + 1];
    char       pool_hash[REG_HASH_SIZE];
    reg_token  tokens[REG_MAX_TOKENS];
    size_t     ntokens;
    reg_agent *agents[REG_MAX_AGENTS];
    size_t     nagents;
    int64_t    last_id_ns;
};

void registry_token_hash(const char *token, char out[REG_HASH_SIZE])
{
    uint8_t sum[DIGEST_SHA256_LEN];
    digest_sha256(token, strlen(token), sum);
    digest_base64_encode(sum, sizeof sum, out);
}

static reg_token *token_find(registry *r, const char *hash)
{
    for (size_t i = 0; i < r->ntokens; i++)
        if (strcmp(r->tokens[i].hash, hash) == 0)
            return &r->tokens[i];
    return NULL;
}

registry *registry_new(const char *pool_id, const char *pool_token)
{
    registry *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    snprintf(r->pool, sizeof r->pool, "%s", pool_id);
    registry_token_hash(pool_token, r->pool_hash);
    memcpy(r->tokens[0].hash, r->pool_hash, REG_HASH_SIZE);
    r->tokens[0].active = true;
    r->ntokens = 1;
    return r;
}

static void agent_free(reg_agent *a)
{
    if (a) {
        free(a->last_heartbeat);
        free(a);
    }
}

void registry_free(registry *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nagents; i++)
        agent_free(r->agents[i]);
    free(r);
}

const char *registry_pool(const registry *r)
{
    return r->pool;
}

bool registry_token_active(const registry *r, const char *hash)
{
    for (size_t i = 0; i < r->ntokens; i++)
        if (strcmp(r->tokens[i].hash, hash) == 0)
            return r->tokens[i].active;
    return false;
}

int registry_token_add(registry *r, const char *token)
{
    char hash[REG_HASH_SIZE];
    reg_token *t;

    registry_token_hash(token, hash);
    t = token_find(r, hash);
    if (!t) {
        if (r->ntokens == REG_MAX_TOKENS)
            return -ENOSPC;
        t = &r->tokens[r->ntokens++];
        memcpy(t->hash, hash, REG_HASH_SIZE);
    }
    t->active = true;
    return 0;
}

int registry_token_revoke(registry *r, const char *token, char hash_out[REG_HASH_SIZE])
{
    char hash[REG_HASH_SIZE];
    reg_token *t;

    if (token)
        registry_token_hash(token, hash);
    else
        memcpy(hash, r->pool_hash, REG_HASH_SIZE);
    t = token_find(r, hash);
    if (!t)
        return -ENOENT;
    t->active = false;
    memcpy(hash_out, hash, REG_HASH_SIZE);
    return 0;
}

int registry_agent_add(registry *r, const char *name, int64_t now_ns, reg_agent **out)
{
    reg_agent *a;
    int64_t ns;

    if (r->nagents == REG_MAX_AGENTS)
        return -ENOSPC;
    a = calloc(1, sizeof *a);
    if (!a)
        return -ENOMEM;
    ns = now_ns > r->last_id_ns ? now_ns : r->last_id_ns + 1;
    r->last_id_ns = ns;
    snprintf(a->id, sizeof a->id, "agent-%s-%lld", r->pool, (long long)ns);
    snprintf(a->name, sizeof a->name, "%s", name && *name ? name : a->id);
    a->registered_at_ns = now_ns;
    a->last_ping_at_ns = now_ns;
    a->online = true;
    r->agents[r->nagents++] = a;
    *out = a;
    return 0;
}

static ssize_t agent_index(const registry *r, const char *id)
{
    for (size_t i = 0; i < r->nagents; i++)
        if (strcmp(r->agents[i]->id, id) == 0)
            return (ssize_t)i;
    return -1;
}

reg_agent *registry_agent_find(registry *r, const char *id)
{
    ssize_t i = agent_index(r, id);
    return i < 0 ? NULL : r->agents[i];
}

int registry_agent_remove(registry *r, const char *id)
{
    ssize_t i = agent_index(r, id);
    if (i < 0)
        return -ENOENT;
    agent_free(r->agents[i]);
    memmove(&r->agents[i], &r->agents[i + 1], (r->nagents - (size_t)i - 1) * sizeof r->agents[0]);
    r->nagents--;
    return 0;
}

size_t registry_agent_count(const registry *r)
{
    return r->nagents;
}

reg_agent *registry_agent_at(registry *r, size_t i)
{
    return i < r->nagents ? r->agents[i] : NULL;
}

int registry_agent_heartbeat(reg_agent *a, const char *payload, size_t len, int64_t now_ns)
{
    char note[96];
    char *copy;

    if (len > REG_HEARTBEAT_MAX) {
        len = (size_t)snprintf(note, sizeof note, "{\"_devplane\":\"payload of %zu bytes not kept\"}", len);
        payload = note;
    }
    copy = malloc(len + 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, payload, len);
    copy[len] = '\0';
    free(a->last_heartbeat);
    a->last_heartbeat = copy;
    a->heartbeats++;
    a->last_ping_at_ns = now_ns;
    a->online = true;
    return 0;
}
