/* test_ccli.c — `iac-coordinator status|explain` (coordinator/ccli.h).
 *
 * Formatting is checked on canned documents of the API's shape with a fixed clock, as whole outputs. Fetching is
 * checked end to end against a small server (common/https) that serves the same documents from a second thread
 * on its own loop, because the commands run their own private loop and block until it ends; a closed port stands
 * in for a coordinator that is down. Output is captured with open_memstream (and, for ccli_main, by pointing the
 * process's stdout/stderr at temporary files). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <libwebsockets.h>
#include <uv.h>

#include "../../coordinator/ccli.h"
#include "iac/https.h"

#define NOW_MS 1700000000000LL

#define POD_SLOTS_IDLE                                                                                               \
    "[{\"slot_id\":0,\"status\":\"idle\",\"task_id\":null,\"task_type\":null,\"action\":null,\"since\":1699992800}," \
    "{\"slot_id\":1,\"status\":\"idle\",\"task_id\":null,\"task_type\":null,\"action\":null,\"since\":1699992800}," \
    "{\"slot_id\":2,\"status\":\"idle\",\"task_id\":null,\"task_type\":null,\"action\":null,\"since\":1699992800}]"

static const char pools_json[] =
    "{\"leader\":true,\"identity\":\"coord-1\",\"holder\":\"coord-1\",\"pools\":["
    "{\"id\":\"pool-a\",\"namespace\":\"terraform\",\"deployment\":\"iac-agent-pool-a\",\"min_replicas\":1,"
    "\"max_replicas\":5,\"slots_per_pod\":3,\"headroom\":{\"slot0\":1,\"plan\":2},\"observed\":true,"
    "\"observed_at\":1699999998,\"leader\":true,\"deployment_found\":true,\"deployment_error\":null,\"replicas\":3,"
    "\"ready_replicas\":2,\"desired\":4,\"starting_pods\":1,"
    "\"decision\":{\"reason\":\"scale up\",\"text\":\"needs 2 free slot 0s, 1 free; scaling 3\u21924\","
    "\"free_slot0\":1,\"need_slot0\":2,\"free_plan\":4,\"need_plan\":2,\"coming_pods\":1},"
    "\"config_error\":null,\"cycle_error\":null,\"last_action\":{\"text\":\"scaled 3\u21924\",\"at\":1699999995},"
    "\"counters\":{\"cycles\":12},\"pods\":["
    "{\"name\":\"iac-agent-pool-a-7d9f-abcde\",\"ip\":\"10.0.0.1\",\"phase\":\"Running\",\"ready\":true,"
    "\"terminating\":false,\"created\":1699996400,\"age\":3600,\"deletion_cost\":1000,\"agent_state\":\"ready\","
    "\"agent_error\":null,\"agent_id\":\"agent-0\",\"connected\":true,\"slots\":["
    "{\"slot_id\":0,\"status\":\"reserved\",\"task_id\":598,\"task_type\":\"plan_and_apply\",\"action\":\"apply\","
    "\"since\":1699999820},"
    "{\"slot_id\":1,\"status\":\"idle\",\"task_id\":null,\"task_type\":null,\"action\":null,\"since\":1699996400},"
    "{\"slot_id\":2,\"status\":\"running\",\"task_id\":801,\"task_type\":\"plan\",\"action\":\"plan\","
    "\"since\":1699999940}]},"
    "{\"name\":\"iac-agent-pool-a-7d9f-fghij\",\"ip\":\"10.0.0.2\",\"phase\":\"Running\",\"ready\":true,"
    "\"terminating\":false,\"created\":1699992800,\"age\":7200,\"deletion_cost\":0,\"agent_state\":\"draining\","
    "\"agent_error\":null,\"agent_id\":\"agent-1\",\"connected\":true,\"slots\":" POD_SLOTS_IDLE "},"
    "{\"name\":\"iac-agent-pool-a-7d9f-klmno\",\"ip\":null,\"phase\":\"Pending\",\"ready\":false,"
    "\"terminating\":false,\"created\":1699999988,\"age\":12,\"deletion_cost\":null,\"agent_state\":null,"
    "\"agent_error\":\"not Ready\",\"agent_id\":null,\"connected\":false,\"slots\":[]}]},"
    "{\"id\":\"pool-b\",\"namespace\":\"terraform\",\"deployment\":\"iac-agent-pool-b\",\"min_replicas\":1,"
    "\"max_replicas\":5,\"observed\":false,\"replicas\":0,\"ready_replicas\":0,\"desired\":0,\"decision\":null,"
    "\"config_error\":{\"reason\":\"deployment_not_found\",\"message\":\"deployment terraform/iac-agent-pool-b not "
    "found (check --namespace and --deployment)\",\"since\":1699999700},"
    "\"cycle_error\":\"GET deployments: HTTP 404\",\"last_action\":null,\"pods\":[]}]}";

static const char pools_text[] =
    "coordinator coord-1: leader\n"
    "\n"
    "pool pool-a  terraform/iac-agent-pool-a  replicas 3 current, 4 desired, 2 ready  min 1, max 5\n"
    "  decision: scale up: needs 2 free slot 0s, 1 free; scaling 3\u21924\n"
    "  last action: scaled 3\u21924 (5s ago)\n"
    "  NAME                         IP        READY  AGE     COST    STATE     SLOTS\n"
    "  iac-agent-pool-a-7d9f-abcde  10.0.0.1  yes    60m     1000    ready     0:reserved#598 1:idle 2:running#801\n"
    "  iac-agent-pool-a-7d9f-fghij  10.0.0.2  yes    2h00m   0       draining  0:idle 1:idle 2:idle\n"
    "  iac-agent-pool-a-7d9f-klmno  -         no     12s     -       starting  (agent: not Ready)\n"
    "\n"
    "pool pool-b  terraform/iac-agent-pool-b  replicas 0 current, 0 desired, 0 ready  min 1, max 5\n"
    "  not observed yet\n"
    "  CONFIG ERROR (deployment_not_found, for 5m): deployment terraform/iac-agent-pool-b not found (check "
    "--namespace and --deployment)\n"
    "  cycle error: GET deployments: HTTP 404\n"
    "  no pods\n";

static const char explain_json[] =
    "{\"task_id\":598,\"found\":true,\"pool\":\"pool-a\",\"pod\":\"iac-agent-pool-a-7d9f-abcde\",\"slot\":0,"
    "\"status\":\"reserved\",\"task_type\":\"plan_and_apply\",\"phase\":\"apply_pending: …\",\"since\":1699999820,"
    "\"waiting\":false,\"reasons\":[],\"text\":\"task 598: pool pool-a, pod iac-agent-pool-a-7d9f-abcde, slot 0 "
    "(reserved)\\n  apply_pending: plan done, slot 0 reserved for the apply 3 min ago, waiting for "
    "confirmation\\n\"}";

static const char explain_text[] =
    "task 598: pool pool-a, pod iac-agent-pool-a-7d9f-abcde, slot 0 (reserved)\n"
    "  apply_pending: plan done, slot 0 reserved for the apply 3 min ago, waiting for confirmation\n";

/* ---- capture ---- */

