/* test_log.c — the logger: level filtering, the text and JSON line formats, redaction of registered secrets and of
 * pool-token-shaped words, the 16 KiB bound, and one write(2) per line. Lines are captured by pointing fd 2 at a
 * temporary file (or a SOCK_SEQPACKET socket, which keeps write boundaries) for the length of a test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "iac/log.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define LINE_MAX_BYTES 16384

typedef struct {
    int saved; /* the real stderr */
    int fd;    /* where fd 2 points while capturing */
} capture;

static void capture_start(capture *c)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    c->fd = dup(fileno(f));
    fclose(f);
    c->saved = dup(2);
    assert_true(c->fd >= 0 && c->saved >= 0);
    assert_int_equal(dup2(c->fd, 2), 2);
}

/* Restores stderr and returns everything written meanwhile (caller frees). */
static char *capture_end(capture *c)
{
    assert_int_equal(dup2(c->saved, 2), 2);
    close(c->saved);
    off_t size = lseek(c->fd, 0, SEEK_END);
    assert_true(size >= 0);
    char *buf = malloc((size_t)size + 1);
    assert_non_null(buf);
    assert_int_equal(pread(c->fd, buf, (size_t)size, 0), size);
    buf[size] = '\0';
    close(c->fd);
    return buf;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static int setup(void **state)
{
    (void)state;
    log_setup(LOG_INFO, LOG_FORMAT_TEXT);
    log_secret_remove(NULL);
    return 0;
}

/* Lines below the minimum level are dropped; the others appear in order, labelled with their level. */
static void lines_below_minimum_level_are_dropped(void **state)
{
    (void)state;
    capture c;
    log_setup(LOG_WARN, LOG_FORMAT_TEXT);
    capture_start(&c);
    log_debug("t", "d");
    log_info("t", "i");
    log_warn("t", "w");
    log_error("t", "e");
    char *out = capture_end(&c);
    assert_int_equal(count_lines(out), 2);
    char *w = strstr(out, " WARN  t: w\n"), *e = strstr(out, " ERROR t: e\n");
    assert_non_null(w);
    assert_non_null(e);
    assert_true(w < e);
    free(out);

    log_setup(LOG_DEBUG, LOG_FORMAT_TEXT);
    capture_start(&c);
    log_debug("t", "d");
    out = capture_end(&c);
    assert_non_null(strstr(out, " DEBUG t: d\n"));
    free(out);
}

/* A text line is "<UTC time with ms>Z LEVEL module: message", the time close to now. */
static void text_line_has_utc_millisecond_timestamp_level_and_module(void **state)
{
    (void)state;
    capture c;
    capture_start(&c);
    time_t before = time(NULL);
    log_info("agent", "registered agent_id=%s n=%d", "agent-pool-1", 42);
    char *out = capture_end(&c);

    struct tm tm = { 0 };
    int ms = -1, consumed = 0;
    assert_int_equal(sscanf(out, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ %n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                            &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms, &consumed),
                     7);
    assert_int_equal(out[23], 'Z');
    assert_true(ms >= 0 && ms <= 999);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    assert_true(t >= before - 1 && t <= before + 5);
    assert_string_equal(out + consumed, "INFO  agent: registered agent_id=agent-pool-1 n=42\n");
    free(out);
}

/* A message with newlines stays one text line: control bytes are shown escaped. */
static void text_line_escapes_newlines_and_control_bytes(void **state)
{
    (void)state;
    capture c;
    capture_start(&c);
    log_info("m", "a\nb\rc\x01" "d\te");
    char *out = capture_end(&c);
    assert_int_equal(count_lines(out), 1);
    assert_non_null(strstr(out, "m: a\\nb\\rc\\x01d\te\n"));
    free(out);
}

/* A JSON line parses as JSON, carries ts/level/module/msg, and the message survives quotes, backslashes, control
 * bytes and UTF-8 intact. */
static void json_line_is_valid_json_and_keeps_the_message_exact(void **state)
{
    (void)state;
    const char *msg = "say \"hi\" \\ path C:\\x\nnext\ttab \x01 caf\xc3\xa9";
    capture c;
    log_setup(LOG_DEBUG, LOG_FORMAT_JSON);
    capture_start(&c);
    log_warn("cc", "%s", msg);
    log_debug(NULL, "no module");
    char *out = capture_end(&c);
    assert_int_equal(count_lines(out), 2);

    char *nl = strchr(out, '\n');
    *nl = '\0';
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "level")->valuestring, "warn");
    assert_string_equal(cJSON_GetObjectItem(j, "module")->valuestring, "cc");
    assert_string_equal(cJSON_GetObjectItem(j, "msg")->valuestring, msg);
    const char *ts = cJSON_GetObjectItem(j, "ts")->valuestring;
    assert_int_equal(strlen(ts), 24);
    assert_int_equal(ts[10], 'T');
    assert_int_equal(ts[19], '.');
    assert_int_equal(ts[23], 'Z');
    cJSON_Delete(j);

    j = cJSON_Parse(nl + 1);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "level")->valuestring, "debug");
    assert_null(cJSON_GetObjectItem(j, "module"));
    assert_string_equal(cJSON_GetObjectItem(j, "msg")->valuestring, "no module");
    cJSON_Delete(j);
    free(out);
}

