/*
 * report_stats.h: the per-profile performance figures behind `telemctl report`.
 *
 * Trades are fed in close-time order, one profile at a time. Every figure is on the trade's
 * net result, pnl - fees (a missing pnl or fee counts as 0), because that is what the account
 * gains or loses:
 *   wins / losses   trades whose net result is > 0 / < 0 (a zero result is neither)
 *   win rate        wins / trades
 *   gross pnl       sum of pnl; fees: sum of fees; net pnl: gross pnl - fees
 *   profit factor   sum of net wins / |sum of net losses| (infinite without losses, 0 with
 *                   neither)
 *   max drawdown    the largest fall of cumulative net pnl from its running peak, starting
 *                   from 0 before the first trade, walked in close-time order
 */
#ifndef TELEM_CLI_REPORT_STATS_H
#define TELEM_CLI_REPORT_STATS_H

#include <stdbool.h>
#include <stdint.h>

struct report_stats {
    uint64_t trades;
    uint64_t wins;
    uint64_t losses;
    double gross_pnl;
    double fees;
    double win_sum;  /* sum of net results > 0 */
    double loss_sum; /* sum of net results < 0, a negative number */
    double equity;   /* cumulative net pnl */
    double peak;     /* highest equity so far, starting at 0 */
    double max_drawdown;
    int64_t first_close_us;
    int64_t last_close_us;
};

/* report_stats_reset clears s for a new profile. */
void report_stats_reset(struct report_stats *s);

/* report_stats_add adds one trade closed at close_us; call in close-time order. */
void report_stats_add(struct report_stats *s, bool has_pnl, double pnl, bool has_fees, double fees,
                      int64_t close_us);

/* report_stats_win_rate returns wins / trades, 0 without trades. */
double report_stats_win_rate(const struct report_stats *s);

/* report_stats_net_pnl returns gross pnl minus fees. */
double report_stats_net_pnl(const struct report_stats *s);

/* report_stats_profit_factor returns net wins / |net losses| (see above for the edge cases). */
double report_stats_profit_factor(const struct report_stats *s);

#endif
