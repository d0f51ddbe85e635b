/*
 * test_client_encode.c: unit tests of libtelem's record checker and line-protocol encoder
 * (src/client/telem_encode.c): the escaping table, the canonical trade and metric lines,
 * refusals that name the field, and number formatting that always parses back to the same
 * double.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "telem.h"
#include "telem_encode.h"

#define NOW 1700000000123456789LL

/* encode_trade checks tr and encodes it with the handle prefix for p1/exec. */
static int encode_trade(const struct telem_trade *tr, char *line, char *msg, size_t msg_cap)
{
    struct telem__rec rec;
    int rc = telem__rec_trade(&rec, tr, NOW, msg, msg_cap);
    if (rc != TELEM_OK)
        return rc;
    char prefix[512];
    size_t plen = telem__encode_prefix(prefix, "p1", "exec");
    size_t n = telem__encode_rec(line, &rec, prefix, plen);
    line[n] = '\0';
    return TELEM_OK;
}

static int encode_metric(const char *profile, const char *script, const char *name, double v,
                         int64_t ts, char *line, char *msg, size_t msg_cap)
{
    struct telem__rec rec;
    int rc = telem__rec_metric(&rec, profile, script, name, v, ts, NOW, msg, msg_cap);
    if (rc != TELEM_OK)
        return rc;
    char prefix[512];
    size_t plen = telem__encode_prefix(prefix, "p1", "exec");
    size_t n = telem__encode_rec(line, &rec, prefix, plen);
    line[n] = '\0';
    return TELEM_OK;
}

static void test_canonical_trade(void **state)
{
    (void)state;
    char line[TELEM__LINE_MAX + 1], msg[160];
    struct telem_trade tr = {.symbol = "BTC-USD",
                             .side = "buy",
                             .qty = 1,
                             .entry_price = 100.5,
                             .exit_price = 101,
                             .pnl = 0.5,
                             .fees = 0.01,
                             .opened_at_ns = 1699999999000000000LL,
                             .closed_at_ns = 1700000000000000001LL,
                             .trade_id = "abc"};
    assert_int_equal(encode_trade(&tr, line, msg, sizeof(msg)), TELEM_OK);
    assert_string_equal(line, "trade,profile=p1,script=exec,symbol=BTC-USD,side=buy qty=1,"
                              "entry_price=100.5,exit_price=101,pnl=0.5,fees=0.01,"
                              "opened_at=1699999999000000000i,trade_id=\"abc\" "
                              "1700000000000000001\n");

    /* Absent optional parts vanish; closed_at 0 is now. */
    struct telem_trade bare = {.qty = -2, .entry_price = 3, .exit_price = 4, .pnl = -2};
    assert_int_equal(encode_trade(&bare, line, msg, sizeof(msg)), TELEM_OK);
    assert_string_equal(line, "trade,profile=p1,script=exec qty=-2,entry_price=3,exit_price=4,"
                              "pnl=-2,fees=0 1700000000123456789\n");

    /* A per-record profile and script replace the handle's. */
    struct telem_trade other = {.symbol = "X", .profile = "p 2", .script = "risk"};
    assert_int_equal(encode_trade(&other, line, msg, sizeof(msg)), TELEM_OK);
    assert_string_equal(line, "trade,profile=p\\ 2,script=risk,symbol=X qty=0,entry_price=0,"
                              "exit_price=0,pnl=0,fees=0 1700000000123456789\n");
}

static void test_canonical_metric(void **state)
{
    (void)state;
    char line[TELEM__LINE_MAX + 1], msg[160];
    assert_int_equal(encode_metric(NULL, NULL, "equity", 10250.75, 42, line, msg, sizeof(msg)),
                     TELEM_OK);
    assert_string_equal(line, "metric,profile=p1,script=exec equity=10250.75 42\n");
    assert_int_equal(encode_metric("p9", NULL, "lat.p99", 1e-9, 0, line, msg, sizeof(msg)),
                     TELEM_OK);
    assert_string_equal(line, "metric,profile=p9 lat.p99=0.000000001 1700000000123456789\n");
}

