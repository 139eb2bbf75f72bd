/* test_jsonw.c — JSON text written the way Go's encoding/json writes it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "iac/jsonw.h"

static void check(const char *in, int flags, const char *want)
{
    cJSON *v = cJSON_Parse(in);
    assert_non_null(v);
    strbuf b = STRBUF_INIT;
    jsonw_write(&b, v, flags);
    assert_false(b.oom);
    assert_string_equal(b.data, want);
    strbuf_free(&b);
    cJSON_Delete(v);
}

/* MarshalIndent("", "  "): keys sorted at every level, two spaces, ": " after keys, empty containers inline. */
static void indents_and_sorts_like_marshal_indent(void **state)
{
    (void)state;
    check("{\"b\":1,\"a\":{\"z\":[1,2],\"y\":{}},\"c\":[]}", JSONW_GO,
          "{\n  \"a\": {\n    \"y\": {},\n    \"z\": [\n      1,\n      2\n    ]\n  },\n  \"b\": 1,\n  \"c\": []\n}");
    check("{\"b\":1,\"a\":2}", 0, "{\"b\":1,\"a\":2}");
    check("{\"b\":1,\"a\":2}", JSONW_SORT_KEYS, "{\"a\":2,\"b\":1}");
}

/* Go escapes < > & and U+2028/2029 by default; control characters as \u00XX or their short forms. */
static void escapes_like_go(void **state)
{
    (void)state;
    check("[\"<a href=\\\"x\\\">&</a>\"]", JSONW_HTML_ESCAPE, "[\"\\u003ca href=\\\"x\\\"\\u003e\\u0026\\u003c/a\\u003e\"]");
    check("[\"line\\u2028sep\\n\\u0001\"]", 0, "[\"line\\u2028sep\\n\\u0001\"]");
    check("[\"<>\"]", 0, "[\"<>\"]");
}

/* Integral numbers have no fraction; others the shortest text that reads back the same; booleans and null. */
static void numbers_and_literals(void **state)
{
    (void)state;
    check("[0,-3,1e3,0.1,1.5,123456789012,true,false,null]", 0, "[0,-3,1000,0.1,1.5,123456789012,true,false,null]");
    /* Go switches to an exponent below 1e-6 and from 1e21, without leading zeros in it. */
    check("[0.00001,0.000001,1e-7,-2.5e-9,1e21,1.5e300,123456.789]", 0,
          "[0.00001,0.000001,1e-7,-2.5e-9,1e+21,1.5e+300,123456.789]");
}

/* Invalid UTF-8 bytes become U+FFFD escapes, as Go writes them; valid multi-byte text passes through. */
static void invalid_utf8_is_replaced(void **state)
{
    (void)state;
    cJSON *v = cJSON_CreateString("a\xff\xc3\xa9\xed\xa0\x80z");
    strbuf b = STRBUF_INIT;
    jsonw_write(&b, v, 0);
    assert_string_equal(b.data, "\"a\\ufffd\xc3\xa9\\ufffd\\ufffd\\ufffdz\"");
    strbuf_free(&b);
    cJSON_Delete(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(indents_and_sorts_like_marshal_indent),
        cmocka_unit_test(escapes_like_go),
        cmocka_unit_test(numbers_and_literals),
        cmocka_unit_test(invalid_utf8_is_replaced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
