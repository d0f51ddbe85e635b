/*
 * query_mariadb.c: the read side of the MariaDB store (`mariadb://USER@HOST[:PORT]/DB` or
 * `mariadb://USER@localhost/DB?socket=/PATH`) for telemctl.
 *
 * The connection is the MariaDB sink's administrative one (sink_mariadb_admin_open), so the URL
 * is parsed and the server configured (utf8mb4, UTC, strict mode) exactly as telemd does it. The
 * password never comes from the command line: it is read from TELEM_MARIADB_PASSWORD and handed
 * over as the sink's `password` setting. Every filter value travels as a bound parameter of a
 * prepared statement, never inside the SQL text, and rows are fetched one at a time from the
 * server (no mysql_stmt_store_result), so a large table is walked in constant memory. The store
 * keeps DATETIME(6) in UTC; times are converted to and from microseconds with mariadb_time.h.
 * Migration runs the schema code of the sink (mariadb_schema_migrate), so the tool and the
 * daemon can never disagree about it.
 */
#include "cli/query_backend.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mysql.h>
#include <mysqld_error.h>

#include "core/alloc.h"
#include "sink/mariadb/mariadb_schema.h"
#include "sink/mariadb/mariadb_time.h"
#include "sink/mariadb/sink_mariadb.h"

/* The environment variable that holds the password, as for a sink named "mariadb". */
#define QUERY_MARIADB_PASSWORD_ENV "TELEM_MARIADB_PASSWORD"

/* Room for the longest string column (VARCHAR(128) of 4-byte characters) and a NUL. */
#define QUERY_MARIADB_TEXT_MAX 1024

/* Most parameters a query binds: profile, name, since, until, limit. */
#define QUERY_MARIADB_PARAMS_MAX 5

struct query_mariadb {
    struct sink_mariadb_admin admin;
    char *url; /* for messages: the URL never holds a password */
};

/* One string column of a result row, fetched into a fixed buffer. */
struct query_mariadb_text {
    char buf[QUERY_MARIADB_TEXT_MAX];
    unsigned long len;
    my_bool is_null;
    my_bool error;
};

/* One DOUBLE column that may be NULL. */
struct query_mariadb_real {
    double v;
    my_bool is_null;
};

/* One DATETIME(6) column that may be NULL. */
struct query_mariadb_time {
    MYSQL_TIME t;
    my_bool is_null;
};

int query_mariadb_admin_open(const char *url, struct sink_mariadb_admin *a, char *err,
                             size_t errlen)
{
    static const uint8_t no_spool[16];
    struct sink_setting password = {
        .key = "password",
        .value = getenv(QUERY_MARIADB_PASSWORD_ENV),
    };
    struct sink_config cfg = {
        .name = "mariadb",
        .url = url,
        .settings = &password,
        .nsettings = password.value ? 1 : 0,
        .spool_id = no_spool,
        .data_dir = ".",
    };
    return sink_mariadb_admin_open(&cfg, a, err, errlen);
}

static void query_mariadb_close(void *state)
{
    struct query_mariadb *q = state;
    if (!q)
        return;
    sink_mariadb_admin_close(&q->admin);
    free(q->url);
    free(q);
}

/*
 * open does not create a database even with create: the server's administrator does that (and
 * grants it); migrate creates the tables inside it. Opening writes nothing.
 */
static int query_mariadb_open(const char *url, bool create, void **state, char *err, size_t errlen)
{
    (void)create;
    struct query_mariadb *q = xcalloc(1, sizeof(*q));
    q->url = xstrdup(url);
    char msg[400] = "";
    int rc = query_mariadb_admin_open(url, &q->admin, msg, sizeof(msg));
    if (rc < 0) {
        snprintf(err, errlen, "mariadb: %s%s", msg,
                 getenv(QUERY_MARIADB_PASSWORD_ENV)
                     ? ""
                     : " (no password given: set " QUERY_MARIADB_PASSWORD_ENV " if one is needed)");
        goto fail;
    }
    *state = q;
    return 0;

fail:
    query_mariadb_close(q);
    return rc;
}

/*
 * query_mariadb_select builds the statement for the columns in `select` from `table`: the
 * filter's conditions on (name column, time column) as placeholders, the order f asks for, and
 * for a limit a derived table that keeps the latest rows and puts them back in order. The
 * placeholders are bound by query_mariadb_bind in the same order.
 */
