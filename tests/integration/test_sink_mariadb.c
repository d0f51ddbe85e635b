/*
 * test_sink_mariadb.c: the MariaDB sink against a real server, driven through its sink_ops
 * table as the worker drives it.
 *
 * Needs a running MariaDB (scripts/test-services.sh start DIR) and TELEM_TEST_MARIADB_SOCKET,
 * TELEM_TEST_MARIADB_USER and TELEM_TEST_MARIADB_PASSWORD; it fails loudly without them. Each
 * run works in fresh databases telem_test_<pid>[_suffix] and drops them at the end.
 *
 * Covered: exact round trip of trades and metrics (NULLs, microseconds, times before 1970,
 * extreme doubles, quotes and UTF-8), replays storing nothing twice, repeated trade_ids,
 * cursors per lane and after a lane-count change, a row the server refuses (SINK_ERROR, nothing
 * of that batch kept, other batches stored), a killed connection (SINK_RETRY, then replaced),
 * an unreachable server (SINK_RETRY, fast during backoff), multirow mode giving identical
 * tables, partitioned tables with trade_id dedup and retention, adoption of the old system's
 * tables, a newer schema refused, and bad settings refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <mysql.h>

#include "core/clock.h"
#include "core/record.h"
#include "sink/mariadb/mariadb_schema.h"
#include "sink/mariadb/sink_mariadb.h"
#include "sink/sink.h"

static const char *env_socket, *env_user, *env_password;
static MYSQL *admin; /* the test's own connection, autocommit on */

/* ---- Helpers ---- */

static void sql(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void sql(const char *fmt, ...)
{
    char q[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof(q), fmt, ap);
    va_end(ap);
    if (mysql_query(admin, q) != 0)
        fail_msg("%s: %s", q, mysql_error(admin));
    MYSQL_RES *res = mysql_store_result(admin);
    mysql_free_result(res);
}

/* sql_int runs a query answering one number. */
static long long sql_int(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static long long sql_int(const char *fmt, ...)
{
    char q[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof(q), fmt, ap);
    va_end(ap);
    if (mysql_query(admin, q) != 0)
        fail_msg("%s: %s", q, mysql_error(admin));
    MYSQL_RES *res = mysql_store_result(admin);
    assert_non_null(res);
    MYSQL_ROW row = mysql_fetch_row(res);
    long long v = row && row[0] ? strtoll(row[0], NULL, 10) : -1;
    mysql_free_result(res);
    return v;
}

static void db_name(char *out, size_t len, const char *suffix)
{
    snprintf(out, len, "telem_test_%ld%s%s", (long)getpid(), suffix[0] ? "_" : "", suffix);
}

static void fresh_db(const char *db)
{
    sql("DROP DATABASE IF EXISTS %s", db);
    sql("CREATE DATABASE %s", db);
}

static void random_spool_id(uint8_t *id)
{
    static uint64_t state;
    if (!state)
        state = (uint64_t)clock_mono_ns() ^ ((uint64_t)getpid() << 32);
    for (int i = 0; i < 16; i++) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        id[i] = (uint8_t)state;
    }
}

struct sink_under_test {
    void *state;
    uint8_t spool_id[16];
    char url[600];
    char db[80];
};

/* open_sink creates the sink for db with extra "key=value" settings (NULL-terminated). */
static int open_sink(struct sink_under_test *t, const char *db, const uint8_t *spool_id,
                     const char *const *extra, char *err, size_t errlen)
{
    snprintf(t->db, sizeof(t->db), "%s", db);
    snprintf(t->url, sizeof(t->url), "mariadb://%s@localhost/%s?socket=%s", env_user, db,
             env_socket);
    if (spool_id)
        memcpy(t->spool_id, spool_id, 16);
    else
        random_spool_id(t->spool_id);
    struct sink_setting set[16];
    char keys[16][64];
    size_t n = 0;
    set[n++] = (struct sink_setting){"password", env_password, NULL, 0};
    set[n++] = (struct sink_setting){"reconnect_base_ms", "50", NULL, 0};
    set[n++] = (struct sink_setting){"reconnect_max_ms", "200", NULL, 0};
    for (size_t i = 0; extra && extra[i] && n < 16; i++) {
        const char *eq = strchr(extra[i], '=');
        assert_non_null(eq);
        snprintf(keys[n], sizeof(keys[n]), "%.*s", (int)(eq - extra[i]), extra[i]);
        set[n] = (struct sink_setting){keys[n], eq + 1, NULL, 0};
        n++;
    }
    struct sink_config cfg = {.name = "main",
                              .url = t->url,
                              .settings = set,
                              .nsettings = n,
                              .spool_id = t->spool_id,
                              .data_dir = "/tmp"};
    return sink_mariadb_ops.create(&cfg, &t->state, err, errlen);
}

static void open_lanes(struct sink_under_test *t, uint64_t *cursors)
{
    char err[512];
    unsigned lanes = sink_mariadb_ops.lanes(t->state);
    for (unsigned l = 0; l < lanes; l++) {
        uint64_t c = 0;
        enum sink_result r = sink_mariadb_ops.open_lane(t->state, l, &c, err, sizeof(err));
        if (r != SINK_OK)
            fail_msg("open_lane %u: %d %s", l, r, err);
        if (cursors)
            cursors[l] = c;
    }
}

static void close_sink(struct sink_under_test *t)
{
    sink_mariadb_ops.destroy(t->state);
    t->state = NULL;
}

static void set_str(char *dst, uint8_t *len, size_t cap, const char *s)
{
    size_t n = strlen(s);
    assert_true(n < cap);
    memcpy(dst, s, n + 1);
    *len = (uint8_t)n;
}

static struct record trade(uint64_t seq, const char *profile, int64_t ts_ns, const char *trade_id)
{
    struct record r;
    memset(&r, 0, sizeof(r));
    r.kind = RECORD_TRADE;
    r.seq = seq;
    r.ts_ns = ts_ns;
    set_str(r.profile, &r.profile_len, sizeof(r.profile), profile);
    set_str(r.script, &r.script_len, sizeof(r.script), "exec");
    set_str(r.symbol, &r.symbol_len, sizeof(r.symbol), "BTCUSDT");
    set_str(r.side, &r.side_len, sizeof(r.side), "buy");
    r.present = REC_HAS_QTY | REC_HAS_ENTRY_PRICE | REC_HAS_EXIT_PRICE | REC_HAS_PNL |
                REC_HAS_FEES | REC_HAS_OPENED_AT;
    r.qty = 1.5;
    r.entry_price = 100.25;
    r.exit_price = 101.75;
    r.pnl = 2.25;
    r.fees = 0.01;
    r.opened_at_ns = ts_ns - 60 * 1000000000LL;
    if (trade_id)
        set_str(r.trade_id, &r.trade_id_len, sizeof(r.trade_id), trade_id);
    return r;
}

static struct record metric(uint64_t seq, const char *profile, const char *name, double v,
                            int64_t ts_ns)
{
    struct record r;
    memset(&r, 0, sizeof(r));
    r.kind = RECORD_METRIC;
    r.seq = seq;
    r.ts_ns = ts_ns;
    r.value = v;
    set_str(r.profile, &r.profile_len, sizeof(r.profile), profile);
    set_str(r.script, &r.script_len, sizeof(r.script), "risk");
    set_str(r.name, &r.name_len, sizeof(r.name), name);
    return r;
}

/* write_all writes recs split into their lanes (as the worker does) with cursor = last seq. */
static enum sink_result write_all(struct sink_under_test *t, const struct record *recs, size_t n,
                                  char *err, size_t errlen)
{
    unsigned lanes = sink_mariadb_ops.lanes(t->state);
    struct record *mine = calloc(n ? n : 1, sizeof(*mine));
    uint64_t cursor = n ? recs[n - 1].seq : 0;
    enum sink_result worst = SINK_OK;
    for (unsigned l = 0; l < lanes; l++) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            if (record_lane(&recs[i], lanes) == l)
                mine[k++] = recs[i];
        }
        enum sink_result r = sink_mariadb_ops.write(t->state, l, mine, k, cursor, err, errlen);
        if (r != SINK_OK)
            worst = r;
        if (r != SINK_OK)
            break;
    }
    free(mine);
    return worst;
}

