/* pack.c - the encoder for the envelopes of the call path (a Call, a
 * Result), written out by hand instead of by protobuf-c's generic packer.
 *
 * protobuf-c packs by walking each message's descriptor, field by field,
 * twice (once for the size, once for the bytes); for the envelope of a
 * call with one int argument that is ~2,700 instructions on each side of
 * a round trip, a quarter of the supervisor's whole cost per call
 * (docs/performance.md). The bytes written here are exactly protobuf-c's
 * (fields in number order, proto3's zero values left out, a oneof member
 * written whenever its case is set), which tests/unit/check_envelope.c
 * checks against protobuf_c_message_pack on many envelopes. Other bodies,
 * and any message that carries unknown fields, are left to protobuf-c.
 *
 * Nothing here reads untrusted bytes: the input is a message tree built by
 * this process. Recursion follows the Value tree, as protobuf-c's does.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "proto/frame.h"

/* Not packable here (unknown fields somewhere): the caller uses protobuf-c. */
#define NOT_HERE SIZE_MAX

static size_t varint_size(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static uint8_t *put_double(uint8_t *p, double d)
{
	uint64_t v;

	memcpy(&v, &d, sizeof(v));
	for (int i = 0; i < 8; i++)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

static uint64_t zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (v < 0 ? UINT64_MAX : 0);
}

/* A length-delimited field of n bytes with a one-byte tag (fields 1-15). */
static size_t delimited_size(size_t n)
{
	return 1 + varint_size(n) + n;
}

/* Every tag here is one byte: field numbers below 16. */
#define TAG(field, wire) ((uint8_t)((field) << 3 | (wire)))
enum { WT_VARINT = 0,
       WT_FIXED64 = 1,
       WT_LEN = 2 };

static size_t value_size(const Plugbox__Value *v);

static size_t list_size(const Plugbox__ValueList *l)
{
	size_t n = 0;

	if (l->base.n_unknown_fields)
		return NOT_HERE;
	for (size_t i = 0; i < l->n_items; i++) {
		size_t s = value_size(l->items[i]);
		if (s == NOT_HERE)
			return NOT_HERE;
		n += delimited_size(s);
	}
	return n;
}

static size_t entry_size(const Plugbox__ValueMapEntry *e)
{
	size_t n = 0, s;

	if (e->base.n_unknown_fields)
		return NOT_HERE;
	if (e->key) {
		if ((s = value_size(e->key)) == NOT_HERE)
			return NOT_HERE;
		n += delimited_size(s);
	}
	if (e->value) {
		if ((s = value_size(e->value)) == NOT_HERE)
			return NOT_HERE;
		n += delimited_size(s);
	}
	return n;
}

static size_t map_size(const Plugbox__ValueMap *m)
{
	size_t n = 0;

	if (m->base.n_unknown_fields)
		return NOT_HERE;
	for (size_t i = 0; i < m->n_entries; i++) {
		size_t s = entry_size(m->entries[i]);
		if (s == NOT_HERE)
			return NOT_HERE;
		n += delimited_size(s);
	}
	return n;
}

static size_t value_size(const Plugbox__Value *v)
{
	size_t s;

	if (v->base.n_unknown_fields)
		return NOT_HERE;
	switch (v->kind_case) {
	case PLUGBOX__VALUE__KIND_NULL_VALUE:
	case PLUGBOX__VALUE__KIND_BOOL_VALUE: return 2;
	case PLUGBOX__VALUE__KIND_INT_VALUE: return 1 + varint_size(zigzag(v->int_value));
	case PLUGBOX__VALUE__KIND_FLOAT_VALUE: return 9;
	case PLUGBOX__VALUE__KIND_STRING_VALUE: return delimited_size(v->string_value.len);
	case PLUGBOX__VALUE__KIND_BYTES_VALUE: return delimited_size(v->bytes_value.len);
	case PLUGBOX__VALUE__KIND_LIST_VALUE:
		if (!v->list_value)
			return 0;
		s = list_size(v->list_value);
		return s == NOT_HERE ? NOT_HERE : delimited_size(s);
	case PLUGBOX__VALUE__KIND_MAP_VALUE:
		if (!v->map_value)
			return 0;
		s = map_size(v->map_value);
		return s == NOT_HERE ? NOT_HERE : delimited_size(s);
	default: return 0;
	}
}

static uint8_t *put_value(uint8_t *p, const Plugbox__Value *v);

static uint8_t *put_bytes(uint8_t *p, uint8_t tag, const ProtobufCBinaryData *b)
{
	*p++ = tag;
	p = put_varint(p, b->len);
	if (b->len)
		memcpy(p, b->data, b->len);
	return p + b->len;
}

static uint8_t *put_value_field(uint8_t *p, uint8_t tag, const Plugbox__Value *v)
{
	*p++ = tag;
	p = put_varint(p, value_size(v));
	return put_value(p, v);
}

static uint8_t *put_value(uint8_t *p, const Plugbox__Value *v)
{
	switch (v->kind_case) {
	case PLUGBOX__VALUE__KIND_NULL_VALUE:
		*p++ = TAG(1, WT_VARINT);
		*p++ = v->null_value ? 1 : 0;
		return p;
	case PLUGBOX__VALUE__KIND_BOOL_VALUE:
		*p++ = TAG(2, WT_VARINT);
		*p++ = v->bool_value ? 1 : 0;
		return p;
	case PLUGBOX__VALUE__KIND_INT_VALUE:
		*p++ = TAG(3, WT_VARINT);
		return put_varint(p, zigzag(v->int_value));
	case PLUGBOX__VALUE__KIND_FLOAT_VALUE:
		*p++ = TAG(4, WT_FIXED64);
		return put_double(p, v->float_value);
	case PLUGBOX__VALUE__KIND_STRING_VALUE: return put_bytes(p, TAG(5, WT_LEN), &v->string_value);
	case PLUGBOX__VALUE__KIND_BYTES_VALUE: return put_bytes(p, TAG(6, WT_LEN), &v->bytes_value);
	case PLUGBOX__VALUE__KIND_LIST_VALUE:
		if (!v->list_value)
			return p;
		*p++ = TAG(7, WT_LEN);
		p = put_varint(p, list_size(v->list_value));
		for (size_t i = 0; i < v->list_value->n_items; i++)
			p = put_value_field(p, TAG(1, WT_LEN), v->list_value->items[i]);
		return p;
	case PLUGBOX__VALUE__KIND_MAP_VALUE:
		if (!v->map_value)
			return p;
		*p++ = TAG(8, WT_LEN);
		p = put_varint(p, map_size(v->map_value));
		for (size_t i = 0; i < v->map_value->n_entries; i++) {
			const Plugbox__ValueMapEntry *e = v->map_value->entries[i];
			*p++ = TAG(1, WT_LEN);
			p = put_varint(p, entry_size(e));
			if (e->key)
				p = put_value_field(p, TAG(1, WT_LEN), e->key);
			if (e->value)
				p = put_value_field(p, TAG(2, WT_LEN), e->value);
		}
		return p;
	default: return p;
	}
}

/* proto3 strings: left out when NULL or empty. */
static size_t string_size(const char *s)
{
	return s && *s ? delimited_size(strlen(s)) : 0;
}

static uint8_t *put_string(uint8_t *p, uint8_t tag, const char *s)
{
	size_t n;

	if (!s || !*s)
		return p;
	n = strlen(s);
	*p++ = tag;
	p = put_varint(p, n);
	memcpy(p, s, n);
	return p + n;
}

static size_t kwarg_size(const Plugbox__KeywordArgument *k)
{
	size_t n = string_size(k->name), s;

	if (k->base.n_unknown_fields)
		return NOT_HERE;
	if (k->value) {
		if ((s = value_size(k->value)) == NOT_HERE)
			return NOT_HERE;
		n += delimited_size(s);
	}
	return n;
}

static size_t call_size(const Plugbox__Call *c)
{
	size_t n = string_size(c->function) + string_size(c->plugin), s;

	if (c->base.n_unknown_fields)
		return NOT_HERE;
	for (size_t i = 0; i < c->n_args; i++) {
		if ((s = value_size(c->args[i])) == NOT_HERE)
			return NOT_HERE;
		n += delimited_size(s);
	}
	for (size_t i = 0; i < c->n_kwargs; i++) {
		if ((s = kwarg_size(c->kwargs[i])) == NOT_HERE)
			return NOT_HERE;
		n += delimited_size(s);
	}
	if (c->timeout != 0)
		n += 9;
	if (c->parent)
		n += 1 + varint_size(c->parent);
	if (c->start_by != 0)
		n += 9;
	if (c->prune_kwargs)
		n += 2;
	return n;
}

static uint8_t *put_call(uint8_t *p, const Plugbox__Call *c)
{
	p = put_string(p, TAG(1, WT_LEN), c->function);
	for (size_t i = 0; i < c->n_args; i++)
		p = put_value_field(p, TAG(2, WT_LEN), c->args[i]);
	for (size_t i = 0; i < c->n_kwargs; i++) {
		const Plugbox__KeywordArgument *k = c->kwargs[i];
		*p++ = TAG(3, WT_LEN);
		p = put_varint(p, kwarg_size(k));
		p = put_string(p, TAG(1, WT_LEN), k->name);
		if (k->value)
			p = put_value_field(p, TAG(2, WT_LEN), k->value);
	}
	p = put_string(p, TAG(4, WT_LEN), c->plugin);
	if (c->timeout != 0) {
		*p++ = TAG(5, WT_FIXED64);
		p = put_double(p, c->timeout);
	}
	if (c->parent) {
		*p++ = TAG(6, WT_VARINT);
		p = put_varint(p, c->parent);
	}
	if (c->start_by != 0) {
		*p++ = TAG(7, WT_FIXED64);
		p = put_double(p, c->start_by);
	}
	if (c->prune_kwargs) {
		*p++ = TAG(8, WT_VARINT);
		*p++ = 1;
	}
	return p;
}

static size_t result_size(const Plugbox__Result *r)
{
	size_t s;

	if (r->base.n_unknown_fields)
		return NOT_HERE;
	if (!r->value)
		return 0;
	s = value_size(r->value);
	return s == NOT_HERE ? NOT_HERE : delimited_size(s);
}

/* The body's own size (without its tag and length), or NOT_HERE. */
static size_t body_size(const Plugbox__Envelope *env)
{
	if (env->base.n_unknown_fields)
		return NOT_HERE;
	if (env->body_case == PLUGBOX__ENVELOPE__BODY_CALL && env->call)
		return call_size(env->call);
	if (env->body_case == PLUGBOX__ENVELOPE__BODY_RESULT && env->result)
		return result_size(env->result);
	return NOT_HERE;
}

static size_t envelope_size(const Plugbox__Envelope *env, size_t body)
{
	return (env->id ? 1 + varint_size(env->id) : 0) + delimited_size(body) +
	       (env->poll_us ? 1 + varint_size(env->poll_us) : 0);
}

size_t pb_envelope_packed_size(const Plugbox__Envelope *env)
{
	size_t body = body_size(env);

	return body == NOT_HERE ? plugbox__envelope__get_packed_size(env) : envelope_size(env, body);
}

size_t pb_envelope_pack_to(const Plugbox__Envelope *env, uint8_t *out)
{
	size_t body = body_size(env);
	uint8_t *p = out;

	if (body == NOT_HERE)
		return plugbox__envelope__pack(env, out);
	if (env->id) {
		*p++ = TAG(1, WT_VARINT);
		p = put_varint(p, env->id);
	}
	if (env->body_case == PLUGBOX__ENVELOPE__BODY_CALL) {
		*p++ = TAG(3, WT_LEN);
		p = put_varint(p, body);
		p = put_call(p, env->call);
	} else {
		*p++ = TAG(4, WT_LEN);
		p = put_varint(p, body);
		if (env->result->value)
			p = put_value_field(p, TAG(1, WT_LEN), env->result->value);
	}
	if (env->poll_us) {
		*p++ = TAG(12, WT_VARINT);
		p = put_varint(p, env->poll_us);
	}
	return (size_t)(p - out);
}
