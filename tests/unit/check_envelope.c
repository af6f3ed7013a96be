/* check_envelope.c - unit tests for the untrusted-envelope decoder
 * (proto/envelope.c): garbage, mutations, nesting far past the bound,
 * invalid UTF-8, unknown fields, unset bodies, the message-count bound.
 *
 * The hand-written packer and the decoder's fast path are checked against
 * protobuf-c in check_envelope_fast.c.
 *
 * Hostile inputs are built by hand at the wire level, since protobuf-c would
 * never produce them; deep ones are built from the inside out in a loop so
 * that the test itself never recurses.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proto/frame.h"
#include "proto/value.h"
#include "envelope_testlib.h"


/* --- helpers: building wire bytes ---------------------------------------- */

/* Growable byte buffer for messages built front to back. */
struct wb {
	uint8_t *d;
	size_t len, cap;
};

static void wb_bytes(struct wb *b, const void *data, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 64;

		while (cap < b->len + n)
			cap *= 2;
		b->d = realloc(b->d, cap);
		if (!b->d)
			ck_abort_msg("out of memory");
		b->cap = cap;
	}
	if (n > 0)
		memcpy(b->d + b->len, data, n);
	b->len += n;
}

static size_t enc_varint(uint8_t *out, uint64_t v)
{
	size_t n = 0;

	do {
		out[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			out[n] |= 0x80;
		n++;
	} while (v);
	return n;
}

static void wb_varint(struct wb *b, uint64_t v)
{
	uint8_t tmp[10];

	wb_bytes(b, tmp, enc_varint(tmp, v));
}

static void wb_field_varint(struct wb *b, unsigned field, uint64_t v)
{
	wb_varint(b, (uint64_t)field << 3);
	wb_varint(b, v);
}

static void wb_field_bytes(struct wb *b, unsigned field, const void *data, size_t n)
{
	wb_varint(b, (uint64_t)field << 3 | 2);
	wb_varint(b, n);
	wb_bytes(b, data, n);
}

/* Append sub as a length-delimited field and free it. */
static void wb_field_msg(struct wb *b, unsigned field, struct wb *sub)
{
	wb_field_bytes(b, field, sub->d, sub->len);
	free(sub->d);
	memset(sub, 0, sizeof(*sub));
}

/* Buffer filled from the end towards the front: wrapping what is there so
 * far in one more message costs O(1) per level, with no recursion. */
struct pre {
	uint8_t *buf;
	size_t cap, start;
};

static void pre_init(struct pre *p, size_t cap)
{
	p->buf = malloc(cap);
	ck_assert_ptr_nonnull(p->buf);
	p->cap = cap;
	p->start = cap;
}

static void pre_bytes(struct pre *p, const void *d, size_t n)
{
	/* Not ck_assert: every passing Check assertion records its location
	 * (a write to the runner), and this runs millions of times. */
	if (n > p->start)
		ck_abort_msg("pre buffer too small");
	p->start -= n;
	memcpy(p->buf + p->start, d, n);
}

static void pre_varint(struct pre *p, uint64_t v)
{
	uint8_t tmp[10];

	pre_bytes(p, tmp, enc_varint(tmp, v));
}

/* Everything built so far becomes field `field` of a new outer message. */
static void pre_wrap(struct pre *p, unsigned field)
{
	pre_varint(p, p->cap - p->start);
	pre_varint(p, (uint64_t)field << 3 | 2);
}

static const uint8_t *pre_data(const struct pre *p)
{
	return p->buf + p->start;
}

static size_t pre_len(const struct pre *p)
{
	return p->cap - p->start;
}

/* Field numbers from proto/plugbox.proto. */
enum {
	VALUE_NULL = 1,
	VALUE_BOOL = 2,
	VALUE_INT = 3,
	VALUE_FLOAT = 4,
	VALUE_STRING = 5,
	VALUE_BYTES = 6,
	VALUE_LIST = 7,
	VALUE_MAP = 8,
	LIST_ITEMS = 1,
	MAP_ENTRIES = 1,
	ENTRY_KEY = 1,
	ENTRY_VALUE = 2,
	ENV_ID = 1,
	ENV_HELLO = 2,
	ENV_CALL = 3,
	ENV_RESULT = 4,
	ENV_ERROR = 5,
	ENV_SHUTDOWN = 9,
	ENV_VIOLATION = 10,
	CALL_FUNCTION = 1,
	CALL_ARGS = 2,
	CALL_KWARGS = 3,
	RESULT_VALUE = 1,
	ERROR_KIND = 1,
	HELLO_EXPORTS = 5,
	VIOLATION_ARGS = 3,
};

/* A Value nested `depth` deep (a null inside depth-1 lists), wrapped as
 * Envelope{call{args: [value]}}. */
static void build_deep_list(struct pre *p, size_t depth)
{
	size_t i;

	pre_init(p, 16 * depth + 64);
	pre_varint(p, 1);
	pre_varint(p, VALUE_NULL << 3);
	for (i = 1; i < depth; i++) {
		pre_wrap(p, LIST_ITEMS);
		pre_wrap(p, VALUE_LIST);
	}
	pre_wrap(p, CALL_ARGS);
	pre_wrap(p, ENV_CALL);
}

/* Same through maps: each level is {"k": inner} (or {inner: "k"} when
 * through_key), wrapped as Envelope{result{value}}. */
static void build_deep_map(struct pre *p, size_t depth, int through_key)
{
	static const uint8_t str_k[] = { VALUE_STRING << 3 | 2, 1, 'k' };
	size_t i;

	pre_init(p, 32 * depth + 64);
	pre_varint(p, 1);
	pre_varint(p, VALUE_NULL << 3);
	for (i = 1; i < depth; i++) {
		/* Field order within a message is free, so the scalar half of
		 * the entry can simply be put in front of the wrapped inner. */
		pre_wrap(p, through_key ? ENTRY_KEY : ENTRY_VALUE);
		pre_bytes(p, str_k, sizeof(str_k));
		pre_varint(p, sizeof(str_k));
		pre_varint(p, (through_key ? ENTRY_VALUE : ENTRY_KEY) << 3 | 2);
		pre_wrap(p, MAP_ENTRIES);
		pre_wrap(p, VALUE_MAP);
	}
	pre_wrap(p, RESULT_VALUE);
	pre_wrap(p, ENV_RESULT);
}

static int decode(const uint8_t *buf, size_t len, char *why, size_t why_len)
{
	Plugbox__Envelope *env = NULL;
	int rc = pb_envelope_decode(buf, len, &env, why, why_len);

	if (rc == 0)
		ck_assert_ptr_nonnull(env);
	else
		ck_assert_ptr_null(env);
	pb_envelope_free(env);
	return rc;
}

/* --- envelopes ------------------------------------------------------------ */

static void check_call(const Plugbox__Envelope *got)
{
	const Plugbox__Call *c;

	ck_assert_uint_eq(got->id, 42);
	ck_assert_int_eq(got->body_case, PLUGBOX__ENVELOPE__BODY_CALL);
	c = got->call;
	ck_assert_str_eq(c->function, "mod.sub:fn");
	ck_assert_uint_eq(c->n_args, 4);
	ck_assert_int_eq(c->args[0]->kind_case, PLUGBOX__VALUE__KIND_INT_VALUE);
	ck_assert_int_eq(c->args[0]->int_value, -7);
	ck_assert_str_eq((const char *)c->args[1]->string_value.data, "caf\xc3\xa9");
	ck_assert_uint_eq(c->args[1]->string_value.len, 5);
	ck_assert_uint_eq(c->args[2]->list_value->n_items, 2);
	ck_assert_int_eq(c->args[2]->list_value->items[0]->kind_case,
	                 PLUGBOX__VALUE__KIND_NULL_VALUE);
	ck_assert(c->args[2]->list_value->items[1]->float_value == 1.5);
	ck_assert_uint_eq(c->args[3]->map_value->n_entries, 1);
	ck_assert_int_eq(c->args[3]->map_value->entries[0]->key->int_value, 1);
	ck_assert(c->args[3]->map_value->entries[0]->value->bool_value);
	ck_assert_uint_eq(c->n_kwargs, 1);
	ck_assert_str_eq(c->kwargs[0]->name, "data");
	ck_assert_uint_eq(c->kwargs[0]->value->bytes_value.len, 3);
	ck_assert_mem_eq(c->kwargs[0]->value->bytes_value.data, "\0\1\2", 3);
}

START_TEST(test_envelope_roundtrip)
{
	Plugbox__Envelope *env = build_call(), *got = NULL;
	size_t len = plugbox__envelope__get_packed_size(env);
	uint8_t *buf = malloc(len);
	char why[128];

	ck_assert_ptr_nonnull(buf);
	plugbox__envelope__pack(env, buf);
	ck_assert_int_eq(pb_envelope_check(buf, len, why, sizeof(why)), 0);
	ck_assert_int_eq(pb_envelope_decode(buf, len, &got, why, sizeof(why)), 0);
	check_call(got);
	pb_envelope_free(got);
	free(buf);
	free_call(env);
}
END_TEST

START_TEST(test_envelope_send_through_pipe)
{
	Plugbox__Envelope *env = build_call(), *got = NULL;
	struct pb_frame_reader r;
	uint8_t *payload;
	uint32_t len;
	char why[128];
	int fds[2];

	ck_assert_int_eq(pipe(fds), 0);
	ck_assert_int_eq(pb_envelope_send(fds[1], env, PB_FRAME_MAX_DEFAULT), 0);
	ck_assert_int_eq(pb_envelope_send(fds[1], env, 10), -EMSGSIZE);
	pb_frame_reader_init(&r, PB_FRAME_MAX_DEFAULT);
	ck_assert_int_eq(pb_frame_read_blocking(&r, fds[0]), 1);
	ck_assert_int_eq(pb_frame_take(&r, &payload, &len), 0);
	ck_assert_int_eq(pb_envelope_decode(payload, len, &got, why, sizeof(why)), 0);
	check_call(got);
	pb_envelope_free(got);
	free(payload);
	pb_frame_reader_free(&r);
	close(fds[0]);
	close(fds[1]);
	free_call(env);
}
END_TEST

START_TEST(test_other_bodies)
{
	static const uint8_t shutdown[] = { ENV_SHUTDOWN << 3 | 2, 0 };
	static const uint8_t packed[] = { ENV_VIOLATION << 3 | 2, 5,
		                          VIOLATION_ARGS << 3 | 2, 3, 1, 2, 0x7f };
	static const uint8_t unpacked[] = { ENV_VIOLATION << 3 | 2, 4,
		                            VIOLATION_ARGS << 3, 1, VIOLATION_ARGS << 3, 2 };
	static const uint8_t error_ok[] = { ENV_ERROR << 3 | 2, 2, ERROR_KIND << 3, 1 };
	static const uint8_t error_bad[] = { ENV_ERROR << 3 | 2, 2, ERROR_KIND << 3, 99 };
	Plugbox__Envelope *env;
	char why[128];

	ck_assert_int_eq(pb_envelope_decode(shutdown, sizeof(shutdown), &env, why, sizeof(why)), 0);
	ck_assert_int_eq(env->body_case, PLUGBOX__ENVELOPE__BODY_SHUTDOWN);
	pb_envelope_free(env);
	ck_assert_int_eq(pb_envelope_decode(packed, sizeof(packed), &env, why, sizeof(why)), 0);
	ck_assert_uint_eq(env->violation->n_args, 3);
	ck_assert_uint_eq(env->violation->args[2], 0x7f);
	pb_envelope_free(env);
	ck_assert_int_eq(pb_envelope_decode(unpacked, sizeof(unpacked), &env, why, sizeof(why)), 0);
	ck_assert_uint_eq(env->violation->n_args, 2);
	pb_envelope_free(env);
	ck_assert_int_eq(decode(error_ok, sizeof(error_ok), why, sizeof(why)), 0);
	ck_assert_int_eq(decode(error_bad, sizeof(error_bad), why, sizeof(why)), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(why, "unknown value 99"));
}
END_TEST

START_TEST(test_garbage)
{
	static const struct {
		const char *bytes;
		size_t len;
	} junk[] = {
		{ "\xff", 1 },
		{ "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11 },
		{ "\x08", 1 },                     /* id, no value */
		{ "\x08\x80", 2 },                 /* truncated varint */
		{ "\x1a\x05\x0a", 3 },             /* length past the end */
		{ "\x1a\xff\xff\xff\xff\x0f", 6 }, /* 4 GiB length */
		{ "\x00\x00", 2 },                 /* field 0 */
		{ "\x0b\x0c", 2 },                 /* group wire types */
		{ "\x0f", 1 },                     /* wire type 7 */
		{ "GET / HTTP/1.1\r\n\r\n", 18 },
		{ "{\"id\": 1}", 9 },
	};
	uint8_t buf[64];
	char why[128];
	size_t i, k;

	for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		int rc = decode((const uint8_t *)junk[i].bytes, junk[i].len, why, sizeof(why));

		ck_assert_msg(rc < 0, "junk %zu accepted", i);
		ck_assert_msg(why[0] != '\0', "junk %zu: no reason", i);
		ck_assert_ptr_null(strchr(why, '\n'));
	}
	/* Random buffers: never a crash (ASan/UBSan watch); rare valid ones are
	 * fine. */
	for (i = 0; i < 50000; i++) {
		size_t len = rng() % sizeof(buf);

		for (k = 0; k < len; k++)
			buf[k] = (uint8_t)rng();
		ck_assert_int_le(decode(buf, len, why, sizeof(why)), 0);
	}
}
END_TEST

/* Every truncation and many byte mutations of a valid envelope. */
START_TEST(test_mutations)
{
	Plugbox__Envelope *env = build_call();
	size_t len = plugbox__envelope__get_packed_size(env), i;
	uint8_t *good = malloc(len), *buf = malloc(len);
	char why[128];

	ck_assert(good && buf);
	plugbox__envelope__pack(env, good);
	for (i = 0; i < len; i++) {
		memcpy(buf, good, i);
		ck_assert_int_le(decode(buf, i, why, sizeof(why)), 0);
	}
	for (i = 0; i < 20000; i++) {
		unsigned flips = 1 + rng() % 4;

		memcpy(buf, good, len);
		while (flips--)
			buf[rng() % len] = (uint8_t)rng();
		ck_assert_int_le(decode(buf, len, why, sizeof(why)), 0);
	}
	free(good);
	free(buf);
	free_call(env);
}
END_TEST

START_TEST(test_deep_100000)
{
	struct timespec t0, t1;
	struct pre p;
	char why[128];
	double secs;

	build_deep_list(&p, 100000);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(pb_envelope_check(pre_data(&p), pre_len(&p), why, sizeof(why)), -ELOOP);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_ptr_nonnull(strstr(why, "deeper than 64"));
	ck_assert_int_eq(decode(pre_data(&p), pre_len(&p), why, sizeof(why)), -ELOOP);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	/* It stops at level 65; a generous bound that still catches a scan of
	 * the whole input per level. */
	ck_assert_msg(secs < 1.0, "check took %.3f s", secs);
	free(p.buf);

	build_deep_map(&p, 100000, 0);
	ck_assert_int_eq(decode(pre_data(&p), pre_len(&p), why, sizeof(why)), -ELOOP);
	free(p.buf);
}
END_TEST

START_TEST(test_depth_limit)
{
	Plugbox__Envelope *env;
	struct pre p;
	char why[128];
	int through_key;

	build_deep_list(&p, PB_VALUE_MAX_DEPTH);
	ck_assert_int_eq(pb_envelope_decode(pre_data(&p), pre_len(&p), &env, why, sizeof(why)), 0);
	ck_assert_uint_eq(pbv_depth(env->call->args[0]), PB_VALUE_MAX_DEPTH);
	pb_envelope_free(env);
	free(p.buf);
	build_deep_list(&p, PB_VALUE_MAX_DEPTH + 1);
	ck_assert_int_eq(decode(pre_data(&p), pre_len(&p), why, sizeof(why)), -ELOOP);
	free(p.buf);

	for (through_key = 0; through_key <= 1; through_key++) {
		build_deep_map(&p, PB_VALUE_MAX_DEPTH, through_key);
		ck_assert_int_eq(pb_envelope_decode(pre_data(&p), pre_len(&p), &env, why,
		                                    sizeof(why)),
		                 0);
		ck_assert_uint_eq(pbv_depth(env->result->value), PB_VALUE_MAX_DEPTH);
		pb_envelope_free(env);
		free(p.buf);
		build_deep_map(&p, PB_VALUE_MAX_DEPTH + 1, through_key);
		ck_assert_int_eq(decode(pre_data(&p), pre_len(&p), why, sizeof(why)), -ELOOP);
		free(p.buf);
	}
}
END_TEST

/* Envelope{call{function: fn, args: [Value{string: s}]}} */
static void call_with_strings(struct wb *env, const char *fn, size_t fn_len,
                              const char *s, size_t s_len)
{
	struct wb call = { 0 }, value = { 0 };

	wb_field_bytes(&value, VALUE_STRING, s, s_len);
	wb_field_bytes(&call, CALL_FUNCTION, fn, fn_len);
	wb_field_msg(&call, CALL_ARGS, &value);
	wb_field_msg(env, ENV_CALL, &call);
}

START_TEST(test_invalid_utf8)
{
	struct wb env = { 0 }, hello = { 0 };
	char why[128];

	call_with_strings(&env, "f", 1, "caf\xc3\xa9", 5);
	ck_assert_int_eq(decode(env.d, env.len, why, sizeof(why)), 0);
	free(env.d);
	env = (struct wb){ 0 };

	call_with_strings(&env, "\xc0\x80", 2, "ok", 2);
	ck_assert_int_eq(decode(env.d, env.len, why, sizeof(why)), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(why, "UTF-8"));
	free(env.d);
	env = (struct wb){ 0 };

	call_with_strings(&env, "f", 1, "\xed\xa0\x80", 3);
	ck_assert_int_eq(decode(env.d, env.len, why, sizeof(why)), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(why, "plugbox.Value.string_value"));
	free(env.d);
	env = (struct wb){ 0 };

	/* An embedded NUL would hide the rest of a C string: refused in a name... */
	call_with_strings(&env, "f\0g", 3, "ok", 2);
	ck_assert_int_eq(decode(env.d, env.len, why, sizeof(why)), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(why, "NUL byte in plugbox.Call.function"));
	free(env.d);
	env = (struct wb){ 0 };

	/* ... but a Value's string has a length, and U+0000 is UTF-8: kept
	 * whole, NUL-terminated after its end; its UTF-8 is still checked. */
	call_with_strings(&env, "f", 1, "a\0b", 3);
	ck_assert_int_eq(decode(env.d, env.len, why, sizeof(why)), 0);
	free(env.d);
	env = (struct wb){ 0 };
	call_with_strings(&env, "f", 1, "a\0\xff", 3);
	ck_assert_int_eq(decode(env.d, env.len, why, sizeof(why)), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(why, "UTF-8 in plugbox.Value.string_value"));
	free(env.d);
	env = (struct wb){ 0 };

	/* Repeated strings too. */
	wb_field_bytes(&hello, HELLO_EXPORTS, "good", 4);
	wb_field_bytes(&hello, HELLO_EXPORTS, "\xf4\x90\x80\x80", 4);
	wb_field_msg(&env, ENV_HELLO, &hello);
	ck_assert_int_eq(decode(env.d, env.len, why, sizeof(why)), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(why, "plugbox.Hello.exports"));
	free(env.d);
}
END_TEST

START_TEST(test_unknown_field)
{
	struct wb env = { 0 }, call = { 0 }, value = { 0 };
	char why[128];

	wb_field_varint(&env, 15, 1);
	wb_field_bytes(&env, ENV_SHUTDOWN, NULL, 0);
	ck_assert_int_eq(decode(env.d, env.len, why, sizeof(why)), -EBADMSG);
	ck_assert_str_eq(why, "unknown field 15 in plugbox.Envelope at byte 0");
	free(env.d);
	env = (struct wb){ 0 };

	/* Deep inside: a Value with field 9. */
	wb_field_varint(&value, 9, 0);
	wb_field_msg(&call, CALL_ARGS, &value);
	wb_field_msg(&env, ENV_CALL, &call);
	ck_assert_int_eq(decode(env.d, env.len, why, sizeof(why)), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(why, "unknown field 9 in plugbox.Value"));
	free(env.d);
}
END_TEST

/* The control socket's mode: unknown fields of every wire type protobuf-c
 * can hold are skipped at every level, and none is left below the envelope
 * (the arguments are forwarded to a strict worker as they are). */
START_TEST(test_lenient_skips_unknown_fields)
{
	struct wb env = { 0 }, call = { 0 }, value = { 0 };
	Plugbox__Envelope *got = NULL;
	uint8_t *packed;
	size_t packed_len;
	char why[160];
	static const uint8_t fixed32[4] = { 1, 2, 3, 4 };

	wb_field_bytes(&value, VALUE_STRING, "v", 1);
	wb_field_varint(&value, 900, 5);
	wb_field_bytes(&call, CALL_FUNCTION, "f", 1);
	wb_field_msg(&call, CALL_ARGS, &value);
	wb_field_bytes(&call, 901, "later", 5);
	wb_field_varint(&env, ENV_ID, 7);
	wb_field_msg(&env, ENV_CALL, &call);
	wb_varint(&env, 902 << 3 | 5);
	wb_bytes(&env, fixed32, 4);
	wb_varint(&env, 903 << 3 | 1);
	wb_bytes(&env, "12345678", 8);
	ck_assert_int_eq(decode(env.d, env.len, why, sizeof(why)), -EBADMSG);
	ck_assert_int_eq(pb_envelope_decode_opts(env.d, env.len, PB_DECODE_LENIENT, &got, why, sizeof(why)), 0);
	ck_assert_uint_eq(got->id, 7);
	ck_assert_int_eq(got->body_case, PLUGBOX__ENVELOPE__BODY_CALL);
	ck_assert_str_eq(got->call->function, "f");
	ck_assert_uint_eq(got->base.n_unknown_fields, 2);
	ck_assert_uint_eq(got->call->base.n_unknown_fields, 0);
	ck_assert_uint_eq(got->call->args[0]->base.n_unknown_fields, 0);
	/* What the daemon forwards is what a strict reader accepts. */
	got->base.n_unknown_fields = 0; /* (the envelope's own are not forwarded) */
	ck_assert_int_eq(pb_envelope_pack(got, PB_FRAME_MAX_DEFAULT, &packed, &packed_len), 0);
	got->base.n_unknown_fields = 2;
	ck_assert_int_eq(decode(packed + 4, packed_len - 4, why, sizeof(why)), 0);
	free(packed);
	pb_envelope_free(got);
	ck_assert_uint_eq(pb_envelope_peek_id(env.d, env.len), 7);
	free(env.d);

	/* A group cannot be skipped; an envelope with no body it knows
	 * decodes with NOT_SET; a field 0 is refused. */
	env = (struct wb){ 0 };
	wb_field_varint(&env, ENV_ID, 3);
	wb_varint(&env, 904 << 3 | 3);
	ck_assert_int_eq(pb_envelope_decode_opts(env.d, env.len, PB_DECODE_LENIENT, &got, why, sizeof(why)), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(why, "unknown field 904 in plugbox.Envelope at byte 2 has wire type 3"));
	ck_assert_uint_eq(pb_envelope_peek_id(env.d, env.len), 3);
	free(env.d);
	env = (struct wb){ 0 };
	wb_field_bytes(&env, 99, "x", 1);
	wb_field_varint(&env, ENV_ID, 4);
	ck_assert_int_eq(pb_envelope_decode_opts(env.d, env.len, PB_DECODE_LENIENT, &got, why, sizeof(why)), 0);
	ck_assert_int_eq(got->body_case, PLUGBOX__ENVELOPE__BODY__NOT_SET);
	ck_assert_uint_eq(got->base.unknown_fields[0].tag, 99);
	pb_envelope_free(got);
	ck_assert_uint_eq(pb_envelope_peek_id(env.d, env.len), 4);
	free(env.d);
	env = (struct wb){ 0 };
	wb_varint(&env, 0);
	wb_varint(&env, 0);
	ck_assert_int_eq(pb_envelope_decode_opts(env.d, env.len, PB_DECODE_LENIENT, &got, why, sizeof(why)), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(why, "field number 0"));
	ck_assert_uint_eq(pb_envelope_peek_id(env.d, env.len), 0);
	free(env.d);
}
END_TEST

START_TEST(test_body_not_set)
{
	struct wb env = { 0 };
	char why[128];

	wb_field_varint(&env, ENV_ID, 1);
	ck_assert_int_eq(pb_envelope_check(env.d, env.len, why, sizeof(why)), 0);
	ck_assert_int_eq(decode(env.d, env.len, why, sizeof(why)), -EBADMSG);
	ck_assert_str_eq(why, "envelope body not set");
	ck_assert_int_eq(decode(NULL, 0, why, sizeof(why)), -EBADMSG);
	free(env.d);
}
END_TEST

START_TEST(test_semantic_rules)
{
	struct wb env = { 0 }, call = { 0 }, value = { 0 }, map = { 0 }, entry = { 0 }, k = { 0 };
	char why[128];

	/* A Value with no kind. */
	wb_field_msg(&call, CALL_ARGS, &value);
	wb_field_msg(&env, ENV_CALL, &call);
	ck_assert_int_eq(decode(env.d, env.len, why, sizeof(why)), -EBADMSG);
	ck_assert_str_eq(why, "value kind not set");
	free(env.d);
	env = (struct wb){ 0 };

	/* A map entry with a key and no value. */
	wb_field_varint(&k, VALUE_INT, 2);
	wb_field_msg(&entry, ENTRY_KEY, &k);
	wb_field_msg(&map, MAP_ENTRIES, &entry);
	wb_field_msg(&value, VALUE_MAP, &map);
	wb_field_msg(&call, CALL_ARGS, &value);
	wb_field_msg(&env, ENV_CALL, &call);
	ck_assert_int_eq(decode(env.d, env.len, why, sizeof(why)), -EBADMSG);
	ck_assert_str_eq(why, "plugbox.ValueMapEntry.value missing");
	free(env.d);
	env = (struct wb){ 0 };

	/* A result without a value. */
	wb_field_bytes(&env, ENV_RESULT, NULL, 0);
	ck_assert_int_eq(decode(env.d, env.len, why, sizeof(why)), -EBADMSG);
	free(env.d);
}
END_TEST

START_TEST(test_wire_rules)
{
	static const struct {
		const char *bytes;
		size_t len;
		int err;
		const char *why;
	} cases[] = {
		/* id as length-delimited */
		{ "\x0a\x00\x4a\x00", 4, -EBADMSG, "wire type 2 not allowed for plugbox.Envelope.id at byte 0" },
		/* shutdown given twice: protobuf-c would merge */
		{ "\x4a\x00\x4a\x00", 4, -EBADMSG, "plugbox.Envelope.shutdown given twice at byte 2" },
		/* two members of the body oneof */
		{ "\x4a\x00\x1a\x00", 4, -EBADMSG, "plugbox.Envelope has both shutdown and call at byte 2" },
		/* 11-byte varint */
		{ "\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12, -EBADMSG, "varint longer than 10 bytes at byte 1" },
		/* 10-byte varint with bits past 64 */
		{ "\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 11, -EBADMSG, "varint overflows 64 bits at byte 1" },
		{ "\x4a\x00\x08\x80\x80", 5, -EBADMSG, "truncated varint at byte 3" },
		/* a sub-message whose length runs past its parent */
		{ "\x1a\x02\x12\x05\x00\x00", 6, -EBADMSG, "plugbox.Call.args at byte 2 overruns its message" },
		/* a packed run that ends inside a varint */
		{ "\x52\x03\x1a\x01\x80", 5, -EBADMSG, "truncated varint at byte 4" },
	};
	char why[128];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_eq(decode((const uint8_t *)cases[i].bytes, cases[i].len, why, sizeof(why)),
		                 cases[i].err);
		ck_assert_str_eq(why, cases[i].why);
	}
	/* A 10-byte varint that fits is fine: id = UINT64_MAX. */
	ck_assert_int_eq(decode((const uint8_t *)"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\x4a\x00",
	                        13, why, sizeof(why)),
	                 0);
}
END_TEST

START_TEST(test_message_count)
{
	/* Envelope{result{value{list{items: n x Value{null}}}}} with n = 2M:
	 * 8 MiB, within the frame bound, but 2M messages. */
	const size_t n = 2u << 20;
	static const uint8_t item[] = { LIST_ITEMS << 3 | 2, 2, VALUE_NULL << 3, 1 };
	struct pre p;
	char why[128];
	size_t i;

	pre_init(&p, n * sizeof(item) + 64);
	for (i = 0; i < n; i++)
		pre_bytes(&p, item, sizeof(item));
	pre_wrap(&p, VALUE_LIST);
	pre_wrap(&p, RESULT_VALUE);
	pre_wrap(&p, ENV_RESULT);
	ck_assert_uint_le(pre_len(&p), PB_FRAME_MAX_DEFAULT);
	ck_assert_int_eq(pb_envelope_check(pre_data(&p), pre_len(&p), why, sizeof(why)), -E2BIG);
	ck_assert_ptr_nonnull(strstr(why, "1048576"));
	ck_assert_int_eq(decode(pre_data(&p), pre_len(&p), why, sizeof(why)), -E2BIG);
	free(p.buf);

	/* 1000 of them are fine. */
	pre_init(&p, 1000 * sizeof(item) + 64);
	for (i = 0; i < 1000; i++)
		pre_bytes(&p, item, sizeof(item));
	pre_wrap(&p, VALUE_LIST);
	pre_wrap(&p, RESULT_VALUE);
	pre_wrap(&p, ENV_RESULT);
	ck_assert_int_eq(decode(pre_data(&p), pre_len(&p), why, sizeof(why)), 0);
	free(p.buf);

	/* Packed scalars count too: 2M one-byte violation args. */
	pre_init(&p, n + 64);
	for (i = 0; i < n; i++)
		pre_bytes(&p, "\x01", 1);
	pre_wrap(&p, VIOLATION_ARGS);
	pre_wrap(&p, ENV_VIOLATION);
	ck_assert_int_eq(decode(pre_data(&p), pre_len(&p), why, sizeof(why)), -E2BIG);
	free(p.buf);
}
END_TEST

/* pb_error_cut: a message cut between whole characters, marked, the
 * traceback gone, and the Error then fits any frame. */
START_TEST(test_error_cut)
{
	size_t big = 20u << 20;
	char *m = malloc(big + 1), cut[PB_ERROR_CUT_BUF];
	Plugbox__Error er = PLUGBOX__ERROR__INIT;
	Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT;

	ck_assert_ptr_nonnull(m);
	memset(m, 'x', big);
	m[big] = '\0';
	memcpy(m + PB_ERROR_CUT - 1, "\xc3\xa9", 2);      /* an e-acute across the cut */
	memcpy(m + PB_ERROR_TYPE_CUT - 1, "\xc3\xa9", 2); /* and across the type's */
	er.message = m;
	er.traceback = m;
	env.body_case = PLUGBOX__ENVELOPE__BODY_ERROR;
	env.error = &er;
	ck_assert_uint_gt(pb_envelope_packed_size(&env), PB_FRAME_MAX_DEFAULT);
	pb_error_cut(&er, cut);
	ck_assert_ptr_eq(er.message, cut);
	ck_assert_str_eq(er.traceback, "");
	ck_assert_int_eq(strncmp(cut, m, PB_ERROR_CUT - 1), 0);
	ck_assert_str_eq(cut + PB_ERROR_CUT - 1,
	                 "... (cut: the error's message and traceback are larger than a frame may be, 16 MiB)");
	ck_assert(pb_utf8_valid(cut, strlen(cut)));
	ck_assert_uint_lt(pb_envelope_packed_size(&env), PB_ERROR_CUT_BUF + 16);
	/* a short message is kept whole, and marked */
	er.message = "boom";
	pb_error_cut(&er, cut);
	ck_assert_int_eq(strncmp(cut, "boom... (cut", 12), 0);
	/* a type past PB_ERROR_TYPE_CUT (a plugin's class of any name) is cut
	 * the same way, an e-acute across the mark left out */
	er.type = m;
	er.message = "boom";
	pb_error_cut(&er, cut);
	ck_assert_ptr_ne(er.type, m);
	ck_assert_uint_eq(strlen(er.type), PB_ERROR_TYPE_CUT - 1);
	ck_assert(pb_utf8_valid(er.type, strlen(er.type)));
	ck_assert_int_eq(strncmp(cut, "boom... (cut", 12), 0);
	ck_assert_uint_lt(pb_envelope_packed_size(&env), PB_ERROR_CUT_BUF + 16);
	/* a short type is left as it is */
	er.type = "ValueError";
	er.message = "boom";
	pb_error_cut(&er, cut);
	ck_assert_str_eq(er.type, "ValueError");
	free(m);
}
END_TEST

static Suite *envelope_suite(void)
{
	Suite *s = suite_create("envelope");
	TCase *te = tcase_create("envelope");
	TCase *th = tcase_create("hostile");

	tcase_add_test(te, test_envelope_roundtrip);
	tcase_add_test(te, test_envelope_send_through_pipe);
	tcase_add_test(te, test_other_bodies);
	tcase_add_test(te, test_error_cut);
	suite_add_tcase(s, te);

	/* Generous: the fuzz loops and the 2M-message case run under
	 * sanitizers too. */
	tcase_set_timeout(th, 120);
	tcase_add_test(th, test_garbage);
	tcase_add_test(th, test_mutations);
	tcase_add_test(th, test_deep_100000);
	tcase_add_test(th, test_depth_limit);
	tcase_add_test(th, test_invalid_utf8);
	tcase_add_test(th, test_unknown_field);
	tcase_add_test(th, test_lenient_skips_unknown_fields);
	tcase_add_test(th, test_body_not_set);
	tcase_add_test(th, test_semantic_rules);
	tcase_add_test(th, test_wire_rules);
	tcase_add_test(th, test_message_count);
	suite_add_tcase(s, th);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(envelope_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	/* The number of failed tests, kept below 77, which the Automake test
	 * driver would read as "skipped". */
	return failed < 77 ? failed : 76;
}
