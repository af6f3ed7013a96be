/* policy.h - syscall policies: the operator's policy files, parsed into
 * rules, compiled to seccomp BPF, and matched back to the rule that decided
 * a trapped or logged syscall.
 *
 *   policy_parse.c    the language (minijail's syscall lines, plus @include,
 *                     @default, @after-start and @groups), errors as
 *                     FILE:LINE:COL, load-time lint
 *   policy_load.c     a policy by name or path, checked as a whole, shared
 *                     by reference and freed; places and verdicts named
 *   policy_cache.c    a supervisor's parsed policies, kept while their
 *                     files hold the same bytes
 *   policy_sandbox.c  the lines for everything beside seccomp: @limit,
 *                     @layer, @network, @scratch, and @host-call grants
 *   policy_syntax.c   the pieces of one line: actions, conditions, values
 *   policy_tables.c   what the language knows: groups, named constants,
 *                     which arguments the kernel reads as 32-bit, what is
 *                     dangerous to allow
 *   policy_compile.c  rules -> BPF programs
 *   policy_rules.c    the rules plugbox puts around a policy's own: learn
 *                     mode, @network connect, zygotes, after-start
 *   policy_match.c    the same decisions made in C, for reports
 *   policy_memo.c     a loaded policy's last compile, kept
 *
 * A policy is an ordered list of entries. The entries for one syscall form a
 * chain, tried first to last; the first whose condition holds decides. A
 * chain that ends without deciding falls to the policy's @default. The
 * including file's entries come before those of the files it includes, so a
 * policy refines what it includes by putting its own rules in front.
 */
#ifndef PLUGBOX_POLICY_H
#define PLUGBOX_POLICY_H

#include "proto/protocol.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum pb_action_kind {
	PB_ACT_ALLOW,
	PB_ACT_ERRNO, /* the kernel fails the call with err; nothing is reported */
	PB_ACT_LOG,   /* allowed; the supervisor is told by the kernel (user notification) */
	PB_ACT_TRAP,  /* the worker reports the call, which then fails with err */
	PB_ACT_KILL,  /* the worker reports the call and dies */
};

struct pb_action {
	enum pb_action_kind kind;
	int err; /* PB_ACT_ERRNO, PB_ACT_TRAP */
};

enum pb_cmp_op { PB_OP_EQ,
	         PB_OP_NE,
	         PB_OP_LT,
	         PB_OP_LE,
	         PB_OP_GT,
	         PB_OP_GE,
	         PB_OP_ANY_BITS /* arg & V */,
	         PB_OP_ONLY_BITS /* arg in V */ };

/* One comparison. A 32-bit argument (wide == false) is compared on its low
 * 32 bits only, as the kernel reads it; value then holds those 32 bits. */
struct pb_atom {
	uint8_t arg;
	uint8_t op; /* enum pb_cmp_op */
	bool wide;
	bool self_pid; /* value is the worker's own pid */
	uint64_t value;
};

/* A condition in disjunctive normal form: clauses OR-ed, atoms in a clause
 * AND-ed. clause_end[i] is one past the last atom of clause i. */
struct pb_cond {
	struct pb_atom *atoms;
	size_t natoms;
	size_t *clause_end;
	size_t nclauses;
};

struct pb_where {
	const char *file; /* owned by the policy */
	unsigned line, col;
};

struct pb_entry {
	int nr;               /* native syscall number */
	struct pb_cond *cond; /* NULL: always */
	struct pb_action action;
	struct pb_where where;
	char *text; /* the line as written, comment removed */
};

struct pb_entry_list {
	struct pb_entry *v;
	size_t n, cap;
};

/* ---- the layers beside seccomp (policy_sandbox.c) ------------------------ */

