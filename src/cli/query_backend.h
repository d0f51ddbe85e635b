/*
 * query_backend.h: the read side of the stores, behind one function table, for telemctl's
 * query, report and migrate commands.
 *
 * A backend serves one URL scheme (`sqlite:PATH`, `mariadb://...`). It opens the store,
 * streams the rows a filter selects to a callback, one row at a time, in time order, and
 * closes. Rows reach the callback with microsecond times, as the stores keep them; strings and
 * the row struct are borrowed for the duration of the call only. To add a store, write its
 * table (query_<scheme>.c) and list it in query_backend.c.
 */
#ifndef TELEM_CLI_QUERY_BACKEND_H
#define TELEM_CLI_QUERY_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum query_order {
    QUERY_ORDER_TIME = 0,     /* by time, then seq: what `query` prints */
    QUERY_ORDER_PROFILE_TIME, /* by profile, then time, then seq: what `report` walks */
};

/* What to select. NULL strings and has_* false mean "no condition". */
struct query_filter {
    const char *profile; /* exact profile name */
    const char *name;    /* metrics: exact metric name; trades: exact symbol */
    bool has_since;      /* time >= since_us (trades: close time) */
    int64_t since_us;
    bool has_until; /* time < until_us */
    int64_t until_us;
    uint64_t limit; /* 0: every row; else the latest `limit` rows, still in time order */
    enum query_order order;
};

/* One row of trade_performance. A has_* flag is false where the store holds NULL. */
struct query_trade {
    int64_t seq;
    const char *profile;
    const char *script; /* "" when NULL */
    const char *symbol;
    const char *side;
    const char *trade_id;
    bool has_qty, has_entry_price, has_exit_price, has_pnl, has_fees, has_opened_at;
    double qty;
    double entry_price;
    double exit_price;
    double pnl;
    double fees;
    int64_t opened_at_us;
    int64_t closed_at_us;
};

/* One row of aggregated_metric. */
struct query_metric {
    int64_t seq;
    const char *profile;
    const char *script; /* "" when NULL */
    const char *name;
    double value;
    int64_t ts_us;
};

struct query_backend_ops {
    const char *scheme; /* "sqlite", "mariadb": the URL's text before ':' */

    /*
     * open connects to the store at url. With create, a missing store is created (migrate);
     * without it a missing store is an error and nothing is written. Returns 0 and *state, or
     * a negative errno with err filled ("sqlite: /x/telem.db: no such file").
     */
    int (*open)(const char *url, bool create, void **state, char *err, size_t errlen);

    /*
     * trades / metrics call row(ctx, r) for every row f selects, in f->order. Borrow f. The
     * callback returns 0 to go on, or a negative errno to stop the walk with that code.
     * Return 0, the callback's negative code, or a negative errno with err filled.
     */
    int (*trades)(void *state, const struct query_filter *f,
                  int (*row)(void *ctx, const struct query_trade *r), void *ctx, char *err,
                  size_t errlen);
    int (*metrics)(void *state, const struct query_filter *f,
                   int (*row)(void *ctx, const struct query_metric *r), void *ctx, char *err,
                   size_t errlen);

    /*
     * migrate brings the store's schema to the version this build knows and sets *from and *to
     * to the versions before and after. May be NULL (the store cannot be migrated from here).
     */
    int (*migrate)(void *state, int *from, int *to, char *err, size_t errlen);

    /* close disconnects and frees the state. Accepts NULL. */
    void (*close)(void *state);
};

extern const struct query_backend_ops query_sqlite_ops;
extern const struct query_backend_ops query_mariadb_ops;

struct sink_mariadb_admin;

/*
 * query_mariadb_admin_open connects to the MariaDB store at url (mariadb://USER@HOST[:PORT]/DB
 * or ...?socket=/PATH) the way telemd's MariaDB sink does, with the password taken from
 * TELEM_MARIADB_PASSWORD (never from the command line). Borrows url. Returns 0 with *a filled
 * (caller closes with sink_mariadb_admin_close), or a negative errno with err filled. For the
 * other MariaDB readers of telemctl (loadgen --verify).
 */
int query_mariadb_admin_open(const char *url, struct sink_mariadb_admin *a, char *err,
                             size_t errlen);

/*
 * query_backend_for_url returns the table that serves url's scheme, or NULL. A bare path
 * (no scheme) is taken as SQLite.
 */
const struct query_backend_ops *query_backend_for_url(const char *url);

/* query_backend_schemes lists the schemes compiled in, for messages ("sqlite, mariadb"). The
 * text is kept in a static buffer: call it from one thread. */
const char *query_backend_schemes(void);

#endif
