/* tls.c — a TLS client session over two memory BIOs, on libssl loaded at first use; see tls.h.
 *
 * Shape. Each session has its own SSL_CTX (the trust store it was asked for) and one SSL whose two BIOs are memory
 * buffers: `in` holds what the caller fed from the socket, `out` what libssl wants sent. libssl never touches a
 * socket, so every call here is synchronous and a "would block" from libssl only ever means "in is empty": the
 * session then waits for the caller's next tls_session_input(). The input BIO's EOF return is -1 for that reason:
 * an empty memory BIO normally reads as end of stream, which libssl would take for a truncated connection.
 *
 * The handshake has no call of its own: input, read and write each take it one step further (SSL_do_handshake) until
 * it completes. Plaintext written before then waits in `pending` and goes to SSL_write the moment it does. libssl's
 * state is sticky after a fatal error (it must not be called again), and so is ours: the first failure's code and
 * text answer every later call.
 *
 * Errors. libssl reports through the thread's error queue, which may hold leftovers from anyone on the thread (curl,
 * libwebsockets); so the queue is cleared before each libssl call whose failure we explain, and emptied after. A
 * handshake failure with a verify result says which check failed (X509_verify_cert_error_string); any other says
 * OpenSSL's reason ("wrong version number", "tlsv1 alert unknown ca"). Texts never quote payload bytes.
 *
 * Static state: libssl's function table and library handle, plus the outcome of loading it. A process has one
 * libssl, loaded once and never unloaded (libcrypto registers atexit handlers that must find it mapped); sessions
 * on several threads may race to be first, so the load runs under uv_once. A failed load is not retried: a
 * missing libssl3 does not appear while the process runs. */
#include "iac/tls.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "iac/dynlib.h"

#define TLS_LIB     "libssl.so.3" /* Debian's libssl3 */
#define TLS_PACKAGE "libssl3"
#define TLS_CHUNK   (1 << 30)     /* libssl and BIO lengths are ints: larger spans go in pieces */

/* The libssl and libcrypto functions used here, each found by its name in libssl's handle (dlsym searches its
 * dependencies, libcrypto among them) and typed by its declaration in OpenSSL's headers. Macros of the API are
 * spelled out through the function they expand to: SSL_CTX_set_min_proto_version and SSL_CTX_set_mode are
 * SSL_CTX_ctrl, SSL_set_tlsext_host_name is SSL_ctrl, BIO_set_mem_eof_return and BIO_get_mem_data are BIO_ctrl. */
#define TLS_FUNCS(X)                                                                                              \
    X(TLS_client_method) X(SSL_CTX_new) X(SSL_CTX_free) X(SSL_CTX_ctrl) X(SSL_CTX_set_options)                   \
    X(SSL_CTX_set_verify) X(SSL_CTX_load_verify_locations) X(SSL_CTX_set_default_verify_paths) X(SSL_new)         \
    X(SSL_free) X(SSL_set_bio) X(SSL_set_connect_state) X(SSL_ctrl) X(SSL_set1_host) X(SSL_set_hostflags)        \
    X(SSL_get0_param) X(SSL_do_handshake) X(SSL_read) X(SSL_write) X(SSL_shutdown) X(SSL_get_error)               \
    X(SSL_get_verify_result) X(X509_VERIFY_PARAM_set1_ip_asc) X(X509_verify_cert_error_string) X(BIO_s_mem)       \
    X(BIO_new) X(BIO_free) X(BIO_read) X(BIO_write) X(BIO_ctrl) X(ERR_clear_error) X(ERR_get_error)               \
    X(ERR_reason_error_string) X(ERR_error_string_n)

static struct {
#define X(f) __typeof__(f) *f;
    TLS_FUNCS(X)
#undef X
} ls;

static const dynlib_sym tls_syms[] = {
#define X(f) { #f, offsetof(__typeof__(ls), f) },
    TLS_FUNCS(X)
#undef X
};

static uv_once_t tls_once = UV_ONCE_INIT;
static uv_lib_t  tls_lib;
static int       tls_load_rc;
static char      tls_load_err[256];

struct tls_session {
    SSL_CTX *ctx;
    SSL     *ssl;
    BIO     *in, *out;    /* owned by ssl */
    strbuf   pending;     /* plaintext not yet taken by SSL_write: written before the handshake completed */
    size_t   pending_off; /* how much of pending SSL_write has taken */
    bool     ready;       /* the handshake completed */
    bool     peer_closed; /* close_notify received */
    bool     closed;      /* tls_session_close was called */
    int      failed;      /* the first fatal TLS_E_*, or TLS_OK */
    char     err[256];
};

/* ---- libssl, loaded on first use ---- */

static void tls_load_once(void)
{
    tls_load_rc = dynlib_load(&tls_lib, TLS_LIB, TLS_PACKAGE, "wss:// needs", tls_syms,
                              sizeof tls_syms / sizeof tls_syms[0], &ls, tls_load_err, sizeof tls_load_err);
}

