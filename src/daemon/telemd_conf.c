/*
 * telemd_conf.c: loading telemd's settings from the INI file, the environment and the flags
 * (see telemd_conf.h).
 *
 * The INI text goes through inih's stream interface with a reader of our own over a memory
 * buffer. The reader counts physical lines, which is how every message gets its file:line
 * even though Debian's inih does not pass line numbers to the handler, and it also notices the
 * lines inih would reject (no '=', an unclosed '[') so that all of them are reported, not just
 * the first.
 */
#include "daemon/telemd_conf.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/log.h"
#include "ingest/listen_socket.h"
#include "proto/lp.h"

#define OFF(m)         offsetof(struct telemd_settings, m)
#define INI_LINE_LIMIT 4000
#define SINK_NAME_MAX  48

const struct conf_entry telemd_conf_table[] = {
    {"data_dir", CONF_STRING, "./telem-data", OFF(data_dir),
     "folder of the spool, the default SQLite file, the socket and the lock file", 0, 0, NULL},
    {"spool_dir", CONF_STRING, NULL, OFF(spool_dir),
     "folder of the spool (default: <data_dir>/spool)", 0, 0, NULL},
    {"socket", CONF_STRING, NULL, OFF(socket),
     "unix socket for HTTP, created mode 0660 (default: <data_dir>/telemd.sock); off disables", 0,
     0, NULL},
    {"http", CONF_STRING, "127.0.0.1:8186", OFF(http),
     "TCP address for HTTP; off disables; a non-loopback address is logged as a warning", 0, 0,
     NULL},
    {"udp", CONF_STRING, "off", OFF(udp),
     "UDP address for fire-and-forget line protocol, e.g. 127.0.0.1:8189; off disables", 0, 0,
     NULL},
    {"log_file", CONF_STRING, NULL, OFF(log_file),
     "log file, reopened on SIGHUP (default: standard error)", 0, 0, NULL},
    {"log_level", CONF_ENUM, "info", OFF(log_level), "least important log lines written", 0, 0,
     "error|warn|info|debug"},
    {"token", CONF_STRING, NULL, OFF(token),
     "token every endpoint but /ping and /health requires (config file or TELEM_TOKEN only, "
     "never a flag)",
     0, 0, NULL},
    {"profile_tag", CONF_STRING, "profile", OFF(profile_tag), "tag that names a line's profile", 0,
     0, NULL},
    {"default_profile", CONF_STRING, NULL, OFF(default_profile),
     "profile of lines without the profile tag (default: such lines are rejected)", 0, 0, NULL},
    {"body_max", CONF_BYTES, "64m", OFF(body_max),
     "largest request body in bytes, before and after gzip (413 beyond)", 1024, 1073741824.0, NULL},
    {"line_max", CONF_INT, "65536", OFF(line_max), "longest line in bytes", 64, 16777216, NULL},
    {"tags_max", CONF_INT, "32", OFF(tags_max), "most tags on one line", 1, LP_TAGS_MAX, NULL},
    {"fields_max", CONF_INT, "32", OFF(fields_max), "most fields on one line", 1, LP_FIELDS_MAX,
     NULL},
    {"headers_max", CONF_BYTES, "64k", OFF(headers_max),
     "largest request line plus headers in bytes", 1024, 16777216, NULL},
    {"connections_max", CONF_INT, "4096", OFF(connections_max),
     "open HTTP connections; more are closed at once", 1, 1000000, NULL},
    {"inflight_bytes_max", CONF_BYTES, "512m", OFF(inflight_bytes_max),
     "body bytes of all requests awaiting durability together (503 beyond)", 1024, 1099511627776.0,
     NULL},
    {"http_idle_timeout_s", CONF_INT, "300", OFF(http_idle_timeout_s),
     "close an HTTP connection idle this long", 1, 86400, NULL},
    {"http_read_bytes", CONF_BYTES, "256k", OFF(http_read_bytes),
     "bytes read from a connection at once (0: libevent's own 4 KiB reads)", 0, 16777216, NULL},
    {"listen_backlog", CONF_INT, "1024", OFF(listen_backlog), "listen(2) backlog", 1, 65535, NULL},
    {"udp_buffer_bytes", CONF_BYTES, "8m", OFF(udp_buffer_bytes),
     "UDP receive buffer to ask for (0: system default)", 0, 1073741824.0, NULL},
    {"spool_segment_bytes", CONF_BYTES, "64m", OFF(spool_segment_bytes),
     "size at which the spool starts a new segment file", 1048576, 4294967296.0, NULL},
    {"spool_max_bytes", CONF_BYTES, "16g", OFF(spool_max_bytes),
     "spool size at which writes are answered 503", 1048576, 1125899906842624.0, NULL},
    {"fsync", CONF_ENUM, "always", OFF(fsync),
     "always: answer 204 after fdatasync (group commit); interval: after write(2), fdatasync "
     "every fsync_interval_ms; never: leave it to the kernel",
     0, 0, "always|interval|never"},
    {"fsync_interval_ms", CONF_INT, "100", OFF(fsync_interval_ms),
     "fdatasync period under fsync = interval", 1, 60000, NULL},
    {"producers_max", CONF_INT, "100000", OFF(producers_max),
     "client batch producers (Telem-Batch) remembered", 1, 100000000, NULL},
    {"producer_idle_s", CONF_INT, "604800", OFF(producer_idle_s),
     "forget a producer not seen for this long", 1, 315360000, NULL},
    {"retry_after_s", CONF_INT, "1", OFF(retry_after_s), "Retry-After of 503 answers", 1, 3600,
     NULL},
    {"drain_ms", CONF_INT, "10000", OFF(drain_ms),
     "on SIGTERM, wait this long for pending requests and again for each sink to catch up", 0,
     3600000, NULL},
    {"sink_open_wait_ms", CONF_INT, "2000", OFF(sink_open_wait_ms),
     "at start, wait this long for each sink's store before listening anyway", 0, 600000, NULL},
    {"health_lag_max", CONF_INT, "1000000", OFF(health_lag_max),
     "/health says degraded when a sink is more records behind than this", 0, 1e15, NULL},
    {NULL, 0, NULL, 0, NULL, 0, 0, NULL},
};

