/* policy_compile.c - a parsed policy to seccomp BPF, and back from a
 * trapped syscall to the rule that decided it.
 *
 * Why not libseccomp's generator: its rules have no order and no
 * "otherwise", and the language needs both (minijail's semantics: the first
 * rule that holds decides, then the syscall's own else-action, then the
 * policy's @default). libseccomp still names the syscalls.
 *
 * Programs, loaded in this order (the kernel runs every filter and applies
 * the most restrictive verdict):
 *
 *   guard        foreign architectures and x32 die; so does a plugin that
 *                replaces the SIGSYS handler which reports violations
 *   start        the policy: dispatch on the syscall number (a binary
 *                search), then the syscall's chain of rules, then @default
 *   after-start  the @after-start rules, loaded once the plugin is imported;
 *                where they do not decide, they allow (the start program
 *                still applies)
 *
 * Code is generated back to front, so every jump goes to code already
 * emitted and its distance is known; a distance over the 255 a conditional
 * jump can encode goes through an unconditional jump placed in between.
 * 32-bit arguments are compared on their low word only, as the kernel reads
 * them.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <netinet/in.h>

#include "policy/policy.h"

#if defined(__x86_64__)
#define PB_AUDIT_ARCH AUDIT_ARCH_X86_64
#define PB_X32_BIT 0x40000000u
#elif defined(__aarch64__)
#define PB_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

#define ARG_LO(i) ((uint32_t)(offsetof(struct seccomp_data, args) + 8 * (size_t)(i)))
#define ARG_HI(i) (ARG_LO(i) + 4)
#define NR_OFF ((uint32_t)offsetof(struct seccomp_data, nr))

/* Instructions are stored last-first: label L is the instruction L places
 * before the end of the program. */
struct backwards {
	struct sock_filter *insn;
	size_t len, cap;
	int error;
	/* the last RET emitted for each verdict value, to share it */
	uint32_t ret_value[16];
	size_t ret_label[16];
	size_t nret;
};

typedef size_t label;

static label put(struct backwards *b, struct sock_filter f)
{
	if (b->error)
		return 0;
	if (b->len == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 256;
		struct sock_filter *n = realloc(b->insn, cap * sizeof(*n));
		if (!n) {
			b->error = -ENOMEM;
			return 0;
		}
		b->insn = n;
		b->cap = cap;
	}
	b->insn[b->len] = f;
	return b->len++;
}

/* Distance from the next instruction to emit to label t. */
static size_t distance(const struct backwards *b, label t)
{
	return b->len - t - 1;
}

/* A target a conditional jump can reach: t itself, or a long jump to it.
 * The margin leaves room for a second trampoline emitted right after. */
static label near(struct backwards *b, label t)
{
	if (distance(b, t) <= 253)
		return t;
	return put(b, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JA | BPF_K, (uint32_t)distance(b, t), 0, 0));
}

static label jump(struct backwards *b, uint16_t op, uint32_t k, label jt, label jf)
{
	jt = near(b, jt);
	jf = near(b, jf);
	return put(b, (struct sock_filter)BPF_JUMP(BPF_JMP | op | BPF_K, k,
	                                           (uint8_t)distance(b, jt), (uint8_t)distance(b, jf)));
}

static label load(struct backwards *b, uint32_t off)
{
	return put(b, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, off));
}

static label ret(struct backwards *b, uint32_t value)
{
	for (size_t i = 0; i < b->nret; i++)
		if (b->ret_value[i] == value && distance(b, b->ret_label[i]) <= 200)
			return b->ret_label[i];
	label l = put(b, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, value));
	size_t slot = b->nret < 16 ? b->nret++ : (size_t)(value % 16);
	b->ret_value[slot] = value;
	b->ret_label[slot] = l;
	return l;
}

static uint32_t action_value(const struct pb_action *a)
{
	switch (a->kind) {
	case PB_ACT_ALLOW: return SECCOMP_RET_ALLOW;
	case PB_ACT_ERRNO: return SECCOMP_RET_ERRNO | ((uint32_t)a->err & SECCOMP_RET_DATA);
	case PB_ACT_LOG: return SECCOMP_RET_USER_NOTIF;
	case PB_ACT_TRAP: return SECCOMP_RET_TRAP | ((uint32_t)a->err & SECCOMP_RET_DATA);
	case PB_ACT_KILL: return SECCOMP_RET_TRAP | PB_TRAP_KILL;
	}
	return SECCOMP_RET_KILL_PROCESS;
}

