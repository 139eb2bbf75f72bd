/* dial.c — a TCP connection to host:port on libuv: lookup, each address in turn, a time limit; see dial.h.
 *
 * A dial is a straight line: on the next loop turn (so that even a failure at once reaches the callback after
 * dial_start() has returned) resolve the host unless it is an address literal → connect to each address in turn
 * until one answers → hand the handle over. The timer first defers that start and then, re-armed, keeps the time
 * limit.
 *
 * The name lookup runs getaddrinfo on a thread started for it, which ends with it (curl's threaded resolver does
 * the same), and reports back through a uv_async. The lookup has a life of its own: a dial that ends first detaches
 * from it, and the answer is dropped when it comes.
 *
 * Lifetimes: the dial owns its timer, the handle of the address being tried (re-created for each, freed in its
 * close callback) and, while a name is being resolved, the lookup's report. `pending` counts those that have not
 * come back (close callbacks, the lookup's callback); once the dial is over (`over`: called back or aborted) the
 * last one to come back frees it. A handle that connected is no longer the dial's: it is the caller's from the
 * callback on. */
#include "iac/dial.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One address being tried. The handle comes first: the caller frees the block through the handle's address. */
typedef struct {
    uv_tcp_t     tcp;
    uv_connect_t req;
} dial_attempt;

/* A name lookup, on a thread of its own; see the top of the file. */
typedef struct dial_lookup {
    uv_async_t   async; /* the thread's "done", on the loop */
    struct dial *d;     /* NULL once the dial has gone */
    char         host[256], service[8];
    struct addrinfo *ai;
    int          rc;    /* getaddrinfo's */
} dial_lookup;

struct dial {
    uv_loop_t       *loop;
    char            *host;
    uint16_t         port;
    uint64_t         timeout_ms;
    dial_cb          cb;
    void            *arg;

    uv_timer_t       timer;        /* the deferred start, then the time limit */
    dial_lookup     *lookup;       /* the lookup under way, or NULL */
    struct addrinfo *ai, *ai_next; /* the resolver's answer; the next address to try */
    struct sockaddr_storage literal;
    bool             literal_tried;
    dial_attempt    *attempt;      /* the address being tried, or NULL */
    int              last_error;   /* of the last address tried (a libuv code) */
    unsigned         pending;
    bool             over;
};

/* ---- lifetimes ---- */

static void d_came_back(dial *d)
{
    if (--d->pending == 0 && d->over) {
        if (d->ai)
            freeaddrinfo(d->ai);
        free(d->host);
        free(d);
    }
}

static void on_timer_closed(uv_handle_t *h) { d_came_back(h->data); }

static void on_attempt_closed(uv_handle_t *h)
{
    dial *d = h->data;
    free(h); /* the attempt: the handle is its first member */
    d_came_back(d);
}

void dial_tcp_closed(uv_handle_t *h) { free(h); }

/* Stops everything; the memory goes when the last handle is back. */
static void d_stop(dial *d)
{
    d->over = true;
    d->pending++; /* held until the end of this function, so that nothing frees d under us */
    if (d->lookup) { /* its answer will find no dial and be dropped */
        d->lookup->d = NULL;
        d->lookup = NULL;
        d->pending--;
    }
    if (d->attempt) {
        uv_close((uv_handle_t *)&d->attempt->tcp, on_attempt_closed);
        d->attempt = NULL;
    }
    uv_close((uv_handle_t *)&d->timer, on_timer_closed);
    d_came_back(d);
}

