/* test_httpc.c — the libcurl-on-libuv client against real servers on loopback, all on one loop.
 *
 * The server is the project's https module on the same loop (ephemeral port), scripted by path: /echo echoes
 * the body, /status/NNN answers NNN, /flaky answers 503 a set number of times before 200, /big?n=N sends N bytes,
 * /blob?n=N sends N bytes of a fixed binary pattern, /sha answers the length and SHA-256 of the body it got.
 * Two raw sockets stand in for broken peers: a port that was closed (connection refused) and a listener that
 * never accepts (the kernel completes the handshake; nobody answers); a third, a libuv TCP server, answers every
 * request with a redirect. A watchdog timer fails any test that would hang; each test ends with the loop running
 * to completion and uv_loop_close() succeeding. Streamed bodies and file sinks are checked by size and SHA-256
 * on the other side. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include <libwebsockets.h>
#include <uv.h>

#include "iac/digest.h"
#include "iac/fsutil.h"
#include "selfproc.h"
#include "iac/httpc.h"
#include "iac/https.h"

#define NCALLS 8
#define TOKEN  "apt_s3cr3t-token"

typedef struct fixture fixture;

typedef struct {
    fixture *f;
    int      i;
} slot;

/* What a callback received (copies). */
typedef struct {
    int    called;
    int    error;
    long   status;
    char  *errmsg;
    char  *body;
    size_t body_len;
    int    attempts;
    uint64_t at_ms;
} got;

/* What the server's handler saw. Bodies over 4 KiB are recorded as "<length>:<sha256>". */
typedef struct {
    char *method, *path, *authorization, *content_type, *body;
} seen;

/* A streamed request body: `size` bytes of a letter pattern starting at `seed`, hashed as they are handed out. */
typedef struct {
    uint64_t size, pos, seed;
    uint64_t stop_at;  /* pretend the source ends here (0: never) */
    bool     fail;     /* answer HTTPC_BODY_ABORT */
    int      rewinds;
    int      reads;
} source;

struct fixture {
    uv_loop_t     loop;
    uv_timer_t    watchdog, aux;
    bool          timed_out;
    https_server *srv;
    int           port;
    httpc        *c;
    int           outstanding; /* callbacks still expected */
    slot          slots[NCALLS];
    got           got[NCALLS];
    httpc_call   *calls[NCALLS];
    seen          seen[16];
    int           nseen;
    int           flaky_failures; /* /flaky answers 503 this many more times */
    int           hold_fd;        /* listening, never accepting */
    int           hold_port, refused_port;
    uint64_t      t0;
    void        (*on_cb)(fixture *f, int i); /* test hook, run inside the callback */
    uv_tcp_t      raw;            /* a scripted server: connection k gets answer[min(k, nanswers - 1)] */
    bool          has_raw;
    int           raw_port;
    const char   *answer[4];      /* whole responses, bytes as they go on the wire */
    int           nanswers;
    int           raw_conns;      /* connections answered */
    bool          raw_keep;       /* answer every request of a connection, and keep it (else: one, then close) */
    int           raw_requests;   /* requests received, on every connection */
    int           raw_drop_at;    /* request number (1-based) closed without an answer; 0: none */
    char          raw_req[12][1024]; /* the heads (and bodies) they brought, first 12 */
    char          dir[64];        /* scratch directory for sink files, removed in teardown */
    uint64_t      aux_ms;         /* two_gets: the wait before the second GET */
};

/* The byte at offset i of /blob's pattern: every value 0..255 occurs, NULs included. */
static uint8_t blob_byte(uint64_t i) { return (uint8_t)((i * 2654435761u) >> 13); }

static void blob_sha(uint64_t n, char out[DIGEST_SHA256_HEX_LEN + 1])
{
    digest_sha256_ctx *d = digest_sha256_begin();
    uint8_t buf[4096];
    for (uint64_t i = 0; i < n;) {
        size_t k = 0;
        for (; k < sizeof buf && i < n; k++, i++)
            buf[k] = blob_byte(i);
        digest_sha256_update(d, buf, k);
    }
    digest_sha256_end_hex(d, out);
}

/* The letter at offset i of a source's body. */
static char source_byte(const source *s, uint64_t i) { return (char)('a' + (s->seed + i * 7 + i / 13) % 26); }

static size_t source_read(void *buf, size_t n, void *arg)
{
    source *s = arg;
    s->reads++;
    if (s->fail)
        return HTTPC_BODY_ABORT;
    uint64_t end = s->stop_at ? s->stop_at : s->size;
    size_t k = 0;
    for (char *p = buf; k < n && s->pos < end; k++, s->pos++)
        p[k] = source_byte(s, s->pos);
    return k;
}

static int source_rewind(void *arg)
{
    source *s = arg;
    s->rewinds++;
    s->pos = 0;
    return 0;
}

/* "<size>:<sha256>" of the whole body a source produces. */
static void source_digest(const source *s, char *out, size_t outlen)
{
    digest_sha256_ctx *d = digest_sha256_begin();
    char buf[4096], hex[DIGEST_SHA256_HEX_LEN + 1];
    for (uint64_t i = 0; i < s->size;) {
        size_t k = 0;
        for (; k < sizeof buf && i < s->size; k++, i++)
            buf[k] = source_byte(s, i);
        digest_sha256_update(d, buf, k);
    }
    digest_sha256_end_hex(d, hex);
    snprintf(out, outlen, "%llu:%s", (unsigned long long)s->size, hex);
}

/* ---- the server ---- */

static void handler(const https_request *req, https_response *res, void *arg)
{
    fixture *f = arg;
    char n[32], hex[DIGEST_SHA256_HEX_LEN + 1], digest[96];
    digest_sha256_hex(req->body, req->body_len, hex);
    snprintf(digest, sizeof digest, "%zu:%s", req->body_len, hex);
    if (f->nseen < 16) {
        seen *s = &f->seen[f->nseen++];
        s->method = strdup(req->method);
        s->path = strdup(req->path);
        s->authorization = req->authorization ? strdup(req->authorization) : NULL;
        s->content_type = req->content_type ? strdup(req->content_type) : NULL;
        s->body = strdup(req->body_len > 4096 ? digest : req->body);
    }
    if (!strcmp(req->path, "/sha")) {
        strbuf_puts(&res->body, digest);
    } else if (!strcmp(req->path, "/blob") && https_query_param(req->query, "n", n, sizeof n) == 0) {
        res->content_type = "application/octet-stream";
        uint8_t buf[4096];
        for (uint64_t i = 0, end = strtoull(n, NULL, 10); i < end;) {
            size_t k = 0;
            for (; k < sizeof buf && i < end; k++, i++)
                buf[k] = blob_byte(i);
            strbuf_append(&res->body, buf, k);
        }
    } else if (!strcmp(req->path, "/echo")) {
        strbuf_append(&res->body, req->body, req->body_len);
    } else if (!strncmp(req->path, "/status/", 8)) {
        https_reply_error(res, atoi(req->path + 8), "as requested");
    } else if (!strcmp(req->path, "/flaky")) {
        if (f->flaky_failures > 0) {
            f->flaky_failures--;
            https_reply_error(res, 503, "try again");
        } else {
            strbuf_puts(&res->body, "ok");
        }
    } else if (!strcmp(req->path, "/big") && https_query_param(req->query, "n", n, sizeof n) == 0) {
        for (long i = atol(n); i > 0; i--)
            strbuf_putc(&res->body, 'z');
    } else {
        https_reply_error(res, 404, "no such path");
    }
}

/* ---- fixture ---- */

