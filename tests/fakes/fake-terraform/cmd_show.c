/* cmd_show.c — `terraform show [-json] [FILE]` and `terraform output [-json|-raw] [NAME]`.
 *
 * `show -json plan.out` prints the plan JSON on stdout and nothing else (the agent parses stdout, ref §7.6):
 * one line of compact JSON, as terraform prints it. A FILE that is not a plan file is tried as a state file,
 * as terraform does; without FILE the current state is shown. `output` reads terraform.tfstate. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "diag.h"
#include "fail.h"
#include "iac/jsonw.h"
#include "iac/strbuf.h"
#include "plan.h"
#include "plantext.h"
#include "state.h"

static const ft_flag_spec ft_show_flags[] = {
    { "json", true, FT_FLAG_USED },
    { "no-color", true, FT_FLAG_USED },
    { NULL, false, FT_FLAG_USED },
};

static const ft_flag_spec ft_output_flags[] = {
    { "json", true, FT_FLAG_USED },
    { "raw", true, FT_FLAG_USED },
    { "no-color", true, FT_FLAG_USED },
    { "state", false, FT_FLAG_USED },
    { NULL, false, FT_FLAG_USED },
};

static void ft_put_json(const cJSON *v, int flags)
{
    strbuf b = STRBUF_INIT;
    jsonw_write(&b, v, flags);
    strbuf_putc(&b, '\n');
    if (b.data)
        fwrite(b.data, 1, b.len, stdout);
    strbuf_free(&b);
}

/* The human form of a state: one block per resource, then its outputs. */
static void ft_show_state_text(const ft_state *st)
{
    if (!st->present || ft_state_empty(st)) {
        fputs("No state.\n", stdout);
        return;
    }
    strbuf b = STRBUF_INIT;
    for (size_t i = 0; i < st->res.n; i++) {
        const ft_res *r = &st->res.v[i];
        int width = 0;
        for (const cJSON *a = r->attrs->child; a; a = a->next)
            if ((int)strlen(a->string) > width)
                width = (int)strlen(a->string);
        strbuf_printf(&b, "%s# %s:\nresource \"%s\" \"%s\" {\n", i ? "\n" : "", r->address, r->type, r->name);
        for (const cJSON *a = r->attrs->child; a; a = a->next) {
            strbuf_printf(&b, "    %-*s = ", width, a->string);
            ft_plantext_value(&b, a, 4, 4);
            strbuf_putc(&b, '\n');
        }
        strbuf_puts(&b, "}\n");
    }
    if (st->outputs->child) {
        strbuf_puts(&b, "\n\nOutputs:\n\n");
        for (const cJSON *o = st->outputs->child; o; o = o->next) {
            strbuf_printf(&b, "%s = ", o->string);
            if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "sensitive")))
                strbuf_puts(&b, "(sensitive value)");
            else
                ft_plantext_value(&b, cJSON_GetObjectItemCaseSensitive(o, "value"), 0, 2);
            strbuf_putc(&b, '\n');
        }
    }
    if (b.data)
        fputs(b.data, stdout);
    strbuf_free(&b);
}

static int ft_show_state(const ft_ctx *c, const char *path, bool json)
{
    ft_state st;
    ft_err e;
    int rc = 0;
    if (ft_state_load(path, &st, &e) < 0) {
        ft_diag_error(c->boxed, &e);
        rc = 1;
    } else if (json && (!st.present || ft_state_empty(&st))) {
        printf("{\"format_version\":\"1.0\"}\n");
    } else if (json) {
        cJSON *doc = ft_plan_state_json(&st, c->k->version);
        ft_put_json(doc, JSONW_HTML_ESCAPE);
        cJSON_Delete(doc);
    } else {
        ft_show_state_text(&st);
    }
    ft_state_free(&st);
    return rc;
}

int ft_cmd_show(const ft_ctx *c)
{
    ft_args a;
    if (ft_cmd_args(c, ft_show_flags, &a) < 0)
        return 1;
    bool json = ft_args_bool(&a, "json");
    int rc = 1;
    if (a.npos > 1) {
        rc = ft_cmd_too_many(c, "Expected at most one positional argument.");
    } else if (ft_fail_wanted(c->k, "show")) {
        ft_fail_print(c->k, "show", c->boxed, NULL);
    } else if (a.npos == 0) {
        rc = ft_show_state(c, FT_STATE_FILE, json);
    } else {
        cJSON *doc = NULL;
        char why[600];
        ft_state st;
        ft_err se;
        if (ft_planfile_read(a.pos[0], &doc, why, sizeof why) == 0) {
            const cJSON *show = cJSON_GetObjectItemCaseSensitive(doc, "show");
            if (json) {
                ft_put_json(show, JSONW_HTML_ESCAPE);
            } else {
                strbuf b = STRBUF_INIT;
                const char *mode = cJSON_GetStringValue(
                    cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "fake"), "mode"));
                ft_plantext_changes(&b, show, mode ? mode : "normal");
                if (b.data)
                    fputs(b.data, stdout);
                strbuf_free(&b);
            }
            rc = 0;
        } else {
            /* terraform tries the file as a state too */
            int lrc = ft_state_load(a.pos[0], &st, &se);
            bool present = lrc == 0 && st.present;
            ft_state_free(&st);
            if (present) {
                rc = ft_show_state(c, a.pos[0], json);
            } else {
                ft_err e;
                ft_err_set(&e, "Failed to read the given file as a state or plan file",
                           "State read error: %s\n\nPlan read error: %s",
                           lrc < 0 ? se.detail : "the file is empty or missing", why);
                ft_diag_error(c->boxed, &e);
            }
        }
        cJSON_Delete(doc);
    }
    ft_args_free(&a);
    fflush(stdout);
    return rc;
}

