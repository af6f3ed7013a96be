/* fuzz_sockaddr.c - libFuzzer target for the check of a worker's connect(2)
 * under `@network connect` (supervisor/policy/policy_net.c): the sockaddr
 * the supervisor read from the worker's memory (pb_net_addr_parse), the
 * match against the destinations (pb_net_allowed) and the text a refusal
 * note shows (pb_net_addr_format). The worker chooses every byte of the
 * address and its length.
 *
 * Input: byte 0 is the number of allowed addresses (0-7, low 3 bits);
 * each is then 19 bytes (family: bit 0 of the first, IPv6 when set; 16
 * address bytes, of which IPv4 uses the first 4; a big-endian port). The
 * rest is the sockaddr exactly as the worker wrote it, at most a
 * sockaddr_storage (netconnect.c refuses a longer length before reading),
 * copied into a buffer of exactly its length so that a read past it is an
 * ASan report.
 *
 * Checked against a model written here from the kernel's layout: the
 * verdict (-EINVAL too short for its family, -EAFNOSUPPORT another family,
 * 0 otherwise), the family, address and port; an IPv4-mapped IPv6 address
 * comes out as its IPv4 address, so it is allowed exactly when the plain
 * IPv4 form is; the matcher allows exactly the addresses on the list, and
 * only for @network connect; the text is bounded, terminated and reads
 * back (inet_pton) as the same address and port.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fuzz_common.h"
#include "policy/policy.h"

#define ALLOWED_MAX 7
#define ALLOWED_BYTES 19

struct model {
	int verdict;
	int family;
	uint8_t addr[16];
	uint16_t port;
};

static const uint8_t mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* The layout by offsets, as linux/in.h and linux/in6.h fix it. */
static struct model model_of(const uint8_t *b, size_t len)
{
	struct model m;
	uint16_t family;

	memset(&m, 0, sizeof(m));
	if (len < 2) {
		m.verdict = -EINVAL;
		return m;
	}
	memcpy(&family, b, 2); /* host order, as sa_family_t is */
	if (family != AF_INET && family != AF_INET6) {
		m.verdict = -EAFNOSUPPORT;
		return m;
	}
	if (len < (family == AF_INET ? 16u : 24u)) {
		m.verdict = -EINVAL;
		return m;
	}
	m.port = (uint16_t)(b[2] << 8 | b[3]);
	if (family == AF_INET) {
		m.family = AF_INET;
		memcpy(m.addr, b + 4, 4);
	} else if (!memcmp(b + 8, mapped_prefix, 12)) {
		m.family = AF_INET;
		memcpy(m.addr, b + 20, 4);
	} else {
		m.family = AF_INET6;
		memcpy(m.addr, b + 8, 16);
	}
	return m;
}

static bool model_same(const struct model *m, const struct pb_net_addr *a)
{
	return m->family == a->family && m->port == a->port &&
	       !memcmp(m->addr, a->addr, m->family == AF_INET ? 4 : 16);
}

