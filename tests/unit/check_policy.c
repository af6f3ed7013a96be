/* check_policy.c - policies parsed, compiled and loaded for real.
 *
 * Most tests write a policy to a temporary directory, load it with
 * pb_policy_load, and fork a child that installs its own SIGSYS handler,
 * loads the compiled programs exactly as the worker does and makes the
 * syscalls under test; the parent then checks what the kernel did (an
 * errno, a SIGSYS trap with its data, or death by SIGSYS). The syscalls are
 * harmless ones (lseek, fcntl and ioctl on fd -1, madvise with a bad
 * advice...) whose verdicts are told apart by distinct errnos.
 *
 * check_bpf.c runs the same programs through an interpreter, differentially;
 * check_policy_load.c tests the loading API itself.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <ucontext.h>
#include <unistd.h>

#include "policy/policy.h"
#include "policy_testlib.h"

#ifndef PB_TEST_POLICIES
#error "PB_TEST_POLICIES: the shipped policies directory (set by Makefile.am)"
#endif

/* ---- running syscalls under a policy in a child --------------------------- */

#define MAXPROBES 128
#define SELF_ARG 0x5e1f5e1f5e1f5e1fULL /* replaced by the child's own pid */

struct probe {
	long nr;
	uint64_t a[6];
};

struct outcome {
	long ret;
	int err;
	int trapped;
	int si_errno;
	int trapped_nr;
};

struct shared {
	int loaded;
	int done;
	int handler_runs;
	struct outcome o[MAXPROBES];
	unsigned char buf[256]; /* memory the probes may point at */
};

static struct shared *sh;
static volatile int current = -1;

static void map_shared(void)
{
	if (!sh) {
		sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		ck_assert_ptr_ne(sh, MAP_FAILED);
	}
	memset(sh, 0, sizeof(*sh));
}

static void on_sigsys(int sig, siginfo_t *si, void *ctx)
{
	ucontext_t *uc = ctx;
	int e = si->si_errno ? si->si_errno : ENOSYS;

	(void)sig;
	sh->handler_runs++;
	if (current >= 0) {
		sh->o[current].trapped = 1;
		sh->o[current].si_errno = si->si_errno;
		sh->o[current].trapped_nr = si->si_syscall;
	}
#if defined(__x86_64__)
	uc->uc_mcontext.gregs[REG_RAX] = -(greg_t)e;
#elif defined(__aarch64__)
	uc->uc_mcontext.regs[0] = (uint64_t) - (int64_t)e;
#endif
}

static void child(const struct pb_policy *p, enum pb_compile_mode mode, bool with_after,
                  const struct probe *pr, size_t n)
{
	struct pb_bpf_blob blob;
	struct sigaction sa;
	char why[256];
	uint32_t h;
	const struct sock_filter *insns;

	const pid_t self = getpid(); /* before the filters: getpid may be denied */

	if (pb_policy_compile(p, (int32_t)self, mode, &blob, why, sizeof(why)) < 0)
		_exit(90);
	/* The handler first: once the guard is loaded, replacing it kills. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0)
		_exit(91);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		_exit(92);
	for (unsigned i = 0; blob_program(&blob, i, &h, &insns); i++) {
		struct sock_fprog prog = { .len = (unsigned short)(h & 0xffff),
			                   .filter = (struct sock_filter *)insns };
		if ((h & PB_PROG_AFTER_START) && !with_after)
			continue;
		if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
			_exit(93);
	}
	sh->loaded = 1;
	for (size_t i = 0; i < n; i++) {
		uint64_t a[6];
		long r;
		for (int k = 0; k < 6; k++)
			a[k] = pr[i].a[k] == SELF_ARG ? (uint64_t)self : pr[i].a[k];
		current = (int)i;
		errno = 0;
		r = syscall(pr[i].nr, a[0], a[1], a[2], a[3], a[4], a[5]);
		sh->o[i].ret = r;
		sh->o[i].err = r == -1 ? errno : 0;
		current = -1;
		sh->done = (int)i + 1;
	}
	/* Not _exit(): under ASan it first calls sigaltstack, maybe denied here. */
	for (;;)
		syscall(SYS_exit_group, 0);
}

/* Run the probes in a child under policy p; returns the wait status. */
static int run_probes_mode(const struct pb_policy *p, enum pb_compile_mode mode, bool with_after,
                           const struct probe *pr, size_t n)
{
	int status;
	pid_t pid;

	ck_assert_uint_le(n, MAXPROBES);
	map_shared();
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		child(p, mode, with_after, pr, n);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(sh->loaded, "the child did not load the policy: status %#x", status);
	return status;
}

static void run_probes(const struct pb_policy *p, bool with_after, const struct probe *pr, size_t n)
{
	int st = run_probes_mode(p, PB_COMPILE_ENFORCE, with_after, pr, n);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0 && sh->done == (int)n,
	              "child status %#x after %d of %zu probes", st, sh->done, n);
}

