/*
 * http_params.h: reading one parameter from a URL query string ("precision=ms&db=x") without
 * allocating, for the few parameters the write endpoints look at.
 */
#ifndef TELEM_INGEST_HTTP_PARAMS_H
#define TELEM_INGEST_HTTP_PARAMS_H

#include <stddef.h>

/*
 * http_query_get finds name in query (may be NULL) and writes its percent-decoded value
 * ('+' is a space) NUL-terminated into out. Returns the value's length; -ENOENT when absent;
 * -ENAMETOOLONG when it does not fit in cap - 1 bytes; -EINVAL for a bad %-escape or a %00.
 */
int http_query_get(const char *query, const char *name, char *out, size_t cap);

#endif
