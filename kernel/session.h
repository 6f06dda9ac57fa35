/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pagepush sessions: one migration into one device, /dev/pagepushN.
 */
#ifndef _PAGEPUSH_SESSION_H
#define _PAGEPUSH_SESSION_H

#include <linux/kref.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>

#include "uapi/linux/pagepush.h"
#include "store.h"
#include "channel.h"
#include "request.h"

/* Sessions at once; also the number of device minors reserved. */
#define PP_MAX_SESSIONS	1024

extern struct workqueue_struct *pp_wq;

struct device;
struct inode;
struct socket;
struct netlink_ext_ack;

/**
 * struct pp_fault_stats - what the fault path measures
 * @held_now: tasks held right now.
 * @held_total: faults held, in total.
 * @sigbus: faults answered with SIGBUS.
 * @latency: held-fault latency histogram, log2 buckets in microseconds.
 *
 * All atomic: updated by faulting tasks without a lock.
 */
struct pp_fault_stats {
	atomic_long_t held_now;
	atomic64_t held_total;
	atomic64_t sigbus;
	atomic64_t latency[PAGEPUSH_LATENCY_BUCKETS];
};

/**
 * struct pp_session - one migration
 * @kref: lifetime. Held by the registry until DEL, by each open file, by
 *	each task held in a fault after it dropped mmap_lock, and by the
 *	teardown work while queued. The last put frees the pages.
 * @index: N of /dev/pagepushN; fixed.
 * @name: optional unique name; fixed.
 * @size: bytes; fixed.
 * @page_shift: log2 of the page size; fixed.
 * @cookie: migration cookie reported at CONNECT; under @lock.
 * @lock: serialises CONNECT, teardown and DEL (they sleep).
 * @state_lock: protects @state and @reason; readers that only look at
 *	@state use READ_ONCE().
 * @state: &enum pagepush_state.
 * @reason: why the session failed; set once, with @state FAILED.
 * @store: the pages and their waiters.
 * @chan: receive channels, under @lock for start and stop.
 * @claim_lock: protects the @partial_idx of both channels, so a page is
 *	never assembled by both (split brain).
 * @req: the return path (requests, COMPLETE).
 * @teardown_work: releases sockets and threads after COMPLETE or a
 *	failure, from process context.
 * @inode: private address space of every open file of the session.
 * @dev: the device node, NULL once deleted; under the registry lock.
 * @faults: fault path counters.
 * @split_brain: split-brain protocol errors seen.
 */
struct pp_session {
	struct kref kref;
	u32 index;
	char name[PAGEPUSH_NAME_MAX + 1];
	u64 size;
	unsigned int page_shift;
	u64 cookie;

	struct mutex lock;		/* CONNECT, teardown, DEL */
	spinlock_t state_lock;		/* @state, @reason */
	enum pagepush_state state;
	char reason[PAGEPUSH_REASON_MAX + 1];

	struct pp_store store;
	struct pp_channel chan[PAGEPUSH_NR_CHANNELS];
	spinlock_t claim_lock;		/* chan[].partial_idx */
	struct pp_request req;
	struct work_struct teardown_work;

	struct inode *inode;
	struct device *dev;

	struct pp_fault_stats faults;
	atomic64_t split_brain;
};

static inline enum pagepush_state pp_session_state(struct pp_session *s)
{
	return READ_ONCE(s->state);
}

static inline unsigned long pp_session_page_size(struct pp_session *s)
{
	return 1UL << s->page_shift;
}

int pp_sessions_init(void);
void pp_sessions_exit(void);

struct pp_session *pp_session_create(u64 size, u32 page_size,
				     const char *name,
				     struct netlink_ext_ack *extack);
int pp_session_delete(u32 index);
struct pp_session *pp_session_lookup(u32 index);
struct pp_session *pp_session_next(u32 *index);
void pp_session_get(struct pp_session *s);
void pp_session_put(struct pp_session *s);

int pp_session_connect(struct pp_session *s, struct socket *pre,
		       struct socket *post, u64 cookie,
		       struct netlink_ext_ack *extack);
void pp_session_fail(struct pp_session *s, const char *fmt, ...)
	__printf(2, 3);
void pp_session_page_placed(struct pp_session *s);
void pp_session_read_state(struct pp_session *s, enum pagepush_state *state,
			   char *reason, size_t len);

#endif /* _PAGEPUSH_SESSION_H */
