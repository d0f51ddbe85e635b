/*
 * mariadb_time.c: nanoseconds to DATETIME(6) and back, by the days-from-civil arithmetic of
 * Howard Hinnant's date algorithms (proleptic Gregorian calendar, eras of 400 years).
 */
#include "sink/mariadb/mariadb_time.h"

#include <errno.h>
#include <string.h>

#define US_PER_DAY (86400LL * 1000000)

int64_t mariadb_time_us(int64_t ns)
{
    int64_t us = ns / 1000;
    if (ns % 1000 < 0)
        us--;
    return us;
}

int64_t mariadb_time_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

int mariadb_time_from_us(int64_t us, MYSQL_TIME *t)
{
    if (us < MARIADB_TIME_MIN_US || us >= MARIADB_TIME_END_US)
        return -ERANGE;
    int64_t days = us / US_PER_DAY;
    int64_t rem = us % US_PER_DAY;
    if (rem < 0) {
        rem += US_PER_DAY;
        days--;
    }
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;

    unsigned secs = (unsigned)(rem / 1000000);
    memset(t, 0, sizeof(*t));
    t->year = (unsigned)y;
    t->month = m;
    t->day = d;
    t->hour = secs / 3600;
    t->minute = secs / 60 % 60;
    t->second = secs % 60;
    t->second_part = (unsigned long)(rem % 1000000);
    t->time_type = MYSQL_TIMESTAMP_DATETIME;
    return 0;
}

int64_t mariadb_time_to_us(const MYSQL_TIME *t)
{
    int64_t days = mariadb_time_days_from_civil(t->year, t->month, t->day);
    int64_t secs = days * 86400 + t->hour * 3600 + t->minute * 60 + t->second;
    return secs * 1000000 + (int64_t)t->second_part;
}

/* put_digits writes v as exactly n decimal digits. */
static char *put_digits(char *p, unsigned long v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + n;
}

int mariadb_time_format(const MYSQL_TIME *t, char *out)
{
    char *p = out;
    p = put_digits(p, t->year, 4);
    *p++ = '-';
    p = put_digits(p, t->month, 2);
    *p++ = '-';
    p = put_digits(p, t->day, 2);
    *p++ = ' ';
    p = put_digits(p, t->hour, 2);
    *p++ = ':';
    p = put_digits(p, t->minute, 2);
    *p++ = ':';
    p = put_digits(p, t->second, 2);
    *p++ = '.';
    p = put_digits(p, t->second_part, 6);
    *p = '\0';
    return (int)(p - out);
}
