/*
 * mariadb_schema.c: creating, adopting and partitioning the MariaDB store's tables (see
 * mariadb_schema.h for the schema itself and the reasons for its keys).
 *
 * Migration is a list of idempotent "ensure" steps driven by what information_schema says is
 * there, rather than a replay of numbered scripts, because telem must also take over tables it
 * did not create (the old Python system's). telem_schema records which schema version was last
 * applied, so a newer telem can tell what to upgrade and an older one refuses a newer schema.
 * Everything runs under GET_LOCK('telem_migrate.<db>') so concurrent starters do it once.
 */
#include "sink/mariadb/mariadb_schema.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "sink/mariadb/mariadb_time.h"

#define TABLE_OPTIONS " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"

/*
 * The one unique key of each data table (the primary key of tables telem creates): it finds a
 * replayed row (same spool_id and seq, and so the same profile and time) and orders a profile's
 * rows by time for range reads. Written without spaces: table_has_index compares it with
 * information_schema's GROUP_CONCAT of the key's columns.
 */
#define TRADE_KEY  "profile_id,closed_at,spool_id,seq"
#define METRIC_KEY "profile_id,name,ts,spool_id,seq"

/* A growable SQL text, for statements whose length depends on the partitions. */
struct sql_text {
    char *p;
    size_t len, cap;
};

static void sql_add(struct sql_text *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sql_add(struct sql_text *s, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(s->p ? s->p + s->len : NULL, s->p ? s->cap - s->len : 0, fmt, ap);
        va_end(ap);
        if (n >= 0 && s->p && s->len + (size_t)n < s->cap) {
            s->len += (size_t)n;
            return;
        }
        s->cap = (s->cap + (size_t)(n > 0 ? n : 0) + 1) * 2;
        s->p = xrealloc(s->p, s->cap);
        if (s->len == 0)
            s->p[0] = '\0';
    }
}

/* schema_exec runs one statement that returns no rows. Returns 0 or -EIO with err filled. */
static int schema_exec(MYSQL *m, const char *sql, char *err, size_t errlen)
{
    if (mysql_real_query(m, sql, strlen(sql)) == 0) {
        MYSQL_RES *res = mysql_store_result(m);
        mysql_free_result(res);
        return 0;
    }
    snprintf(err, errlen, "mariadb: %.120s: %s (error %u)", sql, mysql_error(m), mysql_errno(m));
    return -EIO;
}

/* schema_select runs a query and stores its rows. Caller frees with mysql_free_result. */
static int schema_select(MYSQL *m, const char *sql, MYSQL_RES **res, char *err, size_t errlen)
{
    *res = NULL;
    if (mysql_real_query(m, sql, strlen(sql)) == 0 && (*res = mysql_store_result(m)) != NULL)
        return 0;
    snprintf(err, errlen, "mariadb: %.120s: %s (error %u)", sql, mysql_error(m), mysql_errno(m));
    return -EIO;
}

size_t mariadb_schema_quote(const char *s, size_t len, char *out)
{
    char *o = out;
    *o++ = '\'';
    for (size_t i = 0; i < len; i++) {
        switch (s[i]) {
        case '\'':
            *o++ = '\'';
            *o++ = '\'';
            break;
        case '\\':
            *o++ = '\\';
            *o++ = '\\';
            break;
        case '\0':
            *o++ = '\\';
            *o++ = '0';
            break;
        default:
            *o++ = s[i];
        }
    }
    *o++ = '\'';
    *o = '\0';
    return (size_t)(o - out);
}

/* ---- What is there: columns, indexes, partitions ---- */

#define SCHEMA_COLS_MAX 64

struct column_info {
    char name[65];
    char data_type[32];
    long long char_len; /* CHARACTER_MAXIMUM_LENGTH, -1 for non-strings */
    bool nullable;
    char charset[33];
    char collation[65];
};

struct table_info {
    bool exists;
    bool partitioned;
    unsigned ncols;
    struct column_info cols[SCHEMA_COLS_MAX];
};

static const struct column_info *table_column(const struct table_info *t, const char *name)
{
    for (unsigned i = 0; i < t->ncols; i++) {
        if (strcasecmp(t->cols[i].name, name) == 0)
            return &t->cols[i];
    }
    return NULL;
}

static int table_inspect(MYSQL *m, const char *table, struct table_info *t, char *err,
                         size_t errlen)
{
    memset(t, 0, sizeof(*t));
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT COLUMN_NAME, DATA_TYPE, IFNULL(CHARACTER_MAXIMUM_LENGTH, -1), IS_NULLABLE, "
             "IFNULL(CHARACTER_SET_NAME, ''), IFNULL(COLLATION_NAME, '') "
             "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND "
             "TABLE_NAME = '%s' ORDER BY ORDINAL_POSITION",
             table);
    MYSQL_RES *res;
    int rc = schema_select(m, sql, &res, err, errlen);
    if (rc < 0)
        return rc;
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(res)) && t->ncols < SCHEMA_COLS_MAX) {
        struct column_info *c = &t->cols[t->ncols++];
        snprintf(c->name, sizeof(c->name), "%s", row[0]);
        snprintf(c->data_type, sizeof(c->data_type), "%s", row[1]);
        c->char_len = strtoll(row[2], NULL, 10);
        c->nullable = strcmp(row[3], "YES") == 0;
        snprintf(c->charset, sizeof(c->charset), "%s", row[4]);
        snprintf(c->collation, sizeof(c->collation), "%s", row[5]);
    }
    mysql_free_result(res);
    t->exists = t->ncols > 0;
    if (!t->exists)
        return 0;

    snprintf(sql, sizeof(sql),
             "SELECT COUNT(*) FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA = DATABASE() "
             "AND TABLE_NAME = '%s' AND PARTITION_NAME IS NOT NULL",
             table);
    rc = schema_select(m, sql, &res, err, errlen);
    if (rc < 0)
        return rc;
    row = mysql_fetch_row(res);
    t->partitioned = row && row[0] && strtoll(row[0], NULL, 10) > 0;
    mysql_free_result(res);
    return 0;
}

