/*
 * sink_sqlite.c: the embedded SQLite store, the sink telemd uses when no other is configured.
 *
 * URL `sqlite:PATH` or `sqlite://PATH`; a relative PATH lives in telemd's data folder. One lane,
 * one connection, owned by the lane thread. The database runs in WAL mode with
 * synchronous=FULL by default, so a batch is durable when its COMMIT returns and the spool may
 * then delete it (DESIGN.md, "Durable before delete").
 *
 * A write is one BEGIN IMMEDIATE ... COMMIT holding the batch's rows and this sink's cursor
 * row. Rows go in through statements prepared once: multi-row INSERTs of
 * SINK_SQLITE_ROWS_PER_INSERT rows for the bulk of a batch, single-row ones for the remainder, all
 * `ON CONFLICT DO NOTHING` so a replay or a repeated trade_id is a no-op while NOT NULL and
 * other constraint failures still fail the batch (and are answered SINK_ERROR, so the worker can
 * find and quarantine the offending record). Lock, I/O and disk-full failures are SINK_RETRY.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/conf.h"
#include "core/log.h"
#include "sink/sink.h"
#include "sink/sqlite/sqlite_schema.h"

/*
 * Rows bound into one INSERT statement. Measured with 5000-row batches (instructions per row,
 * rows grouped by profile): one row per statement 23k, 25 rows 19k, 50 rows 18k, 100 rows
 * 17.6k. Most of the saving is the per-statement cost of the VDBE; beyond 100 it is lost in
 * the noise.
 */
#define SINK_SQLITE_ROWS_PER_INSERT 100

#define SINK_SQLITE_TRADE_PARAMS  13 /* per row, besides the shared ?1 spool_id */
#define SINK_SQLITE_METRIC_PARAMS 6
#define SINK_SQLITE_SQL_MAX       16384 /* bytes of the longest INSERT's text */

_Static_assert(SINK_SQLITE_ROWS_PER_INSERT *(8 + 8 * SINK_SQLITE_TRADE_PARAMS) + 256 <=
                   SINK_SQLITE_SQL_MAX,
               "the multi-row INSERT must fit its buffer");

enum sqlite_sync_mode {
    SINK_SQLITE_SYNC_FULL = 0,
    SINK_SQLITE_SYNC_NORMAL = 1,
};

struct sqlite_settings {
    int synchronous; /* enum sqlite_sync_mode */
    int64_t busy_timeout_ms;
    int64_t cache_size_kb;
    uint64_t mmap_size;
    int64_t wal_autocheckpoint;
};

static const struct conf_entry sqlite_sink_conf[] = {
    {"synchronous", CONF_ENUM, "full", offsetof(struct sqlite_settings, synchronous),
     "full: every commit is durable before the spool may delete it; normal: faster, but a "
     "power loss may lose the last commits after the spool dropped them",
     0, 0, "full|normal"},
    {"busy_timeout_ms", CONF_INT, "5000", offsetof(struct sqlite_settings, busy_timeout_ms),
     "how long a write waits for another process's lock before it is retried", 0, 3600000, NULL},
    /* 16 MiB of cache and no mapping keep telemd near 48 MiB RSS; measured at 300,000 rows/s
     * (300 x 3 senders) they stored as fast as 64 MiB and a 256 MiB mapping (220 MiB RSS). */
    {"cache_size_kb", CONF_INT, "16384", offsetof(struct sqlite_settings, cache_size_kb),
     "page cache of the connection, in KiB", 64, 16777216, NULL},
    {"mmap_size", CONF_BYTES, "0", offsetof(struct sqlite_settings, mmap_size),
     "bytes of the database file mapped into memory (0: none; mapped pages count in telemd's "
     "RSS)",
     0, 0, NULL},
    {"wal_autocheckpoint", CONF_INT, "10000", offsetof(struct sqlite_settings, wal_autocheckpoint),
     "checkpoint the WAL into the database once it holds this many pages (0: never)", 0, 1000000000,
     NULL},
    {NULL, 0, NULL, 0, NULL, 0, 0, NULL},
};

struct sqlite_sink {
    char *path;
    char *cursor_name;
    uint8_t spool_id[SPOOL_ID_SIZE];
    struct sqlite_settings set;

