/* render.c — the work directory files of ref §7.2 from a task bundle; see render.h.
 *
 * Three layers, top to bottom. Readers pull the fields of one bundle record (a variable, an output, a resource, a
 * remote-data entry) through a table of fields, so every record is checked the same way and every message names
 * the path of the field. Renderers build a cJSON tree the way the Go agent builds its map[string]interface{} — a
 * later equal key replaces the earlier one, as in a Go map — and print it with jsonw, which writes what Go's
 * encoding/json writes. The writer renders every file first and touches the disk only when all of them rendered.
 *
 * Two pieces of Go semantics are reproduced by hand because the tfvars quoting rule depends on them:
 * strings.TrimSpace (Unicode white space) and strconv.ParseFloat's acceptance (decimal and hex literals with
 * underscores, inf/infinity/nan, and the range error that makes "1e999" a string). */
#include "render.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "iac/fsutil.h"
#include "iac/json.h"
#include "iac/jsonw.h"

#define RENDER_WHERE_MAX 64
#define RENDER_STATIC_OUTPUT "__static__"

/* ---- Go string semantics ------------------------------------------------------------------------------------ */

/* Decodes one rune at s like Go's utf8.DecodeRune: a valid sequence gives its code point and length, anything else
 * U+FFFD and length 1. */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *r)
{
    unsigned c = s[0];
    if (c < 0x80) {
        *r = c;
        return 1;
    }
    size_t need;
    uint32_t v;
    unsigned lo = 0x80, hi = 0xBF; /* the range of the second byte; later ones are always 80..BF */
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1, v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2, v = c & 0x0F;
        lo = c == 0xE0 ? 0xA0 : lo; /* no overlong forms */
        hi = c == 0xED ? 0x9F : hi; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3, v = c & 0x07;
        lo = c == 0xF0 ? 0x90 : lo;
        hi = c == 0xF4 ? 0x8F : hi; /* nothing above U+10FFFF */
    } else {
        goto bad;
    }
    if (n < need + 1)
        goto bad;
    for (size_t k = 1; k <= need; k++) {
        unsigned b = s[k];
        if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF))
            goto bad;
        v = v << 6 | (b & 0x3F);
    }
    *r = v;
    return need + 1;
bad:
    *r = 0xFFFD;
    return 1;
}

/* unicode.IsSpace. */
static bool go_is_space(uint32_t r)
{
    switch (r) {
    case '\t': case '\n': case '\v': case '\f': case '\r': case ' ':
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
        return true;
    default:
        return r >= 0x2000 && r <= 0x200A;
    }
}

/* strings.TrimSpace: [*start, *end) is s without leading and trailing white space. */
static void go_trim_space(const char *s, size_t n, size_t *start, size_t *end)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t first = n, last = n, i = 0;
    while (i < n) {
        uint32_t r;
        size_t w = utf8_next(u + i, n - i, &r);
        if (!go_is_space(r)) {
            if (first == n)
                first = i;
            last = i + w;
        }
        i += w;
    }
    *start = first == n ? 0 : first;
    *end = first == n ? 0 : last;
}

static unsigned char go_lower(unsigned char c)
{
    return c | ('x' - 'X');
}

/* strconv's underscoreOK: an underscore only between digits, or between a base prefix and a digit. */
static bool go_underscore_ok(const char *s, size_t n)
{
    char saw = '^';
    size_t i = 0;
    if (n >= 1 && (s[0] == '-' || s[0] == '+'))
        s++, n--;
    bool hex = false;
    if (n >= 2 && s[0] == '0' && (go_lower(s[1]) == 'b' || go_lower(s[1]) == 'o' || go_lower(s[1]) == 'x')) {
        i = 2, saw = '0';
        hex = go_lower(s[1]) == 'x';
    }
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= '0' && c <= '9') || (hex && go_lower(c) >= 'a' && go_lower(c) <= 'f')) {
            saw = '0';
        } else if (c == '_') {
            if (saw != '0')
                return false;
            saw = '_';
        } else {
            if (saw == '_')
                return false;
            saw = '!';
        }
    }
    return saw != '_';
}

/* strconv's readFloat, reduced to "is all of s one well-formed decimal or hexadecimal literal". */
static bool go_float_syntax(const char *s, size_t n)
{
    size_t i = 0;
    bool underscores = false, hex = false, sawdot = false, sawdigits = false;
    if (n == 0)
        return false;
    if (s[0] == '+' || s[0] == '-')
        i++;
    unsigned char expc = 'e';
    if (i + 2 < n && s[i] == '0' && go_lower(s[i + 1]) == 'x')
        hex = true, i += 2, expc = 'p';
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '_')
            underscores = true;
        else if (c == '.' && !sawdot)
            sawdot = true;
        else if ((c >= '0' && c <= '9') || (hex && go_lower(c) >= 'a' && go_lower(c) <= 'f'))
            sawdigits = true;
        else
            break;
    }
    if (!sawdigits)
        return false;
    if (i < n && go_lower(s[i]) == expc) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n || s[i] < '0' || s[i] > '9')
            return false;
        for (; i < n && ((s[i] >= '0' && s[i] <= '9') || s[i] == '_'); i++)
            underscores |= s[i] == '_';
    } else if (hex) {
        return false; /* a hex literal must have its p exponent */
    }
    if (underscores && !go_underscore_ok(s, i))
        return false;
    return i == n;
}

/* strconv.ParseFloat(s, 64) returns no error: the special names (a sign only before inf), or a literal whose value
 * does not overflow (underflow to zero is no error in Go). */
