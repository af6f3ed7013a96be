/* calls.c - the worker's end of the call channel once Hello is out: the
 * serve loop, calls nested in host calls, and host calls themselves.
 *
 * One buffered reader serves PB_FD_CALLS for the serve loop and for every
 * wait for a HostResult: each read(2) takes whatever the supervisor has
 * written (several pipelined calls at once), and only the thread that runs
 * calls ever reads. Answers go into one output buffer, written with one
 * write(2) when the worker is about to wait for input (so a batch of calls
 * read together is answered together), before a host call, when the buffer
 * is large, and before a call that is not known to be quick (so a slow call
 * never holds back the answers before it). Frames are written with the GIL
 * held, never released during the write, so they cannot interleave with a
 * Log another Python thread sends (log.c). The GIL is released only while
 * waiting for input, so the plugin's own threads run, and log, meanwhile.
 *
 * While a host call waits for its HostResult, the supervisor may send Calls
 * nested in it (the host function called back into the plugin, Call.parent
 * names the host call): each is run like a top-level call, and may make host
 * calls of its own, up to PB_CALL_DEPTH_MAX active calls. Top-level calls
 * pipelined behind the running one may arrive then too; they are held and
 * run once it has been answered. A Shutdown or the end of the channel ends
 * the process at once; anything else is the supervisor breaking the
 * protocol, which also ends it.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proto/frame.h"
#include "proto/protocol.h"
#include "proto/value.h"
#include "worker.h"

/* Read size: room for a window of pipelined calls in one read(2). */
#define IN_BUFFER ((size_t)64 * 1024)
/* Answers held back at most: beyond either, they are written at once. Half
 * the supervisor's window: it refills the window while we work on the
 * rest (on two CPUs, both sides then work at once). */
#define OUT_MAX_BYTES ((size_t)32 * 1024)
#define OUT_MAX_FRAMES (PB_PIPELINE_MAX / 2u)
/* A call this quick, this many times in a row, is "known quick": answers
 * before it may wait for it to end. */
#define QUICK_CALL_SECONDS 50e-6
#define QUICK_RUNS 4
/* Longest poll a supervisor may ask for (Envelope.poll_us). */
#define POLL_US_MAX 200u
/* Top-level calls held while host calls wait (the supervisor sends at most
 * its pipelining window). */
#define HELD_MAX 1024u

static struct pb_frame_in in;
static struct pb_frame_out out;
static unsigned out_frames;
static bool ran_since_flush; /* a call ran: Python's stdout/stderr may hold its output */
static bool serving;         /* in pb_serve: answers may wait in `out` */
/* The thread that runs calls (pb_serve's), and how many calls it is in:
 * host calls are legal only there and only while this is non-zero. */
static unsigned long call_thread;
static unsigned call_depth;
/* Ids of host calls: the worker's own sequence, never 0. */
static uint64_t last_host_id;
/* Pipelined top-level calls that arrived while a host call waited, in order. */
static Plugbox__Envelope **held;
static size_t held_head, held_count, held_cap;
/* How long to poll for the next frame before blocking (the last Call's
 * Envelope.poll_us); poll_broken once poll(2) failed. */
static unsigned poll_us;
static bool poll_broken;
/* CLOCK_MONOTONIC when the last call ended or input last came: the next
 * call's start, without reading the clock again. */
static double last_mark;

/* Which functions are known quick: a small table by name hash. */
static struct {
	uint64_t hash;
	unsigned quick_runs;
} speed[64];

/* The supervisor is ending this worker (or is gone): nothing is left to
 * answer, and plugin threads or atexit handlers have nothing to add. */
static _Noreturn void leave(int status)
{
	fflush(NULL);
	_exit(status);
}

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The types of the interpreter's own stdio (interp.c sets buffered_stdio
 * = 0): a TextIOWrapper with write_through over an unbuffered FileIO. Such
 * a stream hands every write to write(2) before the write returns, so it
 * never holds output and flushing it is a no-op, one that cost ~1,800
 * instructions per stream and call. Looked up once; NULL if _io is odd. */
static PyTypeObject *text_io, *file_io;
static PyObject *sys_dict, *write_through_name, *buffer_name, *flush_name, *stream_names[2];

