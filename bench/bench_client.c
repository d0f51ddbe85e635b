/*
 * bench_client.c: what libtelem costs its caller and how fast it ships.
 *
 *   bench_client ENDPOINT [CALLS [RATE [BATCH]]]
 *
 * Phase 1, caller cost: CALLS (default 1,000,000) telem_trade() calls paced at RATE per second
 * (default 200,000, in bursts of 100, so the background thread is shipping the whole time; the
 * rate must stay below what telemd absorbs, or calls wait for room under the block policy and
 * the tail measures telemd), each timed with the TSC (x86) or CLOCK_MONOTONIC; prints the median,
 * p99, p99.9 and max in nanoseconds. Phase 2, throughput: CALLS trades as fast as one thread can
 * make them (block policy), then telem_flush; prints records per second from the first call until
 * telemd acknowledged the last one (204: durable in its spool). ENDPOINT is "unix:/path" or
 * "http://127.0.0.1:PORT"; BATCH is batch_max (default: libtelem's, 5000).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define bench_ticks() __rdtsc()
#else
/* Elsewhere the "ticks" are CLOCK_MONOTONIC nanoseconds (coarser, and a vDSO call each). */
static uint64_t bench_ticks(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
#endif

#include "telem.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* tsc_per_ns measures the TSC rate against CLOCK_MONOTONIC over 200 ms. */
static double tsc_per_ns(void)
{
    double t0 = now_s();
    uint64_t c0 = bench_ticks();
    while (now_s() - t0 < 0.2)
        ;
    uint64_t c1 = bench_ticks();
    double t1 = now_s();
    return (double)(c1 - c0) / ((t1 - t0) * 1e9);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static unsigned bench_batch;

static struct telem *open_handle(const char *endpoint, const char *profile)
{
    struct telem_options opt = {.endpoint = endpoint,
                                .profile = profile,
                                .script = "bench",
                                .max_buffered = 200000,
                                .batch_max = bench_batch,
                                .full_policy = TELEM_FULL_BLOCK};
    struct telem_open_error err;
    struct telem *t = telem_open(&opt, &err);
    if (t == NULL)
        fprintf(stderr, "telem_open: %s\n", err.msg);
    return t;
}

static void fill_trade(struct telem_trade *tr, uint64_t i, int64_t base_ns)
{
    static const char *const symbols[] = {"BTC-USD", "ETH-USD", "SOL-USD", "AAPL"};
    tr->symbol = symbols[i & 3];
    tr->side = (i & 1) ? "sell" : "buy";
    tr->qty = (double)(1 + i % 7);
    tr->entry_price = 100.0 + (double)(i % 1000) * 0.25;
    tr->exit_price = tr->entry_price + 0.5;
    tr->pnl = 0.5 * tr->qty;
    tr->fees = 0.01;
    tr->opened_at_ns = base_ns + (int64_t)i * 1000;
    tr->closed_at_ns = base_ns + (int64_t)i * 1000 + 500;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_client ENDPOINT [CALLS [RATE [BATCH]]]\n");
        return 2;
    }
    const char *endpoint = argv[1];
    uint64_t calls = argc > 2 ? strtoull(argv[2], NULL, 10) : 1000000;
    double rate = argc > 3 ? strtod(argv[3], NULL) : 200000;
    bench_batch = argc > 4 ? (unsigned)strtoul(argv[4], NULL, 10) : 0;
    double tpn = tsc_per_ns();
    int64_t base_ns = 1700000000000000000LL;

    /* Phase 1: per-call cost while the background thread ships. */
    struct telem *t = open_handle(endpoint, "bench-latency");
    if (t == NULL)
        return 1;
    uint64_t *lat = malloc(calls * sizeof(*lat));
    if (lat == NULL)
        return 1;
    struct telem_trade tr = {.trade_id = NULL};
    /*
     * Bursts of BURST calls, then sleep until the next burst is due: RATE on average, like a
     * trading thread that records and goes back to work, and the CPU stays free for the
     * background thread and telemd (this machine may have fewer cores than runnable threads).
     */
    const uint64_t burst = 100;
    struct timespec due;
    clock_gettime(CLOCK_MONOTONIC, &due);
    long gap_ns = (long)(1e9 * (double)burst / rate);
    int fails = 0;
    for (uint64_t i = 0; i < calls; i++) {
        if (i % burst == 0) {
            due.tv_nsec += gap_ns;
            while (due.tv_nsec >= 1000000000) {
                due.tv_nsec -= 1000000000;
                due.tv_sec++;
            }
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, NULL);
        }
        fill_trade(&tr, i, base_ns);
        uint64_t c0 = bench_ticks();
        int rc = telem_trade(t, &tr);
        uint64_t c1 = bench_ticks();
        lat[i] = c1 - c0;
        fails += rc != TELEM_OK;
    }
    int frc = telem_flush(t, 120000);
    struct telem_stats st;
    telem_stats(t, &st);
    telem_close(t, 10000);
    qsort(lat, calls, sizeof(*lat), cmp_u64);
    printf("telem_trade() caller cost over %" PRIu64 " calls at %.0f/s while shipping: "
           "median %.0f ns, p99 %.0f ns, p99.9 %.0f ns, max %.0f ns (failed calls %d, "
           "acked %" PRIu64 ", flush %s)\n",
           calls, rate, lat[calls / 2] / tpn, lat[calls * 99 / 100] / tpn,
           lat[calls * 999 / 1000] / tpn, lat[calls - 1] / tpn, fails, st.acked,
           telem_strerror(frc));
    free(lat);

    /* Phase 2: records per second from one thread into telemd's spool. */
    t = open_handle(endpoint, "bench-throughput");
    if (t == NULL)
        return 1;
    double t0 = now_s();
    for (uint64_t i = 0; i < calls; i++) {
        fill_trade(&tr, i, base_ns);
        telem_trade(t, &tr);
    }
    double t1 = now_s();
    frc = telem_flush(t, 300000);
    double t2 = now_s();
    telem_stats(t, &st);
    telem_close(t, 10000);
    printf("one C process, one thread: %" PRIu64 " trades in %.3f s = %.0f records/s acked by "
           "telemd (calls alone %.0f/s; acked %" PRIu64 ", batches %" PRIu64 ", retries %" PRIu64
           ", flush %s)\n",
           calls, t2 - t0, (double)st.acked / (t2 - t0), calls / (t1 - t0), st.acked, st.batches,
           st.retries, telem_strerror(frc));
    return frc == TELEM_OK ? 0 : 1;
}
