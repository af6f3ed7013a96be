/* serve_requests.c - what `plugbox serve` does with each frame a client
 * sends: the table of what a client may send from which protocol version,
 * then Hello, Call, List and Describe (hooks, cancels and host calls are
 * serve_route.c's), each request in a slot of its connection until its
 * answer is queued (serve_conn.c). Every frame here came from a client:
 * decoded leniently, bounded by the frame reader, fuzzed by fuzz_serve. */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/plugbox_cli.h"
#include "cli/serve.h"
#include "proto/protocol.h"

/* pb_value is the public name of the codec's Plugbox__Value (value_api.c):
 * decoded arguments go to pb_call_start and results onto the wire as they
 * are, without a copy. */
static pb_value *const *as_values(Plugbox__Value **v)
{
	return (pb_value *const *)v;
}

/* ---- answers ---------------------------------------------------------------- */

/* A failed request's answer. Version 2 clients get the particulars as
 * fields; version 1 clients only the fields they know (one may refuse any
 * other, as plugbox's own decoder did). */
void pb_serve_error_fields(const struct pb_serve_client *c, const pb_error *err, Plugbox__Error *er_out,
                           uint64_t args[6])
{
	Plugbox__Error *er = er_out;

	plugbox__error__init(er);
	er->kind = (Plugbox__ErrorKind)pb_error_get_kind(err);
	er->type = (char *)pb_error_get_type(err);
	er->message = (char *)pb_error_get_message(err);
	er->traceback = (char *)pb_error_get_traceback(err);
	if (c->version >= 2) {
		er->plugin = (char *)pb_error_get_plugin(err);
		er->syscall = (char *)pb_error_get_syscall(err);
		er->rule = (char *)pb_error_get_rule(err);
		er->policy_file = (char *)pb_error_get_policy_file(err, &er->policy_line);
		if (pb_error_get_syscall_args(err, args) == 6) {
			er->syscall_args = args;
			er->n_syscall_args = 6;
		}
	}
}

static void send_failure(struct pb_serve_client *c, uint64_t id, const pb_error *err)
{
	Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT;
	Plugbox__Error er;
	uint64_t args[6];
	char cut[PB_ERROR_CUT_BUF];

	pb_serve_error_fields(c, err, &er, args);
	env.id = id;
	env.body_case = PLUGBOX__ENVELOPE__BODY_ERROR;
	env.error = &er;
	/* The worker's Error fit its frame, with version 2's fields it need
	 * not (pb_serve_send would answer a bare protocol error): the start
	 * of the message is said, cut. */
	if (pb_envelope_packed_size(&env) > (size_t)PB_FRAME_MAX_DEFAULT)
		pb_error_cut(&er, cut);
	pb_serve_send(c, &env);
}

/* pb_describe's map, as the wire's PluginInfo (which borrows from it). */
struct info_view {
	Plugbox__PluginInfo info;
	char *strs[4][PB_ENTRY_POINTS_MAX];
	Plugbox__EntryPoint eps[PB_ENTRY_POINTS_MAX];
	Plugbox__EntryPoint *epp[PB_ENTRY_POINTS_MAX];
};

static char *map_str(const pb_value *map, const char *key)
{
	const char *s = pb_value_get_string(pb_value_map_get(map, key));
	return (char *)(s ? s : "");
}

static size_t str_list(const pb_value *map, const char *key, char **out)
{
	const pb_value *l = pb_value_map_get(map, key);
	size_t n = pb_value_list_length(l);

	if (n > PB_ENTRY_POINTS_MAX)
		n = PB_ENTRY_POINTS_MAX;
	for (size_t i = 0; i < n; i++) {
		const char *s = pb_value_get_string(pb_value_list_get(l, i));
		out[i] = (char *)(s ? s : "");
	}
	return n;
}