/*
 * table_has_index says whether table has an index on exactly columns ("a,b"), unique when
 * unique is set (a primary key counts as unique). With prefix set, an index whose leading
 * columns are these also counts (enough for queries, not for uniqueness).
 */
static int table_has_index(MYSQL *m, const char *table, const char *columns, bool unique,
                           bool prefix, bool *found, char *err, size_t errlen)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT MIN(NON_UNIQUE), GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX) "
             "FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND "
             "TABLE_NAME = '%s' GROUP BY INDEX_NAME",
             table);
    MYSQL_RES *res;
    int rc = schema_select(m, sql, &res, err, errlen);
    if (rc < 0)
        return rc;
    *found = false;
    size_t clen = strlen(columns);
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(res))) {
        if (!row[0] || !row[1])
            continue;
        if (unique && strcmp(row[0], "0") != 0)
            continue;
        bool same = strcasecmp(row[1], columns) == 0;
        bool leads = prefix && strncasecmp(row[1], columns, clen) == 0 && row[1][clen] == ',';
        if (same || leads) {
            *found = true;
            break;
        }
    }
    mysql_free_result(res);
    return 0;
}

/* ---- Fresh tables ---- */

/* The columns of the data tables as telem creates them. */
static const char trade_columns_sql[] =
    "spool_id BINARY(16) NOT NULL, "
    "seq BIGINT UNSIGNED NOT NULL, "
    "profile_id VARCHAR(64) NOT NULL, "
    "script VARCHAR(64) NOT NULL DEFAULT '', "
    "symbol VARCHAR(32) NOT NULL DEFAULT '', "
    "side VARCHAR(16) NOT NULL DEFAULT '', "
    "qty DOUBLE NULL, entry_price DOUBLE NULL, exit_price DOUBLE NULL, pnl DOUBLE NULL, "
    "fees DOUBLE NULL, "
    "opened_at DATETIME(6) NULL, "
    "closed_at DATETIME(6) NOT NULL, "
    "trade_id VARCHAR(64) NULL";

static const char metric_columns_sql[] = "spool_id BINARY(16) NOT NULL, "
                                         "seq BIGINT UNSIGNED NOT NULL, "
                                         "profile_id VARCHAR(64) NOT NULL, "
                                         "script VARCHAR(64) NOT NULL DEFAULT '', "
                                         "name VARCHAR(128) NOT NULL, "
                                         "value DOUBLE NOT NULL, "
                                         "ts DATETIME(6) NOT NULL";

/* period_start returns the start (in days since the epoch) of the period holding day. */
static int64_t period_start(int partitioning, int64_t day)
{
    if (partitioning == MARIADB_PARTITION_DAILY)
        return day;
    MYSQL_TIME t;
    mariadb_time_from_us(day * 86400 * 1000000LL, &t);
    return mariadb_time_days_from_civil(t.year, t.month, 1);
}

/* period_next returns the start of the period after the one starting at day. */
static int64_t period_next(int partitioning, int64_t day)
{
    if (partitioning == MARIADB_PARTITION_DAILY)
        return day + 1;
    MYSQL_TIME t;
    mariadb_time_from_us(day * 86400 * 1000000LL, &t);
    unsigned y = t.year, mo = t.month + 1;
    if (mo > 12) {
        mo = 1;
        y++;
    }
    return mariadb_time_days_from_civil(y, mo, 1);
}

static void day_parts(int64_t day, MYSQL_TIME *t)
{
    mariadb_time_from_us(day * 86400 * 1000000LL, t);
}

/*
 * add_partitions appends "PARTITION pYYYYMMDD VALUES LESS THAN ('next')" for every period
 * from `from` (days since the epoch) until the bound reaches `until`, and returns the last
 * bound. When `from` is not a period start (the period size changed), the first partition runs
 * to the next period start.
 */
static int64_t add_partitions(struct sql_text *s, int partitioning, int64_t from, int64_t until,
                              bool *first)
{
    int64_t day = from;
    while (day < until) {
        int64_t next = period_next(partitioning, day);
        MYSQL_TIME a, b;
        day_parts(day, &a);
        day_parts(next, &b);
        sql_add(s, "%sPARTITION p%04u%02u%02u VALUES LESS THAN ('%04u-%02u-%02u')",
                *first ? "" : ", ", a.year, a.month, a.day, b.year, b.month, b.day);
        *first = false;
        day = next;
    }
    return day;
}