static long long count_rows(const char *db, const char *table, const uint8_t *spool_id)
{
    char hex[33];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", spool_id[i]);
    return sql_int("SELECT COUNT(*) FROM %s.%s WHERE spool_id = X'%s'", db, table, hex);
}

/* A trade read back through the binary protocol, so doubles and times come back exact. */
struct trade_row {
    uint64_t seq;
    char profile[65], script[65], symbol[33], side[17], trade_id[65];
    double v[5];
    my_bool v_null[5];
    MYSQL_TIME opened, closed;
    my_bool opened_null, trade_id_null;
};

static size_t read_trades(const char *db, const uint8_t *spool_id, struct trade_row *out,
                          size_t cap)
{
    char q[512];
    snprintf(q, sizeof(q),
             "SELECT seq, profile_id, script, symbol, side, qty, entry_price, exit_price, pnl, "
             "fees, opened_at, closed_at, trade_id FROM %s.trade_performance WHERE spool_id = ? "
             "ORDER BY seq",
             db);
    MYSQL_STMT *st = mysql_stmt_init(admin);
    if (mysql_stmt_prepare(st, q, strlen(q)))
        fail_msg("%s", mysql_stmt_error(st));
    MYSQL_BIND p = {0};
    unsigned long idlen = 16;
    p.buffer_type = MYSQL_TYPE_BLOB;
    p.buffer = (void *)spool_id;
    p.buffer_length = 16;
    p.length = &idlen;
    assert_int_equal(mysql_stmt_bind_param(st, &p), 0);
    assert_int_equal(mysql_stmt_execute(st), 0);

    struct trade_row row;
    MYSQL_BIND b[13];
    memset(b, 0, sizeof(b));
    unsigned long lens[13];
    my_bool nulls[13];
    b[0].buffer_type = MYSQL_TYPE_LONGLONG;
    b[0].buffer = &row.seq;
    b[0].is_unsigned = 1;
    char *strs[] = {row.profile, row.script, row.symbol, row.side};
    size_t caps[] = {65, 65, 33, 17};
    for (int i = 0; i < 4; i++) {
        b[1 + i].buffer_type = MYSQL_TYPE_STRING;
        b[1 + i].buffer = strs[i];
        b[1 + i].buffer_length = caps[i];
    }
    for (int i = 0; i < 5; i++) {
        b[5 + i].buffer_type = MYSQL_TYPE_DOUBLE;
        b[5 + i].buffer = &row.v[i];
        b[5 + i].is_null = &row.v_null[i];
    }
    b[10].buffer_type = MYSQL_TYPE_DATETIME;
    b[10].buffer = &row.opened;
    b[10].is_null = &row.opened_null;
    b[11].buffer_type = MYSQL_TYPE_DATETIME;
    b[11].buffer = &row.closed;
    b[12].buffer_type = MYSQL_TYPE_STRING;
    b[12].buffer = row.trade_id;
    b[12].buffer_length = 65;
    b[12].is_null = &row.trade_id_null;
    for (int i = 0; i < 13; i++) {
        b[i].length = &lens[i];
        if (!b[i].is_null)
            b[i].is_null = &nulls[i];
    }
    assert_int_equal(mysql_stmt_bind_result(st, b), 0);
    assert_int_equal(mysql_stmt_store_result(st), 0);
    size_t n = 0;
    while (mysql_stmt_fetch(st) == 0 && n < cap) {
        row.profile[lens[1]] = row.script[lens[2]] = row.symbol[lens[3]] = row.side[lens[4]] = 0;
        if (!row.trade_id_null)
            row.trade_id[lens[12]] = 0;
        out[n++] = row;
    }
    mysql_stmt_close(st);
    return n;
}

static int64_t time_us(const MYSQL_TIME *t)
{
    struct tm tm = {.tm_year = (int)t->year - 1900,
                    .tm_mon = (int)t->month - 1,
                    .tm_mday = (int)t->day,
                    .tm_hour = (int)t->hour,
                    .tm_min = (int)t->minute,
                    .tm_sec = (int)t->second};
    return (int64_t)timegm(&tm) * 1000000 + (int64_t)t->second_part;
}

static int64_t floor_us(int64_t ns)
{
    return ns / 1000 - (ns % 1000 < 0);
}

/* ---- Tests ---- */

