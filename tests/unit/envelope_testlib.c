/* envelope_testlib.c - what check_envelope and check_envelope_fast both
 * build: a repeatable random stream and one Call that has every kind of
 * value in it. */
#include "config.h"

#include <check.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "envelope_testlib.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

Plugbox__Value *must(Plugbox__Value *v)
{
	ck_assert_ptr_nonnull(v);
	return v;
}

Plugbox__Envelope *build_call(void)
{
	Plugbox__Envelope *env = calloc(1, sizeof(*env));
	Plugbox__Call *call = calloc(1, sizeof(*call));
	Plugbox__KeywordArgument *kw = calloc(1, sizeof(*kw));
	Plugbox__Value *list = must(pbv_new_list()), *map = must(pbv_new_map());

	ck_assert(env && call && kw);
	plugbox__envelope__init(env);
	plugbox__call__init(call);
	plugbox__keyword_argument__init(kw);
	env->id = 42;
	env->body_case = PLUGBOX__ENVELOPE__BODY_CALL;
	env->call = call;
	call->function = strdup("mod.sub:fn");
	call->n_args = 4;
	call->args = calloc(4, sizeof(*call->args));
	ck_assert_ptr_nonnull(call->args);
	call->args[0] = must(pbv_new_int(-7));
	call->args[1] = must(pbv_new_string("caf\xc3\xa9", 5));
	ck_assert_int_eq(pbv_list_append(list, must(pbv_new_null())), 0);
	ck_assert_int_eq(pbv_list_append(list, must(pbv_new_float(1.5))), 0);
	call->args[2] = list;
	ck_assert_int_eq(pbv_map_put(map, must(pbv_new_int(1)),
	                             must(pbv_new_bool(true))),
	                 0);
	call->args[3] = map;
	call->n_kwargs = 1;
	call->kwargs = calloc(1, sizeof(*call->kwargs));
	ck_assert_ptr_nonnull(call->kwargs);
	kw->name = strdup("data");
	kw->value = must(pbv_new_bytes("\0\1\2", 3));
	call->kwargs[0] = kw;
	return env;
}

void free_call(Plugbox__Envelope *env)
{
	Plugbox__Call *call = env->call;
	size_t i;

	for (i = 0; i < call->n_args; i++)
		pbv_free(call->args[i]);
	free(call->args);
	pbv_free(call->kwargs[0]->value);
	free(call->kwargs[0]->name);
	free(call->kwargs[0]);
	free(call->kwargs);
	free(call->function);
	free(call);
	free(env);
}
