/* plugbox_selftest.c - `plugbox selftest`: prove, on the machine it runs on,
 * that a worker is contained, by attacking it for real.
 *
 * The probes are plugins (selftest/ in the source tree, installed under
 * PB_SELFTEST_DIR; $PLUGBOX_SELFTEST overrides): each attack(ctx) really
 * tries one escape and returns {"contained": bool, "how": text}. The
 * manifest selftest/probes.txt (trusted) gives each probe's layer and the
 * outcomes that count as contained.
 *
 * The runner gives the probes targets worth attacking: a world-readable
 * secret, a world-writable directory, loopback TCP and UDP listeners, a unix
 * and an abstract socket, a descriptor left open without close-on-exec, a
 * marker in its own memory, its own pid and a sibling plugin. It does not
 * take a probe's word alone: after each probe it looks at those targets
 * itself (a file in the directory? a connection or datagram? a SIGURG? the
 * secret in the probe's answer?) and asks the sibling, which must still be
 * the same process and answer "pong". Each probe runs under a supervisor of
 * its own, freed afterwards, so a probe's worker never outlives its line.
 * Only the public API is used, as a host program would use it.
 *
 * An operator adds probes of their own with --probes DIR (issue 24): a
 * DIR/probes.txt in the same format, each probe a plugin in DIR, run by the
 * same runner with the same evidence rules (and the built-in sibling);
 * --only-probes leaves the built-in battery out. --junit FILE and --tap
 * report one case per probe (cli/test_report.c).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/plugbox_cli.h"
#include "cli/test_report.h"
#include "proto/names.h"
#include "toolkit/clock.h"
#include "toolkit/sanitize.h"

#ifndef PB_SELFTEST_DIR
#define PB_SELFTEST_DIR "/usr/local/share/plugbox/selftest"
#endif

enum { MAX_PROBES = 256,
       HOW_MAX = 1024,
       DEFAULT_TIMEOUT = 3 };
enum { EXIT_NOT_CONTAINED = 1 };

/* The outcomes probes.txt may accept. */
enum {
	EXPECT_RESULT = 1,   /* attack() returned, saying contained */
	EXPECT_KILLED = 2,   /* the sandbox stopped the worker */
	EXPECT_DEADLINE = 4, /* the call was ended at its deadline */
	EXPECT_LIMIT = 8,    /* a resource limit held (a result, or the worker died of it) */
	EXPECT_OUTPUT = 16,  /* attack() returned, and its output reached us bounded and clean */
};

/* What the runner lets an "output" probe's plugin send to the output
 * function: the supervisor's 1000 lines a second per stream (stdout,
 * stderr, notes, log lines) for each second the call took, plus one
 * second's burst, with room for the drop notes. */
#define OUTPUT_LINES_PER_SECOND_PER_STREAM 1000ul
#define OUTPUT_STREAMS 4ul

static const char *const layer_names[] = {
	"filesystem",
	"network",
	"process",
	"memory",
	"cpu",
	"deadline",
	"signals",
	"kernel",
	"seccomp",
	"identity",
	"capabilities",
	"tty",
	"descriptors",
	"namespaces",
	"output",
	NULL,
};

struct probe {
	const char *dir; /* the plugins directory that holds it */
	bool operator;   /* from --probes DIR */
	char name[64];
	char layer[16];
	unsigned expect;
	char attempt[200];
	/* the verdict */
	bool contained, sibling_ok, unavailable;
	char how[HOW_MAX];
};

/* The targets the probes attack, made fresh in a mkdtemp directory. */
struct fixtures {
	char dir[PATH_MAX / 2];
	char secret[PATH_MAX], write_dir[PATH_MAX];
	char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char abstract_name[64];
	char token[64]; /* the secret's content */
	int tcp, udp, unix_fd, abstract_fd, leaked;
	int tcp_port, udp_port;
	bool made; /* dir exists: remove it at the end */
	/* The connect_* probes run under `@network connect` to this listener
	 * only (net_policies: the operator's policies, default.policy
	 * including theirs and adding the line); tcp stays forbidden. */
	int tcp_ok, tcp_ok_port;
	char net_policies[PATH_MAX];
	bool net_made;
};

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

