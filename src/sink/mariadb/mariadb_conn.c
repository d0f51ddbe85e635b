/*
 * mariadb_conn.c: opening, checking and closing the sink's connections, and sorting MariaDB's
 * error numbers into data, transient and connection faults (see mariadb_conn.h).
 */
#include "sink/mariadb/mariadb_conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errmsg.h>
#include <mysqld_error.h>

#include "core/alloc.h"

/* Session settings every connection gets before it is lent out (two statements: the isolation
 * level has its own SET syntax on both MariaDB and MySQL). */
static const char *const session_sql[] = {
    "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION', "
    "SESSION time_zone = '+00:00'",
    "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
};

static bool server_has_bulk(MYSQL *m)
{
    unsigned long caps = 0, ext = 0;
    if (mariadb_get_infov(m, MARIADB_CONNECTION_SERVER_CAPABILITIES, &caps) ||
        mariadb_get_infov(m, MARIADB_CONNECTION_EXTENDED_SERVER_CAPABILITIES, &ext))
        return false;
    return !(caps & CLIENT_MYSQL) && (ext & (MARIADB_CLIENT_STMT_BULK_OPERATIONS >> 32));
}

int mariadb_conn_open(const struct mariadb_conn_options *o, struct mariadb_conn **out, char *err,
                      size_t errlen)
{
    *out = NULL;
    MYSQL *m = mysql_init(NULL);
    if (!m) {
        snprintf(err, errlen, "mariadb: out of memory");
        return -ENOMEM;
    }
    my_bool off = 0, on = 1;
    unsigned int no_infile = 0;
    mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    mysql_options(m, MYSQL_OPT_RECONNECT, &off);
    mysql_options(m, MYSQL_OPT_LOCAL_INFILE, &no_infile);
    if (o->connect_timeout_s)
        mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &o->connect_timeout_s);
    if (o->read_timeout_s)
        mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &o->read_timeout_s);
    if (o->write_timeout_s)
        mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &o->write_timeout_s);
    if (o->tls) {
        mysql_ssl_set(m, o->tls_key, o->tls_cert, o->tls_ca, NULL, NULL);
        mysql_options(m, MYSQL_OPT_SSL_ENFORCE, &on);
        mysql_options(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, o->tls_verify ? &on : &off);
    }

    const struct mariadb_url *u = o->url;
    const char *host = u->socket[0] ? "localhost" : u->host;
    if (!mysql_real_connect(m, host, u->user, o->password ? o->password : "", u->db, u->port,
                            u->socket[0] ? u->socket : NULL, 0)) {
        unsigned code = mysql_errno(m);
        if (u->socket[0])
            snprintf(err, errlen, "mariadb %s@%s: %s (error %u)", u->user, u->socket,
                     mysql_error(m), code);
        else
            snprintf(err, errlen, "mariadb %s@%s:%u: %s (error %u)", u->user, u->host, u->port,
                     mysql_error(m), code);
        mysql_close(m);
        return code == ER_ACCESS_DENIED_ERROR || code == ER_DBACCESS_DENIED_ERROR ? -EACCES
                                                                                  : -ECONNREFUSED;
    }
    if (mysql_query(m, session_sql[0]) != 0 || mysql_query(m, session_sql[1]) != 0 ||
        mysql_autocommit(m, o->autocommit ? 1 : 0) != 0) {
        snprintf(err, errlen, "mariadb: setting up the session: %s (error %u)", mysql_error(m),
                 mysql_errno(m));
        mysql_close(m);
        return -ECONNREFUSED;
    }
    struct mariadb_conn *c = xcalloc(1, sizeof(*c));
    c->mysql = m;
    c->bulk = o->want_bulk && server_has_bulk(m);
    *out = c;
    return 0;
}

int mariadb_conn_ping(struct mariadb_conn *c)
{
    return mysql_ping(c->mysql) == 0 ? 0 : -EIO;
}

void mariadb_conn_close(struct mariadb_conn *c)
{
    if (!c)
        return;
    for (unsigned i = 0; i < MARIADB_CONN_STMTS; i++) {
        if (c->stmt[i])
            mysql_stmt_close(c->stmt[i]);
    }
    mysql_close(c->mysql);
    free(c);
}

