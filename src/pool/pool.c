/*
 * pool.c: the bounded connection pool of pool.h.
 *
 * State lives in a fixed array of `max` slots, each empty, reserved (a borrower is opening or
 * closing its connection outside the lock), idle or busy, all under one mutex. Borrowers that
 * cannot be served at once queue in a FIFO list of waiters, each with its own condition
 * variable; pool_dispatch hands the oldest waiter an idle connection or an empty slot (which
 * that waiter then fills by connecting), so nobody overtakes a waiter and a wake-up is never
 * lost to a thread that did not wait. Connecting, pinging and closing happen outside the lock.
 */
#include "pool/pool.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"

enum pool_slot_state {
    SLOT_EMPTY = 0,
    SLOT_RESERVED, /* owned by one borrower: being opened, pinged or closed */
    SLOT_IDLE,
    SLOT_BUSY,
};

struct pool_slot {
    enum pool_slot_state state;
    void *conn;
    int64_t created_ns;
    int64_t last_used_ns;
};

struct pool_waiter {
    struct pool_waiter *next;
    pthread_cond_t cond;
    int slot; /* granted slot, -1 while waiting */
};

struct pool {
    char name[64];
    const struct pool_conn_ops *ops;
    void *ctx;
    struct pool_options opt;

    pthread_mutex_t lock;
    struct pool_slot *slots; /* opt.max of them */
    struct pool_waiter *head, *tail;

    /* Connect backoff: no new connection before next_connect_ns after a failure. */
    unsigned failures_in_row;
    int64_t next_connect_ns;
    char last_error[160];

    struct pool_stats st; /* counters; the gauges are computed in pool_get_stats */
};

static int64_t ms_to_ns(unsigned ms)
{
    return (int64_t)ms * 1000000;
}

struct pool *pool_create(const char *name, const struct pool_conn_ops *ops, void *ctx,
                         const struct pool_options *opt)
{
    if (!opt->max || !ops || !ops->connect || !ops->close)
        return NULL;
    struct pool *p = xcalloc(1, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name ? name : "pool");
    p->ops = ops;
    p->ctx = ctx;
    p->opt = *opt;
    if (!p->opt.backoff_base_ms)
        p->opt.backoff_base_ms = 100;
    if (!p->opt.backoff_max_ms)
        p->opt.backoff_max_ms = 10000;
    if (p->opt.backoff_max_ms < p->opt.backoff_base_ms)
        p->opt.backoff_max_ms = p->opt.backoff_base_ms;
    p->slots = xcalloc(opt->max, sizeof(*p->slots));
    pthread_mutex_init(&p->lock, NULL);
    p->st.max = opt->max;
    return p;
}

/* pool_count counts slots in one state. Called with the lock held. */
static unsigned pool_count(const struct pool *p, enum pool_slot_state state)
{
    unsigned n = 0;
    for (unsigned i = 0; i < p->opt.max; i++)
        n += p->slots[i].state == state;
    return n;
}

/*
 * pool_claim takes the most recently used idle slot (it is the likeliest to be alive) and
 * marks it busy, or else reserves an empty slot for a new connection. Returns the slot or -1
 * when all are taken. Called with the lock held.
 */
static int pool_claim(struct pool *p)
{
    int idle = -1, empty = -1;
    for (unsigned i = 0; i < p->opt.max; i++) {
        struct pool_slot *s = &p->slots[i];
        if (s->state == SLOT_IDLE && (idle < 0 || s->last_used_ns > p->slots[idle].last_used_ns))
            idle = (int)i;
        else if (s->state == SLOT_EMPTY && empty < 0)
            empty = (int)i;
    }
    if (idle >= 0) {
        p->slots[idle].state = SLOT_BUSY;
        return idle;
    }
    if (empty >= 0) {
        p->slots[empty].state = SLOT_RESERVED;
        return empty;
    }
    return -1;
}

/* pool_dispatch serves queued waiters, oldest first, while slots are free. Lock held. */
static void pool_dispatch(struct pool *p)
{
    while (p->head) {
        int slot = pool_claim(p);
        if (slot < 0)
            return;
        struct pool_waiter *w = p->head;
        p->head = w->next;
        if (!p->head)
            p->tail = NULL;
        w->next = NULL;
        w->slot = slot;
        pthread_cond_signal(&w->cond);
    }
}

