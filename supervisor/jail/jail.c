/* jail.c - plan a worker's namespaces, mount tree, identity and limits in
 * the supervisor; put them in place in the child before exec.
 *
 * The mount tree is an empty tmpfs that receives read-only bind mounts of
 * exactly what a worker needs, each at its host path: the Python standard
 * library, the shared-library directories, the worker binary, the plugin's
 * own directory, four harmless device nodes, and the import root (a
 * directory holding only NAME -> the plugin), the loader's cache and
 * /etc/alternatives. No /etc beyond those, no home, no other plugin.
 *
 * With a pid namespace the worker also gets its own /proc (plan_proc):
 * a read-only procfs of its namespace, mounted with subset=pid and
 * hidepid=invisible at PB_JAIL_PROC, so it holds the worker and nothing
 * else (no /proc/sys, no kallsyms, no other pid). /proc itself is a
 * directory of the read-only root that links into it (self, thread-self,
 * 1) and holds a stat file with only the boot time, which psutil needs for
 * a process's start time and which CLOCK_BOOTTIME tells anyone anyway. A symlink on the way to one of these (/lib64 ->
 * usr/lib64 on a merged-/usr system) is recreated, so the loader's and
 * Python's paths resolve inside as they do outside.
 *
 * The plan is data made here with malloc; the child only walks it with
 * system calls (pb_jail_enter in jail_enter.c), as bubblewrap and nsjail do.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "jail/jail.h"

#define IMPORT_ROOT PB_JAIL_IMPORT_ROOT

/* Public data the standard library reads: zoneinfo's time zones. */
static const char *const shared_data[] = { "/usr/share/zoneinfo", "/usr/lib/locale" };
/* What the loader reads to find a C extension's libraries: its cache, and
 * the alternatives Debian reaches BLAS and LAPACK through
 * (libblas.so.3 -> /etc/alternatives/... -> blas/libblas.so.3). Package
 * configuration, not the operator's. */
static const char *const loader_files[] = { "/etc/ld.so.cache", "/etc/alternatives" };
/* What name resolution and TLS read, with @network host. */
static const char *const network_files[] = {
	"/etc/resolv.conf",
	"/etc/hosts",
	"/etc/nsswitch.conf",
	"/etc/gai.conf",
	"/etc/ssl",
	"/usr/share/ca-certificates",
};
#define SYMLINK_DEPTH 8

/* ---- planning (in the supervisor) ----------------------------------------- */

int pb_jail_hosts_file(const char *view_dir, char *buf, size_t len)
{
	return snprintf(buf, len, "%s.hosts", view_dir) < (int)len ? 0 : -ENAMETOOLONG;
}

static int add_string(char ***v, size_t *n, const char *s)
{
	char **grown = realloc(*v, (*n + 1) * sizeof(char *));
	if (!grown)
		return -ENOMEM;
	*v = grown;
	if (!(grown[*n] = strdup(s)))
		return -ENOMEM;
	(*n)++;
	return 0;
}

static const struct pb_jail_op *find_op(const struct pb_jail *j, const char *path)
{
	for (size_t i = 0; i < j->nops; i++)
		if (!strcmp(j->ops[i].path, path))
			return &j->ops[i];
	return NULL;
}

