/*
 * test_lp_encode.c: unit tests of the canonical line encoder (src/proto/lp_encode.c): exact
 * output for a table of records (escaping, optional fields, number forms), buffer limits,
 * records that cannot be lines, and the round trip encode -> parse -> map that must give back
 * the identical record, on hand-picked and on randomized records.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <errno.h>
#include <math.h>
#include <string.h>

#include <cmocka.h>

#include "proto/lp.h"
#include "proto/lp_encode.h"

static struct lp_line line;
static struct record back[LP_FIELDS_MAX];

static void set_text(char *dst, uint8_t *len, const char *s)
{
    size_t n = strlen(s);
    memcpy(dst, s, n + 1);
    *len = (uint8_t)n;
}

static struct record make_trade(const char *profile, const char *script, const char *symbol,
                                const char *side, int64_t ts)
{
    struct record r;
    memset(&r, 0, sizeof(r));
    r.kind = RECORD_TRADE;
    r.ts_ns = ts;
    set_text(r.profile, &r.profile_len, profile);
    set_text(r.script, &r.script_len, script);
    set_text(r.symbol, &r.symbol_len, symbol);
    set_text(r.side, &r.side_len, side);
    return r;
}

static struct record make_metric(const char *profile, const char *script, const char *name,
                                 double value, int64_t ts)
{
    struct record r;
    memset(&r, 0, sizeof(r));
    r.kind = RECORD_METRIC;
    r.ts_ns = ts;
    r.value = value;
    set_text(r.profile, &r.profile_len, profile);
    set_text(r.script, &r.script_len, script);
    set_text(r.name, &r.name_len, name);
    return r;
}

/*
 * expect_round_trip encodes rec, parses and maps the line back (nanoseconds, no default
 * profile) and checks that the record is identical, byte for byte.
 */
static void expect_round_trip(const struct record *rec)
{
    char buf[2048];
    struct lp_error err;
    size_t n = 0;
    struct lp_map_options mo = {.precision = LP_PREC_NS, .now_ns = -1};
    int w = lp_encode_record(rec, buf, sizeof(buf));
    assert_true(w > 0);
    if (lp_parse_line(buf, (size_t)w, NULL, &line, &err) < 0 ||
        lp_map_line(&line, &mo, back, LP_FIELDS_MAX, &n, &err) < 0)
        fail_msg("`%s` does not read back: column %zu: %s", buf, err.column, err.reason);
    assert_int_equal(n, 1);
    if (memcmp(rec, &back[0], sizeof(*rec)) != 0)
        fail_msg("`%s` reads back as a different record", buf);
}

static void expect_line(const struct record *rec, const char *want)
{
    char buf[2048];
    int w = lp_encode_record(rec, buf, sizeof(buf));
    if (w < 0 || strcmp(buf, want) != 0)
        fail_msg("got (%d) `%s`\nwant `%s`", w, w < 0 ? "" : buf, want);
    assert_int_equal(w, (int)strlen(want));
    expect_round_trip(rec);
}

static void test_canonical_trade(void **state)
{
    (void)state;
    struct record r = make_trade("p1", "exec", "AAPL", "buy", 1764201600000000000);
    r.present = REC_HAS_QTY | REC_HAS_ENTRY_PRICE | REC_HAS_EXIT_PRICE | REC_HAS_PNL |
                REC_HAS_FEES | REC_HAS_OPENED_AT;
    r.qty = 10;
    r.entry_price = 189.25;
    r.exit_price = 190.5;
    r.pnl = 12.5;
    r.fees = 0.35;
    r.opened_at_ns = 1764201500000000000;
    set_text(r.trade_id, &r.trade_id_len, "t-1");
    expect_line(&r, "trade,profile=p1,script=exec,symbol=AAPL,side=buy qty=10,entry_price=189.25,"
                    "exit_price=190.5,pnl=12.5,fees=0.35,opened_at=1764201500000000000i,"
                    "trade_id=\"t-1\" 1764201600000000000");

    /* Absent tags and fields are left out. */
    struct record p = make_trade("p", "", "", "", -5);
    p.present = REC_HAS_PNL;
    p.pnl = -3.25;
    expect_line(&p, "trade,profile=p pnl=-3.25 -5");
    p.present = REC_HAS_OPENED_AT;
    p.pnl = 0;
    p.opened_at_ns = -1;
    expect_line(&p, "trade,profile=p opened_at=-1i -5");

    /* A trade with no field at all still needs one to be a line. */
    struct record none = make_trade("p", "s", "", "", 0);
    expect_line(&none, "trade,profile=p,script=s trade_id=\"\" 0");
}

