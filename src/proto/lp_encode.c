/*
 * lp_encode.c: writes a record as its canonical line of line protocol (see lp_encode.h). Names
 * and tag values escape the bytes that would end them, plus the backslash itself, so that any
 * string survives the trip through lp_parse_line() and lp_unescape(); doubles use the
 * shortest of %.15g, %.16g and %.17g that reads back exactly.
 */
#include "proto/lp_encode.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An output buffer that counts what did not fit instead of overrunning. */
struct lp_out {
    char *p;
    size_t cap;
    size_t n;
};

static void put(struct lp_out *o, const char *s, size_t len)
{
    if (o->n < o->cap) {
        size_t room = o->cap - o->n;
        memcpy(o->p + o->n, s, len < room ? len : room);
    }
    o->n += len;
}

static void put_char(struct lp_out *o, char c)
{
    if (o->n < o->cap)
        o->p[o->n] = c;
    o->n++;
}

/*
 * put_escaped writes s with a backslash before every byte that would end it: in a string the
 * quote, elsewhere comma, space and equals sign; and before every backslash, which would
 * otherwise pair with the byte after it.
 */
static void put_escaped(struct lp_out *o, const char *s, size_t len, bool in_string)
{
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool esc = c == '\\' || (in_string ? c == '"' : c == ',' || c == ' ' || c == '=');
        if (esc)
            put_char(o, '\\');
        put_char(o, c);
    }
}

static void put_double(struct lp_out *o, double v)
{
    char buf[40];
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, sizeof(buf), "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    put(o, buf, (size_t)n);
}

static void put_int(struct lp_out *o, int64_t v)
{
    char buf[24];
    int n = snprintf(buf, sizeof(buf), "%" PRId64, v);
    put(o, buf, (size_t)n);
}

/* text_ok tells whether a record string of len bytes (limit max) can be written. */
static bool text_ok(const char *s, size_t len, size_t max)
{
    return len <= max && !memchr(s, '\0', len) && !memchr(s, '\n', len);
}

static void put_tag(struct lp_out *o, const char *key, const char *val, size_t len)
{
    put_char(o, ',');
    put(o, key, strlen(key));
    put_char(o, '=');
    put_escaped(o, val, len, false);
}

/* put_field writes one numeric trade field, with the separator it needs. */
static void put_number_field(struct lp_out *o, bool *first, const char *key, double v)
{
    if (!*first)
        put_char(o, ',');
    *first = false;
    put(o, key, strlen(key));
    put_char(o, '=');
    put_double(o, v);
}

int lp_encode_record(const struct record *rec, char *dst, size_t cap)
{
    struct lp_out o = {.p = dst, .cap = cap, .n = 0};
    if (rec->kind != RECORD_TRADE && rec->kind != RECORD_METRIC)
        return -EINVAL;
    if (rec->profile_len == 0 || !text_ok(rec->profile, rec->profile_len, REC_PROFILE_MAX) ||
        !text_ok(rec->script, rec->script_len, REC_SCRIPT_MAX))
        return -EINVAL;

    put(&o, rec->kind == RECORD_TRADE ? "trade" : "metric", rec->kind == RECORD_TRADE ? 5 : 6);
    put_tag(&o, "profile", rec->profile, rec->profile_len);
    if (rec->script_len)
        put_tag(&o, "script", rec->script, rec->script_len);

    if (rec->kind == RECORD_METRIC) {
        if (rec->name_len == 0 || !text_ok(rec->name, rec->name_len, REC_NAME_MAX) ||
            !isfinite(rec->value))
            return -EINVAL;
        put_char(&o, ' ');
        put_escaped(&o, rec->name, rec->name_len, false);
        put_char(&o, '=');
        put_double(&o, rec->value);
    } else {
        static const struct {
            const char *key;
            unsigned bit;
            size_t offset;
        } numbers[] = {
            {"qty", REC_HAS_QTY, offsetof(struct record, qty)},
            {"entry_price", REC_HAS_ENTRY_PRICE, offsetof(struct record, entry_price)},
            {"exit_price", REC_HAS_EXIT_PRICE, offsetof(struct record, exit_price)},
            {"pnl", REC_HAS_PNL, offsetof(struct record, pnl)},
            {"fees", REC_HAS_FEES, offsetof(struct record, fees)},
        };
        bool first = true;
        if (!text_ok(rec->symbol, rec->symbol_len, REC_SYMBOL_MAX) ||
            !text_ok(rec->side, rec->side_len, REC_SIDE_MAX) ||
            !text_ok(rec->trade_id, rec->trade_id_len, REC_TRADE_ID_MAX))
            return -EINVAL;
        if (rec->symbol_len)
            put_tag(&o, "symbol", rec->symbol, rec->symbol_len);
        if (rec->side_len)
            put_tag(&o, "side", rec->side, rec->side_len);
        put_char(&o, ' ');
        for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
            if (!(rec->present & numbers[i].bit))
                continue;
            double v;
            memcpy(&v, (const char *)rec + numbers[i].offset, sizeof(v));
            if (!isfinite(v))
                return -EINVAL;
            put_number_field(&o, &first, numbers[i].key, v);
        }
        if (rec->present & REC_HAS_OPENED_AT) {
            put(&o, first ? "opened_at=" : ",opened_at=", first ? 10 : 11);
            put_int(&o, rec->opened_at_ns);
            put_char(&o, 'i');
            first = false;
        }
        if (rec->trade_id_len || first) {
            put(&o, first ? "trade_id=\"" : ",trade_id=\"", first ? 10 : 11);
            put_escaped(&o, rec->trade_id, rec->trade_id_len, true);
            put_char(&o, '"');
        }
    }
    put_char(&o, ' ');
    put_int(&o, rec->ts_ns);

    if (o.n >= cap)
        return -ENOSPC;
    dst[o.n] = '\0';
    return (int)o.n;
}