/* The escaping table: input in each position and what must appear on the wire. */
struct escape_case {
    const char *in;
    const char *tag;    /* as a tag value or field key */
    const char *string; /* inside a string field value */
};

static const struct escape_case escape_cases[] = {
    {"plain", "plain", "plain"},
    {"a b", "a\\ b", "a b"},
    {"a,b", "a\\,b", "a,b"},
    {"a=b", "a\\=b", "a=b"},
    {"a\"b", "a\"b", "a\\\"b"},
    {"a\\b", "a\\\\b", "a\\\\b"},
    {"end\\", "end\\\\", "end\\\\"},
    {" ,=", "\\ \\,\\=", " ,="},
    {"caf\xc3\xa9", "caf\xc3\xa9", "caf\xc3\xa9"},
    {"\xe2\x82\xac 5", "\xe2\x82\xac\\ 5", "\xe2\x82\xac 5"},
};

static void test_escape_table(void **state)
{
    (void)state;
    char line[TELEM__LINE_MAX + 1], msg[160], want[TELEM__LINE_MAX];
    for (size_t i = 0; i < sizeof(escape_cases) / sizeof(escape_cases[0]); i++) {
        const struct escape_case *c = &escape_cases[i];
        struct telem_trade tr = {.symbol = c->in,
                                 .side = c->in,
                                 .trade_id = c->in,
                                 .profile = c->in,
                                 .script = c->in,
                                 .closed_at_ns = 5};
        assert_int_equal(encode_trade(&tr, line, msg, sizeof(msg)), TELEM_OK);
        snprintf(want, sizeof(want),
                 "trade,profile=%s,script=%s,symbol=%s,side=%s qty=0,entry_price=0,"
                 "exit_price=0,pnl=0,fees=0,trade_id=\"%s\" 5\n",
                 c->tag, c->tag, c->tag, c->tag, c->string);
        assert_string_equal(line, want);

        assert_int_equal(encode_metric(c->in, NULL, c->in, 1.5, 7, line, msg, sizeof(msg)),
                         TELEM_OK);
        snprintf(want, sizeof(want), "metric,profile=%s %s=1.5 7\n", c->tag, c->tag);
        assert_string_equal(line, want);

        /* The handle prefix escapes the same way. */
        char prefix[512];
        size_t n = telem__encode_prefix(prefix, c->in, c->in);
        prefix[n] = '\0';
        snprintf(want, sizeof(want), ",profile=%s,script=%s", c->tag, c->tag);
        assert_string_equal(prefix, want);
    }
}

/* Refusals: each names the field in its message. */
struct refusal_case {
    const char *field;
    const char *symbol, *side, *trade_id, *profile, *script;
    double pnl;
    int64_t closed;
    const char *msg_part;
};

