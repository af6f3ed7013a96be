/* value_json.c - JSON, the command line's notation for values, to and from
 * plugbox.Value (the convention is described in value.h).
 *
 * Parsing goes through jansson. Printing is done here rather than by jansson
 * so that floats come out in their shortest round-trip form and stay floats
 * (1.0, not 1), bytes and non-finite floats use the reserved objects, and the
 * printed text parses back to the same Value.
 */
#include <errno.h>
#include <jansson.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base64.h"
#include "proto/frame.h"
#include "proto/value.h"


/* --- JSON text to Value ---------------------------------------------------- */

struct parse {
	char *why;
	size_t why_len;
};

static int from_json(struct parse *p, json_t *j, unsigned depth, Plugbox__Value **out);

/* U+0000 included: a Value string has a length (Makefile.am). */
static int string_value(struct parse *p, const char *s, size_t len, Plugbox__Value **out)
{
	(void)p;
	*out = pbv_new_string(s, len);
	return *out ? 0 : -ENOMEM;
}

static int bytes_from_json(struct parse *p, json_t *arg, Plugbox__Value **out)
{
	uint8_t *data;
	size_t len;
	int rc;

	if (!json_is_string(arg))
		return pb_fail(p->why, p->why_len, -EINVAL, "$bytes needs a base64 string");
	rc = pb_base64_decode(json_string_value(arg), json_string_length(arg), &data, &len);
	if (rc == -EINVAL)
		return pb_fail(p->why, p->why_len, rc, "$bytes is not valid base64");
	if (rc < 0)
		return rc;
	*out = pbv_new_bytes(data, len);
	free(data);
	return *out ? 0 : -ENOMEM;
}

static int float_from_json(struct parse *p, json_t *arg, Plugbox__Value **out)
{
	const char *s = json_is_string(arg) ? json_string_value(arg) : "";
	double d;

	if (strcmp(s, "nan") == 0)
		d = NAN;
	else if (strcmp(s, "inf") == 0)
		d = INFINITY;
	else if (strcmp(s, "-inf") == 0)
		d = -INFINITY;
	else
		return pb_fail(p->why, p->why_len, -EINVAL,
		               "$float must be \"nan\", \"inf\" or \"-inf\"");
	*out = pbv_new_float(d);
	return *out ? 0 : -ENOMEM;
}

/* The map itself sits at depth; its keys and values one level below. */
static int map_from_pairs(struct parse *p, json_t *arg, unsigned depth, Plugbox__Value **out)
{
	Plugbox__Value *map, *k = NULL, *v = NULL;
	json_t *pair;
	size_t i;
	int rc;

	if (!json_is_array(arg))
		return pb_fail(p->why, p->why_len, -EINVAL, "$map needs a list of [key, value] pairs");
	map = pbv_new_map();
	if (!map)
		return -ENOMEM;
	json_array_foreach(arg, i, pair)
	{
		if (!json_is_array(pair) || json_array_size(pair) != 2) {
			rc = pb_fail(p->why, p->why_len, -EINVAL,
			             "$map entry %zu is not a [key, value] pair", i);
			goto err;
		}
		rc = from_json(p, json_array_get(pair, 0), depth + 1, &k);
		if (rc < 0)
			goto err;
		rc = from_json(p, json_array_get(pair, 1), depth + 1, &v);
		if (rc < 0)
			goto err;
		rc = pbv_map_put(map, k, v);
		if (rc < 0)
			goto err;
		k = v = NULL;
	}
	*out = map;
	return 0;
err:
	pbv_free(k);
	pbv_free(v);
	pbv_free(map);
	return rc;
}

