/* test_fake_terraform.c — the built fake-terraform behaves like terraform for what the agent runs.
 *
 * Each test runs $IAC_TEST_BUILD/fake-terraform (default build/) as a child process in its own mkdtemp work
 * directory, with a clean FAKE_TF_* / TF_* environment plus what the test sets, stdin a pipe nobody ever writes
 * (a fake that read stdin would hang until the deadline and fail), stdout and stderr captured. The story of the
 * agent is played through: init → plan -out → show -json → apply → state → plan again, with the knobs the
 * integration tests rely on (transient init failures, hard failures, output volume, SIGINT). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

extern char **environ;

#define RUN_DEADLINE_MS 20000
#define MAX_ENV 256

typedef struct {
    char dir[64];
    char bin[PATH_MAX];
} fixture;

typedef struct {
    int    code;      /* exit status, or 128 + signal */
    char  *out, *err; /* NUL-terminated */
    size_t out_len, err_len;
    long   ms;        /* how long the run took */
} run_result;

/* Optional: when stdout first contains marker, send sig `times` times (50 ms apart). */
typedef struct {
    const char *marker;
    int         sig;
    int         times;
} run_signal;

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    const char *build = getenv("IAC_TEST_BUILD");
    char rel[PATH_MAX];
    snprintf(rel, sizeof rel, "%s/fake-terraform", build && *build ? build : "build");
    if (!realpath(rel, f->bin)) {
        fprintf(stderr, "test_fake_terraform: %s not found (run `make all` first)\n", rel);
        free(f);
        return -1;
    }
    strcpy(f->dir, "/tmp/iac-test-faketf-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    int r = system(cmd);
    free(f);
    return r == 0 ? 0 : -1;
}

static void append(char **buf, size_t *len, const char *data, size_t n)
{
    char *nb = realloc(*buf, *len + n + 1);
    assert_non_null(nb);
    memcpy(nb + *len, data, n);
    *len += n;
    nb[*len] = '\0';
    *buf = nb;
}

/* Runs the fake with args (NULL-terminated) in the fixture's directory, environment = ours without FAKE_TF_* and
 * TF_* plus env (NULL-terminated "K=V"). */