static bool go_parse_float_ok(const char *s, size_t n)
{
    size_t sign = n > 0 && (s[0] == '+' || s[0] == '-');
    const char *rest = s + sign;
    size_t m = n - sign;
    if ((m == 3 && strncasecmp(rest, "inf", 3) == 0) || (m == 8 && strncasecmp(rest, "infinity", 8) == 0))
        return true;
    if (!sign && m == 3 && strncasecmp(rest, "nan", 3) == 0)
        return true;
    if (!go_float_syntax(s, n))
        return false;
    /* The syntax is C's too once the underscores are gone; strtod rounds correctly, as Go does, so it reaches
     * infinity exactly when Go reports a range error. */
    char *plain = malloc(n + 1);
    if (!plain)
        return false;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] != '_')
            plain[k++] = s[i];
    plain[k] = '\0';
    double v = strtod(plain, NULL);
    free(plain);
    return !isinf(v);
}

void render_sanitize_name(const char *in, char *out, size_t outlen)
{
    if (outlen == 0)
        return;
    const unsigned char *u = (const unsigned char *)in;
    size_t n = strlen(in), o = 0, i = 0;
    if (n > 0 && u[0] >= '0' && u[0] <= '9' && o + 1 < outlen)
        out[o++] = '_';
    while (i < n && o + 1 < outlen) {
        uint32_t r;
        size_t w = utf8_next(u + i, n - i, &r);
        bool keep = (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || r == '_';
        out[o++] = keep ? (char)r : '_';
        i += w;
    }
    out[o] = '\0';
}

/* ---- readers: one bundle record through a table of fields --------------------------------------------------- */

typedef enum { FIELD_STRING, FIELD_BOOL, FIELD_OBJECT } field_type;

typedef struct {
    const char *key;
    field_type  type;
    size_t      offset; /* of a const char * (default ""), bool (false) or const cJSON * (NULL) */
} field;

static void fail_at(char *err, size_t errlen, const char *where, const char *msg)
{
    snprintf(err, errlen, "%s%s%s", where, where[0] ? "." : "", msg);
}

/* Reads the fields of record obj into dst. Absent or null fields keep their defaults, like Go's lenient getters;
 * a field of the wrong type fails with "<where>.<key>: expected …". */
static int read_record(const cJSON *obj, const char *where, const field *fields, size_t n, void *dst, char *err,
                       size_t errlen)
{
    char msg[256];
    if (!cJSON_IsObject(obj)) {
        snprintf(err, errlen, "%s: expected an object", where);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char *p = (char *)dst + fields[i].offset;
        int rc;
        switch (fields[i].type) {
        case FIELD_STRING:
            *(const char **)p = "";
            rc = json_get_string(obj, fields[i].key, false, (const char **)p, msg, sizeof msg);
            break;
        case FIELD_BOOL:
            *(bool *)p = false;
            rc = json_get_bool(obj, fields[i].key, false, (bool *)p, msg, sizeof msg);
            break;
        default:
            *(const cJSON **)p = NULL;
            rc = json_get_object(obj, fields[i].key, false, (const cJSON **)p, msg, sizeof msg);
            break;
        }
        if (rc < 0) {
            fail_at(err, errlen, where, msg);
            return -1;
        }
    }
    return 0;
}

#define FIELDS(t) (t), sizeof(t) / sizeof((t)[0])

typedef struct {
    const char *key, *value, *variable_type, *value_format, *description;
    bool        sensitive;
} rvar;

static const field rvar_fields[] = {
    { "key", FIELD_STRING, offsetof(rvar, key) },
    { "value", FIELD_STRING, offsetof(rvar, value) },
    { "variable_type", FIELD_STRING, offsetof(rvar, variable_type) },
    { "value_format", FIELD_STRING, offsetof(rvar, value_format) },
    { "description", FIELD_STRING, offsetof(rvar, description) },
    { "sensitive", FIELD_BOOL, offsetof(rvar, sensitive) },
};

typedef struct {
    const char *resource_name, *output_name, *output_value, *description;
    bool        sensitive;
} routput;

static const field routput_fields[] = {
    { "resource_name", FIELD_STRING, offsetof(routput, resource_name) },
    { "output_name", FIELD_STRING, offsetof(routput, output_name) },
    { "output_value", FIELD_STRING, offsetof(routput, output_value) },
    { "description", FIELD_STRING, offsetof(routput, description) },
    { "sensitive", FIELD_BOOL, offsetof(routput, sensitive) },
};

typedef struct {
    const char  *resource_name;
    bool         is_active;
    const cJSON *current_version;
} rresource;

static const field rresource_fields[] = {
    { "resource_name", FIELD_STRING, offsetof(rresource, resource_name) },
    { "is_active", FIELD_BOOL, offsetof(rresource, is_active) },
    { "current_version", FIELD_OBJECT, offsetof(rresource, current_version) },
};

typedef struct {
    const cJSON *tf_code;
} rversion;

static const field rversion_fields[] = {
    { "tf_code", FIELD_OBJECT, offsetof(rversion, tf_code) },
};

typedef struct {
    const char *data_name, *token, *url;
} rremote;

static const field rremote_fields[] = {
    { "data_name", FIELD_STRING, offsetof(rremote, data_name) },
    { "token", FIELD_STRING, offsetof(rremote, token) },
    { "url", FIELD_STRING, offsetof(rremote, url) },
};

/* A list argument: NULL or JSON null is an empty list, an array is the list, anything else is an error. */
static int check_list(const cJSON *list, const char *name, char *err, size_t errlen)
{
    if (!list || cJSON_IsNull(list) || cJSON_IsArray(list))
        return 0;
    snprintf(err, errlen, "%s: expected an array", name);
    return -1;
}

static int list_size(const cJSON *list)
{
    return cJSON_IsArray(list) ? cJSON_GetArraySize(list) : 0;
}

static void where_index(char *where, const char *name, int i)
{
    snprintf(where, RENDER_WHERE_MAX, "%s[%d]", name, i);
}

/* ---- building trees ----------------------------------------------------------------------------------------- */

/* obj[key] = item, replacing an earlier member of that name, as a Go map assignment does. Takes item (NULL means
 * an allocation already failed); -1 when memory runs out. */
static int obj_put(cJSON *obj, const char *key, cJSON *item)
{
    if (!item)
        return -1;
    bool ok = cJSON_GetObjectItemCaseSensitive(obj, key) ? cJSON_ReplaceItemInObjectCaseSensitive(obj, key, item)
                                                         : cJSON_AddItemToObject(obj, key, item);
    if (!ok) {
        cJSON_Delete(item);
        return -1;
    }
    return 0;
}

static int oom(char *err, size_t errlen)
{
    snprintf(err, errlen, "out of memory");
    return -1;
}

/* Prints tree with flags into out; consumes the tree. */
static int emit_tree(cJSON *tree, int flags, strbuf *out, char *err, size_t errlen)
{
    jsonw_write(out, tree, flags);
    cJSON_Delete(tree);
    return out->oom ? oom(err, errlen) : RENDER_WRITE;
}

/* Merges a copy of src into dst, both objects: an object meeting an object merges one level down, anything else
 * replaces what was there (DESIGN §4.4). The bundle is never modified. */
static int merge_objects(cJSON *dst, const cJSON *src)
{
    for (const cJSON *c = src->child; c; c = c->next) {
        if (!c->string)
            continue;
        cJSON *have = cJSON_GetObjectItemCaseSensitive(dst, c->string);
        if (have && cJSON_IsObject(have) && cJSON_IsObject(c)) {
            if (merge_objects(have, c) < 0)
                return -1;
        } else if (obj_put(dst, c->string, cJSON_Duplicate(c, true)) < 0) {
            return -1;
        }
    }
    return 0;
}

/* ---- renderers ---------------------------------------------------------------------------------------------- */

int render_main_tf_from(const cJSON *resources, const cJSON *tf_code, strbuf *out, char *err, size_t errlen)
{
    if (check_list(resources, "resources", err, errlen) < 0)
        return -1;
    int n = list_size(resources);
    if (n == 0) {
        if (tf_code && !cJSON_IsNull(tf_code) && !cJSON_IsObject(tf_code)) {
            snprintf(err, errlen, "tf_code: expected an object");
            return -1;
        }
        if (!tf_code || cJSON_IsNull(tf_code))
            strbuf_puts(out, "{}");
        else
            jsonw_write(out, tf_code, JSONW_GO);
        return out->oom ? oom(err, errlen) : RENDER_WRITE;
    }
    cJSON *main_tf = cJSON_CreateObject();
    if (!main_tf)
        return oom(err, errlen);
    char where[RENDER_WHERE_MAX], vwhere[RENDER_WHERE_MAX + 16];
    for (int i = 0; i < n; i++) {
        rresource r;
        rversion v;
        where_index(where, "resources", i);
        snprintf(vwhere, sizeof vwhere, "%s.current_version", where);
        if (read_record(cJSON_GetArrayItem(resources, i), where, FIELDS(rresource_fields), &r, err, errlen) < 0)
            goto fail;
        if (!r.current_version)
            continue; /* upstream skips it with a warning */
        if (read_record(r.current_version, vwhere, FIELDS(rversion_fields), &v, err, errlen) < 0)
            goto fail;
        if (v.tf_code && merge_objects(main_tf, v.tf_code) < 0) {
            oom(err, errlen);
            goto fail;
        }
    }
    return emit_tree(main_tf, JSONW_GO, out, err, errlen);
fail:
    cJSON_Delete(main_tf);
    return -1;
}

int render_main_tf(const cJSON *bundle, strbuf *out, char *err, size_t errlen)
{
    const cJSON *resources = NULL, *workspace = NULL, *tf_code = NULL;
    char msg[256];
    if (json_get_array(bundle, "resources", false, &resources, err, errlen) < 0 ||
        json_get_object(bundle, "workspace", false, &workspace, err, errlen) < 0)
        return -1;
    if (json_get_object(workspace, "tf_code", false, &tf_code, msg, sizeof msg) < 0) {
        fail_at(err, errlen, "workspace", msg);
        return -1;
    }
    return render_main_tf_from(resources, tf_code, out, err, errlen);
}

/* Upstream drops an empty terraform block: terraform would otherwise look for a backend state that isn't there. */
static bool provider_key_dropped(const cJSON *item)
{
    return strcmp(item->string, "terraform") == 0 && (cJSON_IsArray(item) || cJSON_IsObject(item)) &&
           cJSON_GetArraySize(item) == 0;
}

int render_provider_tf(const cJSON *provider_config, strbuf *out, char *err, size_t errlen)
{
    if (!provider_config || cJSON_IsNull(provider_config))
        return RENDER_SKIP;
    if (!cJSON_IsObject(provider_config)) {
        snprintf(err, errlen, "provider_config: expected an object");
        return -1;
    }
    cJSON *cleaned = cJSON_CreateObject();
    if (!cleaned)
        return oom(err, errlen);
    for (const cJSON *c = provider_config->child; c; c = c->next) {
        if (!c->string || provider_key_dropped(c))
            continue;
        if (obj_put(cleaned, c->string, cJSON_Duplicate(c, true)) < 0) {
            cJSON_Delete(cleaned);
            return oom(err, errlen);
        }
    }
    if (!cleaned->child) {
        cJSON_Delete(cleaned);
        return RENDER_SKIP;
    }
    return emit_tree(cleaned, JSONW_GO, out, err, errlen);
}

/* Reads variables[i] and says whether it belongs in the files: the right type and a non-empty key. */
static int read_variable(const cJSON *variables, int i, bool terraform_only, rvar *v, bool *selected, char *err,
                         size_t errlen)
{
    char where[RENDER_WHERE_MAX];
    where_index(where, "variables", i);
    if (read_record(cJSON_GetArrayItem(variables, i), where, FIELDS(rvar_fields), v, err, errlen) < 0)
        return -1;
    *selected = v->key[0] != '\0' && (!terraform_only || strcmp(v->variable_type, "terraform") == 0);
    return 0;
}

int render_variables_tf(const cJSON *variables, bool terraform_only, strbuf *out, char *err, size_t errlen)
{
    if (check_list(variables, "variables", err, errlen) < 0)
        return -1;
    cJSON *root = cJSON_CreateObject(), *defs = cJSON_AddObjectToObject(root, "variable");
    if (!defs) {
        cJSON_Delete(root);
        return oom(err, errlen);
    }
    int n = list_size(variables);
    for (int i = 0; i < n; i++) {
        rvar v;
        bool selected;
        if (read_variable(variables, i, terraform_only, &v, &selected, err, errlen) < 0) {
            cJSON_Delete(root);
            return -1;
        }
        if (!selected)
            continue;
        cJSON *def = cJSON_CreateObject();
        bool ok = def && cJSON_AddStringToObject(def, "type", "string") &&
                  (!v.description[0] || cJSON_AddStringToObject(def, "description", v.description)) &&
                  (!v.sensitive || cJSON_AddTrueToObject(def, "sensitive"));
        if (!ok) {
            cJSON_Delete(def);
            def = NULL;
        }
        if (obj_put(defs, v.key, def) < 0) {
            cJSON_Delete(root);
            return oom(err, errlen);
        }
    }
    if (!defs->child) {
        cJSON_Delete(root);
        return RENDER_SKIP;
    }
    return emit_tree(root, JSONW_GO, out, err, errlen);
}

/* Whether a value_format "hcl" value is written bare: a trimmed value that opens an object or a list, is a
 * boolean, or is a number to Go. */
static bool tfvars_value_is_bare(const char *value)
{
    size_t start, end;
    go_trim_space(value, strlen(value), &start, &end);
    const char *t = value + start;
    size_t n = end - start;
    if (n > 0 && (t[0] == '{' || t[0] == '['))
        return true;
    if ((n == 4 && memcmp(t, "true", 4) == 0) || (n == 5 && memcmp(t, "false", 5) == 0))
        return true;
    return go_parse_float_ok(t, n);
}

int render_tfvars(const cJSON *variables, bool terraform_only, strbuf *out, char *err, size_t errlen)
{
    if (check_list(variables, "variables", err, errlen) < 0)
        return -1;
    int n = list_size(variables);
    for (int i = 0; i < n; i++) {
        rvar v;
        bool selected;
        if (read_variable(variables, i, terraform_only, &v, &selected, err, errlen) < 0)
            return -1;
        if (!selected)
            continue;
        strbuf_puts(out, v.key);
        if (strcmp(v.value_format, "hcl") == 0 && tfvars_value_is_bare(v.value)) {
            strbuf_puts(out, " = ");
            strbuf_puts(out, v.value);
            strbuf_putc(out, '\n');
            continue;
        }
        /* Upstream escapes quotes and newlines only: a backslash goes through as it is. */
        strbuf_puts(out, " = \"");
        for (const char *p = v.value; *p; p++) {
            if (*p == '"')
                strbuf_puts(out, "\\\"");
            else if (*p == '\n')
                strbuf_puts(out, "\\n");
            else
                strbuf_putc(out, *p);
        }
        strbuf_puts(out, "\"\n");
    }
    return out->oom ? oom(err, errlen) : RENDER_WRITE;
}

/* The resource_name of every resource with is_active true, for the output filter. *names is malloc'd. */
static int active_resource_names(const cJSON *resources, const char ***names, int *count, char *err, size_t errlen)
{
    *names = NULL, *count = 0;
    if (check_list(resources, "resources", err, errlen) < 0)
        return -1;
    int n = list_size(resources);
    if (n == 0)
        return 0;
    *names = malloc((size_t)n * sizeof **names);
    if (!*names)
        return oom(err, errlen);
    char where[RENDER_WHERE_MAX];
    for (int i = 0; i < n; i++) {
        rresource r;
        where_index(where, "resources", i);
        if (read_record(cJSON_GetArrayItem(resources, i), where, FIELDS(rresource_fields), &r, err, errlen) < 0) {
            free(*names);
            *names = NULL;
            return -1;
        }
        if (r.is_active)
            (*names)[(*count)++] = r.resource_name;
    }
    return 0;
}

static bool name_in(const char *const *names, int count, const char *name)
{
    for (int i = 0; i < count; i++)
        if (strcmp(names[i], name) == 0)
            return true;
    return false;
}

/* The output's key: "static-<name>", or "<module>-<name>" with <module> taken from "module.<module>.…". */
static void output_key(const routput *o, bool is_static, strbuf *key)
{
    if (is_static) {
        strbuf_printf(key, "static-%s", o->output_name);
        return;
    }
    const char *module = o->resource_name;
    size_t len = strlen(module);
    if (strncmp(o->output_value, "module.", 7) == 0) {
        module = o->output_value + 7;
        const char *dot = strchr(module, '.');
        len = dot ? (size_t)(dot - module) : strlen(module);
    }
    strbuf_append(key, module, len);
    strbuf_printf(key, "-%s", o->output_name);
}

/* One entry of outputs.tf.json. */
static cJSON *output_def(const routput *o, bool is_static)
{
    cJSON *def = cJSON_CreateObject();
    strbuf expr = STRBUF_INIT;
    if (!is_static)
        strbuf_printf(&expr, "${%s}", o->output_value);
    bool ok = def && !expr.oom && cJSON_AddStringToObject(def, "value", is_static ? o->output_value : expr.data) &&
              (!o->description[0] || cJSON_AddStringToObject(def, "description", o->description)) &&
              (!o->sensitive || cJSON_AddTrueToObject(def, "sensitive"));
    strbuf_free(&expr);
    if (!ok) {
        cJSON_Delete(def);
        return NULL;
    }
    return def;
}

int render_outputs_tf(const cJSON *bundle, strbuf *out, char *err, size_t errlen)
{
    const cJSON *outputs = NULL, *resources = NULL;
    if (json_get_array(bundle, "outputs", false, &outputs, err, errlen) < 0 ||
        json_get_array(bundle, "resources", false, &resources, err, errlen) < 0)
        return -1;
    int n = list_size(outputs);
    if (n == 0)
        return RENDER_SKIP;
    const char **active;
    int n_active;
    if (active_resource_names(resources, &active, &n_active, err, errlen) < 0)
        return -1;
    cJSON *root = cJSON_CreateObject(), *defs = cJSON_AddObjectToObject(root, "output");
    int rc = -1;
    if (!defs) {
        oom(err, errlen);
        goto out;
    }
    char where[RENDER_WHERE_MAX];
    for (int i = 0; i < n; i++) {
        routput o;
        where_index(where, "outputs", i);
        if (read_record(cJSON_GetArrayItem(outputs, i), where, FIELDS(routput_fields), &o, err, errlen) < 0)
            goto out;
        bool is_static = !o.resource_name[0] || strcmp(o.resource_name, RENDER_STATIC_OUTPUT) == 0;
        /* An output of a deleted resource would be "Reference to undeclared module". */
        if (!is_static && n_active > 0 && !name_in(active, n_active, o.resource_name))
            continue;
        cJSON *def = output_def(&o, is_static);
        strbuf key = STRBUF_INIT;
        output_key(&o, is_static, &key);
        int put = key.oom ? -1 : obj_put(defs, key.data, def);
        if (key.oom)
            cJSON_Delete(def);
        strbuf_free(&key);
        if (put < 0) {
            oom(err, errlen);
            goto out;
        }
    }
    if (!defs->child) {
        rc = RENDER_SKIP;
        goto out;
    }
    free(active);
    return emit_tree(root, JSONW_GO, out, err, errlen);
out:
    free(active);
    cJSON_Delete(root);
    return rc;
}

/* Adds one remote_data entry: data.http.<block> and locals.<data_name>. */
static int remote_data_add(cJSON *http, cJSON *locals, const rremote *r)
{
    size_t n = strlen(r->data_name) + 2;
    char *name = malloc(n);
    strbuf block = STRBUF_INIT, bearer = STRBUF_INIT, local = STRBUF_INIT;
    int rc = -1;
    if (!name)
        goto out;
    render_sanitize_name(r->data_name, name, n);
    strbuf_printf(&block, "remote_%s", name);
    strbuf_printf(&bearer, "Bearer %s", r->token);
    strbuf_printf(&local, "${jsondecode(data.http.%s.response_body).outputs}", block.data ? block.data : "");
    if (block.oom || bearer.oom || local.oom)
        goto out;
    cJSON *req = cJSON_CreateObject(), *list = cJSON_CreateArray();
    if (!req || !list || !cJSON_AddItemToArray(list, req)) {
        cJSON_Delete(req);
        cJSON_Delete(list);
        goto out;
    }
    cJSON *headers = cJSON_AddObjectToObject(req, "request_headers");
    if (!headers || !cJSON_AddStringToObject(headers, "Authorization", bearer.data) ||
        !cJSON_AddStringToObject(req, "url", r->url)) {
        cJSON_Delete(list);
        goto out;
    }
    if (obj_put(http, block.data, list) < 0 || obj_put(locals, r->data_name, cJSON_CreateString(local.data)) < 0)
        goto out;
    rc = 0;
out:
    free(name);
    if (bearer.data)
        explicit_bzero(bearer.data, bearer.len);
    strbuf_free(&block);
    strbuf_free(&bearer);
    strbuf_free(&local);
    return rc;
}

int render_remote_data_tf(const cJSON *remote_data, strbuf *out, char *err, size_t errlen)
{
    if (check_list(remote_data, "remote_data", err, errlen) < 0)
        return -1;
    int n = list_size(remote_data);
    if (n == 0)
        return RENDER_SKIP;
    cJSON *root = cJSON_CreateObject(), *data = cJSON_AddObjectToObject(root, "data");
    cJSON *http = cJSON_AddObjectToObject(data, "http"), *locals = cJSON_AddObjectToObject(root, "locals");
    if (!http || !locals) {
        cJSON_Delete(root);
        return oom(err, errlen);
    }
    char where[RENDER_WHERE_MAX];
    for (int i = 0; i < n; i++) {
        rremote r;
        where_index(where, "remote_data", i);
        if (read_record(cJSON_GetArrayItem(remote_data, i), where, FIELDS(rremote_fields), &r, err, errlen) < 0) {
            cJSON_Delete(root);
            return -1;
        }
        if (!r.data_name[0] || !r.token[0] || !r.url[0])
            continue; /* upstream: "Invalid remote data config, skipping" */
        if (remote_data_add(http, locals, &r) < 0) {
            cJSON_Delete(root);
            return oom(err, errlen);
        }
    }
    if (!http->child) {
        cJSON_Delete(root);
        return RENDER_SKIP;
    }
    return emit_tree(root, JSONW_GO, out, err, errlen);
}

int render_state(const cJSON *bundle, strbuf *out, char *err, size_t errlen)
{
    const cJSON *sv = NULL, *content = NULL;
    char msg[256];
    int rc = json_get_object(bundle, "state_version", false, &sv, err, errlen);
    if (rc != 0)
        return rc < 0 ? -1 : RENDER_SKIP;
    if (json_get_object(sv, "content", false, &content, msg, sizeof msg) < 0) {
        fail_at(err, errlen, "state_version", msg);
        return -1;
    }
    /* json.Marshal: compact, keys sorted, < > & escaped. Upstream writes {} for a state version without content. */
    if (content)
        jsonw_write(out, content, JSONW_SORT_KEYS | JSONW_HTML_ESCAPE);
    else
        strbuf_puts(out, "{}");
    return out->oom ? oom(err, errlen) : RENDER_WRITE;
}

/* ---- the plan-phase work directory -------------------------------------------------------------------------- */

/* The workspace object of the bundle (absent reads as empty here; the writer requires it). */
static int plan_workspace(const cJSON *bundle, const cJSON **ws, char *err, size_t errlen)
{
    *ws = NULL;
    return json_get_object(bundle, "workspace", false, ws, err, errlen) < 0 ? -1 : 0;
}

/* What a work directory is rendered from: the task bundle (E3) and, for an apply rebuilt from its plan's snapshot,
 * the plan task (E4) and the snapshot's resources resolved against it. */
typedef struct {
    const cJSON *bundle;
    const cJSON *plan_task;  /* E4 "task" object, NULL in the plan phase */
    const cJSON *resources;  /* resolved snapshot resources, NULL in the plan phase */
} render_src;

static int plan_main(const render_src *s, strbuf *out, char *err, size_t errlen)
{
    return render_main_tf(s->bundle, out, err, errlen);
}

static int plan_provider(const render_src *s, strbuf *out, char *err, size_t errlen)
{
    const cJSON *ws, *pc = NULL;
    char msg[256];
    if (plan_workspace(s->bundle, &ws, err, errlen) < 0)
        return -1;
    if (json_get_object(ws, "provider_config", false, &pc, msg, sizeof msg) < 0) {
        fail_at(err, errlen, "workspace", msg);
        return -1;
    }
    return render_provider_tf(pc, out, err, errlen);
}

static int plan_variables(const render_src *s, strbuf *out, char *err, size_t errlen)
{
    const cJSON *vars = NULL;
    if (json_get_array(s->bundle, "variables", false, &vars, err, errlen) < 0)
        return -1;
    return render_variables_tf(vars, true, out, err, errlen);
}

static int plan_tfvars(const render_src *s, strbuf *out, char *err, size_t errlen)
{
    const cJSON *vars = NULL;
    if (json_get_array(s->bundle, "variables", false, &vars, err, errlen) < 0)
        return -1;
    return render_tfvars(vars, true, out, err, errlen);
}

static int plan_outputs(const render_src *s, strbuf *out, char *err, size_t errlen)
{
    return render_outputs_tf(s->bundle, out, err, errlen);
}

static int plan_remote_data(const render_src *s, strbuf *out, char *err, size_t errlen)
{
    const cJSON *rd = NULL;
    if (json_get_array(s->bundle, "remote_data", false, &rd, err, errlen) < 0)
        return -1;
    return render_remote_data_tf(rd, out, err, errlen);
}

static int plan_state(const render_src *s, strbuf *out, char *err, size_t errlen)
{
    return render_state(s->bundle, out, err, errlen);
}

static int plan_lock(const render_src *s, strbuf *out, char *err, size_t errlen)
{
    const cJSON *ws;
    const char *lock = "";
    char msg[256];
    if (plan_workspace(s->bundle, &ws, err, errlen) < 0)
        return -1;
    if (json_get_string(ws, "terraform_lock_hcl", false, &lock, msg, sizeof msg) < 0) {
        fail_at(err, errlen, "workspace", msg);
        return -1;
    }
    if (!lock[0])
        return RENDER_SKIP;
    strbuf_puts(out, lock);
    return out->oom ? oom(err, errlen) : RENDER_WRITE;
}

/* ---- the apply phase from the plan's snapshot (ref §7.5 step 6) ---------------------------------------------- */

static int apply_main(const render_src *s, strbuf *out, char *err, size_t errlen)
{
    const cJSON *ws = cJSON_GetObjectItemCaseSensitive(s->bundle, "workspace");
    return render_main_tf_from(s->resources, cJSON_GetObjectItemCaseSensitive(ws, "tf_code"), out, err, errlen);
}

static int apply_provider(const render_src *s, strbuf *out, char *err, size_t errlen)
{
    const cJSON *pc = NULL;
    if (json_get_object(s->plan_task, "snapshot_provider_config", false, &pc, err, errlen) < 0)
        return -1;
    return render_provider_tf(pc, out, err, errlen);
}

/* Every snapshot variable, environment ones included, as upstream writes them. */
static int apply_variables(const render_src *s, strbuf *out, char *err, size_t errlen)
{
    const cJSON *vars = NULL;
    if (json_get_array(s->plan_task, "snapshot_variables", false, &vars, err, errlen) < 0)
        return -1;
    return render_variables_tf(vars, false, out, err, errlen);
}

static int apply_tfvars(const render_src *s, strbuf *out, char *err, size_t errlen)
{
    const cJSON *vars = NULL;
    if (json_get_array(s->plan_task, "snapshot_variables", false, &vars, err, errlen) < 0)
        return -1;
    return render_tfvars(vars, false, out, err, errlen);
}

static int apply_none(const render_src *s, strbuf *out, char *err, size_t errlen)
{
    (void)s, (void)out, (void)err, (void)errlen;
    return RENDER_SKIP;
}

typedef struct {
    const char *file;
    int (*render)(const render_src *s, strbuf *out, char *err, size_t errlen);
} render_file;

/* The files of the plan phase, in upstream's order. */
static const render_file plan_files[] = {
    { "main.tf.json", plan_main },
    { "provider.tf.json", plan_provider },
    { "variables.tf.json", plan_variables },
    { "variables.tfvars", plan_tfvars },
    { "outputs.tf.json", plan_outputs },
    { "remote_data.tf.json", plan_remote_data },
    { "terraform.tfstate", plan_state },
    { ".terraform.lock.hcl", plan_lock },
};

/* The files of a cold apply: code, provider and variables from the snapshot; state and lock file current. */
static const render_file apply_files[] = {
    { "main.tf.json", apply_main },
    { "provider.tf.json", apply_provider },
    { "variables.tf.json", apply_variables },
    { "variables.tfvars", apply_tfvars },
    { "outputs.tf.json", apply_none },
    { "remote_data.tf.json", apply_none },
    { "terraform.tfstate", plan_state },
    { ".terraform.lock.hcl", plan_lock },
};

#define RENDER_FILES_MAX 8

/* main.tf.json and variables.tfvars are always written (render_main_tf_from, render_tfvars); the state is written
 * when the workspace has a state version, the lock file once an init has saved one. */
const char *const render_placeholders[RENDER_PLACEHOLDERS] = { "main.tf.json", "variables.tfvars", "terraform.tfstate",
                                                               ".terraform.lock.hcl" };

static bool render_is_placeholder(const char *file)
{
    for (size_t i = 0; i < RENDER_PLACEHOLDERS; i++)
        if (strcmp(file, render_placeholders[i]) == 0)
            return true;
    return false;
}

/* Renders every file of the table, then writes them (or removes the ones that must not exist). */
static int render_workdir(const render_file *files, size_t n, const render_src *src, const char *workdir,
                          bool new_dir, char *err, size_t errlen)
{
    strbuf text[RENDER_FILES_MAX];
    int kind[RENDER_FILES_MAX];
    char msg[512], path[PATH_MAX];
    const cJSON *ws;
    int rc = -1;
    for (size_t i = 0; i < n; i++)
        text[i] = (strbuf)STRBUF_INIT;
    if (!cJSON_IsObject(src->bundle)) {
        snprintf(err, errlen, "the task bundle is not a JSON object");
        goto out;
    }
    if (json_get_object(src->bundle, "workspace", true, &ws, msg, sizeof msg) < 0) {
        snprintf(err, errlen, "failed to get workspace: %s", msg);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        kind[i] = files[i].render(src, &text[i], msg, sizeof msg);
        if (kind[i] < 0) {
            snprintf(err, errlen, "%s: %s", files[i].file, msg);
            goto out;
        }
    }
    int r = new_dir ? 0 : fs_mkdir_p(workdir, 0700);
    if (r < 0) {
        snprintf(err, errlen, "cannot create %s: %s", workdir, strerror(-r));
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        int len = snprintf(path, sizeof path, "%s/%s", workdir, files[i].file);
        if (len < 0 || (size_t)len >= sizeof path) {
            snprintf(err, errlen, "%s: the work directory path is too long", files[i].file);
            goto out;
        }
        /* Replaced atomically but not fsync'd: terraform reads them at once, and durability would buy nothing. A
         * task that a crash interrupts is reported failed and its directory removed; the one directory that
         * outlives its task (slot 0's reservation) also holds terraform's plan.out and .terraform, which terraform
         * does not fsync either, and a warm apply trusts only a plan.out whose hash matches. An fsync costs about
         * half a millisecond here, several per dispatch. In a new directory nothing is replaced: each file is
         * created (or its placeholder filled) in place, and only an unused placeholder is removed. */
        const char *data = text[i].data ? text[i].data : "";
        if (kind[i] == RENDER_WRITE)
            r = new_dir ? fs_write_fresh(path, data, text[i].len, RENDER_FILE_MODE)
                        : fs_write_atomic_nosync(path, data, text[i].len, RENDER_FILE_MODE);
        else if (!new_dir || render_is_placeholder(files[i].file))
            r = unlink(path) == 0 || errno == ENOENT ? 0 : -errno;
        else
            r = 0;
        if (r < 0) {
            snprintf(err, errlen, "cannot %s %s: %s", kind[i] == RENDER_WRITE ? "write" : "remove", path,
                     strerror(-r));
            goto out;
        }
    }
    rc = 0;
out:
    /* Variable values, tokens and state are secrets: leave no copy in freed memory. */
    for (size_t i = 0; i < n; i++) {
        if (text[i].data)
            explicit_bzero(text[i].data, text[i].cap);
        strbuf_free(&text[i]);
    }
    return rc;
}

int render_plan_workdir(const cJSON *bundle, const char *workdir, bool new_dir, char *err, size_t errlen)
{
    render_src src = { bundle, NULL, NULL };
    return render_workdir(plan_files, sizeof plan_files / sizeof plan_files[0], &src, workdir, new_dir, err, errlen);
}

int render_validate_snapshot(const cJSON *plan_task, char *err, size_t errlen)
{
    const cJSON *task = cJSON_GetObjectItemCaseSensitive(plan_task, "task");
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(task, "snapshot_created_at");
    if (!at || cJSON_IsNull(at)) {
        snprintf(err, errlen, "no snapshot data (snapshot_created_at is nil)");
        return -1;
    }
    const cJSON *versions = cJSON_GetObjectItemCaseSensitive(task, "snapshot_resource_versions");
    const cJSON *vars = cJSON_GetObjectItemCaseSensitive(task, "snapshot_variables");
    if (!cJSON_IsObject(versions) || !vars || cJSON_IsNull(vars)) {
        snprintf(err, errlen, "snapshot data is incomplete (snapshot_resource_versions or snapshot_variables missing)");
        return -1;
    }
    const cJSON *v;
    cJSON_ArrayForEach(v, versions) {
        if (!cJSON_IsObject(v) || !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(v, "resource_db_id")) ||
            !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(v, "version"))) {
            snprintf(err, errlen, "snapshot resource %.100s: expected resource_db_id and version numbers",
                     v->string ? v->string : "?");
            return -1;
        }
    }
    return 0;
}