static int add_op(struct pb_jail *j, enum pb_jail_op_kind kind, const char *path, const char *arg,
                  unsigned long locked)
{
	struct pb_jail_op *grown, *op;

	if (kind <= JAIL_SYMLINK && find_op(j, path))
		return 0;
	grown = realloc(j->ops, (j->nops + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	j->ops = grown;
	op = &j->ops[j->nops];
	memset(op, 0, sizeof(*op));
	op->kind = kind;
	op->locked = locked;
	op->path = strdup(path);
	if (asprintf(&op->target, "%s%s", j->newroot, path) < 0)
		op->target = NULL;
	op->arg = arg ? strdup(arg) : NULL;
	j->nops++;
	if (!op->path || !op->target || (arg && !op->arg))
		return -ENOMEM;
	return 0;
}

/* Is path inside something already bound? Then it is visible already. */
static bool covered(const struct pb_jail *j, const char *path)
{
	for (size_t i = 0; i < j->nops; i++) {
		const struct pb_jail_op *op = &j->ops[i];
		size_t n = strlen(op->path);
		if ((op->kind == JAIL_BIND || op->kind == JAIL_BIND_DEV || op->kind == JAIL_TMPFS ||
		     op->kind == JAIL_BIND_RW || op->kind == JAIL_BIND_OPT) &&
		    !strncmp(path, op->path, n) && (path[n] == '\0' || path[n] == '/'))
			return true;
	}
	return false;
}

/* Collapse "//", "." and ".." of an absolute path, in place. */
static void normalize(char *path)
{
	char *out = path, *in = path;

	while (*in) {
		while (*in == '/')
			in++;
		size_t n = strcspn(in, "/");
		if (n == 0)
			break;
		if (n == 1 && in[0] == '.') {
			in += n;
			continue;
		}
		if (n == 2 && in[0] == '.' && in[1] == '.') {
			while (out > path && *--out != '/')
				;
			in += n;
			continue;
		}
		*out++ = '/';
		memmove(out, in, n);
		out += n;
		in += n;
	}
	if (out == path)
		*out++ = '/';
	*out = '\0';
}

/* The mount flags a bind mount inherits from its source and that a remount
 * in a user namespace may not drop (the kernel locks them). */
static unsigned long locked_flags(const char *path)
{
	struct statvfs st;
	unsigned long f = 0;

	if (statvfs(path, &st) < 0)
		return 0;
	if (st.f_flag & ST_NOSUID)
		f |= MS_NOSUID;
	if (st.f_flag & ST_NODEV)
		f |= MS_NODEV;
	if (st.f_flag & ST_NOEXEC)
		f |= MS_NOEXEC;
	if (st.f_flag & ST_NOATIME)
		f |= MS_NOATIME;
	if (st.f_flag & ST_NODIRATIME)
		f |= MS_NODIRATIME;
	if (st.f_flag & ST_RELATIME)
		f |= MS_RELATIME;
	return f;
}

/* Make host `path` visible read-only at the same path: the directories on
 * the way, the symlinks on the way (followed), then a bind mount. A path
 * that does not exist is skipped when `optional`. */
static int expose(struct pb_jail *j, const char *path, enum pb_jail_op_kind bind, bool optional,
                  int depth, char *why, size_t why_len)
{
	char prefix[PATH_MAX] = "";
	const char *p = path;
	size_t plen = 0;
	struct stat st;
	int r;

	if (depth > SYMLINK_DEPTH) {
		snprintf(why, why_len, "filesystem: too many symlinks on the way to %s", path);
		return -ELOOP;
	}
	for (;;) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		size_t n = strcspn(p, "/");
		if (plen + 1 + n >= sizeof(prefix))
			return -ENAMETOOLONG;
		prefix[plen++] = '/';
		memcpy(prefix + plen, p, n);
		plen += n;
		prefix[plen] = '\0';
		p += n;
		while (*p == '/')
			p++;
		if (covered(j, prefix))
			return 0;
		if (lstat(prefix, &st) < 0) {
			if (optional && errno == ENOENT)
				return 0;
			snprintf(why, why_len, "filesystem: cannot expose %s: %s: %s", path, prefix, strerror(errno));
			return -errno;
		}
		if (S_ISLNK(st.st_mode)) {
			char link[PATH_MAX], next[PATH_MAX * 2];
			ssize_t ln = readlink(prefix, link, sizeof(link) - 1);
			if (ln <= 0)
				return -errno;
			link[ln] = '\0';
			if ((r = add_op(j, JAIL_SYMLINK, prefix, link, 0)) < 0)
				return r;
			if (link[0] == '/')
				snprintf(next, sizeof(next), "%s/%s", link, p);
			else
				snprintf(next, sizeof(next), "%.*s/%s/%s", (int)(strrchr(prefix, '/') - prefix),
				         prefix, link, p);
			normalize(next);
			return expose(j, next, bind, optional, depth + 1, why, why_len);
		}
		if (*p) {
			if (!S_ISDIR(st.st_mode))
				return -ENOTDIR;
			if ((r = add_op(j, JAIL_DIR, prefix, NULL, 0)) < 0)
				return r;
			continue;
		}
		if ((r = add_op(j, S_ISDIR(st.st_mode) ? JAIL_DIR : JAIL_FILE, prefix, NULL, 0)) < 0 ||
		    (r = add_op(j, bind, prefix, prefix, locked_flags(prefix))) < 0)
			return r;
		return add_string(&j->read_paths, &j->nread, prefix);
	}
	snprintf(why, why_len, "filesystem: refusing to expose the root directory");
	return -EINVAL;
}

static int add_layer(struct pb_jail *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int add_layer(struct pb_jail *j, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (j->nlayers == sizeof(j->layers) / sizeof(j->layers[0]))
		return -ENOSPC;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	j->layers[j->nlayers++] = s;
	return 0;
}

/* Is anything in the plan at or below dir? Then a scratch tmpfs there would hide it. */
static bool plan_uses(const struct pb_jail *j, const char *dir)
{
	size_t n = strlen(dir);
	for (size_t i = 0; i < j->nops; i++)
		if (!strncmp(j->ops[i].path, dir, n) && (j->ops[i].path[n] == '/' || !j->ops[i].path[n]))
			return true;
	return false;
}

/* Host directory `host` read-only at `inside`, a path no other part of the
 * plan covers, with the directories on the way made empty (a plugin being
 * installed, at the path it will have once installed). */
static int place(struct pb_jail *j, const char *inside, const char *host, char *why, size_t why_len)
{
	char prefix[PATH_MAX];
	int r;

	if (inside[0] != '/' || strlen(inside) >= sizeof(prefix))
		return -EINVAL;
	for (const char *p = strchr(inside + 1, '/');; p = strchr(p + 1, '/')) {
		size_t n = p ? (size_t)(p - inside) : strlen(inside);
		memcpy(prefix, inside, n);
		prefix[n] = '\0';
		const struct pb_jail_op *op = find_op(j, prefix);
		if (covered(j, prefix) || (op && op->kind != JAIL_DIR)) {
			snprintf(why, why_len, "filesystem: cannot place a directory at %s: %s is taken", inside, prefix);
			return -EEXIST;
		}
		if ((r = add_op(j, JAIL_DIR, prefix, NULL, 0)) < 0)
			return r;
		if (!p)
			break;
	}
	if ((r = add_op(j, JAIL_BIND, inside, host, locked_flags(host))) < 0)
		return r;
	return add_string(&j->read_paths, &j->nread, inside);
}

/* The host's boot time in seconds, for /proc/stat; 0 when unknown. */
static unsigned long long boot_time(void)
{
	char line[256];
	unsigned long long t = 0;
	FILE *f = fopen("/proc/stat", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "btime ", 6)) {
			char *end;
			t = strtoull(line + 6, &end, 10);
			if (end == line + 6 || (*end != '\n' && *end != '\0'))
				t = 0;
			break;
		}
	fclose(f);
	return t;
}

/* The worker's own /proc (see the top of this file). Only with a pid
 * namespace: the worker is pid 1 of it, and a procfs made there shows
 * nothing of the host's processes. */
static int plan_proc(struct pb_jail *j)
{
	static const char *const links[][2] = {
		{ "/proc/self", PB_JAIL_PROC "/self" },
		{ "/proc/thread-self", PB_JAIL_PROC "/thread-self" },
		{ "/proc/1", PB_JAIL_PROC "/1" },
	};
	unsigned long long btime = boot_time();
	char stat[64];
	int r;

	if ((r = add_op(j, JAIL_DIR, PB_JAIL_PROC, NULL, 0)) < 0 ||
	    (r = add_op(j, JAIL_PROC, PB_JAIL_PROC, "subset=pid,hidepid=invisible", 0)) < 0 ||
	    (r = add_op(j, JAIL_DIR, "/proc", NULL, 0)) < 0)
		return r;
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
		if ((r = add_op(j, JAIL_SYMLINK, links[i][0], links[i][1], 0)) < 0)
			return r;
	snprintf(stat, sizeof(stat), "btime %llu\n", btime);
	if (btime && (r = add_op(j, JAIL_FILE, "/proc/stat", stat, 0)) < 0)
		return r;
	if ((r = add_string(&j->read_paths, &j->nread, "/proc")) < 0 ||
	    (r = add_string(&j->read_paths, &j->nread, PB_JAIL_PROC)) < 0)
		return r;
	j->proc = true;
	return 0;
}

/* plugin_dir NULL: an install worker's tree, which has no plugin and no
 * import root (pb_jail_prepare_install adds its own directories). */
static int plan_mount_tree(struct pb_jail *j, const struct pb_sandbox *sb, const char *name,
                           const char *plugin_dir, const char *worker_path, const char *cache,
                           char *why, size_t why_len)
{
	static const char *const devices[] = { "/dev/null", "/dev/zero", "/dev/urandom", "/dev/random" };
	char dirs[] = PB_LIBRARY_DIRS, link[PATH_MAX], *save = NULL;
	int r;

	if ((r = expose(j, PB_PYTHON_STDLIB, JAIL_BIND, false, 0, why, why_len)) < 0)
		return r;
	for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save))
		if ((r = expose(j, d, JAIL_BIND, true, 0, why, why_len)) < 0)
			return r;
	if ((r = expose(j, worker_path, JAIL_BIND, false, 0, why, why_len)) < 0 ||
	    (plugin_dir && (r = expose(j, plugin_dir, JAIL_BIND, false, 0, why, why_len)) < 0))
		return r;
	for (size_t i = 0; i < sizeof(devices) / sizeof(devices[0]); i++)
		if ((r = expose(j, devices[i], JAIL_BIND_DEV, true, 0, why, why_len)) < 0)
			return r;
	for (size_t i = 0; i < sizeof(shared_data) / sizeof(shared_data[0]); i++)
		if ((r = expose(j, shared_data[i], JAIL_BIND, true, 0, why, why_len)) < 0)
			return r;
	for (size_t i = 0; i < sizeof(loader_files) / sizeof(loader_files[0]); i++)
		if ((r = expose(j, loader_files[i], JAIL_BIND, true, 0, why, why_len)) < 0)
			return r;
	if (sb->network == PB_NETWORK_HOST)
		for (size_t i = 0; i < sizeof(network_files) / sizeof(network_files[0]); i++)
			if ((r = expose(j, network_files[i], JAIL_BIND, true, 0, why, why_len)) < 0)
				return r;
	/* Who the worker is, for pwd and getpass: itself, and root, which owns
	 * every file of the view (tarfile, pathlib's owner() and shutil.chown
	 * look the owner up by id; every Linux has it, so it tells nothing);
	 * then nobody and nogroup, the overflow ids as which a user namespace
	 * shows the files of ids it does not map (root's, unprivileged), and
	 * which code looks up by name (test_subprocess). After the plugin's own
	 * line, so that its id is named "plugin" even when it is 65534. */
	char *passwd = NULL, *group = NULL;
	if (asprintf(&passwd, "root:x:0:0:root:/root:/usr/sbin/nologin\n"
	                      "plugin:x:%u:%u:plugbox plugin %s:/nonexistent:/usr/sbin/nologin\n"
	                      "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
	             (unsigned)j->uid, (unsigned)j->gid, name) < 0 ||
	    asprintf(&group, "root:x:0:\nplugin:x:%u:\nnogroup:x:65534:\n", (unsigned)j->gid) < 0) {
		free(passwd);
		return -ENOMEM;
	}
	r = 0;
	if (!find_op(j, "/etc"))
		r = add_op(j, JAIL_DIR, "/etc", NULL, 0);
	if (r == 0 && !find_op(j, "/etc/passwd") && (r = add_op(j, JAIL_FILE, "/etc/passwd", passwd, 0)) == 0)
		r = add_string(&j->read_paths, &j->nread, "/etc/passwd");
	if (r == 0 && !find_op(j, "/etc/group") && (r = add_op(j, JAIL_FILE, "/etc/group", group, 0)) == 0)
		r = add_string(&j->read_paths, &j->nread, "/etc/group");
	free(passwd);
	free(group);
	/* Without the host's network, names resolve from files only: the
	 * worker's own name (sethostname in jail_enter.c) and localhost, as on
	 * any machine; no DNS lookup tries a socket the policy refuses.
	 * With @network connect, the names it may reach are there too, with
	 * the addresses the supervisor resolved them to (policy_net.c). */
	if (r == 0 && sb->network == PB_NETWORK_CONNECT && plugin_dir && !find_op(j, "/etc/hosts")) {
		char hosts[PATH_MAX];
		if ((r = pb_jail_hosts_file(j->newroot, hosts, sizeof(hosts))) == 0 &&
		    (r = add_op(j, JAIL_FILE, "/etc/hosts", NULL, 0)) == 0 &&
		    (r = add_op(j, JAIL_BIND, "/etc/hosts", hosts, 0)) == 0)
			r = add_string(&j->read_paths, &j->nread, "/etc/hosts");
	}
	if (r == 0 && sb->network != PB_NETWORK_HOST && !find_op(j, "/etc/hosts")) {
		char *hosts = pb_net_hosts_text(sb);
		if (!hosts)
			return -ENOMEM;
		if ((r = add_op(j, JAIL_FILE, "/etc/hosts", hosts, 0)) == 0)
			r = add_string(&j->read_paths, &j->nread, "/etc/hosts");
		free(hosts);
	}
	if (r == 0 && sb->network != PB_NETWORK_HOST && !find_op(j, "/etc/nsswitch.conf") &&
	    (r = add_op(j, JAIL_FILE, "/etc/nsswitch.conf",
	                "passwd: files\ngroup: files\nhosts: files\nnetworks: files\nprotocols: files\nservices: files\n", 0)) == 0)
		r = add_string(&j->read_paths, &j->nread, "/etc/nsswitch.conf");
	if (r < 0)
		return r;
	if (!plugin_dir)
		return add_string(&j->write_paths, &j->nwrite, "/dev/null");
	snprintf(link, sizeof(link), IMPORT_ROOT "/%s", name);
	if ((r = add_op(j, JAIL_DIR, "/plugbox", NULL, 0)) < 0 ||
	    (r = add_op(j, JAIL_DIR, IMPORT_ROOT, NULL, 0)) < 0 ||
	    (r = add_op(j, JAIL_SYMLINK, link, plugin_dir, 0)) < 0 ||
	    (r = add_string(&j->read_paths, &j->nread, IMPORT_ROOT)) < 0)
		return r;
	free(j->import_root);
	if (!(j->import_root = strdup(IMPORT_ROOT)))
		return -ENOMEM;
	/* This plugin's cache and no other: a fixed path, read-only. Its host
	 * directory may be replaced by a newer build meanwhile; a worker that
	 * then finds nothing there imports from source. */
	if (cache && ((r = add_op(j, JAIL_DIR, PB_JAIL_CACHE, NULL, 0)) < 0 ||
	              (r = add_op(j, JAIL_BIND_OPT, PB_JAIL_CACHE, cache, locked_flags(cache))) < 0 ||
	              (r = add_string(&j->read_paths, &j->nread, PB_JAIL_CACHE)) < 0))
		return r;
	if (cache && !(j->cache_view = strdup(PB_JAIL_CACHE)))
		return -ENOMEM;
	if ((j->clone_flags & CLONE_NEWPID) && sb->proc == PB_PROC_ON && (r = plan_proc(j)) < 0)
		return r;
	if (sb->scratch) {
		/* /tmp is where tempfile looks first; when a plugin itself lives
		 * under /tmp, /var/tmp (its second choice) keeps the plugin visible. */
		const char *at = !plan_uses(j, "/tmp") ? "/tmp" : !plan_uses(j, "/var/tmp") ? "/var/tmp"
		                                                                            : NULL;
		char opts[128];
		if (!at) {
			snprintf(why, why_len, "scratch: /tmp and /var/tmp both hold the plugin's own files");
			return -EEXIST;
		}
		snprintf(opts, sizeof(opts), "size=%llu,nr_inodes=%llu,mode=0700,uid=%u,gid=%u",
		         (unsigned long long)sb->scratch, (unsigned long long)sb->scratch_inodes,
		         (unsigned)j->uid, (unsigned)j->gid);
		if (!strcmp(at, "/var/tmp") && (r = add_op(j, JAIL_DIR, "/var", NULL, 0)) < 0)
			return r;
		if ((r = add_op(j, JAIL_DIR, at, NULL, 0)) < 0 || (r = add_op(j, JAIL_TMPFS, at, opts, sb->scratch_exec ? 0 : MS_NOEXEC)) < 0 ||
		    (r = add_string(&j->write_paths, &j->nwrite, at)) < 0)
			return r;
		if (!(j->scratch = strdup(at)))
			return -ENOMEM;
	}
	return add_string(&j->write_paths, &j->nwrite, "/dev/null");
}

