// SPDX-License-Identifier: GPL-2.0
/*
 * A user-space pagepush destination on userfaultfd: the benchmarks'
 * baseline, modelled on QEMU's postcopy destination.
 *
 * Threads: one receive thread per connection (PRECOPY, and POSTCOPY when
 * preemption was agreed) parses frames and assembles pages; one fault
 * thread reads the userfaultfd and sends a REQUEST for each absent page a
 * task waits for, on the return path (PRECOPY's reverse direction).
 *
 * MISSING mode: a page is assembled in a per-channel buffer, then
 * UFFDIO_COPY copies it into place (two copies, the userfaultfd design).
 * MINOR mode: the region is a memfd mapped twice; a page is received
 * straight into the write view, which puts it in the page cache, then
 * UFFDIO_CONTINUE maps it in the fault view (one copy). The fault view is
 * registered MISSING too: a task touching a page not yet in the page cache
 * would otherwise get a fresh zero page.
 *
 * No lost wakeup: a page is only ever made visible by UFFDIO_COPY,
 * ZEROPAGE or CONTINUE, which wake every task waiting in its range; the
 * kernel rechecks the PTE after queueing a fault, so a fault racing with
 * the installation either sees the page or is woken by it. A fault read
 * for a page already installed is answered with UFFDIO_WAKE.
 *
 * Page states (one byte each) keep the assembly rule of
 * Documentation/protocol.rst: a channel claims an absent page with a
 * compare-and-swap when its first chunk arrives; a chunk for a page the
 * other channel claimed is split brain; a page being installed or present
 * is a duplicate, whose payload is dropped.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/userfaultfd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>

#include "uffd.h"
#include "wire.h"

#ifndef MAP_HUGE_2MB
#define MAP_HUGE_2MB	(21 << MAP_HUGE_SHIFT)
#endif
#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB	(21U << 26)
#endif

#define UFFD_HUGE_SIZE		(2U << 20)
/* Receive buffer: headers, and payload that arrived behind them. */
#define UFFD_RX_CAP		(512U << 10)
/* At most this much of a page's next chunks is received in place per call. */
#define UFFD_PRED_BYTES		(256U << 10)
/*
 * Bytes read ahead into the buffer with 2M pages: frames there are large
 * (4K chunks, whole pages), so their payload is better received in place
 * than copied out of the buffer; a system call per page boundary is cheap.
 * With 4K pages every frame is small: the whole buffer is read.
 */
#define UFFD_AHEAD_HUGE		(16U << 10)
#define UFFD_PRED_MAX		64
/* Fault messages read per read(). */
#define UFFD_MSGS		64
#define UFFD_NO_PAGE		UINT64_MAX
#define UFFD_HELLO_TIMEOUT_S	10

enum { PRE = PAGEPUSH_CHANNEL_PRECOPY, POST = PAGEPUSH_CHANNEL_POSTCOPY };

enum uffd_page_state {
	PG_ABSENT,
	PG_OWNED_PRE,		/* being assembled on PRECOPY */
	PG_OWNED_POST,		/* being assembled on POSTCOPY */
	PG_PLACING,		/* complete, being installed */
	PG_PRESENT,		/* installed */
};

/* A thread of ours and what it has cost. */
struct uffd_thread {
	pthread_t t;
	clockid_t clock;
	bool started;
	atomic_bool exited;
	double final_cpu;	/* set before @exited */
};

struct uffd_chan {
	struct uffd_recv *r;
	unsigned int id;
	int fd;
	struct uffd_thread th;

	/* Received bytes not parsed yet: buf[head, tail). */
	uint8_t *buf;
	size_t head, tail;

	/* The page being assembled (the assembly rule: one at a time). */
	uint64_t idx;		/* or UFFD_NO_PAGE */
	uint32_t have;		/* bytes of it received, in order */
	bool dup;		/* present or being installed: payload dropped */
	uint8_t *page;		/* MISSING: the assembly buffer */

	/* The PAGE frame whose payload is being received. */
	uint8_t *dst;		/* where the rest goes; NULL drops it */
	uint32_t left;		/* payload bytes still to come */
	uint32_t flen;		/* its length */

	bool eos;		/* written by this thread under r->lock */
};

struct uffd_recv {
	enum uffd_mode mode;
	uint64_t size;
	uint64_t nr_pages;
	uint32_t psize;
	unsigned int shift;
	size_t ahead;		/* most bytes read into a buffer at once */

	uint8_t *fview;		/* the faulting mapping, registered */
	uint8_t *wview;		/* MINOR: the write mapping of the memfd */
	int memfd;
	int uffd;
	int efd;		/* wakes the fault thread: stop, failure */
	uint8_t *zero;		/* MISSING 2M: a zero page to copy from */

	_Atomic uint8_t *state;	/* enum uffd_page_state, per page */
	uint8_t *requested;	/* fault thread only */
	atomic_uint_fast64_t placed;
	atomic_uint_fast64_t requests;
	atomic_bool stopping;

	unsigned int nr_chan;
	struct uffd_chan chan[PAGEPUSH_NR_CHANNELS];
	struct uffd_thread fault_th;
	bool fenced;		/* fault thread only */

	pthread_mutex_t rp_lock;	/* writes on the return path */
	pthread_mutex_t lock;		/* the fields below, chan[].eos */
	pthread_cond_t cond;
	bool complete;
	bool failed;
	int error;
	char why[256];
};

static const char *uffd_chan_name(unsigned int id)
{
	return id == PRE ? "precopy" : "postcopy";
}

