/* install_mode.h - plugbox-worker --install (install.c): the unpacker of
 * `plugbox install`, in the same binary as the plugin worker so that it
 * starts behind the same layers, in the same order. */
#ifndef PLUGBOX_WORKER_INSTALL_MODE_H
#define PLUGBOX_WORKER_INSTALL_MODE_H

#include <Python.h>
#include <stddef.h>

/* main() for `plugbox-worker --install MODE ...`; does not return when it
 * got as far as the unpacker. */
int pb_install_main(int argc, char **argv);

/* compile.c: mode "compile", once the walls are up: compile the plugin at
 * `plugin` (as its workers see it; `aliases` are further paths they import
 * it by) into `out`. The answer line as a str, or NULL with an exception. */
PyObject *pb_compile_run(const char *out, const char *plugin, const char *name, char *const *aliases,
                         size_t naliases, PyObject *limits);

#endif
