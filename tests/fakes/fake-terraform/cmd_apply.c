/* cmd_apply.c — `terraform apply -no-color -auto-approve PLANFILE`.
 *
 * Applies the saved plan's resource changes one at a time, in the plan's order, printing terraform's progress
 * lines (the ones the agent's resource-status parser reads, ref §7.9):
 *   ADDR: Creating...                 ADDR: Creation complete after 0s [id=ID]
 *   ADDR: Modifying... [id=ID]        ADDR: Modifications complete after 0s [id=ID]
 *   ADDR: Destroying... [id=ID]       ADDR: Destruction complete after 0s
 * (a replace destroys, then creates), "Still creating... [10s elapsed]" every 10 s of a long
 * FAKE_TF_APPLY_DELAY_MS, and rewrites terraform.tfstate after every resource, so whatever stops the apply leaves
 * the resources done so far in the state. An interrupt lets the current resource finish, then stops with
 * "Error: execution halted" (exit 1). FAKE_TF_FAIL=apply fails on resource number FAKE_TF_FAIL_AFTER+1 (after its
 * start line), with the earlier ones applied and saved, or at the end when there are fewer resources.
 *
 * A plan made from another state is refused as terraform refuses it ("Saved plan is stale"): the plan records
 * the lineage and serial it saw. The new state keeps the lineage (or takes the plan's new one) and its serial
 * goes up by one when anything changed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "diag.h"
#include "fail.h"
#include "iac/fsutil.h"
#include "iac/strbuf.h"
#include "intr.h"
#include "plan.h"
#include "plantext.h"
#include "state.h"

#define FT_TICK_MS 10000L

static const ft_flag_spec ft_apply_flags[] = {
    { "auto-approve", true, FT_FLAG_USED },
    { "no-color", true, FT_FLAG_USED },
    { "input", true, FT_FLAG_USED },
    { "var-file", false, FT_FLAG_USED },
    { "var", false, FT_FLAG_USED },
    { "refresh-only", true, FT_FLAG_USED },
    { "destroy", true, FT_FLAG_USED },
    { "refresh", true, FT_FLAG_USED },
    { "target", false, FT_FLAG_USED },
    { "replace", false, FT_FLAG_USED },
    { "lock", true, FT_FLAG_IGNORED },
    { "lock-timeout", false, FT_FLAG_IGNORED },
    { "parallelism", false, FT_FLAG_IGNORED },
    { "compact-warnings", true, FT_FLAG_IGNORED },
    { "backup", false, FT_FLAG_IGNORED },
    { "state", false, FT_FLAG_IGNORED },
    { "state-out", false, FT_FLAG_IGNORED },
    { "json", true, FT_FLAG_UNSUPPORTED },
    { NULL, false, FT_FLAG_USED },
};

typedef enum { FT_STEP_CREATE, FT_STEP_UPDATE, FT_STEP_DELETE } ft_step;

/* Progress line texts per step; the start and "still" lines of an existing object carry its id. */
static const struct {
    const char *start, *still, *done;
    bool        id_on_start, id_on_done;
} ft_steps[] = {
    [FT_STEP_CREATE] = { "Creating...", "Still creating...", "Creation complete", false, true },
    [FT_STEP_UPDATE] = { "Modifying...", "Still modifying...", "Modifications complete", true, true },
    [FT_STEP_DELETE] = { "Destroying...", "Still destroying...", "Destruction complete", true, false },
};

typedef struct {
    const ft_ctx *c;
    ft_state      st;
    char         *prior_bytes; /* the state file as it was, for terraform.tfstate.backup; NULL if none */
    size_t        prior_len;
    bool          backed_up;
    int           added, changed, destroyed;
} ft_apply;

/* terraform's duration format: 0s, 59s, 1m5s, 1h2m3s. */
static void ft_elapsed(long ms, char *buf, size_t len)
{
    long s = ms / 1000;
    if (s < 60)
        snprintf(buf, len, "%lds", s);
    else if (s < 3600)
        snprintf(buf, len, "%ldm%lds", s / 60, s % 60);
    else
        snprintf(buf, len, "%ldh%ldm%lds", s / 3600, s / 60 % 60, s % 60);
}

/* Saves the state; a failure is reported here and returned as -EIO ("already reported"). */
static int ft_apply_save(ft_apply *ap)
{
    if (!ap->backed_up && ap->prior_bytes) {
        fs_write_atomic(FT_STATE_BACKUP, ap->prior_bytes, ap->prior_len, 0644); /* best effort, as terraform */
        ap->backed_up = true;
    }
    int rc = ft_state_save(FT_STATE_FILE, &ap->st, ap->c->k->version);
    if (rc < 0) {
        ft_err e;
        ft_err_set(&e, "Failed to save state", "Error saving state: %s", strerror(-rc));
        ft_diag_error(ap->c->boxed, &e);
    }
    return rc < 0 ? -EIO : 0;
}

