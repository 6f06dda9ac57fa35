// SPDX-License-Identifier: GPL-2.0
/*
 * pagepush fault path.
 *
 * A fault on a present page returns that page and lets the core map it:
 * for a 2 MiB session the core sees a PMD-order compound page in a
 * suitably aligned VMA and installs one PMD (finish_fault() ->
 * do_set_pmd()); otherwise one PTE.
 *
 * A fault on an absent page of a CONNECTED session asks the source for it
 * (once per page, whoever faults first) and holds the task until the page
 * is placed, the session ends, or it resumes after a pause (the task then
 * asks again, on the new connections). A PAUSED session holds its faults
 * the same way; the request waits for the resumption:
 *  - when the core allows a retry, the task drops mmap_lock, sleeps
 *    killably and returns VM_FAULT_RETRY; the retried fault maps the
 *    page. A reference on the file keeps the session and the module
 *    alive meanwhile: the VMA may be gone by then.
 *  - FAULT_FLAG_RETRY_NOWAIT callers get VM_FAULT_RETRY at once, with
 *    mmap_lock still held.
 *  - callers that cannot retry (some get_user_pages() users, such as
 *    /proc/PID/mem) sleep with mmap_lock held, killably.
 * A session that is NEW or FAILED answers SIGBUS for absent pages.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/file.h>
#include <linux/fs.h>
#include <linux/ktime.h>
#include <linux/mm.h>
#include <linux/log2.h>
#include <linux/sched/signal.h>

#include "compat/compat.h"
#include "fault.h"
#include "session.h"
#include "trace.h"

static bool pp_fault_ready(struct pp_session *s, unsigned long idx,
			   u32 epoch)
{
	return pp_store_present(&s->store, idx) ||
	       !pp_session_holds(pp_session_state(s)) ||
	       pp_session_epoch(s) != epoch;
}

static void pp_fault_account(struct pp_session *s, unsigned long idx,
			     u64 start)
{
	u64 ns = ktime_get_ns() - start;
	u64 us = div_u64(ns, NSEC_PER_USEC);
	unsigned int bucket = us ? min_t(unsigned int, ilog2(us),
					 PAGEPUSH_LATENCY_BUCKETS - 1) : 0;
	unsigned int chan = PAGEPUSH_CHANNEL_PRECOPY;
	bool present;

	atomic64_inc(&s->faults.latency[bucket]);
	present = pp_store_present(&s->store, idx);
	trace_pagepush_fault_release(s->index, idx, ns, present);
	if (!present)
		return;
	if (pp_store_postcopy(&s->store, idx))
		chan = PAGEPUSH_CHANNEL_POSTCOPY;
	atomic64_inc(&s->chan[chan].held_faults);
}

/*
 * Hold the task until page @idx is present, the session ended, or it
 * left @epoch (resumed after a pause: the request must be made again).
 * Returns false if a fatal signal cut the wait short.
 *
 * Always killable, also for callers that did not ask (FAULT_FLAG_KILLABLE
 * missing: /proc/PID/mem, ptrace): they wait with mmap_lock held, and a
 * source that stalls must not make them unkillable. They get SIGBUS (and
 * -EFAULT from get_user_pages()) when killed.
 */
static bool pp_fault_hold(struct pp_session *s, unsigned long idx,
			  unsigned int flags, u32 epoch)
{
	wait_queue_head_t *wq = pp_store_waitq(&s->store, idx);
	u64 start = ktime_get_ns();
	bool done;

	trace_pagepush_fault_hold(s->index, idx, flags);
	atomic_long_inc(&s->faults.held_now);
	atomic64_inc(&s->faults.held_total);
	done = !wait_event_killable(*wq, pp_fault_ready(s, idx, epoch));
	atomic_long_dec(&s->faults.held_now);
	pp_fault_account(s, idx, start);
	return done;
}

static vm_fault_t pp_fault_sigbus(struct pp_session *s)
{
	atomic64_inc(&s->faults.sigbus);
	return VM_FAULT_SIGBUS;
}

static vm_fault_t pp_fault(struct vm_fault *vmf)
{
	struct file *file = vmf->vma->vm_file;
	struct pp_session *s = file->private_data;
	unsigned int sub_order = s->store.order;
	unsigned long idx = vmf->pgoff >> sub_order;
	struct page *page;
	u32 epoch;

	if (unlikely(idx >= s->store.nr_pages))
		return pp_fault_sigbus(s);

	page = pp_store_get(&s->store, idx);
	while (unlikely(!page)) {
		/* Read before the request: a resumption after it wakes us. */
		epoch = pp_session_epoch(s);
		if (!pp_session_holds(pp_session_state(s)))
			return pp_fault_sigbus(s);

		pp_request_page(s, idx);

		if (vmf->flags & FAULT_FLAG_RETRY_NOWAIT)
			return VM_FAULT_RETRY;

		if (vmf->flags & FAULT_FLAG_ALLOW_RETRY) {
			/* vmf->vma must not be touched once unlocked. */
			get_file(file);
			pp_release_fault_lock(vmf);
			pp_fault_hold(s, idx, vmf->flags, epoch);
			fput(file);
			return VM_FAULT_RETRY;
		}

		if (!pp_fault_hold(s, idx, vmf->flags, epoch))
			return pp_fault_sigbus(s);
		page = pp_store_get(&s->store, idx);
	}
	if (IS_ERR(page)) {
		/*
		 * A page known to be zero could not be allocated. Returning
		 * VM_FAULT_OOM would refault for ever; this is what hugetlbfs
		 * does when its pool is empty.
		 */
		pr_warn_ratelimited("session %u: cannot allocate zero page %lu\n",
				    s->index, idx);
		return pp_fault_sigbus(s);
	}

	/* The core locks the page, maps it and keeps our reference. */
	vmf->page = page + (vmf->pgoff & ((1UL << sub_order) - 1));
	return 0;
}

const struct vm_operations_struct pp_vm_ops = {
	.fault = pp_fault,
};