/* ---- conditions ---------------------------------------------------------- */

static uint64_t atom_value(const struct pb_atom *a, int32_t self_pid)
{
	return a->self_pid ? (uint64_t)(uint32_t)self_pid : a->value;
}

static label atom_code(struct backwards *b, const struct pb_atom *a, int32_t self_pid,
                       label t, label f)
{
	uint64_t v = atom_value(a, self_pid);
	uint32_t lo = (uint32_t)v, hi = (uint32_t)(v >> 32);
	label l;

	if (a->self_pid && self_pid == PB_SELF_PID_ANY) {
		/* A zygote: every pid of its namespace is one of its own
		 * processes; each child tightens SELF_PID to its own pid. */
		jump(b, BPF_JEQ, 0, a->op == PB_OP_NE ? f : t, a->op == PB_OP_NE ? f : t);
		return load(b, ARG_LO(a->arg));
	}
	if (!a->wide) {
		switch (a->op) {
		case PB_OP_EQ: l = jump(b, BPF_JEQ, lo, t, f); break;
		case PB_OP_NE: l = jump(b, BPF_JEQ, lo, f, t); break;
		case PB_OP_GT: l = jump(b, BPF_JGT, lo, t, f); break;
		case PB_OP_GE: l = jump(b, BPF_JGE, lo, t, f); break;
		case PB_OP_LT: l = jump(b, BPF_JGE, lo, f, t); break;
		case PB_OP_LE: l = jump(b, BPF_JGT, lo, f, t); break;
		case PB_OP_ANY_BITS: l = jump(b, BPF_JSET, lo, t, f); break;
		default: l = jump(b, BPF_JSET, ~lo, f, t); break;
		}
		(void)l;
		return load(b, ARG_LO(a->arg));
	}
	switch (a->op) {
	case PB_OP_EQ:
	case PB_OP_NE: {
		label yes = a->op == PB_OP_EQ ? t : f, no = a->op == PB_OP_EQ ? f : t;
		jump(b, BPF_JEQ, lo, yes, no);
		l = load(b, ARG_LO(a->arg));
		jump(b, BPF_JEQ, hi, l, no);
		return load(b, ARG_HI(a->arg));
	}
	case PB_OP_GT:
	case PB_OP_GE:
	case PB_OP_LT:
	case PB_OP_LE: {
		/* unsigned 64-bit: decide on the high words unless equal */
		bool greater = a->op == PB_OP_GT || a->op == PB_OP_GE;
		bool strict = a->op == PB_OP_GT || a->op == PB_OP_LE; /* low word: > */
		label yes = greater ? t : f, no = greater ? f : t;
		jump(b, strict ? BPF_JGT : BPF_JGE, lo, yes, no);
		l = load(b, ARG_LO(a->arg));
		l = jump(b, BPF_JEQ, hi, l, no);
		jump(b, BPF_JGT, hi, yes, l);
		return load(b, ARG_HI(a->arg));
	}
	case PB_OP_ANY_BITS:
		jump(b, BPF_JSET, lo, t, f);
		l = load(b, ARG_LO(a->arg));
		jump(b, BPF_JSET, hi, t, l);
		return load(b, ARG_HI(a->arg));
	default: /* PB_OP_ONLY_BITS */
		jump(b, BPF_JSET, ~lo, f, t);
		l = load(b, ARG_LO(a->arg));
		jump(b, BPF_JSET, ~hi, f, l);
		return load(b, ARG_HI(a->arg));
	}
}

static label cond_code(struct backwards *b, const struct pb_cond *c, int32_t self_pid,
                       label t, label f)
{
	label next_clause = f;

	for (size_t k = c->nclauses; k-- > 0;) {
		size_t first = k ? c->clause_end[k - 1] : 0;
		label l = t;
		for (size_t i = c->clause_end[k]; i-- > first;)
			l = atom_code(b, &c->atoms[i], self_pid, l, next_clause);
		next_clause = l;
	}
	return next_clause;
}

static bool cond_holds(const struct pb_cond *c, const uint64_t args[6], int32_t self_pid);

/* ---- programs ------------------------------------------------------------ */

struct chain {
	int nr;
	label start;
};

static int cmp_chain(const void *a, const void *b)
{
	const struct chain *x = a, *y = b;
	return (x->nr > y->nr) - (x->nr < y->nr);
}

/* Program head: a foreign architecture or an x32 number is killed (trap
 * with data 0, reported); native calls go on to `then` with the number
 * loaded. */