static unsigned ahead_of(const struct mariadb_schema_options *opt)
{
    return opt->partitions_ahead ? opt->partitions_ahead : 3;
}

/* partition_target returns the bound (days) the partitions must reach at now_us. */
static int64_t partition_target(const struct mariadb_schema_options *opt, int partitioning,
                                int64_t now_us)
{
    int64_t today = now_us / (86400 * 1000000LL);
    int64_t day = period_start(partitioning, today);
    for (unsigned i = 0; i <= ahead_of(opt); i++)
        day = period_next(partitioning, day);
    return day;
}

static int create_data_table(MYSQL *m, const char *table, const struct mariadb_schema_options *opt,
                             int64_t now_us, char *err, size_t errlen)
{
    bool trades = strcmp(table, MARIADB_TABLE_TRADES) == 0;
    const char *time_col = trades ? "closed_at" : "ts";
    bool parted = opt->partitioning != MARIADB_PARTITION_OFF;
    struct sql_text s = {0};
    sql_add(&s, "CREATE TABLE IF NOT EXISTS %s (%s, ", table,
            trades ? trade_columns_sql : metric_columns_sql);
    sql_add(&s, "PRIMARY KEY (%s))" TABLE_OPTIONS, trades ? TRADE_KEY : METRIC_KEY);
    if (parted) {
        int64_t today = now_us / (86400 * 1000000LL);
        int64_t first_day = period_start(opt->partitioning, today);
        MYSQL_TIME t;
        day_parts(first_day, &t);
        sql_add(&s,
                " PARTITION BY RANGE COLUMNS(%s) (PARTITION pold VALUES LESS THAN "
                "('%04u-%02u-%02u')",
                time_col, t.year, t.month, t.day);
        bool first = false;
        add_partitions(&s, opt->partitioning, first_day,
                       partition_target(opt, opt->partitioning, now_us), &first);
        sql_add(&s, ", PARTITION pmax VALUES LESS THAN (MAXVALUE))");
    }
    int rc = schema_exec(m, s.p, err, errlen);
    free(s.p);
    if (rc == 0)
        LOG_INFO("mariadb", "created table %s%s", table,
                 parted ? (opt->partitioning == MARIADB_PARTITION_DAILY ? " (daily partitions)"
                                                                        : " (monthly partitions)")
                        : "");
    return rc;
}

/* ---- Adoption of existing tables ---- */

struct wanted_column {
    const char *name;
    const char *type;     /* type for ADD or MODIFY, without NULL-ness */
    const char *add_tail; /* NULL-ness and default when added */
    long long min_len;    /* strings: widen when shorter; 0 for other types */
};

static const struct wanted_column trade_wanted[] = {
    {"spool_id", "BINARY(16)", "NULL", 0},
    {"seq", "BIGINT UNSIGNED", "NULL", 0},
    {"profile_id", "VARCHAR(64)", "NULL", 64},
    {"script", "VARCHAR(64)", "NOT NULL DEFAULT ''", 64},
    {"symbol", "VARCHAR(32)", "NOT NULL DEFAULT ''", 32},
    {"side", "VARCHAR(16)", "NOT NULL DEFAULT ''", 16},
    {"qty", "DOUBLE", "NULL", 0},
    {"entry_price", "DOUBLE", "NULL", 0},
    {"exit_price", "DOUBLE", "NULL", 0},
    {"pnl", "DOUBLE", "NULL", 0},
    {"fees", "DOUBLE", "NULL", 0},
    {"opened_at", "DATETIME(6)", "NULL", 0},
    {"closed_at", "DATETIME(6)", "NULL", 0},
    {"trade_id", "VARCHAR(64)", "COLLATE utf8mb4_bin NULL", 64},
    {NULL, NULL, NULL, 0},
};

static const struct wanted_column metric_wanted[] = {
    {"spool_id", "BINARY(16)", "NULL", 0},     {"seq", "BIGINT UNSIGNED", "NULL", 0},
    {"profile_id", "VARCHAR(64)", "NULL", 64}, {"script", "VARCHAR(64)", "NOT NULL DEFAULT ''", 64},
    {"name", "VARCHAR(128)", "NULL", 128},     {"value", "DOUBLE", "NULL", 0},
    {"ts", "DATETIME(6)", "NULL", 0},          {NULL, NULL, NULL, 0},
};

struct wanted_index {
    const char *name;
    const char *columns;
    bool unique;
};

static const struct wanted_index trade_indexes[] = {
    {"telem_row", TRADE_KEY, true},
    {NULL, NULL, false},
};

static const struct wanted_index metric_indexes[] = {
    {"telem_row", METRIC_KEY, true},
    {NULL, NULL, false},
};

static bool utf8mb4(const char *charset)
{
    return strcmp(charset, "utf8mb4") == 0;
}

/*
 * adopt_table brings an existing unpartitioned table to telem's shape in one ALTER TABLE:
 * missing columns added; string columns telem writes widened to the published lengths and
 * converted to utf8mb4 (keeping their NULL-ness; a column default other than NULL is not
 * carried over); missing keys added.
 */
