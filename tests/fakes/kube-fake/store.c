/* store.c — the object store (see store.h): one doubly linked list per resource, in creation order. */
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

struct store {
    kobj      *head[RES_COUNT], *tail[RES_COUNT];
    size_t     count[RES_COUNT];
    uint64_t   rv;
    uint64_t   compacted;     /* store_compact(): tokens at or below it are expired */
    int        compact_armed; /* store_compact_due() calls that compact; -1: all */
    store_hook hook;
    void      *hook_arg;
};

store *store_new(void) { return calloc(1, sizeof(store)); }

static void obj_free(kobj *o)
{
    cJSON_Delete(o->doc);
    free(o);
}

void store_free(store *s)
{
    if (!s)
        return;
    for (size_t r = 0; r < RES_COUNT; r++)
        for (kobj *o = s->head[r], *next; o; o = next) {
            next = o->next;
            obj_free(o);
        }
    free(s);
}

void store_set_hook(store *s, store_hook hook, void *arg)
{
    s->hook = hook;
    s->hook_arg = arg;
}

int64_t store_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void store_time(int64_t ms, char out[STORE_TIME_MAX])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, STORE_TIME_MAX, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void store_microtime(int64_t ms, char out[STORE_TIME_MAX])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char head[24];
    gmtime_r(&t, &tm);
    strftime(head, sizeof head, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, STORE_TIME_MAX, "%.20s.%03d000Z", head, (int)(ms % 1000));
}

static void random_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n) {
        ssize_t got = getrandom(p, n, 0);
        if (got <= 0) {
            /* getrandom on Linux does not fail for small requests after boot; keep going with the clock */
            for (size_t i = 0; i < n; i++)
                p[i] = (unsigned char)(rand() ^ (int)store_now_ms());
            return;
        }
        p += got;
        n -= (size_t)got;
    }
}

void store_random_name(char *out, size_t n)
{
    static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
    unsigned char rnd[64];
    if (n > sizeof rnd)
        n = sizeof rnd;
    random_bytes(rnd, n);
    for (size_t i = 0; i < n; i++)
        out[i] = alphabet[rnd[i] % (sizeof alphabet - 1)];
    out[n] = '\0';
}

