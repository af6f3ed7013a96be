/* util.c - helpers of the benchmark: clocks and statistics, child
 * processes that die with the bench, file trees, PSS from /proc, CPU
 * placement. Nothing here measures anything by itself.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void usage_now(struct usage *u)
{
	struct rusage ru;
	char line[128];
	FILE *f;

	getrusage(RUSAGE_SELF, &ru);
	u->user_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
	u->sys_s = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	u->vcsw = (double)ru.ru_nvcsw;
	u->ivcsw = (double)ru.ru_nivcsw;
	u->syscr = u->syscw = NAN;
	if ((f = fopen("/proc/self/io", "r"))) {
		while (fgets(line, sizeof(line), f)) {
			if (!strncmp(line, "syscr:", 6))
				u->syscr = strtod(line + 6, NULL);
			else if (!strncmp(line, "syscw:", 6))
				u->syscw = strtod(line + 6, NULL);
		}
		fclose(f);
	}
}

void usage_since(struct usage *u, const struct usage *before)
{
	struct usage now;

	usage_now(&now);
	u->user_s = now.user_s - before->user_s;
	u->sys_s = now.sys_s - before->sys_s;
	u->vcsw = now.vcsw - before->vcsw;
	u->ivcsw = now.ivcsw - before->ivcsw;
	u->syscr = now.syscr - before->syscr;
	u->syscw = now.syscw - before->syscw;
}

int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The smallest sample with at least p of the samples at or below it. */
double percentile(double *v, size_t n, double p)
{
	size_t k;

	if (n == 0)
		return NAN;
	qsort(v, n, sizeof(*v), cmp_double);
	k = (size_t)ceil(p * (double)n);
	return v[k == 0 ? 0 : k - 1];
}

double median(double *v, size_t n)
{
	if (n == 0)
		return NAN;
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void vlog(const char *fmt, va_list ap)
{
	fprintf(stderr, "bench: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void bench_log(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(fmt, ap);
	va_end(ap);
}

void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(fmt, ap);
	va_end(ap);
	exit(2);
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		die("out of memory");
	return p;
}

pid_t fork_child(void)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
	}
	return pid;
}

int run_cmd(char *const argv[], char *out, size_t cap, bool quiet, double *ms)
{
	int pfd[2] = { -1, -1 };
	size_t got = 0;
	uint64_t t0;
	pid_t pid;
	int status;

	if (out && pipe2(pfd, O_CLOEXEC) < 0)
		return -1;
	t0 = now_ns();
	pid = fork_child();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(out ? pfd[1] : null, 1);
		if (quiet)
			dup2(null, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	if (out) {
		close(pfd[1]);
		for (;;) {
			ssize_t n = read(pfd[0], out + got, cap - 1 - got);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			got += (size_t)n;
			if (got == cap - 1) {
				char sink[512];
				while (read(pfd[0], sink, sizeof(sink)) > 0)
					;
				break;
			}
		}
		out[got] = '\0';
		close(pfd[0]);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (ms)
		*ms = (double)(now_ns() - t0) / 1e6;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Workers and the bytecode compiler may leave read-only directories:
 * make every directory writable first, then remove depth-first. */
static int rm_tree_at(int dfd, const char *name)
{
	struct stat st;
	int fd;
	DIR *d;
	struct dirent *e;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dfd, name, 0) < 0 ? -errno : 0;
	fchmodat(dfd, name, 0700, 0);
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			rm_tree_at(fd, e->d_name);
	closedir(d);
	return unlinkat(dfd, name, AT_REMOVEDIR) < 0 ? -errno : 0;
}

int rm_rf(const char *path)
{
	return rm_tree_at(AT_FDCWD, path);
}

static int copy_file(const char *src, const char *dst, mode_t mode)
{
	char buf[65536];
	int in = open(src, O_RDONLY | O_CLOEXEC), out;
	ssize_t n;

	if (in < 0)
		return -errno;
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode & 0777);
	if (out < 0) {
		close(in);
		return -errno;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n) {
			n = -1;
			break;
		}
	close(in);
	if (close(out) < 0 || n < 0)
		return -EIO;
	return 0;
}

int copy_tree(const char *src, const char *dst, bool skip_pycache)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	int r = 0;

	if (lstat(src, &st) < 0)
		return -errno;
	if (S_ISLNK(st.st_mode)) {
		char target[4096];
		ssize_t n = readlink(src, target, sizeof(target) - 1);
		if (n < 0)
			return -errno;
		target[n] = '\0';
		return symlink(target, dst) < 0 ? -errno : 0;
	}
	if (!S_ISDIR(st.st_mode))
		return copy_file(src, dst, st.st_mode);
	if (mkdir(dst, 0755) < 0 && errno != EEXIST)
		return -errno;
	if (!(d = opendir(src)))
		return -errno;
	while (r == 0 && (e = readdir(d))) {
		char s[4096], t[4096];
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (skip_pycache && !strcmp(e->d_name, "__pycache__"))
			continue;
		snprintf(s, sizeof(s), "%s/%s", src, e->d_name);
		snprintf(t, sizeof(t), "%s/%s", dst, e->d_name);
		r = copy_tree(s, t, skip_pycache);
	}
	closedir(d);
	return r;
}

