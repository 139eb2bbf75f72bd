/* test_proto.c — the C&C frame codec (proto.h): round trips of every message, upstream-shaped frames, and every
 * kind of malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "iac/proto.h"

/* ---- helpers -------------------------------------------------------------------------------------------------- */

/* Decodes len bytes from an exact-size heap copy, so ASan sees any read past the end of the frame. */
static int decode_n(const char *text, size_t len, proto_msg *m, char *err, size_t errlen)
{
    char *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    memcpy(buf, text, len);
    int rc = proto_decode(buf, len, m, err, errlen);
    free(buf);
    return rc;
}

static int decode(const char *text, proto_msg *m, char *err, size_t errlen)
{
    return decode_n(text, strlen(text), m, err, errlen);
}

/* A frame that must fail with code; the message must contain want (when given), and *out must be left empty. */
static void expect_error_n(const char *text, size_t len, int code, const char *want)
{
    proto_msg m;
    memset(&m, 0xA5, sizeof m); /* garbage in: decode must clear it */
    char err[256] = "";
    int rc = decode_n(text, len, &m, err, sizeof err);
    if (rc != code || err[0] == '\0' || (want && !strstr(err, want)))
        print_error("frame %.*s: rc %d (want %d), err \"%s\" (want \"%s\")\n", (int)(len > 200 ? 200 : len), text, rc,
                    code, err, want ? want : "");
    assert_int_equal(rc, code);
    assert_true(err[0] != '\0');
    if (want)
        assert_non_null(strstr(err, want));
    assert_int_equal(m.type, MSG_UNKNOWN);
    assert_null(m.type_name);
    proto_msg_free(&m);
}

static void expect_error(const char *text, int code, const char *want)
{
    expect_error_n(text, strlen(text), code, want);
}

/* Encodes in, checks that the text is one JSON object with the right type name, and decodes it into out. */
static char *roundtrip(const proto_msg *in, proto_msg *out)
{
    size_t len = 0;
    char *text = proto_encode(in, &len);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));
    cJSON *root = cJSON_Parse(text);
    assert_non_null(root);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "type")),
                        proto_type_name(in->type));
    assert_true(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(root, "payload")));
    cJSON_Delete(root);
    char err[256] = "";
    int rc = decode_n(text, len, out, err, sizeof err);
    if (rc != PROTO_OK)
        print_error("%s: %s\n", text, err);
    assert_int_equal(rc, PROTO_OK);
    assert_int_equal(out->type, in->type);
    assert_string_equal(out->type_name, proto_type_name(in->type));
    return text; /* caller frees; some tests look at the text */
}

static void assert_str_or_null(const char *a, const char *b)
{
    if (!a || !b)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

/* ---- names ---------------------------------------------------------------------------------------------------- */

/* Every type has its own wire name; out-of-range values read as "unknown". */
static void type_names_are_distinct(void **state)
{
    (void)state;
    for (int a = 0; a < MSG__COUNT; a++) {
        assert_true(proto_type_name((msg_type)a)[0] != '\0');
        for (int b = a + 1; b < MSG__COUNT; b++)
            assert_string_not_equal(proto_type_name((msg_type)a), proto_type_name((msg_type)b));
    }
    assert_string_equal(proto_type_name(MSG_UNKNOWN), "unknown");
    assert_string_equal(proto_type_name(MSG_RUN_TASK), "run_task");
    assert_string_equal(proto_type_name(MSG_TASK_REQUEST), "task_request");
    assert_string_equal(proto_type_name(MSG__COUNT), "unknown");
    assert_string_equal(proto_type_name((msg_type)-1), "unknown");
}

/* ---- round trips ---------------------------------------------------------------------------------------------- */

/* run_task keeps every field, the task_type extension included, and writes keys in a fixed order. */
static void run_task_roundtrip(void **state)
{
    (void)state;
    proto_msg in = { .type = MSG_RUN_TASK };
    in.u.run_task = (proto_run_task){ 9007199254740991ull, "ws-\"quoted\"", "apply", "plan_and_apply" };
    proto_msg out;
    char *text = roundtrip(&in, &out);
    assert_string_equal(text, "{\"type\":\"run_task\",\"payload\":{\"task_id\":9007199254740991,"
                              "\"workspace_id\":\"ws-\\\"quoted\\\"\",\"action\":\"apply\","
                              "\"task_type\":\"plan_and_apply\"}}");
    assert_int_equal(out.u.run_task.task_id, 9007199254740991ull);
    assert_string_equal(out.u.run_task.workspace_id, "ws-\"quoted\"");
    assert_string_equal(out.u.run_task.action, "apply");
    assert_string_equal(out.u.run_task.task_type, "plan_and_apply");
    free(text);
    proto_msg_free(&out);
}

/* Without task_type the extension key is not written and decodes as NULL. */
static void run_task_without_task_type_omits_it(void **state)
{
    (void)state;
    proto_msg in = { .type = MSG_RUN_TASK };
    in.u.run_task = (proto_run_task){ 7, "ws", "plan", NULL };
    proto_msg out;
    char *text = roundtrip(&in, &out);
    assert_null(strstr(text, "task_type"));
    assert_null(out.u.run_task.task_type);
    assert_string_equal(out.u.run_task.action, "plan");
    free(text);
    proto_msg_free(&out);
}

/* The five messages that carry only a task id. */
static void task_ref_messages_roundtrip(void **state)
{
    (void)state;
    static const msg_type types[] = { MSG_CANCEL_TASK, MSG_START_REALTIME_STREAM, MSG_STOP_REALTIME_STREAM,
                                      MSG_RELEASE_RESERVATION, MSG_TASK_COMPLETED };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        proto_msg in = { .type = types[i] };
        in.u.task_ref.task_id = 1000 + i;
        proto_msg out;
        char *text = roundtrip(&in, &out);
        char want[128];
        snprintf(want, sizeof want, "{\"type\":\"%s\",\"payload\":{\"task_id\":%zu}}", proto_type_name(types[i]),
                 1000 + i);
        assert_string_equal(text, want);
        assert_int_equal(out.u.task_ref.task_id, 1000 + i);
        free(text);
        proto_msg_free(&out);
    }
}

