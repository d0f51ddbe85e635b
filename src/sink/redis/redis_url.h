/*
 * redis_url.h: the address of a Redis server, parsed from the URL a [sink.NAME] section or
 * `telemctl redis` is given. Pure: a string in, a struct out, no I/O and no allocation.
 *
 * Accepted forms (DESIGN.md, "Configuration"):
 *   redis://host[:port][/db]                  TCP, port 6379 and db 0 by default
 *   redis://[user][:password]@host[:port][/db]  credentials in the URL (the `password` setting or
 *                                             TELEM_<NAME>_PASSWORD is the better place)
 *   redis://[::1]:6380/2                      an IPv6 literal in brackets
 *   redis:///path/to.sock[?db=N]              a unix socket (empty host, absolute path)
 *   redis://localhost/db?socket=/path/to.sock the MariaDB-style spelling of the same
 * User, password and socket path may carry %XX escapes. Unknown query keys are errors, so a typo
 * is reported instead of ignored.
 */
#ifndef TELEM_SINK_REDIS_URL_H
#define TELEM_SINK_REDIS_URL_H

#include <stdbool.h>
#include <stddef.h>

#define REDIS_URL_HOST_MAX     255
#define REDIS_URL_SOCKET_MAX   107 /* sun_path holds 108 bytes with the NUL */
#define REDIS_URL_USER_MAX     127
#define REDIS_URL_PASSWORD_MAX 255

struct redis_url {
    char host[REDIS_URL_HOST_MAX + 1];     /* "" when socket is set */
    char socket[REDIS_URL_SOCKET_MAX + 1]; /* "" for TCP */
    char user[REDIS_URL_USER_MAX + 1];     /* "" when absent (Redis < 6 style AUTH) */
    char password[REDIS_URL_PASSWORD_MAX + 1];
    bool has_password; /* a password was given, possibly empty */
    int port;          /* 1..65535; 6379 when absent */
    int db;            /* 0..2^31-1 as the URL says; SELECT checks the real limit */
};

/*
 * redis_url_parse fills out from url. Returns 0, or -EINVAL with err saying what is wrong
 * ("redis url: port must be 1..65535"). err never contains the password.
 */
int redis_url_parse(const char *url, struct redis_url *out, char *err, size_t errlen);

/*
 * redis_url_describe writes a printable form of u without its password ("127.0.0.1:6379/0",
 * "unix:/run/redis.sock/0") into buf, for logs and error messages. Returns buf.
 */
const char *redis_url_describe(const struct redis_url *u, char *buf, size_t len);

#endif
