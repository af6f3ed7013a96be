/* fuzz_envelope.c - libFuzzer target for the envelope decoder
 * (supervisor/envelope.c) and for what the supervisor then does with the
 * values in it (value.c, value_json.c, value_api.c).
 *
 * The input is one frame's payload. pb_envelope_check and
 * pb_envelope_decode must agree, fail with one of their documented errors
 * and a reason, and whatever decodes must hold only what the decoder
 * promises (UTF-8 strings without NUL, a body, Values with a kind nested at
 * most PB_VALUE_MAX_DEPTH deep). Then for the envelope:
 *  - packed again it decodes again, to the same values, and packing that
 *    gives the same bytes (pb_envelope_pack as the frame writers use it);
 *  - every Value prints as JSON (pbv_to_json_string and the public
 *    pb_value_to_json / pb_value_print_json, which must agree), the JSON
 *    parses back (pbv_from_json, pb_value_parse_json) to an equal Value, and
 *    prints the same again;
 *  - the public readers of value_api.c say what the tree holds, and a copy
 *    built with the public constructors is equal;
 *  - a Result's value is detached and freed with pb_value_destroy, as
 *    runtime.c hands it to the caller, the rest with pb_envelope_free;
 *  - with an allocation failing (fuzz_nomem.c; which one follows from the
 *    value), parsing, printing, copying and packing give -ENOMEM (NULL for
 *    the constructors) or the same result as without, and leak nothing.
 * The decoder's fast path (proto/envelope_fast.c) takes only what the
 * general path (PB_DECODE_GENERAL) takes, to the same envelope: the same
 * bytes once both are packed by protobuf-c.
 * Equal means equal as plugbox sees values: any NaN equals any NaN, and a
 * null is a null whatever its ignored bool says.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"
#include "fuzz_common.h"
#include "tests/lib/envelope_agree.h"
#include "plugbox.h"
#include "proto/value.h"

static bool value_equal(const Plugbox__Value *a, const Plugbox__Value *b)
{
	size_t i;

	if (!a || !b)
		return a == b;
	if (a->kind_case != b->kind_case)
		return false;
	switch (a->kind_case) {
	case PLUGBOX__VALUE__KIND_NULL_VALUE:
		return true;
	case PLUGBOX__VALUE__KIND_BOOL_VALUE:
		return !a->bool_value == !b->bool_value;
	case PLUGBOX__VALUE__KIND_INT_VALUE:
		return a->int_value == b->int_value;
	case PLUGBOX__VALUE__KIND_FLOAT_VALUE:
		if (isnan(a->float_value) || isnan(b->float_value))
			return isnan(a->float_value) && isnan(b->float_value);
		/* bit for bit: 0.0 and -0.0 differ */
		return memcmp(&a->float_value, &b->float_value, sizeof(double)) == 0;
	case PLUGBOX__VALUE__KIND_STRING_VALUE:
		return a->string_value.len == b->string_value.len &&
		       (a->string_value.len == 0 ||
		        memcmp(a->string_value.data, b->string_value.data, a->string_value.len) == 0);
	case PLUGBOX__VALUE__KIND_BYTES_VALUE:
		return a->bytes_value.len == b->bytes_value.len &&
		       (a->bytes_value.len == 0 ||
		        memcmp(a->bytes_value.data, b->bytes_value.data, a->bytes_value.len) == 0);
	case PLUGBOX__VALUE__KIND_LIST_VALUE:
		if (!a->list_value || !b->list_value || a->list_value->n_items != b->list_value->n_items)
			return false;
		for (i = 0; i < a->list_value->n_items; i++)
			if (!value_equal(a->list_value->items[i], b->list_value->items[i]))
				return false;
		return true;
	case PLUGBOX__VALUE__KIND_MAP_VALUE:
		if (!a->map_value || !b->map_value || a->map_value->n_entries != b->map_value->n_entries)
			return false;
		for (i = 0; i < a->map_value->n_entries; i++) {
			const Plugbox__ValueMapEntry *x = a->map_value->entries[i], *y = b->map_value->entries[i];

			if (!value_equal(x->key, y->key) || !value_equal(x->value, y->value))
				return false;
		}
		return true;
	default:
		return false;
	}
}

static bool string_ok(const char *s)
{
	return s && pb_utf8_valid(s, strlen(s));
}

