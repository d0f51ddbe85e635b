/*
 * clock.c: wall and monotonic time, and the jittered backoff every retry loop uses.
 */
#include "core/clock.h"

#include <stdatomic.h>
#include <time.h>

int64_t clock_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A small lock-free xorshift generator: the jitter needs spread, not quality. */
static _Atomic uint64_t backoff_state;

static uint64_t backoff_random(void)
{
    uint64_t x = atomic_load_explicit(&backoff_state, memory_order_relaxed);
    if (x == 0)
        x = (uint64_t)clock_mono_ns() | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    atomic_store_explicit(&backoff_state, x, memory_order_relaxed);
    return x;
}

unsigned clock_backoff_ms(unsigned attempt, unsigned base_ms, unsigned max_ms)
{
    uint64_t d = base_ms ? base_ms : 1;
    for (unsigned i = 1; i < attempt && d < max_ms; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    uint64_t half = d / 2;
    return (unsigned)(half + (half ? backoff_random() % (d - half + 1) : 0));
}
