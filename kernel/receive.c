// SPDX-License-Identifier: GPL-2.0
/*
 * pagepush receive threads: one per channel, parsing frames and assembling
 * pages straight into their final place.
 *
 * Frames are parsed straight from the socket's queue with tcp_read_sock(),
 * the way NVMe/TCP reads its PDUs: a chunk's payload is copied from the
 * skbs into its final place in the page, and one pass handles every frame
 * that has arrived, with no per-frame receive call. A frame may straddle
 * skbs, and so passes: the channel keeps where it is in the current frame.
 *
 * The assembly rule (Documentation/protocol.rst): a channel assembles at
 * most one page at a time. The chunks of a page arrive on one channel, in
 * order and without gaps, and nothing else arrives on that channel until
 * the page is complete; only then is it published. A page that the other
 * channel is assembling is never touched (split brain). Any frame that
 * breaks a rule fails the session; nothing is written outside the page
 * being assembled, which no task can see yet.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kthread.h>
#include <linux/mm.h>
#include <linux/net.h>
#include <linux/sched.h>
#include <net/sock.h>
#include <net/tcp.h>

#include "session.h"
#include "trace.h"

/* Bytes parsed per pass under the socket lock, which the return path needs. */
#define PP_RX_BUDGET	(64 * 1024)

/*
 * Fail the session for a frame that breaks the protocol; the reason is
 * traced and reported. Returns -EPROTO.
 */
static __printf(2, 3) int pp_proto_error(struct pp_channel *ch,
					 const char *fmt, ...)
{
	char reason[PAGEPUSH_REASON_MAX + 1];
	va_list args;

	va_start(args, fmt);
	vscnprintf(reason, sizeof(reason), fmt, args);
	va_end(args);
	trace_pagepush_protocol_error(ch->session->index, reason);
	pp_session_fail(ch->session, "%s", reason);
	return -EPROTO;
}

static struct pp_channel *pp_other(struct pp_channel *ch)
{
	return &ch->session->chan[!ch->id];
}

/*
 * Whether the session failed or paused: then nothing more is placed (what
 * is still queued on the other channel goes with its socket), so the pages
 * present stop changing when the state does. A COMPLETE session still
 * reads, and checks, what is left until the source closes.
 */
static bool pp_rx_stopped(struct pp_channel *ch)
{
	enum pagepush_state state = pp_session_state(ch->session);

	return state == PAGEPUSH_STATE_FAILED || state == PAGEPUSH_STATE_PAUSED;
}

/*
 * Whether the other channel is assembling page @idx. Under claim_lock; a
 * page the other channel completed and published is no longer its.
 */
static bool pp_claimed_by_other(struct pp_channel *ch, unsigned long idx)
{
	struct pp_session *s = ch->session;

	lockdep_assert_held(&s->claim_lock);
	return pp_other(ch)->partial_idx == idx &&
	       !pp_store_present(&s->store, idx);
}

static int pp_split_brain(struct pp_channel *ch, unsigned long idx)
{
	struct pp_session *s = ch->session;

	atomic64_inc(&s->split_brain);
	return pp_proto_error(ch, "split brain: page %lu came on %s, %s holds part of it",
			      idx, pp_channel_name(ch->id),
			      pp_channel_name(pp_other(ch)->id));
}

/* Start assembling page @idx on @ch, or skipping it if present. */
static int pp_begin_page(struct pp_channel *ch, unsigned long idx)
{
	struct pp_session *s = ch->session;
	struct page *page = NULL;

	if (!pp_store_present(&s->store, idx)) {
		/* Allocated before the socket was locked, if possible. */
		page = ch->spare;
		ch->spare = NULL;
		if (!page)
			page = pp_store_alloc(&s->store, 0);
		if (!page) {
			pp_session_fail(s, "out of memory for page %lu", idx);
			return -ENOMEM;
		}
	}

	spin_lock(&s->claim_lock);
	if (pp_claimed_by_other(ch, idx)) {
		spin_unlock(&s->claim_lock);
		if (page)
			pp_store_free(&s->store, page);
		return pp_split_brain(ch, idx);
	}
	ch->partial_idx = idx;
	spin_unlock(&s->claim_lock);

	ch->partial = page;
	ch->partial_len = 0;
	return 0;
}

