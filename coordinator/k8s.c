/* k8s.c — the coordinator's Kubernetes API client; see k8s.h.
 *
 * Three parts, read top to bottom:
 *   - configuration. A kubeconfig is loaded with libyaml's document API (yaml_parser_load builds the node tree;
 *     an alias is a reference to a node, never a copy, so a hostile file costs no more memory than its size) and
 *     walked along the few paths client-go reads. What we will not do — skip TLS verification, run a plugin,
 *     basic auth, impersonation — is a table of refused fields: such a file fails loudly naming the field rather
 *     than silently doing less. In cluster, the service-account files and KUBERNETES_SERVICE_HOST/PORT;
 *   - the token: static, or a file re-read when its mtime or size changed, and at least once a minute (the
 *     kubelet rotates projected tokens in place). A file that cannot be read right now leaves the last good token
 *     in use, as client-go's cached file token source does;
 *   - requests: a thin layer over httpc (one attempt, short timeout) that parses the answer with cJSON and turns
 *     a Kubernetes Status object into reason and message. A request that cannot start (no token, bad path) still
 *     answers through its callback, from the loop, never from inside k8s_request().
 *
 * Secrets: messages name files and fields, never values, so a token cannot reach one. Copies of tokens and keys
 * are wiped before they are freed (best effort: libyaml's own buffers are not ours to wipe). */
#include "k8s.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <yaml.h>

#include "iac/digest.h"
#include "iac/fsutil.h"
#include "iac/httpc.h"
#include "iac/strbuf.h"

#define K8S_TIMEOUT_MS       5000L
#define K8S_TOKEN_REFRESH_MS 60000u
#define K8S_KUBECONFIG_MAX   ((size_t)8 << 20)
#define K8S_TOKEN_MAX        ((size_t)64 << 10)
#define K8S_PEM_MAX          ((size_t)4 << 20)
#define K8S_NAMESPACE_MAX    ((size_t)4096)

/* ---- small helpers ---- */


