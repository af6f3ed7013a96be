/* warm.c - issue 20's figures: workers that start warm from their
 * plugin's zygote (--spawn zygote). A call under @fresh-per-call (a new
 * child of the zygote per call), two replicas against one for a CPU-bound
 * call, the idle PSS of a zygote's child and of the zygote in both zygote
 * modes (--spawn zygote: each zygote exec'd; --spawn shared-zygote: each
 * cloned from the fork-server), and (its own section, `make
 * bench-zygote-alive`: it starts 2,000 processes) 1,000 plugins alive in
 * shared-zygote mode.
 *
 * The baselines are measured here, in the same run: a bare
 * `python3.11 -I -S -c pass` for the fresh call, one replica for two.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"

static char *join(const char *a, const char *b)
{
	char *p;
	if (asprintf(&p, "%s/%s", a, b) < 0)
		die("out of memory");
	return p;
}

/* The shipped policies plus fresh.policy (@fresh-per-call) and
 * spin2.policy (@replicas 2), made once per run. */
static const char *warm_policies(void)
{
	static char *dir;

	if (dir)
		return dir;
	dir = join(cfg.tmp, "policies-warm");
	if (copy_tree(cfg.policies, dir, true) < 0)
		die("copying %s: %s", cfg.policies, strerror(errno));
	char *fresh = join(dir, "fresh.policy"), *spin2 = join(dir, "spin2.policy");
	if (write_file(fresh, "@fresh-per-call\n@include default\n") < 0 ||
	    write_file(spin2, "@replicas 2\n@include default\n") < 0)
		die("writing %s: %s", dir, strerror(errno));
	free(fresh);
	free(spin2);
	return dir;
}

/* fresh (the echo plugin), spin1 and spin2 (the spin plugin). */
static const char *warm_plugins(void)
{
	static char *dir;
	static const struct {
		const char *src, *as;
	} copies[] = { { "echo", "fresh" }, { "spin", "spin1" }, { "spin", "spin2" } };

	if (dir)
		return dir;
	dir = join(cfg.tmp, "warm");
	if (mkdir(dir, 0755) < 0)
		die("mkdir %s: %s", dir, strerror(errno));
	for (size_t i = 0; i < sizeof(copies) / sizeof(copies[0]); i++) {
		char *src = join(cfg.plugins_src, copies[i].src), *dst = join(dir, copies[i].as);
		if (copy_tree(src, dst, true) < 0)
			die("copying %s: %s", src, strerror(errno));
		free(src);
		free(dst);
	}
	return dir;
}

static pb_supervisor *warm_sup(pb_spawn_mode mode)
{
	pb_supervisor *s = sup_new(warm_plugins(), mode, NULL);
	if (pb_supervisor_set_policies(s, warm_policies()) < 0)
		die("policies: %s", pb_supervisor_strerror(s));
	return s;
}

/* ---- @fresh-per-call ---------------------------------------------------------------- */

static double bare_python_ms(size_t n)
{
	char *const argv[] = { (char *)cfg.python311, "-I", "-S", "-c", "pass", NULL };
	double *v = xcalloc(n, sizeof(double)), m;
	size_t got = 0;

	for (size_t i = 0; i < n; i++) {
		double ms;
		if (run_cmd(argv, NULL, 0, true, &ms) == 0)
			v[got++] = ms;
	}
	m = got == n ? median(v, n) : NAN;
	free(v);
	return m;
}

/* Each call a new child of fresh's zygote, ended after its answer: the
 * host's pb_call to its result. */
static double fresh_call_ms(pb_spawn_mode mode, size_t n)
{
	pb_supervisor *s = warm_sup(mode);
	double *v = xcalloc(n, sizeof(double)), m = NAN;
	size_t got = 0;

	if (call_echo(s, "fresh", 1) == 0) {
		for (; got < n; got++) {
			uint64_t t0 = now_ns();
			if (call_echo(s, "fresh", (int64_t)got) < 0)
				break;
			v[got] = (double)(now_ns() - t0) / 1e6;
		}
	}
	pb_supervisor_free(s);
	if (got == n)
		m = median(v, n);
	else
		note("fresh-per-call: %zu of %zu calls answered", got, n);
	free(v);
	return m;
}

