/*
 * test_redis_apply.c: unit tests of the pure parts of src/sink/redis/redis_apply.c: the shortest
 * round-trip formatting of doubles the live state relies on for exact totals, and the checks
 * that keep records the script cannot take away from Redis.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sink/redis/redis_apply.h"

static void expect_text(double v, const char *want)
{
    char buf[32];
    int len = redis_apply_format_double(buf, v);
    assert_int_equal(len, (int)strlen(buf));
    assert_string_equal(buf, want);
}

static void test_format_short_forms(void **state)
{
    (void)state;
    expect_text(101.25, "101.25");
    expect_text(0.1, "0.1");
    expect_text(-2.5, "-2.5");
    expect_text(0, "0");
    expect_text(1e20, "1e+20");
    expect_text(42010.25, "42010.25");
    /* 0.1 + 0.2 needs all 17 digits to read back as itself. */
    expect_text(0.1 + 0.2, "0.30000000000000004");
}

static void test_format_round_trips(void **state)
{
    (void)state;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    char buf[32];
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double v;
        if (i % 2) {
            uint64_t bits = x;
            memcpy(&v, &bits, sizeof(v));
            if (!isfinite(v))
                continue;
        } else {
            v = (double)(int64_t)(x >> 20) / (double)(1 + (x & 0xffff));
        }
        redis_apply_format_double(buf, v);
        double back = strtod(buf, NULL);
        if (memcmp(&back, &v, sizeof(v)) != 0 && !(v == 0 && back == 0))
            fail_msg("%.17g printed as %s reads back as %.17g", v, buf, back);
    }
}

static struct record good_trade(void)
{
    struct record r;
    memset(&r, 0, sizeof(r));
    r.seq = 1;
    r.kind = RECORD_TRADE;
    r.profile_len = 1;
    r.profile[0] = 'p';
    r.present = REC_HAS_PNL | REC_HAS_FEES;
    r.pnl = 1.5;
    return r;
}

static void test_check_record(void **state)
{
    (void)state;
    char err[128];
    struct record r = good_trade();
    assert_int_equal(redis_apply_check_record(&r, err, sizeof(err)), 0);

    r = good_trade();
    r.pnl = NAN;
    assert_int_equal(redis_apply_check_record(&r, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "not finite"));

    r = good_trade();
    r.qty = INFINITY; /* absent fields are not looked at */
    assert_int_equal(redis_apply_check_record(&r, err, sizeof(err)), 0);
    r.present |= REC_HAS_QTY;
    assert_int_equal(redis_apply_check_record(&r, err, sizeof(err)), -EINVAL);

    r = good_trade();
    r.profile_len = 0;
    assert_int_equal(redis_apply_check_record(&r, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "profile"));

    r = good_trade();
    r.seq = REDIS_APPLY_SEQ_MAX + 1;
    assert_int_equal(redis_apply_check_record(&r, err, sizeof(err)), -EINVAL);
    r.seq = REDIS_APPLY_SEQ_MAX;
    assert_int_equal(redis_apply_check_record(&r, err, sizeof(err)), 0);
    r.seq = 0;
    assert_int_equal(redis_apply_check_record(&r, err, sizeof(err)), -EINVAL);

    r = good_trade();
    r.kind = RECORD_METRIC;
    r.value = 3;
    assert_int_equal(redis_apply_check_record(&r, err, sizeof(err)), -EINVAL); /* no name */
    r.name_len = 1;
    r.name[0] = 'm';
    assert_int_equal(redis_apply_check_record(&r, err, sizeof(err)), 0);
    r.value = -INFINITY;
    assert_int_equal(redis_apply_check_record(&r, err, sizeof(err)), -EINVAL);

    r = good_trade();
    r.kind = 9;
    assert_int_equal(redis_apply_check_record(&r, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "kind"));
}

static void test_script_is_embedded(void **state)
{
    (void)state;
    assert_non_null(strstr(redis_apply_script, "apply.lua"));
    assert_non_null(strstr(redis_apply_script, "redis.call('SET', KEYS[1], int(new_cursor))"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_short_forms),
        cmocka_unit_test(test_format_round_trips),
        cmocka_unit_test(test_check_record),
        cmocka_unit_test(test_script_is_embedded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
