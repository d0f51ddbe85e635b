/*
 * test_producers.c: unit tests of the client-batch table (src/spool/producers.c): the repeat
 * rule, epochs, eviction of the least recently seen, idle expiry, rollback after a failed fsync,
 * the snapshot round trip, and the hash index against a simple model under churn.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>

#include <cmocka.h>

#include "spool/producers.h"

static struct batch_tag tag(const char *producer, uint64_t epoch, uint64_t n)
{
    struct batch_tag t;
    memset(&t, 0, sizeof(t));
    snprintf(t.producer, sizeof(t.producer), "%s", producer);
    t.epoch = epoch;
    t.n = n;
    return t;
}

static int is_repeat(struct producers *pt, const char *p, uint64_t epoch, uint64_t n, uint64_t now)
{
    struct batch_tag t = tag(p, epoch, n);
    uint64_t ticket = 0;
    return producers_check(pt, &t, now, &ticket);
}

static void record(struct producers *pt, const char *p, uint64_t epoch, uint64_t n, uint64_t now,
                   uint64_t ticket, uint64_t durable)
{
    struct batch_tag t = tag(p, epoch, n);
    producers_record(pt, &t, now, ticket, durable);
}

static void test_repeat_rule(void **state)
{
    (void)state;
    struct producers *pt = producers_create(16, 0);
    assert_false(is_repeat(pt, "a", 1, 1, 100));
    record(pt, "a", 1, 1, 100, 1, 0);
    assert_true(is_repeat(pt, "a", 1, 1, 100));
    assert_false(is_repeat(pt, "a", 1, 2, 100));
    record(pt, "a", 1, 2, 100, 2, 0);
    record(pt, "a", 1, 5, 100, 3, 0); /* gaps are fine */
    for (uint64_t n = 1; n <= 5; n++)
        assert_true(is_repeat(pt, "a", 1, n, 100));
    assert_false(is_repeat(pt, "a", 1, 6, 100));
    /* Another producer, same numbers: independent. */
    assert_false(is_repeat(pt, "b", 1, 1, 100));
    /* A repeat reports the producer's last ticket. */
    struct batch_tag t = tag("a", 1, 2);
    uint64_t ticket = 0;
    assert_int_equal(producers_check(pt, &t, 100, &ticket), 1);
    assert_int_equal(ticket, 3);
    /* A new epoch starts over, and the old epoch is no longer remembered. */
    assert_false(is_repeat(pt, "a", 2, 1, 100));
    record(pt, "a", 2, 1, 100, 4, 0);
    assert_true(is_repeat(pt, "a", 2, 1, 100));
    assert_false(is_repeat(pt, "a", 1, 1, 100));
    assert_int_equal(producers_count(pt), 1);
    producers_destroy(pt);
    producers_destroy(NULL);
}

static void test_evicts_least_recently_seen(void **state)
{
    (void)state;
    struct producers *pt = producers_create(3, 0);
    record(pt, "a", 1, 1, 1, 1, 0);
    record(pt, "b", 1, 1, 2, 2, 0);
    record(pt, "c", 1, 1, 3, 3, 0);
    assert_true(is_repeat(pt, "a", 1, 1, 4)); /* a seen again: b is now the oldest */
    record(pt, "d", 1, 1, 5, 4, 0);
    assert_int_equal(producers_count(pt), 3);
    assert_false(is_repeat(pt, "b", 1, 1, 6));
    assert_true(is_repeat(pt, "a", 1, 1, 6));
    assert_true(is_repeat(pt, "c", 1, 1, 6));
    assert_true(is_repeat(pt, "d", 1, 1, 6));
    producers_destroy(pt);
}