/* Expected outcomes: the call ran (natural errno e, or success when e is
 * 0), was failed by the kernel with e, trapped with data e (the handler
 * then fails it with e), or trapped for kill (data 0). */
enum expect { RAN,
	      ERRNO,
	      TRAP,
	      KILL };

static void expect_at(size_t i, const struct probe *pr, enum expect kind, int e, int line)
{
	const struct outcome *o = &sh->o[i];
	static const char *const names[] = { "ran", "errno", "trap", "kill" };
	bool ok = false;

	switch (kind) {
	case RAN:
		ok = !o->trapped && (e ? o->ret == -1 && o->err == e : o->ret >= 0);
		break;
	case ERRNO:
		ok = !o->trapped && o->ret == -1 && o->err == e;
		break;
	case TRAP:
		ok = o->trapped && o->si_errno == e && o->ret == -1 && o->err == e &&
		     o->trapped_nr == (int)pr->nr;
		break;
	case KILL:
		ok = o->trapped && o->si_errno == 0 && o->ret == -1 && o->err == ENOSYS &&
		     o->trapped_nr == (int)pr->nr;
		break;
	}
	ck_assert_msg(ok, "line %d, probe %zu (nr %#lx args %#llx %#llx %#llx): expected %s %d; "
	                  "got ret %ld errno %d, trapped %d si_errno %d syscall %#x",
	              line, i, pr->nr,
	              (unsigned long long)pr->a[0], (unsigned long long)pr->a[1],
	              (unsigned long long)pr->a[2], names[kind], e, o->ret, o->err, o->trapped,
	              o->si_errno, (unsigned)o->trapped_nr);
}

#define EXPECT(probes, i, kind, e) expect_at((i), &(probes)[i], (kind), (e), __LINE__)

/* ---- actions ---------------------------------------------------------------- */

START_TEST(every_action_in_rules)
{
	struct pb_policy *p = policy_from(FLOOR
	                                  "@default errno ESTALE\n"
	                                  "lseek: arg2 == 0 => allow\n"
	                                  "lseek: arg2 == 1 => return EXDEV\n"
	                                  "lseek: arg2 == 2 => trap EMLINK\n"
	                                  "lseek: arg2 == 3 => kill\n"
	                                  "lseek: arg2 == 4 => trap\n"
	                                  "lseek: arg2 == 6 => return 4095\n"
	                                  "lseek: arg2 == 7 => 1\n"
	                                  "getpid: 1\n"
	                                  "fcntl: arg1 == F_GETFD; return ENOTBLK\n");
	const struct probe pr[] = {
		{ SYS_lseek, { (uint64_t)-1, 0, 0 } },
		{ SYS_lseek, { (uint64_t)-1, 0, 1 } },
		{ SYS_lseek, { (uint64_t)-1, 0, 2 } },
		{ SYS_lseek, { (uint64_t)-1, 0, 3 } },
		{ SYS_lseek, { (uint64_t)-1, 0, 4 } },
		{ SYS_lseek, { (uint64_t)-1, 0, 6 } },
		{ SYS_lseek, { (uint64_t)-1, 0, 7 } },
		{ SYS_lseek, { (uint64_t)-1, 0, 8 } }, /* no rule holds: @default */
		{ SYS_getpid, { 0 } },
		{ SYS_getppid, { 0 } }, /* not named: @default */
		{ SYS_fcntl, { (uint64_t)-1, F_GETFD } },
		{ SYS_fcntl, { (uint64_t)-1, F_GETFL } }, /* the syscall's own otherwise */
	};
	run_probes(p, false, pr, 12);
	EXPECT(pr, 0, RAN, EBADF);
	EXPECT(pr, 1, ERRNO, EXDEV);
	EXPECT(pr, 2, TRAP, EMLINK);
	EXPECT(pr, 3, KILL, 0);
	EXPECT(pr, 4, TRAP, ENOSYS);
	EXPECT(pr, 5, ERRNO, 4095);
	EXPECT(pr, 6, RAN, EBADF);
	EXPECT(pr, 7, ERRNO, ESTALE);
	EXPECT(pr, 8, RAN, 0);
	EXPECT(pr, 9, ERRNO, ESTALE);
	EXPECT(pr, 10, RAN, EBADF);
	EXPECT(pr, 11, ERRNO, ENOTBLK);
	ck_assert_int_eq(sh->handler_runs, 3);
	pb_policy_free(p);
}
END_TEST

