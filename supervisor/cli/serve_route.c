/* serve_route.c - what belongs to a client of `plugbox serve` besides the
 * answers to its requests (docs/protocol.md): the output and log records of
 * its requests, the host calls a plugin makes while running them, hooks,
 * and cancelling. Everything here is routed by the id the library knows a
 * request by (pb_call_start's, or pb_hook_start_id's for a hook's calls,
 * whose origin is the hook): the request that made a line or a host call
 * decides which connection gets it, and no other connection ever does.
 *
 * Bounds: a connection gets Output only while less than
 * PB_SERVE_OUTPUT_BOUND bytes wait for it (the rest is counted and said in
 * the next Output's `dropped`), at most PB_SERVE_MAX_HOST_CALLS of its host
 * calls wait at once, and it offers at most PB_SERVE_CLIENT_NAMES names
 * (PB_SERVE_DAEMON_NAMES in the daemon: each is registered with the
 * library once, for good). A connection that goes away cancels its
 * requests and fails its host calls: a plugin waits for nobody who left.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/serve.h"
#include "proto/protocol.h"
#include "toolkit/sanitize.h"

#define NAME_MAX_BYTES 64

/* ---- which request -------------------------------------------------------------- */

/* Every line of output and every host call looks its request up: a walk of
 * every slot of every connection cost 7 ms a line with 15,000 connections
 * open (idle ones too), and a plugin may print 1000 lines a second. Ids
 * are the library's sequence, so the buckets fill evenly. */
void pb_serve_index_add(struct pb_serve_slot *slot)
{
	struct pb_serve *srv = slot->client->srv;
	struct pb_serve_slot **head = &srv->by_lib_id[slot->lib_id % PB_SERVE_INDEX];

	/* A connection dropped while its request started is not found again:
	 * pb_serve_client_gone took its slots out already. */
	if (slot->indexed || !slot->used || !slot->lib_id || slot->client->fd < 0)
		return;
	slot->index_next = *head;
	*head = slot;
	slot->indexed = true;
}

void pb_serve_index_remove(struct pb_serve_slot *slot)
{
	struct pb_serve_slot **link;

	if (!slot->indexed)
		return;
	for (link = &slot->client->srv->by_lib_id[slot->lib_id % PB_SERVE_INDEX]; *link; link = &(*link)->index_next)
		if (*link == slot) {
			*link = slot->index_next;
			break;
		}
	slot->index_next = NULL;
	slot->indexed = false;
}

struct pb_serve_slot *pb_serve_slot_of(struct pb_serve *srv, uint64_t lib_id)
{
	if (lib_id == 0)
		return NULL;
	for (struct pb_serve_slot *s = srv->by_lib_id[lib_id % PB_SERVE_INDEX]; s; s = s->index_next)
		if (s->lib_id == lib_id && s->used && !s->answered && s->client->fd >= 0)
			return s;
	return NULL;
}

static struct pb_serve_slot *slot_by_wire(struct pb_serve_client *c, uint64_t wire_id)
{
	for (size_t i = 0; i < PB_SERVE_MAX_INFLIGHT; i++)
		if (c->slots[i].used && !c->slots[i].answered && c->slots[i].wire_id == wire_id)
			return &c->slots[i];
	return NULL;
}

/* ---- output ------------------------------------------------------------------------ */

/* One Output to c, unless too much waits for it already: then counted. */
static void send_output(struct pb_serve_client *c, Plugbox__Output *o)
{
	Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT;

	if (c->fd < 0 || c->closing)
		return;
	if (c->out_bytes >= PB_SERVE_OUTPUT_BOUND) {
		c->output_dropped++;
		return;
	}
	o->dropped = c->output_dropped;
	c->output_dropped = 0;
	env.body_case = PLUGBOX__ENVELOPE__BODY_OUTPUT;
	env.output = o;
	pb_serve_send(c, &env);
}

