/*
 * telem_http.c: the minimal blocking HTTP/1.1 client under libtelem's background thread (see
 * telem_http.h). It reads replies through a small stack buffer and never allocates, so a
 * shortage of memory can never lose the connection's place in the stream.
 */
#include "telem_http.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include "telem.h"

#define TELEM_DEFAULT_PORT "8186"

int telem__endpoint_parse(const char *text, struct telem__endpoint *ep, char *msg, size_t msg_cap)
{
    memset(ep, 0, sizeof(*ep));
    if (strncmp(text, "unix:", 5) == 0) {
        const char *path = text + 5;
        if (strncmp(path, "//", 2) == 0)
            path += 2;
        size_t len = strlen(path);
        if (len == 0) {
            snprintf(msg, msg_cap, "endpoint: unix socket path is empty");
            return TELEM_EINVAL;
        }
        if (len >= sizeof(ep->path)) {
            snprintf(msg, msg_cap, "endpoint: unix socket path is longer than %zu bytes",
                     sizeof(ep->path) - 1);
            return TELEM_EINVAL;
        }
        ep->is_unix = true;
        memcpy(ep->path, path, len + 1);
        snprintf(ep->host_header, sizeof(ep->host_header), "localhost");
        return TELEM_OK;
    }
    if (strncmp(text, "http://", 7) != 0) {
        snprintf(msg, msg_cap, "endpoint: expected unix:/path or http://host:port, got \"%.80s\"",
                 text);
        return TELEM_EINVAL;
    }
    const char *h = text + 7;
    const char *host_end;
    const char *after;
    if (h[0] == '[') {
        host_end = strchr(h, ']');
        if (host_end == NULL) {
            snprintf(msg, msg_cap, "endpoint: IPv6 address without ']'");
            return TELEM_EINVAL;
        }
        h++;
        after = host_end + 1;
    } else {
        host_end = h + strcspn(h, ":/");
        after = host_end;
    }
    size_t host_len = (size_t)(host_end - h);
    if (host_len == 0 || host_len >= sizeof(ep->host)) {
        snprintf(msg, msg_cap, "endpoint: host is empty or too long");
        return TELEM_EINVAL;
    }
    memcpy(ep->host, h, host_len);
    ep->host[host_len] = '\0';
    snprintf(ep->port, sizeof(ep->port), TELEM_DEFAULT_PORT);
    if (after[0] == ':') {
        after++;
        size_t plen = strspn(after, "0123456789");
        long port = plen > 0 && plen <= 5 ? strtol(after, NULL, 10) : 0;
        if (port < 1 || port > 65535) {
            snprintf(msg, msg_cap, "endpoint: port must be 1..65535");
            return TELEM_EINVAL;
        }
        snprintf(ep->port, sizeof(ep->port), "%ld", port);
        after += plen;
    }
    if (after[0] != '\0' && strcmp(after, "/") != 0) {
        snprintf(msg, msg_cap, "endpoint: unexpected \"%.40s\" after host:port", after);
        return TELEM_EINVAL;
    }
    bool v6 = strchr(ep->host, ':') != NULL;
    snprintf(ep->host_header, sizeof(ep->host_header), "%s%s%s:%s", v6 ? "[" : "", ep->host,
             v6 ? "]" : "", ep->port);
    return TELEM_OK;
}

