/*
 * body_gzip.h: inflating `Content-Encoding: gzip` request bodies (Telegraf's InfluxDB outputs
 * send them) with a hard bound on the inflated size, so that a small compressed body can never
 * make telemd hold more than body_max bytes. One inflater per event thread, reused for every
 * request: its zlib state and output buffer are allocated once.
 */
#ifndef TELEM_INGEST_BODY_GZIP_H
#define TELEM_INGEST_BODY_GZIP_H

#include <stddef.h>

struct body_gzip;

/* body_gzip_create makes an inflater. Caller frees with body_gzip_destroy. Never NULL. */
struct body_gzip *body_gzip_create(void);

/* body_gzip_destroy frees the inflater and its buffer. Accepts NULL. */
void body_gzip_destroy(struct body_gzip *gz);

/*
 * body_gzip_inflate inflates the gzip data in[0..len) (one or more gzip members) into a buffer
 * owned by gz: *out and *out_len stay valid until the next call on gz. Borrows in.
 * Returns 0; -EFBIG when the inflated body would exceed limit bytes; -EINVAL when the data is
 * not gzip, is corrupt or is cut short (err says which).
 */
int body_gzip_inflate(struct body_gzip *gz, const void *in, size_t len, size_t limit,
                      const char **out, size_t *out_len, char *err, size_t errlen);

/*
 * body_gzip_trim releases the output buffer when it has grown large, once the caller is done
 * with the last output, so that one huge body does not pin memory for ever.
 */
void body_gzip_trim(struct body_gzip *gz);

#endif