/* What the decoder promises about every Value, and the public readers. */
static void check_readers(const Plugbox__Value *v, unsigned depth)
{
	const pb_value *pv = (const pb_value *)v;
	const pb_value *key;
	size_t i, n, len;
	const void *bytes;

	FUZZ_ASSERT(v != NULL && depth <= PB_VALUE_MAX_DEPTH);
	switch (v->kind_case) {
	case PLUGBOX__VALUE__KIND_NULL_VALUE:
		FUZZ_ASSERT(pb_value_get_kind(pv) == PB_VALUE_NULL);
		break;
	case PLUGBOX__VALUE__KIND_BOOL_VALUE:
		FUZZ_ASSERT(pb_value_get_kind(pv) == PB_VALUE_BOOL);
		FUZZ_ASSERT(pb_value_get_bool(pv) == (v->bool_value != 0));
		break;
	case PLUGBOX__VALUE__KIND_INT_VALUE:
		FUZZ_ASSERT(pb_value_get_kind(pv) == PB_VALUE_INT);
		FUZZ_ASSERT(pb_value_get_int(pv) == v->int_value);
		break;
	case PLUGBOX__VALUE__KIND_FLOAT_VALUE: {
		double d = pb_value_get_float(pv);

		FUZZ_ASSERT(pb_value_get_kind(pv) == PB_VALUE_FLOAT);
		FUZZ_ASSERT(memcmp(&d, &v->float_value, sizeof(d)) == 0);
		break;
	}
	case PLUGBOX__VALUE__KIND_STRING_VALUE: {
		/* Any length, U+0000 included, valid UTF-8, a NUL after its end;
		 * the C-string view only when it holds no U+0000. */
		const char *s = pb_value_get_string_len(pv, &len);
		FUZZ_ASSERT(pb_value_get_kind(pv) == PB_VALUE_STRING);
		FUZZ_ASSERT(s != NULL && len == v->string_value.len && s[len] == '\0');
		FUZZ_ASSERT(pb_utf8_valid(s, len));
		FUZZ_ASSERT(pb_value_get_string(pv) == (memchr(s, '\0', len) ? NULL : s));
		break;
	}
	case PLUGBOX__VALUE__KIND_BYTES_VALUE:
		FUZZ_ASSERT(pb_value_get_kind(pv) == PB_VALUE_BYTES);
		bytes = pb_value_get_bytes(pv, &len);
		FUZZ_ASSERT(bytes != NULL && len == v->bytes_value.len);
		FUZZ_ASSERT(len == 0 || bytes == v->bytes_value.data);
		break;
	case PLUGBOX__VALUE__KIND_LIST_VALUE:
		FUZZ_ASSERT(pb_value_get_kind(pv) == PB_VALUE_LIST);
		FUZZ_ASSERT(v->list_value != NULL);
		n = pb_value_list_length(pv);
		FUZZ_ASSERT(n == v->list_value->n_items);
		for (i = 0; i < n; i++) {
			FUZZ_ASSERT(pb_value_list_get(pv, i) == (const pb_value *)v->list_value->items[i]);
			check_readers(v->list_value->items[i], depth + 1);
		}
		FUZZ_ASSERT(pb_value_list_get(pv, n) == NULL);
		break;
	case PLUGBOX__VALUE__KIND_MAP_VALUE:
		FUZZ_ASSERT(pb_value_get_kind(pv) == PB_VALUE_MAP);
		FUZZ_ASSERT(v->map_value != NULL);
		n = pb_value_map_length(pv);
		FUZZ_ASSERT(n == v->map_value->n_entries);
		for (i = 0; i < n; i++) {
			const Plugbox__ValueMapEntry *e = v->map_value->entries[i];
			size_t first;

			FUZZ_ASSERT(e && e->key && e->value);
			FUZZ_ASSERT(pb_value_map_entry(pv, i, &key) == (const pb_value *)e->value);
			FUZZ_ASSERT(key == (const pb_value *)e->key);
			check_readers(e->key, depth + 1);
			check_readers(e->value, depth + 1);
			if (e->key->kind_case != PLUGBOX__VALUE__KIND_STRING_VALUE)
				continue;
			/* map_get finds the first entry with that string key. */
			for (first = 0; first < i; first++) {
				const Plugbox__Value *k = v->map_value->entries[first]->key;

				if (k->kind_case == PLUGBOX__VALUE__KIND_STRING_VALUE && value_equal(k, e->key))
					break;
			}
			/* map_get takes a C string: keys without U+0000 only. */
			const char *key_text = pb_value_get_string((const pb_value *)e->key);
			if (key_text)
				FUZZ_ASSERT(pb_value_map_get(pv, key_text) ==
				            (const pb_value *)v->map_value->entries[first]->value);
		}
		key = (const pb_value *)v;
		FUZZ_ASSERT(pb_value_map_entry(pv, n, &key) == NULL && key == NULL);
		break;
	default:
		FUZZ_ASSERT(!"a decoded value has no kind");
	}
}

