/*
 * redis_conn.c: opening a hiredis connection (timeouts, AUTH, SELECT) and classifying the
 * replies Redis answers with, for the sink and the rebuild. See redis_conn.h.
 */
#include "sink/redis/redis_conn.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

static struct timeval ms_to_timeval(unsigned ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

static bool starts_with(const char *s, size_t len, const char *word)
{
    size_t wl = strlen(word);
    return len >= wl && memcmp(s, word, wl) == 0;
}

int redis_conn_reply_check(const redisContext *c, const redisReply *reply, char *err, size_t errlen)
{
    static const char *const transient[] = {
        "OOM",        "LOADING",     "BUSY",       "READONLY",
        "MASTERDOWN", "NOAUTH",      "WRONGPASS",  "MISCONF",
        "TRYAGAIN",   "CLUSTERDOWN", "NOREPLICAS", "ERR max number of clients",
    };
    if (!reply) {
        snprintf(err, errlen, "%s", c && c->errstr[0] ? c->errstr : "connection lost");
        return -EIO;
    }
    if (reply->type != REDIS_REPLY_ERROR)
        return 0;
    snprintf(err, errlen, "%.*s", (int)(reply->len > 200 ? 200 : reply->len), reply->str);
    if (starts_with(reply->str, reply->len, "NOSCRIPT"))
        return -ENOENT;
    for (size_t i = 0; i < sizeof(transient) / sizeof(transient[0]); i++) {
        if (starts_with(reply->str, reply->len, transient[i]))
            return -EAGAIN;
    }
    return -EINVAL;
}

/* Runs one command built from argv and checks that it did not fail. */
static int conn_command(redisContext *c, int argc, const char **argv, const size_t *lens, char *err,
                        size_t errlen)
{
    redisReply *r = redisCommandArgv(c, argc, argv, lens);
    int rc = redis_conn_reply_check(c, r, err, errlen);
    if (r)
        freeReplyObject(r);
    return rc;
}

redisContext *redis_conn_open(const struct redis_conn_options *opt, char *err, size_t errlen)
{
    const struct redis_url *u = opt->url;
    char where[REDIS_URL_HOST_MAX + 32], why[200];
    struct timeval ctv = ms_to_timeval(opt->connect_timeout_ms ? opt->connect_timeout_ms : 2000);
    redisContext *c;

    redis_url_describe(u, where, sizeof(where));
    if (u->socket[0] != '\0')
        c = redisConnectUnixWithTimeout(u->socket, ctv);
    else
        c = redisConnectWithTimeout(u->host, u->port, ctv);
    if (!c) {
        snprintf(err, errlen, "redis %s: out of memory", where);
        return NULL;
    }
    if (c->err) {
        snprintf(err, errlen, "redis %s: %s", where, c->errstr);
        goto fail;
    }
    if (opt->command_timeout_ms && redisSetTimeout(c, ms_to_timeval(opt->command_timeout_ms))) {
        snprintf(err, errlen, "redis %s: cannot set timeout: %s", where, c->errstr);
        goto fail;
    }
    if (u->socket[0] == '\0')
        redisEnableKeepAlive(c);

    const char *password = opt->password ? opt->password : (u->has_password ? u->password : NULL);
    if (password) {
        const char *argv[3] = {"AUTH"};
        size_t lens[3] = {4};
        int argc = 1;
        if (u->user[0] != '\0') {
            argv[argc] = u->user;
            lens[argc++] = strlen(u->user);
        }
        argv[argc] = password;
        lens[argc++] = strlen(password);
        if (conn_command(c, argc, argv, lens, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "redis %s: AUTH: %s", where, why);
            goto fail;
        }
    }
    if (u->db != 0) {
        char db[16];
        snprintf(db, sizeof(db), "%d", u->db);
        const char *argv[2] = {"SELECT", db};
        size_t lens[2] = {6, strlen(db)};
        if (conn_command(c, 2, argv, lens, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "redis %s: SELECT: %s", where, why);
            goto fail;
        }
    }
    return c;

fail:
    redisFree(c);
    return NULL;
}

int redis_conn_ping(redisContext *c)
{
    redisReply *r = redisCommand(c, "PING");
    int ok = r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
    if (r)
        freeReplyObject(r);
    return ok ? 0 : -EIO;
}