static void query_mariadb_select(char *sql, size_t cap, const char *select, const char *table,
                                 const struct query_filter *f, const char *name_col,
                                 const char *time_col)
{
    char inner[1024];
    size_t n = (size_t)snprintf(inner, sizeof(inner), "SELECT %s FROM %s WHERE 1", select, table);
    if (f->profile)
        n += (size_t)snprintf(inner + n, sizeof(inner) - n, " AND profile_id = ?");
    if (f->name)
        n += (size_t)snprintf(inner + n, sizeof(inner) - n, " AND %s = ?", name_col);
    if (f->has_since)
        n += (size_t)snprintf(inner + n, sizeof(inner) - n, " AND %s >= ?", time_col);
    if (f->has_until)
        n += (size_t)snprintf(inner + n, sizeof(inner) - n, " AND %s < ?", time_col);
    const char *order = f->order == QUERY_ORDER_PROFILE_TIME ? "profile_id, " : "";
    if (f->limit == 0)
        snprintf(sql, cap, "%s ORDER BY %s%s, seq", inner, order, time_col);
    else
        snprintf(sql, cap,
                 "SELECT * FROM (%s ORDER BY %s DESC, seq DESC LIMIT ?) AS latest "
                 "ORDER BY %s%s, seq",
                 inner, time_col, order, time_col);
}

/*
 * query_mariadb_time_param fills *t with the DATETIME of us, clamped to the years DATETIME
 * holds: every stored time is inside them, so a bound beyond them selects the same rows.
 */
static void query_mariadb_time_param(int64_t us, MYSQL_TIME *t)
{
    if (us < MARIADB_TIME_MIN_US)
        us = MARIADB_TIME_MIN_US;
    if (us >= MARIADB_TIME_END_US)
        us = MARIADB_TIME_END_US - 1;
    int rc = mariadb_time_from_us(us, t);
    (void)rc;
    assert(rc == 0);
}

static void query_mariadb_bind_text(MYSQL_BIND *b, const char *s, unsigned long *len)
{
    *len = (unsigned long)strlen(s);
    b->buffer_type = MYSQL_TYPE_STRING;
    b->buffer = (void *)s;
    b->buffer_length = *len;
    b->length = len;
}

static void query_mariadb_bind_time(MYSQL_BIND *b, MYSQL_TIME *t)
{
    b->buffer_type = MYSQL_TYPE_DATETIME;
    b->buffer = t;
}

/* query_mariadb_error words a server error, pointing at migrate when the tables are missing. */
static int query_mariadb_error(struct query_mariadb *q, unsigned code, const char *msg, char *err,
                               size_t errlen)
{
    if (code == ER_NO_SUCH_TABLE)
        snprintf(err, errlen,
                 "mariadb: %s has no telem tables yet (%s); start telemd on it or run "
                 "`telemctl migrate --db %s`",
                 q->url, msg, q->url);
    else
        snprintf(err, errlen, "mariadb: %s: %s (error %u)", q->url, msg, code);
    return -EIO;
}

static int query_mariadb_stmt_error(struct query_mariadb *q, MYSQL_STMT *st, char *err,
                                    size_t errlen)
{
    return query_mariadb_error(q, mysql_stmt_errno(st), mysql_stmt_error(st), err, errlen);
}

/*
 * query_mariadb_start prepares sql, binds f's values to its placeholders, executes it and binds
 * the result columns to res. Returns 0 and *out (caller closes with mysql_stmt_close), or -EIO
 * with err filled.
 */
static int query_mariadb_start(struct query_mariadb *q, const char *sql,
                               const struct query_filter *f, MYSQL_BIND *res, MYSQL_STMT **out,
                               char *err, size_t errlen)
{
    MYSQL_STMT *st = mysql_stmt_init(q->admin.mysql);
    if (!st)
        return query_mariadb_error(q, mysql_errno(q->admin.mysql), "out of memory", err, errlen);
    MYSQL_BIND params[QUERY_MARIADB_PARAMS_MAX];
    unsigned long lens[QUERY_MARIADB_PARAMS_MAX];
    MYSQL_TIME since, until;
    unsigned long long limit = f->limit;
    memset(params, 0, sizeof(params));
    unsigned i = 0;
    if (f->profile) {
        query_mariadb_bind_text(&params[i], f->profile, &lens[i]);
        i++;
    }
    if (f->name) {
        query_mariadb_bind_text(&params[i], f->name, &lens[i]);
        i++;
    }
    if (f->has_since) {
        query_mariadb_time_param(f->since_us, &since);
        query_mariadb_bind_time(&params[i++], &since);
    }
    if (f->has_until) {
        query_mariadb_time_param(f->until_us, &until);
        query_mariadb_bind_time(&params[i++], &until);
    }
    if (f->limit) {
        params[i].buffer_type = MYSQL_TYPE_LONGLONG;
        params[i].buffer = &limit;
        params[i].is_unsigned = 1;
        i++;
    }
    int rc = -EIO;
    if (mysql_stmt_prepare(st, sql, (unsigned long)strlen(sql)) != 0 ||
        (i && mysql_stmt_bind_param(st, params) != 0) || mysql_stmt_execute(st) != 0 ||
        mysql_stmt_bind_result(st, res) != 0) {
        rc = query_mariadb_stmt_error(q, st, err, errlen);
        goto fail;
    }
    *out = st;
    return 0;

fail:
    mysql_stmt_close(st);
    return rc;
}

