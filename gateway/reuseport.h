/* The listening sockets of the workers (supervisor.c): for each listener,
 * one socket per worker in one SO_REUSEPORT group, bound by the
 * supervisor before it starts them, with a classic BPF program that picks
 * the worker by the connection's source address (a client reconnecting
 * from the same address lands on the same worker, whose history its
 * `since` recovers from); and a worker's side: accepting from its socket
 * into libwebsockets. */
#ifndef MQG_REUSEPORT_H
#define MQG_REUSEPORT_H

#include <libwebsockets.h>

#include "config.h"

/* Binds and listens n_workers sockets for every listener of cfg, into
 * fds[listener * n_workers + worker] (fds holds n_listeners * n_workers).
 * Returns 0, or -1 (logged; what was opened is closed). */
int reuseport_open(const struct config *cfg, int n_workers, int *fds);

/* The classic BPF program of a group of n sockets of family af (AF_INET,
 * or AF_INET6, which also takes IPv4 connections): into prog (room for
 * REUSEPORT_PROG_MAX instructions). Returns its length. */
#define REUSEPORT_PROG_MAX 32
struct sock_filter;
int reuseport_prog(int af, unsigned n, struct sock_filter *prog);

/* The protocols of a vhost a worker serves through its own socket: the
 * WebSocket protocol first (ws_protocols[0]) and the one that accepts. */
const struct lws_protocols *reuseport_protocols(void);

/* Hands fd, a listening socket, to vh: its connections are accepted and
 * adopted by vh as libwebsockets' own listener would. The context owns
 * the descriptor from now on. Returns 0, or -1 (logged). */
int reuseport_adopt(struct lws_vhost *vh, int fd);

#endif
