/*
 * lp.c: the InfluxDB line-protocol parser (see lp.h): precision names, walking a body line by
 * line, parsing one line into slices and converted numbers, and undoing backslash escapes.
 * It is on the hot path of every /write, so it scans with a byte-class table, converts plain
 * decimals with an exact fast path, and never allocates; it also never reads outside the
 * slice it was given (the byte after a line may belong to someone else).
 *
 * Escapes. Scanning follows InfluxDB: a backslash always pairs with the byte after it, so an
 * escaped comma, space, equals sign or quote never ends a measurement, key, tag value or
 * string. Undoing them uses one rule everywhere (lp_escapable() in lp_encode.h): a backslash
 * followed by one of `\ , = "` or space stands for that byte; before anything else it is kept.
 * That is InfluxDB's behaviour for everything its own writers emit, and, unlike InfluxDB,
 * it lets every value (even one ending in a backslash) round-trip through lp_encode_record().
 */
#include "proto/lp.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/lp_encode.h"

/* Default for struct lp_limits.line_max when it is 0. */
#define LP_LINE_MAX_DEFAULT 65536

/* Longest number text handed to strtod (through a stack copy); longer numbers are refused. */
#define LP_NUMBER_TEXT_MAX 400

/* Bytes of input quoted in an error reason, so that reasons stay within lp_error.reason. */
#define LP_QUOTE_MAX 40

/* Byte classes used by the scanners: each scanner stops at the classes it cares about. */
enum {
    C_SEP = 1 << 0,   /* ',' and ' ': end of a measurement, key, tag value or number */
    C_EQ = 1 << 1,    /* '=': end of a key */
    C_QUOTE = 1 << 2, /* '"': end of a string */
    C_BSL = 1 << 3,   /* '\\': an escape */
    C_ODD = 1 << 4,   /* NUL or a byte >= 0x80: refused, or UTF-8 to validate */
};

/* clang-format off */
#define ODD16 C_ODD, C_ODD, C_ODD, C_ODD, C_ODD, C_ODD, C_ODD, C_ODD, \
              C_ODD, C_ODD, C_ODD, C_ODD, C_ODD, C_ODD, C_ODD, C_ODD

static const unsigned char byte_class[256] = {
    [0] = C_ODD,
    [' '] = C_SEP, [','] = C_SEP, ['='] = C_EQ, ['"'] = C_QUOTE, ['\\'] = C_BSL,
    [0x80] = ODD16, ODD16, ODD16, ODD16, ODD16, ODD16, ODD16, ODD16,
};
/* clang-format on */

/* Exact powers of ten in double: 10^0 .. 10^22 (Clinger's fast path). */
static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static inline unsigned cls(char c)
{
    return byte_class[(unsigned char)c];
}

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
 * utf8_check returns true when s[0..n) is valid UTF-8 (no overlong forms, no surrogates,
 * nothing above U+10FFFF); otherwise false with *bad at the offset of the first bad byte.
 */
static bool utf8_check(const unsigned char *s, size_t n, size_t *bad)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            need = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07;
        } else {
            goto bad;
        }
        for (size_t j = 1; j <= need; j++) {
            if (i + j >= n || (s[i + j] & 0xc0) != 0x80)
                goto bad;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if (need == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
            goto bad;
        if (need == 3 && (cp < 0x10000 || cp > 0x10ffff))
            goto bad;
        i += need + 1;
    }
    return true;
bad:
    *bad = i;
    return false;
}

/*
 * quote copies at most LP_QUOTE_MAX bytes of input into buf (which holds LP_QUOTE_MAX + 4),
 * for an error reason: control bytes and bytes that are not valid UTF-8 become '?', and a
 * cut is marked with "...". Returns buf.
 */
