/* plugbox.h - host API of libplugbox: run untrusted Python plugins, one
 * sandboxed worker process per plugin, and call their functions.
 *
 *   pb_supervisor *sup;
 *   pb_supervisor_new("/srv/plugins", &sup);
 *   pb_value *arg = pb_value_parse_json("\"world\"", NULL);
 *   pb_value *result; pb_error *err;
 *   if (pb_call(sup, "greeter", "greet", &arg, 1, &result, &err) == 0) ...
 *
 * Handles are opaque. Functions that can fail return 0 or a negative errno;
 * a failed call also yields a pb_error that says what happened (kind, type,
 * message, traceback). Link with pkg-config's `plugbox`.
 */
#ifndef PLUGBOX_H
#define PLUGBOX_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define PB_API __attribute__((visibility("default")))
#else
#define PB_API
#endif

typedef struct pb_supervisor pb_supervisor;
typedef struct pb_value pb_value;
typedef struct pb_error pb_error;

/* What went wrong with a call. The numbers are stable. */
typedef enum pb_error_kind {
	PB_ERROR_EXCEPTION = 1,   /* the plugin raised */
	PB_ERROR_NOT_FOUND = 2,   /* no such plugin or function */
	PB_ERROR_CONFIG = 3,      /* the plugin's layout or manifest is invalid */
	PB_ERROR_VIOLATION = 4,   /* the sandbox stopped the plugin */
	PB_ERROR_TIMEOUT = 5,     /* the call's deadline passed; the worker was killed */
	PB_ERROR_CRASHED = 6,     /* the worker died */
	PB_ERROR_PROTOCOL = 7,    /* the worker sent something it must not */
	PB_ERROR_UNAVAILABLE = 8, /* the worker could not be started (a sandbox layer failed...) */
	PB_ERROR_BAD_REQUEST = 9, /* the call itself was malformed */
} pb_error_kind;

/* Where a line of plugin output came from. */
typedef enum pb_stream {
	PB_STREAM_STDOUT = 1,     /* the plugin's stdout */
	PB_STREAM_STDERR = 2,     /* the plugin's stderr */
	PB_STREAM_SUPERVISOR = 3, /* the supervisor about the plugin (denied syscalls...) */
} pb_stream;

typedef void (*pb_output_fn)(void *userdata, const char *plugin, pb_stream stream, const char *line);

/* Supervisor over a plugins directory (each subdirectory one plugin). */
PB_API int pb_supervisor_new(const char *plugins_dir, pb_supervisor **out);
/* Ends every worker (Shutdown, then SIGKILL after a grace period) and frees. */
PB_API void pb_supervisor_free(pb_supervisor *sup);
/* Path of the plugbox-worker binary (default: the installed one, or the
 * PLUGBOX_WORKER environment variable). */
PB_API int pb_supervisor_set_worker(pb_supervisor *sup, const char *path);
/* Directory of the operator's syscall policies: plugin NAME runs under
 * DIR/NAME.policy if it exists, else DIR/default.policy. Default: the
 * installed policies (or the PLUGBOX_POLICIES environment variable). A
 * policy with errors fails the plugin's start with PB_ERROR_CONFIG naming
 * FILE:LINE:COL. */
PB_API int pb_supervisor_set_policies(pb_supervisor *sup, const char *dir);
/* Per-call deadline in seconds; 0 means none. Default 60. */
PB_API int pb_supervisor_set_timeout(pb_supervisor *sup, double seconds);
/* Receives plugin output and supervisor notes, one line at a time. Default:
 * written to stderr as "[plugin] line". */
PB_API void pb_supervisor_set_output(pb_supervisor *sup, pb_output_fn fn, void *userdata);
/* The last error of a pb_supervisor_* function, as one line. */
PB_API const char *pb_supervisor_strerror(const pb_supervisor *sup);

/* Names of the plugins in the directory, sorted; entries that are not
 * directories or whose names are not [A-Za-z0-9_-]+ are skipped (and
 * reported to the output function). Free with pb_strv_free. */
PB_API int pb_supervisor_plugins(pb_supervisor *sup, char ***names, size_t *count);
PB_API void pb_strv_free(char **v, size_t count);

/* Describe a plugin (starts its worker): a map value with name, layout,
 * version, exports, entry_points and sys_path. */
PB_API int pb_describe(pb_supervisor *sup, const char *plugin, pb_value **info, pb_error **err);

/* Call FUNCTION of PLUGIN with positional arguments (borrowed). On success
 * returns 0 and *result (free with pb_value_destroy). On failure returns a
 * negative errno and *err (free with pb_error_free). Never blocks past the
 * supervisor's timeout. */
PB_API int pb_call(pb_supervisor *sup, const char *plugin, const char *function,
                   pb_value *const *args, size_t nargs, pb_value **result, pb_error **err);

/* The same with keyword arguments: kwnames[i] names kwvalues[i] (borrowed). */
PB_API int pb_call_kw(pb_supervisor *sup, const char *plugin, const char *function,
                      pb_value *const *args, size_t nargs,
                      const char *const *kwnames, pb_value *const *kwvalues, size_t nkwargs,
                      pb_value **result, pb_error **err);

PB_API pb_error_kind pb_error_get_kind(const pb_error *e);
PB_API const char *pb_error_kind_name(pb_error_kind kind);
PB_API const char *pb_error_get_plugin(const pb_error *e);
PB_API const char *pb_error_get_type(const pb_error *e);      /* Python type, or "" */
PB_API const char *pb_error_get_message(const pb_error *e);
PB_API const char *pb_error_get_traceback(const pb_error *e); /* Python traceback, or "" */
PB_API void pb_error_free(pb_error *e);

/* Values. JSON notation as in README.md ("$bytes", "$float", "$map").
 * pb_value_parse_json sets *why (free it) to a one-line reason on failure. */
PB_API pb_value *pb_value_parse_json(const char *json, char **why);
PB_API int pb_value_print_json(const pb_value *v, FILE *out);
PB_API void pb_value_destroy(pb_value *v);
/* Reading values (borrowed results, valid while v lives). */
PB_API const char *pb_value_get_string(const pb_value *v);          /* NULL unless a string */
PB_API size_t pb_value_list_length(const pb_value *v);              /* 0 unless a list */
PB_API const pb_value *pb_value_list_get(const pb_value *v, size_t i);
PB_API const pb_value *pb_value_map_get(const pb_value *v, const char *key); /* string keys */

#ifdef __cplusplus
}
#endif
#endif