typedef struct {
    FILE  *f;
    char  *buf;
    size_t len;
} capture;

static void cap_open(capture *c)
{
    c->buf = NULL;
    c->len = 0;
    c->f = open_memstream(&c->buf, &c->len);
    assert_non_null(c->f);
}

static const char *cap_text(capture *c)
{
    fflush(c->f);
    return c->buf ? c->buf : "";
}

static void cap_close(capture *c)
{
    fclose(c->f);
    free(c->buf);
}

/* ---- formatting ---- */

/* The status of two pools prints exactly as a person reads it: header, decision, config error, and the pod table
 * with slot columns; the AGE column uses the given clock. */
static void status_prints_pools_and_pod_tables(void **state)
{
    (void)state;
    capture c;
    cap_open(&c);
    assert_int_equal(ccli_format_status(pools_json, strlen(pools_json), NOW_MS, c.f), 0);
    const char *got = cap_text(&c);
    if (strcmp(got, pools_text) != 0)
        fail_msg("got:\n%s\nwant:\n%s", got, pools_text);
    cap_close(&c);
}

/* A follower names the leader, or says none is known; no pools is said in words. */
static void status_names_the_leader_from_a_follower(void **state)
{
    (void)state;
    static const struct { const char *json, *want; } cases[] = {
        { "{\"leader\":false,\"identity\":\"coord-2\",\"holder\":\"coord-1\",\"pools\":[]}",
          "coordinator coord-2: follower, the leader is coord-1\n\nno pools configured\n" },
        { "{\"leader\":false,\"identity\":\"coord-2\",\"holder\":\"\",\"pools\":[]}",
          "coordinator coord-2: follower, no leader known\n\nno pools configured\n" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        capture c;
        cap_open(&c);
        assert_int_equal(ccli_format_status(cases[i].json, strlen(cases[i].json), NOW_MS, c.f), 0);
        assert_string_equal(cap_text(&c), cases[i].want);
        cap_close(&c);
    }
}

/* A pod that is terminating, whose agent is up but not connected to the plane, or whose process ended (phase
 * Failed), says so in STATE — a failed pod is not "starting". */
static void status_marks_terminating_and_disconnected_pods(void **state)
{
    (void)state;
    static const char json[] =
        "{\"leader\":true,\"identity\":\"c\",\"holder\":\"c\",\"pools\":[{\"id\":\"p\",\"namespace\":\"n\","
        "\"deployment\":\"d\",\"pods\":["
        "{\"name\":\"x\",\"ip\":\"10.0.0.9\",\"ready\":true,\"terminating\":true,\"age\":30,\"agent_state\":"
        "\"draining\",\"connected\":true,\"slots\":[]},"
        "{\"name\":\"y\",\"ip\":\"10.0.0.8\",\"ready\":true,\"age\":400000,\"agent_state\":\"ready\","
        "\"connected\":false,\"slots\":[{\"slot_id\":0,\"status\":\"idle\"}]},"
        "{\"name\":\"z\",\"ip\":\"10.0.0.7\",\"phase\":\"Failed\",\"ready\":false,\"age\":60,\"agent_state\":null,"
        "\"connected\":false,\"slots\":[]}]}]}";
    capture c;
    cap_open(&c);
    assert_int_equal(ccli_format_status(json, strlen(json), NOW_MS, c.f), 0);
    const char *got = cap_text(&c);
    assert_non_null(strstr(got, "  x     10.0.0.9  yes    30s     -       terminating   -\n"));
    assert_non_null(strstr(got, "  z     10.0.0.7  no     60s     -       failed"));
    assert_non_null(strstr(got, "  y     10.0.0.8  yes    4d      -       disconnected  0:idle\n"));
    cap_close(&c);
}

/* Documents that are not the coordinator's are refused instead of printed from defaults. */
static void status_refuses_documents_of_another_shape(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",
        "not json",
        "[]",
        "{\"pools\":[]}",                                   /* no leader */
        "{\"leader\":true}",                                /* no pools */
        "{\"leader\":true,\"pools\":{}}",                   /* pools not an array */
        "{\"leader\":true,\"pools\":[{\"pods\":[]}]}",      /* pool without id */
        "{\"leader\":true,\"pools\":[{\"id\":\"p\"}]}",     /* no pods */
        "{\"leader\":true,\"pools\":[{\"id\":\"p\",\"pods\":[{\"ready\":true,\"slots\":[]}]}]}", /* pod, no name */
        "{\"leader\":true,\"pools\":[{\"id\":\"p\",\"pods\":[{\"name\":\"x\",\"ready\":true,\"slots\":"
        "[{\"slot_id\":0,\"status\":3}]}]}]}",              /* slot status not a string */
        "{\"leader\":true,\"pools\":[{\"id\":\"p\",\"replicas\":\"3\",\"pods\":[]}]}",
        "{\"leader\":true,\"pools\":[{\"id\":\"p\",\"decision\":{\"text\":\"x\"},\"pods\":[]}]}",
        "{\"leader\":true,\"pools\":[{\"id\":\"p\",\"config_error\":{\"message\":\"x\"},\"pods\":[]}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        capture c;
        cap_open(&c);
        if (ccli_format_status(bad[i], strlen(bad[i]), NOW_MS, c.f) != -1)
            fail_msg("accepted: %s", bad[i]);
        cap_close(&c);
    }
}

