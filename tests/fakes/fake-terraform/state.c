/* state.c — state v4 read and write; see state.h. */
#include "state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iac/digest.h"
#include "iac/fsutil.h"
#include "iac/json.h"
#include "iac/jsonw.h"
#include "iac/strbuf.h"

#define FT_STATE_MAX (256u << 20)

static int ft_state_bad(ft_err *e, const char *path, const char *why)
{
    return ft_err_set(e, "Failed to load state", "Error loading state file %s: %s", path, why);
}

/* One entry of "resources": a managed resource with exactly one unkeyed instance becomes an ft_res; anything
 * else is kept verbatim. */
static int ft_state_entry(ft_state *st, const cJSON *r, const char *path, ft_err *e)
{
    char msg[160];
    const char *mode = NULL, *type = NULL, *name = NULL, *module = NULL;
    const cJSON *instances = NULL;
    if (!cJSON_IsObject(r))
        return ft_state_bad(e, path, "a resource entry is not an object");
    if (json_get_string(r, "mode", true, &mode, msg, sizeof msg) < 0 ||
        json_get_string(r, "type", true, &type, msg, sizeof msg) < 0 ||
        json_get_string(r, "name", true, &name, msg, sizeof msg) < 0 ||
        json_get_string(r, "module", false, &module, msg, sizeof msg) < 0 ||
        json_get_array(r, "instances", true, &instances, msg, sizeof msg) < 0)
        return ft_state_bad(e, path, msg);
    const cJSON *inst = cJSON_GetArraySize(instances) == 1 ? instances->child : NULL;
    bool simple = strcmp(mode, "managed") == 0 && cJSON_IsObject(inst) &&
                  !cJSON_GetObjectItemCaseSensitive(inst, "index_key") &&
                  cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(inst, "attributes"));
    if (!simple) {
        cJSON *copy = cJSON_Duplicate(r, 1);
        if (!copy || !cJSON_AddItemToArray(st->other, copy)) {
            cJSON_Delete(copy);
            return ft_err_set(e, "Failed to load state", "out of memory");
        }
        return 0;
    }
    cJSON *attrs = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(inst, "attributes"), 1);
    ft_res res;
    if (!attrs || ft_res_init(&res, module && *module ? module : NULL, type, name, attrs) < 0 ||
        ft_res_list_add(&st->res, &res, true) < 0)
        return ft_err_set(e, "Failed to load state", "out of memory");
    return 0;
}

int ft_state_load(const char *path, ft_state *st, ft_err *e)
{
    memset(st, 0, sizeof *st);
    st->outputs = cJSON_CreateObject();
    st->other = cJSON_CreateArray();
    if (!st->outputs || !st->other)
        return ft_err_set(e, "Failed to load state", "out of memory");
    char *text = NULL;
    size_t len = 0;
    int rc = fs_read_file(path, FT_STATE_MAX, &text, &len);
    if (rc == -ENOENT)
        return 0;
    if (rc < 0)
        return ft_state_bad(e, path, strerror(-rc));
    if (len == 0) {
        free(text);
        return 0;
    }
    char msg[200];
    cJSON *root = json_parse_object(text, len, msg, sizeof msg);
    free(text);
    if (!root)
        return ft_state_bad(e, path, msg);

    int64_t version = 0;
    const char *tfv = NULL, *lineage = NULL;
    const cJSON *outputs = NULL, *resources = NULL;
    rc = -1;
    if (json_get_i64(root, "version", true, &version, msg, sizeof msg) < 0) {
        ft_state_bad(e, path, msg);
    } else if (version != 4) {
        ft_err_set(e, "Failed to load state",
                   "Unsupported state file format: the state file %s uses format version %lld; fake-terraform "
                   "reads version 4 only.", path, (long long)version);
    } else if (json_get_string(root, "terraform_version", false, &tfv, msg, sizeof msg) < 0 ||
               json_get_i64(root, "serial", true, &st->serial, msg, sizeof msg) < 0 ||
               json_get_string(root, "lineage", true, &lineage, msg, sizeof msg) < 0 ||
               json_get_object(root, "outputs", false, &outputs, msg, sizeof msg) < 0 ||
               json_get_array(root, "resources", false, &resources, msg, sizeof msg) < 0) {
        ft_state_bad(e, path, msg);
    } else {
        rc = 0;
    }
    if (rc == 0) {
        st->present = true;
        st->tf_version = tfv ? strdup(tfv) : NULL;
        st->lineage = strdup(lineage);
        if (outputs) {
            cJSON_Delete(st->outputs);
            st->outputs = cJSON_Duplicate(outputs, 1);
        }
        if (!st->lineage || !st->outputs || (tfv && !st->tf_version))
            rc = ft_err_set(e, "Failed to load state", "out of memory");
        for (const cJSON *r = resources ? resources->child : NULL; r && rc == 0; r = r->next)
            rc = ft_state_entry(st, r, path, e);
        ft_res_list_sort(&st->res);
    }
    cJSON_Delete(root);
    return rc;
}

