/* measure.c - plugbox's calls as a host makes them through the public API
 * (plugbox.h, libplugbox): one call at a time (round trip, and the
 * supervisor's CPU per call), many in flight (pipelined), and a
 * syscall-heavy plugin call under the worker's seccomp filter. Each
 * section measures its baselines first and records the ratios.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* ---- supervisors ----------------------------------------------------------- */

static size_t output_lines;
static char last_output[512];

/* Plugin output and supervisor notes (urllib3's denied IPv6 probe...):
 * counted, shown with --verbose, never mixed into the tables. */
static void sink(void *userdata, const char *plugin, pb_stream stream, const char *line)
{
	(void)userdata;
	(void)stream;
	output_lines++;
	snprintf(last_output, sizeof(last_output), "[%s] %s", plugin, line);
	if (cfg.verbose)
		fprintf(stderr, "bench: output: %s\n", last_output);
}

pb_supervisor *sup_new(const char *plugins, pb_spawn_mode mode, const char *cache)
{
	pb_supervisor *s;
	int r = pb_supervisor_new(plugins, &s);

	if (r < 0)
		die("pb_supervisor_new(%s): %s", plugins, strerror(-r));
	if (pb_supervisor_set_worker(s, cfg.worker) < 0 || pb_supervisor_set_policies(s, cfg.policies) < 0 ||
	    pb_supervisor_set_timeout(s, 600) < 0)
		die("supervisor settings: %s", pb_supervisor_strerror(s));
	if (pb_supervisor_set_spawn_mode(s, mode) < 0)
		die("spawn mode %d: %s", (int)mode, pb_supervisor_strerror(s));
	if (pb_supervisor_set_bytecode_cache(s, cache) < 0)
		die("bytecode cache %s: %s", cache ? cache : "(off)", pb_supervisor_strerror(s));
	pb_supervisor_set_output(s, sink, NULL);
	return s;
}

int call_echo(pb_supervisor *s, const char *plugin, int64_t x)
{
	pb_value *arg = pb_value_new_int(x), *res = NULL;
	pb_error *err = NULL;
	int r = pb_call(s, plugin, "echo", &arg, 1, &res, &err);
	int ok = r == 0 && res && pb_value_get_kind(res) == PB_VALUE_INT && pb_value_get_int(res) == x;

	if (err && cfg.verbose)
		bench_log("%s.echo: %s: %s", plugin, pb_error_kind_name(pb_error_get_kind(err)),
		          pb_error_get_message(err));
	if (err && !ok)
		note("%s.echo failed: %s: %s", plugin, pb_error_kind_name(pb_error_get_kind(err)),
		     pb_error_get_message(err));
	pb_value_destroy(arg);
	pb_value_destroy(res);
	pb_error_free(err);
	return ok ? 0 : -EIO;
}

size_t wait_state(pb_supervisor *s, char **names, size_t n, const char *want, double timeout_s)
{
	uint64_t until = now_ns() + (uint64_t)(timeout_s * 1e9);
	size_t there = 0;

	for (;;) {
		size_t settled = 0;
		there = 0;
		for (size_t i = 0; i < n; i++) {
			const char *st = pb_supervisor_plugin_state(s, names[i]);
			if (st && !strcmp(st, want))
				there++;
			if (st && (!strcmp(st, want) || !strcmp(st, "failed")))
				settled++;
		}
		if (settled == n || now_ns() > until)
			return there;
		pb_supervisor_dispatch(s, 20);
	}
}

/* ---- round trip ---------------------------------------------------------------- */

static void pin_self(int cpu)
{
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	sched_setaffinity(0, sizeof(one), &one);
}

/* Timed pb_calls of echo into median and p99 (µs). worker_cpu >= 0: the
 * worker is started while this process runs on worker_cpu (it inherits
 * that), then this process moves to sup_cpu, so the two talk across CPUs. */
