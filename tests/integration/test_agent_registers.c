/* test_agent_registers.c — an agent started against a running devplane registers, connects and sends its first
 * heartbeat at once, and reports the same identity on its own status server; its start-up takes the short way
 * (credentials fetched while the C&C socket connects) without letting a task run before the registry credentials
 * are in place. */
#include "harness.h"
#include "taskplane.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

/* Whether a Prometheus page has a sample (not a comment) whose metric name contains word. */
static bool metrics_has_sample(const char *page, const char *word) {
    for (const char *line = page; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (*line == '#' || *line == '\n') continue;
        size_t name_len = strcspn(line, "{ \n");
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(name_len < sizeof name ? name_len : sizeof name - 1), line);
        if (strstr(name, word)) return true;
    }
    return false;
}

/* The first heartbeat (4 idle slots, plan_limit 3, state "ready") reaches the devplane within 1 s of the agent's
 * start; /v1/status shows the id the devplane issued and connected true; /metrics has a connection-state metric
 * and a heartbeat counter. */
static void first_heartbeat_reaches_devplane_within_1s(void **state) {
    harness *h = *state;
    harness_devplane dp = { 0 };
    harness_agent ag;
    char id[128];
    int64_t ms = harness_start_pair(h, &dp, &ag, NULL, id, sizeof id);
    assert_true(ms >= 0);
    print_message("first heartbeat visible %lld ms after the agent's start\n", (long long)ms);
    assert_true(ms <= 1000);

    cJSON *doc = harness_admin_agents(&dp);
    const cJSON *row = harness_agent_row(doc, id);
    assert_non_null(row);
    harness_assert_str(harness_json_str(row, "name"), "agent-it");
    harness_assert_str(harness_json_str(row, "pool_id"), dp.pool);
    const cJSON *hb = cJSON_GetObjectItemCaseSensitive(row, "last_heartbeat");
    assert_true(cJSON_IsObject(hb));
    const cJSON *slots = cJSON_GetObjectItemCaseSensitive(hb, "slots");
    assert_true(cJSON_IsArray(slots));
    assert_int_equal(cJSON_GetArraySize(slots), 4);
    const cJSON *slot;
    int i = 0;
    cJSON_ArrayForEach(slot, slots) {
        assert_int_equal((int)harness_json_num(slot, "slot_id", -1), i++);
        harness_assert_str(harness_json_str(slot, "status"), "idle");
    }
    assert_int_equal((int)harness_json_num(hb, "plan_limit", -1), 3);
    assert_int_equal((int)harness_json_num(hb, "plan_running", -1), 0);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(hb, "apply_running")));
    harness_assert_str(harness_json_str(hb, "state"), "ready");
    cJSON_Delete(doc);

    cJSON *st = harness_agent_status(&ag);
    assert_non_null(st);
    harness_assert_str(harness_json_str(st, "agent_id"), id);
    harness_assert_str(harness_json_str(st, "pool_id"), dp.pool);
    harness_assert_str(harness_json_str(st, "name"), "agent-it");
    harness_assert_str(harness_json_str(st, "state"), "ready");
    assert_true(harness_json_true(st, "registered"));
    assert_true(harness_json_true(st, "connected"));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(st, "slots")), 4);
    cJSON_Delete(st);

    char url[256];
    harness_resp r;
    harness_agent_url(&ag, "/metrics", url, sizeof url);
    assert_int_equal(harness_http("GET", url, NULL, NULL, &r), 200);
    bool conn = metrics_has_sample(r.body, "connect"), beats = metrics_has_sample(r.body, "heartbeat");
    if (!conn || !beats) print_message("/metrics:\n%s\n", r.body);
    harness_resp_free(&r);
    assert_true(conn);
    assert_true(beats);
    harness_done(h);
}

static bool file_exists(void *path) { return access(path, F_OK) == 0; }

/* The pool's registry credentials (set at the devplane) land in $HOME/.terraform.d/credentials.tfrc.json, mode
 * 0600, by the time the agent is connected. */
