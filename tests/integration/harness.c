/* harness.c — the integration-test harness (see harness.h).
 *
 * Plain blocking code: fork/execve for children, waitpid polling for exits, libcurl easy for HTTP, cJSON for
 * documents. The one piece of process-wide state is the list of live children (live_pids): an atexit handler must
 * be able to kill them when a test binary ends abnormally, and atexit handlers take no argument. */
#include "harness.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>
#include <curl/curl.h>

#define LOG_TAIL_LINES 25
#define HTTP_TIMEOUT_MS 3000L
#define TEARDOWN_GRACE_MS 3000

/* Every child still running, across harnesses, so that the atexit handler can kill them whenever the test binary
 * exits (cmocka calls exit() on some internal errors). PR_SET_PDEATHSIG covers the process being killed outright. */
static pid_t live_pids[64];
static bool  atexit_installed;

static void live_add(pid_t pid) {
    for (size_t i = 0; i < sizeof live_pids / sizeof live_pids[0]; i++)
        if (live_pids[i] == 0) {
            live_pids[i] = pid;
            return;
        }
}

static void live_remove(pid_t pid) {
    for (size_t i = 0; i < sizeof live_pids / sizeof live_pids[0]; i++)
        if (live_pids[i] == pid) live_pids[i] = 0;
}

static void live_kill_all(void) {
    for (size_t i = 0; i < sizeof live_pids / sizeof live_pids[0]; i++)
        if (live_pids[i] > 0) {
            kill(live_pids[i], SIGKILL);
            waitpid(live_pids[i], NULL, 0);
            live_pids[i] = 0;
        }
}

int64_t harness_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) {
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {}
}

/* ---- setup / teardown ---------------------------------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

int harness_setup(void **state) {
    harness *h = calloc(1, sizeof *h);
    if (!h) return -1;
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp || strlen(tmp) > sizeof h->dir - 32) tmp = "/tmp";
    snprintf(h->dir, sizeof h->dir, "%s/iac-itest-XXXXXX", tmp);
    if (!mkdtemp(h->dir)) {
        print_error("harness: mkdtemp %s: %s\n", h->dir, strerror(errno));
        free(h);
        return -1;
    }
    snprintf(h->home, sizeof h->home, "%s/home", h->dir);
    mkdir(h->home, 0700);
    const char *build = getenv("IAC_TEST_BUILD");
    if (!build || !*build) build = "build";
    char abs[PATH_MAX];
    if (realpath(build, abs)) build = abs;
    size_t blen = strnlen(build, sizeof h->build - 1);
    memcpy(h->build, build, blen); /* a longer path is cut short: spawning then fails with a clear message */
    h->build[blen] = '\0';

    if (!atexit_installed) {
        atexit(live_kill_all);
        curl_global_init(CURL_GLOBAL_DEFAULT);
        atexit(curl_global_cleanup);
        signal(SIGPIPE, SIG_IGN);
        atexit_installed = true;
    }
    *state = h;
    return 0;
}

/* Stops what a test left running: SIGTERM first, so that both programs' clean shutdown (exit 0, and under
 * `make check-asan` no leak or sanitizer report) is checked after every test, then SIGKILL for anything that
 * outlives the grace. Returns the number of processes that did not exit 0. */
static int stop_leftovers(harness *h) {
    int bad = 0;
    for (int i = 0; i < h->nprocs; i++)
        if (!h->procs[i].reaped) kill(h->procs[i].pid, SIGTERM);
    for (int i = 0; i < h->nprocs; i++) {
        harness_proc *p = &h->procs[i];
        if (p->reaped) continue;
        int code = harness_wait_exit(p, TEARDOWN_GRACE_MS, NULL);
        if (code == 0) continue;
        if (code == HARNESS_TIMEOUT) {
            kill(p->pid, SIGKILL);
            harness_wait_exit(p, 2000, NULL);
        }
        print_error("harness: teardown: %s (pid %d) %s after SIGTERM\n", p->name, (int)p->pid,
                    code == HARNESS_TIMEOUT ? "did not exit" : "exited non-zero");
        if (code != HARNESS_TIMEOUT) print_error("harness: teardown: %s exit code %d\n", p->name, code);
        bad++;
    }
    return bad;
}

