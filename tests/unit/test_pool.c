/*
 * test_pool.c: unit tests of src/pool with a fake connection type: exhaustion and timeouts,
 * FIFO fairness among waiters, broken connections replaced, ping after idle, max lifetime,
 * connect failures with backoff, and many threads never holding more than max connections.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/clock.h"
#include "pool/pool.h"

/* The fake server: counts what the pool does to it and fails on demand. */
struct fake_server {
    atomic_int connects;
    atomic_int closes;
    atomic_int pings;
    atomic_int open;     /* connections currently open */
    atomic_int down;     /* connect fails while set */
    atomic_int ping_bad; /* ping fails while set */
    atomic_int next_id;
};

struct fake_conn {
    struct fake_server *server;
    int id;
};

static int fake_connect(void *ctx, void **conn, char *err, size_t errlen)
{
    struct fake_server *s = ctx;
    if (atomic_load(&s->down)) {
        snprintf(err, errlen, "fake server is down");
        return -ECONNREFUSED;
    }
    struct fake_conn *c = malloc(sizeof(*c));
    c->server = s;
    c->id = atomic_fetch_add(&s->next_id, 1) + 1;
    atomic_fetch_add(&s->connects, 1);
    atomic_fetch_add(&s->open, 1);
    *conn = c;
    return 0;
}

static int fake_ping(void *conn)
{
    struct fake_conn *c = conn;
    atomic_fetch_add(&c->server->pings, 1);
    return atomic_load(&c->server->ping_bad) ? -EIO : 0;
}

static void fake_close(void *conn)
{
    struct fake_conn *c = conn;
    atomic_fetch_add(&c->server->closes, 1);
    atomic_fetch_sub(&c->server->open, 1);
    free(c);
}

static const struct pool_conn_ops fake_ops = {
    .connect = fake_connect,
    .ping = fake_ping,
    .close = fake_close,
};

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static struct pool *make_pool(struct fake_server *s, unsigned max)
{
    memset(s, 0, sizeof(*s));
    struct pool_options opt = {
        .max = max, .borrow_timeout_ms = 1000, .backoff_base_ms = 50, .backoff_max_ms = 100};
    struct pool *p = pool_create("test", &fake_ops, s, &opt);
    assert_non_null(p);
    return p;
}

static void test_create_rejects_zero_max(void **state)
{
    (void)state;
    struct pool_options opt = {.max = 0};
    assert_null(pool_create("x", &fake_ops, NULL, &opt));
    pool_destroy(NULL);
}

static void test_borrow_reuses_connection(void **state)
{
    (void)state;
    struct fake_server s;
    struct pool *p = make_pool(&s, 2);
    char err[200];
    void *a, *b;
    assert_int_equal(pool_borrow(p, 0, &a, err, sizeof(err)), 0);
    pool_return(p, a, true);
    assert_int_equal(pool_borrow(p, 0, &b, err, sizeof(err)), 0);
    assert_ptr_equal(a, b);
    assert_int_equal(atomic_load(&s.connects), 1);

    struct pool_stats st;
    pool_get_stats(p, &st);
    assert_int_equal(st.size, 1);
    assert_int_equal(st.in_use, 1);
    assert_int_equal(st.idle, 0);
    assert_int_equal(st.borrows, 2);
    assert_int_equal(st.connects, 1);
    pool_return(p, b, true);
    pool_destroy(p);
    assert_int_equal(atomic_load(&s.open), 0);
}

static void test_exhaustion_and_timeout(void **state)
{
    (void)state;
    struct fake_server s;
    struct pool *p = make_pool(&s, 2);
    char err[200];
    void *a, *b, *c;
    assert_int_equal(pool_borrow(p, 0, &a, err, sizeof(err)), 0);
    assert_int_equal(pool_borrow(p, 0, &b, err, sizeof(err)), 0);
    assert_ptr_not_equal(a, b);

    /* No wait: at once. */
    int64_t t0 = clock_mono_ns();
    assert_int_equal(pool_borrow(p, 0, &c, err, sizeof(err)), -ETIMEDOUT);
    assert_null(c);
    assert_true(clock_mono_ns() - t0 < 20 * 1000000LL);

    /* A wait: at least that long, not much longer. */
    t0 = clock_mono_ns();
    assert_int_equal(pool_borrow(p, 60, &c, err, sizeof(err)), -ETIMEDOUT);
    int64_t waited_ms = (clock_mono_ns() - t0) / 1000000;
    assert_true(waited_ms >= 59);
    assert_true(waited_ms < 1000);
    assert_non_null(strstr(err, "busy"));

    struct pool_stats st;
    pool_get_stats(p, &st);
    assert_int_equal(st.timeouts, 2);
    assert_int_equal(st.waiters, 0);
    assert_int_equal(st.in_use, 2);
    assert_int_equal(atomic_load(&s.connects), 2);

    pool_return(p, a, true);
    pool_return(p, b, true);
    pool_destroy(p);
}