static int plugbox_rt(int worker_cpu, int sup_cpu, double *med, double *p99)
{
	cpu_set_t saved;
	pb_supervisor *s;
	pb_value *arg;
	double *v;
	size_t n = cfg.rt_samples, done = 0;

	sched_getaffinity(0, sizeof(saved), &saved);
	if (worker_cpu >= 0)
		pin_self(worker_cpu);
	s = sup_new(echo_plugins(0), PB_SPAWN_EXEC, NULL);
	if (call_echo(s, "echo", 1) < 0) {
		pb_supervisor_free(s);
		sched_setaffinity(0, sizeof(saved), &saved);
		return -EIO;
	}
	if (worker_cpu >= 0)
		pin_self(sup_cpu);
	arg = pb_value_new_int(12345);
	v = xcalloc(n, sizeof(double));
	for (size_t i = 0; i < cfg.rt_warmup + n; i++) {
		pb_value *res = NULL;
		pb_error *err = NULL;
		uint64_t t0 = now_ns();
		int r = pb_call(s, "echo", "echo", &arg, 1, &res, &err);
		uint64_t t1 = now_ns();
		if (r < 0) {
			note("plugbox round trip: call %zu failed: %s", i, err ? pb_error_get_message(err) : "?");
			pb_error_free(err);
			break;
		}
		pb_value_destroy(res);
		if (i >= cfg.rt_warmup)
			v[done++] = (double)(t1 - t0);
	}
	pb_value_destroy(arg);
	pb_supervisor_free(s);
	sched_setaffinity(0, sizeof(saved), &saved);
	if (done == n) {
		*med = median(v, n) / 1e3;
		*p99 = percentile(v, n, 0.99) / 1e3;
	}
	free(v);
	return done == n ? 0 : -EIO;
}

void bench_roundtrip(void)
{
	double med, p99;

	bench_baselines_roundtrip();
	bench_log("%s: round trip, plugbox", cur_placement == PL_PINNED ? "pinned" : "unpinned");
	if (plugbox_rt(-1, -1, &med, &p99) == 0) {
		fig("roundtrip.plugbox_median_us", "plugbox pb_call(echo, int): median", "us", med);
		fig("roundtrip.plugbox_p99_us", "plugbox pb_call(echo, int): p99", "us", p99);
	}
	if (cur_placement == PL_UNPINNED && cpu_count_allowed() >= 2 &&
	    plugbox_rt(nth_allowed_cpu(1), nth_allowed_cpu(0), &med, &p99) == 0) {
		fig("roundtrip.plugbox_cross_median_us", "plugbox, worker forced onto the other CPU: median", "us", med);
		fig("roundtrip.plugbox_cross_p99_us", "plugbox, worker forced onto the other CPU: p99", "us", p99);
	}
	fig_ratio("roundtrip.ratio_plugbox_cpipe", "plugbox / C pipe blocking (median)", "roundtrip.plugbox_median_us",
	          "roundtrip.cpipe_median_us");
	fig_ratio("roundtrip.ratio_p99_plugbox_cpipe", "plugbox / C pipe blocking (p99)", "roundtrip.plugbox_p99_us",
	          "roundtrip.cpipe_p99_us");
	fig_ratio("roundtrip.ratio_plugbox_cpipe_spin", "plugbox / C pipe busy-poll (median)",
	          "roundtrip.plugbox_median_us", "roundtrip.cpipe_spin_median_us");
	fig_ratio("roundtrip.ratio_mp_plugbox", "multiprocessing.Pipe / plugbox (median)", "roundtrip.mp_median_us",
	          "roundtrip.plugbox_median_us");
	if (cur_placement == PL_UNPINNED && !isnan(fig_get(PL_UNPINNED, "roundtrip.cpipe_cross_median_us"))) {
		fig_ratio("roundtrip.ratio_plugbox_cpipe_cross", "plugbox (default affinity) / C pipe blocking across CPUs",
		          "roundtrip.plugbox_median_us", "roundtrip.cpipe_cross_median_us");
		fig_ratio("roundtrip.ratio_plugbox_cross_cpipe_cross", "plugbox across CPUs / C pipe blocking across CPUs",
		          "roundtrip.plugbox_cross_median_us", "roundtrip.cpipe_cross_median_us");
	}
}

/* ---- pipelined ------------------------------------------------------------------ */

void tally_done(void *userdata, uint64_t id, pb_value *result, pb_error *err)
{
	struct tally *t = userdata;
	(void)id;
	t->done++;
	if (result && pb_value_get_kind(result) == PB_VALUE_INT)
		t->ok++;
	else if (err && cfg.verbose)
		bench_log("%s: %s", pb_error_get_plugin(err), pb_error_get_message(err));
	pb_value_destroy(result);
	pb_error_free(err);
}