/* What the probe being run printed last: its "[about to call X]" marker
 * explains a kill or a deadline that follows. */
struct capture {
	const char *plugin;
	char last[300];
	/* every line of the probe's, for "output" probes */
	unsigned long lines, bytes, drop_notes;
	char control[80]; /* the first line that held a control character, shown escaped */
};

/* A byte sequence a terminal would act on: C0 but tab, DEL, a C1 control
 * (U+0080..U+009F, two bytes in UTF-8), a bidi override or isolate.
 * Written here from the definitions, not with the sanitiser it checks. */
static bool has_control(const char *line)
{
	for (const unsigned char *p = (const unsigned char *)line; *p; p++) {
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			return true;
		if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			return true;
		if (p[0] == 0xe2 && ((p[1] == 0x80 && p[2] >= 0xaa && p[2] <= 0xae) ||
		                     (p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9)))
			return true;
	}
	return false;
}

static void capture_output(void *data, const char *plugin, pb_stream stream, const char *line)
{
	struct capture *c = data;

	if (!c->plugin || !plugin || strcmp(plugin, c->plugin) != 0)
		return;
	if (stream == PB_STREAM_STDOUT)
		snprintf(c->last, sizeof(c->last), "%s", line);
	c->lines++;
	c->bytes += strlen(line);
	if (stream == PB_STREAM_SUPERVISOR && strstr(line, "dropped ") && strstr(line, " lines / "))
		c->drop_notes++;
	if (!c->control[0] && has_control(line))
		pb_sanitize(c->control, sizeof(c->control), line, strlen(line), 0);
}

/* ---- the manifest -------------------------------------------------------- */

static int parse_expect(char *text, unsigned *out)
{
	static const char *const names[] = { "result", "killed", "deadline", "limit", "output" };
	const size_t nnames = sizeof(names) / sizeof(names[0]);

	*out = 0;
	for (char *save = NULL, *word = strtok_r(text, "|", &save); word; word = strtok_r(NULL, "|", &save)) {
		size_t i = 0;
		while (i < nnames && strcmp(word, names[i]) != 0)
			i++;
		if (i == nnames)
			return -1;
		*out |= 1u << i;
	}
	return *out ? 0 : -1;
}

static bool probe_dir_exists(const char *dir, const char *name)
{
	char path[PATH_MAX];
	struct stat st;

	return snprintf(path, sizeof(path), "%s/%s", dir, name) < (int)sizeof(path) && stat(path, &st) == 0 &&
	       S_ISDIR(st.st_mode);
}

static bool known_layer(const char *s)
{
	for (size_t i = 0; layer_names[i]; i++)
		if (!strcmp(s, layer_names[i]))
			return true;
	return false;
}

/* probes.txt: NAME LAYER EXPECT ATTEMPT..., '#' comments, appended to
 * probes[n..]. Errors name the line; returns the new number of probes, or
 * -1. An operator's probe must be a directory of DIR (built-in ones are
 * checked by make check: tests/tools/check-probes-am). */
