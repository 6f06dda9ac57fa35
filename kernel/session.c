// SPDX-License-Identifier: GPL-2.0
/*
 * pagepush sessions: creation, lookup, state changes, teardown, deletion.
 *
 * Locking, outermost first:
 *  - pp_sessions_lock (mutex): the registry (IDR, names) and each
 *    session's device node.
 *  - pp_session.lock (mutex): CONNECT, RECOVER, teardown and DEL of one
 *    session.
 *  - pp_session.state_lock, pp_session.claim_lock, pp_request.lock
 *    (spinlocks): leaves; nothing sleeps under them.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitmap.h>
#include <linux/device.h>
#include <linux/fs.h>
#include <linux/ctype.h>
#include <linux/idr.h>
#include <linux/module.h>
#include <linux/mm.h>
#include <linux/net.h>
#include <linux/slab.h>
#include <linux/sizes.h>
#include <linux/string.h>
#include <net/netlink.h>

#include "session.h"
#include "device.h"
#include "netlink.h"
#include "trace.h"

/* How long the source may take to close after COMPLETE. */
#define PP_CLOSE_TIMEOUT_SECS	5

static DEFINE_IDR(pp_sessions);
static DEFINE_MUTEX(pp_sessions_lock);

/* Runs teardown and return-path work. */
struct workqueue_struct *pp_wq;

static void pp_session_teardown_work(struct work_struct *work);
static void pp_session_pause_work(struct work_struct *work);

static void pp_session_release(struct kref *kref)
{
	struct pp_session *s = container_of(kref, struct pp_session, kref);

	pp_request_destroy(&s->req);
	pp_store_destroy(&s->store);
	iput(s->inode);
	kfree(s);
}

/**
 * pp_session_get() - take a reference on a session
 * @s: the session, which the caller already holds a reference on
 */
void pp_session_get(struct pp_session *s)
{
	kref_get(&s->kref);
}

/**
 * pp_session_put() - drop a reference; the last one frees the session
 * @s: the session
 *
 * Context: process context; may sleep on the last reference.
 */
void pp_session_put(struct pp_session *s)
{
	kref_put(&s->kref, pp_session_release);
}

static bool pp_name_valid(const char *name)
{
	const char *p;

	if (!*name)
		return false;
	for (p = name; *p; p++) {
		if (!isascii(*p) ||
		    (!isalnum(*p) && *p != '-' && *p != '_' && *p != '.'))
			return false;
	}
	return true;
}

static struct pp_session *pp_session_find_name(const char *name)
{
	struct pp_session *s;
	int id;

	lockdep_assert_held(&pp_sessions_lock);
	idr_for_each_entry(&pp_sessions, s, id) {
		if (s->name[0] && !strcmp(s->name, name))
			return s;
	}
	return NULL;
}

/**
 * pp_session_create() - create a session and its device node
 * @size: bytes, a non-zero multiple of @page_size
 * @page_size: SZ_4K or SZ_2M
 * @name: unique name, or NULL
 * @pause_timeout: seconds the session may stay PAUSED, 0 for ever
 * @extack: where errors are explained
 *
 * Return: the session with a reference for the caller, or an ERR_PTR.
 */
struct pp_session *pp_session_create(u64 size, u32 page_size,
				     const char *name, u32 pause_timeout,
				     struct netlink_ext_ack *extack)
{
	struct pp_session *s;
	unsigned int i;
	int ret;

	if (page_size != SZ_4K && page_size != SZ_2M) {
		NL_SET_ERR_MSG(extack, "page size must be 4096 (4K) or 2097152 (2M)");
		return ERR_PTR(-EINVAL);
	}
	if (page_size == SZ_2M && !IS_ENABLED(CONFIG_TRANSPARENT_HUGEPAGE)) {
		NL_SET_ERR_MSG(extack, "2M pages need a kernel with CONFIG_TRANSPARENT_HUGEPAGE");
		return ERR_PTR(-EOPNOTSUPP);
	}
	if (!size || size > PAGEPUSH_SIZE_MAX || size % page_size) {
		NL_SET_ERR_MSG(extack, "size must be a multiple of the page size");
		return ERR_PTR(-EINVAL);
	}
	if (name && !pp_name_valid(name)) {
		NL_SET_ERR_MSG(extack, "name may hold only letters, digits, '-', '_' and '.'");
		return ERR_PTR(-EINVAL);
	}

