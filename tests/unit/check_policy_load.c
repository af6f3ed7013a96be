/* check_policy_load.c - the policy loading API without running anything:
 * what a user with a bad policy is told, the order includes give rules, and
 * the @host-call grants a policy carries. check_policy.c loads policies
 * into the kernel. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <termios.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "policy/policy.h"
#include "policy_testlib.h"

/* ---- the loading API ------------------------------------------------------- */

START_TEST(errors_are_reported_and_refused)
{
	struct diag d = { .len = 0 };
	struct pb_policy *p = (struct pb_policy *)1;
	char exp[1024];

	ck_assert_int_eq(pb_policy_load(tmpdir, "../x", collect, &d, &p), -EINVAL);
	ck_assert_ptr_null(p);
	ck_assert_int_eq(d.errors, 1);
	snprintf(exp, sizeof(exp), "%s: policy name '../x' has characters outside [A-Za-z0-9_-]\n", tmpdir);
	ck_assert_str_eq(d.text, exp);

	memset(&d, 0, sizeof(d));
	write_policy("bad", FLOOR "getpid: 1\nfoo: 1\ngetpid: return EPERM\nioctl: arg1 == TIOCFOO\n");
	ck_assert_int_eq(pb_policy_load(tmpdir, "bad", collect, &d, &p), -EINVAL);
	remove_policy("bad");
	ck_assert_ptr_null(p);
	ck_assert_int_eq(d.errors, 3);
	snprintf(exp, sizeof(exp),
	         "%1$s/bad.policy:6:1: unknown syscall 'foo'; did you mean 'fork'?\n"
	         "%1$s/bad.policy:7:1: 'getpid' is already decided without conditions at line 5; "
	         "this rule would never be reached\n"
	         "%1$s/bad.policy:8:16: unknown constant 'TIOCFOO'\n",
	         tmpdir);
	ck_assert_str_eq(d.text, exp);

	memset(&d, 0, sizeof(d));
	ck_assert_int_eq(pb_policy_load(tmpdir, "missing", collect, &d, &p), -ENOENT);
	ck_assert_int_eq(d.errors, 1);
}
END_TEST

/* An including file's rules come first; the included file's rules follow. */
START_TEST(include_order)
{
	struct diag d = { .len = 0 };
	struct pb_policy *p = NULL;
	uint64_t args[6] = { (uint64_t)-1, FIONREAD };
	const struct pb_entry *e;
	struct pb_action a;

	write_policy("base", FLOOR "@default errno ESTALE\nioctl: arg1 == FIONREAD; return ENOTTY\n");
	write_policy("top", "ioctl: arg1 == FIONREAD => return EPERM\n@include base\n");
	ck_assert_int_eq(pb_policy_load(tmpdir, "top", collect, &d, &p), 0);
	remove_policy("base");
	remove_policy("top");
	e = pb_policy_match(p, SYS_ioctl, args, 1, false, &a);
	ck_assert_int_eq(a.kind, PB_ACT_ERRNO);
	ck_assert_int_eq(a.err, EPERM);
	ck_assert(ends_with(e->where.file, "/top.policy"));
	args[1] = TCGETS;
	e = pb_policy_match(p, SYS_ioctl, args, 1, false, &a);
	ck_assert_int_eq(a.err, ENOTTY);
	ck_assert(ends_with(e->where.file, "/base.policy"));
	ck_assert_int_eq(p->dflt.err, ESTALE);
	ck_assert(ends_with(p->dflt_where.file, "/base.policy"));
	pb_policy_free(p);
}
END_TEST

/* ---- host functions ------------------------------------------------------------ */

/* @host-call grants add up across includes, the includer's first; a name
 * both files grant keeps the includer's place. @after-start changes nothing. */
