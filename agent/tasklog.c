/* tasklog.c — a task's spill file and live frames, and the streaming JSON reader of the spill; see tasklog.h.
 *
 * The writer is a plain buffered file: blocking write(2) of at most 64 KiB at a time to a local disk, the same cost
 * the upstream agent pays, and far cheaper than a thread. The reader works in two fixed buffers: raw file bytes
 * (refilled with pread so that a rewind is just a position) and the few bytes of one escape sequence that did not
 * fit the caller's buffer.
 *
 * The per-line cost matters: terraform can print hundreds of thousands of lines a second, and when it does nearly
 * every live frame is refused by the sink (its queue is bounded). So a frame costs as little as possible before
 * the sink decides: the sink's probe (tasklog_opts.ready) is asked first, and a frame it is not ready for is only
 * counted — no clock read, no timestamp, no frame; a frame that is built does not copy its line (it points into
 * the spill buffer, where the line already is), and its RFC 3339 timestamp is formatted at most once per
 * millisecond (once per second for the date and time part). */
#include "tasklog.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define TASKLOG_BUF (64 * 1024)
#define TASKLOG_AGENT_MAX (16 * 1024)
#define TASKLOG_STAGE_MAX 64

/* proto's structs hold non-const char * because decoded messages own their strings; encoding only reads them. */
#define STR(s) ((char *)(s))

struct tasklog {
    int           fd;
    char         *path; /* for the one warning about write errors */
    tasklog_opts  o;
    tasklog_stats st;
    char          stage[TASKLOG_STAGE_MAX]; /* the current stage */
    size_t        len;                      /* bytes in buf */
    char          buf[TASKLOG_BUF];
    bool          ts_set;                   /* ts holds the text of ts_ms */
    int64_t       ts_ms;
    char          ts[32];                   /* the last frame's timestamp, "2006-01-02T15:04:05.000Z" */
    char          frame[TASKLOG_FRAME_LINE_MAX + 1]; /* a stage marker, or the frame of a line too long to buffer */
    char          agent[TASKLOG_AGENT_MAX];          /* an agent line being formatted */
    char          redacted[TASKLOG_AGENT_MAX];
};

/* ---- clock and formats ---------------------------------------------------------------------------------------- */

