/* iacbench.c — the measuring client of `make bench`: starts the real processes on loopback, drives them and reads
 * what they cost from outside.
 *
 *   iacbench idle     --build DIR --tmp DIR [--secs 60] [--agents 3] [--https-agents 3]        row 1
 *   iacbench start    --build DIR --tmp DIR [--runs 20]                                          row 2
 *   iacbench dispatch --build DIR --tmp DIR [--tasks 200]                                        row 3
 *   iacbench logpath  --build DIR --tmp DIR [--bytes 1073741824] [--repeats 3]                   row 4
 *   iacbench tput     --build DIR --tmp DIR [--tasks 1000] [--workspaces 10] [--repeats 3]        row 6
 *   iacbench heap     --build DIR --tmp DIR --valgrind PATH [--secs 3]       the idle heap by allocation site
 *
 * DIR is the build directory (iac-agent, iac-devplane, fake-terraform, bench/<programs>). Every row starts its own
 * iac-devplane (--port 0, a fixed bench token, log level warn) and its own agents with a fresh data directory, so
 * rows never see each other's state. Nothing is measured inside the agent: figures come from /proc (status,
 * smaps_rollup, smaps, stat, schedstat), from the devplane's admin API (its timestamps are nanoseconds of
 * CLOCK_REALTIME taken when a request or frame is handled), from the agent's /metrics, and from bench/tfstamp (the
 * engine wrapper that stamps its exec). Clocks: every process reads CLOCK_REALTIME on the same machine.
 *
 * Output on stdout, for run.sh to aggregate: "S <key> <value>" is one sample of a figure (run.sh prints median, min
 * and max of all samples of a key), "V <key> <value>" a single fact, "M <mode> <rss_kib> <pss_kib> <anon_kib>
 * <path>" one mapping of an idle agent (smaps summed per file). Progress and errors go to stderr. Exit 1 when a row
 * cannot be measured (a process does not start, a deadline passes); what was printed before stays valid.
 *
 * Children get PR_SET_PDEATHSIG, so nothing outlives this program even when it is killed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "iac/strbuf.h"

/* The devplane's pool token for every row: apt_<pool>_<64 lowercase hex>, as its --token requires. */
#define BENCH_TOKEN "apt_pool-dev_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define BENCH_MAX_AGENTS 16
#define BENCH_PATH 1024
#define BENCH_DIR 512 /* the build and scratch directories: short enough for every path made from them */

/* A workspace with one resource: every plan has one change (a create), like a small real stack. */
static const char bench_workspace[] =
    "{\"name\":\"%s\",\"terraform_version\":\"1.6.6\",\"execution_mode\":\"agent\",\"resources\":["
    "{\"resource_id\":\"r1\",\"resource_type\":\"null_resource\",\"resource_name\":\"a\","
    "\"tf_code\":{\"resource\":{\"null_resource\":{\"a\":{\"triggers\":{\"v\":\"1\"}}}}}}]}";

typedef struct {
    char  build[BENCH_DIR]; /* absolute */
    char  tmp[BENCH_DIR];   /* absolute, ours to fill */
    CURL *http;              /* one keep-alive connection to whoever we talk to */
} bench;

typedef struct {
    pid_t pid;
    int   api, cc;
} devplane;

typedef struct {
    pid_t pid;
    int   status_port;
    char  name[64];
    char  data_dir[BENCH_PATH];
    bool  https;
} agent;

typedef struct { /* a TLS terminator in front of a devplane (bench/tlsproxy.c) */
    pid_t pid;
    int   api, cc;
    char  cert[BENCH_PATH];
} tlsproxy;

/* ---- small helpers ---------------------------------------------------------------------------------------------- */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "iacbench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "iacbench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_us(long us)
{
    struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void rm_rf(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void mkdir_or_die(const char *path)
{
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        die("cannot create %s: %s", path, strerror(errno));
}

/* A loopback port nobody listens on right now (the agent's status server needs a fixed one). */
static int free_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    if (port < 0)
        die("no free loopback port: %s", strerror(errno));
    return port;
}

/* The whole file, NUL-terminated, or NULL. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "re");
    strbuf b = STRBUF_INIT;
    char buf[65536];
    size_t n;
    if (!f)
        return NULL;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        strbuf_append(&b, buf, n);
    fclose(f);
    if (b.oom) {
        strbuf_free(&b);
        return NULL;
    }
    if (!b.data)
        strbuf_puts(&b, "");
    if (len)
        *len = b.len;
    return strbuf_detach(&b, NULL);
}

/* "2026-11-24T05:08:47.393690253Z" → ns since the epoch; -1 when it is not that shape. */
static int64_t rfc3339_ns(const char *s)
{
    struct tm tm;
    char frac[16] = "";
    memset(&tm, 0, sizeof tm);
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                     &tm.tm_sec) != 6)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    const char *dot = strchr(s, '.');
    if (dot)
        sscanf(dot + 1, "%9[0-9]", frac);
    size_t n = strlen(frac);
    while (n < 9)
        frac[n++] = '0';
    frac[9] = '\0';
    return (int64_t)timegm(&tm) * 1000000000 + strtoll(frac, NULL, 10);
}

/* ---- /proc ------------------------------------------------------------------------------------------------------ */

typedef struct {
    long rss, hwm, anon, file, threads;         /* /proc/PID/status, kB */
    long pss, pss_anon, pss_file, priv_clean, priv_dirty; /* /proc/PID/smaps_rollup, kB */
    long long utime, stime, cutime, cstime;     /* /proc/PID/stat, clock ticks */
    long long run_ns, wait_ns, slices;          /* /proc/PID/schedstat */
} proc_sample;

/* "Key:   123 kB" lines of a /proc file, into the fields a table names. */
static void proc_keys(const char *path, const char *const keys[], long *const out[], size_t n)
{
    FILE *f = fopen(path, "re");
    char line[512];
    if (!f)
        return;
    while (fgets(line, sizeof line, f))
        for (size_t i = 0; i < n; i++) {
            size_t k = strlen(keys[i]);
            if (strncmp(line, keys[i], k) == 0 && line[k] == ':')
                *out[i] = strtol(line + k + 1, NULL, 10);
        }
    fclose(f);
}

static int proc_read(pid_t pid, proc_sample *s, bool with_rollup)
{
    char path[64], buf[2048];
    memset(s, 0, sizeof *s);
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    const char *const skeys[] = { "VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads" };
    long *const sout[] = { &s->rss, &s->hwm, &s->anon, &s->file, &s->threads };
    proc_keys(path, skeys, sout, 5);
    if (with_rollup) {
        snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
        const char *const rkeys[] = { "Pss", "Pss_Anon", "Pss_File", "Private_Clean", "Private_Dirty" };
        long *const rout[] = { &s->pss, &s->pss_anon, &s->pss_file, &s->priv_clean, &s->priv_dirty };
        proc_keys(path, rkeys, rout, 5);
    }
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld %lld %lld", &s->utime, &s->stime,
                     &s->cutime, &s->cstime) != 4)
        return -1;
    snprintf(path, sizeof path, "/proc/%d/schedstat", (int)pid);
    f = fopen(path, "re");
    if (!f || fscanf(f, "%lld %lld %lld", &s->run_ns, &s->wait_ns, &s->slices) != 3) {
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    return 0;
}