/* A registered secret is replaced wherever it occurs, in text and in JSON; once removed it is no longer. */
static void registered_secret_is_redacted_until_removed(void **state)
{
    (void)state;
    assert_int_equal(log_secret_add("hunter2-secret"), 0);
    assert_int_equal(log_secret_add("other-token-value"), 0);
    capture c;
    capture_start(&c);
    log_info("x", "token=hunter2-secret and again hunter2-secretX (other-token-value)");
    log_setup(LOG_INFO, LOG_FORMAT_JSON);
    log_info("x", "json \"hunter2-secret\"");
    char *out = capture_end(&c);
    assert_null(strstr(out, "hunter2"));
    assert_null(strstr(out, "other-token"));
    assert_non_null(strstr(out, "x: token=[REDACTED] and again [REDACTED]X ([REDACTED])\n"));
    assert_non_null(strstr(out, "\"msg\":\"json \\\"[REDACTED]\\\"\""));
    free(out);

    log_secret_remove("hunter2-secret");
    char buf[128];
    log_redact("hunter2-secret other-token-value", buf, sizeof buf);
    assert_string_equal(buf, "hunter2-secret [REDACTED]");
    log_secret_remove(NULL);
    log_redact("hunter2-secret other-token-value", buf, sizeof buf);
    assert_string_equal(buf, "hunter2-secret other-token-value");
}

/* Secrets shorter than 4 bytes are ignored (they would redact ordinary words); duplicates take no room; the table
 * holds 16 and then refuses with -ENOMEM. */
static void secret_table_ignores_short_ones_and_is_bounded(void **state)
{
    (void)state;
    char buf[64];
    assert_int_equal(log_secret_add("abc"), 0);
    assert_int_equal(log_secret_add(NULL), 0);
    log_redact("abc abcd", buf, sizeof buf);
    assert_string_equal(buf, "abc abcd");
    char s[32];
    for (int i = 0; i < 16; i++) {
        snprintf(s, sizeof s, "secret-%02d", i);
        assert_int_equal(log_secret_add(s), 0);
        assert_int_equal(log_secret_add(s), 0);
    }
    assert_int_equal(log_secret_add("secret-16"), -ENOMEM);
    log_redact("secret-00 secret-15 secret-16", buf, sizeof buf);
    assert_string_equal(buf, "[REDACTED] [REDACTED] secret-16");
    log_secret_remove(NULL);
}

