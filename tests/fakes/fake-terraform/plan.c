/* plan.c — configuration + state → plan document, and the plan file; see plan.h. */
#include "plan.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval.h"
#include "iac/digest.h"
#include "iac/fsutil.h"
#include "iac/json.h"
#include "iac/jsonw.h"
#include "iac/strbuf.h"
#include "knobs.h"

#define FT_PLAN_MAGIC "tfplan-fake\0\1\0\0\0"
#define FT_PLAN_MAGIC_LEN 16
#define FT_PLAN_MAX (512u << 20)
#define FT_PLAN_TIMESTAMP "2024-01-01T00:00:00Z" /* fixed: the same inputs must give the same plan file */

typedef enum { FT_ACT_SKIP, FT_ACT_NOOP, FT_ACT_CREATE, FT_ACT_UPDATE, FT_ACT_DELETE, FT_ACT_REPLACE } ft_action;

/* terraform's action lists. */
static const char *const ft_action_lists[][2] = {
    [FT_ACT_SKIP] = { NULL, NULL },         [FT_ACT_NOOP] = { "no-op", NULL },
    [FT_ACT_CREATE] = { "create", NULL },   [FT_ACT_UPDATE] = { "update", NULL },
    [FT_ACT_DELETE] = { "delete", NULL },   [FT_ACT_REPLACE] = { "delete", "create" },
};

typedef struct {
    const ft_res *want;   /* from the configuration, NULL when absent */
    const ft_res *have;   /* from the state, NULL when absent */
    ft_action     act;
    const char   *reason; /* action_reason, or NULL */
} ft_decision;

typedef struct {
    ft_decision *d;
    size_t       n;
} ft_decisions;

static bool ft_targeted(const ft_plan_opts *o, const char *address)
{
    if (o->ntargets == 0)
        return true;
    for (size_t i = 0; i < o->ntargets; i++) {
        size_t n = strlen(o->targets[i]);
        if (strncmp(address, o->targets[i], n) == 0 && (address[n] == '\0' || address[n] == '.' || address[n] == '['))
            return true;
    }
    return false;
}

static bool ft_replace_requested(const ft_plan_opts *o, const char *address)
{
    for (size_t i = 0; i < o->nreplace; i++)
        if (strcmp(o->replace[i], address) == 0)
            return true;
    return ft_list_has(o->force_replace, address, false);
}

/* The state's attributes compared with the configuration's: "id" is computed, not configured. */
static bool ft_attrs_equal(const ft_res *want, const ft_res *have)
{
    cJSON *h = cJSON_Duplicate(have->attrs, 1);
    if (!h)
        return false;
    cJSON_DeleteItemFromObjectCaseSensitive(h, "id");
    bool eq = cJSON_Compare(want->attrs, h, true);
    cJSON_Delete(h);
    return eq;
}

static void ft_decide(const ft_plan_opts *o, ft_decision *d)
{
    const char *addr = d->want ? d->want->address : d->have->address;
    if (o->mode == FT_MODE_DESTROY)
        d->want = NULL;
    if (o->mode == FT_MODE_REFRESH_ONLY || !ft_targeted(o, addr)) {
        d->act = FT_ACT_SKIP;
    } else if (d->want && !d->have) {
        d->act = FT_ACT_CREATE;
    } else if (!d->want && d->have) {
        d->act = FT_ACT_DELETE;
        d->reason = o->mode == FT_MODE_DESTROY ? NULL : "delete_because_no_resource_config";
    } else if (!d->want) {
        d->act = FT_ACT_SKIP;
    } else {
        bool requested = ft_replace_requested(o, addr);
        if (ft_attrs_equal(d->want, d->have)) {
            d->act = requested ? FT_ACT_REPLACE : FT_ACT_NOOP;
        } else {
            d->act = requested || ft_list_has(o->force_replace, "*", false) ? FT_ACT_REPLACE : FT_ACT_UPDATE;
        }
        if (d->act == FT_ACT_REPLACE && requested)
            d->reason = "replace_by_request";
    }
}

/* Merges the two sorted lists by address. */
static int ft_decisions_make(const ft_config *c, const ft_state *st, const ft_plan_opts *o, ft_decisions *ds)
{
    ds->d = calloc(c->res.n + st->res.n + 1, sizeof *ds->d);
    ds->n = 0;
    if (!ds->d)
        return -ENOMEM;
    size_t i = 0, j = 0;
    while (i < c->res.n || j < st->res.n) {
        ft_decision *d = &ds->d[ds->n++];
        int cmp = i == c->res.n ? 1 : j == st->res.n ? -1 : strcmp(c->res.v[i].address, st->res.v[j].address);
        if (cmp <= 0)
            d->want = &c->res.v[i++];
        if (cmp >= 0)
            d->have = &st->res.v[j++];
        ft_decide(o, d);
    }
    return 0;
}

