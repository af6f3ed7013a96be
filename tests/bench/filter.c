/* filter.c - bench-filter: what plugbox's seccomp filter itself costs,
 * measured in C without Python or IPC in the way. It compiles the shipped
 * default.policy with the supervisor's own code (libpbcore: pb_policy_load,
 * pb_policy_compile) and loads the programs as worker/sandbox.c does
 * (no_new_privs, then seccomp(SECCOMP_SET_MODE_FILTER, TSYNC) per program,
 * the after-start ones too, since plugin code runs under all of them).
 *
 *   bench-filter POLICIES_DIR LOOP_SYSCALLS LOOPS N_ROUNDTRIPS
 *
 * prints one line of JSON: ns per getppid() and per fcntl(0, F_GETFD), in
 * a child without and children with the filter, whole or one program of it
 * alone (the median of LOOPS short loops of LOOP_SYSCALLS, taken in turns:
 * a loop that got preempted on a busy machine is an outlier),
 * and the C pipe round trip with the echo side unfiltered and filtered,
 * interleaved in blocks so that drift on a busy machine hits both alike.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "policy/policy.h"

#define MAX_LOOPS 1000
#define BLOCK 100

static struct pb_bpf_blob blob;

static void diag(void *data, bool is_error, const char *line)
{
	(void)data;
	if (is_error)
		fprintf(stderr, "bench-filter: %s\n", line);
}

/* Runs in a child: after this, only what default.policy allows. arg:
 * NULL for every program, or a bit mask of the programs to load. */
static void load_filter(void *arg)
{
	const unsigned *only = arg;
	size_t off = 0;
	unsigned index = 0;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		perror("bench-filter: no_new_privs");
		_exit(3);
	}
	while (off + 4 <= blob.len) {
		uint32_t header = (uint32_t)blob.data[off] | (uint32_t)blob.data[off + 1] << 8 |
		                  (uint32_t)blob.data[off + 2] << 16 | (uint32_t)blob.data[off + 3] << 24;
		uint32_t count = header & 0xffffu;
		struct sock_filter *insns = malloc(count * sizeof(*insns));
		struct sock_fprog prog = { .len = (unsigned short)count, .filter = insns };

		off += 4;
		if (!insns || off + count * sizeof(*insns) > blob.len)
			_exit(3);
		memcpy(insns, blob.data + off, count * sizeof(*insns));
		off += count * sizeof(*insns);
		if (only && !(*only & (1u << index++))) {
			free(insns);
			continue;
		}
		/* A listener program's `log` verdicts would wait for an answer
		 * nobody gives; none of the syscalls measured here is logged. */
		if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog) != 0) {
			perror("bench-filter: seccomp");
			_exit(3);
		}
		free(insns);
	}
}

static double loop_ns(int which, size_t n)
{
	uint64_t t0 = now_ns();

	for (size_t i = 0; i < n; i++) {
		if (which == 0)
			syscall(SYS_getppid);
		else
			fcntl(0, F_GETFD);
	}
	return (double)(now_ns() - t0) / (double)n;
}

/* A child that times loops on command: it loads its programs first
 * (none, all, or one alone), then for every byte it reads (0: getppid,
 * 1: fcntl) runs one loop of n and writes back the ns per syscall. */
struct looper {
	pid_t pid;
	int cmd, res;
};

static int looper_start(struct looper *l, bool filtered, unsigned only, size_t n)
{
	int c[2], r[2];

	if (pipe2(c, O_CLOEXEC) < 0 || pipe2(r, O_CLOEXEC) < 0)
		return -errno;
	l->pid = fork_child();
	if (l->pid < 0)
		return -errno;
	if (l->pid == 0) {
		unsigned char which;
		if (filtered)
			load_filter(only ? &only : NULL);
		while (read(c[0], &which, 1) == 1) {
			double ns = loop_ns(which, n);
			if (write(r[1], &ns, sizeof(ns)) != (ssize_t)sizeof(ns))
				break;
		}
		_exit(0);
	}
	close(c[0]);
	close(r[1]);
	l->cmd = c[1];
	l->res = r[0];
	return 0;
}

static double looper_run(struct looper *l, unsigned char which)
{
	double ns;

	if (write(l->cmd, &which, 1) != 1 || read(l->res, &ns, sizeof(ns)) != (ssize_t)sizeof(ns))
		return NAN;
	return ns;
}

static void looper_stop(struct looper *l)
{
	close(l->cmd);
	close(l->res);
	kill(l->pid, SIGKILL);
	waitpid(l->pid, NULL, 0);
}

/* ns per getppid and per fcntl for each looper: REPS loops each, taken in
 * turns (every looper's k-th loop before anyone's k+1-th), medians. */
