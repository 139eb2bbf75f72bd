/* test_https.c — the lws HTTP server on a real libuv loop, real loopback sockets, ephemeral ports.
 *
 * The server runs on the test's loop in the main thread; the client is a blocking libcurl easy handle (or a raw
 * socket) in a second thread, so these tests do not depend on httpc. When the client is done it wakes the loop
 * with a uv_async; the loop frees the server(s) and must then run to completion on its own. Everything the
 * handler saw is recorded and checked after the loop has returned and the thread has been joined. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <libwebsockets.h>
#include <uv.h>

#include "iac/https.h"
#include "iac/lwsloop.h"

#include "lwsfds.h"

#define MAX_SEEN 8

/* What the handler saw of one request (copies). */
typedef struct {
    char  *method, *path, *query, *authorization, *content_type, *body, *peer;
    size_t body_len;
    int    server; /* which server (its arg) */
} seen_req;

typedef struct fixture fixture;
typedef void (*client_fn)(fixture *f);

typedef struct {
    long   status;
    strbuf body;
    char   ctype[64];
} client_res;

struct fixture {
    uv_loop_t     loop;
    uv_async_t    done;
    https_server *srv[2];
    int           port[2];
    client_fn     client;
    pthread_t     thread;
    seen_req      seen[MAX_SEEN];
    int           nseen;
    client_res    res[4];
    int           aux; /* client-side result for raw-socket tests */
    lwsloop_share *share; /* the servers' shared context (the fixture's reference), or NULL: one each */
};

