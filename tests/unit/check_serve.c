/* check_serve.c - unit tests for what `plugbox serve` keeps per daemon
 * when a step fails half way: the host function names a client offers
 * (supervisor/cli/serve_route.c, pb_serve_offer).
 *
 * The daemon is set up as tests/fuzz/fuzz_serve.c does (a supervisor over
 * an empty plugins directory, one client on a socketpair), and
 * pb_supervisor_register is wrapped (-Wl,--wrap, Makefile.am) so that it
 * can fail as it does when out of memory: the daemon must then neither
 * count the name nor take it for registered, so that a later offer of the
 * same name registers it.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/serve.h"
#include "plugbox.h"
#include "proto/frame.h"

int __real_pb_supervisor_register(pb_supervisor *sup, const char *name, pb_host_fn fn, void *userdata);
int __wrap_pb_supervisor_register(pb_supervisor *sup, const char *name, pb_host_fn fn, void *userdata);

static struct {
	int fail_with; /* the next call returns this, once (0: none) */
	unsigned calls, registered;
	char last[128];
} reg;

int __wrap_pb_supervisor_register(pb_supervisor *sup, const char *name, pb_host_fn fn, void *userdata)
{
	int r = reg.fail_with;

	reg.calls++;
	snprintf(reg.last, sizeof(reg.last), "%s", name);
	if (r) {
		reg.fail_with = 0;
		return r;
	}
	r = __real_pb_supervisor_register(sup, name, fn, userdata);
	reg.registered += r == 0;
	return r;
}

static void quiet(void *userdata, const char *plugin, pb_stream stream, const char *line)
{
	(void)userdata;
	(void)plugin;
	(void)stream;
	(void)line;
}

struct daemon {
	char dir[64];
	struct pb_serve srv;
	struct pb_serve_client *c;
	int peer;
	struct pb_frame_reader rd;
};