/* pool_unqueue removes a waiter that gave up. Lock held. */
static void pool_unqueue(struct pool *p, struct pool_waiter *w)
{
    struct pool_waiter **pp = &p->head, *prev = NULL;
    while (*pp && *pp != w) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return;
    *pp = w->next;
    if (p->tail == w)
        p->tail = prev;
}

/* pool_release_slot empties a reserved slot and lets the next waiter have it. Lock held. */
static void pool_release_slot(struct pool *p, int slot)
{
    p->slots[slot] = (struct pool_slot){0};
    pool_dispatch(p);
}

/* pool_wait_turn queues the caller and waits for a slot until deadline_ns. Lock held. */
static int pool_wait_turn(struct pool *p, int64_t deadline_ns)
{
    struct pool_waiter w = {.next = NULL, .slot = -1};
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w.cond, &attr);
    pthread_condattr_destroy(&attr);

    if (p->tail)
        p->tail->next = &w;
    else
        p->head = &w;
    p->tail = &w;

    struct timespec ts = {.tv_sec = deadline_ns / 1000000000, .tv_nsec = deadline_ns % 1000000000};
    while (w.slot < 0) {
        if (pthread_cond_timedwait(&w.cond, &p->lock, &ts) == ETIMEDOUT && w.slot < 0) {
            pool_unqueue(p, &w);
            break;
        }
    }
    pthread_cond_destroy(&w.cond);
    return w.slot;
}

/*
 * pool_connect fills the reserved slot with a new connection, unless the backoff of an earlier
 * failure is still running. On failure the slot is released. Called without the lock.
 */
static int pool_connect(struct pool *p, int slot, char *err, size_t errlen)
{
    pthread_mutex_lock(&p->lock);
    int64_t now = clock_mono_ns();
    if (now < p->next_connect_ns) {
        long left_ms = (long)((p->next_connect_ns - now) / 1000000) + 1;
        snprintf(err, errlen, "not connecting for another %ld ms after: %s", left_ms,
                 p->last_error);
        p->st.refused++;
        pool_release_slot(p, slot);
        pthread_mutex_unlock(&p->lock);
        return -EAGAIN;
    }
    pthread_mutex_unlock(&p->lock);

    void *conn = NULL;
    char why[sizeof(p->last_error)] = "";
    int rc = p->ops->connect(p->ctx, &conn, why, sizeof(why));
    if (rc == 0 && !conn)
        rc = -EIO;

    pthread_mutex_lock(&p->lock);
    now = clock_mono_ns();
    if (rc < 0) {
        p->st.connect_failures++;
        p->failures_in_row++;
        unsigned delay =
            clock_backoff_ms(p->failures_in_row, p->opt.backoff_base_ms, p->opt.backoff_max_ms);
        p->next_connect_ns = now + ms_to_ns(delay);
        if (!why[0])
            snprintf(why, sizeof(why), "%s", strerror(-rc));
        /* The first failure of a streak is news; the rest repeat it, so keep them quiet. */
        if (p->failures_in_row == 1 || strcmp(why, p->last_error) != 0)
            LOG_WARN("pool", "%s: connect failed (retrying with backoff): %s", p->name, why);
        else
            LOG_DEBUG("pool", "%s: connect failed again (%u in a row): %s", p->name,
                      p->failures_in_row, why);
        snprintf(p->last_error, sizeof(p->last_error), "%s", why);
        snprintf(err, errlen, "%s", why);
        pool_release_slot(p, slot);
        pthread_mutex_unlock(&p->lock);
        return rc;
    }
    if (p->failures_in_row)
        LOG_INFO("pool", "%s: connected again after %u failed attempts", p->name,
                 p->failures_in_row);
    p->failures_in_row = 0;
    p->next_connect_ns = 0;
    p->last_error[0] = '\0';
    p->st.connects++;
    p->slots[slot] = (struct pool_slot){
        .state = SLOT_BUSY, .conn = conn, .created_ns = now, .last_used_ns = now};
    pthread_mutex_unlock(&p->lock);
    return 0;
}

