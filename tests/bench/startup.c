/* startup.c - plugbox's starts and idle cost: spawn-to-first-result (cold
 * exec, restart, fork-server), the per-plugin bytecode cache cold and warm,
 * the PSS of idle workers, and many plugins alive at once. Also makes the
 * plugins directories the sections use, under the run's temporary dir.
 */
#include "config.h"

#include <dirent.h>
#include <limits.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"

/* ---- plugins directories ------------------------------------------------------ */

static char *path_join(const char *a, const char *b)
{
	char *p;
	if (asprintf(&p, "%s/%s", a, b) < 0)
		die("out of memory");
	return p;
}

static void copy_plugin(const char *name, const char *dir, const char *as)
{
	char *src = path_join(cfg.plugins_src, name), *dst = path_join(dir, as);
	int r;

	if ((r = copy_tree(src, dst, true)) < 0)
		die("copying %s to %s: %s", src, dst, strerror(-r));
	free(src);
	free(dst);
}

const char *echo_plugins(size_t count)
{
	static struct {
		size_t count;
		char *dir;
	} made[8];
	static size_t nmade;
	char name[64];
	char *dir;

	for (size_t i = 0; i < nmade; i++)
		if (made[i].count == count)
			return made[i].dir;
	snprintf(name, sizeof(name), "echo-%zu", count);
	dir = path_join(cfg.tmp, name);
	if (mkdir(dir, 0755) < 0)
		die("mkdir %s: %s", dir, strerror(errno));
	if (count == 0)
		copy_plugin("echo", dir, "echo");
	for (size_t i = 0; i < count; i++) {
		snprintf(name, sizeof(name), "echo%04zu", i);
		copy_plugin("echo", dir, name);
	}
	if (nmade < sizeof(made) / sizeof(made[0])) {
		made[nmade].count = count;
		made[nmade++].dir = dir;
	}
	return dir;
}

const char *sysheavy_plugins(void)
{
	static char *dir;

	if (!dir) {
		dir = path_join(cfg.tmp, "sysheavy");
		if (mkdir(dir, 0755) < 0)
			die("mkdir %s: %s", dir, strerror(errno));
		copy_plugin("sysheavy", dir, "sysheavy");
	}
	return dir;
}

/* What tests/integration/test_layouts.py copies for realreq, plus yaml. */
static const char *const vendored_packages[] = {
	"requests",
	"urllib3",
	"idna",
	"certifi",
	"charset_normalizer",
	"chardet",
	"six.py",
	"yaml",
	"_yaml",
};

static int fill_deps(const char *deps)
{
	if (mkdir(deps, 0755) < 0)
		return -errno;
	for (size_t i = 0; i < sizeof(vendored_packages) / sizeof(vendored_packages[0]); i++) {
		char *src = path_join(cfg.dist_packages, vendored_packages[i]);
		char *dst = path_join(deps, vendored_packages[i]);
		if (access(src, F_OK) == 0 && copy_tree(src, dst, true) < 0)
			die("copying %s: %s", src, strerror(errno));
		free(src);
		free(dst);
	}
	return 0;
}

const char *vendored_plugins(void)
{
	static char *dir;
	static bool tried;

	if (tried)
		return dir;
	tried = true;
	char *req = path_join(cfg.dist_packages, "requests"), *yaml = path_join(cfg.dist_packages, "yaml");
	bool have = access(req, F_OK) == 0 && access(yaml, F_OK) == 0;
	free(req);
	free(yaml);
	if (!have) {
		note("no requests or yaml in %s (python3-requests, python3-yaml): vendored plugin skipped",
		     cfg.dist_packages);
		return NULL;
	}
	dir = path_join(cfg.tmp, "vendored");
	if (mkdir(dir, 0755) < 0)
		die("mkdir %s: %s", dir, strerror(errno));
	copy_plugin("vendored", dir, "vendored");
	char *deps = path_join(dir, "vendored/deps");
	if (fill_deps(deps) < 0)
		die("filling %s", deps);
	free(deps);
	return dir;
}

const char *vendored_deps(bool with_pyc)
{
	static char *pyc;

	if (!vendored_plugins())
		return NULL;
	if (!with_pyc) {
		static char *nopyc;
		if (!nopyc)
			nopyc = path_join(vendored_plugins(), "vendored/deps");
		return nopyc;
	}
	if (!pyc) {
		pyc = path_join(cfg.tmp, "pydeps-pyc");
		if (fill_deps(pyc) < 0)
			die("filling %s", pyc);
	}
	return pyc;
}

