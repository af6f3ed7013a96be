/* baselines.c - what plugbox is compared with, measured in the same run:
 * the C pipe ping-pong (blocking, busy-polling, across CPUs), Debian's
 * multiprocessing.Pipe, bare python3.11 starts (with and without the
 * vendored packages), idle python3.11 interpreters' PSS, and the syscall
 * loops run by python3.11 without a filter.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define SPIN_US 50

static void record_pp(const char *name, const char *what, const struct pp_result *r)
{
	char key[64], label[112];

	snprintf(key, sizeof(key), "roundtrip.%s_median_us", name);
	snprintf(label, sizeof(label), "%s: median", what);
	fig(key, label, "us", r->median_us);
	snprintf(key, sizeof(key), "roundtrip.%s_p99_us", name);
	snprintf(label, sizeof(label), "%s: p99", what);
	fig(key, label, "us", r->p99_us);
}

void bench_baselines_roundtrip(void)
{
	static const struct {
		const char *name, *what;
		struct pp_wait wait;
	} modes[] = {
		{ "cpipe", "C pipe ping-pong, blocking", { 0, false } },
		{ "cpipe_spin", "C pipe, busy-poll 50 us then block", { SPIN_US, false } },
		{ "cpipe_yield", "C pipe, poll + sched_yield 50 us then block", { SPIN_US, true } },
	};
	struct pp_result r;
	char n[32], w[32], out[512];

	bench_log("%s: round trip baselines", cur_placement == PL_PINNED ? "pinned" : "unpinned");
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (pingpong(cfg.rt_samples, cfg.rt_warmup, modes[i].wait, -1, -1, &r) == 0)
			record_pp(modes[i].name, modes[i].what, &r);
	if (cur_placement == PL_UNPINNED && cpu_count_allowed() >= 2) {
		int a = nth_allowed_cpu(0), b = nth_allowed_cpu(1);
		for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
			char name[32], what[96];
			snprintf(name, sizeof(name), "%s_cross", modes[i].name);
			snprintf(what, sizeof(what), "%s, across CPUs", modes[i].what);
			if (pingpong(cfg.rt_samples, cfg.rt_warmup, modes[i].wait, a, b, &r) == 0)
				record_pp(name, what, &r);
		}
	}

	snprintf(n, sizeof(n), "%zu", cfg.rt_samples);
	snprintf(w, sizeof(w), "%zu", cfg.rt_warmup);
	char *argv[] = { (char *)cfg.python3, "-I", (char *)cfg.mp_script, n, w, NULL };
	int rc = run_cmd(argv, out, sizeof(out), false, NULL);
	if (rc != 0) {
		note("multiprocessing.Pipe baseline failed (%s exit %d)", cfg.python3, rc);
		return;
	}
	fig("roundtrip.mp_median_us", "multiprocessing.Pipe ping-pong (python3): median", "us",
	    json_field(out, "median_us"));
	fig("roundtrip.mp_p99_us", "multiprocessing.Pipe ping-pong (python3): p99", "us", json_field(out, "p99_us"));
}

/* Median wall time of fork + exec + wait of argv, after one unmeasured run
 * (which also writes the bytecode when the command may). */
static double spawn_median_ms(char *const argv[], size_t samples, const char *what)
{
	double *v = xcalloc(samples, sizeof(double)), m;
	int rc = run_cmd(argv, NULL, 0, true, NULL);

	if (rc != 0) {
		note("%s: exit %d; not measured", what, rc);
		free(v);
		return NAN;
	}
	for (size_t i = 0; i < samples; i++)
		if (run_cmd(argv, NULL, 0, true, &v[i]) != 0) {
			free(v);
			return NAN;
		}
	m = median(v, samples);
	free(v);
	return m;
}

