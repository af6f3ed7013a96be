/* value_api.c - the public face of values: pb_value is an opaque name for
 * the codec's Plugbox__Value (supervisor/value.h), parsed from and printed
 * as JSON, and read through a few accessors. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "plugbox.h"
#include "value.h"

PB_API pb_value *pb_value_parse_json(const char *json, char **why)
{
	Plugbox__Value *v = NULL;
	char reason[256];

	if (why)
		*why = NULL;
	if (pb_value_from_json(json, strlen(json), &v, reason, sizeof(reason)) < 0) {
		if (why)
			*why = strdup(reason);
		return NULL;
	}
	return (pb_value *)v;
}

PB_API int pb_value_print_json(const pb_value *v, FILE *out)
{
	return pb_value_to_json((const Plugbox__Value *)v, out);
}

PB_API void pb_value_destroy(pb_value *v)
{
	pb_value_free((Plugbox__Value *)v);
}

PB_API const char *pb_value_get_string(const pb_value *pv)
{
	const Plugbox__Value *v = (const Plugbox__Value *)pv;
	return v && v->kind_case == PLUGBOX__VALUE__KIND_STRING_VALUE ? v->string_value : NULL;
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
		if (k && k->kind_case == PLUGBOX__VALUE__KIND_STRING_VALUE && !strcmp(k->string_value, key))
			return (const pb_value *)v->map_value->entries[i]->value;
	}
	return NULL;
}