/* One output entry as `output -json` shows it: {"sensitive","type","value"}. */
static cJSON *ft_output_entry(const cJSON *o)
{
    cJSON *e = cJSON_CreateObject();
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "value");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "type");
    cJSON_AddBoolToObject(e, "sensitive", cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "sensitive")));
    cJSON_AddItemToObject(e, "type", t ? cJSON_Duplicate(t, 1) : ft_cty_type(v));
    cJSON_AddItemToObject(e, "value", v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull());
    return e;
}

static int ft_output_one(const ft_ctx *c, const cJSON *o, bool json, bool raw)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "value");
    if (json) {
        ft_put_json(v, JSONW_INDENT | JSONW_HTML_ESCAPE);
        return 0;
    }
    if (raw) {
        if (cJSON_IsString(v)) {
            fputs(v->valuestring, stdout);
        } else if (cJSON_IsNumber(v) || cJSON_IsBool(v)) {
            strbuf b = STRBUF_INIT;
            jsonw_write(&b, v, 0);
            fputs(b.data ? b.data : "", stdout);
            strbuf_free(&b);
        } else {
            ft_err e;
            ft_err_set(&e, "Unsupported value for raw output",
                       "The -raw option only supports strings, numbers, and boolean values, but output value \"%s\" "
                       "is not one of those types.\n\nUse the -json option for machine-readable representations of "
                       "output values that have complex types.", o->string);
            ft_diag_error(c->boxed, &e);
            return 1;
        }
        return 0;
    }
    strbuf b = STRBUF_INIT;
    ft_plantext_value(&b, v, 0, 2);
    printf("%s\n", b.data ? b.data : "null");
    strbuf_free(&b);
    return 0;
}

static int ft_output_all(const ft_ctx *c, const ft_state *st, bool json)
{
    if (json) {
        cJSON *all = cJSON_CreateObject();
        for (const cJSON *o = st->outputs->child; o && all; o = o->next)
            cJSON_AddItemToObject(all, o->string, ft_output_entry(o));
        ft_json_sort_top(all);
        ft_put_json(all, JSONW_INDENT | JSONW_HTML_ESCAPE);
        cJSON_Delete(all);
        return 0;
    }
    if (!st->outputs->child) {
        ft_err e;
        ft_err_set(&e, "No outputs found", "The state file either has no outputs defined, or all the defined outputs "
                   "are empty. Please define an output in your configuration with the `output` keyword and run "
                   "`terraform refresh` for it to become available. If you are using interpolation, please verify "
                   "the interpolated value is not empty. You can use the `terraform console` command to assist.");
        ft_diag_print(stdout, c->boxed, "Warning", &e);
        return 0;
    }
    for (const cJSON *o = st->outputs->child; o; o = o->next) {
        printf("%s = ", o->string);
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "sensitive")))
            puts("<sensitive>");
        else
            ft_output_one(c, o, false, false);
    }
    return 0;
}

static int ft_output_run(const ft_ctx *c, const ft_args *a)
{
    bool json = ft_args_bool(a, "json"), raw = ft_args_bool(a, "raw");
    const char *path = ft_args_get(a, "state") ? ft_args_get(a, "state") : FT_STATE_FILE;
    ft_err e;
    if (a->npos > 1)
        return ft_cmd_too_many(c, "The output command expects exactly one argument with the name of an output "
                                  "variable or no arguments to show all outputs.");
    if (json && raw) {
        ft_err_set(&e, "Invalid output format", "The -raw and -json options are mutually-exclusive.");
        ft_diag_error(c->boxed, &e);
        return 1;
    }
    if (raw && a->npos == 0) {
        ft_err_set(&e, "Output name required",
                   "You must give the name of a single output value when using the -raw option.");
        ft_diag_error(c->boxed, &e);
        return 1;
    }
    if (ft_fail_wanted(c->k, "output")) {
        ft_fail_print(c->k, "output", c->boxed, NULL);
        return 1;
    }
    ft_state st;
    int rc = 1;
    if (ft_state_load(path, &st, &e) < 0) {
        ft_diag_error(c->boxed, &e);
    } else if (a->npos == 0) {
        rc = ft_output_all(c, &st, json);
    } else {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(st.outputs, a->pos[0]);
        if (o) {
            rc = ft_output_one(c, o, json, raw);
        } else {
            char summary[300];
            snprintf(summary, sizeof summary, "Output \"%s\" not found", a->pos[0]);
            ft_err_set(&e, summary, "The output variable requested could not be found in the state file. If you "
                       "recently added this to your configuration, be sure to run `terraform apply`, since the state "
                       "won't be updated with new output variables until that command is run.");
            ft_diag_error(c->boxed, &e);
        }
    }
    ft_state_free(&st);
    return rc;
}

int ft_cmd_output(const ft_ctx *c)
{
    ft_args a;
    if (ft_cmd_args(c, ft_output_flags, &a) < 0)
        return 1;
    int rc = ft_output_run(c, &a);
    ft_args_free(&a);
    fflush(stdout);
    return rc;
}