static void on_watchdog(uv_timer_t *t)
{
    fixture *f = t->data;
    f->timed_out = true;
    uv_stop(&f->loop);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    char err[256];
    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_timer_init(&f->loop, &f->watchdog);
    f->watchdog.data = f;
    uv_timer_start(&f->watchdog, on_watchdog, 4000, 0);
    uv_unref((uv_handle_t *)&f->watchdog); /* does not keep the loop alive by itself */
    uv_timer_init(&f->loop, &f->aux);
    f->aux.data = f;

    https_opts o = { .host = "127.0.0.1", .max_body = 32u << 20, .handler = handler, .arg = f };
    f->srv = https_listen(&f->loop, &o, err, sizeof err);
    assert_non_null(f->srv);
    f->port = https_port(f->srv);

    /* a listener that never accepts */
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t sl = sizeof sa;
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    f->hold_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(f->hold_fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(f->hold_fd, 8), 0);
    getsockname(f->hold_fd, (struct sockaddr *)&sa, &sl);
    f->hold_port = ntohs(sa.sin_port);

    /* a port that was open a moment ago and is now closed */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sa.sin_port = 0;
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    f->refused_port = ntohs(sa.sin_port);
    close(fd);

    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < NCALLS; i++) {
        free(f->got[i].errmsg);
        free(f->got[i].body);
    }
    for (int i = 0; i < f->nseen; i++) {
        free(f->seen[i].method);
        free(f->seen[i].path);
        free(f->seen[i].authorization);
        free(f->seen[i].content_type);
        free(f->seen[i].body);
    }
    if (f->hold_fd >= 0)
        close(f->hold_fd);
    if (f->dir[0])
        fs_rm_rf(f->dir);
    free(f);
    return 0;
}

/* Frees client and server; the loop then has nothing left but closing handles. */
static void finish(fixture *f)
{
    httpc_free(f->c);
    f->c = NULL;
    https_free(f->srv);
    f->srv = NULL;
    uv_timer_stop(&f->aux);
    if (f->has_raw) {
        uv_close((uv_handle_t *)&f->raw, NULL);
        f->has_raw = false;
    }
}

static void on_res(const httpc_response *r, void *arg)
{
    slot *s = arg;
    fixture *f = s->f;
    got *g = &f->got[s->i];
    g->called++;
    g->error = r->error;
    g->status = r->status;
    free(g->errmsg);
    g->errmsg = strdup(r->errmsg);
    free(g->body);
    size_t kept = strnlen(r->body, r->body_len); /* body is "" when it went to a file; body_len is not 0 */
    g->body = malloc(kept + 1);
    memcpy(g->body, r->body, kept + 1);
    g->body_len = r->body_len;
    g->attempts = r->attempts;
    uv_update_time(&f->loop);
    g->at_ms = uv_now(&f->loop) - f->t0;
    f->calls[s->i] = NULL;
    if (f->on_cb)
        f->on_cb(f, s->i);
    if (--f->outstanding == 0 && f->c)
        finish(f);
}

static void client(fixture *f, long total_timeout_ms, size_t max_response, uint64_t retry_base_ms)
{
    httpc_opts o = { .total_timeout_ms = total_timeout_ms, .max_response = max_response,
                     .retry_base_ms = retry_base_ms };
    f->c = httpc_new(&f->loop, &o);
    assert_non_null(f->c);
    uv_update_time(&f->loop);
    f->t0 = uv_now(&f->loop);
}

/* Starts request i; target is a path on the test server or a whole URL. */
static httpc_call *req(fixture *f, int i, const char *method, const char *target, const char *bearer,
                       const char *body, httpc_mode mode)
{
    char url[256];
    if (!strncmp(target, "http", 4))
        snprintf(url, sizeof url, "%s", target);
    else
        snprintf(url, sizeof url, "http://127.0.0.1:%d%s", f->port, target);
    httpc_req r = { .method = method, .url = url, .bearer = bearer, .body = body,
                    .body_len = body ? strlen(body) : 0, .mode = mode };
    f->slots[i] = (slot){ f, i };
    f->calls[i] = httpc_request(f->c, &r, on_res, &f->slots[i]);
    if (f->calls[i])
        f->outstanding++;
    return f->calls[i];
}

/* Runs the loop to the end: no hang, nothing left open. */
static void run(fixture *f)
{
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_false(f->timed_out);
    uv_close((uv_handle_t *)&f->watchdog, NULL);
    uv_close((uv_handle_t *)&f->aux, NULL);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static void url_of(char *buf, size_t len, int port, const char *path)
{
    snprintf(buf, len, "http://127.0.0.1:%d%s", port, path);
}

/* ---- round trips ---- */

/* Issues the next request of round_trip_each_method from the previous one's callback (one at a time, so the
 * server sees them in order). */
static void round_trip_next(fixture *f, int i)
{
    static const char *methods[] = { "GET", "POST", "PUT", "PATCH", "DELETE", "POST" };
    static const char *bodies[] = { NULL, "{\"post\":1}", "{\"put\":2}", "{\"patch\":3}", NULL, "" };
    if (i + 1 < 6)
        req(f, i + 1, methods[i + 1], "/echo", i + 1 == 5 ? NULL : TOKEN, bodies[i + 1], HTTPC_RETRYING);
}

/* GET, POST, PUT, PATCH and DELETE reach the server with their bodies, Content-Type: application/json and the
 * bearer token; without a bearer no Authorization header is sent; the response body comes back. */
static void round_trip_each_method(void **state)
{
    fixture *f = *state;
    static const char *methods[] = { "GET", "POST", "PUT", "PATCH", "DELETE", "POST" };
    static const char *bodies[] = { "", "{\"post\":1}", "{\"put\":2}", "{\"patch\":3}", "", "" };
    client(f, 0, 0, 10);
    f->on_cb = round_trip_next;
    req(f, 0, "GET", "/echo", TOKEN, NULL, HTTPC_RETRYING);
    run(f);

    assert_int_equal(f->nseen, 6);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(f->got[i].called, 1);
        assert_int_equal(f->got[i].error, HTTPC_OK);
        assert_int_equal(f->got[i].status, 200);
        assert_int_equal(f->got[i].attempts, 1);
        assert_string_equal(f->got[i].errmsg, "");
        assert_string_equal(f->got[i].body, bodies[i]);
        assert_string_equal(f->seen[i].method, methods[i]);
        assert_string_equal(f->seen[i].body, bodies[i]);
        assert_string_equal(f->seen[i].content_type, "application/json");
        if (i == 5)
            assert_null(f->seen[i].authorization);
        else
            assert_string_equal(f->seen[i].authorization, "Bearer " TOKEN);
    }
}

/* A body goes with any method it is given to (GET and DELETE keep their names), and a HEAD request completes
 * without waiting for the body its answer announces. */
static void bodies_go_with_any_method(void **state)
{
    fixture *f = *state;
    client(f, 0, 0, 10);
    req(f, 0, "GET", "/echo", NULL, "{\"get\":1}", HTTPC_PLAIN);
    req(f, 1, "DELETE", "/echo", NULL, "{\"delete\":1}", HTTPC_PLAIN);
    req(f, 2, "HEAD", "/blob?n=5000", NULL, NULL, HTTPC_PLAIN); /* announces 5000 bytes, sends none */
    run(f);
    assert_string_equal(f->got[0].body, "{\"get\":1}");
    assert_string_equal(f->got[1].body, "{\"delete\":1}");
    assert_int_equal(f->got[2].error, HTTPC_OK);
    assert_int_equal(f->got[2].status, 200);
    assert_int_equal(f->got[2].body_len, 0);
    assert_true(f->got[2].at_ms < 1000);
    assert_int_equal(f->nseen, 3); /* common/https hands HEAD to the handler as GET */
    for (int i = 0; i < 3; i++)
        assert_string_equal(f->seen[i].method, !strcmp(f->seen[i].body, "{\"delete\":1}") ? "DELETE" : "GET");
}

