/* test_chart.c — the Helm chart (charts/iac-agent), the operator docs and the two binaries agree.
 *
 * No helm binary is reachable where this project is built, so the chart is checked here, from the repository root
 * like every test: Chart.yaml and values.yaml parse (libyaml) and every value carries its comment; every .Values
 * path a template reads exists; every template is YAML once its template actions are taken out; the probes, the
 * status port, every environment variable, flag and pool-file key the templates set is one the binaries really
 * read (their --help output: $IAC_TEST_BUILD/iac-agent and iac-coordinator, default build/); the coordinator's
 * Role grants exactly the verbs it uses. docs/configuration.md must name every flag, variable and pool-file key of
 * both --help outputs, docs/metrics.md every metric name in the binaries' sources. With helm on PATH, `helm lint`
 * and `helm template` run too (skipped otherwise). */
#include <ctype.h>
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <yaml.h>

#include "iac/fsutil.h"
#include "iac/strbuf.h"

#define CHART     "charts/iac-agent"
#define TEMPLATES CHART "/templates"
#define FILE_MAX  (4 * 1024 * 1024)
#define NAMES_MAX 256

/* ---- small helpers: files, commands, words ---- */

static char *slurp(const char *path)
{
    char *text = NULL;
    size_t len = 0;
    int rc = fs_read_file(path, FILE_MAX, &text, &len);
    if (rc < 0)
        fail_msg("cannot read %s (%d): run the tests from the repository root", path, rc);
    return text;
}

/* The standard output of a command; fails the test unless it exits 0. */
static char *run_output(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        fail_msg("cannot run %s", cmd);
    strbuf b = STRBUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
        strbuf_append(&b, chunk, n);
    int st = pclose(p);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("`%s` failed (status %d)", cmd, st);
    assert_false(b.oom);
    return b.data ? strbuf_detach(&b, NULL) : strdup("");
}

static char *binary_output(const char *bin, const char *args)
{
    const char *build = getenv("IAC_TEST_BUILD");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s/%s' %s 2>&1", build && *build ? build : "build", bin, args);
    return run_output(cmd);
}

static bool word_char(char c) { return isalnum((unsigned char)c) || c == '_' || c == '-'; }

/* Whether word occurs in text with no name character (letter, digit, '_', '-') right before or after it:
 * "--listen" is not found in "--listen-all", "iac_pool_slots" not in "iac_pool_slots_total". */
static bool has_word(const char *text, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = strstr(text, word); p; p = strstr(p + 1, word))
        if ((p == text || !word_char(p[-1])) && !word_char(p[n]))
            return true;
    return false;
}

typedef struct {
    char *v[NAMES_MAX];
    int   n;
} names;

static void names_add(names *s, const char *start, size_t len)
{
    for (int i = 0; i < s->n; i++)
        if (strlen(s->v[i]) == len && !strncmp(s->v[i], start, len))
            return;
    assert_true(s->n < NAMES_MAX);
    s->v[s->n] = strndup(start, len);
    assert_non_null(s->v[s->n]);
    s->n++;
}

static bool names_has(const names *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->v[i], name))
            return true;
    return false;
}

static void names_free(names *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->v[i]);
    s->n = 0;
}

