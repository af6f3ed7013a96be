/* policy_rules.c - the rules plugbox puts around a policy's own.
 *
 * A policy file says what a plugin's calls may do; some compile modes need
 * rules of plugbox's own beside it, always the same few: the after-start
 * program's seccomp(2) opened and closed again, the listener's hand-over,
 * @network connect's connect(2) and TCP sockets, learn mode's guard, and
 * what a zygote and its children need first. They are data here, each with
 * the text a report shows; policy_compile.c puts them in place, and
 * pb_policy_net_entry / pb_policy_learn_guard find them again for a report.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <linux/seccomp.h>
#include <netinet/in.h>

#include "policy/policy.h"
#include "policy/policy_rules.h"

/* The worker loads the after-start program with seccomp(2) while the
 * start-up program is in force, so that program lets exactly that call
 * through (filters only ever tighten), and the after-start program closes
 * it again. */
static struct pb_atom set_mode_filter_atom = {
	.arg = 0,
	.op = PB_OP_EQ,
	.wide = false,
	.value = SECCOMP_SET_MODE_FILTER,
};
static size_t one_clause = 1;
static struct pb_cond set_mode_filter = {
	.atoms = &set_mode_filter_atom,
	.natoms = 1,
	.clause_end = &one_clause,
	.nclauses = 1,
};

/* Descriptor 5 of the worker: its report socket (worker/worker.h). */
static struct pb_atom report_socket_atom = {
	.arg = 0,
	.op = PB_OP_EQ,
	.wide = false,
	.value = 5,
};
static struct pb_cond report_socket = {
	.atoms = &report_socket_atom,
	.natoms = 1,
	.clause_end = &one_clause,
	.nclauses = 1,
};

const struct pb_entry pb_rule_open_filter = { .nr = __NR_seccomp, .cond = &set_mode_filter, .action = { PB_ACT_ALLOW, 0 }, .text = "seccomp(SECCOMP_SET_MODE_FILTER) for the after-start rules" };
const struct pb_entry pb_rule_close_filter = { .nr = __NR_seccomp, .action = { PB_ACT_ERRNO, EPERM }, .text = "seccomp: return EPERM once started" };
/* The worker hands the listener over with sendmsg on its report socket;
 * were that call itself logged, it would wait for a supervisor that does
 * not hold the listener yet. */
const struct pb_entry pb_rule_handover = { .nr = __NR_sendmsg, .cond = &report_socket, .action = { PB_ACT_ALLOW, 0 }, .text = "sendmsg on the report socket (the listener hand-over)" };

int pb_rules_with_entry(const struct pb_entry_list *l, const struct pb_entry *e, bool front,
                        struct pb_entry_list *out)
{
	out->v = malloc((l->n + 1) * sizeof(*out->v));
	if (!out->v)
		return -ENOMEM;
	out->n = out->cap = l->n + 1;
	memcpy(out->v + (front ? 1 : 0), l->v, l->n * sizeof(*out->v));
	out->v[front ? 0 : l->n] = *e;
	return 0;
}

/* ---- @network connect ------------------------------------------------------
 *
 * The worker keeps its empty network namespace; what it may reach, the
 * supervisor connects for it (runtime/netconnect.c). Two rules come before
 * the policy's own: every connect(2) goes to the supervisor (a user
 * notification: the filter cannot see the address behind the pointer, nor
 * the socket's kind), and socket(2) may make TCP sockets, IPv4 or IPv6,
 * blocking or not: SOCK_STREAM with only SOCK_NONBLOCK and SOCK_CLOEXEC
 * beside it, protocol 0 or IPPROTO_TCP. Every other socket stays with the
 * policy's rules (UDP, raw, packet, netlink: denied by the shipped ones). */

#define TCP_TYPE_BITS (SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC)
#define TCP_CLAUSE(fam, proto)                                               \
	{ .arg = 0, .op = PB_OP_EQ, .value = (fam) },                        \
	        { .arg = 1, .op = PB_OP_ONLY_BITS, .value = TCP_TYPE_BITS }, \
	        { .arg = 1, .op = PB_OP_ANY_BITS, .value = SOCK_STREAM },    \
	{                                                                    \
		.arg = 2, .op = PB_OP_EQ, .value = (proto)                   \
	}