static const char *env_get(char **envp, const char *name)
{
    size_t n = strlen(name);
    for (char **e = envp ? envp : environ; e && *e; e++)
        if (!strncmp(*e, name, n) && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

/* Trims ASCII whitespace at both ends, in place. */
static char *trim(char *s)
{
    size_t n = strlen(s), a = 0;
    while (n > 0 && is_space(s[n - 1]))
        n--;
    while (a < n && is_space(s[a]))
        a++;
    memmove(s, s + a, n - a);
    s[n - a] = '\0';
    return s;
}

/* Bytes that could end a header line or hide in one. */
static bool has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

static void wipe_free(char *p, size_t n)
{
    if (p) {
        memset(p, 0, n);
        free(p);
    }
}

static void wipe_str(char *p)
{
    if (p)
        wipe_free(p, strlen(p));
}

static char *printf_dup(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *printf_dup(const char *fmt, ...)
{
    strbuf b = STRBUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (b.oom || !b.data) {
        strbuf_free(&b);
        return NULL;
    }
    return strbuf_detach(&b, NULL);
}

/* name resolved against dir, as kubectl resolves the paths inside a kubeconfig. */
static char *join_path(const char *dir, const char *name)
{
    return name[0] == '/' ? strdup(name) : printf_dup("%s/%s", dir, name);
}

/* 0 when path is a file we can open for reading, else -errno. */
static int readable(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    int r = fstat(fd, &st) < 0 ? -errno : S_ISDIR(st.st_mode) ? -EISDIR : 0;
    close(fd);
    return r;
}

/* An API server URL we can talk to: http(s)://host…, nothing that could split a header or a request line. */
static bool server_ok(const char *s)
{
    size_t n = !strncasecmp(s, "https://", 8) ? 8 : !strncasecmp(s, "http://", 7) ? 7 : 0;
    return n && s[n] && s[n] != '/' && !has_ctl(s) && !strchr(s, ' ');
}

void k8s_auth_free(k8s_auth *a)
{
    if (!a)
        return;
    free(a->server);
    free(a->ca_file);
    free(a->ca_pem);
    free(a->cert_file);
    free(a->key_file);
    free(a->cert_pem);
    wipe_free(a->key_pem, a->key_pem_len);
    wipe_str(a->token);
    free(a->token_file);
    free(a->namespace);
    free(a->source);
    memset(a, 0, sizeof *a);
}

/* ---- kubeconfig ---- */

typedef struct {
    const char     *path;
    char           *dir;  /* where relative paths start */
    yaml_document_t doc;
    char           *err;
    size_t          errlen;
} kconf;

static int kc_fail(kconf *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int kc_fail(kconf *k, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    strbuf_fixed_printf(k->err, k->errlen, "kubeconfig %s: %s", k->path, msg);
    return -1;
}

static yaml_node_t *kc_node(kconf *k, int id) { return yaml_document_get_node(&k->doc, id); }

/* No node, or a plain "", "~" or "null": YAML's null, which kubectl reads as "not set". */
static bool yaml_null(const yaml_node_t *n)
{
    static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };
    if (!n)
        return true;
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++)
        if (!strcmp((const char *)n->data.scalar.value, nulls[i]))
            return true;
    return false;
}

/* A YAML 1.1 false (what Go's yaml reads into a bool false). */
static bool yaml_false(const yaml_node_t *n)
{
    static const char *const falses[] = { "false", "no", "off", "n" };
    if (!n || n->type != YAML_SCALAR_NODE)
        return false;
    for (size_t i = 0; i < sizeof falses / sizeof falses[0]; i++)
        if (!strcasecmp((const char *)n->data.scalar.value, falses[i]))
            return true;
    return false;
}

static yaml_node_t *map_get(kconf *k, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    size_t len = strlen(key);
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = kc_node(k, p->key);
        if (kn && kn->type == YAML_SCALAR_NODE && kn->data.scalar.length == len &&
            !memcmp(kn->data.scalar.value, key, len))
            return kc_node(k, p->value);
    }
    return NULL;
}

/* The string at map[key] into *out; NULL when absent or null. -1 (message) when it is something else. */
static int kc_str(kconf *k, yaml_node_t *map, const char *key, const char *where, const char **out)
{
    yaml_node_t *n = map_get(k, map, key);
    *out = NULL;
    if (yaml_null(n))
        return 0;
    if (n->type != YAML_SCALAR_NODE || strlen((const char *)n->data.scalar.value) != n->data.scalar.length)
        return kc_fail(k, "%s%s%s must be a string", where, *where ? ": " : "", key);
    *out = (const char *)n->data.scalar.value;
    return 0;
}

/* The entry named name in the top-level list `list` (contexts, clusters, users): 1 with *inner = its `field`
 * mapping (NULL when absent), 0 when no entry has that name, -1 (message) when the list is malformed. */
static int kc_named(kconf *k, const char *list, const char *field, const char *name, yaml_node_t **inner)
{
    yaml_node_t *seq = map_get(k, yaml_document_get_root_node(&k->doc), list);
    *inner = NULL;
    if (yaml_null(seq))
        return 0;
    if (seq->type != YAML_SEQUENCE_NODE)
        return kc_fail(k, "%s must be a list", list);
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
        yaml_node_t *e = kc_node(k, *it);
        const char *n;
        if (!e || e->type != YAML_MAPPING_NODE)
            return kc_fail(k, "%s: entry %d is not a mapping", list, (int)(it - seq->data.sequence.items.start) + 1);
        if (kc_str(k, e, "name", list, &n) < 0)
            return -1;
        if (!n || strcmp(n, name))
            continue;
        yaml_node_t *v = map_get(k, e, field);
        if (yaml_null(v))
            return 1;
        if (v->type != YAML_MAPPING_NODE)
            return kc_fail(k, "%s \"%s\": %s must be a mapping", field, name, field);
        *inner = v;
        return 1;
    }
    return 0;
}

/* Fields that ask for something this client will not do. Present and not null (or, with false_ok, not false)
 * → refused; each reason starts with the field's name. */
typedef struct {
    const char *field;
    bool        false_ok;
    const char *why;
} refusal;

static const refusal cluster_refusals[] = {
    { "insecure-skip-tls-verify", true,
      "insecure-skip-tls-verify is not supported: TLS is always verified (give certificate-authority or "
      "certificate-authority-data)" },
};

static const refusal user_refusals[] = {
    { "exec", false,
      "exec plugins are not supported: no external program is run (use token, tokenFile or a client "
      "certificate)" },
    { "auth-provider", false,
      "auth-provider plugins are not supported (use token, tokenFile or a client certificate)" },
    { "username", false, "username/password (basic authentication) is not supported" },
    { "password", false, "password (basic authentication) is not supported" },
    { "as", false, "as (impersonation) is not supported" },
    { "as-uid", false, "as-uid (impersonation) is not supported" },
    { "as-groups", false, "as-groups (impersonation) is not supported" },
    { "as-user-extra", false, "as-user-extra (impersonation) is not supported" },
};

static int kc_refuse(kconf *k, yaml_node_t *map, const char *where, const refusal *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *v = map_get(k, map, t[i].field);
        if (!yaml_null(v) && !(t[i].false_ok && yaml_false(v)))
            return kc_fail(k, "%s: %s", where, t[i].why);
    }
    return 0;
}

