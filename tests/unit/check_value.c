/* check_value.c - unit tests for Value trees (supervisor/value.c), their JSON
 * notation (supervisor/value_json.c) and base64 (supervisor/base64.c).
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base64.h"
#include "proto/frame.h"
#include "proto/value.h"

/* Hot loops below avoid ck_assert: every passing Check assertion records
 * its location (a write to the runner), and they run 10^5-10^6 times. */
static Plugbox__Value *must(Plugbox__Value *v)
{
	if (!v)
		ck_abort_msg("out of memory");
	return v;
}

static void must_ok(int rc)
{
	if (rc != 0)
		ck_abort_msg("unexpected error %d", rc);
}

static Plugbox__Value *parse_ok(const char *json)
{
	Plugbox__Value *v = NULL;
	char why[256];
	int rc = pbv_from_json(json, strlen(json), &v, why, sizeof(why));

	ck_assert_msg(rc == 0, "%s: %s", json, why);
	ck_assert_ptr_nonnull(v);
	return v;
}

static int parse_err(const char *json, char *why, size_t why_len)
{
	Plugbox__Value *v = (Plugbox__Value *)1;
	int rc = pbv_from_json(json, strlen(json), &v, why, why_len);

	ck_assert_msg(rc < 0, "%s accepted", json);
	ck_assert_ptr_null(v);
	ck_assert_msg(why[0] != '\0' && !strchr(why, '\n'), "%s: bad reason '%s'", json, why);
	return rc;
}

static char *print_ok(const Plugbox__Value *v)
{
	char *out = NULL;

	ck_assert_int_eq(pbv_to_json_string(v, &out), 0);
	ck_assert_ptr_nonnull(out);
	return out;
}

/* JSON -> Value -> JSON gives `want`; and `want` is a fixed point. */
static void roundtrip(const char *in, const char *want)
{
	Plugbox__Value *v = parse_ok(in), *again;
	char *out = print_ok(v), *out2;

	ck_assert_msg(strcmp(out, want) == 0, "%s printed as %s, want %s", in, out, want);
	again = parse_ok(out);
	out2 = print_ok(again);
	ck_assert_str_eq(out2, want);
	free(out2);
	pbv_free(again);
	free(out);
	pbv_free(v);
}

#define SAME(json) roundtrip(json, json)

/* --- JSON round trips ------------------------------------------------------ */

START_TEST(test_scalars)
{
	SAME("null");
	SAME("true");
	SAME("false");
	SAME("0");
	SAME("-5");
	SAME("-9223372036854775808");
	SAME("9223372036854775807");
	roundtrip(" [ 1 , 2 ] ", "[1,2]");
}
END_TEST

START_TEST(test_floats)
{
	SAME("1.5");
	SAME("0.1");
	SAME("1.0");
	SAME("-0.0");
	SAME("-2.5");
	SAME("1e+300");
	roundtrip("1e300", "1e+300");
	roundtrip("1E2", "100.0");
	roundtrip("0.30000000000000004", "0.30000000000000004");
	SAME("1.7976931348623157e+308");
	SAME("2.2250738585072014e-308");
	SAME("5e-324");
	SAME("123456789012345.0");
	SAME("1e+16");
}
END_TEST

/* Whatever the double, the printed text reads back as that double. */
START_TEST(test_float_shortest_roundtrip)
{
	uint64_t state = 88172645463325252u;
	int i;

	for (i = 0; i < 20000; i++) {
		Plugbox__Value *v, *back;
		uint64_t bits;
		double d;
		char *out;

		state ^= state << 13;
		state ^= state >> 7;
		state ^= state << 17;
		bits = state;
		memcpy(&d, &bits, sizeof(d));
		v = must(pbv_new_float(d));
		must_ok(pbv_to_json_string(v, &out));
		must_ok(pbv_from_json(out, strlen(out), &back, NULL, 0));
		if (back->kind_case != PLUGBOX__VALUE__KIND_FLOAT_VALUE ||
		    (isnan(d) ? !isnan(back->float_value)
		              : memcmp(&back->float_value, &d, sizeof(d)) != 0) ||
		    strlen(out) > 26)
			ck_abort_msg("%s does not read back", out);
		free(out);
		pbv_free(back);
		pbv_free(v);
	}
}
END_TEST