static void test_trade_refusals(void **state)
{
    (void)state;
    char long33[34], long65[66];
    memset(long33, 'a', 33);
    long33[33] = '\0';
    memset(long65, 'b', 65);
    long65[65] = '\0';
    const struct refusal_case cases[] = {
        {"symbol", "BTC\nUSD", NULL, NULL, NULL, NULL, 0, 0, "symbol: contains a line break"},
        {"symbol", "BTC\rUSD", NULL, NULL, NULL, NULL, 0, 0, "symbol: contains a line break"},
        {"side", NULL, "b\tuy", NULL, NULL, NULL, 0, 0, "side: contains control character 0x09"},
        {"trade_id", NULL, NULL, "x\ny", NULL, NULL, 0, 0, "trade_id: contains a line break"},
        {"symbol", long33, NULL, NULL, NULL, NULL, 0, 0, "symbol: longer than 32 bytes"},
        {"trade_id", NULL, NULL, long65, NULL, NULL, 0, 0, "trade_id: longer than 64 bytes"},
        {"profile", NULL, NULL, NULL, long65, NULL, 0, 0, "profile: longer than 64 bytes"},
        {"profile", NULL, NULL, NULL, "", "s", 0, 0, "profile: required"},
        {"script", NULL, NULL, NULL, "p", "a\nb", 0, 0, "script: contains a line break"},
        {"symbol", "\xff", NULL, NULL, NULL, NULL, 0, 0, "symbol: is not valid UTF-8"},
        {"symbol", "\xc0\xaf", NULL, NULL, NULL, NULL, 0, 0, "symbol: is not valid UTF-8"},
        {"symbol", "\xed\xa0\x80", NULL, NULL, NULL, NULL, 0, 0, "symbol: is not valid UTF-8"},
        {"symbol", "\xe2\x82", NULL, NULL, NULL, NULL, 0, 0, "symbol: is not valid UTF-8"},
        {"pnl", NULL, NULL, NULL, NULL, NULL, NAN, 0, "pnl: not a finite number"},
        {"pnl", NULL, NULL, NULL, NULL, NULL, INFINITY, 0, "pnl: not a finite number"},
        {"closed", NULL, NULL, NULL, NULL, NULL, 0, -1, "closed_at_ns: negative time"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct refusal_case *c = &cases[i];
        struct telem_trade tr = {.symbol = c->symbol,
                                 .side = c->side,
                                 .trade_id = c->trade_id,
                                 .profile = c->profile,
                                 .script = c->script,
                                 .pnl = c->pnl,
                                 .closed_at_ns = c->closed};
        char line[TELEM__LINE_MAX + 1], msg[160] = "";
        assert_int_equal(encode_trade(&tr, line, msg, sizeof(msg)), TELEM_EINVAL);
        if (strstr(msg, c->msg_part) == NULL)
            fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, msg, c->msg_part);
    }
    /* Exactly at the limits is fine. */
    long33[32] = '\0';
    long65[64] = '\0';
    struct telem_trade ok = {.symbol = long33, .trade_id = long65, .profile = long65};
    char line[TELEM__LINE_MAX + 1], msg[160];
    assert_int_equal(encode_trade(&ok, line, msg, sizeof(msg)), TELEM_OK);
}

static void test_metric_refusals(void **state)
{
    (void)state;
    char line[TELEM__LINE_MAX + 1], msg[160];
    char name129[130];
    memset(name129, 'n', 129);
    name129[129] = '\0';
    assert_int_equal(encode_metric(NULL, NULL, "", 1, 1, line, msg, sizeof(msg)), TELEM_EINVAL);
    assert_non_null(strstr(msg, "name: required"));
    assert_int_equal(encode_metric(NULL, NULL, NULL, 1, 1, line, msg, sizeof(msg)), TELEM_EINVAL);
    assert_int_equal(encode_metric(NULL, NULL, name129, 1, 1, line, msg, sizeof(msg)),
                     TELEM_EINVAL);
    assert_non_null(strstr(msg, "name: longer than 128 bytes"));
    assert_int_equal(encode_metric(NULL, NULL, "a\nb", 1, 1, line, msg, sizeof(msg)), TELEM_EINVAL);
    assert_non_null(strstr(msg, "name: contains a line break"));
    assert_int_equal(encode_metric(NULL, NULL, "x", NAN, 1, line, msg, sizeof(msg)), TELEM_EINVAL);
    assert_non_null(strstr(msg, "value: not a finite number"));
    assert_int_equal(encode_metric(NULL, NULL, "x", -INFINITY, 1, line, msg, sizeof(msg)),
                     TELEM_EINVAL);
    assert_int_equal(encode_metric(NULL, NULL, "x", 1, -5, line, msg, sizeof(msg)), TELEM_EINVAL);
    assert_non_null(strstr(msg, "ts_ns: negative time"));
    name129[128] = '\0';
    assert_int_equal(encode_metric(NULL, NULL, name129, 1, 1, line, msg, sizeof(msg)), TELEM_OK);
    assert_int_equal(telem__check_ident("profile", "", 64, true, msg, sizeof(msg)), TELEM_EINVAL);
    assert_int_equal(telem__check_ident("script", NULL, 64, false, msg, sizeof(msg)), TELEM_OK);
}

