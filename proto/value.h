/* value.h - building, freeing, checking and printing plugbox.Value trees.
 *
 * Values are protobuf-c Plugbox__Value structs. Trees built here are owned by
 * the caller and freed with pbv_free (which frees every child); trees
 * from protobuf_c_message_unpack are freed by pb_envelope_free instead, never
 * by pbv_free. JSON is the command line's notation for values: parsing
 * goes through jansson, printing is done here so that floats print in their
 * shortest round-trip form.
 *
 * JSON convention (also in README.md):
 *   null, true/false, integers (64-bit signed), floats, strings, arrays, and
 *   objects map to null, bool, int, float, string, list and a string-keyed map.
 *   Three single-key objects are reserved:
 *     {"$bytes": "<base64>"}             bytes
 *     {"$float": "nan" | "inf" | "-inf"} non-finite floats
 *     {"$map": [[key, value], ...]}      a map whose keys are not all strings
 */
#ifndef PLUGBOX_VALUE_H
#define PLUGBOX_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "proto/plugbox.pb-c.h"

Plugbox__Value *pbv_new_null(void);
Plugbox__Value *pbv_new_bool(bool b);
Plugbox__Value *pbv_new_int(int64_t i);
Plugbox__Value *pbv_new_float(double d);
Plugbox__Value *pbv_new_string(const char *s, size_t len); /* copies; must be UTF-8, may hold U+0000 */
/* A string Value's text and length; the text is followed by a NUL (values
 * built here and envelopes from pb_envelope_decode), "" when empty. */
const char *pbv_string(const Plugbox__Value *v, size_t *len);
Plugbox__Value *pbv_new_bytes(const void *data, size_t len); /* copies */
Plugbox__Value *pbv_new_list(void);
Plugbox__Value *pbv_new_map(void);
/* Append takes ownership of item (and of key/value) on success; returns 0 or -ENOMEM. */
int pbv_list_append(Plugbox__Value *list, Plugbox__Value *item);
int pbv_map_put(Plugbox__Value *map, Plugbox__Value *key, Plugbox__Value *value);
void pbv_free(Plugbox__Value *v);

/* Write a one-line reason into why (if any) and return err: the shape every
 * bounded decoder here uses to fail. */
__attribute__((format(printf, 4, 5))) int pb_fail(char *why, size_t why_len, int err, const char *fmt, ...);

/* True if s[0..len) is well-formed UTF-8 (no overlongs, no surrogates). */
bool pb_utf8_valid(const char *s, size_t len);

/* Nesting depth of a tree (a scalar is 1). Iterative: safe on any tree. */
size_t pbv_depth(const Plugbox__Value *v);

/* Parse one JSON text into a Value. Returns 0 or a negative errno with a
 * one-line reason in why ("line 1 column 5: ...", "nesting deeper than 64"). */
int pbv_from_json(const char *text, size_t len, Plugbox__Value **out,
                  char *why, size_t why_len);

/* Print v as compact JSON (one line, no trailing newline). Recursion is bounded
 * by PB_VALUE_MAX_DEPTH: deeper trees return -ELOOP. Strings that are not
 * valid UTF-8 return -EILSEQ. Returns 0 or a negative errno. */
int pbv_to_json(const Plugbox__Value *v, FILE *out);

/* Same, into a malloc'd NUL-terminated string. */
int pbv_to_json_string(const Plugbox__Value *v, char **out);

#endif
