/*
 * sqlite_schema.h: the SQLite store's tables, their published names and columns, and the
 * migrations that create them. The SQLite sink (sink_sqlite.c) writes through it and telemctl
 * (schema migration, queries) reads through it, so both agree on one schema.
 *
 * The schema is versioned: the table telem_schema holds one row, the version last applied.
 * sqlite_schema_migrate() applies the missing steps of an ordered list inside one
 * BEGIN IMMEDIATE transaction, so two processes migrating the same file at once do it once.
 *
 * Columns (times are integer microseconds since the Unix epoch, UTC; spool_id is 16 bytes):
 *   trade_performance(spool_id, seq, profile_id, script, symbol, side, qty, entry_price,
 *                     exit_price, pnl, fees, opened_at, closed_at, trade_id)
 *   aggregated_metric(spool_id, seq, profile_id, script, name, value, ts)
 *   telem_cursor(spool_id, sink, seq, updated_at)
 * Absent optional trade values (qty ... fees, opened_at, trade_id) are NULL; absent script,
 * symbol and side are ''.
 */
#ifndef TELEM_SINK_SQLITE_SQLITE_SCHEMA_H
#define TELEM_SINK_SQLITE_SQLITE_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

/* The version sqlite_schema_migrate() brings a database to. */
#define SINK_SQLITE_SCHEMA_VERSION 1

/* Published table names (the names of the Python system, so old queries keep working). */
#define SINK_SQLITE_TABLE_TRADES  "trade_performance"
#define SINK_SQLITE_TABLE_METRICS "aggregated_metric"
#define SINK_SQLITE_TABLE_CURSORS "telem_cursor"
#define SINK_SQLITE_TABLE_SCHEMA  "telem_schema"

/* Column lists in table order; a SELECT of these gives the positions of the enums below. */
#define SINK_SQLITE_TRADE_COLUMNS                                                                  \
    "spool_id, seq, profile_id, script, symbol, side, qty, entry_price, exit_price, pnl, fees, "   \
    "opened_at, closed_at, trade_id"
#define SINK_SQLITE_METRIC_COLUMNS "spool_id, seq, profile_id, script, name, value, ts"
#define SINK_SQLITE_CURSOR_COLUMNS "spool_id, sink, seq, updated_at"

enum sink_sqlite_trade_column {
    SINK_SQLITE_TRADE_COL_SPOOL_ID = 0,
    SINK_SQLITE_TRADE_COL_SEQ,
    SINK_SQLITE_TRADE_COL_PROFILE,
    SINK_SQLITE_TRADE_COL_SCRIPT,
    SINK_SQLITE_TRADE_COL_SYMBOL,
    SINK_SQLITE_TRADE_COL_SIDE,
    SINK_SQLITE_TRADE_COL_QTY,
    SINK_SQLITE_TRADE_COL_ENTRY_PRICE,
    SINK_SQLITE_TRADE_COL_EXIT_PRICE,
    SINK_SQLITE_TRADE_COL_PNL,
    SINK_SQLITE_TRADE_COL_FEES,
    SINK_SQLITE_TRADE_COL_OPENED_AT,
    SINK_SQLITE_TRADE_COL_CLOSED_AT,
    SINK_SQLITE_TRADE_COL_TRADE_ID,
    SINK_SQLITE_TRADE_NCOLUMNS,
};

enum sink_sqlite_metric_column {
    SINK_SQLITE_METRIC_COL_SPOOL_ID = 0,
    SINK_SQLITE_METRIC_COL_SEQ,
    SINK_SQLITE_METRIC_COL_PROFILE,
    SINK_SQLITE_METRIC_COL_SCRIPT,
    SINK_SQLITE_METRIC_COL_NAME,
    SINK_SQLITE_METRIC_COL_VALUE,
    SINK_SQLITE_METRIC_COL_TS,
    SINK_SQLITE_METRIC_NCOLUMNS,
};

/*
 * sqlite_schema_version reads the version recorded in telem_schema into *version (0 when the
 * database has no schema yet). Borrows db. Returns 0, or -EIO with err filled.
 */
int sqlite_schema_version(sqlite3 *db, int *version, char *err, size_t errlen);

/*
 * sqlite_schema_migrate creates the tables and indexes that are missing and records the new
 * version, all in one transaction. Borrows db (no transaction may be open on it). Returns 0;
 * -EBUSY when the database stayed locked past its busy timeout; -EPROTO when the database's
 * schema is newer than this program knows; -EIO for anything else. err is filled on failure.
 */
int sqlite_schema_migrate(sqlite3 *db, char *err, size_t errlen);

/*
 * sqlite_schema_cursor_read reads the cursor stored for (spool_id, name) into *seq, 0 when there
 * is none. Borrows db, spool_id (16 bytes) and name. Returns 0, -EBUSY, or -EIO with err filled.
 */
int sqlite_schema_cursor_read(sqlite3 *db, const uint8_t *spool_id, const char *name, uint64_t *seq,
                              char *err, size_t errlen);

#endif
