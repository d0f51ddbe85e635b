/*
 * cli_args.c: defaults and argument checks shared by telemctl's commands.
 */
#include "cli/cli_args.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

int cli_endpoint(const char *socket_flag, const char *http_flag, const char **socket_path,
                 const char **http_addr)
{
    *socket_path = NULL;
    *http_addr = NULL;
    if (socket_flag && http_flag)
        return -EINVAL;
    if (socket_flag) {
        *socket_path = socket_flag;
        return 0;
    }
    if (http_flag) {
        *http_addr = http_flag;
        return 0;
    }
    struct stat st;
    if (stat(CLI_DEFAULT_SOCKET, &st) == 0 && S_ISSOCK(st.st_mode))
        *socket_path = CLI_DEFAULT_SOCKET;
    else
        *http_addr = CLI_DEFAULT_HTTP;
    return 0;
}

int cli_parse_u64(const char *cmd, const char *flag, const char *text, uint64_t min, uint64_t max,
                  uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-' || v < min || v > max) {
        fprintf(stderr,
                "telemctl %s: %s: expected a whole number from %" PRIu64 " to %" PRIu64
                ", got '%s'\n",
                cmd, flag, min, max, text);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

const char *cli_token(const char *env_name)
{
    const char *t = getenv(env_name ? env_name : CLI_TOKEN_ENV);
    return t && *t ? t : NULL;
}
