/*
 * redis_source.c: reading the SQL stores back as records for the Redis rebuild (see
 * redis_source.h). Each store has two ordered streams, trades and metrics, merged here by seq.
 * SQLite streams both with two statements stepping side by side. MariaDB does the same with two
 * prepared statements (binary protocol, so doubles arrive bit for bit) opened as read-only
 * server-side cursors on one connection, fetched SOURCE_PREFETCH_ROWS rows at a time: the data
 * tables have no index on (spool_id, seq) (their key is per profile and time, see
 * mariadb_schema.h), so the server sorts each table once for the whole scan (into a temporary
 * table it hands out a prefetch at a time) instead of once per page.
 */
#include "core/percent.h"
#include "sink/redis/redis_source.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mysql.h>
#include <sqlite3.h>

#include "core/alloc.h"
#include "sink/sqlite/sqlite_schema.h"

#define SOURCE_PREFETCH_ROWS 5000
#define SOURCE_DESC_MAX      300

enum source_kind {
    SOURCE_SQLITE,
    SOURCE_MARIADB,
};

enum source_table {
    TABLE_TRADES = 0,
    TABLE_METRICS = 1,
    TABLE_COUNT = 2,
};

/* Result buffers of one MariaDB statement: one column of each kind, bound once. */
struct source_my_row {
    uint64_t seq;
    char text[5][REC_NAME_MAX + 1]; /* profile, script, symbol|name, side, trade_id */
    unsigned long text_len[5];
    double num[5];   /* qty entry exit pnl fees | value */
    long long us[2]; /* opened_at, closed_at | ts */
    my_bool is_null[13];
    my_bool error[13];
    MYSQL_BIND bind[13];
};

struct source_stream {
    bool done;        /* no more rows */
    bool have;        /* row holds the next row, not yet returned */
    bool cursor_open; /* MariaDB: the statement has been executed */
    struct record row;
};

struct redis_source {
    enum source_kind kind;
    char desc[SOURCE_DESC_MAX]; /* "sqlite /x/telem.db" or "mariadb host/db", for errors */
    sqlite3 *db;
    sqlite3_stmt *stmt[TABLE_COUNT];
    MYSQL *my;
    MYSQL_STMT *mstmt[TABLE_COUNT];
    struct source_my_row mrow[TABLE_COUNT];
    uint8_t spool_id[REDIS_SOURCE_SPOOL_ID_SIZE];
    uint64_t upto;
    bool scanning;
    struct source_stream s[TABLE_COUNT];
};

/* The MariaDB address a mariadb:// URL names. */
struct source_my_url {
    char user[128];
    char password[256];
    char host[256];
    char db[128];
    char socket[256];
    unsigned port;
};

static const char *const sqlite_select[TABLE_COUNT] = {
    "SELECT seq, profile_id, script, symbol, side, qty, entry_price, exit_price, pnl, fees, "
    "opened_at, closed_at, trade_id FROM " SINK_SQLITE_TABLE_TRADES
    " WHERE spool_id = ?1 AND seq <= ?2 ORDER BY seq",
    "SELECT seq, profile_id, script, name, value, ts FROM " SINK_SQLITE_TABLE_METRICS
    " WHERE spool_id = ?1 AND seq <= ?2 ORDER BY seq",
};

#define MY_EPOCH_US(col) "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', " col ")"
static const char *const mariadb_select[TABLE_COUNT] = {
    "SELECT seq, profile_id, script, symbol, side, trade_id, qty, entry_price, exit_price, pnl, "
    "fees, " MY_EPOCH_US("opened_at") ", " MY_EPOCH_US(
        "closed_at") " FROM trade_performance"
                     " WHERE spool_id = ? AND seq <= ? ORDER BY seq",
    "SELECT seq, profile_id, script, name, '', '', value, 0, 0, 0, 0, 0, " MY_EPOCH_US(
        "ts") " FROM aggregated_metric WHERE spool_id = ? AND seq <= ? ORDER BY seq",
};

