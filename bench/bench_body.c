/*
 * bench_body.c: the canonical benchmark body (see bench_body.h).
 */
#include "bench_body.h"

#include <stdio.h>
#include <stdlib.h>

char *bench_body_make(unsigned lines, unsigned profile, size_t *len)
{
    size_t cap = (size_t)lines * 200 + 1, n = 0;
    char *b = malloc(cap);
    if (!b)
        abort();
    long long ts = 1764201600000000000LL;
    for (unsigned i = 0; i < lines; i++) {
        ts += 1000;
        if (i % 2 == 0)
            n += (size_t)snprintf(b + n, cap - n,
                                  "trade,profile=bench-p%04u,script=s%u,symbol=SYM%u,side=buy "
                                  "qty=%u,entry_price=%.2f,exit_price=%.2f,pnl=%.2f,fees=0.05 "
                                  "%lld\n",
                                  profile, i % 3, i % 50, 1 + i % 9, 100.0 + i % 500 / 10.0,
                                  101.0 + i % 300 / 10.0, (i % 200) / 10.0 - 10.0, ts);
        else
            n += (size_t)snprintf(b + n, cap - n,
                                  "metric,profile=bench-p%04u,script=s%u "
                                  "strategy.equity=%.3f %lld\n",
                                  profile, i % 3, 10000.0 + i * 1.25, ts);
    }
    *len = n;
    return b;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double bench_median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
