/*
 * test_lp.c: unit tests of the line-protocol parser and mapper (src/proto/lp.c, lp_map.c): a
 * table of valid lines with their parsed values, a table of invalid lines with the column and
 * reason of their rejection, limits, walking a body (CRLF, comments, blank lines, line
 * numbers), precision names, unescaping, and the mapping of lines to trade and metric records.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <math.h>
#include <string.h>

#include <cmocka.h>

#include "proto/lp.h"

/* Big structs stay off the stack; the tests run one at a time. */
static struct lp_line line;
static struct record recs[LP_FIELDS_MAX];

/* slice_text unescapes s into a static buffer, for comparisons. */
static const char *slice_text(const struct lp_slice *s)
{
    static char buf[70000];
    int n = lp_unescape(s, buf, sizeof(buf));
    assert_true(n >= 0);
    return buf;
}

static bool same_double(double a, double b)
{
    return memcmp(&a, &b, sizeof(a)) == 0;
}

/* --- valid lines ------------------------------------------------------------------------- */

struct field_want {
    const char *key;
    enum lp_field_type type;
    double f;
    int64_t i;
    uint64_t u;
    bool b;
    const char *s;
};

struct valid_case {
    const char *text;
    const char *measurement;
    const char *tags[8]; /* key, value, key, value, ... (unescaped), NULL-terminated */
    struct field_want fields[8];
    size_t nfields;
    bool has_time;
    int64_t time;
};

#define F_FLOAT(k, v)                                                                              \
    {                                                                                              \
        .key = k, .type = LP_FIELD_FLOAT, .f = v                                                   \
    }
#define F_INT(k, v)                                                                                \
    {                                                                                              \
        .key = k, .type = LP_FIELD_INT, .i = v                                                     \
    }
#define F_UINT(k, v)                                                                               \
    {                                                                                              \
        .key = k, .type = LP_FIELD_UINT, .u = v                                                    \
    }
#define F_BOOL(k, v)                                                                               \
    {                                                                                              \
        .key = k, .type = LP_FIELD_BOOL, .b = v                                                    \
    }
#define F_STRING(k, v)                                                                             \
    {                                                                                              \
        .key = k, .type = LP_FIELD_STRING, .s = v                                                  \
    }

static const struct valid_case valid_cases[] = {
    {"cpu,host=a usage=0.5 1700000000000000000",
     "cpu",
     {"host", "a"},
     {F_FLOAT("usage", 0.5)},
     1,
     true,
     1700000000000000000},
    {"cpu usage=1", "cpu", {NULL}, {F_FLOAT("usage", 1.0)}, 1, false, 0},
    {"m a=1e3,b=-1.5E-3,c=.5,d=5.,e=1E+2,f=-0,g=0.1",
     "m",
     {NULL},
     {F_FLOAT("a", 1000.0), F_FLOAT("b", -1.5e-3), F_FLOAT("c", 0.5), F_FLOAT("d", 5.0),
      F_FLOAT("e", 100.0), F_FLOAT("f", -0.0), F_FLOAT("g", 0.1)},
     7,
     false,
     0},
    {"m a=1.7976931348623157e308,b=4.9e-324,c=123456789012345678,d=0.30000000000000004,"
     "e=2.2250738585072014e-308,f=9007199254740993,g=1e-400",
     "m",
     {NULL},
     {F_FLOAT("a", 1.7976931348623157e308), F_FLOAT("b", 4.9e-324),
      F_FLOAT("c", 123456789012345678.0), F_FLOAT("d", 0.30000000000000004),
      F_FLOAT("e", 2.2250738585072014e-308), F_FLOAT("f", 9007199254740992.0), F_FLOAT("g", 0.0)},
     7,
     false,
     0},
    {"m a=9223372036854775807i,b=-9223372036854775808i,c=0i,d=-0i,e=18446744073709551615u,f=0u",
     "m",
     {NULL},
     {F_INT("a", INT64_MAX), F_INT("b", INT64_MIN), F_INT("c", 0), F_INT("d", 0),
      F_UINT("e", UINT64_MAX), F_UINT("f", 0)},
     6,
     false,
     0},
    {"m a=t,b=T,c=true,d=True,e=TRUE",
     "m",
     {NULL},
     {F_BOOL("a", true), F_BOOL("b", true), F_BOOL("c", true), F_BOOL("d", true),
      F_BOOL("e", true)},
     5,
     false,
     0},
    {"m a=f,b=F,c=false,d=False,e=FALSE",
     "m",
     {NULL},
     {F_BOOL("a", false), F_BOOL("b", false), F_BOOL("c", false), F_BOOL("d", false),
      F_BOOL("e", false)},
     5,
     false,
     0},
    {"m a=\"\",b=\"x y,z=w\",c=\"q\\\"uote\",d=\"back\\\\slash\",e=\"keep\\x\" 5",
     "m",
     {NULL},
     {F_STRING("a", ""), F_STRING("b", "x y,z=w"), F_STRING("c", "q\"uote"),
      F_STRING("d", "back\\slash"), F_STRING("e", "keep\\x")},
     5,
     true,
     5},
    {"my\\ meas\\,x,k\\=1=a\\ b\\,c,t\\ 2=v f\\ k\\,\\==1i",
     "my meas,x",
     {"k=1", "a b,c", "t 2", "v"},
     {F_INT("f k,=", 1)},
     1,
     false,
     0},
    {"a=b f=1", "a=b", {NULL}, {F_FLOAT("f", 1.0)}, 1, false, 0},
    {"  \tcpu,host=a   usage=2   -42   ",
     "cpu",
     {"host", "a"},
     {F_FLOAT("usage", 2.0)},
     1,
     true,
     -42},
    {"m,t=a\\\\ f=1,f=2i", "m", {"t", "a\\"}, {F_FLOAT("f", 1.0), F_INT("f", 2)}, 2, false, 0},
    {"m,t=C:\\temp f=\"C:\\temp\"",
     "m",
     {"t", "C:\\temp"},
     {F_STRING("f", "C:\\temp")},
     1,
     false,
     0},
    {"caf\xc3\xa9,t=\xe2\x82\xac\xf0\x9f\x98\x80 \xc3\xa9=\"\xe6\x97\xa5\" "
     "-9223372036854775808",
     "caf\xc3\xa9",
     {"t", "\xe2\x82\xac\xf0\x9f\x98\x80"},
     {F_STRING("\xc3\xa9", "\xe6\x97\xa5")},
     1,
     true,
     INT64_MIN},
    {"m \"f\"=1,s=\"a\",x=1",
     "m",
     {NULL},
     {F_FLOAT("\"f\"", 1.0), F_STRING("s", "a"), F_FLOAT("x", 1.0)},
     3,
     false,
     0},
};

