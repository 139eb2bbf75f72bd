/* selector.c — label and field selectors (see selector.h).
 *
 * A small cursor parser: each requirement is key, operator, value(s); the operator table maps its spelling to the
 * sel_op, longest spellings first so that "==" is not read as "=" followed by "=". */
#include "selector.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *p;
    char       *err;
    size_t      errlen;
} cursor;

static void skip_ws(cursor *c)
{
    while (*c->p == ' ' || *c->p == '\t')
        c->p++;
}

static bool key_char(char ch)
{
    return isalnum((unsigned char)ch) || ch == '-' || ch == '_' || ch == '.' || ch == '/';
}

static bool value_char(char ch) { return isalnum((unsigned char)ch) || ch == '-' || ch == '_' || ch == '.'; }

/* A run of characters accepted by ok, copied (malloc). NULL on OOM; "" when the run is empty. */
static char *take(cursor *c, bool (*ok)(char))
{
    const char *start = c->p;
    while (*c->p && ok(*c->p))
        c->p++;
    size_t n = (size_t)(c->p - start);
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, start, n);
        s[n] = '\0';
    }
    return s;
}

static int fail(cursor *c, const char *what)
{
    snprintf(c->err, c->errlen, "unable to parse requirement: %s", what);
    return -1;
}

static int add_value(sel_req *r, char *v)
{
    if (!v)
        return -ENOMEM;
    if (r->nvalues >= SELECTOR_MAX_VALUES) {
        free(v);
        return -E2BIG;
    }
    char **nv = realloc(r->values, (r->nvalues + 1) * sizeof *nv);
    if (!nv) {
        free(v);
        return -ENOMEM;
    }
    r->values = nv;
    r->values[r->nvalues++] = v;
    return 0;
}

static void req_free(sel_req *r)
{
    free(r->key);
    for (size_t i = 0; i < r->nvalues; i++)
        free(r->values[i]);
    free(r->values);
    memset(r, 0, sizeof *r);
}

void selector_free(selector *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        req_free(&s->reqs[i]);
    free(s->reqs);
    s->reqs = NULL;
    s->n = 0;
}

static int push_req(selector *s, sel_req *r, cursor *c)
{
    if (s->n >= SELECTOR_MAX_REQS) {
        req_free(r);
        snprintf(c->err, c->errlen, "a selector has at most %d requirements", SELECTOR_MAX_REQS);
        return -1;
    }
    sel_req *n = realloc(s->reqs, (s->n + 1) * sizeof *n);
    if (!n) {
        req_free(r);
        snprintf(c->err, c->errlen, "out of memory");
        return -1;
    }
    s->reqs = n;
    s->reqs[s->n++] = *r;
    return 0;
}

/* "(a, b, c)" after in/notin. */
static int parse_set(cursor *c, sel_req *r)
{
    skip_ws(c);
    if (*c->p != '(')
        return fail(c, "expected '(' after in/notin");
    c->p++;
    for (;;) {
        skip_ws(c);
        int rc = add_value(r, take(c, value_char));
        if (rc == -E2BIG)
            return fail(c, "too many values in a set");
        if (rc < 0)
            return fail(c, "out of memory");
        skip_ws(c);
        if (*c->p == ',') {
            c->p++;
            continue;
        }
        if (*c->p == ')') {
            c->p++;
            return 0;
        }
        return fail(c, "expected ',' or ')' in a set of values");
    }
}

/* Operator spellings, longest first. Words (in, notin) must be followed by a non-key character. */
static const struct {
    const char *text;
    sel_op      op;
    bool        word;
} label_ops[] = {
    { "==", SEL_EQ, false }, { "!=", SEL_NE, false }, { "=", SEL_EQ, false },   { ">", SEL_GT, false },
    { "<", SEL_LT, false },  { "notin", SEL_NOTIN, true }, { "in", SEL_IN, true },
};

