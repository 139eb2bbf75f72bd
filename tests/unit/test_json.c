/* test_json.c — the strict cJSON getters and json_parse_object (json.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "iac/json.h"

/* One document with a member of every JSON type and the interesting numbers. */
static const char doc_text[] =
    "{\"s\":\"str\",\"empty\":\"\",\"n\":42,\"zero\":0,\"negzero\":-0,\"neg\":-7,\"frac\":1.5,"
    "\"p53\":9007199254740992,\"p53plus\":9007199254740994,\"m53\":-9007199254740992,"
    "\"m53minus\":-9007199254740994,\"huge\":1e300,\"inf\":1e999,\"t\":true,\"f\":false,\"nul\":null,"
    "\"o\":{\"x\":1},\"a\":[1,2],\"secret\":\"hunter2-token\"}";

static int doc_setup(void **state)
{
    char err[128] = "";
    cJSON *doc = json_parse_object(doc_text, strlen(doc_text), err, sizeof err);
    if (!doc)
        return -1;
    *state = doc;
    return 0;
}

static int doc_teardown(void **state)
{
    cJSON_Delete(*state);
    return 0;
}

/* Runs every getter on key and returns the result; used to prove that one wrong-typed member fails each getter
 * that expects another type. */
typedef enum { G_STRING, G_U64, G_I64, G_DOUBLE, G_BOOL, G_OBJECT, G_ARRAY, G__COUNT } getter;

static int get_any(const cJSON *doc, getter g, const char *key, bool required, char *err, size_t errlen)
{
    const char *s;
    uint64_t u;
    int64_t i;
    double d;
    bool b;
    const cJSON *o;
    switch (g) {
    case G_STRING: return json_get_string(doc, key, required, &s, err, errlen);
    case G_U64: return json_get_u64(doc, key, required, &u, err, errlen);
    case G_I64: return json_get_i64(doc, key, required, &i, err, errlen);
    case G_DOUBLE: return json_get_double(doc, key, required, &d, err, errlen);
    case G_BOOL: return json_get_bool(doc, key, required, &b, err, errlen);
    case G_OBJECT: return json_get_object(doc, key, required, &o, err, errlen);
    case G_ARRAY: return json_get_array(doc, key, required, &o, err, errlen);
    default: return 99;
    }
}

/* The member of doc_text that has the type each getter accepts. */
static const char *const right_key[G__COUNT] = { "s", "n", "neg", "frac", "t", "o", "a" };
static const char *const type_of_key[G__COUNT] = { "string", "number", "number", "number", "boolean", "object",
                                                   "array" };
static const char *const expected_phrase[G__COUNT] = {
    "expected a string", "expected a whole number", "expected a whole number", "expected a number",
    "expected a boolean", "expected an object", "expected an array",
};

/* Every getter refuses every member of another JSON type, names the key, what it expected and what it got. */
static void each_getter_rejects_each_other_type(void **state)
{
    const cJSON *doc = *state;
    for (int g = 0; g < G__COUNT; g++) {
        for (int k = 0; k < G__COUNT; k++) {
            bool number_getter = g == G_U64 || g == G_I64 || g == G_DOUBLE;
            bool number_key = k == G_U64 || k == G_I64 || k == G_DOUBLE;
            if (k == g || (number_getter && number_key))
                continue;
            char err[128] = "";
            assert_int_equal(get_any(doc, (getter)g, right_key[k], false, err, sizeof err), -1);
            assert_non_null(strstr(err, right_key[k]));
            assert_non_null(strstr(err, expected_phrase[g]));
            char got[48];
            snprintf(got, sizeof got, "got %s", type_of_key[k]);
            assert_non_null(strstr(err, got));
        }
    }
}

/* Every getter accepts its own type and returns 0. */
static void each_getter_accepts_its_type(void **state)
{
    const cJSON *doc = *state;
    for (int g = 0; g < G__COUNT; g++) {
        char err[128] = "";
        const char *key = g == G_U64 ? "n" : g == G_I64 ? "neg" : right_key[g];
        assert_int_equal(get_any(doc, (getter)g, key, true, err, sizeof err), 0);
    }
}

