/*
 * mariadb_url.h: the URL of a MariaDB or MySQL server, as a [sink.NAME] section names it.
 *
 * Forms (DESIGN.md, "Configuration"):
 *   mariadb://USER@HOST[:PORT]/DB              TCP; HOST may be a name, IPv4 or [IPv6]
 *   mariadb://USER@localhost/DB?socket=/PATH   unix socket
 *   mariadb://USER@/DB?socket=/PATH            the same, host left out
 * USER, DB and the socket path may be percent-encoded. A password is never part of the URL
 * (URLs end up in process listings and logs): it comes from the sink's `password` setting,
 * which the config file or TELEM_<SINKNAME>_PASSWORD provides, and a URL that carries one is
 * refused with a message saying so. Other settings (TLS, pool size, ...) are sink settings too,
 * so an unknown query parameter is an error.
 *
 * The parser is pure: no I/O, no allocation; results go into fixed buffers.
 */
#ifndef TELEM_SINK_MARIADB_MARIADB_URL_H
#define TELEM_SINK_MARIADB_MARIADB_URL_H

#include <stddef.h>

#define MARIADB_URL_USER_MAX   128 /* bytes, without the NUL */
#define MARIADB_URL_HOST_MAX   255
#define MARIADB_URL_DB_MAX     64
#define MARIADB_URL_SOCKET_MAX 1024
#define MARIADB_URL_PORT       3306 /* when the URL names none */

struct mariadb_url {
    char user[MARIADB_URL_USER_MAX + 1];
    char host[MARIADB_URL_HOST_MAX + 1]; /* "" when left out; IPv6 without brackets */
    unsigned port;                       /* MARIADB_URL_PORT when left out */
    char db[MARIADB_URL_DB_MAX + 1];
    char socket[MARIADB_URL_SOCKET_MAX + 1]; /* "" for TCP */
};

/*
 * mariadb_url_parse parses url into *out. Borrows url. Returns 0, or -EINVAL with err saying
 * what is wrong (never quoting a password).
 */
int mariadb_url_parse(const char *url, struct mariadb_url *out, char *err, size_t errlen);

#endif