/* FIFO: threads that queued in order 1, 2, 3 get the one connection in that order. */
struct fifo_ctx {
    struct pool *p;
    int index;
    atomic_int *order_next;
    int *order;
};

static void *fifo_thread(void *arg)
{
    struct fifo_ctx *f = arg;
    char err[200];
    void *c;
    int rc = pool_borrow(f->p, 5000, &c, err, sizeof(err));
    if (rc == 0) {
        f->order[atomic_fetch_add(f->order_next, 1)] = f->index;
        sleep_ms(5);
        pool_return(f->p, c, true);
    }
    return NULL;
}

static void wait_for_waiters(struct pool *p, unsigned n)
{
    for (int i = 0; i < 2000; i++) {
        struct pool_stats st;
        pool_get_stats(p, &st);
        if (st.waiters == n)
            return;
        sleep_ms(1);
    }
    fail_msg("waiters never reached %u", n);
}

static void test_fifo_fairness(void **state)
{
    (void)state;
    struct fake_server s;
    struct pool *p = make_pool(&s, 1);
    char err[200];
    void *held;
    assert_int_equal(pool_borrow(p, 0, &held, err, sizeof(err)), 0);

    enum { N = 5 };
    pthread_t th[N];
    struct fifo_ctx ctx[N];
    atomic_int order_next = 0;
    int order[N] = {0};
    for (int i = 0; i < N; i++) {
        ctx[i] =
            (struct fifo_ctx){.p = p, .index = i + 1, .order_next = &order_next, .order = order};
        pthread_create(&th[i], NULL, fifo_thread, &ctx[i]);
        wait_for_waiters(p, (unsigned)i + 1);
    }
    pool_return(p, held, true);
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < N; i++)
        assert_int_equal(order[i], i + 1);
    assert_int_equal(atomic_load(&s.connects), 1);
    pool_destroy(p);
}

/* A newcomer with no wait never overtakes a queued waiter. */
static void test_no_barging(void **state)
{
    (void)state;
    struct fake_server s;
    struct pool *p = make_pool(&s, 1);
    char err[200];
    void *held, *c;
    assert_int_equal(pool_borrow(p, 0, &held, err, sizeof(err)), 0);
    atomic_int order_next = 0;
    int order[1] = {0};
    struct fifo_ctx ctx = {.p = p, .index = 7, .order_next = &order_next, .order = order};
    pthread_t th;
    pthread_create(&th, NULL, fifo_thread, &ctx);
    wait_for_waiters(p, 1);
    pool_return(p, held, true);
    /* The connection went straight to the waiter: nothing is idle for us. */
    int rc = pool_borrow(p, 0, &c, err, sizeof(err));
    if (rc == 0) {
        /* Only possible after the waiter finished and returned it. */
        assert_int_equal(atomic_load(&order_next), 1);
        pool_return(p, c, true);
    }
    pthread_join(th, NULL);
    assert_int_equal(order[0], 7);
    pool_destroy(p);
}

static void test_broken_connection_replaced(void **state)
{
    (void)state;
    struct fake_server s;
    struct pool *p = make_pool(&s, 1);
    char err[200];
    void *a, *b;
    assert_int_equal(pool_borrow(p, 0, &a, err, sizeof(err)), 0);
    int first_id = ((struct fake_conn *)a)->id;
    pool_return(p, a, false);
    assert_int_equal(atomic_load(&s.closes), 1);
    assert_int_equal(atomic_load(&s.open), 0);

    assert_int_equal(pool_borrow(p, 0, &b, err, sizeof(err)), 0);
    assert_int_not_equal(((struct fake_conn *)b)->id, first_id);
    struct pool_stats st;
    pool_get_stats(p, &st);
    assert_int_equal(st.broken, 1);
    assert_int_equal(st.connects, 2);
    assert_int_equal(st.size, 1);
    pool_return(p, b, true);
    pool_destroy(p);
}

