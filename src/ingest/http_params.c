/*
 * http_params.c: query-string lookup for the HTTP endpoints (see http_params.h).
 */
#include "core/percent.h"
#include "ingest/http_params.h"

#include <errno.h>
#include <string.h>

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
            return percent_decode(eq + 1, len - key_len - 1, true, out, cap);
        }
        if (!amp)
            break;
        p = amp + 1;
    }
    return -ENOENT;
}
