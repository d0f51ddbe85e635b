/*
 * redis_rebuild.h: recomputing Redis's live state from the SQL store, so that Redis can be
 * flushed, restarted without persistence, or replaced at any time. The Redis sink calls it by
 * itself when it finds its state lost (sink_redis.c); `telemctl redis rebuild` calls it by hand.
 *
 * Keys (prefix P, spool id in hex H; docs/redis.md has the full list):
 *   P epoch:H           a random token naming the current generation of the live state, or
 *                       "rebuilding:<token>" (with a TTL, renewed as it goes) while a rebuild runs
 *   P cursor:H          the base cursor: every lane has stored everything up to it
 *   P cursor:H:SINK.N   lane N's cursor, when it has gone past the base
 *
 * The algorithm (each step checks that the epoch key still holds its marker):
 *  1. Put the marker into the epoch key (refused while another rebuild's marker is there).
 *     From here every apply call of a running sink answers LOST and writes nothing, so the
 *     sinks pause (RETRY) instead of mixing their writes into the rebuild.
 *  2. K = max(min_cursor, every stored cursor of this spool). The rebuild must reach K: a sink
 *     that stored up to K has let the spool delete those records, so only SQL still has them.
 *     S = the SQL store's cursor for the spool (the lowest of its lane cursors). Wait up to
 *     wait_ms for S >= K (the SQL sinks keep writing meanwhile), else restore the old epoch and
 *     fail with -EAGAIN.
 *  3. Delete every key under the prefix but the epoch key (SCAN + UNLINK).
 *  4. Replay the SQL rows with seq <= S, trades and metrics merged in seq order, through
 *     apply.lua in chunks, advancing the base cursor; no PUBLISH.
 *  5. Set the base cursor to S and the epoch to a new random token, in one script.
 * Sinks then adopt the new epoch when the base cursor is at or past what they had stored,
 * skip records up to S, and apply the rest from the spool, which still holds them because the
 * spool deletes nothing the SQL sink has not stored (DESIGN.md, "Contracts").
 *
 * One Redis prefix holds the live state of one spool: the rebuild deletes everything under it.
 */
#ifndef TELEM_SINK_REDIS_REBUILD_H
#define TELEM_SINK_REDIS_REBUILD_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "sink/redis/redis_apply.h"

#define REDIS_REBUILD_SPOOL_ID_SIZE 16

/* Progress report, called after every chunk: rows replayed so far and the seq reached. */
typedef void (*redis_rebuild_progress_fn)(void *ctx, uint64_t rows, uint64_t seq);

struct redis_rebuild_options {
    const char *prefix;       /* key prefix, e.g. "telem:" */
    const uint8_t *spool_id;  /* 16 bytes; NULL: the one spool the SQL store has cursors for */
    const char *sql_url;      /* the SQL store (redis_source.h) */
    const char *sql_password; /* MariaDB; NULL: the URL's */
    const char *data_dir;     /* base of a relative SQLite path; may be NULL */
    double starting_equity;
    int64_t stream_maxlen;
    uint64_t min_cursor;    /* the rebuild must reach at least this seq (step 2) */
    unsigned wait_ms;       /* how long to wait for the SQL store to reach it; 0: don't wait */
    unsigned chunk_records; /* records per apply call; 0: 5000 */
    unsigned marker_ttl_ms; /* TTL of the "rebuilding:" marker; 0: 30000 */
    redis_rebuild_progress_fn progress; /* may be NULL */
    void *progress_ctx;
};

struct redis_rebuild_result {
    uint8_t spool_id[REDIS_REBUILD_SPOOL_ID_SIZE];
    uint64_t cursor; /* S: the live state holds every row up to it */
    uint64_t trades; /* rows replayed */
    uint64_t metrics;
    char epoch[REDIS_APPLY_EPOCH_MAX + 1]; /* the new generation */
    double seconds;
};

/*
 * redis_rebuild_on rebuilds on an open connection (borrowed; left usable unless it failed with
 * -EIO). Returns 0 with *res filled, or: -EAGAIN (the SQL store has not reached K yet, or Redis
 * is busy/loading), -EBUSY (another rebuild's marker is in place), -ESTALE (the marker vanished
 * mid-way: someone else took over), -EIO (connection), -ENOENT (no such spool in the SQL store,
 * or several and none chosen), -EINVAL (a row the script refused). err says what happened.
 */
int redis_rebuild_on(redisContext *c, const struct redis_rebuild_options *opt,
                     struct redis_rebuild_result *res, char *err, size_t errlen);

/*
 * redis_rebuild_run connects to redis_url (password: overrides the URL's when not NULL; never
 * logged) and runs redis_rebuild_on. Used by `telemctl redis rebuild`. Same returns, plus
 * -EINVAL for a bad URL and -ECONNREFUSED when Redis cannot be reached.
 */
int redis_rebuild_run(const char *redis_url, const char *password,
                      const struct redis_rebuild_options *opt, struct redis_rebuild_result *res,
                      char *err, size_t errlen);

/*
 * redis_rebuild_stored_cursor reads the furthest cursor stored for the spool under prefix: the
 * base cursor and every lane's (of any sink name). Borrows c. Returns 0 with *max (0 when none),
 * or a redis_conn_reply_check code with err filled.
 */
int redis_rebuild_stored_cursor(redisContext *c, const char *prefix, const uint8_t *spool_id,
                                uint64_t *max, char *err, size_t errlen);

/* redis_rebuild_spool_hex writes a spool id as 32 lowercase hex digits and a NUL. */
void redis_rebuild_spool_hex(const uint8_t *id, char hex[2 * REDIS_REBUILD_SPOOL_ID_SIZE + 1]);

/*
 * redis_rebuild_new_token writes 32 random hex digits and a NUL (the epoch tokens). Returns 0 or
 * a negative errno from getrandom.
 */
int redis_rebuild_new_token(char token[33]);

#endif
