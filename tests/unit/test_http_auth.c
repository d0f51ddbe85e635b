/*
 * test_http_auth.c: the token check of the HTTP endpoints (Token, Bearer, Basic, p=) and the
 * query-string reader the write endpoints use.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ingest/http_auth.h"
#include "ingest/http_params.h"

static void test_no_token(void **state)
{
    (void)state;
    assert_true(http_auth_allows(NULL, NULL, NULL));
    assert_true(http_auth_allows("", "Token whatever", NULL));
}

static void test_token_forms(void **state)
{
    (void)state;
    const char *t = "s3cret-Token";
    assert_true(http_auth_allows(t, "Token s3cret-Token", NULL));
    assert_true(http_auth_allows(t, "token   s3cret-Token  ", NULL));
    assert_true(http_auth_allows(t, "Bearer s3cret-Token", NULL));
    assert_true(http_auth_allows(t, "BEARER\ts3cret-Token", NULL));
    /* "user:s3cret-Token" in base64. */
    assert_true(http_auth_allows(t, "Basic dXNlcjpzM2NyZXQtVG9rZW4=", NULL));
    assert_true(http_auth_allows(t, NULL, "s3cret-Token"));

    assert_false(http_auth_allows(t, NULL, NULL));
    assert_false(http_auth_allows(t, "Token s3cret-Toke", NULL));
    assert_false(http_auth_allows(t, "Token s3cret-Token2", NULL));
    assert_false(http_auth_allows(t, "Token ", NULL));
    assert_false(http_auth_allows(t, "Tokens3cret-Token", NULL));
    assert_false(http_auth_allows(t, "s3cret-Token", NULL));
    assert_false(http_auth_allows(t, "Basic dXNlcjp3cm9uZw==", NULL)); /* user:wrong */
    assert_false(http_auth_allows(t, "Basic !!!", NULL));
    assert_false(http_auth_allows(t, "Basic dXNlcg==", NULL)); /* "user", no colon */
    assert_false(http_auth_allows(t, NULL, "wrong"));
    assert_false(http_auth_allows(t, NULL, ""));
    /* A wrong header does not fall back to p=. */
    assert_false(http_auth_allows(t, "Token wrong", "s3cret-Token"));
}

static void test_token_equal(void **state)
{
    (void)state;
    assert_true(http_token_equal("abc", 3, "abc", 3));
    assert_false(http_token_equal("abd", 3, "abc", 3));
    assert_false(http_token_equal("ab", 2, "abc", 3));
    assert_false(http_token_equal("abcd", 4, "abc", 3));
    assert_false(http_token_equal("abc\0", 4, "abc", 3));
}

static void test_query(void **state)
{
    (void)state;
    char v[32];
    assert_int_equal(http_query_get("precision=ms&db=x", "precision", v, sizeof(v)), 2);
    assert_string_equal(v, "ms");
    assert_int_equal(http_query_get("precision=ms&db=x", "db", v, sizeof(v)), 1);
    assert_string_equal(v, "x");
    assert_int_equal(http_query_get("precision=ms&db=x", "org", v, sizeof(v)), -2 /* ENOENT */);
    assert_int_equal(http_query_get(NULL, "db", v, sizeof(v)), -2);
    assert_int_equal(http_query_get("db", "db", v, sizeof(v)), 0);
    assert_string_equal(v, "");
    assert_int_equal(http_query_get("dbx=1&db=2", "db", v, sizeof(v)), 1);
    assert_string_equal(v, "2");
    assert_int_equal(http_query_get("q=CREATE+DATABASE%20%22x%22", "q", v, sizeof(v)), 19);
    assert_string_equal(v, "CREATE DATABASE \"x\"");
    assert_int_equal(http_query_get("p=%zz", "p", v, sizeof(v)), -22);
    assert_int_equal(http_query_get("p=%4", "p", v, sizeof(v)), -22);
    assert_int_equal(http_query_get("p=a%00b", "p", v, sizeof(v)), -22);
    assert_int_equal(http_query_get("p=0123456789", "p", v, 8), -36 /* ENAMETOOLONG */);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_token),
        cmocka_unit_test(test_token_forms),
        cmocka_unit_test(test_token_equal),
        cmocka_unit_test(test_query),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
