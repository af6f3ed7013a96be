/* supervisor.h - supervisor.c's internals: the supervisor's message, a plugin's policy, the fork-server. */
#ifndef PLUGBOX_RUNTIME_SUPERVISOR_H
#define PLUGBOX_RUNTIME_SUPERVISOR_H

#include "runtime/process.h"

__attribute__((format(printf, 2, 3))) void pb_set_message(pb_supervisor *s, const char *fmt, ...);
/* supervisor.c: the policy for plugin `name` (POLICIES/NAME.policy, else
 * POLICIES/default.policy); errors go to *why as FILE:LINE:COL lines. */
int pb_load_plugin_policy(pb_supervisor *s, const char *name, struct pb_policy **out,
                          char *why, size_t why_len);

/* supervisor.c: the fork-server to clone plugin's worker from, started
 * when first needed; NULL in exec mode, or when it cannot start (the
 * worker is then exec'd, the safe way, and the plugin's output says why). */
struct pb_forkserver *pb_supervisor_forkserver(pb_supervisor *s, const char *plugin);
/* --spawn zygote or shared-zygote: workers forked from their plugin's
 * zygote (exec'd, or cloned from the fork-server). Everything that treats
 * zygote mode specially asks this; only where the zygote comes from
 * differs between the two. */
bool pb_supervisor_zygote_mode(const pb_supervisor *s);
/* In a zygote mode: the plugin's zygote to fork its next worker from, in
 * *out: started (or replaced, when it died) now if need be. 0 with *out
 * NULL when workers are not forked from one, or it could not start or
 * import in time (said once; its workers are then exec'd); -EINPROGRESS
 * while it imports: ask again later (pb_runtime_start does). */
struct plugin;
struct pb_policy;
struct pb_zygote;
int pb_supervisor_zygote(pb_supervisor *s, struct plugin *p, const char *dir, const char *cache,
                         const struct pb_policy *policy, struct pb_zygote **out);
/* Is the plugin's zygote still importing? Never blocks; one that broke
 * or took too long is refused here (said once). */
bool pb_supervisor_zygote_importing(pb_supervisor *s, struct plugin *p);

/* supervisor.c: stderr takes bytes again (the loop's SRC_SINK). */
void pb_supervisor_sink_event(pb_supervisor *s);
/* supervisor.c: before the host writes to stderr itself (the plugbox
 * command's own messages), what the default output queued goes first,
 * for at most `seconds` of a stderr that takes nothing. */
void pb_supervisor_flush_output(pb_supervisor *s, double seconds);

#endif
