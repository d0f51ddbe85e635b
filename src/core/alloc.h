/*
 * alloc.h: allocation for the daemon and tools, which may stop on out-of-memory.
 *
 * The daemon has nothing better to do when malloc fails than to stop before it acknowledges
 * anything it cannot keep, so these wrappers abort with a message instead of returning NULL.
 * The client library (src/client) never uses them: it reports TELEM_ENOMEM instead.
 */
#ifndef TELEM_CORE_ALLOC_H
#define TELEM_CORE_ALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

#endif