/* When two registered secrets overlap at the same place, the longer one is removed whole. */
static void longest_overlapping_secret_wins(void **state)
{
    (void)state;
    char buf[64];
    assert_int_equal(log_secret_add("abcd"), 0);
    assert_int_equal(log_secret_add("abcdefgh"), 0);
    log_redact("<abcdefgh>", buf, sizeof buf);
    assert_string_equal(buf, "<[REDACTED]>");
    log_secret_remove(NULL);
}

/* Pool-token-shaped words are redacted without registration, wherever they sit in a line; the text around them
 * (quotes, query separators) is kept; lookalikes without a long hex tail are left alone. */
static void pool_token_shape_is_redacted_without_registration(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        { "token apt_pool-a_" HEX64 " ok", "token [REDACTED] ok" },
        { "Bearer apt_p_" HEX64, "Bearer [REDACTED]" },
        { "{\"token\":\"apt_pool_" HEX64 "\"}", "{\"token\":\"[REDACTED]\"}" },
        { "GET /x?t=apt_x_" HEX64 "&n=1", "GET /x?t=[REDACTED]&n=1" },
        { "t='apt_" HEX64 "'", "t='[REDACTED]'" },
        { "APT:apt_a.b-c_0123456789ABCDEF0123456789ABCDEF,", "APT:[REDACTED]," },
        { "apt_get install curl", "apt_get install curl" },
        { "apt_pool_0123456789abcdef", "apt_pool_0123456789abcdef" }, /* 16 hex digits: too short */
        { "apt_", "apt_" },
        { "apt_apt_apt_ apt_q_" HEX64, "apt_apt_apt_ [REDACTED]" },
        { "apt_zzapt_q_" HEX64 "!", "[REDACTED]!" },
    };
    char buf[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        log_redact(cases[i].in, buf, sizeof buf);
        assert_string_equal(buf, cases[i].out);
    }

    capture c;
    capture_start(&c);
    log_error("auth", "register failed with apt_pool-a_%s", HEX64);
    char *out = capture_end(&c);
    assert_null(strstr(out, HEX64));
    assert_non_null(strstr(out, "auth: register failed with [REDACTED]\n"));
    free(out);
}

/* log_redact fits its output to the buffer, always NUL-terminated, and never writes a partial secret. */
static void redact_output_is_bounded_and_terminated(void **state)
{
    (void)state;
    char buf[8];
    memset(buf, 'Z', sizeof buf);
    log_redact("0123456789", buf, sizeof buf);
    assert_string_equal(buf, "0123456");
    assert_int_equal(log_secret_add("topsecret"), 0);
    log_redact("ab topsecret", buf, sizeof buf); /* "[REDACTED]" does not fit after "ab ": dropped, not cut */
    assert_string_equal(buf, "ab ");
    log_redact("x", buf, 1);
    assert_string_equal(buf, "");
    log_redact(NULL, buf, sizeof buf);
    assert_string_equal(buf, "");
    log_secret_remove(NULL);
}

/* A line made of nothing but "apt_" (the token prefix) is redacted in linear time, not one scan per prefix. */
static void token_scan_stays_fast_on_pathological_input(void **state)
{
    (void)state;
    static char in[LINE_MAX_BYTES + 1], out[LINE_MAX_BYTES + 1];
    for (size_t i = 0; i < LINE_MAX_BYTES; i++)
        in[i] = "apt_"[i % 4];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int k = 0; k < 20; k++)
        log_redact(in, out, sizeof out);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    assert_string_equal(out, in);
    assert_true(ms < 500); /* a scan per prefix took about 60 ms per line, 1.2 s here, unsanitized */
}

/* A message longer than 16 KiB is cut and marked, and the line stays one line of bounded size. */
static void long_message_is_truncated_with_marker(void **state)
{
    (void)state;
    size_t n = 100000;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'a', n);
    big[n] = '\0';
    capture c;
    capture_start(&c);
    log_info("t", "%s", big);
    char *out = capture_end(&c);
    assert_int_equal(count_lines(out), 1);
    assert_true(strlen(out) < LINE_MAX_BYTES + 200);
    assert_true(strlen(out) > LINE_MAX_BYTES);
    const char *marker = "a\xe2\x80\xa6(truncated)\n";
    assert_string_equal(out + strlen(out) - strlen(marker), marker);
    free(out);
    free(big);
}