static void info_from_map(struct info_view *v, const char *plugin, const char *state, const pb_value *m)
{
	const pb_value *eps = pb_value_map_get(m, "entry_points");

	plugbox__plugin_info__init(&v->info);
	v->info.name = (char *)plugin;
	v->info.state = (char *)(state ? state : "stopped");
	v->info.policy_file = map_str(m, "policy_file");
	v->info.layout = map_str(m, "layout");
	v->info.version = map_str(m, "version");
	v->info.priority = (int32_t)pb_value_get_int(pb_value_map_get(m, "priority"));
	v->info.exports = v->strs[0];
	v->info.n_exports = str_list(m, "exports", v->strs[0]);
	v->info.sys_path = v->strs[1];
	v->info.n_sys_path = str_list(m, "sys_path", v->strs[1]);
	v->info.layers = v->strs[2];
	v->info.n_layers = str_list(m, "layers", v->strs[2]);
	v->info.n_entry_points = pb_value_list_length(eps);
	if (v->info.n_entry_points > PB_ENTRY_POINTS_MAX)
		v->info.n_entry_points = PB_ENTRY_POINTS_MAX;
	for (size_t i = 0; i < v->info.n_entry_points; i++) {
		const pb_value *ep = pb_value_list_get(eps, i);
		plugbox__entry_point__init(&v->eps[i]);
		v->eps[i].group = map_str(ep, "group");
		v->eps[i].name = map_str(ep, "name");
		v->eps[i].value = map_str(ep, "value");
		v->epp[i] = &v->eps[i];
	}
	v->info.entry_points = v->epp;
}

/* A Describe's worker is up (its warm-up call ended): describe it now,
 * which does not wait while the worker is ready or busy. */
static void answer_describe(struct pb_serve_client *c, const struct pb_serve_slot *slot)
{
	pb_supervisor *sup = c->srv->sup;
	const char *state = pb_supervisor_plugin_state(sup, slot->plugin);
	Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT;
	struct info_view *v;
	pb_value *info = NULL;
	pb_error *err = NULL;

	if (!state || (strcmp(state, "ready") != 0 && strcmp(state, "busy") != 0)) {
		pb_serve_send_error(c, slot->wire_id, PB_ERROR_UNAVAILABLE,
		                    "the worker of plugin '%s' is %s: it ended before it could be described", slot->plugin,
		                    state ? state : "gone");
		return;
	}
	if (pb_describe(sup, slot->plugin, &info, &err) < 0) {
		send_failure(c, slot->wire_id, err);
		pb_error_free(err);
		return;
	}
	v = malloc(sizeof(*v));
	if (!v) {
		pb_serve_send_error(c, slot->wire_id, PB_ERROR_UNAVAILABLE, "the daemon is out of memory");
	} else {
		info_from_map(v, slot->plugin, state, info);
		env.id = slot->wire_id;
		env.body_case = PLUGBOX__ENVELOPE__BODY_PLUGIN_INFO;
		env.plugin_info = &v->info;
		pb_serve_send(c, &env);
		free(v);
	}
	pb_value_destroy(info);
}

/* ---- requests ------------------------------------------------------------------ */

static void call_done(void *userdata, uint64_t call_id, pb_value *result, pb_error *err)
{
	struct pb_serve_slot *slot = userdata;
	struct pb_serve_client *c = slot->client;
	Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT;
	Plugbox__Result res = PLUGBOX__RESULT__INIT;

	(void)call_id;
	pb_serve_index_remove(slot);
	if (!c->closing && c->fd >= 0)
		pb_serve_output_flush_dropped(c, slot->wire_id);
	if (slot->metric)
		pb_serve_metric_done(slot->metric, result ? 0 : (int)pb_error_get_kind(err), pb_serve_now() - slot->started);
	slot->metric = NULL;
	/* After a protocol error only that error is said, then the close. */
	if (c->closing || c->fd < 0) {
		/* nothing more for this client */
	} else if (slot->describe && (result || pb_error_get_kind(err) == PB_ERROR_EXCEPTION)) {
		/* Imported, or its import raised: either way it said Hello. */
		answer_describe(c, slot);
	} else if (result) {
		res.value = (Plugbox__Value *)result;
		env.id = slot->wire_id;
		env.body_case = PLUGBOX__ENVELOPE__BODY_RESULT;
		env.result = &res;
		pb_serve_send(c, &env);
	} else {
		send_failure(c, slot->wire_id, err);
	}
	pb_value_destroy(result);
	pb_error_free(err);
	pb_serve_slot_release(slot);
}

static bool in_flight(const struct pb_serve_client *c, uint64_t id)
{
	for (size_t i = 0; i < PB_SERVE_MAX_INFLIGHT; i++)
		if (c->slots[i].used && !c->slots[i].answered && c->slots[i].wire_id == id)
			return true;
	return false;
}

static struct pb_serve_slot *free_slot(struct pb_serve_client *c, uint64_t id, bool *duplicate)
{
	struct pb_serve_slot *found = NULL;

	*duplicate = false;
	for (size_t i = 0; i < PB_SERVE_MAX_INFLIGHT; i++) {
		if (c->slots[i].used && !c->slots[i].answered && c->slots[i].wire_id == id) {
			*duplicate = true;
			return NULL;
		}
		if (!c->slots[i].used && !found)
			found = &c->slots[i];
	}
	return found;
}