int harness_teardown(void **state) {
    harness *h = *state;
    if (!h) return 0;
    bool passed = h->done;
    if (!passed) harness_dump_logs(h);
    int bad = stop_leftovers(h);
    if (bad && passed) harness_dump_logs(h);
    const char *keep = getenv("IAC_TEST_KEEP");
    if (keep && *keep)
        print_message("harness: kept %s\n", h->dir);
    else
        nftw(h->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(h);
    *state = NULL;
    return bad && passed ? -1 : 0;
}

void harness_done(harness *h) { h->done = true; }

int harness_free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &alen) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* ---- environment --------------------------------------------------------------------------------------------- */

static int env_find(const harness_env *e, const char *name) {
    size_t n = strlen(name);
    for (int i = 0; i < e->n; i++)
        if (strncmp(e->v[i], name, n) == 0 && e->v[i][n] == '=') return i;
    return -1;
}

void harness_env_set(harness_env *e, const char *name, const char *value) {
    size_t len = strlen(name) + strlen(value) + 2;
    char *s = malloc(len);
    if (!s) return;
    snprintf(s, len, "%s=%s", name, value);
    int i = env_find(e, name);
    if (i >= 0) {
        free(e->v[i]);
        e->v[i] = s;
    } else if (e->n < HARNESS_MAX_ENV) {
        e->v[e->n++] = s;
        e->v[e->n] = NULL;
    } else {
        free(s);
    }
}

void harness_env_unset(harness_env *e, const char *name) {
    int i = env_find(e, name);
    if (i < 0) return;
    free(e->v[i]);
    memmove(&e->v[i], &e->v[i + 1], (size_t)(e->n - i) * sizeof e->v[0]);
    e->n--;
}

void harness_env_free(harness_env *e) {
    for (int i = 0; i < e->n; i++) free(e->v[i]);
    e->n = 0;
    e->v[0] = NULL;
}

/* Variables a child inherits from the test's environment unless the test sets them: what it needs to find
 * programs, and the sanitizer settings of `make check-asan`. */
static const char *const inherited[] = { "PATH", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TMPDIR" };

static void child_env(const harness *h, const harness_env *in, harness_env *out) {
    for (int i = 0; in && i < in->n; i++) {
        char *eq = strchr(in->v[i], '=');
        if (!eq) continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(eq - in->v[i]), in->v[i]);
        harness_env_set(out, name, eq + 1);
    }
    if (env_find(out, "HOME") < 0) harness_env_set(out, "HOME", h->home);
    for (size_t i = 0; i < sizeof inherited / sizeof inherited[0]; i++) {
        const char *v = getenv(inherited[i]);
        if (v && env_find(out, inherited[i]) < 0) harness_env_set(out, inherited[i], v);
    }
    if (env_find(out, "PATH") < 0) harness_env_set(out, "PATH", "/usr/local/bin:/usr/bin:/bin");
}

/* ---- processes ----------------------------------------------------------------------------------------------- */