static label native_only(struct backwards *b, label then)
{
	const uint32_t kill = SECCOMP_RET_TRAP | PB_TRAP_KILL;

	/* Each load falls through to the instruction emitted just before it. */
#ifdef PB_X32_BIT
	jump(b, BPF_JSET, PB_X32_BIT, ret(b, kill), then);
#else
	(void)then;
#endif
	label nr = load(b, NR_OFF);
	jump(b, BPF_JEQ, PB_AUDIT_ARCH, nr, ret(b, kill));
	return load(b, (uint32_t)offsetof(struct seccomp_data, arch));
}

static label dispatch(struct backwards *b, const struct chain *c, size_t lo, size_t hi, label dflt)
{
	if (hi - lo <= 4) {
		label l = dflt;
		for (size_t i = hi; i-- > lo;)
			l = jump(b, BPF_JEQ, (uint32_t)c[i].nr, c[i].start, l);
		return l;
	}
	size_t mid = lo + (hi - lo) / 2;
	label right = dispatch(b, c, mid, hi, dflt);
	label left = dispatch(b, c, lo, mid, dflt);
	return jump(b, BPF_JGE, (uint32_t)c[mid].nr, right, left);
}

/* The after-start program runs beside the start-up one, and between two
 * traps the kernel takes the data of the newer filter: a trap there would
 * turn the start-up program's kill (a trap with data 0) into a report with
 * an errno. So where the after-start chain of a syscall can trap, it first
 * runs the start-up chain (`under`, then its @default) and kills where that
 * kills; elsewhere it goes on to `then`. */
static label kill_first(struct backwards *b, const struct pb_entry_list *under,
                        const struct pb_action *under_dflt, int nr, int32_t self_pid, label then)
{
	const struct pb_action kill = { PB_ACT_KILL, 0 };
	bool dflt_kills = under_dflt->kind == PB_ACT_KILL;
	bool kills = dflt_kills;
	label next;

	for (size_t i = 0; i < under->n; i++)
		kills |= under->v[i].nr == nr && under->v[i].action.kind == PB_ACT_KILL;
	if (!kills)
		return then;
	next = dflt_kills ? ret(b, action_value(&kill)) : then;
	for (size_t i = under->n; i-- > 0;) {
		const struct pb_entry *e = &under->v[i];
		if (e->nr != nr)
			continue;
		bool kill_here = e->action.kind == PB_ACT_KILL;
		label act = kill_here ? ret(b, action_value(&kill)) : then;
		next = e->cond ? cond_code(b, e->cond, self_pid, act, next) : act;
	}
	return next;
}

/* A program for one list of entries; entries of a syscall are tried in
 * order, then `fallthrough` decides (the @default, or allow after start).
 * under/under_dflt: the start-up rules, when this is the after-start
 * program (see kill_first). */
static int build_program(struct backwards *b, const struct pb_entry_list *list,
                         const struct pb_action *fallthrough, int32_t self_pid,
                         const struct pb_entry_list *under, const struct pb_action *under_dflt)
{
	struct chain *chains = calloc(list->n + 1, sizeof(*chains));
	size_t nchains = 0;
	struct pb_action fa = *fallthrough;

	if (!chains)
		return -ENOMEM;
	/* Each syscall's chain, last syscall first. Entries keep their order. */
	for (size_t i = 0; i < list->n; i++) {
		bool seen = false;
		for (size_t j = 0; j < nchains && !seen; j++)
			seen = chains[j].nr == list->v[i].nr;
		if (!seen)
			chains[nchains++].nr = list->v[i].nr;
	}
	for (size_t j = 0; j < nchains; j++) {
		label next = ret(b, action_value(&fa));
		bool traps = fa.kind == PB_ACT_TRAP;
		/* walk this syscall's entries from the last to the first */
		for (size_t i = list->n; i-- > 0;) {
			const struct pb_entry *e = &list->v[i];
			if (e->nr != chains[j].nr)
				continue;
			struct pb_action ea = e->action;
			label act = ret(b, action_value(&ea));
			next = e->cond ? cond_code(b, e->cond, self_pid, act, next) : act;
			traps |= ea.kind == PB_ACT_TRAP;
		}
		if (under && under_dflt && traps)
			next = kill_first(b, under, under_dflt, chains[j].nr, self_pid, next);
		chains[j].start = next;
	}
	qsort(chains, nchains, sizeof(*chains), cmp_chain);
	label dflt = ret(b, action_value(&fa));
	/* The guard kills foreign and x32 calls with a trap; a trap of this
	 * program would tie with it, and the kernel takes the newer filter's
	 * data: so every program says the same for them. */
	native_only(b, dispatch(b, chains, 0, nchains, dflt));
	free(chains);
	return b->error;
}

