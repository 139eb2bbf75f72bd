/* cmd_plan.c — `terraform plan -out=PATH -no-color -var-file=variables.tfvars [-refresh-only] …`.
 *
 * The order of what a plan prints follows terraform: warnings, "Refreshing state..." per resource of the state,
 * data source reads, (extra FAKE_TF_OUTPUT_* lines), then the plan itself and where it was saved. The plan is
 * decided after FAKE_TF_PLAN_DELAY_MS; an interrupt during the delay stops the plan with no plan file written.
 * FAKE_TF_FAIL=plan fails after the refresh, as a configuration error found while planning would. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "config.h"
#include "diag.h"
#include "fail.h"
#include "iac/strbuf.h"
#include "intr.h"
#include "plan.h"
#include "plantext.h"
#include "state.h"

#define FT_MAX_TARGETS 256

static const ft_flag_spec ft_plan_flags[] = {
    { "out", false, FT_FLAG_USED },
    { "no-color", true, FT_FLAG_USED },
    { "var-file", false, FT_FLAG_USED },
    { "var", false, FT_FLAG_USED },
    { "refresh-only", true, FT_FLAG_USED },
    { "destroy", true, FT_FLAG_USED },
    { "refresh", true, FT_FLAG_USED },
    { "target", false, FT_FLAG_USED },
    { "replace", false, FT_FLAG_USED },
    { "detailed-exitcode", true, FT_FLAG_USED },
    { "input", true, FT_FLAG_USED },
    { "lock", true, FT_FLAG_IGNORED },
    { "lock-timeout", false, FT_FLAG_IGNORED },
    { "parallelism", false, FT_FLAG_IGNORED },
    { "compact-warnings", true, FT_FLAG_IGNORED },
    { "state", false, FT_FLAG_IGNORED },
    { "json", true, FT_FLAG_UNSUPPORTED },
    { "generate-config-out", false, FT_FLAG_UNSUPPORTED },
    { NULL, false, FT_FLAG_USED },
};

static const char ft_rule[] =
    "─────────────────────────────────────────────────────────────────────────────";

static void ft_print(strbuf *b)
{
    if (b->data)
        fputs(b->data, stdout);
    strbuf_reset(b);
}

/* "data.TYPE.NAME: Reading..." lines for the data sources (never really read). */
static void ft_data_lines(const ft_config *cfg)
{
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(cfg->blocks, "data");
    for (const cJSON *t = data ? data->child : NULL; t; t = t->next) {
        for (const cJSON *n = t->child; n; n = n->next) {
            const char *url = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ft_config_body(n), "url"));
            printf("data.%s.%s: Reading...\n", t->string, n->string);
            printf("data.%s.%s: Read complete after 0s [id=%s]\n", t->string, n->string, url ? url : n->string);
        }
    }
}

static const char *ft_first_provider(const ft_config *cfg, const ft_state *st)
{
    if (cfg->res.n)
        return cfg->res.v[0].provider;
    return st->res.n ? st->res.v[0].provider : NULL;
}

