/*
 * query_sqlite.c: the read side of the SQLite store (`sqlite:PATH`) for telemctl.
 *
 * Queries run on a connection of their own with `PRAGMA query_only`, so reading never takes a
 * write lock from telemd's sink; in WAL mode they see the last committed batch and never block
 * it. Migration is the one writing operation and uses the schema the SQLite sink itself applies
 * (src/sink/sqlite/sqlite_schema.h), so the tool and the daemon can never disagree about it.
 * Times are integer microseconds in the store and are passed through as such.
 */
#include "cli/query_backend.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "sink/sqlite/sqlite_schema.h"

struct query_sqlite {
    sqlite3 *db;
    char *path;
};

/* query_sqlite_path returns the file path inside a sqlite: URL (or a bare path). */
static const char *query_sqlite_path(const char *url)
{
    if (strncmp(url, "sqlite:", 7) != 0)
        return url;
    const char *p = url + 7;
    if (strncmp(p, "//", 2) == 0)
        p += 2; /* sqlite:///abs/path and sqlite://rel/path */
    return p;
}

static void query_sqlite_close(void *state)
{
    struct query_sqlite *q = state;
    if (!q)
        return;
    sqlite3_close(q->db);
    free(q->path);
    free(q);
}

static int query_sqlite_open(const char *url, bool create, void **state, char *err, size_t errlen)
{
    const char *path = query_sqlite_path(url);
    struct query_sqlite *q = xcalloc(1, sizeof(*q));
    q->path = xstrdup(path);
    int rc = -EINVAL;
    if (!*path) {
        snprintf(err, errlen, "sqlite: no path in '%s'", url);
        goto fail;
    }
    struct stat st;
    if (!create && stat(path, &st) < 0) {
        rc = -errno;
        snprintf(err, errlen, "sqlite: %s: %s (is telemd's data folder elsewhere? use --db)", path,
                 strerror(errno));
        goto fail;
    }
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &q->db, flags, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "sqlite: %s: %s", path,
                 q->db ? sqlite3_errmsg(q->db) : "out of memory");
        rc = -EIO;
        goto fail;
    }
    sqlite3_busy_timeout(q->db, 10000);
    if (!create && sqlite3_exec(q->db, "PRAGMA query_only = 1", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "sqlite: %s: %s", path, sqlite3_errmsg(q->db));
        rc = -EIO;
        goto fail;
    }
    *state = q;
    return 0;

fail:
    query_sqlite_close(q);
    return rc;
}

/*
 * query_sqlite_where appends the filter's conditions on (profile column, name column, time
 * column) to sql; query_sqlite_bind binds them in the same order.
 */
static void query_sqlite_where(char *sql, size_t cap, const struct query_filter *f,
                               const char *name_col, const char *time_col)
{
    size_t n = strlen(sql);
    n += (size_t)snprintf(sql + n, cap - n, " WHERE 1");
    if (f->profile)
        n += (size_t)snprintf(sql + n, cap - n, " AND profile_id = ?");
    if (f->name)
        n += (size_t)snprintf(sql + n, cap - n, " AND %s = ?", name_col);
    if (f->has_since)
        n += (size_t)snprintf(sql + n, cap - n, " AND %s >= ?", time_col);
    if (f->has_until)
        n += (size_t)snprintf(sql + n, cap - n, " AND %s < ?", time_col);
}

/* query_sqlite_order wraps the selection so that a limit keeps the latest rows. */
static void query_sqlite_finish(char *sql, size_t cap, const struct query_filter *f,
                                const char *time_col)
{
    char inner[1024];
    snprintf(inner, sizeof(inner), "%s", sql);
    const char *order = f->order == QUERY_ORDER_PROFILE_TIME ? "profile_id, " : "";
    if (f->limit == 0) {
        snprintf(sql, cap, "%s ORDER BY %s%s, seq", inner, order, time_col);
        return;
    }
    snprintf(sql, cap, "SELECT * FROM (%s ORDER BY %s DESC, seq DESC LIMIT ?) ORDER BY %s%s, seq",
             inner, time_col, order, time_col);
}

static int query_sqlite_prepare(struct query_sqlite *q, const char *sql,
                                const struct query_filter *f, sqlite3_stmt **out, char *err,
                                size_t errlen)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK) {
        const char *msg = sqlite3_errmsg(q->db);
        if (strstr(msg, "no such table"))
            snprintf(err, errlen,
                     "sqlite: %s has no telem tables yet (%s); start telemd on it or run "
                     "`telemctl migrate --db sqlite:%s`",
                     q->path, msg, q->path);
        else
            snprintf(err, errlen, "sqlite: %s: %s", q->path, msg);
        return -EIO;
    }
    int i = 1;
    if (f->profile)
        sqlite3_bind_text(st, i++, f->profile, -1, SQLITE_STATIC);
    if (f->name)
        sqlite3_bind_text(st, i++, f->name, -1, SQLITE_STATIC);
    if (f->has_since)
        sqlite3_bind_int64(st, i++, f->since_us);
    if (f->has_until)
        sqlite3_bind_int64(st, i++, f->until_us);
    if (f->limit)
        sqlite3_bind_int64(st, i++, (sqlite3_int64)f->limit);
    *out = st;
    return 0;
}