static void test_valid_lines(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof(valid_cases) / sizeof(valid_cases[0]); c++) {
        const struct valid_case *vc = &valid_cases[c];
        struct lp_error err = {0};
        int rc = lp_parse_line(vc->text, strlen(vc->text), NULL, &line, &err);
        if (rc != 0)
            fail_msg("case %zu `%s`: column %zu: %s", c, vc->text, err.column, err.reason);
        assert_string_equal(slice_text(&line.measurement), vc->measurement);
        size_t ntags = 0;
        while (ntags < 8 && vc->tags[ntags])
            ntags += 2;
        assert_int_equal(line.ntags, ntags / 2);
        for (size_t t = 0; t < line.ntags; t++) {
            assert_string_equal(slice_text(&line.tags[t].key), vc->tags[2 * t]);
            assert_string_equal(slice_text(&line.tags[t].value), vc->tags[2 * t + 1]);
        }
        assert_int_equal(line.nfields, vc->nfields);
        for (size_t i = 0; i < vc->nfields; i++) {
            const struct lp_field *f = &line.fields[i];
            const struct field_want *w = &vc->fields[i];
            assert_string_equal(slice_text(&f->key), w->key);
            if (f->type != w->type)
                fail_msg("case %zu field %zu: type %d, want %d", c, i, f->type, w->type);
            assert_ptr_equal(f->key.p, vc->text + f->column - 1);
            switch (w->type) {
            case LP_FIELD_FLOAT:
                if (!same_double(f->v.f, w->f))
                    fail_msg("case %zu field %s: %.17g, want %.17g", c, w->key, f->v.f, w->f);
                break;
            case LP_FIELD_INT:
                assert_true(f->v.i == w->i);
                break;
            case LP_FIELD_UINT:
                assert_true(f->v.u == w->u);
                break;
            case LP_FIELD_BOOL:
                assert_int_equal(f->v.b, w->b);
                break;
            case LP_FIELD_STRING:
                assert_string_equal(slice_text(&f->str), w->s);
                break;
            }
        }
        assert_int_equal(line.has_time, vc->has_time);
        if (vc->has_time)
            assert_true(line.time == vc->time);
    }
}

/* Decimal text must convert exactly as strtod does, on both the fast and the slow path. */
static void test_floats_match_strtod(void **state)
{
    (void)state;
    static const char *texts[] = {
        "0",
        "1",
        "-1",
        "3.14159",
        "2.5e-3",
        "1e22",
        "1e23",
        "9007199254740991",
        "9007199254740993",
        "0.1e-22",
        "123.456e10",
        "5e-324",
        "2.4703282292062327e-324",
        "1e-22",
        "-0.000001",
        "12345678901234567890",
        "1.00000000000000011102230246251565404236316680908203125",
        "6.02214076e23",
        "100000000000000000000000",
        ".000000000000000000000000001",
    };
    srand(7);
    char buf[64], text[96];
    for (size_t k = 0; k < sizeof(texts) / sizeof(texts[0]) + 5000; k++) {
        const char *t;
        if (k < sizeof(texts) / sizeof(texts[0])) {
            t = texts[k];
        } else {
            /* Random short decimals: mostly the fast path. */
            snprintf(buf, sizeof(buf), "%s%d.%0*de%d", rand() % 2 ? "-" : "", rand() % 100000,
                     rand() % 8, rand() % 1000000, rand() % 50 - 25);
            t = buf;
        }
        snprintf(text, sizeof(text), "m f=%s", t);
        struct lp_error err;
        int rc = lp_parse_line(text, strlen(text), NULL, &line, &err);
        if (rc != 0)
            fail_msg("`%s`: %s", text, err.reason);
        double want = strtod(t, NULL);
        if (!same_double(line.fields[0].v.f, want))
            fail_msg("`%s`: %.17g, strtod gives %.17g", t, line.fields[0].v.f, want);
    }
}

/* --- invalid lines ----------------------------------------------------------------------- */

struct invalid_case {
    const char *text;
    size_t len; /* 0: strlen(text) */
    size_t column;
    const char *reason; /* a substring of the reason */
};