/* ---- spawn ---------------------------------------------------------------------- */

static int stop_worker(pb_supervisor *s, const char *plugin)
{
	char *names[] = { (char *)plugin };

	pb_supervisor_stop(s, plugin);
	return wait_state(s, names, 1, "stopped", 30) == 1 ? 0 : -ETIMEDOUT;
}

/* A new supervisor per sample: pb_supervisor_new to the first result.
 * cache_dirs: one bytecode cache per counted sample (NULL: off). */
static double spawn_new_ms(const char *plugins, const char *plugin, pb_spawn_mode mode, char **cache_dirs,
                           size_t samples, bool discard_first)
{
	double *v = xcalloc(samples, sizeof(double)), m;
	size_t got = 0;

	for (size_t i = 0; i < samples + (discard_first ? 1 : 0); i++) {
		const char *cache = cache_dirs ? cache_dirs[got] : NULL;
		uint64_t t0 = now_ns();
		pb_supervisor *s = sup_new(plugins, mode, cache);
		int r = call_echo(s, plugin, 1);
		double ms = (double)(now_ns() - t0) / 1e6;
		pb_supervisor_free(s);
		if (r < 0)
			break;
		if (discard_first && i == 0)
			continue;
		v[got++] = ms;
	}
	m = got == samples ? median(v, samples) : NAN;
	free(v);
	return m;
}

/* One supervisor; the worker stopped and started again for every sample
 * (the first start, and the fork-server's, are not counted). */
static double spawn_restart_ms(const char *plugins, const char *plugin, pb_spawn_mode mode, const char *cache,
                               size_t samples)
{
	pb_supervisor *s = sup_new(plugins, mode, cache);
	double *v = xcalloc(samples, sizeof(double)), m = NAN;
	size_t got = 0;

	if (call_echo(s, plugin, 1) == 0) {
		for (; got < samples; got++) {
			if (stop_worker(s, plugin) < 0) {
				note("%s: the worker did not stop", plugin);
				break;
			}
			uint64_t t0 = now_ns();
			if (call_echo(s, plugin, 2) < 0)
				break;
			v[got] = (double)(now_ns() - t0) / 1e6;
		}
	}
	pb_supervisor_free(s);
	if (got == samples)
		m = median(v, samples);
	free(v);
	return m;
}

static char **fresh_dirs(const char *what, size_t n)
{
	static unsigned serial;
	char **dirs = xcalloc(n, sizeof(char *));

	for (size_t i = 0; i < n; i++) {
		char name[64];
		snprintf(name, sizeof(name), "cache-%s-%u", what, serial++);
		dirs[i] = path_join(cfg.tmp, name);
		if (mkdir(dirs[i], 0700) < 0)
			die("mkdir %s: %s", dirs[i], strerror(errno));
	}
	return dirs;
}

/* Fill cache root `dir` for `plugin` as `plugbox cache` does: the library
 * builds a missing cache in the background and does not wait for it, so
 * the warm figure needs it built first. The plugbox command sits beside
 * the worker. */
static int build_cache(const char *plugins, const char *plugin, const char *dir)
{
	char *slash = strrchr(cfg.worker, '/');
	char exe[PATH_MAX];
	double ms;

	snprintf(exe, sizeof(exe), "%.*s/plugbox", slash ? (int)(slash - cfg.worker) : 1,
	         slash ? cfg.worker : ".");
	setenv("PLUGBOX_WORKER", cfg.worker, 1);
	char *const argv[] = { exe, "cache", "--plugins", (char *)plugins, "--policies", (char *)cfg.policies,
		               "--cache", (char *)dir, (char *)plugin, NULL };
	return run_cmd(argv, NULL, 0, true, &ms);
}

static void free_dirs(char **dirs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		rm_rf(dirs[i]);
		free(dirs[i]);
	}
	free(dirs);
}

