/*
 * test_dead_letter.c: unit tests of the quarantine file (src/sink/dead_letter.c): the exact
 * JSON line of a trade and of a metric, absent fields as null, escaping of quotes, control
 * characters and invalid UTF-8, non-finite numbers, the bound on the line, lazy creation,
 * appending, and a path that cannot be written.
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
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/record.h"
#include "sink/dead_letter.h"

/* 2026-11-27T02:46:09.123456789Z */
#define TEST_WALL_NS 1795747569123456789LL

static void set_text(char *dst, uint8_t *len, const char *src, size_t n)
{
    *len = (uint8_t)n;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static struct record full_trade(void)
{
    struct record r;
    memset(&r, 0, sizeof(r));
    r.seq = 37;
    r.kind = RECORD_TRADE;
    r.ts_ns = 1700000000123456789LL;
    set_text(r.profile, &r.profile_len, "p1", 2);
    set_text(r.script, &r.script_len, "exec", 4);
    set_text(r.symbol, &r.symbol_len, "BTCUSDT", 7);
    set_text(r.side, &r.side_len, "buy", 3);
    set_text(r.trade_id, &r.trade_id_len, "T-1", 3);
    r.present = REC_HAS_QTY | REC_HAS_ENTRY_PRICE | REC_HAS_EXIT_PRICE | REC_HAS_PNL |
                REC_HAS_FEES | REC_HAS_OPENED_AT;
    r.qty = 1.5;
    r.entry_price = 100.25;
    r.exit_price = 0.1;
    r.pnl = -2;
    r.fees = 0;
    r.opened_at_ns = -5;
    return r;
}

static void test_trade_line(void **state)
{
    (void)state;
    struct record r = full_trade();
    char line[DEAD_LETTER_LINE_MAX];
    int n =
        dead_letter_format(&r, "main", "CHECK constraint failed", TEST_WALL_NS, line, sizeof(line));
    const char *want =
        "{\"time\":\"2026-11-27T02:46:09.123456Z\",\"sink\":\"main\","
        "\"reason\":\"CHECK constraint failed\",\"seq\":37,\"kind\":\"trade\","
        "\"ts_ns\":1700000000123456789,\"profile\":\"p1\",\"script\":\"exec\","
        "\"symbol\":\"BTCUSDT\",\"side\":\"buy\",\"qty\":1.5,\"entry_price\":100.25,"
        "\"exit_price\":0.10000000000000001,\"pnl\":-2,\"fees\":0,\"opened_at_ns\":-5,"
        "\"trade_id\":\"T-1\"}\n";
    assert_string_equal(line, want);
    assert_int_equal(n, (int)strlen(want));
}

static void test_absent_fields_are_null(void **state)
{
    (void)state;
    struct record r;
    memset(&r, 0, sizeof(r));
    r.seq = 5;
    r.kind = RECORD_TRADE;
    r.ts_ns = -1;
    set_text(r.profile, &r.profile_len, "p", 1);
    char line[DEAD_LETTER_LINE_MAX];
    assert_true(dead_letter_format(&r, "s", "", -1, line, sizeof(line)) > 0);
    assert_string_equal(line, "{\"time\":\"1969-12-31T23:59:59.999999Z\",\"sink\":\"s\","
                              "\"reason\":\"\",\"seq\":5,\"kind\":\"trade\",\"ts_ns\":-1,"
                              "\"profile\":\"p\",\"script\":\"\",\"symbol\":\"\",\"side\":\"\","
                              "\"qty\":null,\"entry_price\":null,\"exit_price\":null,"
                              "\"pnl\":null,\"fees\":null,\"opened_at_ns\":null,"
                              "\"trade_id\":null}\n");
}

static void test_metric_line(void **state)
{
    (void)state;
    struct record r;
    memset(&r, 0, sizeof(r));
    r.seq = 90;
    r.kind = RECORD_METRIC;
    r.ts_ns = 42;
    set_text(r.profile, &r.profile_len, "p2", 2);
    set_text(r.name, &r.name_len, "equity", 6);
    r.value = NAN;
    char line[DEAD_LETTER_LINE_MAX];
    assert_true(dead_letter_format(&r, "main", "NOT NULL constraint failed", TEST_WALL_NS, line,
                                   sizeof(line)) > 0);
    assert_non_null(strstr(line, "\"seq\":90,\"kind\":\"metric\",\"ts_ns\":42,\"profile\":\"p2\","
                                 "\"script\":\"\",\"name\":\"equity\",\"value\":\"nan\"}\n"));
    assert_null(strstr(line, "qty"));
    r.value = -INFINITY;
    assert_true(dead_letter_format(&r, "main", "x", TEST_WALL_NS, line, sizeof(line)) > 0);
    assert_non_null(strstr(line, "\"value\":\"-inf\"}"));
}

static void test_escaping(void **state)
{
    (void)state;
    struct record r;
    memset(&r, 0, sizeof(r));
    r.seq = 1;
    r.kind = RECORD_METRIC;
    /* A quote, a backslash, a tab, DEL, valid UTF-8 (e-acute, euro, G clef), then a stray
     * continuation byte, an overlong encoding and a truncated sequence. */
    const char name[] = "a\"b\\c\td\x7f"
                        "\xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e"
                        "\x80\xc0\xaf\xe2\x82";
    set_text(r.name, &r.name_len, name, sizeof(name) - 1);
    set_text(r.profile, &r.profile_len, "p", 1);
    char line[DEAD_LETTER_LINE_MAX];
    assert_true(dead_letter_format(&r, "main", "line1\nline2", 0, line, sizeof(line)) > 0);
    assert_non_null(strstr(line, "\"name\":\"a\\\"b\\\\c\\u0009d\\u007f"
                                 "\xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e"
                                 "\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\""));
    assert_non_null(strstr(line, "\"reason\":\"line1\\u000aline2\""));
    assert_non_null(strstr(line, "\"time\":\"1970-01-01T00:00:00.000000Z\""));
    /* One line: the only newline is the last byte. */
    assert_ptr_equal(strchr(line, '\n'), line + strlen(line) - 1);
}

static void test_bounded(void **state)
{
    (void)state;
    /* The worst record: every string at its longest and made of bytes that escape to six. */
    struct record r;
    memset(&r, 0, sizeof(r));
    r.kind = RECORD_TRADE;
    r.present = 0xff;
    r.qty = r.entry_price = r.exit_price = r.pnl = r.fees = -1.2345678901234567e-300;
    r.seq = UINT64_MAX;
    r.ts_ns = r.opened_at_ns = INT64_MIN;
    memset(r.profile, 1, REC_PROFILE_MAX);
    r.profile_len = REC_PROFILE_MAX;
    memset(r.script, 1, REC_SCRIPT_MAX);
    r.script_len = REC_SCRIPT_MAX;
    memset(r.symbol, 1, REC_SYMBOL_MAX);
    r.symbol_len = REC_SYMBOL_MAX;
    memset(r.side, 1, REC_SIDE_MAX);
    r.side_len = REC_SIDE_MAX;
    memset(r.trade_id, 1, REC_TRADE_ID_MAX);
    r.trade_id_len = REC_TRADE_ID_MAX;
    char text[1000];
    memset(text, 1, sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    char line[DEAD_LETTER_LINE_MAX];
    int n = dead_letter_format(&r, text, text, INT64_MIN, line, sizeof(line));
    assert_true(n > 0 && n < DEAD_LETTER_LINE_MAX);
    r.kind = RECORD_METRIC;
    memset(r.name, 1, REC_NAME_MAX);
    r.name_len = REC_NAME_MAX;
    n = dead_letter_format(&r, text, text, INT64_MAX, line, sizeof(line));
    assert_true(n > 0 && n < DEAD_LETTER_LINE_MAX);
    /* Too small a buffer is an error, never a cut line. */
    char small[64];
    assert_int_equal(dead_letter_format(&r, "main", "x", 0, small, sizeof(small)), -ENOSPC);
}

static void test_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_dead_letter.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[96];
    snprintf(path, sizeof(path), "%s/dead-letter.main.jsonl", dir);

    struct dead_letter *dl = dead_letter_create(path);
    assert_string_equal(dead_letter_path(dl), path);
    assert_int_equal(access(path, F_OK), -1); /* nothing quarantined, no file */
    struct record r = full_trade();
    assert_int_equal(dead_letter_write(dl, &r, "main", "first"), 0);
    r.seq = 38;
    assert_int_equal(dead_letter_write(dl, &r, "main", "second"), 0);
    dead_letter_destroy(dl);

    /* A new instance appends. */
    dl = dead_letter_create(path);
    r.seq = 39;
    assert_int_equal(dead_letter_write(dl, &r, "main", "third"), 0);
    dead_letter_destroy(dl);

    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[DEAD_LETTER_LINE_MAX];
    const char *want[] = {"\"reason\":\"first\",\"seq\":37,", "\"reason\":\"second\",\"seq\":38,",
                          "\"reason\":\"third\",\"seq\":39,"};
    for (int i = 0; i < 3; i++) {
        assert_non_null(fgets(line, sizeof(line), f));
        assert_non_null(strstr(line, want[i]));
    }
    assert_null(fgets(line, sizeof(line), f));
    fclose(f);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0640);

    /* A folder that does not exist: an error, not a crash; destroy accepts NULL. */
    snprintf(path, sizeof(path), "%s/missing/dead.jsonl", dir);
    dl = dead_letter_create(path);
    assert_int_equal(dead_letter_write(dl, &r, "main", "x"), -ENOENT);
    dead_letter_destroy(dl);
    dead_letter_destroy(NULL);

    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trade_line),  cmocka_unit_test(test_absent_fields_are_null),
        cmocka_unit_test(test_metric_line), cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_bounded),     cmocka_unit_test(test_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