static int object_from_json(struct parse *p, json_t *j, unsigned depth, Plugbox__Value **out)
{
	Plugbox__Value *map, *k = NULL, *v = NULL;
	const char *key;
	size_t key_len;
	json_t *member;
	int rc;

	if (json_object_size(j) == 1) {
		void *it = json_object_iter(j);
		const char *only = json_object_iter_key(it);
		size_t only_len = json_object_iter_key_len(it);
		json_t *arg = json_object_iter_value(it);

		/* By length: "$bytes\u0000x" is an ordinary key. */
		if (only_len == 6 && memcmp(only, "$bytes", 6) == 0)
			return bytes_from_json(p, arg, out);
		if (only_len == 6 && memcmp(only, "$float", 6) == 0)
			return float_from_json(p, arg, out);
		if (only_len == 4 && memcmp(only, "$map", 4) == 0)
			return map_from_pairs(p, arg, depth, out);
	}
	map = pbv_new_map();
	if (!map)
		return -ENOMEM;
	/* jansson keeps object members in the order they were written. */
	json_object_keylen_foreach(j, key, key_len, member)
	{
		rc = string_value(p, key, key_len, &k);
		if (rc < 0)
			goto err;
		rc = from_json(p, member, depth + 1, &v);
		if (rc < 0)
			goto err;
		rc = pbv_map_put(map, k, v);
		if (rc < 0)
			goto err;
		k = v = NULL;
	}
	*out = map;
	return 0;
err:
	pbv_free(k);
	pbv_free(v);
	pbv_free(map);
	return rc;
}

/* Recursion is bounded by PB_VALUE_MAX_DEPTH (jansson itself stops at 2048). */
static int from_json(struct parse *p, json_t *j, unsigned depth, Plugbox__Value **out)
{
	Plugbox__Value *v = NULL, *item;
	json_t *elem;
	size_t i;
	int rc;

	*out = NULL;
	if (depth > PB_VALUE_MAX_DEPTH)
		return pb_fail(p->why, p->why_len, -ELOOP, "nesting deeper than %d", PB_VALUE_MAX_DEPTH);
	switch (json_typeof(j)) {
	case JSON_NULL:
		v = pbv_new_null();
		break;
	case JSON_TRUE:
		v = pbv_new_bool(true);
		break;
	case JSON_FALSE:
		v = pbv_new_bool(false);
		break;
	case JSON_INTEGER:
		v = pbv_new_int(json_integer_value(j));
		break;
	case JSON_REAL:
		v = pbv_new_float(json_real_value(j));
		break;
	case JSON_STRING:
		return string_value(p, json_string_value(j), json_string_length(j), out);
	case JSON_OBJECT:
		return object_from_json(p, j, depth, out);
	case JSON_ARRAY:
		v = pbv_new_list();
		if (!v)
			return -ENOMEM;
		json_array_foreach(j, i, elem)
		{
			rc = from_json(p, elem, depth + 1, &item);
			if (rc < 0) {
				pbv_free(v);
				return rc;
			}
			rc = pbv_list_append(v, item);
			if (rc < 0) {
				pbv_free(item);
				pbv_free(v);
				return rc;
			}
		}
		break;
	}
	if (!v)
		return -ENOMEM;
	*out = v;
	return 0;
}

int pbv_from_json(const char *text, size_t len, Plugbox__Value **out,
                  char *why, size_t why_len)
{
	struct parse p = { .why = why, .why_len = why_len };
	json_error_t err;
	json_t *j;
	int rc;

	*out = NULL;
	if (why && why_len > 0)
		why[0] = '\0';
	j = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
	if (!j) {
		switch (json_error_code(&err)) {
		case json_error_out_of_memory:
			rc = -ENOMEM;
			break;
		case json_error_stack_overflow:
			rc = -ELOOP;
			break;
		default:
			rc = -EINVAL;
			break;
		}
		return pb_fail(why, why_len, rc, "line %d column %d: %s", err.line, err.column, err.text);
	}
	rc = from_json(&p, j, 1, out);
	json_decref(j);
	return rc;
}

/* --- Value to JSON text ---------------------------------------------------- */

static int emit_value(FILE *f, const Plugbox__Value *v, unsigned depth);

static int emit_string(FILE *f, const Plugbox__Value *v)
{
	static const char hex[] = "0123456789abcdef";
	size_t len, i, run = 0;
	const char *s = pbv_string(v, &len);

	if (!pb_utf8_valid(s, len))
		return -EILSEQ;
	fputc('"', f);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *esc = NULL;
		char u[7];

		switch (c) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		default:
			if (c < 0x20) {
				u[0] = '\\';
				u[1] = 'u';
				u[2] = '0';
				u[3] = '0';
				u[4] = hex[c >> 4];
				u[5] = hex[c & 15];
				u[6] = '\0';
				esc = u;
			}
			break;
		}
		if (!esc)
			continue;
		/* Copy the unescaped run before this byte in one go. */
		fwrite(s + run, 1, i - run, f);
		fputs(esc, f);
		run = i + 1;
	}
	fwrite(s + run, 1, len - run, f);
	fputc('"', f);
	return 0;
}