/* ---- replicas ------------------------------------------------------------------------- */

/* calls spin(steps) to plugin, all made at once; calls per second, and
 * (busy not NULL) the plugin's workers' CPU seconds per second of wall
 * time: how many CPUs its replicas really had. */
static double spin_calls_s(pb_supervisor *s, const char *plugin, size_t calls, int64_t steps, double *busy)
{
	double cpu0 = 0, cpu1 = 0;
	pb_value *arg = pb_value_new_int(steps);
	pb_call_spec spec = { .plugin = plugin, .function = "spin", .args = &arg, .nargs = 1 };
	struct tally t = { 0, 0 };
	pb_supervisor_plugin_stat(s, plugin, PB_STAT_CPU_SECONDS, &cpu0);
	uint64_t t0 = now_ns();

	for (size_t i = 0; i < calls; i++)
		if (pb_call_start(s, &spec, tally_done, &t, NULL) < 0)
			die("pb_call_start failed");
	while (t.done < calls)
		if (pb_supervisor_dispatch(s, -1) < 0)
			break;
	double secs = (double)(now_ns() - t0) / 1e9;
	pb_supervisor_plugin_stat(s, plugin, PB_STAT_CPU_SECONDS, &cpu1);
	if (busy)
		*busy = (cpu1 - cpu0) / secs;
	pb_value_destroy(arg);
	if (t.ok != calls) {
		note("%s: %zu of %zu spin calls answered", plugin, t.ok, calls);
		return NAN;
	}
	return (double)calls / secs;
}

static void replicas(size_t calls)
{
	pb_supervisor *s = warm_sup(PB_SPAWN_ZYGOTE);
	const int64_t steps = 60000; /* a few ms of one CPU */

	double busy1 = NAN, busy2 = NAN;
	cpu_set_t mask;

	/* Every worker started first: two calls at once start spin2's second. */
	spin_calls_s(s, "spin1", 2, 1000, NULL);
	spin_calls_s(s, "spin2", 2, 1000, NULL);
	fig("warm.spin_1replica_calls_s", "CPU-bound call (60k-step loop), 1 replica: calls/s", "/s",
	    spin_calls_s(s, "spin1", calls, steps, &busy1));
	fig("warm.spin_2replicas_calls_s", "the same, @replicas 2: calls/s", "/s",
	    spin_calls_s(s, "spin2", calls, steps, &busy2));
	pb_supervisor_free(s);
	fig_ratio("warm.ratio_replicas", "2 replicas / 1 replica (calls/s)", "warm.spin_2replicas_calls_s",
	          "warm.spin_1replica_calls_s");
	/* What the machine gave: on a shared one (autogroup: the bench's
	 * session gets its share, whatever its processes) less than 2. */
	fig("warm.spin_1replica_cpus", "  CPUs the 1 replica used (its CPU s / wall s)", "", busy1);
	fig("warm.spin_2replicas_cpus", "  CPUs the 2 replicas used together", "", busy2);
	CPU_ZERO(&mask);
	sched_getaffinity(0, sizeof(mask), &mask);
	fig("warm.cpus", "  CPUs this placement allows", "", (double)CPU_COUNT(&mask));
}

/* ---- idle PSS, and plugins alive ------------------------------------------------------- */

static pid_t parent_of(pid_t pid)
{
	char path[64], buf[512];
	FILE *f;
	pid_t ppid = -1;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (!(f = fopen(path, "r")))
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *close_paren = strrchr(buf, ')');
	if (close_paren && sscanf(close_paren + 1, " %*c %d", &ppid) != 1)
		ppid = -1;
	return ppid;
}

/* What the process alone holds (Private_Clean + Private_Dirty), in kB:
 * what one more child of the zygote costs. */