static bool stdio_types_ready(void)
{
	static bool tried;

	if (!tried) {
		PyObject *io = PyImport_ImportModule("_io"), *sys = PyImport_ImportModule("sys");
		PyObject *t = io ? PyObject_GetAttrString(io, "TextIOWrapper") : NULL;
		PyObject *f = io ? PyObject_GetAttrString(io, "FileIO") : NULL;

		tried = true;
		if (t && f && PyType_Check(t) && PyType_Check(f) && sys) {
			text_io = (PyTypeObject *)t;
			file_io = (PyTypeObject *)f;
			t = f = NULL;
			sys_dict = PyModule_GetDict(sys); /* the sys module lives as long as we do */
			Py_INCREF(sys_dict);
		}
		write_through_name = PyUnicode_InternFromString("write_through");
		buffer_name = PyUnicode_InternFromString("buffer");
		flush_name = PyUnicode_InternFromString("flush");
		stream_names[0] = PyUnicode_InternFromString("stdout");
		stream_names[1] = PyUnicode_InternFromString("stderr");
		Py_XDECREF(t);
		Py_XDECREF(f);
		Py_XDECREF(io);
		Py_XDECREF(sys);
		PyErr_Clear();
	}
	return text_io && sys_dict && write_through_name && buffer_name && stream_names[0] && stream_names[1];
}

/* True if stream is exactly such a stream now (a plugin may have replaced
 * it, or reconfigured it with write_through off: then it may hold output). */
static bool holds_nothing(PyObject *stream)
{
	PyObject *wt, *buffer;
	bool yes;

	if (Py_TYPE(stream) != text_io)
		return false;
	wt = PyObject_GetAttr(stream, write_through_name);
	buffer = wt ? PyObject_GetAttr(stream, buffer_name) : NULL;
	yes = wt == Py_True && buffer && Py_TYPE(buffer) == file_io;
	Py_XDECREF(wt);
	Py_XDECREF(buffer);
	PyErr_Clear();
	return yes;
}

/* What the plugin printed goes out before the answers it precedes: flush
 * sys.stdout and sys.stderr (errors there are the plugin's business),
 * unless they cannot hold anything. */
static void flush_python_streams(void)
{
	static const char *const names[] = { "stdout", "stderr" };
	bool fast = stdio_types_ready();
	PyObject *type, *value, *tb;

	ran_since_flush = false;
	PyErr_Fetch(&type, &value, &tb);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		/* borrowed; sys_dict is what PySys_GetObject reads, without
		 * making a str of the name each time */
		PyObject *stream = fast ? PyDict_GetItemWithError(sys_dict, stream_names[i]) : PySys_GetObject(names[i]);
		PyObject *r = NULL;

		if (!stream || stream == Py_None || (fast && holds_nothing(stream))) {
			PyErr_Clear();
			continue;
		}
		Py_INCREF(stream); /* flush() may replace sys.stdout */
		r = flush_name ? PyObject_CallMethodNoArgs(stream, flush_name) : PyObject_CallMethod(stream, "flush", NULL);
		if (!r)
			PyErr_Clear();
		Py_XDECREF(r);
		Py_DECREF(stream);
	}
	PyErr_Restore(type, value, tb);
}

/* Write every held-back answer (blocking): 0 or a negative errno. */
static int flush_out(void)
{
	if (ran_since_flush)
		flush_python_streams();
	while (pb_frame_out_pending(&out) > 0) {
		ssize_t n = pb_frame_out_write(&out, PB_FD_REPLIES);

		if (n < 0)
			return (int)n;
		if (n == 0) {
			/* not ours to make non-blocking, but wait if it is */
			struct pollfd p = { .fd = PB_FD_REPLIES, .events = POLLOUT };
			if (poll(&p, 1, -1) < 0 && errno != EINTR)
				return -errno;
		}
	}
	out_frames = 0;
	return 0;
}

/* Queue a frame to the supervisor; outside the serve loop (start-up errors)
 * or when enough is waiting, write at once. */
static int send_envelope(const Plugbox__Envelope *env)
{
	int r = pb_frame_out_append(&out, env, PB_FRAME_MAX_DEFAULT);

	if (r < 0)
		return r;
	out_frames++;
	if (!serving || out_frames >= OUT_MAX_FRAMES || pb_frame_out_pending(&out) >= OUT_MAX_BYTES)
		return flush_out();
	return 0;
}