static int build_guard(struct backwards *b)
{
	label allow = ret(b, SECCOMP_RET_ALLOW);
	label kill = ret(b, SECCOMP_RET_KILL_PROCESS);

	/* rt_sigaction(SIGSYS, act != NULL, ...): the plugin wants the
	 * reporter gone. End it without running the reporter it is trying to
	 * replace. Reading the handler (act == NULL) is what `import signal`
	 * does. */
	jump(b, BPF_JEQ, 0, allow, kill);
	label l = load(b, ARG_HI(1));
	jump(b, BPF_JEQ, 0, l, kill);
	l = load(b, ARG_LO(1));
	jump(b, BPF_JEQ, SIGSYS, l, allow);
	l = load(b, ARG_LO(0));
	l = jump(b, BPF_JEQ, __NR_rt_sigaction, l, allow);
	native_only(b, l);
	return b->error;
}

static int append_program(struct pb_bpf_blob *out, struct backwards *b, uint32_t flags)
{
	size_t add = 4 + b->len * sizeof(struct sock_filter);
	uint32_t header = (uint32_t)b->len | flags;
	uint8_t *n;

	if (b->len == 0 || b->len > BPF_MAXINSNS)
		return -E2BIG;
	n = realloc(out->data, out->len + add);
	if (!n)
		return -ENOMEM;
	out->data = n;
	n += out->len;
	n[0] = (uint8_t)header;
	n[1] = (uint8_t)(header >> 8);
	n[2] = (uint8_t)(header >> 16);
	n[3] = (uint8_t)(header >> 24);
	/* stored last-first: reverse into program order */
	for (size_t i = 0; i < b->len; i++)
		memcpy(n + 4 + i * sizeof(struct sock_filter), &b->insn[b->len - 1 - i],
		       sizeof(struct sock_filter));
	out->len += add;
	if (out->nprograms < 3)
		out->ninsns[out->nprograms] = (unsigned)b->len;
	out->nprograms++;
	return 0;
}

static bool uses_log(const struct pb_entry_list *l, const struct pb_action *fallthrough)
{
	if (fallthrough->kind == PB_ACT_LOG)
		return true;
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].action.kind == PB_ACT_LOG)
			return true;
	return false;
}

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