struct pb_serve_slot *pb_serve_take_slot(struct pb_serve_client *c, uint64_t id, const char *what)
{
	struct pb_serve_slot *slot;
	bool duplicate;

	if (id == 0) {
		pb_serve_send_error(c, 0, PB_ERROR_BAD_REQUEST, "a %s needs a non-zero id", what);
		return NULL;
	}
	slot = free_slot(c, id, &duplicate);
	if (!slot)
		/* may_read keeps a 65th request out, so only a duplicate gets here. */
		pb_serve_send_error(c, id, PB_ERROR_BAD_REQUEST, "%s id %llu is already in flight on this connection", what,
		                    (unsigned long long)id);
	return slot;
}

static void start_call(struct pb_serve_client *c, uint64_t id, const Plugbox__Call *call)
{
	pb_call_spec spec = { 0 };
	const char **kwnames = NULL;
	Plugbox__Value **kwvalues = NULL;
	struct pb_serve_slot *slot;
	int r;

	if (id != 0 && (!*call->plugin || !*call->function)) {
		pb_serve_send_error(c, id, PB_ERROR_BAD_REQUEST, "call %llu names no %s", (unsigned long long)id,
		                    *call->plugin ? "function" : "plugin");
		return;
	}
	if (!(slot = pb_serve_take_slot(c, id, "call")))
		return;
	if (call->n_kwargs) {
		kwnames = calloc(call->n_kwargs, sizeof(*kwnames));
		kwvalues = calloc(call->n_kwargs, sizeof(*kwvalues));
		if (!kwnames || !kwvalues) {
			free(kwnames);
			free(kwvalues);
			pb_serve_send_error(c, id, PB_ERROR_UNAVAILABLE, "the daemon is out of memory");
			return;
		}
		for (size_t i = 0; i < call->n_kwargs; i++) {
			kwnames[i] = call->kwargs[i]->name;
			kwvalues[i] = call->kwargs[i]->value;
		}
	}
	spec.plugin = call->plugin;
	spec.function = call->function;
	spec.args = as_values(call->args);
	spec.nargs = call->n_args;
	spec.kwnames = kwnames;
	spec.kwvalues = as_values(kwvalues);
	spec.nkwargs = call->n_kwargs;
	spec.timeout = call->timeout;
	slot->client = c;
	slot->wire_id = id;
	slot->describe = false;
	slot->hook = NULL;
	slot->started = pb_serve_now();
	slot->metric = NULL;
	if (c->version >= 2 && call->parent) {
		r = pb_serve_nest(c, id, call->parent, &spec, slot, call_done);
		free(kwnames);
		free(kwvalues);
		if (r < 0)
			return; /* answered */
		goto started;
	}
	/* A client that takes its calls' output gets exactly theirs: no call
	 * shares the worker's pipe with one of its calls. */
	r = pb_call_start_ex(c->srv->sup, &spec, c->want_output ? PB_CALL_ALONE : 0, call_done, slot, &slot->lib_id);
	free(kwnames);
	free(kwvalues);
	if (r < 0) {
		pb_serve_send_error(c, id, r == -ENOMEM ? PB_ERROR_UNAVAILABLE : PB_ERROR_BAD_REQUEST, "call %llu: %s",
		                    (unsigned long long)id, r == -ENOMEM ? "the daemon is out of memory" : pb_supervisor_strerror(c->srv->sup));
		return;
	}
started:
	pb_serve_slot_used(slot);
	pb_serve_index_add(slot);
	/* After the start: the supervisor knows the plugin from then on (or
	 * there is none, and the call has already failed). */
	if ((slot->metric = pb_serve_metric_for(c->srv, call->plugin)))
		slot->metric->inflight++;
}

/* Describe: the worker's warm-up call (PB_WARM_FUNCTION) brings it up and
 * queues behind the calls already made to that plugin; call_done then
 * answers from the worker's Hello. */
