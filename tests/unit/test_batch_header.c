/*
 * test_batch_header.c: the Telem-Batch header parser: a table of valid and invalid values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ingest/batch_header.h"

struct valid_case {
    const char *text;
    const char *producer;
    uint64_t epoch;
    uint64_t n;
};

static void test_valid(void **state)
{
    (void)state;
    static const struct valid_case cases[] = {
        {"host1.risk:1732670000:1", "host1.risk", 1732670000, 1},
        {"a:0:1", "a", 0, 1},
        {"  p-1_x.y:42:7\t", "p-1_x.y", 42, 7},
        {"P:18446744073709551615:18446744073709551615", "P", UINT64_MAX, UINT64_MAX},
        {"0123456789012345678901234567890123456789012345678901234567890123:1:2",
         "0123456789012345678901234567890123456789012345678901234567890123", 1, 2},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct batch_tag tag;
        char err[160] = "";
        int rc = batch_header_parse(cases[i].text, strlen(cases[i].text), &tag, err, sizeof(err));
        if (rc != 0)
            fail_msg("'%s' refused: %s", cases[i].text, err);
        assert_string_equal(tag.producer, cases[i].producer);
        assert_true(tag.epoch == cases[i].epoch);
        assert_true(tag.n == cases[i].n);
    }
}

struct invalid_case {
    const char *text;
    const char *reason; /* a part of the error text */
};

static void test_invalid(void **state)
{
    (void)state;
    static const struct invalid_case cases[] = {
        {"", "empty"},
        {"   ", "empty"},
        {"producer", "missing ':'"},
        {"p:1", "missing second ':'"},
        {"p:1:2:3", "too many ':'"},
        {":1:2", "producer is empty"},
        {"p q:1:2", "producer may hold only"},
        {"p/q:1:2", "producer may hold only"},
        {"pé:1:2", "producer may hold only"},
        {"01234567890123456789012345678901234567890123456789012345678901234:1:2", "longer than 64"},
        {"p::2", "epoch"},
        {"p:x:2", "epoch"},
        {"p:-1:2", "epoch"},
        {"p:+1:2", "epoch"},
        {"p:18446744073709551616:2", "epoch"},
        {"p:1:", "n is not"},
        {"p:1:0", "n must be 1 or more"},
        {"p:1:1x", "n is not"},
        {"p:1: 2", "n is not"},
        {"p:1:99999999999999999999", "n is not"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct batch_tag tag;
        char err[160] = "";
        int rc = batch_header_parse(cases[i].text, strlen(cases[i].text), &tag, err, sizeof(err));
        if (rc == 0)
            fail_msg("'%s' accepted", cases[i].text);
        assert_int_equal(rc, -22);
        if (!strstr(err, cases[i].reason))
            fail_msg("'%s': error '%s' does not mention '%s'", cases[i].text, err, cases[i].reason);
        assert_non_null(strstr(err, "Telem-Batch"));
    }
}

static void test_length_not_nul(void **state)
{
    (void)state;
    /* The parser reads len bytes, not up to a NUL. */
    const char *text = "abc:5:6XYZ";
    struct batch_tag tag;
    char err[160];
    assert_int_equal(batch_header_parse(text, 7, &tag, err, sizeof(err)), 0);
    assert_string_equal(tag.producer, "abc");
    assert_true(tag.n == 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_length_not_nul),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
