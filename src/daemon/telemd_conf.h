/*
 * telemd_conf.h: telemd's settings: one table for the [telemd] section, whose keys are also
 * the long flags (`data_dir` <-> `--data-dir`), and one [sink.NAME] section per sink.
 *
 * Sources, later ones winning: the table's defaults, the INI file (--config), the environment
 * (TELEM_TOKEN, TELEM_<SINKNAME>_PASSWORD), then the flags. Secrets are never taken from the
 * command line, where `ps` would show them. Every problem is collected, not just the first, as
 * "file:line: key: what is wrong" (or "--flag: what is wrong"), so one run of --check-config
 * lists them all.
 */
#ifndef TELEM_DAEMON_TELEMD_CONF_H
#define TELEM_DAEMON_TELEMD_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/conf.h"
#include "sink/sink.h"
#include "sink/sink_worker_conf.h"

/* The [telemd] section, in the order --help lists it. */
struct telemd_settings {
    char *data_dir;
    char *spool_dir;
    char *socket;
    char *http;
    char *udp;
    char *log_file;
    int log_level; /* enum log_level */
    char *token;
    char *profile_tag;
    char *default_profile;
    uint64_t body_max;
    int64_t line_max;
    int64_t tags_max;
    int64_t fields_max;
    uint64_t headers_max;
    int64_t connections_max;
    uint64_t inflight_bytes_max;
    int64_t http_idle_timeout_s;
    uint64_t http_read_bytes;
    int64_t listen_backlog;
    uint64_t udp_buffer_bytes;
    uint64_t spool_segment_bytes;
    uint64_t spool_max_bytes;
    int fsync; /* enum spool_fsync */
    int64_t fsync_interval_ms;
    int64_t producers_max;
    int64_t producer_idle_s;
    int64_t retry_after_s;
    int64_t drain_ms;
    int64_t sink_open_wait_ms;
    int64_t health_lag_max;
};

extern const struct conf_entry telemd_conf_table[];

/* One [sink.NAME] section (or --sink URL). */
struct telemd_sink {
    char *name;
    char *url;
    struct sink_worker_options worker;
    struct sink_setting *settings; /* keys for the sink's create(); strings owned here */
    size_t nsettings;
    char *file; /* where the section was, for messages; NULL for --sink */
    int line;
};

#define TELEMD_CONF_ERRORS_MAX 32
#define TELEMD_CONF_ERROR_LEN  320

struct telemd_conf {
    struct telemd_settings s;
    struct telemd_sink *sinks;
    size_t nsinks;
    bool http_explicit; /* http was set by the file or a flag (a non-loopback one is allowed) */
    bool udp_explicit;
    char *config_file; /* --config */
    bool want_help;
    bool want_version;
    bool check_config;
    char errors[TELEMD_CONF_ERRORS_MAX][TELEMD_CONF_ERROR_LEN];
    size_t nerrors; /* errors[] holds the first TELEMD_CONF_ERRORS_MAX */
    size_t nwarnings;
    char warnings[8][TELEMD_CONF_ERROR_LEN];
};

/* telemd_conf_init fills c with the defaults and no sinks. Free with telemd_conf_free. */
void telemd_conf_init(struct telemd_conf *c);

/* telemd_conf_free releases everything c holds. Accepts a zeroed c. */
void telemd_conf_free(struct telemd_conf *c);

/*
 * telemd_conf_load_buffer reads INI text[0..len) (need not be NUL-terminated; a NUL byte is
 * an error) as if it were the file `name`. Borrows text. Returns 0, or -EINVAL with errors
 * added to c.
 */
int telemd_conf_load_buffer(struct telemd_conf *c, const char *text, size_t len, const char *name);

/* telemd_conf_load_file reads the INI file at path. Returns 0, -EINVAL or -errno (errors added). */
int telemd_conf_load_file(struct telemd_conf *c, const char *path);

/*
 * telemd_conf_parse_args applies argv[1..argc) to c: --config FILE is loaded first, then the
 * environment, then every other flag in order. Sets want_help / want_version / check_config.
 * Borrows argv. Returns 0, or -EINVAL with errors added.
 */
int telemd_conf_parse_args(struct telemd_conf *c, int argc, char **argv);

/*
 * telemd_conf_apply_env applies TELEM_TOKEN. (Sink passwords are applied by telemd_conf_finish,
 * once every sink is known.) Returns 0.
 */
int telemd_conf_apply_env(struct telemd_conf *c);

/*
 * telemd_conf_finish derives what depends on other settings (socket under data_dir, spool_dir,
 * the default SQLite sink when none is configured, sink passwords from the environment) and
 * checks the settings together (addresses, limits, sink URL schemes). Returns 0, or -EINVAL
 * with errors added.
 */
int telemd_conf_finish(struct telemd_conf *c);

/*
 * telemd_conf_load does everything telemd's main needs: init, parse_args (file, env, flags),
 * finish. On -EINVAL the errors are in c. c must be freed with telemd_conf_free either way.
 */
int telemd_conf_load(struct telemd_conf *c, int argc, char **argv);

/* telemd_conf_print_errors writes each error on its own line to out. */
void telemd_conf_print_errors(const struct telemd_conf *c, FILE *out);

/* telemd_conf_help prints the usage text, generated from the tables. */
void telemd_conf_help(FILE *out);

/*
 * telemd_sink_setting returns the value of key among a sink's create() settings, or NULL.
 */
const char *telemd_sink_setting(const struct telemd_sink *s, const char *key);

/*
 * telemd_url_redact copies url into dst with any password in it ("user:secret@") replaced by
 * "***", for log lines and the ready line.
 */
void telemd_url_redact(const char *url, char *dst, size_t cap);

#endif