static void test_canonical_metric(void **state)
{
    (void)state;
    struct record m = make_metric("p", "risk", "strategy.equity", 10250.75, 1700000000000000000);
    expect_line(&m, "metric,profile=p,script=risk strategy.equity=10250.75 1700000000000000000");
    struct record bare = make_metric("p", "", "x", 1, INT64_MIN);
    expect_line(&bare, "metric,profile=p x=1 -9223372036854775808");
}

static void test_escaping(void **state)
{
    (void)state;
    const struct {
        const char *in;
        const char *tag;    /* as a tag value or field key */
        const char *string; /* inside a string field */
    } cases[] = {
        {"plain", "plain", "plain"},
        {"a b", "a\\ b", "a b"},
        {"a,b", "a\\,b", "a,b"},
        {"a=b", "a\\=b", "a=b"},
        {"a\\b", "a\\\\b", "a\\\\b"},
        {"a\"b", "a\"b", "a\\\"b"},
        {"end\\", "end\\\\", "end\\\\"},
        {"\\,", "\\\\\\,", "\\\\,"},
        {"#x", "#x", "#x"},
        {"caf\xc3\xa9 \xe2\x82\xac", "caf\xc3\xa9\\ \xe2\x82\xac", "caf\xc3\xa9 \xe2\x82\xac"},
        {"tab\there", "tab\there", "tab\there"},
    };
    char want[512];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct record t = make_trade(cases[i].in, cases[i].in, cases[i].in, "buy", 1);
        set_text(t.trade_id, &t.trade_id_len, cases[i].in);
        snprintf(want, sizeof(want),
                 "trade,profile=%s,script=%s,symbol=%s,side=buy trade_id=\"%s\" 1", cases[i].tag,
                 cases[i].tag, cases[i].tag, cases[i].string);
        expect_line(&t, want);
        struct record m = make_metric(cases[i].in, "", cases[i].in, 2.5, 1);
        snprintf(want, sizeof(want), "metric,profile=%s %s=2.5 1", cases[i].tag, cases[i].tag);
        expect_line(&m, want);
    }
}

static void test_doubles(void **state)
{
    (void)state;
    const struct {
        double v;
        const char *text;
    } cases[] = {
        {0.1, "0.1"},
        {100, "100"},
        {-0.0, "-0"},
        {0.0, "0"},
        {1e300, "1e+300"},
        {1e21, "1e+21"},
        {5e-324, "4.94065645841247e-324"},
        {0.30000000000000004, "0.30000000000000004"},
        {1.0 / 3.0, "0.3333333333333333"},
        {2.0 / 3.0, "0.6666666666666666"},
        {0.1 + 0.7, "0.7999999999999999"},
        {123456789012345680000.0, "1.2345678901234568e+20"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {-2.5e-7, "-2.5e-07"},
        {9007199254740993.0, "9007199254740992"},
    };
    char want[128];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct record m = make_metric("p", "", "v", cases[i].v, 7);
        snprintf(want, sizeof(want), "metric,profile=p v=%s 7", cases[i].text);
        expect_line(&m, want);
    }
}

