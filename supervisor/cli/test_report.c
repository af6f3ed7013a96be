/* test_report.c - JUnit XML and TAP reports (test_report.h). Everything a
 * case holds is escaped on the way out, never trusted. */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/test_report.h"

struct test_case {
	char *classname, *name, *message, *detail;
	enum pb_case_status status;
};

struct pb_test_report {
	char *suite, *classname;
	struct test_case *v;
	size_t n, cap;
	bool nomem;
};

struct pb_test_report *pb_test_report_new(const char *suite, const char *classname)
{
	struct pb_test_report *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->suite = strdup(suite);
	r->classname = strdup(classname);
	if (!r->suite || !r->classname) {
		pb_test_report_free(r);
		return NULL;
	}
	return r;
}

static char *dup_or_null(const char *s, bool *nomem)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*nomem = true;
	return d;
}

void pb_test_report_add_in(struct pb_test_report *r, const char *classname, const char *name,
                           enum pb_case_status status, const char *message, const char *detail)
{
	struct test_case *c;

	if (r->nomem)
		return;
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 64;
		struct test_case *v = realloc(r->v, cap * sizeof(*v));
		if (!v) {
			r->nomem = true;
			return;
		}
		r->v = v;
		r->cap = cap;
	}
	c = &r->v[r->n++];
	*c = (struct test_case){ .status = status };
	c->classname = dup_or_null(classname ? classname : r->classname, &r->nomem);
	c->name = dup_or_null(name, &r->nomem);
	c->message = dup_or_null(message, &r->nomem);
	c->detail = dup_or_null(detail, &r->nomem);
}

void pb_test_report_add(struct pb_test_report *r, const char *name, enum pb_case_status status,
                        const char *message, const char *detail)
{
	pb_test_report_add_in(r, NULL, name, status, message, detail);
}

void pb_test_report_free(struct pb_test_report *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].classname);
		free(r->v[i].name);
		free(r->v[i].message);
		free(r->v[i].detail);
	}
	free(r->v);
	free(r->suite);
	free(r->classname);
	free(r);
}

/* The length of a well-formed UTF-8 character XML 1.0 may hold at s (no
 * overlong form, no surrogate, nothing past U+10FFFF, not U+FFFE/U+FFFF),
 * or 0. */
static size_t utf8_char(const unsigned char *s)
{
	uint32_t cp;
	size_t n;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff)
		return 0;
	return n;
}

/* s for XML text or an attribute value: markup escaped, newlines and tabs
 * kept in text (attr: as character references), everything else XML 1.0
 * cannot hold as \xNN. */
static void xml_escape(FILE *out, const char *s, bool attr)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		size_t n;
		switch (*p) {
		case '&':
			fputs("&amp;", out);
			p++;
			continue;
		case '<':
			fputs("&lt;", out);
			p++;
			continue;
		case '>':
			fputs("&gt;", out);
			p++;
			continue;
		case '"':
			fputs("&quot;", out);
			p++;
			continue;
		case '\'':
			fputs("&apos;", out);
			p++;
			continue;
		case '\n':
			fputs(attr ? "&#10;" : "\n", out);
			p++;
			continue;
		case '\t':
			fputs(attr ? "&#9;" : "\t", out);
			p++;
			continue;
		default: break;
		}
		n = *p < 0x20 || *p == 0x7f ? 0 : utf8_char(p);
		if (n == 0) {
			fprintf(out, "\\x%02x", *p);
			p++;
			continue;
		}
		fwrite(p, 1, n, out);
		p += n;
	}
}

/* For TAP: control characters and DEL as \xNN; in a name a '#' would
 * start a directive, so it is \#. */
static void tap_escape(FILE *out, const char *s, bool name)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			fprintf(out, "\\x%02x", *p);
		else if (name && (*p == '#' || *p == '\\'))
			fprintf(out, "\\%c", *p);
		else
			fputc(*p, out);
	}
}

/* "  KEY: |" and text as a YAML literal block (TAP 13's diagnostics), one
 * indented line per line of text. */
