/* value.c - building, freeing and measuring plugbox.Value trees, and the
 * strict UTF-8 check every string that crosses the wire goes through.
 *
 * Trees built here are plain protobuf-c structs so they can be packed as they
 * are. They are freed with pbv_free rather than
 * protobuf_c_message_free_unpacked, which recurses once per nesting level.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"
#include "proto/value.h"

static Plugbox__Value *value_new(Plugbox__Value__KindCase kind)
{
	Plugbox__Value *v = malloc(sizeof(*v));

	if (!v)
		return NULL;
	plugbox__value__init(v);
	v->kind_case = kind;
	return v;
}

Plugbox__Value *pbv_new_null(void)
{
	Plugbox__Value *v = value_new(PLUGBOX__VALUE__KIND_NULL_VALUE);

	/* true so that the field is visibly set on the wire as well. */
	if (v)
		v->null_value = 1;
	return v;
}

Plugbox__Value *pbv_new_bool(bool b)
{
	Plugbox__Value *v = value_new(PLUGBOX__VALUE__KIND_BOOL_VALUE);

	if (v)
		v->bool_value = b;
	return v;
}

Plugbox__Value *pbv_new_int(int64_t i)
{
	Plugbox__Value *v = value_new(PLUGBOX__VALUE__KIND_INT_VALUE);

	if (v)
		v->int_value = i;
	return v;
}

Plugbox__Value *pbv_new_float(double d)
{
	Plugbox__Value *v = value_new(PLUGBOX__VALUE__KIND_FLOAT_VALUE);

	if (v)
		v->float_value = d;
	return v;
}

/* A string is its bytes and their length (U+0000 included), with a NUL
 * after them for the C-string view of one without U+0000. UTF-8 validity
 * stays the caller's promise, as value.h says. */
Plugbox__Value *pbv_new_string(const char *s, size_t len)
{
	Plugbox__Value *v;
	char *copy;

	copy = malloc(len + 1);
	if (!copy)
		return NULL;
	if (len > 0)
		memcpy(copy, s, len);
	copy[len] = '\0';
	v = value_new(PLUGBOX__VALUE__KIND_STRING_VALUE);
	if (!v) {
		free(copy);
		return NULL;
	}
	v->string_value.data = (uint8_t *)copy;
	v->string_value.len = len;
	return v;
}

const char *pbv_string(const Plugbox__Value *v, size_t *len)
{
	*len = v->string_value.data ? v->string_value.len : 0;
	return v->string_value.data ? (const char *)v->string_value.data : "";
}

Plugbox__Value *pbv_new_bytes(const void *data, size_t len)
{
	Plugbox__Value *v;
	uint8_t *copy = NULL;

	if (len > 0) {
		copy = malloc(len);
		if (!copy)
			return NULL;
		memcpy(copy, data, len);
	}
	v = value_new(PLUGBOX__VALUE__KIND_BYTES_VALUE);
	if (!v) {
		free(copy);
		return NULL;
	}
	v->bytes_value.data = copy;
	v->bytes_value.len = len;
	return v;
}

Plugbox__Value *pbv_new_list(void)
{
	Plugbox__ValueList *list = malloc(sizeof(*list));
	Plugbox__Value *v;

	if (!list)
		return NULL;
	plugbox__value_list__init(list);
	v = value_new(PLUGBOX__VALUE__KIND_LIST_VALUE);
	if (!v) {
		free(list);
		return NULL;
	}
	v->list_value = list;
	return v;
}

Plugbox__Value *pbv_new_map(void)
{
	Plugbox__ValueMap *map = malloc(sizeof(*map));
	Plugbox__Value *v;

	if (!map)
		return NULL;
	plugbox__value_map__init(map);
	v = value_new(PLUGBOX__VALUE__KIND_MAP_VALUE);
	if (!v) {
		free(map);
		return NULL;
	}
	v->map_value = map;
	return v;
}

/* The protobuf-c structs have a count but no capacity, so the capacity is
 * implied by the count: arrays grow to 4, then double whenever the count
 * reaches a power of two, which keeps appending amortised O(1). That only
 * holds for arrays these functions grew: never append to a tree from
 * protobuf_c_message_unpack, whose arrays are sized exactly. */
static int grow_array(void **array, size_t n, size_t elem)
{
	size_t cap;
	void *p;

	if (n != 0 && (n < 4 || (n & (n - 1)) != 0))
		return 0;
	cap = n == 0 ? 4 : n * 2;
	if (cap > SIZE_MAX / elem)
		return -ENOMEM;
	p = realloc(*array, cap * elem);
	if (!p)
		return -ENOMEM;
	*array = p;
	return 0;
}