/* The page @ch assembled is complete: publish it, or count a duplicate. */
static int pp_finish_page(struct pp_channel *ch)
{
	struct pp_session *s = ch->session;
	unsigned long idx = ch->partial_idx;
	bool placed = false;
	int ret = 0;

	if (ch->partial) {
		ret = pp_rx_stopped(ch) ? -ESHUTDOWN :
		      pp_store_place(&s->store, idx, ch->partial,
				     ch->id == PAGEPUSH_CHANNEL_POSTCOPY);
		if (!ret) {
			placed = true;
		} else {
			pp_store_free(&s->store, ch->partial);
			if (ret == -EEXIST)
				ret = 0;
			else if (ret == -ENOMEM)
				pp_session_fail(s, "out of memory placing page %lu", idx);
		}
		ch->partial = NULL;
	}

	spin_lock(&s->claim_lock);
	ch->partial_idx = PP_NO_PAGE;
	spin_unlock(&s->claim_lock);
	ch->partial_len = 0;

	if (placed) {
		trace_pagepush_page_placed(s->index, ch->id, idx, false);
		atomic64_inc(&ch->pages);
		pp_session_page_placed(s);
	} else if (!ret) {
		atomic64_inc(&ch->duplicates);
	}
	return ret;
}

/* A PAGE header: check it, then let its payload flow into the page. */
static int pp_rx_page(struct pp_channel *ch, u64 off, u32 len)
{
	struct pp_session *s = ch->session;
	unsigned long psize = pp_session_page_size(s);
	unsigned long idx, in_page;
	int ret;

	if (!len || off >= s->size || len > s->size - off)
		return pp_proto_error(ch, "PAGE [%llu, +%u) is empty or outside the region",
				      off, len);
	idx = off >> s->page_shift;
	in_page = off & (psize - 1);
	if (in_page + len > psize)
		return pp_proto_error(ch, "PAGE [%llu, +%u) crosses the end of page %lu",
				      off, len, idx);

	if (ch->partial_idx == PP_NO_PAGE) {
		if (in_page)
			return pp_proto_error(ch, "%s: PAGE at %llu does not start page %lu",
					      pp_channel_name(ch->id), off, idx);
		ret = pp_begin_page(ch, idx);
		if (ret)
			return ret;
	} else if (ch->partial_idx != idx) {
		return pp_proto_error(ch, "%s: page %lu started before page %lu was complete",
				      pp_channel_name(ch->id), idx, ch->partial_idx);
	} else if (in_page != ch->partial_len) {
		return pp_proto_error(ch, "%s: PAGE at %llu out of order in page %lu (want %lu)",
				      pp_channel_name(ch->id), off, idx,
				      ch->partial_len);
	}

	trace_pagepush_chunk(s->index, ch->id, idx, in_page, len);
	/* A duplicate page's payload is skipped: rx_dst NULL. */
	ch->rx_dst = ch->partial ? page_address(ch->partial) + in_page : NULL;
	ch->rx_left = len;
	return 0;
}

/* The payload of a PAGE frame is all in. */
static int pp_rx_payload_done(struct pp_channel *ch, u32 len)
{
	atomic64_add(len, &ch->bytes);
	ch->partial_len += len;
	if (ch->partial_len == pp_session_page_size(ch->session))
		return pp_finish_page(ch);
	return 0;
}

