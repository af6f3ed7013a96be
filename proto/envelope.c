/* envelope.c - turning untrusted bytes into a plugbox.Envelope.
 *
 * This is where every byte a worker sends is first interpreted, in two
 * passes. pb_envelope_check walks the protobuf wire format against the
 * schema (taken from the protobuf-c descriptors, so it cannot drift from
 * proto/plugbox.proto) without allocating or recursing, and bounds what
 * protobuf-c's unpacker would otherwise do without limit: it recurses once per
 * nesting level and allocates once per sub-message. Only then is the envelope
 * unpacked and checked for the rules the wire format cannot express.
 *
 * We write both ends of the protocol with protobuf-c, so anything it would
 * never produce is refused rather than tolerated: unknown fields, wire types
 * other than the field's own, a singular field given twice (which protobuf-c
 * would merge, at a cost quadratic in the number of repeats), two members of
 * one oneof, NUL bytes inside strings (the C view of a string would silently
 * end there). The exception is a Value's string, which may hold U+0000: C
 * sees it as bytes and a length (Makefile.am), and the decoder NUL-terminates
 * it and checks its UTF-8 here.
 *
 * Clients of `plugbox serve` are another matter: they are written in any
 * language, against any later version of the schema, and protobuf's promise
 * is that a reader skips the fields it does not know. PB_DECODE_LENIENT (the
 * control socket only; workers stay strict) skips unknown fields of the
 * four wire types protobuf-c can hold, each counted against the same bound
 * as a sub-message, and lets an envelope arrive without a body this schema
 * names, so that the daemon can say which body it did not know.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"
#include "proto/value.h"

/* Deepest message nesting a valid envelope has: the envelope, its body, a
 * keyword argument, then per Value level at most a Value, a ValueMap and a
 * ValueMapEntry. Nothing legal comes close to the slack. */
#define MAX_NESTING (3 * PB_VALUE_MAX_DEPTH + 8)


/* --- pass 1: the wire format --------------------------------------------- */

struct scan_frame {
	const ProtobufCMessageDescriptor *desc;
	size_t end;           /* offset just past this message */
	uint64_t seen;        /* singular fields met so far, by field index */
	unsigned value_depth; /* Values on the path down to here */
};

struct scan {
	const uint8_t *buf;
	size_t items; /* sub-messages, repeated elements and skipped unknown fields */
	char *why;
	size_t why_len;
};

static int read_varint(struct scan *s, size_t *pos, size_t end, unsigned max_bytes,
                       uint64_t *out)
{
	size_t start = *pos;
	uint64_t v = 0;
	unsigned i;

	for (i = 0; i < max_bytes; i++) {
		uint8_t b;

		if (start + i >= end)
			return pb_fail(s->why, s->why_len, -EBADMSG,
			               "truncated varint at byte %zu", start);
		b = s->buf[start + i];
		/* The tenth byte holds bit 63 only. */
		if (i == 9 && b > 1 && !(b & 0x80))
			return pb_fail(s->why, s->why_len, -EBADMSG,
			               "varint overflows 64 bits at byte %zu", start);
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			*pos = start + i + 1;
			*out = v;
			return 0;
		}
	}
	return pb_fail(s->why, s->why_len, -EBADMSG,
	               "varint longer than %u bytes at byte %zu", max_bytes, start);
}

static int count_item(struct scan *s, size_t n)
{
	if (n > PB_ENVELOPE_MAX_MESSAGES - s->items)
		return pb_fail(s->why, s->why_len, -E2BIG,
		               "more than %u messages or repeated elements",
		               PB_ENVELOPE_MAX_MESSAGES);
	s->items += n;
	return 0;
}

static ProtobufCWireType natural_wire_type(ProtobufCType type)
{
	switch (type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_BOOL:
	case PROTOBUF_C_TYPE_ENUM:
		return PROTOBUF_C_WIRE_TYPE_VARINT;
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_FLOAT:
		return PROTOBUF_C_WIRE_TYPE_32BIT;
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return PROTOBUF_C_WIRE_TYPE_64BIT;
	default:
		return PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
	}
}

