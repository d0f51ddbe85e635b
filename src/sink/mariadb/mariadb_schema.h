/*
 * mariadb_schema.h: the MariaDB store's tables, their migrations, adoption of the old system's
 * tables, and time partitioning with retention. The MariaDB sink runs the migrations when it
 * starts (unless told not to) and telemctl runs them on demand (`telemctl migrate`,
 * `telemctl retention`), both through these functions, so there is one schema.
 *
 * Tables (names are the Python system's, so existing queries and dashboards keep working):
 *   trade_performance(spool_id BINARY(16), seq BIGINT UNSIGNED, profile_id VARCHAR(64),
 *       script VARCHAR(64), symbol VARCHAR(32), side VARCHAR(16), qty, entry_price, exit_price,
 *       pnl, fees DOUBLE NULL, opened_at DATETIME(6) NULL, closed_at DATETIME(6),
 *       trade_id VARCHAR(64) NULL)
 *   aggregated_metric(spool_id, seq, profile_id, script, name VARCHAR(128), value DOUBLE,
 *       ts DATETIME(6))
 *   telem_cursor(spool_id, sink VARCHAR(80), seq, updated_at DATETIME(6))   one row per lane
 *   telem_schema(version, applied_at, note)                                 applied versions
 *   telem_trade_id(profile_id, trade_id, spool_id, seq, closed_at)          trade_id register
 * Strings are utf8mb4 with binary collation, so names compare exactly as the spool and the
 * SQLite store compare them. Times are UTC.
 *
 * Keys (version 2). Each data table has one key: PRIMARY KEY (profile_id, closed_at, spool_id,
 * seq) for trades, (profile_id, name, ts, spool_id, seq) for metrics. It finds a replayed row (a
 * record's profile and time never change, so its spool_id and seq come with the same prefix),
 * it holds a profile's rows together in time order, which is what per-profile range reads and
 * dashboards want, and it holds the time, which MariaDB wants in every unique key of a table
 * partitioned by time. Every insert is `ON DUPLICATE KEY UPDATE seq = seq` in strict mode, so a
 * replayed row is a no-op while a value the column cannot hold is an error (DESIGN.md,
 * "Contracts"). Version 1 also had a unique (profile_id, trade_id) key and secondary indexes
 * on the data tables, which took most of the server's CPU: end to end at 300 k rows/s offered,
 * version 1 stored 179 k rows/s, version 2 292 k (docs/mariadb.md, "Keys"), so it has none.
 *
 * A trade's trade_id is unique per profile through telem_trade_id (PRIMARY KEY (profile_id,
 * trade_id)), which the sink fills first in the same transaction (see sink_mariadb.c): only
 * trades that carry a trade_id pay for it.
 *
 * Partitioned (partitioning = monthly | daily, for tables telem creates): PARTITION BY RANGE
 * COLUMNS of the time, one partition per period named p<YYYYMMDD> of its start, a catch-all
 * `pold` below the first and `pmax` above the last; partitions are kept `partitions_ahead`
 * periods ahead of now. Retention drops whole partitions.
 *
 * Upgrade from version 1: each data table is rebuilt with the new key (one ALTER TABLE, which
 * copies the table: minutes for tens of millions of rows) and telem_trade_id is filled from the
 * stored trades.
 *
 * Adoption: tables of the old system's shape (an AUTO_INCREMENT id key, no spool_id, seq or
 * trade_id, side CHAR(4), name VARCHAR(64)) gain the missing columns (NULL for old rows), the
 * too-short columns are widened, and the key above is added as the unique key telem_row; their
 * id column and old rows stay. Adopted tables are never partitioned by migrate: asking for
 * partitioning when an unpartitioned table exists is an error that says so.
 */
#ifndef TELEM_SINK_MARIADB_MARIADB_SCHEMA_H
#define TELEM_SINK_MARIADB_MARIADB_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mysql.h>

/* The version mariadb_schema_migrate() brings a database to. */
#define MARIADB_SCHEMA_VERSION 2

