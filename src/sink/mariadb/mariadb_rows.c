/*
 * mariadb_rows.c: column arrays per table and their execution by array binding or as one
 * multi-row INSERT (see mariadb_rows.h).
 */
#include "sink/mariadb/mariadb_rows.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/record.h"
#include "sink/mariadb/mariadb_schema.h"
#include "sink/mariadb/mariadb_time.h"

#define SPOOL_ID_BYTES 16

const struct mariadb_table_def mariadb_rows_defs[MARIADB_ROWS_TABLES] = {
    [MARIADB_ROWS_TRADES] = {MARIADB_TABLE_TRADES,
                             14,
                             {
                                 {"spool_id", MARIADB_COL_BINARY, SPOOL_ID_BYTES, false},
                                 {"seq", MARIADB_COL_U64, 0, false},
                                 {"profile_id", MARIADB_COL_TEXT, REC_PROFILE_MAX, false},
                                 {"script", MARIADB_COL_TEXT, REC_SCRIPT_MAX, false},
                                 {"symbol", MARIADB_COL_TEXT, REC_SYMBOL_MAX, false},
                                 {"side", MARIADB_COL_TEXT, REC_SIDE_MAX, false},
                                 {"qty", MARIADB_COL_DOUBLE, 0, true},
                                 {"entry_price", MARIADB_COL_DOUBLE, 0, true},
                                 {"exit_price", MARIADB_COL_DOUBLE, 0, true},
                                 {"pnl", MARIADB_COL_DOUBLE, 0, true},
                                 {"fees", MARIADB_COL_DOUBLE, 0, true},
                                 {"opened_at", MARIADB_COL_DATETIME, 0, true},
                                 {"closed_at", MARIADB_COL_DATETIME, 0, false},
                                 {"trade_id", MARIADB_COL_TEXT, REC_TRADE_ID_MAX, true},
                             }},
    [MARIADB_ROWS_METRICS] = {MARIADB_TABLE_METRICS,
                              7,
                              {
                                  {"spool_id", MARIADB_COL_BINARY, SPOOL_ID_BYTES, false},
                                  {"seq", MARIADB_COL_U64, 0, false},
                                  {"profile_id", MARIADB_COL_TEXT, REC_PROFILE_MAX, false},
                                  {"script", MARIADB_COL_TEXT, REC_SCRIPT_MAX, false},
                                  {"name", MARIADB_COL_TEXT, REC_NAME_MAX, false},
                                  {"value", MARIADB_COL_DOUBLE, 0, false},
                                  {"ts", MARIADB_COL_DATETIME, 0, false},
                              }},
    [MARIADB_ROWS_TRADE_IDS] = {MARIADB_TABLE_TRADE_IDS,
                                5,
                                {
                                    {"profile_id", MARIADB_COL_TEXT, REC_PROFILE_MAX, false},
                                    {"trade_id", MARIADB_COL_TEXT, REC_TRADE_ID_MAX, false},
                                    {"spool_id", MARIADB_COL_BINARY, SPOOL_ID_BYTES, false},
                                    {"seq", MARIADB_COL_U64, 0, false},
                                    {"closed_at", MARIADB_COL_DATETIME, 0, false},
                                }},
};

static const char odku[] = " ON DUPLICATE KEY UPDATE seq = seq";

/* text_width is the most bytes one value of a column takes in the INSERT text. */
static size_t text_width(const struct mariadb_col_def *d)
{
    switch (d->type) {
    case MARIADB_COL_BINARY:
        return 3 + 2 * (size_t)d->max_len;
    case MARIADB_COL_U64:
        return 20;
    case MARIADB_COL_TEXT:
        /* Escaping at most doubles a byte; a NULL is shorter than the quotes of "". */
        return 2 + 2 * (size_t)d->max_len;
    case MARIADB_COL_DOUBLE:
        return 32;
    case MARIADB_COL_DATETIME:
        return 28;
    }
    return 32;
}

