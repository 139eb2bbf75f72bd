/* cli.c — `iac-agent status`; see cli.h. One request on a private loop with common/httpc, then a table. */
#include "cli.h"

#include <inttypes.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "iac/httpc.h"
#include "iac/json.h"

typedef struct {
    int        exit_status;
    FILE      *out;
    uv_loop_t *loop;
    char       url[300];
} cli_call;

static void cli_age(long long seconds, char *out, size_t n)
{
    if (seconds < 0)
        seconds = 0;
    if (seconds < 120)
        snprintf(out, n, "%llds", seconds);
    else if (seconds < 7200)
        snprintf(out, n, "%lldm", seconds / 60);
    else
        snprintf(out, n, "%lldh%02lldm", seconds / 3600, seconds / 60 % 60);
}

int cli_format_status(const char *json, size_t len, long long now_s, FILE *out)
{
    char err[256];
    cJSON *root = json_parse_object(json, len, err, sizeof err);
    if (!root)
        return -1;
    const char *id = "", *pool = "", *name = "", *state = "", *phase = "";
    bool connected = false;
    const cJSON *slots = NULL;
    if (json_get_string(root, "agent_id", false, &id, err, sizeof err) < 0 ||
        json_get_string(root, "pool_id", false, &pool, err, sizeof err) < 0 ||
        json_get_string(root, "name", false, &name, err, sizeof err) < 0 ||
        json_get_string(root, "state", true, &state, err, sizeof err) < 0 ||
        json_get_string(root, "phase", false, &phase, err, sizeof err) < 0 ||
        json_get_bool(root, "connected", true, &connected, err, sizeof err) < 0 ||
        json_get_array(root, "slots", true, &slots, err, sizeof err) < 0) {
        cJSON_Delete(root);
        return -1;
    }
    fprintf(out, "agent  %s (%s)\npool   %s\nstate  %s, %s\n\n", id[0] ? id : "(not registered)", name,
            pool[0] ? pool : "-", state, connected ? "connected" : phase);
    fprintf(out, "%-4s  %-8s  %-10s  %-14s  %-6s  %s\n", "SLOT", "STATUS", "TASK", "TYPE", "ACTION", "SINCE");
    const cJSON *s;
    cJSON_ArrayForEach(s, slots) {
        uint64_t slot_id = 0, task = 0;
        int64_t since = 0;
        const char *status = "?", *type = "-", *action = "-";
        if (json_get_u64(s, "slot_id", true, &slot_id, err, sizeof err) < 0 ||
            json_get_string(s, "status", true, &status, err, sizeof err) < 0 ||
            json_get_u64(s, "task_id", false, &task, err, sizeof err) < 0 ||
            json_get_string(s, "task_type", false, &type, err, sizeof err) < 0 ||
            json_get_string(s, "action", false, &action, err, sizeof err) < 0 ||
            json_get_i64(s, "since", false, &since, err, sizeof err) < 0) {
            cJSON_Delete(root);
            return -1;
        }
        char task_s[24] = "-", age[24];
        if (task)
            snprintf(task_s, sizeof task_s, "%" PRIu64, task);
        cli_age(now_s - since, age, sizeof age);
        fprintf(out, "%-4" PRIu64 "  %-8s  %-10s  %-14s  %-6s  %s\n", slot_id, status, task_s, type, action, age);
    }
    cJSON_Delete(root);
    return 0;
}

static void cli_report(const httpc_response *r, cli_call *c)
{
    if (r->error != HTTPC_OK) {
        fprintf(stderr, "iac-agent status: cannot reach the agent at %s: %s\n", c->url, r->errmsg);
        return;
    }
    if (r->status != 200) {
        fprintf(stderr, "iac-agent status: %s answered HTTP %ld\n", c->url, r->status);
        return;
    }
    if (cli_format_status(r->body, r->body_len, (long long)time(NULL), c->out) < 0) {
        fprintf(stderr, "iac-agent status: %s answered something that is not an agent status\n", c->url);
        return;
    }
    c->exit_status = 0;
}

static void cli_on_response(const httpc_response *r, void *arg)
{
    cli_call *c = arg;
    cli_report(r, c);
    uv_stop(c->loop);
}

int cli_status(const char *host, int port, FILE *out)
{
    uv_loop_t loop;
    cli_call c = { 1, out, &loop, "" };
    if (!host || !host[0] || strcmp(host, "0.0.0.0") == 0)
        host = "127.0.0.1";
    snprintf(c.url, sizeof c.url, "http://%s:%d/v1/status", host, port);
    uv_loop_init(&loop);
    httpc_opts opts = { .connect_timeout_ms = 2000, .total_timeout_ms = 5000 };
    httpc *h = httpc_new(&loop, &opts);
    if (!h) {
        fprintf(stderr, "iac-agent status: cannot initialise the HTTP client\n");
        uv_loop_close(&loop);
        return 1;
    }
    httpc_req req = { .method = "GET", .url = c.url, .mode = HTTPC_PLAIN };
    if (httpc_request(h, &req, cli_on_response, &c))
        uv_run(&loop, UV_RUN_DEFAULT);
    httpc_free(h);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return c.exit_status;
}