static bool env_name(const char *s, size_t n)
{
    if (n < 4 || !isupper((unsigned char)s[0]) || !memchr(s, '_', n))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isupper((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '_')
            return false;
    return true;
}

/* What a --help page declares: flags (lines "  --flag=VALUE  VAR  …" and any "--flag" in the text), variables
 * (the second column, and "$VAR" in the text) and, for the coordinator, the pool file's keys (lines "  key
 * (default …)"). */
typedef struct {
    names flags, env, keys;
} help_names;

static void help_parse(const char *help, help_names *h)
{
    for (const char *line = help; *line;) {
        const char *end = strchr(line, '\n');
        if (!end)
            end = line + strlen(line);
        const char *p = line;
        while (p < end && *p == ' ')
            p++;
        const char *tok = p;
        while (p < end && *p != ' ' && *p != '=' && *p != ',')
            p++;
        size_t toklen = (size_t)(p - tok);
        bool option_line = toklen > 2 && !strncmp(tok, "--", 2);
        bool env_only_line = toklen == 1 && tok[0] == '-';
        if (option_line || env_only_line) {
            while (p < end && *p != ' ')
                p++;
            while (p < end && *p == ' ')
                p++;
            const char *e = p;
            while (e < end && *e != ' ')
                e++;
            if (env_name(p, (size_t)(e - p)))
                names_add(&h->env, p, (size_t)(e - p));
        } else if (tok == line + 2 && toklen > 0 && islower((unsigned char)tok[0]) && p + 2 < end &&
                   p[0] == ' ' && p[1] == ' ') {
            const char *q = p;
            while (q < end && *q == ' ')
                q++;
            if (q < end && *q == '(')
                names_add(&h->keys, tok, toklen);
        }
        line = *end ? end + 1 : end;
    }
    /* Any "--flag" in the text, except on usage lines, where "[--flag value]" is a placeholder. */
    for (const char *p = strstr(help, "--"); p; p = strstr(p + 2, "--")) {
        const char *bol = p;
        while (bol > help && bol[-1] != '\n')
            bol--;
        if (!strncasecmp(bol, "usage:", 6))
            continue;
        const char *e = p + 2;
        while (islower((unsigned char)*e) || isdigit((unsigned char)*e) || *e == '-')
            e++;
        if (e > p + 2 && (p == help || !word_char(p[-1])))
            names_add(&h->flags, p, (size_t)(e - p));
    }
    for (const char *p = strchr(help, '$'); p; p = strchr(p + 1, '$')) {
        const char *e = p + 1;
        while (isupper((unsigned char)*e) || isdigit((unsigned char)*e) || *e == '_')
            e++;
        if (env_name(p + 1, (size_t)(e - p - 1)))
            names_add(&h->env, p + 1, (size_t)(e - p - 1));
    }
}

static void help_free(help_names *h)
{
    names_free(&h->flags);
    names_free(&h->env);
    names_free(&h->keys);
}

/* ---- YAML ---- */

/* Loads the first document of text; fails the test with libyaml's message and position. */
static void yaml_load(const char *text, const char *what, yaml_document_t *doc)
{
    yaml_parser_t p;
    assert_int_equal(yaml_parser_initialize(&p), 1);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, strlen(text));
    if (!yaml_parser_load(&p, doc) || !yaml_document_get_root_node(doc))
        fail_msg("%s does not parse: %s at line %zu", what, p.problem ? p.problem : "empty document",
                 p.problem_mark.line + 1);
    yaml_parser_delete(&p);
}

/* Parses every document of text; returns 0, or -1 with the problem in err. */
static int yaml_check_stream(const char *text, char *err, size_t errlen)
{
    yaml_parser_t p;
    assert_int_equal(yaml_parser_initialize(&p), 1);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, strlen(text));
    int rc = 0;
    for (;;) {
        yaml_document_t d;
        if (!yaml_parser_load(&p, &d)) {
            snprintf(err, errlen, "%s at line %zu", p.problem ? p.problem : "error", p.problem_mark.line + 1);
            rc = -1;
            break;
        }
        bool end = !yaml_document_get_root_node(&d);
        yaml_document_delete(&d);
        if (end)
            break;
    }
    yaml_parser_delete(&p);
    return rc;
}

static yaml_node_t *ymap_get(yaml_document_t *d, yaml_node_t *map, const char *key, size_t keylen)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = yaml_document_get_node(d, pr->key);
        if (k && k->type == YAML_SCALAR_NODE && k->data.scalar.length == keylen &&
            !memcmp(k->data.scalar.value, key, keylen))
            return yaml_document_get_node(d, pr->value);
    }
    return NULL;
}

/* The node at a dotted path from the root ("agent.log.format"), or NULL. */
static yaml_node_t *ypath(yaml_document_t *d, const char *path)
{
    yaml_node_t *n = yaml_document_get_root_node(d);
    for (const char *seg = path; n && *seg;) {
        const char *dot = strchr(seg, '.');
        size_t len = dot ? (size_t)(dot - seg) : strlen(seg);
        n = ymap_get(d, n, seg, len);
        seg = dot ? dot + 1 : seg + len;
    }
    return n;
}

static const char *yscalar(yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* The scalars of a sequence node, in names. */
static void yseq_names(yaml_document_t *d, yaml_node_t *seq, names *out)
{
    if (!seq || seq->type != YAML_SEQUENCE_NODE)
        return;
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
        const char *s = yscalar(yaml_document_get_node(d, *it));
        if (s)
            names_add(out, s, strlen(s));
    }
}

/* ---- templates ---- */

/* A template with its actions taken out: a line that holds only actions (and blanks) is dropped, an action among
 * other text becomes "x". What is left of a template that is right is YAML; an indentation slip in the static
 * text is not. Actions may span lines (comments). */
static char *strip_actions(const char *text, const char *what)
{
    strbuf out = STRBUF_INIT;
    size_t line_start = 0;
    bool content = false, action = false;
    for (const char *p = text;; p++) {
        if (p[0] == '{' && p[1] == '{') {
            const char *e = strstr(p, "}}");
            if (!e)
                fail_msg("%s: unterminated {{", what);
            strbuf_puts(&out, "x");
            action = true;
            p = e + 1;
            continue;
        }
        if (*p == '\n' || !*p) {
            if (action && !content) {
                out.len = line_start;
                if (out.data)
                    out.data[out.len] = '\0';
            } else if (*p) {
                strbuf_putc(&out, '\n');
            }
            line_start = out.len;
            content = action = false;
            if (!*p)
                break;
            continue;
        }
        strbuf_putc(&out, *p);
        if (!isspace((unsigned char)*p))
            content = true;
    }
    assert_false(out.oom);
    return out.data ? strbuf_detach(&out, NULL) : strdup("");
}