int pb_send_error(uint64_t id, Plugbox__ErrorKind kind, const char *type,
                  const char *message, const char *tb)
{
	Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT;
	Plugbox__Error err = PLUGBOX__ERROR__INIT;
	char cut[PB_ERROR_CUT_BUF];
	int r;

	err.kind = kind;
	err.type = (char *)(type ? type : "");
	err.message = (char *)(message ? message : "");
	err.traceback = (char *)(tb ? tb : "");
	env.id = id;
	env.body_case = PLUGBOX__ENVELOPE__BODY_ERROR;
	env.error = &err;
	r = send_envelope(&env);
	if (r == -EMSGSIZE) {
		/* An exception too large to say whole: its call still gets it,
		 * cut, and the worker goes on. */
		pb_error_cut(&err, cut);
		r = send_envelope(&env);
	}
	return r;
}

/* exc is the plugbox.Cancelled that the cancel signal raised (cancel.c). */
static bool is_cancelled(PyObject *exc)
{
	static PyObject *name;
	PyObject *plugbox, *cls;
	bool yes;

	if (!name && !(name = PyUnicode_InternFromString("plugbox")))
		return false;
	plugbox = PyImport_GetModule(name);
	cls = plugbox ? PyObject_GetAttrString(plugbox, "Cancelled") : NULL;
	yes = cls && PyObject_IsInstance(exc, cls) == 1;
	PyErr_Clear();
	Py_XDECREF(cls);
	Py_XDECREF(plugbox);
	return yes;
}

/* Report the pending Python exception as an error reply. Exceptions the glue
 * raises for a missing function or a bad plugin layout get their own kinds. */
int pb_send_python_error(uint64_t id)
{
	PyObject *glue = pb_glue();
	PyObject *etype, *exc, *etb;
	PyObject *desc = NULL, *not_found, *config;
	Plugbox__ErrorKind kind = PLUGBOX__ERROR_KIND__ERROR_KIND_EXCEPTION;
	const char *type = "Exception", *message = "", *tb = "";
	int r;

	PyErr_Fetch(&etype, &exc, &etb);
	PyErr_NormalizeException(&etype, &exc, &etb);
	if (!exc) {
		exc = Py_None;
		Py_INCREF(exc);
	}
	if (etb && exc != Py_None)
		PyException_SetTraceback(exc, etb);
	Py_XDECREF(etype);
	Py_XDECREF(etb);
	if (!glue) {
		PyObject *text = PyObject_Str(exc);
		const char *t = text ? PyUnicode_AsUTF8(text) : NULL;
		r = pb_send_error(id, PLUGBOX__ERROR_KIND__ERROR_KIND_UNAVAILABLE, "",
		                  t ? t : "the worker's glue failed to load", "");
		Py_XDECREF(text);
		Py_DECREF(exc);
		return r;
	}
	not_found = PyObject_GetAttrString(glue, "NotFound");
	config = PyObject_GetAttrString(glue, "ConfigError");
	if (not_found && PyObject_IsInstance(exc, not_found) == 1)
		kind = PLUGBOX__ERROR_KIND__ERROR_KIND_NOT_FOUND;
	else if (is_cancelled(exc))
		kind = PLUGBOX__ERROR_KIND__ERROR_KIND_CANCELLED;
	else if (config && PyObject_IsInstance(exc, config) == 1)
		kind = PLUGBOX__ERROR_KIND__ERROR_KIND_CONFIG;
	desc = PyObject_CallMethod(glue, "describe", "O", exc);
	if (desc && PyTuple_Check(desc) && PyTuple_GET_SIZE(desc) == 3) {
		const char *t = PyUnicode_AsUTF8(PyTuple_GET_ITEM(desc, 0));
		const char *m = PyUnicode_AsUTF8(PyTuple_GET_ITEM(desc, 1));
		const char *b = PyUnicode_AsUTF8(PyTuple_GET_ITEM(desc, 2));
		if (t && m && b) {
			type = t;
			message = m;
			tb = b;
		}
	}
	PyErr_Clear();
	if (kind != PLUGBOX__ERROR_KIND__ERROR_KIND_EXCEPTION)
		tb = "";
	r = pb_send_error(id, kind, type, message, tb);
	Py_XDECREF(desc);
	Py_XDECREF(not_found);
	Py_XDECREF(config);
	Py_XDECREF(exc);
	return r;
}