/* TLS material that comes as a file or as base64 data. */
typedef struct {
    const char *file_key, *data_key;
    size_t      file_off, data_off, len_off; /* where they go in k8s_auth */
} material;

static const material cluster_material[] = {
    { "certificate-authority", "certificate-authority-data", offsetof(k8s_auth, ca_file),
      offsetof(k8s_auth, ca_pem), offsetof(k8s_auth, ca_pem_len) },
};

static const material user_material[] = {
    { "client-certificate", "client-certificate-data", offsetof(k8s_auth, cert_file),
      offsetof(k8s_auth, cert_pem), offsetof(k8s_auth, cert_pem_len) },
    { "client-key", "client-key-data", offsetof(k8s_auth, key_file), offsetof(k8s_auth, key_pem),
      offsetof(k8s_auth, key_pem_len) },
};

/* A file named in the kubeconfig: resolved against its directory and checked now, so that a typo is reported
 * at start-up with the field that holds it. */
static int kc_file(kconf *k, const char *name, const char *where, const char *key, char **out)
{
    char *p = join_path(k->dir, name);
    if (!p)
        return kc_fail(k, "out of memory");
    int r = readable(p);
    if (r < 0) {
        kc_fail(k, "%s: %s %s: %s", where, key, p, strerror(-r));
        free(p);
        return -1;
    }
    *out = p;
    return 0;
}

/* Standard base64 as kubectl writes it, tolerating line breaks (a folded or block scalar). */
static int decode_data(const char *in, char **out, size_t *outlen)
{
    size_t n = strlen(in), j = 0;
    char *s = malloc(n + 1);
    if (!s)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (!is_space(in[i]))
            s[j++] = in[i];
    uint8_t *buf = NULL;
    int r = digest_base64_decode(s, j, &buf, outlen);
    free(s);
    if (r == 0 && *outlen == 0) {
        free(buf);
        return -EINVAL;
    }
    *out = (char *)buf;
    return r;
}

static int kc_material(kconf *k, yaml_node_t *map, const char *where, const material *m, k8s_auth *out)
{
    const char *file, *data;
    if (kc_str(k, map, m->file_key, where, &file) < 0 || kc_str(k, map, m->data_key, where, &data) < 0)
        return -1;
    if (file && *file && data && *data)
        return kc_fail(k, "%s: give %s or %s, not both", where, m->file_key, m->data_key);
    if (file && *file)
        return kc_file(k, file, where, m->file_key, (char **)((char *)out + m->file_off));
    if (data && *data) {
        char **pem = (char **)((char *)out + m->data_off);
        int r = decode_data(data, pem, (size_t *)((char *)out + m->len_off));
        if (r == -ENOMEM)
            return kc_fail(k, "out of memory");
        if (r < 0)
            return kc_fail(k, "%s: %s is not valid base64", where, m->data_key);
    }
    return 0;
}

static int kc_cluster(kconf *k, const char *name, k8s_auth *out)
{
    char where[320];
    yaml_node_t *m;
    const char *server;
    snprintf(where, sizeof where, "cluster \"%.256s\"", name);
    int r = kc_named(k, "clusters", "cluster", name, &m);
    if (r <= 0)
        return r < 0 ? -1 : kc_fail(k, "%s not found", where);
    if (kc_refuse(k, m, where, cluster_refusals, sizeof cluster_refusals / sizeof cluster_refusals[0]) < 0 ||
        kc_str(k, m, "server", where, &server) < 0)
        return -1;
    if (!server || !*server)
        return kc_fail(k, "%s: server is not set", where);
    if (!server_ok(server))
        return kc_fail(k, "%s: server \"%.256s\" is not an https:// or http:// URL", where, server);
    if (!(out->server = strdup(server)))
        return kc_fail(k, "out of memory");
    for (size_t n = strlen(out->server); n > 0 && out->server[n - 1] == '/'; n--)
        out->server[n - 1] = '\0';
    for (size_t i = 0; i < sizeof cluster_material / sizeof cluster_material[0]; i++)
        if (kc_material(k, m, where, &cluster_material[i], out) < 0)
            return -1;
    return 0;
}