static const struct invalid_case invalid_cases[] = {
    {"cpu usage=abc", 0, 11, "field `usage`: expected a number, got `abc`"},
    {"trade,profile=p pnl=abc", 0, 21, "field `pnl`: expected a number, got `abc`"},
    {"cpu", 0, 4, "missing fields"},
    {"cpu,host=a", 0, 11, "missing fields"},
    {"cpu ", 0, 5, "missing fields"},
    {"cpu   ", 0, 7, "missing fields"},
    {"", 0, 1, "missing measurement"},
    {",a=b f=1", 0, 1, "missing measurement"},
    {" ,a=b f=1", 0, 2, "missing measurement"},
    {"cpu,x f=1", 0, 5, "tag `x` has no value"},
    {"cpu,x= f=1", 0, 7, "tag `x` has no value"},
    {"cpu,x=,y=1 f=1", 0, 7, "tag `x` has no value"},
    {"cpu,x", 0, 5, "tag `x` has no value"},
    {"cpu,=v f=1", 0, 5, "empty tag key"},
    {"cpu, f=1", 0, 5, "empty tag key"},
    {"cpu,a=b, f=1", 0, 9, "empty tag key"},
    {"cpu,a=b=c f=1", 0, 8, "tag `a`: unescaped `=`"},
    {"cpu f", 0, 5, "field `f` has no value"},
    {"cpu f,g=1", 0, 5, "field `f` has no value"},
    {"cpu f=", 0, 7, "field `f` has no value"},
    {"cpu f= 1", 0, 7, "field `f` has no value"},
    {"cpu f=,g=1", 0, 7, "field `f` has no value"},
    {"cpu =1", 0, 5, "empty field key"},
    {"cpu f=1,", 0, 9, "missing field after `,`"},
    {"cpu f=1,,g=2", 0, 9, "missing field after `,`"},
    {"cpu f=1, 5", 0, 9, "missing field after `,`"},
    {"cpu f=NaN", 0, 7, "field `f`: NaN is not allowed"},
    {"cpu f=nan", 0, 7, "NaN is not allowed"},
    {"cpu f=-NaN", 0, 7, "NaN is not allowed"},
    {"cpu f=NaNi", 0, 7, "NaN is not allowed"},
    {"cpu f=inf", 0, 7, "infinity is not allowed"},
    {"cpu f=-Inf", 0, 7, "infinity is not allowed"},
    {"cpu f=+Infinity", 0, 7, "infinity is not allowed"},
    {"cpu f=1e400", 0, 7, "field `f`: `1e400` is out of range"},
    {"cpu f=-1e400", 0, 7, "out of range"},
    {"cpu f=9223372036854775808i", 0, 7, "out of range"},
    {"cpu f=-9223372036854775809i", 0, 7, "out of range"},
    {"cpu f=99999999999999999999999i", 0, 7, "out of range"},
    {"cpu f=18446744073709551616u", 0, 7, "out of range"},
    {"cpu f=-1u", 0, 7, "expected an unsigned integer, got `-1u`"},
    {"cpu f=1.5i", 0, 7, "expected an integer, got `1.5i`"},
    {"cpu f=i", 0, 7, "expected an integer"},
    {"cpu f=-i", 0, 7, "expected an integer"},
    {"cpu f=u", 0, 7, "expected an unsigned integer"},
    {"cpu f=tru", 0, 7, "field `f`: expected a boolean, got `tru`"},
    {"cpu f=truE", 0, 7, "expected a boolean"},
    {"cpu f=+1", 0, 7, "expected a number, got `+1`"},
    {"cpu f=0x10", 0, 7, "expected a number"},
    {"cpu f=1e", 0, 7, "expected a number"},
    {"cpu f=1e+", 0, 7, "expected a number"},
    {"cpu f=.", 0, 7, "expected a number"},
    {"cpu f=-", 0, 7, "expected a number"},
    {"cpu f=1..2", 0, 7, "expected a number"},
    {"cpu f=1.2.3", 0, 7, "expected a number"},
    {"cpu f=1_000", 0, 7, "expected a number"},
    {"cpu f= 1", 0, 7, "has no value"},
    {"cpu f=1=2", 0, 7, "expected a number, got `1=2`"},
    {"cpu f=\"abc", 0, 7, "field `f`: unterminated string"},
    {"cpu f=\"abc\\\"", 0, 7, "unterminated string"},
    {"cpu f=\"abc\\", 0, 7, "unterminated string"},
    {"cpu f=\"a\"x", 0, 10, "field `f`: unexpected `x` after the value"},
    {"cpu f=\"a\"\"", 0, 10, "unexpected"},
    {"cpu f=1 abc", 0, 9, "bad timestamp `abc`"},
    {"cpu f=1 1.5", 0, 9, "bad timestamp"},
    {"cpu f=1 -", 0, 9, "bad timestamp"},
    {"cpu f=1 1i", 0, 9, "bad timestamp"},
    {"cpu f=1 9223372036854775808", 0, 9, "bad timestamp `9223372036854775808`: out of range"},
    {"cpu f=1 -9223372036854775809", 0, 9, "out of range"},
    {"cpu f=1 1 2", 0, 11, "bad timestamp"},
    {"cpu\\", 0, 4, "measurement ends in a lone backslash"},
    {"cpu,t=a\\", 0, 8, "tag value ends in a lone backslash"},
    {"cpu f\\", 0, 6, "field key ends in a lone backslash"},
    {"\xff f=1", 0, 1, "invalid UTF-8 in measurement"},
    {"cpu,t=\xff f=1", 0, 7, "invalid UTF-8 in tag value"},
    {"cpu,t=ab\xc3 f=1", 0, 9, "invalid UTF-8 in tag value"},
    {"cpu,\xc3\x28=v f=1", 0, 5, "invalid UTF-8 in tag key"},
    {"cpu \xc0\xaf=1", 0, 5, "invalid UTF-8 in field key"},
    {"cpu f=\"\xed\xa0\x80\"", 0, 8, "invalid UTF-8 in field `f`"},
    {"cpu f=\"\xf4\x90\x80\x80\"", 0, 8, "invalid UTF-8"},
    {"cpu f=\"\xe0\x80\x80\"", 0, 8, "invalid UTF-8"},
    {"cpu,t=\\\xff f=1", 0, 8, "invalid UTF-8"},
    {"cpu,t=a\0b f=1", 13, 8, "NUL byte in tag value"},
    {"cpu f=\"a\0\"", 10, 9, "NUL byte in field `f`"},
    {"c\0u f=1", 7, 2, "NUL byte in measurement"},
};

