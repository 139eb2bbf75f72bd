/* floor.c — what each library costs the agent: resident memory and time, one step at a time.
 *
 * The agent loads every library at exec, so its own RSS says nothing about which one is to blame. This program
 * starts with libc alone and adds the agent's pieces one by one with dlopen()/dlsym() — in the order in which an
 * agent that only needs them would add them — reading /proc/self/status and the wall clock after each step. The
 * difference between two steps is the cost of the piece: its share of resident memory (file pages its loading and
 * initialisation touched, anonymous pages: relocations, data, heap) and of start-up time (loading, relocation,
 * constructors, initialisation). Steps that come after "core" are what the agent could shed; their costs are the
 * savings measured in bench/README.md.
 *
 * Nothing is linked but libc (the build links with --as-needed and this file calls no library directly), so what
 * a step costs is not already paid at exec. The steps mirror what the agent does: wsc.c's client context and
 * https.c's server context on a foreign libuv loop, httpc.c's curl_global_init + multi handle.
 *
 * Prints "S floor.<step>.<what> <value>" lines (rss_kib, anon_kib, file_kib: after the step; us: the step's own
 * time), plus "V floor.curl.*" facts about libcurl's resolver. Exit 1 when a step fails (a library is missing). */
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <libwebsockets.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <uv.h>

typedef struct {
    uv_loop_t            loop;
    void                *uv, *lws, *ssl, *crypto, *curl, *cjson, *archive;
    int                  port;
    struct lws_context  *ctx[3]; /* client, server, TLS client */
    int                  nctx;
    CURLM               *multi;
    CURL                *easy;
} floor_state;

/* Resolves a symbol of an already loaded library; NULL when missing (the step fails). */
#define SYM(lib, type, name) ((type)dlsym((lib), (name)))

static int floor_open(void **h, const char *soname)
{
    *h = dlopen(soname, RTLD_LAZY | RTLD_GLOBAL);
    if (!*h)
        fprintf(stderr, "floor: %s\n", dlerror());
    return *h ? 0 : -1;
}

static int step_libc(floor_state *f)
{
    (void)f;
    return 0;
}

static int step_libuv(floor_state *f)
{
    if (floor_open(&f->uv, "libuv.so.1") < 0)
        return -1;
    int (*loop_init)(uv_loop_t *) = SYM(f->uv, int (*)(uv_loop_t *), "uv_loop_init");
    return loop_init && loop_init(&f->loop) == 0 ? 0 : -1;
}

static int step_lws(floor_state *f)
{
    if (floor_open(&f->lws, "libwebsockets.so.17") < 0)
        return -1;
    /* lws brings libssl and libcrypto in; keep handles for the OpenSSL steps. */
    if (floor_open(&f->ssl, "libssl.so.3") < 0 || floor_open(&f->crypto, "libcrypto.so.3") < 0)
        return -1;
    void (*set_level)(int, void (*)(int, const char *)) =
        SYM(f->lws, void (*)(int, void (*)(int, const char *)), "lws_set_log_level");
    if (set_level)
        set_level(LLL_ERR, NULL);
    return 0;
}

static int floor_http_dummy(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    (void)wsi; (void)reason; (void)user; (void)in; (void)len;
    return 0;
}

static const struct lws_protocols floor_protocols[] = {
    { "floor", floor_http_dummy, 0, 0, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 },
};

typedef struct lws_context *(*create_context_fn)(const struct lws_context_creation_info *);

/* As common/lwsloop.c: libuv foreign loop, one service thread, a small fd table. */
static struct lws_context *floor_context(floor_state *f, struct lws_context_creation_info *info)
{
    void *loops[1] = { &f->loop };
    create_context_fn create = SYM(f->lws, create_context_fn, "lws_create_context");
    info->options |= LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN;
    info->foreign_loops = loops;
    info->count_threads = 1;
    struct lws_context *ctx = create ? create(info) : NULL;
    if (ctx)
        f->ctx[f->nctx++] = ctx;
    return ctx;
}

/* common/wsc.c's context: a plain WebSocket client. */
static int step_lws_client(floor_state *f)
{
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = floor_protocols;
    info.fd_limit_per_thread = 64;
    return floor_context(f, &info) ? 0 : -1;
}