static void tap_block(FILE *out, const char *key, const char *text)
{
	fprintf(out, "  %s: |\n", key);
	while (*text) {
		size_t n = strcspn(text, "\n");
		char *line = strndup(text, n);
		fputs("    ", out);
		tap_escape(out, line ? line : "(out of memory)", false);
		fputc('\n', out);
		free(line);
		text += n + (text[n] == '\n');
	}
}

void pb_test_report_tap(const struct pb_test_report *r, FILE *out)
{
	fprintf(out, "TAP version 13\n1..%zu\n", r->n);
	for (size_t i = 0; i < r->n; i++) {
		const struct test_case *c = &r->v[i];
		fprintf(out, "%s %zu - ", c->status == PB_CASE_FAILED ? "not ok" : "ok", i + 1);
		tap_escape(out, c->name ? c->name : "", true);
		if (c->status == PB_CASE_SKIPPED) {
			fputs(" # SKIP ", out);
			tap_escape(out, c->message ? c->message : "", false);
		}
		fputc('\n', out);
		if (c->status != PB_CASE_FAILED)
			continue;
		fputs("  ---\n", out);
		tap_block(out, "message", c->message ? c->message : "");
		if (c->detail)
			tap_block(out, "detail", c->detail);
		fputs("  ...\n", out);
	}
}

static size_t count(const struct pb_test_report *r, enum pb_case_status s)
{
	size_t n = 0;
	for (size_t i = 0; i < r->n; i++)
		n += r->v[i].status == s;
	return n;
}

static void write_junit(const struct pb_test_report *r, FILE *out)
{
	size_t failures = count(r, PB_CASE_FAILED), skipped = count(r, PB_CASE_SKIPPED);

	fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"", out);
	xml_escape(out, r->suite, true);
	fprintf(out, "\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" skipped=\"%zu\">\n", r->n, failures, skipped);
	fputs("  <testsuite name=\"", out);
	xml_escape(out, r->suite, true);
	fprintf(out, "\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" skipped=\"%zu\">\n", r->n, failures, skipped);
	for (size_t i = 0; i < r->n; i++) {
		const struct test_case *c = &r->v[i];
		fputs("    <testcase classname=\"", out);
		xml_escape(out, c->classname ? c->classname : "", true);
		fputs("\" name=\"", out);
		xml_escape(out, c->name ? c->name : "", true);
		fputs("\">\n", out);
		if (c->status != PB_CASE_PASSED) {
			fputs(c->status == PB_CASE_FAILED ? "      <failure message=\"" : "      <skipped message=\"", out);
			xml_escape(out, c->message ? c->message : "", true);
			fputs("\">", out);
			xml_escape(out, c->detail ? c->detail : (c->message ? c->message : ""), false);
			fputs(c->status == PB_CASE_FAILED ? "</failure>\n" : "</skipped>\n", out);
		} else if (c->detail) {
			fputs("      <system-out>", out);
			xml_escape(out, c->detail, false);
			fputs("</system-out>\n", out);
		}
		fputs("    </testcase>\n", out);
	}
	fputs("  </testsuite>\n</testsuites>\n", out);
}

int pb_test_report_junit(const struct pb_test_report *r, const char *path)
{
	size_t len = strlen(path);
	char *tmp = malloc(len + 16);
	FILE *out;
	int err = 0;

	if (r->nomem || !tmp) {
		fprintf(stderr, "plugbox: %s: out of memory writing the report\n", path);
		free(tmp);
		return -1;
	}
	snprintf(tmp, len + 16, "%s.tmp%ld", path, (long)getpid());
	out = fopen(tmp, "w");
	if (!out) {
		fprintf(stderr, "plugbox: %s: cannot write the JUnit report: %s\n", tmp, strerror(errno));
		free(tmp);
		return -1;
	}
	write_junit(r, out);
	if (ferror(out))
		err = EIO;
	if (fclose(out) != 0 && !err)
		err = errno;
	if (!err && rename(tmp, path) != 0)
		err = errno;
	if (err) {
		fprintf(stderr, "plugbox: %s: cannot write the JUnit report: %s\n", path, strerror(err));
		unlink(tmp);
	}
	free(tmp);
	return err ? -1 : 0;
}