/* total calls to one plugin, depth at a time: issue depth calls, dispatch
 * until all have ended, repeat. Calls per second, or NAN. */
static double plugbox_pipelined(pb_supervisor *s, size_t total, unsigned depth)
{
	pb_value *arg = pb_value_new_int(7);
	pb_call_spec spec = { .plugin = "echo", .function = "echo", .args = &arg, .nargs = 1 };
	struct tally t = { 0, 0 };
	size_t issued = 0;
	uint64_t t0 = now_ns();

	while (issued < total) {
		for (unsigned i = 0; i < depth && issued < total; i++, issued++)
			if (pb_call_start(s, &spec, tally_done, &t, NULL) < 0)
				die("pb_call_start failed");
		while (t.done < issued)
			if (pb_supervisor_dispatch(s, -1) < 0)
				break;
	}
	double secs = (double)(now_ns() - t0) / 1e9;
	pb_value_destroy(arg);
	if (t.ok != total) {
		note("pipelined depth %u: %zu of %zu calls answered", depth, t.ok, total);
		return NAN;
	}
	return (double)total / secs;
}

void bench_pipelined(void)
{
	struct echo e;
	static const unsigned depths[] = { 64, 256 };
	double best = NAN;
	pb_supervisor *s;

	bench_log("%s: pipelined", cur_placement == PL_PINNED ? "pinned" : "unpinned");
	if (echo_start(&e, PP_BLOCK, -1, true, NULL, NULL) == 0) {
		fig("pipelined.cpipe_batched_frames_s", "C pipe, 64 in flight, one write + one read per batch", "/s",
		    echo_pipelined(&e, cfg.pipe_calls * 20, 64, true));
		echo_stop(&e);
	}
	if (echo_start(&e, PP_BLOCK, -1, false, NULL, NULL) == 0) {
		fig("pipelined.cpipe_unbatched_frames_s", "C pipe, 64 in flight, one syscall per frame", "/s",
		    echo_pipelined(&e, cfg.pipe_calls * 4, 64, false));
		echo_stop(&e);
	}
	s = sup_new(echo_plugins(0), PB_SPAWN_EXEC, NULL);
	if (call_echo(s, "echo", 1) == 0) {
		plugbox_pipelined(s, cfg.pipe_calls / 10, 64); /* warm-up */
		for (size_t i = 0; i < sizeof(depths) / sizeof(depths[0]); i++) {
			char key[64], label[112];
			double r = plugbox_pipelined(s, cfg.pipe_calls, depths[i]);
			snprintf(key, sizeof(key), "pipelined.plugbox_d%u_calls_s", depths[i]);
			snprintf(label, sizeof(label), "plugbox, %u pb_call_start then dispatch, calls", depths[i]);
			fig(key, label, "/s", r);
			if (!isnan(r) && (isnan(best) || r > best))
				best = r;
		}
	}
	pb_supervisor_free(s);
	fig("pipelined.plugbox_best_calls_s", "plugbox pipelined, best depth", "/s", best);
	fig_ratio("pipelined.ratio_plugbox_cpipe", "plugbox best / C pipe batched", "pipelined.plugbox_best_calls_s",
	          "pipelined.cpipe_batched_frames_s");
}

/* ---- supervisor CPU --------------------------------------------------------------- */

static void record_usage(const char *who, const char *what, const struct usage *u, double scale, double per)
{
	char key[64], label[112];

	snprintf(key, sizeof(key), "cpu.%s_s_per_100k", who);
	snprintf(label, sizeof(label), "%s", what);
	fig(key, label, "s", (u->user_s + u->sys_s) * scale);
	snprintf(key, sizeof(key), "cpu.%s_user_s_per_100k", who);
	fig(key, "  of which user", "s", u->user_s * scale);
	snprintf(key, sizeof(key), "cpu.%s_sys_s_per_100k", who);
	fig(key, "  of which system", "s", u->sys_s * scale);
	snprintf(key, sizeof(key), "cpu.%s_syscr_per_call", who);
	fig(key, "  read-like syscalls per call (/proc/self/io)", "", u->syscr * per);
	snprintf(key, sizeof(key), "cpu.%s_syscw_per_call", who);
	fig(key, "  write-like syscalls per call", "", u->syscw * per);
	snprintf(key, sizeof(key), "cpu.%s_vcsw_per_call", who);
	fig(key, "  voluntary context switches per call", "", u->vcsw * per);
}

