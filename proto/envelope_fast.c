/* envelope_fast.c - the decoder's fast path for the envelopes of the call
 * path: a Call with scalar arguments, a Result with a scalar value.
 *
 * pb_envelope_decode reads any envelope in three passes (the wire check,
 * protobuf-c's descriptor-driven unpack, the semantic rules): ~4,600
 * instructions for the Result of echo(12345) in the supervisor and ~6,100
 * for its Call in the worker. This reads the common small shapes in one
 * pass, and accepts only a strict subset of what the general decoder
 * accepts, returning "not mine" for everything else, never an error: the
 * general decoder then decides, with its own reasons. So a hostile worker
 * gains nothing here: bytes this path takes are bytes the general path
 * takes too, to an equal envelope (fuzz_envelope checks both, on every
 * input, and check_envelope on the shapes below).
 *
 * The subset: fields in ascending order, each once (repeated args
 * adjacent), one-byte keys, varints of at most 10 bytes (the tenth holding
 * bit 63 only) and lengths of at most 5, all inside their message:
 *   Envelope: [1 id] (3 Call | 4 Result) [12 poll_us < 2^32]
 *   Call:     [1 function: UTF-8, no NUL] {2 Value, at most ARGS_MAX}
 *             [6 parent] [7 start_by] [8 prune_kwargs: 0 or 1]
 *   Result:   1 Value
 *   Value:    exactly one of 1 null / 2 bool (0 or 1), 3 int, 4 float,
 *             5 string (UTF-8), 6 bytes
 * Keyword arguments, a plugin name, a timeout, lists and maps go the
 * general way. The tree is allocated block by block as protobuf-c's
 * unpacker (with envelope.c's allocator) would, so pb_envelope_free and
 * pbv_free free it alike: every string and bytes block one byte longer
 * and NUL-terminated, an empty one NULL, absent strings the schema's
 * default. No recursion: a Value here holds no Value.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"
#include "proto/value.h"

/* More arguments go the general way (hooks and ordinary calls have few). */
#define ARGS_MAX 16

/* A one-byte key: field number and wire type. */
enum { WT_VARINT = 0,
       WT_FIXED64 = 1,
       WT_LEN = 2 };
#define KEY(field, wire) ((field) << 3 | (wire))

struct rd {
	const uint8_t *p, *end;
};

static bool get_varint(struct rd *r, unsigned max_bytes, uint64_t *out)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < max_bytes && r->p + i < r->end; i++) {
		uint8_t b = r->p[i];

		if (i == 9 && b > 1)
			return false; /* past bit 63, or an eleventh byte */
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			r->p += i + 1;
			*out = v;
			return true;
		}
	}
	return false;
}

/* A length prefix and the bytes it covers, inside r. */
static bool get_len(struct rd *r, struct rd *inner)
{
	uint64_t n;

	if (!get_varint(r, 5, &n) || n > (uint64_t)(r->end - r->p))
		return false;
	inner->p = r->p;
	inner->end = r->p + n;
	r->p += n;
	return true;
}

static bool get_fixed64(struct rd *r, uint64_t *out)
{
	uint64_t v = 0;

	if (r->end - r->p < 8)
		return false;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)r->p[i] << (8 * i);
	r->p += 8;
	*out = v;
	return true;
}

static bool get_bool(struct rd *r, protobuf_c_boolean *out)
{
	if (r->p >= r->end || r->p[0] > 1)
		return false;
	*out = r->p[0];
	r->p++;
	return true;
}

/* The next key, if it is one of ours (one byte); 0 at the end. */
static int peek_key(const struct rd *r)
{
	if (r->p >= r->end)
		return 0;
	return r->p[0] < 0x80 ? r->p[0] : -1;
}

/* len bytes as protobuf-c stores bytes: NULL when empty, else a block one
 * byte longer, NUL-terminated (alloc_terminated in envelope.c). */
static bool copy_bytes(const struct rd *in, ProtobufCBinaryData *out)
{
	size_t n = (size_t)(in->end - in->p);

	out->len = n;
	out->data = NULL;
	if (n == 0)
		return true;
	out->data = calloc(1, n + 1);
	if (!out->data)
		return false;
	memcpy(out->data, in->p, n);
	return true;
}

