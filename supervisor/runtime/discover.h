/* discover.h - discover.c: what every plugin says about itself (layout,
 * version, exports, entry points, priority), read by one sandboxed helper
 * for all of them (helpers/scan.c) rather than a worker each, and kept
 * until a plugin changes. pb_supervisor_discover and pb_hook use it. */
#ifndef PLUGBOX_RUNTIME_DISCOVER_H
#define PLUGBOX_RUNTIME_DISCOVER_H

#include <stddef.h>

#include "runtime/process.h"

/* One plugin as the scan saw it: exactly one of hello and error. */
struct pb_discovered {
	char *name;
	char *stamp; /* its directory and metadata files as they were when read */
	const Plugbox__Hello *hello;
	const char *error; /* its metadata is bad: why */
	Plugbox__Envelope *env;
};

/* Every plugin in the directory, sorted by name, scanned again where its
 * stamp changed; valid until the next call or pb_discover_free. 0, or
 * -errno with the supervisor's message set (the directory cannot be read,
 * the scan could not run). */
int pb_discover_refresh(pb_supervisor *s, const struct pb_discovered **out, size_t *n);
void pb_discover_free(pb_supervisor *s);
/* A map of what a Hello says of plugin (name, layout, version, exports,
 * entry_points, priority; h NULL: empty ones), as pb_supervisor_discover
 * and pb_describe give it; NULL when out of memory. */
Plugbox__Value *pb_hello_map(const char *plugin, const Plugbox__Hello *h);
/* map[key] = v, taking v (freed on failure). 0 or -ENOMEM. */
int pb_map_put(Plugbox__Value *map, const char *key, Plugbox__Value *v);
/* How many scans have run so far (tests: an unchanged plugin is not
 * scanned again). */
unsigned long pb_discover_scans(const pb_supervisor *s);

#endif
