/*
 * cmd_query.c: the two commands that read a store, which share its selection flags:
 * `telemctl query trades|metrics` (rows selected by profile, name and time range) and
 * `telemctl report` (per-profile performance, report_stats.h). Both print a table, CSV or JSON.
 *
 * The store is reached through the query backend its URL names (query_backend.h); rows stream
 * from the backend straight into the output writer, or through the report's running totals one
 * profile at a time, so neither holds the store's rows in memory (except the table format,
 * which must see every row to size its columns). Times print as RFC 3339 UTC.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli_args.h"
#include "cli/cli_time.h"
#include "cli/commands.h"
#include "cli/output_format.h"
#include "cli/query_backend.h"
#include "cli/report_stats.h"
#include "core/clock.h"

static void query_usage(FILE *out)
{
    fputs("usage: telemctl query trades|metrics [options]\n"
          "Prints stored trades (trade_performance) or metric samples (aggregated_metric),\n"
          "oldest first.\n"
          "  --db URL            the store: sqlite:PATH (default " CLI_DEFAULT_DB ")\n"
          "  --profile P         only this profile\n"
          "  --name N            metrics: only this metric name; trades: only this symbol\n"
          "  --since T           only rows at or after T (trades: close time)\n"
          "  --until T           only rows before T\n"
          "  --limit N           the latest N rows (default 1000; 0 for every row)\n"
          "  --format F          table (default), csv or json\n"
          "Times T: RFC 3339 (2026-11-27T10:00:00Z), Unix seconds, or relative (-15m, -1h, -7d).\n",
          out);
}

/* The options query and report share; query_parse fills it. */
struct query_cli {
    const char *db;
    enum out_format format;
    struct query_filter filter;
    const char *positional[4];
    int npositional;
};

/* query_parse returns -1 to go on, or the exit status to return now (help, or a usage error). */
static int query_parse(const char *cmd, int argc, char **argv, struct query_cli *q,
                       void (*usage)(FILE *))
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"profile", required_argument, NULL, 'p'},
        {"name", required_argument, NULL, 'n'},
        {"since", required_argument, NULL, 's'},
        {"until", required_argument, NULL, 'u'},
        {"limit", required_argument, NULL, 'l'},
        {"format", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int64_t now_us = clock_wall_ns() / 1000;
    char err[256];
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            q->db = optarg;
            break;
        case 'p':
            q->filter.profile = optarg;
            break;
        case 'n':
            q->filter.name = optarg;
            break;
        case 's':
            if (cli_time_parse(optarg, now_us, &q->filter.since_us, err, sizeof(err)) < 0) {
                fprintf(stderr, "telemctl %s: --since: %s\n", cmd, err);
                return CLI_EXIT_USAGE;
            }
            q->filter.has_since = true;
            break;
        case 'u':
            if (cli_time_parse(optarg, now_us, &q->filter.until_us, err, sizeof(err)) < 0) {
                fprintf(stderr, "telemctl %s: --until: %s\n", cmd, err);
                return CLI_EXIT_USAGE;
            }
            q->filter.has_until = true;
            break;
        case 'l':
            if (cli_parse_u64(cmd, "--limit", optarg, 0, UINT64_MAX / 2, &q->filter.limit) < 0)
                return CLI_EXIT_USAGE;
            break;
        case 'f':
            if (out_format_parse(optarg, &q->format) < 0) {
                fprintf(stderr, "telemctl %s: --format: expected table, csv or json, got '%s'\n",
                        cmd, optarg);
                return CLI_EXIT_USAGE;
            }
            break;
        case 'h':
            usage(stdout);
            return CLI_EXIT_OK;
        default:
            usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    for (int i = optind; i < argc; i++) {
        if (q->npositional == (int)(sizeof(q->positional) / sizeof(q->positional[0]))) {
            fprintf(stderr, "telemctl %s: too many arguments\n", cmd);
            return CLI_EXIT_USAGE;
        }
        q->positional[q->npositional++] = argv[i];
    }
    if (q->filter.has_since && q->filter.has_until && q->filter.until_us <= q->filter.since_us) {
        fprintf(stderr, "telemctl %s: --until must be after --since\n", cmd);
        return CLI_EXIT_USAGE;
    }
    return -1;
}

