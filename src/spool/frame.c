/*
 * frame.c: the codec of spool frames and of the records and batch tags inside them (layout in
 * frame.h). Pure: buffers in, structs out, no I/O and no allocation, so that the fuzz target can
 * drive every decoder directly. Decoders trust nothing: every length is checked against both
 * the input and the published column limits of record.h, and every string must be free of NUL
 * bytes, so a decoded record can be re-encoded to exactly the same bytes.
 *
 * Record encoding (all integers little-endian):
 *   kind u8, present u8, ts_ns i64,
 *   trade:  profile, script, symbol, side, trade_id as (u8 length, bytes), then one f64 for each
 *           of qty, entry_price, exit_price, pnl, fees and one i64 for opened_at, each only when
 *           its bit is set in present;
 *   metric: profile, script, name as (u8 length, bytes), then value f64; present is 0.
 * Batch tag: producer (u8 length, bytes), epoch u64, n u64.
 */
#include "spool/frame.h"

#include <errno.h>
#include <string.h>

#include "core/crc32c.h"
#include "spool/spool_internal.h"

#define FRAME_TRADE_BITS                                                                           \
    (REC_HAS_QTY | REC_HAS_ENTRY_PRICE | REC_HAS_EXIT_PRICE | REC_HAS_PNL | REC_HAS_FEES |         \
     REC_HAS_OPENED_AT)

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)v);
    put_u32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static uint64_t f64_bits(double d)
{
    uint64_t v;
    memcpy(&v, &d, sizeof(v));
    return v;
}

static double bits_f64(uint64_t v)
{
    double d;
    memcpy(&d, &v, sizeof(d));
    return d;
}

/*
 * A bounded writer and reader over a byte buffer. Each step checks room first; once a step
 * fails the cursor is marked bad and later steps do nothing, so callers check once at the end.
 */
struct frame_out {
    uint8_t *p;
    size_t cap;
    size_t pos;
    int bad;
};

struct frame_in {
    const uint8_t *p;
    size_t len;
    size_t pos;
    int bad;
};

static void out_bytes(struct frame_out *o, const void *src, size_t n)
{
    if (o->bad || o->cap - o->pos < n) {
        o->bad = 1;
        return;
    }
    memcpy(o->p + o->pos, src, n);
    o->pos += n;
}

static void out_u8(struct frame_out *o, uint8_t v)
{
    out_bytes(o, &v, 1);
}

static void out_u64(struct frame_out *o, uint64_t v)
{
    uint8_t b[8];
    put_u64(b, v);
    out_bytes(o, b, 8);
}

static void out_str(struct frame_out *o, const char *s, uint8_t len)
{
    out_u8(o, len);
    out_bytes(o, s, len);
}

static const uint8_t *in_take(struct frame_in *in, size_t n)
{
    if (in->bad || in->len - in->pos < n) {
        in->bad = 1;
        return NULL;
    }
    const uint8_t *p = in->p + in->pos;
    in->pos += n;
    return p;
}

static uint8_t in_u8(struct frame_in *in)
{
    const uint8_t *p = in_take(in, 1);
    return p ? p[0] : 0;
}

static uint64_t in_u64(struct frame_in *in)
{
    const uint8_t *p = in_take(in, 8);
    return p ? get_u64(p) : 0;
}

/* in_str reads a (u8 length, bytes) string of min..max bytes without NUL into dst. */
static void in_str(struct frame_in *in, char *dst, uint8_t *dst_len, unsigned min, unsigned max)
{
    uint8_t n = in_u8(in);
    const uint8_t *p = in_take(in, n);
    if (!p || n < min || n > max || memchr(p, 0, n)) {
        in->bad = 1;
        dst[0] = '\0';
        *dst_len = 0;
        return;
    }
    memcpy(dst, p, n);
    dst[n] = '\0';
    *dst_len = n;
}

/* str_ok says whether a record string of len bytes (min..max, no NUL) may be encoded. */
static int str_ok(const char *s, unsigned len, unsigned min, unsigned max)
{
    return len >= min && len <= max && !memchr(s, 0, len);
}

