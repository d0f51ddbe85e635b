/*
 * test_body_gzip.c: bounded gzip inflation of request bodies: round trips (one and several
 * gzip members), the size limit exactly and one byte over, corrupt, cut-short and non-gzip
 * input, and reuse of one inflater.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "ingest/body_gzip.h"

/* gzip_make compresses src into a malloc'd gzip member. */
static unsigned char *gzip_make(const void *src, size_t len, size_t *out_len)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&zs, (uLong)len) + 64;
    unsigned char *out = malloc(cap);
    assert_non_null(out);
    zs.next_in = (Bytef *)src;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    *out_len = cap - zs.avail_out;
    deflateEnd(&zs);
    return out;
}

static char *lines_make(size_t n, size_t *len)
{
    char *body = malloc(n * 96 + 1);
    assert_non_null(body);
    size_t off = 0;
    for (size_t i = 0; i < n; i++)
        off += (size_t)sprintf(body + off, "equity,profile=p%zu,script=risk value=%zu.5 %zu\n",
                               i % 100, i, 1700000000000000000 + i);
    *len = off;
    return body;
}

static void test_round_trip(void **state)
{
    (void)state;
    size_t len, zlen;
    char *body = lines_make(20000, &len);
    unsigned char *z = gzip_make(body, len, &zlen);
    assert_true(zlen < len);
    struct body_gzip *gz = body_gzip_create();
    const char *out;
    size_t out_len;
    char err[160];
    /* Twice, to show the inflater is reusable. */
    for (int round = 0; round < 2; round++) {
        assert_int_equal(
            body_gzip_inflate(gz, z, zlen, 64u << 20, &out, &out_len, err, sizeof(err)), 0);
        assert_int_equal(out_len, len);
        assert_memory_equal(out, body, len);
    }
    body_gzip_trim(gz);
    body_gzip_destroy(gz);
    free(z);
    free(body);
}

static void test_limit(void **state)
{
    (void)state;
    size_t len, zlen;
    char *body = lines_make(1000, &len);
    unsigned char *z = gzip_make(body, len, &zlen);
    struct body_gzip *gz = body_gzip_create();
    const char *out;
    size_t out_len;
    char err[160] = "";
    /* Exactly the limit is fine. */
    assert_int_equal(body_gzip_inflate(gz, z, zlen, len, &out, &out_len, err, sizeof(err)), 0);
    assert_int_equal(out_len, len);
    /* One byte less is over it. */
    assert_int_equal(body_gzip_inflate(gz, z, zlen, len - 1, &out, &out_len, err, sizeof(err)),
                     -27 /* -EFBIG */);
    assert_non_null(strstr(err, "decompressed body over"));
    free(z);

    /* A bomb: 64 MiB of zeros compresses to ~64 KiB; the limit stops it early. */
    size_t big = 64u << 20;
    char *zeros = calloc(1, big);
    assert_non_null(zeros);
    z = gzip_make(zeros, big, &zlen);
    assert_true(zlen < (1u << 20));
    assert_int_equal(body_gzip_inflate(gz, z, zlen, 1u << 20, &out, &out_len, err, sizeof(err)),
                     -27);
    body_gzip_destroy(gz);
    free(zeros);
    free(z);
    free(body);
}

static void test_corrupt(void **state)
{
    (void)state;
    size_t len, zlen;
    char *body = lines_make(500, &len);
    unsigned char *z = gzip_make(body, len, &zlen);
    struct body_gzip *gz = body_gzip_create();
    const char *out;
    size_t out_len;
    char err[160];

    /* Cut short. */
    assert_int_equal(body_gzip_inflate(gz, z, zlen / 2, 1u << 20, &out, &out_len, err, sizeof(err)),
                     -22);
    assert_non_null(strstr(err, "cut short"));

    /* A flipped byte in the middle: a data error or a CRC mismatch, never success. */
    unsigned char *bad = malloc(zlen);
    memcpy(bad, z, zlen);
    bad[zlen / 2] ^= 0x55;
    assert_int_equal(body_gzip_inflate(gz, bad, zlen, 1u << 20, &out, &out_len, err, sizeof(err)),
                     -22);
    /* A wrong trailer CRC. */
    memcpy(bad, z, zlen);
    bad[zlen - 8] ^= 0x01;
    assert_int_equal(body_gzip_inflate(gz, bad, zlen, 1u << 20, &out, &out_len, err, sizeof(err)),
                     -22);
    free(bad);

    /* Not gzip at all. */
    assert_int_equal(body_gzip_inflate(gz, body, len, 1u << 20, &out, &out_len, err, sizeof(err)),
                     -22);
    assert_non_null(strstr(err, "gzip"));
    /* Empty. */
    assert_int_equal(body_gzip_inflate(gz, "", 0, 1u << 20, &out, &out_len, err, sizeof(err)), -22);
    /* Trailing garbage after a good member. */
    unsigned char *tail = malloc(zlen + 3);
    memcpy(tail, z, zlen);
    memcpy(tail + zlen, "xyz", 3);
    assert_int_equal(
        body_gzip_inflate(gz, tail, zlen + 3, 1u << 20, &out, &out_len, err, sizeof(err)), -22);
    assert_non_null(strstr(err, "trailing"));
    free(tail);

    /* Still works after all those failures. */
    assert_int_equal(body_gzip_inflate(gz, z, zlen, 1u << 20, &out, &out_len, err, sizeof(err)), 0);
    assert_int_equal(out_len, len);
    body_gzip_destroy(gz);
    free(z);
    free(body);
}

static void test_members(void **state)
{
    (void)state;
    size_t alen, blen, za, zb;
    char *a = lines_make(300, &alen);
    char *b = lines_make(700, &blen);
    unsigned char *ga = gzip_make(a, alen, &za);
    unsigned char *gb = gzip_make(b, blen, &zb);
    unsigned char *both = malloc(za + zb);
    memcpy(both, ga, za);
    memcpy(both + za, gb, zb);
    struct body_gzip *gz = body_gzip_create();
    const char *out;
    size_t out_len;
    char err[160];
    assert_int_equal(
        body_gzip_inflate(gz, both, za + zb, 1u << 20, &out, &out_len, err, sizeof(err)), 0);
    assert_int_equal(out_len, alen + blen);
    assert_memory_equal(out, a, alen);
    assert_memory_equal(out + alen, b, blen);

    /* A gzip of nothing is an empty body. */
    size_t zlen;
    unsigned char *empty = gzip_make("", 0, &zlen);
    assert_int_equal(body_gzip_inflate(gz, empty, zlen, 16, &out, &out_len, err, sizeof(err)), 0);
    assert_int_equal(out_len, 0);
    body_gzip_destroy(gz);
    body_gzip_destroy(NULL);
    free(empty);
    free(both);
    free(ga);
    free(gb);
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_members),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
