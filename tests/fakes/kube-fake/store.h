/* store.h — kube-fake's object store: every API object, by resource, namespace and name, as JSON.
 *
 * What etcd and the API server's registry do for the fake: one global resourceVersion counter (bumped on every
 * change and written into metadata.resourceVersion as a string), uids, creation timestamps, generateName, and one
 * hook that tells the owner about every change (main wires it to the controller). The JSON document is the
 * object: handlers read and edit o->doc and then call store_changed(), so what the API returns is always what is
 * stored. Objects of one resource are kept in creation order; lookups are linear, bounded by STORE_MAX_OBJECTS per
 * resource (Events are a ring of STORE_MAX_EVENTS: the oldest goes when a new one comes). Compaction, as etcd's,
 * is only a version mark: there is no history to drop, but a list continued from before it can no longer be
 * served (api.c answers 410 Expired, like the API server after a compaction). Pure bookkeeping, no I/O.
 *
 * Ownership: the store owns every kobj and its doc. o->ext belongs to whoever set it (the kubelet's pod runtime)
 * and must be detached before the object is removed or the store freed. */
#ifndef KUBEFAKE_STORE_H
#define KUBEFAKE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "resources.h"

#define STORE_NS_MAX      64   /* a DNS label (63) and its NUL */
#define STORE_NAME_MAX    254  /* a DNS subdomain (253) and its NUL */
#define STORE_UID_MAX     37
#define STORE_TIME_MAX    32   /* "2026-11-24T10:00:00Z" and its NUL; also the ".000000Z" MicroTime form */
#define STORE_MAX_OBJECTS 4096 /* per resource */
#define STORE_MAX_EVENTS  1000

typedef enum { STORE_ADDED, STORE_MODIFIED, STORE_REMOVED } store_event;

typedef struct kobj {
    res_id       res;
    char         ns[STORE_NS_MAX]; /* "" for cluster-scoped resources */
    char         name[STORE_NAME_MAX];
    char         uid[STORE_UID_MAX];
    char         owner[STORE_UID_MAX]; /* pods: uid of the Deployment whose controller made it, else "" */
    cJSON       *doc;
    int64_t      created_ms;           /* wall clock, for ordering finer than creationTimestamp's seconds */
    uint64_t     rv;
    void        *ext;
    struct kobj *prev, *next;          /* creation order within the resource */
} kobj;

typedef struct store store;
typedef void (*store_hook)(void *arg, kobj *o, store_event ev);

store *store_new(void);
/* Frees every object (their ext must be detached). */
void store_free(store *s);
void store_set_hook(store *s, store_hook hook, void *arg);

/* Adds doc (always consumed) as a new object of res in ns ("" for cluster-scoped). The name is metadata.name, or
 * metadata.generateName plus 5 random characters; metadata gets namespace, uid, creationTimestamp and
 * resourceVersion. 0 and *out; -EEXIST (the name is taken), -EINVAL (no name and no generateName), -ENOSPC
 * (STORE_MAX_OBJECTS reached), -ENOMEM. */
int store_add(store *s, res_id res, const char *ns, cJSON *doc, kobj **out);
kobj *store_find(const store *s, res_id res, const char *ns, const char *name);
kobj *store_first(const store *s, res_id res);
size_t store_count(const store *s, res_id res);
/* After the caller changed o->doc: a new resourceVersion, written into the doc, and the hook. */
void store_changed(store *s, kobj *o);
/* Replaces o's document with doc (consumed); uid, name, namespace and creationTimestamp are written back into it
 * from o, then store_changed(). */
void store_replace(store *s, kobj *o, cJSON *doc);
/* Removes and frees o (the hook runs first). */
void store_remove(store *s, kobj *o);
/* The current (last issued) resourceVersion. */
uint64_t store_version(const store *s);

/* Compacts at the current resourceVersion: every version up to it is gone, so a continue token issued so far is
 * expired. The version then moves on by one (no object changes), so that lists after the compaction are above it. */
void store_compact(store *s);
/* The last compacted resourceVersion (0: never compacted). */
uint64_t store_compacted(const store *s);
/* Arms compactions for tests: store_compact_due() compacts on its next n calls (-1: on every call until armed
 * again, 0: never). api.c calls it before it reads a continue token, so an armed compaction expires the list that
 * is being read, whenever the test armed it. */
void store_compact_arm(store *s, int n);
int store_compact_armed(const store *s);
void store_compact_due(store *s);

/* Wall-clock milliseconds, and RFC 3339 times in UTC: seconds ("2026-11-24T10:00:00Z") or MicroTime
 * ("2026-11-24T10:00:00.123000Z"). */
int64_t store_now_ms(void);
void store_time(int64_t ms, char out[STORE_TIME_MAX]);
void store_microtime(int64_t ms, char out[STORE_TIME_MAX]);
/* n random characters from Kubernetes' name alphabet ("bcdfghjklmnpqrstvwxz2456789") and a NUL. */
void store_random_name(char *out, size_t n);
/* A random (version 4) UUID. */
void store_uuid(char out[STORE_UID_MAX]);

/* metadata of doc (created when missing; NULL on OOM or when doc is not an object). */
cJSON *store_meta(cJSON *doc);

#endif
