/* check_bpf.c - the compiled programs, run through a small classic-BPF
 * interpreter: for thousands of random calls against random policies the
 * verdict must be pb_policy_match's, and the guard must say what it says.
 * The interpreter is supervisor/policy/bpf_run.c, shared with fuzz_policy.c and `plugbox policy test`.
 * (check_policy.c loads filters into the kernel; this runs them here.)
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
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
#include "tests/lib/bpf_interp.h"

/* ---- differential: a BPF interpreter against pb_policy_match ----------------- */

static __attribute__((noreturn)) void bpf_fail(const char *what, size_t pc)
{
	ck_abort_msg("broken BPF program: %s at instruction %zu", what, pc);
}

/* The blob's programs, through the shared interpreter (supervisor/policy/bpf_run.c). */
static uint32_t run_filters(const struct pb_bpf_blob *b, bool with_after, const struct seccomp_data *d)
{
	struct pb_bpf_prog progs[8];
	unsigned n = 0;

	while (n < 8 && blob_program(b, n, &progs[n].header, &progs[n].insns))
		n++;
	return bpf_run_chain(progs, n, with_after, d, bpf_fail);
}

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

static unsigned below(unsigned n)
{
	return (unsigned)(rnd() % n);
}

#define DIFF_PID 4242

static const struct {
	const char *name;
	long nr;
} diff_sys[] = {
	{ "ioctl", SYS_ioctl }, { "lseek", SYS_lseek }, { "madvise", SYS_madvise }, { "mmap", SYS_mmap }, { "kill", SYS_kill }, { "prlimit64", SYS_prlimit64 }, { "getpriority", SYS_getpriority }, { "clone", SYS_clone }, { "fcntl", SYS_fcntl }, { "unshare", SYS_unshare }, /* @attack: learn mode keeps its verdicts */
};
#define NSYS (sizeof(diff_sys) / sizeof(diff_sys[0]))

static const char *const narrow_pool[] = {
	"0",
	"1",
	"2",
	"0x30",
	"0x7fffffff",
	"0x80000000",
	"0xffffffff",
	"-1",
	"TIOCSTI",
	"FIONREAD",
	"PROT_EXEC|PROT_WRITE",
	"~0x10",
	"SELF_PID",
	"017",
	"4242",
};
static const char *const wide_pool[] = {
	"0x100000000",
	"0x180000000",
	"0xffffffff00000000",
	"0x8000000000000000",
	"0x1ffffffff",
	"18446744073709551615",
	"~0x100000000",
	"0x100000030|0x2",
};
static const uint64_t interesting[] = {
	0,
	1,
	2,
	0x30,
	0x7fffffff,
	0x80000000,
	0xffffffff,
	UINT64_MAX,
	0x5412,
	0x541B,
	6,
	~0x10ULL,
	017,
	DIFF_PID,
	0x100000000,
	0x180000000,
	0xffffffff00000000,
	0x8000000000000000,
	0x1ffffffff,
	~0x100000000ULL,
	0x100000032,
};

static const char *diff_action(bool after)
{
	static const char *const acts[] = {
		"1",
		"allow",
		"kill",
		"trap",
		"trap EMLINK",
		"trap EPERM",
		"return EXDEV",
		"return ENOTBLK",
		"return 77",
		"log",
	};
	return acts[below(after ? 9 : 10)];
}

static size_t diff_cond(char *buf, size_t len, const char *sys)
{
	static const char *const ops[] = { "==", "!=", "<", "<=", ">", ">=", "&", "in" };
	unsigned nclauses = 1 + below(3);
	size_t n = 0;

	for (unsigned c = 0; c < nclauses; c++) {
		unsigned natoms = 1 + below(3);
		for (unsigned a = 0; a < natoms; a++) {
			unsigned arg = below(6);
			bool narrow = pb_syscall_arg_is_32bit(sys, arg) == 1;
			const char *v = !narrow && below(2) ? wide_pool[below(sizeof(wide_pool) / sizeof(wide_pool[0]))] : narrow_pool[below(sizeof(narrow_pool) / sizeof(narrow_pool[0]))];
			n += (size_t)snprintf(buf + n, len - n, "%sarg%u %s %s",
			                      a ? " && " : c ? " || "
			                                     : "",
			                      arg, ops[below(8)], v);
		}
	}
	return n;
}