static void uffd_kick(struct uffd_recv *r)
{
	uint64_t one = 1;

	if (r->efd >= 0 && write(r->efd, &one, sizeof(one)) < 0)
		return;	/* only fails when the counter is full: kicked anyway */
}

/*
 * Fail the migration, once: record why, release the waiters of
 * uffd_recv_wait_complete(), shut the sockets so the receive threads stop,
 * and let the fault thread fence the absent pages. Ignored once complete.
 */
static void __attribute__((format(printf, 3, 4)))
uffd_fail(struct uffd_recv *r, int err, const char *fmt, ...)
{
	bool first = false;
	unsigned int i;
	va_list ap;

	pthread_mutex_lock(&r->lock);
	if (!r->complete && !r->failed) {
		va_start(ap, fmt);
		vsnprintf(r->why, sizeof(r->why), fmt, ap);
		va_end(ap);
		r->failed = true;
		r->error = err;
		first = true;
		pthread_cond_broadcast(&r->cond);
	}
	pthread_mutex_unlock(&r->lock);
	if (!first)
		return;
	for (i = 0; i < r->nr_chan; i++)
		shutdown(r->chan[i].fd, SHUT_RDWR);
	uffd_kick(r);
}

static bool uffd_failed(struct uffd_recv *r)
{
	bool failed;

	pthread_mutex_lock(&r->lock);
	failed = r->failed;
	pthread_mutex_unlock(&r->lock);
	return failed;
}

static void uffd_thread_exit(struct uffd_thread *th)
{
	struct timespec ts;

	if (!clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts))
		th->final_cpu = ts.tv_sec + ts.tv_nsec / 1e9;
	atomic_store(&th->exited, true);
}

static double uffd_thread_cpu(struct uffd_thread *th)
{
	struct timespec ts;

	if (!th->started)
		return 0;
	/* A thread that ended has no clock any more, but its last reading. */
	if (!atomic_load(&th->exited) && !clock_gettime(th->clock, &ts))
		return ts.tv_sec + ts.tv_nsec / 1e9;
	return atomic_load(&th->exited) ? th->final_cpu : 0;
}

/* ---- installing pages ------------------------------------------------- */

static int uffd_wake(struct uffd_recv *r, uint64_t off, uint64_t len)
{
	struct uffdio_range range = {
		.start = (uintptr_t)r->fview + off,
		.len = len,
	};

	return ioctl(r->uffd, UFFDIO_WAKE, &range) ? -errno : 0;
}

/*
 * One installing ioctl over page @idx. EAGAIN (the address space changed
 * under it) retries the rest; EEXIST means something mapped the page
 * first, which did not wake the waiters: wake them.
 */
static int uffd_install(struct uffd_recv *r, uint64_t idx, const uint8_t *src)
{
	uint64_t off = idx << r->shift, done = 0;
	const char *what = "UFFDIO_CONTINUE";
	int64_t got;
	int ret;

	while (done < r->psize) {
		uint64_t dst = (uintptr_t)r->fview + off + done;
		uint64_t len = r->psize - done;

		if (r->mode == UFFD_MODE_MINOR) {
			struct uffdio_continue c = {
				.range = { .start = dst, .len = len },
			};

			ret = ioctl(r->uffd, UFFDIO_CONTINUE, &c);
			got = c.mapped;
		} else if (!src && r->psize < UFFD_HUGE_SIZE) {
			struct uffdio_zeropage z = {
				.range = { .start = dst, .len = len },
			};

			what = "UFFDIO_ZEROPAGE";
			ret = ioctl(r->uffd, UFFDIO_ZEROPAGE, &z);
			got = z.zeropage;
		} else {
			/* hugetlb has no ZEROPAGE: copy a zero page. */
			struct uffdio_copy c = {
				.dst = dst,
				.src = (uintptr_t)(src ? src : r->zero) + done,
				.len = len,
			};

			what = "UFFDIO_COPY";
			ret = ioctl(r->uffd, UFFDIO_COPY, &c);
			got = c.copy;
		}
		if (!ret)
			return 0;
		ret = errno;
		if (ret == EEXIST) {
			uffd_wake(r, off, r->psize);
			return 0;
		}
		if (ret != EAGAIN && ret != EINTR) {
			uffd_fail(r, EIO, "%s of page %" PRIu64 " failed: %s", what,
				  idx, strerror(ret));
			return -EIO;
		}
		if (got > 0)
			done += got;
	}
	return 0;
}

