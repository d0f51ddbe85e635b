/*
 * telem_encode.c: checking a caller's trade or metric into a fixed-size record, and writing
 * records as InfluxDB line protocol (see telem_encode.h).
 *
 * The checker runs on the caller's thread, so it does one pass over each string and no
 * formatting unless it fails. The encoder runs on the background thread at up to a million
 * records a second, so it copies strings with memcpy when the checker found nothing to escape
 * and formats numbers without printf in the common cases: integers below 2^53 as digits, and
 * decimals whose digits fit in 53 bits (prices, quantities, PnL) by scaling with an exact power
 * of ten and proving the result parses back to the same double. Only the rest goes through
 * snprintf("%.15g"), checked with strtod, then "%.17g", which always round-trips.
 *
 * Escaping follows InfluxDB line protocol: in tag values and field keys ',' ' ' '=' and '\\'
 * get a backslash; in string field values '"' and '\\' do. Control characters, newlines
 * included, are refused at the call rather than escaped, because line protocol has no escape
 * for them.
 */
#include "telem_encode.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Exact powers of ten: every one up to 1e22 is a double without rounding. */
static const double telem_pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

#define TELEM_TWO_POW_53 9007199254740992.0

static const char telem_digit_pairs[201] = "00010203040506070809"
                                           "10111213141516171819"
                                           "20212223242526272829"
                                           "30313233343536373839"
                                           "40414243444546474849"
                                           "50515253545556575859"
                                           "60616263646566676869"
                                           "70717273747576777879"
                                           "80818283848586878889"
                                           "90919293949596979899";

/* telem_format_u64 writes v in decimal, right to left through a small buffer. */
static size_t telem_format_u64(char *dst, uint64_t v)
{
    char tmp[24];
    char *p = tmp + sizeof(tmp);
    while (v >= 100) {
        unsigned d = (unsigned)(v % 100) * 2;
        v /= 100;
        *--p = telem_digit_pairs[d + 1];
        *--p = telem_digit_pairs[d];
    }
    if (v >= 10) {
        unsigned d = (unsigned)v * 2;
        *--p = telem_digit_pairs[d + 1];
        *--p = telem_digit_pairs[d];
    } else {
        *--p = (char)('0' + v);
    }
    size_t n = (size_t)(tmp + sizeof(tmp) - p);
    memcpy(dst, p, n);
    return n;
}

size_t telem__format_i64(char *dst, int64_t v)
{
    if (v < 0) {
        dst[0] = '-';
        return 1 + telem_format_u64(dst + 1, (uint64_t)0 - (uint64_t)v);
    }
    return telem_format_u64(dst, (uint64_t)v);
}

/*
 * telem_format_scaled writes m / 10^k (k >= 1) in plain decimal notation, without trailing
 * zeros after the point.
 */
static size_t telem_format_scaled(char *dst, uint64_t m, unsigned k)
{
    while (k > 0 && m % 10 == 0) {
        m /= 10;
        k--;
    }
    char digits[24];
    size_t nd = telem_format_u64(digits, m);
    if (k == 0) {
        memcpy(dst, digits, nd);
        return nd;
    }
    size_t n = 0;
    if (nd <= k) {
        dst[n++] = '0';
        dst[n++] = '.';
        for (size_t z = nd; z < k; z++)
            dst[n++] = '0';
        memcpy(dst + n, digits, nd);
        return n + nd;
    }
    size_t int_digits = nd - k;
    memcpy(dst, digits, int_digits);
    n = int_digits;
    dst[n++] = '.';
    memcpy(dst + n, digits + int_digits, k);
    return n + k;
}

size_t telem__format_double(char *dst, double v)
{
    if (v == 0)
        return (void)(dst[0] = '0'), 1;
    size_t n = 0;
    double a = v;
    if (a < 0) {
        dst[n++] = '-';
        a = -a;
    }
    if (a < TELEM_TWO_POW_53) {
        /*
         * Find the smallest k such that a * 10^k is a whole number m below 2^53 and m / 10^k
         * (one correctly rounded division of two exact doubles, which is what strtod computes
         * for the decimal text of m / 10^k) gives back a exactly.
         */
        for (unsigned k = 0; k <= 17; k++) {
            double s = a * telem_pow10[k];
            if (s >= TELEM_TWO_POW_53)
                break;
            uint64_t m = (uint64_t)s;
            if ((double)m != s)
                continue;
            if ((double)m / telem_pow10[k] != a)
                continue;
            return n + telem_format_scaled(dst + n, m, k);
        }
    }
    /* The slow path: very large, very small, or more digits than 53 bits hold. */
    char buf[40];
    int len = snprintf(buf, sizeof(buf), "%.15g", a);
    if (strtod(buf, NULL) != a) {
        len = snprintf(buf, sizeof(buf), "%.16g", a);
        if (strtod(buf, NULL) != a)
            len = snprintf(buf, sizeof(buf), "%.17g", a);
    }
    memcpy(dst + n, buf, (size_t)len);
    return n + (size_t)len;
}