static void test_buffer_limits(void **state)
{
    (void)state;
    struct record m = make_metric("p", "s", "x", 1.5, 42);
    const char *want = "metric,profile=p,script=s x=1.5 42";
    size_t len = strlen(want);
    char buf[64];
    for (size_t cap = 0; cap <= len; cap++) {
        memset(buf, '#', sizeof(buf));
        assert_int_equal(lp_encode_record(&m, buf, cap), -ENOSPC);
        for (size_t i = cap; i < sizeof(buf); i++)
            assert_int_equal(buf[i], '#'); /* nothing written past cap */
    }
    memset(buf, '#', sizeof(buf));
    assert_int_equal(lp_encode_record(&m, buf, len + 1), (int)len);
    assert_string_equal(buf, want);
    assert_int_equal(buf[len + 1], '#');
}

static void test_unencodable(void **state)
{
    (void)state;
    char buf[1024];
    struct record ok = make_metric("p", "", "x", 1, 1);
    assert_true(lp_encode_record(&ok, buf, sizeof(buf)) > 0);

    struct record r = ok;
    r.kind = 0;
    assert_int_equal(lp_encode_record(&r, buf, sizeof(buf)), -EINVAL);
    r = ok;
    r.profile_len = 0;
    assert_int_equal(lp_encode_record(&r, buf, sizeof(buf)), -EINVAL);
    r = ok;
    r.profile_len = REC_PROFILE_MAX + 1;
    assert_int_equal(lp_encode_record(&r, buf, sizeof(buf)), -EINVAL);
    r = ok;
    r.name_len = 0;
    assert_int_equal(lp_encode_record(&r, buf, sizeof(buf)), -EINVAL);
    r = ok;
    r.value = NAN;
    assert_int_equal(lp_encode_record(&r, buf, sizeof(buf)), -EINVAL);
    r = ok;
    r.value = -INFINITY;
    assert_int_equal(lp_encode_record(&r, buf, sizeof(buf)), -EINVAL);
    r = ok;
    set_text(r.script, &r.script_len, "a\nb");
    assert_int_equal(lp_encode_record(&r, buf, sizeof(buf)), -EINVAL);
    r = ok;
    r.profile[0] = '\0'; /* a NUL inside the length */
    assert_int_equal(lp_encode_record(&r, buf, sizeof(buf)), -EINVAL);

    struct record t = make_trade("p", "", "", "", 1);
    t.present = REC_HAS_FEES;
    t.fees = NAN;
    assert_int_equal(lp_encode_record(&t, buf, sizeof(buf)), -EINVAL);
    t.present = REC_HAS_PNL; /* a non-finite value that is not present does not matter */
    assert_true(lp_encode_record(&t, buf, sizeof(buf)) > 0);
    t.side_len = REC_SIDE_MAX + 1;
    assert_int_equal(lp_encode_record(&t, buf, sizeof(buf)), -EINVAL);
    t.side_len = 0;
    t.symbol_len = REC_SYMBOL_MAX + 1;
    assert_int_equal(lp_encode_record(&t, buf, sizeof(buf)), -EINVAL);
    t.symbol_len = 0;
    t.trade_id_len = REC_TRADE_ID_MAX + 1;
    assert_int_equal(lp_encode_record(&t, buf, sizeof(buf)), -EINVAL);
}

/* Mapping then encoding a canonical line gives back that very line. */
static void test_canonical_lines_are_fixed_points(void **state)
{
    (void)state;
    const char *lines[] = {
        "trade,profile=p1,script=exec,symbol=AAPL,side=buy qty=10,entry_price=189.25,"
        "exit_price=190.5,pnl=12.5,fees=0.35,opened_at=1764201500000000000i,trade_id=\"t-1\" "
        "1764201600000000000",
        "trade,profile=a\\ b,side=sell pnl=-0.1,trade_id=\"x\\\"y\\\\z\" 1",
        "metric,profile=p,script=risk strategy.equity=10250.75 1700000000000000000",
        "metric,profile=p\\=q c\\,d=1e-07 -1",
    };
    struct lp_map_options mo = {.precision = LP_PREC_NS};
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        struct lp_error err;
        size_t n;
        char buf[1024];
        assert_int_equal(lp_parse_line(lines[i], strlen(lines[i]), NULL, &line, &err), 0);
        assert_int_equal(lp_map_line(&line, &mo, back, LP_FIELDS_MAX, &n, &err), 0);
        assert_int_equal(n, 1);
        assert_int_equal(lp_encode_record(&back[0], buf, sizeof(buf)), (int)strlen(lines[i]));
        assert_string_equal(buf, lines[i]);
    }
}

