/*
 * body_gzip.c: bounded gzip inflation of request bodies (see body_gzip.h). The output buffer
 * grows by doubling up to limit + 1 bytes; producing that last byte is how an over-limit body
 * is told apart from one that is exactly limit bytes long.
 */
#include "ingest/body_gzip.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/alloc.h"

/* Buffers above this size are released by body_gzip_trim. */
#define BODY_GZIP_RETAIN (4u << 20)
#define BODY_GZIP_FIRST  (64u << 10)

struct body_gzip {
    z_stream zs;
    char *buf;
    size_t cap;
};

struct body_gzip *body_gzip_create(void)
{
    struct body_gzip *gz = xcalloc(1, sizeof(*gz));
    /* 16 + MAX_WBITS: gzip wrapper only, as Content-Encoding: gzip promises. */
    int rc = inflateInit2(&gz->zs, 16 + MAX_WBITS);
    if (rc == Z_MEM_ERROR) {
        fprintf(stderr, "telem: out of memory in inflateInit2\n");
        abort();
    }
    return gz;
}

void body_gzip_destroy(struct body_gzip *gz)
{
    if (!gz)
        return;
    inflateEnd(&gz->zs);
    free(gz->buf);
    free(gz);
}

void body_gzip_trim(struct body_gzip *gz)
{
    if (gz && gz->cap > BODY_GZIP_RETAIN) {
        free(gz->buf);
        gz->buf = NULL;
        gz->cap = 0;
    }
}

static int gzip_corrupt(struct body_gzip *gz, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "gzip: %s%s%s%s", what, gz->zs.msg ? " (" : "",
             gz->zs.msg ? gz->zs.msg : "", gz->zs.msg ? ")" : "");
    return -EINVAL;
}

/* gzip_grow makes room for more output; the buffer never exceeds limit + 1 bytes. */
static void gzip_grow(struct body_gzip *gz, size_t used, size_t limit)
{
    size_t hard = limit < SIZE_MAX ? limit + 1 : limit;
    size_t cap = gz->cap ? gz->cap * 2 : BODY_GZIP_FIRST;
    if (cap > hard)
        cap = hard;
    if (cap <= used)
        return;
    gz->buf = xrealloc(gz->buf, cap);
    gz->cap = cap;
}

int body_gzip_inflate(struct body_gzip *gz, const void *in, size_t len, size_t limit,
                      const char **out, size_t *out_len, char *err, size_t errlen)
{
    z_stream *zs = &gz->zs;
    inflateReset(zs);
    zs->msg = NULL;
    const uint8_t *next = in;
    size_t left = len;
    size_t used = 0;
    if (left == 0)
        return gzip_corrupt(gz, "empty body", err, errlen);

    for (;;) {
        if (used == gz->cap)
            gzip_grow(gz, used, limit);
        /* zlib counts in uInt; feed at most 1 GiB per call. */
        size_t in_chunk = left > (1u << 30) ? (1u << 30) : left;
        size_t out_room = gz->cap - used;
        if (out_room > (1u << 30))
            out_room = 1u << 30;
        zs->next_in = (Bytef *)next;
        zs->avail_in = (uInt)in_chunk;
        zs->next_out = (Bytef *)gz->buf + used;
        zs->avail_out = (uInt)out_room;
        int rc = inflate(zs, Z_NO_FLUSH);
        size_t consumed = in_chunk - zs->avail_in;
        next += consumed;
        left -= consumed;
        used += out_room - zs->avail_out;
        if (used > limit) {
            snprintf(err, errlen, "decompressed body over %zu bytes", limit);
            return -EFBIG;
        }
        if (rc == Z_STREAM_END) {
            if (left == 0)
                break;
            /* Another gzip member follows (concatenated gzip is valid gzip). */
            if (left < 2 || next[0] != 0x1f || next[1] != 0x8b)
                return gzip_corrupt(gz, "trailing bytes after the gzip data", err, errlen);
            inflateReset(zs);
            continue;
        }
        if (rc == Z_OK)
            continue;
        if (rc == Z_BUF_ERROR) {
            if (zs->avail_out == 0)
                continue; /* needs more room: grow on the next turn */
            if (left == 0)
                return gzip_corrupt(gz, "body is cut short", err, errlen);
            continue;
        }
        if (rc == Z_MEM_ERROR) {
            snprintf(err, errlen, "gzip: out of memory");
            return -ENOMEM;
        }
        return gzip_corrupt(gz, "corrupt body", err, errlen);
    }
    *out = gz->buf ? gz->buf : "";
    *out_len = used;
    return 0;
}
