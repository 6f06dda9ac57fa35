/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pagepush return path: page requests, COMPLETE, and after a recovery the
 * pages present, destination to source.
 */
#ifndef _PAGEPUSH_REQUEST_H
#define _PAGEPUSH_REQUEST_H

#include <linux/types.h>
#include <linux/spinlock.h>
#include <linux/mutex.h>
#include <linux/workqueue.h>
#include <linux/atomic.h>

struct pp_session;
struct socket;

/**
 * struct pp_request - the return path of a session
 * @sock: socket the frames go out on (the PRECOPY channel's), borrowed
 *	from the channel; set before the first request can be queued and
 *	cleared only after pp_request_stop().
 * @lock: protects @ring, @first, @count and @stopped.
 * @send_lock: held while frames are written, so they never interleave:
 *	by the work item for a batch, by the teardown for COMPLETE or ABORT.
 *	Taken outside @lock.
 * @ring: page indices waiting to be sent. Every page is queued at most
 *	once (the store's requested bitmap).
 * @nr_slots: slots in @ring.
 * @first: oldest slot in use.
 * @count: slots in use.
 * @stopped: no request may be queued (before start, after stop).
 * @broken: a write failed, maybe mid-frame; nothing else may be sent.
 * @present_next: after a recovery, the first page the PRESENT frames have
 *	yet to describe; ULONG_MAX when there is nothing (more) to describe.
 *	Set before the work item is queued, then the work item's.
 * @present_buf: bitmap of one PRESENT frame.
 * @work: sends what @ring holds (after the PRESENT frames); one instance
 *	runs at a time.
 * @sent: REQUEST frames sent.
 */
struct pp_request {
	struct socket *sock;
	spinlock_t lock;		/* @ring, @first, @count, @stopped */
	struct mutex send_lock;		/* writes to @sock */
	u32 *ring;
	unsigned long nr_slots;
	unsigned long first;
	unsigned long count;
	bool stopped;
	bool broken;
	unsigned long present_next;
	u8 *present_buf;
	struct work_struct work;
	atomic64_t sent;
};

int pp_request_init(struct pp_request *req, unsigned long nr_pages);
void pp_request_destroy(struct pp_request *req);
void pp_request_start(struct pp_request *req, struct socket *sock,
		      bool recover);
void pp_request_kick(struct pp_request *req);
void pp_request_stop(struct pp_request *req);
void pp_request_page(struct pp_session *s, unsigned long idx);
int pp_request_send_final(struct pp_session *s, u8 type, bool wait);

#endif /* _PAGEPUSH_REQUEST_H */
