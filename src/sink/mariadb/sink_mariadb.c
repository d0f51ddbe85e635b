/*
 * sink_mariadb.c: the MariaDB/MySQL store (URL scheme "mariadb"), telem's production sink.
 *
 * Shape. A bounded pool (src/pool) of `pool_size` connections serves `lanes` writer lanes
 * (lanes <= pool_size; the worker splits records among lanes by hash(profile)). Each write()
 * borrows a connection for the length of one transaction, so telemd holds pool_size
 * connections however many scripts send. Each lane owns preallocated column arrays of
 * rows_per_execute rows per table (mariadb_rows.h) and each pooled connection keeps its
 * prepared statements (mariadb_conn.h), so the write path neither allocates nor re-prepares.
 *
 * One batch is one transaction (autocommit is off on every connection):
 *   [trades with a trade_id] register the trade_ids in telem_trade_id, then read which of
 *       this batch's rows own their (profile, trade_id), so repeats of a trade_id are skipped;
 *   insert trades, rows_per_execute at a time (COM_STMT_BULK_EXECUTE, or multi-row text);
 *   insert metrics the same way;
 *   upsert this lane's telem_cursor row to the batch's cursor;
 *   COMMIT.
 * Every insert is `ON DUPLICATE KEY UPDATE seq = seq` under STRICT_ALL_TABLES: a replayed
 * batch or a client's retried trade_id changes nothing, while a value a column cannot hold
 * fails the statement. A crash before COMMIT stores nothing; after it, the cursor moved with
 * the rows, so the batch is not replayed (and would be harmless if it were).
 *
 * Answers (sink.h): a data fault (value out of range, too long, bad NULL, a time outside
 * DATETIME) rolls back and answers SINK_ERROR so the worker can isolate the record; lock waits,
 * deadlocks, too many connections, an unreachable server or one in connect backoff answer
 * SINK_RETRY; a lost connection also goes back to the pool as broken so it is replaced.
 *
 * Setup. The first open_lane() (or write()) of the process migrates the schema (unless
 * migrate = off), learns the tables' shape, and warns once when the server does not flush its
 * log at every commit (innodb_flush_log_at_trx_commit != 1), which telem's "durable before
 * delete" relies on. Lane 0 keeps partitions ahead of time and applies retention_days hourly.
 *
 * Cursor rows are named after the sink: NAME with one lane, NAME:L/N for lane L of N. A lane
 * that finds no row of its own (the lane count changed) starts from the lowest row of the
 * sink's earlier lanes, which replays some rows harmlessly instead of skipping any.
 */
#include "sink/mariadb/sink_mariadb.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <mysqld_error.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/conf.h"
#include "core/log.h"
#include "pool/pool.h"
#include "sink/mariadb/mariadb_conn.h"
#include "sink/mariadb/mariadb_rows.h"
#include "sink/mariadb/mariadb_schema.h"
#include "sink/mariadb/mariadb_time.h"
#include "sink/mariadb/mariadb_url.h"

#define MAINTENANCE_EVERY_NS (3600LL * 1000000000)
#define MAINTENANCE_RETRY_NS (300LL * 1000000000)
#define CURSOR_SQL_MAX       512
#define LANES_MAX            16

enum mariadb_insert_mode {
    MARIADB_INSERT_BULK = 0,
    MARIADB_INSERT_MULTIROW = 1,
};

struct mariadb_settings {
    char *password;
    int64_t pool_size;
    int64_t lanes;
    int insert_mode; /* enum mariadb_insert_mode */
    int64_t rows_per_execute;
    int64_t connect_timeout_ms;
    int64_t read_timeout_ms;
    int64_t write_timeout_ms;
    int64_t borrow_timeout_ms;
    int64_t idle_check_ms;
    int64_t max_lifetime_ms;
    int64_t reconnect_base_ms;
    int64_t reconnect_max_ms;
    bool tls;
    char *tls_ca;
    char *tls_cert;
    char *tls_key;
    bool tls_verify;
    int partitioning; /* enum mariadb_partitioning */
    int64_t partitions_ahead;
    int64_t retention_days;
    bool migrate;
};

#define S(member) offsetof(struct mariadb_settings, member)

