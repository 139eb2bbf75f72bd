/* config.c — *.tf.json files into resources, module calls and outputs; see config.h. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval.h"
#include "iac/fsutil.h"
#include "iac/json.h"
#include "iac/jsonw.h"
#include "iac/strbuf.h"

#define FT_CONFIG_MAX (64u << 20)

/* Keys of a resource body that configure terraform, not the resource. "//" is HCL JSON's comment key. */
static const char *const ft_resource_meta[] = { "count", "for_each", "depends_on", "provider", "lifecycle",
                                                "provisioner", "connection", "//" };
/* Keys of a module call that are not inputs. */
static const char *const ft_module_meta[] = { "source", "version", "providers", "count", "for_each",
                                              "depends_on", "//" };
/* Blocks whose second level is "kind → name → body" (two levels of names) rather than "name → body". */
static const char *const ft_two_level[] = { "resource", "data" };

static bool ft_in(const char *const *set, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(set[i], s) == 0)
            return true;
    return false;
}

const cJSON *ft_config_body(const cJSON *v)
{
    if (cJSON_IsArray(v))
        v = v->child;
    return cJSON_IsObject(v) ? v : NULL;
}

void ft_config_each_body(const cJSON *v, void (*fn)(const cJSON *body, void *ctx), void *ctx)
{
    if (cJSON_IsObject(v)) {
        fn(v, ctx);
        return;
    }
    for (const cJSON *c = cJSON_IsArray(v) ? v->child : NULL; c; c = c->next)
        if (cJSON_IsObject(c))
            fn(c, ctx);
}

static int ft_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names of the *.tf.json files of the current directory, sorted, skipping editor and hidden files as terraform
 * does. */
static int ft_config_files(char ***out, size_t *n, ft_err *e)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(".");
    if (!d)
        return ft_err_set(e, "Failed to read module directory", "Module directory . does not exist or cannot be read.");
    size_t cap = 0;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d))) {
        const char *name = de->d_name;
        size_t len = strlen(name);
        if (name[0] == '.' || name[0] == '#' || name[len - 1] == '~' || len < 8 || strcmp(name + len - 8, ".tf.json"))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            char **v = realloc(*out, cap * sizeof *v);
            if (!v) {
                rc = ft_err_set(e, "Out of memory", NULL);
                break;
            }
            *out = v;
        }
        if (!((*out)[*n] = strdup(name))) {
            rc = ft_err_set(e, "Out of memory", NULL);
            break;
        }
        (*n)++;
    }
    closedir(d);
    if (*n > 1)
        qsort(*out, *n, sizeof **out, ft_cmp_str);
    return rc;
}

/* Merges one name → body level into dst, refusing a name declared twice. type is the resource type for
 * resource and data blocks, NULL for the others. */
static int ft_merge_names(cJSON *dst, const cJSON *src, const char *what, const char *type, const char *file,
                          ft_err *e)
{
    for (const cJSON *c = src->child; c; c = c->next) {
        if (cJSON_GetObjectItemCaseSensitive(dst, c->string)) {
            char summary[300];
            if (type) {
                snprintf(summary, sizeof summary, "Duplicate %s \"%s\" configuration", what, type);
                return ft_err_set(e, summary,
                                  "  on %s:\n\nA %s %s named \"%s\" was already declared. Names must be unique "
                                  "per type in each module.", file, type, what, c->string);
            }
            snprintf(summary, sizeof summary, "Duplicate %s", what);
            return ft_err_set(e, summary, "  on %s:\n\nA %s named \"%s\" was already declared. Each %s must have a "
                              "unique name.", file, what, c->string, what);
        }
        cJSON_AddItemToObject(dst, c->string, cJSON_Duplicate(c, 1));
    }
    return 0;
}

static cJSON *ft_obj_child(cJSON *parent, const char *key)
{
    cJSON *o = cJSON_GetObjectItemCaseSensitive(parent, key);
    if (!o) {
        o = cJSON_CreateObject();
        cJSON_AddItemToObject(parent, key, o);
    }
    return o;
}

typedef struct {
    cJSON      *blocks;
    const char *file;
    ft_err     *e;
    int         rc;
} ft_merge_ctx;

