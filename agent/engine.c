/* engine.c — resolves, downloads, verifies and caches terraform/tofu binaries; see engine.h.
 *
 * One entry per version (plus one for "latest", whose only work is the E18 lookup), kept for the life of the
 * cache, so that every asynchronous step can point at its entry without reference counting. An entry walks
 *
 *     IDLE → LOOKUP → CHECK ─(cached binary runs)──────────────────────────→ READY
 *                          └─(absent or broken)→ DOWNLOAD → UNPACK → VERIFY ─┘
 *
 * and any failure sends it back to IDLE (failures are not remembered). Each step starts one asynchronous
 * operation — an httpc request, a thread-pool job (hashing and unpacking tens of megabytes would stall every
 * other task's heartbeats and logs if done on the loop), a child process — and names the next step in its
 * completion. Waiters hang on their entry's list while it works; whatever the outcome, they move to the cache's
 * `soon` list and are answered from a zero timer. Answering only from that one place means a callback can never
 * run inside engine_ensure() or inside one of our own steps, so a callback may call anything here (ensure again,
 * cancel another waiter, free the cache).
 *
 * Lifetimes follow httpc.c: every entry from the loop is bracketed by cache_enter/leave; engine_cache_free()
 * inside one only marks the cache, and the teardown (cancel requests, kill children, cancel queued jobs) runs
 * when the outermost entry leaves. The memory goes when the last thing still running — a child's handles, a
 * thread-pool job that had already started — has reported back.
 *
 * The thread-pool job touches only its entry's job fields (paths and the checksum in, an error text out) and
 * the file system; nothing else on either side reads or writes them while it runs. It also calls libarchive
 * through the cache's table, which the loop fills before it queues the first job and which does not change until
 * the cache is released.
 *
 * libarchive is not linked: only unpacking a downloaded zip needs it, and it brings libxml2, ICU and libstdc++,
 * whose loading and constructors cost every start about 2.6 MiB resident and 2 ms, even for an agent that never
 * downloads an engine (IAC_ENGINE_PATH, or engines already cached). The first unpack loads it (uv_dlopen) and
 * looks up the few functions it calls; archive.h still gives each of them its type. */
#include "engine.h"

#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "iac/digest.h"
#include "iac/dynlib.h"
#include "iac/fsutil.h"
#include "iac/json.h"
#include "iac/log.h"

#define ENGINE_VERSION_MAX      64
#define ENGINE_DOWNLOAD_MS      (30L * 60 * 1000)
#define ENGINE_MAX_ZIP          ((int64_t)1 << 30) /* terraform's zips are ~30 MB; anything near this is hostile */
#define ENGINE_MAX_BINARY       ((int64_t)1 << 30)
#define ENGINE_VERSION_RUN_MS   30000
#define ENGINE_ERR_MAX          2048
#define ENGINE_DIR_MAX          900  /* {data_dir}/engines; longer data dirs are refused */
#define ENGINE_PATH_MAX         1024 /* anything under it (version ≤ 64, names ≤ 32) */
#define ENGINE_BINARY_NAME      "terraform" /* the cached file's name, tofu included (layout of ref §7.2) */
#define ENGINE_TMP_PREFIX       ".tmp-"
#define ENGINE_ARCHIVE_LIB      "libarchive.so.13" /* Debian's libarchive13 */

/* The libarchive functions unpacking calls, each found by its name and typed by its declaration in archive.h. */
#define ENGINE_ARCHIVE_FUNCS(X)                                                                                   \
    X(archive_read_new) X(archive_read_support_format_zip) X(archive_read_open_filename)                          \
    X(archive_read_next_header) X(archive_read_data) X(archive_read_free) X(archive_error_string)                 \
    X(archive_entry_pathname) X(archive_entry_filetype) X(archive_entry_hardlink)

typedef struct {
#define X(f) __typeof__(f) *f;
    ENGINE_ARCHIVE_FUNCS(X)
#undef X
} libarchive_api;

static const dynlib_sym libarchive_syms[] = {
#define X(f) { #f, offsetof(libarchive_api, f) },
    ENGINE_ARCHIVE_FUNCS(X)
#undef X
};

typedef struct engine_entry engine_entry;

typedef enum { ENTRY_IDLE, ENTRY_LOOKUP, ENTRY_CHECK, ENTRY_DOWNLOAD, ENTRY_UNPACK, ENTRY_VERIFY, ENTRY_READY }
    entry_state;

struct engine_wait {
    engine_cache *c;
    engine_wait **head;   /* the list it is on */
    engine_wait  *prev, *next;
    engine_cb     cb;
    void         *arg;
    char         *path, *error; /* the answer, once on the soon list */
    bool          answering;
};

struct engine_entry {
    engine_cache *c;
    engine_entry *next;
    bool          latest;  /* the "latest" entry: lookup only */
    char          version[ENGINE_VERSION_MAX + 1];
    entry_state   state;
    engine_wait  *waiters;
    char         *download_url, *checksum; /* from the lookup */
    char          bin[ENGINE_PATH_MAX];    /* {data_dir}/engines/{version}/terraform */
    httpc_call   *call;
    struct engine_run *run;
    /* the thread-pool job */
    uv_work_t     work;
    bool          working;
    char          tmp[ENGINE_PATH_MAX];    /* download directory, "" when none */
    char          job_err[ENGINE_ERR_MAX];
};