static void run_sig(const fixture *f, const char *const *env, const char *const *args, const run_signal *sig,
                    run_result *r)
{
    memset(r, 0, sizeof *r);
    r->out = calloc(1, 1);
    r->err = calloc(1, 1);
    assert_non_null(r->out);
    assert_non_null(r->err);
    int in[2], out[2], err[2];
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(out), 0);
    assert_int_equal(pipe(err), 0);
    char *envp[MAX_ENV + 1];
    int n = 0;
    for (char **e = environ; *e && n < MAX_ENV - 32; e++)
        if (strncmp(*e, "FAKE_TF_", 8) != 0 && strncmp(*e, "TF_", 3) != 0)
            envp[n++] = *e;
    for (int i = 0; env && env[i] && n < MAX_ENV; i++)
        envp[n++] = (char *)env[i];
    envp[n] = NULL;
    char *argv[64];
    int a = 0;
    argv[a++] = (char *)f->bin;
    for (int i = 0; args[i] && a < 63; i++)
        argv[a++] = (char *)args[i];
    argv[a] = NULL;

    long start = now_ms();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (chdir(f->dir) < 0)
            _exit(126);
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        close(in[0]), close(in[1]), close(out[0]), close(out[1]), close(err[0]), close(err[1]);
        execve(argv[0], argv, envp);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    struct pollfd p[2] = { { .fd = out[0], .events = POLLIN }, { .fd = err[0], .events = POLLIN } };
    int open_fds = 2, sent = 0;
    char buf[65536];
    while (open_fds > 0) {
        long left = RUN_DEADLINE_MS - (now_ms() - start);
        if (left <= 0) {
            kill(pid, SIGKILL);
            fail_msg("fake-terraform %s did not finish within %d ms", args[0], RUN_DEADLINE_MS);
        }
        int pr = poll(p, 2, sig && sent > 0 && sent < sig->times ? 50 : (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (sig && sent > 0 && sent < sig->times) {
            kill(pid, sig->sig);
            sent++;
        }
        for (int i = 0; i < 2; i++) {
            if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t got = read(p[i].fd, buf, sizeof buf);
            if (got <= 0) {
                close(p[i].fd);
                p[i].fd = -1;
                open_fds--;
                continue;
            }
            if (i == 0)
                append(&r->out, &r->out_len, buf, (size_t)got);
            else
                append(&r->err, &r->err_len, buf, (size_t)got);
        }
        if (sig && sent == 0 && strstr(r->out, sig->marker)) {
            kill(pid, sig->sig);
            sent++;
        }
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    close(in[1]);
    r->ms = now_ms() - start;
    r->code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void run(const fixture *f, const char *const *env, const char *const *args, run_result *r)
{
    run_sig(f, env, args, NULL, r);
}

static void result_free(run_result *r)
{
    free(r->out);
    free(r->err);
}

static void write_file(const fixture *f, const char *name, const char *text)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", f->dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

/* The whole file, NUL-terminated; NULL when missing. */
static char *read_file(const fixture *f, const char *name, size_t *len)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", f->dir, name);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    char *data = NULL;
    size_t n = 0, got;
    char buf[65536];
    while ((got = fread(buf, 1, sizeof buf, fp)) > 0)
        append(&data, &n, buf, got);
    fclose(fp);
    if (!data)
        data = calloc(1, 1);
    if (len)
        *len = n;
    return data;
}

static bool exists(const fixture *f, const char *name)
{
    char path[PATH_MAX];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", f->dir, name);
    return stat(path, &sb) == 0;
}

static cJSON *read_json(const fixture *f, const char *name)
{
    char *text = read_file(f, name, NULL);
    assert_non_null(text);
    cJSON *v = cJSON_Parse(text);
    free(text);
    assert_non_null(v);
    return v;
}

/* Runs a command that must succeed. */
static void ok(const fixture *f, const char *const *env, const char *const *args)
{
    run_result r;
    run(f, env, args, &r);
    if (r.code != 0)
        fail_msg("%s exited %d\nstdout:\n%s\nstderr:\n%s", args[0], r.code, r.out, r.err);
    result_free(&r);
}

/* The action list of address in a plan JSON, joined with "," ("" when absent). */
static const char *actions_of(const cJSON *plan, const char *address)
{
    static char out[64];
    out[0] = '\0';
    const cJSON *rc = cJSON_GetObjectItemCaseSensitive(plan, "resource_changes");
    for (const cJSON *c = rc ? rc->child : NULL; c; c = c->next) {
        if (strcmp(cJSON_GetObjectItemCaseSensitive(c, "address")->valuestring, address) != 0)
            continue;
        const cJSON *acts = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c, "change"), "actions");
        for (const cJSON *a = acts->child; a; a = a->next) {
            if (out[0])
                strcat(out, ",");
            strncat(out, a->valuestring, sizeof out - strlen(out) - 1);
        }
    }
    return out;
}

/* show -json of a plan file, parsed; asserts stdout holds nothing but the JSON. */
static cJSON *show_json(const fixture *f, const char *planfile)
{
    run_result r;
    const char *args[] = { "show", "-json", planfile, NULL };
    run(f, NULL, args, &r);
    assert_int_equal(r.code, 0);
    assert_int_equal(r.err_len, 0);
    assert_true(r.out_len > 0 && r.out[r.out_len - 1] == '\n');
    assert_null(memchr(r.out, '\n', r.out_len - 1)); /* one line */
    cJSON *v = cJSON_Parse(r.out);
    assert_non_null(v);
    result_free(&r);
    return v;
}

static int state_resource_count(const fixture *f)
{
    cJSON *st = read_json(f, "terraform.tfstate");
    int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(st, "resources"));
    cJSON_Delete(st);
    return n;
}

static const char *const init_args[] = { "init", "-no-color", "-input=false", NULL };
static const char *const plan_args[] = { "plan", "-out=plan.out", "-no-color", "-var-file=variables.tfvars", NULL };
static const char *const apply_args[] = { "apply", "-no-color", "-auto-approve", "plan.out", NULL };

