/* test_k8s.c — the Kubernetes client: kubeconfig and in-cluster configuration, and requests against a loopback
 * server.
 *
 * Configuration tests write kubeconfig variants and service-account directories to a scratch directory and pass
 * their own environment (envp), so nothing depends on the machine. Certificates and keys are made at start with
 * libcrypto (a throw-away EC key and a self-signed certificate). Request tests run the project's https module on
 * 127.0.0.1 (ephemeral port) on the test's loop: it records what each request carried and answers canned JSON by
 * path. A watchdog fails any test that would hang; each ends with the loop run to completion and closed. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <libwebsockets.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <uv.h>

#include "iac/digest.h"
#include "iac/fsutil.h"
#include "iac/httpc.h"
#include "iac/https.h"
#include "iac/strbuf.h"

#include "../../coordinator/k8s.h"

#define TOKEN "kt-s3cr3t-bearer-0123456789"
#define NREQ  4

/* A certificate and its key, made once for the whole run. */
static char *cert_pem, *key_pem;

static char *bio_text(BIO *b)
{
    char *p;
    long n = BIO_get_mem_data(b, &p);
    char *s = malloc((size_t)n + 1);
    memcpy(s, p, (size_t)n);
    s[n] = '\0';
    return s;
}

static int make_cert(void **state)
{
    (void)state;
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    assert_non_null(pk);
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pk);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"test-ca", -1, -1, 0);
    X509_set_issuer_name(x, name);
    assert_true(X509_sign(x, pk, EVP_sha256()) > 0);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    cert_pem = bio_text(b);
    BIO_free(b);
    b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL);
    key_pem = bio_text(b);
    BIO_free(b);
    X509_free(x);
    EVP_PKEY_free(pk);
    return 0;
}

static int free_cert(void **state)
{
    (void)state;
    free(cert_pem);
    free(key_pem);
    return 0;
}

/* ---- fixture ---- */

typedef struct fixture fixture;

typedef struct {
    fixture *f;
    int      i;
} slot;

/* What a callback received (copies). */
typedef struct {
    int   called;
    int   error;
    long  status;
    char *errmsg, *reason, *obj;
} got;

/* What the server saw. */
typedef struct {
    char *method, *path, *query, *authorization, *content_type, *body;
} seen;

struct fixture {
    char          dir[64];
    uv_loop_t     loop;
    bool          has_loop;
    uv_timer_t    watchdog;
    bool          timed_out;
    https_server *srv;
    int           port;
    k8s          *c;
    int           outstanding;
    slot          slots[NREQ];
    got           got[NREQ];
    k8s_call     *calls[NREQ];
    seen          seen[NREQ];
    int           nseen;
    char          err[1024];
    void        (*on_cb)(fixture *f, int i);
};

static void write_file(fixture *f, const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", f->dir, name);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    assert_int_equal(fs_mkdir_p(path, 0755), 0);
    *slash = '/';
    assert_int_equal(fs_write_atomic(path, text, strlen(text), 0600), 0);
}

/* "<dir>/<name>" in a static buffer (one at a time). */
static const char *in_dir(fixture *f, const char *name)
{
    static char path[160];
    snprintf(path, sizeof path, "%s/%s", f->dir, name);
    return path;
}

static char *b64(const char *s)
{
    char *out = malloc(digest_base64_encoded_len(strlen(s)));
    digest_base64_encode(s, strlen(s), out);
    return out;
}

static void handler(const https_request *req, https_response *res, void *arg)
{
    fixture *f = arg;
    if (f->nseen < NREQ) {
        seen *s = &f->seen[f->nseen++];
        s->method = strdup(req->method);
        s->path = strdup(req->path);
        s->query = strdup(req->query);
        s->authorization = req->authorization ? strdup(req->authorization) : NULL;
        s->content_type = req->content_type ? strdup(req->content_type) : NULL;
        s->body = strdup(req->body);
    }
    if (!strcmp(req->path, "/api/v1/namespaces/ns/pods/missing")) {
        res->status = 404;
        strbuf_puts(&res->body, "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
                                "\"message\":\"pods \\\"missing\\\" not found\",\"reason\":\"NotFound\","
                                "\"details\":{\"name\":\"missing\",\"kind\":\"pods\"},\"code\":404}");
    } else if (!strcmp(req->path, "/boom")) {
        res->status = 500;
        res->content_type = "text/plain";
        strbuf_puts(&res->body, "upstream connect error");
    } else if (!strcmp(req->method, "PATCH")) {
        strbuf_puts(&res->body, "{\"kind\":\"Scale\",\"spec\":{\"replicas\":3}}");
    } else {
        strbuf_puts(&res->body, "{\"kind\":\"PodList\",\"items\":[{\"metadata\":{\"name\":\"p1\"}}]}");
    }
}

static void on_watchdog(uv_timer_t *t)
{
    fixture *f = t->data;
    f->timed_out = true;
    uv_stop(&f->loop);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_k8s-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < NREQ; i++) {
        free(f->got[i].errmsg);
        free(f->got[i].reason);
        free(f->got[i].obj);
    }
    for (int i = 0; i < f->nseen; i++) {
        free(f->seen[i].method);
        free(f->seen[i].path);
        free(f->seen[i].query);
        free(f->seen[i].authorization);
        free(f->seen[i].content_type);
        free(f->seen[i].body);
    }
    fs_rm_rf(f->dir);
    free(f);
    return 0;
}

