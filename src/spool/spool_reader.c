/*
 * spool_reader.c: how sink workers read the spool, and the frame scanner that recovery shares.
 *
 * A reader walks the segments in order with its own file descriptor and a 1 MiB buffer,
 * decoding records straight from the buffer into the caller's array. It takes the spool's lock
 * once per spool_reader_next call to learn how far it may read (the visible position, see
 * spool_internal.h) and which segment comes next, and reads without it; it waits on the
 * spool's readers condition variable, which the sync thread (or, without fsync, the writer)
 * signals when the visible position moves. Records with seq <= the reader's position are
 * skipped, and whole frames before it are not even decoded. Producer snapshots are skipped.
 *
 * Damage is skipped, never fatal: a bad header or CRC makes the scanner search forward for the
 * next valid frame (magic, sane header and matching CRC), and the skipped frames are counted in
 * the spool's corrupt_frames.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "spool/spool.h"
#include "spool/spool_internal.h"

static const uint8_t frame_magic_bytes[4] = {'T', 'E', 'L', 'M'};

void spool_scan_init(struct spool_scan *sc)
{
    memset(sc, 0, sizeof(*sc));
    sc->fd = -1;
}

void spool_scan_reset(struct spool_scan *sc, int fd, uint64_t off, uint64_t limit)
{
    sc->fd = fd;
    sc->off = off;
    sc->limit = limit;
    sc->buf_off = off;
    sc->buf_len = 0;
}

void spool_scan_free(struct spool_scan *sc)
{
    free(sc->buf);
    sc->buf = NULL;
    sc->cap = 0;
}

/*
 * scan_ensure makes the buffer hold file bytes [off, off + n), n <= limit - off, keeping what
 * it already holds from off on and filling the rest of the buffer (up to limit) in as few
 * reads as possible. Returns 0 or -EIO.
 */
static int scan_ensure(struct spool_scan *sc, uint64_t off, size_t n)
{
    if (off >= sc->buf_off && off + n <= sc->buf_off + sc->buf_len)
        return 0;
    if (off >= sc->buf_off && off < sc->buf_off + sc->buf_len) {
        size_t keep = (size_t)(sc->buf_off + sc->buf_len - off);
        memmove(sc->buf, sc->buf + (off - sc->buf_off), keep);
        sc->buf_len = keep;
    } else {
        sc->buf_len = 0;
    }
    sc->buf_off = off;
    if (sc->cap < n || !sc->buf) {
        size_t cap = n > SPOOL_READ_CHUNK ? n : SPOOL_READ_CHUNK;
        sc->buf = xrealloc(sc->buf, cap);
        sc->cap = cap;
    }
    while (sc->buf_len < n) {
        uint64_t at = sc->buf_off + sc->buf_len;
        size_t room = sc->cap - sc->buf_len;
        if (room > sc->limit - at)
            room = (size_t)(sc->limit - at);
        ssize_t r = pread(sc->fd, sc->buf + sc->buf_len, room, (off_t)at);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            LOG_ERROR("spool", "read at %llu: %s", (unsigned long long)at,
                      r < 0 ? strerror(errno) : "file shorter than expected");
            return -EIO;
        }
        sc->buf_len += (size_t)r;
    }
    return 0;
}

/* scan_try returns 1 when a complete valid frame starts at off, 0 when not, or -EIO. */
static int scan_try(struct spool_scan *sc, uint64_t off, struct frame_header *h)
{
    if (sc->limit - off < FRAME_HEADER_SIZE)
        return 0;
    int rc = scan_ensure(sc, off, FRAME_HEADER_SIZE);
    if (rc < 0)
        return rc;
    if (frame_header_decode(sc->buf + (off - sc->buf_off), FRAME_HEADER_SIZE, h) < 0)
        return 0;
    if (h->len > sc->limit - off - FRAME_HEADER_SIZE)
        return 0;
    rc = scan_ensure(sc, off, FRAME_HEADER_SIZE + (size_t)h->len);
    if (rc < 0)
        return rc;
    const uint8_t *p = sc->buf + (off - sc->buf_off);
    return frame_check(h, p, p + FRAME_HEADER_SIZE) == 0;
}

/*
 * scan_resync looks for the first valid frame at or after start. Returns 1 with its offset in
 * *found and its header in *h, 0 when there is none before limit, or -EIO.
 */