void pb_serve_output_flush_dropped(struct pb_serve_client *c, uint64_t wire_id)
{
	Plugbox__Output o = PLUGBOX__OUTPUT__INIT;
	Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT;

	if (!c->output_dropped || c->fd < 0)
		return;
	/* Said before the answer, whatever waits: only a count. */
	o.call_id = wire_id;
	o.dropped = c->output_dropped;
	c->output_dropped = 0;
	env.body_case = PLUGBOX__ENVELOPE__BODY_OUTPUT;
	env.output = &o;
	pb_serve_send(c, &env);
}

/* Output of no client's request: the daemon's log, and the connections
 * that asked for it. */
static void idle_output(struct pb_serve *srv, Plugbox__Output *o)
{
	for (struct pb_serve_client *c = srv->clients, *next; srv->nidle && c; c = next) {
		next = c->next; /* a send may drop c */
		if (c->want_idle_output)
			send_output(c, o);
	}
}

static void on_output(void *userdata, const char *plugin, uint64_t call_id, pb_stream stream, const char *line)
{
	struct pb_serve *srv = userdata;
	struct pb_serve_slot *slot = pb_serve_slot_of(srv, call_id);
	Plugbox__Output o = PLUGBOX__OUTPUT__INIT;

	o.plugin = (char *)plugin;
	o.stream = (Plugbox__OutputStream)stream;
	o.text = (char *)line;
	if (slot && slot->client->want_output) {
		o.call_id = slot->wire_id;
		send_output(slot->client, &o);
		return;
	}
	pb_serve_log_output(srv, plugin, stream, line);
	if (!slot)
		idle_output(srv, &o);
}

const char *pb_serve_level_name(int level)
{
	static const char *const names[] = { "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL" };
	return level >= 10 && level <= 50 && level % 10 == 0 ? names[level / 10 - 1] : "LEVEL";
}

/* A record for the daemon's log, as the library shows it in lines: "LEVEL
 * logger: message", the rest of the message and the exception indented. */
static void log_as_lines(struct pb_serve *srv, const char *plugin, int level, const char *logger,
                         const char *message, const char *exc_text)
{
	char line[2048];
	const char *p = message;
	bool first = true;
	/* Cut between whole characters: in the text log the line is written
	 * as it is, and a character cut in two is invalid UTF-8 there. */
	int shown_logger = (int)pb_utf8_cut(logger, strlen(logger), 128);

	for (int part = 0; part < 2; part++, p = exc_text) {
		while (p && *p) {
			size_t n = strcspn(p, "\n");
			int shown = (int)pb_utf8_cut(p, n, 1900);
			if (first)
				snprintf(line, sizeof(line), "%s %.*s: %.*s", pb_serve_level_name(level), shown_logger, logger,
				         shown, p);
			else
				snprintf(line, sizeof(line), "  %.*s", shown, p);
			first = false;
			pb_serve_log_output(srv, plugin, PB_STREAM_LOG, line);
			p += n;
			if (*p == '\n')
				p++;
		}
	}
	if (first)
		pb_serve_log_output(srv, plugin, PB_STREAM_LOG, pb_serve_level_name(level));
}

static void on_log(void *userdata, const char *plugin, uint64_t call_id, int level, const char *logger,
                   const char *message, const char *exc_text)
{
	struct pb_serve *srv = userdata;
	struct pb_serve_slot *slot = pb_serve_slot_of(srv, call_id);
	Plugbox__Output o = PLUGBOX__OUTPUT__INIT;

	o.plugin = (char *)plugin;
	o.stream = PLUGBOX__OUTPUT_STREAM__OUTPUT_STREAM_LOG;
	o.text = (char *)message;
	o.level = level;
	o.logger = (char *)logger;
	o.exc_text = (char *)exc_text;
	if (slot && slot->client->want_output) {
		o.call_id = slot->wire_id;
		send_output(slot->client, &o);
		return;
	}
	log_as_lines(srv, plugin, level, logger, message, exc_text);
	if (!slot)
		idle_output(srv, &o);
}

/* ---- hooks ----------------------------------------------------------------------- */

/* What pb_hook_start borrows until done: the decoded request itself. */
struct pb_serve_hook {
	Plugbox__Envelope *env;
	pb_call_spec spec;
	const char **kwnames;
	Plugbox__Value **kwvalues;
	const char **plugins;
};

