/*
 * http_conn.c: counting and closing HTTP connections for connections_max, and reading their
 * sockets in large chunks for evhttp (see http_conn.h).
 *
 * The bufferevent handed to evhttp is created here with one extra reference, so that it stays
 * valid until registration even if evhttp gave up on the connection in between; registration
 * then reads the owning evhttp_connection from the bufferevent's callback argument (evhttp sets
 * its own callbacks with the connection as argument) and checks it against
 * evhttp_connection_get_bufferevent before trusting it.
 */
#include "ingest/http_conn.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"

#define REJECT_LOG_INTERVAL_NS (10 * 1000000000LL)
#define READ_FIRST             4096u
#define READ_CHUNK             (64u << 10)

struct http_conns {
    struct event_base *base;
    struct evhttp *http;
    struct event *register_ev;
    struct http_conn *fresh;
    struct http_conn **by_fd;
    size_t nfd;
    unsigned max;
    size_t read_max;
    uint64_t open, accepted, rejected;
    uint64_t rejected_unlogged;
    int64_t reject_logged_ns;
    bool untracked_logged;
    http_conn_closed_fn closed;
    void *closed_arg;
};

static void conn_closed(struct evhttp_connection *evcon, void *arg)
{
    struct http_conn *c = arg;
    struct http_conns *cs = c->owner;
    /* evhttp may reset and then free a connection; one notice is enough. */
    evhttp_connection_set_closecb(evcon, NULL, NULL);
    cs->closed(c, cs->closed_arg);
    if (c->read_ev)
        event_free(c->read_ev);
    if (c->fd >= 0 && (size_t)c->fd < cs->nfd && cs->by_fd[c->fd] == c)
        cs->by_fd[c->fd] = NULL;
    cs->open--;
    free(c);
}

static void conns_index(struct http_conns *cs, struct http_conn *c)
{
    size_t fd = (size_t)c->fd;
    if (fd >= cs->nfd) {
        size_t n = cs->nfd ? cs->nfd : 1024;
        while (n <= fd)
            n *= 2;
        cs->by_fd = xrealloc(cs->by_fd, n * sizeof(*cs->by_fd));
        memset(cs->by_fd + cs->nfd, 0, (n - cs->nfd) * sizeof(*cs->by_fd));
        cs->nfd = n;
    }
    cs->by_fd[fd] = c;
}

static void conns_reject_log(struct http_conns *cs)
{
    cs->rejected_unlogged++;
    int64_t now = clock_mono_ns();
    if (cs->reject_logged_ns && now - cs->reject_logged_ns < REJECT_LOG_INTERVAL_NS)
        return;
    LOG_WARN("http", "connections_max (%u) reached: closed %llu new connection(s)", cs->max,
             (unsigned long long)cs->rejected_unlogged);
    cs->reject_logged_ns = now;
    cs->rejected_unlogged = 0;
}

/*
 * conn_read_ahead reads what the socket holds, in large chunks, into the bufferevent's input
 * and lets evhttp process it. Errors and end of file are left to the bufferevent's own read,
 * which sees them next, so that evhttp handles them as always.
 */
static void conn_read_ahead(evutil_socket_t fd, short what, void *arg)
{
    struct http_conn *c = arg;
    struct http_conns *cs = c->owner;
    if (!(bufferevent_get_enabled(c->bev) & EV_READ)) {
        /* evhttp waits for our reply: park until http_conns_reply_sent. */
        event_del(c->read_ev);
        c->read_parked = true;
        return;
    }
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t total = 0;
    /* bufferevent_socket keeps the input's end frozen outside its own reads. */
    evbuffer_unfreeze(in, 0);
    /*
     * Large buffers only for connections that send in bulk, so that many slow clients cannot
     * make us hold read_max each. For those, make room for a whole request in one chain at its
     * start: evhttp then moves the body to the request whole, and evbuffer_pullup has nothing
     * to copy.
     */
    size_t want = c->bulk ? READ_CHUNK : READ_FIRST;
    if (c->bulk && evbuffer_get_length(in) == 0)
        evbuffer_expand(in, cs->read_max);
    while (total < cs->read_max) {
        struct evbuffer_iovec vec[2];
        int n = evbuffer_reserve_space(in, (ev_ssize_t)want, vec, 2);
        if (n <= 0)
            break;
        struct iovec iov[2];
        size_t room = 0;
        for (int i = 0; i < n; i++) {
            iov[i].iov_base = vec[i].iov_base;
            iov[i].iov_len = vec[i].iov_len;
            room += vec[i].iov_len;
        }
        ssize_t got = readv(fd, iov, n);
        if (got <= 0) {
            evbuffer_commit_space(in, vec, 0);
            break;
        }
        size_t left = (size_t)got;
        for (int i = 0; i < n; i++) {
            size_t take = left < vec[i].iov_len ? left : vec[i].iov_len;
            vec[i].iov_len = take;
            left -= take;
        }
        evbuffer_commit_space(in, vec, n);
        total += (size_t)got;
        if ((size_t)got < room)
            break; /* the socket is empty */
        want = READ_CHUNK;
    }
    evbuffer_freeze(in, 0);
    c->bulk = total >= READ_CHUNK;
    /* May free the connection (and c): nothing may touch c after this. */
    if (total)
        bufferevent_trigger(c->bev, EV_READ, 0);
}