void store_uuid(char out[STORE_UID_MAX])
{
    unsigned char b[16];
    random_bytes(b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, STORE_UID_MAX, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

cJSON *store_meta(cJSON *doc)
{
    if (!cJSON_IsObject(doc))
        return NULL;
    cJSON *m = cJSON_GetObjectItemCaseSensitive(doc, "metadata");
    if (cJSON_IsObject(m))
        return m;
    cJSON_DeleteItemFromObjectCaseSensitive(doc, "metadata");
    return cJSON_AddObjectToObject(doc, "metadata");
}

/* Sets key to a string value, replacing whatever was there. false on OOM. */
static bool set_str(cJSON *obj, const char *key, const char *v)
{
    cJSON *s = cJSON_CreateString(v);
    if (!s)
        return false;
    if (cJSON_GetObjectItemCaseSensitive(obj, key))
        return cJSON_ReplaceItemInObjectCaseSensitive(obj, key, s);
    if (!cJSON_AddItemToObject(obj, key, s)) {
        cJSON_Delete(s);
        return false;
    }
    return true;
}

kobj *store_find(const store *s, res_id res, const char *ns, const char *name)
{
    if (res >= RES_COUNT)
        return NULL;
    for (kobj *o = s->head[res]; o; o = o->next)
        if (strcmp(o->name, name) == 0 && strcmp(o->ns, ns) == 0)
            return o;
    return NULL;
}

kobj *store_first(const store *s, res_id res) { return res < RES_COUNT ? s->head[res] : NULL; }

size_t store_count(const store *s, res_id res) { return res < RES_COUNT ? s->count[res] : 0; }

uint64_t store_version(const store *s) { return s->rv; }

void store_compact(store *s)
{
    s->compacted = s->rv;
    s->rv++;
}

uint64_t store_compacted(const store *s) { return s->compacted; }

void store_compact_arm(store *s, int n) { s->compact_armed = n < 0 ? -1 : n; }

int store_compact_armed(const store *s) { return s->compact_armed; }

void store_compact_due(store *s)
{
    if (s->compact_armed == 0)
        return;
    if (s->compact_armed > 0)
        s->compact_armed--;
    store_compact(s);
}

static void unlink_obj(store *s, kobj *o)
{
    if (o->prev)
        o->prev->next = o->next;
    else
        s->head[o->res] = o->next;
    if (o->next)
        o->next->prev = o->prev;
    else
        s->tail[o->res] = o->prev;
    s->count[o->res]--;
}

/* Writes o's identity (and a new resourceVersion) into its document. false on OOM. */
static bool write_identity(store *s, kobj *o)
{
    cJSON *m = store_meta(o->doc);
    char rv[24], ts[STORE_TIME_MAX];
    o->rv = ++s->rv;
    snprintf(rv, sizeof rv, "%" PRIu64, o->rv);
    store_time(o->created_ms, ts);
    return m && set_str(m, "name", o->name) && (!*o->ns || set_str(m, "namespace", o->ns)) &&
           set_str(m, "uid", o->uid) && set_str(m, "resourceVersion", rv) && set_str(m, "creationTimestamp", ts);
}

int store_add(store *s, res_id res, const char *ns, cJSON *doc, kobj **out)
{
    cJSON *m = res < RES_COUNT ? store_meta(doc) : NULL;
    if (!m) {
        cJSON_Delete(doc);
        return -ENOMEM;
    }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(m, "name");
    const cJSON *gen = cJSON_GetObjectItemCaseSensitive(m, "generateName");
    bool generate = !(cJSON_IsString(name) && *name->valuestring);
    if (generate && !(cJSON_IsString(gen) && *gen->valuestring)) {
        cJSON_Delete(doc);
        return -EINVAL;
    }
    if (res == RES_EVENTS && s->count[res] >= STORE_MAX_EVENTS)
        store_remove(s, s->head[res]);
    if (s->count[res] >= STORE_MAX_OBJECTS) {
        cJSON_Delete(doc);
        return -ENOSPC;
    }
    kobj *o = calloc(1, sizeof *o);
    if (!o) {
        cJSON_Delete(doc);
        return -ENOMEM;
    }
    o->res = res;
    snprintf(o->ns, sizeof o->ns, "%s", ns);
    for (int attempt = 0;; attempt++) {
        if (generate) {
            char suffix[6];
            store_random_name(suffix, 5);
            snprintf(o->name, sizeof o->name, "%.58s%s", gen->valuestring, suffix);
        } else {
            snprintf(o->name, sizeof o->name, "%s", name->valuestring);
        }
        if (!store_find(s, res, o->ns, o->name))
            break;
        if (!generate || attempt == 8) {
            free(o);
            cJSON_Delete(doc);
            return -EEXIST;
        }
    }
    o->doc = doc;
    store_uuid(o->uid);
    o->created_ms = store_now_ms();
    cJSON_DeleteItemFromObjectCaseSensitive(m, "selfLink");
    if (!write_identity(s, o)) {
        obj_free(o);
        return -ENOMEM;
    }
    o->prev = s->tail[res];
    if (o->prev)
        o->prev->next = o;
    else
        s->head[res] = o;
    s->tail[res] = o;
    s->count[res]++;
    if (out)
        *out = o;
    if (s->hook)
        s->hook(s->hook_arg, o, STORE_ADDED);
    return 0;
}

void store_changed(store *s, kobj *o)
{
    write_identity(s, o); /* out of memory, the document keeps its old version: still a valid object */
    if (s->hook)
        s->hook(s->hook_arg, o, STORE_MODIFIED);
}

void store_replace(store *s, kobj *o, cJSON *doc)
{
    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        return;
    }
    cJSON_Delete(o->doc);
    o->doc = doc;
    store_changed(s, o);
}

void store_remove(store *s, kobj *o)
{
    if (!o)
        return;
    if (s->hook)
        s->hook(s->hook_arg, o, STORE_REMOVED);
    unlink_obj(s, o);
    obj_free(o);
}
