/*
 * mariadb_conn.h: one connection to MariaDB/MySQL as the sink's pool holds it.
 *
 * The pool (src/pool) lends struct mariadb_conn, not a bare MYSQL *, so that the prepared
 * insert statements live and die with their connection: after a reconnect they are prepared
 * again on first use. A connection is set up for the write path once, when it is opened:
 * utf8mb4, UTC session time zone, sql_mode STRICT_ALL_TABLES (so a value a column cannot hold
 * is an error, never a silent truncation), READ COMMITTED, autocommit off (one explicit
 * transaction per batch), no automatic reconnect (it would silently drop a transaction), and
 * COM_STMT_BULK_EXECUTE when the server offers it and the sink asks for it.
 *
 * mariadb_conn_fault() sorts server and client error numbers into the three cases the sink
 * answers differently: the data (SINK_ERROR), a passing condition (SINK_RETRY), or a connection
 * that must be closed (SINK_RETRY and a broken verdict to the pool).
 */
#ifndef TELEM_SINK_MARIADB_MARIADB_CONN_H
#define TELEM_SINK_MARIADB_MARIADB_CONN_H

#include <stdbool.h>
#include <stddef.h>

#include <mysql.h>

#include "sink/mariadb/mariadb_url.h"

/* Insert statements a connection keeps prepared, by table (see mariadb_rows.h). */
#define MARIADB_CONN_STMTS 3

struct mariadb_conn_options {
    const struct mariadb_url *url;
    const char *password; /* may be NULL; never logged */
    unsigned connect_timeout_s;
    unsigned read_timeout_s;  /* 0: none */
    unsigned write_timeout_s; /* 0: none */
    bool tls;                 /* require TLS */
    bool tls_verify;          /* check the server's certificate and name */
    const char *tls_ca, *tls_cert, *tls_key;
    bool want_bulk;  /* use array binding with COM_STMT_BULK_EXECUTE when the server has it */
    bool autocommit; /* leave autocommit on (admin connections); the sink turns it off */
};

struct mariadb_conn {
    MYSQL *mysql;
    bool bulk; /* inserts go as COM_STMT_BULK_EXECUTE; else as multi-row INSERT text */
    MYSQL_STMT *stmt[MARIADB_CONN_STMTS];
};

enum mariadb_fault {
    MARIADB_FAULT_DATA = 0,   /* the rows: the store refuses what is in them */
    MARIADB_FAULT_TRANSIENT,  /* lock wait, deadlock, server busy: try the batch again */
    MARIADB_FAULT_CONNECTION, /* the connection is gone or in an unknown state: close it */
};

/*
 * mariadb_conn_open connects and sets the session up. Borrows o (and its strings). Returns 0
 * and *out (caller frees with mariadb_conn_close), or a negative errno with err filled: -EACCES
 * for refused credentials, -ECONNREFUSED for anything else. err never holds the password.
 */
int mariadb_conn_open(const struct mariadb_conn_options *o, struct mariadb_conn **out, char *err,
                      size_t errlen);

/* mariadb_conn_ping checks the connection (mysql_ping). Returns 0 when it is usable. */
int mariadb_conn_ping(struct mariadb_conn *c);

/* mariadb_conn_close closes the statements and the connection and frees c. Accepts NULL. */
void mariadb_conn_close(struct mariadb_conn *c);

/*
 * mariadb_conn_release frees c but not its MYSQL handle, which it returns (caller closes it
 * with mysql_close); for administrative users that need no prepared statements. c must not
 * have prepared any.
 */
MYSQL *mariadb_conn_release(struct mariadb_conn *c);

/*
 * mariadb_conn_stmt returns the statement kept in slot `slot`, preparing sql on first use.
 * Returns NULL with err filled (and the error number in *code) when preparing fails.
 */
MYSQL_STMT *mariadb_conn_stmt(struct mariadb_conn *c, unsigned slot, const char *sql,
                              unsigned *code, char *err, size_t errlen);

/* mariadb_conn_fault classifies a MariaDB/MySQL client or server error number. */
enum mariadb_fault mariadb_conn_fault(unsigned code);

#endif
