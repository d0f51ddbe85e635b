/*
 * listen_socket.c: creating the TCP, unix and UDP sockets telemd listens on (see
 * listen_socket.h). libevent is handed ready, listening file descriptors, so that the unix
 * socket's mode and the exact errors are ours.
 */
#include "ingest/listen_socket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int listen_address_parse(const char *text, struct listen_address *out, char *err, size_t errlen)
{
    const char *colon;
    const char *host = text;
    size_t host_len;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':') {
            snprintf(err, errlen, "'%s': expected [address]:port", text);
            return -EINVAL;
        }
        host = text + 1;
        host_len = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (!colon) {
            snprintf(err, errlen, "'%s': expected host:port", text);
            return -EINVAL;
        }
        host_len = (size_t)(colon - text);
        if (memchr(text, ':', host_len)) {
            snprintf(err, errlen, "'%s': write IPv6 addresses as [address]:port", text);
            return -EINVAL;
        }
    }
    if (host_len >= sizeof(out->host)) {
        snprintf(err, errlen, "'%s': host name too long", text);
        return -EINVAL;
    }
    const char *port_text = colon + 1;
    char *end;
    errno = 0;
    long port = strtol(port_text, &end, 10);
    if (errno || end == port_text || *end || port < 0 || port > 65535) {
        snprintf(err, errlen, "'%s': port must be a number from 0 to 65535", text);
        return -EINVAL;
    }
    memcpy(out->host, host, host_len);
    out->host[host_len] = '\0';
    out->port = (uint16_t)port;
    return 0;
}

bool listen_address_is_loopback(const struct listen_address *a)
{
    if (strcasecmp(a->host, "localhost") == 0)
        return true;
    struct in_addr v4;
    if (inet_pton(AF_INET, a->host, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    struct in6_addr v6;
    if (inet_pton(AF_INET6, a->host, &v6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&v6);
    return false;
}

/* socket_bind_inet resolves a and binds a socket of type to the first address that works. */
static int socket_bind_inet(const struct listen_address *a, int type, const char *what, char *err,
                            size_t errlen)
{
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = type;
    hints.ai_flags = AI_PASSIVE;
    char port[8];
    snprintf(port, sizeof(port), "%u", a->port);
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(a->host[0] ? a->host : NULL, port, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "%s %s:%u: %s", what, a->host, a->port, gai_strerror(gai));
        return -EINVAL;
    }
    int rc = -EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd =
            socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (ai->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            freeaddrinfo(res);
            return fd;
        }
        rc = -errno;
        close(fd);
    }
    freeaddrinfo(res);
    snprintf(err, errlen, "%s %s:%u: %s", what, a->host[0] ? a->host : "*", a->port, strerror(-rc));
    return rc;
}

int listen_socket_tcp(const struct listen_address *a, int backlog, char *err, size_t errlen)
{
    int fd = socket_bind_inet(a, SOCK_STREAM, "http", err, errlen);
    if (fd < 0)
        return fd;
    if (listen(fd, backlog) < 0) {
        int rc = -errno;
        snprintf(err, errlen, "http %s:%u: listen: %s", a->host, a->port, strerror(errno));
        close(fd);
        return rc;
    }
    return fd;
}

int listen_socket_unix(const char *path, mode_t mode, int backlog, char *err, size_t errlen)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path)) {
        snprintf(err, errlen, "socket %s: path longer than %zu bytes", path,
                 sizeof(sun.sun_path) - 1);
        return -ENAMETOOLONG;
    }
    strcpy(sun.sun_path, path);

    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "socket %s: a file that is not a socket is in the way", path);
            return -EEXIST;
        }
        /* The caller holds the data folder's lock, so no live telemd owns this socket. */
        if (unlink(path) < 0 && errno != ENOENT) {
            int rc = -errno;
            snprintf(err, errlen, "socket %s: removing the stale socket: %s", path,
                     strerror(errno));
            return rc;
        }
    }

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int rc = -errno;
        snprintf(err, errlen, "socket %s: %s", sun.sun_path, strerror(errno));
        return rc;
    }
    int rc;
    if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        rc = -errno;
        snprintf(err, errlen, "socket %s: bind: %s", sun.sun_path, strerror(errno));
        goto fail;
    }
    /* Set the mode before listen(): nobody can connect in between. */
    if (chmod(sun.sun_path, mode) < 0) {
        rc = -errno;
        snprintf(err, errlen, "socket %s: chmod: %s", sun.sun_path, strerror(errno));
        unlink(sun.sun_path);
        goto fail;
    }
    if (listen(fd, backlog) < 0) {
        rc = -errno;
        snprintf(err, errlen, "socket %s: listen: %s", sun.sun_path, strerror(errno));
        unlink(sun.sun_path);
        goto fail;
    }
    return fd;
fail:
    close(fd);
    return rc;
}

int listen_socket_udp(const struct listen_address *a, int rcvbuf, int *granted, char *err,
                      size_t errlen)
{
    int fd = socket_bind_inet(a, SOCK_DGRAM, "udp", err, errlen);
    if (fd < 0)
        return fd;
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    if (granted) {
        int got = 0;
        socklen_t len = sizeof(got);
        if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &len) == 0)
            *granted = got / 2; /* Linux reports twice what it counts as payload room */
        else
            *granted = 0;
    }
    return fd;
}

int listen_socket_name(int fd, char *dst, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -errno;
    char host[INET6_ADDRSTRLEN];
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
        snprintf(dst, cap, "%s:%u", host, ntohs(sin->sin_port));
        return 0;
    }
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
        snprintf(dst, cap, "[%s]:%u", host, ntohs(sin6->sin6_port));
        return 0;
    }
    return -EAFNOSUPPORT;
}
