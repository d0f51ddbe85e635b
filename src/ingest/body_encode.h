/*
 * body_encode.h: turning line-protocol bodies into a spool frame payload, all or nothing.
 *
 * The encoder walks a body line by line (lp_body_next), parses each line (lp_parse_line), maps
 * it to records (lp_map_line) and appends each record's frame encoding (frame_record_encode) to
 * one growing payload buffer. It stops at the first bad line and rolls the payload back to
 * where the body started, so that a rejected body adds nothing. Several bodies may be added to
 * one payload (UDP puts a burst of datagrams in one frame). Nothing is allocated per line: the
 * parsed line, the record array and the payload buffer belong to the encoder and are reused.
 *
 * One encoder per thread; it is not thread-safe.
 */
#ifndef TELEM_INGEST_BODY_ENCODE_H
#define TELEM_INGEST_BODY_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "proto/lp.h"

struct body_encode_options {
    struct lp_limits limits;
    const char *profile_tag;     /* borrowed; NULL means "profile" */
    const char *default_profile; /* borrowed; NULL rejects lines without the profile tag */
    size_t payload_max;          /* a payload never grows past this (0: just under a frame) */
};

/* What one body added. */
struct body_result {
    uint32_t records; /* records appended to the payload */
    size_t lines;     /* lines parsed (blank lines and comments excluded) */
    size_t ignored;   /* valid lines that gave no record (a metric line with no number) */
    struct lp_error err;
};

struct body_encoder;

/* body_encoder_create makes an encoder. Borrows opt's strings. Never NULL (aborts on OOM). */
struct body_encoder *body_encoder_create(const struct body_encode_options *opt);

/* body_encoder_destroy frees the encoder. Accepts NULL. */
void body_encoder_destroy(struct body_encoder *enc);

/* body_encoder_reset empties the payload (keeping its buffer) for the next frame. */
void body_encoder_reset(struct body_encoder *enc);

/*
 * body_encoder_add validates body[0..len) completely and appends its records to the payload.
 * Lines without a timestamp get now_ns. Borrows body.
 * Returns 0 with *res filled; -EINVAL with res->err naming the first bad line (line and column
 * within this body) and nothing appended; -EFBIG when the records would make the payload larger
 * than payload_max (nothing appended); -EOVERFLOW past UINT32_MAX records.
 */
int body_encoder_add(struct body_encoder *enc, const char *body, size_t len,
                     enum lp_precision precision, int64_t now_ns, struct body_result *res);

/* body_encoder_payload returns the payload built since the last reset, and its record count. */
const uint8_t *body_encoder_payload(const struct body_encoder *enc, size_t *len, uint32_t *records);

/*
 * body_error_format writes "line 3, column 17: reason" (or "line 3: reason" without a column)
 * into dst.
 */
void body_error_format(const struct lp_error *err, char *dst, size_t cap);

/*
 * body_count_lines counts the lines lp_body_next would return in body[0..len), for the
 * rejected-records counter after a body was refused as a whole.
 */
size_t body_count_lines(const char *body, size_t len);

#endif
