/*
 * producers.c: the client-batch table (see producers.h for the rule it enforces).
 *
 * Entries live in one array allocated at creation; a hash index with linear probing (sized at
 * least twice the bound, deletions by backward shift, so no tombstones) finds them by producer
 * name, and a doubly linked list through the array orders them from the most recently seen
 * (head) to the least (tail) for idle expiry and eviction. Nothing is allocated after
 * producers_create.
 */
#include "spool/producers.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

#define NIL UINT32_MAX

struct producer_entry {
    char producer[BATCH_PRODUCER_MAX + 1];
    uint8_t len;
    bool used;
    bool prev_valid; /* prev_* hold the last durable state of this producer */
    uint32_t hash;
    uint64_t epoch;
    uint64_t last_n;
    uint64_t last_seen; /* wall seconds */
    uint64_t ticket;    /* ticket of the last recorded batch; 0 when loaded from disk */
    uint64_t prev_epoch;
    uint64_t prev_n;
    uint64_t prev_ticket;
    uint32_t newer; /* towards the head of the recency list, or the free list's next */
    uint32_t older;
};

struct producers {
    struct producer_entry *e;
    unsigned max;
    unsigned idle_s;
    uint32_t *slots; /* entry index, or NIL */
    uint32_t mask;
    uint32_t head; /* most recently seen */
    uint32_t tail; /* least recently seen */
    uint32_t free_list;
    size_t count;
};

/* FNV-1a over the producer name. */
static uint32_t producer_hash(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)p[i];
        h *= 16777619u;
    }
    return h;
}

struct producers *producers_create(unsigned max, unsigned idle_s)
{
    assert(max >= 1);
    struct producers *pt = xcalloc(1, sizeof(*pt));
    pt->max = max;
    pt->idle_s = idle_s;
    pt->e = xcalloc(max, sizeof(*pt->e));
    size_t nslots = 8;
    while (nslots < 2 * (size_t)max)
        nslots *= 2;
    pt->slots = xmalloc(nslots * sizeof(*pt->slots));
    memset(pt->slots, 0xff, nslots * sizeof(*pt->slots));
    pt->mask = (uint32_t)(nslots - 1);
    pt->head = pt->tail = NIL;
    for (unsigned i = 0; i < max; i++)
        pt->e[i].newer = i + 1 < max ? i + 1 : NIL;
    pt->free_list = 0;
    return pt;
}

void producers_destroy(struct producers *pt)
{
    if (!pt)
        return;
    free(pt->slots);
    free(pt->e);
    free(pt);
}

/* find_slot returns the slot holding producer p[0..n), or the empty slot where it would go. */
static uint32_t find_slot(const struct producers *pt, const char *p, size_t n, uint32_t h)
{
    uint32_t s = h & pt->mask;
    for (;;) {
        uint32_t i = pt->slots[s];
        if (i == NIL)
            return s;
        const struct producer_entry *e = &pt->e[i];
        if (e->hash == h && e->len == n && memcmp(e->producer, p, n) == 0)
            return s;
        s = (s + 1) & pt->mask;
    }
}

static void list_unlink(struct producers *pt, uint32_t i)
{
    struct producer_entry *e = &pt->e[i];
    if (e->newer != NIL)
        pt->e[e->newer].older = e->older;
    else
        pt->head = e->older;
    if (e->older != NIL)
        pt->e[e->older].newer = e->newer;
    else
        pt->tail = e->newer;
}

static void list_push_head(struct producers *pt, uint32_t i)
{
    struct producer_entry *e = &pt->e[i];
    e->newer = NIL;
    e->older = pt->head;
    if (pt->head != NIL)
        pt->e[pt->head].newer = i;
    pt->head = i;
    if (pt->tail == NIL)
        pt->tail = i;
}

/* slot_delete empties slot s and shifts later members of its probe run back into the hole. */
static void slot_delete(struct producers *pt, uint32_t s)
{
    uint32_t hole = s;
    uint32_t j = s;
    for (;;) {
        j = (j + 1) & pt->mask;
        uint32_t i = pt->slots[j];
        if (i == NIL)
            break;
        uint32_t home = pt->e[i].hash & pt->mask;
        /* Move i into the hole when its home is not cyclically within (hole, j]. */
        if (((j - home) & pt->mask) >= ((j - hole) & pt->mask)) {
            pt->slots[hole] = i;
            hole = j;
        }
    }
    pt->slots[hole] = NIL;
}

