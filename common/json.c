/* json.c — strict member getters over cJSON; see json.h.
 *
 * Every getter follows one story: look the member up (case-sensitive, first match), treat absent and JSON null
 * alike, check the JSON type, then check the range. Messages name the member and what was found ("task_id:
 * expected a whole number, got string"); they never echo a string value, so a payload that carries a secret cannot
 * leak it into a log line through an error. Numbers are read from cJSON's double, never from its saturating
 * valueint: a whole number is one whose double has no fraction and lies within ±2^53, where doubles are exact.
 *
 * json_parse_object() copies the text into a NUL-terminated buffer before handing it to cJSON: the frame from the
 * socket has no terminator, and a terminated copy keeps any parser over-read inside our own allocation. It also
 * rejects what cJSON alone would let through: raw NUL bytes, the escape \u0000 (cJSON would hand back a C string
 * silently cut short at it), and trailing bytes after the value. */
#include "iac/json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_EXACT_MAX 9007199254740992.0 /* 2^53: the largest range in which every whole double is exact */

static const char *json_type_name(const cJSON *item)
{
    if (cJSON_IsNull(item)) return "null";
    if (cJSON_IsBool(item)) return "boolean";
    if (cJSON_IsNumber(item)) return "number";
    if (cJSON_IsString(item)) return "string";
    if (cJSON_IsArray(item)) return "array";
    if (cJSON_IsObject(item)) return "object";
    return "an invalid value";
}

