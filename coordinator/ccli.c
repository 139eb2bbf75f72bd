/* ccli.c — `iac-coordinator status|explain`; see ccli.h. One request on a private loop with common/httpc (as
 * agent/cli.c does for `iac-agent status`), then pure formatting of the answer. The documents are read with the
 * strict common/json getters, so an answer that is not the coordinator's shape is reported, never half-printed
 * from defaults. */
#include "ccli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "iac/httpc.h"
#include "iac/json.h"
#include "iac/strbuf.h"

#define CCLI_URL_MAX 512

/* ---- formatting ---- */

/* "12s", "5m", "3h07m", "4d": the AGE column, as kubectl prints it. */
static void ccli_age(int64_t seconds, char *out, size_t n)
{
    long long s = seconds < 0 ? 0 : (long long)seconds;
    if (s < 120)
        snprintf(out, n, "%llds", s);
    else if (s < 7200)
        snprintf(out, n, "%lldm", s / 60);
    else if (s < 172800)
        snprintf(out, n, "%lldh%02lldm", s / 3600, s / 60 % 60);
    else
        snprintf(out, n, "%lldd", s / 86400);
}

/* One pod, read once so that the widths and the rows agree. */
typedef struct {
    const char *name, *ip, *state, *agent_error;
    bool        ready;
    char        age[24], cost[24];
    strbuf      slots;
} pod_row;

static int read_slots(const cJSON *slots, strbuf *out)
{
    char err[128];
    const cJSON *s;
    cJSON_ArrayForEach(s, slots) {
        uint64_t id = 0, task = 0;
        const char *status = "";
        if (json_get_u64(s, "slot_id", true, &id, err, sizeof err) < 0 ||
            json_get_string(s, "status", true, &status, err, sizeof err) < 0 ||
            json_get_u64(s, "task_id", false, &task, err, sizeof err) < 0)
            return -1;
        strbuf_printf(out, "%s%" PRIu64 ":%s", out->len ? " " : "", id, status);
        if (task)
            strbuf_printf(out, "#%" PRIu64, task);
    }
    return 0;
}

static int read_pod(const cJSON *p, int64_t now_s, pod_row *r)
{
    char err[128];
    const char *agent_state = NULL, *phase = NULL;
    const cJSON *slots = NULL;
    bool terminating = false, connected = false;
    int64_t created = 0, age = -1, cost = 0;
    int has_cost;
    r->ip = r->agent_error = NULL;
    if (json_get_string(p, "name", true, &r->name, err, sizeof err) < 0 ||
        json_get_string(p, "ip", false, &r->ip, err, sizeof err) < 0 ||
        json_get_bool(p, "ready", true, &r->ready, err, sizeof err) < 0 ||
        json_get_string(p, "phase", false, &phase, err, sizeof err) < 0 ||
        json_get_bool(p, "terminating", false, &terminating, err, sizeof err) < 0 ||
        json_get_i64(p, "created", false, &created, err, sizeof err) < 0 ||
        json_get_i64(p, "age", false, &age, err, sizeof err) < 0 ||
        (has_cost = json_get_i64(p, "deletion_cost", false, &cost, err, sizeof err)) < 0 ||
        json_get_string(p, "agent_state", false, &agent_state, err, sizeof err) < 0 ||
        json_get_string(p, "agent_error", false, &r->agent_error, err, sizeof err) < 0 ||
        json_get_bool(p, "connected", false, &connected, err, sizeof err) < 0 ||
        json_get_array(p, "slots", true, &slots, err, sizeof err) < 0)
        return -1;
    /* Our own clock for the age when the creation time is known, as kubectl does. */
    ccli_age(created > 0 ? now_s - created : age, r->age, sizeof r->age);
    if (has_cost == 0)
        snprintf(r->cost, sizeof r->cost, "%lld", (long long)cost);
    else
        snprintf(r->cost, sizeof r->cost, "-");
    bool ended = phase && (strcmp(phase, "Failed") == 0 || strcmp(phase, "Succeeded") == 0);
    if (terminating)
        r->state = "terminating";
    else if (ended)
        r->state = strcmp(phase, "Failed") == 0 ? "failed" : "succeeded"; /* its process ended: not coming */
    else if (!agent_state)
        r->state = r->ready ? "unknown" : "starting"; /* the agent did not answer: SLOTS says why */
    else if (!connected && strcmp(agent_state, "ready") == 0)
        r->state = "disconnected"; /* answers us but not linked to the plane: no task reaches it */
    else
        r->state = agent_state;
    if (!r->ip || !r->ip[0])
        r->ip = "-";
    return read_slots(slots, &r->slots);
}