static void conf_error(struct telemd_conf *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void conf_error(struct telemd_conf *c, const char *fmt, ...)
{
    if (c->nerrors < TELEMD_CONF_ERRORS_MAX) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->errors[c->nerrors], TELEMD_CONF_ERROR_LEN, fmt, ap);
        va_end(ap);
    }
    c->nerrors++;
}

static void conf_warning(struct telemd_conf *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void conf_warning(struct telemd_conf *c, const char *fmt, ...)
{
    size_t cap = sizeof(c->warnings) / sizeof(c->warnings[0]);
    if (c->nwarnings < cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->warnings[c->nwarnings], TELEMD_CONF_ERROR_LEN, fmt, ap);
        va_end(ap);
        c->nwarnings++;
    }
}

void telemd_conf_init(struct telemd_conf *c)
{
    memset(c, 0, sizeof(*c));
    int rc = conf_defaults(telemd_conf_table, &c->s);
    (void)rc; /* the defaults above are valid; test_telemd_conf checks it */
}

static void sink_free(struct telemd_sink *s)
{
    free(s->name);
    free(s->url);
    free(s->file);
    conf_free(sink_worker_conf, &s->worker);
    for (size_t i = 0; i < s->nsettings; i++) {
        free((char *)s->settings[i].key);
        free((char *)s->settings[i].value);
    }
    free(s->settings);
}

void telemd_conf_free(struct telemd_conf *c)
{
    conf_free(telemd_conf_table, &c->s);
    for (size_t i = 0; i < c->nsinks; i++)
        sink_free(&c->sinks[i]);
    free(c->sinks);
    c->sinks = NULL;
    c->nsinks = 0;
    free(c->config_file);
    c->config_file = NULL;
}

