/*
 * bench_body.h: the benchmark load shared by the micro benchmarks: a body of canonical lines,
 * half trades with every field and half one-field metric lines, about 120 bytes a line on
 * average, as the issues specify.
 */
#ifndef TELEM_BENCH_BODY_H
#define TELEM_BENCH_BODY_H

#include <stddef.h>

/*
 * bench_body_make returns a malloc'ed body of `lines` lines for profile index `profile` and
 * stores its length in *len. Caller frees with free().
 */
char *bench_body_make(unsigned lines, unsigned profile, size_t *len);

/* bench_median returns the median of v[0..n) (sorts v). */
double bench_median(double *v, size_t n);

#endif