static void test_round_trip_exact(void **state)
{
    (void)state;
    char db[80], err[512];
    db_name(db, sizeof(db), "rt");
    fresh_db(db);
    struct sink_under_test t;
    const char *extra[] = {"lanes=2", NULL};
    assert_int_equal(open_sink(&t, db, NULL, extra, err, sizeof(err)), 0);
    uint64_t cursors[2];
    open_lanes(&t, cursors);
    assert_int_equal(cursors[0], 0);
    assert_int_equal(cursors[1], 0);

    struct record recs[8];
    int64_t t0 = 1700000000123456789LL;
    recs[0] = trade(1, "alpha", t0, "T-1");
    recs[1] = trade(2, "beta", -1, NULL); /* 1 ns before the epoch */
    recs[1].present = REC_HAS_PNL;        /* only pnl: the rest NULL */
    recs[1].pnl = -0.1;
    recs[1].script_len = recs[1].symbol_len = recs[1].side_len = 0;
    recs[1].script[0] = recs[1].symbol[0] = recs[1].side[0] = 0;
    /* The ends of what nanoseconds in an int64 reach: 2262-04-11 23:47:16.854775807 and
     * 1677-09-21 00:12:43.145224192 (floored to microseconds). */
    recs[2] = trade(3, "профиль-ü", INT64_MAX, "it's \\ \"q\"");
    recs[2].opened_at_ns = INT64_MIN;
    recs[2].qty = 1e308;
    recs[2].entry_price = 5e-324;
    recs[2].exit_price = 0.1 + 0.2;
    recs[2].pnl = -123456789.123456789;
    recs[2].fees = 1.0 / 3.0;
    char long_profile[65];
    memset(long_profile, 'p', 64);
    long_profile[64] = 0;
    recs[3] = trade(4, long_profile, t0 + 1000, NULL);
    recs[4] = metric(5, "alpha", "equity", 10500.5, t0);
    recs[5] = metric(6, "beta", "latency.p99", -1e-9, -1500); /* 1.5 us before the epoch */
    recs[6] = metric(7, "alpha", "win_rate", 0.0, t0 + 999);
    recs[7] = metric(8, "gamma", "x", 42, 0);
    assert_int_equal(write_all(&t, recs, 8, err, sizeof(err)), SINK_OK);

    struct trade_row rows[8];
    size_t n = read_trades(db, t.spool_id, rows, 8);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++) {
        const struct record *r = &recs[i];
        assert_int_equal(rows[i].seq, r->seq);
        assert_string_equal(rows[i].profile, r->profile);
        assert_string_equal(rows[i].script, r->script);
        assert_string_equal(rows[i].symbol, r->symbol);
        assert_string_equal(rows[i].side, r->side);
        const double want[5] = {r->qty, r->entry_price, r->exit_price, r->pnl, r->fees};
        const unsigned bits[5] = {REC_HAS_QTY, REC_HAS_ENTRY_PRICE, REC_HAS_EXIT_PRICE, REC_HAS_PNL,
                                  REC_HAS_FEES};
        for (int k = 0; k < 5; k++) {
            assert_int_equal(rows[i].v_null[k], !(r->present & bits[k]));
            if (r->present & bits[k])
                assert_memory_equal(&rows[i].v[k], &want[k], sizeof(double));
        }
        assert_int_equal(rows[i].opened_null, !(r->present & REC_HAS_OPENED_AT));
        if (r->present & REC_HAS_OPENED_AT)
            assert_int_equal(time_us(&rows[i].opened), floor_us(r->opened_at_ns));
        assert_int_equal(time_us(&rows[i].closed), floor_us(r->ts_ns));
        assert_int_equal(rows[i].trade_id_null, r->trade_id_len == 0);
        if (r->trade_id_len)
            assert_string_equal(rows[i].trade_id, r->trade_id);
    }
    /* The edge times, as the server prints them. */
    char hex[33];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", t.spool_id[i]);
    assert_int_equal(sql_int("SELECT COUNT(*) FROM %s.trade_performance WHERE spool_id = X'%s' "
                             "AND closed_at = '1969-12-31 23:59:59.999999'",
                             db, hex),
                     1);
    assert_int_equal(sql_int("SELECT COUNT(*) FROM %s.trade_performance WHERE spool_id = X'%s' "
                             "AND closed_at = '2262-04-11 23:47:16.854775' AND opened_at = "
                             "'1677-09-21 00:12:43.145224'",
                             db, hex),
                     1);
    assert_int_equal(sql_int("SELECT COUNT(*) FROM %s.trade_performance WHERE spool_id = X'%s' "
                             "AND closed_at = '2023-11-14 22:13:20.123456'",
                             db, hex),
                     1);

    /* Metrics: exact doubles through the binary protocol, times as text. */
    MYSQL_STMT *st = mysql_stmt_init(admin);
    char q[256];
    snprintf(q, sizeof(q),
             "SELECT value, DATE_FORMAT(ts, '%%Y-%%m-%%d %%H:%%i:%%s.%%f'), name, profile_id, "
             "script FROM %s.aggregated_metric WHERE spool_id = X'%s' ORDER BY seq",
             db, hex);
    assert_int_equal(mysql_stmt_prepare(st, q, strlen(q)), 0);
    assert_int_equal(mysql_stmt_execute(st), 0);
    double v;
    char ts[40], name[129], prof[65], script[65];
    unsigned long l[5];
    MYSQL_BIND b[5];
    memset(b, 0, sizeof(b));
    b[0].buffer_type = MYSQL_TYPE_DOUBLE;
    b[0].buffer = &v;
    char *bufs[] = {ts, name, prof, script};
    size_t caps[] = {sizeof(ts), sizeof(name), sizeof(prof), sizeof(script)};
    for (int i = 0; i < 4; i++) {
        b[1 + i].buffer_type = MYSQL_TYPE_STRING;
        b[1 + i].buffer = bufs[i];
        b[1 + i].buffer_length = caps[i];
    }
    for (int i = 0; i < 5; i++)
        b[i].length = &l[i];
    assert_int_equal(mysql_stmt_bind_result(st, b), 0);
    const char *want_ts[] = {"2023-11-14 22:13:20.123456", "1969-12-31 23:59:59.999998",
                             "2023-11-14 22:13:20.123457", "1970-01-01 00:00:00.000000"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(mysql_stmt_fetch(st), 0);
        ts[l[1]] = name[l[2]] = prof[l[3]] = script[l[4]] = 0;
        assert_memory_equal(&v, &recs[4 + i].value, sizeof(double));
        assert_string_equal(ts, want_ts[i]);
        assert_string_equal(name, recs[4 + i].name);
        assert_string_equal(prof, recs[4 + i].profile);
        assert_string_equal(script, "risk");
    }
    assert_int_equal(mysql_stmt_fetch(st), MYSQL_NO_DATA);
    mysql_stmt_close(st);
    close_sink(&t);
}