	s = kzalloc(sizeof(*s), GFP_KERNEL);
	if (!s) {
		NL_SET_ERR_MSG(extack, "out of memory for the session");
		return ERR_PTR(-ENOMEM);
	}
	kref_init(&s->kref);
	s->size = size;
	s->page_shift = ilog2(page_size);
	s->pause_timeout = pause_timeout;
	if (name)
		strscpy(s->name, name, sizeof(s->name));
	mutex_init(&s->lock);
	spin_lock_init(&s->state_lock);
	spin_lock_init(&s->claim_lock);
	s->state = PAGEPUSH_STATE_NEW;
	INIT_WORK(&s->teardown_work, pp_session_teardown_work);
	INIT_DELAYED_WORK(&s->pause_work, pp_session_pause_work);
	for (i = 0; i < PAGEPUSH_NR_CHANNELS; i++)
		pp_channel_init(&s->chan[i], s, i);

	ret = pp_store_init(&s->store, size >> s->page_shift,
			    s->page_shift - PAGE_SHIFT);
	if (ret) {
		NL_SET_ERR_MSG(extack, "out of memory for the page index");
		goto out_free;
	}
	ret = pp_request_init(&s->req, s->store.nr_pages);
	if (ret) {
		NL_SET_ERR_MSG(extack, "out of memory for the request queue");
		goto out_store;
	}
	s->inode = pp_device_alloc_inode();
	if (IS_ERR(s->inode)) {
		NL_SET_ERR_MSG(extack, "cannot allocate the session's inode");
		ret = PTR_ERR(s->inode);
		goto out_request;
	}

	mutex_lock(&pp_sessions_lock);
	if (name && pp_session_find_name(name)) {
		NL_SET_ERR_MSG(extack, "a session with that name exists already");
		ret = -EEXIST;
		goto out_unlock;
	}
	ret = idr_alloc(&pp_sessions, s, 0, PP_MAX_SESSIONS, GFP_KERNEL);
	if (ret < 0) {
		if (ret == -ENOSPC)
			NL_SET_ERR_MSG(extack, "all 1024 sessions are in use");
		else
			NL_SET_ERR_MSG(extack, "out of memory for the session index");
		goto out_unlock;
	}
	s->index = ret;
	if (!try_module_get(THIS_MODULE)) {
		NL_SET_ERR_MSG(extack, "the module is being unloaded");
		ret = -ENODEV;
		goto out_idr;
	}
	ret = pp_device_add(s);
	if (ret) {
		NL_SET_ERR_MSG(extack, "cannot create the device node");
		goto out_module;
	}
	/* The registry's reference, dropped by DEL. */
	pp_session_get(s);
	mutex_unlock(&pp_sessions_lock);

	pp_nl_notify(s, PAGEPUSH_EVENT_CREATED);
	return s;

out_module:
	module_put(THIS_MODULE);
out_idr:
	idr_remove(&pp_sessions, s->index);
out_unlock:
	mutex_unlock(&pp_sessions_lock);
	iput(s->inode);
out_request:
	pp_request_destroy(&s->req);
out_store:
	pp_store_destroy(&s->store);
out_free:
	kfree(s);
	return ERR_PTR(ret);
}

/**
 * pp_session_lookup() - find a session by index
 * @index: N of /dev/pagepushN
 *
 * Return: the session with a reference for the caller, or NULL.
 */
struct pp_session *pp_session_lookup(u32 index)
{
	struct pp_session *s;

	mutex_lock(&pp_sessions_lock);
	s = idr_find(&pp_sessions, index);
	if (s)
		pp_session_get(s);
	mutex_unlock(&pp_sessions_lock);
	return s;
}

/**
 * pp_session_next() - the session with the lowest index >= *@index
 * @index: where to start; set to the index found
 *
 * Return: the session with a reference for the caller, or NULL at the end.
 */
struct pp_session *pp_session_next(u32 *index)
{
	struct pp_session *s;
	int id = *index;

	mutex_lock(&pp_sessions_lock);
	s = idr_get_next(&pp_sessions, &id);
	if (s) {
		pp_session_get(s);
		*index = id;
	}
	mutex_unlock(&pp_sessions_lock);
	return s;
}