static const struct conf_entry mariadb_sink_conf[] = {
    {"password", CONF_STRING, NULL, S(password),
     "the user's password (or TELEM_<SINKNAME>_PASSWORD in the environment); never logged", 0, 0,
     NULL},
    {"pool_size", CONF_INT, "4", S(pool_size),
     "most connections the sink holds to the server (lanes share them)", 1, 64, NULL},
    {"lanes", CONF_INT, "2", S(lanes),
     "parallel writers, records split by hash(profile); at most pool_size", 1, LANES_MAX, NULL},
    {"insert_mode", CONF_ENUM, "bulk", S(insert_mode),
     "bulk: prepared statements with array binding (COM_STMT_BULK_EXECUTE, MariaDB 10.2+); "
     "multirow: multi-row INSERT text (MySQL); bulk falls back to multirow on servers without it",
     0, 0, "bulk|multirow"},
    {"rows_per_execute", CONF_INT, "1000", S(rows_per_execute), "rows sent per statement execution",
     1, 100000, NULL},
    {"connect_timeout_ms", CONF_INT, "5000", S(connect_timeout_ms),
     "give up a connection attempt after this long (rounded up to seconds)", 1, 3600000, NULL},
    {"read_timeout_ms", CONF_INT, "60000", S(read_timeout_ms),
     "give up waiting for the server's answer after this long (0: never)", 0, 86400000, NULL},
    {"write_timeout_ms", CONF_INT, "60000", S(write_timeout_ms),
     "give up sending to the server after this long (0: never)", 0, 86400000, NULL},
    {"borrow_timeout_ms", CONF_INT, "10000", S(borrow_timeout_ms),
     "how long a lane waits for a free pooled connection", 0, 3600000, NULL},
    {"idle_check_ms", CONF_INT, "30000", S(idle_check_ms),
     "ping a pooled connection that sat idle longer than this (0: never)", 0, 86400000, NULL},
    {"max_lifetime_ms", CONF_INT, "0", S(max_lifetime_ms),
     "replace pooled connections older than this (0: keep them)", 0, 604800000, NULL},
    {"reconnect_base_ms", CONF_INT, "200", S(reconnect_base_ms),
     "first delay after a failed connect; doubles, with jitter", 1, 600000, NULL},
    {"reconnect_max_ms", CONF_INT, "5000", S(reconnect_max_ms),
     "longest delay between connect attempts", 1, 3600000, NULL},
    {"tls", CONF_BOOL, "off", S(tls), "require TLS to the server", 0, 0, NULL},
    {"tls_ca", CONF_STRING, NULL, S(tls_ca), "CA certificate file (PEM)", 0, 0, NULL},
    {"tls_cert", CONF_STRING, NULL, S(tls_cert), "client certificate file (PEM)", 0, 0, NULL},
    {"tls_key", CONF_STRING, NULL, S(tls_key), "client key file (PEM)", 0, 0, NULL},
    {"tls_verify", CONF_BOOL, "on", S(tls_verify), "check the server's certificate and host name",
     0, 0, NULL},
    {"partitioning", CONF_ENUM, "off", S(partitioning),
     "RANGE partitions by time for tables telem creates: off, monthly or daily", 0, 0,
     "off|monthly|daily"},
    {"partitions_ahead", CONF_INT, "3", S(partitions_ahead),
     "partitions kept ready beyond the current period", 1, 366, NULL},
    {"retention_days", CONF_INT, "0", S(retention_days),
     "drop partitions holding only rows older than this many days, hourly (0: keep all)", 0, 365000,
     NULL},
    {"migrate", CONF_BOOL, "on", S(migrate),
     "create or upgrade the schema when the sink starts (off: run telemctl migrate)", 0, 0, NULL},
    {NULL, 0, NULL, 0, NULL, 0, 0, NULL},
};

#undef S

struct mariadb_lane {
    unsigned index;
    char cursor_name[MARIADB_CURSOR_NAME_MAX + 1];
    char cursor_sql[CURSOR_SQL_MAX]; /* upsert up to the seq value */
    size_t cursor_sql_len;
    struct mariadb_rows *rows[MARIADB_ROWS_TABLES];
    uint8_t *claim; /* per record of the batch: enum claim_state (trades with a trade_id) */
    size_t claim_cap;
    char *lookup_sql; /* the owner lookup of the batch's trade_ids */
    size_t lookup_cap;
    int64_t next_maintenance_ns; /* lane 0 only */

    /* Read by metrics() from other threads. */
    _Atomic uint64_t trades;
    _Atomic uint64_t metrics;
    _Atomic uint64_t inserted;
    _Atomic uint64_t batches;
    _Atomic uint64_t write_ns;
};

struct mariadb_sink {
    char *name;
    uint8_t spool_id[SPOOL_ID_SIZE];
    char spool_hex[2 * SPOOL_ID_SIZE + 1];
    struct mariadb_settings set;
    struct mariadb_url url;
    struct mariadb_conn_options copt;
    struct pool *pool;
    unsigned nlanes;
    struct mariadb_lane *lanes;

    pthread_mutex_t setup_lock;
    atomic_bool ready;                 /* schema migrated and described */
    struct mariadb_schema_shape shape; /* written once before ready */
    atomic_bool warned_bulk;

    _Atomic uint64_t faults[3]; /* by enum mariadb_fault */
};

static const char *const fault_names[] = {"data", "transient", "connection"};

/* ---- Settings ---- */

static unsigned ms_to_s(int64_t ms)
{
    return (unsigned)((ms + 999) / 1000);
}

/* read_settings applies cfg's settings and URL to set, url and copt. */
static int read_settings(const struct sink_config *cfg, struct mariadb_settings *set,
                         struct mariadb_url *url, struct mariadb_conn_options *copt, char *err,
                         size_t errlen)
{
    int rc = conf_defaults(mariadb_sink_conf, set);
    if (rc < 0) {
        snprintf(err, errlen, "mariadb: bad built-in defaults");
        return rc;
    }
    for (size_t i = 0; i < cfg->nsettings; i++) {
        const struct sink_setting *kv = &cfg->settings[i];
        char msg[200];
        rc = conf_set(mariadb_sink_conf, set, kv->key, kv->value, msg, sizeof(msg));
        if (rc < 0) {
            if (kv->file)
                snprintf(err, errlen, "%s:%d: %s", kv->file, kv->line, msg);
            else
                snprintf(err, errlen, "sink %s: %s", cfg->name, msg);
            return rc;
        }
    }
    if (set->lanes > set->pool_size) {
        snprintf(err, errlen,
                 "sink %s: lanes (%lld) must not exceed pool_size (%lld): each lane needs its "
                 "own connection while it writes",
                 cfg->name, (long long)set->lanes, (long long)set->pool_size);
        return -EINVAL;
    }
    if (set->reconnect_max_ms < set->reconnect_base_ms)
        set->reconnect_max_ms = set->reconnect_base_ms;
    if (!set->tls && (set->tls_ca || set->tls_cert || set->tls_key)) {
        snprintf(err, errlen, "sink %s: tls_ca, tls_cert and tls_key need tls = on", cfg->name);
        return -EINVAL;
    }
    char msg[256];
    rc = mariadb_url_parse(cfg->url, url, msg, sizeof(msg));
    if (rc < 0) {
        snprintf(err, errlen, "sink %s: %s", cfg->name, msg);
        return rc;
    }
    *copt = (struct mariadb_conn_options){
        .url = url,
        .password = set->password,
        .connect_timeout_s = ms_to_s(set->connect_timeout_ms),
        .read_timeout_s = ms_to_s(set->read_timeout_ms),
        .write_timeout_s = ms_to_s(set->write_timeout_ms),
        .tls = set->tls,
        .tls_verify = set->tls_verify,
        .tls_ca = set->tls_ca,
        .tls_cert = set->tls_cert,
        .tls_key = set->tls_key,
        .want_bulk = set->insert_mode == MARIADB_INSERT_BULK,
        .autocommit = false,
    };
    return 0;
}

