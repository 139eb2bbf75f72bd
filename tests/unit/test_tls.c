/* test_tls.c — the TLS client session against a real OpenSSL server.
 *
 * Most tests run the server in-process: a server SSL object on two memory BIOs, pumped against the session until
 * neither side has anything to say, so no socket or timing is involved. One test runs a forked server over a real
 * loopback TCP connection. The certificates are made at test time: a self-signed P-256 certificate for "localhost"
 * and 127.0.0.1 that the server presents, and a second, unrelated one to stand for a CA that did not sign it.
 *
 * This program links libssl itself (for the server); the session still loads it with dlopen, which finds the same
 * copy. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "iac/strbuf.h"
#include "iac/tls.h"
#include "testcert.h"

typedef struct {
    char dir[64];
    char cert[128], key[128];   /* the server's: CN and SAN localhost, IP 127.0.0.1 */
    char other[128];            /* an unrelated self-signed certificate */
    char other_key[128];
} files;

static files F;

static int group_setup(void **state)
{
    (void)state;
    snprintf(F.dir, sizeof F.dir, "/tmp/test_tls.XXXXXX");
    if (mkdtemp(F.dir) == NULL)
        return -1;
    snprintf(F.cert, sizeof F.cert, "%s/cert.pem", F.dir);
    snprintf(F.key, sizeof F.key, "%s/key.pem", F.dir);
    snprintf(F.other, sizeof F.other, "%s/other.pem", F.dir);
    snprintf(F.other_key, sizeof F.other_key, "%s/other-key.pem", F.dir);
    if (testcert_write(F.cert, F.key, "localhost", "DNS:localhost,IP:127.0.0.1") < 0 ||
        testcert_write(F.other, F.other_key, "other", "DNS:localhost,IP:127.0.0.1") < 0)
        return -1;
    unsetenv("SSL_CERT_FILE");
    unsetenv("SSL_CERT_DIR");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    unlink(F.cert);
    unlink(F.key);
    unlink(F.other);
    unlink(F.other_key);
    rmdir(F.dir);
    return 0;
}

/* ---- an in-process server on memory BIOs ---- */

typedef struct {
    SSL_CTX     *ctx;
    SSL         *ssl;
    BIO         *in, *out;      /* the server's: what the client sent, what the server sends */
    tls_session *c;
    strbuf       client_got;    /* plaintext the session gave its caller */
    strbuf       server_got;    /* plaintext the server read */
    int          client_rc;     /* the first negative result of input/read, else 0 */
    bool         server_closed; /* the server read close_notify */
    char         err[256];
} peer;

static SSL_CTX *server_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_use_certificate_file(ctx, F.cert, SSL_FILETYPE_PEM), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, F.key, SSL_FILETYPE_PEM), 1);
    return ctx;
}

/* A server and a session for host trusting ca_file; the session's creation must succeed. */
static void peer_open_ctx(peer *p, SSL_CTX *ctx, const char *host, const char *ca_file)
{
    memset(p, 0, sizeof *p);
    p->ctx = ctx;
    p->ssl = SSL_new(p->ctx);
    p->in = BIO_new(BIO_s_mem());
    p->out = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(p->in, -1);
    SSL_set_bio(p->ssl, p->in, p->out);
    SSL_set_accept_state(p->ssl);
    p->c = tls_session_new(host, ca_file, p->err, sizeof p->err);
    assert_non_null(p->c);
    assert_string_equal(p->err, "");
}

static void peer_open(peer *p, const char *host, const char *ca_file)
{
    peer_open_ctx(p, server_ctx(), host, ca_file);
}

static void peer_close(peer *p)
{
    tls_session_free(p->c);
    SSL_free(p->ssl);
    SSL_CTX_free(p->ctx);
    strbuf_free(&p->client_got);
    strbuf_free(&p->server_got);
}

