/*
 * test_sink_worker.c: unit tests of the sink worker (src/sink/sink_worker.c) driving a fake
 * sink over a real spool in a temporary folder: batches in order with the right cursors,
 * RETRY redelivering the same batch, ERROR splitting down to the bad records (quarantined to
 * the dead-letter file, the rest stored), lanes (each record exactly once, in the lane of its
 * profile; idle lanes' cursors still advance), a store cursor ahead of the spool (fatal,
 * -ERANGE), resuming after the store's cursor on restart, draining on stop, and the settings
 * table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/clock.h"
#include "core/conf.h"
#include "core/record.h"
#include "sink/sink.h"
#include "sink/sink_worker_conf.h"
#include "spool/frame.h"
#include "spool/spool.h"

#define MAX_SEQ    4096
#define MAX_LANES  4
#define MAX_WRITES 8192
#define MAX_BAD    4

/* One write() call as the fake store saw it. */
struct write_call {
    unsigned lane;
    size_t n;
    uint64_t first; /* 0 when n == 0 */
    uint64_t last;
    uint64_t cursor;
    enum sink_result answer;
};

/* The fake store: what it holds survives worker restarts, like a database. */
struct fake_store {
    pthread_mutex_t lock;
    unsigned lanes;
    uint64_t cursor[MAX_LANES];
    unsigned stored[MAX_SEQ + 1]; /* times each seq was stored */
    unsigned lane_of[MAX_SEQ + 1];
    struct write_call calls[MAX_WRITES];
    size_t ncalls;
    unsigned opens;
    int retries_left;      /* answer RETRY to this many writes */
    int empty_errors_left; /* answer ERROR to this many empty writes */
    bool open_fails;       /* open_lane always answers RETRY */
    uint64_t bad[MAX_BAD]; /* refuse any batch holding one of these */
    size_t nbad;
    bool violation; /* a write broke the sink contract */
    char violation_text[160];
};

static struct fake_store *fake;

static void fake_reset(unsigned lanes)
{
    if (!fake)
        fake = calloc(1, sizeof(*fake));
    else
        memset(fake, 0, sizeof(*fake));
    pthread_mutex_init(&fake->lock, NULL);
    fake->lanes = lanes;
}

static int fake_create(const struct sink_config *cfg, void **state, char *err, size_t errlen)
{
    (void)cfg;
    (void)err;
    (void)errlen;
    *state = fake;
    return 0;
}

static unsigned fake_lanes(void *state)
{
    return ((struct fake_store *)state)->lanes;
}

static enum sink_result fake_open_lane(void *state, unsigned lane, uint64_t *cursor, char *err,
                                       size_t errlen)
{
    struct fake_store *s = state;
    pthread_mutex_lock(&s->lock);
    s->opens++;
    bool fails = s->open_fails;
    *cursor = s->cursor[lane];
    pthread_mutex_unlock(&s->lock);
    if (fails) {
        snprintf(err, errlen, "fake: connection refused");
        return SINK_RETRY;
    }
    return SINK_OK;
}

static void fake_violation(struct fake_store *s, const char *what, uint64_t a, uint64_t b)
{
    if (!s->violation)
        snprintf(s->violation_text, sizeof(s->violation_text), "%s (%llu, %llu)", what,
                 (unsigned long long)a, (unsigned long long)b);
    s->violation = true;
}

