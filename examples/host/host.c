/* host.c - a small host program in C over libplugbox, the way an
 * application embeds plugbox:
 *
 *   1. a supervisor over a plugins directory and an operator's policies;
 *   2. a host function (`shout`) that plugins may call back, if their
 *      policy grants it (examples/policies/plug1.policy does, for plug1);
 *   3. one synchronous call, then calls to every plugin at once, answered
 *      through the supervisor's descriptor in the host's own poll loop;
 *   4. errors read as a kind plus a message.
 *
 * Build it against the installed library:
 *   cc host.c $(pkg-config --cflags --libs plugbox) -o host
 *   ./host examples/plugins examples/policies
 */
#define _POSIX_C_SOURCE 200809L /* strdup */

#include <ctype.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <plugbox.h>

/* shout(text) -> TEXT: a host function. It answers at once here; a host
 * could also keep `call` and answer later from its own loop. */
static void shout(void *userdata, pb_host_call *call)
{
	const char *text = pb_value_get_string(pb_host_call_arg(call, 0));
	(void)userdata;
	if (!text || pb_host_call_nargs(call) != 1) {
		pb_host_call_fail(call, "TypeError", "shout() takes one string");
		return;
	}
	char *upper = strdup(text);
	for (char *c = upper; c && *c; c++)
		*c = (char)toupper((unsigned char)*c);
	printf("host: %s asked to shout '%s'\n", pb_host_call_plugin(call), text);
	pb_host_call_return(call, upper ? pb_value_new_string(upper) : NULL);
	free(upper);
}

static void print_outcome(const char *what, const pb_value *result, const pb_error *err)
{
	if (err) {
		printf("%s -> %s error: %s\n", what, pb_error_kind_name(pb_error_get_kind(err)),
		       pb_error_get_message(err));
	} else {
		char *json = pb_value_to_json(result);
		printf("%s -> %s\n", what, json ? json : "(unprintable)");
		free(json);
	}
}

struct pending {
	char what[128];
	int done;
};

/* Runs inside pb_supervisor_dispatch: the result and error are ours. */
static void on_done(void *userdata, uint64_t id, pb_value *result, pb_error *err)
{
	struct pending *p = userdata;
	(void)id;
	print_outcome(p->what, result, err);
	p->done = 1;
	pb_value_destroy(result);
	pb_error_free(err);
}

int main(int argc, char **argv)
{
	pb_supervisor *sup;
	pb_value *result = NULL;
	pb_error *err = NULL;
	char **names;
	size_t n;
	int r;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s PLUGINS_DIR [POLICIES_DIR]\n", argv[0]);
		return 2;
	}
	if ((r = pb_supervisor_new(argv[1], &sup)) < 0) {
		fprintf(stderr, "host: %s: %s\n", argv[1], strerror(-r));
		return 2;
	}
	if (argc == 3 && pb_supervisor_set_policies(sup, argv[2]) < 0) {
		fprintf(stderr, "host: %s\n", pb_supervisor_strerror(sup));
		pb_supervisor_free(sup);
		return 2;
	}
	pb_supervisor_set_timeout(sup, 10);
	pb_supervisor_register(sup, "shout", shout, NULL);

	/* A synchronous call: plug1 calls the host's shout() on the way. */
	pb_value *name = pb_value_new_string("ada");
	if (pb_call(sup, "plug1", "greet_loudly", &name, 1, &result, &err) == 0)
		print_outcome("plug1.greet_loudly(\"ada\")", result, NULL);
	else
		print_outcome("plug1.greet_loudly(\"ada\")", NULL, err);
	pb_value_destroy(result);
	pb_error_free(err);
	pb_value_destroy(name);

	/* Every plugin at once; the host's loop watches one descriptor. */
	if (pb_supervisor_plugins(sup, &names, &n) < 0) {
		fprintf(stderr, "host: %s\n", pb_supervisor_strerror(sup));
		pb_supervisor_free(sup);
		return 2;
	}
	struct pending *pending = calloc(n ? n : 1, sizeof(*pending));
	for (size_t i = 0; pending && i < n; i++) {
		pb_call_spec spec = { .plugin = names[i], .function = "requests_version" };
		snprintf(pending[i].what, sizeof(pending[i].what), "%s.requests_version()", names[i]);
		if (pb_call_start(sup, &spec, on_done, &pending[i], NULL) < 0)
			pending[i].done = 1;
	}
	for (size_t left = n; pending && left > 0;) {
		struct pollfd p = { .fd = pb_supervisor_get_fd(sup), .events = POLLIN };
		if (poll(&p, 1, -1) > 0)
			pb_supervisor_dispatch(sup, 0);
		left = 0;
		for (size_t i = 0; i < n; i++)
			left += !pending[i].done;
	}
	free(pending);
	pb_strv_free(names, n);
	pb_supervisor_free(sup);
	return 0;
}