/* ---- The pool's connection type ---- */

static int pooled_connect(void *ctx, void **conn, char *err, size_t errlen)
{
    struct mariadb_sink *s = ctx;
    struct mariadb_conn *c;
    int rc = mariadb_conn_open(&s->copt, &c, err, errlen);
    if (rc < 0)
        return rc;
    if (s->copt.want_bulk && !c->bulk && !atomic_exchange(&s->warned_bulk, true))
        LOG_WARN("sink.mariadb",
                 "%s: the server offers no bulk execution (MySQL?); writing multi-row INSERTs",
                 s->name);
    *conn = c;
    return 0;
}

static int pooled_ping(void *conn)
{
    return mariadb_conn_ping(conn);
}

static void pooled_close(void *conn)
{
    mariadb_conn_close(conn);
}

static const struct pool_conn_ops mariadb_pool_ops = {
    .connect = pooled_connect,
    .ping = pooled_ping,
    .close = pooled_close,
};

/* ---- Create and destroy ---- */

static void hex_of(const uint8_t *id, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < SPOOL_ID_SIZE; i++) {
        out[2 * i] = digits[id[i] >> 4];
        out[2 * i + 1] = digits[id[i] & 15];
    }
    out[2 * SPOOL_ID_SIZE] = '\0';
}

static void mariadb_sink_destroy(void *state)
{
    struct mariadb_sink *s = state;
    if (!s)
        return;
    pool_destroy(s->pool);
    for (unsigned i = 0; s->lanes && i < s->nlanes; i++) {
        for (unsigned t = 0; t < MARIADB_ROWS_TABLES; t++)
            mariadb_rows_destroy(s->lanes[i].rows[t]);
        free(s->lanes[i].claim);
        free(s->lanes[i].lookup_sql);
    }
    free(s->lanes);
    pthread_mutex_destroy(&s->setup_lock);
    conf_free(mariadb_sink_conf, &s->set);
    free(s->name);
    free(s);
}

static int lane_init(struct mariadb_sink *s, struct mariadb_lane *L, unsigned index, char *err,
                     size_t errlen)
{
    L->index = index;
    int n;
    if (s->nlanes == 1)
        n = snprintf(L->cursor_name, sizeof(L->cursor_name), "%s", s->name);
    else
        n = snprintf(L->cursor_name, sizeof(L->cursor_name), "%s:%u/%u", s->name, index, s->nlanes);
    if (n < 0 || (size_t)n >= sizeof(L->cursor_name)) {
        snprintf(err, errlen, "sink %s: the name is too long for telem_cursor (%d bytes at most)",
                 s->name, MARIADB_CURSOR_NAME_MAX - 6);
        return -EINVAL;
    }
    char quoted[2 * MARIADB_CURSOR_NAME_MAX + 8];
    mariadb_schema_quote(L->cursor_name, strlen(L->cursor_name), quoted);
    L->cursor_sql_len = (size_t)snprintf(L->cursor_sql, sizeof(L->cursor_sql),
                                         "INSERT INTO " MARIADB_TABLE_CURSORS
                                         " (spool_id, sink, seq, updated_at) VALUES (X'%s', %s, ",
                                         s->spool_hex, quoted);
    for (unsigned t = 0; t < MARIADB_ROWS_TABLES; t++)
        L->rows[t] = mariadb_rows_create(t, (unsigned)s->set.rows_per_execute);
    return 0;
}

static int mariadb_sink_create(const struct sink_config *cfg, void **state, char *err,
                               size_t errlen)
{
    struct mariadb_sink *s = xcalloc(1, sizeof(*s));
    pthread_mutex_init(&s->setup_lock, NULL);
    s->name = xstrdup(cfg->name);
    int rc = read_settings(cfg, &s->set, &s->url, &s->copt, err, errlen);
    if (rc < 0)
        goto fail;
    memcpy(s->spool_id, cfg->spool_id, SPOOL_ID_SIZE);
    hex_of(s->spool_id, s->spool_hex);

    s->nlanes = (unsigned)s->set.lanes;
    s->lanes = xcalloc(s->nlanes, sizeof(*s->lanes));
    for (unsigned i = 0; i < s->nlanes; i++) {
        rc = lane_init(s, &s->lanes[i], i, err, errlen);
        if (rc < 0)
            goto fail;
    }
    char pool_name[128];
    snprintf(pool_name, sizeof(pool_name), "mariadb %s", s->name);
    struct pool_options popt = {
        .max = (unsigned)s->set.pool_size,
        .borrow_timeout_ms = (unsigned)s->set.borrow_timeout_ms,
        .idle_check_ms = (unsigned)s->set.idle_check_ms,
        .max_lifetime_ms = (unsigned)s->set.max_lifetime_ms,
        .backoff_base_ms = (unsigned)s->set.reconnect_base_ms,
        .backoff_max_ms = (unsigned)s->set.reconnect_max_ms,
    };
    s->pool = pool_create(pool_name, &mariadb_pool_ops, s, &popt);
    if (!s->pool) {
        snprintf(err, errlen, "sink %s: cannot make the connection pool", s->name);
        rc = -EINVAL;
        goto fail;
    }
    *state = s;
    return 0;

fail:
    mariadb_sink_destroy(s);
    return rc;
}

