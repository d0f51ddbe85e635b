/*
 * cmd_loadgen.h: the `telemctl loadgen` command (see loadgen.h for the engine).
 */
#ifndef TELEM_CLI_CMD_LOADGEN_H
#define TELEM_CLI_CMD_LOADGEN_H

/* cmd_loadgen runs `telemctl loadgen ARGS`; argv[0] is "loadgen". Returns the exit status. */
int cmd_loadgen(int argc, char **argv);

#endif
