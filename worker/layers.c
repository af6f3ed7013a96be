/* layers.c - the walls the worker raises around itself after exec, before
 * its interpreter starts: Landlock, and a check that every capability set
 * is empty, from the kernel's own report. (Namespaces, the mount tree,
 * identity and limits were put in place before exec by supervisor/jail.c;
 * seccomp comes last, in sandbox.c.) It also keeps the list of active layers for Hello.
 *
 * Landlock is applied from the paths the supervisor passed (--read,
 * --write): reads of exactly those trees (and, with --list-root, listing
 * the mount tree's directories), writes only to the scratch directory and
 * /dev/null, no TCP unless the policy grants the network,
 * and (ABI 6) no signals or abstract unix sockets beyond this worker.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "worker.h"

/* Newer than Debian 12's kernel headers (6.1): defined as the kernel has them. */
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13) /* ABI 2 */
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14) /* ABI 3 */
#endif
#define PB_LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15) /* ABI 5 */
#define PB_LANDLOCK_ACCESS_NET_BIND_TCP (1ULL << 0)  /* ABI 4 */
#define PB_LANDLOCK_ACCESS_NET_CONNECT_TCP (1ULL << 1)
#define PB_LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0) /* ABI 6 */
#define PB_LANDLOCK_SCOPE_SIGNAL (1ULL << 1)

/* struct landlock_ruleset_attr as of ABI 6; older kernels take a prefix. */
struct ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};

#define FS_READ (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define FS_FILE_RIGHTS (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | \
	                LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE | \
	                PB_LANDLOCK_ACCESS_FS_IOCTL_DEV)

#define MAX_LAYERS 16
static char *layers[MAX_LAYERS];
static size_t nlayers;

void pb_layers_add(const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (nlayers == MAX_LAYERS)
		return;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) >= 0)
		layers[nlayers++] = s;
	va_end(ap);
}

void pb_layers_set_start(const char *text)
{
	for (size_t i = 0; i < nlayers; i++) {
		char *s = strncmp(layers[i], "start: ", 7) ? NULL : strdup(text);
		if (s) {
			free(layers[i]);
			layers[i] = s;
		}
	}
}

char **pb_layers_list(size_t *n)
{
	*n = nlayers;
	return layers;
}

static uint64_t fs_rights(int abi)
{
	uint64_t r = (1ULL << 13) - 1; /* ABI 1: EXECUTE .. MAKE_SYM */
	if (abi >= 2)
		r |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		r |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		r |= PB_LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return r;
}