#define MARIADB_TABLE_TRADES    "trade_performance"
#define MARIADB_TABLE_METRICS   "aggregated_metric"
#define MARIADB_TABLE_CURSORS   "telem_cursor"
#define MARIADB_TABLE_SCHEMA    "telem_schema"
#define MARIADB_TABLE_TRADE_IDS "telem_trade_id"

/* Longest sink (lane cursor) name telem_cursor holds. */
#define MARIADB_CURSOR_NAME_MAX 80

enum mariadb_partitioning {
    MARIADB_PARTITION_OFF = 0,
    MARIADB_PARTITION_MONTHLY = 1,
    MARIADB_PARTITION_DAILY = 2,
};

struct mariadb_schema_options {
    int partitioning;          /* enum mariadb_partitioning: for the tables migrate creates */
    unsigned partitions_ahead; /* periods kept ready beyond the current one (0 means 3) */
};

/* What the tables in a database look like, as the write path needs to know. */
struct mariadb_schema_shape {
    int version; /* highest version in telem_schema, 0 when none */
    bool tables; /* trade_performance, aggregated_metric, telem_cursor, telem_trade_id exist */
    bool trades_partitioned;
    bool metrics_partitioned;
    bool adopted; /* trade_performance has the old system's id column */
};

/*
 * mariadb_schema_migrate creates what is missing (tables, columns, keys, partitions) and records
 * MARIADB_SCHEMA_VERSION in telem_schema, under a named server lock so that two processes
 * migrating one database do it once. Idempotent. Borrows m: a connection to the database, with
 * no transaction open (it commits). Returns 0; -EPROTO when the database cannot be brought to
 * this program's schema (a newer version, or partitioning asked for unpartitioned tables);
 * -EIO for a server error (mysql_errno(m) tells which). err is filled on failure.
 */
int mariadb_schema_migrate(MYSQL *m, const struct mariadb_schema_options *opt, char *err,
                           size_t errlen);

/* mariadb_schema_describe fills *shape. Borrows m. Returns 0 or -EIO with err filled. */
int mariadb_schema_describe(MYSQL *m, struct mariadb_schema_shape *shape, char *err, size_t errlen);

/*
 * mariadb_schema_ensure_partitions adds partitions to the partitioned tables so that they reach
 * opt->partitions_ahead periods (opt->partitioning; monthly when it is off) past the one of
 * now_us. Unpartitioned tables are left alone. Borrows m. Returns 0 or -EIO with err filled.
 */
int mariadb_schema_ensure_partitions(MYSQL *m, const struct mariadb_schema_options *opt,
                                     int64_t now_us, char *err, size_t errlen);

/*
 * mariadb_schema_drop_before drops every partition of trade_performance and aggregated_metric
 * that holds only times before cutoff_us (microseconds since the epoch, UTC), and deletes the
 * telem_trade_id rows of trades closed before it. Borrows m. Returns the number of partitions
 * dropped (>= 0); -EOPNOTSUPP when the tables are not partitioned; -EIO on a server error. err
 * is filled on failure.
 */
int mariadb_schema_drop_before(MYSQL *m, int64_t cutoff_us, char *err, size_t errlen);

/*
 * mariadb_schema_cursor_read reads the cursor of (spool_id, name) into *seq and sets *found.
 * When there is no such row and fallback_prefix is not NULL, it takes the lowest cursor of this
 * spool among rows named fallback_prefix or starting with fallback_prefix + ":" (the lanes of
 * an earlier lane count), which is safe because every row is keyed and a replay is harmless.
 * Borrows m, spool_id (16 bytes) and the names; ends the read transaction. Returns 0, or -EIO
 * with err filled.
 */
int mariadb_schema_cursor_read(MYSQL *m, const uint8_t *spool_id, const char *name,
                               const char *fallback_prefix, uint64_t *seq, bool *found, char *err,
                               size_t errlen);

/*
 * mariadb_schema_quote appends the SQL string literal of s[0..len) ('...' with quotes and
 * backslashes escaped, valid whatever the server's sql_mode) to out, which holds at least
 * 2 * len + 3 bytes. Returns the number of bytes written, without the NUL it also writes.
 */
size_t mariadb_schema_quote(const char *s, size_t len, char *out);

#endif
