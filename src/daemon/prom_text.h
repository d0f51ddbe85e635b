/*
 * prom_text.h: small helpers for the Prometheus text exposition format (version 0.0.4) that
 * /metrics answers with: a family header, and a regrouping pass for text written by several
 * writers (each sink adds its own series, and two sinks of one kind print the same families),
 * because the format wants each family's HELP and TYPE once with all its samples together.
 */
#ifndef TELEM_DAEMON_PROM_TEXT_H
#define TELEM_DAEMON_PROM_TEXT_H

#include <stddef.h>
#include <stdio.h>

/* prom_family prints "# HELP name help" and "# TYPE name type". */
void prom_family(FILE *out, const char *name, const char *type, const char *help);

/*
 * prom_regroup reads exposition text[0..len) and prints it to out with each family's HELP and
 * TYPE lines once (the first seen) followed by all of its samples, families in the order they
 * first appear. Samples named name_bucket, name_sum, name_count belong to family name. Borrows
 * text. Returns 0, or -ENOMEM.
 */
int prom_regroup(const char *text, size_t len, FILE *out);

#endif