static unsigned mariadb_sink_lanes(void *state)
{
    struct mariadb_sink *s = state;
    return s->nlanes;
}

/* ---- Faults ---- */

/*
 * fault_result counts a fault, ends the connection's transaction and hands it back with the
 * right verdict, and turns the fault into the worker's word.
 */
static enum sink_result fault_result(struct mariadb_sink *s, struct mariadb_conn *c,
                                     enum mariadb_fault f)
{
    atomic_fetch_add_explicit(&s->faults[f], 1, memory_order_relaxed);
    bool healthy = f != MARIADB_FAULT_CONNECTION;
    if (healthy && mysql_rollback(c->mysql) != 0)
        healthy = false;
    pool_return(s->pool, c, healthy);
    return f == MARIADB_FAULT_DATA ? SINK_ERROR : SINK_RETRY;
}

static enum sink_result borrow(struct mariadb_sink *s, struct mariadb_conn **c, char *err,
                               size_t errlen)
{
    char msg[200];
    void *conn;
    int rc = pool_borrow(s->pool, -1, &conn, msg, sizeof(msg));
    if (rc < 0) {
        snprintf(err, errlen, "mariadb %s: no connection: %s", s->name, msg);
        atomic_fetch_add_explicit(&s->faults[MARIADB_FAULT_CONNECTION], 1, memory_order_relaxed);
        return SINK_RETRY;
    }
    *c = conn;
    return SINK_OK;
}

/* ---- Setup: migrate once, learn the shape ---- */

static void check_durability(struct mariadb_sink *s, struct mariadb_conn *c)
{
    if (mysql_query(c->mysql, "SELECT @@innodb_flush_log_at_trx_commit, VERSION()") != 0)
        return;
    MYSQL_RES *res = mysql_store_result(c->mysql);
    MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
    if (row && row[0] && strcmp(row[0], "1") != 0)
        LOG_WARN("sink.mariadb",
                 "%s: the server runs with innodb_flush_log_at_trx_commit = %s, so a committed "
                 "batch may be lost in a server crash after telem dropped it from the spool; "
                 "set it to 1",
                 s->name, row[0]);
    LOG_INFO("sink.mariadb", "%s: connected to %s (%s inserts, %u lanes, pool of %lld)", s->name,
             row && row[1] ? row[1] : "?", c->bulk ? "bulk" : "multi-row", s->nlanes,
             (long long)s->set.pool_size);
    mysql_free_result(res);
    mysql_commit(c->mysql);
}

/* setup migrates and describes the schema, once per sink. Returns 0, -EPROTO or -EIO. */
static int setup(struct mariadb_sink *s, struct mariadb_conn *c, char *err, size_t errlen)
{
    if (atomic_load_explicit(&s->ready, memory_order_acquire))
        return 0;
    pthread_mutex_lock(&s->setup_lock);
    int rc = 0;
    if (atomic_load_explicit(&s->ready, memory_order_relaxed))
        goto done;
    struct mariadb_schema_options opt = {.partitioning = s->set.partitioning,
                                         .partitions_ahead = (unsigned)s->set.partitions_ahead};
    if (s->set.migrate) {
        rc = mariadb_schema_migrate(c->mysql, &opt, err, errlen);
        if (rc < 0)
            goto done;
    }
    rc = mariadb_schema_describe(c->mysql, &s->shape, err, errlen);
    if (rc < 0)
        goto done;
    if (!s->shape.tables || s->shape.version < MARIADB_SCHEMA_VERSION) {
        snprintf(err, errlen,
                 "mariadb %s: the schema is at version %d (tables %s), this telem needs version "
                 "%d, and migrate = off; run telemctl migrate",
                 s->name, s->shape.version, s->shape.tables ? "present" : "missing",
                 MARIADB_SCHEMA_VERSION);
        rc = -EPROTO;
        goto done;
    }
    mysql_commit(c->mysql);
    check_durability(s, c);
    atomic_store_explicit(&s->ready, true, memory_order_release);
done:
    pthread_mutex_unlock(&s->setup_lock);
    return rc;
}

/* setup_result turns a setup failure into the worker's word and returns the connection. */
static enum sink_result setup_result(struct mariadb_sink *s, struct mariadb_conn *c, int rc)
{
    if (rc == -EPROTO) {
        pool_return(s->pool, c, mysql_rollback(c->mysql) == 0);
        return SINK_ERROR;
    }
    enum mariadb_fault f = mariadb_conn_fault(mysql_errno(c->mysql));
    return fault_result(s, c, f == MARIADB_FAULT_DATA ? MARIADB_FAULT_TRANSIENT : f);
}

/*
 * maintain keeps partitions ahead and applies retention; lane 0, at most hourly, after its
 * commit. Failures are logged, not answered: the batch is stored. Returns false when the
 * connection was lost on the way.
 */