static const char config_two[] =
    "{\"resource\": {\"null_resource\": {\"a\": {\"triggers\": {\"x\": \"1\"}},"
    " \"b\": {\"triggers\": {\"name\": \"${var.name}\"}}}}}";

/* A work directory as the agent renders it: main.tf.json, variables.tf.json, variables.tfvars, then init. */
static void prepare(const fixture *f, const char *config)
{
    write_file(f, "main.tf.json", config);
    write_file(f, "variables.tf.json", "{\"variable\": {\"name\": {\"type\": \"string\"}}}");
    write_file(f, "variables.tfvars", "name = \"hello\"\n");
    ok(f, NULL, init_args);
}

/* `version` prints terraform's two lines, and -json its JSON. */
static void version_reports_terraform_1_6_6(void **state)
{
    fixture *f = *state;
    run_result r;
    const char *args[] = { "version", NULL };
    run(f, NULL, args, &r);
    assert_int_equal(r.code, 0);
    assert_string_equal(r.out, "Terraform v1.6.6\non linux_amd64\n");
    result_free(&r);
    const char *jargs[] = { "version", "-json", NULL };
    run(f, NULL, jargs, &r);
    cJSON *v = cJSON_Parse(r.out);
    assert_non_null(v);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(v, "terraform_version")->valuestring, "1.6.6");
    cJSON_Delete(v);
    result_free(&r);
}

/* An unknown command or flag is a terraform-like error on stderr with exit status 1. */
static void unknown_command_and_flag_fail_like_terraform(void **state)
{
    fixture *f = *state;
    run_result r;
    const char *args[] = { "frobnicate", NULL };
    run(f, NULL, args, &r);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "Terraform has no command named \"frobnicate\"."));
    result_free(&r);
    const char *fargs[] = { "plan", "-no-color", "-bogus", NULL };
    run(f, NULL, fargs, &r);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "Error: Failed to parse command-line flags"));
    assert_non_null(strstr(r.err, "flag provided but not defined: -bogus"));
    result_free(&r);
}

/* Plan refuses an uninitialised directory; init then creates .terraform/ and a lock file for hashicorp/null. */
static void init_creates_dot_terraform_and_lock_file(void **state)
{
    fixture *f = *state;
    write_file(f, "main.tf.json", config_two);
    write_file(f, "variables.tf.json", "{\"variable\": {\"name\": {\"type\": \"string\"}}}");
    write_file(f, "variables.tfvars", "name = \"hello\"\n");
    run_result r;
    run(f, NULL, plan_args, &r);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "terraform init"));
    result_free(&r);

    run(f, NULL, init_args, &r);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "Initializing the backend..."));
    assert_non_null(strstr(r.out, "Initializing provider plugins..."));
    assert_non_null(strstr(r.out, "Terraform has been successfully initialized!"));
    result_free(&r);
    assert_true(exists(f, ".terraform"));
    char *lock = read_file(f, ".terraform.lock.hcl", NULL);
    assert_non_null(lock);
    assert_non_null(strstr(lock, "provider \"registry.terraform.io/hashicorp/null\" {"));
    assert_non_null(strstr(lock, "version = \"3.2.2\""));
    free(lock);
}