static int load_manifest(const char *dir, struct probe *probes, int n, bool operator)
{
	char path[PATH_MAX], line[1024];
	int lineno = 0, first = n;
	FILE *f;

	errno = ENAMETOOLONG;
	f = snprintf(path, sizeof(path), "%s/probes.txt", dir) < (int)sizeof(path) ? fopen(path, "re") : NULL;
	if (!f) {
		fprintf(stderr, "plugbox: selftest: %s/probes.txt: %s\n", dir, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *save = NULL, *name, *layer, *expect, *attempt;
		const char *why = NULL;
		lineno++;
		line[strcspn(line, "#\n")] = '\0';
		name = strtok_r(line, " \t", &save);
		if (!name)
			continue;
		layer = strtok_r(NULL, " \t", &save);
		expect = strtok_r(NULL, " \t", &save);
		attempt = save ? save + strspn(save, " \t") : NULL;
		if (!layer || !expect || !attempt || !*attempt)
			why = "expected NAME LAYER EXPECT ATTEMPT";
		else if (!pb_valid_plugin_name(name) || strlen(name) >= sizeof(probes->name))
			why = "bad probe name";
		else if (!known_layer(layer))
			why = "unknown layer";
		else if (n == MAX_PROBES)
			why = "too many probes";
		else if (parse_expect(expect, &probes[n].expect) < 0)
			why = "EXPECT must be result, killed, deadline or limit, joined by '|'";
		else if (operator&& !probe_dir_exists(dir, name))
			why = "no such probe: the directory DIR/NAME, a plugin, is missing";
		if (why) {
			fprintf(stderr, "plugbox: selftest: %s:%d: %s\n", path, lineno, why);
			fclose(f);
			return -1;
		}
		probes[n].dir = dir;
		probes[n].operator= operator;
		snprintf(probes[n].name, sizeof(probes[n].name), "%s", name);
		snprintf(probes[n].layer, sizeof(probes[n].layer), "%s", layer);
		snprintf(probes[n].attempt, sizeof(probes[n].attempt), "%s", attempt);
		n++;
	}
	fclose(f);
	if (n == first)
		fprintf(stderr, "plugbox: selftest: %s: no probes\n", path);
	return n > first ? n : -1;
}

/* ---- fixtures ------------------------------------------------------------ */

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

static int fixtures_open(struct fixtures *f, const char **step)
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
static void fixtures_check(const struct fixtures *f, sig_atomic_t urgent_before, char *why, size_t len)
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

/* fx->net_policies: a copy of the operator's policies (from `from`) in
 * which default.policy is renamed operator-default.policy and a new
 * default.policy includes it and adds `@network connect` to tcp_ok. */
static int net_policies_make(struct fixtures *f, const char *from)
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

static void fixtures_close(struct fixtures *f)
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

/* ---- the sibling's worker, as this process sees it ----------------------- */

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

/* Workers are children of this process, or grandchildren where spawning
 * puts a process in between (pid namespaces). */
static bool descends_from_me(pid_t pid)
{
	for (int depth = 0; depth < 4 && pid > 1; depth++) {
		char path[64], buf[512], *paren, *end;
		long ppid;
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
		/* "PID (COMM) S PPID ...": the state is one character */
		if (read_small(path, buf, sizeof(buf)) <= 0 || !(paren = strrchr(buf, ')')) || strlen(paren) < 5)
			return false;
		errno = 0;
		ppid = strtol(paren + 4, &end, 10);
		if (errno || end == paren + 4 || *end != ' ' || ppid <= 0 || ppid > INT_MAX)
			return false;
		if (ppid == getpid())
			return true;
		pid = (pid_t)ppid;
	}
	return false;
}

/* The pid of the worker started with `--name NAME` under this process, or
 * -1. */
static pid_t find_worker_pid(const char *name)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	pid_t found = -1;

	while (d && found < 0 && (e = readdir(d))) {
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
				found = pid;
				break;
			}
		}
	}
	if (d)
		closedir(d);
	return found;
}

/* ---- JSON ---------------------------------------------------------------- */

static void json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(out, "\\u%04x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

/* A value as JSON text (malloc'd), or NULL. */
static char *value_text(const pb_value *v)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	if (pb_value_print_json(v, f) < 0) {
		fclose(f);
		free(text);
		return NULL;
	}
	fclose(f);
	return text;
}