/* Moves bytes both ways and reads plaintext on both sides until nothing moves. */
static void pump(peer *p)
{
    char buf[16384];
    bool moved = true;

    while (moved) {
        strbuf o = STRBUF_INIT;
        int n = 0;
        ssize_t r;

        moved = false;
        assert_int_equal(tls_session_output(p->c, &o), TLS_OK);
        if (o.len > 0) {
            assert_int_equal(BIO_write(p->in, o.data, (int)o.len), (int)o.len);
            moved = true;
        }
        strbuf_free(&o);

        if (!SSL_is_init_finished(p->ssl))
            SSL_do_handshake(p->ssl);
        while (!p->server_closed && (n = SSL_read(p->ssl, buf, sizeof buf)) > 0) {
            strbuf_append(&p->server_got, buf, (size_t)n);
            moved = true;
        }
        if (!p->server_closed && SSL_get_error(p->ssl, n) == SSL_ERROR_ZERO_RETURN)
            p->server_closed = true;
        ERR_clear_error();

        while ((n = BIO_read(p->out, buf, sizeof buf)) > 0) {
            int rc = tls_session_input(p->c, buf, (size_t)n);
            if (rc < 0 && p->client_rc == 0)
                p->client_rc = rc;
            moved = true;
        }
        while ((r = tls_session_read(p->c, buf, sizeof buf)) > 0) {
            strbuf_append(&p->client_got, buf, (size_t)r);
            moved = true;
        }
        if (r < 0 && p->client_rc == 0)
            p->client_rc = (int)r;
    }
}

static void server_write(peer *p, const char *s, size_t n)
{
    assert_int_equal(SSL_write(p->ssl, s, (int)n), (int)n);
}

