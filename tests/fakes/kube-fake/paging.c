/* paging.c — continue tokens and limits (see paging.h). */
#include "paging.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iac/digest.h"
#include "iac/json.h"
#include "iac/strbuf.h"

#define PAGING_VERSION "kube-fake/v1"

int paging_encode(const paging_token *t, char *out, size_t outlen)
{
    strbuf js = STRBUF_INIT;
    strbuf_printf(&js, "{\"v\":\"" PAGING_VERSION "\",\"rv\":%llu,\"start\":\"", (unsigned long long)t->rv);
    strbuf_json_escape(&js, t->ns, strlen(t->ns));
    strbuf_putc(&js, '/');
    strbuf_json_escape(&js, t->name, strlen(t->name));
    strbuf_puts(&js, "\"}");
    size_t need = digest_base64_encoded_len(js.len);
    char *b64 = js.oom ? NULL : malloc(need);
    if (!b64 || need > outlen) {
        free(b64);
        strbuf_free(&js);
        return -1;
    }
    size_t n = digest_base64_encode(js.data, js.len, b64);
    strbuf_free(&js);
    /* base64url, no padding (Go's base64.RawURLEncoding): the token travels in a query string as it is. */
    while (n > 0 && b64[n - 1] == '=')
        n--;
    for (size_t i = 0; i < n; i++)
        out[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
    out[n] = '\0';
    free(b64);
    return 0;
}

static int fail(char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    return -1;
}

int paging_decode(const char *text, paging_token *t, char *err, size_t errlen)
{
    size_t n = strlen(text);
    if (n == 0 || n >= PAGING_TOKEN_MAX || n % 4 == 1)
        return fail(err, errlen, "illegal base64 data");
    char std[PAGING_TOKEN_MAX + 4];
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        if (c == '+' || c == '/' || c == '=')
            return fail(err, errlen, "illegal base64 data"); /* standard base64 is not base64url */
        std[i] = c == '-' ? '+' : c == '_' ? '/' : c;
    }
    while (n % 4)
        std[n++] = '=';
    uint8_t *raw = NULL;
    size_t rawlen = 0;
    if (digest_base64_decode(std, n, &raw, &rawlen) < 0)
        return fail(err, errlen, "illegal base64 data");
    char jerr[128];
    cJSON *doc = json_parse_object((const char *)raw, rawlen, jerr, sizeof jerr);
    free(raw);
    const char *v = NULL, *start = NULL;
    uint64_t rv = 0;
    int rc = -1;
    if (!doc)
        fail(err, errlen, "not a JSON object");
    else if (json_get_string(doc, "v", true, &v, jerr, sizeof jerr) < 0 || strcmp(v, PAGING_VERSION) != 0)
        fail(err, errlen, "encoded version is not supported (want " PAGING_VERSION ")");
    else if (json_get_u64(doc, "rv", true, &rv, jerr, sizeof jerr) < 0 || rv == 0)
        fail(err, errlen, "incorrect encoded start resourceVersion (version " PAGING_VERSION ")");
    else if (json_get_string(doc, "start", true, &start, jerr, sizeof jerr) < 0 || !strchr(start, '/'))
        fail(err, errlen, "no start key");
    else {
        size_t nslen = (size_t)(strchr(start, '/') - start), namelen = strlen(start) - nslen - 1;
        if (nslen >= sizeof t->ns || namelen == 0 || namelen >= sizeof t->name || strchr(start + nslen + 1, '/')) {
            fail(err, errlen, "start key is not a namespace and a name");
        } else {
            t->rv = rv;
            memcpy(t->ns, start, nslen);
            t->ns[nslen] = '\0';
            memcpy(t->name, start + nslen + 1, namelen + 1);
            rc = 0;
        }
    }
    cJSON_Delete(doc);
    return rc;
}

bool paging_after(const paging_token *t, const char *ns, const char *name)
{
    int c = strcmp(ns, t->ns);
    return c > 0 || (c == 0 && strcmp(name, t->name) > 0);
}

int paging_parse_limit(const char *text, int64_t *out)
{
    const char *p = text + (*text == '+' || *text == '-');
    int64_t v = 0;
    if (*p == '\0')
        return -1;
    for (; *p; p++) {
        if (*p < '0' || *p > '9' || v > (INT64_MAX - (*p - '0')) / 10)
            return -1;
        v = v * 10 + (*p - '0');
    }
    *out = *text == '-' ? -v : v;
    return 0;
}
