/* test_strbuf.c — the growable string: growth, formatting, JSON escaping, ownership, and the oom flag. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "iac/strbuf.h"

/* Many small appends keep every byte, in order, and the buffer NUL-terminated after each one. */
static void appends_grow_and_keep_bytes_in_order(void **state)
{
    (void)state;
    strbuf b = STRBUF_INIT;
    for (int i = 0; i < 1000; i++) {
        strbuf_putc(&b, (char)('a' + i % 26));
        assert_int_equal(b.len, (size_t)i + 1);
        assert_int_equal(b.data[b.len], '\0');
    }
    for (int i = 0; i < 1000; i++)
        assert_int_equal(b.data[i], 'a' + i % 26);
    strbuf_append(&b, "xyz", 0); /* an empty append changes nothing */
    assert_int_equal(b.len, 1000);
    assert_false(b.oom);
    strbuf_free(&b);
}

/* puts, append (with embedded NUL) and printf concatenate. */
static void puts_append_and_printf_concatenate(void **state)
{
    (void)state;
    strbuf b = STRBUF_INIT;
    strbuf_puts(&b, "n=");
    strbuf_printf(&b, "%d,%s", 42, "x");
    strbuf_append(&b, "a\0b", 3);
    assert_int_equal(b.len, 9);
    assert_memory_equal(b.data, "n=42,xa\0b", 10);
    strbuf_free(&b);
}

/* A printf longer than the current capacity is written whole. */
static void printf_longer_than_capacity_is_whole(void **state)
{
    (void)state;
    strbuf b = STRBUF_INIT;
    char big[5000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    strbuf_printf(&b, "<%s>", big);
    assert_int_equal(b.len, sizeof big + 1);
    assert_int_equal(b.data[0], '<');
    assert_int_equal(b.data[b.len - 1], '>');
    strbuf_free(&b);
}

/* JSON escaping: quotes, backslashes and every control byte are escaped; other bytes (UTF-8 too) pass through. */
static void json_escape_escapes_quotes_backslashes_and_controls(void **state)
{
    (void)state;
    strbuf b = STRBUF_INIT;
    const char in[] = "a\"b\\c\n\r\t\x01\x1f\x7f \xc3\xa9";
    strbuf_json_escape(&b, in, sizeof in - 1);
    assert_string_equal(b.data, "a\\\"b\\\\c\\n\\r\\t\\u0001\\u001f\x7f \xc3\xa9");
    strbuf_reset(&b);
    strbuf_json_escape(&b, "x\0y", 3); /* the length counts, not the NUL */
    assert_string_equal(b.data, "x\\u0000y");
    strbuf_free(&b);
}

/* reset empties but keeps the allocation; detach hands the bytes over and leaves the buffer empty and reusable. */
static void reset_keeps_allocation_and_detach_transfers_ownership(void **state)
{
    (void)state;
    strbuf b = STRBUF_INIT;
    strbuf_puts(&b, "hello");
    char *before = b.data;
    size_t cap = b.cap;
    strbuf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_ptr_equal(b.data, before);
    assert_int_equal(b.cap, cap);
    assert_string_equal(b.data, "");

    strbuf_puts(&b, "world");
    size_t len = 0;
    char *s = strbuf_detach(&b, &len);
    assert_string_equal(s, "world");
    assert_int_equal(len, 5);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    free(s);

    s = strbuf_detach(&b, &len); /* an empty buffer detaches as "" */
    assert_non_null(s);
    assert_string_equal(s, "");
    assert_int_equal(len, 0);
    free(s);
    strbuf_free(&b);
}

/* A request too large to allocate marks the buffer oom, keeps what it had, ignores later appends, and detach
 * reports the failure with NULL; reset makes it usable again. */
static void impossible_growth_marks_oom_and_detach_returns_null(void **state)
{
    (void)state;
    strbuf b = STRBUF_INIT;
    strbuf_puts(&b, "keep");
    strbuf_append(&b, "x", (size_t)-1 / 2);
    assert_true(b.oom);
    assert_int_equal(b.len, 4);
    strbuf_puts(&b, "more");
    assert_int_equal(b.len, 4);
    strbuf_reset(&b);
    assert_false(b.oom);
    strbuf_puts(&b, "ok");
    assert_string_equal(b.data, "ok");

    strbuf_append(&b, "x", (size_t)-1 / 2);
    size_t len = 99;
    assert_null(strbuf_detach(&b, &len));
    assert_int_equal(len, 0);
    assert_false(b.oom);
    strbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(appends_grow_and_keep_bytes_in_order),
        cmocka_unit_test(puts_append_and_printf_concatenate),
        cmocka_unit_test(printf_longer_than_capacity_is_whole),
        cmocka_unit_test(json_escape_escapes_quotes_backslashes_and_controls),
        cmocka_unit_test(reset_keeps_allocation_and_detach_transfers_ownership),
        cmocka_unit_test(impossible_growth_marks_oom_and_detach_returns_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