/* column_list writes "(a, b, c)" of the table's columns into out. */
static size_t column_list(const struct mariadb_table_def *def, char *out, size_t cap)
{
    size_t len = 0;
    len += (size_t)snprintf(out + len, cap - len, "(");
    for (unsigned i = 0; i < def->ncols; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? ", " : "", def->cols[i].name);
    len += (size_t)snprintf(out + len, cap - len, ")");
    return len;
}

struct mariadb_rows *mariadb_rows_create(enum mariadb_rows_table which, unsigned cap)
{
    const struct mariadb_table_def *def = &mariadb_rows_defs[which];
    struct mariadb_rows *r = xcalloc(1, sizeof(*r));
    r->def = def;
    r->which = which;
    r->cap = cap;

    char cols[512];
    column_list(def, cols, sizeof(cols));
    size_t plen = strlen(def->table) + strlen(cols) + 4 * def->ncols + sizeof(odku) + 64;
    r->prepare_sql = xmalloc(plen);
    size_t len =
        (size_t)snprintf(r->prepare_sql, plen, "INSERT INTO %s %s VALUES (", def->table, cols);
    for (unsigned i = 0; i < def->ncols; i++)
        len += (size_t)snprintf(r->prepare_sql + len, plen - len, "%s?", i ? ", " : "");
    snprintf(r->prepare_sql + len, plen - len, ")%s", odku);

    size_t row_width = 3;
    for (unsigned i = 0; i < def->ncols; i++) {
        const struct mariadb_col_def *d = &def->cols[i];
        struct mariadb_col *c = &r->col[i];
        MYSQL_BIND *b = &r->bind[i];
        row_width += text_width(d) + 2;
        switch (d->type) {
        case MARIADB_COL_BINARY:
        case MARIADB_COL_TEXT:
            c->text = xcalloc(cap, sizeof(*c->text));
            c->len = xcalloc(cap, sizeof(*c->len));
            b->buffer_type = d->type == MARIADB_COL_BINARY ? MYSQL_TYPE_BLOB : MYSQL_TYPE_STRING;
            b->buffer = (void *)c->text;
            b->length = c->len;
            break;
        case MARIADB_COL_U64:
            c->u64 = xcalloc(cap, sizeof(*c->u64));
            b->buffer_type = MYSQL_TYPE_LONGLONG;
            b->buffer = c->u64;
            b->is_unsigned = 1;
            break;
        case MARIADB_COL_DOUBLE:
            c->num = xcalloc(cap, sizeof(*c->num));
            b->buffer_type = MYSQL_TYPE_DOUBLE;
            b->buffer = c->num;
            break;
        case MARIADB_COL_DATETIME:
            c->time = xcalloc(cap, sizeof(*c->time));
            c->time_ptr = xcalloc(cap, sizeof(*c->time_ptr));
            for (unsigned k = 0; k < cap; k++)
                c->time_ptr[k] = &c->time[k];
            b->buffer_type = MYSQL_TYPE_DATETIME;
            b->buffer = c->time_ptr;
            break;
        }
        if (d->nullable) {
            c->ind = xcalloc(cap, 1);
            b->u.indicator = c->ind;
        }
    }
    /* The text form is built only in multirow mode: allocated on its first use. */
    r->text_cap = strlen(r->prepare_sql) + (size_t)cap * row_width + 64;
    return r;
}

void mariadb_rows_destroy(struct mariadb_rows *r)
{
    if (!r)
        return;
    for (unsigned i = 0; i < r->def->ncols; i++) {
        struct mariadb_col *c = &r->col[i];
        free(c->text);
        free(c->len);
        free(c->num);
        free(c->u64);
        free(c->time);
        free(c->time_ptr);
        free(c->ind);
    }
    free(r->prepare_sql);
    free(r->text);
    free(r);
}

