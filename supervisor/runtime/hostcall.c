/* hostcall.c - host functions: what a plugin may call back into the host.
 *
 * The host registers functions by name; the operator grants them per plugin
 * in its policy (`@host-call NAME`). A HostCall from a worker (already
 * judged legal by channel.c) is answered here at once when it is not
 * granted (PermissionError) or not registered (LookupError), each with a
 * note in the log; otherwise the function is queued to run from the loop's
 * ready list, outside any event handling, and may answer then or later.
 *
 * A host call belongs to the call that made it. If that call ends first (its
 * worker died or timed out) the host call is orphaned: the function still
 * owns the handle, and its answer is dropped. An answer that comes while a
 * call nested in the host call is still running waits until that call has
 * returned, because the worker reads it only then.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/channel.h"
#include "runtime/output.h"
#include "runtime/hostcall.h"
#include "runtime/loop.h"
#include "runtime/outbox.h"
#include "runtime/process.h"
#include "runtime/runtime.h"
#include "runtime/supervisor.h"
#include "runtime/stats.h"
#include "proto/value.h"

static const struct host_function *find_function(const pb_supervisor *s, const char *name)
{
	for (size_t i = 0; i < s->nfunctions; i++)
		if (!strcmp(s->functions[i].name, name))
			return &s->functions[i];
	return NULL;
}

PB_API int pb_supervisor_register(pb_supervisor *s, const char *name, pb_host_fn fn, void *userdata)
{
	struct host_function *f;

	if (!name || !fn || !pb_host_name_valid(name)) {
		pb_set_message(s, "host function name '%s' is not [A-Za-z_][A-Za-z0-9_]* of at most %d bytes",
		               name ? name : "(null)", PB_HOST_NAME_MAX);
		return -EINVAL;
	}
	f = (struct host_function *)find_function(s, name);
	if (f) {
		f->fn = fn;
		f->userdata = userdata;
		return 0;
	}
	f = realloc(s->functions, (s->nfunctions + 1) * sizeof(*f));
	if (!f)
		return -ENOMEM;
	s->functions = f;
	f = &s->functions[s->nfunctions];
	if (!(f->name = strdup(name)))
		return -ENOMEM;
	f->fn = fn;
	f->userdata = userdata;
	s->nfunctions++;
	return 0;
}

void pb_host_functions_free(pb_supervisor *s)
{
	for (size_t i = 0; i < s->nfunctions; i++)
		free(s->functions[i].name);
	free(s->functions);
	s->functions = NULL;
	s->nfunctions = 0;
}

/* A HostResult for wire id `id` as a whole frame: the value, or an error. */
static int pack_answer(uint64_t id, const Plugbox__Value *value, const char *type, const char *message,
                       uint8_t **frame, size_t *len)
{
	Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT;
	Plugbox__HostResult hr = PLUGBOX__HOST_RESULT__INIT;
	Plugbox__Error error = PLUGBOX__ERROR__INIT;
	Plugbox__Value null_value = PLUGBOX__VALUE__INIT;

	env.id = id;
	env.body_case = PLUGBOX__ENVELOPE__BODY_HOST_RESULT;
	env.host_result = &hr;
	if (type) {
		error.kind = PLUGBOX__ERROR_KIND__ERROR_KIND_EXCEPTION;
		error.type = (char *)type;
		error.message = (char *)message;
		error.traceback = (char *)"";
		hr.outcome_case = PLUGBOX__HOST_RESULT__OUTCOME_ERROR;
		hr.error = &error;
	} else {
		if (!value) {
			null_value.kind_case = PLUGBOX__VALUE__KIND_NULL_VALUE;
			null_value.null_value = true;
			value = &null_value;
		}
		hr.outcome_case = PLUGBOX__HOST_RESULT__OUTCOME_VALUE;
		hr.value = (Plugbox__Value *)value;
	}
	return pb_envelope_pack(&env, PB_FRAME_MAX_DEFAULT, frame, len);
}

static void answer_now(pb_supervisor *s, struct process *w, uint64_t id, const char *type, const char *message)
{
	uint8_t *frame;
	size_t len;

	if (pack_answer(id, NULL, type, message, &frame, &len) < 0 || pb_outbox_send(s, w, frame, len) < 0)
		pb_channel_end(w, PB_ERROR_UNAVAILABLE, "out of memory answering plugin '%s'", w->name);
}

