/*
 * conf.c: reading and checking settings through the per-module tables of conf.h.
 */
#include "core/conf.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"

static void *conf_member(void *obj, const struct conf_entry *e)
{
    return (char *)obj + e->offset;
}

const struct conf_entry *conf_find(const struct conf_entry *table, const char *key)
{
    for (const struct conf_entry *e = table; e->key; e++) {
        if (strcmp(e->key, key) == 0)
            return e;
    }
    return NULL;
}

static bool conf_bounded(const struct conf_entry *e)
{
    return e->min != 0 || e->max != 0;
}

static int conf_range_error(const struct conf_entry *e, const char *what, const char *value,
                            char *err, size_t errlen)
{
    if (conf_bounded(e))
        snprintf(err, errlen, "%s: expected %s from %.0f to %.0f, got '%s'", e->key, what, e->min,
                 e->max, value);
    else
        snprintf(err, errlen, "%s: expected %s, got '%s'", e->key, what, value);
    return -EINVAL;
}

static int conf_parse_int(const struct conf_entry *e, const char *value, int64_t *out, char *err,
                          size_t errlen)
{
    char *end;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (errno || end == value || *end || (conf_bounded(e) && (v < e->min || v > e->max)))
        return conf_range_error(e, "a whole number", value, err, errlen);
    *out = v;
    return 0;
}

static int conf_parse_bytes(const struct conf_entry *e, const char *value, uint64_t *out, char *err,
                            size_t errlen)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(value, &end, 10);
    if (errno || end == value || value[0] == '-')
        return conf_range_error(e, "a size in bytes (suffix k, m or g)", value, err, errlen);
    unsigned shift = 0;
    switch (*end) {
    case 'k':
    case 'K':
        shift = 10;
        end++;
        break;
    case 'm':
    case 'M':
        shift = 20;
        end++;
        break;
    case 'g':
    case 'G':
        shift = 30;
        end++;
        break;
    default:
        break;
    }
    if (*end == 'b' || *end == 'B')
        end++;
    if (*end || (shift && v > (UINT64_MAX >> shift)))
        return conf_range_error(e, "a size in bytes (suffix k, m or g)", value, err, errlen);
    v <<= shift;
    if (conf_bounded(e) && ((double)v < e->min || (double)v > e->max))
        return conf_range_error(e, "a size in bytes", value, err, errlen);
    *out = v;
    return 0;
}

static int conf_parse_bool(const char *value, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(value, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(value, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

/* conf_parse_enum finds value among "a|b|c" and returns its index, or -1. */
static int conf_parse_enum(const char *choices, const char *value)
{
    size_t vlen = strlen(value);
    int index = 0;
    for (const char *p = choices; *p; index++) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == vlen && strncasecmp(p, value, len) == 0)
            return index;
        if (!bar)
            break;
        p = bar + 1;
    }
    return -1;
}

int conf_set(const struct conf_entry *table, void *obj, const char *key, const char *value,
             char *err, size_t errlen)
{
    const struct conf_entry *e = conf_find(table, key);
    if (!e) {
        snprintf(err, errlen, "%s: unknown setting", key);
        return -ENOENT;
    }
    void *m = conf_member(obj, e);
    switch (e->type) {
    case CONF_STRING: {
        char **s = m;
        free(*s);
        *s = value ? xstrdup(value) : NULL;
        return 0;
    }
    case CONF_INT:
        return conf_parse_int(e, value, m, err, errlen);
    case CONF_BYTES:
        return conf_parse_bytes(e, value, m, err, errlen);
    case CONF_BOOL:
        if (conf_parse_bool(value, m) < 0) {
            snprintf(err, errlen, "%s: expected true or false, got '%s'", key, value);
            return -EINVAL;
        }
        return 0;
    case CONF_DOUBLE: {
        char *end;
        errno = 0;
        double v = strtod(value, &end);
        if (errno || end == value || *end || !isfinite(v) ||
            (conf_bounded(e) && (v < e->min || v > e->max)))
            return conf_range_error(e, "a number", value, err, errlen);
        *(double *)m = v;
        return 0;
    }
    case CONF_ENUM: {
        int i = conf_parse_enum(e->choices, value);
        if (i < 0) {
            snprintf(err, errlen, "%s: expected one of %s, got '%s'", key, e->choices, value);
            return -EINVAL;
        }
        *(int *)m = i;
        return 0;
    }
    }
    snprintf(err, errlen, "%s: setting of unknown type", key);
    return -EINVAL;
}

int conf_defaults(const struct conf_entry *table, void *obj)
{
    char err[256];
    for (const struct conf_entry *e = table; e->key; e++) {
        if (e->type == CONF_STRING) {
            char **s = conf_member(obj, e);
            *s = e->def ? xstrdup(e->def) : NULL;
            continue;
        }
        if (!e->def)
            continue;
        int rc = conf_set(table, obj, e->key, e->def, err, sizeof(err));
        if (rc < 0)
            return rc;
    }
    return 0;
}

void conf_help(const struct conf_entry *table, const char *flag_prefix, FILE *out)
{
    for (const struct conf_entry *e = table; e->key; e++) {
        char flag[96];
        int n = snprintf(flag, sizeof(flag), "%s", flag_prefix ? flag_prefix : "");
        for (const char *k = e->key; *k && n < (int)sizeof(flag) - 1; k++)
            flag[n++] = *k == '_' && flag_prefix ? '-' : *k;
        flag[n] = '\0';
        const char *arg = e->type == CONF_BOOL     ? "BOOL"
                          : e->type == CONF_ENUM   ? e->choices
                          : e->type == CONF_BYTES  ? "BYTES"
                          : e->type == CONF_STRING ? "TEXT"
                                                   : "N";
        fprintf(out, "  %s %s\n      %s", flag, arg, e->help);
        if (e->def)
            fprintf(out, " (default: %s)", e->def);
        fputc('\n', out);
    }
}

void conf_free(const struct conf_entry *table, void *obj)
{
    if (!obj)
        return;
    for (const struct conf_entry *e = table; e->key; e++) {
        if (e->type == CONF_STRING) {
            char **s = conf_member(obj, e);
            free(*s);
            *s = NULL;
        }
    }
}
