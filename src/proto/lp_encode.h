/*
 * lp_encode.h: the canonical line-protocol form of a record, the inverse of lp_map_line().
 *
 * telemctl uses it to send records, the tests and the fuzz target to check that parsing and
 * mapping lose nothing: for every record lp_map_line() can make,
 * lp_map_line(lp_parse_line(lp_encode_record(rec))) gives back the same record. It also holds
 * the one escape rule that the parser, the mapper and the encoder share.
 */
#ifndef TELEM_PROTO_LP_ENCODE_H
#define TELEM_PROTO_LP_ENCODE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/record.h"

/*
 * lp_escapable tells whether a backslash before c is an escape that stands for c alone. Other
 * backslashes are kept as they are. Scanning pairs a backslash with whatever byte follows, so
 * an escaped byte never ends the element it is in.
 */
static inline bool lp_escapable(char c)
{
    return c == ',' || c == ' ' || c == '=' || c == '"' || c == '\\';
}

/*
 * lp_encode_record writes the canonical line for rec into dst (no line ending), in
 * nanoseconds:
 *   trade,profile=P[,script=S][,symbol=X][,side=Y] qty=..,entry_price=..,exit_price=..,pnl=..,
 *     fees=..,opened_at=<ns>i,trade_id="..." <ts_ns>
 *   metric,profile=P[,script=S] <name>=<value> <ts_ns>
 * Only present trade fields are written (a trade with none gets trade_id=""); doubles are
 * written in the shortest form that reads back as the same double. Borrows rec.
 * Returns the bytes written (dst is NUL-terminated, the NUL not counted), -ENOSPC when dst is
 * too small, or -EINVAL when rec cannot be a line: unknown kind, empty profile or metric name,
 * a length over its published limit, a non-finite value, or a NUL or line feed in a string.
 */
int lp_encode_record(const struct record *rec, char *dst, size_t cap);

#endif