static void print_pods(const pod_row *rows, int n, FILE *out)
{
    int wname = 4, wip = 2, wstate = 5;
    for (int i = 0; i < n; i++) {
        int a = (int)strlen(rows[i].name), b = (int)strlen(rows[i].ip), c = (int)strlen(rows[i].state);
        wname = a > wname ? a : wname;
        wip = b > wip ? b : wip;
        wstate = c > wstate ? c : wstate;
    }
    fprintf(out, "  %-*s  %-*s  %-5s  %-6s  %-6s  %-*s  %s\n", wname, "NAME", wip, "IP", "READY", "AGE", "COST",
            wstate, "STATE", "SLOTS");
    for (int i = 0; i < n; i++) {
        const pod_row *r = &rows[i];
        fprintf(out, "  %-*s  %-*s  %-5s  %-6s  %-6s  %-*s  ", wname, r->name, wip, r->ip, r->ready ? "yes" : "no",
                r->age, r->cost, wstate, r->state);
        if (r->slots.len)
            fputs(r->slots.data, out);
        else if (r->agent_error && r->agent_error[0])
            fprintf(out, "(agent: %s)", r->agent_error);
        else
            fputs("-", out);
        fputc('\n', out);
    }
}

static int format_pods(const cJSON *pods, int64_t now_s, FILE *out)
{
    int n = cJSON_GetArraySize(pods);
    if (n == 0) {
        fprintf(out, "  no pods\n");
        return 0;
    }
    pod_row *rows = calloc((size_t)n, sizeof *rows);
    if (!rows)
        return -1;
    int rc = 0, i = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, pods) {
        if (read_pod(p, now_s, &rows[i++]) < 0) {
            rc = -1;
            break;
        }
    }
    if (rc == 0)
        print_pods(rows, n, out);
    for (int k = 0; k < n; k++)
        strbuf_free(&rows[k].slots);
    free(rows);
    return rc;
}

/* The pool's header: identity and size on one line, then one line per thing a person must know. */
static int format_pool(const cJSON *p, int64_t now_s, FILE *out)
{
    char err[128], age[24];
    const char *id, *ns = "", *dep = "", *cycle_error = NULL;
    int64_t min = 0, max = 0, replicas = 0, desired = 0, ready = 0;
    bool observed = false;
    const cJSON *decision = NULL, *cfgerr = NULL, *last = NULL, *pods = NULL;
    if (json_get_string(p, "id", true, &id, err, sizeof err) < 0 ||
        json_get_string(p, "namespace", false, &ns, err, sizeof err) < 0 ||
        json_get_string(p, "deployment", false, &dep, err, sizeof err) < 0 ||
        json_get_i64(p, "min_replicas", false, &min, err, sizeof err) < 0 ||
        json_get_i64(p, "max_replicas", false, &max, err, sizeof err) < 0 ||
        json_get_i64(p, "replicas", false, &replicas, err, sizeof err) < 0 ||
        json_get_i64(p, "desired", false, &desired, err, sizeof err) < 0 ||
        json_get_i64(p, "ready_replicas", false, &ready, err, sizeof err) < 0 ||
        json_get_bool(p, "observed", false, &observed, err, sizeof err) < 0 ||
        json_get_object(p, "decision", false, &decision, err, sizeof err) < 0 ||
        json_get_object(p, "config_error", false, &cfgerr, err, sizeof err) < 0 ||
        json_get_string(p, "cycle_error", false, &cycle_error, err, sizeof err) < 0 ||
        json_get_object(p, "last_action", false, &last, err, sizeof err) < 0 ||
        json_get_array(p, "pods", true, &pods, err, sizeof err) < 0)
        return -1;
    fprintf(out, "pool %s  %s/%s  replicas %lld current, %lld desired, %lld ready  min %lld, max %lld\n", id, ns, dep,
            (long long)replicas, (long long)desired, (long long)ready, (long long)min, (long long)max);
    if (!observed)
        fprintf(out, "  not observed yet\n");
    if (decision) {
        const char *reason = "", *text = "";
        if (json_get_string(decision, "reason", true, &reason, err, sizeof err) < 0 ||
            json_get_string(decision, "text", false, &text, err, sizeof err) < 0)
            return -1;
        fprintf(out, "  decision: %s: %s\n", reason, text);
    }
    if (cfgerr) {
        const char *reason = "", *message = "";
        int64_t since = 0;
        if (json_get_string(cfgerr, "reason", true, &reason, err, sizeof err) < 0 ||
            json_get_string(cfgerr, "message", false, &message, err, sizeof err) < 0 ||
            json_get_i64(cfgerr, "since", false, &since, err, sizeof err) < 0)
            return -1;
        if (since > 0) {
            ccli_age(now_s - since, age, sizeof age);
            fprintf(out, "  CONFIG ERROR (%s, for %s): %s\n", reason, age, message);
        } else {
            fprintf(out, "  CONFIG ERROR (%s): %s\n", reason, message);
        }
    }
    if (cycle_error && cycle_error[0])
        fprintf(out, "  cycle error: %s\n", cycle_error);
    if (last) {
        const char *text = "";
        int64_t at = 0;
        if (json_get_string(last, "text", true, &text, err, sizeof err) < 0 ||
            json_get_i64(last, "at", false, &at, err, sizeof err) < 0)
            return -1;
        ccli_age(now_s - at, age, sizeof age);
        fprintf(out, "  last action: %s (%s ago)\n", text, age);
    }
    return format_pods(pods, now_s, out);
}

