/*
 * ingest.h: how telemd takes line protocol in: the HTTP server (POST /write, POST
 * /api/v2/write, /ping, plus routes the daemon adds such as /metrics and /health) on a TCP and
 * a unix socket, and the UDP listener.
 *
 * Everything here runs on one event-loop thread, the one that owns the event_base: requests
 * are parsed, validated as a whole and appended to the spool there, and answered there. A write
 * is answered 204 only when spool_poll (woken through the spool's eventfd, which the HTTP
 * server adds to the loop) reports its ticket durable; until then the request waits in a FIFO,
 * and if its client goes away meanwhile the entry forgets the request instead of answering a
 * freed one. Statistics are plain counters of that thread: read them from it too (the /metrics
 * route runs on it).
 */
#ifndef TELEM_INGEST_INGEST_H
#define TELEM_INGEST_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ingest/body_encode.h"

struct event_base;
struct evbuffer;
struct evhttp_request;
struct spool;

/* Settings of the HTTP server. Strings are borrowed and must outlive the server. */
struct ingest_options {
    const char *http;        /* "host:port" to listen on, NULL for no TCP listener */
    const char *socket_path; /* unix socket to create (mode 0660), NULL for none */
    const char *token;       /* required on every endpoint but /ping and /health; NULL: none */
    struct body_encode_options encode;
    uint64_t body_max;           /* request body bytes, before and after gzip */
    uint64_t headers_max;        /* request line + header bytes */
    unsigned connections_max;    /* open connections over both listeners */
    uint64_t inflight_bytes_max; /* body bytes of requests awaiting durability, all together */
    unsigned retry_after_s;      /* Retry-After of 503 answers */
    unsigned idle_timeout_s;     /* close a connection idle this long (0: libevent's default) */
    size_t read_max;             /* bytes read from a socket at once (0: libevent's 4096) */
    int backlog;                 /* listen(2) backlog */
};

/* Counters of the HTTP server, read on the event thread. */
struct http_ingest_stats {
    uint64_t records_accepted;  /* records appended to the spool */
    uint64_t records_duplicate; /* records of repeated batches (Telem-Batch), not stored again */
    uint64_t records_rejected;  /* lines of bodies refused with 400 */
    uint64_t records_ignored;   /* valid lines that gave no record */
    uint64_t bytes_accepted;    /* line-protocol bytes (after gzip) of accepted bodies */
    uint64_t bytes_rejected;    /* bytes of bodies refused with 400 or 413 */
    uint64_t bytes_refused;     /* bytes of bodies refused with 503 (spool full, busy) */
    uint64_t requests[600];     /* answers by status code (index = code, 100..599) */
    uint64_t connections_open;
    uint64_t connections_accepted; /* connections taken since start */
    uint64_t connections_rejected; /* connections closed at once for connections_max */
    uint64_t inflight_bytes;       /* body bytes of requests awaiting durability */
    uint64_t pending_requests;     /* requests awaiting durability */
    uint64_t abandoned_replies;    /* clients that left before their batch was durable */
};

/*
 * An extra endpoint served by the HTTP server, such as /metrics. handle fills body (and may add
 * output headers to req) and returns the status code; the server sends the reply and counts
 * it. It runs on the event thread and must not block.
 */
struct http_route {
    const char *path; /* exact path, e.g. "/metrics"; borrowed */
    unsigned methods; /* EVHTTP_REQ_GET | EVHTTP_REQ_HEAD ... */
    bool open;        /* true: answered without the token (only /health should be) */
    int (*handle)(struct evhttp_request *req, struct evbuffer *body, void *arg);
    void *arg;
};

struct http_ingest;

/*
 * http_ingest_create starts the HTTP server on base: binds the listeners in opt, watches the
 * spool's notify fd. Borrows base, sp and opt (strings included), which must outlive it.
 * Returns NULL with err filled ("http 127.0.0.1:8186: Address already in use").
 */
struct http_ingest *http_ingest_create(struct event_base *base, struct spool *sp,
                                       const struct ingest_options *opt, char *err, size_t errlen);

/* http_ingest_add_route adds an endpoint. Copies route. Returns 0, or -ENOSPC (16 at most). */
int http_ingest_add_route(struct http_ingest *hi, const struct http_route *route);

/*
 * http_ingest_tcp_name writes the bound TCP address ("127.0.0.1:8186", the real port when 0
 * was asked) into dst. Returns false when there is no TCP listener.
 */
bool http_ingest_tcp_name(const struct http_ingest *hi, char *dst, size_t cap);

/*
 * http_ingest_drain starts shutting down: closes the listeners (and removes the unix socket
 * file), answers new writes 503 with `Connection: close`, and keeps answering the requests
 * already waiting for durability as their tickets become durable.
 */
void http_ingest_drain(struct http_ingest *hi);

/* http_ingest_pending returns how many requests are still waiting for durability. */
size_t http_ingest_pending(const struct http_ingest *hi);

/*
 * http_ingest_abandon_pending answers every waiting request 503 (the drain ran out of time);
 * their batches may still become durable, and a client's retry with the same Telem-Batch
 * header is then recognised.
 */
void http_ingest_abandon_pending(struct http_ingest *hi);

/* http_ingest_get_stats copies the counters. Event thread only. */
void http_ingest_get_stats(const struct http_ingest *hi, struct http_ingest_stats *st);

/*
 * http_ingest_destroy closes every connection and frees the server (unanswered requests get
 * no answer). Call before freeing base. Accepts NULL.
 */
void http_ingest_destroy(struct http_ingest *hi);

/* Settings of the UDP listener. */
struct udp_options {
    const char *addr; /* "host:port"; borrowed */
    struct body_encode_options encode;
    int rcvbuf; /* SO_RCVBUF bytes to ask for; 0: system default */
};

struct udp_ingest_stats {
    uint64_t datagrams_accepted; /* valid datagrams appended (or empty of records) */
    uint64_t datagrams_invalid;  /* refused by the parser, or truncated */
    uint64_t datagrams_dropped;  /* valid but not stored: spool full or disk error */
    uint64_t records_accepted;
    uint64_t bytes_accepted;
};

struct udp_ingest;

/*
 * udp_ingest_create binds the UDP socket and reads datagrams on base: each datagram is one
 * line-protocol body (precision ns), validated on its own and appended when valid; no answer,
 * no deduplication. Borrows base, sp and opt. Returns NULL with err filled.
 */
struct udp_ingest *udp_ingest_create(struct event_base *base, struct spool *sp,
                                     const struct udp_options *opt, char *err, size_t errlen);

/* udp_ingest_name writes the bound address into dst. */
void udp_ingest_name(const struct udp_ingest *ui, char *dst, size_t cap);

/* udp_ingest_stop stops reading datagrams (drain). */
void udp_ingest_stop(struct udp_ingest *ui);

/* udp_ingest_get_stats copies the counters. Event thread only. */
void udp_ingest_get_stats(const struct udp_ingest *ui, struct udp_ingest_stats *st);

/* udp_ingest_destroy closes the socket and frees the listener. Accepts NULL. */
void udp_ingest_destroy(struct udp_ingest *ui);

#endif
