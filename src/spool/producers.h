/*
 * producers.h: the client-batch table of the spool, which recognises a client's retry of a
 * batch that was already appended (`Telem-Batch: <producer>:<epoch>:<n>`, DESIGN.md,
 * "Contracts every part relies on", Client batches).
 *
 * For each producer the table keeps the epoch and number of its last appended batch. A batch is
 * a repeat when its producer and epoch match and its number is not above the last one; any
 * other batch is new, and a new epoch starts the count again. The table is bounded: producers
 * not seen for idle_s seconds are forgotten, and when it is full the least recently seen
 * producer makes room. Every entry also remembers the ticket of its last append and the last
 * state known durable, so that when an fsync fails the spool can forget the batches it cut off
 * (producers_rollback) and a retry of them is stored again.
 *
 * The table is saved as the payload of a FRAME_PRODUCERS frame at the start of each segment:
 *   count u32, then per entry: batch tag (frame_tag_encode) and last_seen u64 (wall seconds),
 * listed from the least to the most recently seen.
 *
 * Not thread-safe: the spool's writer thread owns it. Lookups allocate nothing.
 */
#ifndef TELEM_SPOOL_PRODUCERS_H
#define TELEM_SPOOL_PRODUCERS_H

#include <stddef.h>
#include <stdint.h>

#include "spool/frame.h"

/* Upper bound of one entry in a snapshot: tag (1 + 64 + 8 + 8) and last_seen (8). */
#define PRODUCERS_ENTRY_MAX (1 + BATCH_PRODUCER_MAX + 8 + 8 + 8)

struct producers;

/*
 * producers_create makes an empty table for at most max producers (max >= 1), forgetting
 * those idle for more than idle_s seconds (0: only when the table is full). Caller frees with
 * producers_destroy. Never returns NULL (allocation failure stops the daemon).
 */
struct producers *producers_create(unsigned max, unsigned idle_s);

/* producers_destroy frees the table. Accepts NULL. */
void producers_destroy(struct producers *pt);

/*
 * producers_check answers whether tag repeats a batch already recorded. Returns 1 for a repeat,
 * with *ticket set to the ticket of the producer's last recorded batch (which is never older
 * than the repeated one), and marks the producer seen at now_s; returns 0 for a new batch,
 * changing nothing. Borrows tag.
 */
int producers_check(struct producers *pt, const struct batch_tag *tag, uint64_t now_s,
                    uint64_t *ticket);

/*
 * producers_record remembers tag as its producer's last batch, appended under ticket at now_s.
 * durable is the highest ticket known durable: the state it replaces is kept for
 * producers_rollback when that state was durable. Makes room (idle expiry, then least recently
 * seen) when the producer is new and the table is full. Borrows tag.
 */
void producers_record(struct producers *pt, const struct batch_tag *tag, uint64_t now_s,
                      uint64_t ticket, uint64_t durable);

/*
 * producers_rollback forgets every batch recorded with a ticket above durable: each such entry
 * returns to its last durable state, or disappears when it had none. Used when the spool cut
 * off frames whose fsync failed.
 */
void producers_rollback(struct producers *pt, uint64_t durable);

/* producers_clear forgets every producer. */
void producers_clear(struct producers *pt);

/* producers_expire forgets producers not seen for more than idle_s seconds before now_s. */
void producers_expire(struct producers *pt, uint64_t now_s);

/* producers_count returns the number of producers in the table. */
size_t producers_count(const struct producers *pt);

/* producers_snapshot_size returns the bytes producers_snapshot_encode needs right now. */
size_t producers_snapshot_size(const struct producers *pt);

/*
 * producers_snapshot_encode writes the table to dst[0..cap) in the FRAME_PRODUCERS payload
 * form. Returns the bytes written, or -ENOSPC when cap is below producers_snapshot_size.
 */
int producers_snapshot_encode(const struct producers *pt, uint8_t *dst, size_t cap);

/*
 * producers_snapshot_load replaces the table's contents with the snapshot src[0..len), skipping
 * entries idle at now_s and keeping the most recent ones when it holds more than the table's
 * bound. Loaded entries carry ticket 0 (durable). Pure with respect to its input: the whole
 * snapshot is validated first, so on -EINVAL (malformed or trailing bytes) the table is left
 * unchanged. Returns 0 or -EINVAL.
 */
int producers_snapshot_load(struct producers *pt, const uint8_t *src, size_t len, uint64_t now_s);

#endif
