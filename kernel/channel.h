/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pagepush channels: a connected TCP socket and the kernel thread that
 * receives pages from it.
 */
#ifndef _PAGEPUSH_CHANNEL_H
#define _PAGEPUSH_CHANNEL_H

#include <linux/types.h>
#include <linux/atomic.h>
#include <linux/completion.h>
#include <linux/net.h>

#include "uapi/linux/pagepush.h"

struct pp_session;
struct socket;
struct task_struct;
struct page;
struct netlink_ext_ack;
struct nlattr;

/* pp_channel.partial_idx when the channel assembles no page. */
#define PP_NO_PAGE	ULONG_MAX

/**
 * struct pp_channel - one receiving connection of a session
 * @session: owner.
 * @id: &enum pagepush_channel.
 * @sock: the socket, with a reference on its file; set at CONNECT,
 *	released at teardown, under the session's lock.
 * @thread: receive thread, started at CONNECT, stopped at teardown.
 * @partial: page being assembled, NULL if none or if the chunks are
 *	being discarded (page already present). Receive thread only.
 * @partial_idx: index of the page being assembled or discarded, or
 *	PP_NO_PAGE. Written by the receive thread under the session's
 *	claim_lock, read by the other channel's thread under it.
 * @partial_len: bytes of @partial_idx received so far. Receive thread only.
 * @spare: a page allocated ahead for the next page to assemble, outside
 *	the socket lock. Receive thread only (freed by pp_channel_stop()).
 * @rx_hdr: header of the frame being parsed. Receive thread only.
 * @rx_have: bytes of @rx_hdr received so far. Receive thread only.
 * @rx_left: payload bytes of the current PAGE frame still to come.
 * @rx_dst: where they go in the page being assembled; NULL to skip them
 *	(duplicate page). Receive thread only.
 * @eos: EOS received. Under the session's claim_lock.
 * @done: completed when the receive loop ended (EOF, error, shutdown).
 * @pages: pages this channel completed and placed.
 * @bytes: payload bytes received.
 * @zero_pages: pages placed from ZERO frames.
 * @duplicates: pages that arrived already present.
 * @held_faults: held faults released by a page this channel completed.
 * @cpu_ns: CPU time of the receive thread, as of its last pass.
 *
 * The counters are written by the receive thread (@held_faults by the
 * faulting tasks) and read locklessly by GET.
 */
struct pp_channel {
	struct pp_session *session;
	unsigned int id;
	struct socket *sock;
	struct task_struct *thread;

	struct page *partial;
	unsigned long partial_idx;
	unsigned long partial_len;
	struct page *spare;
	struct pagepush_frame rx_hdr;
	unsigned int rx_have;
	u32 rx_left;
	u8 *rx_dst;
	bool eos;
	struct completion done;

	atomic64_t pages;
	atomic64_t bytes;
	atomic64_t zero_pages;
	atomic64_t duplicates;
	atomic64_t held_faults;
	atomic64_t cpu_ns;
};

void pp_channel_init(struct pp_channel *ch, struct pp_session *s,
		     unsigned int id);
struct socket *pp_channel_lookup_socket(int fd, const struct nlattr *attr,
					struct netlink_ext_ack *extack);
void pp_channel_put_socket(struct socket *sock);
int pp_channel_prepare(struct pp_channel *ch, struct socket *sock);
void pp_channel_run(struct pp_channel *ch);
bool pp_channel_wait_done(struct pp_channel *ch, unsigned long timeout);
void pp_channel_shutdown(struct pp_channel *ch, enum sock_shutdown_cmd how);
void pp_channel_stop(struct pp_channel *ch);
const char *pp_channel_name(unsigned int id);

/* receive.c */
int pp_receive_thread(void *data);

#endif /* _PAGEPUSH_CHANNEL_H */
