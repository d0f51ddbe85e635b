/*
 * crc32c.h: CRC-32C (Castagnoli), the checksum of spool frames.
 *
 * Uses the SSE4.2 crc32 instruction when the CPU has it (checked once), else a table.
 */
#ifndef TELEM_CORE_CRC32C_H
#define TELEM_CORE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* crc32c extends crc (0 to start) over buf[0..len). */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

#endif
