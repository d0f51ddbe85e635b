/*
 * http_client_cli.c: blocking HTTP/1.1 over a unix or TCP socket, with keep-alive, for telemctl.
 *
 * Each request is written in full, then the reply is read through one buffer: the header block
 * up to the blank line, then a Content-Length body, a chunked body or a body that ends when the
 * server closes. poll() bounds every wait by the client's timeout. On any failure the connection
 * is closed, so the next request starts on a fresh one.
 */
#include "cli/http_client_cli.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/alloc.h"

#define HTTP_CLI_HEADER_MAX (64 * 1024) /* a header block larger than this is not telemd's */
#define HTTP_CLI_BODY_MAX   (64u << 20)

struct http_cli {
    char *socket_path; /* unix socket, or NULL for TCP */
    char *host;
    char *port;
    char endpoint[160];
    unsigned timeout_ms;
    int fd;
    char err[256];

    /* Bytes read from the socket but not yet consumed. */
    char *buf;
    size_t len;
    size_t off;
    size_t cap;
};

static int http_cli_fail(struct http_cli *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int http_cli_fail(struct http_cli *c, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->len = c->off = 0;
    return rc;
}

struct http_cli *http_cli_create(const char *socket_path, const char *http_addr,
                                 unsigned timeout_ms, char *err, size_t errlen)
{
    struct http_cli *c = xcalloc(1, sizeof(*c));
    c->fd = -1;
    c->timeout_ms = timeout_ms ? timeout_ms : 30000;
    if (socket_path) {
        if (strlen(socket_path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
            snprintf(err, errlen, "socket path too long: %s", socket_path);
            goto fail;
        }
        c->socket_path = xstrdup(socket_path);
        snprintf(c->endpoint, sizeof(c->endpoint), "unix:%s", socket_path);
        return c;
    }

    const char *addr = http_addr ? http_addr : "127.0.0.1:8186";
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || !colon[1]) {
        snprintf(err, errlen, "bad address '%s': expected HOST:PORT", addr);
        goto fail;
    }
    size_t hlen = (size_t)(colon - addr);
    const char *h = addr;
    if (addr[0] == '[' && hlen >= 2 && addr[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    c->host = xmalloc(hlen + 1);
    memcpy(c->host, h, hlen);
    c->host[hlen] = '\0';
    c->port = xstrdup(colon + 1);
    for (const char *p = c->port; *p; p++) {
        if (*p < '0' || *p > '9') {
            snprintf(err, errlen, "bad address '%s': the port is not a number", addr);
            goto fail;
        }
    }
    snprintf(c->endpoint, sizeof(c->endpoint), "tcp:%s", addr);
    return c;

fail:
    http_cli_destroy(c);
    return NULL;
}

const char *http_cli_error(const struct http_cli *c)
{
    return c->err;
}

const char *http_cli_endpoint(const struct http_cli *c)
{
    return c->endpoint;
}

/* http_cli_wait polls fd for events within the timeout. Returns 0, -ETIMEDOUT or -errno. */
static int http_cli_wait(struct http_cli *c, short events)
{
    struct pollfd pfd = {.fd = c->fd, .events = events};
    for (;;) {
        int n = poll(&pfd, 1, (int)c->timeout_ms);
        if (n > 0)
            return 0;
        if (n == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

static int http_cli_connect_fd(struct http_cli *c, int fd, const struct sockaddr *sa,
                               socklen_t salen)
{
    if (connect(fd, sa, salen) == 0)
        return 0;
    if (errno != EINPROGRESS)
        return -errno;
    c->fd = fd;
    int rc = http_cli_wait(c, POLLOUT);
    c->fd = -1;
    if (rc < 0)
        return rc;
    int soerr = 0;
    socklen_t l = sizeof(soerr);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &l) < 0)
        return -errno;
    return soerr ? -soerr : 0;
}

static int http_cli_connect(struct http_cli *c)
{
    int rc;
    if (c->socket_path) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        memcpy(sun.sun_path, c->socket_path, strlen(c->socket_path) + 1);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
            return http_cli_fail(c, -errno, "socket: %s", strerror(errno));
        rc = http_cli_connect_fd(c, fd, (struct sockaddr *)&sun, sizeof(sun));
        if (rc < 0) {
            close(fd);
            return http_cli_fail(c, rc, "cannot connect to %s: %s", c->endpoint, strerror(-rc));
        }
        c->fd = fd;
        return 0;
    }

    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(c->host, c->port, &hints, &res);
    if (gai != 0)
        return http_cli_fail(c, -EHOSTUNREACH, "cannot resolve %s: %s", c->host, gai_strerror(gai));
    rc = -ECONNREFUSED;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd =
            socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        rc = http_cli_connect_fd(c, fd, ai->ai_addr, ai->ai_addrlen);
        if (rc == 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            c->fd = fd;
            break;
        }
        close(fd);
    }
    freeaddrinfo(res);
    if (rc < 0)
        return http_cli_fail(c, rc, "cannot connect to %s: %s", c->endpoint, strerror(-rc));
    return 0;
}

static int http_cli_send_all(struct http_cli *c, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = http_cli_wait(c, POLLOUT);
            if (rc < 0)
                return rc;
            continue;
        }
        return w < 0 ? -errno : -EPIPE;
    }
    return 0;
}