static enum sink_result fake_write(void *state, unsigned lane, const struct record *recs, size_t n,
                                   uint64_t cursor, char *err, size_t errlen)
{
    struct fake_store *s = state;
    pthread_mutex_lock(&s->lock);
    struct write_call *c = s->ncalls < MAX_WRITES ? &s->calls[s->ncalls++] : NULL;
    enum sink_result answer = SINK_OK;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && recs[i].seq <= recs[i - 1].seq)
            fake_violation(s, "records out of order", recs[i - 1].seq, recs[i].seq);
        if (recs[i].seq > cursor)
            fake_violation(s, "record after the cursor", recs[i].seq, cursor);
        if (recs[i].seq <= s->cursor[lane])
            fake_violation(s, "record before the stored cursor", recs[i].seq, s->cursor[lane]);
        if (record_lane(&recs[i], s->lanes) != lane)
            fake_violation(s, "record of another lane", recs[i].seq, lane);
        for (size_t b = 0; b < s->nbad; b++) {
            if (recs[i].seq == s->bad[b]) {
                snprintf(err, errlen, "fake: record %llu is refused",
                         (unsigned long long)recs[i].seq);
                answer = SINK_ERROR;
            }
        }
    }
    if (cursor < s->cursor[lane])
        fake_violation(s, "cursor moved back", s->cursor[lane], cursor);
    if (answer == SINK_OK && n == 0 && s->empty_errors_left > 0) {
        s->empty_errors_left--;
        snprintf(err, errlen, "fake: empty batch refused");
        answer = SINK_ERROR;
    }
    if (answer == SINK_OK && s->retries_left > 0) {
        s->retries_left--;
        snprintf(err, errlen, "fake: lock timeout");
        answer = SINK_RETRY;
    }
    if (answer == SINK_OK) {
        for (size_t i = 0; i < n; i++) {
            if (recs[i].seq <= MAX_SEQ) {
                s->stored[recs[i].seq]++;
                s->lane_of[recs[i].seq] = lane;
            }
        }
        s->cursor[lane] = cursor;
    }
    if (c)
        *c = (struct write_call){
            .lane = lane,
            .n = n,
            .first = n ? recs[0].seq : 0,
            .last = n ? recs[n - 1].seq : 0,
            .cursor = cursor,
            .answer = answer,
        };
    pthread_mutex_unlock(&s->lock);
    return answer;
}

static void fake_metrics(void *state, const struct sink_metrics_out *m)
{
    (void)state;
    fprintf(m->out, "fake_metric{sink=\"%s\"} 1\n", m->sink_name);
}

static void fake_destroy(void *state)
{
    (void)state; /* the store outlives the worker */
}

static const struct sink_ops fake_ops = {
    .scheme = "fake",
    .create = fake_create,
    .lanes = fake_lanes,
    .open_lane = fake_open_lane,
    .write = fake_write,
    .metrics = fake_metrics,
    .destroy = fake_destroy,
};

/* ---- the spool side ---- */

struct fixture {
    char dir[64];
    char spool_dir[96];
    struct spool *sp;
    struct sink_worker_options opt;
    struct sink_config cfg;
};

static void spool_start(struct fixture *f)
{
    struct spool_options so = {
        .dir = f->spool_dir,
        .segment_bytes = 1u << 20,
        .fsync = SPOOL_FSYNC_ALWAYS,
    };
    char err[256] = "";
    f->sp = spool_open(&so, err, sizeof(err));
    if (!f->sp)
        print_error("spool_open: %s\n", err);
    assert_non_null(f->sp);
    f->cfg.spool_id = spool_id(f->sp);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_sink_worker.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->spool_dir, sizeof(f->spool_dir), "%s/spool", f->dir);
    spool_start(f);
    assert_int_equal(conf_defaults(sink_worker_conf, &f->opt), 0);
    f->opt.flush_interval_ms = 20;
    f->opt.retry_base_ms = 1;
    f->opt.retry_max_ms = 5;
    f->cfg.name = "fake";
    f->cfg.url = "fake:";
    f->cfg.data_dir = f->dir;
    fake_reset(1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    spool_close(f->sp);
    conf_free(sink_worker_conf, &f->opt);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    free(fake);
    fake = NULL;
    return 0;
}

/* append_records adds n metric records, profile chosen by profile_of(i), and waits until the
 * spool says they are durable. Returns the first seq. */
static uint64_t append_records(struct fixture *f, unsigned n, unsigned profiles)
{
    uint8_t *buf = malloc((size_t)n * FRAME_RECORD_MAX);
    size_t len = 0;
    for (unsigned i = 0; i < n; i++) {
        struct record r;
        memset(&r, 0, sizeof(r));
        r.kind = RECORD_METRIC;
        r.ts_ns = 1700000000000000000LL + i;
        r.profile_len = (uint8_t)snprintf(r.profile, sizeof(r.profile), "profile-%u",
                                          profiles ? i % profiles : 0);
        r.name_len = (uint8_t)snprintf(r.name, sizeof(r.name), "m");
        r.value = i;
        int w = frame_record_encode(&r, buf + len, FRAME_RECORD_MAX);
        assert_true(w > 0);
        len += (size_t)w;
    }
    uint64_t first = 0, ticket = 0;
    assert_int_equal(spool_append(f->sp, buf, len, n, NULL, &first, &ticket), 0);
    free(buf);
    int64_t deadline = clock_mono_ns() + 5000000000LL;
    for (;;) {
        uint64_t durable = 0, failed = 0;
        spool_poll(f->sp, &durable, &failed);
        assert_int_equal(failed, 0);
        if (durable >= ticket)
            break;
        assert_true(clock_mono_ns() < deadline);
        usleep(1000);
    }
    return first;
}