/* Messages between the stack buffer (1 KiB) and the 16 KiB limit are kept whole, secrets in them redacted. */
static void mid_sized_message_is_kept_whole(void **state)
{
    (void)state;
    size_t n = 6000;
    char *mid = malloc(n + 1);
    assert_non_null(mid);
    memset(mid, 'q', n); /* not a hex digit: a pool token ends where the q's begin */
    mid[n] = '\0';
    memcpy(mid + 3000, "apt_pool-x_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", 75);
    capture c;
    capture_start(&c);
    log_info("t", "%s", mid);
    char *out = capture_end(&c);
    assert_int_equal(count_lines(out), 1);
    assert_null(strstr(out, "(truncated)"));
    assert_null(strstr(out, "0123456789abcdef0123"));
    assert_non_null(strstr(out, "[REDACTED]"));
    assert_true(strlen(out) > n - 75);
    assert_string_equal(out + strlen(out) - 4, "qqq\n");
    free(out);
    free(mid);
}

/* A cut that falls inside a secret or a pool token redacts what is left of it: no prefix of a secret leaks. */
static void truncation_never_leaks_part_of_a_secret(void **state)
{
    (void)state;
    char *big = malloc(LINE_MAX_BYTES + 200);
    assert_non_null(big);
    assert_int_equal(log_secret_add("s3cr3t-abcdefghijklmnop"), 0);

    /* The cut (at 16384 bytes) leaves "s3cr3t-abcdef" of the registered secret. */
    memset(big, 'x', LINE_MAX_BYTES - 13);
    strcpy(big + LINE_MAX_BYTES - 13, "s3cr3t-abcdefghijklmnop tail");
    capture c;
    capture_start(&c);
    log_info("t", "%s", big);
    char *out = capture_end(&c);
    assert_null(strstr(out, "s3cr"));
    assert_non_null(strstr(out, "x[REDACTED]\xe2\x80\xa6(truncated)\n"));
    free(out);

    /* The cut leaves "apt_pool_" and 20 hex digits of a pool token: not yet token-shaped, redacted all the same. */
    memset(big, 'y', LINE_MAX_BYTES - 29);
    strcpy(big + LINE_MAX_BYTES - 29, "apt_pool_" HEX64 " tail");
    capture_start(&c);
    log_info("t", "%s", big);
    out = capture_end(&c);
    assert_null(strstr(out, "apt_pool_0123"));
    assert_non_null(strstr(out, "y[REDACTED]\xe2\x80\xa6(truncated)\n"));
    free(out);

    free(big);
    log_secret_remove(NULL);
}

/* A cut in the middle of a UTF-8 character drops the partial character, so a JSON line stays valid UTF-8. */
static void truncation_keeps_utf8_whole(void **state)
{
    (void)state;
    char *big = malloc(LINE_MAX_BYTES + 16);
    assert_non_null(big);
    memset(big, 'e', LINE_MAX_BYTES - 1);
    strcpy(big + LINE_MAX_BYTES - 1, "\xc3\xa9\xc3\xa9"); /* "é" straddles the cut */
    log_setup(LOG_INFO, LOG_FORMAT_JSON);
    capture c;
    capture_start(&c);
    log_info("t", "%s", big);
    char *out = capture_end(&c);
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    const char *msg = cJSON_GetObjectItem(j, "msg")->valuestring;
    size_t len = strlen(msg);
    assert_int_equal(len, LINE_MAX_BYTES - 1 + strlen("\xe2\x80\xa6(truncated)"));
    assert_int_equal(msg[LINE_MAX_BYTES - 2], 'e');
    assert_string_equal(msg + LINE_MAX_BYTES - 1, "\xe2\x80\xa6(truncated)");
    cJSON_Delete(j);
    free(out);
    free(big);
}

