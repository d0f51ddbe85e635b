/*
 * redis_url.c: parsing of redis:// URLs into struct redis_url (see redis_url.h for the forms).
 * Pure and bounded: every field is copied into the struct's fixed arrays, and an error message
 * never quotes the password.
 */
#include "core/percent.h"
#include "sink/redis/redis_url.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define REDIS_URL_SCHEME "redis://"

static int url_fail(char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "redis url: %s", what);
    return -EINVAL;
}

/* Parses a decimal number from s[0..len) within [min, max]. Returns 0 or -EINVAL. */
static int parse_number(const char *s, size_t len, long min, long max, int *out)
{
    long v = 0;
    if (len == 0 || len > 10)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    if (v < min || v > max)
        return -EINVAL;
    *out = (int)v;
    return 0;
}

static int parse_userinfo(const char *s, size_t len, struct redis_url *out, char *err,
                          size_t errlen)
{
    const char *colon = memchr(s, ':', len);
    size_t ulen = colon ? (size_t)(colon - s) : len;
    if (percent_decode(s, ulen, false, out->user, sizeof(out->user)) < 0)
        return url_fail(err, errlen, "user name is too long or badly escaped");
    if (colon) {
        size_t plen = len - ulen - 1;
        if (percent_decode(colon + 1, plen, false, out->password, sizeof(out->password)) < 0)
            return url_fail(err, errlen, "password is too long or badly escaped");
        out->has_password = true;
    }
    return 0;
}

static int parse_hostport(const char *s, size_t len, struct redis_url *out, char *err,
                          size_t errlen)
{
    const char *host = s, *port = NULL;
    size_t hlen = len, portlen = 0;

    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (!close)
            return url_fail(err, errlen, "unclosed '[' in host");
        host = s + 1;
        hlen = (size_t)(close - host);
        const char *after = close + 1;
        size_t rest = len - (size_t)(after - s);
        if (rest > 0) {
            if (after[0] != ':')
                return url_fail(err, errlen, "expected ':' after ']'");
            port = after + 1;
            portlen = rest - 1;
        }
    } else {
        const char *colon = memchr(s, ':', len);
        if (colon) {
            hlen = (size_t)(colon - s);
            port = colon + 1;
            portlen = len - hlen - 1;
        }
    }
    if (hlen == 0)
        return url_fail(err, errlen, "empty host");
    if (hlen > REDIS_URL_HOST_MAX)
        return url_fail(err, errlen, "host is too long");
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    if (port && parse_number(port, portlen, 1, 65535, &out->port) < 0)
        return url_fail(err, errlen, "port must be 1..65535");
    return 0;
}

static int parse_query(const char *q, size_t len, struct redis_url *out, char *err, size_t errlen)
{
    size_t i = 0;
    while (i < len) {
        const char *item = q + i;
        const char *amp = memchr(item, '&', len - i);
        size_t ilen = amp ? (size_t)(amp - item) : len - i;
        const char *eq = memchr(item, '=', ilen);
        if (!eq)
            return url_fail(err, errlen, "query item without '='");
        size_t klen = (size_t)(eq - item), vlen = ilen - klen - 1;
        if (klen == 2 && memcmp(item, "db", 2) == 0) {
            if (parse_number(eq + 1, vlen, 0, INT32_MAX, &out->db) < 0)
                return url_fail(err, errlen, "db must be a whole number");
        } else if (klen == 6 && memcmp(item, "socket", 6) == 0) {
            if (percent_decode(eq + 1, vlen, false, out->socket, sizeof(out->socket)) < 0)
                return url_fail(err, errlen, "socket path is too long or badly escaped");
        } else {
            return url_fail(err, errlen, "unknown query key (expected db or socket)");
        }
        i += ilen + (amp ? 1 : 0);
    }
    return 0;
}

int redis_url_parse(const char *url, struct redis_url *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->port = 6379;
    if (!url || strncmp(url, REDIS_URL_SCHEME, strlen(REDIS_URL_SCHEME)) != 0) {
        if (url && strncmp(url, "rediss://", 9) == 0)
            return url_fail(err, errlen, "TLS (rediss://) is not supported");
        return url_fail(err, errlen, "must start with redis://");
    }
    const char *s = url + strlen(REDIS_URL_SCHEME);
    size_t len = strlen(s);
    const char *qmark = memchr(s, '?', len);
    size_t before_query = qmark ? (size_t)(qmark - s) : len;
    const char *slash = memchr(s, '/', before_query);
    size_t alen = slash ? (size_t)(slash - s) : before_query;
    const char *path = slash ? slash + 1 : NULL;
    size_t pathlen = slash ? before_query - alen - 1 : 0;

    if (alen == 0) {
        /* redis:///path/to.sock: the path, with its leading slash, names the socket. */
        if (!slash || pathlen == 0)
            return url_fail(err, errlen, "needs a host or a socket path");
        if (percent_decode(slash, pathlen + 1, false, out->socket, sizeof(out->socket)) < 0)
            return url_fail(err, errlen, "socket path is too long or badly escaped");
    } else {
        const char *at = NULL;
        for (size_t i = alen; i > 0; i--) {
            if (s[i - 1] == '@') {
                at = s + i - 1;
                break;
            }
        }
        const char *hp = s;
        if (at) {
            int rc = parse_userinfo(s, (size_t)(at - s), out, err, errlen);
            if (rc < 0)
                return rc;
            hp = at + 1;
        }
        int rc = parse_hostport(hp, alen - (size_t)(hp - s), out, err, errlen);
        if (rc < 0)
            return rc;
        if (pathlen > 0 && parse_number(path, pathlen, 0, INT32_MAX, &out->db) < 0)
            return url_fail(err, errlen, "the path must be a database number");
    }
    if (qmark) {
        int rc = parse_query(qmark + 1, len - before_query - 1, out, err, errlen);
        if (rc < 0)
            return rc;
    }
    if (out->socket[0] != '\0') {
        if (out->socket[0] != '/')
            return url_fail(err, errlen, "socket path must be absolute");
        out->host[0] = '\0';
    }
    return 0;
}

const char *redis_url_describe(const struct redis_url *u, char *buf, size_t len)
{
    if (u->socket[0] != '\0')
        snprintf(buf, len, "unix:%s/%d", u->socket, u->db);
    else if (strchr(u->host, ':'))
        snprintf(buf, len, "[%s]:%d/%d", u->host, u->port, u->db);
    else
        snprintf(buf, len, "%s:%d/%d", u->host, u->port, u->db);
    return buf;
}