static void query_mariadb_result_text(MYSQL_BIND *b, struct query_mariadb_text *c)
{
    b->buffer_type = MYSQL_TYPE_STRING;
    b->buffer = c->buf;
    b->buffer_length = sizeof(c->buf) - 1;
    b->length = &c->len;
    b->is_null = &c->is_null;
    b->error = &c->error;
}

static void query_mariadb_result_real(MYSQL_BIND *b, struct query_mariadb_real *c)
{
    b->buffer_type = MYSQL_TYPE_DOUBLE;
    b->buffer = &c->v;
    b->is_null = &c->is_null;
}

static void query_mariadb_result_time(MYSQL_BIND *b, struct query_mariadb_time *c)
{
    b->buffer_type = MYSQL_TYPE_DATETIME;
    b->buffer = &c->t;
    b->is_null = &c->is_null;
}

static void query_mariadb_result_seq(MYSQL_BIND *b, unsigned long long *seq, my_bool *is_null)
{
    b->buffer_type = MYSQL_TYPE_LONGLONG;
    b->buffer = seq;
    b->is_unsigned = 1;
    b->is_null = is_null;
}

/* query_mariadb_str returns the fetched text, "" for NULL. */
static const char *query_mariadb_str(struct query_mariadb_text *c)
{
    if (c->is_null)
        return "";
    c->buf[c->len < sizeof(c->buf) ? c->len : sizeof(c->buf) - 1] = '\0';
    return c->buf;
}

/*
 * query_mariadb_fetch fetches the next row: 1 for a row, 0 at the end, or -EIO with err filled
 * (a server error, or a string longer than any column telem creates).
 */
static int query_mariadb_fetch(struct query_mariadb *q, MYSQL_STMT *st, char *err, size_t errlen)
{
    int frc = mysql_stmt_fetch(st);
    if (frc == 0)
        return 1;
    if (frc == MYSQL_NO_DATA)
        return 0;
    if (frc == MYSQL_DATA_TRUNCATED) {
        snprintf(err, errlen, "mariadb: %s: a string value is longer than %d bytes", q->url,
                 QUERY_MARIADB_TEXT_MAX - 1);
        return -EIO;
    }
    return query_mariadb_stmt_error(q, st, err, errlen);
}

static int query_mariadb_trades(void *state, const struct query_filter *f,
                                int (*row)(void *ctx, const struct query_trade *r), void *ctx,
                                char *err, size_t errlen)
{
    struct query_mariadb *q = state;
    char sql[2048];
    query_mariadb_select(sql, sizeof(sql),
                         "seq, profile_id, script, symbol, side, trade_id, qty, entry_price, "
                         "exit_price, pnl, fees, opened_at, closed_at",
                         MARIADB_TABLE_TRADES, f, "symbol", "closed_at");
    struct {
        unsigned long long seq;
        my_bool seq_null;
        struct query_mariadb_text profile, script, symbol, side, trade_id;
        struct query_mariadb_real qty, entry, exit, pnl, fees;
        struct query_mariadb_time opened, closed;
    } c;
    MYSQL_BIND res[13];
    memset(&c, 0, sizeof(c));
    memset(res, 0, sizeof(res));
    query_mariadb_result_seq(&res[0], &c.seq, &c.seq_null);
    query_mariadb_result_text(&res[1], &c.profile);
    query_mariadb_result_text(&res[2], &c.script);
    query_mariadb_result_text(&res[3], &c.symbol);
    query_mariadb_result_text(&res[4], &c.side);
    query_mariadb_result_text(&res[5], &c.trade_id);
    query_mariadb_result_real(&res[6], &c.qty);
    query_mariadb_result_real(&res[7], &c.entry);
    query_mariadb_result_real(&res[8], &c.exit);
    query_mariadb_result_real(&res[9], &c.pnl);
    query_mariadb_result_real(&res[10], &c.fees);
    query_mariadb_result_time(&res[11], &c.opened);
    query_mariadb_result_time(&res[12], &c.closed);
    MYSQL_STMT *st;
    int rc = query_mariadb_start(q, sql, f, res, &st, err, errlen);
    if (rc < 0)
        return rc;
    while ((rc = query_mariadb_fetch(q, st, err, errlen)) == 1) {
        struct query_trade t = {0};
        t.seq = c.seq_null ? 0 : (int64_t)c.seq;
        t.profile = query_mariadb_str(&c.profile);
        t.script = query_mariadb_str(&c.script);
        t.symbol = query_mariadb_str(&c.symbol);
        t.side = query_mariadb_str(&c.side);
        t.trade_id = query_mariadb_str(&c.trade_id);
        t.has_qty = !c.qty.is_null;
        t.qty = c.qty.v;
        t.has_entry_price = !c.entry.is_null;
        t.entry_price = c.entry.v;
        t.has_exit_price = !c.exit.is_null;
        t.exit_price = c.exit.v;
        t.has_pnl = !c.pnl.is_null;
        t.pnl = c.pnl.v;
        t.has_fees = !c.fees.is_null;
        t.fees = c.fees.v;
        t.has_opened_at = !c.opened.is_null;
        t.opened_at_us = c.opened.is_null ? 0 : mariadb_time_to_us(&c.opened.t);
        t.closed_at_us = c.closed.is_null ? 0 : mariadb_time_to_us(&c.closed.t);
        rc = row(ctx, &t);
        if (rc < 0)
            break;
    }
    mysql_stmt_close(st);
    return rc;
}

