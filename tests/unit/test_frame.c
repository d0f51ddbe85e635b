/*
 * test_frame.c: unit tests of the spool frame codec (src/spool/frame.c): records, batch tags and
 * headers round-trip exactly, encoders refuse what decoders would refuse, and every truncation
 * or bit flip of a frame is rejected by the header check or the CRC.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <string.h>

#include <cmocka.h>

#include "spool/frame.h"

static void set_str(char *dst, uint8_t *len, const char *s)
{
    *len = (uint8_t)strlen(s);
    memcpy(dst, s, *len + 1);
}

static struct record make_trade(void)
{
    struct record r;
    memset(&r, 0, sizeof(r));
    r.kind = RECORD_TRADE;
    r.ts_ns = 1764201600123456789;
    set_str(r.profile, &r.profile_len, "alpha-01");
    set_str(r.script, &r.script_len, "execution");
    set_str(r.symbol, &r.symbol_len, "BTCUSDT");
    set_str(r.side, &r.side_len, "long");
    set_str(r.trade_id, &r.trade_id_len, "T-42");
    r.present = REC_HAS_QTY | REC_HAS_ENTRY_PRICE | REC_HAS_EXIT_PRICE | REC_HAS_PNL |
                REC_HAS_FEES | REC_HAS_OPENED_AT;
    r.qty = 0.5;
    r.entry_price = 91234.5;
    r.exit_price = 91500.25;
    r.pnl = 132.875;
    r.fees = -1.25;
    r.opened_at_ns = -5;
    return r;
}

static struct record make_metric(void)
{
    struct record r;
    memset(&r, 0, sizeof(r));
    r.kind = RECORD_METRIC;
    r.ts_ns = -1;
    set_str(r.profile, &r.profile_len, "beta");
    set_str(r.name, &r.name_len, "equity.total");
    r.value = 1e300;
    return r;
}

static void assert_records_equal(const struct record *a, const struct record *b)
{
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->present, b->present);
    assert_true(a->ts_ns == b->ts_ns);
    assert_int_equal(a->profile_len, b->profile_len);
    assert_string_equal(a->profile, b->profile);
    assert_int_equal(a->script_len, b->script_len);
    assert_string_equal(a->script, b->script);
    assert_int_equal(a->symbol_len, b->symbol_len);
    assert_string_equal(a->symbol, b->symbol);
    assert_int_equal(a->side_len, b->side_len);
    assert_string_equal(a->side, b->side);
    assert_int_equal(a->name_len, b->name_len);
    assert_string_equal(a->name, b->name);
    assert_int_equal(a->trade_id_len, b->trade_id_len);
    assert_string_equal(a->trade_id, b->trade_id);
    assert_memory_equal(&a->value, &b->value, sizeof(double));
    assert_memory_equal(&a->qty, &b->qty, sizeof(double));
    assert_memory_equal(&a->entry_price, &b->entry_price, sizeof(double));
    assert_memory_equal(&a->exit_price, &b->exit_price, sizeof(double));
    assert_memory_equal(&a->pnl, &b->pnl, sizeof(double));
    assert_memory_equal(&a->fees, &b->fees, sizeof(double));
    assert_true(a->opened_at_ns == b->opened_at_ns);
}

static void roundtrip(const struct record *in)
{
    uint8_t buf[FRAME_RECORD_MAX];
    int n = frame_record_encode(in, buf, sizeof(buf));
    assert_true(n > 0);
    struct record out;
    memset(&out, 0x5a, sizeof(out));
    out.seq = 77;
    assert_int_equal(frame_record_decode(buf, (size_t)n, &out), n);
    assert_int_equal(out.seq, 77); /* left as is */
    assert_records_equal(in, &out);
    /* Trailing bytes are not the record's business: decode consumes exactly n. */
    uint8_t big[FRAME_RECORD_MAX + 8];
    memcpy(big, buf, (size_t)n);
    memset(big + n, 0xee, 8);
    assert_int_equal(frame_record_decode(big, (size_t)n + 8, &out), n);
    /* Every truncation is refused. */
    for (int k = 0; k < n; k++)
        assert_int_equal(frame_record_decode(buf, (size_t)k, &out), -EINVAL);
    /* Every smaller buffer is refused by the encoder. */
    for (int k = 0; k < n; k++)
        assert_int_equal(frame_record_encode(in, buf, (size_t)k), -ENOSPC);
}