static void test_replay_stores_nothing_twice(void **state)
{
    (void)state;
    char db[80], err[512];
    db_name(db, sizeof(db), "replay");
    fresh_db(db);
    struct sink_under_test t;
    const char *extra[] = {"lanes=2", "rows_per_execute=7", NULL};
    assert_int_equal(open_sink(&t, db, NULL, extra, err, sizeof(err)), 0);
    open_lanes(&t, NULL);
    enum { N = 100 };
    struct record recs[N];
    char profile[16];
    for (int i = 0; i < N; i++) {
        snprintf(profile, sizeof(profile), "p%d", i % 9);
        int64_t ts = 1700000000000000000LL + i * 1000LL;
        if (i % 3 == 0) {
            char id[16];
            snprintf(id, sizeof(id), "id-%d", i);
            recs[i] = trade((uint64_t)i + 1, profile, ts, i % 2 ? id : NULL);
        } else {
            recs[i] = metric((uint64_t)i + 1, profile, "m", i, ts);
        }
    }
    assert_int_equal(write_all(&t, recs, N, err, sizeof(err)), SINK_OK);
    long long trades = count_rows(db, "trade_performance", t.spool_id);
    long long metrics = count_rows(db, "aggregated_metric", t.spool_id);
    assert_int_equal(trades + metrics, N);
    /* The whole batch again, then a slice of it: nothing new. */
    assert_int_equal(write_all(&t, recs, N, err, sizeof(err)), SINK_OK);
    assert_int_equal(write_all(&t, recs + 10, 30, err, sizeof(err)), SINK_OK);
    assert_int_equal(count_rows(db, "trade_performance", t.spool_id), trades);
    assert_int_equal(count_rows(db, "aggregated_metric", t.spool_id), metrics);
    /* A new sink state (a restart) replays too. */
    close_sink(&t);
    uint8_t id[16];
    memcpy(id, t.spool_id, 16);
    assert_int_equal(open_sink(&t, db, id, extra, err, sizeof(err)), 0);
    open_lanes(&t, NULL);
    assert_int_equal(write_all(&t, recs, N, err, sizeof(err)), SINK_OK);
    assert_int_equal(count_rows(db, "trade_performance", t.spool_id), trades);
    assert_int_equal(count_rows(db, "aggregated_metric", t.spool_id), metrics);
    close_sink(&t);
}

/* trade_id_dedup_in checks repeated trade_ids in a database with the given settings. */
static void trade_id_dedup_in(const char *suffix, const char *const *extra)
{
    char db[80], err[512];
    db_name(db, sizeof(db), suffix);
    fresh_db(db);
    struct sink_under_test t;
    assert_int_equal(open_sink(&t, db, NULL, extra, err, sizeof(err)), 0);
    open_lanes(&t, NULL);
    int64_t ts = clock_wall_ns();
    struct record a[4] = {
        trade(1, "alpha", ts, "order-1"), trade(2, "alpha", ts, "order-2"),
        trade(3, "beta", ts, "order-1"),  /* same id, other profile: its own trade */
        trade(4, "alpha", ts, "order-1"), /* repeat within the batch */
    };
    assert_int_equal(write_all(&t, a, 4, err, sizeof(err)), SINK_OK);
    /* A client retry: the same trades again under new sequence numbers and later times. */
    struct record b[3] = {
        trade(5, "alpha", ts + 5000000000LL, "order-1"),
        trade(6, "alpha", ts + 5000000000LL, "order-2"),
        trade(7, "alpha", ts + 5000000000LL, "order-3"),
    };
    assert_int_equal(write_all(&t, b, 3, err, sizeof(err)), SINK_OK);
    assert_int_equal(sql_int("SELECT COUNT(*) FROM %s.trade_performance", db), 4);
    assert_int_equal(sql_int("SELECT COUNT(*) FROM %s.trade_performance WHERE profile_id = "
                             "'alpha' AND trade_id = 'order-1'",
                             db),
                     1);
    assert_int_equal(sql_int("SELECT seq FROM %s.trade_performance WHERE profile_id = 'alpha' "
                             "AND trade_id = 'order-1'",
                             db),
                     1);
    assert_int_equal(sql_int("SELECT COUNT(*) FROM %s.trade_performance WHERE trade_id = "
                             "'order-3'",
                             db),
                     1);
    /* Trade ids compare exactly: case matters. */
    struct record c[1] = {trade(8, "alpha", ts, "ORDER-1")};
    assert_int_equal(write_all(&t, c, 1, err, sizeof(err)), SINK_OK);
    assert_int_equal(sql_int("SELECT COUNT(*) FROM %s.trade_performance", db), 5);
    close_sink(&t);
}

static void test_trade_id_retry_no_duplicate(void **state)
{
    (void)state;
    const char *plain[] = {"lanes=1", NULL};
    trade_id_dedup_in("tid", plain);
    const char *parted[] = {"lanes=2", "partitioning=daily", NULL};
    trade_id_dedup_in("tidp", parted);
    const char *text[] = {"insert_mode=multirow", "partitioning=monthly", NULL};
    trade_id_dedup_in("tidm", text);
}

