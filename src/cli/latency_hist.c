/*
 * latency_hist.c: log-linear buckets: values below LATENCY_HIST_SUB us map one to one; above,
 * each power of two is split into LATENCY_HIST_SUB equal steps.
 */
#include "cli/latency_hist.h"

static unsigned latency_bucket(uint64_t us)
{
    if (us < LATENCY_HIST_SUB)
        return (unsigned)us;
    unsigned power = 63 - (unsigned)__builtin_clzll(us); /* >= 5 */
    unsigned shift = power - 5;                          /* log2(LATENCY_HIST_SUB) == 5 */
    unsigned sub = (unsigned)((us >> shift) - LATENCY_HIST_SUB);
    unsigned b = (power - 4) * LATENCY_HIST_SUB + sub;
    return b < LATENCY_HIST_BUCKETS ? b : LATENCY_HIST_BUCKETS - 1;
}

/* latency_bucket_top returns the largest value that maps to bucket b. */
static uint64_t latency_bucket_top(unsigned b)
{
    if (b < LATENCY_HIST_SUB)
        return b;
    unsigned power = b / LATENCY_HIST_SUB + 4;
    unsigned sub = b % LATENCY_HIST_SUB;
    unsigned shift = power - 5;
    return ((uint64_t)(LATENCY_HIST_SUB + sub + 1) << shift) - 1;
}

void latency_hist_add(struct latency_hist *h, uint64_t us)
{
    h->buckets[latency_bucket(us)]++;
    h->count++;
    if (us > h->max_us)
        h->max_us = us;
}

void latency_hist_merge(struct latency_hist *dst, const struct latency_hist *src)
{
    for (unsigned i = 0; i < LATENCY_HIST_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
    dst->count += src->count;
    if (src->max_us > dst->max_us)
        dst->max_us = src->max_us;
}

uint64_t latency_hist_percentile(const struct latency_hist *h, double q)
{
    if (h->count == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->count);
    if (rank >= h->count)
        rank = h->count - 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < LATENCY_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen > rank) {
            uint64_t top = latency_bucket_top(i);
            return top < h->max_us ? top : h->max_us;
        }
    }
    return h->max_us;
}