/* Several requests in flight at once all complete, each with its own response. */
static void concurrent_requests_complete(void **state)
{
    fixture *f = *state;
    char body[NCALLS][24];
    client(f, 0, 0, 10);
    for (int i = 0; i < NCALLS; i++) {
        snprintf(body[i], sizeof body[i], "{\"n\":%d}", i);
        req(f, i, "POST", "/echo", TOKEN, body[i], HTTPC_PLAIN);
    }
    assert_int_equal(httpc_pending(f->c), NCALLS);
    run(f);
    for (int i = 0; i < NCALLS; i++) {
        assert_int_equal(f->got[i].status, 200);
        assert_string_equal(f->got[i].body, body[i]);
    }
}

/* ---- retries ---- */

/* A 4xx is final even in retrying mode: one attempt, the status and body reported as a response. */
static void client_error_is_not_retried(void **state)
{
    fixture *f = *state;
    client(f, 0, 0, 10);
    req(f, 0, "POST", "/status/409", TOKEN, "{}", HTTPC_RETRYING);
    run(f);
    assert_int_equal(f->got[0].error, HTTPC_OK);
    assert_int_equal(f->got[0].status, 409);
    assert_int_equal(f->got[0].attempts, 1);
    assert_string_equal(f->got[0].body, "{\"error\":\"as requested\"}");
    assert_int_equal(f->nseen, 1);
}

/* A 5xx is retried until four attempts have been made, waiting base × 1, 2, 4 between them, and the last
 * answer is reported. */
static void server_error_is_retried_four_times(void **state)
{
    fixture *f = *state;
    client(f, 0, 0, 10);
    req(f, 0, "GET", "/status/500", TOKEN, NULL, HTTPC_RETRYING);
    run(f);
    assert_int_equal(f->got[0].called, 1);
    assert_int_equal(f->got[0].error, HTTPC_OK);
    assert_int_equal(f->got[0].status, 500);
    assert_int_equal(f->got[0].attempts, 4);
    assert_int_equal(f->nseen, 4);
    assert_true(f->got[0].at_ms >= 10 + 20 + 40);
}

/* Two 5xx answers then a 200: success on the third attempt. */
static void recovers_after_two_server_errors(void **state)
{
    fixture *f = *state;
    f->flaky_failures = 2;
    client(f, 0, 0, 10);
    req(f, 0, "PUT", "/flaky", TOKEN, "{\"status\":\"running\"}", HTTPC_RETRYING);
    run(f);
    assert_int_equal(f->got[0].error, HTTPC_OK);
    assert_int_equal(f->got[0].status, 200);
    assert_int_equal(f->got[0].attempts, 3);
    assert_string_equal(f->got[0].body, "ok");
    assert_int_equal(f->nseen, 3);
    assert_string_equal(f->seen[2].body, "{\"status\":\"running\"}");
}

/* Plain mode makes one attempt, whatever the answer. */
static void plain_mode_makes_one_attempt(void **state)
{
    fixture *f = *state;
    char url[64];
    url_of(url, sizeof url, f->refused_port, "/x");
    client(f, 0, 0, 10);
    req(f, 0, "GET", "/status/503", NULL, NULL, HTTPC_PLAIN);
    req(f, 1, "GET", url, NULL, NULL, HTTPC_PLAIN);
    run(f);
    assert_int_equal(f->got[0].status, 503);
    assert_int_equal(f->got[0].attempts, 1);
    assert_int_equal(f->got[1].error, HTTPC_E_TRANSPORT);
    assert_int_equal(f->got[1].attempts, 1);
}

/* ---- failures ---- */

/* A refused connection is a transport error, retried in retrying mode; the message says what failed and never
 * contains the token (nor the URL's query). */
static void refused_connection_is_transport_error(void **state)
{
    fixture *f = *state;
    char url[96];
    url_of(url, sizeof url, f->refused_port, "/api/v1/agents?token=" TOKEN);
    client(f, 0, 0, 10);
    req(f, 0, "POST", url, TOKEN, "{}", HTTPC_RETRYING);
    run(f);
    assert_int_equal(f->got[0].error, HTTPC_E_TRANSPORT);
    assert_int_equal(f->got[0].status, 0);
    assert_int_equal(f->got[0].attempts, 4);
    assert_string_equal(f->got[0].body, "");
    assert_true(strlen(f->got[0].errmsg) > 0);
    assert_non_null(strstr(f->got[0].errmsg, "127.0.0.1"));
    assert_null(strstr(f->got[0].errmsg, TOKEN));
    assert_null(strstr(f->got[0].errmsg, "?"));
}

/* A server that accepts and never answers ends in HTTPC_E_TIMEOUT once total_timeout_ms has passed. */
static void unanswered_request_times_out(void **state)
{
    fixture *f = *state;
    char url[64];
    url_of(url, sizeof url, f->hold_port, "/slow");
    client(f, 200, 0, 10);
    req(f, 0, "GET", url, TOKEN, NULL, HTTPC_PLAIN);
    run(f);
    assert_int_equal(f->got[0].error, HTTPC_E_TIMEOUT);
    assert_int_equal(f->got[0].status, 0);
    assert_true(f->got[0].at_ms >= 190 && f->got[0].at_ms < 2000);
    assert_null(strstr(f->got[0].errmsg, TOKEN));
}

/* A response body larger than max_response fails with HTTPC_E_TOOBIG (not retried); one of exactly
 * max_response bytes is delivered. */
static void oversized_response_is_too_big(void **state)
{
    fixture *f = *state;
    client(f, 0, 1000, 10);
    req(f, 0, "GET", "/big?n=5000", NULL, NULL, HTTPC_RETRYING);
    req(f, 1, "GET", "/big?n=1000", NULL, NULL, HTTPC_RETRYING);
    run(f);
    assert_int_equal(f->got[0].error, HTTPC_E_TOOBIG);
    assert_int_equal(f->got[0].attempts, 1);
    assert_int_equal(f->got[0].body_len, 0);
    assert_int_equal(f->got[1].error, HTTPC_OK);
    assert_int_equal(f->got[1].body_len, 1000);
}

/* Requests that could inject headers or are not requests at all are refused up front (NULL, no callback). */
static void malformed_requests_are_refused(void **state)
{
    fixture *f = *state;
    client(f, 0, 0, 10);
    assert_null(req(f, 0, "GET", "/echo", "tok\r\nX-Evil: 1", NULL, HTTPC_PLAIN));
    assert_null(req(f, 1, "get", "/echo", NULL, NULL, HTTPC_PLAIN));
    assert_null(req(f, 2, "GE T", "/echo", NULL, NULL, HTTPC_PLAIN));
    assert_null(httpc_request(f->c, &(httpc_req){ .method = "GET" }, on_res, &f->slots[3]));
    assert_int_equal(httpc_pending(f->c), 0);
    finish(f);
    run(f);
    for (int i = 0; i < 4; i++)
        assert_int_equal(f->got[i].called, 0);
}

/* ---- cancel and free ---- */

static void cancel_both(uv_timer_t *t)
{
    fixture *f = t->data;
    httpc_cancel(f->calls[0]); /* in flight, waiting for an answer */
    httpc_cancel(f->calls[1]); /* waiting to retry */
    f->outstanding -= 2;
    assert_int_equal(httpc_pending(f->c), 0);
    finish(f);
}

/* A cancelled call never calls back, whether it is in flight or waiting for its next attempt, and leaves no
 * timer behind (the retry wait here is 5 s; the loop ends at once). */
static void cancelled_calls_never_call_back(void **state)
{
    fixture *f = *state;
    char url[64];
    url_of(url, sizeof url, f->hold_port, "/slow");
    client(f, 0, 0, 5000);
    req(f, 0, "GET", url, TOKEN, NULL, HTTPC_PLAIN);
    req(f, 1, "GET", "/status/502", TOKEN, NULL, HTTPC_RETRYING);
    assert_int_equal(httpc_pending(f->c), 2);
    uv_timer_start(&f->aux, cancel_both, 200, 0);
    run(f);
    assert_int_equal(f->got[0].called, 0);
    assert_int_equal(f->got[1].called, 0);
    assert_int_equal(f->nseen, 1); /* the 502's first attempt happened; no second one */
}

