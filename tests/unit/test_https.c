/* test_https.c — the HTTP/1.1 server on a real libuv loop, real loopback sockets, ephemeral ports.
 *
 * The server's loop runs on a thread of its own; the test body is the client, with plain blocking sockets (a
 * receive timeout on each, so nothing can hang), and asserts as it goes. finish() wakes the loop with a uv_async,
 * which frees the server(s); the loop must then run to completion on its own. What the handler saw is recorded
 * on the loop thread and checked once that thread has been joined. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include <uv.h>

#include "iac/https.h"

#define MAX_SEEN 8

/* What the handler saw of one request (copies). */
typedef struct {
    char  *method, *path, *query, *authorization, *content_type, *body, *peer;
    size_t body_len;
    int    server; /* which server */
} seen_req;

typedef struct fixture fixture;

/* A handler's argument: the fixture and which of its servers. */
typedef struct {
    fixture *f;
    int      i;
} srv_arg;

struct fixture {
    uv_loop_t     loop;
    uv_async_t    done;
    pthread_t     thread;
    bool          started, finished;
    https_server *srv[2];
    int           port[2];
    srv_arg       args[2];
    seen_req      seen[MAX_SEEN];
    int           nseen; /* every request the handlers saw, recorded or not */
};

/* Deterministic, position-dependent filler, so a misplaced or dropped piece shows. */
static void fill_pattern(char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (char)('a' + (i * 7 + i / 251 + seed) % 26);
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* The test handler (on the loop thread): records the request and answers by path. */
static void handler(const https_request *req, https_response *res, void *arg)
{
    srv_arg *a = arg;
    fixture *f = a->f;
    if (f->nseen < MAX_SEEN) {
        seen_req *s = &f->seen[f->nseen];
        s->method = strdup(req->method);
        s->path = strdup(req->path);
        s->query = strdup(req->query);
        s->authorization = dup_or_null(req->authorization);
        s->content_type = dup_or_null(req->content_type);
        s->body = malloc(req->body_len + 1);
        memcpy(s->body, req->body, req->body_len + 1);
        s->body_len = req->body_len;
        s->peer = strdup(req->peer);
        s->server = a->i;
    }
    f->nseen++;
    if (!strcmp(req->path, "/echo")) {
        strbuf_append(&res->body, req->body, req->body_len);
    } else if (!strcmp(req->path, "/text")) {
        res->status = 201;
        res->content_type = "text/plain";
        strbuf_puts(&res->body, "created");
    } else if (!strcmp(req->path, "/quit")) {
        https_free(f->srv[a->i]); /* from inside the handler */
        f->srv[a->i] = NULL;
        strbuf_puts(&res->body, "bye");
    } else if (!strcmp(req->path, "/big")) {
        char v[16];
        size_t n = (https_query_param(req->query, "mb", v, sizeof v) == 0 ? strtoul(v, NULL, 10) : 2) << 20;
        char *p = malloc(n);
        fill_pattern(p, n, 3);
        strbuf_append(&res->body, p, n);
        free(p);
    } else if (!strcmp(req->path, "/bad-status")) {
        res->status = 42;
    } else if (!strcmp(req->path, "/bad-ctype")) {
        res->content_type = "text/plain\r\nX-Injected: 1";
    } else {
        https_reply_error(res, 404, "no such path");
    }
}

static void seen_free(seen_req *s)
{
    free(s->method);
    free(s->path);
    free(s->query);
    free(s->authorization);
    free(s->content_type);
    free(s->body);
    free(s->peer);
}

/* ---- the server side ---- */

static void on_done(uv_async_t *a)
{
    fixture *f = a->data;
    for (int i = 0; i < 2; i++)
        https_free(f->srv[i]);
    uv_close((uv_handle_t *)a, NULL);
}

static void *loop_main(void *arg)
{
    fixture *f = arg;
    uv_run(&f->loop, UV_RUN_DEFAULT);
    return NULL;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(uv_async_init(&f->loop, &f->done, on_done), 0);
    f->done.data = f;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (!f->finished) { /* a failed test: stop the loop all the same */
        uv_async_send(&f->done);
        if (f->started)
            pthread_join(f->thread, NULL);
        else
            uv_run(&f->loop, UV_RUN_DEFAULT);
        uv_loop_close(&f->loop);
    }
    for (int i = 0; i < f->nseen && i < MAX_SEEN; i++)
        seen_free(&f->seen[i]);
    free(f);
    return 0;
}

static https_server *listen_on(fixture *f, int i, const char *host, size_t max_body)
{
    char err[256];
    f->args[i] = (srv_arg){ f, i };
    https_opts o = { .host = host, .port = 0, .max_body = max_body, .handler = handler, .arg = &f->args[i] };
    f->srv[i] = https_listen(&f->loop, &o, err, sizeof err);
    if (!f->srv[i])
        fprintf(stderr, "https_listen: %s\n", err);
    assert_non_null(f->srv[i]);
    f->port[i] = https_port(f->srv[i]);
    assert_true(f->port[i] > 0);
    return f->srv[i];
}

static void start_server(fixture *f, int i, size_t max_body) { listen_on(f, i, "127.0.0.1", max_body); }

/* Starts the loop thread. */
static void serve(fixture *f)
{
    assert_int_equal(pthread_create(&f->thread, NULL, loop_main, f), 0);
    f->started = true;
}

/* Frees the servers on the loop and waits for the loop to finish with nothing left on it. */
static void finish(fixture *f)
{
    uv_async_send(&f->done);
    pthread_join(f->thread, NULL);
    f->finished = true;
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

/* ---- the client side: blocking sockets ---- */

typedef struct {
    int    fd;
    char   buf[32768];
    size_t len;
} client;

typedef struct {
    int       status;
    char      ctype[128], connection[32];
    long long clen; /* -1 when absent */
    strbuf    body;
} reply;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Connects to addr:port (IPv4 or IPv6); rcvbuf > 0 shrinks the receive buffer first. */
static bool cli_open_at(client *c, const char *addr, int port, int rcvbuf)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        sl = sizeof *a4;
    } else if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        sl = sizeof *a6;
    } else {
        return false;
    }
    c->len = 0;
    c->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return false;
    struct timeval tv = { .tv_sec = 5 };
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (rcvbuf > 0)
        setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (connect(c->fd, (struct sockaddr *)&ss, sl) < 0) {
        close(c->fd);
        c->fd = -1;
        return false;
    }
    return true;
}