/* COMPLETE on the return path, then tell the waiters. */
static void uffd_complete(struct uffd_recv *r)
{
	struct pagepush_frame f;
	int ret;

	pp_frame_init(&f, PAGEPUSH_FRAME_COMPLETE, 0, 0);
	pthread_mutex_lock(&r->rp_lock);
	ret = pp_write_all(r->chan[PRE].fd, &f, sizeof(f));
	pthread_mutex_unlock(&r->rp_lock);
	if (ret) {
		uffd_fail(r, -ret, "cannot send COMPLETE: %s", strerror(-ret));
		return;
	}
	pthread_mutex_lock(&r->lock);
	if (!r->failed)
		r->complete = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

static void uffd_placed(struct uffd_recv *r, uint64_t idx)
{
	atomic_store(&r->state[idx], PG_PRESENT);
	if (atomic_fetch_add(&r->placed, 1) + 1 == r->nr_pages)
		uffd_complete(r);
}

/* ---- frames ----------------------------------------------------------- */

static int __attribute__((format(printf, 2, 3)))
uffd_proto(struct uffd_chan *ch, const char *fmt, ...)
{
	char reason[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	uffd_fail(ch->r, EPROTO, "protocol error: %s", reason);
	return -EPROTO;
}

static int uffd_split_brain(struct uffd_chan *ch, uint64_t idx)
{
	return uffd_proto(ch, "split brain: page %" PRIu64 " came on %s, %s holds part of it",
			  idx, uffd_chan_name(ch->id), uffd_chan_name(!ch->id));
}

/* Where page ch->idx is assembled. */
static uint8_t *uffd_page_addr(struct uffd_chan *ch)
{
	struct uffd_recv *r = ch->r;

	if (r->mode == UFFD_MODE_MISSING)
		return ch->page;
	return r->wview + (ch->idx << r->shift);
}

/* Claim page @idx for this channel, or take it as a duplicate. */
static int uffd_begin_page(struct uffd_chan *ch, uint64_t idx)
{
	uint8_t seen = PG_ABSENT;
	uint8_t mine = ch->id == PRE ? PG_OWNED_PRE : PG_OWNED_POST;

	if (atomic_compare_exchange_strong(&ch->r->state[idx], &seen, mine))
		ch->dup = false;
	else if (seen == PG_PLACING || seen == PG_PRESENT)
		ch->dup = true;
	else
		return uffd_split_brain(ch, idx);
	ch->idx = idx;
	ch->have = 0;
	return 0;
}

/* The page this channel assembled is complete: install it. */
static int uffd_finish_page(struct uffd_chan *ch)
{
	struct uffd_recv *r = ch->r;
	uint64_t idx = ch->idx;
	bool dup = ch->dup;
	int ret;

	ch->idx = UFFD_NO_PAGE;
	ch->have = 0;
	ch->dup = false;
	if (dup)
		return 0;
	atomic_store(&r->state[idx], PG_PLACING);
	ret = uffd_install(r, idx, r->mode == UFFD_MODE_MISSING ? ch->page : NULL);
	if (ret)
		return ret;
	uffd_placed(r, idx);
	return 0;
}

static int uffd_payload_done(struct uffd_chan *ch)
{
	ch->have += ch->flen;
	if (ch->have == ch->r->psize)
		return uffd_finish_page(ch);
	return 0;
}

static int uffd_rx_page(struct uffd_chan *ch, uint64_t off, uint32_t len)
{
	struct uffd_recv *r = ch->r;
	uint64_t idx = off >> r->shift;
	uint32_t in_page = off & (r->psize - 1);
	int ret;

	if (!len || off >= r->size || len > r->size - off)
		return uffd_proto(ch, "PAGE [%" PRIu64 ", +%u) is empty or outside the region",
				  off, len);
	if (in_page + (uint64_t)len > r->psize)
		return uffd_proto(ch, "PAGE [%" PRIu64 ", +%u) crosses the end of page %" PRIu64,
				  off, len, idx);
	if (ch->idx == UFFD_NO_PAGE) {
		if (in_page)
			return uffd_proto(ch, "%s: PAGE at %" PRIu64 " does not start page %"
					  PRIu64, uffd_chan_name(ch->id), off, idx);
		ret = uffd_begin_page(ch, idx);
		if (ret)
			return ret;
	} else if (ch->idx != idx) {
		return uffd_proto(ch, "%s: page %" PRIu64 " started before page %" PRIu64
				  " was complete", uffd_chan_name(ch->id), idx, ch->idx);
	} else if (in_page != ch->have) {
		return uffd_proto(ch, "%s: PAGE at %" PRIu64 " out of order in page %" PRIu64
				  " (want %u)", uffd_chan_name(ch->id), off, idx, ch->have);
	}
	ch->flen = len;
	ch->left = len;
	ch->dst = ch->dup ? NULL : uffd_page_addr(ch) + in_page;
	return 0;
}

/* Zero pages are placed at once; they are never assembled. */
static int uffd_rx_zero(struct uffd_chan *ch, uint64_t off, uint32_t len)
{
	struct uffd_recv *r = ch->r;
	uint64_t idx, end;
	int ret;

	if (!len || (off | len) & (r->psize - 1) || off >= r->size || len > r->size - off)
		return uffd_proto(ch, "ZERO [%" PRIu64 ", +%u) is not whole pages of the region",
				  off, len);
	if (ch->idx != UFFD_NO_PAGE)
		return uffd_proto(ch, "%s: ZERO frame before page %" PRIu64 " was complete",
				  uffd_chan_name(ch->id), ch->idx);

	end = (off + len) >> r->shift;
	for (idx = off >> r->shift; idx < end; idx++) {
		uint8_t seen = PG_ABSENT;

		if (!atomic_compare_exchange_strong(&r->state[idx], &seen, PG_PLACING)) {
			if (seen == PG_PLACING || seen == PG_PRESENT)
				continue;	/* duplicate */
			return uffd_split_brain(ch, idx);
		}
		/*
		 * MINOR: CONTINUE needs the page in the page cache; fallocate()
		 * puts a zeroed one there without touching the write view.
		 */
		if (r->mode == UFFD_MODE_MINOR &&
		    fallocate(r->memfd, 0, idx << r->shift, r->psize)) {
			ret = errno;
			uffd_fail(r, ret, "cannot allocate zero page %" PRIu64 ": %s%s", idx,
				  strerror(ret), ret == ENOSPC || ret == ENOMEM ?
				  " (too few huge pages?)" : "");
			return -ret;
		}
		ret = uffd_install(r, idx, NULL);
		if (ret)
			return ret;
		uffd_placed(r, idx);
	}
	return 0;
}

static int uffd_rx_eos(struct uffd_chan *ch)
{
	struct uffd_recv *r = ch->r;
	uint64_t placed;
	bool all = true;
	unsigned int i;

	if (ch->idx != UFFD_NO_PAGE)
		return uffd_proto(ch, "%s: EOS in the middle of page %" PRIu64,
				  uffd_chan_name(ch->id), ch->idx);
	/* Both channels may see EOS at once: the lock makes one see both. */
	pthread_mutex_lock(&r->lock);
	ch->eos = true;
	for (i = 0; i < r->nr_chan; i++)
		all &= r->chan[i].eos;
	pthread_mutex_unlock(&r->lock);

	placed = atomic_load(&r->placed);
	if (!all || placed == r->nr_pages)
		return 0;
	return uffd_proto(ch, "the source ended the stream with %" PRIu64 " pages missing",
			  r->nr_pages - placed);
}

static int uffd_rx_frame(struct uffd_chan *ch, const struct pagepush_frame *f)
{
	uint64_t off = le64toh(f->offset);
	uint32_t len = le32toh(f->length);

	if (f->version != PAGEPUSH_WIRE_VERSION || f->flags)
		return uffd_proto(ch, "%s: bad frame header (version %u, flags %#x)",
				  uffd_chan_name(ch->id), f->version, le16toh(f->flags));
	if (ch->eos)
		return uffd_proto(ch, "%s: frame after EOS", uffd_chan_name(ch->id));

	switch (f->type) {
	case PAGEPUSH_FRAME_PAGE:
		return uffd_rx_page(ch, off, len);
	case PAGEPUSH_FRAME_ZERO:
		return uffd_rx_zero(ch, off, len);
	case PAGEPUSH_FRAME_EOS:
		return uffd_rx_eos(ch);
	case PAGEPUSH_FRAME_DISCARD:
		return uffd_proto(ch, "DISCARD frames are not supported by this version");
	default:
		return uffd_proto(ch, "%s: unexpected frame type %u",
				  uffd_chan_name(ch->id), f->type);
	}
}

/* ---- receiving -------------------------------------------------------- */

/*
 * recv() gave 0 or an error. Fine once every page is present (the source
 * closes after COMPLETE) or when stopping; otherwise the migration fails.
 * Returns 1 (stop quietly) or a negative errno.
 */
static int uffd_rx_closed(struct uffd_chan *ch, ssize_t n)
{
	struct uffd_recv *r = ch->r;
	int err = n < 0 ? errno : ECONNRESET;

	if (atomic_load(&r->stopping) || atomic_load(&r->placed) == r->nr_pages)
		return 1;
	if (n < 0)
		uffd_fail(r, err, "%s connection lost: %s", uffd_chan_name(ch->id),
			  strerror(err));
	else
		uffd_fail(r, err, "%s connection closed by the source with %" PRIu64
			  " pages missing", uffd_chan_name(ch->id),
			  r->nr_pages - atomic_load(&r->placed));
	return -err;
}

/* Buffered read: keep what is unparsed, append what has arrived. */
static int uffd_rx_fill(struct uffd_chan *ch)
{
	size_t len;
	ssize_t n;

	if (ch->head) {
		memmove(ch->buf, ch->buf + ch->head, ch->tail - ch->head);
		ch->tail -= ch->head;
		ch->head = 0;
	}
	len = UFFD_RX_CAP - ch->tail;
	if (len > ch->r->ahead)
		len = ch->r->ahead;
	do {
		n = recv(ch->fd, ch->buf + ch->tail, len, 0);
	} while (n < 0 && errno == EINTR);
	if (n <= 0)
		return uffd_rx_closed(ch, n);
	ch->tail += n;
	return 0;
}

/* Whether @f is the chunk that continues the page being assembled. */
static bool uffd_predicted(struct uffd_chan *ch, const struct pagepush_frame *f,
			   uint32_t len)
{
	return f->version == PAGEPUSH_WIRE_VERSION && f->type == PAGEPUSH_FRAME_PAGE &&
	       !f->flags && le32toh(f->length) == len &&
	       le64toh(f->offset) == (ch->idx << ch->r->shift) + ch->have;
}

/*
 * A scatter read guessed wrong: move the bytes from iov[0] on (@n of them,
 * the last iovec being the start of the receive buffer) back into the
 * buffer in stream order, to be parsed the ordinary way. What landed in
 * the page is past what it has received, so later chunks overwrite it.
 */
static void uffd_rx_unscatter(struct uffd_chan *ch, const struct iovec *iov,
			      size_t niov, size_t n)
{
	size_t i, moved = 0, in_buf, len;

	for (i = 0; i + 1 < niov; i++)
		moved += iov[i].iov_len < n - moved ? iov[i].iov_len : n - moved;
	in_buf = n - moved;
	memmove(ch->buf + moved, ch->buf, in_buf);
	for (i = 0, n = 0; n < moved; i++) {
		len = iov[i].iov_len < moved - n ? iov[i].iov_len : moved - n;
		memcpy(ch->buf + n, iov[i].iov_base, len);
		n += len;
	}
	ch->head = 0;
	ch->tail = moved + in_buf;
}

/* Account @n received bytes of the current payload, which are in place. */
static int uffd_rx_landed(struct uffd_chan *ch, size_t n)
{
	ch->dst += n;
	ch->left -= n;
	return ch->left ? 0 : uffd_payload_done(ch);
}

/*
 * The buffer holds nothing of the payload due, or only part of the next
 * header: receive in place. The chunks that follow on this connection
 * continue the page being assembled (the assembly rule), so read them in
 * place too, guessing their headers; what comes after the page goes to the
 * buffer. A wrong guess (only a broken source makes one) costs a copy back
 * into the buffer. Between two pages there is nothing to guess: a plain
 * buffered read.
 */
static int uffd_rx_direct(struct uffd_chan *ch)
{
	struct uffd_recv *r = ch->r;
	struct pagepush_frame hdr[UFFD_PRED_MAX];
	struct iovec iov[2 + 2 * UFFD_PRED_MAX];
	struct msghdr msg = { .msg_iov = iov };
	uint8_t *page = uffd_page_addr(ch);
	uint32_t c = ch->flen, next = ch->have;
	unsigned int k, npred = 0, nio = 0, first;
	size_t part = 0, pred = 0, n, m;
	ssize_t got;
	int ret;

	if (ch->left) {
		iov[nio].iov_base = ch->dst;
		iov[nio++].iov_len = ch->left;
		next += ch->flen;
	} else {
		/* Between two chunks: the next header may have begun. */
		part = ch->tail - ch->head;
		memcpy(&hdr[0], ch->buf + ch->head, part);
	}
	first = nio;
	while (npred < UFFD_PRED_MAX && (uint64_t)next + c <= r->psize &&
	       pred + sizeof(hdr[0]) + c <= UFFD_PRED_BYTES) {
		iov[nio].iov_base = &hdr[npred];
		iov[nio++].iov_len = sizeof(hdr[0]);
		iov[nio].iov_base = page + next;
		iov[nio++].iov_len = c;
		pred += sizeof(hdr[0]) + c;
		next += c;
		npred++;
	}
	if (!ch->left && !npred)
		return uffd_rx_fill(ch);
	iov[nio].iov_base = ch->buf;
	iov[nio++].iov_len = UFFD_RX_CAP - pred < r->ahead ? UFFD_RX_CAP - pred : r->ahead;
	msg.msg_iovlen = nio;

	/* The header bytes already in are not read again. */
	iov[first].iov_base = (uint8_t *)iov[first].iov_base + part;
	iov[first].iov_len -= part;
	do {
		got = recvmsg(ch->fd, &msg, 0);
	} while (got < 0 && errno == EINTR);
	iov[first].iov_base = (uint8_t *)iov[first].iov_base - part;
	iov[first].iov_len += part;
	if (got <= 0)
		return uffd_rx_closed(ch, got);
	n = got + part;
	ch->head = 0;
	ch->tail = 0;

	if (ch->left) {
		m = n < ch->left ? n : ch->left;
		n -= m;
		ret = uffd_rx_landed(ch, m);
		if (ret)
			return ret;
	}
	for (k = 0; k < npred && n; k++) {
		if (n < sizeof(hdr[k]) || !uffd_predicted(ch, &hdr[k], c)) {
			uffd_rx_unscatter(ch, iov + first + 2 * k, nio - first - 2 * k, n);
			return 0;
		}
		n -= sizeof(hdr[k]);
		ret = uffd_rx_frame(ch, &hdr[k]);
		if (ret)
			return ret;
		m = n < c ? n : c;
		n -= m;
		ret = uffd_rx_landed(ch, m);
		if (ret)
			return ret;
	}
	ch->tail = n;	/* the rest is at the start of the buffer */
	return 0;
}

static void *uffd_rx_thread(void *arg)
{
	struct uffd_chan *ch = arg;
	struct pagepush_frame f;
	size_t avail, n;
	int ret = 0;

	while (!ret) {
		avail = ch->tail - ch->head;
		if (ch->left) {
			if (!avail) {
				ret = ch->dst ? uffd_rx_direct(ch) : uffd_rx_fill(ch);
				continue;
			}
			n = avail < ch->left ? avail : ch->left;
			if (ch->dst)
				memcpy(ch->dst, ch->buf + ch->head, n);
			ch->head += n;
			ch->dst = ch->dst ? ch->dst + n : NULL;
			ch->left -= n;
			if (!ch->left)
				ret = uffd_payload_done(ch);
			continue;
		}
		if (avail < sizeof(f)) {
			/* Inside a page, the next chunk can land in place. */
			if (ch->idx != UFFD_NO_PAGE && !ch->dup)
				ret = uffd_rx_direct(ch);
			else
				ret = uffd_rx_fill(ch);
			continue;
		}
		memcpy(&f, ch->buf + ch->head, sizeof(f));
		ch->head += sizeof(f);
		ret = uffd_rx_frame(ch, &f);
	}
	uffd_thread_exit(&ch->th);
	return NULL;
}

/* ---- faults ----------------------------------------------------------- */

/*
 * The migration failed: make the pages that never arrived inaccessible and
 * release their waiters, who then fault with SIGSEGV instead of waiting
 * for ever or seeing a zero page.
 */
static void uffd_fence(struct uffd_recv *r)
{
	uint64_t i = 0, start;

	r->fenced = true;
	while (i < r->nr_pages) {
		if (atomic_load(&r->state[i]) == PG_PRESENT) {
			i++;
			continue;
		}
		start = i;
		while (i < r->nr_pages && atomic_load(&r->state[i]) != PG_PRESENT)
			i++;
		if (mprotect(r->fview + (start << r->shift), (i - start) << r->shift,
			     PROT_NONE)) {
			/* Out of VMAs: fence everything. */
			mprotect(r->fview, r->size, PROT_NONE);
			break;
		}
	}
	uffd_wake(r, 0, r->size);
}

/* Requests are batched: one write for every fault read at once. */
static int uffd_send_requests(struct uffd_recv *r, const struct pagepush_frame *req,
			      unsigned int n)
{
	int ret;

	pthread_mutex_lock(&r->rp_lock);
	ret = pp_write_all(r->chan[PRE].fd, req, n * sizeof(*req));
	pthread_mutex_unlock(&r->rp_lock);
	if (ret) {
		uffd_fail(r, -ret, "cannot send requests on the return path: %s",
			  strerror(-ret));
		return ret;
	}
	atomic_fetch_add(&r->requests, n);
	return 0;
}

static void uffd_fault_batch(struct uffd_recv *r, const struct uffd_msg *msg,
			     unsigned int nmsg)
{
	struct pagepush_frame req[UFFD_MSGS];
	unsigned int i, nreq = 0;
	uint64_t idx;
	uint8_t st;

	for (i = 0; i < nmsg; i++) {
		if (msg[i].event != UFFD_EVENT_PAGEFAULT)
			continue;
		idx = (msg[i].arg.pagefault.address - (uintptr_t)r->fview) >> r->shift;
		if (idx >= r->nr_pages)
			continue;
		st = atomic_load(&r->state[idx]);
		if (st == PG_PRESENT || r->fenced) {
			/* Installed after the fault was queued: let it retry. */
			uffd_wake(r, idx << r->shift, r->psize);
			continue;
		}
		/* Being installed: the installing ioctl wakes it. */
		if (st == PG_PLACING || r->requested[idx])
			continue;
		r->requested[idx] = 1;
		pp_frame_init(&req[nreq++], PAGEPUSH_FRAME_REQUEST, idx << r->shift, r->psize);
	}
	if (nreq)
		uffd_send_requests(r, req, nreq);
}

static void *uffd_fault_thread(void *arg)
{
	struct uffd_recv *r = arg;
	struct uffd_msg msg[UFFD_MSGS];
	struct pollfd pfd[2] = {
		{ .fd = r->uffd, .events = POLLIN },
		{ .fd = r->efd, .events = POLLIN },
	};
	uint64_t v;
	ssize_t n;

	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			uffd_fail(r, errno, "poll on the userfaultfd: %s", strerror(errno));
			break;
		}
		if (pfd[1].revents & POLLIN) {
			if (read(r->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				break;
			if (atomic_load(&r->stopping))
				break;
			if (!r->fenced && uffd_failed(r))
				uffd_fence(r);
		}
		if (!(pfd[0].revents & POLLIN))
			continue;
		n = read(r->uffd, msg, sizeof(msg));
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			uffd_fail(r, errno, "reading the userfaultfd: %s", strerror(errno));
			break;
		}
		uffd_fault_batch(r, msg, n / sizeof(msg[0]));
	}
	uffd_thread_exit(&r->fault_th);
	return NULL;
}

/* ---- setting up ------------------------------------------------------- */

/* Dial one connection and handshake; returns the socket or -1. */
static int uffd_dial(const char *addr, uint16_t role, uint32_t flags,
		     uint64_t cookie, struct pagepush_hello *ans, char *err,
		     size_t errlen)
{
	struct timeval tv = { .tv_sec = UFFD_HELLO_TIMEOUT_S };
	struct pagepush_hello h;
	char why[192];
	uint32_t status;
	int fd, ret;

	fd = pp_tcp_dial(addr, UFFD_HELLO_TIMEOUT_S * 1000, why, sizeof(why));
	if (fd < 0) {
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	pp_tcp_nodelay(fd);
	/* A source that never answers must not hang us. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	pp_hello_init(&h, role, flags, 0, cookie, 0, 0);
	ret = pp_write_all(fd, &h, sizeof(h));
	if (!ret)
		ret = pp_read_all(fd, ans, sizeof(*ans));
	if (ret) {
		snprintf(err, errlen, "handshake with %s failed: %s", addr,
			 ret == -ECONNRESET ? "the source closed the connection" :
			 ret == -EAGAIN ? "no answer" : strerror(-ret));
		goto fail;
	}
	if (pp_hello_check(ans, why, sizeof(why))) {
		snprintf(err, errlen, "%s: %s", addr, why);
		goto fail;
	}
	status = le32toh(ans->status);
	if (status != PAGEPUSH_HELLO_OK) {
		snprintf(err, errlen, "%s refused the %s connection: %s", addr,
			 uffd_chan_name(role), pp_hello_status_name(status));
		goto fail;
	}
	tv.tv_sec = 0;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
fail:
	close(fd);
	return -1;
}

static void *uffd_map_anon(size_t len, int prot)
{
	void *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static int uffd_map(struct uffd_recv *r, char *err, size_t errlen)
{
	bool huge = r->psize == UFFD_HUGE_SIZE;
	const char *hint = huge ?
		"; reserve huge pages: echo N > /proc/sys/vm/nr_hugepages" : "";
	uint64_t mib = r->size >> 20;
	void *p;

	if (r->mode == UFFD_MODE_MISSING) {
		p = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS |
			 (huge ? MAP_HUGETLB | MAP_HUGE_2MB : MAP_NORESERVE), -1, 0);
		if (p == MAP_FAILED) {
			snprintf(err, errlen, "cannot map %" PRIu64 " MiB of %s pages: %s%s", mib,
				 huge ? "2M huge" : "anonymous", strerror(errno), hint);
			return -1;
		}
		r->fview = p;
		/* Pages are placed 4K at a time, as QEMU's postcopy does. */
		if (!huge)
			madvise(p, r->size, MADV_NOHUGEPAGE);
		return 0;
	}

	r->memfd = memfd_create("pagepush-uffd", MFD_CLOEXEC |
				(huge ? MFD_HUGETLB | MFD_HUGE_2MB : 0));
	if (r->memfd < 0) {
		snprintf(err, errlen, "memfd_create: %s", strerror(errno));
		return -1;
	}
	if (ftruncate(r->memfd, r->size)) {
		snprintf(err, errlen, "cannot size the memfd to %" PRIu64 " MiB: %s", mib,
			 strerror(errno));
		return -1;
	}
	p = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED, r->memfd, 0);
	if (p == MAP_FAILED) {
		snprintf(err, errlen, "cannot map %" PRIu64 " MiB of %s: %s%s", mib,
			 huge ? "hugetlb memfd" : "memfd", strerror(errno), hint);
		return -1;
	}
	r->fview = p;
	p = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED, r->memfd, 0);
	if (p == MAP_FAILED) {
		snprintf(err, errlen, "cannot map the memfd twice: %s", strerror(errno));
		return -1;
	}
	r->wview = p;
	return 0;
}