static int tls_load(char *err, size_t errlen)
{
    uv_once(&tls_once, tls_load_once);
    if (tls_load_rc < 0) {
        strbuf_fixed_printf(err, errlen, "%s", tls_load_err);
        return TLS_E_LOAD;
    }
    return TLS_OK;
}

/* ---- errors ---- */

/* OpenSSL's reason for the oldest error on the thread's queue into buf ("" when the queue is empty), emptying it. */
static void tls_reason(char *buf, size_t len)
{
    unsigned long e = ls.ERR_get_error();
    const char *r;

    buf[0] = '\0';
    if (e == 0)
        return;
    r = ls.ERR_reason_error_string(e);
    if (r != NULL) {
        strbuf_fixed_printf(buf, len, "%s", r);
    } else { /* a system error (errno) or an unknown code: the text ends "…:lib::reason" */
        char full[256];
        ls.ERR_error_string_n(e, full, sizeof full);
        r = strrchr(full, ':');
        strbuf_fixed_printf(buf, len, "%s", r != NULL && r[1] != '\0' ? r + 1 : full);
    }
    ls.ERR_clear_error();
}

/* Records the session's first fatal failure: code, and a text saying what failed ("what" names the phase; sslerr
 * is SSL_get_error()'s class for it). Empties the thread's error queue. */
static int tls_fail(tls_session *s, int code, const char *what, int sslerr)
{
    char reason[200];
    long verify = s->ssl ? ls.SSL_get_verify_result(s->ssl) : X509_V_OK;

    tls_reason(reason, sizeof reason);
    if (code == TLS_E_HANDSHAKE && verify != X509_V_OK)
        strbuf_fixed_printf(s->err, sizeof s->err, "certificate verify failed: %s",
                            ls.X509_verify_cert_error_string(verify));
    else if (reason[0] != '\0')
        strbuf_fixed_printf(s->err, sizeof s->err, "%s: %s", what, reason);
    else if (sslerr == SSL_ERROR_SYSCALL || sslerr == SSL_ERROR_ZERO_RETURN)
        strbuf_fixed_printf(s->err, sizeof s->err, "%s: the peer ended the stream", what);
    else
        strbuf_fixed_printf(s->err, sizeof s->err, "%s failed (SSL error %d)", what, sslerr);
    s->failed = code;
    return code;
}

/* What a non-positive return of SSL_do_handshake/SSL_read/SSL_write means: TLS_OK to wait for more input (the
 * only "would block" a memory BIO gives), else the failure, recorded. */
static int tls_check(tls_session *s, int ret, int code, const char *what)
{
    int e = ls.SSL_get_error(s->ssl, ret);

    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        ls.ERR_clear_error();
        return TLS_OK;
    }
    return tls_fail(s, code, what, e);
}

/* ---- handshake and plaintext ---- */

static void tls_pending_drop(tls_session *s)
{
    if (s->pending.data != NULL)
        memset(s->pending.data, 0, s->pending.len); /* it may hold a request with a bearer token */
    strbuf_reset(&s->pending);
    s->pending_off = 0;
}

/* Hands pending plaintext to SSL_write once the handshake is done. What libssl cannot take now stays pending; a
 * retried SSL_write sees the same bytes again, at a new address perhaps (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER). */
static int tls_flush(tls_session *s)
{
    while (s->ready && s->pending_off < s->pending.len) {
        size_t n = s->pending.len - s->pending_off;
        int r;

        ls.ERR_clear_error();
        r = ls.SSL_write(s->ssl, s->pending.data + s->pending_off, n > TLS_CHUNK ? TLS_CHUNK : (int)n);
        if (r <= 0)
            return tls_check(s, r, TLS_E_PROTOCOL, "write");
        s->pending_off += (size_t)r;
    }
    if (s->pending_off == s->pending.len)
        tls_pending_drop(s);
    return TLS_OK;
}

/* One step of the handshake with whatever input there is; when it completes, pending plaintext goes out. */
static int tls_advance(tls_session *s)
{
    int r;

    if (s->failed != TLS_OK)
        return s->failed;
    if (s->ready)
        return TLS_OK;
    ls.ERR_clear_error();
    r = ls.SSL_do_handshake(s->ssl);
    if (r != 1)
        return tls_check(s, r, TLS_E_HANDSHAKE, "handshake");
    s->ready = true;
    return tls_flush(s);
}

/* ---- the session ---- */