static int64_t tasklog_now(const tasklog *t)
{
    if (t->o.clock)
        return t->o.clock(t->o.clock_arg);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void tasklog_tm(int64_t ms, bool local, struct tm *tm)
{
    time_t s = (time_t)(ms / 1000);
    if (local)
        localtime_r(&s, tm);
    else
        gmtime_r(&s, tm);
}

/* "2006-01-02T15:04:05.000Z" for ms, from the last one when it can: the same millisecond is the same text, and
 * within the same second only the three digits of the milliseconds change. */
static const char *tasklog_rfc3339(tasklog *t, int64_t ms)
{
    if (t->ts_set && ms == t->ts_ms)
        return t->ts;
    int frac = (int)(ms % 1000);
    if (t->ts_set && ms >= 0 && t->ts_ms >= 0 && ms / 1000 == t->ts_ms / 1000) {
        char *d = t->ts + strlen(t->ts) - 4; /* "mmmZ" */
        d[0] = (char)('0' + frac / 100);
        d[1] = (char)('0' + frac / 10 % 10);
        d[2] = (char)('0' + frac % 10);
    } else {
        struct tm tm;
        tasklog_tm(ms, false, &tm);
        size_t n = strftime(t->ts, sizeof t->ts, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(t->ts + n, sizeof t->ts - n, ".%03dZ", frac);
    }
    t->ts_ms = ms;
    t->ts_set = true;
    return t->ts;
}

/* ---- spill file ----------------------------------------------------------------------------------------------- */

static void tasklog_write_failed(tasklog *t, int err)
{
    if (t->st.write_errors++ == 0) {
        t->st.first_error = err;
        log_warn("tasklog", "task %llu: cannot write the task log %s: %s (further errors only counted)",
                 (unsigned long long)t->o.task_id, t->path, strerror(-err));
    }
}

/* Writes every byte of iov or fails; a failure loses these bytes only. */
static void tasklog_writev(tasklog *t, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(t->fd, iov, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            tasklog_write_failed(t, w < 0 ? -errno : -EIO);
            return;
        }
        size_t done = (size_t)w;
        while (n > 0 && done >= iov->iov_len) {
            done -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + done;
            iov->iov_len -= done;
        }
    }
}

int tasklog_flush(tasklog *t)
{
    if (t->len == 0)
        return 0;
    uint64_t before = t->st.write_errors;
    struct iovec iov = { t->buf, t->len };
    tasklog_writev(t, &iov, 1);
    t->len = 0;
    return t->st.write_errors == before ? 0 : t->st.first_error;
}

/* Appends text and a newline to the spill. Returns where the line now is in the buffer, or NULL when it was larger
 * than the buffer and went straight to the file. */
static char *tasklog_spill(tasklog *t, const char *text, size_t len)
{
    if (len + 1 > sizeof t->buf - t->len)
        tasklog_flush(t);
    if (len + 1 > sizeof t->buf) {
        struct iovec iov[2] = { { (void *)text, len }, { "\n", 1 } };
        tasklog_writev(t, iov, 2);
        return NULL;
    }
    char *at = t->buf + t->len;
    memcpy(at, text, len);
    at[len] = '\n';
    t->len += len + 1;
    return at;
}

/* ---- frames --------------------------------------------------------------------------------------------------- */

/* A buffered line is never longer than a frame may carry, so its frame can point at it without cutting it. */
_Static_assert(TASKLOG_BUF - 1 <= TASKLOG_FRAME_LINE_MAX, "a buffered line must fit a frame");

/* A frame's time when the caller has not read the clock: it is read only for a frame that is built. */
#define TASKLOG_NOW_UNREAD INT64_MIN

/* Whether a frame should be built at all: false (and counted as dropped) when the sink's probe says it would
 * refuse it. */
static bool tasklog_frame_wanted(tasklog *t)
{
    if (!t->o.ready || t->o.ready(t->o.send_arg))
        return true;
    t->st.frames_dropped++;
    return false;
}

/* Offers one frame whose line is the C string `line` (at most TASKLOG_FRAME_LINE_MAX bytes); the caller asked
 * tasklog_frame_wanted() first. */
static void tasklog_frame(tasklog *t, const char *type, const char *line, const char *stage, const char *status,
                          int64_t now)
{
    if (now == TASKLOG_NOW_UNREAD)
        now = tasklog_now(t);
    proto_log_stream m = {
        .task_id = t->o.task_id,
        .type = STR(type),
        .line = STR(line),
        .timestamp = STR(tasklog_rfc3339(t, now)),
        .line_num = (int64_t)t->st.lines,
        .stage = STR(stage ? stage : ""),
        .status = STR(status),
    };
    if (t->o.send(&m, t->o.send_arg) == 0)
        t->st.frames_sent++;
    else
        t->st.frames_dropped++;
}

/* One line to the spill and to the live stream. The frame's line is the spilled copy itself: its newline becomes
 * the string's NUL for the length of the send (the sink must not write to this tasklog meanwhile). Only a line too
 * long to buffer is copied, cut to TASKLOG_FRAME_LINE_MAX. */
static void tasklog_put(tasklog *t, const char *type, const char *text, size_t len, const char *stage,
                        const char *status, int64_t now)
{
    char *at = tasklog_spill(t, text, len);
    t->st.lines++;
    if (!t->o.send || !tasklog_frame_wanted(t))
        return;
    if (at) {
        at[len] = '\0';
        tasklog_frame(t, type, at, stage, status, now);
        at[len] = '\n';
        return;
    }
    size_t n = len < TASKLOG_FRAME_LINE_MAX ? len : TASKLOG_FRAME_LINE_MAX;
    memmove(t->frame, text, n); /* text may be t->frame itself */
    t->frame[n] = '\0';
    tasklog_frame(t, type, t->frame, stage, status, now);
}

/* ---- public writer -------------------------------------------------------------------------------------------- */

int tasklog_open(const char *path, const tasklog_opts *opts, tasklog **out)
{
    *out = NULL;
    tasklog *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    if (opts)
        t->o = *opts;
    t->path = strdup(path);
    if (!t->path) {
        free(t);
        return -ENOMEM;
    }
    t->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW, TASKLOG_MODE);
    struct stat st;
    int err = 0;
    if (t->fd < 0)
        err = -errno;
    /* An existing file keeps its mode through O_TRUNC. Only a regular file: never chmod a device. */
    else if (fstat(t->fd, &st) < 0
             || (S_ISREG(st.st_mode) && (st.st_mode & 07777) != TASKLOG_MODE && fchmod(t->fd, TASKLOG_MODE) < 0))
        err = -errno;
    if (err) {
        if (t->fd >= 0)
            close(t->fd);
        free(t->path);
        free(t);
        return err;
    }
    *out = t;
    return 0;
}

