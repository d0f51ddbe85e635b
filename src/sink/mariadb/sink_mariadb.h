/*
 * sink_mariadb.h: what the MariaDB sink offers beyond its sink_ops table (sink.h), for telemctl:
 * an administrative connection configured exactly like a [sink.NAME] section configures the
 * sink (URL, password, TLS, partitioning), for `telemctl migrate`, `telemctl retention` and
 * `telemctl query` against MariaDB.
 */
#ifndef TELEM_SINK_MARIADB_SINK_MARIADB_H
#define TELEM_SINK_MARIADB_SINK_MARIADB_H

#include <stddef.h>
#include <stdint.h>

#include <mysql.h>

#include "sink/mariadb/mariadb_schema.h"
#include "sink/sink.h"

struct sink_mariadb_admin {
    MYSQL *mysql;                         /* autocommit on, strict mode, UTC, no read timeout */
    struct mariadb_schema_options schema; /* the section's partitioning settings */
    int64_t retention_days;               /* the section's retention_days; 0: keep everything */
};

/*
 * sink_mariadb_admin_open reads cfg like the sink's create() (unknown keys are errors), then
 * connects. Borrows cfg. Returns 0 with *a filled (caller closes with sink_mariadb_admin_close),
 * or a negative errno with err filled (never holding the password).
 */
int sink_mariadb_admin_open(const struct sink_config *cfg, struct sink_mariadb_admin *a, char *err,
                            size_t errlen);

/* sink_mariadb_admin_close closes the connection. Accepts a zeroed or closed *a. */
void sink_mariadb_admin_close(struct sink_mariadb_admin *a);

#endif