static long private_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
	if (!(f = fopen(path, "r")))
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "Private_Clean:", 14) || !strncmp(line, "Private_Dirty:", 14))
			kb += strtol(line + 14, NULL, 10);
	fclose(f);
	return kb;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The page frames a process maps, sorted (/proc/PID/pagemap: present
 * pages' frame numbers, which the kernel shows to root only). 0 with *pfns
 * set, or -1. */
static int page_frames(pid_t pid, uint64_t **pfns, size_t *n)
{
	char path[64], line[512];
	size_t cap = 4096;
	FILE *maps;
	int pm;

	*n = 0;
	*pfns = xcalloc(cap, sizeof(uint64_t));
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	if (!(maps = fopen(path, "r")))
		goto fail;
	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	if ((pm = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		fclose(maps);
		goto fail;
	}
	while (fgets(line, sizeof(line), maps)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx", &lo, &hi) != 2 || strstr(line, "[vsyscall]"))
			continue;
		for (unsigned long a = lo; a < hi; a += 4096) {
			uint64_t e;
			if (pread(pm, &e, sizeof(e), (off_t)(a / 4096 * 8)) != (ssize_t)sizeof(e))
				break;
			if (!(e >> 63))
				continue; /* not present */
			if (*n == cap)
				*pfns = realloc(*pfns, (cap *= 2) * sizeof(uint64_t));
			if (!*pfns)
				die("out of memory");
			(*pfns)[(*n)++] = e & ((1ULL << 55) - 1);
		}
	}
	fclose(maps);
	close(pm);
	qsort(*pfns, *n, sizeof(uint64_t), cmp_u64);
	if (*n && (*pfns)[*n - 1] == 0)
		goto fail; /* frame numbers hidden: not root */
	return 0;
fail:
	free(*pfns);
	*pfns = NULL;
	return -1;
}

/* What only this plugin holds, in kB: the pages its zygote and child map
 * that no other process does (a page's map count, /proc/kpagecount, is
 * how many of the two map it). What each further plugin costs, however
 * many are alive; where the PSS of the two also holds their share of the
 * fork-server's and the other plugins' pages. -1 if the kernel does not
 * say. */
static long plugin_own_kb(pid_t zygote, pid_t child)
{
	uint64_t *a, *b;
	size_t na, nb, i = 0, j = 0;
	long own = 0;
	int kpc;

	if (page_frames(zygote, &a, &na) < 0)
		return -1;
	if (page_frames(child, &b, &nb) < 0) {
		free(a);
		return -1;
	}
	if ((kpc = open("/proc/kpagecount", O_RDONLY | O_CLOEXEC)) < 0)
		own = -1;
	while (own >= 0 && (i < na || j < nb)) {
		uint64_t pfn = j == nb || (i < na && a[i] <= b[j]) ? a[i] : b[j], count;
		uint64_t mine = 0;
		for (; i < na && a[i] == pfn; i++)
			mine++;
		for (; j < nb && b[j] == pfn; j++)
			mine++;
		if (pread(kpc, &count, sizeof(count), (off_t)(pfn * 8)) != (ssize_t)sizeof(count))
			own = -1;
		else if (count == mine)
			own += 4;
	}
	if (kpc >= 0)
		close(kpc);
	free(a);
	free(b);
	return own;
}

/* The PSS of the fork-server the zygotes were cloned from (our child
 * started `plugbox-worker --fork-server`), in kB; 0 without one. */
static long forkserver_kb(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	long kb = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		char path[64], argv[256] = "";
		pid_t pid = (pid_t)strtol(e->d_name, NULL, 10);
		FILE *f;
		if (pid <= 0 || parent_of(pid) != getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
		if (!(f = fopen(path, "r")))
			continue;
		size_t n = fread(argv, 1, sizeof(argv) - 1, f);
		fclose(f);
		size_t first = strnlen(argv, n);
		if (first + 1 < n && !strcmp(argv + first + 1, "--fork-server") && (kb = pss_kb(pid, NULL, NULL)) > 0)
			break;
		kb = 0;
	}
	closedir(d);
	return kb;
}

struct zfleet {
	size_t n, answered, measured;
	double start_s, child_mean_mb, child_max_mb, zygote_mean_mb, total_mb, child_private_mb, forkserver_mb;
	double own_mb; /* pages only a plugin holds (plugin_own_kb), mean; NAN if not known */
};

/* n copies of echo in a zygote mode, called once each at the same time
 * (each starts a zygote and forks its first child), then every child's
 * PSS and its zygote's (and the fork-server's, under shared-zygote). */
static void zygote_fleet(size_t n, pb_spawn_mode mode, struct zfleet *f)
{
	char **names;
	double child_sum = 0, zygote_sum = 0;
	struct rlimit rl;

	/* Each plugin holds descriptors in the supervisor for a worker and a zygote. */
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	memset(f, 0, sizeof(*f));
	f->n = n;
	pb_supervisor *s = fleet_start(n, mode, &names, &f->answered, &f->start_s);
	for (size_t i = 0; i < n; i++) {
		int pid = pb_supervisor_plugin_pid(s, names[i]);
		pid_t zygote = pid > 0 ? parent_of(pid) : -1;
		long child = pid > 0 ? pss_kb(pid, NULL, NULL) : -1;
		long z = zygote > 1 && zygote != getpid() ? pss_kb(zygote, NULL, NULL) : -1;
		if (child < 0 || z < 0)
			continue; /* not forked from a zygote, or gone */
		f->measured++;
		f->child_private_mb += (double)private_kb(pid) / 1024;
		long own = f->own_mb >= 0 ? plugin_own_kb(zygote, pid) : -1;
		f->own_mb = own >= 0 ? f->own_mb + (double)own / 1024 : -1;
		child_sum += (double)child / 1024;
		zygote_sum += (double)z / 1024;
		if ((double)child / 1024 > f->child_max_mb)
			f->child_max_mb = (double)child / 1024;
	}
	/* Shared-zygote: the zygotes share its interpreter's pages, what it
	 * keeps is theirs. Zygote: there is none (0). */
	f->forkserver_mb = (double)forkserver_kb() / 1024;
	if (f->measured) {
		f->child_mean_mb = child_sum / (double)f->measured;
		f->zygote_mean_mb = zygote_sum / (double)f->measured;
		f->total_mb = child_sum + zygote_sum + f->forkserver_mb;
		f->child_private_mb /= (double)f->measured;
	}
	f->own_mb = f->measured && f->own_mb >= 0 ? f->own_mb / (double)f->measured : NAN;
	if (f->measured != n)
		note("%s mode: %zu of %zu plugins had a zygote's child to measure",
		     mode == PB_SPAWN_SHARED_ZYGOTE ? "shared-zygote" : "zygote", f->measured, n);
	pb_strv_free(names, n);
	pb_supervisor_free(s);
}

/* The figures of one zygote mode, named warm.PREFIX_*: zygote (exec'd
 * zygotes, each plugin its own hash secret and address layout) or
 * szygote (shared-zygote: cloned from the fork-server, one for all). */
static void zygote_pss(size_t n, pb_spawn_mode mode)
{
	bool shared = mode == PB_SPAWN_SHARED_ZYGOTE;
	const char *pre = shared ? "warm.szygote" : "warm.zygote", *name = shared ? "shared-zygote" : "zygote";
	struct zfleet f;
	char label[160], key[64];

	zygote_fleet(n, mode, &f);
#define KEY(suffix) (snprintf(key, sizeof(key), "%s_%s", pre, suffix), key)
	snprintf(label, sizeof(label), "%zu plugins, --spawn %s, idle: mean PSS of a zygote's child", f.measured,
	         name);
	fig(KEY("child_pss_mb"), label, "MB", f.measured ? f.child_mean_mb : NAN);
	fig(KEY("child_pss_max_mb"), "  max", "MB", f.measured ? f.child_max_mb : NAN);
	fig(KEY("child_private_mb"), "  a child's own pages (Private_*: what one more child costs)", "MB",
	    f.measured ? f.child_private_mb : NAN);
	fig(KEY("pss_mb"), "  mean PSS of a zygote", "MB", f.measured ? f.zygote_mean_mb : NAN);
	if (shared)
		fig(KEY("forkserver_pss_mb"), "  PSS of the fork-server the zygotes were cloned from", "MB",
		    f.forkserver_mb);
	snprintf(label, sizeof(label), "  per plugin (zygote + one child%s)",
	         shared ? ", a share of the fork-server" : "");
	fig(KEY("plugin_pss_mb"), label, "MB", f.measured ? f.total_mb / (double)f.measured : NAN);
	fig(KEY("plugin_own_mb"), "  pages only this plugin maps (zygote + child: what each more plugin costs)", "MB",
	    f.own_mb);
	fig(KEY("1000_estimate_gb"),
	    shared ? "  1,000 plugins at that rate (estimate; bench-zygote-alive measures)"
	           : "  1,000 plugins at that rate (estimate)",
	    "GB", f.measured ? f.total_mb / (double)f.measured * 1000 / 1024 : NAN);
#undef KEY
}

void bench_warm(void)
{
	size_t n = cfg.smoke ? 20 : 100;

	bench_log("%s: warm workers (zygote)", cur_placement == PL_PINNED ? "pinned" : "unpinned");
	fig("warm.bare_python_ms", "bare `python3.11 -I -S -c pass` (fork+exec+wait)", "ms",
	    bare_python_ms(cfg.smoke ? 5 : 20));
	fig("warm.fresh_call_ms", "@fresh-per-call, trivial call: a new child of the zygote per call", "ms",
	    fresh_call_ms(PB_SPAWN_ZYGOTE, n));
	fig("warm.fresh_exec_call_ms", "  the same with --spawn exec (a new exec'd worker per call)", "ms",
	    fresh_call_ms(PB_SPAWN_EXEC, cfg.smoke ? 5 : 20));
	fig_ratio("warm.ratio_fresh_bare", "fresh-per-call round trip / bare python3.11 start", "warm.fresh_call_ms",
	          "warm.bare_python_ms");
	replicas(cfg.smoke ? 40 : 200);
	zygote_pss(cfg.pss_workers, PB_SPAWN_ZYGOTE);
	fig_ratio("warm.ratio_child_python", "zygote's child / idle python3.11 (mean PSS)", "warm.zygote_child_pss_mb",
	          "pss.python_idle_mean_mb");
	zygote_pss(cfg.pss_workers, PB_SPAWN_SHARED_ZYGOTE);
	fig_ratio("warm.ratio_szygote_child_python", "shared-zygote's child / idle python3.11 (mean PSS)",
	          "warm.szygote_child_pss_mb", "pss.python_idle_mean_mb");
	fig_ratio("warm.ratio_szygote_zygote_plugin", "per plugin: shared-zygote / zygote (PSS)",
	          "warm.szygote_plugin_pss_mb", "warm.zygote_plugin_pss_mb");
}

void bench_zygote_alive(void)
{
	struct zfleet f;
	char label[128];
	size_t n = cfg.smoke ? 100 : 1000;

	/* Shared-zygote: the mode that gets closest to the 1 GB target (an
	 * exec'd zygote per plugin costs twice; warm.zygote_1000_estimate_gb). */
	bench_log("%s: %zu plugins alive, --spawn shared-zygote", cur_placement == PL_PINNED ? "pinned" : "unpinned",
	          n);
	zygote_fleet(n, PB_SPAWN_SHARED_ZYGOTE, &f);
	fig("zalive.plugins", "plugins started at once (--spawn shared-zygote), one call each", "", (double)f.n);
	fig("zalive.answered_fraction", "  answered / started", "x", f.n ? (double)f.answered / (double)f.n : NAN);
	fig("zalive.start_all_s", "first call made to the last answer", "s", f.start_s);
	snprintf(label, sizeof(label), "total PSS of the %zu zygotes, their %zu children and the fork-server",
	         f.measured, f.measured);
	fig("zalive.pss_total_gb", label, "GB", f.measured ? f.total_mb / 1024 : NAN);
	fig("zalive.child_pss_mb", "  mean PSS of a child", "MB", f.measured ? f.child_mean_mb : NAN);
	fig("zalive.zygote_pss_mb", "  mean PSS of a zygote", "MB", f.measured ? f.zygote_mean_mb : NAN);
	fig("zalive.forkserver_pss_mb", "  PSS of the fork-server they were cloned from", "MB", f.forkserver_mb);
	fig("zalive.child_private_mb", "  a child's own pages (Private_*)", "MB", f.measured ? f.child_private_mb : NAN);
	fig("zalive.plugin_own_mb", "  pages only one plugin maps (its zygote and child), mean", "MB", f.own_mb);
}
