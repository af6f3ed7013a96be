/* sanitize.c - the one sanitiser for plugin-supplied text (sanitize.h).
 *
 * The rule: what a terminal or a log viewer would act on instead of show is
 * shown as an escape, and everything else passes unchanged, so that honest
 * text (any language, any printable Unicode) reads as the plugin wrote it.
 *
 *  - tab passes; '\n' passes with PB_SAN_MULTILINE and is shown as \n
 *    otherwise (a field can never forge a line);
 *  - the other C0 controls (U+0000..U+001F, ESC, CR, BEL...) and DEL are
 *    shown as \xNN (two lower-case hex digits);
 *  - the C1 controls U+0080..U+009F (U+009B is the 8-bit CSI), the
 *    direction marks, embeddings, overrides and isolates (U+061C,
 *    U+200E, U+200F, U+202A..U+202E, U+2066..U+2069: "Trojan Source") and
 *    the Unicode line and paragraph separators (U+2028, U+2029) are shown
 *    as \u{XXXX} (lower-case hex);
 *  - each byte that is not part of well-formed UTF-8 (a stray continuation
 *    byte, a truncated sequence, an overlong form, a surrogate, a value
 *    past U+10FFFF, 0xC0, 0xC1, 0xF5..0xFF) is shown as \xNN, and decoding
 *    resumes at the next byte;
 *  - a backslash passes as it is: escapes are for the eye, the exact bytes
 *    are in --json output.
 */
#include "config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "toolkit/sanitize.h"

/* Length of the well-formed UTF-8 sequence at p (at most `left` bytes),
 * and its code point; 0 when the byte at p does not start one. */
static size_t utf8_decode(const unsigned char *p, size_t left, uint32_t *cp)
{
	unsigned char b = p[0];
	size_t n;
	unsigned char lo = 0x80, hi = 0xbf; /* bounds of the second byte */

	if (b < 0x80) {
		*cp = b;
		return 1;
	}
	if (b >= 0xc2 && b <= 0xdf) {
		n = 2;
		*cp = b & 0x1f;
	} else if (b >= 0xe0 && b <= 0xef) {
		n = 3;
		*cp = b & 0x0f;
		if (b == 0xe0)
			lo = 0xa0; /* overlong */
		else if (b == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (b >= 0xf0 && b <= 0xf4) {
		n = 4;
		*cp = b & 0x07;
		if (b == 0xf0)
			lo = 0x90; /* overlong */
		else if (b == 0xf4)
			hi = 0x8f; /* past U+10FFFF */
	} else {
		return 0;
	}
	if (left < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		*cp = (*cp << 6) | (p[i] & 0x3f);
	}
	return n;
}

/* Code points a terminal or viewer acts on rather than shows. */
static bool hidden_code_point(uint32_t cp)
{
	return (cp >= 0x80 && cp <= 0x9f) || cp == 0x61c || cp == 0x200e || cp == 0x200f ||
	       (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) ||
	       cp == 0x2028 || cp == 0x2029;
}

/* Appends `n` bytes if they fit whole (room is kept for the NUL). */
static bool put(char *out, size_t cap, size_t *at, const char *s, size_t n)
{
	if (cap - 1 - *at < n)
		return false;
	memcpy(out + *at, s, n);
	*at += n;
	return true;
}

size_t pb_sanitize(char *out, size_t cap, const char *in, size_t len, unsigned flags)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t at = 0, i = 0;

	if (cap == 0)
		return 0;
	while (i < len) {
		char esc[16];
		uint32_t cp;
		size_t n = utf8_decode(p + i, len - i, &cp);
		bool fits;

		if (n == 0) {
			snprintf(esc, sizeof(esc), "\\x%02x", p[i]);
			fits = put(out, cap, &at, esc, 4);
			n = 1;
		} else if (cp == '\n' && !(flags & PB_SAN_MULTILINE)) {
			fits = put(out, cap, &at, "\\n", 2);
		} else if ((cp < 0x20 && cp != '\t' && cp != '\n') || cp == 0x7f) {
			snprintf(esc, sizeof(esc), "\\x%02x", (unsigned)cp);
			fits = put(out, cap, &at, esc, 4);
		} else if (hidden_code_point(cp)) {
			int k = snprintf(esc, sizeof(esc), "\\u{%x}", (unsigned)cp);
			fits = put(out, cap, &at, esc, (size_t)k);
		} else {
			fits = put(out, cap, &at, (const char *)p + i, n);
		}
		if (!fits)
			break;
		i += n;
	}
	out[at] = '\0';
	return at;
}

void pb_sanitize_inplace(char *buf, size_t cap, unsigned flags)
{
	char *copy = strdup(buf);

	if (!copy) {
		snprintf(buf, cap, "?");
		return;
	}
	pb_sanitize(buf, cap, copy, strlen(copy), flags);
	free(copy);
}

char *pb_sanitize_dup(const char *in, unsigned flags)
{
	size_t len = in ? strlen(in) : 0;
	size_t cap = len * PB_SAN_EXPANSION + 1;
	char *out = malloc(cap);

	if (out)
		pb_sanitize(out, cap, in ? in : "", len, flags);
	return out;
}

/* The first `len` bytes less a character they end inside: the last lead
 * byte among the last 3 bytes, when its character needs more than follow
 * it. Bytes that start no character are left to the sanitiser. */
static size_t whole_characters(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t k = len, need;

	while (k > 0 && len - k < 3 && (p[k - 1] & 0xc0) == 0x80)
		k--;
	if (k == 0 || p[k - 1] < 0xc2 || p[k - 1] > 0xf4)
		return len;
	need = p[k - 1] >= 0xf0 ? 4 : p[k - 1] >= 0xe0 ? 3
	                                               : 2;
	return len - (k - 1) < need ? k - 1 : len;
}

size_t pb_utf8_cut(const char *s, size_t len, size_t max)
{
	return len <= max ? len : whole_characters(s, max);
}

size_t pb_utf8_vformat(char *buf, size_t cap, const char *fmt, va_list ap)
{
	int n = vsnprintf(buf, cap, fmt, ap);
	size_t len;

	if (n < 0) {
		buf[0] = '\0';
		return 0;
	}
	if ((size_t)n < cap)
		return (size_t)n;
	len = whole_characters(buf, cap - 1);
	buf[len] = '\0';
	return len;
}

size_t pb_utf8_format(char *buf, size_t cap, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	n = pb_utf8_vformat(buf, cap, fmt, ap);
	va_end(ap);
	return n;
}
