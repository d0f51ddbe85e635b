/*
 * spool_internal.h: what spool.c (writer, sync thread, recovery, cursors) and spool_reader.c
 * (readers, and the frame scanner recovery also uses) share. Not part of the spool's API; unit
 * tests include it only to inject disk failures through the two function pointers below.
 *
 * Locking. struct spool has one mutex, `lock`. Fields marked "lock" are read and written under
 * it; fields marked "writer" belong to the thread that calls spool_append and spool_poll;
 * fields marked "sync" belong to the sync thread. The writer publishes each append under the
 * lock once per frame; readers take the lock once per spool_reader_next call (and while they
 * wait); the sync thread takes it around, never during, its fsyncs and file writes.
 *
 * Positions. A position names a segment by its first sequence number (its file name) and a byte
 * offset in it, always on a frame boundary. `written` is the end of the last append; `visible`
 * is how far readers may read: the last synced position under SPOOL_FSYNC_ALWAYS, the written
 * one otherwise. Every segment before the visible one is complete and entirely visible.
 */
#ifndef TELEM_SPOOL_SPOOL_INTERNAL_H
#define TELEM_SPOOL_SPOOL_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "spool/frame.h"
#include "spool/spool.h"

struct producers;

/*
 * Disk calls the tests replace to inject failures (EIO from fdatasync, ENOSPC from a write).
 * They default to fdatasync(2) and pwritev(2) and follow their conventions (-1 and errno).
 * Set them only while no spool is open.
 */
extern int (*spool_fdatasync_fn)(int fd);
extern ssize_t (*spool_pwritev_fn)(int fd, const struct iovec *iov, int iovcnt, off_t offset);

/*
 * frame_header_encode_split is frame_header_encode for a payload given in two pieces, a[0..alen)
 * followed by b[0..h->len - alen), so that the writer need not copy a batch tag and the records
 * together. alen <= h->len. Defined in frame.c.
 */
void frame_header_encode_split(const struct frame_header *h, const uint8_t *a, size_t alen,
                               const uint8_t *b, uint8_t *dst);

/* Defaults for option values left at 0. */
#define SPOOL_DEFAULT_SEGMENT_BYTES (64ull << 20)
#define SPOOL_DEFAULT_PRODUCERS_MAX 10000u
#define SPOOL_DEFAULT_INTERVAL_MS   1000u

#define SPOOL_CURSOR_NAME_MAX    64
#define SPOOL_CURSOR_PERSIST_NS  (200 * 1000000ll)
#define SPOOL_READ_CHUNK         (1u << 20)
#define SPOOL_ARRIVAL_SAMPLES    4096
#define SPOOL_ARRIVAL_SPACING_NS (250 * 1000000ll)

struct spool_pos {
    uint64_t seg;      /* first_seq (name) of the segment */
    uint64_t off;      /* byte offset in it, on a frame boundary */
    uint64_t next_seq; /* the seq after the last record before this position */
    uint64_t ticket;   /* ticket of the last append before this position */
};

struct spool_seg {
    uint64_t first_seq;    /* from the file name; every record in it is below the next's */
    uint64_t size;         /* bytes; final for all but the active (last) segment */
    int64_t first_wall_ns; /* arrival of its first frame (file birth or mtime when recovered) */
};

struct spool_cursor {
    char name[SPOOL_CURSOR_NAME_MAX + 1];
    uint64_t value;     /* lock: what the sink last set */
    uint64_t persisted; /* lock: what cursor.<name> holds */
};

/* One (seq, arrival time) sample, for the age of the oldest unsent record. */
struct spool_arrival {
    uint64_t seq;
    int64_t wall_ns;
};

struct spool {
    struct spool_options opt; /* dir points at dir below */
    char *dir;
    int dir_fd;
    int notify_fd;
    uint8_t id[SPOOL_ID_SIZE];

    pthread_mutex_t lock;
    pthread_cond_t sync_cv;    /* wakes the sync thread */
    pthread_cond_t readers_cv; /* visible moved, or readers are being shut down */
    pthread_t sync_thread;
    bool sync_started;