/* One scalar Value filling all of r; NULL if it is not one (or no memory). */
static Plugbox__Value *get_value(struct rd *r)
{
	Plugbox__Value *v = calloc(1, sizeof(*v));
	struct rd s;
	uint64_t u = 0;
	bool ok = false;

	if (!v)
		return NULL;
	plugbox__value__init(v);
	switch (peek_key(r)) {
	case KEY(1, WT_VARINT):
		r->p++;
		v->kind_case = PLUGBOX__VALUE__KIND_NULL_VALUE;
		ok = get_bool(r, &v->null_value);
		break;
	case KEY(2, WT_VARINT):
		r->p++;
		v->kind_case = PLUGBOX__VALUE__KIND_BOOL_VALUE;
		ok = get_bool(r, &v->bool_value);
		break;
	case KEY(3, WT_VARINT):
		r->p++;
		ok = get_varint(r, 10, &u);
		v->kind_case = PLUGBOX__VALUE__KIND_INT_VALUE;
		v->int_value = (int64_t)(u >> 1) ^ -(int64_t)(u & 1); /* zigzag */
		break;
	case KEY(4, WT_FIXED64):
		r->p++;
		ok = get_fixed64(r, &u);
		v->kind_case = PLUGBOX__VALUE__KIND_FLOAT_VALUE;
		memcpy(&v->float_value, &u, sizeof(u));
		break;
	case KEY(5, WT_LEN):
		r->p++;
		v->kind_case = PLUGBOX__VALUE__KIND_STRING_VALUE;
		ok = get_len(r, &s) && pb_utf8_valid((const char *)s.p, (size_t)(s.end - s.p)) &&
		     copy_bytes(&s, &v->string_value);
		break;
	case KEY(6, WT_LEN):
		r->p++;
		v->kind_case = PLUGBOX__VALUE__KIND_BYTES_VALUE;
		ok = get_len(r, &s) && copy_bytes(&s, &v->bytes_value);
		break;
	default: break;
	}
	if (ok && r->p == r->end)
		return v;
	protobuf_c_message_free_unpacked(&v->base, NULL);
	return NULL;
}

/* A Value field's bytes, as a Value. */
static Plugbox__Value *get_value_field(struct rd *r)
{
	struct rd s;

	return get_len(r, &s) ? get_value(&s) : NULL;
}

static bool get_call(struct rd *r, Plugbox__Call *call)
{
	Plugbox__Value *args[ARGS_MAX];
	size_t nargs = 0;
	struct rd s;
	uint64_t u = 0;

	if (peek_key(r) == KEY(1, WT_LEN)) {
		r->p++;
		if (!get_len(r, &s) || memchr(s.p, '\0', (size_t)(s.end - s.p)) ||
		    !pb_utf8_valid((const char *)s.p, (size_t)(s.end - s.p)))
			return false;
		call->function = malloc((size_t)(s.end - s.p) + 1);
		if (!call->function)
			return false;
		memcpy(call->function, s.p, (size_t)(s.end - s.p));
		call->function[s.end - s.p] = '\0';
	}
	while (peek_key(r) == KEY(2, WT_LEN)) {
		r->p++;
		if (nargs == ARGS_MAX || !(args[nargs] = get_value_field(r)))
			goto fail;
		nargs++;
	}
	if (nargs) {
		call->args = malloc(nargs * sizeof(*call->args));
		if (!call->args)
			goto fail;
		memcpy(call->args, args, nargs * sizeof(*call->args));
		call->n_args = nargs; /* the envelope's now: freed with it */
	}
	if (peek_key(r) == KEY(6, WT_VARINT)) {
		r->p++;
		if (!get_varint(r, 10, &call->parent))
			return false;
	}
	if (peek_key(r) == KEY(7, WT_FIXED64)) {
		r->p++;
		if (!get_fixed64(r, &u))
			return false;
		memcpy(&call->start_by, &u, sizeof(u));
	}
	if (peek_key(r) == KEY(8, WT_VARINT)) {
		r->p++;
		if (!get_bool(r, &call->prune_kwargs))
			return false;
	}
	return r->p == r->end;
fail:
	for (size_t i = 0; i < nargs; i++)
		protobuf_c_message_free_unpacked(&args[i]->base, NULL);
	return false;
}

