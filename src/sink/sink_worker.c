/*
 * sink_worker.c: the threads that carry records from the spool into one sink (see sink.h).
 *
 * Each lane is a thread with its own spool reader and spool cursor. It opens the store (and
 * keeps trying while the store is down), resumes right after the store's own cursor, and then
 * loops: read records, keep this lane's, and write them as one batch once batch_max of them
 * are waiting or flush_interval_ms has passed since the first. A lane that only sees other
 * lanes' records still writes an empty batch every flush interval, so its cursor moves on and
 * never holds the spool back.
 *
 * What write() answers decides what happens next: SINK_OK advances the spool cursor;
 * SINK_RETRY backs off (capped, jittered, for ever), reopens the lane and writes the same batch
 * again; SINK_ERROR splits the batch in halves until the one record the store refuses is
 * alone, which goes to the dead-letter file before an empty write moves the cursor past it.
 *
 * Locking: w->lock guards the statistics, the error texts and the stop flags; w->cond (on
 * CLOCK_MONOTONIC) wakes backoff sleeps, sink_worker_wait_open and sink_worker_stop. Everything
 * else of a lane belongs to its thread.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/conf.h"
#include "core/log.h"
#include "sink/dead_letter.h"
#include "sink/sink.h"
#include "sink/sink_worker_conf.h"

/* Longest a lane waits in the spool when idle, so that a stop is noticed soon. */
#define SINK_IDLE_WAIT_MS 200

const struct conf_entry sink_worker_conf[] = {
    {"batch_max", CONF_INT, "5000", offsetof(struct sink_worker_options, batch_max),
     "records written per transaction at most", 1, 1000000, NULL},
    {"flush_interval_ms", CONF_INT, "100", offsetof(struct sink_worker_options, flush_interval_ms),
     "how long a batch may wait to fill up before it is written", 0, 3600000, NULL},
    {"retry_base_ms", CONF_INT, "100", offsetof(struct sink_worker_options, retry_base_ms),
     "first delay before a failed write is retried; doubles on every retry", 1, 3600000, NULL},
    {"retry_max_ms", CONF_INT, "10000", offsetof(struct sink_worker_options, retry_max_ms),
     "longest delay between retries", 1, 3600000, NULL},
    {"dead_letter", CONF_STRING, NULL, offsetof(struct sink_worker_options, dead_letter),
     "file of records the store refused (default: DATA_DIR/dead-letter.NAME.jsonl)", 0, 0, NULL},
    {NULL, 0, NULL, 0, NULL, 0, 0, NULL},
};

/* A lane's statistics; guarded by the worker's lock. */
struct lane_stats {
    uint64_t rows;
    uint64_t batches;
    uint64_t retries;
    uint64_t errors;
    uint64_t quarantined;
    uint64_t gap;
    uint64_t cursor;
    int64_t last_ok_ns;
    bool up;
    bool settled; /* the first open finished (or failed fatally) */
    bool running; /* the thread has not returned yet */
};

struct sink_lane {
    struct sink_worker *w;
    unsigned index;
    char cursor_name[96];
    int cursor_id;
    pthread_t thread;
    bool started;

    /* Owned by the lane thread. */
    struct spool_reader *rd;
    struct record *batch; /* batch_max records; also where the spool is read into */
    size_t nbatch;
    uint64_t read_pos;  /* last seq read from the spool, of any lane */
    uint64_t committed; /* this lane's cursor, as the store has it */
    bool need_open;     /* a RETRY happened: open the lane again before the next write */
    unsigned failures;  /* failed calls in a row, for the backoff and for quieter logs */

    struct lane_stats st; /* under w->lock */
};

struct sink_worker {
    struct spool *sp;
    const struct sink_ops *ops;
    void *state;
    char *name;
    struct sink_worker_options opt;
    struct dead_letter *dl;
    unsigned nlanes;
    struct sink_lane *lanes;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool draining; /* stop asked: finish what the spool holds, then return */
    bool aborting; /* the drain time is up: return as soon as possible */
    bool fatal;    /* a store's cursor is ahead of the spool */
    char fatal_error[512];
    char last_error[512]; /* cut to sink_stats.last_error when copied out */
};