static const struct out_column query_trade_cols[] = {
    {"seq", OUT_INT},          {"profile", OUT_STR},       {"script", OUT_STR},
    {"symbol", OUT_STR},       {"side", OUT_STR},          {"qty", OUT_REAL},
    {"entry_price", OUT_REAL}, {"exit_price", OUT_REAL},   {"pnl", OUT_REAL},
    {"fees", OUT_REAL},        {"opened_at", OUT_TIME_US}, {"closed_at", OUT_TIME_US},
    {"trade_id", OUT_STR},
};

static const struct out_column query_metric_cols[] = {
    {"seq", OUT_INT},  {"profile", OUT_STR}, {"script", OUT_STR},
    {"name", OUT_STR}, {"value", OUT_REAL},  {"ts", OUT_TIME_US},
};

static struct out_value query_str(const char *s)
{
    return (struct out_value){.null = !s || !*s, .s = s};
}

static struct out_value query_real(bool has, double d)
{
    return (struct out_value){.null = !has, .d = d};
}

static int query_trade_row(void *ctx, const struct query_trade *t)
{
    struct out_value v[] = {
        {.i = t->seq},
        query_str(t->profile),
        query_str(t->script),
        query_str(t->symbol),
        query_str(t->side),
        query_real(t->has_qty, t->qty),
        query_real(t->has_entry_price, t->entry_price),
        query_real(t->has_exit_price, t->exit_price),
        query_real(t->has_pnl, t->pnl),
        query_real(t->has_fees, t->fees),
        {.null = !t->has_opened_at, .i = t->opened_at_us},
        {.i = t->closed_at_us},
        query_str(t->trade_id),
    };
    return out_writer_row(ctx, v);
}

static int query_metric_row(void *ctx, const struct query_metric *m)
{
    struct out_value v[] = {
        {.i = m->seq},      query_str(m->profile), query_str(m->script),
        query_str(m->name), {.d = m->value},       {.i = m->ts_us},
    };
    return out_writer_row(ctx, v);
}