void bench_spawn(void)
{
	size_t n = cfg.spawn_samples;
	const char *triv = echo_plugins(0), *vend;

	bench_log("%s: spawn", cur_placement == PL_PINNED ? "pinned" : "unpinned");
	vend = vendored_plugins();
	if (vend && (cur_placement == PL_PINNED || cfg.vendored_unpinned))
		bench_baselines_spawn(vendored_deps(false), vendored_deps(true));
	else
		bench_baselines_spawn(NULL, NULL);

	fig("spawn.cold_trivial_ms", "cold, trivial plugin: new supervisor to first result (exec)", "ms",
	    spawn_new_ms(triv, "echo", PB_SPAWN_EXEC, NULL, n, true));
	fig("spawn.exec_restart_trivial_ms", "trivial, worker restarted in the same supervisor (exec)", "ms",
	    spawn_restart_ms(triv, "echo", PB_SPAWN_EXEC, NULL, n));
	fig("spawn.forkserver_new_trivial_ms", "trivial, new supervisor, fork-server mode (starts the server)", "ms",
	    spawn_new_ms(triv, "echo", PB_SPAWN_FORK_SERVER, NULL, n, true));
	fig("spawn.warm_trivial_ms", "warm, trivial: restarted from the fork-server", "ms",
	    spawn_restart_ms(triv, "echo", PB_SPAWN_FORK_SERVER, NULL, n));
	fig("spawn.zygote_trivial_ms", "trivial: a new worker forked from the plugin's zygote (--spawn zygote)", "ms",
	    spawn_restart_ms(triv, "echo", PB_SPAWN_ZYGOTE, NULL, n));
	fig("spawn.szygote_trivial_ms", "  the same, its zygote cloned from the fork-server (--spawn shared-zygote)",
	    "ms", spawn_restart_ms(triv, "echo", PB_SPAWN_SHARED_ZYGOTE, NULL, n));
	fig_ratio("spawn.ratio_cold_trivial_bare", "cold trivial / bare python3.11 -c pass", "spawn.cold_trivial_ms",
	          "spawn.bare_python_ms");
	fig_ratio("spawn.ratio_warm_cold_trivial", "warm / cold, trivial", "spawn.warm_trivial_ms",
	          "spawn.cold_trivial_ms");
	fig_ratio("spawn.ratio_warm_trivial_bare", "warm trivial / bare python3.11 -c pass", "spawn.warm_trivial_ms",
	          "spawn.bare_python_ms");
	if (!vend)
		return;
	if (cur_placement == PL_UNPINNED && !cfg.vendored_unpinned) {
		note("vendored plugin: measured in the pinned placement only in a smoke run");
		return;
	}
	n = cfg.vendored_samples;

	/* The vendored plugin: bytecode cache off, then per sample a fresh
	 * empty cache (cold) and the same cache again (warm). */
	fig("spawn.cold_vendored_ms", "cold, vendored requests+yaml: new supervisor (exec, cache off)", "ms",
	    spawn_new_ms(vend, "vendored", PB_SPAWN_EXEC, NULL, n, false));
	char **dirs = fresh_dirs("v", n);
	fig("spawn.vendored_cache_cold_ms", "vendored, new supervisor, bytecode cache empty", "ms",
	    spawn_new_ms(vend, "vendored", PB_SPAWN_EXEC, dirs, n, false));
	free_dirs(dirs, n);
	dirs = fresh_dirs("b", 1);
	if (build_cache(vend, "vendored", dirs[0]) != 0)
		note("vendored: `plugbox cache` failed; the warm-cache figure is not a warm cache");
	char **same = xcalloc(n, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		same[i] = dirs[0];
	fig("spawn.vendored_cache_warm_ms", "vendored, new supervisor, cache built by `plugbox cache`", "ms",
	    spawn_new_ms(vend, "vendored", PB_SPAWN_EXEC, same, n, false));
	free(same);
	free_dirs(dirs, 1);
	dirs = fresh_dirs("w", 1);
	if (build_cache(vend, "vendored", dirs[0]) != 0)
		note("vendored: `plugbox cache` failed; the fork-server figure is not a warm cache");
	fig("spawn.warm_vendored_ms", "warm, vendored: restarted from the fork-server, cache warm", "ms",
	    spawn_restart_ms(vend, "vendored", PB_SPAWN_FORK_SERVER, dirs[0], n));
	/* The zygote imported requests and yaml once: a new worker of it is
	 * a fork, a stacked filter and Hello, from being asked for to its
	 * first answer. */
	fig("spawn.zygote_vendored_ms", "vendored: a new worker forked from the plugin's zygote, cache warm", "ms",
	    spawn_restart_ms(vend, "vendored", PB_SPAWN_ZYGOTE, dirs[0], n));
	free_dirs(dirs, 1);
	fig_ratio("spawn.ratio_zygote_forkserver_vendored", "vendored: zygote child / fork-server worker",
	          "spawn.zygote_vendored_ms", "spawn.warm_vendored_ms");
	fig_ratio("spawn.ratio_zygote_cold_vendored", "vendored: zygote child / cold exec",
	          "spawn.zygote_vendored_ms", "spawn.cold_vendored_ms");
	fig_ratio("spawn.ratio_cold_vendored_bare", "cold vendored / bare python3.11 import (no .pyc)",
	          "spawn.cold_vendored_ms", "spawn.bare_vendored_nopyc_ms");
	fig_ratio("spawn.ratio_cache_warm_cold", "vendored: cache warm / cache cold", "spawn.vendored_cache_warm_ms",
	          "spawn.vendored_cache_cold_ms");
	fig_ratio("spawn.ratio_cache_warm_bare_pyc", "vendored cache warm / bare python3.11 import (.pyc)",
	          "spawn.vendored_cache_warm_ms", "spawn.bare_vendored_pyc_ms");
	fig_ratio("spawn.ratio_warm_cold_vendored", "warm / cold, vendored", "spawn.warm_vendored_ms",
	          "spawn.cold_vendored_ms");
}

/* ---- many workers: PSS, alive --------------------------------------------------- */

struct fleet {
	size_t n, answered, measured, fds;
	double start_s; /* first call made to the last answer */
	double pss_mean_mb, pss_max_mb, pss_total_mb, rss_mean_mb, anon_mean_mb;
	bool done;
};

static size_t open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	size_t n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own descriptor */
}