static void telem_set_timeouts(int fd, unsigned io_timeout_ms)
{
    struct timeval tv = {.tv_sec = io_timeout_ms / 1000,
                         .tv_usec = (long)(io_timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* telem_connect_unix connects a blocking unix socket; SO_SNDTIMEO bounds a full backlog. */
static int telem_connect_unix(const struct telem__endpoint *ep, unsigned connect_timeout_ms,
                              int *fd, char *msg, size_t msg_cap)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, ep->path, strlen(ep->path) + 1);
    *fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (*fd < 0) {
        snprintf(msg, msg_cap, "socket: %s", strerror(errno));
        return TELEM_ECONNECT;
    }
    telem_set_timeouts(*fd, connect_timeout_ms);
    int rc;
    do {
        rc = connect(*fd, (struct sockaddr *)&sa, sizeof(sa));
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        snprintf(msg, msg_cap, "connect to unix:%s: %s", ep->path, strerror(errno));
        return TELEM_ECONNECT;
    }
    return TELEM_OK;
}

/* telem_connect_addr connects to one resolved address with a non-blocking connect and poll. */
static int telem_connect_addr(const struct addrinfo *ai, unsigned connect_timeout_ms, int *fd)
{
    *fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (*fd < 0)
        return -errno;
    if (connect(*fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        if (errno != EINPROGRESS)
            return -errno;
        struct pollfd p = {.fd = *fd, .events = POLLOUT};
        int n;
        do {
            n = poll(&p, 1, (int)connect_timeout_ms);
        } while (n < 0 && errno == EINTR);
        if (n == 0)
            return -ETIMEDOUT;
        if (n < 0)
            return -errno;
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(*fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            return -errno;
        if (err != 0)
            return -err;
    }
    int flags = fcntl(*fd, F_GETFL);
    if (flags < 0 || fcntl(*fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
        return -errno;
    int one = 1;
    setsockopt(*fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return 0;
}

int telem__http_connect(const struct telem__endpoint *ep, unsigned connect_timeout_ms,
                        unsigned io_timeout_ms, int *fd, char *msg, size_t msg_cap)
{
    *fd = -1;
    if (ep->is_unix) {
        int rc = telem_connect_unix(ep, connect_timeout_ms, fd, msg, msg_cap);
        if (rc != TELEM_OK) {
            if (*fd >= 0)
                close(*fd);
            *fd = -1;
            return rc;
        }
        telem_set_timeouts(*fd, io_timeout_ms);
        return TELEM_OK;
    }

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int grc = getaddrinfo(ep->host, ep->port, &hints, &res);
    if (grc != 0) {
        snprintf(msg, msg_cap, "resolve %s: %s", ep->host, gai_strerror(grc));
        return TELEM_ECONNECT;
    }
    int err = -ENOENT;
    for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        err = telem_connect_addr(ai, connect_timeout_ms, fd);
        if (err == 0)
            break;
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
    }
    freeaddrinfo(res);
    if (err != 0) {
        snprintf(msg, msg_cap, "connect to %s: %s", ep->host_header, strerror(-err));
        return TELEM_ECONNECT;
    }
    telem_set_timeouts(*fd, io_timeout_ms);
    return TELEM_OK;
}

bool telem__http_peer_closed(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    int n = poll(&p, 1, 0);
    return n != 0;
}

int telem__http_send(int fd, const char *head, size_t head_len, const char *body, size_t body_len,
                     char *msg, size_t msg_cap)
{
    struct iovec iov[2] = {{(void *)head, head_len}, {(void *)body, body_len}};
    struct iovec *v = iov;
    int nv = body_len > 0 ? 2 : 1;
    while (nv > 0) {
        struct msghdr mh = {.msg_iov = v, .msg_iovlen = (size_t)nv};
        ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            snprintf(msg, msg_cap, "send: %s", errno == EAGAIN ? "timed out" : strerror(errno));
            return TELEM_EIO;
        }
        size_t left = (size_t)n;
        while (nv > 0 && left >= v->iov_len) {
            left -= v->iov_len;
            v++;
            nv--;
        }
        if (nv > 0) {
            v->iov_base = (char *)v->iov_base + left;
            v->iov_len -= left;
        }
    }
    return TELEM_OK;
}

/* A read buffer over the socket: replies are small, so one stack buffer is enough. */
struct telem_reader {
    int fd;
    char buf[8192];
    size_t start, end;
};

/* telem_reader_fill reads more bytes; returns TELEM_OK or TELEM_EIO (closed / timed out). */
static int telem_reader_fill(struct telem_reader *r, char *msg, size_t msg_cap)
{
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    if (r->end == sizeof(r->buf)) {
        snprintf(msg, msg_cap, "reply header too long");
        return TELEM_EIO;
    }
    for (;;) {
        ssize_t n = recv(r->fd, r->buf + r->end, sizeof(r->buf) - r->end, 0);
        if (n > 0) {
            r->end += (size_t)n;
            return TELEM_OK;
        }
        if (n == 0) {
            snprintf(msg, msg_cap, "connection closed before the reply was complete");
            return TELEM_EIO;
        }
        if (errno == EINTR)
            continue;
        snprintf(msg, msg_cap, "receive: %s",
                 errno == EAGAIN ? "timed out waiting for telemd" : strerror(errno));
        return TELEM_EIO;
    }
}

/* telem_reader_line returns the next line (without CRLF) as p[0..len), reading as needed. */
static int telem_reader_line(struct telem_reader *r, const char **p, size_t *len, char *msg,
                             size_t msg_cap)
{
    for (;;) {
        char *s = r->buf + r->start;
        char *nl = memchr(s, '\n', r->end - r->start);
        if (nl != NULL) {
            size_t l = (size_t)(nl - s);
            r->start += l + 1;
            if (l > 0 && s[l - 1] == '\r')
                l--;
            *p = s;
            *len = l;
            return TELEM_OK;
        }
        int rc = telem_reader_fill(r, msg, msg_cap);
        if (rc != TELEM_OK)
            return rc;
    }
}

/* telem_reader_body consumes n body bytes, keeping what fits of them in reply->body. */
static int telem_reader_body(struct telem_reader *r, uint64_t n, struct telem__http_reply *reply,
                             size_t *kept, char *msg, size_t msg_cap)
{
    while (n > 0) {
        if (r->start == r->end) {
            int rc = telem_reader_fill(r, msg, msg_cap);
            if (rc != TELEM_OK)
                return rc;
        }
        size_t avail = r->end - r->start;
        size_t take = avail < n ? avail : (size_t)n;
        size_t room = sizeof(reply->body) - 1 - *kept;
        size_t copy = take < room ? take : room;
        memcpy(reply->body + *kept, r->buf + r->start, copy);
        *kept += copy;
        r->start += take;
        n -= take;
    }
    reply->body[*kept] = '\0';
    return TELEM_OK;
}

static bool telem_header_is(const char *line, size_t len, const char *name, const char **value,
                            size_t *value_len)
{
    size_t nl = strlen(name);
    if (len <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0)
        return false;
    const char *v = line + nl + 1;
    const char *e = line + len;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *value = v;
    *value_len = (size_t)(e - v);
    return true;
}

static bool telem_value_has_token(const char *v, size_t len, const char *token)
{
    size_t tl = strlen(token);
    for (size_t i = 0; i + tl <= len; i++) {
        if (strncasecmp(v + i, token, tl) == 0)
            return true;
    }
    return false;
}

/* telem_parse_u64 reads a decimal number filling all of v[0..len). */
static bool telem_parse_u64(const char *v, size_t len, int base, uint64_t *out)
{
    if (len == 0 || len > 16)
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < len; i++) {
        int d;
        char c = v[i];
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (base == 16 && c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (base == 16 && c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return false;
        x = x * (uint64_t)base + (uint64_t)d;
    }
    *out = x;
    return true;
}

/* telem_read_chunked consumes a chunked body and its trailers. */
static int telem_read_chunked(struct telem_reader *r, struct telem__http_reply *reply, size_t *kept,
                              char *msg, size_t msg_cap)
{
    for (;;) {
        const char *line;
        size_t len;
        int rc = telem_reader_line(r, &line, &len, msg, msg_cap);
        if (rc != TELEM_OK)
            return rc;
        size_t hex = strspn(line, "0123456789abcdefABCDEF");
        if (hex > len)
            hex = len;
        uint64_t size;
        if (!telem_parse_u64(line, hex, 16, &size)) {
            snprintf(msg, msg_cap, "bad chunk size in reply");
            return TELEM_EHTTP;
        }
        if (size == 0)
            break;
        rc = telem_reader_body(r, size, reply, kept, msg, msg_cap);
        if (rc != TELEM_OK)
            return rc;
        rc = telem_reader_line(r, &line, &len, msg, msg_cap); /* the CRLF after the data */
        if (rc != TELEM_OK)
            return rc;
    }
    for (;;) { /* trailers, up to the empty line */
        const char *line;
        size_t len;
        int rc = telem_reader_line(r, &line, &len, msg, msg_cap);
        if (rc != TELEM_OK)
            return rc;
        if (len == 0)
            return TELEM_OK;
    }
}

int telem__http_read_reply(int fd, struct telem__http_reply *reply, char *msg, size_t msg_cap)
{
    struct telem_reader r = {.fd = fd};
    for (;;) {
        const char *line;
        size_t len;
        int rc = telem_reader_line(&r, &line, &len, msg, msg_cap);
        if (rc != TELEM_OK)
            return rc;
        if (len < 12 || strncmp(line, "HTTP/1.", 7) != 0 || line[8] != ' ') {
            snprintf(msg, msg_cap, "reply is not HTTP/1.x: \"%.40s\"", line);
            return TELEM_EHTTP;
        }
        bool http10 = line[7] == '0';
        uint64_t status;
        if (!telem_parse_u64(line + 9, 3, 10, &status) || status < 100 || status > 599) {
            snprintf(msg, msg_cap, "bad status in reply: \"%.40s\"", line);
            return TELEM_EHTTP;
        }
        reply->status = (int)status;
        reply->retry_after = -1;
        reply->must_close = http10;
        reply->body[0] = '\0';

        bool chunked = false, have_length = false;
        uint64_t length = 0;
        for (;;) {
            rc = telem_reader_line(&r, &line, &len, msg, msg_cap);
            if (rc != TELEM_OK)
                return rc;
            if (len == 0)
                break;
            const char *v;
            size_t vl;
            if (telem_header_is(line, len, "Content-Length", &v, &vl)) {
                if (!telem_parse_u64(v, vl, 10, &length)) {
                    snprintf(msg, msg_cap, "bad Content-Length in reply");
                    return TELEM_EHTTP;
                }
                have_length = true;
            } else if (telem_header_is(line, len, "Transfer-Encoding", &v, &vl)) {
                chunked = telem_value_has_token(v, vl, "chunked");
            } else if (telem_header_is(line, len, "Connection", &v, &vl)) {
                if (telem_value_has_token(v, vl, "close"))
                    reply->must_close = true;
                else if (telem_value_has_token(v, vl, "keep-alive"))
                    reply->must_close = false;
            } else if (telem_header_is(line, len, "Retry-After", &v, &vl)) {
                uint64_t s;
                if (telem_parse_u64(v, vl, 10, &s))
                    reply->retry_after = s > 3600 ? 3600 : (int)s;
            }
        }
        if (status < 200)
            continue; /* 100 Continue and friends: the real reply follows */

        size_t kept = 0;
        if (status == 204 || status == 304)
            rc = TELEM_OK;
        else if (chunked)
            rc = telem_read_chunked(&r, reply, &kept, msg, msg_cap);
        else if (have_length)
            rc = telem_reader_body(&r, length, reply, &kept, msg, msg_cap);
        else
            reply->must_close = true; /* body runs to the end of the connection: drop it */
        if (rc != TELEM_OK)
            return rc;
        if (r.start != r.end)
            reply->must_close = true; /* bytes we did not ask for: start clean next time */
        return TELEM_OK;
    }
}
