/*
 * test_output_format.c: telemctl's table, CSV and JSON writers (src/cli/output_format.c):
 * exact bytes for each format, quoting and escaping of awkward strings, NULLs, shortest exact
 * reals, RFC 3339 times, and the empty result.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/output_format.h"

static const struct out_column cols[] = {
    {"seq", OUT_INT},
    {"profile", OUT_STR},
    {"pnl", OUT_REAL},
    {"ts", OUT_TIME_US},
};

/* render writes rows through a writer of fmt and returns the output; caller frees it. */
static char *render(enum out_format fmt, const struct out_value (*rows)[4], size_t nrows)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    struct out_writer *w = out_writer_create(fmt, cols, 4, f);
    for (size_t i = 0; i < nrows; i++)
        assert_int_equal(out_writer_row(w, rows[i]), 0);
    assert_int_equal(out_writer_rows(w), nrows);
    assert_int_equal(out_writer_finish(w), 0);
    out_writer_destroy(w);
    fclose(f);
    return buf;
}

static const struct out_value two_rows[2][4] = {
    {{.i = 1}, {.s = "alpha"}, {.d = 12.5}, {.i = 1795860000000000}},
    {{.i = 22}, {.s = "b"}, {.null = true}, {.i = 1795860000123456}},
};

static void test_table_aligns_columns(void **state)
{
    char *out = render(OUT_TABLE, two_rows, 2);
    assert_string_equal(out, "seq  profile   pnl  ts\n"
                             "  1  alpha    12.5  2026-11-28T10:00:00Z\n"
                             " 22  b           -  2026-11-28T10:00:00.123456Z\n");
    free(out);
}

static void test_csv_quotes_and_nulls(void **state)
{
    const struct out_value rows[2][4] = {
        {{.i = 1}, {.s = "a,b \"q\""}, {.d = -0.1}, {.i = 0}},
        {{.i = 2}, {.s = " lead"}, {.null = true}, {.i = -1}},
    };
    char *out = render(OUT_CSV, rows, 2);
    assert_string_equal(out, "seq,profile,pnl,ts\n"
                             "1,\"a,b \"\"q\"\"\",-0.1,1970-01-01T00:00:00Z\n"
                             "2,\" lead\",,1969-12-31T23:59:59.999999Z\n");
    free(out);
}

static void test_json_escapes_and_types(void **state)
{
    const struct out_value rows[2][4] = {
        {{.i = 7}, {.s = "q\"\\\n\x01"}, {.d = 3}, {.i = 1795860000000000}},
        {{.i = 8}, {.null = true}, {.d = INFINITY}, {.i = 1795860000000000}},
    };
    char *out = render(OUT_JSON, rows, 2);
    assert_string_equal(out, "[\n"
                             "  {\"seq\": 7, \"profile\": \"q\\\"\\\\\\n\\u0001\", \"pnl\": 3, "
                             "\"ts\": \"2026-11-28T10:00:00Z\"},\n"
                             "  {\"seq\": 8, \"profile\": null, \"pnl\": null, "
                             "\"ts\": \"2026-11-28T10:00:00Z\"}\n"
                             "]\n");
    free(out);
}

static void test_empty_results(void **state)
{
    char *out = render(OUT_JSON, NULL, 0);
    assert_string_equal(out, "[]\n");
    free(out);
    out = render(OUT_CSV, NULL, 0);
    assert_string_equal(out, "seq,profile,pnl,ts\n");
    free(out);
    out = render(OUT_TABLE, NULL, 0);
    assert_string_equal(out, "seq  profile  pnl  ts\n");
    free(out);
}

static void test_real_is_shortest_exact(void **state)
{
    char buf[64];
    const double values[] = {0.1,     1.0 / 3.0,           1e21, -3,   123456.789,
                             5e-324,  0.30000000000000004, 100,  -0.0, 1500000,
                             42100.75};
    const char *expect[] = {"0.1",     "0.3333333333333333",  "1e+21", "-3", "123456.789",
                            "5e-324",  "0.30000000000000004", "100",   "0",  "1500000",
                            "42100.75"};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        out_format_real(values[i], buf, sizeof(buf));
        assert_string_equal(buf, expect[i]);
        assert_true(strtod(buf, NULL) == values[i]);
    }
}

static void test_time_formats(void **state)
{
    char buf[64];
    out_format_time_us(0, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T00:00:00Z");
    out_format_time_us(1795860000000001, buf, sizeof(buf));
    assert_string_equal(buf, "2026-11-28T10:00:00.000001Z");
    out_format_time_us(-1500000, buf, sizeof(buf));
    assert_string_equal(buf, "1969-12-31T23:59:58.500000Z");
}

static void test_format_parse(void **state)
{
    enum out_format f;
    assert_int_equal(out_format_parse("table", &f), 0);
    assert_int_equal(f, OUT_TABLE);
    assert_int_equal(out_format_parse("csv", &f), 0);
    assert_int_equal(f, OUT_CSV);
    assert_int_equal(out_format_parse("json", &f), 0);
    assert_int_equal(f, OUT_JSON);
    assert_int_not_equal(out_format_parse("JSON", &f), 0);
    assert_int_not_equal(out_format_parse("", &f), 0);
    assert_int_not_equal(out_format_parse(NULL, &f), 0);
}

static void test_table_counts_utf8_width(void **state)
{
    const struct out_value rows[1][4] = {
        {{.i = 1}, {.s = "zürich"}, {.d = 1}, {.i = 0}},
    };
    char *out = render(OUT_TABLE, rows, 1);
    assert_string_equal(out, "seq  profile  pnl  ts\n"
                             "  1  zürich     1  1970-01-01T00:00:00Z\n");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_aligns_columns),
        cmocka_unit_test(test_csv_quotes_and_nulls),
        cmocka_unit_test(test_json_escapes_and_types),
        cmocka_unit_test(test_empty_results),
        cmocka_unit_test(test_real_is_shortest_exact),
        cmocka_unit_test(test_time_formats),
        cmocka_unit_test(test_format_parse),
        cmocka_unit_test(test_table_counts_utf8_width),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