static struct sink_worker *start(struct fixture *f)
{
    char err[256] = "";
    struct sink_worker *w = sink_worker_start(f->sp, &fake_ops, &f->cfg, &f->opt, err, sizeof(err));
    if (!w)
        print_error("sink_worker_start: %s\n", err);
    assert_non_null(w);
    return w;
}

/* wait_cursor waits until the worker's lowest lane cursor reaches seq. */
static void wait_cursor(struct sink_worker *w, uint64_t seq)
{
    int64_t deadline = clock_mono_ns() + 10000000000LL;
    struct sink_stats st;
    for (;;) {
        sink_worker_stats(w, &st);
        if (st.cursor >= seq)
            return;
        if (clock_mono_ns() > deadline)
            fail_msg("cursor %llu, waiting for %llu (%s)", (unsigned long long)st.cursor,
                     (unsigned long long)seq, st.last_error);
        usleep(2000);
    }
}

static void assert_no_violation(void)
{
    if (fake->violation)
        fail_msg("sink contract broken: %s", fake->violation_text);
}

static void assert_stored_once(uint64_t from, uint64_t to, const uint64_t *except, size_t nexcept)
{
    for (uint64_t s = from; s <= to; s++) {
        unsigned want = 1;
        for (size_t i = 0; i < nexcept; i++)
            if (except[i] == s)
                want = 0;
        if (fake->stored[s] != want)
            fail_msg("seq %llu stored %u times, want %u", (unsigned long long)s, fake->stored[s],
                     want);
    }
}

static uint64_t spool_cursor_value(struct fixture *f, const char *name)
{
    uint64_t seq = 0;
    int id = -1;
    assert_int_equal(spool_cursor_open(f->sp, name, &seq, &id), 0);
    return seq;
}

static void test_batches_in_order(void **state)
{
    struct fixture *f = *state;
    f->opt.batch_max = 10;
    assert_int_equal(append_records(f, 95, 7), 1);
    struct sink_worker *w = start(f);
    char err[256] = "";
    assert_int_equal(sink_worker_wait_open(w, 5000, err, sizeof(err)), 0);
    assert_string_equal(sink_worker_name(w), "fake");
    wait_cursor(w, 95);

    struct sink_stats st;
    sink_worker_stats(w, &st);
    assert_int_equal(st.rows, 95);
    assert_int_equal(st.cursor, 95);
    assert_int_equal(st.retries, 0);
    assert_int_equal(st.errors, 0);
    assert_int_equal(st.up, 1);
    assert_true(st.last_ok_ns > 0);
    assert_int_equal(sink_worker_fatal(w), 0);

    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    sink_worker_metrics(w, out);
    fclose(out);
    assert_string_equal(text, "fake_metric{sink=\"fake\"} 1\n");
    free(text);

    sink_worker_stop(w, 1000);
    assert_no_violation();
    assert_stored_once(1, 95, NULL, 0);
    /* Consecutive batches of at most batch_max, each ending at its cursor. */
    uint64_t next = 1;
    for (size_t i = 0; i < fake->ncalls; i++) {
        const struct write_call *c = &fake->calls[i];
        assert_int_equal(c->answer, SINK_OK);
        assert_true(c->n <= 10);
        if (c->n == 0)
            continue;
        assert_int_equal(c->first, next);
        assert_int_equal(c->last, c->first + c->n - 1);
        assert_int_equal(c->cursor, c->last);
        next = c->last + 1;
    }
    assert_int_equal(next, 96);
    assert_true(fake->ncalls >= 10);
    assert_int_equal(fake->cursor[0], 95);
    assert_int_equal(spool_cursor_value(f, "fake"), 95);
}