static const char *query_sqlite_text(sqlite3_stmt *st, int col)
{
    const unsigned char *s = sqlite3_column_text(st, col);
    return s ? (const char *)s : "";
}

static bool query_sqlite_real(sqlite3_stmt *st, int col, double *out)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return false;
    *out = sqlite3_column_double(st, col);
    return true;
}

static int query_sqlite_step_error(struct query_sqlite *q, int src, char *err, size_t errlen)
{
    snprintf(err, errlen, "sqlite: %s: %s", q->path, sqlite3_errstr(src));
    return -EIO;
}

static int query_sqlite_trades(void *state, const struct query_filter *f,
                               int (*row)(void *ctx, const struct query_trade *r), void *ctx,
                               char *err, size_t errlen)
{
    struct query_sqlite *q = state;
    char sql[2048] = "SELECT seq, profile_id, script, symbol, side, trade_id, qty, entry_price, "
                     "exit_price, pnl, fees, opened_at, closed_at FROM trade_performance";
    query_sqlite_where(sql, sizeof(sql), f, "symbol", "closed_at");
    query_sqlite_finish(sql, sizeof(sql), f, "closed_at");
    sqlite3_stmt *st;
    int rc = query_sqlite_prepare(q, sql, f, &st, err, errlen);
    if (rc < 0)
        return rc;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        struct query_trade t = {0};
        t.seq = sqlite3_column_int64(st, 0);
        t.profile = query_sqlite_text(st, 1);
        t.script = query_sqlite_text(st, 2);
        t.symbol = query_sqlite_text(st, 3);
        t.side = query_sqlite_text(st, 4);
        t.trade_id = query_sqlite_text(st, 5);
        t.has_qty = query_sqlite_real(st, 6, &t.qty);
        t.has_entry_price = query_sqlite_real(st, 7, &t.entry_price);
        t.has_exit_price = query_sqlite_real(st, 8, &t.exit_price);
        t.has_pnl = query_sqlite_real(st, 9, &t.pnl);
        t.has_fees = query_sqlite_real(st, 10, &t.fees);
        t.has_opened_at = sqlite3_column_type(st, 11) != SQLITE_NULL;
        t.opened_at_us = sqlite3_column_int64(st, 11);
        t.closed_at_us = sqlite3_column_int64(st, 12);
        rc = row(ctx, &t);
        if (rc < 0)
            break;
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = query_sqlite_step_error(q, src, err, errlen);
    sqlite3_finalize(st);
    return rc;
}

static int query_sqlite_metrics(void *state, const struct query_filter *f,
                                int (*row)(void *ctx, const struct query_metric *r), void *ctx,
                                char *err, size_t errlen)
{
    struct query_sqlite *q = state;
    char sql[2048] = "SELECT seq, profile_id, script, name, value, ts FROM aggregated_metric";
    query_sqlite_where(sql, sizeof(sql), f, "name", "ts");
    query_sqlite_finish(sql, sizeof(sql), f, "ts");
    sqlite3_stmt *st;
    int rc = query_sqlite_prepare(q, sql, f, &st, err, errlen);
    if (rc < 0)
        return rc;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        struct query_metric m = {0};
        m.seq = sqlite3_column_int64(st, 0);
        m.profile = query_sqlite_text(st, 1);
        m.script = query_sqlite_text(st, 2);
        m.name = query_sqlite_text(st, 3);
        m.value = sqlite3_column_double(st, 4);
        m.ts_us = sqlite3_column_int64(st, 5);
        rc = row(ctx, &m);
        if (rc < 0)
            break;
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = query_sqlite_step_error(q, src, err, errlen);
    sqlite3_finalize(st);
    return rc;
}

static int query_sqlite_migrate(void *state, int *from, int *to, char *err, size_t errlen)
{
    struct query_sqlite *q = state;
    int rc = sqlite_schema_version(q->db, from, err, errlen);
    if (rc == 0)
        rc = sqlite_schema_migrate(q->db, err, errlen);
    if (rc == 0)
        rc = sqlite_schema_version(q->db, to, err, errlen);
    return rc;
}

const struct query_backend_ops query_sqlite_ops = {
    .scheme = "sqlite",
    .open = query_sqlite_open,
    .trades = query_sqlite_trades,
    .metrics = query_sqlite_metrics,
    .migrate = query_sqlite_migrate,
    .close = query_sqlite_close,
};