static bool contains(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

/* ---- tests ---- */

/* Trusting the server's certificate through ca_file, the handshake completes and plaintext flows both ways; the
 * server sees the DNS name as SNI. */
static void handshake_and_echo_with_trusted_ca_file(void **state)
{
    (void)state;
    peer p;
    strbuf hello = STRBUF_INIT;

    peer_open(&p, "localhost", F.cert);
    assert_false(tls_session_ready(p.c));
    assert_int_equal(tls_session_output(p.c, &hello), TLS_OK);
    assert_true(hello.len > 5);
    assert_int_equal((unsigned char)hello.data[0], 0x16); /* a handshake record: the ClientHello */
    assert_int_equal(BIO_write(p.in, hello.data, (int)hello.len), (int)hello.len);
    strbuf_free(&hello);

    pump(&p);
    assert_int_equal(p.client_rc, 0);
    assert_true(tls_session_ready(p.c));
    assert_string_equal(tls_session_error(p.c), "");
    assert_string_equal(SSL_get_servername(p.ssl, TLSEXT_NAMETYPE_host_name), "localhost");
    assert_true(SSL_version(p.ssl) >= TLS1_2_VERSION);

    assert_int_equal(tls_session_write(p.c, "ping", 4), TLS_OK);
    pump(&p);
    assert_int_equal(p.server_got.len, 4);
    assert_memory_equal(p.server_got.data, "ping", 4);

    server_write(&p, "pong!", 5);
    pump(&p);
    assert_int_equal(p.client_got.len, 5);
    assert_memory_equal(p.client_got.data, "pong!", 5);

    char buf[16];
    assert_int_equal(tls_session_read(p.c, buf, sizeof buf), 0); /* nothing more now */
    assert_int_equal(p.client_rc, 0);
    peer_close(&p);
}

/* A certificate that no trusted CA signed is refused during the handshake, and the text names the verify failure. */
static void untrusted_certificate_is_refused(void **state)
{
    (void)state;
    peer p;

    peer_open(&p, "localhost", F.other);
    pump(&p);
    assert_false(tls_session_ready(p.c));
    assert_int_equal(p.client_rc, TLS_E_HANDSHAKE);
    assert_string_equal(tls_session_error(p.c), "certificate verify failed: self-signed certificate");
    /* the failure sticks, and no plaintext is accepted any more */
    assert_int_equal(tls_session_write(p.c, "x", 1), TLS_E_HANDSHAKE);
    assert_int_equal(tls_session_input(p.c, "x", 1), TLS_E_HANDSHAKE);
    char buf[8];
    assert_int_equal(tls_session_read(p.c, buf, sizeof buf), TLS_E_HANDSHAKE);
    assert_int_equal(p.server_got.len, 0);
    peer_close(&p);
}

/* A trusted certificate that does not name the host asked for is refused. */
static void hostname_mismatch_is_refused(void **state)
{
    (void)state;
    peer p;

    peer_open(&p, "example.com", F.cert);
    pump(&p);
    assert_false(tls_session_ready(p.c));
    assert_int_equal(p.client_rc, TLS_E_HANDSHAKE);
    assert_string_equal(tls_session_error(p.c), "certificate verify failed: hostname mismatch");
    peer_close(&p);

    /* no partial match on a name the certificate lacks */
    peer_open(&p, "xlocalhost", F.cert);
    pump(&p);
    assert_int_equal(p.client_rc, TLS_E_HANDSHAKE);
    peer_close(&p);
}

/* An IP literal is matched against the certificate's IP SANs and sent without SNI; another address is refused, an
 * IPv6 literal included. */
static void ip_literal_matches_ip_san(void **state)
{
    (void)state;
    peer p;

    peer_open(&p, "127.0.0.1", F.cert);
    pump(&p);
    assert_int_equal(p.client_rc, 0);
    assert_true(tls_session_ready(p.c));
    assert_null(SSL_get_servername(p.ssl, TLSEXT_NAMETYPE_host_name));
    peer_close(&p);

    peer_open(&p, "127.0.0.2", F.cert);
    pump(&p);
    assert_int_equal(p.client_rc, TLS_E_HANDSHAKE);
    assert_string_equal(tls_session_error(p.c), "certificate verify failed: IP address mismatch");
    peer_close(&p);

    peer_open(&p, "::1", F.cert);
    pump(&p);
    assert_int_equal(p.client_rc, TLS_E_HANDSHAKE);
    assert_string_equal(tls_session_error(p.c), "certificate verify failed: IP address mismatch");
    peer_close(&p);
}

/* Plaintext written before the handshake is kept, and reaches the server, in order, once it completes. */
static void plaintext_before_ready_arrives_after_handshake(void **state)
{
    (void)state;
    peer p;

    peer_open(&p, "localhost", F.cert);
    assert_int_equal(tls_session_write(p.c, "GET / HTTP/1.1\r\n", 16), TLS_OK);
    assert_int_equal(tls_session_write(p.c, "\r\n", 2), TLS_OK);
    assert_false(tls_session_ready(p.c));
    pump(&p);
    assert_int_equal(p.client_rc, 0);
    assert_true(tls_session_ready(p.c));
    assert_int_equal(p.server_got.len, 18);
    assert_memory_equal(p.server_got.data, "GET / HTTP/1.1\r\n\r\n", 18);
    assert_int_equal(tls_session_write(p.c, "more", 4), TLS_OK);
    pump(&p);
    assert_int_equal(p.server_got.len, 22);
    assert_memory_equal(p.server_got.data + 18, "more", 4);
    peer_close(&p);
}

static void fill(char *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (char)((i * 131u + seed) ^ (i >> 11));
}

/* A mebibyte goes each way in uneven pieces, intact and in order. */
static void large_transfer_both_ways(void **state)
{
    (void)state;
    enum { TOTAL = 1 << 20, PIECE = 10007 };
    char *up = malloc(TOTAL), *down = malloc(TOTAL);
    peer p;

    assert_non_null(up);
    assert_non_null(down);
    fill(up, TOTAL, 7);
    fill(down, TOTAL, 99);
    peer_open(&p, "localhost", F.cert);
    pump(&p);
    assert_true(tls_session_ready(p.c));

    for (size_t off = 0; off < TOTAL; off += PIECE) {
        size_t n = TOTAL - off < PIECE ? TOTAL - off : PIECE;
        assert_int_equal(tls_session_write(p.c, up + off, n), TLS_OK);
        server_write(&p, down + off, n);
        if ((off / PIECE) % 8 == 0)
            pump(&p);
    }
    pump(&p);
    assert_int_equal(p.client_rc, 0);
    assert_int_equal(p.server_got.len, TOTAL);
    assert_int_equal(p.client_got.len, TOTAL);
    assert_memory_equal(p.server_got.data, up, TOTAL);
    assert_memory_equal(p.client_got.data, down, TOTAL);

    /* one write larger than any record, before anything is read back */
    strbuf_reset(&p.server_got);
    assert_int_equal(tls_session_write(p.c, up, TOTAL), TLS_OK);
    pump(&p);
    assert_int_equal(p.server_got.len, TOTAL);
    assert_memory_equal(p.server_got.data, up, TOTAL);

    peer_close(&p);
    free(up);
    free(down);
}

/* The server's close_notify ends the stream after the data sent before it: TLS_E_CLOSED, on every later read. Our
 * own close sends close_notify once, and writing after it is refused. */
static void close_notify_reports_closed(void **state)
{
    (void)state;
    peer p;
    char buf[16];
    strbuf o = STRBUF_INIT;

    peer_open(&p, "localhost", F.cert);
    pump(&p);
    server_write(&p, "bye", 3);
    SSL_shutdown(p.ssl);
    pump(&p);
    assert_int_equal(p.client_got.len, 3);
    assert_memory_equal(p.client_got.data, "bye", 3);
    assert_int_equal(p.client_rc, TLS_E_CLOSED);
    assert_int_equal(tls_session_read(p.c, buf, sizeof buf), TLS_E_CLOSED);
    assert_string_equal(tls_session_error(p.c), "");

    tls_session_close(p.c);
    pump(&p);
    assert_true(p.server_closed);
    tls_session_close(p.c);
    assert_int_equal(tls_session_output(p.c, &o), TLS_OK);
    assert_int_equal(o.len, 0); /* idempotent: nothing more queued */
    assert_int_equal(tls_session_write(p.c, "late", 4), TLS_E_CLOSED);
    strbuf_free(&o);
    peer_close(&p);
}

/* Our close before the server's: the server reads close_notify after the data written before it. Closing before
 * the handshake completes queues nothing. */
static void close_sends_close_notify_after_data(void **state)
{
    (void)state;
    peer p;
    strbuf o = STRBUF_INIT;

    peer_open(&p, "localhost", F.cert);
    pump(&p);
    assert_int_equal(tls_session_write(p.c, "last words", 10), TLS_OK);
    tls_session_close(p.c);
    pump(&p);
    assert_int_equal(p.server_got.len, 10);
    assert_true(p.server_closed);
    peer_close(&p);

    peer_open(&p, "localhost", F.cert);
    assert_int_equal(tls_session_output(p.c, &o), TLS_OK); /* the ClientHello */
    strbuf_reset(&o);
    assert_int_equal(tls_session_write(p.c, "never sent", 10), TLS_OK);
    tls_session_close(p.c);
    assert_int_equal(tls_session_output(p.c, &o), TLS_OK);
    assert_int_equal(o.len, 0);
    strbuf_free(&o);
    peer_close(&p);
}

/* Bytes that are not TLS fail the handshake with a text, not a crash; so does a forged record after it, as a
 * protocol error. Random input of any length never crashes or succeeds. */
static void garbage_input_is_an_error(void **state)
{
    (void)state;
    char err[256], buf[64];
    peer p;
    static const char http[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";

    tls_session *s = tls_session_new("localhost", F.cert, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(tls_session_input(s, http, sizeof http - 1), TLS_E_HANDSHAKE);
    assert_true(contains(tls_session_error(s), "handshake: "));
    assert_int_equal(tls_session_read(s, buf, sizeof buf), TLS_E_HANDSHAKE);
    tls_session_free(s);

    /* a forged application-data record after the handshake */
    peer_open(&p, "localhost", F.cert);
    pump(&p);
    assert_true(tls_session_ready(p.c));
    char rec[5 + 64] = { 0x17, 0x03, 0x03, 0x00, 64 };
    memset(rec + 5, 0x5a, 64);
    assert_int_equal(tls_session_input(p.c, rec, sizeof rec), TLS_OK);
    assert_int_equal(tls_session_read(p.c, buf, sizeof buf), TLS_E_PROTOCOL);
    assert_true(contains(tls_session_error(p.c), "read: "));
    assert_int_equal(tls_session_write(p.c, "x", 1), TLS_E_PROTOCOL);
    strbuf o = STRBUF_INIT;
    assert_int_equal(tls_session_output(p.c, &o), TLS_OK); /* an alert for the server, at most */
    strbuf_free(&o);
    peer_close(&p);

    unsigned seed = 12345;
    for (int i = 0; i < 40; i++) {
        char junk[700];
        size_t n = (size_t)(rand_r(&seed) % (int)sizeof junk) + 1;
        for (size_t j = 0; j < n; j++)
            junk[j] = (char)rand_r(&seed);
        if (i % 2 == 0 && n > 3) { /* a handshake record header, to get past the first checks */
            junk[0] = 0x16;
            junk[1] = 0x03;
            junk[2] = 0x03;
        }
        if (i % 4 == 0 && n > 5) { /* and a record length that fits: the handshake parser sees the rest */
            junk[3] = (char)((n - 5) >> 8);
            junk[4] = (char)((n - 5) & 0xff);
        }
        s = tls_session_new("localhost", F.cert, err, sizeof err);
        assert_non_null(s);
        int rc = tls_session_input(s, junk, n);
        ssize_t r = tls_session_read(s, buf, sizeof buf);
        assert_true(rc == TLS_OK || rc == TLS_E_HANDSHAKE);
        assert_true(r == 0 || r == TLS_E_HANDSHAKE);
        assert_false(tls_session_ready(s));
        if (rc < 0 || r < 0)
            assert_true(tls_session_error(s)[0] != '\0');
        tls_session_free(s);
    }
}

/* A CA file that cannot be read, or holds no certificate, fails the session's creation with a message naming it;
 * so does a host that cannot be verified (none, too long for SNI, an IPv6 literal in brackets). */
static void unusable_ca_file_or_host_fails_creation(void **state)
{
    (void)state;
    char err[256], path[160];

    snprintf(path, sizeof path, "%s/missing.pem", F.dir);
    assert_null(tls_session_new("localhost", path, err, sizeof err));
    assert_true(contains(err, "cannot read CA file "));
    assert_true(contains(err, path));
    assert_true(contains(err, "No such file or directory"));

    /* a file that holds no certificate */
    snprintf(path, sizeof path, "%s/not-a-cert.pem", F.dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("not a certificate\n", fp);
    fclose(fp);
    assert_null(tls_session_new("localhost", path, err, sizeof err));
    assert_true(contains(err, "cannot read CA file "));
    assert_true(contains(err, path));
    unlink(path);

    char longhost[300];
    memset(longhost, 'a', sizeof longhost - 1);
    longhost[sizeof longhost - 1] = '\0';
    assert_null(tls_session_new(longhost, F.cert, err, sizeof err)); /* longer than SNI allows */
    assert_true(contains(err, "cannot verify the server as \"aaaa"));
    assert_null(tls_session_new("[::1]", F.cert, err, sizeof err));
    assert_true(contains(err, "without brackets"));
    assert_null(tls_session_new("", F.cert, err, sizeof err));
    assert_true(err[0] != '\0');
    assert_null(tls_session_new(NULL, F.cert, err, sizeof err));
    assert_true(err[0] != '\0');
    tls_session_free(NULL);
}

/* Without ca_file, $SSL_CERT_FILE is the trust store when set; without it the system store is used, which does not
 * know the test's certificate. */
static void ssl_cert_file_is_honoured(void **state)
{
    (void)state;
    peer p;

    setenv("SSL_CERT_FILE", F.cert, 1);
    peer_open(&p, "localhost", NULL);
    pump(&p);
    unsetenv("SSL_CERT_FILE");
    assert_int_equal(p.client_rc, 0);
    assert_true(tls_session_ready(p.c));
    peer_close(&p);

    peer_open(&p, "localhost", NULL);
    pump(&p);
    assert_int_equal(p.client_rc, TLS_E_HANDSHAKE);
    assert_string_equal(tls_session_error(p.c), "certificate verify failed: self-signed certificate");
    peer_close(&p);
}

/* The lowest version a ClientHello offers in its supported_versions extension, into *arg. */
static int note_lowest_version(SSL *ssl, int *alert, void *arg)
{
    const unsigned char *d;
    size_t n;
    int *lowest = arg;

    (void)alert;
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_supported_versions, &d, &n) == 1)
        for (size_t i = 1; i + 1 < n; i += 2)
            if (*lowest == 0 || (d[i] << 8 | d[i + 1]) < *lowest)
                *lowest = d[i] << 8 | d[i + 1];
    return SSL_CLIENT_HELLO_SUCCESS;
}

/* The ClientHello offers TLS 1.2 and newer only, and a server that speaks nothing newer than TLS 1.1 is refused. */
static void old_protocols_are_not_offered(void **state)
{
    (void)state;
    peer p;
    SSL_CTX *ctx = server_ctx();
    int lowest = 0;

    SSL_CTX_set_client_hello_cb(ctx, note_lowest_version, &lowest);
    peer_open_ctx(&p, ctx, "localhost", F.cert);
    pump(&p);
    assert_true(tls_session_ready(p.c));
    assert_int_equal(lowest, TLS1_2_VERSION);
    peer_close(&p);

    ctx = server_ctx();
    assert_int_equal(SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION), 1);
    assert_int_equal(SSL_CTX_set_max_proto_version(ctx, TLS1_1_VERSION), 1);
    SSL_CTX_set_security_level(ctx, 0);
    peer_open_ctx(&p, ctx, "localhost", F.cert);
    pump(&p);
    assert_false(tls_session_ready(p.c));
    assert_int_equal(p.client_rc, TLS_E_HANDSHAKE);
    assert_true(contains(tls_session_error(p.c), "handshake: "));
    peer_close(&p);
}

/* ---- over a real socket ---- */

/* A forked server on a loopback TCP socket: echoes what it reads until close_notify, then answers with its own. */
static pid_t echo_server_fork(int *port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t alen = sizeof a;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    pid_t pid;

    assert_true(lfd >= 0);
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(lfd, 1), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
    *port = ntohs(a.sin_port);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char buf[16384];
        int fd, n;
        alarm(20); /* never outlive a broken test */
        fd = accept(lfd, NULL, NULL);
        SSL_CTX *ctx = server_ctx();
        SSL *ssl = SSL_new(ctx);
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) != 1)
            _exit(2);
        while ((n = SSL_read(ssl, buf, sizeof buf)) > 0)
            if (SSL_write(ssl, buf, n) != n)
                _exit(3);
        if (SSL_get_error(ssl, n) != SSL_ERROR_ZERO_RETURN)
            _exit(4);
        SSL_shutdown(ssl);
        _exit(0);
    }
    close(lfd);
    return pid;
}

