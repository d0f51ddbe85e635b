/*
 * pool.h: a bounded, thread-safe pool of connections of any kind.
 *
 * The MariaDB and Redis sinks and the query side share this pool so that telemd holds a small,
 * fixed number of server connections however many scripts send to it. A connection type is a
 * const function table (struct pool_conn_ops: connect, ping, close) plus a context pointer that
 * connect() receives; the pool never looks inside a connection.
 *
 * Behaviour:
 *  - At most `max` connections exist, counting those being opened. They are opened lazily by
 *    the borrower that needs one, outside the pool's lock.
 *  - pool_borrow waits up to a timeout, and waiters are served strictly in arrival order: a
 *    returned connection (or a freed slot) is handed to the oldest waiter, never to a newcomer.
 *  - pool_return takes a verdict: a broken connection is closed and its slot freed (the next
 *    borrower opens a new one); a healthy one goes back to the idle set.
 *  - A connection that idled longer than idle_check_ms is pinged before it is lent out; one
 *    older than max_lifetime_ms is closed instead of being reused.
 *  - A failed connect starts a capped, jittered backoff (clock_backoff_ms): until it expires,
 *    borrowers that would have to connect get -EAGAIN at once, with the last connect error in
 *    err, so a server that is down sees no connect storm and a sink worker learns fast that it
 *    has to retry later.
 *  - Statistics (pool_get_stats) feed /metrics through pool_stats_print.
 */
#ifndef TELEM_POOL_POOL_H
#define TELEM_POOL_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* How a pool opens, checks and closes one connection. All three may block. */
struct pool_conn_ops {
    /*
     * connect opens one connection and stores it in *conn. Returns 0, or a negative errno
     * (-ECONNREFUSED when nothing better fits) with err filled; must not leak on failure.
     * Called without the pool's lock, possibly from several threads at once.
     */
    int (*connect)(void *ctx, void **conn, char *err, size_t errlen);

    /* ping checks a connection that sat idle. Returns 0 when it is usable. */
    int (*ping)(void *conn);

    /* close closes and frees a connection. */
    void (*close)(void *conn);
};

struct pool_options {
    unsigned max;               /* most connections at once, >= 1 */
    unsigned borrow_timeout_ms; /* wait used by pool_borrow when timeout_ms < 0 */
    unsigned idle_check_ms;     /* ping a connection idle longer than this; 0: never ping */
    unsigned max_lifetime_ms;   /* retire connections older than this; 0: no limit */
    unsigned backoff_base_ms;   /* first delay after a failed connect (0 means 100) */
    unsigned backoff_max_ms;    /* cap of the delay (0 means 10000) */
};

struct pool_stats {
    unsigned max;              /* configured size */
    unsigned size;             /* open connections, counting ones being opened */
    unsigned in_use;           /* lent out */
    unsigned idle;             /* open and waiting in the pool */
    unsigned waiters;          /* borrowers queued right now */
    uint64_t borrows;          /* successful pool_borrow calls */
    uint64_t timeouts;         /* pool_borrow calls that gave up waiting */
    uint64_t refused;          /* pool_borrow calls answered -EAGAIN during backoff */
    uint64_t wait_ns_total;    /* time successful borrows spent in pool_borrow */
    uint64_t wait_ns_max;      /* longest of them */
    uint64_t connects;         /* connections opened */
    uint64_t connect_failures; /* connect() calls that failed */
    uint64_t broken;           /* connections closed as broken (verdict or failed ping) */
    uint64_t expired;          /* connections closed for max_lifetime_ms */
    bool backing_off;          /* a failed connect's backoff is running */
};

struct pool;

/*
 * pool_create makes an empty pool; no connection is opened yet. Borrows ops (must be a static
 * table) and ctx (must outlive the pool); copies name (used in log lines, e.g. "mariadb main")
 * and opt. Returns NULL when opt->max is 0. Caller frees with pool_destroy.
 */
struct pool *pool_create(const char *name, const struct pool_conn_ops *ops, void *ctx,
                         const struct pool_options *opt);

/*
 * pool_borrow lends one connection into *conn, waiting up to timeout_ms (0: do not wait;
 * negative: the pool's borrow_timeout_ms) behind earlier waiters. Returns 0; -ETIMEDOUT when
 * none came free in time; -EAGAIN when a new connection is needed but the connect backoff is
 * running; or connect()'s negative errno. err is filled on every failure. The caller owns the
 * connection until it hands it back with pool_return.
 */
int pool_borrow(struct pool *p, int timeout_ms, void **conn, char *err, size_t errlen);

/*
 * pool_return hands a borrowed connection back. healthy false means it must not be reused (the
 * server went away, the protocol state is unknown): it is closed and counted as broken.
 * Takes ownership of conn.
 */
void pool_return(struct pool *p, void *conn, bool healthy);

/* pool_get_stats copies the pool's statistics. Thread-safe. */
void pool_get_stats(struct pool *p, struct pool_stats *st);

/*
 * pool_stats_print writes st as Prometheus text, one family per statistic named
 * <family>_<statistic> (family NULL means "telem_pool"; e.g. "telem_sink_mariadb_pool" gives
 * telem_sink_mariadb_pool_in_use), each sample carrying labels (e.g. `sink="main"`, without
 * braces; may be NULL or ""). When with_help is true each family is preceded by its # HELP and
 * # TYPE lines; a scrape must print them once per family, so pools that share a family print
 * them only for the first pool.
 */
void pool_stats_print(const struct pool_stats *st, FILE *out, const char *family,
                      const char *labels, bool with_help);

/*
 * pool_destroy closes every idle connection and frees the pool. Every borrowed connection must
 * have been returned and no thread may be waiting in pool_borrow. Accepts NULL.
 */
void pool_destroy(struct pool *p);

#endif