static bool maintain(struct mariadb_sink *s, struct mariadb_lane *L, struct mariadb_conn *c)
{
    int64_t now = clock_mono_ns();
    if (L->index != 0 || now < L->next_maintenance_ns)
        return true;
    L->next_maintenance_ns = now + MAINTENANCE_EVERY_NS;
    if (!s->shape.trades_partitioned && !s->shape.metrics_partitioned)
        return true;
    char err[300];
    struct mariadb_schema_options opt = {.partitioning = s->set.partitioning,
                                         .partitions_ahead = (unsigned)s->set.partitions_ahead};
    int64_t now_us = mariadb_time_us(clock_wall_ns());
    int rc = mariadb_schema_ensure_partitions(c->mysql, &opt, now_us, err, sizeof(err));
    if (rc == 0 && s->set.retention_days > 0) {
        int64_t cutoff = now_us - s->set.retention_days * 86400LL * 1000000;
        rc = mariadb_schema_drop_before(c->mysql, cutoff, err, sizeof(err));
        if (rc > 0)
            LOG_INFO("sink.mariadb", "%s: retention dropped %d partitions older than %lld days",
                     s->name, rc, (long long)s->set.retention_days);
    }
    if (rc < 0) {
        LOG_WARN("sink.mariadb", "%s: partition maintenance failed (next try in 5 minutes): %s",
                 s->name, err);
        L->next_maintenance_ns = now + MAINTENANCE_RETRY_NS;
        if (mariadb_conn_fault(mysql_errno(c->mysql)) == MARIADB_FAULT_CONNECTION)
            return false;
    }
    return mysql_commit(c->mysql) == 0;
}

/* ---- open_lane ---- */

static enum sink_result mariadb_sink_open_lane(void *state, unsigned lane, uint64_t *cursor,
                                               char *err, size_t errlen)
{
    struct mariadb_sink *s = state;
    struct mariadb_lane *L = &s->lanes[lane];
    struct mariadb_conn *c;
    enum sink_result r = borrow(s, &c, err, errlen);
    if (r != SINK_OK)
        return r;
    int rc = setup(s, c, err, errlen);
    if (rc < 0)
        return setup_result(s, c, rc);
    bool found;
    rc = mariadb_schema_cursor_read(c->mysql, s->spool_id, L->cursor_name, s->name, cursor, &found,
                                    err, errlen);
    if (rc < 0) {
        enum mariadb_fault f = mariadb_conn_fault(mysql_errno(c->mysql));
        return fault_result(s, c, f == MARIADB_FAULT_DATA ? MARIADB_FAULT_TRANSIENT : f);
    }
    if (found)
        LOG_INFO("sink.mariadb", "%s: lane %u resumes after seq %llu", s->name, lane,
                 (unsigned long long)*cursor);
    pool_return(s->pool, c, maintain(s, L, c));
    return SINK_OK;
}

/* ---- write ---- */

/* time_ok says whether ns fits DATETIME(6). */
static bool time_ok(int64_t ns)
{
    int64_t us = mariadb_time_us(ns);
    return us >= MARIADB_TIME_MIN_US && us < MARIADB_TIME_END_US;
}

/*
 * check_records finds what no MariaDB column can hold (a time outside DATETIME, a value that
 * is not finite) before anything is sent, so such a batch is refused as data. Returns 0 or
 * -EINVAL with err naming the record.
 */
static int check_records(const struct record *recs, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const struct record *r = &recs[i];
        const char *bad = NULL;
        if (r->kind == RECORD_TRADE) {
            if (!time_ok(r->ts_ns))
                bad = "closed_at is outside DATETIME's years 1000-9999";
            else if ((r->present & REC_HAS_OPENED_AT) && !time_ok(r->opened_at_ns))
                bad = "opened_at is outside DATETIME's years 1000-9999";
            else if (((r->present & REC_HAS_QTY) && !isfinite(r->qty)) ||
                     ((r->present & REC_HAS_ENTRY_PRICE) && !isfinite(r->entry_price)) ||
                     ((r->present & REC_HAS_EXIT_PRICE) && !isfinite(r->exit_price)) ||
                     ((r->present & REC_HAS_PNL) && !isfinite(r->pnl)) ||
                     ((r->present & REC_HAS_FEES) && !isfinite(r->fees)))
                bad = "a trade value is not a finite number";
        } else if (r->kind == RECORD_METRIC) {
            if (!time_ok(r->ts_ns))
                bad = "ts is outside DATETIME's years 1000-9999";
            else if (!isfinite(r->value))
                bad = "the value is not a finite number";
        } else {
            bad = "unknown record kind";
        }
        if (bad) {
            snprintf(err, errlen, "mariadb: record seq %llu: %s", (unsigned long long)r->seq, bad);
            return -EINVAL;
        }
    }
    return 0;
}

static void put_time(struct mariadb_rows *r, unsigned col, int64_t ns)
{
    mariadb_time_from_us(mariadb_time_us(ns), mariadb_rows_time(r, col));
}

static void put_optional(struct mariadb_rows *r, unsigned col, bool present, double v)
{
    if (present)
        mariadb_rows_double(r, col, v);
    else
        mariadb_rows_null(r, col);
}

static void fill_trade(struct mariadb_rows *r, const struct record *rec, const uint8_t *spool_id)
{
    mariadb_rows_text(r, MARIADB_TRADE_SPOOL_ID, (const char *)spool_id, SPOOL_ID_SIZE);
    mariadb_rows_u64(r, MARIADB_TRADE_SEQ, rec->seq);
    mariadb_rows_text(r, MARIADB_TRADE_PROFILE, rec->profile, rec->profile_len);
    mariadb_rows_text(r, MARIADB_TRADE_SCRIPT, rec->script, rec->script_len);
    mariadb_rows_text(r, MARIADB_TRADE_SYMBOL, rec->symbol, rec->symbol_len);
    mariadb_rows_text(r, MARIADB_TRADE_SIDE, rec->side, rec->side_len);
    put_optional(r, MARIADB_TRADE_QTY, rec->present & REC_HAS_QTY, rec->qty);
    put_optional(r, MARIADB_TRADE_ENTRY_PRICE, rec->present & REC_HAS_ENTRY_PRICE,
                 rec->entry_price);
    put_optional(r, MARIADB_TRADE_EXIT_PRICE, rec->present & REC_HAS_EXIT_PRICE, rec->exit_price);
    put_optional(r, MARIADB_TRADE_PNL, rec->present & REC_HAS_PNL, rec->pnl);
    put_optional(r, MARIADB_TRADE_FEES, rec->present & REC_HAS_FEES, rec->fees);
    if (rec->present & REC_HAS_OPENED_AT)
        put_time(r, MARIADB_TRADE_OPENED_AT, rec->opened_at_ns);
    else
        mariadb_rows_null(r, MARIADB_TRADE_OPENED_AT);
    put_time(r, MARIADB_TRADE_CLOSED_AT, rec->ts_ns);
    if (rec->trade_id_len)
        mariadb_rows_text(r, MARIADB_TRADE_TRADE_ID, rec->trade_id, rec->trade_id_len);
    else
        mariadb_rows_null(r, MARIADB_TRADE_TRADE_ID);
}