static void test_invalid_lines(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof(invalid_cases) / sizeof(invalid_cases[0]); c++) {
        const struct invalid_case *ic = &invalid_cases[c];
        size_t len = ic->len ? ic->len : strlen(ic->text);
        struct lp_error err;
        memset(&err, 0, sizeof(err));
        err.line = 77;
        int rc = lp_parse_line(ic->text, len, NULL, &line, &err);
        if (rc != -EINVAL)
            fail_msg("case %zu `%s`: accepted (rc %d)", c, ic->text, rc);
        if (!strstr(err.reason, ic->reason) || err.column != ic->column)
            fail_msg("case %zu `%s`: column %zu `%s`; want column %zu `%s`", c, ic->text,
                     err.column, err.reason, ic->column, ic->reason);
        assert_int_equal(err.line, 77); /* left for the caller */
    }
}

static void test_error_quotes_are_bounded_and_clean(void **state)
{
    (void)state;
    char text[400];
    struct lp_error err;
    /* A long, binary value is cut and its control bytes are replaced. */
    snprintf(text, sizeof(text), "cpu f=\x01\x02%s", "abcdefghijklmnopqrstuvwxyzabcdefghijklmnop");
    assert_int_equal(lp_parse_line(text, strlen(text), NULL, &line, &err), -EINVAL);
    assert_non_null(strstr(err.reason, "got `??abc"));
    assert_non_null(strstr(err.reason, "...`"));
    for (const char *r = err.reason; *r; r++)
        assert_true((unsigned char)*r >= 0x20);
    /* A long key too. */
    memset(text, 'k', 300);
    memcpy(text, "cpu ", 4);
    memcpy(text + 300, "=x", 3);
    assert_int_equal(lp_parse_line(text, strlen(text), NULL, &line, &err), -EINVAL);
    assert_true(strlen(err.reason) < sizeof(err.reason) - 1);
    assert_non_null(strstr(err.reason, "expected a number"));
}

static void test_limits(void **state)
{
    (void)state;
    static char text[70000];
    struct lp_error err;
    struct lp_limits lim = {.line_max = 10};
    assert_int_equal(lp_parse_line("cpu f=1 12", 10, &lim, &line, &err), 0);
    assert_int_equal(lp_parse_line("cpu f=1 123", 11, &lim, &line, &err), -EINVAL);
    assert_int_equal(err.column, 11);
    assert_string_equal(err.reason, "line longer than 10 bytes");

    /* The default line limit is 65536 bytes. */
    memset(text, 'x', sizeof(text));
    memcpy(text, "cpu s=\"", 7);
    text[65535] = '"';
    assert_int_equal(lp_parse_line(text, 65536, NULL, &line, &err), 0);
    assert_int_equal(line.fields[0].str.len, 65536 - 8);
    assert_int_equal(lp_parse_line(text, 65537, NULL, &line, &err), -EINVAL);
    assert_string_equal(err.reason, "line longer than 65536 bytes");

    /* 64 tags and 64 fields are the hard maximum. */
    size_t n = (size_t)snprintf(text, sizeof(text), "m");
    for (int i = 0; i < 64; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, ",t%d=v", i);
    n += (size_t)snprintf(text + n, sizeof(text) - n, " ");
    for (int i = 0; i < 64; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "%sf%d=%di", i ? "," : "", i, i);
    assert_int_equal(lp_parse_line(text, n, NULL, &line, &err), 0);
    assert_int_equal(line.ntags, 64);
    assert_int_equal(line.nfields, 64);
    assert_true(line.fields[63].v.i == 63);
    n += (size_t)snprintf(text + n, sizeof(text) - n, ",f64=1");
    assert_int_equal(lp_parse_line(text, n, NULL, &line, &err), -EINVAL);
    assert_string_equal(err.reason, "more than 64 fields");
    assert_ptr_equal(text + err.column - 1, strstr(text, "f64=1"));

    n = (size_t)snprintf(text, sizeof(text), "m");
    for (int i = 0; i < 65; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, ",t%d=v", i);
    n += (size_t)snprintf(text + n, sizeof(text) - n, " f=1");
    assert_int_equal(lp_parse_line(text, n, NULL, &line, &err), -EINVAL);
    assert_string_equal(err.reason, "more than 64 tags");
    assert_ptr_equal(text + err.column - 1, strstr(text, "t64="));

    /* Lower settings, and settings above the hard maximum, which are clamped. */
    struct lp_limits small = {.tags_max = 2, .fields_max = 3};
    const char *ok = "m,a=1,b=2 x=1,y=2,z=3";
    assert_int_equal(lp_parse_line(ok, strlen(ok), &small, &line, &err), 0);
    const char *tags3 = "m,a=1,b=2,c=3 x=1";
    assert_int_equal(lp_parse_line(tags3, strlen(tags3), &small, &line, &err), -EINVAL);
    assert_string_equal(err.reason, "more than 2 tags");
    assert_int_equal(err.column, 11);
    const char *fields4 = "m x=1,y=2,z=3,w=4";
    assert_int_equal(lp_parse_line(fields4, strlen(fields4), &small, &line, &err), -EINVAL);
    assert_string_equal(err.reason, "more than 3 fields");
    struct lp_limits big = {.tags_max = 1000, .fields_max = 1000};
    assert_int_equal(lp_parse_line(ok, strlen(ok), &big, &line, &err), 0);

    /* Numbers beyond the strtod copy are refused rather than misread. */
    n = (size_t)snprintf(text, sizeof(text), "m f=0.");
    memset(text + n, '1', 500);
    n += 500;
    assert_int_equal(lp_parse_line(text, n, NULL, &line, &err), -EINVAL);
    assert_non_null(strstr(err.reason, "number longer than"));
}

