/* worker.h - internals of plugbox-worker, the sandboxed process that embeds
 * CPython for exactly one plugin.
 *
 * Descriptor contract with the supervisor (supervisor/spawn.c):
 *   0 /dev/null   1, 2 captured output   3 calls in   4 replies out
 *   5 report socket (SOCK_SEQPACKET; one Envelope per message: Violations
 *     written by the SIGSYS handler, and at most one SeccompListener that
 *     carries the seccomp user-notification fd)
 *   6 the compiled seccomp programs (read once)
 */
#ifndef PLUGBOX_WORKER_H
#define PLUGBOX_WORKER_H

#include <Python.h>
#include <stdbool.h>
#include <stddef.h>

#include "proto/plugbox.pb-c.h"
#include "proto/protocol.h"

/* Exit statuses besides 0 (the supervisor ended the conversation). */
enum { PB_EXIT_INTERNAL = 70,
       PB_EXIT_SANDBOX = 71 };

/* interp.c: CPython with the standard library only; nothing from the plugin
 * is on sys.path until the glue's setup() runs, after the sandbox. */
int pb_interp_init(const char *executable, const char *plugin, char *why, size_t why_len);
/* interp.c: before the fork-server clones children that share its pages:
 * fill the free blocks of pymalloc's partly used pools and of malloc's
 * heap, so that what a child allocates goes to pages of its own instead of
 * copying a shared page per object. Returns the blocks filled. */
size_t pb_interp_fill_holes(void);
/* main.c: the worker after exec (warm false) or, in a child of the
 * fork-server, after the jail (warm: interpreter and glue already up). */
int pb_worker_run(int argc, char **argv, bool warm);
/* forkserver.c: plugbox-worker --fork-server. */
int pb_forkserver_main(int argc, char **argv);
/* True in a process cloned from the fork-server (and in a zygote's child,
 * when its zygote was). */
bool pb_forkserver_cloned(void);
/* zygote.c: the plugin is imported; become its zygote. Returns only in a
 * forked child, 0 when its own sandbox programs are stacked (go on to
 * Hello), or an exit status after an Error with id 0. fresh_scratch: each
 * child empties this directory first (@fresh-per-call), or NULL. */
int pb_zygote_become(const char *fresh_scratch);
/* Load the glue module (worker/bootstrap.py, embedded) once; it stays loaded
 * for the life of the process. Both return a borrowed reference; pb_glue is
 * NULL until pb_glue_load has succeeded. */
PyObject *pb_glue_load(void);
PyObject *pb_glue(void);

/* calls.c: the worker's end of the call channel once Hello is out.
 * Every frame to the supervisor is written by one C call made with the GIL
 * held (the GIL is never released during a write), so frames sent from
 * several Python threads cannot interleave. PB_FD_CALLS is read through one
 * frame reader, by the serve loop and by every wait for a HostResult. */
/* Calls nested in host calls are refused (RecursionError) beyond this many
 * active calls, the top-level one included. */
#define PB_CALL_DEPTH_MAX 32
int pb_send_error(uint64_t id, Plugbox__ErrorKind kind, const char *type,
                  const char *message, const char *tb);
/* main.c: a Hello made of what bootstrap.setup() or scan_one() returned
 * (a dict), as the envelope with this id on fd; with_layers adds the
 * sandbox layers in force (a plugin's worker; not the discovery scan). */
int pb_send_hello(int fd, uint64_t id, const char *name, PyObject *info, bool with_layers);
/* Report (and clear) the pending Python exception as an Error with this id. */
int pb_send_python_error(uint64_t id);
/* Answer calls until Shutdown or the end of the channel: 0, or a negative
 * errno once the channel fails. */
int pb_serve(void);
/* plugbox._host_call(name, args_tuple, kwargs_dict) -> (True, value) or
 * (False, type, message, traceback); the plugbox module turns the second
 * into an exception. */
PyObject *pb_py_host_call(PyObject *module, PyObject *args);

/* cancel.c: cancelling calls (protocol.h's PB_CANCEL_SIGNAL). Install the
 * handlers (before the seccomp filter): 0, or -1 with *why. */
int pb_cancel_install(char *why, size_t why_len);
/* The main thread starts running call id (nested calls too): returns the
 * call it ran before, for pb_cancel_leave. */
uint64_t pb_cancel_enter(uint64_t id);
void pb_cancel_leave(uint64_t outer);
/* Was call id cancelled (before it started)? */
bool pb_cancel_pending(uint64_t id);
/* The call the main thread runs now, 0 for none (log records carry it). */
uint64_t pb_cancel_running(void);

/* log.c: plugbox._log(level, logger, message[, exc_text]): one Log envelope (id 0),
 * bounded; dropped silently when the supervisor is not listening. */
#define PB_LOG_MESSAGE_MAX 16384u
#define PB_LOG_LOGGER_MAX 256u
PyObject *pb_py_log(PyObject *module, PyObject *args);
/* Say now how many records were dropped (a call ended), if any were. */
void pb_log_note_drops(void);

/* sandbox.c */
int pb_sandbox_read_policy(int fd, uint8_t **blob, size_t *len, char *why, size_t why_len);
/* Loads every program without PB_PROG_AFTER_START and keeps a copy of
 * the others for pb_sandbox_apply_after_start. */
int pb_sandbox_apply(const uint8_t *blob, size_t len, char *why, size_t why_len);
/* Loads the programs pb_sandbox_apply kept back; 0 when there are none. */
int pb_sandbox_apply_after_start(char *why, size_t why_len);
/* Does the policy have programs for after start-up? */
bool pb_sandbox_has_after_start(void);
/* A zygote's child: its own programs (blob as for pb_sandbox_apply),
 * stacked on the zygote's, with a traceback pipe of its own. */
int pb_sandbox_apply_more(const uint8_t *blob, size_t len, char *why, size_t why_len);

/* layers.c: the walls raised after exec and before the interpreter, and the
 * list of active layers Hello carries. */
enum pb_landlock_mode { PB_LANDLOCK_REQUIRED,
	                PB_LANDLOCK_OPTIONAL,
	                PB_LANDLOCK_OFF };
struct pb_landlock_request {
	enum pb_landlock_mode mode;
	bool network;               /* @network host: TCP is not restricted */
	bool list_root;             /* the mount tree's / may be listed (--list-root) */
	const char **read, **write; /* trees to allow, as this process sees them */
	size_t nread, nwrite;
};
/* How many --read and --write trees the worker takes (each). */
#define PB_LANDLOCK_MAX_PATHS 64
/* Add a --read (write false) or --write tree to req, whose arrays hold
 * PB_LANDLOCK_MAX_PATHS; -1 when full. */
int pb_landlock_request_add(struct pb_landlock_request *req, bool write, const char *path);
int pb_layers_landlock(const struct pb_landlock_request *req, char *why, size_t why_len);
int pb_layers_capabilities(char *why, size_t why_len);
void pb_layers_add(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char **pb_layers_list(size_t *n);
/* Replace the "start: ..." layer (a zygote's child was not exec'd). */
void pb_layers_set_start(const char *text);

/* convert.c: Value <-> Python, depth bounded by PB_VALUE_MAX_DEPTH. Return a
 * new reference / 0, or NULL / -1 with a Python exception set. */
PyObject *pb_value_to_py(const Plugbox__Value *v);
int pb_py_to_value(PyObject *o, Plugbox__Value **out);

#endif