/*
 * pool_check vets an idle connection just claimed: too old, it is closed; idle too long and
 * failing its ping, it is closed as broken. Returns true when the connection can be lent;
 * otherwise the slot is left reserved for a new connection. Called without the lock; the slot
 * is busy and owned by the caller, so its fields are stable.
 */
static bool pool_check(struct pool *p, int slot)
{
    struct pool_slot *s = &p->slots[slot];
    int64_t now = clock_mono_ns();
    bool expired = p->opt.max_lifetime_ms && now - s->created_ns > ms_to_ns(p->opt.max_lifetime_ms);
    bool broken = false;
    if (!expired && p->opt.idle_check_ms && p->ops->ping &&
        now - s->last_used_ns > ms_to_ns(p->opt.idle_check_ms))
        broken = p->ops->ping(s->conn) != 0;
    if (!expired && !broken)
        return true;

    void *conn = s->conn;
    pthread_mutex_lock(&p->lock);
    s->state = SLOT_RESERVED;
    s->conn = NULL;
    if (expired)
        p->st.expired++;
    else
        p->st.broken++;
    pthread_mutex_unlock(&p->lock);
    if (broken)
        LOG_INFO("pool", "%s: an idle connection failed its ping; opening a new one", p->name);
    p->ops->close(conn);
    return false;
}

int pool_borrow(struct pool *p, int timeout_ms, void **conn, char *err, size_t errlen)
{
    int64_t start = clock_mono_ns();
    unsigned wait_ms = timeout_ms < 0 ? p->opt.borrow_timeout_ms : (unsigned)timeout_ms;
    *conn = NULL;

    pthread_mutex_lock(&p->lock);
    int slot = p->head ? -1 : pool_claim(p);
    if (slot < 0 && wait_ms > 0)
        slot = pool_wait_turn(p, start + ms_to_ns(wait_ms));
    if (slot < 0) {
        p->st.timeouts++;
        pthread_mutex_unlock(&p->lock);
        snprintf(err, errlen, "%s: all %u connections busy for %u ms", p->name, p->opt.max,
                 wait_ms);
        return -ETIMEDOUT;
    }
    bool fresh = p->slots[slot].state == SLOT_RESERVED;
    pthread_mutex_unlock(&p->lock);

    if (!fresh && !pool_check(p, slot))
        fresh = true;
    if (fresh) {
        int rc = pool_connect(p, slot, err, errlen);
        if (rc < 0)
            return rc;
    }

    pthread_mutex_lock(&p->lock);
    uint64_t waited = (uint64_t)(clock_mono_ns() - start);
    p->st.borrows++;
    p->st.wait_ns_total += waited;
    if (waited > p->st.wait_ns_max)
        p->st.wait_ns_max = waited;
    *conn = p->slots[slot].conn;
    pthread_mutex_unlock(&p->lock);
    return 0;
}

void pool_return(struct pool *p, void *conn, bool healthy)
{
    if (!conn)
        return;
    pthread_mutex_lock(&p->lock);
    int slot = -1;
    for (unsigned i = 0; i < p->opt.max; i++) {
        if (p->slots[i].state == SLOT_BUSY && p->slots[i].conn == conn) {
            slot = (int)i;
            break;
        }
    }
    assert(slot >= 0 && "pool_return of a connection this pool did not lend");
    if (slot < 0) {
        pthread_mutex_unlock(&p->lock);
        return;
    }
    struct pool_slot *s = &p->slots[slot];
    int64_t now = clock_mono_ns();
    bool expired = p->opt.max_lifetime_ms && now - s->created_ns > ms_to_ns(p->opt.max_lifetime_ms);
    if (healthy && !expired) {
        s->state = SLOT_IDLE;
        s->last_used_ns = now;
        pool_dispatch(p);
        pthread_mutex_unlock(&p->lock);
        return;
    }
    if (healthy)
        p->st.expired++;
    else
        p->st.broken++;
    s->state = SLOT_RESERVED;
    s->conn = NULL;
    pthread_mutex_unlock(&p->lock);

    p->ops->close(conn);

    pthread_mutex_lock(&p->lock);
    pool_release_slot(p, slot);
    pthread_mutex_unlock(&p->lock);
}

