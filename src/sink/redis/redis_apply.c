/*
 * redis_apply.c: packing records into apply.lua's arguments and pipelining EVALSHA calls.
 *
 * A record travels as one argument (layout in apply.lua): the numbers the script computes with
 * as binary doubles, so it never parses text and computes on exactly the acknowledged values,
 * and the values it only stores (the trade stream, metric values) as the shortest decimal text
 * that reads back as the same double, so the stream shows "101.25" rather than a 17-digit
 * rendering. Formatting happens here, in the sink's thread, not in Redis's single thread, which
 * is the bottleneck of the whole sink.
 */
#include "sink/redis/redis_apply.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "sink/redis/redis_conn.h"

/* Bytes one packed record can take (kind byte, 13 fields of at most 1 + 128 bytes, less). */
#define PACKED_RECORD_MAX 512
/* Bytes of the fixed arguments' texts (numbers and flags). */
#define FIXED_TEXT_MAX 256
/* EVALSHA sha numkeys KEYS[1..3] ARGV[1..9] before the records. */
#define FIXED_ARGS 15

void redis_apply_buf_free(struct redis_apply_buf *b)
{
    free(b->data);
    free(b->argv);
    free(b->argvlen);
    memset(b, 0, sizeof(*b));
}

int redis_apply_format_double(char *dst, double v)
{
    int len = snprintf(dst, 32, "%.15g", v);
    if (strtod(dst, NULL) != v)
        len = snprintf(dst, 32, "%.17g", v);
    return len;
}

static int format_u64(char *dst, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (int i = 0; i < n; i++)
        dst[i] = tmp[n - 1 - i];
    dst[n] = '\0';
    return n;
}

static int format_i64(char *dst, int64_t v)
{
    if (v < 0) {
        dst[0] = '-';
        return 1 + format_u64(dst + 1, (uint64_t)0 - (uint64_t)v);
    }
    return format_u64(dst, (uint64_t)v);
}

int redis_apply_check_record(const struct record *rec, char *err, size_t errlen)
{
    const char *bad = NULL;
    if (rec->seq == 0 || rec->seq > REDIS_APPLY_SEQ_MAX)
        bad = "seq out of range";
    else if (rec->profile_len == 0)
        bad = "empty profile";
    else if (rec->kind == RECORD_METRIC) {
        if (rec->name_len == 0)
            bad = "empty metric name";
        else if (!isfinite(rec->value))
            bad = "metric value is not finite";
    } else if (rec->kind == RECORD_TRADE) {
        const double v[] = {rec->qty, rec->entry_price, rec->exit_price, rec->pnl, rec->fees};
        const unsigned bits[] = {REC_HAS_QTY, REC_HAS_ENTRY_PRICE, REC_HAS_EXIT_PRICE, REC_HAS_PNL,
                                 REC_HAS_FEES};
        for (size_t i = 0; i < 5; i++) {
            if ((rec->present & bits[i]) && !isfinite(v[i]))
                bad = "trade value is not finite";
        }
    } else {
        bad = "unknown record kind";
    }
    if (bad) {
        snprintf(err, errlen, "record seq %llu: %s", (unsigned long long)rec->seq, bad);
        return -EINVAL;
    }
    return 0;
}

static char *put_field(char *p, const char *s, size_t len)
{
    *p++ = (char)(unsigned char)len;
    memcpy(p, s, len);
    return p + len;
}

static char *put_u64(char *p, uint64_t v)
{
    char tmp[24];
    int len = format_u64(tmp, v);
    return put_field(p, tmp, (size_t)len);
}

static char *put_i64(char *p, int64_t v)
{
    char tmp[24];
    int len = format_i64(tmp, v);
    return put_field(p, tmp, (size_t)len);
}

static char *put_double(char *p, bool has, double v)
{
    char tmp[32];
    if (!has)
        return put_field(p, "", 0);
    int len = redis_apply_format_double(tmp, v);
    return put_field(p, tmp, (size_t)len);
}