/* A waiter is served when a broken connection's slot frees up. */
static void test_waiter_gets_slot_of_broken(void **state)
{
    (void)state;
    struct fake_server s;
    struct pool *p = make_pool(&s, 1);
    char err[200];
    void *held;
    assert_int_equal(pool_borrow(p, 0, &held, err, sizeof(err)), 0);
    atomic_int order_next = 0;
    int order[1] = {0};
    struct fifo_ctx ctx = {.p = p, .index = 3, .order_next = &order_next, .order = order};
    pthread_t th;
    pthread_create(&th, NULL, fifo_thread, &ctx);
    wait_for_waiters(p, 1);
    pool_return(p, held, false);
    pthread_join(th, NULL);
    assert_int_equal(order[0], 3);
    assert_int_equal(atomic_load(&s.connects), 2);
    pool_destroy(p);
}

static void test_ping_after_idle(void **state)
{
    (void)state;
    struct fake_server s;
    memset(&s, 0, sizeof(s));
    struct pool_options opt = {
        .max = 1, .idle_check_ms = 30, .backoff_base_ms = 10, .backoff_max_ms = 20};
    struct pool *p = pool_create("test", &fake_ops, &s, &opt);
    char err[200];
    void *a;
    assert_int_equal(pool_borrow(p, 0, &a, err, sizeof(err)), 0);
    pool_return(p, a, true);
    /* Reused at once: no ping. */
    assert_int_equal(pool_borrow(p, 0, &a, err, sizeof(err)), 0);
    assert_int_equal(atomic_load(&s.pings), 0);
    pool_return(p, a, true);

    /* Idle past the check: pinged, still good, same connection. */
    sleep_ms(50);
    void *b;
    assert_int_equal(pool_borrow(p, 0, &b, err, sizeof(err)), 0);
    assert_int_equal(atomic_load(&s.pings), 1);
    assert_ptr_equal(a, b);
    pool_return(p, b, true);

    /* Idle again, and the ping fails: replaced by a new connection. */
    sleep_ms(50);
    atomic_store(&s.ping_bad, 1);
    assert_int_equal(pool_borrow(p, 0, &b, err, sizeof(err)), 0);
    assert_int_equal(atomic_load(&s.pings), 2);
    assert_int_equal(atomic_load(&s.connects), 2);
    assert_int_equal(atomic_load(&s.open), 1);
    struct pool_stats st;
    pool_get_stats(p, &st);
    assert_int_equal(st.broken, 1);
    pool_return(p, b, true);
    pool_destroy(p);
    assert_int_equal(atomic_load(&s.open), 0);
}

static void test_max_lifetime(void **state)
{
    (void)state;
    struct fake_server s;
    memset(&s, 0, sizeof(s));
    struct pool_options opt = {.max = 1, .max_lifetime_ms = 30};
    struct pool *p = pool_create("test", &fake_ops, &s, &opt);
    char err[200];
    void *a;
    assert_int_equal(pool_borrow(p, 0, &a, err, sizeof(err)), 0);
    pool_return(p, a, true);
    sleep_ms(50);
    /* Too old when borrowed: closed and replaced. */
    assert_int_equal(pool_borrow(p, 0, &a, err, sizeof(err)), 0);
    assert_int_equal(atomic_load(&s.connects), 2);
    /* Too old when returned: closed at once. */
    sleep_ms(50);
    pool_return(p, a, true);
    assert_int_equal(atomic_load(&s.open), 0);
    struct pool_stats st;
    pool_get_stats(p, &st);
    assert_int_equal(st.expired, 2);
    assert_int_equal(st.broken, 0);
    assert_int_equal(st.size, 0);
    pool_destroy(p);
}

static void test_connect_failure_backoff(void **state)
{
    (void)state;
    struct fake_server s;
    memset(&s, 0, sizeof(s));
    struct pool_options opt = {.max = 2, .backoff_base_ms = 80, .backoff_max_ms = 80};
    struct pool *p = pool_create("test", &fake_ops, &s, &opt);
    char err[200];
    void *c;
    atomic_store(&s.down, 1);
    assert_int_equal(pool_borrow(p, 100, &c, err, sizeof(err)), -ECONNREFUSED);
    assert_null(c);
    assert_non_null(strstr(err, "fake server is down"));

    /* During the backoff: refused at once, and the server sees no attempt. */
    int64_t t0 = clock_mono_ns();
    for (int i = 0; i < 50; i++) {
        assert_int_equal(pool_borrow(p, 100, &c, err, sizeof(err)), -EAGAIN);
        assert_non_null(strstr(err, "fake server is down"));
    }
    assert_true(clock_mono_ns() - t0 < 30 * 1000000LL);
    struct pool_stats st;
    pool_get_stats(p, &st);
    assert_int_equal(st.connect_failures, 1);
    assert_int_equal(st.refused, 50);
    assert_true(st.backing_off);
    assert_int_equal(st.size, 0);

    /* Backoff over, server back: connects. */
    atomic_store(&s.down, 0);
    sleep_ms(90);
    assert_int_equal(pool_borrow(p, 100, &c, err, sizeof(err)), 0);
    pool_get_stats(p, &st);
    assert_false(st.backing_off);
    assert_int_equal(st.connects, 1);
    pool_return(p, c, true);
    pool_destroy(p);
}

