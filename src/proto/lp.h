/*
 * lp.h: InfluxDB line protocol, parsed without I/O and without allocation.
 *
 * Two layers. lp_parse_line() turns one line into struct lp_line: slices that point into the
 * caller's buffer (escaped text is flagged, not copied), numeric fields already converted.
 * lp_map_line() turns a parsed line into telem records (DESIGN.md, "Wire format"): measurement
 * `trade` is one trade, any other measurement one metric per numeric field. lp_body_next()
 * walks a request body line by line (LF or CRLF, skipping blank lines and # comments) and keeps
 * the line number for error messages.
 *
 * Every rejection fills struct lp_error with the 1-based line and column (byte offset within
 * the line, 1-based) and a reason in plain words, e.g. "line 3, column 17: field `pnl`: NaN is
 * not allowed".
 */
#ifndef TELEM_PROTO_LP_H
#define TELEM_PROTO_LP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/record.h"

/* Hard upper bounds of the parsed form; the settings in struct lp_limits may only be lower. */
#define LP_TAGS_MAX   64
#define LP_FIELDS_MAX 64

enum lp_precision {
    LP_PREC_NS = 0,
    LP_PREC_US,
    LP_PREC_MS,
    LP_PREC_S,
    LP_PREC_M, /* 1.x only: minutes */
    LP_PREC_H, /* 1.x only: hours */
};

enum lp_field_type {
    LP_FIELD_FLOAT,
    LP_FIELD_INT,
    LP_FIELD_UINT,
    LP_FIELD_BOOL,
    LP_FIELD_STRING,
};

/* A slice of the input. escaped is true when it holds backslash escapes to undo. */
struct lp_slice {
    const char *p;
    size_t len;
    bool escaped;
};

struct lp_tag {
    struct lp_slice key;
    struct lp_slice value;
};

struct lp_field {
    struct lp_slice key;
    enum lp_field_type type;
    union {
        double f;
        int64_t i;
        uint64_t u;
        bool b;
    } v;
    struct lp_slice str; /* LP_FIELD_STRING: the text between the quotes, escapes flagged */
    size_t column;       /* 1-based column of the field key, for error messages */
};

struct lp_line {
    struct lp_slice measurement;
    struct lp_tag tags[LP_TAGS_MAX];
    size_t ntags;
    struct lp_field fields[LP_FIELDS_MAX];
    size_t nfields;
    bool has_time;
    int64_t time; /* in the request's precision, not yet scaled */
};

/* Settings that bound one line. Zero means the hard maximum. */
struct lp_limits {
    size_t line_max;   /* bytes in one line, excluding the line ending */
    size_t tags_max;   /* <= LP_TAGS_MAX */
    size_t fields_max; /* <= LP_FIELDS_MAX */
};

struct lp_error {
    size_t line;   /* 1-based line number within the body */
    size_t column; /* 1-based byte column within the line; 0 when not about one spot */
    char reason[160];
};

/*
 * lp_parse_precision maps a `precision` query value (ns, us, ms, s and the 1.x spellings n, u,
 * ms, s, m, h; NULL or empty means ns) to enum lp_precision. Returns 0, or -EINVAL.
 */
int lp_parse_precision(const char *text, enum lp_precision *out);

/*
 * lp_body_next finds the next line to parse in body[0..len), starting at *pos, skipping blank
 * lines and lines whose first non-blank byte is '#'. On return *pos is past the line ending,
 * *lineno is the 1-based number of the returned line (callers start it at 0), and the line is
 * body[*start .. *start + *line_len) without its line ending (CR of CRLF removed).
 * Returns true when a line was found, false at the end of the body.
 */
bool lp_body_next(const char *body, size_t len, size_t *pos, size_t *lineno, size_t *start,
                  size_t *line_len);

/*
 * lp_parse_line parses one line (no line ending) into out. Borrows p: the slices in out point
 * into it. Validates the full grammar: escapes, quoting, numeric syntax and range, duplicate
 * keys are allowed as InfluxDB allows them (the last one wins in lp_map_line), the limits in
 * lim, and that tag keys/values and string fields are valid UTF-8. Returns 0, or -EINVAL with
 * err filled (err->line is left for the caller to set).
 */
int lp_parse_line(const char *p, size_t len, const struct lp_limits *lim, struct lp_line *out,
                  struct lp_error *err);

/*
 * lp_unescape copies s into dst without its backslash escapes and NUL-terminates it.
 * Returns the unescaped length, or -ENAMETOOLONG when it does not fit in dst_cap - 1 bytes.
 */
int lp_unescape(const struct lp_slice *s, char *dst, size_t dst_cap);

/* How lines become records. Borrowed by lp_map_line; the caller keeps it alive. */
struct lp_map_options {
    const char *profile_tag;     /* tag that names the profile; NULL means "profile" */
    const char *default_profile; /* used when that tag is absent; NULL means reject */
    enum lp_precision precision;
    int64_t now_ns; /* arrival time, given to lines without a timestamp */
};

/*
 * lp_map_line turns a parsed line into records appended to out[0..cap). On success *n is the
 * number of records written (0 for a metric line with no numeric field: valid, and counted as
 * ignored by the caller). Rejects: missing profile, a value over its published length, NaN or
 * infinity, a timestamp out of range, a trade with an unknown field (named), a trade field of
 * the wrong type, a trade with no profile. Returns 0, or -EINVAL / -ENOSPC (cap too small) with
 * err filled (err->line left for the caller).
 */
int lp_map_line(const struct lp_line *line, const struct lp_map_options *opt, struct record *out,
                size_t cap, size_t *n, struct lp_error *err);

#endif