static void test_cursor_per_lane(void **state)
{
    (void)state;
    char db[80], err[512];
    db_name(db, sizeof(db), "cursor");
    fresh_db(db);
    struct sink_under_test t;
    const char *two[] = {"lanes=2", NULL};
    assert_int_equal(open_sink(&t, db, NULL, two, err, sizeof(err)), 0);
    open_lanes(&t, NULL);
    struct record r0 = metric(10, "x", "m", 1, 0);
    assert_int_equal(sink_mariadb_ops.write(t.state, 0, &r0, 1, 100, err, sizeof(err)), SINK_OK);
    assert_int_equal(sink_mariadb_ops.write(t.state, 1, NULL, 0, 250, err, sizeof(err)), SINK_OK);
    assert_int_equal(sql_int("SELECT seq FROM %s.telem_cursor WHERE sink = 'main:0/2'", db), 100);
    assert_int_equal(sql_int("SELECT seq FROM %s.telem_cursor WHERE sink = 'main:1/2'", db), 250);
    uint8_t id[16];
    memcpy(id, t.spool_id, 16);
    close_sink(&t);

    /* Restart: each lane resumes after its own cursor. */
    uint64_t cursors[4];
    assert_int_equal(open_sink(&t, db, id, two, err, sizeof(err)), 0);
    open_lanes(&t, cursors);
    assert_int_equal(cursors[0], 100);
    assert_int_equal(cursors[1], 250);
    close_sink(&t);

    /* Another spool in the same database has its own cursors. */
    assert_int_equal(open_sink(&t, db, NULL, two, err, sizeof(err)), 0);
    open_lanes(&t, cursors);
    assert_int_equal(cursors[0], 0);
    assert_int_equal(cursors[1], 0);
    close_sink(&t);

    /* Four lanes now: no rows of their own, so all start at the lowest earlier lane. */
    const char *four[] = {"lanes=4", NULL};
    assert_int_equal(open_sink(&t, db, id, four, err, sizeof(err)), 0);
    open_lanes(&t, cursors);
    for (int i = 0; i < 4; i++)
        assert_int_equal(cursors[i], 100);
    close_sink(&t);
}

static void test_rejected_row_is_data_error(void **state)
{
    (void)state;
    char db[80], err[512];
    db_name(db, sizeof(db), "reject");
    fresh_db(db);
    struct sink_under_test t;
    const char *extra[] = {"lanes=1", NULL};
    assert_int_equal(open_sink(&t, db, NULL, extra, err, sizeof(err)), 0);
    open_lanes(&t, NULL);
    /* A narrower column than telem's: a big qty no longer fits. */
    sql("ALTER TABLE %s.trade_performance MODIFY qty DECIMAL(6,2) NULL", db);
    int64_t ts = clock_wall_ns();
    struct record ok1[2] = {trade(1, "a", ts, NULL), metric(2, "a", "m", 1, ts)};
    assert_int_equal(write_all(&t, ok1, 2, err, sizeof(err)), SINK_OK);

    struct record bad[3] = {metric(3, "a", "m", 2, ts), trade(4, "a", ts, NULL),
                            trade(5, "a", ts, NULL)};
    bad[2].qty = 1e9;
    assert_int_equal(write_all(&t, bad, 3, err, sizeof(err)), SINK_ERROR);
    assert_non_null(strstr(err, "qty"));
    /* Nothing of the refused batch stayed, the cursor did not move. */
    assert_int_equal(count_rows(db, "trade_performance", t.spool_id), 1);
    assert_int_equal(count_rows(db, "aggregated_metric", t.spool_id), 1);
    assert_int_equal(sql_int("SELECT seq FROM %s.telem_cursor", db), 2);
    /* The worker's split: the good halves go in, the bad record alone fails again. */
    assert_int_equal(write_all(&t, bad, 2, err, sizeof(err)), SINK_OK);
    assert_int_equal(write_all(&t, bad + 2, 1, err, sizeof(err)), SINK_ERROR);
    struct record later[1] = {metric(6, "a", "m", 3, ts)};
    assert_int_equal(write_all(&t, later, 1, err, sizeof(err)), SINK_OK);
    assert_int_equal(count_rows(db, "trade_performance", t.spool_id), 2);
    assert_int_equal(count_rows(db, "aggregated_metric", t.spool_id), 3);

    /* Values no column can hold are refused before anything is sent. */
    struct record nan_rec[1] = {metric(7, "a", "m", 0, ts)};
    nan_rec[0].value = 0.0 / 0.0;
    assert_int_equal(write_all(&t, nan_rec, 1, err, sizeof(err)), SINK_ERROR);
    assert_non_null(strstr(err, "seq 7"));
    struct record inf_rec[1] = {trade(8, "a", ts, NULL)};
    inf_rec[0].pnl = 1.0 / 0.0;
    assert_int_equal(write_all(&t, inf_rec, 1, err, sizeof(err)), SINK_ERROR);
    assert_int_equal(count_rows(db, "trade_performance", t.spool_id), 2);
    close_sink(&t);
}

static void test_killed_connection_retries(void **state)
{
    (void)state;
    char db[80], err[512];
    db_name(db, sizeof(db), "kill");
    fresh_db(db);
    struct sink_under_test t;
    const char *extra[] = {"lanes=1", "pool_size=1", NULL};
    assert_int_equal(open_sink(&t, db, NULL, extra, err, sizeof(err)), 0);
    open_lanes(&t, NULL);
    long long id = sql_int("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = '%s' AND ID "
                           "<> CONNECTION_ID() LIMIT 1",
                           db);
    assert_true(id > 0);
    sql("KILL CONNECTION %lld", id);
    struct record r[1] = {metric(1, "a", "m", 1, clock_wall_ns())};
    enum sink_result res = write_all(&t, r, 1, err, sizeof(err));
    assert_int_equal(res, SINK_RETRY);
    /* The broken connection was replaced: the retry goes through. */
    assert_int_equal(write_all(&t, r, 1, err, sizeof(err)), SINK_OK);
    assert_int_equal(count_rows(db, "aggregated_metric", t.spool_id), 1);

    /* A table dropped under the sink: a retry, then the schema is made again. */
    sql("DROP TABLE %s.aggregated_metric", db);
    struct record r2[1] = {metric(2, "a", "m", 2, clock_wall_ns())};
    assert_int_equal(write_all(&t, r2, 1, err, sizeof(err)), SINK_RETRY);
    assert_int_equal(write_all(&t, r2, 1, err, sizeof(err)), SINK_OK);
    assert_int_equal(count_rows(db, "aggregated_metric", t.spool_id), 1);
    close_sink(&t);
}