static int query_mariadb_metrics(void *state, const struct query_filter *f,
                                 int (*row)(void *ctx, const struct query_metric *r), void *ctx,
                                 char *err, size_t errlen)
{
    struct query_mariadb *q = state;
    char sql[2048];
    query_mariadb_select(sql, sizeof(sql), "seq, profile_id, script, name, value, ts",
                         MARIADB_TABLE_METRICS, f, "name", "ts");
    struct {
        unsigned long long seq;
        my_bool seq_null;
        struct query_mariadb_text profile, script, name;
        struct query_mariadb_real value;
        struct query_mariadb_time ts;
    } c;
    MYSQL_BIND res[6];
    memset(&c, 0, sizeof(c));
    memset(res, 0, sizeof(res));
    query_mariadb_result_seq(&res[0], &c.seq, &c.seq_null);
    query_mariadb_result_text(&res[1], &c.profile);
    query_mariadb_result_text(&res[2], &c.script);
    query_mariadb_result_text(&res[3], &c.name);
    query_mariadb_result_real(&res[4], &c.value);
    query_mariadb_result_time(&res[5], &c.ts);
    MYSQL_STMT *st;
    int rc = query_mariadb_start(q, sql, f, res, &st, err, errlen);
    if (rc < 0)
        return rc;
    while ((rc = query_mariadb_fetch(q, st, err, errlen)) == 1) {
        struct query_metric m = {0};
        m.seq = c.seq_null ? 0 : (int64_t)c.seq;
        m.profile = query_mariadb_str(&c.profile);
        m.script = query_mariadb_str(&c.script);
        m.name = query_mariadb_str(&c.name);
        m.value = c.value.is_null ? 0 : c.value.v;
        m.ts_us = c.ts.is_null ? 0 : mariadb_time_to_us(&c.ts.t);
        rc = row(ctx, &m);
        if (rc < 0)
            break;
    }
    mysql_stmt_close(st);
    return rc;
}

static int query_mariadb_migrate(void *state, int *from, int *to, char *err, size_t errlen)
{
    struct query_mariadb *q = state;
    struct mariadb_schema_shape shape;
    char msg[400] = "";
    int rc = mariadb_schema_describe(q->admin.mysql, &shape, msg, sizeof(msg));
    if (rc == 0) {
        *from = shape.version;
        rc = mariadb_schema_migrate(q->admin.mysql, &q->admin.schema, msg, sizeof(msg));
    }
    if (rc == 0)
        rc = mariadb_schema_describe(q->admin.mysql, &shape, msg, sizeof(msg));
    if (rc < 0) {
        snprintf(err, errlen, "mariadb: %s: %s", q->url, msg);
        return rc;
    }
    *to = shape.version;
    return 0;
}

const struct query_backend_ops query_mariadb_ops = {
    .scheme = "mariadb",
    .open = query_mariadb_open,
    .trades = query_mariadb_trades,
    .metrics = query_mariadb_metrics,
    .migrate = query_mariadb_migrate,
    .close = query_mariadb_close,
};