static int kc_user(kconf *k, const char *name, k8s_auth *out)
{
    char where[320];
    yaml_node_t *m;
    const char *token, *token_file;
    snprintf(where, sizeof where, "user \"%.256s\"", name);
    int r = kc_named(k, "users", "user", name, &m);
    if (r <= 0)
        return r < 0 ? -1 : kc_fail(k, "%s not found", where);
    if (kc_refuse(k, m, where, user_refusals, sizeof user_refusals / sizeof user_refusals[0]) < 0)
        return -1;
    for (size_t i = 0; i < sizeof user_material / sizeof user_material[0]; i++)
        if (kc_material(k, m, where, &user_material[i], out) < 0)
            return -1;
    bool cert = out->cert_file || out->cert_pem, key = out->key_file || out->key_pem;
    if (cert != key)
        return kc_fail(k, "%s: %s", where,
                       cert ? "client-certificate without client-key" : "client-key without client-certificate");
    if (kc_str(k, m, "token", where, &token) < 0 || kc_str(k, m, "tokenFile", where, &token_file) < 0)
        return -1;
    if (token) {
        if (!(out->token = strdup(token)))
            return kc_fail(k, "out of memory");
        if (has_ctl(trim(out->token)))
            return kc_fail(k, "%s: token contains control characters", where);
        if (!*out->token) {
            free(out->token);
            out->token = NULL;
        }
    }
    if (token_file && *token_file && kc_file(k, token_file, where, "tokenFile", &out->token_file) < 0)
        return -1;
    return 0;
}

static int kc_read(kconf *k, const char *context, k8s_auth *out)
{
    yaml_node_t *root = yaml_document_get_root_node(&k->doc);
    const char *ctx = context && *context ? context : NULL, *cluster, *user, *ns;
    char where[320];
    yaml_node_t *cn;
    if (!root)
        return kc_fail(k, "the file is empty");
    if (root->type != YAML_MAPPING_NODE)
        return kc_fail(k, "not a kubeconfig: the top level is not a mapping");
    if (!ctx) {
        if (kc_str(k, root, "current-context", "", &ctx) < 0)
            return -1;
        if (!ctx || !*ctx)
            return kc_fail(k, "current-context is not set (name a context)");
    }
    snprintf(where, sizeof where, "context \"%.256s\"", ctx);
    int r = kc_named(k, "contexts", "context", ctx, &cn);
    if (r <= 0)
        return r < 0 ? -1 : kc_fail(k, "%s not found", where);
    if (kc_str(k, cn, "cluster", where, &cluster) < 0 || kc_str(k, cn, "user", where, &user) < 0 ||
        kc_str(k, cn, "namespace", where, &ns) < 0)
        return -1;
    if (!cluster || !*cluster)
        return kc_fail(k, "%s: cluster is not set", where);
    if (kc_cluster(k, cluster, out) < 0 || (user && *user && kc_user(k, user, out) < 0))
        return -1;
    out->namespace = strdup(ns && *ns ? ns : "default");
    out->source = printf_dup("kubeconfig %s, %s", k->path, where);
    return out->namespace && out->source ? 0 : kc_fail(k, "out of memory");
}

/* libyaml's complaint with its position (lines and columns counted from 1). */
static void kc_yaml_error(kconf *k, const yaml_parser_t *p)
{
    const char *problem = p->problem ? p->problem : "unknown error";
    if (p->error == YAML_MEMORY_ERROR)
        kc_fail(k, "out of memory");
    else if (p->error == YAML_READER_ERROR)
        kc_fail(k, "invalid YAML at byte %zu: %s", p->problem_offset, problem);
    else if (p->context)
        kc_fail(k, "invalid YAML at line %zu, column %zu: %s (%s at line %zu)", p->problem_mark.line + 1,
                p->problem_mark.column + 1, problem, p->context, p->context_mark.line + 1);
    else
        kc_fail(k, "invalid YAML at line %zu, column %zu: %s", p->problem_mark.line + 1,
                p->problem_mark.column + 1, problem);
}

int k8s_auth_kubeconfig(const char *path, const char *context, k8s_auth *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!path || !*path) {
        strbuf_fixed_printf(err, errlen, "kubeconfig: no file given");
        return -1;
    }
    kconf k = { .path = path, .err = err, .errlen = errlen };
    char *text = NULL;
    size_t len = 0;
    int r = fs_read_file(path, K8S_KUBECONFIG_MAX, &text, &len);
    if (r < 0) {
        strbuf_fixed_printf(err, errlen, "kubeconfig %s: %s", path, r == -EFBIG ? "larger than 8 MiB" : strerror(-r));
        return -1;
    }
    const char *slash = strrchr(path, '/');
    k.dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    yaml_parser_t parser;
    if (!k.dir || !yaml_parser_initialize(&parser)) {
        free(k.dir);
        wipe_free(text, len);
        kc_fail(&k, "out of memory");
        return -1;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &k.doc)) { /* the loader has freed what it built */
        kc_yaml_error(&k, &parser);
        r = -1;
    } else {
        r = kc_read(&k, context, out);
        for (yaml_node_t *n = k.doc.nodes.start; n && n < k.doc.nodes.top; n++)
            if (n->type == YAML_SCALAR_NODE) /* tokens and keys among them */
                memset(n->data.scalar.value, 0, n->data.scalar.length);
        yaml_document_delete(&k.doc);
    }
    yaml_parser_delete(&parser);
    wipe_free(text, len);
    free(k.dir);
    if (r < 0)
        k8s_auth_free(out);
    return r;
}