/* common/https.c's context: explicit vhost listening on 127.0.0.1 (the status server). */
static int step_lws_server(floor_state *f)
{
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_DISABLE_IPV6;
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    info.protocols = floor_protocols;
    info.fd_limit_per_thread = 256;
    info.pt_serv_buf_size = 4096;
    struct lws_context *ctx = floor_context(f, &info);
    if (!ctx)
        return -1;
    struct lws_vhost *(*create_vhost)(struct lws_context *, const struct lws_context_creation_info *) =
        SYM(f->lws, struct lws_vhost *(*)(struct lws_context *, const struct lws_context_creation_info *),
            "lws_create_vhost");
    memset(&info, 0, sizeof info);
    info.iface = "127.0.0.1";
    info.port = f->port;
    info.protocols = floor_protocols;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    return create_vhost && create_vhost(ctx, &info) ? 0 : -1;
}

static int step_cjson(floor_state *f)
{
    return floor_open(&f->cjson, "libcjson.so.1");
}

/* What curl_global_init does first with Debian's (OpenSSL) libcurl, and lws for a TLS context. */
static int step_openssl_init(floor_state *f)
{
    int (*init)(uint64_t, const OPENSSL_INIT_SETTINGS *) =
        SYM(f->ssl, int (*)(uint64_t, const OPENSSL_INIT_SETTINGS *), "OPENSSL_init_ssl");
    return init && init(OPENSSL_INIT_LOAD_CONFIG, NULL) == 1 ? 0 : -1;
}

/* The first digest (common/digest.c: SHA-256 through EVP) fetches the default provider's implementation. */
static int step_sha256(floor_state *f)
{
    const EVP_MD *(*sha256)(void) = SYM(f->crypto, const EVP_MD *(*)(void), "EVP_sha256");
    int (*digest)(const void *, size_t, unsigned char *, unsigned int *, const EVP_MD *, ENGINE *) =
        SYM(f->crypto, int (*)(const void *, size_t, unsigned char *, unsigned int *, const EVP_MD *, ENGINE *),
            "EVP_Digest");
    unsigned char md[64];
    unsigned int n = 0;
    return sha256 && digest && digest("floor", 5, md, &n, sha256(), NULL) == 1 ? 0 : -1;
}

static int step_libcurl(floor_state *f)
{
    return floor_open(&f->curl, "libcurl.so.4");
}

static int step_curl_global_init(floor_state *f)
{
    CURLcode (*init)(long) = SYM(f->curl, CURLcode (*)(long), "curl_global_init");
    if (!init || init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -1;
    curl_version_info_data *(*info)(CURLversion) =
        SYM(f->curl, curl_version_info_data *(*)(CURLversion), "curl_version_info");
    curl_version_info_data *v = info ? info(CURLVERSION_NOW) : NULL;
    if (v) {
        /* AsynchDNS without c-ares is the threaded resolver: one thread per name lookup. */
        printf("V floor.curl.version %s\n", v->version);
        printf("V floor.curl.threaded_resolver %d\n", (v->features & CURL_VERSION_ASYNCHDNS) && !v->ares ? 1 : 0);
        printf("V floor.curl.ssl %s\n", v->ssl_version ? v->ssl_version : "none");
    }
    return 0;
}

static int step_curl_multi(floor_state *f)
{
    CURLM *(*multi_init)(void) = SYM(f->curl, CURLM *(*)(void), "curl_multi_init");
    CURL *(*easy_init)(void) = SYM(f->curl, CURL *(*)(void), "curl_easy_init");
    if (!multi_init || !easy_init)
        return -1;
    f->multi = multi_init();
    f->easy = easy_init();
    return f->multi && f->easy ? 0 : -1;
}

static int step_libarchive(floor_state *f)
{
    return floor_open(&f->archive, "libarchive.so.13");
}

/* What https adds: a TLS client context (OpenSSL SSL_CTX, the system CA store loaded for verification). */
static int step_lws_tls_client(floor_state *f)
{
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = floor_protocols;
    info.fd_limit_per_thread = 64;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    return floor_context(f, &info) ? 0 : -1;
}

/* The steps in the order an agent would pay for them; "core" ends after cjson: libuv, lws (with the libssl and
 * libcrypto it links), the two contexts and cJSON are what a plain-http agent cannot do without. */
static const struct {
    const char *name;
    int (*fn)(floor_state *);
} floor_steps[] = {
    { "libc", step_libc },
    { "libuv", step_libuv },
    { "lws_load", step_lws },
    { "lws_client_ctx", step_lws_client },
    { "lws_server_ctx", step_lws_server },
    { "cjson_load", step_cjson },
    { "sha256_first", step_sha256 },
    { "openssl_init", step_openssl_init },
    { "curl_load", step_libcurl },
    { "curl_global_init", step_curl_global_init },
    { "curl_multi_easy", step_curl_multi },
    { "archive_load", step_libarchive },
    { "lws_tls_client_ctx", step_lws_tls_client },
};

static long long floor_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void floor_report(const char *step, long long ns)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long rss = -1, anon = -1, file = -1, v;
    if (f) {
        while (fgets(line, sizeof line, f)) {
            if (sscanf(line, "VmRSS: %ld", &v) == 1)
                rss = v;
            else if (sscanf(line, "RssAnon: %ld", &v) == 1)
                anon = v;
            else if (sscanf(line, "RssFile: %ld", &v) == 1)
                file = v;
        }
        fclose(f);
    }
    printf("S floor.%s.rss_kib %ld\nS floor.%s.anon_kib %ld\nS floor.%s.file_kib %ld\nS floor.%s.us %.1f\n", step,
           rss, step, anon, step, file, step, (double)ns / 1000.0);
}