/* ---- sinks ---- */

static bool sink_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > SINK_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!isalnum((unsigned char)ch) && ch != '_' && ch != '-')
            return false;
    }
    return true;
}

static struct telemd_sink *sink_find(struct telemd_conf *c, const char *name)
{
    for (size_t i = 0; i < c->nsinks; i++) {
        if (strcmp(c->sinks[i].name, name) == 0)
            return &c->sinks[i];
    }
    return NULL;
}

static struct telemd_sink *sink_add(struct telemd_conf *c, const char *name, const char *file,
                                    int line)
{
    c->sinks = xrealloc(c->sinks, (c->nsinks + 1) * sizeof(*c->sinks));
    struct telemd_sink *s = &c->sinks[c->nsinks++];
    memset(s, 0, sizeof(*s));
    s->name = xstrdup(name);
    s->file = file ? xstrdup(file) : NULL;
    s->line = line;
    conf_defaults(sink_worker_conf, &s->worker);
    return s;
}

static void sink_setting_put(struct telemd_sink *s, const char *key, const char *value,
                             const char *file, int line)
{
    for (size_t i = 0; i < s->nsettings; i++) {
        struct sink_setting *st = &s->settings[i];
        if (strcmp(st->key, key) == 0) {
            free((char *)st->value);
            st->value = xstrdup(value);
            st->file = file;
            st->line = line;
            return;
        }
    }
    s->settings = xrealloc(s->settings, (s->nsettings + 1) * sizeof(*s->settings));
    struct sink_setting *st = &s->settings[s->nsettings++];
    st->key = xstrdup(key);
    st->value = xstrdup(value);
    st->file = file;
    st->line = line;
}

const char *telemd_sink_setting(const struct telemd_sink *s, const char *key)
{
    for (size_t i = 0; i < s->nsettings; i++) {
        if (strcmp(s->settings[i].key, key) == 0)
            return s->settings[i].value;
    }
    return NULL;
}

/* ---- the INI file ---- */

struct ini_load {
    struct telemd_conf *c;
    const char *name;
    const char *text;
    size_t len;
    size_t pos;
    int line;
    bool at_line_start;
    int section_line;
    size_t syntax_errors;
    bool bad_reported;    /* bad_section holds the last bad section reported */
    char bad_section[96]; /* so that each is reported once, not once per key */
};

/* ini_check_line reports lines inih would refuse, with their own line number. */
static void ini_check_line(struct ini_load *ld, const char *p, size_t len)
{
    size_t i = 0;
    while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r'))
        i++;
    if (i == len || p[i] == ';' || p[i] == '#')
        return;
    if (p[i] == '[') {
        ld->section_line = ld->line;
        if (!memchr(p + i, ']', len - i)) {
            conf_error(ld->c, "%s:%d: syntax error: '[' without ']'", ld->name, ld->line);
            ld->syntax_errors++;
        }
        return;
    }
    if (!memchr(p + i, '=', len - i) && !memchr(p + i, ':', len - i)) {
        conf_error(ld->c, "%s:%d: syntax error: expected key = value or [section]", ld->name,
                   ld->line);
        ld->syntax_errors++;
    }
}

/* ini_read is inih's fgets-like reader over the buffer; it counts physical lines. */
static char *ini_read(char *str, int num, void *stream)
{
    struct ini_load *ld = stream;
    if (ld->pos >= ld->len || num < 2)
        return NULL;
    if (ld->at_line_start) {
        ld->line++;
        const char *p = ld->text + ld->pos;
        const char *nl = memchr(p, '\n', ld->len - ld->pos);
        size_t line_len = nl ? (size_t)(nl - p) : ld->len - ld->pos;
        if (line_len > INI_LINE_LIMIT) {
            conf_error(ld->c, "%s:%d: line longer than %d bytes", ld->name, ld->line,
                       INI_LINE_LIMIT);
            ld->syntax_errors++;
            ld->pos += line_len + (nl ? 1 : 0);
            /* Hand inih a comment instead, so that it stays in step with our count. */
            snprintf(str, (size_t)num, ";\n");
            return str;
        }
        ini_check_line(ld, p, line_len);
    }
    size_t n = 0;
    while (n + 1 < (size_t)num && ld->pos < ld->len) {
        char ch = ld->text[ld->pos++];
        str[n++] = ch;
        if (ch == '\n')
            break;
    }
    str[n] = '\0';
    ld->at_line_start = str[n - 1] == '\n';
    return str;
}