/* ---- in cluster ---- */

static bool port_ok(const char *s)
{
    long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || p - s >= 5)
            return false;
        v = v * 10 + (*p - '0');
    }
    return *s && v >= 1 && v <= 65535;
}

static bool host_ok(const char *s)
{
    return *s && !has_ctl(s) && !strpbrk(s, " /?#@");
}

int k8s_auth_in_cluster(const char *sa_dir, char **envp, k8s_auth *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const char *host = env_get(envp, "KUBERNETES_SERVICE_HOST"), *port = env_get(envp, "KUBERNETES_SERVICE_PORT");
    if (!host || !*host) {
        strbuf_fixed_printf(err, errlen, "KUBERNETES_SERVICE_HOST is not set: not running in a cluster");
        return -1;
    }
    if (!port || !*port) {
        strbuf_fixed_printf(err, errlen, "KUBERNETES_SERVICE_PORT is not set: not running in a cluster");
        return -1;
    }
    if (!host_ok(host)) {
        strbuf_fixed_printf(err, errlen, "KUBERNETES_SERVICE_HOST=\"%.256s\" is not a host name or address", host);
        return -1;
    }
    if (!port_ok(port)) {
        strbuf_fixed_printf(err, errlen, "KUBERNETES_SERVICE_PORT=\"%.64s\" is not a port number (1 to 65535)", port);
        return -1;
    }
    if (!sa_dir)
        sa_dir = K8S_SA_DIR;
    bool v6 = strchr(host, ':') && host[0] != '[';
    out->server = printf_dup("https://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port);
    out->token_file = printf_dup("%s/token", sa_dir);
    out->ca_file = printf_dup("%s/ca.crt", sa_dir);
    out->source = strdup("in-cluster");
    char *ns_file = printf_dup("%s/namespace", sa_dir);
    if (!out->server || !out->token_file || !out->ca_file || !out->source || !ns_file) {
        free(ns_file);
        k8s_auth_free(out);
        strbuf_fixed_printf(err, errlen, "in-cluster configuration: out of memory");
        return -1;
    }
    const char *files[] = { out->token_file, out->ca_file };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        int r = readable(files[i]);
        if (r < 0) {
            strbuf_fixed_printf(err, errlen, "%s: %s", files[i], strerror(-r));
            free(ns_file);
            k8s_auth_free(out);
            return -1;
        }
    }
    /* As client-go: the namespace file is optional, and "default" stands in for it. */
    char *ns = NULL;
    if (fs_read_file(ns_file, K8S_NAMESPACE_MAX, &ns, NULL) == 0 && (!*trim(ns) || has_ctl(ns))) {
        free(ns);
        ns = NULL;
    }
    free(ns_file);
    out->namespace = ns ? ns : strdup("default");
    if (!out->namespace) {
        k8s_auth_free(out);
        strbuf_fixed_printf(err, errlen, "in-cluster configuration: out of memory");
        return -1;
    }
    return 0;
}

/* ---- which configuration ---- */

int k8s_auth_load(const char *kubeconfig_flag, const char *context, char **envp, k8s_auth *out, char *err,
                  size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (kubeconfig_flag && *kubeconfig_flag)
        return k8s_auth_kubeconfig(kubeconfig_flag, context, out, err, errlen);
    const char *host = env_get(envp, "KUBERNETES_SERVICE_HOST");
    if (host && *host)
        return k8s_auth_in_cluster(NULL, envp, out, err, errlen);

    const char *list = env_get(envp, "KUBECONFIG");
    while (list && *list == ':') /* empty entries are skipped, as client-go does */
        list++;
    if (list && *list) {
        char *first = strndup(list, strcspn(list, ":"));
        if (!first) {
            strbuf_fixed_printf(err, errlen, "kubeconfig: out of memory");
            return -1;
        }
        int r = k8s_auth_kubeconfig(first, context, out, err, errlen);
        free(first);
        return r;
    }

    const char *home = env_get(envp, "HOME");
    if (!home || !*home) {
        strbuf_fixed_printf(err, errlen,
             "no Kubernetes configuration: not in a cluster (KUBERNETES_SERVICE_HOST is not set), KUBECONFIG "
             "and HOME are not set; give a kubeconfig file");
        return -1;
    }
    char *path = printf_dup("%s/.kube/config", home);
    if (!path) {
        strbuf_fixed_printf(err, errlen, "kubeconfig: out of memory");
        return -1;
    }
    int r = access(path, F_OK) < 0 ? -errno : 0;
    if (r < 0)
        strbuf_fixed_printf(err, errlen,
             "no Kubernetes configuration: not in a cluster (KUBERNETES_SERVICE_HOST is not set), KUBECONFIG is "
             "not set, and %s: %s; give a kubeconfig file", path, strerror(-r));
    else
        r = k8s_auth_kubeconfig(path, context, out, err, errlen);
    free(path);
    return r < 0 ? -1 : 0;
}