/**
 * pp_session_read_state() - a consistent copy of the state and reason
 * @s: the session
 * @state: where the state goes
 * @reason: where the reason goes ("" if none)
 * @len: size of @reason
 */
void pp_session_read_state(struct pp_session *s, enum pagepush_state *state,
			   char *reason, size_t len)
{
	spin_lock(&s->state_lock);
	*state = s->state;
	strscpy(reason, s->reason, len);
	spin_unlock(&s->state_lock);
}

static enum pagepush_event pp_session_event(enum pagepush_state state)
{
	switch (state) {
	case PAGEPUSH_STATE_COMPLETE:
		return PAGEPUSH_EVENT_COMPLETE;
	case PAGEPUSH_STATE_PAUSED:
		return PAGEPUSH_EVENT_PAUSED;
	case PAGEPUSH_STATE_CONNECTED:
		return PAGEPUSH_EVENT_RESUMED;
	default:
		return PAGEPUSH_EVENT_FAILED;
	}
}

/*
 * The state changes pp_session_end() makes; CONNECT and RECOVER make the
 * others (NEW and PAUSED to CONNECTED).
 */
static bool pp_session_may_end(enum pagepush_state old,
			       enum pagepush_state new)
{
	switch (old) {
	case PAGEPUSH_STATE_NEW:
	case PAGEPUSH_STATE_PAUSED:
		return new == PAGEPUSH_STATE_FAILED;
	case PAGEPUSH_STATE_CONNECTED:
		return true;
	default:
		return false;
	}
}

/*
 * Move to @new (COMPLETE, FAILED or PAUSED) if the current state allows
 * it. Returns the old state. Leaving CONNECTED queues a teardown, which
 * announces the state it leaves the session in; other changes are
 * announced here.
 */
static enum pagepush_state pp_session_end(struct pp_session *s,
					  enum pagepush_state new,
					  const char *reason)
{
	enum pagepush_state old;
	bool notify;

	spin_lock(&s->state_lock);
	old = s->state;
	if (!pp_session_may_end(old, new)) {
		spin_unlock(&s->state_lock);
		return old;
	}
	if (reason)
		strscpy(s->reason, reason, sizeof(s->reason));
	WRITE_ONCE(s->state, new);
	/*
	 * Queued under the lock: DEL, which ends the session the same way,
	 * must find the teardown queued when it flushes it.
	 */
	if (old == PAGEPUSH_STATE_CONNECTED) {
		s->teardown_pending = true;
		pp_session_get(s);
		queue_work(pp_wq, &s->teardown_work);
	}
	notify = !s->teardown_pending;
	if (new == PAGEPUSH_STATE_PAUSED) {
		s->paused_since = jiffies;
		atomic64_inc(&s->pauses);
		if (s->pause_timeout)
			queue_delayed_work(pp_wq, &s->pause_work,
					   s->pause_timeout * HZ);
	}
	spin_unlock(&s->state_lock);
	trace_pagepush_state(s->index, old, new);

	/* Held tasks re-check the state: map, SIGBUS, or keep waiting. */
	pp_store_wake_all(&s->store);
	if (notify)
		pp_nl_notify(s, pp_session_event(new));
	return old;
}

static __printf(3, 0) void pp_session_vend(struct pp_session *s,
					    enum pagepush_state new,
					    const char *fmt, va_list args)
{
	char reason[PAGEPUSH_REASON_MAX + 1];
	enum pagepush_state old;

	vscnprintf(reason, sizeof(reason), fmt, args);
	old = pp_session_end(s, new, reason);
	if (!pp_session_may_end(old, new))
		return;
	if (new == PAGEPUSH_STATE_PAUSED)
		pr_info("session %u paused: %s\n", s->index, reason);
	else if (old != PAGEPUSH_STATE_NEW)
		pr_info("session %u failed: %s\n", s->index, reason);
}

/**
 * pp_session_fail() - give up on a session
 * @s: the session
 * @fmt: reason, printf-style; reported by GET and the events group
 *
 * Absent pages answer SIGBUS from now on; tasks held on them are woken
 * to get it. Sockets and threads are released by the teardown work, which
 * also tells the source (ABORT) when it can. Does nothing to a session
 * that is COMPLETE or FAILED.
 *
 * Context: process context.
 */
