/* value_api.c - the public face of values: pb_value is an opaque name for
 * the codec's Plugbox__Value (supervisor/value.h), parsed from and printed
 * as JSON, and read through a few accessors. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "plugbox.h"
#include "proto/value.h"

PB_API pb_value *pb_value_parse_json(const char *json, char **why)
{
	Plugbox__Value *v = NULL;
	char reason[256];

	if (why)
		*why = NULL;
	if (pbv_from_json(json, strlen(json), &v, reason, sizeof(reason)) < 0) {
		if (why)
			*why = strdup(reason);
		return NULL;
	}
	return (pb_value *)v;
}

PB_API int pb_value_print_json(const pb_value *v, FILE *out)
{
	return pbv_to_json((const Plugbox__Value *)v, out);
}

PB_API void pb_value_destroy(pb_value *v)
{
	pbv_free((Plugbox__Value *)v);
}

PB_API const char *pb_value_get_string_len(const pb_value *pv, size_t *len)
{
	const Plugbox__Value *v = (const Plugbox__Value *)pv;
	size_t n = 0;
	const char *s = v && v->kind_case == PLUGBOX__VALUE__KIND_STRING_VALUE ? pbv_string(v, &n) : NULL;

	if (len)
		*len = n;
	return s;
}

/* The C-string view: a string holding U+0000 has none, rather than one
 * that silently ends early. */
PB_API const char *pb_value_get_string(const pb_value *pv)
{
	size_t len;
	const char *s = pb_value_get_string_len(pv, &len);
	return s && !memchr(s, '\0', len) ? s : NULL;
}

PB_API size_t pb_value_list_length(const pb_value *pv)
{
	const Plugbox__Value *v = (const Plugbox__Value *)pv;
	return v && v->kind_case == PLUGBOX__VALUE__KIND_LIST_VALUE && v->list_value ? v->list_value->n_items : 0;
}

PB_API const pb_value *pb_value_list_get(const pb_value *pv, size_t i)
{
	const Plugbox__Value *v = (const Plugbox__Value *)pv;
	return i < pb_value_list_length(pv) ? (const pb_value *)v->list_value->items[i] : NULL;
}

PB_API const pb_value *pb_value_map_get(const pb_value *pv, const char *key)
{
	const Plugbox__Value *v = (const Plugbox__Value *)pv;
	if (!v || v->kind_case != PLUGBOX__VALUE__KIND_MAP_VALUE || !v->map_value)
		return NULL;
	for (size_t i = 0; i < v->map_value->n_entries; i++) {
		const Plugbox__Value *k = v->map_value->entries[i]->key;
		size_t len;
		const char *s = k && k->kind_case == PLUGBOX__VALUE__KIND_STRING_VALUE ? pbv_string(k, &len) : NULL;
		if (s && len == strlen(key) && !memcmp(s, key, len))
			return (const pb_value *)v->map_value->entries[i]->value;
	}
	return NULL;
}

PB_API char *pb_value_to_json(const pb_value *v)
{
	char *out = NULL;
	return pbv_to_json_string((const Plugbox__Value *)v, &out) == 0 ? out : NULL;
}

PB_API pb_value *pb_value_new_null(void)
{
	return (pb_value *)pbv_new_null();
}
PB_API pb_value *pb_value_new_bool(int b)
{
	return (pb_value *)pbv_new_bool(b != 0);
}
PB_API pb_value *pb_value_new_int(int64_t i)
{
	return (pb_value *)pbv_new_int(i);
}
PB_API pb_value *pb_value_new_float(double d)
{
	return (pb_value *)pbv_new_float(d);
}
PB_API pb_value *pb_value_new_list(void)
{
	return (pb_value *)pbv_new_list();
}
PB_API pb_value *pb_value_new_map(void)
{
	return (pb_value *)pbv_new_map();
}

PB_API pb_value *pb_value_new_string(const char *s)
{
	/* Strings cross to Python, which insists on UTF-8. */
	if (!s || !pb_utf8_valid(s, strlen(s)))
		return NULL;
	return (pb_value *)pbv_new_string(s, strlen(s));
}

