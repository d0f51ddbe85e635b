/*
 * percent.h: %XX decoding, for the URLs of sinks and the query strings of HTTP requests.
 */
#ifndef TELEM_CORE_PERCENT_H
#define TELEM_CORE_PERCENT_H

#include <stdbool.h>
#include <stddef.h>

/*
 * percent_decode copies s[0..len) into out (cap bytes, NUL included), decoding %XX escapes and,
 * when plus_is_space, '+' as a space (query strings). Returns the decoded length, -EINVAL for
 * a malformed escape or an encoded NUL, or -ENAMETOOLONG when the result does not fit.
 */
int percent_decode(const char *s, size_t len, bool plus_is_space, char *out, size_t cap);

#endif
