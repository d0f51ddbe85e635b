/*
 * telem.c: libtelem's handle: the bounded record queue the callers fill, and the background
 * "shipper" thread that empties it into telemd, batch by batch (public API in telem.h).
 *
 * Queue: records sit in fixed-size slots inside chunks of TELEM_CHUNK_SLOTS. All chunks are
 * allocated and touched by telem_open (the callers never allocate or fault); filled chunks
 * form a FIFO, emptied ones go back on a LIFO free list. LIFO matters: while telemd keeps up,
 * the same two or three chunks go round and stay in the caches and the TLB, whatever
 * max_buffered is. (A plain ring of max_buffered slots laps through megabytes, and on a busy
 * virtual machine touching memory that went cold costs 10 us now and then: a p99 killer.)
 *
 * Callers: telem_trade() and telem_metric() check their record on the stack, then take the
 * handle's mutex only to copy it into the next slot and bump the head. The mutex is held for a
 * memcpy of one record; the shipper is signalled only when it sleeps and a full batch is
 * waiting, so a steady caller makes no system call.
 *
 * Shipper: it formats records straight out of their slots without the lock (callers only
 * write past the count it read), then releases them at once, so the queue drains as fast as
 * formatting goes even while a batch waits for its answer. A batch is a line-protocol body
 * with a number; once sent, its body and number never change, so a retry after a lost answer
 * is recognised by telemd (Telem-Batch) and stored once. While one batch is in flight the
 * shipper formats the next one, which hides formatting behind telemd's fsync. Batches are
 * answered strictly in order, so "resolved" (acked + rejected) only grows, and telem_flush()
 * waits for it to pass the head it saw.
 *
 * Lock order: one mutex (t->mu) guards every shared field below it in struct telem; the log
 * callback is never called with it held.
 */
#include "telem.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "telem_encode.h"
#include "telem_http.h"

#define TELEM_DEFAULT_ENDPOINT  "unix:./telem-data/telemd.sock"
#define TELEM_DEFAULT_BATCH     5000
#define TELEM_DEFAULT_INTERVAL  1000
#define TELEM_DEFAULT_BUFFERED  20000
#define TELEM_DEFAULT_CONNECT   2000
#define TELEM_DEFAULT_IO        30000
#define TELEM_DEFAULT_BACKOFF   2000
#define TELEM_BACKOFF_BASE_MS   50
#define TELEM_RETRY_AFTER_MAX_S 30
/* Largest body the shipper builds; halved when telemd answers 413. */
#define TELEM_BODY_MAX    (4u << 20)
#define TELEM_HEAD_MAX    640
#define TELEM_CHUNK_SLOTS 256

static _Thread_local char telem_tls_msg[160];

/* A chunk of record slots; slot[0..n) are written. */
struct telem_chunk {
    struct telem_chunk *next; /* in the filled FIFO or on the free list */
    unsigned n;
    struct telem__rec slot[TELEM_CHUNK_SLOTS];
};

/* A batch: a line-protocol body, its record count and, once numbered, its request head. */
struct telem_batch {
    char *buf;
    size_t len, cap;
    uint64_t nrec;
    uint64_t number; /* 0 while it may still grow; fixed once sent */
    char head[TELEM_HEAD_MAX];
    size_t head_len;
    bool sent_once;
};

struct telem {
    /* Set by telem_open, read-only afterwards. */
    struct telem__endpoint ep;
    char prefix[2 * (TELEM_PROFILE_MAX + TELEM_SCRIPT_MAX) + 32];
    size_t prefix_len;
    char producer[TELEM_PRODUCER_MAX + 1];
    char profile[TELEM_PROFILE_MAX + 1]; /* the defaults, for records that override one */
    char script[TELEM_SCRIPT_MAX + 1];
    uint64_t epoch;
    char *token;
    unsigned batch_max, flush_interval_ms, max_buffered, block_timeout_ms;
    unsigned ready_at; /* records that make a batch worth sending at once */
    unsigned connect_timeout_ms, io_timeout_ms, backoff_max_ms;
    enum telem_full_policy policy;
    telem_log_fn log;
    void *log_arg;
    enum telem_log_level log_level;
    pthread_t thread;

    /* Owned by the shipper thread alone. */
    struct telem_batch cur, next;
    uint64_t batch_seq;
    size_t body_max;
    unsigned failures; /* consecutive failed attempts, for backoff */
    uint64_t rng;

