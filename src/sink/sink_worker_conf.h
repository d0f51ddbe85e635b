/*
 * sink_worker_conf.h: the settings table of the generic [sink.NAME] keys that the sink worker
 * itself takes (batch_max, flush_interval_ms, retry_base_ms, retry_max_ms, dead_letter). The
 * daemon's config code fills a struct sink_worker_options from it with conf_defaults() and
 * conf_set(), hands the keys it does not find here to the sink's create(), and releases the
 * dead_letter string with conf_free(sink_worker_conf, &opt).
 */
#ifndef TELEM_SINK_SINK_WORKER_CONF_H
#define TELEM_SINK_SINK_WORKER_CONF_H

#include "core/conf.h"
#include "sink/sink.h"

/* Entries over struct sink_worker_options, ending with a NULL key. */
extern const struct conf_entry sink_worker_conf[];

#endif