/* One top-level object of a file: {"resource": …, "variable": …}. */
static void ft_merge_top(const cJSON *top, void *vctx)
{
    ft_merge_ctx *m = vctx;
    for (const cJSON *blk = top->child; blk && m->rc == 0; blk = blk->next) {
        const char *kind = blk->string;
        if (strcmp(kind, "//") == 0)
            continue;
        cJSON *dst = ft_obj_child(m->blocks, kind);
        if (!dst) {
            m->rc = ft_err_set(m->e, "Out of memory", NULL);
            return;
        }
        const cJSON *bodies[64];
        size_t nb = 0;
        if (cJSON_IsObject(blk))
            bodies[nb++] = blk;
        for (const cJSON *c = cJSON_IsArray(blk) ? blk->child : NULL; c && nb < 64; c = c->next)
            if (cJSON_IsObject(c))
                bodies[nb++] = c;
        if (nb == 0 && !cJSON_IsArray(blk)) {
            /* terraform and required_version style attributes at the top are kept as they are */
            cJSON_DeleteItemFromObjectCaseSensitive(m->blocks, kind);
            cJSON_AddItemToObject(m->blocks, kind, cJSON_Duplicate(blk, 1));
            continue;
        }
        for (size_t i = 0; i < nb && m->rc == 0; i++) {
            if (ft_in(ft_two_level, sizeof ft_two_level / sizeof ft_two_level[0], kind)) {
                for (const cJSON *t = bodies[i]->child; t && m->rc == 0; t = t->next) {
                    cJSON *tdst = ft_obj_child(dst, t->string);
                    const cJSON *names = ft_config_body(t);
                    if (names)
                        m->rc = ft_merge_names(tdst, names, strcmp(kind, "data") ? "resource" : "data",
                                               t->string, m->file, m->e);
                }
            } else if (strcmp(kind, "provider") == 0 || strcmp(kind, "terraform") == 0 ||
                       strcmp(kind, "locals") == 0) {
                for (const cJSON *c = bodies[i]->child; c; c = c->next) { /* repeatable: later wins */
                    cJSON_DeleteItemFromObjectCaseSensitive(dst, c->string);
                    cJSON_AddItemToObject(dst, c->string, cJSON_Duplicate(c, 1));
                }
            } else {
                const char *what = strcmp(kind, "module") == 0     ? "module call"
                                   : strcmp(kind, "variable") == 0 ? "variable declaration"
                                   : strcmp(kind, "output") == 0   ? "output definition"
                                                                   : kind;
                m->rc = ft_merge_names(dst, bodies[i], what, NULL, m->file, m->e);
            }
        }
    }
}

static int ft_config_read(ft_config *c, ft_err *e)
{
    char **files = NULL;
    size_t n = 0;
    int rc = ft_config_files(&files, &n, e);
    for (size_t i = 0; i < n && rc == 0; i++) {
        char *text = NULL;
        size_t len = 0;
        int r = fs_read_file(files[i], FT_CONFIG_MAX, &text, &len);
        if (r < 0) {
            rc = ft_err_set(e, "Failed to read file", "The configuration file \"%s\" could not be read: %s.", files[i],
                            strerror(-r));
            break;
        }
        char msg[200];
        cJSON *root = json_parse_object(text, len, msg, sizeof msg);
        if (!root)
            rc = ft_err_set(e, "Invalid JSON syntax", "  on %s line 1:\n\nThe file is not a JSON object: %s.",
                            files[i], msg);
        free(text);
        if (root) {
            ft_merge_ctx m = { c->blocks, files[i], e, 0 };
            ft_merge_top(root, &m);
            rc = m.rc;
            cJSON_Delete(root);
        }
        c->nfiles++;
    }
    for (size_t i = 0; i < n; i++)
        free(files[i]);
    free(files);
    return rc;
}

/* Lookup for resource arguments: variables are substituted, every other reference stays as written. */
static ft_lookup_result ft_config_lookup(void *ctx, ft_ref_kind kind, const char *ref, cJSON **out)
{
    const cJSON *vars = ctx;
    if (kind != FT_REF_VAR || !vars)
        return FT_LOOKUP_LITERAL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(vars, ref + 4);
    if (!v)
        return FT_LOOKUP_MISSING;
    *out = cJSON_Duplicate(v, 1);
    return *out ? FT_LOOKUP_KNOWN : FT_LOOKUP_LITERAL;
}