static void test_idle_expiry(void **state)
{
    (void)state;
    struct producers *pt = producers_create(8, 10);
    record(pt, "a", 1, 1, 100, 1, 0);
    record(pt, "b", 1, 1, 105, 2, 0);
    assert_true(is_repeat(pt, "a", 1, 1, 110)); /* exactly idle_s: still known, and seen now */
    assert_true(is_repeat(pt, "b", 1, 1, 115));
    assert_false(is_repeat(pt, "a", 1, 1, 121)); /* 11 s idle: forgotten */
    assert_int_equal(producers_count(pt), 1);
    producers_expire(pt, 200);
    assert_int_equal(producers_count(pt), 0);
    producers_destroy(pt);
}

static void test_rollback(void **state)
{
    (void)state;
    struct producers *pt = producers_create(8, 0);
    record(pt, "a", 1, 1, 1, 1, 0); /* new, not yet durable */
    record(pt, "b", 7, 3, 1, 2, 0);
    /* Ticket 2 durable; then more batches that will be cut. */
    record(pt, "b", 7, 4, 1, 3, 2);
    record(pt, "b", 7, 5, 1, 4, 2); /* prev stays the durable state (7, 3) */
    record(pt, "c", 1, 1, 1, 5, 2);
    producers_rollback(pt, 2);
    assert_true(is_repeat(pt, "a", 1, 1, 1)); /* ticket 1 <= 2: kept */
    assert_true(is_repeat(pt, "b", 7, 3, 1));
    assert_false(is_repeat(pt, "b", 7, 4, 1)); /* cut off: a retry is stored again */
    assert_false(is_repeat(pt, "c", 1, 1, 1)); /* new and cut: gone */
    assert_int_equal(producers_count(pt), 2);
    /* Rolling back everything to 0 removes what never became durable. */
    producers_rollback(pt, 0);
    assert_int_equal(producers_count(pt), 0);
    producers_destroy(pt);
}

static void test_snapshot_roundtrip(void **state)
{
    (void)state;
    struct producers *pt = producers_create(4, 0);
    record(pt, "a", 1, 10, 50, 1, 0);
    record(pt, "bb", 2, 20, 60, 2, 0);
    record(pt, "ccc", 3, 30, 70, 3, 0);
    size_t need = producers_snapshot_size(pt);
    assert_int_equal(need, 4 + 3 * (1 + 8 + 8 + 8) + 6);
    uint8_t buf[512];
    assert_int_equal(producers_snapshot_encode(pt, buf, need - 1), -ENOSPC);
    int n = producers_snapshot_encode(pt, buf, sizeof(buf));
    assert_int_equal(n, (int)need);

    struct producers *back = producers_create(4, 100);
    record(back, "stale", 1, 1, 80, 1, 0); /* replaced by the load */
    assert_int_equal(producers_snapshot_load(back, buf, (size_t)n, 100), 0);
    assert_int_equal(producers_count(back), 3);
    assert_false(is_repeat(back, "stale", 1, 1, 100));
    assert_true(is_repeat(back, "a", 1, 10, 100) && !is_repeat(back, "a", 1, 11, 100));
    assert_true(is_repeat(back, "bb", 2, 20, 100) && !is_repeat(back, "bb", 2, 21, 100));
    assert_true(is_repeat(back, "ccc", 3, 30, 100));
    /* Loaded entries are durable: a rollback keeps them. */
    producers_rollback(back, 0);
    assert_int_equal(producers_count(back), 3);
    producers_destroy(back);

    /* Recency order survives: loading into a table of 2 keeps the two most recent. */
    struct producers *small = producers_create(2, 0);
    assert_int_equal(producers_snapshot_load(small, buf, (size_t)n, 100), 0);
    assert_int_equal(producers_count(small), 2);
    assert_false(is_repeat(small, "a", 1, 10, 100));
    assert_true(is_repeat(small, "ccc", 3, 30, 100));
    producers_destroy(small);

    /* Idle entries are skipped at load. */
    struct producers *idle = producers_create(4, 25);
    assert_int_equal(producers_snapshot_load(idle, buf, (size_t)n, 80), 0);
    assert_int_equal(producers_count(idle), 2); /* a (50) is 30 s old */
    producers_destroy(idle);

    /* Malformed snapshots leave the table unchanged. */
    struct producers *keep = producers_create(4, 0);
    record(keep, "k", 1, 1, 1, 1, 0);
    for (int k = 0; k < n; k++)
        assert_int_equal(producers_snapshot_load(keep, buf, (size_t)k, 1), -EINVAL);
    uint8_t longer[520];
    memcpy(longer, buf, (size_t)n);
    longer[n] = 0;
    assert_int_equal(producers_snapshot_load(keep, longer, (size_t)n + 1, 1), -EINVAL);
    uint8_t bad[512];
    memcpy(bad, buf, (size_t)n);
    bad[0] = 4; /* count says 4, only 3 are there */
    assert_int_equal(producers_snapshot_load(keep, bad, (size_t)n, 1), -EINVAL);
    memcpy(bad, buf, (size_t)n);
    bad[5] = '!'; /* producer name */
    assert_int_equal(producers_snapshot_load(keep, bad, (size_t)n, 1), -EINVAL);
    assert_int_equal(producers_count(keep), 1);
    assert_true(is_repeat(keep, "k", 1, 1, 1));
    producers_destroy(keep);

    /* An empty table. */
    struct producers *empty = producers_create(1, 0);
    n = producers_snapshot_encode(empty, buf, sizeof(buf));
    assert_int_equal(n, 4);
    assert_int_equal(producers_snapshot_load(pt, buf, 4, 1), 0);
    assert_int_equal(producers_count(pt), 0);
    producers_destroy(empty);
    producers_destroy(pt);
}