/* A packed run of repeated scalars, as protobuf-c's unpacker would read it. */
static int check_packed(struct scan *s, const ProtobufCMessageDescriptor *desc,
                        const ProtobufCFieldDescriptor *f, size_t pos, size_t end)
{
	ProtobufCWireType wt = natural_wire_type(f->type);
	size_t n = 0;
	int rc;

	if (wt == PROTOBUF_C_WIRE_TYPE_32BIT || wt == PROTOBUF_C_WIRE_TYPE_64BIT) {
		size_t size = wt == PROTOBUF_C_WIRE_TYPE_32BIT ? 4 : 8;

		if ((end - pos) % size != 0)
			return pb_fail(s->why, s->why_len, -EBADMSG,
			               "packed %s.%s is not a whole number of elements at byte %zu",
			               desc->name, f->name, pos);
		return count_item(s, (end - pos) / size);
	}
	while (pos < end) {
		size_t at = pos;
		uint64_t v;

		rc = read_varint(s, &pos, end, 10, &v);
		if (rc < 0)
			return rc;
		/* protobuf-c reads packed bools one byte each. */
		if (f->type == PROTOBUF_C_TYPE_BOOL && (pos - at != 1 || v > 1))
			return pb_fail(s->why, s->why_len, -EBADMSG,
			               "bad packed bool in %s.%s at byte %zu", desc->name, f->name, at);
		n++;
	}
	return count_item(s, n);
}

/* A singular field may appear once, and a oneof may have one member present:
 * that is all protobuf-c ever writes, and it keeps the unpacker from merging. */
static int check_singular(struct scan *s, struct scan_frame *top,
                          const ProtobufCFieldDescriptor *f, size_t at)
{
	size_t idx = (size_t)(f - top->desc->fields), j;

	if (idx >= 64)
		return 0; /* no such message in our schema; protobuf-c copes */
	if (top->seen & (UINT64_C(1) << idx))
		return pb_fail(s->why, s->why_len, -EBADMSG, "%s.%s given twice at byte %zu",
		               top->desc->name, f->name, at);
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		for (j = 0; j < top->desc->n_fields && j < 64; j++) {
			const ProtobufCFieldDescriptor *g = &top->desc->fields[j];

			if ((top->seen & (UINT64_C(1) << j)) &&
			    (g->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
			    g->quantifier_offset == f->quantifier_offset)
				return pb_fail(s->why, s->why_len, -EBADMSG,
				               "%s has both %s and %s at byte %zu",
				               top->desc->name, g->name, f->name, at);
		}
	}
	top->seen |= UINT64_C(1) << idx;
	return 0;
}

/* An unknown field, in lenient mode: skipped over (protobuf-c keeps a copy
 * of it, which the item count bounds). Groups (wire types 3 and 4) are
 * refused: proto3 has none and protobuf-c cannot unpack them. */
static int skip_unknown(struct scan *s, const struct scan_frame *top, uint64_t key, size_t at,
                        size_t *pos)
{
	unsigned wt = key & 7;
	uint64_t n;
	int rc;

	if (key >> 3 == 0)
		return pb_fail(s->why, s->why_len, -EBADMSG, "field number 0 in %s at byte %zu",
		               top->desc->name, at);
	switch (wt) {
	case PROTOBUF_C_WIRE_TYPE_VARINT:
		rc = read_varint(s, pos, top->end, 10, &n);
		break;
	case PROTOBUF_C_WIRE_TYPE_64BIT:
	case PROTOBUF_C_WIRE_TYPE_32BIT:
		n = wt == PROTOBUF_C_WIRE_TYPE_64BIT ? 8 : 4;
		rc = top->end - *pos < n ? -1 : 0;
		if (rc == 0)
			*pos += n;
		break;
	case PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED:
		rc = read_varint(s, pos, top->end, 5, &n);
		if (rc < 0)
			return rc;
		rc = n > top->end - *pos ? -1 : 0;
		if (rc == 0)
			*pos += n;
		break;
	default:
		return pb_fail(s->why, s->why_len, -EBADMSG,
		               "unknown field %llu in %s at byte %zu has wire type %u, which protobuf-c cannot skip",
		               (unsigned long long)(key >> 3), top->desc->name, at, wt);
	}
	if (rc == -1)
		return pb_fail(s->why, s->why_len, -EBADMSG, "unknown field %llu in %s at byte %zu overruns its message",
		               (unsigned long long)(key >> 3), top->desc->name, at);
	if (rc < 0)
		return rc;
	return count_item(s, 1);
}