/* Deterministic, position-dependent filler, so a misplaced or dropped chunk shows. */
static void fill_pattern(char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (char)('a' + (i * 7 + i / 251 + seed) % 26);
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* Handler args: the address of a fixture pointer, one per server, so the handler can tell servers apart. */
static fixture *arg_slot[2];

/* The test handler: records the request and answers by path. */
static void handler(const https_request *req, https_response *res, void *arg)
{
    fixture *f = *(fixture **)arg;
    if (f->nseen < MAX_SEEN) {
        seen_req *s = &f->seen[f->nseen++];
        s->method = strdup(req->method);
        s->path = strdup(req->path);
        s->query = strdup(req->query);
        s->authorization = dup_or_null(req->authorization);
        s->content_type = dup_or_null(req->content_type);
        s->body = malloc(req->body_len + 1);
        memcpy(s->body, req->body, req->body_len + 1);
        s->body_len = req->body_len;
        s->peer = strdup(req->peer);
        s->server = (int)((fixture **)arg - arg_slot);
    }
    if (!strcmp(req->path, "/echo")) {
        strbuf_append(&res->body, req->body, req->body_len);
    } else if (!strcmp(req->path, "/text")) {
        res->status = 201;
        res->content_type = "text/plain";
        strbuf_puts(&res->body, "created");
    } else if (!strcmp(req->path, "/quit")) {
        int i = (int)((fixture **)arg - arg_slot);
        https_free(f->srv[i]); /* from inside the handler */
        f->srv[i] = NULL;
        strbuf_puts(&res->body, "bye");
    } else if (!strcmp(req->path, "/big")) {
        size_t n = 2u << 20;
        char *p = malloc(n);
        fill_pattern(p, n, 3);
        strbuf_append(&res->body, p, n);
        free(p);
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

static void on_done(uv_async_t *a)
{
    fixture *f = a->data;
    for (int i = 0; i < 2; i++)
        https_free(f->srv[i]);
    if (f->share)
        lwsloop_share_unref(f->share, NULL, NULL);
    uv_close((uv_handle_t *)a, NULL);
}

static void *client_main(void *arg)
{
    fixture *f = arg;
    f->client(f);
    uv_async_send(&f->done);
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
    for (int i = 0; i < f->nseen; i++)
        seen_free(&f->seen[i]);
    for (int i = 0; i < 4; i++)
        strbuf_free(&f->res[i].body);
    free(f);
    return 0;
}

static void start_server(fixture *f, int i, size_t max_body)
{
    char err[256];
    arg_slot[i] = f;
    https_opts o = { .host = "127.0.0.1", .port = 0, .max_body = max_body, .handler = handler, .arg = &arg_slot[i] };
    f->srv[i] = f->share ? https_listen_shared(f->share, &o, err, sizeof err)
                         : https_listen(&f->loop, &o, err, sizeof err);
    assert_non_null(f->srv[i]);
    f->port[i] = https_port(f->srv[i]);
    assert_true(f->port[i] > 0);
}

/* Runs the client thread against the loop; returns when the loop has nothing left to do. */
static void run(fixture *f, client_fn fn)
{
    f->client = fn;
    assert_int_equal(pthread_create(&f->thread, NULL, client_main, f), 0);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    pthread_join(f->thread, NULL);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    strbuf_append(arg, p, size * n);
    return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    client_res *r = arg;
    if (!strncasecmp(p, "content-type:", 13)) {
        const char *v = p + 13;
        while (*v == ' ')
            v++;
        size_t len = strcspn(v, "\r\n");
        snprintf(r->ctype, sizeof r->ctype, "%.*s", (int)len, v);
    }
    return size * n;
}

/* One blocking request; a NULL easy makes a fresh handle. */
static void request(CURL *easy, client_res *r, const char *method, int port, const char *target, const char *auth,
                    const char *body, size_t len)
{
    CURL *e = easy ? easy : curl_easy_init();
    char url[512], authh[256];
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    if (!strcmp(method, "POST-CHUNKED")) {
        h = curl_slist_append(h, "Transfer-Encoding: chunked");
        method = "POST";
    }
    if (auth) {
        snprintf(authh, sizeof authh, "Authorization: %s", auth);
        h = curl_slist_append(h, authh);
    }
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, target);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    if (body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    } else {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
    if (!strcmp(method, "HEAD"))
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, strcmp(method, "GET") && strcmp(method, "POST") ? method : NULL);
    r->status = curl_easy_perform(e) == CURLE_OK ? 0 : -1;
    if (r->status == 0)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(h);
    if (!easy)
        curl_easy_cleanup(e);
}

/* A raw TCP connection to the server (blocking, with a receive timeout so nothing can hang). */
static int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    struct timeval tv = { .tv_sec = 3 };
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- GET with query and Authorization ---- */

static void client_get(fixture *f)
{
    request(NULL, &f->res[0], "GET", f->port[0], "/echo?name=a%20b&x=1%2B2&sp=c+d&amp=%26%3D&flag", "Bearer apt_secret",
            NULL, 0);
}

/* A GET reaches the handler with its method, path, query (decodable with https_query_param) and the
 * Authorization header, an empty body and the peer address. */
static void get_delivers_query_and_authorization(void **state)
{
    fixture *f = *state;
    start_server(f, 0, 0);
    run(f, client_get);

    assert_int_equal(f->res[0].status, 200);
    assert_int_equal(f->nseen, 1);
    seen_req *s = &f->seen[0];
    assert_string_equal(s->method, "GET");
    assert_string_equal(s->path, "/echo");
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
    assert_int_equal(https_query_param(s->query, "nope", v, sizeof v), -1);
}

/* ---- POST bodies ---- */

#define BODY_300K (300u * 1024)

static void client_post_big(fixture *f)
{
    char *b = malloc(BODY_300K);
    fill_pattern(b, BODY_300K, 1);
    request(NULL, &f->res[0], "POST", f->port[0], "/echo", NULL, b, BODY_300K);
    request(NULL, &f->res[1], "PUT", f->port[0], "/echo", NULL, "{\"a\":1}", 7);
    free(b);
}

/* A 300 KiB POST body reaches the handler byte for byte (and comes back intact in the response); a PUT body
 * too. */
static void post_body_arrives_intact(void **state)
{
    fixture *f = *state;
    start_server(f, 0, 0);
    run(f, client_post_big);

    char *want = malloc(BODY_300K);
    fill_pattern(want, BODY_300K, 1);
    assert_int_equal(f->nseen, 2);
    assert_string_equal(f->seen[0].method, "POST");
    assert_int_equal(f->seen[0].body_len, BODY_300K);
    assert_memory_equal(f->seen[0].body, want, BODY_300K);
    assert_int_equal(f->seen[0].body[BODY_300K], '\0');
    assert_int_equal(f->res[0].status, 200);
    assert_int_equal(f->res[0].body.len, BODY_300K);
    assert_memory_equal(f->res[0].body.data, want, BODY_300K);
    assert_string_equal(f->seen[1].method, "PUT");
    assert_string_equal(f->seen[1].body, "{\"a\":1}");
    assert_int_equal(f->res[1].status, 200);
    free(want);
}

static void client_oversized(fixture *f)
{
    CURL *e = curl_easy_init();
    char *b = malloc(5000);
    fill_pattern(b, 5000, 2);
    request(e, &f->res[0], "POST", f->port[0], "/echo", NULL, b, 5000);
    request(e, &f->res[1], "POST", f->port[0], "/echo", NULL, b, 1000); /* at the limit: accepted */
    free(b);
    curl_easy_cleanup(e);
}

/* A body above max_body is answered 413 without reaching the handler, and the connection still serves the next
 * request; a body of exactly max_body is accepted. */
static void oversized_body_gets_413_without_handler(void **state)
{
    fixture *f = *state;
    start_server(f, 0, 1000);
    run(f, client_oversized);

    assert_int_equal(f->res[0].status, 413);
    assert_non_null(strstr(f->res[0].body.data, "\"error\""));
    assert_int_equal(f->res[1].status, 200);
    assert_int_equal(f->nseen, 1);
    assert_int_equal(f->seen[0].body_len, 1000);
}

/* ---- responses ---- */

static void client_big(fixture *f)
{
    request(NULL, &f->res[0], "GET", f->port[0], "/big", NULL, NULL, 0);
    request(NULL, &f->res[1], "GET", f->port[0], "/text", NULL, NULL, 0);
    request(NULL, &f->res[2], "DELETE", f->port[0], "/missing", NULL, NULL, 0);
}

/* A 2 MiB response body arrives intact; the status and content type the handler set reach the client, and the
 * handler's own 404 is sent as a JSON error. */
static void large_response_and_handler_status_arrive(void **state)
{
    fixture *f = *state;
    start_server(f, 0, 0);
    run(f, client_big);

    size_t n = 2u << 20;
    char *want = malloc(n);
    fill_pattern(want, n, 3);
    assert_int_equal(f->res[0].status, 200);
    assert_string_equal(f->res[0].ctype, "application/json");
    assert_int_equal(f->res[0].body.len, n);
    assert_memory_equal(f->res[0].body.data, want, n);
    free(want);
    assert_int_equal(f->res[1].status, 201);
    assert_string_equal(f->res[1].ctype, "text/plain");
    assert_string_equal(f->res[1].body.data, "created");
    assert_int_equal(f->res[2].status, 404);
    assert_string_equal(f->res[2].body.data, "{\"error\":\"no such path\"}");
    assert_string_equal(f->seen[2].method, "DELETE");
}

static void client_keepalive(fixture *f)
{
    CURL *e = curl_easy_init();
    long conns = -1;
    request(e, &f->res[0], "POST", f->port[0], "/echo", NULL, "first-body", 10);
    request(e, &f->res[1], "POST", f->port[0], "/echo", NULL, "2nd", 3);
    curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &conns);
    f->aux = (int)conns;
    curl_easy_cleanup(e);
}

/* Two requests on one keep-alive connection each get their own body: per-connection state is reset between
 * transactions. */
static void keepalive_connection_starts_each_request_clean(void **state)
{
    fixture *f = *state;
    start_server(f, 0, 0);
    run(f, client_keepalive);

    assert_int_equal(f->aux, 0); /* the second request opened no new connection */
    assert_string_equal(f->res[0].body.data, "first-body");
    assert_string_equal(f->res[1].body.data, "2nd");
    assert_int_equal(f->seen[1].body_len, 3);
}

static void client_unsupported(fixture *f)
{
    request(NULL, &f->res[0], "POST-CHUNKED", f->port[0], "/echo", NULL, "{\"a\":1}", 7);
    request(NULL, &f->res[1], "HEAD", f->port[0], "/echo", NULL, NULL, 0);
    request(NULL, &f->res[2], "GET", f->port[0], "/echo", NULL, NULL, 0);
}

/* What the server cannot take is refused without reaching the handler: a chunked upload (lws 4.1 does not
 * decode those) gets 411, a method outside GET/POST/PUT/PATCH/DELETE/OPTIONS gets 405; the server carries on. */
static void unsupported_requests_are_refused(void **state)
{
    fixture *f = *state;
    start_server(f, 0, 0);
    run(f, client_unsupported);

    assert_int_equal(f->res[0].status, 411);
    assert_non_null(strstr(f->res[0].body.data, "Content-Length"));
    assert_int_equal(f->res[1].status, 405);
    assert_int_equal(f->res[2].status, 200);
    assert_int_equal(f->nseen, 1);
    assert_string_equal(f->seen[0].method, "GET");
}

static void client_quit(fixture *f)
{
    request(NULL, &f->res[0], "GET", f->port[0], "/quit", NULL, NULL, 0);
    request(NULL, &f->res[1], "GET", f->port[0], "/echo", NULL, NULL, 0);
}

/* The handler may free its own server: its connection is dropped (the response is not sent), later requests
 * find no server, and the loop finishes. */
static void handler_may_free_its_server(void **state)
{
    fixture *f = *state;
    start_server(f, 0, 0);
    run(f, client_quit);

    assert_int_equal(f->nseen, 1);
    assert_string_equal(f->seen[0].path, "/quit");
    assert_int_equal(f->res[0].status, -1); /* its own connection is dropped with the server */
    assert_int_equal(f->res[1].status, -1); /* connection refused */
}

/* ---- connections that go away, servers that go away ---- */

static void client_abandons_body(fixture *f)
{
    int fd = raw_connect(f->port[0]);
    char req[256], junk[1000];
    int n = snprintf(req, sizeof req,
                     "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Content-Length: 100000\r\n\r\n");
    memset(junk, 'x', sizeof junk);
    f->aux = write(fd, req, (size_t)n) == n && write(fd, junk, sizeof junk) == (ssize_t)sizeof junk;
    usleep(20000); /* let the server take the partial body in before the hang-up */
    close(fd);
    request(NULL, &f->res[0], "GET", f->port[0], "/echo", NULL, NULL, 0);
}

/* A client that hangs up in the middle of its body never reaches the handler, and the server carries on. (The
 * connection's buffers are freed: the sanitizer build checks.) */
static void client_gone_mid_body_is_dropped(void **state)
{
    fixture *f = *state;
    start_server(f, 0, 0);
    run(f, client_abandons_body);

    assert_int_equal(f->aux, 1);
    assert_int_equal(f->nseen, 1);
    assert_string_equal(f->seen[0].method, "GET");
    assert_int_equal(f->res[0].status, 200);
}

static void client_holds_connection(fixture *f)
{
    int fd = raw_connect(f->port[0]);
    const char *req = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n0123456789";
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
        f->aux = 99;
    usleep(20000);
    uv_async_send(&f->done); /* free the server while this connection is open */
    char buf[64];
    if (f->aux != 99)
        f->aux = (int)read(fd, buf, sizeof buf); /* the server must hang up: 0 (or -1 on reset), not a timeout */
    close(fd);
}

/* https_free drops open connections, and the loop then runs to completion with no handle left. */
static void free_drops_open_connections(void **state)
{
    fixture *f = *state;
    start_server(f, 0, 0);
    run(f, client_holds_connection);

    assert_true(f->aux <= 0);
    assert_int_equal(f->nseen, 0);
}

static void client_two(fixture *f)
{
    request(NULL, &f->res[0], "GET", f->port[0], "/echo?s=0", NULL, NULL, 0);
    request(NULL, &f->res[1], "GET", f->port[1], "/echo?s=1", NULL, NULL, 0);
}

/* Two servers share one loop, each with its own port and handler argument; freeing both leaves the loop able to
 * finish. */
static void two_servers_share_a_loop(void **state)
{
    fixture *f = *state;
    start_server(f, 0, 0);
    start_server(f, 1, 0);
    assert_int_not_equal(f->port[0], f->port[1]);
    run(f, client_two);

    assert_int_equal(f->res[0].status, 200);
    assert_int_equal(f->res[1].status, 200);
    assert_int_equal(f->nseen, 2);
    assert_string_equal(f->seen[0].query, "s=0");
    assert_int_equal(f->seen[0].server, 0);
    assert_string_equal(f->seen[1].query, "s=1");
    assert_int_equal(f->seen[1].server, 1);
}

static void client_many_fds(fixture *f)
{
    int fds[300];
    for (int i = 0; i < 300; i++)
        fds[i] = dup(2);
    request(NULL, &f->res[0], "GET", f->port[0], "/text", NULL, NULL, 0);
    for (int i = 0; i < 300; i++)
        close(fds[i]);
}

/* A connection whose fd number is above the server's fd limit (256) is still served: lws's small fd table is
 * searched, not indexed. */
static void high_fd_numbers_are_served(void **state)
{
    fixture *f = *state;
    start_server(f, 0, 0);
    run(f, client_many_fds);
    assert_int_equal(f->res[0].status, 201);
}

/* A server freed without ever serving lets its loop finish: no lws handle stays behind, and a second free of
 * another server created afterwards on the same loop works too. */
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
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

/* Listening on a port that is taken fails with a message naming the address and the reason, and leaves nothing
 * on the loop. */
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

    char err[256], want[64];
    arg_slot[0] = f;
    https_opts o = { .host = "127.0.0.1", .port = port, .handler = handler, .arg = &arg_slot[0] };
    lws_set_log_level(0, NULL); /* lws reports the failed bind on stderr itself */
    assert_null(https_listen(&f->loop, &o, err, sizeof err));
    lws_set_log_level(LLL_ERR, NULL);
    snprintf(want, sizeof want, "cannot listen on 127.0.0.1:%d: ", port);
    assert_non_null(strstr(err, want));
    assert_non_null(strstr(err, "in use"));
    close(fd);

    uv_close((uv_handle_t *)&f->done, NULL);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

/* "0.0.0.0" binds every interface (the agent's default listen address, which the server hands lws as "no
 * interface" to spare it two interface listings): a request to the loopback address is answered. */
static void all_interfaces_are_served(void **state)
{
    fixture *f = *state;
    char err[256];
    arg_slot[0] = f;
    https_opts o = { .host = "0.0.0.0", .port = 0, .handler = handler, .arg = &arg_slot[0] };
    f->srv[0] = https_listen(&f->loop, &o, err, sizeof err);
    assert_non_null(f->srv[0]);
    f->port[0] = https_port(f->srv[0]);
    assert_true(f->port[0] > 0);
    run(f, client_get);
    assert_int_equal(f->res[0].status, 200);
    assert_string_equal(f->seen[0].peer, "127.0.0.1");
}

/* ---- on a shared context ---- */

/* Two servers on one shared context: no context of their own (the share's /dev/urandom descriptor is the only
 * one), each answers on its own port with its own handler argument, and once both are freed and the share's
 * last reference is dropped the loop runs to completion. */
static void servers_on_a_share_answer_without_a_context_each(void **state)
{
    fixture *f = *state;
    int before = lwsfds_urandom(0);
    f->share = lwsloop_share_new(&f->loop, 0);
    assert_non_null(f->share);
    start_server(f, 0, 0);
    start_server(f, 1, 0);
    assert_int_equal(lwsfds_urandom(0), before + 1);
    run(f, client_two);

    assert_int_equal(f->res[0].status, 200);
    assert_int_equal(f->res[1].status, 200);
    assert_int_equal(f->nseen, 2);
    assert_int_equal(f->seen[0].server, 0);
    assert_int_equal(f->seen[1].server, 1);
}

static void client_quit_shared(fixture *f)
{
    request(NULL, &f->res[0], "GET", f->port[0], "/quit", NULL, NULL, 0);
    request(NULL, &f->res[1], "GET", f->port[0], "/echo", NULL, NULL, 0);
    request(NULL, &f->res[2], "GET", f->port[1], "/text", NULL, NULL, 0);
}

/* A server on a share freed from inside its handler still answers that request; while the share lives on (the
 * other server uses it) its port answers 503 without reaching the handler, the other server is untouched, and the
 * freed server's memory goes with the context (the sanitizer build checks). */
static void a_server_freed_on_a_share_answers_503_until_the_share_goes(void **state)
{
    fixture *f = *state;
    f->share = lwsloop_share_new(&f->loop, 0);
    assert_non_null(f->share);
    start_server(f, 0, 0);
    start_server(f, 1, 0);
    run(f, client_quit_shared);

    assert_int_equal(f->res[0].status, 200);
    assert_string_equal(f->res[0].body.data, "bye");
    assert_int_equal(f->res[1].status, 503);
    assert_int_equal(f->res[2].status, 201);
    assert_int_equal(f->nseen, 2);
    assert_string_equal(f->seen[0].path, "/quit");
    assert_string_equal(f->seen[1].path, "/text");
}

/* A listen that fails on a share (port taken) reports it and leaves the share sound: a server started on it next
 * listens and answers, and the loop still finishes. */
static void a_failed_listen_leaves_the_share_sound(void **state)
{
    fixture *f = *state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t sl = sizeof sa;
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 1), 0);
    getsockname(fd, (struct sockaddr *)&sa, &sl);

    f->share = lwsloop_share_new(&f->loop, 0);
    assert_non_null(f->share);
    char err[256];
    arg_slot[0] = f;
    https_opts o = { .host = "127.0.0.1", .port = ntohs(sa.sin_port), .handler = handler, .arg = &arg_slot[0] };
    lws_set_log_level(0, NULL);
    assert_null(https_listen_shared(f->share, &o, err, sizeof err));
    lws_set_log_level(LLL_ERR, NULL);
    assert_non_null(strstr(err, "in use"));
    close(fd);

    start_server(f, 0, 0);
    run(f, client_get);
    assert_int_equal(f->res[0].status, 200);
    assert_int_equal(f->nseen, 1);
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
    lws_set_log_level(LLL_ERR, NULL);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(get_delivers_query_and_authorization, setup, teardown),
        cmocka_unit_test_setup_teardown(post_body_arrives_intact, setup, teardown),
        cmocka_unit_test_setup_teardown(oversized_body_gets_413_without_handler, setup, teardown),
        cmocka_unit_test_setup_teardown(large_response_and_handler_status_arrive, setup, teardown),
        cmocka_unit_test_setup_teardown(keepalive_connection_starts_each_request_clean, setup, teardown),
        cmocka_unit_test_setup_teardown(unsupported_requests_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(handler_may_free_its_server, setup, teardown),
        cmocka_unit_test_setup_teardown(client_gone_mid_body_is_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(free_drops_open_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(two_servers_share_a_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(high_fd_numbers_are_served, setup, teardown),
        cmocka_unit_test_setup_teardown(freed_server_lets_loop_finish, setup, teardown),
        cmocka_unit_test_setup_teardown(busy_port_is_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(all_interfaces_are_served, setup, teardown),
        cmocka_unit_test_setup_teardown(servers_on_a_share_answer_without_a_context_each, setup, teardown),
        cmocka_unit_test_setup_teardown(a_server_freed_on_a_share_answers_503_until_the_share_goes, setup, teardown),
        cmocka_unit_test_setup_teardown(a_failed_listen_leaves_the_share_sound, setup, teardown),
        cmocka_unit_test(query_param_decodes),
        cmocka_unit_test(reply_error_is_json),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