/* The same tree through the public constructors. */
static pb_value *copy(const pb_value *v)
{
	pb_value *out = NULL, *k, *x;
	const pb_value *key;
	const void *bytes;
	size_t i, len;

	switch (pb_value_get_kind(v)) {
	case PB_VALUE_NULL:
		return pb_value_new_null();
	case PB_VALUE_BOOL:
		return pb_value_new_bool(pb_value_get_bool(v));
	case PB_VALUE_INT:
		return pb_value_new_int(pb_value_get_int(v));
	case PB_VALUE_FLOAT:
		return pb_value_new_float(pb_value_get_float(v));
	case PB_VALUE_STRING:
		bytes = pb_value_get_string_len(v, &len);
		return pb_value_new_string_len((const char *)bytes, len);
	case PB_VALUE_BYTES:
		bytes = pb_value_get_bytes(v, &len);
		return pb_value_new_bytes(bytes, len);
	case PB_VALUE_LIST:
		out = pb_value_new_list();
		FUZZ_ASSERT(out != NULL);
		for (i = 0; i < pb_value_list_length(v); i++) {
			x = copy(pb_value_list_get(v, i));
			FUZZ_ASSERT(x != NULL && pb_value_list_append(out, x) == 0);
		}
		return out;
	case PB_VALUE_MAP:
		out = pb_value_new_map();
		FUZZ_ASSERT(out != NULL);
		for (i = 0; i < pb_value_map_length(v); i++) {
			x = copy(pb_value_map_entry(v, i, &key));
			k = copy(key);
			FUZZ_ASSERT(x && k && pb_value_map_set(out, k, x) == 0);
		}
		return out;
	}
	return NULL;
}

/* copy() for when allocations fail: NULL, with nothing left behind, or the
 * whole tree. */
static pb_value *copy_or_null(const pb_value *v)
{
	pb_value *out = NULL, *k, *x;
	const pb_value *key;
	const void *bytes;
	size_t i, len;

	switch (pb_value_get_kind(v)) {
	case PB_VALUE_NULL:
		return pb_value_new_null();
	case PB_VALUE_BOOL:
		return pb_value_new_bool(pb_value_get_bool(v));
	case PB_VALUE_INT:
		return pb_value_new_int(pb_value_get_int(v));
	case PB_VALUE_FLOAT:
		return pb_value_new_float(pb_value_get_float(v));
	case PB_VALUE_STRING:
		bytes = pb_value_get_string_len(v, &len);
		return pb_value_new_string_len((const char *)bytes, len);
	case PB_VALUE_BYTES:
		bytes = pb_value_get_bytes(v, &len);
		return pb_value_new_bytes(bytes, len);
	case PB_VALUE_LIST:
		if (!(out = pb_value_new_list()))
			return NULL;
		for (i = 0; i < pb_value_list_length(v); i++) {
			if (!(x = copy_or_null(pb_value_list_get(v, i))))
				goto fail;
			/* Refused, the item is still ours. */
			if (pb_value_list_append(out, x) < 0) {
				pb_value_destroy(x);
				goto fail;
			}
		}
		return out;
	case PB_VALUE_MAP:
		if (!(out = pb_value_new_map()))
			return NULL;
		for (i = 0; i < pb_value_map_length(v); i++) {
			x = copy_or_null(pb_value_map_entry(v, i, &key));
			k = x ? copy_or_null(key) : NULL;
			if (!k || pb_value_map_set(out, k, x) < 0) {
				pb_value_destroy(x);
				pb_value_destroy(k);
				goto fail;
			}
		}
		return out;
	}
	return NULL;
fail:
	pb_value_destroy(out);
	return NULL;
}

/* Everything check_value does that allocates, with allocation `at` failing
 * (and every one after it when sticky). */