static void entry_remove(struct producers *pt, uint32_t i)
{
    struct producer_entry *e = &pt->e[i];
    slot_delete(pt, find_slot(pt, e->producer, e->len, e->hash));
    list_unlink(pt, i);
    e->used = false;
    e->newer = pt->free_list;
    pt->free_list = i;
    pt->count--;
}

static bool entry_idle(const struct producers *pt, const struct producer_entry *e, uint64_t now_s)
{
    return pt->idle_s && now_s > e->last_seen && now_s - e->last_seen > pt->idle_s;
}

void producers_expire(struct producers *pt, uint64_t now_s)
{
    while (pt->tail != NIL && entry_idle(pt, &pt->e[pt->tail], now_s))
        entry_remove(pt, pt->tail);
}

/* lookup returns the live entry of tag's producer, dropping it first when it has gone idle. */
static uint32_t lookup(struct producers *pt, const char *p, size_t n, uint32_t h, uint64_t now_s)
{
    uint32_t i = pt->slots[find_slot(pt, p, n, h)];
    if (i != NIL && entry_idle(pt, &pt->e[i], now_s)) {
        entry_remove(pt, i);
        return NIL;
    }
    return i;
}

int producers_check(struct producers *pt, const struct batch_tag *tag, uint64_t now_s,
                    uint64_t *ticket)
{
    size_t n = strnlen(tag->producer, sizeof(tag->producer));
    uint32_t i = lookup(pt, tag->producer, n, producer_hash(tag->producer, n), now_s);
    if (i == NIL)
        return 0;
    struct producer_entry *e = &pt->e[i];
    if (e->epoch != tag->epoch || tag->n > e->last_n)
        return 0;
    if (now_s > e->last_seen)
        e->last_seen = now_s;
    list_unlink(pt, i);
    list_push_head(pt, i);
    *ticket = e->ticket;
    return 1;
}

/* entry_insert adds a fresh entry for p[0..n), making room first. Returns its index. */
static uint32_t entry_insert(struct producers *pt, const char *p, size_t n, uint32_t h,
                             uint64_t now_s)
{
    if (pt->count == pt->max)
        producers_expire(pt, now_s);
    if (pt->count == pt->max)
        entry_remove(pt, pt->tail);
    uint32_t i = pt->free_list;
    assert(i != NIL);
    struct producer_entry *e = &pt->e[i];
    pt->free_list = e->newer;
    memset(e, 0, sizeof(*e));
    memcpy(e->producer, p, n);
    e->producer[n] = '\0';
    e->len = (uint8_t)n;
    e->hash = h;
    e->used = true;
    pt->slots[find_slot(pt, p, n, h)] = i;
    list_push_head(pt, i);
    pt->count++;
    return i;
}

void producers_record(struct producers *pt, const struct batch_tag *tag, uint64_t now_s,
                      uint64_t ticket, uint64_t durable)
{
    size_t n = strnlen(tag->producer, sizeof(tag->producer));
    uint32_t h = producer_hash(tag->producer, n);
    uint32_t i = lookup(pt, tag->producer, n, h, now_s);
    struct producer_entry *e;
    if (i == NIL) {
        i = entry_insert(pt, tag->producer, n, h, now_s);
        e = &pt->e[i];
    } else {
        e = &pt->e[i];
        if (e->ticket <= durable) {
            e->prev_valid = true;
            e->prev_epoch = e->epoch;
            e->prev_n = e->last_n;
            e->prev_ticket = e->ticket;
        }
        list_unlink(pt, i);
        list_push_head(pt, i);
    }
    e->epoch = tag->epoch;
    e->last_n = tag->n;
    e->ticket = ticket;
    if (now_s > e->last_seen)
        e->last_seen = now_s;
}

void producers_rollback(struct producers *pt, uint64_t durable)
{
    for (uint32_t i = 0; i < pt->max; i++) {
        struct producer_entry *e = &pt->e[i];
        if (!e->used || e->ticket <= durable)
            continue;
        if (e->prev_valid && e->prev_ticket <= durable) {
            e->epoch = e->prev_epoch;
            e->last_n = e->prev_n;
            e->ticket = e->prev_ticket;
        } else {
            entry_remove(pt, i);
        }
    }
}

