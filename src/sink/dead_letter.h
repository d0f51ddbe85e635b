/*
 * dead_letter.h: the quarantine file of records a store refused for what is in them.
 *
 * When a sink answers SINK_ERROR for a single record, the worker writes that record here and
 * moves on, so one bad row never blocks the rows behind it. The file is JSON lines: one object
 * per record with every field of the record, its seq, the sink's name, the store's reason and
 * the time of quarantine, e.g.
 *   {"time":"2026-11-27T02:46:09.123456Z","sink":"main","reason":"...","seq":37,
 *    "kind":"trade","ts_ns":...,"profile":"p1","script":"","symbol":"BTC","side":"buy",
 *    "qty":1.5,"entry_price":null,...,"opened_at_ns":null,"trade_id":null}
 * Optional trade fields that were absent are null; non-finite numbers are the strings "nan",
 * "inf" and "-inf". Each line is fsynced before dead_letter_write returns, because the spool
 * may drop the record as soon as the sink's cursor passes it.
 *
 * Threads: one dead_letter may be shared by every lane of a sink; writes are serialised.
 */
#ifndef TELEM_SINK_DEAD_LETTER_H
#define TELEM_SINK_DEAD_LETTER_H

#include <stddef.h>
#include <stdint.h>

#include "core/record.h"

struct dead_letter;

/*
 * dead_letter_create prepares quarantine to path (copied). The file is created (0640) or
 * appended to on the first write, so a sink that never quarantines leaves no file. Caller frees
 * with dead_letter_destroy.
 */
struct dead_letter *dead_letter_create(const char *path);

/* dead_letter_path returns the file's path (owned by dl). */
const char *dead_letter_path(const struct dead_letter *dl);

/*
 * dead_letter_write appends rec as one JSON line, with the sink's name and the reason the store
 * gave, and fsyncs it. Borrows every argument. Thread-safe. Returns 0, or a negative errno when
 * the file could not be opened, written or synced (then nothing of the line is kept that a
 * later line could be glued to: a partial write is cut off).
 */
int dead_letter_write(struct dead_letter *dl, const struct record *rec, const char *sink,
                      const char *reason);

/*
 * dead_letter_format writes rec's JSON line (ending in '\n', NUL-terminated) into dst, stamped
 * wall_ns. Sink names and reasons longer than 256 bytes are cut. Pure. Returns the length, or
 * -ENOSPC when cap is too small (DEAD_LETTER_LINE_MAX always fits).
 */
int dead_letter_format(const struct record *rec, const char *sink, const char *reason,
                       int64_t wall_ns, char *dst, size_t cap);

/* A buffer this size always holds dead_letter_format's line. */
#define DEAD_LETTER_LINE_MAX 8192

/* dead_letter_destroy closes the file and frees dl. Accepts NULL. */
void dead_letter_destroy(struct dead_letter *dl);

#endif