static void check_value_nomem(const Plugbox__Value *v, const char *text, unsigned long at, bool sticky)
{
	Plugbox__Value *back = NULL;
	pb_value *dup;
	char *again = NULL, reason[256];
	int rc;

	fuzz_nomem_arm(at, sticky);
	rc = pbv_from_json(text, strlen(text), &back, reason, sizeof(reason));
	fuzz_nomem_disarm();
	FUZZ_ASSERT(rc == 0 ? value_equal(v, back) : rc == -ENOMEM && back == NULL);
	pbv_free(back);

	fuzz_nomem_arm(at, sticky);
	rc = pbv_to_json_string(v, &again);
	fuzz_nomem_disarm();
	FUZZ_ASSERT(rc == 0 ? strcmp(again, text) == 0 : rc == -ENOMEM && again == NULL);
	free(again);

	fuzz_nomem_arm(at, sticky);
	dup = copy_or_null((const pb_value *)v);
	fuzz_nomem_disarm();
	FUZZ_ASSERT(!dup || value_equal(v, (const Plugbox__Value *)dup));
	pb_value_destroy(dup);
}

static char *print_stream(const pb_value *v)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	FUZZ_ASSERT(f != NULL);
	FUZZ_ASSERT(pb_value_print_json(v, f) == 0);
	FUZZ_ASSERT(fclose(f) == 0);
	return buf;
}

static void check_value(const Plugbox__Value *v)
{
	const pb_value *pv = (const pb_value *)v;
	Plugbox__Value *back = NULL;
	pb_value *dup, *parsed;
	char *text, *again, *pub, *why = NULL, reason[256];
	size_t depth = pbv_depth(v);
	int rc;

	FUZZ_ASSERT(depth >= 1 && depth <= PB_VALUE_MAX_DEPTH);
	check_readers(v, 1);

	/* JSON: every decoded value prints, and reads back as itself. */
	rc = pbv_to_json_string(v, &text);
	FUZZ_ASSERT(rc == 0 && text != NULL);
	FUZZ_ASSERT(strlen(text) > 0 && !strchr(text, '\n'));
	pub = pb_value_to_json(pv);
	FUZZ_ASSERT(pub != NULL && strcmp(pub, text) == 0);
	free(pub);
	pub = print_stream(pv);
	FUZZ_ASSERT(strcmp(pub, text) == 0);
	free(pub);
	rc = pbv_from_json(text, strlen(text), &back, reason, sizeof(reason));
	if (rc != 0)
		fprintf(stderr, "printed JSON does not parse back (%s): %s\n", reason, text);
	FUZZ_ASSERT(rc == 0 && back != NULL);
	FUZZ_ASSERT(value_equal(v, back));
	FUZZ_ASSERT(pbv_to_json_string(back, &again) == 0);
	FUZZ_ASSERT(strcmp(text, again) == 0);
	free(again);
	pbv_free(back);
	parsed = pb_value_parse_json(text, &why);
	FUZZ_ASSERT(parsed != NULL && why == NULL);
	FUZZ_ASSERT(value_equal(v, (const Plugbox__Value *)parsed));
	pb_value_destroy(parsed);

	/* The public constructors rebuild it. */
	dup = copy(pv);
	FUZZ_ASSERT(dup != NULL);
	FUZZ_ASSERT(value_equal(v, (const Plugbox__Value *)dup));
	FUZZ_ASSERT(pbv_depth((const Plugbox__Value *)dup) == depth);
	again = pb_value_to_json(dup);
	FUZZ_ASSERT(again != NULL && strcmp(again, text) == 0);
	free(again);
	pb_value_destroy(dup);

	/* Which allocation fails: any of the first hundred or so, picked
	 * by the value so that the fuzzer can steer it. */
	check_value_nomem(v, text, 1 + (strlen(text) * 7 + depth) % 100, strlen(text) % 3 == 0);
	free(text);
}

/* Every Value, string and body the envelope holds. */
static void walk_values(const Plugbox__Envelope *env, void (*fn)(const Plugbox__Value *))
{
	size_t i;

	switch (env->body_case) {
	case PLUGBOX__ENVELOPE__BODY_CALL:
		for (i = 0; i < env->call->n_args; i++)
			fn(env->call->args[i]);
		for (i = 0; i < env->call->n_kwargs; i++)
			fn(env->call->kwargs[i]->value);
		break;
	case PLUGBOX__ENVELOPE__BODY_RESULT:
		fn(env->result->value);
		break;
	case PLUGBOX__ENVELOPE__BODY_HOST_CALL:
		for (i = 0; i < env->host_call->n_args; i++)
			fn(env->host_call->args[i]);
		for (i = 0; i < env->host_call->n_kwargs; i++)
			fn(env->host_call->kwargs[i]->value);
		break;
	case PLUGBOX__ENVELOPE__BODY_HOST_RESULT:
		if (env->host_result->outcome_case == PLUGBOX__HOST_RESULT__OUTCOME_VALUE)
			fn(env->host_result->value);
		break;
	default:
		break;
	}
}

