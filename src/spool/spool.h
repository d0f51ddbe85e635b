/*
 * spool.h: the write-ahead log between ingest and the sinks.
 *
 * The spool is a folder:
 *   spool.id           16 random bytes, made once (never derived from segments)
 *   seq.hwm            the sequence high-water mark, kept outside the segments so that
 *                      deleting every segment never reuses a sequence number
 *   cursor.<name>      one per sink lane: the last seq that sink stored (may lag the store's)
 *   seg-<first_seq>.log  segment files of frames (frame.h), named with 20 zero-padded digits
 *   dead-letter.jsonl  records sinks quarantined (written by the sink workers)
 *
 * Threads. One writer thread (the event loop) calls spool_append and spool_poll. The spool's
 * own sync thread group-commits: it fsyncs everything written so far in one call, then wakes
 * the writer through spool_notify_fd(). Sink worker threads read through spool_reader and
 * advance cursors; they see only durable frames (under fsync=always), so no store ever holds a
 * row whose spool frame could still vanish. The sync thread also persists cursors and deletes
 * segments that every registered cursor has passed (after fsyncing the cursor files).
 *
 * Tickets. Every append gets a ticket, a number that only grows. A request is answered 204 once
 * spool_poll reports a durable ticket >= its own.
 *
 * Recovery (spool_open): the newest segment is scanned; a torn tail (short or CRC-failing
 * frames at the end) is cut off; a corrupt frame in the middle is skipped and counted, never a
 * crash loop. The client-batch table is rebuilt from the newest segment's producer snapshot and
 * the batch tags after it.
 */
#ifndef TELEM_SPOOL_SPOOL_H
#define TELEM_SPOOL_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/record.h"
#include "spool/frame.h"

#define SPOOL_ID_SIZE 16

enum spool_fsync {
    SPOOL_FSYNC_ALWAYS = 0, /* ack only after fdatasync (group commit); the default */
    SPOOL_FSYNC_INTERVAL,   /* ack after write(2); fdatasync every fsync_interval_ms */
    SPOOL_FSYNC_NEVER,      /* ack after write(2); the kernel decides when */
};

struct spool_options {
    const char *dir;            /* created 0750 when missing */
    uint64_t segment_bytes;     /* rotate when a segment reaches this size */
    uint64_t max_bytes;         /* appends fail with -ENOBUFS while the spool holds more */
    enum spool_fsync fsync;     /* see enum spool_fsync */
    unsigned fsync_interval_ms; /* SPOOL_FSYNC_INTERVAL only */
    unsigned producers_max;     /* bound of the client-batch table */
    unsigned producer_idle_s;   /* a producer not seen for this long is forgotten */
    bool defer_deletion;        /* delete nothing until spool_cursors_complete() is called */
};

struct spool_stats {
    uint64_t bytes;           /* bytes of segments on disk */
    uint64_t segments;        /* segment files on disk */
    uint64_t oldest_seq;      /* first seq still on disk (next_seq when empty) */
    uint64_t next_seq;        /* seq the next record will get */
    uint64_t durable_seq;     /* last seq readers may see */
    uint64_t frames;          /* frames appended since start */
    uint64_t records;         /* records appended since start */
    uint64_t duplicates;      /* batches answered as repeats (Telem-Batch) */
    uint64_t fsyncs;          /* fdatasync calls */
    uint64_t fsync_errors;    /* failed write/fdatasync calls */
    uint64_t corrupt_frames;  /* frames skipped for a bad CRC or header, at recovery or read */
    uint64_t torn_bytes;      /* bytes cut off a torn tail at recovery */
    uint64_t producers;       /* entries in the client-batch table */
    int64_t oldest_unsent_ns; /* arrival time of the oldest record some cursor has not passed */
};

struct spool;
struct spool_reader;

/*
 * spool_open opens or creates the spool in opt->dir, recovers it and starts its sync thread.
 * Borrows opt (copied). Returns NULL with err filled ("spool: /x: Permission denied").
 */
struct spool *spool_open(const struct spool_options *opt, char *err, size_t errlen);

/*
 * spool_close waits for outstanding syncs, persists cursors and the high-water mark, stops the
 * sync thread and frees the spool. Readers must be closed first. Accepts NULL.
 */
void spool_close(struct spool *sp);

/* spool_id returns the spool's 16-byte identity. */
const uint8_t *spool_id(const struct spool *sp);