/* A loop with a watchdog and the server on it. */
static void serve(fixture *f)
{
    char err[256];
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->has_loop = true;
    uv_timer_init(&f->loop, &f->watchdog);
    f->watchdog.data = f;
    uv_timer_start(&f->watchdog, on_watchdog, 4000, 0);
    uv_unref((uv_handle_t *)&f->watchdog);
    https_opts o = { .host = "127.0.0.1", .handler = handler, .arg = f };
    f->srv = https_listen(&f->loop, &o, err, sizeof err);
    assert_non_null(f->srv);
    f->port = https_port(f->srv);
}

static void finish(fixture *f)
{
    k8s_free(f->c);
    f->c = NULL;
    https_free(f->srv);
    f->srv = NULL;
}

/* Runs the loop to the end: no hang, nothing left open. */
static void run(fixture *f)
{
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_false(f->timed_out);
    uv_close((uv_handle_t *)&f->watchdog, NULL);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static void on_result(const k8s_result *r, void *arg)
{
    slot *s = arg;
    fixture *f = s->f;
    got *g = &f->got[s->i];
    g->called++;
    g->error = r->error;
    g->status = r->status;
    g->errmsg = strdup(r->errmsg);
    g->reason = strdup(r->reason);
    g->obj = r->obj ? cJSON_PrintUnformatted(r->obj) : NULL;
    f->calls[s->i] = NULL;
    if (f->on_cb)
        f->on_cb(f, s->i);
    if (--f->outstanding == 0)
        finish(f);
}

static k8s_call *req(fixture *f, int i, const char *method, const char *path, const char *ctype, const char *body)
{
    f->slots[i] = (slot){ f, i };
    f->calls[i] = k8s_request(f->c, method, path, ctype, body, on_result, &f->slots[i]);
    if (f->calls[i])
        f->outstanding++;
    return f->calls[i];
}

/* A client for the loopback server with a static token (NULL: none). */
static void client(fixture *f, const char *token)
{
    char server[64];
    snprintf(server, sizeof server, "http://127.0.0.1:%d", f->port);
    k8s_auth a = { .server = server, .token = (char *)token, .namespace = "ns", .source = "test" };
    f->c = k8s_new(&f->loop, &a, NULL, f->err, sizeof f->err);
    assert_non_null(f->c);
}

/* ---- kubeconfig ---- */

#define KC_HEAD "apiVersion: v1\nkind: Config\n"
#define KC_DEV(user)                                                                                              \
    "current-context: dev\ncontexts:\n- name: dev\n  context:\n    cluster: c1\n    user: " user "\n"
#define KC_CLUSTER(extra) "clusters:\n- name: c1\n  cluster:\n    server: https://k8s.example:6443\n" extra
#define KC_USER(extra)    "users:\n- name: u1\n  user:\n" extra

/* Loads kubeconfig text written to <dir>/config; returns k8s_auth_kubeconfig's result. */
static int load(fixture *f, const char *text, const char *context, k8s_auth *a)
{
    write_file(f, "config", text);
    return k8s_auth_kubeconfig(in_dir(f, "config"), context, a, f->err, sizeof f->err);
}

/* A token user under current-context: the cluster's server (trailing slash dropped), the user's token, the
 * context's namespace, and a source that names the file and the context. */
static void kubeconfig_token_user(void **state)
{
    fixture *f = *state;
    k8s_auth a;
    char want[256];
    assert_int_equal(load(f,
                          KC_HEAD "current-context: dev\n"
                                  "contexts:\n- name: dev\n  context:\n    cluster: c1\n    user: u1\n"
                                  "    namespace: team-a\n"
                                  "clusters:\n- name: c1\n  cluster:\n    server: https://k8s.example:6443/\n"
                                  "users:\n- name: u1\n  user:\n    token: " TOKEN "\n",
                          NULL, &a),
                     0);
    assert_string_equal(a.server, "https://k8s.example:6443");
    assert_string_equal(a.token, TOKEN);
    assert_null(a.token_file);
    assert_null(a.ca_file);
    assert_null(a.ca_pem);
    assert_null(a.cert_file);
    assert_null(a.cert_pem);
    assert_string_equal(a.namespace, "team-a");
    snprintf(want, sizeof want, "kubeconfig %s, context \"dev\"", in_dir(f, "config"));
    assert_string_equal(a.source, want);
    k8s_auth_free(&a);
}

/* tokenFile and certificate-authority given as relative paths resolve against the kubeconfig's directory, and
 * a context without a namespace means "default". */
static void kubeconfig_relative_files(void **state)
{
    fixture *f = *state;
    k8s_auth a;
    char want[256];
    write_file(f, "tok", "file-token\n");
    write_file(f, "certs/ca.crt", cert_pem);
    assert_int_equal(load(f,
                          KC_HEAD KC_DEV("u1") KC_CLUSTER("    certificate-authority: certs/ca.crt\n")
                              KC_USER("    tokenFile: tok\n"),
                          NULL, &a),
                     0);
    snprintf(want, sizeof want, "%s/certs/ca.crt", f->dir);
    assert_string_equal(a.ca_file, want);
    snprintf(want, sizeof want, "%s/tok", f->dir);
    assert_string_equal(a.token_file, want);
    assert_null(a.token);
    assert_string_equal(a.namespace, "default");
    k8s_auth_free(&a);
}

/* certificate-authority-data, client-certificate-data and client-key-data are decoded to the PEM bytes, also
 * when the base64 is folded over several lines. */
static void kubeconfig_data_fields_are_decoded(void **state)
{
    fixture *f = *state;
    k8s_auth a;
    char *ca = b64(cert_pem), *cert = b64(cert_pem), *key = b64(key_pem);
    strbuf y = STRBUF_INIT;
    strbuf_printf(&y, KC_HEAD KC_DEV("u1") KC_CLUSTER("    certificate-authority-data: %s\n")
                      KC_USER("    client-certificate-data: %s\n    client-key-data: |\n      %.40s\n      %s\n"),
                  ca, cert, key, key + 40);
    assert_int_equal(load(f, y.data, NULL, &a), 0);
    assert_int_equal(a.ca_pem_len, strlen(cert_pem));
    assert_memory_equal(a.ca_pem, cert_pem, a.ca_pem_len);
    assert_int_equal(a.cert_pem_len, strlen(cert_pem));
    assert_memory_equal(a.cert_pem, cert_pem, a.cert_pem_len);
    assert_int_equal(a.key_pem_len, strlen(key_pem));
    assert_memory_equal(a.key_pem, key_pem, a.key_pem_len);
    assert_null(a.ca_file);
    assert_null(a.token);
    k8s_auth_free(&a);
    strbuf_free(&y);
    free(ca);
    free(cert);
    free(key);
}

/* client-certificate and client-key files are resolved and kept as paths. */
static void kubeconfig_client_cert_files(void **state)
{
    fixture *f = *state;
    k8s_auth a;
    char want[256];
    write_file(f, "pki/client.crt", cert_pem);
    write_file(f, "pki/client.key", key_pem);
    assert_int_equal(load(f,
                          KC_HEAD KC_DEV("u1") KC_CLUSTER("")
                              KC_USER("    client-certificate: pki/client.crt\n"
                                      "    client-key: pki/client.key\n"),
                          NULL, &a),
                     0);
    snprintf(want, sizeof want, "%s/pki/client.crt", f->dir);
    assert_string_equal(a.cert_file, want);
    snprintf(want, sizeof want, "%s/pki/client.key", f->dir);
    assert_string_equal(a.key_file, want);
    assert_null(a.cert_pem);
    assert_null(a.key_pem);
    k8s_auth_free(&a);
}

/* A named context wins over current-context and brings its own cluster, user and namespace;
 * insecure-skip-tls-verify: false is accepted. JSON is YAML too. */
static void kubeconfig_named_context(void **state)
{
    fixture *f = *state;
    k8s_auth a;
    static const char text[] =
        KC_HEAD "current-context: a\n"
                "contexts:\n"
                "- name: a\n  context: {cluster: ca, user: ua, namespace: ns-a}\n"
                "- name: b\n  context: {cluster: cb, user: ub, namespace: ns-b}\n"
                "clusters:\n"
                "- name: ca\n  cluster: {server: 'https://a.example'}\n"
                "- name: cb\n  cluster: {server: 'https://b.example:8443', insecure-skip-tls-verify: false}\n"
                "users:\n"
                "- name: ua\n  user: {token: token-a}\n"
                "- name: ub\n  user: {token: token-b}\n";
    assert_int_equal(load(f, text, "b", &a), 0);
    assert_string_equal(a.server, "https://b.example:8443");
    assert_string_equal(a.token, "token-b");
    assert_string_equal(a.namespace, "ns-b");
    k8s_auth_free(&a);
    assert_int_equal(load(f, text, "", &a), 0);
    assert_string_equal(a.server, "https://a.example");
    assert_string_equal(a.namespace, "ns-a");
    k8s_auth_free(&a);
    assert_int_equal(load(f,
                          "{\"current-context\": \"x\", \"contexts\": [{\"name\": \"x\", \"context\": "
                          "{\"cluster\": \"c\"}}], \"clusters\": [{\"name\": \"c\", \"cluster\": "
                          "{\"server\": \"http://127.0.0.1:8080\"}}]}",
                          NULL, &a),
                     0);
    assert_string_equal(a.server, "http://127.0.0.1:8080");
    assert_null(a.token);
    k8s_auth_free(&a);
}

/* Every refusal is an error that starts with the kubeconfig's path and names the field or the missing name;
 * the auth is left empty. */
static void kubeconfig_refusals_name_the_field(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *text, *context, *want;
    } cases[] = {
        { KC_HEAD "contexts: []\n", NULL, "current-context is not set" },
        { KC_HEAD KC_DEV("u1") KC_CLUSTER("") KC_USER(""), "staging", "context \"staging\" not found" },
        { KC_HEAD "current-context: dev\ncontexts:\n- name: dev\n  context:\n    cluster: gone\n" KC_CLUSTER(""),
          NULL, "cluster \"gone\" not found" },
        { KC_HEAD KC_DEV("ghost") KC_CLUSTER("") KC_USER(""), NULL, "user \"ghost\" not found" },
        { KC_HEAD "current-context: dev\ncontexts:\n- name: dev\n  context:\n    user: u1\n", NULL,
          "context \"dev\": cluster is not set" },
        { KC_HEAD KC_DEV("u1") KC_CLUSTER("    insecure-skip-tls-verify: true\n") KC_USER(""), NULL,
          "cluster \"c1\": insecure-skip-tls-verify is not supported" },
        { KC_HEAD KC_DEV("u1") KC_CLUSTER("") KC_USER("    exec:\n      command: aws\n      args: [eks]\n"), NULL,
          "user \"u1\": exec plugins are not supported" },
        { KC_HEAD KC_DEV("u1") KC_CLUSTER("") KC_USER("    auth-provider:\n      name: gcp\n"), NULL,
          "user \"u1\": auth-provider plugins are not supported" },
        { KC_HEAD KC_DEV("u1") KC_CLUSTER("") KC_USER("    username: admin\n    password: pw\n"), NULL,
          "user \"u1\": username/password" },
        { KC_HEAD KC_DEV("u1") KC_CLUSTER("    certificate-authority-data: bm90IGJhc2U2NA=!\n") KC_USER(""), NULL,
          "cluster \"c1\": certificate-authority-data is not valid base64" },
        { KC_HEAD KC_DEV("u1") KC_CLUSTER("") KC_USER("    client-key-data: '@@@@'\n"), NULL,
          "user \"u1\": client-key-data is not valid base64" },
        { KC_HEAD KC_DEV("u1") KC_CLUSTER("    certificate-authority: nowhere.crt\n") KC_USER(""), NULL,
          "nowhere.crt: No such file or directory" },
        { KC_HEAD KC_DEV("u1") KC_CLUSTER("    certificate-authority: config\n    certificate-authority-data: eA==\n")
              KC_USER(""),
          NULL, "give certificate-authority or certificate-authority-data, not both" },
        { KC_HEAD KC_DEV("u1") KC_CLUSTER("") KC_USER("    client-certificate-data: eA==\n"), NULL,
          "client-certificate without client-key" },
        { KC_HEAD KC_DEV("u1") KC_CLUSTER("") KC_USER("    tokenFile: no-such-token\n"), NULL,
          "tokenFile" },
        { KC_HEAD KC_DEV("u1") "clusters:\n- name: c1\n  cluster:\n    server: ftp://x\n" KC_USER(""), NULL,
          "cluster \"c1\": server \"ftp://x\" is not an https:// or http:// URL" },
        { KC_HEAD KC_DEV("u1") "clusters:\n- name: c1\n  cluster: {}\n", NULL, "cluster \"c1\": server is not set" },
        { KC_HEAD KC_DEV("u1") "clusters: {c1: 1}\n", NULL, "clusters must be a list" },
        { KC_HEAD KC_DEV("u1") KC_CLUSTER("") KC_USER("    token: [a, b]\n"), NULL,
          "user \"u1\": token must be a string" },
        { "- just\n- a list\n", NULL, "not a kubeconfig" },
        { "", NULL, "empty" },
    };
    char prefix[256];
    snprintf(prefix, sizeof prefix, "kubeconfig %s: ", in_dir(f, "config"));
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        k8s_auth a;
        f->err[0] = '\0';
        if (load(f, cases[i].text, cases[i].context, &a) != -1 || strncmp(f->err, prefix, strlen(prefix)) ||
            !strstr(f->err, cases[i].want))
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, f->err, cases[i].want);
        assert_null(a.server);
        assert_null(a.token);
        assert_null(a.ca_pem);
    }
}

