/* policy_net.c - `@network none|host|connect HOST:PORT`: the line, the
 * destinations it names, and what the supervisor needs to judge a worker's
 * connect(2) against them.
 *
 *   @network none              a network namespace with no interface up
 *   @network host              the host's network namespace, every address
 *   @network connect HOST:PORT the worker stays in its empty namespace; the
 *                              supervisor makes TCP connections to exactly
 *                              these destinations for it (runtime/netconnect.c).
 *                              Repeatable; HOST is a name, an IPv4 address or
 *                              an IPv6 address in brackets ([::1]:8080).
 *   @network refresh TIME      how often the names of the connect lines are
 *                              resolved again while a worker lives (300s
 *                              unless said; 1s to 24h)
 *
 * `none` and `host` come once in a file; `connect` lines add up, and with
 * either of the others in the same file they are an error. Across files the
 * including file's setting wins, as for every setting; when both say
 * `connect`, the destinations add up (the including file's first).
 *
 * Names are resolved by the supervisor each time a worker starts
 * (pb_policy_resolve), and the worker's /etc/hosts lists them with those
 * addresses, so `requests.get("http://api.example:8080/")` resolves inside
 * a worker that has no DNS. A living worker gets them resolved again every
 * `@network refresh` (runtime/netresolve.c): its list and its /etc/hosts
 * both change. A connect is allowed when its address and port
 * are exactly one of a destination's: an IPv4-mapped IPv6 address
 * (::ffff:127.0.0.1) is compared as the IPv4 address it maps, so the mapped
 * form reaches nothing its plain form would not.
 *
 * pb_net_addr_parse reads bytes the worker wrote (the sockaddr of its
 * connect): it trusts neither the length nor the family (HACKING.md, and
 * tests/fuzz/fuzz_sockaddr.c).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "policy/policy_syntax.h"

static void dest_free(struct pb_dest *d)
{
	free(d->host);
	free(d->addrs);
}

void net_free(struct pb_sandbox *s)
{
	for (size_t i = 0; i < s->ndests; i++)
		dest_free(&s->dests[i]);
	free(s->dests);
	s->dests = NULL;
	s->ndests = 0;
}

static const struct pb_dest *dest_find(const struct pb_sandbox *s, const char *host, uint16_t port)
{
	for (size_t i = 0; i < s->ndests; i++)
		if (s->dests[i].port == port && !strcmp(s->dests[i].host, host))
			return &s->dests[i];
	return NULL;
}

/* Takes host over; false (host not taken) when memory runs out. */
static bool dest_push(struct pb_sandbox *s, char *host, uint16_t port, const struct pb_where *where)
{
	struct pb_dest *v = realloc(s->dests, (s->ndests + 1) * sizeof(*v));

	if (!v)
		return false;
	s->dests = v;
	v[s->ndests++] = (struct pb_dest){ .host = host, .port = port, .where = *where };
	return true;
}

void net_merge(struct pb_sandbox *dst, struct pb_sandbox *src)
{
	if (!dst->net_refresh_where.file && src->net_refresh_where.file) {
		dst->net_refresh = src->net_refresh;
		dst->net_refresh_where = src->net_refresh_where;
	}
	bool take = !dst->network_where.file && src->network_where.file;
	bool add = dst->network == PB_NETWORK_CONNECT && src->network == PB_NETWORK_CONNECT &&
	           dst->network_where.file && src->network_where.file;

	if (take) {
		dst->network = src->network;
		dst->network_where = src->network_where;
	}
	/* Out of memory, a destination is lost: refused, not let through. */
	for (size_t i = 0; i < src->ndests; i++) {
		struct pb_dest *d = &src->dests[i];
		if ((take || add) && !dest_find(dst, d->host, d->port) && dest_push(dst, d->host, d->port, &d->where)) {
			free(d->addrs);
			continue;
		}
		dest_free(d);
	}
	free(src->dests);
	src->dests = NULL;
	src->ndests = 0;
}