uint64_t pb_envelope_peek_id(const uint8_t *buf, size_t len)
{
	struct scan s = { .buf = buf };
	struct scan_frame top = { &plugbox__envelope__descriptor, len, 0, 0 };
	size_t pos = 0;

	while (pos < len) {
		size_t at = pos;
		uint64_t key, v;

		if (read_varint(&s, &pos, len, 5, &key) < 0)
			return 0;
		if (key == (1u << 3 | PROTOBUF_C_WIRE_TYPE_VARINT))
			return read_varint(&s, &pos, len, 10, &v) < 0 ? 0 : v;
		/* Every field is skipped alike, known or not; a malformed one
		 * hides the id. */
		s.items = 0;
		if (skip_unknown(&s, &top, key, at, &pos) < 0)
			return 0;
	}
	return 0;
}

int pb_envelope_check(const uint8_t *buf, size_t len, char *why, size_t why_len)
{
	return pb_envelope_check_opts(buf, len, 0, why, why_len);
}

int pb_envelope_check_opts(const uint8_t *buf, size_t len, unsigned flags, char *why, size_t why_len)
{
	struct scan_frame stack[MAX_NESTING];
	struct scan s = { .buf = buf, .items = 0, .why = why, .why_len = why_len };
	size_t sp = 0, pos = 0;
	int rc;

	if (why && why_len > 0)
		why[0] = '\0';
	/* protobuf-c does its length arithmetic in 32-bit ints. */
	if (len > INT_MAX)
		return pb_fail(why, why_len, -EBADMSG, "envelope of %zu bytes is too large", len);
	stack[sp++] = (struct scan_frame){ &plugbox__envelope__descriptor, len, 0, 0 };
	while (sp > 0) {
		struct scan_frame *top = &stack[sp - 1];
		const ProtobufCFieldDescriptor *f = NULL;
		ProtobufCWireType natural;
		size_t at = pos;
		uint64_t key = 0, n = 0; /* set by the scanners, or pb_fail returns first */
		unsigned wt;

		if (pos == top->end) {
			sp--;
			continue;
		}
		/* protobuf-c reads tags and lengths in at most 5 bytes. */
		rc = read_varint(&s, &pos, top->end, 5, &key);
		if (rc < 0)
			return rc;
		wt = key & 7;
		if (key >> 3 > 0 && key >> 3 <= 0x1FFFFFFF)
			f = protobuf_c_message_descriptor_get_field(top->desc, (unsigned)(key >> 3));
		if (!f && (flags & PB_DECODE_LENIENT)) {
			rc = skip_unknown(&s, top, key, at, &pos);
			if (rc < 0)
				return rc;
			continue;
		}
		if (!f)
			return pb_fail(why, why_len, -EBADMSG, "unknown field %llu in %s at byte %zu",
			               (unsigned long long)(key >> 3), top->desc->name, at);
		natural = natural_wire_type(f->type);
		if (wt != natural &&
		    !(f->label == PROTOBUF_C_LABEL_REPEATED &&
		      natural != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED &&
		      wt == PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED))
			return pb_fail(why, why_len, -EBADMSG, "wire type %u not allowed for %s.%s at byte %zu",
			               wt, top->desc->name, f->name, at);
		if (f->label != PROTOBUF_C_LABEL_REPEATED) {
			rc = check_singular(&s, top, f, at);
			if (rc < 0)
				return rc;
		}

		switch (wt) {
		case PROTOBUF_C_WIRE_TYPE_VARINT:
			rc = read_varint(&s, &pos, top->end, 10, &n);
			if (rc < 0)
				return rc;
			break;
		case PROTOBUF_C_WIRE_TYPE_64BIT:
		case PROTOBUF_C_WIRE_TYPE_32BIT: {
			size_t size = wt == PROTOBUF_C_WIRE_TYPE_64BIT ? 8 : 4;

			if (top->end - pos < size)
				return pb_fail(why, why_len, -EBADMSG, "truncated %s.%s at byte %zu",
				               top->desc->name, f->name, at);
			pos += size;
			break;
		}
		default: /* length-delimited; the wire type check left nothing else */
			rc = read_varint(&s, &pos, top->end, 5, &n);
			if (rc < 0)
				return rc;
			if (n > top->end - pos)
				return pb_fail(why, why_len, -EBADMSG,
				               "%s.%s at byte %zu overruns its message",
				               top->desc->name, f->name, at);
			if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
				unsigned vd = top->value_depth;

				if (f->descriptor == &plugbox__value__descriptor &&
				    ++vd > PB_VALUE_MAX_DEPTH)
					return pb_fail(why, why_len, -ELOOP,
					               "value nested deeper than %d levels at byte %zu",
					               PB_VALUE_MAX_DEPTH, at);
				rc = count_item(&s, 1);
				if (rc < 0)
					return rc;
				if (sp == MAX_NESTING)
					return pb_fail(why, why_len, -ELOOP,
					               "messages nested deeper than %d levels at byte %zu",
					               MAX_NESTING, at);
				/* Descend: pos is now the first byte of the child. */
				stack[sp++] = (struct scan_frame){ f->descriptor, pos + n, 0, vd };
				continue;
			}
			if (f->type == PROTOBUF_C_TYPE_STRING && memchr(buf + pos, '\0', n))
				return pb_fail(why, why_len, -EBADMSG, "NUL byte in %s.%s at byte %zu",
				               top->desc->name, f->name, at);
			if (natural != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED) {
				rc = check_packed(&s, top->desc, f, pos, pos + n);
				if (rc < 0)
					return rc;
				pos += n;
				continue;
			}
			pos += n;
			break;
		}
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			rc = count_item(&s, 1);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

/* --- pass 2: what the wire format cannot say ------------------------------ *
 * Generic over the descriptors, and the rules are: every string is valid
 * UTF-8, every enum value is one the schema names, every oneof has a member
 * set (Envelope.body, Value.kind, HostResult.outcome) and every singular
 * sub-message is present (Result.value, KeywordArgument.value, a map entry's
 * key and value). Our protocol has no optional sub-messages; one added later
 * must be exempted here. Recursion is one level per message, and pass 1 has
 * bounded message nesting to MAX_NESTING. */

static const void *field_ptr(const ProtobufCMessage *m, unsigned offset)
{
	return (const char *)m + offset;
}

static uint32_t oneof_case(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	uint32_t c;

	memcpy(&c, field_ptr(m, f->quantifier_offset), sizeof(c));
	return c;
}

static int validate_message(const ProtobufCMessage *m, unsigned nesting, unsigned flags,
                            char *why, size_t why_len);

/* Value.string_value (field 5): `bytes` to protobuf-c, a UTF-8 string to
 * the protocol. */
static bool is_value_string(const ProtobufCFieldDescriptor *f)
{
	return f == protobuf_c_message_descriptor_get_field(&plugbox__value__descriptor, 5);
}

static int validate_element(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                            const void *elem, unsigned nesting, unsigned flags, char *why, size_t why_len)
{
	const char *str;
	const ProtobufCMessage *sub;
	int e;

	if (is_value_string(f)) {
		const ProtobufCBinaryData *s = elem;
		if (s->len > 0 && !pb_utf8_valid((const char *)s->data, s->len))
			return pb_fail(why, why_len, -EBADMSG, "invalid UTF-8 in %s.%s",
			               m->descriptor->name, f->name);
		return 0;
	}
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING:
		memcpy(&str, elem, sizeof(str));
		if (str && !pb_utf8_valid(str, strlen(str)))
			return pb_fail(why, why_len, -EBADMSG, "invalid UTF-8 in %s.%s",
			               m->descriptor->name, f->name);
		return 0;
	case PROTOBUF_C_TYPE_ENUM:
		memcpy(&e, elem, sizeof(e));
		if (!protobuf_c_enum_descriptor_get_value(f->descriptor, e))
			return pb_fail(why, why_len, -EBADMSG, "%s.%s has unknown value %d",
			               m->descriptor->name, f->name, e);
		return 0;
	case PROTOBUF_C_TYPE_MESSAGE:
		memcpy(&sub, elem, sizeof(sub));
		if (!sub)
			return pb_fail(why, why_len, -EBADMSG, "%s.%s missing",
			               m->descriptor->name, f->name);
		return validate_message(sub, nesting + 1, flags, why, why_len);
	default:
		return 0;
	}
}

