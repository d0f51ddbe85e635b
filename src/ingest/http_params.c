/*
 * http_params.c: query-string lookup for the HTTP endpoints (see http_params.h).
 */
#include "ingest/http_params.h"

#include <errno.h>
#include <string.h>

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int query_decode(const char *p, size_t len, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= len)
                return -EINVAL;
            int hi = hex_value(p[i + 1]);
            int lo = hex_value(p[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -EINVAL;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (n + 1 >= cap)
            return -ENAMETOOLONG;
        out[n++] = c;
    }
    out[n] = '\0';
    return (int)n;
}

int http_query_get(const char *query, const char *name, char *out, size_t cap)
{
    if (!query || cap == 0)
        return -ENOENT;
    size_t name_len = strlen(name);
    const char *p = query;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t key_len = eq ? (size_t)(eq - p) : len;
        if (key_len == name_len && memcmp(p, name, name_len) == 0) {
            if (!eq) {
                out[0] = '\0';
                return 0;
            }
            return query_decode(eq + 1, len - key_len - 1, out, cap);
        }
        if (!amp)
            break;
        p = amp + 1;
    }
    return -ENOENT;
}
