/*
 * test_redis_url.c: unit tests of src/sink/redis/redis_url.c: every accepted URL form, the
 * defaults, percent escapes, and the errors (which must never quote the password).
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

#include "sink/redis/redis_url.h"

static void test_tcp_defaults(void **state)
{
    (void)state;
    struct redis_url u;
    char err[200];
    assert_int_equal(redis_url_parse("redis://localhost", &u, err, sizeof(err)), 0);
    assert_string_equal(u.host, "localhost");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.socket, "");
    assert_false(u.has_password);

    assert_int_equal(redis_url_parse("redis://127.0.0.1:6380/3", &u, err, sizeof(err)), 0);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 3);

    assert_int_equal(redis_url_parse("redis://h:1/", &u, err, sizeof(err)), 0);
    assert_int_equal(u.db, 0);
    assert_int_equal(u.port, 1);
}

static void test_credentials(void **state)
{
    (void)state;
    struct redis_url u;
    char err[200];
    assert_int_equal(redis_url_parse("redis://:s3cret@h:7000/1", &u, err, sizeof(err)), 0);
    assert_true(u.has_password);
    assert_string_equal(u.password, "s3cret");
    assert_string_equal(u.user, "");
    assert_string_equal(u.host, "h");
    assert_int_equal(u.port, 7000);
    assert_int_equal(u.db, 1);

    assert_int_equal(redis_url_parse("redis://app:p%40ss%3Aw@h", &u, err, sizeof(err)), 0);
    assert_string_equal(u.user, "app");
    assert_string_equal(u.password, "p@ss:w");

    /* The last '@' ends the credentials, so a raw '@' in a password still works. */
    assert_int_equal(redis_url_parse("redis://:a@b@h:1", &u, err, sizeof(err)), 0);
    assert_string_equal(u.password, "a@b");
    assert_string_equal(u.host, "h");

    assert_int_equal(redis_url_parse("redis://onlyuser@h", &u, err, sizeof(err)), 0);
    assert_string_equal(u.user, "onlyuser");
    assert_false(u.has_password);

    assert_int_equal(redis_url_parse("redis://:@h", &u, err, sizeof(err)), 0);
    assert_true(u.has_password);
    assert_string_equal(u.password, "");
}

static void test_ipv6(void **state)
{
    (void)state;
    struct redis_url u;
    char err[200], buf[300];
    assert_int_equal(redis_url_parse("redis://[::1]:6390/2", &u, err, sizeof(err)), 0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 6390);
    assert_int_equal(u.db, 2);
    assert_string_equal(redis_url_describe(&u, buf, sizeof(buf)), "[::1]:6390/2");
    assert_int_equal(redis_url_parse("redis://[::1]", &u, err, sizeof(err)), 0);
    assert_int_equal(u.port, 6379);
}

static void test_unix_socket(void **state)
{
    (void)state;
    struct redis_url u;
    char err[200], buf[300];
    assert_int_equal(redis_url_parse("redis:///run/redis/redis.sock?db=4", &u, err, sizeof(err)),
                     0);
    assert_string_equal(u.socket, "/run/redis/redis.sock");
    assert_string_equal(u.host, "");
    assert_int_equal(u.db, 4);
    assert_string_equal(redis_url_describe(&u, buf, sizeof(buf)), "unix:/run/redis/redis.sock/4");

    assert_int_equal(redis_url_parse("redis:///tmp/r%20s.sock", &u, err, sizeof(err)), 0);
    assert_string_equal(u.socket, "/tmp/r s.sock");
    assert_int_equal(u.db, 0);

    assert_int_equal(
        redis_url_parse("redis://:pw@localhost/2?socket=/tmp/x.sock", &u, err, sizeof(err)), 0);
    assert_string_equal(u.socket, "/tmp/x.sock");
    assert_string_equal(u.host, "");
    assert_int_equal(u.db, 2);
    assert_string_equal(u.password, "pw");
}

static void expect_error(const char *url, const char *fragment)
{
    struct redis_url u;
    char err[200] = "";
    assert_int_equal(redis_url_parse(url, &u, err, sizeof(err)), -EINVAL);
    if (!strstr(err, fragment))
        fail_msg("%s: error '%s' lacks '%s'", url, err, fragment);
    assert_null(strstr(err, "hunter2"));
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("http://h", "redis://");
    expect_error("rediss://h", "TLS");
    expect_error("redis://", "host or a socket");
    expect_error("redis:///", "host or a socket");
    expect_error("redis://h:0", "port");
    expect_error("redis://h:65536", "port");
    expect_error("redis://h:x", "port");
    expect_error("redis://:hunter2@h:99999", "port");
    expect_error("redis://:hunter2@:1", "empty host");
    expect_error("redis://h/x", "database number");
    expect_error("redis://h/1?foo=1", "unknown query key");
    expect_error("redis://h/1?db", "without '='");
    expect_error("redis://h?db=-1", "db");
    expect_error("redis://h?socket=rel.sock", "absolute");
    expect_error("redis://[::1", "unclosed");
    expect_error("redis://[::1]x", "after ']'");
    expect_error("redis://:bad%zz@h", "password");
    expect_error("redis://:hunter2%0@h", "password");

    char longhost[400];
    memset(longhost, 'a', sizeof(longhost));
    memcpy(longhost, "redis://", 8);
    longhost[sizeof(longhost) - 1] = '\0';
    expect_error(longhost, "too long");

    char longsock[300];
    memset(longsock, 'b', sizeof(longsock));
    memcpy(longsock, "redis:///", 9);
    longsock[sizeof(longsock) - 1] = '\0';
    expect_error(longsock, "too long");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_defaults), cmocka_unit_test(test_credentials),
        cmocka_unit_test(test_ipv6),         cmocka_unit_test(test_unix_socket),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