enum pb_limit {
	PB_LIMIT_MEMORY,        /* bytes of private writable memory (RLIMIT_DATA) */
	PB_LIMIT_ADDRESS_SPACE, /* bytes of every mapping, reserved or used (RLIMIT_AS) */
	PB_LIMIT_CPU,           /* seconds of CPU time (RLIMIT_CPU) */
	PB_LIMIT_FILES,         /* open descriptors (RLIMIT_NOFILE) */
	PB_LIMIT_PROCESSES,     /* threads and processes (RLIMIT_NPROC) */
	PB_LIMIT_FILE_SIZE,     /* bytes one file may grow to (RLIMIT_FSIZE) */
	PB_LIMIT_CORE,          /* bytes of core dump (RLIMIT_CORE) */
	PB_LIMIT_CALL_TIME,     /* milliseconds of wall clock per call */
	PB_LIMIT_COUNT,
};
#define PB_LIMIT_UNLIMITED UINT64_MAX

enum pb_layer {
	PB_LAYER_NAMESPACES, /* pid net ipc uts mount cgroup (+ user unprivileged), and the mount tree */
	PB_LAYER_LANDLOCK,
	PB_LAYER_COUNT,
};
enum pb_layer_mode { PB_LAYER_REQUIRED,
	             PB_LAYER_OPTIONAL,
	             PB_LAYER_OFF };
enum pb_network { PB_NETWORK_NONE,
	          PB_NETWORK_HOST,
	          PB_NETWORK_CONNECT /* none, but for the destinations the supervisor connects (policy_net.c) */ };

/* An address as connect(2) names it, as the list compares it: an
 * IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 address it maps. */
struct pb_net_addr {
	int family;       /* AF_INET or AF_INET6 */
	uint8_t addr[16]; /* the first 4 bytes for AF_INET */
	uint16_t port;    /* host order */
};
#define PB_NET_HOST_MAX 253  /* a DNS name's longest text */
#define PB_NET_ADDRS_MAX 16  /* addresses kept per destination name */
#define PB_NET_DESTS_MAX 256 /* @network connect lines in one policy */
/* How often a worker's destination names are resolved again (seconds),
 * unless `@network refresh` says; its bounds. */
#define PB_NET_REFRESH_DEFAULT 300
#define PB_NET_REFRESH_MIN 1
#define PB_NET_REFRESH_MAX 86400
/* "1.2.3.4:80" or "[::1]:80" (at least PB_NET_ADDR_TEXT bytes) */
#define PB_NET_ADDR_TEXT 64

/* One `@network connect HOST:PORT`: the host as written (a name, or an
 * address without its brackets) and, once pb_policy_resolve ran, the
 * addresses it stands for. */
struct pb_dest {
	char *host;
	uint16_t port;
	struct pb_where where;
	struct pb_net_addr *addrs;
	size_t naddrs;
	const char *resolve_error; /* static text: why a name gave no address */
};
/* @proc: the worker's own /proc, whenever it has its own pid namespace. */
enum pb_proc { PB_PROC_ON,
	       PB_PROC_OFF };

/* A host function the plugin may call as plugbox.host.NAME(...) (issue 5):
 * `@host-call NAME...` in the operator's policy. */
#define PB_HOST_NAME_MAX 64
struct pb_grant {
	char *name;            /* [A-Za-z_][A-Za-z0-9_]*, at most PB_HOST_NAME_MAX bytes */
	struct pb_where where; /* where the name is written */
};

/* Every setting has the place it was set (file NULL: plugbox's built-in
 * default). The including file's settings win over the included ones'.
 * Grants are the exception: they add up, the including file's first (a
 * name granted by both keeps the including file's place). */