/* refresh_credentials keeps pool_id and timestamp. */
static void refresh_credentials_roundtrip(void **state)
{
    (void)state;
    proto_msg in = { .type = MSG_REFRESH_CREDENTIALS };
    in.u.refresh_credentials = (proto_refresh_credentials){ "pool-a", 1732442400 };
    proto_msg out;
    char *text = roundtrip(&in, &out);
    assert_string_equal(out.u.refresh_credentials.pool_id, "pool-a");
    assert_int_equal(out.u.refresh_credentials.timestamp, 1732442400);
    free(text);
    proto_msg_free(&out);
}

/* drain and undrain are an empty payload. */
static void drain_and_undrain_roundtrip(void **state)
{
    (void)state;
    msg_type types[] = { MSG_DRAIN, MSG_UNDRAIN };
    for (int i = 0; i < 2; i++) {
        proto_msg in = { .type = types[i] }, out;
        char *text = roundtrip(&in, &out);
        char want[64];
        snprintf(want, sizeof want, "{\"type\":\"%s\",\"payload\":{}}", proto_type_name(types[i]));
        assert_string_equal(text, want);
        free(text);
        proto_msg_free(&out);
    }
}

/* A heartbeat with every extension — four slots in every state, state, version, capabilities — comes back whole;
 * an idle slot's task fields travel as null. */
static void heartbeat_with_all_extensions_roundtrip(void **state)
{
    (void)state;
    uint64_t tasks[] = { 11, 12, 13 };
    proto_slot slots[4] = {
        { 0, "reserved", 11, "plan_and_apply", "plan", 1732440000 },
        { 1, "running", 12, "plan", "plan", 1732440100 },
        { 2, "idle", 0, NULL, NULL, 1732440200 },
        { 3, "running", 13, "drift_check", "plan", 1732440300 },
    };
    char *caps[] = { "slots", "task_rejected", "task_request" };
    proto_msg in = { .type = MSG_HEARTBEAT };
    in.u.heartbeat = (proto_heartbeat){
        .plan_running = 2, .plan_limit = 3, .apply_running = false, .current_tasks = tasks, .n_current_tasks = 3,
        .cpu_usage = 55.25, .mem_usage = 0.1, .status = "ok", .timestamp = 1732442400, .slots = slots,
        .n_slots = 4, .has_slots = true, .state = "draining", .agent_version = "1.2.3", .capabilities = caps,
        .n_capabilities = 3,
    };
    proto_msg out;
    char *text = roundtrip(&in, &out);
    assert_non_null(strstr(text, "{\"slot_id\":2,\"status\":\"idle\",\"task_id\":null,\"task_type\":null,"
                                 "\"action\":null,\"since\":1732440200}"));
    assert_non_null(strstr(text, "\"mem_usage\":0.1,"));
    const proto_heartbeat *h = &out.u.heartbeat;
    assert_int_equal(h->plan_running, 2);
    assert_int_equal(h->plan_limit, 3);
    assert_false(h->apply_running);
    assert_false(h->current_tasks_null);
    assert_int_equal(h->n_current_tasks, 3);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(h->current_tasks[i], tasks[i]);
    assert_true(h->cpu_usage == 55.25);
    assert_true(h->mem_usage == 0.1);
    assert_string_equal(h->status, "ok");
    assert_int_equal(h->timestamp, 1732442400);
    assert_true(h->has_slots);
    assert_int_equal(h->n_slots, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(h->slots[i].slot_id, slots[i].slot_id);
        assert_string_equal(h->slots[i].status, slots[i].status);
        assert_int_equal(h->slots[i].task_id, slots[i].task_id);
        assert_str_or_null(h->slots[i].task_type, slots[i].task_type);
        assert_str_or_null(h->slots[i].action, slots[i].action);
        assert_int_equal(h->slots[i].since, slots[i].since);
    }
    assert_string_equal(h->state, "draining");
    assert_string_equal(h->agent_version, "1.2.3");
    assert_int_equal(h->n_capabilities, 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(h->capabilities[i], caps[i]);
    free(text);
    proto_msg_free(&out);
}

/* Unset extensions are not written at all, and current_tasks_null is written as null (and read back as such). */
static void heartbeat_without_extensions_writes_upstream_fields_only(void **state)
{
    (void)state;
    proto_msg in = { .type = MSG_HEARTBEAT };
    in.u.heartbeat = (proto_heartbeat){ .plan_limit = 3, .current_tasks_null = true, .cpu_usage = 10,
                                        .mem_usage = 37.5, .status = "ok", .timestamp = 1 };
    proto_msg out;
    char *text = roundtrip(&in, &out);
    assert_string_equal(text, "{\"type\":\"heartbeat\",\"payload\":{\"plan_running\":0,\"plan_limit\":3,"
                              "\"apply_running\":false,\"current_tasks\":null,\"cpu_usage\":10,"
                              "\"mem_usage\":37.5,\"status\":\"ok\",\"timestamp\":1}}");
    assert_true(out.u.heartbeat.current_tasks_null);
    assert_int_equal(out.u.heartbeat.n_current_tasks, 0);
    assert_false(out.u.heartbeat.has_slots);
    assert_null(out.u.heartbeat.slots);
    assert_null(out.u.heartbeat.state);
    assert_null(out.u.heartbeat.agent_version);
    assert_int_equal(out.u.heartbeat.n_capabilities, 0);
    free(text);
    proto_msg_free(&out);
}

/* An empty (not null) task list and an empty slot list stay empty lists, distinct from null and absent. */
static void heartbeat_empty_lists_stay_lists(void **state)
{
    (void)state;
    proto_msg in = { .type = MSG_HEARTBEAT };
    in.u.heartbeat = (proto_heartbeat){ .status = "ok", .has_slots = true };
    proto_msg out;
    char *text = roundtrip(&in, &out);
    assert_non_null(strstr(text, "\"current_tasks\":[]"));
    assert_non_null(strstr(text, "\"slots\":[]"));
    assert_false(out.u.heartbeat.current_tasks_null);
    assert_true(out.u.heartbeat.has_slots);
    assert_int_equal(out.u.heartbeat.n_slots, 0);
    free(text);
    proto_msg_free(&out);
}

/* Doubles are written in their shortest exact form and read back bit for bit; NaN and infinity become 0. */
static void heartbeat_doubles_are_exact_and_never_nan(void **state)
{
    (void)state;
    static const double values[] = { 0.0, 0.1, 1.0 / 3.0, 99.99999999999999, 1e-300, 1.7976931348623157e308,
                                     -2.5, 123456789.125 };
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        proto_msg in = { .type = MSG_HEARTBEAT }, out;
        in.u.heartbeat.cpu_usage = values[i];
        in.u.heartbeat.mem_usage = -values[i];
        char *text = roundtrip(&in, &out);
        assert_true(out.u.heartbeat.cpu_usage == values[i]);
        assert_true(out.u.heartbeat.mem_usage == -values[i]);
        free(text);
        proto_msg_free(&out);
    }
    proto_msg in = { .type = MSG_HEARTBEAT }, out;
    in.u.heartbeat.cpu_usage = 0.0 / 0.0;
    in.u.heartbeat.mem_usage = 1.0 / 0.0;
    char *text = roundtrip(&in, &out);
    assert_non_null(strstr(text, "\"cpu_usage\":0,\"mem_usage\":0,"));
    assert_true(out.u.heartbeat.cpu_usage == 0.0);
    free(text);
    proto_msg_free(&out);
}