/* The names of the chart's templates directory, "*.yaml" (wanted_yaml) or every file. */
static void template_files(names *out, bool only_yaml)
{
    DIR *dir = opendir(TEMPLATES);
    assert_non_null(dir);
    for (struct dirent *e; (e = readdir(dir));) {
        size_t n = strlen(e->d_name);
        if (e->d_name[0] == '.')
            continue;
        if (only_yaml && (n < 5 || strcmp(e->d_name + n - 5, ".yaml") != 0))
            continue;
        names_add(out, e->d_name, n);
    }
    closedir(dir);
    assert_true(out->n > 0);
}

static char *template_text(const char *file)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", TEMPLATES, file);
    return slurp(path);
}

/* The environment variables a template sets: list entries "- name: UPPER_CASE". */
static void template_env(const char *text, names *out)
{
    for (const char *p = strstr(text, "- name: "); p; p = strstr(p + 1, "- name: ")) {
        const char *s = p + 8, *e = s;
        while (*e && *e != '\n' && *e != ' ')
            e++;
        if (env_name(s, (size_t)(e - s)))
            names_add(out, s, (size_t)(e - s));
    }
}

/* The text of a variable's entry in a template: from "- name: VAR" to the next list entry. */
static char *env_entry(const char *text, const char *var)
{
    char needle[128];
    snprintf(needle, sizeof needle, "- name: %s\n", var);
    const char *s = strstr(text, needle);
    if (!s)
        return NULL;
    const char *e = strstr(s + strlen(needle), "- name: ");
    return strndup(s, e ? (size_t)(e - s) : strlen(s));
}

/* ---- the shared state: values.yaml and both --help pages, read once ---- */

typedef struct {
    char            *values_text;
    yaml_document_t  values;
    char            *agent_help, *coord_help;
    help_names       agent, coord;
} chart;

static int chart_setup(void **state)
{
    chart *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->values_text = slurp(CHART "/values.yaml");
    yaml_load(c->values_text, "values.yaml", &c->values);
    char *a = binary_output("iac-agent", "--help");
    char *as = binary_output("iac-agent", "status --help");
    char *k = binary_output("iac-coordinator", "--help");
    char *ks = binary_output("iac-coordinator", "status --help");
    strbuf b = STRBUF_INIT;
    strbuf_printf(&b, "%s\n%s", a, as);
    c->agent_help = strbuf_detach(&b, NULL);
    strbuf_printf(&b, "%s\n%s", k, ks);
    c->coord_help = strbuf_detach(&b, NULL);
    free(a), free(as), free(k), free(ks);
    help_parse(c->agent_help, &c->agent);
    help_parse(c->coord_help, &c->coord);
    *state = c;
    return 0;
}

static int chart_teardown(void **state)
{
    chart *c = *state;
    yaml_document_delete(&c->values);
    free(c->values_text);
    free(c->agent_help);
    free(c->coord_help);
    help_free(&c->agent);
    help_free(&c->coord);
    free(c);
    return 0;
}

/* ---- tests ---- */

/* Chart.yaml is a v2 chart named iac-agent whose appVersion (the default image tag) is the repository's VERSION;
 * values.yaml is a mapping. */
static void chart_and_values_parse(void **state)
{
    chart *c = *state;
    char *text = slurp(CHART "/Chart.yaml");
    yaml_document_t d;
    yaml_load(text, "Chart.yaml", &d);
    assert_string_equal(yscalar(ypath(&d, "apiVersion")), "v2");
    assert_string_equal(yscalar(ypath(&d, "name")), "iac-agent");
    assert_non_null(yscalar(ypath(&d, "version")));
    char *version = slurp("VERSION");
    version[strcspn(version, " \t\r\n")] = '\0';
    assert_string_equal(yscalar(ypath(&d, "appVersion")), version);
    free(version);
    yaml_document_delete(&d);
    free(text);
    assert_int_equal(yaml_document_get_root_node(&c->values)->type, YAML_MAPPING_NODE);
}