static void free_now(uv_timer_t *t) { finish(t->data); }

/* httpc_free with calls in flight, waiting to retry, or not yet started runs no callback, releases everything
 * (checked by the sanitizer build) and lets the loop finish. */
static void free_with_calls_in_flight(void **state)
{
    fixture *f = *state;
    char url[64];
    url_of(url, sizeof url, f->hold_port, "/slow");
    client(f, 0, 0, 5000);
    req(f, 0, "GET", url, TOKEN, NULL, HTTPC_RETRYING);
    req(f, 1, "GET", "/status/500", TOKEN, NULL, HTTPC_RETRYING);
    uv_timer_start(&f->aux, free_now, 200, 0);
    run(f);
    assert_int_equal(f->got[0].called, 0);
    assert_int_equal(f->got[1].called, 0);
}

/* Freed right after the requests were made, before the loop ever ran. */
static void free_before_loop_runs(void **state)
{
    fixture *f = *state;
    client(f, 0, 0, 10);
    req(f, 0, "POST", "/echo", TOKEN, "{}", HTTPC_RETRYING);
    req(f, 1, "GET", "/echo", TOKEN, NULL, HTTPC_PLAIN);
    finish(f);
    run(f);
    assert_int_equal(f->got[0].called, 0);
    assert_int_equal(f->got[1].called, 0);
}

static void chain_and_cancel(fixture *f, int i)
{
    if (i != 0)
        return;
    httpc_cancel(f->calls[1]); /* another call, still in flight */
    f->outstanding--;
    assert_non_null(req(f, 2, "POST", "/echo", TOKEN, "{\"second\":true}", HTTPC_PLAIN));
}

/* From inside a callback a new request can be made and another call cancelled. */
static void callback_may_request_and_cancel(void **state)
{
    fixture *f = *state;
    char url[64];
    url_of(url, sizeof url, f->hold_port, "/slow");
    client(f, 0, 0, 10);
    f->on_cb = chain_and_cancel;
    req(f, 0, "GET", "/echo", TOKEN, NULL, HTTPC_PLAIN);
    req(f, 1, "GET", url, TOKEN, NULL, HTTPC_PLAIN);
    run(f);
    assert_int_equal(f->got[0].called, 1);
    assert_int_equal(f->got[1].called, 0);
    assert_int_equal(f->got[2].called, 1);
    assert_string_equal(f->got[2].body, "{\"second\":true}");
}

static void free_inside(fixture *f, int i)
{
    (void)i;
    finish(f); /* httpc_free from inside the callback */
}

/* A callback may free the client: the other calls' callbacks then never run, and the loop finishes. */
static void callback_may_free_client(void **state)
{
    fixture *f = *state;
    char url[64];
    url_of(url, sizeof url, f->hold_port, "/slow");
    client(f, 0, 0, 10);
    f->on_cb = free_inside;
    req(f, 0, "GET", "/echo", TOKEN, NULL, HTTPC_PLAIN);
    req(f, 1, "GET", url, TOKEN, NULL, HTTPC_PLAIN);
    req(f, 2, "GET", "/status/500", TOKEN, NULL, HTTPC_RETRYING);
    run(f);
    assert_int_equal(f->got[0].called + f->got[2].called, 1); /* whichever came first freed the client */
    assert_int_equal(f->got[1].called, 0);
}

/* ---- streamed request bodies ---- */

/* Sets the watchdog for a test that moves tens of megabytes (sanitizer and valgrind builds are slow). */
static void long_watchdog(fixture *f) { uv_timer_start(&f->watchdog, on_watchdog, 60000, 0); }

static httpc_call *stream_req(fixture *f, int i, const char *method, const char *path, source *src,
                              httpc_mode mode, bool rewindable)
{
    char url[128];
    url_of(url, sizeof url, f->port, path);
    httpc_req r = { .method = method, .url = url, .bearer = TOKEN, .mode = mode, .body_read = source_read,
                    .body_rewind = rewindable ? source_rewind : NULL, .body_arg = src,
                    .body_size = (int64_t)src->size };
    f->slots[i] = (slot){ f, i };
    f->calls[i] = httpc_request(f->c, &r, on_res, &f->slots[i]);
    if (f->calls[i])
        f->outstanding++;
    return f->calls[i];
}

/* A 20 MB body streamed from a callback (POST) and a 1 MB one (PUT) reach the server whole, with
 * Content-Length (the server refuses chunked uploads) and the method named: checked by size and SHA-256. */
static void streamed_upload_arrives_whole(void **state)
{
    fixture *f = *state;
    source big = { .size = 20u << 20, .seed = 1 }, small = { .size = 1u << 20, .seed = 2 };
    char want_big[96], want_small[96];
    source_digest(&big, want_big, sizeof want_big);
    source_digest(&small, want_small, sizeof want_small);
    long_watchdog(f);
    client(f, 0, 0, 10);
    assert_non_null(stream_req(f, 0, "POST", "/sha", &big, HTTPC_PLAIN, true));
    assert_non_null(stream_req(f, 1, "PUT", "/sha", &small, HTTPC_PLAIN, false));
    run(f);
    assert_int_equal(f->got[0].error, HTTPC_OK);
    assert_int_equal(f->got[0].status, 200);
    assert_string_equal(f->got[0].body, want_big);
    assert_int_equal(f->got[1].status, 200);
    assert_string_equal(f->got[1].body, want_small);
    assert_int_equal(f->nseen, 2);
    for (int i = 0; i < 2; i++) {
        bool is_big = !strcmp(f->seen[i].body, want_big);
        assert_string_equal(f->seen[i].method, is_big ? "POST" : "PUT");
        assert_string_equal(f->seen[i].authorization, "Bearer " TOKEN);
        assert_string_equal(f->seen[i].content_type, "application/json");
    }
    assert_int_equal(big.rewinds, 0);
}

/* Each retry rewinds the body source and sends the whole body again. */
static void retry_rewinds_the_body_source(void **state)
{
    fixture *f = *state;
    source src = { .size = 300000, .seed = 3 };
    char want[96];
    source_digest(&src, want, sizeof want);
    f->flaky_failures = 2;
    client(f, 0, 0, 10);
    assert_non_null(stream_req(f, 0, "PUT", "/flaky", &src, HTTPC_RETRYING, true));
    run(f);
    assert_int_equal(f->got[0].status, 200);
    assert_int_equal(f->got[0].attempts, 3);
    assert_string_equal(f->got[0].body, "ok");
    assert_int_equal(src.rewinds, 2);
    assert_int_equal(f->nseen, 3);
    for (int i = 0; i < 3; i++)
        assert_string_equal(f->seen[i].body, want);
}

/* Without a rewind callback a streamed body is sent once, even in retrying mode. */
static void body_without_rewind_is_sent_once(void **state)
{
    fixture *f = *state;
    source src = { .size = 1000 };
    client(f, 0, 0, 10);
    assert_non_null(stream_req(f, 0, "POST", "/status/503", &src, HTTPC_RETRYING, false));
    run(f);
    assert_int_equal(f->got[0].status, 503);
    assert_int_equal(f->got[0].attempts, 1);
    assert_int_equal(f->nseen, 1);
}

/* A source that fails, or ends before the size it announced, fails the request with HTTPC_E_IO at once (no
 * retry, no server left waiting for the rest). */
static void failing_body_source_is_an_io_error(void **state)
{
    fixture *f = *state;
    source failing = { .size = 1000, .fail = true }, shorter = { .size = 100000, .stop_at = 50000 };
    client(f, 0, 0, 10);
    assert_non_null(stream_req(f, 0, "POST", "/sha", &failing, HTTPC_RETRYING, true));
    assert_non_null(stream_req(f, 1, "POST", "/sha", &shorter, HTTPC_RETRYING, true));
    run(f);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(f->got[i].error, HTTPC_E_IO);
        assert_int_equal(f->got[i].status, 0);
        assert_int_equal(f->got[i].attempts, 1);
        assert_true(f->got[i].at_ms < 1000);
        assert_null(strstr(f->got[i].errmsg, TOKEN));
    }
    assert_non_null(strstr(f->got[0].errmsg, "body source failed"));
    assert_non_null(strstr(f->got[1].errmsg, "ended before"));
    assert_int_equal(failing.rewinds + shorter.rewinds, 0);
}

