/*
 * record.h: the unit of telemetry that flows from ingest through the spool to every sink.
 *
 * A record is either one closed trade or one metric sample. Ingest builds records from line
 * protocol (src/proto/lp_map.c), the spool stores them in frames (src/spool/frame.c) and hands
 * them back to sink workers with their sequence number filled in. Strings live inside the
 * struct, NUL-terminated and with an explicit length, so a record owns nothing and can be
 * copied with memcpy; the limits below are the published column lengths of every store and
 * are enforced at parse time (an overlong value is a 400 at the door, never a store error).
 *
 * Contracts (DESIGN.md, "Contracts every part relies on"):
 *  - One sequence number per stored row: a metric line with five numeric fields becomes five
 *    records with five consecutive sequence numbers.
 *  - A row's identity in every store is (spool_id, seq).
 *  - Times are nanoseconds since the Unix epoch, UTC. Stores keep microseconds.
 */
#ifndef TELEM_CORE_RECORD_H
#define TELEM_CORE_RECORD_H

#include <stdint.h>

/* Published column lengths, in bytes of UTF-8, without the terminating NUL. */
#define REC_PROFILE_MAX  64
#define REC_SCRIPT_MAX   64
#define REC_SYMBOL_MAX   32
#define REC_SIDE_MAX     16
#define REC_NAME_MAX     128
#define REC_TRADE_ID_MAX 64

enum record_kind {
    RECORD_TRADE = 1,
    RECORD_METRIC = 2,
};

/*
 * Bits of record.present: which optional trade fields were given. An absent field is stored as
 * SQL NULL and counts as 0 in running totals. Metric records always have a value.
 */
enum record_field_bit {
    REC_HAS_QTY = 1u << 0,
    REC_HAS_ENTRY_PRICE = 1u << 1,
    REC_HAS_EXIT_PRICE = 1u << 2,
    REC_HAS_PNL = 1u << 3,
    REC_HAS_FEES = 1u << 4,
    REC_HAS_OPENED_AT = 1u << 5,
};

struct record {
    uint64_t seq;    /* assigned by the spool; 0 until appended */
    int64_t ts_ns;   /* trade: close time; metric: sample time */
    uint8_t kind;    /* enum record_kind */
    uint8_t present; /* enum record_field_bit, trades only */

    /* Lengths of the strings below; 0 means absent (script, symbol, side, trade_id). */
    uint8_t profile_len;
    uint8_t script_len;
    uint8_t symbol_len;
    uint8_t side_len;
    uint8_t name_len;     /* metrics only */
    uint8_t trade_id_len; /* trades only */

    double value; /* metrics only */

    /* Trades only. */
    double qty;
    double entry_price;
    double exit_price;
    double pnl;
    double fees;
    int64_t opened_at_ns;

    char profile[REC_PROFILE_MAX + 1];
    char script[REC_SCRIPT_MAX + 1];
    char symbol[REC_SYMBOL_MAX + 1];
    char side[REC_SIDE_MAX + 1];
    char name[REC_NAME_MAX + 1];
    char trade_id[REC_TRADE_ID_MAX + 1];
};

/*
 * record_lane returns the lane (0..lanes-1) of a record: a stable hash of its profile, so that
 * all rows of one profile go through one lane in sequence order. lanes must be >= 1.
 */
unsigned record_lane(const struct record *rec, unsigned lanes);

#endif
