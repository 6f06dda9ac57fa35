// SPDX-License-Identifier: GPL-2.0
/*
 * pagepush serve: the source side and its scheduler.
 *
 * Every page goes out in the background on the PRECOPY connection, in
 * chunks, cursor order. Requests arrive on the return path (the reverse
 * direction of PRECOPY), read by their own thread. With preemption (the
 * default, two connections), the sender checks for requests between the
 * chunks of a huge page, and also while it waits for room on the PRECOPY
 * socket: when one is pending it leaves the page where it is, sends every
 * pending requested page whole on the POSTCOPY connection, then resumes
 * the interrupted page where it stopped. A requested page is never
 * interrupted; a request for the interrupted page is dropped (it completes
 * on PRECOPY, a page is never split across connections), and so is a
 * request for a page already sent. The background cursor does not jump
 * to the requested page unless --locality says so.
 *
 * With --no-preempt there is one connection: a requested page goes out
 * on it as soon as the page in flight is complete.
 *
 * Recovery: when the connections are lost before COMPLETE (and the
 * destination did not say ABORT), the source keeps its listening socket
 * and waits up to --recover-timeout for the destination to come back
 * with the same cookie (PAGEPUSH_HELLO_RECOVER). The destination then
 * sends the bitmap of the pages it has (PRESENT frames, then RESUME):
 * that, not what this process remembers sending, decides what is sent
 * again, so a source restarted with the same --cookie serves a
 * recovery as well as the original would.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "cmds.h"
#include "util.h"
#include "wire.h"

enum { PRE = PAGEPUSH_CHANNEL_PRECOPY, POST = PAGEPUSH_CHANNEL_POSTCOPY };

struct src_stats {
	uint64_t pages[PAGEPUSH_NR_CHANNELS];
	uint64_t zero_pages[PAGEPUSH_NR_CHANNELS];
	uint64_t bytes[PAGEPUSH_NR_CHANNELS];
	uint64_t requests_received;
	uint64_t requests_served;
	uint64_t dropped_interrupted;
	uint64_t dropped_sent;
	uint64_t preemptions;
	uint64_t resumed;
	uint64_t recoveries;
	uint64_t resent;
};

struct src {
	/* what is served */
	const char *path;
	const uint8_t *base;
	uint64_t size;
	uint32_t page_size;
	uint64_t nr_pages;
	uint32_t chunk;
	uint32_t notsent_lowat;
	uint32_t link_timeout;
	uint32_t recover_timeout;
	bool want_preempt;
	bool preempt;
	bool locality;
	bool no_background;
	bool no_drain;
	uint64_t cookie;
	int lfd;
	int fd[PAGEPUSH_NR_CHANNELS];
	bool recovering;		/* the connections resume a migration */
	bool served;			/* a destination connected once */

	/* request queue, filled by the return-path thread */
	pthread_mutex_t lock;
	uint64_t *queue;		/* ring of page indices, under @lock */
	size_t q_first, q_count, q_cap;	/* under @lock */
	atomic_size_t pending;		/* == q_count, read without @lock */
	int efd;			/* eventfd: the queue or a flag changed */
	atomic_bool complete;		/* COMPLETE received */
	atomic_bool gone;		/* return path ended */
	atomic_bool aborted;		/* ABORT received */
	char gone_why[160];		/* set before @gone */

	/* scheduler, sender thread only */
	uint8_t *sent;
	uint64_t nr_sent;
	uint64_t cursor;
	bool inflight;
	uint64_t inflight_idx;
	uint32_t inflight_off;

	struct src_stats st;
};

static void src_kick(struct src *s)
{
	uint64_t one = 1;

	if (write(s->efd, &one, sizeof(one)) < 0)
		pp_warn("eventfd: %s", strerror(errno));
}