static void check_double(double v, const char *want)
{
    char buf[64];
    size_t n = telem__format_double(buf, v);
    buf[n] = '\0';
    if (want != NULL && strcmp(buf, want) != 0)
        fail_msg("%.17g formatted as \"%s\", want \"%s\"", v, buf, want);
    if (strtod(buf, NULL) != v)
        fail_msg("%.17g formatted as \"%s\", which parses back to %.17g", v, buf,
                 strtod(buf, NULL));
}

static void test_format_double(void **state)
{
    (void)state;
    check_double(0, "0");
    check_double(1, "1");
    check_double(-1, "-1");
    check_double(100.5, "100.5");
    check_double(0.01, "0.01");
    check_double(0.1, "0.1");
    check_double(0.3, "0.3");
    check_double(0.1 + 0.2, "0.30000000000000004");
    check_double(-64000.125, "-64000.125");
    check_double(9007199254740991.0, "9007199254740991");
    check_double(123456789.123456, "123456789.123456");
    check_double(1e-9, "0.000000001");
    check_double(1e300, "1e+300");
    check_double(5e-324, NULL);
    check_double(1.7976931348623157e308, NULL);
    check_double(2.2250738585072014e-308, NULL);
    check_double(1.0 / 3.0, NULL);

    /* Random doubles of every magnitude, and random prices: all must round-trip. */
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double v;
        uint64_t bits = x;
        memcpy(&v, &bits, sizeof(v));
        if (isfinite(v))
            check_double(v, NULL);
        double price = (double)(x % 100000000) / 100.0;
        check_double(price, NULL);
        check_double(price * 1.37, NULL);
    }
}

static void test_format_i64(void **state)
{
    (void)state;
    char buf[32];
    const int64_t cases[] = {0, 1, 9, 10, 99, 100, -1, 1700000000123456789LL, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char want[32];
        snprintf(want, sizeof(want), "%lld", (long long)cases[i]);
        size_t n = telem__format_i64(buf, cases[i]);
        buf[n] = '\0';
        assert_string_equal(buf, want);
    }
}

/* The worst case stays within TELEM__LINE_MAX: every string at its limit and fully escaped. */
static void test_line_max(void **state)
{
    (void)state;
    char sym[33], side[17], id[65], prof[65], name[129];
    memset(sym, ',', 32);
    sym[32] = '\0';
    memset(side, ' ', 16);
    side[16] = '\0';
    memset(id, '"', 64);
    id[64] = '\0';
    memset(prof, '=', 64);
    prof[64] = '\0';
    memset(name, '\\', 128);
    name[128] = '\0';
    struct telem_trade tr = {.symbol = sym,
                             .side = side,
                             .trade_id = id,
                             .profile = prof,
                             .script = prof,
                             .qty = -1.2345678901234567e-300,
                             .entry_price = -1.2345678901234567e-300,
                             .exit_price = -1.2345678901234567e-300,
                             .pnl = -1.2345678901234567e-300,
                             .fees = -1.2345678901234567e-300,
                             .opened_at_ns = INT64_MAX,
                             .closed_at_ns = INT64_MAX};
    char line[TELEM__LINE_MAX + 1], msg[160];
    assert_int_equal(encode_trade(&tr, line, msg, sizeof(msg)), TELEM_OK);
    assert_true(strlen(line) < TELEM__LINE_MAX);
    assert_int_equal(encode_metric(prof, prof, name, -1.2345678901234567e-300, INT64_MAX, line, msg,
                                   sizeof(msg)),
                     TELEM_OK);
    assert_true(strlen(line) < TELEM__LINE_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_trade), cmocka_unit_test(test_canonical_metric),
        cmocka_unit_test(test_escape_table),    cmocka_unit_test(test_trade_refusals),
        cmocka_unit_test(test_metric_refusals), cmocka_unit_test(test_format_double),
        cmocka_unit_test(test_format_i64),      cmocka_unit_test(test_line_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
