/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pagepush return path: page requests and COMPLETE, destination to source.
 */
#ifndef _PAGEPUSH_REQUEST_H
#define _PAGEPUSH_REQUEST_H

#include <linux/types.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>
#include <linux/atomic.h>

struct pp_session;
struct socket;

/**
 * struct pp_request - the return path of a session
 * @sock: socket the frames go out on (the PRECOPY channel's), borrowed
 *	from the channel; set before the first request can be queued and
 *	cleared only after pp_request_stop().
 * @lock: protects @ring, @first and @count.
 * @ring: page indices waiting to be sent. Every page is queued at most
 *	once (the store's requested bitmap).
 * @nr_slots: slots in @ring.
 * @first: oldest slot in use.
 * @count: slots in use.
 * @stopped: no request may be queued (before start, after stop).
 * @broken: a write failed, maybe mid-frame; nothing else may be sent.
 * @work: sends what @ring holds; one instance runs at a time, so frames
 *	never interleave on the socket.
 * @sent: REQUEST frames sent.
 */
struct pp_request {
	struct socket *sock;
	spinlock_t lock;		/* @ring, @first, @count, @stopped */
	u32 *ring;
	unsigned long nr_slots;
	unsigned long first;
	unsigned long count;
	bool stopped;
	bool broken;
	struct work_struct work;
	atomic64_t sent;
};

int pp_request_init(struct pp_request *req, unsigned long nr_pages);
void pp_request_destroy(struct pp_request *req);
void pp_request_start(struct pp_request *req, struct socket *sock);
void pp_request_stop(struct pp_request *req);
void pp_request_page(struct pp_session *s, unsigned long idx);
int pp_request_send_complete(struct pp_session *s);

#endif /* _PAGEPUSH_REQUEST_H */