static const char *quote(char *buf, const char *p, size_t n)
{
    size_t o = 0, i = 0;
    while (i < n && o < LP_QUOTE_MAX) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x80) {
            size_t seq = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2, bad;
            if (i + seq <= n && utf8_check((const unsigned char *)p + i, seq, &bad)) {
                if (o + seq > LP_QUOTE_MAX)
                    break;
                memcpy(buf + o, p + i, seq);
                o += seq;
                i += seq;
                continue;
            }
            buf[o++] = '?';
        } else {
            buf[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
        }
        i++;
    }
    if (i < n) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

int lp_parse_precision(const char *text, enum lp_precision *out)
{
    static const struct {
        const char *name;
        enum lp_precision prec;
    } names[] = {
        {"ns", LP_PREC_NS}, {"n", LP_PREC_NS}, {"us", LP_PREC_US}, {"u", LP_PREC_US},
        {"ms", LP_PREC_MS}, {"s", LP_PREC_S},  {"m", LP_PREC_M},   {"h", LP_PREC_H},
    };
    if (!text || !*text) {
        *out = LP_PREC_NS;
        return 0;
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(text, names[i].name) == 0) {
            *out = names[i].prec;
            return 0;
        }
    }
    return -EINVAL;
}

bool lp_body_next(const char *body, size_t len, size_t *pos, size_t *lineno, size_t *start,
                  size_t *line_len)
{
    size_t p = *pos;
    while (p < len) {
        const char *nl = memchr(body + p, '\n', len - p);
        size_t end = nl ? (size_t)(nl - body) : len;
        size_t next = nl ? end + 1 : len;
        (*lineno)++;
        if (end > p && body[end - 1] == '\r')
            end--;
        size_t q = p;
        while (q < end && (body[q] == ' ' || body[q] == '\t'))
            q++;
        if (q < end && body[q] != '#') {
            *start = p;
            *line_len = end - p;
            *pos = next;
            return true;
        }
        p = next;
    }
    *pos = len;
    return false;
}

int lp_unescape(const struct lp_slice *s, char *dst, size_t dst_cap)
{
    if (!s->escaped) {
        if (s->len >= dst_cap)
            return -ENAMETOOLONG;
        memcpy(dst, s->p, s->len);
        dst[s->len] = '\0';
        return (int)s->len;
    }
    size_t o = 0;
    for (size_t i = 0; i < s->len; i++) {
        char c = s->p[i];
        if (c == '\\' && i + 1 < s->len && lp_escapable(s->p[i + 1]))
            c = s->p[++i];
        if (o + 1 >= dst_cap)
            return -ENAMETOOLONG;
        dst[o++] = c;
    }
    dst[o] = '\0';
    return (int)o;
}

/* Where a scanner is within the line, and what it is scanning (for error reasons). */
struct cursor {
    const char *p;
    size_t len;
    size_t i;
    struct lp_error *err;
};

/*
 * element_name names what a scanner was scanning, for a reason: what, or, for the inside of a
 * string, the field named by key. Formats only on the way to an error.
 */
static const char *element_name(char *buf, size_t cap, const char *what, const struct lp_slice *key)
{
    char kq[LP_QUOTE_MAX + 4];
    if (!key)
        return what;
    snprintf(buf, cap, "field `%s`", quote(kq, key->p, key->len));
    return buf;
}

/*
 * scan_text scans a measurement, key or tag value (stop: the classes that end it) or the
 * inside of a string (stop: C_QUOTE) from c->i, leaving c->i on the byte that ended it (or at
 * the end of the line). Refuses NUL bytes, invalid UTF-8 and a backslash with nothing after
 * it; what (or, for a string, the field named by key) names the element in those reasons.
 */