static void daemon_start(struct daemon *d)
{
	int sv[2];

	memset(d, 0, sizeof(*d));
	snprintf(d->dir, sizeof(d->dir), "/tmp/pb-check-serve-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(d->dir));
	d->srv.ep = epoll_create1(EPOLL_CLOEXEC);
	d->srv.listen_fd = d->srv.sig_fd = -1;
	d->srv.euid = geteuid();
	ck_assert_int_ge(d->srv.ep, 0);
	ck_assert_int_eq(pb_supervisor_new(d->dir, &d->srv.sup), 0);
	pb_supervisor_set_output(d->srv.sup, quiet, NULL);
	pb_serve_route_setup(&d->srv);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	pb_serve_add_client(&d->srv, sv[0], getpid());
	ck_assert_ptr_nonnull(d->srv.clients);
	d->c = d->srv.clients;
	d->peer = sv[1];
	pb_frame_reader_init(&d->rd, PB_FRAME_MAX_DEFAULT);
	memset(&reg, 0, sizeof(reg));
}

static void daemon_stop(struct daemon *d)
{
	while (d->srv.clients)
		pb_serve_client_drop(d->srv.clients);
	pb_supervisor_free(d->srv.sup);
	pb_serve_bury(&d->srv);
	pb_serve_route_free(&d->srv);
	close(d->srv.ep);
	pb_frame_reader_free(&d->rd);
	close(d->peer);
	rmdir(d->dir);
}

/* The next answer to the client, skipping the daemon's first Hello. */
static Plugbox__Envelope *answer(struct daemon *d)
{
	for (int tries = 0; tries < 1000; tries++) {
		uint8_t *payload;
		uint32_t len;
		Plugbox__Envelope *env;
		char why[256];
		int rc = pb_frame_read_fd(&d->rd, d->peer);

		if (rc == 0) {
			usleep(1000);
			continue;
		}
		ck_assert_int_eq(rc, 1);
		ck_assert_int_eq(pb_frame_take(&d->rd, &payload, &len), 0);
		ck_assert_int_eq(pb_envelope_decode(payload, len, &env, why, sizeof(why)), 0);
		free(payload);
		if (env->body_case == PLUGBOX__ENVELOPE__BODY_HELLO) {
			pb_envelope_free(env);
			continue;
		}
		return env;
	}
	ck_abort_msg("no answer from the daemon");
	return NULL;
}

/* Offers names[0..n) as message id; the answer must be a Result
 * (kind 0) or an Error of that kind. */
static void offer(struct daemon *d, uint64_t id, char **names, size_t n, int error_kind)
{
	Plugbox__HostFunctions h = PLUGBOX__HOST_FUNCTIONS__INIT;
	Plugbox__Envelope *env;

	h.names = names;
	h.n_names = n;
	pb_serve_offer(d->c, id, &h);
	env = answer(d);
	ck_assert_uint_eq(env->id, id);
	if (error_kind) {
		ck_assert_int_eq(env->body_case, PLUGBOX__ENVELOPE__BODY_ERROR);
		ck_assert_int_eq(env->error->kind, error_kind);
	} else {
		ck_assert_int_eq(env->body_case, PLUGBOX__ENVELOPE__BODY_RESULT);
	}
	pb_envelope_free(env);
}

START_TEST(test_a_name_whose_register_failed_is_registered_by_the_next_offer)
{
	struct daemon d;
	char *names[] = { "alpha" };

	daemon_start(&d);
	reg.fail_with = -ENOMEM; /* what register returns when out of memory */
	offer(&d, 1, names, 1, PLUGBOX__ERROR_KIND__ERROR_KIND_UNAVAILABLE);
	/* neither counted nor held for the daemon or the client */
	ck_assert_uint_eq(d.srv.nnames, 0);
	ck_assert_uint_eq(d.c->nnames, 0);

	/* Offered again: now the library gets it. */
	offer(&d, 2, names, 1, 0);
	ck_assert_uint_eq(reg.calls, 2);
	ck_assert_uint_eq(reg.registered, 1);
	ck_assert_str_eq(reg.last, "alpha");
	ck_assert_uint_eq(d.srv.nnames, 1);
	ck_assert_uint_eq(d.c->nnames, 1);

	/* Once registered, it is not registered again. */
	offer(&d, 3, names, 1, 0);
	ck_assert_uint_eq(reg.calls, 2);
	daemon_stop(&d);
}
END_TEST

START_TEST(test_a_failed_register_leaves_the_names_before_it_and_counts_none_after)
{
	struct daemon d;
	char *names[] = { "first", "second", "third" };

	daemon_start(&d);
	offer(&d, 1, names, 1, 0); /* "first" alone, registered */
	reg.fail_with = -ENOMEM;
	/* "second" fails: "third" is never reached */
	offer(&d, 2, names, 3, PLUGBOX__ERROR_KIND__ERROR_KIND_UNAVAILABLE);
	ck_assert_uint_eq(d.srv.nnames, 1);
	ck_assert_str_eq(d.srv.names[0], "first");
	/* any other refusal of the library's is the client's bad request */
	reg.fail_with = -EINVAL;
	offer(&d, 3, names, 3, PLUGBOX__ERROR_KIND__ERROR_KIND_BAD_REQUEST);
	ck_assert_uint_eq(d.srv.nnames, 1);
	/* and all three, asked once more */
	offer(&d, 4, names, 3, 0);
	ck_assert_uint_eq(d.srv.nnames, 3);
	ck_assert_uint_eq(reg.registered, 3);
	daemon_stop(&d);
}
END_TEST

static Suite *serve_suite(void)
{
	Suite *s = suite_create("serve");
	TCase *tc = tcase_create("host functions");

	tcase_add_test(tc, test_a_name_whose_register_failed_is_registered_by_the_next_offer);
	tcase_add_test(tc, test_a_failed_register_leaves_the_names_before_it_and_counts_none_after);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(serve_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