/* The trust and protocol rules of a session's context. */
static int tls_ctx_setup(tls_session *s, const char *ca_file, char *err, size_t errlen)
{
    char reason[200];

    /* SSL_CTX_set_min_proto_version; renegotiation refused, so that a write never has to wait for a read; record
     * buffers released while idle, as a C&C connection mostly is. */
    if (ls.SSL_CTX_ctrl(s->ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_2_VERSION, NULL) != 1) {
        tls_reason(reason, sizeof reason);
        strbuf_fixed_printf(err, errlen, "cannot require TLS 1.2: %s", reason);
        return TLS_E_CONFIG;
    }
    ls.SSL_CTX_set_options(s->ctx, SSL_OP_NO_RENEGOTIATION);
    ls.SSL_CTX_ctrl(s->ctx, SSL_CTRL_MODE,
                    SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_AUTO_RETRY, NULL);
    ls.SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER, NULL);
    if (ca_file != NULL) {
        if (ls.SSL_CTX_load_verify_locations(s->ctx, ca_file, NULL) != 1) {
            tls_reason(reason, sizeof reason);
            strbuf_fixed_printf(err, errlen, "cannot read CA file %s: %s", ca_file,
                                reason[0] ? reason : "no certificate in it");
            return TLS_E_CONFIG;
        }
    } else if (ls.SSL_CTX_set_default_verify_paths(s->ctx) != 1) { /* $SSL_CERT_FILE, $SSL_CERT_DIR, system */
        tls_reason(reason, sizeof reason);
        strbuf_fixed_printf(err, errlen, "cannot use the default CA store: %s", reason);
        return TLS_E_CONFIG;
    }
    return TLS_OK;
}

/* What the peer's certificate must name: an IP literal is matched against its IP SANs only (and is not valid SNI,
 * RFC 6066 §3); a DNS name against its DNS names, without partial wildcards, and goes out as SNI. */