static int scan_text(struct cursor *c, unsigned stop, const char *what, const struct lp_slice *key,
                     struct lp_slice *out)
{
    char nb[LP_QUOTE_MAX + 16];
    const char *p = c->p;
    size_t i = c->i, start = i, len = c->len;
    bool escaped = false, wide = false;
    unsigned mask = stop | C_BSL | C_ODD;
    for (;;) {
        while (i < len && !(cls(p[i]) & mask))
            i++;
        if (i == len)
            break;
        unsigned char b = (unsigned char)p[i];
        if (b == '\\') {
            if (i + 1 == len) {
                c->i = i;
                if (stop == C_QUOTE)
                    return fail(c->err, start, "%s: unterminated string",
                                element_name(nb, sizeof(nb), what, key));
                return fail(c->err, i + 1, "%s ends in a lone backslash",
                            element_name(nb, sizeof(nb), what, key));
            }
            b = (unsigned char)p[i + 1];
            if (b == 0)
                return fail(c->err, i + 2, "NUL byte in %s",
                            element_name(nb, sizeof(nb), what, key));
            wide |= b >= 0x80;
            escaped = true;
            i += 2;
            continue;
        }
        if (b == 0)
            return fail(c->err, i + 1, "NUL byte in %s", element_name(nb, sizeof(nb), what, key));
        if (b >= 0x80) {
            wide = true;
            i++;
            continue;
        }
        break;
    }
    size_t bad;
    if (wide && !utf8_check((const unsigned char *)p + start, i - start, &bad))
        return fail(c->err, start + bad + 1, "invalid UTF-8 in %s",
                    element_name(nb, sizeof(nb), what, key));
    out->p = p + start;
    out->len = i - start;
    out->escaped = escaped;
    c->i = i;
    return 0;
}

/* Number conversion outcomes, turned into reasons by parse_value(). */
enum num_status {
    NUM_OK,
    NUM_SYNTAX,
    NUM_RANGE,
    NUM_NAN,
    NUM_INF,
    NUM_TOO_LONG,
};

static bool text_is(const char *t, size_t n, const char *lit)
{
    size_t m = strlen(lit);
    if (n != m)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = t[i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        if (ch != lit[i])
            return false;
    }
    return true;
}

/* parse_decimal_int reads `-?[0-9]+` (all of t[0..n)) into an int64. */
static enum num_status parse_decimal_int(const char *t, size_t n, bool allow_minus, int64_t *i64,
                                         uint64_t *u64)
{
    size_t k = 0;
    bool neg = false, over = false;
    if (n > 0 && t[0] == '-' && allow_minus) {
        neg = true;
        k = 1;
    }
    if (k == n)
        return NUM_SYNTAX;
    uint64_t v = 0;
    size_t first = k;
    for (; k < n; k++) {
        unsigned d = (unsigned)(unsigned char)t[k] - '0';
        if (d > 9)
            return NUM_SYNTAX;
        /* 19 digits always fit; only the 20th and later can overflow. */
        if (k - first >= 19 && v > (UINT64_MAX - d) / 10)
            over = true;
        else
            v = v * 10 + d;
    }
    if (over)
        return NUM_RANGE;
    if (u64) {
        *u64 = v;
        return NUM_OK;
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1)
            return NUM_RANGE;
        *i64 = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX)
            return NUM_RANGE;
        *i64 = (int64_t)v;
    }
    return NUM_OK;
}

/*
 * parse_float reads `-?(D+|D+.D*|.D+)([eE][+-]?D+)?` (all of t[0..n)) into a finite double,
 * correctly rounded: exactly (Clinger) when the digits fit 2^53 and the power of ten is exact,
 * through strtod on a stack copy otherwise (the daemon keeps the "C" locale, so the decimal
 * point is '.'). Names NaN and infinity so that they get a clear refusal; refuses overflow to
 * infinity; underflow gives 0 or a subnormal, as strtod does.
 */
static enum num_status parse_float(const char *t, size_t n, double *out)
{
    size_t k = 0;
    bool neg = false, plus = false;
    if (k < n && (t[k] == '-' || t[k] == '+')) {
        neg = t[k] == '-';
        plus = !neg;
        k++;
    }
    if (k < n && (t[k] | 0x20) == 'n' && text_is(t + k, n - k, "nan"))
        return NUM_NAN;
    if (k < n && (t[k] | 0x20) == 'i' &&
        (text_is(t + k, n - k, "inf") || text_is(t + k, n - k, "infinity")))
        return NUM_INF;
    if (plus) /* InfluxDB refuses a plus sign too */
        return NUM_SYNTAX;