/* The resource of `list` with this resource_id whose current_version.version is `version`, or NULL. */
static const cJSON *find_resource_version(const cJSON *list, const char *resource_id, double version)
{
    const cJSON *r;
    cJSON_ArrayForEach(r, list) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(r, "resource_id");
        const cJSON *cv = cJSON_GetObjectItemCaseSensitive(r, "current_version");
        const cJSON *ver = cJSON_GetObjectItemCaseSensitive(cv, "version");
        if (cJSON_IsString(id) && strcmp(id->valuestring, resource_id) == 0 && cJSON_IsNumber(ver) &&
            ver->valuedouble == version)
            return r;
    }
    return NULL;
}

static int resource_id_cmp(const void *a, const void *b)
{
    return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

int render_apply_workdir(const cJSON *bundle, const cJSON *plan_task, const char *workdir, bool new_dir, char *err,
                         size_t errlen)
{
    const cJSON *task = cJSON_GetObjectItemCaseSensitive(plan_task, "task");
    const cJSON *versions = cJSON_GetObjectItemCaseSensitive(task, "snapshot_resource_versions");
    const cJSON *snap = cJSON_GetObjectItemCaseSensitive(plan_task, "snapshot_resources");
    const cJSON *current = cJSON_GetObjectItemCaseSensitive(bundle, "resources");
    cJSON *resources = cJSON_CreateArray();
    int n = cJSON_GetArraySize(versions), rc = -1;
    const cJSON **order = n ? calloc((size_t)n, sizeof *order) : NULL;
    if (!resources || (n && !order)) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    /* Upstream walks a Go map (no order); sorting by resource id makes the merge order reproducible. */
    int k = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, versions) order[k++] = v;
    qsort(order, (size_t)n, sizeof *order, resource_id_cmp);
    for (int i = 0; i < n; i++) {
        double version = cJSON_GetObjectItemCaseSensitive(order[i], "version")->valuedouble;
        const cJSON *r = find_resource_version(snap, order[i]->string, version);
        if (!r)
            r = find_resource_version(current, order[i]->string, version);
        if (!r) {
            snprintf(err, errlen, "resource %.100s version %.0f of the plan's snapshot not found", order[i]->string,
                     version);
            goto out;
        }
        cJSON_AddItemReferenceToArray(resources, (cJSON *)r);
    }
    render_src src = { bundle, task, resources };
    rc = render_workdir(apply_files, sizeof apply_files / sizeof apply_files[0], &src, workdir, new_dir, err, errlen);
out:
    free(order);
    cJSON_Delete(resources);
    return rc;
}