/* The glue's resolve(function) and its memo `_exported` (bootstrap.py),
 * looked up once. */
static PyObject *glue_resolve, *glue_exported;

static bool glue_ready(void)
{
	if (!glue_resolve && pb_glue()) {
		glue_resolve = PyObject_GetAttrString(pb_glue(), "resolve");
		glue_exported = PyObject_GetAttrString(pb_glue(), "_exported");
		if (!glue_resolve || !glue_exported || !PyDict_Check(glue_exported)) {
			Py_CLEAR(glue_resolve);
			Py_CLEAR(glue_exported);
		}
	}
	return glue_resolve != NULL;
}

/* The callable for `function` (a new reference, or NULL with an exception
 * set). What resolve() last found in plugbox's export registry stays valid
 * while the registry maps the name to the same object (bootstrap.py says
 * why); anything else goes through resolve(). */
static PyObject *resolve(PyObject *function)
{
	static PyObject *exports_name;
	PyObject *obj = PyDict_GetItemWithError(glue_exported, function); /* borrowed */
	PyObject *module = obj ? PyDict_GetItemWithError(glue_exported, Py_None) : NULL;

	if (!exports_name)
		exports_name = PyUnicode_InternFromString("_exports");
	if (module && exports_name) {
		PyObject *exports = PyObject_GetAttr(module, exports_name);
		PyObject *current = exports && PyDict_Check(exports) ? PyDict_GetItemWithError(exports, function) : NULL;

		Py_XDECREF(exports); /* the module keeps it */
		if (current == obj) {
			Py_INCREF(obj);
			return obj;
		}
	}
	PyErr_Clear();
	return PyObject_CallOneArg(glue_resolve, function);
}

/* The function's name as a str: the same as last time, usually. */
static PyObject *function_name(const char *function)
{
	static PyObject *last;
	static char last_text[256];

	if (last && strcmp(last_text, function) == 0) {
		Py_INCREF(last);
		return last;
	}
	size_t len = strlen(function);

	Py_CLEAR(last);
	last = PyUnicode_FromString(function);
	if (last && len < sizeof(last_text))
		memcpy(last_text, function, len + 1);
	else
		last_text[0] = '\0';
	Py_XINCREF(last);
	return last;
}

static int handle_call(uint64_t id, const Plugbox__Call *call)
{
	PyObject *args = NULL, *kwargs = NULL, *res = NULL, *fname = NULL, *fn = NULL;
	Plugbox__Value *value = NULL;
	int r;

	if (!glue_ready())
		return pb_send_python_error(id);
	args = PyTuple_New((Py_ssize_t)call->n_args);
	kwargs = call->n_kwargs ? PyDict_New() : NULL;
	fname = function_name(call->function);
	if (!args || (call->n_kwargs && !kwargs) || !fname)
		goto python_error;
	for (size_t i = 0; i < call->n_args; i++) {
		PyObject *a = pb_value_to_py(call->args[i]);
		if (!a)
			goto python_error;
		PyTuple_SET_ITEM(args, (Py_ssize_t)i, a);
	}
	for (size_t i = 0; i < call->n_kwargs; i++) {
		PyObject *a = pb_value_to_py(call->kwargs[i]->value);
		if (!a || PyDict_SetItemString(kwargs, call->kwargs[i]->name, a) < 0) {
			Py_XDECREF(a);
			goto python_error;
		}
		Py_DECREF(a);
	}
	fn = resolve(fname);
	if (!fn)
		goto python_error;
	if (call->prune_kwargs && kwargs) {
		/* Only the keywords fn's signature accepts (bootstrap.py). */
		PyObject *kept = PyObject_CallMethod(pb_glue(), "prune_kwargs", "OO", fn, kwargs);
		if (!kept)
			goto python_error;
		Py_SETREF(kwargs, kept);
	}
	call_depth++;
	ran_since_flush = true;
	res = PyObject_Call(fn, args, kwargs);
	call_depth--;
	if (!res)
		goto python_error;
	if (pb_py_to_value(res, &value) < 0)
		goto python_error;
	{
		Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT;
		Plugbox__Result result = PLUGBOX__RESULT__INIT;
		result.value = value;
		env.id = id;
		env.body_case = PLUGBOX__ENVELOPE__BODY_RESULT;
		env.result = &result;
		r = send_envelope(&env);
		if (r == -EMSGSIZE)
			r = pb_send_error(id, PLUGBOX__ERROR_KIND__ERROR_KIND_EXCEPTION, "ValueError",
			                  "the result is larger than a frame may be", "");
	}
	pbv_free(value);
	Py_XDECREF(args);
	Py_XDECREF(kwargs);
	Py_XDECREF(fname);
	Py_XDECREF(fn);
	Py_XDECREF(res);
	return r;

python_error:
	Py_XDECREF(args);
	Py_XDECREF(kwargs);
	Py_XDECREF(fname);
	Py_XDECREF(fn);
	Py_XDECREF(res);
	return pb_send_python_error(id);
}