static int pp_rx_zero(struct pp_channel *ch, u64 off, u32 len)
{
	struct pp_session *s = ch->session;
	unsigned long psize = pp_session_page_size(s);
	unsigned long idx, end;
	bool split;
	int ret;

	if (!len || (off | len) & (psize - 1) || off >= s->size ||
	    len > s->size - off)
		return pp_proto_error(ch, "ZERO [%llu, +%u) is not whole pages of the region",
				      off, len);
	if (ch->partial_idx != PP_NO_PAGE)
		return pp_proto_error(ch, "%s: ZERO frame before page %lu was complete",
				      pp_channel_name(ch->id), ch->partial_idx);

	end = (off + len) >> s->page_shift;
	for (idx = off >> s->page_shift; idx < end; idx++) {
		cond_resched();
		if (pp_rx_stopped(ch))
			return -ESHUTDOWN;
		spin_lock(&s->claim_lock);
		split = pp_claimed_by_other(ch, idx);
		spin_unlock(&s->claim_lock);
		if (split)
			return pp_split_brain(ch, idx);

		ret = pp_store_place_zero(&s->store, idx,
					  ch->id == PAGEPUSH_CHANNEL_POSTCOPY);
		if (ret == -EEXIST) {
			atomic64_inc(&ch->duplicates);
			continue;
		}
		if (ret) {
			pp_session_fail(s, "out of memory placing zero page %lu", idx);
			return ret;
		}
		trace_pagepush_page_placed(s->index, ch->id, idx, true);
		atomic64_inc(&ch->zero_pages);
		atomic64_inc(&ch->pages);
		pp_session_page_placed(s);
	}
	return 0;
}

static int pp_rx_eos(struct pp_channel *ch)
{
	struct pp_session *s = ch->session;
	bool all = true;
	unsigned int i;

	if (ch->partial_idx != PP_NO_PAGE)
		return pp_proto_error(ch, "%s: EOS in the middle of page %lu",
				      pp_channel_name(ch->id), ch->partial_idx);

	/* Both channels may see EOS at once: one of them must see both. */
	spin_lock(&s->claim_lock);
	ch->eos = true;
	for (i = 0; i < PAGEPUSH_NR_CHANNELS; i++) {
		if (s->chan[i].sock && !s->chan[i].eos)
			all = false;
	}
	spin_unlock(&s->claim_lock);

	if (!all || pp_store_complete(&s->store))
		return 0;
	return pp_proto_error(ch, "the source ended the stream with %lu pages missing",
			      s->store.nr_pages -
			      atomic_long_read(&s->store.nr_present));
}

static int pp_rx_frame(struct pp_channel *ch, const struct pagepush_frame *f)
{
	u64 off = le64_to_cpu(f->offset);
	u32 len = le32_to_cpu(f->length);

	if (pp_rx_stopped(ch))
		return -ESHUTDOWN;
	if (f->version != PAGEPUSH_WIRE_VERSION || f->flags)
		return pp_proto_error(ch, "%s: bad frame header (version %u, flags %#x)",
				      pp_channel_name(ch->id), f->version,
				      le16_to_cpu(f->flags));
	if (ch->eos)
		return pp_proto_error(ch, "%s: frame after EOS",
				      pp_channel_name(ch->id));

	switch (f->type) {
	case PAGEPUSH_FRAME_PAGE:
		return pp_rx_page(ch, off, len);
	case PAGEPUSH_FRAME_ZERO:
		return pp_rx_zero(ch, off, len);
	case PAGEPUSH_FRAME_EOS:
		return pp_rx_eos(ch);
	case PAGEPUSH_FRAME_DISCARD:
		return pp_proto_error(ch, "DISCARD frames are not supported by this version");
	default:
		return pp_proto_error(ch, "%s: unexpected frame type %u",
				      pp_channel_name(ch->id), f->type);
	}
}

/*
 * tcp_read_sock() actor: parse what @skb holds from @offset, at most @len
 * bytes, and the pass's budget. Returns the bytes used; 0 stops the pass
 * (budget spent, or an error saved in desc->error).
 */