PB_API pb_value *pb_value_new_string_len(const char *s, size_t len)
{
	if ((!s && len) || (len && !pb_utf8_valid(s, len)))
		return NULL;
	return (pb_value *)pbv_new_string(s ? s : "", len);
}

PB_API pb_value *pb_value_new_bytes(const void *data, size_t len)
{
	return (pb_value *)pbv_new_bytes(data, len);
}

static const Plugbox__Value *of_kind(const pb_value *pv, Plugbox__Value__KindCase kind)
{
	const Plugbox__Value *v = (const Plugbox__Value *)pv;
	return v && v->kind_case == kind ? v : NULL;
}

PB_API int pb_value_list_append(pb_value *list, pb_value *item)
{
	if (!of_kind(list, PLUGBOX__VALUE__KIND_LIST_VALUE) || !item)
		return -EINVAL;
	return pbv_list_append((Plugbox__Value *)list, (Plugbox__Value *)item);
}

PB_API int pb_value_map_set(pb_value *map, pb_value *key, pb_value *value)
{
	if (!of_kind(map, PLUGBOX__VALUE__KIND_MAP_VALUE) || !key || !value)
		return -EINVAL;
	return pbv_map_put((Plugbox__Value *)map, (Plugbox__Value *)key, (Plugbox__Value *)value);
}

PB_API pb_value_kind pb_value_get_kind(const pb_value *pv)
{
	const Plugbox__Value *v = (const Plugbox__Value *)pv;
	switch (v ? v->kind_case : PLUGBOX__VALUE__KIND__NOT_SET) {
	case PLUGBOX__VALUE__KIND_BOOL_VALUE: return PB_VALUE_BOOL;
	case PLUGBOX__VALUE__KIND_INT_VALUE: return PB_VALUE_INT;
	case PLUGBOX__VALUE__KIND_FLOAT_VALUE: return PB_VALUE_FLOAT;
	case PLUGBOX__VALUE__KIND_STRING_VALUE: return PB_VALUE_STRING;
	case PLUGBOX__VALUE__KIND_BYTES_VALUE: return PB_VALUE_BYTES;
	case PLUGBOX__VALUE__KIND_LIST_VALUE: return PB_VALUE_LIST;
	case PLUGBOX__VALUE__KIND_MAP_VALUE: return PB_VALUE_MAP;
	default: return PB_VALUE_NULL;
	}
}

PB_API int pb_value_get_bool(const pb_value *pv)
{
	const Plugbox__Value *v = of_kind(pv, PLUGBOX__VALUE__KIND_BOOL_VALUE);
	return v && v->bool_value;
}

PB_API int64_t pb_value_get_int(const pb_value *pv)
{
	const Plugbox__Value *v = of_kind(pv, PLUGBOX__VALUE__KIND_INT_VALUE);
	return v ? v->int_value : 0;
}

PB_API double pb_value_get_float(const pb_value *pv)
{
	const Plugbox__Value *v = of_kind(pv, PLUGBOX__VALUE__KIND_FLOAT_VALUE);
	return v ? v->float_value : 0;
}

PB_API const void *pb_value_get_bytes(const pb_value *pv, size_t *len)
{
	const Plugbox__Value *v = of_kind(pv, PLUGBOX__VALUE__KIND_BYTES_VALUE);
	if (len)
		*len = v ? v->bytes_value.len : 0;
	/* empty bytes still read as bytes, not as "not bytes" */
	return v ? (v->bytes_value.data ? (const void *)v->bytes_value.data : (const void *)"") : NULL;
}

PB_API size_t pb_value_map_length(const pb_value *pv)
{
	const Plugbox__Value *v = of_kind(pv, PLUGBOX__VALUE__KIND_MAP_VALUE);
	return v && v->map_value ? v->map_value->n_entries : 0;
}

PB_API const pb_value *pb_value_map_entry(const pb_value *pv, size_t i, const pb_value **key)
{
	const Plugbox__Value *v = (const Plugbox__Value *)pv;
	if (i >= pb_value_map_length(pv)) {
		if (key)
			*key = NULL;
		return NULL;
	}
	if (key)
		*key = (const pb_value *)v->map_value->entries[i]->key;
	return (const pb_value *)v->map_value->entries[i]->value;
}