void pb_host_call_received(pb_supervisor *s, struct process *w, Plugbox__Envelope *env)
{
	struct call *c = w->stack[w->depth - 1];
	const char *name = env->host_call->name;
	const struct pb_grant *grant = pb_policy_host_grant(w->policy, name);
	const struct host_function *f = find_function(s, name);
	char msg[512];

	if (!grant) {
		snprintf(msg, sizeof(msg), "plugin '%s' may not call host function '%s': its policy %s does not "
		                           "grant it (@host-call %s)",
		         w->name, name, w->policy->path, name);
		pb_output_note(s, w, "denied host call %s(): not granted by policy %s", name, w->policy->path);
		pb_stats_host_denied(s, w, name, msg);
		answer_now(s, w, env->id, "PermissionError", msg);
		pb_envelope_free(env);
		return;
	}
	if (!f) {
		snprintf(msg, sizeof(msg), "host function '%s' is granted to plugin '%s' but this host "
		                           "registers no such function",
		         name, w->name);
		pb_output_note(s, w, "host call %s(): no such host function is registered", name);
		answer_now(s, w, env->id, "LookupError", msg);
		pb_envelope_free(env);
		return;
	}
	struct pb_host_call *hc = calloc(1, sizeof(*hc));
	if (!hc || !(hc->plugin = strdup(w->name))) {
		free(hc);
		answer_now(s, w, env->id, "MemoryError", "the supervisor is out of memory");
		pb_envelope_free(env);
		return;
	}
	hc->link.is_host = true;
	hc->sup = s;
	hc->call = c;
	hc->wire_id = env->id;
	hc->env = env;
	hc->fn = *f;
	c->host = hc;
	w->state = P_HOST_WAIT;
	pb_loop_ready(s, &hc->link);
}

static void host_call_free(struct pb_host_call *hc)
{
	if (hc->env)
		pb_envelope_free(hc->env);
	free(hc->answer);
	free(hc->plugin);
	free(hc);
}

/* Free it once nobody can use it any more: answered or orphaned, and not
 * inside its own function. */
static void maybe_free(struct pb_host_call *hc)
{
	if (!hc->invoking && !hc->answering && hc->answered && !hc->call)
		host_call_free(hc);
}

void pb_host_call_orphan(struct pb_host_call *hc)
{
	hc->call = NULL;
	maybe_free(hc);
}

void pb_host_call_adopt(struct pb_host_call *hc, struct call *c)
{
	hc->call = c;
}

void pb_host_call_invoke(pb_supervisor *s, struct pb_host_call *hc)
{
	(void)s;
	if (!hc->call) {
		/* its call ended before the function could run */
		hc->answered = true;
		maybe_free(hc);
		return;
	}
	hc->invoking = true;
	hc->fn.fn(hc->fn.userdata, hc);
	hc->invoking = false;
	maybe_free(hc);
}

bool pb_host_call_nesting(const struct process *w)
{
	const struct call *top = w->depth > 0 ? w->stack[w->depth - 1] : NULL;
	return top && top->host && top->host->invoking && !top->host->answered &&
	       (w->state == P_HOST_WAIT || w->state == P_RUNNING);
}

void pb_host_call_flush(pb_supervisor *s, struct process *w)
{
	struct call *top = w->stack[w->depth - 1];
	struct pb_host_call *hc = top->host;

	if (!hc || !hc->answer)
		return;
	uint8_t *frame = hc->answer;
	size_t len = hc->answer_len;
	hc->answer = NULL;
	top->host = NULL;
	hc->call = NULL;
	maybe_free(hc);
	w->state = P_RUNNING;
	if (pb_outbox_send(s, w, frame, len) < 0)
		pb_channel_end(w, PB_ERROR_UNAVAILABLE, "out of memory answering plugin '%s'", w->name);
}

/* Send the answer to the worker, or keep it until the call is innermost. */
static void deliver(struct pb_host_call *hc, uint8_t *frame, size_t len)
{
	struct call *c = hc->call;
	struct process *w = c ? pb_runtime_worker_of(c->plugin, c) : NULL;

	hc->answered = true;
	if (!w || !c->running) {
		free(frame);
		return;
	}
	hc->answer = frame;
	hc->answer_len = len;
	if (w->depth > 0 && w->stack[w->depth - 1] == c) {
		hc->answering = true; /* the caller frees it */
		pb_host_call_flush(hc->sup, w);
		hc->answering = false;
	}
}

