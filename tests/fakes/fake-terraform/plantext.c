/* plantext.c — plan rendering; see plantext.h. */
#include "plantext.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "iac/jsonw.h"

typedef enum { PT_CREATE, PT_DELETE, PT_DIFF } pt_mode;

/* Header line and block symbol per action list. */
static const struct {
    const char *a0, *a1;
    const char *sym;
    const char *header;  /* after "  # ADDR " */
    const char *legend;
} pt_actions[] = {
    { "create", NULL, "+", "will be created", "  + create" },
    { "update", NULL, "~", "will be updated in-place", "  ~ update in-place" },
    { "delete", NULL, "-", "will be destroyed", "  - destroy" },
    { "delete", "create", "-/+", "must be replaced", "-/+ destroy and then create replacement" },
    { "create", "delete", "+/-", "must be replaced", "+/- create replacement and then destroy" },
};

static int pt_action_of(const cJSON *rc)
{
    const cJSON *acts = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(rc, "change"), "actions");
    const cJSON *a0 = cJSON_IsArray(acts) ? acts->child : NULL, *a1 = a0 ? a0->next : NULL;
    if (!cJSON_IsString(a0))
        return -1;
    for (size_t i = 0; i < sizeof pt_actions / sizeof pt_actions[0]; i++) {
        if (strcmp(pt_actions[i].a0, a0->valuestring) != 0)
            continue;
        if (!pt_actions[i].a1 ? !a1 : cJSON_IsString(a1) && strcmp(pt_actions[i].a1, a1->valuestring) == 0)
            return (int)i;
    }
    return -1;
}

static void pt_spaces(strbuf *b, int n)
{
    for (int i = 0; i < n; i++)
        strbuf_putc(b, ' ');
}

/* Start of a line at depth d: 4d spaces, the symbol right-aligned in 3 columns, a space. */
static void pt_line(strbuf *b, int d, const char *sym)
{
    pt_spaces(b, 4 * d + 3 - (int)strlen(sym));
    strbuf_puts(b, sym);
    strbuf_putc(b, ' ');
}

static void pt_quote(strbuf *b, const char *s)
{
    strbuf_putc(b, '"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            strbuf_putc(b, '\\');
        if (*s == '\n')
            strbuf_puts(b, "\\n");
        else
            strbuf_putc(b, *s);
    }
    strbuf_putc(b, '"');
}

static void pt_scalar(strbuf *b, const cJSON *v)
{
    if (cJSON_IsString(v))
        pt_quote(b, v->valuestring);
    else if (!v)
        strbuf_puts(b, "null");
    else
        jsonw_write(b, v, 0);
}

static bool pt_container(const cJSON *v)
{
    return (cJSON_IsObject(v) || cJSON_IsArray(v)) && v->child;
}

static int pt_key_width(const char *key, bool quoted)
{
    return (int)strlen(key) + (quoted ? 2 : 0);
}

static void pt_key(strbuf *b, const char *key, bool quoted, int width)
{
    if (quoted)
        pt_quote(b, key);
    else
        strbuf_puts(b, key);
    pt_spaces(b, width - pt_key_width(key, quoted));
}

/* A value after "key = ", every nested line marked with sym; containers close at depth d+1's margin. */
static void pt_nested(strbuf *b, const cJSON *v, int d, const char *sym)
{
    if (!pt_container(v)) {
        if (cJSON_IsObject(v))
            strbuf_puts(b, "{}");
        else if (cJSON_IsArray(v))
            strbuf_puts(b, "[]");
        else
            pt_scalar(b, v);
        return;
    }
    bool obj = cJSON_IsObject(v);
    int width = 0;
    for (const cJSON *c = v->child; c && obj; c = c->next)
        if (pt_key_width(c->string, true) > width)
            width = pt_key_width(c->string, true);
    strbuf_puts(b, obj ? "{\n" : "[\n");
    for (const cJSON *c = v->child; c; c = c->next) {
        pt_line(b, d + 1, sym);
        if (obj) {
            pt_key(b, c->string, true, width);
            strbuf_puts(b, " = ");
        }
        pt_nested(b, c, d + 1, sym);
        strbuf_puts(b, obj ? "\n" : ",\n");
    }
    pt_spaces(b, 4 * (d + 1));
    strbuf_putc(b, obj ? '}' : ']');
}