int ccli_format_status(const char *json, size_t len, int64_t now_ms, FILE *out)
{
    char err[256];
    cJSON *root = json_parse_object(json, len, err, sizeof err);
    if (!root)
        return -1;
    bool leader = false;
    const char *identity = "", *holder = "";
    const cJSON *pools = NULL;
    int rc = -1;
    if (json_get_bool(root, "leader", true, &leader, err, sizeof err) < 0 ||
        json_get_string(root, "identity", false, &identity, err, sizeof err) < 0 ||
        json_get_string(root, "holder", false, &holder, err, sizeof err) < 0 ||
        json_get_array(root, "pools", true, &pools, err, sizeof err) < 0)
        goto done;
    if (leader)
        fprintf(out, "coordinator %s: leader\n", identity[0] ? identity : "(unnamed)");
    else
        fprintf(out, "coordinator %s: follower, %s%s\n", identity[0] ? identity : "(unnamed)",
                holder[0] ? "the leader is " : "no leader known", holder);
    if (cJSON_GetArraySize(pools) == 0)
        fprintf(out, "\nno pools configured\n");
    const cJSON *p;
    cJSON_ArrayForEach(p, pools) {
        fputc('\n', out);
        if (format_pool(p, now_ms / 1000, out) < 0)
            goto done;
    }
    rc = 0;
done:
    cJSON_Delete(root);
    return rc;
}

int ccli_format_explain(const char *json, size_t len, FILE *out)
{
    char err[256];
    cJSON *root = json_parse_object(json, len, err, sizeof err);
    if (!root)
        return -1;
    const char *text = NULL;
    int rc = json_get_string(root, "text", true, &text, err, sizeof err) < 0 ? -1 : 0;
    if (rc == 0)
        fputs(text, out);
    cJSON_Delete(root);
    return rc;
}

/* ---- fetching ---- */

typedef int (*ccli_formatter)(const char *json, size_t len, FILE *out);

typedef struct {
    const char    *cmd;
    FILE          *out, *err;
    uv_loop_t     *loop;
    char           url[CCLI_URL_MAX + 64];
    ccli_formatter format;
    int            exit_status;
} ccli_call;

static int format_status_now(const char *json, size_t len, FILE *out)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ccli_format_status(json, len, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, out);
}

/* The "error" of a JSON error body, for the message. */
static void error_of(const char *body, size_t len, char *out, size_t n)
{
    char err[64];
    const char *msg = NULL;
    cJSON *j = json_parse_object(body, len, err, sizeof err);
    if (j && json_get_string(j, "error", true, &msg, err, sizeof err) == 0)
        snprintf(out, n, ": %s", msg);
    else
        out[0] = '\0';
    cJSON_Delete(j);
}

static void ccli_on_response(const httpc_response *r, void *arg)
{
    ccli_call *c = arg;
    char why[300];
    if (r->error != HTTPC_OK) {
        fprintf(c->err, "iac-coordinator %s: cannot reach the coordinator at %s: %s\n", c->cmd, c->url, r->errmsg);
    } else if (r->status != 200) {
        error_of(r->body, r->body_len, why, sizeof why);
        fprintf(c->err, "iac-coordinator %s: %s answered HTTP %ld%s\n", c->cmd, c->url, r->status, why);
    } else if (c->format(r->body, r->body_len, c->out) < 0) {
        fprintf(c->err, "iac-coordinator %s: %s answered something that is not the coordinator's document\n",
                c->cmd, c->url);
    } else {
        c->exit_status = 0;
    }
    uv_stop(c->loop);
}

/* "http://host:port" or "https://…", without a trailing '/', into base. */
static int ccli_base(const char *cmd, const char *server, char *base, size_t n, FILE *err)
{
    if (!server)
        server = "";
    size_t len = strlen(server);
    while (len && server[len - 1] == '/')
        len--;
    size_t scheme = !strncmp(server, "http://", 7) ? 7 : !strncmp(server, "https://", 8) ? 8 : 0;
    if (!scheme || len <= scheme || len >= n || len > CCLI_URL_MAX) {
        fprintf(err, "iac-coordinator %s: --server \"%.80s\" is not allowed: give the coordinator's URL, e.g. %s\n",
                cmd, server, CCLI_DEFAULT_SERVER);
        return -1;
    }
    memcpy(base, server, len);
    base[len] = '\0';
    return 0;
}