static struct pb_atom tcp_socket_atoms[] = {
	TCP_CLAUSE(AF_INET, 0),
	TCP_CLAUSE(AF_INET, IPPROTO_TCP),
	TCP_CLAUSE(AF_INET6, 0),
	TCP_CLAUSE(AF_INET6, IPPROTO_TCP),
};
static size_t tcp_socket_ends[] = { 4, 8, 12, 16 };
static struct pb_cond tcp_socket = {
	.atoms = tcp_socket_atoms,
	.natoms = 16,
	.clause_end = tcp_socket_ends,
	.nclauses = 4,
};
/* SOCK_STREAM is 1, SOCK_DGRAM 2, SOCK_RAW 3, SOCK_SEQPACKET 5: with only
 * these bits and bit 0 set, the type is SOCK_STREAM. */
_Static_assert(SOCK_STREAM == 1 && ((SOCK_DGRAM | SOCK_RAW | SOCK_SEQPACKET | SOCK_RDM | SOCK_DCCP |
                                     SOCK_PACKET) &
                                    TCP_TYPE_BITS & ~SOCK_STREAM) == 0,
               "socket types other than SOCK_STREAM have a bit outside TCP_TYPE_BITS");

static const struct pb_entry net_entries[] = {
	{ .nr = __NR_connect, .action = { PB_ACT_LOG, 0 }, .text = "connect: the supervisor connects (@network connect)" },
	{ .nr = __NR_socket, .cond = &tcp_socket, .action = { PB_ACT_ALLOW, 0 }, .text = "socket: TCP over IPv4 or IPv6 (@network connect)" },
};
#define NET_ENTRIES_N (sizeof(net_entries) / sizeof(net_entries[0]))

int pb_rules_with_net(const struct pb_entry_list *l, struct pb_entry_list *out)
{
	out->v = malloc((l->n + NET_ENTRIES_N) * sizeof(*out->v));
	if (!out->v)
		return -ENOMEM;
	memcpy(out->v, net_entries, sizeof(net_entries));
	memcpy(out->v + NET_ENTRIES_N, l->v, l->n * sizeof(*out->v));
	out->n = out->cap = l->n + NET_ENTRIES_N;
	return 0;
}

const struct pb_entry *pb_policy_net_entry(const struct pb_policy *p, int nr, const uint64_t args[6])
{
	if (p->sandbox.network != PB_NETWORK_CONNECT)
		return NULL;
	for (size_t i = 0; i < NET_ENTRIES_N; i++)
		if (net_entries[i].nr == nr && (!net_entries[i].cond || pb_cond_holds(net_entries[i].cond, args, 0)))
			return &net_entries[i];
	return NULL;
}

/* ---- learn mode ------------------------------------------------------------
 *
 * `plugbox learn` runs a call under the policy with its denials turned into
 * log verdicts: the call goes through and the supervisor writes it down,
 * so the learned policy lists what the call needs beyond the policy. What
 * only an attack does is not learned: for the @attack group the policy's
 * verdicts stand as they are (kill stays kill, an errno stays an errno, the
 * @default applies as when enforcing), and whatever the policy says, no
 * namespace is made: clone and unshare with namespace flags and setns are
 * killed, and clone3, whose flags the filter cannot see, fails with ENOSYS
 * (glibc then falls back to clone). The rules below come first. */

#define PB_NS_FLAGS (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | \
	             CLONE_NEWPID | CLONE_NEWNET)
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080 /* Linux 5.6; in clone's flags it is the exit signal */
#endif
static struct pb_atom clone_ns_atom = {
	.arg = 0,
	.op = PB_OP_ANY_BITS,
	.wide = true,
	.value = PB_NS_FLAGS,
};
static struct pb_cond clone_ns = {
	.atoms = &clone_ns_atom,
	.natoms = 1,
	.clause_end = &one_clause,
	.nclauses = 1,
};
static struct pb_atom unshare_ns_atom = {
	.arg = 0,
	.op = PB_OP_ANY_BITS,
	.wide = false,
	.value = PB_NS_FLAGS | CLONE_NEWTIME,
};
static struct pb_cond unshare_ns = {
	.atoms = &unshare_ns_atom,
	.natoms = 1,
	.clause_end = &one_clause,
	.nclauses = 1,
};