pb_supervisor *fleet_start(size_t n, pb_spawn_mode mode, char ***names, size_t *answered, double *start_s)
{
	const char *dir = echo_plugins(n);
	pb_supervisor *s = sup_new(dir, mode, NULL);
	struct tally a = { 0, 0 };
	pb_value *arg = pb_value_new_int(1);
	size_t count;

	if (pb_supervisor_plugins(s, names, &count) < 0 || count != n)
		die("%s: %zu plugins listed, %zu made", dir, count, n);
	uint64_t t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		pb_call_spec spec = { .plugin = (*names)[i], .function = "echo", .args = &arg, .nargs = 1 };
		if (pb_call_start(s, &spec, tally_done, &a, NULL) < 0)
			die("pb_call_start failed");
	}
	while (a.done < n)
		if (pb_supervisor_dispatch(s, -1) < 0)
			break;
	*start_s = (double)(now_ns() - t0) / 1e9;
	*answered = a.ok;
	pb_value_destroy(arg);
	return s;
}

/* n copies of the echo plugin, each called once at the same time (which
 * starts its worker), then the PSS of every worker. */
static void run_fleet(size_t n, pb_spawn_mode mode, struct fleet *f)
{
	char **names;
	double sum = 0, rss_sum = 0, anon_sum = 0;

	memset(f, 0, sizeof(*f));
	f->n = n;
	pb_supervisor *s = fleet_start(n, mode, &names, &f->answered, &f->start_s);
	f->fds = open_fds();
	for (size_t i = 0; i < n; i++) {
		int pid = pb_supervisor_plugin_pid(s, names[i]);
		long rss = 0, anon = 0, kb = pid > 0 ? pss_kb(pid, &rss, &anon) : -1;
		if (kb < 0)
			continue;
		f->measured++;
		sum += (double)kb / 1024;
		rss_sum += (double)rss / 1024;
		anon_sum += (double)anon / 1024;
		if ((double)kb / 1024 > f->pss_max_mb)
			f->pss_max_mb = (double)kb / 1024;
	}
	if (f->measured) {
		f->pss_mean_mb = sum / (double)f->measured;
		f->rss_mean_mb = rss_sum / (double)f->measured;
		f->anon_mean_mb = anon_sum / (double)f->measured;
		f->pss_total_mb = sum;
	} else {
		note("no worker's /proc/PID/smaps_rollup could be read");
	}
	f->done = true;
	pb_strv_free(names, n);
	pb_supervisor_free(s);
}

static struct fleet last_forkserver[PL_COUNT];

