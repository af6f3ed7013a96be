/* meter.h - a rate meter for what a plugin produces: lines and bytes per
 * second, with a burst of one second's worth (a token bucket for each),
 * and a count of what it turned away, for the "dropped N lines / N bytes"
 * note. Pure arithmetic on the caller's clock, so it is unit-tested. */
#ifndef PLUGBOX_TOOLKIT_METER_H
#define PLUGBOX_TOOLKIT_METER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pb_meter {
	double at;                             /* when the buckets were last filled (0: never) */
	double lines, bytes;                   /* what may still pass */
	uint64_t dropped_lines, dropped_bytes; /* turned away since the last note */
};

/* May a line of `bytes` bytes pass at `now` (seconds)? Takes it from the
 * buckets if so; counts it as dropped if not. */
bool pb_meter_take(struct pb_meter *m, double lines_per_s, double bytes_per_s, double now, size_t bytes);
/* Counts `lines` lines of `bytes` bytes as dropped without looking at
 * the buckets (the rest of a record once one line was refused). */
void pb_meter_drop(struct pb_meter *m, uint64_t lines, uint64_t bytes);
/* What was dropped since the last call, and forgets it: false when nothing. */
bool pb_meter_dropped(struct pb_meter *m, uint64_t *lines, uint64_t *bytes);
/* Newlines in the `len` bytes at p. */
uint64_t pb_count_lines(const char *p, size_t len);

#endif
