/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pagepush page store: the session's pages, and the tasks waiting for them.
 */
#ifndef _PAGEPUSH_STORE_H
#define _PAGEPUSH_STORE_H

#include <linux/types.h>
#include <linux/wait.h>
#include <linux/xarray.h>
#include <linux/atomic.h>

/* Number of wait queues per session; placements wake only their bucket. */
#define PP_WAIT_BITS	6

/* Mark on a store entry: the page was completed by the POSTCOPY channel. */
#define PP_MARK_POSTCOPY	XA_MARK_1

/**
 * struct pp_store - pages of one session
 * @pages: page index -> head page of the order-@order compound page, or
 *	the value entry PP_ZERO_ENTRY for a page known to be all zero and not
 *	yet allocated. An entry, once non-NULL, is never removed before the
 *	store is destroyed; a zero entry is replaced by its page once. The
 *	xarray's own lock serialises writers; readers use RCU (xa_load()).
 * @order: allocation order of one page (0 or HPAGE_PMD_ORDER).
 * @nr_pages: number of pages.
 * @nr_present: entries in @pages; reaches @nr_pages exactly once.
 * @requested: bitmap, bit set once the page was asked for (atomic ops);
 *	kvmalloc'ed.
 * @wq: hashed wait queues; a task waiting for page i sleeps on
 *	@wq[hash(i)]. Their own locks protect them.
 */
struct pp_store {
	struct xarray pages;
	unsigned int order;
	unsigned long nr_pages;
	atomic_long_t nr_present;
	unsigned long *requested;
	wait_queue_head_t wq[1 << PP_WAIT_BITS];
};

int pp_store_init(struct pp_store *st, unsigned long nr_pages,
		  unsigned int order);
void pp_store_destroy(struct pp_store *st);
struct page *pp_store_alloc(struct pp_store *st, gfp_t extra);
void pp_store_free(struct pp_store *st, struct page *page);
int pp_store_place(struct pp_store *st, unsigned long idx, struct page *head,
		   bool postcopy);
int pp_store_place_zero(struct pp_store *st, unsigned long idx, bool postcopy);
struct page *pp_store_get(struct pp_store *st, unsigned long idx);
bool pp_store_present(struct pp_store *st, unsigned long idx);
wait_queue_head_t *pp_store_waitq(struct pp_store *st, unsigned long idx);
bool pp_store_postcopy(struct pp_store *st, unsigned long idx);
void pp_store_wake_all(struct pp_store *st);
bool pp_store_complete(struct pp_store *st);
long pp_store_allocated_pages(void);

#endif /* _PAGEPUSH_STORE_H */