static long proc_rss(pid_t pid)
{
    char path[64];
    long rss = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    const char *const keys[] = { "VmRSS" };
    long *const out[] = { &rss };
    proc_keys(path, keys, out, 1);
    return rss;
}

/* One "M" line per mapped file (and per anonymous kind: [heap], [stack], [anon]), summed over its mappings. */
static void proc_print_maps(pid_t pid, const char *mode)
{
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%d/smaps", (int)pid);
    FILE *f = fopen(path, "re");
    struct { char name[512]; long rss, pss, anon; } m[256];
    size_t n = 0, cur = SIZE_MAX;
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char name[512] = "";
        long v;
        if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %511s", &lo, &hi, name) >= 2 && strchr(line, '-') == line + strspn(line, "0123456789abcdef")) {
            if (!name[0])
                snprintf(name, sizeof name, "[anon]");
            cur = SIZE_MAX;
            for (size_t i = 0; i < n; i++)
                if (strcmp(m[i].name, name) == 0)
                    cur = i;
            if (cur == SIZE_MAX && n < sizeof m / sizeof m[0]) {
                cur = n++;
                snprintf(m[cur].name, sizeof m[cur].name, "%s", name);
                m[cur].rss = m[cur].pss = m[cur].anon = 0;
            }
        } else if (cur != SIZE_MAX) {
            if (sscanf(line, "Rss: %ld", &v) == 1)
                m[cur].rss += v;
            else if (sscanf(line, "Pss: %ld", &v) == 1)
                m[cur].pss += v;
            else if (sscanf(line, "Anonymous: %ld", &v) == 1)
                m[cur].anon += v;
        }
    }
    fclose(f);
    for (size_t i = 0; i < n; i++)
        if (m[i].rss > 0)
            printf("M %s %ld %ld %ld %s\n", mode, m[i].rss, m[i].pss, m[i].anon, m[i].name);
}

/* ---- processes -------------------------------------------------------------------------------------------------- */

/* NULL-terminated "NAME=value" list. */
typedef struct {
    char *v[64];
    int   n;
} envlist;

static void env_set(envlist *e, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void env_set(envlist *e, const char *name, const char *fmt, ...)
{
    strbuf b = STRBUF_INIT;
    va_list ap;
    strbuf_printf(&b, "%s=", name);
    va_start(ap, fmt);
    strbuf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (b.oom || e->n >= 63)
        die("out of memory");
    size_t k = strlen(name) + 1;
    for (int i = 0; i < e->n; i++)
        if (strncmp(e->v[i], b.data, k) == 0) {
            free(e->v[i]);
            e->v[i] = strbuf_detach(&b, NULL);
            return;
        }
    e->v[e->n++] = strbuf_detach(&b, NULL);
    e->v[e->n] = NULL;
}

static void env_free(envlist *e)
{
    for (int i = 0; i < e->n; i++)
        free(e->v[i]);
    e->n = 0;
    e->v[0] = NULL;
}

static void env_base(const bench *b, envlist *e)
{
    e->n = 0;
    e->v[0] = NULL;
    env_set(e, "PATH", "/usr/local/bin:/usr/bin:/bin");
    env_set(e, "HOME", "%s/home", b->tmp);
}

/* fork + execve, stdout and stderr to files (or /dev/null). *t0 (optional, shared memory) receives the wall clock
 * the child reads just before execve: "process start" for row 2. */
static pid_t spawn(char *const argv[], char *const envp[], const char *out, const char *err, int64_t *t0)
{
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid > 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    setpgid(0, 0);
    int o = open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0600);
    int e = open(err ? err : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0600);
    int in = open("/dev/null", O_RDONLY);
    if (o < 0 || e < 0 || in < 0)
        _exit(126);
    dup2(in, 0);
    dup2(o, 1);
    dup2(e, 2);
    if (t0)
        *t0 = now_ns();
    execve(argv[0], argv, envp);
    _exit(127);
}

/* Waits up to timeout_ms for pid; -1 when it is still running. */
static int wait_exit(pid_t pid, int timeout_ms)
{
    int64_t end = mono_ms() + timeout_ms;
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (r < 0 || mono_ms() > end)
            return -1;
        sleep_us(2000);
    }
}

static void stop(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    if (wait_exit(pid, 5000) < 0) {
        kill(pid, SIGKILL);
        wait_exit(pid, 5000);
    }
}

/* ---- HTTP (libcurl easy; the bench's own client, blocking) ---------------------------------------------------- */

static size_t http_sink(char *p, size_t size, size_t n, void *arg)
{
    strbuf_append(arg, p, size * n);
    return size * n;
}

