/*
 * loadgen.h: the load generator behind `telemctl loadgen`.
 *
 * It simulates profiles x scripts independent senders, each with its own keep-alive HTTP/1.1
 * connection to telemd (unix socket or TCP), all driven by one libevent loop so that thousands
 * of senders need no thread each. Each sender posts bodies of `batch` canonical lines (about 120
 * bytes a trade line, metric lines with one field, so one record per line) with a Telem-Batch
 * header. Every new batch carries the current time (its lines 1 us apart), as a live script's
 * records do; stores keyed by profile and time see appends, not inserts into the past. It resends
 * the same batch after a lost connection or a 503, so a retry is harmless and the count of
 * acknowledged records per profile is exact. Profiles are named
 * "<prefix>p<N>", so one run's rows can be told apart from every other run's in a shared store.
 */
#ifndef TELEM_CLI_LOADGEN_H
#define TELEM_CLI_LOADGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli/latency_hist.h"

struct loadgen_options {
    unsigned profiles;
    unsigned scripts;
    const char *socket_path; /* unix socket of telemd, or NULL */
    const char *http_addr;   /* "127.0.0.1:8186" when socket_path is NULL */
    const char *token;       /* Authorization: Token, or NULL; never printed */
    double trade_share;      /* fraction of lines that are trades, 0..1 */
    bool trade_ids;          /* trades carry a trade_id unique per profile */
    double rate;             /* target records/s over all senders; 0 = as fast as possible */
    double duration_s;       /* stop sending new batches after this long (0: use records) */
    uint64_t records;        /* stop after this many records were sent (0: use duration) */
    unsigned batch;          /* lines per request */
    const char *prefix;      /* profile name prefix, e.g. "lg-1a2b3c-" */
    bool progress_tty;       /* redraw one progress line (a terminal) or print plain lines */
    bool quiet;              /* no progress output at all */
};

struct loadgen_summary {
    uint64_t sent_requests;      /* requests written, retries included */
    uint64_t sent_records;       /* records in first attempts of batches */
    uint64_t acked_records;      /* records in batches answered 204 */
    uint64_t rejected_records;   /* records in batches answered 4xx */
    uint64_t retries;            /* batches sent again (503, lost connection) */
    uint64_t reconnects;         /* connections made after the first */
    uint64_t connect_failures;   /* connection attempts that failed */
    uint64_t unfinished;         /* batches still unanswered when the run ended */
    double elapsed_s;            /* from the first request to the last answer */
    bool interrupted;            /* stopped by SIGINT/SIGTERM */
    struct latency_hist ack;     /* request sent -> 204 read, microseconds */
    uint64_t *acked_per_profile; /* profiles entries; caller frees with loadgen_summary_free */
    char first_error[256];       /* the first 4xx answer or connection error, "" if none */
};

/*
 * loadgen_run sends the load and fills sum. Borrows opt. Returns 0 (also when interrupted, with
 * sum->interrupted set), or a negative errno with err filled for a setup failure.
 */
int loadgen_run(const struct loadgen_options *opt, struct loadgen_summary *sum, char *err,
                size_t errlen);

/* loadgen_summary_free releases what loadgen_run allocated in sum. */
void loadgen_summary_free(struct loadgen_summary *sum);

/* loadgen_profile_name writes the name of profile index i ("<prefix>p<i>") into dst. */
void loadgen_profile_name(const char *prefix, unsigned i, char *dst, size_t cap);

#endif
