/*
 * telem_encode.h: libtelem's private record format and its line-protocol encoder.
 *
 * A caller's trade or metric is checked once, at the call, and packed into struct
 * telem__rec, a fixed-size binary record that owns nothing and is copied into the ring with
 * memcpy. The background thread turns records into InfluxDB line protocol with
 * telem__encode_rec. Checking and encoding live together so that the two agree on every rule:
 * what the checker lets through, the encoder can always write as one valid line that telemd
 * accepts. Pure code: no I/O, no allocation, no locks. Exposed to tests/unit/test_client_encode.c.
 */
#ifndef TELEM_CLIENT_ENCODE_H
#define TELEM_CLIENT_ENCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "telem.h"

enum telem__rec_kind {
    TELEM__REC_TRADE = 1,
    TELEM__REC_METRIC = 2,
};

/* Bits of telem__rec.escape: which strings hold a byte that needs a backslash on the wire. */
enum telem__escape_bit {
    TELEM__ESC_SYMBOL = 1u << 0,
    TELEM__ESC_SIDE = 1u << 1,
    TELEM__ESC_TRADE_ID = 1u << 2,
    TELEM__ESC_PROFILE = 1u << 3,
    TELEM__ESC_SCRIPT = 1u << 4,
    TELEM__ESC_NAME = 1u << 5,
};

/*
 * One checked record. Strings are not NUL-terminated: their lengths say where they end.
 * profile_len == 0 means "the handle's profile and script" (both taken from the handle's
 * pre-encoded prefix); otherwise profile and script (script_len may be 0) are this record's.
 */
struct telem__rec {
    int64_t ts_ns;        /* trade: close time; metric: sample time */
    int64_t opened_at_ns; /* trade: 0 when absent */
    double num[5];        /* trade: qty, entry, exit, pnl, fees; metric: num[0] is the value */
    uint8_t kind;         /* enum telem__rec_kind */
    uint8_t escape;       /* enum telem__escape_bit */
    uint8_t symbol_len;
    uint8_t side_len;
    uint8_t trade_id_len;
    uint8_t profile_len;
    uint8_t script_len;
    uint8_t name_len; /* metric: 1..128 */
    char profile[TELEM_PROFILE_MAX];
    char script[TELEM_SCRIPT_MAX];
    union {
        struct {
            char symbol[TELEM_SYMBOL_MAX];
            char side[TELEM_SIDE_MAX];
            char trade_id[TELEM_TRADE_ID_MAX];
        } t;
        char name[TELEM_NAME_MAX];
    } u;
};

/* Which rules a string follows on the wire, for telem__check_text. */
enum telem__text_role {
    TELEM__TEXT_TAG,    /* tag value or field key: ',' ' ' '=' and '\\' get a backslash */
    TELEM__TEXT_STRING, /* string field value: '"' and '\\' get a backslash */
};

/*
 * telem__check_text checks s[0..len): valid UTF-8 and no control character (so no newline, which
 * would end the line, and no carriage return). Sets *needs_escape when a byte must be escaped
 * for role. Returns TELEM_OK, or TELEM_EINVAL with why[0..why_cap) saying what is wrong
 * (without the field name).
 */
int telem__check_text(const char *s, size_t len, enum telem__text_role role, bool *needs_escape,
                      char *why, size_t why_cap);

/*
 * telem__rec_trade checks tr and fills rec; now_ns is used when tr->closed_at_ns is 0.
 * Borrows tr. Returns TELEM_OK or TELEM_EINVAL with msg naming the field ("side: longer than
 * 16 bytes").
 */
int telem__rec_trade(struct telem__rec *rec, const struct telem_trade *tr, int64_t now_ns,
                     char *msg, size_t msg_cap);

/*
 * telem__rec_metric checks one sample and fills rec. profile and script may be NULL (the
 * handle's). Borrows the strings. Returns TELEM_OK or TELEM_EINVAL with msg naming the field.
 */
int telem__rec_metric(struct telem__rec *rec, const char *profile, const char *script,
                      const char *name, double value, int64_t ts_ns, int64_t now_ns, char *msg,
                      size_t msg_cap);

/*
 * telem__check_ident checks a profile (required 1..64 bytes) or script (0..64 bytes) given to
 * telem_open. field names it in msg. Returns TELEM_OK or TELEM_EINVAL.
 */
int telem__check_ident(const char *field, const char *s, size_t max, bool required, char *msg,
                       size_t msg_cap);

/*
 * The longest line telem__encode_rec can write, with margin: every string escaped doubles,
 * numbers take at most 24 bytes each.
 */
#define TELEM__LINE_MAX 1024

/*
 * telem__encode_prefix writes the handle's tag prefix for profile and script (script may be
 * NULL or ""): `,profile=P,script=S` with escapes, into dst (at least 2 * 128 + 32 bytes).
 * Returns its length.
 */
size_t telem__encode_prefix(char *dst, const char *profile, const char *script);

/*
 * telem__encode_rec writes rec as one line-protocol line, '\n' included, into dst, which must
 * have room for TELEM__LINE_MAX bytes. prefix[0..prefix_len) is the handle's pre-encoded tag
 * prefix (telem__encode_prefix), used when rec->profile_len is 0. Returns the bytes written.
 */
size_t telem__encode_rec(char *dst, const struct telem__rec *rec, const char *prefix,
                         size_t prefix_len);

/*
 * telem__format_double writes v (finite) into dst (at least 32 bytes) as the shortest text
 * that this encoder finds to parse back to exactly v: integers below 2^53 as digits, decimals
 * with up to 17 significant digits, else %.17g. Returns the length; no NUL is added.
 */
size_t telem__format_double(char *dst, double v);

/* telem__format_i64 writes v in decimal into dst (at least 21 bytes). Returns the length. */
size_t telem__format_i64(char *dst, int64_t v);

#endif
