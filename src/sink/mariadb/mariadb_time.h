/*
 * mariadb_time.h: converting telem's nanosecond times to MariaDB's DATETIME(6) and back.
 *
 * Records carry nanoseconds since the Unix epoch, UTC; MariaDB keeps DATETIME(6), microseconds
 * without a time zone, which telem always fills with UTC. The conversion floors to the
 * microsecond (so -1 ns is 1969-12-31 23:59:59.999999, as in the SQLite store) and is done by
 * arithmetic rather than gmtime_r, because the write path converts every row. DATETIME holds
 * the years 1000 to 9999; a time outside them is a data error of its record. Pure functions.
 */
#ifndef TELEM_SINK_MARIADB_MARIADB_TIME_H
#define TELEM_SINK_MARIADB_MARIADB_TIME_H

#include <stdint.h>

#include <mysql.h>

/* Microseconds since the epoch of 1000-01-01 00:00:00 and of 10000-01-01 00:00:00. */
#define MARIADB_TIME_MIN_US (-30610224000LL * 1000000)
#define MARIADB_TIME_END_US (253402300800LL * 1000000)

/* mariadb_time_us floors nanoseconds to microseconds. */
int64_t mariadb_time_us(int64_t ns);

/*
 * mariadb_time_from_us fills *t (a DATETIME) with the UTC civil time of us microseconds since
 * the epoch. Returns 0, or -ERANGE (t untouched) outside the years 1000 to 9999.
 */
int mariadb_time_from_us(int64_t us, MYSQL_TIME *t);

/* mariadb_time_to_us returns the microseconds since the epoch of the UTC civil time *t. */
int64_t mariadb_time_to_us(const MYSQL_TIME *t);

/* mariadb_time_days_from_civil returns the days since 1970-01-01 of a proleptic Gregorian date. */
int64_t mariadb_time_days_from_civil(int64_t y, unsigned m, unsigned d);

/*
 * mariadb_time_format writes "YYYY-MM-DD hh:mm:ss.uuuuuu" (26 characters and a NUL) into out,
 * which holds at least 27 bytes. Returns the length.
 */
int mariadb_time_format(const MYSQL_TIME *t, char *out);

#endif