static int time_syscalls(struct looper *l, size_t nl, size_t loops, double (*out)[2])
{
	static double v[8][2][MAX_LOOPS];

	for (size_t i = 0; i < nl; i++)
		for (unsigned char w = 0; w < 2; w++)
			looper_run(&l[i], w); /* warm-up */
	for (size_t k = 0; k < loops; k++)
		for (unsigned char w = 0; w < 2; w++)
			for (size_t i = 0; i < nl; i++)
				v[i][w][k] = looper_run(&l[i], w);
	for (size_t i = 0; i < nl; i++)
		for (int w = 0; w < 2; w++) {
			for (size_t k = 0; k < loops; k++)
				if (isnan(v[i][w][k]))
					return -EIO;
			out[i][w] = median(v[i][w], loops);
		}
	return 0;
}

static int interleaved(size_t n, double *plain_us, double *filtered_us)
{
	struct echo a, b;
	double *sa = calloc(n, sizeof(double)), *sb = calloc(n, sizeof(double));
	int r = -ENOMEM;

	if (!sa || !sb)
		goto out;
	if ((r = echo_start(&a, PP_BLOCK, -1, false, NULL, NULL)) < 0)
		goto out;
	if ((r = echo_start(&b, PP_BLOCK, -1, false, load_filter, NULL)) < 0) {
		echo_stop(&a);
		goto out;
	}
	r = echo_roundtrips(&a, 1000, NULL);
	if (r == 0)
		r = echo_roundtrips(&b, 1000, NULL);
	for (size_t done = 0; r == 0 && done < n; done += BLOCK) {
		size_t k = n - done < BLOCK ? n - done : BLOCK;
		r = echo_roundtrips(&a, k, sa + done);
		if (r == 0)
			r = echo_roundtrips(&b, k, sb + done);
	}
	echo_stop(&a);
	echo_stop(&b);
	if (r == 0) {
		*plain_us = median(sa, n) / 1e3;
		*filtered_us = median(sb, n) / 1e3;
	}
out:
	free(sa);
	free(sb);
	return r;
}

int main(int argc, char **argv)
{
	struct pb_policy *policy = NULL;
	char why[512];
	double plain[2], filt[2], alone[3][2] = { { NAN, NAN }, { NAN, NAN }, { NAN, NAN } }, rt = NAN, rt_f = NAN;
	size_t n_sys, loops, n_rt;

	if (argc != 5) {
		fprintf(stderr, "usage: bench-filter POLICIES_DIR LOOP_SYSCALLS LOOPS N_ROUNDTRIPS\n");
		return 2;
	}
	n_sys = strtoul(argv[2], NULL, 10);
	loops = strtoul(argv[3], NULL, 10);
	n_rt = strtoul(argv[4], NULL, 10);
	if (n_sys == 0 || loops == 0 || loops > MAX_LOOPS || n_rt == 0)
		return 2;
	if (pb_policy_load(argv[1], "default", diag, NULL, &policy) < 0) {
		fprintf(stderr, "bench-filter: %s/default.policy does not load\n", argv[1]);
		return 2;
	}
	if (pb_policy_compile(policy, (int32_t)getpid(), PB_COMPILE_ENFORCE, &blob, why, sizeof(why)) < 0) {
		fprintf(stderr, "bench-filter: compiling default.policy: %s\n", why);
		return 2;
	}
	/* Unfiltered, filtered, and which program costs what: each alone
	 * (the kernel skips a filter for a syscall whose verdict it has proved
	 * constant: its action cache). */
	struct looper l[2 + 3];
	double res[2 + 3][2];
	size_t nl = 2 + (blob.nprograms < 3 ? blob.nprograms : 3);
	for (size_t i = 0; i < nl; i++)
		if (looper_start(&l[i], i > 0, i >= 2 ? 1u << (i - 2) : 0, n_sys) < 0)
			return 1;
	int tr = time_syscalls(l, nl, loops, res);
	for (size_t i = 0; i < nl; i++)
		looper_stop(&l[i]);
	if (tr < 0) {
		fprintf(stderr, "bench-filter: timing syscalls failed\n");
		return 1;
	}
	memcpy(plain, res[0], sizeof(plain));
	memcpy(filt, res[1], sizeof(filt));
	for (size_t i = 2; i < nl; i++)
		memcpy(alone[i - 2], res[i], sizeof(alone[0]));
	if (interleaved(n_rt, &rt, &rt_f) < 0) {
		fprintf(stderr, "bench-filter: round trips failed\n");
		return 1;
	}
	printf("{\"getppid_ns\": %.2f, \"getppid_filtered_ns\": %.2f, \"fcntl_ns\": %.2f, "
	       "\"fcntl_filtered_ns\": %.2f, \"rt_us\": %.3f, \"rt_filtered_us\": %.3f, \"programs\": %u, "
	       "\"insns\": %u",
	       plain[0], filt[0], plain[1], filt[1], rt, rt_f, blob.nprograms,
	       blob.ninsns[0] + blob.ninsns[1] + blob.ninsns[2]);
	for (unsigned i = 0; i < 3; i++)
		if (i < blob.nprograms)
			printf(", \"prog%u_insns\": %u, \"prog%u_getppid_ns\": %.2f, \"prog%u_fcntl_ns\": %.2f", i,
			       blob.ninsns[i], i, alone[i][0], i, alone[i][1]);
	printf("}\n");
	pb_bpf_blob_free(&blob);
	pb_policy_free(policy);
	return 0;
}