static int scan_resync(struct spool_scan *sc, uint64_t start, uint64_t *found,
                       struct frame_header *h)
{
    uint64_t pos = start;
    while (sc->limit - pos >= FRAME_HEADER_SIZE) {
        uint64_t want = sc->limit - pos;
        if (want > SPOOL_READ_CHUNK)
            want = SPOOL_READ_CHUNK;
        int rc = scan_ensure(sc, pos, (size_t)want);
        if (rc < 0)
            return rc;
        const uint8_t *b = sc->buf + (pos - sc->buf_off);
        size_t blen = (size_t)(sc->buf_off + sc->buf_len - pos);
        const uint8_t *m = memmem(b, blen, frame_magic_bytes, sizeof(frame_magic_bytes));
        if (!m) {
            pos += blen - (sizeof(frame_magic_bytes) - 1);
            continue;
        }
        uint64_t cand = pos + (uint64_t)(m - b);
        rc = scan_try(sc, cand, h);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            *found = cand;
            return 1;
        }
        pos = cand + 1;
    }
    return 0;
}

int spool_scan_next(struct spool_scan *sc, struct frame_header *h, uint64_t *frame_off,
                    const uint8_t **payload)
{
    uint64_t at = sc->off;
    int rc = scan_try(sc, at, h);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        if (sc->limit - at < FRAME_HEADER_SIZE)
            return 0;
        rc = scan_resync(sc, at + 1, &at, h);
        if (rc <= 0)
            return rc;
        sc->corrupt++;
    }
    *frame_off = at;
    *payload = sc->buf + (at - sc->buf_off) + FRAME_HEADER_SIZE;
    sc->off = at + FRAME_HEADER_SIZE + h->len;
    return 1;
}

struct spool_reader {
    struct spool *sp;
    uint64_t after; /* every seq up to this one was returned or is gone */
    uint64_t gap;
    uint64_t seg; /* first_seq of the segment being read */
    int fd;       /* -1 until that segment is opened */
    struct spool_scan sc;
    uint64_t corrupt_reported; /* part of sc.corrupt already added to the spool's count */
    uint64_t corrupt_extra;    /* damage found outside the scanner, not yet reported */

    /* A records frame being returned across calls (its bytes stay in sc.buf meanwhile). */
    bool in_frame;
    struct frame_header fh;
    uint64_t frame_off;
    size_t ppos;  /* offset in the payload of the next record */
    uint32_t idx; /* index of the next record */
};

/* What the reader learns under the spool's lock at the start of each step. */
struct reader_view {
    uint64_t vis_seg;
    uint64_t vis_off;
    uint64_t limit; /* readable bytes of the current segment; UINT64_MAX: ask the file */
    bool finished;  /* the current segment is complete and entirely visible */
    bool have_next; /* a later segment exists */
    uint64_t next_seg;
};

