/* options.c — the agent's option table and the checks that go beyond one value; see options.h.
 *
 * Most validation is the table's (common/config); what is here is what a table cannot say: the endpoint must be a
 * bare host (upstream builds URLs by appending ":port", ref §1.2), one of the token or token file is needed, the
 * token must be usable in an HTTP header, and CC_SERVER_PORT defaults to SERVER_PORT + 10. */
#include "options.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "iac/config.h"
#include "iac/fsutil.h"
#include "iac/log.h"
#include "iac/slots.h"

#define TOKEN_MAX 4096

static const char *protocol_names = "http|https";

typedef struct {
    const char *token_env;
    int         protocol;
} raw_values;

static size_t agent_option_table(agent_options *o, raw_values *raw, cfg_option *t)
{
    const cfg_option table[] = {
        { "IAC_API_ENDPOINT", "api-endpoint", CFG_STRING, &o->endpoint, NULL, NULL, 1, 0, NULL, "API endpoint",
          "control plane host name or IP, without scheme or port", true, false },
        { "IAC_AGENT_TOKEN", "token", CFG_STRING, &raw->token_env, NULL, NULL, 0, 0, NULL, "pool token",
          "pool token apt_<pool>_<hex> (required unless IAC_AGENT_TOKEN_FILE is set)", false, true },
        { "IAC_AGENT_TOKEN_FILE", "token-file", CFG_STRING, &o->token_file, NULL, NULL, 1, 0, NULL, "token file",
          "file holding the pool token; re-read when the control plane answers 401", false, false },
        { "IAC_AGENT_NAME", "name", CFG_STRING, &o->name, NULL, NULL, 1, 0, NULL, "agent name",
          "agent name sent at registration; the pod name in Kubernetes", true, false },
        { "IAC_AGENT_PROTOCOL", "protocol", CFG_ENUM, &raw->protocol, NULL, "http", 0, 0, protocol_names,
          "protocol", "http or https (https also means wss for the C&C socket)", false, false },
        { "SERVER_PORT", "server-port", CFG_PORT, &o->server_port, NULL, "8080", 1, 65535, NULL, "API port",
          "control plane API port", false, false },
        { "CC_SERVER_PORT", "cc-port", CFG_PORT, &o->cc_port, NULL, NULL, 1, 65535, NULL, "C&C port",
          "C&C WebSocket port (default SERVER_PORT + 10)", false, false },
        { "TF_PLUGIN_CACHE_DIR", NULL, CFG_STRING, &o->plugin_cache_dir, NULL, NULL, 1, 0, NULL, "plugin cache",
          "provider plugin cache shared by tasks (default: one per task)", false, false },
        { "SSL_CERT_FILE", NULL, CFG_STRING, &o->ssl_cert_file, NULL, NULL, 1, 0, NULL, "CA bundle",
          "extra CA bundle for https/wss", false, false },
        { "IAC_AGENT_SLOTS", "slots", CFG_INT, &o->slots, NULL, "4", SLOTS_MIN, SLOTS_MAX, NULL, "slots",
          "task slots: slot 0 runs plan_and_apply, the others plan and drift_check", false, false },
        { "IAC_AGENT_DATA_DIR", "data-dir", CFG_STRING, &o->data_dir, NULL, "/var/lib/iac-agent", 1, 0, NULL,
          "data directory", "work directories and the state file", false, false },
        { "IAC_AGENT_LISTEN", "listen", CFG_HOSTPORT, o->listen_host, &o->listen_port, "0.0.0.0:9180", 0, 65535,
          NULL, "listen address", "status server address host:port (health, readiness, metrics, slots)", false,
          false },
        { "IAC_AGENT_RESERVATION_TTL", "reservation-ttl", CFG_DURATION, &o->reservation_ttl_ms, NULL, "24h", 1000,
          INT64_C(365) * 24 * 3600 * 1000, NULL, "reservation TTL", "how long slot 0 stays reserved for an apply",
          false, false },
        { "IAC_AGENT_TASK_TIMEOUT", "task-timeout", CFG_DURATION, &o->task_timeout_ms, NULL, "60m", 1000,
          INT64_C(7) * 24 * 3600 * 1000, NULL, "task timeout", "longest a task may run before it is cancelled",
          false, false },
        { "IAC_AGENT_CANCEL_GRACE", "cancel-grace", CFG_DURATION, &o->cancel_grace_ms, NULL, "30s", 0,
          INT64_C(3600) * 1000, NULL, "cancel grace", "time between SIGINT and SIGKILL when cancelling terraform",
          false, false },
        { "IAC_AGENT_DRAIN_TIMEOUT", "drain-timeout", CFG_DURATION, &o->drain_timeout_ms, NULL, "55m", 0,
          INT64_C(7) * 24 * 3600 * 1000, NULL, "drain timeout",
          "how long SIGTERM lets running tasks finish before interrupting them", false, false },
        { "IAC_AGENT_INIT_RETRY_WAIT", "init-retry-wait", CFG_DURATION, &o->init_retry_wait_ms, NULL, "5s", 0,
          INT64_C(600) * 1000, NULL, "init retry wait",
          "wait before retrying a failed terraform init (twice as long before the third attempt)", false, false },
        { "IAC_AGENT_STATE_RETRY_WAIT", "state-retry-wait", CFG_DURATION, &o->state_retry_wait_ms, NULL, "2s", 0,
          INT64_C(600) * 1000, NULL, "state retry wait",
          "first wait between state upload attempts (then twice, three and four times as long)", false, false },
        { "IAC_ENGINE_PATH", "engine-path", CFG_STRING, &o->engine_path, NULL, NULL, 1, 0, NULL, "engine path",
          "use this terraform or tofu binary instead of downloading the workspace's version", false, false },
        { "IAC_AGENT_LOG_FORMAT", "log-format", CFG_ENUM, &o->log_format, NULL, "text", 0, 0, "text|json",
          "log format", "log line format", false, false },
        { "IAC_AGENT_LOG_LEVEL", "log-level", CFG_ENUM, &o->log_level, NULL, "info", 0, 0, "debug|info|warn|error",
          "log level", "lowest level logged", false, false },
    };
    memcpy(t, table, sizeof table);
    return sizeof table / sizeof table[0];
}