START_TEST(host_call_grants)
{
	static const struct {
		const char *name, *file;
		unsigned line, col;
	} want[] = {
		{ "recurse", "/top.policy", 1, 12 },
		{ "add", "/top.policy", 3, 14 },
		{ "log_line", "/base.policy", 5, 12 },
		{ "_private", "/base.policy", 7, 12 },
	};
	struct diag d = { .len = 0 };
	struct pb_policy *p = NULL;

	write_policy("base", FLOOR "@host-call log_line add\n@after-start\n@host-call _private\n");
	write_policy("top", "@host-call recurse\n@include base\n  @host-call\tadd\n");
	ck_assert_msg(pb_policy_load(tmpdir, "top", collect, &d, &p) == 0, "%s", d.text);
	remove_policy("base");
	remove_policy("top");
	ck_assert_uint_eq(p->sandbox.ngrants, 4);
	for (size_t i = 0; i < 4; i++) {
		const struct pb_grant *g = pb_policy_host_grant(p, want[i].name);
		ck_assert_ptr_eq(g, &p->sandbox.grants[i]);
		ck_assert_msg(ends_with(g->where.file, want[i].file), "%s: %s", want[i].name, g->where.file);
		ck_assert_uint_eq(g->where.line, want[i].line);
		ck_assert_uint_eq(g->where.col, want[i].col);
	}
	ck_assert_ptr_null(pb_policy_host_grant(p, "Add")); /* no such grant */
	ck_assert_ptr_null(pb_policy_host_grant(NULL, "add"));
	pb_policy_free(p);
}
END_TEST

/* @network connect: the destinations, the addresses a worker's connect is
 * judged by (a hostile sockaddr too), and the rules put before the policy. */
START_TEST(network_connect)
{
	struct diag d = { 0 };
	struct pb_policy *p = NULL;
	struct pb_net_addr a;
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons(8080) };
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons(8080) };
	char text[PB_NET_ADDR_TEXT];

	write_policy("base", FLOOR "@network connect 10.1.2.3:443\n");
	write_policy("top", "@network connect 127.0.0.1:8080\n@network connect [::1]:8080\n@include base\n");
	ck_assert_msg(pb_policy_load(tmpdir, "top", collect, &d, &p) == 0, "%s", d.text);
	remove_policy("base");
	remove_policy("top");
	ck_assert_int_eq(p->sandbox.network, PB_NETWORK_CONNECT);
	ck_assert_uint_eq(p->sandbox.ndests, 3);
	ck_assert_str_eq(p->sandbox.dests[1].host, "::1");
	ck_assert_str_eq(p->sandbox.dests[2].host, "10.1.2.3"); /* the including file's first */
	ck_assert_int_eq(pb_policy_resolve(p), 0);
	for (size_t i = 0; i < 3; i++)
		ck_assert_uint_eq(p->sandbox.dests[i].naddrs, 1);

	/* hostile lengths and families */
	ck_assert_int_eq(pb_net_addr_parse(&in, 1, &a), -EINVAL);
	ck_assert_int_eq(pb_net_addr_parse(&in, sizeof(in) - 1, &a), -EINVAL);
	ck_assert_int_eq(pb_net_addr_parse(&in6, 23, &a), -EINVAL);
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	ck_assert_int_eq(pb_net_addr_parse(&un, sizeof(un), &a), -EAFNOSUPPORT);

	inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
	ck_assert_int_eq(pb_net_addr_parse(&in, sizeof(in), &a), 0);
	ck_assert_ptr_eq(pb_net_allowed(&p->sandbox, &a), &p->sandbox.dests[0]);
	in.sin_port = htons(8081);
	ck_assert_int_eq(pb_net_addr_parse(&in, sizeof(in), &a), 0);
	ck_assert_ptr_null(pb_net_allowed(&p->sandbox, &a));
	ck_assert_str_eq(pb_net_addr_format(&a, text, sizeof(text)), "127.0.0.1:8081");
	inet_pton(AF_INET, "127.0.0.2", &in.sin_addr);
	in.sin_port = htons(8080);
	ck_assert_int_eq(pb_net_addr_parse(&in, sizeof(in), &a), 0);
	ck_assert_ptr_null(pb_net_allowed(&p->sandbox, &a));
	/* the IPv4-mapped form is the IPv4 address, allowed or not */
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &in6.sin6_addr);
	ck_assert_int_eq(pb_net_addr_parse(&in6, 24, &a), 0); /* the older form, no scope id */
	ck_assert_int_eq(a.family, AF_INET);
	ck_assert_ptr_eq(pb_net_allowed(&p->sandbox, &a), &p->sandbox.dests[0]);
	inet_pton(AF_INET6, "::ffff:127.0.0.2", &in6.sin6_addr);
	ck_assert_int_eq(pb_net_addr_parse(&in6, sizeof(in6), &a), 0);
	ck_assert_ptr_null(pb_net_allowed(&p->sandbox, &a));
	inet_pton(AF_INET6, "::1", &in6.sin6_addr);
	ck_assert_int_eq(pb_net_addr_parse(&in6, sizeof(in6), &a), 0);
	ck_assert_ptr_eq(pb_net_allowed(&p->sandbox, &a), &p->sandbox.dests[1]);
	ck_assert_str_eq(pb_net_addr_format(&a, text, sizeof(text)), "[::1]:8080");

	/* socket(2): TCP over IPv4 or IPv6 only */
	const struct {
		uint64_t family, type, proto;
		bool allowed;
	} sockets[] = {
		{ AF_INET, SOCK_STREAM, 0, true },
		{ AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP, true },
		{ AF_INET, SOCK_DGRAM, 0, false },
		{ AF_INET, SOCK_RAW, IPPROTO_TCP, false },
		{ AF_INET, SOCK_SEQPACKET, 0, false },
		{ AF_INET, SOCK_STREAM, 132 /* SCTP */, false },
		{ AF_INET, SOCK_STREAM | 0x100, 0, false },
		{ AF_UNIX, SOCK_STREAM, 0, false },
		{ AF_PACKET, SOCK_RAW, 0, false },
		{ AF_NETLINK, SOCK_RAW, 0, false },
	};
	for (size_t i = 0; i < sizeof(sockets) / sizeof(sockets[0]); i++) {
		const uint64_t args[6] = { sockets[i].family, sockets[i].type, sockets[i].proto };
		const struct pb_entry *e = pb_policy_net_entry(p, __NR_socket, args);
		ck_assert_msg((e && e->action.kind == PB_ACT_ALLOW) == sockets[i].allowed, "socket #%zu", i);
	}
	const uint64_t any[6] = { 3 };
	const struct pb_entry *e = pb_policy_net_entry(p, __NR_connect, any);
	ck_assert(e && e->action.kind == PB_ACT_LOG);

	char *hosts = pb_net_hosts_text(&p->sandbox);
	ck_assert_ptr_nonnull(strstr(hosts, "127.0.0.1\tlocalhost\n"));
	ck_assert_ptr_null(strstr(hosts, "10.1.2.3")); /* a literal needs no line */
	free(hosts);
	pb_policy_free(p);
}
END_TEST