START_TEST(test_strings)
{
	SAME("\"\"");
	SAME("\"caf\xc3\xa9 \xe2\x98\x83\"");
	SAME("\"\xf0\x9f\x98\x80 / \x7f\"");
	roundtrip("\"\\u00e9\\u2603\"", "\"\xc3\xa9\xe2\x98\x83\"");
	SAME("\"\\\" \\\\ \\n \\r \\t \\b \\f \\u0001 \\u001f\"");
	roundtrip("\"\\/\\u000a\\u0008\"", "\"/\\n\\b\"");
}
END_TEST

START_TEST(test_bytes)
{
	Plugbox__Value *v;

	SAME("{\"$bytes\":\"\"}");
	SAME("{\"$bytes\":\"Zm9vYmFy\"}");
	SAME("{\"$bytes\":\"AAEA/w==\"}");
	v = parse_ok("{\"$bytes\":\"AAEA/w==\"}");
	ck_assert_int_eq(v->kind_case, PLUGBOX__VALUE__KIND_BYTES_VALUE);
	ck_assert_uint_eq(v->bytes_value.len, 4);
	ck_assert_mem_eq(v->bytes_value.data, "\x00\x01\x00\xff", 4);
	pbv_free(v);
}
END_TEST

START_TEST(test_nonfinite)
{
	Plugbox__Value *v;

	SAME("{\"$float\":\"nan\"}");
	SAME("{\"$float\":\"inf\"}");
	SAME("{\"$float\":\"-inf\"}");
	v = parse_ok("{\"$float\":\"-inf\"}");
	ck_assert_int_eq(v->kind_case, PLUGBOX__VALUE__KIND_FLOAT_VALUE);
	ck_assert(isinf(v->float_value) && v->float_value < 0);
	pbv_free(v);
}
END_TEST

START_TEST(test_containers)
{
	Plugbox__Value *v;

	SAME("[]");
	SAME("{}");
	SAME("[1,[2,[3,{\"a\":[]}]],{}]");
	/* Keys keep the order they were written in. */
	SAME("{\"b\":1,\"a\":{\"z\":null,\"y\":[true]}}");
	SAME("{\"$map\":[[1,\"a\"],[2,\"b\"]]}");
	SAME("{\"$map\":[[null,1],[[1,2],{\"x\":1.5}],[{\"$bytes\":\"AA==\"},false]]}");
	/* A single-string-key map whose key looks reserved stays a $map. */
	SAME("{\"$map\":[[\"$bytes\",\"x\"]]}");
	SAME("{\"$bytes\":1,\"other\":2}");
	/* All keys strings: printed as a plain object. */
	roundtrip("{\"$map\":[[\"a\",1],[\"b\",2]]}", "{\"a\":1,\"b\":2}");
	roundtrip("{\"$map\":[]}", "{}");
	v = parse_ok("{\"$map\":[[1,\"a\"]]}");
	ck_assert_int_eq(v->kind_case, PLUGBOX__VALUE__KIND_MAP_VALUE);
	ck_assert_int_eq(v->map_value->entries[0]->key->int_value, 1);
	ck_assert_str_eq((const char *)v->map_value->entries[0]->value->string_value.data, "a");
	pbv_free(v);
}
END_TEST

/* Maps built in C can hold what JSON objects cannot. */
START_TEST(test_map_printing)
{
	Plugbox__Value *m = must(pbv_new_map());
	char *out;

	ck_assert_int_eq(pbv_map_put(m, must(pbv_new_string("a", 1)),
	                             must(pbv_new_int(1))),
	                 0);
	ck_assert_int_eq(pbv_map_put(m, must(pbv_new_string("a", 1)),
	                             must(pbv_new_int(2))),
	                 0);
	out = print_ok(m);
	ck_assert_str_eq(out, "{\"$map\":[[\"a\",1],[\"a\",2]]}");
	free(out);
	pbv_free(m);
	ck_assert_int_eq(pbv_map_put(NULL, NULL, NULL), -EINVAL);
}
END_TEST

/* --- JSON errors ----------------------------------------------------------- */

START_TEST(test_bad_json)
{
	static const char *bad[] = { "", "[1,", "{\"a\" 1}", "tru", "[1] [2]", "'x'", "01",
		                     "{\"a\":1,\"a\":2}", "\"\\ud800\"", "\"\xff\"", "NaN" };
	char why[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(parse_err(bad[i], why, sizeof(why)), -EINVAL);
		ck_assert_msg(strncmp(why, "line 1 column", 13) == 0, "%s: %s", bad[i], why);
	}
}
END_TEST