static void record_pss(const char *mode, const char *what, const struct fleet *f)
{
	char key[64], label[112];

	snprintf(key, sizeof(key), "pss.%s_mean_mb", mode);
	snprintf(label, sizeof(label), "%zu idle workers, %s: mean PSS", f->measured, what);
	fig(key, label, "MB", f->measured ? f->pss_mean_mb : NAN);
	snprintf(key, sizeof(key), "pss.%s_max_mb", mode);
	snprintf(label, sizeof(label), "%zu idle workers, %s: max PSS", f->measured, what);
	fig(key, label, "MB", f->measured ? f->pss_max_mb : NAN);
	snprintf(key, sizeof(key), "pss.%s_anon_mean_mb", mode);
	snprintf(label, sizeof(label), "  of which anonymous (Python's heap, relocated data)");
	fig(key, label, "MB", f->measured ? f->anon_mean_mb : NAN);
	snprintf(key, sizeof(key), "pss.%s_rss_mean_mb", mode);
	snprintf(label, sizeof(label), "%zu idle workers, %s: mean RSS", f->measured, what);
	fig(key, label, "MB", f->measured ? f->rss_mean_mb : NAN);
	if (f->answered != f->n)
		note("PSS, %s: %zu of %zu workers answered", what, f->answered, f->n);
}

/* Each worker holds several descriptors in the supervisor: the soft
 * limit goes up to the hard one; *before is the limit the run started with. */
static void raise_nofile(rlim_t *before, rlim_t *after)
{
	static rlim_t initial;
	static bool have;
	struct rlimit rl;

	getrlimit(RLIMIT_NOFILE, &rl);
	if (!have) {
		initial = rl.rlim_cur;
		have = true;
	}
	*before = initial;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	*after = rl.rlim_cur;
}

void bench_pss(void)
{
	struct fleet f;
	rlim_t before, after;

	bench_log("%s: idle PSS of %zu workers", cur_placement == PL_PINNED ? "pinned" : "unpinned", cfg.pss_workers);
	raise_nofile(&before, &after);
	bench_baselines_pss(cfg.pss_exec_workers);
	run_fleet(cfg.pss_exec_workers, PB_SPAWN_EXEC, &f);
	record_pss("exec", "exec", &f);
	run_fleet(cfg.pss_workers, PB_SPAWN_FORK_SERVER, &f);
	record_pss("forkserver", "fork-server", &f);
	last_forkserver[cur_placement] = f;
	fig_ratio("pss.ratio_exec_python", "exec worker / idle python3.11 (mean PSS)", "pss.exec_mean_mb",
	          "pss.python_idle_mean_mb");
	fig_ratio("pss.ratio_forkserver_python", "fork-server worker / idle python3.11 (mean PSS)",
	          "pss.forkserver_mean_mb", "pss.python_idle_mean_mb");
}

void bench_alive(void)
{
	struct fleet f;
	rlim_t before, after;
	char label[112];

	bench_log("%s: %zu plugins alive", cur_placement == PL_PINNED ? "pinned" : "unpinned", cfg.alive_plugins);
	raise_nofile(&before, &after);
	if (last_forkserver[cur_placement].done && last_forkserver[cur_placement].n == cfg.alive_plugins) {
		f = last_forkserver[cur_placement]; /* the PSS section's fleet is this one */
	} else {
		run_fleet(cfg.alive_plugins, PB_SPAWN_FORK_SERVER, &f);
	}
	fig("alive.plugins", "plugins started at once (fork-server mode), one call each", "", (double)f.n);
	fig("alive.answered", "  of which answered", "", (double)f.answered);
	fig("alive.answered_fraction", "  answered / started", "x", f.n ? (double)f.answered / (double)f.n : NAN);
	fig("alive.start_all_s", "first call made to the last answer", "s", f.start_s);
	snprintf(label, sizeof(label), "total PSS of the %zu workers", f.measured);
	fig("alive.pss_total_mb", label, "MB", f.measured ? f.pss_total_mb : NAN);
	fig("alive.fds_open", "descriptors open in the bench process with all alive", "", (double)f.fds);
	fig("alive.fds_per_worker", "  per worker", "", f.n ? (double)f.fds / (double)f.n : NAN);
	fig("alive.nofile_soft_limit", "RLIMIT_NOFILE soft limit at the start (raised to hard)", "", (double)before);
	if (f.fds + 16 > (size_t)before)
		note("%zu plugins needed %zu descriptors: more than the soft RLIMIT_NOFILE (%llu), raised to %llu",
		     f.n, f.fds, (unsigned long long)before, (unsigned long long)after);
}