void bench_cpu(void)
{
	struct pp_result r;
	struct usage before, used;
	pb_supervisor *s;
	size_t n = cfg.cpu_calls, done = 0;
	double scale = 1e5 / (double)n, per = 1 / (double)n;
	uint64_t t0;

	bench_log("%s: supervisor CPU", cur_placement == PL_PINNED ? "pinned" : "unpinned");
	s = sup_new(echo_plugins(0), PB_SPAWN_EXEC, NULL);
	if (call_echo(s, "echo", 1) == 0) {
		for (size_t i = 0; i < 1000; i++)
			call_echo(s, "echo", (int64_t)i);
		usage_now(&before);
		t0 = now_ns();
		for (; done < n; done++)
			if (call_echo(s, "echo", (int64_t)done) < 0)
				break;
		double wall = (double)(now_ns() - t0) / 1e9;
		usage_since(&used, &before);
		if (done == n) {
			record_usage("plugbox", "plugbox: bench process CPU per 100k pb_call", &used, scale, per);
			fig("cpu.plugbox_wall_s_per_100k", "plugbox: wall time per 100k pb_call", "s", wall * scale);
		}
	}
	pb_supervisor_free(s);
	if (pingpong(n, 1000, PP_BLOCK, -1, -1, &r) == 0)
		record_usage("cpipe_parent", "C pipe ping-pong: parent CPU per 100k round trips", &r.parent, scale, per);
	fig_ratio("cpu.ratio_plugbox_cpipe", "plugbox / C pipe parent (CPU)", "cpu.plugbox_s_per_100k",
	          "cpu.cpipe_parent_s_per_100k");
}

/* ---- seccomp -------------------------------------------------------------------------- */

static double map_float(const pb_value *m, const char *key)
{
	const pb_value *v = pb_value_map_get(m, key);
	if (!v)
		return NAN;
	if (pb_value_get_kind(v) == PB_VALUE_FLOAT)
		return pb_value_get_float(v);
	if (pb_value_get_kind(v) == PB_VALUE_INT)
		return (double)pb_value_get_int(v);
	return NAN;
}

static void plugin_sysloop(void)
{
	const char *dir = sysheavy_plugins();
	pb_supervisor *s = sup_new(dir, PB_SPAWN_EXEC, NULL);
	pb_value *args[2] = { pb_value_new_int((int64_t)cfg.sys_n), pb_value_new_int((int64_t)cfg.sys_reps) };
	pb_value *res = NULL;
	pb_error *err = NULL;

	if (pb_call(s, "sysheavy", "measure", args, 2, &res, &err) == 0 && pb_value_get_kind(res) == PB_VALUE_MAP) {
		fig("seccomp.plugbox_noop_ns", "plugbox worker (filtered): loop of abs(0), per iteration", "ns",
		    map_float(res, "noop_ns"));
		fig("seccomp.plugbox_getppid_ns", "plugbox worker (filtered): loop of os.getppid()", "ns",
		    map_float(res, "getppid_ns"));
		fig("seccomp.plugbox_fcntl_ns", "plugbox worker (filtered): loop of fcntl(F_GETFD)", "ns",
		    map_float(res, "fcntl_ns"));
	} else {
		note("sysheavy.measure failed: %s", err ? pb_error_get_message(err) : "not a map");
	}
	pb_value_destroy(res);
	pb_error_free(err);
	pb_value_destroy(args[0]);
	pb_value_destroy(args[1]);
	pb_supervisor_free(s);
}

