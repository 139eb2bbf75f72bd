/* test_tasklog.c — a task's log: exact spill content and formats, live frames (line numbers, drops when the sink
 * refuses), write errors, and the streaming JSON reader (escaping, chunking, rewind, snapshot, bounded memory). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "iac/strbuf.h"

#include "../../agent/tasklog.h"

#define FIXED_MS 1700000000123LL /* 2023-11-14 22:13:20.123 UTC */

typedef struct {
    char     type[32], stage[32], status[16], ts[40];
    char    *line;
    int64_t  line_num;
    uint64_t task_id;
} frame;

typedef struct {
    frame frames[64];
    int   n;       /* frames offered */
    int   refuse;  /* refuse every refuse-th frame (0: take all) */
    int   refused;
} sink;

static int64_t fixed_clock(void *arg)
{
    (void)arg;
    return FIXED_MS;
}

static int sink_send(const proto_log_stream *m, void *arg)
{
    sink *s = arg;
    int i = s->n++;
    if (s->refuse && s->n % s->refuse == 0) {
        s->refused++;
        return -2; /* WSC_E_FULL */
    }
    if (i < 64) {
        frame *f = &s->frames[i];
        snprintf(f->type, sizeof f->type, "%s", m->type);
        snprintf(f->stage, sizeof f->stage, "%s", m->stage);
        snprintf(f->status, sizeof f->status, "%s", m->status);
        snprintf(f->ts, sizeof f->ts, "%s", m->timestamp);
        f->line = strdup(m->line);
        f->line_num = m->line_num;
        f->task_id = m->task_id;
    }
    return 0;
}

static void sink_free(sink *s)
{
    for (int i = 0; i < s->n && i < 64; i++)
        free(s->frames[i].line);
}

typedef struct {
    char dir[64];
    char path[128];
} tmp;

static void tmp_init(tmp *t)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/test_tasklog.XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof t->path, "%s/" TASKLOG_FILE, t->dir);
}

static void tmp_done(tmp *t)
{
    unlink(t->path);
    rmdir(t->dir);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    strbuf b = STRBUF_INIT;
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        strbuf_append(&b, buf, n);
    fclose(f);
    return strbuf_detach(&b, len);
}