static bool cli_open(client *c, int port) { return cli_open_at(c, "127.0.0.1", port, 0); }

static void cli_close(client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static bool cli_send(client *c, const void *p, size_t n)
{
    const char *q = p;
    while (n) {
        ssize_t w = send(c->fd, q, n, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        q += w;
        n -= (size_t)w;
    }
    return true;
}

static bool cli_puts(client *c, const char *s) { return cli_send(c, s, strlen(s)); }

static ssize_t cli_fill(client *c)
{
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    if (n > 0)
        c->len += (size_t)n;
    return n;
}

static void copy_value(char *dst, size_t n, const char *v, const char *eol)
{
    while (v < eol && *v == ' ')
        v++;
    snprintf(dst, n, "%.*s", (int)(eol - v), v);
}

/* Reads one response: the head, and the body unless head_only (or 1xx, 204, 304). 0, or -1 if the connection
 * ended or timed out first, or the response is not one. Bytes after it stay buffered for the next. */
static int cli_reply(client *c, reply *r, bool head_only)
{
    strbuf_free(&r->body);
    memset(r, 0, sizeof *r);
    r->clen = -1;
    char *end;
    while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
        if (c->len == sizeof c->buf || cli_fill(c) <= 0)
            return -1;
    size_t hlen = (size_t)(end + 4 - c->buf);
    *end = '\0';
    if (sscanf(c->buf, "HTTP/1.1 %d ", &r->status) != 1)
        return -1;
    for (char *line = strstr(c->buf, "\r\n"); line && line < end;) {
        line += 2;
        char *eol = strstr(line, "\r\n");
        if (!eol)
            eol = end;
        if (!strncasecmp(line, "content-type:", 13))
            copy_value(r->ctype, sizeof r->ctype, line + 13, eol);
        else if (!strncasecmp(line, "connection:", 11))
            copy_value(r->connection, sizeof r->connection, line + 11, eol);
        else if (!strncasecmp(line, "content-length:", 15))
            r->clen = strtoll(line + 15, NULL, 10);
        line = eol;
    }
    memmove(c->buf, c->buf + hlen, c->len - hlen);
    c->len -= hlen;
    if (head_only || r->status < 200 || r->status == 204 || r->status == 304)
        return 0;
    if (r->clen < 0)
        return -1;
    size_t want = (size_t)r->clen, n = c->len < want ? c->len : want;
    strbuf_append(&r->body, c->buf, n);
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
    char tmp[65536];
    while (r->body.len < want) {
        size_t ask = want - r->body.len < sizeof tmp ? want - r->body.len : sizeof tmp;
        ssize_t got = recv(c->fd, tmp, ask, 0);
        if (got <= 0)
            return -1;
        strbuf_append(&r->body, tmp, (size_t)got);
    }
    return 0;
}

/* Whether the server has hung up: the next read finds the end (or a reset), not data and not the timeout. */
static bool cli_closed(client *c)
{
    if (c->len)
        return false;
    char b[256];
    ssize_t n = recv(c->fd, b, sizeof b, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

/* One request on a fresh connection and its response; the connection stays open in c. */
static void exchange(client *c, int port, const char *request, reply *r)
{
    assert_true(cli_open(c, port));
    assert_true(cli_puts(c, request));
    assert_int_equal(cli_reply(c, r, false), 0);
}

/* ---- requests and what the handler sees ---- */

/* A GET reaches the handler with its method, percent-decoded path, raw query (decodable with https_query_param),
 * Authorization and Content-Type headers, an empty body and the peer address; the default answer is 200 with
 * application/json. */
static void get_reaches_the_handler_with_its_fields(void **state)
{
    fixture *f = *state;
    start_server(f, 0, 0);
    serve(f);
    client c;
    reply r = { 0 };
    exchange(&c, f->port[0],
             "GET /e%63ho?name=a%20b&x=1%2B2&sp=c+d&amp=%26%3D&flag HTTP/1.1\r\nHost: x\r\n"
             "Authorization: Bearer apt_secret\r\ncontent-type:  application/json \r\n\r\n",
             &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.ctype, "application/json");
    assert_int_equal(r.clen, 0);
    cli_close(&c);
    strbuf_free(&r.body);
    finish(f);

    assert_int_equal(f->nseen, 1);
    seen_req *s = &f->seen[0];
    assert_string_equal(s->method, "GET");
    assert_string_equal(s->path, "/echo");
    assert_string_equal(s->query, "name=a%20b&x=1%2B2&sp=c+d&amp=%26%3D&flag");
    assert_string_equal(s->authorization, "Bearer apt_secret");
    assert_string_equal(s->content_type, "application/json");
    assert_string_equal(s->peer, "127.0.0.1");
    assert_int_equal(s->body_len, 0);
    assert_string_equal(s->body, "");
    char v[64];
    assert_int_equal(https_query_param(s->query, "name", v, sizeof v), 0);
    assert_string_equal(v, "a b");
    assert_int_equal(https_query_param(s->query, "x", v, sizeof v), 0);
    assert_string_equal(v, "1+2");
    assert_int_equal(https_query_param(s->query, "sp", v, sizeof v), 0);
    assert_string_equal(v, "c d");
    assert_int_equal(https_query_param(s->query, "amp", v, sizeof v), 0);
    assert_string_equal(v, "&=");
    assert_int_equal(https_query_param(s->query, "flag", v, sizeof v), 0);
    assert_string_equal(v, "");
}

#define BODY_300K (300u * 1024)

/* A 300 KiB POST body reaches the handler byte for byte and comes back intact; a 2 MiB response arrives whole;
 * the status and content type a handler sets reach the client, and its own 404 goes out as a JSON error. */
static void bodies_and_big_responses_arrive_intact(void **state)
{
    fixture *f = *state;
    start_server(f, 0, 0);
    serve(f);
    char *b = malloc(BODY_300K);
    fill_pattern(b, BODY_300K, 1);
    char head[128];
    snprintf(head, sizeof head, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %u\r\n\r\n", BODY_300K);
    client c;
    reply r = { 0 };
    assert_true(cli_open(&c, f->port[0]));
    assert_true(cli_puts(&c, head) && cli_send(&c, b, BODY_300K));
    assert_int_equal(cli_reply(&c, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, BODY_300K);
    assert_memory_equal(r.body.data, b, BODY_300K);

    assert_true(cli_puts(&c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert_int_equal(cli_reply(&c, &r, false), 0);
    size_t n = 2u << 20;
    char *want = malloc(n);
    fill_pattern(want, n, 3);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.ctype, "application/json");
    assert_int_equal(r.body.len, n);
    assert_memory_equal(r.body.data, want, n);
    free(want);

    assert_true(cli_puts(&c, "GET /text HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert_int_equal(cli_reply(&c, &r, false), 0);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.ctype, "text/plain");
    assert_string_equal(r.body.data, "created");

    assert_true(cli_puts(&c, "DELETE /missing HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert_int_equal(cli_reply(&c, &r, false), 0);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body.data, "{\"error\":\"no such path\"}");
    cli_close(&c);
    strbuf_free(&r.body);
    finish(f);

    assert_int_equal(f->nseen, 4);
    assert_int_equal(f->seen[0].body_len, BODY_300K);
    assert_memory_equal(f->seen[0].body, b, BODY_300K);
    assert_int_equal(f->seen[0].body[BODY_300K], '\0');
    assert_string_equal(f->seen[3].method, "DELETE");
    free(b);
}

/* Two requests on one keep-alive connection each get their own answer, and the handler sees each body alone:
 * nothing of the first request is left over for the second. */
static void keepalive_connection_serves_one_request_after_another(void **state)
{
    fixture *f = *state;
    start_server(f, 0, 0);
    serve(f);
    client c;
    reply r = { 0 };
    exchange(&c, f->port[0], "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nfirst-body", &r);
    assert_string_equal(r.body.data, "first-body");
    assert_string_equal(r.connection, "");
    assert_true(cli_puts(&c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n2nd"));
    assert_int_equal(cli_reply(&c, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "2nd");
    cli_close(&c);
    strbuf_free(&r.body);
    finish(f);

    assert_int_equal(f->nseen, 2);
    assert_int_equal(f->seen[1].body_len, 3);
    assert_string_equal(f->seen[1].body, "2nd");
}

/* Requests sent back to back in one write are all answered, in the order they were sent. */
static void pipelined_requests_are_answered_in_order(void **state)
{
    fixture *f = *state;
    start_server(f, 0, 0);
    serve(f);
    client c;
    reply r = { 0 };
    assert_true(cli_open(&c, f->port[0]));
    assert_true(cli_puts(&c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\none"
                             "GET /text HTTP/1.1\r\nHost: x\r\n\r\n"
                             "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ntwo\r\n0\r\n\r\n"
                             "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert_int_equal(cli_reply(&c, &r, false), 0);
    assert_string_equal(r.body.data, "one");
    assert_int_equal(cli_reply(&c, &r, false), 0);
    assert_int_equal(r.status, 201);
    assert_int_equal(cli_reply(&c, &r, false), 0);
    assert_string_equal(r.body.data, "two");
    assert_int_equal(cli_reply(&c, &r, false), 0);
    assert_int_equal(r.status, 404);
    cli_close(&c);
    strbuf_free(&r.body);
    finish(f);
    assert_int_equal(f->nseen, 4);
}

/* A chunked body — with chunk extensions and a trailer, arriving in pieces — reaches the handler reassembled. */
static void chunked_body_is_reassembled(void **state)
{
    fixture *f = *state;
    start_server(f, 0, 0);
    serve(f);
    static const char *const pieces[] = {
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n4;ext=1\r\nWi",
        "ki\r\n5\r\npedia\r",
        "\nE\r\n in\r\n\r\nchunks.\r\n0",
        "\r\nX-Trailer: y\r\n",
        "\r\n",
    };
    client c;
    reply r = { 0 };
    assert_true(cli_open(&c, f->port[0]));
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        assert_true(cli_puts(&c, pieces[i]));
        usleep(10000); /* each piece its own read on the server */
    }
    assert_int_equal(cli_reply(&c, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "Wikipedia in\r\n\r\nchunks.");
    cli_close(&c);
    strbuf_free(&r.body);
    finish(f);
    assert_int_equal(f->nseen, 1);
    assert_int_equal(f->seen[0].body_len, 23);
}

/* "Expect: 100-continue" (what libcurl sends before a larger body) is answered with 100 Continue at once, and
 * the body sent after it gets the real answer. */
static void expect_continue_gets_100_then_the_answer(void **state)
{
    fixture *f = *state;
    start_server(f, 0, 0);
    serve(f);
    client c;
    reply r = { 0 };
    assert_true(cli_open(&c, f->port[0]));
    assert_true(cli_puts(&c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
    double t0 = now_ms();
    assert_int_equal(cli_reply(&c, &r, false), 0);
    assert_int_equal(r.status, 100);
    assert_true(now_ms() - t0 < 1000); /* not after a client's usual one-second wait */
    assert_true(cli_puts(&c, "hello"));
    assert_int_equal(cli_reply(&c, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "hello");
    cli_close(&c);
    strbuf_free(&r.body);
    finish(f);
    assert_int_equal(f->nseen, 1);
}

/* ---- what the server refuses ---- */

/* A body over max_body is answered 413 without reaching the handler and the connection is closed, whether it is
 * announced by Content-Length (with or without Expect: then no 100 comes first) or grows chunk by chunk; a body
 * of exactly max_body is accepted. */
static void oversized_body_gets_413_without_the_handler(void **state)
{
    fixture *f = *state;
    start_server(f, 0, 1000);
    serve(f);
    char *b = malloc(5000);
    fill_pattern(b, 5000, 2);
    client c;
    reply r = { 0 };

    exchange(&c, f->port[0], "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", &r);
    assert_int_equal(r.status, 413);
    assert_non_null(strstr(r.body.data, "larger than 1000 bytes"));
    assert_string_equal(r.connection, "close");
    assert_true(cli_closed(&c));
    cli_close(&c);

    assert_true(cli_open(&c, f->port[0]));
    assert_true(cli_puts(&c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"));
    assert_true(cli_send(&c, b, 5000)); /* the client sends it all before it reads */
    assert_int_equal(cli_reply(&c, &r, false), 0);
    assert_int_equal(r.status, 413);
    assert_true(cli_closed(&c));
    cli_close(&c);

    exchange(&c, f->port[0], "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n",
             &r);
    assert_int_equal(r.status, 413);
    cli_close(&c);

    assert_true(cli_open(&c, f->port[0]));
    assert_true(cli_puts(&c, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n"));
    assert_true(cli_send(&c, b, 600) && cli_puts(&c, "\r\n258\r\n") && cli_send(&c, b, 600));
    assert_int_equal(cli_reply(&c, &r, false), 0);
    assert_int_equal(r.status, 413);
    assert_true(cli_closed(&c));
    cli_close(&c);

    assert_true(cli_open(&c, f->port[0]));
    assert_true(cli_puts(&c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"));
    assert_true(cli_send(&c, b, 1000));
    assert_int_equal(cli_reply(&c, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, 1000);
    cli_close(&c);
    strbuf_free(&r.body);
    free(b);
    finish(f);

    assert_int_equal(f->nseen, 1);
    assert_int_equal(f->seen[0].body_len, 1000);
}

/* A request head over 16 KiB is answered 431 and the connection closed; one just under the limit is served. */
static void huge_head_gets_431(void **state)
{
    fixture *f = *state;
    start_server(f, 0, 0);
    serve(f);
    size_t n = 20000;
    char *h = malloc(n + 128);
    int k = snprintf(h, n + 128, "GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(h + k, 'a', n);
    strcpy(h + k + n, "\r\n\r\n");
    client c;
    reply r = { 0 };
    exchange(&c, f->port[0], h, &r);
    assert_int_equal(r.status, 431);
    assert_string_equal(r.connection, "close");
    assert_true(cli_closed(&c));
    cli_close(&c);

    n = 16 * 1024 - 64; /* the whole head stays within 16 KiB */
    k = snprintf(h, n + 128, "GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(h + k, 'a', n - (size_t)k);
    strcpy(h + n, "\r\n\r\n");
    exchange(&c, f->port[0], h, &r);
    assert_int_equal(r.status, 200);
    cli_close(&c);
    strbuf_free(&r.body);
    free(h);
    finish(f);
    assert_int_equal(f->nseen, 1);
}

/* Malformed requests never reach the handler: each is answered with its status (400 for a broken request line
 * or header, 501 for a transfer coding other than chunked, 505 for another HTTP version) and the connection is
 * closed. */
static void malformed_requests_are_refused_and_closed(void **state)
{
    static const struct {
        const char *request;
        int         status;
    } cases[] = {
        { "hello\r\n\r\n", 400 },
        { "GET / HTTP/1.1 extra\r\n\r\n", 400 },
        { "GET /a b HTTP/1.1\r\n\r\n", 400 },
        { "GET nopath HTTP/1.1\r\n\r\n", 400 },
        { "GET / HTTP/1.1\r\nNo colon here\r\n\r\n", 400 },
        { "GET / HTTP/1.1\r\nName : v\r\n\r\n", 400 },
        { "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", 400 },
        { "GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", 400 },
        { "GET /%00 HTTP/1.1\r\n\r\n", 400 },
        { "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400 },
        { "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400 },
        { "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400 },
        { "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400 },
        { "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n", 400 },
        { "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501 },
        { "GET / HTTP/2.0\r\n\r\n", 505 },
    };
    fixture *f = *state;
    start_server(f, 0, 0);
    serve(f);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        client c;
        reply r = { 0 };
        exchange(&c, f->port[0], cases[i].request, &r);
        if (r.status != cases[i].status)
            fprintf(stderr, "case %zu: got %d\n", i, r.status);
        assert_int_equal(r.status, cases[i].status);
        assert_non_null(strstr(r.body.data, "\"error\""));
        assert_string_equal(r.connection, "close");
        assert_true(cli_closed(&c));
        cli_close(&c);
        strbuf_free(&r.body);
    }
    /* a binary NUL in a header line */
    client c;
    reply r = { 0 };
    assert_true(cli_open(&c, f->port[0]));
    assert_true(cli_send(&c, "GET / HTTP/1.1\r\nA: \0\r\n\r\n", 24));
    assert_int_equal(cli_reply(&c, &r, false), 0);
    assert_int_equal(r.status, 400);
    cli_close(&c);
    strbuf_free(&r.body);
    finish(f);
    assert_int_equal(f->nseen, 0);
}

/* The handler's response is checked: a status outside 200..599 or a content type that would inject header lines
 * gives 500 instead. */
static void invalid_handler_responses_become_500(void **state)
{
    fixture *f = *state;
    start_server(f, 0, 0);
    serve(f);
    client c;
    reply r = { 0 };
    exchange(&c, f->port[0], "GET /bad-status HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 500);
    assert_true(cli_puts(&c, "GET /bad-ctype HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert_int_equal(cli_reply(&c, &r, false), 0);
    assert_int_equal(r.status, 500);
    assert_string_equal(r.ctype, "application/json");
    cli_close(&c);
    strbuf_free(&r.body);
    finish(f);
}

/* ---- connection handling ---- */

/* HEAD is answered with the head GET would get — status, content type and Content-Length — and no body (the next
 * response on the connection starts right after it); the handler sees it as GET. */
static void head_is_answered_without_a_body(void **state)
{
    fixture *f = *state;
    start_server(f, 0, 0);
    serve(f);
    client c;
    reply r = { 0 };
    assert_true(cli_open(&c, f->port[0]));
    assert_true(cli_puts(&c, "HEAD /text HTTP/1.1\r\nHost: x\r\n\r\nGET /echo HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert_int_equal(cli_reply(&c, &r, true), 0);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.ctype, "text/plain");
    assert_int_equal(r.clen, 7);
    assert_int_equal(cli_reply(&c, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.clen, 0);
    cli_close(&c);
    strbuf_free(&r.body);
    finish(f);
    assert_int_equal(f->nseen, 2);
    assert_string_equal(f->seen[0].method, "GET");
    assert_string_equal(f->seen[0].path, "/text");
}

/* "Connection: close" ends the connection after the response (which says so), as does HTTP/1.0 unless the client
 * asks for keep-alive, in which case the connection serves the next request. */
static void connection_close_and_http10_are_honoured(void **state)
{
    fixture *f = *state;
    start_server(f, 0, 0);
    serve(f);
    client c;
    reply r = { 0 };
    exchange(&c, f->port[0], "GET /text HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.connection, "close");
    assert_true(cli_closed(&c));
    cli_close(&c);

    exchange(&c, f->port[0], "GET /text HTTP/1.0\r\n\r\n", &r);
    assert_int_equal(r.status, 201);
    assert_true(cli_closed(&c));
    cli_close(&c);

    exchange(&c, f->port[0], "GET /text HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &r);
    assert_string_equal(r.connection, "keep-alive");
    assert_true(cli_puts(&c, "GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    assert_int_equal(cli_reply(&c, &r, false), 0);
    assert_int_equal(r.status, 200);
    cli_close(&c);
    strbuf_free(&r.body);
    finish(f);
    assert_int_equal(f->nseen, 4);
}

/* A connection that says nothing, one that stops in the middle of a head, and an idle keep-alive connection are
 * closed once the idle timeout has passed — not before; a slow reader of a big response is not cut off while the
 * response is being written. */
static void idle_and_slow_connections_are_closed_after_the_timeout(void **state)
{
    fixture *f = *state;
    https_set_idle_timeout(listen_on(f, 0, "127.0.0.1", 0), 300);
    serve(f);
    client silent, partial, kept, slow;
    reply r = { 0 };
    double t0 = now_ms();
    assert_true(cli_open(&silent, f->port[0]));
    assert_true(cli_open(&partial, f->port[0]));
    assert_true(cli_puts(&partial, "GET /echo HTTP/1.1\r\nHo"));
    assert_true(cli_closed(&silent));
    assert_true(cli_closed(&partial));
    double waited = now_ms() - t0;
    assert_true(waited >= 250);
    assert_true(waited < 4000);
    cli_close(&silent);
    cli_close(&partial);

    exchange(&kept, f->port[0], "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    t0 = now_ms();
    assert_true(cli_closed(&kept));
    assert_true(now_ms() - t0 >= 250);
    cli_close(&kept);

    assert_true(cli_open_at(&slow, "127.0.0.1", f->port[0], 32768));
    assert_true(cli_puts(&slow, "GET /big?mb=8 HTTP/1.1\r\nHost: x\r\n\r\n"));
    usleep(1000 * 1000); /* well past the timeout, with megabytes still unsent */
    assert_int_equal(cli_reply(&slow, &r, false), 0);
    assert_int_equal(r.body.len, 8u << 20);
    cli_close(&slow);
    strbuf_free(&r.body);
    finish(f);
}

#define CONN_LIMIT 512

/* Up to 512 connections are held at once; one more is closed as soon as it is accepted, and once a connection
 * has gone a new one is served again. */
static void connections_over_the_limit_are_closed_at_once(void **state)
{
    fixture *f = *state;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 2 * CONN_LIMIT + 64) { /* both ends live in this process */
        rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
        if (rl.rlim_cur < 2 * CONN_LIMIT + 64 || setrlimit(RLIMIT_NOFILE, &rl) < 0)
            skip();
    }
    start_server(f, 0, 0);
    serve(f);
    client *c = calloc(CONN_LIMIT + 1, sizeof *c);
    reply r = { 0 };
    for (int i = 0; i < CONN_LIMIT; i++)
        assert_true(cli_open(&c[i], f->port[0]));
    /* connections are accepted in order: once the last is answered, all of them are in */
    assert_true(cli_puts(&c[CONN_LIMIT - 1], "GET /text HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert_int_equal(cli_reply(&c[CONN_LIMIT - 1], &r, false), 0);
    assert_int_equal(r.status, 201);

    double t0 = now_ms();
    assert_true(cli_open(&c[CONN_LIMIT], f->port[0]));
    assert_true(cli_closed(&c[CONN_LIMIT]));
    assert_true(now_ms() - t0 < 2000);
    cli_close(&c[CONN_LIMIT]);

    cli_close(&c[0]);
    bool served = false;
    for (int tries = 0; tries < 200 && !served; tries++) { /* until the server has seen c[0] go */
        assert_true(cli_open(&c[CONN_LIMIT], f->port[0]));
        served = cli_puts(&c[CONN_LIMIT], "GET /text HTTP/1.1\r\nHost: x\r\n\r\n") &&
                 cli_reply(&c[CONN_LIMIT], &r, false) == 0 && r.status == 201;
        cli_close(&c[CONN_LIMIT]);
        if (!served)
            usleep(10000);
    }
    assert_true(served);
    for (int i = 1; i < CONN_LIMIT; i++)
        cli_close(&c[i]);
    free(c);
    strbuf_free(&r.body);
    finish(f);
}

/* The handler may free its own server: that request's connection is closed unanswered, the port stops
 * listening, and the loop finishes. */
static void handler_may_free_its_server(void **state)
{
    fixture *f = *state;
    start_server(f, 0, 0);
    serve(f);
    client c;
    reply r = { 0 };
    assert_true(cli_open(&c, f->port[0]));
    assert_true(cli_puts(&c, "GET /quit HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert_int_equal(cli_reply(&c, &r, false), -1);
    cli_close(&c);
    assert_false(cli_open(&c, f->port[0])); /* refused */
    finish(f);
    assert_int_equal(f->nseen, 1);
    assert_string_equal(f->seen[0].path, "/quit");
}

/* https_free drops open connections — one in the middle of a body among them — and the loop then runs to
 * completion with no handle left. */
static void free_drops_open_connections(void **state)
{
    fixture *f = *state;
    start_server(f, 0, 0);
    serve(f);
    client c, idle;
    reply r = { 0 };
    assert_true(cli_open(&idle, f->port[0]));
    exchange(&c, f->port[0], "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_true(cli_puts(&c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n0123456789"));
    usleep(20000); /* let the server take the partial body in */
    finish(f);
    assert_true(cli_closed(&c));
    assert_true(cli_closed(&idle));
    cli_close(&c);
    cli_close(&idle);
    strbuf_free(&r.body);
    assert_int_equal(f->nseen, 1);
}

/* A client that hangs up in the middle of its body never reaches the handler, and the server carries on. (The
 * connection's buffers are freed: the sanitizer build checks.) */
static void client_gone_mid_body_is_dropped(void **state)
{
    fixture *f = *state;
    start_server(f, 0, 0);
    serve(f);
    client c;
    reply r = { 0 };
    char junk[1000];
    memset(junk, 'x', sizeof junk);
    assert_true(cli_open(&c, f->port[0]));
    assert_true(cli_puts(&c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"));
    assert_true(cli_send(&c, junk, sizeof junk));
    usleep(20000);
    cli_close(&c);
    exchange(&c, f->port[0], "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    cli_close(&c);
    strbuf_free(&r.body);
    finish(f);
    assert_int_equal(f->nseen, 1);
    assert_string_equal(f->seen[0].method, "GET");
}

/* ---- listening ---- */

/* Two servers with port 0 on one loop get ports of their own, each with its own handler argument; freeing both
 * lets the loop finish. */
static void port_zero_gives_each_server_its_own_port(void **state)
{
    fixture *f = *state;
    start_server(f, 0, 0);
    start_server(f, 1, 0);
    assert_int_not_equal(f->port[0], f->port[1]);
    serve(f);
    client c;
    reply r = { 0 };
    exchange(&c, f->port[0], "GET /echo?s=0 HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    cli_close(&c);
    exchange(&c, f->port[1], "GET /echo?s=1 HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    cli_close(&c);
    strbuf_free(&r.body);
    finish(f);
    assert_int_equal(f->nseen, 2);
    assert_string_equal(f->seen[0].query, "s=0");
    assert_int_equal(f->seen[0].server, 0);
    assert_string_equal(f->seen[1].query, "s=1");
    assert_int_equal(f->seen[1].server, 1);
}

/* A server freed without ever serving lets its loop finish, and another created afterwards on the same loop
 * does too. */
static void freed_server_lets_loop_finish(void **state)
{
    fixture *f = *state;
    start_server(f, 0, 0);
    https_free(f->srv[0]);
    f->srv[0] = NULL;
    uv_close((uv_handle_t *)&f->done, NULL);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    start_server(f, 1, 0);
    https_free(f->srv[1]);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    f->finished = true;
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

/* Listening on a port that is taken fails with a message naming the address and the reason, and leaves nothing
 * on the loop; listening on every address fails the same way, since it includes this one. */
static void busy_port_is_reported(void **state)
{
    fixture *f = *state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t sl = sizeof sa;
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 1), 0);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    int port = ntohs(sa.sin_port);

    char err[256], perr[256], want[96];
    f->args[0] = (srv_arg){ f, 0 };
    https_opts o = { .host = "127.0.0.1", .port = port, .handler = handler, .arg = &f->args[0] };
    assert_null(https_listen(&f->loop, &o, err, sizeof err));
    snprintf(want, sizeof want, "cannot listen on 127.0.0.1:%d: Address already in use", port);
    assert_string_equal(err, want);
    o.host = NULL;
    assert_null(https_listen(&f->loop, &o, perr, sizeof perr));
    snprintf(want, sizeof want, "cannot listen on 0.0.0.0:%d: Address already in use", port);
    assert_string_equal(perr, want);
    close(fd);

    uv_close((uv_handle_t *)&f->done, NULL);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    f->finished = true;
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static bool have_ipv6_loopback(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* No host means every address: IPv4 clients are served (and show as "127.0.0.1", not as IPv4-mapped IPv6), and
 * IPv6 ones where the system has IPv6. A loopback alias such as 127.0.0.5 and an IPv6 literal bind as given. */
static void every_address_aliases_and_ipv6_literals_are_served(void **state)
{
    fixture *f = *state;
    bool v6 = have_ipv6_loopback();
    listen_on(f, 0, NULL, 0);
    listen_on(f, 1, v6 ? "[::1]" : "127.0.0.5", 0);
    serve(f);
    client c;
    reply r = { 0 };
    assert_true(cli_open_at(&c, "127.0.0.1", f->port[0], 0));
    assert_true(cli_puts(&c, "GET /echo?via=v4 HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert_int_equal(cli_reply(&c, &r, false), 0);
    cli_close(&c);
    if (v6) {
        assert_true(cli_open_at(&c, "::1", f->port[0], 0));
        assert_true(cli_puts(&c, "GET /echo?via=v6 HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert_int_equal(cli_reply(&c, &r, false), 0);
        cli_close(&c);
    }
    assert_true(cli_open_at(&c, v6 ? "::1" : "127.0.0.5", f->port[1], 0));
    assert_true(cli_puts(&c, "GET /echo?via=literal HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert_int_equal(cli_reply(&c, &r, false), 0);
    assert_int_equal(r.status, 200);
    cli_close(&c);
    assert_false(cli_open_at(&c, v6 ? "127.0.0.1" : "127.0.0.6", f->port[1], 0)); /* bound to that one only */
    strbuf_free(&r.body);
    finish(f);

    assert_int_equal(f->nseen, v6 ? 3 : 2);
    assert_string_equal(f->seen[0].peer, "127.0.0.1");
    if (v6)
        assert_string_equal(f->seen[1].peer, "::1");

}

/* ---- helpers ---- */

/* https_query_param percent-decodes names and values, reads '+' as a space, returns the first match, and
 * returns -1 for a missing name, a value too long for the buffer, or a value holding %00. */
static void query_param_decodes(void **state)
{
    (void)state;
    char v[16];
    const char *q = "a=1&b=x%20y+z&c=&d&e=%41%4a%4A&f=%zz%&g=1&g=2&long=0123456789abcdef&%6Eame=k&z=%00";
    assert_int_equal(https_query_param(q, "a", v, sizeof v), 0);
    assert_string_equal(v, "1");
    assert_int_equal(https_query_param(q, "b", v, sizeof v), 0);
    assert_string_equal(v, "x y z");
    assert_int_equal(https_query_param(q, "c", v, sizeof v), 0);
    assert_string_equal(v, "");
    assert_int_equal(https_query_param(q, "d", v, sizeof v), 0);
    assert_string_equal(v, "");
    assert_int_equal(https_query_param(q, "e", v, sizeof v), 0);
    assert_string_equal(v, "AJJ");
    assert_int_equal(https_query_param(q, "f", v, sizeof v), 0);
    assert_string_equal(v, "%zz%");
    assert_int_equal(https_query_param(q, "g", v, sizeof v), 0);
    assert_string_equal(v, "1");
    assert_int_equal(https_query_param(q, "name", v, sizeof v), 0);
    assert_string_equal(v, "k");
    assert_int_equal(https_query_param(q, "long", v, sizeof v), -1);
    assert_int_equal(https_query_param(q, "z", v, sizeof v), -1);
    assert_int_equal(https_query_param(q, "missing", v, sizeof v), -1);
    assert_int_equal(https_query_param(q, "", v, sizeof v), -1);
    assert_int_equal(https_query_param("=v", "", v, sizeof v), -1);
    assert_int_equal(https_query_param("", "a", v, sizeof v), -1);
    assert_int_equal(https_query_param(NULL, "a", v, sizeof v), -1);
}

/* https_reply_error replaces the body with a JSON error object, escaping the message. */
static void reply_error_is_json(void **state)
{
    (void)state;
    https_response res = { 200, "text/plain", STRBUF_INIT };
    strbuf_puts(&res.body, "partial");
    https_reply_error(&res, 409, "slot \"0\" is\nbusy");
    assert_int_equal(res.status, 409);
    assert_string_equal(res.content_type, "application/json");
    assert_string_equal(res.body.data, "{\"error\":\"slot \\\"0\\\" is\\nbusy\"}");
    strbuf_free(&res.body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(get_reaches_the_handler_with_its_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(bodies_and_big_responses_arrive_intact, setup, teardown),
        cmocka_unit_test_setup_teardown(keepalive_connection_serves_one_request_after_another, setup, teardown),
        cmocka_unit_test_setup_teardown(pipelined_requests_are_answered_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(chunked_body_is_reassembled, setup, teardown),
        cmocka_unit_test_setup_teardown(expect_continue_gets_100_then_the_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(oversized_body_gets_413_without_the_handler, setup, teardown),
        cmocka_unit_test_setup_teardown(huge_head_gets_431, setup, teardown),
        cmocka_unit_test_setup_teardown(malformed_requests_are_refused_and_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(invalid_handler_responses_become_500, setup, teardown),
        cmocka_unit_test_setup_teardown(head_is_answered_without_a_body, setup, teardown),
        cmocka_unit_test_setup_teardown(connection_close_and_http10_are_honoured, setup, teardown),
        cmocka_unit_test_setup_teardown(idle_and_slow_connections_are_closed_after_the_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(connections_over_the_limit_are_closed_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(handler_may_free_its_server, setup, teardown),
        cmocka_unit_test_setup_teardown(free_drops_open_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(client_gone_mid_body_is_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(port_zero_gives_each_server_its_own_port, setup, teardown),
        cmocka_unit_test_setup_teardown(freed_server_lets_loop_finish, setup, teardown),
        cmocka_unit_test_setup_teardown(busy_port_is_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(every_address_aliases_and_ipv6_literals_are_served, setup, teardown),
        cmocka_unit_test(query_param_decodes),
        cmocka_unit_test(reply_error_is_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