harness_proc *harness_spawn(harness *h, const char *name, char *const argv[], const harness_env *env) {
    if (h->nprocs >= HARNESS_MAX_PROCS) {
        print_error("harness: too many processes\n");
        return NULL;
    }
    if (access(argv[0], X_OK) != 0) {
        print_error("harness: %s: %s (build it first: make %s)\n", argv[0], strerror(errno), argv[0]);
        return NULL;
    }
    harness_proc *p = &h->procs[h->nprocs];
    memset(p, 0, sizeof *p);
    char base[sizeof p->name];
    snprintf(base, sizeof base, "%.16s", name);
    for (int i = 0; i < h->nprocs; i++) /* a restarted process gets its own logs */
        if (strcmp(h->procs[i].name, base) == 0) snprintf(base, sizeof base, "%.16s.%d", name, h->nprocs);
    snprintf(p->name, sizeof p->name, "%s", base);
    char dir[sizeof h->dir];
    memcpy(dir, h->dir, sizeof dir);
    snprintf(p->out_path, sizeof p->out_path, "%s/%s.out", dir, base);
    snprintf(p->err_path, sizeof p->err_path, "%s/%s.err", dir, base);

    harness_env e = { .n = 0 };
    child_env(h, env, &e);
    int out = open(p->out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int err = open(p->err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0 || err < 0) {
        print_error("harness: cannot create logs in %s: %s\n", h->dir, strerror(errno));
        if (out >= 0) close(out);
        if (err >= 0) close(err);
        harness_env_free(&e);
        return NULL;
    }
    pid_t parent = getpid();
    fflush(stdout);
    fflush(stderr);
    p->started_ms = harness_now_ms();
    pid_t pid = fork();
    if (pid == 0) {
        /* Die with the test process; if it already died, don't run at all. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        signal(SIGPIPE, SIG_DFL);
        dup2(out, STDOUT_FILENO);
        dup2(err, STDERR_FILENO);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, STDIN_FILENO);
        execve(argv[0], argv, e.v);
        dprintf(STDERR_FILENO, "harness: execve %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(out);
    close(err);
    harness_env_free(&e);
    if (pid < 0) {
        print_error("harness: fork: %s\n", strerror(errno));
        return NULL;
    }
    p->pid = pid;
    live_add(pid);
    h->nprocs++;
    return p;
}

int harness_kill(harness_proc *p, int sig) {
    if (!p || p->reaped) return -ESRCH;
    return kill(p->pid, sig) == 0 ? 0 : -errno;
}

static bool reap(harness_proc *p) {
    if (p->reaped) return true;
    int st;
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r != p->pid) return false;
    p->reaped = true;
    p->code = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? -WTERMSIG(st) : -1;
    live_remove(p->pid);
    return true;
}

int harness_wait_exit(harness_proc *p, int timeout_ms, int64_t *elapsed_ms) {
    int64_t t0 = harness_now_ms();
    while (!reap(p) && harness_now_ms() - t0 < timeout_ms) sleep_ms(2);
    if (elapsed_ms) *elapsed_ms = harness_now_ms() - t0;
    return p->reaped ? p->code : HARNESS_TIMEOUT;
}

bool harness_running(harness_proc *p) { return p && !reap(p); }

int64_t harness_wait_until(bool (*pred)(void *arg), void *arg, int timeout_ms) {
    int64_t t0 = harness_now_ms();
    for (;;) {
        if (pred(arg)) return harness_now_ms() - t0;
        if (harness_now_ms() - t0 >= timeout_ms) return -1;
        sleep_ms(10);
    }
}

/* ---- HTTP ---------------------------------------------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t n, void *arg) {
    harness_resp *r = arg;
    size_t add = size * n;
    char *b = realloc(r->body, r->len + add + 1);
    if (!b) return 0;
    memcpy(b + r->len, data, add);
    r->len += add;
    b[r->len] = '\0';
    r->body = b;
    return add;
}

long harness_http(const char *method, const char *url, const char *bearer, const char *body, harness_resp *r) {
    memset(r, 0, sizeof *r);
    r->status = -1;
    CURL *c = curl_easy_init();
    if (!c) goto out;
    struct curl_slist *hdrs = NULL;
    char auth[512];
    if (bearer) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", bearer);
        hdrs = curl_slist_append(hdrs, auth);
    }
    if (body) hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    hdrs = curl_slist_append(hdrs, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L); /* a test's path goes out as written, ".." segments included */
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, HTTP_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    if (strcmp(method, "HEAD") == 0) curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
    }
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
out:
    if (!r->body) r->body = calloc(1, 1);
    return r->status;
}

void harness_resp_free(harness_resp *r) {
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

cJSON *harness_get_json(const char *url) {
    harness_resp r;
    cJSON *doc = NULL;
    if (harness_http("GET", url, NULL, NULL, &r) == 200) doc = cJSON_Parse(r.body);
    harness_resp_free(&r);
    return doc;
}

/* ---- files --------------------------------------------------------------------------------------------------- */

char *harness_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0, got;
    char *buf = malloc(cap + 1);
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf) return NULL;
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

int harness_write_file(const char *path, const char *data, size_t len) {
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp-%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -errno;
    ssize_t w = write(fd, data, len);
    int rc = (w == (ssize_t)len) ? 0 : -EIO;
    if (fsync(fd) != 0 && rc == 0) rc = -errno;
    close(fd);
    if (rc == 0 && rename(tmp, path) != 0) rc = -errno;
    if (rc != 0) unlink(tmp);
    return rc;
}

bool harness_file_contains(const char *path, const char *needle) {
    char *s = harness_read_file(path, NULL);
    bool found = s && strstr(s, needle);
    free(s);
    return found;
}

bool harness_file_contains_nocase(const char *path, const char *needle) {
    char *s = harness_read_file(path, NULL);
    bool found = s && strcasestr(s, needle);
    free(s);
    return found;
}

int harness_count_lines(const char *path) {
    char *s = harness_read_file(path, NULL);
    if (!s) return -1;
    int n = 0;
    for (char *line = s, *end; *line; line = end) {
        end = strchrnul(line, '\n');
        for (char *c = line; c < end; c++)
            if (!isspace((unsigned char)*c)) {
                n++;
                break;
            }
        if (*end) end++;
    }
    free(s);
    return n;
}

static void print_tail(const char *label, const char *path) {
    size_t len = 0;
    char *s = harness_read_file(path, &len);
    if (!s || len == 0) {
        free(s);
        return;
    }
    /* Back from the end (ignoring the final newline) to the start of the last LOG_TAIL_LINES lines. */
    const char *start = s + len;
    if (start[-1] == '\n') start--;
    for (int lines = 0; start > s; start--)
        if (start[-1] == '\n' && ++lines == LOG_TAIL_LINES) break;
    print_message("---- %s (%s, last %d lines)\n%s%s", label, path, LOG_TAIL_LINES, start,
                  s[len - 1] == '\n' ? "" : "\n");
    free(s);
}

void harness_dump_logs(const harness *h) {
    for (int i = 0; i < h->nprocs; i++) {
        const harness_proc *p = &h->procs[i];
        char label[64];
        snprintf(label, sizeof label, "%s pid %d %s stdout", p->name, (int)p->pid, p->reaped ? "exited" : "running");
        print_tail(label, p->out_path);
        snprintf(label, sizeof label, "%s pid %d stderr", p->name, (int)p->pid);
        print_tail(label, p->err_path);
    }
    fflush(stdout); /* cmocka reports on stderr: keep the two in order */
}

void harness_bin(const harness *h, const char *name, char *out, size_t outlen) {
    snprintf(out, outlen, "%s/%s", h->build, name);
}

/* ---- JSON ---------------------------------------------------------------------------------------------------- */

const char *harness_json_str(const cJSON *obj, const char *key) {
    const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

double harness_json_num(const cJSON *obj, const char *key, double def) {
    const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

bool harness_json_true(const cJSON *obj, const char *key) {
    const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    return cJSON_IsTrue(v);
}

/* ---- devplane ------------------------------------------------------------------------------------------------ */

void harness_make_token(const char *pool, char *out, size_t outlen) {
    unsigned char rnd[32] = { 0 };
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, rnd, sizeof rnd) != (ssize_t)sizeof rnd)
        for (size_t i = 0; i < sizeof rnd; i++) rnd[i] = (unsigned char)(rand() ^ (int)i);
    if (fd >= 0) close(fd);
    size_t n = (size_t)snprintf(out, outlen, "apt_%s_", pool);
    for (size_t i = 0; i < sizeof rnd && n + 2 < outlen; i++) n += (size_t)snprintf(out + n, outlen - n, "%02x", rnd[i]);
}

void harness_devplane_init(harness *h, harness_devplane *dp) {
    memset(dp, 0, sizeof *dp);
    dp->api_port = harness_free_port();
    do dp->cc_port = harness_free_port();
    while (dp->cc_port == dp->api_port);
    snprintf(dp->pool, sizeof dp->pool, "pool-it");
    harness_make_token(dp->pool, dp->token, sizeof dp->token);
    snprintf(dp->ready_file, sizeof dp->ready_file, "%s/devplane-ready.json", h->dir);
}

static bool ready_file_written(void *arg) {
    harness_devplane *dp = arg;
    char *s = harness_read_file(dp->ready_file, NULL);
    cJSON *doc = s ? cJSON_Parse(s) : NULL;
    bool ok = doc && harness_json_num(doc, "api_port", -1) == dp->api_port &&
              harness_json_num(doc, "cc_port", -1) == dp->cc_port &&
              harness_json_num(doc, "pid", -1) == dp->proc->pid;
    cJSON_Delete(doc);
    free(s);
    return ok || !harness_running(dp->proc);
}

int harness_devplane_start(harness *h, harness_devplane *dp) {
    char bin[PATH_MAX];
    harness_bin(h, "iac-devplane", bin, sizeof bin);
    char port[32], cc[32], pool[96], token[160], ready[PATH_MAX + 16];
    snprintf(port, sizeof port, "--port=%d", dp->api_port);
    snprintf(cc, sizeof cc, "--cc-port=%d", dp->cc_port);
    snprintf(pool, sizeof pool, "--pool=%s", dp->pool);
    snprintf(token, sizeof token, "--token=%s", dp->token);
    snprintf(ready, sizeof ready, "--ready-file=%s", dp->ready_file);
    char *argv[8 + 8 + 1] = { bin, "--listen=127.0.0.1", port, cc, pool, token, ready, "--log-level=debug" };
    int argc = 8;
    for (int i = 0; i < 8 && dp->extra_args[i]; i++)
        argv[argc++] = (char *)dp->extra_args[i];
    argv[argc] = NULL;
    unlink(dp->ready_file);
    dp->proc = harness_spawn(h, "devplane", argv, NULL);
    if (!dp->proc) return -1;
    int64_t waited = harness_wait_until(ready_file_written, dp, 5000);
    if (waited < 0 || !harness_running(dp->proc)) {
        print_error("harness: devplane not ready after %lld ms (%s)\n", (long long)waited,
                    harness_running(dp->proc) ? "still running" : "exited");
        return -1;
    }
    dp->ready_ms = harness_now_ms();
    return 0;
}

void harness_devplane_url(const harness_devplane *dp, const char *path, char *out, size_t outlen) {
    snprintf(out, outlen, "http://127.0.0.1:%d%s", dp->api_port, path);
}

cJSON *harness_admin_agents(const harness_devplane *dp) {
    char url[256];
    harness_devplane_url(dp, "/admin/agents", url, sizeof url);
    cJSON *doc = harness_get_json(url);
    if (doc && !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(doc, "agents"))) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}