static void test_unreachable_server_retries_fast(void **state)
{
    (void)state;
    char err[512];
    struct sink_under_test t;
    /* A socket nobody listens on. */
    snprintf(t.url, sizeof(t.url), "mariadb://%s@localhost/x?socket=/nonexistent/telem.sock",
             env_user);
    random_spool_id(t.spool_id);
    struct sink_setting set[] = {{"password", env_password, NULL, 0},
                                 {"reconnect_base_ms", "2000", NULL, 0},
                                 {"reconnect_max_ms", "2000", NULL, 0}};
    struct sink_config cfg = {.name = "down",
                              .url = t.url,
                              .settings = set,
                              .nsettings = 3,
                              .spool_id = t.spool_id,
                              .data_dir = "/tmp"};
    assert_int_equal(sink_mariadb_ops.create(&cfg, &t.state, err, sizeof(err)), 0);
    uint64_t c;
    assert_int_equal(sink_mariadb_ops.open_lane(t.state, 0, &c, err, sizeof(err)), SINK_RETRY);
    assert_non_null(strstr(err, "/nonexistent/telem.sock"));
    /* During the backoff the sink answers at once, without knocking on the server. */
    struct record r[1] = {metric(1, "a", "m", 1, 0)};
    int64_t t0 = clock_mono_ns();
    for (int i = 0; i < 20; i++)
        assert_int_equal(sink_mariadb_ops.write(t.state, 0, r, 1, 1, err, sizeof(err)), SINK_RETRY);
    assert_true(clock_mono_ns() - t0 < 200 * 1000000LL);
    assert_non_null(strstr(err, "not connecting"));
    /* The failure shows in the metrics. */
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    sink_mariadb_ops.metrics(t.state, &(struct sink_metrics_out){.out = out, .sink_name = "down"});
    fclose(out);
    assert_non_null(
        strstr(buf, "telem_sink_mariadb_pool_connect_failures_total{sink=\"down\"} 1\n"));
    assert_non_null(strstr(buf, "telem_sink_mariadb_pool_backing_off{sink=\"down\"} 1\n"));
    free(buf);
    close_sink(&t);

    /* Wrong credentials: a retry too, and the message never holds the password. */
    char db[80];
    db_name(db, sizeof(db), "rt");
    snprintf(t.url, sizeof(t.url), "mariadb://%s@localhost/%s?socket=%s", env_user, db, env_socket);
    struct sink_setting bad[] = {{"password", "not-the-password-xyzzy", NULL, 0}};
    cfg.settings = bad;
    cfg.nsettings = 1;
    assert_int_equal(sink_mariadb_ops.create(&cfg, &t.state, err, sizeof(err)), 0);
    assert_int_equal(sink_mariadb_ops.open_lane(t.state, 0, &c, err, sizeof(err)), SINK_RETRY);
    assert_non_null(strstr(err, "Access denied"));
    assert_null(strstr(err, "xyzzy"));
    close_sink(&t);
}

/* fill_mixed makes n records of every shape, deterministic. */
static void fill_mixed(struct record *recs, size_t n)
{
    char profile[32], id[32];
    for (size_t i = 0; i < n; i++) {
        snprintf(profile, sizeof(profile), "prof-%zu", i % 13);
        int64_t ts = 1690000000000000000LL + (int64_t)i * 7777777LL;
        if (i % 2) {
            snprintf(id, sizeof(id), "tr-%zu", i / 3);
            recs[i] = trade(i + 1, profile, ts, i % 5 ? id : NULL);
            recs[i].present = (uint8_t)(i % 64);
            recs[i].qty = (double)i / 7.0;
            recs[i].pnl = -(double)i * 1e-7;
        } else {
            recs[i] =
                metric(i + 1, profile, i % 4 ? "equity" : "it's a \\ name", (double)i / 3.0, ts);
        }
    }
}

static void test_multirow_matches_bulk(void **state)
{
    (void)state;
    char dba[80], dbb[80], err[512];
    db_name(dba, sizeof(dba), "bulk");
    db_name(dbb, sizeof(dbb), "text");
    fresh_db(dba);
    fresh_db(dbb);
    enum { N = 3000 };
    struct record *recs = calloc(N, sizeof(*recs));
    fill_mixed(recs, N);
    uint8_t id[16];
    random_spool_id(id);
    struct sink_under_test a, b;
    const char *bulk[] = {"insert_mode=bulk", "lanes=2", "rows_per_execute=333", NULL};
    const char *text[] = {"insert_mode=multirow", "lanes=3", "rows_per_execute=250", NULL};
    assert_int_equal(open_sink(&a, dba, id, bulk, err, sizeof(err)), 0);
    assert_int_equal(open_sink(&b, dbb, id, text, err, sizeof(err)), 0);
    open_lanes(&a, NULL);
    open_lanes(&b, NULL);
    for (size_t off = 0; off < N; off += 1000) {
        assert_int_equal(write_all(&a, recs + off, 1000, err, sizeof(err)), SINK_OK);
        assert_int_equal(write_all(&b, recs + off, 1000, err, sizeof(err)), SINK_OK);
    }
    for (int k = 0; k < 2; k++) {
        const char *table = k ? "aggregated_metric" : "trade_performance";
        long long ca = sql_int("SELECT COUNT(*) FROM %s.%s", dba, table);
        assert_true(ca > 1000);
        assert_int_equal(sql_int("SELECT COUNT(*) FROM %s.%s", dbb, table), ca);
        /* Row by row, every column (NULL-safe), between the two databases. */
        const char *on = k ? "a.value <=> b.value AND a.ts <=> b.ts AND a.name <=> b.name AND "
                             "a.profile_id <=> b.profile_id AND a.script <=> b.script"
                           : "a.profile_id <=> b.profile_id AND a.script <=> b.script AND "
                             "a.symbol <=> b.symbol AND a.side <=> b.side AND a.qty <=> b.qty AND "
                             "a.entry_price <=> b.entry_price AND a.exit_price <=> b.exit_price "
                             "AND a.pnl <=> b.pnl AND a.fees <=> b.fees AND a.opened_at <=> "
                             "b.opened_at AND a.closed_at <=> b.closed_at AND a.trade_id <=> "
                             "b.trade_id";
        assert_int_equal(sql_int("SELECT COUNT(*) FROM %s.%s a JOIN %s.%s b ON a.spool_id = "
                                 "b.spool_id AND a.seq = b.seq AND %s",
                                 dba, table, dbb, table, on),
                         ca);
    }
    close_sink(&a);
    close_sink(&b);
    free(recs);
}