static void finish(dial *d, uv_tcp_t *tcp, int error, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Ends the dial with its callback (once). */
static void finish(dial *d, uv_tcp_t *tcp, int error, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    d->pending++; /* the callback runs before d can go */
    d_stop(d);
    d->cb(d->arg, tcp, error, msg);
    d_came_back(d);
}

void dial_abort(dial *d)
{
    if (d && !d->over)
        d_stop(d);
}

/* ---- connecting ---- */

static void connect_next(dial *d);

static void on_failed_attempt_closed(uv_handle_t *h)
{
    dial *d = h->data;
    free(h);
    if (d->over) {
        d_came_back(d);
        return;
    }
    d->pending--; /* not the last: the timer is open while the dial is not over */
    connect_next(d);
}

static void on_connect(uv_connect_t *req, int status)
{
    dial *d = req->data;
    if (d->over || status == UV_ECANCELED)
        return;
    dial_attempt *a = d->attempt;
    d->attempt = NULL;
    if (status < 0) {
        d->last_error = status;
        uv_close((uv_handle_t *)&a->tcp, on_failed_attempt_closed);
        return;
    }
    d->pending--; /* the handle is the caller's now: its close no longer comes back here */
    a->tcp.data = NULL;
    finish(d, &a->tcp, DIAL_OK, "%s", "");
}

/* The next address to try: the literal (once), else the resolver's list. */
static const struct sockaddr *next_address(dial *d)
{
    if (d->literal.ss_family != AF_UNSPEC) {
        if (d->literal_tried)
            return NULL;
        d->literal_tried = true;
        return (const struct sockaddr *)&d->literal;
    }
    while (d->ai_next) {
        struct addrinfo *a = d->ai_next;
        d->ai_next = a->ai_next;
        if (a->ai_family == AF_INET || a->ai_family == AF_INET6)
            return a->ai_addr;
    }
    return NULL;
}

static void connect_next(dial *d)
{
    for (const struct sockaddr *sa; (sa = next_address(d));) {
        dial_attempt *a = malloc(sizeof *a);
        if (!a) {
            finish(d, NULL, DIAL_E_NOMEM, "cannot connect to %s port %u: out of memory", d->host, d->port);
            return;
        }
        int rc = uv_tcp_init(d->loop, &a->tcp);
        if (rc < 0) {
            free(a);
            d->last_error = rc;
            continue;
        }
        a->tcp.data = d;
        a->req.data = d;
        d->attempt = a;
        d->pending++;
        rc = uv_tcp_connect(&a->req, &a->tcp, sa, on_connect);
        if (rc == 0)
            return;
        d->last_error = rc;
        d->attempt = NULL;
        uv_close((uv_handle_t *)&a->tcp, on_failed_attempt_closed);
        return;
    }
    finish(d, NULL, DIAL_E_CONNECT, "cannot connect to %s port %u: %s", d->host, d->port,
           d->last_error ? uv_strerror(d->last_error) : "no address");
}

/* ---- name lookups ---- */

static void *lookup_run(void *arg)
{
    dial_lookup *l = arg;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG };
    l->rc = getaddrinfo(l->host, l->service, &hints, &l->ai);
    uv_async_send(&l->async); /* after this the thread touches nothing of l */
    return NULL;
}

static void lookup_closed(uv_handle_t *h)
{
    dial_lookup *l = h->data;
    if (l->ai)
        freeaddrinfo(l->ai);
    free(l);
}

static void on_lookup_done(uv_async_t *a)
{
    dial_lookup *l = a->data;
    dial *d = l->d;
    uv_close((uv_handle_t *)&l->async, lookup_closed);
    if (!d)
        return;
    d->lookup = NULL;
    d->pending--; /* not the last: the timer is open while the dial is not over */
    if (l->rc != 0) {
        finish(d, NULL, DIAL_E_RESOLVE, "cannot resolve %s: %s", d->host, gai_strerror(l->rc));
        return;
    }
    d->ai = d->ai_next = l->ai;
    l->ai = NULL;
    connect_next(d);
}

/* Starts the lookup of d->host. 0, or a negative errno (nothing started). */
static int lookup_start(dial *d)
{
    dial_lookup *l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    snprintf(l->host, sizeof l->host, "%s", d->host);
    snprintf(l->service, sizeof l->service, "%u", (unsigned)d->port);
    int rc = uv_async_init(d->loop, &l->async, on_lookup_done);
    if (rc < 0) {
        free(l);
        return rc;
    }
    l->async.data = l;
    pthread_attr_t attr;
    pthread_t tid;
    rc = pthread_attr_init(&attr);
    if (rc == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        rc = pthread_create(&tid, &attr, lookup_run, l);
        pthread_attr_destroy(&attr);
    }
    if (rc != 0) {
        uv_close((uv_handle_t *)&l->async, lookup_closed);
        return -rc;
    }
    l->d = d;
    d->lookup = l;
    d->pending++;
    return 0;
}

/* ---- the start and the time limit ---- */

static void on_timeout(uv_timer_t *t)
{
    dial *d = t->data;
    finish(d, NULL, DIAL_E_TIMEOUT, "no connection to %s port %u within %llu ms", d->host, d->port,
           (unsigned long long)d->timeout_ms);
}

static void on_begin(uv_timer_t *t)
{
    dial *d = t->data;
    if (d->timeout_ms)
        uv_timer_start(&d->timer, on_timeout, d->timeout_ms, 0);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&d->literal;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&d->literal;
    if (uv_ip4_addr(d->host, d->port, v4) == 0 || uv_ip6_addr(d->host, d->port, v6) == 0) {
        connect_next(d); /* an address literal: no resolver, no thread */
        return;
    }
    memset(&d->literal, 0, sizeof d->literal);
    int rc = lookup_start(d);
    if (rc < 0)
        finish(d, NULL, DIAL_E_RESOLVE, "cannot resolve %s: no resolver thread: %s", d->host, uv_strerror(rc));
}

dial *dial_start(uv_loop_t *loop, const char *host, uint16_t port, uint64_t connect_timeout_ms, dial_cb cb,
                 void *arg)
{
    if (!loop || !host || !host[0] || !cb)
        return NULL;
    dial *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->host = strdup(host);
    if (!d->host || uv_timer_init(loop, &d->timer) < 0) {
        free(d->host);
        free(d);
        return NULL;
    }
    d->loop = loop;
    d->port = port;
    d->timeout_ms = connect_timeout_ms;
    d->cb = cb;
    d->arg = arg;
    d->timer.data = d;
    d->pending = 1; /* the timer */
    uv_timer_start(&d->timer, on_begin, 0, 0);
    return d;
}
