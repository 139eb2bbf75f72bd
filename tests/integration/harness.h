/* harness.h — the integration-test harness: real processes, real loopback sockets.
 *
 * Scenarios start build/iac-devplane and build/iac-agent as child processes (a clean environment: PATH, HOME inside
 * the test's temporary directory, plus what the test sets), talk to them over HTTP on 127.0.0.1 and observe them
 * through the devplane's admin API, the agent's status server and their logs. Everything blocks: a test is one
 * story read top to bottom, and every wait has a deadline so nothing hangs.
 *
 * One `harness` per test (cmocka setup/teardown): it owns a temporary directory (mkdtemp), every child it spawns
 * and their logs. Teardown prints the tail of every log when the test did not reach harness_done() (an assertion
 * failed), stops what is still running with SIGTERM (SIGKILL after 3 s) and fails a test that passed if a process
 * did not exit 0 then — so every scenario also checks both programs' clean shutdown, and under `make check-asan`
 * their leak reports — and removes the directory. Children also die with the test process
 * (PR_SET_PDEATHSIG), and an atexit handler kills any that are left, so a crashed test leaves no process behind.
 *
 * Binaries are found in $IAC_TEST_BUILD (default "build", relative to the repository root the tests run from). */
#ifndef IAC_TEST_HARNESS_H
#define IAC_TEST_HARNESS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#define HARNESS_MAX_PROCS 16
#define HARNESS_MAX_ENV   64
#define HARNESS_PATH_LEN  1024   /* paths the harness keeps; a test's temporary directory is far shorter */
#define HARNESS_TIMEOUT   (-1000) /* harness_wait_exit: the process was still running at the deadline */

typedef struct {
    pid_t   pid;
    char    name[32];
    char    out_path[HARNESS_PATH_LEN]; /* its stdout */
    char    err_path[HARNESS_PATH_LEN]; /* its stderr */
    int64_t started_ms;         /* harness_now_ms() just before fork */
    bool    reaped;
    int     code;               /* once reaped: exit code, or -signal */
} harness_proc;

typedef struct {
    char         dir[256];       /* per-test temporary directory, removed by teardown */
    char         home[512];      /* HOME of every child: dir/home */
    char         build[HARNESS_PATH_LEN];
    harness_proc procs[HARNESS_MAX_PROCS];
    int          nprocs;
    bool         done;           /* set by harness_done(): the test reached its end */
} harness;

/* A NULL-terminated "NAME=value" list that a test edits before spawning. */
typedef struct {
    char *v[HARNESS_MAX_ENV + 1];
    int   n;
} harness_env;

typedef struct {
    harness_proc *proc;          /* NULL until started */
    int           api_port;
    int           cc_port;
    char          pool[64];
    char          token[128];    /* the pool token passed with --token */
    char          ready_file[HARNESS_PATH_LEN];
    int64_t       ready_ms;      /* harness_now_ms() when the ready file appeared */
    const char   *extra_args[8]; /* more flags for the devplane ("--dispatch=pull"), NULL-terminated */
} harness_devplane;

typedef struct {
    harness_proc *proc;
    int           status_port;   /* IAC_AGENT_LISTEN=127.0.0.1:<port> */
    char          data_dir[HARNESS_PATH_LEN];
} harness_agent;

typedef struct {
    long   status;               /* HTTP status, or -1 when the request failed (connection refused, timeout) */
    char  *body;                 /* NUL-terminated, never NULL after harness_http() */
    size_t len;
} harness_resp;

/* cmocka setup/teardown: *state becomes a harness. Teardown fails (-1) only when the test passed but a process it
 * left running did not exit 0 on SIGTERM. */
int harness_setup(void **state);
int harness_teardown(void **state);
/* Marks the test as finished; without it teardown prints the logs' tails. */
void harness_done(harness *h);

int64_t harness_now_ms(void); /* monotonic clock */
/* A port that was free a moment ago on 127.0.0.1 (bind to port 0, read it, close). -1 on error. */
int harness_free_port(void);

void harness_env_set(harness_env *e, const char *name, const char *value); /* replaces an existing entry */
void harness_env_unset(harness_env *e, const char *name);
void harness_env_free(harness_env *e);

/* Starts argv[0] (a path) with env (plus PATH, HOME and sanitizer options from the test's environment when env
 * does not set them); stdout and stderr go to dir/<name>.out and dir/<name>.err (a name used twice gets a suffix).
 * NULL when the binary is missing or the process table is full (a message says why). */
harness_proc *harness_spawn(harness *h, const char *name, char *const argv[], const harness_env *env);
int harness_kill(harness_proc *p, int sig);
/* Waits for the process to exit: its exit code (0..255), -signal when a signal killed it, or HARNESS_TIMEOUT.
 * *elapsed_ms (optional) is the time spent waiting. */
int harness_wait_exit(harness_proc *p, int timeout_ms, int64_t *elapsed_ms);
bool harness_running(harness_proc *p);

