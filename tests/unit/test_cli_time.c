/*
 * test_cli_time.c: telemctl's time arguments (src/cli/cli_time.c): RFC 3339 with fractions and
 * offsets, bare dates, Unix seconds, relative times, and a table of malformed arguments that
 * must be rejected rather than half-read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cli/cli_time.h"

#define NOW_US 1795860000000000LL /* 2026-11-28T10:00:00Z */

static int64_t parse_ok(const char *text)
{
    char err[256];
    int64_t us = 0;
    int rc = cli_time_parse(text, NOW_US, &us, err, sizeof(err));
    if (rc != 0)
        fail_msg("'%s' rejected: %s", text, err);
    return us;
}

static void test_rfc3339(void **state)
{
    assert_int_equal(parse_ok("2026-11-28T10:00:00Z"), NOW_US);
    assert_int_equal(parse_ok("2026-11-28t10:00:00z"), NOW_US);
    assert_int_equal(parse_ok("2026-11-28 10:00:00Z"), NOW_US);
    assert_int_equal(parse_ok("2026-11-28T10:00Z"), NOW_US);
    assert_int_equal(parse_ok("2026-11-28T10:00:00.25Z"), NOW_US + 250000);
    assert_int_equal(parse_ok("2026-11-28T10:00:00.123456789Z"), NOW_US + 123456);
    assert_int_equal(parse_ok("2026-11-28T11:30:00+01:30"), NOW_US);
    assert_int_equal(parse_ok("2026-11-28T08:00:00-02:00"), NOW_US);
    assert_int_equal(parse_ok("2026-11-28"), NOW_US - 10 * 3600 * 1000000LL);
    assert_int_equal(parse_ok("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(parse_ok("2024-02-29T00:00:00Z"), 1709164800000000LL);
}

static void test_unix_and_relative(void **state)
{
    assert_int_equal(parse_ok("1795860000"), NOW_US);
    assert_int_equal(parse_ok("1795860000.5"), NOW_US + 500000);
    assert_int_equal(parse_ok("0"), 0);
    assert_int_equal(parse_ok("now"), NOW_US);
    assert_int_equal(parse_ok("-90s"), NOW_US - 90 * 1000000LL);
    assert_int_equal(parse_ok("-15m"), NOW_US - 15 * 60 * 1000000LL);
    assert_int_equal(parse_ok("-1h"), NOW_US - 3600 * 1000000LL);
    assert_int_equal(parse_ok("-1.5h"), NOW_US - 5400 * 1000000LL);
    assert_int_equal(parse_ok("-7d"), NOW_US - 7 * 86400 * 1000000LL);
    assert_int_equal(parse_ok("-2w"), NOW_US - 14 * 86400 * 1000000LL);
}

static void test_rejects(void **state)
{
    static const char *const bad[] = {
        "",
        "yesterday",
        "2026-13-01",
        "2026-02-30",
        "2023-02-29",
        "2026-11-28T24:00:00Z",
        "2026-11-28T10:60:00Z",
        "2026-11-28T10:00:00",
        "2026-11-28T10:00:00Zjunk",
        "2026-11-28T10:00:00.Z",
        "2026-11-28T10:00:00+1:00",
        "2026-1-28",
        "-1",
        "-h",
        "-1y",
        "- 1h",
        "12abc",
        "1e3",
        "+5",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[256] = "";
        int64_t us;
        if (cli_time_parse(bad[i], NOW_US, &us, err, sizeof(err)) == 0)
            fail_msg("'%s' was accepted as %lld", bad[i], (long long)us);
        assert_non_null(strstr(err, "RFC 3339"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_unix_and_relative),
        cmocka_unit_test(test_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