int cmd_query(int argc, char **argv)
{
    struct query_cli q = {.db = CLI_DEFAULT_DB, .format = OUT_TABLE, .filter.limit = 1000};
    int rc = query_parse("query", argc, argv, &q, query_usage);
    if (rc >= 0)
        return rc;
    if (q.npositional != 1 ||
        (strcmp(q.positional[0], "trades") != 0 && strcmp(q.positional[0], "metrics") != 0)) {
        fprintf(stderr, "telemctl query: say what to query: trades or metrics\n");
        query_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    bool trades = strcmp(q.positional[0], "trades") == 0;

    const struct query_backend_ops *be = query_backend_for_url(q.db);
    if (!be) {
        fprintf(stderr, "telemctl query: --db %s: unknown store (this build reads: %s)\n", q.db,
                query_backend_schemes());
        return CLI_EXIT_USAGE;
    }
    char err[512] = "";
    void *state = NULL;
    if (be->open(q.db, false, &state, err, sizeof(err)) < 0) {
        fprintf(stderr, "telemctl query: %s\n", err);
        return CLI_EXIT_FAIL;
    }
    const struct out_column *cols = trades ? query_trade_cols : query_metric_cols;
    size_t ncols = trades ? sizeof(query_trade_cols) / sizeof(query_trade_cols[0])
                          : sizeof(query_metric_cols) / sizeof(query_metric_cols[0]);
    struct out_writer *w = out_writer_create(q.format, cols, ncols, stdout);
    q.filter.order = QUERY_ORDER_TIME;
    if (trades)
        rc = be->trades(state, &q.filter, query_trade_row, w, err, sizeof(err));
    else
        rc = be->metrics(state, &q.filter, query_metric_row, w, err, sizeof(err));
    if (rc == 0)
        rc = out_writer_finish(w);
    else if (rc == -EIO && !err[0])
        snprintf(err, sizeof(err), "writing the output failed");
    int status = CLI_EXIT_OK;
    if (rc < 0) {
        fprintf(stderr, "telemctl query: %s\n", err[0] ? err : strerror(-rc));
        status = CLI_EXIT_FAIL;
    }
    out_writer_destroy(w);
    be->close(state);
    return status;
}

static void report_usage(FILE *out)
{
    fputs("usage: telemctl report [options]\n"
          "Per-profile performance over the stored trades, on each trade's net result\n"
          "(pnl - fees): trades, wins, losses, win rate, gross pnl, fees, net pnl, profit\n"
          "factor (net wins / net losses), max drawdown of cumulative net pnl in close-time\n"
          "order, and the close times of the first and last trade.\n"
          "  --db URL            the store: sqlite:PATH (default " CLI_DEFAULT_DB ")\n"
          "  --profile P         only this profile\n"
          "  --since T           only trades closed at or after T\n"
          "  --until T           only trades closed before T\n"
          "  --format F          table (default), csv or json\n"
          "Times T: RFC 3339 (2026-11-27T10:00:00Z), Unix seconds, or relative (-15m, -1h, -7d).\n",
          out);
}

static const struct out_column report_cols[] = {
    {"profile", OUT_STR},       {"trades", OUT_INT},          {"wins", OUT_INT},
    {"losses", OUT_INT},        {"win_rate", OUT_REAL},       {"gross_pnl", OUT_REAL},
    {"fees", OUT_REAL},         {"net_pnl", OUT_REAL},        {"profit_factor", OUT_REAL},
    {"max_drawdown", OUT_REAL}, {"first_trade", OUT_TIME_US}, {"last_trade", OUT_TIME_US},
};

struct report_walk {
    struct out_writer *w;
    char profile[256];
    struct report_stats stats;
};

static int report_emit(struct report_walk *r)
{
    if (r->stats.trades == 0)
        return 0;
    const struct report_stats *s = &r->stats;
    /* Round the ratio for people; the sums stay exact. */
    double win_rate = (double)(long long)(report_stats_win_rate(s) * 10000 + 0.5) / 10000;
    struct out_value v[] = {
        {.s = r->profile},
        {.i = (int64_t)s->trades},
        {.i = (int64_t)s->wins},
        {.i = (int64_t)s->losses},
        {.d = win_rate},
        {.d = s->gross_pnl},
        {.d = s->fees},
        {.d = report_stats_net_pnl(s)},
        {.d = report_stats_profit_factor(s)},
        {.d = s->max_drawdown},
        {.i = s->first_close_us},
        {.i = s->last_close_us},
    };
    return out_writer_row(r->w, v);
}

static int report_trade(void *ctx, const struct query_trade *t)
{
    struct report_walk *r = ctx;
    if (r->stats.trades == 0 || strcmp(r->profile, t->profile) != 0) {
        int rc = report_emit(r);
        if (rc < 0)
            return rc;
        snprintf(r->profile, sizeof(r->profile), "%s", t->profile);
        report_stats_reset(&r->stats);
    }
    report_stats_add(&r->stats, t->has_pnl, t->pnl, t->has_fees, t->fees, t->closed_at_us);
    return 0;
}

int cmd_report(int argc, char **argv)
{
    struct query_cli q = {.db = CLI_DEFAULT_DB, .format = OUT_TABLE};
    int rc = query_parse("report", argc, argv, &q, report_usage);
    if (rc >= 0)
        return rc;
    if (q.npositional != 0 || q.filter.name || q.filter.limit) {
        fprintf(stderr, "telemctl report: takes no arguments, --name or --limit\n");
        report_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const struct query_backend_ops *be = query_backend_for_url(q.db);
    if (!be) {
        fprintf(stderr, "telemctl report: --db %s: unknown store (this build reads: %s)\n", q.db,
                query_backend_schemes());
        return CLI_EXIT_USAGE;
    }
    char err[512] = "";
    void *state = NULL;
    if (be->open(q.db, false, &state, err, sizeof(err)) < 0) {
        fprintf(stderr, "telemctl report: %s\n", err);
        return CLI_EXIT_FAIL;
    }
    struct report_walk walk = {0};
    walk.w = out_writer_create(q.format, report_cols, sizeof(report_cols) / sizeof(report_cols[0]),
                               stdout);
    q.filter.order = QUERY_ORDER_PROFILE_TIME;
    rc = be->trades(state, &q.filter, report_trade, &walk, err, sizeof(err));
    if (rc == 0)
        rc = report_emit(&walk);
    if (rc == 0)
        rc = out_writer_finish(walk.w);
    int status = CLI_EXIT_OK;
    if (rc < 0) {
        fprintf(stderr, "telemctl report: %s\n", err[0] ? err : strerror(-rc));
        status = CLI_EXIT_FAIL;
    }
    out_writer_destroy(walk.w);
    be->close(state);
    return status;
}
