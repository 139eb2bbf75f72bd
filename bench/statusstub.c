/* statusstub.c — one process that answers GET /v1/status as 1,000 agents would, for row 5 (bench/coordcycle.sh).
 *
 * The coordinator's cycle asks every Ready pod's agent for its slots at http://<pod IP>:<agent port>/v1/status.
 * kube-fake runs one real agent per pod on 127.0.0.N, which stops at .250 and would cost a thousand processes; with
 * kube-fake --no-kubelet the pods are plain objects, and this stub stands in for all their agents: it listens on
 * COUNT loopback addresses from --first (Linux routes all of 127.0.0.0/8 to lo; addresses ending in .0 or .255 are
 * skipped) on one port, each answering with the status of its own agent in the shape agent/status.c writes —
 * 4 slots, most pods idle, some running plans or drift checks, some applying, a few with slot 0 reserved for an
 * approved plan (the table below, by address index). Each address is a server of common/https, the agent's own
 * status server, so an answer costs what the agent's would; bodies are rendered once at start and never change.
 *
 *   statusstub --first 127.0.1.1 --count 1000 --port 0 --ready-file F [--name-prefix P] [--pool-id ID]
 *
 * Once every address listens, writes {"pid":N,"port":N,"count":N,"addresses":["127.0.1.1",…]} to F (temporary file
 * + rename); --port 0 takes an ephemeral port on the first address and the same port on the others. Each address
 * holds three descriptors (one lws context each), so the soft limit on open files is raised to what COUNT needs; a
 * hard limit below that is an error. SIGTERM or SIGINT: prints the number of requests answered on stderr, closes
 * every server (a few seconds for 1,000) and exits 0.
 * Exit 1: an address cannot be bound or the ready file written; 2: a bad flag. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <libwebsockets.h>
#include <uv.h>

#include "iac/config.h"
#include "iac/fsutil.h"
#include "iac/https.h"
#include "iac/strbuf.h"

#ifndef IAC_VERSION
#define IAC_VERSION "dev"
#endif

#define PROG          "statusstub"
#define COUNT_MAX     16000
#define FDS_PER_ADDR  3   /* per lws context: the listener, an eventfd and /dev/urandom */
#define FDS_SPARE     256 /* connections in flight (the coordinator opens at most 64 at once), stdio, the loop */
#define SLOTS         4

extern char **environ;

/* What a pod's agent is doing, by its address index modulo the table: one letter per slot. '.' idle; 'p' a plan
 * and 'd' a drift check running in a plan slot; in slot 0, 'A' a plan_and_apply planning, 'a' applying, 'R'
 * reserved (its plan approved, the apply not yet sent). 11 of 20 pods are idle; 2 hold a reservation. */
static const char *const shapes[] = {
    "....", "....", "....", "....", "....", "....", ".p..", "....", "....", ".pp.",
    "....", "A...", ".pd.", "R...", "....", "....", "Ap..", "a..d", "Rp..", ".ppp",
};

typedef struct {
    const char *first, *ready_file, *name_prefix, *pool_id;
    int64_t     count, port;
} stub_config;

typedef struct stub stub;

typedef struct {
    stub         *s;
    char          ip[INET_ADDRSTRLEN];
    strbuf        body; /* the /v1/status answer, rendered once */
    https_server *srv;
} stub_addr;

struct stub {
    uv_loop_t   loop;
    stub_config cfg;
    stub_addr  *addrs;
    int         naddrs;
    uint64_t    answered;
    uv_signal_t signals[2];
};

/* ---- the status documents ---- */

/* The slot of shape letter c, as agent/status.c writes it (status_write_json). */
static void write_slot(strbuf *b, int i, char c, uint64_t task_id, long long since)
{
    static const struct {
        char        letter;
        const char *status, *type, *action;
    } letters[] = {
        { 'p', "running", "plan", "plan" },
        { 'd', "running", "drift_check", "plan" },
        { 'A', "running", "plan_and_apply", "plan" },
        { 'a', "running", "plan_and_apply", "apply" },
        { 'R', "reserved", "plan_and_apply", "apply" },
    };
    for (size_t k = 0; k < sizeof letters / sizeof letters[0]; k++)
        if (letters[k].letter == c) {
            strbuf_printf(b, "%s{\"slot_id\":%d,\"status\":\"%s\",\"since\":%lld,\"task_id\":%" PRIu64
                             ",\"task_type\":\"%s\",\"action\":\"%s\"}",
                          i ? "," : "", i, letters[k].status, since, task_id, letters[k].type, letters[k].action);
            return;
        }
    strbuf_printf(b, "%s{\"slot_id\":%d,\"status\":\"idle\",\"since\":%lld,\"task_id\":null}", i ? "," : "", i,
                  since);
}

/* The agent of address index n: an agent id and a name of its own, started an hour ago, its slots busy since a
 * few minutes (different per slot and pod). */