static int parse_mariadb_url(const char *url, struct source_my_url *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof(*u));
    const char *s = strstr(url, "://") + 3;
    const char *q = strchr(s, '?');
    size_t len = q ? (size_t)(q - s) : strlen(s);
    const char *slash = memchr(s, '/', len);
    size_t alen = slash ? (size_t)(slash - s) : len;
    const char *at = NULL;
    for (size_t i = alen; i > 0; i--) {
        if (s[i - 1] == '@') {
            at = s + i - 1;
            break;
        }
    }
    const char *hp = s;
    if (at) {
        const char *colon = memchr(s, ':', (size_t)(at - s));
        size_t ulen = colon ? (size_t)(colon - s) : (size_t)(at - s);
        if (percent_decode(s, ulen, false, u->user, sizeof(u->user)) < 0 ||
            (colon && percent_decode(colon + 1, (size_t)(at - colon - 1), false, u->password,
                                     sizeof(u->password)) < 0))
            goto bad;
        hp = at + 1;
    }
    size_t hlen = alen - (size_t)(hp - s);
    const char *colon = memchr(hp, ':', hlen);
    if (colon) {
        char *end;
        unsigned long port = strtoul(colon + 1, &end, 10);
        if (end != hp + hlen || port == 0 || port > 65535)
            goto bad;
        u->port = (unsigned)port;
        hlen = (size_t)(colon - hp);
    }
    if (hlen >= sizeof(u->host))
        goto bad;
    memcpy(u->host, hp, hlen);
    if (slash && percent_decode(slash + 1, len - alen - 1, false, u->db, sizeof(u->db)) < 0)
        goto bad;
    if (u->db[0] == '\0')
        snprintf(u->db, sizeof(u->db), "telem");
    if (q) {
        if (strncmp(q + 1, "socket=", 7) != 0 ||
            percent_decode(q + 8, strlen(q + 8), false, u->socket, sizeof(u->socket)) < 0)
            goto bad;
    }
    return 0;
bad:
    snprintf(err, errlen,
             "rebuild source: cannot parse the MariaDB url (expected "
             "mariadb://user@host[:port]/db[?socket=/path])");
    return -EINVAL;
}

static int open_sqlite(struct redis_source *src, const struct redis_source_options *opt, char *err,
                       size_t errlen)
{
    const char *path = opt->url;
    if (strncmp(path, "sqlite:", 7) == 0) {
        path += 7;
        if (strncmp(path, "//", 2) == 0)
            path += 2;
    }
    char full[4096];
    if (path[0] != '/' && opt->data_dir)
        snprintf(full, sizeof(full), "%s/%s", opt->data_dir, path);
    else
        snprintf(full, sizeof(full), "%s", path);
    snprintf(src->desc, sizeof(src->desc), "sqlite %.280s", full);
    int rc = sqlite3_open_v2(full, &src->db, SQLITE_OPEN_READONLY, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", src->desc,
                 src->db ? sqlite3_errmsg(src->db) : sqlite3_errstr(rc));
        return -EIO;
    }
    sqlite3_busy_timeout(src->db, 10000);
    return 0;
}

static int open_mariadb(struct redis_source *src, const struct redis_source_options *opt, char *err,
                        size_t errlen)
{
    struct source_my_url u;
    int rc = parse_mariadb_url(opt->url, &u, err, errlen);
    if (rc < 0)
        return rc;
    snprintf(src->desc, sizeof(src->desc), "mariadb %.200s/%.64s", u.socket[0] ? u.socket : u.host,
             u.db);
    src->my = mysql_init(NULL);
    if (!src->my) {
        snprintf(err, errlen, "%s: out of memory", src->desc);
        return -ENOMEM;
    }
    unsigned timeout_s = opt->connect_timeout_ms ? (opt->connect_timeout_ms + 999) / 1000 : 5;
    mysql_options(src->my, MYSQL_OPT_CONNECT_TIMEOUT, &timeout_s);
    const char *password = opt->password ? opt->password : u.password;
    if (!mysql_real_connect(src->my, u.host[0] ? u.host : NULL, u.user[0] ? u.user : NULL,
                            password[0] ? password : NULL, u.db, u.port,
                            u.socket[0] ? u.socket : NULL, 0)) {
        snprintf(err, errlen, "%s: %s", src->desc, mysql_error(src->my));
        return -ECONNREFUSED;
    }
    return 0;
}