START_TEST(test_int_range)
{
	char why[256];

	ck_assert_int_eq(parse_err("9223372036854775808", why, sizeof(why)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(why, "line 1 column"));
	ck_assert_int_eq(parse_err("[-9223372036854775809]", why, sizeof(why)), -EINVAL);
	ck_assert_int_eq(parse_err("1e400", why, sizeof(why)), -EINVAL);
}
END_TEST

START_TEST(test_reserved_errors)
{
	static const char *bad[] = {
		"{\"$bytes\":\"Zg=\"}",
		"{\"$bytes\":\"Zh==\"}",
		"{\"$bytes\":1}",
		"{\"$bytes\":\"Zm9v YmFy\"}",
		"{\"$float\":\"NaN\"}",
		"{\"$float\":1.5}",
		"{\"$map\":{}}",
		"{\"$map\":[[1]]}",
		"{\"$map\":[[1,2,3]]}",
		"{\"$map\":[1]}",
	};
	char why[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_int_eq(parse_err(bad[i], why, sizeof(why)), -EINVAL);
}
END_TEST

static char *nested_arrays(size_t depth)
{
	char *s = malloc(2 * depth + 1);
	size_t i;

	ck_assert_ptr_nonnull(s);
	for (i = 0; i < depth; i++) {
		s[i] = '[';
		s[depth + i] = ']';
	}
	s[2 * depth] = '\0';
	return s;
}

START_TEST(test_json_depth)
{
	char *ok = nested_arrays(PB_VALUE_MAX_DEPTH), *deep = nested_arrays(PB_VALUE_MAX_DEPTH + 1);
	char *huge = nested_arrays(100000);
	char why[256];
	Plugbox__Value *v = parse_ok(ok);
	char *out = print_ok(v);

	ck_assert_uint_eq(pbv_depth(v), PB_VALUE_MAX_DEPTH);
	ck_assert_str_eq(out, ok);
	free(out);
	pbv_free(v);
	ck_assert_int_eq(parse_err(deep, why, sizeof(why)), -ELOOP);
	ck_assert_str_eq(why, "nesting deeper than 64");
	/* Past jansson's own limit: still a depth error. */
	ck_assert_int_eq(parse_err(huge, why, sizeof(why)), -ELOOP);
	/* Depth through $map keys and values counts as well. */
	{
		char buf[2048] = "";
		size_t i;

		for (i = 1; i < PB_VALUE_MAX_DEPTH; i++)
			strcat(buf, "{\"$map\":[[");
		strcat(buf, "1");
		for (i = 1; i < PB_VALUE_MAX_DEPTH; i++)
			strcat(buf, ",0]]}");
		v = parse_ok(buf);
		ck_assert_uint_eq(pbv_depth(v), PB_VALUE_MAX_DEPTH);
		pbv_free(v);
		memmove(buf + 1, buf, strlen(buf) + 1);
		buf[0] = '[';
		strcat(buf, "]");
		ck_assert_int_eq(parse_err(buf, why, sizeof(why)), -ELOOP);
	}
	free(ok);
	free(deep);
	free(huge);
}
END_TEST

/* --- printing errors ------------------------------------------------------- */

static Plugbox__Value *deep_list(size_t depth)
{
	Plugbox__Value *v = must(pbv_new_null());
	size_t i;

	for (i = 1; i < depth; i++) {
		Plugbox__Value *outer = must(pbv_new_list());

		must_ok(pbv_list_append(outer, v));
		v = outer;
	}
	return v;
}

START_TEST(test_print_depth)
{
	Plugbox__Value *v = deep_list(200);
	char *out = (char *)1;

	ck_assert_uint_eq(pbv_depth(v), 200);
	ck_assert_int_eq(pbv_to_json_string(v, &out), -ELOOP);
	ck_assert_ptr_null(out);
	pbv_free(v);
	v = deep_list(PB_VALUE_MAX_DEPTH);
	out = print_ok(v);
	free(out);
	pbv_free(v);
	v = deep_list(PB_VALUE_MAX_DEPTH + 1);
	ck_assert_int_eq(pbv_to_json_string(v, &out), -ELOOP);
	pbv_free(v);
}
END_TEST

START_TEST(test_print_invalid_utf8)
{
	static const char *bad[] = { "\xff", "\xc0\x80", "\xed\xa0\x80", "ok\xe2\x82" };
	Plugbox__Value *v, *list, *map;
	char *out = NULL;
	FILE *f;
	char *buf = NULL;
	size_t size = 0, i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = must(pbv_new_string(bad[i], strlen(bad[i])));
		ck_assert_int_eq(pbv_to_json_string(v, &out), -EILSEQ);
		pbv_free(v);
	}
	/* Nested, and as a map key. */
	list = must(pbv_new_list());
	ck_assert_int_eq(pbv_list_append(list, must(pbv_new_string("\xff", 1))), 0);
	ck_assert_int_eq(pbv_to_json_string(list, &out), -EILSEQ);
	pbv_free(list);
	map = must(pbv_new_map());
	ck_assert_int_eq(pbv_map_put(map, must(pbv_new_string("\xff", 1)),
	                             must(pbv_new_null())),
	                 0);
	ck_assert_int_eq(pbv_to_json_string(map, &out), -EILSEQ);
	/* Nothing half-printed on a stream either. */
	f = open_memstream(&buf, &size);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(pbv_to_json(map, f), -EILSEQ);
	fclose(f);
	ck_assert_uint_eq(size, 0);
	free(buf);
	pbv_free(map);
}
END_TEST

/* U+0000 is a character like any other: in JSON strings and keys, through
 * the codec and back, and never taken for a reserved key. */
START_TEST(test_nul_in_strings)
{
	Plugbox__Value *v;
	size_t len;
	const char *s;
	char why[256];

	roundtrip("\"a\\u0000b\"", "\"a\\u0000b\"");
	roundtrip("[\"\\u0000\",\"\"]", "[\"\\u0000\",\"\"]");
	/* JSON object keys cannot hold U+0000 (jansson refuses them), so such
	 * a map is written with "$map". */
	ck_assert_int_eq(parse_err("{\"a\\u0000\":1}", why, sizeof(why)), -EINVAL);
	SAME("{\"$map\":[[\"a\\u0000\",1],[\"a\",2]]}");
	v = parse_ok("\"a\\u0000b\"");
	s = pbv_string(v, &len);
	ck_assert_uint_eq(len, 3);
	ck_assert_int_eq(memcmp(s, "a\0b", 4), 0); /* and a NUL after it */
	pbv_free(v);
	/* "$bytes" followed by U+0000 is an ordinary key, not the notation. */
	v = parse_ok("{\"$map\":[[\"$bytes\\u0000\",\"Zg==\"]]}");
	ck_assert_int_eq(v->kind_case, PLUGBOX__VALUE__KIND_MAP_VALUE);
	ck_assert_uint_eq(v->map_value->entries[0]->key->string_value.len, 7);
	pbv_free(v);
	SAME("{\"$map\":[[\"$bytes\\u0000\",\"Zg==\"]]}");
	/* Built directly: kept whole; UTF-8 is still checked when printed. */
	v = must(pbv_new_string("a\0\xff", 3));
	ck_assert_uint_eq(v->string_value.len, 3);
	char *out = NULL;
	ck_assert_int_eq(pbv_to_json_string(v, &out), -EILSEQ);
	free(out);
	pbv_free(v);
}
END_TEST

START_TEST(test_to_json_stream)
{
	Plugbox__Value *v = parse_ok("{\"k\":[1,2.5,\"x\"]}");
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(pbv_to_json(v, f), 0);
	fclose(f);
	ck_assert_str_eq(buf, "{\"k\":[1,2.5,\"x\"]}");
	free(buf);
	pbv_free(v);
}
END_TEST

START_TEST(test_large_string)
{
	const size_t n = 8u << 20;
	static const char chunk[] = "h\xc3\xa9llo \xe2\x98\x83 w\\n\\\"x\\\"";
	char *json = malloc(n + 3), *out;
	Plugbox__Value *v;
	size_t i;

	ck_assert_ptr_nonnull(json);
	json[0] = '"';
	for (i = 0; i + sizeof(chunk) - 1 <= n; i += sizeof(chunk) - 1)
		memcpy(json + 1 + i, chunk, sizeof(chunk) - 1);
	memset(json + 1 + i, 'z', n - i);
	json[n + 1] = '"';
	json[n + 2] = '\0';
	v = parse_ok(json);
	ck_assert_int_eq(v->kind_case, PLUGBOX__VALUE__KIND_STRING_VALUE);
	out = print_ok(v);
	ck_assert_uint_eq(strlen(out), n + 2);
	ck_assert(strcmp(out, json) == 0);
	free(out);
	pbv_free(v);
	free(json);
}
END_TEST

/* --- building and freeing ------------------------------------------------- */

START_TEST(test_build_and_free)
{
	Plugbox__Value *list = must(pbv_new_list()), *map = must(pbv_new_map()), *item;
	char *out;
	int i;

	for (i = 0; i < 1000; i++)
		ck_assert_int_eq(pbv_list_append(list, must(pbv_new_int(i))), 0);
	ck_assert_uint_eq(list->list_value->n_items, 1000);
	ck_assert_int_eq(list->list_value->items[999]->int_value, 999);
	ck_assert_int_eq(pbv_map_put(map, must(pbv_new_bytes(NULL, 0)), list), 0);
	item = must(pbv_new_null());
	ck_assert_int_eq(pbv_list_append(map, item), -EINVAL);
	pbv_free(item);
	ck_assert_uint_eq(pbv_depth(map), 3);
	out = print_ok(map);
	ck_assert_str_eq(out + strlen(out) - 12, ",998,999]]]}");
	ck_assert(strncmp(out, "{\"$map\":[[{\"$bytes\":\"\"},[0,1,2,", 31) == 0);
	free(out);
	pbv_free(map);
	pbv_free(NULL);
	ck_assert_uint_eq(pbv_depth(NULL), 0);
}
END_TEST

/* Freeing and measuring must cope with any depth (a recursive walk would
 * overflow the stack here): lists, and maps through keys and values. */
START_TEST(test_free_very_deep)
{
	const size_t depth = 250000;
	Plugbox__Value *v = deep_list(depth), *m;
	size_t i;

	ck_assert_uint_eq(pbv_depth(v), depth);
	pbv_free(v);

	m = must(pbv_new_string("leaf", 4));
	for (i = 1; i < depth; i++) {
		Plugbox__Value *outer = must(pbv_new_map());

		if (i % 2)
			must_ok(pbv_map_put(outer, must(pbv_new_int((int64_t)i)), m));
		else
			must_ok(pbv_map_put(outer, m, must(pbv_new_list())));
		m = outer;
	}
	ck_assert_uint_eq(pbv_depth(m), depth);
	pbv_free(m);
}
END_TEST

START_TEST(test_depth)
{
	Plugbox__Value *v = parse_ok("[1,[2,[3]],{\"a\":{\"b\":[]}}]");

	ck_assert_uint_eq(pbv_depth(v), 4);
	pbv_free(v);
	v = parse_ok("7");
	ck_assert_uint_eq(pbv_depth(v), 1);
	pbv_free(v);
}
END_TEST

/* --- UTF-8 and base64 ------------------------------------------------------ */

START_TEST(test_utf8)
{
	static const struct {
		const char *s;
		size_t len;
		bool ok;
	} cases[] = {
		{ "", 0, true },
		{ "plain ascii", 11, true },
		{ "caf\xc3\xa9 \xe2\x98\x83 \xf0\x9f\x98\x80", 14, true },
		{ "\x00", 1, true },
		{ "\xc2\x80", 2, true },          /* U+0080 */
		{ "\xdf\xbf", 2, true },          /* U+07FF */
		{ "\xe0\xa0\x80", 3, true },      /* U+0800 */
		{ "\xed\x9f\xbf", 3, true },      /* U+D7FF */
		{ "\xee\x80\x80", 3, true },      /* U+E000 */
		{ "\xef\xbf\xbf", 3, true },      /* U+FFFF */
		{ "\xf0\x90\x80\x80", 4, true },  /* U+10000 */
		{ "\xf4\x8f\xbf\xbf", 4, true },  /* U+10FFFF */
		{ "\xc0\x80", 2, false },         /* overlong NUL */
		{ "\xc1\xbf", 2, false },         /* overlong */
		{ "\xe0\x80\x80", 3, false },     /* overlong */
		{ "\xe0\x9f\xbf", 3, false },     /* overlong */
		{ "\xf0\x80\x80\x80", 4, false }, /* overlong */
		{ "\xf0\x8f\xbf\xbf", 4, false }, /* overlong */
		{ "\xed\xa0\x80", 3, false },     /* U+D800 */
		{ "\xed\xbf\xbf", 3, false },     /* U+DFFF */
		{ "\xf4\x90\x80\x80", 4, false }, /* U+110000 */
		{ "\xf5\x80\x80\x80", 4, false },
		{ "\xff", 1, false },
		{ "\x80", 1, false },         /* lone continuation */
		{ "\xe2\x82", 2, false },     /* truncated */
		{ "\xf0\x9f\x98", 3, false }, /* truncated */
		{ "\xc3", 1, false },         /* truncated */
		{ "\xc3\x28", 2, false },     /* bad continuation */
		{ "\xe2\x28\xa1", 3, false },
		{ "a\xe2\x82\xac\xe2\x82", 6, false }, /* good then truncated */
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_msg(pb_utf8_valid(cases[i].s, cases[i].len) == cases[i].ok, "case %zu", i);
	/* The length bounds the check, not a NUL. */
	ck_assert(!pb_utf8_valid("\xe2\x82\xac", 2));
	ck_assert(pb_utf8_valid(NULL, 0));
}
END_TEST

START_TEST(test_base64_vectors)
{
	/* RFC 4648 section 10. */
	static const char *plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	static const char *coded[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
	uint8_t all[256], *out;
	size_t i, out_len;
	char *text;

	for (i = 0; i < 7; i++) {
		text = pb_base64_encode(plain[i], strlen(plain[i]));
		ck_assert_ptr_nonnull(text);
		ck_assert_str_eq(text, coded[i]);
		free(text);
		ck_assert_int_eq(pb_base64_decode(coded[i], strlen(coded[i]), &out, &out_len), 0);
		ck_assert_ptr_nonnull(out);
		ck_assert_uint_eq(out_len, strlen(plain[i]));
		ck_assert(memcmp(out, plain[i], out_len) == 0);
		free(out);
	}
	for (i = 0; i < 256; i++)
		all[i] = (uint8_t)i;
	for (i = 0; i <= 256; i++) {
		text = pb_base64_encode(all, i);
		ck_assert_ptr_nonnull(text);
		ck_assert_int_eq(pb_base64_decode(text, strlen(text), &out, &out_len), 0);
		ck_assert_uint_eq(out_len, i);
		ck_assert(i == 0 || memcmp(out, all, i) == 0);
		free(out);
		free(text);
	}
}
END_TEST

START_TEST(test_base64_rejects)
{
	static const char *bad[] = {
		"Zg=",
		"Zg",
		"Z",
		"Z===",
		"====",
		"=Zg=",
		"Zm=v",
		"Zg==Zg==",
		"Zm9v YmFy",
		"Zm9v\nYmFy",
		"Zm9vYmF",
		"Zm9-",
		"Zm9_",
		"Zh==",
		"Zm9=",
		"Zm\x80v",
		"Zg==\n",
	};
	uint8_t *out = (uint8_t *)1;
	size_t i, out_len;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(pb_base64_decode(bad[i], strlen(bad[i]), &out, &out_len) == -EINVAL,
		              "'%s' accepted", bad[i]);
	/* A NUL inside the given length is a bad character too. */
	ck_assert_int_eq(pb_base64_decode("Zm\0v", 4, &out, &out_len), -EINVAL);
}
END_TEST

static Suite *value_suite(void)
{
	Suite *s = suite_create("value");
	TCase *tj = tcase_create("json");
	TCase *tv = tcase_create("tree");
	TCase *tu = tcase_create("encodings");

	tcase_set_timeout(tj, 60);
	tcase_add_test(tj, test_scalars);
	tcase_add_test(tj, test_floats);
	tcase_add_test(tj, test_float_shortest_roundtrip);
	tcase_add_test(tj, test_strings);
	tcase_add_test(tj, test_bytes);
	tcase_add_test(tj, test_nonfinite);
	tcase_add_test(tj, test_containers);
	tcase_add_test(tj, test_map_printing);
	tcase_add_test(tj, test_bad_json);
	tcase_add_test(tj, test_int_range);
	tcase_add_test(tj, test_reserved_errors);
	tcase_add_test(tj, test_nul_in_strings);
	tcase_add_test(tj, test_json_depth);
	tcase_add_test(tj, test_print_depth);
	tcase_add_test(tj, test_print_invalid_utf8);
	tcase_add_test(tj, test_to_json_stream);
	tcase_add_test(tj, test_large_string);
	suite_add_tcase(s, tj);

	tcase_set_timeout(tv, 60);
	tcase_add_test(tv, test_build_and_free);
	tcase_add_test(tv, test_free_very_deep);
	tcase_add_test(tv, test_depth);
	suite_add_tcase(s, tv);

	tcase_add_test(tu, test_utf8);
	tcase_add_test(tu, test_base64_vectors);
	tcase_add_test(tu, test_base64_rejects);
	suite_add_tcase(s, tu);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(value_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	/* The number of failed tests, kept below 77, which the Automake test
	 * driver would read as "skipped". */
	return failed < 77 ? failed : 76;
}
