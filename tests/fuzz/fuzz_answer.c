/* fuzz_answer.c - libFuzzer target for the answers of the helper workers
 * (supervisor/helpers/helper_run.c: pb_helper_answer_decode) and the
 * install judgement on top of it (install_run.c: pb_install_judge): the
 * bytes an unpacker or a compiler writes on its fd 4, which a hostile
 * wheel may control.
 *
 * Byte 0 of the input is the job: bit 0 whether probe lines are allowed,
 * bits 1-2 the mode (wheel, dir, version), bit 3 whether the plugin's name
 * is known ("demo"), bits 4-5 the helper's exit status (0, 1, 2, 70). The
 * rest is the answer. The decoder is checked against a model that cuts the
 * answer into lines and fields by hand: the same verdict (too long, bad,
 * or the same lines in the same order, probes and the deciding line); no
 * field holds a tab, a newline or a NUL, and every field points into the
 * decoder's own copy. The judgement must give one of its four statuses, a
 * message with no control character, and for an accepted unpack a valid
 * plugin name (the job's when known) and a version without spaces or
 * controls.
 *
 * With bit 7 of byte 0 set, the rest is instead the discovery scan's
 * answer (supervisor/helpers/scan.c: pb_scan_answer_decode) for the
 * plugins "a", "b" and "demo", the first (byte 0 & 3) of them: it must
 * keep every envelope or none, each kept one a Hello naming its plugin
 * within the bounds or an Error, with id i+1; a refusal says why.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "helpers/helper_run.h"
#include "helpers/scan.h"
#include "proto/frame.h"
#include "proto/protocol.h"
#include "proto/install.h"
#include "proto/names.h"

static bool printable(const char *s, bool allow_space)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f || (!allow_space && *p == ' '))
			return false;
		if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			return false;
	}
	return true;
}

static bool inside(const struct pb_helper_answer *a, const char *p)
{
	return p >= a->text && p <= a->text + sizeof(a->text) - 1;
}

/* The line `line` (len bytes, no newline) is l, field by field. */
static bool same_line(const struct pb_helper_line *l, const char *line, size_t len, const struct pb_helper_answer *a)
{
	size_t at = 0;

	for (unsigned i = 0; i < l->nfields; i++) {
		size_t n = strlen(l->field[i]);
		FUZZ_ASSERT(inside(a, l->field[i]) && !strpbrk(l->field[i], "\t\n"));
		if (at + n > len || memcmp(line + at, l->field[i], n) != 0)
			return false;
		at += n;
		if (i + 1 < l->nfields) {
			if (at >= len || line[at] != '\t')
				return false;
			at++;
		}
	}
	return at == len;
}

/* The model: lines cut by hand, each matched in order to the decoder's. */
static void check_decode(const uint8_t *s, size_t n, bool probes, int r, const struct pb_helper_answer *a)
{
	unsigned probe = 0, deciding = 0;
	size_t pos = 0;

	if (n > PB_INSTALL_RESULT_MAX) {
		FUZZ_ASSERT(r == -EMSGSIZE);
		return;
	}
	if (memchr(s, '\0', n) || (n > 0 && s[n - 1] != '\n')) {
		FUZZ_ASSERT(r == -EBADMSG);
		return;
	}
	FUZZ_ASSERT(r == 0 || r == -EBADMSG);
	bool bad = false;
	while (pos < n && !bad) {
		const char *line = (const char *)s + pos;
		size_t len = (size_t)((const uint8_t *)memchr(line, '\n', n - pos) - (const uint8_t *)line);
		unsigned tabs = 0;
		for (size_t i = 0; i < len; i++)
			tabs += line[i] == '\t';
		bool is_probe = probes && tabs >= 1 && len >= 6 && !memcmp(line, "probe\t", 6);
		if (tabs + 1 > PB_HELPER_FIELDS_MAX || (is_probe && probe == PB_INSTALL_MAX_PROBES) ||
		    (!is_probe && deciding == 1)) {
			bad = true;
			break;
		}
		if (r == 0)
			FUZZ_ASSERT(same_line(is_probe ? &a->probe[probe] : &a->last, line, len, a));
		if (is_probe)
			probe++;
		else
			deciding++;
		pos += len + 1;
	}
	FUZZ_ASSERT(bad == (r == -EBADMSG));
	if (r == 0)
		FUZZ_ASSERT(a->nprobes == probe && (a->last.nfields > 0) == (deciding == 1));
}