static void ft_step_start(ft_step s, const char *addr, const char *id)
{
    if (ft_steps[s].id_on_start)
        printf("%s: %s [id=%s]\n", addr, ft_steps[s].start, id);
    else
        printf("%s: %s\n", addr, ft_steps[s].start);
    fflush(stdout);
}

/* The provider's work: the delay (not cut short by an interrupt: a resource being changed finishes), with
 * terraform's "Still …" line every 10 s, then the completion line. */
static void ft_step_finish(const ft_apply *ap, ft_step s, const char *addr, const char *id)
{
    long total = ap->c->k->apply_delay_ms, done = 0;
    while (done < total) {
        long chunk = total - done < FT_TICK_MS ? total - done : FT_TICK_MS;
        ft_intr_sleep(chunk, false);
        done += chunk;
        if (done % FT_TICK_MS == 0 && done < total) {
            char el[32];
            ft_elapsed(done, el, sizeof el);
            if (ft_steps[s].id_on_start)
                printf("%s: %s [id=%s, %s elapsed]\n", addr, ft_steps[s].still, id, el);
            else
                printf("%s: %s [%s elapsed]\n", addr, ft_steps[s].still, el);
            fflush(stdout);
        }
    }
    char el[32];
    ft_elapsed(total, el, sizeof el);
    if (ft_steps[s].id_on_done)
        printf("%s: %s after %s [id=%s]\n", addr, ft_steps[s].done, el, id);
    else
        printf("%s: %s after %s\n", addr, ft_steps[s].done, el);
    fflush(stdout);
}

static bool ft_is(const cJSON *acts, const char *a0, const char *a1)
{
    const cJSON *x = cJSON_GetArrayItem(acts, 0), *y = cJSON_GetArrayItem(acts, 1);
    if (!cJSON_IsString(x) || strcmp(x->valuestring, a0) != 0)
        return false;
    return a1 ? cJSON_IsString(y) && strcmp(y->valuestring, a1) == 0 : y == NULL;
}

/* Creates the object planned in rc (after + a new id) in the state. */
static int ft_apply_create(ft_apply *ap, const cJSON *rc, const char *addr)
{
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(rc, "change");
    const char *module = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rc, "module_address"));
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rc, "type"));
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rc, "name"));
    const cJSON *after = cJSON_GetObjectItemCaseSensitive(ch, "after");
    cJSON *attrs = cJSON_IsObject(after) ? cJSON_Duplicate(after, 1) : cJSON_CreateObject();
    char id[FT_ID_LEN];
    if (!type || !name || !attrs) {
        cJSON_Delete(attrs);
        return -EINVAL;
    }
    ft_step_start(FT_STEP_CREATE, addr, "");
    ft_state_new_id(addr, attrs, ap->st.serial, id);
    ft_step_finish(ap, FT_STEP_CREATE, addr, id);
    cJSON_DeleteItemFromObjectCaseSensitive(attrs, "id");
    cJSON_AddStringToObject(attrs, "id", id);
    ft_res r;
    ft_res_list_remove(&ap->st.res, addr);
    if (ft_res_init(&r, module, type, name, attrs) < 0 || ft_res_list_add(&ap->st.res, &r, true) < 0)
        return -ENOMEM;
    ft_res_list_sort(&ap->st.res);
    ap->added++;
    return ft_apply_save(ap);
}

static int ft_apply_delete(ft_apply *ap, const char *addr, bool count)
{
    const ft_res *r = ft_res_list_find(&ap->st.res, addr);
    char id[FT_ID_LEN + 64];
    snprintf(id, sizeof id, "%s", r ? ft_res_id(r) : "");
    ft_step_start(FT_STEP_DELETE, addr, id);
    ft_step_finish(ap, FT_STEP_DELETE, addr, id);
    ft_res_list_remove(&ap->st.res, addr);
    ap->destroyed += count;
    return ft_apply_save(ap);
}

static int ft_apply_update(ft_apply *ap, const cJSON *rc, const char *addr)
{
    ft_res *r = ft_res_list_find(&ap->st.res, addr);
    const cJSON *after = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(rc, "change"), "after");
    if (!r || !cJSON_IsObject(after))
        return -EINVAL;
    char id[FT_ID_LEN + 64];
    snprintf(id, sizeof id, "%s", ft_res_id(r));
    ft_step_start(FT_STEP_UPDATE, addr, id);
    ft_step_finish(ap, FT_STEP_UPDATE, addr, id);
    cJSON *attrs = cJSON_Duplicate(after, 1);
    if (!attrs)
        return -ENOMEM;
    ft_json_sort(attrs);
    cJSON_Delete(r->attrs);
    r->attrs = attrs;
    ap->changed++;
    return ft_apply_save(ap);
}

