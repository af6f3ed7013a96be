/* meter.c - lines and bytes per second, for every stream a plugin
 * produces (meter.h). The buckets start full and hold at most one second's
 * worth, so a quiet plugin may print a burst at once and a flooding one
 * gets the rate and no more. */
#include "config.h"

#include <string.h>

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
	const uint64_t ones7 = 0x7f7f7f7f7f7f7f7full, high = 0x8080808080808080ull;
	const uint64_t even = 0x00ff00ff00ff00ffull;
	uint64_t n = 0, lanes = 0;
	size_t i = 0, words = 0;

	/* Eight bytes at a time, not memchr: a record of nothing but newlines
	 * is the flood this counts. A byte of y is zero where the text has a
	 * newline; (y & 0x7f..) + 0x7f.. sets the high bit of each byte that
	 * has any low bit, y itself those with the high bit, and no carry
	 * crosses a byte. The 0/1 per byte add up in byte lanes, which are
	 * folded into n before one could pass 255. */
	for (; len - i >= 8; i += 8) {
		uint64_t y;
		memcpy(&y, p + i, 8);
		y ^= 0x0a0a0a0a0a0a0a0aull;
		lanes += (~(((y & ones7) + ones7) | y) & high) >> 7;
		if (++words == 255) {
			n += (((lanes & even) + ((lanes >> 8) & even)) * 0x0001000100010001ull) >> 48;
			lanes = 0;
			words = 0;
		}
	}
	n += (((lanes & even) + ((lanes >> 8) & even)) * 0x0001000100010001ull) >> 48;
	for (; i < len; i++)
		n += p[i] == '\n';
	return n;
}
