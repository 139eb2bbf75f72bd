/* jsonw.c — Go-compatible JSON text from a cJSON tree; see jsonw.h. */
#include "iac/jsonw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSONW_MAX_DEPTH 512

static void jsonw_indent(strbuf *b, int flags, int depth)
{
    if (!(flags & JSONW_INDENT))
        return;
    strbuf_putc(b, '\n');
    for (int i = 0; i < depth; i++)
        strbuf_puts(b, "  ");
}

/* Length of the valid UTF-8 sequence at u (at most n bytes), or 0 when it is not one. */
static size_t jsonw_utf8_len(const unsigned char *u, size_t n)
{
    size_t len = u[0] >= 0xF0 && u[0] <= 0xF4 ? 4 : u[0] >= 0xE0 ? 3 : u[0] >= 0xC2 && u[0] <= 0xDF ? 2 : 0;
    if (len == 0 || len > n || u[0] > 0xF4)
        return 0;
    for (size_t k = 1; k < len; k++)
        if ((u[k] & 0xC0) != 0x80)
            return 0;
    if ((u[0] == 0xE0 && u[1] < 0xA0) || (u[0] == 0xED && u[1] > 0x9F) || (u[0] == 0xF0 && u[1] < 0x90) ||
        (u[0] == 0xF4 && u[1] > 0x8F))
        return 0; /* overlong, surrogate or above U+10FFFF */
    return len;
}

static void jsonw_string(strbuf *b, const char *s, int flags)
{
    strbuf_putc(b, '"');
    size_t len = strlen(s), run = 0;
    for (size_t i = 0; i < len; i++) {
        const unsigned char *u = (const unsigned char *)s + i;
        const char *esc = NULL;
        size_t skip = 1;
        size_t valid = *u < 0x80 ? 1 : jsonw_utf8_len(u, len - i);
        if ((flags & JSONW_HTML_ESCAPE) && (*u == '<' || *u == '>' || *u == '&'))
            esc = *u == '<' ? "\\u003c" : *u == '>' ? "\\u003e" : "\\u0026";
        else if (valid == 0)
            esc = "\\ufffd"; /* Go replaces each invalid byte */
        else if (valid > 1 && !(u[0] == 0xE2 && u[1] == 0x80 && (u[2] == 0xA8 || u[2] == 0xA9))) {
            i += valid - 1;
            continue;
        }
        else if (u[0] == 0xE2 && i + 2 < len && u[1] == 0x80 && (u[2] == 0xA8 || u[2] == 0xA9))
            esc = u[2] == 0xA8 ? "\\u2028" : "\\u2029", skip = 3;
        if (!esc)
            continue;
        strbuf_json_escape(b, s + run, i - run);
        strbuf_puts(b, esc);
        i += skip - 1;
        run = i + 1;
    }
    strbuf_json_escape(b, s + run, len - run);
    strbuf_putc(b, '"');
}

/* Go's float formatting: the shortest text that reads back as the same double, in plain notation unless the
 * magnitude is below 1e-6 or at least 1e21, where it uses an exponent without leading zeros ("1e-7", "1e+21"). */
static void jsonw_number(strbuf *b, double d)
{
    if (!isfinite(d)) {
        strbuf_puts(b, "null");
        return;
    }
    char tmp[64];
    double a = fabs(d);
    if (a != 0 && (a < 1e-6 || a >= 1e21)) {
        for (int prec = 0; prec <= 16; prec++) {
            snprintf(tmp, sizeof tmp, "%.*e", prec, d);
            if (strtod(tmp, NULL) == d)
                break;
        }
        char *e = strchr(tmp, 'e');
        if (e) { /* "e-07" → "e-7" */
            char *digits = e + 2;
            char *first = digits;
            while (*first == '0' && first[1])
                first++;
            memmove(digits, first, strlen(first) + 1);
        }
    } else {
        for (int decimals = 0; decimals <= 24; decimals++) {
            snprintf(tmp, sizeof tmp, "%.*f", decimals, d);
            if (strtod(tmp, NULL) == d)
                break;
        }
    }
    strbuf_puts(b, tmp);
}

static int jsonw_key_cmp(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    return strcmp(x->string ? x->string : "", y->string ? y->string : "");
}

static void jsonw_value(strbuf *b, const cJSON *v, int flags, int depth);

static void jsonw_container(strbuf *b, const cJSON *v, int flags, int depth, bool object)
{
    int n = cJSON_GetArraySize(v);
    if (n == 0) {
        strbuf_puts(b, object ? "{}" : "[]");
        return;
    }
    const cJSON *stackbuf[32];
    const cJSON **items = n <= 32 ? stackbuf : malloc((size_t)n * sizeof *items);
    if (!items) {
        b->oom = true;
        return;
    }
    int i = 0;
    for (const cJSON *c = v->child; c && i < n; c = c->next)
        items[i++] = c;
    if (object && (flags & JSONW_SORT_KEYS))
        qsort(items, (size_t)n, sizeof *items, jsonw_key_cmp);
    strbuf_putc(b, object ? '{' : '[');
    for (i = 0; i < n; i++) {
        if (i)
            strbuf_putc(b, ',');
        jsonw_indent(b, flags, depth + 1);
        if (object) {
            jsonw_string(b, items[i]->string ? items[i]->string : "", flags);
            strbuf_puts(b, (flags & JSONW_INDENT) ? ": " : ":");
        }
        jsonw_value(b, items[i], flags, depth + 1);
    }
    jsonw_indent(b, flags, depth);
    strbuf_putc(b, object ? '}' : ']');
    if (items != stackbuf)
        free(items);
}

static void jsonw_value(strbuf *b, const cJSON *v, int flags, int depth)
{
    if (!v || depth > JSONW_MAX_DEPTH || cJSON_IsNull(v) || cJSON_IsInvalid(v))
        strbuf_puts(b, "null");
    else if (cJSON_IsTrue(v))
        strbuf_puts(b, "true");
    else if (cJSON_IsFalse(v))
        strbuf_puts(b, "false");
    else if (cJSON_IsNumber(v))
        jsonw_number(b, v->valuedouble);
    else if (cJSON_IsString(v))
        jsonw_string(b, v->valuestring ? v->valuestring : "", flags);
    else if (cJSON_IsRaw(v))
        strbuf_puts(b, v->valuestring ? v->valuestring : "null");
    else
        jsonw_container(b, v, flags, depth, cJSON_IsObject(v));
}

void jsonw_write(strbuf *b, const cJSON *v, int flags)
{
    jsonw_value(b, v, flags, 0);
}
