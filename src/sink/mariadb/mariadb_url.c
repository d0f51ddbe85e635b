/*
 * mariadb_url.c: parsing mariadb:// URLs into their parts (see mariadb_url.h). Pure: the input
 * is read once, left to right, and decoded into the caller's fixed buffers.
 */
#include "core/percent.h"
#include "sink/mariadb/mariadb_url.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char scheme[] = "mariadb://";

/* url_part decodes one part and words the error. */
static int url_part(const char *what, const char *s, size_t len, char *out, size_t cap, char *err,
                    size_t errlen)
{
    int rc = percent_decode(s, len, false, out, cap);
    if (rc == -ENAMETOOLONG)
        snprintf(err, errlen, "mariadb URL: the %s is longer than %zu bytes", what, cap - 1);
    else if (rc < 0)
        snprintf(err, errlen, "mariadb URL: the %s has a bad %%-escape", what);
    return rc < 0 ? -EINVAL : 0;
}

/* url_port parses the decimal port s[0..len). */
static int url_port(const char *s, size_t len, unsigned *port)
{
    if (len == 0 || len > 5)
        return -EINVAL;
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return -EINVAL;
    *port = v;
    return 0;
}

/* url_authority parses [USER@]HOST[:PORT] in s[0..len). */
static int url_authority(const char *s, size_t len, struct mariadb_url *out, char *err,
                         size_t errlen)
{
    const char *at = memchr(s, '@', len);
    if (!at) {
        snprintf(err, errlen, "mariadb URL: no user (mariadb://USER@HOST/DB)");
        return -EINVAL;
    }
    /* The last '@' ends the user part: a user name may contain an encoded one only. */
    for (const char *p = at + 1; p < s + len; p++) {
        if (*p == '@')
            at = p;
    }
    size_t ulen = (size_t)(at - s);
    if (memchr(s, ':', ulen)) {
        snprintf(err, errlen,
                 "mariadb URL: a password does not belong in the URL; set `password` in the "
                 "sink's section or TELEM_<SINKNAME>_PASSWORD in the environment");
        return -EINVAL;
    }
    if (ulen == 0) {
        snprintf(err, errlen, "mariadb URL: the user is empty");
        return -EINVAL;
    }
    if (url_part("user", s, ulen, out->user, sizeof(out->user), err, errlen) < 0)
        return -EINVAL;

    const char *h = at + 1, *end = s + len;
    const char *colon = NULL;
    if (h < end && *h == '[') {
        const char *close = memchr(h, ']', (size_t)(end - h));
        if (!close || close == h + 1) {
            snprintf(err, errlen, "mariadb URL: bad [IPv6] host");
            return -EINVAL;
        }
        if (close + 1 < end && close[1] != ':') {
            snprintf(err, errlen, "mariadb URL: unexpected text after ]");
            return -EINVAL;
        }
        if ((size_t)(close - h - 1) > MARIADB_URL_HOST_MAX) {
            snprintf(err, errlen, "mariadb URL: the host is too long");
            return -EINVAL;
        }
        memcpy(out->host, h + 1, (size_t)(close - h - 1));
        out->host[close - h - 1] = '\0';
        colon = close + 1 < end ? close + 1 : NULL;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        const char *hend = colon ? colon : end;
        if ((size_t)(hend - h) > MARIADB_URL_HOST_MAX) {
            snprintf(err, errlen, "mariadb URL: the host is too long");
            return -EINVAL;
        }
        for (const char *p = h; p < hend; p++) {
            if (*p == '%' || *p == '?' || *p == '#' || *p == ' ') {
                snprintf(err, errlen, "mariadb URL: bad character '%c' in the host", *p);
                return -EINVAL;
            }
        }
        memcpy(out->host, h, (size_t)(hend - h));
        out->host[hend - h] = '\0';
    }
    if (colon) {
        if (url_port(colon + 1, (size_t)(end - colon - 1), &out->port) < 0) {
            snprintf(err, errlen, "mariadb URL: the port must be a number from 1 to 65535");
            return -EINVAL;
        }
        if (!out->host[0]) {
            snprintf(err, errlen, "mariadb URL: a port without a host");
            return -EINVAL;
        }
    }
    return 0;
}

/* url_query parses key=value&... in s[0..len). */
static int url_query(const char *s, size_t len, struct mariadb_url *out, char *err, size_t errlen)
{
    const char *p = s, *end = s + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pend = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pend - p));
        size_t klen = (size_t)((eq ? eq : pend) - p);
        if (klen == 6 && memcmp(p, "socket", 6) == 0 && eq) {
            if (url_part("socket path", eq + 1, (size_t)(pend - eq - 1), out->socket,
                         sizeof(out->socket), err, errlen) < 0)
                return -EINVAL;
            if (out->socket[0] != '/') {
                snprintf(err, errlen, "mariadb URL: socket= needs an absolute path");
                return -EINVAL;
            }
        } else if (klen > 0) {
            snprintf(err, errlen,
                     "mariadb URL: unknown parameter '%.*s' (only socket=; other options are "
                     "settings of the sink's section)",
                     (int)(klen > 40 ? 40 : klen), p);
            return -EINVAL;
        }
        p = amp ? amp + 1 : end;
    }
    return 0;
}

int mariadb_url_parse(const char *url, struct mariadb_url *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->port = MARIADB_URL_PORT;
    size_t slen = sizeof(scheme) - 1;
    if (!url || strncasecmp(url, scheme, slen) != 0) {
        snprintf(err, errlen, "mariadb URL: must start with %s", scheme);
        return -EINVAL;
    }
    const char *p = url + slen;
    if (strchr(p, '#')) {
        snprintf(err, errlen, "mariadb URL: fragments (#) are not allowed");
        return -EINVAL;
    }
    const char *slash = strchr(p, '/');
    const char *qmark = strchr(p, '?');
    if (!slash || (qmark && qmark < slash)) {
        snprintf(err, errlen, "mariadb URL: no database (mariadb://USER@HOST/DB)");
        return -EINVAL;
    }
    if (url_authority(p, (size_t)(slash - p), out, err, errlen) < 0)
        return -EINVAL;

    const char *db = slash + 1;
    const char *dbend = qmark ? qmark : db + strlen(db);
    if (dbend == db) {
        snprintf(err, errlen, "mariadb URL: no database (mariadb://USER@HOST/DB)");
        return -EINVAL;
    }
    if (memchr(db, '/', (size_t)(dbend - db))) {
        snprintf(err, errlen, "mariadb URL: the database name must not contain '/'");
        return -EINVAL;
    }
    if (url_part("database", db, (size_t)(dbend - db), out->db, sizeof(out->db), err, errlen) < 0)
        return -EINVAL;
    if (qmark && url_query(qmark + 1, strlen(qmark + 1), out, err, errlen) < 0)
        return -EINVAL;

    if (out->socket[0]) {
        if (out->host[0] && strcmp(out->host, "localhost") != 0) {
            snprintf(err, errlen,
                     "mariadb URL: socket= goes with host localhost (or none), "
                     "not a network host");
            return -EINVAL;
        }
    } else if (!out->host[0]) {
        snprintf(err, errlen,
                 "mariadb URL: no host (mariadb://USER@HOST/DB, or "
                 "mariadb://USER@localhost/DB?socket=/PATH)");
        return -EINVAL;
    }
    return 0;
}