/* Walks every mapping of values.yaml and fails on a key with no comment on the line above (or after it). */
static void check_documented(yaml_document_t *d, yaml_node_t *n, char **lines, size_t nlines, int *missing)
{
    if (!n)
        return;
    if (n->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++)
            check_documented(d, yaml_document_get_node(d, *it), lines, nlines, missing);
        return;
    }
    if (n->type != YAML_MAPPING_NODE)
        return;
    for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = yaml_document_get_node(d, pr->key);
        size_t line = k->start_mark.line;
        const char *above = line > 0 && line - 1 < nlines ? lines[line - 1] : "";
        while (*above == ' ')
            above++;
        bool inline_comment = line < nlines && strstr(lines[line], " #");
        if (*above != '#' && !inline_comment) {
            print_message("values.yaml:%zu: \"%s\" has no comment\n", line + 1, k->data.scalar.value);
            (*missing)++;
        }
        check_documented(d, yaml_document_get_node(d, pr->value), lines, nlines, missing);
    }
}

/* values.yaml is documented field by field: every key has its comment. */
static void every_value_is_documented(void **state)
{
    chart *c = *state;
    char *copy = strdup(c->values_text);
    char *lines[2048];
    size_t n = 0;
    for (char *s = copy, *nl; s && n < 2048; s = nl ? nl + 1 : NULL) {
        nl = strchr(s, '\n');
        if (nl)
            *nl = '\0';
        lines[n++] = s;
    }
    int missing = 0;
    check_documented(&c->values, yaml_document_get_root_node(&c->values), lines, n, &missing);
    free(copy);
    assert_int_equal(missing, 0);
}

/* Every .Values.a.b.c a template (or NOTES.txt, or _helpers.tpl) reads exists in values.yaml: a typo would render
 * as nothing, silently. */
static void template_values_exist(void **state)
{
    chart *c = *state;
    names files = { 0 };
    template_files(&files, false);
    int refs = 0, missing = 0;
    for (int i = 0; i < files.n; i++) {
        char *text = template_text(files.v[i]);
        for (const char *p = strstr(text, ".Values."); p; p = strstr(p + 1, ".Values.")) {
            const char *s = p + 8, *e = s;
            while (isalnum((unsigned char)*e) || *e == '_' || (*e == '.' && (isalnum((unsigned char)e[1]) ||
                                                                             e[1] == '_')))
                e++;
            char *path = strndup(s, (size_t)(e - s));
            refs++;
            if (!ypath(&c->values, path)) {
                print_message("%s: .Values.%s is not in values.yaml\n", files.v[i], path);
                missing++;
            }
            free(path);
        }
        free(text);
    }
    names_free(&files);
    assert_true(refs > 20);
    assert_int_equal(missing, 0);
}

/* Every template is YAML once its actions are taken out: the static part of each manifest is well formed. */
static void templates_are_yaml_without_their_actions(void **state)
{
    (void)state;
    names files = { 0 };
    template_files(&files, true);
    int bad = 0;
    for (int i = 0; i < files.n; i++) {
        char *text = template_text(files.v[i]);
        char *plain = strip_actions(text, files.v[i]);
        char err[256];
        if (yaml_check_stream(plain, err, sizeof err) < 0) {
            print_message("%s (actions removed): %s\n", files.v[i], err);
            bad++;
        }
        free(plain);
        free(text);
    }
    names_free(&files);
    assert_int_equal(bad, 0);
}

/* Liveness is GET /healthz and readiness GET /readyz on the container port named "status", the agent's status
 * server (IAC_AGENT_LISTEN) whose default port in `iac-agent --help` is values.yaml's agent.statusPort; the
 * coordinator's probes are routes of its API. */
static void probes_and_status_port_are_what_the_binaries_serve(void **state)
{
    chart *c = *state;
    char *agent = template_text("agent-deployment.yaml");
    const char *live = strstr(agent, "livenessProbe:"), *ready = strstr(agent, "readinessProbe:");
    assert_non_null(live);
    assert_non_null(ready);
    assert_non_null(strstr(live, "path: /healthz"));
    assert_true(strstr(live, "path: /healthz") < ready);
    assert_non_null(strstr(ready, "path: /readyz"));
    assert_true(has_word(c->agent_help, "/healthz"));
    assert_true(has_word(c->agent_help, "/readyz"));
    assert_non_null(strstr(agent, "port: status"));
    assert_non_null(strstr(agent, "- name: status\n              containerPort: {{ .Values.agent.statusPort }}"));
    char *listen = env_entry(agent, "IAC_AGENT_LISTEN");
    assert_non_null(listen);
    assert_non_null(strstr(listen, ".Values.agent.statusPort"));
    free(listen);
    const char *def = strstr(c->agent_help, "IAC_AGENT_LISTEN");
    assert_non_null(def);
    def = strstr(def, "(default 0.0.0.0:");
    assert_non_null(def);
    assert_int_equal(atoi(def + strlen("(default 0.0.0.0:")), atoi(yscalar(ypath(&c->values, "agent.statusPort"))));
    free(agent);

    char *coord = template_text("coordinator-deployment.yaml");
    char *api = slurp("coordinator/api.c");
    assert_non_null(strstr(coord, "path: /healthz"));
    assert_non_null(strstr(coord, "path: /readyz"));
    assert_non_null(strstr(api, "\"/healthz\""));
    assert_non_null(strstr(api, "\"/readyz\""));
    free(api);
    free(coord);
}

