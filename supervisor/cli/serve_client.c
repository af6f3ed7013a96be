/* serve_client.c - `plugbox call --socket PATH`: one call through a running
 * `plugbox serve` (the control protocol is described in serve.c). Its output
 * and exit codes are those of a local `plugbox call`; failing to reach or
 * understand the daemon exits 4, like a worker that died.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
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
#include "cli/plugbox_cli.h"

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
			r = pb_envelope_decode(payload, len, env, why, why_len);
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

static int send_call(struct conn *k, const struct pb_cli_call *c)
{
	Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT;
	Plugbox__Call call = PLUGBOX__CALL__INIT;
	uint8_t *frame;
	size_t len;
	int r;

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
	r = write_all(k, frame, len);
	free(frame);
	return r;
}

/* The daemon's answer to call 1, printed; returns the exit code. */
static int answer(struct conn *k, const struct pb_cli_call *c)
{
	Plugbox__Envelope *env;
	char why[256] = "";
	int r = read_envelope(k, &env, why, sizeof(why)), code;

	if (r < 0)
		return trouble(k, r, why, "waiting for the answer");
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

int pb_serve_call(const struct pb_cli_call *c)
{
	struct conn k = { .fd = -1, .path = c->o.socket };
	Plugbox__Envelope *hello = NULL;
	char why[256] = "";
	int r, code;

	if (c->o.timeout_given)
		k.deadline = now() + c->o.timeout + ANSWER_SLACK;
	pb_frame_reader_init(&k.rd, PB_FRAME_MAX_DEFAULT);
	r = connect_to(&k);
	if (r < 0) {
		fprintf(stderr, "plugbox: cannot reach the daemon at %s: %s\n", k.path, strerror(-r));
		code = PB_EXIT_WORKER;
		goto out;
	}
	r = read_envelope(&k, &hello, why, sizeof(why));
	if (r == 0 && hello->body_case != PLUGBOX__ENVELOPE__BODY_HELLO) {
		snprintf(why, sizeof(why), "its first message is not a Hello");
		r = -EBADMSG;
	}
	if (r < 0) {
		code = trouble(&k, r, why, "greeting");
		goto out;
	}
	if (hello->hello->protocol_version != PB_SERVE_PROTOCOL_VERSION) {
		fprintf(stderr, "plugbox: the daemon at %s speaks protocol version %u; this plugbox speaks version %d\n",
		        k.path, hello->hello->protocol_version, PB_SERVE_PROTOCOL_VERSION);
		code = PB_EXIT_WORKER;
		goto out;
	}
	r = send_call(&k, c);
	if (r == -EMSGSIZE) {
		fprintf(stderr, "plugbox: the call is larger than a frame may be (%u bytes)\n", PB_FRAME_MAX_DEFAULT);
		code = PB_EXIT_USAGE;
	} else if (r < 0) {
		code = trouble(&k, r, why, "sending the call");
	} else {
		code = answer(&k, c);
	}
out:
	if (hello)
		pb_envelope_free(hello);
	pb_frame_reader_free(&k.rd);
	if (k.fd >= 0)
		close(k.fd);
	return code;
}
