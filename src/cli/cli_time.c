/*
 * cli_time.c: parsing of telemctl's time arguments: RFC 3339 (or a bare date), Unix seconds,
 * or a relative "-1h". The parser reads digits by hand rather than through strptime so that
 * every malformed argument is rejected instead of half-read.
 */
#include "cli/cli_time.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* cli_digits reads exactly n decimal digits at *p and advances it. Returns -1 if they are not. */
static int cli_digits(const char **p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    return v;
}

static int cli_days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

static int cli_parse_rfc3339(const char *text, int64_t *out_us)
{
    const char *p = text;
    int year = cli_digits(&p, 4);
    if (year < 0 || *p++ != '-')
        return -EINVAL;
    int month = cli_digits(&p, 2);
    if (month < 1 || month > 12 || *p++ != '-')
        return -EINVAL;
    int day = cli_digits(&p, 2);
    if (day < 1 || day > cli_days_in_month(year, month))
        return -EINVAL;

    int hour = 0, min = 0, sec = 0;
    int64_t frac_us = 0;
    int64_t offset_s = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        hour = cli_digits(&p, 2);
        if (hour < 0 || hour > 23 || *p++ != ':')
            return -EINVAL;
        min = cli_digits(&p, 2);
        if (min < 0 || min > 59)
            return -EINVAL;
        if (*p == ':') {
            p++;
            sec = cli_digits(&p, 2);
            if (sec < 0 || sec > 60)
                return -EINVAL;
            if (*p == '.') {
                p++;
                int64_t scale = 100000;
                if (!isdigit((unsigned char)*p))
                    return -EINVAL;
                for (; isdigit((unsigned char)*p); p++) {
                    frac_us += (*p - '0') * scale; /* digits past microseconds are dropped */
                    scale /= 10;
                }
            }
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1;
            int oh = cli_digits(&p, 2);
            if (oh < 0 || oh > 23 || *p++ != ':')
                return -EINVAL;
            int om = cli_digits(&p, 2);
            if (om < 0 || om > 59)
                return -EINVAL;
            offset_s = sign * (oh * 3600 + om * 60);
        } else {
            return -EINVAL; /* a time of day needs its zone: local time would be a guess */
        }
    }
    if (*p)
        return -EINVAL;

    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = month - 1,
                    .tm_mday = day,
                    .tm_hour = hour,
                    .tm_min = min,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    *out_us = ((int64_t)t - offset_s) * 1000000 + frac_us;
    return 0;
}

static int cli_parse_relative(const char *text, int64_t now_us, int64_t *out_us)
{
    char *end;
    errno = 0;
    double amount = strtod(text + 1, &end);
    if (errno || end == text + 1 || !isdigit((unsigned char)text[1]) || amount > 1e9)
        return -EINVAL;
    double unit_s;
    if (strcmp(end, "s") == 0)
        unit_s = 1;
    else if (strcmp(end, "m") == 0)
        unit_s = 60;
    else if (strcmp(end, "h") == 0)
        unit_s = 3600;
    else if (strcmp(end, "d") == 0)
        unit_s = 86400;
    else if (strcmp(end, "w") == 0)
        unit_s = 7 * 86400;
    else
        return -EINVAL;
    *out_us = now_us - (int64_t)(amount * unit_s * 1e6);
    return 0;
}

static int cli_parse_unix(const char *text, int64_t *out_us)
{
    char *end;
    errno = 0;
    size_t digits = strspn(text, "0123456789");
    if (digits == 0 ||
        (text[digits] && (text[digits] != '.' || !text[digits + 1] ||
                          text[digits + 1 + strspn(text + digits + 1, "0123456789")])))
        return -EINVAL; /* only DIGITS or DIGITS.DIGITS, no signs or exponents */
    double secs = strtod(text, &end);
    if (errno || *end || secs > 9.2e12)
        return -EINVAL;
    *out_us = (int64_t)(secs * 1e6 + 0.5);
    return 0;
}

int cli_time_parse(const char *text, int64_t now_us, int64_t *out_us, char *err, size_t errlen)
{
    int rc = -EINVAL;
    if (!text || !*text)
        rc = -EINVAL;
    else if (strcmp(text, "now") == 0) {
        *out_us = now_us;
        rc = 0;
    } else if (text[0] == '-')
        rc = cli_parse_relative(text, now_us, out_us);
    else if (strlen(text) >= 10 && text[4] == '-')
        rc = cli_parse_rfc3339(text, out_us);
    else
        rc = cli_parse_unix(text, out_us);
    if (rc < 0)
        snprintf(err, errlen,
                 "bad time '%s': expected RFC 3339 (2026-11-27T10:00:00Z), Unix seconds "
                 "(1795860000) or a relative time (-90s, -15m, -1h, -7d, -2w)",
                 text ? text : "");
    return rc;
}
