/* vars.c — input variables and the HCL subset of .tfvars files; see vars.h.
 *
 * The .tfvars parser is a small recursive descent over literal values: it accepts exactly the expressions that
 * are constants (no references, no function calls), which is all terraform accepts in a variables file. */
#include "vars.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iac/fsutil.h"
#include "iac/json.h"
#include "iac/jsonw.h"
#include "iac/strbuf.h"

#define FT_VARFILE_MAX (64u << 20)

typedef struct {
    const char *path;
    const char *s;
    size_t      len, pos;
    int         line;
    ft_err     *e;
} ft_hcl;

/* An error at the current line, with terraform's source snippet. */
static int ft_hcl_fail(ft_hcl *h, const char *summary, const char *detail)
{
    size_t start = h->pos > h->len ? h->len : h->pos;
    while (start > 0 && h->s[start - 1] != '\n')
        start--;
    size_t end = start;
    while (end < h->len && h->s[end] != '\n')
        end++;
    return ft_err_set(h->e, summary, "  on %s line %d:\n%4d: %.*s\n\n%s", h->path, h->line, h->line,
                      (int)(end - start > 200 ? 200 : end - start), h->s + start, detail);
}

static int ft_hcl_peek(const ft_hcl *h)
{
    return h->pos < h->len ? (unsigned char)h->s[h->pos] : -1;
}

/* Skips blanks and comments; newlines too when nl is true. */
static void ft_hcl_skip(ft_hcl *h, bool nl)
{
    while (h->pos < h->len) {
        char c = h->s[h->pos];
        if (c == ' ' || c == '\t' || c == '\r') {
            h->pos++;
        } else if (c == '\n' && nl) {
            h->pos++;
            h->line++;
        } else if (c == '#' || (c == '/' && h->pos + 1 < h->len && h->s[h->pos + 1] == '/')) {
            while (h->pos < h->len && h->s[h->pos] != '\n')
                h->pos++;
        } else if (c == '/' && h->pos + 1 < h->len && h->s[h->pos + 1] == '*') {
            h->pos += 2;
            while (h->pos + 1 < h->len && !(h->s[h->pos] == '*' && h->s[h->pos + 1] == '/')) {
                if (h->s[h->pos] == '\n')
                    h->line++;
                h->pos++;
            }
            h->pos = h->pos + 2 <= h->len ? h->pos + 2 : h->len;
        } else {
            return;
        }
    }
}

static bool ft_ident_start(int c)
{
    return isalpha(c) || c == '_';
}

static bool ft_ident_char(int c)
{
    return isalnum(c) || c == '_' || c == '-';
}

static char *ft_hcl_ident(ft_hcl *h)
{
    size_t start = h->pos;
    while (h->pos < h->len && ft_ident_char((unsigned char)h->s[h->pos]))
        h->pos++;
    return strndup(h->s + start, h->pos - start);
}

