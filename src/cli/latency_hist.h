/*
 * latency_hist.h: a fixed-size log-linear histogram of durations, for percentiles of ack
 * latency without storing every sample. Buckets cover 0 us to about 35 minutes with at most 1/32
 * (about 3%) relative error; larger values land in the last bucket. Not thread-safe: one
 * owner records, or merge copies.
 */
#ifndef TELEM_CLI_LATENCY_HIST_H
#define TELEM_CLI_LATENCY_HIST_H

#include <stdint.h>

#define LATENCY_HIST_SUB     32 /* linear sub-buckets per power of two */
#define LATENCY_HIST_POWERS  27 /* the first row is linear, then 2^5 .. 2^30 us */
#define LATENCY_HIST_BUCKETS (LATENCY_HIST_SUB * LATENCY_HIST_POWERS)

struct latency_hist {
    uint64_t count;
    uint64_t max_us;
    uint64_t buckets[LATENCY_HIST_BUCKETS];
};

/* latency_hist_add records one duration in microseconds. */
void latency_hist_add(struct latency_hist *h, uint64_t us);

/* latency_hist_merge adds every sample of src to dst. */
void latency_hist_merge(struct latency_hist *dst, const struct latency_hist *src);

/*
 * latency_hist_percentile returns the value in microseconds below which fraction q (0..1) of the
 * samples fall (the upper edge of that bucket, never above the maximum seen); 0 when empty.
 */
uint64_t latency_hist_percentile(const struct latency_hist *h, double q);

#endif
