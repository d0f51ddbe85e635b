/*
 * lp_map.c: turns a parsed line into telem records (DESIGN.md, "Wire format"; see lp.h).
 *
 * Measurement `trade` is one trade. Its tags profile (or the configured profile tag), script,
 * symbol and side are kept and other tags ignored, since agents add their own (host, ...);
 * its fields must be known ones (qty, entry_price, exit_price, pnl, fees, opened_at,
 * trade_id), so that a misspelt field is a 400 naming it rather than a silently missing value.
 * Any other measurement M is one metric per numeric field F (a boolean counts as 1 or 0,
 * strings are skipped), named `M.F`, or `F` when M is `metric`. Values over their published
 * length, non-finite numbers and times that overflow int64 nanoseconds are refused here, so
 * stores never see them. Pure: no I/O, no allocation.
 */
#include "proto/lp.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proto/lp_encode.h"

/* Bytes of a name quoted in an error reason. */
#define MAP_QUOTE_MAX 40

/* Nanoseconds in one unit of each precision. */
static const int64_t precision_ns[] = {
    [LP_PREC_NS] = 1,         [LP_PREC_US] = 1000,         [LP_PREC_MS] = 1000000,
    [LP_PREC_S] = 1000000000, [LP_PREC_M] = 60000000000LL, [LP_PREC_H] = 3600000000000LL,
};

static const char *const precision_name[] = {
    [LP_PREC_NS] = "ns", [LP_PREC_US] = "us", [LP_PREC_MS] = "ms",
    [LP_PREC_S] = "s",   [LP_PREC_M] = "m",   [LP_PREC_H] = "h",
};

enum trade_field {
    TF_QTY,
    TF_ENTRY_PRICE,
    TF_EXIT_PRICE,
    TF_PNL,
    TF_FEES,
    TF_OPENED_AT,
    TF_TRADE_ID,
};

static const struct {
    const char *key;
    size_t len;
    enum trade_field id;
    unsigned bit;  /* enum record_field_bit, numeric fields only */
    size_t offset; /* of the double in struct record, numeric fields only */
} trade_fields[] = {
    {"qty", 3, TF_QTY, REC_HAS_QTY, offsetof(struct record, qty)},
    {"entry_price", 11, TF_ENTRY_PRICE, REC_HAS_ENTRY_PRICE, offsetof(struct record, entry_price)},
    {"exit_price", 10, TF_EXIT_PRICE, REC_HAS_EXIT_PRICE, offsetof(struct record, exit_price)},
    {"pnl", 3, TF_PNL, REC_HAS_PNL, offsetof(struct record, pnl)},
    {"fees", 4, TF_FEES, REC_HAS_FEES, offsetof(struct record, fees)},
    {"opened_at", 9, TF_OPENED_AT, REC_HAS_OPENED_AT, 0},
    {"trade_id", 8, TF_TRADE_ID, 0, 0},
};

#define TRADE_FIELDS (sizeof(trade_fields) / sizeof(trade_fields[0]))