static int ft_undeclared(ft_err *e, const char *ref, const char *where)
{
    if (strncmp(ref, "var.", 4) == 0)
        return ft_err_set(e, "Reference to undeclared input variable",
                          "  in %s:\n\nAn input variable with the name \"%s\" has not been declared. This variable can "
                          "be declared with a variable \"%s\" {} block.", where, ref + 4, ref + 4);
    return ft_err_set(e, "Reference to undeclared resource", "  in %s:\n\nA reference to \"%s\" cannot be resolved.",
                      where, ref);
}

/* Copies body without the meta keys and with variables substituted. */
static int ft_config_attrs(const ft_config *c, const cJSON *body, const char *const *meta, size_t nmeta,
                           const char *where, cJSON **out, ft_err *e)
{
    cJSON *raw = cJSON_CreateObject();
    if (!raw)
        return ft_err_set(e, "Out of memory", NULL);
    for (const cJSON *k = body->child; k; k = k->next)
        if (!ft_in(meta, nmeta, k->string))
            cJSON_AddItemToObject(raw, k->string, cJSON_Duplicate(k, 1));
    if (!c->vars) {
        *out = raw;
        return 0;
    }
    char missing[256];
    int rc = ft_eval(raw, ft_config_lookup, c->vars, out, missing, sizeof missing);
    cJSON_Delete(raw);
    if (rc == -1)
        return ft_undeclared(e, missing, where);
    if (rc < 0 || !*out)
        return ft_err_set(e, "Out of memory", NULL);
    return 0;
}

static int ft_config_resources(ft_config *c, ft_err *e)
{
    const cJSON *resource = cJSON_GetObjectItemCaseSensitive(c->blocks, "resource");
    for (const cJSON *t = resource ? resource->child : NULL; t; t = t->next) {
        for (const cJSON *n = t->child; n; n = n->next) {
            const cJSON *body = ft_config_body(n);
            char where[300];
            snprintf(where, sizeof where, "resource \"%s\" \"%s\"", t->string, n->string);
            if (!body)
                return ft_err_set(e, "Incorrect JSON value type", "  in %s:\n\nA JSON object is required here, "
                                  "with the block's arguments as properties.", where);
            cJSON *attrs = NULL;
            if (ft_config_attrs(c, body, ft_resource_meta, sizeof ft_resource_meta / sizeof ft_resource_meta[0],
                                where, &attrs, e) < 0)
                return -1;
            ft_res r;
            if (ft_res_init(&r, NULL, t->string, n->string, attrs) < 0 || ft_res_list_add(&c->res, &r, true) < 0)
                return ft_err_set(e, "Out of memory", NULL);
        }
    }
    return 0;
}

/* A module call becomes module.NAME.null_resource.this with the inputs as string triggers. */
static int ft_config_modules(ft_config *c, ft_err *e)
{
    const cJSON *module = cJSON_GetObjectItemCaseSensitive(c->blocks, "module");
    size_t n = (size_t)cJSON_GetArraySize(module);
    c->mods = n ? calloc(n, sizeof *c->mods) : NULL;
    if (n && !c->mods)
        return ft_err_set(e, "Out of memory", NULL);
    for (const cJSON *m = module ? module->child : NULL; m; m = m->next) {
        const cJSON *body = ft_config_body(m);
        const cJSON *source = cJSON_GetObjectItemCaseSensitive(body, "source");
        const cJSON *version = cJSON_GetObjectItemCaseSensitive(body, "version");
        char where[300];
        snprintf(where, sizeof where, "module \"%s\"", m->string);
        if (!cJSON_IsString(source))
            return ft_err_set(e, "Missing required argument",
                              "  in %s:\n\nThe argument \"source\" is required, but no definition was found.", where);
        ft_module_call *mc = &c->mods[c->nmods++];
        mc->name = strdup(m->string);
        mc->source = strdup(source->valuestring);
        mc->version = cJSON_IsString(version) ? strdup(version->valuestring) : NULL;
        cJSON *inputs = NULL;
        if (!mc->name || !mc->source ||
            ft_config_attrs(c, body, ft_module_meta, sizeof ft_module_meta / sizeof ft_module_meta[0], where,
                            &inputs, e) < 0)
            return e->summary[0] ? -1 : ft_err_set(e, "Out of memory", NULL);
        cJSON *attrs = cJSON_CreateObject();
        cJSON *triggers = cJSON_GetArraySize(inputs) ? cJSON_CreateObject() : cJSON_CreateNull();
        for (const cJSON *in = inputs->child; in && triggers; in = in->next) {
            if (cJSON_IsString(in)) {
                cJSON_AddStringToObject(triggers, in->string, in->valuestring);
            } else {
                strbuf b = STRBUF_INIT;
                jsonw_write(&b, in, 0);
                cJSON_AddStringToObject(triggers, in->string, b.data ? b.data : "");
                strbuf_free(&b);
            }
        }
        cJSON_Delete(inputs);
        if (!attrs || !triggers) {
            cJSON_Delete(attrs);
            cJSON_Delete(triggers);
            return ft_err_set(e, "Out of memory", NULL);
        }
        cJSON_AddItemToObject(attrs, "triggers", triggers);
        char mod[300];
        snprintf(mod, sizeof mod, "module.%s", m->string);
        ft_res r;
        if (ft_res_init(&r, mod, "null_resource", "this", attrs) < 0 || ft_res_list_add(&c->res, &r, true) < 0)
            return ft_err_set(e, "Out of memory", NULL);
    }
    return 0;
}

