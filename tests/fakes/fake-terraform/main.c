/* main.c — fake-terraform: a stand-in for the terraform CLI in tests.
 *
 * It implements the subcommands the agent runs (version, init, plan, show, apply, output; ref §7.6) with
 * terraform's output formats — plan JSON format 1.2, state format 4, the progress and error lines the agent
 * parses — and decides real creates, updates, deletes and no-ops from the work directory's *.tf.json files and
 * terraform.tfstate. FAKE_TF_* environment variables add delays, output volume, transient and hard failures and
 * SIGINT behaviours (README.md). Everything is deterministic: the same inputs and knobs give the same output
 * and the same files.
 *
 * This file does what terraform's main does before a command runs: global options (-chdir, -version, -help),
 * the command lookup, TF_CLI_ARGS / TF_CLI_ARGS_<command> merging, and it records the invocation (with
 * FAKE_TF_STATE_DIR) so that tests can check how the agent called terraform (and, through intr.c, which signals
 * it received). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "iac/fsutil.h"
#include "iac/jsonw.h"
#include "iac/strbuf.h"
#include "intr.h"
#include "knobs.h"
#include "res.h"

extern char **environ;

static const struct {
    const char *name;
    int (*run)(const ft_ctx *c);
} ft_commands[] = {
    { "version", ft_cmd_version }, { "init", ft_cmd_init },     { "plan", ft_cmd_plan },
    { "apply", ft_cmd_apply },     { "show", ft_cmd_show },     { "output", ft_cmd_output },
};

/* Real terraform commands the fake does not simulate: an error that says so, rather than "no such command". */
static const char *const ft_unsimulated[] = { "console", "destroy", "fmt", "force-unlock", "get", "graph", "import",
                                              "login", "logout", "metadata", "providers", "refresh", "state",
                                              "taint", "test", "untaint", "validate", "workspace" };

static void ft_usage(FILE *f)
{
    fputs("Usage: terraform [global options] <subcommand> [args]\n\n"
          "This is fake-terraform, a test double of the terraform CLI.\n\n"
          "Main commands:\n"
          "  init          Prepare your working directory for other commands\n"
          "  plan          Show changes required by the current configuration\n"
          "  apply         Create or update infrastructure\n\n"
          "All other commands:\n"
          "  output        Show output values from your root module\n"
          "  show          Show the current state or a saved plan\n"
          "  version       Show the current Terraform version\n\n"
          "Global options (use these before the subcommand, if any):\n"
          "  -chdir=DIR    Switch to a different working directory before executing the\n"
          "                given subcommand.\n"
          "  -help         Show this help output, or the help for a specified subcommand.\n"
          "  -version      An alias for the \"version\" subcommand.\n", f);
}

/* Splits an environment value into words: blanks separate, single and double quotes group. */
static int ft_split_words(const char *s, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    while (*s) {
        while (*s == ' ' || *s == '\t' || *s == '\n')
            s++;
        if (!*s)
            break;
        strbuf w = STRBUF_INIT;
        char quote = 0;
        for (; *s && (quote || (*s != ' ' && *s != '\t' && *s != '\n')); s++) {
            if (quote && *s == quote)
                quote = 0;
            else if (!quote && (*s == '"' || *s == '\''))
                quote = *s;
            else
                strbuf_putc(&w, *s);
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            char **v = realloc(*out, cap * sizeof *v);
            if (!v) {
                strbuf_free(&w);
                return -ENOMEM;
            }
            *out = v;
        }
        char *word = w.data ? strbuf_detach(&w, NULL) : strdup("");
        if (!word)
            return -ENOMEM;
        (*out)[(*n)++] = word;
    }
    return 0;
}

/* Inserts the words of an environment variable right after the command, as terraform does. Every allocation
 * is appended to owned (freed at exit). */
static int ft_merge_env_args(const char *var, char ***argv, int *argc, void ***owned, size_t *nowned)
{
    const char *v = getenv(var);
    if (!v || !*v)
        return 0;
    char **words;
    size_t n;
    int rc = ft_split_words(v, &words, &n);
    char **nv = rc == 0 ? malloc(((size_t)*argc + n + 1) * sizeof *nv) : NULL;
    void **no = nv ? realloc(*owned, (*nowned + n + 2) * sizeof *no) : NULL;
    if (!no) {
        free(nv);
        for (size_t i = 0; i < n; i++)
            free(words[i]);
        free(words);
        return -ENOMEM;
    }
    *owned = no;
    memcpy(nv, words, n * sizeof *nv);
    memcpy(nv + n, *argv, (size_t)*argc * sizeof *nv);
    nv[n + (size_t)*argc] = NULL;
    for (size_t i = 0; i < n; i++)
        no[(*nowned)++] = words[i];
    no[(*nowned)++] = nv;
    free(words);
    *argv = nv;
    *argc += (int)n;
    return 0;
}

static bool ft_record_env(const ft_knobs *k, const char *name, size_t len)
{
    char buf[256];
    if (len >= sizeof buf)
        return false;
    memcpy(buf, name, len);
    buf[len] = '\0';
    if (strncmp(buf, "FAKE_TF_", 8) == 0)
        return false;
    return strncmp(buf, "TF_", 3) == 0 || strcmp(buf, "AWS_REGION") == 0 || strcmp(buf, "AWS_DEFAULT_REGION") == 0 ||
           ft_list_has(k->record_env, buf, false);
}

