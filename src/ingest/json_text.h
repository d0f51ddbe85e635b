/*
 * json_text.h: writing JSON strings into libevent buffers, for the small JSON bodies telemd
 * answers with (write errors, /health). Text that came from a client is escaped and invalid
 * UTF-8 is replaced, so an answer is always valid JSON whatever the request held.
 */
#ifndef TELEM_INGEST_JSON_TEXT_H
#define TELEM_INGEST_JSON_TEXT_H

#include <stddef.h>

struct evbuffer;

/* json_add_string appends s[0..len) to out as a quoted JSON string. Borrows s. */
void json_add_string(struct evbuffer *out, const char *s, size_t len);

/* json_add_cstring is json_add_string for a NUL-terminated s. */
void json_add_cstring(struct evbuffer *out, const char *s);

#endif
