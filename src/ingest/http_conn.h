/*
 * http_conn.h: telemd's own count of open HTTP connections, and notice of each one's close.
 *
 * libevent 2.1's evhttp has no connection limit and tells nobody when an incoming connection is
 * freed unless a close callback was set on it, which a server only gets to do once a request
 * arrives. So the server's bufferevent factory (evhttp_set_bevcb) counts each accepted
 * connection and queues it; an immediately activated event then, still before the loop polls
 * again, finds the evhttp_connection that owns the bufferevent, closes it at once if
 * connections_max is reached, and otherwise sets a close callback that keeps the count right
 * and lets the HTTP server forget the requests of a client that went away.
 *
 * It also reads for evhttp. libevent 2.1 reads a socket at most 4096 bytes at a time (with an
 * ioctl(FIONREAD) before each read), which costs a quarter of the event thread on 100 KB
 * bodies. So each tracked connection gets a read event of its own that, while evhttp has
 * reading enabled, reads up to read_max bytes straight into the bufferevent's input buffer and
 * runs evhttp's read callback (bufferevent_trigger). While evhttp waits for a reply (reading
 * disabled) the event is parked, and the HTTP server resumes it after each reply
 * (http_conns_reply_sent), so a pipelining client never makes it spin.
 *
 * Event thread only.
 */
#ifndef TELEM_INGEST_HTTP_CONN_H
#define TELEM_INGEST_HTTP_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event;
struct event_base;
struct evhttp;
struct evhttp_connection;
struct bufferevent;
struct pending_reply;

/* One tracked connection. */
struct http_conn {
    struct http_conns *owner;
    struct bufferevent *bev;
    struct evhttp_connection *evcon; /* NULL until registered */
    int fd;
    struct event *read_ev; /* read-ahead; NULL when read_max is 0 */
    bool read_parked;      /* read_ev removed while evhttp has reading disabled */
    bool bulk;             /* the last read-ahead got READ_CHUNK or more */
    struct http_conn *next_fresh;
    struct pending_reply *pending; /* the HTTP server's requests on it awaiting durability */
};

/* Called when a registered connection closes, before evhttp frees its requests. */
typedef void (*http_conn_closed_fn)(struct http_conn *conn, void *arg);

struct http_conns;

/*
 * http_conns_create installs the counting bufferevent factory on http. Borrows base and http.
 * closed(conn, arg) is called for every registered connection that closes. read_max is how
 * much to read from a socket at once (0: leave reading to libevent). Never NULL.
 */
struct http_conns *http_conns_create(struct event_base *base, struct evhttp *http, unsigned max,
                                     size_t read_max, http_conn_closed_fn closed, void *arg);

/*
 * http_conns_reply_sent resumes the read-ahead of evcon's connection after a reply was handed
 * to evhttp (which enables reading again once the reply is written).
 */
void http_conns_reply_sent(struct http_conns *cs, struct evhttp_connection *evcon);

/* http_conns_lookup returns the tracked connection behind evcon, or NULL. */
struct http_conn *http_conns_lookup(struct http_conns *cs, struct evhttp_connection *evcon);

/* http_conns_open, _accepted, _rejected: counters for /metrics. */
uint64_t http_conns_open(const struct http_conns *cs);
uint64_t http_conns_accepted(const struct http_conns *cs);
uint64_t http_conns_rejected(const struct http_conns *cs);

/*
 * http_conns_destroy frees the table. Call after evhttp_free (which closes the connections and
 * so calls closed() for each). Accepts NULL.
 */
void http_conns_destroy(struct http_conns *cs);

#endif