static cJSON *ft_state_resource(const ft_res *r)
{
    char prov[300];
    snprintf(prov, sizeof prov, "provider[\"%s\"]", r->provider);
    cJSON *o = cJSON_CreateObject(), *instances = cJSON_CreateArray(), *inst = cJSON_CreateObject();
    cJSON *attrs = cJSON_Duplicate(r->attrs, 1);
    bool ok = o && instances && inst && attrs;
    if (ok) {
        if (r->module)
            cJSON_AddStringToObject(o, "module", r->module);
        cJSON_AddStringToObject(o, "mode", "managed");
        cJSON_AddStringToObject(o, "type", r->type);
        cJSON_AddStringToObject(o, "name", r->name);
        cJSON_AddStringToObject(o, "provider", prov);
        cJSON_AddNumberToObject(inst, "schema_version", 0);
        cJSON_AddItemToObject(inst, "attributes", attrs);
        cJSON_AddItemToObject(inst, "sensitive_attributes", cJSON_CreateArray());
        cJSON_AddItemToArray(instances, inst);
        cJSON_AddItemToObject(o, "instances", instances);
        return o;
    }
    cJSON_Delete(o);
    cJSON_Delete(instances);
    cJSON_Delete(inst);
    cJSON_Delete(attrs);
    return NULL;
}

cJSON *ft_state_json(const ft_state *st, const char *tf_version)
{
    cJSON *root = cJSON_CreateObject(), *resources = cJSON_CreateArray();
    cJSON *outputs = cJSON_Duplicate(st->outputs, 1);
    if (!root || !resources || !outputs) {
        cJSON_Delete(root);
        cJSON_Delete(resources);
        cJSON_Delete(outputs);
        return NULL;
    }
    ft_json_sort_top(outputs);
    cJSON_AddNumberToObject(root, "version", 4);
    cJSON_AddStringToObject(root, "terraform_version", tf_version);
    cJSON_AddNumberToObject(root, "serial", (double)st->serial);
    cJSON_AddStringToObject(root, "lineage", st->lineage ? st->lineage : "");
    cJSON_AddItemToObject(root, "outputs", outputs);
    cJSON_AddItemToObject(root, "resources", resources);
    cJSON_AddNullToObject(root, "check_results");
    /* terraform orders resources by module ("" first), then type and name */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < st->res.n; i++) {
            if ((st->res.v[i].module != NULL) != (pass == 1))
                continue;
            cJSON *r = ft_state_resource(&st->res.v[i]);
            if (!r) {
                cJSON_Delete(root);
                return NULL;
            }
            cJSON_AddItemToArray(resources, r);
        }
    }
    for (const cJSON *r = st->other ? st->other->child : NULL; r; r = r->next)
        cJSON_AddItemToArray(resources, cJSON_Duplicate(r, 1));
    return root;
}

int ft_state_save(const char *path, const ft_state *st, const char *tf_version)
{
    cJSON *doc = ft_state_json(st, tf_version);
    if (!doc)
        return -ENOMEM;
    strbuf b = STRBUF_INIT;
    jsonw_write(&b, doc, JSONW_INDENT | JSONW_HTML_ESCAPE);
    strbuf_putc(&b, '\n');
    cJSON_Delete(doc);
    int rc = b.oom ? -ENOMEM : fs_write_atomic(path, b.data, b.len, 0644);
    strbuf_free(&b);
    return rc;
}

void ft_state_free(ft_state *st)
{
    free(st->tf_version);
    free(st->lineage);
    cJSON_Delete(st->outputs);
    cJSON_Delete(st->other);
    ft_res_list_free(&st->res);
    memset(st, 0, sizeof *st);
}

bool ft_state_empty(const ft_state *st)
{
    return st->res.n == 0 && cJSON_GetArraySize(st->other) == 0 && cJSON_GetArraySize(st->outputs) == 0;
}

void ft_state_new_id(const char *address, const cJSON *attrs, int64_t serial, char out[FT_ID_LEN])
{
    strbuf b = STRBUF_INIT;
    strbuf_printf(&b, "%s\n%lld\n", address, (long long)serial);
    jsonw_write(&b, attrs, 0);
    uint8_t h[DIGEST_SHA256_LEN];
    digest_sha256(b.data ? b.data : "", b.len, h);
    strbuf_free(&b);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | h[i];
    snprintf(out, FT_ID_LEN, "%llu", (unsigned long long)(v >> 1));
}

void ft_state_new_lineage(const void *seed, size_t len, char out[FT_LINEAGE_LEN])
{
    uint8_t h[DIGEST_SHA256_LEN];
    digest_sha256(seed, len, h);
    h[6] = (uint8_t)((h[6] & 0x0f) | 0x40); /* UUID version 4 */
    h[8] = (uint8_t)((h[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(out, FT_LINEAGE_LEN, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", h[0], h[1],
             h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]);
}

cJSON *ft_cty_type(const cJSON *v)
{
    if (cJSON_IsNumber(v))
        return cJSON_CreateString("number");
    if (cJSON_IsBool(v))
        return cJSON_CreateString("bool");
    if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
        bool obj = cJSON_IsObject(v);
        cJSON *t = cJSON_CreateArray(), *inner = obj ? cJSON_CreateObject() : cJSON_CreateArray();
        if (!t || !inner) {
            cJSON_Delete(t);
            cJSON_Delete(inner);
            return NULL;
        }
        cJSON_AddItemToArray(t, cJSON_CreateString(obj ? "object" : "tuple"));
        for (const cJSON *c = v->child; c; c = c->next) {
            if (obj)
                cJSON_AddItemToObject(inner, c->string, ft_cty_type(c));
            else
                cJSON_AddItemToArray(inner, ft_cty_type(c));
        }
        ft_json_sort(inner);
        cJSON_AddItemToArray(t, inner);
        return t;
    }
    return cJSON_CreateString("string");
}