/* Malformed YAML is reported with libyaml's line and column; a missing file with its path and errno text. */
static void kubeconfig_malformed_yaml_gives_line(void **state)
{
    fixture *f = *state;
    k8s_auth a;
    assert_int_equal(load(f, KC_HEAD "current-context: dev\n\tcontexts: []\n", NULL, &a), -1);
    assert_non_null(strstr(f->err, in_dir(f, "config")));
    assert_non_null(strstr(f->err, "invalid YAML at line 4, column 1"));
    assert_int_equal(load(f, KC_HEAD "clusters:\n- name: c1\n  cluster: {server: x\nusers: []\n", NULL, &a), -1);
    assert_non_null(strstr(f->err, "invalid YAML at line "));
    assert_int_equal(k8s_auth_kubeconfig(in_dir(f, "absent"), NULL, &a, f->err, sizeof f->err), -1);
    assert_non_null(strstr(f->err, in_dir(f, "absent")));
    assert_non_null(strstr(f->err, "No such file or directory"));
}

/* A token in the file never appears in a message: not when the user is refused, not when the YAML breaks
 * right after it. */
static void kubeconfig_errors_never_quote_tokens(void **state)
{
    fixture *f = *state;
    k8s_auth a;
    assert_int_equal(load(f, KC_HEAD KC_DEV("u1") KC_CLUSTER("") KC_USER("    token: " TOKEN "\n    exec: {}\n"),
                          NULL, &a),
                     -1);
    assert_non_null(strstr(f->err, "exec"));
    assert_null(strstr(f->err, TOKEN));
    assert_int_equal(load(f, KC_HEAD KC_DEV("u1") KC_CLUSTER("") KC_USER("    token: \"" TOKEN "\n"), NULL, &a), -1);
    assert_non_null(strstr(f->err, "invalid YAML"));
    assert_null(strstr(f->err, TOKEN));
    assert_int_equal(load(f, KC_HEAD KC_DEV("u1") KC_CLUSTER("") KC_USER("    token: \"" TOKEN "\\x01\"\n"), NULL,
                          &a),
                     -1);
    assert_non_null(strstr(f->err, "control characters"));
    assert_null(strstr(f->err, TOKEN));
}