/* Every variable the agent Deployment sets is one `iac-agent --help` lists; IAC_AGENT_NAME is the pod name. */
static void agent_environment_is_what_the_agent_reads(void **state)
{
    chart *c = *state;
    char *agent = template_text("agent-deployment.yaml");
    names env = { 0 };
    template_env(agent, &env);
    assert_true(env.n >= 10);
    int unknown = 0;
    for (int i = 0; i < env.n; i++)
        if (!names_has(&c->agent.env, env.v[i])) {
            print_message("agent-deployment.yaml sets %s, which iac-agent --help does not list\n", env.v[i]);
            unknown++;
        }
    assert_int_equal(unknown, 0);
    char *name = env_entry(agent, "IAC_AGENT_NAME");
    assert_non_null(name);
    assert_non_null(strstr(name, "fieldPath: metadata.name"));
    free(name);
    names_free(&env);
    free(agent);
}

/* Every variable and flag the coordinator Deployment sets is one `iac-coordinator --help` (or `status --help`)
 * lists; POD_NAME, its --identity, is the pod name. */
static void coordinator_environment_and_flags_are_what_it_reads(void **state)
{
    chart *c = *state;
    char *coord = template_text("coordinator-deployment.yaml");
    names env = { 0 };
    template_env(coord, &env);
    assert_true(env.n >= 5);
    int unknown = 0;
    for (int i = 0; i < env.n; i++)
        if (!names_has(&c->coord.env, env.v[i])) {
            print_message("coordinator-deployment.yaml sets %s, which iac-coordinator --help does not list\n",
                          env.v[i]);
            unknown++;
        }
    int flags = 0;
    for (const char *p = strstr(coord, "- --"); p; p = strstr(p + 1, "- --")) {
        const char *s = p + 2, *e = s;
        while (*e && *e != '=' && *e != '\n' && *e != ' ')
            e++;
        char *flag = strndup(s, (size_t)(e - s));
        flags++;
        if (!names_has(&c->coord.flags, flag)) {
            print_message("coordinator-deployment.yaml passes %s, which iac-coordinator --help does not list\n", flag);
            unknown++;
        }
        free(flag);
    }
    assert_true(flags >= 1);
    assert_int_equal(unknown, 0);
    char *pod = env_entry(coord, "POD_NAME");
    assert_non_null(pod);
    assert_non_null(strstr(pod, "fieldPath: metadata.name"));
    free(pod);
    const char *identity = strstr(c->coord_help, "--identity");
    assert_non_null(identity);
    assert_non_null(strstr(identity, "POD_NAME"));
    assert_true(strstr(identity, "POD_NAME") < strchr(identity, '\n'));
    assert_non_null(strstr(coord, "command:\n            - iac-coordinator"));
    names_free(&env);
    free(coord);
}

/* The pool file in the ConfigMap uses only keys the coordinator accepts (it refuses unknown ones), names the agent
 * Deployment this chart creates and the token file both Deployments mount. */