/* conf_key_normal copies key with '-' made '_' (flags and file accept both spellings). */
static void conf_key_normal(const char *key, char *dst, size_t cap)
{
    size_t i = 0;
    for (; key[i] && i + 1 < cap; i++)
        dst[i] = key[i] == '-' ? '_' : key[i];
    dst[i] = '\0';
}

/* telemd_key_set notes which settings were given explicitly. */
static void telemd_key_set(struct telemd_conf *c, const char *key)
{
    if (strcmp(key, "http") == 0)
        c->http_explicit = true;
    else if (strcmp(key, "udp") == 0)
        c->udp_explicit = true;
}

/* ini_bad_section_seen tells whether section was reported already, and remembers it. */
static bool ini_bad_section_seen(struct ini_load *ld, const char *section)
{
    if (ld->bad_reported && strcmp(ld->bad_section, section) == 0)
        return true;
    ld->bad_reported = true;
    snprintf(ld->bad_section, sizeof(ld->bad_section), "%s", section);
    return false;
}

static int ini_handle(void *user, const char *section, const char *name, const char *value)
{
    struct ini_load *ld = user;
    struct telemd_conf *c = ld->c;
    char key[128], err[256];
    conf_key_normal(name, key, sizeof(key));

    if (strcmp(section, "telemd") == 0) {
        if (conf_set(telemd_conf_table, &c->s, key, value, err, sizeof(err)) < 0)
            conf_error(c, "%s:%d: %s", ld->name, ld->line, err);
        else
            telemd_key_set(c, key);
        return 1;
    }
    if (strncmp(section, "sink.", 5) == 0) {
        const char *sname = section + 5;
        if (!sink_name_valid(sname)) {
            if (!ini_bad_section_seen(ld, section))
                conf_error(c, "%s:%d: [%s]: a sink name is 1 to %d of A-Z a-z 0-9 _ -", ld->name,
                           ld->section_line, section, SINK_NAME_MAX);
            return 1;
        }
        struct telemd_sink *s = sink_find(c, sname);
        if (!s)
            s = sink_add(c, sname, ld->name, ld->section_line);
        if (strcmp(key, "url") == 0) {
            free(s->url);
            s->url = xstrdup(value);
        } else if (conf_find(sink_worker_conf, key)) {
            if (conf_set(sink_worker_conf, &s->worker, key, value, err, sizeof(err)) < 0)
                conf_error(c, "%s:%d: %s", ld->name, ld->line, err);
        } else {
            sink_setting_put(s, key, value, s->file, ld->line);
        }
        return 1;
    }
    if (!section[0])
        conf_error(c, "%s:%d: %s: setting outside a section (put it under [telemd])", ld->name,
                   ld->line, name);
    else if (!ini_bad_section_seen(ld, section))
        conf_error(c, "%s:%d: [%s]: unknown section (expected [telemd] or [sink.NAME])", ld->name,
                   ld->section_line, section);
    return 1;
}