static void hook_free(struct pb_serve_hook *h)
{
	if (!h)
		return;
	pb_envelope_free(h->env);
	free(h->kwnames);
	free(h->kwvalues);
	free(h->plugins);
	free(h);
}

static void hook_done(void *userdata, pb_hook_results *res, int status)
{
	struct pb_serve_slot *slot = userdata;
	struct pb_serve_client *c = slot->client;
	size_t n = pb_hook_results_count(res);
	Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT;
	Plugbox__HookResults hr = PLUGBOX__HOOK_RESULTS__INIT;
	Plugbox__HookAnswer *answers = NULL, **ptrs = NULL;
	Plugbox__Error *errors = NULL;
	uint64_t(*args)[6] = NULL;

	pb_serve_index_remove(slot);
	if (slot->answered || c->closing || c->fd < 0) {
		/* cancelled (answered then), or nobody to tell */
	} else if (status < 0 || !res ||
	           (n && (!(answers = calloc(n, sizeof(*answers))) || !(ptrs = calloc(n, sizeof(*ptrs))) ||
	                  !(errors = calloc(n, sizeof(*errors))) || !(args = calloc(n, sizeof(*args)))))) {
		pb_serve_send_error(c, slot->wire_id, PB_ERROR_UNAVAILABLE, "hook %llu: the daemon is out of memory",
		                    (unsigned long long)slot->wire_id);
	} else {
		pb_serve_output_flush_dropped(c, slot->wire_id);
		for (size_t i = 0; i < n; i++) {
			const pb_error *e = pb_hook_result_error(res, i);
			plugbox__hook_answer__init(&answers[i]);
			answers[i].plugin = (char *)pb_hook_result_plugin(res, i);
			answers[i].name = (char *)pb_hook_result_name(res, i);
			if (e) {
				pb_serve_error_fields(c, e, &errors[i], args[i]);
				answers[i].outcome_case = PLUGBOX__HOOK_ANSWER__OUTCOME_ERROR;
				answers[i].error = &errors[i];
			} else {
				answers[i].outcome_case = PLUGBOX__HOOK_ANSWER__OUTCOME_VALUE;
				answers[i].value = (Plugbox__Value *)pb_hook_result_value(res, i);
			}
			ptrs[i] = &answers[i];
		}
		hr.answers = ptrs;
		hr.n_answers = n;
		env.id = slot->wire_id;
		env.body_case = PLUGBOX__ENVELOPE__BODY_HOOK_RESULTS;
		env.hook_results = &hr;
		/* Each answer fit a worker's frame, all of them together need
		 * not: the hook still gets an answer, as a too large Result does
		 * (pb_serve_send would drop the connection). */
		if (pb_envelope_packed_size(&env) > (size_t)PB_FRAME_MAX_DEFAULT)
			pb_serve_send_error(c, slot->wire_id, PB_ERROR_PROTOCOL,
			                    "hook %llu: its %zu answers are larger than a frame may be (16 MiB)",
			                    (unsigned long long)slot->wire_id, n);
		else
			pb_serve_send(c, &env);
	}
	free(answers);
	free(ptrs);
	free(errors);
	free(args);
	pb_hook_results_free(res);
	hook_free(slot->hook);
	slot->hook = NULL;
	pb_serve_slot_release(slot);
}

