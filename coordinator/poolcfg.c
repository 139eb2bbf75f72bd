/* poolcfg.c — the coordinator's settings and its pools; see poolcfg.h.
 *
 * Global settings are a common/config table, so their messages and --help have the house form for free. The pools
 * are described once, in pool_keys[]: the JSON key, the single-pool flag, the kind of value, where it goes, its
 * limits and its default. The file parser, the single-pool flags, the defaults, the help text and poolcfg_check all
 * walk that one table, so a key cannot be allowed in the file and forgotten in the flags or the help.
 *
 * The file is read strictly: unknown keys, duplicate keys, wrong types and out-of-range values are refused with one
 * message that names the file, the pool (index, and id once known) and the key, says what is allowed and shows what
 * was found. Only what a person must fix in the file is refused here; what depends on the pair min/max is left to
 * poolcfg_check, which the pool runs every cycle so that one bad pool never stops the others (incident "task 511").
 *
 * The single-pool flags have no environment variable and no default in the parsing table: an option left alone is
 * then untouched by cfg_parse, which is how we tell "given" from "defaulted" (a pool flag beside --config is a
 * mistake, not something to ignore). The help table carries the defaults. */
#include "poolcfg.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iac/config.h"
#include "iac/fsutil.h"
#include "iac/strbuf.h"
#include "iac/json.h"
#include "iac/slots.h"

#define POOLCFG_FILE_MAX  (1024 * 1024) /* a pool file is a few KiB; a bigger one is a mistake */
#define HEADROOM_PLAN_MAX 16384
#define MS_SECOND         INT64_C(1000)
#define MS_HOUR           (INT64_C(3600) * MS_SECOND)
#define NOT_GIVEN         INT64_MIN     /* a pool flag's number that cfg_parse did not set */

/* ---- the pool keys ---- */

typedef enum { PK_ID, PK_LABEL, PK_SUBDOMAIN, PK_PORT, PK_INT, PK_DURATION, PK_URL, PK_PATH } pk_kind;

typedef struct {
    const char *parent;  /* "headroom" for a key of the nested object, else NULL */
    const char *key;     /* JSON key */
    const char *name;    /* for messages and help: "max_replicas", "headroom.slot0" */
    const char *flag;    /* single-pool flag */
    pk_kind     kind;
    size_t      off;     /* where the value goes in poolcfg_pool */
    size_t      size;    /* of that field: a string buffer, or an int / int64_t */
    int64_t     min, max; /* numbers and durations (ms) */
    const char *def;     /* default as text; NULL: none (required, or derived from the id) */
    const char *help;
} pool_key;

#define FIELD(m) offsetof(poolcfg_pool, m), sizeof(((poolcfg_pool *)0)->m)

static const pool_key pool_keys[] = {
    { NULL, "id", "id", "pool", PK_ID, FIELD(id), 0, 0, NULL, "pool id, as the control plane names the pool" },
    { NULL, "namespace", "namespace", "namespace", PK_LABEL, FIELD(namespace_), 0, 0, "terraform",
      "namespace of the agents' Deployment" },
    { NULL, "deployment", "deployment", "deployment", PK_SUBDOMAIN, FIELD(deployment), 0, 0, NULL,
      "the agents' Deployment" },
    { NULL, "agent_port", "agent_port", "agent-port", PK_PORT, FIELD(agent_port), 1, 65535, "9180",
      "the agents' status port (GET /v1/status, POST /v1/drain)" },
    { NULL, "slots_per_pod", "slots_per_pod", "slots-per-pod", PK_INT, FIELD(scale.slots_per_pod), SLOTS_MIN,
      SLOTS_MAX, "4", "slots of each agent (its IAC_AGENT_SLOTS)" },
    { NULL, "min_replicas", "min_replicas", "min-replicas", PK_INT, FIELD(scale.min_replicas), 0, SCALER_MAX_PODS,
      "0", "fewest pods" },
    { NULL, "max_replicas", "max_replicas", "max-replicas", PK_INT, FIELD(scale.max_replicas), 0, SCALER_MAX_PODS,
      "10", "most pods" },
    { "headroom", "slot0", "headroom.slot0", "headroom-slot0", PK_INT, FIELD(scale.headroom_slot0), 0,
      SCALER_MAX_PODS, "1", "idle slot 0s (plan_and_apply) to keep ready" },
    { "headroom", "plan", "headroom.plan", "headroom-plan", PK_INT, FIELD(scale.headroom_plan), 0,
      HEADROOM_PLAN_MAX, "1", "idle plan slots (plan, drift_check) to keep ready" },
    { NULL, "scale_up_window", "scale_up_window", "scale-up-window", PK_DURATION, FIELD(scale.scale_up_window_ms), 0,
      MS_HOUR, "0s", "how long a shortfall lasts before scaling up" },
    { NULL, "scale_down_window", "scale_down_window", "scale-down-window", PK_DURATION,
      FIELD(scale.scale_down_window_ms), 0, 24 * MS_HOUR, "5m", "how long a surplus lasts before removing a pod" },
    { NULL, "max_remove_per_cycle", "max_remove_per_cycle", "max-remove-per-cycle", PK_INT,
      FIELD(scale.max_remove_per_cycle), 1, SCALER_MAX_REMOVE, "1", "most pods removed in one cycle" },
    { NULL, "pod_startup_timeout", "pod_startup_timeout", "pod-startup-timeout", PK_DURATION,
      FIELD(scale.pod_startup_timeout_ms), MS_SECOND, 24 * MS_HOUR, "5m",
      "a pod not Ready this long after creation counts as not coming" },
    { NULL, "demand_url", "demand_url", "demand-url", PK_URL, FIELD(demand_url), 0, 0, NULL,
      "URL of the plane's waiting-task counts (default: headroom only)" },
    { NULL, "token_file", "token_file", "token-file", PK_PATH, FIELD(token_file), 0, 0, NULL,
      "file holding the pool token, for POST /v1/drain (default: none, no scale-down)" },
};
#define NKEYS (sizeof pool_keys / sizeof pool_keys[0])
enum { KEY_ID = 0, KEY_DEPLOYMENT = 2 }; /* the two keys with rules of their own: required, and derived */