/* The ctx map every attack() gets. */
static pb_value *make_ctx(const struct fixtures *f, const char *sibling_dir, pid_t sibling_pid)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	const struct {
		const char *key, *value;
	} strings[] = {
		{ "secret", f->secret },
		{ "write_dir", f->write_dir },
		{ "sibling_dir", sibling_dir },
		{ "unix_path", f->unix_path },
		{ "abstract_name", f->abstract_name },
	};
	struct stat passwd = { 0 };
	pb_value *ctx;

	/* The host's /etc/passwd by identity: a worker may have one of its own. */
	if (!out)
		return NULL;
	stat("/etc/passwd", &passwd);
	fputc('{', out);
	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		json_string(out, strings[i].key);
		fputc(':', out);
		json_string(out, strings[i].value);
		fputc(',', out);
	}
	fprintf(out, "\"supervisor_pid\":%d,\"sibling_pid\":%d,\"tcp_port\":%d,\"udp_port\":%d,\"connect_port\":%d,"
	             "\"marker_addr\":%llu,\"marker_len\":%zu,\"leaked_fd\":%d,\"passwd_id\":[%llu,%llu]}",
	        (int)getpid(), (int)sibling_pid, f->tcp_port, f->udp_port, f->tcp_ok_port,
	        (unsigned long long)(uintptr_t)marker, strlen(marker), f->leaked,
	        (unsigned long long)passwd.st_dev, (unsigned long long)passwd.st_ino);
	fclose(out);
	ctx = text ? pb_value_parse_json(text, NULL) : NULL;
	free(text);
	return ctx;
}

/* ---- running probes ------------------------------------------------------ */

struct run {
	const char *dir, *policies;
	double timeout;
	struct fixtures fx;
	char sibling_dir[PATH_MAX];
	pb_supervisor *sibling;
	pid_t sibling_pid;
	struct capture capture;
};

/* A supervisor over a probes directory, as `plugbox call` opens one. */
static pb_supervisor *open_supervisor(struct run *r, const char *dir, const char *policies)
{
	/* No bytecode cache: the probes are attacks, and their directory may be
	 * the installed, read-only one. */
	struct pb_cli_options o = { .plugins = dir, .policies = policies, .timeout = r->timeout, .no_cache = true };
	pb_supervisor *sup = pb_open_supervisor(&o);

	if (sup)
		pb_supervisor_set_output(sup, capture_output, &r->capture);
	return sup;
}

/* The probe's answer: {"contained": bool, "how": string}. */
static void judge_result(struct probe *p, const pb_value *result)
{
	const pb_value *how = pb_value_map_get(result, "how");
	char *contained = value_text(pb_value_map_get(result, "contained"));

	if (!how || !pb_value_get_string(how) || !contained ||
	    (strcmp(contained, "true") != 0 && strcmp(contained, "false") != 0)) {
		char *all = value_text(result);
		snprintf(p->how, sizeof(p->how), "the probe's answer is not {contained, how}: %.300s",
		         all ? all : "?");
		free(all);
	} else if (!(p->expect & (EXPECT_RESULT | EXPECT_LIMIT | EXPECT_OUTPUT))) {
		snprintf(p->how, sizeof(p->how), "the call returned, which it must not: %s", pb_value_get_string(how));
	} else {
		p->contained = !strcmp(contained, "true");
		snprintf(p->how, sizeof(p->how), "%s", pb_value_get_string(how));
	}
	free(contained);
}

/* A failed call: which errors are containment depends on EXPECT. */
static void judge_error(struct probe *p, const pb_error *err, const char *printed)
{
	const char *msg = pb_error_get_message(err);
	const char *lead = *printed ? printed : "", *sep = *printed ? " -> " : "";

	switch (pb_error_get_kind(err)) {
	case PB_ERROR_VIOLATION:
		p->contained = p->expect & EXPECT_KILLED;
		snprintf(p->how, sizeof(p->how), "%s%s%s", lead, sep, msg);
		break;
	case PB_ERROR_TIMEOUT:
		p->contained = p->expect & EXPECT_DEADLINE;
		snprintf(p->how, sizeof(p->how), "%s%sended at the deadline (%s)", lead, sep, msg);
		break;
	case PB_ERROR_CRASHED:
		/* A limit may end the worker (the kernel's SIGKILL, SIGXCPU). */
		p->contained = p->expect & EXPECT_LIMIT;
		snprintf(p->how, sizeof(p->how), "%s%sworker ended: %s", lead, sep, msg);
		break;
	case PB_ERROR_EXCEPTION:
		snprintf(p->how, sizeof(p->how), "the probe raised %s: %s", pb_error_get_type(err), msg);
		break;
	case PB_ERROR_UNAVAILABLE:
	case PB_ERROR_CONFIG:
		p->unavailable = true;
		snprintf(p->how, sizeof(p->how), "the worker could not start: %s", msg);
		break;
	default:
		snprintf(p->how, sizeof(p->how), "%s: %s", pb_error_kind_name(pb_error_get_kind(err)), msg);
		break;
	}
}

