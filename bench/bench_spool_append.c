/*
 * bench_spool_append.c: spool append + group-commit throughput for each fsync policy. One
 * writer keeps up to OUTSTANDING frames of 1000 records waiting for durability (as 300 senders
 * each waiting for their 204 would) and counts records whose ticket became durable.
 *
 *   bench_spool_append DIR [SECONDS] [OUTSTANDING]
 */
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_body.h"
#include "core/clock.h"
#include "proto/lp.h"
#include "spool/frame.h"
#include "spool/spool.h"

static size_t encode_body(uint8_t *payload, uint32_t *count)
{
    size_t len, pos = 0, lineno = 0, ls, ll, out = 0;
    char *body = bench_body_make(1000, 1, &len);
    static struct lp_line line;
    struct record rec[LP_FIELDS_MAX];
    struct lp_limits lim = {0};
    struct lp_map_options mo = {.precision = LP_PREC_NS};
    *count = 0;
    while (lp_body_next(body, len, &pos, &lineno, &ls, &ll)) {
        struct lp_error err;
        size_t n;
        if (lp_parse_line(body + ls, ll, &lim, &line, &err) < 0 ||
            lp_map_line(&line, &mo, rec, LP_FIELDS_MAX, &n, &err) < 0)
            abort();
        for (size_t i = 0; i < n; i++)
            out += (size_t)frame_record_encode(&rec[i], payload + out, FRAME_RECORD_MAX);
        *count += (uint32_t)n;
    }
    free(body);
    return out;
}

static double run_policy(const char *dir, enum spool_fsync policy, double seconds,
                         unsigned outstanding, const uint8_t *payload, size_t len, uint32_t count,
                         uint64_t *fsyncs)
{
    struct spool_options so = {
        .dir = dir,
        .segment_bytes = 256u << 20,
        .max_bytes = 64ull << 30,
        .fsync = policy,
        .fsync_interval_ms = 100,
        .producers_max = 1000,
        .producer_idle_s = 3600,
    };
    char err[256];
    struct spool *sp = spool_open(&so, err, sizeof(err));
    if (!sp) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    uint64_t *tickets = calloc(outstanding, sizeof(*tickets));
    unsigned head = 0, tail = 0, inflight = 0;
    uint64_t durable_records = 0;
    int64_t start = clock_mono_ns(), now = start;
    struct pollfd pfd = {.fd = spool_notify_fd(sp), .events = POLLIN};
    while (now - start < (int64_t)(seconds * 1e9)) {
        while (inflight < outstanding) {
            uint64_t first, ticket;
            int rc = spool_append(sp, payload, len, count, NULL, &first, &ticket);
            if (rc < 0) {
                fprintf(stderr, "spool_append: %s\n", strerror(-rc));
                exit(1);
            }
            tickets[head] = ticket;
            head = (head + 1) % outstanding;
            inflight++;
        }
        poll(&pfd, 1, 100);
        uint64_t durable, failed;
        spool_poll(sp, &durable, &failed);
        while (inflight && tickets[tail] <= durable) {
            tail = (tail + 1) % outstanding;
            inflight--;
            durable_records += count;
        }
        now = clock_mono_ns();
    }
    struct spool_stats st;
    spool_get_stats(sp, &st);
    *fsyncs = st.fsyncs;
    spool_close(sp);
    free(tickets);
    return durable_records / ((now - start) / 1e9);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_spool_append DIR [SECONDS] [OUTSTANDING]\n");
        return 2;
    }
    double seconds = argc > 2 ? atof(argv[2]) : 5;
    unsigned outstanding = argc > 3 ? (unsigned)atoi(argv[3]) : 300;
    static uint8_t payload[1000 * FRAME_RECORD_MAX];
    uint32_t count;
    size_t len = encode_body(payload, &count);
    static const char *const names[] = {"always", "interval", "never"};
    for (int p = 0; p < 3; p++) {
        char dir[512];
        snprintf(dir, sizeof(dir), "%s/%s", argv[1], names[p]);
        uint64_t fsyncs;
        double rate = run_policy(dir, (enum spool_fsync)p, seconds, outstanding, payload, len,
                                 count, &fsyncs);
        printf("fsync=%-8s %10.0f records/s durable-for-ack (%llu fdatasyncs, %u frames of "
               "%u records outstanding)\n",
               names[p], rate, (unsigned long long)fsyncs, outstanding, count);
    }
    return 0;
}