static void test_partitions_and_retention(void **state)
{
    (void)state;
    char db[80], err[512];
    db_name(db, sizeof(db), "part");
    fresh_db(db);
    struct sink_under_test t;
    /* First unpartitioned tables: the trade_id register has no closed_at index there (nothing
     * deletes from it by time). Then, as the error for partitioning asked on existing tables
     * suggests, the data tables are renamed away and a partitioned sink makes new ones: the
     * register it finds gains the index retention needs. */
    assert_int_equal(open_sink(&t, db, NULL, NULL, err, sizeof(err)), 0);
    open_lanes(&t, NULL);
    close_sink(&t);
#define CLOSED_INDEX                                                                               \
    "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = '%s' AND "            \
    "TABLE_NAME = 'telem_trade_id' AND COLUMN_NAME = 'closed_at'"
    assert_int_equal(sql_int(CLOSED_INDEX, db), 0);
    sql("RENAME TABLE %s.trade_performance TO %s.old_trades, %s.aggregated_metric TO "
        "%s.old_metrics",
        db, db, db, db);
    const char *extra[] = {"partitioning=daily", "partitions_ahead=2", "lanes=1", NULL};
    assert_int_equal(open_sink(&t, db, NULL, extra, err, sizeof(err)), 0);
    open_lanes(&t, NULL);
    assert_int_equal(sql_int(CLOSED_INDEX, db), 1);
#undef CLOSED_INDEX
    /* pold, today, 2 ahead and the one after, pmax. */
    long long parts = sql_int("SELECT COUNT(*) FROM information_schema.PARTITIONS WHERE "
                              "TABLE_SCHEMA = '%s' AND TABLE_NAME = 'trade_performance'",
                              db);
    assert_true(parts >= 5);
    int64_t day = 86400LL * 1000000000LL;
    int64_t now = clock_wall_ns();
    struct record recs[6] = {
        trade(1, "a", now - 400 * day, "old-1"),
        metric(2, "a", "m", 1, now - 400 * day),
        trade(3, "a", now, "new-1"),
        metric(4, "a", "m", 2, now),
        trade(5, "a", now + 30 * day, "future"),
        metric(6, "a", "m", 3, now + 30 * day),
    };
    assert_int_equal(write_all(&t, recs, 6, err, sizeof(err)), SINK_OK);
    assert_int_equal(count_rows(db, "trade_performance", t.spool_id), 3);
    assert_int_equal(sql_int("SELECT COUNT(*) FROM %s.telem_trade_id", db), 3);

    /* Ensuring partitions later (pmax holds the future rows) keeps every row. */
    struct sink_mariadb_admin adm;
    char url[600];
    snprintf(url, sizeof(url), "%s", t.url);
    struct sink_setting set[] = {{"password", env_password, NULL, 0},
                                 {"partitioning", "daily", NULL, 0}};
    struct sink_config cfg = {.name = "main",
                              .url = url,
                              .settings = set,
                              .nsettings = 2,
                              .spool_id = t.spool_id,
                              .data_dir = "/tmp"};
    assert_int_equal(sink_mariadb_admin_open(&cfg, &adm, err, sizeof(err)), 0);
    assert_int_equal(adm.schema.partitioning, MARIADB_PARTITION_DAILY);
    int64_t now_us = now / 1000;
    assert_int_equal(mariadb_schema_ensure_partitions(
                         adm.mysql, &adm.schema, now_us + 40 * 86400LL * 1000000, err, sizeof(err)),
                     0);
    assert_int_equal(count_rows(db, "trade_performance", t.spool_id), 3);
    assert_true(sql_int("SELECT COUNT(*) FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA "
                        "= '%s' AND TABLE_NAME = 'aggregated_metric'",
                        db) > 40);

    /* Retention drops whole partitions: up to the start of today, that is pold of each table
     * (holding the old rows); today's rows stay. */
    int64_t today_us = now_us / (86400LL * 1000000) * (86400LL * 1000000);
    int dropped = mariadb_schema_drop_before(adm.mysql, today_us, err, sizeof(err));
    assert_int_equal(dropped, 2);
    assert_int_equal(count_rows(db, "trade_performance", t.spool_id), 2);
    assert_int_equal(count_rows(db, "aggregated_metric", t.spool_id), 2);
    assert_int_equal(sql_int("SELECT COUNT(*) FROM %s.telem_trade_id", db), 2);
    /* Again: nothing more to drop. */
    assert_int_equal(mariadb_schema_drop_before(adm.mysql, today_us, err, sizeof(err)), 0);
    /* Writing still works after the partitions changed under the prepared statements. */
    struct record more[2] = {trade(7, "a", now, "new-2"), metric(8, "a", "m", 4, now)};
    assert_int_equal(write_all(&t, more, 2, err, sizeof(err)), SINK_OK);
    assert_int_equal(count_rows(db, "trade_performance", t.spool_id), 3);
    sink_mariadb_admin_close(&adm);
    close_sink(&t);

    /* Unpartitioned tables: retention says it cannot. */
    char db2[80];
    db_name(db2, sizeof(db2), "rt");
    snprintf(url, sizeof(url), "mariadb://%s@localhost/%s?socket=%s", env_user, db2, env_socket);
    cfg.nsettings = 1;
    assert_int_equal(sink_mariadb_admin_open(&cfg, &adm, err, sizeof(err)), 0);
    assert_int_equal(mariadb_schema_drop_before(adm.mysql, now_us, err, sizeof(err)), -EOPNOTSUPP);
    sink_mariadb_admin_close(&adm);
}