void pb_serve_start_hook(struct pb_serve_client *c, uint64_t id, Plugbox__Envelope **envp)
{
	Plugbox__HookRequest *rq = (*envp)->hook;
	pb_hook_options o = { 0 };
	struct pb_serve_hook *h;
	struct pb_serve_slot *slot;
	int r;

	if (id != 0 && !*rq->group) {
		pb_serve_send_error(c, id, PB_ERROR_BAD_REQUEST, "hook %llu names no entry-point group",
		                    (unsigned long long)id);
		return;
	}
	if (!(slot = pb_serve_take_slot(c, id, "hook")))
		return;
	if (!(h = calloc(1, sizeof(*h))) ||
	    (rq->n_kwargs && (!(h->kwnames = calloc(rq->n_kwargs, sizeof(*h->kwnames))) ||
	                      !(h->kwvalues = calloc(rq->n_kwargs, sizeof(*h->kwvalues))))) ||
	    (rq->n_plugins && !(h->plugins = calloc(rq->n_plugins, sizeof(*h->plugins))))) {
		hook_free(h);
		pb_serve_send_error(c, id, PB_ERROR_UNAVAILABLE, "the daemon is out of memory");
		return;
	}
	for (size_t i = 0; i < rq->n_kwargs; i++) {
		h->kwnames[i] = rq->kwargs[i]->name;
		h->kwvalues[i] = rq->kwargs[i]->value;
	}
	for (size_t i = 0; i < rq->n_plugins; i++)
		h->plugins[i] = rq->plugins[i];
	h->spec.args = (pb_value *const *)rq->args;
	h->spec.nargs = rq->n_args;
	h->spec.kwnames = h->kwnames;
	h->spec.kwvalues = (pb_value *const *)h->kwvalues;
	h->spec.nkwargs = rq->n_kwargs;
	h->spec.timeout = rq->timeout;
	o.flags = (rq->first_result ? PB_HOOK_FIRST_RESULT : 0) | (rq->concurrent ? PB_HOOK_CONCURRENT : 0) |
	          (rq->allow_unknown ? PB_HOOK_ALLOW_UNKNOWN : 0) | (rq->prune_kwargs ? PB_HOOK_PRUNE_KWARGS : 0) |
	          (c->want_output ? PB_HOOK_ALONE : 0);
	o.order = (pb_hook_order)rq->order;
	o.plugins = rq->n_plugins ? h->plugins : NULL;
	o.nplugins = rq->n_plugins;
	if (rq->timeout < 0) {
		hook_free(h);
		pb_serve_send_error(c, id, PB_ERROR_BAD_REQUEST, "hook %llu: a negative timeout", (unsigned long long)id);
		return;
	}
	/* The library borrows the arguments until done: the request is the
	 * hook's now. */
	h->env = *envp;
	*envp = NULL;
	slot->client = c;
	slot->wire_id = id;
	slot->describe = false;
	slot->hook = h;
	slot->metric = NULL;
	slot->started = pb_serve_now();
	/* Taken before the start: done may run inside it (nothing to call). */
	pb_serve_slot_used(slot);
	r = pb_hook_start_id(c->srv->sup, rq->group, &h->spec, &o, hook_done, slot, &slot->lib_id);
	if (r < 0) {
		pb_serve_send_error(c, id, r == -ENOENT ? PB_ERROR_NOT_FOUND : r == -ENOMEM ? PB_ERROR_UNAVAILABLE
		                                                                            : PB_ERROR_BAD_REQUEST,
		                    "hook %llu: %s", (unsigned long long)id, pb_supervisor_strerror(c->srv->sup));
		hook_free(h);
		slot->hook = NULL;
		pb_serve_slot_release(slot);
	} else if (slot->used && slot->hook == h) {
		/* (done may have run inside the start: then it is over) */
		pb_serve_index_add(slot);
	}
}

/* ---- cancelling ---------------------------------------------------------------- */

void pb_serve_cancel(struct pb_serve_client *c, uint64_t id, const Plugbox__CancelRequest *r)
{
	struct pb_serve_slot *slot;

	(void)id;
	if (r->call_id == 0) {
		pb_serve_send_error(c, id, PB_ERROR_BAD_REQUEST, "a cancel needs the call_id of a request in flight");
		return;
	}
	if (!(slot = slot_by_wire(c, r->call_id)) || !slot->lib_id)
		return; /* ended already: its answer is on its way */
	if (slot->hook) {
		/* The library stops the hook's calls; the hook ends now. */
		pb_serve_send_error(c, slot->wire_id, PB_ERROR_CANCELLED, "hook %llu cancelled",
		                    (unsigned long long)slot->wire_id);
		slot->answered = true;
		pb_serve_index_remove(slot);
	}
	pb_cancel(c->srv->sup, slot->lib_id);
}

/* ---- host functions ------------------------------------------------------------ */

