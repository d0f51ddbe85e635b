/*
 * test_report_stats.c: the per-profile figures of `telemctl report` (src/cli/report_stats.c):
 * wins and losses on net results, profit factor edge cases, and max drawdown walked in
 * close-time order from a starting equity of 0.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli/report_stats.h"

static void add(struct report_stats *s, double pnl, double fees, int64_t t)
{
    report_stats_add(s, true, pnl, true, fees, t);
}

static void test_mixed_trades(void **state)
{
    struct report_stats s;
    report_stats_reset(&s);
    add(&s, 10, 1, 100);  /* net  9, equity  9, peak 9 */
    add(&s, -5, 1, 200);  /* net -6, equity  3, dd 6 */
    add(&s, 1, 1, 300);   /* net  0: neither win nor loss */
    add(&s, -10, 0, 400); /* net -10, equity -7, dd 16 */
    add(&s, 30, 2, 500);  /* net 28, equity 21, peak 21 */
    add(&s, -4, 0, 600);  /* net -4, equity 17, dd 4 (max stays 16) */

    assert_int_equal(s.trades, 6);
    assert_int_equal(s.wins, 2);
    assert_int_equal(s.losses, 3);
    assert_true(fabs(report_stats_win_rate(&s) - 2.0 / 6.0) < 1e-12);
    assert_true(s.gross_pnl == 22);
    assert_true(s.fees == 5);
    assert_true(report_stats_net_pnl(&s) == 17);
    assert_true(fabs(report_stats_profit_factor(&s) - 37.0 / 20.0) < 1e-12);
    assert_true(s.max_drawdown == 16);
    assert_int_equal(s.first_close_us, 100);
    assert_int_equal(s.last_close_us, 600);
}

static void test_drawdown_from_zero(void **state)
{
    /* A first losing trade is a drawdown from the starting equity of 0. */
    struct report_stats s;
    report_stats_reset(&s);
    add(&s, -3, 0, 1);
    add(&s, -2, 0, 2);
    assert_true(s.max_drawdown == 5);
    assert_true(report_stats_profit_factor(&s) == 0);
    assert_int_equal(s.wins, 0);
    assert_int_equal(s.losses, 2);
}

static void test_edge_cases(void **state)
{
    struct report_stats s;
    report_stats_reset(&s);
    assert_true(report_stats_win_rate(&s) == 0);
    assert_true(report_stats_profit_factor(&s) == 0);

    add(&s, 5, 0, 1);
    assert_true(isinf(report_stats_profit_factor(&s)));
    assert_true(s.max_drawdown == 0);

    /* Missing pnl and fees count as 0. */
    report_stats_reset(&s);
    report_stats_add(&s, false, 99, false, 99, 7);
    assert_int_equal(s.trades, 1);
    assert_true(s.gross_pnl == 0 && s.fees == 0);
    assert_int_equal(s.wins + s.losses, 0);

    /* Fees alone turn a flat trade into a loss. */
    report_stats_reset(&s);
    report_stats_add(&s, false, 0, true, 0.5, 7);
    assert_int_equal(s.losses, 1);
    assert_true(s.max_drawdown == 0.5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mixed_trades),
        cmocka_unit_test(test_drawdown_from_zero),
        cmocka_unit_test(test_edge_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