/* telem_utf8_seq returns the length of the valid UTF-8 sequence at p[0..avail), or 0. */
static size_t telem_utf8_seq(const unsigned char *p, size_t avail)
{
    unsigned c = p[0];
    size_t need;
    unsigned min;
    unsigned cp;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 2;
        min = 0x80;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        min = 0x800;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        min = 0x10000;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (avail < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return need;
}

int telem__check_text(const char *s, size_t len, enum telem__text_role role, bool *needs_escape,
                      char *why, size_t why_cap)
{
    const unsigned char *p = (const unsigned char *)s;
    bool esc = false;
    for (size_t i = 0; i < len;) {
        unsigned c = p[i];
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f) {
                if (c == '\n' || c == '\r')
                    snprintf(why, why_cap, "contains a line break (byte %zu)", i + 1);
                else
                    snprintf(why, why_cap, "contains control character 0x%02x (byte %zu)", c,
                             i + 1);
                return TELEM_EINVAL;
            }
            if (c == '\\')
                esc = true;
            else if (role == TELEM__TEXT_TAG && (c == ',' || c == ' ' || c == '='))
                esc = true;
            else if (role == TELEM__TEXT_STRING && c == '"')
                esc = true;
            i++;
            continue;
        }
        size_t n = telem_utf8_seq(p + i, len - i);
        if (n == 0) {
            snprintf(why, why_cap, "is not valid UTF-8 (byte %zu)", i + 1);
            return TELEM_EINVAL;
        }
        i += n;
    }
    *needs_escape = esc;
    return TELEM_OK;
}

/*
 * telem_take_text checks the optional or required string s (at most max bytes) and copies it
 * into dst[0..max), setting *len and, when it needs escapes, esc_bit in *escape.
 */
static int telem_take_text(const char *field, const char *s, size_t max, bool required,
                           enum telem__text_role role, char *dst, uint8_t *len, uint8_t *escape,
                           unsigned esc_bit, char *msg, size_t msg_cap)
{
    if (s == NULL || s[0] == '\0') {
        if (required) {
            snprintf(msg, msg_cap, "%s: required", field);
            return TELEM_EINVAL;
        }
        *len = 0;
        return TELEM_OK;
    }
    size_t n = strnlen(s, max + 1);
    if (n > max) {
        snprintf(msg, msg_cap, "%s: longer than %zu bytes", field, max);
        return TELEM_EINVAL;
    }
    bool needs = false;
    char why[96];
    if (telem__check_text(s, n, role, &needs, why, sizeof(why)) != TELEM_OK) {
        snprintf(msg, msg_cap, "%s: %s", field, why);
        return TELEM_EINVAL;
    }
    memcpy(dst, s, n);
    *len = (uint8_t)n;
    if (needs)
        *escape |= (uint8_t)esc_bit;
    return TELEM_OK;
}

int telem__check_ident(const char *field, const char *s, size_t max, bool required, char *msg,
                       size_t msg_cap)
{
    char scratch[TELEM_NAME_MAX];
    uint8_t len, escape = 0;
    return telem_take_text(field, s, max, required, TELEM__TEXT_TAG, scratch, &len, &escape, 0, msg,
                           msg_cap);
}

/* telem_take_overrides copies a per-record profile and script, when a profile is given. */
static int telem_take_overrides(struct telem__rec *rec, const char *profile, const char *script,
                                char *msg, size_t msg_cap)
{
    rec->profile_len = 0;
    rec->script_len = 0;
    if (profile == NULL && script == NULL)
        return TELEM_OK;
    if (profile == NULL) {
        snprintf(msg, msg_cap, "profile: required when script is given for one record");
        return TELEM_EINVAL;
    }
    int rc =
        telem_take_text("profile", profile, TELEM_PROFILE_MAX, true, TELEM__TEXT_TAG, rec->profile,
                        &rec->profile_len, &rec->escape, TELEM__ESC_PROFILE, msg, msg_cap);
    if (rc != TELEM_OK)
        return rc;
    return telem_take_text("script", script, TELEM_SCRIPT_MAX, false, TELEM__TEXT_TAG, rec->script,
                           &rec->script_len, &rec->escape, TELEM__ESC_SCRIPT, msg, msg_cap);
}