/* log_stream keeps every field, including a line full of characters that need escaping and multibyte UTF-8. */
static void log_stream_roundtrip(void **state)
{
    (void)state;
    const char *line = "quote \" backslash \\ nl \n cr \r tab \t bell \a esc \x1b del \x7f é → 🚀 /";
    proto_msg in = { .type = MSG_LOG_STREAM };
    in.u.log_stream = (proto_log_stream){ 42, "stage_marker", (char *)line, "2026-11-24T10:00:00.123Z", 17,
                                          "planning", "begin" };
    proto_msg out;
    char *text = roundtrip(&in, &out);
    const proto_log_stream *l = &out.u.log_stream;
    assert_int_equal(l->task_id, 42);
    assert_string_equal(l->type, "stage_marker");
    assert_string_equal(l->line, line);
    assert_string_equal(l->timestamp, "2026-11-24T10:00:00.123Z");
    assert_int_equal(l->line_num, 17);
    assert_string_equal(l->stage, "planning");
    assert_string_equal(l->status, "begin");
    free(text);
    proto_msg_free(&out);
}

/* Invalid UTF-8 in an outgoing string becomes U+FFFD per bad byte, so the frame stays valid UTF-8 and decodable. */
static void encoder_replaces_invalid_utf8(void **state)
{
    (void)state;
    static const struct { const char *in, *out; } cases[] = {
        { "a\xff" "b", "a\xef\xbf\xbd" "b" },
        { "\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd" },             /* overlong '/' */
        { "x\xed\xa0\x80", "x\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" }, /* surrogate */
        { "\xe2\x82", "\xef\xbf\xbd\xef\xbf\xbd" },             /* truncated at the end */
        { "\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" }, /* above U+10FFFF */
        { "ok \xe2\x82\xac", "ok \xe2\x82\xac" },                 /* a valid euro sign is kept */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        proto_msg in = { .type = MSG_TASK_FAILED }, out;
        in.u.task_failed = (proto_task_failed){ 5, (char *)cases[i].in };
        char *text = roundtrip(&in, &out);
        assert_string_equal(out.u.task_failed.error, cases[i].out);
        free(text);
        proto_msg_free(&out);
    }
}

/* task_failed keeps an empty error as empty. */
static void task_failed_roundtrip_with_empty_error(void **state)
{
    (void)state;
    proto_msg in = { .type = MSG_TASK_FAILED }, out;
    in.u.task_failed = (proto_task_failed){ 8, "" };
    char *text = roundtrip(&in, &out);
    assert_int_equal(out.u.task_failed.task_id, 8);
    assert_string_equal(out.u.task_failed.error, "");
    free(text);
    proto_msg_free(&out);
}

/* credentials_refreshed keeps its four fields. */
static void credentials_refreshed_roundtrip(void **state)
{
    (void)state;
    proto_msg in = { .type = MSG_CREDENTIALS_REFRESHED }, out;
    in.u.credentials_refreshed = (proto_credentials_refreshed){ "agent-pool-1", "pool-1", 1732442400, 3 };
    char *text = roundtrip(&in, &out);
    assert_string_equal(out.u.credentials_refreshed.agent_id, "agent-pool-1");
    assert_string_equal(out.u.credentials_refreshed.pool_id, "pool-1");
    assert_int_equal(out.u.credentials_refreshed.timestamp, 1732442400);
    assert_int_equal(out.u.credentials_refreshed.count, 3);
    free(text);
    proto_msg_free(&out);
}

/* task_rejected keeps task, action and reason. */
static void task_rejected_roundtrip(void **state)
{
    (void)state;
    proto_msg in = { .type = MSG_TASK_REJECTED }, out;
    in.u.task_rejected = (proto_task_rejected){ 598, "apply", "slot 0 is reserved for an apply" };
    char *text = roundtrip(&in, &out);
    assert_int_equal(out.u.task_rejected.task_id, 598);
    assert_string_equal(out.u.task_rejected.action, "apply");
    assert_string_equal(out.u.task_rejected.reason, "slot 0 is reserved for an apply");
    free(text);
    proto_msg_free(&out);
}

/* task_request keeps its free counts and reserved ids, and an empty reserved list stays empty. */
static void task_request_roundtrip(void **state)
{
    (void)state;
    uint64_t reserved[] = { 511, 598 };
    proto_msg in = { .type = MSG_TASK_REQUEST }, out;
    in.u.task_request = (proto_task_request){ 1, 3, reserved, 2 };
    char *text = roundtrip(&in, &out);
    assert_string_equal(text, "{\"type\":\"task_request\",\"payload\":{\"free\":{\"plan_and_apply\":1,\"plan\":3},"
                              "\"reserved\":[511,598]}}");
    assert_int_equal(out.u.task_request.free_plan_and_apply, 1);
    assert_int_equal(out.u.task_request.free_plan, 3);
    assert_int_equal(out.u.task_request.n_reserved, 2);
    assert_int_equal(out.u.task_request.reserved[0], 511);
    assert_int_equal(out.u.task_request.reserved[1], 598);
    free(text);
    proto_msg_free(&out);

    in.u.task_request = (proto_task_request){ 0, 0, NULL, 0 };
    text = roundtrip(&in, &out);
    assert_int_equal(out.u.task_request.n_reserved, 0);
    assert_null(out.u.task_request.reserved);
    free(text);
    proto_msg_free(&out);
}