static void render_status(const stub *s, int n, long long now, strbuf *b)
{
    const char *shape = shapes[n % (int)(sizeof shapes / sizeof shapes[0])];
    strbuf_printf(b, "{\"agent_id\":\"5eb1c0de-%04x-4%03x-8000-%012x\",\"pool_id\":\"", (unsigned)(n >> 12) & 0xffff,
                  (unsigned)n & 0xfff, (unsigned)n);
    strbuf_json_escape(b, s->cfg.pool_id, strlen(s->cfg.pool_id));
    strbuf_puts(b, "\",\"name\":\"");
    strbuf_json_escape(b, s->cfg.name_prefix, strlen(s->cfg.name_prefix));
    strbuf_printf(b, "%04d\",\"version\":\"%s\",\"state\":\"ready\",\"phase\":\"connected\",\"registered\":true,"
                     "\"connected\":true,\"ready\":true,\"started_at\":%lld,\"slots\":[",
                  n, IAC_VERSION, now - 3600 - n % 600);
    for (int i = 0; i < SLOTS; i++)
        write_slot(b, i, shape[i], 1000000 + (uint64_t)n * SLOTS + (uint64_t)i, now - (n * 7 + i * 13) % 600);
    strbuf_puts(b, "]}");
}

/* ---- serving ---- */

static void handle(const https_request *req, https_response *res, void *arg)
{
    stub_addr *a = arg;
    if (strcmp(req->path, "/v1/status") != 0 && strcmp(req->path, "/readyz") != 0 &&
        strcmp(req->path, "/healthz") != 0) {
        https_reply_error(res, 404, "not found");
        return;
    }
    if (strcmp(req->method, "GET") != 0) {
        https_reply_error(res, 405, "method not allowed");
        return;
    }
    a->s->answered++;
    if (strcmp(req->path, "/v1/status") == 0) {
        strbuf_append(&res->body, a->body.data, a->body.len);
    } else {
        res->content_type = "text/plain";
        strbuf_puts(&res->body, "ok\n");
    }
}

static void signal_closed(uv_handle_t *h) { (void)h; }

static void stop(stub *s)
{
    for (int i = 0; i < s->naddrs; i++) {
        https_free(s->addrs[i].srv);
        s->addrs[i].srv = NULL;
    }
    for (int i = 0; i < 2; i++)
        if (!uv_is_closing((uv_handle_t *)&s->signals[i]))
            uv_close((uv_handle_t *)&s->signals[i], signal_closed);
}

/* The count first: tearing 1,000 lws contexts down takes a few seconds. */
static void on_signal(uv_signal_t *h, int signum)
{
    stub *s = h->data;
    fprintf(stderr, PROG ": signal %d: answered %" PRIu64 " requests; stopping\n", signum, s->answered);
    stop(s);
}

/* ---- setting up ---- */

/* The count addresses from first: consecutive, skipping those ending in .0 or .255, all inside 127.0.0.0/8. */
static int plan_addresses(stub *s, char *err, size_t errlen)
{
    struct in_addr in;
    if (inet_pton(AF_INET, s->cfg.first, &in) != 1 || (ntohl(in.s_addr) >> 24) != 127) {
        snprintf(err, errlen, "--first=\"%s\" is not allowed: must be an IPv4 address in 127.0.0.0/8", s->cfg.first);
        return -1;
    }
    s->addrs = calloc((size_t)s->cfg.count, sizeof *s->addrs);
    if (!s->addrs) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    uint32_t a = ntohl(in.s_addr);
    for (int i = 0; i < s->cfg.count; a++) {
        if ((a >> 24) != 127) {
            snprintf(err, errlen, "--count=%" PRId64 " from --first=%s runs past 127.255.255.254", s->cfg.count,
                     s->cfg.first);
            return -1;
        }
        if ((a & 0xff) == 0 || (a & 0xff) == 255)
            continue;
        struct in_addr out = { htonl(a) };
        stub_addr *sa = &s->addrs[i++];
        sa->s = s;
        inet_ntop(AF_INET, &out, sa->ip, sizeof sa->ip);
    }
    return 0;
}

/* Each address costs FDS_PER_ADDR descriptors: take what the hard limit allows, and say so when it is too low. */
static int raise_fd_limit(int64_t count, char *err, size_t errlen)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)count * FDS_PER_ADDR + FDS_SPARE;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        snprintf(err, errlen, "getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
        return -1;
    }
    if (rl.rlim_cur >= need)
        return 0;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
        snprintf(err, errlen, "%" PRId64 " addresses need %llu open files, the hard limit is %llu (raise it with "
                 "ulimit -Hn, or use fewer addresses)", count, (unsigned long long)need,
                 (unsigned long long)rl.rlim_max);
        return -1;
    }
    rl.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
        snprintf(err, errlen, "setrlimit(RLIMIT_NOFILE, %llu): %s", (unsigned long long)need, strerror(errno));
        return -1;
    }
    return 0;
}

