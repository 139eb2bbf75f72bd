/* podenv.c — a pod's command line, environment, ports and probe (see podenv.h).
 *
 * The environment is built as an ordered list of "NAME=value" strings in which a name defined again replaces its
 * earlier entry in place; fieldRef paths are resolved through a table. */
#include "podenv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iac/digest.h"
#include "iac/strbuf.h"

typedef struct {
    char  **v; /* NULL-terminated once anything is set */
    size_t  n;
} envlist;

static const cJSON *get(const cJSON *o, const char *key)
{
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

static const char *get_str(const cJSON *o, const char *key)
{
    const cJSON *v = get(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *first_container(const cJSON *pod)
{
    const cJSON *cs = get(get(pod, "spec"), "containers");
    return cJSON_IsArray(cs) ? cJSON_GetArrayItem(cs, 0) : NULL;
}

static void env_clear(envlist *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->v[i]);
    free(e->v);
    memset(e, 0, sizeof *e);
}

/* Sets name=value (replacing an earlier entry). 0 or -ENOMEM / -E2BIG. */
static int env_set(envlist *e, const char *name, const char *value)
{
    size_t nlen = strlen(name);
    size_t len = nlen + strlen(value) + 2;
    char *s = malloc(len);
    if (!s)
        return -ENOMEM;
    snprintf(s, len, "%s=%s", name, value);
    for (size_t i = 0; i < e->n; i++)
        if (strncmp(e->v[i], name, nlen) == 0 && e->v[i][nlen] == '=') {
            free(e->v[i]);
            e->v[i] = s;
            return 0;
        }
    if (e->n >= PODENV_MAX_VARS) {
        free(s);
        return -E2BIG;
    }
    char **nv = realloc(e->v, (e->n + 2) * sizeof *nv);
    if (!nv) {
        free(s);
        return -ENOMEM;
    }
    e->v = nv;
    e->v[e->n++] = s;
    e->v[e->n] = NULL;
    return 0;
}

static const char *env_lookup(char *const *env, size_t n, const char *name, size_t nlen)
{
    for (size_t i = 0; i < n; i++)
        if (strncmp(env[i], name, nlen) == 0 && env[i][nlen] == '=')
            return env[i] + nlen + 1;
    return NULL;
}

char *podenv_expand(const char *s, char *const *env, size_t n)
{
    strbuf b = STRBUF_INIT;
    for (const char *p = s; *p;) {
        if (p[0] != '$') {
            strbuf_putc(&b, *p++);
            continue;
        }
        if (p[1] == '$') { /* "$$" is an escaped '$' */
            strbuf_putc(&b, '$');
            p += 2;
            continue;
        }
        if (p[1] != '(') {
            strbuf_putc(&b, *p++);
            continue;
        }
        const char *close = strchr(p + 2, ')');
        if (!close) { /* no closing parenthesis: the rest is literal */
            strbuf_puts(&b, p);
            break;
        }
        const char *v = env_lookup(env, n, p + 2, (size_t)(close - p - 2));
        if (v)
            strbuf_puts(&b, v);
        else
            strbuf_append(&b, p, (size_t)(close + 1 - p)); /* unknown: kept as written */
        p = close + 1;
    }
    if (b.oom) {
        strbuf_free(&b);
        return NULL;
    }
    return b.data ? strbuf_detach(&b, NULL) : strdup("");
}

/* ---- fieldRef ---- */

typedef struct {
    const cJSON      *pod;
    const podenv_ctx *ctx;
} field_src;

static const char *f_name(const field_src *s) { return get_str(get(s->pod, "metadata"), "name"); }
static const char *f_namespace(const field_src *s) { return get_str(get(s->pod, "metadata"), "namespace"); }
static const char *f_uid(const field_src *s) { return get_str(get(s->pod, "metadata"), "uid"); }
static const char *f_node(const field_src *s) { return s->ctx->node_name; }
static const char *f_pod_ip(const field_src *s) { return s->ctx->pod_ip; }
static const char *f_host_ip(const field_src *s)
{
    (void)s;
    return "127.0.0.1";
}
static const char *f_service_account(const field_src *s)
{
    const char *sa = get_str(get(s->pod, "spec"), "serviceAccountName");
    return sa ? sa : "default";
}

static const struct {
    const char *path;
    const char *(*fn)(const field_src *s);
} field_table[] = {
    { "metadata.name", f_name },        { "metadata.namespace", f_namespace },
    { "metadata.uid", f_uid },          { "spec.nodeName", f_node },
    { "spec.serviceAccountName", f_service_account },
    { "status.podIP", f_pod_ip },       { "status.podIPs", f_pod_ip },
    { "status.hostIP", f_host_ip },     { "status.hostIPs", f_host_ip },
};

/* "metadata.labels['k']" / "metadata.annotations['k']": the map and the key. */
static const char *field_map_value(const cJSON *pod, const char *path, bool *known)
{
    static const char *const maps[] = { "labels", "annotations" };
    for (size_t i = 0; i < 2; i++) {
        char prefix[32];
        int n = snprintf(prefix, sizeof prefix, "metadata.%s['", maps[i]);
        size_t plen = strlen(path);
        if (strncmp(path, prefix, (size_t)n) != 0 || plen < (size_t)n + 2 || strcmp(path + plen - 2, "']") != 0)
            continue;
        *known = true;
        const cJSON *m = get(get(pod, "metadata"), maps[i]);
        const cJSON *it;
        size_t klen = plen - (size_t)n - 2;
        cJSON_ArrayForEach(it, m) if (strlen(it->string) == klen && strncmp(it->string, path + n, klen) == 0 &&
                                      cJSON_IsString(it)) return it->valuestring;
        return "";
    }
    return NULL;
}

static int field_value(const field_src *s, const char *path, const char **out)
{
    for (size_t i = 0; i < sizeof field_table / sizeof field_table[0]; i++)
        if (strcmp(field_table[i].path, path) == 0) {
            const char *v = field_table[i].fn(s);
            *out = v ? v : "";
            return 0;
        }
    bool known = false;
    const char *v = field_map_value(s->pod, path, &known);
    if (known) {
        *out = v;
        return 0;
    }
    return -1;
}

/* ---- secretKeyRef ---- */

/* The decoded value of key in the secret (malloc'd). 0, -ENOENT (no secret), -ENOKEY (no such key), -EINVAL (the
 * value is not base64 or holds a NUL byte), -ENOMEM. */
static int secret_value(const store *st, const char *ns, const char *name, const char *key, char **out)
{
    kobj *o = st ? store_find(st, RES_SECRETS, ns, name) : NULL;
    if (!o)
        return -ENOENT;
    const char *b64 = get_str(get(o->doc, "data"), key);
    if (!b64)
        return -ENOKEY;
    uint8_t *raw;
    size_t len;
    int rc = digest_base64_decode(b64, strlen(b64), &raw, &len);
    if (rc < 0)
        return rc;
    if (memchr(raw, '\0', len)) {
        free(raw);
        return -EINVAL;
    }
    *out = (char *)raw;
    return 0;
}

/* ---- building ---- */

typedef struct {
    char  *reason;
    size_t reasonlen;
    char  *err;
    size_t errlen;
} failure;

static int fail(failure *f, const char *reason, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(failure *f, const char *reason, const char *fmt, ...)
{
    va_list ap;
    snprintf(f->reason, f->reasonlen, "%s", reason);
    va_start(ap, fmt);
    vsnprintf(f->err, f->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Sets a container variable in the environment and in the expansion scope (the container's variables only). */
static int env_set2(envlist *e, envlist *scope, const char *name, const char *value)
{
    int rc = env_set(e, name, value);
    return rc < 0 ? rc : env_set(scope, name, value);
}

/* One env entry of the container: 0 (set, or skipped as optional), -1 with the failure filled. */
static int container_var(envlist *e, envlist *scope, const cJSON *var, const field_src *src, failure *f)
{
    const char *name = get_str(var, "name");
    if (!name || !*name)
        return fail(f, "CreateContainerConfigError", "an env entry has no name");
    const char *value = get_str(var, "value");
    const cJSON *from = get(var, "valueFrom");
    const char *ns = f_namespace(src);
    int rc = 0;
    if (from) {
        const cJSON *fr = get(from, "fieldRef"), *sk = get(from, "secretKeyRef"), *ck = get(from, "configMapKeyRef");
        if (fr) {
            const char *path = get_str(fr, "fieldPath"), *v;
            if (!path || field_value(src, path, &v) < 0)
                return fail(f, "CreateContainerConfigError", "env %s: fieldRef %s is not supported", name,
                            path ? path : "(no fieldPath)");
            rc = env_set2(e, scope, name, v);
        } else if (sk) {
            const char *sname = get_str(sk, "name"), *key = get_str(sk, "key");
            bool optional = cJSON_IsTrue(get(sk, "optional"));
            char *v = NULL;
            int src_rc = sname && key ? secret_value(src->ctx->secrets, ns ? ns : "", sname, key, &v) : -EINVAL;
            if (src_rc == 0) {
                rc = env_set2(e, scope, name, v);
                free(v);
            } else if (optional && (src_rc == -ENOENT || src_rc == -ENOKEY)) {
                return 0;
            } else if (src_rc == -ENOENT) {
                return fail(f, "CreateContainerConfigError", "secret \"%s\" not found", sname);
            } else if (src_rc == -ENOKEY) {
                return fail(f, "CreateContainerConfigError", "couldn't find key %s in Secret %s/%s", key,
                            ns ? ns : "", sname);
            } else if (src_rc == -ENOMEM) {
                return fail(f, "CreateContainerConfigError", "out of memory");
            } else {
                return fail(f, "CreateContainerConfigError", "env %s: secretKeyRef needs a name and a key whose "
                            "value is base64 without NUL bytes", name);
            }
        } else if (ck) {
            if (cJSON_IsTrue(get(ck, "optional")))
                return 0;
            return fail(f, "CreateContainerConfigError", "env %s: ConfigMaps are not served by kube-fake", name);
        } else {
            return fail(f, "CreateContainerConfigError", "env %s: valueFrom supports fieldRef and secretKeyRef",
                        name);
        }
    } else {
        char *v = podenv_expand(value ? value : "", scope->v, scope->n);
        rc = v ? env_set2(e, scope, name, v) : -ENOMEM;
        free(v);
    }
    if (rc < 0)
        return fail(f, "CreateContainerConfigError", rc == -E2BIG ? "more than %d environment variables"
                                                                  : "out of memory (%d)", PODENV_MAX_VARS);
    return 0;
}

/* A container port by name, or -1. */
static int named_port(const cJSON *c, const char *name)
{
    const cJSON *p;
    cJSON_ArrayForEach(p, get(c, "ports"))
    {
        const char *n = get_str(p, "name");
        const cJSON *num = get(p, "containerPort");
        if (n && strcmp(n, name) == 0 && cJSON_IsNumber(num))
            return (int)num->valuedouble;
    }
    return -1;
}

static int ports(const cJSON *c, podenv *out, char *err, size_t errlen)
{
    const cJSON *probe = get(c, "readinessProbe");
    const cJSON *hg = get(probe, "httpGet");
    int probe_port = -1;
    if (hg) {
        const cJSON *p = get(hg, "port");
        if (cJSON_IsNumber(p))
            probe_port = (int)p->valuedouble;
        else if (cJSON_IsString(p))
            probe_port = named_port(c, p->valuestring);
        if (probe_port < 1 || probe_port > 65535) {
            snprintf(err, errlen, "readinessProbe.httpGet.port must be a port number or the name of a container "
                     "port");
            return -1;
        }
    }
    int status = named_port(c, "status");
    out->status_port = status > 0 && status <= 65535 ? status : probe_port > 0 ? probe_port : PODENV_DEFAULT_PORT;
    out->probe = hg != NULL;
    out->probe_port = probe_port > 0 ? probe_port : out->status_port;
    const char *path = get_str(hg, "path");
    free(out->probe_path);
    free(out->probe_host);
    out->probe_path = strdup(path && *path == '/' ? path : "/readyz");
    const char *host = get_str(hg, "host");
    out->probe_host = host && *host ? strdup(host) : NULL;
    const cJSON *t = get(probe, "timeoutSeconds"), *ft = get(probe, "failureThreshold");
    out->probe_timeout_ms = cJSON_IsNumber(t) && t->valuedouble >= 1 && t->valuedouble <= 60
                                ? (int)t->valuedouble * 1000
                                : 1000;
    out->probe_failure_threshold =
        cJSON_IsNumber(ft) && ft->valuedouble >= 1 && ft->valuedouble <= 1000 ? (int)ft->valuedouble : 3;
    if (!out->probe_path || (host && *host && !out->probe_host)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* The executable for cmd: as given when it holds '/', else in bin_dir, else on PATH. malloc'd, or NULL. */
static char *resolve(const char *cmd, const char *bin_dir, const char *path)
{
    char buf[4096];
    if (strchr(cmd, '/'))
        return access(cmd, X_OK) == 0 ? strdup(cmd) : NULL;
    if (bin_dir) {
        snprintf(buf, sizeof buf, "%s/%s", bin_dir, cmd);
        return access(buf, X_OK) == 0 ? strdup(buf) : NULL;
    }
    for (const char *p = path ? path : ""; *p;) {
        size_t n = strcspn(p, ":");
        snprintf(buf, sizeof buf, "%.*s/%s", (int)n, p, cmd);
        if (n && access(buf, X_OK) == 0)
            return strdup(buf);
        p += n;
        if (*p)
            p++;
    }
    return NULL;
}

int podenv_build(const cJSON *pod, const podenv_ctx *ctx, podenv *out, char *reason, size_t reasonlen, char *err,
                 size_t errlen)
{
    failure f = { reason, reasonlen, err, errlen };
    envlist e = { 0 };
    field_src src = { pod, ctx };
    char buf[4096];
    memset(out, 0, sizeof *out);
    const cJSON *c = first_container(pod);
    if (!cJSON_IsObject(c))
        return fail(&f, "CreateContainerConfigError", "the pod has no container");
    if (ports(c, out, err, errlen) < 0) {
        snprintf(reason, reasonlen, "CreateContainerConfigError");
        podenv_free(out);
        return -1;
    }

    /* The image's defaults and the pod-network stand-ins. */
    int rc = 0;
    if (ctx->bin_dir)
        snprintf(buf, sizeof buf, "%s:%s", ctx->bin_dir, ctx->host_path ? ctx->host_path : "/usr/bin:/bin");
    else
        snprintf(buf, sizeof buf, "%s", ctx->host_path ? ctx->host_path : "/usr/bin:/bin");
    rc |= env_set(&e, "PATH", buf);
    rc |= env_set(&e, "HOSTNAME", f_name(&src) ? f_name(&src) : "");
    rc |= env_set(&e, "HOME", ctx->pod_dir);
    rc |= env_set(&e, "TMPDIR", ctx->pod_dir);
    for (char *const *p = ctx->inherit; p && *p; p++) {
        const char *eq = strchr(*p, '=');
        if (eq && (size_t)(eq - *p) < sizeof buf) {
            snprintf(buf, sizeof buf, "%.*s", (int)(eq - *p), *p);
            rc |= env_set(&e, buf, eq + 1);
        }
    }
    snprintf(buf, sizeof buf, "%s/data", ctx->pod_dir);
    rc |= env_set(&e, "IAC_AGENT_DATA_DIR", buf);
    snprintf(buf, sizeof buf, "%s:%d", ctx->pod_ip, out->status_port);
    rc |= env_set(&e, "IAC_AGENT_LISTEN", buf);
    if (rc) {
        env_clear(&e);
        podenv_free(out);
        return fail(&f, "CreateContainerConfigError", "out of memory");
    }

    /* The container's own variables, in order; $(VAR) sees only those defined before (the scope). */
    envlist scope = { 0 };
    const cJSON *var;
    cJSON_ArrayForEach(var, get(c, "env"))
    {
        if (container_var(&e, &scope, var, &src, &f) < 0) {
            env_clear(&scope);
            env_clear(&e);
            podenv_free(out);
            return -1;
        }
    }

    /* Command line: command (or the entrypoint) + args, expanded against the container's variables. */
    const cJSON *cmd = get(c, "command"), *args = get(c, "args"), *it;
    size_t n = 0;
    out->argv = calloc(PODENV_MAX_ARGS + 1, sizeof *out->argv);
    if (!out->argv) {
        env_clear(&scope);
        env_clear(&e);
        podenv_free(out);
        return fail(&f, "RunContainerError", "out of memory");
    }
    if (cJSON_GetArraySize(cmd) == 0)
        out->argv[n++] = strdup(PODENV_ENTRYPOINT);
    const cJSON *lists[2] = { cmd, args };
    for (size_t l = 0; l < 2; l++)
        cJSON_ArrayForEach(it, lists[l])
        {
            if (!cJSON_IsString(it) || n >= PODENV_MAX_ARGS) {
                env_clear(&scope);
                env_clear(&e);
                podenv_free(out);
                return fail(&f, "RunContainerError", "command and args must be at most %d strings",
                            PODENV_MAX_ARGS);
            }
            out->argv[n++] = podenv_expand(it->valuestring, scope.v, scope.n);
        }
    env_clear(&scope);
    for (size_t i = 0; i < n; i++)
        if (!out->argv[i]) {
            env_clear(&e);
            podenv_free(out);
            return fail(&f, "RunContainerError", "out of memory");
        }
    const char *path = env_lookup(e.v, e.n, "PATH", 4);
    out->exe = *out->argv[0] ? resolve(out->argv[0], ctx->bin_dir, path) : NULL;
    if (!out->exe) {
        char cmdname[256];
        snprintf(cmdname, sizeof cmdname, "%s", out->argv[0]);
        env_clear(&e);
        podenv_free(out);
        return fail(&f, "RunContainerError", "exec: \"%s\": executable file not found in %s", cmdname,
                    strchr(cmdname, '/') ? "the file system" : ctx->bin_dir ? "the bin directory" : "$PATH");
    }
    const char *wd = get_str(c, "workingDir");
    out->workdir = strdup(wd && *wd ? wd : ctx->pod_dir);
    out->env = e.v; /* the list is NULL-terminated by env_set */
    if (!out->workdir || !out->env) {
        env_clear(&e);
        podenv_free(out);
        return fail(&f, "RunContainerError", "out of memory");
    }
    return 0;
}

static void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

void podenv_free(podenv *e)
{
    if (!e)
        return;
    strv_free(e->env);
    strv_free(e->argv);
    free(e->exe);
    free(e->workdir);
    free(e->probe_path);
    free(e->probe_host);
    memset(e, 0, sizeof *e);
}

int64_t podenv_grace_ms(const cJSON *pod)
{
    const cJSON *g = get(get(pod, "spec"), "terminationGracePeriodSeconds");
    if (cJSON_IsNumber(g) && g->valuedouble >= 0 && g->valuedouble <= 86400 * 365)
        return (int64_t)g->valuedouble * 1000;
    return 30000;
}
