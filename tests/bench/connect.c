/* connect.c - the bench's connect section: what `@network connect` adds to
 * a TCP connect, the supervisor making it (runtime/netconnect.c), against
 * the same Python loop connecting directly in a bare python3.11 and a C
 * loop in this process, all to one loopback listener of this run.
 *
 * The listener is accepted from only between loops: its backlog holds a
 * loop's connections (the kernel completes a loopback handshake without
 * accept), so the figure is the connect alone. The plugin's policy is written here:
 * default plus `@network connect 127.0.0.1:PORT`, beside links to the
 * policies the bench was given.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"

static char *join(const char *a, const char *b)
{
	char *p;
	if (asprintf(&p, "%s/%s", a, b) < 0)
		die("out of memory");
	return p;
}

static int loopback_listener(int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 4096) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		die("loopback listener: %s", strerror(errno));
	*port = ntohs(a.sin_port);
	return fd;
}

/* cfg.tmp/netpolicies: links to the bench's policies and netconn.policy. */
static const char *net_policies(int port)
{
	char *dir = join(cfg.tmp, "netpolicies"), *file;
	DIR *d = opendir(cfg.policies);
	struct dirent *e;
	FILE *f;

	if (!d || mkdir(dir, 0755) < 0)
		die("%s: %s", dir, strerror(errno));
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char *from = join(cfg.policies, e->d_name), *to = join(dir, e->d_name);
		if (symlink(from, to) < 0)
			die("symlink %s: %s", to, strerror(errno));
		free(from);
		free(to);
	}
	closedir(d);
	file = join(dir, "netconn.policy");
	if (!(f = fopen(file, "w")) || fprintf(f, "@include default\n@network connect 127.0.0.1:%d\n", port) < 0 ||
	    fclose(f) != 0)
		die("%s: %s", file, strerror(errno));
	chmod(file, 0644);
	free(file);
	return dir;
}

/* Empty the backlog between loops: each fills it by up to n. */
static void drain(int lfd)
{
	for (int c; (c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0;)
		close(c);
}

static double c_connect_us(int port, size_t n)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	double *t = xcalloc(n, sizeof(double)), mid;

	for (size_t i = 0; i < n; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		uint64_t t0 = now_ns();
		if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
			die("connect: %s", strerror(errno));
		t[i] = (double)(now_ns() - t0) / 1e3;
		close(fd);
	}
	mid = median(t, n);
	free(t);
	return mid;
}

void bench_connect(void)
{
	static const char *policies;
	static int lfd = -1, port;
	size_t n = cfg.smoke ? 300 : 1000;
	char code[1024], out[512];
	pb_value *args[2], *res = NULL;
	pb_error *err = NULL;

	bench_log("%s: connect", cur_placement == PL_PINNED ? "pinned" : "unpinned");
	if (lfd < 0) {
		lfd = loopback_listener(&port);
		policies = net_policies(port);
	}
	pb_supervisor *s = sup_new(cfg.plugins_src, PB_SPAWN_EXEC, NULL);
	if (pb_supervisor_set_policies(s, policies) < 0)
		die("policies %s: %s", policies, pb_supervisor_strerror(s));
	args[0] = pb_value_new_int(port);
	args[1] = pb_value_new_int((int64_t)n);
	if (pb_call(s, "netconn", "measure", args, 2, &res, &err) == 0 && pb_value_get_kind(res) == PB_VALUE_MAP) {
		const pb_value *m = pb_value_map_get(res, "median_us");
		fig("connect.plugbox_us", "plugbox worker: connect() under @network connect (median)", "us",
		    m && pb_value_get_kind(m) == PB_VALUE_FLOAT ? pb_value_get_float(m) : NAN);
	} else {
		note("netconn.measure failed: %s", err ? pb_error_get_message(err) : "not a map");
	}
	pb_value_destroy(res);
	pb_error_free(err);
	pb_value_destroy(args[0]);
	pb_value_destroy(args[1]);
	pb_supervisor_free(s);
	drain(lfd);

	snprintf(code, sizeof(code),
	         "import json, sys; sys.path.insert(0, '%s/netconn'); import connects; "
	         "print(json.dumps(connects.measure(%d, %zu)))",
	         cfg.plugins_src, port, n);
	char *argv[] = { (char *)cfg.python311, "-I", "-S", "-B", "-c", code, NULL };
	if (run_cmd(argv, out, sizeof(out), false, NULL) == 0)
		fig("connect.python_us", "python3.11 unsandboxed: the same connect() loop (median)", "us",
		    json_field(out, "median_us"));
	else
		note("connect loop in python3.11 failed");
	drain(lfd);
	fig("connect.c_us", "C: connect() to the same listener (median)", "us", c_connect_us(port, n));
	drain(lfd);
	double a = fig_get(cur_placement, "connect.plugbox_us"), b = fig_get(cur_placement, "connect.python_us");
	fig("connect.added_us", "us the supervisor's connect adds (plugbox - python3.11)", "us",
	    isnan(a) || isnan(b) ? NAN : a - b);
}