int telemd_conf_load_buffer(struct telemd_conf *c, const char *text, size_t len, const char *name)
{
    size_t before = c->nerrors;
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        int line = 1;
        for (const char *p = text; p < nul; p++)
            line += *p == '\n';
        conf_error(c, "%s:%d: NUL byte in the file", name, line);
        return -EINVAL;
    }
    /* Heap line buffer that grows, one value per line, ';' comments after whitespace. */
    ini_use_stack = false;
    ini_allow_realloc = true;
    ini_max_line = 2 * INI_LINE_LIMIT;
    ini_initial_alloc = 256;
    ini_allow_multiline = false;
    ini_stop_on_first_error = false;

    struct ini_load ld;
    memset(&ld, 0, sizeof(ld));
    ld.c = c;
    ld.name = name;
    ld.text = text;
    ld.len = len;
    ld.at_line_start = true;
    int rc = ini_parse_stream(ini_read, &ld, ini_handle, &ld);
    if (rc > 0 && ld.syntax_errors == 0)
        conf_error(c, "%s:%d: syntax error", name, rc);
    else if (rc == -2)
        conf_error(c, "%s: out of memory", name);
    return c->nerrors > before ? -EINVAL : 0;
}

int telemd_conf_load_file(struct telemd_conf *c, const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        int rc = -errno;
        conf_error(c, "%s: %s", path, strerror(errno));
        return rc;
    }
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 8192;
            if (cap > (64u << 20)) {
                conf_error(c, "%s: larger than 64 MiB", path);
                free(text);
                fclose(f);
                return -EFBIG;
            }
            text = xrealloc(text, cap);
        }
        size_t n = fread(text + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        conf_error(c, "%s: read error", path);
        free(text);
        return -EIO;
    }
    int rc = telemd_conf_load_buffer(c, text ? text : "", len, path);
    free(text);
    return rc;
}

/* ---- environment and flags ---- */

int telemd_conf_apply_env(struct telemd_conf *c)
{
    const char *token = getenv("TELEM_TOKEN");
    if (token && token[0]) {
        free(c->s.token);
        c->s.token = xstrdup(token);
    }
    return 0;
}

/* flag_sink adds --sink URL: named after its scheme, then scheme2, scheme3 ... */
static void flag_sink(struct telemd_conf *c, const char *url)
{
    size_t scheme_len = strcspn(url, ":");
    if (url[scheme_len] != ':' || scheme_len == 0 || scheme_len > 16) {
        conf_error(c,
                   "--sink %s: expected a URL such as sqlite:telem.db, "
                   "mariadb://user@host/db or redis://host:6379/0",
                   url);
        return;
    }
    char scheme[24], name[40];
    memcpy(scheme, url, scheme_len);
    scheme[scheme_len] = '\0';
    for (size_t i = 0; i < scheme_len; i++) {
        if (!isalnum((unsigned char)scheme[i])) {
            conf_error(c, "--sink %s: bad scheme", url);
            return;
        }
    }
    /* The k-th --sink of one scheme is named scheme, scheme2, ... in flag order. */
    unsigned k = 1;
    for (size_t i = 0; i < c->nsinks; i++) {
        if (!c->sinks[i].file && c->sinks[i].url &&
            strncmp(c->sinks[i].url, url, scheme_len + 1) == 0)
            k++;
    }
    if (k == 1)
        snprintf(name, sizeof(name), "%s", scheme);
    else
        snprintf(name, sizeof(name), "%s%u", scheme, k);
    struct telemd_sink *s = sink_find(c, name);
    if (!s)
        s = sink_add(c, name, NULL, 0);
    else {
        /* A [sink.NAME] of the same name keeps its settings; the flag gives its URL. */
        free(s->file);
        s->file = NULL;
    }
    free(s->url);
    s->url = xstrdup(url);
}

/* flag_split reads "--name" or "--name=value"; returns false for anything else. */
static bool flag_split(const char *arg, char *name, size_t cap, const char **value)
{
    if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0')
        return false;
    const char *eq = strchr(arg + 2, '=');
    size_t n = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
    if (n >= cap)
        n = cap - 1;
    memcpy(name, arg + 2, n);
    name[n] = '\0';
    *value = eq ? eq + 1 : NULL;
    return true;
}

