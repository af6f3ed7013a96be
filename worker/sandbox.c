/* sandbox.c - the layers the worker puts in place before any plugin code.
 *
 * The supervisor compiles the operator's policy to seccomp programs
 * (supervisor/policy_compile.c) and hands them over on PB_FD_POLICY; this
 * file only loads them, after setting no_new_privs and installing the
 * SIGSYS reporter. Programs marked PB_PROG_AFTER_START are kept back and
 * loaded just before Hello; a program marked PB_PROG_LISTENER hands its
 * user-notification fd to the supervisor. Everything is fail-closed: any
 * error here ends the worker before it says Hello.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <ucontext.h>

#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1 /* si_code of a seccomp trap (asm-generic/siginfo.h) */
#endif
#ifndef SECCOMP_FILTER_FLAG_NEW_LISTENER
#define SECCOMP_FILTER_FLAG_NEW_LISTENER (1UL << 3) /* Linux 5.0 */
#endif
#ifndef SECCOMP_FILTER_FLAG_TSYNC_ESRCH
#define SECCOMP_FILTER_FLAG_TSYNC_ESRCH (1UL << 4) /* Linux 5.7 */
#endif
#include <unistd.h>

#include "worker.h"

/* Exported by libpython3.11 for faulthandler, declared only in the internal
 * pycore_traceback.h. Async-signal-safe: it walks the thread's frames
 * without the GIL and write()s ASCII lines, most recent call first. */
PyAPI_FUNC(void) _Py_DumpTraceback(int fd, PyThreadState *tstate);

struct seccomp_program {
	struct sock_filter *insns;
	uint32_t count;
	uint32_t flags; /* PB_PROG_AFTER_START, PB_PROG_LISTENER */
};

/* The after-start programs, copied out of the blob, which main() frees. */
static struct seccomp_program *after_start_programs;
static size_t after_start_count;

/* The SIGSYS reporter's state. One thread reports at a time (the lock),
 * so the pipe and the buffers can be static instead of on a stack of
 * unknown size. The pipe is made after main()'s close_range. */
static atomic_flag report_lock = ATOMIC_FLAG_INIT;
static int traceback_pipe[2] = { -1, -1 };
static char traceback_text[PB_VIOLATION_TRACEBACK_MAX + 1];
static char drain_buf[4096];
static uint8_t report_buf[PB_REPORT_MAX];

int pb_sandbox_read_policy(int fd, uint8_t **blob, size_t *len, char *why, size_t why_len)
{
	uint8_t *buf = malloc(PB_POLICY_BLOB_MAX);
	size_t got = 0;

	if (!buf) {
		snprintf(why, why_len, "seccomp: out of memory");
		return -ENOMEM;
	}
	for (;;) {
		ssize_t n = read(fd, buf + got, PB_POLICY_BLOB_MAX - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(why, why_len, "seccomp: cannot read the policy: %s", strerror(errno));
			free(buf);
			return -errno;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got == PB_POLICY_BLOB_MAX) {
			snprintf(why, why_len, "seccomp: policy larger than %u bytes", PB_POLICY_BLOB_MAX);
			free(buf);
			return -EMSGSIZE;
		}
	}
	*blob = buf;
	*len = got;
	return 0;
}

/* Empty the traceback pipe: whatever is left of the last dump, or what a
 * plugin wrote into it. Bounded, so a plugin that keeps writing cannot hold
 * a reporting thread here forever. Returns how many bytes were dropped. */