/* Poll for input for up to poll_us (the supervisor expects the next call
 * that soon and we may be on another CPU than it), then block in read(2).
 * Called with the GIL released. */
static ssize_t wait_input(void)
{
	ssize_t n;

	if (poll_us > 0 && !poll_broken) {
		double until = last_mark + poll_us / 1e6;
		for (unsigned i = 1;; i++) {
			struct pollfd p = { .fd = PB_FD_CALLS, .events = POLLIN };
			int k = poll(&p, 1, 0);
			if (k < 0 && errno != EINTR) {
				poll_broken = true;
				break;
			}
			if (k > 0 || (i % 8 == 0 && mono_now() >= until))
				break;
		}
	}
	do
		n = pb_frame_in_fill(&in, PB_FD_CALLS);
	while (n == 0);
	last_mark = mono_now();
	return n;
}

/* Next envelope from the supervisor: a held top-level call first (when
 * `top_level`), then the next frame already read, else whatever read(2)
 * brings, after writing our answers. Returns 0, -ENODATA when the channel
 * ended between frames, or another negative errno (after one line on
 * stderr, except for -EPIPE: the channel ended mid-frame). */
static int next_envelope(Plugbox__Envelope **env, bool top_level)
{
	const uint8_t *payload;
	uint32_t len;
	char why[256];
	ssize_t n;
	int r;

	if (top_level && held_count > 0) {
		*env = held[held_head];
		held_head = (held_head + 1) % held_cap;
		held_count--;
		return 0;
	}
	while ((r = pb_frame_in_next(&in, &payload, &len)) == 0) {
		r = flush_out();
		if (r == -EPIPE)
			return r;
		if (r < 0) {
			fprintf(stderr, "plugbox-worker: writing the channel: %s\n", strerror(-r));
			return r;
		}
		Py_BEGIN_ALLOW_THREADS
		        n = wait_input();
		Py_END_ALLOW_THREADS if (n == -ENODATA || n == -EPIPE) return (int)n;
		if (n < 0) {
			fprintf(stderr, "plugbox-worker: reading the channel: %s\n", strerror((int)-n));
			return (int)n;
		}
	}
	if (r < 0) {
		fprintf(stderr, "plugbox-worker: reading the channel: %s\n", strerror(-r));
		return r;
	}
	r = pb_envelope_decode(payload, len, env, why, sizeof(why));
	if (r < 0)
		fprintf(stderr, "plugbox-worker: bad frame from the supervisor: %s\n", why);
	return r;
}

/* Keep a top-level call that arrived while a host call waits. */
static void hold(Plugbox__Envelope *env)
{
	if (held_count == held_cap) {
		size_t cap = held_cap ? held_cap * 2 : 16;
		Plugbox__Envelope **grown;

		if (held_cap >= HELD_MAX) {
			fprintf(stderr, "plugbox-worker: protocol error: more than %u calls pipelined\n", HELD_MAX);
			leave(PB_EXIT_INTERNAL);
		}
		grown = malloc(cap * sizeof(*grown));
		if (!grown) {
			fprintf(stderr, "plugbox-worker: out of memory holding a call\n");
			leave(PB_EXIT_INTERNAL);
		}
		for (size_t i = 0; i < held_count; i++)
			grown[i] = held[(held_head + i) % held_cap];
		free(held);
		held = grown;
		held_head = 0;
		held_cap = cap;
	}
	held[(held_head + held_count) % held_cap] = env;
	held_count++;
}