/*
 * spool_append writes one frame of count records (payload made with frame_record_encode) and
 * assigns them sequence numbers *first_seq .. *first_seq + count - 1. Writer thread only.
 * Borrows payload and tag (tag may be NULL).
 *
 * Returns 0: written; durable once spool_poll reports a ticket >= *ticket.
 *   -EALREADY: tag repeats a batch already appended (same producer and epoch, n not above the
 *              last one); nothing is written; answer 204 once *ticket is durable, as for a new
 *              batch, so a repeat is never acknowledged before the original.
 *   -ENOBUFS:  the spool holds max_bytes or more; nothing is written (503 + Retry-After).
 *   -EIO, -ENOSPC, ...: the disk failed; nothing is kept (a partial frame is cut off).
 */
int spool_append(struct spool *sp, const void *payload, size_t len, uint32_t count,
                 const struct batch_tag *tag, uint64_t *first_seq, uint64_t *ticket);

/*
 * spool_notify_fd is an eventfd that becomes readable when spool_poll has news. Owned by the
 * spool; the writer thread adds it to its event loop.
 */
int spool_notify_fd(const struct spool *sp);

/*
 * spool_poll drains the notify fd and reports progress. Writer thread only. Tickets <= *durable
 * are durable. When *failed is non-zero, an fsync failed: tickets in (*durable, *failed] were
 * not made durable and have been cut off the segment (answer 503); the client-batch table no
 * longer remembers their batches, so a retry is stored. Sequence numbers are never reused.
 */
void spool_poll(struct spool *sp, uint64_t *durable, uint64_t *failed);

/*
 * spool_arrival_ns returns when record seq arrived (wall clock, approximately: never later than
 * the truth, usually within 250 ms of it), or 0 when seq is not written yet or no longer on
 * disk. Thread-safe. Used for the age of a sink's oldest unsent record (its cursor + 1).
 */
int64_t spool_arrival_ns(struct spool *sp, uint64_t seq);

/* spool_get_stats copies current statistics. Thread-safe. */
void spool_get_stats(struct spool *sp, struct spool_stats *st);

/*
 * spool_cursor_open registers the cursor `name` (for example "sqlite" or "mariadb.lane1") and
 * returns its persisted value in *seq (0 when new) and its id in *id. Only registered cursors
 * hold back segment deletion; register every cursor before the first spool_cursor_set.
 * Thread-safe. Returns 0, or -EINVAL for a name that is not [A-Za-z0-9._-]{1,64}.
 */
int spool_cursor_open(struct spool *sp, const char *name, uint64_t *seq, int *id);

/*
 * spool_cursors_complete tells a spool opened with defer_deletion that every cursor has been
 * registered, so segments may be deleted from now on. Without it, a sink that registers its
 * cursor after another sink has advanced could find the records it still needs deleted.
 * Thread-safe.
 */
void spool_cursors_complete(struct spool *sp);

/*
 * spool_cursor_set records that the cursor's sink has durably stored every record up to seq
 * (inclusive). The spool persists it lazily (it may lag, never lead). Thread-safe.
 */
void spool_cursor_set(struct spool *sp, int id, uint64_t seq);

/*
 * spool_reader_open starts reading records with seq > after. When after + 1 is older than the
 * oldest record on disk, reading starts at the oldest and spool_reader_gap() reports how many
 * sequence numbers were skipped. Caller frees with spool_reader_close. Returns NULL on
 * out-of-memory only.
 */
struct spool_reader *spool_reader_open(struct spool *sp, uint64_t after);

/*
 * spool_reader_next fills out[0..cap) with the next durable records in sequence order and sets
 * *n. When none are ready it waits up to wait_ms for more (0: do not wait). Corrupt frames are
 * skipped and counted. Returns 0 (possibly with *n == 0 on timeout), -ESHUTDOWN once the spool
 * is closing, or -EIO.
 */
int spool_reader_next(struct spool_reader *rd, struct record *out, size_t cap, size_t *n,
                      unsigned wait_ms);

/* spool_reader_gap returns the number of sequence numbers skipped at open. */
uint64_t spool_reader_gap(const struct spool_reader *rd);

/* spool_reader_close frees the reader. Accepts NULL. */
void spool_reader_close(struct spool_reader *rd);

/*
 * spool_wake_readers makes every waiting spool_reader_next return -ESHUTDOWN; used at shutdown
 * before the sink workers are joined. Thread-safe.
 */
void spool_wake_readers(struct spool *sp);

#endif