const cJSON *harness_agent_row(const cJSON *doc, const char *id) {
    const cJSON *agents = doc ? cJSON_GetObjectItemCaseSensitive(doc, "agents") : NULL;
    const cJSON *row, *last = NULL;
    cJSON_ArrayForEach(row, agents) {
        const char *rid = harness_json_str(row, "agent_id");
        if (id && rid && strcmp(rid, id) == 0) return row;
        last = row;
    }
    return id ? NULL : last;
}

bool harness_pred_heartbeat(void *arg) {
    harness_hb_wait *w = arg;
    cJSON *doc = harness_admin_agents(w->dp);
    const cJSON *agents = doc ? cJSON_GetObjectItemCaseSensitive(doc, "agents") : NULL, *row;
    bool ok = false;
    cJSON_ArrayForEach(row, agents) {
        const char *rid = harness_json_str(row, "agent_id");
        if (!rid || (w->id && strcmp(rid, w->id) != 0) || (w->not_id && strcmp(rid, w->not_id) == 0)) continue;
        if (harness_json_true(row, "connected") && harness_json_num(row, "heartbeats", 0) >= w->min_heartbeats &&
            cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(row, "last_heartbeat"))) {
            snprintf(w->found_id, sizeof w->found_id, "%s", rid);
            ok = true;
            break;
        }
    }
    cJSON_Delete(doc);
    return ok;
}