static int parse_label_req(cursor *c, sel_req *r)
{
    skip_ws(c);
    bool negated = false;
    if (*c->p == '!') {
        negated = true;
        c->p++;
        skip_ws(c);
    }
    r->key = take(c, key_char);
    if (!r->key)
        return fail(c, "out of memory");
    if (!*r->key)
        return fail(c, "expected a label key");
    skip_ws(c);
    if (negated || *c->p == ',' || *c->p == '\0') {
        r->op = negated ? SEL_NOT_EXISTS : SEL_EXISTS;
        return 0;
    }
    size_t i;
    for (i = 0; i < sizeof label_ops / sizeof label_ops[0]; i++) {
        size_t n = strlen(label_ops[i].text);
        if (strncmp(c->p, label_ops[i].text, n) == 0 && (!label_ops[i].word || !key_char(c->p[n])))
            break;
    }
    if (i == sizeof label_ops / sizeof label_ops[0])
        return fail(c, "expected an operator (=, ==, !=, in, notin, >, <) after the key");
    c->p += strlen(label_ops[i].text);
    r->op = label_ops[i].op;
    if (r->op == SEL_IN || r->op == SEL_NOTIN)
        return parse_set(c, r);
    skip_ws(c);
    char *v = take(c, value_char);
    if (!v)
        return fail(c, "out of memory");
    if ((r->op == SEL_GT || r->op == SEL_LT)) {
        char *end;
        errno = 0;
        (void)strtoll(v, &end, 10);
        if (!*v || *end || errno) {
            free(v);
            return fail(c, "> and < need a whole number");
        }
    }
    if (add_value(r, v) < 0)
        return fail(c, "out of memory");
    return 0;
}

int selector_parse_labels(const char *text, selector *out, char *err, size_t errlen)
{
    cursor c = { text ? text : "", err, errlen };
    memset(out, 0, sizeof *out);
    skip_ws(&c);
    if (!*c.p)
        return 0;
    for (;;) {
        sel_req r = { 0 };
        if (parse_label_req(&c, &r) < 0) {
            req_free(&r);
            selector_free(out);
            return -1;
        }
        if (push_req(out, &r, &c) < 0) {
            selector_free(out);
            return -1;
        }
        skip_ws(&c);
        if (*c.p == '\0')
            return 0;
        if (*c.p != ',') {
            fail(&c, "expected ',' between requirements");
            selector_free(out);
            return -1;
        }
        c.p++;
    }
}

/* One field requirement "path=value" (the value runs to the next unescaped ','; "\," is a comma). */
static int parse_field_req(cursor *c, sel_req *r)
{
    skip_ws(c);
    const char *start = c->p;
    while (*c->p && (isalnum((unsigned char)*c->p) || *c->p == '.' || *c->p == '_' || *c->p == '-'))
        c->p++;
    size_t n = (size_t)(c->p - start);
    if (n == 0)
        return fail(c, "expected a field path");
    r->key = strndup(start, n);
    if (!r->key)
        return fail(c, "out of memory");
    if (strncmp(c->p, "==", 2) == 0) {
        r->op = SEL_EQ;
        c->p += 2;
    } else if (strncmp(c->p, "!=", 2) == 0) {
        r->op = SEL_NE;
        c->p += 2;
    } else if (*c->p == '=') {
        r->op = SEL_EQ;
        c->p++;
    } else {
        return fail(c, "field selectors take only =, == and !=");
    }
    strbuf v = STRBUF_INIT;
    for (; *c->p && *c->p != ','; c->p++) {
        if (*c->p == '\\' && c->p[1])
            c->p++;
        strbuf_putc(&v, *c->p);
    }
    if (v.oom) {
        strbuf_free(&v);
        return fail(c, "out of memory");
    }
    char *s = v.data ? strbuf_detach(&v, NULL) : strdup("");
    if (add_value(r, s) < 0)
        return fail(c, "out of memory");
    return 0;
}

