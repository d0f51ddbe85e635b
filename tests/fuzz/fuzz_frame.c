/*
 * fuzz_frame.c: libFuzzer target for the spool's decoders (src/spool/frame.c, the snapshot
 * decoder in src/spool/producers.c). Every input is tried four ways: as a whole frame (header,
 * CRC, then its payload walked as the reader and recovery walk it, whether or not the CRC
 * matches, so the fuzzer reaches the payload decoders), as a bare run of records, as a bare
 * batch tag and as a bare producer snapshot. Whatever decodes must re-encode to exactly the
 * bytes it came from (records and tags), or load again to the same table (snapshots); any
 * difference, crash or sanitizer report is a bug.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -std=c11 -Isrc \
 *     tests/fuzz/fuzz_frame.c src/spool/frame.c src/spool/producers.c src/core/\*.c \
 *     -lm -lpthread -o /tmp/fuzz_frame && /tmp/fuzz_frame tests/fuzz/corpus/frame
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spool/frame.h"
#include "spool/producers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct producers *table;
static struct producers *table2;
static uint8_t snap_a[64 * PRODUCERS_ENTRY_MAX + 4];
static uint8_t snap_b[64 * PRODUCERS_ENTRY_MAX + 4];

/* check_record re-encodes a decoded record and compares it with the n bytes it came from. */
static void check_record(const struct record *rec, const uint8_t *src, int n)
{
    uint8_t again[FRAME_RECORD_MAX];
    int m = frame_record_encode(rec, again, sizeof(again));
    if (m != n || memcmp(again, src, (size_t)n) != 0)
        abort();
}

/* walk_records decodes up to max records from p[0..len) the way a reader does. */
static void walk_records(const uint8_t *p, size_t len, uint32_t max)
{
    size_t pos = 0;
    for (uint32_t i = 0; i < max && pos < len; i++) {
        struct record rec;
        int n = frame_record_decode(p + pos, len - pos, &rec);
        if (n < 0)
            return;
        if (n == 0 || (size_t)n > len - pos)
            abort();
        check_record(&rec, p + pos, n);
        pos += (size_t)n;
    }
}

static int check_tag(const uint8_t *p, size_t len)
{
    struct batch_tag tag;
    int n = frame_tag_decode(p, len, &tag);
    if (n < 0)
        return n;
    uint8_t again[1 + BATCH_PRODUCER_MAX + 16];
    int m = frame_tag_encode(&tag, again, sizeof(again));
    if (m != n || memcmp(again, p, (size_t)n) != 0)
        abort();
    return n;
}

static void check_snapshot(const uint8_t *p, size_t len)
{
    if (producers_snapshot_load(table, p, len, 0) < 0)
        return;
    int a = producers_snapshot_encode(table, snap_a, sizeof(snap_a));
    if (a < 0 || producers_snapshot_load(table2, snap_a, (size_t)a, 0) < 0)
        abort();
    int b = producers_snapshot_encode(table2, snap_b, sizeof(snap_b));
    if (a != b || memcmp(snap_a, snap_b, (size_t)a) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!table) {
        table = producers_create(64, 0);
        table2 = producers_create(64, 0);
    }

    struct frame_header h;
    if (frame_header_decode(data, size, &h) == 0 && h.len <= size - FRAME_HEADER_SIZE) {
        const uint8_t *payload = data + FRAME_HEADER_SIZE;
        (void)frame_check(&h, data, payload);
        if (h.type == FRAME_PRODUCERS) {
            check_snapshot(payload, h.len);
        } else {
            size_t pos = 0;
            if (h.flags & FRAME_F_BATCH_TAG) {
                int n = check_tag(payload, h.len);
                pos = n > 0 ? (size_t)n : h.len;
            }
            walk_records(payload + pos, h.len - pos, h.count);
        }
        /* Re-encoding the header over the same payload must give a frame that checks. */
        uint8_t again[FRAME_HEADER_SIZE];
        frame_header_encode(&h, payload, again);
        struct frame_header h2;
        if (frame_header_decode(again, sizeof(again), &h2) != 0 ||
            frame_check(&h2, again, payload) != 0 || h2.len != h.len || h2.count != h.count ||
            h2.first_seq != h.first_seq || h2.type != h.type || h2.flags != h.flags)
            abort();
    }
    walk_records(data, size, UINT32_MAX);
    (void)check_tag(data, size);
    check_snapshot(data, size);
    return 0;
}