    pthread_mutex_t mu;
    pthread_cond_t not_full;    /* callers waiting for room (block policy) */
    pthread_cond_t ship_cv;     /* the shipper waiting for work or sleeping through backoff */
    pthread_cond_t done_cv;     /* flush and close waiting for "resolved" to move */
    struct telem_chunk *chunks; /* all of them, one allocation */
    size_t nchunks;
    struct telem_chunk *free_chunks; /* LIFO */
    struct telem_chunk *q_first;     /* oldest chunk with unshipped records, or NULL */
    struct telem_chunk *q_last;      /* the chunk callers write into, or NULL */
    unsigned q_pos;                  /* slots of q_first already taken by the shipper */
    uint64_t head;                   /* records accepted */
    uint64_t tail;                   /* records taken out by the shipper */
    uint64_t resolved;               /* records acked, rejected or given up, in order */
    uint64_t flush_target;           /* send promptly until resolved reaches this */
    unsigned blocked;                /* callers inside the block-policy wait */
    bool shipper_waiting;
    bool closing; /* telem_close began: refuse new records */
    bool stop;    /* the shipper must exit now */
    int conn_fd;  /* the shipper's socket, for telem_close to shut down */
    struct telem_stats stats;
};

const char *telem_strerror(int code)
{
    switch (code) {
    case TELEM_OK:
        return "success";
    case TELEM_EINVAL:
        return "invalid argument";
    case TELEM_ENOMEM:
        return "out of memory";
    case TELEM_EFULL:
        return "buffer full, record dropped";
    case TELEM_ETIMEDOUT:
        return "timed out";
    case TELEM_ECLOSED:
        return "handle is closing";
    case TELEM_ECONNECT:
        return "cannot connect to telemd";
    case TELEM_EIO:
        return "connection to telemd failed";
    case TELEM_EHTTP:
        return "unexpected reply from telemd";
    case TELEM_EREJECTED:
        return "telemd rejected a batch";
    case TELEM_EAUTH:
        return "telemd refused the token";
    case TELEM_EBUSY:
        return "telemd is busy (spool full)";
    case TELEM_ESYS:
        return "system call failed";
    default:
        return "unknown error";
    }
}

const char *telem_errmsg(void)
{
    return telem_tls_msg;
}

static int telem_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* telem_fail records why the calling thread's call failed and returns code. */
static int telem_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(telem_tls_msg, sizeof(telem_tls_msg), fmt, ap);
    va_end(ap);
    return code;
}

/* telem_fail_fixed is telem_fail for a constant message: no formatting on a hot refusal. */
static int telem_fail_fixed(int code, const char *msg)
{
    size_t n = strlen(msg);
    if (n >= sizeof(telem_tls_msg))
        n = sizeof(telem_tls_msg) - 1;
    memcpy(telem_tls_msg, msg, n);
    telem_tls_msg[n] = '\0';
    return code;
}

static void telem_log(struct telem *t, enum telem_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void telem_log(struct telem *t, enum telem_log_level level, const char *fmt, ...)
{
    if (t->log == NULL || level > t->log_level)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    t->log(t->log_arg, level, line);
}

static int64_t telem_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* telem_deadline returns the CLOCK_MONOTONIC time ms from now, for pthread_cond_timedwait. */
static struct timespec telem_deadline(unsigned ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    return ts;
}

static bool telem_past(const struct timespec *d)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > d->tv_sec || (now.tv_sec == d->tv_sec && now.tv_nsec >= d->tv_nsec);
}

/* ---- callers' side ---------------------------------------------------------------------- */

