/* policy_compile.c - a parsed policy to seccomp BPF, and back from a
 * trapped syscall to the rule that decided it.
 *
 * Why not libseccomp's generator: its rules have no order and no
 * "otherwise", and the language needs both (minijail's semantics: the first
 * rule that holds decides, then the syscall's own else-action, then the
 * policy's @default). libseccomp still names the syscalls.
 *
 * The rules plugbox adds around a policy's own (learn mode, @network
 * connect, zygotes, the after-start hand-over) are in policy_rules.c; the
 * same decisions made in C for a report, in policy_match.c; the kept
 * compile, in policy_memo.c.
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
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

#include "policy/policy.h"
#include "policy/policy_rules.h"

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

static label atom_code(struct backwards *b, const struct pb_atom *a, int32_t self_pid,
                       label t, label f)
{
	uint64_t v = pb_atom_value(a, self_pid);
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
		r = pb_rules_learn(p, &learned, &dflt);
		rules = &learned;
	}
	/* Learn mode runs with the host's network (spawn.c): no connect to make.
	 * A zygote's program needs the entries too: they make it a listener's,
	 * which a zygote refuses below, so that the plugin's workers are exec'd
	 * (without them a zygote's child would have no way to connect). */
	if (r == 0 && (mode == PB_COMPILE_ENFORCE || zygote || child) && p->sandbox.network == PB_NETWORK_CONNECT) {
		r = pb_rules_with_net(rules, &netted);
		rules = &netted;
	}
	out->listener = uses_log(rules, &dflt);
	if (r == 0)
		r = build_guard(&guard);
	if (r == 0 && two_phase) {
		r = pb_rules_with_entry(rules, &pb_rule_open_filter, true, &start_list);
		if (r == 0)
			r = pb_rules_with_entry(&p->after, &pb_rule_close_filter, false, &after_list);
	}
	if (r == 0 && out->listener) {
		/* The listener's hand-over is never itself logged. */
		struct pb_entry_list grown = { 0 };
		r = pb_rules_with_entry(two_phase ? &start_list : rules, &pb_rule_handover, true, &grown);
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
		r = pb_rules_zygote(zygote ? rules : two_phase ? &start_list
		                                               : rules,
		                    zygote, &grown);
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

int pb_policy_compile(const struct pb_policy *p, int32_t self_pid, enum pb_compile_mode mode,
                      struct pb_bpf_blob *out, char *why, size_t why_len)
{
	struct pb_compiled_memo *m = p->compiled;
	int r;

	if (m && pb_compiled_memo_get(m, self_pid, mode, out) == 0) {
		*why = '\0';
		return 0;
	}
	r = compile(p, self_pid, mode, out, why, why_len);
	if (r == 0 && m)
		pb_compiled_memo_put(m, self_pid, mode, out);
	return r;
}
