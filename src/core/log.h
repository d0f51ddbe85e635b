/*
 * log.h: the one logging path of the daemon and the command-line tools.
 *
 * LOG(level, component, fmt, ...) checks the level before formatting anything, so a debug line
 * costs one comparison when it is off. Lines go to the log file (or stderr) as
 * "2026-11-27T02:46:09.123Z level component: message". log_reopen() is what SIGHUP calls.
 * Never pass a password or a token to a log call.
 *
 * Thread-safe: each line is written with one write(2) call.
 */
#ifndef TELEM_CORE_LOG_H
#define TELEM_CORE_LOG_H

enum log_level {
    LOG_LEVEL_ERROR = 0,
    LOG_LEVEL_WARN = 1,
    LOG_LEVEL_INFO = 2,
    LOG_LEVEL_DEBUG = 3,
};

extern int log_level_current;

#define LOG(level, component, ...)                                                                 \
    do {                                                                                           \
        if ((level) <= log_level_current)                                                          \
            log_write((level), (component), __VA_ARGS__);                                          \
    } while (0)

#define LOG_ERROR(component, ...) LOG(LOG_LEVEL_ERROR, component, __VA_ARGS__)
#define LOG_WARN(component, ...)  LOG(LOG_LEVEL_WARN, component, __VA_ARGS__)
#define LOG_INFO(component, ...)  LOG(LOG_LEVEL_INFO, component, __VA_ARGS__)
#define LOG_DEBUG(component, ...) LOG(LOG_LEVEL_DEBUG, component, __VA_ARGS__)

/* log_write formats and writes one line. Use the LOG macros instead of calling it directly. */
void log_write(enum log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * log_open sends lines to path (appending, created 0640), or to stderr when path is NULL.
 * Keeps a copy of path for log_reopen. Returns 0, or a negative errno (stderr stays in use).
 */
int log_open(const char *path);

/* log_reopen closes and reopens the log file, for log rotation (SIGHUP). Returns 0 or -errno. */
int log_reopen(void);

/* log_parse_level maps "error", "warn", "info", "debug" to a level. Returns 0 or -EINVAL. */
int log_parse_level(const char *text, enum log_level *out);

#endif