void http_conns_reply_sent(struct http_conns *cs, struct evhttp_connection *evcon)
{
    struct http_conn *c = http_conns_lookup(cs, evcon);
    if (c && c->read_ev && c->read_parked) {
        c->read_parked = false;
        event_add(c->read_ev, NULL);
    }
}

/* conns_register runs right after the accepts: the new connections have not been read yet. */
static void conns_register(evutil_socket_t fd_unused, short what, void *arg)
{
    struct http_conns *cs = arg;
    struct http_conn *list = cs->fresh;
    cs->fresh = NULL;
    while (list) {
        struct http_conn *c = list;
        list = c->next_fresh;
        struct bufferevent *bev = c->bev;
        void *cbarg = NULL;
        bufferevent_getcb(bev, NULL, NULL, NULL, &cbarg);
        struct evhttp_connection *evcon = cbarg;
        if (!evcon || evhttp_connection_get_bufferevent(evcon) != bev) {
            /* evhttp dropped the connection already, or works differently than expected. */
            if (evcon && !cs->untracked_logged) {
                LOG_ERROR("http", "cannot track an HTTP connection; its writes will be refused");
                cs->untracked_logged = true;
            }
            cs->open--;
            free(c);
            bufferevent_decref(bev);
            continue;
        }
        if (cs->open > cs->max) {
            cs->rejected++;
            cs->open--;
            conns_reject_log(cs);
            free(c);
            evhttp_connection_free(evcon);
            bufferevent_decref(bev);
            continue;
        }
        c->evcon = evcon;
        c->fd = bufferevent_getfd(bev);
        if (c->fd >= 0)
            conns_index(cs, c);
        evhttp_connection_set_closecb(evcon, conn_closed, c);
        if (cs->read_max && c->fd >= 0) {
            c->read_ev = event_new(cs->base, c->fd, EV_READ | EV_PERSIST, conn_read_ahead, c);
            if (c->read_ev && event_add(c->read_ev, NULL) < 0) {
                event_free(c->read_ev);
                c->read_ev = NULL;
            }
        }
        bufferevent_decref(bev);
    }
}

static struct bufferevent *conns_new_bev(struct event_base *base, void *arg)
{
    struct http_conns *cs = arg;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, 0);
    if (!bev)
        return NULL; /* evhttp then makes its own, untracked: writes on it are refused */
    bufferevent_incref(bev);
    struct http_conn *c = xcalloc(1, sizeof(*c));
    c->owner = cs;
    c->bev = bev;
    c->fd = -1;
    c->next_fresh = cs->fresh;
    cs->fresh = c;
    cs->open++;
    cs->accepted++;
    event_active(cs->register_ev, EV_TIMEOUT, 0);
    return bev;
}

struct http_conns *http_conns_create(struct event_base *base, struct evhttp *http, unsigned max,
                                     size_t read_max, http_conn_closed_fn closed, void *arg)
{
    struct http_conns *cs = xcalloc(1, sizeof(*cs));
    cs->base = base;
    cs->http = http;
    cs->max = max;
    cs->read_max = read_max;
    cs->closed = closed;
    cs->closed_arg = arg;
    cs->register_ev = event_new(base, -1, 0, conns_register, cs);
    if (!cs->register_ev) {
        LOG_ERROR("http", "out of memory creating an event");
        abort();
    }
    evhttp_set_bevcb(http, conns_new_bev, cs);
    return cs;
}

struct http_conn *http_conns_lookup(struct http_conns *cs, struct evhttp_connection *evcon)
{
    if (!evcon)
        return NULL;
    int fd = bufferevent_getfd(evhttp_connection_get_bufferevent(evcon));
    if (fd < 0 || (size_t)fd >= cs->nfd)
        return NULL;
    struct http_conn *c = cs->by_fd[fd];
    return c && c->evcon == evcon ? c : NULL;
}

uint64_t http_conns_open(const struct http_conns *cs)
{
    return cs->open;
}

uint64_t http_conns_accepted(const struct http_conns *cs)
{
    return cs->accepted;
}

uint64_t http_conns_rejected(const struct http_conns *cs)
{
    return cs->rejected;
}

void http_conns_destroy(struct http_conns *cs)
{
    if (!cs)
        return;
    while (cs->fresh) {
        struct http_conn *c = cs->fresh;
        cs->fresh = c->next_fresh;
        bufferevent_decref(c->bev);
        free(c);
    }
    /* Connections still indexed were never closed by evhttp; nothing refers to them now. */
    for (size_t i = 0; i < cs->nfd; i++) {
        if (cs->by_fd[i] && cs->by_fd[i]->read_ev)
            event_free(cs->by_fd[i]->read_ev);
        free(cs->by_fd[i]);
    }
    free(cs->by_fd);
    if (cs->register_ev)
        event_free(cs->register_ev);
    free(cs);
}