/* Status code, or -1 when there was no answer. The body (NUL-terminated) goes to *body when given. */
static long http(bench *b, const char *method, const char *url, const char *data, char **body)
{
    strbuf r = STRBUF_INIT;
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    long status = -1;
    curl_easy_reset(b->http);
    curl_easy_setopt(b->http, CURLOPT_URL, url);
    curl_easy_setopt(b->http, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(b->http, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(b->http, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(b->http, CURLOPT_WRITEFUNCTION, http_sink);
    curl_easy_setopt(b->http, CURLOPT_WRITEDATA, (void *)&r);
    curl_easy_setopt(b->http, CURLOPT_HTTPHEADER, h);
    if (data)
        curl_easy_setopt(b->http, CURLOPT_POSTFIELDS, data);
    if (curl_easy_perform(b->http) == CURLE_OK)
        curl_easy_getinfo(b->http, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    if (body) {
        strbuf_putc(&r, '\0');
        *body = r.oom ? NULL : strbuf_detach(&r, NULL);
    } else {
        strbuf_free(&r);
    }
    return status;
}

static cJSON *http_json(bench *b, const char *method, const char *url, const char *data, long want)
{
    char *body = NULL;
    long st = http(b, method, url, data, &body);
    cJSON *doc = st == want && body ? cJSON_Parse(body) : NULL;
    if (!doc)
        die("%s %s → %ld (want %ld): %.300s", method, url, st, want, body ? body : "");
    free(body);
    return doc;
}

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double jnum(const cJSON *o, const char *key, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

/* ---- the devplane and its admin API ---------------------------------------------------------------------------- */

static void devplane_start(const bench *b, devplane *d, const char *tag)
{
    char bin[BENCH_PATH + 32], ready[BENCH_PATH + 64], err[BENCH_PATH + 64], data[BENCH_PATH + 64];
    snprintf(bin, sizeof bin, "%s/iac-devplane", b->build);
    snprintf(ready, sizeof ready, "%s/devplane-%s.json", b->tmp, tag);
    snprintf(err, sizeof err, "%s/devplane-%s.log", b->tmp, tag);
    unlink(err);
    snprintf(data, sizeof data, "%s/devplane-%s", b->tmp, tag);
    mkdir_or_die(data);
    unlink(ready);
    char *argv[] = { bin, "--port", "0", "--ready-file", ready, "--token", BENCH_TOKEN, "--log-level", "warn",
                     "--data-dir", data, NULL };
    envlist e;
    env_base(b, &e);
    d->pid = spawn(argv, e.v, NULL, err, NULL);
    env_free(&e);
    for (int64_t end = mono_ms() + 10000; mono_ms() < end; sleep_us(5000)) {
        char *txt = read_file(ready, NULL);
        cJSON *doc = txt ? cJSON_Parse(txt) : NULL;
        free(txt);
        if (doc) {
            d->api = (int)jnum(doc, "api_port", 0);
            d->cc = (int)jnum(doc, "cc_port", 0);
            cJSON_Delete(doc);
            return;
        }
        if (waitpid(d->pid, NULL, WNOHANG) == d->pid)
            break;
    }
    die("iac-devplane did not start (see %s)", err);
}

static void admin_url(const devplane *d, char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void admin_url(const devplane *d, char *out, size_t len, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(out, len, "http://127.0.0.1:%d", d->api);
    va_start(ap, fmt);
    vsnprintf(out + n, len - (size_t)n, fmt, ap);
    va_end(ap);
}

/* The /admin/agents row of the agent called name (a new document the caller frees, in *doc), or NULL. */
static const cJSON *admin_agent(bench *b, const devplane *d, const char *name, cJSON **doc)
{
    char url[256];
    admin_url(d, url, sizeof url, "/admin/agents");
    *doc = http_json(b, "GET", url, NULL, 200);
    const cJSON *row;
    cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(*doc, "agents")) {
        const char *n = jstr(row, "name");
        if (n && strcmp(n, name) == 0)
            return row;
    }
    return NULL;
}

static void admin_workspace(bench *b, const devplane *d, const char *name, char *id, size_t idlen)
{
    char url[256], body[2048];
    admin_url(d, url, sizeof url, "/admin/workspaces");
    snprintf(body, sizeof body, bench_workspace, name);
    cJSON *doc = http_json(b, "POST", url, body, 201);
    snprintf(id, idlen, "%s", jstr(doc, "workspace_id") ? jstr(doc, "workspace_id") : "");
    cJSON_Delete(doc);
}

static long admin_task(bench *b, const devplane *d, const char *ws)
{
    char url[256];
    admin_url(d, url, sizeof url, "/admin/workspaces/%s/tasks", ws);
    cJSON *doc = http_json(b, "POST", url, "{\"task_type\":\"plan\"}", 201);
    long id = (long)jnum(doc, "task_id", -1);
    cJSON_Delete(doc);
    return id;
}

/* ---- the TLS terminator (row 1, https) ------------------------------------------------------------------------ */

static void tlsproxy_start(const bench *b, const devplane *d, tlsproxy *p)
{
    char bin[BENCH_PATH + 32], ready[BENCH_PATH + 32], err[BENCH_PATH + 32], api[16], cc[16];
    snprintf(bin, sizeof bin, "%s/bench/tlsproxy", b->build);
    snprintf(ready, sizeof ready, "%s/tlsproxy.json", b->tmp);
    snprintf(err, sizeof err, "%s/tlsproxy.log", b->tmp);
    snprintf(p->cert, sizeof p->cert, "%s/tlsproxy-cert.pem", b->tmp);
    snprintf(api, sizeof api, "%d", d->api);
    snprintf(cc, sizeof cc, "%d", d->cc);
    unlink(ready);
    char *argv[] = { bin, api, cc, p->cert, ready, NULL };
    envlist e;
    env_base(b, &e);
    p->pid = spawn(argv, e.v, NULL, err, NULL);
    env_free(&e);
    for (int64_t end = mono_ms() + 10000; mono_ms() < end; sleep_us(5000)) {
        char *txt = read_file(ready, NULL);
        cJSON *doc = txt ? cJSON_Parse(txt) : NULL;
        free(txt);
        if (doc) {
            p->api = (int)jnum(doc, "api_port", 0);
            p->cc = (int)jnum(doc, "cc_port", 0);
            cJSON_Delete(doc);
            return;
        }
        if (waitpid(p->pid, NULL, WNOHANG) == p->pid)
            break;
    }
    die("tlsproxy did not start (see %s)", err);
}

/* ---- agents ----------------------------------------------------------------------------------------------------- */

/* The agent's environment: the devplane (or the TLS proxy in front of it), 4 slots, a fresh data directory. The
 * caller may add variables to *extra before (it is consumed). */
static void agent_start_wrapped(const bench *b, const devplane *d, const tlsproxy *p, agent *a, const char *name,
                                envlist *extra, int64_t *t0, char *const wrap[])
{
    char bin[BENCH_PATH + 32], log[BENCH_PATH + 96];
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%s", name);
    snprintf(a->data_dir, sizeof a->data_dir, "%s/agent-%s", b->tmp, name);
    rm_rf(a->data_dir);
    mkdir_or_die(a->data_dir);
    a->status_port = free_port();
    a->https = p != NULL;
    envlist e;
    env_base(b, &e);
    for (int i = 0; extra && i < extra->n; i++) {
        char *eq = strchr(extra->v[i], '=');
        *eq = '\0';
        env_set(&e, extra->v[i], "%s", eq + 1);
        *eq = '=';
    }
    env_set(&e, "IAC_API_ENDPOINT", "127.0.0.1");
    env_set(&e, "SERVER_PORT", "%d", p ? p->api : d->api);
    env_set(&e, "CC_SERVER_PORT", "%d", p ? p->cc : d->cc);
    env_set(&e, "IAC_AGENT_PROTOCOL", "%s", p ? "https" : "http");
    if (p)
        env_set(&e, "SSL_CERT_FILE", "%s", p->cert);
    env_set(&e, "IAC_AGENT_TOKEN", "%s", BENCH_TOKEN);
    env_set(&e, "IAC_AGENT_NAME", "%s", name);
    env_set(&e, "IAC_AGENT_SLOTS", "4");
    env_set(&e, "IAC_AGENT_DATA_DIR", "%s", a->data_dir);
    env_set(&e, "IAC_AGENT_LISTEN", "127.0.0.1:%d", a->status_port);
    snprintf(bin, sizeof bin, "%s/iac-agent", b->build);
    snprintf(log, sizeof log, "%s/agent-%s.log", b->tmp, name);
    unlink(log);
    char *argv[16];
    int n = 0;
    while (wrap && wrap[n] && n < 14) {
        argv[n] = wrap[n];
        n++;
    }
    argv[n++] = bin;
    argv[n] = NULL;
    a->pid = spawn(argv, e.v, NULL, log, t0);
    env_free(&e);
    if (extra)
        env_free(extra);
}

static void agent_start(const bench *b, const devplane *d, const tlsproxy *p, agent *a, const char *name,
                        envlist *extra, int64_t *t0)
{
    agent_start_wrapped(b, d, p, a, name, extra, t0, NULL);
}

/* Waits until the devplane has counted min heartbeats of the agent; the agent's row (caller frees *doc). */
static const cJSON *agent_wait_heartbeat(bench *b, const devplane *d, const agent *a, int min, int timeout_ms,
                                         cJSON **doc)
{
    for (int64_t end = mono_ms() + timeout_ms;; sleep_us(20000)) {
        const cJSON *row = admin_agent(b, d, a->name, doc);
        if (row && jnum(row, "heartbeats", 0) >= min)
            return row;
        cJSON_Delete(*doc);
        *doc = NULL;
        if (waitpid(a->pid, NULL, WNOHANG) == a->pid)
            die("agent %s exited before its heartbeat (see %s/agent-%s.log)", a->name, b->tmp, a->name);
        if (mono_ms() > end)
            die("no heartbeat from agent %s within %d ms (see %s/agent-%s.log)", a->name, timeout_ms, b->tmp,
                a->name);
    }
}

/* Tasks the agent has finished (iac_agent_tasks_total for success, failed and cancelled; a rejected task goes back
 * to the queue and runs later) from its /metrics; outcome by outcome into *by when given, rejected last. -1 when the
 * agent does not answer. */
static long agent_tasks_done(bench *b, const agent *a, long by[4])
{
    static const char *const outcomes[] = { "success", "failed", "cancelled", "rejected" };
    char url[128], *body = NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", a->status_port);
    if (http(b, "GET", url, NULL, &body) != 200 || !body) {
        free(body);
        return -1;
    }
    long total = 0;
    for (int i = 0; i < 4; i++) {
        char key[96];
        snprintf(key, sizeof key, "iac_agent_tasks_total{outcome=\"%s\"} ", outcomes[i]);
        const char *p = strstr(body, key);
        long v = p ? strtol(p + strlen(key), NULL, 10) : 0;
        if (by)
            by[i] = v;
        if (i < 3)
            total += v;
    }
    free(body);
    return total;
}

static long agent_metric(bench *b, const agent *a, const char *name)
{
    char url[128], *body = NULL, key[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", a->status_port);
    if (http(b, "GET", url, NULL, &body) != 200 || !body) {
        free(body);
        return -1;
    }
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(body, key);
    long v = p ? strtol(p + strlen(key), NULL, 10) : -1;
    free(body);
    return v;
}

/* ---- row 1: idle footprint -------------------------------------------------------------------------------------- */

static void row_idle(bench *b, int secs, int n_http, int n_https)
{
    devplane d;
    tlsproxy p = { 0 };
    agent a[BENCH_MAX_AGENTS];
    int n = n_http + n_https;
    proc_sample s0[BENCH_MAX_AGENTS], s1[BENCH_MAX_AGENTS];

    if (n < 1 || n > BENCH_MAX_AGENTS)
        die("idle: 1 to %d agents in all", BENCH_MAX_AGENTS);
    devplane_start(b, &d, "idle");
    if (n_https)
        tlsproxy_start(b, &d, &p);
    for (int i = 0; i < n; i++) {
        char name[32];
        bool tls = i >= n_http;
        snprintf(name, sizeof name, "idle-%s-%d", tls ? "https" : "http", tls ? i - n_http + 1 : i + 1);
        agent_start(b, &d, tls ? &p : NULL, &a[i], name, NULL, NULL);
    }
    for (int i = 0; i < n; i++) {
        cJSON *doc;
        agent_wait_heartbeat(b, &d, &a[i], 1, 15000, &doc);
        cJSON_Delete(doc);
    }
    sleep_us(1000000); /* past the start-up: registration, first heartbeat and task_request are all done */
    for (int i = 0; i < n; i++)
        if (proc_read(a[i].pid, &s0[i], false) < 0)
            die("cannot read /proc of agent %s", a[i].name);
    note("row 1: %d agent(s) idle for %d s", n, secs);
    int64_t t0 = mono_ms();
    sleep_us((long)secs * 1000000);
    double window_min = (double)(mono_ms() - t0) / 60000.0;
    for (int i = 0; i < n; i++) {
        if (proc_read(a[i].pid, &s1[i], true) < 0)
            die("cannot read /proc of agent %s", a[i].name);
        const char *mode = a[i].https ? "https" : "http";
        const proc_sample *x = &s1[i];
        printf("S idle.%s.rss_kib %ld\nS idle.%s.pss_kib %ld\nS idle.%s.anon_kib %ld\nS idle.%s.file_kib %ld\n"
               "S idle.%s.hwm_kib %ld\nS idle.%s.pss_anon_kib %ld\nS idle.%s.pss_file_kib %ld\n"
               "S idle.%s.uss_kib %ld\nS idle.%s.threads %ld\n",
               mode, x->rss, mode, x->pss, mode, x->anon, mode, x->file, mode, x->hwm, mode, x->pss_anon, mode,
               x->pss_file, mode, x->priv_clean + x->priv_dirty, mode, x->threads);
        printf("S idle.%s.cpu_ms_per_min %.3f\nS idle.%s.wakeups_per_min %.1f\nS idle.%s.cpu_ticks_per_min %.2f\n",
               mode, (double)(x->run_ns - s0[i].run_ns) / 1e6 / window_min, mode,
               (double)(x->slices - s0[i].slices) / window_min, mode,
               (double)(x->utime + x->stime - s0[i].utime - s0[i].stime) / window_min);
    }
    for (int i = 0; i < n; i++) { /* mappings: what every fork() of the agent has to copy */
        char path[64], line[1024];
        long vmas = 0;
        snprintf(path, sizeof path, "/proc/%d/maps", (int)a[i].pid);
        FILE *f = fopen(path, "re");
        while (f && fgets(line, sizeof line, f))
            vmas++;
        if (f)
            fclose(f);
        printf("S idle.%s.mappings %ld\n", a[i].https ? "https" : "http", vmas);
    }
    /* The mapping breakdown of the first agent of each mode. */
    if (n_http)
        proc_print_maps(a[0].pid, "http");
    if (n_https)
        proc_print_maps(a[n_http].pid, "https");
    fflush(stdout);
    for (int i = 0; i < n; i++)
        stop(a[i].pid);
    stop(p.pid);
    stop(d.pid);
}

/* ---- row 2: start to first heartbeat ---------------------------------------------------------------------------- */

/* Wall time of fork → exit of argv (stdout and stderr discarded), µs. */
static double time_exec(char *const argv[], char *const envp[])
{
    int64_t t0 = now_ns();
    pid_t pid = spawn(argv, envp, NULL, NULL, NULL);
    int st;
    while (waitpid(pid, &st, 0) < 0) /* blocking: a polling wait would round the figure up */
        if (errno != EINTR)
            die("waitpid: %s", strerror(errno));
    return (double)(now_ns() - t0) / 1000.0;
}

static void row_start(bench *b, int runs)
{
    devplane d;
    int64_t *t0 = mmap(NULL, sizeof *t0, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (t0 == MAP_FAILED)
        die("mmap: %s", strerror(errno));
    devplane_start(b, &d, "start");
    for (int i = 0; i < runs; i++) {
        agent a;
        char name[32];
        cJSON *doc;
        snprintf(name, sizeof name, "start-%d", i + 1);
        *t0 = 0;
        agent_start(b, &d, NULL, &a, name, NULL, t0);
        sleep_us(150000); /* no polling while the agent starts: the machine has two cores */
        const cJSON *row = agent_wait_heartbeat(b, &d, &a, 1, 10000, &doc);
        int64_t reg = rfc3339_ns(jstr(row, "registered_at")), hb = rfc3339_ns(jstr(row, "last_ping_at"));
        if (jnum(row, "heartbeats", 0) != 1 || reg < 0 || hb < 0 || *t0 <= 0)
            die("start %d: cannot read the first heartbeat's time", i + 1);
        printf("S start.hb_us %.1f\nS start.register_us %.1f\nS start.register_to_hb_us %.1f\n",
               (double)(hb - *t0) / 1000.0, (double)(reg - *t0) / 1000.0, (double)(hb - reg) / 1000.0);
        fflush(stdout);
        char url[256];
        admin_url(&d, url, sizeof url, "/admin/agents/%s", jstr(row, "agent_id"));
        cJSON_Delete(doc);
        stop(a.pid);
        http(b, "DELETE", url, NULL, NULL);
        rm_rf(a.data_dir);
    }
    stop(d.pid);
    /* What the exec alone costs: the agent's dynamic loading (`--version` returns before any set-up) against a
     * program linked with libc only. */
    char agent_bin[BENCH_PATH + 32], libc_bin[BENCH_PATH + 32];
    snprintf(agent_bin, sizeof agent_bin, "%s/iac-agent", b->build);
    snprintf(libc_bin, sizeof libc_bin, "%s/bench/tfstamp", b->build);
    char *av[] = { agent_bin, "--version", NULL }, *lv[] = { libc_bin, NULL };
    envlist e;
    env_base(b, &e);
    for (int i = 0; i < runs; i++)
        printf("S start.exec_agent_version_us %.1f\nS start.exec_libc_only_us %.1f\n", time_exec(av, e.v),
               time_exec(lv, e.v));
    env_free(&e);
    munmap(t0, sizeof *t0);
}

/* ---- tfstamp lines ---------------------------------------------------------------------------------------------- */

typedef struct {
    int64_t start, end;
    long    pid;
    char    cmd[32];
    char    cwd[BENCH_PATH];
} stamp;

#define STAMP_LINE_MAX (BENCH_PATH + 128)

/* Whether line is one of command cmd in a directory ending in /<task> (with end_ns set when want_end); fills *s. */
static bool stamp_match(const char *line, const char *cmd, long task, bool want_end, stamp *s)
{
    char suffix[32];
    stamp x;
    snprintf(suffix, sizeof suffix, "/%ld", task);
    if (sscanf(line, "%" SCNd64 " %" SCNd64 " %ld %31s %1023s", &x.start, &x.end, &x.pid, x.cmd, x.cwd) != 5)
        return false;
    size_t n = strlen(x.cwd), k = strlen(suffix);
    if (strcmp(x.cmd, cmd) != 0 || n < k || strcmp(x.cwd + n - k, suffix) != 0 || (want_end && !x.end))
        return false;
    *s = x;
    return true;
}

/* Finds the first line of the stamp file for command cmd of task (see stamp_match). Returns 1 and fills *s, 0
 * when there is none yet. Reads the whole file: for row 4, which looks every 20 ms during one long task. */
static int stamp_find(const char *path, const char *cmd, long task, bool want_end, stamp *s)
{
    FILE *f = fopen(path, "re");
    char line[STAMP_LINE_MAX];
    int found = 0;
    if (!f)
        return 0;
    while (!found && fgets(line, sizeof line, f))
        found = stamp_match(line, cmd, task, want_end, s);
    fclose(f);
    return found;
}

/* Follows the stamp file as tfstamp appends to it: each line is read once, and between appends the harness waits
 * in the kernel (inotify) instead of polling. Row 3 used to re-read and parse the whole file every 0.5 ms while a
 * task was being dispatched — by the end of a run a file of 600 lines, most of a millisecond of CPU per look, on
 * one of the machine's two cores: time taken from the agent and the devplane being measured, which the baseline
 * (spawnbase reads its stamp once, after the exit) never lost. */
typedef struct {
    int    fd;  /* the stamp file, read on from where the last read ended */
    int    in;  /* inotify instance watching it for appends */
    size_t len; /* bytes in buf: the start of a line not complete yet */
    char   buf[4 * STAMP_LINE_MAX];
} stampwatch;

/* Creates the stamp file at path, empty, and starts following it. */
static void stampwatch_open(stampwatch *w, const char *path)
{
    w->len = 0;
    w->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    w->in = inotify_init1(IN_CLOEXEC);
    if (w->fd < 0 || w->in < 0 || inotify_add_watch(w->in, path, IN_MODIFY) < 0)
        die("cannot follow %s: %s", path, strerror(errno));
}

static void stampwatch_close(stampwatch *w)
{
    close(w->fd);
    close(w->in);
}

/* Waits until a line of command cmd for task (stamp_match) is appended, until deadline (mono_ms). 1 and *s, or 0
 * at the deadline. Lines before it are passed over; lines after it stay for the next call. */
static int stampwatch_next(stampwatch *w, const char *cmd, long task, int64_t deadline, stamp *s)
{
    for (;;) {
        char *nl;
        while ((nl = memchr(w->buf, '\n', w->len))) {
            size_t n = (size_t)(nl - w->buf) + 1;
            *nl = '\0';
            bool hit = stamp_match(w->buf, cmd, task, false, s);
            memmove(w->buf, w->buf + n, w->len - n);
            w->len -= n;
            if (hit)
                return 1;
        }
        ssize_t r = read(w->fd, w->buf + w->len, sizeof w->buf - w->len);
        if (r > 0) {
            w->len += (size_t)r;
            continue;
        }
        if (r < 0 && errno != EINTR)
            die("reading the stamp file: %s", strerror(errno));
        if (w->len == sizeof w->buf)
            die("a stamp line longer than %zu bytes", sizeof w->buf);
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return 0;
        /* An append between the read above and this poll left an event queued: no wake-up is lost. */
        struct pollfd p = { .fd = w->in, .events = POLLIN };
        char events[4096];
        if (poll(&p, 1, (int)left) > 0 && read(w->in, events, sizeof events) < 0 && errno != EINTR)
            die("inotify: %s", strerror(errno));
    }
}

/* ---- row 3: dispatch latency ------------------------------------------------------------------------------------ */

/* What one durable small-file write costs on the data directory's filesystem: write, fsync, rename, fsync of the
 * directory — the pattern of an atomic write that survives a crash, which the agent's dispatch path makes several
 * times. Probed once after each task, so that it is measured under the same load as the tasks. */
static void atomic_write_probe(bench *b)
{
    char dir[BENCH_PATH + 32], tmp[BENCH_PATH + 64], dst[BENCH_PATH + 64];
    char data[512];
    memset(data, 'x', sizeof data);
    snprintf(dir, sizeof dir, "%s/fsync-probe", b->tmp);
    mkdir_or_die(dir);
    snprintf(tmp, sizeof tmp, "%s/.f.tmp", dir);
    snprintf(dst, sizeof dst, "%s/f", dir);
    int64_t t0 = now_ns();
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, data, sizeof data) != (ssize_t)sizeof data || fsync(fd) < 0 || close(fd) < 0 ||
        rename(tmp, dst) < 0)
        die("atomic write probe in %s: %s", dir, strerror(errno));
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) < 0)
        die("directory fsync in %s: %s", dir, strerror(errno));
    close(dfd);
    printf("S dispatch.atomic_write_us %.1f\n", (double)(now_ns() - t0) / 1000.0);
}

static void row_dispatch(bench *b, int tasks)
{
    devplane d;
    agent a;
    envlist x = { .n = 0 };
    char stamps[BENCH_PATH + 32], ws[80];
    snprintf(stamps, sizeof stamps, "%s/dispatch-stamps", b->tmp);
    stampwatch sw;
    stampwatch_open(&sw, stamps);
    devplane_start(b, &d, "dispatch");
    env_set(&x, "IAC_ENGINE_PATH", "%s/bench/tfstamp", b->build);
    env_set(&x, "BENCH_TF_REAL", "%s/fake-terraform", b->build);
    env_set(&x, "BENCH_TF_STAMPS", "%s", stamps);
    agent_start(b, &d, NULL, &a, "dispatch", &x, NULL);
    cJSON *doc;
    agent_wait_heartbeat(b, &d, &a, 1, 15000, &doc);
    cJSON_Delete(doc);
    admin_workspace(b, &d, "bench-dispatch", ws, sizeof ws);
    long done = agent_tasks_done(b, &a, NULL);
    note("row 3: %d plan tasks, one at a time", tasks);
    for (int i = 0; i < tasks; i++) {
        long id = admin_task(b, &d, ws);
        stamp s;
        /* Wait for the engine's stamp without a look at the agent or a poll, so that the agent and the devplane run
         * undisturbed until the engine has started; then wait for the task to end before the next one. */
        int64_t end = mono_ms() + 30000;
        if (!stampwatch_next(&sw, "init", id, end, &s))
            die("task %ld: no engine exec within 30 s (see %s/agent-dispatch.log)", id, b->tmp);
        for (long now = done; now < done + 1; now = agent_tasks_done(b, &a, NULL)) {
            if (mono_ms() > end)
                die("task %ld did not finish within 30 s", id);
            sleep_us(5000);
        }
        done++;
        char url[256];
        admin_url(&d, url, sizeof url, "/admin/tasks/%ld", id);
        cJSON *t = http_json(b, "GET", url, NULL, 200);
        int64_t dispatched = rfc3339_ns(jstr(t, "started_at"));
        const char *st = jstr(t, "status");
        if (dispatched < 0)
            die("task %ld: no started_at", id);
        if (!st || strcmp(st, "success") != 0)
            note("task %ld ended %s", id, st ? st : "?");
        printf("S dispatch.agent_us %.1f\n", (double)(s.start - dispatched) / 1000.0);
        cJSON_Delete(t);
        atomic_write_probe(b);
    }
    fflush(stdout);
    stampwatch_close(&sw);
    stop(a.pid);
    stop(d.pid);
    rm_rf(a.data_dir);
}

/* ---- row 4: log path -------------------------------------------------------------------------------------------- */

/* The baseline: the same engine run (same wrapper, same knobs) printing into `cat > file` through a pipe. */
static double logpath_cat(bench *b, long long lines, const char *stamps)
{
    char dir[BENCH_PATH + 32], out[BENCH_PATH + 32], tf[BENCH_PATH + 32], cat_bin[] = "/bin/cat";
    snprintf(dir, sizeof dir, "%s/logpath-cat", b->tmp);
    snprintf(out, sizeof out, "%s/logpath-cat.out", b->tmp);
    snprintf(tf, sizeof tf, "%s/bench/tfstamp", b->build);
    rm_rf(dir);
    mkdir_or_die(dir);
    unlink(stamps);
    char cfg[BENCH_PATH + 64];
    snprintf(cfg, sizeof cfg, "%s/main.tf.json", dir);
    FILE *f = fopen(cfg, "we");
    if (!f || fputs("{\"resource\":{\"null_resource\":{\"a\":{\"triggers\":{\"v\":\"1\"}}}}}\n", f) < 0 ||
        fclose(f) != 0)
        die("cannot write %s", cfg);
    envlist e;
    env_base(b, &e);
    env_set(&e, "BENCH_TF_REAL", "%s/fake-terraform", b->build);
    env_set(&e, "BENCH_TF_STAMPS", "%s", stamps);
    env_set(&e, "BENCH_TF_WAIT", "1");
    env_set(&e, "FAKE_TF_REQUIRE_INIT", "0");
    env_set(&e, "FAKE_TF_OUTPUT_LINES", "%lld", lines);
    env_set(&e, "FAKE_TF_OUTPUT_LINE_BYTES", "99");
    env_set(&e, "FAKE_TF_OUTPUT_ON", "plan");
    int fds[2];
    if (pipe(fds) < 0)
        die("pipe: %s", strerror(errno));
    pid_t cat = fork();
    if (cat == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (o < 0)
            _exit(126);
        dup2(fds[0], 0);
        dup2(o, 1);
        close(fds[1]);
        char *argv[] = { cat_bin, NULL };
        execve(cat_bin, argv, e.v);
        _exit(127);
    }
    pid_t prod = fork();
    if (prod == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (chdir(dir) < 0)
            _exit(126);
        dup2(fds[1], 1);
        close(fds[0]);
        char *argv[] = { tf, "plan", "-out=plan.out", "-no-color", NULL };
        execve(tf, argv, e.v);
        _exit(127);
    }
    close(fds[0]);
    close(fds[1]);
    env_free(&e);
    if (cat < 0 || prod < 0 || wait_exit(prod, 600000) != 0 || wait_exit(cat, 60000) != 0)
        die("the cat baseline failed");
    f = fopen(stamps, "re");
    int64_t s = 0, en = 0;
    char line[BENCH_PATH + 128];
    while (f && fgets(line, sizeof line, f))
        sscanf(line, "%" SCNd64 " %" SCNd64, &s, &en);
    if (f)
        fclose(f);
    unlink(out);
    rm_rf(dir);
    if (en <= s)
        die("the cat baseline left no stamp");
    return (double)(en - s) / 1e9;
}

static void row_logpath(bench *b, long long bytes, int repeats)
{
    long long lines = bytes / 100; /* 99 bytes and a newline */
    double mb = (double)lines * 100.0 / 1e6;
    char stamps[BENCH_PATH + 32];
    snprintf(stamps, sizeof stamps, "%s/logpath-stamps", b->tmp);
    devplane d;
    devplane_start(b, &d, "logpath");
    note("row 4: %lld lines of 100 bytes (%.0f MB), %d repeat(s)", lines, mb, repeats);
    for (int r = 0; r < repeats; r++) {
        agent a;
        envlist x = { .n = 0 };
        char name[32], ws[80];
        unlink(stamps);
        env_set(&x, "IAC_ENGINE_PATH", "%s/bench/tfstamp", b->build);
        env_set(&x, "BENCH_TF_REAL", "%s/fake-terraform", b->build);
        env_set(&x, "BENCH_TF_STAMPS", "%s", stamps);
        env_set(&x, "BENCH_TF_WAIT", "1");
        env_set(&x, "FAKE_TF_OUTPUT_LINES", "%lld", lines);
        env_set(&x, "FAKE_TF_OUTPUT_LINE_BYTES", "99");
        env_set(&x, "FAKE_TF_OUTPUT_ON", "plan");
        snprintf(name, sizeof name, "logpath-%d", r + 1);
        agent_start(b, &d, NULL, &a, name, &x, NULL);
        cJSON *doc;
        agent_wait_heartbeat(b, &d, &a, 1, 15000, &doc);
        cJSON_Delete(doc);
        sleep_us(200000);
        long rss_idle = proc_rss(a.pid);
        snprintf(name, sizeof name, "bench-log-%d", r + 1);
        admin_workspace(b, &d, name, ws, sizeof ws);
        int64_t t_task = now_ns();
        long id = admin_task(b, &d, ws);
        /* Sample RSS every 20 ms; "during the plan" is between the plan's start and end stamps. */
        long plan_min = -1, plan_max = -1, all_max = 0;
        stamp ps, pe;
        bool started = false, ended = false;
        int64_t end = mono_ms() + 900000, next_poll = 0;
        for (;;) {
            long rss = proc_rss(a.pid);
            if (rss > all_max)
                all_max = rss;
            if (!started)
                started = stamp_find(stamps, "plan", id, false, &ps);
            if (started && !ended) {
                if (plan_min < 0 || rss < plan_min)
                    plan_min = rss;
                if (rss > plan_max)
                    plan_max = rss;
                ended = stamp_find(stamps, "plan", id, true, &pe);
            }
            if (ended && mono_ms() >= next_poll) {
                next_poll = mono_ms() + 250;
                if (agent_tasks_done(b, &a, NULL) >= 1)
                    break;
            }
            if (mono_ms() > end)
                die("row 4: task %ld did not finish within 900 s", id);
            sleep_us(20000);
        }
        int64_t t_done = now_ns();
        proc_sample s;
        proc_read(a.pid, &s, false);
        double secs = (double)(pe.end - pe.start) / 1e9;
        printf("S log.agent_mb_s %.1f\nS log.rss_idle_kib %ld\nS log.rss_plan_min_kib %ld\nS log.rss_plan_max_kib %ld\n"
               "S log.rss_task_max_kib %ld\nS log.hwm_kib %ld\nS log.plan_s %.2f\nS log.after_plan_s %.2f\n"
               "S log.task_s %.2f\n",
               mb / secs, rss_idle, plan_min, plan_max, all_max, s.hwm, secs, (double)(t_done - pe.end) / 1e9,
               (double)(t_done - t_task) / 1e9);
        printf("S log.live_frames_dropped %ld\nS log.agent_cpu_s %.2f\n",
               agent_metric(b, &a, "iac_agent_live_frames_dropped_total"),
               (double)(s.utime + s.stime) / (double)sysconf(_SC_CLK_TCK));
        fflush(stdout);
        stop(a.pid);
        rm_rf(a.data_dir);
        double cat_s = logpath_cat(b, lines, stamps);
        printf("S log.cat_mb_s %.1f\n", mb / cat_s);
        fflush(stdout);
    }
    stop(d.pid);
}

/* ---- row 6: task throughput ------------------------------------------------------------------------------------- */

/* From the agent's own log (millisecond timestamps): how long each task held its slot ("runs in slot" → "finished")
 * and how long a freed slot stayed empty before the plane sent the next task to it. Lines that do not parse are
 * skipped; nothing is printed when the log has none. */
static void tput_slot_times(const char *log)
{
    FILE *f = fopen(log, "re");
    char line[2048];
    struct { long task; int64_t start; } run[64] = { { 0, 0 } };
    int64_t freed[64] = { 0 };
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        char ts[40];
        long task;
        int slot, end = 0; /* %n: sscanf's count says nothing about the literal text after the last conversion */
        if (sscanf(line, "%39s INFO  task: task %ld (plan, workspace %*s runs in slot %d", ts, &task, &slot) == 3 &&
            slot >= 0 && slot < 64) {
            int64_t t = rfc3339_ns(ts);
            if (freed[slot] > 0)
                printf("S tput.slot_idle_ms %.1f\n", (double)(t - freed[slot]) / 1e6);
            run[slot].task = task;
            run[slot].start = t;
            freed[slot] = 0;
        } else if (sscanf(line, "%39s INFO  task: task %ld (plan) finished:%n", ts, &task, &end) == 2 && end > 0) {
            for (slot = 0; slot < 64; slot++)
                if (run[slot].task == task && run[slot].start > 0) {
                    int64_t t = rfc3339_ns(ts);
                    printf("S tput.task_ms %.1f\n", (double)(t - run[slot].start) / 1e6);
                    freed[slot] = t;
                    run[slot].task = 0;
                    break;
                }
        }
    }
    fclose(f);
}

static void row_tput(bench *b, int tasks, int n_ws, int repeats)
{
    note("row 6: %d plan tasks over %d workspaces, one agent with 4 slots, %d repeat(s)", tasks, n_ws, repeats);
    for (int r = 0; r < repeats; r++) {
        devplane d;
        agent a;
        envlist x = { .n = 0 };
        char (*ws)[80] = calloc((size_t)n_ws, sizeof *ws);
        if (!ws)
            die("out of memory");
        devplane_start(b, &d, "tput");
        env_set(&x, "IAC_ENGINE_PATH", "%s/fake-terraform", b->build);
        agent_start(b, &d, NULL, &a, "tput", &x, NULL);
        cJSON *doc;
        agent_wait_heartbeat(b, &d, &a, 1, 15000, &doc);
        cJSON_Delete(doc);
        for (int i = 0; i < n_ws; i++) {
            char name[32];
            snprintf(name, sizeof name, "bench-tput-%d", i + 1);
            admin_workspace(b, &d, name, ws[i], sizeof ws[i]);
        }
        proc_sample a0, a1, d0, d1;
        proc_read(a.pid, &a0, false);
        proc_read(d.pid, &d0, false);
        int64_t t0 = now_ns();
        for (int i = 0; i < tasks; i++)
            admin_task(b, &d, ws[i % n_ws]);
        int64_t created = now_ns();
        long by[4];
        for (int64_t end = mono_ms() + 900000; agent_tasks_done(b, &a, by) < tasks; sleep_us(100000))
            if (mono_ms() > end)
                die("row 6: not all %d tasks finished within 900 s", tasks);
        int64_t t1 = now_ns();
        proc_read(a.pid, &a1, false);
        proc_read(d.pid, &d1, false);
        /* End to end by the devplane's own clock: first task created → last task completed. */
        char url[256];
        admin_url(&d, url, sizeof url, "/admin/tasks");
        cJSON *list = http_json(b, "GET", url, NULL, 200);
        int64_t first = INT64_MAX, last = 0;
        int ok = 0, n = 0;
        const cJSON *t;
        cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(list, "tasks")) {
            int64_t c = rfc3339_ns(jstr(t, "created_at")), e = rfc3339_ns(jstr(t, "completed_at"));
            const char *st = jstr(t, "status");
            n++;
            if (c > 0 && c < first)
                first = c;
            if (e > last)
                last = e;
            if (st && strcmp(st, "success") == 0)
                ok++;
        }
        cJSON_Delete(list);
        double tck = (double)sysconf(_SC_CLK_TCK), wall = (double)(last - first) / 1e9;
        if (n != tasks || last <= first)
            die("row 6: the devplane lists %d tasks (want %d)", n, tasks);
        printf("S tput.tasks_per_s %.1f\nS tput.client_wall_s %.2f\nS tput.create_s %.2f\n", (double)tasks / wall,
               (double)(t1 - t0) / 1e9, (double)(created - t0) / 1e9);
        printf("S tput.rejections %ld\n", by[3]);
        printf("S tput.agent_cpu_ms_per_task %.3f\nS tput.engine_cpu_ms_per_task %.3f\n"
               "S tput.devplane_cpu_ms_per_task %.3f\nS tput.failed %d\n",
               (double)(a1.utime + a1.stime - a0.utime - a0.stime) / tck * 1000.0 / tasks,
               (double)(a1.cutime + a1.cstime - a0.cutime - a0.cstime) / tck * 1000.0 / tasks,
               (double)(d1.utime + d1.stime - d0.utime - d0.stime) / tck * 1000.0 / tasks, tasks - ok);
        fflush(stdout);
        stop(a.pid);
        stop(d.pid);
        char log[BENCH_PATH + 32];
        snprintf(log, sizeof log, "%s/agent-tput.log", b->tmp);
        tput_slot_times(log);
        rm_rf(a.data_dir);
        free(ws);
    }
}

/* ---- the idle heap by allocation site (valgrind massif, optional) ------------------------------------------------ */

/* One agent under massif, idle for secs after its first heartbeat, then SIGTERM. massif's snapshot times are
 * milliseconds since the agent started; run.sh reads the last snapshot before the stop. */
static void row_heap(bench *b, const char *valgrind, int secs)
{
    devplane d;
    agent a;
    char out[BENCH_PATH + 64], vg[BENCH_PATH + 8];
    snprintf(vg, sizeof vg, "%s", valgrind);
    snprintf(out, sizeof out, "--massif-out-file=%s/massif.out", b->tmp);
    char *wrap[] = { vg, "--tool=massif", out, "--time-unit=ms", "--detailed-freq=1", "--max-snapshots=1000",
                     "--threshold=0.5", NULL };
    devplane_start(b, &d, "heap");
    int64_t t0 = mono_ms();
    agent_start_wrapped(b, &d, NULL, &a, "heap", NULL, NULL, wrap);
    cJSON *doc;
    agent_wait_heartbeat(b, &d, &a, 1, 60000, &doc);
    cJSON_Delete(doc);
    sleep_us((long)secs * 1000000);
    printf("V heap.stop_ms %lld\nV heap.massif %s/massif.out\n", (long long)(mono_ms() - t0), b->tmp);
    stop(a.pid);
    stop(d.pid);
    rm_rf(a.data_dir);
}

/* ---- main ------------------------------------------------------------------------------------------------------- */

static const char usage[] =
    "usage: iacbench ROW --build DIR --tmp DIR [options]\n"
    "  idle     [--secs 60] [--agents 3] [--https-agents 3]\n"
    "  start    [--runs 20]\n"
    "  dispatch [--tasks 200]\n"
    "  logpath  [--bytes 1073741824] [--repeats 3]\n"
    "  tput     [--tasks 1000] [--workspaces 10] [--repeats 3]\n"
    "  heap     --valgrind PATH [--secs 3]\n";

int main(int argc, char **argv)
{
    bench b;
    long long opt_bytes = 1LL << 30;
    int secs = 60, agents = 3, https_agents = 3, runs = 20, tasks = -1, repeats = 3, workspaces = 10;
    const char *build = NULL, *tmp = NULL, *valgrind = NULL;

    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    const struct { const char *flag; int *i; long long *ll; const char **s; } flags[] = {
        { "--secs", &secs, NULL, NULL },       { "--agents", &agents, NULL, NULL },
        { "--https-agents", &https_agents, NULL, NULL }, { "--runs", &runs, NULL, NULL },
        { "--tasks", &tasks, NULL, NULL },     { "--repeats", &repeats, NULL, NULL },
        { "--workspaces", &workspaces, NULL, NULL }, { "--bytes", NULL, &opt_bytes, NULL },
        { "--build", NULL, NULL, &build },     { "--tmp", NULL, NULL, &tmp },
        { "--valgrind", NULL, NULL, &valgrind },
    };
    for (int i = 2; i < argc; i += 2) {
        size_t k = 0;
        while (k < sizeof flags / sizeof flags[0] && strcmp(flags[k].flag, argv[i]) != 0)
            k++;
        if (k == sizeof flags / sizeof flags[0] || i + 1 >= argc) {
            fprintf(stderr, "iacbench: unknown flag or missing value: %s\n%s", argv[i], usage);
            return 2;
        }
        if (flags[k].i)
            *flags[k].i = atoi(argv[i + 1]);
        else if (flags[k].ll)
            *flags[k].ll = atoll(argv[i + 1]);
        else
            *flags[k].s = argv[i + 1];
    }
    char real_build[PATH_MAX], real_tmp[PATH_MAX];
    if (!build || !tmp || !realpath(build, real_build) || !realpath(tmp, real_tmp) ||
        strlen(real_build) >= sizeof b.build || strlen(real_tmp) >= sizeof b.tmp) {
        fprintf(stderr, "iacbench: --build and --tmp must name existing directories (paths under %d bytes)\n%s",
                BENCH_DIR, usage);
        return 2;
    }
    memcpy(b.build, real_build, strlen(real_build) + 1);
    memcpy(b.tmp, real_tmp, strlen(real_tmp) + 1);
    char home[BENCH_PATH + 8];
    snprintf(home, sizeof home, "%s/home", b.tmp);
    mkdir_or_die(home);
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    b.http = curl_easy_init();
    if (!b.http)
        die("cannot initialise libcurl");
    const char *row = argv[1];
    if (strcmp(row, "idle") == 0)
        row_idle(&b, secs, agents, https_agents);
    else if (strcmp(row, "start") == 0)
        row_start(&b, runs);
    else if (strcmp(row, "dispatch") == 0)
        row_dispatch(&b, tasks > 0 ? tasks : 200);
    else if (strcmp(row, "logpath") == 0)
        row_logpath(&b, opt_bytes, repeats);
    else if (strcmp(row, "tput") == 0)
        row_tput(&b, tasks > 0 ? tasks : 1000, workspaces, repeats);
    else if (strcmp(row, "heap") == 0 && valgrind)
        row_heap(&b, valgrind, secs == 60 ? 3 : secs);
    else {
        fprintf(stderr, "iacbench: unknown row %s\n%s", row, usage);
        return 2;
    }
    curl_easy_cleanup(b.http);
    curl_global_cleanup();
    return 0;
}