/* ---- the fetching stage's log lines ------------------------------------------------------------------------- */

/* Go's lenient getters: a field of another type reads as the zero value. */
static const char *lax_string(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : "";
}

static long long lax_int(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    if (!cJSON_IsNumber(v) || !(fabs(v->valuedouble) < 9e18))
        return 0;
    return (long long)v->valuedouble;
}

static const cJSON *lax_item(const cJSON *obj, const char *key, int type)
{
    const cJSON *v = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    return v && (v->type & 0xFF) == type ? v : NULL;
}

static void say(strbuf *line, void (*emit)(const char *, void *), void *arg, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void say(strbuf *line, void (*emit)(const char *, void *), void *arg, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    strbuf_reset(line);
    strbuf_vprintf(line, fmt, ap);
    va_end(ap);
    if (!line->oom && line->data)
        emit(line->data, arg);
}

/* A variable is shown in clear only when its "sensitive" is absent, null or false: a malformed flag hides it. */
static bool describe_masked(const cJSON *var)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(var, "sensitive");
    return !(s == NULL || cJSON_IsNull(s) || cJSON_IsFalse(s));
}

void render_describe(const cJSON *bundle, void (*emit)(const char *line, void *arg), void *arg)
{
    strbuf line = STRBUF_INIT;
    const cJSON *resources = lax_item(bundle, "resources", cJSON_Array);
    const cJSON *variables = lax_item(bundle, "variables", cJSON_Array);
    const cJSON *workspace = lax_item(bundle, "workspace", cJSON_Object);
    const cJSON *state = lax_item(bundle, "state_version", cJSON_Object);
    const cJSON *c;

    say(&line, emit, arg, "Fetching workspace resources...");
    int n_resources = 0;
    cJSON_ArrayForEach(c, resources)
        n_resources += cJSON_IsObject(c);
    if (n_resources > 0)
        say(&line, emit, arg, "Total: %d resources loaded", n_resources);
    cJSON_ArrayForEach(c, resources) {
        const cJSON *version = lax_item(c, "current_version", cJSON_Object);
        if (version)
            say(&line, emit, arg, "✓ Resource: %s (version: %lld)", lax_string(c, "resource_id"),
                lax_int(version, "version"));
    }

    say(&line, emit, arg, "Fetching workspace variables...");
    int normal = 0, sensitive = 0;
    cJSON_ArrayForEach(c, variables) {
        const char *key = lax_string(c, "key");
        if (!cJSON_IsObject(c) || strcmp(lax_string(c, "variable_type"), "terraform") != 0 || !key[0])
            continue;
        if (describe_masked(c)) {
            say(&line, emit, arg, "✓ Variable: %s = ***SENSITIVE***", key);
            sensitive++;
        } else {
            say(&line, emit, arg, "✓ Variable: %s = %s", key, lax_string(c, "value"));
            normal++;
        }
    }
    say(&line, emit, arg, "Total: %d variables loaded (%d normal, %d sensitive)", normal + sensitive, normal,
        sensitive);

    say(&line, emit, arg, "Fetching provider configuration...");
    const cJSON *aws = lax_item(lax_item(workspace, "provider_config", cJSON_Object), "aws", cJSON_Array);
    const cJSON *region = lax_item(cJSON_GetArrayItem(aws, 0), "region", cJSON_String);
    if (region)
        say(&line, emit, arg, "✓ Provider: AWS (region: %s)", region->valuestring);

    say(&line, emit, arg, "Fetching latest state version...");
    if (state) {
        const char *sum = lax_string(state, "checksum");
        say(&line, emit, arg, "✓ Found state version #%lld", lax_int(state, "version"));
        say(&line, emit, arg, "  - Size: %.1f KB", (double)lax_int(state, "size") / 1024);
        if (strlen(sum) >= 16)
            say(&line, emit, arg, "  - Checksum: %.16s...", sum);
        else
            say(&line, emit, arg, "  - Checksum: %s", sum[0] ? sum : "(empty)");
    } else {
        say(&line, emit, arg, "No existing state found (first run)");
    }
    if (line.data)
        explicit_bzero(line.data, line.cap);
    strbuf_free(&line);
}