/* ---- in cluster ---- */

static void sa_dir(fixture *f, bool with_namespace)
{
    write_file(f, "sa/token", TOKEN "\n");
    write_file(f, "sa/ca.crt", cert_pem);
    if (with_namespace)
        write_file(f, "sa/namespace", "pool-ns\n");
}

/* The service host and port make an https URL, the token and CA are the service account's files, the namespace
 * comes from its file (trimmed); the token itself is not read into the auth. */
static void in_cluster_reads_the_service_account(void **state)
{
    fixture *f = *state;
    char *envp[] = { "KUBERNETES_SERVICE_HOST=10.96.0.1", "KUBERNETES_SERVICE_PORT=443", NULL };
    k8s_auth a;
    char want[256];
    sa_dir(f, true);
    assert_int_equal(k8s_auth_in_cluster(in_dir(f, "sa"), envp, &a, f->err, sizeof f->err), 0);
    assert_string_equal(a.server, "https://10.96.0.1:443");
    snprintf(want, sizeof want, "%s/sa/token", f->dir);
    assert_string_equal(a.token_file, want);
    snprintf(want, sizeof want, "%s/sa/ca.crt", f->dir);
    assert_string_equal(a.ca_file, want);
    assert_null(a.token);
    assert_string_equal(a.namespace, "pool-ns");
    assert_string_equal(a.source, "in-cluster");
    k8s_auth_free(&a);
}