static cJSON *ft_dup(const cJSON *v)
{
    return v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull();
}

/* --- output evaluation ----------------------------------------------------------------------------------- */

typedef struct {
    const cJSON        *vars;  /* name → value */
    const ft_state     *st;    /* where known values come from */
    const ft_decisions *ds;    /* plan time: what changes; NULL at apply time (everything is known) */
} ft_out_ctx;

/* Splits "module.M.rest" into "module.M" + rest, "T.N.rest" into "T.N" + rest. */
static void ft_ref_split(const char *ref, char *head, size_t hlen, const char **rest)
{
    const char *p = strchr(ref, '.');
    p = p ? strchr(p + 1, '.') : NULL;
    size_t n = p ? (size_t)(p - ref) : strlen(ref);
    snprintf(head, hlen, "%.*s", (int)n, ref);
    *rest = p ? p + 1 : "";
}

/* The value at path rest of a resource's attributes: a missing attribute of a module's stand-in resource is
 * looked up among its inputs, then falls back to its id (module outputs are not modelled); elsewhere it is
 * null. */
static cJSON *ft_attr_path(const ft_res *r, const char *rest)
{
    if (!*rest)
        return cJSON_Duplicate(r->attrs, 1);
    const cJSON *v = r->attrs;
    char *path = strdup(rest);
    if (!path)
        return NULL;
    for (char *save = NULL, *part = strtok_r(path, ".", &save); part && v; part = strtok_r(NULL, ".", &save))
        v = cJSON_GetObjectItemCaseSensitive(v, part);
    free(path);
    if (!v && r->module) {
        v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r->attrs, "triggers"), rest);
        if (!v)
            v = cJSON_GetObjectItemCaseSensitive(r->attrs, "id");
    }
    return v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull();
}

static ft_lookup_result ft_out_lookup(void *vctx, ft_ref_kind kind, const char *ref, cJSON **out)
{
    ft_out_ctx *ctx = vctx;
    if (kind == FT_REF_OTHER)
        return FT_LOOKUP_LITERAL;
    if (kind == FT_REF_VAR) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(ctx->vars, ref + 4);
        if (!v)
            return FT_LOOKUP_MISSING;
        *out = cJSON_Duplicate(v, 1);
        return *out ? FT_LOOKUP_KNOWN : FT_LOOKUP_LITERAL;
    }
    char head[512];
    const char *rest;
    ft_ref_split(ref, head, sizeof head, &rest);
    bool module = strncmp(head, "module.", 7) == 0;
    const ft_res *found = NULL;
    if (ctx->ds) {
        bool declared = false;
        for (size_t i = 0; i < ctx->ds->n; i++) {
            const ft_decision *d = &ctx->ds->d[i];
            if (!d->want)
                continue;
            bool match = module ? d->want->module && strcmp(d->want->module, head) == 0
                                : !d->want->module && strcmp(d->want->address, head) == 0;
            if (!match)
                continue;
            declared = true;
            if (d->act == FT_ACT_CREATE || d->act == FT_ACT_UPDATE || d->act == FT_ACT_REPLACE || !d->have)
                return FT_LOOKUP_UNKNOWN;
            found = d->have;
        }
        if (!declared)
            return FT_LOOKUP_MISSING;
    } else {
        for (size_t i = 0; i < ctx->st->res.n && !found; i++) {
            const ft_res *r = &ctx->st->res.v[i];
            if (module ? r->module && strcmp(r->module, head) == 0 : !r->module && strcmp(r->address, head) == 0)
                found = r;
        }
        if (!found)
            return FT_LOOKUP_MISSING;
    }
    *out = ft_attr_path(found, rest);
    return *out ? FT_LOOKUP_KNOWN : FT_LOOKUP_LITERAL;
}

static int ft_eval_fail(ft_err *e, const char *output, const char *missing)
{
    if (strncmp(missing, "var.", 4) == 0)
        return ft_err_set(e, "Reference to undeclared input variable",
                          "  in output \"%s\":\n\nAn input variable with the name \"%s\" has not been declared. This "
                          "variable can be declared with a variable \"%s\" {} block.", output, missing + 4,
                          missing + 4);
    if (strncmp(missing, "module.", 7) == 0)
        return ft_err_set(e, "Reference to undeclared module",
                          "  in output \"%s\":\n\nNo module call named \"%s\" is declared in the root module.", output,
                          missing + 7);
    return ft_err_set(e, "Reference to undeclared resource",
                      "  in output \"%s\":\n\nA managed resource \"%s\" has not been declared in the root module.",
                      output, missing);
}