static int pp_rx_actor(read_descriptor_t *desc, struct sk_buff *skb,
		       unsigned int offset, size_t len)
{
	struct pp_channel *ch = desc->arg.data;
	size_t used = 0, n;
	int ret = 0;

	if (desc->error || !desc->count)
		return 0;
	len = min(len, desc->count);

	while (used < len && !ret) {
		if (ch->rx_left) {
			/* Payload: straight into the page being assembled. */
			n = min_t(size_t, len - used, ch->rx_left);
			if (ch->rx_dst) {
				ret = skb_copy_bits(skb, offset + used, ch->rx_dst, n);
				if (ret)
					break;
				ch->rx_dst += n;
			}
			used += n;
			ch->rx_left -= n;
			if (!ch->rx_left)
				ret = pp_rx_payload_done(ch,
							 le32_to_cpu(ch->rx_hdr.length));
			continue;
		}

		/* Header, which may straddle skbs. */
		n = min_t(size_t, len - used, sizeof(ch->rx_hdr) - ch->rx_have);
		ret = skb_copy_bits(skb, offset + used,
				    (u8 *)&ch->rx_hdr + ch->rx_have, n);
		if (ret)
			break;
		used += n;
		ch->rx_have += n;
		if (ch->rx_have == sizeof(ch->rx_hdr)) {
			ch->rx_have = 0;
			ret = pp_rx_frame(ch, &ch->rx_hdr);
		}
	}

	desc->count -= used;
	if (ret)
		desc->error = ret;
	return used;
}

/* Parse what has arrived; 0, -EAGAIN when nothing had, or an errno. */
static int pp_rx_pass(struct pp_channel *ch)
{
	struct sock *sk = ch->sock->sk;
	read_descriptor_t desc = {
		.arg.data = ch,
		.count = PP_RX_BUDGET,
	};
	long timeo = MAX_SCHEDULE_TIMEOUT;
	int read, ret = 0;

	/*
	 * The next page to assemble is allocated here, not under the socket
	 * lock: a huge page may need compaction, and the return path waits
	 * for the lock. A failure here is retried where the page is needed.
	 */
	if (!ch->spare && !pp_store_complete(&ch->session->store))
		ch->spare = pp_store_alloc(&ch->session->store, 0);

	lock_sock(sk);
	read = tcp_read_sock(sk, &desc, pp_rx_actor);
	if (desc.error) {
		ret = desc.error;
	} else if (read < 0) {
		ret = read;
	} else if (read == 0) {
		ret = sock_error(sk);
		if (!ret && (sk->sk_shutdown & RCV_SHUTDOWN ||
			     sock_flag(sk, SOCK_DONE)))
			ret = -ECONNRESET;
		/* Sleeps with the socket unlocked until something arrives. */
		if (!ret) {
			sk_wait_data(sk, &timeo, NULL);
			ret = -EAGAIN;
		}
	}
	release_sock(sk);
	return ret;
}

/**
 * pp_receive_thread() - receive loop of one channel
 * @data: the &struct pp_channel
 *
 * Runs until the socket fails, the peer closes it, or the teardown shuts
 * it down, then waits to be stopped. A protocol error fails the session;
 * a lost connection pauses it.
 *
 * Return: 0.
 */
int pp_receive_thread(void *data)
{
	struct pp_channel *ch = data;
	struct pp_session *s = ch->session;
	int ret = 0;

	ch->rx_have = 0;
	ch->rx_left = 0;
	while (!kthread_should_stop()) {
		ret = pp_rx_pass(ch);
		atomic64_set(&ch->cpu_ns, current->se.sum_exec_runtime);
		if (ret && ret != -EAGAIN)
			break;
		cond_resched();
	}
	complete(&ch->done);

	/*
	 * A lost connection pauses the session, unless it ended and shut
	 * the socket down (then it is no longer CONNECTED).
	 */
	if (ret == -ECONNRESET)
		pp_session_pause(s, "%s connection lost (closed by the source)",
				 pp_channel_name(ch->id));
	else if (ret && ret != -EPROTO && ret != -ENOMEM && ret != -ESHUTDOWN)
		pp_session_pause(s, "%s connection lost (error %pe)",
				 pp_channel_name(ch->id), ERR_PTR(ret));

	/* kthread_stop() needs the thread alive until it is called. */
	set_current_state(TASK_INTERRUPTIBLE);
	while (!kthread_should_stop()) {
		schedule();
		set_current_state(TASK_INTERRUPTIBLE);
	}
	__set_current_state(TASK_RUNNING);
	return 0;
}
