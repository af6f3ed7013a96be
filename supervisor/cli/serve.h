/* serve.h - what the parts of `plugbox serve` share: serve.c (the
 * listening socket, socket activation, signals and the loop), serve_conn.c
 * (connections: accepting, reading requests, queueing answers) and
 * serve_ops.c (the metrics socket and the JSON log). The control protocol
 * is described in docs/protocol.md and at the top of serve.c. */
#ifndef PLUGBOX_SERVE_H
#define PLUGBOX_SERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/frame.h"
#include "plugbox.h"

#define PB_SERVE_MAX_INFLIGHT 64 /* calls in flight per connection */

enum pb_serve_source_kind { PB_SERVE_LISTEN,
	                    PB_SERVE_SIGNAL,
	                    PB_SERVE_SUPERVISOR,
	                    PB_SERVE_CLIENT,
	                    PB_SERVE_METRICS_LISTEN,
	                    PB_SERVE_METRICS_CONN };

struct pb_serve_source {
	enum pb_serve_source_kind kind;
};

struct pb_serve_out {
	struct pb_serve_out *next;
	uint8_t *buf;
	size_t len, off;
};

struct pb_serve_client;

/* A request in flight (a Call, or a Describe waiting for its worker); the
 * library's callback gets a pointer to it. */
struct pb_serve_slot {
	struct pb_serve_client *client;
	uint64_t wire_id;
	bool used;
	bool describe;                  /* a Describe: its answer is a PluginInfo */
	char *plugin;                   /* a Describe's plugin (owned) */
	double started;                 /* a Call: when it was made */
	struct pb_serve_metric *metric; /* a Call's plugin's numbers, or NULL */
};

/* The latency histogram's upper bounds, in seconds (then +Inf). */
#define PB_SERVE_BUCKETS 14
extern const double pb_serve_bucket_bounds[PB_SERVE_BUCKETS];

/* What the daemon counts of the calls it was asked for, per plugin (a
 * plugin the supervisor knows: a name that is no plugin gets no entry). */
struct pb_serve_metric {
	struct pb_serve_metric *next;
	char *plugin;
	uint64_t outcomes[PB_ERROR_BAD_REQUEST + 1]; /* [0]: a result; else by pb_error_kind */
	uint64_t buckets[PB_SERVE_BUCKETS + 1];      /* not cumulative; the last is +Inf */
	uint64_t count;
	double sum;
	unsigned inflight;
};

/* A connection to the metrics socket: the text, written, then closed. */
struct pb_serve_mconn {
	struct pb_serve_source src; /* first: epoll data points here */
	int fd;
	char *buf;
	size_t len, off;
	double close_by;
	struct pb_serve_mconn *next;
};

struct pb_serve_client {
	struct pb_serve_source src; /* first: epoll data points here */
	struct pb_serve *srv;
	int fd;        /* -1 once the connection is gone */
	unsigned refs; /* the connection + each call in flight */
	uint32_t events;
	pid_t pid;
	struct pb_frame_reader rd;
	struct pb_serve_out *out_head, *out_tail;
	size_t out_bytes;
	unsigned inflight;
	unsigned version; /* the protocol version agreed: 1 until a Hello says more */
	bool greeted;     /* the client has sent something: no Hello from it now */
	bool eof;         /* the peer writes no more: answer, then close */
	bool closing;     /* after a protocol error: close once written */
	double close_by;
	struct pb_serve_client *prev, *next; /* live connections */
	struct pb_serve_client *next_dead;
	struct pb_serve_slot slots[PB_SERVE_MAX_INFLIGHT];
};

struct pb_serve {
	pb_supervisor *sup;
	int ep, listen_fd, sig_fd;
	struct pb_serve_source listen_src, sig_src, sup_src;
	const char *path;
	dev_t sock_dev;
	ino_t sock_ino;
	uid_t euid;
	double grace;
	bool stopping, failed;
	double accept_paused_until; /* 0: accepting */
	unsigned nclosing;
	struct pb_serve_client *clients;
	struct pb_serve_client *graveyard; /* freed after each round of events */
	bool activated;                    /* the listening socket came from systemd (LISTEN_FDS) */
	/* serve_ops.c */
	const char *metrics_path;
	int metrics_fd;
	struct pb_serve_source metrics_src;
	dev_t metrics_dev;
	ino_t metrics_ino;
	struct pb_serve_metric *metrics;
	struct pb_serve_mconn *mconns;
	unsigned nmconns;
	uint64_t connections, client_errors;
	bool log_json;
};

double pb_serve_now(void);
/* "plugbox serve: MESSAGE" on stderr, or with --log-format json a JSON
 * line {"event": "daemon", "message": ...}. */
__attribute__((format(printf, 1, 2))) void pb_serve_say(const char *fmt, ...);

/* serve.c: a private listening socket at path (mode 0600; a stale socket
 * there is replaced), its identity in *dev / *ino so that only it is
 * removed later. 0 or a negative errno, said on stderr. */
int pb_serve_listen(const char *path, int *fd, dev_t *dev, ino_t *ino);
/* Remove path if it is still the socket (dev, ino) made there. */
void pb_serve_unlink(const char *path, dev_t dev, ino_t ino);
/* serve_conn.c: may the peer of fd connect (the daemon's user or root)?
 * Logs a refusal. */
bool pb_serve_peer_ok(const struct pb_serve *srv, int fd, pid_t *pid);

/* serve_ops.c */
/* The numbers of plugin's calls, made on first use; NULL for a plugin the
 * supervisor does not know (or no memory). */
struct pb_serve_metric *pb_serve_metric_for(struct pb_serve *srv, const char *plugin);
/* A call ended: kind 0 for a result. */
void pb_serve_metric_done(struct pb_serve_metric *m, int kind, double seconds);
/* The Prometheus text exposition of everything counted (malloc'd). */
char *pb_serve_metrics_text(struct pb_serve *srv, size_t *len);
int pb_serve_metrics_open(struct pb_serve *srv);
void pb_serve_metrics_accept(struct pb_serve *srv);
void pb_serve_mconn_event(struct pb_serve *srv, struct pb_serve_mconn *m, uint32_t events);
void pb_serve_metrics_expire(struct pb_serve *srv, double t);
void pb_serve_metrics_close(struct pb_serve *srv);
/* --log-format json: plugin output and worker events as JSON lines. */
void pb_serve_log_setup(struct pb_serve *srv);
/* A client's bad message, counted and (JSON log) said. */
void pb_serve_client_error(struct pb_serve *srv, pid_t pid, const char *message);

/* Accept what is waiting on the listening socket (bounded per wake-up). */
void pb_serve_accept(struct pb_serve *srv);
/* Take on an accepted (or, in tests/fuzz/fuzz_serve.c, socketpair)
 * connection of process pid: non-blocking fd, which is closed on failure.
 * Watches it in srv->ep and queues the Hello. */
void pb_serve_add_client(struct pb_serve *srv, int fd, pid_t pid);
/* epoll reported events on a client. */
void pb_serve_client_event(struct pb_serve_client *c, uint32_t events);
/* The connection ends; calls in flight keep the memory until they end. */
void pb_serve_client_drop(struct pb_serve_client *c);
/* Deadlines of our own: connections closing after an error, accept pauses. */
void pb_serve_expire(struct pb_serve *srv, double t);
/* Free the connections whose last reference went during this round. */
void pb_serve_bury(struct pb_serve *srv);

#endif