/* A DNS name: labels of [A-Za-z0-9-], not starting or ending with '-',
 * 1-63 bytes each, at most PB_NET_HOST_MAX in all, not all digits and dots
 * (that would be a malformed IPv4 address). */
static bool host_name_valid(const char *h)
{
	size_t len = strlen(h), label = 0;
	bool letter = false;

	if (len == 0 || len > PB_NET_HOST_MAX || h[len - 1] == '.' || h[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = h[i];
		if (c == '.') {
			if (label == 0 || h[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
		if (c == '-' && label == 0)
			return false;
		if (++label > 63)
			return false;
		letter |= !(c >= '0' && c <= '9');
	}
	return letter && h[len - 1] != '-';
}

/* HOST:PORT at the cursor into *host (malloc'd, brackets removed) and
 * *port; -1 after reporting. */
static int parse_dest(struct parser *ps, struct cursor *c, char **host, uint16_t *port)
{
	char tok[PB_NET_HOST_MAX + 16], h[PB_NET_HOST_MAX + 1];
	size_t col = c->pos, n = strcspn(c->s + col, " \t");
	const char *colon, *p;
	unsigned char bin[16];
	bool bracket;

	if (n == 0) {
		ERR_AT(ps, c, col, "@network connect needs a destination HOST:PORT, such as api.example.org:443 "
		                   "or [::1]:8080");
		return -1;
	}
	if (n >= sizeof(tok)) {
		ERR_AT(ps, c, col, "@network connect: a host name is at most %d bytes", PB_NET_HOST_MAX);
		return -1;
	}
	memcpy(tok, c->s + col, n);
	tok[n] = '\0';
	bracket = tok[0] == '[';
	if (bracket) {
		const char *close = strchr(tok, ']');
		if (!close) {
			ERR_AT(ps, c, col, "'%s': an IPv6 address in brackets needs its ']'", tok);
			return -1;
		}
		colon = close[1] == ':' ? close + 1 : NULL;
		if (!colon) {
			ERR_AT(ps, c, col + (size_t)(close - tok) + 1, "@network connect needs a port: %.*s:PORT",
			       (int)(close - tok + 1), tok);
			return -1;
		}
		/* tok holds a port and brackets more than h: the host alone must fit. */
		if ((size_t)(close - tok - 1) > PB_NET_HOST_MAX) {
			ERR_AT(ps, c, col + 1, "@network connect: a host is at most %d bytes", PB_NET_HOST_MAX);
			return -1;
		}
		memcpy(h, tok + 1, (size_t)(close - tok - 1));
		h[close - tok - 1] = '\0';
		if (inet_pton(AF_INET6, h, bin) != 1) {
			ERR_AT(ps, c, col + 1, "'%s' is not an IPv6 address", h);
			return -1;
		}
	} else {
		colon = strrchr(tok, ':');
		if (colon && memchr(tok, ':', (size_t)(colon - tok))) {
			ERR_AT(ps, c, col, "'%s': an IPv6 address is written in brackets, as [::1]:8080", tok);
			return -1;
		}
		if (!colon) {
			ERR_AT(ps, c, col + n, "@network connect needs a port: %s:PORT", tok);
			return -1;
		}
		if ((size_t)(colon - tok) > PB_NET_HOST_MAX) {
			ERR_AT(ps, c, col, "@network connect: a host name is at most %d bytes", PB_NET_HOST_MAX);
			return -1;
		}
		memcpy(h, tok, (size_t)(colon - tok));
		h[colon - tok] = '\0';
		if (inet_pton(AF_INET, h, bin) != 1 && !host_name_valid(h)) {
			ERR_AT(ps, c, col, "'%s' is neither a host name nor an IPv4 address", h);
			return -1;
		}
	}
	unsigned long v = 0;
	for (p = colon + 1; *p >= '0' && *p <= '9' && v <= 65535; p++)
		v = v * 10 + (unsigned long)(*p - '0');
	if (p == colon + 1 || *p || v == 0 || v > 65535) {
		ERR_AT(ps, c, col + (size_t)(colon - tok) + 1, "'%s' is not a port (1 to 65535)", colon + 1);
		return -1;
	}
	c->pos += n;
	*port = (uint16_t)v;
	if (!(*host = strdup(h))) {
		policy_nomem(ps, c);
		return -1;
	}
	return 0;
}

static void network_connect(struct parser *ps, struct cursor *c, size_t col, struct pb_sandbox *own)
{
	char *host;
	uint16_t port;
	size_t dcol;

	if (own->network_where.file && own->network != PB_NETWORK_CONNECT) {
		ERR_AT(ps, c, col - 1, "@network connect cannot be combined with @network %s (line %u): the "
		                       "one gives the host's network, the other only some destinations",
		       own->network == PB_NETWORK_HOST ? "host" : "none", own->network_where.line);
		return;
	}
	cursor_skip_ws(c);
	dcol = c->pos;
	if (parse_dest(ps, c, &host, &port) < 0)
		return;
	if (!cursor_at_end(c)) {
		ERR_AT(ps, c, c->pos, "unexpected text after @network connect %s (one destination a line)",
		       host);
		free(host);
		return;
	}
	const struct pb_dest *first = dest_find(own, host, port);
	if (first) {
		ERR_AT(ps, c, dcol, "a second @network connect %s:%u in this file (the first is at line %u)",
		       host, (unsigned)port, first->where.line);
		free(host);
		return;
	}
	if (own->ndests >= PB_NET_DESTS_MAX) {
		ERR_AT(ps, c, dcol, "more than %d @network connect destinations in one file", PB_NET_DESTS_MAX);
		free(host);
		return;
	}
	const struct pb_where where = { c->file, c->line, (unsigned)dcol + 1 };
	if (!dest_push(own, host, port, &where)) {
		free(host);
		policy_nomem(ps, c);
		return;
	}
	if (!own->network_where.file)
		own->network_where = (struct pb_where){ c->file, c->line, (unsigned)col };
	own->network = PB_NETWORK_CONNECT;
}

/* `@network refresh TIME`: whole seconds, minutes or hours (30s, 5m, 1h). */
static void network_refresh(struct parser *ps, struct cursor *c, struct pb_sandbox *own)
{
	size_t tcol, n;
	unsigned long v = 0, scale = 1;
	const char *t, *p;

	cursor_skip_ws(c);
	tcol = c->pos;
	t = c->s + tcol;
	n = strcspn(t, " \t");
	for (p = t; p < t + n && *p >= '0' && *p <= '9' && v <= PB_NET_REFRESH_MAX; p++)
		v = v * 10 + (unsigned long)(*p - '0');
	if (p < t + n && p + 1 == t + n && (*p == 's' || *p == 'm' || *p == 'h')) {
		scale = *p == 's' ? 1 : *p == 'm' ? 60
		                                  : 3600;
		p++;
	}
	if (n == 0 || p == t || p != t + n || v > PB_NET_REFRESH_MAX || v * scale < PB_NET_REFRESH_MIN ||
	    v * scale > PB_NET_REFRESH_MAX) {
		ERR_AT(ps, c, tcol, "@network refresh takes a time from 1s to 24h, such as 30s, 5m or 1h; not '%.*s'",
		       (int)(n < 64 ? n : 64), t);
		return;
	}
	c->pos += n;
	if (!cursor_at_end(c)) {
		ERR_AT(ps, c, c->pos, "unexpected text after @network refresh");
		return;
	}
	if (own->net_refresh_where.file) {
		ERR_AT(ps, c, tcol, "a second @network refresh in this file (the first is at line %u)",
		       own->net_refresh_where.line);
		return;
	}
	own->net_refresh = (unsigned)(v * scale);
	own->net_refresh_where = (struct pb_where){ c->file, c->line, (unsigned)tcol + 1 };
}

unsigned pb_net_refresh_seconds(const struct pb_sandbox *sb)
{
	return sb->net_refresh_where.file ? sb->net_refresh : PB_NET_REFRESH_DEFAULT;
}

void sandbox_network(struct parser *ps, struct cursor *c, size_t col, struct pb_sandbox *own)
{
	static const char *const choices[] = { "none", "host", "connect", "refresh" };
	char w[32], near[16] = "";
	size_t wcol, n;
	int v = -1;

	cursor_skip_ws(c);
	wcol = c->pos;
	n = cursor_word(c, w, sizeof(w));
	if (n == 0 || n >= sizeof(w)) {
		ERR_AT(ps, c, wcol, "@network needs none, host, connect HOST:PORT or refresh TIME");
		return;
	}
	c->pos += n;
	for (int i = 0; i < 4; i++) {
		if (!strcmp(w, choices[i]))
			v = i;
		else if (edit_distance(w, choices[i]) <= 2 && !*near)
			snprintf(near, sizeof(near), "%s", choices[i]);
	}
	if (v < 0) {
		if (*near)
			ERR_AT(ps, c, wcol, "@network takes none, host, connect HOST:PORT or refresh TIME, not '%s'; did "
			                    "you mean '%s'?",
			       w, near);
		else
			ERR_AT(ps, c, wcol, "@network takes none, host, connect HOST:PORT or refresh TIME, not '%s'", w);
		return;
	}
	if (v == 2) {
		network_connect(ps, c, col, own);
		return;
	}
	if (v == 3) {
		network_refresh(ps, c, own);
		return;
	}
	if (!cursor_at_end(c)) {
		ERR_AT(ps, c, c->pos, "unexpected text after @network %s", w);
		return;
	}
	if (own->network_where.file) {
		if (own->network == PB_NETWORK_CONNECT)
			ERR_AT(ps, c, col - 1, "@network %s cannot be combined with @network connect (line %u): the "
			                       "one gives %s, the other only some destinations",
			       w, own->network_where.line, v == 1 ? "the host's network" : "none");
		else
			ERR_AT(ps, c, col - 1, "a second @network in this file (the first is at line %u)",
			       own->network_where.line);
		return;
	}
	own->network_where = (struct pb_where){ c->file, c->line, (unsigned)col };
	own->network = (enum pb_network)v;
}

/* ---- resolving and judging ------------------------------------------------ */

static bool same_addr(const struct pb_net_addr *a, const struct pb_net_addr *b)
{
	return a->family == b->family && a->port == b->port &&
	       !memcmp(a->addr, b->addr, a->family == AF_INET ? 4 : 16);
}

static int add_addr(struct pb_dest *d, const struct pb_net_addr *a)
{
	for (size_t i = 0; i < d->naddrs; i++)
		if (same_addr(&d->addrs[i], a))
			return 0;
	if (d->naddrs >= PB_NET_ADDRS_MAX)
		return 0;
	struct pb_net_addr *v = realloc(d->addrs, (d->naddrs + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	d->addrs = v;
	v[d->naddrs++] = *a;
	return 0;
}

int pb_net_resolve_dests(struct pb_dest *dests, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct pb_dest *d = &dests[i];
		struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res = NULL;
		int r;

		free(d->addrs);
		d->addrs = NULL;
		d->naddrs = 0;
		d->resolve_error = NULL;
		r = getaddrinfo(d->host, NULL, &hints, &res);
		if (r != 0) {
			d->resolve_error = gai_strerror(r);
			continue;
		}
		for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
			struct pb_net_addr a;
			if (pb_net_addr_parse(ai->ai_addr, ai->ai_addrlen, &a) < 0)
				continue;
			a.port = d->port;
			if (add_addr(d, &a) < 0) {
				freeaddrinfo(res);
				return -ENOMEM;
			}
		}
		freeaddrinfo(res);
		if (d->naddrs == 0)
			d->resolve_error = "no IPv4 or IPv6 address";
	}
	return 0;
}

int pb_policy_resolve(struct pb_policy *p)
{
	struct pb_sandbox *sb = &p->sandbox;

	if (sb->network != PB_NETWORK_CONNECT)
		return 0;
	return pb_net_resolve_dests(sb->dests, sb->ndests);
}

int pb_net_addr_parse(const void *sa, size_t len, struct pb_net_addr *out)
{
	sa_family_t family;
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	memset(out, 0, sizeof(*out));
	if (len < sizeof(family))
		return -EINVAL;
	memcpy(&family, sa, sizeof(family));
	if (family == AF_INET) {
		struct sockaddr_in in;
		if (len < sizeof(in))
			return -EINVAL;
		memcpy(&in, sa, sizeof(in));
		out->family = AF_INET;
		memcpy(out->addr, &in.sin_addr, 4);
		out->port = ntohs(in.sin_port);
		return 0;
	}
	if (family == AF_INET6) {
		struct sockaddr_in6 in6;
		/* The kernel takes the older 24-byte form without a scope id. */
		if (len < 24)
			return -EINVAL;
		memset(&in6, 0, sizeof(in6));
		memcpy(&in6, sa, len < sizeof(in6) ? len : sizeof(in6));
		out->port = ntohs(in6.sin6_port);
		if (!memcmp(in6.sin6_addr.s6_addr, mapped, sizeof(mapped))) {
			out->family = AF_INET;
			memcpy(out->addr, in6.sin6_addr.s6_addr + 12, 4);
		} else {
			out->family = AF_INET6;
			memcpy(out->addr, in6.sin6_addr.s6_addr, 16);
		}
		return 0;
	}
	return -EAFNOSUPPORT;
}

const struct pb_dest *pb_net_allowed(const struct pb_sandbox *sb, const struct pb_net_addr *a)
{
	if (sb->network != PB_NETWORK_CONNECT)
		return NULL;
	for (size_t i = 0; i < sb->ndests; i++)
		for (size_t k = 0; k < sb->dests[i].naddrs; k++)
			if (same_addr(&sb->dests[i].addrs[k], a))
				return &sb->dests[i];
	return NULL;
}

const char *pb_net_addr_format(const struct pb_net_addr *a, char *buf, size_t len)
{
	char text[INET6_ADDRSTRLEN] = "?";

	inet_ntop(a->family == AF_INET ? AF_INET : AF_INET6, a->addr, text, sizeof(text));
	snprintf(buf, len, a->family == AF_INET ? "%s:%u" : "[%s]:%u", text, (unsigned)a->port);
	return buf;
}

bool pb_net_host_is_literal(const char *host)
{
	unsigned char bin[16];

	return inet_pton(AF_INET, host, bin) == 1 || inet_pton(AF_INET6, host, bin) == 1;
}

char *pb_net_hosts_text(const struct pb_sandbox *sb)
{
	static const char base[] = "127.0.0.1\tlocalhost\n127.0.1.1\tplugbox\n::1\tlocalhost ip6-localhost ip6-loopback\n";
	size_t cap = sizeof(base), len = sizeof(base) - 1;
	char *text;

	for (size_t i = 0; sb->network == PB_NETWORK_CONNECT && i < sb->ndests; i++)
		cap += sb->dests[i].naddrs * (INET6_ADDRSTRLEN + strlen(sb->dests[i].host) + 2);
	if (!(text = malloc(cap)))
		return NULL;
	memcpy(text, base, sizeof(base));
	for (size_t i = 0; sb->network == PB_NETWORK_CONNECT && i < sb->ndests; i++) {
		const struct pb_dest *d = &sb->dests[i];
		/* A literal needs no line; a name gets one per address. */
		if (pb_net_host_is_literal(d->host))
			continue;
		for (size_t k = 0; k < d->naddrs; k++) {
			char a[INET6_ADDRSTRLEN];
			inet_ntop(d->addrs[k].family, d->addrs[k].addr, a, sizeof(a));
			len += (size_t)snprintf(text + len, cap - len, "%s\t%s\n", a, d->host);
		}
	}
	return text;
}