/* A streamed body must have a known size and cannot come with an in-memory body too. */
static void streamed_body_needs_a_size(void **state)
{
    fixture *f = *state;
    source src = { .size = 10 };
    char url[64];
    url_of(url, sizeof url, f->port, "/sha");
    client(f, 0, 0, 10);
    httpc_req unknown = { .method = "POST", .url = url, .body_read = source_read, .body_arg = &src,
                          .body_size = -1 };
    httpc_req both = { .method = "POST", .url = url, .body = "{}", .body_len = 2, .body_read = source_read,
                       .body_arg = &src, .body_size = 10 };
    assert_null(httpc_request(f->c, &unknown, on_res, &f->slots[0]));
    assert_null(httpc_request(f->c, &both, on_res, &f->slots[1]));
    assert_int_equal(src.reads, 0);
    finish(f);
    run(f);
    assert_int_equal(f->got[0].called + f->got[1].called, 0);
}

/* ---- response bodies to files ---- */

static void scratch_dir(fixture *f)
{
    snprintf(f->dir, sizeof f->dir, "/tmp/test_httpc-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
}

static httpc_call *sink_req(fixture *f, int i, const char *target, const char *file, int64_t max_file,
                            httpc_mode mode)
{
    char url[256], path[128];
    if (!strncmp(target, "http", 4))
        snprintf(url, sizeof url, "%s", target);
    else
        url_of(url, sizeof url, f->port, target);
    snprintf(path, sizeof path, "%s/%s", f->dir, file);
    httpc_req r = { .method = "GET", .url = url, .bearer = TOKEN, .mode = mode, .sink_path = path,
                    .max_file = max_file, .follow_redirects = true };
    f->slots[i] = (slot){ f, i };
    f->calls[i] = httpc_request(f->c, &r, on_res, &f->slots[i]);
    if (f->calls[i])
        f->outstanding++;
    return f->calls[i];
}

static bool file_exists(fixture *f, const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", f->dir, name);
    return access(path, F_OK) == 0;
}

/* A 2xx body goes to the file (mode 0644, an old file truncated), not to memory: the callback gets "" and the
 * length, the file's SHA-256 is the body's, and the client's max_response does not apply to it. An empty body
 * still creates the file. */
static void download_to_file_matches_sha256(void **state)
{
    fixture *f = *state;
    const uint64_t n = 12u << 20;
    char want[DIGEST_SHA256_HEX_LEN + 1], have[DIGEST_SHA256_HEX_LEN + 1], path[128], qs[64];
    blob_sha(n, want);
    scratch_dir(f);
    snprintf(path, sizeof path, "%s/engine.zip", f->dir);
    assert_int_equal(fs_write_atomic(path, "old content, longer than nothing", 32, 0600), 0);
    long_watchdog(f);
    client(f, 0, 1000, 10);
    snprintf(qs, sizeof qs, "/blob?n=%llu", (unsigned long long)n);
    assert_non_null(sink_req(f, 0, qs, "engine.zip", 0, HTTPC_PLAIN));
    assert_non_null(sink_req(f, 1, "/blob?n=0", "empty", 0, HTTPC_PLAIN));
    run(f);
    assert_int_equal(f->got[0].error, HTTPC_OK);
    assert_int_equal(f->got[0].status, 200);
    assert_string_equal(f->got[0].body, "");
    assert_int_equal(f->got[0].body_len, n);
    assert_int_equal(digest_sha256_file_hex(path, have), 0);
    assert_string_equal(have, want);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    assert_int_equal(st.st_size, (off_t)n);
    assert_int_equal(f->got[1].status, 200);
    assert_int_equal(f->got[1].body_len, 0);
    assert_true(file_exists(f, "empty"));
}

/* A body over max_file fails with HTTPC_E_TOOBIG and leaves no partial file; a non-2xx answer's body comes
 * back in memory for the caller to quote, and no file is left for it. */
static void sink_is_bounded_and_only_for_success(void **state)
{
    fixture *f = *state;
    scratch_dir(f);
    client(f, 0, 0, 10);
    assert_non_null(sink_req(f, 0, "/blob?n=500000", "big", 100000, HTTPC_PLAIN));
    assert_non_null(sink_req(f, 1, "/status/404", "missing", 0, HTTPC_PLAIN));
    assert_non_null(sink_req(f, 2, "/blob?n=100000", "exact", 100000, HTTPC_PLAIN));
    run(f);
    assert_int_equal(f->got[0].error, HTTPC_E_TOOBIG);
    assert_non_null(strstr(f->got[0].errmsg, "max_file"));
    assert_false(file_exists(f, "big"));
    assert_int_equal(f->got[1].error, HTTPC_OK);
    assert_int_equal(f->got[1].status, 404);
    assert_string_equal(f->got[1].body, "{\"error\":\"as requested\"}");
    assert_false(file_exists(f, "missing"));
    assert_int_equal(f->got[2].status, 200);
    assert_int_equal(f->got[2].body_len, 100000);
    assert_true(file_exists(f, "exact"));
}

/* A file that cannot be created is an HTTPC_E_IO naming the path. */
static void unwritable_sink_is_an_io_error(void **state)
{
    fixture *f = *state;
    scratch_dir(f);
    client(f, 0, 0, 10);
    assert_non_null(sink_req(f, 0, "/blob?n=1000", "no-such-dir/file", 0, HTTPC_RETRYING));
    run(f);
    assert_int_equal(f->got[0].error, HTTPC_E_IO);
    assert_int_equal(f->got[0].attempts, 1);
    assert_non_null(strstr(f->got[0].errmsg, "no-such-dir/file"));
}

/* After 5xx answers the retry's 2xx body is what the file holds. */
static void sink_survives_retries(void **state)
{
    fixture *f = *state;
    char path[128], *data = NULL;
    size_t len = 0;
    scratch_dir(f);
    f->flaky_failures = 2;
    client(f, 0, 0, 10);
    assert_non_null(sink_req(f, 0, "/flaky", "out", 0, HTTPC_RETRYING));
    run(f);
    assert_int_equal(f->got[0].status, 200);
    assert_int_equal(f->got[0].attempts, 3);
    snprintf(path, sizeof path, "%s/out", f->dir);
    assert_int_equal(fs_read_file(path, 100, &data, &len), 0);
    assert_string_equal(data, "ok");
    free(data);
}

/* ---- a scripted server: exact bytes on the wire ---- */

typedef struct {
    uv_tcp_t   tcp;
    uv_write_t wr;
    fixture   *f;
    char       in[4096];
    size_t     len;
    int        k;         /* which connection this is */
    bool       replied;
} raw_conn;

static void raw_closed(uv_handle_t *h) { free(h->data); }

static void raw_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void raw_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void raw_written(uv_write_t *w, int status)
{
    raw_conn *c = w->data;
    if (!c->f->raw_keep || status < 0) {
        uv_close((uv_handle_t *)&c->tcp, raw_closed);
        return;
    }
    c->len = 0; /* the next request on this connection */
    c->replied = false;
    uv_read_start((uv_stream_t *)&c->tcp, raw_alloc, raw_read);
}

static void raw_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    raw_conn *c = h->data;
    *buf = uv_buf_init(c->in + c->len, (unsigned)(sizeof c->in - 1 - c->len));
}