/* The parser reads only the bytes it is given, whatever follows them. */
static void test_parse_reads_only_its_slice(void **state)
{
    (void)state;
    const char *text = "cpu f=1.5 123456";
    struct lp_error err;
    assert_int_equal(lp_parse_line(text, 9, NULL, &line, &err), 0); /* "cpu f=1.5" */
    assert_false(line.has_time);
    assert_true(same_double(line.fields[0].v.f, 1.5));
    assert_int_equal(lp_parse_line(text, 8, NULL, &line, &err), 0); /* "cpu f=1." */
    assert_true(same_double(line.fields[0].v.f, 1.0));
    assert_int_equal(lp_parse_line(text, 13, NULL, &line, &err), 0);
    assert_true(line.time == 123);

    char *heap = malloc(9);
    memcpy(heap, "cpu f=1.5", 9); /* no NUL: ASan catches any read past it */
    assert_int_equal(lp_parse_line(heap, 9, NULL, &line, &err), 0);
    memcpy(heap, "cpu f=1e5", 9);
    assert_int_equal(lp_parse_line(heap, 9, NULL, &line, &err), 0);
    assert_true(same_double(line.fields[0].v.f, 1e5));
    memcpy(heap, "m f=1e-50", 9); /* the strtod path */
    assert_int_equal(lp_parse_line(heap, 9, NULL, &line, &err), 0);
    assert_true(same_double(line.fields[0].v.f, 1e-50));
    free(heap);
}

/* --- body walking, precision, unescaping ------------------------------------------------- */

static void test_body_next(void **state)
{
    (void)state;
    const char *body = "# header\r\n"
                       "a f=1\r\n"
                       "\r\n"
                       "   \t \n"
                       "  # indented comment\n"
                       "  b f=2\n"
                       "\n"
                       "c f=3\r";
    const struct {
        size_t lineno;
        const char *text;
    } want[] = {{2, "a f=1"}, {6, "  b f=2"}, {8, "c f=3"}};
    size_t pos = 0, lineno = 0, start, len, k = 0;
    while (lp_body_next(body, strlen(body), &pos, &lineno, &start, &len)) {
        assert_true(k < 3);
        assert_int_equal(lineno, want[k].lineno);
        assert_int_equal(len, strlen(want[k].text));
        assert_memory_equal(body + start, want[k].text, len);
        k++;
    }
    assert_int_equal(k, 3);
    assert_int_equal(pos, strlen(body));
    /* At the end it keeps saying so. */
    assert_false(lp_body_next(body, strlen(body), &pos, &lineno, &start, &len));

    pos = lineno = 0;
    assert_false(lp_body_next("", 0, &pos, &lineno, &start, &len));
    pos = lineno = 0;
    assert_false(lp_body_next("\n\n# x\n\r\n", 8, &pos, &lineno, &start, &len));
    assert_int_equal(lineno, 4);

    /* A line without a final line feed, and a body cut in the middle of a CRLF. */
    const char *tail = "x f=1\ny f=2";
    pos = lineno = 0;
    assert_true(lp_body_next(tail, strlen(tail), &pos, &lineno, &start, &len));
    assert_true(lp_body_next(tail, strlen(tail), &pos, &lineno, &start, &len));
    assert_int_equal(lineno, 2);
    assert_int_equal(start, 6);
    assert_int_equal(len, 5);
    assert_false(lp_body_next(tail, strlen(tail), &pos, &lineno, &start, &len));

    /* Body lines feed lp_parse_line; columns count from the start of the line. */
    const char *two = "a,t=1 f=1\n  b f=abc\n";
    struct lp_error err;
    pos = lineno = 0;
    assert_true(lp_body_next(two, strlen(two), &pos, &lineno, &start, &len));
    assert_int_equal(lp_parse_line(two + start, len, NULL, &line, &err), 0);
    assert_true(lp_body_next(two, strlen(two), &pos, &lineno, &start, &len));
    assert_int_equal(lp_parse_line(two + start, len, NULL, &line, &err), -EINVAL);
    assert_int_equal(lineno, 2);
    assert_int_equal(err.column, 7);
}

static void test_precision_names(void **state)
{
    (void)state;
    const struct {
        const char *text;
        enum lp_precision want;
    } ok[] = {{NULL, LP_PREC_NS}, {"", LP_PREC_NS},  {"ns", LP_PREC_NS}, {"n", LP_PREC_NS},
              {"us", LP_PREC_US}, {"u", LP_PREC_US}, {"ms", LP_PREC_MS}, {"s", LP_PREC_S},
              {"m", LP_PREC_M},   {"h", LP_PREC_H}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        enum lp_precision p = LP_PREC_H;
        assert_int_equal(lp_parse_precision(ok[i].text, &p), 0);
        assert_int_equal(p, ok[i].want);
    }
    const char *bad[] = {"x", "NS", "sec", "mss", "d", " s"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        enum lp_precision p;
        assert_int_equal(lp_parse_precision(bad[i], &p), -EINVAL);
    }
}

static void test_unescape(void **state)
{
    (void)state;
    const struct {
        const char *raw;
        const char *want;
    } cases[] = {
        {"plain", "plain"}, {"a\\ b", "a b"},     {"a\\,b", "a,b"},         {"a\\=b", "a=b"},
        {"a\\\"b", "a\"b"}, {"a\\\\b", "a\\b"},   {"a\\xb", "a\\xb"},       {"\\\\\\,", "\\,"},
        {"end\\", "end\\"}, {"\\\\\\\\", "\\\\"}, {"C:\\temp", "C:\\temp"},
    };
    char buf[32];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct lp_slice s = {cases[i].raw, strlen(cases[i].raw), true};
        int n = lp_unescape(&s, buf, sizeof(buf));
        assert_int_equal(n, (int)strlen(cases[i].want));
        assert_string_equal(buf, cases[i].want);
    }
    /* An unescaped slice is copied as it is, backslashes included. */
    struct lp_slice raw = {"a\\,b", 4, false};
    assert_int_equal(lp_unescape(&raw, buf, sizeof(buf)), 4);
    assert_string_equal(buf, "a\\,b");
    /* Capacity counts the NUL. */
    struct lp_slice s = {"abc\\,", 5, true};
    assert_int_equal(lp_unescape(&s, buf, 5), 4);
    assert_string_equal(buf, "abc,");
    assert_int_equal(lp_unescape(&s, buf, 4), -ENAMETOOLONG);
    struct lp_slice p = {"abcd", 4, false};
    assert_int_equal(lp_unescape(&p, buf, 5), 4);
    assert_int_equal(lp_unescape(&p, buf, 4), -ENAMETOOLONG);
    assert_int_equal(lp_unescape(&p, buf, 0), -ENAMETOOLONG);
}

