/*
 * conf.h: settings described by tables, one per module.
 *
 * Each module that has settings declares a const array of struct conf_entry ({key, type,
 * default, offset, help, bounds}) ending with an entry whose key is NULL, and a struct that
 * holds the values. conf_defaults() fills the struct from the table, conf_set() validates one
 * key = value (from an INI file, a --flag or the environment) and stores it, conf_help() prints
 * the table for --help. The same table therefore drives the file, the flags and the help text,
 * and a wrong value is reported as "file:line: key: what is wrong".
 *
 * Strings set through conf_set are copied into storage owned by the struct's char * member;
 * conf_free() releases them.
 */
#ifndef TELEM_CORE_CONF_H
#define TELEM_CORE_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum conf_type {
    CONF_STRING, /* char *, copied; default may be NULL */
    CONF_INT,    /* int64_t, within [min, max] */
    CONF_BOOL,   /* bool: true/false, yes/no, on/off, 1/0 */
    CONF_DOUBLE, /* double, within [min, max] */
    CONF_BYTES,  /* uint64_t; accepts suffixes k, m, g (powers of 1024), within [min, max] */
    CONF_ENUM,   /* int, index into choices ("always|interval|never") */
};

struct conf_entry {
    const char *key;
    enum conf_type type;
    const char *def; /* default, as text in the same form a user would write */
    size_t offset;   /* offsetof(struct X, member) */
    const char *help;
    double min; /* CONF_INT, CONF_DOUBLE, CONF_BYTES: inclusive bounds (both 0: unbounded) */
    double max;
    const char *choices; /* CONF_ENUM: "a|b|c" */
};

/* conf_defaults sets every member named in table to its default. Returns 0 or -EINVAL. */
int conf_defaults(const struct conf_entry *table, void *obj);

/*
 * conf_set parses value for key and stores it in obj. Returns 0, -ENOENT for a key not in the
 * table (err says "unknown setting"), or -EINVAL with err saying what is wrong with the value
 * ("expected a whole number from 1 to 65535, got 'x'").
 */
int conf_set(const struct conf_entry *table, void *obj, const char *key, const char *value,
             char *err, size_t errlen);

/* conf_find returns the entry for key, or NULL. */
const struct conf_entry *conf_find(const struct conf_entry *table, const char *key);

/* conf_help prints "  --key VALUE   help (default: def)" lines for every entry. */
void conf_help(const struct conf_entry *table, const char *flag_prefix, FILE *out);

/* conf_free releases strings conf_set copied into obj. */
void conf_free(const struct conf_entry *table, void *obj);

#endif
