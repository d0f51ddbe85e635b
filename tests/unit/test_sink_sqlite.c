/*
 * test_sink_sqlite.c: unit tests of the SQLite sink (src/sink/sqlite): exact round trip of
 * trades and metrics read back through the sqlite3 API, NULLs for absent trade fields, replays
 * and repeated trade_ids stored once, the cursor kept across reopening, the schema version
 * table, refused rows answered SINK_ERROR without a trace, a locked database answered
 * SINK_RETRY, settings and URLs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "core/record.h"
#include "sink/sink.h"
#include "sink/sqlite/sqlite_schema.h"

static const uint8_t test_spool_id[SPOOL_ID_SIZE] = {0xde, 0xad, 0xbe, 0xef, 1, 2,  3,  4,
                                                     5,    6,    7,    8,    9, 10, 11, 12};

struct fixture {
    char dir[64];
    char db_path[128];
    void *state;
};

static void remove_tree(const char *dir)
{
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static int open_sink(struct fixture *f, const char *name, const struct sink_setting *settings,
                     size_t nsettings)
{
    struct sink_config cfg = {
        .name = name,
        .url = "sqlite:telem.db",
        .settings = settings,
        .nsettings = nsettings,
        .spool_id = test_spool_id,
        .data_dir = f->dir,
    };
    char err[256] = "";
    int rc = sink_sqlite_ops.create(&cfg, &f->state, err, sizeof(err));
    if (rc < 0)
        print_error("create: %s\n", err);
    return rc;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_sink_sqlite.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db_path, sizeof(f->db_path), "%s/telem.db", f->dir);
    assert_int_equal(open_sink(f, "main", NULL, 0), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    sink_sqlite_ops.destroy(f->state);
    remove_tree(f->dir);
    free(f);
    return 0;
}

static void set_text(char *dst, uint8_t *len, const char *src)
{
    *len = (uint8_t)strlen(src);
    memcpy(dst, src, *len + 1u);
}

static struct record make_trade(uint64_t seq, const char *profile, const char *trade_id)
{
    struct record r;
    memset(&r, 0, sizeof(r));
    r.seq = seq;
    r.kind = RECORD_TRADE;
    r.ts_ns = 1700000000123456789LL + (int64_t)seq;
    set_text(r.profile, &r.profile_len, profile);
    if (trade_id)
        set_text(r.trade_id, &r.trade_id_len, trade_id);
    return r;
}

static struct record make_metric(uint64_t seq, const char *profile, const char *name, double v)
{
    struct record r;
    memset(&r, 0, sizeof(r));
    r.seq = seq;
    r.kind = RECORD_METRIC;
    r.ts_ns = 1700000000000000000LL + (int64_t)seq * 1000;
    set_text(r.profile, &r.profile_len, profile);
    set_text(r.name, &r.name_len, name);
    r.value = v;
    return r;
}

static sqlite3 *open_db(const struct fixture *f)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->db_path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    return db;
}

static int64_t query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static uint64_t open_lane(struct fixture *f)
{
    uint64_t cursor = 99;
    char err[256] = "";
    enum sink_result r = sink_sqlite_ops.open_lane(f->state, 0, &cursor, err, sizeof(err));
    if (r != SINK_OK)
        print_error("open_lane: %s\n", err);
    assert_int_equal(r, SINK_OK);
    return cursor;
}

static enum sink_result write_batch(struct fixture *f, const struct record *recs, size_t n,
                                    uint64_t cursor)
{
    char err[256] = "";
    enum sink_result r = sink_sqlite_ops.write(f->state, 0, recs, n, cursor, err, sizeof(err));
    if (r != SINK_OK)
        print_message("write: %s\n", err);
    return r;
}

static void test_round_trip(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(sink_sqlite_ops.lanes(f->state), 1);
    assert_int_equal(open_lane(f), 0);

    struct record recs[4];
    recs[0] = make_trade(11, "alpha", "T-1");
    set_text(recs[0].script, &recs[0].script_len, "exec");
    set_text(recs[0].symbol, &recs[0].symbol_len, "BTCUSDT");
    set_text(recs[0].side, &recs[0].side_len, "sell");
    recs[0].present = REC_HAS_QTY | REC_HAS_ENTRY_PRICE | REC_HAS_EXIT_PRICE | REC_HAS_PNL |
                      REC_HAS_FEES | REC_HAS_OPENED_AT;
    recs[0].qty = 0.1;
    recs[0].entry_price = 43210.123456789;
    recs[0].exit_price = -1e-300;
    recs[0].pnl = 1.0 / 3.0;
    recs[0].fees = 1e300;
    recs[0].opened_at_ns = -1501; /* before 1970: floors to -2 us */
    recs[0].ts_ns = 1700000000123456789LL;
    recs[1] = make_trade(12, "beta", NULL); /* nothing optional */
    recs[1].ts_ns = -1000;
    recs[2] = make_metric(13, "alpha", "strategy.equity", 10000.125);
    set_text(recs[2].script, &recs[2].script_len, "risk");
    recs[3] = make_metric(14, "beta", "latency", -0.0);
    recs[3].ts_ns = 999;
    assert_int_equal(write_batch(f, recs, 4, 20), SINK_OK);

    sqlite3 *db = open_db(f);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT " SINK_SQLITE_TRADE_COLUMNS
                                        " FROM " SINK_SQLITE_TABLE_TRADES " ORDER BY seq",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_bytes(st, SINK_SQLITE_TRADE_COL_SPOOL_ID), SPOOL_ID_SIZE);
    assert_memory_equal(sqlite3_column_blob(st, SINK_SQLITE_TRADE_COL_SPOOL_ID), test_spool_id,
                        SPOOL_ID_SIZE);
    assert_int_equal(sqlite3_column_int64(st, SINK_SQLITE_TRADE_COL_SEQ), 11);
    assert_string_equal(sqlite3_column_text(st, SINK_SQLITE_TRADE_COL_PROFILE), "alpha");
    assert_string_equal(sqlite3_column_text(st, SINK_SQLITE_TRADE_COL_SCRIPT), "exec");
    assert_string_equal(sqlite3_column_text(st, SINK_SQLITE_TRADE_COL_SYMBOL), "BTCUSDT");
    assert_string_equal(sqlite3_column_text(st, SINK_SQLITE_TRADE_COL_SIDE), "sell");
    assert_true(sqlite3_column_double(st, SINK_SQLITE_TRADE_COL_QTY) == 0.1);
    assert_true(sqlite3_column_double(st, SINK_SQLITE_TRADE_COL_ENTRY_PRICE) == 43210.123456789);
    assert_true(sqlite3_column_double(st, SINK_SQLITE_TRADE_COL_EXIT_PRICE) == -1e-300);
    assert_true(sqlite3_column_double(st, SINK_SQLITE_TRADE_COL_PNL) == 1.0 / 3.0);
    assert_true(sqlite3_column_double(st, SINK_SQLITE_TRADE_COL_FEES) == 1e300);
    assert_int_equal(sqlite3_column_int64(st, SINK_SQLITE_TRADE_COL_OPENED_AT), -2);
    assert_int_equal(sqlite3_column_int64(st, SINK_SQLITE_TRADE_COL_CLOSED_AT), 1700000000123456LL);
    assert_string_equal(sqlite3_column_text(st, SINK_SQLITE_TRADE_COL_TRADE_ID), "T-1");

    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int64(st, SINK_SQLITE_TRADE_COL_SEQ), 12);
    assert_string_equal(sqlite3_column_text(st, SINK_SQLITE_TRADE_COL_SCRIPT), "");
    assert_string_equal(sqlite3_column_text(st, SINK_SQLITE_TRADE_COL_SYMBOL), "");
    assert_string_equal(sqlite3_column_text(st, SINK_SQLITE_TRADE_COL_SIDE), "");
    for (int c = SINK_SQLITE_TRADE_COL_QTY; c <= SINK_SQLITE_TRADE_COL_OPENED_AT; c++)
        assert_int_equal(sqlite3_column_type(st, c), SQLITE_NULL);
    assert_int_equal(sqlite3_column_type(st, SINK_SQLITE_TRADE_COL_TRADE_ID), SQLITE_NULL);
    assert_int_equal(sqlite3_column_int64(st, SINK_SQLITE_TRADE_COL_CLOSED_AT), -1);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);

    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT " SINK_SQLITE_METRIC_COLUMNS
                                        " FROM " SINK_SQLITE_TABLE_METRICS " ORDER BY seq",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int64(st, SINK_SQLITE_METRIC_COL_SEQ), 13);
    assert_string_equal(sqlite3_column_text(st, SINK_SQLITE_METRIC_COL_PROFILE), "alpha");
    assert_string_equal(sqlite3_column_text(st, SINK_SQLITE_METRIC_COL_SCRIPT), "risk");
    assert_string_equal(sqlite3_column_text(st, SINK_SQLITE_METRIC_COL_NAME), "strategy.equity");
    assert_true(sqlite3_column_double(st, SINK_SQLITE_METRIC_COL_VALUE) == 10000.125);
    assert_int_equal(sqlite3_column_int64(st, SINK_SQLITE_METRIC_COL_TS),
                     1700000000000000000LL / 1000 + 13);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int64(st, SINK_SQLITE_METRIC_COL_SEQ), 14);
    assert_string_equal(sqlite3_column_text(st, SINK_SQLITE_METRIC_COL_SCRIPT), "");
    assert_true(sqlite3_column_double(st, SINK_SQLITE_METRIC_COL_VALUE) == 0.0);
    assert_int_equal(sqlite3_column_int64(st, SINK_SQLITE_METRIC_COL_TS), 0);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);

    assert_int_equal(query_int(db, "SELECT seq FROM telem_cursor WHERE sink = 'main'"), 20);
    assert_int_equal(query_int(db, "SELECT count(*) FROM telem_cursor"), 1);
    sqlite3_close(db);
}