/* plan (deterministic file) → show -json ["create"] → apply (progress lines, state v4 serial 1) → plan ["no-op"]. */
static void plan_show_apply_cycle(void **state)
{
    fixture *f = *state;
    prepare(f, config_two);
    run_result r;
    run(f, NULL, plan_args, &r);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "  # null_resource.a will be created\n"));
    assert_non_null(strstr(r.out, "Plan: 2 to add, 0 to change, 0 to destroy.\n"));
    assert_non_null(strstr(r.out, "Saved the plan to: plan.out"));
    result_free(&r);
    size_t len1, len2;
    char *p1 = read_file(f, "plan.out", &len1);
    assert_non_null(p1);
    ok(f, NULL, plan_args);
    char *p2 = read_file(f, "plan.out", &len2);
    assert_int_equal(len1, len2);
    assert_memory_equal(p1, p2, len1);
    free(p1);
    free(p2);

    cJSON *plan = show_json(f, "plan.out");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(plan, "format_version")->valuestring, "1.2");
    assert_string_equal(actions_of(plan, "null_resource.a"), "create");
    assert_string_equal(actions_of(plan, "null_resource.b"), "create");
    const cJSON *b = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(plan, "resource_changes"), 1);
    const cJSON *after = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(b, "change"), "after");
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(after, "triggers"), "name")->valuestring,
        "hello"); /* the variable was substituted */
    cJSON_Delete(plan);

    run(f, NULL, apply_args, &r);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "null_resource.a: Creating...\n"));
    assert_non_null(strstr(r.out, "null_resource.a: Creation complete after 0s [id="));
    assert_non_null(strstr(r.out, "Apply complete! Resources: 2 added, 0 changed, 0 destroyed.\n"));
    result_free(&r);
    cJSON *st = read_json(f, "terraform.tfstate");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(st, "version")->valueint, 4);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(st, "serial")->valueint, 1);
    assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(st, "lineage")));
    const cJSON *res0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(st, "resources"), 0);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(res0, "provider")->valuestring,
                        "provider[\"registry.terraform.io/hashicorp/null\"]");
    cJSON_Delete(st);

    run(f, NULL, plan_args, &r);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "null_resource.a: Refreshing state... [id="));
    assert_non_null(strstr(r.out, "No changes. Your infrastructure matches the configuration."));
    result_free(&r);
    plan = show_json(f, "plan.out");
    assert_string_equal(actions_of(plan, "null_resource.a"), "no-op");
    assert_string_equal(actions_of(plan, "null_resource.b"), "no-op");
    cJSON_Delete(plan);
}

/* Changed/removed/new resources plan update/delete/create; apply keeps the lineage and bumps the serial. */
static void changes_plan_update_delete_create(void **state)
{
    fixture *f = *state;
    prepare(f, config_two);
    ok(f, NULL, plan_args);
    ok(f, NULL, apply_args);
    cJSON *st1 = read_json(f, "terraform.tfstate");
    write_file(f, "main.tf.json", "{\"resource\": {\"null_resource\": {\"a\": {\"triggers\": {\"x\": \"2\"}},"
                                  " \"c\": {}}}}");
    ok(f, NULL, plan_args);
    cJSON *plan = show_json(f, "plan.out");
    assert_string_equal(actions_of(plan, "null_resource.a"), "update");
    assert_string_equal(actions_of(plan, "null_resource.b"), "delete");
    assert_string_equal(actions_of(plan, "null_resource.c"), "create");
    cJSON_Delete(plan);
    run_result r;
    run(f, NULL, apply_args, &r);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "null_resource.a: Modifying... [id="));
    assert_non_null(strstr(r.out, "null_resource.a: Modifications complete after 0s [id="));
    assert_non_null(strstr(r.out, "null_resource.b: Destroying... [id="));
    assert_non_null(strstr(r.out, "null_resource.b: Destruction complete after 0s\n"));
    assert_non_null(strstr(r.out, "Apply complete! Resources: 1 added, 1 changed, 1 destroyed."));
    result_free(&r);
    cJSON *st2 = read_json(f, "terraform.tfstate");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(st1, "lineage")->valuestring,
                        cJSON_GetObjectItemCaseSensitive(st2, "lineage")->valuestring);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(st2, "serial")->valueint, 2);
    cJSON_Delete(st1);
    cJSON_Delete(st2);
}