void pp_session_fail(struct pp_session *s, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	pp_session_vend(s, PAGEPUSH_STATE_FAILED, fmt, args);
	va_end(args);
}

/**
 * pp_session_pause() - a connection was lost: wait for RECOVER
 * @s: the session
 * @fmt: reason, printf-style; reported by GET and the events group
 *
 * Only a CONNECTED session pauses. Its sockets and threads are released
 * by the teardown work, the page each channel was assembling is dropped,
 * and tasks stay held (killably), as do new faults on absent pages, until
 * RECOVER resumes the session or it fails (DEL, pause timeout).
 *
 * Context: process context.
 */
void pp_session_pause(struct pp_session *s, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	pp_session_vend(s, PAGEPUSH_STATE_PAUSED, fmt, args);
	va_end(args);
}

/* Gives up on a session that stayed PAUSED for its pause timeout. */
static void pp_session_pause_work(struct work_struct *work)
{
	struct pp_session *s = container_of(to_delayed_work(work),
					    struct pp_session, pause_work);
	char reason[PAGEPUSH_REASON_MAX + 1];
	unsigned long deadline;
	bool paused;

	spin_lock(&s->state_lock);
	paused = s->state == PAGEPUSH_STATE_PAUSED;
	deadline = s->paused_since + s->pause_timeout * HZ;
	strscpy(reason, s->reason, sizeof(reason));
	spin_unlock(&s->state_lock);
	if (!paused)
		return;
	/* Paused again since this was queued: wait for the new deadline. */
	if (time_before(jiffies, deadline)) {
		queue_delayed_work(pp_wq, &s->pause_work, deadline - jiffies);
		return;
	}
	pp_session_fail(s, "not recovered within %u s (%s)", s->pause_timeout,
			reason);
}

/**
 * pp_session_page_placed() - account for a page made present
 * @s: the session
 *
 * Called after each successful placement; the last one completes the
 * session.
 */
void pp_session_page_placed(struct pp_session *s)
{
	if (pp_store_complete(&s->store))
		pp_session_end(s, PAGEPUSH_STATE_COMPLETE, NULL);
}

static void pp_session_teardown_work(struct work_struct *work)
{
	struct pp_session *s = container_of(work, struct pp_session,
					    teardown_work);
	enum pagepush_state state = pp_session_state(s);
	unsigned int i;

	mutex_lock(&s->lock);
	if (state == PAGEPUSH_STATE_COMPLETE) {
		/*
		 * Let a request being written finish, say COMPLETE, close our
		 * direction and let the source close: the receive threads
		 * read what is left (EOS) and end at its end of file. A
		 * close with unread data would reset the connection and could
		 * drop COMPLETE.
		 */
		pp_request_stop(&s->req);
		if (!pp_request_send_final(s, PAGEPUSH_FRAME_COMPLETE, true)) {
			for (i = 0; i < PAGEPUSH_NR_CHANNELS; i++)
				pp_channel_shutdown(&s->chan[i], SHUT_WR);
			for (i = 0; i < PAGEPUSH_NR_CHANNELS; i++)
				pp_channel_wait_done(&s->chan[i],
						     PP_CLOSE_TIMEOUT_SECS * HZ);
		}
	} else if (state == PAGEPUSH_STATE_FAILED) {
		/*
		 * Tell the source not to wait for a recovery, if that can be
		 * done at once; a writer blocked on a full socket is not
		 * waited for.
		 */
		pp_request_send_final(s, PAGEPUSH_FRAME_ABORT, false);
	}
	/* Shutting the sockets down wakes the threads and any writer. */
	for (i = 0; i < PAGEPUSH_NR_CHANNELS; i++)
		pp_channel_shutdown(&s->chan[i], SHUT_RDWR);
	pp_request_stop(&s->req);
	for (i = 0; i < PAGEPUSH_NR_CHANNELS; i++)
		pp_channel_stop(&s->chan[i]);

	/*
	 * Announce the state the session is in now (a PAUSED session may
	 * have failed meanwhile), before RECOVER can resume it.
	 */
	spin_lock(&s->state_lock);
	state = s->state;
	s->teardown_pending = false;
	spin_unlock(&s->state_lock);
	if (state == PAGEPUSH_STATE_COMPLETE)
		pr_info("session %u complete\n", s->index);
	pp_nl_notify(s, pp_session_event(state));
	mutex_unlock(&s->lock);
	pp_session_put(s);
}