static int fail(struct lp_error *err, size_t column, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* fail fills err (column 0: not about one spot) and returns -EINVAL. */
static int fail(struct lp_error *err, size_t column, const char *fmt, ...)
{
    va_list ap;
    err->column = column;
    va_start(ap, fmt);
    vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/*
 * quote copies at most MAP_QUOTE_MAX bytes of p into buf (MAP_QUOTE_MAX + 4 bytes) for an
 * error reason, control bytes as '?', cut on a UTF-8 boundary and marked with "...".
 */
static const char *quote(char *buf, const char *p, size_t n)
{
    size_t o = n <= MAP_QUOTE_MAX ? n : MAP_QUOTE_MAX;
    if (o < n)
        while (o > 0 && ((unsigned char)p[o] & 0xc0) == 0x80)
            o--;
    for (size_t i = 0; i < o; i++) {
        unsigned char c = (unsigned char)p[i];
        buf[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (o < n) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

/* escaped_slice_is is slice_is for a slice with escapes: compares while unescaping. */
static bool escaped_slice_is(const struct lp_slice *s, const char *lit, size_t n)
{
    size_t j = 0;
    for (size_t i = 0; i < s->len; i++, j++) {
        char c = s->p[i];
        if (c == '\\' && i + 1 < s->len && lp_escapable(s->p[i + 1]))
            c = s->p[++i];
        if (j == n || lit[j] != c)
            return false;
    }
    return j == n;
}

/*
 * slice_is tells whether s, unescaped, is exactly lit[0..n). Inline, because it runs for every
 * tag and field against every known key, and a length check settles almost all of them.
 */
static inline bool slice_is(const struct lp_slice *s, const char *lit, size_t n)
{
    if (s->escaped)
        return escaped_slice_is(s, lit, n);
    if (s->len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s->p[i] != lit[i])
            return false;
    return true;
}

/* unescaped_len is the length lp_unescape would give s. */
static size_t unescaped_len(const struct lp_slice *s)
{
    size_t n = s->len;
    if (s->escaped)
        for (size_t i = 0; i + 1 < s->len; i++)
            if (s->p[i] == '\\' && lp_escapable(s->p[i + 1])) {
                n--;
                i++;
            }
    return n;
}

/*
 * column_of gives the 1-based column of at, a byte of the line. lp_parse_line records the
 * column of every field key, and a parsed line always has a field, so the line's first byte is
 * known from the first field.
 */
static size_t column_of(const struct lp_line *line, const char *at)
{
    if (line->nfields == 0 || !at)
        return 0;
    const char *base = line->fields[0].key.p - (line->fields[0].column - 1);
    return (size_t)(at - base) + 1;
}

/* copy_text unescapes s into dst (at most max bytes) or refuses it, naming what it is. */
static int copy_text(const struct lp_line *line, const struct lp_slice *s, char *dst, size_t max,
                     uint8_t *len, const char *what, const char *name, struct lp_error *err)
{
    char nq[MAP_QUOTE_MAX + 4];
    int n = lp_unescape(s, dst, max + 1);
    if (n < 0)
        return fail(err, column_of(line, s->p), "%s `%s`: %zu bytes, the limit is %zu", what,
                    quote(nq, name, strlen(name)), unescaped_len(s), max);
    *len = (uint8_t)n;
    return 0;
}

/* scale_time converts t, in precision prec, to nanoseconds. Returns false on overflow. */
static bool scale_time(int64_t t, enum lp_precision prec, int64_t *ns)
{
    if ((unsigned)prec >= sizeof(precision_ns) / sizeof(precision_ns[0]))
        return false;
    int64_t f = precision_ns[prec];
    if (t > INT64_MAX / f || t < INT64_MIN / f)
        return false;
    *ns = t * f;
    return true;
}

static const char *type_name(enum lp_field_type t)
{
    switch (t) {
    case LP_FIELD_FLOAT:
        return "a float";
    case LP_FIELD_INT:
        return "an integer";
    case LP_FIELD_UINT:
        return "an unsigned integer";
    case LP_FIELD_BOOL:
        return "a boolean";
    case LP_FIELD_STRING:
    default:
        return "a string";
    }
}

/*
 * field_number gives a numeric field as a double: true for floats, integers and (when bool_ok)
 * booleans as 1 or 0; false for the rest. NaN and infinity give false with *rc < 0 and err
 * filled.
 */
static bool field_number(const struct lp_field *f, bool bool_ok, double *v, int *rc,
                         struct lp_error *err)
{
    char kq[MAP_QUOTE_MAX + 4];
    *rc = 0;
    switch (f->type) {
    case LP_FIELD_FLOAT:
        if (!isfinite(f->v.f)) {
            *rc = fail(err, f->column, "field `%s`: %s is not allowed",
                       quote(kq, f->key.p, f->key.len), isnan(f->v.f) ? "NaN" : "infinity");
            return false;
        }
        *v = f->v.f;
        return true;
    case LP_FIELD_INT:
        *v = (double)f->v.i;
        return true;
    case LP_FIELD_UINT:
        *v = (double)f->v.u;
        return true;
    case LP_FIELD_BOOL:
        if (!bool_ok)
            return false;
        *v = f->v.b ? 1.0 : 0.0;
        return true;
    case LP_FIELD_STRING:
    default:
        return false;
    }
}

/*
 * map_trade fills rec (profile, script and time already set) from the trade's tags symbol and
 * side and from its fields; opened_at is in precision prec.
 */
static int map_trade(const struct lp_line *line, const struct lp_slice *symbol,
                     const struct lp_slice *side, enum lp_precision prec, struct record *rec,
                     struct lp_error *err)
{
    char kq[MAP_QUOTE_MAX + 4];
    int rc;
    if (symbol && (rc = copy_text(line, symbol, rec->symbol, REC_SYMBOL_MAX, &rec->symbol_len,
                                  "tag", "symbol", err)) < 0)
        return rc;
    if (side && (rc = copy_text(line, side, rec->side, REC_SIDE_MAX, &rec->side_len, "tag", "side",
                                err)) < 0)
        return rc;

    for (size_t i = 0; i < line->nfields; i++) {
        const struct lp_field *f = &line->fields[i];
        size_t t = 0;
        while (t < TRADE_FIELDS && !slice_is(&f->key, trade_fields[t].key, trade_fields[t].len))
            t++;
        if (t == TRADE_FIELDS)
            return fail(err, f->column,
                        "unknown trade field `%s` (known: qty, entry_price, exit_price, pnl, "
                        "fees, opened_at, trade_id)",
                        quote(kq, f->key.p, f->key.len));
        switch (trade_fields[t].id) {
        case TF_OPENED_AT: {
            int64_t v;
            if (f->type == LP_FIELD_INT)
                v = f->v.i;
            else if (f->type == LP_FIELD_UINT && f->v.u <= (uint64_t)INT64_MAX)
                v = (int64_t)f->v.u;
            else if (f->type == LP_FIELD_UINT)
                return fail(err, f->column, "field `opened_at`: out of range");
            else
                return fail(err, f->column,
                            "field `opened_at`: expected an integer (like 1700000000i), got %s",
                            type_name(f->type));
            if (!scale_time(v, prec, &v))
                return fail(err, f->column, "field `opened_at`: out of range");
            rec->opened_at_ns = v;
            rec->present |= REC_HAS_OPENED_AT;
            break;
        }
        case TF_TRADE_ID:
            if (f->type != LP_FIELD_STRING)
                return fail(err, f->column, "field `trade_id`: expected a string, got %s",
                            type_name(f->type));
            rc = copy_text(line, &f->str, rec->trade_id, REC_TRADE_ID_MAX, &rec->trade_id_len,
                           "field", "trade_id", err);
            if (rc < 0)
                return rc;
            break;
        default: {
            double v;
            if (!field_number(f, false, &v, &rc, err)) {
                if (rc < 0)
                    return rc;
                return fail(err, f->column, "field `%s`: expected a number, got %s",
                            trade_fields[t].key, type_name(f->type));
            }
            memcpy((char *)rec + trade_fields[t].offset, &v, sizeof(v));
            rec->present |= (uint8_t)trade_fields[t].bit;
            break;
        }
        }
    }
    return 0;
}

/*
 * map_metrics writes one record per numeric field into out[0..cap), each a copy of tmpl (which
 * has profile, script and time) with its name and value.
 */
static int map_metrics(const struct lp_line *line, const struct record *tmpl, struct record *out,
                       size_t cap, size_t *n, struct lp_error *err)
{
    char mq[MAP_QUOTE_MAX + 4], kq[MAP_QUOTE_MAX + 4];
    char prefix[REC_NAME_MAX + 2];
    size_t plen = 0, count = 0;
    int rc;

    for (size_t i = 0; i < line->nfields; i++)
        count += line->fields[i].type != LP_FIELD_STRING;
    if (count == 0)
        return 0;
    if (count > cap) {
        fail(err, 0, "%zu metrics in one line, room for %zu", count, cap);
        return -ENOSPC;
    }

    if (!slice_is(&line->measurement, "metric", 6)) {
        /* plen == REC_NAME_MAX when "M." leaves no room for a field name. */
        rc = lp_unescape(&line->measurement, prefix, REC_NAME_MAX);
        plen = rc < 0 ? REC_NAME_MAX : (size_t)rc + 1;
        if (plen < REC_NAME_MAX)
            prefix[plen - 1] = '.';
    }
    for (size_t i = 0; i < line->nfields; i++) {
        const struct lp_field *f = &line->fields[i];
        double v;
        if (!field_number(f, true, &v, &rc, err)) {
            if (rc < 0)
                return rc;
            continue;
        }
        struct record *r = &out[*n];
        memcpy(r, tmpl, sizeof(*r));
        r->value = v;
        rc = -ENAMETOOLONG;
        if (plen < REC_NAME_MAX) {
            memcpy(r->name, prefix, plen);
            rc = lp_unescape(&f->key, r->name + plen, REC_NAME_MAX + 1 - plen);
        }
        if (rc < 0) {
            size_t total = unescaped_len(&f->key);
            if (plen)
                total += unescaped_len(&line->measurement) + 1;
            return fail(err, f->column, "metric name `%s%s%s`: %zu bytes, the limit is %d",
                        plen ? quote(mq, line->measurement.p, line->measurement.len) : "",
                        plen ? "." : "", quote(kq, f->key.p, f->key.len), total, REC_NAME_MAX);
        }
        r->name_len = (uint8_t)(plen + (size_t)rc);
        (*n)++;
    }
    return 0;
}

int lp_map_line(const struct lp_line *line, const struct lp_map_options *opt, struct record *out,
                size_t cap, size_t *n, struct lp_error *err)
{
    char pq[MAP_QUOTE_MAX + 4];
    const char *ptag = opt->profile_tag ? opt->profile_tag : "profile";
    size_t ptag_len = strlen(ptag);
    const struct lp_slice *profile = NULL, *script = NULL, *symbol = NULL, *side = NULL;
    bool trade = slice_is(&line->measurement, "trade", 5);
    struct record tmpl;
    int rc;

    *n = 0;
    for (size_t i = 0; i < line->ntags; i++) {
        const struct lp_tag *t = &line->tags[i];
        if (slice_is(&t->key, ptag, ptag_len))
            profile = &t->value;
        else if (slice_is(&t->key, "script", 6))
            script = &t->value;
        else if (trade && slice_is(&t->key, "symbol", 6))
            symbol = &t->value;
        else if (trade && slice_is(&t->key, "side", 4))
            side = &t->value;
    }

    /* A trade is built in place; metrics are copies of a template. */
    struct record *rec = trade ? out : &tmpl;
    if (trade && cap < 1) {
        fail(err, 0, "no room for a trade record");
        return -ENOSPC;
    }
    memset(rec, 0, sizeof(*rec));
    rec->kind = trade ? RECORD_TRADE : RECORD_METRIC;

    if (profile) {
        rc = copy_text(line, profile, rec->profile, REC_PROFILE_MAX, &rec->profile_len, "tag", ptag,
                       err);
        if (rc < 0)
            return rc;
    } else if (opt->default_profile && opt->default_profile[0]) {
        size_t len = strlen(opt->default_profile);
        if (len > REC_PROFILE_MAX)
            return fail(err, 0, "default profile: %zu bytes, the limit is %d", len,
                        REC_PROFILE_MAX);
        memcpy(rec->profile, opt->default_profile, len + 1);
        rec->profile_len = (uint8_t)len;
    } else {
        return fail(err, 0, "missing tag `%s`", quote(pq, ptag, ptag_len));
    }
    if (script) {
        rc = copy_text(line, script, rec->script, REC_SCRIPT_MAX, &rec->script_len, "tag", "script",
                       err);
        if (rc < 0)
            return rc;
    }

    if (!line->has_time) {
        rec->ts_ns = opt->now_ns;
    } else if (!scale_time(line->time, opt->precision, &rec->ts_ns)) {
        unsigned p = (unsigned)opt->precision;
        return fail(err, 0, "bad timestamp: %lld%s is out of range", (long long)line->time,
                    p < sizeof(precision_name) / sizeof(precision_name[0]) ? precision_name[p]
                                                                           : "?");
    }

    if (!trade)
        return map_metrics(line, &tmpl, out, cap, n, err);
    rc = map_trade(line, symbol, side, opt->precision, rec, err);
    if (rc < 0)
        return rc;
    *n = 1;
    return 0;
}