/* --- randomized round trip ----------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    /* xorshift64*: deterministic, so a failure reproduces. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

/* random_text fills dst with 1..max bytes (0..max when may_be_empty) of awkward UTF-8. */
static void random_text(char *dst, uint8_t *len, size_t max, bool may_be_empty)
{
    static const char *pieces[] = {"a",
                                   "Z",
                                   "0",
                                   "9",
                                   " ",
                                   ",",
                                   "=",
                                   "\\",
                                   "\"",
                                   "#",
                                   ".",
                                   "-",
                                   "_",
                                   "\t",
                                   "\r",
                                   "\x01",
                                   "\xc3\xa9",
                                   "\xe2\x82\xac",
                                   "\xf0\x9f\x98\x80"};
    size_t want = (size_t)(rng() % (max + 1));
    if (want == 0 && !may_be_empty)
        want = 1;
    size_t n = 0;
    while (n < want) {
        const char *p = pieces[rng() % (sizeof(pieces) / sizeof(pieces[0]))];
        size_t pl = strlen(p);
        if (n + pl > max)
            break;
        memcpy(dst + n, p, pl);
        n += pl;
    }
    if (n == 0 && !may_be_empty)
        dst[n++] = 'x';
    dst[n] = '\0';
    *len = (uint8_t)n;
}

static double random_double(void)
{
    for (;;) {
        uint64_t bits = rng();
        double d;
        switch (rng() % 4) {
        case 0:
            memcpy(&d, &bits, sizeof(d));
            break;
        case 1:
            d = (double)(int64_t)bits;
            break;
        case 2:
            d = (double)(int32_t)bits / 100.0;
            break;
        default:
            d = (double)(bits % 1000000) * pow(10, (double)(int)(rng() % 40) - 20);
            break;
        }
        if (isfinite(d))
            return d;
    }
}

static void test_random_round_trip(void **state)
{
    (void)state;
    for (int i = 0; i < 20000; i++) {
        struct record r;
        memset(&r, 0, sizeof(r));
        r.ts_ns = (int64_t)rng();
        random_text(r.profile, &r.profile_len, REC_PROFILE_MAX, false);
        random_text(r.script, &r.script_len, REC_SCRIPT_MAX, true);
        if (i % 2) {
            r.kind = RECORD_METRIC;
            random_text(r.name, &r.name_len, REC_NAME_MAX, false);
            r.value = random_double();
        } else {
            r.kind = RECORD_TRADE;
            random_text(r.symbol, &r.symbol_len, REC_SYMBOL_MAX, true);
            random_text(r.side, &r.side_len, REC_SIDE_MAX, true);
            random_text(r.trade_id, &r.trade_id_len, REC_TRADE_ID_MAX, true);
            r.present = (uint8_t)(rng() & 0x3f);
            if (r.present & REC_HAS_QTY)
                r.qty = random_double();
            if (r.present & REC_HAS_ENTRY_PRICE)
                r.entry_price = random_double();
            if (r.present & REC_HAS_EXIT_PRICE)
                r.exit_price = random_double();
            if (r.present & REC_HAS_PNL)
                r.pnl = random_double();
            if (r.present & REC_HAS_FEES)
                r.fees = random_double();
            if (r.present & REC_HAS_OPENED_AT)
                r.opened_at_ns = (int64_t)rng();
        }
        expect_round_trip(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_trade),
        cmocka_unit_test(test_canonical_metric),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_doubles),
        cmocka_unit_test(test_buffer_limits),
        cmocka_unit_test(test_unencodable),
        cmocka_unit_test(test_canonical_lines_are_fixed_points),
        cmocka_unit_test(test_random_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