static void src_drain_kick(struct src *s)
{
	uint64_t v;

	if (read(s->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		pp_warn("eventfd: %s", strerror(errno));
}

static int src_push(struct src *s, uint64_t idx)
{
	pthread_mutex_lock(&s->lock);
	if (s->q_count == s->q_cap) {
		size_t cap = s->q_cap ? s->q_cap * 2 : 256, i;
		uint64_t *q = malloc(cap * sizeof(*q));

		if (!q) {
			pthread_mutex_unlock(&s->lock);
			return -ENOMEM;
		}
		for (i = 0; i < s->q_count; i++)
			q[i] = s->queue[(s->q_first + i) % s->q_cap];
		free(s->queue);
		s->queue = q;
		s->q_first = 0;
		s->q_cap = cap;
	}
	s->queue[(s->q_first + s->q_count) % s->q_cap] = idx;
	s->q_count++;
	atomic_store(&s->pending, s->q_count);
	pthread_mutex_unlock(&s->lock);
	src_kick(s);
	return 0;
}

static bool src_pop(struct src *s, uint64_t *idx)
{
	bool got = false;

	pthread_mutex_lock(&s->lock);
	if (s->q_count) {
		*idx = s->queue[s->q_first];
		s->q_first = (s->q_first + 1) % s->q_cap;
		s->q_count--;
		got = true;
	}
	atomic_store(&s->pending, s->q_count);
	pthread_mutex_unlock(&s->lock);
	return got;
}

static void src_gone(struct src *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void src_gone(struct src *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->gone_why, sizeof(s->gone_why), fmt, ap);
	va_end(ap);
	atomic_store(&s->gone, true);
	src_kick(s);
}

/* The return path: REQUEST and COMPLETE frames from the destination. */
static void *src_return_path(void *arg)
{
	struct src *s = arg;
	struct pagepush_frame f;
	uint64_t off;
	int ret;

	for (;;) {
		ret = pp_read_all(s->fd[PRE], &f, sizeof(f));
		if (ret) {
			src_gone(s, "the destination closed the connection%s%s",
				 ret == -ECONNRESET ? "" : ": ",
				 ret == -ECONNRESET ? "" : strerror(-ret));
			return NULL;
		}
		off = le64toh(f.offset);
		if (f.version != PAGEPUSH_WIRE_VERSION) {
			src_gone(s, "protocol error: frame version %u on the return path",
				 f.version);
			return NULL;
		}
		switch (f.type) {
		case PAGEPUSH_FRAME_REQUEST:
			if (off % s->page_size || off >= s->size ||
			    le32toh(f.length) != s->page_size) {
				src_gone(s, "protocol error: REQUEST for [%" PRIu64 ", +%u)",
					 off, le32toh(f.length));
				return NULL;
			}
			if (src_push(s, off / s->page_size)) {
				src_gone(s, "out of memory queueing a request");
				return NULL;
			}
			break;
		case PAGEPUSH_FRAME_COMPLETE:
			atomic_store(&s->complete, true);
			src_kick(s);
			break;
		case PAGEPUSH_FRAME_ABORT:
			atomic_store(&s->aborted, true);
			src_gone(s, "the destination gave up on the migration");
			return NULL;
		default:
			src_gone(s, "protocol error: %s frame on the return path",
				 pp_frame_type_name(f.type));
			return NULL;
		}
	}
}

static bool src_page_is_zero(const struct src *s, uint64_t idx)
{
	const uint64_t *p = (const uint64_t *)(s->base + idx * s->page_size);
	size_t i, n = s->page_size / sizeof(*p);

	for (i = 0; i < n; i++) {
		if (p[i])
			return false;
	}
	return true;
}

/*
 * Wait until @fd can take more data. With @watch, a pending request cuts
 * the wait short: returns 1. Returns 0 when writable, or a negative errno.
 */
static int src_wait_writable(struct src *s, int fd, bool watch)
{
	struct pollfd pfd[2] = {
		{ .fd = fd, .events = POLLOUT },
		{ .fd = s->efd, .events = POLLIN },
	};

	for (;;) {
		if (watch && atomic_load(&s->pending))
			return 1;
		if (atomic_load(&s->gone))
			return -ECONNRESET;
		if (poll(pfd, watch ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (pfd[0].revents & (POLLERR | POLLHUP))
			return -ECONNRESET;
		if (pfd[1].revents & POLLIN)
			src_drain_kick(s);
		if (pfd[0].revents & POLLOUT)
			return 0;
	}
}

/*
 * Write the rest of a frame of which @done bytes (header first) went out
 * already. Not interruptible: a frame is never left half sent.
 */
static int src_finish_frame(struct src *s, int fd,
			    const struct pagepush_frame *hdr,
			    const uint8_t *data, uint32_t len, size_t done)
{
	size_t total = sizeof(*hdr) + len;

	while (done < total) {
		struct iovec iov[2];
		struct msghdr msg = { .msg_iov = iov };
		ssize_t n;

		if (done < sizeof(*hdr)) {
			iov[0].iov_base = (char *)hdr + done;
			iov[0].iov_len = sizeof(*hdr) - done;
			iov[1].iov_base = (void *)data;
			iov[1].iov_len = len;
			msg.msg_iovlen = 2;
		} else {
			iov[0].iov_base = (void *)(data + done - sizeof(*hdr));
			iov[0].iov_len = total - done;
			msg.msg_iovlen = 1;
		}
		n = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			int ret;

			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -errno;
			ret = src_wait_writable(s, fd, false);
			if (ret)
				return ret;
			continue;
		}
		done += n;
	}
	return 0;
}

/*
 * Send one whole frame; never returns half a frame sent. With
 * @interruptible, a request that comes while the socket is full and
 * nothing of the frame is sent yet cuts the wait short: returns 1.
 */
static int src_send_frame(struct src *s, unsigned int ch, uint8_t type,
			  uint64_t off, const void *data, uint32_t len,
			  bool interruptible)
{
	uint32_t payload = type == PAGEPUSH_FRAME_PAGE ? len : 0;
	struct pagepush_frame f;
	struct iovec iov[2] = {
		{ .iov_base = &f, .iov_len = sizeof(f) },
		{ .iov_base = (void *)data, .iov_len = payload },
	};
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = payload ? 2 : 1 };
	int fd = s->fd[ch], ret;
	ssize_t n;

	pp_frame_init(&f, type, off, type == PAGEPUSH_FRAME_PAGE ||
		      type == PAGEPUSH_FRAME_ZERO ? len : 0);
	for (;;) {
		n = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n >= 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		ret = src_wait_writable(s, fd, interruptible);
		if (ret)
			return ret;
	}
	ret = src_finish_frame(s, fd, &f, data, payload, n);
	if (!ret)
		s->st.bytes[ch] += payload;
	return ret;
}

static void src_mark_sent(struct src *s, uint64_t idx, unsigned int ch,
			  bool zero)
{
	s->sent[idx] = 1;
	s->nr_sent++;
	s->st.pages[ch]++;
	if (zero)
		s->st.zero_pages[ch]++;
}

/* A whole page in one frame (requested pages, never interrupted). */
static int src_send_whole(struct src *s, unsigned int ch, uint64_t idx)
{
	const uint8_t *data = s->base + idx * s->page_size;
	bool zero = src_page_is_zero(s, idx);
	int ret;

	ret = src_send_frame(s, ch, zero ? PAGEPUSH_FRAME_ZERO : PAGEPUSH_FRAME_PAGE,
			     idx * s->page_size, data, s->page_size, false);
	if (!ret)
		src_mark_sent(s, idx, ch, zero);
	return ret;
}

/*
 * Hold the background stream until the POSTCOPY socket has sent every
 * byte of the requested pages: both connections share the link, and a
 * background stream resumed at once would take half of it from the page
 * a task waits for. What is in flight is left alone (waiting for its
 * acknowledgement could cost a delayed ACK). New requests cut the wait
 * short: they are served first anyway.
 */
static int src_drain_postcopy(struct src *s)
{
	struct pollfd pfd = { .fd = s->efd, .events = POLLIN };
	int unsent;

	for (;;) {
		if (atomic_load(&s->gone))
			return -ECONNRESET;
		if (ioctl(s->fd[POST], SIOCOUTQNSD, &unsent) || !unsent ||
		    atomic_load(&s->pending))
			return 0;
		if (poll(&pfd, 1, 1) > 0)
			src_drain_kick(s);
	}
}

/* Serve every pending request; returns 0 or a negative errno. */
static int src_serve_requests(struct src *s)
{
	unsigned int ch = s->preempt ? POST : PRE;
	bool served = false;
	uint64_t idx;
	int ret;

again:
	while (src_pop(s, &idx)) {
		s->st.requests_received++;
		if (s->sent[idx]) {
			s->st.dropped_sent++;
			continue;
		}
		if (s->inflight && s->inflight_idx == idx) {
			/* Completes on PRECOPY: never split a page. */
			s->st.dropped_interrupted++;
			continue;
		}
		ret = src_send_whole(s, ch, idx);
		if (ret)
			return ret;
		served = true;
		s->st.requests_served++;
		if (s->locality)
			s->cursor = idx + 1 < s->nr_pages ? idx + 1 : 0;
	}
	if (served && ch == POST && !s->no_drain) {
		served = false;
		ret = src_drain_postcopy(s);
		if (ret)
			return ret;
		if (atomic_load(&s->pending))
			goto again;
	}
	return 0;
}

static uint64_t src_next_unsent(struct src *s)
{
	uint64_t i, idx;

	for (i = 0; i < s->nr_pages; i++) {
		idx = (s->cursor + i) % s->nr_pages;
		if (!s->sent[idx]) {
			s->cursor = (idx + 1) % s->nr_pages;
			return idx;
		}
	}
	return UINT64_MAX;
}

/* Background chunks written per sendmsg(): fewer system calls, same frames. */
#define SRC_BATCH	16

/*
 * Send the in-flight background page from where it stopped, in chunks,
 * SRC_BATCH frames per system call. A request interrupts the page between
 * two frames: when one is pending, or comes while the socket is full. A
 * frame the socket took in part is always finished first. Returns 1 when
 * a request interrupted the page, 0 when it is complete, or an errno.
 */
static int src_send_inflight(struct src *s)
{
	const uint8_t *page = s->base + s->inflight_idx * s->page_size;
	uint64_t base = s->inflight_idx * s->page_size;
	bool interruptible = s->preempt && s->page_size > s->chunk;
	struct pagepush_frame hdr[SRC_BATCH];
	struct iovec iov[2 * SRC_BATCH];
	int fd = s->fd[PRE];

	while (s->inflight_off < s->page_size) {
		bool interrupt = interruptible && s->inflight_off;
		uint32_t off = s->inflight_off, len[SRC_BATCH];
		unsigned int i, n = 0;
		size_t total = 0, done;
		struct msghdr msg = { .msg_iov = iov };
		ssize_t sent;
		int ret;

		/* Between chunks: a pending request interrupts the page. */
		if (interrupt && atomic_load(&s->pending))
			return 1;
		while (n < SRC_BATCH && off < s->page_size) {
			len[n] = s->page_size - off < s->chunk ? s->page_size - off : s->chunk;
			pp_frame_init(&hdr[n], PAGEPUSH_FRAME_PAGE, base + off, len[n]);
			iov[2 * n].iov_base = &hdr[n];
			iov[2 * n].iov_len = sizeof(hdr[n]);
			iov[2 * n + 1].iov_base = (void *)(page + off);
			iov[2 * n + 1].iov_len = len[n];
			total += sizeof(hdr[n]) + len[n];
			off += len[n];
			n++;
		}
		msg.msg_iovlen = 2 * n;
		sent = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (sent < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -errno;
			ret = src_wait_writable(s, fd, interrupt);
			if (ret)
				return ret;
			continue;
		}

		/* Account for whole frames; finish the one cut short. */
		done = sent;
		for (i = 0; i < n && done; i++) {
			size_t flen = sizeof(hdr[i]) + len[i];

			if (done < flen) {
				ret = src_finish_frame(s, fd, &hdr[i],
						       page + s->inflight_off,
						       len[i], done);
				if (ret)
					return ret;
				done = flen;
			}
			done -= flen;
			s->inflight_off += len[i];
			s->st.bytes[PRE] += len[i];
		}
	}
	return 0;
}

static int src_run(struct src *s)
{
	unsigned int ch;
	uint64_t idx;
	int ret;

	while (s->nr_sent < s->nr_pages) {
		if (atomic_load(&s->gone))
			return -ECONNRESET;
		ret = src_serve_requests(s);
		if (ret)
			return ret;
		if (s->nr_sent == s->nr_pages)
			break;
		if (s->no_background) {
			/* Pure postcopy: wait for the next request. */
			struct pollfd pfd = { .fd = s->efd, .events = POLLIN };

			if (!atomic_load(&s->pending) && poll(&pfd, 1, -1) > 0)
				src_drain_kick(s);
			continue;
		}

		if (!s->inflight) {
			idx = src_next_unsent(s);
			if (src_page_is_zero(s, idx)) {
				ret = src_send_frame(s, PRE, PAGEPUSH_FRAME_ZERO,
						     idx * s->page_size, NULL,
						     s->page_size, false);
				if (ret)
					return ret;
				src_mark_sent(s, idx, PRE, true);
				continue;
			}
			s->inflight = true;
			s->inflight_idx = idx;
			s->inflight_off = 0;
		} else {
			s->st.resumed++;
		}

		ret = src_send_inflight(s);
		if (ret < 0)
			return ret;
		if (ret == 1) {
			s->st.preemptions++;
			continue;
		}
		s->inflight = false;
		src_mark_sent(s, s->inflight_idx, PRE, false);
	}

	for (ch = 0; ch < PAGEPUSH_NR_CHANNELS; ch++) {
		if (s->fd[ch] < 0)
			continue;
		ret = src_send_frame(s, ch, PAGEPUSH_FRAME_EOS, 0, NULL, 0, false);
		if (ret)
			return ret;
	}

	/* Requests may still come in; they are all for sent pages. */
	while (!atomic_load(&s->complete)) {
		struct pollfd pfd = { .fd = s->efd, .events = POLLIN };

		if (atomic_load(&s->gone))
			return atomic_load(&s->complete) ? 0 : -ECONNRESET;
		if (poll(&pfd, 1, -1) > 0)
			src_drain_kick(s);
		ret = src_serve_requests(s);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * Accept a connection and read its hello. Returns the fd, -1 on a fatal
 * error, -2 for a connection to forget.
 */
static int src_accept(int lfd, struct pagepush_hello *h)
{
	char err[128];
	int fd;

	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EINTR || errno == ECONNABORTED)
			return -2;
		pp_err("accept: %s", strerror(errno));
		return -1;
	}
	if (pp_read_all(fd, h, sizeof(*h))) {
		close(fd);
		return -2;
	}
	if (pp_hello_check(h, err, sizeof(err))) {
		struct pagepush_hello no;

		pp_warn("refused a connection: %s", err);
		pp_hello_init(&no, 0, 0, PAGEPUSH_HELLO_EVERSION, 0, 0, 0);
		pp_write_all(fd, &no, sizeof(no));
		close(fd);
		return -2;
	}
	return fd;
}

static int src_answer(struct src *s, int fd, uint16_t role, uint32_t status)
{
	struct pagepush_hello h;

	pp_hello_init(&h, role, s->preempt ? PAGEPUSH_HELLO_PREEMPT : 0, status,
		      s->cookie, s->size, s->page_size);
	return pp_write_all(fd, &h, sizeof(h));
}

/* Whether a PRECOPY hello may start (or resume) a migration: a status. */
static uint32_t src_check_precopy(struct src *s, const struct pagepush_hello *h)
{
	uint64_t cookie = le64toh(h->cookie);

	if (!(le32toh(h->flags) & PAGEPUSH_HELLO_RECOVER))
		return cookie ? PAGEPUSH_HELLO_ECOOKIE :
		       s->served ? PAGEPUSH_HELLO_EBUSY : PAGEPUSH_HELLO_OK;
	if (cookie != s->cookie)
		return PAGEPUSH_HELLO_ECOOKIE;
	if (le64toh(h->size_bytes) != s->size ||
	    le32toh(h->page_size) != s->page_size)
		return PAGEPUSH_HELLO_EMISMATCH;
	return PAGEPUSH_HELLO_OK;
}

/*
 * Wait for the destination's connections, for ever (@timeout_ms < 0) or
 * up to @timeout_ms. A new PRECOPY connection replaces one still waiting
 * for its POSTCOPY partner (a destination that retried). Returns 0,
 * -ETIMEDOUT, or -1 on a fatal error.
 */
static int src_handshake(struct src *s, int64_t timeout_ms)
{
	uint64_t deadline = pp_now_ns() + (uint64_t)timeout_ms * 1000000;
	struct pagepush_hello h;
	int fd;

	while (s->fd[PRE] < 0 || (s->preempt && s->fd[POST] < 0)) {
		struct pollfd pfd = { .fd = s->lfd, .events = POLLIN };
		uint32_t status, flags;
		uint16_t role;
		int wait = -1;

		if (timeout_ms >= 0) {
			uint64_t now = pp_now_ns();

			if (now >= deadline)
				return -ETIMEDOUT;
			wait = (deadline - now) / 1000000 + 1;
		}
		if (poll(&pfd, 1, wait) <= 0)
			continue;
		fd = src_accept(s->lfd, &h);
		if (fd == -1)
			return -1;
		if (fd < 0)
			continue;
		role = le16toh(h.role);
		flags = le32toh(h.flags);
		if (role == PRE) {
			status = src_check_precopy(s, &h);
			if (status == PAGEPUSH_HELLO_OK) {
				if (s->fd[PRE] >= 0)
					close(s->fd[PRE]);
				/* Preempt only if both ends want it. */
				s->preempt = s->want_preempt &&
					     (flags & PAGEPUSH_HELLO_PREEMPT);
				s->recovering = flags & PAGEPUSH_HELLO_RECOVER;
				s->fd[PRE] = fd;
			}
		} else if (role == POST && s->fd[PRE] >= 0 && s->preempt &&
			   s->fd[POST] < 0 && le64toh(h.cookie) == s->cookie) {
			status = PAGEPUSH_HELLO_OK;
			s->fd[POST] = fd;
		} else {
			status = le64toh(h.cookie) && le64toh(h.cookie) != s->cookie ?
				 PAGEPUSH_HELLO_ECOOKIE : s->fd[PRE] >= 0 ?
				 PAGEPUSH_HELLO_EBUSY : PAGEPUSH_HELLO_EROLE;
		}
		src_answer(s, fd, role, status);
		if (status != PAGEPUSH_HELLO_OK)
			close(fd);
	}
	return 0;
}

/*
 * A recovering destination says first which pages it has: PRESENT
 * frames covering the region in order, then RESUME. What it lacks is sent
 * (again): pages in flight when the connection broke, pages it dropped
 * half assembled. Returns 0, or a negative errno (-EPROTO: bad frames).
 */
static int src_read_present(struct src *s)
{
	uint64_t next = 0, i, idx;
	struct pagepush_frame f;
	uint8_t *bits = NULL;
	size_t cap = 0;
	uint32_t len;
	int ret;

	for (;;) {
		ret = pp_read_all(s->fd[PRE], &f, sizeof(f));
		if (ret)
			break;
		len = le32toh(f.length);
		if (f.version != PAGEPUSH_WIRE_VERSION) {
			ret = -EPROTO;
			break;
		}
		if (f.type == PAGEPUSH_FRAME_RESUME) {
			ret = next == s->nr_pages ? 0 : -EPROTO;
			break;
		}
		if (f.type != PAGEPUSH_FRAME_PRESENT ||
		    le64toh(f.offset) != next * s->page_size || !len ||
		    len > (s->nr_pages - next + 7) / 8) {
			ret = -EPROTO;
			break;
		}
		if (len > cap) {
			uint8_t *p = realloc(bits, len);

			if (!p) {
				ret = -ENOMEM;
				break;
			}
			bits = p;
			cap = len;
		}
		ret = pp_read_all(s->fd[PRE], bits, len);
		if (ret)
			break;
		for (i = 0; i < (uint64_t)len * 8 && next + i < s->nr_pages; i++) {
			bool have = bits[i / 8] & (1u << (i % 8));

			idx = next + i;
			if (have && !s->sent[idx]) {
				s->sent[idx] = 1;
				s->nr_sent++;
			} else if (!have && s->sent[idx]) {
				/* Lost in flight or dropped half assembled. */
				s->sent[idx] = 0;
				s->nr_sent--;
				s->st.resent++;
			}
		}
		next += i;
	}
	free(bits);
	return ret;
}

/* Forget the state of the connections that were lost. */
static void src_reset(struct src *s)
{
	uint64_t idx;

	/* A page cut short was dropped by the destination: start it over. */
	s->inflight = false;
	while (src_pop(s, &idx))
		;
	atomic_store(&s->complete, false);
	atomic_store(&s->gone, false);
	atomic_store(&s->aborted, false);
	src_drain_kick(s);
}

static void src_close(struct src *s)
{
	unsigned int ch;

	for (ch = 0; ch < PAGEPUSH_NR_CHANNELS; ch++) {
		if (s->fd[ch] >= 0)
			close(s->fd[ch]);
		s->fd[ch] = -1;
	}
}

/* Options of accepted connections; the error is only worth a warning. */
static void src_tune(struct src *s)
{
	unsigned int ch;

	for (ch = 0; ch < PAGEPUSH_NR_CHANNELS; ch++) {
		if (s->fd[ch] < 0)
			continue;
		pp_tcp_nodelay(s->fd[ch]);
		if (pp_tcp_link_timeout(s->fd[ch], s->link_timeout))
			pp_warn("cannot set the link timeout: %s", strerror(errno));
	}
	/* Little unsent data queues ahead of an interruption. */
	if (setsockopt(s->fd[PRE], IPPROTO_TCP, TCP_NOTSENT_LOWAT,
		       &s->notsent_lowat, sizeof(s->notsent_lowat)))
		pp_warn("TCP_NOTSENT_LOWAT: %s", strerror(errno));
}

static void src_report(struct src *s, FILE *f, double secs, bool ok)
{
	const struct src_stats *st = &s->st;
	char a[32], b[32];
	uint64_t bytes = st->bytes[PRE] + st->bytes[POST];
	unsigned int ch;

	fprintf(f, "%s: %s in %.2f s, %s sent at %s/s\n", pp_prog,
		ok ? "migration complete" : "migration failed", secs,
		pp_fmt_bytes(a, sizeof(a), bytes),
		pp_fmt_bytes(b, sizeof(b), secs > 0 ? bytes / secs : 0));
	for (ch = 0; ch < PAGEPUSH_NR_CHANNELS; ch++) {
		if (s->fd[ch] < 0 && !st->pages[ch])
			continue;
		fprintf(f, "  %-9s %" PRIu64 " pages (%" PRIu64 " zero), %s\n",
			ch == PRE ? "precopy" : "postcopy", st->pages[ch],
			st->zero_pages[ch], pp_fmt_bytes(a, sizeof(a), st->bytes[ch]));
	}
	fprintf(f, "  requests  %" PRIu64 " received, %" PRIu64 " served, %" PRIu64
		" dropped in the interrupted page, %" PRIu64 " dropped as already sent\n",
		st->requests_received, st->requests_served,
		st->dropped_interrupted, st->dropped_sent);
	if (s->preempt)
		fprintf(f, "  preempt   %" PRIu64 " interruptions, %" PRIu64 " pages resumed\n",
			st->preemptions, st->resumed);
	if (st->recoveries)
		fprintf(f, "  recovery  %" PRIu64 " recoveries, %" PRIu64 " pages sent again\n",
			st->recoveries, st->resent);
}

static int src_write_stats(struct src *s, const char *path, double secs, bool ok)
{
	const struct src_stats *st = &s->st;
	FILE *f = fopen(path, "w");

	if (!f) {
		pp_err("cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	fprintf(f, "{\"complete\":%s,\"seconds\":%.6f,\"preempt\":%s,"
		"\"page_size_bytes\":%u,\"chunk_bytes\":%u,\"pages_total\":%" PRIu64 ","
		"\"pages\":{\"precopy\":%" PRIu64 ",\"postcopy\":%" PRIu64 "},"
		"\"zero_pages\":{\"precopy\":%" PRIu64 ",\"postcopy\":%" PRIu64 "},"
		"\"bytes\":{\"precopy\":%" PRIu64 ",\"postcopy\":%" PRIu64 "},"
		"\"requests_received\":%" PRIu64 ",\"requests_served\":%" PRIu64 ","
		"\"requests_dropped_interrupted\":%" PRIu64 ","
		"\"requests_dropped_sent\":%" PRIu64 ","
		"\"preemptions\":%" PRIu64 ",\"pages_resumed\":%" PRIu64 ","
		"\"recoveries\":%" PRIu64 ",\"pages_resent\":%" PRIu64 "}\n",
		ok ? "true" : "false", secs, s->preempt ? "true" : "false",
		s->page_size, s->chunk, s->nr_pages,
		st->pages[PRE], st->pages[POST], st->zero_pages[PRE],
		st->zero_pages[POST], st->bytes[PRE], st->bytes[POST],
		st->requests_received, st->requests_served,
		st->dropped_interrupted, st->dropped_sent, st->preemptions,
		st->resumed, st->recoveries, st->resent);
	return fclose(f) ? -1 : 0;
}

/* Default seconds to wait for a destination to recover lost connections. */
#define SRC_RECOVER_TIMEOUT	300

static void serve_usage(FILE *f)
{
	fprintf(f,
		"usage: %s serve [--listen ADDR:PORT] [--page-size 4K|2M] [--no-preempt]\n"
		"                [--chunk SIZE] [--locality] [--notsent-lowat SIZE]\n"
		"                [--stats-json FILE] [--no-background] [--no-drain]\n"
		"                [--recover-timeout SECS] [--link-timeout SECS]\n"
		"                [--cookie COOKIE] FILE\n\n"
		"Serve the pages of FILE (a regular file, a hugetlbfs file, or a memfd\n"
		"through /proc/PID/fd/N) to one destination, then exit 0 once it says\n"
		"COMPLETE. The first line on stdout is 'listening on ADDR:PORT'. If the\n"
		"connections are lost, wait for the destination to recover them\n"
		"('pagepush recover', or 'attach --persist') and carry on; exit 3 if it\n"
		"gives up or does not come back in time.\n\n"
		"  --listen ADDR:PORT   where to listen (default 0.0.0.0:%s; :0 picks a port)\n"
		"  --page-size 4K|2M    page size of the region (default 2M); FILE's size\n"
		"                       must be a multiple of it\n"
		"  --no-preempt         one connection, no interruption (the baseline)\n"
		"  --chunk SIZE         bytes per background frame, where a huge page can be\n"
		"                       interrupted (default 4K)\n"
		"  --locality           after a requested page, continue the background\n"
		"                       stream after it instead of where it was\n"
		"  --notsent-lowat SIZE unsent bytes the PRECOPY socket may queue (default 128K)\n"
		"  --stats-json FILE    write the counters as JSON at exit\n"
		"  --no-background      send requested pages only (pure postcopy; the\n"
		"                       migration ends when every page was asked for)\n"
		"  --no-drain           resume the background stream as soon as requested\n"
		"                       pages are written, not once they are sent\n"
		"  --recover-timeout SECS  how long to wait for a destination that lost its\n"
		"                       connections (default %u; 0: exit at once)\n"
		"  --link-timeout SECS  silence after which a connection counts as lost\n"
		"                       (default %u; 0: the system's TCP defaults)\n"
		"  --cookie COOKIE      the migration cookie (default: random); give a\n"
		"                       restarted source the cookie of the migration it\n"
		"                       takes over (see 'pagepush status DEV' there)\n",
		pp_prog, PP_DEFAULT_PORT, SRC_RECOVER_TIMEOUT, PP_DEFAULT_LINK_TIMEOUT);
}

/*
 * Serve connections until the migration completes, the destination gives
 * up, or it does not come back in time. Returns an exit code.
 */
static int src_serve(struct src *s, const char *stats)
{
	uint64_t t0 = 0;
	bool ok = false;
	pthread_t rp;
	int rc;

	for (;;) {
		rc = src_handshake(s, s->served ? (int64_t)s->recover_timeout * 1000 : -1);
		if (rc == -ETIMEDOUT) {
			pp_err("the destination did not recover within %u s", s->recover_timeout);
			break;
		}
		if (rc)
			break;
		src_tune(s);
		if (s->recovering) {
			rc = src_read_present(s);
			if (rc) {
				pp_warn("a recovery broke off: %s", rc == -EPROTO ?
					"bad PRESENT frames" : strerror(-rc));
				src_close(s);
				if (rc == -EPROTO || rc == -ENOMEM)
					break;
				continue;
			}
			src_reset(s);
			s->st.recoveries++;
			fprintf(stderr, "%s: recovered: the destination has %" PRIu64
				" of %" PRIu64 " pages\n", pp_prog, s->nr_sent, s->nr_pages);
		}
		if (!s->served) {
			fprintf(stderr, "%s: serving %s (%" PRIu64 " pages of %s) with%s preemption, cookie %#" PRIx64 "\n",
				pp_prog, s->path, s->nr_pages,
				pp_fmt_page_size(s->page_size),
				s->preempt ? "" : "out", s->cookie);
			s->served = true;
			t0 = pp_now_ns();
		}

		if (pthread_create(&rp, NULL, src_return_path, s)) {
			pp_err("cannot start the return-path thread");
			src_close(s);
			break;
		}
		rc = src_run(s);
		/*
		 * COMPLETE means the destination has every page: whatever
		 * broke after it (the destination closes at once) is moot.
		 */
		if (rc && atomic_load(&s->complete))
			rc = 0;
		if (rc && !atomic_load(&s->gone))
			src_gone(s, "sending failed: %s", strerror(-rc));
		shutdown(s->fd[PRE], SHUT_RDWR);
		if (s->fd[POST] >= 0)
			shutdown(s->fd[POST], SHUT_RDWR);
		pthread_join(rp, NULL);
		src_close(s);
		if (!rc) {
			ok = true;
			break;
		}
		if (atomic_load(&s->aborted) || !s->recover_timeout) {
			pp_err("%s", s->gone_why);
			break;
		}
		fprintf(stderr, "%s: connection lost (%s); waiting up to %u s for the destination to recover\n",
			pp_prog, s->gone_why, s->recover_timeout);
	}

	if (!s->served)
		return PP_EXIT_FAIL;
	src_report(s, stdout, (pp_now_ns() - t0) / 1e9, ok);
	if (stats && src_write_stats(s, stats, (pp_now_ns() - t0) / 1e9, ok))
		return PP_EXIT_FAIL;
	return ok ? PP_EXIT_OK : PP_EXIT_MIGRATION;
}

int cmd_serve(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "page-size", required_argument, NULL, 'p' },
		{ "no-preempt", no_argument, NULL, 'N' },
		{ "chunk", required_argument, NULL, 'c' },
		{ "locality", no_argument, NULL, 'L' },
		{ "notsent-lowat", required_argument, NULL, 'w' },
		{ "stats-json", required_argument, NULL, 'S' },
		{ "no-background", no_argument, NULL, 'B' },
		{ "no-drain", no_argument, NULL, 'D' },
		{ "recover-timeout", required_argument, NULL, 'R' },
		{ "link-timeout", required_argument, NULL, 'T' },
		{ "cookie", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	struct src s = {
		.page_size = 2 << 20,
		.chunk = 4096,
		.notsent_lowat = 128 << 10,
		.link_timeout = PP_DEFAULT_LINK_TIMEOUT,
		.recover_timeout = SRC_RECOVER_TIMEOUT,
		.want_preempt = true,
		.lfd = -1,
		.fd = { -1, -1 },
		.lock = PTHREAD_MUTEX_INITIALIZER,
	};
	const char *listen_addr = "0.0.0.0:" PP_DEFAULT_PORT, *stats = NULL;
	char bound[128], *end;
	struct stat stt;
	uint64_t v;
	int c, ffd, ret;

	while ((c = getopt_long(argc, argv, "l:p:Nc:Lw:S:BDR:T:C:h", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			listen_addr = optarg;
			break;
		case 'p':
			if (pp_parse_page_size(optarg, &s.page_size)) {
				pp_err("bad --page-size '%s': use 4K or 2M", optarg);
				return PP_EXIT_USAGE;
			}
			break;
		case 'N':
			s.want_preempt = false;
			break;
		case 'c':
			if (pp_parse_size(optarg, &v) || v < 512 || v > (2 << 20) ||
			    (v & (v - 1))) {
				pp_err("bad --chunk '%s': a power of two from 512 to 2M", optarg);
				return PP_EXIT_USAGE;
			}
			s.chunk = v;
			break;
		case 'L':
			s.locality = true;
			break;
		case 'w':
			if (pp_parse_size(optarg, &v) || v > UINT32_MAX) {
				pp_err("bad --notsent-lowat '%s'", optarg);
				return PP_EXIT_USAGE;
			}
			s.notsent_lowat = v;
			break;
		case 'S':
			stats = optarg;
			break;
		case 'B':
			s.no_background = true;
			break;
		case 'D':
			s.no_drain = true;
			break;
		case 'R':
			if (pp_parse_u32(optarg, &s.recover_timeout)) {
				pp_err("bad --recover-timeout '%s': seconds", optarg);
				return PP_EXIT_USAGE;
			}
			break;
		case 'T':
			if (pp_parse_u32(optarg, &s.link_timeout) ||
			    s.link_timeout > UINT32_MAX / 1000) {
				pp_err("bad --link-timeout '%s': seconds", optarg);
				return PP_EXIT_USAGE;
			}
			break;
		case 'C':
			errno = 0;
			s.cookie = strtoull(optarg, &end, 0);
			if (errno || *end || !s.cookie) {
				pp_err("bad --cookie '%s': a non-zero number (0x... for hex)", optarg);
				return PP_EXIT_USAGE;
			}
			break;
		case 'h':
			serve_usage(stdout);
			return PP_EXIT_OK;
		default:
			serve_usage(stderr);
			return PP_EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		pp_err("serve needs exactly one FILE");
		serve_usage(stderr);
		return PP_EXIT_USAGE;
	}
	if (s.chunk > s.page_size)
		s.chunk = s.page_size;
	s.preempt = s.want_preempt;
	s.path = argv[optind];

	ffd = open(s.path, O_RDONLY | O_CLOEXEC);
	if (ffd < 0 || fstat(ffd, &stt)) {
		pp_err("cannot open %s: %s", s.path, strerror(errno));
		return PP_EXIT_FAIL;
	}
	s.size = stt.st_size;
	if (!s.size || s.size % s.page_size) {
		pp_err("%s is %" PRIu64 " bytes, not a non-zero multiple of the page size %u; "
		       "pad it (truncate -s) or pick --page-size 4K",
		       s.path, s.size, s.page_size);
		return PP_EXIT_FAIL;
	}
	s.nr_pages = s.size / s.page_size;
	s.base = mmap(NULL, s.size, PROT_READ, MAP_SHARED, ffd, 0);
	if (s.base == MAP_FAILED) {
		pp_err("cannot map %s: %s", s.path, strerror(errno));
		return PP_EXIT_FAIL;
	}
	close(ffd);
	s.sent = calloc(s.nr_pages, 1);
	s.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!s.sent || s.efd < 0) {
		pp_err("out of memory");
		return PP_EXIT_FAIL;
	}
	while (!s.cookie) {
		if (getrandom(&s.cookie, sizeof(s.cookie), 0) != sizeof(s.cookie))
			s.cookie = pp_now_ns() | 1;
	}

	s.lfd = pp_tcp_listen(listen_addr, bound, sizeof(bound));
	if (s.lfd < 0) {
		pp_err("cannot listen on %s: %s", listen_addr, strerror(-s.lfd));
		return PP_EXIT_FAIL;
	}
	printf("listening on %s\n", bound);
	fflush(stdout);

	ret = src_serve(&s, stats);
	close(s.lfd);
	return ret;
}