    /* lock */
    struct spool_seg *segs; /* ascending; the last one is the active segment */
    size_t nsegs;
    size_t segs_cap;
    struct spool_pos written;
    struct spool_pos visible;
    uint64_t synced_ticket;
    int active_fd;    /* written by the writer under the lock; read by the sync thread */
    int *pending_fds; /* rotated segments waiting for their last fdatasync; sync thread closes */
    size_t npending;
    size_t pending_cap;
    bool dir_sync_needed;
    bool stopping;
    bool readers_shutdown;
    atomic_bool sync_failed; /* an fsync failed (ALWAYS); cleared when the writer cut the tail */
    struct spool_cursor *cursors;
    size_t ncursors;
    bool cursors_complete; /* deletion allowed (see spool_options.defer_deletion) */
    bool cursors_dirty;
    uint64_t total_bytes;
    struct spool_arrival arrivals[SPOOL_ARRIVAL_SAMPLES]; /* ring, ascending seq */
    size_t arrival_head;                                  /* next slot to write */
    size_t narrivals;
    int64_t last_arrival_mono;
    uint64_t stat_frames;
    uint64_t stat_records;
    uint64_t stat_fsyncs;
    uint64_t stat_fsync_errors;
    uint64_t stat_corrupt;
    uint64_t stat_torn;

    atomic_uint_fast64_t durable_ticket; /* mirror of the durable ticket for the writer */
    atomic_uint_fast64_t stat_duplicates;
    atomic_uint_fast64_t stat_producers;

    /* writer */
    uint64_t next_seq;
    uint64_t ticket;
    uint64_t active_first;
    uint64_t active_size;
    struct producers *producers;
    uint8_t *snap_buf;
    size_t snap_cap;
    uint8_t head_buf[FRAME_HEADER_SIZE + 1 + BATCH_PRODUCER_MAX + 16];
    bool failure_reported; /* the failed range was reported; the cut is still to be done */
    bool tail_dirty;       /* a failed write left bytes past active_size */
    bool notify_pending;   /* the writer itself wrote the eventfd (INTERVAL, NEVER) */
    int64_t last_cut_try_mono;
    int64_t last_error_log_mono;

    /* sync */
    uint64_t hwm_persisted;
    int64_t next_interval_mono;
    int64_t next_cursor_mono;
};

/*
 * spool_segment_path writes the path of segment first_seq to buf[0..cap). Returns 0 or
 * -ENAMETOOLONG.
 */
int spool_segment_path(const struct spool *sp, uint64_t first_seq, char *buf, size_t cap);

/*
 * A forward scanner of the frames in one segment file, reading it in large chunks through its
 * own buffer. Shared by recovery (limit: the file size) and readers (limit: what is visible).
 */
struct spool_scan {
    int fd; /* borrowed */
    uint8_t *buf;
    size_t cap;
    uint64_t buf_off; /* file offset of buf[0] */
    size_t buf_len;
    uint64_t off;     /* offset of the next frame */
    uint64_t limit;   /* bytes that may be read */
    uint64_t corrupt; /* frames skipped so far */
};

/* spool_scan_init prepares sc with an empty buffer. */
void spool_scan_init(struct spool_scan *sc);

/* spool_scan_reset points sc at fd from offset off, up to limit; drops buffered data. */
void spool_scan_reset(struct spool_scan *sc, int fd, uint64_t off, uint64_t limit);

/* spool_scan_free frees the buffer. */
void spool_scan_free(struct spool_scan *sc);

/*
 * spool_scan_next returns 1 with the next valid frame's header in *h, its offset in *frame_off
 * and its payload in *payload (valid until the next call). Damaged bytes before it (bad header
 * or CRC) are skipped and counted in sc->corrupt. Returns 0 when no complete valid frame starts
 * in [sc->off, sc->limit): sc->off is then limit (clean end) or the first damaged or incomplete
 * byte (a torn tail). Returns -EIO on a read error or when the file is shorter than limit.
 */
int spool_scan_next(struct spool_scan *sc, struct frame_header *h, uint64_t *frame_off,
                    const uint8_t **payload);

/* spool_le64_put / spool_le64_get: little-endian integers in cursor and high-water files. */
static inline void spool_le64_put(uint8_t *p, uint64_t v)
{
    for (int k = 0; k < 8; k++)
        p[k] = (uint8_t)(v >> (8 * k));
}

static inline uint64_t spool_le64_get(const uint8_t *p)
{
    uint64_t v = 0;
    for (int k = 0; k < 8; k++)
        v |= (uint64_t)p[k] << (8 * k);
    return v;
}

#endif