/* flag_value takes the value of argv[*i]: after '=' or the next argument. */
static const char *flag_value(int argc, char **argv, int *i, const char *inline_value)
{
    if (inline_value)
        return inline_value;
    if (*i + 1 < argc) {
        (*i)++;
        return argv[*i];
    }
    return NULL;
}

int telemd_conf_parse_args(struct telemd_conf *c, int argc, char **argv)
{
    size_t before = c->nerrors;
    char name[96];
    const char *value;

    /* Pass 1: what must be known before the rest (the file is applied before the flags). */
    for (int i = 1; i < argc; i++) {
        if (!flag_split(argv[i], name, sizeof(name), &value))
            continue;
        if (strcmp(name, "config") == 0) {
            const char *v = flag_value(argc, argv, &i, value);
            if (!v) {
                conf_error(c, "--config: needs a file name");
                continue;
            }
            free(c->config_file);
            c->config_file = xstrdup(v);
        } else if (!value && i + 1 < argc && strcmp(name, "help") != 0 &&
                   strcmp(name, "version") != 0 && strcmp(name, "check-config") != 0) {
            i++; /* skip this flag's value: it might look like a flag */
        }
    }
    if (c->config_file)
        telemd_conf_load_file(c, c->config_file);
    telemd_conf_apply_env(c);

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0) {
            c->want_help = true;
            continue;
        }
        if (strcmp(arg, "-V") == 0) {
            c->want_version = true;
            continue;
        }
        if (!flag_split(arg, name, sizeof(name), &value)) {
            conf_error(c, "%s: unexpected argument (settings are --key value; see --help)", arg);
            continue;
        }
        if (strcmp(name, "help") == 0) {
            c->want_help = true;
            continue;
        }
        if (strcmp(name, "version") == 0) {
            c->want_version = true;
            continue;
        }
        if (strcmp(name, "check-config") == 0) {
            c->check_config = true;
            continue;
        }
        if (strcmp(name, "config") == 0) {
            flag_value(argc, argv, &i, value);
            continue;
        }
        char key[96];
        conf_key_normal(name, key, sizeof(key));
        if (strcmp(key, "token") == 0 || strcmp(key, "password") == 0) {
            if (!value && i + 1 < argc)
                i++; /* never echo it */
            conf_error(c,
                       "--%s: not accepted on the command line, where ps shows it; use the "
                       "config file or the environment (TELEM_TOKEN, "
                       "TELEM_<SINK>_PASSWORD)",
                       name);
            continue;
        }
        if (strcmp(key, "sink") == 0) {
            const char *v = flag_value(argc, argv, &i, value);
            if (!v)
                conf_error(c, "--sink: needs a URL");
            else
                flag_sink(c, v);
            continue;
        }
        const struct conf_entry *e = conf_find(telemd_conf_table, key);
        if (!e) {
            conf_error(c, "--%s: unknown flag (see --help)", name);
            if (!value && i + 1 < argc && argv[i + 1][0] != '-')
                i++; /* its value, most likely */
            continue;
        }
        const char *v = value;
        if (!v && e->type == CONF_BOOL && (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0))
            v = "true";
        if (!v)
            v = flag_value(argc, argv, &i, NULL);
        if (!v) {
            conf_error(c, "--%s: needs a value", name);
            continue;
        }
        char err[256];
        if (conf_set(telemd_conf_table, &c->s, key, v, err, sizeof(err)) < 0) {
            /* conf_set says "key: reason"; say it with the flag's spelling instead. */
            size_t klen = strlen(key);
            const char *reason =
                strncmp(err, key, klen) == 0 && err[klen] == ':' ? err + klen + 2 : err;
            conf_error(c, "--%s: %s", name, reason);
            continue;
        }
        telemd_key_set(c, key);
    }
    return c->nerrors > before ? -EINVAL : 0;
}

/* ---- putting it together ---- */

static bool setting_off(const char *v)
{
    return v && (v[0] == '\0' || strcasecmp(v, "off") == 0 || strcasecmp(v, "none") == 0 ||
                 strcasecmp(v, "false") == 0);
}