/* Threads hammering a small pool never hold more than max connections at once. */
struct hammer_ctx {
    struct pool *p;
    atomic_int *holding;
    atomic_int *peak;
    atomic_int *failures;
    int rounds;
};

static void *hammer_thread(void *arg)
{
    struct hammer_ctx *h = arg;
    char err[200];
    for (int i = 0; i < h->rounds; i++) {
        void *c;
        if (pool_borrow(h->p, 5000, &c, err, sizeof(err)) != 0) {
            atomic_fetch_add(h->failures, 1);
            continue;
        }
        int now = atomic_fetch_add(h->holding, 1) + 1;
        int peak = atomic_load(h->peak);
        while (now > peak && !atomic_compare_exchange_weak(h->peak, &peak, now))
            ;
        if (i % 7 == 0)
            sleep_ms(0);
        atomic_fetch_sub(h->holding, 1);
        /* Now and then a connection breaks. */
        pool_return(h->p, c, i % 97 != 0);
    }
    return NULL;
}

static void test_concurrent_borrowers_bounded(void **state)
{
    (void)state;
    struct fake_server s;
    struct pool *p = make_pool(&s, 3);
    enum { THREADS = 8 };
    pthread_t th[THREADS];
    atomic_int holding = 0, peak = 0, failures = 0;
    struct hammer_ctx h = {
        .p = p, .holding = &holding, .peak = &peak, .failures = &failures, .rounds = 3000};
    for (int i = 0; i < THREADS; i++)
        pthread_create(&th[i], NULL, hammer_thread, &h);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&failures), 0);
    assert_true(atomic_load(&peak) <= 3);
    assert_true(atomic_load(&peak) >= 1);
    struct pool_stats st;
    pool_get_stats(p, &st);
    assert_int_equal(st.borrows, THREADS * 3000);
    assert_int_equal(st.in_use, 0);
    assert_int_equal(st.waiters, 0);
    assert_true(st.size <= 3);
    assert_true(atomic_load(&s.open) <= 3);
    assert_int_equal(st.connects - st.broken, (uint64_t)atomic_load(&s.open));
    pool_destroy(p);
    assert_int_equal(atomic_load(&s.open), 0);
}

static void test_stats_print(void **state)
{
    (void)state;
    struct pool_stats st = {
        .max = 4, .size = 2, .in_use = 1, .idle = 1, .borrows = 10, .wait_ns_total = 1500000000};
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    pool_stats_print(&st, out, NULL, "sink=\"main\"", true);
    pool_stats_print(&st, out, "telem_x_pool", NULL, false);
    fclose(out);
    assert_non_null(strstr(buf, "# TYPE telem_pool_size gauge\n"));
    assert_non_null(strstr(buf, "telem_pool_size{sink=\"main\"} 2\n"));
    assert_non_null(strstr(buf, "telem_pool_borrows_total{sink=\"main\"} 10\n"));
    assert_non_null(strstr(buf, "telem_pool_borrow_wait_seconds_total{sink=\"main\"} 1.5\n"));
    assert_non_null(strstr(buf, "\ntelem_x_pool_max 4\n"));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_rejects_zero_max),
        cmocka_unit_test(test_borrow_reuses_connection),
        cmocka_unit_test(test_exhaustion_and_timeout),
        cmocka_unit_test(test_fifo_fairness),
        cmocka_unit_test(test_no_barging),
        cmocka_unit_test(test_broken_connection_replaced),
        cmocka_unit_test(test_waiter_gets_slot_of_broken),
        cmocka_unit_test(test_ping_after_idle),
        cmocka_unit_test(test_max_lifetime),
        cmocka_unit_test(test_connect_failure_backoff),
        cmocka_unit_test(test_concurrent_borrowers_bounded),
        cmocka_unit_test(test_stats_print),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
