/*
 * http_auth.h: the optional token that guards every endpoint but /ping and /health.
 *
 * Clients present it the ways InfluxDB clients do: `Authorization: Token X` (2.x clients),
 * `Authorization: Bearer X`, `Authorization: Basic base64(user:X)` or the `p=X` query parameter
 * (1.x clients with a username and password; the username is ignored). The comparison takes
 * the same time whatever the presented value, and nothing here ever logs the token.
 */
#ifndef TELEM_INGEST_HTTP_AUTH_H
#define TELEM_INGEST_HTTP_AUTH_H

#include <stdbool.h>
#include <stddef.h>

/*
 * http_auth_allows returns true when token is NULL or empty (no token configured), or when
 * the Authorization header value (may be NULL) or the `p` query value (may be NULL) carries
 * exactly token. Borrows everything.
 */
bool http_auth_allows(const char *token, const char *authorization, const char *query_p);

/* http_token_equal compares a[0..alen) with b[0..blen) in time that depends only on blen. */
bool http_token_equal(const char *a, size_t alen, const char *b, size_t blen);

#endif