static void fill_metric(struct mariadb_rows *r, const struct record *rec, const uint8_t *spool_id)
{
    mariadb_rows_text(r, MARIADB_METRIC_SPOOL_ID, (const char *)spool_id, SPOOL_ID_SIZE);
    mariadb_rows_u64(r, MARIADB_METRIC_SEQ, rec->seq);
    mariadb_rows_text(r, MARIADB_METRIC_PROFILE, rec->profile, rec->profile_len);
    mariadb_rows_text(r, MARIADB_METRIC_SCRIPT, rec->script, rec->script_len);
    mariadb_rows_text(r, MARIADB_METRIC_NAME, rec->name, rec->name_len);
    mariadb_rows_double(r, MARIADB_METRIC_VALUE, rec->value);
    put_time(r, MARIADB_METRIC_TS, rec->ts_ns);
}

static void fill_trade_id(struct mariadb_rows *r, const struct record *rec, const uint8_t *spool_id)
{
    mariadb_rows_text(r, MARIADB_TID_PROFILE, rec->profile, rec->profile_len);
    mariadb_rows_text(r, MARIADB_TID_TRADE_ID, rec->trade_id, rec->trade_id_len);
    mariadb_rows_text(r, MARIADB_TID_SPOOL_ID, (const char *)spool_id, SPOOL_ID_SIZE);
    mariadb_rows_u64(r, MARIADB_TID_SEQ, rec->seq);
    put_time(r, MARIADB_TID_CLOSED_AT, rec->ts_ns);
}

/* What the register says of one record's (profile, trade_id). */
enum claim_state {
    CLAIM_NEW = 0,   /* not registered: this record registers it */
    CLAIM_OURS = 1,  /* registered to this very record (an earlier attempt of this batch) */
    CLAIM_TAKEN = 2, /* registered to another record: a repeat, skipped */
};

/*
 * lookup_owners reads the register rows of the batch's trade_ids by primary key and marks each
 * record CLAIM_OURS or CLAIM_TAKEN by who its id is registered to. Returns 0 or -EIO with *code
 * and err set.
 */
static int lookup_owners(struct mariadb_sink *s, struct mariadb_lane *L, struct mariadb_conn *c,
                         const struct record *recs, size_t n, unsigned *code, char *err,
                         size_t errlen)
{
    static const char head[] = "SELECT profile_id, trade_id, seq, spool_id = X'";
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        const struct record *rec = &recs[i];
        if (rec->kind != RECORD_TRADE || !rec->trade_id_len)
            continue;
        size_t need = len + 2 * (rec->profile_len + rec->trade_id_len) + 16 + sizeof(head) +
                      2 * SPOOL_ID_SIZE + 128;
        if (need > L->lookup_cap) {
            L->lookup_cap = need * 2;
            L->lookup_sql = xrealloc(L->lookup_sql, L->lookup_cap);
        }
        if (len == 0)
            len = (size_t)snprintf(L->lookup_sql, L->lookup_cap,
                                   "%s%s' FROM " MARIADB_TABLE_TRADE_IDS
                                   " WHERE (profile_id, trade_id) IN (",
                                   head, s->spool_hex);
        else
            L->lookup_sql[len++] = ',';
        L->lookup_sql[len++] = '(';
        len += mariadb_schema_quote(rec->profile, rec->profile_len, L->lookup_sql + len);
        L->lookup_sql[len++] = ',';
        len += mariadb_schema_quote(rec->trade_id, rec->trade_id_len, L->lookup_sql + len);
        L->lookup_sql[len++] = ')';
    }
    if (len == 0)
        return 0;
    L->lookup_sql[len++] = ')';
    MYSQL_RES *res = NULL;
    if (mysql_real_query(c->mysql, L->lookup_sql, (unsigned long)len) != 0 ||
        !(res = mysql_store_result(c->mysql))) {
        *code = mysql_errno(c->mysql);
        snprintf(err, errlen, "mariadb: reading trade_id owners: %s (error %u)",
                 mysql_error(c->mysql), *code);
        return -EIO;
    }
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(res))) {
        unsigned long *lens = mysql_fetch_lengths(res);
        uint64_t seq = strtoull(row[2], NULL, 10);
        bool ours = row[3] && row[3][0] == '1';
        /* Usually no rows at all; a batch retried after a lost COMMIT answer has one per id. */
        for (size_t i = 0; i < n; i++) {
            const struct record *rec = &recs[i];
            if (rec->kind != RECORD_TRADE || rec->profile_len != lens[0] ||
                rec->trade_id_len != lens[1] || memcmp(rec->profile, row[0], lens[0]) != 0 ||
                memcmp(rec->trade_id, row[1], lens[1]) != 0)
                continue;
            L->claim[i] = ours && rec->seq == seq ? CLAIM_OURS : CLAIM_TAKEN;
        }
    }
    mysql_free_result(res);
    return 0;
}

