/* envelope_agree.c - see envelope_agree.h. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/lib/envelope_agree.h"
#include "proto/frame.h"

int pb_test_fast_agrees(const uint8_t *data, size_t len, char *why, size_t why_len)
{
	Plugbox__Envelope *fast = NULL, *general = NULL;
	char reason[256];
	int took = pb_envelope_decode_small(data, len, &fast);
	int rc = pb_envelope_decode_opts(data, len, PB_DECODE_GENERAL, &general, reason, sizeof(reason));
	int verdict = took == 1;

	if (took != 0 && took != 1) {
		snprintf(why, why_len, "the fast path returned %d (0 or 1 expected)", took);
		verdict = -1;
	} else if (!took && fast) {
		snprintf(why, why_len, "the fast path declined but made an envelope");
		verdict = -1;
	} else if (took && rc != 0) {
		snprintf(why, why_len, "the fast path took what the general one refuses: %s", reason);
		verdict = -1;
	} else if (took) {
		size_t a = plugbox__envelope__get_packed_size(fast);
		size_t b = plugbox__envelope__get_packed_size(general);
		uint8_t *pa = malloc(a + 1), *pb = malloc(b + 1);

		if (!pa || !pb) {
			snprintf(why, why_len, "out of memory");
			verdict = -1;
		} else if (a != b || plugbox__envelope__pack(fast, pa) != a || plugbox__envelope__pack(general, pb) != b ||
		           memcmp(pa, pb, a) != 0) {
			snprintf(why, why_len, "the fast path made another envelope (%zu packed bytes, the general one %zu)",
			         a, b);
			verdict = -1;
		}
		free(pa);
		free(pb);
	}
	pb_envelope_free(fast);
	pb_envelope_free(general);
	return verdict;
}
