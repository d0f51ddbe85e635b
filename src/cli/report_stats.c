/*
 * report_stats.c: running per-profile performance figures, updated one trade at a time so that
 * a report over millions of trades needs no more memory than one profile's totals.
 */
#include "cli/report_stats.h"

#include <math.h>
#include <string.h>

void report_stats_reset(struct report_stats *s)
{
    memset(s, 0, sizeof(*s));
}

void report_stats_add(struct report_stats *s, bool has_pnl, double pnl, bool has_fees, double fees,
                      int64_t close_us)
{
    double p = has_pnl ? pnl : 0.0;
    double f = has_fees ? fees : 0.0;
    double net = p - f;

    if (s->trades == 0)
        s->first_close_us = close_us;
    s->last_close_us = close_us;
    s->trades++;
    s->gross_pnl += p;
    s->fees += f;
    if (net > 0) {
        s->wins++;
        s->win_sum += net;
    } else if (net < 0) {
        s->losses++;
        s->loss_sum += net;
    }
    s->equity += net;
    if (s->equity > s->peak)
        s->peak = s->equity;
    if (s->peak - s->equity > s->max_drawdown)
        s->max_drawdown = s->peak - s->equity;
}

double report_stats_win_rate(const struct report_stats *s)
{
    return s->trades ? (double)s->wins / (double)s->trades : 0.0;
}

double report_stats_net_pnl(const struct report_stats *s)
{
    return s->gross_pnl - s->fees;
}

double report_stats_profit_factor(const struct report_stats *s)
{
    if (s->loss_sum < 0)
        return s->win_sum / -s->loss_sum;
    return s->win_sum > 0 ? INFINITY : 0.0;
}
