/* taskenv.c — environment and argv of a task's engine children; see taskenv.h.
 *
 * Everything is built into one small growable vector of malloc'd strings, so that each builder reads as the list
 * of what goes in, in order, and one free function releases any result. Duplicate keys are resolved once at the
 * end, the way Go's os/exec does, rather than by checking at every insertion. */
#include "taskenv.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iac/json.h"

const char *const taskenv_secret_names[] = { "IAC_AGENT_TOKEN", "IAC_AGENT_TOKEN_FILE", NULL };

/* Fixed variables every engine child gets (ref §7.6), after the agent's own environment. */
static const char *const taskenv_fixed[] = { "TF_IN_AUTOMATION=true", "TF_INPUT=false",
                                             "TF_REGISTRY_CLIENT_TIMEOUT=60" };

#define TASKENV_CLI_ARGS "TF_CLI_ARGS"
#define TASKENV_PLUGIN_CACHE "TF_PLUGIN_CACHE_DIR"

typedef struct {
    char **v;
    size_t n, cap;
    bool   oom;
} taskenv_vec;

/* Takes ownership of s (NULL marks the vector as out of memory). */
static void taskenv_push_owned(taskenv_vec *x, char *s)
{
    if (!s || x->oom) {
        x->oom = true;
        free(s);
        return;
    }
    if (x->n + 2 > x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 16;
        char **v = realloc(x->v, cap * sizeof *v);
        if (!v) {
            x->oom = true;
            free(s);
            return;
        }
        x->v = v;
        x->cap = cap;
    }
    x->v[x->n++] = s;
    x->v[x->n] = NULL;
}

static void taskenv_push(taskenv_vec *x, const char *s)
{
    taskenv_push_owned(x, strdup(s));
}