void producers_clear(struct producers *pt)
{
    while (pt->head != NIL)
        entry_remove(pt, pt->head);
}

size_t producers_count(const struct producers *pt)
{
    return pt->count;
}

size_t producers_snapshot_size(const struct producers *pt)
{
    size_t size = 4;
    for (uint32_t i = pt->tail; i != NIL; i = pt->e[i].newer)
        size += 1 + pt->e[i].len + 8 + 8 + 8;
    return size;
}

static void put_u64_le(uint8_t *p, uint64_t v)
{
    for (int k = 0; k < 8; k++)
        p[k] = (uint8_t)(v >> (8 * k));
}

static uint64_t get_u64_le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int k = 0; k < 8; k++)
        v |= (uint64_t)p[k] << (8 * k);
    return v;
}

int producers_snapshot_encode(const struct producers *pt, uint8_t *dst, size_t cap)
{
    size_t need = producers_snapshot_size(pt);
    if (cap < need || need > INT32_MAX)
        return -ENOSPC;
    uint32_t count = (uint32_t)pt->count;
    for (int k = 0; k < 4; k++)
        dst[k] = (uint8_t)(count >> (8 * k));
    size_t pos = 4;
    for (uint32_t i = pt->tail; i != NIL; i = pt->e[i].newer) {
        const struct producer_entry *e = &pt->e[i];
        struct batch_tag tag;
        memcpy(tag.producer, e->producer, (size_t)e->len + 1);
        tag.epoch = e->epoch;
        tag.n = e->last_n;
        int rc = frame_tag_encode(&tag, dst + pos, cap - pos);
        assert(rc > 0);
        pos += (size_t)rc;
        put_u64_le(dst + pos, e->last_seen);
        pos += 8;
    }
    return (int)pos;
}

/*
 * snapshot_entry reads the snapshot entry at *pos into tag and *last_seen and moves *pos past
 * it. Returns 0 or -EINVAL.
 */
static int snapshot_entry(const uint8_t *src, size_t len, size_t *pos, struct batch_tag *tag,
                          uint64_t *last_seen)
{
    int rc = frame_tag_decode(src + *pos, len - *pos, tag);
    if (rc < 0)
        return -EINVAL;
    *pos += (size_t)rc;
    if (len - *pos < 8)
        return -EINVAL;
    *last_seen = get_u64_le(src + *pos);
    *pos += 8;
    return 0;
}

int producers_snapshot_load(struct producers *pt, const uint8_t *src, size_t len, uint64_t now_s)
{
    if (len < 4)
        return -EINVAL;
    uint32_t count =
        (uint32_t)src[0] | (uint32_t)src[1] << 8 | (uint32_t)src[2] << 16 | (uint32_t)src[3] << 24;
    /* Each entry takes at least 1 + 1 + 8 + 8 + 8 bytes: reject impossible counts early. */
    if (count > (len - 4) / 26)
        return -EINVAL;
    struct batch_tag tag;
    uint64_t last_seen;
    size_t pos = 4;
    for (uint32_t k = 0; k < count; k++)
        if (snapshot_entry(src, len, &pos, &tag, &last_seen) < 0)
            return -EINVAL;
    if (pos != len)
        return -EINVAL;

    producers_clear(pt);
    pos = 4;
    for (uint32_t k = 0; k < count; k++) {
        snapshot_entry(src, len, &pos, &tag, &last_seen);
        size_t n = strlen(tag.producer);
        uint32_t h = producer_hash(tag.producer, n);
        uint32_t i = pt->slots[find_slot(pt, tag.producer, n, h)];
        if (i == NIL)
            i = entry_insert(pt, tag.producer, n, h, now_s);
        else {
            list_unlink(pt, i);
            list_push_head(pt, i);
        }
        struct producer_entry *e = &pt->e[i];
        e->epoch = tag.epoch;
        e->last_n = tag.n;
        e->last_seen = last_seen;
        e->ticket = 0;
        e->prev_valid = false;
    }
    producers_expire(pt, now_s);
    return 0;
}
