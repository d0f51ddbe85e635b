/*
 * cli_args.h: the conventions every telemctl command shares: exit codes, where telemd and its
 * store are found when no flag says, number arguments, and the token from the environment.
 */
#ifndef TELEM_CLI_CLI_ARGS_H
#define TELEM_CLI_CLI_ARGS_H

#include <stdint.h>

/* Exit codes: 0 done; 1 the work failed (rejected lines, unhealthy daemon, unreadable store);
 * 2 the command line is wrong. */
enum cli_exit {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAIL = 1,
    CLI_EXIT_USAGE = 2,
};

#define CLI_DEFAULT_DATA_DIR "./telem-data"
#define CLI_DEFAULT_DB       "sqlite:./telem-data/telem.db"
#define CLI_DEFAULT_SOCKET   "./telem-data/telemd.sock"
#define CLI_DEFAULT_HTTP     "127.0.0.1:8186"
#define CLI_TOKEN_ENV        "TELEM_TOKEN"

/*
 * cli_endpoint picks where telemd is: the --socket or --http flag when one was given (both is
 * a usage error, -EINVAL), else the default socket when it exists, else the default TCP
 * address. Sets exactly one of *socket_path and *http_addr. Borrows the flags.
 */
int cli_endpoint(const char *socket_flag, const char *http_flag, const char **socket_path,
                 const char **http_addr);

/*
 * cli_parse_u64 reads a whole number in [min, max] from text. Returns 0, or -EINVAL after
 * printing "telemctl CMD: FLAG: expected ..." to stderr.
 */
int cli_parse_u64(const char *cmd, const char *flag, const char *text, uint64_t min, uint64_t max,
                  uint64_t *out);

/*
 * cli_token returns the token from the environment variable env_name (TELEM_TOKEN when NULL),
 * or NULL when it is unset or empty. Tokens are never taken from argv, where `ps` shows them.
 */
const char *cli_token(const char *env_name);

#endif