static int pt_cmp_str(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* Sorted union of the member names of up to three objects. Caller frees the array (names point into the
 * trees). */
static const char **pt_keys(const cJSON *a, const cJSON *b, const cJSON *c, size_t *n)
{
    const cJSON *objs[] = { a, b, c };
    size_t cap = 0;
    for (int i = 0; i < 3; i++)
        cap += cJSON_IsObject(objs[i]) ? (size_t)cJSON_GetArraySize(objs[i]) : 0;
    const char **keys = malloc((cap + 1) * sizeof *keys);
    *n = 0;
    if (!keys)
        return NULL;
    for (int i = 0; i < 3; i++) {
        for (const cJSON *m = cJSON_IsObject(objs[i]) ? objs[i]->child : NULL; m; m = m->next) {
            bool seen = false;
            for (size_t k = 0; k < *n && !seen; k++)
                seen = strcmp(keys[k], m->string) == 0;
            if (!seen)
                keys[(*n)++] = m->string;
        }
    }
    qsort(keys, *n, sizeof *keys, pt_cmp_str);
    return keys;
}

/* The members of one object block at depth d (lines at depth d). top: resource attributes (bare names,
 * "-> null" on deletion, id always shown); otherwise map elements (quoted keys). */
static void pt_attrs(strbuf *b, const cJSON *before, const cJSON *after, const cJSON *unknown, int d, pt_mode mode,
                     bool top)
{
    size_t n;
    const char **keys = pt_keys(mode == PT_CREATE ? NULL : before, mode == PT_DELETE ? NULL : after,
                                mode == PT_DELETE ? NULL : unknown, &n);
    if (!keys)
        return;
    bool quoted = !top;
    int width = 0, hidden = 0;
    /* First pass: which lines are shown (for the key alignment). */
    char *shown = calloc(n + 1, 1);
    if (!shown) {
        free(keys);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const cJSON *bv = cJSON_GetObjectItemCaseSensitive(before, keys[i]);
        const cJSON *av = cJSON_GetObjectItemCaseSensitive(after, keys[i]);
        bool unk = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(unknown, keys[i]));
        shown[i] = mode != PT_DIFF || unk || !bv || !av || !cJSON_Compare(bv, av, true) ||
                   (top && strcmp(keys[i], "id") == 0);
        if (shown[i] && pt_key_width(keys[i], quoted) > width)
            width = pt_key_width(keys[i], quoted);
        hidden += !shown[i];
    }
    for (size_t i = 0; i < n; i++) {
        if (!shown[i])
            continue;
        const cJSON *bv = cJSON_GetObjectItemCaseSensitive(before, keys[i]);
        const cJSON *av = cJSON_GetObjectItemCaseSensitive(after, keys[i]);
        bool unk = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(unknown, keys[i]));
        if (mode == PT_CREATE) {
            pt_line(b, d, "+");
            pt_key(b, keys[i], quoted, width);
            strbuf_puts(b, " = ");
            if (unk)
                strbuf_puts(b, "(known after apply)");
            else
                pt_nested(b, av, d, "+");
        } else if (mode == PT_DELETE) {
            pt_line(b, d, "-");
            pt_key(b, keys[i], quoted, width);
            strbuf_puts(b, " = ");
            pt_nested(b, bv, d, "-");
            if (top)
                strbuf_puts(b, " -> null");
        } else if (unk) {
            pt_line(b, d, bv ? "~" : "+");
            pt_key(b, keys[i], quoted, width);
            strbuf_puts(b, " = ");
            if (bv) {
                pt_nested(b, bv, d, "-");
                strbuf_puts(b, " -> ");
            }
            strbuf_puts(b, "(known after apply)");
        } else if (bv && av && cJSON_Compare(bv, av, true)) { /* the id, shown for context */
            pt_line(b, d, " ");
            pt_key(b, keys[i], quoted, width);
            strbuf_puts(b, " = ");
            pt_nested(b, av, d, " ");
        } else if (bv && av && cJSON_IsObject(bv) && cJSON_IsObject(av) && bv->child && av->child) {
            pt_line(b, d, "~");
            pt_key(b, keys[i], quoted, width);
            strbuf_puts(b, " = {\n");
            pt_attrs(b, bv, av, NULL, d + 1, PT_DIFF, false);
            pt_spaces(b, 4 * (d + 1));
            strbuf_putc(b, '}');
        } else if (bv && av) {
            pt_line(b, d, "~");
            pt_key(b, keys[i], quoted, width);
            strbuf_puts(b, " = ");
            pt_nested(b, bv, d, "-");
            strbuf_puts(b, " -> ");
            pt_nested(b, av, d, "+");
        } else if (av) {
            pt_line(b, d, "+");
            pt_key(b, keys[i], quoted, width);
            strbuf_puts(b, " = ");
            pt_nested(b, av, d, "+");
        } else {
            pt_line(b, d, "-");
            pt_key(b, keys[i], quoted, width);
            strbuf_puts(b, " = ");
            pt_nested(b, bv, d, "-");
            strbuf_puts(b, " -> null");
        }
        strbuf_putc(b, '\n');
    }
    if (hidden) {
        pt_spaces(b, 4 * d + 4);
        strbuf_printf(b, "# (%d unchanged %s%s hidden)\n", hidden, top ? "attribute" : "element",
                      hidden > 1 ? "s" : "");
    }
    free(shown);
    free(keys);
}

