/*
 * record.c: what is computed from a record alone, such as the lane it belongs to.
 */
#include "core/record.h"

unsigned record_lane(const struct record *rec, unsigned lanes)
{
    /* FNV-1a over the profile: stable across runs and hosts, so lanes never reshuffle. */
    uint32_t h = 2166136261u;
    for (unsigned i = 0; i < rec->profile_len; i++) {
        h ^= (uint8_t)rec->profile[i];
        h *= 16777619u;
    }
    return lanes <= 1 ? 0 : h % lanes;
}
