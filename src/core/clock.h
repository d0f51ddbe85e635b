/*
 * clock.h: the two clocks telem uses. Wall time stamps records; monotonic time measures
 * intervals and deadlines, so a clock step never stretches a timeout.
 */
#ifndef TELEM_CORE_CLOCK_H
#define TELEM_CORE_CLOCK_H

#include <stdint.h>

/* clock_wall_ns returns nanoseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t clock_wall_ns(void);

/* clock_mono_ns returns nanoseconds of CLOCK_MONOTONIC. */
int64_t clock_mono_ns(void);

/*
 * clock_backoff_ms returns the delay before retry number attempt (1, 2, ...): base_ms doubled
 * each attempt, capped at max_ms, with "full jitter" between half and all of it, so that many
 * retrying workers do not knock in step. Thread-safe.
 */
unsigned clock_backoff_ms(unsigned attempt, unsigned base_ms, unsigned max_ms);

#endif