/* A destination longer than a host may be, with room for it in the token
 * that holds port and brackets too: refused for its length, and nothing is
 * copied past the host's buffer (parse_dest wrote up to 14 bytes past it;
 * the sanitizer build saw the stack overflow, this build the wrong error). */
START_TEST(network_connect_host_too_long)
{
	static const struct {
		const char *before, *after;
		size_t n;
		const char *want;
	} cases[] = {
		{ "", "bbbbbbbbbbbbbb:80", 250, ":1:18: @network connect: a host name is at most 253 bytes\n" },
		{ "", ":80", PB_NET_HOST_MAX + 1, ":1:18: @network connect: a host name is at most 253 bytes\n" },
		{ "[", "]:80", 263, ":1:19: @network connect: a host is at most 253 bytes\n" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct diag d = { 0 };
		struct pb_policy *p = NULL;
		char text[1024], want[1024];

		snprintf(text, sizeof(text), "@network connect %s%0*d%s\n", cases[i].before, (int)cases[i].n, 0,
		         cases[i].after);
		memset(text + strlen("@network connect ") + strlen(cases[i].before), 'a', cases[i].n);
		write_policy("long", text);
		ck_assert_int_eq(pb_policy_load(tmpdir, "long", collect, &d, &p), -EINVAL);
		remove_policy("long");
		ck_assert_ptr_null(p);
		ck_assert_int_eq(d.errors, 1);
		snprintf(want, sizeof(want), "%s/long.policy%s", tmpdir, cases[i].want);
		ck_assert_str_eq(d.text, want);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("policy_load");
	TCase *tc = tcase_create("policy_load");
	SRunner *sr;
	int failed;

	if (policy_test_tmpdir("check_policy_load") < 0)
		return 1;
	tcase_add_test(tc, errors_are_reported_and_refused);
	tcase_add_test(tc, include_order);
	tcase_add_test(tc, host_call_grants);
	tcase_add_test(tc, network_connect);
	tcase_add_test(tc, network_connect_host_too_long);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