/* The sibling must answer "pong" and still be the same process: a killed
 * sibling would be restarted by the call and answer all the same. */
static bool sibling_check(struct run *r, char *why, size_t len)
{
	pb_value *result = NULL;
	pb_error *err = NULL;
	pid_t now;
	bool ok = false;
	size_t used = strlen(why);

	if (pb_call(r->sibling, "sibling", "ping", NULL, 0, &result, &err) < 0) {
		snprintf(why + used, len - used, "; the sibling did not answer: %s", pb_error_get_message(err));
		pb_error_free(err);
	} else if (!pb_value_get_string(result) || strcmp(pb_value_get_string(result), "pong") != 0) {
		snprintf(why + used, len - used, "; the sibling did not answer \"pong\"");
	} else {
		ok = true;
	}
	pb_value_destroy(result);
	now = find_worker_pid("sibling");
	if (ok && r->sibling_pid > 0 && now != r->sibling_pid) {
		used = strlen(why);
		snprintf(why + used, len - used, "; the sibling's worker %d is gone (now %d)", (int)r->sibling_pid,
		         (int)now);
		ok = false;
	}
	r->sibling_pid = now;
	return ok;
}

/* An "output" probe: the runner counted what reached the output function
 * while the call ran; the probe's word only says that it flooded. */
static void judge_output(struct probe *p, const struct capture *c, double seconds, char *traces, size_t len)
{
	unsigned long bound = (unsigned long)((seconds + 1.0) * OUTPUT_LINES_PER_SECOND_PER_STREAM) *
	                              OUTPUT_STREAMS +
	                      64;
	size_t used = strlen(p->how);

	snprintf(p->how + used, sizeof(p->how) - used, "; %lu lines (%lu bytes) reached the host in %.1f s, "
	                                               "%lu drop notes",
	         c->lines, c->bytes, seconds, c->drop_notes);
	used = strlen(traces);
	if (c->lines > bound)
		snprintf(traces + used, len - used, "; %lu lines is more than the %lu a meter allows", c->lines, bound);
	else if (c->lines > OUTPUT_LINES_PER_SECOND_PER_STREAM * 2 && c->drop_notes == 0)
		snprintf(traces + used, len - used, "; lines were dropped without a note saying so");
	used = strlen(traces);
	if (c->control[0])
		snprintf(traces + used, len - used, "; a control character reached the host: %s", c->control);
}