/* Absent and null members: optional → 1 with *out untouched; required → -1 naming missing or null. */
static void absent_and_null_are_the_same_for_optional_and_errors_when_required(void **state)
{
    const cJSON *doc = *state;
    const char *keys[] = { "nope", "nul" };
    for (int g = 0; g < G__COUNT; g++) {
        for (size_t k = 0; k < 2; k++) {
            char err[128] = "";
            assert_int_equal(get_any(doc, (getter)g, keys[k], false, err, sizeof err), 1);
            assert_int_equal(get_any(doc, (getter)g, keys[k], true, err, sizeof err), -1);
            assert_non_null(strstr(err, keys[k]));
            assert_non_null(strstr(err, k == 0 ? "missing" : "null"));
        }
    }
    uint64_t u = 77;
    const char *s = "keep";
    char err[64];
    assert_int_equal(json_get_u64(doc, "nope", false, &u, err, sizeof err), 1);
    assert_int_equal(u, 77);
    assert_int_equal(json_get_string(doc, "nul", false, &s, err, sizeof err), 1);
    assert_string_equal(s, "keep");
}

/* Strings come back as the tree's own text, empty strings included. */
static void string_returns_the_value(void **state)
{
    const char *s = NULL;
    char err[64];
    assert_int_equal(json_get_string(*state, "s", true, &s, err, sizeof err), 0);
    assert_string_equal(s, "str");
    assert_int_equal(json_get_string(*state, "empty", true, &s, err, sizeof err), 0);
    assert_string_equal(s, "");
}

/* Keys are matched exactly: "S" is not "s". */
static void lookup_is_case_sensitive(void **state)
{
    const char *s;
    char err[64];
    assert_int_equal(json_get_string(*state, "S", false, &s, err, sizeof err), 1);
}

/* u64 takes whole numbers from 0 to 2^53 inclusive, -0 as 0, and refuses negatives, fractions, 2^53+2 and
 * overflowing numbers, with the value in the message. */