static bool name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > NAME_MAX_BYTES || !((name[0] >= 'A' && name[0] <= 'Z') || (name[0] >= 'a' && name[0] <= 'z') || name[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!((name[i] >= 'A' && name[i] <= 'Z') || (name[i] >= 'a' && name[i] <= 'z') ||
		      (name[i] >= '0' && name[i] <= '9') || name[i] == '_'))
			return false;
	return true;
}

static bool has_name(char **names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(names[i], name))
			return true;
	return false;
}

static struct pb_serve_hcall *hcall_of(struct pb_serve_client *c, uint64_t id)
{
	for (unsigned i = 0; i < c->nhcalls; i++)
		if (c->hcalls[i].id == id)
			return &c->hcalls[i];
	return NULL;
}

static void hcall_remove(struct pb_serve_client *c, struct pb_serve_hcall *h)
{
	*h = c->hcalls[--c->nhcalls];
}

/* A plugin called a host function it is granted: to the connection whose
 * request it runs, if that connection offers the name. */
static void route_host_call(void *userdata, pb_host_call *hc)
{
	struct pb_serve *srv = userdata;
	const char *name = pb_host_call_name(hc), *plugin = pb_host_call_plugin(hc);
	struct pb_serve_slot *slot = pb_serve_slot_of(srv, pb_host_call_origin(hc));
	struct pb_serve_client *c = slot ? slot->client : NULL;
	Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT;
	Plugbox__HostCall call = PLUGBOX__HOST_CALL__INIT;
	Plugbox__KeywordArgument *kw = NULL, **kwp = NULL;
	Plugbox__Value **args = NULL;
	size_t nargs = pb_host_call_nargs(hc), nkw = pb_host_call_nkwargs(hc);
	char msg[512];

	if (!c || c->fd < 0 || c->closing || !has_name(c->names, c->nnames, name)) {
		snprintf(msg, sizeof(msg), "host function '%s' is granted to plugin '%s' but the client that made the "
		                           "call offers no such function",
		         name, plugin);
		pb_host_call_fail(hc, "LookupError", msg);
		return;
	}
	if (c->nhcalls >= PB_SERVE_MAX_HOST_CALLS) {
		snprintf(msg, sizeof(msg), "the client offering host function '%s' has %d host calls waiting already",
		         name, PB_SERVE_MAX_HOST_CALLS);
		pb_host_call_fail(hc, "RuntimeError", msg);
		return;
	}
	if ((nargs && !(args = calloc(nargs, sizeof(*args)))) ||
	    (nkw && (!(kw = calloc(nkw, sizeof(*kw))) || !(kwp = calloc(nkw, sizeof(*kwp)))))) {
		free(args);
		free(kw);
		pb_host_call_fail(hc, "MemoryError", "the daemon is out of memory");
		return;
	}
	for (size_t i = 0; i < nargs; i++)
		args[i] = (Plugbox__Value *)pb_host_call_arg(hc, i);
	for (size_t i = 0; i < nkw; i++) {
		const char *kname;
		plugbox__keyword_argument__init(&kw[i]);
		kw[i].value = (Plugbox__Value *)pb_host_call_kwarg(hc, i, &kname);
		kw[i].name = (char *)kname;
		kwp[i] = &kw[i];
	}
	call.name = (char *)name;
	call.args = args;
	call.n_args = nargs;
	call.kwargs = kwp;
	call.n_kwargs = nkw;
	call.plugin = (char *)plugin;
	call.call_id = slot->wire_id;
	env.id = c->last_hcall + 1 ? c->last_hcall + 1 : 1;
	env.body_case = PLUGBOX__ENVELOPE__BODY_HOST_CALL;
	env.host_call = &call;
	if (pb_envelope_packed_size(&env) > (size_t)PB_FRAME_MAX_DEFAULT) {
		/* The worker's frame fit, with the plugin's name and the call's
		 * id it need not: pb_serve_send would drop the connection, and
		 * every request of it with it. */
		snprintf(msg, sizeof(msg), "the arguments of host function '%s' are larger than a frame to the client "
		                           "may be (16 MiB)",
		         name);
		pb_host_call_fail(hc, "ValueError", msg);
	} else {
		c->last_hcall = env.id;
		c->hcalls[c->nhcalls++] = (struct pb_serve_hcall){ c->last_hcall, hc };
		/* The handle lives until answered: the send may drop c, which fails it. */
		pb_serve_send(c, &env);
	}
	free(args);
	free(kw);
	free(kwp);
}

