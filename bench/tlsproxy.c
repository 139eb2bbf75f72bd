/* tlsproxy.c — a TLS terminator in front of iac-devplane, so that row 1 can measure an agent speaking https/wss.
 *
 * The devplane serves plain HTTP only. This program listens on two loopback ports with TLS (a self-signed P-256
 * certificate it makes at start, for 127.0.0.1) and forwards the decrypted bytes of each connection to the
 * devplane's API port and C&C port respectively; the devplane's answers go back encrypted. It is byte-transparent,
 * so the WebSocket upgrade on the C&C port passes through untouched. The agent trusts the certificate through
 * SSL_CERT_FILE, as an operator would add a private CA.
 *
 *   tlsproxy API_UPSTREAM_PORT CC_UPSTREAM_PORT CERT_OUT READY_FILE
 *
 * writes the certificate (PEM) to CERT_OUT, then {"api_port":N,"cc_port":N} to READY_FILE (temporary file +
 * rename), and runs until SIGTERM, which closes everything and exits 0.
 *
 * TLS runs on memory BIOs: libuv moves ciphertext between the socket and the BIOs, OpenSSL never touches a socket.
 * libssl is opened with dlopen(): the build links bench programs against the project's libraries only (libcrypto,
 * but not libssl, which only libwebsockets links), so its dozen functions are looked up by name once, into a table
 * every connection reaches through its listener. Only for the benchmark: no attention is paid to throughput, and
 * any error just closes the connection. */
#include <dlfcn.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <uv.h>

/* The libssl functions we use, resolved once at start. */
typedef struct {
    const SSL_METHOD *(*server_method)(void);
    SSL_CTX *(*ctx_new)(const SSL_METHOD *);
    void (*ctx_free)(SSL_CTX *);
    int (*use_certificate)(SSL_CTX *, X509 *);
    int (*use_private_key)(SSL_CTX *, EVP_PKEY *);
    SSL *(*ssl_new)(SSL_CTX *);
    void (*set_bio)(SSL *, BIO *, BIO *);
    void (*set_accept_state)(SSL *);
    int (*do_handshake)(SSL *);
    int (*is_init_finished)(const SSL *);
    int (*read)(SSL *, void *, int);
    int (*write)(SSL *, const void *, int);
    int (*get_error)(const SSL *, int);
    void (*ssl_free)(SSL *);
} ssl_api;

typedef struct conn conn;

typedef struct {
    uv_loop_t     *loop;
    const ssl_api *api;
    SSL_CTX       *ctx;
    int            upstream; /* the devplane port this listener forwards to */
    uv_tcp_t       listener;
    conn          *conns;    /* open connections, closed on SIGTERM */
} proxy;

struct conn {
    proxy       *p;
    conn        *prev, *next;
    uv_tcp_t     down;      /* the agent: ciphertext */
    uv_tcp_t     up;        /* the devplane: plaintext */
    uv_connect_t connect;
    SSL         *ssl;
    BIO         *rbio, *wbio; /* network → SSL, SSL → network */
    bool         up_ready, closing;
    int          open_handles;
    char        *pending;   /* plaintext for the devplane before its connection is up */
    size_t       npending;
};

typedef struct {
    uv_write_t req;
    uv_buf_t   buf;
} wreq;

static int ssl_api_load(ssl_api *api)
{
    void *h = dlopen("libssl.so.3", RTLD_NOW);
    if (!h) {
        fprintf(stderr, "tlsproxy: %s\n", dlerror());
        return -1;
    }
    const struct { void **slot; const char *name; } syms[] = {
        { (void **)&api->server_method, "TLS_server_method" },
        { (void **)&api->ctx_new, "SSL_CTX_new" },
        { (void **)&api->ctx_free, "SSL_CTX_free" },
        { (void **)&api->use_certificate, "SSL_CTX_use_certificate" },
        { (void **)&api->use_private_key, "SSL_CTX_use_PrivateKey" },
        { (void **)&api->ssl_new, "SSL_new" },
        { (void **)&api->set_bio, "SSL_set_bio" },
        { (void **)&api->set_accept_state, "SSL_set_accept_state" },
        { (void **)&api->do_handshake, "SSL_do_handshake" },
        { (void **)&api->is_init_finished, "SSL_is_init_finished" },
        { (void **)&api->read, "SSL_read" },
        { (void **)&api->write, "SSL_write" },
        { (void **)&api->get_error, "SSL_get_error" },
        { (void **)&api->ssl_free, "SSL_free" },
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++)
        if (!(*syms[i].slot = dlsym(h, syms[i].name))) {
            fprintf(stderr, "tlsproxy: libssl has no %s\n", syms[i].name);
            return -1;
        }
    return 0;
}

