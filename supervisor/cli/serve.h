/* serve.h - what the parts of `plugbox serve` share: serve.c (the
 * listening socket, socket activation, signals and the loop), serve_conn.c
 * (connections: accepting, reading frames, queueing answers),
 * serve_requests.c (what each frame asks: Hello, Call, List, Describe),
 * serve_route.c (hooks, cancels, output and host calls routed to clients)
 * and serve_ops.c (the metrics socket and the JSON log). The control protocol
 * is described in docs/protocol.md and at the top of serve.c. */
#ifndef PLUGBOX_SERVE_H
#define PLUGBOX_SERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/frame.h"
#include "plugbox.h"

#define PB_SERVE_MAX_INFLIGHT 64         /* calls in flight per connection */
#define PB_SERVE_MAX_HOST_CALLS 64       /* host calls waiting for one connection */
#define PB_SERVE_CLIENT_NAMES 256        /* host function names one connection offers */
#define PB_SERVE_DAEMON_NAMES 1024       /* different host function names in the daemon */
#define PB_SERVE_OUTPUT_BOUND (1u << 20) /* bytes waiting past which Output is dropped */
#define PB_SERVE_INDEX 4096              /* buckets of the requests by library id */

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
	uint64_t lib_id; /* the library's id: pb_call_start's, or the hook's */
	bool used;
	bool answered;                  /* a cancelled hook, answered before its end */
	bool describe;                  /* a Describe: its answer is a PluginInfo */
	struct pb_serve_hook *hook;     /* a Hook: what the library borrows until done */
	char *plugin;                   /* a Describe's plugin (owned) */
	double started;                 /* a Call: when it was made */
	struct pb_serve_metric *metric; /* a Call's plugin's numbers, or NULL */
	/* serve_route.c: in srv->by_lib_id while its output may come */
	struct pb_serve_slot *index_next;
	bool indexed;
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

/* A plugin's host call waiting for this client's answer. */
struct pb_serve_hcall {
	uint64_t id; /* the HostCall's Envelope id on this connection */
	pb_host_call *hc;
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
	/* serve_route.c */
	bool want_output, want_idle_output; /* the client's Hello asked for Output */
	uint64_t output_dropped;            /* Output not sent since the last one */
	char **names;                       /* host functions it offers */
	size_t nnames;
	struct pb_serve_hcall hcalls[PB_SERVE_MAX_HOST_CALLS];
	unsigned nhcalls;
	uint64_t last_hcall; /* ids of host calls: this connection's sequence */
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
	/* serve_route.c: host function names registered with the library */
	char **names;
	size_t nnames;
	unsigned nidle; /* connections that want output outside calls */
	/* The requests in flight by the library's id (lib_id % PB_SERVE_INDEX):
	 * each line of output and each host call finds its request here, not
	 * by a walk of every slot of every connection. */
	struct pb_serve_slot *by_lib_id[PB_SERVE_INDEX];
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

/* The daemon's own log of a plugin's line (text "[plugin] line", or a JSON
 * "output" record): output no client takes. */
void pb_serve_log_output(struct pb_serve *srv, const char *plugin, pb_stream stream, const char *line);

/* serve_conn.c, for serve_requests.c and serve_route.c */
/* Queue one envelope for the client and try to write it at once. */
void pb_serve_send(struct pb_serve_client *c, const Plugbox__Envelope *env);
__attribute__((format(printf, 4, 5))) void pb_serve_send_error(struct pb_serve_client *c, uint64_t id,
                                                               pb_error_kind kind, const char *fmt, ...);
/* The request in slot took its place: counted in flight, holds c. */
void pb_serve_slot_used(struct pb_serve_slot *slot);
/* The request in slot ended (its answer queued): the slot is free again,
 * and c may be done. */
void pb_serve_slot_release(struct pb_serve_slot *slot);

/* serve_requests.c */
/* One frame a client sent: decoded leniently, checked against what a
 * client may send in its protocol version, and answered or started. A bad
 * message is answered under its id and the conversation goes on. */
void pb_serve_handle_frame(struct pb_serve_client *c, const uint8_t *buf, uint32_t len);
/* err as the wire's Error (borrowing from err; args holds the six syscall
 * arguments), with version 2's fields for a version 2 client. */
void pb_serve_error_fields(const struct pb_serve_client *c, const pb_error *err, Plugbox__Error *er,
                           uint64_t args[6]);
/* A slot for request id, or NULL after answering why there is none. */
struct pb_serve_slot *pb_serve_take_slot(struct pb_serve_client *c, uint64_t id, const char *what);

/* serve_route.c: what belongs to a client besides its answers */
/* Python's name of a logging level ("WARNING"), "LEVEL" for another number. */
const char *pb_serve_level_name(int level);
void pb_serve_route_setup(struct pb_serve *srv);
void pb_serve_route_free(struct pb_serve *srv);
/* The request in slot (lib_id) that the plugin's line or record belongs
 * to: used, unanswered, its connection open. */
struct pb_serve_slot *pb_serve_slot_of(struct pb_serve *srv, uint64_t lib_id);
/* The request in slot started (its lib_id known) on an open connection:
 * pb_serve_slot_of finds it from now on... */
void pb_serve_index_add(struct pb_serve_slot *slot);
/* ...until it ends, is answered early, or its connection goes. */
void pb_serve_index_remove(struct pb_serve_slot *slot);
/* Before a request's answer: a count of Output dropped, if any. */
void pb_serve_output_flush_dropped(struct pb_serve_client *c, uint64_t wire_id);
void pb_serve_start_hook(struct pb_serve_client *c, uint64_t id, Plugbox__Envelope **env);
void pb_serve_cancel(struct pb_serve_client *c, uint64_t id, const Plugbox__CancelRequest *r);
void pb_serve_offer(struct pb_serve_client *c, uint64_t id, const Plugbox__HostFunctions *h);
void pb_serve_host_result(struct pb_serve_client *c, uint64_t id, Plugbox__HostResult *r);
/* A Call with a parent: nested in that host call of c. 0, or a negative
 * errno with the reason answered. */
int pb_serve_nest(struct pb_serve_client *c, uint64_t id, uint64_t parent, const pb_call_spec *spec,
                  struct pb_serve_slot *slot, pb_call_done_fn done);
/* The connection went away: its requests are cancelled, its host calls fail. */
void pb_serve_client_gone(struct pb_serve_client *c);

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
