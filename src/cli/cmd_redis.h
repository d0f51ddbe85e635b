/*
 * cmd_redis.h: the entry point of `telemctl redis` (cmd_redis.c), kept beside it like
 * cmd_loadgen.h so that the Redis command can be wired into telemctl's table on its own.
 */
#ifndef TELEM_CLI_CMD_REDIS_H
#define TELEM_CLI_CMD_REDIS_H

/*
 * cmd_redis runs `telemctl redis rebuild ...` (argv[0] is "redis"). Returns an enum cli_exit:
 * 0 rebuilt, 1 the rebuild failed, 2 bad usage.
 */
int cmd_redis(int argc, char **argv);

#endif
