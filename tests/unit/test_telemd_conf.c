/*
 * test_telemd_conf.c: telemd's configuration: defaults, an INI file with [telemd] and
 * [sink.NAME] sections, wrong values reported as "file:line: key: reason", unknown keys and
 * sections, flags over the file, secrets from the environment and never from flags, --sink
 * naming, derived settings, and URL redaction.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/telemd_conf.h"

/* has_error tells whether some collected error contains every one of the given parts. */
static bool has_error(const struct telemd_conf *c, const char *a, const char *b)
{
    for (size_t i = 0; i < c->nerrors && i < TELEMD_CONF_ERRORS_MAX; i++) {
        if (strstr(c->errors[i], a) && (!b || strstr(c->errors[i], b)))
            return true;
    }
    return false;
}

static void dump_errors(const struct telemd_conf *c)
{
    for (size_t i = 0; i < c->nerrors && i < TELEMD_CONF_ERRORS_MAX; i++)
        print_message("  error: %s\n", c->errors[i]);
}

static int load_text(struct telemd_conf *c, const char *text)
{
    return telemd_conf_load_buffer(c, text, strlen(text), "t.ini");
}

static void test_defaults(void **state)
{
    (void)state;
    unsetenv("TELEM_TOKEN");
    struct telemd_conf c;
    char *argv[] = {"telemd", NULL};
    int rc = telemd_conf_load(&c, 1, argv);
    if (rc)
        dump_errors(&c);
    assert_int_equal(rc, 0);
    assert_string_equal(c.s.data_dir, "./telem-data");
    assert_string_equal(c.s.socket, "./telem-data/telemd.sock");
    assert_string_equal(c.s.spool_dir, "./telem-data/spool");
    assert_string_equal(c.s.http, "127.0.0.1:8186");
    assert_null(c.s.udp);
    assert_null(c.s.token);
    assert_null(c.s.log_file);
    assert_null(c.s.default_profile);
    assert_string_equal(c.s.profile_tag, "profile");
    assert_true(c.s.body_max == 64u << 20);
    assert_int_equal(c.s.line_max, 65536);
    assert_int_equal(c.s.tags_max, 32);
    assert_int_equal(c.s.fields_max, 32);
    assert_int_equal(c.s.connections_max, 4096);
    assert_true(c.s.inflight_bytes_max == 512ull << 20);
    assert_true(c.s.spool_segment_bytes == 64u << 20);
    assert_true(c.s.spool_max_bytes == 16ull << 30);
    assert_int_equal(c.s.fsync, 0);
    assert_int_equal(c.s.fsync_interval_ms, 100);
    assert_int_equal(c.s.producers_max, 100000);
    assert_int_equal(c.s.producer_idle_s, 604800);
    assert_int_equal(c.s.retry_after_s, 1);
    assert_int_equal(c.s.drain_ms, 10000);
    assert_int_equal(c.s.health_lag_max, 1000000);
    assert_int_equal(c.s.log_level, 2);
    /* No sink configured: the built-in SQLite one. */
    assert_int_equal(c.nsinks, 1);
    assert_string_equal(c.sinks[0].name, "sqlite");
    assert_string_equal(c.sinks[0].url, "sqlite:telem.db");
    assert_int_equal(c.nerrors, 0);
    assert_int_equal(c.nwarnings, 0);
    telemd_conf_free(&c);
}

