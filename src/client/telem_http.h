/*
 * telem_http.h: libtelem's minimal HTTP/1.1 client: one blocking socket to telemd, one request
 * at a time, keep-alive.
 *
 * This is all libtelem needs of HTTP: parse the endpoint once, connect (unix socket or TCP,
 * with a connect timeout), send one POST as a header block plus a body with a single sendmsg
 * loop (MSG_NOSIGNAL, so a closed peer never raises SIGPIPE in the caller's process), and read
 * one reply: status line, headers (Content-Length, Transfer-Encoding: chunked, Connection,
 * Retry-After) and the body, of which the first bytes are kept for error messages. Socket
 * timeouts bound every send and receive. No allocation; failures return a TELEM_E* code and a
 * message.
 */
#ifndef TELEM_CLIENT_HTTP_H
#define TELEM_CLIENT_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <sys/un.h>

/* Where telemd listens, parsed from "unix:/path" or "http://host:port". */
struct telem__endpoint {
    bool is_unix;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char host[256];
    char port[8];
    char host_header[272]; /* the value of the Host header */
};

/*
 * telem__endpoint_parse reads text into ep. Accepts "unix:PATH", "unix://PATH" and
 * "http://HOST[:PORT][/]" (HOST a name, an IPv4 address or [IPv6]; PORT defaults to 8186).
 * Returns TELEM_OK, or TELEM_EINVAL with msg saying what is wrong.
 */
int telem__endpoint_parse(const char *text, struct telem__endpoint *ep, char *msg, size_t msg_cap);

/*
 * telem__http_connect opens a connection to ep within connect_timeout_ms and sets
 * io_timeout_ms on its sends and receives. *fd is set as soon as the socket exists (so another
 * thread may shut it down) and is -1 again on failure. Returns TELEM_OK or TELEM_ECONNECT
 * with msg.
 */
int telem__http_connect(const struct telem__endpoint *ep, unsigned connect_timeout_ms,
                        unsigned io_timeout_ms, int *fd, char *msg, size_t msg_cap);

/*
 * telem__http_peer_closed tells whether an idle keep-alive connection was closed by the peer
 * (or has unexpected bytes waiting), so it is not worth sending on.
 */
bool telem__http_peer_closed(int fd);

/*
 * telem__http_send writes head[0..head_len) then body[0..body_len) to fd. Borrows both.
 * Returns TELEM_OK or TELEM_EIO with msg.
 */
int telem__http_send(int fd, const char *head, size_t head_len, const char *body, size_t body_len,
                     char *msg, size_t msg_cap);

/* One reply of telemd. */
struct telem__http_reply {
    int status;      /* 100..599 */
    int retry_after; /* seconds from Retry-After, -1 when absent */
    bool must_close; /* Connection: close, HTTP/1.0 without keep-alive, or unknown length */
    char body[512];  /* the first bytes of the body, NUL-terminated */
};

/*
 * telem__http_read_reply reads one full reply (skipping 1xx interim replies) from fd.
 * Returns TELEM_OK, TELEM_EIO (connection closed or timed out) or TELEM_EHTTP (not HTTP),
 * with msg.
 */
int telem__http_read_reply(int fd, struct telem__http_reply *reply, char *msg, size_t msg_cap);

#endif