static size_t drain_traceback_pipe(void)
{
	size_t dropped = 0;

	for (int reads = 0; reads < 256; reads++) {
		ssize_t n = read(traceback_pipe[0], drain_buf, sizeof(drain_buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		dropped += (size_t)n;
	}
	return dropped;
}

/* The last whole line of text[0..len) removed: the new length. */
static size_t drop_last_line(const char *text, size_t len)
{
	if (len == 0)
		return 0;
	len--; /* the last line's own '\n', or its last byte */
	while (len > 0 && text[len - 1] != '\n')
		len--;
	return len;
}

/* The calling thread's Python stack into traceback_text, whole lines from
 * the top, at most PB_VIOLATION_TRACEBACK_MAX bytes; 0 when the thread has
 * no Python state. Called with report_lock held; read and write only.
 * PyGILState_GetThisThreadState reads thread-local storage, not the GIL,
 * which ctypes and os.* release around the very syscall that trapped. */
static size_t dump_python_stack(void)
{
	PyThreadState *tstate = PyGILState_GetThisThreadState();
	size_t len = 0;

	if (tstate == NULL || traceback_pipe[0] < 0)
		return 0;
	drain_traceback_pipe();
	/* The pipe is non-blocking: a stack deeper than the pipe holds loses
	 * its tail (EAGAIN) instead of blocking this thread on itself. */
	_Py_DumpTraceback(traceback_pipe[1], tstate);
	while (len < PB_VIOLATION_TRACEBACK_MAX) {
		ssize_t n = read(traceback_pipe[0], traceback_text + len, PB_VIOLATION_TRACEBACK_MAX - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	if (drain_traceback_pipe() > 0)
		len = drop_last_line(traceback_text, len); /* the cut one */
	/* CPython writes ASCII; anything else was planted. The supervisor
	 * refuses a report that is not UTF-8, and protobuf-c stops at a NUL. */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)traceback_text[i];
		if ((c < 0x20 && c != '\n') || c >= 0x7f)
			traceback_text[i] = '?';
	}
	traceback_text[len] = '\0';
	return len;
}

/* The SIGSYS reporter. It runs for SECCOMP_RET_TRAP verdicts, whose data
 * (si_errno) is the errno to fake, or 0 for "kill". It must stay
 * async-signal-safe and use no syscall but read and write, which every
 * policy allows: static buffers under a spin lock, one write per report,
 * no malloc, no Python API that takes the GIL. The report is a claim by
 * this process, not proof: the supervisor also checks how the worker died. */
static void on_sigsys(int sig, siginfo_t *si, void *ctx)
{
	ucontext_t *uc = ctx;
	uint64_t args[6];
	Plugbox__Violation v = PLUGBOX__VIOLATION__INIT;
	Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT;
	size_t tb_len;
	int saved_errno = errno;

	(void)sig;
	if (si->si_code != SYS_SECCOMP)
		return;
#if defined(__x86_64__)
	args[0] = (uint64_t)uc->uc_mcontext.gregs[REG_RDI];
	args[1] = (uint64_t)uc->uc_mcontext.gregs[REG_RSI];
	args[2] = (uint64_t)uc->uc_mcontext.gregs[REG_RDX];
	args[3] = (uint64_t)uc->uc_mcontext.gregs[REG_R10];
	args[4] = (uint64_t)uc->uc_mcontext.gregs[REG_R8];
	args[5] = (uint64_t)uc->uc_mcontext.gregs[REG_R9];
#elif defined(__aarch64__)
	for (int i = 0; i < 6; i++)
		args[i] = uc->uc_mcontext.regs[i];
#endif
	/* SIGSYS is blocked while this runs, so the holder is another thread,
	 * which only reads and writes before it lets go. */
	while (atomic_flag_test_and_set_explicit(&report_lock, memory_order_acquire))
		;
	tb_len = dump_python_stack();
	v.syscall_nr = si->si_syscall;
	v.arch = si->si_arch;
	v.n_args = 6;
	v.args = args;
	if (tb_len > 0)
		v.traceback = traceback_text;
	/* cppcheck-suppress unreadVariable ; read when env is packed through env.base */
	env.body_case = PLUGBOX__ENVELOPE__BODY_VIOLATION;
	env.violation = &v;
	/* Fit the supervisor's limit by losing the oldest calls (at the bottom). */
	while (protobuf_c_message_get_packed_size(&env.base) > sizeof(report_buf) && tb_len > 0) {
		tb_len = drop_last_line(traceback_text, tb_len);
		traceback_text[tb_len] = '\0';
	}
	if (protobuf_c_message_get_packed_size(&env.base) <= sizeof(report_buf)) {
		size_t n = protobuf_c_message_pack(&env.base, report_buf);
		ssize_t w = write(PB_FD_REPORT, report_buf, n);
		(void)w;
	}

	if (si->si_errno != 0) {
		atomic_flag_clear_explicit(&report_lock, memory_order_release);
		/* Denied with an errno: make the trapped call return it. */
#if defined(__x86_64__)
		uc->uc_mcontext.gregs[REG_RAX] = -(greg_t)si->si_errno;
#elif defined(__aarch64__)
		uc->uc_mcontext.regs[0] = (uint64_t) - (int64_t)si->si_errno;
#endif
		errno = saved_errno;
		return;
	}
	/* Kill: the guard program ends any process that touches the SIGSYS
	 * handler, so this dies by SIGSYS, which the supervisor checks for.
	 * The lock stays held, so no other thread's report follows this one. */
	static const struct sigaction dfl; /* any non-NULL act: the guard kills first */
	syscall(SYS_rt_sigaction, SIGSYS, &dfl, NULL, 8);
	_exit(128 + SIGSYS);
}

/* Hand the listener fd to the supervisor, which answers every notification
 * from now on, and drop this process's copy. This must be the very next
 * syscall after the load: until the supervisor holds the fd, a syscall the
 * program sends to the listener waits with nobody to answer it. */
static int hand_over_listener(int listener, const char *layer, char *why, size_t why_len)
{
	Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT;
	Plugbox__SeccompListener body = PLUGBOX__SECCOMP_LISTENER__INIT;
	uint8_t payload[16];
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct iovec iov;
	struct msghdr msg;
	struct cmsghdr *cmsg;
	ssize_t sent;
	int e;

	/* cppcheck-suppress unreadVariable ; read when env is packed through env.base */
	env.body_case = PLUGBOX__ENVELOPE__BODY_LISTENER;
	env.listener = &body;
	iov.iov_base = payload;
	iov.iov_len = protobuf_c_message_pack(&env.base, payload);
	memset(&msg, 0, sizeof(msg));
	memset(&control, 0, sizeof(control));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = control.buf;
	msg.msg_controllen = sizeof(control.buf);
	cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &listener, sizeof(int));
	do
		sent = sendmsg(PB_FD_REPORT, &msg, MSG_NOSIGNAL);
	while (sent < 0 && errno == EINTR);
	e = sent < 0 ? errno : EIO;
	close(listener);
	if (sent != (ssize_t)iov.iov_len) {
		snprintf(why, why_len, "%s: cannot hand the user-notification listener to the supervisor: %s",
		         layer, strerror(e));
		return -e;
	}
	return 0;
}

/* Load one program for every thread (TSYNC: a thread started before this
 * point would otherwise escape). index and total only name it in errors. */
static int load_program(const struct seccomp_program *p, const char *layer, size_t index,
                        size_t total, char *why, size_t why_len)
{
	struct sock_fprog prog = { .len = (unsigned short)p->count, .filter = p->insns };
	unsigned long flags = SECCOMP_FILTER_FLAG_TSYNC;
	bool listener = (p->flags & PB_PROG_LISTENER) != 0;
	long r;
	int e;

	/* With a listener the return value is the fd, so a thread that cannot
	 * be synchronised must be reported as ESRCH instead of by its tid. */
	if (listener)
		flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
	r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
	if (listener && r >= 0)
		return hand_over_listener((int)r, layer, why, why_len);
	if (r == 0)
		return 0;
	e = errno;
	if (r > 0)
		snprintf(why, why_len, "%s: cannot load program %zu of %zu: thread %ld is under another filter",
		         layer, index + 1, total, r);
	else
		snprintf(why, why_len, "%s: cannot load program %zu of %zu%s: %s", layer, index + 1, total,
		         listener ? " with a user-notification listener" : "", strerror(e));
	return r > 0 ? -EBUSY : -e;
}

static void free_programs(struct seccomp_program *programs, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(programs[i].insns);
	free(programs);
}

/* Split the blob into programs, each with its own aligned copy of the
 * instructions, refusing anything malformed before a single one is loaded. */
static int parse_policy(const uint8_t *blob, size_t len, struct seccomp_program **out, size_t *out_count,
                        char *why, size_t why_len)
{
	const size_t most = len / (4 + sizeof(struct sock_filter)) + 1;
	struct seccomp_program *programs = calloc(most, sizeof(*programs));
	size_t count = 0, off = 0, listeners = 0, before_start = 0;

	if (!programs) {
		snprintf(why, why_len, "seccomp: out of memory");
		return -ENOMEM;
	}
	while (off < len) {
		uint32_t header, insns;
		if (len - off < 4 || count == most)
			goto truncated;
		header = (uint32_t)blob[off] | (uint32_t)blob[off + 1] << 8 |
		         (uint32_t)blob[off + 2] << 16 | (uint32_t)blob[off + 3] << 24;
		off += 4;
		insns = header & PB_PROG_COUNT_MASK;
		if ((header & ~(PB_PROG_COUNT_MASK | PB_PROG_AFTER_START | PB_PROG_LISTENER)) != 0 ||
		    insns == 0 || insns > BPF_MAXINSNS) {
			snprintf(why, why_len, "seccomp: bad program header 0x%08x (program %zu): "
			                       "want 1..%u instructions and no reserved bits",
			         header, count + 1, (unsigned)BPF_MAXINSNS);
			free_programs(programs, count);
			return -EINVAL;
		}
		if ((len - off) / sizeof(struct sock_filter) < insns)
			goto truncated;
		if ((header & PB_PROG_LISTENER) && ++listeners > 1) {
			snprintf(why, why_len, "seccomp: bad program header 0x%08x (program %zu): "
			                       "a second user-notification listener",
			         header, count + 1);
			free_programs(programs, count);
			return -EINVAL;
		}
		if (!(header & PB_PROG_AFTER_START))
			before_start++;
		programs[count].insns = malloc(insns * sizeof(struct sock_filter));
		if (!programs[count].insns) {
			snprintf(why, why_len, "seccomp: out of memory");
			free_programs(programs, count);
			return -ENOMEM;
		}
		memcpy(programs[count].insns, blob + off, insns * sizeof(struct sock_filter));
		programs[count].count = insns;
		programs[count].flags = header & ~PB_PROG_COUNT_MASK;
		count++;
		off += insns * sizeof(struct sock_filter);
	}
	/* Invariant 1: the glue reads the plugin directory only under a filter. */
	if (before_start == 0) {
		snprintf(why, why_len, count == 0 ? "seccomp: the supervisor sent no filter" : "seccomp: the supervisor sent no filter to load before start-up");
		free_programs(programs, count);
		return -EINVAL;
	}
	*out = programs;
	*out_count = count;
	return 0;

truncated:
	snprintf(why, why_len, "seccomp: truncated policy");
	free_programs(programs, count);
	return -EINVAL;
}

bool pb_sandbox_has_after_start(void)
{
	return after_start_count > 0;
}

static int open_traceback_pipe(char *why, size_t why_len)
{
	if (pipe2(traceback_pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
		int e = errno;
		snprintf(why, why_len, "seccomp: cannot create the SIGSYS reporter's traceback pipe: %s",
		         strerror(e));
		return -e;
	}
	return 0;
}

static int load_blob(const uint8_t *blob, size_t len, bool first, char *why, size_t why_len);

int pb_sandbox_apply(const uint8_t *blob, size_t len, char *why, size_t why_len)
{
	struct sigaction sa;
	int r;

	if ((r = open_traceback_pipe(why, why_len)) < 0)
		return r;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0) {
		snprintf(why, why_len, "seccomp: cannot install the SIGSYS reporter: %s", strerror(errno));
		return -errno;
	}
	/* A write to a closed channel should fail, not kill the worker silently. */
	signal(SIGPIPE, SIG_IGN);

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		snprintf(why, why_len, "no_new_privs: %s", strerror(errno));
		return -errno;
	}
	return load_blob(blob, len, true, why, why_len);
}