/* seg_index returns the index of the first segment with first_seq >= first. Lock held. */
static size_t seg_index(const struct spool *sp, uint64_t first)
{
    size_t lo = 0, hi = sp->nsegs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (sp->segs[mid].first_seq < first)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

struct spool_reader *spool_reader_open(struct spool *sp, uint64_t after)
{
    struct spool_reader *rd = xcalloc(1, sizeof(*rd));
    rd->sp = sp;
    rd->after = after;
    rd->fd = -1;
    spool_scan_init(&rd->sc);
    uint64_t target = after + 1;
    pthread_mutex_lock(&sp->lock);
    if (sp->nsegs == 0 || target < sp->segs[0].first_seq) {
        rd->seg = sp->nsegs ? sp->segs[0].first_seq : sp->visible.seg;
        if (sp->nsegs)
            rd->gap = sp->segs[0].first_seq - target;
    } else {
        /* The last segment that starts at or before target holds it. */
        size_t i = seg_index(sp, target + 1);
        rd->seg = sp->segs[i - 1].first_seq;
    }
    pthread_mutex_unlock(&sp->lock);
    if (rd->gap)
        LOG_WARN("spool", "reader after %llu: %llu sequence numbers are no longer on disk",
                 (unsigned long long)after, (unsigned long long)rd->gap);
    return rd;
}

/* reader_look fills v for the reader's current segment and reports damage. Lock held. */
static void reader_look(struct spool_reader *rd, struct reader_view *v)
{
    struct spool *sp = rd->sp;
    v->vis_seg = sp->visible.seg;
    v->vis_off = sp->visible.off;
    size_t i = seg_index(sp, rd->seg);
    bool present = i < sp->nsegs && sp->segs[i].first_seq == rd->seg;
    size_t next = present ? i + 1 : i;
    v->have_next = next < sp->nsegs;
    v->next_seg = v->have_next ? sp->segs[next].first_seq : 0;
    if (rd->seg < v->vis_seg) {
        v->finished = true;
        v->limit = present ? sp->segs[i].size : UINT64_MAX;
    } else {
        v->finished = false;
        v->limit = rd->seg == v->vis_seg ? v->vis_off : 0;
    }
    uint64_t fresh = rd->sc.corrupt - rd->corrupt_reported + rd->corrupt_extra;
    sp->stat_corrupt += fresh;
    rd->corrupt_reported = rd->sc.corrupt;
    rd->corrupt_extra = 0;
}

/*
 * reader_open_segment opens the current segment. Returns 0, -ENOENT when it is gone, or
 * -EIO. v->limit is resolved from the file when the spool no longer lists the segment.
 */
static int reader_open_segment(struct spool_reader *rd, struct reader_view *v)
{
    char path[4096];
    int rc = spool_segment_path(rd->sp, rd->seg, path, sizeof(path));
    if (rc < 0)
        return -EIO;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return -ENOENT;
        LOG_ERROR("spool", "%s: %s", path, strerror(errno));
        return -EIO;
    }
    rd->fd = fd;
    spool_scan_reset(&rd->sc, fd, 0, 0);
    rd->in_frame = false;
    return 0;
}

/* reader_limit applies the readable size of the current segment to the scanner. */
static int reader_limit(struct spool_reader *rd, struct reader_view *v)
{
    uint64_t limit = v->limit;
    if (limit == UINT64_MAX) {
        struct stat st;
        if (fstat(rd->fd, &st) < 0)
            return -EIO;
        limit = (uint64_t)st.st_size;
    }
    if (limit > rd->sc.limit)
        rd->sc.limit = limit;
    return 0;
}

/* reader_decode returns records of the current frame into out[*n..cap). */
static void reader_decode(struct spool_reader *rd, struct record *out, size_t cap, size_t *n)
{
    const struct frame_header *h = &rd->fh;
    const uint8_t *payload = rd->sc.buf + (rd->frame_off - rd->sc.buf_off) + FRAME_HEADER_SIZE;
    while (rd->idx < h->count && *n < cap) {
        struct record *rec = &out[*n];
        int rc = frame_record_decode(payload + rd->ppos, h->len - rd->ppos, rec);
        if (rc < 0) {
            /* A CRC-valid frame that does not decode: written by a broken writer. */
            rd->corrupt_extra++;
            LOG_WARN("spool", "frame at seq %llu: record %u does not decode; %u records skipped",
                     (unsigned long long)h->first_seq, rd->idx, h->count - rd->idx);
            rd->idx = h->count;
            break;
        }
        rd->ppos += (size_t)rc;
        uint64_t seq = h->first_seq + rd->idx;
        rd->idx++;
        if (seq <= rd->after)
            continue;
        rec->seq = seq;
        rd->after = seq;
        (*n)++;
    }
    if (rd->idx >= h->count)
        rd->in_frame = false;
}

/*
 * reader_fill reads what the current segment holds up to the scanner's limit into out.
 * Returns 0 (the segment is exhausted or out is full) or -EIO.
 */
static int reader_fill(struct spool_reader *rd, struct record *out, size_t cap, size_t *n)
{
    while (*n < cap) {
        if (rd->in_frame) {
            reader_decode(rd, out, cap, n);
            continue;
        }
        struct frame_header h;
        uint64_t off;
        const uint8_t *payload;
        int rc = spool_scan_next(&rd->sc, &h, &off, &payload);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            if (rd->sc.off < rd->sc.limit) {
                /* Visible bytes end on a frame boundary, so this is damage, not a tail. */
                rd->corrupt_extra++;
                LOG_WARN("spool", "segment %llu: %llu damaged bytes skipped at offset %llu",
                         (unsigned long long)rd->seg,
                         (unsigned long long)(rd->sc.limit - rd->sc.off),
                         (unsigned long long)rd->sc.off);
                rd->sc.off = rd->sc.limit;
            }
            return 0;
        }
        if (h.type != FRAME_RECORDS || h.count == 0 || h.first_seq + h.count - 1 <= rd->after)
            continue;
        size_t ppos = 0;
        if (h.flags & FRAME_F_BATCH_TAG) {
            struct batch_tag tag;
            int t = frame_tag_decode(payload, h.len, &tag);
            if (t < 0) {
                rd->corrupt_extra++;
                continue;
            }
            ppos = (size_t)t;
        }
        rd->fh = h;
        rd->frame_off = off;
        rd->ppos = ppos;
        rd->idx = 0;
        rd->in_frame = true;
    }
    return 0;
}