static int execute_bulk(struct mariadb_rows *r, struct mariadb_conn *c, unsigned *code, char *err,
                        size_t errlen)
{
    MYSQL_STMT *st = mariadb_conn_stmt(c, r->which, r->prepare_sql, code, err, errlen);
    if (!st)
        return -EIO;
    unsigned int n = r->n;
    if (mysql_stmt_attr_set(st, STMT_ATTR_ARRAY_SIZE, &n) || mysql_stmt_bind_param(st, r->bind) ||
        mysql_stmt_execute(st)) {
        *code = mysql_stmt_errno(st);
        snprintf(err, errlen, "mariadb: inserting %u rows into %s: %s (error %u)", n, r->def->table,
                 mysql_stmt_error(st), *code);
        return -EIO;
    }
    r->affected += mysql_stmt_affected_rows(st);
    return 0;
}

static const char hex_digits[] = "0123456789abcdef";

/* render_value appends row k of column i to p. */
static char *render_value(struct mariadb_rows *r, struct mariadb_conn *c, unsigned i, unsigned k,
                          char *p)
{
    const struct mariadb_col_def *d = &r->def->cols[i];
    struct mariadb_col *col = &r->col[i];
    if (col->ind && col->ind[k] == STMT_INDICATOR_NULL) {
        memcpy(p, "NULL", 4);
        return p + 4;
    }
    switch (d->type) {
    case MARIADB_COL_BINARY:
        *p++ = 'X';
        *p++ = '\'';
        for (unsigned long j = 0; j < col->len[k]; j++) {
            unsigned char b = (unsigned char)col->text[k][j];
            *p++ = hex_digits[b >> 4];
            *p++ = hex_digits[b & 15];
        }
        *p++ = '\'';
        return p;
    case MARIADB_COL_TEXT:
        *p++ = '\'';
        p += mysql_real_escape_string(c->mysql, p, col->text[k], col->len[k]);
        *p++ = '\'';
        return p;
    case MARIADB_COL_U64:
        return p + sprintf(p, "%llu", col->u64[k]);
    case MARIADB_COL_DOUBLE:
        /* An exponent makes it a DOUBLE literal, and 17 digits carry every bit of it. */
        return p + sprintf(p, "%.16e", col->num[k]);
    case MARIADB_COL_DATETIME:
        *p++ = '\'';
        p += mariadb_time_format(&col->time[k], p);
        *p++ = '\'';
        return p;
    }
    return p;
}

static int execute_text(struct mariadb_rows *r, struct mariadb_conn *c, unsigned *code, char *err,
                        size_t errlen)
{
    /* The prepared form up to "VALUES " is also the head of the text form. */
    const char *values = strstr(r->prepare_sql, "VALUES (");
    size_t head = (size_t)(values - r->prepare_sql) + strlen("VALUES ");
    if (!r->text)
        r->text = xmalloc(r->text_cap);
    char *p = r->text;
    memcpy(p, r->prepare_sql, head);
    p += head;
    for (unsigned k = 0; k < r->n; k++) {
        *p++ = k ? ',' : '(';
        if (k)
            *p++ = '(';
        for (unsigned i = 0; i < r->def->ncols; i++) {
            if (i)
                *p++ = ',';
            p = render_value(r, c, i, k, p);
        }
        *p++ = ')';
    }
    memcpy(p, odku, sizeof(odku));
    p += sizeof(odku) - 1;
    if (mysql_real_query(c->mysql, r->text, (unsigned long)(p - r->text)) != 0) {
        *code = mysql_errno(c->mysql);
        snprintf(err, errlen, "mariadb: inserting %u rows into %s: %s (error %u)", r->n,
                 r->def->table, mysql_error(c->mysql), *code);
        return -EIO;
    }
    r->affected += mysql_affected_rows(c->mysql);
    return 0;
}

int mariadb_rows_execute(struct mariadb_rows *r, struct mariadb_conn *c, unsigned *code, char *err,
                         size_t errlen)
{
    if (r->n == 0)
        return 0;
    int rc =
        c->bulk ? execute_bulk(r, c, code, err, errlen) : execute_text(r, c, code, err, errlen);
    r->n = 0;
    return rc;
}