/* ---- certificate ---- */

static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    if (!ext)
        return -1;
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/* A self-signed certificate for 127.0.0.1 (as an IP and as a name: lws checks the host as a name), valid one
 * day, written to path; the key and certificate are installed in ctx. */
static int make_cert(const ssl_api *api, SSL_CTX *ctx, const char *path)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    int rc = -1;
    if (!key || !x)
        goto out;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"127.0.0.1", -1, -1, 0);
    X509_set_issuer_name(x, name);
    if (add_ext(x, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
        add_ext(x, NID_key_usage, "critical,digitalSignature,keyCertSign") < 0 ||
        add_ext(x, NID_subject_alt_name, "IP:127.0.0.1,DNS:127.0.0.1,DNS:localhost") < 0 ||
        !X509_sign(x, key, EVP_sha256()))
        goto out;
    FILE *f = fopen(path, "w");
    if (!f || !PEM_write_X509(f, x) || fclose(f) != 0)
        goto out;
    if (api->use_certificate(ctx, x) == 1 && api->use_private_key(ctx, key) == 1)
        rc = 0;
out:
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

/* ---- connections ---- */

static void conn_handle_closed(uv_handle_t *h)
{
    conn *c = h->data;
    if (--c->open_handles == 0) {
        if (c->prev)
            c->prev->next = c->next;
        else
            c->p->conns = c->next;
        if (c->next)
            c->next->prev = c->prev;
        if (c->ssl)
            c->p->api->ssl_free(c->ssl); /* frees both BIOs */
        free(c->pending);
        free(c);
    }
}

static void conn_close(conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_close((uv_handle_t *)&c->down, conn_handle_closed);
    uv_close((uv_handle_t *)&c->up, conn_handle_closed);
}

static void on_written(uv_write_t *req, int status)
{
    wreq *w = (wreq *)req;
    (void)status;
    free(w->buf.base);
    free(w);
}

static void send_bytes(conn *c, uv_tcp_t *to, const char *data, size_t len)
{
    wreq *w = malloc(sizeof *w);
    char *copy = malloc(len);
    if (!w || !copy) {
        free(w);
        free(copy);
        conn_close(c);
        return;
    }
    memcpy(copy, data, len);
    w->buf = uv_buf_init(copy, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)to, &w->buf, 1, on_written) < 0) {
        free(copy);
        free(w);
        conn_close(c);
    }
}

/* Whatever OpenSSL produced goes to the agent. */
static void flush_tls(conn *c)
{
    char buf[16384];
    int n;
    while (!c->closing && (n = BIO_read(c->wbio, buf, sizeof buf)) > 0)
        send_bytes(c, &c->down, buf, (size_t)n);
}

static void send_up(conn *c, const char *data, size_t len)
{
    if (c->up_ready) {
        send_bytes(c, &c->up, data, len);
        return;
    }
    char *p = realloc(c->pending, c->npending + len);
    if (!p) {
        conn_close(c);
        return;
    }
    memcpy(p + c->npending, data, len);
    c->pending = p;
    c->npending += len;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(hint);
    buf->len = buf->base ? hint : 0;
}

/* Ciphertext from the agent: handshake, then decrypted bytes to the devplane. */
static void on_down_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    conn *c = s->data;
    if (n < 0 || (n > 0 && BIO_write(c->rbio, buf->base, (int)n) != (int)n)) {
        free(buf->base);
        conn_close(c);
        return;
    }
    free(buf->base);
    if (!c->p->api->is_init_finished(c->ssl)) {
        int r = c->p->api->do_handshake(c->ssl);
        if (r <= 0) {
            int e = c->p->api->get_error(c->ssl, r);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                flush_tls(c); /* the alert */
                conn_close(c);
                return;
            }
        }
    }
    if (c->p->api->is_init_finished(c->ssl)) {
        char plain[16384];
        int r;
        while ((r = c->p->api->read(c->ssl, plain, sizeof plain)) > 0)
            send_up(c, plain, (size_t)r);
        int e = c->p->api->get_error(c->ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            flush_tls(c);
            conn_close(c);
            return;
        }
    }
    flush_tls(c);
}

/* Plaintext from the devplane: encrypted to the agent. */
static void on_up_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    conn *c = s->data;
    if (n < 0 || !c->p->api->is_init_finished(c->ssl)) {
        free(buf->base);
        conn_close(c);
        return;
    }
    if (n > 0 && c->p->api->write(c->ssl, buf->base, (int)n) != (int)n) {
        free(buf->base);
        conn_close(c);
        return;
    }
    free(buf->base);
    flush_tls(c);
}