static void start_describe(struct pb_serve_client *c, uint64_t id, const Plugbox__DescribeRequest *d)
{
	pb_call_spec spec = { .plugin = d->plugin, .function = PB_WARM_FUNCTION };
	struct pb_serve_slot *slot;

	if (id != 0 && !*d->plugin) {
		pb_serve_send_error(c, id, PB_ERROR_BAD_REQUEST, "describe %llu names no plugin", (unsigned long long)id);
		return;
	}
	if (!(slot = pb_serve_take_slot(c, id, "describe")))
		return;
	slot->client = c;
	slot->wire_id = id;
	slot->describe = true;
	slot->hook = NULL;
	slot->metric = NULL;
	if (!(slot->plugin = strdup(d->plugin)) ||
	    pb_call_start_ex(c->srv->sup, &spec, c->want_output ? PB_CALL_ALONE : 0, call_done, slot, &slot->lib_id) < 0) {
		free(slot->plugin);
		slot->plugin = NULL;
		pb_serve_send_error(c, id, PB_ERROR_UNAVAILABLE, "describe %llu: %s", (unsigned long long)id,
		                    "the daemon could not start the worker's description");
		return;
	}
	pb_serve_slot_used(slot);
	pb_serve_index_add(slot);
}

/* List: the plugins directory as it is now, with each plugin's state; no
 * worker starts. */
static void answer_list(struct pb_serve_client *c, uint64_t id)
{
	pb_supervisor *sup = c->srv->sup;
	Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT;
	Plugbox__PluginList list = PLUGBOX__PLUGIN_LIST__INIT;
	Plugbox__PluginInfo *infos = NULL, **ptrs = NULL;
	char **names;
	size_t n;

	if (id == 0) {
		pb_serve_send_error(c, 0, PB_ERROR_BAD_REQUEST, "a list needs a non-zero id");
		return;
	}
	if (pb_supervisor_plugins(sup, &names, &n) < 0) {
		pb_serve_send_error(c, id, PB_ERROR_UNAVAILABLE, "list %llu: %s", (unsigned long long)id,
		                    pb_supervisor_strerror(sup));
		return;
	}
	if (n && (!(infos = calloc(n, sizeof(*infos))) || !(ptrs = calloc(n, sizeof(*ptrs))))) {
		pb_serve_send_error(c, id, PB_ERROR_UNAVAILABLE, "the daemon is out of memory");
	} else {
		for (size_t i = 0; i < n; i++) {
			const char *state = pb_supervisor_plugin_state(sup, names[i]);
			plugbox__plugin_info__init(&infos[i]);
			infos[i].name = names[i];
			infos[i].state = (char *)(state ? state : "stopped");
			ptrs[i] = &infos[i];
		}
		list.plugins = ptrs;
		list.n_plugins = n;
		env.id = id;
		env.body_case = PLUGBOX__ENVELOPE__BODY_PLUGINS;
		env.plugins = &list;
		pb_serve_send(c, &env);
	}
	free(infos);
	free(ptrs);
	pb_strv_free(names, n);
}

/* A Hello from the client, before anything else: the version it wants. */
static void answer_hello(struct pb_serve_client *c, uint64_t id, const Plugbox__Hello *h)
{
	Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT;
	Plugbox__Hello hello = PLUGBOX__HELLO__INIT;

	if (c->greeted) {
		pb_serve_send_error(c, id, PB_ERROR_BAD_REQUEST, "a client's hello must be its first message");
		return;
	}
	if (h->protocol_version == 0) {
		pb_serve_send_error(c, id, PB_ERROR_BAD_REQUEST, "a hello must ask for a protocol version (1 to %d)",
		                    PB_SERVE_PROTOCOL_MAX);
		return;
	}
	c->version = h->protocol_version < PB_SERVE_PROTOCOL_MAX ? h->protocol_version : PB_SERVE_PROTOCOL_MAX;
	/* Output is a version 2 message. */
	if (h->protocol_version >= 2) {
		c->want_output = h->stream_output;
		if (h->stream_idle_output && !c->want_idle_output) {
			c->want_idle_output = true;
			c->srv->nidle++;
		}
	}
	hello.protocol_version = c->version;
	hello.max_protocol_version = PB_SERVE_PROTOCOL_MAX;
	env.id = id;
	env.body_case = PLUGBOX__ENVELOPE__BODY_HELLO;
	env.hello = &hello;
	pb_serve_send(c, &env);
}

static const char *body_name(Plugbox__Envelope__BodyCase body)
{
	const ProtobufCFieldDescriptor *f =
	        protobuf_c_message_descriptor_get_field(&plugbox__envelope__descriptor, (unsigned)body);
	return f ? f->name : "nothing";
}

/* What a client may send, and from which protocol version (OpenSSH's
 * monitor: a table per peer, not an if-chain). */
