/* kstatus.c — Status objects and object replies (see kstatus.h). */
#include "kstatus.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "iac/jsonw.h"

static const struct {
    int         code;
    const char *reason;
} reasons[KS_COUNT] = {
    [KS_BAD_REQUEST] = { 400, "BadRequest" },
    [KS_UNAUTHORIZED] = { 401, "Unauthorized" },
    [KS_FORBIDDEN] = { 403, "Forbidden" },
    [KS_NOT_FOUND] = { 404, "NotFound" },
    [KS_METHOD_NOT_ALLOWED] = { 405, "MethodNotAllowed" },
    [KS_ALREADY_EXISTS] = { 409, "AlreadyExists" },
    [KS_CONFLICT] = { 409, "Conflict" },
    [KS_INVALID] = { 422, "Invalid" },
    [KS_UNSUPPORTED_MEDIA_TYPE] = { 415, "UnsupportedMediaType" },
    [KS_INTERNAL] = { 500, "InternalError" },
    [KS_EXPIRED] = { 410, "Expired" },
};

int kstatus_code(kstatus_reason r) { return r < KS_COUNT ? reasons[r].code : 500; }

static void put_field(strbuf *b, const char *key, const char *v, bool *first)
{
    if (!v)
        return;
    strbuf_printf(b, "%s\"%s\":\"", *first ? "" : ",", key);
    strbuf_json_escape(b, v, strlen(v));
    strbuf_putc(b, '"');
    *first = false;
}

static void put_details(strbuf *b, const kstatus_details *d, const char *message)
{
    if (!d || (!d->name && !d->group && !d->kind && !d->cause_field))
        return;
    bool first = true;
    strbuf_puts(b, ",\"details\":{");
    put_field(b, "name", d->name, &first);
    put_field(b, "group", d->group, &first);
    put_field(b, "kind", d->kind, &first);
    if (d->cause_field) {
        bool cfirst = true;
        strbuf_printf(b, "%s\"causes\":[{", first ? "" : ",");
        put_field(b, "reason", d->cause_reason ? d->cause_reason : "FieldValueInvalid", &cfirst);
        put_field(b, "message", message, &cfirst);
        put_field(b, "field", d->cause_field, &cfirst);
        strbuf_puts(b, "}]");
    }
    strbuf_putc(b, '}');
}

static void reply(https_response *res, kstatus_reason r, const kstatus_details *d, const char *cont, const char *fmt,
                  va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (r >= KS_COUNT)
        r = KS_INTERNAL;
    res->status = reasons[r].code;
    res->content_type = "application/json";
    strbuf_reset(&res->body);
    strbuf_puts(&res->body, "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{");
    if (cont) {
        strbuf_puts(&res->body, "\"continue\":\"");
        strbuf_json_escape(&res->body, cont, strlen(cont));
        strbuf_putc(&res->body, '"');
    }
    strbuf_puts(&res->body, "},\"status\":\"Failure\",\"message\":\"");
    strbuf_json_escape(&res->body, msg, strlen(msg));
    strbuf_printf(&res->body, "\",\"reason\":\"%s\"", reasons[r].reason);
    put_details(&res->body, d, msg);
    strbuf_printf(&res->body, ",\"code\":%d}", reasons[r].code);
}

void kstatus_reply(https_response *res, kstatus_reason r, const kstatus_details *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    reply(res, r, d, NULL, fmt, ap);
    va_end(ap);
}

void kstatus_reply_expired(https_response *res, const char *cont, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    reply(res, KS_EXPIRED, NULL, cont, fmt, ap);
    va_end(ap);
}

void kstatus_success(https_response *res, const kstatus_details *d)
{
    res->status = 200;
    res->content_type = "application/json";
    strbuf_reset(&res->body);
    strbuf_puts(&res->body, "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Success\"");
    put_details(&res->body, d, NULL);
    strbuf_puts(&res->body, "}");
}

void kstatus_reply_obj(https_response *res, int code, const cJSON *obj)
{
    if (!obj) {
        kstatus_reply(res, KS_INTERNAL, NULL, "out of memory");
        return;
    }
    res->status = code;
    res->content_type = "application/json";
    strbuf_reset(&res->body);
    jsonw_write(&res->body, obj, 0);
}