static void pt_resource(strbuf *b, const cJSON *rc, int act)
{
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(rc, "change");
    const char *addr = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rc, "address"));
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rc, "type"));
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rc, "name"));
    const char *reason = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rc, "action_reason"));
    if (!addr || !type || !name)
        return;
    const cJSON *before = cJSON_GetObjectItemCaseSensitive(ch, "before");
    const cJSON *after = cJSON_GetObjectItemCaseSensitive(ch, "after");
    const cJSON *unknown = cJSON_GetObjectItemCaseSensitive(ch, "after_unknown");
    if (reason && strcmp(reason, "replace_by_request") == 0)
        strbuf_printf(b, "  # %s will be replaced, as requested\n", addr);
    else
        strbuf_printf(b, "  # %s %s\n", addr, pt_actions[act].header);
    if (reason && strcmp(reason, "delete_because_no_resource_config") == 0)
        strbuf_printf(b, "  # (because %s is not in configuration)\n", addr);
    pt_line(b, 0, pt_actions[act].sym);
    strbuf_printf(b, "resource \"%s\" \"%s\" {\n", type, name);
    pt_mode mode = act == 0 ? PT_CREATE : act == 2 ? PT_DELETE : PT_DIFF;
    pt_attrs(b, before, after, unknown, 1, mode, true);
    strbuf_puts(b, "    }\n\n");
}

static void pt_outputs(strbuf *b, const cJSON *oc)
{
    int width = 0;
    for (const cJSON *o = oc ? oc->child : NULL; o; o = o->next) {
        const cJSON *a0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "actions"), 0);
        if (cJSON_IsString(a0) && strcmp(a0->valuestring, "no-op") != 0 && (int)strlen(o->string) > width)
            width = (int)strlen(o->string);
    }
    if (width == 0)
        return;
    strbuf_puts(b, "Changes to Outputs:\n");
    for (const cJSON *o = oc->child; o; o = o->next) {
        const cJSON *a0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "actions"), 0);
        if (!cJSON_IsString(a0) || strcmp(a0->valuestring, "no-op") == 0)
            continue;
        const char *act = a0->valuestring;
        const char *sym = strcmp(act, "create") == 0 ? "+" : strcmp(act, "delete") == 0 ? "-" : "~";
        bool sens = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "after_sensitive")) ||
                    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "before_sensitive"));
        const cJSON *before = cJSON_GetObjectItemCaseSensitive(o, "before");
        const cJSON *after = cJSON_GetObjectItemCaseSensitive(o, "after");
        bool unk = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "after_unknown"));
        pt_line(b, 0, sym);
        pt_key(b, o->string, false, width);
        strbuf_puts(b, " = ");
        if (sym[0] != '+') {
            if (sens)
                strbuf_puts(b, "(sensitive value)");
            else
                pt_nested(b, before, 0, "-");
            strbuf_puts(b, " -> ");
        }
        if (sym[0] == '-')
            strbuf_puts(b, "null");
        else if (unk)
            strbuf_puts(b, "(known after apply)");
        else if (sens)
            strbuf_puts(b, "(sensitive value)");
        else
            pt_nested(b, after, 0, "+");
        strbuf_putc(b, '\n');
    }
}

