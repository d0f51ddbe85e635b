/*
 * frame.h: the on-disk form of spool frames and of the records inside them. Pure: buffers in,
 * structs out, no I/O and no allocation, so the fuzz target can drive it directly.
 *
 * A segment file is a sequence of frames. A frame is a fixed 32-byte header followed by
 * `len` bytes of payload:
 *
 *   offset size field
 *        0    4 magic      FRAME_MAGIC, little-endian
 *        4    1 type       enum frame_type
 *        5    1 flags      FRAME_F_BATCH_TAG: the payload starts with a batch tag
 *        6    2 reserved   0
 *        8    4 len        payload bytes
 *       12    4 count      records in the payload
 *       16    8 first_seq  sequence number of the first record (records are first_seq + i)
 *       24    4 crc        CRC-32C of header bytes 4..23 followed by the payload
 *       28    4 reserved   0
 *
 * All integers little-endian. A FRAME_RECORDS payload is [batch tag] record*; a
 * FRAME_PRODUCERS payload is a snapshot of the client-batch table (written first in every new
 * segment so that recovery needs only the newest segment to rebuild it).
 */
#ifndef TELEM_SPOOL_FRAME_H
#define TELEM_SPOOL_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "core/record.h"

#define FRAME_MAGIC       0x4d4c4554u /* "TELM" on disk */
#define FRAME_HEADER_SIZE 32
#define FRAME_PAYLOAD_MAX (64u << 20) /* a frame never exceeds this; larger `len` is corrupt */

enum frame_type {
    FRAME_RECORDS = 1,
    FRAME_PRODUCERS = 2,
};

enum frame_flag {
    FRAME_F_BATCH_TAG = 1u << 0,
};

#define BATCH_PRODUCER_MAX 64

/* A client's batch identity: `Telem-Batch: <producer>:<epoch>:<n>` (DESIGN.md, "Contracts"). */
struct batch_tag {
    char producer[BATCH_PRODUCER_MAX + 1]; /* [A-Za-z0-9._-], 1..64 bytes, NUL-terminated */
    uint64_t epoch;
    uint64_t n; /* >= 1 */
};

struct frame_header {
    uint8_t type;
    uint8_t flags;
    uint32_t len;
    uint32_t count;
    uint64_t first_seq;
    uint32_t crc;
};

/* Upper bound of frame_record_encode's output for any record. */
#define FRAME_RECORD_MAX 512

/*
 * frame_record_encode writes rec (without its seq, which the frame header implies) to dst.
 * Returns the bytes written, or -ENOSPC when cap is too small (FRAME_RECORD_MAX always fits).
 */
int frame_record_encode(const struct record *rec, uint8_t *dst, size_t cap);

/*
 * frame_record_decode reads one record from src[0..len) into out (seq left as is). Validates
 * kind, lengths and that strings fit their fields. Returns the bytes consumed, or -EINVAL.
 */
int frame_record_decode(const uint8_t *src, size_t len, struct record *out);

/* frame_tag_encode / frame_tag_decode: the optional batch tag at the start of a payload. */
int frame_tag_encode(const struct batch_tag *tag, uint8_t *dst, size_t cap);
int frame_tag_decode(const uint8_t *src, size_t len, struct batch_tag *out);

/* frame_header_encode fills the 32 header bytes, computing the CRC over header and payload. */
void frame_header_encode(const struct frame_header *h, const uint8_t *payload, uint8_t *dst);

/*
 * frame_header_decode reads a header from src[0..len). Returns 0; -EAGAIN when len is shorter
 * than a header (a torn tail); -EINVAL when the magic, type or length is impossible.
 * It does not check the CRC: see frame_check.
 */
int frame_header_decode(const uint8_t *src, size_t len, struct frame_header *h);

/* frame_check returns 0 when the CRC in h matches header bytes src[4..24) and payload. */
int frame_check(const struct frame_header *h, const uint8_t *src, const uint8_t *payload);

#endif