typedef void (*run_done)(engine_entry *e, bool ok, const char *why);

/* `<bin> version`: a child and its time limit. */
typedef struct engine_run {
    engine_cache *c;
    engine_entry *e;       /* NULL once abandoned */
    run_done      done;
    uv_process_t  proc;
    uv_timer_t    timer;
    int           open;    /* handles not yet closed */
    bool          timed_out;
} engine_run;

struct engine_cache {
    uv_loop_t    *loop;
    httpc        *http;
    char         *base_url, *data_dir, *engine_path;
    char *const  *token;
    long          download_timeout_ms;
    char          engines[ENGINE_DIR_MAX]; /* {data_dir}/engines */
    engine_entry *entries;
    engine_entry  latest;
    engine_wait  *soon;                  /* answered from soon_timer */
    uv_timer_t    soon_timer;
    unsigned      busy;                  /* open handles, running jobs */
    unsigned      depth;
    bool          freeing, torn_down;
    bool          ar_loaded;             /* ar and ar_lib are set: libarchive is loaded */
    uv_lib_t      ar_lib;
    libarchive_api ar;
};

static void step_check(engine_entry *e);
static void step_download(engine_entry *e);
static void cache_teardown(engine_cache *c);

/* ---- lifetimes ---------------------------------------------------------------------------------------------- */

static void entry_clear_meta(engine_entry *e)
{
    free(e->download_url);
    free(e->checksum);
    e->download_url = e->checksum = NULL;
}

static void wait_free(engine_wait *w)
{
    free(w->path);
    free(w->error);
    free(w);
}

static void cache_release(engine_cache *c)
{
    while (c->entries) {
        engine_entry *e = c->entries;
        c->entries = e->next;
        entry_clear_meta(e);
        free(e);
    }
    entry_clear_meta(&c->latest);
    if (c->ar_loaded)
        uv_dlclose(&c->ar_lib);
    free(c->base_url);
    free(c->data_dir);
    free(c->engine_path);
    free(c);
}

static void cache_maybe_release(engine_cache *c)
{
    if (c->freeing && c->torn_down && c->depth == 0 && c->busy == 0)
        cache_release(c);
}

static void cache_enter(engine_cache *c) { c->depth++; }

static void cache_leave(engine_cache *c)
{
    if (--c->depth == 0 && c->freeing) {
        if (!c->torn_down)
            cache_teardown(c);
        cache_maybe_release(c);
    }
}

static void busy_done(engine_cache *c)
{
    c->busy--;
    cache_maybe_release(c);
}

/* ---- waiters ------------------------------------------------------------------------------------------------ */

static void wait_push(engine_wait **head, engine_wait *w)
{
    w->head = head;
    w->prev = NULL;
    w->next = *head;
    if (*head)
        (*head)->prev = w;
    *head = w;
}

static void wait_unlink(engine_wait *w)
{
    if (!w->head)
        return;
    if (w->prev)
        w->prev->next = w->next;
    else
        *w->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->head = NULL;
    w->prev = w->next = NULL;
}

static void on_soon(uv_timer_t *t);

/* Moves every waiter of list to the soon list with this answer. */
static void answer_all(engine_cache *c, engine_wait **list, const char *path, const char *error)
{
    while (*list) {
        engine_wait *w = *list;
        wait_unlink(w);
        w->path = path ? strdup(path) : NULL;
        w->error = !path ? strdup(error ? error : "unknown error") : NULL;
        wait_push(&c->soon, w);
    }
    if (c->soon && !c->freeing)
        uv_timer_start(&c->soon_timer, on_soon, 0, 0);
}

static void on_soon(uv_timer_t *t)
{
    engine_cache *c = t->data;
    cache_enter(c);
    while (c->soon && !c->freeing) {
        engine_wait *w = c->soon;
        wait_unlink(w);
        w->answering = true; /* engine_cancel(w) from its own callback is a no-op */
        if (w->path)
            w->cb(w->path, NULL, w->arg);
        else
            w->cb(NULL, w->error ? w->error : "out of memory", w->arg);
        wait_free(w);
    }
    cache_leave(c);
}

/* ---- small rules -------------------------------------------------------------------------------------------- */

/* A version names a directory and a URL path segment: letters, digits, '.', '_', '+', '-', starting with a
 * letter or digit ("1.6.6", "1.7.0-rc1", "v1.5.7"). */
static bool version_ok(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > ENGINE_VERSION_MAX || !isalnum((unsigned char)v[0]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)v[i]) && !strchr("._+-", v[i]))
            return false;
    return true;
}