/* Appends {"cmd","args","cwd","env","pid"} as one line to $FAKE_TF_STATE_DIR/invocations.log (intr.c appends a
 * line per signal received to the same file). */
static void ft_record(const ft_knobs *k, const char *cmd, int argc, char **argv)
{
    if (!k->state_dir || fs_mkdir_p(k->state_dir, 0755) < 0)
        return;
    cJSON *o = cJSON_CreateObject(), *args = cJSON_CreateArray(), *env = cJSON_CreateObject();
    char cwd[4096];
    if (o && args && env) {
        cJSON_AddStringToObject(o, "cmd", cmd);
        for (int i = 0; i < argc; i++)
            cJSON_AddItemToArray(args, cJSON_CreateString(argv[i]));
        cJSON_AddItemToObject(o, "args", args);
        cJSON_AddStringToObject(o, "cwd", getcwd(cwd, sizeof cwd) ? cwd : "");
        for (char **e = environ; *e; e++) {
            const char *eq = strchr(*e, '=');
            if (eq && ft_record_env(k, *e, (size_t)(eq - *e))) {
                char name[256];
                snprintf(name, sizeof name, "%.*s", (int)(eq - *e), *e);
                cJSON_AddStringToObject(env, name, eq + 1);
            }
        }
        ft_json_sort_top(env);
        cJSON_AddItemToObject(o, "env", env);
        cJSON_AddNumberToObject(o, "pid", (double)getpid());
        strbuf b = STRBUF_INIT;
        jsonw_write(&b, o, JSONW_HTML_ESCAPE);
        strbuf_putc(&b, '\n');
        char path[4096];
        snprintf(path, sizeof path, "%s/invocations.log", k->state_dir);
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0 && !b.oom) {
            ssize_t n = write(fd, b.data, b.len); /* one write: lines of concurrent runs do not interleave */
            (void)n;
        }
        if (fd >= 0)
            close(fd);
        strbuf_free(&b);
        cJSON_Delete(o);
        return;
    }
    cJSON_Delete(o);
    cJSON_Delete(args);
    cJSON_Delete(env);
}

static bool ft_no_color(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "-no-color") == 0 || strcmp(argv[i], "--no-color") == 0)
            return true;
    return false;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* line by line, as the agent reads it live */
    ft_knobs k;
    char err[512];
    if (ft_knobs_load(&k, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    int i = 1;
    const char *cmd = NULL;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i] + 1 + (argv[i][1] == '-');
        if (strncmp(a, "chdir=", 6) == 0) {
            if (chdir(a + 6) < 0) {
                fprintf(stderr, "Error handling -chdir option: chdir %s: %s\n", a + 6, strerror(errno));
                return 1;
            }
        } else if (strcmp(a, "version") == 0 || strcmp(a, "v") == 0) {
            cmd = "version";
        } else if (strcmp(a, "help") == 0 || strcmp(a, "h") == 0) {
            ft_usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "Terraform has no global option %s.\n\n", argv[i]);
            ft_usage(stderr);
            return 1;
        }
    }
    if (!cmd && i < argc)
        cmd = argv[i++];
    if (!cmd) {
        ft_usage(stdout);
        return 127;
    }
    int (*run)(const ft_ctx *) = NULL;
    for (size_t j = 0; j < sizeof ft_commands / sizeof ft_commands[0]; j++)
        if (strcmp(ft_commands[j].name, cmd) == 0)
            run = ft_commands[j].run;
    if (!run) {
        for (size_t j = 0; j < sizeof ft_unsimulated / sizeof ft_unsimulated[0]; j++) {
            if (strcmp(ft_unsimulated[j], cmd) == 0) {
                fprintf(stderr, "\nError: fake-terraform does not simulate \"terraform %s\"\n\n", cmd);
                return 1;
            }
        }
        fprintf(stderr, "Terraform has no command named \"%s\".\n\nTo see all of Terraform's top-level commands, "
                        "run:\n  terraform -help\n\n", cmd);
        return 1;
    }

    char **args = argv + i;
    void **owned = NULL;
    int nargs = argc - i;
    size_t nowned = 0;
    char specific[64];
    snprintf(specific, sizeof specific, "TF_CLI_ARGS_%s", cmd);
    if (ft_merge_env_args("TF_CLI_ARGS", &args, &nargs, &owned, &nowned) < 0 ||
        ft_merge_env_args(specific, &args, &nargs, &owned, &nowned) < 0) {
        fprintf(stderr, "fake-terraform: out of memory\n");
        return 1;
    }
    ft_record(&k, cmd, nargs, args);
    char record[4096 + 32];
    if (k.state_dir)
        snprintf(record, sizeof record, "%s/invocations.log", k.state_dir);
    if (ft_intr_install(k.sigint, k.state_dir ? record : NULL, cmd) < 0) {
        fprintf(stderr, "fake-terraform: cannot install signal handlers: %s\n", strerror(errno));
        return 1;
    }
    const char *automation = getenv("TF_IN_AUTOMATION");
    ft_ctx ctx = { &k, cmd, nargs, args, !ft_no_color(nargs, args), automation && *automation };
    int rc = run(&ctx);
    fflush(stdout);
    for (size_t j = 0; j < nowned; j++)
        free(owned[j]);
    free(owned);
    return rc;
}
