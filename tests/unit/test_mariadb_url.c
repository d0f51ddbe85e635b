/*
 * test_mariadb_url.c: unit tests of the MariaDB sink's pure parts: parsing mariadb:// URLs
 * (TCP, IPv6, unix socket, percent-encoding, every refusal including a password in the URL),
 * and the conversion of nanosecond times to DATETIME(6) and back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <errno.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "sink/mariadb/mariadb_time.h"
#include "sink/mariadb/mariadb_url.h"

static void test_tcp_url(void **state)
{
    (void)state;
    struct mariadb_url u;
    char err[256];
    assert_int_equal(
        mariadb_url_parse("mariadb://telem@db.example.com:3307/trading", &u, err, sizeof(err)), 0);
    assert_string_equal(u.user, "telem");
    assert_string_equal(u.host, "db.example.com");
    assert_int_equal(u.port, 3307);
    assert_string_equal(u.db, "trading");
    assert_string_equal(u.socket, "");

    assert_int_equal(mariadb_url_parse("MariaDB://u@10.0.0.1/d", &u, err, sizeof(err)), 0);
    assert_string_equal(u.host, "10.0.0.1");
    assert_int_equal(u.port, MARIADB_URL_PORT);

    assert_int_equal(mariadb_url_parse("mariadb://u@[::1]:3310/d", &u, err, sizeof(err)), 0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 3310);
    assert_int_equal(mariadb_url_parse("mariadb://u@[fe80::1]/d", &u, err, sizeof(err)), 0);
    assert_string_equal(u.host, "fe80::1");
    assert_int_equal(u.port, MARIADB_URL_PORT);
}

static void test_socket_url(void **state)
{
    (void)state;
    struct mariadb_url u;
    char err[256];
    assert_int_equal(mariadb_url_parse("mariadb://telem@localhost/telem?socket=/run/mysqld/"
                                       "mysqld.sock",
                                       &u, err, sizeof(err)),
                     0);
    assert_string_equal(u.host, "localhost");
    assert_string_equal(u.socket, "/run/mysqld/mysqld.sock");
    assert_string_equal(u.db, "telem");

    assert_int_equal(mariadb_url_parse("mariadb://telem@/telem?socket=%2Ftmp%2Fa%20b.sock", &u, err,
                                       sizeof(err)),
                     0);
    assert_string_equal(u.host, "");
    assert_string_equal(u.socket, "/tmp/a b.sock");

    assert_int_equal(
        mariadb_url_parse("mariadb://u@db.example.com/d?socket=/x.sock", &u, err, sizeof(err)),
        -EINVAL);
    assert_non_null(strstr(err, "localhost"));
    assert_int_equal(
        mariadb_url_parse("mariadb://u@localhost/d?socket=relative.sock", &u, err, sizeof(err)),
        -EINVAL);
}

static void test_percent_decoding(void **state)
{
    (void)state;
    struct mariadb_url u;
    char err[256];
    assert_int_equal(mariadb_url_parse("mariadb://ops%40desk@h/my%2Ddb", &u, err, sizeof(err)), 0);
    assert_string_equal(u.user, "ops@desk");
    assert_string_equal(u.db, "my-db");
    /* An unencoded '@' in the user: the last one ends it. */
    assert_int_equal(mariadb_url_parse("mariadb://a@b@h/d", &u, err, sizeof(err)), 0);
    assert_string_equal(u.user, "a@b");
    assert_string_equal(u.host, "h");
    assert_int_equal(mariadb_url_parse("mariadb://u%4@h/d", &u, err, sizeof(err)), -EINVAL);
    assert_int_equal(mariadb_url_parse("mariadb://u%zz@h/d", &u, err, sizeof(err)), -EINVAL);
    assert_int_equal(mariadb_url_parse("mariadb://u%00x@h/d", &u, err, sizeof(err)), -EINVAL);
    assert_int_equal(mariadb_url_parse("mariadb://u@h/d%", &u, err, sizeof(err)), -EINVAL);
}

static void test_password_refused(void **state)
{
    (void)state;
    struct mariadb_url u;
    char err[256];
    assert_int_equal(mariadb_url_parse("mariadb://telem:hunter2@h/d", &u, err, sizeof(err)),
                     -EINVAL);
    assert_null(strstr(err, "hunter2"));
    assert_non_null(strstr(err, "password"));
    assert_non_null(strstr(err, "TELEM_<SINKNAME>_PASSWORD"));
}

static void test_bad_urls(void **state)
{
    (void)state;
    struct mariadb_url u;
    char err[256];
    const char *bad[] = {
        NULL,
        "",
        "mysql://u@h/d",
        "mariadb:/u@h/d",
        "mariadb://h/d",           /* no user */
        "mariadb://@h/d",          /* empty user */
        "mariadb://u@h",           /* no database */
        "mariadb://u@h/",          /* empty database */
        "mariadb://u@h?socket=/x", /* no database */
        "mariadb://u@h/a/b",       /* slash in the database */
        "mariadb://u@h:0/d",
        "mariadb://u@h:65536/d",
        "mariadb://u@h:33o6/d",
        "mariadb://u@h:/d",
        "mariadb://u@/d",      /* neither host nor socket */
        "mariadb://u@:3306/d", /* port without a host */
        "mariadb://u@[::1/d",
        "mariadb://u@[]/d",
        "mariadb://u@[::1]x/d",
        "mariadb://u@h/d?ssl=1", /* settings are not URL parameters */
        "mariadb://u@h/d#frag",
        "mariadb://u@h%41/d",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (mariadb_url_parse(bad[i], &u, err, sizeof(err)) != -EINVAL)
            fail_msg("accepted: %s", bad[i] ? bad[i] : "(null)");
        assert_true(strlen(err) > 0);
    }
    assert_int_equal(mariadb_url_parse("mariadb://u@h/d?ssl=1", &u, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "'ssl'"));
}