static void plan_rlimits(struct pb_jail *j, const struct pb_sandbox *sb)
{
	/* memory is RLIMIT_DATA: what a worker writes (heap, thread stacks,
	 * private mappings) counts, and a reservation that is never touched
	 * (glibc's 64 MiB malloc arenas, a read-only mapping of a large file)
	 * does not. RLIMIT_DATA misses shared mappings (mmap.mmap(-1, n) is
	 * MAP_SHARED), which the address space bounds. */
	static const int resource[PB_JAIL_RLIMITS] = { RLIMIT_DATA, RLIMIT_AS, RLIMIT_CPU, RLIMIT_NOFILE,
		                                       RLIMIT_NPROC, RLIMIT_FSIZE, RLIMIT_CORE };
	static const enum pb_limit limit[PB_JAIL_RLIMITS] = { PB_LIMIT_MEMORY, PB_LIMIT_ADDRESS_SPACE,
		                                              PB_LIMIT_CPU, PB_LIMIT_FILES,
		                                              PB_LIMIT_PROCESSES, PB_LIMIT_FILE_SIZE,
		                                              PB_LIMIT_CORE };
	for (int i = 0; i < PB_JAIL_RLIMITS; i++) {
		struct rlimit now;
		uint64_t v = sb->limit[limit[i]];
		rlim_t want = v == PB_LIMIT_UNLIMITED ? RLIM_INFINITY : (rlim_t)v;
		/* Never looser than what the supervisor itself has: an
		 * unprivileged process cannot raise a hard limit anyway. */
		if (getrlimit(resource[i], &now) == 0 && now.rlim_max != RLIM_INFINITY &&
		    (want == RLIM_INFINITY || want > now.rlim_max))
			want = now.rlim_max;
		j->rlimit_resource[i] = resource[i];
		j->rlimits[i].rlim_cur = want;
		/* CPU: SIGXCPU at the limit, SIGKILL a second later if it is caught. */
		j->rlimits[i].rlim_max = resource[i] == RLIMIT_CPU && want != RLIM_INFINITY &&
		                                         (now.rlim_max == RLIM_INFINITY || want < now.rlim_max)
		                                 ? want + 1
		                                 : want;
	}
}