/* The text must read back as the address: "a.b.c.d:P" or "[v6]:P". */
static void check_text(const struct pb_net_addr *a)
{
	char text[PB_NET_ADDR_TEXT], host[PB_NET_ADDR_TEXT];
	uint8_t bin[16];
	const char *colon;

	memset(text, 'x', sizeof(text));
	FUZZ_ASSERT(pb_net_addr_format(a, text, sizeof(text)) == text);
	FUZZ_ASSERT(memchr(text, '\0', sizeof(text)) != NULL);
	colon = strrchr(text, ':');
	FUZZ_ASSERT(colon && (size_t)(colon - text) < sizeof(host));
	FUZZ_ASSERT(strtoul(colon + 1, NULL, 10) == a->port);
	if (a->family == AF_INET) {
		memcpy(host, text, (size_t)(colon - text));
		host[colon - text] = '\0';
		FUZZ_ASSERT(inet_pton(AF_INET, host, bin) == 1 && !memcmp(bin, a->addr, 4));
	} else {
		FUZZ_ASSERT(text[0] == '[' && colon[-1] == ']');
		memcpy(host, text + 1, (size_t)(colon - text - 2));
		host[colon - text - 2] = '\0';
		FUZZ_ASSERT(inet_pton(AF_INET6, host, bin) == 1 && !memcmp(bin, a->addr, 16));
	}
	/* A buffer too small still ends in a NUL, inside it. */
	char small[8];
	memset(small, 'x', sizeof(small));
	pb_net_addr_format(a, small, sizeof(small));
	FUZZ_ASSERT(memchr(small, '\0', sizeof(small)) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pb_net_addr allowed[ALLOWED_MAX], got, plain;
	struct pb_dest dests[2];
	struct pb_sandbox sb;
	struct model m;
	size_t nallowed, len;
	uint8_t *sa;
	int r;

	if (size < 1)
		return 0;
	nallowed = data[0] & 7;
	if (size < 1 + nallowed * ALLOWED_BYTES)
		return 0;
	for (size_t i = 0; i < nallowed; i++) {
		const uint8_t *e = data + 1 + i * ALLOWED_BYTES;
		memset(&allowed[i], 0, sizeof(allowed[i]));
		allowed[i].family = e[0] & 1 ? AF_INET6 : AF_INET;
		memcpy(allowed[i].addr, e + 1, allowed[i].family == AF_INET ? 4 : 16);
		allowed[i].port = (uint16_t)(e[17] << 8 | e[18]);
	}
	len = size - 1 - nallowed * ALLOWED_BYTES;
	if (len > sizeof(struct sockaddr_storage))
		return 0; /* netconnect.c answers EINVAL before reading */
	/* Exactly len bytes, so that ASan sees a read past the worker's length. */
	sa = malloc(len ? len : 1);
	if (!sa)
		return 0;
	memcpy(sa, data + 1 + nallowed * ALLOWED_BYTES, len);

	/* Two destinations, as two @network connect lines would give. */
	memset(&sb, 0, sizeof(sb));
	memset(dests, 0, sizeof(dests));
	dests[0].host = (char *)"first";
	dests[0].addrs = allowed;
	dests[0].naddrs = nallowed / 2;
	dests[1].host = (char *)"second";
	dests[1].addrs = allowed + nallowed / 2;
	dests[1].naddrs = nallowed - nallowed / 2;
	sb.dests = dests;
	sb.ndests = 2;

	memset(&got, 0xa5, sizeof(got));
	r = pb_net_addr_parse(sa, len, &got);
	m = model_of(sa, len);
	FUZZ_ASSERT(r == m.verdict);
	if (r < 0) {
		/* Nothing comes out of a refused address. */
		struct pb_net_addr zero;
		memset(&zero, 0, sizeof(zero));
		FUZZ_ASSERT(!memcmp(&got, &zero, sizeof(zero)));
		free(sa);
		return 0;
	}
	FUZZ_ASSERT(model_same(&m, &got));
	/* Bytes the family does not use are zero: same_addr and the text
	 * look at no stale byte. */
	if (got.family == AF_INET)
		for (size_t i = 4; i < sizeof(got.addr); i++)
			FUZZ_ASSERT(got.addr[i] == 0);

	/* The matcher: exactly the listed addresses, only for connect. */
	const struct pb_net_addr *want = NULL;
	for (size_t i = 0; i < nallowed && !want; i++)
		if (model_same(&m, &allowed[i]))
			want = &allowed[i];
	for (int mode = 0; mode < 3; mode++) {
		sb.network = mode == 0 ? PB_NETWORK_CONNECT : mode == 1 ? PB_NETWORK_NONE
		                                                        : PB_NETWORK_HOST;
		const struct pb_dest *d = pb_net_allowed(&sb, &got);
		if (mode != 0 || !want) {
			FUZZ_ASSERT(d == NULL);
			continue;
		}
		FUZZ_ASSERT(d == &dests[0] || d == &dests[1]);
		FUZZ_ASSERT(want >= d->addrs && want < d->addrs + d->naddrs);
	}

	/* An IPv4-mapped IPv6 address is judged as its plain IPv4 form. */
	if (got.family == AF_INET) {
		struct sockaddr_in in;
		memset(&in, 0, sizeof(in));
		in.sin_family = AF_INET;
		in.sin_port = htons(got.port);
		memcpy(&in.sin_addr, got.addr, 4);
		FUZZ_ASSERT(pb_net_addr_parse(&in, sizeof(in), &plain) == 0 && !memcmp(&plain, &got, sizeof(got)));
		sb.network = PB_NETWORK_CONNECT;
		FUZZ_ASSERT(pb_net_allowed(&sb, &plain) == pb_net_allowed(&sb, &got));
	}
	check_text(&got);
	free(sa);
	return 0;
}