/* Nothing is encoded for MSG_UNKNOWN, an out-of-range type or a NULL message. */
static void encode_refuses_unknown(void **state)
{
    (void)state;
    size_t len = 99;
    proto_msg m = { .type = MSG_UNKNOWN };
    assert_null(proto_encode(&m, &len));
    assert_int_equal(len, 0);
    m.type = MSG__COUNT;
    assert_null(proto_encode(&m, &len));
    assert_null(proto_encode(NULL, &len));
}

/* NULL strings in a message being encoded are written as "" rather than crashing; a NULL action as "plan". */
static void encode_tolerates_null_strings(void **state)
{
    (void)state;
    proto_msg in = { .type = MSG_LOG_STREAM }, out;
    in.u.log_stream.task_id = 3;
    char *text = roundtrip(&in, &out);
    assert_string_equal(out.u.log_stream.line, "");
    free(text);
    proto_msg_free(&out);
    proto_msg rt = { .type = MSG_RUN_TASK };
    rt.u.run_task.task_id = 4;
    text = roundtrip(&rt, &out);
    assert_string_equal(out.u.run_task.workspace_id, "");
    assert_string_equal(out.u.run_task.action, "plan");
    free(text);
    proto_msg_free(&out);
}

/* ---- upstream-shaped frames ----------------------------------------------------------------------------------- */

/* A heartbeat as the upstream Go agent sends it (no extensions, float cpu, int-valued mem) decodes with every
 * extension absent. */
static void upstream_heartbeat_decodes(void **state)
{
    (void)state;
    const char *frame = "{\"type\":\"heartbeat\",\"payload\":{\"apply_running\":true,\"cpu_usage\":40,"
                        "\"current_tasks\":[101,102],\"mem_usage\":37.52,\"plan_limit\":3,\"plan_running\":1,"
                        "\"status\":\"ok\",\"timestamp\":1732442400}}";
    proto_msg m;
    char err[256] = "";
    assert_int_equal(decode(frame, &m, err, sizeof err), PROTO_OK);
    assert_int_equal(m.type, MSG_HEARTBEAT);
    const proto_heartbeat *h = &m.u.heartbeat;
    assert_int_equal(h->plan_running, 1);
    assert_int_equal(h->plan_limit, 3);
    assert_true(h->apply_running);
    assert_int_equal(h->n_current_tasks, 2);
    assert_int_equal(h->current_tasks[0], 101);
    assert_int_equal(h->current_tasks[1], 102);
    assert_false(h->current_tasks_null);
    assert_true(h->cpu_usage == 40.0);
    assert_true(h->mem_usage == 37.52);
    assert_string_equal(h->status, "ok");
    assert_int_equal(h->timestamp, 1732442400);
    assert_false(h->has_slots);
    assert_null(h->slots);
    assert_null(h->state);
    assert_null(h->agent_version);
    assert_null(h->capabilities);
    proto_msg_free(&m);

    /* before any task has run, upstream sends current_tasks: null */
    frame = "{\"type\":\"heartbeat\",\"payload\":{\"apply_running\":false,\"cpu_usage\":10,\"current_tasks\":null,"
            "\"mem_usage\":12.5,\"plan_limit\":3,\"plan_running\":0,\"status\":\"ok\",\"timestamp\":1732442410}}";
    assert_int_equal(decode(frame, &m, err, sizeof err), PROTO_OK);
    assert_true(m.u.heartbeat.current_tasks_null);
    assert_null(m.u.heartbeat.current_tasks);
    proto_msg_free(&m);
}

/* An upstream run_task (Go map: sorted keys, no task_type) decodes; a missing action means plan and any other
 * action string is kept as sent. */
static void upstream_run_task_decodes(void **state)
{
    (void)state;
    proto_msg m;
    char err[256] = "";
    assert_int_equal(decode("{\"payload\":{\"action\":\"apply\",\"task_id\":598,\"workspace_id\":\"ws-1\"},"
                            "\"type\":\"run_task\"}", &m, err, sizeof err), PROTO_OK);
    assert_int_equal(m.type, MSG_RUN_TASK);
    assert_int_equal(m.u.run_task.task_id, 598);
    assert_string_equal(m.u.run_task.workspace_id, "ws-1");
    assert_string_equal(m.u.run_task.action, "apply");
    assert_null(m.u.run_task.task_type);
    proto_msg_free(&m);

    assert_int_equal(decode("{\"type\":\"run_task\",\"payload\":{\"task_id\":1,\"workspace_id\":\"w\"}}", &m, err,
                            sizeof err), PROTO_OK);
    assert_string_equal(m.u.run_task.action, "plan");
    proto_msg_free(&m);

    assert_int_equal(decode("{\"type\":\"run_task\",\"payload\":{\"task_id\":1,\"workspace_id\":\"w\","
                            "\"action\":\"destroy\",\"task_type\":null}}", &m, err, sizeof err), PROTO_OK);
    assert_string_equal(m.u.run_task.action, "destroy");
    assert_null(m.u.run_task.task_type);
    proto_msg_free(&m);
}

/* Unknown types decode as MSG_UNKNOWN with the received name kept, whatever fields the payload has. */
static void unknown_type_is_kept_by_name(void **state)
{
    (void)state;
    proto_msg m;
    char err[256] = "";
    assert_int_equal(decode("{\"type\":\"future_thing\",\"payload\":{\"x\":[1,{\"y\":null}]}}", &m, err,
                            sizeof err), PROTO_OK);
    assert_int_equal(m.type, MSG_UNKNOWN);
    assert_string_equal(m.type_name, "future_thing");
    proto_msg_free(&m);
    /* even one spelled "unknown" */
    assert_int_equal(decode("{\"type\":\"unknown\",\"payload\":{}}", &m, err, sizeof err), PROTO_OK);
    assert_int_equal(m.type, MSG_UNKNOWN);
    proto_msg_free(&m);
}

/* Unknown fields, in the envelope and in the payload, are ignored. */
static void unknown_fields_are_ignored(void **state)
{
    (void)state;
    proto_msg m;
    char err[256] = "";
    assert_int_equal(decode("{\"id\":\"abc\",\"type\":\"cancel_task\",\"payload\":{\"task_id\":3,\"why\":"
                            "{\"deep\":[1,2,3]},\"reason\":\"user\"},\"extra\":true}", &m, err, sizeof err),
                     PROTO_OK);
    assert_int_equal(m.type, MSG_CANCEL_TASK);
    assert_int_equal(m.u.task_ref.task_id, 3);
    proto_msg_free(&m);
}