static int telem_take_time(const char *field, int64_t ns, int64_t now_ns, int64_t *out, char *msg,
                           size_t msg_cap)
{
    if (ns < 0) {
        snprintf(msg, msg_cap, "%s: negative time", field);
        return TELEM_EINVAL;
    }
    *out = ns == 0 ? now_ns : ns;
    return TELEM_OK;
}

static int telem_take_number(const char *field, double v, double *out, char *msg, size_t msg_cap)
{
    if (!isfinite(v)) {
        snprintf(msg, msg_cap, "%s: not a finite number (NaN or infinity)", field);
        return TELEM_EINVAL;
    }
    *out = v;
    return TELEM_OK;
}

int telem__rec_trade(struct telem__rec *rec, const struct telem_trade *tr, int64_t now_ns,
                     char *msg, size_t msg_cap)
{
    static const char *const num_names[5] = {"qty", "entry_price", "exit_price", "pnl", "fees"};
    const double nums[5] = {tr->qty, tr->entry_price, tr->exit_price, tr->pnl, tr->fees};
    int rc;

    rec->kind = TELEM__REC_TRADE;
    rec->escape = 0;
    rec->name_len = 0;
    for (int i = 0; i < 5; i++) {
        rc = telem_take_number(num_names[i], nums[i], &rec->num[i], msg, msg_cap);
        if (rc != TELEM_OK)
            return rc;
    }
    if (tr->opened_at_ns < 0) {
        snprintf(msg, msg_cap, "opened_at_ns: negative time");
        return TELEM_EINVAL;
    }
    rec->opened_at_ns = tr->opened_at_ns;
    rc = telem_take_time("closed_at_ns", tr->closed_at_ns, now_ns, &rec->ts_ns, msg, msg_cap);
    if (rc != TELEM_OK)
        return rc;
    rc = telem_take_text("symbol", tr->symbol, TELEM_SYMBOL_MAX, false, TELEM__TEXT_TAG,
                         rec->u.t.symbol, &rec->symbol_len, &rec->escape, TELEM__ESC_SYMBOL, msg,
                         msg_cap);
    if (rc != TELEM_OK)
        return rc;
    rc = telem_take_text("side", tr->side, TELEM_SIDE_MAX, false, TELEM__TEXT_TAG, rec->u.t.side,
                         &rec->side_len, &rec->escape, TELEM__ESC_SIDE, msg, msg_cap);
    if (rc != TELEM_OK)
        return rc;
    rc = telem_take_text("trade_id", tr->trade_id, TELEM_TRADE_ID_MAX, false, TELEM__TEXT_STRING,
                         rec->u.t.trade_id, &rec->trade_id_len, &rec->escape, TELEM__ESC_TRADE_ID,
                         msg, msg_cap);
    if (rc != TELEM_OK)
        return rc;
    return telem_take_overrides(rec, tr->profile, tr->script, msg, msg_cap);
}

int telem__rec_metric(struct telem__rec *rec, const char *profile, const char *script,
                      const char *name, double value, int64_t ts_ns, int64_t now_ns, char *msg,
                      size_t msg_cap)
{
    int rc;
    rec->kind = TELEM__REC_METRIC;
    rec->escape = 0;
    rec->symbol_len = rec->side_len = rec->trade_id_len = 0;
    rec->opened_at_ns = 0;
    rc = telem_take_number("value", value, &rec->num[0], msg, msg_cap);
    if (rc != TELEM_OK)
        return rc;
    rc = telem_take_time("ts_ns", ts_ns, now_ns, &rec->ts_ns, msg, msg_cap);
    if (rc != TELEM_OK)
        return rc;
    rc = telem_take_text("name", name, TELEM_NAME_MAX, true, TELEM__TEXT_TAG, rec->u.name,
                         &rec->name_len, &rec->escape, TELEM__ESC_NAME, msg, msg_cap);
    if (rc != TELEM_OK)
        return rc;
    return telem_take_overrides(rec, profile, script, msg, msg_cap);
}

/* telem_put_tag writes s[0..len) as a tag value or field key, escaping when escaped is set. */
static size_t telem_put_tag(char *dst, const char *s, size_t len, bool escaped)
{
    if (!escaped) {
        memcpy(dst, s, len);
        return len;
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == ',' || c == ' ' || c == '=' || c == '\\')
            dst[n++] = '\\';
        dst[n++] = c;
    }
    return n;
}

