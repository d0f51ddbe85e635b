/*
 * test_spool.c: unit tests of the spool (src/spool/spool.c, spool_reader.c) on real files in
 * temporary folders: append, group commit and read-back across segments; readers gated by
 * durability; recovery (torn tails, damaged frames, sequence numbers, identity, client batches);
 * cursors and segment deletion; the size cap; injected fdatasync and write failures.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/clock.h"
#include "core/log.h"
#include "spool/frame.h"
#include "spool/spool.h"
#include "spool/spool_internal.h"

/* ---- fixtures ---- */

struct fixture {
    char dir[64];
};

static int rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *de;
    char path[512];
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        unlink(path);
    }
    closedir(d);
    return rmdir(dir);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/test_spool.XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    log_level_current = LOG_LEVEL_ERROR - 1; /* quiet: the tests provoke errors on purpose */
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char sub[128];
    snprintf(sub, sizeof(sub), "%s/sp", f->dir);
    rm_tree(sub);
    rm_tree(f->dir);
    free(f);
    spool_fdatasync_fn = fdatasync;
    spool_pwritev_fn = pwritev;
    return 0;
}

static struct spool_options options(const struct fixture *f, uint64_t segment_bytes)
{
    static char dir[128];
    snprintf(dir, sizeof(dir), "%s/sp", f->dir);
    struct spool_options o = {
        .dir = dir,
        .segment_bytes = segment_bytes,
        .max_bytes = 0,
        .fsync = SPOOL_FSYNC_ALWAYS,
        .fsync_interval_ms = 50,
        .producers_max = 100,
        .producer_idle_s = 3600,
    };
    return o;
}

static struct spool *open_spool(const struct spool_options *o)
{
    char err[256] = "";
    struct spool *sp = spool_open(o, err, sizeof(err));
    if (!sp)
        fprintf(stderr, "spool_open: %s\n", err);
    assert_non_null(sp);
    return sp;
}

/* ---- payloads ---- */

/* make_record builds the record whose content encodes `key`, so read-back can be checked. */
static void make_record(uint64_t key, struct record *r)
{
    memset(r, 0, sizeof(*r));
    r->ts_ns = (int64_t)(1764201600000000000ull + key);
    r->profile_len = (uint8_t)snprintf(r->profile, sizeof(r->profile), "profile-%03llu",
                                       (unsigned long long)(key % 300));
    r->script_len = (uint8_t)snprintf(r->script, sizeof(r->script), "signals");
    if (key % 3 == 0) {
        r->kind = RECORD_TRADE;
        r->symbol_len = (uint8_t)snprintf(r->symbol, sizeof(r->symbol), "ETHUSDT");
        r->present = REC_HAS_PNL | REC_HAS_QTY;
        r->pnl = (double)key;
        r->qty = 1.5;
    } else {
        r->kind = RECORD_METRIC;
        r->name_len = (uint8_t)snprintf(r->name, sizeof(r->name), "equity");
        r->value = (double)key;
    }
}

static uint64_t record_key(const struct record *r)
{
    return (uint64_t)(r->ts_ns - 1764201600000000000ll);
}

/* build encodes count records with keys first_key.. into buf; returns the payload length. */
static size_t build(uint8_t *buf, size_t cap, uint64_t first_key, uint32_t count)
{
    size_t len = 0;
    for (uint32_t i = 0; i < count; i++) {
        struct record r;
        make_record(first_key + i, &r);
        int n = frame_record_encode(&r, buf + len, cap - len);
        assert_true(n > 0);
        len += (size_t)n;
    }
    return len;
}

/* append_keys appends count records with keys first_key..; returns spool_append's result. */
static int append_keys(struct spool *sp, uint64_t first_key, uint32_t count,
                       const struct batch_tag *tag, uint64_t *first_seq, uint64_t *ticket)
{
    static uint8_t buf[1000 * FRAME_RECORD_MAX];
    size_t len = build(buf, sizeof(buf), first_key, count);
    uint64_t fs = 0, t = 0;
    int rc =
        spool_append(sp, buf, len, count, tag, first_seq ? first_seq : &fs, ticket ? ticket : &t);
    return rc;
}

/* wait_durable polls until ticket is durable (or reported failed). Returns *failed. */
static uint64_t wait_durable(struct spool *sp, uint64_t ticket)
{
    struct pollfd pfd = {.fd = spool_notify_fd(sp), .events = POLLIN};
    for (int i = 0; i < 1000; i++) {
        uint64_t durable = 0, failed = 0;
        spool_poll(sp, &durable, &failed);
        if (failed)
            return failed;
        if (durable >= ticket)
            return 0;
        poll(&pfd, 1, 10);
    }
    fail_msg("ticket %llu never became durable", (unsigned long long)ticket);
    return 0;
}

/* read_all reads every record available now (waiting up to wait_ms for the first). */
static size_t read_all(struct spool_reader *rd, struct record *out, size_t cap, unsigned wait_ms)
{
    size_t total = 0;
    for (;;) {
        size_t n = 0;
        int rc = spool_reader_next(rd, out + total, cap - total > 97 ? 97 : cap - total, &n,
                                   total ? 0 : wait_ms);
        assert_int_equal(rc, 0);
        if (n == 0)
            break;
        total += n;
        if (total == cap)
            break;
    }
    return total;
}

static struct record *records(size_t n)
{
    struct record *r = calloc(n, sizeof(*r));
    assert_non_null(r);
    return r;
}

static size_t count_segments(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, "seg-", 4) == 0)
            n++;
    closedir(d);
    return n;
}

