/* cmd_common.c — helpers shared by the subcommands; see cmd.h. */
#include "cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bulk.h"
#include "diag.h"
#include "iac/fsutil.h"

int ft_cmd_args(const ft_ctx *c, const ft_flag_spec *spec, ft_args *a)
{
    char msg[300];
    if (ft_args_parse(spec, c->argc, c->argv, c->k->debug, a, msg, sizeof msg) == 0)
        return 0;
    ft_err e;
    ft_err_set(&e, "Failed to parse command-line flags", "%s", msg);
    ft_diag_error(c->boxed, &e);
    fprintf(stderr, "For more help on using this command, run:\n  terraform %s -help\n", c->name);
    ft_args_free(a);
    return -1;
}

int ft_cmd_too_many(const ft_ctx *c, const char *hint)
{
    ft_err e;
    ft_err_set(&e, "Too many command line arguments", "%s", hint);
    ft_diag_error(c->boxed, &e);
    fprintf(stderr, "For more help on using this command, run:\n  terraform %s -help\n", c->name);
    return 1;
}

int ft_cmd_check_init(const ft_ctx *c, const char *provider)
{
    struct stat sb;
    if (!c->k->require_init || !provider || (stat(".terraform", &sb) == 0 && S_ISDIR(sb.st_mode)))
        return 0;
    ft_err e;
    ft_err_set(&e, "Inconsistent dependency lock file",
               "The following dependency selections recorded in the lock file are inconsistent with the current "
               "configuration:\n  - provider %s: required by this configuration but no version is selected\n\nTo make "
               "the initial dependency selections that will initialize the dependency lock file, run:\n  terraform "
               "init", provider);
    ft_diag_error(c->boxed, &e);
    return 1;
}

int ft_cmd_extra_output(const ft_ctx *c)
{
    if (!ft_list_has(c->k->output_on, c->name, true))
        return 0;
    int rc = ft_bulk_lines(STDOUT_FILENO, c->k->output_lines, c->k->output_line_bytes);
    if (rc == 0)
        rc = ft_bulk_long_line(STDOUT_FILENO, c->k->long_line_bytes);
    return rc == 1 ? 1 : 0; /* a write error (reader gone) is not ours to report */
}

ft_var_arg *ft_cmd_var_args(const ft_args *a, size_t *n)
{
    ft_var_arg *v = calloc(a->nflags + 1, sizeof *v);
    *n = 0;
    for (size_t i = 0; v && i < a->nflags; i++) {
        if (strcmp(a->flags[i].name, "var-file") == 0)
            v[(*n)++] = (ft_var_arg){ true, a->flags[i].value };
        else if (strcmp(a->flags[i].name, "var") == 0)
            v[(*n)++] = (ft_var_arg){ false, a->flags[i].value };
    }
    return v;
}

int ft_cmd_halted(const ft_ctx *c)
{
    ft_err e;
    ft_err_set(&e, "execution halted", NULL);
    ft_diag_error(c->boxed, &e);
    return 1;
}

cJSON *ft_lock_read(const char *path)
{
    cJSON *sel = cJSON_CreateObject();
    char *text = NULL;
    size_t len = 0;
    if (!sel || fs_read_file(path, 16u << 20, &text, &len) < 0)
        return sel;
    char provider[512] = "";
    for (char *line = text, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        while (*line == ' ' || *line == '\t')
            line++;
        char value[512];
        if (sscanf(line, "provider \"%511[^\"]\"", value) == 1) {
            snprintf(provider, sizeof provider, "%s", value);
        } else if (provider[0] && sscanf(line, "version = \"%511[^\"]\"", value) == 1) {
            /* a space in a scanf format matches any run of blanks, so the aligned "version     =" reads too */
            cJSON_AddStringToObject(sel, provider, value);
            provider[0] = '\0';
        }
    }
    free(text);
    return sel;
}