static int adopt_table(MYSQL *m, const char *table, const struct table_info *t,
                       const struct wanted_column *cols, const struct wanted_index *idx, char *err,
                       size_t errlen)
{
    struct sql_text s = {0};
    unsigned changes = 0;
    sql_add(&s, "ALTER TABLE %s ", table);
    for (const struct wanted_column *w = cols; w->name; w++) {
        const struct column_info *c = table_column(t, w->name);
        if (!c) {
            sql_add(&s, "%sADD COLUMN %s %s %s", changes++ ? ", " : "", w->name, w->type,
                    w->add_tail);
        } else if (w->min_len && c->char_len >= 0 &&
                   (c->char_len < w->min_len || !utf8mb4(c->charset))) {
            /* Too short, or unable to hold what UTF-8 names may contain: widen and convert,
             * never shorten, and keep case-(in)sensitivity as it was. */
            long long len = c->char_len > w->min_len ? c->char_len : w->min_len;
            const char *collation =
                strstr(c->collation, "_bin") ? "utf8mb4_bin" : "utf8mb4_general_ci";
            sql_add(&s, "%sMODIFY COLUMN %s VARCHAR(%lld) CHARACTER SET utf8mb4 COLLATE %s %s",
                    changes++ ? ", " : "", w->name, len, collation,
                    c->nullable ? "NULL" : "NOT NULL");
        }
    }
    int rc = 0;
    for (const struct wanted_index *w = idx; w->name; w++) {
        bool found;
        rc = table_has_index(m, table, w->columns, w->unique, !w->unique, &found, err, errlen);
        if (rc < 0)
            goto done;
        if (!found)
            sql_add(&s, "%sADD %s %s (%s)", changes++ ? ", " : "", w->unique ? "UNIQUE KEY" : "KEY",
                    w->name, w->columns);
    }
    if (changes) {
        LOG_INFO("mariadb", "adopting table %s: %s", table, s.p);
        rc = schema_exec(m, s.p, err, errlen);
    }
done:
    free(s.p);
    return rc;
}

static int ensure_data_table(MYSQL *m, const char *table, const struct mariadb_schema_options *opt,
                             int64_t now_us, char *err, size_t errlen)
{
    struct table_info *t = xmalloc(sizeof(*t));
    int rc = table_inspect(m, table, t, err, errlen);
    if (rc < 0)
        goto done;
    if (!t->exists) {
        rc = create_data_table(m, table, opt, now_us, err, errlen);
        goto done;
    }
    if (t->partitioned)
        goto done; /* made by telem with partitions; keys are already right */
    if (opt->partitioning != MARIADB_PARTITION_OFF) {
        snprintf(err, errlen,
                 "mariadb: table %s exists without partitions; partitioning applies to tables "
                 "telem creates (set partitioning = off, or rename the table so telem makes a "
                 "partitioned one)",
                 table);
        rc = -EPROTO;
        goto done;
    }
    bool trades = strcmp(table, MARIADB_TABLE_TRADES) == 0;
    rc = adopt_table(m, table, t, trades ? trade_wanted : metric_wanted,
                     trades ? trade_indexes : metric_indexes, err, errlen);
done:
    free(t);
    return rc;
}

/* ---- Partitions ---- */

struct partition_bound {
    char name[65];
    bool maxvalue;
    int64_t bound_us; /* upper bound (exclusive) */
};

/* parse_bound reads "'YYYY-MM-DD[ hh:mm:ss]'" into microseconds. Returns 0 or -EINVAL. */
static int parse_bound(const char *desc, int64_t *us)
{
    unsigned y, mo, d, h = 0, mi = 0, sec = 0;
    int n = sscanf(desc, "'%u-%u-%u %u:%u:%u", &y, &mo, &d, &h, &mi, &sec);
    if (n < 3)
        return -EINVAL;
    MYSQL_TIME t = {.year = y, .month = mo, .day = d, .hour = h, .minute = mi, .second = sec};
    *us = mariadb_time_to_us(&t);
    return 0;
}

/* list_partitions reads a table's partitions in order. Caller frees *out. */
static int list_partitions(MYSQL *m, const char *table, struct partition_bound **out, size_t *n,
                           char *err, size_t errlen)
{
    char sql[400];
    snprintf(sql, sizeof(sql),
             "SELECT PARTITION_NAME, PARTITION_DESCRIPTION FROM information_schema.PARTITIONS "
             "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '%s' AND PARTITION_NAME IS NOT "
             "NULL ORDER BY PARTITION_ORDINAL_POSITION",
             table);
    MYSQL_RES *res;
    int rc = schema_select(m, sql, &res, err, errlen);
    if (rc < 0)
        return rc;
    size_t rows = (size_t)mysql_num_rows(res);
    *out = xcalloc(rows ? rows : 1, sizeof(**out));
    *n = 0;
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(res))) {
        struct partition_bound *b = &(*out)[(*n)++];
        snprintf(b->name, sizeof(b->name), "%s", row[0] ? row[0] : "");
        const char *desc = row[1] ? row[1] : "";
        b->maxvalue = strcmp(desc, "MAXVALUE") == 0;
        if (!b->maxvalue && parse_bound(desc, &b->bound_us) < 0) {
            snprintf(err, errlen, "mariadb: %s partition %s: unexpected bound %s", table, b->name,
                     desc);
            mysql_free_result(res);
            free(*out);
            *out = NULL;
            return -EIO;
        }
    }
    mysql_free_result(res);
    return 0;
}

