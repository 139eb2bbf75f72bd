/* eval.c — template strings with references; see eval.h. */
#include "eval.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iac/jsonw.h"
#include "iac/strbuf.h"

/* Prefixes of references that name something other than a managed resource. */
static const char *const ft_other_roots[] = { "local.", "data.", "path.", "terraform.", "each.", "count.", "self." };

static bool ft_ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '-';
}

ft_ref_kind ft_ref_classify(const char *expr)
{
    for (const char *p = expr; *p; p++)
        if (!ft_ident_char(*p) && *p != '.')
            return FT_REF_OTHER;
    if (strncmp(expr, "var.", 4) == 0)
        return expr[4] && !strchr(expr + 4, '.') ? FT_REF_VAR : FT_REF_OTHER;
    for (size_t i = 0; i < sizeof ft_other_roots / sizeof ft_other_roots[0]; i++)
        if (strncmp(expr, ft_other_roots[i], strlen(ft_other_roots[i])) == 0)
            return FT_REF_OTHER;
    const char *dot = strchr(expr, '.');
    if (!dot || dot == expr || !dot[1] || dot[1] == '.')
        return FT_REF_OTHER;
    if (strncmp(expr, "module.", 7) == 0)
        return FT_REF_RESOURCE;
    /* Resource types are "<provider>_<kind>": a root without an underscore is not one. */
    return memchr(expr, '_', (size_t)(dot - expr)) && isalpha((unsigned char)expr[0]) ? FT_REF_RESOURCE
                                                                                         : FT_REF_OTHER;
}

/* Finds the next "${" that is not escaped as "$${". Returns its offset or -1. */
static long ft_next_interp(const char *s, size_t from)
{
    for (size_t i = from; s[i]; i++) {
        if (s[i] == '$' && s[i + 1] == '$' && s[i + 2] == '{') {
            i += 2;
            continue;
        }
        if (s[i] == '$' && s[i + 1] == '{')
            return (long)i;
    }
    return -1;
}

/* The matching "}" of an interpolation starting at s[at] ("${"), counting nested braces; -1 if unclosed. */
static long ft_interp_end(const char *s, size_t at)
{
    int depth = 0;
    for (size_t i = at + 2; s[i]; i++) {
        if (s[i] == '{')
            depth++;
        else if (s[i] == '}' && depth-- == 0)
            return (long)i;
    }
    return -1;
}

/* Copies s[a..b) trimmed into a new string. */
static char *ft_trim_dup(const char *s, size_t a, size_t b)
{
    while (a < b && isspace((unsigned char)s[a]))
        a++;
    while (b > a && isspace((unsigned char)s[b - 1]))
        b--;
    return strndup(s + a, b - a);
}

/* Appends literal text, turning "$${" back into "${". */
static void ft_put_literal(strbuf *b, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '$' && i + 2 < len && s[i + 1] == '$' && s[i + 2] == '{')
            i++;
        strbuf_putc(b, s[i]);
    }
}

/* Text form of a value joined into a template. */
static void ft_put_value(strbuf *b, const cJSON *v)
{
    if (cJSON_IsString(v))
        strbuf_puts(b, v->valuestring);
    else
        jsonw_write(b, v, 0);
}