static int with_entry(const struct pb_entry_list *l, const struct pb_entry *e, bool front,
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

static int with_net_entries(const struct pb_entry_list *l, struct pb_entry_list *out)
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
		if (net_entries[i].nr == nr && (!net_entries[i].cond || cond_holds(net_entries[i].cond, args, 0)))
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
static int learn_list(const struct pb_policy *p, struct pb_entry_list *out, struct pb_action *dflt)
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

static int compile(const struct pb_policy *p, int32_t self_pid, enum pb_compile_mode mode,
                   struct pb_bpf_blob *out, char *why, size_t why_len)
{
	struct backwards guard = { 0 }, start = { 0 }, after = { 0 };
	const struct pb_action allow = { PB_ACT_ALLOW, 0 };
	struct pb_entry_list start_list = { 0 }, after_list = { 0 }, learned = { 0 }, netted = { 0 };
	/* Learn mode records what the call needs under the start-up rules;
	 * rules added after start would only hide it. */
	bool zygote = mode == PB_COMPILE_ZYGOTE, child = mode == PB_COMPILE_ZYGOTE_CHILD;
	bool two_phase = (mode == PB_COMPILE_ENFORCE || child) && p->after.n > 0;
	const struct pb_entry_list *rules = &p->start;
	struct pb_action dflt = p->dflt;
	int r = 0;

	memset(out, 0, sizeof(*out));
	*why = '\0';
	if (mode == PB_COMPILE_LEARN) {
		r = learn_list(p, &learned, &dflt);
		rules = &learned;
	}
	/* Learn mode runs with the host's network (spawn.c): no connect to make.
	 * A zygote's program needs the entries too: they make it a listener's,
	 * which a zygote refuses below, so that the plugin's workers are exec'd
	 * (without them a zygote's child would have no way to connect). */
	if (r == 0 && (mode == PB_COMPILE_ENFORCE || zygote || child) && p->sandbox.network == PB_NETWORK_CONNECT) {
		r = with_net_entries(rules, &netted);
		rules = &netted;
	}
	out->listener = uses_log(rules, &dflt);
	if (r == 0)
		r = build_guard(&guard);
	if (r == 0 && two_phase) {
		struct pb_entry open_filter = { .nr = __NR_seccomp, .cond = &set_mode_filter, .action = { PB_ACT_ALLOW, 0 }, .text = "seccomp(SECCOMP_SET_MODE_FILTER) for the after-start rules" };
		struct pb_entry close_filter = { .nr = __NR_seccomp, .action = { PB_ACT_ERRNO, EPERM }, .text = "seccomp: return EPERM once started" };
		r = with_entry(rules, &open_filter, true, &start_list);
		if (r == 0)
			r = with_entry(&p->after, &close_filter, false, &after_list);
	}
	if (r == 0 && out->listener) {
		/* The worker hands the listener over with sendmsg on its report
		 * socket; were that call itself logged, it would wait for a
		 * supervisor that does not hold the listener yet. */
		struct pb_entry handover = { .nr = __NR_sendmsg, .cond = &report_socket, .action = { PB_ACT_ALLOW, 0 }, .text = "sendmsg on the report socket (the listener hand-over)" };
		struct pb_entry_list grown = { 0 };
		r = with_entry(two_phase ? &start_list : rules, &handover, true, &grown);
		free(start_list.v);
		start_list = grown;
	}
	if (r == 0 && (zygote || child) && out->listener) {
		snprintf(why, why_len, "policy '%s' has log rules, which a zygote's workers cannot use "
		                       "(--spawn zygote)",
		         p->name);
		r = -ENOTSUP;
	} else if (r == 0 && (zygote || child)) {
		struct pb_entry_list grown = { 0 };
		r = zygote ? with_first(rules, zygote_first, sizeof(zygote_first) / sizeof(zygote_first[0]), &grown)
		           : with_first(two_phase ? &start_list : rules, child_first,
		                        sizeof(child_first) / sizeof(child_first[0]), &grown);
		free(start_list.v);
		start_list = grown;
	}
	if (r == 0)
		r = build_program(&start, (two_phase || out->listener || zygote || child) ? &start_list : rules,
		                  &dflt, self_pid, NULL, NULL);
	if (r == 0 && two_phase)
		r = build_program(&after, &after_list, &allow, self_pid, &p->start, &p->dflt);
	free(start_list.v);
	free(after_list.v);
	free(learned.v);
	free(netted.v);
	if (r == 0 && (start.len > BPF_MAXINSNS || after.len > BPF_MAXINSNS)) {
		snprintf(why, why_len, "policy '%s' compiles to %zu instructions; the kernel takes %d",
		         p->name, start.len > after.len ? start.len : after.len, BPF_MAXINSNS);
		r = -E2BIG;
	} else if (r < 0) {
		snprintf(why, why_len, "compiling policy '%s': %s", p->name, strerror(-r));
	}
	if (r == 0)
		r = append_program(out, &guard, 0);
	if (r == 0)
		r = append_program(out, &start, out->listener ? PB_PROG_LISTENER : 0);
	if (r == 0 && after.len)
		r = append_program(out, &after, PB_PROG_AFTER_START);
	if (r < 0 && !*why)
		snprintf(why, why_len, "compiling policy '%s': %s", p->name, strerror(-r));
	free(guard.insn);
	free(start.insn);
	free(after.insn);
	if (r < 0)
		pb_bpf_blob_free(out);
	return r;
}

void pb_bpf_blob_free(struct pb_bpf_blob *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/* The same policy compiled for the same pid and mode makes the same
 * programs: a worker's are made when it starts (spawn.c) and again to
 * check its @after-start rules at its Hello (workers.c), ~0.1 ms each
 * here. A loaded policy is never changed, so its last compile is kept
 * and copied out. */
struct pb_compiled_memo {
	bool valid;
	int32_t self_pid;
	enum pb_compile_mode mode;
	struct pb_bpf_blob blob;
};

struct pb_compiled_memo *pb_compiled_memo_new(void)
{
	return calloc(1, sizeof(struct pb_compiled_memo));
}

void pb_compiled_memo_free(struct pb_compiled_memo *m)
{
	if (m)
		pb_bpf_blob_free(&m->blob);
	free(m);
}

static int blob_copy(const struct pb_bpf_blob *from, struct pb_bpf_blob *to)
{
	*to = *from;
	to->data = malloc(from->len ? from->len : 1);
	if (!to->data) {
		memset(to, 0, sizeof(*to));
		return -ENOMEM;
	}
	memcpy(to->data, from->data, from->len);
	return 0;
}

int pb_policy_compile(const struct pb_policy *p, int32_t self_pid, enum pb_compile_mode mode,
                      struct pb_bpf_blob *out, char *why, size_t why_len)
{
	struct pb_compiled_memo *m = p->compiled;
	int r;

	if (m && m->valid && m->self_pid == self_pid && m->mode == mode) {
		*why = '\0';
		if (blob_copy(&m->blob, out) == 0)
			return 0;
	}
	r = compile(p, self_pid, mode, out, why, why_len);
	if (r == 0 && m) {
		pb_bpf_blob_free(&m->blob);
		m->valid = blob_copy(out, &m->blob) == 0;
		m->self_pid = self_pid;
		m->mode = mode;
	}
	return r;
}

/* ---- matching: the same decisions, made in C for a report --------------- */

static bool atom_holds(const struct pb_atom *a, const uint64_t args[6], int32_t self_pid)
{
	uint64_t v = args[a->arg], k = atom_value(a, self_pid);

	if (!a->wide) {
		v &= UINT32_MAX;
		k &= UINT32_MAX;
	}
	switch (a->op) {
	case PB_OP_EQ: return v == k;
	case PB_OP_NE: return v != k;
	case PB_OP_LT: return v < k;
	case PB_OP_LE: return v <= k;
	case PB_OP_GT: return v > k;
	case PB_OP_GE: return v >= k;
	case PB_OP_ANY_BITS: return (v & k) != 0;
	default: return (v & ~k) == 0;
	}
}

static bool cond_holds(const struct pb_cond *c, const uint64_t args[6], int32_t self_pid)
{
	size_t first = 0;

	for (size_t k = 0; k < c->nclauses; k++) {
		bool all = true;
		for (size_t i = first; i < c->clause_end[k] && all; i++)
			all = atom_holds(&c->atoms[i], args, self_pid);
		if (all)
			return true;
		first = c->clause_end[k];
	}
	return false;
}

static const struct pb_entry *chain_match(const struct pb_entry_list *l, int nr,
                                          const uint64_t args[6], int32_t self_pid)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].nr == nr && (!l->v[i].cond || cond_holds(l->v[i].cond, args, self_pid)))
			return &l->v[i];
	return NULL;
}