int ft_plan_eval_output(const char *name, const cJSON *expr, const cJSON *variables, const ft_state *st,
                        cJSON **out, ft_err *e)
{
    /* The plan records variables as {"name": {"value": v}}. */
    cJSON *vars = cJSON_CreateObject();
    if (!vars)
        return ft_err_set(e, "Out of memory", NULL);
    for (const cJSON *v = variables ? variables->child : NULL; v; v = v->next)
        cJSON_AddItemToObject(vars, v->string, ft_dup(cJSON_GetObjectItemCaseSensitive(v, "value")));
    ft_out_ctx ctx = { vars, st, NULL };
    char missing[256];
    int rc = ft_eval(expr, ft_out_lookup, &ctx, out, missing, sizeof missing);
    cJSON_Delete(vars);
    if (rc == -1)
        return ft_eval_fail(e, name, missing);
    if (rc < 0)
        return ft_err_set(e, "Out of memory", NULL);
    if (*out && cJSON_IsNull(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
    }
    return 0;
}

/* --- the show document ----------------------------------------------------------------------------------- */

static cJSON *ft_actions(ft_action a)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < 2 && ft_action_lists[a][i]; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(ft_action_lists[a][i]));
    return arr;
}

/* The attributes after the change: the configuration's, plus the known id when the object is kept. */
static cJSON *ft_after(const ft_decision *d)
{
    switch (d->act) {
    case FT_ACT_CREATE:
    case FT_ACT_REPLACE:
        return cJSON_Duplicate(d->want->attrs, 1);
    case FT_ACT_UPDATE: {
        cJSON *a = cJSON_Duplicate(d->want->attrs, 1);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(d->have->attrs, "id");
        if (a && id)
            cJSON_AddItemToObject(a, "id", cJSON_Duplicate(id, 1));
        ft_json_sort(a);
        return a;
    }
    case FT_ACT_NOOP:
    case FT_ACT_SKIP:
        return d->have ? cJSON_Duplicate(d->have->attrs, 1) : NULL;
    case FT_ACT_DELETE:
        return NULL;
    }
    return NULL;
}

static cJSON *ft_change_entry(const ft_decision *d)
{
    const ft_res *r = d->want ? d->want : d->have;
    cJSON *o = cJSON_CreateObject(), *ch = cJSON_CreateObject();
    if (!o || !ch) {
        cJSON_Delete(o);
        cJSON_Delete(ch);
        return NULL;
    }
    cJSON_AddStringToObject(o, "address", r->address);
    if (r->module)
        cJSON_AddStringToObject(o, "module_address", r->module);
    cJSON_AddStringToObject(o, "mode", "managed");
    cJSON_AddStringToObject(o, "type", r->type);
    cJSON_AddStringToObject(o, "name", r->name);
    cJSON_AddStringToObject(o, "provider_name", r->provider);
    cJSON_AddItemToObject(ch, "actions", ft_actions(d->act));
    cJSON_AddItemToObject(ch, "before", ft_dup(d->have ? d->have->attrs : NULL));
    cJSON *after = ft_after(d);
    cJSON_AddItemToObject(ch, "after", after ? after : cJSON_CreateNull());
    cJSON *unknown = cJSON_CreateObject();
    if (d->act == FT_ACT_CREATE || d->act == FT_ACT_REPLACE)
        cJSON_AddTrueToObject(unknown, "id");
    cJSON_AddItemToObject(ch, "after_unknown", unknown);
    cJSON_AddItemToObject(ch, "before_sensitive", d->have ? cJSON_CreateObject() : cJSON_CreateFalse());
    cJSON_AddItemToObject(ch, "after_sensitive", d->act == FT_ACT_DELETE ? cJSON_CreateFalse() : cJSON_CreateObject());
    cJSON_AddItemToObject(o, "change", ch);
    if (d->reason)
        cJSON_AddStringToObject(o, "action_reason", d->reason);
    return o;
}

/* A resource in a values representation (planned_values, prior_state). Takes values. */
static cJSON *ft_values_resource(const ft_res *r, cJSON *values)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) {
        cJSON_Delete(values);
        return NULL;
    }
    cJSON_AddStringToObject(o, "address", r->address);
    cJSON_AddStringToObject(o, "mode", "managed");
    cJSON_AddStringToObject(o, "type", r->type);
    cJSON_AddStringToObject(o, "name", r->name);
    cJSON_AddStringToObject(o, "provider_name", r->provider);
    cJSON_AddNumberToObject(o, "schema_version", 0);
    cJSON_AddItemToObject(o, "values", values ? values : cJSON_CreateObject());
    cJSON_AddItemToObject(o, "sensitive_values", cJSON_CreateObject());
    return o;
}