/* Writes v as 8 bytes of IEEE 754, little-endian, as Lua's struct "<d" reads it. */
static char *put_binary_double(char *p, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    for (int i = 0; i < 8; i++)
        p[i] = (char)(uint8_t)(bits >> (8 * i));
    return p + 8;
}

/* Packs one record at p (PACKED_RECORD_MAX bytes available) as apply.lua reads it. */
static char *pack_record(char *p, const struct record *r)
{
    if (r->kind == RECORD_TRADE) {
        *p++ = 'T';
        p = put_field(p, r->profile, r->profile_len);
        p = put_binary_double(p, (double)r->seq);
        p = put_binary_double(p, (r->present & REC_HAS_PNL) ? r->pnl : 0.0);
        p = put_binary_double(p, (r->present & REC_HAS_FEES) ? r->fees : 0.0);
        p = put_binary_double(p, (double)(r->ts_ns / 1000));
        p = put_u64(p, r->seq);
        p = put_field(p, r->script, r->script_len);
        p = put_field(p, r->symbol, r->symbol_len);
        p = put_field(p, r->side, r->side_len);
        p = put_field(p, r->trade_id, r->trade_id_len);
        p = put_double(p, r->present & REC_HAS_QTY, r->qty);
        p = put_double(p, r->present & REC_HAS_ENTRY_PRICE, r->entry_price);
        p = put_double(p, r->present & REC_HAS_EXIT_PRICE, r->exit_price);
        p = put_double(p, r->present & REC_HAS_PNL, r->pnl);
        p = put_double(p, r->present & REC_HAS_FEES, r->fees);
        if (r->present & REC_HAS_OPENED_AT)
            p = put_i64(p, r->opened_at_ns / 1000);
        else
            p = put_field(p, "", 0);
        p = put_i64(p, r->ts_ns / 1000);
    } else {
        *p++ = 'M';
        p = put_field(p, r->profile, r->profile_len);
        p = put_field(p, r->name, r->name_len);
        p = put_binary_double(p, (double)r->seq);
        p = put_binary_double(p, (double)(r->ts_ns / 1000));
        p = put_double(p, true, r->value);
    }
    return p;
}

static void reserve(struct redis_apply_buf *b, size_t bytes, size_t args)
{
    if (b->cap < bytes) {
        b->data = xrealloc(b->data, bytes);
        b->cap = bytes;
    }
    if (b->argcap < args) {
        b->argv = xrealloc(b->argv, args * sizeof(*b->argv));
        b->argvlen = xrealloc(b->argvlen, args * sizeof(*b->argvlen));
        b->argcap = args;
    }
}

int redis_apply_append(redisContext *c, const char *sha, const struct redis_apply_call *call,
                       const struct record *recs, size_t n, struct redis_apply_buf *buf)
{
    size_t argc = FIXED_ARGS + n;
    reserve(buf, FIXED_TEXT_MAX + n * PACKED_RECORD_MAX, argc);
    const char **argv = buf->argv;
    size_t *lens = buf->argvlen;
    char *text = buf->data, *p = text;

#define ARG(i, s, l)  (argv[i] = (s), lens[i] = (l))
#define ARG_STR(i, s) ARG(i, s, strlen(s))
    ARG(0, "EVALSHA", 7);
    ARG_STR(1, sha);
    ARG(2, "3", 1);
    ARG_STR(3, call->cursor_key);
    ARG_STR(4, call->epoch_key);
    ARG_STR(5, call->base_key);
    ARG_STR(6, call->prefix);
    ARG_STR(7, call->epoch);
    if (call->check_expected) {
        int len = format_u64(p, call->expected);
        ARG(8, p, (size_t)len);
        p += len + 1;
    } else {
        ARG(8, "", 0);
    }
    int len = format_u64(p, call->new_cursor);
    ARG(9, p, (size_t)len);
    p += len + 1;
    len = redis_apply_format_double(p, call->starting_equity);
    ARG(10, p, (size_t)len);
    p += len + 1;
    len = format_i64(p, call->stream_maxlen);
    ARG(11, p, (size_t)len);
    p += len + 1;
    ARG(12, call->publish ? "1" : "0", 1);
    ARG(13, call->skip ? "s" : "a", 1);
    len = format_u64(p, call->ttl_ms);
    ARG(14, p, (size_t)len);
    p += len + 1;
    for (size_t i = 0; i < n; i++) {
        char *end = pack_record(p, &recs[i]);
        ARG(FIXED_ARGS + i, p, (size_t)(end - p));
        p = end;
    }
#undef ARG
#undef ARG_STR
    if (redisAppendCommandArgv(c, (int)argc, argv, lens) != REDIS_OK)
        return -ENOMEM;
    return 0;
}