/* A free loopback port for the server context. */
static int floor_free_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* Everything the steps made is released, so that the program is clean under LeakSanitizer and valgrind. On a
 * foreign loop lws needs two destroy calls with the loop run in between (see common/lwsloop.c). */
static void floor_release(floor_state *f)
{
    if (f->curl) {
        void (*easy_cleanup)(CURL *) = SYM(f->curl, void (*)(CURL *), "curl_easy_cleanup");
        CURLMcode (*multi_cleanup)(CURLM *) = SYM(f->curl, CURLMcode (*)(CURLM *), "curl_multi_cleanup");
        void (*global_cleanup)(void) = SYM(f->curl, void (*)(void), "curl_global_cleanup");
        if (f->easy && easy_cleanup)
            easy_cleanup(f->easy);
        if (f->multi && multi_cleanup)
            multi_cleanup(f->multi);
        if (global_cleanup)
            global_cleanup();
    }
    if (!f->uv)
        return;
    int (*run)(uv_loop_t *, uv_run_mode) = SYM(f->uv, int (*)(uv_loop_t *, uv_run_mode), "uv_run");
    int (*loop_close)(uv_loop_t *) = SYM(f->uv, int (*)(uv_loop_t *), "uv_loop_close");
    void (*destroy)(struct lws_context *) =
        f->lws ? SYM(f->lws, void (*)(struct lws_context *), "lws_context_destroy") : NULL;
    if (!run || !loop_close)
        return;
    for (int i = 0; destroy && i < f->nctx; i++) {
        destroy(f->ctx[i]);
        for (int turn = 0; turn < 16; turn++) /* the close callbacks of lws's handles */
            run(&f->loop, UV_RUN_NOWAIT);
        destroy(f->ctx[i]);
    }
    for (int turn = 0; turn < 16; turn++)
        run(&f->loop, UV_RUN_NOWAIT);
    if (loop_close(&f->loop) != 0)
        fprintf(stderr, "floor: the loop still has handles\n");
}

int main(void)
{
    floor_state f;
    memset(&f, 0, sizeof f);
    f.port = floor_free_port();
    if (f.port < 0) {
        fprintf(stderr, "floor: no free loopback port\n");
        return 1;
    }
    for (size_t i = 0; i < sizeof floor_steps / sizeof floor_steps[0]; i++) {
        long long t0 = floor_now_ns();
        if (floor_steps[i].fn(&f) < 0) {
            fprintf(stderr, "floor: step %s failed\n", floor_steps[i].name);
            return 1;
        }
        floor_report(floor_steps[i].name, floor_now_ns() - t0);
        fflush(stdout);
    }
    floor_release(&f);
    return 0;
}