/* Adds a resource to root_module, or to the child module it belongs to (created on first use). */
static void ft_values_add(cJSON *root, const ft_res *r, cJSON *values)
{
    cJSON *entry = ft_values_resource(r, values);
    if (!entry)
        return;
    cJSON *mod = root;
    if (r->module) {
        cJSON *children = cJSON_GetObjectItemCaseSensitive(root, "child_modules");
        if (!children)
            children = cJSON_AddArrayToObject(root, "child_modules");
        mod = NULL;
        for (cJSON *c = children ? children->child : NULL; c && !mod; c = c->next)
            if (strcmp(cJSON_GetObjectItemCaseSensitive(c, "address")->valuestring, r->module) == 0)
                mod = c;
        if (!mod && children) {
            mod = cJSON_CreateObject();
            cJSON_AddArrayToObject(mod, "resources");
            cJSON_AddStringToObject(mod, "address", r->module);
            cJSON_AddItemToArray(children, mod);
        }
        if (!mod) {
            cJSON_Delete(entry);
            return;
        }
    }
    cJSON *list = cJSON_GetObjectItemCaseSensitive(mod, "resources");
    if (!list) {
        /* keep terraform's member order: resources before child_modules */
        list = cJSON_CreateArray();
        cJSON_AddItemToObject(mod, "resources", list);
        cJSON *cm = cJSON_GetObjectItemCaseSensitive(mod, "child_modules");
        if (cm) {
            cJSON_DetachItemViaPointer(mod, cm);
            cJSON_AddItemToObject(mod, "child_modules", cm);
        }
    }
    cJSON_AddItemToArray(list, entry);
}

static cJSON *ft_output_value_entry(bool sensitive, const cJSON *value)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddBoolToObject(o, "sensitive", sensitive);
    if (value) {
        cJSON_AddItemToObject(o, "type", ft_cty_type(value));
        cJSON_AddItemToObject(o, "value", cJSON_Duplicate(value, 1));
    }
    return o;
}

cJSON *ft_plan_state_json(const ft_state *st, const char *tf_version)
{
    cJSON *ps = cJSON_CreateObject(), *values = cJSON_CreateObject(), *outputs = cJSON_CreateObject();
    cJSON *root = cJSON_CreateObject();
    if (!ps || !values || !outputs || !root) {
        cJSON_Delete(ps);
        cJSON_Delete(values);
        cJSON_Delete(outputs);
        cJSON_Delete(root);
        return NULL;
    }
    cJSON_AddStringToObject(ps, "format_version", "1.0");
    cJSON_AddStringToObject(ps, "terraform_version", st->tf_version ? st->tf_version : tf_version);
    for (const cJSON *o = st->outputs->child; o; o = o->next)
        cJSON_AddItemToObject(outputs, o->string,
                              ft_output_value_entry(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "sensitive")),
                                                    cJSON_GetObjectItemCaseSensitive(o, "value")));
    ft_json_sort_top(outputs);
    if (cJSON_GetArraySize(outputs))
        cJSON_AddItemToObject(values, "outputs", outputs);
    else
        cJSON_Delete(outputs);
    for (size_t i = 0; i < st->res.n; i++)
        ft_values_add(root, &st->res.v[i], cJSON_Duplicate(st->res.v[i].attrs, 1));
    cJSON_AddItemToObject(values, "root_module", root);
    cJSON_AddItemToObject(ps, "values", values);
    return ps;
}

/* {"constant_value": v} or {"references": […]} for the configuration section. */
static cJSON *ft_expression(const cJSON *v)
{
    cJSON *e = cJSON_CreateObject();
    if (!e)
        return NULL;
    if (ft_eval_has_template(v)) {
        cJSON *refs = cJSON_AddArrayToObject(e, "references");
        if (refs)
            ft_eval_references(v, refs);
    } else {
        cJSON_AddItemToObject(e, "constant_value", cJSON_Duplicate(v, 1));
    }
    return e;
}

static cJSON *ft_expressions(const cJSON *body, const char *const *skip, size_t nskip)
{
    cJSON *o = cJSON_CreateObject();
    for (const cJSON *k = body ? body->child : NULL; k && o; k = k->next) {
        bool meta = false;
        for (size_t i = 0; i < nskip && !meta; i++)
            meta = strcmp(skip[i], k->string) == 0;
        if (!meta)
            cJSON_AddItemToObject(o, k->string, ft_expression(k));
    }
    ft_json_sort_top(o);
    return o;
}