/* explain prints the coordinator's text as it is; a document without text is refused. */
static void explain_prints_the_text(void **state)
{
    (void)state;
    capture c;
    cap_open(&c);
    assert_int_equal(ccli_format_explain(explain_json, strlen(explain_json), c.f), 0);
    assert_string_equal(cap_text(&c), explain_text);
    cap_close(&c);
    cap_open(&c);
    assert_int_equal(ccli_format_explain("{\"found\":true}", 14, c.f), -1);
    assert_int_equal(ccli_format_explain("{\"text\":5}", 10, c.f), -1);
    assert_int_equal(ccli_format_explain("nope", 4, c.f), -1);
    assert_int_equal(c.len, 0);
    cap_close(&c);
}

/* ---- fetching, against a server on another thread ---- */

typedef struct {
    uv_loop_t     loop;
    uv_async_t    stop;
    https_server *srv;
    int           port;
    pthread_t     thread;
    char          last_query[128];
} server;

static void serve(const https_request *req, https_response *res, void *arg)
{
    server *s = arg;
    snprintf(s->last_query, sizeof s->last_query, "%s", req->query);
    if (!strcmp(req->path, "/v1/pools")) {
        strbuf_puts(&res->body, pools_json);
    } else if (!strcmp(req->path, "/v1/explain")) {
        char id[32] = "";
        https_query_param(req->query, "task_id", id, sizeof id);
        if (!strcmp(id, "598"))
            strbuf_puts(&res->body, explain_json);
        else if (!strcmp(id, "7"))
            strbuf_puts(&res->body, "{\"surprise\":1}");
        else
            https_reply_error(res, 400, "task_id is required: GET /v1/explain?task_id=N");
    } else {
        https_reply_error(res, 404, "not found");
    }
}