/* newest_segment writes the path of the newest segment file into path. */
static void newest_segment(const char *dir, char *path, size_t cap)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    char best[256] = "";
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, "seg-", 4) == 0 && strcmp(de->d_name, best) > 0)
            snprintf(best, sizeof(best), "%s", de->d_name);
    closedir(d);
    assert_true(best[0] != '\0');
    assert_true((size_t)snprintf(path, cap, "%s/%s", dir, best) < cap);
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static struct batch_tag make_tag(const char *producer, uint64_t epoch, uint64_t n)
{
    struct batch_tag t;
    memset(&t, 0, sizeof(t));
    snprintf(t.producer, sizeof(t.producer), "%s", producer);
    t.epoch = epoch;
    t.n = n;
    return t;
}

/* ---- tests ---- */

static void test_append_read_across_segments(void **state)
{
    struct fixture *f = *state;
    struct spool_options o = options(f, 4096);
    struct spool *sp = open_spool(&o);
    uint64_t first, ticket = 0, key = 1;
    for (int i = 0; i < 60; i++) {
        assert_int_equal(append_keys(sp, key, 10, NULL, &first, &ticket), 0);
        assert_int_equal(first, key); /* a fresh spool starts at seq 1 */
        key += 10;
    }
    assert_int_equal(wait_durable(sp, ticket), 0);
    struct spool_stats st;
    spool_get_stats(sp, &st);
    assert_true(st.segments > 3);
    assert_int_equal(count_segments(o.dir), st.segments);
    assert_int_equal(st.next_seq, 601);
    assert_int_equal(st.durable_seq, 600);
    assert_int_equal(st.records, 600);
    assert_int_equal(st.frames, 60);
    assert_true(st.fsyncs >= 1);
    assert_int_equal(st.oldest_seq, 1);

    struct record *out = records(1000);
    struct spool_reader *rd = spool_reader_open(sp, 0);
    assert_int_equal(read_all(rd, out, 1000, 100), 600);
    for (size_t i = 0; i < 600; i++) {
        assert_int_equal(out[i].seq, i + 1);
        assert_int_equal(record_key(&out[i]), i + 1);
        assert_int_equal(out[i].kind, (i + 1) % 3 == 0 ? RECORD_TRADE : RECORD_METRIC);
    }
    assert_int_equal(spool_reader_gap(rd), 0);
    /* Nothing more: returns 0 records after the wait. */
    size_t n = 99;
    assert_int_equal(spool_reader_next(rd, out, 10, &n, 20), 0);
    assert_int_equal(n, 0);
    spool_reader_close(rd);

    /* A reader starting in the middle of a frame and a segment. */
    rd = spool_reader_open(sp, 333);
    assert_int_equal(read_all(rd, out, 1000, 100), 267);
    assert_int_equal(out[0].seq, 334);
    assert_int_equal(record_key(&out[0]), 334);
    spool_reader_close(rd);
    /* A reader past the end sees nothing yet, then what comes. */
    rd = spool_reader_open(sp, 600);
    assert_int_equal(read_all(rd, out, 1000, 0), 0);
    assert_int_equal(append_keys(sp, key, 5, NULL, &first, &ticket), 0);
    assert_int_equal(wait_durable(sp, ticket), 0);
    assert_int_equal(read_all(rd, out, 1000, 100), 5);
    assert_int_equal(out[0].seq, 601);
    spool_reader_close(rd);
    free(out);
    spool_close(sp);
}

/* A fdatasync that blocks while the gate is closed. */
static atomic_bool gate_closed;
static atomic_int fsyncs_started;

static int gated_fdatasync(int fd)
{
    atomic_fetch_add(&fsyncs_started, 1);
    while (atomic_load(&gate_closed)) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return fdatasync(fd);
}

static void test_readers_see_only_durable(void **state)
{
    struct fixture *f = *state;
    struct spool_options o = options(f, 1 << 20);
    struct spool *sp = open_spool(&o);
    atomic_store(&gate_closed, true);
    atomic_store(&fsyncs_started, 0);
    spool_fdatasync_fn = gated_fdatasync;
    uint64_t first, ticket;
    assert_int_equal(append_keys(sp, 1, 20, NULL, &first, &ticket), 0);
    struct spool_reader *rd = spool_reader_open(sp, 0);
    struct record *out = records(100);
    size_t n = 1;
    assert_int_equal(spool_reader_next(rd, out, 100, &n, 50), 0);
    assert_int_equal(n, 0);
    uint64_t durable, failed;
    spool_poll(sp, &durable, &failed);
    assert_true(durable < ticket);
    assert_int_equal(failed, 0);
    for (int i = 0; i < 5000 && atomic_load(&fsyncs_started) == 0; i++)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    assert_true(atomic_load(&fsyncs_started) >= 1);
    spool_poll(sp, &durable, &failed);
    assert_true(durable < ticket);
    /* Appends go on while the fsync hangs; one later fsync covers them all. */
    uint64_t ticket2;
    assert_int_equal(append_keys(sp, 21, 20, NULL, &first, &ticket2), 0);
    atomic_store(&gate_closed, false);
    assert_int_equal(wait_durable(sp, ticket2), 0);
    assert_int_equal(read_all(rd, out, 100, 100), 40);
    assert_int_equal(out[39].seq, 40);
    spool_reader_close(rd);
    free(out);
    spool_close(sp);
}