static void check_strings(const Plugbox__Envelope *env)
{
	size_t i;

	FUZZ_ASSERT(env->body_case != PLUGBOX__ENVELOPE__BODY__NOT_SET);
	switch (env->body_case) {
	case PLUGBOX__ENVELOPE__BODY_HELLO:
		FUZZ_ASSERT(string_ok(env->hello->plugin) && string_ok(env->hello->layout) &&
		            string_ok(env->hello->version));
		for (i = 0; i < env->hello->n_exports; i++)
			FUZZ_ASSERT(string_ok(env->hello->exports[i]));
		for (i = 0; i < env->hello->n_sys_path; i++)
			FUZZ_ASSERT(string_ok(env->hello->sys_path[i]));
		break;
	case PLUGBOX__ENVELOPE__BODY_CALL:
		FUZZ_ASSERT(string_ok(env->call->function) && string_ok(env->call->plugin));
		for (i = 0; i < env->call->n_kwargs; i++)
			FUZZ_ASSERT(string_ok(env->call->kwargs[i]->name) && env->call->kwargs[i]->value);
		break;
	case PLUGBOX__ENVELOPE__BODY_RESULT:
		FUZZ_ASSERT(env->result->value != NULL);
		break;
	case PLUGBOX__ENVELOPE__BODY_ERROR:
		FUZZ_ASSERT(string_ok(env->error->type) && string_ok(env->error->message) &&
		            string_ok(env->error->traceback));
		break;
	case PLUGBOX__ENVELOPE__BODY_HOST_CALL:
		FUZZ_ASSERT(string_ok(env->host_call->name));
		break;
	case PLUGBOX__ENVELOPE__BODY_HOST_RESULT:
		FUZZ_ASSERT(env->host_result->outcome_case != PLUGBOX__HOST_RESULT__OUTCOME__NOT_SET);
		if (env->host_result->outcome_case == PLUGBOX__HOST_RESULT__OUTCOME_ERROR)
			FUZZ_ASSERT(string_ok(env->host_result->error->message));
		break;
	case PLUGBOX__ENVELOPE__BODY_LOG:
		FUZZ_ASSERT(string_ok(env->log->logger) && string_ok(env->log->message));
		break;
	case PLUGBOX__ENVELOPE__BODY_VIOLATION:
		FUZZ_ASSERT(string_ok(env->violation->traceback));
		break;
	default:
		break;
	}
}

/* For comparing the values of two envelopes in the same order. */
static const Plugbox__Value *seen[1024];
static size_t nseen, ncompared;

static void remember(const Plugbox__Value *v)
{
	if (nseen < sizeof(seen) / sizeof(seen[0]))
		seen[nseen] = v;
	nseen++;
}

static void compare(const Plugbox__Value *v)
{
	FUZZ_ASSERT(ncompared < nseen);
	if (ncompared < sizeof(seen) / sizeof(seen[0]))
		FUZZ_ASSERT(value_equal(seen[ncompared], v));
	ncompared++;
}