/* An IPv6 service host is bracketed; without a namespace file the namespace is "default". */
static void in_cluster_ipv6_host_is_bracketed(void **state)
{
    fixture *f = *state;
    char *envp[] = { "KUBERNETES_SERVICE_HOST=fd00:10:96::1", "KUBERNETES_SERVICE_PORT=6443", NULL };
    k8s_auth a;
    sa_dir(f, false);
    assert_int_equal(k8s_auth_in_cluster(in_dir(f, "sa"), envp, &a, f->err, sizeof f->err), 0);
    assert_string_equal(a.server, "https://[fd00:10:96::1]:6443");
    assert_string_equal(a.namespace, "default");
    k8s_auth_free(&a);
}

/* What is missing is named: the host, the port, a bad port, the token file, the CA file. */
static void in_cluster_names_what_is_missing(void **state)
{
    fixture *f = *state;
    char *no_host[] = { "KUBERNETES_SERVICE_PORT=443", NULL };
    char *no_port[] = { "KUBERNETES_SERVICE_HOST=10.96.0.1", NULL };
    char *bad_port[] = { "KUBERNETES_SERVICE_HOST=10.96.0.1", "KUBERNETES_SERVICE_PORT=https", NULL };
    char *ok[] = { "KUBERNETES_SERVICE_HOST=10.96.0.1", "KUBERNETES_SERVICE_PORT=443", NULL };
    char want[256];
    k8s_auth a;
    assert_int_equal(k8s_auth_in_cluster(in_dir(f, "sa"), no_host, &a, f->err, sizeof f->err), -1);
    assert_string_equal(f->err, "KUBERNETES_SERVICE_HOST is not set: not running in a cluster");
    assert_int_equal(k8s_auth_in_cluster(in_dir(f, "sa"), no_port, &a, f->err, sizeof f->err), -1);
    assert_string_equal(f->err, "KUBERNETES_SERVICE_PORT is not set: not running in a cluster");
    assert_int_equal(k8s_auth_in_cluster(in_dir(f, "sa"), bad_port, &a, f->err, sizeof f->err), -1);
    assert_non_null(strstr(f->err, "KUBERNETES_SERVICE_PORT=\"https\""));

    write_file(f, "sa/ca.crt", cert_pem);
    assert_int_equal(k8s_auth_in_cluster(in_dir(f, "sa"), ok, &a, f->err, sizeof f->err), -1);
    snprintf(want, sizeof want, "%s/sa/token: No such file or directory", f->dir);
    assert_string_equal(f->err, want);
    assert_null(a.server);

    write_file(f, "sa/token", TOKEN);
    assert_int_equal(unlink(in_dir(f, "sa/ca.crt")), 0);
    assert_int_equal(k8s_auth_in_cluster(in_dir(f, "sa"), ok, &a, f->err, sizeof f->err), -1);
    snprintf(want, sizeof want, "%s/sa/ca.crt: No such file or directory", f->dir);
    assert_string_equal(f->err, want);
}

/* ---- which configuration ---- */

/* The order: an explicit kubeconfig; else in cluster when KUBERNETES_SERVICE_HOST is set; else the first entry
 * of KUBECONFIG; else $HOME/.kube/config; else an error that says all of it was tried. */
