/*
 * sink.h: the interface every store implements, and the worker that drives it.
 *
 * A sink is a const function table (struct sink_ops) plus the state its create() builds. The
 * worker (sink_worker.c) owns the threads: one per lane, each reading the spool from its cursor,
 * taking up to batch_max records or waiting flush_interval_ms, and calling write(). write()
 * answers one of three words:
 *   SINK_OK     the batch and the cursor are durably stored, in one transaction;
 *   SINK_RETRY  a transient failure (server down, lock timeout): nothing was stored; the worker
 *               backs off (capped, jittered, without limit) and tries the same batch again;
 *   SINK_ERROR  the store refused the batch for what is in it: the worker splits the batch in
 *               halves until it finds the bad record, quarantines that one to the dead-letter
 *               file, counts it, and stores the rest.
 *
 * Cursor contract (DESIGN.md): a cursor is the last seq a lane has durably stored, inclusive.
 * A lane's cursor passes records of other lanes too (it is "every record up to here that belongs
 * to this lane is stored"), so an idle lane never holds back the spool. The store's copy of the
 * cursor is the truth: open_lane() reads it; the spool's copy only decides deletion.
 *
 * Threads: write() and open_lane() of different lanes run concurrently on one state; a sink
 * with more than one lane must make them thread-safe (each lane borrows its own connection).
 */
#ifndef TELEM_SINK_SINK_H
#define TELEM_SINK_SINK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/record.h"
#include "spool/spool.h"

enum sink_result {
    SINK_OK = 0,
    SINK_RETRY = 1,
    SINK_ERROR = 2,
};

/* One `key = value` of a [sink.NAME] section, with where it came from for error messages. */
struct sink_setting {
    const char *key;
    const char *value;
    const char *file; /* NULL for flags and the environment */
    int line;
};

/* What create() is given. Borrowed: copy what must outlive the call. */
struct sink_config {
    const char *name; /* the section name, e.g. "main" in [sink.main]; also the cursor name */
    const char *url;  /* e.g. "sqlite:/var/lib/telem/telem.db", "mariadb://u@h/db" */
    const struct sink_setting *settings; /* the sink's own keys (generic keys removed) */
    size_t nsettings;
    const uint8_t *spool_id; /* SPOOL_ID_SIZE bytes */
    const char *data_dir;    /* telemd's data folder, for relative paths */
};

/*
 * A writer of Prometheus text, handed to a sink's metrics() so it can add its own series.
 * metric_family prints HELP and TYPE once; the labels of every sample already include
 * sink="NAME".
 */
struct sink_metrics_out {
    FILE *out;
    const char *sink_name;
};

struct sink_ops {
    const char *scheme; /* URL scheme this table serves: "sqlite", "mariadb", "redis" */

    /*
     * create parses url and settings (unknown keys are errors, "key: unknown setting"),
     * allocates the state and does no I/O. Returns 0 and *state, or a negative errno with err
     * filled.
     */
    int (*create)(const struct sink_config *cfg, void **state, char *err, size_t errlen);

    /*
     * lanes returns how many lanes the sink wants (1 unless it writes in parallel). Called once
     * after create.
     */
    unsigned (*lanes)(void *state);

    /*
     * open_lane connects (or borrows a connection), migrates the schema when needed and reads
     * the store's cursor for this spool and lane into *cursor (0 when the store has none).
     * May be called again after RETRY or ERROR. err is filled on failure.
     */
    enum sink_result (*open_lane)(void *state, unsigned lane, uint64_t *cursor, char *err,
                                  size_t errlen);

    /*
     * write stores recs[0..n) (all of this lane, in seq order; n may be 0) and sets this lane's
     * cursor to `cursor` (>= every seq in recs) in the same transaction. Borrows recs. err is
     * filled on RETRY or ERROR.
     */
    enum sink_result (*write)(void *state, unsigned lane, const struct record *recs, size_t n,
                              uint64_t cursor, char *err, size_t errlen);

