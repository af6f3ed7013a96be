/* check_policy.c - the built-in policy, compiled and loaded for real.
 *
 * Each test forks a child that loads the compiled programs exactly as the
 * worker does and then makes the syscall under test; the parent checks what
 * the kernel did (errno, SIGSYS trap with its data, or death by SIGSYS).
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <ucontext.h>
#include <unistd.h>

#include "policy.h"

/* What the child's SIGSYS handler saw, sent back through the exit status. */
static volatile int trapped_nr = -1, trapped_data = -1;

static void on_sigsys(int sig, siginfo_t *si, void *ctx)
{
	ucontext_t *uc = ctx;
	(void)sig;
	trapped_nr = si->si_syscall;
	trapped_data = si->si_errno;
#if defined(__x86_64__)
	uc->uc_mcontext.gregs[REG_RAX] = -(si->si_errno ? si->si_errno : ENOSYS);
#elif defined(__aarch64__)
	uc->uc_mcontext.regs[0] = (uint64_t)-(int64_t)(si->si_errno ? si->si_errno : ENOSYS);
#endif
}

static void load_policy_in_child(void)
{
	struct pb_bpf_blob blob;
	char why[256];
	struct sigaction sa;
	size_t off = 0;

	if (pb_policy_compile(pb_policy_builtin(), getpid(), &blob, why, sizeof(why)) < 0)
		_exit(90);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSYS, &sa, NULL);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		_exit(91);
	while (off < blob.len) {
		uint32_t count;
		memcpy(&count, blob.data + off, 4);
		struct sock_fprog prog = { .len = (unsigned short)count,
		                           .filter = (struct sock_filter *)(blob.data + off + 4) };
		if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
			_exit(92);
		off += 4 + count * sizeof(struct sock_filter);
	}
}

/* Run body in a filtered child; return its wait status. */
static int in_child(void (*body)(void))
{
	int status;
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		load_policy_in_child();
		body();
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return status;
}

#define EXPECT(cond, code) do { if (!(cond)) _exit(code); } while (0)

START_TEST(compiles_three_programs)
{
	struct pb_bpf_blob blob;
	char why[256] = "";
	ck_assert_int_eq(pb_policy_compile(pb_policy_builtin(), 1234, &blob, why, sizeof(why)), 0);
	ck_assert_uint_eq(blob.nprograms, 3);
	ck_assert_uint_gt(blob.len, 100);
	pb_bpf_blob_free(&blob);
}
END_TEST

static void body_allowed_and_errnos(void)
{
	EXPECT(getpid() > 0, 10);
	EXPECT(open("/etc/hostname", O_RDONLY) >= 0 || errno == ENOENT, 11);
	errno = 0;
	EXPECT(open("/tmp/plugbox-check-policy", O_WRONLY | O_CREAT, 0600) < 0 && errno == EROFS, 12);
	errno = 0;
	EXPECT(syscall(SYS_clone3, NULL, 0) < 0 && errno == ENOSYS, 13);
	errno = 0;
	EXPECT(mkdir("/tmp/plugbox-check-dir", 0700) < 0 && errno == EROFS, 14);
	errno = 0;
	EXPECT(kill(getppid(), 0) < 0 && errno == EPERM, 15);
	EXPECT(trapped_data == EPERM, 16);       /* reported, then EPERM */
	EXPECT(kill(getpid(), 0) == 0, 17);
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	EXPECT(p == MAP_FAILED && errno == EPERM, 18);
	errno = 0;
	EXPECT(ioctl(0, TIOCGPGRP, NULL) < 0 && errno == EPERM, 19);   /* named, no condition held */
}

START_TEST(allows_and_denies_with_errnos)
{
	int st = in_child(body_allowed_and_errnos);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
}
END_TEST

static void body_socket_reported(void)
{
	errno = 0;
	EXPECT(socket(AF_INET6, SOCK_STREAM, 0) < 0 && errno == EACCES, 20);
	EXPECT(trapped_nr == SYS_socket && trapped_data == EACCES, 21);
	EXPECT(socketpair(AF_UNIX, SOCK_STREAM, 0, (int[2]){ 0, 0 }) == 0, 22);
}

