// SPDX-License-Identifier: GPL-2.0
/*
 * pagepush page store.
 *
 * Each page of a session is one compound page of the session's page size:
 * order 9 for 2 MiB sessions, so the fault path can map it with one PMD,
 * order 0 for 4 KiB sessions. A page is allocated by the receive thread of
 * the channel that assembles it, and published here only when complete:
 * until then no task can see it. Publishing wakes the tasks waiting for
 * that page only.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/gfp.h>
#include <linux/hash.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/bitmap.h>

#include "store.h"

/* A page known to be all zero, allocated on its first fault. */
#define PP_ZERO_ENTRY	xa_mk_value(0)

/* Pages (of any order) the module holds, for leak checks in tests. */
static atomic_long_t pp_allocated = ATOMIC_LONG_INIT(0);

/**
 * pp_store_allocated_pages() - base pages currently allocated by the module
 *
 * Return: the number of PAGE_SIZE pages held by every store.
 */
long pp_store_allocated_pages(void)
{
	return atomic_long_read(&pp_allocated);
}

/**
 * pp_store_init() - set up an empty store
 * @st: the store
 * @nr_pages: number of pages of the session
 * @order: allocation order of one page
 *
 * Return: 0 or -ENOMEM.
 */
int pp_store_init(struct pp_store *st, unsigned long nr_pages,
		  unsigned int order)
{
	unsigned int i;

	/* Up to 32 MiB for 1 TiB of 4 KiB pages: not a kmalloc. */
	st->requested = kvcalloc(BITS_TO_LONGS(nr_pages), sizeof(long),
				 GFP_KERNEL);
	if (!st->requested)
		return -ENOMEM;
	xa_init(&st->pages);
	st->order = order;
	st->nr_pages = nr_pages;
	atomic_long_set(&st->nr_present, 0);
	for (i = 0; i < ARRAY_SIZE(st->wq); i++)
		init_waitqueue_head(&st->wq[i]);
	return 0;
}

/**
 * pp_store_destroy() - drop the store's reference on every page
 * @st: the store, with no waiter and no receive thread left
 *
 * Pages still mapped somewhere stay alive through the mappings' own
 * references and are freed when the last one goes.
 */
void pp_store_destroy(struct pp_store *st)
{
	unsigned long idx;
	void *entry;

	xa_for_each(&st->pages, idx, entry) {
		if (!xa_is_value(entry))
			pp_store_free(st, entry);
	}
	xa_destroy(&st->pages);
	kvfree(st->requested);
}

/**
 * pp_store_alloc() - allocate one page of the store's order
 * @st: the store
 * @extra: extra GFP flags (__GFP_ZERO)
 *
 * Return: the head page with one reference, or NULL.
 */
struct page *pp_store_alloc(struct pp_store *st, gfp_t extra)
{
	gfp_t gfp = GFP_HIGHUSER | __GFP_NOWARN | extra;
	struct page *page;

	/*
	 * Not __GFP_MOVABLE: the page is never on an LRU list and cannot
	 * be migrated, so it must not sit in a movable pageblock.
	 */
	if (st->order)
		gfp |= __GFP_COMP | __GFP_RETRY_MAYFAIL;
	page = alloc_pages(gfp, st->order);
	if (page)
		atomic_long_add(1L << st->order, &pp_allocated);
	return page;
}

/**
 * pp_store_free() - drop the module's reference on a page
 * @st: the store it was allocated for
 * @page: head page from pp_store_alloc()
 */
void pp_store_free(struct pp_store *st, struct page *page)
{
	atomic_long_sub(1L << st->order, &pp_allocated);
	put_page(page);
}

static unsigned int pp_store_hash(unsigned long idx)
{
	return hash_long(idx, PP_WAIT_BITS);
}

/**
 * pp_store_waitq() - the wait queue a task waiting for a page sleeps on
 * @st: the store
 * @idx: page index
 *
 * Return: the queue.
 */
wait_queue_head_t *pp_store_waitq(struct pp_store *st, unsigned long idx)
{
	return &st->wq[pp_store_hash(idx)];
}

static void pp_store_published(struct pp_store *st, unsigned long idx)
{
	wait_queue_head_t *wq = pp_store_waitq(st, idx);

	atomic_long_inc(&st->nr_present);
	/*
	 * The entry is visible (xa_insert() above) before we look for
	 * sleepers: wq_has_sleeper()'s barrier pairs with the one in the
	 * waiter's prepare_to_wait(), so an idle queue costs no lock.
	 */
	if (wq_has_sleeper(wq))
		wake_up_all(wq);
}