/* ---- the client ---- */

struct k8s {
    uv_loop_t      *loop;
    httpc          *http;
    char           *server, *namespace, *source;
    char           *token;         /* static bearer, or NULL */
    char           *token_file;    /* or NULL */
    char           *file_token;    /* the last good token read from token_file */
    struct timespec token_mtime;   /* of token_file when file_token was read */
    off_t           token_size;
    uint64_t        token_read_ms; /* when file_token was read (uv_hrtime, ms) */
    k8s_call       *calls;
    size_t          ncalls;
};

struct k8s_call {
    k8s        *c;
    k8s_call   *prev, *next;
    httpc_call *http;     /* the transfer; NULL for a request that failed before it could start */
    uv_timer_t  later;    /* delivers such a failure from the loop */
    int         error;
    char       *errmsg;
    bool        done;     /* its callback is running or has run, or it was cancelled */
    k8s_cb      cb;
    void       *arg;
};

typedef enum { PEM_CERT, PEM_KEY } pem_kind;

/* OpenSSL would ask on the terminal for the passphrase of an encrypted key: there is none. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

static bool pem_ok(const char *data, size_t len, pem_kind kind)
{
    if (!data || len == 0 || len > INT_MAX)
        return false;
    BIO *b = BIO_new_mem_buf(data, (int)len);
    bool ok = false;
    if (b && kind == PEM_CERT) {
        X509 *x = PEM_read_bio_X509(b, NULL, no_passphrase, NULL);
        ok = x != NULL;
        X509_free(x);
    } else if (b) {
        EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
        ok = k != NULL;
        EVP_PKEY_free(k);
    }
    BIO_free(b);
    ERR_clear_error(); /* leave nothing in the thread's queue for curl to trip over */
    return ok;
}

/* Checks one piece of TLS material (file or bytes; the file wins, as for the CA). 0, or -1 with a message. */
static int pem_check(const char *file, const char *pem, size_t pem_len, pem_kind kind, const char *what,
                     const char *source, char *err, size_t errlen)
{
    const char *expect = kind == PEM_CERT ? "a PEM certificate" : "an unencrypted PEM private key";
    if (file) {
        char *data = NULL;
        size_t len = 0;
        int r = fs_read_file(file, K8S_PEM_MAX, &data, &len);
        if (r < 0) {
            strbuf_fixed_printf(err, errlen, "%s: %s %s: %s", source, what, file, strerror(-r));
            return -1;
        }
        bool ok = pem_ok(data, len, kind);
        wipe_free(data, len);
        if (!ok)
            strbuf_fixed_printf(err, errlen, "%s: %s %s is not %s", source, what, file, expect);
        return ok ? 0 : -1;
    }
    if (pem && !pem_ok(pem, pem_len, kind)) {
        strbuf_fixed_printf(err, errlen, "%s: %s data is not %s", source, what, expect);
        return -1;
    }
    return 0;
}