/* A bare host: a name or IPv4 address, or a bracketed IPv6 address; no scheme, port, path or spaces. */
static bool endpoint_is_bare_host(const char *s)
{
    if (s[0] == '[')
        return strchr(s, ']') && strchr(s, ']')[1] == '\0' && !strpbrk(s, "/ \t");
    if (!s[0] || strlen(s) > 253)
        return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_')
            return false;
    return true;
}

/* A token goes into an Authorization header: printable ASCII without spaces. */
static bool token_is_usable(const char *t)
{
    if (!t[0] || strlen(t) >= TOKEN_MAX)
        return false;
    for (const char *p = t; *p; p++)
        if (*p <= ' ' || *p > '~')
            return false;
    return true;
}

static int read_token_file(const char *path, char **out, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int rc = fs_read_file(path, TOKEN_MAX, &text, &len);
    if (rc < 0) {
        snprintf(err, errlen, "IAC_AGENT_TOKEN_FILE=\"%s\" cannot be read: %s", path,
                 rc == -EFBIG ? "file too large for a token" : strerror(-rc));
        return -1;
    }
    /* A Kubernetes Secret mounted as a file often ends with a newline: trim surrounding white space. */
    char *start = text;
    while (*start && isspace((unsigned char)*start))
        start++;
    char *end = start + strlen(start);
    while (end > start && isspace((unsigned char)end[-1]))
        *--end = '\0';
    if (!token_is_usable(start)) {
        snprintf(err, errlen, "IAC_AGENT_TOKEN_FILE=\"%s\" is not allowed: it must hold one pool token "
                 "(printable characters, no spaces)", path);
        free(text);
        return -1;
    }
    *out = strdup(start);
    free(text);
    if (!*out) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int agent_options_parse(agent_options *o, int argc, char **argv, char **envp, char *err, size_t errlen)
{
    memset(o, 0, sizeof *o);
    raw_values raw = { NULL, 0 };
    cfg_option table[32];
    size_t n = agent_option_table(o, &raw, table);
    int rc = cfg_parse(table, n, argc, argv, envp, NULL, NULL, err, errlen);
    if (rc == CFG_HELP)
        return AGENT_OPTIONS_HELP;
    if (rc == CFG_VERSION)
        return AGENT_OPTIONS_VERSION;
    if (rc != CFG_OK)
        return AGENT_OPTIONS_ERR;
    o->https = raw.protocol == 1;
    if (!endpoint_is_bare_host(o->endpoint)) {
        snprintf(err, errlen, "IAC_API_ENDPOINT=\"%s\" is not allowed: must be a bare host name or IP address "
                 "(no scheme, port or path; the port comes from SERVER_PORT)", o->endpoint);
        return AGENT_OPTIONS_ERR;
    }
    if (!o->cc_port)
        o->cc_port = o->server_port + 10 <= 65535 ? o->server_port + 10 : 0;
    if (!o->cc_port) {
        snprintf(err, errlen, "SERVER_PORT=\"%lld\" leaves no default for CC_SERVER_PORT (SERVER_PORT + 10 is "
                 "above 65535): set CC_SERVER_PORT", (long long)o->server_port);
        return AGENT_OPTIONS_ERR;
    }
    if (o->token_file) {
        if (read_token_file(o->token_file, &o->token, err, errlen) < 0)
            return AGENT_OPTIONS_ERR;
    } else if (raw.token_env && raw.token_env[0]) {
        if (!token_is_usable(raw.token_env)) {
            snprintf(err, errlen, "IAC_AGENT_TOKEN is not allowed: a pool token is printable characters without "
                     "spaces (value not shown)");
            return AGENT_OPTIONS_ERR;
        }
        o->token = strdup(raw.token_env);
        if (!o->token) {
            snprintf(err, errlen, "out of memory");
            return AGENT_OPTIONS_ERR;
        }
    } else {
        snprintf(err, errlen, "IAC_AGENT_TOKEN is required: set it to the pool token, or set "
                 "IAC_AGENT_TOKEN_FILE to a file that holds it");
        return AGENT_OPTIONS_ERR;
    }
    if (strlen(o->name) > 100) {
        snprintf(err, errlen, "IAC_AGENT_NAME=\"%.40s…\" is not allowed: at most 100 characters (the control "
                 "plane refuses longer names)", o->name);
        return AGENT_OPTIONS_ERR;
    }
    return AGENT_OPTIONS_OK;
}

void agent_options_print_help(FILE *out)
{
    agent_options o;
    raw_values raw;
    cfg_option table[32];
    size_t n = agent_option_table(&o, &raw, table);
    fprintf(out,
            "Usage: iac-agent [--flag value]...\n"
            "\n"
            "Runs Terraform/OpenTofu tasks for one pod of a Terranova agent pool: registers with the control\n"
            "plane, keeps its C&C WebSocket, heartbeats its slot table and serves health, readiness, metrics and\n"
            "its slots over local HTTP. Every setting is an environment variable and a flag (flags win).\n"
            "\n");
    cfg_print_help(out, table, n);
    fprintf(out,
            "\n"
            "Exit status: 0 after a clean shutdown, 1 when it cannot start, 2 on bad configuration, 3 when the\n"
            "control plane rejects the pool token and no token file can supply a new one.\n"
            "Status endpoints: GET /healthz /readyz /metrics /v1/status; POST /v1/drain /v1/undrain and\n"
            "DELETE /v1/slots/0/reservation (these need the pool token as a Bearer token).\n");
}

int agent_options_reload_token(agent_options *o, char *err, size_t errlen)
{
    if (!o->token_file) {
        snprintf(err, errlen, "no IAC_AGENT_TOKEN_FILE to re-read");
        return -1;
    }
    char *fresh = NULL;
    if (read_token_file(o->token_file, &fresh, err, errlen) < 0)
        return -1;
    if (o->token && strcmp(o->token, fresh) == 0) {
        free(fresh);
        return 0;
    }
    if (o->token) {
        log_secret_remove(o->token);
        free(o->token);
    }
    o->token = fresh;
    log_secret_add(o->token);
    return 1;
}

void agent_options_free(agent_options *o)
{
    free(o->token);
    o->token = NULL;
}