/* Enough rows of each kind to go through the multi-row statements and the remainder. */
static void test_many_rows(void **state)
{
    struct fixture *f = *state;
    open_lane(f);
    enum { N = 1234 };
    struct record *recs = calloc(N, sizeof(*recs));
    for (unsigned i = 0; i < N; i++) {
        char profile[16];
        snprintf(profile, sizeof(profile), "p%u", (i * 7) % 13);
        if (i % 3 == 0) {
            char tid[16];
            snprintf(tid, sizeof(tid), "t%u", i);
            recs[i] = make_trade(i + 1, profile, i % 2 ? tid : NULL);
            recs[i].present = REC_HAS_PNL;
            recs[i].pnl = i;
        } else {
            recs[i] = make_metric(i + 1, profile, "m", i * 0.5);
        }
    }
    assert_int_equal(write_batch(f, recs, N, N), SINK_OK);
    sqlite3 *db = open_db(f);
    assert_int_equal(query_int(db, "SELECT count(*) FROM trade_performance"), (N + 2) / 3);
    assert_int_equal(query_int(db, "SELECT count(*) FROM aggregated_metric"), N - (N + 2) / 3);
    assert_int_equal(query_int(db, "SELECT sum(seq) FROM trade_performance") +
                         query_int(db, "SELECT sum(seq) FROM aggregated_metric"),
                     (int64_t)N * (N + 1) / 2);
    /* Every row carries its own values, whatever statement it went through. */
    assert_int_equal(query_int(db, "SELECT count(*) FROM trade_performance WHERE pnl <> seq - 1"),
                     0);
    assert_int_equal(
        query_int(db, "SELECT count(*) FROM aggregated_metric WHERE value <> (seq - 1) * 0.5"), 0);
    assert_int_equal(query_int(db, "SELECT count(*) FROM trade_performance WHERE trade_id IS NOT "
                                   "NULL AND trade_id <> 't' || (seq - 1)"),
                     0);
    sqlite3_close(db);
    free(recs);
}

