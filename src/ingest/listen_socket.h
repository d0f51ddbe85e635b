/*
 * listen_socket.h: the sockets telemd listens on: TCP ("host:port", loopback by default), a
 * unix stream socket created mode 0660, and a UDP socket for fire-and-forget line protocol.
 * Addresses are parsed here so that the configuration can check them before anything binds.
 */
#ifndef TELEM_INGEST_LISTEN_SOCKET_H
#define TELEM_INGEST_LISTEN_SOCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LISTEN_HOST_MAX 256

/* A parsed "host:port" or "[v6]:port". */
struct listen_address {
    char host[LISTEN_HOST_MAX]; /* without brackets; "" means every interface */
    uint16_t port;              /* 0 lets the kernel choose */
};

/*
 * listen_address_parse reads "127.0.0.1:8186", "[::1]:8186", "localhost:8186" or ":8186"
 * (every interface). Returns 0, or -EINVAL with err saying what is wrong.
 */
int listen_address_parse(const char *text, struct listen_address *out, char *err, size_t errlen);

/*
 * listen_address_is_loopback returns true when host is "localhost" or a numeric address in
 * 127.0.0.0/8 or ::1. Names other than localhost are not resolved and count as not loopback.
 */
bool listen_address_is_loopback(const struct listen_address *a);

/*
 * listen_socket_tcp binds and listens on a (SO_REUSEADDR, non-blocking, close-on-exec).
 * Returns the fd, or a negative errno with err filled ("http 127.0.0.1:8186: Address already
 * in use"). Caller closes the fd.
 */
int listen_socket_tcp(const struct listen_address *a, int backlog, char *err, size_t errlen);

/*
 * listen_socket_unix creates a listening unix stream socket at path with the given mode. A
 * stale socket file at path is removed first; any other kind of file there is an error, never
 * deleted. Returns the fd, or a negative errno with err filled. Caller closes the fd and
 * unlinks path.
 */
int listen_socket_unix(const char *path, mode_t mode, int backlog, char *err, size_t errlen);

/*
 * listen_socket_udp binds a non-blocking UDP socket on a and asks for a receive buffer of
 * rcvbuf bytes (0: the system default). *granted, when not NULL, receives what the kernel gave.
 * Returns the fd, or a negative errno with err filled. Caller closes the fd.
 */
int listen_socket_udp(const struct listen_address *a, int rcvbuf, int *granted, char *err,
                      size_t errlen);

/*
 * listen_socket_name writes the bound address of fd ("127.0.0.1:8186", "[::1]:8186") into dst.
 * Returns 0 or a negative errno.
 */
int listen_socket_name(int fd, char *dst, size_t cap);

#endif