static void run_probe(struct run *r, struct probe *p)
{
	/* connect_* probes: under @network connect to the runner's second
	 * listener (net_policies_make), attacking the first. */
	bool net = !strncmp(p->name, "connect_", 8);
	const char *env = getenv("PLUGBOX_POLICIES");
	const char *from = r->policies && *r->policies ? r->policies : env && *env ? env
	                                                                           : PB_POLICIES_DIR;
	pb_supervisor *sup = net && net_policies_make(&r->fx, from) < 0 ? NULL
	                                                                : open_supervisor(r, p->dir, net ? r->fx.net_policies : r->policies);
	pb_value *ctx = make_ctx(&r->fx, r->sibling_dir, r->sibling_pid), *result = NULL;
	pb_error *err = NULL;
	sig_atomic_t urgent_before = urgent_signals;
	char traces[HOW_MAX] = "";

	double started = pb_now();

	memset(&r->capture, 0, sizeof(r->capture));
	r->capture.plugin = p->name;
	if (!sup || !ctx) {
		snprintf(p->how, sizeof(p->how), "the runner could not set the probe up");
	} else if (pb_call(sup, p->name, "attack", &ctx, 1, &result, &err) == 0) {
		judge_result(p, result);
	} else {
		judge_error(p, err, r->capture.last);
	}
	pb_value_destroy(result);
	pb_error_free(err);
	pb_value_destroy(ctx);
	pb_supervisor_free(sup); /* the probe's worker ends here */
	r->capture.plugin = NULL;
	if ((p->expect & EXPECT_OUTPUT) && p->contained)
		judge_output(p, &r->capture, pb_now() - started, traces, sizeof(traces));

	/* The runner's own evidence overrules the probe's word. */
	fixtures_check(&r->fx, urgent_before, traces, sizeof(traces));
	if (strstr(p->how, r->fx.token))
		snprintf(traces + strlen(traces), sizeof(traces) - strlen(traces), "; the answer holds the secret");
	p->sibling_ok = sibling_check(r, traces, sizeof(traces));
	if (traces[0]) {
		size_t used = strlen(p->how);
		p->contained = false;
		snprintf(p->how + used, sizeof(p->how) - used, " [runner: %s]", traces + 2);
	}
	/* One line of output whatever the probe wrote. */
	pb_sanitize_inplace(p->how, sizeof(p->how), 0);
}

/* ---- output -------------------------------------------------------------- */

/* The worker says what its layers are; a list of strings, or "?". */
static const char *layer_text(const pb_value *layers, size_t i)
{
	const char *s = pb_value_get_string(pb_value_list_get(layers, i));
	return s ? s : "?";
}

static void print_text_line(const struct probe *p)
{
	printf("%-12s  %-26s  %-13s  %s: %s\n", p->layer, p->name, p->contained ? "contained" : "NOT CONTAINED",
	       p->attempt, p->how);
	fflush(stdout);
}

static void print_json(const pb_value *layers, const struct probe *probes, int n, int contained)
{
	fputs("{\"layers\":[", stdout);
	for (size_t i = 0; i < pb_value_list_length(layers); i++) {
		if (i)
			fputc(',', stdout);
		json_string(stdout, layer_text(layers, i));
	}
	fputs("],\"probes\":[", stdout);
	for (int i = 0; i < n; i++) {
		const struct probe *p = &probes[i];
		const char *keys[] = { "name", "layer", "attempt", "how" };
		const char *values[] = { p->name, p->layer, p->attempt, p->how };
		fputs(i ? ",{" : "{", stdout);
		for (size_t k = 0; k < 4; k++) {
			json_string(stdout, keys[k]);
			fputc(':', stdout);
			json_string(stdout, values[k]);
			fputc(',', stdout);
		}
		printf("\"contained\":%s,\"sibling_ok\":%s}", p->contained ? "true" : "false",
		       p->sibling_ok ? "true" : "false");
	}
	printf("],\"contained\":%d,\"not_contained\":%d}\n", contained, n - contained);
}

/* ---- the command --------------------------------------------------------- */

/* What selftest takes beside the common options. */
struct selftest_args {
	bool json, tap, only_probes;
	const char *junit;  /* --junit FILE */
	const char *probes; /* --probes DIR */
};

/* --junit FILE, --tap, --probes DIR and --only-probes are taken out of
 * argv (also as --opt=VALUE); the rest goes to pb_parse_options. */
