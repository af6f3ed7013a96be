/* serve.h - what the two halves of `plugbox serve` share: serve.c (the
 * listening socket, signals and the loop) and serve_conn.c (connections:
 * accepting, reading calls, queueing answers). The control protocol is
 * described at the top of serve.c. */
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
	                    PB_SERVE_CLIENT };

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
	bool describe; /* a Describe: its answer is a PluginInfo */
	char *plugin;  /* a Describe's plugin (owned) */
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
	bool eof;     /* the peer writes no more: answer, then close */
	bool closing; /* after a protocol error: close once written */
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
};

double pb_serve_now(void);
/* "plugbox serve: MESSAGE" on stderr. */
__attribute__((format(printf, 1, 2))) void pb_serve_say(const char *fmt, ...);

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