/* Answers once the request's head and the body its Content-Length announces are in, then closes. */
static void raw_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    raw_conn *c = s->data;
    fixture *f = c->f;
    if (n < 0 || c->len + (size_t)n >= sizeof c->in - 1) {
        if (!c->replied)
            uv_close((uv_handle_t *)&c->tcp, raw_closed);
        return;
    }
    c->len += (size_t)n;
    c->in[c->len] = '\0';
    char *end = strstr(c->in, "\r\n\r\n");
    const char *cl = strcasestr(c->in, "\r\nContent-Length: ");
    size_t want = end ? (size_t)(end + 4 - c->in) + (cl && cl < end ? strtoul(cl + 18, NULL, 10) : 0) : SIZE_MAX;
    if (c->replied || c->len < want)
        return;
    c->replied = true;
    uv_read_stop(s);
    int r = f->raw_requests++;
    if (f->raw_drop_at == r + 1) {
        uv_close((uv_handle_t *)&c->tcp, raw_closed);
        return;
    }
    int k = f->raw_keep ? r : c->k; /* what is recorded and answered: by request when connections are kept */
    if (k < 12)
        snprintf(f->raw_req[k], sizeof f->raw_req[k], "%.1000s", c->in);
    const char *a = f->answer[k < f->nanswers ? k : f->nanswers - 1];
    uv_buf_t b = uv_buf_init((char *)a, (unsigned)strlen(a));
    c->wr.data = c;
    uv_write(&c->wr, s, &b, 1, raw_written);
}

static void raw_accept(uv_stream_t *server, int status)
{
    fixture *f = server->data;
    if (status < 0)
        return;
    raw_conn *c = calloc(1, sizeof *c);
    c->f = f;
    c->k = f->raw_conns++;
    uv_tcp_init(&f->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) == 0)
        uv_read_start((uv_stream_t *)&c->tcp, raw_alloc, raw_read);
    else
        uv_close((uv_handle_t *)&c->tcp, raw_closed);
}

/* Starts the scripted server with up to 4 answers (NULL-terminated; the last one repeats). */
static void raw_server(fixture *f, const char *first, ...)
{
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && f->nanswers < 4; a = va_arg(ap, const char *))
        f->answer[f->nanswers++] = a;
    va_end(ap);
    struct sockaddr_in sa;
    int len = sizeof sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    uv_tcp_init(&f->loop, &f->raw);
    f->raw.data = f;
    f->has_raw = true;
    assert_int_equal(uv_tcp_bind(&f->raw, (struct sockaddr *)&sa, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&f->raw, 16, raw_accept), 0);
    uv_tcp_getsockname(&f->raw, (struct sockaddr *)&sa, &len);
    f->raw_port = ntohs(sa.sin_port);
}

/* One request to the scripted server, run to its end. */
static void raw_request(fixture *f, const char *method, const char *path, const char *body, bool follow)
{
    char url[128];
    url_of(url, sizeof url, f->raw_port, path);
    httpc_req r = { .method = method, .url = url, .bearer = TOKEN, .body = body, .body_len = body ? strlen(body) : 0,
                    .follow_redirects = follow };
    client(f, 5000, 0, 10);
    f->slots[0] = (slot){ f, 0 };
    assert_non_null(f->calls[0] = httpc_request(f->c, &r, on_res, &f->slots[0]));
    f->outstanding++;
    run(f);
    assert_int_equal(f->got[0].called, 1);
}

/* Whether this process maps a file whose name contains needle. */
static bool self_maps(const char *needle)
{
    FILE *fp = fopen("/proc/self/maps", "r");
    char line[1024];
    bool found = false;
    while (fp && !found && fgets(line, sizeof line, fp))
        found = strstr(line, needle) != NULL;
    if (fp)
        fclose(fp);
    return found;
}

/* The request on the wire: request line with path and query, Host with the port, curl's Accept default, the JSON
 * content type, the bearer, Content-Length for a body, no "Connection: close" (HTTP/1.1 keeps the connection); and
 * no libcurl loaded for it. */
static void request_head_is_complete_and_needs_no_libcurl(void **state)
{
    fixture *f = *state;
    raw_server(f, "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", NULL);
    raw_request(f, "PUT", "/a/b?x=1&y=2", "{\"k\":1}", false);
    assert_int_equal(f->got[0].error, HTTPC_OK);
    assert_int_equal(f->got[0].status, 201);
    assert_string_equal(f->got[0].body, "ok");
    const char *h = f->raw_req[0];
    char host[64];
    snprintf(host, sizeof host, "\r\nHost: 127.0.0.1:%d\r\n", f->raw_port);
    assert_true(!strncmp(h, "PUT /a/b?x=1&y=2 HTTP/1.1\r\n", 27));
    assert_non_null(strstr(h, host));
    assert_non_null(strstr(h, "\r\nAccept: */*\r\n"));
    assert_non_null(strstr(h, "\r\nContent-Type: application/json\r\n"));
    assert_non_null(strstr(h, "\r\nAuthorization: Bearer " TOKEN "\r\n"));
    assert_non_null(strstr(h, "\r\nContent-Length: 7\r\n"));
    assert_non_null(strstr(h, "\r\nContent-Length: 7\r\n\r\n{\"k\":1}"));
    assert_null(strstr(h, "Connection:"));
    assert_false(self_maps("libcurl"));
}

/* ---- keep-alive ---- */

#define KEEP_OK "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

static source keep_src = { .size = 100, .seed = 3 };

/* The chain of keep_alive_serves_the_next_requests: each request starts in the previous one's callback. */
static void keep_next(fixture *f, int i)
{
    char url[128];
    url_of(url, sizeof url, f->raw_port, "/k");
    static const int conns_before[] = { 1, 1, 1, 2, 2 }; /* connections the server had seen after request i */
    assert_int_equal(f->got[i].error, HTTPC_OK);
    assert_string_equal(f->got[i].body, "ok");
    if (i >= 5)
        return;
    assert_int_equal(f->raw_conns, conns_before[i]);
    switch (i) {
    case 0: { /* a PUT with a body in memory may take the idle connection */
        httpc_req r = { .method = "PUT", .url = url, .body = "{}", .body_len = 2 };
        f->slots[1] = (slot){ f, 1 };
        f->calls[1] = httpc_request(f->c, &r, on_res, &f->slots[1]);
        break;
    }
    case 1: /* a GET too */
    case 3: { /* and after the POST, the GET takes the connection that went idle last: the POST's */
        httpc_req r = { .method = "GET", .url = url };
        f->slots[i + 1] = (slot){ f, i + 1 };
        f->calls[i + 1] = httpc_request(f->c, &r, on_res, &f->slots[i + 1]);
        break;
    }
    case 2: { /* a POST may not (it must not be sent twice): a new connection, kept afterwards */
        httpc_req r = { .method = "POST", .url = url, .body = "{}", .body_len = 2 };
        f->slots[3] = (slot){ f, 3 };
        f->calls[3] = httpc_request(f->c, &r, on_res, &f->slots[3]);
        break;
    }
    case 4: { /* nor a streamed body (it cannot be sent twice either) */
        httpc_req r = { .method = "PUT", .url = url, .body_read = source_read, .body_arg = &keep_src,
                        .body_size = (int64_t)keep_src.size };
        f->slots[5] = (slot){ f, 5 };
        f->calls[5] = httpc_request(f->c, &r, on_res, &f->slots[5]);
        break;
    }
    }
    assert_non_null(f->calls[i + 1]);
    f->outstanding++;
}

/* Connections the server keeps serve the next requests: GET, PUT, GET on one; a POST on a new one (which then
 * serves the next GET); a streamed upload on a third. Every request arrives whole, none says "Connection: close". */