static int parse_args(int argc, char **argv, struct run *r, struct selftest_args *a)
{
	static const struct {
		const char *name;
		bool value;
	} own[] = {
		{ "--junit", true },
		{ "--tap", false },
		{ "--probes", true },
		{ "--only-probes", false },
	};
	struct pb_cli_options o;
	char **rest = calloc((size_t)argc + 1, sizeof(char *));
	int nrest = 0, code;

	if (!rest) {
		fprintf(stderr, "plugbox: out of memory\n");
		return PB_EXIT_USAGE;
	}
	for (int i = 0; i < argc; i++) {
		size_t k = 0, len = 0;
		const char *value = NULL;
		while (k < sizeof(own) / sizeof(own[0])) {
			len = strlen(own[k].name);
			if (i > 0 && !strncmp(argv[i], own[k].name, len) && (!argv[i][len] || (own[k].value && argv[i][len] == '=')))
				break;
			k++;
		}
		if (k == sizeof(own) / sizeof(own[0])) {
			rest[nrest++] = argv[i];
			continue;
		}
		if (own[k].value) {
			value = argv[i][len] == '=' ? argv[i] + len + 1 : i + 1 < argc ? argv[++i]
			                                                               : NULL;
			if (!value || !*value) {
				free(rest);
				return pb_usage_error("option %s needs a value", own[k].name);
			}
		}
		switch (k) {
		case 0: a->junit = value; break;
		case 1: a->tap = true; break;
		case 2: a->probes = value; break;
		default: a->only_probes = true; break;
		}
	}
	code = pb_parse_options(nrest, rest, PB_OPT_POLICIES | PB_OPT_TIMEOUT | PB_OPT_JSON, &o);
	if (code < 0 && optind != nrest)
		code = pb_usage_error("unexpected argument '%s'", rest[optind]);
	free(rest);
	if (code >= 0)
		return code;
	if (a->only_probes && !a->probes)
		return pb_usage_error("--only-probes needs --probes DIR%s", "");
	if (o.json && a->tap)
		return pb_usage_error("--json and --tap both write standard output: choose one%s", "");
	r->policies = o.policies;
	if (o.timeout_given)
		r->timeout = o.timeout;
	a->json = o.json;
	return -1;
}

/* One case per probe: failed when not contained, with the attempt and the
 * evidence (the probe's answer or its end, the runner's own findings, the
 * sibling). */
static void report_probe(struct pb_test_report *rep, const struct probe *p)
{
	char klass[64], name[128], msg[HOW_MAX + 400], detail[HOW_MAX + 400];

	snprintf(klass, sizeof(klass), "%s.%s", p->operator? "probes" : "selftest", p->layer);
	snprintf(name, sizeof(name), "%s", p->name);
	snprintf(detail, sizeof(detail), "attempt: %s\noutcome: %s\nsibling: %s", p->attempt, p->how,
	         p->sibling_ok ? "answered, same process" : "did not answer as the same process");
	if (p->contained) {
		pb_test_report_add_in(rep, klass, name, PB_CASE_PASSED, NULL, detail);
		return;
	}
	snprintf(msg, sizeof(msg), "NOT CONTAINED: %s: %s", p->attempt, p->how);
	pb_test_report_add_in(rep, klass, name, PB_CASE_FAILED, msg, detail);
}

/* Start the sibling (its layers are what every worker gets). The exit code
 * if it cannot start, else -1. */
static int start_sibling(struct run *r, pb_value **layers)
{
	pb_value *info = NULL;
	pb_error *err = NULL;
	int code;

	r->sibling = open_supervisor(r, r->dir, r->policies);
	if (!r->sibling)
		return PB_EXIT_USAGE;
	if (pb_describe(r->sibling, "sibling", &info, &err) == 0) {
		/* keep only the layers: a copy through JSON, as the API offers no other */
		char *text = value_text(pb_value_map_get(info, "layers"));
		*layers = text ? pb_value_parse_json(text, NULL) : NULL;
		free(text);
		pb_value_destroy(info);
		r->sibling_pid = find_worker_pid("sibling");
		return *layers ? -1 : PB_EXIT_WORKER;
	}
	code = pb_error_get_kind(err) == PB_ERROR_CONFIG ? PB_EXIT_USAGE : PB_EXIT_WORKER;
	char *why = pb_sanitize_dup(pb_error_get_message(err), 0);
	fprintf(stderr, "plugbox: selftest: %s\n", why ? why : "?");
	free(why);
	pb_error_free(err);
	return code;
}