k8s *k8s_new(uv_loop_t *loop, const k8s_auth *auth, const k8s_opts *opts, char *err, size_t errlen)
{
    if (!loop || !auth) {
        strbuf_fixed_printf(err, errlen, "k8s: no loop or no configuration");
        return NULL;
    }
    const char *src = auth->source ? auth->source : "kubernetes";
    if (!auth->server || !server_ok(auth->server)) {
        strbuf_fixed_printf(err, errlen, "%s: no https:// or http:// API server URL", src);
        return NULL;
    }
    if ((auth->cert_file || auth->cert_pem) != (auth->key_file || auth->key_pem)) {
        strbuf_fixed_printf(err, errlen, "%s: a client certificate needs its key, and a key its certificate", src);
        return NULL;
    }
    if (pem_check(auth->ca_file, auth->ca_pem, auth->ca_pem_len, PEM_CERT, "certificate-authority", src, err,
                  errlen) < 0 ||
        pem_check(auth->cert_file, auth->cert_pem, auth->cert_pem_len, PEM_CERT, "client-certificate", src, err,
                  errlen) < 0 ||
        pem_check(auth->key_file, auth->key_pem, auth->key_pem_len, PEM_KEY, "client-key", src, err, errlen) < 0)
        return NULL;

    k8s *c = calloc(1, sizeof *c);
    if (!c) {
        strbuf_fixed_printf(err, errlen, "%s: out of memory", src);
        return NULL;
    }
    c->loop = loop;
    c->server = strdup(auth->server);
    c->namespace = strdup(auth->namespace && *auth->namespace ? auth->namespace : "default");
    c->source = strdup(src);
    c->token = auth->token ? strdup(auth->token) : NULL;
    c->token_file = auth->token_file ? strdup(auth->token_file) : NULL;
    long t = opts && opts->timeout_ms > 0 ? opts->timeout_ms : K8S_TIMEOUT_MS;
    httpc_opts ho = {
        .ca_file = auth->ca_file,
        .ca_pem = auth->ca_file ? NULL : auth->ca_pem,
        .ca_pem_len = auth->ca_pem_len,
        .cert_file = auth->cert_file,
        .cert_pem = auth->cert_file ? NULL : auth->cert_pem,
        .cert_pem_len = auth->cert_pem_len,
        .key_file = auth->key_file,
        .key_pem = auth->key_file ? NULL : auth->key_pem,
        .key_pem_len = auth->key_pem_len,
        .connect_timeout_ms = t,
        .total_timeout_ms = t,
    };
    if (!c->server || !c->namespace || !c->source || (auth->token && !c->token) ||
        (auth->token_file && !c->token_file) || !(c->http = httpc_new(loop, &ho))) {
        strbuf_fixed_printf(err, errlen, "%s: cannot create the HTTP client (out of memory, or libcurl failed to start)", src);
        k8s_free(c);
        return NULL;
    }
    for (size_t n = strlen(c->server); n > 0 && c->server[n - 1] == '/'; n--)
        c->server[n - 1] = '\0';
    return c;
}

/* Reads token_file into file_token. 0, or -errno with what went wrong in *why. */
static int token_read(k8s *c, const struct stat *st, uint64_t now, const char **why)
{
    char *buf = NULL;
    size_t len = 0;
    int r = fs_read_file(c->token_file, K8S_TOKEN_MAX, &buf, &len);
    if (r < 0) {
        *why = strerror(-r);
        return r;
    }
    *why = memchr(buf, '\0', len) ? "not a token (NUL bytes)"
           : !*trim(buf)         ? "the file is empty"
           : has_ctl(buf)        ? "not a token (control characters)"
                                 : NULL;
    if (*why) {
        wipe_free(buf, len);
        return -EINVAL;
    }
    wipe_str(c->file_token);
    c->file_token = buf;
    c->token_mtime = st->st_mtim;
    c->token_size = st->st_size;
    c->token_read_ms = now;
    return 0;
}

/* The bearer for the next request (NULL: none). From token_file when there is one: re-read when the file
 * changed or a minute has passed; when it cannot be read, the last good token, else the static one, else NULL
 * with a message in msg. */
static const char *k8s_bearer(k8s *c, char *msg, size_t msglen)
{
    if (!c->token_file)
        return c->token;
    uint64_t now = uv_hrtime() / 1000000u;
    struct stat st;
    const char *why = NULL;
    int r = stat(c->token_file, &st) < 0 ? -errno : 0;
    if (r < 0) {
        why = strerror(-r);
    } else if (c->file_token && st.st_mtim.tv_sec == c->token_mtime.tv_sec &&
               st.st_mtim.tv_nsec == c->token_mtime.tv_nsec && st.st_size == c->token_size &&
               now - c->token_read_ms < K8S_TOKEN_REFRESH_MS) {
        return c->file_token;
    } else {
        r = token_read(c, &st, now, &why);
    }
    if (r == 0 || c->file_token)
        return c->file_token;
    if (c->token)
        return c->token;
    strbuf_fixed_printf(msg, msglen, "%s: cannot read the token file %s: %s", c->source, c->token_file, why);
    return NULL;
}

static void call_link(k8s_call *call)
{
    k8s *c = call->c;
    call->next = c->calls;
    if (c->calls)
        c->calls->prev = call;
    c->calls = call;
    c->ncalls++;
}

static void call_unlink(k8s_call *call)
{
    k8s *c = call->c;
    if (call->prev)
        call->prev->next = call->next;
    else
        c->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    call->prev = call->next = NULL;
    c->ncalls--;
}

static void call_free(k8s_call *call)
{
    free(call->errmsg);
    free(call);
}

static void call_closed(uv_handle_t *h) { call_free(h->data); }

