/*
 * sqlite_schema.c: the SQLite store's schema as an ordered list of migrations, and the reads
 * the sink and telemctl share (schema version, a sink's cursor). A migration is applied once:
 * the version row and the steps it covers commit in the same transaction.
 */
#include "sink/sqlite/sqlite_schema.h"

#include <errno.h>
#include <stdio.h>

/*
 * Each step takes the schema from version - 1 to version. Steps are never edited once
 * released; a change is a new step at the end.
 *
 * The row tables are ordinary rowid tables, so PRIMARY KEY (spool_id, seq) is a unique index
 * beside them. Measured against WITHOUT ROWID with 5000-row batches (half trades, half
 * metrics, 100 profiles): the same bytes written, and 2% (rows grouped by profile, as clients
 * send them) to 10% (every row another profile) fewer instructions per row, because the
 * secondary indexes then carry an 8-byte rowid instead of the 16-byte spool_id and the seq.
 */
static const struct sqlite_migration {
    int version;
    const char *sql;
} sqlite_migrations[] = {
    {1, "CREATE TABLE IF NOT EXISTS " SINK_SQLITE_TABLE_TRADES " ("
        " spool_id BLOB NOT NULL,"
        " seq INTEGER NOT NULL,"
        " profile_id TEXT NOT NULL,"
        " script TEXT NOT NULL DEFAULT '',"
        " symbol TEXT NOT NULL DEFAULT '',"
        " side TEXT NOT NULL DEFAULT '',"
        " qty REAL,"
        " entry_price REAL,"
        " exit_price REAL,"
        " pnl REAL,"
        " fees REAL,"
        " opened_at INTEGER,"
        " closed_at INTEGER NOT NULL,"
        " trade_id TEXT,"
        " PRIMARY KEY (spool_id, seq)"
        ");"
        "CREATE UNIQUE INDEX IF NOT EXISTS trade_performance_trade_id"
        " ON " SINK_SQLITE_TABLE_TRADES " (profile_id, trade_id) WHERE trade_id IS NOT NULL;"
        "CREATE INDEX IF NOT EXISTS trade_performance_profile_closed"
        " ON " SINK_SQLITE_TABLE_TRADES " (profile_id, closed_at);"
        "CREATE TABLE IF NOT EXISTS " SINK_SQLITE_TABLE_METRICS " ("
        " spool_id BLOB NOT NULL,"
        " seq INTEGER NOT NULL,"
        " profile_id TEXT NOT NULL,"
        " script TEXT NOT NULL DEFAULT '',"
        " name TEXT NOT NULL,"
        " value REAL NOT NULL,"
        " ts INTEGER NOT NULL,"
        " PRIMARY KEY (spool_id, seq)"
        ");"
        "CREATE INDEX IF NOT EXISTS aggregated_metric_profile_name_ts"
        " ON " SINK_SQLITE_TABLE_METRICS " (profile_id, name, ts);"
        "CREATE TABLE IF NOT EXISTS " SINK_SQLITE_TABLE_CURSORS " ("
        " spool_id BLOB NOT NULL,"
        " sink TEXT NOT NULL,"
        " seq INTEGER NOT NULL,"
        " updated_at INTEGER,"
        " PRIMARY KEY (spool_id, sink)"
        ");"},
};

#define SINK_SQLITE_MIGRATIONS (sizeof(sqlite_migrations) / sizeof(sqlite_migrations[0]))

_Static_assert(SINK_SQLITE_MIGRATIONS == SINK_SQLITE_SCHEMA_VERSION,
               "SINK_SQLITE_SCHEMA_VERSION must name the last migration");

/* sqlite_schema_errno maps an SQLite result code to the errno this module returns. */
static int sqlite_schema_errno(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    default:
        return -EIO;
    }
}

static int sqlite_schema_fail(sqlite3 *db, int rc, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "sqlite: %s: %s", what, sqlite3_errmsg(db));
    return sqlite_schema_errno(rc);
}

