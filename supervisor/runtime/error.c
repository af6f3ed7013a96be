/* error.c - pb_error: what a failed call tells the host (a kind that maps
 * to an exit code, the plugin, and the Python type, message and traceback
 * when the plugin raised). */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/error.h"
#include "runtime/process.h"

pb_error *pb_error_new(pb_error_kind kind, const char *plugin, const char *type,
                       const char *message, const char *traceback)
{
	pb_error *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->kind = kind;
	e->plugin = strdup(plugin ? plugin : "");
	e->type = strdup(type ? type : "");
	e->message = strdup(message ? message : "");
	e->traceback = strdup(traceback ? traceback : "");
	e->syscall = strdup("");
	e->rule = strdup("");
	e->policy_file = strdup("");
	if (!e->plugin || !e->type || !e->message || !e->traceback || !e->syscall || !e->rule || !e->policy_file) {
		pb_error_free(e);
		return NULL;
	}
	return e;
}

pb_error *pb_error_newf(pb_error_kind kind, const char *plugin, const char *fmt, ...)
{
	char message[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	return pb_error_new(kind, plugin, "", message, "");
}

pb_error *pb_error_set_violation(pb_error *e, const char *syscall, const char *rule)
{
	char *s, *r;

	if (!e)
		return NULL;
	s = strdup(syscall);
	r = strdup(rule);
	if (!s || !r) {
		free(s);
		free(r);
		pb_error_free(e);
		return NULL;
	}
	free(e->syscall);
	free(e->rule);
	e->syscall = s;
	e->rule = r;
	return e;
}

pb_error *pb_error_set_violation_detail(pb_error *e, const uint64_t args[6], const char *policy_file,
                                        unsigned policy_line)
{
	char *f;

	if (!e)
		return NULL;
	if (!(f = strdup(policy_file ? policy_file : ""))) {
		pb_error_free(e);
		return NULL;
	}
	free(e->policy_file);
	e->policy_file = f;
	e->policy_line = policy_file ? policy_line : 0;
	e->have_args = true;
	memcpy(e->args, args, sizeof(e->args));
	return e;
}

pb_error *pb_error_copy(const pb_error *e)
{
	pb_error *c;

	if (!e)
		return NULL;
	c = pb_error_set_violation(pb_error_new(e->kind, e->plugin, e->type, e->message, e->traceback),
	                           e->syscall, e->rule);
	if (c && e->have_args)
		c = pb_error_set_violation_detail(c, e->args, *e->policy_file ? e->policy_file : NULL, e->policy_line);
	return c;
}

pb_error_kind pb_error_kind_from_wire(Plugbox__ErrorKind k)
{
	switch (k) {
	case PLUGBOX__ERROR_KIND__ERROR_KIND_EXCEPTION: return PB_ERROR_EXCEPTION;
	case PLUGBOX__ERROR_KIND__ERROR_KIND_NOT_FOUND: return PB_ERROR_NOT_FOUND;
	case PLUGBOX__ERROR_KIND__ERROR_KIND_CONFIG: return PB_ERROR_CONFIG;
	case PLUGBOX__ERROR_KIND__ERROR_KIND_BAD_REQUEST: return PB_ERROR_BAD_REQUEST;
	case PLUGBOX__ERROR_KIND__ERROR_KIND_UNAVAILABLE: return PB_ERROR_UNAVAILABLE;
	/* only the host cancels: a worker that says so about a call the host did
	 * not cancel speaks for the plugin (cancel.c drops the answers of calls
	 * that were cancelled) */
	case PLUGBOX__ERROR_KIND__ERROR_KIND_CANCELLED: return PB_ERROR_EXCEPTION;
	default: return PB_ERROR_PROTOCOL; /* a worker cannot claim the others */
	}
}

PB_API pb_error_kind pb_error_get_kind(const pb_error *e)
{
	return e->kind;
}
PB_API const char *pb_error_get_plugin(const pb_error *e)
{
	return e->plugin;
}
PB_API const char *pb_error_get_type(const pb_error *e)
{
	return e->type;
}
PB_API const char *pb_error_get_message(const pb_error *e)
{
	return e->message;
}
PB_API const char *pb_error_get_traceback(const pb_error *e)
{
	return e->traceback;
}
PB_API const char *pb_error_get_syscall(const pb_error *e)
{
	return e->syscall;
}
PB_API const char *pb_error_get_rule(const pb_error *e)
{
	return e->rule;
}
PB_API size_t pb_error_get_syscall_args(const pb_error *e, uint64_t args[6])
{
	if (!e->have_args)
		return 0;
	memcpy(args, e->args, sizeof(e->args));
	return 6;
}
PB_API const char *pb_error_get_policy_file(const pb_error *e, unsigned *line)
{
	if (line)
		*line = e->policy_line;
	return e->policy_file;
}

PB_API const char *pb_error_kind_name(pb_error_kind kind)
{
	static const char *const names[] = {
		[PB_ERROR_EXCEPTION] = "exception",
		[PB_ERROR_NOT_FOUND] = "not_found",
		[PB_ERROR_CONFIG] = "config",
		[PB_ERROR_VIOLATION] = "violation",
		[PB_ERROR_TIMEOUT] = "timeout",
		[PB_ERROR_CRASHED] = "crashed",
		[PB_ERROR_PROTOCOL] = "protocol",
		[PB_ERROR_UNAVAILABLE] = "unavailable",
		[PB_ERROR_BAD_REQUEST] = "bad_request",
		[PB_ERROR_CANCELLED] = "cancelled",
	};
	return (unsigned)kind < sizeof(names) / sizeof(names[0]) && names[kind] ? names[kind] : "unknown";
}

PB_API void pb_error_free(pb_error *e)
{
	if (!e)
		return;
	free(e->plugin);
	free(e->type);
	free(e->message);
	free(e->traceback);
	free(e->syscall);
	free(e->rule);
	free(e->policy_file);
	free(e);
}