/* ---- what each kind allows ---- */

static bool valid_id(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > POOLCFG_ID_MAX - 1)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("._-", *s))
            return false;
    return true;
}

static bool dns_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

/* n bytes of lowercase letters, digits and '-', alphanumeric at both ends, 1 to max long. */
static bool valid_label_n(const char *s, size_t n, size_t max)
{
    if (n < 1 || n > max || !dns_char(s[0]) || !dns_char(s[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!dns_char(s[i]) && s[i] != '-')
            return false;
    return true;
}

/* A DNS-1123 label (a namespace): at most 63. */
static bool valid_label(const char *s) { return valid_label_n(s, strlen(s), 63); }

/* A DNS-1123 subdomain (most object names) as Kubernetes checks it: labels joined by dots, 253 in all. */
static bool valid_subdomain(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 253)
        return false;
    for (const char *p = s;;) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if (!valid_label_n(p, len, 253))
            return false;
        if (!dot)
            return true;
        p = dot + 1;
    }
}

static bool printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

static bool valid_url(const char *s)
{
    const char *rest = strncmp(s, "http://", 7) == 0 ? s + 7 : strncmp(s, "https://", 8) == 0 ? s + 8 : NULL;
    return rest && *rest && *rest != '/' && strlen(s) < POOLCFG_URL_MAX && printable(s) && !strpbrk(s, " ");
}

static bool valid_path(const char *s) { return *s && strlen(s) < POOLCFG_PATH_MAX && printable(s); }

/* A duration exactly, in its largest whole unit: "0s", "500ms", "90s", "5m", "24h". */
static void ms_text(int64_t ms, char *out, size_t outlen)
{
    static const struct { const char *unit; int64_t ms; } units[] = {
        { "h", MS_HOUR }, { "m", 60 * MS_SECOND }, { "s", MS_SECOND }, { "ms", 1 },
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (ms % units[i].ms == 0 || units[i].ms == 1) {
            snprintf(out, outlen, "%" PRId64 "%s", ms / units[i].ms, ms == 0 ? "s" : units[i].unit);
            return;
        }
    }
}

static const struct {
    bool        text;               /* a string (checked by valid), else a number (checked against min, max) */
    bool (*valid)(const char *s);
    const char *allowed;            /* what follows "must be"; a number's limits follow it */
} kinds[] = {
    [PK_ID] = { true, valid_id, "1 to 64 letters, digits, '.', '_' or '-'" },
    [PK_LABEL] = { true, valid_label, "a DNS-1123 label: 1 to 63 lowercase letters, digits or '-', starting and "
                                      "ending with a letter or digit" },
    [PK_SUBDOMAIN] = { true, valid_subdomain, "a DNS-1123 subdomain: at most 253 lowercase letters, digits, '-' "
                                              "or '.', each part between dots starting and ending with a letter "
                                              "or digit" },
    [PK_PORT] = { false, NULL, "a port number" },
    [PK_INT] = { false, NULL, "a whole number" },
    [PK_DURATION] = { false, NULL, "a duration such as \"30s\", \"5m\" or \"1h30m\" (or whole seconds)" },
    [PK_URL] = { true, valid_url, "an http:// or https:// URL of at most 511 characters" },
    [PK_PATH] = { true, valid_path, "a file path of 1 to 1023 characters" },
};

static bool pk_is_text(const pool_key *k) { return kinds[k->kind].text; }