    /* metrics adds the sink's own series (pool statistics, ...). May be NULL. Thread-safe. */
    void (*metrics)(void *state, const struct sink_metrics_out *m);

    /* destroy closes connections and frees the state. Accepts NULL. */
    void (*destroy)(void *state);
};

/* The sinks compiled in, looked up by URL scheme. */
extern const struct sink_ops sink_sqlite_ops;
extern const struct sink_ops sink_mariadb_ops;
extern const struct sink_ops sink_redis_ops;

/* sink_ops_for_url returns the table whose scheme starts url ("scheme:" ...), or NULL. */
const struct sink_ops *sink_ops_for_url(const char *url);

/* Settings the worker itself takes from a [sink.NAME] section (the rest go to create()). */
struct sink_worker_options {
    int64_t batch_max;         /* records per write, default 5000 */
    int64_t flush_interval_ms; /* wait at most this long to fill a batch, default 100 */
    int64_t retry_base_ms;     /* first backoff, default 100 */
    int64_t retry_max_ms;      /* backoff cap, default 10000 */
    const char *dead_letter;   /* quarantine file; default <data_dir>/dead-letter.<name>.jsonl */
};

/* Per-sink statistics for /metrics and /health, summed over lanes. */
struct sink_stats {
    uint64_t rows;        /* records stored */
    uint64_t batches;     /* successful write() calls */
    uint64_t retries;     /* RETRY answers */
    uint64_t errors;      /* ERROR answers */
    uint64_t quarantined; /* records sent to the dead-letter file */
    uint64_t gap;         /* sequence numbers skipped because the spool no longer had them */
    uint64_t cursor;      /* lowest lane cursor */
    int64_t last_ok_ns;   /* wall time of the last successful write, 0 if none */
    int up;               /* 1 when the last open/write succeeded */
    char last_error[160]; /* last err text, "" if none */
};

struct sink_worker;

/*
 * sink_worker_start creates the sink's state, opens every lane's cursor in the spool and starts
 * one thread per lane. Borrows sp (must outlive the worker) and ops; copies cfg and opt.
 * Returns NULL with err filled when create() fails. A store that is down is not an error here:
 * the lane threads keep retrying open_lane.
 *
 * If a store's cursor is ahead of the spool's head the lane refuses to run (up = 0, an error
 * naming both numbers, and sink_worker_fatal() true): telemd checks that at start and exits.
 */
struct sink_worker *sink_worker_start(struct spool *sp, const struct sink_ops *ops,
                                      const struct sink_config *cfg,
                                      const struct sink_worker_options *opt, char *err,
                                      size_t errlen);

/*
 * sink_worker_stop drains: lanes finish writing what the spool holds (up to drain_ms), then stop
 * and the state is destroyed. Accepts NULL.
 */
void sink_worker_stop(struct sink_worker *w, unsigned drain_ms);

/*
 * sink_worker_fatal returns 1 when a lane refused to run because the store's cursor is ahead of
 * the spool's head (telemd then exits), 0 otherwise. Thread-safe.
 */
int sink_worker_fatal(struct sink_worker *w);

/* sink_worker_stats copies the worker's statistics. Thread-safe. */
void sink_worker_stats(struct sink_worker *w, struct sink_stats *st);

/* sink_worker_name returns the sink's name (its [sink.NAME]). */
const char *sink_worker_name(const struct sink_worker *w);

/* sink_worker_metrics lets the sink add its own series. Thread-safe. */
void sink_worker_metrics(struct sink_worker *w, FILE *out);

/* sink_worker_wait_open waits up to ms for every lane's first open_lane to finish, and
 * returns 0, -ETIMEDOUT, or -ERANGE when a store's cursor is ahead of the spool (err says
 * which sink and both numbers). */
int sink_worker_wait_open(struct sink_worker *w, unsigned ms, char *err, size_t errlen);

#endif
