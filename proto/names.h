/* names.h - the one check of a plugin name, wherever a name arrives from
 * outside: a directory entry of PLUGINS, the command line, a socket client,
 * a wheel's metadata; shared by the supervisor and the worker. A valid name is [A-Za-z0-9_-]{1,128}: it is safe as a
 * file name, in a log line and on a terminal as it is. */
#ifndef PLUGBOX_NAMES_H
#define PLUGBOX_NAMES_H

#include <stdbool.h>

#define PB_PLUGIN_NAME_MAX 128

bool pb_valid_plugin_name(const char *n);

#endif
