/*
 * prom_text.c: Prometheus text helpers for /metrics (see prom_text.h).
 */
#include "daemon/prom_text.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

void prom_family(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

struct prom_line {
    const char *p;
    size_t len;
    size_t family;
    int kind; /* 0 HELP, 1 TYPE, 2 sample */
};

struct prom_family_entry {
    const char *name;
    size_t len;
    long help; /* index of its first HELP line, -1 if none */
    long type;
};

static long family_find(struct prom_family_entry *fams, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++) {
        if (fams[i].len == len && memcmp(fams[i].name, name, len) == 0)
            return (long)i;
    }
    return -1;
}

/* family_of_sample maps a sample's metric name to a known family, allowing histogram suffixes. */
static long family_of_sample(struct prom_family_entry *fams, size_t n, const char *name, size_t len)
{
    long f = family_find(fams, n, name, len);
    if (f >= 0)
        return f;
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
    for (size_t i = 0; i < 3; i++) {
        size_t sl = strlen(suffixes[i]);
        if (len > sl && memcmp(name + len - sl, suffixes[i], sl) == 0) {
            f = family_find(fams, n, name, len - sl);
            if (f >= 0)
                return f;
        }
    }
    return -1;
}

int prom_regroup(const char *text, size_t len, FILE *out)
{
    size_t nlines = 0, cap_lines = 64, nfams = 0, cap_fams = 16;
    struct prom_line *lines = xmalloc(cap_lines * sizeof(*lines));
    struct prom_family_entry *fams = xmalloc(cap_fams * sizeof(*fams));

    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
        const char *next = nl ? nl + 1 : end;
        int kind = -1;
        const char *name = NULL;
        size_t name_len = 0;
        if (l > 7 && (memcmp(p, "# HELP ", 7) == 0 || memcmp(p, "# TYPE ", 7) == 0)) {
            kind = p[2] == 'H' ? 0 : 1;
            name = p + 7;
            const char *sp = memchr(name, ' ', l - 7);
            name_len = sp ? (size_t)(sp - name) : l - 7;
        } else if (l > 0 && p[0] != '#') {
            kind = 2;
            name = p;
            name_len = 0;
            while (name_len < l && name[name_len] != '{' && name[name_len] != ' ')
                name_len++;
        }
        if (kind >= 0 && name_len > 0) {
            long f = kind == 2 ? family_of_sample(fams, nfams, name, name_len)
                               : family_find(fams, nfams, name, name_len);
            if (f < 0) {
                if (nfams == cap_fams) {
                    cap_fams *= 2;
                    fams = xrealloc(fams, cap_fams * sizeof(*fams));
                }
                fams[nfams] = (struct prom_family_entry){name, name_len, -1, -1};
                f = (long)nfams++;
            }
            if (nlines == cap_lines) {
                cap_lines *= 2;
                lines = xrealloc(lines, cap_lines * sizeof(*lines));
            }
            lines[nlines] = (struct prom_line){p, l, (size_t)f, kind};
            if (kind == 0 && fams[f].help < 0)
                fams[f].help = (long)nlines;
            if (kind == 1 && fams[f].type < 0)
                fams[f].type = (long)nlines;
            nlines++;
        }
        p = next;
    }

    for (size_t f = 0; f < nfams; f++) {
        if (fams[f].help >= 0)
            fprintf(out, "%.*s\n", (int)lines[fams[f].help].len, lines[fams[f].help].p);
        if (fams[f].type >= 0)
            fprintf(out, "%.*s\n", (int)lines[fams[f].type].len, lines[fams[f].type].p);
        for (size_t i = 0; i < nlines; i++) {
            if (lines[i].family == f && lines[i].kind == 2)
                fprintf(out, "%.*s\n", (int)lines[i].len, lines[i].p);
        }
    }
    free(lines);
    free(fams);
    return 0;
}