static int ft_out_cmp(const void *a, const void *b)
{
    return strcmp(((const ft_output_cfg *)a)->name, ((const ft_output_cfg *)b)->name);
}

static int ft_config_outputs(ft_config *c, ft_err *e)
{
    const cJSON *output = cJSON_GetObjectItemCaseSensitive(c->blocks, "output");
    size_t n = (size_t)cJSON_GetArraySize(output);
    c->outs = n ? calloc(n, sizeof *c->outs) : NULL;
    if (n && !c->outs)
        return ft_err_set(e, "Out of memory", NULL);
    for (const cJSON *o = output ? output->child : NULL; o; o = o->next) {
        const cJSON *body = ft_config_body(o);
        const cJSON *value = cJSON_GetObjectItemCaseSensitive(body, "value");
        if (!value)
            return ft_err_set(e, "Missing required argument",
                              "  in output \"%s\":\n\nThe argument \"value\" is required, but no definition was found.",
                              o->string);
        ft_output_cfg *oc = &c->outs[c->nouts++];
        oc->name = strdup(o->string);
        oc->value = cJSON_Duplicate(value, 1);
        oc->sensitive = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "sensitive"));
        if (!oc->name || !oc->value)
            return ft_err_set(e, "Out of memory", NULL);
    }
    if (c->nouts > 1)
        qsort(c->outs, c->nouts, sizeof *c->outs, ft_out_cmp);
    return 0;
}

int ft_config_load(ft_config *c, const ft_var_arg *vars, size_t nvars, bool with_vars, ft_err *e)
{
    memset(c, 0, sizeof *c);
    c->blocks = cJSON_CreateObject();
    if (!c->blocks)
        return ft_err_set(e, "Out of memory", NULL);
    if (ft_config_read(c, e) < 0)
        return -1;
    if (with_vars) {
        const cJSON *decls = cJSON_GetObjectItemCaseSensitive(c->blocks, "variable");
        if (ft_vars_resolve(decls, vars, nvars, &c->vars, &c->warn, e) < 0)
            return -1;
    }
    if (ft_config_resources(c, e) < 0 || ft_config_modules(c, e) < 0 || ft_config_outputs(c, e) < 0)
        return -1;
    ft_res_list_sort(&c->res);
    return 0;
}

void ft_config_free(ft_config *c)
{
    cJSON_Delete(c->blocks);
    ft_res_list_free(&c->res);
    for (size_t i = 0; i < c->nmods; i++) {
        free(c->mods[i].name);
        free(c->mods[i].source);
        free(c->mods[i].version);
    }
    free(c->mods);
    for (size_t i = 0; i < c->nouts; i++) {
        free(c->outs[i].name);
        cJSON_Delete(c->outs[i].value);
    }
    free(c->outs);
    cJSON_Delete(c->vars);
    memset(c, 0, sizeof *c);
}