struct redis_source *redis_source_open(const struct redis_source_options *opt, char *err,
                                       size_t errlen)
{
    struct redis_source *src = xcalloc(1, sizeof(*src));
    int rc;
    if (strncmp(opt->url, "mariadb://", 10) == 0 || strncmp(opt->url, "mysql://", 8) == 0) {
        src->kind = SOURCE_MARIADB;
        rc = open_mariadb(src, opt, err, errlen);
    } else if (strstr(opt->url, "://") && strncmp(opt->url, "sqlite:", 7) != 0) {
        snprintf(err, errlen, "rebuild source: unsupported url (sqlite:PATH or mariadb://...)");
        rc = -EINVAL;
    } else {
        src->kind = SOURCE_SQLITE;
        rc = open_sqlite(src, opt, err, errlen);
    }
    if (rc < 0) {
        redis_source_close(src);
        return NULL;
    }
    return src;
}

static void end_scan(struct redis_source *src)
{
    for (int t = 0; t < TABLE_COUNT; t++) {
        if (src->stmt[t])
            sqlite3_finalize(src->stmt[t]);
        src->stmt[t] = NULL;
        if (src->mstmt[t])
            mysql_stmt_close(src->mstmt[t]);
        src->mstmt[t] = NULL;
    }
    memset(src->s, 0, sizeof(src->s));
    src->scanning = false;
}

void redis_source_close(struct redis_source *src)
{
    if (!src)
        return;
    end_scan(src);
    if (src->db)
        sqlite3_close(src->db);
    if (src->my)
        mysql_close(src->my);
    free(src);
}

static void spool_hex(const uint8_t *id, char hex[2 * REDIS_SOURCE_SPOOL_ID_SIZE + 1])
{
    for (int i = 0; i < REDIS_SOURCE_SPOOL_ID_SIZE; i++)
        snprintf(hex + 2 * i, 3, "%02x", id[i]);
}

/* True when an SQLite error says a table is missing: a store no sink has written yet. */
static bool sqlite_no_table(sqlite3 *db)
{
    return strstr(sqlite3_errmsg(db), "no such table") != NULL;
}

/* One telem_cursor row of the spool, as the cursor computation needs it. */
struct cursor_row {
    char sink[96];
    uint64_t seq;
    int64_t updated; /* any monotonic unit; 0 when unknown */
};

/* Length of the sink name's base: "main" of "main:1/2", the whole name without a ':'. */
static size_t cursor_base_len(const char *name)
{
    const char *colon = strchr(name, ':');
    return colon ? (size_t)(colon - name) : strlen(name);
}

/* The lane-count part of a name: "2" of "main:1/2", "" for a one-lane name. */
static const char *cursor_generation(const char *name)
{
    const char *slash = strchr(name, '/');
    return slash ? slash + 1 : "";
}

/*
 * The store's cursor from its rows: for each SQL sink (rows sharing the name before ':'), only
 * the rows of its newest lane layout count (a sink whose lane count changed leaves rows of the
 * old layout behind, frozen); the cursor is the lowest of those.
 */
static uint64_t cursor_from_rows(const struct cursor_row *rows, size_t n)
{
    uint64_t low = UINT64_MAX;
    for (size_t i = 0; i < n; i++) {
        size_t base = cursor_base_len(rows[i].sink);
        const char *gen = cursor_generation(rows[i].sink);
        int64_t newest = rows[i].updated;
        const char *newest_gen = gen;
        for (size_t j = 0; j < n; j++) {
            if (cursor_base_len(rows[j].sink) == base &&
                strncmp(rows[j].sink, rows[i].sink, base) == 0 && rows[j].updated > newest) {
                newest = rows[j].updated;
                newest_gen = cursor_generation(rows[j].sink);
            }
        }
        if (strcmp(gen, newest_gen) == 0 && rows[i].seq < low)
            low = rows[i].seq;
    }
    return low == UINT64_MAX ? 0 : low;
}

#define CURSOR_ROWS_MAX 256

