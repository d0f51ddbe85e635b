/*
 * body_encode.c: all-or-nothing conversion of line-protocol bodies into spool frame payloads
 * (see body_encode.h). This is the hot path of ingest: per line it does one parse, one map and
 * one encode per record into a buffer that is grown only when a body needs more room than any
 * body before it.
 */
#include "ingest/body_encode.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "spool/frame.h"

#define BODY_PAYLOAD_MAX (FRAME_PAYLOAD_MAX - 1024)

struct body_encoder {
    struct body_encode_options opt;
    struct lp_map_options map;
    struct lp_line line;
    struct record recs[LP_FIELDS_MAX];
    uint8_t *payload;
    size_t len;
    size_t cap;
    uint32_t records;
};

struct body_encoder *body_encoder_create(const struct body_encode_options *opt)
{
    struct body_encoder *enc = xcalloc(1, sizeof(*enc));
    enc->opt = *opt;
    /* Leave room for the batch tag the spool puts in front of the records. */
    if (enc->opt.payload_max == 0 || enc->opt.payload_max > BODY_PAYLOAD_MAX)
        enc->opt.payload_max = BODY_PAYLOAD_MAX;
    enc->map.profile_tag = opt->profile_tag;
    enc->map.default_profile = opt->default_profile;
    enc->cap = 64u << 10;
    enc->payload = xmalloc(enc->cap);
    return enc;
}

void body_encoder_destroy(struct body_encoder *enc)
{
    if (!enc)
        return;
    free(enc->payload);
    free(enc);
}

void body_encoder_reset(struct body_encoder *enc)
{
    enc->len = 0;
    enc->records = 0;
    /* One huge body must not pin its buffer for ever. */
    if (enc->cap > (16u << 20)) {
        free(enc->payload);
        enc->cap = 64u << 10;
        enc->payload = xmalloc(enc->cap);
    }
}

/* encoder_room makes sure FRAME_RECORD_MAX more bytes fit; false when over payload_max. */
static bool encoder_room(struct body_encoder *enc)
{
    if (enc->cap - enc->len >= FRAME_RECORD_MAX)
        return true;
    size_t want = enc->len + FRAME_RECORD_MAX;
    size_t hard = enc->opt.payload_max + FRAME_RECORD_MAX;
    if (want > hard)
        return false;
    size_t cap = enc->cap * 2;
    while (cap < want)
        cap *= 2;
    if (cap > hard)
        cap = hard;
    enc->payload = xrealloc(enc->payload, cap);
    enc->cap = cap;
    return true;
}

int body_encoder_add(struct body_encoder *enc, const char *body, size_t len,
                     enum lp_precision precision, int64_t now_ns, struct body_result *res)
{
    size_t mark_len = enc->len;
    uint32_t mark_records = enc->records;
    memset(res, 0, sizeof(*res));
    enc->map.precision = precision;
    enc->map.now_ns = now_ns;

    size_t pos = 0, lineno = 0, start, line_len;
    int rc = 0;
    while (lp_body_next(body, len, &pos, &lineno, &start, &line_len)) {
        res->lines++;
        rc = lp_parse_line(body + start, line_len, &enc->opt.limits, &enc->line, &res->err);
        size_t n = 0;
        if (rc == 0)
            rc = lp_map_line(&enc->line, &enc->map, enc->recs, LP_FIELDS_MAX, &n, &res->err);
        if (rc < 0) {
            res->err.line = lineno;
            rc = -EINVAL;
            goto fail;
        }
        if (n == 0) {
            res->ignored++;
            continue;
        }
        if ((uint64_t)enc->records + n > UINT32_MAX) {
            rc = -EOVERFLOW;
            goto fail;
        }
        for (size_t i = 0; i < n; i++) {
            if (!encoder_room(enc)) {
                rc = -EFBIG;
                goto fail;
            }
            int w =
                frame_record_encode(&enc->recs[i], enc->payload + enc->len, enc->cap - enc->len);
            if (w < 0) {
                /* A record that does not fit FRAME_RECORD_MAX is a bug in the encoder. */
                res->err.line = lineno;
                res->err.column = 0;
                snprintf(res->err.reason, sizeof(res->err.reason),
                         "record could not be encoded (%d)", w);
                rc = -EINVAL;
                goto fail;
            }
            enc->len += (size_t)w;
            if (enc->len > enc->opt.payload_max) {
                rc = -EFBIG;
                goto fail;
            }
        }
        enc->records += (uint32_t)n;
        res->records += (uint32_t)n;
    }
    return 0;

fail:
    enc->len = mark_len;
    enc->records = mark_records;
    res->records = 0;
    return rc;
}

const uint8_t *body_encoder_payload(const struct body_encoder *enc, size_t *len, uint32_t *records)
{
    *len = enc->len;
    *records = enc->records;
    return enc->payload;
}

void body_error_format(const struct lp_error *err, char *dst, size_t cap)
{
    if (err->column)
        snprintf(dst, cap, "line %zu, column %zu: %s", err->line, err->column, err->reason);
    else
        snprintf(dst, cap, "line %zu: %s", err->line, err->reason);
}

size_t body_count_lines(const char *body, size_t len)
{
    size_t n = 0, pos = 0, lineno = 0, start, line_len;
    while (lp_body_next(body, len, &pos, &lineno, &start, &line_len))
        n++;
    return n;
}