/*
 * claim_trade_ids decides which of the batch's trades with a trade_id may be stored: those whose
 * (profile, trade_id) was not registered yet, or is registered to the record itself. It
 * registers every id (INSERT ... ON DUPLICATE KEY UPDATE seq = seq: the first writer keeps the
 * id) and, only when fewer rows went in than it sent (an id was registered before, by another
 * record, by another host meanwhile, or by an earlier attempt of this batch), looks the owners
 * up by primary key. Fills L->claim.
 */
static int claim_trade_ids(struct mariadb_sink *s, struct mariadb_lane *L, struct mariadb_conn *c,
                           const struct record *recs, size_t n, unsigned *code, char *err,
                           size_t errlen)
{
    if (n > L->claim_cap) {
        L->claim_cap = n;
        L->claim = xrealloc(L->claim, n);
    }
    memset(L->claim, CLAIM_NEW, n);
    struct mariadb_rows *r = L->rows[MARIADB_ROWS_TRADE_IDS];
    r->affected = 0;
    uint64_t sent = 0;
    for (size_t i = 0; i < n; i++) {
        const struct record *rec = &recs[i];
        if (rec->kind != RECORD_TRADE || !rec->trade_id_len)
            continue;
        fill_trade_id(r, rec, s->spool_id);
        sent++;
        if (mariadb_rows_next(r) && mariadb_rows_execute(r, c, code, err, errlen) < 0)
            return -EIO;
    }
    if (mariadb_rows_execute(r, c, code, err, errlen) < 0)
        return -EIO;
    if (r->affected == sent)
        return 0; /* every id was new: this batch owns them all */
    return lookup_owners(s, L, c, recs, n, code, err, errlen);
}

/* insert_trades sends this batch's trades, skipping repeats of a registered trade_id. */
static int insert_trades(struct mariadb_sink *s, struct mariadb_lane *L, struct mariadb_conn *c,
                         const struct record *recs, size_t n, uint64_t *count, unsigned *code,
                         char *err, size_t errlen)
{
    struct mariadb_rows *r = L->rows[MARIADB_ROWS_TRADES];
    for (size_t i = 0; i < n; i++) {
        const struct record *rec = &recs[i];
        if (rec->kind != RECORD_TRADE)
            continue;
        (*count)++;
        if (rec->trade_id_len && L->claim[i] == CLAIM_TAKEN)
            continue; /* a repeat of a trade_id stored before */
        fill_trade(r, rec, s->spool_id);
        if (mariadb_rows_next(r) && mariadb_rows_execute(r, c, code, err, errlen) < 0)
            return -EIO;
    }
    return mariadb_rows_execute(r, c, code, err, errlen);
}

/* insert_metrics sends this batch's metrics. */
static int insert_metrics(struct mariadb_sink *s, struct mariadb_lane *L, struct mariadb_conn *c,
                          const struct record *recs, size_t n, uint64_t *count, unsigned *code,
                          char *err, size_t errlen)
{
    struct mariadb_rows *r = L->rows[MARIADB_ROWS_METRICS];
    for (size_t i = 0; i < n; i++) {
        const struct record *rec = &recs[i];
        if (rec->kind != RECORD_METRIC)
            continue;
        (*count)++;
        fill_metric(r, rec, s->spool_id);
        if (mariadb_rows_next(r) && mariadb_rows_execute(r, c, code, err, errlen) < 0)
            return -EIO;
    }
    return mariadb_rows_execute(r, c, code, err, errlen);
}

/* write_batch runs the whole transaction. Returns 0, or -EIO with *code and err set. */
static int write_batch(struct mariadb_sink *s, struct mariadb_lane *L, struct mariadb_conn *c,
                       const struct record *recs, size_t n, uint64_t cursor, unsigned *code,
                       char *err, size_t errlen)
{
    if (claim_trade_ids(s, L, c, recs, n, code, err, errlen) < 0)
        return -EIO;

    struct mariadb_rows *trades = L->rows[MARIADB_ROWS_TRADES];
    struct mariadb_rows *metrics = L->rows[MARIADB_ROWS_METRICS];
    trades->affected = metrics->affected = 0;
    uint64_t ntrades = 0, nmetrics = 0;
    int rc = insert_trades(s, L, c, recs, n, &ntrades, code, err, errlen);
    if (rc == 0)
        rc = insert_metrics(s, L, c, recs, n, &nmetrics, code, err, errlen);
    if (rc < 0)
        return -EIO;

    char *sql = L->cursor_sql;
    size_t len = L->cursor_sql_len;
    len += (size_t)snprintf(sql + len, sizeof(L->cursor_sql) - len,
                            "%llu, UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE seq = VALUES(seq), "
                            "updated_at = VALUES(updated_at)",
                            (unsigned long long)cursor);
    if (mysql_real_query(c->mysql, sql, (unsigned long)len) != 0) {
        *code = mysql_errno(c->mysql);
        snprintf(err, errlen, "mariadb: storing the cursor: %s (error %u)", mysql_error(c->mysql),
                 *code);
        return -EIO;
    }
    if (mysql_commit(c->mysql) != 0) {
        *code = mysql_errno(c->mysql);
        snprintf(err, errlen, "mariadb: COMMIT: %s (error %u)", mysql_error(c->mysql), *code);
        return -EIO;
    }
    atomic_fetch_add_explicit(&L->trades, ntrades, memory_order_relaxed);
    atomic_fetch_add_explicit(&L->metrics, nmetrics, memory_order_relaxed);
    atomic_fetch_add_explicit(&L->inserted, trades->affected + metrics->affected,
                              memory_order_relaxed);
    return 0;
}