/* telem_enqueue copies a checked record into the queue, applying the full policy. */
static int telem_enqueue(struct telem *t, const struct telem__rec *rec)
{
    pthread_mutex_lock(&t->mu);
    if (t->closing) {
        pthread_mutex_unlock(&t->mu);
        return telem_fail_fixed(TELEM_ECLOSED, "handle is closing");
    }
    if (t->head - t->tail >= t->max_buffered) {
        if (t->policy == TELEM_FULL_DROP) {
            t->stats.dropped++;
            pthread_mutex_unlock(&t->mu);
            return telem_fail_fixed(TELEM_EFULL, "buffer full, record dropped");
        }
        struct timespec until = telem_deadline(t->block_timeout_ms);
        t->blocked++;
        while (t->head - t->tail >= t->max_buffered && !t->closing) {
            if (t->block_timeout_ms == 0)
                pthread_cond_wait(&t->not_full, &t->mu);
            else if (pthread_cond_timedwait(&t->not_full, &t->mu, &until) == ETIMEDOUT)
                break;
        }
        t->blocked--;
        if (t->closing) {
            if (t->blocked == 0)
                pthread_cond_broadcast(&t->done_cv);
            pthread_mutex_unlock(&t->mu);
            return telem_fail_fixed(TELEM_ECLOSED, "handle is closing");
        }
        if (t->head - t->tail >= t->max_buffered) {
            t->stats.dropped++;
            pthread_mutex_unlock(&t->mu);
            return telem_fail(TELEM_ETIMEDOUT, "buffer still full after %u ms, record dropped",
                              t->block_timeout_ms);
        }
    }
    struct telem_chunk *c = t->q_last;
    if (c == NULL || c->n == TELEM_CHUNK_SLOTS) {
        /* Always there: nchunks covers max_buffered records plus two partial chunks. */
        struct telem_chunk *fresh = t->free_chunks;
        t->free_chunks = fresh->next;
        fresh->next = NULL;
        fresh->n = 0;
        if (c != NULL)
            c->next = fresh;
        else
            t->q_first = fresh;
        t->q_last = c = fresh;
    }
    memcpy(&c->slot[c->n], rec, sizeof(*rec));
    c->n++;
    t->head++;
    t->stats.accepted++;
    if (t->shipper_waiting && t->head - t->tail >= t->ready_at) {
        t->shipper_waiting = false;
        pthread_cond_signal(&t->ship_cv);
    }
    pthread_mutex_unlock(&t->mu);
    return TELEM_OK;
}

static int telem_invalid(struct telem *t)
{
    pthread_mutex_lock(&t->mu);
    t->stats.invalid++;
    pthread_mutex_unlock(&t->mu);
    return TELEM_EINVAL;
}

int telem_trade(struct telem *t, const struct telem_trade *tr)
{
    if (t == NULL || tr == NULL)
        return telem_fail(TELEM_EINVAL, "telem_trade: NULL handle or trade");
    struct telem__rec rec;
    struct telem_trade own;
    if (tr->profile != NULL || tr->script != NULL) {
        /* A record that names one of profile and script keeps the handle's other one. */
        own = *tr;
        own.profile = tr->profile ? tr->profile : t->profile;
        own.script = tr->script ? tr->script : t->script;
        tr = &own;
    }
    int64_t now = tr->closed_at_ns == 0 ? telem_wall_ns() : 0;
    if (telem__rec_trade(&rec, tr, now, telem_tls_msg, sizeof(telem_tls_msg)) != TELEM_OK)
        return telem_invalid(t);
    return telem_enqueue(t, &rec);
}

int telem_metric_for(struct telem *t, const char *profile, const char *script, const char *name,
                     double value, int64_t ts_ns)
{
    if (t == NULL)
        return telem_fail(TELEM_EINVAL, "telem_metric: NULL handle");
    struct telem__rec rec;
    if (profile != NULL || script != NULL) {
        profile = profile ? profile : t->profile;
        script = script ? script : t->script;
    }
    int64_t now = ts_ns == 0 ? telem_wall_ns() : 0;
    if (telem__rec_metric(&rec, profile, script, name, value, ts_ns, now, telem_tls_msg,
                          sizeof(telem_tls_msg)) != TELEM_OK)
        return telem_invalid(t);
    return telem_enqueue(t, &rec);
}

int telem_metric(struct telem *t, const char *name, double value, int64_t ts_ns)
{
    return telem_metric_for(t, NULL, NULL, name, value, ts_ns);
}

/* telem_wait_resolved waits until resolved >= target; called with t->mu held. */
static int telem_wait_resolved(struct telem *t, uint64_t target, unsigned timeout_ms)
{
    struct timespec until = telem_deadline(timeout_ms);
    if (t->flush_target < target)
        t->flush_target = target;
    pthread_cond_signal(&t->ship_cv);
    while (t->resolved < target && !t->stop) {
        if (timeout_ms == 0)
            pthread_cond_wait(&t->done_cv, &t->mu);
        else if (pthread_cond_timedwait(&t->done_cv, &t->mu, &until) == ETIMEDOUT)
            break;
    }
    return t->resolved >= target ? TELEM_OK : TELEM_ETIMEDOUT;
}

int telem_flush(struct telem *t, unsigned timeout_ms)
{
    if (t == NULL)
        return telem_fail(TELEM_EINVAL, "telem_flush: NULL handle");
    pthread_mutex_lock(&t->mu);
    int rc = telem_wait_resolved(t, t->head, timeout_ms);
    pthread_mutex_unlock(&t->mu);
    if (rc != TELEM_OK)
        return telem_fail(rc, "flush: telemd did not acknowledge everything in %u ms", timeout_ms);
    return TELEM_OK;
}