START_TEST(every_default)
{
	static const struct {
		const char *line;
		enum expect kind;
		int e;
	} cases[] = {
		{ "@default kill", KILL, 0 },
		{ "@default enosys", ERRNO, ENOSYS },
		{ "@default errno EXDEV", ERRNO, EXDEV },
		{ "@default errno 77", ERRNO, 77 },
		{ "@default return ENOTBLK", ERRNO, ENOTBLK },
		{ "@default trap EMLINK", TRAP, EMLINK },
		{ "@default trap", TRAP, ENOSYS },
		{ "", KILL, 0 }, /* no @default anywhere: kill */
	};
	const struct probe pr[] = {
		{ SYS_getppid, { 0 } },
		{ SYS_lseek, { (uint64_t)-1, 0, 9 } }, /* named, no rule holds */
		{ SYS_getpid, { 0 } },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pb_policy *p = policy_fmt(FLOOR "%s\nlseek: arg2 == 0\ngetpid: 1\n", cases[i].line);
		ck_assert_int_eq(p->dflt_where.file == NULL, cases[i].line[0] == '\0');
		run_probes(p, false, pr, 3);
		EXPECT(pr, 0, cases[i].kind, cases[i].e);
		EXPECT(pr, 1, cases[i].kind, cases[i].e);
		EXPECT(pr, 2, RAN, 0);
		pb_policy_free(p);
	}
}
END_TEST

/* log is a user notification; without a listener the kernel fails the call
 * with ENOSYS, which shows the verdict without a supervisor. */
START_TEST(log_needs_a_listener)
{
	struct pb_policy *p = policy_from(FLOOR "@default errno ESTALE\nlseek: arg2 == 5 => log\n");
	struct pb_policy *d = policy_from(FLOOR "@default log\ngetpid: 1\n");
	struct pb_policy *none = policy_from(FLOOR "@default kill\nlseek: arg2 == 5 => trap\n");
	struct pb_bpf_blob b;
	char why[256];
	uint32_t h;
	const struct sock_filter *insns;
	const struct probe pr[] = {
		{ SYS_lseek, { (uint64_t)-1, 0, 5 } },
		{ SYS_lseek, { (uint64_t)-1, 0, 0 } },
	};
	const struct probe pd[] = { { SYS_getppid, { 0 } }, { SYS_getpid, { 0 } } };

	ck_assert_int_eq(pb_policy_compile(p, 1, PB_COMPILE_ENFORCE, &b, why, sizeof(why)), 0);
	ck_assert(b.listener);
	ck_assert_uint_eq(b.nprograms, 2);
	ck_assert(blob_program(&b, 0, &h, &insns));
	ck_assert_uint_eq(h & (PB_PROG_LISTENER | PB_PROG_AFTER_START), 0); /* the guard */
	ck_assert(blob_program(&b, 1, &h, &insns));
	ck_assert_uint_eq(h & (PB_PROG_LISTENER | PB_PROG_AFTER_START), PB_PROG_LISTENER);
	ck_assert_uint_eq(h & 0xffff, b.ninsns[1]);
	pb_bpf_blob_free(&b);

	ck_assert_int_eq(pb_policy_compile(d, 1, PB_COMPILE_ENFORCE, &b, why, sizeof(why)), 0);
	ck_assert(b.listener);
	ck_assert(blob_program(&b, 1, &h, &insns));
	ck_assert_uint_eq(h & PB_PROG_LISTENER, PB_PROG_LISTENER);
	pb_bpf_blob_free(&b);

	ck_assert_int_eq(pb_policy_compile(none, 1, PB_COMPILE_ENFORCE, &b, why, sizeof(why)), 0);
	ck_assert(!b.listener);
	ck_assert(blob_program(&b, 1, &h, &insns));
	ck_assert_uint_eq(h & PB_PROG_LISTENER, 0);
	pb_bpf_blob_free(&b);

	/* learn mode: denials and @default become log */
	ck_assert_int_eq(pb_policy_compile(none, 1, PB_COMPILE_LEARN, &b, why, sizeof(why)), 0);
	ck_assert(b.listener);
	pb_bpf_blob_free(&b);

	run_probes(p, false, pr, 2);
	EXPECT(pr, 0, ERRNO, ENOSYS);
	EXPECT(pr, 1, ERRNO, ESTALE);
	run_probes(d, false, pd, 2);
	EXPECT(pd, 0, ERRNO, ENOSYS);
	EXPECT(pd, 1, RAN, 0);
	pb_policy_free(p);
	pb_policy_free(d);
	pb_policy_free(none);
}
END_TEST

/* ---- argument filters ------------------------------------------------------- */