static const struct {
	Plugbox__Envelope__BodyCase body;
	unsigned since;
} requests[] = {
	{ PLUGBOX__ENVELOPE__BODY_HELLO, 1 },
	{ PLUGBOX__ENVELOPE__BODY_CALL, 1 },
	{ PLUGBOX__ENVELOPE__BODY_LIST, 2 },
	{ PLUGBOX__ENVELOPE__BODY_DESCRIBE, 2 },
	{ PLUGBOX__ENVELOPE__BODY_HOOK, 2 },
	{ PLUGBOX__ENVELOPE__BODY_CANCEL, 2 },
	{ PLUGBOX__ENVELOPE__BODY_HOST_FUNCTIONS, 2 },
	{ PLUGBOX__ENVELOPE__BODY_HOST_RESULT, 2 },
};

/* An envelope without a body this daemon knows: name the fields it had. */
static void unknown_body(struct pb_serve_client *c, uint64_t id, const Plugbox__Envelope *env)
{
	char fields[128] = "";
	size_t used = 0;

	for (unsigned i = 0; i < env->base.n_unknown_fields && used < sizeof(fields) - 24; i++)
		used += (size_t)snprintf(fields + used, sizeof(fields) - used, "%s%u", i ? ", " : "",
		                         env->base.unknown_fields[i].tag);
	if (used)
		pb_serve_send_error(c, id, PB_ERROR_BAD_REQUEST,
		                    "message %llu has no body this daemon knows (unknown Envelope field %s)",
		                    (unsigned long long)id, fields);
	else
		pb_serve_send_error(c, id, PB_ERROR_BAD_REQUEST, "message %llu has no body", (unsigned long long)id);
}

/* One frame: a bad message is answered under its id (0 when it has none, or
 * when that id is in flight and the answer would be taken for the other
 * request's) and the conversation goes on; the framing is intact. */
void pb_serve_handle_frame(struct pb_serve_client *c, const uint8_t *buf, uint32_t len)
{
	Plugbox__Envelope *env;
	char why[256];
	size_t i;

	if (pb_envelope_decode_opts(buf, len, PB_DECODE_LENIENT, &env, why, sizeof(why)) < 0) {
		uint64_t id = pb_envelope_peek_id(buf, len);
		if (id && in_flight(c, id))
			pb_serve_send_error(c, 0, PB_ERROR_BAD_REQUEST, "message %llu (an id in flight) is not a valid plugbox Envelope: %s",
			                    (unsigned long long)id, why);
		else
			pb_serve_send_error(c, id, PB_ERROR_BAD_REQUEST, "message %llu is not a valid plugbox Envelope: %s",
			                    (unsigned long long)id, why);
		c->greeted = true;
		return;
	}
	for (i = 0; i < sizeof(requests) / sizeof(requests[0]); i++)
		if (requests[i].body == env->body_case)
			break;
	if (env->body_case == PLUGBOX__ENVELOPE__BODY__NOT_SET) {
		unknown_body(c, env->id, env);
	} else if (i == sizeof(requests) / sizeof(requests[0])) {
		pb_serve_send_error(c, env->id, PB_ERROR_BAD_REQUEST, "a client does not send a %s (message %llu)",
		                    body_name(env->body_case), (unsigned long long)env->id);
	} else if (c->version < requests[i].since) {
		pb_serve_send_error(c, env->id, PB_ERROR_BAD_REQUEST,
		                    "a %s needs protocol version %u; this connection speaks %u (send a hello first)",
		                    body_name(env->body_case), requests[i].since, c->version);
	} else {
		switch (env->body_case) {
		case PLUGBOX__ENVELOPE__BODY_HELLO: answer_hello(c, env->id, env->hello); break;
		case PLUGBOX__ENVELOPE__BODY_CALL: start_call(c, env->id, env->call); break;
		case PLUGBOX__ENVELOPE__BODY_LIST: answer_list(c, env->id); break;
		case PLUGBOX__ENVELOPE__BODY_DESCRIBE: start_describe(c, env->id, env->describe); break;
		case PLUGBOX__ENVELOPE__BODY_HOOK: pb_serve_start_hook(c, env->id, &env); break;
		case PLUGBOX__ENVELOPE__BODY_CANCEL: pb_serve_cancel(c, env->id, env->cancel); break;
		case PLUGBOX__ENVELOPE__BODY_HOST_FUNCTIONS: pb_serve_offer(c, env->id, env->host_functions); break;
		case PLUGBOX__ENVELOPE__BODY_HOST_RESULT: pb_serve_host_result(c, env->id, env->host_result); break;
		default: break;
		}
	}
	c->greeted = true;
	pb_envelope_free(env);
}