static void test_adopts_old_tables(void **state)
{
    (void)state;
    char db[80], err[512];
    db_name(db, sizeof(db), "adopt");
    fresh_db(db);
    /* The old Python system's tables (shared/baseline/seed_telemetry.py), with old rows. */
    sql("CREATE TABLE %s.trade_performance(id BIGINT AUTO_INCREMENT PRIMARY KEY, "
        "profile_id VARCHAR(64), script VARCHAR(64), symbol VARCHAR(32), side CHAR(4), "
        "qty DOUBLE, entry_price DOUBLE, exit_price DOUBLE, pnl DOUBLE, fees DOUBLE, "
        "opened_at DATETIME(6), closed_at DATETIME(6), INDEX(profile_id, closed_at)) "
        "ENGINE=InnoDB",
        db);
    sql("CREATE TABLE %s.aggregated_metric(id BIGINT AUTO_INCREMENT PRIMARY KEY, "
        "profile_id VARCHAR(64), script VARCHAR(64), name VARCHAR(64), value DOUBLE, "
        "ts DATETIME(6), INDEX(profile_id, name, ts)) ENGINE=InnoDB",
        db);
    sql("INSERT INTO %s.trade_performance (profile_id, script, symbol, side, qty, closed_at) "
        "VALUES ('old', 's', 'ETH', 'sell', 1, '2020-01-01'), ('old', 's', 'ETH', 'buy', 2, "
        "'2020-01-02')",
        db);
    sql("INSERT INTO %s.aggregated_metric (profile_id, script, name, value, ts) VALUES "
        "('old', 's', 'equity', 5, '2020-01-01')",
        db);

    /* Partitioning cannot be had on adopted tables: said clearly, as a permanent error. */
    struct sink_under_test t;
    const char *parted[] = {"partitioning=monthly", NULL};
    assert_int_equal(open_sink(&t, db, NULL, parted, err, sizeof(err)), 0);
    uint64_t c;
    assert_int_equal(sink_mariadb_ops.open_lane(t.state, 0, &c, err, sizeof(err)), SINK_ERROR);
    assert_non_null(strstr(err, "partition"));
    close_sink(&t);

    const char *extra[] = {"lanes=2", NULL};
    assert_int_equal(open_sink(&t, db, NULL, extra, err, sizeof(err)), 0);
    open_lanes(&t, NULL);
    int64_t now = clock_wall_ns();
    struct record recs[4] = {trade(1, "новый", now, "A"), trade(2, "новый", now, "A"),
                             metric(3, "new",
                                    "a.long.metric.name.beyond.sixty.four.bytes."
                                    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                                    7, now),
                             trade(4, "new", now, NULL)};
    set_str(recs[3].side, &recs[3].side_len, sizeof(recs[3].side), "short-and-long!!");
    assert_int_equal(write_all(&t, recs, 4, err, sizeof(err)), SINK_OK);
    assert_int_equal(write_all(&t, recs, 4, err, sizeof(err)), SINK_OK);
    assert_int_equal(sql_int("SELECT COUNT(*) FROM %s.trade_performance", db), 4);
    assert_int_equal(
        sql_int("SELECT COUNT(*) FROM %s.trade_performance WHERE profile_id = 'old'", db), 2);
    assert_int_equal(sql_int("SELECT COUNT(*) FROM %s.trade_performance WHERE side = "
                             "'short-and-long!!'",
                             db),
                     1);
    assert_int_equal(sql_int("SELECT COUNT(*) FROM %s.aggregated_metric", db), 2);
    assert_int_equal(sql_int("SELECT COUNT(*) FROM %s.trade_performance WHERE id IS NULL", db), 0);
    assert_int_equal(sql_int("SELECT COUNT(*) FROM %s.telem_schema WHERE version = %d AND note "
                             "LIKE 'adopted%%'",
                             db, MARIADB_SCHEMA_VERSION),
                     1);
    close_sink(&t);
}

static void test_newer_schema_refused(void **state)
{
    (void)state;
    char db[80], err[512];
    db_name(db, sizeof(db), "newer");
    fresh_db(db);
    struct sink_under_test t;
    assert_int_equal(open_sink(&t, db, NULL, NULL, err, sizeof(err)), 0);
    open_lanes(&t, NULL);
    close_sink(&t);
    sql("INSERT INTO %s.telem_schema (version, applied_at) VALUES (99, UTC_TIMESTAMP(6))", db);
    assert_int_equal(open_sink(&t, db, NULL, NULL, err, sizeof(err)), 0);
    uint64_t c;
    assert_int_equal(sink_mariadb_ops.open_lane(t.state, 0, &c, err, sizeof(err)), SINK_ERROR);
    assert_non_null(strstr(err, "newer"));
    close_sink(&t);
}

static void test_bad_settings_refused(void **state)
{
    (void)state;
    char db[80], err[512];
    db_name(db, sizeof(db), "rt");
    struct sink_under_test t;
    const char *unknown[] = {"colour=blue", NULL};
    assert_int_equal(open_sink(&t, db, NULL, unknown, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "colour: unknown setting"));
    const char *lanes[] = {"lanes=4", "pool_size=2", NULL};
    assert_int_equal(open_sink(&t, db, NULL, lanes, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "pool_size"));
    const char *mode[] = {"insert_mode=fast", NULL};
    assert_int_equal(open_sink(&t, db, NULL, mode, err, sizeof(err)), -EINVAL);

    uint8_t id[16] = {0};
    struct sink_setting set[] = {{"password", "x", NULL, 0}};
    struct sink_config cfg = {.name = "main",
                              .url = "mariadb://u:secret@h/db",
                              .settings = set,
                              .nsettings = 1,
                              .spool_id = id,
                              .data_dir = "/tmp"};
    void *st;
    assert_int_equal(sink_mariadb_ops.create(&cfg, &st, err, sizeof(err)), -EINVAL);
    assert_null(strstr(err, "secret"));
    assert_non_null(strstr(err, "password"));
}

static int group_setup(void **state)
{
    (void)state;
    env_socket = getenv("TELEM_TEST_MARIADB_SOCKET");
    env_user = getenv("TELEM_TEST_MARIADB_USER");
    env_password = getenv("TELEM_TEST_MARIADB_PASSWORD");
    if (!env_socket || !env_user || !env_password) {
        fprintf(stderr, "test_sink_mariadb: TELEM_TEST_MARIADB_SOCKET, _USER and _PASSWORD must "
                        "be set (start a server with scripts/test-services.sh start DIR)\n");
        return -1;
    }
    admin = mysql_init(NULL);
    if (!mysql_real_connect(admin, "localhost", env_user, env_password, NULL, 0, env_socket, 0)) {
        fprintf(stderr, "test_sink_mariadb: cannot connect to %s: %s\n", env_socket,
                mysql_error(admin));
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    const char *suffixes[] = {"rt",   "replay", "tid",  "tidp", "tidm",  "cursor", "reject",
                              "kill", "bulk",   "text", "part", "adopt", "newer"};
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        char db[80], q[160];
        db_name(db, sizeof(db), suffixes[i]);
        snprintf(q, sizeof(q), "DROP DATABASE IF EXISTS %s", db);
        mysql_query(admin, q);
    }
    mysql_close(admin);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_exact),
        cmocka_unit_test(test_replay_stores_nothing_twice),
        cmocka_unit_test(test_trade_id_retry_no_duplicate),
        cmocka_unit_test(test_cursor_per_lane),
        cmocka_unit_test(test_rejected_row_is_data_error),
        cmocka_unit_test(test_killed_connection_retries),
        cmocka_unit_test(test_unreachable_server_retries_fast),
        cmocka_unit_test(test_multirow_matches_bulk),
        cmocka_unit_test(test_partitions_and_retention),
        cmocka_unit_test(test_adopts_old_tables),
        cmocka_unit_test(test_newer_schema_refused),
        cmocka_unit_test(test_bad_settings_refused),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