static bool oracle(enum pb_cmp_op op, uint64_t v, uint64_t k, bool narrow)
{
	if (narrow) {
		v &= UINT32_MAX;
		k &= UINT32_MAX;
	}
	switch (op) {
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

/* Each operator on two 32-bit arguments (fcntl arg1, ioctl arg1) and two
 * 64-bit ones (lseek arg1, madvise arg0), at and around the boundaries and
 * with garbage in the half the kernel does not read. */
START_TEST(every_operator_narrow_and_wide)
{
	static const struct {
		const char *tok;
		enum pb_cmp_op op;
	} ops[] = {
		{ "==", PB_OP_EQ },
		{ "!=", PB_OP_NE },
		{ "<", PB_OP_LT },
		{ "<=", PB_OP_LE },
		{ ">", PB_OP_GT },
		{ ">=", PB_OP_GE },
		{ "&", PB_OP_ANY_BITS },
		{ "in", PB_OP_ONLY_BITS },
	};
	static const struct {
		long nr;
		int arg;
		bool narrow;
		uint64_t k;
		const char *ktext;
	} sys[] = {
		{ SYS_fcntl, 1, true, 0x80000000, "0x80000000" },
		{ SYS_ioctl, 1, true, 0x30, "0x30" },
		{ SYS_lseek, 1, false, 0x100000000, "0x100000000" },
		{ SYS_madvise, 0, false, 0x180000030, "0x180000030" },
	};
	static const uint64_t values[] = {
		0,
		1,
		0x10,
		0x2f,
		0x30,
		0x31,
		0x40,
		0x7fffffff,
		0x80000000,
		0x80000001,
		0xffffffff,
		0x100000000,
		0x100000001,
		0x100000030,
		0x180000000,
		0x18000002f,
		0x180000030,
		0x180000031,
		0x1ffffffff,
		0x200000000,
		0xffffffff00000030,
		0xffffffff80000000,
		0x8000000000000000,
		UINT64_MAX,
	};
	const size_t nv = sizeof(values) / sizeof(values[0]);
	struct probe pr[MAXPROBES];

	ck_assert_uint_le(4 * nv, MAXPROBES);
	for (size_t o = 0; o < sizeof(ops) / sizeof(ops[0]); o++) {
		struct pb_policy *p = policy_fmt(FLOOR "@default errno ESTALE\n"
		                                       "fcntl: arg1 %s %s => return EXDEV; return ENOTBLK\n"
		                                       "ioctl: arg1 %s %s => return EXDEV; return ENOTBLK\n"
		                                       "lseek: arg1 %s %s => return EXDEV; return ENOTBLK\n"
		                                       "madvise: arg0 %s %s => return EXDEV; return ENOTBLK\n",
		                                 ops[o].tok, sys[0].ktext, ops[o].tok, sys[1].ktext,
		                                 ops[o].tok, sys[2].ktext, ops[o].tok, sys[3].ktext);
		size_t n = 0;
		for (size_t s = 0; s < 4; s++)
			for (size_t v = 0; v < nv; v++) {
				memset(&pr[n], 0, sizeof(pr[n]));
				pr[n].nr = sys[s].nr;
				pr[n].a[0] = (uint64_t)-1;
				pr[n].a[2] = sys[s].nr == SYS_madvise ? 999 : 0;
				pr[n].a[sys[s].arg] = values[v];
				n++;
			}
		run_probes(p, false, pr, n);
		n = 0;
		for (size_t s = 0; s < 4; s++)
			for (size_t v = 0; v < nv; v++, n++) {
				bool holds = oracle(ops[o].op, values[v], sys[s].k, sys[s].narrow);
				ck_assert_msg(!sh->o[n].trapped && sh->o[n].err == (holds ? EXDEV : ENOTBLK),
				              "arg%d %s %s with %#llx (nr %ld): errno %d, expected %s",
				              sys[s].arg, ops[o].tok, sys[s].ktext,
				              (unsigned long long)values[v], sys[s].nr, sh->o[n].err,
				              holds ? "EXDEV" : "ENOTBLK");
			}
		pb_policy_free(p);
	}
}
END_TEST

/* CVE-2019-10063: the kernel reads ioctl's request as 32 bits, so TIOCSTI
 * with garbage above must still be caught, and FIONREAD with garbage above
 * is still FIONREAD. */
START_TEST(high_half_of_32bit_args)
{
	struct pb_policy *p = policy_from(FLOOR "@default errno ESTALE\n"
	                                        "ioctl: arg1 == TIOCSTI => kill\n"
	                                        "ioctl: arg1 == FIONREAD; return EPERM\n");
	const struct probe pr[] = {
		{ SYS_ioctl, { (uint64_t)-1, 0x100000000ULL | TIOCSTI } },
		{ SYS_ioctl, { (uint64_t)-1, 0xffffffff00000000ULL | FIONREAD } },
		{ SYS_ioctl, { (uint64_t)-1, TIOCSTI } },
		{ SYS_ioctl, { (uint64_t)-1, FIONREAD } },
		{ SYS_ioctl, { (uint64_t)-1, TCGETS } },
		{ SYS_ioctl, { (uint64_t)-1, 0x100000000ULL | TCGETS } },
	};

	ck_assert_int_eq(TIOCSTI, 0x5412);
	ck_assert_int_eq(FIONREAD, 0x541B);
	run_probes(p, false, pr, 6);
	EXPECT(pr, 0, KILL, 0);
	EXPECT(pr, 1, RAN, EBADF);
	EXPECT(pr, 2, KILL, 0);
	EXPECT(pr, 3, RAN, EBADF);
	EXPECT(pr, 4, ERRNO, EPERM);
	EXPECT(pr, 5, ERRNO, EPERM);
	pb_policy_free(p);
}
END_TEST

START_TEST(self_pid_and_negative_values)
{
	struct pb_policy *p = policy_from(FLOOR "@default errno ESTALE\n"
	                                        "kill: arg0 == SELF_PID && arg1 == 0; return EXDEV\n"
	                                        "lseek: arg1 == -1 => return ENOTBLK\n"
	                                        "lseek: arg2 == -1 => return EMLINK\n"
	                                        "lseek: arg2 in ~0x80000000 => return ECHRNG; return EL2HLT\n");
	const struct probe pr[] = {
		{ SYS_kill, { SELF_ARG, 0 } },
		{ SYS_kill, { 1, 0 } },
		{ SYS_lseek, { (uint64_t)-1, UINT64_MAX, 0 } },
		{ SYS_lseek, { (uint64_t)-1, UINT32_MAX, 0 } }, /* wide: not -1 */
		{ SYS_lseek, { (uint64_t)-1, 0, UINT32_MAX } }, /* narrow: -1 */
		{ SYS_lseek, { (uint64_t)-1, 0, 0x7fffffff } },
		{ SYS_lseek, { (uint64_t)-1, 0, 0x80000000 } },
	};
	run_probes(p, false, pr, 7);
	EXPECT(pr, 0, RAN, 0);
	EXPECT(pr, 1, ERRNO, EXDEV);
	EXPECT(pr, 2, ERRNO, ENOTBLK);
	EXPECT(pr, 3, ERRNO, ECHRNG); /* falls to arg2 == 0 */
	EXPECT(pr, 4, ERRNO, EMLINK);
	EXPECT(pr, 5, ERRNO, ECHRNG);
	EXPECT(pr, 6, ERRNO, EL2HLT);
	pb_policy_free(p);
}
END_TEST

/* ---- the guard -------------------------------------------------------------- */

#if defined(__x86_64__)
START_TEST(x32_numbers_are_killed)
{
	struct pb_policy *p = policy_from(FLOOR "@default errno ESTALE\ngetpid: 1\nlseek: 1\n");
	const struct probe pr[] = {
		{ SYS_getpid, { 0 } },
		{ 0x40000000 | SYS_getpid, { 0 } },
		{ 0x40000000 | SYS_lseek, { (uint64_t)-1, 0, 0 } },
		{ SYS_lseek, { (uint64_t)-1, 0, 0 } },
	};
	run_probes(p, false, pr, 4);
	EXPECT(pr, 0, RAN, 0);
	EXPECT(pr, 1, KILL, 0);
	EXPECT(pr, 2, KILL, 0);
	EXPECT(pr, 3, RAN, EBADF);
	pb_policy_free(p);

	/* A trap in the policy ties with the guard's, and the kernel would take
	 * the newer filter's errno: x32 must still be killed, not trapped with
	 * the policy's errno. */
	p = policy_from(FLOOR "@default trap EPERM\ngetpid: trap ESTALE\n");
	run_probes(p, false, pr, 3);
	EXPECT(pr, 0, TRAP, ESTALE); /* the policy's own trap */
	EXPECT(pr, 1, KILL, 0);
	EXPECT(pr, 2, KILL, 0);
	pb_policy_free(p);
}
END_TEST
#endif

/* Reading the SIGSYS handler is fine (import signal does it); replacing it
 * ends the process without running the handler. */
START_TEST(replacing_the_sigsys_handler_kills)
{
	struct pb_policy *p = policy_from(FLOOR "@default errno ESTALE\nrt_sigaction: 1\n");
	struct probe pr[] = {
		{ SYS_rt_sigaction, { SIGSYS, 0, 0, 8 } },  /* read it */
		{ SYS_rt_sigaction, { SIGUSR1, 0, 0, 8 } }, /* other signals: fine */
		{ SYS_rt_sigaction, { SIGUSR1, 0, 0, 8 } },
		{ SYS_rt_sigaction, { 0x100000000ULL | SIGSYS, 0, 0, 8 } }, /* replace it */
	};
	int st;

	map_shared();
	pr[0].a[2] = (uint64_t)(uintptr_t)sh->buf;
	pr[1].a[2] = (uint64_t)(uintptr_t)sh->buf; /* read SIGUSR1's ... */
	pr[2].a[1] = (uint64_t)(uintptr_t)sh->buf; /* ... and set it back */
	pr[3].a[1] = (uint64_t)(uintptr_t)sh->buf;
	st = run_probes_mode(p, PB_COMPILE_ENFORCE, false, pr, 4);
	ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS, "status %#x", st);
	ck_assert_int_eq(sh->done, 3);
	ck_assert_int_eq(sh->handler_runs, 0);
	EXPECT(pr, 0, RAN, 0);
	EXPECT(pr, 1, RAN, 0);
	EXPECT(pr, 2, RAN, 0);
	pb_policy_free(p);
}
END_TEST

/* ---- long chains: jumps past 255 instructions ------------------------------- */

START_TEST(long_chains)
{
	static char text[65536];
	size_t len = 0;
	struct pb_policy *p;
	struct pb_bpf_blob b;
	char why[256];
	uint32_t h;
	const struct sock_filter *insns;
	bool has_ja = false;

	len += (size_t)snprintf(text + len, sizeof(text) - len,
	                        FLOOR "@default errno ESTALE\ngetppid: return EXDEV\n");
	for (int i = 0; i < 400; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len,
		                        "lseek: arg1 == %d => return %d\n", 1000 + i, i + 1);
	len += (size_t)snprintf(text + len, sizeof(text) - len, "lseek: return 4000\nmadvise: ");
	for (int i = 1; i <= 64; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "%sarg0 != %d",
		                        i > 1 ? " && " : "", i);
	len += (size_t)snprintf(text + len, sizeof(text) - len,
	                        " => return 4001; return 4002\ngetpid: 1\n");
	ck_assert_uint_lt(len, sizeof(text) - 1);
	p = policy_from(text);
	ck_assert_uint_eq(p->start.n, 4 + 1 + 400 + 1 + 2 + 1);

	ck_assert_int_eq(pb_policy_compile(p, 1, PB_COMPILE_ENFORCE, &b, why, sizeof(why)), 0);
	ck_assert(blob_program(&b, 1, &h, &insns));
	ck_assert_uint_gt(h & 0xffff, 2000);
	for (unsigned i = 0; i < (h & 0xffff); i++)
		has_ja |= insns[i].code == (BPF_JMP | BPF_JA);
	ck_assert_msg(has_ja, "no long jump in a program of %u instructions", h & 0xffff);
	pb_bpf_blob_free(&b);

	const struct probe pr[] = {
		{ SYS_lseek, { (uint64_t)-1, 1000 } },
		{ SYS_lseek, { (uint64_t)-1, 1200 } },
		{ SYS_lseek, { (uint64_t)-1, 1399 } },
		{ SYS_lseek, { (uint64_t)-1, 999 } },
		{ SYS_lseek, { (uint64_t)-1, 1400 } },
		{ SYS_lseek, { (uint64_t)-1, 0x100000000ULL | 1000 } },
		{ SYS_getppid, { 0 } },
		{ SYS_madvise, { 1, 0, 999 } },
		{ SYS_madvise, { 33, 0, 999 } },
		{ SYS_madvise, { 64, 0, 999 } },
		{ SYS_madvise, { 65, 0, 999 } },
		{ SYS_madvise, { 0x100000001ULL, 0, 999 } },
		{ SYS_getpid, { 0 } },
		{ SYS_gettid, { 0 } },
	};
	run_probes(p, false, pr, 14);
	EXPECT(pr, 0, ERRNO, 1);
	EXPECT(pr, 1, ERRNO, 201);
	EXPECT(pr, 2, ERRNO, 400);
	EXPECT(pr, 3, ERRNO, 4000);
	EXPECT(pr, 4, ERRNO, 4000);
	EXPECT(pr, 5, ERRNO, 4000);
	EXPECT(pr, 6, ERRNO, EXDEV);
	EXPECT(pr, 7, ERRNO, 4002);
	EXPECT(pr, 8, ERRNO, 4002);
	EXPECT(pr, 9, ERRNO, 4002);
	EXPECT(pr, 10, ERRNO, 4001);
	EXPECT(pr, 11, ERRNO, 4001);
	EXPECT(pr, 12, RAN, 0);
	EXPECT(pr, 13, ERRNO, ESTALE);
	pb_policy_free(p);
}
END_TEST

/* ---- @after-start ------------------------------------------------------------ */

START_TEST(after_start_only_tightens)
{
	struct pb_policy *p = policy_from(FLOOR "@default errno ESTALE\n"
	                                        "lseek: arg2 == 3 => kill\n"
	                                        "lseek: arg2 == 4 => trap EMLINK\n"
	                                        "lseek: arg2 == 5 => return EXDEV\n"
	                                        "lseek: 1\n"
	                                        "@after-start\n"
	                                        "lseek: arg2 == 0 => return ENOTBLK\n"
	                                        "lseek: arg2 == 3 => trap EPERM\n"
	                                        "lseek: arg2 == 5 => trap EPERM\n"
	                                        "lseek: arg2 == 4 => return EACCES\n");
	const struct probe pr[] = {
		{ SYS_lseek, { (uint64_t)-1, 0, 0 } },
		{ SYS_lseek, { (uint64_t)-1, 0, 1 } },
		{ SYS_lseek, { (uint64_t)-1, 0, 3 } },
		{ SYS_lseek, { (uint64_t)-1, 0, 4 } },
		{ SYS_lseek, { (uint64_t)-1, 0, 5 } },
		{ SYS_seccomp, { SECCOMP_SET_MODE_FILTER, 0, 0 } },
		{ SYS_seccomp, { SECCOMP_GET_ACTION_AVAIL, 0, 0 } },
	};
	static const struct {
		enum expect kind;
		int e;
		enum pb_action_kind k;
	} before[] = {
		{ RAN, EBADF, PB_ACT_ALLOW },
		{ RAN, EBADF, PB_ACT_ALLOW },
		{ KILL, 0, PB_ACT_KILL },
		{ TRAP, EMLINK, PB_ACT_TRAP },
		{ ERRNO, EXDEV, PB_ACT_ERRNO },
		{ RAN, EFAULT, 0 },
		{ ERRNO, ESTALE, 0 },
	},
	  after[] = {
		  { ERRNO, ENOTBLK, PB_ACT_ERRNO },
		  { RAN, EBADF, PB_ACT_ALLOW },
		  { KILL, 0, PB_ACT_KILL },
		  { TRAP, EMLINK, PB_ACT_TRAP },
		  { TRAP, EPERM, PB_ACT_TRAP },
		  { ERRNO, EPERM, 0 },
		  { ERRNO, EPERM, 0 },
	  };
	struct pb_action a;

	ck_assert_uint_eq(p->after.n, 4);
	run_probes(p, false, pr, 7);
	for (size_t i = 0; i < 7; i++)
		expect_at(i, &pr[i], before[i].kind, before[i].e, __LINE__);
	run_probes(p, true, pr, 7);
	for (size_t i = 0; i < 7; i++)
		expect_at(i, &pr[i], after[i].kind, after[i].e, __LINE__);
	/* the matcher agrees, for what it is asked about (not the seccomp door) */
	for (size_t i = 0; i < 5; i++) {
		pb_policy_match(p, SYS_lseek, pr[i].a, 1, false, &a);
		ck_assert_int_eq(a.kind, before[i].k);
		pb_policy_match(p, SYS_lseek, pr[i].a, 1, true, &a);
		ck_assert_msg(a.kind == after[i].k && (a.kind != PB_ACT_TRAP && a.kind != PB_ACT_ERRNO ? 1 : a.err == after[i].e), "whence %llu: matcher says kind %d err %d",
		              (unsigned long long)pr[i].a[2], a.kind, a.err);
	}
	pb_policy_free(p);
}
END_TEST

/* ---- the shipped policies ---------------------------------------------------- */

/* The line number of the first line of policies/FILE starting with text. */
#define shipped_line(file, text) line_starting(PB_TEST_POLICIES, (file), (text))

START_TEST(match_on_python_policy)
{
	struct diag d = { .len = 0 };
	struct pb_policy *p = NULL;
	uint64_t args[6] = { 0 };
	const struct pb_entry *e;
	struct pb_action a;
	const int32_t pid = 777;

	ck_assert_msg(pb_policy_load(PB_TEST_POLICIES, "python", collect, &d, &p) == 0, "%s", d.text);
	ck_assert_msg(d.errors == 0 && d.warnings == 0, "%s", d.text);

	e = pb_policy_match(p, SYS_ptrace, args, pid, false, &a);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(a.kind, PB_ACT_KILL);
	ck_assert_int_eq(e->action.kind, PB_ACT_KILL);
	ck_assert_uint_eq(e->where.line, shipped_line("python.policy", "@attack: kill"));
	ck_assert_uint_eq(e->where.col, 1);
	ck_assert(ends_with(e->where.file, "/python.policy"));
	ck_assert_str_eq(e->text, "@attack: kill");

	args[0] = 0;
	args[1] = 4096;
	args[2] = PROT_READ | PROT_WRITE | PROT_EXEC;
	args[3] = MAP_PRIVATE | MAP_ANONYMOUS;
	/* writable and executable: allowed (ctypes callbacks; DESIGN.md 3) */
	e = pb_policy_match(p, SYS_mmap, args, pid, false, &a);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(a.kind, PB_ACT_ALLOW);
	ck_assert_uint_eq(e->where.line, shipped_line("python.policy", "mmap: 1"));
	args[2] = PROT_READ | PROT_WRITE;
	e = pb_policy_match(p, SYS_mmap, args, pid, false, &a);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(a.kind, PB_ACT_ALLOW);
	ck_assert_uint_eq(e->where.line, shipped_line("python.policy", "mmap: 1"));

	memset(args, 0, sizeof(args));
	args[0] = (uint64_t)pid;
	e = pb_policy_match(p, SYS_kill, args, pid, false, &a);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(a.kind, PB_ACT_ALLOW);
	ck_assert_ptr_nonnull(e->cond);
	args[0] = 0xffffffff00000000ULL | (uint64_t)pid; /* kill's pid is 32 bits */
	e = pb_policy_match(p, SYS_kill, args, pid, false, &a);
	ck_assert_int_eq(a.kind, PB_ACT_ALLOW);
	args[0] = (uint64_t)pid + 1;
	e = pb_policy_match(p, SYS_kill, args, pid, false, &a);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(a.kind, PB_ACT_TRAP);
	ck_assert_int_eq(a.err, EPERM);
	ck_assert_ptr_null(e->cond);
	ck_assert_uint_eq(e->where.line, shipped_line("python.policy", "kill: arg0 == SELF_PID"));

	/* not named: refused with ENOSYS and reported (DESIGN.md invariant 3) */
	e = pb_policy_match(p, SYS_timerfd_create, args, pid, false, &a);
	ck_assert_ptr_null(e);
	ck_assert_int_eq(a.kind, PB_ACT_TRAP);
	ck_assert_int_eq(a.err, ENOSYS);
	ck_assert_int_eq(p->dflt.kind, PB_ACT_TRAP);
	ck_assert_uint_eq(p->dflt_where.line, shipped_line("python.policy", "@default trap ENOSYS"));
	pb_policy_free(p);
}
END_TEST

/* default.policy (python's rules through @include), loaded for real. */
START_TEST(default_policy_for_real)
{
	struct diag d = { .len = 0 };
	struct pb_policy *p = NULL;
	const struct probe pr[] = {
		{ SYS_getppid, { 0 } },
		{ SYS_openat, { (uint64_t)AT_FDCWD, 0, O_WRONLY | O_CREAT, 0600 } },
		{ SYS_ioctl, { (uint64_t)-1, 0x100000000ULL | TIOCSTI } },
		{ SYS_ioctl, { (uint64_t)-1, TCGETS } },
		{ SYS_ioctl, { (uint64_t)-1, TIOCGWINSZ } },
		{ SYS_socket, { AF_INET, SOCK_STREAM, 0 } },
		{ SYS_clone3, { 0, 0 } },
		{ SYS_kill, { 1, 0 } },
		{ SYS_kill, { SELF_ARG, 0 } },
		{ SYS_mmap, { 0, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0 } },
		{ SYS_timerfd_create, { 0, 0, 0 } },
		{ SYS_ptrace, { 2, 1, 0, 0 } },
	};

	ck_assert_msg(pb_policy_load(PB_TEST_POLICIES, "default", collect, &d, &p) == 0, "%s", d.text);
	ck_assert_uint_eq(p->nincludes, 1);
	ck_assert_str_eq(p->includes[0], "python");
	run_probes(p, false, pr, 12);
	EXPECT(pr, 0, RAN, 0);
	EXPECT(pr, 1, ERRNO, EROFS);
	EXPECT(pr, 2, KILL, 0);
	EXPECT(pr, 3, RAN, EBADF);
	EXPECT(pr, 4, ERRNO, ENOTTY);
	EXPECT(pr, 5, TRAP, EACCES);
	EXPECT(pr, 6, ERRNO, ENOSYS);
	EXPECT(pr, 7, TRAP, EPERM);
	EXPECT(pr, 8, RAN, 0);
	EXPECT(pr, 9, RAN, 0);        /* writable and executable: ctypes callbacks */
	EXPECT(pr, 10, TRAP, ENOSYS); /* not named: refused and reported */
	EXPECT(pr, 11, KILL, 0);      /* @attack */
	pb_policy_free(p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("policy");
	TCase *tc = tcase_create("policy");
	SRunner *sr;
	int failed;

	if (policy_test_tmpdir("check_policy") < 0)
		return 1;
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, every_action_in_rules);
	tcase_add_test(tc, every_default);
	tcase_add_test(tc, log_needs_a_listener);
	tcase_add_test(tc, every_operator_narrow_and_wide);
	tcase_add_test(tc, high_half_of_32bit_args);
	tcase_add_test(tc, self_pid_and_negative_values);
#if defined(__x86_64__)
	tcase_add_test(tc, x32_numbers_are_killed);
#endif
	tcase_add_test(tc, replacing_the_sigsys_handler_kills);
	tcase_add_test(tc, long_chains);
	tcase_add_test(tc, after_start_only_tightens);
	tcase_add_test(tc, match_on_python_policy);
	tcase_add_test(tc, default_policy_for_real);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