/* Random churn against a model: inserts, repeats, evictions and rollbacks keep the index whole. */
static void test_churn_against_model(void **state)
{
    (void)state;
    enum { MAX = 37, NAMES = 120, STEPS = 200000 };
    struct producers *pt = producers_create(MAX, 0);
    struct {
        bool known;
        uint64_t n;
        uint64_t seen;
    } model[NAMES];
    memset(model, 0, sizeof(model));
    uint64_t now = 1;
    uint32_t rnd = 12345;
    for (int step = 0; step < STEPS; step++) {
        rnd = rnd * 1103515245u + 12345u;
        unsigned id = (rnd >> 8) % NAMES;
        char name[16];
        snprintf(name, sizeof(name), "p%u", id);
        now++;
        bool rep = is_repeat(pt, name, 1, model[id].n ? model[id].n : 1, now);
        assert_int_equal(rep, model[id].known && model[id].n >= 1);
        if (rep)
            model[id].seen = now;
        model[id].n++;
        record(pt, name, 1, model[id].n, now, (uint64_t)step + 1, (uint64_t)step + 1);
        if (!model[id].known) {
            size_t live = 0;
            for (unsigned k = 0; k < NAMES; k++)
                live += model[k].known;
            if (live == MAX) {
                unsigned oldest = NAMES;
                for (unsigned k = 0; k < NAMES; k++)
                    if (model[k].known && (oldest == NAMES || model[k].seen < model[oldest].seen))
                        oldest = k;
                model[oldest].known = false;
                model[oldest].n = 0;
            }
        }
        model[id].known = true;
        model[id].seen = now;
        size_t live = 0;
        for (unsigned k = 0; k < NAMES; k++)
            live += model[k].known;
        assert_int_equal(producers_count(pt), live);
    }
    for (unsigned k = 0; k < NAMES; k++) {
        char name[16];
        snprintf(name, sizeof(name), "p%u", k);
        assert_int_equal(is_repeat(pt, name, 1, 1, now), model[k].known);
    }
    producers_destroy(pt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_repeat_rule),
        cmocka_unit_test(test_evicts_least_recently_seen),
        cmocka_unit_test(test_idle_expiry),
        cmocka_unit_test(test_rollback),
        cmocka_unit_test(test_snapshot_roundtrip),
        cmocka_unit_test(test_churn_against_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