/* ---- agent --------------------------------------------------------------------------------------------------- */

void harness_agent_env(harness *h, harness_agent *ag, const harness_devplane *dp, harness_env *env) {
    char v[PATH_MAX];
    memset(ag, 0, sizeof *ag);
    ag->status_port = harness_free_port();
    snprintf(ag->data_dir, sizeof ag->data_dir, "%s/data", h->dir);
    mkdir(ag->data_dir, 0700);
    harness_env_set(env, "IAC_API_ENDPOINT", "127.0.0.1");
    snprintf(v, sizeof v, "%d", dp->api_port);
    harness_env_set(env, "SERVER_PORT", v);
    snprintf(v, sizeof v, "%d", dp->cc_port);
    harness_env_set(env, "CC_SERVER_PORT", v);
    harness_env_set(env, "IAC_AGENT_TOKEN", dp->token);
    harness_env_set(env, "IAC_AGENT_NAME", "agent-it");
    harness_env_set(env, "IAC_AGENT_PROTOCOL", "http");
    harness_env_set(env, "IAC_AGENT_DATA_DIR", ag->data_dir);
    snprintf(v, sizeof v, "127.0.0.1:%d", ag->status_port);
    harness_env_set(env, "IAC_AGENT_LISTEN", v);
    harness_env_set(env, "IAC_AGENT_LOG_LEVEL", "debug");
}