/* "a whole number from 0 to 2048", "a DNS-1123 label: …". */
static void pk_allowed(const pool_key *k, char *out, size_t outlen)
{
    char lo[32], hi[32];
    if (pk_is_text(k)) {
        snprintf(out, outlen, "%s", kinds[k->kind].allowed);
        return;
    }
    if (k->kind == PK_DURATION) {
        ms_text(k->min, lo, sizeof lo);
        ms_text(k->max, hi, sizeof hi);
    } else {
        snprintf(lo, sizeof lo, "%" PRId64, k->min);
        snprintf(hi, sizeof hi, "%" PRId64, k->max);
    }
    snprintf(out, outlen, "%s from %s to %s", kinds[k->kind].allowed, lo, hi);
}

static void pk_store_number(poolcfg_pool *p, const pool_key *k, int64_t v)
{
    char *dst = (char *)p + k->off;
    if (k->size == sizeof(int)) {
        int i = (int)v;
        memcpy(dst, &i, sizeof i);
    } else {
        memcpy(dst, &v, sizeof v);
    }
}

static int64_t pk_load_number(const poolcfg_pool *p, const pool_key *k)
{
    const char *src = (const char *)p + k->off;
    if (k->size == sizeof(int)) {
        int i;
        memcpy(&i, src, sizeof i);
        return i;
    }
    int64_t v;
    memcpy(&v, src, sizeof v);
    return v;
}

/* Copies text that its kind's check has accepted (which also bounds its length). */
static void pk_store_text(poolcfg_pool *p, const pool_key *k, const char *s)
{
    snprintf((char *)p + k->off, k->size, "%s", s);
}

static void pool_defaults(poolcfg_pool *p)
{
    memset(p, 0, sizeof *p);
    for (size_t i = 0; i < NKEYS; i++) {
        const pool_key *k = &pool_keys[i];
        if (!k->def)
            continue;
        if (pk_is_text(k)) {
            pk_store_text(p, k, k->def);
            continue;
        }
        int64_t v = 0;
        if (k->kind == PK_DURATION)
            cfg_parse_duration(k->def, &v); /* the table's own defaults: they parse */
        else
            v = strtoll(k->def, NULL, 10);
        pk_store_number(p, k, v);
    }
}

/* ---- messages ---- */

static void errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}


/* What a JSON value is, for "(got …)": a number or string as written, else its type. */
static void describe(const cJSON *it, char *out, size_t outlen)
{
    if (cJSON_IsString(it) && it->valuestring) {
        cfg_quote_value(it->valuestring, out, outlen);
    } else if (cJSON_IsNumber(it)) {
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(out, outlen, "%.*g", prec, it->valuedouble);
            if (strtod(out, NULL) == it->valuedouble)
                break;
        }
    } else {
        snprintf(out, outlen, "%s", cJSON_IsBool(it) ? (cJSON_IsTrue(it) ? "true" : "false")
                                    : cJSON_IsArray(it) ? "an array"
                                    : cJSON_IsObject(it) ? "an object"
                                    : "null");
    }
}

/* Where in the file: "SOURCE: pools[1] (\"pool-b\"): ". */
typedef struct {
    const char *source;
    int         index;
    const char *id; /* "" until the pool's id is read and valid */
} pool_where;