/* reader_next_segment moves to the segment after the current one. */
static void reader_next_segment(struct spool_reader *rd, const struct reader_view *v)
{
    if (rd->fd >= 0)
        close(rd->fd);
    rd->fd = -1;
    rd->in_frame = false;
    rd->seg = v->next_seg;
    spool_scan_reset(&rd->sc, -1, 0, 0);
}

int spool_reader_next(struct spool_reader *rd, struct record *out, size_t cap, size_t *n,
                      unsigned wait_ms)
{
    struct spool *sp = rd->sp;
    *n = 0;
    int64_t deadline = clock_mono_ns() + (int64_t)wait_ms * 1000000;
    struct reader_view v;
    pthread_mutex_lock(&sp->lock);
    for (;;) {
        reader_look(rd, &v);
        pthread_mutex_unlock(&sp->lock);

        int rc = 0;
        if (v.limit > 0 && rd->fd < 0) {
            rc = reader_open_segment(rd, &v);
            if (rc == -ENOENT) {
                if (!v.have_next)
                    return -EIO;
                /* Deleted under us: whatever it held that we had not read is lost. */
                if (v.next_seg > rd->after + 1) {
                    rd->gap += v.next_seg - (rd->after + 1);
                    LOG_WARN("spool", "segment %llu vanished; %llu sequence numbers skipped",
                             (unsigned long long)rd->seg,
                             (unsigned long long)(v.next_seg - (rd->after + 1)));
                    rd->after = v.next_seg - 1;
                }
                reader_next_segment(rd, &v);
                pthread_mutex_lock(&sp->lock);
                continue;
            }
            if (rc < 0)
                return rc;
        }
        if (rd->fd >= 0) {
            rc = reader_limit(rd, &v);
            if (rc == 0)
                rc = reader_fill(rd, out, cap, n);
            if (rc < 0)
                return rc;
        }
        if (*n == cap)
            return 0;
        if (v.finished && !rd->in_frame && (rd->fd < 0 || rd->sc.off >= rd->sc.limit) &&
            v.have_next) {
            reader_next_segment(rd, &v);
            pthread_mutex_lock(&sp->lock);
            continue;
        }
        if (*n > 0)
            return 0;

        pthread_mutex_lock(&sp->lock);
        if (sp->visible.seg != v.vis_seg || sp->visible.off != v.vis_off)
            continue;
        if (sp->readers_shutdown) {
            pthread_mutex_unlock(&sp->lock);
            return -ESHUTDOWN;
        }
        if (wait_ms == 0 || clock_mono_ns() >= deadline) {
            pthread_mutex_unlock(&sp->lock);
            return 0;
        }
        struct timespec ts = {.tv_sec = deadline / 1000000000, .tv_nsec = deadline % 1000000000};
        pthread_cond_timedwait(&sp->readers_cv, &sp->lock, &ts);
    }
}

uint64_t spool_reader_gap(const struct spool_reader *rd)
{
    return rd->gap;
}

void spool_reader_close(struct spool_reader *rd)
{
    if (!rd)
        return;
    pthread_mutex_lock(&rd->sp->lock);
    rd->sp->stat_corrupt += rd->sc.corrupt - rd->corrupt_reported + rd->corrupt_extra;
    pthread_mutex_unlock(&rd->sp->lock);
    if (rd->fd >= 0)
        close(rd->fd);
    spool_scan_free(&rd->sc);
    free(rd);
}

void spool_wake_readers(struct spool *sp)
{
    pthread_mutex_lock(&sp->lock);
    sp->readers_shutdown = true;
    pthread_cond_broadcast(&sp->readers_cv);
    pthread_mutex_unlock(&sp->lock);
}