static void check_judge(const struct pb_helper_answer *a, uint8_t job_byte)
{
	static const char *const modes[] = { "wheel", "dir", "version", "wheel" };
	static const int statuses[] = { 0, 1, 2, 70 };
	const struct pb_install_job job = {
		.mode = modes[(job_byte >> 1) & 3],
		.input_fd = -1,
		.name = (job_byte & 8) ? "demo" : NULL,
	};
	struct pb_install_result res;

	memset(&res, 0, sizeof(res));
	pb_install_judge(a, &job, statuses[(job_byte >> 4) & 3], &res);
	FUZZ_ASSERT(memchr(res.message, '\0', sizeof(res.message)) && printable(res.message, true));
	FUZZ_ASSERT(memchr(res.version, '\0', sizeof(res.version)) && memchr(res.name, '\0', sizeof(res.name)));
	switch (res.status) {
	case PB_INSTALL_OK:
		FUZZ_ASSERT(statuses[(job_byte >> 4) & 3] == 0);
		if (!strcmp(job.mode, "version")) {
			FUZZ_ASSERT(printable(res.version, true) && !res.name[0]);
		} else {
			FUZZ_ASSERT(pb_valid_plugin_name(res.name) && printable(res.version, false));
			FUZZ_ASSERT(!job.name || !strcmp(job.name, res.name));
		}
		break;
	case PB_INSTALL_REFUSED:
	case PB_INSTALL_FAILED:
		FUZZ_ASSERT(res.message[0]);
		break;
	default:
		FUZZ_ASSERT(!"a status the judgement does not give");
	}
}

static void check_scan(const uint8_t *s, size_t n, size_t nplugins)
{
	static char *const names[] = { "a", "b", "demo" };
	Plugbox__Envelope *out[3];
	char why[200] = "";
	int r = pb_scan_answer_decode(s, n, names, nplugins, out, why, sizeof(why));

	FUZZ_ASSERT(r == 0 || r == -EBADMSG || r == -EMSGSIZE);
	if (r < 0) {
		FUZZ_ASSERT(why[0] && memchr(why, '\0', sizeof(why)));
		for (size_t i = 0; i < nplugins; i++)
			FUZZ_ASSERT(out[i] == NULL);
		return;
	}
	for (size_t i = 0; i < nplugins; i++) {
		FUZZ_ASSERT(out[i] && out[i]->id == i + 1);
		if (out[i]->body_case == PLUGBOX__ENVELOPE__BODY_HELLO) {
			const Plugbox__Hello *h = out[i]->hello;
			FUZZ_ASSERT(!strcmp(h->plugin, names[i]));
			FUZZ_ASSERT(h->n_entry_points <= PB_ENTRY_POINTS_MAX && h->n_exports <= PB_SCAN_EXPORTS_MAX);
			for (size_t k = 0; k < h->n_entry_points; k++)
				FUZZ_ASSERT(h->entry_points[k]->group[0] && h->entry_points[k]->name[0]);
		} else {
			FUZZ_ASSERT(out[i]->body_case == PLUGBOX__ENVELOPE__BODY_ERROR);
		}
		pb_envelope_free(out[i]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct pb_helper_answer a;
	bool probes;
	int r;

	if (size < 1)
		return 0;
	if (data[0] & 0x80) {
		check_scan(data + 1, size - 1, data[0] & 3 ? (size_t)(data[0] & 3) : 3);
		return 0;
	}
	probes = data[0] & 1;
	r = pb_helper_answer_decode((const char *)data + 1, size - 1, probes, &a);
	check_decode(data + 1, size - 1, probes, r, &a);
	if (r == 0 && a.last.nfields)
		check_judge(&a, data[0]);
	return 0;
}