static void test_record_roundtrip(void **state)
{
    (void)state;
    struct record t = make_trade();
    roundtrip(&t);
    struct record m = make_metric();
    roundtrip(&m);

    /* Absent optional fields take no bytes and come back as 0. */
    struct record sparse = make_trade();
    sparse.present = REC_HAS_PNL;
    sparse.qty = sparse.entry_price = sparse.exit_price = sparse.fees = 0;
    sparse.opened_at_ns = 0;
    sparse.script_len = sparse.symbol_len = sparse.side_len = sparse.trade_id_len = 0;
    sparse.script[0] = sparse.symbol[0] = sparse.side[0] = sparse.trade_id[0] = '\0';
    roundtrip(&sparse);
    uint8_t a[FRAME_RECORD_MAX], b[FRAME_RECORD_MAX];
    int na = frame_record_encode(&sparse, a, sizeof(a));
    int nb = frame_record_encode(&t, b, sizeof(b));
    assert_true(na < nb);

    /* The largest records fit FRAME_RECORD_MAX. */
    struct record big = make_trade();
    memset(big.profile, 'p', REC_PROFILE_MAX);
    big.profile[REC_PROFILE_MAX] = '\0';
    big.profile_len = REC_PROFILE_MAX;
    memset(big.script, 's', REC_SCRIPT_MAX);
    big.script[REC_SCRIPT_MAX] = '\0';
    big.script_len = REC_SCRIPT_MAX;
    memset(big.symbol, 'y', REC_SYMBOL_MAX);
    big.symbol[REC_SYMBOL_MAX] = '\0';
    big.symbol_len = REC_SYMBOL_MAX;
    memset(big.side, 'd', REC_SIDE_MAX);
    big.side[REC_SIDE_MAX] = '\0';
    big.side_len = REC_SIDE_MAX;
    memset(big.trade_id, 't', REC_TRADE_ID_MAX);
    big.trade_id[REC_TRADE_ID_MAX] = '\0';
    big.trade_id_len = REC_TRADE_ID_MAX;
    roundtrip(&big);
    struct record bigm = make_metric();
    memset(bigm.name, 'n', REC_NAME_MAX);
    bigm.name[REC_NAME_MAX] = '\0';
    bigm.name_len = REC_NAME_MAX;
    memcpy(bigm.profile, big.profile, sizeof(big.profile));
    bigm.profile_len = REC_PROFILE_MAX;
    memcpy(bigm.script, big.script, sizeof(big.script));
    bigm.script_len = REC_SCRIPT_MAX;
    roundtrip(&bigm);
}

static void test_record_encode_refuses(void **state)
{
    (void)state;
    uint8_t buf[FRAME_RECORD_MAX];
    struct record r = make_trade();
    r.kind = 3;
    assert_int_equal(frame_record_encode(&r, buf, sizeof(buf)), -EINVAL);
    r = make_trade();
    r.profile_len = 0;
    assert_int_equal(frame_record_encode(&r, buf, sizeof(buf)), -EINVAL);
    r = make_trade();
    r.symbol_len = REC_SYMBOL_MAX + 1;
    assert_int_equal(frame_record_encode(&r, buf, sizeof(buf)), -EINVAL);
    r = make_trade();
    r.profile[2] = '\0'; /* an embedded NUL within profile_len */
    assert_int_equal(frame_record_encode(&r, buf, sizeof(buf)), -EINVAL);
    r = make_metric();
    r.name_len = 0;
    assert_int_equal(frame_record_encode(&r, buf, sizeof(buf)), -EINVAL);
    /* Unknown present bits and a metric's present are dropped, not stored. */
    r = make_metric();
    r.present = 0xff;
    int n = frame_record_encode(&r, buf, sizeof(buf));
    assert_true(n > 0);
    struct record out;
    assert_int_equal(frame_record_decode(buf, (size_t)n, &out), n);
    assert_int_equal(out.present, 0);
}