int pbv_list_append(Plugbox__Value *list, Plugbox__Value *item)
{
	Plugbox__ValueList *l;
	void *items;
	int rc;

	if (!list || !item || list->kind_case != PLUGBOX__VALUE__KIND_LIST_VALUE ||
	    !list->list_value)
		return -EINVAL;
	l = list->list_value;
	items = l->items;
	rc = grow_array(&items, l->n_items, sizeof(*l->items));
	if (rc < 0)
		return rc;
	l->items = items;
	l->items[l->n_items++] = item;
	return 0;
}

int pbv_map_put(Plugbox__Value *map, Plugbox__Value *key, Plugbox__Value *value)
{
	Plugbox__ValueMapEntry *entry;
	Plugbox__ValueMap *m;
	void *entries;
	int rc;

	if (!map || !key || !value || map->kind_case != PLUGBOX__VALUE__KIND_MAP_VALUE ||
	    !map->map_value)
		return -EINVAL;
	m = map->map_value;
	entry = malloc(sizeof(*entry));
	if (!entry)
		return -ENOMEM;
	entries = m->entries;
	rc = grow_array(&entries, m->n_entries, sizeof(*m->entries));
	if (rc < 0) {
		free(entry);
		return rc;
	}
	m->entries = entries;
	plugbox__value_map_entry__init(entry);
	entry->key = key;
	entry->value = value;
	m->entries[m->n_entries++] = entry;
	return 0;
}

/* pbv_free walks the tree by pointer reversal (Deutsch-Schorr-Waite):
 * when it descends from a container into a child, the child's slot in the
 * container is overwritten with the container's own parent, so the way back
 * up is stored in the tree itself. That frees any depth with no recursion and
 * no allocation (freeing must not fail for lack of memory).
 *
 * Invariant: when we step back up into a container, its back pointer sits in
 * the slot we went down through: the last list item, or for a map the last
 * entry's value slot if that is non-NULL, else its key slot (the value is
 * always taken before the key, and taking it leaves the value slot holding
 * the back pointer, which is never NULL thanks to the sentinel root parent). */
static Plugbox__Value *take_child(Plugbox__Value *cur, Plugbox__Value *parent)
{
	Plugbox__Value *child;

	if (cur->kind_case == PLUGBOX__VALUE__KIND_LIST_VALUE && cur->list_value) {
		Plugbox__ValueList *l = cur->list_value;

		while (l->n_items > 0) {
			child = l->items[l->n_items - 1];
			if (child) {
				l->items[l->n_items - 1] = parent;
				return child;
			}
			l->n_items--;
		}
	} else if (cur->kind_case == PLUGBOX__VALUE__KIND_MAP_VALUE && cur->map_value) {
		Plugbox__ValueMap *m = cur->map_value;

		while (m->n_entries > 0) {
			Plugbox__ValueMapEntry *e = m->entries[m->n_entries - 1];

			if (e && e->value) {
				child = e->value;
				e->value = parent;
				return child;
			}
			if (e && e->key) {
				child = e->key;
				e->key = parent;
				return child;
			}
			free(e);
			m->n_entries--;
		}
	}
	return NULL;
}

static Plugbox__Value *take_back_pointer(Plugbox__Value *cur)
{
	Plugbox__Value *back;

	if (cur->kind_case == PLUGBOX__VALUE__KIND_LIST_VALUE) {
		Plugbox__ValueList *l = cur->list_value;

		return l->items[--l->n_items];
	} else {
		Plugbox__ValueMapEntry *e = cur->map_value->entries[cur->map_value->n_entries - 1];

		if (e->value) {
			back = e->value;
			e->value = NULL;
		} else {
			back = e->key;
			e->key = NULL;
		}
		return back;
	}
}

static void free_childless(Plugbox__Value *v)
{
	switch (v->kind_case) {
	case PLUGBOX__VALUE__KIND_STRING_VALUE:
		free(v->string_value.data);
		break;
	case PLUGBOX__VALUE__KIND_BYTES_VALUE:
		free(v->bytes_value.data);
		break;
	case PLUGBOX__VALUE__KIND_LIST_VALUE:
		if (v->list_value) {
			free(v->list_value->items);
			free(v->list_value);
		}
		break;
	case PLUGBOX__VALUE__KIND_MAP_VALUE:
		if (v->map_value) {
			free(v->map_value->entries);
			free(v->map_value);
		}
		break;
	default:
		break;
	}
	free(v);
}

void pbv_free(Plugbox__Value *v)
{
	Plugbox__Value root_parent; /* only its address is used */
	Plugbox__Value *parent = &root_parent;
	Plugbox__Value *cur = v;
	Plugbox__Value *child;

	if (!v)
		return;
	for (;;) {
		child = take_child(cur, parent);
		if (child) {
			parent = cur;
			cur = child;
			continue;
		}
		free_childless(cur);
		if (parent == &root_parent)
			return;
		cur = parent;
		parent = take_back_pointer(cur);
	}
}