static int record_valid(const struct record *rec)
{
    if (!str_ok(rec->profile, rec->profile_len, 1, REC_PROFILE_MAX) ||
        !str_ok(rec->script, rec->script_len, 0, REC_SCRIPT_MAX))
        return 0;
    if (rec->kind == RECORD_TRADE)
        return str_ok(rec->symbol, rec->symbol_len, 0, REC_SYMBOL_MAX) &&
               str_ok(rec->side, rec->side_len, 0, REC_SIDE_MAX) &&
               str_ok(rec->trade_id, rec->trade_id_len, 0, REC_TRADE_ID_MAX);
    if (rec->kind == RECORD_METRIC)
        return str_ok(rec->name, rec->name_len, 1, REC_NAME_MAX);
    return 0;
}

int frame_record_encode(const struct record *rec, uint8_t *dst, size_t cap)
{
    if (!record_valid(rec))
        return -EINVAL;
    struct frame_out o = {.p = dst, .cap = cap};
    uint8_t present = rec->kind == RECORD_TRADE ? rec->present & FRAME_TRADE_BITS : 0;
    out_u8(&o, rec->kind);
    out_u8(&o, present);
    out_u64(&o, (uint64_t)rec->ts_ns);
    out_str(&o, rec->profile, rec->profile_len);
    out_str(&o, rec->script, rec->script_len);
    if (rec->kind == RECORD_TRADE) {
        out_str(&o, rec->symbol, rec->symbol_len);
        out_str(&o, rec->side, rec->side_len);
        out_str(&o, rec->trade_id, rec->trade_id_len);
        if (present & REC_HAS_QTY)
            out_u64(&o, f64_bits(rec->qty));
        if (present & REC_HAS_ENTRY_PRICE)
            out_u64(&o, f64_bits(rec->entry_price));
        if (present & REC_HAS_EXIT_PRICE)
            out_u64(&o, f64_bits(rec->exit_price));
        if (present & REC_HAS_PNL)
            out_u64(&o, f64_bits(rec->pnl));
        if (present & REC_HAS_FEES)
            out_u64(&o, f64_bits(rec->fees));
        if (present & REC_HAS_OPENED_AT)
            out_u64(&o, (uint64_t)rec->opened_at_ns);
    } else {
        out_str(&o, rec->name, rec->name_len);
        out_u64(&o, f64_bits(rec->value));
    }
    if (o.bad)
        return -ENOSPC;
    return (int)o.pos;
}

/* in_f64 reads an optional f64: 0 unless bit is set in present. */
static double in_f64_if(struct frame_in *in, uint8_t present, unsigned bit)
{
    return present & bit ? bits_f64(in_u64(in)) : 0.0;
}

int frame_record_decode(const uint8_t *src, size_t len, struct record *out)
{
    struct frame_in in = {.p = src, .len = len};
    uint8_t kind = in_u8(&in);
    uint8_t present = in_u8(&in);
    if (in.bad || (kind != RECORD_TRADE && kind != RECORD_METRIC))
        return -EINVAL;
    if (kind == RECORD_TRADE ? (present & ~FRAME_TRADE_BITS) != 0 : present != 0)
        return -EINVAL;
    out->kind = kind;
    out->present = present;
    out->ts_ns = (int64_t)in_u64(&in);
    in_str(&in, out->profile, &out->profile_len, 1, REC_PROFILE_MAX);
    in_str(&in, out->script, &out->script_len, 0, REC_SCRIPT_MAX);
    if (kind == RECORD_TRADE) {
        in_str(&in, out->symbol, &out->symbol_len, 0, REC_SYMBOL_MAX);
        in_str(&in, out->side, &out->side_len, 0, REC_SIDE_MAX);
        in_str(&in, out->trade_id, &out->trade_id_len, 0, REC_TRADE_ID_MAX);
        out->name[0] = '\0';
        out->name_len = 0;
        out->value = 0.0;
        out->qty = in_f64_if(&in, present, REC_HAS_QTY);
        out->entry_price = in_f64_if(&in, present, REC_HAS_ENTRY_PRICE);
        out->exit_price = in_f64_if(&in, present, REC_HAS_EXIT_PRICE);
        out->pnl = in_f64_if(&in, present, REC_HAS_PNL);
        out->fees = in_f64_if(&in, present, REC_HAS_FEES);
        out->opened_at_ns = present & REC_HAS_OPENED_AT ? (int64_t)in_u64(&in) : 0;
    } else {
        in_str(&in, out->name, &out->name_len, 1, REC_NAME_MAX);
        out->value = bits_f64(in_u64(&in));
        out->symbol[0] = out->side[0] = out->trade_id[0] = '\0';
        out->symbol_len = out->side_len = out->trade_id_len = 0;
        out->qty = out->entry_price = out->exit_price = out->pnl = out->fees = 0.0;
        out->opened_at_ns = 0;
    }
    if (in.bad)
        return -EINVAL;
    return (int)in.pos;
}