static void test_lengths(void **state)
{
    (void)state;
    struct mariadb_url u;
    char err[256], url[2048], db[80];
    memset(db, 'd', 64);
    db[64] = '\0';
    snprintf(url, sizeof(url), "mariadb://u@h/%s", db);
    assert_int_equal(mariadb_url_parse(url, &u, err, sizeof(err)), 0);
    assert_int_equal(strlen(u.db), 64);
    snprintf(url, sizeof(url), "mariadb://u@h/%sd", db);
    assert_int_equal(mariadb_url_parse(url, &u, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "longer"));
    char host[300];
    memset(host, 'h', 256);
    host[256] = '\0';
    snprintf(url, sizeof(url), "mariadb://u@%s/d", host);
    assert_int_equal(mariadb_url_parse(url, &u, err, sizeof(err)), -EINVAL);
}

/* ---- Times ---- */

static void check_time(int64_t ns, const char *want)
{
    MYSQL_TIME t;
    char text[32];
    assert_int_equal(mariadb_time_from_us(mariadb_time_us(ns), &t), 0);
    mariadb_time_format(&t, text);
    assert_string_equal(text, want);
    assert_int_equal(mariadb_time_to_us(&t), mariadb_time_us(ns));
}

static void test_time_known_values(void **state)
{
    (void)state;
    check_time(0, "1970-01-01 00:00:00.000000");
    check_time(999, "1970-01-01 00:00:00.000000");
    check_time(1000, "1970-01-01 00:00:00.000001");
    check_time(-1, "1969-12-31 23:59:59.999999");
    check_time(-1000, "1969-12-31 23:59:59.999999");
    check_time(-1001, "1969-12-31 23:59:59.999998");
    check_time(1700000000123456789LL, "2023-11-14 22:13:20.123456");
    check_time(951782400LL * 1000000000, "2000-02-29 00:00:00.000000");  /* leap day */
    check_time(4107542399LL * 1000000000, "2100-02-28 23:59:59.000000"); /* not a leap year */
    check_time(INT64_MAX, "2262-04-11 23:47:16.854775");
    check_time(INT64_MIN, "1677-09-21 00:12:43.145224");
}

static void test_time_against_gmtime(void **state)
{
    (void)state;
    /* Every few hours over five centuries, against the C library. */
    for (int64_t s = -6000000000LL; s < 9000000000LL; s += 12345 * 3 + 7) {
        MYSQL_TIME t;
        assert_int_equal(mariadb_time_from_us(s * 1000000 + 17, &t), 0);
        time_t tt = (time_t)s;
        struct tm tm;
        gmtime_r(&tt, &tm);
        if ((int)t.year != tm.tm_year + 1900 || (int)t.month != tm.tm_mon + 1 ||
            (int)t.day != tm.tm_mday || (int)t.hour != tm.tm_hour || (int)t.minute != tm.tm_min ||
            (int)t.second != tm.tm_sec || t.second_part != 17)
            fail_msg("%lld s: %u-%u-%u %u:%u:%u", (long long)s, t.year, t.month, t.day, t.hour,
                     t.minute, t.second);
        assert_int_equal(mariadb_time_to_us(&t), s * 1000000 + 17);
    }
}

static void test_time_range(void **state)
{
    (void)state;
    MYSQL_TIME t;
    char text[32];
    assert_int_equal(mariadb_time_from_us(MARIADB_TIME_MIN_US, &t), 0);
    mariadb_time_format(&t, text);
    assert_string_equal(text, "1000-01-01 00:00:00.000000");
    assert_int_equal(mariadb_time_from_us(MARIADB_TIME_END_US - 1, &t), 0);
    mariadb_time_format(&t, text);
    assert_string_equal(text, "9999-12-31 23:59:59.999999");
    assert_int_equal(mariadb_time_from_us(MARIADB_TIME_MIN_US - 1, &t), -ERANGE);
    assert_int_equal(mariadb_time_from_us(MARIADB_TIME_END_US, &t), -ERANGE);
    assert_int_equal(mariadb_time_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(mariadb_time_days_from_civil(1969, 12, 31), -1);
    assert_int_equal(mariadb_time_days_from_civil(2000, 3, 1), 11017);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_url),           cmocka_unit_test(test_socket_url),
        cmocka_unit_test(test_percent_decoding),  cmocka_unit_test(test_password_refused),
        cmocka_unit_test(test_bad_urls),          cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_time_known_values), cmocka_unit_test(test_time_against_gmtime),
        cmocka_unit_test(test_time_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
