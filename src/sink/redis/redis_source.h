/*
 * redis_source.h: an SQL store (SQLite file or MariaDB database) read back as a stream of
 * records, for rebuilding Redis's live state. It reads the tables the SQL sinks write
 * (trade_performance, aggregated_metric, telem_cursor: see src/sink/sqlite/sqlite_schema.h; the
 * MariaDB store has the same column names with DATETIME(6) times) and merges trades and metrics
 * into one stream in sequence order, exactly as the spool handed them to the sinks.
 *
 * URLs: "sqlite:/path/telem.db", "sqlite:///path/telem.db", a bare file path (relative paths are
 * taken from data_dir), or "mariadb://user[:password]@host[:port]/db[?socket=/path]" (also
 * "mysql://"). The password may also come separately (options.password), which wins.
 *
 * Doubles are read through the binary protocol (sqlite3_column_double, MariaDB prepared
 * statements), never through text, so a rebuilt total is the same double as the live one.
 */
#ifndef TELEM_SINK_REDIS_SOURCE_H
#define TELEM_SINK_REDIS_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/record.h"

#define REDIS_SOURCE_SPOOL_ID_SIZE 16

struct redis_source_options {
    const char *url;      /* borrowed */
    const char *password; /* MariaDB only; NULL: the URL's, if any */
    const char *data_dir; /* base of relative SQLite paths; NULL: the working folder */
    unsigned connect_timeout_ms;
};

struct redis_source;

/*
 * redis_source_open opens the store read-only (SQLite) or connects (MariaDB). Returns NULL with
 * err filled: "sqlite /x/telem.db: unable to open database file", "mariadb ...: Access denied".
 * Caller frees with redis_source_close.
 */
struct redis_source *redis_source_open(const struct redis_source_options *opt, char *err,
                                       size_t errlen);

/* redis_source_close ends any scan and closes the store. Accepts NULL. */
void redis_source_close(struct redis_source *src);

/*
 * redis_source_cursor reads how far the store has every row of spool_id: the lowest of its
 * cursor rows for that spool (one per SQL sink lane), 0 when it has none. Rows are named NAME
 * or NAME:L/N (lane L of N); of one sink NAME only the lane layout updated last counts, so the
 * frozen rows a change of lane count leaves behind do not hold the cursor back. (Rows of a sink
 * that no longer exists do: delete them.) Returns 0 or a negative errno with err filled.
 */
int redis_source_cursor(struct redis_source *src, const uint8_t *spool_id, uint64_t *cursor,
                        char *err, size_t errlen);

/*
 * redis_source_spools lists the spool ids the store has cursors for, into ids[0..cap) and *n
 * (the total, which may exceed cap). Returns 0 or a negative errno with err filled.
 */
int redis_source_spools(struct redis_source *src, uint8_t (*ids)[REDIS_SOURCE_SPOOL_ID_SIZE],
                        size_t cap, size_t *n, char *err, size_t errlen);

/*
 * redis_source_scan starts reading the rows of spool_id with seq <= upto, trades and metrics
 * merged in seq order. Returns 0 or a negative errno with err filled.
 */
int redis_source_scan(struct redis_source *src, const uint8_t *spool_id, uint64_t upto, char *err,
                      size_t errlen);

/*
 * redis_source_next fills *out with the next row of the scan (times in nanoseconds, as the spool
 * had them, from the stored microseconds). Returns 1, 0 at the end, or a negative errno with err
 * filled (-EINVAL for a row that cannot be a record, e.g. an overlong profile).
 */
int redis_source_next(struct redis_source *src, struct record *out, char *err, size_t errlen);

#endif