static cJSON *ft_config_resource(const ft_res *r, const char *address, const cJSON *body)
{
    static const char *const meta[] = { "count", "for_each", "depends_on", "provider", "lifecycle", "provisioner",
                                        "connection", "//" };
    char local[128];
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "address", address);
    cJSON_AddStringToObject(o, "mode", "managed");
    cJSON_AddStringToObject(o, "type", r->type);
    cJSON_AddStringToObject(o, "name", r->name);
    cJSON_AddStringToObject(o, "provider_config_key", ft_provider_local(r->type, local, sizeof local));
    cJSON_AddItemToObject(o, "expressions", ft_expressions(body, meta, sizeof meta / sizeof meta[0]));
    cJSON_AddNumberToObject(o, "schema_version", 0);
    return o;
}

static cJSON *ft_configuration(const ft_config *c)
{
    static const char *const module_meta[] = { "source", "version", "providers", "count", "for_each",
                                               "depends_on", "//" };
    cJSON *cfg = cJSON_CreateObject(), *providers = cJSON_CreateObject(), *root = cJSON_CreateObject();
    if (!cfg || !providers || !root) {
        cJSON_Delete(cfg);
        cJSON_Delete(providers);
        cJSON_Delete(root);
        return NULL;
    }
    for (size_t i = 0; i < c->res.n; i++) {
        char local[128];
        ft_provider_local(c->res.v[i].type, local, sizeof local);
        if (cJSON_GetObjectItemCaseSensitive(providers, local))
            continue;
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "name", local);
        cJSON_AddStringToObject(p, "full_name", c->res.v[i].provider);
        cJSON_AddItemToObject(providers, local, p);
    }
    ft_json_sort_top(providers);
    cJSON_AddItemToObject(cfg, "provider_config", providers);

    if (c->nouts) {
        cJSON *outs = cJSON_AddObjectToObject(root, "outputs");
        for (size_t i = 0; i < c->nouts && outs; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddItemToObject(o, "expression", ft_expression(c->outs[i].value));
            if (c->outs[i].sensitive)
                cJSON_AddTrueToObject(o, "sensitive");
            cJSON_AddItemToObject(outs, c->outs[i].name, o);
        }
    }
    const cJSON *resource = cJSON_GetObjectItemCaseSensitive(c->blocks, "resource");
    cJSON *resources = cJSON_CreateArray();
    for (size_t i = 0; i < c->res.n && resources; i++) {
        const ft_res *r = &c->res.v[i];
        if (r->module)
            continue;
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(resource, r->type);
        const cJSON *body = ft_config_body(cJSON_GetObjectItemCaseSensitive(type, r->name));
        cJSON_AddItemToArray(resources, ft_config_resource(r, r->address, body));
    }
    if (cJSON_GetArraySize(resources))
        cJSON_AddItemToObject(root, "resources", resources);
    else
        cJSON_Delete(resources);
    if (c->nmods) {
        const cJSON *module = cJSON_GetObjectItemCaseSensitive(c->blocks, "module");
        cJSON *calls = cJSON_AddObjectToObject(root, "module_calls");
        for (size_t i = 0; i < c->nmods && calls; i++) {
            const ft_module_call *m = &c->mods[i];
            const cJSON *body = ft_config_body(cJSON_GetObjectItemCaseSensitive(module, m->name));
            char addr[300];
            snprintf(addr, sizeof addr, "module.%s.null_resource.this", m->name);
            cJSON *call = cJSON_CreateObject(), *inner = cJSON_CreateObject(), *list = cJSON_CreateArray();
            cJSON_AddStringToObject(call, "source", m->source);
            cJSON_AddItemToObject(call, "expressions",
                                  ft_expressions(body, module_meta, sizeof module_meta / sizeof module_meta[0]));
            const ft_res *stand_in = ft_res_list_find(&c->res, addr);
            if (stand_in && list)
                cJSON_AddItemToArray(list, ft_config_resource(stand_in, "null_resource.this", NULL));
            cJSON_AddItemToObject(inner, "resources", list);
            cJSON_AddItemToObject(call, "module", inner);
            if (m->version)
                cJSON_AddStringToObject(call, "version_constraint", m->version);
            cJSON_AddItemToObject(calls, m->name, call);
        }
        ft_json_sort_top(calls);
    }
    const cJSON *decls = cJSON_GetObjectItemCaseSensitive(c->blocks, "variable");
    if (cJSON_GetArraySize(decls)) {
        cJSON *vars = cJSON_AddObjectToObject(root, "variables");
        for (const cJSON *d = decls->child; d && vars; d = d->next) {
            const cJSON *body = ft_config_body(d);
            cJSON *v = cJSON_CreateObject();
            static const char *const keep[] = { "default", "description", "sensitive" };
            for (size_t k = 0; k < sizeof keep / sizeof keep[0] && v; k++) {
                const cJSON *x = cJSON_GetObjectItemCaseSensitive(body, keep[k]);
                if (x)
                    cJSON_AddItemToObject(v, keep[k], cJSON_Duplicate(x, 1));
            }
            cJSON_AddItemToObject(vars, d->string, v);
        }
        ft_json_sort_top(vars);
    }
    cJSON_AddItemToObject(cfg, "root_module", root);
    return cfg;
}

