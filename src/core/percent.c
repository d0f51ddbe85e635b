/*
 * percent.c: %XX decoding (see percent.h).
 */
#include "core/percent.h"

#include <errno.h>

static int percent_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int percent_decode(const char *s, size_t len, bool plus_is_space, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '+' && plus_is_space) {
            c = ' ';
        } else if (c == '%') {
            int hi = i + 1 < len ? percent_hex(s[i + 1]) : -1;
            int lo = i + 2 < len ? percent_hex(s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -EINVAL;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (o + 1 >= cap)
            return -ENAMETOOLONG;
        out[o++] = c;
    }
    if (cap == 0)
        return -ENAMETOOLONG;
    out[o] = '\0';
    return (int)o;
}
