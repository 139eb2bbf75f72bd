/* k8s.h — the coordinator's Kubernetes API client: where the API server is, how to authenticate, and one
 * asynchronous JSON request at a time on the coordinator's libuv loop.
 *
 * Two ways in, as client-go has them (ref §5.9):
 *   - in cluster: KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT, the service-account token, CA and namespace
 *     under /var/run/secrets/kubernetes.io/serviceaccount. The token is projected and rotated by the kubelet, so it
 *     is re-read before a request whenever the file changed (mtime or size) and at least once a minute;
 *   - a kubeconfig file (YAML, read with libyaml; JSON is YAML too): the current context (or a named one) gives
 *     the cluster (server, certificate-authority or -data) and the user (token, tokenFile, client-certificate and
 *     client-key or their -data). insecure-skip-tls-verify, exec and auth-provider plugins are refused with a
 *     message that names the field: TLS is always verified and no external program is run.
 *
 * Transport is common/httpc (libcurl multi on libuv): TLS always verified against the CA given (or the system
 * store), one attempt per request (the caller's next cycle is the retry), a short timeout. Tokens never appear in
 * logs or error texts.
 *
 * Ownership: k8s_auth owns its strings (k8s_auth_free). k8s_new() copies what it needs from the auth; the client
 * is freed with k8s_free() (libuv handles close asynchronously: run the loop once more before closing it). A
 * result passed to a callback, its JSON included, lives only during the callback. */
#ifndef IAC_COORD_K8S_H
#define IAC_COORD_K8S_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <uv.h>

#define K8S_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

typedef struct {
    char  *server;           /* "https://10.96.0.1:443", no trailing slash */
    char  *ca_file;          /* PEM file, or NULL */
    char  *ca_pem;           /* PEM bytes (certificate-authority-data decoded), or NULL; ca_file wins */
    size_t ca_pem_len;
    char  *cert_file, *key_file;       /* client certificate and key files, or NULL */
    char  *cert_pem, *key_pem;         /* or their PEM bytes (…-data decoded); a file wins, as for the CA */
    size_t cert_pem_len, key_pem_len;
    char  *token;            /* a static bearer token, or NULL */
    char  *token_file;       /* a token file re-read when it changes (in cluster, tokenFile), or NULL; its content
                              * is sent while it can be read, the last good one (else token) when it cannot */
    char  *namespace;        /* in cluster: the namespace file; kubeconfig: the context's namespace; else "default" */
    char  *source;           /* for messages: "in-cluster" or the kubeconfig path and context */
} k8s_auth;

/* In-cluster configuration. sa_dir NULL → K8S_SA_DIR (tests pass their own); envp as for cfg_parse (NULL →
 * environ). Returns 0, or -1 with a message in err that names what is missing ("KUBERNETES_SERVICE_HOST is not
 * set: not running in a cluster", "…/token: No such file or directory"). IPv6 hosts are bracketed. */
int k8s_auth_in_cluster(const char *sa_dir, char **envp, k8s_auth *out, char *err, size_t errlen);

/* Kubeconfig configuration from path, using context (NULL or "" → current-context). Relative file paths inside it
 * are resolved against the kubeconfig's directory, as kubectl does. Returns 0, or -1 with a message naming the file
 * and the field ("kubeconfig /x/config: context \"dev\" not found", "…: user \"u\": exec plugins are not supported").
 * Only the first file of a colon-separated KUBECONFIG list is read; the caller passes it. */
int k8s_auth_kubeconfig(const char *path, const char *context, k8s_auth *out, char *err, size_t errlen);

/* The order client-go uses, with an explicit flag first: kubeconfig_flag when non-empty; else in cluster when
 * KUBERNETES_SERVICE_HOST is set; else $KUBECONFIG (first entry); else $HOME/.kube/config. */
int k8s_auth_load(const char *kubeconfig_flag, const char *context, char **envp, k8s_auth *out, char *err,
                  size_t errlen);

void k8s_auth_free(k8s_auth *a);

typedef struct k8s k8s;
typedef struct k8s_call k8s_call;

typedef struct {
    int         error;   /* 0, or a negative HTTPC_E_* (transport, timeout, too big) */
    long        status;  /* HTTP status; 0 when error != 0 */
    const char *errmsg;  /* for error != 0 or a non-2xx status: transport text, or the Status object's message
                          * ("deployments.apps \"x\" not found"); "" otherwise */
    const char *reason;  /* Status.reason of a non-2xx answer ("NotFound", "Forbidden", "Conflict"), else "" */
    cJSON      *obj;     /* the parsed JSON body, or NULL (empty or not JSON) */
} k8s_result;

typedef void (*k8s_cb)(const k8s_result *r, void *arg);

typedef struct {
    long timeout_ms; /* whole exchange; 0 → 5000 */
} k8s_opts;

/* A client for auth (copied) on loop. NULL with a message in err on failure (bad PEM data, no curl). */
k8s *k8s_new(uv_loop_t *loop, const k8s_auth *auth, const k8s_opts *opts, char *err, size_t errlen);

/* One request: method "GET", "POST", "PUT", "PATCH", "DELETE"; path from the API root ("/api/v1/namespaces/x/pods?
 * labelSelector=app%3Dy", already escaped); body NULL or JSON text sent with content_type (NULL →
 * "application/json"; PATCH uses "application/merge-patch+json" or "application/strategic-merge-patch+json").
 * Always sends "Accept: application/json". The callback runs exactly once unless k8s_cancel() or k8s_free() comes
 * first, and never from inside k8s_request(): a request that cannot start (a token file that cannot be read and
 * no token to fall back on: HTTPC_E_IO; a path without a leading "/": HTTPC_E_TRANSPORT) fails through it on the
 * next loop turn, with a message naming the file or the path. Returns NULL on OOM (no callback). */
k8s_call *k8s_request(k8s *c, const char *method, const char *path, const char *content_type, const char *body,
                      k8s_cb cb, void *arg);
void k8s_cancel(k8s_call *call);
size_t k8s_pending(const k8s *c);
void k8s_free(k8s *c);

/* The namespace from the auth (owned by the client). */
const char *k8s_namespace(const k8s *c);

/* Percent-escapes s for a path segment or a query value into out. Returns 0, or -1 when out is too small. */
int k8s_escape(const char *s, char *out, size_t outlen);

#endif