static void pt_refresh_module(strbuf *b, const cJSON *mod)
{
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(mod, "resources");
    for (const cJSON *r = cJSON_IsArray(res) ? res->child : NULL; r; r = r->next) {
        const char *addr = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "address"));
        const char *id = cJSON_GetStringValue(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "values"), "id"));
        if (addr)
            strbuf_printf(b, "%s: Refreshing state... [id=%s]\n", addr, id ? id : "");
    }
    const cJSON *children = cJSON_GetObjectItemCaseSensitive(mod, "child_modules");
    for (const cJSON *c = cJSON_IsArray(children) ? children->child : NULL; c; c = c->next)
        pt_refresh_module(b, c);
}

void ft_plantext_refresh(strbuf *b, const cJSON *show)
{
    const cJSON *root = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(show, "prior_state"), "values"),
        "root_module");
    pt_refresh_module(b, root);
}

void ft_plantext_changes(strbuf *b, const cJSON *show, const char *mode)
{
    const cJSON *rcs = cJSON_GetObjectItemCaseSensitive(show, "resource_changes");
    const cJSON *ocs = cJSON_GetObjectItemCaseSensitive(show, "output_changes");
    bool used[sizeof pt_actions / sizeof pt_actions[0]] = { false };
    int add = 0, change = 0, destroy = 0, any = 0, outs = 0;
    for (const cJSON *r = cJSON_IsArray(rcs) ? rcs->child : NULL; r; r = r->next) {
        int a = pt_action_of(r);
        if (a < 0)
            continue;
        used[a] = true;
        any++;
        add += a == 0 || a >= 3;
        change += a == 1;
        destroy += a == 2 || a >= 3;
    }
    for (const cJSON *o = cJSON_IsObject(ocs) ? ocs->child : NULL; o; o = o->next) {
        const cJSON *a0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "actions"), 0);
        outs += cJSON_IsString(a0) && strcmp(a0->valuestring, "no-op") != 0;
    }
    if (!any && !outs) {
        if (strcmp(mode, "refresh-only") == 0)
            strbuf_puts(b, "\nNo changes. Your infrastructure still matches the configuration.\n\n"
                           "Terraform has checked that the real remote objects still match the result of\n"
                           "your most recent changes, and found no differences.\n");
        else if (strcmp(mode, "destroy") == 0)
            strbuf_puts(b, "\nNo changes. No objects need to be destroyed.\n\n"
                           "Either you have not created any objects yet or the existing objects were\n"
                           "already deleted outside of Terraform.\n");
        else
            strbuf_puts(b, "\nNo changes. Your infrastructure matches the configuration.\n\n"
                           "Terraform has compared your real infrastructure against your configuration\n"
                           "and found no differences, so no changes are needed.\n");
        return;
    }
    strbuf_putc(b, '\n');
    if (any) {
        strbuf_puts(b, "Terraform used the selected providers to generate the following execution\n"
                       "plan. Resource actions are indicated with the following symbols:\n");
        for (size_t i = 0; i < sizeof pt_actions / sizeof pt_actions[0]; i++)
            if (used[i])
                strbuf_printf(b, "%s\n", pt_actions[i].legend);
        strbuf_puts(b, "\nTerraform will perform the following actions:\n\n");
        for (const cJSON *r = rcs->child; r; r = r->next) {
            int a = pt_action_of(r);
            if (a >= 0)
                pt_resource(b, r, a);
        }
        strbuf_printf(b, "Plan: %d to add, %d to change, %d to destroy.\n", add, change, destroy);
    }
    if (outs) {
        strbuf_putc(b, '\n');
        pt_outputs(b, ocs);
        if (!any)
            strbuf_puts(b, "\nYou can apply this plan to save these new output values to the Terraform\n"
                           "state, without changing any real infrastructure.\n");
    }
}

void ft_plantext_value(strbuf *b, const cJSON *v, int indent, int step)
{
    if (!pt_container(v)) {
        pt_nested(b, v, 0, "");
        return;
    }
    bool obj = cJSON_IsObject(v);
    strbuf_puts(b, obj ? "{\n" : "[\n");
    for (const cJSON *c = v->child; c; c = c->next) {
        pt_spaces(b, indent + step);
        if (obj) {
            pt_quote(b, c->string);
            strbuf_puts(b, " = ");
        }
        ft_plantext_value(b, c, indent + step, step);
        strbuf_puts(b, obj ? "\n" : ",\n");
    }
    pt_spaces(b, indent);
    strbuf_putc(b, obj ? '}' : ']');
}