static unsigned *quick_runs(const char *function)
{
	uint64_t h = 1469598103934665603ull;
	unsigned i;

	for (const char *c = function; *c; c++)
		h = (h ^ (uint8_t)*c) * 1099511628211ull;
	i = (unsigned)(h % (sizeof(speed) / sizeof(speed[0])));
	if (speed[i].hash != h) {
		speed[i].hash = h;
		speed[i].quick_runs = 0;
	}
	return &speed[i].quick_runs;
}

/* Run one call and queue its answer: skipped (UNAVAILABLE) if it may no longer
 * start, and the answers before it written first unless it is known quick. */
static int run_call(const Plugbox__Envelope *env)
{
	const Plugbox__Call *call = env->call;
	unsigned *quick = quick_runs(call->function);
	double start = last_mark;
	uint64_t outer;
	int r;

	poll_us = env->poll_us < POLL_US_MAX ? env->poll_us : POLL_US_MAX;
	/* (a worker may not claim TIMEOUT: the supervisor, whose deadline it
	 * was, says so itself) */
	if (call->start_by > 0 && start > call->start_by)
		return pb_send_error(env->id, PLUGBOX__ERROR_KIND__ERROR_KIND_UNAVAILABLE, "",
		                     "the call's deadline passed before the worker could start it", "");
	if (out_frames > 0 && *quick < QUICK_RUNS) {
		r = flush_out();
		if (r < 0)
			return r;
	}
	/* Marked running before the check, so that a cancel coming between
	 * the two is either seen here or interrupts the call (cancel.c). */
	outer = pb_cancel_enter(env->id);
	if (pb_cancel_pending(env->id))
		r = pb_send_error(env->id, PLUGBOX__ERROR_KIND__ERROR_KIND_CANCELLED, "Cancelled",
		                  "the host cancelled the call before it started", "");
	else
		r = handle_call(env->id, call);
	pb_log_note_drops();
	pb_cancel_leave(outer);
	/* the plugin may have called back into us: look the slot up again */
	quick = quick_runs(call->function);
	last_mark = mono_now();
	if (last_mark - start < QUICK_CALL_SECONDS)
		*quick += *quick < QUICK_RUNS;
	else
		*quick = 0;
	return r;
}

int pb_serve(void)
{
	int r;

	call_thread = PyThread_get_thread_ident();
	pb_frame_in_init(&in, PB_FRAME_MAX_DEFAULT, IN_BUFFER);
	serving = true;
	for (;;) {
		Plugbox__Envelope *env = NULL;

		r = next_envelope(&env, true);
		if (r == -ENODATA) {
			r = 0; /* the supervisor closed the channel: done */
			break;
		}
		if (r < 0)
			break;
		if (env->body_case == PLUGBOX__ENVELOPE__BODY_SHUTDOWN) {
			pb_envelope_free(env);
			r = 0;
			break;
		}
		if (env->body_case == PLUGBOX__ENVELOPE__BODY_CALL && env->call->parent == 0)
			r = run_call(env);
		else
			r = pb_send_error(env->id, PLUGBOX__ERROR_KIND__ERROR_KIND_BAD_REQUEST, "",
			                  "the worker accepts only top-level calls and shutdown here", "");
		pb_envelope_free(env);
		if (r < 0)
			break;
	}
	serving = false;
	if (r == 0)
		r = flush_out();
	pb_frame_in_free(&in);
	return r;
}

/* A Call nested in the host call that waits. Nothing is waiting for an
 * error return here: a reply that cannot be sent ends the worker, as it
 * ends pb_serve. */