static int uffd_open(struct uffd_recv *r, char *err, size_t errlen)
{
	bool huge = r->psize == UFFD_HUGE_SIZE;
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)r->fview, .len = r->size },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	uint64_t want = 0, need_ioctls = 1ULL << _UFFDIO_WAKE;
	int fd;

	if (r->mode == UFFD_MODE_MINOR) {
		want = huge ? UFFD_FEATURE_MINOR_HUGETLBFS | UFFD_FEATURE_MISSING_HUGETLBFS :
			      UFFD_FEATURE_MINOR_SHMEM | UFFD_FEATURE_MISSING_SHMEM;
		reg.mode |= UFFDIO_REGISTER_MODE_MINOR;
		need_ioctls |= 1ULL << _UFFDIO_CONTINUE;
	} else {
		want = huge ? UFFD_FEATURE_MISSING_HUGETLBFS : 0;
		need_ioctls |= 1ULL << _UFFDIO_COPY | (huge ? 0 : 1ULL << _UFFDIO_ZEROPAGE);
	}

	/* UFFDIO_API takes once per descriptor: ask what there is first. */
	fd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		snprintf(err, errlen, "userfaultfd: %s%s", strerror(errno),
			 errno == EPERM ? " (needs root, or vm.unprivileged_userfaultfd=1)" : "");
		return -1;
	}
	if (ioctl(fd, UFFDIO_API, &api)) {
		snprintf(err, errlen, "UFFDIO_API: %s", strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	if ((api.features & want) != want) {
		snprintf(err, errlen, "this kernel's userfaultfd lacks features %#" PRIx64
			 " needed for %s on %s pages", (uint64_t)(want & ~api.features),
			 r->mode == UFFD_MODE_MINOR ? "MINOR mode" : "MISSING mode",
			 huge ? "2M" : "4K");
		return -1;
	}

	r->uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (r->uffd < 0) {
		snprintf(err, errlen, "userfaultfd: %s", strerror(errno));
		return -1;
	}
	api.api = UFFD_API;
	api.features = want;
	api.ioctls = 0;
	if (ioctl(r->uffd, UFFDIO_API, &api)) {
		snprintf(err, errlen, "UFFDIO_API with features %#" PRIx64 ": %s",
			 (uint64_t)want, strerror(errno));
		return -1;
	}
	if (ioctl(r->uffd, UFFDIO_REGISTER, &reg)) {
		snprintf(err, errlen, "UFFDIO_REGISTER (%s): %s",
			 r->mode == UFFD_MODE_MINOR ? "MISSING|MINOR" : "MISSING",
			 strerror(errno));
		return -1;
	}
	if ((reg.ioctls & need_ioctls) != need_ioctls) {
		snprintf(err, errlen, "the registered range lacks ioctls %#" PRIx64,
			 (uint64_t)(need_ioctls & ~reg.ioctls));
		return -1;
	}
	return 0;
}

static int uffd_start_thread(struct uffd_thread *th, void *(*fn)(void *), void *arg)
{
	int ret = pthread_create(&th->t, NULL, fn, arg);

	if (ret)
		return -ret;
	th->started = true;
	if (pthread_getcpuclockid(th->t, &th->clock))
		th->clock = CLOCK_THREAD_CPUTIME_ID;	/* never: the thread exists */
	return 0;
}

struct uffd_recv *uffd_recv_start(const char *addr, enum uffd_mode mode,
				  bool no_preempt, char *err, size_t errlen)
{
	struct pagepush_hello ans, post_ans;
	pthread_condattr_t ca;
	struct uffd_recv *r;
	unsigned int i;
	int fd;

	r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->mode = mode;
	r->memfd = -1;
	r->uffd = -1;
	r->efd = -1;
	for (i = 0; i < PAGEPUSH_NR_CHANNELS; i++) {
		r->chan[i].r = r;
		r->chan[i].id = i;
		r->chan[i].fd = -1;
		r->chan[i].idx = UFFD_NO_PAGE;
	}
	pthread_mutex_init(&r->lock, NULL);
	pthread_mutex_init(&r->rp_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cond, &ca);
	pthread_condattr_destroy(&ca);

	fd = uffd_dial(addr, PRE, no_preempt ? 0 : PAGEPUSH_HELLO_PREEMPT, 0, &ans,
		       err, errlen);
	if (fd < 0)
		goto fail;
	r->chan[PRE].fd = fd;
	r->nr_chan = 1;
	r->size = le64toh(ans.size_bytes);
	r->psize = le32toh(ans.page_size);
	if (r->psize != 4096 && r->psize != UFFD_HUGE_SIZE) {
		snprintf(err, errlen, "the source announces page size %u, not 4096 or 2097152",
			 r->psize);
		goto fail;
	}
	if (!r->size || r->size % r->psize || r->size > PAGEPUSH_SIZE_MAX) {
		snprintf(err, errlen, "the source announces a region of %" PRIu64
			 " bytes, not a multiple of its page size", r->size);
		goto fail;
	}
	r->shift = __builtin_ctz(r->psize);
	r->nr_pages = r->size >> r->shift;
	r->ahead = r->psize == UFFD_HUGE_SIZE ? UFFD_AHEAD_HUGE : UFFD_RX_CAP;

	if (le32toh(ans.flags) & PAGEPUSH_HELLO_PREEMPT) {
		fd = uffd_dial(addr, POST, PAGEPUSH_HELLO_PREEMPT, le64toh(ans.cookie),
			       &post_ans, err, errlen);
		if (fd < 0)
			goto fail;
		r->chan[POST].fd = fd;
		r->nr_chan = 2;
		if (le64toh(post_ans.size_bytes) != r->size ||
		    le32toh(post_ans.page_size) != r->psize) {
			snprintf(err, errlen, "the source announces another region on postcopy");
			goto fail;
		}
	}

	if (uffd_map(r, err, errlen) || uffd_open(r, err, errlen))
		goto fail;

	r->state = calloc(r->nr_pages, sizeof(*r->state));
	r->requested = calloc(r->nr_pages, 1);
	r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!r->state || !r->requested || r->efd < 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (mode == UFFD_MODE_MISSING && r->psize == UFFD_HUGE_SIZE) {
		r->zero = uffd_map_anon(r->psize, PROT_READ);
		if (!r->zero) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	for (i = 0; i < r->nr_chan; i++) {
		struct uffd_chan *ch = &r->chan[i];

		ch->buf = uffd_map_anon(UFFD_RX_CAP, PROT_READ | PROT_WRITE);
		if (mode == UFFD_MODE_MISSING)
			ch->page = uffd_map_anon(r->psize, PROT_READ | PROT_WRITE);
		if (!ch->buf || (mode == UFFD_MODE_MISSING && !ch->page)) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}

	/* Faults are served before any page can arrive. */
	if (uffd_start_thread(&r->fault_th, uffd_fault_thread, r))
		goto no_thread;
	for (i = 0; i < r->nr_chan; i++) {
		if (uffd_start_thread(&r->chan[i].th, uffd_rx_thread, &r->chan[i]))
			goto no_thread;
	}
	return r;

no_thread:
	snprintf(err, errlen, "cannot start threads");
fail:
	uffd_recv_stop(r);
	return NULL;
}

void *uffd_recv_base(struct uffd_recv *r)
{
	return r->fview;
}

uint64_t uffd_recv_size(struct uffd_recv *r)
{
	return r->size;
}

uint32_t uffd_recv_page_size(struct uffd_recv *r)
{
	return r->psize;
}

int uffd_recv_wait_complete(struct uffd_recv *r, int timeout_ms)
{
	struct timespec ts;
	int ret = 0;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (timeout_ms >= 0) {
		ts.tv_sec += timeout_ms / 1000;
		ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
	}
	pthread_mutex_lock(&r->lock);
	while (!r->complete && !r->failed && ret != ETIMEDOUT) {
		if (timeout_ms < 0)
			pthread_cond_wait(&r->cond, &r->lock);
		else
			ret = pthread_cond_timedwait(&r->cond, &r->lock, &ts);
	}
	ret = r->complete ? 0 : r->failed ? -(r->error ? r->error : EIO) : -ETIMEDOUT;
	pthread_mutex_unlock(&r->lock);
	return ret;
}

const char *uffd_recv_error(struct uffd_recv *r)
{
	return r->why;
}

double uffd_recv_cpu_seconds(struct uffd_recv *r)
{
	double sum = uffd_thread_cpu(&r->fault_th);
	unsigned int i;

	for (i = 0; i < r->nr_chan; i++)
		sum += uffd_thread_cpu(&r->chan[i].th);
	return sum;
}

uint64_t uffd_recv_requests_sent(struct uffd_recv *r)
{
	return atomic_load(&r->requests);
}

void uffd_recv_stop(struct uffd_recv *r)
{
	unsigned int i;

	if (!r)
		return;
	atomic_store(&r->stopping, true);
	for (i = 0; i < PAGEPUSH_NR_CHANNELS; i++) {
		if (r->chan[i].fd >= 0)
			shutdown(r->chan[i].fd, SHUT_RDWR);
	}
	uffd_kick(r);
	for (i = 0; i < PAGEPUSH_NR_CHANNELS; i++) {
		if (r->chan[i].th.started)
			pthread_join(r->chan[i].th.t, NULL);
	}
	if (r->fault_th.started)
		pthread_join(r->fault_th.t, NULL);

	for (i = 0; i < PAGEPUSH_NR_CHANNELS; i++) {
		struct uffd_chan *ch = &r->chan[i];

		if (ch->fd >= 0)
			close(ch->fd);
		if (ch->buf)
			munmap(ch->buf, UFFD_RX_CAP);
		if (ch->page)
			munmap(ch->page, r->psize);
	}
	/* Closing the userfaultfd releases any task still held. */
	if (r->uffd >= 0)
		close(r->uffd);
	if (r->efd >= 0)
		close(r->efd);
	if (r->fview)
		munmap(r->fview, r->size);
	if (r->wview)
		munmap(r->wview, r->size);
	if (r->memfd >= 0)
		close(r->memfd);
	if (r->zero)
		munmap(r->zero, r->psize);
	free(r->state);
	free(r->requested);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->rp_lock);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
