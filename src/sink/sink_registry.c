/*
 * sink_registry.c: the sinks compiled into this build, looked up by the scheme of a sink's URL.
 * SQLite is always built; src/sink/meson.build defines TELEM_SINK_MARIADB and TELEM_SINK_REDIS
 * when those folders are part of the build.
 */
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "sink/sink.h"

static const struct sink_ops *const sink_tables[] = {
    &sink_sqlite_ops,
#ifdef TELEM_SINK_MARIADB
    &sink_mariadb_ops,
#endif
#ifdef TELEM_SINK_REDIS
    &sink_redis_ops,
#endif
};

const struct sink_ops *sink_ops_for_url(const char *url)
{
    if (!url)
        return NULL;
    for (size_t i = 0; i < sizeof(sink_tables) / sizeof(sink_tables[0]); i++) {
        const char *scheme = sink_tables[i]->scheme;
        size_t len = strlen(scheme);
        /* URL schemes are case-insensitive (RFC 3986, 3.1). */
        if (strncasecmp(url, scheme, len) == 0 && url[len] == ':')
            return sink_tables[i];
    }
    return NULL;
}
