/*
 * batch_header.c: parser of the Telem-Batch header (see batch_header.h). Every rejection names
 * the part that is wrong, because the client that sent it is usually being written by the
 * person reading the 400.
 */
#include "ingest/batch_header.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static bool batch_producer_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

static int batch_fail(char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "Telem-Batch: %s (expected <producer>:<epoch>:<n>)", what);
    return -EINVAL;
}

/* batch_parse_u64 reads all of p[0..len) as a decimal number without sign. */
static int batch_parse_u64(const char *p, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20)
        return -EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -EINVAL;
        unsigned d = (unsigned)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int batch_header_parse(const char *text, size_t len, struct batch_tag *out, char *err,
                       size_t errlen)
{
    while (len > 0 && (text[0] == ' ' || text[0] == '\t')) {
        text++;
        len--;
    }
    while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t'))
        len--;
    if (len == 0)
        return batch_fail(err, errlen, "empty value");

    const char *c1 = memchr(text, ':', len);
    if (!c1)
        return batch_fail(err, errlen, "missing ':'");
    const char *rest = c1 + 1;
    size_t rest_len = len - (size_t)(rest - text);
    const char *c2 = memchr(rest, ':', rest_len);
    if (!c2)
        return batch_fail(err, errlen, "missing second ':'");
    const char *n_text = c2 + 1;
    size_t n_len = len - (size_t)(n_text - text);
    if (memchr(n_text, ':', n_len))
        return batch_fail(err, errlen, "too many ':'");

    size_t producer_len = (size_t)(c1 - text);
    if (producer_len == 0)
        return batch_fail(err, errlen, "producer is empty");
    if (producer_len > BATCH_PRODUCER_MAX) {
        char what[96];
        snprintf(what, sizeof(what), "producer is longer than %d bytes", BATCH_PRODUCER_MAX);
        return batch_fail(err, errlen, what);
    }
    for (size_t i = 0; i < producer_len; i++) {
        if (!batch_producer_char(text[i]))
            return batch_fail(err, errlen, "producer may hold only A-Z a-z 0-9 . _ -");
    }

    uint64_t epoch, n;
    if (batch_parse_u64(rest, (size_t)(c2 - rest), &epoch) < 0)
        return batch_fail(err, errlen, "epoch is not a whole number");
    if (batch_parse_u64(n_text, n_len, &n) < 0)
        return batch_fail(err, errlen, "n is not a whole number");
    if (n == 0)
        return batch_fail(err, errlen, "n must be 1 or more");

    memcpy(out->producer, text, producer_len);
    out->producer[producer_len] = '\0';
    out->epoch = epoch;
    out->n = n;
    return 0;
}