struct pb_sandbox {
	uint64_t limit[PB_LIMIT_COUNT];
	struct pb_where limit_where[PB_LIMIT_COUNT];
	enum pb_layer_mode layer[PB_LAYER_COUNT];
	struct pb_where layer_where[PB_LAYER_COUNT];
	enum pb_network network;
	struct pb_where network_where;
	struct pb_dest *dests; /* PB_NETWORK_CONNECT: owned by the policy, the including file's first */
	size_t ndests;
	unsigned net_refresh; /* seconds between resolutions of the names (@network refresh) */
	struct pb_where net_refresh_where;
	uint64_t scratch;        /* bytes of private /tmp; 0: none */
	uint64_t scratch_inodes; /* files and directories it may hold (set with scratch) */
	struct pb_where scratch_where;
	enum pb_proc proc;
	struct pb_where proc_where;
	bool scratch_exec; /* scratch mounted without noexec (@scratch-exec on) */
	struct pb_where scratch_exec_where;
	bool fresh_per_call; /* @fresh-per-call: a new worker for every call */
	struct pb_where fresh_where;
	unsigned replicas; /* @replicas N: workers that may answer its calls at once (default 1) */
	struct pb_where replicas_where;
	struct pb_grant *grants; /* owned by the policy; no wildcard, no repeats */
	size_t ngrants;
};

/* Names as the language spells them ("memory", "namespaces"). */
extern const char *const pb_limit_names[PB_LIMIT_COUNT];
extern const char *const pb_layer_names[PB_LAYER_COUNT];
extern const char *const pb_layer_mode_names[3];
extern const char *const pb_proc_names[2];
/* The inodes of a scratch directory of `bytes` when the policy does not
 * say: one per 16K, at least PB_SCRATCH_INODES_MIN. Every tmpfs the jail
 * makes has an inode bound: the kernel memory an inode pins is counted by
 * no other limit. */
#define PB_SCRATCH_INODES_MIN 1024u
#define PB_SCRATCH_BYTES_PER_INODE 16384u
uint64_t pb_scratch_default_inodes(uint64_t bytes);
/* The most @replicas a policy may ask for. A supervisor caps it further
 * (pb_supervisor_set_max_replicas, `--max-replicas`; PB_REPLICAS_DEFAULT_CAP
 * unless told): the operator who writes the policy and the one who runs the
 * supervisor may be different people, and replicas cost memory and CPUs. */
#define PB_REPLICAS_MAX 64u
/* A limit's value as the language writes it ("1G", "60s", "unlimited"). */
const char *pb_limit_format(enum pb_limit l, uint64_t v, char *buf, size_t len);

struct pb_policy {
	char *name; /* NAME of NAME.policy */
	char *path;
	struct pb_action dflt;
	struct pb_where dflt_where;   /* file NULL: no @default anywhere (kill) */
	struct pb_entry_list start;   /* loaded before any plugin code */
	struct pb_entry_list after;   /* added once the plugin is imported */
	char **files;                 /* every file read, for where-strings */
	struct pb_where *included_at; /* per file: the @include line that read it (file NULL: the policy itself) */
	size_t nfiles;
	char **includes; /* names of included policies, in order */
	size_t nincludes;
	struct pb_sandbox sandbox;
	/* The last program pb_policy_compile made of it (policy_memo.c):
	 * a worker's is compiled when it starts and again when its Hello is
	 * checked. Allocated by the loader; NULL: nothing kept. */
	struct pb_compiled_memo *compiled;
	/* The bytes of every file read, as they were parsed (texts[i] is
	 * files[i]): kept only for the policy cache (policy_cache.c), which
	 * compares them with the files at every start. NULL otherwise. */
	char **texts;
	size_t *text_lens;
	size_t nkept;
	/* Holders: 1 from the loader, one more per pb_policy_ref. pb_policy_free
	 * drops one and frees the policy with the last. */
	unsigned refs;
};

/* Diagnostics go to a caller's sink, one line each, already formatted as
 * "FILE:LINE:COL: message" or "FILE:LINE:COL: warning: message". */
typedef void (*pb_policy_diag_fn)(void *data, bool is_error, const char *line);

/* Load DIR/NAME.policy with its includes. NAME must match [A-Za-z0-9_-]+.
 * Returns 0, or a negative errno after reporting every error found
 * (parsing goes on after an error, to report the rest). */
int pb_policy_load(const char *dir, const char *name, pb_policy_diag_fn diag, void *data,
                   struct pb_policy **out);
/* Load a policy file by path (for `plugbox policy check FILE`): includes
 * resolve in the file's own directory. */
