/*
 * http_auth.c: token checks for the HTTP endpoints (see http_auth.h).
 */
#include "ingest/http_auth.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

bool http_token_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    volatile unsigned char diff = (unsigned char)(alen != blen);
    for (size_t i = 0; i < blen; i++) {
        unsigned char x = i < alen ? (unsigned char)a[i] : 0;
        diff |= (unsigned char)(x ^ (unsigned char)b[i]);
    }
    return diff == 0;
}

static int base64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* base64_decode decodes src (padding optional) into dst; returns the length or -1. */
static long base64_decode(const char *src, unsigned char *dst, size_t cap)
{
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (const char *p = src; *p && *p != '='; p++) {
        int v = base64_value((unsigned char)*p);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= cap)
                return -1;
            dst[n++] = (unsigned char)(acc >> bits);
        }
    }
    return (long)n;
}

/* auth_scheme returns the credentials after "scheme " when header uses scheme, else NULL. */
static const char *auth_scheme(const char *header, const char *scheme)
{
    size_t n = strlen(scheme);
    if (strncasecmp(header, scheme, n) != 0 || (header[n] != ' ' && header[n] != '\t'))
        return NULL;
    const char *p = header + n;
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

bool http_auth_allows(const char *token, const char *authorization, const char *query_p)
{
    if (!token || !token[0])
        return true;
    size_t token_len = strlen(token);
    if (authorization) {
        const char *cred = auth_scheme(authorization, "Token");
        if (!cred)
            cred = auth_scheme(authorization, "Bearer");
        if (cred) {
            size_t len = strlen(cred);
            while (len > 0 && (cred[len - 1] == ' ' || cred[len - 1] == '\t'))
                len--;
            return http_token_equal(cred, len, token, token_len);
        }
        cred = auth_scheme(authorization, "Basic");
        if (cred) {
            unsigned char plain[512];
            long n = base64_decode(cred, plain, sizeof(plain));
            if (n < 0)
                return false;
            unsigned char *colon = memchr(plain, ':', (size_t)n);
            if (!colon)
                return false;
            const char *pass = (const char *)colon + 1;
            size_t pass_len = (size_t)n - (size_t)(colon + 1 - plain);
            return http_token_equal(pass, pass_len, token, token_len);
        }
    }
    if (query_p)
        return http_token_equal(query_p, strlen(query_p), token, token_len);
    return false;
}