static void pool_errf(const pool_where *w, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void pool_errf(const pool_where *w, char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    int n = w->id[0] ? snprintf(err, errlen, "%s: pools[%d] (\"%s\"): ", w->source, w->index, w->id)
                     : snprintf(err, errlen, "%s: pools[%d]: ", w->source, w->index);
    if (n < 0 || (size_t)n >= errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

static void bad_key_value(const pool_where *w, const pool_key *k, const cJSON *found, char *err, size_t errlen)
{
    char allowed[320], got[128];
    pk_allowed(k, allowed, sizeof allowed);
    describe(found, got, sizeof got);
    pool_errf(w, err, errlen, "\"%s\" must be %s (got %s)", k->name, allowed, got);
}

/* ---- the pool file ---- */

static const pool_key *find_key(const char *parent, const char *key)
{
    for (size_t i = 0; i < NKEYS; i++) {
        const pool_key *k = &pool_keys[i];
        bool same_parent = parent ? k->parent && strcmp(parent, k->parent) == 0 : !k->parent;
        if (same_parent && strcmp(k->key, key) == 0)
            return k;
    }
    return NULL;
}

/* "id, namespace, …, headroom, …" — the keys an object at parent may hold. */
static void list_keys(const char *parent, char *out, size_t outlen)
{
    size_t o = 0;
    out[0] = '\0';
    bool headroom_listed = false;
    for (size_t i = 0; i < NKEYS && o < outlen; i++) {
        const pool_key *k = &pool_keys[i];
        const char *name = NULL;
        if (parent ? k->parent && strcmp(k->parent, parent) == 0 : !k->parent)
            name = k->key;
        else if (!parent && k->parent && !headroom_listed)
            name = k->parent, headroom_listed = true;
        if (name)
            o += (size_t)snprintf(out + o, outlen - o, "%s%s", o ? ", " : "", name);
    }
}

/* A member that appears twice in one object: cJSON keeps both, and which one counts would be a guess. */
static const cJSON *earlier_twin(const cJSON *obj, const cJSON *member)
{
    for (const cJSON *c = obj->child; c && c != member; c = c->next)
        if (c->string && member->string && strcmp(c->string, member->string) == 0)
            return c;
    return NULL;
}

static int set_from_json(poolcfg_pool *p, const pool_key *k, const cJSON *obj, const cJSON *it,
                         const pool_where *w, char *err, size_t errlen)
{
    char jerr[160];
    if (cJSON_IsNull(it))
        return 0; /* as the strict getters read it: null is absent, the default stands */
    if (pk_is_text(k)) {
        const char *s = NULL;
        if (json_get_string(obj, k->key, true, &s, jerr, sizeof jerr) != 0 || !kinds[k->kind].valid(s)) {
            bad_key_value(w, k, it, err, errlen);
            return -1;
        }
        pk_store_text(p, k, s);
        return 0;
    }
    int64_t v;
    if (k->kind == PK_DURATION && cJSON_IsString(it)) {
        if (cfg_parse_duration(it->valuestring, &v) < 0)
            v = NOT_GIVEN;
    } else if (json_get_i64(obj, k->key, true, &v, jerr, sizeof jerr) != 0) {
        v = NOT_GIVEN;
    } else if (k->kind == PK_DURATION) { /* whole seconds */
        v = v >= 0 && v <= k->max / MS_SECOND ? v * MS_SECOND : NOT_GIVEN;
    }
    if (v == NOT_GIVEN || v < k->min || v > k->max) {
        bad_key_value(w, k, it, err, errlen);
        return -1;
    }
    pk_store_number(p, k, v);
    return 0;
}

/* The members of obj, an object at parent (NULL: the pool itself; "headroom": its headroom). */
static int set_members(poolcfg_pool *p, const cJSON *obj, const char *parent, const pool_where *w, char *err,
                       size_t errlen)
{
    for (const cJSON *it = obj->child; it; it = it->next) {
        char name[128], allowed[320];
        snprintf(name, sizeof name, "%s%s%s", parent ? parent : "", parent ? "." : "", it->string ? it->string : "");
        if (earlier_twin(obj, it)) {
            pool_errf(w, err, errlen, "key \"%s\" appears twice: give each key once", name);
            return -1;
        }
        const pool_key *k = find_key(parent, it->string ? it->string : "");
        if (!k && !parent && it->string && strcmp(it->string, "headroom") == 0) {
            if (cJSON_IsNull(it))
                continue;
            if (!cJSON_IsObject(it)) {
                char got[128];
                describe(it, got, sizeof got);
                pool_errf(w, err, errlen, "\"headroom\" must be an object such as {\"slot0\": 1, \"plan\": 2} "
                          "(got %s)", got);
                return -1;
            }
            if (set_members(p, it, "headroom", w, err, errlen) < 0)
                return -1;
            continue;
        }
        if (!k) {
            list_keys(parent, allowed, sizeof allowed);
            pool_errf(w, err, errlen, "unknown key \"%s\" (allowed: %s)", name, allowed);
            return -1;
        }
        if (set_from_json(p, k, obj, it, w, err, errlen) < 0)
            return -1;
    }
    return 0;
}

/* The deployment's default is derived from the id; an id that is no Kubernetes name needs one given. */
static int derive_deployment(poolcfg_pool *p, char *why, size_t whylen)
{
    if (p->deployment[0])
        return 0;
    char name[POOLCFG_NAME_MAX];
    snprintf(name, sizeof name, "iac-agent-%s", p->id);
    if (!valid_subdomain(name)) {
        char allowed[320];
        pk_allowed(&pool_keys[KEY_DEPLOYMENT], allowed, sizeof allowed);
        strbuf_fixed_printf(why, whylen, "its default \"%s\" is not %s", name, allowed);
        return -1;
    }
    snprintf(p->deployment, sizeof p->deployment, "%s", name);
    return 0;
}

static int parse_pool(poolcfg_pool *p, const cJSON *obj, pool_where *w, char *err, size_t errlen)
{
    char got[128], allowed[320];
    if (!cJSON_IsObject(obj)) {
        describe(obj, got, sizeof got);
        pool_errf(w, err, errlen, "must be an object such as {\"id\": \"pool-a\", \"max_replicas\": 10} (got %s)",
                  got);
        return -1;
    }
    pool_defaults(p);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(obj, "id");
    if (!id || cJSON_IsNull(id)) {
        pk_allowed(&pool_keys[KEY_ID], allowed, sizeof allowed);
        pool_errf(w, err, errlen, "\"id\" is required: the pool id, %s", allowed);
        return -1;
    }
    /* The id first, so that every later message names the pool. */
    if (set_from_json(p, &pool_keys[KEY_ID], obj, id, w, err, errlen) < 0)
        return -1;
    w->id = p->id;
    if (set_members(p, obj, NULL, w, err, errlen) < 0)
        return -1;
    char why[400];
    if (derive_deployment(p, why, sizeof why) < 0) {
        pool_errf(w, err, errlen, "\"deployment\" is not set and %s: set \"deployment\"", why);
        return -1;
    }
    return 0;
}

/* Two pools with one id, or two pools scaling one Deployment, would fight over it every cycle. */
static int check_unique(const poolcfg *cfg, int i, const char *source, char *err, size_t errlen)
{
    const poolcfg_pool *p = &cfg->pools[i];
    for (int j = 0; j < i; j++) {
        const poolcfg_pool *q = &cfg->pools[j];
        if (strcmp(p->id, q->id) == 0) {
            errf(err, errlen, "%s: pools[%d]: id \"%s\" is already the id of pools[%d]: each pool needs its own id",
                 source, i, p->id, j);
            return -1;
        }
        if (strcmp(p->namespace_, q->namespace_) == 0 && strcmp(p->deployment, q->deployment) == 0) {
            errf(err, errlen, "%s: pools[%d] (\"%s\"): Deployment %s/%s is already scaled by pools[%d] (\"%s\"): "
                 "each pool needs its own Deployment", source, i, p->id, p->namespace_, p->deployment, j, q->id);
            return -1;
        }
    }
    return 0;
}

int poolcfg_parse_pools(poolcfg *cfg, const char *text, size_t len, const char *source, char *err, size_t errlen)
{
    char jerr[200], got[128];
    cfg->npools = 0;
    cJSON *root = json_parse_object(text, len, jerr, sizeof jerr);
    if (!root) {
        errf(err, errlen, "%s: %s", source, jerr);
        return -1;
    }
    int rc = -1;
    const cJSON *pools = NULL;
    for (const cJSON *it = root->child; it; it = it->next) {
        if (!it->string || strcmp(it->string, "pools") != 0) {
            errf(err, errlen, "%s: unknown key \"%s\" (allowed: pools)", source, it->string ? it->string : "");
            goto out;
        }
        if (earlier_twin(root, it)) {
            errf(err, errlen, "%s: key \"pools\" appears twice: give it once", source);
            goto out;
        }
    }
    pools = cJSON_GetObjectItemCaseSensitive(root, "pools");
    if (!pools || cJSON_IsNull(pools)) {
        errf(err, errlen, "%s: \"pools\" is required: an array of pool objects such as "
             "{\"pools\": [{\"id\": \"pool-a\"}]}", source);
        goto out;
    }
    if (!cJSON_IsArray(pools)) {
        describe(pools, got, sizeof got);
        errf(err, errlen, "%s: \"pools\" must be an array of pool objects (got %s)", source, got);
        goto out;
    }
    int n = cJSON_GetArraySize(pools);
    if (n == 0) {
        errf(err, errlen, "%s: \"pools\" is empty: give at least one pool", source);
        goto out;
    }
    if (n > POOLCFG_MAX_POOLS) {
        errf(err, errlen, "%s: \"pools\" has %d entries: at most %d pools are allowed", source, n,
             POOLCFG_MAX_POOLS);
        goto out;
    }
    int i = 0;
    for (const cJSON *obj = pools->child; obj; obj = obj->next, i++) {
        pool_where w = { source, i, "" };
        if (parse_pool(&cfg->pools[i], obj, &w, err, errlen) < 0 || check_unique(cfg, i, source, err, errlen) < 0)
            goto out;
    }
    cfg->npools = n;
    rc = 0;
out:
    cJSON_Delete(root);
    return rc;
}

/* ---- flags and environment ---- */

typedef struct {
    const char *text[NKEYS]; /* the single-pool flags of text kinds, NULL when not given */
    int64_t     num[NKEYS];  /* the others, NOT_GIVEN when not given */
} pool_flags;

static const cfg_kind flag_kind[] = {
    [PK_ID] = CFG_STRING, [PK_LABEL] = CFG_STRING, [PK_SUBDOMAIN] = CFG_STRING, [PK_PORT] = CFG_PORT,
    [PK_INT] = CFG_INT, [PK_DURATION] = CFG_DURATION, [PK_URL] = CFG_STRING, [PK_PATH] = CFG_STRING,
};

/* The option table: the global settings, then one flag per pool key. with_defaults is for --help only (see the
 * top comment). Returns the number of entries; t has room for OPTIONS_MAX. */
#define OPTIONS_MAX 48
static size_t option_table(poolcfg *c, pool_flags *pf, cfg_option *t, bool with_defaults)
{
    const cfg_option globals[] = {
        { "IAC_COORD_CONFIG", "config", CFG_STRING, &c->config_path, NULL, NULL, 1, 0, NULL, "config file",
          "pool file (JSON, below); or one pool from the flags after --pool", false, false },
        { "IAC_COORD_CYCLE", "cycle", CFG_DURATION, &c->cycle_ms, NULL, "5s", 100, 5 * 60 * MS_SECOND, NULL,
          "cycle", "time between two observe-decide-act cycles", false, false },
        { "IAC_COORD_LISTEN", "listen", CFG_HOSTPORT, c->listen_host, &c->listen_port, "0.0.0.0:9190", 0, 65535,
          NULL, "listen address", "API address host:port (pools, explain, metrics, health)", false, false },
        { NULL, "kubeconfig", CFG_STRING, &c->kubeconfig, NULL, NULL, 1, 0, NULL, "kubeconfig",
          "kubeconfig file (default: in cluster, else $KUBECONFIG, else ~/.kube/config)", false, false },
        { NULL, "context", CFG_STRING, &c->context, NULL, NULL, 1, 0, NULL, "context",
          "kubeconfig context (default: its current-context)", false, false },
        { "IAC_COORD_LEADER_ELECT", "leader-elect", CFG_BOOL, &c->leader_elect, NULL, "true", 0, 0, NULL,
          "leader election", "act only while holding the Lease (--leader-elect=false: always act)", false, false },
        { NULL, "lease-name", CFG_STRING, &c->lease_name, NULL, "iac-coordinator", 1, 0, NULL, "lease name",
          "name of the coordination.k8s.io Lease", false, false },
        { NULL, "lease-namespace", CFG_STRING, &c->lease_namespace, NULL, NULL, 1, 0, NULL, "lease namespace",
          "namespace of the Lease (default: the coordinator's own namespace)", false, false },
        { "POD_NAME", "identity", CFG_STRING, &c->identity, NULL, NULL, 1, 0, NULL, "identity",
          "this replica's name in the Lease (default: host name and process id)", false, false },
        { NULL, "lease-duration", CFG_DURATION, &c->lease_duration_ms, NULL, "15s", MS_SECOND, MS_HOUR, NULL,
          "lease duration", "how long a Lease not renewed stays with its holder", false, false },
        { NULL, "renew-deadline", CFG_DURATION, &c->renew_deadline_ms, NULL, "10s", 500, MS_HOUR, NULL,
          "renew deadline", "the leader stops acting when it could not renew for this long", false, false },
        { NULL, "retry-period", CFG_DURATION, &c->retry_period_ms, NULL, "2s", 100, MS_HOUR, NULL, "retry period",
          "time between two attempts to acquire or renew the Lease", false, false },
        { "IAC_COORD_LOG_LEVEL", "log-level", CFG_ENUM, &c->log_level, NULL, "info", 0, 0, "debug|info|warn|error",
          "log level", "lowest level logged", false, false },
        { "IAC_COORD_LOG_FORMAT", "log-format", CFG_ENUM, &c->log_format, NULL, "text", 0, 0, "text|json",
          "log format", "log line format", false, false },
    };
    size_t n = sizeof globals / sizeof globals[0];
    memcpy(t, globals, sizeof globals);
    for (size_t i = 0; i < NKEYS; i++, n++) {
        const pool_key *k = &pool_keys[i];
        bool text = pk_is_text(k);
        const char *def = !with_defaults ? NULL : i == KEY_DEPLOYMENT ? "iac-agent-<pool>" : k->def;
        t[n] = (cfg_option){ NULL, k->flag, flag_kind[k->kind], text ? (void *)&pf->text[i] : (void *)&pf->num[i],
                             NULL, def, text ? 1 : k->min, text ? 0 : k->max, NULL, k->name, k->help, false,
                             false };
    }
    return n;
}

/* The single pool from --pool and its flags; the numbers were range-checked by cfg_parse. */
static int pool_from_flags(poolcfg_pool *p, const pool_flags *pf, char *err, size_t errlen)
{
    pool_defaults(p);
    for (size_t i = 0; i < NKEYS; i++) {
        const pool_key *k = &pool_keys[i];
        if (!pk_is_text(k)) {
            if (pf->num[i] != NOT_GIVEN)
                pk_store_number(p, k, pf->num[i]);
            continue;
        }
        if (!pf->text[i])
            continue;
        if (!kinds[k->kind].valid(pf->text[i])) {
            char allowed[320], q[128];
            pk_allowed(k, allowed, sizeof allowed);
            cfg_quote_value(pf->text[i], q, sizeof q);
            errf(err, errlen, "--%s=%s is not allowed: must be %s", k->flag, q, allowed);
            return -1;
        }
        pk_store_text(p, k, pf->text[i]);
    }
    char why[400];
    if (derive_deployment(p, why, sizeof why) < 0) {
        errf(err, errlen, "--deployment is not set and %s: give --deployment", why);
        return -1;
    }
    return 0;
}

/* How the config file was given: its flag, or the environment variable its value points into. */
static const char *config_via(const poolcfg *c, char **envp)
{
    static const char var[] = "IAC_COORD_CONFIG=";
    for (char **e = envp; e && *e; e++)
        if (strncmp(*e, var, sizeof var - 1) == 0 && c->config_path == *e + sizeof var - 1)
            return "IAC_COORD_CONFIG";
    return "--config";
}

static int load_file(poolcfg *c, char **envp, char *err, size_t errlen)
{
    char source[POOLCFG_PATH_MAX + 32];
    snprintf(source, sizeof source, "%s=%s", config_via(c, envp), c->config_path);
    char *text = NULL;
    size_t len = 0;
    int rc = fs_read_file(c->config_path, POOLCFG_FILE_MAX, &text, &len);
    if (rc < 0) {
        errf(err, errlen, "%s: cannot be read: %s", source,
             rc == -EFBIG ? "larger than 1 MiB, too large for a pool file" : strerror(-rc));
        return -1;
    }
    rc = poolcfg_parse_pools(c, text, len, source, err, errlen);
    free(text);
    return rc;
}

/* What one table entry cannot say: the lease timings in their order, and the Lease's names. */
static int check_globals(const poolcfg *c, char *err, size_t errlen)
{
    char a[32], b[32];
    if (c->renew_deadline_ms >= c->lease_duration_ms) {
        ms_text(c->renew_deadline_ms, a, sizeof a);
        ms_text(c->lease_duration_ms, b, sizeof b);
        errf(err, errlen, "--renew-deadline=%s is not allowed: must be shorter than --lease-duration (%s)", a, b);
        return -1;
    }
    if (c->retry_period_ms >= c->renew_deadline_ms) {
        ms_text(c->retry_period_ms, a, sizeof a);
        ms_text(c->renew_deadline_ms, b, sizeof b);
        errf(err, errlen, "--retry-period=%s is not allowed: must be shorter than --renew-deadline (%s)", a, b);
        return -1;
    }
    static const struct { const char *flag; size_t off; pk_kind kind; } names[] = {
        { "lease-name", offsetof(poolcfg, lease_name), PK_SUBDOMAIN },
        { "lease-namespace", offsetof(poolcfg, lease_namespace), PK_LABEL },
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = *(const char *const *)((const char *)c + names[i].off);
        if (v && !kinds[names[i].kind].valid(v)) {
            char q[128];
            cfg_quote_value(v, q, sizeof q);
            errf(err, errlen, "--%s=%s is not allowed: must be %s", names[i].flag, q, kinds[names[i].kind].allowed);
            return -1;
        }
    }
    return 0;
}

int poolcfg_load(poolcfg *cfg, int argc, char **argv, char **envp, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    if (err && errlen)
        err[0] = '\0';
    pool_flags pf;
    for (size_t i = 0; i < NKEYS; i++) {
        pf.text[i] = NULL;
        pf.num[i] = NOT_GIVEN;
    }
    cfg_option table[OPTIONS_MAX];
    size_t n = option_table(cfg, &pf, table, false);
    int rc = cfg_parse(table, n, argc, argv, envp, NULL, NULL, err, errlen);
    if (rc == CFG_HELP)
        return POOLCFG_HELP;
    if (rc == CFG_VERSION)
        return POOLCFG_VERSION;
    if (rc != CFG_OK || check_globals(cfg, err, errlen) < 0)
        return POOLCFG_ERR;

    if (!cfg->identity) {
        char host[256];
        if (gethostname(host, sizeof host) != 0)
            snprintf(host, sizeof host, "iac-coordinator");
        host[sizeof host - 1] = '\0';
        snprintf(cfg->identity_buf, sizeof cfg->identity_buf, "%s_%ld", host, (long)getpid());
        cfg->identity = cfg->identity_buf;
    }

    const pool_key *first_given = NULL;
    for (size_t i = 0; i < NKEYS && !first_given; i++)
        if (pf.text[i] || pf.num[i] != NOT_GIVEN)
            first_given = &pool_keys[i];
    if (cfg->config_path && pf.text[KEY_ID]) {
        errf(err, errlen, "%s and --pool cannot be used together: describe the pools in the file, or one pool "
             "with --pool and its flags", config_via(cfg, envp));
        return POOLCFG_ERR;
    }
    if (cfg->config_path && first_given) {
        errf(err, errlen, "--%s is not allowed with %s: it describes the single pool of --pool; with a pool file, "
             "set \"%s\" in the file", first_given->flag, config_via(cfg, envp), first_given->name);
        return POOLCFG_ERR;
    }
    if (cfg->config_path)
        return load_file(cfg, envp, err, errlen) == 0 ? POOLCFG_OK : POOLCFG_ERR;
    if (pf.text[KEY_ID]) {
        if (pool_from_flags(&cfg->pools[0], &pf, err, errlen) < 0)
            return POOLCFG_ERR;
        cfg->npools = 1;
        return POOLCFG_OK;
    }
    if (first_given) {
        errf(err, errlen, "--%s needs --pool ID: the single-pool flags describe the pool that --pool names (or "
             "give a pool file with --config)", first_given->flag);
        return POOLCFG_ERR;
    }
    errf(err, errlen, "no pools: give --config FILE (or IAC_COORD_CONFIG) or --pool ID");
    return POOLCFG_ERR;
}

/* ---- the checks of every cycle ---- */

static bool max_zero(const poolcfg_pool *p) { return p->scale.max_replicas < 1; }
static bool min_above_max(const poolcfg_pool *p) { return p->scale.min_replicas > p->scale.max_replicas; }

static void explain_max_zero(const poolcfg_pool *p, char *err, size_t errlen)
{
    errf(err, errlen, "max_replicas is %d: the pool can never run a pod (set max_replicas to at least 1)",
         p->scale.max_replicas);
}

static void explain_min_above_max(const poolcfg_pool *p, char *err, size_t errlen)
{
    errf(err, errlen, "min_replicas %d is above max_replicas %d (lower min_replicas or raise max_replicas)",
         p->scale.min_replicas, p->scale.max_replicas);
}

static const struct {
    const char *reason; /* the metric's label */
    bool (*broken)(const poolcfg_pool *p);
    void (*explain)(const poolcfg_pool *p, char *err, size_t errlen);
} cycle_checks[] = {
    { "max_zero", max_zero, explain_max_zero },
    { "min_above_max", min_above_max, explain_min_above_max },
};

int poolcfg_check(const poolcfg_pool *p, char *reason, size_t reasonlen, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof cycle_checks / sizeof cycle_checks[0]; i++) {
        if (cycle_checks[i].broken(p)) {
            errf(reason, reasonlen, "%s", cycle_checks[i].reason);
            cycle_checks[i].explain(p, err, errlen);
            return -1;
        }
    }
    /* The file's own ranges (which lie within scaler_config's): only a pool built by other means can miss them. */
    for (size_t i = 0; i < NKEYS; i++) {
        const pool_key *k = &pool_keys[i];
        if (pk_is_text(k))
            continue;
        int64_t v = pk_load_number(p, k);
        if (v < k->min || v > k->max) {
            char allowed[320];
            pk_allowed(k, allowed, sizeof allowed);
            errf(reason, reasonlen, "out_of_range");
            errf(err, errlen, "%s is %" PRId64 "%s: must be %s", k->name, v, k->kind == PK_DURATION ? " ms" : "",
                 allowed);
            return -1;
        }
    }
    if (reason && reasonlen)
        reason[0] = '\0';
    if (err && errlen)
        err[0] = '\0';
    return 0;
}

/* ---- help ---- */

void poolcfg_print_help(FILE *out)
{
    poolcfg *c = calloc(1, sizeof *c); /* only for the table's destinations, which help never writes */
    pool_flags pf;
    cfg_option table[OPTIONS_MAX];
    fprintf(out,
            "Usage: iac-coordinator [--flag value]...\n"
            "       iac-coordinator status|explain ...\n"
            "\n"
            "Scales Terranova agent pools in Kubernetes from ground truth: every cycle it lists each pool's pods,\n"
            "reads every agent's slot table, decides the pool's size and scales its Deployment without removing a\n"
            "busy or reserved pod. Settings are flags; those with a variable can also come from the environment\n"
            "(flags win). Pools come from a pool file (--config) or, for one pool, from the flags after --pool.\n"
            "\n");
    if (c) {
        size_t n = option_table(c, &pf, table, true);
        cfg_print_help(out, table, n);
        free(c);
    }
    fprintf(out,
            "\n"
            "Pool file (JSON; unknown keys are refused; durations as \"30s\", \"5m\", \"1h30m\" or whole seconds):\n"
            "  {\"pools\": [{\"id\": \"pool-a\", \"namespace\": \"terraform\", \"max_replicas\": 10,\n"
            "              \"headroom\": {\"slot0\": 1, \"plan\": 2}, \"scale_down_window\": \"5m\"}]}\n"
            "\n");
    for (size_t i = 0; i < NKEYS; i++) {
        const pool_key *k = &pool_keys[i];
        char allowed[320], def[64];
        pk_allowed(k, allowed, sizeof allowed);
        if (i == KEY_ID)
            snprintf(def, sizeof def, "(required)");
        else if (i == KEY_DEPLOYMENT)
            snprintf(def, sizeof def, "(default iac-agent-<id>)");
        else if (k->def)
            snprintf(def, sizeof def, "(default %s)", k->def);
        else
            snprintf(def, sizeof def, "(optional)");
        fprintf(out, "  %-21s %-24s %s; %s\n", k->name, def, k->help, allowed);
    }
    fprintf(out,
            "\n"
            "Checked every cycle, and reported once per change without stopping other pools: min_replicas <=\n"
            "max_replicas, max_replicas >= 1, the Deployment exists and RBAC allows what the coordinator needs.\n"
            "Exit status 2 on bad configuration.\n");
}