static void test_record_decode_refuses(void **state)
{
    (void)state;
    uint8_t buf[FRAME_RECORD_MAX];
    struct record t = make_trade(), out;
    int n = frame_record_encode(&t, buf, sizeof(buf));
    assert_true(n > 0);
    uint8_t bad[FRAME_RECORD_MAX];

    memcpy(bad, buf, (size_t)n);
    bad[0] = 0; /* kind */
    assert_int_equal(frame_record_decode(bad, (size_t)n, &out), -EINVAL);
    bad[0] = 3;
    assert_int_equal(frame_record_decode(bad, (size_t)n, &out), -EINVAL);

    memcpy(bad, buf, (size_t)n);
    bad[1] |= 0x40; /* present bit that does not exist */
    assert_int_equal(frame_record_decode(bad, (size_t)n, &out), -EINVAL);

    memcpy(bad, buf, (size_t)n);
    bad[10] = 0; /* empty profile */
    assert_int_equal(frame_record_decode(bad, (size_t)n, &out), -EINVAL);
    bad[10] = REC_PROFILE_MAX + 1;
    assert_int_equal(frame_record_decode(bad, (size_t)n, &out), -EINVAL);

    memcpy(bad, buf, (size_t)n);
    bad[12] = 0; /* a NUL inside the profile "alpha-01" */
    assert_int_equal(frame_record_decode(bad, (size_t)n, &out), -EINVAL);

    /* A metric may not carry present bits. */
    struct record m = make_metric();
    n = frame_record_encode(&m, buf, sizeof(buf));
    memcpy(bad, buf, (size_t)n);
    bad[1] = REC_HAS_QTY;
    assert_int_equal(frame_record_decode(bad, (size_t)n, &out), -EINVAL);
    /* A metric name over its limit. */
    size_t name_at = 10 + 1 + m.profile_len + 1 + m.script_len;
    memcpy(bad, buf, (size_t)n);
    bad[name_at] = REC_NAME_MAX + 1;
    assert_int_equal(frame_record_decode(bad, (size_t)n, &out), -EINVAL);
}