static void test_ini_file(void **state)
{
    (void)state;
    unsetenv("TELEM_MAIN_PASSWORD");
    unsetenv("TELEM_TOKEN");
    const char *text = "; telemd settings\n"                                        /* 1 */
                       "[telemd]\n"                                                 /* 2 */
                       "data_dir = /var/lib/telem\n"                                /* 3 */
                       "http = off\n"                                               /* 4 */
                       "udp = 127.0.0.1:8189\n"                                     /* 5 */
                       "body-max = 1m   ; dashes work too\n"                        /* 6 */
                       "fsync = interval\n"                                         /* 7 */
                       "token = t0ken\n"                                            /* 8 */
                       "default_profile = unassigned\n"                             /* 9 */
                       "\n"                                                         /* 10 */
                       "[sink.main]\n"                                              /* 11 */
                       "url = mariadb://telem@localhost/telem?socket=/run/m.sock\n" /* 12 */
                       "batch_max = 2000\n"                                         /* 13 */
                       "pool_size = 4\n"                                            /* 14 */
                       "password = hunter2\n"                                       /* 15 */
                       "[sink.live]\n"                                              /* 16 */
                       "url = redis://127.0.0.1:6379/0\n";                          /* 17 */
    struct telemd_conf c;
    telemd_conf_init(&c);
    int rc = load_text(&c, text);
    /* finish() checks URL schemes against the sinks compiled in; a build may lack some. */
    bool all_sinks = sink_ops_for_url("mariadb://x/y") && sink_ops_for_url("redis://x/0");
    if (rc == 0 && all_sinks)
        rc = telemd_conf_finish(&c);
    if (rc)
        dump_errors(&c);
    assert_int_equal(rc, 0);
    assert_string_equal(c.s.data_dir, "/var/lib/telem");
    if (all_sinks) {
        assert_string_equal(c.s.socket, "/var/lib/telem/telemd.sock");
        assert_null(c.s.http);
    }
    assert_string_equal(c.s.udp, "127.0.0.1:8189");
    assert_true(c.s.body_max == 1u << 20);
    assert_int_equal(c.s.fsync, 1);
    assert_string_equal(c.s.token, "t0ken");
    assert_string_equal(c.s.default_profile, "unassigned");

    assert_int_equal(c.nsinks, 2);
    struct telemd_sink *m = &c.sinks[0];
    assert_string_equal(m->name, "main");
    assert_string_equal(m->url, "mariadb://telem@localhost/telem?socket=/run/m.sock");
    assert_int_equal(m->worker.batch_max, 2000);
    assert_string_equal(m->file, "t.ini");
    assert_int_equal(m->line, 11);
    assert_int_equal(m->nsettings, 2);
    assert_string_equal(m->settings[0].key, "pool_size");
    assert_string_equal(m->settings[0].value, "4");
    assert_int_equal(m->settings[0].line, 14);
    assert_string_equal(telemd_sink_setting(m, "password"), "hunter2");
    assert_null(telemd_sink_setting(m, "batch_max")); /* generic keys are not passed on */
    assert_null(telemd_sink_setting(m, "url"));
    assert_string_equal(c.sinks[1].name, "live");
    assert_int_equal(c.sinks[1].line, 16);
    assert_int_equal(c.sinks[1].nsettings, 0);
    telemd_conf_free(&c);
}

static void test_bad_values(void **state)
{
    (void)state;
    const char *text = "[telemd]\n"                /* 1 */
                       "body_max = lots\n"         /* 2 */
                       "fsync = sometimes\n"       /* 3 */
                       "unknown_key = 1\n"         /* 4 */
                       "tags_max = 65\n"           /* 5 */
                       "[sink.x]\n"                /* 6 */
                       "batch_max = banana\n"      /* 7 */
                       "[weird]\n"                 /* 8 */
                       "a = b\n"                   /* 9 */
                       "c = d\n"                   /* 10 */
                       "[telemd]\n"                /* 11 */
                       "this line has no equals\n" /* 12 */
                       "[broken\n"                 /* 13 */
                       "[sink.bad name]\n"         /* 14 */
                       "url = sqlite:x\n";         /* 15 */
    struct telemd_conf c;
    telemd_conf_init(&c);
    assert_int_equal(load_text(&c, text), -22);
    dump_errors(&c);
    assert_true(has_error(&c, "t.ini:2: body_max: ", "lots"));
    assert_true(has_error(&c, "t.ini:3: fsync: ", "always|interval|never"));
    assert_true(has_error(&c, "t.ini:4: unknown_key: unknown setting", NULL));
    assert_true(has_error(&c, "t.ini:5: tags_max: ", "65"));
    assert_true(has_error(&c, "t.ini:7: batch_max", "banana"));
    assert_true(has_error(&c, "t.ini:8: [weird]: unknown section", NULL));
    assert_false(has_error(&c, "t.ini:10:", NULL)); /* one message per unknown section */
    assert_true(has_error(&c, "t.ini:12: syntax error", NULL));
    assert_true(has_error(&c, "t.ini:13: syntax error", NULL));
    assert_true(has_error(&c, "t.ini:14: [sink.bad name]", "sink name"));
    telemd_conf_free(&c);
}

static void test_sink_checks(void **state)
{
    (void)state;
    const char *text = "[sink.nourl]\n"
                       "batch_max = 10\n"
                       "[sink.odd]\n"
                       "url = ftp://x:secret@host/\n";
    struct telemd_conf c;
    telemd_conf_init(&c);
    assert_int_equal(load_text(&c, text), 0);
    assert_int_equal(telemd_conf_finish(&c), -22);
    dump_errors(&c);
    assert_true(has_error(&c, "t.ini:1: [sink.nourl]: url is missing", NULL));
    assert_true(has_error(&c, "t.ini:3: [sink.odd]", "unknown sink type"));
    /* The password in the URL is never repeated. */
    assert_false(has_error(&c, "secret", NULL));
    telemd_conf_free(&c);
}