int redis_apply_flush(redisContext *c)
{
    int done = 0;
    while (!done) {
        if (redisBufferWrite(c, &done) != REDIS_OK)
            return -EIO;
    }
    return 0;
}

int redis_apply_load(redisContext *c, char sha[REDIS_APPLY_SHA_SIZE], char *err, size_t errlen)
{
    redisReply *r = redisCommand(c, "SCRIPT LOAD %s", redis_apply_script);
    int rc = redis_conn_reply_check(c, r, err, errlen);
    if (rc == 0 && (r->type != REDIS_REPLY_STRING || r->len != REDIS_APPLY_SHA_SIZE - 1)) {
        snprintf(err, errlen, "SCRIPT LOAD: unexpected reply");
        rc = -EPROTO;
    }
    if (rc == 0)
        memcpy(sha, r->str, REDIS_APPLY_SHA_SIZE);
    if (r)
        freeReplyObject(r);
    return rc;
}

static int reply_u64(const redisReply *e, uint64_t *out)
{
    char tmp[32], *end;
    if (e->type != REDIS_REPLY_STRING || e->len == 0 || e->len >= sizeof(tmp))
        return -EPROTO;
    memcpy(tmp, e->str, e->len);
    tmp[e->len] = '\0';
    errno = 0;
    unsigned long long v = strtoull(tmp, &end, 10);
    if (errno || *end != '\0')
        return -EPROTO;
    *out = v;
    return 0;
}

int redis_apply_read(redisContext *c, struct redis_apply_result *res, char *err, size_t errlen)
{
    void *vr = NULL;
    if (redisGetReply(c, &vr) != REDIS_OK)
        vr = NULL;
    redisReply *r = vr;
    int rc = redis_conn_reply_check(c, r, err, errlen);
    if (rc < 0)
        goto out;
    memset(res, 0, sizeof(*res));
    rc = -EPROTO;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        goto bad;
    const redisReply *st = r->element[0];
    if (strcmp(st->str, "LOST") == 0) {
        res->status = REDIS_APPLY_LOST;
        const redisReply *e = r->element[1];
        if (e->type == REDIS_REPLY_STRING)
            snprintf(res->epoch, sizeof(res->epoch), "%.*s", (int)e->len, e->str);
        rc = 0;
        goto out;
    }
    if (strcmp(st->str, "OK") == 0)
        res->status = REDIS_APPLY_OK;
    else if (strcmp(st->str, "DUP") == 0)
        res->status = REDIS_APPLY_DUP;
    else if (strcmp(st->str, "BEHIND") == 0)
        res->status = REDIS_APPLY_BEHIND;
    else if (strcmp(st->str, "BAD") == 0)
        res->status = REDIS_APPLY_BAD;
    else
        goto bad;
    if (reply_u64(r->element[1], &res->cursor) < 0 || reply_u64(r->element[2], &res->applied) < 0)
        goto bad;
    rc = 0;
    goto out;
bad:
    snprintf(err, errlen, "apply script: unexpected reply");
out:
    if (r)
        freeReplyObject(r);
    return rc;
}