void pb_serve_offer(struct pb_serve_client *c, uint64_t id, const Plugbox__HostFunctions *h)
{
	struct pb_serve *srv = c->srv;
	Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT;
	Plugbox__Result res = PLUGBOX__RESULT__INIT;
	Plugbox__Value null_value = PLUGBOX__VALUE__INIT;
	size_t fresh = 0, daemon_fresh = 0;

	if (id == 0) {
		pb_serve_send_error(c, 0, PB_ERROR_BAD_REQUEST, "a host_functions needs a non-zero id");
		return;
	}
	/* A connection never holds more names than this, so no one message
	 * needs more; and each name is compared with every name held, the
	 * connection's and the daemon's: a message of a million copies of one
	 * name kept the loop for seconds. */
	if (h->n_names > PB_SERVE_CLIENT_NAMES) {
		pb_serve_send_error(c, id, PB_ERROR_BAD_REQUEST,
		                    "host_functions %llu offers %zu names: at most %d per connection",
		                    (unsigned long long)id, h->n_names, PB_SERVE_CLIENT_NAMES);
		return;
	}
	for (size_t i = 0; i < h->n_names; i++) {
		if (!name_ok(h->names[i])) {
			pb_serve_send_error(c, id, PB_ERROR_BAD_REQUEST,
			                    "host function name %zu is not [A-Za-z_][A-Za-z0-9_]* of at most %d bytes", i + 1,
			                    NAME_MAX_BYTES);
			return;
		}
		fresh += !has_name(c->names, c->nnames, h->names[i]);
		daemon_fresh += !has_name(srv->names, srv->nnames, h->names[i]);
	}
	if (c->nnames + fresh > PB_SERVE_CLIENT_NAMES || srv->nnames + daemon_fresh > PB_SERVE_DAEMON_NAMES) {
		pb_serve_send_error(c, id, PB_ERROR_BAD_REQUEST,
		                    "too many host functions: at most %d per connection and %d in the daemon",
		                    PB_SERVE_CLIENT_NAMES, PB_SERVE_DAEMON_NAMES);
		return;
	}
	for (size_t i = 0; i < h->n_names; i++) {
		const char *name = h->names[i];
		char **grown;
		int r;

		if (!has_name(srv->names, srv->nnames, name)) {
			/* Counted only once the library has it: a name counted
			 * but never registered would be "offered" by every later
			 * offer of it, and each of its host calls would fail
			 * "no such function" for the daemon's life. */
			if (!(grown = realloc(srv->names, (srv->nnames + 1) * sizeof(*grown))))
				goto oom;
			srv->names = grown;
			if (!(srv->names[srv->nnames] = strdup(name)))
				goto oom;
			if ((r = pb_supervisor_register(srv->sup, name, route_host_call, srv)) < 0) {
				free(srv->names[srv->nnames]);
				if (r != -ENOMEM)
					goto refused;
				goto oom;
			}
			srv->nnames++;
		}
		if (!has_name(c->names, c->nnames, name)) {
			if (!(grown = realloc(c->names, (c->nnames + 1) * sizeof(*grown))))
				goto oom;
			c->names = grown;
			if (!(c->names[c->nnames] = strdup(name)))
				goto oom;
			c->nnames++;
		}
	}
	null_value.kind_case = PLUGBOX__VALUE__KIND_NULL_VALUE;
	null_value.null_value = true;
	res.value = &null_value;
	env.id = id;
	env.body_case = PLUGBOX__ENVELOPE__BODY_RESULT;
	env.result = &res;
	pb_serve_send(c, &env);
	return;
oom:
	pb_serve_send_error(c, id, PB_ERROR_UNAVAILABLE, "the daemon is out of memory");
	return;
refused:
	pb_serve_send_error(c, id, PB_ERROR_BAD_REQUEST, "host_functions %llu: %s", (unsigned long long)id,
	                    pb_supervisor_strerror(srv->sup));
}