int redis_source_cursor(struct redis_source *src, const uint8_t *spool_id, uint64_t *cursor,
                        char *err, size_t errlen)
{
    struct cursor_row *rows = xcalloc(CURSOR_ROWS_MAX, sizeof(*rows));
    size_t n = 0;
    int rc = 0;
    *cursor = 0;
    if (src->kind == SOURCE_SQLITE) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(src->db,
                               "SELECT sink, seq, updated_at FROM " SINK_SQLITE_TABLE_CURSORS
                               " WHERE spool_id = ?1",
                               -1, &st, NULL) != SQLITE_OK) {
            if (!sqlite_no_table(src->db)) {
                snprintf(err, errlen, "%s: reading cursors: %s", src->desc,
                         sqlite3_errmsg(src->db));
                rc = -EIO;
            }
            goto out;
        }
        sqlite3_bind_blob(st, 1, spool_id, REDIS_SOURCE_SPOOL_ID_SIZE, SQLITE_STATIC);
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW && n < CURSOR_ROWS_MAX) {
            const unsigned char *name = sqlite3_column_text(st, 0);
            snprintf(rows[n].sink, sizeof(rows[n].sink), "%s", name ? (const char *)name : "");
            rows[n].seq = (uint64_t)sqlite3_column_int64(st, 1);
            rows[n].updated = sqlite3_column_int64(st, 2);
            n++;
        }
        sqlite3_finalize(st);
        if (step != SQLITE_ROW && step != SQLITE_DONE) {
            snprintf(err, errlen, "%s: reading cursors: %s", src->desc, sqlite3_errmsg(src->db));
            rc = -EIO;
            goto out;
        }
    } else {
        char hex[2 * REDIS_SOURCE_SPOOL_ID_SIZE + 1], sql[300];
        spool_hex(spool_id, hex);
        snprintf(sql, sizeof(sql),
                 "SELECT sink, seq, " MY_EPOCH_US(
                     "updated_at") " FROM telem_cursor WHERE spool_id = X'%s'",
                 hex);
        if (mysql_query(src->my, sql) != 0) {
            if (mysql_errno(src->my) != 1146) { /* ER_NO_SUCH_TABLE: no sink wrote yet */
                snprintf(err, errlen, "%s: reading cursors: %s", src->desc, mysql_error(src->my));
                rc = -EIO;
            }
            goto out;
        }
        MYSQL_RES *res = mysql_store_result(src->my);
        MYSQL_ROW row;
        while (res && (row = mysql_fetch_row(res)) && n < CURSOR_ROWS_MAX) {
            snprintf(rows[n].sink, sizeof(rows[n].sink), "%s", row[0] ? row[0] : "");
            rows[n].seq = row[1] ? strtoull(row[1], NULL, 10) : 0;
            rows[n].updated = row[2] ? strtoll(row[2], NULL, 10) : 0;
            n++;
        }
        if (res)
            mysql_free_result(res);
    }
    *cursor = cursor_from_rows(rows, n);
out:
    free(rows);
    return rc;
}

int redis_source_spools(struct redis_source *src, uint8_t (*ids)[REDIS_SOURCE_SPOOL_ID_SIZE],
                        size_t cap, size_t *n, char *err, size_t errlen)
{
    *n = 0;
    if (src->kind == SOURCE_SQLITE) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(src->db, "SELECT DISTINCT spool_id FROM " SINK_SQLITE_TABLE_CURSORS,
                               -1, &st, NULL) != SQLITE_OK) {
            if (sqlite_no_table(src->db))
                return 0;
            snprintf(err, errlen, "%s: %s", src->desc, sqlite3_errmsg(src->db));
            return -EIO;
        }
        while (sqlite3_step(st) == SQLITE_ROW) {
            if (sqlite3_column_bytes(st, 0) != REDIS_SOURCE_SPOOL_ID_SIZE)
                continue;
            if (*n < cap)
                memcpy(ids[*n], sqlite3_column_blob(st, 0), REDIS_SOURCE_SPOOL_ID_SIZE);
            (*n)++;
        }
        sqlite3_finalize(st);
        return 0;
    }
    if (mysql_query(src->my, "SELECT DISTINCT spool_id FROM telem_cursor") != 0) {
        if (mysql_errno(src->my) == 1146)
            return 0;
        snprintf(err, errlen, "%s: %s", src->desc, mysql_error(src->my));
        return -EIO;
    }
    MYSQL_RES *res = mysql_store_result(src->my);
    MYSQL_ROW row;
    while (res && (row = mysql_fetch_row(res))) {
        unsigned long *lens = mysql_fetch_lengths(res);
        if (!row[0] || lens[0] != REDIS_SOURCE_SPOOL_ID_SIZE)
            continue;
        if (*n < cap)
            memcpy(ids[*n], row[0], REDIS_SOURCE_SPOOL_ID_SIZE);
        (*n)++;
    }
    if (res)
        mysql_free_result(res);
    return 0;
}