    uint64_t mant = 0;
    int exp10 = 0;
    bool exact = true; /* every digit went into mant */
    size_t digits = 0;
    for (; k < n; k++) {
        unsigned d = (unsigned)(unsigned char)t[k] - '0';
        if (d > 9)
            break;
        digits++;
        if (mant < 100000000000000000ull)
            mant = mant * 10 + d;
        else {
            exp10++;
            exact = false;
        }
    }
    if (k < n && t[k] == '.') {
        for (k++; k < n; k++) {
            unsigned d = (unsigned)(unsigned char)t[k] - '0';
            if (d > 9)
                break;
            digits++;
            if (mant < 100000000000000000ull) {
                mant = mant * 10 + d;
                exp10--;
            } else {
                exact = false;
            }
        }
    }
    if (digits == 0)
        return NUM_SYNTAX;
    if (k < n && (t[k] == 'e' || t[k] == 'E')) {
        k++;
        bool eneg = false;
        if (k < n && (t[k] == '+' || t[k] == '-')) {
            eneg = t[k] == '-';
            k++;
        }
        if (k == n)
            return NUM_SYNTAX;
        int e = 0;
        for (; k < n; k++) {
            unsigned d = (unsigned)(unsigned char)t[k] - '0';
            if (d > 9)
                return NUM_SYNTAX;
            if (e < 100000)
                e = e * 10 + (int)d;
        }
        exp10 += eneg ? -e : e;
    }
    if (k != n)
        return NUM_SYNTAX;

    double v;
    if (mant == 0) {
        v = 0.0;
    } else if (exact && mant <= (1ull << 53) && exp10 >= -22 && exp10 <= 22) {
        v = (double)mant;
        v = exp10 < 0 ? v / pow10_exact[-exp10] : v * pow10_exact[exp10];
    } else {
        char buf[LP_NUMBER_TEXT_MAX + 1];
        if (n > LP_NUMBER_TEXT_MAX)
            return NUM_TOO_LONG;
        memcpy(buf, t, n);
        buf[n] = '\0';
        char *end;
        v = strtod(buf, &end);
        if (end != buf + n)
            return NUM_SYNTAX;
        if (isinf(v))
            return NUM_RANGE;
        *out = v; /* strtod has seen the sign */
        return NUM_OK;
    }
    *out = neg ? -v : v;
    return NUM_OK;
}