/* FORCE_REPLACE plans ["delete","create"], -refresh-only no resource change, -detailed-exitcode exits 2. */
static void replace_refresh_only_and_detailed_exitcode(void **state)
{
    fixture *f = *state;
    prepare(f, config_two);
    ok(f, NULL, plan_args);
    ok(f, NULL, apply_args);
    const char *env[] = { "FAKE_TF_FORCE_REPLACE=null_resource.a", NULL };
    ok(f, env, plan_args);
    cJSON *plan = show_json(f, "plan.out");
    assert_string_equal(actions_of(plan, "null_resource.a"), "delete,create");
    assert_string_equal(actions_of(plan, "null_resource.b"), "no-op");
    cJSON_Delete(plan);

    write_file(f, "main.tf.json", "{\"resource\": {\"null_resource\": {\"z\": {}}}}");
    const char *ro[] = { "plan", "-out=plan.out", "-no-color", "-var-file=variables.tfvars", "-refresh-only", NULL };
    run_result r;
    run(f, NULL, ro, &r);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "No changes. Your infrastructure still matches the configuration."));
    result_free(&r);
    plan = show_json(f, "plan.out");
    assert_null(cJSON_GetObjectItemCaseSensitive(plan, "resource_changes")); /* omitted when empty, as terraform */
    cJSON_Delete(plan);

    const char *de[] = { "plan", "-no-color", "-var-file=variables.tfvars", "-detailed-exitcode", NULL };
    run(f, NULL, de, &r);
    assert_int_equal(r.code, 2);
    result_free(&r);
}

/* Outputs are planned, written to the state by apply and printed by `output -json`. */
static void outputs_reach_state_and_output_json(void **state)
{
    fixture *f = *state;
    prepare(f, config_two);
    write_file(f, "outputs.tf.json", "{\"output\": {\"static-greeting\": {\"value\": \"hi ${var.name}\"},"
                                     " \"a-id\": {\"value\": \"${null_resource.a.id}\"}}}");
    ok(f, NULL, plan_args);
    cJSON *plan = show_json(f, "plan.out");
    const cJSON *oc = cJSON_GetObjectItemCaseSensitive(plan, "output_changes");
    const cJSON *aid = cJSON_GetObjectItemCaseSensitive(oc, "a-id");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(aid, "after_unknown")));
    cJSON_Delete(plan);
    ok(f, NULL, apply_args);
    run_result r;
    const char *args[] = { "output", "-json", NULL };
    run(f, NULL, args, &r);
    assert_int_equal(r.code, 0);
    cJSON *o = cJSON_Parse(r.out);
    assert_non_null(o);
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "static-greeting"), "value")->valuestring,
        "hi hello");
    cJSON *st = read_json(f, "terraform.tfstate");
    const cJSON *a = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(st, "resources"), 0);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(a, "instances"), 0),
                                         "attributes"),
        "id");
    const cJSON *aval = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "a-id"), "value");
    assert_string_equal(aval->valuestring, id->valuestring);
    cJSON_Delete(st);
    cJSON_Delete(o);
    result_free(&r);
}

/* INIT_FAIL_TIMES=2: two inits fail with the registry "no such host" error, the third succeeds; runs are logged. */
static void init_fails_transiently_then_succeeds(void **state)
{
    fixture *f = *state;
    write_file(f, "main.tf.json", config_two);
    char sd[200], sdenv[256];
    snprintf(sd, sizeof sd, "%s/knobs", f->dir);
    snprintf(sdenv, sizeof sdenv, "FAKE_TF_STATE_DIR=%s", sd);
    const char *env[] = { "FAKE_TF_INIT_FAIL_TIMES=2", sdenv, "TF_IN_AUTOMATION=true", NULL };
    for (int i = 0; i < 2; i++) {
        run_result r;
        run(f, env, init_args, &r);
        assert_int_equal(r.code, 1);
        assert_non_null(strstr(r.err, "Error: Failed to query available provider packages"));
        assert_non_null(strstr(r.err, "no such host"));
        result_free(&r);
    }
    ok(f, env, init_args);
    char *log = read_file(f, "knobs/invocations.log", NULL);
    assert_non_null(log);
    int lines = 0;
    for (char *p = log; (p = strchr(p, '\n')); p++)
        lines++;
    assert_int_equal(lines, 3);
    assert_non_null(strstr(log, "\"TF_IN_AUTOMATION\":\"true\""));
    free(log);
}