int ft_cmd_make_plan(const ft_ctx *c, const ft_args *a, const char *out, bool for_apply, cJSON **doc)
{
    *doc = NULL;
    ft_plan_opts o = { .force_replace = c->k->force_replace, .tf_version = c->k->version };
    bool refresh_only = ft_args_bool(a, "refresh-only"), destroy = ft_args_bool(a, "destroy");
    const char *refresh = ft_args_get(a, "refresh");
    ft_err e;
    if (refresh_only && destroy) {
        ft_err_set(&e, "Incompatible plan mode options",
                   "The -destroy and -refresh-only options are mutually-exclusive.");
        ft_diag_error(c->boxed, &e);
        return 1;
    }
    o.mode = refresh_only ? FT_MODE_REFRESH_ONLY : destroy ? FT_MODE_DESTROY : FT_MODE_NORMAL;
    const char *targets[FT_MAX_TARGETS], *replace[FT_MAX_TARGETS];
    o.targets = targets;
    o.replace = replace;
    o.ntargets = ft_args_all(a, "target", targets, FT_MAX_TARGETS);
    o.nreplace = ft_args_all(a, "replace", replace, FT_MAX_TARGETS);
    if (o.ntargets > FT_MAX_TARGETS || o.nreplace > FT_MAX_TARGETS) {
        ft_err_set(&e, "Too many targets", "fake-terraform accepts at most %d -target and -replace options.",
                   FT_MAX_TARGETS);
        ft_diag_error(c->boxed, &e);
        return 1;
    }

    size_t nvars;
    ft_var_arg *vars = ft_cmd_var_args(a, &nvars);
    if (!vars) {
        ft_err_set(&e, "Out of memory", NULL);
        ft_diag_error(c->boxed, &e);
        return 1;
    }
    strbuf b = STRBUF_INIT;
    ft_config cfg;
    ft_state st;
    int rc = 1;
    bool cfg_ok = ft_config_load(&cfg, vars, nvars, true, &e) == 0;
    bool st_ok = cfg_ok && ft_state_load(FT_STATE_FILE, &st, &e) == 0;
    free(vars);
    if (!cfg_ok || !st_ok) {
        ft_diag_error(c->boxed, &e);
        goto out;
    }
    if (ft_cmd_check_init(c, ft_first_provider(&cfg, &st)))
        goto out;
    if (cfg.nfiles == 0 && o.mode != FT_MODE_DESTROY) {
        ft_err_set(&e, "No configuration files",
                   "%s requires configuration to be present. Planning without a configuration would mark everything "
                   "for destruction, which is normally not what is desired. If you would like to destroy "
                   "everything, run %s with the -destroy option. Otherwise, create a Terraform configuration file "
                   "(.tf file) and try again.", for_apply ? "Apply" : "Plan", for_apply ? "apply" : "plan");
        ft_diag_error(c->boxed, &e);
        goto out;
    }
    if (cfg.warn.summary[0])
        ft_diag_print(stdout, c->boxed, "Warning", &cfg.warn);
    if (o.ntargets) {
        ft_err w;
        ft_err_set(&w, "Resource targeting is in effect",
                   "You are creating a plan with the -target option, which means that the result of this plan may not "
                   "represent all of the changes requested by the current configuration.\n\nThe -target option is not "
                   "for routine use, and is provided only for exceptional situations such as recovering from errors "
                   "or mistakes, or when Terraform specifically suggests to use it as part of an error message.");
        ft_diag_print(stdout, c->boxed, "Warning", &w);
    }
    if (ft_plan_build(&cfg, &st, &o, doc, &e) < 0) {
        ft_diag_error(c->boxed, &e);
        goto out;
    }
    const cJSON *show = cJSON_GetObjectItemCaseSensitive(*doc, "show");
    if (!refresh || strcmp(refresh, "true") == 0)
        ft_plantext_refresh(&b, show);
    ft_print(&b);
    if (o.mode != FT_MODE_DESTROY)
        ft_data_lines(&cfg);
    fflush(stdout);
    if (ft_cmd_extra_output(c) == 1 || ft_intr_sleep(c->k->plan_delay_ms, true)) {
        rc = ft_cmd_halted(c);
        goto fail_doc;
    }
    if (ft_fail_wanted(c->k, "plan")) {
        ft_fail_print(c->k, "plan", c->boxed, NULL);
        goto fail_doc;
    }
    static const char *const modes[] = { "normal", "refresh-only", "destroy" };
    ft_plantext_changes(&b, show, modes[o.mode]);
    ft_print(&b);
    ft_plan_counts n;
    ft_plan_count(show, &n);
    bool changes = n.add + n.change + n.destroy + n.outputs > 0;
    if (out) {
        int w = ft_planfile_write(out, *doc);
        if (w < 0) {
            ft_err_set(&e, "Failed to write plan file", "The plan file could not be written: %s.", strerror(-w));
            ft_diag_error(c->boxed, &e);
            goto fail_doc;
        }
    }
    if (changes && !for_apply) {
        printf("\n%s\n\n", ft_rule);
        if (out) {
            printf("Saved the plan to: %s\n", out);
            if (!c->automation)
                printf("\nTo perform exactly these actions, run the following command to apply:\n"
                       "    terraform apply \"%s\"\n", out);
        } else {
            fputs("Note: You didn't use the -out option to save this plan, so Terraform can't\n"
                  "guarantee to take exactly these actions if you run \"terraform apply\" now.\n", stdout);
        }
    }
    rc = 0;
    goto out;
fail_doc:
    cJSON_Delete(*doc);
    *doc = NULL;
out:
    strbuf_free(&b);
    if (cfg_ok)
        ft_state_free(&st);
    ft_config_free(&cfg);
    return rc;
}

int ft_cmd_plan(const ft_ctx *c)
{
    ft_args a;
    if (ft_cmd_args(c, ft_plan_flags, &a) < 0)
        return 1;
    if (a.npos > 0) {
        ft_args_free(&a);
        return ft_cmd_too_many(c, "To specify a working directory for the plan, use the global -chdir flag.");
    }
    cJSON *doc = NULL;
    int rc = ft_cmd_make_plan(c, &a, ft_args_get(&a, "out"), false, &doc);
    if (rc == 0 && ft_args_bool(&a, "detailed-exitcode")) {
        ft_plan_counts n;
        ft_plan_count(cJSON_GetObjectItemCaseSensitive(doc, "show"), &n);
        rc = n.add + n.change + n.destroy + n.outputs > 0 ? 2 : 0;
    }
    cJSON_Delete(doc);
    ft_args_free(&a);
    return rc;
}
