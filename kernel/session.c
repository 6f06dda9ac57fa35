// SPDX-License-Identifier: GPL-2.0
/*
 * pagepush sessions: creation, lookup, state changes, teardown, deletion.
 *
 * Locking, outermost first:
 *  - pp_sessions_lock (mutex): the registry (IDR, names) and each
 *    session's device node.
 *  - pp_session.lock (mutex): CONNECT, teardown and DEL of one session.
 *  - pp_session.state_lock, pp_session.claim_lock, pp_request.lock
 *    (spinlocks): leaves; nothing sleeps under them.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

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
 * @extack: where errors are explained
 *
 * Return: the session with a reference for the caller, or an ERR_PTR.
 */
struct pp_session *pp_session_create(u64 size, u32 page_size,
				     const char *name,
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
	if (name)
		strscpy(s->name, name, sizeof(s->name));
	mutex_init(&s->lock);
	spin_lock_init(&s->state_lock);
	spin_lock_init(&s->claim_lock);
	s->state = PAGEPUSH_STATE_NEW;
	INIT_WORK(&s->teardown_work, pp_session_teardown_work);
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

/*
 * Move to @new unless the session already ended. Returns the old state.
 * A teardown is queued when the session leaves CONNECTED.
 */
static enum pagepush_state pp_session_end(struct pp_session *s,
					  enum pagepush_state new,
					  const char *reason)
{
	enum pagepush_state old;

	spin_lock(&s->state_lock);
	old = s->state;
	if (old == PAGEPUSH_STATE_NEW || old == PAGEPUSH_STATE_CONNECTED) {
		if (reason)
			strscpy(s->reason, reason, sizeof(s->reason));
		WRITE_ONCE(s->state, new);
	}
	/*
	 * Queued under the lock: DEL, which ends the session the same way,
	 * must find the teardown queued when it flushes it.
	 */
	if (old == PAGEPUSH_STATE_CONNECTED) {
		pp_session_get(s);
		queue_work(pp_wq, &s->teardown_work);
	}
	spin_unlock(&s->state_lock);
	if (old != PAGEPUSH_STATE_NEW && old != PAGEPUSH_STATE_CONNECTED)
		return old;
	trace_pagepush_state(s->index, old, new);

	/* Held tasks re-check the state: map, or SIGBUS. */
	pp_store_wake_all(&s->store);
	if (old == PAGEPUSH_STATE_NEW)
		pp_nl_notify(s, PAGEPUSH_EVENT_FAILED);
	return old;
}

/**
 * pp_session_fail() - give up on a session
 * @s: the session
 * @fmt: reason, printf-style; reported by GET and the events group
 *
 * The first reason sticks. Absent pages answer SIGBUS from now on; tasks
 * held on them are woken to get it. Sockets and threads are released by
 * the teardown work. Does nothing to a session that is COMPLETE or FAILED.
 *
 * Context: process context.
 */
void pp_session_fail(struct pp_session *s, const char *fmt, ...)
{
	char reason[PAGEPUSH_REASON_MAX + 1];
	va_list args;

	va_start(args, fmt);
	vscnprintf(reason, sizeof(reason), fmt, args);
	va_end(args);

	if (pp_session_end(s, PAGEPUSH_STATE_FAILED, reason) ==
	    PAGEPUSH_STATE_CONNECTED)
		pr_info("session %u failed: %s\n", s->index, reason);
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
		if (!pp_request_send_complete(s)) {
			for (i = 0; i < PAGEPUSH_NR_CHANNELS; i++)
				pp_channel_shutdown(&s->chan[i], SHUT_WR);
			for (i = 0; i < PAGEPUSH_NR_CHANNELS; i++)
				pp_channel_wait_done(&s->chan[i],
						     PP_CLOSE_TIMEOUT_SECS * HZ);
		}
	}
	/* Shutting the sockets down wakes the threads and any writer. */
	for (i = 0; i < PAGEPUSH_NR_CHANNELS; i++)
		pp_channel_shutdown(&s->chan[i], SHUT_RDWR);
	pp_request_stop(&s->req);
	for (i = 0; i < PAGEPUSH_NR_CHANNELS; i++)
		pp_channel_stop(&s->chan[i]);
	mutex_unlock(&s->lock);

	if (state == PAGEPUSH_STATE_COMPLETE)
		pr_info("session %u complete\n", s->index);
	pp_nl_notify(s, state == PAGEPUSH_STATE_COMPLETE ?
		     PAGEPUSH_EVENT_COMPLETE : PAGEPUSH_EVENT_FAILED);
	pp_session_put(s);
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
	struct pp_channel *chan = s->chan;
	unsigned int i;
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
		/* Nothing ran: the session stays NEW. */
		for (i = 0; i < PAGEPUSH_NR_CHANNELS; i++)
			pp_channel_stop(&chan[i]);
		mutex_unlock(&s->lock);
		NL_SET_ERR_MSG(extack, "cannot start a receive thread");
		return ret;
	}

	WRITE_ONCE(s->cookie, cookie);
	pp_request_start(&s->req, pre);
	spin_lock(&s->state_lock);
	/* DEL may have ended the session meanwhile: it does not take s->lock. */
	if (s->state != PAGEPUSH_STATE_NEW) {
		spin_unlock(&s->state_lock);
		pp_request_stop(&s->req);
		for (i = 0; i < PAGEPUSH_NR_CHANNELS; i++)
			pp_channel_stop(&chan[i]);
		mutex_unlock(&s->lock);
		NL_SET_ERR_MSG(extack, "the session was deleted");
		return -ENOENT;
	}
	WRITE_ONCE(s->state, PAGEPUSH_STATE_CONNECTED);
	spin_unlock(&s->state_lock);
	trace_pagepush_state(s->index, PAGEPUSH_STATE_NEW,
			     PAGEPUSH_STATE_CONNECTED);
	for (i = 0; i < PAGEPUSH_NR_CHANNELS; i++)
		pp_channel_run(&chan[i]);
	mutex_unlock(&s->lock);

	pp_nl_notify(s, PAGEPUSH_EVENT_CONNECTED);
	return 0;
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