/* FAIL=plan: terraform's error, no plan file; FAIL=apply + FAIL_AFTER=1: one resource saved, then the error. */
static void hard_failures_print_terraform_errors(void **state)
{
    fixture *f = *state;
    prepare(f, config_two);
    const char *env[] = { "FAKE_TF_FAIL=plan", NULL };
    run_result r;
    run(f, env, plan_args, &r);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "\nError: Reference to undeclared resource\n"));
    assert_false(exists(f, "plan.out"));
    result_free(&r);
    const char *env2[] = { "FAKE_TF_FAIL=plan", "FAKE_TF_FAIL_MESSAGE=Something specific broke", NULL };
    run(f, env2, plan_args, &r);
    assert_non_null(strstr(r.err, "Error: Something specific broke"));
    result_free(&r);

    ok(f, NULL, plan_args);
    const char *env3[] = { "FAKE_TF_FAIL=apply", "FAKE_TF_FAIL_AFTER=1", NULL };
    run(f, env3, apply_args, &r);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.out, "null_resource.a: Creation complete"));
    assert_non_null(strstr(r.out, "null_resource.b: Creating..."));
    assert_non_null(strstr(r.err, "Error: Provider produced inconsistent result after apply"));
    result_free(&r);
    assert_int_equal(state_resource_count(f), 1);
}

/* Without -no-color the error comes in terraform's box ("╷", "│ Error: …", "╵"). */
static void errors_are_boxed_without_no_color(void **state)
{
    fixture *f = *state;
    prepare(f, config_two);
    const char *env[] = { "FAKE_TF_FAIL=plan", NULL };
    const char *args[] = { "plan", "-out=plan.out", "-var-file=variables.tfvars", NULL };
    run_result r;
    run(f, env, args, &r);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "╷\n│ Error: Reference to undeclared resource\n│ \n"));
    assert_non_null(strstr(r.err, "╵\n"));
    result_free(&r);
}

/* .tfvars strings follow HCL: "\p" is terraform's escape error, \" and \n decode (ref §7.2 quoting). */
static void tfvars_follow_hcl_rules(void **state)
{
    fixture *f = *state;
    prepare(f, config_two);
    write_file(f, "variables.tfvars", "name = \"C:\\path\"\n");
    run_result r;
    run(f, NULL, plan_args, &r);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "Error: Invalid escape sequence"));
    result_free(&r);
    write_file(f, "variables.tfvars", "name = \"say \\\"hi\\\"\\nbye\"\n");
    ok(f, NULL, plan_args);
    cJSON *plan = show_json(f, "plan.out");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(plan, "variables"), "name"), "value");
    assert_string_equal(v->valuestring, "say \"hi\"\nbye");
    cJSON_Delete(plan);
}

/* OUTPUT_LINES lines of exactly OUTPUT_LINE_BYTES, and one LONG_LINE_BYTES line, appear in the plan output. */
static void output_volume_knobs(void **state)
{
    fixture *f = *state;
    prepare(f, config_two);
    const char *env[] = { "FAKE_TF_OUTPUT_LINES=5000", "FAKE_TF_OUTPUT_LINE_BYTES=100",
                          "FAKE_TF_LONG_LINE_BYTES=200000", NULL };
    run_result r;
    run(f, env, plan_args, &r);
    assert_int_equal(r.code, 0);
    int filler = 0, longest = 0;
    for (char *line = r.out, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
        int len = (int)(nl - line);
        if (strncmp(line, "fake-terraform output line ", 27) == 0) {
            assert_int_equal(len, 100);
            filler++;
        }
        if (len > longest)
            longest = len;
    }
    assert_int_equal(filler, 5000);
    assert_int_equal(longest, 200000);
    assert_non_null(strstr(r.out, "Plan: 2 to add"));
    result_free(&r);
}

/* SIGINT mid-apply: terraform's message, the current resource finishes and is saved, no next one, exit 1. */
static void sigint_mid_apply_leaves_partial_state(void **state)
{
    fixture *f = *state;
    prepare(f, "{\"resource\": {\"null_resource\": {\"a\": {}, \"b\": {}, \"c\": {}}}}");
    ok(f, NULL, plan_args);
    const char *env[] = { "FAKE_TF_APPLY_DELAY_MS=800", NULL }; /* room for a slow test machine to react */
    run_signal sig = { "null_resource.a: Creating...", SIGINT, 1 };
    run_result r;
    run_sig(f, env, apply_args, &sig, &r);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.out, "Interrupt received.\nPlease wait for Terraform to exit or data loss may occur.\n"
                                  "Gracefully shutting down..."));
    assert_non_null(strstr(r.out, "null_resource.a: Creation complete"));
    assert_null(strstr(r.out, "null_resource.b: Creating..."));
    assert_non_null(strstr(r.err, "Error: execution halted"));
    result_free(&r);
    assert_int_equal(state_resource_count(f), 1);
}

