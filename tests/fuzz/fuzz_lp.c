/*
 * fuzz_lp.c: libFuzzer target for the line-protocol module. Walks the input as a request body
 * (lp_body_next), parses every line, checks the parsed form against the line it came from,
 * maps it to records with and without a default profile, and re-encodes every record with
 * lp_encode_record: the encoded line must parse and map back to the identical record. Any
 * broken invariant aborts, so libFuzzer keeps the input.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/lp.h"
#include "proto/lp_encode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_lp: check failed at line %d: %s\n", __LINE__, #cond);            \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Large structs live outside the stack; the target is single-threaded. */
static struct lp_line parsed, reparsed;
static struct record recs[LP_FIELDS_MAX], back[LP_FIELDS_MAX];

static void check_slice(const struct lp_slice *s, const char *line, size_t len)
{
    CHECK(s->p >= line && s->p + s->len <= line + len);
}

static void check_error(const struct lp_error *err, size_t len)
{
    CHECK(memchr(err->reason, '\0', sizeof(err->reason)) != NULL);
    CHECK(err->reason[0] != '\0');
    CHECK(err->column <= len + 1);
}

static void check_parsed(const struct lp_line *l, const char *line, size_t len)
{
    CHECK(l->measurement.len > 0);
    check_slice(&l->measurement, line, len);
    CHECK(l->ntags <= LP_TAGS_MAX);
    CHECK(l->nfields >= 1 && l->nfields <= LP_FIELDS_MAX);
    for (size_t i = 0; i < l->ntags; i++) {
        CHECK(l->tags[i].key.len > 0 && l->tags[i].value.len > 0);
        check_slice(&l->tags[i].key, line, len);
        check_slice(&l->tags[i].value, line, len);
    }
    for (size_t i = 0; i < l->nfields; i++) {
        const struct lp_field *f = &l->fields[i];
        CHECK(f->key.len > 0);
        check_slice(&f->key, line, len);
        CHECK(f->column >= 1 && line + f->column - 1 == f->key.p);
        if (f->type == LP_FIELD_STRING)
            check_slice(&f->str, line, len);
        if (f->type == LP_FIELD_FLOAT)
            CHECK(f->v.f == f->v.f && f->v.f - f->v.f == 0); /* finite */
    }
}

static void check_same(const struct record *a, const struct record *b)
{
    CHECK(a->kind == b->kind);
    CHECK(a->ts_ns == b->ts_ns);
    CHECK(a->present == b->present);
    CHECK(a->profile_len == b->profile_len && !memcmp(a->profile, b->profile, a->profile_len));
    CHECK(a->script_len == b->script_len && !memcmp(a->script, b->script, a->script_len));
    CHECK(a->symbol_len == b->symbol_len && !memcmp(a->symbol, b->symbol, a->symbol_len));
    CHECK(a->side_len == b->side_len && !memcmp(a->side, b->side, a->side_len));
    CHECK(a->name_len == b->name_len && !memcmp(a->name, b->name, a->name_len));
    CHECK(a->trade_id_len == b->trade_id_len && !memcmp(a->trade_id, b->trade_id, a->trade_id_len));
    CHECK(!memcmp(&a->value, &b->value, sizeof(double)));
    CHECK(!memcmp(&a->qty, &b->qty, sizeof(double)));
    CHECK(!memcmp(&a->entry_price, &b->entry_price, sizeof(double)));
    CHECK(!memcmp(&a->exit_price, &b->exit_price, sizeof(double)));
    CHECK(!memcmp(&a->pnl, &b->pnl, sizeof(double)));
    CHECK(!memcmp(&a->fees, &b->fees, sizeof(double)));
    CHECK(a->opened_at_ns == b->opened_at_ns);
    /* lp_map_line clears every record first, so nothing else may differ either. */
    CHECK(!memcmp(a, b, sizeof(*a)));
}

static void check_round_trip(const struct record *rec)
{
    char buf[4096], small[4096];
    struct lp_error err;
    size_t n = 0;
    int w = lp_encode_record(rec, buf, sizeof(buf));
    if (w < 0)
        fprintf(stderr, "fuzz_lp: encode failed (%d)\n", w);
    CHECK(w > 0 && (size_t)w < sizeof(buf) && strlen(buf) == (size_t)w);
    CHECK(lp_encode_record(rec, small, (size_t)w) == -ENOSPC);
    CHECK(lp_encode_record(rec, small, (size_t)w + 1) == w && !memcmp(small, buf, (size_t)w + 1));

    struct lp_map_options mo = {.precision = LP_PREC_NS, .now_ns = -1};
    if (lp_parse_line(buf, (size_t)w, NULL, &reparsed, &err) < 0 ||
        lp_map_line(&reparsed, &mo, back, LP_FIELDS_MAX, &n, &err) < 0) {
        fprintf(stderr, "fuzz_lp: `%s` does not read back: column %zu: %s\n", buf, err.column,
                err.reason);
        abort();
    }
    CHECK(n == 1);
    check_same(rec, &back[0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    size_t pos = 0, lineno = 0, start, len, last = 0;
    /* Vary the precision and the limits with the input so that both get exercised. */
    enum lp_precision prec = (enum lp_precision)(size % 6);
    struct lp_limits lim = {0};
    if (size % 7 == 3) {
        lim.line_max = 64;
        lim.tags_max = 2;
        lim.fields_max = 3;
    }

    while (lp_body_next(body, size, &pos, &lineno, &start, &len)) {
        struct lp_error err;
        CHECK(start + len <= size && pos <= size && lineno > last);
        last = lineno;
        CHECK(len > 0);
        memset(&err, 0, sizeof(err));
        if (lp_parse_line(body + start, len, &lim, &parsed, &err) < 0) {
            check_error(&err, len);
            continue;
        }
        check_parsed(&parsed, body + start, len);
        for (int pass = 0; pass < 2; pass++) {
            struct lp_map_options mo = {
                .profile_tag = NULL,
                .default_profile = pass ? "default" : NULL,
                .precision = prec,
                .now_ns = 1700000000123456789,
            };
            size_t n = 0;
            memset(&err, 0, sizeof(err));
            if (lp_map_line(&parsed, &mo, recs, LP_FIELDS_MAX, &n, &err) < 0) {
                check_error(&err, len);
                continue;
            }
            CHECK(n <= parsed.nfields);
            for (size_t i = 0; i < n; i++)
                check_round_trip(&recs[i]);
        }
    }
    CHECK(pos == size);
    return 0;
}