/* parse_value parses the value of field f, which starts at c->i; c->i ends past it. */
static int parse_value(struct cursor *c, struct lp_field *f)
{
    char kq[LP_QUOTE_MAX + 4], vq[LP_QUOTE_MAX + 4];
    const char *p = c->p;
    size_t i = c->i, len = c->len;
    if (i == len || (cls(p[i]) & C_SEP))
        return fail(c->err, i + 1, "field `%s` has no value", quote(kq, f->key.p, f->key.len));

    if (p[i] == '"') {
        c->i = i + 1;
        int rc = scan_text(c, C_QUOTE, NULL, &f->key, &f->str);
        if (rc < 0)
            return rc;
        if (c->i == len)
            return fail(c->err, i + 1, "field `%s`: unterminated string",
                        quote(kq, f->key.p, f->key.len));
        c->i++; /* the closing quote */
        f->type = LP_FIELD_STRING;
        f->v.u = 0;
        return 0;
    }

    size_t start = i;
    while (i < len && !(cls(p[i]) & C_SEP))
        i++;
    c->i = i;
    const char *t = p + start;
    size_t n = i - start;
    f->str.p = NULL;
    f->str.len = 0;
    f->str.escaped = false;

    switch (t[0]) {
    case 't':
    case 'T':
    case 'f':
    case 'F':
        if (n == 1 ||
            (n == 4 && (!memcmp(t, "true", 4) || !memcmp(t, "True", 4) || !memcmp(t, "TRUE", 4))) ||
            (n == 5 &&
             (!memcmp(t, "false", 5) || !memcmp(t, "False", 5) || !memcmp(t, "FALSE", 5)))) {
            f->type = LP_FIELD_BOOL;
            f->v.b = t[0] == 't' || t[0] == 'T';
            return 0;
        }
        return fail(c->err, start + 1, "field `%s`: expected a boolean, got `%s`",
                    quote(kq, f->key.p, f->key.len), quote(vq, t, n));
    default:
        break;
    }

    enum num_status st;
    const char *expected;
    char last = t[n - 1];
    if (last == 'i') {
        f->type = LP_FIELD_INT;
        expected = "an integer";
        st = parse_decimal_int(t, n - 1, true, &f->v.i, NULL);
    } else if (last == 'u') {
        f->type = LP_FIELD_UINT;
        expected = "an unsigned integer";
        st = parse_decimal_int(t, n - 1, false, NULL, &f->v.u);
    } else {
        f->type = LP_FIELD_FLOAT;
        expected = "a number";
        st = parse_float(t, n, &f->v.f);
    }
    switch (st) {
    case NUM_OK:
        return 0;
    case NUM_NAN:
        return fail(c->err, start + 1, "field `%s`: NaN is not allowed",
                    quote(kq, f->key.p, f->key.len));
    case NUM_INF:
        return fail(c->err, start + 1, "field `%s`: infinity is not allowed",
                    quote(kq, f->key.p, f->key.len));
    case NUM_RANGE:
        return fail(c->err, start + 1, "field `%s`: `%s` is out of range",
                    quote(kq, f->key.p, f->key.len), quote(vq, t, n));
    case NUM_TOO_LONG:
        return fail(c->err, start + 1, "field `%s`: number longer than %d bytes",
                    quote(kq, f->key.p, f->key.len), LP_NUMBER_TEXT_MAX);
    case NUM_SYNTAX:
    default:
        break;
    }
    /* Name NaN and infinity even when a suffix made them look like integers. */
    if (f->type != LP_FIELD_FLOAT) {
        double ignored;
        enum num_status fs = parse_float(t, n - 1, &ignored);
        if (fs == NUM_NAN || fs == NUM_INF)
            return fail(c->err, start + 1, "field `%s`: %s is not allowed",
                        quote(kq, f->key.p, f->key.len), fs == NUM_NAN ? "NaN" : "infinity");
    }
    return fail(c->err, start + 1, "field `%s`: expected %s, got `%s`",
                quote(kq, f->key.p, f->key.len), expected, quote(vq, t, n));
}

static size_t skip_spaces(const char *p, size_t len, size_t i)
{
    while (i < len && p[i] == ' ')
        i++;
    return i;
}

int lp_parse_line(const char *p, size_t len, const struct lp_limits *lim, struct lp_line *out,
                  struct lp_error *err)
{
    char kq[LP_QUOTE_MAX + 4], vq[LP_QUOTE_MAX + 4];
    size_t line_max = lim && lim->line_max ? lim->line_max : LP_LINE_MAX_DEFAULT;
    size_t tags_max =
        lim && lim->tags_max && lim->tags_max < LP_TAGS_MAX ? lim->tags_max : LP_TAGS_MAX;
    size_t fields_max =
        lim && lim->fields_max && lim->fields_max < LP_FIELDS_MAX ? lim->fields_max : LP_FIELDS_MAX;
    struct cursor c = {.p = p, .len = len, .i = 0, .err = err};
    int rc;

    out->ntags = 0;
    out->nfields = 0;
    out->has_time = false;
    out->time = 0;
    if (len > line_max)
        return fail(err, line_max + 1, "line longer than %zu bytes", line_max);

