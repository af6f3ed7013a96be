/* bench.c - plugbox's benchmark (`make bench`, `make bench-smoke`): every
 * figure next to baselines measured in the same run, once with the bench
 * and all its children pinned to one CPU and once with default affinity.
 *
 *   tests/bench/bench [--smoke] [--only SECTION,...] [--placement pinned|unpinned|both]
 *                     [--cpu N] [--json FILE] [--verbose] [--enforce|--no-enforce] [paths...]
 *
 * Sections: roundtrip pipelined cpu seccomp spawn pss alive connect warm serve
 * (and zygote-alive, only when named: `make bench-zygote-alive`). A smoke run
 * takes fewer samples and 100 plugins instead of 1000, and exits 1 when a
 * figure is 3x past its target (report.c holds the targets). The paths
 * default to this build tree; `make bench` passes them explicitly.
 *
 * The process that parses the options is only a janitor: it makes the
 * temporary directory, runs the bench in a child, and removes the
 * directory however the child ends. Every process the bench starts dies
 * with it (PR_SET_PDEATHSIG; the workers arm it themselves).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#ifndef BENCH_TOP_BUILDDIR
#define BENCH_TOP_BUILDDIR "."
#endif
#ifndef BENCH_TOP_SRCDIR
#define BENCH_TOP_SRCDIR "."
#endif

struct bench_cfg cfg;
enum placement cur_placement;

static const struct {
	const char *name;
	unsigned bit;
	void (*run)(void);
} sections[] = {
	{ "roundtrip", S_ROUNDTRIP, bench_roundtrip },
	{ "pipelined", S_PIPELINED, bench_pipelined },
	{ "cpu", S_CPU, bench_cpu },
	{ "seccomp", S_SECCOMP, bench_seccomp },
	{ "spawn", S_SPAWN, bench_spawn },
	{ "pss", S_PSS, bench_pss },
	{ "alive", S_ALIVE, bench_alive },
	{ "connect", S_CONNECT, bench_connect },
	{ "warm", S_WARM, bench_warm },
	{ "serve", S_SERVE, bench_serve },
	{ "zygote-alive", S_ZALIVE, bench_zygote_alive },
};
#define NSECTIONS (sizeof(sections) / sizeof(sections[0]))

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: bench [--smoke] [--only SECTION,...] [--placement pinned|unpinned|both] [--cpu N]\n"
	        "             [--json FILE] [--verbose] [--enforce|--no-enforce]\n"
	        "             [--worker PATH] [--policies DIR] [--plugins DIR] [--filter-helper PATH]\n"
	        "             [--mp-script PATH] [--python3 PATH] [--python311 PATH] [--dist-packages DIR]\n"
	        "sections: roundtrip pipelined cpu seccomp spawn pss alive connect warm serve (default: these),\n"
	        "          zygote-alive (1,000 plugins, --spawn shared-zygote: only when named)\n");
}

static unsigned parse_sections(const char *list)
{
	unsigned bits = 0;
	char *copy = strdup(list), *save = NULL;

	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		size_t i;
		for (i = 0; i < NSECTIONS; i++)
			if (!strcmp(tok, sections[i].name))
				break;
		if (i == NSECTIONS) {
			fprintf(stderr, "bench: unknown section '%s'\n", tok);
			usage(stderr);
			exit(2);
		}
		bits |= sections[i].bit;
	}
	free(copy);
	return bits;
}

static void set_counts(void)
{
	if (cfg.smoke) {
		cfg.rt_samples = 3000;
		cfg.rt_warmup = 300;
		cfg.pipe_calls = 10000;
		cfg.cpu_calls = 10000;
		cfg.spawn_samples = 5;
		cfg.vendored_samples = 3;
		cfg.vendored_unpinned = false;
		cfg.pss_workers = 100;
		cfg.pss_exec_workers = 25;
		cfg.alive_plugins = 100;
		cfg.sys_n = 2000;
		cfg.sys_reps = 40;
	} else {
		cfg.rt_samples = 20000;
		cfg.rt_warmup = 2000;
		cfg.pipe_calls = 100000;
		cfg.cpu_calls = 100000;
		cfg.spawn_samples = 20;
		cfg.vendored_samples = 10;
		cfg.vendored_unpinned = true;
		cfg.pss_workers = 100;
		cfg.pss_exec_workers = 100;
		cfg.alive_plugins = 1000;
		cfg.sys_n = 2000;
		cfg.sys_reps = 200;
	}
}

static void parse_args(int argc, char **argv, int *enforce)
{
	enum { O_WORKER = 256,
	       O_POLICIES,
	       O_PLUGINS,
	       O_FILTER,
	       O_MP,
	       O_PY3,
	       O_PY311,
	       O_DIST,
	       O_ENFORCE,
	       O_NO_ENFORCE };
	static const struct option opts[] = {
		{ "smoke", no_argument, NULL, 's' },
		{ "only", required_argument, NULL, 'o' },
		{ "placement", required_argument, NULL, 'p' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "json", required_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "enforce", no_argument, NULL, O_ENFORCE },
		{ "no-enforce", no_argument, NULL, O_NO_ENFORCE },
		{ "worker", required_argument, NULL, O_WORKER },
		{ "policies", required_argument, NULL, O_POLICIES },
		{ "plugins", required_argument, NULL, O_PLUGINS },
		{ "filter-helper", required_argument, NULL, O_FILTER },
		{ "mp-script", required_argument, NULL, O_MP },
		{ "python3", required_argument, NULL, O_PY3 },
		{ "python311", required_argument, NULL, O_PY311 },
		{ "dist-packages", required_argument, NULL, O_DIST },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	cfg.sections = S_ALL;
	cfg.placements = (1u << PL_PINNED) | (1u << PL_UNPINNED);
	cfg.pin_cpu = nth_allowed_cpu(0);
	cfg.worker = BENCH_TOP_BUILDDIR "/plugbox-worker";
	cfg.policies = BENCH_TOP_SRCDIR "/policies";
	cfg.plugins_src = BENCH_TOP_SRCDIR "/tests/bench/plugins";
	cfg.filter_helper = BENCH_TOP_BUILDDIR "/tests/bench/bench-filter";
	cfg.mp_script = BENCH_TOP_SRCDIR "/tests/bench/mp_pingpong.py";
	cfg.python3 = "/usr/bin/python3";
	cfg.python311 = "/usr/bin/python3.11";
	cfg.dist_packages = "/usr/lib/python3/dist-packages";
	*enforce = -1;
	while ((c = getopt_long(argc, argv, "so:p:c:j:vh", opts, NULL)) != -1) {
		switch (c) {
		case 's': cfg.smoke = true; break;
		case 'o': cfg.sections = parse_sections(optarg); break;
		case 'p':
			if (!strcmp(optarg, "pinned"))
				cfg.placements = 1u << PL_PINNED;
			else if (!strcmp(optarg, "unpinned"))
				cfg.placements = 1u << PL_UNPINNED;
			else if (!strcmp(optarg, "both"))
				cfg.placements = (1u << PL_PINNED) | (1u << PL_UNPINNED);
			else
				die("--placement: pinned, unpinned or both");
			break;
		case 'c': cfg.pin_cpu = atoi(optarg); break;
		case 'j': cfg.json_path = optarg; break;
		case 'v': cfg.verbose = true; break;
		case 'h': usage(stdout); exit(0);
		case O_ENFORCE: *enforce = 1; break;
		case O_NO_ENFORCE: *enforce = 0; break;
		case O_WORKER: cfg.worker = optarg; break;
		case O_POLICIES: cfg.policies = optarg; break;
		case O_PLUGINS: cfg.plugins_src = optarg; break;
		case O_FILTER: cfg.filter_helper = optarg; break;
		case O_MP: cfg.mp_script = optarg; break;
		case O_PY3: cfg.python3 = optarg; break;
		case O_PY311: cfg.python311 = optarg; break;
		case O_DIST: cfg.dist_packages = optarg; break;
		default: usage(stderr); exit(2);
		}
	}
	if (optind != argc) {
		usage(stderr);
		exit(2);
	}
	if (*enforce < 0)
		*enforce = cfg.smoke;
	set_counts();
}

static void check_paths(void)
{
	const char *need[] = { cfg.worker, cfg.policies, cfg.plugins_src, cfg.filter_helper, cfg.mp_script,
		               cfg.python3, cfg.python311 };
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (access(need[i], F_OK) < 0)
			die("%s: %s", need[i], strerror(errno));
}

static int run(int enforce)
{
	uint64_t t0 = now_ns();
	int failed;

	printf("plugbox bench (%s): %d CPUs allowed, pinned placement on CPU %d; medians; ratios against "
	       "baselines measured in this run\n",
	       cfg.smoke ? "smoke" : "full", cpu_count_allowed(), cfg.pin_cpu);
	fflush(stdout);
	for (int pl = 0; pl < PL_COUNT; pl++) {
		if (!(cfg.placements & (1u << pl)))
			continue;
		cur_placement = (enum placement)pl;
		if (set_placement(cur_placement, cfg.pin_cpu) < 0)
			die("sched_setaffinity: %s", strerror(errno));
		for (size_t i = 0; i < NSECTIONS; i++)
			if (cfg.sections & sections[i].bit)
				sections[i].run();
		report_table(cur_placement);
	}
	set_placement(PL_UNPINNED, cfg.pin_cpu);
	failed = report_checks(enforce);
	double elapsed = (double)(now_ns() - t0) / 1e9;
	if (cfg.json_path) {
		if (report_json(cfg.json_path, elapsed) < 0)
			die("writing %s: %s", cfg.json_path, strerror(errno));
		printf("figures written to %s\n", cfg.json_path);
	}
	printf("bench: %.0f s\n", elapsed);
	return failed ? 1 : 0;
}

static volatile sig_atomic_t child_pid;

static void forward(int sig)
{
	(void)sig;
	if (child_pid > 0)
		kill((pid_t)child_pid, SIGKILL);
}

int main(int argc, char **argv)
{
	int enforce, status;
	const char *tmpdir = getenv("TMPDIR");
	pid_t pid;

	setvbuf(stdout, NULL, _IOLBF, 0);
	parse_args(argc, argv, &enforce);
	check_paths();
	snprintf(cfg.tmp, sizeof(cfg.tmp), "%s/plugbox-bench.XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
	if (!mkdtemp(cfg.tmp))
		die("mkdtemp %s: %s", cfg.tmp, strerror(errno));
	chmod(cfg.tmp, 0755);

	fflush(NULL);
	pid = fork_child();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0)
		exit(run(enforce));
	child_pid = pid;
	signal(SIGINT, forward);
	signal(SIGTERM, forward);
	signal(SIGHUP, forward);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	rm_rf(cfg.tmp);
	if (WIFSIGNALED(status)) {
		fprintf(stderr, "bench: killed by signal %d\n", WTERMSIG(status));
		return 128 + WTERMSIG(status);
	}
	return WEXITSTATUS(status);
}