static const struct pb_entry learn_guard[] = {
	{ .nr = __NR_clone, .cond = &clone_ns, .action = { PB_ACT_KILL, 0 }, .text = "clone: arg0 & CLONE_NEWNS|CLONE_NEWCGROUP|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWUSER|"
	                                                                             "CLONE_NEWPID|CLONE_NEWNET => kill" },
	{ .nr = __NR_clone3, .action = { PB_ACT_ERRNO, ENOSYS }, .text = "clone3: return ENOSYS" },
	{ .nr = __NR_unshare, .cond = &unshare_ns, .action = { PB_ACT_KILL, 0 }, .text = "unshare: arg0 & CLONE_NEW... => kill" },
	{ .nr = __NR_setns, .action = { PB_ACT_KILL, 0 }, .text = "setns: kill" },
};
#define LEARN_GUARD_N (sizeof(learn_guard) / sizeof(learn_guard[0]))

static bool in(const int *nrs, size_t n, int nr)
{
	for (size_t i = 0; i < n; i++)
		if (nrs[i] == nr)
			return true;
	return false;
}

/* The start-up rules as learn mode runs them (see above); *dflt becomes
 * log. The entries are shallow copies: out owns only its array. */
int pb_rules_learn(const struct pb_policy *p, struct pb_entry_list *out, struct pb_action *dflt)
{
	int attack[256];
	size_t nattack = pb_syscall_group_numbers("attack", attack, sizeof(attack) / sizeof(attack[0]));

	out->v = malloc((LEARN_GUARD_N + p->start.n + nattack) * sizeof(*out->v));
	if (!out->v)
		return -ENOMEM;
	out->n = 0;
	for (size_t i = 0; i < LEARN_GUARD_N; i++)
		out->v[out->n++] = learn_guard[i];
	for (size_t i = 0; i < p->start.n; i++) {
		struct pb_entry e = p->start.v[i];
		if (!in(attack, nattack, e.nr) && e.action.kind != PB_ACT_ALLOW && e.action.kind != PB_ACT_KILL)
			e.action = (struct pb_action){ PB_ACT_LOG, 0 };
		out->v[out->n++] = e;
	}
	/* Where no rule of an attack syscall decides, its @default does, as
	 * when enforcing (and not learn's log): a last, unconditional entry. */
	for (size_t k = 0; k < nattack; k++)
		out->v[out->n++] = (struct pb_entry){ .nr = attack[k], .action = p->dflt, .text = "@default (an @attack syscall)" };
	out->cap = out->n;
	*dflt = p->dflt.kind == PB_ACT_ALLOW ? p->dflt : (struct pb_action){ PB_ACT_LOG, 0 };
	return 0;
}

const struct pb_entry *pb_policy_learn_guard(int nr, const uint64_t args[6])
{
	for (size_t i = 0; i < LEARN_GUARD_N; i++)
		if (learn_guard[i].nr == nr && (!learn_guard[i].cond || pb_cond_holds(learn_guard[i].cond, args, 0)))
			return &learn_guard[i];
	return NULL;
}

/* ---- zygotes ----------------------------------------------------------------
 *
 * A zygote (--spawn zygote) imports its plugin once and forks every worker
 * of it. Its program is the start-up rules with what forking needs put
 * first: a process clone (no CLONE_THREAD, no namespace flag), seccomp()
 * for the children's own programs, and its control path on descriptor 3
 * (worker/zygote.c). A child stacks the ordinary program compiled for its
 * own pid, with process clones failing first: filters only tighten. */