/* Refuses a plan made from another state than the one on disk. */
static int ft_apply_check_prior(const ft_apply *ap, const cJSON *fake)
{
    const cJSON *prior = cJSON_GetObjectItemCaseSensitive(fake, "prior");
    bool present = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(prior, "present"));
    const char *lineage = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(prior, "lineage"));
    const cJSON *serial = cJSON_GetObjectItemCaseSensitive(prior, "serial");
    ft_err e;
    if (present && ap->st.present && lineage && ap->st.lineage && strcmp(lineage, ap->st.lineage) != 0) {
        ft_err_set(&e, "Saved plan does not match the given state",
                   "The given plan file can not be applied because it was created from a different state lineage.");
    } else if (present != ap->st.present ||
               (present && (!cJSON_IsNumber(serial) || (int64_t)serial->valuedouble != ap->st.serial))) {
        ft_err_set(&e, "Saved plan is stale",
                   "The given plan file can no longer be applied because the state was changed by another operation "
                   "after the plan was created.");
    } else {
        return 0;
    }
    ft_diag_error(ap->c->boxed, &e);
    return 1;
}

/* Output values of the new state, from the plan's expressions. */
static int ft_apply_outputs(ft_apply *ap, const cJSON *doc)
{
    const cJSON *exprs = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "fake"), "outputs");
    const cJSON *vars = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "show"), "variables");
    cJSON *outs = cJSON_CreateObject();
    if (!outs)
        return -ENOMEM;
    for (const cJSON *x = exprs ? exprs->child : NULL; x; x = x->next) {
        cJSON *v = NULL;
        ft_err e;
        if (ft_plan_eval_output(x->string, cJSON_GetObjectItemCaseSensitive(x, "value"), vars, &ap->st, &v, &e) < 0) {
            ft_diag_error(ap->c->boxed, &e);
            cJSON_Delete(outs);
            return 1;
        }
        if (!v)
            continue; /* terraform drops null outputs from the state */
        ft_json_sort(v);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "value", v);
        cJSON_AddItemToObject(o, "type", ft_cty_type(v));
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(x, "sensitive")))
            cJSON_AddTrueToObject(o, "sensitive");
        cJSON_AddItemToObject(outs, x->string, o);
    }
    ft_json_sort_top(outs);
    cJSON_Delete(ap->st.outputs);
    ap->st.outputs = outs;
    return 0;
}

static void ft_print_outputs(const cJSON *outputs)
{
    if (!outputs || !outputs->child)
        return;
    strbuf b = STRBUF_INIT;
    strbuf_puts(&b, "\nOutputs:\n\n");
    for (const cJSON *o = outputs->child; o; o = o->next) {
        strbuf_printf(&b, "%s = ", o->string);
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "sensitive")))
            strbuf_puts(&b, "<sensitive>");
        else
            ft_plantext_value(&b, cJSON_GetObjectItemCaseSensitive(o, "value"), 0, 2);
        strbuf_putc(&b, '\n');
    }
    if (b.data)
        fputs(b.data, stdout);
    strbuf_free(&b);
}

