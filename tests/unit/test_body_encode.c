/*
 * test_body_encode.c: turning line-protocol bodies into spool payloads all or nothing: records
 * decode back, a bad line names its number and adds nothing, several bodies share a payload,
 * ignored lines are counted, and the payload bound refuses a body without half-adding it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ingest/body_encode.h"
#include "spool/frame.h"

static struct body_encoder *encoder(size_t payload_max)
{
    struct body_encode_options o = {
        .limits = {.line_max = 4096, .tags_max = 32, .fields_max = 32},
        .payload_max = payload_max,
    };
    return body_encoder_create(&o);
}

/* decode_all decodes every record of a payload into out; returns how many. */
static size_t decode_all(const uint8_t *p, size_t len, struct record *out, size_t cap)
{
    size_t n = 0, off = 0;
    while (off < len && n < cap) {
        int used = frame_record_decode(p + off, len - off, &out[n]);
        assert_true(used > 0);
        off += (size_t)used;
        n++;
    }
    assert_int_equal(off, len);
    return n;
}

static void test_good_body(void **state)
{
    (void)state;
    struct body_encoder *enc = encoder(0);
    const char *body = "# a comment\r\n"
                       "trade,profile=p1,script=exec,symbol=BTCUSD,side=buy qty=2,pnl=5.5 "
                       "1700000000000000000\r\n"
                       "\n"
                       "equity,profile=p1 value=1000,exposure=0.5 1700000000000000001\n"
                       "note,profile=p1 text=\"no number\"\n";
    struct body_result res;
    assert_int_equal(body_encoder_add(enc, body, strlen(body), LP_PREC_NS, 42, &res), 0);
    assert_int_equal(res.records, 3);
    assert_int_equal(res.lines, 3);
    assert_int_equal(res.ignored, 1);
    size_t len;
    uint32_t count;
    const uint8_t *p = body_encoder_payload(enc, &len, &count);
    assert_int_equal(count, 3);
    struct record recs[8];
    assert_int_equal(decode_all(p, len, recs, 8), 3);
    assert_int_equal(recs[0].kind, RECORD_TRADE);
    assert_string_equal(recs[0].profile, "p1");
    assert_string_equal(recs[0].symbol, "BTCUSD");
    assert_true(recs[0].ts_ns == 1700000000000000000);
    assert_int_equal(recs[1].kind, RECORD_METRIC);
    assert_int_equal(recs[2].kind, RECORD_METRIC);
    body_encoder_destroy(enc);
}

static void test_bad_line_adds_nothing(void **state)
{
    (void)state;
    struct body_encoder *enc = encoder(0);
    struct body_result res;
    const char *good = "m,profile=a v=1\n";
    assert_int_equal(body_encoder_add(enc, good, strlen(good), LP_PREC_NS, 1, &res), 0);
    size_t len1;
    uint32_t count1;
    body_encoder_payload(enc, &len1, &count1);
    assert_int_equal(count1, 1);

    const char *bad = "m,profile=a v=1\n"
                      "m,profile=a v=2\n"
                      "m,profile=a v=NaN\n"
                      "m,profile=a v=4\n";
    assert_int_equal(body_encoder_add(enc, bad, strlen(bad), LP_PREC_NS, 1, &res), -22);
    assert_int_equal(res.err.line, 3);
    assert_int_equal(res.records, 0);
    char msg[256];
    body_error_format(&res.err, msg, sizeof(msg));
    assert_non_null(strstr(msg, "line 3"));
    assert_non_null(strstr(msg, "NaN"));
    size_t len2;
    uint32_t count2;
    body_encoder_payload(enc, &len2, &count2);
    assert_int_equal(len2, len1);
    assert_int_equal(count2, count1);
    assert_int_equal(body_count_lines(bad, strlen(bad)), 4);

    /* A missing profile is refused with its line number too. */
    const char *noprof = "m,profile=a v=1\nm v=2\n";
    assert_int_equal(body_encoder_add(enc, noprof, strlen(noprof), LP_PREC_NS, 1, &res), -22);
    assert_int_equal(res.err.line, 2);

    body_encoder_reset(enc);
    body_encoder_payload(enc, &len2, &count2);
    assert_int_equal(len2, 0);
    assert_int_equal(count2, 0);
    body_encoder_destroy(enc);
}

static void test_default_profile_and_time(void **state)
{
    (void)state;
    struct body_encode_options o = {
        .limits = {.line_max = 4096, .tags_max = 32, .fields_max = 32},
        .profile_tag = "acct",
        .default_profile = "house",
    };
    struct body_encoder *enc = body_encoder_create(&o);
    const char *body = "m v=1\nm,acct=x v=2 5\n";
    struct body_result res;
    assert_int_equal(body_encoder_add(enc, body, strlen(body), LP_PREC_S, 777, &res), 0);
    size_t len;
    uint32_t count;
    const uint8_t *p = body_encoder_payload(enc, &len, &count);
    struct record recs[4];
    assert_int_equal(decode_all(p, len, recs, 4), 2);
    assert_string_equal(recs[0].profile, "house");
    assert_true(recs[0].ts_ns == 777); /* arrival time, written explicitly */
    assert_string_equal(recs[1].profile, "x");
    assert_true(recs[1].ts_ns == 5000000000LL);
    body_encoder_destroy(enc);
}

static void test_payload_bound(void **state)
{
    (void)state;
    struct body_encoder *enc = encoder(4096);
    char body[64 * 1024];
    size_t off = 0;
    for (int i = 0; i < 1000; i++)
        off += (size_t)snprintf(body + off, sizeof(body) - off, "m,profile=p%d v=%d\n", i, i);
    struct body_result res;
    assert_int_equal(body_encoder_add(enc, body, off, LP_PREC_NS, 1, &res), -27 /* EFBIG */);
    size_t len;
    uint32_t count;
    body_encoder_payload(enc, &len, &count);
    assert_int_equal(len, 0);
    assert_int_equal(count, 0);
    /* A small body still fits afterwards. */
    assert_int_equal(body_encoder_add(enc, "m,profile=p v=1", 15, LP_PREC_NS, 1, &res), 0);
    assert_int_equal(res.records, 1);
    body_encoder_destroy(enc);
    body_encoder_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_body),
        cmocka_unit_test(test_bad_line_adds_nothing),
        cmocka_unit_test(test_default_profile_and_time),
        cmocka_unit_test(test_payload_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