/* Packed again, decoded again: the same values, and then the same bytes. */
static void round_trip(const Plugbox__Envelope *env)
{
	Plugbox__Envelope *again = NULL;
	uint8_t *frame, *frame2;
	size_t len, len2;
	char why[256];
	int rc;

	FUZZ_ASSERT(pb_envelope_pack(env, UINT32_MAX, &frame, &len) == 0);
	FUZZ_ASSERT(len >= 4 && (uint32_t)frame[0] + ((uint32_t)frame[1] << 8) +
	                                        ((uint32_t)frame[2] << 16) + ((uint32_t)frame[3] << 24) ==
	                                len - 4);
	rc = pb_envelope_decode(frame + 4, len - 4, &again, why, sizeof(why));
	if (rc != 0)
		fprintf(stderr, "a decoded envelope packed again does not decode: %s\n", why);
	FUZZ_ASSERT(rc == 0 && again != NULL);
	FUZZ_ASSERT(again->id == env->id && again->body_case == env->body_case);
	nseen = ncompared = 0;
	walk_values(env, remember);
	walk_values(again, compare);
	FUZZ_ASSERT(ncompared == nseen);
	FUZZ_ASSERT(pb_envelope_pack(again, UINT32_MAX, &frame2, &len2) == 0);
	FUZZ_ASSERT(len2 == len && memcmp(frame, frame2, len) == 0);
	free(frame2);
	/* The bound is on the packed envelope, not on the frame. */
	FUZZ_ASSERT(pb_envelope_pack(again, (uint32_t)(len - 4), &frame2, &len2) == 0);
	free(frame2);
	if (len > 4)
		FUZZ_ASSERT(pb_envelope_pack(again, (uint32_t)(len - 5), &frame2, &len2) == -EMSGSIZE &&
		            frame2 == NULL);
	/* Packing while memory runs out: the frame or nothing. */
	fuzz_nomem_arm(1, false);
	rc = pb_envelope_pack(again, UINT32_MAX, &frame2, &len2);
	FUZZ_ASSERT(fuzz_nomem_disarm() == 1 && rc == -ENOMEM && frame2 == NULL && len2 == 0);
	pb_envelope_free(again);
	free(frame);
}

/* The fast path against the general one, on the same bytes. */
static void fast_path_agrees(const uint8_t *data, size_t size)
{
	char why[256];

	if (pb_test_fast_agrees(data, size, why, sizeof(why)) < 0) {
		fprintf(stderr, "%s\n", why);
		FUZZ_ASSERT(0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static Plugbox__Envelope sentinel;
	Plugbox__Envelope *env = &sentinel;
	char why[256], why2[256], tiny[8];
	int checked, rc;

	checked = pb_envelope_check(data, size, why, sizeof(why));
	FUZZ_ASSERT(checked == 0 || checked == -EBADMSG || checked == -ELOOP || checked == -E2BIG);
	FUZZ_ASSERT(memchr(why, '\0', sizeof(why)));
	FUZZ_ASSERT((checked == 0) == (why[0] == '\0'));
	/* The reason is cut to any buffer, or left out. */
	FUZZ_ASSERT(pb_envelope_check(data, size, NULL, 0) == checked);
	FUZZ_ASSERT(pb_envelope_check(data, size, tiny, sizeof(tiny)) == checked);
	FUZZ_ASSERT(memchr(tiny, '\0', sizeof(tiny)) && strncmp(tiny, why, strlen(tiny)) == 0);

	fast_path_agrees(data, size);
	rc = pb_envelope_decode(data, size, &env, why2, sizeof(why2));
	if (checked < 0) {
		FUZZ_ASSERT(rc == checked && strcmp(why, why2) == 0);
	}
	if (rc < 0) {
		FUZZ_ASSERT(rc == -EBADMSG || rc == -ELOOP || rc == -E2BIG);
		FUZZ_ASSERT(env == NULL && why2[0] != '\0');
		return 0;
	}
	FUZZ_ASSERT(env != NULL && env != &sentinel);
	check_strings(env);
	walk_values(env, check_value);
	round_trip(env);
	/* pb_error_cut on any Error a peer sent (the daemon cuts a worker's):
	 * its message and type stay UTF-8 (each was, decoded), between
	 * whole characters, and within their bounds. */
	if (env->body_case == PLUGBOX__ENVELOPE__BODY_ERROR) {
		static char cut[PB_ERROR_CUT_BUF];
		Plugbox__Error er = *env->error;

		pb_error_cut(&er, cut);
		FUZZ_ASSERT(pb_utf8_valid(er.message, strlen(er.message)) && pb_utf8_valid(er.type, strlen(er.type)));
		FUZZ_ASSERT(strlen(er.message) < PB_ERROR_CUT + 128 && strlen(er.type) <= PB_ERROR_TYPE_CUT);
		FUZZ_ASSERT(strncmp(er.type, env->error->type, strlen(er.type)) == 0);
	}
	/* runtime.c's pb_inflight_reply: the result's value goes to the caller,
	 * who frees it as a pb_value; the rest of the envelope as unpacked. */
	if (env->body_case == PLUGBOX__ENVELOPE__BODY_RESULT) {
		Plugbox__Value *v = env->result->value;

		env->result->value = NULL;
		pb_value_destroy((pb_value *)v);
	}
	pb_envelope_free(env);
	return 0;
}