/* producer_ok says whether p[0..n) is a valid producer name: 1..64 bytes of [A-Za-z0-9._-]. */
static int producer_ok(const char *p, size_t n)
{
    if (n < 1 || n > BATCH_PRODUCER_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int frame_tag_encode(const struct batch_tag *tag, uint8_t *dst, size_t cap)
{
    size_t n = strnlen(tag->producer, sizeof(tag->producer));
    if (!producer_ok(tag->producer, n) || tag->n < 1)
        return -EINVAL;
    struct frame_out o = {.p = dst, .cap = cap};
    out_u8(&o, (uint8_t)n);
    out_bytes(&o, tag->producer, n);
    out_u64(&o, tag->epoch);
    out_u64(&o, tag->n);
    if (o.bad)
        return -ENOSPC;
    return (int)o.pos;
}

int frame_tag_decode(const uint8_t *src, size_t len, struct batch_tag *out)
{
    struct frame_in in = {.p = src, .len = len};
    uint8_t n = in_u8(&in);
    const uint8_t *p = in_take(&in, n);
    uint64_t epoch = in_u64(&in);
    uint64_t num = in_u64(&in);
    if (in.bad || !producer_ok((const char *)p, n) || num < 1)
        return -EINVAL;
    memcpy(out->producer, p, n);
    out->producer[n] = '\0';
    out->epoch = epoch;
    out->n = num;
    return (int)in.pos;
}

void frame_header_encode_split(const struct frame_header *h, const uint8_t *a, size_t alen,
                               const uint8_t *b, uint8_t *dst)
{
    put_u32(dst, FRAME_MAGIC);
    dst[4] = h->type;
    dst[5] = h->flags;
    dst[6] = dst[7] = 0;
    put_u32(dst + 8, h->len);
    put_u32(dst + 12, h->count);
    put_u64(dst + 16, h->first_seq);
    uint32_t crc = crc32c(0, dst + 4, 20);
    crc = crc32c(crc, a, alen);
    if (h->len > alen)
        crc = crc32c(crc, b, h->len - alen);
    put_u32(dst + 24, crc);
    put_u32(dst + 28, 0);
}

void frame_header_encode(const struct frame_header *h, const uint8_t *payload, uint8_t *dst)
{
    frame_header_encode_split(h, payload, h->len, NULL, dst);
}

int frame_header_decode(const uint8_t *src, size_t len, struct frame_header *h)
{
    if (len < FRAME_HEADER_SIZE)
        return -EAGAIN;
    if (get_u32(src) != FRAME_MAGIC || src[6] != 0 || src[7] != 0 || get_u32(src + 28) != 0)
        return -EINVAL;
    uint8_t type = src[4], flags = src[5];
    uint32_t plen = get_u32(src + 8), count = get_u32(src + 12);
    if (plen > FRAME_PAYLOAD_MAX || (flags & ~FRAME_F_BATCH_TAG) != 0)
        return -EINVAL;
    if (type == FRAME_RECORDS) {
        if (count > plen)
            return -EINVAL; /* every record takes more than one byte */
    } else if (type == FRAME_PRODUCERS) {
        if (flags != 0 || count != 0)
            return -EINVAL;
    } else {
        return -EINVAL;
    }
    h->type = type;
    h->flags = flags;
    h->len = plen;
    h->count = count;
    h->first_seq = get_u64(src + 16);
    h->crc = get_u32(src + 24);
    return 0;
}

int frame_check(const struct frame_header *h, const uint8_t *src, const uint8_t *payload)
{
    uint32_t crc = crc32c(0, src + 4, 20);
    crc = crc32c(crc, payload, h->len);
    return crc == h->crc ? 0 : -EINVAL;
}