static void test_reopen_keeps_id_and_seq(void **state)
{
    struct fixture *f = *state;
    struct spool_options o = options(f, 1 << 20);
    struct spool *sp = open_spool(&o);
    uint8_t id[SPOOL_ID_SIZE];
    memcpy(id, spool_id(sp), SPOOL_ID_SIZE);
    uint8_t zero[SPOOL_ID_SIZE] = {0};
    assert_memory_not_equal(id, zero, SPOOL_ID_SIZE);
    uint64_t first, ticket;
    assert_int_equal(append_keys(sp, 1, 10, NULL, &first, &ticket), 0);
    assert_int_equal(wait_durable(sp, ticket), 0);
    spool_close(sp);

    sp = open_spool(&o);
    assert_memory_equal(spool_id(sp), id, SPOOL_ID_SIZE);
    assert_int_equal(append_keys(sp, 11, 10, NULL, &first, &ticket), 0);
    assert_int_equal(first, 11);
    assert_int_equal(wait_durable(sp, ticket), 0);
    struct record *out = records(100);
    struct spool_reader *rd = spool_reader_open(sp, 0);
    assert_int_equal(read_all(rd, out, 100, 100), 20);
    for (size_t i = 0; i < 20; i++)
        assert_int_equal(record_key(&out[i]), out[i].seq);
    spool_reader_close(rd);
    free(out);
    spool_close(sp);

    /* A second spool on the same folder is refused while the first is open. */
    sp = open_spool(&o);
    char err[256] = "";
    assert_null(spool_open(&o, err, sizeof(err)));
    assert_non_null(strstr(err, "in use"));
    spool_close(sp);
}

static void test_torn_tail_cut(void **state)
{
    struct fixture *f = *state;
    struct spool_options o = options(f, 1 << 20);
    struct spool *sp = open_spool(&o);
    uint64_t first, ticket;
    for (int i = 0; i < 5; i++)
        assert_int_equal(append_keys(sp, 1 + 10 * (uint64_t)i, 10, NULL, &first, &ticket), 0);
    assert_int_equal(wait_durable(sp, ticket), 0);
    spool_close(sp);

    /* Cut the last frame in the middle, as a crash during write(2) would. */
    char path[256];
    newest_segment(o.dir, path, sizeof(path));
    off_t size = file_size(path);
    assert_int_equal(truncate(path, size - 17), 0);
    sp = open_spool(&o);
    struct spool_stats st;
    spool_get_stats(sp, &st);
    assert_true(st.torn_bytes > 0);
    assert_int_equal(st.corrupt_frames, 0);
    off_t cut = file_size(path);
    assert_true(cut < size - 17);
    struct record *out = records(100);
    struct spool_reader *rd = spool_reader_open(sp, 0);
    assert_int_equal(read_all(rd, out, 100, 100), 40);
    spool_reader_close(rd);
    /* Sequence numbers are not reused: the high-water mark remembers 50. */
    assert_int_equal(append_keys(sp, 51, 10, NULL, &first, &ticket), 0);
    assert_int_equal(first, 51);
    assert_int_equal(wait_durable(sp, ticket), 0);
    spool_close(sp);

    /* Garbage after the last frame (a torn header, random bytes) is cut too. */
    size = file_size(path);
    FILE *fp = fopen(path, "ab");
    assert_non_null(fp);
    const char garbage[] = "TELM\x01\x00\x00\x00garbage-garbage-garbage-garbage";
    fwrite(garbage, 1, sizeof(garbage), fp);
    fclose(fp);
    sp = open_spool(&o);
    spool_get_stats(sp, &st);
    assert_int_equal(st.torn_bytes, sizeof(garbage));
    assert_int_equal(file_size(path), size);
    rd = spool_reader_open(sp, 0);
    assert_int_equal(read_all(rd, out, 100, 100), 50);
    assert_int_equal(out[49].seq, 60);
    spool_reader_close(rd);
    free(out);
    spool_close(sp);
}

static void test_corrupt_middle_frame_skipped(void **state)
{
    struct fixture *f = *state;
    struct spool_options o = options(f, 1 << 20);
    struct spool *sp = open_spool(&o);
    uint64_t first, ticket, size_after_first = 0;
    char path[256];
    newest_segment(o.dir, path, sizeof(path));
    for (int i = 0; i < 3; i++) {
        assert_int_equal(append_keys(sp, 1 + 10 * (uint64_t)i, 10, NULL, &first, &ticket), 0);
        if (i == 0)
            size_after_first = (uint64_t)file_size(path);
    }
    assert_int_equal(wait_durable(sp, ticket), 0);
    spool_close(sp);

    /* Flip one payload byte of the second frame. */
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    off_t at = (off_t)size_after_first + FRAME_HEADER_SIZE + 20;
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 0x10;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    close(fd);
    off_t size = file_size(path);

    sp = open_spool(&o);
    struct spool_stats st;
    spool_get_stats(sp, &st);
    assert_int_equal(st.corrupt_frames, 1);
    assert_int_equal(st.torn_bytes, 0);
    assert_int_equal(file_size(path), size); /* nothing cut: frame 3 is valid */
    struct record *out = records(100);
    struct spool_reader *rd = spool_reader_open(sp, 0);
    assert_int_equal(read_all(rd, out, 100, 100), 20);
    for (size_t i = 0; i < 10; i++)
        assert_int_equal(out[i].seq, i + 1);
    for (size_t i = 10; i < 20; i++) {
        assert_int_equal(out[i].seq, i + 11);
        assert_int_equal(record_key(&out[i]), out[i].seq);
    }
    spool_reader_close(rd);
    spool_get_stats(sp, &st);
    assert_int_equal(st.corrupt_frames, 2); /* counted at recovery and by the reader */
    /* New appends continue after the highest seq. */
    assert_int_equal(append_keys(sp, 31, 1, NULL, &first, &ticket), 0);
    assert_int_equal(first, 31);
    free(out);
    spool_close(sp);
}