/* Polls pred(arg) every 10 ms until it returns true: the elapsed ms, or -1 at the deadline. */
int64_t harness_wait_until(bool (*pred)(void *arg), void *arg, int timeout_ms);

/* Blocking HTTP on loopback (libcurl easy, 3 s limit). bearer and body may be NULL. Returns r->status. */
long harness_http(const char *method, const char *url, const char *bearer, const char *body, harness_resp *r);
void harness_resp_free(harness_resp *r);
/* GET url and parse the body as JSON; NULL unless 200 and valid JSON. */
cJSON *harness_get_json(const char *url);

/* Reads a whole file (NUL-terminated, malloc'ed); NULL when it cannot be read. */
char *harness_read_file(const char *path, size_t *len);
/* Writes a file atomically (temporary file + rename). 0 or -errno. */
int harness_write_file(const char *path, const char *data, size_t len);
bool harness_file_contains(const char *path, const char *needle);
bool harness_file_contains_nocase(const char *path, const char *needle);
int harness_count_lines(const char *path); /* non-empty lines; -1 when unreadable */
int harness_count_substr(const char *path, const char *needle); /* occurrences in the file; -1 when unreadable */

/* The devplane: init picks two free ports, pool "pool-it" and a random token of the right shape without starting
 * anything (so an agent can be pointed at a devplane that is not running yet); start runs it (again: a restart
 * reuses the ports) and waits up to 5 s for its ready file. 0 or -1 (logs printed). */
void harness_devplane_init(harness *h, harness_devplane *dp);
/* A random pool token of the devplane's shape: apt_<pool>_<64 lowercase hex>. */
void harness_make_token(const char *pool, char *out, size_t outlen);
int harness_devplane_start(harness *h, harness_devplane *dp);
void harness_devplane_url(const harness_devplane *dp, const char *path, char *out, size_t outlen);
/* GET /admin/agents: the parsed document {"agents": [...]}, or NULL. */
cJSON *harness_admin_agents(const harness_devplane *dp);
/* The row of agent id in an /admin/agents document; with id NULL, the newest row. NULL when absent. */
const cJSON *harness_agent_row(const cJSON *doc, const char *id);

/* Waiting for an agent to be connected and heartbeating at the devplane: a row matching id (NULL: any) and not
 * not_id (NULL: none excluded), connected, with at least min_heartbeats heartbeats. found_id receives its id. */
typedef struct {
    const harness_devplane *dp;
    const char *id;
    const char *not_id;
    int         min_heartbeats;
    char        found_id[128];
} harness_hb_wait;
bool harness_pred_heartbeat(void *arg);

/* The agent: env fills a harness_env that points the agent at dp (endpoint, ports, token, name "agent-it",
 * data dir dir/data, status server on a free port); the test edits it, then start spawns build/iac-agent. */
void harness_agent_env(harness *h, harness_agent *ag, const harness_devplane *dp, harness_env *env);
harness_proc *harness_agent_start(harness *h, harness_agent *ag, const harness_env *env);
void harness_agent_url(const harness_agent *ag, const char *path, char *out, size_t outlen);
/* GET /v1/status of the agent, parsed; NULL unless 200 and JSON. */
cJSON *harness_agent_status(const harness_agent *ag);

/* The common opening: start a devplane (dp zeroed: initialised here; or already initialised by the caller),
 * start an agent (env NULL: harness_agent_env's defaults; else an env the caller built with harness_agent_env for
 * this ag and dp) and wait up to 5 s for its first heartbeat. Returns ms from the agent's start to that heartbeat
 * being visible at the devplane, or -1; id receives the agent id. */
int64_t harness_start_pair(harness *h, harness_devplane *dp, harness_agent *ag, const harness_env *env, char *id,
                           size_t idlen);

/* Waiting for the agent's own view: /v1/status says connected true, with agent_id id (NULL: any). */
typedef struct {
    const harness_agent *ag;
    const char *id;
} harness_status_wait;
bool harness_pred_agent_connected(void *arg);

/* The path of a binary in the build directory. */
void harness_bin(const harness *h, const char *name, char *out, size_t outlen);
/* Prints the last lines of every child's stdout and stderr (cmocka print_message). */
void harness_dump_logs(const harness *h);

/* assert_string_equal that fails cleanly (instead of crashing) when actual is NULL. Use after <cmocka.h>. */
#define harness_assert_str(actual, expected)                                                              \
    do {                                                                                                  \
        const char *harness_a_ = (actual);                                                                \
        if (!harness_a_) fail_msg("%s is missing (expected \"%s\")", #actual, (expected));                 \
        assert_string_equal(harness_a_, (expected));                                                      \
    } while (0)

/* cJSON accessors that tolerate NULL and wrong types. */
const char *harness_json_str(const cJSON *obj, const char *key);   /* NULL unless a string */
double harness_json_num(const cJSON *obj, const char *key, double def);
bool harness_json_true(const cJSON *obj, const char *key);         /* true only for JSON true */

#endif