static void test_retry_redelivers_same_batch(void **state)
{
    struct fixture *f = *state;
    f->opt.batch_max = 8;
    fake->retries_left = 3;
    append_records(f, 20, 3);
    struct sink_worker *w = start(f);
    wait_cursor(w, 20);
    struct sink_stats st;
    sink_worker_stats(w, &st);
    sink_worker_stop(w, 1000);
    assert_no_violation();
    assert_stored_once(1, 20, NULL, 0);
    assert_int_equal(st.retries, 3);
    assert_int_equal(st.rows, 20);
    assert_int_equal(st.up, 1);
    assert_non_null(strstr(st.last_error, "lock timeout"));
    /* The three refused attempts and the good one carry the same batch and cursor, and every
     * retry opened the lane again first. */
    assert_true(fake->ncalls >= 4);
    for (size_t i = 1; i < 4; i++) {
        assert_int_equal(fake->calls[i].first, fake->calls[0].first);
        assert_int_equal(fake->calls[i].n, fake->calls[0].n);
        assert_int_equal(fake->calls[i].cursor, fake->calls[0].cursor);
    }
    assert_int_equal(fake->calls[3].answer, SINK_OK);
    assert_int_equal(fake->opens, 4);
}

static void test_retry_backoff_grows(void **state)
{
    struct fixture *f = *state;
    f->opt.retry_base_ms = 10;
    f->opt.retry_max_ms = 40;
    fake->retries_left = 6;
    append_records(f, 5, 1);
    struct sink_worker *w = start(f);
    char err[256] = "";
    assert_int_equal(sink_worker_wait_open(w, 5000, err, sizeof(err)), 0);
    int64_t t0 = clock_mono_ns();
    wait_cursor(w, 5);
    int64_t waited_ms = (clock_mono_ns() - t0) / 1000000;
    sink_worker_stop(w, 1000);
    assert_stored_once(1, 5, NULL, 0);
    /* Doubling from 10 ms and capped at 40, with jitter down to half: at least
     * 5 + 10 + 20 + 20 + 20 + 20 ms; without the doubling at most 6 * 10. */
    if (waited_ms < 95)
        fail_msg("six retries took only %lld ms", (long long)waited_ms);
}

static void test_error_splits_and_quarantines(void **state)
{
    struct fixture *f = *state;
    f->opt.batch_max = 100;
    f->opt.flush_interval_ms = 50;
    fake->bad[0] = 37;
    fake->bad[1] = 90;
    fake->nbad = 2;
    fake->empty_errors_left = 1; /* an empty write answered ERROR is only retried */
    append_records(f, 100, 5);
    struct sink_worker *w = start(f);
    wait_cursor(w, 100);
    struct sink_stats st;
    sink_worker_stats(w, &st);
    sink_worker_stop(w, 1000);
    assert_no_violation();
    const uint64_t bad[] = {37, 90};
    assert_stored_once(1, 100, bad, 2);
    assert_int_equal(st.quarantined, 2);
    assert_int_equal(st.rows, 98);
    assert_int_equal(st.cursor, 100);
    assert_true(st.errors >= 2);
    assert_int_equal(fake->cursor[0], 100);

    char path[160];
    snprintf(path, sizeof(path), "%s/dead-letter.fake.jsonl", f->dir);
    FILE *in = fopen(path, "r");
    assert_non_null(in);
    char line[8192];
    assert_non_null(fgets(line, sizeof(line), in));
    assert_non_null(strstr(line, "\"sink\":\"fake\",\"reason\":\"fake: record 37 is refused\","
                                 "\"seq\":37,\"kind\":\"metric\""));
    assert_non_null(strstr(line, "\"value\":36}"));
    assert_non_null(fgets(line, sizeof(line), in));
    assert_non_null(strstr(line, "\"seq\":90,"));
    assert_null(fgets(line, sizeof(line), in));
    fclose(in);
}

static void test_dead_letter_setting(void **state)
{
    struct fixture *f = *state;
    char path[160];
    snprintf(path, sizeof(path), "%s/quarantine.jsonl", f->dir);
    char err[256] = "";
    assert_int_equal(conf_set(sink_worker_conf, &f->opt, "dead_letter", path, err, sizeof(err)), 0);
    fake->bad[0] = 2;
    fake->nbad = 1;
    append_records(f, 3, 1);
    struct sink_worker *w = start(f);
    wait_cursor(w, 3);
    sink_worker_stop(w, 1000);
    assert_stored_once(1, 3, fake->bad, 1);
    assert_int_equal(access(path, F_OK), 0);
}