static void u64_range(void **state)
{
    const cJSON *doc = *state;
    static const struct { const char *key; int rc; uint64_t v; const char *msg; } cases[] = {
        { "n", 0, 42, NULL },
        { "zero", 0, 0, NULL },
        { "negzero", 0, 0, NULL },
        { "p53", 0, 9007199254740992ull, NULL },
        { "p53plus", -1, 0, "from 0 to 2^53, got 9007199254740994" },
        { "neg", -1, 0, "from 0 to 2^53, got -7" },
        { "frac", -1, 0, "expected a whole number, got 1.5" },
        { "huge", -1, 0, "got 1e+300" },
        { "inf", -1, 0, "expected a whole number, got Infinity" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t v = 12345;
        char err[128] = "";
        assert_int_equal(json_get_u64(doc, cases[i].key, true, &v, err, sizeof err), cases[i].rc);
        if (cases[i].rc == 0) {
            assert_int_equal(v, cases[i].v);
        } else {
            assert_int_equal(v, 12345);
            assert_non_null(strstr(err, cases[i].msg));
        }
    }
}

/* i64 takes whole numbers from -2^53 to 2^53 and refuses beyond either end and fractions. */
static void i64_range(void **state)
{
    const cJSON *doc = *state;
    static const struct { const char *key; int rc; int64_t v; } cases[] = {
        { "neg", 0, -7 },
        { "n", 0, 42 },
        { "m53", 0, -9007199254740992ll },
        { "p53", 0, 9007199254740992ll },
        { "m53minus", -1, 0 },
        { "p53plus", -1, 0 },
        { "frac", -1, 0 },
        { "inf", -1, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t v = 5;
        char err[128] = "";
        assert_int_equal(json_get_i64(doc, cases[i].key, true, &v, err, sizeof err), cases[i].rc);
        if (cases[i].rc == 0) {
            assert_int_equal(v, cases[i].v);
        } else {
            assert_int_equal(v, 5);
            assert_true(err[0] != '\0');
            assert_non_null(strstr(err, cases[i].key));
        }
    }
}

/* double takes any finite number, whole or not, and refuses one that overflowed to infinity. */
static void double_takes_finite_numbers(void **state)
{
    double d = 0;
    char err[128] = "";
    assert_int_equal(json_get_double(*state, "frac", true, &d, err, sizeof err), 0);
    assert_true(d == 1.5);
    assert_int_equal(json_get_double(*state, "n", true, &d, err, sizeof err), 0);
    assert_true(d == 42.0);
    assert_int_equal(json_get_double(*state, "huge", true, &d, err, sizeof err), 0);
    assert_true(d == 1e300);
    assert_int_equal(json_get_double(*state, "inf", true, &d, err, sizeof err), -1);
    assert_non_null(strstr(err, "inf: expected a finite number"));
}

/* bool reads true and false. */
static void bool_reads_both_values(void **state)
{
    bool b = false;
    char err[64];
    assert_int_equal(json_get_bool(*state, "t", true, &b, err, sizeof err), 0);
    assert_true(b);
    assert_int_equal(json_get_bool(*state, "f", true, &b, err, sizeof err), 0);
    assert_false(b);
}

/* Object and array getters point into the tree. */
static void object_and_array_point_into_the_tree(void **state)
{
    const cJSON *o = NULL, *a = NULL;
    char err[64];
    assert_int_equal(json_get_object(*state, "o", true, &o, err, sizeof err), 0);
    assert_ptr_equal(o, cJSON_GetObjectItemCaseSensitive(*state, "o"));
    assert_int_equal(json_get_array(*state, "a", true, &a, err, sizeof err), 0);
    assert_int_equal(cJSON_GetArraySize(a), 2);
    uint64_t x = 0;
    assert_int_equal(json_get_u64(o, "x", true, &x, err, sizeof err), 0);
    assert_int_equal(x, 1);
}

/* A NULL parent reads as an empty object; a parent that is not an object is an error. */
static void parent_null_is_empty_and_non_object_is_an_error(void **state)
{
    char err[128] = "";
    const char *s;
    assert_int_equal(json_get_string(NULL, "k", false, &s, err, sizeof err), 1);
    assert_int_equal(json_get_string(NULL, "k", true, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "k: required but missing"));
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(*state, "a");
    err[0] = '\0';
    assert_int_equal(json_get_string(a, "k", false, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "expected an object"));
}

/* A message never repeats a string value (it might be a token); it names the key and the type only. */
static void errors_never_echo_string_values(void **state)
{
    char err[256] = "";
    uint64_t u;
    assert_int_equal(json_get_u64(*state, "secret", true, &u, err, sizeof err), -1);
    assert_string_equal(err, "secret: expected a whole number, got string");
    assert_null(strstr(err, "hunter2"));
}

/* A NULL or zero-length error buffer is allowed and not written. */
static void error_buffer_may_be_absent(void **state)
{
    uint64_t u;
    char err[4] = "abc";
    assert_int_equal(json_get_u64(*state, "s", true, &u, NULL, 0), -1);
    assert_int_equal(json_get_u64(*state, "s", true, &u, err, 0), -1);
    assert_string_equal(err, "abc");
    /* and a short one is truncated, not overrun */
    assert_int_equal(json_get_u64(*state, "s", true, &u, err, sizeof err), -1);
    assert_int_equal(strlen(err), 3);
}

/* Parses exactly len bytes from a heap copy without a terminator, so ASan sees any read past the end. */
static cJSON *parse_exact(const char *text, size_t len, char *err, size_t errlen)
{
    char *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    memcpy(buf, text, len);
    cJSON *root = json_parse_object(buf, len, err, errlen);
    free(buf);
    return root;
}

/* Objects parse from an unterminated buffer; surrounding whitespace is fine; only len bytes are read. */
static void parse_object_accepts_objects(void **state)
{
    (void)state;
    char err[128] = "";
    static const char *ok[] = { "{}", " {\"a\":1} \n", "{\"a\":{\"b\":[1,2,{\"c\":null}]}}", "\t{}\r\n" };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        cJSON *root = parse_exact(ok[i], strlen(ok[i]), err, sizeof err);
        assert_non_null(root);
        assert_true(cJSON_IsObject(root));
        cJSON_Delete(root);
    }
    const char prefix[] = "{\"a\":1}garbage";
    cJSON *root = parse_exact(prefix, 7, err, sizeof err);
    assert_non_null(root);
    cJSON_Delete(root);
}

/* Other roots and broken text are refused with a message: arrays, scalars, garbage, truncation, trailing bytes,
 * NUL bytes, empty and blank input, nesting beyond the parser's limit. */
static void parse_object_refuses_everything_else(void **state)
{
    (void)state;
    static const struct { const char *text; size_t len; const char *msg; } bad[] = {
        { "[]", 2, "expected a JSON object, got array" },
        { "\"s\"", 3, "expected a JSON object, got string" },
        { "42", 2, "expected a JSON object, got number" },
        { "true", 4, "expected a JSON object, got boolean" },
        { "null", 4, "expected a JSON object, got null" },
        { "garbage", 7, "not valid JSON" },
        { "{\"a\":", 5, "not valid JSON" },
        { "{\"a\":\"unterminated", 18, "not valid JSON" },
        { "{\"a\":\"x\\", 8, "not valid JSON" },
        { "{} x", 4, "not valid JSON" },
        { "{}{}", 4, "not valid JSON" },
        { "{\"a\":1,}", 8, "not valid JSON" },
        { "{\"a\"\0:1}", 8, "NUL byte at offset 4" },
        { "{}\0", 3, "NUL byte at offset 2" },
        { "{\"a\":\"x\\u0000y\"}", 16, "\\u0000 in a string at offset 7" },
        { "{\"a\\u0000\":1}", 13, "\\u0000" },
        { "", 0, "empty input" },
        { "   ", 3, "not valid JSON" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[128] = "";
        assert_null(parse_exact(bad[i].text, bad[i].len, err, sizeof err));
        if (!strstr(err, bad[i].msg))
            print_error("%s: %s\n", bad[i].text, err);
        assert_non_null(strstr(err, bad[i].msg));
    }
    char err[128] = "";
    assert_null(json_parse_object(NULL, 0, err, sizeof err));
    assert_true(err[0] != '\0');
}

/* Escapes other than \u0000 decode as usual, and an escaped backslash before "u0000" is just text. */
static void parse_object_decodes_escapes(void **state)
{
    (void)state;
    const char text[] = "{\"lit\":\"x\\\\u0000y\",\"one\":\"\\u0001\",\"e\":\"\\u00e9\\n\"}";
    char err[128] = "";
    cJSON *root = parse_exact(text, sizeof text - 1, err, sizeof err);
    assert_non_null(root);
    const char *s = NULL;
    assert_int_equal(json_get_string(root, "lit", true, &s, err, sizeof err), 0);
    assert_string_equal(s, "x\\u0000y");
    assert_int_equal(json_get_string(root, "one", true, &s, err, sizeof err), 0);
    assert_string_equal(s, "\x01");
    assert_int_equal(json_get_string(root, "e", true, &s, err, sizeof err), 0);
    assert_string_equal(s, "\xc3\xa9\n");
    cJSON_Delete(root);
}

/* 100000 nested arrays inside an object are refused quickly, not a stack overflow. */
static void parse_object_refuses_deep_nesting(void **state)
{
    (void)state;
    size_t depth = 100000, len = depth + 6;
    char *text = malloc(len);
    assert_non_null(text);
    memcpy(text, "{\"a\":", 5);
    memset(text + 5, '[', depth);
    text[len - 1] = '}';
    char err[128] = "";
    assert_null(json_parse_object(text, len, err, sizeof err));
    assert_non_null(strstr(err, "not valid JSON"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(each_getter_rejects_each_other_type, doc_setup, doc_teardown),
        cmocka_unit_test_setup_teardown(each_getter_accepts_its_type, doc_setup, doc_teardown),
        cmocka_unit_test_setup_teardown(absent_and_null_are_the_same_for_optional_and_errors_when_required,
                                        doc_setup, doc_teardown),
        cmocka_unit_test_setup_teardown(string_returns_the_value, doc_setup, doc_teardown),
        cmocka_unit_test_setup_teardown(lookup_is_case_sensitive, doc_setup, doc_teardown),
        cmocka_unit_test_setup_teardown(u64_range, doc_setup, doc_teardown),
        cmocka_unit_test_setup_teardown(i64_range, doc_setup, doc_teardown),
        cmocka_unit_test_setup_teardown(double_takes_finite_numbers, doc_setup, doc_teardown),
        cmocka_unit_test_setup_teardown(bool_reads_both_values, doc_setup, doc_teardown),
        cmocka_unit_test_setup_teardown(object_and_array_point_into_the_tree, doc_setup, doc_teardown),
        cmocka_unit_test_setup_teardown(parent_null_is_empty_and_non_object_is_an_error, doc_setup, doc_teardown),
        cmocka_unit_test_setup_teardown(errors_never_echo_string_values, doc_setup, doc_teardown),
        cmocka_unit_test_setup_teardown(error_buffer_may_be_absent, doc_setup, doc_teardown),
        cmocka_unit_test(parse_object_accepts_objects),
        cmocka_unit_test(parse_object_refuses_everything_else),
        cmocka_unit_test(parse_object_decodes_escapes),
        cmocka_unit_test(parse_object_refuses_deep_nesting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
