/* sink.c - the supervisor's non-blocking writer to its own stderr (sink.h).
 *
 * stderr is usually shared: with the shell on a terminal, with other
 * processes on a log collector's pipe. Setting O_NONBLOCK on it would
 * change it for all of them, so the writer finds another way that never
 * waits, by the kind of file:
 *  - a pipe or a terminal is opened again through /proc/self/fd, which
 *    makes a new open file description whose O_NONBLOCK is ours alone;
 *  - a socket (journald's stream) is written with send(MSG_DONTWAIT);
 *  - a regular file or a device such as /dev/null never blocks for long
 *    and is written as it is;
 *  - should a pipe not open again, poll(2) says whether it has room and at
 *    most PIPE_BUF bytes are written, which a pipe with room takes whole.
 * The queue is bounded; what does not fit is dropped and counted.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "toolkit/clock.h"
#include "toolkit/sink.h"

enum { HOW_WRITE,
       HOW_SEND,
       HOW_POLL };

int pb_sink_open(struct pb_sink *k, int target, size_t cap)
{
	struct stat st;
	int flags = fcntl(target, F_GETFL);

	memset(k, 0, sizeof(*k));
	k->target = k->fd = target;
	k->how = HOW_WRITE;
	k->buf = malloc(cap);
	if (!k->buf)
		return -ENOMEM;
	k->cap = cap;
	if (fstat(target, &st) < 0 || flags < 0 || (flags & O_NONBLOCK))
		return 0;
	if (S_ISSOCK(st.st_mode)) {
		k->how = HOW_SEND;
	} else if (S_ISFIFO(st.st_mode) || isatty(target)) {
		char path[64];
		int fd;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", target);
		fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
		if (fd >= 0) {
			k->fd = fd;
		} else {
			k->how = HOW_POLL;
		}
	}
	return 0;
}

void pb_sink_close(struct pb_sink *k)
{
	if (k->fd != k->target && k->fd >= 0)
		close(k->fd);
	free(k->buf);
	memset(k, 0, sizeof(*k));
	k->fd = k->target = -1;
}

int pb_sink_fd(const struct pb_sink *k)
{
	return k->fd;
}

static ssize_t write_some(struct pb_sink *k, const char *p, size_t n)
{
	if (k->how == HOW_SEND)
		return send(k->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (k->how == HOW_POLL) {
		struct pollfd pf = { .fd = k->fd, .events = POLLOUT };
		if (poll(&pf, 1, 0) <= 0 || !(pf.revents & (POLLOUT | POLLERR | POLLHUP))) {
			errno = EAGAIN;
			return -1;
		}
		if (n > PIPE_BUF)
			n = PIPE_BUF;
	}
	return write(k->fd, p, n);
}

bool pb_sink_flush(struct pb_sink *k)
{
	while (k->len > 0) {
		ssize_t n = write_some(k, k->buf + k->off, k->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (n <= 0) {
			/* Nobody will read it (EPIPE, EIO...): nothing to wait for. */
			k->off = k->len = 0;
			return false;
		}
		k->off += (size_t)n;
		k->len -= (size_t)n;
	}
	k->off = 0;
	return false;
}

/* Room for `n` more bytes at the end of the queue, moving what waits to the front. */
static bool make_room(struct pb_sink *k, size_t n)
{
	if (k->cap - k->len < n)
		return false;
	if (k->cap - k->off - k->len < n) {
		memmove(k->buf, k->buf + k->off, k->len);
		k->off = 0;
	}
	return true;
}

static void append(struct pb_sink *k, const char *line, size_t n)
{
	memcpy(k->buf + k->off + k->len, line, n);
	k->buf[k->off + k->len + n] = '\n';
	k->len += n + 1;
}

static int drop_note(const struct pb_sink *k, char *note, size_t size)
{
	if (!k->dropped_lines)
		return 0;
	return snprintf(note, size, "plugbox: dropped %llu lines / %llu bytes of output: stderr did not "
	                            "take them",
	                (unsigned long long)k->dropped_lines, (unsigned long long)k->dropped_bytes);
}

void pb_sink_line(struct pb_sink *k, const char *line)
{
	size_t n = strlen(line);
	char note[160];
	int m;

	if (!k->buf)
		return;
	if (k->len > 0)
		pb_sink_flush(k);
	m = drop_note(k, note, sizeof(note));
	if (!make_room(k, (size_t)m + 1 + n + 1)) {
		k->dropped_lines++;
		k->dropped_bytes += n + 1;
		return;
	}
	if (m > 0) {
		append(k, note, (size_t)m);
		k->dropped_lines = k->dropped_bytes = 0;
	}
	append(k, line, n);
	pb_sink_flush(k);
}

void pb_sink_drain(struct pb_sink *k, double seconds)
{
	double quiet_since = pb_now();

	while (k->len > 0 && pb_now() - quiet_since < seconds) {
		size_t before = k->len;
		struct pollfd pf = { .fd = k->fd, .events = POLLOUT };
		int ms = (int)((seconds - (pb_now() - quiet_since)) * 1000) + 1;

		if (poll(&pf, 1, ms) < 0 && errno != EINTR)
			break;
		pb_sink_flush(k);
		if (k->len < before)
			quiet_since = pb_now();
	}
	if (k->len == 0 && k->dropped_lines) {
		/* the last word, if it goes without waiting */
		char note[160];
		int m = drop_note(k, note, sizeof(note));
		append(k, note, (size_t)m);
		k->dropped_lines = k->dropped_bytes = 0;
		pb_sink_flush(k);
	}
}

/* ---- the process's stderr ------------------------------------------------ */

static pthread_mutex_t stderr_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pb_sink stderr_sink;
static bool stderr_open;

/* Called with the lock held. */
static bool stderr_ready(void)
{
	if (!stderr_open && pb_sink_open(&stderr_sink, STDERR_FILENO, PB_SINK_BYTES) == 0)
		stderr_open = true;
	return stderr_open;
}

void pb_stderr_line(const char *line)
{
	pthread_mutex_lock(&stderr_lock);
	if (stderr_ready())
		pb_sink_line(&stderr_sink, line);
	pthread_mutex_unlock(&stderr_lock);
}

bool pb_stderr_flush(void)
{
	bool waiting = false;

	pthread_mutex_lock(&stderr_lock);
	if (stderr_open)
		waiting = pb_sink_flush(&stderr_sink);
	pthread_mutex_unlock(&stderr_lock);
	return waiting;
}

int pb_stderr_fd(void)
{
	int fd;

	pthread_mutex_lock(&stderr_lock);
	fd = stderr_open ? pb_sink_fd(&stderr_sink) : -1;
	pthread_mutex_unlock(&stderr_lock);
	return fd;
}

void pb_stderr_drain(double seconds)
{
	pthread_mutex_lock(&stderr_lock);
	if (stderr_open)
		pb_sink_drain(&stderr_sink, seconds);
	pthread_mutex_unlock(&stderr_lock);
}