static void on_stop(uv_async_t *a)
{
    server *s = a->data;
    https_free(s->srv);
    uv_close((uv_handle_t *)a, NULL);
}

static void *server_main(void *arg)
{
    server *s = arg;
    uv_run(&s->loop, UV_RUN_DEFAULT);
    return NULL;
}

static int server_setup(void **state)
{
    server *s = calloc(1, sizeof *s);
    char err[256];
    assert_int_equal(uv_loop_init(&s->loop), 0);
    assert_int_equal(uv_async_init(&s->loop, &s->stop, on_stop), 0);
    s->stop.data = s;
    https_opts o = { .host = "127.0.0.1", .handler = serve, .arg = s };
    s->srv = https_listen(&s->loop, &o, err, sizeof err);
    if (!s->srv)
        fail_msg("https_listen: %s", err);
    s->port = https_port(s->srv);
    assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
    *state = s;
    return 0;
}

static int server_teardown(void **state)
{
    server *s = *state;
    uv_async_send(&s->stop);
    pthread_join(s->thread, NULL);
    assert_int_equal(uv_loop_close(&s->loop), 0);
    free(s);
    return 0;
}

static void url_of(const server *s, char *buf, size_t n, const char *tail)
{
    snprintf(buf, n, "http://127.0.0.1:%d%s", s->port, tail);
}

/* status fetches /v1/pools and prints it; a trailing '/' on the server URL is fine. */
static void status_fetches_and_prints(void **state)
{
    server *s = *state;
    char url[128];
    url_of(s, url, sizeof url, "/");
    capture out, err;
    cap_open(&out);
    cap_open(&err);
    assert_int_equal(ccli_status(url, out.f, err.f), 0);
    assert_non_null(strstr(cap_text(&out), "coordinator coord-1: leader\n"));
    assert_non_null(strstr(cap_text(&out), "0:reserved#598 1:idle 2:running#801"));
    assert_string_equal(cap_text(&err), "");
    cap_close(&out);
    cap_close(&err);
}

/* explain asks for the task by id and prints the text; an error answer is quoted on stderr with exit 1, and so
 * is an answer that is not an explain document. */
static void explain_fetches_and_reports_errors(void **state)
{
    server *s = *state;
    char url[128];
    url_of(s, url, sizeof url, "");
    capture out, err;
    cap_open(&out);
    cap_open(&err);
    assert_int_equal(ccli_explain(url, 598, out.f, err.f), 0);
    assert_string_equal(s->last_query, "task_id=598");
    assert_string_equal(cap_text(&out), explain_text);
    assert_string_equal(cap_text(&err), "");
    cap_close(&out);
    cap_close(&err);

    cap_open(&out);
    cap_open(&err);
    assert_int_equal(ccli_explain(url, 9, out.f, err.f), 1);
    assert_non_null(strstr(cap_text(&err), "answered HTTP 400: task_id is required"));
    assert_int_equal(ccli_explain(url, 7, out.f, err.f), 1);
    assert_non_null(strstr(cap_text(&err), "answered something that is not the coordinator's document"));
    assert_string_equal(cap_text(&out), "");
    cap_close(&out);
    cap_close(&err);
}

/* A coordinator that is down: exit 1 and one message naming the URL; a server that is not a URL, or task 0: 2. */
static void unreachable_coordinator_and_bad_server_fail_cleanly(void **state)
{
    (void)state;
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t sl = sizeof sa;
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    close(fd); /* the port was free a moment ago: connection refused */
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(sa.sin_port));

    capture out, err;
    cap_open(&out);
    cap_open(&err);
    assert_int_equal(ccli_status(url, out.f, err.f), 1);
    assert_non_null(
        strstr(cap_text(&err), "iac-coordinator status: cannot reach the coordinator at http://127.0.0.1:"));
    assert_int_equal(ccli_explain(url, 5, out.f, err.f), 1);
    assert_non_null(strstr(cap_text(&err), "iac-coordinator explain: cannot reach the coordinator"));
    assert_string_equal(cap_text(&out), "");
    cap_close(&err);

    static const char *bad_servers[] = { "127.0.0.1:9190", "ftp://x", "http://", "", "https:///" };
    for (size_t i = 0; i < sizeof bad_servers / sizeof bad_servers[0]; i++) {
        cap_open(&err);
        assert_int_equal(ccli_status(bad_servers[i], out.f, err.f), 2);
        assert_non_null(strstr(cap_text(&err), "is not allowed: give the coordinator's URL"));
        cap_close(&err);
    }
    cap_open(&err);
    assert_int_equal(ccli_status(NULL, out.f, err.f), 2);
    assert_int_equal(ccli_explain(url, 0, out.f, err.f), 2);
    assert_non_null(strstr(cap_text(&err), "TASK_ID must be a whole number from 1"));
    cap_close(&err);
    cap_close(&out);
}