void pb_serve_host_result(struct pb_serve_client *c, uint64_t id, Plugbox__HostResult *r)
{
	struct pb_serve_hcall *h = id ? hcall_of(c, id) : NULL;
	pb_host_call *hc;

	if (!h) {
		/* An id this connection was given once: its call ended and the
		 * answer was let go (route_host_call never reuses an id). */
		if (id == 0 || id > c->last_hcall)
			pb_serve_send_error(c, 0, PB_ERROR_BAD_REQUEST,
			                    "host_result %llu answers no host call of this connection",
			                    (unsigned long long)id);
		return;
	}
	hc = h->hc;
	hcall_remove(c, h);
	if (r->outcome_case == PLUGBOX__HOST_RESULT__OUTCOME_ERROR) {
		pb_host_call_fail(hc, r->error->type, r->error->message);
	} else if (r->outcome_case == PLUGBOX__HOST_RESULT__OUTCOME_VALUE) {
		/* The decoded value goes to the plugin as it is. */
		Plugbox__Value *v = r->value;
		r->value = NULL;
		r->outcome_case = PLUGBOX__HOST_RESULT__OUTCOME__NOT_SET;
		pb_host_call_return(hc, (pb_value *)v);
	} else {
		pb_host_call_return(hc, NULL);
	}
}

int pb_serve_nest(struct pb_serve_client *c, uint64_t id, uint64_t parent, const pb_call_spec *spec,
                  struct pb_serve_slot *slot, pb_call_done_fn done)
{
	struct pb_serve_hcall *h = hcall_of(c, parent);
	int r;

	if (!h) {
		pb_serve_send_error(c, id, PB_ERROR_BAD_REQUEST,
		                    "call %llu: parent %llu is no unanswered host call of this connection",
		                    (unsigned long long)id, (unsigned long long)parent);
		return -ENOENT;
	}
	r = pb_host_call_nest(h->hc, spec, done, slot, &slot->lib_id);
	if (r < 0)
		pb_serve_send_error(c, id, r == -ENOMEM ? PB_ERROR_UNAVAILABLE : PB_ERROR_BAD_REQUEST, "call %llu: %s",
		                    (unsigned long long)id, pb_supervisor_strerror(c->srv->sup));
	return r;
}

/* ---- a connection's end ---------------------------------------------------------------- */

void pb_serve_client_gone(struct pb_serve_client *c)
{
	char msg[256];

	/* Its host calls first: a plugin waiting on one gets its error, then
	 * at once the cancel, which may land while it handles that error
	 * (plugbox.Cancelled is asynchronous: tests/plugins/serve2/talk). */
	while (c->nhcalls) {
		pb_host_call *hc = c->hcalls[c->nhcalls - 1].hc;
		snprintf(msg, sizeof(msg), "the client offering host function %s went away", pb_host_call_name(hc));
		c->nhcalls--;
		pb_host_call_fail(hc, "RuntimeError", msg);
	}
	for (size_t i = 0; i < PB_SERVE_MAX_INFLIGHT; i++) {
		struct pb_serve_slot *slot = &c->slots[i];
		pb_serve_index_remove(slot);
		if (slot->used && !slot->answered && slot->lib_id) {
			slot->answered = slot->hook != NULL; /* a hook's answer goes nowhere now */
			pb_cancel(c->srv->sup, slot->lib_id);
		}
	}
	if (c->want_idle_output) {
		c->want_idle_output = false;
		c->srv->nidle--;
	}
	for (size_t i = 0; i < c->nnames; i++)
		free(c->names[i]);
	free(c->names);
	c->names = NULL;
	c->nnames = 0;
}

/* ---- the daemon's part ----------------------------------------------------------- */

void pb_serve_route_setup(struct pb_serve *srv)
{
	pb_supervisor_set_call_output(srv->sup, on_output, srv);
	pb_supervisor_set_log(srv->sup, on_log, srv);
}

void pb_serve_route_free(struct pb_serve *srv)
{
	for (size_t i = 0; i < srv->nnames; i++)
		free(srv->names[i]);
	free(srv->names);
	srv->names = NULL;
	srv->nnames = 0;
}