static int oneof_unset(const ProtobufCMessage *m, char *why, size_t why_len)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	if (d == &plugbox__envelope__descriptor)
		return pb_fail(why, why_len, -EBADMSG, "envelope body not set");
	if (d == &plugbox__value__descriptor)
		return pb_fail(why, why_len, -EBADMSG, "value kind not set");
	return pb_fail(why, why_len, -EBADMSG, "%s has no oneof member set", d->name);
}

/* What protobuf-c kept of the unknown fields of a message below the
 * envelope goes: the arguments of a client's Call are handed to a worker as
 * they are, protobuf-c would pack those fields along, and the worker, which
 * decodes strictly, would take them for an attack. */
static void drop_unknown(const ProtobufCMessage *cm)
{
	ProtobufCMessage *m = (ProtobufCMessage *)cm;

	for (unsigned i = 0; i < m->n_unknown_fields; i++)
		free(m->unknown_fields[i].data);
	free(m->unknown_fields);
	m->unknown_fields = NULL;
	m->n_unknown_fields = 0;
}

static int validate_message(const ProtobufCMessage *m, unsigned nesting, unsigned flags,
                            char *why, size_t why_len)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	unsigned i, j;
	int rc;

	if (nesting > 0 && m->n_unknown_fields)
		drop_unknown(m);

	if (nesting > MAX_NESTING)
		return pb_fail(why, why_len, -ELOOP, "messages nested deeper than %d levels",
		               MAX_NESTING);
	for (i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];

		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			uint32_t c = oneof_case(m, f);

			/* Judge each oneof once, at its first member. */
			for (j = 0; j < i; j++)
				if ((d->fields[j].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
				    d->fields[j].quantifier_offset == f->quantifier_offset)
					break;
			/* Lenient: an envelope whose body this schema does not
			 * name is the caller's to refuse, by name. */
			if (j == i && c == 0 && !(nesting == 0 && (flags & PB_DECODE_LENIENT)))
				return oneof_unset(m, why, why_len);
			if (c != f->id)
				continue;
		}
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n, k, size;
			const char *arr;

			memcpy(&n, field_ptr(m, f->quantifier_offset), sizeof(n));
			memcpy(&arr, field_ptr(m, f->offset), sizeof(arr));
			if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_ENUM &&
			    f->type != PROTOBUF_C_TYPE_MESSAGE)
				continue;
			size = f->type == PROTOBUF_C_TYPE_ENUM ? sizeof(int) : sizeof(void *);
			for (k = 0; k < n; k++) {
				rc = validate_element(m, f, arr + k * size, nesting, flags, why, why_len);
				if (rc < 0)
					return rc;
			}
		} else {
			rc = validate_element(m, f, field_ptr(m, f->offset), nesting, flags, why, why_len);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

/* Every block one byte longer and zeroed: a Value's string (bytes to
 * protobuf-c) is then followed by a NUL, as one built by pbv_new_string is.
 * Freed by free(), as protobuf-c's default allocator's blocks are. */
static void *alloc_terminated(void *data, size_t size)
{
	(void)data;
	return size < SIZE_MAX ? calloc(1, size + 1) : NULL;
}

static void free_terminated(void *data, void *p)
{
	(void)data;
	free(p);
}

static ProtobufCAllocator terminated = { alloc_terminated, free_terminated, NULL };

int pb_envelope_decode(const uint8_t *buf, size_t len, Plugbox__Envelope **out,
                       char *why, size_t why_len)
{
	return pb_envelope_decode_opts(buf, len, 0, out, why, why_len);
}

int pb_envelope_decode_opts(const uint8_t *buf, size_t len, unsigned flags, Plugbox__Envelope **out,
                            char *why, size_t why_len)
{
	ProtobufCMessage *m;
	int rc;

	*out = NULL;
	/* The common small envelopes in one pass (envelope_fast.c), which
	 * takes only what the general path below would take. */
	if (!(flags & (PB_DECODE_LENIENT | PB_DECODE_GENERAL)) && pb_envelope_decode_small(buf, len, out) == 1) {
		if (why && why_len)
			why[0] = '\0';
		return 0;
	}
	rc = pb_envelope_check_opts(buf, len, flags, why, why_len);
	if (rc < 0)
		return rc;
	m = protobuf_c_message_unpack(&plugbox__envelope__descriptor, &terminated, len, buf);
	if (!m)
		/* Pass 1 accepts only what protobuf-c can read, so this is
		 * most likely memory; still the worker's envelope is unusable. */
		return pb_fail(why, why_len, -EBADMSG, "protobuf-c could not unpack the envelope");
	rc = validate_message(m, 0, flags, why, why_len);
	if (rc < 0) {
		protobuf_c_message_free_unpacked(m, NULL);
		return rc;
	}
	*out = (Plugbox__Envelope *)m;
	return 0;
}

void pb_envelope_free(Plugbox__Envelope *env)
{
	/* the common small ones without protobuf-c's descriptor walk */
	if (env && !pb_envelope_free_small(env))
		protobuf_c_message_free_unpacked(&env->base, NULL);
}

/* How much of s to keep within max bytes, not splitting a character. */
static size_t keep_whole(const char *s, size_t len, size_t max)
{
	size_t keep = len < max ? len : max;

	while (keep > 0 && keep < len && ((unsigned char)s[keep] & 0xC0) == 0x80)
		keep--;
	return keep;
}

void pb_error_cut(Plugbox__Error *er, char cut[PB_ERROR_CUT_BUF])
{
	const char *m = er->message ? er->message : "", *t = er->type ? er->type : "";
	size_t len = strlen(m), keep = keep_whole(m, len, PB_ERROR_CUT);
	size_t tlen = strlen(t), tkeep = keep_whole(t, tlen, PB_ERROR_TYPE_CUT);
	char *type = cut + PB_ERROR_CUT + 128;

	snprintf(cut, PB_ERROR_CUT + 128,
	         "%.*s... (cut: the error's message and traceback are larger than a frame may be, 16 MiB)", (int)keep,
	         m);
	er->message = cut;
	er->traceback = (char *)"";
	if (tkeep < tlen) {
		memcpy(type, t, tkeep);
		type[tkeep] = '\0';
		er->type = type;
	}
}