/*
 * Start receiving on new sockets: CONNECT (from NEW) and RECOVER (from
 * PAUSED). Under s->lock, with the state checked and no teardown pending.
 * Consumes the socket references, also on failure.
 */
static int pp_session_start(struct pp_session *s, struct socket *pre,
			    struct socket *post, enum pagepush_state from,
			    struct netlink_ext_ack *extack)
{
	bool recover = from == PAGEPUSH_STATE_PAUSED;
	struct pp_channel *chan = s->chan;
	unsigned int i;
	int ret;

	lockdep_assert_held(&s->lock);

	/* The channels own the sockets from here on. */
	ret = pp_channel_prepare(&chan[PAGEPUSH_CHANNEL_PRECOPY], pre);
	if (post) {
		if (ret)
			pp_channel_put_socket(post);
		else
			ret = pp_channel_prepare(&chan[PAGEPUSH_CHANNEL_POSTCOPY],
						 post);
	}
	if (ret) {
		/* Nothing ran: the state did not change. */
		for (i = 0; i < PAGEPUSH_NR_CHANNELS; i++)
			pp_channel_stop(&chan[i]);
		NL_SET_ERR_MSG(extack, "cannot start a receive thread");
		return ret;
	}

	/*
	 * Requests made while paused were never sent (the return path was
	 * stopped): held tasks ask again once the new epoch wakes them.
	 */
	if (recover)
		bitmap_zero(s->store.requested, s->store.nr_pages);
	pp_request_start(&s->req, pre, recover);

	spin_lock(&s->state_lock);
	/* DEL may have ended the session meanwhile: it does not take s->lock. */
	if (s->state != from) {
		spin_unlock(&s->state_lock);
		pp_request_stop(&s->req);
		for (i = 0; i < PAGEPUSH_NR_CHANNELS; i++)
			pp_channel_stop(&chan[i]);
		NL_SET_ERR_MSG(extack, "the session was deleted");
		return -ENOENT;
	}
	WRITE_ONCE(s->state, PAGEPUSH_STATE_CONNECTED);
	s->reason[0] = '\0';
	/* Pairs with pp_session_epoch(): the return path is started. */
	smp_store_release(&s->epoch, s->epoch + 1);
	spin_unlock(&s->state_lock);
	trace_pagepush_state(s->index, from, PAGEPUSH_STATE_CONNECTED);

	if (recover) {
		atomic64_inc(&s->recoveries);
		cancel_delayed_work(&s->pause_work);
		/* Held tasks ask again, on the new connections. */
		pp_store_wake_all(&s->store);
		/* The source waits for what we have before it sends. */
		pp_request_kick(&s->req);
	}
	for (i = 0; i < PAGEPUSH_NR_CHANNELS; i++)
		pp_channel_run(&chan[i]);
	return 0;
}

/**
 * pp_session_connect() - hand a NEW session its sockets and start it
 * @s: the session
 * @pre: PRECOPY socket from pp_channel_lookup_socket()
 * @post: POSTCOPY socket from pp_channel_lookup_socket(), or NULL when
 *	the source sends everything on one connection
 * @cookie: migration cookie, for reports
 * @extack: where errors are explained
 *
 * The session owns both sockets from now on, also when this fails.
 *
 * Return: 0 or a negative errno.
 */
int pp_session_connect(struct pp_session *s, struct socket *pre,
		       struct socket *post, u64 cookie,
		       struct netlink_ext_ack *extack)
{
	int ret;

	mutex_lock(&s->lock);
	if (pp_session_state(s) != PAGEPUSH_STATE_NEW) {
		mutex_unlock(&s->lock);
		pp_channel_put_socket(pre);
		if (post)
			pp_channel_put_socket(post);
		NL_SET_ERR_MSG(extack, "the session is connected already or has ended");
		return -EBUSY;
	}
	WRITE_ONCE(s->cookie, cookie);
	ret = pp_session_start(s, pre, post, PAGEPUSH_STATE_NEW, extack);
	mutex_unlock(&s->lock);
	if (!ret)
		pp_nl_notify(s, PAGEPUSH_EVENT_CONNECTED);
	return ret;
}

