/* plugins.h - plugins.c: the supervisor's plugins by name. */
#ifndef PLUGBOX_RUNTIME_PLUGINS_H
#define PLUGBOX_RUNTIME_PLUGINS_H

#include "runtime/process.h"

/* The plugin called `name`, known from now on (NULL and *err: no such
 * plugin); the plugin if it is known already (else NULL). */
struct plugin *pb_runtime_plugin(pb_supervisor *s, const char *name, pb_error **err);
struct plugin *pb_runtime_known(pb_supervisor *s, const char *name);

#endif