static void test_tag_roundtrip(void **state)
{
    (void)state;
    struct batch_tag in = {.epoch = 1764201600, .n = 17};
    strcpy(in.producer, "host-1.script_A");
    uint8_t buf[128];
    int n = frame_tag_encode(&in, buf, sizeof(buf));
    assert_int_equal(n, 1 + 15 + 16);
    struct batch_tag out;
    assert_int_equal(frame_tag_decode(buf, (size_t)n, &out), n);
    assert_string_equal(out.producer, in.producer);
    assert_true(out.epoch == in.epoch && out.n == in.n);
    for (int k = 0; k < n; k++)
        assert_int_equal(frame_tag_decode(buf, (size_t)k, &out), -EINVAL);
    for (int k = 0; k < n; k++)
        assert_int_equal(frame_tag_encode(&in, buf, (size_t)k), -ENOSPC);

    /* Longest producer. */
    memset(in.producer, 'x', BATCH_PRODUCER_MAX);
    in.producer[BATCH_PRODUCER_MAX] = '\0';
    n = frame_tag_encode(&in, buf, sizeof(buf));
    assert_int_equal(frame_tag_decode(buf, (size_t)n, &out), n);
    assert_int_equal(strlen(out.producer), BATCH_PRODUCER_MAX);

    /* Refused: n = 0, empty or bad producer. */
    strcpy(in.producer, "ok");
    in.n = 0;
    assert_int_equal(frame_tag_encode(&in, buf, sizeof(buf)), -EINVAL);
    in.n = 1;
    in.producer[0] = '\0';
    assert_int_equal(frame_tag_encode(&in, buf, sizeof(buf)), -EINVAL);
    strcpy(in.producer, "a:b");
    assert_int_equal(frame_tag_encode(&in, buf, sizeof(buf)), -EINVAL);

    strcpy(in.producer, "ok");
    n = frame_tag_encode(&in, buf, sizeof(buf));
    uint8_t bad[128];
    memcpy(bad, buf, (size_t)n);
    bad[1] = ' ';
    assert_int_equal(frame_tag_decode(bad, (size_t)n, &out), -EINVAL);
    memcpy(bad, buf, (size_t)n);
    bad[0] = 0;
    assert_int_equal(frame_tag_decode(bad, (size_t)n, &out), -EINVAL);
    memcpy(bad, buf, (size_t)n);
    bad[0] = BATCH_PRODUCER_MAX + 1;
    assert_int_equal(frame_tag_decode(bad, sizeof(bad), &out), -EINVAL);
    memcpy(bad, buf, (size_t)n);
    memset(bad + n - 8, 0, 8); /* n = 0 */
    assert_int_equal(frame_tag_decode(bad, (size_t)n, &out), -EINVAL);
}

/* build_frame encodes a records frame (tag + two records) into buf; returns its size. */
static size_t build_frame(uint8_t *buf)
{
    uint8_t payload[3 * FRAME_RECORD_MAX];
    struct batch_tag tag = {.epoch = 9, .n = 3};
    strcpy(tag.producer, "prod");
    int a = frame_tag_encode(&tag, payload, sizeof(payload));
    struct record t = make_trade(), m = make_metric();
    int b = frame_record_encode(&t, payload + a, sizeof(payload) - (size_t)a);
    int c = frame_record_encode(&m, payload + a + b, sizeof(payload) - (size_t)(a + b));
    assert_true(a > 0 && b > 0 && c > 0);
    struct frame_header h = {.type = FRAME_RECORDS,
                             .flags = FRAME_F_BATCH_TAG,
                             .len = (uint32_t)(a + b + c),
                             .count = 2,
                             .first_seq = 1000};
    frame_header_encode(&h, payload, buf);
    memcpy(buf + FRAME_HEADER_SIZE, payload, h.len);
    return FRAME_HEADER_SIZE + h.len;
}

/* frame_ok runs the checks a reader runs on a frame of n bytes. */
static int frame_ok(const uint8_t *buf, size_t n)
{
    struct frame_header h;
    if (frame_header_decode(buf, n, &h) < 0)
        return 0;
    if (h.len > n - FRAME_HEADER_SIZE)
        return 0;
    return frame_check(&h, buf, buf + FRAME_HEADER_SIZE) == 0;
}