static void setting_clear(char **v)
{
    free(*v);
    *v = NULL;
}

static char *path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = xmalloc(a + b + 2);
    memcpy(p, dir, a);
    size_t n = a;
    if (n == 0 || p[n - 1] != '/')
        p[n++] = '/';
    memcpy(p + n, name, b + 1);
    return p;
}

static void finish_address(struct telemd_conf *c, const char *key, char **value)
{
    if (!*value)
        return;
    if (setting_off(*value)) {
        setting_clear(value);
        return;
    }
    struct listen_address a;
    char err[200];
    if (listen_address_parse(*value, &a, err, sizeof(err)) < 0) {
        conf_error(c, "%s: %s", key, err);
        return;
    }
    if (!listen_address_is_loopback(&a))
        conf_warning(c,
                     "%s: listening on %s, which is not a loopback address: anyone who can "
                     "reach this host can send%s",
                     key, *value, c->s.token ? "" : " (and no token is set)");
}

static void finish_sinks(struct telemd_conf *c)
{
    if (c->nsinks == 0) {
        struct telemd_sink *s = sink_add(c, "sqlite", NULL, 0);
        s->url = xstrdup("sqlite:telem.db");
    }
    for (size_t i = 0; i < c->nsinks; i++) {
        struct telemd_sink *s = &c->sinks[i];
        char where[300];
        if (s->file)
            snprintf(where, sizeof(where), "%s:%d: [sink.%s]", s->file, s->line, s->name);
        else
            snprintf(where, sizeof(where), "--sink %s", s->url ? s->url : "");
        if (!s->url || !s->url[0]) {
            conf_error(c, "%s: url is missing", where);
            continue;
        }
        if (!sink_ops_for_url(s->url)) {
            char shown[256];
            telemd_url_redact(s->url, shown, sizeof(shown));
            conf_error(c,
                       "%s: url '%s': unknown sink type (expected sqlite:PATH, "
                       "mariadb://... or redis://...)",
                       where, shown);
        }
        /* TELEM_<NAME>_PASSWORD, the name upper-cased with '-' made '_'. */
        char env[96] = "TELEM_";
        size_t n = strlen(env);
        for (const char *p = s->name; *p && n + 10 < sizeof(env); p++)
            env[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
        snprintf(env + n, sizeof(env) - n, "_PASSWORD");
        const char *password = getenv(env);
        if (password && password[0])
            sink_setting_put(s, "password", password, NULL, 0);
    }
}

int telemd_conf_finish(struct telemd_conf *c)
{
    size_t before = c->nerrors;
    struct telemd_settings *s = &c->s;
    if (!s->data_dir || !s->data_dir[0]) {
        conf_error(c, "data_dir: must not be empty");
        return -EINVAL;
    }
    if (setting_off(s->socket))
        setting_clear(&s->socket);
    else if (!s->socket)
        s->socket = path_join(s->data_dir, "telemd.sock");
    if (!s->spool_dir || !s->spool_dir[0]) {
        free(s->spool_dir);
        s->spool_dir = path_join(s->data_dir, "spool");
    }
    if (s->log_file && (!s->log_file[0] || strcmp(s->log_file, "-") == 0))
        setting_clear(&s->log_file);
    if (s->token && !s->token[0])
        setting_clear(&s->token);
    if (s->default_profile && !s->default_profile[0])
        setting_clear(&s->default_profile);
    if (!s->profile_tag || !s->profile_tag[0])
        conf_error(c, "profile_tag: must not be empty");

    finish_address(c, "http", &s->http);
    finish_address(c, "udp", &s->udp);
    if (!s->http && !s->socket && !s->udp)
        conf_error(c, "http, socket and udp are all off: telemd would have nothing to listen on");
    if ((uint64_t)s->line_max > s->body_max)
        conf_error(c, "line_max (%lld) is larger than body_max (%llu)", (long long)s->line_max,
                   (unsigned long long)s->body_max);
    if (s->inflight_bytes_max < s->body_max)
        conf_error(c,
                   "inflight_bytes_max (%llu) is smaller than body_max (%llu): no body "
                   "could ever be accepted",
                   (unsigned long long)s->inflight_bytes_max, (unsigned long long)s->body_max);
    finish_sinks(c);
    return c->nerrors > before ? -EINVAL : 0;
}

int telemd_conf_load(struct telemd_conf *c, int argc, char **argv)
{
    telemd_conf_init(c);
    int rc = telemd_conf_parse_args(c, argc, argv);
    if (c->want_help || c->want_version)
        return 0;
    int rc2 = telemd_conf_finish(c);
    return rc < 0 ? rc : rc2;
}

void telemd_conf_print_errors(const struct telemd_conf *c, FILE *out)
{
    size_t shown = c->nerrors < TELEMD_CONF_ERRORS_MAX ? c->nerrors : TELEMD_CONF_ERRORS_MAX;
    for (size_t i = 0; i < shown; i++)
        fprintf(out, "%s\n", c->errors[i]);
    if (c->nerrors > shown)
        fprintf(out, "... and %zu more\n", c->nerrors - shown);
}

void telemd_conf_help(FILE *out)
{
    fprintf(out,
            "Usage: telemd [--config FILE] [--sink URL]... [--KEY VALUE]...\n"
            "\n"
            "telemd takes InfluxDB line protocol over HTTP (POST /write, /api/v2/write; unix\n"
            "socket or TCP) and UDP, keeps it in a durable spool before answering 204, and\n"
            "writes it exactly once, in bulk, into SQLite, MariaDB and Redis.\n"
            "\n"
            "Flags:\n"
            "  --config FILE\n"
            "      INI file: a [telemd] section with the keys below, [sink.NAME] sections\n"
            "  --sink URL\n"
            "      add a sink (sqlite:PATH, mariadb://USER@HOST/DB, redis://HOST:PORT/DB);\n"
            "      repeatable; named after its scheme, then scheme2, scheme3 ...\n"
            "      (default when no sink is configured: sqlite:telem.db in data_dir)\n"
            "  --check-config\n"
            "      load and check the configuration and every sink's settings, print\n"
            "      \"config OK\" and exit 0, or print file:line errors and exit 2\n"
            "  --help, --version\n"
            "\n"
            "Settings (the [telemd] section; each is also a flag, --key-with-dashes VALUE):\n");
    conf_help(telemd_conf_table, "--", out);
    fprintf(out, "\n"
                 "Sink settings ([sink.NAME] sections):\n"
                 "  url TEXT\n"
                 "      where the sink writes, as for --sink\n"
                 "  password TEXT\n"
                 "      store password (or the environment: TELEM_<NAME>_PASSWORD)\n");
    conf_help(sink_worker_conf, NULL, out);
    fprintf(out, "  ...and the sink's own keys (pool_size, ...); see docs/configuration.md, "
                 "docs/mariadb.md, docs/redis.md\n"
                 "\n"
                 "Environment: TELEM_TOKEN, TELEM_<SINKNAME>_PASSWORD. Secrets are never\n"
                 "taken from flags.\n"
                 "\n"
                 "Signals: SIGTERM/SIGINT drain and exit 0; SIGHUP reopens the log file.\n");
}

void telemd_url_redact(const char *url, char *dst, size_t cap)
{
    snprintf(dst, cap, "%s", url);
    const char *sep = strstr(url, "://");
    if (!sep)
        return;
    const char *auth = sep + 3;
    size_t auth_len = strcspn(auth, "/?#");
    const char *at = NULL;
    for (const char *p = auth; p < auth + auth_len; p++) {
        if (*p == '@')
            at = p;
    }
    if (!at)
        return;
    const char *colon = memchr(auth, ':', (size_t)(at - auth));
    if (!colon)
        return;
    snprintf(dst, cap, "%.*s:***%s", (int)(colon - url), url, at);
}
