/*
 * test_core.c: unit tests of src/core: CRC-32C vectors, settings tables, backoff bounds, lanes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <errno.h>
#include <string.h>

#include <cmocka.h>

#include "core/clock.h"
#include "core/conf.h"
#include "core/crc32c.h"
#include "core/percent.h"
#include "core/record.h"

static void test_crc32c_vectors(void **state)
{
    (void)state;
    /* RFC 3720 B.4 and the usual check value. */
    assert_int_equal(crc32c(0, "123456789", 9), 0xe3069283u);
    uint8_t zeros[32] = {0};
    assert_int_equal(crc32c(0, zeros, sizeof(zeros)), 0x8a9136aau);
    uint8_t ones[32];
    memset(ones, 0xff, sizeof(ones));
    assert_int_equal(crc32c(0, ones, sizeof(ones)), 0x62a8ab43u);
    /* Incremental equals one-shot. */
    const char *s = "the quick brown fox jumps over the lazy dog";
    uint32_t a = crc32c(0, s, strlen(s));
    uint32_t b = crc32c(crc32c(0, s, 10), s + 10, strlen(s) - 10);
    assert_int_equal(a, b);
}

struct sample_conf {
    char *name;
    int64_t count;
    bool on;
    double ratio;
    uint64_t size;
    int mode;
};

static const struct conf_entry sample_table[] = {
    {"name", CONF_STRING, "x", offsetof(struct sample_conf, name), "a name", 0, 0, NULL},
    {"count", CONF_INT, "5", offsetof(struct sample_conf, count), "a count", 1, 100, NULL},
    {"on", CONF_BOOL, "false", offsetof(struct sample_conf, on), "a switch", 0, 0, NULL},
    {"ratio", CONF_DOUBLE, "0.5", offsetof(struct sample_conf, ratio), "a ratio", 0, 1, NULL},
    {"size", CONF_BYTES, "64m", offsetof(struct sample_conf, size), "a size", 0, 0, NULL},
    {"mode", CONF_ENUM, "always", offsetof(struct sample_conf, mode), "a mode", 0, 0,
     "always|interval|never"},
    {NULL, 0, NULL, 0, NULL, 0, 0, NULL},
};

static void test_conf_defaults_and_set(void **state)
{
    (void)state;
    struct sample_conf c;
    memset(&c, 0, sizeof(c));
    char err[256];
    assert_int_equal(conf_defaults(sample_table, &c), 0);
    assert_string_equal(c.name, "x");
    assert_int_equal(c.count, 5);
    assert_false(c.on);
    assert_true(c.ratio == 0.5);
    assert_int_equal(c.size, 64u << 20);
    assert_int_equal(c.mode, 0);

    assert_int_equal(conf_set(sample_table, &c, "name", "telem", err, sizeof(err)), 0);
    assert_string_equal(c.name, "telem");
    assert_int_equal(conf_set(sample_table, &c, "count", "100", err, sizeof(err)), 0);
    assert_int_equal(c.count, 100);
    assert_int_equal(conf_set(sample_table, &c, "on", "yes", err, sizeof(err)), 0);
    assert_true(c.on);
    assert_int_equal(conf_set(sample_table, &c, "size", "2g", err, sizeof(err)), 0);
    assert_int_equal(c.size, 2ull << 30);
    assert_int_equal(conf_set(sample_table, &c, "mode", "never", err, sizeof(err)), 0);
    assert_int_equal(c.mode, 2);
    conf_free(sample_table, &c);
    assert_null(c.name);
}

static void test_conf_errors(void **state)
{
    (void)state;
    struct sample_conf c;
    memset(&c, 0, sizeof(c));
    char err[256];
    assert_int_equal(conf_defaults(sample_table, &c), 0);
    assert_int_equal(conf_set(sample_table, &c, "nope", "1", err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "unknown setting"));
    assert_int_equal(conf_set(sample_table, &c, "count", "101", err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "from 1 to 100"));
    assert_int_equal(c.count, 5);
    assert_int_equal(conf_set(sample_table, &c, "count", "3x", err, sizeof(err)), -EINVAL);
    assert_int_equal(conf_set(sample_table, &c, "on", "maybe", err, sizeof(err)), -EINVAL);
    assert_int_equal(conf_set(sample_table, &c, "ratio", "nan", err, sizeof(err)), -EINVAL);
    assert_int_equal(conf_set(sample_table, &c, "size", "-1", err, sizeof(err)), -EINVAL);
    assert_int_equal(conf_set(sample_table, &c, "size", "5t", err, sizeof(err)), -EINVAL);
    assert_int_equal(conf_set(sample_table, &c, "mode", "sometimes", err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "always|interval|never"));
    conf_free(sample_table, &c);
}

static void test_backoff_bounds(void **state)
{
    (void)state;
    for (unsigned attempt = 1; attempt < 40; attempt++) {
        for (int i = 0; i < 50; i++) {
            unsigned d = clock_backoff_ms(attempt, 100, 10000);
            uint64_t full = 100;
            for (unsigned k = 1; k < attempt && full < 10000; k++)
                full *= 2;
            if (full > 10000)
                full = 10000;
            assert_true(d >= full / 2);
            assert_true(d <= full);
        }
    }
}

static void test_record_lane_stable(void **state)
{
    (void)state;
    struct record r;
    memset(&r, 0, sizeof(r));
    unsigned seen[4] = {0};
    for (int i = 0; i < 400; i++) {
        r.profile_len = (uint8_t)snprintf(r.profile, sizeof(r.profile), "profile-%d", i);
        unsigned lane = record_lane(&r, 4);
        assert_true(lane < 4);
        assert_int_equal(lane, record_lane(&r, 4));
        assert_int_equal(record_lane(&r, 1), 0);
        seen[lane]++;
    }
    for (int i = 0; i < 4; i++)
        assert_true(seen[i] > 50);
}

static void test_percent_decode(void **state)
{
    (void)state;
    char out[16];
    assert_int_equal(percent_decode("a%20b+c", 7, false, out, sizeof(out)), 5);
    assert_string_equal(out, "a b+c");
    assert_int_equal(percent_decode("a%20b+c", 7, true, out, sizeof(out)), 5);
    assert_string_equal(out, "a b c");
    assert_int_equal(percent_decode("%2F%2f", 6, false, out, sizeof(out)), 2);
    assert_string_equal(out, "//");
    assert_int_equal(percent_decode("%00", 3, false, out, sizeof(out)), -EINVAL);
    assert_int_equal(percent_decode("%4", 2, false, out, sizeof(out)), -EINVAL);
    assert_int_equal(percent_decode("%zz", 3, false, out, sizeof(out)), -EINVAL);
    assert_int_equal(percent_decode("0123456789abcdef", 16, false, out, sizeof(out)),
                     -ENAMETOOLONG);
    assert_int_equal(percent_decode("", 0, false, out, sizeof(out)), 0);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_vectors),     cmocka_unit_test(test_conf_defaults_and_set),
        cmocka_unit_test(test_conf_errors),        cmocka_unit_test(test_backoff_bounds),
        cmocka_unit_test(test_record_lane_stable), cmocka_unit_test(test_percent_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