/* Copies s for an error message: printable ASCII only, at most max bytes, "…" when cut. */
static void printable(char *out, size_t outlen, const char *s, size_t max)
{
    size_t o = 0, i = 0;
    for (; s[i] && i < max && o + 1 < outlen; i++)
        out[o++] = (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f ? s[i] : '?';
    if (s[i] && o + 4 < outlen) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* A URL for messages and logs: scheme, host and path, without user info or query (download URLs may be signed). */
static void url_for_humans(char *out, size_t outlen, const char *url)
{
    const char *sep = strstr(url, "://");
    const char *auth = sep ? sep + 3 : url;
    size_t alen = strcspn(auth, "/?#");
    const char *at = memchr(auth, '@', alen);
    const char *host = at ? at + 1 : auth;
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%.*s%.*s", (int)(auth - url), url, (int)strcspn(host, "?#"), host);
    printable(out, outlen, tmp, 300);
}

typedef struct {
    char scheme[8];
    char host[256];
    int  port;
} url_origin;

/* scheme://[user@]host[:port]… → origin, host lower-cased, the scheme's port when none is given. -1 when the URL
 * is not http(s) or its authority is malformed. */
static int origin_parse(const char *url, url_origin *o)
{
    static const struct {
        const char *scheme;
        int         port;
    } schemes[] = { { "http", 80 }, { "https", 443 } };
    const char *sep = strstr(url, "://");
    if (!sep)
        return -1;
    size_t slen = (size_t)(sep - url);
    int port = -1;
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
        if (strlen(schemes[i].scheme) == slen && !strncasecmp(url, schemes[i].scheme, slen)) {
            snprintf(o->scheme, sizeof o->scheme, "%s", schemes[i].scheme);
            port = schemes[i].port;
        }
    if (port < 0)
        return -1;
    const char *auth = sep + 3;
    size_t alen = strcspn(auth, "/?#");
    const char *at = memrchr(auth, '@', alen);
    const char *host = at ? at + 1 : auth;
    size_t hlen = alen - (size_t)(host - auth);
    const char *colon = NULL;
    if (hlen && host[0] == '[') { /* [v6]:port */
        const char *close = memchr(host, ']', hlen);
        if (!close)
            return -1;
        colon = close + 1 < host + hlen && close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = memrchr(host, ':', hlen);
    }
    size_t name_len = colon ? (size_t)(colon - host) : hlen;
    if (name_len == 0 || name_len >= sizeof o->host)
        return -1;
    for (size_t i = 0; i < name_len; i++)
        o->host[i] = (char)tolower((unsigned char)host[i]);
    o->host[name_len] = '\0';
    o->port = port;
    if (colon && colon + 1 < host + hlen) {
        char *end;
        long p = strtol(colon + 1, &end, 10);
        if (end != host + hlen || p <= 0 || p > 65535)
            return -1;
        o->port = (int)p;
    }
    return 0;
}

/* The token goes only where it came from: a download on the control plane's own origin. */
static bool same_origin(const char *a, const char *b)
{
    url_origin x, y;
    return origin_parse(a, &x) == 0 && origin_parse(b, &y) == 0 && !strcmp(x.scheme, y.scheme) &&
           !strcmp(x.host, y.host) && x.port == y.port;
}

/* ref §7.3: markers in the lower-cased URL that mean an OpenTofu archive. */
static const char *const tofu_markers[] = { "opentofu", "tofu_", "/tofu/" };

const char *engine_binary_name(const char *url)
{
    char lower[2048];
    size_t n = 0;
    for (; url && url[n] && n + 1 < sizeof lower; n++)
        lower[n] = (char)tolower((unsigned char)url[n]);
    lower[n] = '\0';
    for (size_t i = 0; i < sizeof tofu_markers / sizeof tofu_markers[0]; i++)
        if (strstr(lower, tofu_markers[i]))
            return "tofu";
    return "terraform";
}

static bool binary_present(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* ---- entries ------------------------------------------------------------------------------------------------ */

static engine_entry *entry_get(engine_cache *c, const char *version)
{
    for (engine_entry *e = c->entries; e; e = e->next)
        if (!strcmp(e->version, version))
            return e;
    engine_entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->c = c;
    snprintf(e->version, sizeof e->version, "%s", version);
    snprintf(e->bin, sizeof e->bin, "%s/%s/%s", c->engines, version, ENGINE_BINARY_NAME);
    e->next = c->entries;
    c->entries = e;
    return e;
}

static void entry_ready(engine_entry *e)
{
    e->state = ENTRY_READY;
    log_info("engine", "terraform %s ready at %s", e->version, e->bin);
    answer_all(e->c, &e->waiters, e->bin, NULL);
}

static void entry_fail(engine_entry *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void entry_fail(engine_entry *e, const char *fmt, ...)
{
    char err[ENGINE_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, sizeof err, fmt, ap);
    va_end(ap);
    e->state = ENTRY_IDLE;
    entry_clear_meta(e);
    if (e->tmp[0]) {
        fs_rm_rf(e->tmp);
        e->tmp[0] = '\0';
    }
    log_warn("engine", "%s", err);
    answer_all(e->c, &e->waiters, NULL, err);
}

/* ---- step: version lookup (E18 / E19) ---------------------------------------------------------------------- */

typedef struct {
    const char *version, *download_url, *checksum;
} version_info;

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* {"version": {"version", "download_url", "checksum", "enabled", …}}, strictly. */
static int lookup_parse(const char *body, size_t len, cJSON **root, version_info *vi, char *err, size_t errlen)
{
    const cJSON *v = NULL;
    bool enabled = true;
    *root = json_parse_object(body, len, err, errlen);
    if (!*root)
        return -1;
    if (json_get_object(*root, "version", true, &v, err, errlen) < 0 ||
        json_get_string(v, "version", true, &vi->version, err, errlen) < 0 ||
        json_get_string(v, "download_url", true, &vi->download_url, err, errlen) < 0 ||
        json_get_string(v, "checksum", true, &vi->checksum, err, errlen) < 0 ||
        json_get_bool(v, "enabled", false, &enabled, err, errlen) < 0)
        return -1;
    char shown[96];
    printable(shown, sizeof shown, vi->version, 64);
    url_origin o;
    if (!version_ok(vi->version))
        return fail(err, errlen, "version.version \"%s\" is not a valid version string", shown);
    if (!enabled)
        return fail(err, errlen, "terraform version %s is not enabled", shown);
    if (origin_parse(vi->download_url, &o) < 0)
        return fail(err, errlen, "version.download_url is not an http(s) URL");
    if (!vi->checksum[0])
        return fail(err, errlen, "version.checksum is empty");
    return 0;
}

static void latest_resolved(engine_entry *l, const version_info *vi);

static void on_lookup(const httpc_response *res, void *arg)
{
    engine_entry *e = arg;
    engine_cache *c = e->c;
    char what[128], err[ENGINE_ERR_MAX];
    cache_enter(c);
    e->call = NULL;
    snprintf(what, sizeof what, "GET /api/v1/agents/terraform-versions/%s", e->latest ? "default" : e->version);
    if (res->error != HTTPC_OK) {
        entry_fail(e, "looking up terraform version %s: %s", e->latest ? "latest" : e->version, res->errmsg);
    } else if (res->status == 404) {
        if (e->latest)
            entry_fail(e, "no default terraform version configured");
        else
            entry_fail(e, "terraform version %s not found or not enabled", e->version);
    } else if (res->status < 200 || res->status > 299) {
        char body[256];
        printable(body, sizeof body, res->body, 200);
        entry_fail(e, "%s: request failed with status %ld: %s", what, res->status, body);
    } else {
        cJSON *root = NULL;
        version_info vi = { 0 };
        if (lookup_parse(res->body, res->body_len, &root, &vi, err, sizeof err) < 0) {
            entry_fail(e, "%s: invalid answer: %s", what, err);
        } else if (e->latest) {
            latest_resolved(e, &vi);
        } else if (!(e->download_url = strdup(vi.download_url)) || !(e->checksum = strdup(vi.checksum))) {
            entry_fail(e, "out of memory");
        } else {
            step_check(e);
        }
        cJSON_Delete(root);
    }
    cache_leave(c);
}

static void step_lookup(engine_entry *e)
{
    engine_cache *c = e->c;
    char url[1024];
    snprintf(url, sizeof url, "%s/api/v1/agents/terraform-versions/%s", c->base_url,
             e->latest ? "default" : e->version);
    e->state = ENTRY_LOOKUP;
    httpc_req req = { .method = "GET", .url = url, .bearer = c->token ? *c->token : NULL, .mode = HTTPC_PLAIN };
    e->call = httpc_request(c->http, &req, on_lookup, e);
    if (!e->call)
        entry_fail(e, "cannot start the terraform version lookup (%s)", url);
}

/* The default version is known: its waiters join that version's entry, which may already be ready or busy. */
static void latest_resolved(engine_entry *l, const version_info *vi)
{
    engine_cache *c = l->c;
    engine_entry *e = entry_get(c, vi->version);
    if (!e) {
        entry_fail(l, "out of memory");
        return;
    }
    l->state = ENTRY_IDLE;
    while (l->waiters) {
        engine_wait *w = l->waiters;
        wait_unlink(w);
        wait_push(&e->waiters, w);
    }
    if (e->state == ENTRY_READY && !binary_present(e->bin))
        e->state = ENTRY_IDLE; /* removed behind our back: install it again */
    if (e->state == ENTRY_READY) {
        answer_all(c, &e->waiters, e->bin, NULL);
    } else if (e->state == ENTRY_IDLE) {
        entry_clear_meta(e); /* a ready entry keeps its last answer */
        if (!(e->download_url = strdup(vi->download_url)) || !(e->checksum = strdup(vi->checksum)))
            entry_fail(e, "out of memory");
        else
            step_check(e);
    } /* else busy: its outcome answers them */
}

/* ---- `<bin> version` ---------------------------------------------------------------------------------------- */

static void run_handle_closed(uv_handle_t *h)
{
    engine_run *r = h->data;
    if (--r->open == 0) {
        engine_cache *c = r->c;
        free(r);
        busy_done(c);
    }
}

static void run_close(engine_run *r)
{
    uv_timer_stop(&r->timer);
    uv_close((uv_handle_t *)&r->timer, run_handle_closed);
    uv_close((uv_handle_t *)&r->proc, run_handle_closed);
}

static void on_run_exit(uv_process_t *p, int64_t status, int signo)
{
    engine_run *r = p->data;
    engine_cache *c = r->c;
    engine_entry *e = r->e;
    cache_enter(c);
    run_close(r);
    if (e && !c->freeing) {
        char why[96];
        if (r->timed_out)
            snprintf(why, sizeof why, "did not finish within %d s", ENGINE_VERSION_RUN_MS / 1000);
        else if (signo)
            snprintf(why, sizeof why, "was killed by signal %d", signo);
        else
            snprintf(why, sizeof why, "exited with status %lld", (long long)status);
        e->run = NULL;
        r->done(e, !r->timed_out && !signo && status == 0, why);
    }
    cache_leave(c);
}

static void on_run_timeout(uv_timer_t *t)
{
    engine_run *r = t->data;
    r->timed_out = true;
    uv_process_kill(&r->proc, SIGKILL);
}

/* The environment of `version`: ours, plus CHECKPOINT_DISABLE so that terraform does not phone home for an
 * upgrade check on every verification. NULL on OOM. */
static char **run_env(void)
{
    extern char **environ;
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 2, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "CHECKPOINT_DISABLE=", 19))
            env[k++] = environ[i];
    env[k] = "CHECKPOINT_DISABLE=1";
    return env;
}

/* Runs `<e->bin> version`, output discarded; done(e, ok, why) follows. */
static void run_version(engine_entry *e, run_done done)
{
    engine_cache *c = e->c;
    engine_run *r = calloc(1, sizeof *r);
    char **env = run_env();
    if (!r || !env) {
        free(r);
        free(env);
        done(e, false, "could not be started: out of memory");
        return;
    }
    r->c = c;
    r->e = e;
    r->done = done;
    char *args[] = { e->bin, "version", NULL };
    uv_process_options_t o = { .exit_cb = on_run_exit, .file = e->bin, .args = args, .env = env };
    r->proc.data = r->timer.data = r;
    uv_timer_init(c->loop, &r->timer);
    int rc = uv_spawn(c->loop, &r->proc, &o);
    free(env); /* the child has its copy */
    r->open = 2;
    c->busy++;
    if (rc < 0) {
        r->e = NULL;
        run_close(r); /* a failed spawn still leaves a handle to close */
        char why[128];
        snprintf(why, sizeof why, "could not be started: %s", uv_strerror(rc));
        done(e, false, why);
        return;
    }
    e->run = r;
    uv_timer_start(&r->timer, on_run_timeout, ENGINE_VERSION_RUN_MS, 0);
}

/* ---- step: the cached binary -------------------------------------------------------------------------------- */

static void on_checked(engine_entry *e, bool ok, const char *why)
{
    if (ok) {
        entry_ready(e);
        return;
    }
    log_warn("engine", "cached terraform %s at %s: `version` %s; downloading it again", e->version, e->bin, why);
    step_download(e);
}

static void step_check(engine_entry *e)
{
    e->state = ENTRY_CHECK;
    if (!binary_present(e->bin)) {
        step_download(e);
        return;
    }
    run_version(e, on_checked);
}

/* ---- step: download ----------------------------------------------------------------------------------------- */

static void step_unpack(engine_entry *e);

static void on_download(const httpc_response *res, void *arg)
{
    engine_entry *e = arg;
    engine_cache *c = e->c;
    char shown[512];
    cache_enter(c);
    e->call = NULL;
    url_for_humans(shown, sizeof shown, e->download_url);
    if (res->error != HTTPC_OK) {
        entry_fail(e, "downloading terraform %s: %s", e->version, res->errmsg);
    } else if (res->status != 200) { /* upstream accepts 200 only */
        char body[256];
        printable(body, sizeof body, res->body, 200);
        entry_fail(e, "downloading terraform %s from %s: status %ld: %s", e->version, shown, res->status, body);
    } else {
        log_info("engine", "terraform %s: downloaded %zu bytes from %s", e->version, res->body_len, shown);
        step_unpack(e);
    }
    cache_leave(c);
}

static void step_download(engine_entry *e)
{
    engine_cache *c = e->c;
    char zip[ENGINE_PATH_MAX + 16], shown[512];
    e->state = ENTRY_DOWNLOAD;
    int rc = fs_mkdir_p(c->engines, 0755);
    if (rc < 0) {
        entry_fail(e, "cannot create %s: %s", c->engines, strerror(-rc));
        return;
    }
    snprintf(e->tmp, sizeof e->tmp, "%s/" ENGINE_TMP_PREFIX "XXXXXX", c->engines);
    if (!mkdtemp(e->tmp)) {
        int err = errno;
        e->tmp[0] = '\0';
        entry_fail(e, "cannot create a download directory in %s: %s", c->engines, strerror(err));
        return;
    }
    snprintf(zip, sizeof zip, "%s/iac.zip", e->tmp);
    url_for_humans(shown, sizeof shown, e->download_url);
    log_info("engine", "terraform %s: downloading %s", e->version, shown);
    bool ours = same_origin(e->download_url, c->base_url);
    httpc_req req = { .method = "GET", .url = e->download_url, .bearer = ours && c->token ? *c->token : NULL,
                      .mode = HTTPC_PLAIN, .sink_path = zip, .max_file = ENGINE_MAX_ZIP,
                      .timeout_ms = c->download_timeout_ms, .follow_redirects = true };
    e->call = httpc_request(c->http, &req, on_download, e);
    if (!e->call)
        entry_fail(e, "cannot start the download of terraform %s from %s", e->version, shown);
}

/* ---- step: checksum, unpack, install (thread pool) ---------------------------------------------------------- */

typedef struct {
    char       *err;
    size_t      errlen;
    const char *tmp;
} unpack_ctx;

/* An entry name is acceptable when it stays inside the directory it is unpacked into: relative, no ".."
 * component, no backslash (a Windows separator to unzip), no control byte. */
static bool entry_name_ok(const char *name)
{
    if (!name[0] || name[0] == '/')
        return false;
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == '\\')
            return false;
    for (const char *p = name; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return false;
        p += n;
        p += *p == '/';
    }
    return true;
}

/* Writes the current entry's data to dir/name (new file, 0755, fsync'd). 0 or -1 with err. */
static int unpack_entry(const libarchive_api *ar, struct archive *a, const char *dir, const char *name, char *err,
                        size_t errlen)
{
    char path[ENGINE_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
    if (fd < 0) {
        if (errno == EEXIST)
            snprintf(err, errlen, "the archive holds \"%s\" twice", name);
        else
            snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    char buf[65536];
    int64_t total = 0;
    int rc = 0;
    for (;;) {
        la_ssize_t n = ar->archive_read_data(a, buf, sizeof buf);
        if (n == 0)
            break;
        if (n < 0) {
            snprintf(err, errlen, "cannot unpack \"%s\": %s", name, ar->archive_error_string(a));
            rc = -1;
            break;
        }
        total += n;
        if (total > ENGINE_MAX_BINARY) {
            snprintf(err, errlen, "\"%s\" in the archive is larger than %lld bytes", name,
                     (long long)ENGINE_MAX_BINARY);
            rc = -1;
            break;
        }
        for (char *p = buf; n > 0;) {
            ssize_t w = write(fd, p, (size_t)n);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
                rc = -1;
                break;
            }
            p += w;
            n -= w;
        }
        if (rc < 0)
            break;
    }
    if (rc == 0 && (fchmod(fd, 0755) < 0 || fsync(fd) < 0)) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        rc = -1;
    }
    if (close(fd) < 0 && rc == 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        rc = -1;
    }
    return rc;
}

/* Checks every entry of the zip and unpacks the candidate binaries (top-level `terraform` and `tofu`) into
 * dir. Nothing else is written: the binary is all we install. */
static int unpack_zip(const libarchive_api *ar, const char *zip, const char *dir, bool found[2], char *err,
                      size_t errlen)
{
    static const char *const wanted[2] = { "terraform", "tofu" };
    struct archive *a = ar->archive_read_new();
    if (!a)
        return fail(err, errlen, "out of memory");
    ar->archive_read_support_format_zip(a);
    int rc = 0;
    if (ar->archive_read_open_filename(a, zip, 65536) != ARCHIVE_OK) {
        snprintf(err, errlen, "the download is not a zip archive: %s", ar->archive_error_string(a));
        ar->archive_read_free(a);
        return -1;
    }
    struct archive_entry *ent;
    int r;
    while ((r = ar->archive_read_next_header(a, &ent)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
        const char *raw = ar->archive_entry_pathname(ent);
        char shown[128];
        printable(shown, sizeof shown, raw ? raw : "", 100);
        if (!raw || !entry_name_ok(raw)) {
            snprintf(err, errlen, "archive entry \"%s\" is not allowed: its path leaves the archive", shown);
            rc = -1;
            break;
        }
        mode_t type = ar->archive_entry_filetype(ent);
        if (type == AE_IFDIR)
            continue;
        if (type != AE_IFREG || ar->archive_entry_hardlink(ent)) {
            snprintf(err, errlen, "archive entry \"%s\" is not allowed: not a regular file", shown);
            rc = -1;
            break;
        }
        const char *name = raw;
        while (!strncmp(name, "./", 2))
            name += 2;
        for (int i = 0; i < 2; i++)
            if (!strcmp(name, wanted[i])) {
                if (unpack_entry(ar, a, dir, wanted[i], err, errlen) < 0)
                    rc = -1;
                found[i] = true;
            }
        if (rc < 0)
            break;
    }
    if (rc == 0 && r != ARCHIVE_EOF) {
        snprintf(err, errlen, "cannot read the archive: %s", ar->archive_error_string(a));
        rc = -1;
    }
    ar->archive_read_free(a);
    return rc;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

/* The job: runs on a pool thread; reads the entry's paths and checksum, writes only job_err. */
static void unpack_work(uv_work_t *w)
{
    engine_entry *e = w->data;
    char *err = e->job_err;
    size_t errlen = sizeof e->job_err;
    char zip[ENGINE_PATH_MAX + 16], hex[DIGEST_SHA256_HEX_LEN + 1], dir[ENGINE_PATH_MAX], expected[160];
    err[0] = '\0';
    snprintf(zip, sizeof zip, "%s/iac.zip", e->tmp);
    int rc = digest_sha256_file_hex(zip, hex);
    if (rc < 0) {
        snprintf(err, errlen, "cannot read %s: %s", zip, strerror(-rc));
        return;
    }
    if (strcasecmp(hex, e->checksum)) {
        printable(expected, sizeof expected, e->checksum, 128);
        snprintf(err, errlen, "checksum mismatch: expected %s, got %s", expected, hex);
        return;
    }
    bool found[2] = { false, false }; /* terraform, tofu */
    if (unpack_zip(&e->c->ar, zip, e->tmp, found, err, errlen) < 0)
        return;
    const char *name = engine_binary_name(e->download_url);
    if (!strcmp(name, "tofu") && !found[1])
        name = "terraform"; /* ref §7.3: fall back to a file named terraform */
    if (!strcmp(name, "terraform") && !found[0]) {
        snprintf(err, errlen, "the archive holds no %s binary", engine_binary_name(e->download_url));
        return;
    }
    char from[ENGINE_PATH_MAX + 16];
    snprintf(from, sizeof from, "%s/%s", e->tmp, name);
    snprintf(dir, sizeof dir, "%.*s", (int)(strrchr(e->bin, '/') - e->bin), e->bin);
    rc = fs_mkdir_p(dir, 0755);
    if (rc == 0 && chmod(dir, 0755) < 0) /* whatever the umask made of it */
        rc = -errno;
    if (rc < 0) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(-rc));
        return;
    }
    if (rename(from, e->bin) < 0) { /* same file system: the tmp directory is beside it */
        snprintf(err, errlen, "cannot install %s: %s", e->bin, strerror(errno));
        return;
    }
    if ((rc = fsync_dir(dir)) < 0)
        snprintf(err, errlen, "cannot sync %s: %s", dir, strerror(-rc));
}

static void on_installed(engine_entry *e, bool ok, const char *why)
{
    if (ok)
        entry_ready(e);
    else
        entry_fail(e, "terraform %s was installed at %s but `%s version` %s", e->version, e->bin,
                   ENGINE_BINARY_NAME, why);
}

static void on_unpacked(uv_work_t *w, int status)
{
    engine_entry *e = w->data;
    engine_cache *c = e->c;
    cache_enter(c);
    e->working = false;
    fs_rm_rf(e->tmp); /* the zip and whatever was not installed */
    e->tmp[0] = '\0';
    c->busy--;
    if (c->freeing || status == UV_ECANCELED) {
        /* abandoned: the cache is going away */
    } else if (e->job_err[0]) {
        entry_fail(e, "terraform %s: %s", e->version, e->job_err);
    } else {
        e->state = ENTRY_VERIFY;
        run_version(e, on_installed);
    }
    cache_leave(c);
}

/* Loads libarchive and its functions into the cache, once (a failure is tried again at the next unpack). 0, or -1
 * with the reason in err. On the loop: loading touches the dynamic linker's state and takes about 2 ms, once. */
static int libarchive_load(engine_cache *c, char *err, size_t errlen)
{
    if (c->ar_loaded)
        return 0;
    if (dynlib_load(&c->ar_lib, ENGINE_ARCHIVE_LIB, "libarchive13", "unpacks engine zips", libarchive_syms,
                    sizeof libarchive_syms / sizeof libarchive_syms[0], &c->ar, err, errlen) < 0)
        return -1;
    c->ar_loaded = true;
    return 0;
}

static void step_unpack(engine_entry *e)
{
    engine_cache *c = e->c;
    char err[512];
    e->state = ENTRY_UNPACK;
    if (libarchive_load(c, err, sizeof err) < 0) {
        entry_fail(e, "cannot unpack terraform %s: %s", e->version, err);
        return;
    }
    e->work.data = e;
    e->job_err[0] = '\0';
    int rc = uv_queue_work(c->loop, &e->work, unpack_work, on_unpacked);
    if (rc < 0) {
        entry_fail(e, "cannot unpack terraform %s: %s", e->version, uv_strerror(rc));
        return;
    }
    e->working = true;
    c->busy++;
}

/* ---- public ------------------------------------------------------------------------------------------------- */

/* Leftovers of downloads interrupted by a crash or a kill. */
static void sweep_tmp(const char *engines)
{
    DIR *d = opendir(engines);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)))
        if (!strncmp(de->d_name, ENGINE_TMP_PREFIX, strlen(ENGINE_TMP_PREFIX))) {
            char path[PATH_MAX + 256];
            snprintf(path, sizeof path, "%s/%s", engines, de->d_name);
            fs_rm_rf(path);
        }
    closedir(d);
}

