/*
 * bench_ingest_parse.c: the CPU cost of ingest without I/O: walk a 1000-line body, parse each
 * line, map it to records and encode them into a spool payload, exactly as telemd's /write
 * handler does. Prints lines/s for each of several rounds and their median.
 *
 *   bench_ingest_parse [ROUNDS] [SECONDS_PER_ROUND]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_body.h"
#include "core/clock.h"
#include "proto/lp.h"
#include "spool/frame.h"

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 5;
    double seconds = argc > 2 ? atof(argv[2]) : 2.0;
    size_t len;
    char *body = bench_body_make(1000, 1, &len);
    static struct lp_line line;
    static struct record recs[LP_FIELDS_MAX];
    uint8_t *payload = malloc(1000 * FRAME_RECORD_MAX);
    struct lp_limits lim = {0};
    struct lp_map_options mo = {.profile_tag = "profile", .precision = LP_PREC_NS};
    double rates[64];
    if (rounds > 64)
        rounds = 64;
    printf("body: 1000 lines, %zu bytes (%.0f bytes a line)\n", len, len / 1000.0);
    for (int r = 0; r < rounds; r++) {
        uint64_t lines = 0;
        int64_t start = clock_mono_ns(), now = start;
        while (now - start < (int64_t)(seconds * 1e9)) {
            size_t pos = 0, lineno = 0, ls, ll, out = 0;
            mo.now_ns = clock_wall_ns();
            while (lp_body_next(body, len, &pos, &lineno, &ls, &ll)) {
                struct lp_error err;
                size_t n;
                if (lp_parse_line(body + ls, ll, &lim, &line, &err) < 0 ||
                    lp_map_line(&line, &mo, recs, LP_FIELDS_MAX, &n, &err) < 0) {
                    fprintf(stderr, "line %zu: %s\n", lineno, err.reason);
                    return 1;
                }
                for (size_t i = 0; i < n; i++)
                    out += (size_t)frame_record_encode(&recs[i], payload + out, FRAME_RECORD_MAX);
                lines++;
            }
            now = clock_mono_ns();
        }
        rates[r] = lines / ((now - start) / 1e9);
        printf("round %d: %.0f lines/s\n", r + 1, rates[r]);
    }
    printf("median: %.0f lines/s (parse + map + encode, one core)\n", bench_median(rates, rounds));
    free(payload);
    free(body);
    return 0;
}