void bench_baselines_spawn(const char *deps_nopyc, const char *deps_pyc)
{
	char code_nopyc[1024], code_pyc[1024];
	size_t n = cfg.spawn_samples * 2; /* cheap: more samples, steadier median */

	char *bare[] = { (char *)cfg.python311, "-I", "-S", "-c", "pass", NULL };
	fig("spawn.bare_python_ms", "bare `python3.11 -I -S -c pass` (fork+exec+wait)", "ms",
	    spawn_median_ms(bare, n, "python3.11 -c pass"));
	if (!deps_nopyc || !deps_pyc)
		return;
	snprintf(code_nopyc, sizeof(code_nopyc), "import sys; sys.path[:0] = ['%s']; import requests, yaml",
	         deps_nopyc);
	snprintf(code_pyc, sizeof(code_pyc), "import sys; sys.path[:0] = ['%s']; import requests, yaml", deps_pyc);
	char *nopyc[] = { (char *)cfg.python311, "-I", "-S", "-B", "-c", code_nopyc, NULL };
	char *pyc[] = { (char *)cfg.python311, "-I", "-S", "-c", code_pyc, NULL };
	fig("spawn.bare_vendored_nopyc_ms", "bare python3.11, import requests, yaml (no .pyc)", "ms",
	    spawn_median_ms(nopyc, cfg.vendored_samples, "python3.11 import requests, yaml (-B)"));
	fig("spawn.bare_vendored_pyc_ms", "bare python3.11, import requests, yaml (.pyc written)", "ms",
	    spawn_median_ms(pyc, cfg.vendored_samples, "python3.11 import requests, yaml"));
}

/* count idle interpreters at once, as the workers are: each says it is up,
 * then blocks reading stdin, which stays open until they are measured. */
void bench_baselines_pss(size_t count)
{
	pid_t *pids = xcalloc(count, sizeof(pid_t));
	int *stdin_w = xcalloc(count, sizeof(int));
	double *pss = xcalloc(count, sizeof(double)), sum = 0, max = 0, anon_sum = 0;
	size_t up = 0, measured = 0;
	static const char code[] = "import sys; sys.stdout.write('r\\n'); sys.stdout.flush(); sys.stdin.read()";

	for (size_t i = 0; i < count; i++) {
		int in[2], out[2];
		char c[2];
		stdin_w[i] = -1;
		if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
			break;
		pids[i] = fork_child();
		if (pids[i] == 0) {
			dup2(in[0], 0);
			dup2(out[1], 1);
			execl(cfg.python311, cfg.python311, "-I", "-S", "-c", code, (char *)NULL);
			_exit(127);
		}
		close(in[0]);
		close(out[1]);
		stdin_w[i] = in[1];
		if (pids[i] > 0 && read(out[0], c, 2) == 2)
			up++;
		close(out[0]);
	}
	for (size_t i = 0; i < count; i++) {
		long anon = 0, kb = pids[i] > 0 ? pss_kb(pids[i], NULL, &anon) : -1;
		if (kb < 0)
			continue;
		anon_sum += (double)anon / 1024;
		pss[measured++] = (double)kb / 1024;
		sum += (double)kb / 1024;
		if ((double)kb / 1024 > max)
			max = (double)kb / 1024;
	}
	for (size_t i = 0; i < count; i++) {
		if (stdin_w[i] >= 0)
			close(stdin_w[i]);
		if (pids[i] > 0)
			waitpid(pids[i], NULL, 0);
	}
	if (measured > 0) {
		char label[112];
		snprintf(label, sizeof(label), "idle `python3.11 -I -S` x%zu: mean PSS", measured);
		fig("pss.python_idle_mean_mb", label, "MB", sum / (double)measured);
		fig("pss.python_idle_anon_mean_mb", "  of which anonymous", "MB", anon_sum / (double)measured);
		fig("pss.python_idle_max_mb", "idle `python3.11 -I -S`: max PSS", "MB", max);
	} else {
		note("idle python3.11 PSS: %zu of %zu started, none measurable", up, count);
	}
	free(pids);
	free(stdin_w);
	free(pss);
}

void bench_baselines_sysloop(const char *loops_dir)
{
	char code[1024], out[512];
	double noop, getppid_ns, fcntl_ns;

	snprintf(code, sizeof(code),
	         "import json, sys; sys.path.insert(0, '%s'); import loops; print(json.dumps(loops.measure(%zu, %zu)))",
	         loops_dir, cfg.sys_n, cfg.sys_reps);
	char *argv[] = { (char *)cfg.python311, "-I", "-S", "-B", "-c", code, NULL };
	if (run_cmd(argv, out, sizeof(out), false, NULL) != 0) {
		note("syscall loop in python3.11 failed");
		return;
	}
	noop = json_field(out, "noop_ns");
	getppid_ns = json_field(out, "getppid_ns");
	fcntl_ns = json_field(out, "fcntl_ns");
	fig("seccomp.python_noop_ns", "python3.11 unfiltered: loop of abs(0), per iteration", "ns", noop);
	fig("seccomp.python_getppid_ns", "python3.11 unfiltered: loop of os.getppid()", "ns", getppid_ns);
	fig("seccomp.python_fcntl_ns", "python3.11 unfiltered: loop of fcntl(F_GETFD)", "ns", fcntl_ns);
}