/* wait_segments waits until the spool holds at most want segments. */
static void wait_segments(struct spool *sp, uint64_t want)
{
    struct spool_stats st;
    for (int i = 0; i < 300; i++) {
        spool_get_stats(sp, &st);
        if (st.segments <= want)
            return;
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    fail_msg("spool still holds %llu segments, want %llu", (unsigned long long)st.segments,
             (unsigned long long)want);
}

/* Each sink's age of its oldest unsent record comes from the arrival of its cursor + 1. */
static void test_arrival_times(void **state)
{
    struct fixture *f = *state;
    struct spool_options o = options(f, 1 << 20);
    struct spool *sp = open_spool(&o);
    uint64_t first, ticket;
    int64_t before = clock_wall_ns();
    assert_int_equal(append_keys(sp, 1, 10, NULL, &first, &ticket), 0);
    nanosleep(&(struct timespec){0, 400000000}, NULL);
    int64_t middle = clock_wall_ns();
    assert_int_equal(append_keys(sp, 11, 10, NULL, &first, &ticket), 0);
    assert_int_equal(wait_durable(sp, ticket), 0);
    int64_t after = clock_wall_ns();
    int64_t a1 = spool_arrival_ns(sp, 1), a11 = spool_arrival_ns(sp, 11);
    assert_true(a1 >= before - 1000000000LL && a1 <= middle);
    /* Sampled at most every 250 ms: never later than the truth, within 250 ms of it. */
    assert_true(a11 <= after);
    assert_true(a11 >= middle - 250000000LL);
    assert_true(a11 > a1);
    assert_int_equal(spool_arrival_ns(sp, 21), 0); /* not written yet */
    spool_close(sp);
}

static void test_cursors_and_deletion(void **state)
{
    struct fixture *f = *state;
    struct spool_options o = options(f, 2048);
    struct spool *sp = open_spool(&o);
    uint64_t seq_a, seq_b;
    int id_a, id_b;
    assert_int_equal(spool_cursor_open(sp, "sqlite", &seq_a, &id_a), 0);
    assert_int_equal(spool_cursor_open(sp, "mariadb.lane1", &seq_b, &id_b), 0);
    assert_int_equal(seq_a, 0);
    assert_int_equal(seq_b, 0);
    assert_int_equal(spool_cursor_open(sp, "bad/name", &seq_a, &id_a), -EINVAL);
    assert_int_equal(spool_cursor_open(sp, "", &seq_a, &id_a), -EINVAL);
    int again;
    assert_int_equal(spool_cursor_open(sp, "sqlite", &seq_a, &again), 0);
    assert_int_equal(again, id_a);

    uint64_t first, ticket;
    for (int i = 0; i < 40; i++)
        assert_int_equal(append_keys(sp, 1 + 10 * (uint64_t)i, 10, NULL, &first, &ticket), 0);
    assert_int_equal(wait_durable(sp, ticket), 0);
    struct spool_stats st;
    spool_get_stats(sp, &st);
    uint64_t segs = st.segments;
    /* A reader with no cursor of its own, which has not opened its first segment yet. */
    struct spool_reader *lagging = spool_reader_open(sp, 0);
    assert_true(segs >= 6);
    assert_true(st.oldest_unsent_ns > 0);

    /* One cursor at the end, the other still at 0: nothing may go. */
    spool_cursor_set(sp, id_a, 400);
    struct timespec ts = {0, 500000000};
    nanosleep(&ts, NULL);
    spool_get_stats(sp, &st);
    assert_int_equal(st.segments, segs);
    assert_true(st.oldest_unsent_ns > 0);

    /* The second passes half: segments wholly at or below 200 go, the one holding 201 stays. */
    spool_cursor_set(sp, id_b, 200);
    wait_segments(sp, segs - 1);
    nanosleep(&ts, NULL);
    spool_get_stats(sp, &st);
    assert_true(st.segments < segs);
    assert_true(st.oldest_seq <= 201);
    assert_int_equal(count_segments(o.dir), st.segments);
    struct record *out = records(500);
    struct spool_reader *rd = spool_reader_open(sp, 200);
    assert_int_equal(read_all(rd, out, 500, 100), 200);
    assert_int_equal(out[0].seq, 201);
    assert_int_equal(spool_reader_gap(rd), 0);
    spool_reader_close(rd);

    /* Both at the end: all but the active segment go. */
    spool_cursor_set(sp, id_b, 400);
    wait_segments(sp, 1);
    spool_get_stats(sp, &st);
    assert_int_equal(st.oldest_unsent_ns, 0);
    for (int i = 0; i < 100 && count_segments(o.dir) > 1; i++)
        nanosleep(&(struct timespec){0, 10000000}, NULL); /* files go just after the list */
    assert_int_equal(count_segments(o.dir), 1);
    /* A reader from 0 now starts at the oldest record kept and reports the gap. */
    rd = spool_reader_open(sp, 0);
    spool_get_stats(sp, &st);
    assert_int_equal(spool_reader_gap(rd), st.oldest_seq - 1);
    size_t kept = read_all(rd, out, 500, 100);
    assert_int_equal(kept, 400 - (st.oldest_seq - 1));
    spool_reader_close(rd);
    /* The lagging reader finds its segment gone, skips to what is left and counts the gap. */
    assert_int_equal(read_all(lagging, out, 500, 100), kept);
    assert_int_equal(out[0].seq, st.oldest_seq);
    assert_int_equal(spool_reader_gap(lagging), st.oldest_seq - 1);
    spool_reader_close(lagging);
    spool_close(sp);

    /* Cursors persist. */
    sp = open_spool(&o);
    assert_int_equal(spool_cursor_open(sp, "sqlite", &seq_a, &id_a), 0);
    assert_int_equal(spool_cursor_open(sp, "mariadb.lane1", &seq_b, &id_b), 0);
    assert_int_equal(seq_a, 400);
    assert_int_equal(seq_b, 400);
    assert_int_equal(append_keys(sp, 401, 1, NULL, &first, &ticket), 0);
    assert_int_equal(first, 401);
    free(out);
    spool_close(sp);
}

/* With defer_deletion, nothing goes until every cursor is known to be registered. */
static void test_deferred_deletion(void **state)
{
    struct fixture *f = *state;
    struct spool_options o = options(f, 2048);
    o.defer_deletion = true;
    struct spool *sp = open_spool(&o);
    uint64_t seq;
    int id;
    assert_int_equal(spool_cursor_open(sp, "sqlite", &seq, &id), 0);
    uint64_t first, ticket;
    for (int i = 0; i < 40; i++)
        assert_int_equal(append_keys(sp, 1 + 10 * (uint64_t)i, 10, NULL, &first, &ticket), 0);
    assert_int_equal(wait_durable(sp, ticket), 0);
    struct spool_stats st;
    spool_get_stats(sp, &st);
    uint64_t segs = st.segments;
    assert_true(segs >= 6);

    /* The only registered cursor passes everything, but a later sink may still register. */
    spool_cursor_set(sp, id, 400);
    nanosleep(&(struct timespec){0, 600000000}, NULL);
    spool_get_stats(sp, &st);
    assert_int_equal(st.segments, segs);
    assert_int_equal(count_segments(o.dir), segs);

    /* A late cursor at 0 registers, then deletion is allowed: still nothing may go. */
    int late;
    assert_int_equal(spool_cursor_open(sp, "redis", &seq, &late), 0);
    spool_cursors_complete(sp);
    nanosleep(&(struct timespec){0, 600000000}, NULL);
    spool_get_stats(sp, &st);
    assert_int_equal(st.segments, segs);

    /* Once the late one passes too, all but the active segment go. */
    spool_cursor_set(sp, late, 400);
    wait_segments(sp, 1);
    spool_get_stats(sp, &st);
    assert_int_equal(st.segments, 1);
    spool_close(sp);
}

static void test_hwm_prevents_reuse(void **state)
{
    struct fixture *f = *state;
    struct spool_options o = options(f, 1 << 20);
    struct spool *sp = open_spool(&o);
    uint64_t first, ticket;
    for (int i = 0; i < 7; i++)
        assert_int_equal(append_keys(sp, 1 + 10 * (uint64_t)i, 10, NULL, &first, &ticket), 0);
    assert_int_equal(wait_durable(sp, ticket), 0);
    spool_close(sp);

    /* Every segment goes (as if wiped by hand); spool.id and seq.hwm stay. */
    DIR *d = opendir(o.dir);
    struct dirent *de;
    char path[512];
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "seg-", 4) == 0) {
            snprintf(path, sizeof(path), "%s/%s", o.dir, de->d_name);
            unlink(path);
        }
    }
    closedir(d);
    sp = open_spool(&o);
    assert_int_equal(append_keys(sp, 71, 10, NULL, &first, &ticket), 0);
    assert_int_equal(first, 71);
    spool_close(sp);
}