int pb_cmd_selftest(int argc, char **argv)
{
	static struct probe probes[MAX_PROBES];
	struct run r = { .timeout = DEFAULT_TIMEOUT, .sibling_pid = -1 };
	struct sigaction sa = { .sa_handler = on_sigurg, .sa_flags = SA_RESTART };
	struct selftest_args args = { 0 };
	const char *env = getenv("PLUGBOX_SELFTEST"), *step = "";
	pb_value *layers = NULL;
	struct pb_test_report *rep = NULL;
	static char dir[PATH_MAX], operator_dir[PATH_MAX];
	bool unavailable = false, text;
	int code = parse_args(argc, argv, &r, &args), n = 0, contained = 0;

	if (code >= 0)
		return code;
	text = !args.json && !args.tap;
	r.dir = env && *env ? env : PB_SELFTEST_DIR;
	if (!realpath(r.dir, dir)) {
		fprintf(stderr, "plugbox: selftest: probes directory %s: %s\n", r.dir, strerror(errno));
		return PB_EXIT_USAGE;
	}
	r.dir = dir;
	if (!args.only_probes && (n = load_manifest(dir, probes, 0, false)) < 0)
		return PB_EXIT_USAGE;
	if (args.probes) {
		if (!realpath(args.probes, operator_dir)) {
			fprintf(stderr, "plugbox: selftest: --probes %s: %s\n", args.probes, strerror(errno));
			return PB_EXIT_USAGE;
		}
		if ((n = load_manifest(operator_dir, probes, n, true)) < 0)
			return PB_EXIT_USAGE;
	}
	if (snprintf(r.sibling_dir, sizeof(r.sibling_dir), "%s/sibling", dir) >= (int)sizeof(r.sibling_dir)) {
		fprintf(stderr, "plugbox: selftest: probes directory %s: %s\n", dir, strerror(ENAMETOOLONG));
		return PB_EXIT_USAGE;
	}
	if ((args.junit || args.tap) && !(rep = pb_test_report_new("plugbox selftest", "selftest"))) {
		fprintf(stderr, "plugbox: out of memory\n");
		return PB_EXIT_WORKER;
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGURG, &sa, NULL);
	if (fixtures_open(&r.fx, &step) < 0) {
		fprintf(stderr, "plugbox: selftest: cannot make the fixtures (%s): %s\n", step, strerror(errno));
		fixtures_close(&r.fx);
		pb_test_report_free(rep);
		return PB_EXIT_WORKER;
	}
	code = start_sibling(&r, &layers);
	if (code >= 0)
		goto out;

	if (text) {
		/* each layer describes itself ("landlock: ABI 7: ..."): one a line */
		puts("layers:");
		for (size_t i = 0; i < pb_value_list_length(layers); i++) {
			char shown[512];
			const char *t = layer_text(layers, i);
			pb_sanitize(shown, sizeof(shown), t, strlen(t), 0);
			printf("  %s\n", shown);
		}
		puts("probes:");
	}
	for (int i = 0; i < n; i++) {
		run_probe(&r, &probes[i]);
		contained += probes[i].contained;
		unavailable |= probes[i].unavailable;
		if (text)
			print_text_line(&probes[i]);
		if (rep)
			report_probe(rep, &probes[i]);
	}
	if (args.json)
		print_json(layers, probes, n, contained);
	else if (args.tap)
		pb_test_report_tap(rep, stdout);
	else
		printf("%d probes: %d contained, %d NOT CONTAINED\n", n, contained, n - contained);
	code = unavailable ? PB_EXIT_WORKER : contained == n ? PB_EXIT_OK
	                                                     : EXIT_NOT_CONTAINED;
	if (args.junit && pb_test_report_junit(rep, args.junit) < 0)
		code = PB_EXIT_WORKER;
	if (fflush(stdout) != 0)
		code = PB_EXIT_WORKER;
out:
	pb_test_report_free(rep);
	pb_value_destroy(layers);
	pb_supervisor_free(r.sibling);
	fixtures_close(&r.fx);
	return code;
}