static void test_lanes(void **state)
{
    struct fixture *f = *state;
    fake_reset(3);
    f->opt.batch_max = 16;
    append_records(f, 300, 10);
    struct sink_worker *w = start(f);
    wait_cursor(w, 300);
    sink_worker_stop(w, 1000);
    assert_no_violation();
    assert_stored_once(1, 300, NULL, 0);
    unsigned per_lane[3] = {0};
    for (uint64_t s = 1; s <= 300; s++) {
        struct record r;
        memset(&r, 0, sizeof(r));
        r.profile_len =
            (uint8_t)snprintf(r.profile, sizeof(r.profile), "profile-%u", (unsigned)(s - 1) % 10);
        assert_int_equal(fake->lane_of[s], record_lane(&r, 3));
        per_lane[fake->lane_of[s]]++;
    }
    for (unsigned l = 0; l < 3; l++) {
        assert_true(per_lane[l] > 0); /* the ten profiles spread over every lane */
        assert_int_equal(fake->cursor[l], 300);
    }
    assert_int_equal(spool_cursor_value(f, "fake.lane0"), 300);
    assert_int_equal(spool_cursor_value(f, "fake.lane2"), 300);
}

static void test_idle_lanes_advance(void **state)
{
    struct fixture *f = *state;
    fake_reset(3);
    f->opt.batch_max = 16;
    append_records(f, 50, 1); /* one profile: two lanes see nothing of their own */
    struct sink_worker *w = start(f);
    wait_cursor(w, 50);
    struct sink_stats st;
    sink_worker_stats(w, &st);
    assert_int_equal(st.rows, 50);
    /* More records while running: the idle lanes follow again. */
    append_records(f, 10, 1);
    wait_cursor(w, 60);
    sink_worker_stop(w, 1000);
    assert_no_violation();
    assert_stored_once(1, 60, NULL, 0);
    for (unsigned l = 0; l < 3; l++)
        assert_int_equal(fake->cursor[l], 60);
}

static void test_cursor_ahead_is_fatal(void **state)
{
    struct fixture *f = *state;
    append_records(f, 10, 1);
    fake->cursor[0] = 1000;
    struct sink_worker *w = start(f);
    char err[256] = "";
    assert_int_equal(sink_worker_wait_open(w, 5000, err, sizeof(err)), -ERANGE);
    assert_non_null(strstr(err, "1000"));
    assert_non_null(strstr(err, " 10"));
    assert_non_null(strstr(err, "fake"));
    assert_int_equal(sink_worker_fatal(w), 1);
    struct sink_stats st;
    sink_worker_stats(w, &st);
    assert_int_equal(st.up, 0);
    assert_non_null(strstr(st.last_error, "ahead"));
    sink_worker_stop(w, 1000);
    assert_int_equal(fake->ncalls, 0);
}

static void test_restart_resumes_after_store_cursor(void **state)
{
    struct fixture *f = *state;
    f->opt.batch_max = 1000;
    append_records(f, 50, 4);
    struct sink_worker *w = start(f);
    wait_cursor(w, 50);
    sink_worker_stop(w, 1000);
    size_t first_run = fake->ncalls;

    /* The spool restarts too; the store's cursor decides where reading resumes. */
    spool_close(f->sp);
    spool_start(f);
    append_records(f, 30, 4);
    fake->cursor[0] = 50;
    w = start(f);
    char err[256] = "";
    assert_int_equal(sink_worker_wait_open(w, 5000, err, sizeof(err)), 0);
    wait_cursor(w, 80);
    sink_worker_stop(w, 1000);
    assert_no_violation();
    assert_stored_once(1, 80, NULL, 0);
    assert_true(fake->ncalls > first_run);
    for (size_t i = first_run; i < fake->ncalls; i++) {
        if (fake->calls[i].n) {
            assert_int_equal(fake->calls[i].first, 51);
            break;
        }
    }

    /* A new, empty store (its cursor behind the spool's): everything still on disk again. */
    memset(fake->stored, 0, sizeof(fake->stored));
    fake->cursor[0] = 0;
    w = start(f);
    assert_int_equal(sink_worker_wait_open(w, 5000, err, sizeof(err)), 0);
    wait_cursor(w, 80);
    struct sink_stats st;
    sink_worker_stats(w, &st);
    sink_worker_stop(w, 1000);
    assert_no_violation();
    assert_stored_once(1, 80, NULL, 0);
    assert_int_equal(st.gap, 0);
}