static void json_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void json_errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* The shortest %g form that reads back as the same double, so that messages say "1.5", not "1.5000000000000000". */
static void json_fmt_number(double v, char *buf, size_t len)
{
    if (!isfinite(v)) {
        snprintf(buf, len, "%s", isnan(v) ? "NaN" : (v > 0 ? "Infinity" : "-Infinity"));
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

/* The shared first half of every getter: 0 and *item for a present, non-null member; 1 when absent or null and
 * optional; -1 when absent or null and required, or when obj is not an object. A NULL obj reads as an empty one so
 * that an optional sub-object can be passed along unchecked. */
static int json_lookup(const cJSON *obj, const char *key, bool required, const cJSON **item, char *err,
                       size_t errlen)
{
    const cJSON *it = NULL;
    if (obj) {
        if (!cJSON_IsObject(obj)) {
            json_errf(err, errlen, "%s: cannot be read from %s (expected an object)", key, json_type_name(obj));
            return -1;
        }
        it = cJSON_GetObjectItemCaseSensitive(obj, key);
    }
    if (!it || cJSON_IsNull(it)) {
        if (!required)
            return 1;
        json_errf(err, errlen, "%s: required but %s", key, it ? "null" : "missing");
        return -1;
    }
    *item = it;
    return 0;
}

int json_get_string(const cJSON *obj, const char *key, bool required, const char **out, char *err, size_t errlen)
{
    const cJSON *it;
    int rc = json_lookup(obj, key, required, &it, err, errlen);
    if (rc != 0)
        return rc;
    if (!cJSON_IsString(it) || !it->valuestring) {
        json_errf(err, errlen, "%s: expected a string, got %s", key, json_type_name(it));
        return -1;
    }
    *out = it->valuestring;
    return 0;
}

/* A whole number within [lo, hi] (both within ±2^53); the range is named in the message with the bounds given. */
static int json_get_whole(const cJSON *obj, const char *key, bool required, double lo, double hi,
                          const char *range, double *out, char *err, size_t errlen)
{
    const cJSON *it;
    int rc = json_lookup(obj, key, required, &it, err, errlen);
    if (rc != 0)
        return rc;
    if (!cJSON_IsNumber(it)) {
        json_errf(err, errlen, "%s: expected a whole number, got %s", key, json_type_name(it));
        return -1;
    }
    double v = it->valuedouble;
    char num[40];
    json_fmt_number(v, num, sizeof num);
    if (!isfinite(v) || v != floor(v)) {
        json_errf(err, errlen, "%s: expected a whole number, got %s", key, num);
        return -1;
    }
    if (v < lo || v > hi) {
        json_errf(err, errlen, "%s: expected a whole number from %s, got %s", key, range, num);
        return -1;
    }
    *out = v;
    return 0;
}

int json_get_u64(const cJSON *obj, const char *key, bool required, uint64_t *out, char *err, size_t errlen)
{
    double v;
    int rc = json_get_whole(obj, key, required, 0, JSON_EXACT_MAX, "0 to 2^53", &v, err, errlen);
    if (rc == 0)
        *out = (uint64_t)v;
    return rc;
}

int json_get_i64(const cJSON *obj, const char *key, bool required, int64_t *out, char *err, size_t errlen)
{
    double v;
    int rc = json_get_whole(obj, key, required, -JSON_EXACT_MAX, JSON_EXACT_MAX, "-2^53 to 2^53", &v, err,
                            errlen);
    if (rc == 0)
        *out = (int64_t)v;
    return rc;
}

/* Finite only: "1e999" parses to infinity, which no field of ours can mean and which we could not write back. */
int json_get_double(const cJSON *obj, const char *key, bool required, double *out, char *err, size_t errlen)
{
    const cJSON *it;
    int rc = json_lookup(obj, key, required, &it, err, errlen);
    if (rc != 0)
        return rc;
    if (!cJSON_IsNumber(it)) {
        json_errf(err, errlen, "%s: expected a number, got %s", key, json_type_name(it));
        return -1;
    }
    if (!isfinite(it->valuedouble)) {
        json_errf(err, errlen, "%s: expected a finite number, got a number out of range", key);
        return -1;
    }
    *out = it->valuedouble;
    return 0;
}

int json_get_bool(const cJSON *obj, const char *key, bool required, bool *out, char *err, size_t errlen)
{
    const cJSON *it;
    int rc = json_lookup(obj, key, required, &it, err, errlen);
    if (rc != 0)
        return rc;
    if (!cJSON_IsBool(it)) {
        json_errf(err, errlen, "%s: expected a boolean, got %s", key, json_type_name(it));
        return -1;
    }
    *out = cJSON_IsTrue(it);
    return 0;
}

int json_get_object(const cJSON *obj, const char *key, bool required, const cJSON **out, char *err, size_t errlen)
{
    const cJSON *it;
    int rc = json_lookup(obj, key, required, &it, err, errlen);
    if (rc != 0)
        return rc;
    if (!cJSON_IsObject(it)) {
        json_errf(err, errlen, "%s: expected an object, got %s", key, json_type_name(it));
        return -1;
    }
    *out = it;
    return 0;
}

int json_get_array(const cJSON *obj, const char *key, bool required, const cJSON **out, char *err, size_t errlen)
{
    const cJSON *it;
    int rc = json_lookup(obj, key, required, &it, err, errlen);
    if (rc != 0)
        return rc;
    if (!cJSON_IsArray(it)) {
        json_errf(err, errlen, "%s: expected an array, got %s", key, json_type_name(it));
        return -1;
    }
    *out = it;
    return 0;
}

/* Offset of the first \u0000 escape in text, or len. A backslash always escapes the next byte, so "\\u0000" (an
 * escaped backslash, then text) is not one; outside strings a backslash is a syntax error cJSON reports anyway. */
static size_t json_find_nul_escape(const char *text, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (text[i] != '\\')
            continue;
        if (len - i >= 6 && memcmp(text + i + 1, "u0000", 5) == 0)
            return i;
        i++;
    }
    return len;
}

cJSON *json_parse_object(const char *text, size_t len, char *err, size_t errlen)
{
    if (!text || len == 0) {
        json_errf(err, errlen, "not valid JSON: empty input");
        return NULL;
    }
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        json_errf(err, errlen, "not valid JSON: NUL byte at offset %zu", (size_t)(nul - text));
        return NULL;
    }
    size_t esc = json_find_nul_escape(text, len);
    if (esc < len) {
        json_errf(err, errlen, "not supported: \\u0000 in a string at offset %zu", esc);
        return NULL;
    }
    if (len == (size_t)-1) {
        json_errf(err, errlen, "not valid JSON: input too large");
        return NULL;
    }
    char *copy = malloc(len + 1);
    if (!copy) {
        json_errf(err, errlen, "out of memory parsing %zu bytes of JSON", len);
        return NULL;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';

    /* The length passed includes the terminator, and require_null_terminated makes cJSON insist that only
     * whitespace follows the value: "{} x" is an error, not an object. */
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(copy, len + 1, &end, 1);
    size_t at = end && end >= copy && end <= copy + len ? (size_t)(end - copy) : 0;
    free(copy);
    if (!root) {
        json_errf(err, errlen, "not valid JSON (error at byte %zu of %zu)", at, len);
        return NULL;
    }
    if (!cJSON_IsObject(root)) {
        json_errf(err, errlen, "expected a JSON object, got %s", json_type_name(root));
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}