/*
 * http_cli_fill reads more bytes into the buffer. Returns the number read, 0 at end of stream,
 * or a negative errno.
 */
static ssize_t http_cli_fill(struct http_cli *c)
{
    if (c->off > 0 && c->off == c->len)
        c->off = c->len = 0;
    if (c->len == c->cap) {
        if (c->off > 0) {
            memmove(c->buf, c->buf + c->off, c->len - c->off);
            c->len -= c->off;
            c->off = 0;
        } else {
            c->cap = c->cap ? c->cap * 2 : 16384;
            c->buf = xrealloc(c->buf, c->cap);
        }
    }
    for (;;) {
        ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (r >= 0) {
            c->len += (size_t)r;
            return r;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int rc = http_cli_wait(c, POLLIN);
            if (rc < 0)
                return rc;
            continue;
        }
        return -errno;
    }
}

/* http_cli_line returns the next CRLF- or LF-terminated line (terminator cut), or NULL at EOF. */
static int http_cli_line(struct http_cli *c, char **line, size_t max)
{
    for (;;) {
        char *start = c->buf + c->off;
        char *nl = memchr(start, '\n', c->len - c->off);
        if (nl) {
            size_t n = (size_t)(nl - start);
            if (n > 0 && start[n - 1] == '\r')
                n--;
            start[n] = '\0';
            c->off = (size_t)(nl - c->buf) + 1;
            *line = start;
            return 0;
        }
        if (c->len - c->off > max)
            return -EPROTO;
        ssize_t r = http_cli_fill(c);
        if (r < 0)
            return (int)r;
        if (r == 0)
            return -ECONNRESET;
    }
}

/* http_cli_take appends exactly n body bytes from the stream to *body. */
static int http_cli_take(struct http_cli *c, size_t n, char **body, size_t *blen, size_t *bcap)
{
    if (*blen + n > HTTP_CLI_BODY_MAX)
        return -EFBIG;
    if (*blen + n + 1 > *bcap) {
        *bcap = *blen + n + 1;
        *body = xrealloc(*body, *bcap);
    }
    while (n > 0) {
        if (c->off == c->len) {
            ssize_t r = http_cli_fill(c);
            if (r < 0)
                return (int)r;
            if (r == 0)
                return -ECONNRESET;
        }
        size_t have = c->len - c->off;
        size_t k = have < n ? have : n;
        memcpy(*body + *blen, c->buf + c->off, k);
        *blen += k;
        c->off += k;
        n -= k;
    }
    return 0;
}

