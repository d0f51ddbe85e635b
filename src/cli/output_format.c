/*
 * output_format.c: table, CSV and JSON writers for telemctl's query and report output.
 *
 * Every cell is first rendered to text by the column's type (shortest exact real, RFC 3339
 * time); the formats differ only in how that text is quoted and laid out. The table format
 * keeps every rendered cell until out_writer_finish so that each column is exactly as wide as
 * its widest value; CSV and JSON stream row by row.
 */
#include "cli/output_format.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"

struct out_writer {
    enum out_format fmt;
    const struct out_column *cols;
    size_t ncols;
    FILE *out;
    uint64_t rows;

    /* OUT_TABLE only: every cell's text, row-major, and each column's widest text. */
    char **cells;
    size_t ncells;
    size_t cells_cap;
    size_t *widths;
};

int out_format_parse(const char *text, enum out_format *out)
{
    if (!text)
        return -EINVAL;
    if (strcmp(text, "table") == 0)
        *out = OUT_TABLE;
    else if (strcmp(text, "csv") == 0)
        *out = OUT_CSV;
    else if (strcmp(text, "json") == 0)
        *out = OUT_JSON;
    else
        return -EINVAL;
    return 0;
}

int out_format_real(double d, char *dst, size_t cap)
{
    /* Whole numbers print whole ("100", not "1e+02", which %.1g would give). */
    if (d == trunc(d) && fabs(d) < 1e16)
        return snprintf(dst, cap, "%.0f", d == 0 ? 0.0 : d);
    /* Fewest digits first: most stored values (prices, pnl) were typed with a few digits. */
    for (int prec = 1; prec <= 17; prec++) {
        int n = snprintf(dst, cap, "%.*g", prec, d);
        if (n < 0 || (size_t)n >= cap)
            break;
        if (strtod(dst, NULL) == d || isnan(d))
            return n;
    }
    return snprintf(dst, cap, "%.17g", d);
}

int out_format_time_us(int64_t us, char *dst, size_t cap)
{
    /* Floor division, so times before 1970 still get a fraction in [0, 1e6). */
    int64_t secs = us / 1000000;
    int64_t frac = us % 1000000;
    if (frac < 0) {
        frac += 1000000;
        secs -= 1;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        return snprintf(dst, cap, "%" PRId64 "us", us);
    int n = (int)strftime(dst, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    if (n <= 0)
        return snprintf(dst, cap, "%" PRId64 "us", us);
    if (frac)
        n += snprintf(dst + n, cap - (size_t)n, ".%06" PRId64, frac);
    n += snprintf(dst + n, cap - (size_t)n, "Z");
    return n;
}

/* out_render writes one cell's text (without any quoting) into buf; NULL gives "". */
static const char *out_render(const struct out_column *col, const struct out_value *v, char *buf,
                              size_t cap)
{
    if (v->null)
        return "";
    switch (col->type) {
    case OUT_STR:
        return v->s ? v->s : "";
    case OUT_INT:
        snprintf(buf, cap, "%" PRId64, v->i);
        return buf;
    case OUT_REAL:
        out_format_real(v->d, buf, cap);
        return buf;
    case OUT_TIME_US:
        out_format_time_us(v->i, buf, cap);
        return buf;
    }
    return "";
}

struct out_writer *out_writer_create(enum out_format fmt, const struct out_column *cols,
                                     size_t ncols, FILE *out)
{
    struct out_writer *w = xcalloc(1, sizeof(*w));
    w->fmt = fmt;
    w->cols = cols;
    w->ncols = ncols;
    w->out = out;
    if (fmt == OUT_TABLE) {
        w->widths = xcalloc(ncols ? ncols : 1, sizeof(*w->widths));
        for (size_t c = 0; c < ncols; c++)
            w->widths[c] = strlen(cols[c].name);
    }
    return w;
}

/* out_utf8_width counts code points, so a column with non-ASCII names still lines up. */
static size_t out_utf8_width(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

static void out_csv_cell(FILE *out, const char *s)
{
    size_t len = strlen(s);
    bool quote = len > 0 && (s[0] == ' ' || s[len - 1] == ' ');
    for (const char *p = s; *p && !quote; p++)
        if (*p == ',' || *p == '"' || *p == '\n' || *p == '\r')
            quote = true;
    if (!quote) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            fputc('"', out);
        fputc(*p, out);
    }
    fputc('"', out);
}

static void out_json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", out);
            break;
        case '\\':
            fputs("\\\\", out);
            break;
        case '\n':
            fputs("\\n", out);
            break;
        case '\r':
            fputs("\\r", out);
            break;
        case '\t':
            fputs("\\t", out);
            break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                fprintf(out, "\\u%04x", *p);
            else
                fputc(*p, out);
        }
    }
    fputc('"', out);
}