static void bind_my_results(struct source_my_row *r, enum source_table t)
{
    static const unsigned text_max[5] = {REC_PROFILE_MAX, REC_SCRIPT_MAX, REC_NAME_MAX,
                                         REC_SIDE_MAX, REC_TRADE_ID_MAX};
    memset(r->bind, 0, sizeof(r->bind));
    r->bind[0].buffer_type = MYSQL_TYPE_LONGLONG;
    r->bind[0].buffer = &r->seq;
    r->bind[0].is_unsigned = 1;
    for (int i = 0; i < 5; i++) {
        MYSQL_BIND *b = &r->bind[1 + i];
        b->buffer_type = MYSQL_TYPE_STRING;
        b->buffer = r->text[i];
        /* One byte more than the published length, so an overlong value shows as truncated. */
        b->buffer_length = (t == TABLE_METRICS && i == 2 ? REC_NAME_MAX : text_max[i]) + 1;
        b->length = &r->text_len[i];
    }
    for (int i = 0; i < 5; i++) {
        r->bind[6 + i].buffer_type = MYSQL_TYPE_DOUBLE;
        r->bind[6 + i].buffer = &r->num[i];
    }
    for (int i = 0; i < 2; i++) {
        r->bind[11 + i].buffer_type = MYSQL_TYPE_LONGLONG;
        r->bind[11 + i].buffer = &r->us[i];
    }
    for (int i = 0; i < 13; i++) {
        r->bind[i].is_null = &r->is_null[i];
        r->bind[i].error = &r->error[i];
    }
}

/* my_open executes table t's statement as a read-only server-side cursor. */
static int my_open(struct redis_source *src, enum source_table t, char *err, size_t errlen)
{
    MYSQL_STMT *st = src->mstmt[t];
    MYSQL_BIND params[2];
    unsigned long cursor = CURSOR_TYPE_READ_ONLY, prefetch = SOURCE_PREFETCH_ROWS;
    unsigned long id_len = REDIS_SOURCE_SPOOL_ID_SIZE;
    memset(params, 0, sizeof(params));
    params[0].buffer_type = MYSQL_TYPE_BLOB;
    params[0].buffer = src->spool_id;
    params[0].buffer_length = REDIS_SOURCE_SPOOL_ID_SIZE;
    params[0].length = &id_len;
    params[1].buffer_type = MYSQL_TYPE_LONGLONG;
    params[1].buffer = &src->upto;
    params[1].is_unsigned = 1;
    if (mysql_stmt_attr_set(st, STMT_ATTR_CURSOR_TYPE, &cursor) ||
        mysql_stmt_attr_set(st, STMT_ATTR_PREFETCH_ROWS, &prefetch) ||
        mysql_stmt_bind_param(st, params) || mysql_stmt_execute(st) ||
        mysql_stmt_bind_result(st, src->mrow[t].bind)) {
        snprintf(err, errlen, "%s: reading rows: %s", src->desc, mysql_stmt_error(st));
        return -EIO;
    }
    src->s[t].cursor_open = true;
    return 0;
}

static int copy_text(char *dst, uint8_t *len_out, size_t max, const void *s, size_t len)
{
    if (len > max)
        return -EINVAL;
    if (len)
        memcpy(dst, s, len);
    dst[len] = '\0';
    *len_out = (uint8_t)len;
    return 0;
}

