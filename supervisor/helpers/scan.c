/* scan.c - the discovery scan's helper and the decoder of its answer (see
 * scan.h). The helper is the compiler's sandbox (compile.policy, the
 * install worker's walls) with no tree to write: PLUGINS is bound
 * read-only at its own path and the glue reads each named plugin there
 * exactly as a worker would, without importing any of it.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers/scan.h"
#include "jail/spawn.h"
#include "jail/uids.h"
#include "policy/policy.h"
#include "proto/frame.h"
#include "proto/install.h"
#include "proto/protocol.h"

__attribute__((format(printf, 4, 5))) static int bad(char *why, size_t why_len, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, why_len, fmt, ap);
	va_end(ap);
	return r;
}

static bool check_hello(const Plugbox__Hello *h, const char *name)
{
	if (!h->plugin || strcmp(h->plugin, name) != 0 || !h->layout || !h->version)
		return false;
	if (strcmp(h->layout, "package") != 0 && strcmp(h->layout, "path") != 0)
		return false;
	if (h->n_entry_points > PB_ENTRY_POINTS_MAX || h->n_exports > PB_SCAN_EXPORTS_MAX)
		return false;
	for (size_t i = 0; i < h->n_entry_points; i++) {
		const Plugbox__EntryPoint *ep = h->entry_points[i];
		if (!ep || !ep->group || !ep->name || !ep->value || !*ep->group || !*ep->name)
			return false;
	}
	return true;
}

int pb_scan_answer_decode(const uint8_t *buf, size_t len, char *const *names, size_t n,
                          Plugbox__Envelope **out, char *why, size_t why_len)
{
	size_t pos = 0, i = 0;
	int r = 0;

	if (len > PB_SCAN_ANSWER_MAX)
		return bad(why, why_len, -EMSGSIZE, "the answer is longer than %u bytes", PB_SCAN_ANSWER_MAX);
	for (size_t k = 0; k < n; k++)
		out[k] = NULL;
	for (; i < n && r == 0; i++) {
		uint32_t flen;
		char ewhy[160];

		if (len - pos < 4) {
			r = bad(why, why_len, -EBADMSG, "the answer ends after %zu of %zu plugins", i, n);
			break;
		}
		flen = (uint32_t)buf[pos] | (uint32_t)buf[pos + 1] << 8 | (uint32_t)buf[pos + 2] << 16 |
		       (uint32_t)buf[pos + 3] << 24;
		pos += 4;
		if (flen > PB_FRAME_MAX_DEFAULT || flen > len - pos) {
			r = bad(why, why_len, -EBADMSG, "plugin %zu's frame claims %u bytes", i + 1, (unsigned)flen);
			break;
		}
		if (pb_envelope_decode(buf + pos, flen, &out[i], ewhy, sizeof(ewhy)) < 0) {
			out[i] = NULL;
			r = bad(why, why_len, -EBADMSG, "plugin %zu's frame does not decode: %s", i + 1, ewhy);
			break;
		}
		pos += flen;
		if (out[i]->id != i + 1 ||
		    (out[i]->body_case == PLUGBOX__ENVELOPE__BODY_HELLO ? !check_hello(out[i]->hello, names[i])
		                                                        : out[i]->body_case != PLUGBOX__ENVELOPE__BODY_ERROR)) {
			r = bad(why, why_len, -EBADMSG, "plugin %zu's answer is not a hello for it, nor an error", i + 1);
			break;
		}
	}
	if (r == 0 && pos != len)
		r = bad(why, why_len, -EBADMSG, "%zu bytes follow the last of %zu answers", len - pos, n);
	if (r < 0)
		for (size_t k = 0; k < n; k++) {
			pb_envelope_free(out[k]);
			out[k] = NULL;
		}
	return r;
}

int pb_scan_start(struct pb_scan *sc, const char *worker_path, const struct pb_policy *policy,
                  const char *plugins_dir, char **names, size_t n, char *why, size_t why_len)
{
	uid_t uid = PB_INSTALL_UID;
	char **args;
	int r;

	memset(sc, 0, sizeof(*sc));
	pb_helper_init(&sc->h, "the discovery scan", "compile.policy");
	sc->uid_fd = -1;
	sc->names = names;
	sc->n = n;
	if (n > PB_SCAN_PLUGINS_MAX)
		return bad(why, why_len, -E2BIG, "%zu plugins in one scan, more than %u", n, PB_SCAN_PLUGINS_MAX);
	if (geteuid() == 0 && (r = pb_uid_claim_helper(&sc->uid_fd, &uid, why, why_len)) < 0)
		return r;
	if ((r = pb_helper_set_answer_max(&sc->h, PB_SCAN_ANSWER_MAX)) < 0)
		return r;
	/* "--": a plugin may be named "-x". */
	if (!(args = calloc(n + 2, sizeof(*args))))
		return -ENOMEM;
	args[0] = "--";
	for (size_t i = 0; i < n; i++)
		args[i + 1] = names[i];
	const struct pb_install_spec in = {
		.mode = "scan",
		.input_fd = -1,
		.plugin = plugins_dir,
		.args = args,
	};
	r = pb_helper_spawn(&sc->h, worker_path, policy, &in, uid, uid, why, why_len);
	free(args);
	return r;
}

int pb_scan_finish(struct pb_scan *sc, Plugbox__Envelope **out, char *why, size_t why_len)
{
	int status;
	enum pb_helper_end end = pb_helper_end(&sc->h, &status, why, why_len);

	if (end == PB_HELPER_SECCOMP) {
		snprintf(why, why_len, "the discovery scan was killed by its sandbox (compile.policy)");
		return -EPERM;
	}
	if (end != PB_HELPER_EXITED)
		return -EIO;
	if (sc->h.answer_len == 0 && sc->n > 0) {
		pb_helper_no_answer(&sc->h, status, why, why_len);
		return -EIO;
	}
	char dwhy[200];
	int r = pb_scan_answer_decode((const uint8_t *)sc->h.answer, sc->h.answer_len, sc->names, sc->n, out,
	                              dwhy, sizeof(dwhy));
	if (r < 0)
		snprintf(why, why_len, "the discovery scan answered garbage: %s", dwhy);
	return r;
}

void pb_scan_free(struct pb_scan *sc)
{
	pb_helper_free(&sc->h);
	pb_uid_release(&sc->uid_fd);
}