static const char *json_str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void on_http(const httpc_response *r, void *arg)
{
    k8s_call *call = arg;
    call_unlink(call);
    call->done = true;
    cJSON *obj = r->error == HTTPC_OK && r->body_len ? cJSON_ParseWithLength(r->body, r->body_len) : NULL;
    k8s_result res = { .error = r->error, .status = r->status, .errmsg = "", .reason = "", .obj = obj };
    char fallback[32];
    if (r->error != HTTPC_OK) {
        res.errmsg = r->errmsg;
    } else if (r->status < 200 || r->status > 299) {
        /* A Status object (kind: Status) says what went wrong; anything else gets the bare status. */
        const char *message = json_str(obj, "message"), *reason = json_str(obj, "reason");
        snprintf(fallback, sizeof fallback, "HTTP %ld", r->status);
        res.errmsg = message && *message ? message : fallback;
        res.reason = reason ? reason : "";
    }
    call->cb(&res, call->arg);
    cJSON_Delete(obj);
    call_free(call);
}

static void on_later(uv_timer_t *t)
{
    k8s_call *call = t->data;
    call_unlink(call);
    call->done = true;
    k8s_result res = { .error = call->error, .errmsg = call->errmsg, .reason = "" };
    call->cb(&res, call->arg);
    uv_close((uv_handle_t *)&call->later, call_closed);
}

k8s_call *k8s_request(k8s *c, const char *method, const char *path, const char *content_type, const char *body,
                      k8s_cb cb, void *arg)
{
    if (!c || !cb)
        return NULL;
    k8s_call *call = calloc(1, sizeof *call);
    if (!call)
        return NULL;
    call->c = c;
    call->cb = cb;
    call->arg = arg;
    char msg[1024] = "";
    if (!method || !path || path[0] != '/') {
        call->error = HTTPC_E_TRANSPORT;
        snprintf(msg, sizeof msg, "%s: %s %.256s: the path must start with \"/\"", c->source,
                 method ? method : "(no method)", path ? path : "(no path)");
    } else {
        const char *bearer = k8s_bearer(c, msg, sizeof msg);
        if (bearer || !c->token_file) {
            strbuf url = STRBUF_INIT;
            strbuf_printf(&url, "%s%s", c->server, path);
            httpc_req req = {
                .method = method,
                .url = url.data,
                .bearer = bearer,
                .body = body,
                .body_len = body ? strlen(body) : 0,
                .mode = HTTPC_PLAIN,
                .content_type = content_type,
                .accept = "application/json",
            };
            call->http = url.oom ? NULL : httpc_request(c->http, &req, on_http, call);
            strbuf_free(&url);
            if (!call->http) {
                call->error = HTTPC_E_TRANSPORT;
                snprintf(msg, sizeof msg,
                         "%s: %.16s %.256s: the request could not start (bad method, path or content type, or "
                         "out of memory)", c->source, method, path);
            }
        } else {
            call->error = HTTPC_E_IO;
        }
    }
    if (!call->http) {
        call->errmsg = strdup(msg);
        if (!call->errmsg || uv_timer_init(c->loop, &call->later) != 0) {
            call_free(call);
            return NULL;
        }
        call->later.data = call;
        uv_timer_start(&call->later, on_later, 0, 0);
    }
    call_link(call);
    return call;
}

void k8s_cancel(k8s_call *call)
{
    if (!call || call->done)
        return; /* inside its own callback, or already gone */
    call_unlink(call);
    call->done = true;
    if (call->http) {
        httpc_cancel(call->http);
        call_free(call);
    } else {
        uv_timer_stop(&call->later);
        uv_close((uv_handle_t *)&call->later, call_closed);
    }
}

size_t k8s_pending(const k8s *c) { return c ? c->ncalls : 0; }

void k8s_free(k8s *c)
{
    if (!c)
        return;
    while (c->calls)
        k8s_cancel(c->calls);
    httpc_free(c->http);
    free(c->server);
    free(c->namespace);
    free(c->source);
    wipe_str(c->token);
    free(c->token_file);
    wipe_str(c->file_token);
    free(c);
}

const char *k8s_namespace(const k8s *c) { return c ? c->namespace : NULL; }

int k8s_escape(const char *s, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    if (!out || outlen == 0)
        return -1;
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; s && *p; p++) {
        /* RFC 3986 unreserved characters pass; everything else is %XX. */
        bool plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                     *p == '-' || *p == '.' || *p == '_' || *p == '~';
        if (o + (plain ? 1 : 3) >= outlen) {
            out[0] = '\0';
            return -1;
        }
        if (plain) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
    return s ? 0 : -1;
}