static int http_cli_read_reply(struct http_cli *c, bool head, struct http_cli_response *resp)
{
    char *line = NULL;
    int rc = http_cli_line(c, &line, HTTP_CLI_HEADER_MAX);
    if (rc < 0)
        return rc;
    int major, minor, status;
    if (sscanf(line, "HTTP/%d.%d %d", &major, &minor, &status) != 3 || major != 1)
        return -EPROTO;
    resp->status = status;
    resp->retry_after_s = -1;

    long long content_length = -1;
    bool chunked = false, close_after = minor == 0;
    for (;;) {
        rc = http_cli_line(c, &line, HTTP_CLI_HEADER_MAX);
        if (rc < 0)
            return rc == -ECONNRESET ? -EPROTO : rc;
        if (!*line)
            break;
        char *colon = strchr(line, ':');
        if (!colon)
            return -EPROTO;
        *colon = '\0';
        char *value = colon + 1;
        while (*value == ' ' || *value == '\t')
            value++;
        if (strcasecmp(line, "Content-Length") == 0)
            content_length = strtoll(value, NULL, 10);
        else if (strcasecmp(line, "Transfer-Encoding") == 0)
            chunked = strcasestr(value, "chunked") != NULL;
        else if (strcasecmp(line, "Connection") == 0)
            close_after = strcasestr(value, "close") != NULL;
        else if (strcasecmp(line, "Retry-After") == 0)
            resp->retry_after_s = atoi(value);
        else if (strcasecmp(line, "Content-Type") == 0)
            snprintf(resp->content_type, sizeof(resp->content_type), "%s", value);
    }

    char *body = NULL;
    size_t blen = 0, bcap = 0;
    bool no_body = head || status == 204 || status == 304 || (status >= 100 && status < 200);
    if (no_body) {
        /* nothing to read */
    } else if (chunked) {
        for (;;) {
            rc = http_cli_line(c, &line, 1024);
            if (rc < 0)
                goto fail;
            char *end;
            unsigned long long n = strtoull(line, &end, 16);
            if (end == line) {
                rc = -EPROTO;
                goto fail;
            }
            if (n == 0) {
                do { /* trailers, up to the blank line */
                    rc = http_cli_line(c, &line, HTTP_CLI_HEADER_MAX);
                    if (rc < 0)
                        goto fail;
                } while (*line);
                break;
            }
            rc = http_cli_take(c, (size_t)n, &body, &blen, &bcap);
            if (rc < 0)
                goto fail;
            rc = http_cli_line(c, &line, 16);
            if (rc < 0)
                goto fail;
        }
    } else if (content_length >= 0) {
        rc = http_cli_take(c, (size_t)content_length, &body, &blen, &bcap);
        if (rc < 0)
            goto fail;
    } else {
        close_after = true;
        for (;;) { /* read to close */
            if (c->off < c->len) {
                rc = http_cli_take(c, c->len - c->off, &body, &blen, &bcap);
                if (rc < 0)
                    goto fail;
            }
            ssize_t r = http_cli_fill(c);
            if (r < 0) {
                rc = (int)r;
                goto fail;
            }
            if (r == 0)
                break;
        }
    }
    if (!body)
        body = xmalloc(1);
    body[blen] = '\0';
    resp->body = body;
    resp->body_len = blen;
    if (close_after) {
        close(c->fd);
        c->fd = -1;
        c->len = c->off = 0;
    }
    return 0;

fail:
    free(body);
    return rc;
}

int http_cli_request(struct http_cli *c, const char *method, const char *target,
                     const struct http_cli_header *headers, size_t nheaders, const void *body,
                     size_t len, struct http_cli_response *resp)
{
    memset(resp, 0, sizeof(*resp));
    c->err[0] = '\0';
    bool fresh = false;
    if (c->fd < 0) {
        int rc = http_cli_connect(c);
        if (rc < 0)
            return rc;
        fresh = true;
    }

    size_t hcap = 512 + strlen(target);
    for (size_t i = 0; i < nheaders; i++)
        hcap += strlen(headers[i].name) + strlen(headers[i].value) + 4;
    char *head = xmalloc(hcap);
    int n = snprintf(head, hcap, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: telemctl\r\n", method,
                     target, c->host ? c->host : "localhost");
    for (size_t i = 0; i < nheaders; i++)
        n += snprintf(head + n, hcap - (size_t)n, "%s: %s\r\n", headers[i].name, headers[i].value);
    if (body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0)
        n += snprintf(head + n, hcap - (size_t)n, "Content-Length: %zu\r\n", len);
    n += snprintf(head + n, hcap - (size_t)n, "\r\n");

    int rc = http_cli_send_all(c, head, (size_t)n);
    if (rc == 0 && len > 0)
        rc = http_cli_send_all(c, body, len);
    free(head);
    if (rc == -ETIMEDOUT)
        return http_cli_fail(c, rc, "%s: timed out sending", c->endpoint);
    if (rc < 0) {
        /* A keep-alive connection the server closed fails here; the server saw nothing whole. */
        return http_cli_fail(c, fresh ? rc : -ECONNRESET, "%s: connection lost while sending: %s",
                             c->endpoint, strerror(-rc));
    }

    rc = http_cli_read_reply(c, strcmp(method, "HEAD") == 0, resp);
    if (rc == -ETIMEDOUT)
        return http_cli_fail(c, rc, "%s: no reply within %u ms", c->endpoint, c->timeout_ms);
    if (rc == -EPROTO)
        return http_cli_fail(c, rc, "%s: the reply is not HTTP/1.x", c->endpoint);
    if (rc == -EFBIG)
        return http_cli_fail(c, -EPROTO, "%s: reply body too large", c->endpoint);
    if (rc < 0)
        return http_cli_fail(c, -ECONNRESET, "%s: connection closed before the reply (%s)",
                             c->endpoint, strerror(-rc));
    return 0;
}

void http_cli_response_free(struct http_cli_response *resp)
{
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
}

void http_cli_destroy(struct http_cli *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    free(c->socket_path);
    free(c->host);
    free(c->port);
    free(c->buf);
    free(c);
}