/* ---- the command line ---- */

typedef struct {
    int  status;
    char out[8192], err[4096];
} run_result;

static void read_all(int fd, char *buf, size_t n)
{
    lseek(fd, 0, SEEK_SET);
    ssize_t k = read(fd, buf, n - 1);
    buf[k > 0 ? k : 0] = '\0';
}

/* Runs ccli_main with stdout and stderr pointed at temporary files. */
static void run_main(char **argv, int argc, run_result *r)
{
    FILE *out_f = tmpfile(), *err_f = tmpfile();
    assert_true(out_f && err_f);
    int out_fd = fileno(out_f), err_fd = fileno(err_f);
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(1), saved_err = dup(2);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    r->status = ccli_main(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    read_all(out_fd, r->out, sizeof r->out);
    read_all(err_fd, r->err, sizeof r->err);
    fclose(out_f);
    fclose(err_f);
}

/* The subcommands parse their arguments: --server in both spellings, $IAC_COORD_SERVER as the default, and
 * usage errors (exit 2) for a missing or bad TASK_ID, unknown options and extra arguments. */
static void main_parses_arguments_and_server(void **state)
{
    server *s = *state;
    char url[128], eq[160];
    url_of(s, url, sizeof url, "");
    snprintf(eq, sizeof eq, "--server=%s", url);
    run_result r;

    char *a1[] = { "explain", "598", "--server", url };
    run_main(a1, 4, &r);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, explain_text);

    char *a2[] = { "status", eq };
    run_main(a2, 2, &r);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "pool pool-b"));

    setenv("IAC_COORD_SERVER", url, 1);
    char *a3[] = { "explain", "598" };
    run_main(a3, 2, &r);
    unsetenv("IAC_COORD_SERVER");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, explain_text);

    assert_true(ccli_is_command("status"));
    assert_true(ccli_is_command("explain"));
    assert_false(ccli_is_command("--help"));
    assert_false(ccli_is_command(NULL));

    static const struct { const char *args[4]; int argc; const char *want_err; } usage[] = {
        { { "explain" }, 1, "give the TASK_ID" },
        { { "explain", "abc" }, 2, "TASK_ID \"abc\" is not allowed" },
        { { "explain", "0" }, 2, "is not allowed" },
        { { "explain", "99999999999999999999" }, 2, "is not allowed" },
        { { "explain", "5", "6" }, 3, "unexpected argument \"6\"" },
        { { "status", "extra" }, 2, "unexpected argument \"extra\"" },
        { { "status", "--verbose" }, 2, "unknown option \"--verbose\"" },
        { { "status", "--server" }, 2, "--server needs a URL" },
        { { "stats" }, 1, "usage: iac-coordinator status" },
    };
    for (size_t i = 0; i < sizeof usage / sizeof usage[0]; i++) {
        run_main((char **)usage[i].args, usage[i].argc, &r);
        if (r.status != 2 || !strstr(r.err, usage[i].want_err))
            fail_msg("%s %s: status %d, stderr: %s", usage[i].args[0], usage[i].args[1] ? usage[i].args[1] : "",
                     r.status, r.err);
    }
    char *help[] = { "status", "--help" };
    run_main(help, 2, &r);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "iac-coordinator explain TASK_ID [--server URL]"));
}

int main(void)
{
    lws_set_log_level(LLL_ERR, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(status_prints_pools_and_pod_tables),
        cmocka_unit_test(status_names_the_leader_from_a_follower),
        cmocka_unit_test(status_marks_terminating_and_disconnected_pods),
        cmocka_unit_test(status_refuses_documents_of_another_shape),
        cmocka_unit_test(explain_prints_the_text),
        cmocka_unit_test_setup_teardown(status_fetches_and_prints, server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(explain_fetches_and_reports_errors, server_setup, server_teardown),
        cmocka_unit_test(unreachable_coordinator_and_bad_server_fail_cleanly),
        cmocka_unit_test_setup_teardown(main_parses_arguments_and_server, server_setup, server_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