static int ensure_table_partitions(MYSQL *m, const char *table,
                                   const struct mariadb_schema_options *opt, int64_t now_us,
                                   char *err, size_t errlen)
{
    struct partition_bound *parts = NULL;
    size_t n = 0;
    int rc = list_partitions(m, table, &parts, &n, err, errlen);
    if (rc < 0 || n == 0)
        goto done;
    int partitioning =
        opt->partitioning == MARIADB_PARTITION_OFF ? MARIADB_PARTITION_MONTHLY : opt->partitioning;
    bool has_max = false;
    int64_t top_us = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].maxvalue)
            has_max = true;
        else if (parts[i].bound_us > top_us)
            top_us = parts[i].bound_us;
    }
    int64_t until = partition_target(opt, partitioning, now_us);
    int64_t from;
    if (top_us == INT64_MIN)
        from = period_start(partitioning, now_us / (86400 * 1000000LL));
    else
        from = top_us / (86400 * 1000000LL);
    if (from >= until)
        goto done;
    struct sql_text s = {0};
    if (has_max)
        sql_add(&s, "ALTER TABLE %s REORGANIZE PARTITION pmax INTO (", table);
    else
        sql_add(&s, "ALTER TABLE %s ADD PARTITION (", table);
    bool first = true;
    int64_t last = add_partitions(&s, partitioning, from, until, &first);
    if (has_max)
        sql_add(&s, ", PARTITION pmax VALUES LESS THAN (MAXVALUE)");
    sql_add(&s, ")");
    rc = schema_exec(m, s.p, err, errlen);
    if (rc == 0) {
        MYSQL_TIME t;
        day_parts(last, &t);
        LOG_INFO("mariadb", "%s: partitions now reach %04u-%02u-%02u", table, t.year, t.month,
                 t.day);
    }
    free(s.p);
done:
    free(parts);
    return rc;
}

int mariadb_schema_ensure_partitions(MYSQL *m, const struct mariadb_schema_options *opt,
                                     int64_t now_us, char *err, size_t errlen)
{
    int rc = ensure_table_partitions(m, MARIADB_TABLE_TRADES, opt, now_us, err, errlen);
    if (rc == 0)
        rc = ensure_table_partitions(m, MARIADB_TABLE_METRICS, opt, now_us, err, errlen);
    return rc;
}

static int drop_table_partitions(MYSQL *m, const char *table, int64_t cutoff_us, int *dropped,
                                 char *err, size_t errlen)
{
    struct partition_bound *parts = NULL;
    size_t n = 0;
    int rc = list_partitions(m, table, &parts, &n, err, errlen);
    if (rc < 0)
        return rc;
    struct sql_text s = {0};
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].maxvalue || parts[i].bound_us > cutoff_us)
            continue;
        if (count == 0)
            sql_add(&s, "ALTER TABLE %s DROP PARTITION ", table);
        sql_add(&s, "%s%s", count ? ", " : "", parts[i].name);
        count++;
    }
    /* A table must keep one partition: pmax always stays, so this holds unless it is gone. */
    if (count && (size_t)count < n) {
        rc = schema_exec(m, s.p, err, errlen);
        if (rc == 0) {
            LOG_INFO("mariadb", "retention: %s", s.p);
            *dropped += count;
        }
    }
    free(s.p);
    free(parts);
    return rc;
}

int mariadb_schema_drop_before(MYSQL *m, int64_t cutoff_us, char *err, size_t errlen)
{
    struct table_info *t = xmalloc(sizeof(*t));
    int dropped = 0;
    int rc = table_inspect(m, MARIADB_TABLE_TRADES, t, err, errlen);
    if (rc < 0)
        goto done;
    bool trades_parted = t->partitioned;
    rc = table_inspect(m, MARIADB_TABLE_METRICS, t, err, errlen);
    if (rc < 0)
        goto done;
    bool metrics_parted = t->partitioned;
    if (!trades_parted && !metrics_parted) {
        snprintf(err, errlen,
                 "mariadb: %s and %s are not partitioned, so there are no partitions to drop "
                 "(retention needs tables created with partitioning = monthly or daily)",
                 MARIADB_TABLE_TRADES, MARIADB_TABLE_METRICS);
        rc = -EOPNOTSUPP;
        goto done;
    }
    if (trades_parted)
        rc = drop_table_partitions(m, MARIADB_TABLE_TRADES, cutoff_us, &dropped, err, errlen);
    if (rc == 0 && metrics_parted)
        rc = drop_table_partitions(m, MARIADB_TABLE_METRICS, cutoff_us, &dropped, err, errlen);
    if (rc < 0 || !trades_parted)
        goto done;

    /* The trade_id register forgets trades whose rows are gone, in small transactions. */
    MYSQL_TIME ct;
    char when[32], sql[256];
    if (mariadb_time_from_us(cutoff_us, &ct) < 0)
        goto done;
    mariadb_time_format(&ct, when);
    snprintf(sql, sizeof(sql),
             "DELETE FROM " MARIADB_TABLE_TRADE_IDS " WHERE closed_at < '%s' "
             "LIMIT 10000",
             when);
    for (;;) {
        rc = schema_exec(m, sql, err, errlen);
        if (rc < 0)
            break;
        my_ulonglong gone = mysql_affected_rows(m);
        rc = schema_exec(m, "COMMIT", err, errlen);
        if (rc < 0 || gone < 10000)
            break;
    }
done:
    free(t);
    return rc < 0 ? rc : dropped;
}