static void run_nested_call(const Plugbox__Envelope *env)
{
	char message[96];
	int r;

	if (call_depth >= PB_CALL_DEPTH_MAX) {
		snprintf(message, sizeof(message), "calls nested in host calls deeper than %d levels",
		         PB_CALL_DEPTH_MAX);
		r = pb_send_error(env->id, PLUGBOX__ERROR_KIND__ERROR_KIND_EXCEPTION, "RecursionError", message, "");
	} else {
		r = run_call(env);
	}
	if (r == -EPIPE)
		leave(0);
	if (r < 0) {
		fprintf(stderr, "plugbox-worker: cannot reply to a nested call: %s\n", strerror(-r));
		leave(PB_EXIT_INTERNAL);
	}
}

static const char *body_name(Plugbox__Envelope__BodyCase c)
{
	const ProtobufCFieldDescriptor *f =
	        protobuf_c_message_descriptor_get_field(&plugbox__envelope__descriptor, (unsigned)c);

	return f ? f->name : "nothing";
}

/* The HostResult's outcome in the shape _host_call returns. */
static PyObject *host_outcome(const Plugbox__HostResult *hr)
{
	const Plugbox__Error *e = hr->error;
	PyObject *value;

	if (hr->outcome_case == PLUGBOX__HOST_RESULT__OUTCOME_VALUE) {
		value = pb_value_to_py(hr->value);
		return value ? Py_BuildValue("(ON)", Py_True, value) : NULL;
	}
	return Py_BuildValue("(Osss)", Py_False, e->type, e->message, e->traceback);
}

static PyObject *wait_host_result(uint64_t id)
{
	for (;;) {
		Plugbox__Envelope *env = NULL;
		PyObject *res;
		int r = next_envelope(&env, false);

		if (r == -ENODATA || r == -EPIPE)
			leave(0);
		if (r < 0)
			leave(PB_EXIT_INTERNAL);
		switch (env->body_case) {
		case PLUGBOX__ENVELOPE__BODY_CALL:
			if (env->call->parent == 0) {
				hold(env); /* pipelined behind the call that waits */
				continue;
			}
			if (env->call->parent != id)
				break;
			run_nested_call(env);
			pb_envelope_free(env);
			continue;
		case PLUGBOX__ENVELOPE__BODY_SHUTDOWN:
			leave(0);
		case PLUGBOX__ENVELOPE__BODY_HOST_RESULT:
			if (env->id != id)
				break;
			res = host_outcome(env->host_result);
			pb_envelope_free(env);
			return res;
		default:
			break;
		}
		fprintf(stderr, "plugbox-worker: protocol error: the supervisor sent %s (id %llu) "
		                "while host call %llu waited for its result\n",
		        body_name(env->body_case),
		        (unsigned long long)env->id, (unsigned long long)id);
		leave(PB_EXIT_INTERNAL);
	}
}

/* pb_py_to_value, with a failure turned into a TypeError that says which
 * argument of which host call could not be sent (the original as cause). */
static int host_argument(PyObject *o, const char *function, const char *what, Plugbox__Value **out)
{
	PyObject *type, *cause, *tb, *type2, *exc, *tb2;

	if (pb_py_to_value(o, out) == 0)
		return 0;
	if (PyErr_ExceptionMatches(PyExc_MemoryError))
		return -1;
	PyErr_Fetch(&type, &cause, &tb);
	PyErr_NormalizeException(&type, &cause, &tb);
	PyErr_Format(PyExc_TypeError, "host call %s: %s cannot be sent: %S", function, what, cause);
	PyErr_Fetch(&type2, &exc, &tb2);
	PyErr_NormalizeException(&type2, &exc, &tb2);
	if (exc)
		PyException_SetCause(exc, cause);
	else
		Py_XDECREF(cause);
	Py_XDECREF(type);
	Py_XDECREF(tb);
	PyErr_Restore(type2, exc, tb2);
	return -1;
}

static void free_host_call(Plugbox__HostCall *hc)
{
	for (size_t i = 0; i < hc->n_args; i++)
		pbv_free(hc->args[i]);
	for (size_t i = 0; i < hc->n_kwargs; i++)
		pbv_free(hc->kwargs[i]->value);
	free(hc->args);
	free(hc->kwargs);
}

/* Fill hc from Python arguments; the strings stay owned by Python. On
 * failure a Python exception is set and what was filled in must still be
 * freed with free_host_call. */
