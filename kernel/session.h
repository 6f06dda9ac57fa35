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
 * @pause_timeout: seconds the session may stay PAUSED, 0 for ever; fixed.
 * @cookie: migration cookie reported at CONNECT, checked at RECOVER;
 *	under @lock.
 * @lock: serialises CONNECT, RECOVER, teardown and DEL (they sleep).
 * @state_lock: protects @state, @reason, @teardown_pending and
 *	@paused_since; readers that only look at @state use READ_ONCE().
 * @state: &enum pagepush_state.
 * @reason: why the session failed or paused; cleared when it resumes.
 * @teardown_pending: a teardown is queued or running; it reports the
 *	state it leaves the session in, and RECOVER waits for it.
 * @paused_since: jiffies when the session last paused.
 * @epoch: resumptions so far. Held tasks wait for their page, the end
 *	of the session, or a new epoch (which makes them ask again on the
 *	new connections). Written under @state_lock with release semantics,
 *	read with acquire semantics.
 * @pause_work: fails the session when it stays PAUSED too long.
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
 * @pauses: times the session paused.
 * @recoveries: times RECOVER resumed it.
 */
struct pp_session {
	struct kref kref;
	u32 index;
	char name[PAGEPUSH_NAME_MAX + 1];
	u64 size;
	unsigned int page_shift;
	u32 pause_timeout;
	u64 cookie;

	struct mutex lock;		/* CONNECT, RECOVER, teardown, DEL */
	spinlock_t state_lock;		/* @state, @reason, @teardown_pending */
	enum pagepush_state state;
	char reason[PAGEPUSH_REASON_MAX + 1];
	bool teardown_pending;
	unsigned long paused_since;
	u32 epoch;
	struct delayed_work pause_work;

	struct pp_store store;
	struct pp_channel chan[PAGEPUSH_NR_CHANNELS];
	spinlock_t claim_lock;		/* chan[].partial_idx */
	struct pp_request req;
	struct work_struct teardown_work;

	struct inode *inode;
	struct device *dev;

	struct pp_fault_stats faults;
	atomic64_t split_brain;
	atomic64_t pauses;
	atomic64_t recoveries;
};

static inline enum pagepush_state pp_session_state(struct pp_session *s)
{
	return READ_ONCE(s->state);
}

/* Whether faults on absent pages are held (rather than SIGBUS). */
static inline bool pp_session_holds(enum pagepush_state state)
{
	return state == PAGEPUSH_STATE_CONNECTED ||
	       state == PAGEPUSH_STATE_PAUSED;
}

static inline u32 pp_session_epoch(struct pp_session *s)
{
	/* Pairs with the release in pp_session_start(): see @epoch. */
	return smp_load_acquire(&s->epoch);
}

static inline unsigned long pp_session_page_size(struct pp_session *s)
{
	return 1UL << s->page_shift;
}

int pp_sessions_init(void);
void pp_sessions_exit(void);

struct pp_session *pp_session_create(u64 size, u32 page_size,
				     const char *name, u32 pause_timeout,
				     struct netlink_ext_ack *extack);
int pp_session_delete(u32 index);
struct pp_session *pp_session_lookup(u32 index);
struct pp_session *pp_session_next(u32 *index);
void pp_session_get(struct pp_session *s);
void pp_session_put(struct pp_session *s);

int pp_session_connect(struct pp_session *s, struct socket *pre,
		       struct socket *post, u64 cookie,
		       struct netlink_ext_ack *extack);
int pp_session_recover(struct pp_session *s, struct socket *pre,
		       struct socket *post, u64 cookie,
		       struct netlink_ext_ack *extack);
void pp_session_fail(struct pp_session *s, const char *fmt, ...)
	__printf(2, 3);
void pp_session_pause(struct pp_session *s, const char *fmt, ...)
	__printf(2, 3);
void pp_session_page_placed(struct pp_session *s);
void pp_session_read_state(struct pp_session *s, enum pagepush_state *state,
			   char *reason, size_t len);

#endif /* _PAGEPUSH_SESSION_H */