static void diff_policy(char *buf, size_t len)
{
	static const char *const defaults[] = {
		"@default kill",
		"@default enosys",
		"@default errno EXDEV",
		"@default trap EMLINK",
		"@default trap",
		"@default log",
		"",
	};
	size_t n = (size_t)snprintf(buf, len, FLOOR "%s\n", defaults[below(7)]);
	unsigned sections = below(3) ? 1 : 2;

	/* sometimes a long run first, for jumps past 255 instructions */
	if (below(4) == 0)
		for (unsigned i = 0; i < 120; i++)
			n += (size_t)snprintf(buf + n, len - n, "lseek: arg1 == %u => return %u\n",
			                      5000 + i, 100 + i);

	for (unsigned s = 0; s < sections; s++) {
		bool decided[NSYS] = { false };
		unsigned nrules = 1 + below(30);
		if (s == 1)
			n += (size_t)snprintf(buf + n, len - n, "@after-start\n");
		for (unsigned r = 0; r < nrules && n < len - 2048; r++) {
			unsigned k = below(NSYS);
			const char *name = diff_sys[k].name;
			if (decided[k])
				continue;
			n += (size_t)snprintf(buf + n, len - n, "%s: ", name);
			switch (below(6)) {
			case 0:
				n += (size_t)snprintf(buf + n, len - n, "%s\n", diff_action(s));
				decided[k] = true;
				break;
			case 1:
				n += diff_cond(buf + n, len - n, name);
				n += (size_t)snprintf(buf + n, len - n, "\n");
				break;
			case 2:
			case 3:
				n += diff_cond(buf + n, len - n, name);
				n += (size_t)snprintf(buf + n, len - n, " => %s\n", diff_action(s));
				break;
			case 4:
				n += diff_cond(buf + n, len - n, name);
				n += (size_t)snprintf(buf + n, len - n, "; %s\n", diff_action(s));
				decided[k] = true;
				break;
			default:
				n += diff_cond(buf + n, len - n, name);
				n += (size_t)snprintf(buf + n, len - n, " => %s; %s\n", diff_action(s),
				                      diff_action(s));
				decided[k] = true;
				break;
			}
		}
	}
}

static uint64_t diff_arg(void)
{
	uint64_t v = interesting[below(sizeof(interesting) / sizeof(interesting[0]))];

	switch (below(8)) {
	case 0: return v + 1;
	case 1: return v - 1;
	case 2: return (v & UINT32_MAX) | (uint64_t)(uint32_t)rnd() << 32;
	case 3: return (v & UINT32_MAX) | 0xffffffff00000000ULL;
	case 4: return rnd();
	case 5: return rnd() & 0xff;
	default: return v;
	}
}

START_TEST(compiled_programs_agree_with_the_matcher)
{
	static char text[65536];
	unsigned compared = 0;

	rng_state = 0x9e3779b97f4a7c15ULL;
	for (int pi = 0; pi < 60; pi++) {
		struct pb_policy *p;
		struct pb_bpf_blob enforce, learn;
		char why[256];

		diff_policy(text, sizeof(text));
		p = policy_from(text);
		ck_assert_msg(pb_policy_compile(p, DIFF_PID, PB_COMPILE_ENFORCE, &enforce, why,
		                                sizeof(why)) == 0,
		              "%s\n%s", why, text);
		ck_assert_msg(pb_policy_compile(p, DIFF_PID, PB_COMPILE_LEARN, &learn, why,
		                                sizeof(why)) == 0,
		              "%s\n%s", why, text);
		for (int t = 0; t < 150; t++) {
			struct seccomp_data d = { .arch = NATIVE_ARCH };
			struct pb_action a;
			uint32_t want, got;

			d.nr = t % 10 == 9 ? SYS_getppid : (int)diff_sys[below(NSYS)].nr;
			uint64_t args[6];
			for (int k = 0; k < 6; k++)
				d.args[k] = args[k] = diff_arg();

			const struct pb_entry *decided = pb_policy_match(p, d.nr, args, DIFF_PID, false, &a);
			want = bpf_action_value(&a);
			got = run_filters(&enforce, false, &d);
			ck_assert_msg(got == want, "start-up: nr %d args %#llx %#llx %#llx %#llx %#llx "
			                           "%#llx: program %#x, matcher %#x\n%s",
			              d.nr,
			              (unsigned long long)d.args[0], (unsigned long long)d.args[1],
			              (unsigned long long)d.args[2], (unsigned long long)d.args[3],
			              (unsigned long long)d.args[4], (unsigned long long)d.args[5],
			              got, want, text);
			got = run_filters(&learn, true, &d);
			want = bpf_learn_expect(&a, decided != NULL, d.nr, args);
			ck_assert_msg(got == want, "learn: nr %d: program %#x, expected %#x\n%s", d.nr,
			              got, want, text);

			pb_policy_match(p, d.nr, args, DIFF_PID, true, &a);
			want = bpf_action_value(&a);
			got = run_filters(&enforce, true, &d);
			ck_assert_msg(got == want, "after start: nr %d args %#llx %#llx %#llx %#llx "
			                           "%#llx %#llx: programs %#x, matcher %#x\n%s",
			              d.nr,
			              (unsigned long long)d.args[0], (unsigned long long)d.args[1],
			              (unsigned long long)d.args[2], (unsigned long long)d.args[3],
			              (unsigned long long)d.args[4], (unsigned long long)d.args[5],
			              got, want, text);
			compared += 3;
		}
		pb_bpf_blob_free(&enforce);
		pb_bpf_blob_free(&learn);
		pb_policy_free(p);
	}
	ck_assert_uint_eq(compared, 60 * 150 * 3);
}
END_TEST