harness_proc *harness_agent_start(harness *h, harness_agent *ag, const harness_env *env) {
    char bin[PATH_MAX];
    harness_bin(h, "iac-agent", bin, sizeof bin);
    char *argv[] = { bin, NULL };
    ag->proc = harness_spawn(h, "agent", argv, env);
    return ag->proc;
}

void harness_agent_url(const harness_agent *ag, const char *path, char *out, size_t outlen) {
    snprintf(out, outlen, "http://127.0.0.1:%d%s", ag->status_port, path);
}

cJSON *harness_agent_status(const harness_agent *ag) {
    char url[256];
    harness_agent_url(ag, "/v1/status", url, sizeof url);
    return harness_get_json(url);
}

int64_t harness_start_pair(harness *h, harness_devplane *dp, harness_agent *ag, const harness_env *env, char *id,
                           size_t idlen) {
    harness_env def = { .n = 0 };
    if (dp->api_port == 0) harness_devplane_init(h, dp);
    if (!harness_running(dp->proc) && harness_devplane_start(h, dp) != 0) return -1;
    if (!env) {
        harness_agent_env(h, ag, dp, &def);
        env = &def;
    }
    harness_proc *p = harness_agent_start(h, ag, env);
    harness_env_free(&def);
    if (!p) return -1;
    harness_hb_wait w = { .dp = dp, .min_heartbeats = 1 };
    if (harness_wait_until(harness_pred_heartbeat, &w, 5000) < 0) {
        print_error("harness: no heartbeat from the agent within 5 s\n");
        return -1;
    }
    if (id) snprintf(id, idlen, "%s", w.found_id);
    return harness_now_ms() - p->started_ms;
}

bool harness_pred_agent_connected(void *arg) {
    harness_status_wait *w = arg;
    cJSON *st = harness_agent_status(w->ag);
    const char *id = harness_json_str(st, "agent_id");
    bool ok = harness_json_true(st, "connected") && (!w->id || (id && strcmp(id, w->id) == 0));
    cJSON_Delete(st);
    return ok;
}

int harness_count_substr(const char *path, const char *needle) {
    char *text = harness_read_file(path, NULL);
    if (!text) return -1;
    int n = 0;
    size_t len = strlen(needle);
    for (const char *p = text; len && (p = strstr(p, needle)); p += len) n++;
    free(text);
    return n;
}
