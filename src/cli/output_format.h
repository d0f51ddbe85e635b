/*
 * output_format.h: the writers behind telemctl's `--format table|csv|json`.
 *
 * A command describes its columns once (name and type), then hands over rows of values; the
 * writer renders them as an aligned text table (buffered, so column widths fit the data), as
 * CSV (RFC 4180 quoting, one header line) or as a JSON array of objects (streamed). Times are
 * integer microseconds since the Unix epoch and are printed as RFC 3339 UTC in every format,
 * so the output of one format can be compared with another. A NULL value is an empty CSV cell,
 * JSON null, and "-" in a table; JSON, which has no infinity, also
 * prints a non-finite real (a profit factor without losses) as null.
 */
#ifndef TELEM_CLI_OUTPUT_FORMAT_H
#define TELEM_CLI_OUTPUT_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum out_format {
    OUT_TABLE = 0,
    OUT_CSV,
    OUT_JSON,
};

enum out_type {
    OUT_STR,     /* value.s, UTF-8 text */
    OUT_INT,     /* value.i */
    OUT_REAL,    /* value.d, printed in the shortest form that reads back exactly */
    OUT_TIME_US, /* value.i, microseconds since the epoch, printed as RFC 3339 UTC */
};

struct out_column {
    const char *name;
    enum out_type type;
};

/* One cell. null marks SQL NULL; otherwise the member the column's type names is used. */
struct out_value {
    bool null;
    const char *s;
    int64_t i;
    double d;
};

struct out_writer;

/*
 * out_format_parse maps "table", "csv" or "json" to enum out_format. Returns 0 or -EINVAL.
 */
int out_format_parse(const char *text, enum out_format *out);

/*
 * out_writer_create starts an output of ncols columns to out. Borrows cols (must outlive the
 * writer) and out. Never returns NULL (allocation failure stops the tool, core/alloc.h).
 * Caller frees with out_writer_destroy.
 */
struct out_writer *out_writer_create(enum out_format fmt, const struct out_column *cols,
                                     size_t ncols, FILE *out);

/*
 * out_writer_row adds one row of ncols values. Borrows vals (strings are copied when the
 * format buffers). Returns 0, or -EIO when the stream failed.
 */
int out_writer_row(struct out_writer *w, const struct out_value *vals);

/*
 * out_writer_finish writes what the format keeps for the end (the whole table; JSON's closing
 * bracket) and flushes. Call once, after the last row. Returns 0 or -EIO.
 */
int out_writer_finish(struct out_writer *w);

/* out_writer_rows returns the number of rows added so far. */
uint64_t out_writer_rows(const struct out_writer *w);

/* out_writer_destroy frees the writer without writing anything more. Accepts NULL. */
void out_writer_destroy(struct out_writer *w);

/*
 * out_format_real writes d into dst in the shortest %g form that reads back to the same double
 * ("0.1", "1e+21", "-3"). Returns the length written (always < cap when cap >= 32).
 */
int out_format_real(double d, char *dst, size_t cap);

/*
 * out_format_time_us writes microseconds since the epoch as RFC 3339 UTC into dst:
 * "2026-11-27T10:00:00Z", or "2026-11-27T10:00:00.123456Z" when there is a fraction.
 * Returns the length written; cap must be at least 40.
 */
int out_format_time_us(int64_t us, char *dst, size_t cap);

#endif