/* The guard, through the interpreter: foreign architectures, x32 and
 * replacing the SIGSYS handler. */
START_TEST(guard_program)
{
	struct pb_policy *p = policy_from(FLOOR "@default errno ESTALE\nrt_sigaction: 1\n");
	struct pb_bpf_blob b;
	char why[256];
	uint32_t h;
	const struct sock_filter *g;
	struct seccomp_data d = { .nr = SYS_rt_sigaction, .arch = NATIVE_ARCH };

	ck_assert_int_eq(pb_policy_compile(p, 1, PB_COMPILE_ENFORCE, &b, why, sizeof(why)), 0);
	ck_assert(blob_program(&b, 0, &h, &g));
	d.args[0] = SIGSYS;
	ck_assert_uint_eq(bpf_run(g, h & 0xffff, &d, bpf_fail), SECCOMP_RET_ALLOW); /* read it */
	d.args[1] = 0x1000;
	ck_assert_uint_eq(bpf_run(g, h & 0xffff, &d, bpf_fail), SECCOMP_RET_KILL_PROCESS);
	d.args[1] = 0x100000000ULL;
	ck_assert_uint_eq(bpf_run(g, h & 0xffff, &d, bpf_fail), SECCOMP_RET_KILL_PROCESS);
	d.args[0] = 0xffffffff00000000ULL | SIGSYS;
	ck_assert_uint_eq(bpf_run(g, h & 0xffff, &d, bpf_fail), SECCOMP_RET_KILL_PROCESS);
	d.args[0] = SIGUSR1;
	ck_assert_uint_eq(bpf_run(g, h & 0xffff, &d, bpf_fail), SECCOMP_RET_ALLOW);
	d.arch = AUDIT_ARCH_I386;
	ck_assert_uint_eq(bpf_run(g, h & 0xffff, &d, bpf_fail), SECCOMP_RET_TRAP | PB_TRAP_KILL);
#if defined(__x86_64__)
	d.arch = NATIVE_ARCH;
	d.nr = 0x40000000 | SYS_getpid;
	ck_assert_uint_eq(bpf_run(g, h & 0xffff, &d, bpf_fail), SECCOMP_RET_TRAP | PB_TRAP_KILL);
#endif
	pb_bpf_blob_free(&b);
	pb_policy_free(p);
}
END_TEST

/* A policy keeps its last compile (a worker's programs are made at its
 * start and again at its Hello): what comes back for the same pid and mode
 * is the same bytes as a fresh compile's, and another pid or mode is
 * compiled anew, never served the kept one. */
START_TEST(kept_compile_is_the_right_one)
{
	const char *text = FLOOR "@default errno ESTALE\nkill: arg0 == SELF_PID; return EPERM\n";
	struct pb_policy *p = policy_from(text), *fresh = policy_from(text);
	struct pb_bpf_blob a, again, other, ref, zyg;
	char why[256];

	ck_assert_int_eq(pb_policy_compile(p, 7, PB_COMPILE_ENFORCE, &a, why, sizeof(why)), 0);
	ck_assert_int_eq(pb_policy_compile(p, 7, PB_COMPILE_ENFORCE, &again, why, sizeof(why)), 0);
	ck_assert_ptr_ne(a.data, again.data); /* a copy: each caller frees its own */
	ck_assert_uint_eq(a.len, again.len);
	ck_assert_mem_eq(a.data, again.data, a.len);
	ck_assert_uint_eq(a.nprograms, again.nprograms);
	ck_assert_int_eq(pb_policy_compile(p, 8, PB_COMPILE_ENFORCE, &other, why, sizeof(why)), 0);
	ck_assert_int_eq(pb_policy_compile(fresh, 8, PB_COMPILE_ENFORCE, &ref, why, sizeof(why)), 0);
	ck_assert_uint_eq(other.len, ref.len);
	ck_assert_mem_eq(other.data, ref.data, ref.len);
	ck_assert(other.len != a.len || memcmp(other.data, a.data, a.len) != 0); /* the pid is in it */
	ck_assert_int_eq(pb_policy_compile(p, 8, PB_COMPILE_ZYGOTE_CHILD, &zyg, why, sizeof(why)), 0);
	ck_assert(zyg.len != ref.len || memcmp(zyg.data, ref.data, ref.len) != 0);
	pb_bpf_blob_free(&a);
	pb_bpf_blob_free(&again);
	pb_bpf_blob_free(&other);
	pb_bpf_blob_free(&ref);
	pb_bpf_blob_free(&zyg);
	pb_policy_free(p);
	pb_policy_free(fresh);
}
END_TEST

