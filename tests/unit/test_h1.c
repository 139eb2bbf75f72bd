/* test_h1.c — the URL rules of h1 (the exchange itself is tested through httpc in test_httpc.c, against scripted
 * servers): which URLs it takes apart and how, and how a Location header resolves against the request's URL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "iac/h1.h"

/* Usable URLs give scheme, host (brackets off), port (default by scheme) and target (path and query, no fragment). */
static void urls_are_taken_apart(void **state)
{
    (void)state;
    static const struct {
        const char *url, *host, *target;
        int https, port, port_given;
    } ok[] = {
        { "http://127.0.0.1:8080/api/agent?x=1#frag", "127.0.0.1", "/api/agent?x=1", 0, 8080, 1 },
        { "https://plane.example.com/v1", "plane.example.com", "/v1", 1, 443, 0 },
        { "HTTP://Host", "Host", "", 0, 80, 0 },
        { "http://[::1]:9/p", "::1", "/p", 0, 9, 1 },
        { "http://h?q=1", "h", "?q=1", 0, 80, 0 },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        h1_url u;
        assert_int_equal(h1_url_parse(ok[i].url, &u), 0);
        assert_string_equal(u.host, ok[i].host);
        assert_int_equal(u.https, ok[i].https);
        assert_int_equal(u.port, ok[i].port);
        assert_int_equal(u.port_given, ok[i].port_given);
        assert_int_equal(u.target_len, strlen(ok[i].target));
        assert_memory_equal(u.target, ok[i].target, u.target_len);
    }
}

/* Other schemes, user info, empty hosts, bad ports and blanks or control characters are refused. */
static void unusable_urls_are_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "ftp://h/x", "h/x", "http://", "http://:80/", "http://user:pw@h/", "http://h:0/", "http://h:65536/",
        "http://h:8x/", "http://h:/", "http://[::1/", "http://h/a b", "http://h/\r\nX: y", NULL,
    };
    h1_url u;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(h1_url_parse(bad[i], &u), -1);
}

/* Location resolves as browsers and curl do: absolute, scheme-relative, absolute-path, relative to the directory. */
static void locations_resolve_against_the_request(void **state)
{
    (void)state;
    static const struct {
        const char *base, *loc, *want;
    } cases[] = {
        { "http://a:1/x/y?q", "https://b/z", "https://b/z" },
        { "https://a/x", "//cdn.example/f.zip", "https://cdn.example/f.zip" },
        { "http://a:1/x/y?q", "/root", "http://a:1/root" },
        { "http://a:1/x/y?q", "z?n=2", "http://a:1/x/z?n=2" },
        { "http://a:1", "z", "http://a:1/z" },
        { "http://a:1?k=/v", "z", "http://a:1/z" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = h1_url_resolve(cases[i].base, cases[i].loc);
        assert_non_null(got);
        assert_string_equal(got, cases[i].want);
        free(got);
    }
    assert_null(h1_url_resolve("not a url", "/x"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(urls_are_taken_apart),
        cmocka_unit_test(unusable_urls_are_refused),
        cmocka_unit_test(locations_resolve_against_the_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