void tasklog_line(tasklog *t, const char *stage, const char *text, size_t len)
{
    /* Spilled output lines carry no time: the clock is read only if a frame is built. */
    tasklog_put(t, "output", text, len, stage ? stage : t->stage, "", TASKLOG_NOW_UNREAD);
}

void tasklog_stage(tasklog *t, const char *stage, bool begin)
{
    if (!stage)
        stage = "";
    int64_t now = tasklog_now(t);
    char up[TASKLOG_STAGE_MAX];
    size_t n = 0;
    for (; stage[n] && n < sizeof up - 1; n++)
        up[n] = (char)toupper((unsigned char)stage[n]);
    up[n] = '\0';
    struct tm tm;
    tasklog_tm(now, true, &tm);
    char when[32];
    size_t w = strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(when + w, sizeof when - w, ".%03d", (int)(now % 1000));
    int len = snprintf(t->frame, sizeof t->frame, "========== %s %s at %s ==========", up, begin ? "BEGIN" : "END",
                       when);
    if (begin)
        snprintf(t->stage, sizeof t->stage, "%s", stage);
    tasklog_put(t, "stage_marker", t->frame, (size_t)len, stage, begin ? "begin" : "end", now);
    if (!begin)
        tasklog_flush(t);
}

static const char *const level_names[] = {
    [LOG_DEBUG] = "DEBUG", [LOG_INFO] = "INFO", [LOG_WARN] = "WARN", [LOG_ERROR] = "ERROR",
};

void tasklog_agent_line(tasklog *t, log_level level, const char *text)
{
    if (level < LOG_INFO || level > LOG_ERROR)
        return;
    if (!text)
        text = "";
    int64_t now = tasklog_now(t);
    struct tm tm;
    tasklog_tm(now, true, &tm);
    snprintf(t->agent, sizeof t->agent, "[%02d:%02d:%02d.%03d] [%s] %s", tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(now % 1000), level_names[level], text);
    log_redact(t->agent, t->redacted, sizeof t->redacted);
    tasklog_put(t, "output", t->redacted, strlen(t->redacted), t->stage, "", now);
}