/* ---- Migration ---- */

/*
 * ensure_small_tables creates the cursor table and the trade_id register. The register has an
 * index on closed_at only where retention deletes from it (partitioned trades): an index costs
 * a B-tree insert per trade_id.
 */
static int ensure_small_tables(MYSQL *m, bool partitioned, char *err, size_t errlen)
{
    static const char cursors[] =
        "CREATE TABLE IF NOT EXISTS " MARIADB_TABLE_CURSORS " ("
        "spool_id BINARY(16) NOT NULL, sink VARCHAR(80) NOT NULL, seq BIGINT UNSIGNED NOT NULL, "
        "updated_at DATETIME(6) NOT NULL, PRIMARY KEY (spool_id, sink))" TABLE_OPTIONS;
    static const char ids[] =
        "CREATE TABLE IF NOT EXISTS " MARIADB_TABLE_TRADE_IDS " ("
        "profile_id VARCHAR(64) NOT NULL, trade_id VARCHAR(64) NOT NULL, "
        "spool_id BINARY(16) NOT NULL, seq BIGINT UNSIGNED NOT NULL, "
        "closed_at DATETIME(6) NOT NULL, PRIMARY KEY (profile_id, trade_id))" TABLE_OPTIONS;
    int rc = schema_exec(m, cursors, err, errlen);
    if (rc == 0)
        rc = schema_exec(m, ids, err, errlen);
    bool found = true;
    if (rc == 0 && partitioned)
        rc = table_has_index(m, MARIADB_TABLE_TRADE_IDS, "closed_at", false, true, &found, err,
                             errlen);
    if (rc == 0 && !found)
        rc = schema_exec(m, "ALTER TABLE " MARIADB_TABLE_TRADE_IDS " ADD KEY closed (closed_at)",
                         err, errlen);
    return rc;
}

/* drop_v1_owner_key drops telem_trade_id's (spool_id, seq) key of version 1: the sink now finds
 * owners by primary key, and the key cost a B-tree insert per trade_id. */
static int drop_v1_owner_key(MYSQL *m, char *err, size_t errlen)
{
    bool found;
    int rc = table_has_index(m, MARIADB_TABLE_TRADE_IDS, "spool_id,seq", false, false, &found, err,
                             errlen);
    if (rc == 0 && found)
        rc = schema_exec(m, "ALTER TABLE " MARIADB_TABLE_TRADE_IDS " DROP INDEX IF EXISTS owner",
                         err, errlen);
    return rc;
}

/*
 * upgrade_v1_keys moves a data table from the version 1 keys (PRIMARY KEY (spool_id, seq[,
 * time]), a trade_id key on the table, a secondary index per profile and time) to the version 2
 * key, in one ALTER TABLE that rebuilds it. Tables telem made get the new primary key; adopted
 * tables (their own id primary key) get it as the unique key telem_row. The trade_id register
 * is filled from the trades by the caller.
 */
static int upgrade_v1_keys(MYSQL *m, const char *table, char *err, size_t errlen)
{
    struct table_info *t = xmalloc(sizeof(*t));
    struct sql_text s = {0};
    int rc = table_inspect(m, table, t, err, errlen);
    if (rc < 0 || !t->exists)
        goto done;
    bool trades = strcmp(table, MARIADB_TABLE_TRADES) == 0;
    const char *key = trades ? TRADE_KEY : METRIC_KEY;
    bool done_already;
    rc = table_has_index(m, table, key, true, false, &done_already, err, errlen);
    if (rc < 0 || done_already)
        goto done;
    sql_add(&s, "ALTER TABLE %s ", table);
    if (table_column(t, "id"))
        sql_add(&s, "DROP INDEX IF EXISTS telem_row, ADD UNIQUE KEY telem_row (%s)", key);
    else
        sql_add(&s, "DROP PRIMARY KEY, ADD PRIMARY KEY (%s)", key);
    if (trades)
        sql_add(&s, ", DROP INDEX IF EXISTS trade_id_per_profile, DROP INDEX IF EXISTS "
                    "trade_id_lookup, DROP INDEX IF EXISTS profile_time");
    else
        sql_add(&s, ", DROP INDEX IF EXISTS profile_name_time");
    LOG_INFO("mariadb", "schema version 2: rebuilding %s with its new key: %s", table, s.p);
    rc = schema_exec(m, s.p, err, errlen);
done:
    free(s.p);
    free(t);
    return rc;
}

