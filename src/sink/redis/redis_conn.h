/*
 * redis_conn.h: one blocking hiredis connection as the Redis sink and the rebuild use it:
 * connect over TCP or a unix socket with a timeout, AUTH, SELECT, PING, and the sorting of
 * Redis error replies into "try again later" and "this data is refused", which is what the
 * sink's RETRY and ERROR answers need.
 */
#ifndef TELEM_SINK_REDIS_CONN_H
#define TELEM_SINK_REDIS_CONN_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#include "sink/redis/redis_url.h"

struct redis_conn_options {
    const struct redis_url *url; /* borrowed */
    const char *password;        /* overrides the URL's password when not NULL; borrowed */
    unsigned connect_timeout_ms;
    unsigned command_timeout_ms; /* 0: no timeout */
};

/*
 * redis_conn_open connects, authenticates and selects the database. Returns the context
 * (caller frees with redisFree), or NULL with err filled ("redis 127.0.0.1:6379/0: Connection
 * refused", "...: WRONGPASS ..."). The password never appears in err.
 */
redisContext *redis_conn_open(const struct redis_conn_options *opt, char *err, size_t errlen);

/* redis_conn_ping sends PING. Returns 0 when the answer is PONG, -EIO otherwise. */
int redis_conn_ping(redisContext *c);

/*
 * redis_conn_reply_check sorts a reply. Returns 0 for a reply that is not an error;
 * -EIO when reply is NULL (the connection failed: c->errstr says why, the context is unusable);
 * -ENOENT for NOSCRIPT (load the script and call again); -EAGAIN for a server that cannot take
 * the command now (OOM, LOADING, BUSY, READONLY, MASTERDOWN, NOAUTH, WRONGPASS, MISCONF,
 * "max number of clients"); -EINVAL for any other error (the command or its data was refused).
 * Fills err for every non-zero return, with what the server said.
 */
int redis_conn_reply_check(const redisContext *c, const redisReply *reply, char *err,
                           size_t errlen);

#endif