static void out_csv_header(struct out_writer *w)
{
    for (size_t c = 0; c < w->ncols; c++) {
        if (c)
            fputc(',', w->out);
        out_csv_cell(w->out, w->cols[c].name);
    }
    fputc('\n', w->out);
}

int out_writer_row(struct out_writer *w, const struct out_value *vals)
{
    char buf[64];
    if (w->fmt == OUT_TABLE) {
        if (w->ncells + w->ncols > w->cells_cap) {
            w->cells_cap = w->cells_cap ? w->cells_cap * 2 : 64 * (w->ncols ? w->ncols : 1);
            while (w->cells_cap < w->ncells + w->ncols)
                w->cells_cap *= 2;
            w->cells = xrealloc(w->cells, w->cells_cap * sizeof(*w->cells));
        }
        for (size_t c = 0; c < w->ncols; c++) {
            const char *text =
                vals[c].null ? "-" : out_render(&w->cols[c], &vals[c], buf, sizeof(buf));
            w->cells[w->ncells++] = xstrdup(text);
            size_t width = out_utf8_width(text);
            if (width > w->widths[c])
                w->widths[c] = width;
        }
        w->rows++;
        return 0;
    }

    if (w->fmt == OUT_CSV) {
        if (w->rows == 0)
            out_csv_header(w);
        for (size_t c = 0; c < w->ncols; c++) {
            if (c)
                fputc(',', w->out);
            out_csv_cell(w->out, out_render(&w->cols[c], &vals[c], buf, sizeof(buf)));
        }
        fputc('\n', w->out);
    } else {
        fputs(w->rows == 0 ? "[\n  {" : ",\n  {", w->out);
        for (size_t c = 0; c < w->ncols; c++) {
            if (c)
                fputs(", ", w->out);
            out_json_string(w->out, w->cols[c].name);
            fputs(": ", w->out);
            const struct out_value *v = &vals[c];
            if (v->null || (w->cols[c].type == OUT_REAL && !isfinite(v->d)))
                fputs("null", w->out); /* JSON has no NaN or infinity */
            else if (w->cols[c].type == OUT_INT || w->cols[c].type == OUT_REAL)
                fputs(out_render(&w->cols[c], v, buf, sizeof(buf)), w->out);
            else
                out_json_string(w->out, out_render(&w->cols[c], v, buf, sizeof(buf)));
        }
        fputc('}', w->out);
    }
    w->rows++;
    return ferror(w->out) ? -EIO : 0;
}

static void out_table_cell(struct out_writer *w, size_t c, const char *text, bool last)
{
    size_t pad = w->widths[c] - out_utf8_width(text);
    bool right = w->cols[c].type == OUT_INT || w->cols[c].type == OUT_REAL;
    if (right)
        fprintf(w->out, "%*s", (int)pad, "");
    fputs(text, w->out);
    if (!right && !last)
        fprintf(w->out, "%*s", (int)pad, "");
    if (!last)
        fputs("  ", w->out);
}

int out_writer_finish(struct out_writer *w)
{
    switch (w->fmt) {
    case OUT_TABLE:
        for (size_t c = 0; c < w->ncols; c++)
            out_table_cell(w, c, w->cols[c].name, c + 1 == w->ncols);
        fputc('\n', w->out);
        for (size_t r = 0; r < w->rows; r++) {
            for (size_t c = 0; c < w->ncols; c++)
                out_table_cell(w, c, w->cells[r * w->ncols + c], c + 1 == w->ncols);
            fputc('\n', w->out);
        }
        break;
    case OUT_CSV:
        if (w->rows == 0)
            out_csv_header(w);
        break;
    case OUT_JSON:
        fputs(w->rows == 0 ? "[]\n" : "\n]\n", w->out);
        break;
    }
    if (fflush(w->out) != 0 || ferror(w->out))
        return -EIO;
    return 0;
}

uint64_t out_writer_rows(const struct out_writer *w)
{
    return w->rows;
}

void out_writer_destroy(struct out_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->ncells; i++)
        free(w->cells[i]);
    free(w->cells);
    free(w->widths);
    free(w);
}