/* --spawn zygote: the zygote's program lets it fork and lets SELF_PID
 * name any pid; its child's program, compiled for the child's own pid,
 * refuses a process clone before any rule decides. */
START_TEST(zygote_programs)
{
	struct pb_policy *p = policy_from(FLOOR "@default errno ESTALE\n"
	                                        "clone: arg0 & CLONE_THREAD; return EPERM\n"
	                                        "kill: arg0 == SELF_PID; return EPERM\n");
	struct pb_policy *logging = policy_from(FLOOR "@default log\n");
	const uint32_t eperm = SECCOMP_RET_ERRNO | EPERM;
	const uint64_t thread = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM |
	                        CLONE_SETTLS | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID;
	struct pb_bpf_blob z, c, plain;
	char why[256];
	struct seccomp_data d = { .arch = NATIVE_ARCH };

	ck_assert_int_eq(pb_policy_compile(p, PB_SELF_PID_ANY, PB_COMPILE_ZYGOTE, &z, why, sizeof(why)), 0);
	ck_assert_int_eq(pb_policy_compile(p, 7, PB_COMPILE_ZYGOTE_CHILD, &c, why, sizeof(why)), 0);
	ck_assert_int_eq(pb_policy_compile(p, 7, PB_COMPILE_ENFORCE, &plain, why, sizeof(why)), 0);
	d.nr = SYS_clone;
	d.args[0] = SIGCHLD | CLONE_PIDFD; /* a process */
	ck_assert_uint_eq(run_filters(&z, false, &d), SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(run_filters(&c, true, &d), eperm);
	ck_assert_uint_eq(run_filters(&plain, true, &d), eperm);
	d.args[0] = thread;
	ck_assert_uint_eq(run_filters(&z, false, &d), SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(run_filters(&c, true, &d), SECCOMP_RET_ALLOW);
	d.args[0] = SIGCHLD | CLONE_NEWUSER; /* never a namespace, not even in the zygote */
	ck_assert_uint_ne(run_filters(&z, false, &d), SECCOMP_RET_ALLOW);
	d.nr = SYS_kill;
	d.args[0] = 3; /* a sibling in the zygote's pid namespace */
	ck_assert_uint_eq(run_filters(&z, false, &d), SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(run_filters(&c, true, &d), eperm);
	d.args[0] = 7; /* itself */
	ck_assert_uint_eq(run_filters(&c, true, &d), SECCOMP_RET_ALLOW);
	d.nr = SYS_seccomp; /* the child loads its own programs */
	d.args[0] = SECCOMP_SET_MODE_FILTER;
	ck_assert_uint_eq(run_filters(&z, false, &d), SECCOMP_RET_ALLOW);
	d.nr = SYS_recvmsg; /* its control socket, and no other */
	d.args[0] = 3;
	ck_assert_uint_eq(run_filters(&z, false, &d), SECCOMP_RET_ALLOW);
	d.args[0] = 4;
	ck_assert_uint_eq(run_filters(&z, false, &d), SECCOMP_RET_ERRNO | ESTALE);
	/* No zygote for a policy whose log rules need a listener. */
	pb_bpf_blob_free(&z);
	ck_assert_int_eq(pb_policy_compile(logging, PB_SELF_PID_ANY, PB_COMPILE_ZYGOTE, &z, why, sizeof(why)),
	                 -ENOTSUP);
	pb_bpf_blob_free(&c);
	pb_bpf_blob_free(&plain);
	pb_policy_free(logging);
	pb_policy_free(p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("bpf");
	TCase *tc = tcase_create("bpf");
	SRunner *sr;
	int failed;

	if (policy_test_tmpdir("check_bpf") < 0)
		return 1;
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, compiled_programs_agree_with_the_matcher);
	tcase_add_test(tc, guard_program);
	tcase_add_test(tc, kept_compile_is_the_right_one);
	tcase_add_test(tc, zygote_programs);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