/* Applies a plan document. Returns the exit status. */
static int ft_apply_doc(const ft_ctx *c, const cJSON *doc)
{
    const cJSON *show = cJSON_GetObjectItemCaseSensitive(doc, "show");
    const cJSON *fake = cJSON_GetObjectItemCaseSensitive(doc, "fake");
    const cJSON *rcs = cJSON_GetObjectItemCaseSensitive(show, "resource_changes");
    ft_apply ap = { .c = c };
    ft_err e;
    int rc = 1;
    if (ft_state_load(FT_STATE_FILE, &ap.st, &e) < 0) {
        ft_diag_error(c->boxed, &e);
        goto out;
    }
    if (ap.st.present && fs_read_file(FT_STATE_FILE, 256u << 20, &ap.prior_bytes, &ap.prior_len) < 0)
        ap.prior_bytes = NULL;
    if (ft_apply_check_prior(&ap, fake))
        goto out;
    const cJSON *first = cJSON_IsArray(rcs) ? rcs->child : NULL;
    if (first && ft_cmd_check_init(c, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(first, "provider_name"))))
        goto out;

    ft_plan_counts n;
    ft_plan_count(show, &n);
    if (n.add + n.change + n.destroy + n.outputs > 0 || !ap.st.present)
        ap.st.serial++;
    if (!ap.st.lineage) {
        const char *l = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(fake, "lineage"));
        ap.st.lineage = strdup(l ? l : "");
        if (!ap.st.lineage)
            goto out;
    }
    if (ft_cmd_extra_output(c) == 1) {
        rc = ft_cmd_halted(c);
        goto out;
    }

    long resources = 0;
    for (const cJSON *r = first; r; r = r->next) {
        const char *addr = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "address"));
        const cJSON *acts = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "change"), "actions");
        if (!addr || ft_is(acts, "no-op", NULL))
            continue;
        if (ft_intr_requested()) {
            rc = ft_cmd_halted(c);
            goto out;
        }
        if (ft_fail_wanted(c->k, "apply") && resources == c->k->fail_after) {
            const ft_res *cur = ft_res_list_find(&ap.st.res, addr);
            ft_step_start(ft_is(acts, "create", NULL) ? FT_STEP_CREATE : ft_is(acts, "update", NULL) ? FT_STEP_UPDATE
                                                                                                       : FT_STEP_DELETE,
                          addr, cur ? ft_res_id(cur) : "");
            ft_fail_print(c->k, "apply", c->boxed, addr);
            goto out;
        }
        resources++;
        int r2;
        if (ft_is(acts, "create", NULL))
            r2 = ft_apply_create(&ap, r, addr);
        else if (ft_is(acts, "update", NULL))
            r2 = ft_apply_update(&ap, r, addr);
        else if (ft_is(acts, "delete", NULL))
            r2 = ft_apply_delete(&ap, addr, true);
        else if (ft_is(acts, "delete", "create") || ft_is(acts, "create", "delete")) {
            r2 = ft_apply_delete(&ap, addr, true);
            if (r2 == 0)
                r2 = ft_apply_create(&ap, r, addr);
        } else
            r2 = -EINVAL;
        if (r2 < 0) {
            if (r2 != -EIO) {
                ft_err_set(&e, "Failed to apply the plan", "The change to %s could not be applied: %s.", addr,
                           strerror(-r2));
                ft_diag_error(c->boxed, &e);
            }
            goto out;
        }
    }
    if (ft_fail_wanted(c->k, "apply")) { /* fewer resources than FAKE_TF_FAIL_AFTER: fail at the end */
        ft_fail_print(c->k, "apply", c->boxed, NULL);
        goto out;
    }
    if (ft_intr_requested()) {
        rc = ft_cmd_halted(c);
        goto out;
    }
    int o = ft_apply_outputs(&ap, doc);
    if (o != 0 || ft_apply_save(&ap) < 0)
        goto out;
    const char *mode = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(fake, "mode"));
    if (mode && strcmp(mode, "destroy") == 0)
        printf("\nDestroy complete! Resources: %d destroyed.\n", ap.destroyed);
    else
        printf("\nApply complete! Resources: %d added, %d changed, %d destroyed.\n", ap.added, ap.changed,
               ap.destroyed);
    ft_print_outputs(ap.st.outputs);
    rc = 0;
out:
    fflush(stdout);
    free(ap.prior_bytes);
    ft_state_free(&ap.st);
    return rc;
}

int ft_cmd_apply(const ft_ctx *c)
{
    ft_args a;
    if (ft_cmd_args(c, ft_apply_flags, &a) < 0)
        return 1;
    int rc = 1;
    cJSON *doc = NULL;
    ft_err e;
    if (a.npos > 1) {
        rc = ft_cmd_too_many(c, "Expected at most one positional argument.");
    } else if (a.npos == 1) {
        char why[600];
        if (ft_args_get(&a, "var") || ft_args_get(&a, "var-file")) {
            ft_err_set(&e, "Can't set variables when applying a saved plan",
                       "The -var and -var-file options cannot be used when applying a saved plan file, because a "
                       "saved plan includes the variable values that were set when it was created.");
            ft_diag_error(c->boxed, &e);
        } else if (ft_planfile_read(a.pos[0], &doc, why, sizeof why) < 0) {
            ft_err_set(&e, "Failed to load plan file", "Failed to read plan from plan file: %s", why);
            ft_diag_error(c->boxed, &e);
        } else {
            rc = ft_apply_doc(c, doc);
        }
    } else if ((rc = ft_cmd_make_plan(c, &a, NULL, true, &doc)) == 0) {
        ft_plan_counts n;
        ft_plan_count(cJSON_GetObjectItemCaseSensitive(doc, "show"), &n);
        if (n.add + n.change + n.destroy + n.outputs > 0 && !ft_args_bool(&a, "auto-approve")) {
            ft_err_set(&e, "Apply requires confirmation",
                       "fake-terraform never reads standard input: use -auto-approve, or apply a saved plan file.");
            ft_diag_error(c->boxed, &e);
            rc = 1;
        } else {
            fputs("\n", stdout);
            rc = ft_apply_doc(c, doc);
        }
    }
    cJSON_Delete(doc);
    ft_args_free(&a);
    return rc;
}
