/*
 * telem_example.c: the smallest useful libtelem program. It opens a handle to telemd, records a
 * few metrics and one closed trade, flushes, prints the handle's counters and closes.
 *
 *   telem_example [ENDPOINT [PROFILE]]     e.g. telem_example unix:./telem-data/telemd.sock p1
 *
 * Build against an installed libtelem with: cc telem_example.c $(pkg-config --cflags --libs telem)
 */
#include <stdio.h>
#include <string.h>

#include <telem.h>

/* log_to_stderr is the log callback: libtelem itself never prints anything. */
static void log_to_stderr(void *arg, enum telem_log_level level, const char *msg)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    (void)arg;
    fprintf(stderr, "telem %s: %s\n", names[level], msg);
}

int main(int argc, char **argv)
{
    struct telem_options opt = {
        .endpoint = argc > 1 ? argv[1] : NULL, /* NULL: $TELEM_ENDPOINT or telemd's default */
        .profile = argc > 2 ? argv[2] : "example-profile",
        .script = "telem_example",
        .flush_interval_ms = 200,
        .log = log_to_stderr,
        .log_level = TELEM_LOG_INFO,
    };
    struct telem_open_error oerr;
    struct telem *t = telem_open(&opt, &oerr);
    if (t == NULL) {
        fprintf(stderr, "telem_open: %s\n", oerr.msg);
        return 1;
    }

    for (int i = 0; i < 10; i++) {
        int rc = telem_metric(t, "equity", 10000.0 + i * 12.5, 0); /* 0: now */
        if (rc != TELEM_OK)
            fprintf(stderr, "telem_metric: %s (%s)\n", telem_strerror(rc), telem_errmsg());
    }

    struct telem_trade tr = {
        .symbol = "BTC-USD",
        .side = "buy",
        .qty = 0.25,
        .entry_price = 64000.5,
        .exit_price = 64210.0,
        .pnl = 52.375,
        .fees = 1.2,
        .trade_id = "example-1",
    };
    int rc = telem_trade(t, &tr);
    if (rc != TELEM_OK)
        fprintf(stderr, "telem_trade: %s (%s)\n", telem_strerror(rc), telem_errmsg());

    /* A bad record is refused at the call, naming the field; telemd never sees it. */
    tr.symbol = "BTC\nUSD";
    rc = telem_trade(t, &tr);
    printf("bad trade refused: %s: %s\n", telem_strerror(rc), telem_errmsg());

    rc = telem_flush(t, 5000);
    struct telem_stats st;
    telem_stats(t, &st);
    printf("flush: %s; accepted %llu, acked %llu, dropped %llu, retries %llu\n", telem_strerror(rc),
           (unsigned long long)st.accepted, (unsigned long long)st.acked,
           (unsigned long long)st.dropped, (unsigned long long)st.retries);
    rc = telem_close(t, 5000);
    return rc == TELEM_OK ? 0 : 2;
}