static int tls_host_setup(tls_session *s, const char *host, char *err, size_t errlen)
{
    unsigned char addr[sizeof(struct in6_addr)];
    bool ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
    int ok;

    if (ip) {
        ok = ls.X509_VERIFY_PARAM_set1_ip_asc(ls.SSL_get0_param(s->ssl), host) == 1;
    } else {
        ls.SSL_set_hostflags(s->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = ls.SSL_set1_host(s->ssl, host) == 1 &&
             ls.SSL_ctrl(s->ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, (void *)host) == 1;
    }
    if (!ok) {
        char reason[200];
        tls_reason(reason, sizeof reason);
        strbuf_fixed_printf(err, errlen, "cannot verify the server as \"%.128s\": %s", host,
                            reason[0] ? reason : "not a valid host name");
        return TLS_E_CONFIG;
    }
    return TLS_OK;
}

tls_session *tls_session_new(const char *host, const char *ca_file, char *err, size_t errlen)
{
    tls_session *s;

    strbuf_fixed_printf(err, errlen, "%s", "");
    if (host == NULL || host[0] == '\0') {
        strbuf_fixed_printf(err, errlen, "TLS needs the server's host name to verify its certificate");
        return NULL;
    }
    if (host[0] == '[') { /* would go out as a DNS name and never match */
        strbuf_fixed_printf(err, errlen, "TLS host \"%.128s\": give an IPv6 address without brackets", host);
        return NULL;
    }
    if (tls_load(err, errlen) != TLS_OK)
        return NULL;
    s = calloc(1, sizeof *s);
    if (s == NULL) {
        strbuf_fixed_printf(err, errlen, "out of memory");
        return NULL;
    }
    ls.ERR_clear_error();
    s->ctx = ls.SSL_CTX_new(ls.TLS_client_method());
    if (s->ctx == NULL || tls_ctx_setup(s, ca_file, err, errlen) != TLS_OK)
        goto fail;
    s->ssl = ls.SSL_new(s->ctx);
    s->in = ls.BIO_new(ls.BIO_s_mem());
    s->out = ls.BIO_new(ls.BIO_s_mem());
    if (s->ssl == NULL || s->in == NULL || s->out == NULL) {
        ls.BIO_free(s->in);
        ls.BIO_free(s->out);
        s->in = s->out = NULL;
        goto fail;
    }
    ls.BIO_ctrl(s->in, BIO_C_SET_BUF_MEM_EOF_RETURN, -1, NULL); /* BIO_set_mem_eof_return: empty means retry */
    ls.SSL_set_bio(s->ssl, s->in, s->out);
    ls.SSL_set_connect_state(s->ssl);
    if (tls_host_setup(s, host, err, errlen) != TLS_OK)
        goto fail;
    if (tls_advance(s) != TLS_OK) { /* the ClientHello */
        strbuf_fixed_printf(err, errlen, "%s", s->err);
        goto fail;
    }
    return s;

fail:
    if (err != NULL && errlen > 0 && err[0] == '\0') {
        char reason[200];
        tls_reason(reason, sizeof reason);
        strbuf_fixed_printf(err, errlen, "cannot set up a TLS session: %s", reason[0] ? reason : "out of memory");
    }
    ls.ERR_clear_error();
    tls_session_free(s);
    return NULL;
}

int tls_session_input(tls_session *s, const char *p, size_t n)
{
    if (s->failed != TLS_OK)
        return s->failed;
    while (n > 0) {
        int chunk = n > TLS_CHUNK ? TLS_CHUNK : (int)n;
        if (ls.BIO_write(s->in, p, chunk) != chunk) {
            ls.ERR_clear_error();
            strbuf_fixed_printf(s->err, sizeof s->err, "out of memory for received bytes");
            return s->failed = TLS_E_NOMEM;
        }
        p += chunk;
        n -= (size_t)chunk;
    }
    return tls_advance(s);
}

ssize_t tls_session_read(tls_session *s, char *buf, size_t cap)
{
    int r, rc;

    if (s->failed != TLS_OK)
        return s->failed;
    if (s->peer_closed)
        return TLS_E_CLOSED;
    if ((rc = tls_advance(s)) != TLS_OK)
        return rc;
    if (!s->ready || cap == 0)
        return 0;
    ls.ERR_clear_error();
    r = ls.SSL_read(s->ssl, buf, cap > TLS_CHUNK ? TLS_CHUNK : (int)cap);
    if (r > 0)
        return r;
    if (ls.SSL_get_error(s->ssl, r) == SSL_ERROR_ZERO_RETURN) {
        ls.ERR_clear_error();
        s->peer_closed = true;
        return TLS_E_CLOSED;
    }
    if ((rc = tls_check(s, r, TLS_E_PROTOCOL, "read")) != TLS_OK)
        return rc;
    rc = tls_flush(s); /* in case a write waited on this read */
    return rc != TLS_OK ? rc : 0;
}

int tls_session_write(tls_session *s, const char *p, size_t n)
{
    if (s->failed != TLS_OK)
        return s->failed;
    if (s->closed)
        return TLS_E_CLOSED;
    if (s->ready && s->pending_off == s->pending.len) { /* the usual case: straight to libssl, no copy */
        while (n > 0) {
            int chunk = n > TLS_CHUNK ? TLS_CHUNK : (int)n, r, rc;

            ls.ERR_clear_error();
            r = ls.SSL_write(s->ssl, p, chunk);
            if (r <= 0) {
                if ((rc = tls_check(s, r, TLS_E_PROTOCOL, "write")) != TLS_OK)
                    return rc;
                break; /* libssl waits for input: the rest, this chunk included, waits in pending */
            }
            p += r;
            n -= (size_t)r;
        }
    }
    if (n == 0)
        return TLS_OK;
    strbuf_append(&s->pending, p, n);
    if (s->pending.oom) {
        /* what was pending is lost with the failed growth: the stream cannot go on */
        strbuf_fixed_printf(s->err, sizeof s->err, "out of memory for %zu bytes to send", n);
        return s->failed = TLS_E_NOMEM;
    }
    return tls_flush(s);
}

int tls_session_output(tls_session *s, strbuf *out)
{
    char *data;
    long n;

    while ((n = ls.BIO_ctrl(s->out, BIO_CTRL_INFO, 0, &data)) > 0) { /* BIO_get_mem_data */
        if (n > TLS_CHUNK)
            n = TLS_CHUNK;
        strbuf_append(out, data, (size_t)n);
        if (out->oom)
            return TLS_E_NOMEM; /* nothing taken: the bytes stay for a later call */
        /* Consume them by reading into the copy just made (the same bytes over themselves): a memory BIO has no
         * cheaper way to drop what was read through its pointer. */
        if (ls.BIO_read(s->out, out->data + out->len - (size_t)n, (int)n) != (int)n)
            return TLS_E_NOMEM; /* cannot happen: the bytes are there */
    }
    return TLS_OK;
}

bool tls_session_ready(const tls_session *s) { return s->ready; }

void tls_session_close(tls_session *s)
{
    if (s->closed)
        return;
    s->closed = true;
    /* Before the handshake there is no channel to close; after a fatal error libssl must not be called. Either
     * way the caller just drops the socket. */
    if (!s->ready || s->failed != TLS_OK) {
        tls_pending_drop(s);
        return;
    }
    tls_flush(s);
    tls_pending_drop(s);
    ls.ERR_clear_error();
    ls.SSL_shutdown(s->ssl); /* 0: close_notify queued in out; the peer's answer is not awaited */
    ls.ERR_clear_error();
}

const char *tls_session_error(const tls_session *s) { return s->err; }

void tls_session_free(tls_session *s)
{
    if (s == NULL)
        return;
    tls_pending_drop(s);
    strbuf_free(&s->pending);
    if (s->ssl != NULL)
        ls.SSL_free(s->ssl); /* and both BIOs */
    if (s->ctx != NULL)
        ls.SSL_CTX_free(s->ctx);
    free(s);
}
