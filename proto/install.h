/* install.h - what `plugbox install` (supervisor/plugbox_install.c,
 * install_run.c, install_tree.c) and the install worker (worker/install.c,
 * worker/install.py) agree on: the limits an unpacked plugin must stay
 * within, and the result the worker writes.
 *
 * The limits are the supervisor's: it passes them on the worker's command
 * line, and checks the tree the worker left against them again, because
 * the worker is the side that handles the untrusted bytes.
 *
 * The result is text on the worker's fd 4, at most PB_INSTALL_RESULT_MAX
 * bytes, lines of tab-separated fields, the last line deciding:
 *   probe TAB SPEC TAB OUTCOME      (tests only, see PB_INSTALL_PROBE_ENV)
 *   ok TAB NAME TAB VERSION TAB IGNORED   unpacked; IGNORED files of
 *                                   *.data/{scripts,headers,data} skipped
 *   version TAB VERSION             (mode "version": an installed plugin's)
 *   refused TAB MESSAGE             the input is bad: exit 2
 *   failed TAB MESSAGE              the unpacker could not do its job: exit 4
 * No field holds a tab, a newline or another control character.
 */
#ifndef PLUGBOX_INSTALL_H
#define PLUGBOX_INSTALL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define PB_INSTALL_MAX_BYTES (256ull << 20) /* everything written, RECORD included */
#define PB_INSTALL_MAX_FILES 20000u         /* archive members; files; directories */
#define PB_INSTALL_MAX_RATIO 200u           /* uncompressed / compressed, per member ... */
#define PB_INSTALL_RATIO_FLOOR (1u << 20)   /* ... of at least this many bytes */
#define PB_INSTALL_MAX_DEPTH 32u            /* path components below the plugin directory */
#define PB_INSTALL_RESULT_MAX 4096u

/* As root the install worker runs as this uid and gid, below the plugins'
 * range (PB_PLUGIN_UID_BASE): it owns only its staging directory, and only
 * while it unpacks; afterwards the tree belongs to PLUGINS' owner. */
#define PB_INSTALL_UID 1899999999u

/* Tests only: the operator's environment, which no wheel reaches.
 * PLUGBOX_INSTALL_TEST_PROBES="w:PATH r:PATH ..." makes the worker try to
 * write or read PATH from inside its sandbox (@staging/ stands for its
 * staging directory) and report each outcome; PLUGBOX_INSTALL_TEST_PAUSE=
 * POINT stops `plugbox install` at POINT (unpacked, exchanged, retired) so
 * that a test can kill it there. */
#define PB_INSTALL_PROBE_ENV "PLUGBOX_INSTALL_TEST_PROBES"
#define PB_INSTALL_PAUSE_ENV "PLUGBOX_INSTALL_TEST_PAUSE"
#define PB_INSTALL_MAX_PROBES 8

/* install_run.c: run one install worker under `policy` and read its result. */
struct pb_policy;
enum pb_install_status {
	PB_INSTALL_OK,      /* the worker unpacked; fields below are set */
	PB_INSTALL_REFUSED, /* bad input (exit 2); message says why */
	PB_INSTALL_KILLED,  /* the sandbox killed it (exit 3) */
	PB_INSTALL_FAILED,  /* it died, timed out, failed or lied (exit 4) */
};
struct pb_install_result {
	enum pb_install_status status;
	char message[1024];    /* printable, one line */
	char name[129];        /* ok: the plugin name it derived ([A-Za-z0-9_-]) */
	char version[65];      /* ok, version: printable, no spaces */
	unsigned long ignored; /* ok: files of *.data/{scripts,headers,data} skipped */
};
struct pb_install_job {
	const char *worker_path;
	const struct pb_policy *policy;
	const char *mode;                   /* "wheel", "dir", "version" */
	int input_fd;                       /* wheel, or -1 */
	const char *staging, *source, *old; /* host paths or NULL */
	const char *name;                   /* the plugin's name when known, or NULL */
	uid_t uid;
	gid_t gid;
	/* dir: DEV:INO of the directory `plugbox install` opened; the worker
	 * copies nothing unless the tree it was given is that one. */
	const char *source_id;
};
void pb_install_run(const struct pb_install_job *job, struct pb_install_result *res);

/* install_tree.c: the trees on disk, never following a symlink. */
struct pb_tree_stats {
	uint64_t bytes, files, dirs;
};
/* Check the tree a worker left in dirfd: directories and regular files
 * only, single links, within the limits above; make directories 0755 and
 * files 0644, owned by uid/gid when chown is set. 0, or -1 with why. */
int pb_tree_check(int dirfd, bool chown_tree, uid_t uid, gid_t gid, struct pb_tree_stats *stats,
                  char *why, size_t why_len);
/* Delete parent/name and everything below it. 0 or a negative errno. */
int pb_tree_remove(int parent, const char *name);
/* PREFIX.XXXXXX (random) in dirfd: made with mkdirat, mode 0700, when
 * mkdir_it, else only named. 0, or -1 with errno. */
int pb_unique_name(int dirfd, const char *prefix, bool mkdir_it, char *out, size_t len);

#endif