/* The session carries a handshake, 256 KiB echoed back and a close in both directions over a real non-blocking
 * loopback connection, the caller doing the I/O. */
static void echo_over_loopback_tcp(void **state)
{
    (void)state;
    enum { TOTAL = 256 << 10 };
    int port, fd, status;
    pid_t pid = echo_server_fork(&port);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    char err[256], buf[16384];
    char *data = malloc(TOTAL);
    strbuf wire = STRBUF_INIT, got = STRBUF_INIT;
    size_t sent = 0;
    bool closing = false, eof = false;
    int end = 0;

    assert_non_null(data);
    fill(data, TOTAL, 3);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);

    tls_session *s = tls_session_new("127.0.0.1", F.cert, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(tls_session_write(s, data, TOTAL), TLS_OK); /* all before the handshake */

    for (int turns = 0; end == 0 && turns < 100000; turns++) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        ssize_t r;

        assert_int_equal(tls_session_output(s, &wire), TLS_OK);
        if (sent < wire.len)
            pfd.events |= POLLOUT;
        assert_true(poll(&pfd, 1, 10000) > 0); /* a stall fails the test instead of hanging it */
        if (pfd.revents & POLLOUT) {
            r = write(fd, wire.data + sent, wire.len - sent);
            assert_true(r > 0 || errno == EAGAIN);
            if (r > 0)
                sent += (size_t)r;
            if (sent == wire.len) {
                strbuf_reset(&wire);
                sent = 0;
            }
        }
        if (pfd.revents & (POLLIN | POLLHUP)) {
            r = read(fd, buf, sizeof buf);
            if (r == 0)
                eof = true;
            else if (r > 0)
                assert_int_equal(tls_session_input(s, buf, (size_t)r), TLS_OK);
            while ((r = tls_session_read(s, buf, sizeof buf)) > 0)
                strbuf_append(&got, buf, (size_t)r);
            if (r < 0)
                end = (int)r;
            if (eof && end == 0)
                end = -100; /* the server left without close_notify */
        }
        if (!closing && got.len == TOTAL) {
            tls_session_close(s);
            closing = true;
        }
    }
    assert_int_equal(end, TLS_E_CLOSED);
    assert_true(tls_session_ready(s));
    assert_int_equal(got.len, TOTAL);
    assert_memory_equal(got.data, data, TOTAL);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    tls_session_free(s);
    close(fd);
    strbuf_free(&wire);
    strbuf_free(&got);
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(handshake_and_echo_with_trusted_ca_file),
        cmocka_unit_test(untrusted_certificate_is_refused),
        cmocka_unit_test(hostname_mismatch_is_refused),
        cmocka_unit_test(ip_literal_matches_ip_san),
        cmocka_unit_test(plaintext_before_ready_arrives_after_handshake),
        cmocka_unit_test(large_transfer_both_ways),
        cmocka_unit_test(close_notify_reports_closed),
        cmocka_unit_test(close_sends_close_notify_after_data),
        cmocka_unit_test(garbage_input_is_an_error),
        cmocka_unit_test(unusable_ca_file_or_host_fails_creation),
        cmocka_unit_test(ssl_cert_file_is_honoured),
        cmocka_unit_test(old_protocols_are_not_offered),
        cmocka_unit_test(echo_over_loopback_tcp),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