static void pool_secrets_become_credentials_file(void **state) {
    harness *h = *state;
    harness_devplane dp = { 0 };
    harness_agent ag;
    harness_devplane_init(h, &dp);
    assert_int_equal(harness_devplane_start(h, &dp), 0);
    char url[256];
    harness_resp r;
    harness_devplane_url(&dp, "/admin/secrets", url, sizeof url);
    assert_int_equal(harness_http("PUT", url, NULL,
                                  "{\"credentials\":{\"app.terraform.io\":{\"token\":\"cred-it-7d1c\"}}}", &r), 200);
    harness_resp_free(&r);
    assert_true(harness_start_pair(h, &dp, &ag, NULL, NULL, 0) >= 0);

    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/.terraform.d/credentials.tfrc.json", h->home);
    /* Written before the C&C connection (lifecycle order); the wait only absorbs a slow file system. */
    assert_true(harness_wait_until(file_exists, path, 1000) >= 0);
    char *text = harness_read_file(path, NULL);
    assert_non_null(text);
    cJSON *doc = cJSON_Parse(text);
    free(text);
    const cJSON *host = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "credentials"),
                                                         "app.terraform.io");
    harness_assert_str(harness_json_str(host, "token"), "cred-it-7d1c");
    cJSON_Delete(doc);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    harness_done(h);
}

/* ---- a proxy in front of the devplane's API that can hold the answer to GET /pool/secrets ---------------------- */

#define PROXY_CONNS 32
#define PROXY_LOG   64

typedef struct {
    int             listen_fd;
    int             port, upstream_port;
    pthread_t       acceptor;
    pthread_t       pipes[PROXY_CONNS];
    int             n_pipes;
    pthread_mutex_t mu;
    bool            hold_secrets; /* answers to GET /api/v1/agents/pool/secrets wait while set */
    bool            stop;
    char            log[PROXY_LOG][96]; /* request lines as they pass ("GET /api/v1/…"), and "released" */
    int             n_log;
} proxy;

typedef struct {
    proxy *p;
    int    down, up; /* the agent's side, the devplane's side */
} proxy_pipe;

static bool proxy_flag(proxy *p, const bool *flag) {
    pthread_mutex_lock(&p->mu);
    bool v = *flag;
    pthread_mutex_unlock(&p->mu);
    return v;
}

static void proxy_note(proxy *p, const char *line, size_t len) {
    pthread_mutex_lock(&p->mu);
    if (p->n_log < PROXY_LOG) {
        snprintf(p->log[p->n_log], sizeof p->log[0], "%.*s", (int)(len < 95 ? len : 95), line);
        p->n_log++;
    }
    pthread_mutex_unlock(&p->mu);
}

static bool write_all(int fd, const char *b, ssize_t n) {
    while (n > 0) {
        ssize_t w = write(fd, b, (size_t)n);
        if (w <= 0) return false;
        b += w;
        n -= w;
    }
    return true;
}

/* One connection: bytes both ways; once a request for the pool secrets passes while hold_secrets is set, the
 * devplane's bytes on this connection wait until it is cleared. */
static void *proxy_pipe_main(void *arg) {
    proxy_pipe *c = arg;
    proxy *p = c->p;
    bool holding = false;
    char buf[65536];
    while (!proxy_flag(p, &p->stop)) {
        if (holding && !proxy_flag(p, &p->hold_secrets)) holding = false;
        struct pollfd fds[2] = { { c->down, POLLIN, 0 }, { c->up, holding ? 0 : POLLIN, 0 } };
        if (poll(fds, 2, 10) <= 0) continue;
        if (fds[0].revents) {
            ssize_t n = read(c->down, buf, sizeof buf);
            if (n <= 0) break;
            if (buf[0] >= 'A' && buf[0] <= 'Z') { /* a request line: loopback delivers each request whole */
                size_t len = strcspn(buf, "?\r\n");
                proxy_note(p, buf, len < (size_t)n ? len : (size_t)n);
                if (strncmp(buf, "GET /api/v1/agents/pool/secrets", 31) == 0 && proxy_flag(p, &p->hold_secrets))
                    holding = true;
            }
            if (!write_all(c->up, buf, n)) break;
        }
        if (!holding && fds[1].revents) {
            ssize_t n = read(c->up, buf, sizeof buf);
            if (n <= 0 || !write_all(c->down, buf, n)) break;
        }
    }
    close(c->down);
    close(c->up);
    free(c);
    return NULL;
}