#define PB_ZYGOTE_CTL_FD 3
static struct pb_atom process_clone_atom = {
	.arg = 0,
	.op = PB_OP_ONLY_BITS,
	.wide = false,
	.value = (uint32_t) ~(uint32_t)(CLONE_THREAD | PB_NS_FLAGS),
};
static struct pb_cond process_clone = {
	.atoms = &process_clone_atom,
	.natoms = 1,
	.clause_end = &one_clause,
	.nclauses = 1,
};
static struct pb_atom control_fd_atom = {
	.arg = 0,
	.op = PB_OP_EQ,
	.wide = false,
	.value = PB_ZYGOTE_CTL_FD,
};
static struct pb_cond control_fd = {
	.atoms = &control_fd_atom,
	.natoms = 1,
	.clause_end = &one_clause,
	.nclauses = 1,
};
static struct pb_atom dupfd_atom = {
	.arg = 1,
	.op = PB_OP_EQ,
	.wide = false,
	.value = F_DUPFD_CLOEXEC,
};
static struct pb_cond dupfd = {
	.atoms = &dupfd_atom,
	.natoms = 1,
	.clause_end = &one_clause,
	.nclauses = 1,
};

static const struct pb_entry zygote_first[] = {
	{ .nr = __NR_clone, .cond = &process_clone, .action = { PB_ACT_ALLOW, 0 }, .text = "clone of a process: the zygote forks its workers" },
	{ .nr = __NR_seccomp, .cond = &set_mode_filter, .action = { PB_ACT_ALLOW, 0 }, .text = "seccomp(SECCOMP_SET_MODE_FILTER): a zygote's child loads its own programs" },
	{ .nr = __NR_recvmsg, .cond = &control_fd, .action = { PB_ACT_ALLOW, 0 }, .text = "recvmsg on the zygote's control socket" },
	{ .nr = __NR_sendmsg, .cond = &control_fd, .action = { PB_ACT_ALLOW, 0 }, .text = "sendmsg on the zygote's control socket" },
	{ .nr = __NR_fcntl, .cond = &dupfd, .action = { PB_ACT_ALLOW, 0 }, .text = "fcntl(F_DUPFD_CLOEXEC): a zygote's child takes its descriptors" },
	{ .nr = __NR_dup3, .action = { PB_ACT_ALLOW, 0 }, .text = "dup3: a zygote's child takes its descriptors" },
	{ .nr = __NR_close_range, .action = { PB_ACT_ALLOW, 0 }, .text = "close_range: a zygote's child closes the zygote's descriptors" },
	{ .nr = __NR_pipe2, .action = { PB_ACT_ALLOW, 0 }, .text = "pipe2: a zygote's child makes its own SIGSYS traceback pipe" },
};

static const struct pb_entry child_first[] = {
	{ .nr = __NR_clone, .cond = &process_clone, .action = { PB_ACT_ERRNO, EPERM }, .text = "clone of a process: return EPERM (a zygote's child never forks)" },
	{ .nr = __NR_clone3, .action = { PB_ACT_ERRNO, ENOSYS }, .text = "clone3: return ENOSYS (a zygote's child never forks)" },
#ifdef __NR_fork
	{ .nr = __NR_fork, .action = { PB_ACT_ERRNO, EPERM }, .text = "fork: return EPERM (a zygote's child never forks)" },
#endif
#ifdef __NR_vfork
	{ .nr = __NR_vfork, .action = { PB_ACT_ERRNO, EPERM }, .text = "vfork: return EPERM (a zygote's child never forks)" },
#endif
};

/* first[0..n) before the entries of l. */
static int with_first(const struct pb_entry_list *l, const struct pb_entry *first, size_t n,
                      struct pb_entry_list *out)
{
	out->v = malloc((l->n + n) * sizeof(*out->v));
	if (!out->v)
		return -ENOMEM;
	out->n = out->cap = l->n + n;
	memcpy(out->v, first, n * sizeof(*out->v));
	if (l->n)
		memcpy(out->v + n, l->v, l->n * sizeof(*out->v));
	return 0;
}

int pb_rules_zygote(const struct pb_entry_list *l, bool zygote, struct pb_entry_list *out)
{
	if (zygote)
		return with_first(l, zygote_first, sizeof(zygote_first) / sizeof(zygote_first[0]), out);
	return with_first(l, child_first, sizeof(child_first) / sizeof(child_first[0]), out);
}