/* A second SIGINT exits at once; with FAKE_TF_SIGINT=ignore the apply carries on to the end. */
static void second_sigint_exits_at_once_and_ignore_mode_carries_on(void **state)
{
    fixture *f = *state;
    prepare(f, "{\"resource\": {\"null_resource\": {\"a\": {}}}}");
    ok(f, NULL, plan_args);
    const char *env[] = { "FAKE_TF_APPLY_DELAY_MS=15000", NULL };
    run_signal sig = { "null_resource.a: Creating...", SIGINT, 2 };
    run_result r;
    run_sig(f, env, apply_args, &sig, &r);
    assert_int_equal(r.code, 1);
    assert_true(r.ms < 5000);
    assert_non_null(strstr(r.err, "Two interrupts received. Exiting immediately."));
    result_free(&r);

    const char *env2[] = { "FAKE_TF_APPLY_DELAY_MS=800", "FAKE_TF_SIGINT=ignore", NULL };
    run_signal once = { "null_resource.a: Creating...", SIGINT, 1 };
    run_sig(f, env2, apply_args, &once, &r);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "Interrupt received."));
    assert_non_null(strstr(r.out, "Apply complete! Resources: 1 added"));
    result_free(&r);
}

/* A plan made before the state changed is refused like terraform's stale plan. */
static void stale_plan_is_refused(void **state)
{
    fixture *f = *state;
    prepare(f, config_two);
    ok(f, NULL, plan_args);
    const char *keep[] = { "plan", "-out=old.out", "-no-color", "-var-file=variables.tfvars", NULL };
    ok(f, NULL, keep);
    ok(f, NULL, apply_args);
    const char *stale[] = { "apply", "-no-color", "-auto-approve", "old.out", NULL };
    run_result r;
    run(f, NULL, stale, &r);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "Error: Saved plan is stale"));
    result_free(&r);
}

/* TF_CLI_ARGS_plan is inserted into the plan's arguments, as terraform does (here: -refresh-only). */
static void tf_cli_args_are_merged(void **state)
{
    fixture *f = *state;
    prepare(f, config_two);
    const char *env[] = { "TF_CLI_ARGS_plan=-refresh-only", NULL };
    run_result r;
    run(f, env, plan_args, &r);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "No changes. Your infrastructure still matches the configuration."));
    result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(version_reports_terraform_1_6_6, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_command_and_flag_fail_like_terraform, setup, teardown),
        cmocka_unit_test_setup_teardown(init_creates_dot_terraform_and_lock_file, setup, teardown),
        cmocka_unit_test_setup_teardown(plan_show_apply_cycle, setup, teardown),
        cmocka_unit_test_setup_teardown(changes_plan_update_delete_create, setup, teardown),
        cmocka_unit_test_setup_teardown(replace_refresh_only_and_detailed_exitcode, setup, teardown),
        cmocka_unit_test_setup_teardown(outputs_reach_state_and_output_json, setup, teardown),
        cmocka_unit_test_setup_teardown(init_fails_transiently_then_succeeds, setup, teardown),
        cmocka_unit_test_setup_teardown(hard_failures_print_terraform_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(errors_are_boxed_without_no_color, setup, teardown),
        cmocka_unit_test_setup_teardown(tfvars_follow_hcl_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(output_volume_knobs, setup, teardown),
        cmocka_unit_test_setup_teardown(sigint_mid_apply_leaves_partial_state, setup, teardown),
        cmocka_unit_test_setup_teardown(second_sigint_exits_at_once_and_ignore_mode_carries_on, setup, teardown),
        cmocka_unit_test_setup_teardown(stale_plan_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(tf_cli_args_are_merged, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
