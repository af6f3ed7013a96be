/* meter.c - lines and bytes per second, for every stream a plugin
 * produces (meter.h). The buckets start full and hold at most one second's
 * worth, so a quiet plugin may print a burst at once and a flooding one
 * gets the rate and no more. */
#include "config.h"

#include "toolkit/meter.h"

bool pb_meter_take(struct pb_meter *m, double lines_per_s, double bytes_per_s, double now, size_t bytes)
{
	if (m->at == 0 || now < m->at) {
		m->lines = lines_per_s;
		m->bytes = bytes_per_s;
	} else {
		double dt = now - m->at;
		m->lines = m->lines + dt * lines_per_s > lines_per_s ? lines_per_s : m->lines + dt * lines_per_s;
		m->bytes = m->bytes + dt * bytes_per_s > bytes_per_s ? bytes_per_s : m->bytes + dt * bytes_per_s;
	}
	m->at = now;
	if (m->lines >= 1 && m->bytes >= (double)bytes) {
		m->lines -= 1;
		m->bytes -= (double)bytes;
		return true;
	}
	pb_meter_drop(m, 1, bytes);
	return false;
}

void pb_meter_drop(struct pb_meter *m, uint64_t lines, uint64_t bytes)
{
	m->dropped_lines += lines;
	m->dropped_bytes += bytes;
}

bool pb_meter_dropped(struct pb_meter *m, uint64_t *lines, uint64_t *bytes)
{
	*lines = m->dropped_lines;
	*bytes = m->dropped_bytes;
	m->dropped_lines = m->dropped_bytes = 0;
	return *lines || *bytes;
}

uint64_t pb_count_lines(const char *p, size_t len)
{
	uint64_t n = 0;

	/* A plain loop, not memchr: a record of nothing but newlines is the
	 * flood this counts, and it runs at a byte a cycle or better. */
	for (size_t i = 0; i < len; i++)
		n += p[i] == '\n';
	return n;
}