/*
 * fill_trade_ids registers the trade_ids of stored trades (the version 1 to 2 upgrade). Version 1
 * stored each (profile, trade_id) once (a unique key, or this register when partitioned), so no
 * order is needed to pick the first writer: the table is read as it lies, with no sort.
 */
static int fill_trade_ids(MYSQL *m, char *err, size_t errlen)
{
    static const char sql[] =
        "INSERT INTO " MARIADB_TABLE_TRADE_IDS " (profile_id, trade_id, spool_id, seq, closed_at) "
        "SELECT profile_id, trade_id, spool_id, seq, closed_at FROM " MARIADB_TABLE_TRADES
        " WHERE trade_id IS NOT NULL AND profile_id IS NOT NULL AND spool_id IS NOT NULL AND "
        "seq IS NOT NULL AND closed_at IS NOT NULL "
        "ON DUPLICATE KEY UPDATE seq = " MARIADB_TABLE_TRADE_IDS ".seq";
    int rc = schema_exec(m, sql, err, errlen);
    if (rc == 0)
        rc = schema_exec(m, "COMMIT", err, errlen);
    return rc;
}

static int schema_version(MYSQL *m, int *version, char *err, size_t errlen)
{
    MYSQL_RES *res;
    int rc = schema_select(m,
                           "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                           "DATABASE() AND TABLE_NAME = '" MARIADB_TABLE_SCHEMA "'",
                           &res, err, errlen);
    if (rc < 0)
        return rc;
    MYSQL_ROW row = mysql_fetch_row(res);
    bool exists = row && row[0] && strcmp(row[0], "0") != 0;
    mysql_free_result(res);
    *version = 0;
    if (!exists)
        return 0;
    rc = schema_select(m, "SELECT IFNULL(MAX(version), 0) FROM " MARIADB_TABLE_SCHEMA, &res, err,
                       errlen);
    if (rc < 0)
        return rc;
    row = mysql_fetch_row(res);
    *version = row && row[0] ? atoi(row[0]) : 0;
    mysql_free_result(res);
    return 0;
}

int mariadb_schema_describe(MYSQL *m, struct mariadb_schema_shape *shape, char *err, size_t errlen)
{
    memset(shape, 0, sizeof(*shape));
    struct table_info *t = xmalloc(sizeof(*t));
    int rc = schema_version(m, &shape->version, err, errlen);
    if (rc < 0)
        goto done;
    rc = table_inspect(m, MARIADB_TABLE_TRADES, t, err, errlen);
    if (rc < 0)
        goto done;
    bool trades = t->exists;
    shape->trades_partitioned = t->partitioned;
    shape->adopted = table_column(t, "id") != NULL;
    rc = table_inspect(m, MARIADB_TABLE_METRICS, t, err, errlen);
    if (rc < 0)
        goto done;
    bool metrics = t->exists;
    shape->metrics_partitioned = t->partitioned;
    rc = table_inspect(m, MARIADB_TABLE_CURSORS, t, err, errlen);
    if (rc < 0)
        goto done;
    bool cursors = t->exists;
    rc = table_inspect(m, MARIADB_TABLE_TRADE_IDS, t, err, errlen);
    if (rc < 0)
        goto done;
    shape->tables = trades && metrics && cursors && t->exists;
done:
    free(t);
    return rc;
}

static int migrate_locked(MYSQL *m, const struct mariadb_schema_options *opt, char *err,
                          size_t errlen)
{
    int version;
    int rc = schema_version(m, &version, err, errlen);
    if (rc < 0)
        return rc;
    if (version > MARIADB_SCHEMA_VERSION) {
        snprintf(err, errlen,
                 "mariadb: the database's schema is version %d, newer than this telem knows (%d); "
                 "upgrade telem",
                 version, MARIADB_SCHEMA_VERSION);
        return -EPROTO;
    }
    int64_t now_us = mariadb_time_us(clock_wall_ns());

    if (version == 1) {
        rc = upgrade_v1_keys(m, MARIADB_TABLE_TRADES, err, errlen);
        if (rc == 0)
            rc = upgrade_v1_keys(m, MARIADB_TABLE_METRICS, err, errlen);
        if (rc == 0)
            rc = ensure_small_tables(m, false, err, errlen);
        if (rc == 0)
            rc = drop_v1_owner_key(m, err, errlen);
        if (rc == 0)
            rc = fill_trade_ids(m, err, errlen);
        if (rc < 0)
            return rc;
    }
    rc = ensure_data_table(m, MARIADB_TABLE_TRADES, opt, now_us, err, errlen);
    if (rc == 0)
        rc = ensure_data_table(m, MARIADB_TABLE_METRICS, opt, now_us, err, errlen);
    if (rc < 0)
        return rc;
    struct mariadb_schema_shape shape;
    rc = mariadb_schema_describe(m, &shape, err, errlen);
    if (rc == 0)
        rc = ensure_small_tables(m, shape.trades_partitioned, err, errlen);
    if (rc == 0 && (shape.trades_partitioned || shape.metrics_partitioned))
        rc = mariadb_schema_ensure_partitions(m, opt, now_us, err, errlen);
    if (rc == 0)
        rc = schema_exec(m,
                         "CREATE TABLE IF NOT EXISTS " MARIADB_TABLE_SCHEMA " ("
                         "version INT NOT NULL PRIMARY KEY, applied_at DATETIME(6) NOT NULL, "
                         "note VARCHAR(200) NOT NULL DEFAULT '')" TABLE_OPTIONS,
                         err, errlen);
    if (rc < 0 || version == MARIADB_SCHEMA_VERSION)
        return rc;
    char sql[256];
    snprintf(sql, sizeof(sql),
             "INSERT INTO " MARIADB_TABLE_SCHEMA " (version, applied_at, note) VALUES (%d, "
             "UTC_TIMESTAMP(6), '%s') ON DUPLICATE KEY UPDATE version = version",
             MARIADB_SCHEMA_VERSION,
             version ? "upgraded from version 1"
                     : (shape.adopted ? "adopted existing tables" : "created"));
    rc = schema_exec(m, sql, err, errlen);
    if (rc == 0)
        rc = schema_exec(m, "COMMIT", err, errlen);
    if (rc == 0)
        LOG_INFO("mariadb", "schema at version %d", MARIADB_SCHEMA_VERSION);
    return rc;
}