    while (c.i < len && (p[c.i] == ' ' || p[c.i] == '\t'))
        c.i++;
    size_t mcol = c.i + 1;
    rc = scan_text(&c, C_SEP, "measurement", NULL, &out->measurement);
    if (rc < 0)
        return rc;
    if (out->measurement.len == 0)
        return fail(err, mcol, "missing measurement");
    if (c.i == len)
        return fail(err, c.i + 1, "missing fields");

    while (p[c.i] == ',') {
        size_t kcol = ++c.i + 1;
        if (out->ntags == tags_max)
            return fail(err, kcol, "more than %zu tags", tags_max);
        struct lp_tag *tag = &out->tags[out->ntags];
        rc = scan_text(&c, C_SEP | C_EQ, "tag key", NULL, &tag->key);
        if (rc < 0)
            return rc;
        if (tag->key.len == 0)
            return fail(err, kcol, "empty tag key");
        if (c.i == len || p[c.i] != '=')
            return fail(err, kcol, "tag `%s` has no value", quote(kq, tag->key.p, tag->key.len));
        size_t vcol = ++c.i + 1;
        rc = scan_text(&c, C_SEP | C_EQ, "tag value", NULL, &tag->value);
        if (rc < 0)
            return rc;
        if (tag->value.len == 0)
            return fail(err, vcol, "tag `%s` has no value", quote(kq, tag->key.p, tag->key.len));
        if (c.i < len && p[c.i] == '=')
            return fail(err, c.i + 1, "tag `%s`: unescaped `=` in its value",
                        quote(kq, tag->key.p, tag->key.len));
        out->ntags++;
        if (c.i == len)
            return fail(err, c.i + 1, "missing fields");
    }

    /* p[c.i] is the space that ends the series key. */
    c.i = skip_spaces(p, len, c.i);
    if (c.i == len)
        return fail(err, c.i + 1, "missing fields");
    for (;;) {
        size_t kcol = c.i + 1;
        if (out->nfields == fields_max)
            return fail(err, kcol, "more than %zu fields", fields_max);
        struct lp_field *f = &out->fields[out->nfields];
        rc = scan_text(&c, C_SEP | C_EQ, "field key", NULL, &f->key);
        if (rc < 0)
            return rc;
        if (f->key.len == 0) {
            if (c.i < len && p[c.i] == '=')
                return fail(err, kcol, "empty field key");
            return fail(err, kcol, "%s",
                        out->nfields ? "missing field after `,`" : "missing fields");
        }
        if (c.i == len || p[c.i] != '=')
            return fail(err, kcol, "field `%s` has no value", quote(kq, f->key.p, f->key.len));
        c.i++;
        f->column = kcol;
        rc = parse_value(&c, f);
        if (rc < 0)
            return rc;
        out->nfields++;
        if (c.i == len)
            return 0;
        if (p[c.i] == ',') {
            c.i++;
            continue;
        }
        if (p[c.i] == ' ')
            break;
        return fail(err, c.i + 1, "field `%s`: unexpected `%s` after the value",
                    quote(kq, f->key.p, f->key.len), quote(vq, p + c.i, 1));
    }

    c.i = skip_spaces(p, len, c.i);
    if (c.i == len)
        return 0;
    size_t tcol = c.i + 1, start = c.i;
    while (c.i < len && p[c.i] != ' ')
        c.i++;
    size_t tlen = c.i - start;
    if (skip_spaces(p, len, c.i) != len)
        return fail(err, skip_spaces(p, len, c.i) + 1, "bad timestamp: unexpected text after `%s`",
                    quote(vq, p + start, tlen));
    enum num_status st = parse_decimal_int(p + start, tlen, true, &out->time, NULL);
    if (st == NUM_RANGE)
        return fail(err, tcol, "bad timestamp `%s`: out of range", quote(vq, p + start, tlen));
    if (st != NUM_OK)
        return fail(err, tcol, "bad timestamp `%s`: expected an integer",
                    quote(vq, p + start, tlen));
    out->has_time = true;
    return 0;
}