static void test_replay_stores_nothing_twice(void **state)
{
    struct fixture *f = *state;
    open_lane(f);
    struct record recs[3] = {
        make_trade(1, "alpha", "X"),
        make_trade(2, "alpha", NULL),
        make_metric(3, "alpha", "m", 1.5),
    };
    assert_int_equal(write_batch(f, recs, 3, 3), SINK_OK);
    assert_int_equal(write_batch(f, recs, 3, 3), SINK_OK);
    sqlite3 *db = open_db(f);
    assert_int_equal(query_int(db, "SELECT count(*) FROM trade_performance"), 2);
    assert_int_equal(query_int(db, "SELECT count(*) FROM aggregated_metric"), 1);
    assert_int_equal(query_int(db, "SELECT seq FROM telem_cursor"), 3);
    sqlite3_close(db);
}

static void test_trade_id_duplicate_ignored(void **state)
{
    struct fixture *f = *state;
    open_lane(f);
    struct record a[2] = {make_trade(1, "alpha", "T-9"), make_trade(2, "alpha", "T-9")};
    a[0].present = a[1].present = REC_HAS_PNL;
    a[0].pnl = 1;
    a[1].pnl = 2;
    assert_int_equal(write_batch(f, a, 2, 2), SINK_OK);
    /* A client's retry stored under new sequence numbers, and the same id in another profile. */
    struct record b[2] = {make_trade(7, "alpha", "T-9"), make_trade(8, "beta", "T-9")};
    assert_int_equal(write_batch(f, b, 2, 8), SINK_OK);
    sqlite3 *db = open_db(f);
    assert_int_equal(query_int(db, "SELECT count(*) FROM trade_performance"), 2);
    assert_int_equal(query_int(db, "SELECT seq FROM trade_performance WHERE profile_id = 'alpha'"),
                     1);
    assert_int_equal(query_int(db, "SELECT pnl FROM trade_performance WHERE profile_id = 'alpha'"),
                     1);
    assert_int_equal(query_int(db, "SELECT seq FROM trade_performance WHERE profile_id = 'beta'"),
                     8);
    assert_int_equal(query_int(db, "SELECT seq FROM telem_cursor"), 8);
    sqlite3_close(db);
}