static void test_empty_newest_segment(void **state)
{
    struct fixture *f = *state;
    struct spool_options o = options(f, 1 << 20);
    struct spool *sp = open_spool(&o);
    uint64_t first, ticket;
    struct batch_tag t = make_tag("p", 3, 9);
    assert_int_equal(append_keys(sp, 1, 10, &t, &first, &ticket), 0);
    assert_int_equal(wait_durable(sp, ticket), 0);
    spool_close(sp);

    /* A crash just after creating the next segment leaves it empty. */
    char path[512];
    snprintf(path, sizeof(path), "%s/seg-%020llu.log", o.dir, 11ull);
    int fd = open(path, O_CREAT | O_WRONLY, 0640);
    assert_true(fd >= 0);
    close(fd);
    sp = open_spool(&o);
    struct spool_stats st;
    spool_get_stats(sp, &st);
    assert_int_equal(st.segments, 1);
    assert_int_equal(count_segments(o.dir), 1);
    /* The batch table came from the segment before it. */
    assert_int_equal(append_keys(sp, 11, 10, &t, &first, &ticket), -EALREADY);
    assert_int_equal(append_keys(sp, 11, 10, NULL, &first, &ticket), 0);
    assert_int_equal(first, 11);
    spool_close(sp);
}

static void test_max_bytes(void **state)
{
    struct fixture *f = *state;
    struct spool_options o = options(f, 1 << 20);
    o.max_bytes = 3000;
    struct spool *sp = open_spool(&o);
    uint64_t first, ticket;
    int rc = 0, ok = 0;
    for (int i = 0; i < 100 && rc == 0; i++) {
        rc = append_keys(sp, 1 + 10 * (uint64_t)i, 10, NULL, &first, &ticket);
        if (rc == 0)
            ok++;
    }
    assert_int_equal(rc, -ENOBUFS);
    assert_true(ok >= 2);
    struct spool_stats st;
    spool_get_stats(sp, &st);
    assert_true(st.bytes >= 3000);
    assert_int_equal(st.records, (uint64_t)ok * 10);
    spool_close(sp);
}