int mariadb_schema_migrate(MYSQL *m, const struct mariadb_schema_options *opt, char *err,
                           size_t errlen)
{
    MYSQL_RES *res;
    /* End any snapshot the connection holds, then serialize with other migrators. */
    int rc = schema_exec(m, "COMMIT", err, errlen);
    if (rc < 0)
        return rc;
    rc = schema_select(m, "SELECT GET_LOCK(CONCAT('telem_migrate.', IFNULL(DATABASE(), '')), 120)",
                       &res, err, errlen);
    if (rc < 0)
        return rc;
    MYSQL_ROW row = mysql_fetch_row(res);
    bool locked = row && row[0] && strcmp(row[0], "1") == 0;
    mysql_free_result(res);
    if (!locked) {
        snprintf(err, errlen, "mariadb: another process held the migration lock for 120 s");
        return -EIO;
    }
    rc = migrate_locked(m, opt, err, errlen);
    if (rc < 0)
        mysql_query(m, "ROLLBACK");
    char ignored[256];
    if (schema_select(m, "SELECT RELEASE_LOCK(CONCAT('telem_migrate.', IFNULL(DATABASE(), '')))",
                      &res, ignored, sizeof(ignored)) == 0)
        mysql_free_result(res);
    return rc;
}

/* ---- Cursors ---- */

static void hex16(const uint8_t *id, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = digits[id[i] >> 4];
        out[2 * i + 1] = digits[id[i] & 15];
    }
    out[32] = '\0';
}

int mariadb_schema_cursor_read(MYSQL *m, const uint8_t *spool_id, const char *name,
                               const char *fallback_prefix, uint64_t *seq, bool *found, char *err,
                               size_t errlen)
{
    char hex[33], qname[2 * MARIADB_CURSOR_NAME_MAX + 8], sql[1024];
    hex16(spool_id, hex);
    size_t nlen = strnlen(name, MARIADB_CURSOR_NAME_MAX);
    mariadb_schema_quote(name, nlen, qname);
    *seq = 0;
    *found = false;
    snprintf(sql, sizeof(sql),
             "SELECT seq FROM " MARIADB_TABLE_CURSORS " WHERE spool_id = X'%s' AND sink = %s", hex,
             qname);
    MYSQL_RES *res;
    int rc = schema_select(m, sql, &res, err, errlen);
    if (rc < 0)
        return rc;
    MYSQL_ROW row = mysql_fetch_row(res);
    if (row && row[0]) {
        *seq = strtoull(row[0], NULL, 10);
        *found = true;
    }
    mysql_free_result(res);

    if (!*found && fallback_prefix) {
        /* LIKE needs its own escaping of % and _ in the prefix. */
        char like[2 * MARIADB_CURSOR_NAME_MAX + 4], qprefix[2 * MARIADB_CURSOR_NAME_MAX + 8],
            qlike[4 * MARIADB_CURSOR_NAME_MAX + 16];
        size_t l = 0;
        for (const char *p = fallback_prefix; *p && l < sizeof(like) - 4; p++) {
            if (*p == '%' || *p == '_' || *p == '|')
                like[l++] = '|';
            like[l++] = *p;
        }
        like[l++] = ':';
        like[l++] = '%';
        like[l] = '\0';
        mariadb_schema_quote(fallback_prefix, strnlen(fallback_prefix, MARIADB_CURSOR_NAME_MAX),
                             qprefix);
        mariadb_schema_quote(like, l, qlike);
        snprintf(sql, sizeof(sql),
                 "SELECT MIN(seq) FROM " MARIADB_TABLE_CURSORS " WHERE spool_id = X'%s' AND "
                 "(sink = %s OR sink LIKE %s ESCAPE '|')",
                 hex, qprefix, qlike);
        rc = schema_select(m, sql, &res, err, errlen);
        if (rc < 0)
            return rc;
        row = mysql_fetch_row(res);
        if (row && row[0]) {
            *seq = strtoull(row[0], NULL, 10);
            *found = true;
        }
        mysql_free_result(res);
    }
    return schema_exec(m, "COMMIT", err, errlen);
}