static void taskenv_pushf(taskenv_vec *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void taskenv_pushf(taskenv_vec *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    taskenv_push_owned(x, s);
}

/* The finished array, or NULL (everything freed) when any push failed. An empty vector is a lone NULL. */
static char **taskenv_finish(taskenv_vec *x)
{
    if (!x->oom && !x->v) {
        x->v = calloc(1, sizeof *x->v);
        x->oom = !x->v;
    }
    if (x->oom) {
        taskenv_free(x->v);
        return NULL;
    }
    return x->v;
}

void taskenv_free(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

size_t taskenv_count(char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

/* Length of the key of a KEY=VALUE entry (Go splits at the first '='). */
static size_t taskenv_key_len(const char *kv)
{
    const char *eq = strchr(kv, '=');
    return eq ? (size_t)(eq - kv) : strlen(kv);
}

static bool taskenv_key_is(const char *kv, const char *key)
{
    size_t n = strlen(key);
    return taskenv_key_len(kv) == n && memcmp(kv, key, n) == 0;
}

/* ---- workspace variables --------------------------------------------------------------------------------------- */

typedef struct {
    const char *key;   /* "" when absent */
    const char *value; /* "" when absent */
    bool        environment;
} taskenv_var;

/* Reads variables[i]. 0, or -1 with a message naming the index. */
static int taskenv_read_var(const cJSON *item, int i, taskenv_var *out, char *err, size_t errlen)
{
    char inner[160];
    const char *type = "";
    out->key = out->value = "";
    if (!cJSON_IsObject(item)) {
        snprintf(err, errlen, "variables[%d]: expected an object", i);
        return -1;
    }
    if (json_get_string(item, "variable_type", false, &type, inner, sizeof inner) < 0 ||
        json_get_string(item, "key", false, &out->key, inner, sizeof inner) < 0 ||
        json_get_string(item, "value", false, &out->value, inner, sizeof inner) < 0) {
        snprintf(err, errlen, "variables[%d]: %s", i, inner);
        return -1;
    }
    out->environment = strcmp(type, "environment") == 0;
    return 0;
}

/* variables must be an array, absent or JSON null. */
static int taskenv_check_list(const cJSON *variables, char *err, size_t errlen)
{
    if (variables && !cJSON_IsNull(variables) && !cJSON_IsArray(variables)) {
        snprintf(err, errlen, "variables: expected an array");
        return -1;
    }
    return 0;
}

int taskenv_find_cli_args(const cJSON *variables, const char **value, char *err, size_t errlen)
{
    *value = NULL;
    if (taskenv_check_list(variables, err, errlen) < 0)
        return -1;
    const cJSON *list = cJSON_IsArray(variables) ? variables : NULL, *item;
    int i = 0;
    cJSON_ArrayForEach(item, list) {
        taskenv_var var;
        if (taskenv_read_var(item, i++, &var, err, errlen) < 0)
            return -1;
        if (var.environment && strcmp(var.key, TASKENV_CLI_ARGS) == 0)
            *value = var.value;
    }
    return 0;
}

/* ---- environment ----------------------------------------------------------------------------------------------- */

static bool taskenv_is_secret(const char *kv)
{
    for (const char *const *s = taskenv_secret_names; *s; s++)
        if (taskenv_key_is(kv, *s))
            return true;
    return false;
}

/* The region of provider_config.aws[0], or NULL. */
static const char *taskenv_aws_region(const cJSON *provider_config)
{
    const cJSON *aws = cJSON_IsObject(provider_config) ? cJSON_GetObjectItemCaseSensitive(provider_config, "aws")
                                                       : NULL;
    const cJSON *first = cJSON_IsArray(aws) ? aws->child : NULL;
    const cJSON *region = cJSON_IsObject(first) ? cJSON_GetObjectItemCaseSensitive(first, "region") : NULL;
    return cJSON_IsString(region) && region->valuestring[0] ? region->valuestring : NULL;
}

static const char *taskenv_getenv(char *const *env, const char *key)
{
    for (size_t i = 0; env && env[i]; i++)
        if (taskenv_key_is(env[i], key) && env[i][strlen(key)] == '=')
            return env[i] + strlen(key) + 1;
    return NULL;
}

typedef struct {
    const char *kv;
    size_t      pos;
} taskenv_slot;

static int taskenv_slot_cmp(const void *a, const void *b)
{
    const taskenv_slot *x = a, *y = b;
    size_t lx = taskenv_key_len(x->kv), ly = taskenv_key_len(y->kv);
    int c = memcmp(x->kv, y->kv, lx < ly ? lx : ly);
    if (c == 0 && lx != ly)
        c = lx < ly ? -1 : 1;
    if (c == 0)
        c = x->pos < y->pos ? -1 : x->pos > y->pos;
    return c;
}

/* Keeps only the last definition of each key, in place and in order. Sorting by (key, position) finds the
 * survivors in O(n log n); a pod environment plus a workspace's variables can be thousands of entries. -1 when
 * out of memory. */
static int taskenv_dedupe(taskenv_vec *x)
{
    if (x->n < 2)
        return 0;
    taskenv_slot *s = malloc(x->n * sizeof *s);
    bool *drop = calloc(x->n, sizeof *drop);
    if (!s || !drop) {
        free(s);
        free(drop);
        return -1;
    }
    for (size_t i = 0; i < x->n; i++)
        s[i] = (taskenv_slot){ x->v[i], i };
    qsort(s, x->n, sizeof *s, taskenv_slot_cmp);
    for (size_t i = 0; i + 1 < x->n; i++) {
        size_t l = taskenv_key_len(s[i].kv);
        if (taskenv_key_len(s[i + 1].kv) == l && memcmp(s[i].kv, s[i + 1].kv, l) == 0)
            drop[s[i].pos] = true;
    }
    size_t w = 0;
    for (size_t i = 0; i < x->n; i++) {
        if (drop[i])
            free(x->v[i]);
        else
            x->v[w++] = x->v[i];
    }
    x->n = w;
    x->v[w] = NULL;
    free(s);
    free(drop);
    return 0;
}

char **taskenv_env(char *const *agent_env, const cJSON *variables, const cJSON *provider_config,
                   const char *init_workdir, char *err, size_t errlen)
{
    if (taskenv_check_list(variables, err, errlen) < 0)
        return NULL;
    taskenv_vec x = { 0 };
    for (size_t i = 0; agent_env && agent_env[i]; i++)
        if (strchr(agent_env[i], '=') && !taskenv_is_secret(agent_env[i]))
            taskenv_push(&x, agent_env[i]);
    for (size_t i = 0; i < sizeof taskenv_fixed / sizeof taskenv_fixed[0]; i++)
        taskenv_push(&x, taskenv_fixed[i]);

    bool region_named = false;
    const cJSON *list = cJSON_IsArray(variables) ? variables : NULL, *item;
    int i = 0;
    cJSON_ArrayForEach(item, list) {
        taskenv_var var;
        if (taskenv_read_var(item, i++, &var, err, errlen) < 0) {
            taskenv_free(x.v);
            return NULL;
        }
        if (!var.environment || !var.key[0] || strcmp(var.key, TASKENV_CLI_ARGS) == 0)
            continue;
        if (strcmp(var.key, "AWS_REGION") == 0 || strcmp(var.key, "AWS_DEFAULT_REGION") == 0)
            region_named = true;
        taskenv_pushf(&x, "%s=%s", var.key, var.value);
    }

    const char *region = region_named ? NULL : taskenv_aws_region(provider_config);
    if (region) {
        taskenv_pushf(&x, "AWS_DEFAULT_REGION=%s", region);
        taskenv_pushf(&x, "AWS_REGION=%s", region);
    }
    const char *cache = taskenv_getenv(agent_env, TASKENV_PLUGIN_CACHE);
    if (init_workdir && (!cache || !cache[0]))
        taskenv_pushf(&x, TASKENV_PLUGIN_CACHE "=%s/.terraform-plugin-cache", init_workdir);

    if (!x.oom && taskenv_dedupe(&x) < 0)
        x.oom = true;
    char **env = taskenv_finish(&x);
    if (!env)
        snprintf(err, errlen, "task environment: out of memory");
    return env;
}

/* ---- command lines --------------------------------------------------------------------------------------------- */

static bool taskenv_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static bool taskenv_has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

char **taskenv_cli_args(const char *s, bool drop_targets)
{
    taskenv_vec x = { 0 };
    bool skip_value = false; /* the previous token was a bare -target */
    for (const char *p = s ? s : ""; *p;) {
        while (*p && taskenv_is_space(*p))
            p++;
        if (!*p)
            break;
        const char *start = p;
        while (*p && !taskenv_is_space(*p))
            p++;
        char *tok = strndup(start, (size_t)(p - start));
        if (!tok) {
            x.oom = true;
            break;
        }
        if (drop_targets) {
            bool skip = skip_value;
            skip_value = false;
            if (!skip && (strcmp(tok, "-target") == 0 || strcmp(tok, "--target") == 0))
                skip = skip_value = true;
            else if (!skip && (taskenv_has_prefix(tok, "-target=") || taskenv_has_prefix(tok, "--target=")))
                skip = true;
            if (skip) {
                free(tok);
                continue;
            }
        }
        taskenv_push_owned(&x, tok);
    }
    return taskenv_finish(&x);
}

char **taskenv_argv_init(const char *bin)
{
    taskenv_vec x = { 0 };
    taskenv_push(&x, bin);
    taskenv_push(&x, "init");
    taskenv_push(&x, "-no-color");
    taskenv_push(&x, "-input=false");
    return taskenv_finish(&x);
}

char **taskenv_argv_plan(const char *bin, const char *workdir, bool drift_check, const cJSON *variables, char *err,
                         size_t errlen)
{
    const char *cli = NULL;
    if (taskenv_find_cli_args(variables, &cli, err, errlen) < 0)
        return NULL;
    char **extra = taskenv_cli_args(cli, drift_check);
    if (!extra) {
        snprintf(err, errlen, "plan command: out of memory");
        return NULL;
    }
    taskenv_vec x = { 0 };
    taskenv_push(&x, bin);
    taskenv_push(&x, "plan");
    taskenv_pushf(&x, "-out=%s/plan.out", workdir);
    taskenv_push(&x, "-no-color");
    taskenv_push(&x, "-var-file=variables.tfvars");
    if (drift_check)
        taskenv_push(&x, "-refresh-only");
    for (size_t i = 0; extra[i]; i++)
        taskenv_push(&x, extra[i]);
    taskenv_free(extra);
    char **argv = taskenv_finish(&x);
    if (!argv)
        snprintf(err, errlen, "plan command: out of memory");
    return argv;
}

char **taskenv_argv_show(const char *bin, const char *workdir)
{
    taskenv_vec x = { 0 };
    taskenv_push(&x, bin);
    taskenv_push(&x, "show");
    taskenv_push(&x, "-json");
    taskenv_pushf(&x, "%s/plan.out", workdir);
    return taskenv_finish(&x);
}

char **taskenv_argv_apply(const char *bin, const char *workdir)
{
    taskenv_vec x = { 0 };
    taskenv_push(&x, bin);
    taskenv_push(&x, "apply");
    taskenv_push(&x, "-no-color");
    taskenv_push(&x, "-auto-approve");
    taskenv_pushf(&x, "%s/plan.out", workdir);
    return taskenv_finish(&x);
}

/* ---- engine ---------------------------------------------------------------------------------------------------- */

static const char *const taskenv_tofu_markers[] = { "opentofu", "tofu_", "/tofu/" };

bool taskenv_engine_is_tofu(const char *url)
{
    for (const char *p = url; p && *p; p++) {
        for (size_t i = 0; i < sizeof taskenv_tofu_markers / sizeof taskenv_tofu_markers[0]; i++) {
            const char *m = taskenv_tofu_markers[i];
            size_t k = 0;
            while (m[k] && p[k] && tolower((unsigned char)p[k]) == m[k])
                k++;
            if (!m[k])
                return true;
        }
    }
    return false;
}