int telem_stats(struct telem *t, struct telem_stats *out)
{
    if (t == NULL || out == NULL)
        return telem_fail(TELEM_EINVAL, "telem_stats: NULL argument");
    pthread_mutex_lock(&t->mu);
    *out = t->stats;
    out->queued = t->head - t->resolved;
    pthread_mutex_unlock(&t->mu);
    return TELEM_OK;
}

/* ---- shipper ----------------------------------------------------------------------------- */

/* telem_batch_reserve makes room for need more bytes; false when memory is short. */
static bool telem_batch_reserve(struct telem_batch *b, size_t need)
{
    if (b->len + need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 64 * 1024;
    while (cap < b->len + need)
        cap *= 2;
    char *p = realloc(b->buf, cap);
    if (p == NULL)
        return false;
    b->buf = p;
    b->cap = cap;
    return true;
}

/*
 * telem_fill formats queued records into b, up to batch_max records and body_max bytes,
 * without holding the lock while formatting. Returns the number of records formatted.
 */
static uint64_t telem_fill(struct telem *t, struct telem_batch *b)
{
    uint64_t total = 0;
    for (;;) {
        pthread_mutex_lock(&t->mu);
        struct telem_chunk *c = t->q_first;
        unsigned pos = t->q_pos;
        unsigned n = c != NULL ? c->n : 0;
        pthread_mutex_unlock(&t->mu);

        uint64_t room = b->nrec < t->batch_max ? t->batch_max - b->nrec : 0;
        unsigned end = (uint64_t)(n - pos) < room ? n : pos + (unsigned)room;
        unsigned i = pos;
        while (i < end && b->len < t->body_max) {
            if (!telem_batch_reserve(b, TELEM__LINE_MAX))
                break;
            b->len += telem__encode_rec(b->buf + b->len, &c->slot[i], t->prefix, t->prefix_len);
            i++;
        }
        unsigned done = i - pos;
        if (done == 0)
            return total;
        b->nrec += done;
        total += done;

        pthread_mutex_lock(&t->mu);
        t->tail += done;
        t->q_pos = i;
        bool more = false;
        if (i == TELEM_CHUNK_SLOTS) {
            /* Fully shipped and full, so no caller writes it again: recycle it. */
            t->q_first = c->next;
            if (t->q_first == NULL)
                t->q_last = NULL;
            t->q_pos = 0;
            c->next = t->free_chunks;
            t->free_chunks = c;
            more = true;
        }
        if (t->blocked > 0)
            pthread_cond_broadcast(&t->not_full);
        pthread_mutex_unlock(&t->mu);
        if (!more)
            return total;
    }
}

/* telem_write_head builds b's request head for its number and current body length. */
static void telem_write_head(struct telem *t, struct telem_batch *b)
{
    int n = snprintf(b->head, sizeof(b->head),
                     "POST /write?precision=ns HTTP/1.1\r\n"
                     "Host: %s\r\n"
                     "User-Agent: libtelem/" TELEM_VERSION "\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\n"
                     "Telem-Batch: %s:%llu:%llu\r\n"
                     "%s%s%s"
                     "Content-Length: %zu\r\n\r\n",
                     t->ep.host_header, t->producer, (unsigned long long)t->epoch,
                     (unsigned long long)b->number, t->token ? "Authorization: Token " : "",
                     t->token ? t->token : "", t->token ? "\r\n" : "", b->len);
    b->head_len = (size_t)n;
}

/* telem_number gives b the next batch number; from now on its bytes never change. */
static void telem_number(struct telem *t, struct telem_batch *b)
{
    b->number = ++t->batch_seq;
    b->sent_once = false;
    telem_write_head(t, b);
}

/*
 * telem_wait_work waits until the current batch should go: a full batch is available, a flush
 * or close asks for it, the flush interval has passed, or the previous batch was full (we are
 * behind and should not wait). Returns false when the shipper must stop.
 */
static bool telem_wait_work(struct telem *t, bool behind)
{
    pthread_mutex_lock(&t->mu);
    struct timespec until = telem_deadline(t->flush_interval_ms);
    for (;;) {
        if (t->stop) {
            pthread_mutex_unlock(&t->mu);
            return false;
        }
        uint64_t pending = t->cur.nrec + (t->head - t->tail);
        bool hurry = t->flush_target > t->resolved || t->closing || behind;
        if (pending >= t->ready_at || (pending > 0 && (hurry || telem_past(&until))))
            break;
        if (pending == 0 && telem_past(&until))
            until = telem_deadline(t->flush_interval_ms);
        t->shipper_waiting = true;
        pthread_cond_timedwait(&t->ship_cv, &t->mu, &until);
        t->shipper_waiting = false;
    }
    pthread_mutex_unlock(&t->mu);
    return true;
}

/* telem_sleep waits ms on ship_cv; returns false when the shipper must stop. */
static bool telem_sleep(struct telem *t, unsigned ms)
{
    pthread_mutex_lock(&t->mu);
    struct timespec until = telem_deadline(ms);
    while (!t->stop && !telem_past(&until))
        pthread_cond_timedwait(&t->ship_cv, &t->mu, &until);
    bool go_on = !t->stop;
    pthread_mutex_unlock(&t->mu);
    return go_on;
}

static unsigned telem_backoff_ms(struct telem *t)
{
    uint64_t d = TELEM_BACKOFF_BASE_MS;
    for (unsigned i = 1; i < t->failures && d < t->backoff_max_ms; i++)
        d *= 2;
    if (d > t->backoff_max_ms)
        d = t->backoff_max_ms;
    t->rng ^= t->rng << 13;
    t->rng ^= t->rng >> 7;
    t->rng ^= t->rng << 17;
    uint64_t half = d / 2;
    return (unsigned)(half + (half ? t->rng % (d - half + 1) : 0));
}

static void telem_close_conn(struct telem *t)
{
    pthread_mutex_lock(&t->mu);
    int fd = t->conn_fd;
    t->conn_fd = -1;
    pthread_mutex_unlock(&t->mu);
    if (fd >= 0)
        close(fd);
}

/* telem_note_error records a delivery error in the stats (under the lock) and logs it. */
static void telem_note_error(struct telem *t, int code, const char *msg, bool retrying)
{
    pthread_mutex_lock(&t->mu);
    t->stats.last_error = code;
    snprintf(t->stats.last_error_msg, sizeof(t->stats.last_error_msg), "%s", msg);
    pthread_mutex_unlock(&t->mu);
    enum telem_log_level level = !retrying          ? TELEM_LOG_ERROR
                                 : t->failures <= 1 ? TELEM_LOG_WARN
                                                    : TELEM_LOG_DEBUG;
    telem_log(t, level, "batch %llu (%llu records): %s%s", (unsigned long long)t->cur.number,
              (unsigned long long)t->cur.nrec, msg, retrying ? "; will retry" : "");
}

/* telem_resolve ends the current batch: acked (true) or rejected; wakes flushers. */
static void telem_resolve(struct telem *t, bool acked)
{
    pthread_mutex_lock(&t->mu);
    if (acked) {
        t->stats.acked += t->cur.nrec;
        t->stats.batches++;
    } else {
        t->stats.rejected += t->cur.nrec;
    }
    t->resolved += t->cur.nrec;
    pthread_cond_broadcast(&t->done_cv);
    pthread_mutex_unlock(&t->mu);
    t->cur.len = 0;
    t->cur.nrec = 0;
    t->cur.number = 0;
}

/*
 * telem_split_413 halves the current batch at a line boundary after telemd said it is too
 * large: the first half keeps the batch number (telemd stored nothing of it), the second half
 * goes in front of the next batch. Returns false when the batch is one line.
 */
static bool telem_split_413(struct telem *t)
{
    struct telem_batch *c = &t->cur, *n = &t->next;
    if (c->nrec < 2)
        return false;
    uint64_t keep = c->nrec / 2, lines = 0;
    size_t cut = 0;
    while (lines < keep) {
        const char *nl = memchr(c->buf + cut, '\n', c->len - cut);
        cut = (size_t)(nl - c->buf) + 1;
        lines++;
    }
    size_t rest = c->len - cut;
    if (!telem_batch_reserve(n, rest))
        return false;
    memmove(n->buf + rest, n->buf, n->len);
    memcpy(n->buf, c->buf + cut, rest);
    n->len += rest;
    n->nrec += c->nrec - keep;
    c->len = cut;
    c->nrec = keep;
    t->body_max = cut > TELEM__LINE_MAX ? cut : TELEM__LINE_MAX;
    telem_write_head(t, c); /* a new Content-Length; the number stays */
    return true;
}

/*
 * telem_exchange sends t->cur (connecting first when needed), formats the next batch while
 * telemd works on it, and reads the reply. Returns TELEM_OK with reply filled, or a delivery
 * error code (TELEM_ECONNECT, TELEM_EIO, TELEM_EHTTP, TELEM_ECLOSED) with msg.
 */
static int telem_exchange(struct telem *t, struct telem__http_reply *reply, char *msg,
                          size_t msg_cap)
{
    pthread_mutex_lock(&t->mu);
    int fd = t->conn_fd;
    pthread_mutex_unlock(&t->mu);
    if (fd >= 0 && telem__http_peer_closed(fd)) {
        telem_close_conn(t); /* telemd closed the idle connection: do not send into it */
        fd = -1;
    }
    if (fd < 0) {
        int rc =
            telem__http_connect(&t->ep, t->connect_timeout_ms, t->io_timeout_ms, &fd, msg, msg_cap);
        if (rc != TELEM_OK)
            return rc;
        pthread_mutex_lock(&t->mu);
        t->conn_fd = fd;
        t->stats.reconnects++;
        bool stopping = t->stop;
        pthread_mutex_unlock(&t->mu);
        if (stopping) {
            snprintf(msg, msg_cap, "closing");
            return TELEM_ECLOSED;
        }
        if (t->failures > 0)
            telem_log(t, TELEM_LOG_INFO, "connected to telemd at %s after %u failed attempts",
                      t->ep.is_unix ? t->ep.path : t->ep.host_header, t->failures);
    }

    pthread_mutex_lock(&t->mu);
    if (t->cur.sent_once)
        t->stats.retries++;
    else
        t->stats.sent += t->cur.nrec;
    pthread_mutex_unlock(&t->mu);
    t->cur.sent_once = true;

    int rc =
        telem__http_send(fd, t->cur.head, t->cur.head_len, t->cur.buf, t->cur.len, msg, msg_cap);
    if (rc != TELEM_OK)
        return rc;
    if (t->next.nrec < t->batch_max)
        telem_fill(t, &t->next);
    return telem__http_read_reply(fd, reply, msg, msg_cap);
}

/*
 * telem_retry_later notes a failed attempt, keeps the queue draining into the next batch, and
 * sleeps ms (0: the backoff for this many failures). Returns false, for telem_send_current.
 */
static bool telem_retry_later(struct telem *t, int code, const char *msg, unsigned ms)
{
    t->failures++;
    telem_note_error(t, code, msg, true);
    if (t->next.nrec < t->batch_max)
        telem_fill(t, &t->next);
    telem_sleep(t, ms ? ms : telem_backoff_ms(t));
    return false;
}

/*
 * telem_send_current delivers t->cur once. Returns true when the batch is resolved (acked or
 * rejected), false when it must be sent again (after the wait this function already did) or
 * the shipper must stop (then t->stop is set).
 */
static bool telem_send_current(struct telem *t)
{
    char msg[160];
    struct telem__http_reply reply;
    int rc = telem_exchange(t, &reply, msg, sizeof(msg));
    if (rc != TELEM_OK) {
        telem_close_conn(t); /* the stream's state is unknown: start clean */
        return telem_retry_later(t, rc, msg, 0);
    }
    if (reply.must_close)
        telem_close_conn(t);

    if (reply.status >= 200 && reply.status < 300) {
        if (t->failures > 0)
            telem_log(t, TELEM_LOG_INFO, "batch %llu delivered after %u failed attempts",
                      (unsigned long long)t->cur.number, t->failures);
        t->failures = 0;
        telem_resolve(t, true);
        return true;
    }
    if (reply.status == 503 || reply.status == 429) {
        snprintf(msg, sizeof(msg), "telemd answered %d (busy)", reply.status);
        unsigned s = reply.retry_after < 0 ? 1 : (unsigned)reply.retry_after;
        if (s > TELEM_RETRY_AFTER_MAX_S)
            s = TELEM_RETRY_AFTER_MAX_S;
        return telem_retry_later(t, TELEM_EBUSY, msg, s * 1000);
    }
    if (reply.status == 413 && telem_split_413(t)) {
        telem_log(t, TELEM_LOG_WARN, "telemd answered 413; sending batches of at most %zu bytes",
                  t->body_max);
        return false;
    }
    if (reply.status >= 500) {
        snprintf(msg, sizeof(msg), "telemd answered %d: %.100s", reply.status, reply.body);
        telem_close_conn(t);
        return telem_retry_later(t, TELEM_EHTTP, msg, 0);
    }
    /* 400, 401 and other 4xx: telemd refused this batch and would refuse it again. */
    snprintf(msg, sizeof(msg), "telemd refused the batch with %d: %.110s", reply.status,
             reply.body);
    telem_note_error(t, reply.status == 401 ? TELEM_EAUTH : TELEM_EREJECTED, msg, false);
    t->failures = 0;
    telem_resolve(t, false);
    return true;
}

static void *telem_ship_main(void *arg)
{
    struct telem *t = arg;
    bool behind = false;
    for (;;) {
        if (t->cur.nrec == 0) {
            struct telem_batch tmp = t->cur;
            t->cur = t->next;
            t->next = tmp;
            t->next.len = 0;
            t->next.nrec = 0;
            t->next.number = 0;
        }
        if (t->cur.number == 0) {
            if (!telem_wait_work(t, behind))
                break;
            telem_fill(t, &t->cur);
            if (t->cur.nrec == 0) {
                /* Records wait but none fit: only when the batch buffer cannot grow. */
                telem_log(t, TELEM_LOG_ERROR, "out of memory for a batch; retrying");
                telem_sleep(t, 100);
                continue;
            }
            behind = t->cur.nrec >= t->batch_max || t->cur.len >= t->body_max;
            telem_number(t, &t->cur);
        }
        while (!telem_send_current(t)) {
            pthread_mutex_lock(&t->mu);
            bool stopping = t->stop;
            pthread_mutex_unlock(&t->mu);
            if (stopping)
                goto out;
        }
    }
out:
    telem_close_conn(t);
    return NULL;
}

/* ---- open and close ---------------------------------------------------------------------- */

/* telem_random_u64 returns 64 random bits, from the kernel when it can give them at once. */
static uint64_t telem_random_u64(void)
{
    uint64_t r;
    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
        r = ((uint64_t)telem_wall_ns() ^ ((uint64_t)getpid() << 32)) * 0x9e3779b97f4a7c15ull;
    return r;
}

static bool telem_producer_ok(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > TELEM_PRODUCER_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

static bool telem_token_ok(const char *tok)
{
    for (const unsigned char *p = (const unsigned char *)tok; *p; p++) {
        if (*p < 0x21 || *p > 0x7e)
            return false;
    }
    return tok[0] != '\0' && strlen(tok) < 256;
}

/* telem_free releases what telem_open allocated; the thread must not be running. */
static void telem_free(struct telem *t)
{
    free(t->chunks);
    free(t->cur.buf);
    free(t->next.buf);
    free(t->token);
    pthread_cond_destroy(&t->not_full);
    pthread_cond_destroy(&t->ship_cv);
    pthread_cond_destroy(&t->done_cv);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

static void telem_open_fail(const struct telem_options *opt, struct telem_open_error *err, int code,
                            const char *msg)
{
    if (err != NULL) {
        err->code = code;
        snprintf(err->msg, sizeof(err->msg), "%s", msg);
    }
    snprintf(telem_tls_msg, sizeof(telem_tls_msg), "%s", msg);
    if (opt != NULL && opt->log != NULL)
        opt->log(opt->log_arg, TELEM_LOG_ERROR, msg);
}

/* telem_check_options checks opt and copies its plain settings into t. */
static int telem_check_options(struct telem *t, const struct telem_options *opt, char *msg,
                               size_t cap)
{
    const char *endpoint = opt->endpoint;
    if (endpoint == NULL)
        endpoint = getenv("TELEM_ENDPOINT");
    if (endpoint == NULL || endpoint[0] == '\0')
        endpoint = TELEM_DEFAULT_ENDPOINT;
    int rc = telem__endpoint_parse(endpoint, &t->ep, msg, cap);
    if (rc != TELEM_OK)
        return rc;
    rc = telem__check_ident("profile", opt->profile, TELEM_PROFILE_MAX, true, msg, cap);
    if (rc != TELEM_OK)
        return rc;
    rc = telem__check_ident("script", opt->script, TELEM_SCRIPT_MAX, false, msg, cap);
    if (rc != TELEM_OK)
        return rc;
    if (opt->producer != NULL && !telem_producer_ok(opt->producer)) {
        snprintf(msg, cap, "producer: must be 1..64 of A-Z a-z 0-9 . _ -");
        return TELEM_EINVAL;
    }
    if (opt->token != NULL && !telem_token_ok(opt->token)) {
        snprintf(msg, cap, "token: must be 1..255 printable characters without spaces");
        return TELEM_EINVAL;
    }
    if (opt->full_policy != TELEM_FULL_DROP && opt->full_policy != TELEM_FULL_BLOCK) {
        snprintf(msg, cap, "full_policy: must be TELEM_FULL_DROP or TELEM_FULL_BLOCK");
        return TELEM_EINVAL;
    }
    t->batch_max = opt->batch_max ? opt->batch_max : TELEM_DEFAULT_BATCH;
    t->max_buffered = opt->max_buffered ? opt->max_buffered : TELEM_DEFAULT_BUFFERED;
    if (t->max_buffered > (1u << 26) || t->batch_max > (1u << 24)) {
        snprintf(msg, cap, "max_buffered or batch_max: too large");
        return TELEM_EINVAL;
    }
    /* A batch that can never fill the buffer must not wait for the interval either. */
    t->ready_at = t->batch_max < t->max_buffered / 2 ? t->batch_max : t->max_buffered / 2;
    if (t->ready_at == 0)
        t->ready_at = 1;
    t->flush_interval_ms = opt->flush_interval_ms ? opt->flush_interval_ms : TELEM_DEFAULT_INTERVAL;
    t->block_timeout_ms = opt->block_timeout_ms;
    t->connect_timeout_ms =
        opt->connect_timeout_ms ? opt->connect_timeout_ms : TELEM_DEFAULT_CONNECT;
    t->io_timeout_ms = opt->io_timeout_ms ? opt->io_timeout_ms : TELEM_DEFAULT_IO;
    t->backoff_max_ms = opt->backoff_max_ms ? opt->backoff_max_ms : TELEM_DEFAULT_BACKOFF;
    t->policy = opt->full_policy;
    t->log = opt->log;
    t->log_arg = opt->log_arg;
    t->log_level = opt->log_level;
    t->body_max = TELEM_BODY_MAX;
    return TELEM_OK;
}

struct telem *telem_open(const struct telem_options *opt, struct telem_open_error *err)
{
    char msg[160];
    if (opt == NULL) {
        telem_open_fail(opt, err, TELEM_EINVAL, "options: NULL");
        return NULL;
    }
    struct telem *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        telem_open_fail(opt, err, TELEM_ENOMEM, "out of memory");
        return NULL;
    }
    t->conn_fd = -1;
    /* On Linux these initialisers cannot fail; telem_free destroys them on every path. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->not_full, &ca);
    pthread_cond_init(&t->ship_cv, &ca);
    pthread_cond_init(&t->done_cv, &ca);
    pthread_condattr_destroy(&ca);

    int code = telem_check_options(t, opt, msg, sizeof(msg));
    if (code != TELEM_OK)
        goto fail;
    t->prefix_len = telem__encode_prefix(t->prefix, opt->profile, opt->script);
    snprintf(t->profile, sizeof(t->profile), "%s", opt->profile);
    snprintf(t->script, sizeof(t->script), "%s", opt->script ? opt->script : "");
    if (opt->producer != NULL)
        snprintf(t->producer, sizeof(t->producer), "%s", opt->producer);
    else
        snprintf(t->producer, sizeof(t->producer), "c-%016llx",
                 (unsigned long long)telem_random_u64());
    t->rng = telem_random_u64() | 1;
    t->epoch = (uint64_t)telem_wall_ns();

    code = TELEM_ENOMEM;
    snprintf(msg, sizeof(msg), "out of memory");
    if (opt->token != NULL && (t->token = strdup(opt->token)) == NULL)
        goto fail;
    t->nchunks = (t->max_buffered + TELEM_CHUNK_SLOTS - 1) / TELEM_CHUNK_SLOTS + 2;
    t->chunks = malloc(t->nchunks * sizeof(*t->chunks));
    if (t->chunks == NULL)
        goto fail;
    /* Touch every page now, so that callers never take a page fault. */
    memset(t->chunks, 0, t->nchunks * sizeof(*t->chunks));
    for (size_t i = t->nchunks; i-- > 0;) {
        t->chunks[i].next = t->free_chunks;
        t->free_chunks = &t->chunks[i];
    }
    if (!telem_batch_reserve(&t->cur, 64 * 1024) || !telem_batch_reserve(&t->next, 64 * 1024))
        goto fail;

    int prc = pthread_create(&t->thread, NULL, telem_ship_main, t);
    if (prc != 0) {
        code = TELEM_ESYS;
        snprintf(msg, sizeof(msg), "cannot start the background thread: %s", strerror(prc));
        goto fail;
    }
    return t;

fail:
    telem_open_fail(opt, err, code, msg);
    telem_free(t);
    return NULL;
}

int telem_close(struct telem *t, unsigned timeout_ms)
{
    if (t == NULL)
        return TELEM_OK;
    pthread_mutex_lock(&t->mu);
    t->closing = true;
    pthread_cond_broadcast(&t->not_full);
    int rc = telem_wait_resolved(t, t->head, timeout_ms);
    t->stop = true;
    if (t->conn_fd >= 0)
        shutdown(t->conn_fd, SHUT_RDWR);
    pthread_cond_broadcast(&t->ship_cv);
    while (t->blocked > 0)
        pthread_cond_wait(&t->done_cv, &t->mu);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    telem_free(t);
    if (rc != TELEM_OK)
        return telem_fail(rc, "close: telemd did not acknowledge everything in %u ms", timeout_ms);
    return TELEM_OK;
}