    /* Used by the lane thread only. */
    sqlite3 *db;
    sqlite3_stmt *begin;
    sqlite3_stmt *commit;
    sqlite3_stmt *trade_many;
    sqlite3_stmt *trade_one;
    sqlite3_stmt *metric_many;
    sqlite3_stmt *metric_one;
    sqlite3_stmt *cursor_put;
    const struct record **order; /* a batch's records, trades then metrics, by profile */
    size_t order_cap;

    /* Read by metrics() from other threads. */
    _Atomic uint64_t trades;
    _Atomic uint64_t metrics;
};

/* sqlite_us converts nanoseconds to microseconds, rounding toward negative infinity. */
static int64_t sqlite_us(int64_t ns)
{
    int64_t us = ns / 1000;
    if (ns % 1000 < 0)
        us--;
    return us;
}

/*
 * sqlite_result maps an SQLite result code to the worker's three words: the store refusing the
 * data is SINK_ERROR; everything else (locks, I/O, a full disk, a broken file) may pass and is
 * SINK_RETRY.
 */
static enum sink_result sqlite_result(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
        return SINK_ERROR;
    default:
        return SINK_RETRY;
    }
}

/* sqlite_connection_broken says whether rc means the connection should be reopened. */
static bool sqlite_connection_broken(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_IOERR:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_CANTOPEN:
        return true;
    default:
        return false;
    }
}

static void sqlite_close_db(struct sqlite_sink *s)
{
    sqlite3_stmt **stmts[] = {&s->begin,       &s->commit,     &s->trade_many, &s->trade_one,
                              &s->metric_many, &s->metric_one, &s->cursor_put};
    for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++) {
        sqlite3_finalize(*stmts[i]);
        *stmts[i] = NULL;
    }
    if (s->db) {
        int rc = sqlite3_close(s->db);
        if (rc != SQLITE_OK)
            LOG_WARN("sink.sqlite", "%s: close: %s", s->path, sqlite3_errstr(rc));
        s->db = NULL;
    }
}

/*
 * sqlite_values appends `rows` groups "(?1, ?a, ?b, ...)" of 1 + params parameters each, and
 * the conflict clause, to sql. Returns 0, or -ENOSPC when sql[cap] is too small.
 */
static int sqlite_values(char *sql, size_t cap, unsigned rows, unsigned params)
{
    size_t len = strlen(sql);
    unsigned next = 2;
    for (unsigned r = 0; r < rows; r++) {
        int n = snprintf(sql + len, cap - len, "%s(?1", r ? ", " : "");
        for (unsigned p = 0; n >= 0 && (size_t)n < cap - len && p < params; p++) {
            len += (size_t)n;
            n = snprintf(sql + len, cap - len, ", ?%u", next++);
        }
        if (n < 0 || (size_t)n >= cap - len)
            return -ENOSPC;
        len += (size_t)n;
        n = snprintf(sql + len, cap - len, ")");
        if (n < 0 || (size_t)n >= cap - len)
            return -ENOSPC;
        len += (size_t)n;
    }
    int n = snprintf(sql + len, cap - len, " ON CONFLICT DO NOTHING");
    return n < 0 || (size_t)n >= cap - len ? -ENOSPC : 0;
}

static int sqlite_prepare_insert(struct sqlite_sink *s, const char *head, unsigned rows,
                                 unsigned params, sqlite3_stmt **out)
{
    char sql[SINK_SQLITE_SQL_MAX];
    snprintf(sql, sizeof(sql), "%s", head);
    if (sqlite_values(sql, sizeof(sql), rows, params) < 0)
        return SQLITE_TOOBIG;
    int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);
    if (rc != SQLITE_OK)
        return rc;
    /* Bindings outlive sqlite3_reset, so the spool id is bound once for good. */
    return sqlite3_bind_blob(*out, 1, s->spool_id, SPOOL_ID_SIZE, SQLITE_STATIC);
}

