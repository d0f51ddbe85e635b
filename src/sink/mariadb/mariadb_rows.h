/*
 * mariadb_rows.h: column arrays of one table's next chunk of rows, and the two ways of sending
 * them: array binding (COM_STMT_BULK_EXECUTE, MariaDB) or a multi-row INSERT text (MySQL, or
 * insert_mode = multirow).
 *
 * Each sink lane owns one struct mariadb_rows per table, allocated once with room for
 * rows_per_execute rows, so the write path fills arrays and never allocates. The arrays are
 * column-wise as Connector/C wants them: strings and DATETIMEs as arrays of pointers (strings
 * point straight into the borrowed records, which outlive the execute), numbers as arrays of
 * values, NULLs as indicator bytes. Every insert ends `ON DUPLICATE KEY UPDATE seq = seq`, so
 * a row whose key is already there changes nothing, while strict mode still refuses bad values.
 */
#ifndef TELEM_SINK_MARIADB_MARIADB_ROWS_H
#define TELEM_SINK_MARIADB_MARIADB_ROWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mysql.h>

#include "sink/mariadb/mariadb_conn.h"

enum mariadb_col_type {
    MARIADB_COL_BINARY,   /* bytes, sent as a blob (spool_id) */
    MARIADB_COL_U64,      /* BIGINT UNSIGNED */
    MARIADB_COL_TEXT,     /* VARCHAR, utf8mb4 */
    MARIADB_COL_DOUBLE,   /* DOUBLE */
    MARIADB_COL_DATETIME, /* DATETIME(6) */
};

#define MARIADB_ROWS_COLS_MAX 16

struct mariadb_col_def {
    const char *name;
    enum mariadb_col_type type;
    unsigned max_len; /* TEXT and BINARY: longest value in bytes */
    bool nullable;
};

struct mariadb_table_def {
    const char *table;
    unsigned ncols;
    struct mariadb_col_def cols[MARIADB_ROWS_COLS_MAX];
};

/* The tables the write path inserts into; also the statement slots of struct mariadb_conn. */
enum mariadb_rows_table {
    MARIADB_ROWS_TRADES = 0,
    MARIADB_ROWS_METRICS = 1,
    MARIADB_ROWS_TRADE_IDS = 2, /* telem_trade_id, the register of trade_ids */
    MARIADB_ROWS_TABLES = 3,
};

/* Column positions, in the order of mariadb_rows_defs[]. */
enum mariadb_trade_col {
    MARIADB_TRADE_SPOOL_ID = 0,
    MARIADB_TRADE_SEQ,
    MARIADB_TRADE_PROFILE,
    MARIADB_TRADE_SCRIPT,
    MARIADB_TRADE_SYMBOL,
    MARIADB_TRADE_SIDE,
    MARIADB_TRADE_QTY,
    MARIADB_TRADE_ENTRY_PRICE,
    MARIADB_TRADE_EXIT_PRICE,
    MARIADB_TRADE_PNL,
    MARIADB_TRADE_FEES,
    MARIADB_TRADE_OPENED_AT,
    MARIADB_TRADE_CLOSED_AT,
    MARIADB_TRADE_TRADE_ID,
};

enum mariadb_metric_col {
    MARIADB_METRIC_SPOOL_ID = 0,
    MARIADB_METRIC_SEQ,
    MARIADB_METRIC_PROFILE,
    MARIADB_METRIC_SCRIPT,
    MARIADB_METRIC_NAME,
    MARIADB_METRIC_VALUE,
    MARIADB_METRIC_TS,
};

enum mariadb_trade_id_col {
    MARIADB_TID_PROFILE = 0,
    MARIADB_TID_TRADE_ID,
    MARIADB_TID_SPOOL_ID,
    MARIADB_TID_SEQ,
    MARIADB_TID_CLOSED_AT,
};

extern const struct mariadb_table_def mariadb_rows_defs[MARIADB_ROWS_TABLES];

struct mariadb_col {
    const char **text;       /* TEXT, BINARY */
    unsigned long *len;      /* TEXT, BINARY */
    double *num;             /* DOUBLE */
    unsigned long long *u64; /* U64 */
    MYSQL_TIME *time;        /* DATETIME values ... */
    MYSQL_TIME **time_ptr;   /* ... and the pointers array binding wants */
    char *ind;               /* nullable columns: STMT_INDICATOR_NONE or STMT_INDICATOR_NULL */
};

struct mariadb_rows {
    const struct mariadb_table_def *def;
    enum mariadb_rows_table which;
    unsigned n;   /* rows filled */
    unsigned cap; /* rows per execute */
    struct mariadb_col col[MARIADB_ROWS_COLS_MAX];
    MYSQL_BIND bind[MARIADB_ROWS_COLS_MAX];
    char *prepare_sql; /* INSERT ... VALUES (?, ...) ON DUPLICATE KEY UPDATE seq = seq */
    char *text;        /* multi-row INSERT being built; NULL until the first one */
    size_t text_cap;   /* its size, enough for cap rows of the longest values */
    uint64_t affected; /* rows the last executes inserted (duplicates count 0) */
};

/*
 * mariadb_rows_create allocates the arrays of one table for cap rows. Caller frees with
 * mariadb_rows_destroy.
 */
struct mariadb_rows *mariadb_rows_create(enum mariadb_rows_table which, unsigned cap);

/* mariadb_rows_destroy frees r. Accepts NULL. */
void mariadb_rows_destroy(struct mariadb_rows *r);

/* Setters for row r->n; mariadb_rows_next() then counts the row. Borrow text until execute. */
static inline void mariadb_rows_text(struct mariadb_rows *r, unsigned c, const char *s,
                                     unsigned len)
{
    r->col[c].text[r->n] = s;
    r->col[c].len[r->n] = len;
    if (r->col[c].ind)
        r->col[c].ind[r->n] = STMT_INDICATOR_NONE;
}

static inline void mariadb_rows_double(struct mariadb_rows *r, unsigned c, double v)
{
    r->col[c].num[r->n] = v;
    if (r->col[c].ind)
        r->col[c].ind[r->n] = STMT_INDICATOR_NONE;
}

static inline void mariadb_rows_u64(struct mariadb_rows *r, unsigned c, uint64_t v)
{
    r->col[c].u64[r->n] = v;
}

/* mariadb_rows_time returns the DATETIME of row r->n in column c, to be filled in place. */
static inline MYSQL_TIME *mariadb_rows_time(struct mariadb_rows *r, unsigned c)
{
    if (r->col[c].ind)
        r->col[c].ind[r->n] = STMT_INDICATOR_NONE;
    return &r->col[c].time[r->n];
}

static inline void mariadb_rows_null(struct mariadb_rows *r, unsigned c)
{
    r->col[c].ind[r->n] = STMT_INDICATOR_NULL;
}

/* mariadb_rows_next counts the row just filled and says whether the chunk is now full. */
static inline bool mariadb_rows_next(struct mariadb_rows *r)
{
    return ++r->n == r->cap;
}

/*
 * mariadb_rows_execute sends the filled rows over c (array binding when c->bulk, else one
 * multi-row INSERT) and empties r. Borrows c. Returns 0, or -EIO with the error number in *code
 * and err filled. The rows become part of c's open transaction.
 */
int mariadb_rows_execute(struct mariadb_rows *r, struct mariadb_conn *c, unsigned *code, char *err,
                         size_t errlen);

#endif