static void test_batch_duplicates(void **state)
{
    struct fixture *f = *state;
    struct spool_options o = options(f, 4096);
    struct spool *sp = open_spool(&o);
    uint64_t first, ticket, dup_ticket;
    struct batch_tag a1 = make_tag("host1.risk", 1000, 1);
    assert_int_equal(append_keys(sp, 1, 5, &a1, &first, &ticket), 0);
    assert_int_equal(append_keys(sp, 6, 5, &a1, &first, &dup_ticket), -EALREADY);
    assert_int_equal(first, 0);
    assert_true(dup_ticket >= ticket); /* never answered before the original */
    assert_int_equal(wait_durable(sp, dup_ticket), 0);
    /* Fill past several rotations: the snapshot carries the producer into new segments. */
    uint64_t key = 6;
    for (int i = 0; i < 30; i++, key += 10)
        assert_int_equal(append_keys(sp, key, 10, NULL, &first, &ticket), 0);
    struct spool_stats st;
    spool_get_stats(sp, &st);
    assert_true(st.segments >= 3);
    assert_int_equal(append_keys(sp, key, 5, &a1, &first, &dup_ticket), -EALREADY);
    /* A tag only in frames after the newest snapshot. */
    struct batch_tag b7 = make_tag("host2.exec", 5, 7);
    assert_int_equal(append_keys(sp, key, 5, &b7, &first, &ticket), 0);
    key += 5;
    assert_int_equal(wait_durable(sp, ticket), 0);
    spool_get_stats(sp, &st);
    assert_int_equal(st.duplicates, 2);
    assert_int_equal(st.producers, 2);
    spool_close(sp);

    sp = open_spool(&o);
    spool_get_stats(sp, &st);
    assert_int_equal(st.producers, 2);
    assert_int_equal(append_keys(sp, key, 5, &a1, &first, &dup_ticket), -EALREADY);
    uint64_t durable, failed;
    spool_poll(sp, &durable, &failed);
    assert_true(dup_ticket <= durable); /* recovered batches are durable already */
    struct batch_tag b6 = make_tag("host2.exec", 5, 6);
    assert_int_equal(append_keys(sp, key, 5, &b6, &first, &dup_ticket), -EALREADY);
    assert_int_equal(append_keys(sp, key, 5, &b7, &first, &dup_ticket), -EALREADY);
    struct batch_tag b8 = make_tag("host2.exec", 5, 8);
    assert_int_equal(append_keys(sp, key, 5, &b8, &first, &ticket), 0);
    /* The producer restarted: a new epoch counts from 1 again. */
    struct batch_tag b1 = make_tag("host2.exec", 6, 1);
    assert_int_equal(append_keys(sp, key + 5, 5, &b1, &first, &ticket), 0);
    assert_int_equal(wait_durable(sp, ticket), 0);
    spool_close(sp);
}

/* A fdatasync that fails while fail_fsyncs is above zero. */
static atomic_int fail_fsyncs;

static int failing_fdatasync(int fd)
{
    if (atomic_load(&fail_fsyncs) > 0) {
        atomic_fetch_sub(&fail_fsyncs, 1);
        errno = EIO;
        return -1;
    }
    return fdatasync(fd);
}

static void test_fsync_failure_cuts_and_recovers(void **state)
{
    struct fixture *f = *state;
    struct spool_options o = options(f, 1 << 20);
    struct spool *sp = open_spool(&o);
    spool_fdatasync_fn = failing_fdatasync;
    uint64_t first, ticket;
    struct batch_tag q1 = make_tag("q", 1, 1);
    assert_int_equal(append_keys(sp, 1, 10, &q1, &first, &ticket), 0);
    assert_int_equal(wait_durable(sp, ticket), 0);
    char path[256];
    newest_segment(o.dir, path, sizeof(path));
    off_t durable_size = file_size(path);

    atomic_store(&fail_fsyncs, 1);
    struct batch_tag q2 = make_tag("q", 1, 2);
    uint64_t t2, first2;
    assert_int_equal(append_keys(sp, 11, 10, &q2, &first2, &t2), 0);
    assert_int_equal(first2, 11);
    uint64_t failed = wait_durable(sp, t2);
    assert_true(failed >= t2);
    /* The failed frame was cut off the file. */
    assert_int_equal(file_size(path), durable_size);
    struct spool_stats st;
    spool_get_stats(sp, &st);
    assert_true(st.fsync_errors >= 1);
    assert_int_equal(st.durable_seq, 10);

    /* The producer no longer remembers batch 2, but still batch 1; the retry is stored, with
     * new sequence numbers (never reused). */
    uint64_t dup;
    assert_int_equal(append_keys(sp, 1, 10, &q1, &first, &dup), -EALREADY);
    uint64_t t3, first3;
    assert_int_equal(append_keys(sp, 11, 10, &q2, &first3, &t3), 0);
    assert_true(first3 >= 21);
    assert_true(t3 > failed);
    assert_int_equal(wait_durable(sp, t3), 0);

    struct record *out = records(100);
    struct spool_reader *rd = spool_reader_open(sp, 0);
    assert_int_equal(read_all(rd, out, 100, 100), 20);
    assert_int_equal(out[9].seq, 10);
    assert_int_equal(out[10].seq, first3);
    assert_int_equal(record_key(&out[10]), 11);
    spool_reader_close(rd);
    spool_close(sp);

    /* The same after reopening. */
    spool_fdatasync_fn = fdatasync;
    sp = open_spool(&o);
    rd = spool_reader_open(sp, 0);
    assert_int_equal(read_all(rd, out, 100, 100), 20);
    assert_int_equal(out[10].seq, first3);
    spool_reader_close(rd);
    assert_int_equal(append_keys(sp, 11, 10, &q2, &first, &dup), -EALREADY);
    free(out);
    spool_close(sp);
}