/* An install worker's own directories in the mount tree: each tree at a
 * fixed path under /plugbox, so the worker never learns (or depends on)
 * where PLUGINS is on the host. */
static int plan_install_tree(struct pb_jail *j, const struct pb_jail_install *in, char *why, size_t why_len)
{
	const struct {
		const char *inside, *host;
		enum pb_jail_op_kind kind;
	} trees[] = {
		{ PB_JAIL_STAGING, in->staging, JAIL_BIND_RW },
		{ PB_JAIL_SOURCE, in->source, JAIL_BIND },
		{ PB_JAIL_OLD, in->old, JAIL_BIND },
	};
	int r;

	if (!find_op(j, "/plugbox") && (r = add_op(j, JAIL_DIR, "/plugbox", NULL, 0)) < 0)
		return r;
	for (size_t i = 0; i < sizeof(trees) / sizeof(trees[0]); i++) {
		if (!trees[i].host)
			continue;
		if ((r = add_op(j, JAIL_DIR, trees[i].inside, NULL, 0)) < 0 ||
		    (r = add_op(j, trees[i].kind, trees[i].inside, trees[i].host, locked_flags(trees[i].host))) < 0)
			return r;
		if (trees[i].kind == JAIL_BIND_RW)
			r = add_string(&j->write_paths, &j->nwrite, trees[i].inside);
		else
			r = add_string(&j->read_paths, &j->nread, trees[i].inside);
		if (r < 0)
			return r;
	}
	/* A plugin to compile: where its workers see it, since the pycs are
	 * looked up by the source's path (worker/compile.py). */
	if (in->plugin && (!in->plugin_at || !strcmp(in->plugin_at, in->plugin)))
		return expose(j, in->plugin, JAIL_BIND, false, 0, why, why_len);
	if (in->plugin)
		return place(j, in->plugin_at, in->plugin, why, why_len);
	return 0;
}