static void ft_put_utf8(strbuf *b, unsigned long cp)
{
    if (cp < 0x80) {
        strbuf_putc(b, (char)cp);
    } else if (cp < 0x800) {
        strbuf_putc(b, (char)(0xC0 | (cp >> 6)));
        strbuf_putc(b, (char)(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        strbuf_putc(b, (char)(0xE0 | (cp >> 12)));
        strbuf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
        strbuf_putc(b, (char)(0x80 | (cp & 0x3F)));
    } else {
        strbuf_putc(b, (char)(0xF0 | (cp >> 18)));
        strbuf_putc(b, (char)(0x80 | ((cp >> 12) & 0x3F)));
        strbuf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
        strbuf_putc(b, (char)(0x80 | (cp & 0x3F)));
    }
}

/* A quoted string; h->pos is on the opening quote. */
static cJSON *ft_hcl_string(ft_hcl *h)
{
    strbuf b = STRBUF_INIT;
    h->pos++;
    for (;;) {
        if (h->pos >= h->len || h->s[h->pos] == '\n') {
            ft_hcl_fail(h, "Unterminated template string", "No closing marker was found for the string.");
            break;
        }
        char c = h->s[h->pos];
        if (c == '"') {
            h->pos++;
            cJSON *v = b.oom ? NULL : cJSON_CreateString(b.data ? b.data : "");
            strbuf_free(&b);
            if (!v)
                ft_err_set(h->e, "Out of memory", NULL);
            return v;
        }
        if ((c == '$' || c == '%') && h->pos + 1 < h->len && h->s[h->pos + 1] == '{') {
            ft_hcl_fail(h, "Variables not allowed", "Variables may not be used here.");
            break;
        }
        if ((c == '$' || c == '%') && h->pos + 2 < h->len && h->s[h->pos + 1] == c && h->s[h->pos + 2] == '{') {
            strbuf_putc(&b, c); /* "$${" is a literal "${" */
            strbuf_putc(&b, '{');
            h->pos += 3;
            continue;
        }
        if (c != '\\') {
            strbuf_putc(&b, c);
            h->pos++;
            continue;
        }
        char sel = h->pos + 1 < h->len ? h->s[h->pos + 1] : '\0';
        static const char from[] = "nrt\"\\", to[] = "\n\r\t\"\\";
        const char *m = sel ? strchr(from, sel) : NULL;
        if (m) {
            strbuf_putc(&b, to[m - from]);
            h->pos += 2;
            continue;
        }
        if (sel == 'u' || sel == 'U') {
            size_t n = sel == 'u' ? 4 : 8;
            unsigned long cp = 0;
            size_t i = 0;
            for (; i < n && h->pos + 2 + i < h->len && isxdigit((unsigned char)h->s[h->pos + 2 + i]); i++) {
                char d = h->s[h->pos + 2 + i];
                int dv = isdigit((unsigned char)d) ? d - '0' : tolower((unsigned char)d) - 'a' + 10;
                cp = cp * 16 + (unsigned long)dv;
            }
            if (i == n && cp <= 0x10FFFF) {
                ft_put_utf8(&b, cp);
                h->pos += 2 + n;
                continue;
            }
            ft_hcl_fail(h, "Invalid escape sequence",
                        "The \\u escape sequence must be followed by four hexadecimal digits.");
            break;
        }
        char detail[160];
        snprintf(detail, sizeof detail, "The symbol \"%c\" is not a valid escape sequence selector.", sel ? sel : ' ');
        ft_hcl_fail(h, "Invalid escape sequence", detail);
        break;
    }
    strbuf_free(&b);
    return NULL;
}

/* <<EOF … EOF and <<-EOF (indented) heredocs; h->pos is on "<<". */
static cJSON *ft_hcl_heredoc(ft_hcl *h)
{
    h->pos += 2;
    bool indent = ft_hcl_peek(h) == '-';
    if (indent)
        h->pos++;
    char *marker = ft_hcl_ident(h);
    if (!marker || !*marker || ft_hcl_peek(h) != '\n') {
        free(marker);
        ft_hcl_fail(h, "Invalid heredoc", "A heredoc marker must be an identifier followed by a newline.");
        return NULL;
    }
    h->pos++;
    h->line++;
    strbuf b = STRBUF_INIT;
    size_t min_indent = (size_t)-1;
    bool closed = false;
    while (h->pos < h->len) {
        size_t start = h->pos, end = start;
        while (end < h->len && h->s[end] != '\n')
            end++;
        size_t ws = 0;
        while (start + ws < end && (h->s[start + ws] == ' ' || h->s[start + ws] == '\t'))
            ws++;
        h->pos = end < h->len ? end + 1 : end;
        if (end - start - ws == strlen(marker) && memcmp(h->s + start + ws, marker, strlen(marker)) == 0) {
            closed = true;
            break;
        }
        h->line++;
        if (ws < end - start && ws < min_indent)
            min_indent = ws;
        strbuf_append(&b, h->s + start, end - start);
        strbuf_putc(&b, '\n');
    }
    free(marker);
    if (!closed) {
        strbuf_free(&b);
        ft_hcl_fail(h, "Unclosed heredoc", "The heredoc has no closing marker.");
        return NULL;
    }
    cJSON *v = NULL;
    if (indent && b.data && min_indent != (size_t)-1 && min_indent > 0) {
        strbuf t = STRBUF_INIT;
        for (char *line = b.data, *nl; *line; line = nl + 1) {
            nl = strchr(line, '\n');
            size_t n = (size_t)(nl - line), skip = n < min_indent ? n : min_indent;
            strbuf_append(&t, line + skip, n - skip);
            strbuf_putc(&t, '\n');
        }
        v = cJSON_CreateString(t.data ? t.data : "");
        strbuf_free(&t);
    } else {
        v = cJSON_CreateString(b.data ? b.data : "");
    }
    strbuf_free(&b);
    if (!v)
        ft_err_set(h->e, "Out of memory", NULL);
    return v;
}

static cJSON *ft_hcl_value(ft_hcl *h, int depth);

/* "[ v, v, … ]" or "{ k = v, k: v \n … }"; h->pos is on the opening bracket. */
static cJSON *ft_hcl_collection(ft_hcl *h, int depth, bool object)
{
    char close = object ? '}' : ']';
    cJSON *res = object ? cJSON_CreateObject() : cJSON_CreateArray();
    if (!res) {
        ft_err_set(h->e, "Out of memory", NULL);
        return NULL;
    }
    h->pos++;
    for (;;) {
        ft_hcl_skip(h, true);
        int c = ft_hcl_peek(h);
        if (c == close) {
            h->pos++;
            return res;
        }
        if (c < 0)
            break;
        char *key = NULL;
        if (object) {
            if (c == '"') {
                cJSON *k = ft_hcl_string(h);
                key = k ? strdup(k->valuestring) : NULL;
                cJSON_Delete(k);
            } else if (ft_ident_start(c)) {
                key = ft_hcl_ident(h);
            }
            if (!key) {
                if (!h->e->summary[0])
                    ft_hcl_fail(h, "Invalid object key", "An object key must be a name or a quoted string.");
                cJSON_Delete(res);
                return NULL;
            }
            ft_hcl_skip(h, false);
            if (ft_hcl_peek(h) != '=' && ft_hcl_peek(h) != ':') {
                free(key);
                ft_hcl_fail(h, "Missing key/value separator",
                            "Expected an equals sign (\"=\") to mark the beginning of the attribute value.");
                cJSON_Delete(res);
                return NULL;
            }
            h->pos++;
            ft_hcl_skip(h, true);
        }
        cJSON *v = ft_hcl_value(h, depth + 1);
        if (!v) {
            free(key);
            cJSON_Delete(res);
            return NULL;
        }
        if (object) {
            cJSON_DeleteItemFromObjectCaseSensitive(res, key);
            cJSON_AddItemToObject(res, key, v);
            free(key);
        } else {
            cJSON_AddItemToArray(res, v);
        }
        ft_hcl_skip(h, !object);
        c = ft_hcl_peek(h);
        if (c == ',' || c == '\n') {
            if (c == '\n')
                h->line++;
            h->pos++;
        } else if (c != close) {
            ft_hcl_fail(h, object ? "Missing attribute separator" : "Missing item separator",
                        object ? "Expected a newline or comma to mark the beginning of the next attribute."
                               : "Expected a comma to mark the beginning of the next item.");
            cJSON_Delete(res);
            return NULL;
        }
    }
    cJSON_Delete(res);
    ft_hcl_fail(h, object ? "Unterminated object constructor expression" : "Unterminated tuple constructor expression",
                "There is no corresponding closing bracket before the end of the file.");
    return NULL;
}

static cJSON *ft_hcl_number(ft_hcl *h)
{
    const char *start = h->s + h->pos;
    size_t i = h->pos;
    if (i < h->len && h->s[i] == '-')
        i++;
    size_t digits = i;
    while (i < h->len && isdigit((unsigned char)h->s[i]))
        i++;
    if (i == digits)
        return NULL;
    if (i + 1 < h->len && h->s[i] == '.' && isdigit((unsigned char)h->s[i + 1])) {
        i++;
        while (i < h->len && isdigit((unsigned char)h->s[i]))
            i++;
    }
    if (i < h->len && (h->s[i] == 'e' || h->s[i] == 'E')) {
        size_t j = i + 1;
        if (j < h->len && (h->s[j] == '+' || h->s[j] == '-'))
            j++;
        if (j < h->len && isdigit((unsigned char)h->s[j])) {
            i = j;
            while (i < h->len && isdigit((unsigned char)h->s[i]))
                i++;
        }
    }
    char *text = strndup(start, i - h->pos);
    cJSON *v = text ? cJSON_CreateNumber(strtod(text, NULL)) : NULL;
    free(text);
    h->pos = i;
    return v;
}

static cJSON *ft_hcl_value(ft_hcl *h, int depth)
{
    if (depth > 64) {
        ft_hcl_fail(h, "Nesting too deep", "The value is nested more deeply than fake-terraform allows.");
        return NULL;
    }
    int c = ft_hcl_peek(h);
    if (c == '"')
        return ft_hcl_string(h);
    if (c == '<' && h->pos + 1 < h->len && h->s[h->pos + 1] == '<')
        return ft_hcl_heredoc(h);
    if (c == '{' || c == '[')
        return ft_hcl_collection(h, depth, c == '{');
    if (c == '-' || isdigit(c)) {
        cJSON *v = ft_hcl_number(h);
        if (v)
            return v;
    }
    if (ft_ident_start(c)) {
        char *word = ft_hcl_ident(h);
        cJSON *v = NULL;
        if (word && strcmp(word, "true") == 0)
            v = cJSON_CreateTrue();
        else if (word && strcmp(word, "false") == 0)
            v = cJSON_CreateFalse();
        else if (word && strcmp(word, "null") == 0)
            v = cJSON_CreateNull();
        free(word);
        if (v)
            return v;
        ft_hcl_fail(h, "Variables not allowed", "Variables may not be used here.");
        return NULL;
    }
    ft_hcl_fail(h, "Invalid expression", "Expected the start of an expression, but found an invalid expression token.");
    return NULL;
}

int ft_tfvars_parse(const char *path, const char *text, size_t len, cJSON *obj, ft_err *e)
{
    ft_hcl h = { path, text, len, 0, 1, e };
    e->summary[0] = '\0';
    for (;;) {
        ft_hcl_skip(&h, true);
        int c = ft_hcl_peek(&h);
        if (c < 0)
            return 0;
        if (!ft_ident_start(c))
            return ft_hcl_fail(&h, "Argument or block definition required",
                               "An argument or block definition is required here.");
        int line = h.line;
        char *name = ft_hcl_ident(&h);
        if (!name)
            return ft_err_set(e, "Out of memory", NULL);
        ft_hcl_skip(&h, false);
        if (ft_hcl_peek(&h) != '=') {
            free(name);
            return ft_hcl_fail(&h, "Argument or block definition required",
                               "An argument or block definition is required here. To set an argument, use the "
                               "equals sign \"=\" to introduce the argument value.");
        }
        h.pos++;
        ft_hcl_skip(&h, false);
        cJSON *v = ft_hcl_value(&h, 0);
        if (!v) {
            free(name);
            return -1;
        }
        if (cJSON_GetObjectItemCaseSensitive(obj, name)) {
            char detail[300];
            snprintf(detail, sizeof detail,
                     "The argument \"%s\" was already set at %s:%d. Each argument may be set only once.", name,
                     path, line);
            free(name);
            cJSON_Delete(v);
            return ft_hcl_fail(&h, "Duplicate argument", detail);
        }
        cJSON_AddItemToObject(obj, name, v);
        free(name);
        ft_hcl_skip(&h, false);
        c = ft_hcl_peek(&h);
        if (c >= 0 && c != '\n')
            return ft_hcl_fail(&h, "Missing newline after argument", "An argument definition must end with a newline.");
    }
}

/* --- resolution ------------------------------------------------------------------------------------------ */

typedef struct {
    const cJSON *decls;
    cJSON       *values;
    ft_err      *warn;
    int          undeclared;
} ft_vars_ctx;

static const cJSON *ft_decl(const cJSON *decls, const char *name)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(decls, name);
    if (cJSON_IsArray(d))
        d = d->child;
    return d;
}

static void ft_vars_set(ft_vars_ctx *c, const char *name, cJSON *v, const char *source)
{
    if (!ft_decl(c->decls, name)) {
        if (c->undeclared++ == 0)
            ft_err_set(c->warn, "Value for undeclared variable",
                       "The root module does not declare a variable named \"%s\" but a value was found in %s. If "
                       "you meant to use this value, add a \"variable\" block to the configuration.\n\nTo silence "
                       "these warnings, use TF_VAR_... environment variables to provide certain \"global\" settings "
                       "to all configurations in your organization. To reduce the verbosity of these warnings, use "
                       "the -compact-warnings option.",
                       name, source);
        cJSON_Delete(v);
        return;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(c->values, name);
    cJSON_AddItemToObject(c->values, name, v);
}

static int ft_vars_file(ft_vars_ctx *c, const char *path, bool must_exist, ft_err *e)
{
    char *text = NULL;
    size_t len = 0;
    int rc = fs_read_file(path, FT_VARFILE_MAX, &text, &len);
    if (rc == -ENOENT && !must_exist)
        return 0;
    if (rc == -ENOENT)
        return ft_err_set(e, "Failed to read variables file", "Given variables file %s does not exist.", path);
    if (rc < 0)
        return ft_err_set(e, "Failed to read variables file", "Error while reading %s: %s.", path, strerror(-rc));
    cJSON *obj = NULL;
    size_t plen = strlen(path);
    if (plen > 5 && strcmp(path + plen - 5, ".json") == 0) {
        char msg[200];
        obj = len ? json_parse_object(text, len, msg, sizeof msg) : cJSON_CreateObject();
        if (!obj)
            rc = ft_err_set(e, "Invalid JSON in variables file", "The file %s is not a JSON object: %s.", path, msg);
    } else {
        obj = cJSON_CreateObject();
        if (!obj)
            rc = ft_err_set(e, "Out of memory", NULL);
        else if ((rc = ft_tfvars_parse(path, text, len, obj, e)) < 0) {
            cJSON_Delete(obj);
            obj = NULL;
        }
    }
    free(text);
    if (!obj)
        return -1;
    char source[600];
    snprintf(source, sizeof source, "file \"%s\"", path);
    while (obj->child) {
        cJSON *item = cJSON_DetachItemViaPointer(obj, obj->child);
        char *name = item->string;
        item->string = NULL;
        ft_vars_set(c, name, item, source);
        free(name);
    }
    cJSON_Delete(obj);
    return 0;
}

static int ft_vars_assign(ft_vars_ctx *c, const char *text, ft_err *e)
{
    const char *eq = strchr(text, '=');
    if (!eq || eq == text)
        return ft_err_set(e, "Invalid -var option",
                          "The given -var option \"%s\" is not correctly specified. Must be a variable name and value "
                          "separated by an equals sign, like -var=\"key=value\".", text);
    char *name = strndup(text, (size_t)(eq - text));
    cJSON *v = cJSON_CreateString(eq + 1);
    if (!name || !v) {
        free(name);
        cJSON_Delete(v);
        return ft_err_set(e, "Out of memory", NULL);
    }
    /* Non-string variables take HCL syntax on the command line ("-var 'list=[1,2]'"). */
    const cJSON *d = ft_decl(c->decls, name);
    const cJSON *type = d ? cJSON_GetObjectItemCaseSensitive(d, "type") : NULL;
    if (cJSON_IsString(type) && strcmp(type->valuestring, "string") != 0) {
        ft_err ignored;
        ft_hcl h = { "-var", eq + 1, strlen(eq + 1), 0, 1, &ignored };
        cJSON *parsed = ft_hcl_value(&h, 0);
        if (parsed && h.pos == h.len) {
            cJSON_Delete(v);
            v = parsed;
        } else {
            cJSON_Delete(parsed);
        }
    }
    ft_vars_set(c, name, v, "a -var option");
    free(name);
    return 0;
}

/* Converts a value to a primitive declared type the way terraform does, or fails. */
static int ft_vars_convert(const char *name, const char *type, cJSON **v, ft_err *e)
{
    cJSON *cur = *v, *conv = NULL;
    if (cJSON_IsNull(cur))
        return 0;
    if (strcmp(type, "string") == 0) {
        if (cJSON_IsString(cur))
            return 0;
        if (cJSON_IsNumber(cur) || cJSON_IsBool(cur)) {
            strbuf b = STRBUF_INIT;
            jsonw_write(&b, cur, 0);
            conv = cJSON_CreateString(b.data ? b.data : "");
            strbuf_free(&b);
        }
    } else if (strcmp(type, "number") == 0) {
        if (cJSON_IsNumber(cur))
            return 0;
        char *end;
        if (cJSON_IsString(cur) && *cur->valuestring) {
            double d = strtod(cur->valuestring, &end);
            if (!*end)
                conv = cJSON_CreateNumber(d);
        }
    } else if (strcmp(type, "bool") == 0) {
        if (cJSON_IsBool(cur))
            return 0;
        if (cJSON_IsString(cur) && (strcmp(cur->valuestring, "true") == 0 || strcmp(cur->valuestring, "false") == 0))
            conv = cJSON_CreateBool(strcmp(cur->valuestring, "true") == 0);
    } else {
        return 0; /* collection and structural types are not checked */
    }
    if (!conv)
        return ft_err_set(e, "Invalid value for input variable",
                          "The given value is not suitable for var.%s declared in the configuration: %s required.",
                          name, type);
    cJSON_Delete(cur);
    *v = conv;
    return 0;
}

int ft_vars_resolve(const cJSON *decls, const ft_var_arg *args, size_t nargs, cJSON **values, ft_err *warn,
                    ft_err *e)
{
    warn->summary[0] = '\0';
    ft_vars_ctx c = { decls, cJSON_CreateObject(), warn, 0 };
    *values = NULL;
    if (!c.values)
        return ft_err_set(e, "Out of memory", NULL);
    for (const cJSON *d = decls ? decls->child : NULL; d; d = d->next) {
        const cJSON *body = ft_decl(decls, d->string);
        const cJSON *def = cJSON_GetObjectItemCaseSensitive(body, "default");
        char env[300];
        snprintf(env, sizeof env, "TF_VAR_%s", d->string);
        if (getenv(env))
            cJSON_AddItemToObject(c.values, d->string, cJSON_CreateString(getenv(env)));
        else if (def)
            cJSON_AddItemToObject(c.values, d->string, cJSON_Duplicate(def, 1));
    }
    int rc = ft_vars_file(&c, "terraform.tfvars", false, e);
    if (rc == 0)
        rc = ft_vars_file(&c, "terraform.tfvars.json", false, e);
    for (size_t i = 0; i < nargs && rc == 0; i++)
        rc = args[i].file ? ft_vars_file(&c, args[i].text, true, e) : ft_vars_assign(&c, args[i].text, e);
    for (const cJSON *d = decls ? decls->child : NULL; d && rc == 0; d = d->next) {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(c.values, d->string);
        if (!v) {
            rc = ft_err_set(e, "No value for required variable",
                            "The root module input variable \"%s\" is not set, and has no default value. Use a -var "
                            "or -var-file command line argument to provide a value for this variable.", d->string);
            break;
        }
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(ft_decl(decls, d->string), "type");
        if (cJSON_IsString(type)) {
            cJSON *conv = cJSON_DetachItemViaPointer(c.values, v);
            rc = ft_vars_convert(d->string, type->valuestring, &conv, e);
            cJSON_AddItemToObject(c.values, d->string, conv);
        }
    }
    if (rc == 0 && c.undeclared > 1) {
        size_t n = strlen(warn->detail);
        snprintf(warn->detail + n, sizeof warn->detail - n, "\n\n(and %d more similar warnings elsewhere)",
                 c.undeclared - 1);
    }
    if (rc < 0) {
        cJSON_Delete(c.values);
        return -1;
    }
    *values = c.values;
    return 0;
}
