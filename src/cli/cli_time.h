/*
 * cli_time.h: the time arguments telemctl accepts (--since, --until).
 *
 * Three spellings, all meaning an instant in UTC:
 *   RFC 3339       2026-11-27T10:00:00Z, 2026-11-27T10:00:00.250+01:00, 2026-11-27 (midnight UTC)
 *   Unix seconds   1795860000 or 1795860000.5
 *   relative       -90s, -15m, -1h, -7d, -2w (that long before now); "now"
 * A time of day must carry its zone (Z or +hh:mm): local time would be a guess.
 * The result is microseconds since the epoch, the unit every store keeps.
 */
#ifndef TELEM_CLI_CLI_TIME_H
#define TELEM_CLI_CLI_TIME_H

#include <stddef.h>
#include <stdint.h>

/*
 * cli_time_parse reads text into *out_us. now_us is "now" for relative times. Returns 0, or
 * -EINVAL with err saying what was expected.
 */
int cli_time_parse(const char *text, int64_t now_us, int64_t *out_us, char *err, size_t errlen);

#endif
