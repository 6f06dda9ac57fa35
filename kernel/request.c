// SPDX-License-Identifier: GPL-2.0
/*
 * pagepush return path: REQUEST frames for pages tasks wait for, the final
 * COMPLETE (or ABORT), and after a recovery the PRESENT bitmap, on the
 * reverse direction of the PRECOPY connection.
 *
 * A faulting task only queues the page index and kicks a work item; the
 * work item writes the frames. Writing from the faulting task itself
 * would let a fatal signal cut a frame in half and corrupt the stream;
 * one writer at a time also batches requests that pile up together.
 *
 * A write that fails pauses the session: the connection is lost.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/mm.h>
#include <linux/net.h>
#include <linux/slab.h>
#include <linux/socket.h>
#include <linux/uio.h>
#include <linux/xarray.h>

#include "session.h"
#include "trace.h"

/* Frames written per sendmsg(). */
#define PP_REQ_BATCH	16
/* Ring slots at most; a full ring drops the request (the page still
 * arrives with the background stream, and the next fault asks again).
 */
#define PP_REQ_RING_MAX	65536
/* Bitmap bytes per PRESENT frame: 32768 pages. */
#define PP_PRESENT_BYTES	4096
/* pp_request.present_next when no PRESENT frame is due. */
#define PP_PRESENT_DONE	ULONG_MAX

static int pp_send(struct socket *sock, struct kvec *iov, size_t nr,
		   size_t len, int flags)
{
	struct msghdr msg = { .msg_flags = MSG_NOSIGNAL | flags };
	int ret;

	ret = kernel_sendmsg(sock, &msg, iov, nr, len);
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

/*
 * After a recovery, before any request: which pages are present, as a
 * bitmap in PRESENT frames covering the region in order, then RESUME.
 * Nothing arrives meanwhile: the source sends only once it has RESUME.
 */
static int pp_request_send_present(struct pp_session *s)
{
	struct pp_request *req = &s->req;
	struct pp_store *st = &s->store;
	u8 *buf = req->present_buf;
	unsigned long first, nbits, idx;
	struct pagepush_frame f;
	struct kvec iov[2];
	size_t bytes;
	void *entry;
	int ret;

	while (req->present_next < st->nr_pages) {
		if (READ_ONCE(req->stopped))
			return 0;
		first = req->present_next;
		nbits = min_t(unsigned long, st->nr_pages - first,
			      PP_PRESENT_BYTES * BITS_PER_BYTE);
		bytes = DIV_ROUND_UP(nbits, BITS_PER_BYTE);
		memset(buf, 0, bytes);
		xa_for_each_range(&st->pages, idx, entry, first,
				  first + nbits - 1)
			buf[(idx - first) / BITS_PER_BYTE] |=
				BIT((idx - first) % BITS_PER_BYTE);

		pp_frame_init(&f, PAGEPUSH_FRAME_PRESENT,
			      (u64)first << s->page_shift, bytes);
		iov[0].iov_base = &f;
		iov[0].iov_len = sizeof(f);
		iov[1].iov_base = buf;
		iov[1].iov_len = bytes;
		ret = pp_send(req->sock, iov, 2, sizeof(f) + bytes, 0);
		if (ret)
			return ret;
		req->present_next = first + nbits;
		cond_resched();
	}

	pp_frame_init(&f, PAGEPUSH_FRAME_RESUME, 0, 0);
	iov[0].iov_base = &f;
	iov[0].iov_len = sizeof(f);
	ret = pp_send(req->sock, iov, 1, sizeof(f), 0);
	if (!ret)
		req->present_next = PP_PRESENT_DONE;
	return ret;
}

static void pp_request_work(struct work_struct *work)
{
	struct pp_request *req = container_of(work, struct pp_request, work);
	struct pp_session *s = container_of(req, struct pp_session, req);
	struct pagepush_frame frames[PP_REQ_BATCH];
	struct kvec iov;
	unsigned int n, i;
	int ret = 0;

	mutex_lock(&req->send_lock);
	if (req->broken)
		goto out;
	if (req->present_next != PP_PRESENT_DONE) {
		ret = pp_request_send_present(s);
		/* Requests wait until the bitmap is out. */
		if (ret || req->present_next != PP_PRESENT_DONE)
			goto out;
	}

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
			break;

		iov.iov_base = frames;
		iov.iov_len = n * sizeof(frames[0]);
		ret = pp_send(req->sock, &iov, 1, iov.iov_len, 0);
		if (ret)
			break;
		atomic64_add(n, &req->sent);
		for (i = 0; i < n; i++)
			trace_pagepush_request_sent(s->index,
						    le64_to_cpu(frames[i].offset) >>
						    s->page_shift);
	}
out:
	/* Maybe half a frame went out: nothing may follow. */
	if (ret)
		WRITE_ONCE(req->broken, true);
	mutex_unlock(&req->send_lock);
	if (ret)
		pp_session_pause(s, "return path lost (error %d)", ret);
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
	req->present_buf = kmalloc(PP_PRESENT_BYTES, GFP_KERNEL);
	if (!req->present_buf) {
		kvfree(req->ring);
		return -ENOMEM;
	}
	spin_lock_init(&req->lock);
	mutex_init(&req->send_lock);
	req->present_next = PP_PRESENT_DONE;
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
	kfree(req->present_buf);
	kvfree(req->ring);
}

/**
 * pp_request_start() - let requests go out on @sock
 * @req: the return path, stopped
 * @sock: the PRECOPY socket; must outlive pp_request_stop()
 * @recover: the connection resumes a paused session: the PRESENT bitmap
 *	goes out first, once pp_request_kick() is called
 */
void pp_request_start(struct pp_request *req, struct socket *sock,
		      bool recover)
{
	/* The work item is not running: pp_request_stop() cancelled it. */
	req->present_next = recover ? 0 : PP_PRESENT_DONE;
	req->broken = false;
	spin_lock(&req->lock);
	req->sock = sock;
	req->first = 0;
	req->count = 0;
	req->stopped = false;
	spin_unlock(&req->lock);
}

/**
 * pp_request_kick() - run the return path now
 * @req: a started return path
 */
void pp_request_kick(struct pp_request *req)
{
	queue_work(pp_wq, &req->work);
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
 * pp_request_send_final() - send COMPLETE or ABORT, the last frame
 * @s: the session, being torn down
 * @type: PAGEPUSH_FRAME_COMPLETE or PAGEPUSH_FRAME_ABORT
 * @wait: wait for a writer in progress and for room on the socket;
 *	otherwise give up at once (-EBUSY, -EAGAIN) rather than block
 *
 * Return: 0 or a negative errno (the source then sees the connection
 * close without the frame).
 */
int pp_request_send_final(struct pp_session *s, u8 type, bool wait)
{
	struct pp_request *req = &s->req;
	struct pagepush_frame f;
	struct kvec iov = { .iov_base = &f, .iov_len = sizeof(f) };
	int ret;

	if (wait)
		mutex_lock(&req->send_lock);
	else if (!mutex_trylock(&req->send_lock))
		return -EBUSY;
	if (req->broken) {
		ret = -EPIPE;
	} else {
		pp_frame_init(&f, type, 0, 0);
		ret = pp_send(req->sock, &iov, 1, sizeof(f),
			      wait ? 0 : MSG_DONTWAIT);
		if (ret)
			WRITE_ONCE(req->broken, true);
	}
	mutex_unlock(&req->send_lock);
	return ret;
}
