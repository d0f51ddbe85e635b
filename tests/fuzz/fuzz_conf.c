/*
 * fuzz_conf.c: libFuzzer target for telemd's INI configuration loader. Any byte string is
 * loaded as a config file from memory, then finished (derived settings, cross-checks, sink
 * URL schemes); the loader must never crash, leak or read out of bounds, whatever it is fed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "daemon/telemd_conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The environment must not make runs differ. */
    static int once;
    if (!once) {
        unsetenv("TELEM_TOKEN");
        once = 1;
    }
    struct telemd_conf c;
    telemd_conf_init(&c);
    if (telemd_conf_load_buffer(&c, (const char *)data, size, "fuzz.ini") == 0)
        telemd_conf_finish(&c);
    telemd_conf_free(&c);
    return 0;
}