/* drain and undrain accept a missing or null payload (they carry no fields); other types do not. */
static void drain_payload_may_be_missing(void **state)
{
    (void)state;
    static const char *ok[] = { "{\"type\":\"drain\"}", "{\"type\":\"undrain\",\"payload\":null}",
                                "{\"type\":\"drain\",\"payload\":{\"why\":\"scale-down\"}}" };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        proto_msg m;
        char err[256] = "";
        assert_int_equal(decode(ok[i], &m, err, sizeof err), PROTO_OK);
        assert_true(m.type == MSG_DRAIN || m.type == MSG_UNDRAIN);
        proto_msg_free(&m);
    }
    expect_error("{\"type\":\"drain\",\"payload\":\"now\"}", PROTO_E_ENVELOPE, "drain: payload: expected an object");
    expect_error("{\"type\":\"future_thing\"}", PROTO_E_ENVELOPE, "payload: required but missing");
}

/* Every proto_msg_free leaves a zeroed struct, and freeing a zeroed struct (or twice) is harmless. */
static void free_is_safe_on_empty_and_twice(void **state)
{
    (void)state;
    proto_msg m = { 0 };
    proto_msg_free(&m);
    proto_msg_free(NULL);
    char err[256];
    assert_int_equal(decode("{\"type\":\"task_failed\",\"payload\":{\"task_id\":1,\"error\":\"x\"}}", &m, err,
                            sizeof err), PROTO_OK);
    proto_msg_free(&m);
    assert_int_equal(m.type, MSG_UNKNOWN);
    assert_null(m.type_name);
    assert_null(m.u.task_failed.error);
    proto_msg_free(&m);
}

/* ---- malformed frames ----------------------------------------------------------------------------------------- */

/* Text that is not one JSON object is PROTO_E_JSON: garbage, truncation, arrays, scalars, trailing bytes, empty. */
static void not_a_json_object_is_a_json_error(void **state)
{
    (void)state;
    expect_error("hello", PROTO_E_JSON, "not valid JSON");
    expect_error("{\"type\":\"run_task\",\"payload\":{\"task_id\":1", PROTO_E_JSON, "not valid JSON");
    expect_error("{\"type\":\"run_task\",\"payload\":{\"task_id\":1,\"workspace_id\":\"w", PROTO_E_JSON, NULL);
    expect_error("[{\"type\":\"drain\",\"payload\":{}}]", PROTO_E_JSON, "got array");
    expect_error("\"drain\"", PROTO_E_JSON, "got string");
    expect_error("null", PROTO_E_JSON, "got null");
    expect_error("{\"type\":\"drain\",\"payload\":{}} {}", PROTO_E_JSON, "not valid JSON");
    expect_error("", PROTO_E_JSON, "empty");
    expect_error("  \n ", PROTO_E_JSON, NULL);
    proto_msg m;
    char err[64] = "";
    assert_int_equal(proto_decode(NULL, 0, &m, err, sizeof err), PROTO_E_JSON);
    assert_true(err[0] != '\0');
}

/* A raw NUL byte anywhere in the frame is refused, and so is a \u0000 escape (no C string can carry it). */
static void embedded_nul_is_refused(void **state)
{
    (void)state;
    const char frame[] = "{\"type\":\"run_task\",\"payload\":{\"task_id\":1,\"workspace_id\":\"w\0x\"}}";
    expect_error_n(frame, sizeof frame - 1, PROTO_E_JSON, "NUL byte");
    const char tail[] = "{\"type\":\"drain\",\"payload\":{}}\0";
    expect_error_n(tail, sizeof tail - 1, PROTO_E_JSON, "NUL byte");
    expect_error("{\"type\":\"run_task\",\"payload\":{\"task_id\":1,\"workspace_id\":\"w\\u0000x\"}}",
                 PROTO_E_JSON, "\\u0000");
}

/* Invalid UTF-8 anywhere in the frame is refused before parsing; valid multibyte text is accepted. */
static void invalid_utf8_is_refused(void **state)
{
    (void)state;
    static const char *bad[] = { "\xff", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\x80",
                                 "\xf8\x88\x80\x80\x80", "\xc3" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char frame[128];
        snprintf(frame, sizeof frame, "{\"type\":\"run_task\",\"payload\":{\"task_id\":1,\"workspace_id\":\"%s\"}}",
                 bad[i]);
        expect_error(frame, PROTO_E_JSON, "not valid UTF-8");
    }
    /* also as the last byte of the frame, where a sequence is cut short */
    expect_error("{\"type\":\"drain\",\"payload\":{}}\xe2", PROTO_E_JSON, "not valid UTF-8");
    proto_msg m;
    char err[256] = "";
    assert_int_equal(decode("{\"type\":\"run_task\",\"payload\":{\"task_id\":1,\"workspace_id\":\"w-é-€-𝄞\"}}", &m,
                            err, sizeof err), PROTO_OK);
    assert_string_equal(m.u.run_task.workspace_id, "w-é-€-𝄞");
    proto_msg_free(&m);
}

/* A frame over PROTO_MAX_FRAME is PROTO_E_TOOBIG without being parsed; one of exactly the limit is parsed. */
static void frame_size_limit(void **state)
{
    (void)state;
    size_t n = PROTO_MAX_FRAME;
    char *buf = malloc(n + 1);
    assert_non_null(buf);
    const char *frame = "{\"type\":\"drain\",\"payload\":{}}";
    memset(buf, ' ', n + 1);
    memcpy(buf, frame, strlen(frame));
    proto_msg m;
    char err[256] = "";
    assert_int_equal(proto_decode(buf, n, &m, err, sizeof err), PROTO_OK);
    assert_int_equal(m.type, MSG_DRAIN);
    proto_msg_free(&m);
    expect_error_n(buf, n + 1, PROTO_E_TOOBIG, "over the limit");
    /* the size is checked first: even garbage that large is TOOBIG, not a parse error */
    memset(buf, 0xff, n + 1);
    expect_error_n(buf, n + 1, PROTO_E_TOOBIG, NULL);
    free(buf);
}