static void pool_file_points_at_the_chart_agents_and_token(void **state)
{
    chart *c = *state;
    char *cm = template_text("coordinator-configmap.yaml");
    assert_true(has_word(c->coord_help, "\"pools\""));
    int keys = 0, unknown = 0;
    const char *body = strstr(cm, "pools.json: |");
    assert_non_null(body);
    for (const char *p = strchr(body, '"'); p; p = strchr(p + 1, '"')) {
        const char *e = p + 1;
        while (islower((unsigned char)*e) || isdigit((unsigned char)*e) || *e == '_')
            e++;
        if (e == p + 1 || e[0] != '"' || e[1] != ':') {
            p = e[0] == '"' ? e : p; /* skip a quoted value */
            continue;
        }
        char *key = strndup(p + 1, (size_t)(e - p - 1));
        bool known = !strcmp(key, "pools");
        for (int i = 0; i < c->coord.keys.n && !known; i++) {
            const char *k = c->coord.keys.v[i], *dot = strchr(k, '.');
            size_t kl = strlen(key);
            known = !strcmp(k, key) || (dot && ((size_t)(dot - k) == kl && !strncmp(k, key, kl))) ||
                    (dot && !strcmp(dot + 1, key));
        }
        keys++;
        if (!known) {
            print_message("the pool file sets \"%s\", which iac-coordinator --help does not list\n", key);
            unknown++;
        }
        free(key);
        p = e;
    }
    assert_true(keys >= 10);
    assert_int_equal(unknown, 0);
    assert_non_null(strstr(cm, "\"deployment\": {{ include \"iac-agent.agentName\" . | toJson }}"));
    assert_non_null(strstr(cm, "\"token_file\": {{ include \"iac-agent.tokenFile\" . | toJson }}"));
    assert_non_null(strstr(cm, "\"namespace\": {{ .Release.Namespace | toJson }}"));
    assert_non_null(strstr(cm, "\"agent_port\": {{ .Values.agent.statusPort | int }}"));
    assert_non_null(strstr(cm, "\"slots_per_pod\": {{ .Values.agent.slots | int }}"));
    free(cm);

    const char *deployments[] = { "agent-deployment.yaml", "coordinator-deployment.yaml" };
    for (size_t i = 0; i < 2; i++) {
        char *t = template_text(deployments[i]);
        assert_non_null(strstr(t, "mountPath: {{ include \"iac-agent.tokenDir\" . }}"));
        assert_non_null(strstr(t, "secretName: {{ include \"iac-agent.tokenSecretName\" . }}"));
        assert_non_null(strstr(t, "path: token\n"));
        free(t);
    }
    char *agent = template_text("agent-deployment.yaml");
    assert_non_null(strstr(agent, "  name: {{ include \"iac-agent.agentName\" . }}\n"));
    char *tf = env_entry(agent, "IAC_AGENT_TOKEN_FILE");
    assert_non_null(tf);
    assert_non_null(strstr(tf, "include \"iac-agent.tokenFile\""));
    free(tf);
    free(agent);
    char *helpers = template_text("_helpers.tpl");
    assert_non_null(strstr(helpers, "define \"iac-agent.tokenFile\" -}}{{ include \"iac-agent.tokenDir\" . }}/token"));
    free(helpers);
}

/* The coordinator's Role grants exactly what it uses, nothing more and nothing less. The expected list is
 * coordinator/pool.c's pool_rbac_needs (deployments, deployments/scale, pods, events) and coordinator/leader.c's
 * Lease calls (GET, POST = create, PUT = update); change the three together. */
static void role_grants_exactly_the_verbs_the_coordinator_uses(void **state)
{
    (void)state;
    static const char *const expected[] = {
        "apps deployments get",
        "apps deployments/scale get",
        "apps deployments/scale patch",
        " pods list",
        " pods get",
        " pods patch",
        " events create",
        "coordination.k8s.io leases get",
        "coordination.k8s.io leases create",
        "coordination.k8s.io leases update",
    };
    char *text = template_text("coordinator-role.yaml");
    char *plain = strip_actions(text, "coordinator-role.yaml");
    yaml_document_t d;
    yaml_load(plain, "coordinator-role.yaml", &d);
    assert_string_equal(yscalar(ypath(&d, "kind")), "Role");
    yaml_node_t *rules = ypath(&d, "rules");
    assert_non_null(rules);
    assert_int_equal(rules->type, YAML_SEQUENCE_NODE);
    names granted = { 0 };
    for (yaml_node_item_t *it = rules->data.sequence.items.start; it < rules->data.sequence.items.top; it++) {
        yaml_node_t *rule = yaml_document_get_node(&d, *it);
        assert_null(ymap_get(&d, rule, "resourceNames", 13));
        names groups = { 0 }, resources = { 0 }, verbs = { 0 };
        yseq_names(&d, ymap_get(&d, rule, "apiGroups", 9), &groups);
        yseq_names(&d, ymap_get(&d, rule, "resources", 9), &resources);
        yseq_names(&d, ymap_get(&d, rule, "verbs", 5), &verbs);
        assert_true(groups.n > 0 && resources.n > 0 && verbs.n > 0);
        for (int g = 0; g < groups.n; g++)
            for (int r = 0; r < resources.n; r++)
                for (int v = 0; v < verbs.n; v++) {
                    char triple[256];
                    snprintf(triple, sizeof triple, "%s %s %s", groups.v[g], resources.v[r], verbs.v[v]);
                    if (granted.n && names_has(&granted, triple))
                        fail_msg("the Role grants %s twice", triple);
                    names_add(&granted, triple, strlen(triple));
                }
        names_free(&groups), names_free(&resources), names_free(&verbs);
    }
    size_t n = sizeof expected / sizeof expected[0];
    for (size_t i = 0; i < n; i++)
        if (!names_has(&granted, expected[i]))
            fail_msg("the Role does not grant \"%s\", which the coordinator uses", expected[i]);
    for (int i = 0; i < granted.n; i++) {
        bool used = false;
        for (size_t j = 0; j < n && !used; j++)
            used = !strcmp(granted.v[i], expected[j]);
        if (!used)
            fail_msg("the Role grants \"%s\", which the coordinator does not use", granted.v[i]);
    }
    assert_int_equal((size_t)granted.n, n);
    names_free(&granted);
    yaml_document_delete(&d);
    free(plain);
    free(text);
}