/* Each line, even a long one, reaches stderr in a single write(2): a SOCK_SEQPACKET socket as fd 2 receives each
 * write as one packet. */
static void each_line_is_one_write(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    int saved = dup(2);
    assert_int_equal(dup2(sv[0], 2), 2);
    char *big = malloc(12001);
    assert_non_null(big);
    memset(big, 'w', 12000);
    big[12000] = '\0';
    log_setup(LOG_INFO, LOG_FORMAT_JSON);
    log_info("t", "%s", big);
    log_info("t", "short");
    dup2(saved, 2);
    close(saved);
    close(sv[0]);

    char *pkt = malloc(65536);
    assert_non_null(pkt);
    ssize_t n = recv(sv[1], pkt, 65536, 0);
    assert_true(n > 12000);
    assert_int_equal(pkt[n - 1], '\n');
    assert_int_equal(count_lines(pkt) >= 1, 1);
    assert_null(memchr(pkt, '\n', (size_t)n - 1));
    n = recv(sv[1], pkt, 65536, 0);
    assert_true(n > 0);
    pkt[n] = '\0';
    assert_non_null(strstr(pkt, "\"msg\":\"short\"}\n"));
    close(sv[1]);
    free(pkt);
    free(big);
}

/* Level and format names parse (any case, "warning" too); anything else is refused. */
static void level_and_format_names_parse(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int         rc;
        log_level   level;
    } levels[] = {
        { "debug", 0, LOG_DEBUG }, { "info", 0, LOG_INFO },   { "warn", 0, LOG_WARN }, { "warning", 0, LOG_WARN },
        { "error", 0, LOG_ERROR }, { "ERROR", 0, LOG_ERROR }, { "", -1, 0 },           { "fatal", -1, 0 },
        { "info ", -1, 0 },
    };
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
        log_level l = (log_level)99;
        assert_int_equal(log_level_parse(levels[i].s, &l), levels[i].rc);
        if (levels[i].rc == 0)
            assert_int_equal(l, levels[i].level);
    }
    assert_int_equal(log_level_parse(NULL, &(log_level){ 0 }), -1);

    log_format f;
    assert_int_equal(log_format_parse("text", &f), 0);
    assert_int_equal(f, LOG_FORMAT_TEXT);
    assert_int_equal(log_format_parse("json", &f), 0);
    assert_int_equal(f, LOG_FORMAT_JSON);
    assert_int_equal(log_format_parse("xml", &f), -1);
    assert_int_equal(log_format_parse(NULL, &f), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(lines_below_minimum_level_are_dropped, setup),
        cmocka_unit_test_setup(text_line_has_utc_millisecond_timestamp_level_and_module, setup),
        cmocka_unit_test_setup(text_line_escapes_newlines_and_control_bytes, setup),
        cmocka_unit_test_setup(json_line_is_valid_json_and_keeps_the_message_exact, setup),
        cmocka_unit_test_setup(registered_secret_is_redacted_until_removed, setup),
        cmocka_unit_test_setup(secret_table_ignores_short_ones_and_is_bounded, setup),
        cmocka_unit_test_setup(longest_overlapping_secret_wins, setup),
        cmocka_unit_test_setup(pool_token_shape_is_redacted_without_registration, setup),
        cmocka_unit_test_setup(redact_output_is_bounded_and_terminated, setup),
        cmocka_unit_test_setup(token_scan_stays_fast_on_pathological_input, setup),
        cmocka_unit_test_setup(long_message_is_truncated_with_marker, setup),
        cmocka_unit_test_setup(mid_sized_message_is_kept_whole, setup),
        cmocka_unit_test_setup(truncation_never_leaks_part_of_a_secret, setup),
        cmocka_unit_test_setup(truncation_keeps_utf8_whole, setup),
        cmocka_unit_test_setup(each_line_is_one_write, setup),
        cmocka_unit_test_setup(level_and_format_names_parse, setup),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    log_secret_remove(NULL);
    return r;
}