static void *proxy_accept_main(void *arg) {
    proxy *p = arg;
    while (!proxy_flag(p, &p->stop)) {
        struct pollfd pf = { p->listen_fd, POLLIN, 0 };
        if (poll(&pf, 1, 10) <= 0) continue;
        int down = accept(p->listen_fd, NULL, NULL);
        if (down < 0) continue;
        int up = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)p->upstream_port) };
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        proxy_pipe *c = malloc(sizeof *c);
        if (up < 0 || !c || p->n_pipes == PROXY_CONNS || connect(up, (struct sockaddr *)&a, sizeof a) < 0) {
            close(down);
            if (up >= 0) close(up);
            free(c);
            continue;
        }
        *c = (proxy_pipe){ p, down, up };
        if (pthread_create(&p->pipes[p->n_pipes], NULL, proxy_pipe_main, c) == 0)
            p->n_pipes++;
        else {
            close(down);
            close(up);
            free(c);
        }
    }
    return NULL;
}

static void proxy_start(proxy *p, int upstream_port) {
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    p->upstream_port = upstream_port;
    p->hold_secrets = true;
    p->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(p->listen_fd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    assert_int_equal(bind(p->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(p->listen_fd, 16), 0);
    assert_int_equal(getsockname(p->listen_fd, (struct sockaddr *)&a, &alen), 0);
    p->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&p->acceptor, NULL, proxy_accept_main, p), 0);
}

static void proxy_release(proxy *p) {
    pthread_mutex_lock(&p->mu);
    p->hold_secrets = false;
    if (p->n_log < PROXY_LOG) snprintf(p->log[p->n_log++], sizeof p->log[0], "released");
    pthread_mutex_unlock(&p->mu);
}

static void proxy_stop(proxy *p) {
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->acceptor, NULL);
    for (int i = 0; i < p->n_pipes; i++) pthread_join(p->pipes[i], NULL);
    close(p->listen_fd);
    pthread_mutex_destroy(&p->mu);
}

/* Position of the first log line starting with prefix (or containing it, for a path), -1 when none. */
static int proxy_find(proxy *p, const char *needle) {
    int at = -1;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->n_log && at < 0; i++)
        if (strstr(p->log[i], needle)) at = i;
    pthread_mutex_unlock(&p->mu);
    return at;
}

static bool proxy_saw_secrets(void *arg) { return proxy_find(arg, "/pool/secrets") >= 0; }

static void proxy_dump(proxy *p) {
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->n_log; i++) print_message("proxy %2d: %s\n", i, p->log[i]);
    pthread_mutex_unlock(&p->mu);
}

/* The registry credentials are fetched while the C&C socket connects, not before: with the answer to GET
 * /pool/secrets held back, the agent still connects and heartbeats. A run_task that arrives meanwhile waits for
 * the credentials — no task call reaches the plane while they are held — and runs once they are written, so a
 * task never starts without them (what upstream's order guarantees). The agent's new identity is on disk once it
 * is connected. */
static void credentials_are_fetched_while_the_socket_connects(void **state) {
    harness *h = *state;
    harness_devplane dp = { 0 };
    harness_agent ag;
    harness_env env = { 0 };
    static proxy px; /* static: a failed assertion leaves its threads running, on memory that stays valid */
    char url[256], v[32];
    harness_resp r;

    harness_devplane_init(h, &dp);
    assert_int_equal(harness_devplane_start(h, &dp), 0);
    harness_devplane_url(&dp, "/admin/secrets", url, sizeof url);
    assert_int_equal(harness_http("PUT", url, NULL,
                                  "{\"credentials\":{\"app.terraform.io\":{\"token\":\"cred-held-51\"}}}", &r), 200);
    harness_resp_free(&r);
    proxy_start(&px, dp.api_port);
    tp_agent_env(h, &ag, &dp, &env, "agent-it");
    snprintf(v, sizeof v, "%d", px.port);
    harness_env_set(&env, "SERVER_PORT", v); /* CC_SERVER_PORT stays the devplane's */
    assert_non_null(harness_agent_start(h, &ag, &env));
    harness_env_free(&env);

    harness_hb_wait hw = { .dp = &dp, .min_heartbeats = 1 };
    bool connected = harness_wait_until(harness_pred_heartbeat, &hw, 5000) >= 0;
    if (!connected) proxy_dump(&px);
    assert_true(connected);
    assert_true(harness_wait_until(proxy_saw_secrets, &px, 2000) >= 0); /* the proxy's threads may lag a little */

    char ws[64];
    tp_create_workspace(&dp, TP_WORKSPACE_TWO, "held-ws", ws, sizeof ws);
    long id = tp_queue_task(&dp, ws, "plan");
    cJSON_Delete(tp_wait_task(&dp, id, "running", 5000)); /* dispatched: run_task is on its way to the agent */
    usleep(300 * 1000); /* time enough for a task's first call, had it started */
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/.terraform.d/credentials.tfrc.json", h->home);
    if (proxy_find(&px, "/tasks/") >= 0) proxy_dump(&px);
    assert_int_equal(proxy_find(&px, "/tasks/"), -1);
    assert_int_not_equal(access(path, F_OK), 0);

    proxy_release(&px);
    cJSON_Delete(tp_wait_task(&dp, id, "success", 10000));
    assert_int_equal(access(path, F_OK), 0);
    assert_true(proxy_find(&px, "/tasks/") > proxy_find(&px, "released"));

    char statef[PATH_MAX];
    snprintf(statef, sizeof statef, "%s/state.json", ag.data_dir);
    assert_true(harness_file_contains(statef, hw.found_id));

    harness_kill(ag.proc, SIGTERM);
    assert_int_equal(harness_wait_exit(ag.proc, 5000, NULL), 0);
    proxy_stop(&px);
    harness_done(h);
}