static void test_header_roundtrip(void **state)
{
    (void)state;
    uint8_t buf[FRAME_HEADER_SIZE + 3 * FRAME_RECORD_MAX];
    size_t n = build_frame(buf);
    struct frame_header h;
    assert_int_equal(frame_header_decode(buf, n, &h), 0);
    assert_int_equal(h.type, FRAME_RECORDS);
    assert_int_equal(h.flags, FRAME_F_BATCH_TAG);
    assert_int_equal(h.count, 2);
    assert_true(h.first_seq == 1000);
    assert_int_equal(h.len, n - FRAME_HEADER_SIZE);
    assert_int_equal(frame_check(&h, buf, buf + FRAME_HEADER_SIZE), 0);
    assert_memory_equal(buf, "TELM", 4);

    /* The payload decodes back: tag, then two records. */
    const uint8_t *p = buf + FRAME_HEADER_SIZE;
    struct batch_tag tag;
    int used = frame_tag_decode(p, h.len, &tag);
    assert_true(used > 0);
    struct record r1, r2, t = make_trade(), m = make_metric();
    int u1 = frame_record_decode(p + used, h.len - (size_t)used, &r1);
    assert_true(u1 > 0);
    int u2 = frame_record_decode(p + used + u1, h.len - (size_t)(used + u1), &r2);
    assert_int_equal((size_t)(used + u1 + u2), h.len);
    assert_records_equal(&r1, &t);
    assert_records_equal(&r2, &m);

    for (size_t k = 0; k < FRAME_HEADER_SIZE; k++)
        assert_int_equal(frame_header_decode(buf, k, &h), -EAGAIN);

    /* An empty producers frame. */
    uint8_t snap[4] = {0, 0, 0, 0};
    struct frame_header ph = {.type = FRAME_PRODUCERS, .len = 4, .first_seq = 5};
    uint8_t pbuf[FRAME_HEADER_SIZE + 4];
    frame_header_encode(&ph, snap, pbuf);
    memcpy(pbuf + FRAME_HEADER_SIZE, snap, 4);
    assert_true(frame_ok(pbuf, sizeof(pbuf)));
}

static void test_header_refuses(void **state)
{
    (void)state;
    uint8_t buf[FRAME_HEADER_SIZE + 3 * FRAME_RECORD_MAX];
    size_t n = build_frame(buf);
    uint8_t bad[sizeof(buf)];
    struct frame_header h;
    struct {
        size_t at;
        uint8_t value;
    } cases[] = {
        {0, 'X'},   /* magic */
        {4, 0},     /* type */
        {4, 3},     /* type */
        {5, 0x82},  /* unknown flag */
        {6, 1},     /* reserved */
        {7, 1},     /* reserved */
        {11, 0x7f}, /* len far above FRAME_PAYLOAD_MAX */
        {28, 1},    /* reserved */
        {31, 1},    /* reserved */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memcpy(bad, buf, n);
        bad[cases[i].at] = cases[i].value;
        assert_int_equal(frame_header_decode(bad, n, &h), -EINVAL);
    }
    /* count above len is impossible. */
    memcpy(bad, buf, n);
    bad[15] = 0x10;
    assert_int_equal(frame_header_decode(bad, n, &h), -EINVAL);
    /* A producers frame carries no records and no tag. */
    memcpy(bad, buf, n);
    bad[4] = FRAME_PRODUCERS;
    assert_int_equal(frame_header_decode(bad, n, &h), -EINVAL);
}

static void test_every_corruption_caught(void **state)
{
    (void)state;
    uint8_t buf[FRAME_HEADER_SIZE + 3 * FRAME_RECORD_MAX];
    size_t n = build_frame(buf);
    assert_true(frame_ok(buf, n));
    /* Every truncation. */
    for (size_t k = 0; k < n; k++)
        assert_false(frame_ok(buf, k));
    /* Every single-bit flip, in header and payload alike. */
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            buf[i] ^= (uint8_t)(1u << bit);
            assert_false(frame_ok(buf, n));
            buf[i] ^= (uint8_t)(1u << bit);
        }
    }
    /* Some two-byte swaps in the payload (reordering) too. */
    for (size_t i = FRAME_HEADER_SIZE; i + 1 < n; i += 7) {
        if (buf[i] == buf[i + 1])
            continue;
        uint8_t t = buf[i];
        buf[i] = buf[i + 1];
        buf[i + 1] = t;
        assert_false(frame_ok(buf, n));
        buf[i + 1] = buf[i];
        buf[i] = t;
    }
    assert_true(frame_ok(buf, n));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_roundtrip),
        cmocka_unit_test(test_record_encode_refuses),
        cmocka_unit_test(test_record_decode_refuses),
        cmocka_unit_test(test_tag_roundtrip),
        cmocka_unit_test(test_header_roundtrip),
        cmocka_unit_test(test_header_refuses),
        cmocka_unit_test(test_every_corruption_caught),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