enum lane_outcome {
    LANE_STORED = 0,
    LANE_REFUSED = 1,  /* the store answered SINK_ERROR for a non-empty batch */
    LANE_CANCELED = 2, /* the worker is aborting */
};

/* text_copy copies src into dst[0..cap), cut when too long; always NUL-terminated. */
static void text_copy(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static int64_t ms_to_ns(int64_t ms)
{
    return ms * 1000000;
}

static bool worker_aborting(struct sink_worker *w)
{
    pthread_mutex_lock(&w->lock);
    bool a = w->aborting;
    pthread_mutex_unlock(&w->lock);
    return a;
}

static bool worker_draining(struct sink_worker *w)
{
    pthread_mutex_lock(&w->lock);
    bool d = w->draining;
    pthread_mutex_unlock(&w->lock);
    return d;
}

/* cond_wait_until waits on w->cond until the monotonic deadline. Called with w->lock held. */
static void cond_wait_until(struct sink_worker *w, int64_t deadline_ns)
{
    struct timespec ts = {
        .tv_sec = (time_t)(deadline_ns / 1000000000),
        .tv_nsec = (long)(deadline_ns % 1000000000),
    };
    pthread_cond_timedwait(&w->cond, &w->lock, &ts);
}

/* lane_sleep waits ms, or less when the worker starts aborting. */
static void lane_sleep(struct sink_lane *ln, unsigned ms)
{
    struct sink_worker *w = ln->w;
    int64_t deadline = clock_mono_ns() + ms_to_ns(ms);
    pthread_mutex_lock(&w->lock);
    while (!w->aborting && clock_mono_ns() < deadline)
        cond_wait_until(w, deadline);
    pthread_mutex_unlock(&w->lock);
}

static unsigned lane_backoff_ms(struct sink_lane *ln)
{
    const struct sink_worker_options *o = &ln->w->opt;
    return clock_backoff_ms(ln->failures, (unsigned)o->retry_base_ms, (unsigned)o->retry_max_ms);
}

/*
 * lane_failed records a failed open or write: counts it, keeps its text for /health and logs
 * the first failure of a streak (later ones only when the text changes). Failures that are
 * retried also lengthen the next backoff; a refused batch (splitting) is split at once.
 */
static void lane_failed(struct sink_lane *ln, enum sink_result r, bool splitting, const char *what,
                        const char *err)
{
    struct sink_worker *w = ln->w;
    char text[sizeof(w->last_error)];
    snprintf(text, sizeof(text), "%s: %s", what, err[0] ? err : "failed");
    pthread_mutex_lock(&w->lock);
    if (r == SINK_ERROR)
        ln->st.errors++;
    else
        ln->st.retries++;
    ln->st.up = false;
    bool changed = strcmp(w->last_error, text) != 0;
    text_copy(w->last_error, sizeof(w->last_error), text);
    pthread_mutex_unlock(&w->lock);
    if (splitting) {
        /* The batch is split next; the quarantine of the culprit is what gets logged. */
        LOG_DEBUG("sink", "%s lane %u: %s (splitting the batch)", w->name, ln->index, text);
        return;
    }
    ln->failures++;
    if (ln->failures == 1 || changed)
        LOG_WARN("sink", "%s lane %u: %s (will retry)", w->name, ln->index, text);
    else
        LOG_DEBUG("sink", "%s lane %u: %s (retry %u)", w->name, ln->index, text, ln->failures);
}

static void lane_recovered(struct sink_lane *ln)
{
    if (ln->failures)
        LOG_INFO("sink", "%s lane %u: working again after %u failed attempts", ln->w->name,
                 ln->index, ln->failures);
    ln->failures = 0;
}

/* lane_stored records a successful write of n records up to cursor. */
static void lane_stored(struct sink_lane *ln, size_t n, uint64_t cursor)
{
    struct sink_worker *w = ln->w;
    spool_cursor_set(w->sp, ln->cursor_id, cursor);
    ln->committed = cursor;
    pthread_mutex_lock(&w->lock);
    ln->st.rows += n;
    ln->st.batches++;
    ln->st.cursor = cursor;
    ln->st.last_ok_ns = clock_wall_ns();
    ln->st.up = true;
    pthread_mutex_unlock(&w->lock);
    lane_recovered(ln);
}

/* lane_fatal stops the lane for good: the store's cursor is ahead of the spool. */
static void lane_fatal(struct sink_lane *ln, uint64_t store_cursor, uint64_t head)
{
    struct sink_worker *w = ln->w;
    pthread_mutex_lock(&w->lock);
    snprintf(w->fatal_error, sizeof(w->fatal_error),
             "sink %s: the store's cursor %" PRIu64 " (%s) is ahead of the spool's last "
             "sequence number %" PRIu64,
             w->name, store_cursor, ln->cursor_name, head);
    text_copy(w->last_error, sizeof(w->last_error), w->fatal_error);
    w->fatal = true;
    ln->st.up = false;
    ln->st.settled = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    LOG_ERROR("sink", "%s; refusing to write (was the spool folder replaced?)", w->fatal_error);
}

/*
 * lane_open calls open_lane until it succeeds. On the first open it also checks the store's
 * cursor against the spool's head. Returns 0 with *cursor, -ERANGE (fatal) or -ECANCELED.
 */
static int lane_open(struct sink_lane *ln, bool first, uint64_t *cursor)
{
    struct sink_worker *w = ln->w;
    for (;;) {
        if (worker_aborting(w))
            return -ECANCELED;
        char err[256] = "";
        uint64_t c = 0;
        enum sink_result r = w->ops->open_lane(w->state, ln->index, &c, err, sizeof(err));
        if (r == SINK_OK) {
            if (first) {
                struct spool_stats ss;
                spool_get_stats(w->sp, &ss);
                uint64_t head = ss.next_seq ? ss.next_seq - 1 : 0;
                if (c > head) {
                    lane_fatal(ln, c, head);
                    return -ERANGE;
                }
            }
            pthread_mutex_lock(&w->lock);
            ln->st.up = true;
            ln->st.settled = true;
            if (first)
                ln->st.cursor = c;
            pthread_cond_broadcast(&w->cond);
            pthread_mutex_unlock(&w->lock);
            /* After a failed write only a good write ends the streak, so the backoff grows. */
            if (first)
                lane_recovered(ln);
            *cursor = c;
            return 0;
        }
        lane_failed(ln, r, false, "open", err);
        lane_sleep(ln, lane_backoff_ms(ln));
    }
}

/*
 * lane_write writes recs[0..n) with cursor, again and again while the store answers RETRY.
 * An ERROR for an empty batch is a RETRY too: there is nothing in it to refuse.
 */
static enum lane_outcome lane_write(struct sink_lane *ln, const struct record *recs, size_t n,
                                    uint64_t cursor, char *err, size_t errlen)
{
    struct sink_worker *w = ln->w;
    for (;;) {
        if (worker_aborting(w))
            return LANE_CANCELED;
        if (ln->need_open) {
            uint64_t c = 0;
            if (lane_open(ln, false, &c) < 0)
                return LANE_CANCELED;
            ln->need_open = false;
            if (c >= cursor) {
                /* The last commit went through although its answer was lost. */
                lane_stored(ln, n, cursor);
                return LANE_STORED;
            }
        }
        err[0] = '\0';
        enum sink_result r = w->ops->write(w->state, ln->index, recs, n, cursor, err, errlen);
        if (r == SINK_OK) {
            lane_stored(ln, n, cursor);
            return LANE_STORED;
        }
        if (r == SINK_ERROR && n > 0) {
            lane_failed(ln, r, true, "write", err);
            return LANE_REFUSED;
        }
        lane_failed(ln, SINK_RETRY, false, "write", err);
        ln->need_open = true;
        lane_sleep(ln, lane_backoff_ms(ln));
    }
}

/* lane_quarantine puts rec into the dead-letter file, retrying while the disk refuses. */
static int lane_quarantine(struct sink_lane *ln, const struct record *rec, const char *reason)
{
    struct sink_worker *w = ln->w;
    unsigned attempt = 0;
    for (;;) {
        int rc = dead_letter_write(w->dl, rec, w->name, reason);
        if (rc == 0) {
            pthread_mutex_lock(&w->lock);
            ln->st.quarantined++;
            pthread_mutex_unlock(&w->lock);
            LOG_WARN("sink", "%s: record %" PRIu64 " quarantined to %s: %s", w->name, rec->seq,
                     dead_letter_path(w->dl), reason);
            return 0;
        }
        attempt++;
        pthread_mutex_lock(&w->lock);
        snprintf(w->last_error, sizeof(w->last_error), "dead letter %s: %s",
                 dead_letter_path(w->dl), strerror(-rc));
        pthread_mutex_unlock(&w->lock);
        if (attempt == 1)
            LOG_ERROR("sink", "%s: cannot quarantine record %" PRIu64 " to %s: %s (will retry)",
                      w->name, rec->seq, dead_letter_path(w->dl), strerror(-rc));
        if (worker_aborting(w))
            return -ECANCELED;
        lane_sleep(ln, clock_backoff_ms(attempt, (unsigned)w->opt.retry_base_ms,
                                        (unsigned)w->opt.retry_max_ms));
    }
}

/*
 * lane_deliver stores recs[0..n) and moves the cursor to `cursor`, splitting the batch when
 * the store refuses it: the halves are written on their own (the first with the cursor at its
 * last record), down to the single refused record, which is quarantined and passed with an
 * empty write. Returns 0, or -ECANCELED when the worker aborts first.
 */
static int lane_deliver(struct sink_lane *ln, const struct record *recs, size_t n, uint64_t cursor)
{
    char err[256];
    enum lane_outcome out = lane_write(ln, recs, n, cursor, err, sizeof(err));
    if (out == LANE_STORED)
        return 0;
    if (out == LANE_CANCELED)
        return -ECANCELED;
    if (n == 1) {
        if (lane_quarantine(ln, &recs[0], err) < 0)
            return -ECANCELED;
        return lane_deliver(ln, NULL, 0, cursor);
    }
    size_t half = n / 2;
    int rc = lane_deliver(ln, recs, half, recs[half - 1].seq);
    if (rc == 0)
        rc = lane_deliver(ln, recs + half, n - half, cursor);
    return rc;
}

/* lane_wait_ms is how long the next spool read may wait for records. */
static unsigned lane_wait_ms(const struct sink_lane *ln, bool draining, int64_t now,
                             int64_t batch_start, int64_t last_write)
{
    if (draining)
        return 0;
    int64_t flush_ns = ms_to_ns(ln->w->opt.flush_interval_ms);
    int64_t left;
    if (ln->nbatch > 0)
        left = batch_start + flush_ns - now;
    else if (ln->read_pos > ln->committed)
        left = last_write + flush_ns - now;
    else
        return SINK_IDLE_WAIT_MS;
    if (left <= 0)
        return 0;
    left = (left + 999999) / 1000000;
    return left > SINK_IDLE_WAIT_MS ? SINK_IDLE_WAIT_MS : (unsigned)left;
}

/*
 * lane_keep moves the records of this lane among batch[nbatch..nbatch+got) (got >= 1) to the
 * end of the batch, and notes the last seq read.
 */
static size_t lane_keep(struct sink_lane *ln, size_t got)
{
    struct record *in = ln->batch + ln->nbatch;
    if (ln->w->nlanes == 1) {
        ln->read_pos = in[got - 1].seq;
        ln->nbatch += got;
        return got;
    }
    size_t kept = 0;
    for (size_t i = 0; i < got; i++) {
        ln->read_pos = in[i].seq;
        if (record_lane(&in[i], ln->w->nlanes) != ln->index)
            continue;
        if (kept != i)
            memcpy(&in[kept], &in[i], sizeof(in[i]));
        kept++;
    }
    ln->nbatch += kept;
    return kept;
}

/* lane_open_reader starts reading after read_pos and counts what the spool no longer has. */
static int lane_open_reader(struct sink_lane *ln)
{
    struct sink_worker *w = ln->w;
    ln->rd = spool_reader_open(w->sp, ln->read_pos);
    if (!ln->rd)
        return -ENOMEM;
    uint64_t gap = spool_reader_gap(ln->rd);
    if (gap) {
        LOG_WARN("sink",
                 "%s lane %u: %" PRIu64 " records after %" PRIu64
                 " are no longer in the spool; resuming at the oldest kept",
                 w->name, ln->index, gap, ln->read_pos);
        pthread_mutex_lock(&w->lock);
        ln->st.gap += gap;
        pthread_mutex_unlock(&w->lock);
    }
    return 0;
}

/* lane_run reads and writes until the spool shuts down, the drain is done or the worker
 * aborts. */
static void lane_run(struct sink_lane *ln)
{
    struct sink_worker *w = ln->w;
    size_t batch_max = (size_t)w->opt.batch_max;
    int64_t flush_ns = ms_to_ns(w->opt.flush_interval_ms);
    int64_t batch_start = 0, last_write = clock_mono_ns();
    unsigned read_failures = 0;

    for (;;) {
        if (worker_aborting(w))
            return;
        if (!ln->rd && lane_open_reader(ln) < 0) {
            lane_sleep(ln, lane_backoff_ms(ln));
            continue;
        }
        bool draining = worker_draining(w);
        int64_t now = clock_mono_ns();
        size_t got = 0;
        int rc = spool_reader_next(ln->rd, ln->batch + ln->nbatch, batch_max - ln->nbatch, &got,
                                   lane_wait_ms(ln, draining, now, batch_start, last_write));
        bool shutdown = rc == -ESHUTDOWN;
        if (rc < 0 && !shutdown) {
            read_failures++;
            if (read_failures == 1)
                LOG_ERROR("sink", "%s lane %u: reading the spool after %" PRIu64 ": %s", w->name,
                          ln->index, ln->read_pos, strerror(-rc));
            pthread_mutex_lock(&w->lock);
            snprintf(w->last_error, sizeof(w->last_error), "reading the spool: %s", strerror(-rc));
            pthread_mutex_unlock(&w->lock);
            lane_sleep(ln, clock_backoff_ms(read_failures, (unsigned)w->opt.retry_base_ms,
                                            (unsigned)w->opt.retry_max_ms));
            spool_reader_close(ln->rd);
            ln->rd = NULL;
            continue;
        }
        if (got > 0) {
            size_t before = ln->nbatch;
            read_failures = 0;
            lane_keep(ln, got);
            if (before == 0 && ln->nbatch > 0)
                batch_start = now;
        }

        now = clock_mono_ns();
        bool pending = ln->nbatch > 0 || ln->read_pos > ln->committed;
        bool finishing = (draining || shutdown) && got == 0;
        bool flush = ln->nbatch == batch_max || (ln->nbatch > 0 && now - batch_start >= flush_ns) ||
                     (ln->nbatch == 0 && pending && now - last_write >= flush_ns) ||
                     (finishing && pending);
        if (flush) {
            if (lane_deliver(ln, ln->batch, ln->nbatch, ln->read_pos) < 0)
                return;
            ln->nbatch = 0;
            batch_start = 0;
            last_write = clock_mono_ns();
        }
        if (shutdown || (finishing && ln->nbatch == 0))
            return;
    }
}

static void *lane_main(void *arg)
{
    struct sink_lane *ln = arg;
    struct sink_worker *w = ln->w;
    uint64_t cursor = 0;
    if (lane_open(ln, true, &cursor) == 0) {
        ln->committed = cursor;
        ln->read_pos = cursor;
        /* The spool's copy may lag the store's, never lead it. */
        spool_cursor_set(w->sp, ln->cursor_id, cursor);
        LOG_INFO("sink", "%s lane %u: resuming after %" PRIu64, w->name, ln->index, cursor);
        lane_run(ln);
        spool_reader_close(ln->rd);
        ln->rd = NULL;
    }
    pthread_mutex_lock(&w->lock);
    ln->st.running = false;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static bool options_valid(const struct sink_worker_options *o, char *err, size_t errlen)
{
    if (o->batch_max < 1 || o->batch_max > 1000000) {
        snprintf(err, errlen, "batch_max: expected 1 to 1000000, got %" PRId64, o->batch_max);
        return false;
    }
    if (o->flush_interval_ms < 0 || o->flush_interval_ms > 3600000) {
        snprintf(err, errlen, "flush_interval_ms: expected 0 to 3600000, got %" PRId64,
                 o->flush_interval_ms);
        return false;
    }
    if (o->retry_base_ms < 1 || o->retry_max_ms < o->retry_base_ms || o->retry_max_ms > 3600000) {
        snprintf(err, errlen,
                 "retry_base_ms, retry_max_ms: expected 1 <= base <= max <= 3600000, got %" PRId64
                 " and %" PRId64,
                 o->retry_base_ms, o->retry_max_ms);
        return false;
    }
    return true;
}

/* worker_free releases what sink_worker_start built; the threads must be gone. */
static void worker_free(struct sink_worker *w)
{
    if (!w)
        return;
    if (w->ops && w->state)
        w->ops->destroy(w->state);
    for (unsigned i = 0; w->lanes && i < w->nlanes; i++)
        free(w->lanes[i].batch);
    free(w->lanes);
    dead_letter_destroy(w->dl);
    free((char *)w->opt.dead_letter);
    free(w->name);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

/* worker_join tells every lane to stop at once and waits for the threads. */
static void worker_join(struct sink_worker *w)
{
    pthread_mutex_lock(&w->lock);
    w->draining = true;
    w->aborting = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    for (unsigned i = 0; i < w->nlanes; i++) {
        if (w->lanes[i].started)
            pthread_join(w->lanes[i].thread, NULL);
        w->lanes[i].started = false;
    }
}

struct sink_worker *sink_worker_start(struct spool *sp, const struct sink_ops *ops,
                                      const struct sink_config *cfg,
                                      const struct sink_worker_options *opt, char *err,
                                      size_t errlen)
{
    if (!options_valid(opt, err, errlen))
        return NULL;
    struct sink_worker *w = xcalloc(1, sizeof(*w));
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&w->lock, NULL);
    w->sp = sp;
    w->name = xstrdup(cfg->name);
    w->opt = *opt;
    if (opt->dead_letter && *opt->dead_letter) {
        w->opt.dead_letter = xstrdup(opt->dead_letter);
    } else {
        const char *dir = cfg->data_dir && *cfg->data_dir ? cfg->data_dir : ".";
        size_t len = strlen(dir) + strlen(cfg->name) + sizeof("/dead-letter..jsonl");
        char *path = xmalloc(len);
        snprintf(path, len, "%s/dead-letter.%s.jsonl", dir, cfg->name);
        w->opt.dead_letter = path;
    }
    w->dl = dead_letter_create(w->opt.dead_letter);

    char cerr[256] = "";
    if (ops->create(cfg, &w->state, cerr, sizeof(cerr)) < 0) {
        snprintf(err, errlen, "sink %s: %s", cfg->name, cerr[0] ? cerr : "cannot be created");
        w->state = NULL;
        goto fail;
    }
    w->ops = ops;
    w->nlanes = ops->lanes ? ops->lanes(w->state) : 1;
    if (w->nlanes == 0)
        w->nlanes = 1;
    w->lanes = xcalloc(w->nlanes, sizeof(*w->lanes));

    for (unsigned i = 0; i < w->nlanes; i++) {
        struct sink_lane *ln = &w->lanes[i];
        ln->w = w;
        ln->index = i;
        if (w->nlanes == 1)
            snprintf(ln->cursor_name, sizeof(ln->cursor_name), "%s", cfg->name);
        else
            snprintf(ln->cursor_name, sizeof(ln->cursor_name), "%s.lane%u", cfg->name, i);
        uint64_t spool_seq = 0;
        int rc = spool_cursor_open(sp, ln->cursor_name, &spool_seq, &ln->cursor_id);
        if (rc < 0) {
            snprintf(err, errlen, "sink %s: cursor '%s': %s", cfg->name, ln->cursor_name,
                     rc == -EINVAL ? "not a valid name ([A-Za-z0-9._-], up to 64)" : strerror(-rc));
            goto fail;
        }
        ln->st.cursor = spool_seq;
        ln->batch = xmalloc((size_t)opt->batch_max * sizeof(*ln->batch));
    }
    for (unsigned i = 0; i < w->nlanes; i++) {
        struct sink_lane *ln = &w->lanes[i];
        ln->st.running = true;
        int rc = pthread_create(&ln->thread, NULL, lane_main, ln);
        if (rc != 0) {
            ln->st.running = false;
            snprintf(err, errlen, "sink %s: cannot start a thread: %s", cfg->name, strerror(rc));
            worker_join(w);
            goto fail;
        }
        ln->started = true;
    }
    LOG_INFO("sink", "%s: started (%s, %u lane%s, batch_max %" PRId64 ", flush %" PRId64 " ms)",
             w->name, ops->scheme, w->nlanes, w->nlanes == 1 ? "" : "s", w->opt.batch_max,
             w->opt.flush_interval_ms);
    return w;

fail:
    worker_free(w);
    return NULL;
}

void sink_worker_stop(struct sink_worker *w, unsigned drain_ms)
{
    if (!w)
        return;
    int64_t deadline = clock_mono_ns() + ms_to_ns(drain_ms);
    pthread_mutex_lock(&w->lock);
    w->draining = true;
    pthread_cond_broadcast(&w->cond);
    for (;;) {
        bool running = false;
        for (unsigned i = 0; i < w->nlanes; i++)
            running = running || w->lanes[i].st.running;
        if (!running || clock_mono_ns() >= deadline)
            break;
        cond_wait_until(w, deadline);
    }
    pthread_mutex_unlock(&w->lock);
    worker_join(w);

    struct sink_stats st;
    sink_worker_stats(w, &st);
    LOG_INFO("sink",
             "%s: stopped at cursor %" PRIu64 " (%" PRIu64 " rows, %" PRIu64 " quarantined)",
             w->name, st.cursor, st.rows, st.quarantined);
    worker_free(w);
}

void sink_worker_stats(struct sink_worker *w, struct sink_stats *st)
{
    memset(st, 0, sizeof(*st));
    pthread_mutex_lock(&w->lock);
    st->up = !w->fatal;
    for (unsigned i = 0; i < w->nlanes; i++) {
        const struct lane_stats *ls = &w->lanes[i].st;
        st->rows += ls->rows;
        st->batches += ls->batches;
        st->retries += ls->retries;
        st->errors += ls->errors;
        st->quarantined += ls->quarantined;
        st->gap += ls->gap;
        if (i == 0 || ls->cursor < st->cursor)
            st->cursor = ls->cursor;
        if (ls->last_ok_ns > st->last_ok_ns)
            st->last_ok_ns = ls->last_ok_ns;
        if (!ls->up)
            st->up = 0;
    }
    text_copy(st->last_error, sizeof(st->last_error), w->last_error);
    pthread_mutex_unlock(&w->lock);
}

const char *sink_worker_name(const struct sink_worker *w)
{
    return w->name;
}

int sink_worker_fatal(struct sink_worker *w)
{
    pthread_mutex_lock(&w->lock);
    int fatal = w->fatal;
    pthread_mutex_unlock(&w->lock);
    return fatal;
}

void sink_worker_metrics(struct sink_worker *w, FILE *out)
{
    if (!w->ops->metrics)
        return;
    struct sink_metrics_out m = {.out = out, .sink_name = w->name};
    w->ops->metrics(w->state, &m);
}

int sink_worker_wait_open(struct sink_worker *w, unsigned ms, char *err, size_t errlen)
{
    int64_t deadline = clock_mono_ns() + ms_to_ns(ms);
    int rc = 0;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        if (w->fatal) {
            text_copy(err, errlen, w->fatal_error);
            rc = -ERANGE;
            break;
        }
        bool settled = true;
        for (unsigned i = 0; i < w->nlanes; i++)
            settled = settled && w->lanes[i].st.settled;
        if (settled)
            break;
        if (clock_mono_ns() >= deadline) {
            snprintf(err, errlen, "sink %s: not open after %u ms: %s", w->name, ms,
                     w->last_error[0] ? w->last_error : "no answer yet");
            rc = -ETIMEDOUT;
            break;
        }
        cond_wait_until(w, deadline);
    }
    pthread_mutex_unlock(&w->lock);
    return rc;
}