/* Fills rec from the MariaDB row buffers. Returns 0 or -EINVAL. */
static int my_row_record(const struct source_my_row *r, enum source_table t, struct record *rec)
{
    static const size_t text_max[5] = {REC_PROFILE_MAX, REC_SCRIPT_MAX, REC_SYMBOL_MAX,
                                       REC_SIDE_MAX, REC_TRADE_ID_MAX};
    memset(rec, 0, sizeof(*rec));
    rec->seq = r->seq;
    for (int i = 0; i < 13; i++) {
        if (r->error[i] && !r->is_null[i])
            return -EINVAL;
    }
#define TEXT(i, field, lenf, max)                                                                  \
    copy_text(rec->field, &rec->lenf, max, r->text[i], r->is_null[1 + i] ? 0 : r->text_len[i])
    int bad = TEXT(0, profile, profile_len, REC_PROFILE_MAX) |
              TEXT(1, script, script_len, REC_SCRIPT_MAX);
    if (t == TABLE_METRICS) {
        rec->kind = RECORD_METRIC;
        bad |= TEXT(2, name, name_len, REC_NAME_MAX);
        if (r->is_null[6] || r->is_null[12])
            return -EINVAL;
        rec->value = r->num[0];
        rec->ts_ns = r->us[1] * 1000;
    } else {
        rec->kind = RECORD_TRADE;
        bad |= TEXT(2, symbol, symbol_len, text_max[2]) | TEXT(3, side, side_len, text_max[3]) |
               TEXT(4, trade_id, trade_id_len, text_max[4]);
        static const unsigned bits[5] = {REC_HAS_QTY, REC_HAS_ENTRY_PRICE, REC_HAS_EXIT_PRICE,
                                         REC_HAS_PNL, REC_HAS_FEES};
        double *dst[5] = {&rec->qty, &rec->entry_price, &rec->exit_price, &rec->pnl, &rec->fees};
        for (int i = 0; i < 5; i++) {
            if (!r->is_null[6 + i]) {
                *dst[i] = r->num[i];
                rec->present |= (uint8_t)bits[i];
            }
        }
        if (!r->is_null[11]) {
            rec->opened_at_ns = r->us[0] * 1000;
            rec->present |= REC_HAS_OPENED_AT;
        }
        if (r->is_null[12])
            return -EINVAL;
        rec->ts_ns = r->us[1] * 1000;
    }
#undef TEXT
    return bad ? -EINVAL : 0;
}

/* Fills rec from the current SQLite row of table t. Returns 0 or -EINVAL. */
static int sqlite_row_record(sqlite3_stmt *st, enum source_table t, struct record *rec)
{
    memset(rec, 0, sizeof(*rec));
    rec->seq = (uint64_t)sqlite3_column_int64(st, 0);
#define TEXT(col, field, lenf, max)                                                                \
    copy_text(rec->field, &rec->lenf, max, sqlite3_column_text(st, col),                           \
              (size_t)sqlite3_column_bytes(st, col))
    int bad = TEXT(1, profile, profile_len, REC_PROFILE_MAX) |
              TEXT(2, script, script_len, REC_SCRIPT_MAX);
    if (t == TABLE_METRICS) {
        rec->kind = RECORD_METRIC;
        bad |= TEXT(3, name, name_len, REC_NAME_MAX);
        rec->value = sqlite3_column_double(st, 4);
        rec->ts_ns = sqlite3_column_int64(st, 5) * 1000;
        return bad ? -EINVAL : 0;
    }
    rec->kind = RECORD_TRADE;
    bad |= TEXT(3, symbol, symbol_len, REC_SYMBOL_MAX) | TEXT(4, side, side_len, REC_SIDE_MAX) |
           TEXT(12, trade_id, trade_id_len, REC_TRADE_ID_MAX);
#undef TEXT
    static const unsigned bits[5] = {REC_HAS_QTY, REC_HAS_ENTRY_PRICE, REC_HAS_EXIT_PRICE,
                                     REC_HAS_PNL, REC_HAS_FEES};
    double *dst[5] = {&rec->qty, &rec->entry_price, &rec->exit_price, &rec->pnl, &rec->fees};
    for (int i = 0; i < 5; i++) {
        if (sqlite3_column_type(st, 5 + i) != SQLITE_NULL) {
            *dst[i] = sqlite3_column_double(st, 5 + i);
            rec->present |= (uint8_t)bits[i];
        }
    }
    if (sqlite3_column_type(st, 10) != SQLITE_NULL) {
        rec->opened_at_ns = sqlite3_column_int64(st, 10) * 1000;
        rec->present |= REC_HAS_OPENED_AT;
    }
    rec->ts_ns = sqlite3_column_int64(st, 11) * 1000;
    return bad ? -EINVAL : 0;
}