bool pb_utf8_valid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		unsigned char lo = 0x80, hi = 0xBF;
		size_t need, k;
		uint64_t word;

		/* ASCII eight bytes at a time: a 16 MiB string is checked at
		 * memory speed, not a branch a byte. */
		if (len - i >= 8 && (memcpy(&word, s + i, 8), (word & 0x8080808080808080ull) == 0)) {
			i += 8;
			continue;
		}
		if (c < 0x80) {
			i++;
			continue;
		}
		/* The narrowed second-byte ranges are what rule out overlong
		 * forms, UTF-16 surrogates and code points above U+10FFFF. */
		if (c < 0xC2 || c >= 0xF5)
			return false; /* continuation byte, overlong C0/C1, or past U+10FFFF */
		if (c < 0xE0) {
			need = 1;
		} else if (c < 0xF0) {
			need = 2;
			if (c == 0xE0)
				lo = 0xA0;
			else if (c == 0xED)
				hi = 0x9F;
		} else {
			need = 3;
			if (c == 0xF0)
				lo = 0x90;
			else if (c == 0xF4)
				hi = 0x8F;
		}
		if (len - i - 1 < need)
			return false;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return false;
		for (k = 2; k <= need; k++)
			if (s[i + k] < 0x80 || s[i + k] > 0xBF)
				return false;
		i += need + 1;
	}
	return true;
}

/* One level of the depth walk: a container and the next child to visit (for
 * maps, child 2i is entry i's key and 2i+1 its value). */
struct depth_frame {
	const Plugbox__Value *v;
	size_t next;
};

static const Plugbox__Value *nth_child(const Plugbox__Value *v, size_t i)
{
	if (v->kind_case == PLUGBOX__VALUE__KIND_LIST_VALUE && v->list_value) {
		if (i < v->list_value->n_items)
			return v->list_value->items[i];
	} else if (v->kind_case == PLUGBOX__VALUE__KIND_MAP_VALUE && v->map_value) {
		if (i / 2 < v->map_value->n_entries) {
			const Plugbox__ValueMapEntry *e = v->map_value->entries[i / 2];

			if (!e)
				return NULL;
			return i % 2 ? e->value : e->key;
		}
	}
	return NULL;
}

static size_t n_children(const Plugbox__Value *v)
{
	if (v->kind_case == PLUGBOX__VALUE__KIND_LIST_VALUE && v->list_value)
		return v->list_value->n_items;
	if (v->kind_case == PLUGBOX__VALUE__KIND_MAP_VALUE && v->map_value)
		return v->map_value->n_entries * 2;
	return 0;
}

/* The tree is const here, so pointer reversal is out; an explicit stack is
 * used instead, on the C stack for ordinary trees and on the heap beyond.
 * If the heap stack cannot grow the depth is unknown, and SIZE_MAX is
 * returned so that every caller comparing against a limit rejects the tree. */
size_t pbv_depth(const Plugbox__Value *v)
{
	struct depth_frame local[2 * PB_VALUE_MAX_DEPTH];
	struct depth_frame *stack = local;
	size_t cap = sizeof(local) / sizeof(local[0]);
	size_t sp = 0, max = 0;

	if (!v)
		return 0;
	stack[sp++] = (struct depth_frame){ v, 0 };
	max = 1;
	while (sp > 0) {
		struct depth_frame *top = &stack[sp - 1];
		const Plugbox__Value *child;

		if (top->next >= n_children(top->v)) {
			sp--;
			continue;
		}
		child = nth_child(top->v, top->next++);
		if (!child)
			continue;
		if (sp == cap) {
			struct depth_frame *bigger;

			if (cap > SIZE_MAX / 2 / sizeof(*stack)) {
				max = SIZE_MAX;
				break;
			}
			bigger = stack == local ? malloc(2 * cap * sizeof(*stack))
			                        : realloc(stack, 2 * cap * sizeof(*stack));
			if (!bigger) {
				max = SIZE_MAX;
				break;
			}
			if (stack == local)
				memcpy(bigger, local, sizeof(local));
			stack = bigger;
			cap *= 2;
		}
		stack[sp++] = (struct depth_frame){ child, 0 };
		if (sp > max)
			max = sp;
	}
	if (stack != local)
		free(stack);
	return max;
}

int pb_fail(char *why, size_t why_len, int err, const char *fmt, ...)
{
	va_list ap;

	if (why && why_len > 0) {
		va_start(ap, fmt);
		vsnprintf(why, why_len, fmt, ap);
		va_end(ap);
	}
	return err;
}