static int sqlite_prepare_all(struct sqlite_sink *s)
{
    static const char trade_head[] =
        "INSERT INTO " SINK_SQLITE_TABLE_TRADES " (" SINK_SQLITE_TRADE_COLUMNS ") VALUES ";
    static const char metric_head[] =
        "INSERT INTO " SINK_SQLITE_TABLE_METRICS " (" SINK_SQLITE_METRIC_COLUMNS ") VALUES ";
    int rc = sqlite3_prepare_v3(s->db, "BEGIN IMMEDIATE", -1, SQLITE_PREPARE_PERSISTENT, &s->begin,
                                NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v3(s->db, "COMMIT", -1, SQLITE_PREPARE_PERSISTENT, &s->commit, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite_prepare_insert(s, trade_head, SINK_SQLITE_ROWS_PER_INSERT,
                                   SINK_SQLITE_TRADE_PARAMS, &s->trade_many);
    if (rc == SQLITE_OK)
        rc = sqlite_prepare_insert(s, trade_head, 1, SINK_SQLITE_TRADE_PARAMS, &s->trade_one);
    if (rc == SQLITE_OK)
        rc = sqlite_prepare_insert(s, metric_head, SINK_SQLITE_ROWS_PER_INSERT,
                                   SINK_SQLITE_METRIC_PARAMS, &s->metric_many);
    if (rc == SQLITE_OK)
        rc = sqlite_prepare_insert(s, metric_head, 1, SINK_SQLITE_METRIC_PARAMS, &s->metric_one);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v3(s->db,
                                "INSERT INTO " SINK_SQLITE_TABLE_CURSORS
                                " (" SINK_SQLITE_CURSOR_COLUMNS ") VALUES (?1, ?2, ?3, ?4)"
                                " ON CONFLICT (spool_id, sink) DO UPDATE SET seq = excluded.seq,"
                                " updated_at = excluded.updated_at",
                                -1, SQLITE_PREPARE_PERSISTENT, &s->cursor_put, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob(s->cursor_put, 1, s->spool_id, SPOOL_ID_SIZE, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s->cursor_put, 2, s->cursor_name, -1, SQLITE_STATIC);
    return rc;
}

/* sqlite_pragma runs one PRAGMA and, when want is not NULL, checks the value it answers. */
static int sqlite_pragma(sqlite3 *db, const char *sql, const char *want, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && want) {
        const char *got = (const char *)sqlite3_column_text(st, 0);
        if (!got || strcasecmp(got, want) != 0)
            LOG_WARN("sink.sqlite", "%s answered '%s', not '%s'", sql, got ? got : "", want);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(st);
    return SQLITE_OK;

fail:
    snprintf(err, errlen, "sqlite: %s: %s", sql, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc;
}

/* sqlite_open_db opens the file, sets it up and prepares the statements. */
static enum sink_result sqlite_open_db(struct sqlite_sink *s, char *err, size_t errlen)
{
    int rc = sqlite3_open_v2(
        s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "sqlite: %s: %s", s->path,
                 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, (int)s->set.busy_timeout_ms);

    char sql[96];
    rc = sqlite_pragma(s->db, "PRAGMA journal_mode = WAL", "wal", err, errlen);
    if (rc == SQLITE_OK)
        rc = sqlite_pragma(s->db,
                           s->set.synchronous == SINK_SQLITE_SYNC_FULL
                               ? "PRAGMA synchronous = FULL"
                               : "PRAGMA synchronous = NORMAL",
                           NULL, err, errlen);
    if (rc == SQLITE_OK)
        rc = sqlite_pragma(s->db, "PRAGMA temp_store = MEMORY", NULL, err, errlen);
    if (rc == SQLITE_OK) {
        snprintf(sql, sizeof(sql), "PRAGMA cache_size = -%lld", (long long)s->set.cache_size_kb);
        rc = sqlite_pragma(s->db, sql, NULL, err, errlen);
    }
    if (rc == SQLITE_OK) {
        snprintf(sql, sizeof(sql), "PRAGMA mmap_size = %llu", (unsigned long long)s->set.mmap_size);
        rc = sqlite_pragma(s->db, sql, NULL, err, errlen);
    }
    if (rc == SQLITE_OK) {
        snprintf(sql, sizeof(sql), "PRAGMA wal_autocheckpoint = %lld",
                 (long long)s->set.wal_autocheckpoint);
        rc = sqlite_pragma(s->db, sql, NULL, err, errlen);
    }
    if (rc != SQLITE_OK)
        goto fail;

    int mrc = sqlite_schema_migrate(s->db, err, errlen);
    if (mrc == -EPROTO) {
        sqlite_close_db(s);
        return SINK_ERROR;
    }
    if (mrc < 0)
        goto fail;

    rc = sqlite_prepare_all(s);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "sqlite: preparing statements: %s", sqlite3_errmsg(s->db));
        goto fail;
    }
    return SINK_OK;

fail:
    sqlite_close_db(s);
    return SINK_RETRY;
}

/* sqlite_resolve_path takes the file path out of url and makes it absolute under data_dir. */
static int sqlite_resolve_path(const char *url, const char *data_dir, char **path, char *err,
                               size_t errlen)
{
    const char *p = url + strlen("sqlite:");
    if (strncmp(p, "//", 2) == 0)
        p += 2;
    if (*p == '\0') {
        snprintf(err, errlen, "%s: the URL names no database file (sqlite:PATH)", url);
        return -EINVAL;
    }
    if (p[0] == '/' || !data_dir || !*data_dir) {
        *path = xstrdup(p);
        return 0;
    }
    size_t len = strlen(data_dir) + 1 + strlen(p) + 1;
    *path = xmalloc(len);
    snprintf(*path, len, "%s/%s", data_dir, p);
    return 0;
}

static void sqlite_sink_destroy(void *state)
{
    struct sqlite_sink *s = state;
    if (!s)
        return;
    sqlite_close_db(s);
    free(s->order);
    free(s->path);
    free(s->cursor_name);
    free(s);
}

static int sqlite_sink_create(const struct sink_config *cfg, void **state, char *err, size_t errlen)
{
    struct sqlite_sink *s = xcalloc(1, sizeof(*s));
    int rc = conf_defaults(sqlite_sink_conf, &s->set);
    if (rc < 0) {
        snprintf(err, errlen, "sqlite: bad built-in defaults");
        goto fail;
    }
    for (size_t i = 0; i < cfg->nsettings; i++) {
        const struct sink_setting *kv = &cfg->settings[i];
        char msg[192];
        rc = conf_set(sqlite_sink_conf, &s->set, kv->key, kv->value, msg, sizeof(msg));
        if (rc < 0) {
            if (kv->file)
                snprintf(err, errlen, "%s:%d: %s", kv->file, kv->line, msg);
            else
                snprintf(err, errlen, "%s", msg);
            goto fail;
        }
    }
    if (strncasecmp(cfg->url, "sqlite:", strlen("sqlite:")) != 0) {
        snprintf(err, errlen, "%s: not an sqlite: URL", cfg->url);
        rc = -EINVAL;
        goto fail;
    }
    rc = sqlite_resolve_path(cfg->url, cfg->data_dir, &s->path, err, errlen);
    if (rc < 0)
        goto fail;
    s->cursor_name = xstrdup(cfg->name);
    memcpy(s->spool_id, cfg->spool_id, SPOOL_ID_SIZE);
    *state = s;
    return 0;

fail:
    sqlite_sink_destroy(s);
    return rc;
}

static unsigned sqlite_sink_lanes(void *state)
{
    (void)state;
    return 1;
}

static enum sink_result sqlite_sink_open_lane(void *state, unsigned lane, uint64_t *cursor,
                                              char *err, size_t errlen)
{
    struct sqlite_sink *s = state;
    (void)lane;
    if (!s->db) {
        enum sink_result r = sqlite_open_db(s, err, errlen);
        if (r != SINK_OK)
            return r;
        LOG_INFO("sink.sqlite", "%s: open (schema version %d)", s->path,
                 SINK_SQLITE_SCHEMA_VERSION);
    }
    int rc = sqlite_schema_cursor_read(s->db, s->spool_id, s->cursor_name, cursor, err, errlen);
    if (rc < 0) {
        if (rc != -EBUSY)
            sqlite_close_db(s);
        return SINK_RETRY;
    }
    return SINK_OK;
}

static void sqlite_bind_text(sqlite3_stmt *st, int i, const char *text, unsigned len)
{
    sqlite3_bind_text(st, i, text, (int)len, SQLITE_STATIC);
}

static void sqlite_bind_optional(sqlite3_stmt *st, int i, bool present, double v)
{
    if (present)
        sqlite3_bind_double(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

/* sqlite_bind_trade binds rec to the 13 parameters starting at first. */
static void sqlite_bind_trade(sqlite3_stmt *st, int first, const struct record *rec)
{
    int i = first;
    sqlite3_bind_int64(st, i++, (sqlite3_int64)rec->seq);
    sqlite_bind_text(st, i++, rec->profile, rec->profile_len);
    sqlite_bind_text(st, i++, rec->script, rec->script_len);
    sqlite_bind_text(st, i++, rec->symbol, rec->symbol_len);
    sqlite_bind_text(st, i++, rec->side, rec->side_len);
    sqlite_bind_optional(st, i++, rec->present & REC_HAS_QTY, rec->qty);
    sqlite_bind_optional(st, i++, rec->present & REC_HAS_ENTRY_PRICE, rec->entry_price);
    sqlite_bind_optional(st, i++, rec->present & REC_HAS_EXIT_PRICE, rec->exit_price);
    sqlite_bind_optional(st, i++, rec->present & REC_HAS_PNL, rec->pnl);
    sqlite_bind_optional(st, i++, rec->present & REC_HAS_FEES, rec->fees);
    if (rec->present & REC_HAS_OPENED_AT)
        sqlite3_bind_int64(st, i++, sqlite_us(rec->opened_at_ns));
    else
        sqlite3_bind_null(st, i++);
    sqlite3_bind_int64(st, i++, sqlite_us(rec->ts_ns));
    if (rec->trade_id_len)
        sqlite_bind_text(st, i++, rec->trade_id, rec->trade_id_len);
    else
        sqlite3_bind_null(st, i++);
}

/* sqlite_bind_metric binds rec to the 6 parameters starting at first. */
static void sqlite_bind_metric(sqlite3_stmt *st, int first, const struct record *rec)
{
    int i = first;
    sqlite3_bind_int64(st, i++, (sqlite3_int64)rec->seq);
    sqlite_bind_text(st, i++, rec->profile, rec->profile_len);
    sqlite_bind_text(st, i++, rec->script, rec->script_len);
    sqlite_bind_text(st, i++, rec->name, rec->name_len);
    sqlite3_bind_double(st, i++, rec->value);
    sqlite3_bind_int64(st, i++, sqlite_us(rec->ts_ns));
}

/* sqlite_run steps a statement that returns no rows and resets it for the next use. */
static int sqlite_run(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/*
 * sqlite_insert_rows inserts recs[0..n), all of one kind: full groups through the multi-row
 * statement, the remainder row by row.
 */
static int sqlite_insert_rows(struct sqlite_sink *s, const struct record *const *recs, size_t n,
                              bool trades)
{
    void (*bind)(sqlite3_stmt *, int, const struct record *) =
        trades ? sqlite_bind_trade : sqlite_bind_metric;
    int params = trades ? SINK_SQLITE_TRADE_PARAMS : SINK_SQLITE_METRIC_PARAMS;
    sqlite3_stmt *many = trades ? s->trade_many : s->metric_many;
    sqlite3_stmt *one = trades ? s->trade_one : s->metric_one;
    size_t i = 0;
    for (; i + SINK_SQLITE_ROWS_PER_INSERT <= n; i += SINK_SQLITE_ROWS_PER_INSERT) {
        for (size_t r = 0; r < SINK_SQLITE_ROWS_PER_INSERT; r++)
            bind(many, 2 + (int)r * params, recs[i + r]);
        int rc = sqlite_run(many);
        if (rc != SQLITE_OK)
            return rc;
    }
    for (; i < n; i++) {
        bind(one, 2, recs[i]);
        int rc = sqlite_run(one);
        if (rc != SQLITE_OK)
            return rc;
    }
    return SQLITE_OK;
}

/* sqlite_by_profile orders records by profile, then by seq. */
static int sqlite_by_profile(const void *a, const void *b)
{
    const struct record *x = *(const struct record *const *)a;
    const struct record *y = *(const struct record *const *)b;
    int c = strcmp(x->profile, y->profile);
    if (c)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * sqlite_order fills s->order with recs: trades first, then metrics, each sorted by profile.
 * The order inside one transaction changes nothing stored (within a profile, seq order is
 * kept, so the first of two equal trade_ids still wins), but the index inserts of one profile
 * then follow each other on the same b-tree pages: measured 7% (rows grouped by profile) to 14%
 * (every row another profile) fewer instructions per row. Returns the number of trades.
 */
static size_t sqlite_order(struct sqlite_sink *s, const struct record *recs, size_t n)
{
    if (n == 0)
        return 0;
    if (n > s->order_cap) {
        s->order = xrealloc(s->order, n * sizeof(*s->order));
        s->order_cap = n;
    }
    size_t ntrades = 0, back = n;
    for (size_t i = 0; i < n; i++) {
        if (recs[i].kind == RECORD_TRADE)
            s->order[ntrades++] = &recs[i];
        else
            s->order[--back] = &recs[i];
    }
    qsort(s->order, ntrades, sizeof(*s->order), sqlite_by_profile);
    qsort(s->order + ntrades, n - ntrades, sizeof(*s->order), sqlite_by_profile);
    return ntrades;
}

static enum sink_result sqlite_sink_write(void *state, unsigned lane, const struct record *recs,
                                          size_t n, uint64_t cursor, char *err, size_t errlen)
{
    struct sqlite_sink *s = state;
    (void)lane;
    if (!s->db) {
        snprintf(err, errlen, "sqlite: %s: not open", s->path);
        return SINK_RETRY;
    }
    size_t ntrades = sqlite_order(s, recs, n);
    const char *what = "BEGIN";
    int rc = sqlite_run(s->begin);
    if (rc != SQLITE_OK)
        goto fail;

    what = "INSERT";
    rc = sqlite_insert_rows(s, s->order, ntrades, true);
    if (rc == SQLITE_OK)
        rc = sqlite_insert_rows(s, s->order + ntrades, n - ntrades, false);
    if (rc != SQLITE_OK)
        goto fail;

    what = "cursor";
    sqlite3_bind_int64(s->cursor_put, 3, (sqlite3_int64)cursor);
    sqlite3_bind_int64(s->cursor_put, 4, sqlite_us(clock_wall_ns()));
    rc = sqlite_run(s->cursor_put);
    if (rc != SQLITE_OK)
        goto fail;

    what = "COMMIT";
    rc = sqlite_run(s->commit);
    if (rc != SQLITE_OK)
        goto fail;
    atomic_fetch_add_explicit(&s->trades, ntrades, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->metrics, n - ntrades, memory_order_relaxed);
    return SINK_OK;

fail:
    snprintf(err, errlen, "sqlite: %s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    if (sqlite_connection_broken(rc))
        sqlite_close_db(s);
    return sqlite_result(rc);
}

static void sqlite_file_gauge(const struct sink_metrics_out *m, const char *path,
                              const char *suffix, const char *metric)
{
    char name[4096];
    struct stat sb;
    snprintf(name, sizeof(name), "%s%s", path, suffix);
    uint64_t bytes = stat(name, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    fprintf(m->out, "%s{sink=\"%s\"} %llu\n", metric, m->sink_name, (unsigned long long)bytes);
}

static void sqlite_sink_metrics(void *state, const struct sink_metrics_out *m)
{
    struct sqlite_sink *s = state;
    fprintf(m->out, "# HELP telem_sink_sqlite_file_bytes Size of the SQLite database file.\n"
                    "# TYPE telem_sink_sqlite_file_bytes gauge\n");
    sqlite_file_gauge(m, s->path, "", "telem_sink_sqlite_file_bytes");
    fprintf(m->out, "# HELP telem_sink_sqlite_wal_bytes Size of the SQLite write-ahead log.\n"
                    "# TYPE telem_sink_sqlite_wal_bytes gauge\n");
    sqlite_file_gauge(m, s->path, "-wal", "telem_sink_sqlite_wal_bytes");
    fprintf(
        m->out,
        "# HELP telem_sink_sqlite_rows_total Records in batches committed since start, by table "
        "(ignored repeats included).\n"
        "# TYPE telem_sink_sqlite_rows_total counter\n"
        "telem_sink_sqlite_rows_total{sink=\"%s\",table=\"" SINK_SQLITE_TABLE_TRADES "\"} "
        "%llu\n"
        "telem_sink_sqlite_rows_total{sink=\"%s\",table=\"" SINK_SQLITE_TABLE_METRICS "\"} "
        "%llu\n",
        m->sink_name, (unsigned long long)atomic_load_explicit(&s->trades, memory_order_relaxed),
        m->sink_name, (unsigned long long)atomic_load_explicit(&s->metrics, memory_order_relaxed));
}

const struct sink_ops sink_sqlite_ops = {
    .scheme = "sqlite",
    .create = sqlite_sink_create,
    .lanes = sqlite_sink_lanes,
    .open_lane = sqlite_sink_open_lane,
    .write = sqlite_sink_write,
    .metrics = sqlite_sink_metrics,
    .destroy = sqlite_sink_destroy,
};