static void test_fsync_failure_across_rotation(void **state)
{
    struct fixture *f = *state;
    struct spool_options o = options(f, 1500);
    struct spool *sp = open_spool(&o);
    spool_fdatasync_fn = failing_fdatasync;
    uint64_t first, ticket;
    assert_int_equal(append_keys(sp, 1, 10, NULL, &first, &ticket), 0);
    assert_int_equal(wait_durable(sp, ticket), 0);
    struct spool_stats st;
    spool_get_stats(sp, &st);
    uint64_t segs = st.segments;

    /* Hold the sync thread inside an fsync of one frame, append across rotations meanwhile,
     * then fail the next fsync, which covers the rotated segments. */
    atomic_store(&gate_closed, true);
    atomic_store(&fsyncs_started, 0);
    spool_fdatasync_fn = gated_fdatasync;
    uint64_t key = 11;
    assert_int_equal(append_keys(sp, key, 10, NULL, &first, &ticket), 0);
    key += 10;
    for (int i = 0; i < 5000 && atomic_load(&fsyncs_started) == 0; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    assert_true(atomic_load(&fsyncs_started) > 0);
    for (int i = 0; i < 7; i++, key += 10)
        assert_int_equal(append_keys(sp, key, 10, NULL, &first, &ticket), 0);
    spool_get_stats(sp, &st);
    assert_true(st.segments > segs);
    atomic_store(&fail_fsyncs, 1);
    spool_fdatasync_fn = failing_fdatasync;
    atomic_store(&gate_closed, false);
    uint64_t failed = wait_durable(sp, ticket);
    assert_true(failed >= ticket);
    /* Before the durable position again: later segments are gone. Readers saw none of it. */
    struct record *out = records(200);
    struct spool_reader *rd = spool_reader_open(sp, 0);
    size_t n = read_all(rd, out, 200, 50);
    spool_get_stats(sp, &st);
    assert_int_equal(n, st.durable_seq);
    assert_int_equal(count_segments(o.dir), st.segments);
    /* Appending works again; new records follow with fresh sequence numbers. */
    assert_int_equal(append_keys(sp, key, 10, NULL, &first, &ticket), 0);
    assert_true(first > 90);
    assert_int_equal(wait_durable(sp, ticket), 0);
    size_t m = read_all(rd, out + n, 200 - n, 100);
    assert_int_equal(m, 10);
    assert_int_equal(out[n].seq, first);
    assert_int_equal(record_key(&out[n]), key);
    spool_reader_close(rd);
    free(out);
    spool_close(sp);

    sp = open_spool(&o);
    assert_int_equal(append_keys(sp, key + 10, 1, NULL, &first, &ticket), 0);
    assert_true(first > 100);
    spool_close(sp);
}

static void test_close_after_unreported_fsync_failure(void **state)
{
    struct fixture *f = *state;
    struct spool_options o = options(f, 1 << 20);
    struct spool *sp = open_spool(&o);
    spool_fdatasync_fn = failing_fdatasync;
    uint64_t first, ticket;
    assert_int_equal(append_keys(sp, 1, 10, NULL, &first, &ticket), 0);
    assert_int_equal(wait_durable(sp, ticket), 0);
    atomic_store(&fail_fsyncs, 1);
    struct batch_tag t = make_tag("late", 1, 1);
    assert_int_equal(append_keys(sp, 11, 10, &t, &first, &ticket), 0);
    struct spool_stats st;
    for (int i = 0; i < 2500; i++) {
        spool_get_stats(sp, &st);
        if (st.fsync_errors)
            break;
        nanosleep(&(struct timespec){0, 2000000}, NULL);
    }
    assert_int_equal(st.fsync_errors, 1);
    /* Closed before spool_poll saw the failure: the frame must not come back. */
    spool_close(sp);
    spool_fdatasync_fn = fdatasync;
    sp = open_spool(&o);
    struct record *out = records(100);
    struct spool_reader *rd = spool_reader_open(sp, 0);
    assert_int_equal(read_all(rd, out, 100, 50), 10);
    spool_reader_close(rd);
    assert_int_equal(append_keys(sp, 11, 10, &t, &first, &ticket), 0);
    assert_true(first >= 21);
    free(out);
    spool_close(sp);
}

static void test_large_frames(void **state)
{
    struct fixture *f = *state;
    struct spool_options o = options(f, 8 << 20);
    struct spool *sp = open_spool(&o);
    enum { BIG = 30000 };
    size_t cap = (size_t)BIG * FRAME_RECORD_MAX;
    uint8_t *buf = malloc(cap);
    assert_non_null(buf);
    uint64_t key = 1, first, ticket;
    /* Frames of odd sizes, so they straddle the reader's 1 MiB chunks, and one above 1 MiB. */
    uint32_t sizes[] = {1000, 1777, 2500, BIG, 999, 3001, 1000, 1000, 1000, 1000, 1000, 4000};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t len = build(buf, cap, key, sizes[i]);
        if (sizes[i] == BIG)
            assert_true(len > (1u << 20));
        assert_int_equal(spool_append(sp, buf, len, sizes[i], NULL, &first, &ticket), 0);
        assert_int_equal(first, key);
        key += sizes[i];
    }
    assert_int_equal(wait_durable(sp, ticket), 0);
    free(buf);
    struct record *out = records(key);
    struct spool_reader *rd = spool_reader_open(sp, 0);
    size_t total = 0;
    for (;;) {
        size_t n = 0;
        assert_int_equal(spool_reader_next(rd, out + total, 4096, &n, 0), 0);
        if (n == 0)
            break;
        total += n;
    }
    assert_int_equal(total, key - 1);
    for (size_t i = 0; i < total; i++) {
        assert_int_equal(out[i].seq, i + 1);
        assert_int_equal(record_key(&out[i]), i + 1);
    }
    spool_reader_close(rd);
    struct spool_stats st;
    spool_get_stats(sp, &st);
    assert_int_equal(st.corrupt_frames, 0);
    free(out);
    spool_close(sp);
}

/* A pwritev that writes only a part, then fails with ENOSPC. */
static atomic_int enospc_calls;

static ssize_t enospc_pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
    if (atomic_fetch_add(&enospc_calls, 1) == 0) {
        size_t part = iov[0].iov_len / 2;
        return pwrite(fd, iov[0].iov_base, part, off);
    }
    errno = ENOSPC;
    return -1;
}