static int ccli_fetch(const char *cmd, const char *server, const char *path, ccli_formatter format, FILE *out,
                      FILE *err)
{
    char base[CCLI_URL_MAX + 1];
    if (ccli_base(cmd, server, base, sizeof base, err) < 0)
        return 2;
    uv_loop_t loop;
    ccli_call c = { .cmd = cmd, .out = out, .err = err, .loop = &loop, .format = format, .exit_status = 1 };
    snprintf(c.url, sizeof c.url, "%s%s", base, path);
    if (uv_loop_init(&loop) != 0) {
        fprintf(err, "iac-coordinator %s: cannot create an event loop\n", cmd);
        return 1;
    }
    httpc_opts opts = { .connect_timeout_ms = 3000, .total_timeout_ms = 10000 };
    httpc *h = httpc_new(&loop, &opts);
    if (!h) {
        fprintf(err, "iac-coordinator %s: cannot initialise the HTTP client\n", cmd);
        uv_loop_close(&loop);
        return 1;
    }
    httpc_req req = { .method = "GET", .url = c.url, .mode = HTTPC_PLAIN };
    if (httpc_request(h, &req, ccli_on_response, &c))
        uv_run(&loop, UV_RUN_DEFAULT);
    else
        fprintf(err, "iac-coordinator %s: out of memory\n", cmd);
    httpc_free(h);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return c.exit_status;
}

int ccli_status(const char *server, FILE *out, FILE *err)
{
    return ccli_fetch("status", server, "/v1/pools", format_status_now, out, err);
}

int ccli_explain(const char *server, uint64_t task_id, FILE *out, FILE *err)
{
    if (task_id == 0) {
        fprintf(err, "iac-coordinator explain: TASK_ID must be a whole number from 1\n");
        return 2;
    }
    char path[64];
    snprintf(path, sizeof path, "/v1/explain?task_id=%" PRIu64, task_id);
    return ccli_fetch("explain", server, path, ccli_format_explain, out, err);
}

/* ---- the command line ---- */

static const char ccli_usage[] =
    "usage: iac-coordinator status [--server URL]\n"
    "       iac-coordinator explain TASK_ID [--server URL]\n"
    "\n"
    "status   every pool: size, decision, configuration error, and its pods with their slots\n"
    "explain  where task TASK_ID is (pool, pod, slot, phase) or why it waits\n"
    "--server the coordinator's API; default $IAC_COORD_SERVER, else " CCLI_DEFAULT_SERVER "\n";

bool ccli_is_command(const char *word)
{
    return word && (strcmp(word, "status") == 0 || strcmp(word, "explain") == 0);
}

/* "N" with 1 ≤ N < 2^64, digits only. */
static int ccli_task_id(const char *s, uint64_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 20 || strspn(s, "0123456789") != n)
        return -1;
    unsigned long long v = strtoull(s, NULL, 10);
    if (v == 0 || (n == 20 && strcmp(s, "18446744073709551615") > 0))
        return -1;
    *out = v;
    return 0;
}

int ccli_main(int argc, char **argv)
{
    if (argc < 1 || !ccli_is_command(argv[0])) {
        fputs(ccli_usage, stderr);
        return 2;
    }
    const char *cmd = argv[0], *server = getenv("IAC_COORD_SERVER"), *task = NULL;
    if (!server || !server[0])
        server = CCLI_DEFAULT_SERVER;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(ccli_usage, stdout);
            return 0;
        } else if (!strcmp(a, "--server")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "iac-coordinator %s: --server needs a URL, e.g. %s\n", cmd, CCLI_DEFAULT_SERVER);
                return 2;
            }
            server = argv[++i];
        } else if (!strncmp(a, "--server=", 9)) {
            server = a + 9;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "iac-coordinator %s: unknown option \"%s\"\n%s", cmd, a, ccli_usage);
            return 2;
        } else if (!strcmp(cmd, "explain") && !task) {
            task = a;
        } else {
            fprintf(stderr, "iac-coordinator %s: unexpected argument \"%s\"\n%s", cmd, a, ccli_usage);
            return 2;
        }
    }
    if (!strcmp(cmd, "status"))
        return ccli_status(server, stdout, stderr);
    uint64_t id = 0;
    if (!task) {
        fprintf(stderr, "iac-coordinator explain: give the TASK_ID to explain\n%s", ccli_usage);
        return 2;
    }
    if (ccli_task_id(task, &id) < 0) {
        fprintf(stderr, "iac-coordinator explain: TASK_ID \"%.40s\" is not allowed: give a whole number from 1\n",
                task);
        return 2;
    }
    return ccli_explain(server, id, stdout, stderr);
}
