/*
 * batch_header.h: the `Telem-Batch: <producer>:<epoch>:<n>` request header that numbers a
 * client's batches, so that a retry of a batch whose 204 was lost is recognised and not stored
 * twice (DESIGN.md, "Contracts every part relies on", Client batches). Pure: text in, struct
 * batch_tag out, no I/O and no allocation.
 */
#ifndef TELEM_INGEST_BATCH_HEADER_H
#define TELEM_INGEST_BATCH_HEADER_H

#include <stddef.h>

#include "spool/frame.h"

/*
 * batch_header_parse reads text[0..len) (surrounding spaces and tabs allowed) into out:
 * producer is 1..BATCH_PRODUCER_MAX bytes of [A-Za-z0-9._-], epoch a decimal uint64, n a
 * decimal uint64 >= 1, no signs, no empty parts, no extra colons. Borrows text. Returns 0, or
 * -EINVAL with err saying what is wrong ("Telem-Batch: n must be 1 or more").
 */
int batch_header_parse(const char *text, size_t len, struct batch_tag *out, char *err,
                       size_t errlen);

#endif