static void test_write_enospc_keeps_nothing(void **state)
{
    struct fixture *f = *state;
    struct spool_options o = options(f, 1 << 20);
    struct spool *sp = open_spool(&o);
    uint64_t first, ticket;
    assert_int_equal(append_keys(sp, 1, 10, NULL, &first, &ticket), 0);
    char path[256];
    newest_segment(o.dir, path, sizeof(path));
    off_t size = file_size(path);

    atomic_store(&enospc_calls, 0);
    spool_pwritev_fn = enospc_pwritev;
    struct batch_tag t = make_tag("w", 1, 1);
    assert_int_equal(append_keys(sp, 11, 10, &t, &first, &ticket), -ENOSPC);
    assert_true(atomic_load(&enospc_calls) >= 2);
    assert_int_equal(file_size(path), size);
    spool_pwritev_fn = pwritev;
    /* Not remembered as appended: the retry is stored. */
    uint64_t first2;
    assert_int_equal(append_keys(sp, 11, 10, &t, &first2, &ticket), 0);
    assert_int_equal(first2, 11);
    assert_int_equal(wait_durable(sp, ticket), 0);
    struct spool_stats st;
    spool_get_stats(sp, &st);
    assert_int_equal(st.fsync_errors, 1);
    assert_int_equal(st.records, 20);
    struct record *out = records(100);
    struct spool_reader *rd = spool_reader_open(sp, 0);
    assert_int_equal(read_all(rd, out, 100, 100), 20);
    assert_int_equal(record_key(&out[19]), 20);
    spool_reader_close(rd);
    free(out);
    spool_close(sp);
}

struct waiter {
    struct spool_reader *rd;
    int rc;
    int64_t took_ns;
};

static void *wait_main(void *arg)
{
    struct waiter *w = arg;
    struct record out[4];
    size_t n;
    int64_t t0 = clock_mono_ns();
    w->rc = spool_reader_next(w->rd, out, 4, &n, 10000);
    w->took_ns = clock_mono_ns() - t0;
    return NULL;
}

static void test_wake_readers(void **state)
{
    struct fixture *f = *state;
    struct spool_options o = options(f, 1 << 20);
    struct spool *sp = open_spool(&o);
    struct waiter w = {.rd = spool_reader_open(sp, 0)};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, wait_main, &w), 0);
    struct timespec ts = {0, 50000000};
    nanosleep(&ts, NULL);
    spool_wake_readers(sp);
    pthread_join(th, NULL);
    assert_int_equal(w.rc, -ESHUTDOWN);
    assert_true(w.took_ns < 5000000000ll);
    spool_reader_close(w.rd);
    spool_close(sp);
}

static void test_interval_and_never(void **state)
{
    struct fixture *f = *state;
    enum spool_fsync policies[] = {SPOOL_FSYNC_INTERVAL, SPOOL_FSYNC_NEVER};
    for (int p = 0; p < 2; p++) {
        struct spool_options o = options(f, 3000);
        o.fsync = policies[p];
        struct spool *sp = open_spool(&o);
        struct spool_reader *rd = spool_reader_open(sp, 0);
        uint64_t first, ticket = 0;
        uint64_t base = 1000 * (uint64_t)p;
        for (int i = 0; i < 20; i++)
            assert_int_equal(
                append_keys(sp, base + 1 + 10 * (uint64_t)i, 10, NULL, &first, &ticket), 0);
        /* Durable for the answer at once, and readable at once. */
        struct pollfd pfd = {.fd = spool_notify_fd(sp), .events = POLLIN};
        assert_int_equal(poll(&pfd, 1, 0), 1);
        uint64_t durable, failed;
        spool_poll(sp, &durable, &failed);
        assert_int_equal(durable, ticket);
        assert_int_equal(failed, 0);
        struct record *out = records(300);
        assert_int_equal(read_all(rd, out, 300, 0), 200);
        spool_reader_close(rd);
        free(out);
        spool_close(sp);
        char sub[128];
        snprintf(sub, sizeof(sub), "%s/sp", f->dir);
        rm_tree(sub);
    }
}

struct concurrent_reader {
    struct spool *sp;
    uint64_t want;
    uint64_t got;
    bool ordered;
};

static void *concurrent_main(void *arg)
{
    struct concurrent_reader *c = arg;
    struct spool_reader *rd = spool_reader_open(c->sp, 0);
    struct record *out = calloc(500, sizeof(*out));
    c->ordered = true;
    while (c->got < c->want) {
        size_t n;
        int rc = spool_reader_next(rd, out, 500, &n, 1000);
        if (rc < 0)
            break;
        for (size_t i = 0; i < n; i++) {
            if (out[i].seq != c->got + 1 || record_key(&out[i]) != out[i].seq)
                c->ordered = false;
            c->got++;
        }
    }
    free(out);
    spool_reader_close(rd);
    return NULL;
}

static void test_concurrent_readers(void **state)
{
    struct fixture *f = *state;
    struct spool_options o = options(f, 64 << 10);
    struct spool *sp = open_spool(&o);
    enum { FRAMES = 300, PER = 100 };
    struct concurrent_reader c[2] = {{.sp = sp, .want = FRAMES * PER},
                                     {.sp = sp, .want = FRAMES * PER}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, concurrent_main, &c[i]), 0);
    uint64_t first, ticket = 0, durable, failed;
    for (int i = 0; i < FRAMES; i++) {
        assert_int_equal(append_keys(sp, 1 + (uint64_t)i * PER, PER, NULL, &first, &ticket), 0);
        spool_poll(sp, &durable, &failed);
        assert_int_equal(failed, 0);
    }
    assert_int_equal(wait_durable(sp, ticket), 0);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(c[i].got, FRAMES * PER);
        assert_true(c[i].ordered);
    }
    spool_close(sp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_read_across_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_arrival_times, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readers_see_only_durable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_id_and_seq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_middle_frame_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cursors_and_deletion, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_deletion, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hwm_prevents_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_newest_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fsync_failure_cuts_and_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fsync_failure_across_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_after_unreported_fsync_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_frames, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_enospc_keeps_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wake_readers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interval_and_never, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_readers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