/* May the late ops (pb_jail_op_late) wait until after the read-only binds
 * and their one mount_setattr? Only when no op after a late one lies under
 * its path: such an op (a directory made inside a staging bind, say) must
 * find that mount already there. PLUGBOX_MOUNT_SETATTR=off asks for one
 * remount per bind, the path of kernels before 5.12, to test it here. */
static bool batch_ro(const struct pb_jail *j)
{
	const char *env = getenv("PLUGBOX_MOUNT_SETATTR");

	if (env && !strcmp(env, "off"))
		return false;
	for (size_t i = 0; i < j->nops; i++) {
		const struct pb_jail_op *late = &j->ops[i];
		size_t n = strlen(late->path);
		if (!pb_jail_op_late(late->kind))
			continue;
		for (size_t k = i + 1; k < j->nops; k++)
			if (!pb_jail_op_late(j->ops[k].kind) && !strncmp(j->ops[k].path, late->path, n) &&
			    (j->ops[k].path[n] == '/' || j->ops[k].path[n] == '\0'))
				return false;
	}
	return true;
}

/* Exactly one of plugin_dir (a plugin worker) and in (an install worker). */
static int prepare(struct pb_jail *j, const struct pb_sandbox *sb, bool use_namespaces,
                   const char *name, const char *plugin_dir, const struct pb_jail_install *in,
                   const char *view_dir, const char *worker_path, const char *cache, uid_t uid, gid_t gid,
                   char *why, size_t why_len)
{
	char buf[7][24];
	int r;

	memset(j, 0, sizeof(*j));
	j->as_root = geteuid() == 0;
	j->uid = j->as_root ? uid : geteuid();
	j->gid = j->as_root ? gid : getegid();
	j->last_cap = (int)cap_max_bits() - 1;
	if (!(j->newroot = strdup(view_dir)))
		return -ENOMEM;
	plan_rlimits(j, sb);

	if (use_namespaces) {
		j->clone_flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP;
		if (sb->network != PB_NETWORK_HOST)
			j->clone_flags |= CLONE_NEWNET;
		/* Root needs no user namespace to make the others, and drops to
		 * the plugin's own uid instead. */
		if (!j->as_root) {
			j->clone_flags |= CLONE_NEWUSER;
			j->userns = true;
		}
		j->mount_tree = true;
		if ((r = plan_mount_tree(j, sb, name, plugin_dir, worker_path, cache, why, why_len)) < 0 ||
		    (in && (r = plan_install_tree(j, in, why, why_len)) < 0))
			return r;
		if (in && !(j->import_root = strdup(view_dir)))
			return -ENOMEM;
		j->ro_batch = batch_ro(j);
		add_layer(j, "namespaces: %s%s pid mount ipc uts cgroup", j->userns ? "user " : "",
		          sb->network == PB_NETWORK_NONE      ? "net"
		          : sb->network == PB_NETWORK_CONNECT ? "net (connects made by the supervisor)"
		                                              : "(host network)");
		char inodes[64] = "";
		if (j->scratch)
			snprintf(inodes, sizeof(inodes), " (%s, %llu inodes%s)",
			         pb_limit_format(PB_LIMIT_MEMORY, sb->scratch, buf[0], sizeof(buf[0])),
			         (unsigned long long)sb->scratch_inodes, sb->scratch_exec ? "" : ", noexec");
		add_layer(j, "filesystem: mount tree (pivot_root), read-only%s%s%s%s", j->scratch ? ", scratch at " : "",
		          j->scratch ? j->scratch : "", inodes,
		          j->proc                                         ? ", own /proc (this process only)"
		          : (j->clone_flags & CLONE_NEWPID) && plugin_dir ? ", no /proc (@proc off)"
		                                                          : ", no /proc");
	} else {
		/* No mount tree: the view directory itself is the import root,
		 * and Landlock (if the kernel has it) is the file-system wall. */
		if (sb->scratch) {
			snprintf(why, why_len, "scratch: a scratch directory needs the mount namespace, "
			                       "and namespaces are not in use");
			return -EOPNOTSUPP;
		}
		if (!(j->import_root = strdup(view_dir)) ||
		    add_string(&j->read_paths, &j->nread, PB_PYTHON_STDLIB) < 0 ||
		    add_string(&j->read_paths, &j->nread, worker_path) < 0 ||
		    add_string(&j->write_paths, &j->nwrite, "/dev/null") < 0)
			return -ENOMEM;
		if (plugin_dir && (add_string(&j->read_paths, &j->nread, plugin_dir) < 0 ||
		                   add_string(&j->read_paths, &j->nread, view_dir) < 0))
			return -ENOMEM;
		/* The cache at its host path: Landlock, where the kernel has it,
		 * keeps the other plugins' caches out of reach. */
		if (cache && (add_string(&j->read_paths, &j->nread, cache) < 0 || !(j->cache_view = strdup(cache))))
			return -ENOMEM;
		if (in && in->plugin && in->plugin_at && strcmp(in->plugin, in->plugin_at) != 0) {
			snprintf(why, why_len, "filesystem: placing %s at %s needs the mount tree", in->plugin,
			         in->plugin_at);
			return -EOPNOTSUPP;
		}
		if (in && in->plugin && add_string(&j->read_paths, &j->nread, in->plugin) < 0)
			return -ENOMEM;
		/* Without a mount tree the install worker uses host paths, and
		 * Landlock alone keeps its writes beneath staging. */
		if (in && ((in->staging && add_string(&j->write_paths, &j->nwrite, in->staging) < 0) ||
		           (in->source && add_string(&j->read_paths, &j->nread, in->source) < 0) ||
		           (in->old && add_string(&j->read_paths, &j->nread, in->old) < 0)))
			return -ENOMEM;
		char dirs[] = PB_LIBRARY_DIRS, *save = NULL;
		for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save))
			if (access(d, F_OK) == 0 && add_string(&j->read_paths, &j->nread, d) < 0)
				return -ENOMEM;
		for (size_t i = 0; i < sizeof(shared_data) / sizeof(shared_data[0]); i++)
			if (access(shared_data[i], F_OK) == 0 &&
			    add_string(&j->read_paths, &j->nread, shared_data[i]) < 0)
				return -ENOMEM;
		for (size_t i = 0; i < sizeof(loader_files) / sizeof(loader_files[0]); i++)
			if (access(loader_files[i], F_OK) == 0 &&
			    add_string(&j->read_paths, &j->nread, loader_files[i]) < 0)
				return -ENOMEM;
		for (size_t i = 0; sb->network == PB_NETWORK_HOST && i < sizeof(network_files) / sizeof(network_files[0]); i++)
			if (access(network_files[i], F_OK) == 0 &&
			    add_string(&j->read_paths, &j->nread, network_files[i]) < 0)
				return -ENOMEM;
		add_layer(j, "namespaces: none (%s)",
		          sb->layer[PB_LAYER_NAMESPACES] == PB_LAYER_OFF ? "off in the policy" : "unavailable here");
	}
	if (j->as_root)
		add_layer(j, "identity: uid %u gid %u, this plugin's own", (unsigned)j->uid, (unsigned)j->gid);
	else
		add_layer(j, "identity: uid %u, the caller's%s", (unsigned)j->uid,
		          j->userns ? ", mapped to itself in a user namespace" : "");
	add_layer(j, "rlimits: memory %s address-space %s cpu %s files %s processes %s file-size %s core %s",
	          pb_limit_format(PB_LIMIT_MEMORY, sb->limit[PB_LIMIT_MEMORY], buf[0], sizeof(buf[0])),
	          pb_limit_format(PB_LIMIT_ADDRESS_SPACE, sb->limit[PB_LIMIT_ADDRESS_SPACE], buf[6], sizeof(buf[6])),
	          pb_limit_format(PB_LIMIT_CPU, sb->limit[PB_LIMIT_CPU], buf[1], sizeof(buf[1])),
	          pb_limit_format(PB_LIMIT_FILES, sb->limit[PB_LIMIT_FILES], buf[2], sizeof(buf[2])),
	          pb_limit_format(PB_LIMIT_PROCESSES, sb->limit[PB_LIMIT_PROCESSES], buf[3], sizeof(buf[3])),
	          pb_limit_format(PB_LIMIT_FILE_SIZE, sb->limit[PB_LIMIT_FILE_SIZE], buf[4], sizeof(buf[4])),
	          pb_limit_format(PB_LIMIT_CORE, sb->limit[PB_LIMIT_CORE], buf[5], sizeof(buf[5])));
	add_layer(j, "cgroup: not used; the rlimits above apply (plugbox does not move workers into cgroups)");
	add_layer(j, "terminal: none (own session, stdin /dev/null)");
	return 0;
}

int pb_jail_prepare(struct pb_jail *j, const struct pb_sandbox *sb, bool use_namespaces,
                    const char *name, const char *plugin_dir, const char *view_dir,
                    const char *worker_path, const char *cache, uid_t uid, gid_t gid,
                    char *why, size_t why_len)
{
	return prepare(j, sb, use_namespaces, name, plugin_dir, NULL, view_dir, worker_path, cache, uid, gid,
	               why, why_len);
}

int pb_jail_prepare_install(struct pb_jail *j, const struct pb_sandbox *sb, bool use_namespaces,
                            const struct pb_jail_install *in, const char *view_dir,
                            const char *worker_path, uid_t uid, gid_t gid, char *why, size_t why_len)
{
	return prepare(j, sb, use_namespaces, "install", NULL, in, view_dir, worker_path, NULL, uid, gid,
	               why, why_len);
}

/* ---- in the supervisor, for the child ---------------------------------------- */

int pb_jail_set_limit(const struct pb_jail *j, pid_t pid, int index)
{
	if (index < 0 || index >= PB_JAIL_RLIMITS)
		return -EINVAL;
	if (prlimit(pid, j->rlimit_resource[index], &j->rlimits[index], NULL) < 0)
		return -errno;
	return 0;
}