static void soon_closed(uv_handle_t *h) { busy_done(h->data); }

engine_cache *engine_cache_new(const engine_config *cfg)
{
    if (!cfg || !cfg->loop || !cfg->http || !cfg->base_url || !cfg->base_url[0] || !cfg->data_dir ||
        !cfg->data_dir[0])
        return NULL;
    engine_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->loop = cfg->loop;
    c->http = cfg->http;
    c->token = cfg->token;
    c->download_timeout_ms = cfg->download_timeout_ms > 0 ? cfg->download_timeout_ms : ENGINE_DOWNLOAD_MS;
    c->base_url = strdup(cfg->base_url);
    c->data_dir = strdup(cfg->data_dir);
    c->engine_path = cfg->engine_path && cfg->engine_path[0] ? strdup(cfg->engine_path) : NULL;
    int n = snprintf(c->engines, sizeof c->engines, "%s/engines", cfg->data_dir);
    if (!c->base_url || !c->data_dir || (cfg->engine_path && cfg->engine_path[0] && !c->engine_path) || n < 0 ||
        (size_t)n >= sizeof c->engines) {
        free(c->base_url);
        free(c->data_dir);
        free(c->engine_path);
        free(c);
        return NULL;
    }
    size_t bl = strlen(c->base_url);
    while (bl > 0 && c->base_url[bl - 1] == '/')
        c->base_url[--bl] = '\0';
    c->latest.c = c;
    c->latest.latest = true;
    uv_timer_init(c->loop, &c->soon_timer);
    c->soon_timer.data = c;
    c->busy = 1;
    sweep_tmp(c->engines);
    return c;
}