/* output_changes, planned output values, and the expressions apply will evaluate. */
static int ft_plan_outputs(const ft_config *c, const ft_state *st, const ft_plan_opts *o, const ft_decisions *ds,
                           cJSON *changes, cJSON *planned, cJSON *exprs, ft_err *e)
{
    ft_out_ctx ctx = { c->vars, st, ds };
    for (size_t i = 0; i < c->nouts && o->mode != FT_MODE_DESTROY; i++) {
        const ft_output_cfg *oc = &c->outs[i];
        const cJSON *prior = cJSON_GetObjectItemCaseSensitive(st->outputs, oc->name);
        const cJSON *before = cJSON_GetObjectItemCaseSensitive(prior, "value");
        cJSON *after = NULL;
        if (o->mode == FT_MODE_REFRESH_ONLY) {
            if (!before)
                continue;
            after = cJSON_Duplicate(before, 1);
        } else {
            char missing[256];
            int rc = ft_eval(oc->value, ft_out_lookup, &ctx, &after, missing, sizeof missing);
            if (rc == -1)
                return ft_eval_fail(e, oc->name, missing);
            if (rc < 0)
                return ft_err_set(e, "Out of memory", NULL);
        }
        const char *act = !before ? "create" : !after || !cJSON_Compare(before, after, true) ? "update" : "no-op";
        cJSON *ch = cJSON_CreateObject(), *acts = cJSON_CreateArray();
        cJSON_AddItemToArray(acts, cJSON_CreateString(act));
        cJSON_AddItemToObject(ch, "actions", acts);
        cJSON_AddItemToObject(ch, "before", ft_dup(before));
        if (after)
            cJSON_AddItemToObject(ch, "after", cJSON_Duplicate(after, 1));
        cJSON_AddBoolToObject(ch, "after_unknown", after == NULL);
        bool was_sensitive = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(prior, "sensitive"));
        cJSON_AddBoolToObject(ch, "before_sensitive", was_sensitive);
        cJSON_AddBoolToObject(ch, "after_sensitive", oc->sensitive);
        cJSON_AddItemToObject(changes, oc->name, ch);
        cJSON_AddItemToObject(planned, oc->name, ft_output_value_entry(oc->sensitive, after));
        cJSON *x = cJSON_CreateObject();
        cJSON_AddItemToObject(x, "value", cJSON_Duplicate(oc->value, 1));
        cJSON_AddBoolToObject(x, "sensitive", oc->sensitive);
        cJSON_AddItemToObject(exprs, oc->name, x);
        cJSON_Delete(after);
    }
    for (const cJSON *p = st->outputs->child; p; p = p->next) {
        if (cJSON_GetObjectItemCaseSensitive(changes, p->string))
            continue;
        bool keep = o->mode == FT_MODE_REFRESH_ONLY;
        const cJSON *before = cJSON_GetObjectItemCaseSensitive(p, "value");
        bool sens = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "sensitive"));
        cJSON *ch = cJSON_CreateObject(), *acts = cJSON_CreateArray();
        cJSON_AddItemToArray(acts, cJSON_CreateString(keep ? "no-op" : "delete"));
        cJSON_AddItemToObject(ch, "actions", acts);
        cJSON_AddItemToObject(ch, "before", ft_dup(before));
        cJSON_AddItemToObject(ch, "after", keep ? ft_dup(before) : cJSON_CreateNull());
        cJSON_AddFalseToObject(ch, "after_unknown");
        cJSON_AddBoolToObject(ch, "before_sensitive", sens);
        cJSON_AddBoolToObject(ch, "after_sensitive", keep && sens);
        cJSON_AddItemToObject(changes, p->string, ch);
        if (keep) {
            cJSON_AddItemToObject(planned, p->string, ft_output_value_entry(sens, before));
            cJSON *x = cJSON_CreateObject();
            cJSON_AddItemToObject(x, "value", ft_dup(before));
            cJSON_AddBoolToObject(x, "sensitive", sens);
            cJSON_AddItemToObject(exprs, p->string, x);
        }
    }
    ft_json_sort_top(changes);
    ft_json_sort_top(planned);
    return 0;
}