static void test_misc_file_errors(void **state)
{
    (void)state;
    struct telemd_conf c;
    telemd_conf_init(&c);
    assert_int_equal(telemd_conf_load_buffer(&c, "[telemd]\nhttp = a\0b\n", 20, "n.ini"), -22);
    assert_true(has_error(&c, "n.ini:2: NUL byte", NULL));
    telemd_conf_free(&c);

    telemd_conf_init(&c);
    assert_int_equal(load_text(&c, "data_dir = x\n"), -22);
    assert_true(has_error(&c, "t.ini:1: data_dir: setting outside a section", NULL));
    telemd_conf_free(&c);

    static char big[8192];
    size_t n = 5000;
    strcpy(big, "[telemd]\nprofile_tag = ");
    size_t off = strlen(big);
    memset(big + off, 'x', n);
    strcpy(big + off + n, "\nfsync = never\n");
    telemd_conf_init(&c);
    assert_int_equal(load_text(&c, big), -22);
    assert_true(has_error(&c, "t.ini:2: line longer than", NULL));
    assert_int_equal(c.nerrors, 1);
    assert_int_equal(c.s.fsync, 2); /* line 3 still read, in step */
    telemd_conf_free(&c);

    /* A long but acceptable line (over inih's usual 200 bytes). */
    strcpy(big, "[telemd]\ndefault_profile = ");
    off = strlen(big);
    memset(big + off, 'y', 1500);
    strcpy(big + off + 1500, "\n");
    telemd_conf_init(&c);
    assert_int_equal(load_text(&c, big), 0);
    assert_int_equal(strlen(c.s.default_profile), 1500);
    telemd_conf_free(&c);

    telemd_conf_init(&c);
    assert_int_equal(telemd_conf_load_file(&c, "/nonexistent/telemd.ini"), -2);
    assert_true(has_error(&c, "/nonexistent/telemd.ini: No such file", NULL));
    telemd_conf_free(&c);
}