static enum sink_result mariadb_sink_write(void *state, unsigned lane, const struct record *recs,
                                           size_t n, uint64_t cursor, char *err, size_t errlen)
{
    struct mariadb_sink *s = state;
    struct mariadb_lane *L = &s->lanes[lane];
    int64_t t0 = clock_mono_ns();
    if (check_records(recs, n, err, errlen) < 0) {
        atomic_fetch_add_explicit(&s->faults[MARIADB_FAULT_DATA], 1, memory_order_relaxed);
        return SINK_ERROR;
    }
    struct mariadb_conn *c;
    enum sink_result r = borrow(s, &c, err, errlen);
    if (r != SINK_OK)
        return r;
    int rc = setup(s, c, err, errlen);
    if (rc < 0)
        return setup_result(s, c, rc);

    unsigned code = 0;
    char msg[320];
    if (write_batch(s, L, c, recs, n, cursor, &code, msg, sizeof(msg)) < 0) {
        enum mariadb_fault f = mariadb_conn_fault(code);
        snprintf(err, errlen, "%s %s", s->name, msg);
        /* Tables dropped or changed under the sink: migrate again before the next write. */
        if (code == ER_NO_SUCH_TABLE || code == ER_BAD_FIELD_ERROR)
            atomic_store_explicit(&s->ready, false, memory_order_release);
        if (f != MARIADB_FAULT_DATA)
            LOG_DEBUG("sink.mariadb", "%s: lane %u: %s", s->name, lane, msg);
        return fault_result(s, c, f);
    }
    pool_return(s->pool, c, maintain(s, L, c));
    atomic_fetch_add_explicit(&L->batches, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&L->write_ns, (uint64_t)(clock_mono_ns() - t0), memory_order_relaxed);
    return SINK_OK;
}

/* ---- metrics ---- */

static void lane_family(const struct sink_metrics_out *m, struct mariadb_sink *s, const char *name,
                        const char *type, const char *help, size_t offset, double scale)
{
    fprintf(m->out, "# HELP telem_sink_mariadb_%s %s\n# TYPE telem_sink_mariadb_%s %s\n", name,
            help, name, type);
    for (unsigned i = 0; i < s->nlanes; i++) {
        _Atomic uint64_t *v = (_Atomic uint64_t *)((char *)&s->lanes[i] + offset);
        fprintf(m->out, "telem_sink_mariadb_%s{sink=\"%s\",lane=\"%u\"} %.17g\n", name,
                m->sink_name, i, (double)atomic_load_explicit(v, memory_order_relaxed) * scale);
    }
}

static void mariadb_sink_metrics(void *state, const struct sink_metrics_out *m)
{
    struct mariadb_sink *s = state;
    struct pool_stats st;
    pool_get_stats(s->pool, &st);
    char labels[160];
    snprintf(labels, sizeof(labels), "sink=\"%s\"", m->sink_name);
    pool_stats_print(&st, m->out, "telem_sink_mariadb_pool", labels, true);

    lane_family(m, s, "trades_total", "counter", "Trade records written, by lane.",
                offsetof(struct mariadb_lane, trades), 1);
    lane_family(m, s, "metrics_total", "counter", "Metric records written, by lane.",
                offsetof(struct mariadb_lane, metrics), 1);
    lane_family(m, s, "rows_inserted_total", "counter",
                "Rows new to the database (replays and repeated trade_ids excluded), by lane.",
                offsetof(struct mariadb_lane, inserted), 1);
    lane_family(m, s, "batches_total", "counter", "Batches committed, by lane.",
                offsetof(struct mariadb_lane, batches), 1);
    lane_family(m, s, "write_seconds_total", "counter", "Time spent in committed writes, by lane.",
                offsetof(struct mariadb_lane, write_ns), 1e-9);
    fprintf(m->out, "# HELP telem_sink_mariadb_faults_total Failed writes by cause.\n"
                    "# TYPE telem_sink_mariadb_faults_total counter\n");
    for (int f = 0; f < 3; f++)
        fprintf(m->out, "telem_sink_mariadb_faults_total{sink=\"%s\",cause=\"%s\"} %llu\n",
                m->sink_name, fault_names[f],
                (unsigned long long)atomic_load_explicit(&s->faults[f], memory_order_relaxed));
}

const struct sink_ops sink_mariadb_ops = {
    .scheme = "mariadb",
    .create = mariadb_sink_create,
    .lanes = mariadb_sink_lanes,
    .open_lane = mariadb_sink_open_lane,
    .write = mariadb_sink_write,
    .metrics = mariadb_sink_metrics,
    .destroy = mariadb_sink_destroy,
};

/* ---- Administrative connections for telemctl ---- */

int sink_mariadb_admin_open(const struct sink_config *cfg, struct sink_mariadb_admin *a, char *err,
                            size_t errlen)
{
    memset(a, 0, sizeof(*a));
    struct mariadb_settings set;
    struct mariadb_url url;
    struct mariadb_conn_options copt;
    memset(&set, 0, sizeof(set));
    int rc = read_settings(cfg, &set, &url, &copt, err, errlen);
    if (rc < 0)
        goto done;
    copt.read_timeout_s = 0; /* a migration of a big adopted table takes what it takes */
    copt.autocommit = true;
    struct mariadb_conn *c;
    rc = mariadb_conn_open(&copt, &c, err, errlen);
    if (rc < 0)
        goto done;
    a->mysql = mariadb_conn_release(c);
    a->schema.partitioning = set.partitioning;
    a->schema.partitions_ahead = (unsigned)set.partitions_ahead;
    a->retention_days = set.retention_days;
done:
    conf_free(mariadb_sink_conf, &set);
    return rc;
}

void sink_mariadb_admin_close(struct sink_mariadb_admin *a)
{
    if (a && a->mysql) {
        mysql_close(a->mysql);
        a->mysql = NULL;
    }
}