/* A listening socket on loopback whose accept queue is full: a further connect() hangs (its SYNs are dropped), the
 * way a plane that does not answer looks. Returns its port; *fds receive the listener and the queued clients. */
static int stuck_listener(int fds[3]) {
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(fds[0], (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fds[0], 0), 0);
    assert_int_equal(getsockname(fds[0], (struct sockaddr *)&a, &alen), 0);
    for (int i = 1; i < 3; i++) { /* fill the queue; the second may itself stay pending, which is as good */
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        connect(fds[i], (struct sockaddr *)&a, sizeof a);
    }
    usleep(20 * 1000);
    return ntohs(a.sin_port);
}

static bool healthz_answers(void *arg) {
    const harness_agent *ag = arg;
    char url[256];
    harness_resp r;
    harness_agent_url(ag, "/healthz", url, sizeof url);
    long st = harness_http("GET", url, NULL, NULL, &r);
    harness_resp_free(&r);
    return st == 200;
}

/* The status server never waits for the plane: with a plane whose connect() hangs, /healthz answers at once, and
 * SIGTERM still ends the agent cleanly. */
static void status_server_does_not_wait_for_the_plane(void **state) {
    harness *h = *state;
    harness_devplane dp = { 0 };
    harness_agent ag;
    harness_env env = { 0 };
    int fds[3];
    char v[32];
    harness_devplane_init(h, &dp); /* ports and token only: nothing listens there */
    harness_agent_env(h, &ag, &dp, &env);
    snprintf(v, sizeof v, "%d", stuck_listener(fds));
    harness_env_set(&env, "SERVER_PORT", v);
    assert_non_null(harness_agent_start(h, &ag, &env));
    harness_env_free(&env);
    int64_t ms = harness_wait_until(healthz_answers, &ag, 2000);
    assert_true(ms >= 0);
    print_message("/healthz answered %lld ms after the start, the plane silent\n", (long long)ms);
    harness_kill(ag.proc, SIGTERM);
    assert_int_equal(harness_wait_exit(ag.proc, 5000, NULL), 0);
    for (int i = 0; i < 3; i++) close(fds[i]);
    harness_done(h);
}

/* The status server listens before anything reaches the plane: an agent whose status port is taken exits 1 saying
 * so, and the devplane has no registration from it. */
static void a_taken_status_port_stops_the_agent_before_it_registers(void **state) {
    harness *h = *state;
    harness_devplane dp = { 0 };
    harness_agent ag;
    harness_env env = { 0 };
    harness_devplane_init(h, &dp);
    assert_int_equal(harness_devplane_start(h, &dp), 0);
    harness_agent_env(h, &ag, &dp, &env);
    int busy = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)ag.status_port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(busy, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(busy, 1), 0);
    assert_non_null(harness_agent_start(h, &ag, &env));
    harness_env_free(&env);
    assert_int_equal(harness_wait_exit(ag.proc, 5000, NULL), 1);
    assert_true(harness_file_contains(ag.proc->err_path, "cannot listen on"));
    cJSON *doc = harness_admin_agents(&dp);
    assert_non_null(doc);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "agents")), 0);
    cJSON_Delete(doc);
    close(busy);
    harness_done(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(first_heartbeat_reaches_devplane_within_1s, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(pool_secrets_become_credentials_file, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(credentials_are_fetched_while_the_socket_connects, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(status_server_does_not_wait_for_the_plane, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(a_taken_status_port_stops_the_agent_before_it_registers, harness_setup,
                                        harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