static int allow_path(int ruleset, const char *path, uint64_t access, uint64_t handled,
                      char *why, size_t why_len)
{
	struct landlock_path_beneath_attr rule = { 0 };
	struct stat st;
	int fd = open(path, O_PATH | O_CLOEXEC);

	if (fd < 0) {
		if (errno == ENOENT)
			return 0; /* nothing there to allow */
		snprintf(why, why_len, "landlock: cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
		access &= FS_FILE_RIGHTS;
	rule.allowed_access = access & handled;
	rule.parent_fd = fd;
	if (syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) < 0) {
		snprintf(why, why_len, "landlock: cannot allow %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int pb_landlock_request_add(struct pb_landlock_request *req, bool write, const char *path)
{
	size_t *n = write ? &req->nwrite : &req->nread;

	if (*n == PB_LANDLOCK_MAX_PATHS)
		return -1;
	(write ? req->write : req->read)[(*n)++] = path;
	return 0;
}

int pb_layers_landlock(const struct pb_landlock_request *req, char *why, size_t why_len)
{
	struct ruleset_attr attr = { 0 };
	size_t attr_size;
	int abi, ruleset;

	if (req->mode == PB_LANDLOCK_OFF) {
		pb_layers_add("landlock: off in the policy");
		return 0;
	}
	abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (abi < 1) {
		int e = errno;
		if (req->mode == PB_LANDLOCK_REQUIRED) {
			snprintf(why, why_len, "landlock: the policy requires it, but this kernel does not offer it "
			                       "(landlock_create_ruleset: %s)",
			         strerror(e));
			return -1;
		}
		pb_layers_add("landlock: unavailable here (%s); the mount tree is the file-system wall",
		              strerror(e));
		return 0;
	}
	attr.handled_access_fs = fs_rights(abi);
	attr_size = sizeof(attr.handled_access_fs);
	if (abi >= 4) {
		attr_size = offsetof(struct ruleset_attr, scoped);
		if (!req->network)
			attr.handled_access_net = PB_LANDLOCK_ACCESS_NET_BIND_TCP | PB_LANDLOCK_ACCESS_NET_CONNECT_TCP;
	}
	if (abi >= 6) {
		attr_size = sizeof(attr);
		attr.scoped = PB_LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | PB_LANDLOCK_SCOPE_SIGNAL;
	}
	ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0);
	if (ruleset < 0) {
		snprintf(why, why_len, "landlock: cannot create a ruleset: %s", strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < req->nread; i++)
		if (allow_path(ruleset, req->read[i], FS_READ, attr.handled_access_fs, why, why_len) < 0)
			goto fail;
	for (size_t i = 0; i < req->nwrite; i++)
		if (allow_path(ruleset, req->write[i], attr.handled_access_fs, attr.handled_access_fs,
		               why, why_len) < 0)
			goto fail;
	/* Listing the directories of the mount tree (os.listdir("/")): they hold
	 * only what the worker was given, so this shows nothing new. Reading a
	 * file still needs a --read tree. The supervisor asks for it only with a
	 * mount tree: without one, "/" is the host's. */
	if (req->list_root &&
	    allow_path(ruleset, "/", LANDLOCK_ACCESS_FS_READ_DIR, attr.handled_access_fs, why, why_len) < 0)
		goto fail;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    syscall(SYS_landlock_restrict_self, ruleset, 0) < 0) {
		snprintf(why, why_len, "landlock: cannot restrict the worker: %s", strerror(errno));
		goto fail;
	}
	close(ruleset);
	pb_layers_add("landlock: ABI %d: read %zu trees, write %zu%s%s", abi, req->nread, req->nwrite,
	              abi >= 4 ? (req->network ? ", TCP allowed (@network host)" : ", no TCP bind or connect")
	                       : ", no network rules (ABI < 4)",
	              abi >= 6 ? ", signals and abstract sockets scoped to the worker" : "");
	return 0;
fail:
	close(ruleset);
	return -1;
}

/* Capabilities as the kernel reports them in /proc/self/status: the
 * ambient and bounding sets in one read, where a procfs is mounted (the
 * worker's own /proc, or the host's without namespaces). 0 with *amb and
 * *bnd set; -1 where there is none, and the caller asks capability by
 * capability. */
static int status_caps(uint64_t *amb, uint64_t *bnd)
{
	char buf[4096];
	struct statfs fs;
	ssize_t n;
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC), seen = 0;

	*amb = *bnd = UINT64_MAX; /* until the kernel says otherwise */
	if (fd < 0)
		return -1;
	/* Only the kernel's own report counts. */
	if (fstatfs(fd, &fs) < 0 || fs.f_type != PROC_SUPER_MAGIC ||
	    (n = read(fd, buf, sizeof(buf) - 1)) <= 0) {
		close(fd);
		return -1;
	}
	close(fd);
	buf[n] = '\0';
	for (char *line = buf, *next; line && *line; line = next) {
		uint64_t *to = NULL;
		char *end;
		next = strchr(line, '\n');
		if (next)
			next++;
		int bit = 0;
		if (!strncmp(line, "CapAmb:\t", 8)) {
			to = amb;
			bit = 1;
		} else if (!strncmp(line, "CapBnd:\t", 8)) {
			to = bnd;
			bit = 2;
		}
		if (!to)
			continue;
		errno = 0;
		*to = strtoull(line + 8, &end, 16);
		if (errno || end == line + 8 || (*end != '\n' && *end != '\0'))
			return -1;
		seen |= bit;
	}
	return seen == 3 ? 0 : -1;
}

/* Without a procfs: one prctl per capability the kernel knows (it answers
 * EINVAL past the last one). */
static void prctl_caps(uint64_t *amb, uint64_t *bnd)
{
	*amb = *bnd = 0;
	for (int c = 0; c < 64; c++) {
		int b = prctl(PR_CAPBSET_READ, c, 0, 0, 0);
		if (b < 0)
			break;
		if (b > 0)
			*bnd |= 1ULL << c;
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c, 0, 0) > 0)
			*amb |= 1ULL << c;
	}
}

/* The jail emptied every set before exec (or, in a fork-server's child,
 * before this); make sure, and fail closed. capget/capset and one
 * PR_CAP_AMBIENT_CLEAR_ALL, then one read of /proc/self/status: a handful
 * of system calls where libcap's per-capability loops made ~130. */
int pb_layers_capabilities(char *why, size_t why_len)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct now[2], none[2];
	uint64_t amb, bnd;

	memset(none, 0, sizeof(none));
	if (syscall(SYS_capget, &hdr, now) < 0) {
		snprintf(why, why_len, "capabilities: capget: %s", strerror(errno));
		return -1;
	}
	errno = 0;
	if (memcmp(now, none, sizeof(now)) != 0 &&
	    (syscall(SYS_capset, &hdr, none) < 0 || syscall(SYS_capget, &hdr, now) < 0 ||
	     memcmp(now, none, sizeof(now)) != 0)) {
		snprintf(why, why_len, "capabilities: cannot empty the process's sets: %s",
		         errno ? strerror(errno) : "the process still holds some");
		return -1;
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) {
		snprintf(why, why_len, "capabilities: cannot clear the ambient set: %s", strerror(errno));
		return -1;
	}
	if (status_caps(&amb, &bnd) < 0)
		prctl_caps(&amb, &bnd);
	if (amb) {
		snprintf(why, why_len, "capabilities: ambient capabilities 0x%llx survived", (unsigned long long)amb);
		return -1;
	}
	pb_layers_add(!bnd ? "capabilities: none (effective, permitted, inheritable, ambient, bounding)"
	                   : "capabilities: none held; the bounding set could not be emptied "
	                     "(needs root or a user namespace), no_new_privs keeps it unusable");
	return 0;
}
