/* serve_client.c - `plugbox call --socket PATH` and `plugbox list --socket
 * PATH`: through a running `plugbox serve` (docs/protocol.md). Their output
 * and exit codes are those of the local commands; failing to reach or
 * understand the daemon exits 4, like a worker that died. Answers are
 * decoded leniently: a later daemon may add fields.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "proto/frame.h"
#include "proto/protocol.h"
#include "cli/plugbox_cli.h"
#include "cli/serve.h"
#include "toolkit/sanitize.h"

/* Seconds the daemon gets beyond the call's own --timeout to answer. */
#define ANSWER_SLACK 5.0

struct conn {
	int fd;
	const char *path;
	double deadline; /* 0: wait as long as it takes */
	struct pb_frame_reader rd;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Milliseconds left for poll(); -1 without a deadline. */
static int left_ms(const struct conn *k)
{
	double left;

	if (k->deadline == 0)
		return -1;
	left = k->deadline - now();
	return left <= 0 ? 0 : (int)ceil(left * 1000);
}

static int wait_for(const struct conn *k, short events)
{
	struct pollfd p = { .fd = k->fd, .events = events };
	int n = poll(&p, 1, left_ms(k));

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	return n == 0 ? -ETIMEDOUT : 0;
}

static int connect_to(struct conn *k)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	if (strlen(k->path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	memcpy(addr.sun_path, k->path, strlen(k->path));
	k->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (k->fd < 0)
		return -errno;
	/* A unix connect waits only while the daemon's backlog is full, for
	 * at most SO_SNDTIMEO. */
	if (k->deadline) {
		double left = k->deadline - now();
		struct timeval tv = { .tv_sec = (time_t)left, .tv_usec = (long)((left - floor(left)) * 1e6) };
		if (setsockopt(k->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
			return -errno;
	}
	while (connect(k->fd, (const struct sockaddr *)&addr, sizeof(addr)) < 0)
		if (errno != EINTR)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
	if (fcntl(k->fd, F_SETFL, fcntl(k->fd, F_GETFL) | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

static int write_all(struct conn *k, const uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(k->fd, buf, len, MSG_NOSIGNAL);
		if (n < 0) {
			int r;
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -errno;
			if ((r = wait_for(k, POLLOUT)) < 0)
				return r;
			continue;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The next envelope from the daemon, decoded with the frame module's
 * bounds: 0, a negative errno from the frame reader or the clock, or
 * -EBADMSG with the reason in why. */
static int read_envelope(struct conn *k, Plugbox__Envelope **env, char *why, size_t why_len)
{
	for (;;) {
		uint8_t *payload;
		uint32_t len;
		int r = pb_frame_read_fd(&k->rd, k->fd);

		if (r == 1 && pb_frame_take(&k->rd, &payload, &len) == 0) {
			r = pb_envelope_decode_opts(payload, len, PB_DECODE_LENIENT, env, why, why_len);
			free(payload);
			return r < 0 ? -EBADMSG : 0;
		}
		if (r < 0)
			return r;
		if ((r = wait_for(k, POLLIN)) < 0)
			return r;
	}
}

/* Exit code for a failure to talk to the daemon, after saying what it was. */
static int trouble(const struct conn *k, int r, const char *why, const char *doing)
{
	if (r == -ETIMEDOUT)
		fprintf(stderr, "plugbox: the daemon at %s did not answer in time (%s)\n", k->path, doing);
	else if (r == -ENODATA || r == -EPIPE || r == -ECONNRESET)
		fprintf(stderr, "plugbox: the daemon at %s closed the connection (%s)%s\n", k->path, doing,
		        !strcmp(doing, "greeting") ? "; it accepts only its own user" : "");
	else if (r == -EBADMSG || r == -EMSGSIZE)
		fprintf(stderr, "plugbox: the daemon at %s does not speak plugbox's protocol (%s): %s\n", k->path,
		        doing, r == -EBADMSG ? why : "frame too large");
	else
		fprintf(stderr, "plugbox: the daemon at %s: %s: %s\n", k->path, doing, strerror(-r));
	return PB_EXIT_WORKER;
}

/* A Hello asking for version 2 and the output of our requests. */
static void output_hello(Plugbox__Envelope *env, Plugbox__Hello *hello)
{
	hello->protocol_version = 2;
	hello->stream_output = true;
	env->body_case = PLUGBOX__ENVELOPE__BODY_HELLO;
	env->hello = hello;
}

/* A Hello asking for version 2 and the call's output, then the call, in
 * one write. */
static int send_call(struct conn *k, const struct pb_cli_call *c)
{
	Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT, henv = PLUGBOX__ENVELOPE__INIT;
	Plugbox__Call call = PLUGBOX__CALL__INIT;
	Plugbox__Hello hello = PLUGBOX__HELLO__INIT;
	uint8_t *frame, *hframe, *both;
	size_t len, hlen;
	int r;

	output_hello(&henv, &hello);

	call.plugin = (char *)c->plugin;
	call.function = (char *)c->function;
	/* pb_value is the codec's Plugbox__Value under its public name. */
	call.args = (Plugbox__Value **)c->args;
	call.n_args = (size_t)c->nargs;
	call.timeout = c->o.timeout_given ? c->o.timeout : 0;
	env.id = 1;
	env.body_case = PLUGBOX__ENVELOPE__BODY_CALL;
	env.call = &call;
	r = pb_envelope_pack(&env, PB_FRAME_MAX_DEFAULT, &frame, &len);
	if (r < 0)
		return r;
	if ((r = pb_envelope_pack(&henv, PB_FRAME_MAX_DEFAULT, &hframe, &hlen)) < 0) {
		free(frame);
		return r;
	}
	if (!(both = malloc(hlen + len))) {
		free(frame);
		free(hframe);
		return -ENOMEM;
	}
	memcpy(both, hframe, hlen);
	memcpy(both + hlen, frame, len);
	r = write_all(k, both, hlen + len);
	free(both);
	free(frame);
	free(hframe);
	return r;
}

/* One line of the plugin's, as a local call's default output shows it. */
static void show_line(const char *plugin, int stream, const char *text, size_t len)
{
	char line[8192];

	pb_sanitize(line, sizeof(line), text, len, 0);
	if (stream == PB_STREAM_SUPERVISOR)
		fprintf(stderr, "plugbox: plugin '%s': %s\n", plugin, line);
	else
		fprintf(stderr, "[%s] %s\n", plugin, line);
}

/* What the plugin printed or logged during the call, as a local call
 * prints it: a log record as "LEVEL logger: message", its further lines
 * and its exception indented under it. */
static void show_output(const Plugbox__Output *o)
{
	char plugin[256], head[512];

	pb_sanitize(plugin, sizeof(plugin), o->plugin, strlen(o->plugin), 0);
	if (o->dropped)
		fprintf(stderr, "plugbox: %llu lines of the plugin's output were dropped on the way (the daemon "
		                "had too much waiting for this client)\n",
		        (unsigned long long)o->dropped);
	if (o->stream == PLUGBOX__OUTPUT_STREAM__OUTPUT_STREAM_LOG) {
		const char *parts[2] = { o->text, o->exc_text };
		bool first = true;
		for (int i = 0; i < 2; i++)
			for (const char *p = parts[i]; *p;) {
				size_t n = strcspn(p, "\n");
				if (first) {
					char logger[256];
					pb_sanitize(logger, sizeof(logger), o->logger, strlen(o->logger), 0);
					snprintf(head, sizeof(head), "%s %s: ", pb_serve_level_name(o->level), logger);
					fprintf(stderr, "[%s] %s", plugin, head);
					char text[8192];
					pb_sanitize(text, sizeof(text), p, n, 0);
					fprintf(stderr, "%s\n", text);
				} else {
					char rest[8192];
					pb_sanitize(rest, sizeof(rest), p, n, 0);
					fprintf(stderr, "[%s]   %s\n", plugin, rest);
				}
				first = false;
				p += n;
				if (*p == '\n')
					p++;
			}
	} else if (o->stream >= PLUGBOX__OUTPUT_STREAM__OUTPUT_STREAM_STDOUT &&
	           o->stream <= PLUGBOX__OUTPUT_STREAM__OUTPUT_STREAM_SUPERVISOR) {
		show_line(plugin, (int)o->stream, o->text, strlen(o->text));
	}
}

/* The daemon's answer to call 1, printed; returns the exit code. The
 * daemon's Hellos and the call's output come first. */
static int answer(struct conn *k, const struct pb_cli_call *c)
{
	Plugbox__Envelope *env;
	char why[256] = "";
	int r, code;

	for (;;) {
		r = read_envelope(k, &env, why, sizeof(why));
		if (r < 0)
			return trouble(k, r, why, "waiting for the answer");
		if (env->id == 0 && env->body_case == PLUGBOX__ENVELOPE__BODY_OUTPUT) {
			show_output(env->output);
		} else if (!(env->id == 0 && env->body_case == PLUGBOX__ENVELOPE__BODY_HELLO)) {
			break;
		}
		pb_envelope_free(env);
	}
	/* Only call 1 was made; id 0 is the daemon refusing the conversation. */
	if (env->id != 1 && !(env->id == 0 && env->body_case == PLUGBOX__ENVELOPE__BODY_ERROR)) {
		code = trouble(k, -EBADMSG, "an answer to a call it was not asked", "waiting for the answer");
	} else if (env->body_case == PLUGBOX__ENVELOPE__BODY_RESULT) {
		code = pb_cli_print_result(c->plugin, (const pb_value *)env->result->value);
	} else if (env->body_case == PLUGBOX__ENVELOPE__BODY_ERROR) {
		const Plugbox__Error *e = env->error;
		pb_error_kind kind = e->kind >= (int)PB_ERROR_EXCEPTION && e->kind <= (int)PB_ERROR_CANCELLED
		                             ? (pb_error_kind)e->kind
		                             : PB_ERROR_PROTOCOL;
		code = pb_report_failure(kind, c->plugin, e->type, e->message, e->traceback);
	} else {
		code = trouble(k, -EBADMSG, "neither a result nor an error", "waiting for the answer");
	}
	pb_envelope_free(env);
	return code;
}

/* Connect: 0, or the exit code after saying what went wrong. */
static int open_only(struct conn *k)
{
	int r;

	pb_frame_reader_init(&k->rd, PB_FRAME_MAX_DEFAULT);
	r = connect_to(k);
	if (r < 0) {
		fprintf(stderr, "plugbox: cannot reach the daemon at %s: %s\n", k->path, strerror(-r));
		return PB_EXIT_WORKER;
	}
	return 0;
}

/* Take the daemon's first Hello: 0, or the exit code after saying what
 * went wrong. */
static int greet(struct conn *k)
{
	Plugbox__Envelope *hello = NULL;
	char why[256] = "";
	int r, code = 0;

	r = read_envelope(k, &hello, why, sizeof(why));
	if (r == 0 && hello->body_case != PLUGBOX__ENVELOPE__BODY_HELLO) {
		snprintf(why, sizeof(why), "its first message is not a Hello");
		r = -EBADMSG;
	}
	if (r < 0) {
		code = trouble(k, r, why, "greeting");
	} else if (hello->hello->protocol_version != PB_SERVE_PROTOCOL_VERSION) {
		fprintf(stderr, "plugbox: the daemon at %s speaks protocol version %u; this plugbox speaks version %d\n",
		        k->path, hello->hello->protocol_version, PB_SERVE_PROTOCOL_VERSION);
		code = PB_EXIT_WORKER;
	}
	if (hello)
		pb_envelope_free(hello);
	return code;
}

static int open_conn(struct conn *k)
{
	int code = open_only(k);

	return code ? code : greet(k);
}

static void close_conn(struct conn *k)
{
	pb_frame_reader_free(&k->rd);
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
}

int pb_serve_call(const struct pb_cli_call *c)
{
	struct conn k = { .fd = -1, .path = c->o.socket };
	char why[256] = "";
	int r, code;

	if (c->o.timeout_given)
		k.deadline = now() + c->o.timeout + ANSWER_SLACK;
	code = open_only(&k);
	if (code)
		goto out;
	/* The call goes before the Hello is read: the daemon then finds it
	 * when it greets, and one round trip (two wake-ups of each side, most
	 * of a call's cost on a busy machine) is saved. Every daemon greets
	 * with version 1 first, whatever it speaks later. */
	r = send_call(&k, c);
	if (r == -EMSGSIZE) {
		fprintf(stderr, "plugbox: the call is larger than a frame may be (%u bytes)\n", PB_FRAME_MAX_DEFAULT);
		code = PB_EXIT_USAGE;
		goto out;
	}
	/* A daemon that refused us closed before greeting: say so as such. */
	code = greet(&k);
	if (code)
		goto out;
	code = r < 0 ? trouble(&k, r, why, "sending the call") : answer(&k, c);
out:
	close_conn(&k);
	return code;
}

/* ---- plugbox list --socket ------------------------------------------------- */

static int send_env(struct conn *k, const Plugbox__Envelope *env)
{
	uint8_t *frame;
	size_t len;
	int r = pb_envelope_pack(env, PB_FRAME_MAX_DEFAULT, &frame, &len);

	if (r < 0)
		return r;
	r = write_all(k, frame, len);
	free(frame);
	return r;
}

static int put_str(pb_value *m, const char *key, const char *s)
{
	pb_value *k = pb_value_new_string(key), *v = pb_value_new_string(s);
	if (!k || !v || pb_value_map_set(m, k, v) < 0) {
		pb_value_destroy(k);
		pb_value_destroy(v);
		return -ENOMEM;
	}
	return 0;
}

static int put_int(pb_value *m, const char *key, int64_t v)
{
	pb_value *k = pb_value_new_string(key), *val = pb_value_new_int(v);

	if (!k || !val || pb_value_map_set(m, k, val) < 0) {
		pb_value_destroy(k);
		pb_value_destroy(val);
		return -1;
	}
	return 0;
}

static int put_list(pb_value *m, const char *key, char **items, size_t n)
{
	pb_value *k = pb_value_new_string(key), *l = pb_value_new_list();

	for (size_t i = 0; l && i < n; i++) {
		pb_value *v = pb_value_new_string(items[i]);
		if (!v || pb_value_list_append(l, v) < 0) {
			pb_value_destroy(v);
			pb_value_destroy(l);
			l = NULL;
		}
	}
	if (!k || !l || pb_value_map_set(m, k, l) < 0) {
		pb_value_destroy(k);
		pb_value_destroy(l);
		return -ENOMEM;
	}
	return 0;
}

/* A PluginInfo as pb_describe's map, key for key in its order, so that
 * both lists print alike. */
static pb_value *info_value(const Plugbox__PluginInfo *in)
{
	pb_value *m = pb_value_new_map(), *eps = pb_value_new_list(), *k = pb_value_new_string("entry_points");
	int bad = !m || !eps || !k;

	for (size_t i = 0; !bad && i < in->n_entry_points; i++) {
		pb_value *ep = pb_value_new_map();
		bad = !ep || put_str(ep, "group", in->entry_points[i]->group) < 0 ||
		      put_str(ep, "name", in->entry_points[i]->name) < 0 ||
		      put_str(ep, "value", in->entry_points[i]->value) < 0 || pb_value_list_append(eps, ep) < 0;
		if (bad)
			pb_value_destroy(ep);
	}
	if (bad || pb_value_map_set(m, k, eps) < 0) {
		pb_value_destroy(k);
		pb_value_destroy(eps);
		pb_value_destroy(m);
		return NULL;
	}
	if (put_str(m, "name", in->name) < 0 || put_str(m, "layout", in->layout) < 0 ||
	    put_str(m, "version", in->version) < 0 || put_list(m, "exports", in->exports, in->n_exports) < 0 ||
	    put_list(m, "sys_path", in->sys_path, in->n_sys_path) < 0 ||
	    put_list(m, "layers", in->layers, in->n_layers) < 0 || put_str(m, "policy_file", in->policy_file) < 0 ||
	    put_int(m, "priority", in->priority) < 0) {
		pb_value_destroy(m);
		return NULL;
	}
	return m;
}

/* Describes in flight at once: well inside the daemon's 64. */
#define LIST_WINDOW 32

static int send_describe(struct conn *k, uint64_t id, const char *plugin)
{
	Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT;
	Plugbox__DescribeRequest d = PLUGBOX__DESCRIBE_REQUEST__INIT;

	d.plugin = (char *)plugin;
	env.id = id;
	env.body_case = PLUGBOX__ENVELOPE__BODY_DESCRIBE;
	env.describe = &d;
	return send_env(k, &env);
}

/* The next answer, which must be for an id in [lo, hi): the envelope, or
 * NULL with the exit code in *code after saying what went wrong (an id-0
 * error is the daemon refusing). */
static Plugbox__Envelope *expect(struct conn *k, uint64_t lo, uint64_t hi, const char *doing, int *code)
{
	Plugbox__Envelope *env = NULL;
	char why[256] = "";
	int r = read_envelope(k, &env, why, sizeof(why));

	*code = PB_EXIT_WORKER;
	if (r < 0 || !env) {
		*code = trouble(k, r < 0 ? r : -EBADMSG, why, doing);
		return NULL;
	}
	if (env->id == 0 && env->body_case == PLUGBOX__ENVELOPE__BODY_ERROR) {
		char *shown = pb_sanitize_dup(env->error->message, 0);
		fprintf(stderr, "plugbox: the daemon at %s refused (%s): %s\n", k->path, doing, shown ? shown : "?");
		free(shown);
		pb_envelope_free(env);
		return NULL;
	}
	if (env->id < lo || env->id >= hi) {
		pb_envelope_free(env);
		*code = trouble(k, -EBADMSG, "an answer to a request it was not asked", doing);
		return NULL;
	}
	*code = 0;
	return env;
}

int pb_serve_list(const struct pb_cli_options *o)
{
	struct conn k = { .fd = -1, .path = o->socket };
	Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT, *got = NULL, *list = NULL;
	Plugbox__Hello hello = PLUGBOX__HELLO__INIT;
	Plugbox__ListRequest req = PLUGBOX__LIST_REQUEST__INIT;
	Plugbox__Envelope **answers = NULL;
	size_t n = 0, sent = 0, received = 0;
	bool first = true;
	int code = open_conn(&k), r;

	if (code)
		goto out;
	/* Version 2, then the list, in one go. */
	hello.protocol_version = 2;
	env.body_case = PLUGBOX__ENVELOPE__BODY_HELLO;
	env.hello = &hello;
	if ((r = send_env(&k, &env)) < 0) {
		code = trouble(&k, r, "", "asking for protocol version 2");
		goto out;
	}
	env.id = 1;
	env.body_case = PLUGBOX__ENVELOPE__BODY_LIST;
	env.list = &req;
	if ((r = send_env(&k, &env)) < 0) {
		code = trouble(&k, r, "", "asking for the list");
		goto out;
	}
	if (!(got = expect(&k, 0, 1, "asking for protocol version 2", &code)))
		goto out;
	if (got->body_case != PLUGBOX__ENVELOPE__BODY_HELLO || got->hello->protocol_version < 2) {
		fprintf(stderr, "plugbox: the daemon at %s does not speak protocol version 2, which list --socket needs\n",
		        k.path);
		code = PB_EXIT_WORKER;
		goto out;
	}
	if (!(list = expect(&k, 1, 2, "asking for the list", &code)))
		goto out;
	if (list->body_case != PLUGBOX__ENVELOPE__BODY_PLUGINS) {
		code = trouble(&k, -EBADMSG, "the answer to List is not a PluginList", "asking for the list");
		goto out;
	}
	n = list->plugins->n_plugins;
	if (n && !(answers = calloc(n, sizeof(*answers)))) {
		fprintf(stderr, "plugbox: out of memory\n");
		code = PB_EXIT_WORKER;
		goto out;
	}
	/* Describe i has id i + 2; answers come in the order workers start. */
	while (received < n) {
		Plugbox__Envelope *a = NULL;
		while (sent < n && sent - received < LIST_WINDOW)
			if ((r = send_describe(&k, sent + 2, list->plugins->plugins[sent]->name)) < 0) {
				code = trouble(&k, r, "", "asking for a description");
				goto out;
			} else
				sent++;
		if (!(a = expect(&k, 2, n + 2, "waiting for a description", &code)))
			goto out;
		if (answers[a->id - 2]) {
			pb_envelope_free(a);
			code = trouble(&k, -EBADMSG, "two answers to one request", "waiting for a description");
			goto out;
		}
		answers[a->id - 2] = a;
		received++;
	}
	if (o->json)
		putchar('[');
	for (size_t i = 0; i < n; i++) {
		const Plugbox__Envelope *a = answers[i];
		if (a->body_case == PLUGBOX__ENVELOPE__BODY_PLUGIN_INFO) {
			pb_value *info = info_value(a->plugin_info);
			if (!info) {
				fprintf(stderr, "plugbox: out of memory\n");
				code = PB_EXIT_WORKER;
				continue;
			}
			pb_cli_list_entry(list->plugins->plugins[i]->name, info, o->json, &first);
			pb_value_destroy(info);
		} else if (a->body_case == PLUGBOX__ENVELOPE__BODY_ERROR) {
			const Plugbox__Error *e = a->error;
			pb_error_kind kind = e->kind >= (int)PB_ERROR_EXCEPTION && e->kind <= (int)PB_ERROR_BAD_REQUEST
			                             ? (pb_error_kind)e->kind
			                             : PB_ERROR_PROTOCOL;
			int c = pb_report_failure(kind, *e->plugin ? e->plugin : list->plugins->plugins[i]->name, e->type,
			                          e->message, e->traceback);
			if (c > code)
				code = c;
		} else {
			code = trouble(&k, -EBADMSG, "the answer to Describe is neither a PluginInfo nor an error",
			               "waiting for a description");
		}
	}
	if (o->json)
		puts("]");
	if (fflush(stdout) != 0 && code == 0)
		code = PB_EXIT_WORKER;
out:
	for (size_t i = 0; answers && i < n; i++)
		if (answers[i])
			pb_envelope_free(answers[i]);
	free(answers);
	if (got)
		pb_envelope_free(got);
	if (list)
		pb_envelope_free(list);
	close_conn(&k);
	return code;
}

/* ---- plugbox stats --socket ----------------------------------------------------- */

/* The metrics socket speaks no protocol: it writes its text and closes. */
#define STATS_MAX (64u << 20)
#define STATS_WAIT 10.0

int pb_cmd_stats(int argc, char **argv)
{
	struct pb_cli_options o;
	struct conn k = { .fd = -1, .deadline = 0 };
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int code = pb_parse_options(argc, argv, PB_OPT_SOCKET, &o), r;

	if (code >= 0)
		return code;
	if (optind != argc)
		return pb_usage_error("unexpected argument '%s'", argv[optind]);
	if (!o.socket)
		return pb_usage_error("%s needs --socket PATH (the daemon's --metrics PATH)", argv[0]);
	k.path = o.socket;
	k.deadline = now() + STATS_WAIT;
	if ((r = connect_to(&k)) < 0) {
		fprintf(stderr, "plugbox: cannot reach the daemon's metrics at %s: %s\n", k.path, strerror(-r));
		return PB_EXIT_WORKER;
	}
	for (;;) {
		ssize_t n;
		if (len == cap) {
			char *grown = cap < STATS_MAX ? realloc(buf, cap ? cap * 2 : 65536) : NULL;
			if (!grown) {
				fprintf(stderr, "plugbox: the metrics at %s are larger than %u MiB\n", k.path, STATS_MAX >> 20);
				code = PB_EXIT_WORKER;
				break;
			}
			buf = grown;
			cap = cap ? cap * 2 : 65536;
		}
		n = read(k.fd, buf + len, cap - len);
		if (n > 0) {
			len += (size_t)n;
			continue;
		}
		if (n == 0) {
			code = fwrite(buf, 1, len, stdout) == len && fflush(stdout) == 0 ? PB_EXIT_OK : PB_EXIT_WORKER;
			break;
		}
		if (errno == EINTR)
			continue;
		r = errno == EAGAIN || errno == EWOULDBLOCK ? wait_for(&k, POLLIN) : -errno;
		if (r == 0)
			continue;
		fprintf(stderr, "plugbox: the daemon's metrics at %s: %s\n", k.path,
		        r == -ETIMEDOUT ? "no answer in time" : strerror(-r));
		code = PB_EXIT_WORKER;
		break;
	}
	free(buf);
	close(k.fd);
	return code;
}

/* ---- plugbox call-all --socket ------------------------------------------------ */

int pb_serve_call_all(const struct pb_cli_options *o, pb_value **args, size_t nargs, const pb_hook_options *ho)
{
	struct conn k = { .fd = -1, .path = o->socket };
	Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT, henv = PLUGBOX__ENVELOPE__INIT, *got = NULL;
	Plugbox__Hello hello = PLUGBOX__HELLO__INIT;
	Plugbox__HookRequest rq = PLUGBOX__HOOK_REQUEST__INIT;
	char why[256] = "", where[600];
	int r, code;

	if (o->timeout_given)
		k.deadline = now() + o->timeout + ANSWER_SLACK;
	if ((code = open_conn(&k)))
		goto out;
	output_hello(&henv, &hello);
	rq.group = (char *)o->group;
	rq.args = (Plugbox__Value **)args;
	rq.n_args = nargs;
	rq.timeout = o->timeout_given ? o->timeout : 0;
	rq.first_result = (ho->flags & PB_HOOK_FIRST_RESULT) != 0;
	rq.concurrent = (ho->flags & PB_HOOK_CONCURRENT) != 0;
	rq.allow_unknown = (ho->flags & PB_HOOK_ALLOW_UNKNOWN) != 0;
	rq.order = (Plugbox__HookOrder)ho->order;
	rq.plugins = (char **)ho->plugins;
	rq.n_plugins = ho->nplugins;
	env.id = 1;
	env.body_case = PLUGBOX__ENVELOPE__BODY_HOOK;
	env.hook = &rq;
	if ((r = send_env(&k, &henv)) < 0 || (r = send_env(&k, &env)) < 0) {
		code = r == -EMSGSIZE ? (fprintf(stderr, "plugbox: the arguments are larger than a frame may be\n"),
		                         PB_EXIT_USAGE)
		                      : trouble(&k, r, why, "sending the hook");
		goto out;
	}
	for (;;) {
		if ((r = read_envelope(&k, &got, why, sizeof(why))) < 0) {
			code = trouble(&k, r, why, "waiting for the answers");
			goto out;
		}
		if (got->id == 0 && got->body_case == PLUGBOX__ENVELOPE__BODY_OUTPUT)
			show_output(got->output);
		else if (!(got->id == 0 && got->body_case == PLUGBOX__ENVELOPE__BODY_HELLO))
			break;
		pb_envelope_free(got);
		got = NULL;
	}
	if (got->body_case == PLUGBOX__ENVELOPE__BODY_HOOK_RESULTS && got->id == 1) {
		const Plugbox__HookResults *hr = got->hook_results;
		struct pb_cli_answer *a = calloc(hr->n_answers ? hr->n_answers : 1, sizeof(*a));

		if (!a) {
			fprintf(stderr, "plugbox: out of memory\n");
			code = PB_EXIT_WORKER;
			goto out;
		}
		for (size_t i = 0; i < hr->n_answers; i++) {
			const Plugbox__HookAnswer *h = hr->answers[i];
			a[i].plugin = h->plugin;
			a[i].name = h->name;
			if (h->outcome_case == PLUGBOX__HOOK_ANSWER__OUTCOME_ERROR) {
				const Plugbox__Error *e = h->error;
				a[i].kind = e->kind >= (int)PB_ERROR_EXCEPTION && e->kind <= (int)PB_ERROR_CANCELLED
				                    ? (pb_error_kind)e->kind
				                    : PB_ERROR_PROTOCOL;
				a[i].type = e->type;
				a[i].message = e->message;
				a[i].traceback = e->traceback;
			} else {
				a[i].value = (const pb_value *)h->value;
			}
		}
		snprintf(where, sizeof(where), "the plugins of the daemon at %s", k.path);
		code = pb_cli_print_answers(a, hr->n_answers, where, o->group);
		free(a);
	} else if (got->body_case == PLUGBOX__ENVELOPE__BODY_ERROR && got->id == 1 &&
	           (got->error->kind == PLUGBOX__ERROR_KIND__ERROR_KIND_NOT_FOUND ||
	            got->error->kind == PLUGBOX__ERROR_KIND__ERROR_KIND_BAD_REQUEST)) {
		char *shown = pb_sanitize_dup(o->group, 0), *msg = pb_sanitize_dup(got->error->message, 0);
		/* As the local command says it: the daemon's words after "hook 1: ". */
		const char *m = msg ? msg : "?";
		if (!strncmp(m, "hook 1: ", 8))
			m += 8;
		fprintf(stderr, "plugbox: --group %s: %s\n", shown ? shown : "?", m);
		free(shown);
		free(msg);
		code = PB_EXIT_USAGE;
	} else if (got->body_case == PLUGBOX__ENVELOPE__BODY_ERROR && (got->id == 1 || got->id == 0)) {
		const Plugbox__Error *e = got->error;
		pb_error_kind kind = e->kind >= (int)PB_ERROR_EXCEPTION && e->kind <= (int)PB_ERROR_CANCELLED
		                             ? (pb_error_kind)e->kind
		                             : PB_ERROR_PROTOCOL;
		code = pb_report_failure(kind, "", e->type, e->message, e->traceback);
	} else {
		code = trouble(&k, -EBADMSG, "an answer it was not asked for", "waiting for the answers");
	}
out:
	if (got)
		pb_envelope_free(got);
	close_conn(&k);
	return code;
}