START_TEST(socket_is_trapped_with_eacces)
{
	int st = in_child(body_socket_reported);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
}
END_TEST

static void body_ptrace(void)
{
	syscall(SYS_ptrace, 0, 0, 0, 0);
	EXPECT(trapped_nr == SYS_ptrace && trapped_data == PB_TRAP_KILL, 30);
	_exit(31);
}

START_TEST(ptrace_traps_for_kill)
{
	int st = in_child(body_ptrace);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 31, "status %#x", st);
}
END_TEST

static void body_unnamed(void)
{
	syscall(SYS_sched_setaffinity, 0, 0, NULL);   /* not named by the policy */
	EXPECT(trapped_nr == SYS_sched_setaffinity && trapped_data == PB_TRAP_KILL, 40);
	_exit(41);
}

START_TEST(unnamed_syscall_traps_for_kill)
{
	int st = in_child(body_unnamed);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 41, "status %#x", st);
}
END_TEST

static void body_replace_sigsys(void)
{
	struct sigaction old;
	/* Reading the handler, as `import signal` does, is fine... */
	if (sigaction(SIGSYS, NULL, &old) != 0)
		_exit(49);
	/* ...replacing it is not. */
	signal(SIGSYS, SIG_DFL);
	_exit(50);
}

START_TEST(replacing_the_reporter_kills)
{
	int st = in_child(body_replace_sigsys);
	ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS, "status %#x", st);
}
END_TEST

static void body_high_bits(void)
{
	/* TIOCSTI is killed; with garbage in the upper half the kernel would
	 * still see TIOCSTI, so the guard must trap it too. */
	syscall(SYS_ioctl, 0, 0x100000000ULL | TIOCGWINSZ, NULL);
	EXPECT(trapped_nr == SYS_ioctl && trapped_data == PB_TRAP_KILL, 60);
	_exit(61);
}

START_TEST(upper_half_garbage_traps)
{
	int st = in_child(body_high_bits);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 61, "status %#x", st);
}
END_TEST

#if defined(__x86_64__)
static void body_x32(void)
{
	syscall(0x40000000 | SYS_getpid);
	EXPECT(trapped_data == PB_TRAP_KILL, 70);
	_exit(71);
}

START_TEST(x32_entry_point_traps)
{
	int st = in_child(body_x32);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 71, "status %#x", st);
}
END_TEST
#endif

START_TEST(match_names_the_deciding_rule)
{
	const struct pb_policy *p = pb_policy_builtin();
	uint64_t args[6] = { 0 };
	const struct pb_syscall_rule *r;

	r = pb_policy_match(p, SYS_ptrace, args, 7);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->verdict, PB_KILL);
	ck_assert_str_eq(r->text, "ptrace: kill");
	args[2] = PROT_READ | PROT_WRITE | PROT_EXEC;
	args[3] = MAP_PRIVATE | MAP_ANONYMOUS;
	r = pb_policy_match(p, SYS_mmap, args, 7);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->verdict, PB_DENY_REPORT);
	args[0] = 7;
	r = pb_policy_match(p, SYS_kill, args, 7);
	ck_assert_int_eq(r->verdict, PB_ALLOW);
	args[0] = 8;
	r = pb_policy_match(p, SYS_kill, args, 7);
	ck_assert_int_eq(r->verdict, PB_DENY_REPORT);
	ck_assert_ptr_null(pb_policy_match(p, SYS_sched_setaffinity, args, 7));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("policy");
	TCase *tc = tcase_create("builtin");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, compiles_three_programs);
	tcase_add_test(tc, allows_and_denies_with_errnos);
	tcase_add_test(tc, socket_is_trapped_with_eacces);
	tcase_add_test(tc, ptrace_traps_for_kill);
	tcase_add_test(tc, unnamed_syscall_traps_for_kill);
	tcase_add_test(tc, replacing_the_reporter_kills);
	tcase_add_test(tc, upper_half_garbage_traps);
#if defined(__x86_64__)
	tcase_add_test(tc, x32_entry_point_traps);
#endif
	tcase_add_test(tc, match_names_the_deciding_rule);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
