/* envelope_agree.h - the decoder's fast path (proto/envelope_fast.c)
 * against the general one on the same bytes: used by check_envelope_fast
 * on random and damaged envelopes and by fuzz_envelope on every input. */
#ifndef PLUGBOX_ENVELOPE_AGREE_H
#define PLUGBOX_ENVELOPE_AGREE_H

#include <stddef.h>
#include <stdint.h>

/* Decode data both ways. Returns 1 when the fast path took it, to the
 * envelope the general path makes (the same bytes when packed by
 * protobuf-c); 0 when it left data to the general path; -1, with why, when
 * it took what the general path refuses or made another envelope. */
int pb_test_fast_agrees(const uint8_t *data, size_t len, char *why, size_t why_len);

#endif