static void spit(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* Reads the whole body in chunks of `chunk` bytes. */
static char *read_all(tasklog_reader *r, size_t chunk, size_t *len)
{
    strbuf b = STRBUF_INIT;
    char *buf = malloc(chunk);
    size_t n;
    while ((n = tasklog_reader_read(buf, chunk, r)) > 0) {
        assert_true(n <= chunk);
        strbuf_append(&b, buf, n);
    }
    free(buf);
    return strbuf_detach(&b, len);
}

static long maxrss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* ---- writer --------------------------------------------------------------------------------------------------- */

/* The spill holds every line in order with the upstream formats: stage markers, "[HH:MM:SS.mmm] [LEVEL] text"
 * agent lines (DEBUG left out), output lines verbatim; the file is 0600. */
static void spill_content_is_exact(void **state)
{
    (void)state;
    tmp d;
    tmp_init(&d);
    sink s = { 0 };
    tasklog_opts o = { .task_id = 42, .send = sink_send, .send_arg = &s, .clock = fixed_clock };
    tasklog *t;
    assert_int_equal(tasklog_open(d.path, &o, &t), 0);
    tasklog_stage(t, "init", true);
    tasklog_line(t, NULL, "Initializing the backend...", 27);
    tasklog_agent_line(t, LOG_INFO, "init attempt 1 of 3");
    tasklog_agent_line(t, LOG_DEBUG, "not shown");
    tasklog_agent_linef(t, LOG_WARN, "retrying in %d s", 5);
    tasklog_line(t, "init", "", 0);
    tasklog_stage(t, "init", false);
    tasklog_stage(t, "pre_plan_run_tasks", true);
    tasklog_agent_line(t, LOG_ERROR, "boom \"quoted\"");
    assert_int_equal(tasklog_close(t), 0);

    size_t len;
    char *got = slurp(d.path, &len);
    assert_string_equal(got, "========== INIT BEGIN at 2023-11-14 22:13:20.123 ==========\n"
                             "Initializing the backend...\n"
                             "[22:13:20.123] [INFO] init attempt 1 of 3\n"
                             "[22:13:20.123] [WARN] retrying in 5 s\n"
                             "\n"
                             "========== INIT END at 2023-11-14 22:13:20.123 ==========\n"
                             "========== PRE_PLAN_RUN_TASKS BEGIN at 2023-11-14 22:13:20.123 ==========\n"
                             "[22:13:20.123] [ERROR] boom \"quoted\"\n");
    free(got);
    struct stat st;
    assert_int_equal(stat(d.path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    sink_free(&s);
    tmp_done(&d);
}

/* Every line becomes one frame: type, stage, status, RFC 3339 timestamp, task id, and line_num counting the
 * task's lines from 1; `completed` has an empty line and the count so far; a stage end flushes the spill. */
static void frames_carry_fields_and_line_numbers(void **state)
{
    (void)state;
    tmp d;
    tmp_init(&d);
    sink s = { 0 };
    tasklog_opts o = { .task_id = 7, .send = sink_send, .send_arg = &s, .clock = fixed_clock };
    tasklog *t;
    assert_int_equal(tasklog_open(d.path, &o, &t), 0);
    tasklog_stage(t, "planning", true);
    tasklog_line(t, NULL, "Plan: 1 to add", 14);
    tasklog_agent_line(t, LOG_INFO, "plan done");
    tasklog_stage(t, "planning", false);
    size_t len;
    char *mid = slurp(d.path, &len); /* flushed at the stage end */
    assert_int_equal(len, strlen(mid));
    assert_non_null(strstr(mid, "PLANNING END"));
    free(mid);
    tasklog_completed(t);

    static const struct { const char *type, *stage, *status; int64_t num; } want[] = {
        { "stage_marker", "planning", "begin", 1 }, { "output", "planning", "", 2 },
        { "output", "planning", "", 3 },            { "stage_marker", "planning", "end", 4 },
        { "completed", "planning", "", 4 },
    };
    assert_int_equal(s.n, 5);
    for (int i = 0; i < 5; i++) {
        assert_string_equal(s.frames[i].type, want[i].type);
        assert_string_equal(s.frames[i].stage, want[i].stage);
        assert_string_equal(s.frames[i].status, want[i].status);
        assert_int_equal(s.frames[i].line_num, want[i].num);
        assert_int_equal(s.frames[i].task_id, 7);
        assert_string_equal(s.frames[i].ts, "2023-11-14T22:13:20.123Z");
    }
    assert_string_equal(s.frames[0].line, "========== PLANNING BEGIN at 2023-11-14 22:13:20.123 ==========");
    assert_string_equal(s.frames[1].line, "Plan: 1 to add");
    assert_string_equal(s.frames[2].line, "[22:13:20.123] [INFO] plan done");
    assert_string_equal(s.frames[4].line, "");
    assert_int_equal(tasklog_get_stats(t)->lines, 4);
    assert_int_equal(tasklog_get_stats(t)->frames_sent, 5);
    assert_int_equal(tasklog_close(t), 0);
    sink_free(&s);
    tmp_done(&d);
}

/* Frames the sink refuses are dropped and counted; the spill still has every line. Without a sink nothing is
 * counted as dropped. */
static void refused_frames_are_counted_and_spill_is_complete(void **state)
{
    (void)state;
    tmp d;
    tmp_init(&d);
    sink s = { .refuse = 3 };
    tasklog_opts o = { .task_id = 1, .send = sink_send, .send_arg = &s, .clock = fixed_clock };
    tasklog *t;
    assert_int_equal(tasklog_open(d.path, &o, &t), 0);
    strbuf want = STRBUF_INIT;
    for (int i = 0; i < 1000; i++) {
        char line[32];
        int n = snprintf(line, sizeof line, "line %d", i);
        tasklog_line(t, "planning", line, (size_t)n);
        strbuf_printf(&want, "%s\n", line);
    }
    assert_int_equal(tasklog_dropped(t), 333);
    assert_int_equal(s.refused, 333);
    assert_int_equal(tasklog_get_stats(t)->frames_sent, 667);
    assert_int_equal(tasklog_get_stats(t)->lines, 1000);
    assert_int_equal(tasklog_close(t), 0);
    size_t len;
    char *got = slurp(d.path, &len);
    assert_string_equal(got, want.data);
    free(got);
    strbuf_free(&want);
    sink_free(&s);

    tasklog_opts quiet = { .task_id = 1 };
    assert_int_equal(tasklog_open(d.path, &quiet, &t), 0);
    tasklog_line(t, NULL, "x", 1);
    tasklog_stage(t, "init", true);
    tasklog_completed(t);
    assert_int_equal(tasklog_dropped(t), 0);
    assert_int_equal(tasklog_close(t), 0);
    tmp_done(&d);
}

typedef struct {
    sink s;
    bool ready;  /* what the probe answers */
    int  probes;
    int  clock_reads;
} probed_sink;

static bool probe_ready(void *arg)
{
    probed_sink *p = arg;
    p->probes++;
    return p->ready;
}

static int probe_send(const proto_log_stream *m, void *arg)
{
    return sink_send(m, &((probed_sink *)arg)->s);
}

static int64_t counting_clock(void *arg)
{
    ((probed_sink *)arg)->clock_reads++;
    return FIXED_MS;
}

/* A frame the sink's probe is not ready for is counted as dropped, the same as a frame the sink refuses, but it is
 * never built: send is not called and the clock is not read for it. The spill and the line numbers go on as
 * before, and once the probe is ready again frames flow with the right numbers. */
static void frames_the_probe_refuses_are_dropped_unbuilt(void **state)
{
    (void)state;
    tmp d;
    tmp_init(&d);
    probed_sink p = { .ready = false };
    tasklog_opts o = { .task_id = 3, .send = probe_send, .send_arg = &p, .ready = probe_ready,
                       .clock = counting_clock, .clock_arg = &p };
    tasklog *t;
    assert_int_equal(tasklog_open(d.path, &o, &t), 0);
    for (int i = 0; i < 100; i++)
        tasklog_line(t, "planning", "flood", 5);
    tasklog_completed(t);
    assert_int_equal(p.probes, 101);
    assert_int_equal(p.s.n, 0);
    assert_int_equal(p.clock_reads, 0);
    assert_int_equal(tasklog_dropped(t), 101);
    assert_int_equal(tasklog_get_stats(t)->frames_sent, 0);
    assert_int_equal(tasklog_get_stats(t)->lines, 100);

    p.ready = true;
    tasklog_line(t, "planning", "heard", 5);
    assert_int_equal(p.s.n, 1);
    assert_string_equal(p.s.frames[0].line, "heard");
    assert_int_equal(p.s.frames[0].line_num, 101);
    assert_int_equal(p.clock_reads, 1);
    assert_int_equal(tasklog_get_stats(t)->frames_sent, 1);
    assert_int_equal(tasklog_dropped(t), 101);
    assert_int_equal(tasklog_close(t), 0);
    size_t len;
    char *got = slurp(d.path, &len);
    assert_int_equal(len, 100 * 6 + 6);
    free(got);
    sink_free(&p.s);
    tmp_done(&d);
}

/* A line longer than the write buffer reaches the spill whole; its live frame carries the first 64 KiB. */
static void huge_line_is_whole_in_spill_and_cut_in_frame(void **state)
{
    (void)state;
    tmp d;
    tmp_init(&d);
    sink s = { 0 };
    tasklog_opts o = { .task_id = 1, .send = sink_send, .send_arg = &s };
    tasklog *t;
    assert_int_equal(tasklog_open(d.path, &o, &t), 0);
    size_t big = 200 * 1024;
    char *line = malloc(big);
    memset(line, 'q', big);
    tasklog_line(t, NULL, "before", 6);
    tasklog_line(t, NULL, line, big);
    tasklog_line(t, NULL, "after", 5);
    assert_int_equal(tasklog_close(t), 0);
    assert_int_equal(strlen(s.frames[1].line), TASKLOG_FRAME_LINE_MAX);
    size_t len;
    char *got = slurp(d.path, &len);
    assert_int_equal(len, 7 + big + 1 + 6);
    assert_memory_equal(got, "before\n", 7);
    assert_memory_equal(got + 7, line, big);
    assert_memory_equal(got + 7 + big, "\nafter\n", 7);
    free(got);
    free(line);
    sink_free(&s);
    tmp_done(&d);
}

/* A spill that cannot be written (full disk) costs lines, not the agent: errors are counted, flush and close
 * report them, live frames still go out. */
static void write_errors_are_counted_not_fatal(void **state)
{
    (void)state;
    if (access("/dev/full", W_OK) != 0)
        skip();
    sink s = { 0 };
    tasklog_opts o = { .task_id = 1, .send = sink_send, .send_arg = &s };
    tasklog *t;
    assert_int_equal(tasklog_open("/dev/full", &o, &t), 0);
    tasklog_line(t, NULL, "lost", 4);
    assert_int_equal(tasklog_flush(t), -ENOSPC);
    char big[100 * 1024];
    memset(big, 'b', sizeof big);
    tasklog_line(t, NULL, big, sizeof big); /* straight to the file: fails too */
    tasklog_stage(t, "init", false);
    assert_true(tasklog_get_stats(t)->write_errors >= 2);
    assert_int_equal(tasklog_get_stats(t)->first_error, -ENOSPC);
    assert_int_equal(tasklog_get_stats(t)->frames_sent, 3);
    assert_int_equal(tasklog_close(t), -ENOSPC);
    sink_free(&s);
}

/* Agent lines never carry a registered secret into the task log. */
static void agent_lines_redact_secrets(void **state)
{
    (void)state;
    tmp d;
    tmp_init(&d);
    assert_int_equal(log_secret_add("hunter2-pool-secret"), 0);
    tasklog_opts o = { .task_id = 1, .clock = fixed_clock };
    tasklog *t;
    assert_int_equal(tasklog_open(d.path, &o, &t), 0);
    tasklog_agent_linef(t, LOG_ERROR, "request with token %s failed", "hunter2-pool-secret");
    assert_int_equal(tasklog_close(t), 0);
    log_secret_remove(NULL);
    size_t len;
    char *got = slurp(d.path, &len);
    assert_null(strstr(got, "hunter2"));
    assert_non_null(strstr(got, "[REDACTED]"));
    free(got);
    tmp_done(&d);
}

/* ---- reader --------------------------------------------------------------------------------------------------- */

/* A file of quotes, backslashes, control bytes, UTF-8 (2, 3 and 4 bytes), DEL and invalid bytes (stray, overlong,
 * surrogate, out of range, truncated at the end) reads as prefix + strbuf_json_escape of the file + suffix, with
 * one \ufffd per invalid byte — and the body is JSON that parses back to the same text. */
static void reader_equals_json_escape_of_file(void **state)
{
    (void)state;
#define SEG(s, bad) { s, sizeof s - 1, bad }
    static const struct { const char *bytes; size_t len; bool invalid; } seg[] = {
        SEG("plain \"quoted\" back\\slash\n", false),
        SEG("tab\tcr\rnul", false),
        SEG("\0\x01\x1f\x7f", false),
        SEG(" caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 ", false),
        SEG("\xff", true),
        SEG("x", false),
        SEG("\xc0\x80", true), /* overlong NUL */
        SEG("y", false),
        SEG("\xed\xa0\x80", true),     /* a UTF-16 surrogate */
        SEG("\xf4\x90\x80\x80", true), /* above U+10FFFF */
        SEG("\xe2\x82", true),         /* truncated: the file ends inside a sequence */
    };
#undef SEG
    strbuf file = STRBUF_INIT, want = STRBUF_INIT;
    strbuf_puts(&want, "{\"content\":\"");
    for (size_t i = 0; i < sizeof seg / sizeof seg[0]; i++) {
        strbuf_append(&file, seg[i].bytes, seg[i].len);
        for (size_t k = 0; seg[i].invalid && k < seg[i].len; k++)
            strbuf_puts(&want, "\\ufffd");
        if (!seg[i].invalid)
            strbuf_json_escape(&want, seg[i].bytes, seg[i].len);
    }
    strbuf_puts(&want, "\",\"n\":1}");
    tmp d;
    tmp_init(&d);
    spit(d.path, file.data, file.len);

    tasklog_reader *r;
    assert_int_equal(tasklog_reader_open(d.path, "{\"content\":\"", "\",\"n\":1}", &r), 0);
    size_t len;
    char *got = read_all(r, 4096, &len);
    assert_int_equal(len, want.len);
    assert_memory_equal(got, want.data, len);
    assert_int_equal(tasklog_reader_size(r), (int64_t)want.len);
    assert_int_equal(tasklog_reader_error(r), 0);

    cJSON *j = cJSON_ParseWithLength(got, len);
    assert_non_null(j);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "content");
    assert_true(cJSON_IsString(c));
    /* cJSON stops at the NUL byte that \u0000 decodes to: compare up to it, then the rest via the escape. */
    assert_string_equal(c->valuestring, "plain \"quoted\" back\\slash\ntab\tcr\rnul");
    cJSON_Delete(j);

    free(got);
    tasklog_reader_close(r);
    strbuf_free(&file);
    strbuf_free(&want);
    tmp_done(&d);
}

/* Any chunk size gives the same bytes: 1-byte reads (every escape split), odd sizes and big reads agree, on
 * content that is mostly invalid UTF-8 and control bytes. */
static void reader_chunk_size_does_not_change_output(void **state)
{
    (void)state;
    tmp d;
    tmp_init(&d);
    size_t n = 300 * 1024;
    unsigned char *data = malloc(n);
    unsigned seed = 12345;
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        data[i] = (unsigned char)(seed >> 16);
    }
    memcpy(data + 1000, "\xf0\x9f\x98\x80\xe2\x82\xac\xc3\xa9", 9); /* some valid sequences too */
    spit(d.path, data, n);
    tasklog_reader *r;
    assert_int_equal(tasklog_reader_open(d.path, "[", "]", &r), 0);
    size_t len1, len7, lenbig;
    char *one = read_all(r, 1, &len1);
    tasklog_reader_rewind(r);
    char *seven = read_all(r, 7, &len7);
    tasklog_reader_rewind(r);
    char *big = read_all(r, 1 << 20, &lenbig);
    assert_int_equal(len1, lenbig);
    assert_int_equal(len7, lenbig);
    assert_memory_equal(one, big, lenbig);
    assert_memory_equal(seven, big, lenbig);
    assert_true(lenbig > n);
    assert_non_null(memmem(big, lenbig, "\xf0\x9f\x98\x80\xe2\x82\xac\xc3\xa9", 9));
    free(one);
    free(seven);
    free(big);
    free(data);
    tasklog_reader_close(r);
    tmp_done(&d);
}

/* Rewind starts over from the prefix (a retry sends the same body); lines appended after open are not part of
 * the body; size() leaves the reader at the start. */
static void reader_rewinds_and_reads_a_snapshot(void **state)
{
    (void)state;
    tmp d;
    tmp_init(&d);
    spit(d.path, "one\ntwo\n", 8);
    tasklog_reader *r;
    assert_int_equal(tasklog_reader_open(d.path, "<", ">", &r), 0);
    FILE *f = fopen(d.path, "ab");
    fputs("three\n", f);
    fclose(f);
    char buf[64];
    assert_int_equal(tasklog_reader_read(buf, 5, r), 5);
    assert_memory_equal(buf, "<one\\", 5);
    assert_int_equal(tasklog_reader_rewind(r), 0);
    size_t len;
    char *got = read_all(r, 3, &len);
    assert_int_equal(len, strlen("<one\\ntwo\\n>"));
    assert_memory_equal(got, "<one\\ntwo\\n>", len);
    free(got);
    assert_int_equal(tasklog_reader_read(buf, sizeof buf, r), 0); /* stays at the end */
    assert_int_equal(tasklog_reader_size(r), (int64_t)len);
    got = read_all(r, 64, &len);
    assert_memory_equal(got, "<one\\ntwo\\n>", len);
    free(got);
    tasklog_reader_close(r);
    tmp_done(&d);
}

/* No file (NULL path) is empty content; a missing file is an error; an empty file is empty content. */
static void reader_without_content(void **state)
{
    (void)state;
    tasklog_reader *r;
    assert_int_equal(tasklog_reader_open(NULL, "{\"c\":\"", "\"}", &r), 0);
    size_t len;
    char *got = read_all(r, 2, &len);
    assert_string_equal(got, "{\"c\":\"\"}");
    free(got);
    tasklog_reader_close(r);
    assert_int_equal(tasklog_reader_open("/nonexistent/.iac-task.log", "", "", &r), -ENOENT);
    assert_null(r);
    tmp d;
    tmp_init(&d);
    spit(d.path, "", 0);
    assert_int_equal(tasklog_reader_open(d.path, NULL, NULL, &r), 0);
    assert_int_equal(tasklog_reader_size(r), 0);
    tasklog_reader_close(r);
    tasklog_reader_close(NULL);
    tmp_done(&d);
}

/* A 50 MB log written line by line and streamed back as JSON: every byte as expected, memory flat. */
static void fifty_mb_log_streams_with_bounded_memory(void **state)
{
    (void)state;
    long before = maxrss_kib();
    tmp d;
    tmp_init(&d);
    tasklog_opts o = { .task_id = 1 };
    tasklog *t;
    assert_int_equal(tasklog_open(d.path, &o, &t), 0);
    const int lines = 600000;
    char line[128];
    for (int i = 0; i < lines; i++) {
        int n = snprintf(line, sizeof line, "%07d \"resource\"\t\\ aws_instance.web[%d]: Refreshing state... "
                                            "[id=i-0123456789abcdef]", i, i % 97);
        tasklog_line(t, NULL, line, (size_t)n);
    }
    assert_int_equal(tasklog_close(t), 0);
    struct stat st;
    assert_int_equal(stat(d.path, &st), 0);
    assert_true(st.st_size > 50 * 1000 * 1000);

    tasklog_reader *r;
    assert_int_equal(tasklog_reader_open(d.path, "\"", "\"", &r), 0);
    strbuf want = STRBUF_INIT;
    size_t want_off = 0;
    int next = 0;
    strbuf_putc(&want, '"');
    char buf[16 * 1024];
    size_t n, total = 0;
    while ((n = tasklog_reader_read(buf, sizeof buf, r)) > 0) {
        while (want.len - want_off < n) {
            if (want_off > 0) { /* keep the expectation small: drop what was compared */
                memmove(want.data, want.data + want_off, want.len - want_off);
                want.len -= want_off;
                want_off = 0;
            }
            if (next < lines) {
                int k = snprintf(line, sizeof line, "%07d \"resource\"\t\\ aws_instance.web[%d]: Refreshing "
                                                    "state... [id=i-0123456789abcdef]", next, next % 97);
                strbuf_json_escape(&want, line, (size_t)k);
                strbuf_puts(&want, "\\n");
                next++;
            } else {
                strbuf_putc(&want, '"');
            }
        }
        if (memcmp(buf, want.data + want_off, n) != 0)
            fail_msg("the body differs from the expected one near byte %zu", total);
        want_off += n;
        total += n;
    }
    assert_int_equal(next, lines);
    assert_int_equal(want_off, want.len);
    assert_int_equal(tasklog_reader_error(r), 0);
    tasklog_reader_close(r);
    strbuf_free(&want);
    long grown = maxrss_kib() - before;
    print_message("max RSS grew by %ld KiB for a %lld-byte log\n", grown, (long long)st.st_size);
    if (grown > 8 * 1024)
        fail_msg("max RSS grew by %ld KiB", grown);
    tmp_done(&d);
}

int main(void)
{
    setenv("TZ", "UTC", 1); /* markers and agent lines are in local time */
    tzset();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fifty_mb_log_streams_with_bounded_memory),
        cmocka_unit_test(spill_content_is_exact),
        cmocka_unit_test(frames_carry_fields_and_line_numbers),
        cmocka_unit_test(refused_frames_are_counted_and_spill_is_complete),
        cmocka_unit_test(frames_the_probe_refuses_are_dropped_unbuilt),
        cmocka_unit_test(huge_line_is_whole_in_spill_and_cut_in_frame),
        cmocka_unit_test(write_errors_are_counted_not_fatal),
        cmocka_unit_test(agent_lines_redact_secrets),
        cmocka_unit_test(reader_equals_json_escape_of_file),
        cmocka_unit_test(reader_chunk_size_does_not_change_output),
        cmocka_unit_test(reader_rewinds_and_reads_a_snapshot),
        cmocka_unit_test(reader_without_content),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