/* --- mapping ----------------------------------------------------------------------------- */

static const struct lp_map_options default_opts = {.now_ns = 1111};

/* map parses and maps text; returns lp_map_line's result (parse failures fail the test). */
static int map_text(const char *text, const struct lp_map_options *opt, size_t *n,
                    struct lp_error *err)
{
    int rc = lp_parse_line(text, strlen(text), NULL, &line, err);
    if (rc != 0)
        fail_msg("`%s` does not parse: %s", text, err->reason);
    memset(recs, 0xa5, sizeof(recs));
    return lp_map_line(&line, opt, recs, LP_FIELDS_MAX, n, err);
}

static void expect_map_error(const char *text, const struct lp_map_options *opt, size_t column,
                             const char *reason)
{
    struct lp_error err;
    size_t n = 99;
    memset(&err, 0, sizeof(err));
    int rc = map_text(text, opt, &n, &err);
    if (rc != -EINVAL || !strstr(err.reason, reason) || err.column != column)
        fail_msg("`%s`: rc %d column %zu `%s`; want column %zu `%s`", text, rc, err.column,
                 err.reason, column, reason);
}

static void test_map_trade(void **state)
{
    (void)state;
    struct lp_error err;
    size_t n;
    const char *text = "trade,profile=p0001,script=exec,symbol=AAPL,side=buy,host=box qty=10,"
                       "entry_price=189.25,exit_price=190.5,pnl=12.5,fees=0.35,"
                       "opened_at=1764201500000000000i,trade_id=\"t-1\" 1764201600000000000";
    assert_int_equal(map_text(text, &default_opts, &n, &err), 0);
    assert_int_equal(n, 1);
    const struct record *r = &recs[0];
    assert_int_equal(r->kind, RECORD_TRADE);
    assert_int_equal(r->seq, 0);
    assert_true(r->ts_ns == 1764201600000000000);
    assert_int_equal(r->present, REC_HAS_QTY | REC_HAS_ENTRY_PRICE | REC_HAS_EXIT_PRICE |
                                     REC_HAS_PNL | REC_HAS_FEES | REC_HAS_OPENED_AT);
    assert_string_equal(r->profile, "p0001");
    assert_int_equal(r->profile_len, 5);
    assert_string_equal(r->script, "exec");
    assert_int_equal(r->script_len, 4);
    assert_string_equal(r->symbol, "AAPL");
    assert_int_equal(r->symbol_len, 4);
    assert_string_equal(r->side, "buy");
    assert_int_equal(r->side_len, 3);
    assert_string_equal(r->trade_id, "t-1");
    assert_int_equal(r->trade_id_len, 3);
    assert_int_equal(r->name_len, 0);
    assert_true(r->qty == 10 && r->entry_price == 189.25 && r->exit_price == 190.5 &&
                r->pnl == 12.5 && r->fees == 0.35);
    assert_true(r->opened_at_ns == 1764201500000000000);

    /* Only what is given is present; integers become doubles; no timestamp means now. */
    assert_int_equal(
        map_text("trade,profile=p,symbol=X pnl=-3i,qty=2u,trade_id=\"\"", &default_opts, &n, &err),
        0);
    r = &recs[0];
    assert_int_equal(r->present, REC_HAS_PNL | REC_HAS_QTY);
    assert_true(r->pnl == -3.0 && r->qty == 2.0 && r->fees == 0.0);
    assert_int_equal(r->trade_id_len, 0);
    assert_int_equal(r->script_len, 0);
    assert_int_equal(r->side_len, 0);
    assert_string_equal(r->script, "");
    assert_true(r->ts_ns == 1111);

    /* Escapes are undone; duplicate keys: the last one wins. */
    assert_int_equal(map_text("trade,profile=a,profile=my\\ prof\\,1,side=buy,side=sell "
                              "pnl=1,pnl=2,trade_id=\"x\\\"y\" 5",
                              &default_opts, &n, &err),
                     0);
    assert_string_equal(recs[0].profile, "my prof,1");
    assert_string_equal(recs[0].side, "sell");
    assert_true(recs[0].pnl == 2.0);
    assert_string_equal(recs[0].trade_id, "x\"y");
}

static void test_map_trade_rejects(void **state)
{
    (void)state;
    expect_map_error("trade,profile=p qty=1,bogus=2", &default_opts, 23,
                     "unknown trade field `bogus`");
    expect_map_error("trade,profile=p qty=t", &default_opts, 17,
                     "field `qty`: expected a number, got a boolean");
    expect_map_error("trade,profile=p fees=\"1\"", &default_opts, 17,
                     "field `fees`: expected a number, got a string");
    expect_map_error("trade,profile=p opened_at=1.5", &default_opts, 17,
                     "field `opened_at`: expected an integer");
    expect_map_error("trade,profile=p trade_id=5i", &default_opts, 17,
                     "field `trade_id`: expected a string, got an integer");
    expect_map_error("trade,script=s pnl=1", &default_opts, 0, "missing tag `profile`");
    expect_map_error("trade,profile=p opened_at=18446744073709551615u", &default_opts, 17,
                     "field `opened_at`: out of range");
}

