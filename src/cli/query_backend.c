/*
 * query_backend.c: the list of stores telemctl can read, looked up by URL scheme. A new store
 * adds its table (query_<scheme>.c, declared in query_backend.h) to query_backends below.
 */
#include "cli/query_backend.h"

#include <stdio.h>
#include <string.h>

static const struct query_backend_ops *const query_backends[] = {
    &query_sqlite_ops,
    &query_mariadb_ops,
};

const struct query_backend_ops *query_backend_for_url(const char *url)
{
    if (!url)
        return NULL;
    const char *colon = strchr(url, ':');
    const char *slash = strchr(url, '/');
    if (!colon || (slash && slash < colon))
        return &query_sqlite_ops; /* a bare path: the embedded default store */
    size_t n = (size_t)(colon - url);
    for (size_t i = 0; i < sizeof(query_backends) / sizeof(query_backends[0]); i++) {
        const char *s = query_backends[i]->scheme;
        if (strlen(s) == n && strncmp(url, s, n) == 0)
            return query_backends[i];
    }
    return NULL;
}

const char *query_backend_schemes(void)
{
    static char list[128];
    if (!list[0]) {
        size_t n = 0;
        for (size_t i = 0; i < sizeof(query_backends) / sizeof(query_backends[0]); i++)
            n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "",
                                  query_backends[i]->scheme);
    }
    return list;
}