/**
 * pp_session_recover() - hand a PAUSED session new sockets and resume it
 * @s: the session
 * @pre: PRECOPY socket from pp_channel_lookup_socket()
 * @post: POSTCOPY socket, or NULL for one connection
 * @cookie: migration cookie; must be the one given at CONNECT
 * @extack: where errors are explained
 *
 * The new connections go to the same source, which learns first, on the
 * return path, which pages are present (PRESENT frames, then RESUME).
 * Held tasks then ask again for the pages they wait for. The session owns
 * both sockets from now on, also when this fails.
 *
 * Return: 0 or a negative errno.
 */
int pp_session_recover(struct pp_session *s, struct socket *pre,
		       struct socket *post, u64 cookie,
		       struct netlink_ext_ack *extack)
{
	enum pagepush_state state;
	bool pending;
	int ret;

	/* The sockets of the lost connections are released first. */
	for (;;) {
		flush_work(&s->teardown_work);
		mutex_lock(&s->lock);
		spin_lock(&s->state_lock);
		state = s->state;
		pending = s->teardown_pending;
		spin_unlock(&s->state_lock);
		if (state != PAGEPUSH_STATE_PAUSED || !pending)
			break;
		mutex_unlock(&s->lock);
	}

	if (state != PAGEPUSH_STATE_PAUSED) {
		NL_SET_ERR_MSG(extack, "the session is not paused: nothing to recover");
		ret = -EBUSY;
	} else if (cookie != READ_ONCE(s->cookie)) {
		NL_SET_ERR_MSG(extack, "the cookie is not this session's migration");
		ret = -EINVAL;
	} else {
		ret = pp_session_start(s, pre, post, PAGEPUSH_STATE_PAUSED,
				       extack);
		pre = NULL;
		post = NULL;
	}
	mutex_unlock(&s->lock);
	if (pre)
		pp_channel_put_socket(pre);
	if (post)
		pp_channel_put_socket(post);
	if (!ret) {
		pr_info("session %u resumed\n", s->index);
		pp_nl_notify(s, PAGEPUSH_EVENT_RESUMED);
	}
	return ret;
}

/**
 * pp_session_delete() - delete a session
 * @index: N of /dev/pagepushN
 *
 * The device node goes away and the session can no longer be found.
 * A migration in progress is stopped (it fails with "session deleted"),
 * and its sockets and threads are released before this returns. Open
 * files and mappings keep the session's memory: pages that arrived stay
 * mapped and usable, touching one that never arrived gets SIGBUS. The
 * memory is freed when the last file and mapping go.
 *
 * Return: 0 or -ENOENT.
 */
int pp_session_delete(u32 index)
{
	struct pp_session *s;

	mutex_lock(&pp_sessions_lock);
	s = idr_remove(&pp_sessions, index);
	if (!s) {
		mutex_unlock(&pp_sessions_lock);
		return -ENOENT;
	}
	pp_device_del(s);
	mutex_unlock(&pp_sessions_lock);

	pp_session_fail(s, "session deleted");
	flush_work(&s->teardown_work);
	/* Nothing pauses a FAILED session again: the timer stays off. */
	cancel_delayed_work_sync(&s->pause_work);
	pp_nl_notify(s, PAGEPUSH_EVENT_DELETED);
	pp_session_put(s);
	module_put(THIS_MODULE);
	return 0;
}

/**
 * pp_sessions_init() - set up the registry's workqueue
 *
 * Return: 0 or -ENOMEM.
 */
int pp_sessions_init(void)
{
	/*
	 * Requests are on the fault path: high priority. Teardown and
	 * requests may run while memory is short (faults happen then too).
	 */
	pp_wq = alloc_workqueue("pagepush", WQ_HIGHPRI | WQ_MEM_RECLAIM, 0);
	return pp_wq ? 0 : -ENOMEM;
}

/**
 * pp_sessions_exit() - tear the registry down
 *
 * Every session holds a module reference until DEL, so none is left.
 */
void pp_sessions_exit(void)
{
	destroy_workqueue(pp_wq);
	WARN_ON_ONCE(!idr_is_empty(&pp_sessions));
	idr_destroy(&pp_sessions);
}