static void ft_add_or_drop(cJSON *parent, const char *key, cJSON *v)
{
    if (cJSON_GetArraySize(v) > 0)
        cJSON_AddItemToObject(parent, key, v);
    else
        cJSON_Delete(v);
}

int ft_plan_build(const ft_config *c, const ft_state *st, const ft_plan_opts *o, cJSON **doc, ft_err *e)
{
    *doc = NULL;
    ft_decisions ds;
    if (ft_decisions_make(c, st, o, &ds) < 0)
        return ft_err_set(e, "Out of memory", NULL);
    cJSON *show = cJSON_CreateObject(), *vars = cJSON_CreateObject(), *planned = cJSON_CreateObject();
    cJSON *proot = cJSON_CreateObject(), *pouts = cJSON_CreateObject(), *changes = cJSON_CreateArray();
    cJSON *ochanges = cJSON_CreateObject(), *exprs = cJSON_CreateObject(), *fake = cJSON_CreateObject();
    int rc = show && vars && planned && proot && pouts && changes && ochanges && exprs && fake
                 ? 0
                 : ft_err_set(e, "Out of memory", NULL);
    if (rc == 0)
        rc = ft_plan_outputs(c, st, o, &ds, ochanges, pouts, exprs, e);
    if (rc < 0) {
        cJSON *all[] = { show, vars, planned, proot, pouts, changes, ochanges, exprs, fake };
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            cJSON_Delete(all[i]);
        free(ds.d);
        return -1;
    }
    for (const cJSON *v = c->vars ? c->vars->child : NULL; v; v = v->next) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddItemToObject(x, "value", cJSON_Duplicate(v, 1));
        cJSON_AddItemToObject(vars, v->string, x);
    }
    ft_json_sort_top(vars);
    for (size_t i = 0; i < ds.n; i++) {
        const ft_decision *d = &ds.d[i];
        if (d->act != FT_ACT_SKIP)
            cJSON_AddItemToArray(changes, ft_change_entry(d));
        if (d->act != FT_ACT_DELETE && (d->act != FT_ACT_SKIP || d->have))
            ft_values_add(proot, d->want && d->act != FT_ACT_SKIP ? d->want : d->have, ft_after(d));
    }

    cJSON_AddStringToObject(show, "format_version", "1.2");
    cJSON_AddStringToObject(show, "terraform_version", o->tf_version);
    ft_add_or_drop(show, "variables", vars);
    ft_add_or_drop(planned, "outputs", pouts);
    cJSON_AddItemToObject(planned, "root_module", proot);
    cJSON_AddItemToObject(show, "planned_values", planned);
    ft_add_or_drop(show, "resource_changes", changes);
    ft_add_or_drop(show, "output_changes", ochanges);
    if (st->present && !ft_state_empty(st))
        cJSON_AddItemToObject(show, "prior_state", ft_plan_state_json(st, o->tf_version));
    cJSON_AddItemToObject(show, "configuration", ft_configuration(c));
    cJSON_AddStringToObject(show, "timestamp", FT_PLAN_TIMESTAMP);
    cJSON_AddFalseToObject(show, "errored");

    static const char *const modes[] = { "normal", "refresh-only", "destroy" };
    cJSON_AddStringToObject(fake, "mode", modes[o->mode]);
    cJSON *prior = cJSON_AddObjectToObject(fake, "prior");
    cJSON_AddBoolToObject(prior, "present", st->present);
    cJSON_AddStringToObject(prior, "lineage", st->lineage ? st->lineage : "");
    cJSON_AddNumberToObject(prior, "serial", (double)st->serial);
    if (st->lineage) {
        cJSON_AddStringToObject(fake, "lineage", st->lineage);
    } else {
        char lineage[FT_LINEAGE_LEN];
        char *text = ft_json_compact(show);
        ft_state_new_lineage(text ? text : "", text ? strlen(text) : 0, lineage);
        free(text);
        cJSON_AddStringToObject(fake, "lineage", lineage);
    }
    cJSON_AddItemToObject(fake, "outputs", exprs);

    *doc = cJSON_CreateObject();
    if (!*doc) {
        cJSON_Delete(show);
        cJSON_Delete(fake);
        free(ds.d);
        return ft_err_set(e, "Out of memory", NULL);
    }
    cJSON_AddItemToObject(*doc, "show", show);
    cJSON_AddItemToObject(*doc, "fake", fake);
    free(ds.d);
    return 0;
}