/* Both Deployments run non-root with a read-only root file system, no capabilities and the runtime's seccomp
 * profile; the agent writes to emptyDirs (data dir, /tmp) and its grace period covers drain + cancel grace. */
static void pods_are_locked_down_and_agents_get_time_to_drain(void **state)
{
    chart *c = *state;
    yaml_document_t *v = &c->values;
    assert_string_equal(yscalar(ypath(v, "podSecurityContext.runAsNonRoot")), "true");
    assert_string_equal(yscalar(ypath(v, "podSecurityContext.runAsUser")), "10001");
    assert_string_equal(yscalar(ypath(v, "podSecurityContext.seccompProfile.type")), "RuntimeDefault");
    assert_string_equal(yscalar(ypath(v, "containerSecurityContext.readOnlyRootFilesystem")), "true");
    assert_string_equal(yscalar(ypath(v, "containerSecurityContext.allowPrivilegeEscalation")), "false");
    names drop = { 0 };
    yseq_names(v, ypath(v, "containerSecurityContext.capabilities.drop"), &drop);
    assert_int_equal(drop.n, 1);
    assert_string_equal(drop.v[0], "ALL");
    names_free(&drop);
    const char *deployments[] = { "agent-deployment.yaml", "coordinator-deployment.yaml" };
    for (size_t i = 0; i < 2; i++) {
        char *t = template_text(deployments[i]);
        assert_non_null(strstr(t, "toYaml .Values.podSecurityContext"));
        assert_non_null(strstr(t, "toYaml .Values.containerSecurityContext"));
        assert_non_null(strstr(t, "mountPath: /tmp"));
        free(t);
    }
    char *agent = template_text("agent-deployment.yaml");
    assert_non_null(strstr(agent, "terminationGracePeriodSeconds: {{ include \"iac-agent.agentGraceSeconds\" . }}"));
    assert_non_null(strstr(agent, "mountPath: {{ include \"iac-agent.dataDir\" . }}"));
    char *drain = env_entry(agent, "IAC_AGENT_DRAIN_TIMEOUT");
    assert_non_null(drain);
    assert_non_null(strstr(drain, "iac-agent.drainSeconds"));
    free(drain);
    char *cache = env_entry(agent, "TF_PLUGIN_CACHE_DIR");
    assert_non_null(cache);
    assert_non_null(strstr(cache, ".Values.agent.pluginCache.mountPath"));
    free(cache);
    free(agent);
    char *helpers = template_text("_helpers.tpl");
    const char *grace = strstr(helpers, "define \"iac-agent.agentGraceSeconds\"");
    assert_non_null(grace);
    const char *end = strstr(grace, "{{- end -}}");
    assert_non_null(end);
    char *body = strndup(grace, (size_t)(end - grace));
    assert_non_null(strstr(body, "iac-agent.drainSeconds"));
    assert_non_null(strstr(body, ".Values.agent.cancelGraceSeconds"));
    assert_non_null(strstr(body, ".Values.agent.terminationMarginSeconds"));
    free(body);
    free(helpers);
}

/* NOTES.txt tells the operator how to see the pool and explain a task, with commands the coordinator has. */
static void notes_show_the_pool_and_explain_a_task(void **state)
{
    chart *c = *state;
    char *notes = template_text("NOTES.txt");
    assert_non_null(strstr(notes, "kubectl"));
    assert_non_null(strstr(notes, "-- iac-coordinator status"));
    assert_non_null(strstr(notes, "-- iac-coordinator explain "));
    assert_non_null(strstr(notes, "-- iac-agent status"));
    assert_non_null(strstr(c->coord_help, "iac-coordinator status"));
    assert_non_null(strstr(c->coord_help, "iac-coordinator explain"));
    free(notes);
}

static int check_doc_mentions(const char *doc, const char *docname, const names *s, const char *from)
{
    int missing = 0;
    for (int i = 0; i < s->n; i++)
        if (!has_word(doc, s->v[i])) {
            print_message("%s does not mention %s (from %s)\n", docname, s->v[i], from);
            missing++;
        }
    return missing;
}