/* Deep nesting (100000 '[') is refused quickly, without exhausting the stack. */
static void deep_nesting_is_refused(void **state)
{
    (void)state;
    size_t depth = 100000;
    const char *head = "{\"type\":\"run_task\",\"payload\":{\"x\":";
    size_t hl = strlen(head);
    char *buf = malloc(hl + depth);
    assert_non_null(buf);
    memcpy(buf, head, hl);
    memset(buf + hl, '[', depth);
    expect_error_n(buf, hl + depth, PROTO_E_JSON, NULL);
    memset(buf, '[', hl + depth);
    expect_error_n(buf, hl + depth, PROTO_E_JSON, NULL);
    free(buf);
}

/* Envelope errors: type missing, null or not a string; payload missing, null or not an object. */
static void envelope_errors(void **state)
{
    (void)state;
    static const struct { const char *frame, *msg; } cases[] = {
        { "{\"payload\":{}}", "frame: type: required but missing" },
        { "{\"type\":null,\"payload\":{}}", "frame: type: required but null" },
        { "{\"type\":5,\"payload\":{}}", "frame: type: expected a string, got number" },
        { "{\"type\":[\"run_task\"],\"payload\":{}}", "frame: type: expected a string, got array" },
        { "{\"type\":\"run_task\",\"payload\":\"{}\"}", "run_task: payload: expected an object, got string" },
        { "{\"type\":\"run_task\",\"payload\":[]}", "run_task: payload: expected an object, got array" },
        { "{\"type\":\"run_task\"}", "run_task: payload: required but missing" },
        { "{\"type\":\"run_task\",\"payload\":null}", "run_task: payload: required but null" },
        { "{\"type\":\"heartbeat\",\"payload\":7}", "heartbeat: payload: expected an object, got number" },
        { "{\"type\":\"mystery\",\"payload\":true}", "unknown type: payload: expected an object, got boolean" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_error(cases[i].frame, PROTO_E_ENVELOPE, cases[i].msg);
}

/* task_id must be a whole JSON number from 1 to 2^53-1; each violation is named with the type and field. */
static void task_id_must_be_a_valid_id(void **state)
{
    (void)state;
    static const struct { const char *id, *msg; } cases[] = {
        { "\"7\"", "run_task: task_id: expected a whole number, got string" },
        { "-1", "run_task: task_id: expected a whole number from 0 to 2^53, got -1" },
        { "1.5", "run_task: task_id: expected a whole number, got 1.5" },
        { "1152921504606846976",
          "run_task: task_id: expected a whole number from 0 to 2^53, got 1.152921504606847e+18" },
        { "9007199254740992", "run_task: task_id: expected a whole number from 1 to 2^53-1, got 9007199254740992" },
        { "0", "run_task: task_id: expected a whole number from 1 to 2^53-1, got 0" },
        { "true", "run_task: task_id: expected a whole number, got boolean" },
        { "{}", "run_task: task_id: expected a whole number, got object" },
        { "null", "run_task: task_id: required but null" },
        { "1e999", "run_task: task_id: expected a whole number, got Infinity" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char frame[160];
        snprintf(frame, sizeof frame, "{\"type\":\"run_task\",\"payload\":{\"task_id\":%s,\"workspace_id\":\"w\"}}",
                 cases[i].id);
        expect_error(frame, PROTO_E_FIELD, cases[i].msg);
    }
}

/* Required fields of each message: leaving one out is PROTO_E_FIELD naming the message and the field. */
static void required_fields_are_required(void **state)
{
    (void)state;
    static const struct { const char *frame, *msg; } cases[] = {
        { "{\"type\":\"run_task\",\"payload\":{\"workspace_id\":\"w\"}}", "run_task: task_id: required but missing" },
        { "{\"type\":\"run_task\",\"payload\":{\"task_id\":1}}", "run_task: workspace_id: required but missing" },
        { "{\"type\":\"cancel_task\",\"payload\":{}}", "cancel_task: task_id: required but missing" },
        { "{\"type\":\"start_realtime_stream\",\"payload\":{}}", "start_realtime_stream: task_id: required" },
        { "{\"type\":\"stop_realtime_stream\",\"payload\":{}}", "stop_realtime_stream: task_id: required" },
        { "{\"type\":\"release_reservation\",\"payload\":{}}", "release_reservation: task_id: required" },
        { "{\"type\":\"task_completed\",\"payload\":{}}", "task_completed: task_id: required" },
        { "{\"type\":\"log_stream\",\"payload\":{\"line\":\"x\"}}", "log_stream: task_id: required" },
        { "{\"type\":\"task_failed\",\"payload\":{\"task_id\":1}}", "task_failed: error: required but missing" },
        { "{\"type\":\"task_failed\",\"payload\":{\"error\":\"e\"}}", "task_failed: task_id: required" },
        { "{\"type\":\"task_rejected\",\"payload\":{\"task_id\":1,\"action\":\"plan\"}}",
          "task_rejected: reason: required" },
        { "{\"type\":\"task_rejected\",\"payload\":{\"task_id\":1,\"reason\":\"r\"}}",
          "task_rejected: action: required" },
        { "{\"type\":\"task_request\",\"payload\":{\"reserved\":[]}}", "task_request: free: required but missing" },
        { "{\"type\":\"task_request\",\"payload\":{\"free\":{\"plan_and_apply\":1}}}",
          "task_request: free: plan: required" },
        { "{\"type\":\"heartbeat\",\"payload\":{\"slots\":[{\"status\":\"idle\"}]}}",
          "heartbeat: slots[0]: slot_id: required" },
        { "{\"type\":\"heartbeat\",\"payload\":{\"slots\":[{\"slot_id\":0}]}}",
          "heartbeat: slots[0]: status: required" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_error(cases[i].frame, PROTO_E_FIELD, cases[i].msg);
}

/* Optional fields are still type-checked when present; the error names message, path and field. */
static void optional_fields_are_type_checked(void **state)
{
    (void)state;
    static const struct { const char *frame, *msg; } cases[] = {
        { "{\"type\":\"run_task\",\"payload\":{\"task_id\":1,\"workspace_id\":5}}",
          "run_task: workspace_id: expected a string, got number" },
        { "{\"type\":\"run_task\",\"payload\":{\"task_id\":1,\"workspace_id\":\"w\",\"action\":1}}",
          "run_task: action: expected a string" },
        { "{\"type\":\"run_task\",\"payload\":{\"task_id\":1,\"workspace_id\":\"w\",\"task_type\":[]}}",
          "run_task: task_type: expected a string, got array" },
        { "{\"type\":\"refresh_credentials\",\"payload\":{\"pool_id\":5}}",
          "refresh_credentials: pool_id: expected a string" },
        { "{\"type\":\"refresh_credentials\",\"payload\":{\"timestamp\":\"now\"}}",
          "refresh_credentials: timestamp: expected a whole number, got string" },
        { "{\"type\":\"heartbeat\",\"payload\":{\"plan_running\":1.5}}",
          "heartbeat: plan_running: expected a whole number, got 1.5" },
        { "{\"type\":\"heartbeat\",\"payload\":{\"plan_limit\":\"3\"}}",
          "heartbeat: plan_limit: expected a whole number" },
        { "{\"type\":\"heartbeat\",\"payload\":{\"apply_running\":\"yes\"}}",
          "heartbeat: apply_running: expected a boolean, got string" },
        { "{\"type\":\"heartbeat\",\"payload\":{\"apply_running\":0}}",
          "heartbeat: apply_running: expected a boolean, got number" },
        { "{\"type\":\"heartbeat\",\"payload\":{\"current_tasks\":\"1,2\"}}",
          "heartbeat: current_tasks: expected an array, got string" },
        { "{\"type\":\"heartbeat\",\"payload\":{\"current_tasks\":[1,\"2\"]}}",
          "heartbeat: current_tasks[1]: expected a whole number, got string" },
        { "{\"type\":\"heartbeat\",\"payload\":{\"current_tasks\":[1,2.5]}}",
          "heartbeat: current_tasks[1]: expected a whole number from 1 to 2^53-1, got 2.5" },
        { "{\"type\":\"heartbeat\",\"payload\":{\"current_tasks\":[null]}}",
          "heartbeat: current_tasks[0]: expected a whole number, got null" },
        { "{\"type\":\"heartbeat\",\"payload\":{\"cpu_usage\":\"10%\"}}",
          "heartbeat: cpu_usage: expected a number, got string" },
        { "{\"type\":\"heartbeat\",\"payload\":{\"mem_usage\":1e999}}",
          "heartbeat: mem_usage: expected a finite number" },
        { "{\"type\":\"heartbeat\",\"payload\":{\"status\":true}}", "heartbeat: status: expected a string" },
        { "{\"type\":\"heartbeat\",\"payload\":{\"timestamp\":\"2026\"}}",
          "heartbeat: timestamp: expected a whole number" },
        { "{\"type\":\"heartbeat\",\"payload\":{\"slots\":{}}}", "heartbeat: slots: expected an array, got object" },
        { "{\"type\":\"heartbeat\",\"payload\":{\"slots\":[{\"slot_id\":0,\"status\":\"idle\"},3]}}",
          "heartbeat: slots[1]: expected an object, got number" },
        { "{\"type\":\"heartbeat\",\"payload\":{\"slots\":[{\"slot_id\":0,\"status\":\"idle\"},{\"slot_id\":1,"
          "\"status\":2}]}}",
          "heartbeat: slots[1]: status: expected a string, got number" },
        { "{\"type\":\"heartbeat\",\"payload\":{\"slots\":[{\"slot_id\":-1,\"status\":\"idle\"}]}}",
          "heartbeat: slots[0]: slot_id: expected a whole number from 0 to" },
        { "{\"type\":\"heartbeat\",\"payload\":{\"slots\":[{\"slot_id\":0,\"status\":\"running\","
          "\"task_id\":\"5\"}]}}",
          "heartbeat: slots[0]: task_id: expected a whole number, got string" },
        { "{\"type\":\"heartbeat\",\"payload\":{\"slots\":[{\"slot_id\":0,\"status\":\"running\",\"task_type\":1}]}}",
          "heartbeat: slots[0]: task_type: expected a string" },
        { "{\"type\":\"heartbeat\",\"payload\":{\"slots\":[{\"slot_id\":0,\"status\":\"running\",\"since\":\"t\"}]}}",
          "heartbeat: slots[0]: since: expected a whole number" },
        { "{\"type\":\"heartbeat\",\"payload\":{\"state\":1}}", "heartbeat: state: expected a string" },
        { "{\"type\":\"heartbeat\",\"payload\":{\"agent_version\":{}}}",
          "heartbeat: agent_version: expected a string" },
        { "{\"type\":\"heartbeat\",\"payload\":{\"capabilities\":\"slots\"}}",
          "heartbeat: capabilities: expected an array" },
        { "{\"type\":\"heartbeat\",\"payload\":{\"capabilities\":[\"slots\",1]}}",
          "heartbeat: capabilities[1]: expected a string, got number" },
        { "{\"type\":\"log_stream\",\"payload\":{\"task_id\":1,\"line_num\":\"3\"}}",
          "log_stream: line_num: expected a whole number" },
        { "{\"type\":\"log_stream\",\"payload\":{\"task_id\":1,\"line\":[]}}", "log_stream: line: expected a string" },
        { "{\"type\":\"log_stream\",\"payload\":{\"task_id\":1,\"stage\":0}}", "log_stream: stage: expected a string" },
        { "{\"type\":\"task_failed\",\"payload\":{\"task_id\":1,\"error\":null}}",
          "task_failed: error: required but null" },
        { "{\"type\":\"credentials_refreshed\",\"payload\":{\"count\":1.5}}",
          "credentials_refreshed: count: expected a whole number, got 1.5" },
        { "{\"type\":\"credentials_refreshed\",\"payload\":{\"agent_id\":1}}",
          "credentials_refreshed: agent_id: expected a string" },
        { "{\"type\":\"task_request\",\"payload\":{\"free\":[]}}",
          "task_request: free: expected an object, got array" },
        { "{\"type\":\"task_request\",\"payload\":{\"free\":{\"plan_and_apply\":1,\"plan\":-1}}}",
          "task_request: free: plan: expected a whole number from 0" },
        { "{\"type\":\"task_request\",\"payload\":{\"free\":{\"plan_and_apply\":1,\"plan\":1},\"reserved\":[\"a\"]}}",
          "task_request: reserved[0]: expected a whole number, got string" },
        { "{\"type\":\"task_request\",\"payload\":{\"free\":{\"plan_and_apply\":1,\"plan\":1},\"reserved\":[0]}}",
          "task_request: reserved[0]: expected a whole number from 1 to 2^53-1, got 0" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_error(cases[i].frame, PROTO_E_FIELD, cases[i].msg);
}

/* Nothing of the optional kind is required: payloads with only their required fields decode. */
static void minimal_payloads_decode(void **state)
{
    (void)state;
    static const char *frames[] = {
        "{\"type\":\"refresh_credentials\",\"payload\":{}}",
        "{\"type\":\"heartbeat\",\"payload\":{}}",
        "{\"type\":\"credentials_refreshed\",\"payload\":{}}",
        "{\"type\":\"log_stream\",\"payload\":{\"task_id\":1}}",
        "{\"type\":\"task_request\",\"payload\":{\"free\":{\"plan_and_apply\":0,\"plan\":0}}}",
        "{\"type\":\"heartbeat\",\"payload\":{\"slots\":[{\"slot_id\":0,\"status\":\"idle\",\"task_id\":null}]}}",
    };
    for (size_t i = 0; i < sizeof frames / sizeof frames[0]; i++) {
        proto_msg m;
        char err[256] = "";
        int rc = decode(frames[i], &m, err, sizeof err);
        if (rc != PROTO_OK)
            print_error("%s: %s\n", frames[i], err);
        assert_int_equal(rc, PROTO_OK);
        proto_msg_free(&m);
    }
}

/* Error messages never repeat string values from the frame (a payload could carry a token). */
static void errors_do_not_echo_values(void **state)
{
    (void)state;
    proto_msg m;
    char err[256] = "";
    assert_int_equal(decode("{\"type\":\"run_task\",\"payload\":{\"task_id\":\"apt_pool_0123456789abcdef\","
                            "\"workspace_id\":\"w\"}}", &m, err, sizeof err), PROTO_E_FIELD);
    assert_true(err[0] != '\0');
    assert_null(strstr(err, "apt_"));
    assert_int_equal(decode("{\"type\":\"apt_secret_type\",\"payload\":5}", &m, err, sizeof err),
                     PROTO_E_ENVELOPE);
    assert_true(err[0] != '\0');
    assert_null(strstr(err, "apt_"));
}

/* Every prefix of a valid frame, and every single-byte corruption of it, decodes or fails cleanly (no crash, no
 * leak under ASan, *out empty on failure). */
static void truncations_and_corruptions_never_crash(void **state)
{
    (void)state;
    uint64_t tasks[] = { 1, 2 };
    proto_slot slots[2] = { { 0, "reserved", 1, "plan_and_apply", "plan", 5 }, { 1, "idle", 0, NULL, NULL, 6 } };
    char *caps[] = { "slots" };
    proto_msg in = { .type = MSG_HEARTBEAT };
    in.u.heartbeat = (proto_heartbeat){ .plan_limit = 1, .current_tasks = tasks, .n_current_tasks = 2,
                                        .cpu_usage = 1.5, .status = "ok", .slots = slots, .n_slots = 2,
                                        .has_slots = true, .state = "ready", .agent_version = "v",
                                        .capabilities = caps, .n_capabilities = 1 };
    size_t len;
    char *text = proto_encode(&in, &len);
    assert_non_null(text);
    for (size_t n = 0; n < len; n++) {
        proto_msg m;
        char err[256] = "";
        int rc = decode_n(text, n, &m, err, sizeof err);
        assert_true(rc < 0);
        assert_true(err[0] != '\0');
        assert_null(m.type_name);
        proto_msg_free(&m);
    }
    static const unsigned char subst[] = { 0x00, '"', '{', ']', '9', '-', 0xff, 0xc3, ' ' };
    char *copy = malloc(len);
    assert_non_null(copy);
    for (size_t i = 0; i < len; i++) {
        for (size_t k = 0; k < sizeof subst; k++) {
            memcpy(copy, text, len);
            copy[i] = (char)subst[k];
            proto_msg m;
            char err[256] = "";
            int rc = decode_n(copy, len, &m, err, sizeof err);
            if (rc != PROTO_OK) {
                assert_true(err[0] != '\0');
                assert_int_equal(m.type, MSG_UNKNOWN);
                assert_null(m.type_name);
            }
            proto_msg_free(&m);
        }
    }
    free(copy);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(type_names_are_distinct),
        cmocka_unit_test(run_task_roundtrip),
        cmocka_unit_test(run_task_without_task_type_omits_it),
        cmocka_unit_test(task_ref_messages_roundtrip),
        cmocka_unit_test(refresh_credentials_roundtrip),
        cmocka_unit_test(drain_and_undrain_roundtrip),
        cmocka_unit_test(heartbeat_with_all_extensions_roundtrip),
        cmocka_unit_test(heartbeat_without_extensions_writes_upstream_fields_only),
        cmocka_unit_test(heartbeat_empty_lists_stay_lists),
        cmocka_unit_test(heartbeat_doubles_are_exact_and_never_nan),
        cmocka_unit_test(log_stream_roundtrip),
        cmocka_unit_test(encoder_replaces_invalid_utf8),
        cmocka_unit_test(task_failed_roundtrip_with_empty_error),
        cmocka_unit_test(credentials_refreshed_roundtrip),
        cmocka_unit_test(task_rejected_roundtrip),
        cmocka_unit_test(task_request_roundtrip),
        cmocka_unit_test(encode_refuses_unknown),
        cmocka_unit_test(encode_tolerates_null_strings),
        cmocka_unit_test(upstream_heartbeat_decodes),
        cmocka_unit_test(upstream_run_task_decodes),
        cmocka_unit_test(unknown_type_is_kept_by_name),
        cmocka_unit_test(unknown_fields_are_ignored),
        cmocka_unit_test(drain_payload_may_be_missing),
        cmocka_unit_test(free_is_safe_on_empty_and_twice),
        cmocka_unit_test(not_a_json_object_is_a_json_error),
        cmocka_unit_test(embedded_nul_is_refused),
        cmocka_unit_test(invalid_utf8_is_refused),
        cmocka_unit_test(frame_size_limit),
        cmocka_unit_test(deep_nesting_is_refused),
        cmocka_unit_test(envelope_errors),
        cmocka_unit_test(task_id_must_be_a_valid_id),
        cmocka_unit_test(required_fields_are_required),
        cmocka_unit_test(optional_fields_are_type_checked),
        cmocka_unit_test(minimal_payloads_decode),
        cmocka_unit_test(errors_do_not_echo_values),
        cmocka_unit_test(truncations_and_corruptions_never_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