void pool_get_stats(struct pool *p, struct pool_stats *st)
{
    pthread_mutex_lock(&p->lock);
    *st = p->st;
    st->max = p->opt.max;
    st->in_use = pool_count(p, SLOT_BUSY);
    st->idle = pool_count(p, SLOT_IDLE);
    st->size = p->opt.max - pool_count(p, SLOT_EMPTY);
    st->waiters = 0;
    for (struct pool_waiter *w = p->head; w; w = w->next)
        st->waiters++;
    st->backing_off = clock_mono_ns() < p->next_connect_ns;
    pthread_mutex_unlock(&p->lock);
}

/* pool_series prints one family: optional HELP and TYPE, then its sample. */
static void pool_series(FILE *out, const char *family, const char *name, const char *type,
                        const char *help, const char *labels, bool with_help, double value)
{
    if (with_help)
        fprintf(out, "# HELP %s_%s %s\n# TYPE %s_%s %s\n", family, name, help, family, name, type);
    if (labels && labels[0])
        fprintf(out, "%s_%s{%s} %.17g\n", family, name, labels, value);
    else
        fprintf(out, "%s_%s %.17g\n", family, name, value);
}

void pool_stats_print(const struct pool_stats *st, FILE *out, const char *family,
                      const char *labels, bool with_help)
{
    const char *f = family && family[0] ? family : "telem_pool";
    pool_series(out, f, "max", "gauge", "Configured pool size.", labels, with_help, st->max);
    pool_series(out, f, "size", "gauge", "Open connections, counting ones being opened.", labels,
                with_help, st->size);
    pool_series(out, f, "in_use", "gauge", "Connections lent out.", labels, with_help, st->in_use);
    pool_series(out, f, "idle", "gauge", "Open connections waiting in the pool.", labels, with_help,
                st->idle);
    pool_series(out, f, "waiters", "gauge", "Borrowers waiting for a connection.", labels,
                with_help, st->waiters);
    pool_series(out, f, "borrows_total", "counter", "Successful borrows.", labels, with_help,
                (double)st->borrows);
    pool_series(out, f, "borrow_timeouts_total", "counter", "Borrows that gave up waiting.", labels,
                with_help, (double)st->timeouts);
    pool_series(out, f, "borrow_refused_total", "counter",
                "Borrows refused at once during connect backoff.", labels, with_help,
                (double)st->refused);
    pool_series(out, f, "borrow_wait_seconds_total", "counter",
                "Time successful borrows spent waiting and connecting.", labels, with_help,
                (double)st->wait_ns_total / 1e9);
    pool_series(out, f, "borrow_wait_seconds_max", "gauge", "Longest successful borrow.", labels,
                with_help, (double)st->wait_ns_max / 1e9);
    pool_series(out, f, "connects_total", "counter", "Connections opened.", labels, with_help,
                (double)st->connects);
    pool_series(out, f, "connect_failures_total", "counter", "Failed connection attempts.", labels,
                with_help, (double)st->connect_failures);
    pool_series(out, f, "broken_total", "counter", "Connections closed as broken.", labels,
                with_help, (double)st->broken);
    pool_series(out, f, "expired_total", "counter", "Connections retired for their age.", labels,
                with_help, (double)st->expired);
    pool_series(out, f, "backing_off", "gauge", "1 while a failed connect's backoff runs.", labels,
                with_help, st->backing_off);
}

void pool_destroy(struct pool *p)
{
    if (!p)
        return;
    assert(!p->head && "pool_destroy while borrowers wait");
    for (unsigned i = 0; i < p->opt.max; i++) {
        struct pool_slot *s = &p->slots[i];
        assert(s->state != SLOT_BUSY && s->state != SLOT_RESERVED &&
               "pool_destroy with a connection still borrowed");
        if (s->state == SLOT_IDLE)
            p->ops->close(s->conn);
    }
    pthread_mutex_destroy(&p->lock);
    free(p->slots);
    free(p);
}