static void test_cursor_after_reopen(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(open_lane(f), 0);
    assert_int_equal(write_batch(f, NULL, 0, 41), SINK_OK);
    struct record r = make_metric(42, "alpha", "m", 1);
    assert_int_equal(write_batch(f, &r, 1, 42), SINK_OK);
    sink_sqlite_ops.destroy(f->state);

    assert_int_equal(open_sink(f, "main", NULL, 0), 0);
    assert_int_equal(open_lane(f), 42);
    sink_sqlite_ops.destroy(f->state);

    /* Another sink in the same file has its own cursor. */
    assert_int_equal(open_sink(f, "other", NULL, 0), 0);
    assert_int_equal(open_lane(f), 0);
}

static void test_schema_version(void **state)
{
    struct fixture *f = *state;
    open_lane(f);
    sqlite3 *db = open_db(f);
    assert_int_equal(query_int(db, "SELECT version FROM telem_schema"), SINK_SQLITE_SCHEMA_VERSION);
    assert_int_equal(query_int(db, "SELECT count(*) FROM telem_schema"), 1);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal(sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    char err[256] = "";
    int version = -1;
    assert_int_equal(sqlite_schema_version(db, &version, err, sizeof(err)), 0);
    assert_int_equal(version, SINK_SQLITE_SCHEMA_VERSION);
    /* Migrating again is a no-op. */
    assert_int_equal(sqlite_schema_migrate(db, err, sizeof(err)), 0);
    assert_int_equal(query_int(db, "SELECT count(*) FROM telem_schema"), 1);
    assert_int_equal(query_int(db, "SELECT count(*) FROM sqlite_master WHERE name IN "
                                   "('trade_performance', 'aggregated_metric', 'telem_cursor', "
                                   "'trade_performance_trade_id', "
                                   "'trade_performance_profile_closed', "
                                   "'aggregated_metric_profile_name_ts')"),
                     6);

    /* A database from a newer telem is refused, and the sink says so. */
    assert_int_equal(sqlite3_exec(db, "UPDATE telem_schema SET version = 99", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite_schema_migrate(db, err, sizeof(err)), -EPROTO);
    assert_non_null(strstr(err, "99"));
    sqlite3_close(db);
    sink_sqlite_ops.destroy(f->state);
    assert_int_equal(open_sink(f, "main", NULL, 0), 0);
    uint64_t cursor = 0;
    err[0] = '\0';
    assert_int_equal(sink_sqlite_ops.open_lane(f->state, 0, &cursor, err, sizeof(err)), SINK_ERROR);
    assert_non_null(strstr(err, "newer"));
}

static void test_fresh_database_migrates(void **state)
{
    (void)state;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    char err[256] = "";
    int version = -1;
    assert_int_equal(sqlite_schema_version(db, &version, err, sizeof(err)), 0);
    assert_int_equal(version, 0);
    assert_int_equal(sqlite_schema_migrate(db, err, sizeof(err)), 0);
    assert_int_equal(sqlite_schema_version(db, &version, err, sizeof(err)), 0);
    assert_int_equal(version, SINK_SQLITE_SCHEMA_VERSION);
    uint64_t seq = 5;
    assert_int_equal(sqlite_schema_cursor_read(db, test_spool_id, "main", &seq, err, sizeof(err)),
                     0);
    assert_int_equal(seq, 0);
    sqlite3_close(db);
}

static void test_refused_row_is_error_and_rolled_back(void **state)
{
    struct fixture *f = *state;
    open_lane(f);
    /* SQLite stores a NaN as NULL, which value NOT NULL refuses. */
    struct record recs[3] = {
        make_metric(1, "alpha", "m", 1),
        make_metric(2, "alpha", "m", NAN),
        make_trade(3, "alpha", NULL),
    };
    char err[256] = "";
    assert_int_equal(sink_sqlite_ops.write(f->state, 0, recs, 3, 3, err, sizeof(err)), SINK_ERROR);
    assert_non_null(strstr(err, "NOT NULL"));
    sqlite3 *db = open_db(f);
    assert_int_equal(query_int(db, "SELECT count(*) FROM aggregated_metric"), 0);
    assert_int_equal(query_int(db, "SELECT count(*) FROM trade_performance"), 0);
    assert_int_equal(query_int(db, "SELECT count(*) FROM telem_cursor"), 0);
    sqlite3_close(db);
    /* The connection is still good for the rest. */
    struct record good[2] = {recs[0], recs[2]};
    assert_int_equal(write_batch(f, good, 2, 3), SINK_OK);
    db = open_db(f);
    assert_int_equal(query_int(db, "SELECT count(*) FROM aggregated_metric"), 1);
    assert_int_equal(query_int(db, "SELECT seq FROM telem_cursor"), 3);
    sqlite3_close(db);
}

static void test_locked_database_is_retry(void **state)
{
    struct fixture *f = *state;
    sink_sqlite_ops.destroy(f->state);
    struct sink_setting set[] = {{"busy_timeout_ms", "20", NULL, 0}};
    assert_int_equal(open_sink(f, "main", set, 1), 0);
    open_lane(f);
    sqlite3 *db = open_db(f);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    struct record r = make_metric(1, "alpha", "m", 1);
    char err[256] = "";
    assert_int_equal(sink_sqlite_ops.write(f->state, 0, &r, 1, 1, err, sizeof(err)), SINK_RETRY);
    assert_non_null(strstr(err, "locked"));
    assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    uint64_t cursor = 9;
    assert_int_equal(sink_sqlite_ops.open_lane(f->state, 0, &cursor, err, sizeof(err)), SINK_OK);
    assert_int_equal(cursor, 0);
    assert_int_equal(write_batch(f, &r, 1, 1), SINK_OK);
    assert_int_equal(query_int(db, "SELECT count(*) FROM aggregated_metric"), 1);
    sqlite3_close(db);
}

static void test_unopenable_file_is_retry(void **state)
{
    struct fixture *f = *state;
    sink_sqlite_ops.destroy(f->state);
    struct sink_config cfg = {
        .name = "main",
        .url = "sqlite:no/such/folder/x.db",
        .spool_id = test_spool_id,
        .data_dir = f->dir,
    };
    char err[256] = "";
    assert_int_equal(sink_sqlite_ops.create(&cfg, &f->state, err, sizeof(err)), 0);
    uint64_t cursor = 0;
    assert_int_equal(sink_sqlite_ops.open_lane(f->state, 0, &cursor, err, sizeof(err)), SINK_RETRY);
    assert_non_null(strstr(err, "no/such/folder/x.db"));
    struct record r = make_metric(1, "alpha", "m", 1);
    assert_int_equal(sink_sqlite_ops.write(f->state, 0, &r, 1, 1, err, sizeof(err)), SINK_RETRY);
}

static void test_settings(void **state)
{
    struct fixture *f = *state;
    sink_sqlite_ops.destroy(f->state);
    f->state = NULL;
    struct sink_config cfg = {
        .name = "main",
        .url = "sqlite:telem.db",
        .spool_id = test_spool_id,
        .data_dir = f->dir,
    };
    char err[256] = "";

    struct sink_setting good[] = {
        {"synchronous", "normal", NULL, 0},     {"busy_timeout_ms", "100", NULL, 0},
        {"cache_size_kb", "1024", NULL, 0},     {"mmap_size", "0", NULL, 0},
        {"wal_autocheckpoint", "500", NULL, 0},
    };
    cfg.settings = good;
    cfg.nsettings = 5;
    assert_int_equal(sink_sqlite_ops.create(&cfg, &f->state, err, sizeof(err)), 0);
    open_lane(f);
    sink_sqlite_ops.destroy(f->state);
    f->state = NULL;

    struct sink_setting unknown[] = {{"pool_size", "4", "/etc/telemd.ini", 12}};
    cfg.settings = unknown;
    cfg.nsettings = 1;
    assert_true(sink_sqlite_ops.create(&cfg, &f->state, err, sizeof(err)) < 0);
    assert_string_equal(err, "/etc/telemd.ini:12: pool_size: unknown setting");

    struct sink_setting bad[] = {{"synchronous", "off", NULL, 0}};
    cfg.settings = bad;
    assert_int_equal(sink_sqlite_ops.create(&cfg, &f->state, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "synchronous"));

    cfg.settings = NULL;
    cfg.nsettings = 0;
    cfg.url = "sqlite:";
    assert_int_equal(sink_sqlite_ops.create(&cfg, &f->state, err, sizeof(err)), -EINVAL);
    cfg.url = "sqlite://";
    assert_int_equal(sink_sqlite_ops.create(&cfg, &f->state, err, sizeof(err)), -EINVAL);
    f->state = NULL;
}

static void test_url_forms(void **state)
{
    struct fixture *f = *state;
    sink_sqlite_ops.destroy(f->state);
    f->state = NULL;
    char url[192], err[256] = "";
    /* sqlite://ABSOLUTE and sqlite:RELATIVE (under the data folder) name the same file. */
    snprintf(url, sizeof(url), "sqlite://%s", f->db_path);
    struct sink_config cfg = {
        .name = "main",
        .url = url,
        .spool_id = test_spool_id,
        .data_dir = "/nonexistent",
    };
    assert_int_equal(sink_sqlite_ops.create(&cfg, &f->state, err, sizeof(err)), 0);
    open_lane(f);
    assert_int_equal(write_batch(f, NULL, 0, 5), SINK_OK);
    sink_sqlite_ops.destroy(f->state);
    f->state = NULL;
    assert_int_equal(open_sink(f, "main", NULL, 0), 0);
    assert_int_equal(open_lane(f), 5);
    assert_int_equal(access(f->db_path, F_OK), 0);
}

static void test_metrics_output(void **state)
{
    struct fixture *f = *state;
    open_lane(f);
    struct record r = make_metric(1, "alpha", "m", 1);
    assert_int_equal(write_batch(f, &r, 1, 1), SINK_OK);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    struct sink_metrics_out m = {.out = out, .sink_name = "main"};
    sink_sqlite_ops.metrics(f->state, &m);
    fclose(out);
    assert_non_null(strstr(text, "telem_sink_sqlite_file_bytes{sink=\"main\"} "));
    assert_non_null(
        strstr(text, "telem_sink_sqlite_rows_total{sink=\"main\",table=\"aggregated_metric\"} 1"));
    free(text);
}

static void test_registry(void **state)
{
    (void)state;
    assert_ptr_equal(sink_ops_for_url("sqlite:telem.db"), &sink_sqlite_ops);
    assert_ptr_equal(sink_ops_for_url("SQLite:///var/lib/telem.db"), &sink_sqlite_ops);
    assert_null(sink_ops_for_url("sqlitex:telem.db"));
    assert_null(sink_ops_for_url("sqlite"));
    assert_null(sink_ops_for_url("postgres://x"));
    assert_null(sink_ops_for_url(""));
    assert_null(sink_ops_for_url(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_stores_nothing_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trade_id_duplicate_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cursor_after_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_version, setup, teardown),
        cmocka_unit_test(test_fresh_database_migrates),
        cmocka_unit_test_setup_teardown(test_refused_row_is_error_and_rolled_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locked_database_is_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unopenable_file_is_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_url_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_output, setup, teardown),
        cmocka_unit_test(test_registry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
