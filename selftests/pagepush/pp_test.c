// SPDX-License-Identifier: GPL-2.0
/*
 * Helpers shared by the pagepush selftests.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <netlink/netlink.h>
#include <netlink/attr.h>
#include <netlink/genl/genl.h>

#include "pp_test.h"

#ifndef NLMSGERR_ATTR_MISS_TYPE
#define NLMSGERR_ATTR_MISS_TYPE 5
#endif

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ull + ts.tv_nsec / 1000000;
}

/* A connected loopback TCP pair. */
int pp_tcp_pair(int *client, int *server)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int lfd, one = 1;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0)
		return -errno;
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) || listen(lfd, 1) ||
	    getsockname(lfd, (struct sockaddr *)&sin, &len))
		goto fail;
	*client = socket(AF_INET, SOCK_STREAM, 0);
	if (*client < 0 || connect(*client, (struct sockaddr *)&sin, sizeof(sin)))
		goto fail;
	*server = accept(lfd, NULL, NULL);
	if (*server < 0)
		goto fail;
	setsockopt(*client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(*server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	close(lfd);
	return 0;
fail:
	close(lfd);
	return -errno;
}

int pp_fake_new(struct pp_fake *f, uint64_t size, uint32_t page_size)
{
	int i, ret;

	memset(f, 0, sizeof(*f));
	for (i = 0; i < PAGEPUSH_NR_CHANNELS; i++)
		f->src[i] = f->dst[i] = -1;
	f->size = size;
	f->page_size = page_size;
	ret = pp_nl_open(&f->nl);
	if (ret)
		return ret;
	ret = pp_nl_new(&f->nl, size, page_size, NULL, &f->info);
	if (ret)
		return ret;
	snprintf(f->dev, sizeof(f->dev), "/dev/%s", f->info.device);
	return 0;
}

int pp_fake_connect(struct pp_fake *f, bool two_channels)
{
	int i, n = two_channels ? 2 : 1, ret;

	for (i = 0; i < n; i++) {
		ret = pp_tcp_pair(&f->dst[i], &f->src[i]);
		if (ret)
			return ret;
	}
	return pp_nl_connect(&f->nl, f->info.index, f->dst[0], f->dst[1], 42);
}

void pp_fake_close(struct pp_fake *f)
{
	int i;

	for (i = 0; i < PAGEPUSH_NR_CHANNELS; i++) {
		if (f->src[i] >= 0)
			close(f->src[i]);
		if (f->dst[i] >= 0)
			close(f->dst[i]);
		f->src[i] = f->dst[i] = -1;
	}
	if (f->nl.sk) {
		pp_nl_del(&f->nl, f->info.index);
		pp_nl_close(&f->nl);
	}
}

int pp_send_frame(int fd, uint8_t type, uint64_t off, uint32_t len,
		  const void *data)
{
	struct pagepush_frame h = {
		.version = PAGEPUSH_WIRE_VERSION,
		.type = type,
		.length = htole32(len),
		.offset = htole64(off),
	};
	struct iovec iov[2] = {
		{ .iov_base = &h, .iov_len = sizeof(h) },
		{ .iov_base = (void *)data, .iov_len = data ? len : 0 },
	};
	size_t total = iov[0].iov_len + iov[1].iov_len;
	ssize_t n = writev(fd, iov, data ? 2 : 1);

	if (n < 0)
		return -errno;
	/* Loopback with room in the buffers: writev() is whole. */
	return (size_t)n == total ? 0 : -EIO;
}

int pp_send_page(int fd, uint64_t off, uint32_t page_size, uint32_t chunk,
		 const void *data)
{
	uint32_t done;
	int ret;

	for (done = 0; done < page_size; done += chunk) {
		ret = pp_send_frame(fd, PAGEPUSH_FRAME_PAGE, off + done, chunk,
				    (const char *)data + done);
		if (ret)
			return ret;
	}
	return 0;
}

/* Page @idx with the test pattern, in chunks of @chunk bytes. */
int pp_send_pattern_page(int fd, uint32_t page_size, uint64_t idx,
			 uint32_t chunk)
{
	void *buf = malloc(page_size);
	int ret;

	if (!buf)
		return -ENOMEM;
	pp_pattern(buf, page_size, idx * page_size);
	ret = pp_send_page(fd, idx * page_size, page_size, chunk, buf);
	free(buf);
	return ret;
}

/*
 * A connected session of @nr_pages pages, its device open (*@fd) and
 * mapped shared (*@mem): what most data-path tests start from.
 */
int pp_fake_map(struct pp_fake *f, uint64_t nr_pages, uint32_t page_size,
		bool two_channels, int *fd, char **mem)
{
	int ret;

	ret = pp_fake_new(f, nr_pages * page_size, page_size);
	if (!ret)
		ret = pp_fake_connect(f, two_channels);
	if (ret)
		return ret;
	*fd = open(f->dev, O_RDWR);
	if (*fd < 0)
		return -errno;
	*mem = mmap(NULL, f->size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	return *mem == MAP_FAILED ? -errno : 0;
}

/* Undo pp_fake_map() and pp_fake_close() the session. */
void pp_fake_unmap(struct pp_fake *f, int fd, char *mem)
{
	if (mem && mem != MAP_FAILED)
		munmap(mem, f->size);
	if (fd >= 0)
		close(fd);
	pp_fake_close(f);
}

/* 1 with a frame, 0 on timeout, negative errno on error or EOF. */
int pp_recv_frame(int fd, struct pagepush_frame *f, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	ssize_t n;
	int ret;

	ret = poll(&pfd, 1, timeout_ms);
	if (ret <= 0)
		return ret < 0 ? -errno : 0;
	n = recv(fd, f, sizeof(*f), MSG_WAITALL);
	if (n == (ssize_t)sizeof(*f))
		return 1;
	return n < 0 ? -errno : -ECONNRESET;
}

int pp_wait_state(struct pp_nl *nl, uint32_t index, uint32_t state,
		  int timeout_ms, struct pp_session_info *out)
{
	uint64_t end = now_ms() + timeout_ms;
	struct pp_session_info info;
	int ret;

	for (;;) {
		ret = pp_nl_get(nl, index, &info);
		if (ret)
			return ret;
		if (out)
			*out = info;
		if (info.state == state)
			return 0;
		if (now_ms() >= end)
			return -ETIMEDOUT;
		usleep(10000);
	}
}

int pp_wait_stat(struct pp_nl *nl, uint32_t index, unsigned int stat,
		 uint64_t min, int timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;
	struct pp_session_info info;
	int ret;

	for (;;) {
		ret = pp_nl_get(nl, index, &info);
		if (ret)
			return ret;
		if (info.stats[stat] >= min)
			return 0;
		if (now_ms() >= end)
			return -ETIMEDOUT;
		usleep(10000);
	}
}

/* Content every test can check: a function of the byte offset. */
static uint64_t pp_mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

void pp_pattern(void *buf, size_t len, uint64_t offset)
{
	uint64_t *p = buf;
	size_t i;

	for (i = 0; i < len / 8; i++)
		p[i] = pp_mix((offset / 8) + i + 1);
}

bool pp_pattern_ok(const void *buf, size_t len, uint64_t offset)
{
	const uint64_t *p = buf;
	size_t i;

	for (i = 0; i < len / 8; i++) {
		if (p[i] != pp_mix((offset / 8) + i + 1))
			return false;
	}
	return true;
}

int pp_write_pattern_file(const char *path, uint64_t size)
{
	static char buf[1 << 20];
	uint64_t off;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0)
		return -errno;
	for (off = 0; off < size; off += sizeof(buf)) {
		size_t n = size - off < sizeof(buf) ? size - off : sizeof(buf);

		pp_pattern(buf, n, off);
		if (write(fd, buf, n) != (ssize_t)n) {
			close(fd);
			return -EIO;
		}
	}
	return close(fd) ? -errno : 0;
}

/* A field (kB) of the smaps entry that contains @addr, in bytes. */
uint64_t pp_smaps_field(const void *addr, const char *field)
{
	unsigned long start, end, target = (unsigned long)addr;
	char line[256];
	bool in = false;
	uint64_t kb = 0;
	size_t flen = strlen(field);
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			in = target >= start && target < end;
			continue;
		}
		if (in && !strncmp(line, field, flen) && line[flen] == ':') {
			kb = strtoull(line + flen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kb * 1024;
}

/* Base pages the module holds (debugfs), or -1 if not exposed. */
long pp_module_pages(void)
{
	FILE *f = fopen("/sys/kernel/debug/pagepush/pages", "r");
	long v = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* A field of /proc/meminfo, in kB, or -1. */
long pp_meminfo_kb(const char *field)
{
	size_t flen = strlen(field);
	char line[128];
	long v = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, field, flen) && line[flen] == ':') {
			v = strtol(line + flen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

/* An unsigned number from the environment (decimal or 0x...), or @def. */
uint64_t pp_env_u64(const char *name, uint64_t def)
{
	const char *v = getenv(name);
	char *end;
	uint64_t n;

	if (!v || !*v)
		return def;
	errno = 0;
	n = strtoull(v, &end, 0);
	if (errno || *end)
		return def;
	return n;
}

/* PP_FUZZ_SEED, or a fresh seed from the clock and the PID. */
uint64_t pp_fuzz_seed(void)
{
	struct pp_rng r;
	struct timespec ts;

	if (getenv("PP_FUZZ_SEED") && *getenv("PP_FUZZ_SEED"))
		return pp_env_u64("PP_FUZZ_SEED", 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	r.s = (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
	r.s ^= (uint64_t)getpid() << 40;
	/* Short enough to type. */
	return pp_rng_next(&r) >> 16;
}

int pp_nl_attach(struct pp_nl *nl, uint8_t cmd, uint32_t index,
		 int precopy_fd, int postcopy_fd, uint64_t cookie)
{
	struct nl_msg *msg = pp_nl_msg(nl, cmd, 0);

	if (!msg)
		return -ENOMEM;
	nla_put_u32(msg, PAGEPUSH_A_INDEX, index);
	nla_put_u32(msg, PAGEPUSH_A_PRECOPY_FD, precopy_fd);
	if (postcopy_fd >= 0)
		nla_put_u32(msg, PAGEPUSH_A_POSTCOPY_FD, postcopy_fd);
	nla_put_u64(msg, PAGEPUSH_A_COOKIE, cookie);
	return pp_nl_send(nl, msg, NULL, NULL);
}

/* The extended-ack attributes that follow an error or DONE message. */
static void pp_nl_parse_ack_tlvs(struct nlmsghdr *nlh, size_t off,
				 struct pp_nl_answer *ans)
{
	struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];
	int len = (int)nlh->nlmsg_len - (int)off;

	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS) || len <= 0)
		return;
	if (nla_parse(tb, NLMSGERR_ATTR_MAX, (struct nlattr *)((char *)nlh + off),
		      len, NULL))
		return;
	if (tb[NLMSGERR_ATTR_MSG])
		snprintf(ans->msg, sizeof(ans->msg), "%s",
			 nla_get_string(tb[NLMSGERR_ATTR_MSG]));
	if (tb[NLMSGERR_ATTR_OFFS] && nla_len(tb[NLMSGERR_ATTR_OFFS]) == 4)
		ans->offs = nla_get_u32(tb[NLMSGERR_ATTR_OFFS]);
	if (tb[NLMSGERR_ATTR_MISS_TYPE] &&
	    nla_len(tb[NLMSGERR_ATTR_MISS_TYPE]) == 4)
		ans->miss_type = nla_get_u32(tb[NLMSGERR_ATTR_MISS_TYPE]);
}

static void pp_nl_parse_answer(struct nlmsghdr *nlh, struct pp_nl_answer *ans)
{
	struct nlattr *tb[PAGEPUSH_A_MAX + 1];
	struct nlmsgerr *e;
	size_t off;

	switch (nlh->nlmsg_type) {
	case NLMSG_ERROR:
		ans->answered = true;
		if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
			return;
		e = NLMSG_DATA(nlh);
		ans->error = e->error;
		off = NLMSG_HDRLEN + sizeof(*e);
		if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
			off += e->msg.nlmsg_len - NLMSG_HDRLEN;
		pp_nl_parse_ack_tlvs(nlh, off, ans);
		return;
	case NLMSG_DONE:
		ans->answered = true;
		if (nlh->nlmsg_len >= NLMSG_LENGTH(sizeof(int)))
			ans->error = *(int *)NLMSG_DATA(nlh);
		pp_nl_parse_ack_tlvs(nlh, NLMSG_LENGTH(sizeof(int)), ans);
		return;
	case NLMSG_NOOP:
	case NLMSG_OVERRUN:
		return;
	}
	ans->replies++;
	if (!genlmsg_parse(nlh, 0, tb, PAGEPUSH_A_MAX, NULL) &&
	    tb[PAGEPUSH_A_INDEX] && nla_len(tb[PAGEPUSH_A_INDEX]) == 4)
		ans->index = nla_get_u32(tb[PAGEPUSH_A_INDEX]);
}

/**
 * pp_nl_raw() - send bytes as they are, wait for the answer
 * @nl: connection (extended acks on, capped)
 * @req: one netlink message, whose sequence number this sets
 * @len: bytes of @req to send (may differ from its nlmsg_len)
 * @ans: what came back
 * @timeout_ms: how long to wait for the end of the answer
 *
 * Nothing is checked or completed: the request goes out as built. The
 * answer ends with an acknowledgement, an error or, for a dump, DONE.
 *
 * Return: 0 with @ans filled, -ETIMEDOUT if the answer did not end in
 * time, or a negative errno of the socket.
 */
int pp_nl_raw(struct pp_nl *nl, void *req, size_t len,
	      struct pp_nl_answer *ans, int timeout_ms)
{
	static uint32_t seq = 0x50500000;
	static char buf[65536];
	struct nlmsghdr *rq = req, *nlh;
	int fd = nl_socket_get_fd(nl->sk);
	uint64_t end = now_ms() + timeout_ms;
	ssize_t n;
	int left;

	memset(ans, 0, sizeof(*ans));
	ans->offs = -1;
	ans->miss_type = -1;
	ans->index = -1;
	rq->nlmsg_seq = ++seq;
	if (send(fd, req, len, 0) < 0)
		return -errno;

	while (!ans->answered) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int64_t wait = (int64_t)end - (int64_t)now_ms();

		if (wait <= 0 || poll(&pfd, 1, (int)wait) <= 0)
			return -ETIMEDOUT;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return -errno;
		}
		left = (int)n;
		for (nlh = (struct nlmsghdr *)buf; NLMSG_OK(nlh, left);
		     nlh = NLMSG_NEXT(nlh, left)) {
			/* Leftovers of an earlier request that timed out. */
			if (nlh->nlmsg_seq != seq)
				continue;
			pp_nl_parse_answer(nlh, ans);
			if (ans->answered)
				break;
		}
	}
	return 0;
}
