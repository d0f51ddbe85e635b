/*
 * json_text.c: JSON string escaping into evbuffers (see json_text.h).
 */
#include "ingest/json_text.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

/* utf8_valid_len returns the length of the valid UTF-8 sequence at p, or 0. */
static size_t utf8_valid_len(const unsigned char *p, size_t left)
{
    unsigned char c = p[0];
    size_t n;
    uint32_t min, cp;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        min = 0x80;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        min = 0x800;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        min = 0x10000;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

void json_add_string(struct evbuffer *out, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    evbuffer_add(out, "\"", 1);
    size_t run = 0; /* bytes copied as they are, flushed in one call */
    for (size_t i = 0; i < len;) {
        unsigned char c = p[i];
        const char *esc = NULL;
        char tmp[8];
        size_t step = 1;
        if (c == '"') {
            esc = "\\\"";
        } else if (c == '\\') {
            esc = "\\\\";
        } else if (c == '\n') {
            esc = "\\n";
        } else if (c == '\r') {
            esc = "\\r";
        } else if (c == '\t') {
            esc = "\\t";
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(tmp, sizeof(tmp), "\\u%04x", c);
            esc = tmp;
        } else if (c >= 0x80) {
            step = utf8_valid_len(p + i, len - i);
            if (step == 0) {
                esc = "\\ufffd";
                step = 1;
            }
        }
        if (esc) {
            if (run)
                evbuffer_add(out, p + i - run, run);
            run = 0;
            evbuffer_add(out, esc, strlen(esc));
        } else {
            run += step;
        }
        i += step;
    }
    if (run)
        evbuffer_add(out, p + len - run, run);
    evbuffer_add(out, "\"", 1);
}

void json_add_cstring(struct evbuffer *out, const char *s)
{
    json_add_string(out, s, strlen(s));
}