int pb_envelope_decode_small(const uint8_t *buf, size_t len, Plugbox__Envelope **out)
{
	struct rd r = { buf, buf + len }, s;
	Plugbox__Envelope *env = calloc(1, sizeof(*env));
	uint64_t u = 0;
	bool ok = false;

	*out = NULL;
	if (!env)
		return 0;
	plugbox__envelope__init(env);
	if (peek_key(&r) == KEY(1, WT_VARINT)) {
		r.p++;
		if (!get_varint(&r, 10, &env->id))
			goto no;
	}
	switch (peek_key(&r)) {
	case KEY(3, WT_LEN):
		r.p++;
		if (!get_len(&r, &s) || !(env->call = calloc(1, sizeof(*env->call))))
			goto no;
		plugbox__call__init(env->call);
		env->body_case = PLUGBOX__ENVELOPE__BODY_CALL;
		ok = get_call(&s, env->call);
		break;
	case KEY(4, WT_LEN):
		r.p++;
		if (!get_len(&r, &s) || !(env->result = calloc(1, sizeof(*env->result))))
			goto no;
		plugbox__result__init(env->result);
		env->body_case = PLUGBOX__ENVELOPE__BODY_RESULT;
		if (peek_key(&s) == KEY(1, WT_LEN)) {
			s.p++;
			env->result->value = get_value_field(&s);
			ok = env->result->value && s.p == s.end;
		}
		break;
	default: goto no;
	}
	if (!ok)
		goto no;
	if (peek_key(&r) == KEY(12, WT_VARINT)) {
		r.p++;
		if (!get_varint(&r, 5, &u) || u > UINT32_MAX)
			goto no;
		env->poll_us = (uint32_t)u;
	}
	if (r.p != r.end)
		goto no;
	*out = env;
	return 1;
no:
	protobuf_c_message_free_unpacked(&env->base, NULL);
	return 0;
}

/* Scalar Values without unknown fields: what free_small frees itself. */
static bool scalar(const Plugbox__Value *v)
{
	return v && !v->base.n_unknown_fields && v->kind_case != PLUGBOX__VALUE__KIND_LIST_VALUE &&
	       v->kind_case != PLUGBOX__VALUE__KIND_MAP_VALUE;
}

static void free_scalar(Plugbox__Value *v)
{
	if (v->kind_case == PLUGBOX__VALUE__KIND_STRING_VALUE)
		free(v->string_value.data);
	else if (v->kind_case == PLUGBOX__VALUE__KIND_BYTES_VALUE)
		free(v->bytes_value.data);
	free(v);
}

/* A string field as protobuf-c frees it: unless it is the default. */
static void free_string(char *s)
{
	if (s != (const char *)protobuf_c_empty_string)
		free(s);
}

bool pb_envelope_free_small(Plugbox__Envelope *env)
{
	if (env->base.n_unknown_fields)
		return false;
	if (env->body_case == PLUGBOX__ENVELOPE__BODY_RESULT && env->result) {
		Plugbox__Result *r = env->result;

		if (r->base.n_unknown_fields || (r->value && !scalar(r->value)))
			return false;
		if (r->value)
			free_scalar(r->value);
		free(r);
		free(env);
		return true;
	}
	if (env->body_case == PLUGBOX__ENVELOPE__BODY_CALL && env->call) {
		Plugbox__Call *c = env->call;

		if (c->base.n_unknown_fields || c->n_kwargs)
			return false;
		for (size_t i = 0; i < c->n_args; i++)
			if (!scalar(c->args[i]))
				return false;
		for (size_t i = 0; i < c->n_args; i++)
			free_scalar(c->args[i]);
		free(c->args);
		free_string(c->function);
		free_string(c->plugin);
		free(c);
		free(env);
		return true;
	}
	return false;
}