static void test_stop_drains(void **state)
{
    struct fixture *f = *state;
    f->opt.batch_max = 1000;
    f->opt.flush_interval_ms = 60000; /* would wait a minute to fill the batch */
    struct sink_worker *w = start(f);
    char err[256] = "";
    assert_int_equal(sink_worker_wait_open(w, 5000, err, sizeof(err)), 0);
    append_records(f, 30, 2);
    usleep(50000);
    int64_t t0 = clock_mono_ns();
    sink_worker_stop(w, 5000);
    assert_true(clock_mono_ns() - t0 < 3000000000LL);
    assert_no_violation();
    assert_stored_once(1, 30, NULL, 0);
    assert_int_equal(fake->cursor[0], 30);
}

static void test_store_down(void **state)
{
    struct fixture *f = *state;
    fake->open_fails = true;
    append_records(f, 5, 1);
    struct sink_worker *w = start(f);
    char err[256] = "";
    assert_int_equal(sink_worker_wait_open(w, 100, err, sizeof(err)), -ETIMEDOUT);
    assert_non_null(strstr(err, "connection refused"));
    struct sink_stats st;
    sink_worker_stats(w, &st);
    assert_int_equal(st.up, 0);
    assert_true(st.retries > 0);
    assert_int_equal(sink_worker_fatal(w), 0);
    /* The store comes back: everything goes through. */
    pthread_mutex_lock(&fake->lock);
    fake->open_fails = false;
    pthread_mutex_unlock(&fake->lock);
    wait_cursor(w, 5);
    assert_int_equal(sink_worker_wait_open(w, 100, err, sizeof(err)), 0);
    sink_worker_stop(w, 1000);
    assert_stored_once(1, 5, NULL, 0);

    /* A store that never comes back does not hold up the stop beyond drain_ms. */
    fake->open_fails = true;
    w = start(f);
    int64_t t0 = clock_mono_ns();
    sink_worker_stop(w, 50);
    assert_true(clock_mono_ns() - t0 < 2000000000LL);
}

static void test_settings_table(void **state)
{
    (void)state;
    struct sink_worker_options o;
    memset(&o, 0xff, sizeof(o));
    o.dead_letter = NULL;
    assert_int_equal(conf_defaults(sink_worker_conf, &o), 0);
    assert_int_equal(o.batch_max, 5000);
    assert_int_equal(o.flush_interval_ms, 100);
    assert_int_equal(o.retry_base_ms, 100);
    assert_int_equal(o.retry_max_ms, 10000);
    assert_null(o.dead_letter);
    char err[256] = "";
    assert_int_equal(conf_set(sink_worker_conf, &o, "batch_max", "0", err, sizeof(err)), -EINVAL);
    assert_int_equal(conf_set(sink_worker_conf, &o, "batch_max", "1000001", err, sizeof(err)),
                     -EINVAL);
    assert_int_equal(conf_set(sink_worker_conf, &o, "batch_max", "250", err, sizeof(err)), 0);
    assert_int_equal(o.batch_max, 250);
    assert_int_equal(conf_set(sink_worker_conf, &o, "url", "x", err, sizeof(err)), -ENOENT);
    conf_free(sink_worker_conf, &o);
}

static void test_bad_options(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    f->opt.retry_max_ms = 0;
    assert_null(sink_worker_start(f->sp, &fake_ops, &f->cfg, &f->opt, err, sizeof(err)));
    assert_non_null(strstr(err, "retry"));
    f->opt.retry_max_ms = 10;
    f->cfg.name = "bad name!";
    assert_null(sink_worker_start(f->sp, &fake_ops, &f->cfg, &f->opt, err, sizeof(err)));
    assert_non_null(strstr(err, "bad name!"));
    sink_worker_stop(NULL, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_batches_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_redelivers_same_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_backoff_grows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_splits_and_quarantines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_letter_setting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lanes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_lanes_advance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cursor_ahead_is_fatal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_resumes_after_store_cursor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_drains, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_down, setup, teardown),
        cmocka_unit_test(test_settings_table),
        cmocka_unit_test_setup_teardown(test_bad_options, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
