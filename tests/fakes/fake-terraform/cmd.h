/* cmd.h — the subcommands, and what they share.
 *
 * main.c picks the command and hands it an ft_ctx; a command returns the process exit status (0 success, 1
 * error, 2 for `plan -detailed-exitcode` with changes), prints terraform's output on stdout and its errors on
 * stderr, and never reads stdin (the agent runs terraform with -input=false; a fake that waited for input would
 * hang a test). */
#ifndef FT_CMD_H
#define FT_CMD_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "args.h"
#include "knobs.h"
#include "vars.h"

typedef struct {
    const ft_knobs *k;
    const char     *name;       /* "plan" */
    int             argc;       /* arguments after the command, TF_CLI_ARGS merged in */
    char          **argv;
    bool            boxed;      /* no -no-color anywhere: diagnostics in terraform's box */
    bool            automation; /* TF_IN_AUTOMATION is set: terraform leaves out its next-step advice */
} ft_ctx;

int ft_cmd_version(const ft_ctx *c);
int ft_cmd_init(const ft_ctx *c);
int ft_cmd_plan(const ft_ctx *c);
int ft_cmd_apply(const ft_ctx *c);
int ft_cmd_show(const ft_ctx *c);
int ft_cmd_output(const ft_ctx *c);

/* --- shared helpers (cmd_common.c) ----------------------------------------------------------------------- */

/* Parses the command's flags; on error prints terraform's flag error (and the -help hint) and returns -1. */
int ft_cmd_args(const ft_ctx *c, const ft_flag_spec *spec, ft_args *a);

/* Error for positional arguments a command does not take. Returns 1 (the exit status). */
int ft_cmd_too_many(const ft_ctx *c, const char *hint);

/* Plan and apply refuse a directory where init never ran (FAKE_TF_REQUIRE_INIT). provider: an example provider
 * source address for the message. 0, or 1 after printing terraform's error. */
int ft_cmd_check_init(const ft_ctx *c, const char *provider);

/* The FAKE_TF_OUTPUT_* / FAKE_TF_LONG_LINE_BYTES output, when FAKE_TF_OUTPUT_ON names this command. 0, or 1 if
 * an interrupt cut it short. */
int ft_cmd_extra_output(const ft_ctx *c);

/* -var and -var-file flags in command-line order (caller frees the array). */
ft_var_arg *ft_cmd_var_args(const ft_args *a, size_t *n);

/* "Error: execution halted" after an interrupt; returns 1. */
int ft_cmd_halted(const ft_ctx *c);

/* Plans in the current directory as `terraform plan` does, printing the plan. Used by plan, and by apply
 * without a saved plan. out: the -out path or NULL. On success *doc is the plan document and the return is 0;
 * otherwise the exit status (1). */
int ft_cmd_make_plan(const ft_ctx *c, const ft_args *a, const char *out, bool for_apply, cJSON **doc);

/* Lock file provider selections (.terraform.lock.hcl): an object source → version, or an empty one. */
cJSON *ft_lock_read(const char *path);

#endif
