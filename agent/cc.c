/* cc.c — the C&C session over common/wsc; see cc.h. */
#include "cc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iac/log.h"
#include "iac/wsc.h"

struct cc_session {
    wsc        *ws;
    cc_handlers h;
    void       *arg;
    cc_counters n;
};

static void cc_on_open(wsc *w, void *arg)
{
    (void)w;
    cc_session *s = arg;
    if (s->h.on_open)
        s->h.on_open(s->arg);
}

static void cc_on_message(wsc *w, const char *data, size_t len, void *arg)
{
    (void)w;
    cc_session *s = arg;
    proto_msg m;
    char err[256];
    s->n.frames_received++;
    int rc = proto_decode(data, len, &m, err, sizeof err);
    if (rc != PROTO_OK) {
        s->n.frames_invalid++;
        log_warn("cc", "dropped a malformed C&C frame (%zu bytes): %s", len, err);
        proto_msg_free(&m);
        return;
    }
    if (s->h.on_message)
        s->h.on_message(&m, s->arg);
    proto_msg_free(&m);
}

static void cc_on_close(wsc *w, int http_status, const char *reason, void *arg)
{
    (void)w;
    cc_session *s = arg;
    if (s->h.on_close)
        s->h.on_close(http_status, reason, s->arg);
}

static void cc_on_drained(wsc *w, void *arg)
{
    (void)w;
    cc_session *s = arg;
    if (s->h.on_drained)
        s->h.on_drained(s->arg);
}

cc_session *cc_new(uv_loop_t *loop, const cc_handlers *h, void *arg)
{
    cc_session *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->h = *h;
    s->arg = arg;
    static const wsc_callbacks cb = { cc_on_open, cc_on_message, cc_on_close, cc_on_drained };
    wsc_opts opts = { 0 };
    s->ws = wsc_new(loop, &opts, &cb, s);
    if (!s->ws) {
        free(s);
        return NULL;
    }
    return s;
}

/* Percent-encodes everything outside the URL-safe unreserved set. */
static void cc_url_encode(const char *in, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && o + 4 < outlen; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("-_.~", *p)) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
}

int cc_connect(cc_session *s, bool tls, const char *host, int port, const char *agent_id, const char *token)
{
    char id[512], url[1024];
    cc_url_encode(agent_id, id, sizeof id);
    snprintf(url, sizeof url, "%s://%s:%d/api/v1/agents/control?agent_id=%s", tls ? "wss" : "ws", host, port, id);
    return wsc_connect(s->ws, url, token);
}

int cc_send(cc_session *s, const proto_msg *m)
{
    size_t len = 0;
    char *frame = proto_encode(m, &len);
    if (!frame) {
        s->n.frames_dropped++;
        return WSC_E_NOMEM;
    }
    int rc = wsc_send(s->ws, frame, len);
    free(frame);
    if (rc == WSC_OK)
        s->n.frames_sent++;
    else
        s->n.frames_dropped++;
    return rc;
}

bool cc_is_open(const cc_session *s) { return wsc_is_open(s->ws); }
size_t cc_queued(const cc_session *s) { return wsc_queued(s->ws); }
const cc_counters *cc_stats(const cc_session *s) { return &s->n; }
void cc_close(cc_session *s) { wsc_close(s->ws); }

void cc_free(cc_session *s)
{
    if (!s)
        return;
    wsc_free(s->ws);
    free(s);
}