static void keep_alive_serves_the_next_requests(void **state)
{
    fixture *f = *state;
    f->raw_keep = true;
    raw_server(f, KEEP_OK, NULL);
    client(f, 5000, 0, 10);
    f->on_cb = keep_next;
    char url[128];
    url_of(url, sizeof url, f->raw_port, "/k");
    httpc_req r = { .method = "GET", .url = url };
    f->slots[0] = (slot){ f, 0 };
    assert_non_null(f->calls[0] = httpc_request(f->c, &r, on_res, &f->slots[0]));
    f->outstanding++;
    run(f);
    assert_int_equal(f->got[5].called, 1);
    assert_int_equal(f->got[5].error, HTTPC_OK);
    assert_int_equal(f->raw_conns, 3);
    assert_int_equal(f->raw_requests, 6);
    static const char *const lines[] = { "GET /k ", "PUT /k ", "GET /k ", "POST /k ", "GET /k ", "PUT /k " };
    for (int i = 0; i < 6; i++) {
        assert_int_equal(strncmp(f->raw_req[i], lines[i], strlen(lines[i])), 0);
        assert_null(strstr(f->raw_req[i], "Connection:"));
        assert_int_equal(f->got[i].attempts, 1);
    }
    assert_non_null(strstr(f->raw_req[1], "\r\n\r\n{}"));
    assert_int_equal(keep_src.pos, keep_src.size);
}

/* Two GETs one after the other (the second from an aux timer after wait_ms): how many connections they took. */
static void on_second_get(uv_timer_t *t)
{
    fixture *f = t->data;
    char url[128];
    url_of(url, sizeof url, f->raw_port, "/2");
    httpc_req r = { .method = "GET", .url = url };
    f->slots[1] = (slot){ f, 1 };
    assert_non_null(f->calls[1] = httpc_request(f->c, &r, on_res, &f->slots[1]));
    f->outstanding++;
}

static void start_second_get_later(fixture *f, int i)
{
    if (i == 0) {
        f->outstanding++; /* the second GET is still to come: do not finish yet */
        uv_timer_start(&f->aux, on_second_get, f->aux_ms, 0);
    } else if (i == 1) {
        f->outstanding--;
    }
}

static int two_gets(fixture *f, const char *answer, bool keep, httpc_opts *o, uint64_t wait_ms)
{
    f->raw_keep = keep;
    raw_server(f, answer, NULL);
    o->total_timeout_ms = 5000;
    o->retry_base_ms = 10;
    f->c = httpc_new(&f->loop, o);
    assert_non_null(f->c);
    f->aux_ms = wait_ms;
    f->on_cb = start_second_get_later;
    char url[128];
    url_of(url, sizeof url, f->raw_port, "/1");
    httpc_req r = { .method = "GET", .url = url };
    f->slots[0] = (slot){ f, 0 };
    assert_non_null(f->calls[0] = httpc_request(f->c, &r, on_res, &f->slots[0]));
    f->outstanding++;
    run(f);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(f->got[i].called, 1);
        assert_int_equal(f->got[i].error, HTTPC_OK);
        assert_int_equal(f->got[i].attempts, 1);
    }
    return f->raw_conns;
}

/* A response that ends its connection leaves nothing to keep: "Connection: close", HTTP/1.0, a body that ends
 * with the connection, and bytes after the response (the connection is not in a known state); nor does a server
 * that closes the connection after answering (the idle connection sees the end and goes). Each second GET dials. */
static void connections_a_response_ends_are_not_kept(void **state)
{
    static const struct {
        const char *answer;
        bool keep;
    } cases[] = {
        { "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", true },
        { "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 2\r\n\r\nok", true },
        { "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", true },
        { "HTTP/1.1 200 OK\r\n\r\nok", false },
        { "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n", true },
        { KEEP_OK, false },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (i > 0) { /* a fresh fixture for each case; cmocka tears the last one down */
            teardown(state);
            setup(state);
        }
        fixture *f = *state;
        httpc_opts o = { 0 };
        assert_int_equal(two_gets(f, cases[i].answer, cases[i].keep, &o, 30), 2);
        assert_string_equal(f->got[1].body, "ok");
    }
}

/* A kept connection serves a later request, but not past the client's idle time. */
static void idle_connections_close_after_the_idle_time(void **state)
{
    fixture *f = *state;
    httpc_opts o = { .idle_ms = 60 };
    assert_int_equal(two_gets(f, KEEP_OK, true, &o, 10), 1);
    teardown(state);
    setup(state);
    f = *state;
    assert_int_equal(two_gets(f, KEEP_OK, true, &o, 200), 2);
}

/* A kept connection that the server closes without answering the request it was given (it closed it for idleness
 * as the request went out): the request goes again on a new connection, inside the same attempt. */
static void a_kept_connection_that_dies_unanswered_is_redialed(void **state)
{
    fixture *f = *state;
    httpc_opts o = { 0 };
    f->raw_drop_at = 2;
    assert_int_equal(two_gets(f, KEEP_OK, true, &o, 10), 2);
    assert_int_equal(f->raw_requests, 3);
    assert_string_equal(f->got[1].body, "ok");
}

/* One scripted answer to a GET: the outcome must be want_error with want_status and want_body, or (for an error)
 * an errmsg that contains want_body and never the token. */
static void answer_gives(fixture *f, const char *answer, int want_error, long want_status, const char *want_body)
{
    raw_server(f, answer, NULL);
    raw_request(f, "GET", "/", NULL, false);
    assert_int_equal(f->got[0].error, want_error);
    assert_int_equal(f->got[0].status, want_status);
    if (want_error == HTTPC_OK) {
        assert_string_equal(f->got[0].body, want_body);
    } else {
        assert_non_null(strstr(f->got[0].errmsg, want_body));
        assert_null(strstr(f->got[0].errmsg, TOKEN));
    }
}

/* A chunked body is decoded, extensions and trailers skipped. */
static void chunked_body_is_decoded(void **state)
{
    answer_gives(*state,
                 "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n"
                 "X-Trailer: y\r\n\r\n",
                 HTTPC_OK, 200, "hello world");
}

/* An interim 100 is skipped; header names are matched without case. */
static void interim_response_is_skipped(void **state)
{
    answer_gives(*state, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\nok", HTTPC_OK,
                 202, "ok");
}

/* A body without Content-Length or chunking ends with the connection. */
static void body_without_length_ends_with_the_connection(void **state)
{
    answer_gives(*state, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end", HTTPC_OK, 200,
                 "until the end");
}

/* Broken answers are transport errors that say what was wrong: not HTTP, a body cut short, a malformed chunk. */
static void answer_that_is_not_http_is_a_transport_error(void **state)
{
    answer_gives(*state, "SSH-2.0-OpenSSH_9.2\r\n\r\n", HTTPC_E_TRANSPORT, 0, "not an HTTP/1.x response");
}

static void body_cut_short_is_a_transport_error(void **state)
{
    answer_gives(*state, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", HTTPC_E_TRANSPORT, 0,
                 "before the whole response arrived");
}

static void malformed_chunk_is_a_transport_error(void **state)
{
    answer_gives(*state, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
                 HTTPC_E_TRANSPORT, 0, "chunked body is malformed");
}

/* A 303 to a relative Location turns a POST into a GET without body; the same origin still gets the token. */
static void see_other_turns_post_into_get(void **state)
{
    fixture *f = *state;
    raw_server(f, "HTTP/1.1 303 See Other\r\nLocation: second?n=2\r\nContent-Length: 5\r\n\r\nmoved",
               "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone", NULL);
    raw_request(f, "POST", "/dir/first", "{\"a\":1}", true);
    assert_int_equal(f->got[0].error, HTTPC_OK);
    assert_int_equal(f->got[0].status, 200);
    assert_string_equal(f->got[0].body, "done");
    assert_int_equal(f->raw_conns, 2);
    assert_true(!strncmp(f->raw_req[1], "GET /dir/second?n=2 HTTP/1.1\r\n", 30));
    assert_null(strstr(f->raw_req[1], "Content-Length"));
    assert_non_null(strstr(f->raw_req[1], "Authorization: Bearer " TOKEN));
}

