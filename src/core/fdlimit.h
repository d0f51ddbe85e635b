/*
 * fdlimit.h: making room for many open sockets. Thousands of senders each hold a connection,
 * and Linux starts processes with a soft limit of 1024 descriptors.
 */
#ifndef TELEM_CORE_FDLIMIT_H
#define TELEM_CORE_FDLIMIT_H

#include <stdint.h>

/*
 * fdlimit_raise raises the soft RLIMIT_NOFILE to want, or to the hard limit when that is lower,
 * and never lowers it. Returns the soft limit now in force, or a negative errno.
 */
int64_t fdlimit_raise(uint64_t want);

#endif
