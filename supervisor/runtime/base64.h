/* base64.h - RFC 4648 base64 (standard alphabet, with padding) for the
 * {"$bytes": "..."} JSON notation of bytes values.
 */
#ifndef PLUGBOX_BASE64_H
#define PLUGBOX_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Encode len bytes. Returns a malloc'd NUL-terminated string, or NULL when out
 * of memory. */
char *pb_base64_encode(const void *data, size_t len);

/* Decode exactly text[0..len): no whitespace, no missing or misplaced padding,
 * no non-zero bits in the padding (one encoding per byte string). On success
 * *out is malloc'd (never NULL, even for empty input) and *out_len set.
 * Returns 0, -EINVAL for bad input or -ENOMEM. */
int pb_base64_decode(const char *text, size_t len, uint8_t **out, size_t *out_len);

#endif