MYSQL *mariadb_conn_release(struct mariadb_conn *c)
{
    MYSQL *m = c->mysql;
    free(c);
    return m;
}

MYSQL_STMT *mariadb_conn_stmt(struct mariadb_conn *c, unsigned slot, const char *sql,
                              unsigned *code, char *err, size_t errlen)
{
    if (c->stmt[slot])
        return c->stmt[slot];
    MYSQL_STMT *st = mysql_stmt_init(c->mysql);
    if (!st) {
        *code = mysql_errno(c->mysql);
        snprintf(err, errlen, "mariadb: mysql_stmt_init: %s", mysql_error(c->mysql));
        return NULL;
    }
    if (mysql_stmt_prepare(st, sql, strlen(sql)) != 0) {
        *code = mysql_stmt_errno(st);
        snprintf(err, errlen, "mariadb: preparing %.60s...: %s (error %u)", sql,
                 mysql_stmt_error(st), *code);
        mysql_stmt_close(st);
        return NULL;
    }
    c->stmt[slot] = st;
    return st;
}

enum mariadb_fault mariadb_conn_fault(unsigned code)
{
    switch (code) {
    /* What is in the rows: strict mode refuses the value, whichever row it is in. */
    case ER_DATA_TOO_LONG:
    case ER_WARN_DATA_OUT_OF_RANGE:
    case WARN_DATA_TRUNCATED:
    case ER_TRUNCATED_WRONG_VALUE:
    case ER_TRUNCATED_WRONG_VALUE_FOR_FIELD:
    case ER_BAD_NULL_ERROR:
    case ER_WARN_NULL_TO_NOTNULL:
    case ER_NO_DEFAULT_FOR_FIELD:
    case ER_DIVISION_BY_ZERO:
    case ER_INVALID_CHARACTER_STRING:
    case ER_ILLEGAL_VALUE_FOR_TYPE:
    case ER_WRONG_VALUE_FOR_TYPE:
    case ER_WRONG_VALUE:
    case ER_DATETIME_FUNCTION_OVERFLOW:
    case ER_DUP_ENTRY:
    case ER_DUP_ENTRY_WITH_KEY_NAME:
    case ER_NO_PARTITION_FOR_GIVEN_VALUE:
    case ER_CONSTRAINT_FAILED:
        return MARIADB_FAULT_DATA;

    /* The server is there but busy or blocked: the same batch may pass later. */
    case ER_LOCK_WAIT_TIMEOUT:
    case ER_LOCK_DEADLOCK:
    case ER_LOCK_TABLE_FULL:
    case ER_CON_COUNT_ERROR:
    case ER_TOO_MANY_USER_CONNECTIONS:
    case ER_RECORD_FILE_FULL:
    case ER_OPTION_PREVENTS_STATEMENT:
    case ER_STATEMENT_TIMEOUT:
        return MARIADB_FAULT_TRANSIENT;

    /* Statements are stale (a table changed under them): start over on a new connection. */
    case ER_NEED_REPREPARE:
    case ER_NO_SUCH_TABLE:
    case ER_BAD_FIELD_ERROR:
    case ER_SERVER_SHUTDOWN:
    case ER_CONNECTION_KILLED:
    case ER_QUERY_INTERRUPTED:
    case ER_NET_READ_ERROR:
    case ER_NET_READ_INTERRUPTED:
    case ER_NET_ERROR_ON_WRITE:
    case ER_NET_WRITE_INTERRUPTED:
    case ER_NET_PACKETS_OUT_OF_ORDER:
    case ER_NET_PACKET_TOO_LARGE:
        return MARIADB_FAULT_CONNECTION;
    default:
        break;
    }
    /* Client-side errors (2000-2999, and the connector's own 5000s) leave the protocol state
     * unknown; anything else the server says is assumed to pass rather than to be the data's
     * fault, so that a server problem never sends good records to quarantine. */
    if ((code >= CR_MIN_ERROR && code <= CR_MAX_ERROR) || (code >= 5000 && code < 6000))
        return MARIADB_FAULT_CONNECTION;
    return MARIADB_FAULT_TRANSIENT;
}
