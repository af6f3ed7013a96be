/* envelope_testlib.h - shared by check_envelope.c and check_envelope_fast.c. */
#ifndef PLUGBOX_ENVELOPE_TESTLIB_H
#define PLUGBOX_ENVELOPE_TESTLIB_H

#include <stdint.h>

#include "proto/frame.h"
#include "proto/value.h"

/* xorshift64: the same stream in every run, so a failure repeats. */
uint64_t rng(void);
/* v, after asserting that it was made. */
Plugbox__Value *must(Plugbox__Value *v);
/* Envelope 42: a Call of "mod.sub:fn" with an int, a string, a list, a map
 * and a keyword argument of bytes; free_call frees it. */
Plugbox__Envelope *build_call(void);
void free_call(Plugbox__Envelope *env);

#endif