void tasklog_agent_linef(tasklog *t, log_level level, const char *fmt, ...)
{
    char text[TASKLOG_AGENT_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    tasklog_agent_line(t, level, text);
}

void tasklog_completed(tasklog *t)
{
    if (t->o.send && tasklog_frame_wanted(t))
        tasklog_frame(t, "completed", "", t->stage, "", TASKLOG_NOW_UNREAD);
}

uint64_t tasklog_dropped(const tasklog *t) { return t->st.frames_dropped; }

const tasklog_stats *tasklog_get_stats(const tasklog *t) { return &t->st; }

int tasklog_close(tasklog *t)
{
    if (!t)
        return 0;
    tasklog_flush(t);
    if (close(t->fd) < 0 && errno != EINTR)
        tasklog_write_failed(t, -errno);
    int err = t->st.first_error;
    free(t->path);
    free(t);
    return err;
}

/* ---- reader --------------------------------------------------------------------------------------------------- */

#define RD_IN (64 * 1024)

enum { RD_PREFIX, RD_BODY, RD_SUFFIX, RD_DONE };

struct tasklog_reader {
    int           fd;      /* -1: empty content */
    off_t         size0;   /* the file's size at open: the content */
    off_t         size;    /* size0, or less once a read failed */
    off_t         pos;     /* file bytes read into in[] so far */
    int           err;
    int           phase;
    size_t        off;     /* within prefix or suffix */
    char         *prefix, *suffix;
    size_t        prefix_len, suffix_len;
    size_t        in_off, in_len;
    size_t        pend_off, pend_len;
    char          pend[8]; /* one escape or UTF-8 sequence that did not fit */
    unsigned char in[RD_IN];
};

/* Length of the well-formed UTF-8 sequence at s (n bytes available), or 0: the ranges of Go's utf8.DecodeRune,
 * which rejects overlongs, surrogates and code points above U+10FFFF. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    static const struct { unsigned char lo, hi, len, lo2, hi2; } first[] = {
        { 0xc2, 0xdf, 2, 0x80, 0xbf }, { 0xe0, 0xe0, 3, 0xa0, 0xbf }, { 0xe1, 0xec, 3, 0x80, 0xbf },
        { 0xed, 0xed, 3, 0x80, 0x9f }, { 0xee, 0xef, 3, 0x80, 0xbf }, { 0xf0, 0xf0, 4, 0x90, 0xbf },
        { 0xf1, 0xf3, 4, 0x80, 0xbf }, { 0xf4, 0xf4, 4, 0x80, 0x8f },
    };
    for (size_t i = 0; i < sizeof first / sizeof first[0]; i++) {
        if (s[0] < first[i].lo || s[0] > first[i].hi)
            continue;
        size_t len = first[i].len;
        if (n < len || s[1] < first[i].lo2 || s[1] > first[i].hi2)
            return 0;
        for (size_t k = 2; k < len; k++)
            if (s[k] < 0x80 || s[k] > 0xbf)
                return 0;
        return len;
    }
    return 0;
}

/* Bytes that go out as they are. */
static bool rd_plain(unsigned char c) { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\'; }

/* Keeps at least 4 raw bytes ahead (a whole UTF-8 sequence) unless the content is ending. */
static void rd_refill(tasklog_reader *r)
{
    size_t rest = r->in_len - r->in_off;
    if (rest >= 4 || r->pos >= r->size)
        return;
    memmove(r->in, r->in + r->in_off, rest);
    r->in_off = 0;
    r->in_len = rest;
    off_t want = r->size - r->pos;
    if (want > (off_t)(sizeof r->in - rest))
        want = (off_t)(sizeof r->in - rest);
    ssize_t got;
    do
        got = pread(r->fd, r->in + rest, (size_t)want, r->pos);
    while (got < 0 && errno == EINTR);
    if (got <= 0) {
        /* An error, or the file shrank: the content ends here (the body stays valid JSON). */
        if (got < 0)
            r->err = -errno;
        r->size = r->pos;
        return;
    }
    r->pos += got;
    r->in_len += (size_t)got;
}

/* The escaped content: fills up to n bytes, 0 once it is all out. */
static size_t rd_body(tasklog_reader *r, char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t w = 0;
    while (w < n) {
        if (r->pend_off < r->pend_len) {
            size_t k = r->pend_len - r->pend_off < n - w ? r->pend_len - r->pend_off : n - w;
            memcpy(out + w, r->pend + r->pend_off, k);
            r->pend_off += k;
            w += k;
            continue;
        }
        rd_refill(r);
        if (r->in_off == r->in_len)
            break;
        const unsigned char *s = r->in + r->in_off;
        size_t avail = r->in_len - r->in_off;
        if (rd_plain(s[0])) {
            size_t max = avail < n - w ? avail : n - w, run = 1;
            while (run < max && rd_plain(s[run]))
                run++;
            memcpy(out + w, s, run);
            r->in_off += run;
            w += run;
            continue;
        }
        /* One escape or one multi-byte sequence goes through pend[], so a short buffer never splits it wrongly. */
        r->pend_off = 0;
        size_t len = 1;
        if (s[0] >= 0x80) {
            len = utf8_seq(s, avail);
            if (len) {
                memcpy(r->pend, s, len);
                r->pend_len = len;
            } else {
                memcpy(r->pend, "\\ufffd", 6);
                r->pend_len = 6;
                len = 1;
            }
        } else {
            static const char short_esc[128] = { ['"'] = '"', ['\\'] = '\\', ['\n'] = 'n', ['\r'] = 'r',
                                                 ['\t'] = 't' };
            r->pend[0] = '\\';
            if (short_esc[s[0]]) {
                r->pend[1] = short_esc[s[0]];
                r->pend_len = 2;
            } else {
                memcpy(r->pend + 1, "u00", 3);
                r->pend[4] = hex[s[0] >> 4];
                r->pend[5] = hex[s[0] & 15];
                r->pend_len = 6;
            }
        }
        r->in_off += len;
    }
    return w;
}

static size_t rd_copy(const char *from, size_t from_len, size_t *off, char *out, size_t n)
{
    size_t k = from_len - *off < n ? from_len - *off : n;
    memcpy(out, from + *off, k);
    *off += k;
    return k;
}

size_t tasklog_reader_read(void *buf, size_t n, void *arg)
{
    tasklog_reader *r = arg;
    char *out = buf;
    size_t w = 0;
    while (w < n && r->phase != RD_DONE) {
        switch (r->phase) {
        case RD_PREFIX:
            w += rd_copy(r->prefix, r->prefix_len, &r->off, out + w, n - w);
            if (r->off == r->prefix_len)
                r->phase = RD_BODY;
            break;
        case RD_BODY: {
            size_t k = r->fd >= 0 ? rd_body(r, out + w, n - w) : 0;
            w += k;
            if (k == 0) {
                r->phase = RD_SUFFIX;
                r->off = 0;
            }
            break;
        }
        case RD_SUFFIX:
            w += rd_copy(r->suffix, r->suffix_len, &r->off, out + w, n - w);
            if (r->off == r->suffix_len)
                r->phase = RD_DONE;
            break;
        }
    }
    return w;
}

int tasklog_reader_rewind(void *arg)
{
    tasklog_reader *r = arg;
    r->phase = RD_PREFIX;
    r->off = 0;
    r->pos = 0;
    r->in_off = r->in_len = 0;
    r->pend_off = r->pend_len = 0;
    r->size = r->size0; /* a read that failed last time is tried again */
    r->err = 0;
    return 0;
}

int64_t tasklog_reader_size(tasklog_reader *r)
{
    char buf[16 * 1024];
    int64_t total = 0;
    tasklog_reader_rewind(r);
    size_t k;
    while ((k = tasklog_reader_read(buf, sizeof buf, r)) > 0)
        total += (int64_t)k;
    int err = r->err;
    tasklog_reader_rewind(r);
    return err ? err : total;
}

int tasklog_reader_error(const tasklog_reader *r) { return r->err; }

int tasklog_reader_open(const char *path, const char *prefix, const char *suffix, tasklog_reader **out)
{
    *out = NULL;
    tasklog_reader *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->fd = -1;
    r->prefix = strdup(prefix ? prefix : "");
    r->suffix = strdup(suffix ? suffix : "");
    int err = 0;
    if (!r->prefix || !r->suffix)
        err = -ENOMEM;
    if (!err && path) {
        struct stat st;
        r->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (r->fd < 0 || fstat(r->fd, &st) < 0)
            err = -errno;
        else
            r->size = r->size0 = st.st_size;
    }
    if (err) {
        tasklog_reader_close(r);
        return err;
    }
    r->prefix_len = strlen(r->prefix);
    r->suffix_len = strlen(r->suffix);
    *out = r;
    return 0;
}

void tasklog_reader_close(tasklog_reader *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    free(r->prefix);
    free(r->suffix);
    free(r);
}