static void on_up_connected(uv_connect_t *req, int status)
{
    conn *c = req->data;
    if (status < 0 || c->closing) {
        conn_close(c);
        return;
    }
    c->up_ready = true;
    uv_read_start((uv_stream_t *)&c->up, on_alloc, on_up_read);
    if (c->npending) {
        send_bytes(c, &c->up, c->pending, c->npending);
        free(c->pending);
        c->pending = NULL;
        c->npending = 0;
    }
}

static void on_accept(uv_stream_t *server, int status)
{
    proxy *p = server->data;
    if (status < 0)
        return;
    conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->p = p;
    c->next = p->conns;
    if (p->conns)
        p->conns->prev = c;
    p->conns = c;
    uv_tcp_init(p->loop, &c->down);
    uv_tcp_init(p->loop, &c->up);
    c->down.data = c->up.data = c->connect.data = c;
    c->open_handles = 2;
    if (uv_accept(server, (uv_stream_t *)&c->down) < 0) {
        conn_close(c);
        return;
    }
    c->ssl = c->p->api->ssl_new(p->ctx);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (!c->ssl || !c->rbio || !c->wbio) {
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        conn_close(c);
        return;
    }
    c->p->api->set_bio(c->ssl, c->rbio, c->wbio);
    c->p->api->set_accept_state(c->ssl);
    uv_tcp_nodelay(&c->down, 1);
    uv_tcp_nodelay(&c->up, 1);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", p->upstream, &a);
    if (uv_tcp_connect(&c->connect, &c->up, (const struct sockaddr *)&a, on_up_connected) < 0 ||
        uv_read_start((uv_stream_t *)&c->down, on_alloc, on_down_read) < 0)
        conn_close(c);
}

/* Listens on 127.0.0.1:0; the port chosen, or -1. */
static int proxy_listen(proxy *p)
{
    struct sockaddr_in a;
    struct sockaddr_storage got;
    int len = sizeof got;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(p->loop, &p->listener);
    p->listener.data = p;
    if (uv_tcp_bind(&p->listener, (const struct sockaddr *)&a, 0) < 0 ||
        uv_listen((uv_stream_t *)&p->listener, 64, on_accept) < 0 ||
        uv_tcp_getsockname(&p->listener, (struct sockaddr *)&got, &len) < 0)
        return -1;
    return ntohs(((struct sockaddr_in *)&got)->sin_port);
}

/* SIGTERM: close the listeners and every connection; uv_run then returns and main frees the rest. */
static void on_term(uv_signal_t *sig, int signum)
{
    proxy *const *ps = sig->data;
    (void)signum;
    for (int i = 0; i < 2; i++) {
        uv_close((uv_handle_t *)&ps[i]->listener, NULL);
        for (conn *c = ps[i]->conns; c; c = c->next) /* freed later, in their close callbacks */
            conn_close(c);
    }
    uv_close((uv_handle_t *)sig, NULL);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: tlsproxy API_UPSTREAM_PORT CC_UPSTREAM_PORT CERT_OUT READY_FILE\n");
        return 2;
    }
    /* A peer that goes away while a write of ours is on its way must cost that connection, not the proxy (libuv
     * writes with write(2), which raises SIGPIPE): seen as a flaky "exited with SIGPIPE" at a test's teardown. */
    signal(SIGPIPE, SIG_IGN);
    ssl_api api;
    if (ssl_api_load(&api) < 0)
        return 1;
    SSL_CTX *ctx = api.ctx_new(api.server_method());
    if (!ctx || make_cert(&api, ctx, argv[3]) < 0) {
        fprintf(stderr, "tlsproxy: cannot make the TLS context and certificate\n");
        return 1;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    proxy to_api = { .loop = &loop, .api = &api, .ctx = ctx, .upstream = atoi(argv[1]) };
    proxy to_cc = { .loop = &loop, .api = &api, .ctx = ctx, .upstream = atoi(argv[2]) };
    int api_port = proxy_listen(&to_api), cc_port = proxy_listen(&to_cc);
    if (api_port < 0 || cc_port < 0) {
        fprintf(stderr, "tlsproxy: cannot listen on 127.0.0.1\n");
        return 1;
    }
    proxy *both[2] = { &to_api, &to_cc };
    uv_signal_t term;
    uv_signal_init(&loop, &term);
    term.data = both;
    uv_signal_start(&term, on_term, SIGTERM);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", argv[4]);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "{\"api_port\":%d,\"cc_port\":%d}\n", api_port, cc_port) < 0 || fclose(f) != 0 ||
        rename(tmp, argv[4]) < 0) {
        fprintf(stderr, "tlsproxy: cannot write %s\n", argv[4]);
        return 1;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    api.ctx_free(ctx);
    return 0;
}