/* Shortest %.Ng that reads back as the same double (%.17g always does),
 * and always with a '.' or an exponent so that the text is read back as a
 * float, not an integer. For normal doubles any decimal of up to 15 digits
 * is recovered exactly by %.15g, so the search starts there; subnormals have
 * less precision and may need fewer digits (5e-324), so they start at 1. */
static void format_double(char *buf, size_t size, double d)
{
	int prec;

	for (prec = fpclassify(d) == FP_SUBNORMAL ? 1 : 15; prec <= 17; prec++) {
		snprintf(buf, size, "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	if (!strpbrk(buf, ".eE"))
		strncat(buf, ".0", size - strlen(buf) - 1);
}

static int emit_float(FILE *f, double d)
{
	char buf[40];

	if (isnan(d)) {
		fputs("{\"$float\":\"nan\"}", f);
	} else if (isinf(d)) {
		fputs(d > 0 ? "{\"$float\":\"inf\"}" : "{\"$float\":\"-inf\"}", f);
	} else {
		format_double(buf, sizeof(buf), d);
		fputs(buf, f);
	}
	return 0;
}

static int emit_bytes(FILE *f, const ProtobufCBinaryData *b)
{
	char *text = pb_base64_encode(b->data, b->len);

	if (!text)
		return -ENOMEM;
	fprintf(f, "{\"$bytes\":\"%s\"}", text);
	free(text);
	return 0;
}

static int emit_list(FILE *f, const Plugbox__ValueList *l, unsigned depth)
{
	size_t i;
	int rc;

	fputc('[', f);
	for (i = 0; l && i < l->n_items; i++) {
		if (i > 0)
			fputc(',', f);
		rc = emit_value(f, l->items[i], depth + 1);
		if (rc < 0)
			return rc;
	}
	fputc(']', f);
	return 0;
}

/* Strings by their bytes, U+0000 included; a prefix sorts first. */
static int cmp_str(const void *a, const void *b)
{
	const Plugbox__Value *x = *(const Plugbox__Value *const *)a, *y = *(const Plugbox__Value *const *)b;
	size_t xl, yl;
	const char *xs = pbv_string(x, &xl), *ys = pbv_string(y, &yl);
	int c = memcmp(xs, ys, xl < yl ? xl : yl);
	return c ? c : (xl > yl) - (xl < yl);
}

static bool is_key(const Plugbox__Value *k, const char *name)
{
	size_t len;
	const char *s = pbv_string(k, &len);
	return len == strlen(name) && memcmp(s, name, len) == 0;
}

/* A map prints as a JSON object only if that object parses back to the same
 * map: every key a string without U+0000 (jansson refuses it in a key), no
 * key twice (we parse with duplicates rejected), and not a lone
 * "$bytes"/"$float"/"$map" key (which would read as the reserved notation).
 * Returns 1, 0, or -ENOMEM. */
static int map_is_plain_object(const Plugbox__ValueMap *m)
{
	const Plugbox__Value **keys;
	size_t i;
	int plain = 1;

	for (i = 0; i < m->n_entries; i++) {
		const Plugbox__ValueMapEntry *e = m->entries[i];

		size_t len;
		if (!e || !e->key || e->key->kind_case != PLUGBOX__VALUE__KIND_STRING_VALUE)
			return 0;
		const char *key = pbv_string(e->key, &len);
		if (memchr(key, '\0', len))
			return 0;
	}
	if (m->n_entries == 1) {
		const Plugbox__Value *k = m->entries[0]->key;

		return !is_key(k, "$bytes") && !is_key(k, "$float") && !is_key(k, "$map");
	}
	if (m->n_entries < 2)
		return 1;
	keys = malloc(m->n_entries * sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	for (i = 0; i < m->n_entries; i++)
		keys[i] = m->entries[i]->key;
	qsort(keys, m->n_entries, sizeof(*keys), cmp_str);
	for (i = 1; i < m->n_entries; i++)
		if (cmp_str(&keys[i - 1], &keys[i]) == 0) {
			plain = 0;
			break;
		}
	free(keys);
	return plain;
}

static int emit_map(FILE *f, const Plugbox__ValueMap *m, unsigned depth)
{
	static const Plugbox__ValueMap empty = PLUGBOX__VALUE_MAP__INIT;
	size_t i;
	int plain, rc;

	if (!m)
		m = &empty;
	plain = map_is_plain_object(m);
	if (plain < 0)
		return plain;
	fputs(plain ? "{" : "{\"$map\":[", f);
	for (i = 0; i < m->n_entries; i++) {
		const Plugbox__ValueMapEntry *e = m->entries[i];

		if (!e || !e->key || !e->value)
			return -EINVAL;
		if (i > 0)
			fputc(',', f);
		if (plain) {
			rc = emit_string(f, e->key);
			if (rc < 0)
				return rc;
			fputc(':', f);
		} else {
			fputc('[', f);
			rc = emit_value(f, e->key, depth + 1);
			if (rc < 0)
				return rc;
			fputc(',', f);
		}
		rc = emit_value(f, e->value, depth + 1);
		if (rc < 0)
			return rc;
		if (!plain)
			fputc(']', f);
	}
	fputs(plain ? "}" : "]}", f);
	return 0;
}

/* Recursion is bounded by PB_VALUE_MAX_DEPTH: deeper trees are refused. */
static int emit_value(FILE *f, const Plugbox__Value *v, unsigned depth)
{
	if (depth > PB_VALUE_MAX_DEPTH)
		return -ELOOP;
	if (!v)
		return -EINVAL;
	switch (v->kind_case) {
	case PLUGBOX__VALUE__KIND_NULL_VALUE:
		fputs("null", f);
		return 0;
	case PLUGBOX__VALUE__KIND_BOOL_VALUE:
		fputs(v->bool_value ? "true" : "false", f);
		return 0;
	case PLUGBOX__VALUE__KIND_INT_VALUE:
		fprintf(f, "%lld", (long long)v->int_value);
		return 0;
	case PLUGBOX__VALUE__KIND_FLOAT_VALUE:
		return emit_float(f, v->float_value);
	case PLUGBOX__VALUE__KIND_STRING_VALUE:
		return emit_string(f, v);
	case PLUGBOX__VALUE__KIND_BYTES_VALUE:
		return emit_bytes(f, &v->bytes_value);
	case PLUGBOX__VALUE__KIND_LIST_VALUE:
		return emit_list(f, v->list_value, depth);
	case PLUGBOX__VALUE__KIND_MAP_VALUE:
		return emit_map(f, v->map_value, depth);
	default:
		return -EINVAL;
	}
}

int pbv_to_json_string(const Plugbox__Value *v, char **out)
{
	char *buf = NULL;
	size_t size = 0;
	locale_t c_locale, old;
	FILE *f;
	int rc;

	*out = NULL;
	/* printf/strtod follow LC_NUMERIC; JSON needs a '.' whatever the
	 * program's locale is. */
	c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
	if (!c_locale)
		return -ENOMEM;
	f = open_memstream(&buf, &size);
	if (!f) {
		freelocale(c_locale);
		return -ENOMEM;
	}
	old = uselocale(c_locale);
	rc = emit_value(f, v, 1);
	uselocale(old);
	freelocale(c_locale);
	if (ferror(f) && rc == 0)
		rc = -ENOMEM;
	if (fclose(f) != 0 && rc == 0)
		rc = -ENOMEM;
	if (rc < 0) {
		free(buf);
		return rc;
	}
	*out = buf;
	return 0;
}

/* Built in memory first, so that a tree refused halfway (too deep, bad
 * UTF-8) leaves nothing half-printed on out. */
int pbv_to_json(const Plugbox__Value *v, FILE *out)
{
	char *text;
	size_t len;
	int rc;

	rc = pbv_to_json_string(v, &text);
	if (rc < 0)
		return rc;
	len = strlen(text);
	if (fwrite(text, 1, len, out) != len)
		rc = -EIO;
	free(text);
	return rc;
}