PB_API void pb_host_call_return(pb_host_call *hc, pb_value *result)
{
	uint8_t *frame = NULL;
	size_t len = 0;
	int r;

	if (!hc || hc->answered) {
		pb_value_destroy(result);
		return;
	}
	if (result && pbv_depth((const Plugbox__Value *)result) > PB_VALUE_MAX_DEPTH - 1)
		r = pack_answer(hc->wire_id, NULL, "ValueError", "the host function's result is nested too deeply",
		                &frame, &len);
	else if ((r = pack_answer(hc->wire_id, (const Plugbox__Value *)result, NULL, NULL, &frame, &len)) == -EMSGSIZE)
		r = pack_answer(hc->wire_id, NULL, "ValueError", "the host function's result is larger than a frame",
		                &frame, &len);
	pb_value_destroy(result);
	if (r < 0)
		r = pack_answer(hc->wire_id, NULL, "MemoryError", "the supervisor is out of memory", &frame, &len);
	if (r < 0) {
		/* Not even that fits: the worker cannot be told, so it ends. */
		hc->answered = true;
		struct process *w = hc->call ? pb_runtime_worker_of(hc->call->plugin, hc->call) : NULL;
		if (w)
			pb_channel_end(w, PB_ERROR_UNAVAILABLE, "out of memory answering a host call");
		maybe_free(hc);
		return;
	}
	deliver(hc, frame, len);
	maybe_free(hc);
}

PB_API void pb_host_call_fail(pb_host_call *hc, const char *type, const char *message)
{
	uint8_t *frame = NULL;
	size_t len = 0;

	if (!hc || hc->answered)
		return;
	if (!type || !*type || !pb_utf8_valid(type, strlen(type)))
		type = "HostError";
	if (!message || !pb_utf8_valid(message, strlen(message)))
		message = "";
	if (pack_answer(hc->wire_id, NULL, type, message, &frame, &len) < 0) {
		pb_host_call_return(hc, NULL);
		return;
	}
	deliver(hc, frame, len);
	maybe_free(hc);
}

PB_API const char *pb_host_call_plugin(const pb_host_call *hc)
{
	return hc->plugin;
}
PB_API const char *pb_host_call_name(const pb_host_call *hc)
{
	return hc->env->host_call->name;
}
PB_API size_t pb_host_call_nargs(const pb_host_call *hc)
{
	return hc->env->host_call->n_args;
}
PB_API size_t pb_host_call_nkwargs(const pb_host_call *hc)
{
	return hc->env->host_call->n_kwargs;
}

PB_API const pb_value *pb_host_call_arg(const pb_host_call *hc, size_t i)
{
	return i < hc->env->host_call->n_args ? (const pb_value *)hc->env->host_call->args[i] : NULL;
}

PB_API const pb_value *pb_host_call_kwarg(const pb_host_call *hc, size_t i, const char **name)
{
	if (i >= hc->env->host_call->n_kwargs) {
		if (name)
			*name = NULL;
		return NULL;
	}
	if (name)
		*name = hc->env->host_call->kwargs[i]->name;
	return (const pb_value *)hc->env->host_call->kwargs[i]->value;
}

PB_API uint64_t pb_host_call_origin(const pb_host_call *hc)
{
	if (!hc || !hc->call)
		return 0;
	return hc->call->origin ? hc->call->origin : hc->call->id;
}

PB_API int pb_host_call_nest(pb_host_call *hc, const pb_call_spec *spec, pb_call_done_fn done, void *userdata,
                             uint64_t *call_id)
{
	/* the replica whose stack holds the call that made this host call */
	struct process *w = hc && hc->call && hc->call->plugin ? pb_runtime_worker_of(hc->call->plugin, hc->call) : NULL;
	pb_supervisor *s = hc ? hc->sup : NULL;
	bool was;
	int r;

	if (!hc)
		return -EINVAL;
	if (hc->answered || !w || !hc->call->running) {
		pb_set_message(s, "host call %s() was answered, or the call that made it ended", pb_host_call_name(hc));
		return -ESRCH;
	}
	if (!spec || !spec->plugin || strcmp(spec->plugin, hc->plugin) != 0) {
		pb_set_message(s, "a call nested in host call %s() must go to plugin '%s'", pb_host_call_name(hc),
		               hc->plugin);
		return -EINVAL;
	}
	if (w->depth == 0 || w->stack[w->depth - 1] != hc->call || hc->call->host != hc) {
		pb_set_message(s, "a call nested in host call %s() of plugin '%s' runs now: one at a time",
		               pb_host_call_name(hc), hc->plugin);
		return -EBUSY;
	}
	/* pb_runtime_call_start nests a call in the innermost host call while
	 * its function runs (pb_host_call_nesting): this one is, for the
	 * length of the start, though its function returned long ago. */
	was = hc->invoking;
	hc->invoking = true;
	r = pb_runtime_call_start(s, spec, 0, done, userdata, call_id);
	hc->invoking = was;
	return r;
}