static int pp_store_insert(struct pp_store *st, unsigned long idx,
			   void *entry, bool postcopy)
{
	int ret;

	/* The entry and its mark appear together for pp_store_postcopy(). */
	xa_lock(&st->pages);
	ret = __xa_insert(&st->pages, idx, entry, GFP_KERNEL);
	if (!ret && postcopy)
		__xa_set_mark(&st->pages, idx, PP_MARK_POSTCOPY);
	xa_unlock(&st->pages);
	if (ret)
		return ret == -EBUSY ? -EEXIST : ret;
	pp_store_published(st, idx);
	return 0;
}

/**
 * pp_store_place() - publish a complete page and wake its waiters
 * @st: the store
 * @idx: page index
 * @head: page with every byte written; the store takes its reference
 * @postcopy: the page was completed by the POSTCOPY channel
 *
 * Return: 0, -EEXIST if the page is present already (the caller keeps
 * @head), or -ENOMEM.
 */
int pp_store_place(struct pp_store *st, unsigned long idx, struct page *head,
		   bool postcopy)
{
	return pp_store_insert(st, idx, head, postcopy);
}

/**
 * pp_store_place_zero() - publish a page known to be all zero
 * @st: the store
 * @idx: page index
 * @postcopy: the POSTCOPY channel said so
 *
 * Nothing is allocated until the page is first touched.
 *
 * Return: 0, -EEXIST if the page is present already, or -ENOMEM.
 */
int pp_store_place_zero(struct pp_store *st, unsigned long idx, bool postcopy)
{
	return pp_store_insert(st, idx, PP_ZERO_ENTRY, postcopy);
}

/**
 * pp_store_present() - whether a page was published
 * @st: the store
 * @idx: page index
 *
 * Return: true once pp_store_place() or pp_store_place_zero() succeeded
 * for @idx.
 */
bool pp_store_present(struct pp_store *st, unsigned long idx)
{
	return !!xa_load(&st->pages, idx);
}

/**
 * pp_store_get() - the head page of a present page, with a reference
 * @st: the store
 * @idx: page index
 *
 * A page known to be zero is allocated here, zeroed, on first use.
 *
 * Return: the head page with a reference taken for the caller, NULL if
 * the page is absent, or ERR_PTR(-ENOMEM).
 */
struct page *pp_store_get(struct pp_store *st, unsigned long idx)
{
	struct page *page, *old;
	void *entry;

	entry = xa_load(&st->pages, idx);
	if (!entry)
		return NULL;
	if (!xa_is_value(entry)) {
		page = entry;
		get_page(page);
		return page;
	}

	page = pp_store_alloc(st, __GFP_ZERO);
	if (!page)
		return ERR_PTR(-ENOMEM);
	old = xa_cmpxchg(&st->pages, idx, PP_ZERO_ENTRY, page, GFP_KERNEL);
	if (old != PP_ZERO_ENTRY) {
		/* Another fault materialised it first (or xa_err). */
		pp_store_free(st, page);
		if (xa_is_err(old))
			return ERR_PTR(xa_err(old));
		page = old;
	}
	get_page(page);
	return page;
}

/**
 * pp_store_postcopy() - whether the POSTCOPY channel placed a page
 * @st: the store
 * @idx: index of a present page
 *
 * Return: true if the page came on the POSTCOPY channel.
 */
bool pp_store_postcopy(struct pp_store *st, unsigned long idx)
{
	bool mark;

	xa_lock(&st->pages);
	mark = xa_get_mark(&st->pages, idx, PP_MARK_POSTCOPY);
	xa_unlock(&st->pages);
	return mark;
}

/**
 * pp_store_wake_all() - wake every waiter, whatever page it waits for
 * @st: the store
 *
 * Used when the session's state changes under the waiters' feet.
 */
void pp_store_wake_all(struct pp_store *st)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(st->wq); i++)
		wake_up_all(&st->wq[i]);
}

/**
 * pp_store_complete() - whether every page is present
 * @st: the store
 *
 * Return: true when every page was published.
 */
bool pp_store_complete(struct pp_store *st)
{
	return atomic_long_read(&st->nr_present) == st->nr_pages;
}