static int build_host_call(Plugbox__HostCall *hc, Plugbox__KeywordArgument *kw_store,
                           PyObject *args, PyObject *kwargs)
{
	PyObject *key, *value;
	Py_ssize_t pos = 0;
	char what[64];

	for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(args); i++) {
		snprintf(what, sizeof(what), "argument %zd", i + 1);
		if (host_argument(PyTuple_GET_ITEM(args, i), hc->name, what, &hc->args[i]) < 0)
			return -1;
		hc->n_args++;
	}
	while (PyDict_Next(kwargs, &pos, &key, &value)) {
		Plugbox__KeywordArgument *kw = &kw_store[hc->n_kwargs];
		Py_ssize_t len;

		plugbox__keyword_argument__init(kw);
		kw->name = PyUnicode_Check(key) ? (char *)PyUnicode_AsUTF8AndSize(key, &len) : NULL;
		if (!kw->name || memchr(kw->name, '\0', (size_t)len)) {
			PyErr_Clear();
			PyErr_Format(PyExc_TypeError, "host call %s: keyword argument names must be "
			                              "strings without NUL or lone surrogates",
			             hc->name);
			return -1;
		}
		if (host_argument(value, hc->name, "a keyword argument", &kw->value) < 0)
			return -1;
		hc->kwargs[hc->n_kwargs++] = kw;
	}
	return 0;
}

PyObject *pb_py_host_call(PyObject *module, PyObject *args)
{
	Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT;
	Plugbox__HostCall hc = PLUGBOX__HOST_CALL__INIT;
	Plugbox__KeywordArgument *kw_store = NULL;
	PyObject *name, *cargs, *ckwargs;
	Py_ssize_t name_len;
	int r = -1;

	(void)module;
	if (!PyArg_ParseTuple(args, "UO!O!:_host_call", &name, &PyTuple_Type, &cargs,
	                      &PyDict_Type, &ckwargs))
		return NULL;
	/* A background thread's HostCall would interleave with the call
	 * thread's conversation; outside a call nobody waits for one. */
	if (call_depth == 0 || PyThread_get_thread_ident() != call_thread) {
		PyErr_SetString(PyExc_RuntimeError, "plugbox.host can only be called while the plugin "
		                                    "is handling a call, from that call's thread");
		return NULL;
	}
	hc.name = (char *)PyUnicode_AsUTF8AndSize(name, &name_len);
	if (!hc.name)
		return NULL;
	if (name_len == 0 || memchr(hc.name, '\0', (size_t)name_len)) {
		PyErr_SetString(PyExc_ValueError, "a host function name must be a non-empty string "
		                                  "without NUL");
		return NULL;
	}
	hc.args = calloc((size_t)PyTuple_GET_SIZE(cargs) + 1, sizeof(*hc.args));
	hc.kwargs = calloc((size_t)PyDict_GET_SIZE(ckwargs) + 1, sizeof(*hc.kwargs));
	kw_store = calloc((size_t)PyDict_GET_SIZE(ckwargs) + 1, sizeof(*kw_store));
	if (!hc.args || !hc.kwargs || !kw_store)
		PyErr_NoMemory();
	else if (build_host_call(&hc, kw_store, cargs, ckwargs) == 0) {
		env.id = ++last_host_id;
		env.body_case = PLUGBOX__ENVELOPE__BODY_HOST_CALL;
		env.host_call = &hc;
		/* written at once (with any answers before it): we wait for it */
		r = pb_frame_out_append(&out, &env, PB_FRAME_MAX_DEFAULT);
		if (r == 0)
			r = flush_out();
		if (r == -EMSGSIZE)
			PyErr_Format(PyExc_ValueError, "host call %s: the arguments are larger than "
			                               "a frame may be",
			             hc.name);
		else if (r == -ENOMEM)
			PyErr_NoMemory();
	}
	free_host_call(&hc);
	free(kw_store);
	if (r == -EPIPE)
		leave(0); /* the supervisor is gone: no result will come */
	if (r < 0 && !PyErr_Occurred()) {
		errno = -r;
		PyErr_SetFromErrno(PyExc_OSError);
	}
	if (r < 0)
		return NULL;
	return wait_host_result(env.id);
}