/* bench-filter prints one line of JSON; see filter.c. */
static void c_filter(void)
{
	char n_sys[32], loops[32], n_rt[32], out[2048];
	double u, f;

	snprintf(n_sys, sizeof(n_sys), "%zu", cfg.sys_n);
	snprintf(loops, sizeof(loops), "%zu", cfg.sys_reps);
	snprintf(n_rt, sizeof(n_rt), "%zu", cfg.rt_samples);
	char *argv[] = { (char *)cfg.filter_helper, (char *)cfg.policies, n_sys, loops, n_rt, NULL };
	int rc = run_cmd(argv, out, sizeof(out), false, NULL);
	if (rc != 0) {
		note("bench-filter failed (exit %d)", rc);
		return;
	}
	fig("seccomp.c_getppid_ns", "C: getppid() unfiltered", "ns", json_field(out, "getppid_ns"));
	fig("seccomp.c_getppid_filtered_ns", "C: getppid() under default.policy's filter", "ns",
	    json_field(out, "getppid_filtered_ns"));
	fig("seccomp.c_getppid_added_ns", "C: ns the filter adds per getppid()", "ns",
	    json_field(out, "getppid_filtered_ns") - json_field(out, "getppid_ns"));
	fig("seccomp.c_fcntl_ns", "C: fcntl(F_GETFD) unfiltered", "ns", json_field(out, "fcntl_ns"));
	fig("seccomp.c_fcntl_filtered_ns", "C: fcntl(F_GETFD) under the filter (argument checked)", "ns",
	    json_field(out, "fcntl_filtered_ns"));
	fig("seccomp.c_fcntl_added_ns", "C: ns the filter adds per fcntl(F_GETFD)", "ns",
	    json_field(out, "fcntl_filtered_ns") - json_field(out, "fcntl_ns"));
	/* The programs in blob order (policy_compile.c): the guard, the
	 * policy's start-up rules, the after-start rules when there are any. */
	static const char *const prog_names[] = { "the guard", "the start-up rules", "the after-start rules" };
	for (int i = 0; i < 3; i++) {
		char k[64], key[64], label[112];
		snprintf(k, sizeof(k), "prog%d_insns", i);
		double insns = json_field(out, k);
		if (isnan(insns))
			break;
		snprintf(k, sizeof(k), "prog%d_getppid_ns", i);
		snprintf(key, sizeof(key), "seccomp.c_prog%d_getppid_added_ns", i);
		snprintf(label, sizeof(label), "C: getppid() ns added by %s alone (%.0f insns)", prog_names[i], insns);
		fig(key, label, "ns", json_field(out, k) - json_field(out, "getppid_ns"));
		snprintf(k, sizeof(k), "prog%d_fcntl_ns", i);
		snprintf(key, sizeof(key), "seccomp.c_prog%d_fcntl_added_ns", i);
		snprintf(label, sizeof(label), "C: fcntl(F_GETFD) ns added by %s alone", prog_names[i]);
		fig(key, label, "ns", json_field(out, k) - json_field(out, "fcntl_ns"));
	}
	u = json_field(out, "rt_us");
	f = json_field(out, "rt_filtered_us");
	fig("seccomp.c_rt_us", "C pipe round trip, echo side unfiltered (interleaved)", "us", u);
	fig("seccomp.c_rt_filtered_us", "C pipe round trip, echo side filtered (interleaved)", "us", f);
	fig("seccomp.filter_share_rt", "filter's share of a C round trip: filtered/unfiltered - 1", "x",
	    (isnan(u) || u <= 0) ? NAN : f / u - 1);
	/* The echo side makes two syscalls (read, write) per round trip, both
	 * allowed without conditions like getppid. */
	fig("seccomp.filter_share_rt_computed", "the same from 2 x getppid's added ns / round trip", "x",
	    2 * (json_field(out, "getppid_filtered_ns") - json_field(out, "getppid_ns")) / (u * 1e3));
}

void bench_seccomp(void)
{
	char loops[512];

	bench_log("%s: seccomp", cur_placement == PL_PINNED ? "pinned" : "unpinned");
	snprintf(loops, sizeof(loops), "%s/sysheavy", sysheavy_plugins());
	bench_baselines_sysloop(loops);
	plugin_sysloop();
	fig_ratio("seccomp.ratio_getppid_plugbox_python", "os.getppid() loop: plugbox worker / python3.11",
	          "seccomp.plugbox_getppid_ns", "seccomp.python_getppid_ns");
	fig_ratio("seccomp.ratio_fcntl_plugbox_python", "fcntl(F_GETFD) loop: plugbox worker / python3.11",
	          "seccomp.plugbox_fcntl_ns", "seccomp.python_fcntl_ns");
	fig_ratio("seccomp.ratio_noop_plugbox_python", "abs(0) loop (no syscall): plugbox worker / python3.11",
	          "seccomp.plugbox_noop_ns", "seccomp.python_noop_ns");
	c_filter();
}