int redis_source_scan(struct redis_source *src, const uint8_t *spool_id, uint64_t upto, char *err,
                      size_t errlen)
{
    end_scan(src);
    memcpy(src->spool_id, spool_id, REDIS_SOURCE_SPOOL_ID_SIZE);
    src->upto = upto;
    src->scanning = true;
    for (int t = 0; t < TABLE_COUNT; t++) {
        if (src->kind == SOURCE_SQLITE) {
            if (sqlite3_prepare_v2(src->db, sqlite_select[t], -1, &src->stmt[t], NULL) !=
                SQLITE_OK) {
                if (sqlite_no_table(src->db)) {
                    src->s[t].done = true;
                    continue;
                }
                snprintf(err, errlen, "%s: %s", src->desc, sqlite3_errmsg(src->db));
                return -EIO;
            }
            sqlite3_bind_blob(src->stmt[t], 1, src->spool_id, REDIS_SOURCE_SPOOL_ID_SIZE,
                              SQLITE_STATIC);
            sqlite3_bind_int64(src->stmt[t], 2, (sqlite3_int64)upto);
        } else {
            src->mstmt[t] = mysql_stmt_init(src->my);
            if (!src->mstmt[t] ||
                mysql_stmt_prepare(src->mstmt[t], mariadb_select[t], strlen(mariadb_select[t]))) {
                if (src->mstmt[t] && mysql_stmt_errno(src->mstmt[t]) == 1146) {
                    src->s[t].done = true;
                    continue;
                }
                snprintf(err, errlen, "%s: %s", src->desc,
                         src->mstmt[t] ? mysql_stmt_error(src->mstmt[t]) : "out of memory");
                return -EIO;
            }
            bind_my_results(&src->mrow[t], (enum source_table)t);
        }
    }
    return 0;
}

/* Reads the next row of one table into its stream. Returns 1, 0 at its end, or -errno. */
static int stream_fetch(struct redis_source *src, enum source_table t, char *err, size_t errlen)
{
    struct source_stream *s = &src->s[t];
    if (src->kind == SOURCE_SQLITE) {
        int rc = sqlite3_step(src->stmt[t]);
        if (rc == SQLITE_DONE)
            return 0;
        if (rc != SQLITE_ROW) {
            snprintf(err, errlen, "%s: reading rows: %s", src->desc, sqlite3_errmsg(src->db));
            return -EIO;
        }
        if (sqlite_row_record(src->stmt[t], t, &s->row) < 0)
            goto bad_row;
        return 1;
    }
    if (!s->cursor_open) {
        int rc = my_open(src, t, err, errlen);
        if (rc < 0)
            return rc;
    }
    int rc = mysql_stmt_fetch(src->mstmt[t]);
    if (rc == MYSQL_NO_DATA)
        return 0;
    if (rc != 0 && rc != MYSQL_DATA_TRUNCATED) {
        snprintf(err, errlen, "%s: reading rows: %s", src->desc, mysql_stmt_error(src->mstmt[t]));
        return -EIO;
    }
    if (my_row_record(&src->mrow[t], t, &s->row) < 0)
        goto bad_row;
    return 1;
bad_row:
    snprintf(err, errlen, "%s: row seq %llu cannot be a record (a value too long or missing)",
             src->desc, (unsigned long long)s->row.seq);
    return -EINVAL;
}

int redis_source_next(struct redis_source *src, struct record *out, char *err, size_t errlen)
{
    if (!src->scanning)
        return 0;
    for (int t = 0; t < TABLE_COUNT; t++) {
        struct source_stream *s = &src->s[t];
        if (s->have || s->done)
            continue;
        int rc = stream_fetch(src, (enum source_table)t, err, errlen);
        if (rc < 0)
            return rc;
        if (rc == 0)
            s->done = true;
        else
            s->have = true;
    }
    struct source_stream *tr = &src->s[TABLE_TRADES], *me = &src->s[TABLE_METRICS];
    struct source_stream *pick = NULL;
    if (tr->have && (!me->have || tr->row.seq < me->row.seq))
        pick = tr;
    else if (me->have)
        pick = me;
    if (!pick)
        return 0;
    *out = pick->row;
    pick->have = false;
    return 1;
}
