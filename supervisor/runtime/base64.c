/* base64.c - RFC 4648 base64 for bytes values in JSON ({"$bytes": "..."}).
 *
 * The decoder is strict so that each byte string has exactly one spelling:
 * what the command line accepts is what it would print.
 */
#include <errno.h>
#include <stdlib.h>

#include "runtime/base64.h"

static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *pb_base64_encode(const void *data, size_t len)
{
	const uint8_t *in = data;
	size_t groups = len / 3 + (len % 3 != 0);
	size_t i, o = 0;
	char *out;

	if (groups > (SIZE_MAX - 1) / 4)
		return NULL;
	out = malloc(groups * 4 + 1);
	if (!out)
		return NULL;
	for (i = 0; i + 3 <= len; i += 3) {
		uint32_t w = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[o++] = alphabet[w >> 18 & 63];
		out[o++] = alphabet[w >> 12 & 63];
		out[o++] = alphabet[w >> 6 & 63];
		out[o++] = alphabet[w & 63];
	}
	if (len - i == 1) {
		uint32_t w = (uint32_t)in[i] << 16;

		out[o++] = alphabet[w >> 18 & 63];
		out[o++] = alphabet[w >> 12 & 63];
		out[o++] = '=';
		out[o++] = '=';
	} else if (len - i == 2) {
		uint32_t w = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;

		out[o++] = alphabet[w >> 18 & 63];
		out[o++] = alphabet[w >> 12 & 63];
		out[o++] = alphabet[w >> 6 & 63];
		out[o++] = '=';
	}
	out[o] = '\0';
	return out;
}

static int sextet(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int pb_base64_decode(const char *text, size_t len, uint8_t **out, size_t *out_len)
{
	size_t i, o = 0, pad = 0;
	uint8_t *buf;

	if (len % 4 != 0)
		return -EINVAL;
	if (len > 0 && text[len - 1] == '=')
		pad = len > 1 && text[len - 2] == '=' ? 2 : 1;
	buf = malloc(len / 4 * 3 + 1);
	if (!buf)
		return -ENOMEM;
	for (i = 0; i < len; i += 4) {
		int s[4];
		size_t k, n = 4;
		uint32_t w;

		if (i + 4 == len)
			n = 4 - pad;
		for (k = 0; k < n; k++) {
			s[k] = sextet(text[i + k]);
			if (s[k] < 0)
				goto bad;
		}
		for (; k < 4; k++)
			s[k] = 0;
		w = (uint32_t)s[0] << 18 | (uint32_t)s[1] << 12 | (uint32_t)s[2] << 6 | (uint32_t)s[3];
		/* Bits that fall into the padding must be zero, or two texts
		 * would decode to the same bytes. */
		if ((pad == 1 && n == 3 && (w & 0xFF) != 0) ||
		    (pad == 2 && n == 2 && (w & 0xFFFF) != 0))
			goto bad;
		buf[o++] = (uint8_t)(w >> 16);
		if (n > 2)
			buf[o++] = (uint8_t)(w >> 8);
		if (n > 3)
			buf[o++] = (uint8_t)w;
	}
	*out = buf;
	*out_len = o;
	return 0;
bad:
	free(buf);
	return -EINVAL;
}