int sqlite_schema_version(sqlite3 *db, int *version, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    *version = 0;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = "
                                "'" SINK_SQLITE_TABLE_SCHEMA "'",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sqlite_schema_fail(db, rc, "reading the schema version", err, errlen);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    st = NULL;
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW)
        return sqlite_schema_fail(db, rc, "reading the schema version", err, errlen);

    rc =
        sqlite3_prepare_v2(db, "SELECT max(version) FROM " SINK_SQLITE_TABLE_SCHEMA, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sqlite_schema_fail(db, rc, "reading the schema version", err, errlen);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return sqlite_schema_fail(db, rc, "reading the schema version", err, errlen);
    return 0;
}

int sqlite_schema_migrate(sqlite3 *db, char *err, size_t errlen)
{
    int version = 0;
    int rc = sqlite_schema_version(db, &version, err, errlen);
    if (rc < 0)
        return rc;
    if (version == SINK_SQLITE_SCHEMA_VERSION)
        return 0;

    /* Read again under the write lock: another process may have migrated meanwhile. */
    int src = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (src != SQLITE_OK)
        return sqlite_schema_fail(db, src, "BEGIN", err, errlen);
    src = sqlite3_exec(
        db, "CREATE TABLE IF NOT EXISTS " SINK_SQLITE_TABLE_SCHEMA " (version INTEGER NOT NULL)",
        NULL, NULL, NULL);
    if (src != SQLITE_OK) {
        rc = sqlite_schema_fail(db, src, "creating " SINK_SQLITE_TABLE_SCHEMA, err, errlen);
        goto fail;
    }
    rc = sqlite_schema_version(db, &version, err, errlen);
    if (rc < 0)
        goto fail;
    if (version > SINK_SQLITE_SCHEMA_VERSION) {
        snprintf(err, errlen,
                 "sqlite: the database has schema version %d, newer than this program's %d",
                 version, SINK_SQLITE_SCHEMA_VERSION);
        rc = -EPROTO;
        goto fail;
    }
    for (size_t i = 0; i < SINK_SQLITE_MIGRATIONS; i++) {
        const struct sqlite_migration *m = &sqlite_migrations[i];
        if (m->version <= version)
            continue;
        src = sqlite3_exec(db, m->sql, NULL, NULL, NULL);
        if (src != SQLITE_OK) {
            char what[48];
            snprintf(what, sizeof(what), "schema step %d", m->version);
            rc = sqlite_schema_fail(db, src, what, err, errlen);
            goto fail;
        }
    }
    char sql[96];
    snprintf(sql, sizeof(sql),
             "DELETE FROM " SINK_SQLITE_TABLE_SCHEMA "; INSERT INTO " SINK_SQLITE_TABLE_SCHEMA
             " (version) VALUES (%d)",
             SINK_SQLITE_SCHEMA_VERSION);
    src = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (src != SQLITE_OK) {
        rc = sqlite_schema_fail(db, src, "recording the schema version", err, errlen);
        goto fail;
    }
    src = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (src != SQLITE_OK) {
        rc = sqlite_schema_fail(db, src, "COMMIT", err, errlen);
        goto fail;
    }
    return 0;

fail:
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int sqlite_schema_cursor_read(sqlite3 *db, const uint8_t *spool_id, const char *name, uint64_t *seq,
                              char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    *seq = 0;
    int rc = sqlite3_prepare_v2(
        db, "SELECT seq FROM " SINK_SQLITE_TABLE_CURSORS " WHERE spool_id = ?1 AND sink = ?2", -1,
        &st, NULL);
    if (rc != SQLITE_OK)
        return sqlite_schema_fail(db, rc, "reading the cursor", err, errlen);
    sqlite3_bind_blob(st, 1, spool_id, 16, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *seq = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sqlite_schema_fail(db, rc, "reading the cursor", err, errlen);
    return 0;
}