static int listen_all(stub *s, char *err, size_t errlen)
{
    long long now = (long long)time(NULL);
    int port = (int)s->cfg.port;
    for (int i = 0; i < (int)s->cfg.count; i++) {
        stub_addr *a = &s->addrs[i];
        render_status(s, i, now, &a->body);
        if (!a->body.data) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        const https_opts o = { a->ip, port, 4096, handle, a };
        a->srv = https_listen(&s->loop, &o, err, errlen);
        if (!a->srv)
            return -1;
        s->naddrs++;
        port = https_port(a->srv); /* --port 0: the first address's ephemeral port for every other */
    }
    s->cfg.port = port;
    return 0;
}

static int write_ready_file(const stub *s)
{
    strbuf b = STRBUF_INIT;
    strbuf_printf(&b, "{\"pid\":%d,\"port\":%" PRId64 ",\"count\":%d,\"addresses\":[", (int)getpid(), s->cfg.port,
                  s->naddrs);
    for (int i = 0; i < s->naddrs; i++)
        strbuf_printf(&b, "%s\"%s\"", i ? "," : "", s->addrs[i].ip);
    strbuf_puts(&b, "]}\n");
    int rc = b.data ? fs_write_atomic(s->cfg.ready_file, b.data, b.len, 0644) : -ENOMEM;
    strbuf_free(&b);
    return rc;
}

static void stub_free(stub *s)
{
    for (int i = 0; s->addrs && i < (int)s->cfg.count; i++)
        strbuf_free(&s->addrs[i].body);
    free(s->addrs);
}

int main(int argc, char **argv)
{
    static stub s; /* main's only state */
    stub_config *c = &s.cfg;
    const cfg_option table[] = {
        { NULL, "first", CFG_STRING, &c->first, NULL, "127.0.1.1", 1, 0, NULL, "first address",
          "first address to listen on (127.0.0.0/8; .0 and .255 are skipped)", false, false },
        { NULL, "count", CFG_INT, &c->count, NULL, "1000", 1, COUNT_MAX, NULL, "count", "addresses to listen on",
          false, false },
        { NULL, "port", CFG_PORT, &c->port, NULL, "0", 0, 65535, NULL, "port",
          "port on every address (0: an ephemeral one, read it from the ready file)", false, false },
        { NULL, "ready-file", CFG_STRING, &c->ready_file, NULL, NULL, 1, 0, NULL, "ready file",
          "once listening, write {\"pid\",\"port\",\"count\",\"addresses\"} here (atomically)", true, false },
        { NULL, "name-prefix", CFG_STRING, &c->name_prefix, NULL, "iac-agent-", 0, 0, NULL, "name prefix",
          "agent names are this followed by the address index (%04d)", false, false },
        { NULL, "pool-id", CFG_STRING, &c->pool_id, NULL, "pool-bench", 1, 0, NULL, "pool id",
          "pool_id of every agent", false, false },
    };
    const size_t n = sizeof table / sizeof table[0];
    char err[1024];
    int rc = cfg_parse(table, n, argc, argv, environ, NULL, NULL, err, sizeof err);
    if (rc == CFG_HELP) {
        printf("Usage: " PROG " [flags]\n\nAnswers GET /v1/status as COUNT iac-agents would, one per loopback address, "
               "for bench/coordcycle.sh.\n\n");
        cfg_print_help(stdout, table, n);
        return 0;
    }
    if (rc == CFG_VERSION) {
        printf(PROG " %s\n", IAC_VERSION);
        return 0;
    }
    if (rc != CFG_OK || plan_addresses(&s, err, sizeof err) < 0) {
        fprintf(stderr, PROG ": %s\n", err);
        stub_free(&s);
        return 2;
    }
    if (raise_fd_limit(c->count, err, sizeof err) < 0) {
        fprintf(stderr, PROG ": %s\n", err);
        stub_free(&s);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    lws_set_log_level(LLL_ERR, NULL);
    uv_loop_init(&s.loop);
    static const int signums[2] = { SIGTERM, SIGINT };
    for (int i = 0; i < 2; i++) {
        uv_signal_init(&s.loop, &s.signals[i]);
        s.signals[i].data = &s;
        uv_signal_start(&s.signals[i], on_signal, signums[i]);
    }
    int status = 0;
    if (listen_all(&s, err, sizeof err) < 0) {
        fprintf(stderr, PROG ": %s\n", err);
        status = 1;
        stop(&s);
    } else if ((rc = write_ready_file(&s)) < 0) {
        fprintf(stderr, PROG ": cannot write the ready file %s: %s\n", c->ready_file, strerror(-rc));
        status = 1;
        stop(&s);
    } else {
        fprintf(stderr, PROG ": %d addresses from %s listening on port %" PRId64 "\n", s.naddrs, s.addrs[0].ip,
                c->port);
    }
    uv_run(&s.loop, UV_RUN_DEFAULT);
    uv_loop_close(&s.loop);
    stub_free(&s);
    return status;
}
