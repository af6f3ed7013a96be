/* install_mode.h - plugbox-worker --install (install.c): the unpacker of
 * `plugbox install`, in the same binary as the plugin worker so that it
 * starts behind the same layers, in the same order. */
#ifndef PLUGBOX_WORKER_INSTALL_MODE_H
#define PLUGBOX_WORKER_INSTALL_MODE_H

/* main() for `plugbox-worker --install MODE ...`; does not return when it
 * got as far as the unpacker. */
int pb_install_main(int argc, char **argv);

#endif