static char *write_temp(const char *text)
{
    static char path[64];
    strcpy(path, "/tmp/test_telemd_conf.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_flags_over_file(void **state)
{
    (void)state;
    unsetenv("TELEM_TOKEN");
    unsetenv("TELEM_MAIN_PASSWORD");
    char *path = write_temp("[telemd]\n"
                            "data_dir = /from/file\n"
                            "body_max = 8m\n"
                            "log_level = debug\n"
                            "[sink.main]\n"
                            "url = sqlite:file.db\n"
                            "password = from-file\n");
    char *argv[] = {"telemd", "--data-dir", "/from/flag",  "--body-max=2m",    "--config",
                    path,     "--http",     "127.0.0.1:0", "--log-level=warn", NULL};
    setenv("TELEM_MAIN_PASSWORD", "from-env", 1);
    setenv("TELEM_TOKEN", "env-token", 1);
    struct telemd_conf c;
    int rc = telemd_conf_load(&c, 9, argv);
    if (rc)
        dump_errors(&c);
    assert_int_equal(rc, 0);
    /* The flag wins even though --config came after it. */
    assert_string_equal(c.s.data_dir, "/from/flag");
    assert_string_equal(c.s.socket, "/from/flag/telemd.sock");
    assert_true(c.s.body_max == 2u << 20);
    assert_int_equal(c.s.log_level, 1);
    assert_string_equal(c.s.http, "127.0.0.1:0");
    assert_true(c.http_explicit);
    assert_string_equal(c.s.token, "env-token");
    assert_int_equal(c.nsinks, 1);
    assert_string_equal(telemd_sink_setting(&c.sinks[0], "password"), "from-env");
    assert_string_equal(c.config_file, path);
    telemd_conf_free(&c);
    unsetenv("TELEM_MAIN_PASSWORD");
    unsetenv("TELEM_TOKEN");
    unlink(path);
}

static void test_flag_errors(void **state)
{
    (void)state;
    char *argv[] = {"telemd",    "--token", "supersecret", "--body-max", "huge",
                    "--no-such", "x",       "stray",       "--fsync",    NULL};
    struct telemd_conf c;
    assert_int_equal(telemd_conf_load(&c, 9, argv), -22);
    dump_errors(&c);
    assert_true(has_error(&c, "--token: not accepted on the command line", NULL));
    assert_false(has_error(&c, "supersecret", NULL));
    assert_true(has_error(&c, "--body-max: ", "huge"));
    assert_false(has_error(&c, "--body-max: body_max:", NULL));
    assert_true(has_error(&c, "--no-such: unknown flag", NULL));
    assert_true(has_error(&c, "stray: unexpected argument", NULL));
    assert_false(has_error(&c, "x: unexpected", NULL));
    assert_true(has_error(&c, "--fsync: needs a value", NULL));
    telemd_conf_free(&c);

    char *argv2[] = {"telemd", "--help", "--version", "--check-config", NULL};
    assert_int_equal(telemd_conf_load(&c, 4, argv2), 0);
    assert_true(c.want_help);
    assert_true(c.want_version);
    assert_true(c.check_config);
    telemd_conf_free(&c);

    char *argv3[] = {"telemd", "--config", "/nonexistent.ini", NULL};
    assert_int_equal(telemd_conf_load(&c, 3, argv3), -22);
    assert_true(has_error(&c, "/nonexistent.ini", "No such file"));
    telemd_conf_free(&c);
}

static void test_flag_sinks(void **state)
{
    (void)state;
    char *path = write_temp("[sink.sqlite]\n"
                            "url = sqlite:file.db\n"
                            "batch_max = 77\n");
    char *argv[] = {"telemd",      "--config",           path,     "--sink",
                    "sqlite:a.db", "--sink=sqlite:b.db", "--sink", "redis://127.0.0.1:6379/0",
                    NULL};
    struct telemd_conf c;
    /* Without finish(): naming does not depend on which sinks are compiled in. */
    telemd_conf_init(&c);
    int rc = telemd_conf_parse_args(&c, 8, argv);
    if (rc)
        dump_errors(&c);
    assert_int_equal(rc, 0);
    assert_int_equal(c.nsinks, 3);
    /* The first sqlite flag takes over [sink.sqlite]'s URL and keeps its settings. */
    assert_string_equal(c.sinks[0].name, "sqlite");
    assert_string_equal(c.sinks[0].url, "sqlite:a.db");
    assert_int_equal(c.sinks[0].worker.batch_max, 77);
    assert_string_equal(c.sinks[1].name, "sqlite2");
    assert_string_equal(c.sinks[1].url, "sqlite:b.db");
    assert_string_equal(c.sinks[2].name, "redis");
    telemd_conf_free(&c);
    unlink(path);

    char *argv2[] = {"telemd", "--sink", "nonsense", NULL};
    telemd_conf_init(&c);
    assert_int_equal(telemd_conf_parse_args(&c, 3, argv2), -22);
    assert_true(has_error(&c, "--sink nonsense", NULL));
    telemd_conf_free(&c);
}

static void test_derived_and_cross_checks(void **state)
{
    (void)state;
    struct telemd_conf c;
    char *argv[] = {"telemd", "--socket", "off", "--http", "off", NULL};
    assert_int_equal(telemd_conf_load(&c, 5, argv), -22);
    assert_true(has_error(&c, "nothing to listen on", NULL));
    telemd_conf_free(&c);

    char *argv2[] = {"telemd",       "--socket",   "off", "--http",
                     "0.0.0.0:8186", "--log-file", "-",   NULL};
    assert_int_equal(telemd_conf_load(&c, 7, argv2), 0);
    assert_null(c.s.socket);
    assert_null(c.s.log_file);
    assert_int_equal(c.nwarnings, 1);
    assert_non_null(strstr(c.warnings[0], "not a loopback address"));
    telemd_conf_free(&c);

    char *argv3[] = {"telemd", "--http", "nowhere", "--udp", "127.0.0.1:99999", NULL};
    assert_int_equal(telemd_conf_load(&c, 5, argv3), -22);
    assert_true(has_error(&c, "http: ", "host:port"));
    assert_true(has_error(&c, "udp: ", "port"));
    telemd_conf_free(&c);

    char *argv4[] = {"telemd", "--line-max", "2000000", "--body-max", "1m", NULL};
    assert_int_equal(telemd_conf_load(&c, 5, argv4), -22);
    assert_true(has_error(&c, "line_max", "body_max"));
    telemd_conf_free(&c);
}

static void test_redact_and_help(void **state)
{
    (void)state;
    char out[256];
    telemd_url_redact("mariadb://telem:hunter2@db.example/telem?socket=/x", out, sizeof(out));
    assert_string_equal(out, "mariadb://telem:***@db.example/telem?socket=/x");
    telemd_url_redact("mariadb://telem@localhost/telem", out, sizeof(out));
    assert_string_equal(out, "mariadb://telem@localhost/telem");
    telemd_url_redact("redis://:pw@127.0.0.1:6379/0", out, sizeof(out));
    assert_string_equal(out, "redis://:***@127.0.0.1:6379/0");
    telemd_url_redact("sqlite:telem.db", out, sizeof(out));
    assert_string_equal(out, "sqlite:telem.db");

    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    telemd_conf_help(mem);
    fclose(mem);
    assert_non_null(strstr(text, "--data-dir"));
    assert_non_null(strstr(text, "--body-max"));
    assert_non_null(strstr(text, "--inflight-bytes-max"));
    assert_non_null(strstr(text, "batch_max"));
    assert_non_null(strstr(text, "TELEM_TOKEN"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_ini_file),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_sink_checks),
        cmocka_unit_test(test_misc_file_errors),
        cmocka_unit_test(test_flags_over_file),
        cmocka_unit_test(test_flag_errors),
        cmocka_unit_test(test_flag_sinks),
        cmocka_unit_test(test_derived_and_cross_checks),
        cmocka_unit_test(test_redact_and_help),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