int pb_policy_load_file(const char *path, pb_policy_diag_fn diag, void *data,
                        struct pb_policy **out);
void pb_policy_free(struct pb_policy *p);
/* One more holder of P (one thread: the supervisor's); returns P. */
struct pb_policy *pb_policy_ref(struct pb_policy *p);

/* The grant for host function NAME, or NULL when the policy grants no such
 * thing (the supervisor then answers the plugin's call with PermissionError). */
/* Is NAME a host function name: [A-Za-z_][A-Za-z0-9_]*, 1 to PB_HOST_NAME_MAX
 * bytes? The one rule the policy, the registry and the channel share. */
bool pb_host_name_valid(const char *name);
const struct pb_grant *pb_policy_host_grant(const struct pb_policy *p, const char *name);

/* ---- @network connect (policy_net.c) -------------------------------------- */

/* Resolve every destination's name (getaddrinfo, the supervisor's own
 * resolver) into its addresses; literals stand for themselves. A name that
 * does not resolve keeps no address and says why in resolve_error. Called
 * when a worker starts, and again every pb_net_refresh_seconds on copies
 * of the destinations, in a thread of runtime/netresolve.c (getaddrinfo
 * blocks); pb_net_resolve_dests touches nothing but the array it gets. */
int pb_policy_resolve(struct pb_policy *p);
int pb_net_resolve_dests(struct pb_dest *dests, size_t n);
/* `@network refresh`, or PB_NET_REFRESH_DEFAULT. */
unsigned pb_net_refresh_seconds(const struct pb_sandbox *sb);
/* The worker's address as it wrote it in memory (len bytes, hostile):
 * 0, -EAFNOSUPPORT for a family other than AF_INET/AF_INET6, -EINVAL when
 * too short for its family. An IPv4-mapped IPv6 address comes out as IPv4. */
int pb_net_addr_parse(const void *sa, size_t len, struct pb_net_addr *out);
/* The destination that allows a, or NULL. */
const struct pb_dest *pb_net_allowed(const struct pb_sandbox *sb, const struct pb_net_addr *a);
const char *pb_net_addr_format(const struct pb_net_addr *a, char *buf, size_t len);
/* An IPv4 or IPv6 address as written (no resolving needed). */
bool pb_net_host_is_literal(const char *host);
/* The worker's /etc/hosts: localhost, its own name, and every destination
 * name with its resolved addresses. Malloc'd; NULL when memory runs out. */
char *pb_net_hosts_text(const struct pb_sandbox *sb);

/* The @include line that read the file of w, or NULL for the policy's own
 * file (follow it again for the includes above: policy explain). */
const struct pb_where *pb_policy_included_at(const struct pb_policy *p, const struct pb_where *w);
/* "python.policy:12" for a rule's origin (no directory). */
void pb_where_format(const struct pb_where *w, char *buf, size_t len);
const char *pb_action_name(const struct pb_action *a, char *buf, size_t len);

/* ---- compiling ------------------------------------------------------------ */

/* A compiled policy: the programs in the format the worker reads on its
 * policy descriptor. For each program, a little-endian u32 header (low 16
 * bits: instruction count; PB_PROG_AFTER_START: load once the plugin is
 * imported; PB_PROG_LISTENER: load with a user-notification listener and
 * pass it to the supervisor), then that many struct sock_filter. */

struct pb_bpf_blob {
	uint8_t *data;
	size_t len;
	unsigned nprograms;
	unsigned ninsns[3]; /* per program, for `policy show` */
	bool listener;      /* a program has log verdicts */
};

enum pb_compile_mode {
	PB_COMPILE_ENFORCE,
	PB_COMPILE_LEARN, /* every verdict other than allow becomes log */
	/* A plugin's zygote (--spawn zygote): the start-up rules with fork
	 * (clone without CLONE_THREAD or a namespace flag), seccomp(SET_MODE_
	 * FILTER) and its control path allowed, SELF_PID matching any pid (its
	 * pid namespace holds only it and its children), no after-start
	 * program. Never without a pid namespace of its own. */
	PB_COMPILE_ZYGOTE,
	/* A child of a zygote: ENFORCE, with fork failing EPERM before any
	 * rule of the policy decides; stacked on the zygote's programs. */
	PB_COMPILE_ZYGOTE_CHILD,
};