/* The kernel's order of precedence among verdicts. */
static int severity(enum pb_action_kind k)
{
	switch (k) {
	case PB_ACT_KILL: return 4;
	case PB_ACT_TRAP: return 3;
	case PB_ACT_ERRNO: return 2;
	case PB_ACT_LOG: return 1;
	default: return 0;
	}
}

const struct pb_entry *pb_policy_match(const struct pb_policy *p, int nr, const uint64_t args[6],
                                       int32_t self_pid, bool after_start,
                                       struct pb_action *action)
{
	const struct pb_entry *e = chain_match(&p->start, nr, args, self_pid);
	*action = e ? e->action : p->dflt;
	if (after_start) {
		const struct pb_entry *a = chain_match(&p->after, nr, args, self_pid);
		/* Between equal verdicts the newer filter's data wins (the errno
		 * of two errnos or two traps); a start-up kill stays a kill, see
		 * kill_first. */
		if (a && severity(a->action.kind) >= severity(action->kind)) {
			*action = a->action;
			return a;
		}
	}
	return e;
}

const struct pb_entry *pb_policy_learn_guard(int nr, const uint64_t args[6])
{
	for (size_t i = 0; i < LEARN_GUARD_N; i++)
		if (learn_guard[i].nr == nr && (!learn_guard[i].cond || cond_holds(learn_guard[i].cond, args, 0)))
			return &learn_guard[i];
	return NULL;
}

bool pb_policy_has_log(const struct pb_policy *pol)
{
	const struct pb_entry_list *lists[] = { &pol->start, &pol->after };
	/* connect(2) is answered by the supervisor, as a log verdict is */
	if (pol->dflt.kind == PB_ACT_LOG || pol->sandbox.network == PB_NETWORK_CONNECT)
		return true;
	for (size_t l = 0; l < 2; l++)
		for (size_t i = 0; i < lists[l]->n; i++)
			if (lists[l]->v[i].action.kind == PB_ACT_LOG)
				return true;
	return false;
}
