/*
 * loadgen_verify.h: checking that a store holds exactly what a load run had acknowledged.
 *
 * Counts the rows of each of the run's profiles (trades plus metrics) in the store and compares
 * them with the acknowledged counts. The sinks write behind the acknowledgement, so it polls
 * until every count matches or the counts stop moving for `settle_s` seconds.
 */
#ifndef TELEM_CLI_LOADGEN_VERIFY_H
#define TELEM_CLI_LOADGEN_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loadgen_verify_result {
    bool exact;        /* every profile's count equals its acknowledged count */
    uint64_t stored;   /* rows found for the run's profiles */
    uint64_t expected; /* records acknowledged */
    unsigned missing;  /* profiles with fewer rows than acknowledged */
    unsigned extra;    /* profiles with more rows than acknowledged */
    double wait_s;     /* time spent waiting for the sinks */
    char detail[256];  /* the first mismatch, or the error */
};

/*
 * loadgen_verify counts rows for profiles "<prefix>p0000".."<prefix>p<profiles-1>" in the store
 * at url (sqlite:PATH or mariadb://...) and compares with acked[]. Borrows everything.
 * Returns 0 (see res->exact), or a negative errno when the store cannot be read (res->detail).
 */
int loadgen_verify(const char *url, const char *prefix, unsigned profiles, const uint64_t *acked,
                   double settle_s, struct loadgen_verify_result *res);

#endif