engine_wait *engine_ensure(engine_cache *c, const char *version, engine_cb cb, void *arg)
{
    if (!c || c->freeing || !cb)
        return NULL;
    engine_wait *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->c = c;
    w->cb = cb;
    w->arg = arg;
    engine_wait *one = NULL, **list = &one; /* answer_all takes a list */
    wait_push(list, w);
    if (!version)
        version = "";

    if (c->engine_path) {
        if (binary_present(c->engine_path))
            answer_all(c, list, c->engine_path, NULL);
        else {
            char err[PATH_MAX + 128];
            snprintf(err, sizeof err, "IAC_ENGINE_PATH=%s is not an executable file", c->engine_path);
            answer_all(c, list, NULL, err);
        }
        return w;
    }

    engine_entry *e;
    if (!version[0] || !strcmp(version, "latest")) {
        e = &c->latest;
    } else if (!version_ok(version)) {
        char err[256], shown[96];
        printable(shown, sizeof shown, version, 64);
        snprintf(err, sizeof err, "terraform version \"%s\" is not a valid version string", shown);
        answer_all(c, list, NULL, err);
        return w;
    } else if (!(e = entry_get(c, version))) {
        wait_unlink(w);
        wait_free(w);
        return NULL;
    }

    if (e->state == ENTRY_READY && !binary_present(e->bin)) {
        log_warn("engine", "terraform %s: %s has gone; installing it again", e->version, e->bin);
        e->state = ENTRY_IDLE;
    }
    if (e->state == ENTRY_READY) { /* resolved once per process (ref §8 entry 25) */
        answer_all(c, list, e->bin, NULL);
        return w;
    }
    wait_unlink(w);
    wait_push(&e->waiters, w);
    if (e->state == ENTRY_IDLE) {
        entry_clear_meta(e);
        step_lookup(e);
    }
    return w;
}