/* self_pid for PB_COMPILE_ZYGOTE: SELF_PID holds for any pid. */
#define PB_SELF_PID_ANY (-1)

/* Compile for a worker whose pid (as it sees itself) is self_pid. Returns 0
 * or a negative errno with *why saying what failed. */
int pb_policy_compile(const struct pb_policy *p, int32_t self_pid, enum pb_compile_mode mode,
                      struct pb_bpf_blob *out, char *why, size_t why_len);
void pb_bpf_blob_free(struct pb_bpf_blob *b);
/* What struct pb_policy keeps of its last compile (the loader makes it). */
struct pb_compiled_memo *pb_compiled_memo_new(void);
void pb_compiled_memo_free(struct pb_compiled_memo *m);

/* The entry that decides syscall nr with these arguments, given whether the
 * after-start rules are loaded; NULL when the @default decides. The action
 * is written to *action either way. */
const struct pb_entry *pb_policy_match(const struct pb_policy *p, int nr, const uint64_t args[6],
                                       int32_t self_pid, bool after_start,
                                       struct pb_action *action);

/* ---- what the language knows (policy_tables.c) --------------------------- */

struct pb_syscall_group {
	const char *name; /* without the '@' */
	const char *description;
	const char *const *members; /* NULL-terminated */
};
extern const struct pb_syscall_group pb_syscall_groups[];
const struct pb_syscall_group *pb_syscall_group_find(const char *name);

/* A named constant from the kernel headers (O_RDONLY, AF_INET, TCGETS...). */
bool pb_constant_lookup(const char *name, uint64_t *value);
/* A constant's name for value, among names with one of the prefixes. */
const char *pb_constant_name(uint64_t value, const char *const *prefixes);
/* Does the kernel read argument `arg` of syscall `name` as 32 bits? -1 when
 * plugbox does not know the syscall's signature. */
int pb_syscall_arg_is_32bit(const char *name, unsigned arg);
/* Why allowing this syscall without conditions is dangerous, or NULL. */
const char *pb_syscall_danger(const char *name);
/* The native numbers of group NAME's members, nested groups expanded (at
 * most max; members this architecture lacks are left out): how many. */
size_t pb_syscall_group_numbers(const char *name, int *nrs, size_t max);
/* Syscalls the worker itself makes after the filter is loaded. */
extern const char *const pb_worker_floor[];
/* errno by name ("EACCES") or NULL. */
int pb_errno_lookup(const char *name);

/* ---- a syscall as a user reads it (policy_names.c) ---------------------- */

/* Did nr come through the native entry point (not x32, not i386)? */
bool pb_native_arch(uint32_t arch, int nr);
/* The syscall's name in its ABI, or "syscall NR" when libseccomp has none. */
void pb_syscall_name(int nr, uint32_t arch, char *buf, size_t len);
/* "x86_64", "x32", "i386", ...: the ABI of arch (nr tells x32 apart). */
const char *pb_arch_name(uint32_t arch, int nr);
/* "name(0x.., ...)" and " via the ... ABI" when not native. */
void pb_format_syscall(int nr, uint32_t arch, const uint64_t args[6], char *buf, size_t len);
/* The rule learn mode puts before every policy that decides this call (no
 * namespace is ever made while learning), or NULL. (policy_rules.c) */
const struct pb_entry *pb_policy_learn_guard(int nr, const uint64_t args[6]);
/* The rule @network connect puts before every policy that decides this
 * call, or NULL. (policy_rules.c) */
const struct pb_entry *pb_policy_net_entry(const struct pb_policy *p, int nr, const uint64_t args[6]);
/* Does the policy log anywhere (a helper has nobody to answer the
 * notifications)? (policy_match.c) */
bool pb_policy_has_log(const struct pb_policy *pol);

#endif