/* docs/configuration.md names every flag, variable and pool-file key of both --help pages. */
static void configuration_md_lists_every_option(void **state)
{
    chart *c = *state;
    char *doc = slurp("docs/configuration.md");
    assert_true(c->agent.flags.n >= 20 && c->agent.env.n >= 20);
    assert_true(c->coord.flags.n >= 20 && c->coord.env.n >= 5 && c->coord.keys.n >= 10);
    int missing = check_doc_mentions(doc, "docs/configuration.md", &c->agent.flags, "iac-agent --help") +
                  check_doc_mentions(doc, "docs/configuration.md", &c->agent.env, "iac-agent --help") +
                  check_doc_mentions(doc, "docs/configuration.md", &c->coord.flags, "iac-coordinator --help") +
                  check_doc_mentions(doc, "docs/configuration.md", &c->coord.env, "iac-coordinator --help") +
                  check_doc_mentions(doc, "docs/configuration.md", &c->coord.keys, "iac-coordinator --help");
    free(doc);
    assert_int_equal(missing, 0);
}

/* The metric names in the sources of a directory: string literals "iac_…". */
static void source_metrics(const char *dir, names *out)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n < 3 || strcmp(e->d_name + n - 2, ".c") != 0)
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        char *text = slurp(path);
        for (const char *p = strstr(text, "\"iac_"); p; p = strstr(p + 1, "\"iac_")) {
            const char *s = p + 1, *q = s;
            while (islower((unsigned char)*q) || isdigit((unsigned char)*q) || *q == '_')
                q++;
            if (*q == '"')
                names_add(out, s, (size_t)(q - s));
        }
        free(text);
    }
    closedir(d);
}

/* docs/metrics.md describes every metric the binaries export, and names none they do not (histogram series may
 * carry _bucket, _sum and _count). */
static void metrics_md_lists_every_metric(void **state)
{
    (void)state;
    names m = { 0 };
    source_metrics("agent", &m);
    source_metrics("coordinator", &m);
    assert_true(m.n >= 20);
    char *doc = slurp("docs/metrics.md");
    int missing = check_doc_mentions(doc, "docs/metrics.md", &m, "agent/*.c, coordinator/*.c");
    for (const char *p = strstr(doc, "`iac_"); p; p = strstr(p + 1, "`iac_")) {
        const char *s = p + 1, *q = s;
        while (islower((unsigned char)*q) || isdigit((unsigned char)*q) || *q == '_')
            q++;
        char *name = strndup(s, (size_t)(q - s));
        static const char *const suffixes[] = { "_bucket", "_sum", "_count" };
        bool known = names_has(&m, name);
        for (size_t i = 0; i < 3 && !known; i++) {
            size_t nl = strlen(name), sl = strlen(suffixes[i]);
            if (nl > sl && !strcmp(name + nl - sl, suffixes[i])) {
                name[nl - sl] = '\0';
                known = names_has(&m, name);
            }
        }
        if (!known) {
            print_message("docs/metrics.md names %s, which no source exports\n", s);
            missing++;
        }
        free(name);
    }
    free(doc);
    names_free(&m);
    assert_int_equal(missing, 0);
}

/* With helm on PATH, `helm lint` and `helm template` accept the chart with the required values set. */
static void helm_lint_and_template_pass(void **state)
{
    (void)state;
    if (system("command -v helm >/dev/null 2>&1") != 0)
        skip();
    const char *set = "--set pool.id=pool-test,controlPlane.endpoint=plane.example,token.value=apt_pool-test_00";
    char cmd[512];
    snprintf(cmd, sizeof cmd, "helm lint " CHART " %s >/dev/null", set);
    free(run_output(cmd));
    snprintf(cmd, sizeof cmd, "helm template check " CHART " %s", set);
    char *out = run_output(cmd);
    assert_non_null(strstr(out, "kind: Role"));
    assert_non_null(strstr(out, "kind: PodDisruptionBudget"));
    char err[256];
    if (yaml_check_stream(out, err, sizeof err) < 0)
        fail_msg("helm template output: %s", err);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chart_and_values_parse),
        cmocka_unit_test(every_value_is_documented),
        cmocka_unit_test(template_values_exist),
        cmocka_unit_test(templates_are_yaml_without_their_actions),
        cmocka_unit_test(probes_and_status_port_are_what_the_binaries_serve),
        cmocka_unit_test(agent_environment_is_what_the_agent_reads),
        cmocka_unit_test(coordinator_environment_and_flags_are_what_it_reads),
        cmocka_unit_test(pool_file_points_at_the_chart_agents_and_token),
        cmocka_unit_test(role_grants_exactly_the_verbs_the_coordinator_uses),
        cmocka_unit_test(pods_are_locked_down_and_agents_get_time_to_drain),
        cmocka_unit_test(notes_show_the_pool_and_explain_a_task),
        cmocka_unit_test(configuration_md_lists_every_option),
        cmocka_unit_test(metrics_md_lists_every_metric),
        cmocka_unit_test(helm_lint_and_template_pass),
    };
    return cmocka_run_group_tests(tests, chart_setup, chart_teardown);
}