int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	fputs(text, f);
	return fclose(f) == 0 ? 0 : -EIO;
}

long pss_kb(pid_t pid, long *rss_kb, long *anon_kb)
{
	char path[64], line[256];
	long pss = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
	if (!(f = fopen(path, "r")))
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "Pss:", 4))
			pss = strtol(line + 4, NULL, 10);
		else if (rss_kb && !strncmp(line, "Rss:", 4))
			*rss_kb = strtol(line + 4, NULL, 10);
		else if (anon_kb && !strncmp(line, "Pss_Anon:", 9))
			*anon_kb = strtol(line + 9, NULL, 10);
	}
	fclose(f);
	return pss;
}

double json_field(const char *json, const char *name)
{
	char pat[80];
	const char *p;
	char *end;
	double v;

	snprintf(pat, sizeof(pat), "\"%s\":", name);
	if (!json || !(p = strstr(json, pat)))
		return NAN;
	v = strtod(p + strlen(pat), &end);
	return end == p + strlen(pat) ? NAN : v;
}

/* ---- CPU placement ---------------------------------------------------------- */

static cpu_set_t initial_mask;
static bool have_initial;

static void remember_mask(void)
{
	if (!have_initial) {
		CPU_ZERO(&initial_mask);
		sched_getaffinity(0, sizeof(initial_mask), &initial_mask);
		have_initial = true;
	}
}

int cpu_count_allowed(void)
{
	remember_mask();
	return CPU_COUNT(&initial_mask);
}

int nth_allowed_cpu(int n)
{
	remember_mask();
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &initial_mask) && n-- == 0)
			return c;
	return -1;
}

/* Every thread of the bench, not only the caller: the library's spawner
 * thread (supervisor/jail/spawner.c), started in the pinned run, forks
 * every worker, and workers take its affinity. Setting the main thread's
 * alone left the unpinned run's workers on one CPU. */
int set_placement(enum placement pl, int cpu)
{
	cpu_set_t one, *mask = &initial_mask;
	DIR *d;
	struct dirent *e;
	int r = 0;

	remember_mask();
	if (pl != PL_UNPINNED) {
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		mask = &one;
	}
	if (sched_setaffinity(0, sizeof(*mask), mask) < 0)
		return -errno;
	if (!(d = opendir("/proc/self/task")))
		return -errno;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && sched_setaffinity((pid_t)atoi(e->d_name), sizeof(*mask), mask) < 0 &&
		    errno != ESRCH)
			r = -errno;
	closedir(d);
	return r;
}