int selector_parse_fields(const char *text, selector *out, char *err, size_t errlen)
{
    cursor c = { text ? text : "", err, errlen };
    memset(out, 0, sizeof *out);
    skip_ws(&c);
    if (!*c.p)
        return 0;
    for (;;) {
        sel_req r = { 0 };
        if (parse_field_req(&c, &r) < 0) {
            req_free(&r);
            selector_free(out);
            return -1;
        }
        if (push_req(out, &r, &c) < 0) {
            selector_free(out);
            return -1;
        }
        if (*c.p == '\0')
            return 0;
        c.p++; /* ',' */
    }
}

static bool in_values(const sel_req *r, const char *v)
{
    for (size_t i = 0; i < r->nvalues; i++)
        if (strcmp(r->values[i], v) == 0)
            return true;
    return false;
}

static bool compare_int(const char *label, const char *bound, sel_op op)
{
    char *end;
    errno = 0;
    long long a = strtoll(label, &end, 10);
    if (!*label || *end || errno)
        return false;
    long long b = strtoll(bound, NULL, 10);
    return op == SEL_GT ? a > b : a < b;
}

static bool req_matches(const sel_req *r, const char *v /* NULL: absent */)
{
    switch (r->op) {
    case SEL_EQ:
        return v && strcmp(v, r->values[0]) == 0;
    case SEL_NE:
        return !v || strcmp(v, r->values[0]) != 0;
    case SEL_IN:
        return v && in_values(r, v);
    case SEL_NOTIN:
        return !v || !in_values(r, v);
    case SEL_EXISTS:
        return v != NULL;
    case SEL_NOT_EXISTS:
        return v == NULL;
    case SEL_GT:
    case SEL_LT:
        return v && compare_int(v, r->values[0], r->op);
    }
    return false;
}

bool selector_match_labels(const selector *s, const cJSON *labels)
{
    for (size_t i = 0; i < s->n; i++) {
        const cJSON *l = cJSON_IsObject(labels) ? cJSON_GetObjectItemCaseSensitive(labels, s->reqs[i].key) : NULL;
        if (!req_matches(&s->reqs[i], cJSON_IsString(l) ? l->valuestring : NULL))
            return false;
    }
    return true;
}

/* The value at a dotted path as text ("" when missing or not a scalar). */
static void field_value(const cJSON *obj, const char *path, char *out, size_t outlen)
{
    char seg[256];
    const cJSON *cur = obj;
    out[0] = '\0';
    for (const char *p = path; cur && *p;) {
        size_t n = strcspn(p, ".");
        if (n >= sizeof seg)
            return;
        memcpy(seg, p, n);
        seg[n] = '\0';
        cur = cJSON_IsObject(cur) ? cJSON_GetObjectItemCaseSensitive(cur, seg) : NULL;
        p += n;
        if (*p)
            p++;
    }
    if (cJSON_IsString(cur))
        snprintf(out, outlen, "%s", cur->valuestring);
    else if (cJSON_IsNumber(cur))
        snprintf(out, outlen, "%.17g", cur->valuedouble);
    else if (cJSON_IsBool(cur))
        snprintf(out, outlen, "%s", cJSON_IsTrue(cur) ? "true" : "false");
}

bool selector_match_fields(const selector *s, const cJSON *obj)
{
    char v[1024];
    for (size_t i = 0; i < s->n; i++) {
        field_value(obj, s->reqs[i].key, v, sizeof v);
        if (!req_matches(&s->reqs[i], v))
            return false;
    }
    return true;
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

void selector_format_match_labels(const cJSON *match_labels, strbuf *out)
{
    const cJSON *it;
    size_t n = 0, i = 0;
    cJSON_ArrayForEach(it, match_labels) n++;
    if (n == 0)
        return;
    const cJSON **items = malloc(n * sizeof *items);
    if (!items) {
        out->oom = true;
        return;
    }
    cJSON_ArrayForEach(it, match_labels) items[i++] = it;
    qsort(items, n, sizeof *items, key_cmp);
    for (i = 0; i < n; i++)
        strbuf_printf(out, "%s%s=%s", i ? "," : "", items[i]->string,
                      cJSON_IsString(items[i]) ? items[i]->valuestring : "");
    free(items);
}