/* A redirect loop ends after 10 redirects with an error that says so. */
static void redirect_loop_is_cut_after_ten(void **state)
{
    fixture *f = *state;
    raw_server(f, "HTTP/1.1 302 Found\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n", NULL);
    raw_request(f, "GET", "/start", NULL, true);
    assert_int_equal(f->got[0].error, HTTPC_E_TRANSPORT);
    assert_non_null(strstr(f->got[0].errmsg, "too many redirects"));
    assert_int_equal(f->raw_conns, 11);
}

/* Without follow_redirects a 302 is the answer itself. */
static void redirect_is_the_answer_unless_followed(void **state)
{
    answer_gives(*state, "HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 5\r\n\r\nmoved", HTTPC_OK,
                 302, "moved");
}

/* A redirect status without a Location cannot be followed: it is the answer, body included. */
static void redirect_without_location_is_the_answer(void **state)
{
    fixture *f = *state;
    raw_server(f, "HTTP/1.1 301 Moved Permanently\r\nContent-Length: 7\r\n\r\nnowhere", NULL);
    raw_request(f, "GET", "/old", NULL, true);
    assert_int_equal(f->got[0].error, HTTPC_OK);
    assert_int_equal(f->got[0].status, 301);
    assert_string_equal(f->got[0].body, "nowhere");
    assert_int_equal(f->raw_conns, 1);
}

/* A host name is resolved, and every address it has is tried: "localhost" may answer ::1 first, where nothing
 * listens. The lookup's thread ends with it: the process is back to one thread (libuv's pool would keep four). */
static void host_names_are_resolved(void **state)
{
    fixture *f = *state;
    char url[128];
    snprintf(url, sizeof url, "http://localhost:%d/echo", f->port);
    client(f, 5000, 0, 10);
    assert_non_null(req(f, 0, "GET", url, NULL, NULL, HTTPC_PLAIN));
    run(f);
    assert_int_equal(f->got[0].error, HTTPC_OK);
    assert_int_equal(f->got[0].status, 200);
    for (int i = 0; i < 100 && self_threads() != 1; i++)
        usleep(10000); /* the thread may still be on its way out after handing over the answer */
    assert_int_equal(self_threads(), 1);
}

/* follow_redirects follows a 302 to another origin and stores the target's body; the bearer token is not sent
 * there. */
static void redirect_is_followed_without_the_token(void **state)
{
    fixture *f = *state;
    char to[128], from[64], want[DIGEST_SHA256_HEX_LEN + 1], have[DIGEST_SHA256_HEX_LEN + 1], path[128];
    scratch_dir(f);
    url_of(to, sizeof to, f->port, "/blob?n=5000");
    char answer[256];
    snprintf(answer, sizeof answer, "HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n", to);
    raw_server(f, answer, NULL);
    url_of(from, sizeof from, f->raw_port, "/releases/download/tf.zip");
    client(f, 0, 0, 10);
    assert_non_null(sink_req(f, 0, from, "dl", 0, HTTPC_PLAIN));
    run(f);
    assert_int_equal(f->got[0].error, HTTPC_OK);
    assert_int_equal(f->got[0].status, 200);
    assert_int_equal(f->got[0].body_len, 5000);
    blob_sha(5000, want);
    snprintf(path, sizeof path, "%s/dl", f->dir);
    assert_int_equal(digest_sha256_file_hex(path, have), 0);
    assert_string_equal(have, want);
    assert_int_equal(f->nseen, 1);
    assert_string_equal(f->seen[0].path, "/blob");
    assert_null(f->seen[0].authorization);
}

/* With http_proxy set, http goes through libcurl (loaded for it) and the proxy: the proxy sees the absolute URL.
 * Runs last: it leaves libcurl loaded in this process, which request_head_is_complete_and_needs_no_libcurl checks
 * is not. */
static void http_proxy_sends_http_through_curl(void **state)
{
    fixture *f = *state;
    char proxy[64], url[128];
    raw_server(f, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nvia proxy", NULL);
    url_of(proxy, sizeof proxy, f->raw_port, "");
    assert_int_equal(setenv("http_proxy", proxy, 1), 0);
    client(f, 5000, 0, 10);
    snprintf(url, sizeof url, "http://192.0.2.1:%d/over/there", f->port); /* TEST-NET: only the proxy can answer */
    assert_non_null(req(f, 0, "GET", url, NULL, NULL, HTTPC_PLAIN));
    run(f); /* curl reads http_proxy for each transfer */
    assert_int_equal(unsetenv("http_proxy"), 0);
    assert_int_equal(f->got[0].error, HTTPC_OK);
    assert_string_equal(f->got[0].body, "via proxy");
    assert_true(strstr(f->raw_req[0], "GET http://192.0.2.1:") == f->raw_req[0]);
    assert_true(self_maps("libcurl"));
}

int main(void)
{
    lws_set_log_level(LLL_ERR, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(round_trip_each_method, setup, teardown),
        cmocka_unit_test_setup_teardown(bodies_go_with_any_method, setup, teardown),
        cmocka_unit_test_setup_teardown(concurrent_requests_complete, setup, teardown),
        cmocka_unit_test_setup_teardown(client_error_is_not_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(server_error_is_retried_four_times, setup, teardown),
        cmocka_unit_test_setup_teardown(recovers_after_two_server_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(plain_mode_makes_one_attempt, setup, teardown),
        cmocka_unit_test_setup_teardown(refused_connection_is_transport_error, setup, teardown),
        cmocka_unit_test_setup_teardown(unanswered_request_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(oversized_response_is_too_big, setup, teardown),
        cmocka_unit_test_setup_teardown(malformed_requests_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(cancelled_calls_never_call_back, setup, teardown),
        cmocka_unit_test_setup_teardown(free_with_calls_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(free_before_loop_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(callback_may_request_and_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(callback_may_free_client, setup, teardown),
        cmocka_unit_test_setup_teardown(streamed_upload_arrives_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(retry_rewinds_the_body_source, setup, teardown),
        cmocka_unit_test_setup_teardown(body_without_rewind_is_sent_once, setup, teardown),
        cmocka_unit_test_setup_teardown(failing_body_source_is_an_io_error, setup, teardown),
        cmocka_unit_test_setup_teardown(streamed_body_needs_a_size, setup, teardown),
        cmocka_unit_test_setup_teardown(download_to_file_matches_sha256, setup, teardown),
        cmocka_unit_test_setup_teardown(sink_is_bounded_and_only_for_success, setup, teardown),
        cmocka_unit_test_setup_teardown(unwritable_sink_is_an_io_error, setup, teardown),
        cmocka_unit_test_setup_teardown(sink_survives_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(redirect_is_followed_without_the_token, setup, teardown),
        cmocka_unit_test_setup_teardown(request_head_is_complete_and_needs_no_libcurl, setup, teardown),
        cmocka_unit_test_setup_teardown(keep_alive_serves_the_next_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(connections_a_response_ends_are_not_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(idle_connections_close_after_the_idle_time, setup, teardown),
        cmocka_unit_test_setup_teardown(a_kept_connection_that_dies_unanswered_is_redialed, setup, teardown),
        cmocka_unit_test_setup_teardown(chunked_body_is_decoded, setup, teardown),
        cmocka_unit_test_setup_teardown(interim_response_is_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(body_without_length_ends_with_the_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(answer_that_is_not_http_is_a_transport_error, setup, teardown),
        cmocka_unit_test_setup_teardown(body_cut_short_is_a_transport_error, setup, teardown),
        cmocka_unit_test_setup_teardown(malformed_chunk_is_a_transport_error, setup, teardown),
        cmocka_unit_test_setup_teardown(redirect_is_the_answer_unless_followed, setup, teardown),
        cmocka_unit_test_setup_teardown(redirect_without_location_is_the_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(see_other_turns_post_into_get, setup, teardown),
        cmocka_unit_test_setup_teardown(redirect_loop_is_cut_after_ten, setup, teardown),
        cmocka_unit_test_setup_teardown(host_names_are_resolved, setup, teardown),
        cmocka_unit_test_setup_teardown(http_proxy_sends_http_through_curl, setup, teardown), /* last: see there */
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