static int ft_eval_string(const char *s, ft_lookup_fn fn, void *ctx, cJSON **out, char *missing, size_t mlen)
{
    *out = NULL;
    long at = ft_next_interp(s, 0);
    long end = at >= 0 ? ft_interp_end(s, (size_t)at) : -1;
    /* Exactly one interpolation and nothing else: the value keeps its type. */
    if (at == 0 && end >= 0 && s[end + 1] == '\0') {
        char *expr = ft_trim_dup(s, 2, (size_t)end);
        if (!expr)
            return -ENOMEM;
        cJSON *v = NULL;
        ft_lookup_result r = fn(ctx, ft_ref_classify(expr), expr, &v);
        if (r == FT_LOOKUP_MISSING)
            snprintf(missing, mlen, "%s", expr);
        free(expr);
        if (r == FT_LOOKUP_MISSING)
            return -1;
        if (r == FT_LOOKUP_UNKNOWN)
            return 0;
        *out = r == FT_LOOKUP_KNOWN ? v : cJSON_CreateString(s);
        return *out ? 0 : -ENOMEM;
    }
    strbuf b = STRBUF_INIT;
    size_t pos = 0;
    bool unknown = false;
    while (at >= 0 && end >= 0) {
        ft_put_literal(&b, s + pos, (size_t)at - pos);
        char *expr = ft_trim_dup(s, (size_t)at + 2, (size_t)end);
        if (!expr) {
            strbuf_free(&b);
            return -ENOMEM;
        }
        cJSON *v = NULL;
        ft_lookup_result r = fn(ctx, ft_ref_classify(expr), expr, &v);
        if (r == FT_LOOKUP_MISSING) {
            snprintf(missing, mlen, "%s", expr);
            free(expr);
            strbuf_free(&b);
            return -1;
        }
        if (r == FT_LOOKUP_UNKNOWN)
            unknown = true;
        else if (r == FT_LOOKUP_KNOWN)
            ft_put_value(&b, v);
        else
            strbuf_append(&b, s + at, (size_t)(end - at + 1));
        cJSON_Delete(v);
        free(expr);
        pos = (size_t)end + 1;
        at = ft_next_interp(s, pos);
        end = at >= 0 ? ft_interp_end(s, (size_t)at) : -1;
    }
    ft_put_literal(&b, s + pos, strlen(s + pos));
    if (b.oom) {
        strbuf_free(&b);
        return -ENOMEM;
    }
    if (!unknown)
        *out = cJSON_CreateString(b.data ? b.data : "");
    strbuf_free(&b);
    return unknown || *out ? 0 : -ENOMEM;
}

int ft_eval(const cJSON *v, ft_lookup_fn fn, void *ctx, cJSON **out, char *missing, size_t missing_len)
{
    *out = NULL;
    if (cJSON_IsString(v))
        return ft_eval_string(v->valuestring, fn, ctx, out, missing, missing_len);
    if (!cJSON_IsObject(v) && !cJSON_IsArray(v)) {
        *out = cJSON_Duplicate(v, 0);
        return *out ? 0 : -ENOMEM;
    }
    bool obj = cJSON_IsObject(v);
    cJSON *res = obj ? cJSON_CreateObject() : cJSON_CreateArray();
    if (!res)
        return -ENOMEM;
    for (const cJSON *c = v->child; c; c = c->next) {
        cJSON *cv = NULL;
        int rc = ft_eval(c, fn, ctx, &cv, missing, missing_len);
        if (rc < 0 || !cv) { /* an unknown part makes the whole value unknown: the fake keeps it coarse */
            cJSON_Delete(res);
            return rc;
        }
        if (obj)
            cJSON_AddItemToObject(res, c->string, cv);
        else
            cJSON_AddItemToArray(res, cv);
    }
    *out = res;
    return 0;
}

static void ft_refs_in_string(const char *s, cJSON *refs)
{
    long at = ft_next_interp(s, 0);
    while (at >= 0) {
        long end = ft_interp_end(s, (size_t)at);
        if (end < 0)
            return;
        char *expr = ft_trim_dup(s, (size_t)at + 2, (size_t)end);
        if (expr && ft_ref_classify(expr) != FT_REF_OTHER) {
            bool seen = false;
            for (const cJSON *r = refs->child; r && !seen; r = r->next)
                seen = strcmp(r->valuestring, expr) == 0;
            if (!seen)
                cJSON_AddItemToArray(refs, cJSON_CreateString(expr));
        }
        free(expr);
        at = ft_next_interp(s, (size_t)end + 1);
    }
}

void ft_eval_references(const cJSON *v, cJSON *refs)
{
    if (cJSON_IsString(v))
        ft_refs_in_string(v->valuestring, refs);
    for (const cJSON *c = (cJSON_IsObject(v) || cJSON_IsArray(v)) ? v->child : NULL; c; c = c->next)
        ft_eval_references(c, refs);
}

bool ft_eval_has_template(const cJSON *v)
{
    if (cJSON_IsString(v))
        return ft_next_interp(v->valuestring, 0) >= 0;
    for (const cJSON *c = (cJSON_IsObject(v) || cJSON_IsArray(v)) ? v->child : NULL; c; c = c->next)
        if (ft_eval_has_template(c))
            return true;
    return false;
}