static void test_map_metrics(void **state)
{
    (void)state;
    struct lp_error err;
    size_t n;
    assert_int_equal(map_text("strategy,profile=p7,script=signals,host=h win_rate=0.61,armed=t,"
                              "note=\"hi\",count=12u,off=F,delta=-4i 1700000000000000000",
                              &default_opts, &n, &err),
                     0);
    assert_int_equal(n, 5);
    const char *names[] = {"strategy.win_rate", "strategy.armed", "strategy.count", "strategy.off",
                           "strategy.delta"};
    const double values[] = {0.61, 1.0, 12.0, 0.0, -4.0};
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(recs[i].kind, RECORD_METRIC);
        assert_string_equal(recs[i].name, names[i]);
        assert_int_equal(recs[i].name_len, strlen(names[i]));
        assert_true(recs[i].value == values[i]);
        assert_string_equal(recs[i].profile, "p7");
        assert_string_equal(recs[i].script, "signals");
        assert_int_equal(recs[i].symbol_len, 0);
        assert_int_equal(recs[i].present, 0);
        assert_true(recs[i].ts_ns == 1700000000000000000);
    }

    /* Measurement `metric`: the field is the name. Symbol and side are not metric tags. */
    assert_int_equal(
        map_text("metric,profile=p,symbol=X strategy.equity=10250.5", &default_opts, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(recs[0].name, "strategy.equity");
    assert_true(recs[0].value == 10250.5);
    assert_int_equal(recs[0].symbol_len, 0);
    assert_true(recs[0].ts_ns == 1111);

    /* Escaped measurement and key are unescaped into the name. */
    assert_int_equal(map_text("my\\ m,profile=p a\\=b=1", &default_opts, &n, &err), 0);
    assert_string_equal(recs[0].name, "my m.a=b");

    /* No numeric field: valid, no records (the profile is still required). */
    n = 99;
    assert_int_equal(map_text("log,profile=p msg=\"x\",other=\"y\"", &default_opts, &n, &err), 0);
    assert_int_equal(n, 0);
    expect_map_error("log msg=\"x\"", &default_opts, 0, "missing tag `profile`");

    /* Not enough room is -ENOSPC. */
    assert_int_equal(lp_parse_line("m,profile=p a=1,b=2,c=3", 23, NULL, &line, &err), 0);
    assert_int_equal(lp_map_line(&line, &default_opts, recs, 2, &n, &err), -ENOSPC);
    assert_int_equal(lp_map_line(&line, &default_opts, recs, 3, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(lp_parse_line("trade,profile=p a=1", 19, NULL, &line, &err), 0);
    assert_int_equal(lp_map_line(&line, &default_opts, recs, 0, &n, &err), -ENOSPC);

    /* A hand-made line with NaN (the parser never makes one) is still refused. */
    assert_int_equal(lp_parse_line("m,profile=p x=1", 15, NULL, &line, &err), 0);
    line.fields[0].v.f = NAN;
    assert_int_equal(lp_map_line(&line, &default_opts, recs, 4, &n, &err), -EINVAL);
    assert_non_null(strstr(err.reason, "field `x`: NaN is not allowed"));
    line.fields[0].v.f = -INFINITY;
    assert_int_equal(lp_map_line(&line, &default_opts, recs, 4, &n, &err), -EINVAL);
    assert_non_null(strstr(err.reason, "infinity is not allowed"));
}

static void test_map_profile_options(void **state)
{
    (void)state;
    struct lp_error err;
    size_t n;
    struct lp_map_options dflt = {.default_profile = "fallback", .now_ns = 1};
    assert_int_equal(map_text("metric,host=h x=1", &dflt, &n, &err), 0);
    assert_string_equal(recs[0].profile, "fallback");
    assert_int_equal(recs[0].profile_len, 8);
    assert_int_equal(map_text("metric,profile=own x=1", &dflt, &n, &err), 0);
    assert_string_equal(recs[0].profile, "own");

    struct lp_map_options empty = {.default_profile = "", .now_ns = 1};
    expect_map_error("metric x=1", &empty, 0, "missing tag `profile`");

    struct lp_map_options by_host = {.profile_tag = "host", .now_ns = 1};
    assert_int_equal(map_text("trade,profile=ignored,host=box7 pnl=1", &by_host, &n, &err), 0);
    assert_string_equal(recs[0].profile, "box7");
    expect_map_error("metric,profile=p x=1", &by_host, 0, "missing tag `host`");

    char longdef[80];
    memset(longdef, 'd', 65);
    longdef[65] = '\0';
    struct lp_map_options toolong = {.default_profile = longdef, .now_ns = 1};
    expect_map_error("metric x=1", &toolong, 0, "default profile: 65 bytes, the limit is 64");
}

static void test_map_lengths(void **state)
{
    (void)state;
    char text[1024], v[300];
    struct lp_error err;
    size_t n;

    /* At the limit is fine; one byte more is refused, naming the tag and the limit. */
    memset(v, 's', 32);
    v[32] = '\0';
    snprintf(text, sizeof(text), "trade,profile=p,symbol=%s pnl=1", v);
    assert_int_equal(map_text(text, &default_opts, &n, &err), 0);
    assert_int_equal(recs[0].symbol_len, 32);
    snprintf(text, sizeof(text), "trade,profile=p,symbol=%s9 pnl=1", v);
    expect_map_error(text, &default_opts, 24, "tag `symbol`: 33 bytes, the limit is 32");
    memset(v, 's', 40);
    v[40] = '\0';
    snprintf(text, sizeof(text), "trade,profile=p,symbol=%s pnl=1", v);
    expect_map_error(text, &default_opts, 24, "tag `symbol`: 40 bytes, the limit is 32");

    memset(v, 'p', 64);
    v[64] = '\0';
    snprintf(text, sizeof(text), "metric,profile=%s x=1", v);
    assert_int_equal(map_text(text, &default_opts, &n, &err), 0);
    assert_int_equal(recs[0].profile_len, 64);
    snprintf(text, sizeof(text), "metric,profile=%sp x=1", v);
    expect_map_error(text, &default_opts, 16, "tag `profile`: 65 bytes, the limit is 64");
    /* Escapes count once they are undone: 62 + 2 escaped bytes = 64. */
    snprintf(text, sizeof(text), "metric,profile=%.62s\\,\\  x=1", v);
    assert_int_equal(map_text(text, &default_opts, &n, &err), 0);
    assert_int_equal(recs[0].profile_len, 64);
    snprintf(text, sizeof(text), "metric,profile=%.63s\\,\\  x=1", v);
    expect_map_error(text, &default_opts, 16, "tag `profile`: 65 bytes, the limit is 64");

    snprintf(text, sizeof(text), "metric,profile=p,script=%sp x=1", v);
    expect_map_error(text, &default_opts, 25, "tag `script`: 65 bytes, the limit is 64");
    memset(v, 'b', 16);
    v[16] = '\0';
    snprintf(text, sizeof(text), "trade,profile=p,side=%s pnl=1", v);
    assert_int_equal(map_text(text, &default_opts, &n, &err), 0);
    snprintf(text, sizeof(text), "trade,profile=p,side=%sb pnl=1", v);
    expect_map_error(text, &default_opts, 22, "tag `side`: 17 bytes, the limit is 16");

    memset(v, 't', 64);
    v[64] = '\0';
    snprintf(text, sizeof(text), "trade,profile=p trade_id=\"%s\"", v);
    assert_int_equal(map_text(text, &default_opts, &n, &err), 0);
    assert_int_equal(recs[0].trade_id_len, 64);
    snprintf(text, sizeof(text), "trade,profile=p trade_id=\"%st\"", v);
    expect_map_error(text, &default_opts, 27, "field `trade_id`: 65 bytes, the limit is 64");

    /* Metric names: M.F up to 128 bytes. */
    memset(v, 'n', 300);
    snprintf(text, sizeof(text), "metric,profile=p %.128s=1", v);
    assert_int_equal(map_text(text, &default_opts, &n, &err), 0);
    assert_int_equal(recs[0].name_len, 128);
    snprintf(text, sizeof(text), "metric,profile=p %.129s=1", v);
    expect_map_error(text, &default_opts, 18, "metric name `");
    snprintf(text, sizeof(text), "%.120s,profile=p abcdefg=1", v); /* 120 + 1 + 7 = 128 */
    assert_int_equal(map_text(text, &default_opts, &n, &err), 0);
    assert_int_equal(recs[0].name_len, 128);
    snprintf(text, sizeof(text), "%.120s,profile=p abcdefgh=1", v);
    expect_map_error(text, &default_opts, 132, "129 bytes, the limit is 128");
    snprintf(text, sizeof(text), "%.127s,profile=p a=1", v); /* 127 + 1 + 1 = 129 */
    expect_map_error(text, &default_opts, 139, "129 bytes, the limit is 128");
    snprintf(text, sizeof(text), "%.250s,profile=p a=1", v);
    expect_map_error(text, &default_opts, 262, "252 bytes, the limit is 128");
    /* An overlong measurement with only string fields makes no name, so no error. */
    snprintf(text, sizeof(text), "%.250s,profile=p a=\"x\"", v);
    assert_int_equal(map_text(text, &default_opts, &n, &err), 0);
    assert_int_equal(n, 0);
}

static void test_map_precision(void **state)
{
    (void)state;
    const struct {
        enum lp_precision prec;
        int64_t want;
    } cases[] = {
        {LP_PREC_NS, 5},         {LP_PREC_US, 5000},        {LP_PREC_MS, 5000000},
        {LP_PREC_S, 5000000000}, {LP_PREC_M, 300000000000}, {LP_PREC_H, 18000000000000},
    };
    struct lp_error err;
    size_t n;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct lp_map_options o = {.precision = cases[i].prec, .now_ns = 1};
        assert_int_equal(map_text("trade,profile=p opened_at=5i,pnl=1 5", &o, &n, &err), 0);
        assert_true(recs[0].ts_ns == cases[i].want);
        assert_true(recs[0].opened_at_ns == cases[i].want);
        assert_int_equal(map_text("trade,profile=p opened_at=5u,pnl=1 -5", &o, &n, &err), 0);
        assert_true(recs[0].ts_ns == -cases[i].want);
        assert_true(recs[0].opened_at_ns == cases[i].want);
        /* The arrival time is already in nanoseconds. */
        assert_int_equal(map_text("m,profile=p x=1", &o, &n, &err), 0);
        assert_true(recs[0].ts_ns == 1);
    }

    struct lp_map_options s = {.precision = LP_PREC_S, .now_ns = 1};
    assert_int_equal(map_text("m,profile=p x=1 9223372036", &s, &n, &err), 0);
    assert_true(recs[0].ts_ns == 9223372036000000000);
    expect_map_error("m,profile=p x=1 9223372037", &s, 0, "bad timestamp: 9223372037s is out");
    expect_map_error("m,profile=p x=1 -9223372037", &s, 0, "bad timestamp");
    struct lp_map_options h = {.precision = LP_PREC_H, .now_ns = 1};
    expect_map_error("trade,profile=p opened_at=2562048i", &h, 17,
                     "field `opened_at`: out of range");
    assert_int_equal(map_text("trade,profile=p opened_at=2562047i", &h, &n, &err), 0);
    struct lp_map_options ns = {.precision = LP_PREC_NS, .now_ns = 1};
    assert_int_equal(map_text("m,profile=p x=1 -9223372036854775808", &ns, &n, &err), 0);
    assert_true(recs[0].ts_ns == INT64_MIN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_lines),
        cmocka_unit_test(test_floats_match_strtod),
        cmocka_unit_test(test_invalid_lines),
        cmocka_unit_test(test_error_quotes_are_bounded_and_clean),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_parse_reads_only_its_slice),
        cmocka_unit_test(test_body_next),
        cmocka_unit_test(test_precision_names),
        cmocka_unit_test(test_unescape),
        cmocka_unit_test(test_map_trade),
        cmocka_unit_test(test_map_trade_rejects),
        cmocka_unit_test(test_map_metrics),
        cmocka_unit_test(test_map_profile_options),
        cmocka_unit_test(test_map_lengths),
        cmocka_unit_test(test_map_precision),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