void ft_plan_count(const cJSON *show, ft_plan_counts *n)
{
    memset(n, 0, sizeof *n);
    const cJSON *rc = cJSON_GetObjectItemCaseSensitive(show, "resource_changes");
    for (const cJSON *r = cJSON_IsArray(rc) ? rc->child : NULL; r; r = r->next) {
        const cJSON *acts = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "change"), "actions");
        for (const cJSON *a = cJSON_IsArray(acts) ? acts->child : NULL; a; a = a->next) {
            if (!cJSON_IsString(a))
                continue;
            n->add += strcmp(a->valuestring, "create") == 0;
            n->change += strcmp(a->valuestring, "update") == 0;
            n->destroy += strcmp(a->valuestring, "delete") == 0;
        }
    }
    const cJSON *oc = cJSON_GetObjectItemCaseSensitive(show, "output_changes");
    for (const cJSON *x = cJSON_IsObject(oc) ? oc->child : NULL; x; x = x->next) {
        const cJSON *acts = cJSON_GetObjectItemCaseSensitive(x, "actions");
        const cJSON *a0 = cJSON_IsArray(acts) ? acts->child : NULL;
        if (a0 && cJSON_IsString(a0) && strcmp(a0->valuestring, "no-op") != 0)
            n->outputs++;
    }
}

/* --- plan file ------------------------------------------------------------------------------------------- */

int ft_planfile_write(const char *path, const cJSON *doc)
{
    char *json = ft_json_compact(doc);
    if (!json)
        return -ENOMEM;
    size_t jlen = strlen(json);
    size_t total = FT_PLAN_MAGIC_LEN + 8 + jlen + DIGEST_SHA256_LEN;
    uint8_t *buf = malloc(total);
    if (!buf) {
        free(json);
        return -ENOMEM;
    }
    memcpy(buf, FT_PLAN_MAGIC, FT_PLAN_MAGIC_LEN);
    for (int i = 0; i < 8; i++)
        buf[FT_PLAN_MAGIC_LEN + i] = (uint8_t)((uint64_t)jlen >> (56 - 8 * i));
    memcpy(buf + FT_PLAN_MAGIC_LEN + 8, json, jlen);
    digest_sha256(json, jlen, buf + FT_PLAN_MAGIC_LEN + 8 + jlen);
    int rc = fs_write_atomic(path, buf, total, 0644);
    free(buf);
    free(json);
    return rc;
}

int ft_planfile_read(const char *path, cJSON **doc, char *why, size_t whylen)
{
    *doc = NULL;
    char *data = NULL;
    size_t len = 0;
    int rc = fs_read_file(path, FT_PLAN_MAX, &data, &len);
    if (rc < 0) {
        snprintf(why, whylen, "open %s: %s", path, rc == -ENOENT ? "no such file or directory" : strerror(-rc));
        return -1;
    }
    const uint8_t *u = (const uint8_t *)data;
    uint64_t jlen = 0;
    if (len < FT_PLAN_MAGIC_LEN + 8 + DIGEST_SHA256_LEN || memcmp(data, FT_PLAN_MAGIC, FT_PLAN_MAGIC_LEN) != 0) {
        snprintf(why, whylen, "zip: not a valid zip file");
        free(data);
        return -1;
    }
    for (int i = 0; i < 8; i++)
        jlen = jlen << 8 | u[FT_PLAN_MAGIC_LEN + i];
    uint8_t sum[DIGEST_SHA256_LEN];
    if (jlen != len - FT_PLAN_MAGIC_LEN - 8 - DIGEST_SHA256_LEN ||
        (digest_sha256(data + FT_PLAN_MAGIC_LEN + 8, (size_t)jlen, sum),
         memcmp(sum, u + FT_PLAN_MAGIC_LEN + 8 + jlen, DIGEST_SHA256_LEN) != 0)) {
        snprintf(why, whylen, "zip: checksum error (the plan file is damaged)");
        free(data);
        return -1;
    }
    char msg[200];
    cJSON *root = json_parse_object(data + FT_PLAN_MAGIC_LEN + 8, (size_t)jlen, msg, sizeof msg);
    free(data);
    if (!root || !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(root, "show")) ||
        !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(root, "fake"))) {
        snprintf(why, whylen, "the plan file is damaged: %s", root ? "missing sections" : msg);
        cJSON_Delete(root);
        return -1;
    }
    *doc = root;
    return 0;
}
