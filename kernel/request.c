// SPDX-License-Identifier: GPL-2.0
/*
 * pagepush return path: REQUEST frames for pages tasks wait for, and the
 * final COMPLETE, on the reverse direction of the PRECOPY connection.
 *
 * A faulting task only queues the page index and kicks a work item; the
 * work item writes the frames. Writing from the faulting task itself
 * would let a fatal signal cut a frame in half and corrupt the stream;
 * one writer at a time also batches requests that pile up together.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/mm.h>
#include <linux/net.h>
#include <linux/slab.h>
#include <linux/socket.h>
#include <linux/uio.h>

#include "session.h"
#include "trace.h"

/* Frames written per sendmsg(). */
#define PP_REQ_BATCH	16
/* Ring slots at most; a full ring drops the request (the page still
 * arrives with the background stream, and the next fault asks again).
 */
#define PP_REQ_RING_MAX	65536

static int pp_send(struct socket *sock, void *buf, size_t len)
{
	struct kvec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = { .msg_flags = MSG_NOSIGNAL };
	int ret;

	ret = kernel_sendmsg(sock, &msg, &iov, 1, len);
	if (ret < 0)
		return ret;
	return ret == len ? 0 : -ETIMEDOUT;
}

static void pp_frame_init(struct pagepush_frame *f, u8 type, u64 offset,
			  u32 length)
{
	f->version = PAGEPUSH_WIRE_VERSION;
	f->type = type;
	f->flags = 0;
	f->length = cpu_to_le32(length);
	f->offset = cpu_to_le64(offset);
}

static void pp_request_work(struct work_struct *work)
{
	struct pp_request *req = container_of(work, struct pp_request, work);
	struct pp_session *s = container_of(req, struct pp_session, req);
	struct pagepush_frame frames[PP_REQ_BATCH];
	unsigned int n, i;
	int ret;

	for (;;) {
		n = 0;
		spin_lock(&req->lock);
		while (n < PP_REQ_BATCH && req->count) {
			u64 idx = req->ring[req->first];

			pp_frame_init(&frames[n++], PAGEPUSH_FRAME_REQUEST,
				      idx << s->page_shift,
				      pp_session_page_size(s));
			req->first = (req->first + 1) % req->nr_slots;
			req->count--;
		}
		spin_unlock(&req->lock);
		if (!n)
			return;

		ret = pp_send(req->sock, frames, n * sizeof(frames[0]));
		if (ret) {
			/* Maybe half a frame went out: nothing may follow. */
			WRITE_ONCE(req->broken, true);
			pp_session_fail(s, "return path: cannot send a request (error %d)",
					ret);
			return;
		}
		atomic64_add(n, &req->sent);
		for (i = 0; i < n; i++)
			trace_pagepush_request_sent(s->index,
						    le64_to_cpu(frames[i].offset) >>
						    s->page_shift);
	}
}

/**
 * pp_request_init() - set up an idle return path
 * @req: the return path, zeroed
 * @nr_pages: pages in the session
 *
 * Return: 0 or -ENOMEM.
 */
int pp_request_init(struct pp_request *req, unsigned long nr_pages)
{
	req->nr_slots = min_t(unsigned long, nr_pages, PP_REQ_RING_MAX);
	req->ring = kvmalloc_array(req->nr_slots, sizeof(*req->ring),
				   GFP_KERNEL);
	if (!req->ring)
		return -ENOMEM;
	spin_lock_init(&req->lock);
	INIT_WORK(&req->work, pp_request_work);
	req->stopped = true;
	return 0;
}

/**
 * pp_request_destroy() - free what pp_request_init() allocated
 * @req: a stopped return path
 */
void pp_request_destroy(struct pp_request *req)
{
	cancel_work_sync(&req->work);
	kvfree(req->ring);
}

/**
 * pp_request_start() - let requests go out on @sock
 * @req: the return path
 * @sock: the PRECOPY socket; must outlive pp_request_stop()
 */
void pp_request_start(struct pp_request *req, struct socket *sock)
{
	spin_lock(&req->lock);
	req->sock = sock;
	req->first = 0;
	req->count = 0;
	req->stopped = false;
	req->broken = false;
	spin_unlock(&req->lock);
}

/**
 * pp_request_stop() - stop sending; waits for a write in progress
 * @req: the return path
 *
 * A writer blocked on a full socket is released by shutting the socket
 * down or by the send timeout.
 */
void pp_request_stop(struct pp_request *req)
{
	spin_lock(&req->lock);
	req->stopped = true;
	req->count = 0;
	spin_unlock(&req->lock);
	cancel_work_sync(&req->work);
}

/**
 * pp_request_page() - ask the source for a page, once
 * @s: the session
 * @idx: page index a task waits for
 *
 * Only the first caller for a page queues a request.
 */
void pp_request_page(struct pp_session *s, unsigned long idx)
{
	struct pp_request *req = &s->req;
	bool queued = false;

	if (test_and_set_bit(idx, s->store.requested))
		return;

	spin_lock(&req->lock);
	if (!req->stopped && req->count < req->nr_slots) {
		req->ring[(req->first + req->count) % req->nr_slots] = idx;
		req->count++;
		queued = true;
	}
	spin_unlock(&req->lock);

	if (queued)
		queue_work(pp_wq, &req->work);
	else
		clear_bit(idx, s->store.requested);
}

/**
 * pp_request_send_complete() - tell the source every page is present
 * @s: the session, COMPLETE, its return path stopped
 *
 * Return: 0 or a negative errno (the source then sees the connection
 * close without COMPLETE).
 */
int pp_request_send_complete(struct pp_session *s)
{
	struct pagepush_frame f;

	if (READ_ONCE(s->req.broken))
		return -EPIPE;
	pp_frame_init(&f, PAGEPUSH_FRAME_COMPLETE, 0, 0);
	return pp_send(s->req.sock, &f, sizeof(f));
}