/* The zygote's pipe is gone with its other descriptors (worker/zygote.c);
 * the SIGSYS handler and no_new_privs came with the fork. */
int pb_sandbox_apply_more(const uint8_t *blob, size_t len, char *why, size_t why_len)
{
	int r = open_traceback_pipe(why, why_len);

	return r < 0 ? r : load_blob(blob, len, false, why, why_len);
}

/* Load the programs of blob that apply now; keep the after-start ones. */
static int load_blob(const uint8_t *blob, size_t len, bool first, char *why, size_t why_len)
{
	struct seccomp_program *programs = NULL;
	size_t count = 0, kept = 0;
	int r;

	r = parse_policy(blob, len, &programs, &count, why, why_len);
	if (r < 0)
		return r;
	for (size_t i = 0; i < count; i++) {
		if (programs[i].flags & PB_PROG_AFTER_START) {
			programs[kept++] = programs[i]; /* kept in blob order */
			continue;
		}
		r = load_program(&programs[i], "seccomp", i, count, why, why_len);
		free(programs[i].insns);
		if (r < 0) {
			for (size_t j = i + 1; j < count; j++)
				free(programs[j].insns);
			free_programs(programs, kept);
			return r;
		}
	}
	if (first)
		pb_layers_add("no_new_privs");
	pb_layers_add("seccomp: %zu program%s now%s%s", count - kept, count - kept == 1 ? "" : "s",
	              first ? "" : " (its own, stacked on its zygote's)", kept ? ", more after start-up" : "");
	if (kept == 0) {
		free(programs);
		return 0;
	}
	after_start_programs = programs;
	after_start_count = kept;
	return 0;
}

/* Plugin code may have run in this process by now (ctypes can write to
 * any of its memory), so the kept copies may have been altered. That is
 * acceptable only because filters stack: whatever gets loaded here can
 * tighten what pb_sandbox_apply loaded, never loosen it. That the rules
 * are in force at all is checked from outside, by the supervisor reading
 * the filters back (supervisor/runtime/filter_check.c). */
int pb_sandbox_apply_after_start(char *why, size_t why_len)
{
	struct seccomp_program *programs = after_start_programs;
	size_t count = after_start_count;
	int r = 0;

	after_start_programs = NULL;
	after_start_count = 0;
	for (size_t i = 0; i < count && r == 0; i++)
		r = load_program(&programs[i], "seccomp (after start-up)", i, count, why, why_len);
	free_programs(programs, count);
	return r;
}
