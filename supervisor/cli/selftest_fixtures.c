/* selftest_fixtures.c - the targets `plugbox selftest`'s probes attack,
 * made fresh for each run and looked at by the runner after each probe: a
 * world-readable secret, a world-writable directory, loopback TCP and UDP
 * listeners, a unix and an abstract socket, a descriptor left open without
 * close-on-exec, a marker in this process's memory, SIGURG counted. Also
 * how the runner finds its own worker's pid (to see that the sibling is
 * still the same process).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/selftest.h"

/* A copy of the token in this process's memory: what process_vm_readv
 * would steal. */
static char marker[64];
/* kill_supervisor sends SIGURG: ignored by default, so harmless if it
 * arrives, and counted here so that an arrival cannot go unseen. */
static volatile sig_atomic_t urgent_signals;

static void on_sigurg(int sig)
{
	(void)sig;
	urgent_signals++;
}

const char *pb_selftest_marker(void)
{
	return marker;
}

sig_atomic_t pb_selftest_urgent(void)
{
	return urgent_signals;
}

int pb_selftest_count_sigurg(void)
{
	struct sigaction sa = { .sa_handler = on_sigurg, .sa_flags = SA_RESTART };
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGURG, &sa, NULL);
}

static int listener(int type, const struct sockaddr *addr, socklen_t len)
{
	int fd = socket(addr->sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (bind(fd, addr, len) < 0 || (type == SOCK_STREAM && listen(fd, 16) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int bound_port(int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);

	memset(&a, 0, sizeof(a));
	if (getsockname(fd, (struct sockaddr *)&a, &len) < 0 || a.sin_family != AF_INET)
		return -1;
	return ntohs(a.sin_port);
}

int pb_selftest_fixtures_open(struct fixtures *f, const char **step)
{
	const char *tmp = getenv("TMPDIR");
	unsigned char rnd[8];
	char hex[17];
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	int fd;

	memset(f, 0, sizeof(*f));
	f->tcp = f->udp = f->unix_fd = f->abstract_fd = f->leaked = f->tcp_ok = -1;
	if (!tmp || tmp[0] != '/' || strlen(tmp) > 200)
		tmp = "/tmp";
	*step = "random token";
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return -1;
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	snprintf(f->token, sizeof(f->token), "plugbox-selftest-secret-%s", hex);
	snprintf(marker, sizeof(marker), "%s", f->token);
	snprintf(f->abstract_name, sizeof(f->abstract_name), "plugbox-selftest-%d-%s", (int)getpid(), hex);

	/* Modes let any uid in: only the sandbox may keep a probe out. */
	*step = "temporary directory";
	snprintf(f->dir, sizeof(f->dir), "%s/plugbox-selftest-XXXXXX", tmp);
	if (!mkdtemp(f->dir))
		return -1;
	f->made = true;
	if (chmod(f->dir, 0755) < 0)
		return -1;
	*step = "secret file";
	snprintf(f->secret, sizeof(f->secret), "%s/secret", f->dir);
	fd = open(f->secret, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	if (fchmod(fd, 0644) < 0 || dprintf(fd, "%s\n", f->token) < 0) {
		close(fd);
		return -1;
	}
	close(fd);
	/* Left open across exec on purpose: inherited_fds looks for it. */
	f->leaked = open(f->secret, O_RDONLY);
	*step = "writable directory";
	snprintf(f->write_dir, sizeof(f->write_dir), "%s/writable", f->dir);
	if (f->leaked < 0 || mkdir(f->write_dir, 0777) < 0 || chmod(f->write_dir, 0777) < 0)
		return -1;
	*step = "loopback listeners";
	f->tcp = listener(SOCK_STREAM, (struct sockaddr *)&in, sizeof(in));
	f->udp = listener(SOCK_DGRAM, (struct sockaddr *)&in, sizeof(in));
	f->tcp_ok = listener(SOCK_STREAM, (struct sockaddr *)&in, sizeof(in));
	/* connect_rewrite's 300 connects wait there until the probe is over */
	if (f->tcp_ok >= 0 && listen(f->tcp_ok, 512) < 0)
		return -1;
	f->tcp_port = bound_port(f->tcp);
	f->udp_port = bound_port(f->udp);
	f->tcp_ok_port = bound_port(f->tcp_ok);
	if (f->tcp < 0 || f->udp < 0 || f->tcp_ok < 0 || f->tcp_port < 0 || f->udp_port < 0 || f->tcp_ok_port < 0)
		return -1;
	*step = "unix socket";
	if (snprintf(f->unix_path, sizeof(f->unix_path), "%s/unix.sock", f->dir) >= (int)sizeof(f->unix_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(un.sun_path, f->unix_path, sizeof(un.sun_path));
	f->unix_fd = listener(SOCK_STREAM, (struct sockaddr *)&un, sizeof(un));
	if (f->unix_fd < 0 || chmod(f->unix_path, 0777) < 0)
		return -1;
	*step = "abstract socket";
	memset(un.sun_path, 0, sizeof(un.sun_path));
	memcpy(un.sun_path + 1, f->abstract_name, strlen(f->abstract_name));
	f->abstract_fd = listener(SOCK_STREAM, (struct sockaddr *)&un,
	                          (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(f->abstract_name)));
	return f->abstract_fd < 0 ? -1 : 0;
}

/* Empty the writable directory (one level: probes plant files, FIFOs,
 * links and empty directories); appends what was there to why. */
static void empty_write_dir(const struct fixtures *f, char *why, size_t len)
{
	DIR *d = opendir(f->write_dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (why) {
			size_t used = strlen(why);
			snprintf(why + used, len - used, "; '%s' appeared in the writable directory", e->d_name);
		}
		if (unlinkat(dirfd(d), e->d_name, 0) < 0)
			unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
	}
	closedir(d);
}

/* What a probe left on the runner's side; appends reasons to why. */
void pb_selftest_fixtures_check(const struct fixtures *f, sig_atomic_t urgent_before, char *why, size_t len)
{
	struct {
		int fd;
		const char *what;
	} stream[] = {
		{ f->tcp, "the TCP listener accepted a connection" },
		{ f->unix_fd, "the unix socket accepted a connection" },
		{ f->abstract_fd, "the abstract socket accepted a connection" },
	};
	char buf[64];
	size_t used;

	empty_write_dir(f, why, len);
	/* the allowed destination: connections there are the probe's right */
	for (int c; (c = accept4(f->tcp_ok, NULL, NULL, SOCK_CLOEXEC)) >= 0;)
		close(c);
	for (size_t i = 0; i < sizeof(stream) / sizeof(stream[0]); i++) {
		int c;
		bool seen = false;
		while ((c = accept4(stream[i].fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
			close(c);
			seen = true;
		}
		used = strlen(why);
		if (seen)
			snprintf(why + used, len - used, "; %s", stream[i].what);
	}
	used = strlen(why);
	if (recv(f->udp, buf, sizeof(buf), MSG_DONTWAIT) >= 0) {
		while (recv(f->udp, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
			;
		snprintf(why + used, len - used, "; the UDP socket received a datagram");
	}
	used = strlen(why);
	if (urgent_signals != urgent_before)
		snprintf(why + used, len - used, "; the supervisor received SIGURG");
}

/* Remove the files of a directory the runner wrote (one level), then it. */
static void remove_flat_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
	rmdir(path);
}

int pb_selftest_net_policies(struct fixtures *f, const char *from)
{
	DIR *d;
	struct dirent *e;
	int r = 0;

	if (f->net_made)
		return 0;
	snprintf(f->net_policies, sizeof(f->net_policies), "%s/policies", f->dir);
	if (mkdir(f->net_policies, 0755) < 0 || chmod(f->net_policies, 0755) < 0)
		return -1;
	f->net_made = true;
	if (!(d = opendir(from)))
		return -1;
	while (r == 0 && (e = readdir(d))) {
		size_t n = strlen(e->d_name);
		char target[PATH_MAX + 32];
		if (n < 8 || strcmp(e->d_name + n - 7, ".policy") != 0)
			continue;
		snprintf(target, sizeof(target), "%s/%s%s", f->net_policies,
		         !strcmp(e->d_name, "default.policy") ? "operator-" : "", e->d_name);
		int in = openat(dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC);
		int out = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		char buf[8192];
		ssize_t got;
		while (in >= 0 && out >= 0 && (got = read(in, buf, sizeof(buf))) > 0)
			if (write(out, buf, (size_t)got) != got)
				r = -1;
		if (in < 0 || out < 0 || fchmod(out, 0644) < 0)
			r = -1;
		if (in >= 0)
			close(in);
		if (out >= 0)
			close(out);
	}
	closedir(d);
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/default.policy", f->net_policies);
	int fd = r == 0 ? open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644) : -1;
	if (fd < 0 || fchmod(fd, 0644) < 0 ||
	    dprintf(fd, "# plugbox selftest: the operator's default, reaching one listener of the runner\n"
	                "@include operator-default\n@network connect 127.0.0.1:%d\n",
	            f->tcp_ok_port) < 0)
		r = -1;
	if (fd >= 0)
		close(fd);
	return r;
}

void pb_selftest_fixtures_close(struct fixtures *f)
{
	int fds[] = { f->tcp, f->udp, f->unix_fd, f->abstract_fd, f->leaked, f->tcp_ok };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (!f->made)
		return;
	empty_write_dir(f, NULL, 0);
	if (f->net_made)
		remove_flat_dir(f->net_policies);
	rmdir(f->write_dir);
	unlink(f->secret);
	unlink(f->unix_path);
	rmdir(f->dir);
}

/* ---- the sibling's worker, as this process sees it ---------------------- */

static ssize_t read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return n;
}

static pid_t parent_of(pid_t pid)
{
	char path[64], buf[512], *paren, *end;
	long ppid;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	/* "PID (COMM) S PPID ...": the state is one character */
	if (read_small(path, buf, sizeof(buf)) <= 0 || !(paren = strrchr(buf, ')')) || strlen(paren) < 5)
		return -1;
	errno = 0;
	ppid = strtol(paren + 4, &end, 10);
	if (errno || end == paren + 4 || *end != ' ' || ppid <= 0 || ppid > INT_MAX)
		return -1;
	return (pid_t)ppid;
}

/* Workers are children of this process, or grandchildren where spawning
 * puts a process in between (pid namespaces, a plugin's zygote). */
static bool descends_from_me(pid_t pid)
{
	for (int depth = 0; depth < 4 && pid > 1; depth++) {
		pid_t ppid = parent_of(pid);
		if (ppid <= 0)
			return false;
		if (ppid == getpid())
			return true;
		pid = ppid;
	}
	return false;
}

/* The pid of the worker started with `--name NAME` under this process, or
 * -1. Under --spawn zygote the plugin's zygote has the same arguments as
 * its workers (they are its forks): the worker is the one whose parent is
 * another of them. */
pid_t pb_selftest_find_worker_pid(const char *name)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	pid_t found[8];
	size_t nfound = 0;

	while (d && nfound < sizeof(found) / sizeof(found[0]) && (e = readdir(d))) {
		char path[300], args[4096];
		ssize_t n;
		if (!e->d_name[0] || strspn(e->d_name, "0123456789") != strlen(e->d_name) || strlen(e->d_name) > 9)
			continue;
		pid_t pid = (pid_t)strtol(e->d_name, NULL, 10); /* digits only, at most 9 */
		snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
		n = read_small(path, args, sizeof(args));
		/* NUL-separated arguments: look for "--name" followed by NAME */
		for (char *a = args; n > 0 && a < args + n; a += strlen(a) + 1) {
			char *next = a + strlen(a) + 1;
			if (!strcmp(a, "--name") && next < args + n && !strcmp(next, name) && descends_from_me(pid)) {
				found[nfound++] = pid;
				break;
			}
		}
	}
	if (d)
		closedir(d);
	for (size_t i = 0; i < nfound; i++)
		for (size_t k = 0; k < nfound; k++)
			if (parent_of(found[i]) == found[k])
				return found[i];
	return nfound ? found[0] : -1;
}