void engine_cancel(engine_wait *w)
{
    if (!w || w->answering)
        return;
    wait_unlink(w);
    wait_free(w);
}

static void entry_abandon(engine_entry *e)
{
    while (e->waiters) {
        engine_wait *w = e->waiters;
        wait_unlink(w);
        wait_free(w);
    }
    if (e->call) {
        httpc_cancel(e->call); /* removes its partial download */
        e->call = NULL;
    }
    if (e->run) {
        e->run->e = NULL;
        uv_process_kill(&e->run->proc, SIGKILL); /* its exit closes it */
        e->run = NULL;
    }
    if (e->working)
        uv_cancel((uv_req_t *)&e->work); /* fails once started: on_unpacked still comes and cleans up */
    else if (e->tmp[0]) {
        fs_rm_rf(e->tmp);
        e->tmp[0] = '\0';
    }
}

static void cache_teardown(engine_cache *c)
{
    c->torn_down = true;
    for (engine_entry *e = c->entries; e; e = e->next)
        entry_abandon(e);
    entry_abandon(&c->latest);
    while (c->soon) {
        engine_wait *w = c->soon;
        wait_unlink(w);
        wait_free(w);
    }
    uv_timer_stop(&c->soon_timer);
    uv_close((uv_handle_t *)&c->soon_timer, soon_closed);
}

void engine_cache_free(engine_cache *c)
{
    if (!c || c->freeing)
        return;
    c->freeing = true;
    if (c->depth == 0) {
        cache_teardown(c);
        cache_maybe_release(c);
    }
}
