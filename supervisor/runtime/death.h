/* death.h - death.c: why a worker is gone, as the error its calls get. */
#ifndef PLUGBOX_RUNTIME_DEATH_H
#define PLUGBOX_RUNTIME_DEATH_H

#include "runtime/process.h"

pb_error *pb_death_error(const struct process *p);

#endif
