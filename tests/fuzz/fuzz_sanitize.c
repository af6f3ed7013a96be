/* fuzz_sanitize.c - libFuzzer target for the one sanitiser of plugin text
 * (supervisor/toolkit/sanitize.c) and the line counter of the output meter.
 *
 * Input: one byte of flags and output room, then the text. Invariants,
 * whatever the bytes: the output is NUL-terminated inside its buffer and
 * no longer than PB_SAN_EXPANSION bytes per input byte; it holds no C0
 * control but tab (and newline when multi-line), no DEL, no C1 control,
 * no bidi override and no byte that is not well-formed UTF-8; a larger
 * buffer only ever extends what a smaller one got (cuts fall between
 * whole characters or escapes); and text that needed no escape comes out
 * unchanged.
 */
#include <string.h>

#include "fuzz_common.h"
#include "toolkit/meter.h"
#include "toolkit/sanitize.h"

/* Length of the well-formed UTF-8 sequence at p, and its code point; 0 if
 * none (an independent decoder, written the other way round from
 * sanitize.c's: by the code point's range, then the shortest form). */
static size_t decode(const unsigned char *p, size_t left, uint32_t *cp)
{
	size_t n = p[0] < 0x80 ? 1 : (p[0] & 0xe0) == 0xc0 ? 2
	                     : (p[0] & 0xf0) == 0xe0       ? 3
	                     : (p[0] & 0xf8) == 0xf0       ? 4
	                                                   : 0;
	static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };

	if (n == 0 || n > left)
		return 0;
	*cp = n == 1 ? p[0] : (uint32_t)(p[0] & (0x7f >> n));
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		*cp = (*cp << 6) | (p[i] & 0x3f);
	}
	if (*cp < min[n] || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
		return 0;
	return n;
}

static bool shown_as_is(uint32_t cp, unsigned flags)
{
	if (cp == '\t' || (cp == '\n' && (flags & PB_SAN_MULTILINE)))
		return true;
	if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f))
		return false;
	return !(cp == 0x61c || cp == 0x200e || cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
	         (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 || cp == 0x2029);
}

static void check_output(const char *out, size_t n, unsigned flags)
{
	const unsigned char *p = (const unsigned char *)out;

	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t k = decode(p + i, n - i, &cp);
		FUZZ_ASSERT(k > 0);
		FUZZ_ASSERT(shown_as_is(cp, flags));
		i += k;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char small[64], big[(1 << 16) * PB_SAN_EXPANSION + 1];
	unsigned flags, room;
	const char *text;
	size_t len, n, m;
	bool clean = true;

	if (size < 1 || size > (1 << 16))
		return 0;
	flags = data[0] & 1 ? PB_SAN_MULTILINE : 0;
	room = 1 + (data[0] >> 1) % sizeof(small);
	text = (const char *)data + 1;
	len = size - 1;

	n = pb_sanitize(big, sizeof(big), text, len, flags);
	FUZZ_ASSERT(n < sizeof(big) && big[n] == '\0' && strlen(big) == n);
	FUZZ_ASSERT(n <= len * PB_SAN_EXPANSION);
	check_output(big, n, flags);

	m = pb_sanitize(small, room, text, len, flags);
	FUZZ_ASSERT(m < room && small[m] == '\0' && m <= n);
	FUZZ_ASSERT(memcmp(small, big, m) == 0);
	check_output(small, m, flags);

	/* Text with nothing to escape passes byte for byte. */
	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t k = decode((const unsigned char *)text + i, len - i, &cp);
		if (k == 0 || !shown_as_is(cp, flags)) {
			clean = false;
			break;
		}
		i += k;
	}
	if (clean)
		FUZZ_ASSERT(n == len && memcmp(big, text, len) == 0);

	/* A cut (pb_utf8_cut, pb_utf8_format) of well-formed text at any
	 * length is well-formed, at most 3 bytes short of the room, and a
	 * prefix of what a larger room keeps. */
	{
		bool valid = true;
		for (size_t i = 0; i < len && valid;) {
			uint32_t cp;
			size_t k = decode((const unsigned char *)text + i, len - i, &cp);
			valid = k > 0 && memchr(text + i, '\0', k) == NULL;
			i += k;
		}
		if (valid) {
			size_t max = room - 1, cut = pb_utf8_cut(text, len, max), wider;
			char fmt[64];
			FUZZ_ASSERT(cut <= max && cut <= len && (len <= max ? cut == len : max - cut <= 3));
			for (size_t i = 0; i < cut;) {
				uint32_t cp;
				size_t k = decode((const unsigned char *)text + i, cut - i, &cp);
				FUZZ_ASSERT(k > 0);
				i += k;
			}
			wider = pb_utf8_cut(text, len, max + 1);
			FUZZ_ASSERT(wider >= cut);
			/* the formatted cut: the same bytes as pb_utf8_cut keeps */
			FUZZ_ASSERT(pb_utf8_format(fmt, room < sizeof(fmt) ? room : sizeof(fmt), "%.*s", (int)len, text) ==
			            pb_utf8_cut(text, len, (room < sizeof(fmt) ? room : sizeof(fmt)) - 1));
		}
	}
	/* The meter's line count is the number of newlines. */
	size_t newlines = 0;
	for (size_t i = 0; i < len; i++)
		newlines += text[i] == '\n';
	FUZZ_ASSERT(pb_count_lines(text, len) == newlines);
	return 0;
}