static void load_follows_client_go_order(void **state)
{
    fixture *f = *state;
    k8s_auth a;
    char kc_flag[256], kc_env[512], home[256], want[256];
    write_file(f, "flag/config", KC_HEAD KC_DEV("u1") "clusters:\n- name: c1\n  cluster: {server: https://flag}\n"
                                 KC_USER("    token: t\n"));
    write_file(f, "env/config", KC_HEAD KC_DEV("u1") "clusters:\n- name: c1\n  cluster: {server: https://env}\n"
                                KC_USER("    token: t\n"));
    write_file(f, "home/.kube/config", KC_HEAD KC_DEV("u1")
               "clusters:\n- name: c1\n  cluster: {server: https://home}\n" KC_USER("    token: t\n"));
    snprintf(kc_flag, sizeof kc_flag, "%s/flag/config", f->dir);
    snprintf(kc_env, sizeof kc_env, "KUBECONFIG=:%s/env/config:%s/flag/config", f->dir, f->dir);
    snprintf(home, sizeof home, "HOME=%s/home", f->dir);

    /* The flag wins over everything. */
    char *all[] = { "KUBERNETES_SERVICE_HOST=10.96.0.1", kc_env, home, NULL };
    assert_int_equal(k8s_auth_load(kc_flag, NULL, all, &a, f->err, sizeof f->err), 0);
    assert_string_equal(a.server, "https://flag");
    k8s_auth_free(&a);

    /* In cluster next (no port: the error shows which way was taken, wherever the test runs). */
    assert_int_equal(k8s_auth_load("", NULL, all, &a, f->err, sizeof f->err), -1);
    assert_string_equal(f->err, "KUBERNETES_SERVICE_PORT is not set: not running in a cluster");

    /* Then KUBECONFIG's first (non-empty) entry. */
    char *env_home[] = { kc_env, home, NULL };
    assert_int_equal(k8s_auth_load(NULL, NULL, env_home, &a, f->err, sizeof f->err), 0);
    assert_string_equal(a.server, "https://env");
    k8s_auth_free(&a);

    /* Then $HOME/.kube/config. */
    char *only_home[] = { home, NULL };
    assert_int_equal(k8s_auth_load(NULL, NULL, only_home, &a, f->err, sizeof f->err), 0);
    assert_string_equal(a.server, "https://home");
    k8s_auth_free(&a);

    /* Nothing at all. */
    char empty_home[300];
    snprintf(empty_home, sizeof empty_home, "HOME=%s/nobody", f->dir);
    char *nothing[] = { empty_home, NULL };
    assert_int_equal(k8s_auth_load(NULL, NULL, nothing, &a, f->err, sizeof f->err), -1);
    snprintf(want, sizeof want, "%s/nobody/.kube/config: No such file or directory", f->dir);
    assert_non_null(strstr(f->err, want));
    assert_non_null(strstr(f->err, "KUBERNETES_SERVICE_HOST is not set"));
    assert_non_null(strstr(f->err, "KUBECONFIG is not set"));
}

/* ---- escaping ---- */

/* Unreserved characters pass, everything else is percent-escaped; a buffer too small is an error. */
static void escape_percent_encodes(void **state)
{
    (void)state;
    char out[64], tiny[6];
    assert_int_equal(k8s_escape("app=iac-agent,pool in (a b)", out, sizeof out), 0);
    assert_string_equal(out, "app%3Diac-agent%2Cpool%20in%20%28a%20b%29");
    assert_int_equal(k8s_escape("a/b?c#d&e%f~g_h.i", out, sizeof out), 0);
    assert_string_equal(out, "a%2Fb%3Fc%23d%26e%25f~g_h.i");
    assert_int_equal(k8s_escape("\xc3\xa9", out, sizeof out), 0);
    assert_string_equal(out, "%C3%A9");
    assert_int_equal(k8s_escape("", out, sizeof out), 0);
    assert_string_equal(out, "");
    assert_int_equal(k8s_escape("abcde", tiny, sizeof tiny), 0);
    assert_int_equal(k8s_escape("abcdef", tiny, sizeof tiny), -1);
    assert_int_equal(k8s_escape("a==", tiny, sizeof tiny), -1);
}

/* ---- the client ---- */

/* k8s_new checks the TLS material: PEM certificates and keys pass, anything else is refused with the field's
 * name, as is a certificate without its key. */
