/*
 * http_client_cli.h: a small blocking HTTP/1.1 client for telemctl's send and status commands.
 *
 * It talks to one telemd over its unix socket or over TCP, keeps the connection alive between
 * requests, and reads replies with Content-Length, chunked encoding or read-to-close bodies.
 * Every wait (connect, send, receive) is bounded by the client's timeout. It is not a general
 * HTTP client: no redirects, no TLS, no proxies; telemd listens on this host only.
 */
#ifndef TELEM_CLI_HTTP_CLIENT_CLI_H
#define TELEM_CLI_HTTP_CLIENT_CLI_H

#include <stdbool.h>
#include <stddef.h>

struct http_cli;

struct http_cli_header {
    const char *name;
    const char *value;
};

struct http_cli_response {
    int status;
    char *body; /* NUL-terminated (body_len excludes the NUL); free with http_cli_response_free */
    size_t body_len;
    int retry_after_s; /* Retry-After in seconds, -1 when absent */
    char content_type[64];
};

/*
 * http_cli_create makes a client for telemd at socket_path (a unix socket) or, when
 * socket_path is NULL, at http_addr ("127.0.0.1:8186", "localhost:8186", "[::1]:8186").
 * Nothing is connected until the first request. Borrows both strings (copied). Returns NULL
 * with err filled when http_addr is malformed.
 */
struct http_cli *http_cli_create(const char *socket_path, const char *http_addr,
                                 unsigned timeout_ms, char *err, size_t errlen);

/*
 * http_cli_request sends one request and reads its reply into resp. Borrows everything it is
 * given; resp->body is owned by the caller (http_cli_response_free) on success. body may be
 * NULL when len is 0. The client (re)connects as needed.
 *
 * Returns 0 when a reply was read (any status), or:
 *   -ECONNREFUSED / -ENOENT / ... connecting failed: nothing was sent;
 *   -ECONNRESET  the connection closed before the reply: the request may or may not have been
 *                acted on (a keep-alive connection the server had closed looks the same);
 *   -ETIMEDOUT   no reply within the timeout;
 *   -EPROTO      the reply was not HTTP/1.x.
 * On error http_cli_error() says what happened and the connection is closed.
 */
int http_cli_request(struct http_cli *c, const char *method, const char *target,
                     const struct http_cli_header *headers, size_t nheaders, const void *body,
                     size_t len, struct http_cli_response *resp);

/* http_cli_error returns the text of the last failure ("" when none). */
const char *http_cli_error(const struct http_cli *c);

/* http_cli_endpoint returns what the client connects to, for messages ("unix:/x", "tcp:h:p"). */
const char *http_cli_endpoint(const struct http_cli *c);

/* http_cli_response_free frees resp's body and clears it. Accepts a cleared response. */
void http_cli_response_free(struct http_cli_response *resp);

/* http_cli_destroy closes the connection and frees the client. Accepts NULL. */
void http_cli_destroy(struct http_cli *c);

#endif