/* telem_put_string writes s[0..len) as the inside of a string field value. */
static size_t telem_put_string(char *dst, const char *s, size_t len, bool escaped)
{
    if (!escaped) {
        memcpy(dst, s, len);
        return len;
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '"' || c == '\\')
            dst[n++] = '\\';
        dst[n++] = c;
    }
    return n;
}

#define TELEM_PUT_LIT(dst, n, lit)                                                                 \
    do {                                                                                           \
        memcpy((dst) + (n), (lit), sizeof(lit) - 1);                                               \
        (n) += sizeof(lit) - 1;                                                                    \
    } while (0)

size_t telem__encode_prefix(char *dst, const char *profile, const char *script)
{
    size_t n = 0;
    TELEM_PUT_LIT(dst, n, ",profile=");
    n += telem_put_tag(dst + n, profile, strlen(profile), true);
    if (script != NULL && script[0] != '\0') {
        TELEM_PUT_LIT(dst, n, ",script=");
        n += telem_put_tag(dst + n, script, strlen(script), true);
    }
    return n;
}

/* telem_put_tags writes the profile and script tags of rec, or the handle's prefix. */
static size_t telem_put_tags(char *dst, const struct telem__rec *rec, const char *prefix,
                             size_t prefix_len)
{
    if (rec->profile_len == 0) {
        memcpy(dst, prefix, prefix_len);
        return prefix_len;
    }
    size_t n = 0;
    TELEM_PUT_LIT(dst, n, ",profile=");
    n += telem_put_tag(dst + n, rec->profile, rec->profile_len, rec->escape & TELEM__ESC_PROFILE);
    if (rec->script_len) {
        TELEM_PUT_LIT(dst, n, ",script=");
        n += telem_put_tag(dst + n, rec->script, rec->script_len, rec->escape & TELEM__ESC_SCRIPT);
    }
    return n;
}

size_t telem__encode_rec(char *dst, const struct telem__rec *rec, const char *prefix,
                         size_t prefix_len)
{
    size_t n = 0;
    if (rec->kind == TELEM__REC_METRIC) {
        TELEM_PUT_LIT(dst, n, "metric");
        n += telem_put_tags(dst + n, rec, prefix, prefix_len);
        dst[n++] = ' ';
        n += telem_put_tag(dst + n, rec->u.name, rec->name_len, rec->escape & TELEM__ESC_NAME);
        dst[n++] = '=';
        n += telem__format_double(dst + n, rec->num[0]);
    } else {
        TELEM_PUT_LIT(dst, n, "trade");
        n += telem_put_tags(dst + n, rec, prefix, prefix_len);
        if (rec->symbol_len) {
            TELEM_PUT_LIT(dst, n, ",symbol=");
            n += telem_put_tag(dst + n, rec->u.t.symbol, rec->symbol_len,
                               rec->escape & TELEM__ESC_SYMBOL);
        }
        if (rec->side_len) {
            TELEM_PUT_LIT(dst, n, ",side=");
            n +=
                telem_put_tag(dst + n, rec->u.t.side, rec->side_len, rec->escape & TELEM__ESC_SIDE);
        }
        TELEM_PUT_LIT(dst, n, " qty=");
        n += telem__format_double(dst + n, rec->num[0]);
        TELEM_PUT_LIT(dst, n, ",entry_price=");
        n += telem__format_double(dst + n, rec->num[1]);
        TELEM_PUT_LIT(dst, n, ",exit_price=");
        n += telem__format_double(dst + n, rec->num[2]);
        TELEM_PUT_LIT(dst, n, ",pnl=");
        n += telem__format_double(dst + n, rec->num[3]);
        TELEM_PUT_LIT(dst, n, ",fees=");
        n += telem__format_double(dst + n, rec->num[4]);
        if (rec->opened_at_ns) {
            TELEM_PUT_LIT(dst, n, ",opened_at=");
            n += telem__format_i64(dst + n, rec->opened_at_ns);
            dst[n++] = 'i';
        }
        if (rec->trade_id_len) {
            TELEM_PUT_LIT(dst, n, ",trade_id=\"");
            n += telem_put_string(dst + n, rec->u.t.trade_id, rec->trade_id_len,
                                  rec->escape & TELEM__ESC_TRADE_ID);
            dst[n++] = '"';
        }
    }
    dst[n++] = ' ';
    n += telem__format_i64(dst + n, rec->ts_ns);
    dst[n++] = '\n';
    return n;
}