static void new_checks_pem_material(void **state)
{
    fixture *f = *state;
    uv_loop_t loop;
    char err[512];
    assert_int_equal(uv_loop_init(&loop), 0);
    write_file(f, "ca.crt", cert_pem);
    write_file(f, "junk.crt", "not a certificate\n");
    char ca_path[256], junk_path[256];
    snprintf(ca_path, sizeof ca_path, "%s/ca.crt", f->dir);
    snprintf(junk_path, sizeof junk_path, "%s/junk.crt", f->dir);

    k8s_auth good = { .server = "https://k8s.example", .ca_pem = cert_pem, .ca_pem_len = strlen(cert_pem),
                      .cert_pem = cert_pem, .cert_pem_len = strlen(cert_pem), .key_pem = key_pem,
                      .key_pem_len = strlen(key_pem), .source = "src" };
    k8s *c = k8s_new(&loop, &good, NULL, err, sizeof err);
    assert_non_null(c);
    assert_string_equal(k8s_namespace(c), "default");
    k8s_free(c);

    k8s_auth file_ca = { .server = "https://k8s.example", .ca_file = ca_path, .namespace = "x" };
    assert_non_null(c = k8s_new(&loop, &file_ca, NULL, err, sizeof err));
    assert_string_equal(k8s_namespace(c), "x");
    k8s_free(c);

    k8s_auth bad = good;
    bad.ca_pem = "garbage";
    bad.ca_pem_len = 7;
    assert_null(k8s_new(&loop, &bad, NULL, err, sizeof err));
    assert_non_null(strstr(err, "src: certificate-authority data is not a PEM certificate"));
    bad = good;
    bad.key_pem = cert_pem;
    bad.key_pem_len = strlen(cert_pem);
    assert_null(k8s_new(&loop, &bad, NULL, err, sizeof err));
    assert_non_null(strstr(err, "client-key"));
    bad = good;
    bad.key_pem = NULL;
    assert_null(k8s_new(&loop, &bad, NULL, err, sizeof err));
    assert_non_null(strstr(err, "certificate needs its key"));
    bad = file_ca;
    bad.ca_file = junk_path;
    assert_null(k8s_new(&loop, &bad, NULL, err, sizeof err));
    assert_non_null(strstr(err, junk_path));
    bad = file_ca;
    bad.server = "k8s.example";
    assert_null(k8s_new(&loop, &bad, NULL, err, sizeof err));

    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A GET reaches the server with the bearer, the default content type and the query intact, and the JSON body
 * comes back parsed; the error fields are empty on success. */
static void get_parses_the_object(void **state)
{
    fixture *f = *state;
    serve(f);
    client(f, TOKEN);
    assert_string_equal(k8s_namespace(f->c), "ns");
    assert_non_null(req(f, 0, "GET", "/api/v1/namespaces/ns/pods?labelSelector=app%3Dy", NULL, NULL));
    assert_int_equal(k8s_pending(f->c), 1);
    run(f);
    assert_int_equal(f->got[0].called, 1);
    assert_int_equal(f->got[0].error, 0);
    assert_int_equal(f->got[0].status, 200);
    assert_string_equal(f->got[0].errmsg, "");
    assert_string_equal(f->got[0].reason, "");
    assert_string_equal(f->got[0].obj, "{\"kind\":\"PodList\",\"items\":[{\"metadata\":{\"name\":\"p1\"}}]}");
    assert_int_equal(f->nseen, 1);
    assert_string_equal(f->seen[0].method, "GET");
    assert_string_equal(f->seen[0].path, "/api/v1/namespaces/ns/pods");
    assert_string_equal(f->seen[0].query, "labelSelector=app%3Dy");
    assert_string_equal(f->seen[0].authorization, "Bearer " TOKEN);
    assert_string_equal(f->seen[0].content_type, "application/json");
}

/* A 404 Status object gives its reason and message, and the object itself. */
static void status_object_fills_reason_and_message(void **state)
{
    fixture *f = *state;
    serve(f);
    client(f, TOKEN);
    req(f, 0, "GET", "/api/v1/namespaces/ns/pods/missing", NULL, NULL);
    run(f);
    assert_int_equal(f->got[0].error, 0);
    assert_int_equal(f->got[0].status, 404);
    assert_string_equal(f->got[0].reason, "NotFound");
    assert_string_equal(f->got[0].errmsg, "pods \"missing\" not found");
    assert_non_null(f->got[0].obj);
    assert_non_null(strstr(f->got[0].obj, "\"kind\":\"Status\""));
}

/* A non-JSON error answer gives "HTTP <status>", no reason and no object. */
static void non_json_error_gives_http_status(void **state)
{
    fixture *f = *state;
    serve(f);
    client(f, TOKEN);
    req(f, 0, "DELETE", "/boom", NULL, NULL);
    run(f);
    assert_int_equal(f->got[0].error, 0);
    assert_int_equal(f->got[0].status, 500);
    assert_string_equal(f->got[0].errmsg, "HTTP 500");
    assert_string_equal(f->got[0].reason, "");
    assert_null(f->got[0].obj);
    assert_string_equal(f->seen[0].method, "DELETE");
}

/* PATCH sends the body with the content type given; POST without one sends application/json; without a token
 * no Authorization header goes out. */
static void patch_sends_its_content_type(void **state)
{
    fixture *f = *state;
    serve(f);
    client(f, NULL);
    req(f, 0, "PATCH", "/apis/apps/v1/namespaces/ns/deployments/pool/scale", "application/merge-patch+json",
        "{\"spec\":{\"replicas\":3}}");
    run(f);
    assert_int_equal(f->got[0].status, 200);
    assert_string_equal(f->got[0].obj, "{\"kind\":\"Scale\",\"spec\":{\"replicas\":3}}");
    assert_string_equal(f->seen[0].method, "PATCH");
    assert_string_equal(f->seen[0].content_type, "application/merge-patch+json");
    assert_string_equal(f->seen[0].body, "{\"spec\":{\"replicas\":3}}");
    assert_null(f->seen[0].authorization);
}

/* A refused connection is an error with a message, no status, no object, and the token nowhere in it. */
static void refused_connection_is_an_error(void **state)
{
    fixture *f = *state;
    serve(f);
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t sl = sizeof sa;
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    close(fd); /* a port that was open a moment ago and is now closed */
    f->port = ntohs(sa.sin_port);
    client(f, TOKEN);
    req(f, 0, "GET", "/api/v1/namespaces/ns/pods", NULL, NULL);
    run(f);
    assert_int_equal(f->got[0].called, 1);
    assert_true(f->got[0].error < 0);
    assert_int_equal(f->got[0].status, 0);
    assert_true(strlen(f->got[0].errmsg) > 0);
    assert_null(strstr(f->got[0].errmsg, TOKEN));
    assert_null(f->got[0].obj);
}

/* Rotation: rewrites the service-account token (same size, mtime moved forward) after the first answer and
 * sends the second request. */
static void rotate_then_request(fixture *f, int i)
{
    if (i != 0)
        return;
    write_file(f, "sa/token", "kt-r0tated-bearer-9876543210\n");
    struct timespec ts[2];
    clock_gettime(CLOCK_REALTIME, &ts[0]);
    ts[0].tv_sec += 30;
    ts[1] = ts[0];
    assert_int_equal(utimensat(AT_FDCWD, in_dir(f, "sa/token"), ts, 0), 0);
    req(f, 1, "GET", "/api/v1/namespaces/pool-ns/pods", NULL, NULL);
}

/* In cluster, the token file is read before a request when it changed: a token rotated between two requests
 * goes out with the second. */
static void rotated_token_is_sent(void **state)
{
    fixture *f = *state;
    char *envp[] = { "KUBERNETES_SERVICE_HOST=127.0.0.1", "KUBERNETES_SERVICE_PORT=443", NULL };
    k8s_auth a;
    serve(f);
    sa_dir(f, true);
    assert_int_equal(k8s_auth_in_cluster(in_dir(f, "sa"), envp, &a, f->err, sizeof f->err), 0);
    free(a.server); /* the test server speaks plain HTTP */
    char server[64];
    snprintf(server, sizeof server, "http://127.0.0.1:%d", f->port);
    a.server = strdup(server);
    f->c = k8s_new(&f->loop, &a, NULL, f->err, sizeof f->err);
    k8s_auth_free(&a);
    assert_non_null(f->c);
    assert_string_equal(k8s_namespace(f->c), "pool-ns");
    f->on_cb = rotate_then_request;
    req(f, 0, "GET", "/api/v1/namespaces/pool-ns/pods", NULL, NULL);
    run(f);
    assert_int_equal(f->nseen, 2);
    assert_string_equal(f->seen[0].authorization, "Bearer " TOKEN);
    assert_string_equal(f->seen[1].authorization, "Bearer kt-r0tated-bearer-9876543210");
    assert_int_equal(f->got[1].status, 200);
}

/* A token file that cannot be read (and never could) fails the request through its callback, later on the
 * loop, with a message naming the file; a path without a leading "/" fails the same way. */
static void unreadable_token_fails_the_request(void **state)
{
    fixture *f = *state;
    char server[64], token_file[256];
    serve(f);
    snprintf(server, sizeof server, "http://127.0.0.1:%d", f->port);
    snprintf(token_file, sizeof token_file, "%s/gone", f->dir);
    k8s_auth a = { .server = server, .token_file = token_file, .source = "in-cluster" };
    f->c = k8s_new(&f->loop, &a, NULL, f->err, sizeof f->err);
    assert_non_null(f->c);
    assert_non_null(req(f, 0, "GET", "/api/v1/pods", NULL, NULL));
    assert_non_null(req(f, 1, "GET", "api/v1/pods", NULL, NULL));
    assert_int_equal(f->got[0].called, 0); /* not from inside k8s_request */
    assert_int_equal(k8s_pending(f->c), 2);
    run(f);
    assert_int_equal(f->got[0].called, 1);
    assert_int_equal(f->got[0].error, HTTPC_E_IO);
    assert_non_null(strstr(f->got[0].errmsg, token_file));
    assert_int_equal(f->got[1].called, 1);
    assert_true(f->got[1].error < 0);
    assert_non_null(strstr(f->got[1].errmsg, "must start with \"/\""));
    assert_int_equal(f->nseen, 0);
}

static void cancel_the_other(fixture *f, int i)
{
    int other = i == 0 ? 1 : 0;
    if (i < 2 && f->calls[other]) {
        k8s_cancel(f->calls[other]);
        f->calls[other] = NULL;
        f->outstanding--;
    }
}

/* A cancelled request never calls back, whether it was in flight or an early failure still queued. */
static void cancelled_requests_never_call_back(void **state)
{
    fixture *f = *state;
    serve(f);
    client(f, TOKEN);
    req(f, 0, "GET", "/api/v1/pods", NULL, NULL);
    req(f, 1, "GET", "/api/v1/pods", NULL, NULL);
    req(f, 2, "GET", "no-slash", NULL, NULL);
    k8s_cancel(f->calls[2]);
    f->outstanding--;
    assert_int_equal(k8s_pending(f->c), 2);
    f->on_cb = cancel_the_other;
    run(f);
    assert_int_equal(f->got[0].called + f->got[1].called, 1);
    assert_int_equal(f->got[2].called, 0);
}

int main(void)
{
    lws_set_log_level(LLL_ERR, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(kubeconfig_token_user, setup, teardown),
        cmocka_unit_test_setup_teardown(kubeconfig_relative_files, setup, teardown),
        cmocka_unit_test_setup_teardown(kubeconfig_data_fields_are_decoded, setup, teardown),
        cmocka_unit_test_setup_teardown(kubeconfig_client_cert_files, setup, teardown),
        cmocka_unit_test_setup_teardown(kubeconfig_named_context, setup, teardown),
        cmocka_unit_test_setup_teardown(kubeconfig_refusals_name_the_field, setup, teardown),
        cmocka_unit_test_setup_teardown(kubeconfig_malformed_yaml_gives_line, setup, teardown),
        cmocka_unit_test_setup_teardown(kubeconfig_errors_never_quote_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(in_cluster_reads_the_service_account, setup, teardown),
        cmocka_unit_test_setup_teardown(in_cluster_ipv6_host_is_bracketed, setup, teardown),
        cmocka_unit_test_setup_teardown(in_cluster_names_what_is_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(load_follows_client_go_order, setup, teardown),
        cmocka_unit_test_setup_teardown(escape_percent_encodes, setup, teardown),
        cmocka_unit_test_setup_teardown(new_checks_pem_material, setup, teardown),
        cmocka_unit_test_setup_teardown(get_parses_the_object, setup, teardown),
        cmocka_unit_test_setup_teardown(status_object_fills_reason_and_message, setup, teardown),
        cmocka_unit_test_setup_teardown(non_json_error_gives_http_status, setup, teardown),
        cmocka_unit_test_setup_teardown(patch_sends_its_content_type, setup, teardown),
        cmocka_unit_test_setup_teardown(refused_connection_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(rotated_token_is_sent, setup, teardown),
        cmocka_unit_test_setup_teardown(unreadable_token_fails_the_request, setup, teardown),
        cmocka_unit_test_setup_teardown(cancelled_requests_never_call_back, setup, teardown),
    };
    return cmocka_run_group_tests(tests, make_cert, free_cert);
}
