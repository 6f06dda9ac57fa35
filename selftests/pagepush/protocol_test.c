// SPDX-License-Identifier: GPL-2.0
/*
 * The destination data path driven by a hand-made source: the test writes
 * frames on loopback TCP connections handed to the kernel and reads the
 * return path. Holding and releasing faults, one request per page, the
 * get_user_pages() paths, zero and duplicate pages, completion, a source
 * that vanishes, and every kind of bad frame.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <endian.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "../kselftest_harness.h"
#include "pp_test.h"

#define NR_PAGES	8
#define WAIT_MS		10000

static void *page_data(uint32_t page_size, uint64_t idx)
{
	void *buf = malloc(page_size);

	if (buf)
		pp_pattern(buf, page_size, idx * page_size);
	return buf;
}

/* In a forked child: let go of the source's ends, so that closing them
 * in the parent closes the connections.
 */
static void drop_source_fds(struct pp_fake *f)
{
	int i;

	for (i = 0; i < PAGEPUSH_NR_CHANNELS; i++) {
		if (f->src[i] >= 0)
			close(f->src[i]);
		f->src[i] = -1;
	}
}

/* Wait for the next REQUEST; returns its page index or -1. */
static int64_t next_request(int fd, uint32_t page_size, int timeout_ms)
{
	struct pagepush_frame f;

	if (pp_recv_frame(fd, &f, timeout_ms) != 1 ||
	    f.type != PAGEPUSH_FRAME_REQUEST)
		return -1;
	return le64toh(f.offset) / page_size;
}

FIXTURE(src)
{
	struct pp_fake f;
	int fd;
	char *mem;
};

FIXTURE_VARIANT(src)
{
	uint32_t page_size;
	bool two;
};

FIXTURE_VARIANT_ADD(src, page_2m_one_channel) { .page_size = SZ_2M };
FIXTURE_VARIANT_ADD(src, page_2m_two_channels) { .page_size = SZ_2M, .two = true };
FIXTURE_VARIANT_ADD(src, page_4k_two_channels) { .page_size = SZ_4K, .two = true };

FIXTURE_SETUP(src)
{
	ASSERT_EQ(0, pp_fake_map(&self->f, NR_PAGES, variant->page_size,
				 variant->two, &self->fd, &self->mem))
		TH_LOG("%s", pp_nl_strerror(&self->f.nl));
}

FIXTURE_TEARDOWN(src)
{
	pp_fake_unmap(&self->f, self->fd, self->mem);
}

struct toucher {
	const char *addr;
	uint32_t len;
	uint64_t offset;
	bool ok;
	pthread_t tid;
};

static void *touch_thread(void *arg)
{
	struct toucher *t = arg;

	t->ok = pp_pattern_ok(t->addr, t->len, t->offset);
	return NULL;
}

static int stat_of(struct pp_fake *f, unsigned int stat, uint64_t *v)
{
	struct pp_session_info info;
	int ret = pp_nl_get(&f->nl, f->info.index, &info);

	*v = info.stats[stat];
	return ret;
}

TEST_F(src, held_until_page_arrives_one_request)
{
	struct pp_session_info info;
	struct toucher t[8];
	uint32_t ps = variant->page_size;
	unsigned int ch = variant->two ? PAGEPUSH_CHANNEL_POSTCOPY :
					 PAGEPUSH_CHANNEL_PRECOPY;
	uint64_t held = 0;
	int i;

	for (i = 0; i < 8; i++) {
		t[i].addr = self->mem + 5 * ps + i * (ps / 8);
		t[i].len = ps / 8;
		t[i].offset = 5 * ps + i * (ps / 8);
		ASSERT_EQ(0, pthread_create(&t[i].tid, NULL, touch_thread, &t[i]));
	}
	ASSERT_EQ(0, pp_wait_stat(&self->f.nl, self->f.info.index,
				  PAGEPUSH_STAT_FAULTS_HELD_NOW, 8, WAIT_MS));
	ASSERT_EQ(5, next_request(self->f.src[0], ps, WAIT_MS));
	/* Eight tasks wait, one request went out. */
	EXPECT_EQ(-1, next_request(self->f.src[0], ps, 300));

	ASSERT_EQ(0, pp_send_pattern_page(self->f.src[ch], ps, 5, ps));
	for (i = 0; i < 8; i++) {
		pthread_join(t[i].tid, NULL);
		EXPECT_TRUE(t[i].ok);
	}
	ASSERT_EQ(0, pp_nl_get(&self->f.nl, self->f.info.index, &info));
	EXPECT_EQ(1u, info.stats[PAGEPUSH_STAT_REQUESTS_SENT]);
	EXPECT_EQ(8u, info.stats[PAGEPUSH_STAT_FAULTS_HELD_TOTAL]);
	EXPECT_EQ(0u, info.stats[PAGEPUSH_STAT_FAULTS_HELD_NOW]);
	EXPECT_EQ(1u, info.stats[PAGEPUSH_STAT_PAGES_PRESENT]);
	EXPECT_EQ(1u, info.chan[ch][PAGEPUSH_CHAN_PAGES]);
	EXPECT_EQ(8u, info.chan[ch][PAGEPUSH_CHAN_FAULT_PAGES]);
	for (i = 0; i < PAGEPUSH_LATENCY_BUCKETS; i++)
		held += info.latency[i];
	EXPECT_EQ(8u, held);
}

TEST_F(src, complete_after_every_page)
{
	struct pp_session_info info;
	struct pagepush_frame f;
	uint32_t ps = variant->page_size;
	uint64_t i;

	/* Chunks of 4 KiB on precopy, as the real source sends them. */
	for (i = 0; i < NR_PAGES; i++)
		ASSERT_EQ(0, pp_send_pattern_page(self->f.src[0], ps, i, SZ_4K));
	ASSERT_EQ(0, pp_wait_state(&self->f.nl, self->f.info.index,
				   PAGEPUSH_STATE_COMPLETE, WAIT_MS, &info));
	EXPECT_TRUE(pp_pattern_ok(self->mem, NR_PAGES * ps, 0));
	EXPECT_EQ((uint64_t)NR_PAGES, info.chan[0][PAGEPUSH_CHAN_PAGES]);
	EXPECT_EQ((uint64_t)NR_PAGES * ps, info.chan[0][PAGEPUSH_CHAN_BYTES]);
	/* COMPLETE on the return path, then the connection closes. */
	ASSERT_EQ(1, pp_recv_frame(self->f.src[0], &f, WAIT_MS));
	EXPECT_EQ(PAGEPUSH_FRAME_COMPLETE, f.type);
	EXPECT_EQ(-ECONNRESET, pp_recv_frame(self->f.src[0], &f, WAIT_MS));
	if (ps == SZ_2M) {
		EXPECT_EQ((uint64_t)NR_PAGES * ps,
			  pp_smaps_field(self->mem, "FilePmdMapped"));
	}
}

TEST_F(src, zero_and_duplicate_pages)
{
	struct pp_session_info info;
	uint32_t ps = variant->page_size;
	char *zero = calloc(1, ps);
	uint64_t i;

	ASSERT_NE(NULL, zero);
	ASSERT_EQ(0, pp_send_frame(self->f.src[0], PAGEPUSH_FRAME_ZERO, 0, 2 * ps, NULL));
	ASSERT_EQ(0, pp_send_pattern_page(self->f.src[0], ps, 2, SZ_4K));
	ASSERT_EQ(0, pp_send_pattern_page(self->f.src[0], ps, 2, SZ_4K));
	ASSERT_EQ(0, pp_send_frame(self->f.src[0], PAGEPUSH_FRAME_ZERO, ps, ps, NULL));
	for (i = 3; i < NR_PAGES; i++)
		ASSERT_EQ(0, pp_send_pattern_page(self->f.src[0], ps, i, ps));
	ASSERT_EQ(0, pp_wait_state(&self->f.nl, self->f.info.index,
				   PAGEPUSH_STATE_COMPLETE, WAIT_MS, &info));
	EXPECT_EQ(0, memcmp(self->mem, zero, ps));
	EXPECT_EQ(0, memcmp(self->mem + ps, zero, ps));
	EXPECT_TRUE(pp_pattern_ok(self->mem + 2 * ps, (NR_PAGES - 2) * ps, 2 * ps));
	EXPECT_EQ(2u, info.chan[0][PAGEPUSH_CHAN_ZERO_PAGES]);
	EXPECT_EQ(2u, info.chan[0][PAGEPUSH_CHAN_DUPLICATES]);
	/* Zero pages are writable memory of their own. */
	self->mem[10] = 7;
	EXPECT_EQ(7, self->mem[10]);
	free(zero);
}

TEST_F(src, sigkill_releases_held_task)
{
	uint64_t v;
	pid_t pid;
	int status;

	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		drop_source_fds(&self->f);
		(void)*(volatile char *)(self->mem + 3 * variant->page_size);
		_exit(0);
	}
	ASSERT_EQ(0, pp_wait_stat(&self->f.nl, self->f.info.index,
				  PAGEPUSH_STAT_FAULTS_HELD_NOW, 1, WAIT_MS));
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFSIGNALED(status));
	EXPECT_EQ(SIGKILL, WTERMSIG(status));
	ASSERT_EQ(0, stat_of(&self->f, PAGEPUSH_STAT_FAULTS_HELD_NOW, &v));
	EXPECT_EQ(0u, v);
}

static void *hold_thread(void *arg)
{
	(void)*(volatile char *)arg;
	return NULL;
}

TEST_F(src, munmap_and_exit_while_held)
{
	uint64_t v;
	pid_t pid;
	int status;

	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		pthread_t tid;
		struct pp_nl nl;

		drop_source_fds(&self->f);
		pthread_create(&tid, NULL, hold_thread, self->mem + variant->page_size);
		pp_nl_open(&nl);
		pp_wait_stat(&nl, self->f.info.index,
			     PAGEPUSH_STAT_FAULTS_HELD_NOW, 1, WAIT_MS);
		/* mmap_lock is not held by the waiter: this goes through. */
		if (munmap(self->mem, self->f.size))
			_exit(1);
		_exit(2);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(2, WEXITSTATUS(status));
	ASSERT_EQ(0, stat_of(&self->f, PAGEPUSH_STAT_FAULTS_HELD_NOW, &v));
	EXPECT_EQ(0u, v);
	/* The session still works for others. */
	ASSERT_EQ(1, next_request(self->f.src[0], variant->page_size, WAIT_MS));
	ASSERT_EQ(0, pp_send_pattern_page(self->f.src[0], variant->page_size, 1,
				       variant->page_size));
	EXPECT_TRUE(pp_pattern_ok(self->mem + variant->page_size,
				  variant->page_size, variant->page_size));
}

struct gup_job {
	char *mem;
	uint32_t len;
	int kind;
	char *buf;
	ssize_t ret;
	int err;
	const char *loopdev;
};

enum { GUP_VM_READV, GUP_PROC_MEM, GUP_ODIRECT };

static void *gup_thread(void *arg)
{
	struct gup_job *j = arg;
	struct iovec local = { .iov_base = j->buf, .iov_len = j->len };
	struct iovec remote = { .iov_base = j->mem, .iov_len = j->len };
	int fd;

	switch (j->kind) {
	case GUP_VM_READV:
		j->ret = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
		break;
	case GUP_PROC_MEM:
		fd = open("/proc/self/mem", O_RDONLY);
		j->ret = pread(fd, j->buf, j->len, (off_t)(unsigned long)j->mem);
		close(fd);
		break;
	case GUP_ODIRECT:
		/* Read from a disk straight into the absent page. */
		fd = open(j->loopdev, O_RDONLY | O_DIRECT);
		j->ret = fd < 0 ? -1 : pread(fd, j->mem, j->len, 0);
		if (fd >= 0)
			close(fd);
		break;
	}
	j->err = errno;
	return NULL;
}

FIXTURE(gup)
{
	struct pp_fake f;
	int fd;
	char *mem;
	char loopdev[64];
	char backing[64];
};

FIXTURE_VARIANT(gup)
{
	int kind;
};

FIXTURE_VARIANT_ADD(gup, process_vm_readv) { .kind = GUP_VM_READV };
FIXTURE_VARIANT_ADD(gup, proc_pid_mem) { .kind = GUP_PROC_MEM };
FIXTURE_VARIANT_ADD(gup, o_direct_read) { .kind = GUP_ODIRECT };

FIXTURE_SETUP(gup)
{
	self->loopdev[0] = '\0';
	ASSERT_EQ(0, pp_fake_new(&self->f, NR_PAGES * SZ_2M, SZ_2M));
	ASSERT_EQ(0, pp_fake_connect(&self->f, true));
	self->fd = open(self->f.dev, O_RDWR);
	ASSERT_GE(self->fd, 0);
	self->mem = mmap(NULL, self->f.size, PROT_READ | PROT_WRITE,
			 MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, self->mem);
	if (variant->kind == GUP_ODIRECT) {
		char cmd[256];
		FILE *p;

		snprintf(self->backing, sizeof(self->backing), "/tmp/pp-gup-%d", getpid());
		ASSERT_EQ(0, pp_write_pattern_file(self->backing, 1 << 20));
		snprintf(cmd, sizeof(cmd), "modprobe loop 2>/dev/null; losetup -f --show %s 2>/dev/null",
			 self->backing);
		p = popen(cmd, "r");
		if (!p || !fgets(self->loopdev, sizeof(self->loopdev), p))
			self->loopdev[0] = '\0';
		if (p)
			pclose(p);
		self->loopdev[strcspn(self->loopdev, "\n")] = '\0';
		if (!self->loopdev[0])
			SKIP(return, "no loop device for an O_DIRECT source");
	}
}

FIXTURE_TEARDOWN(gup)
{
	if (self->loopdev[0]) {
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "losetup -d %s", self->loopdev);
		if (system(cmd))
			TH_LOG("losetup -d failed");
		unlink(self->backing);
	}
	munmap(self->mem, self->f.size);
	close(self->fd);
	pp_fake_close(&self->f);
}

TEST_F(gup, held_until_page_arrives)
{
	struct gup_job j = {
		.mem = self->mem + 6 * SZ_2M + 8192,
		.len = 65536,
		.kind = variant->kind,
		.loopdev = self->loopdev,
	};
	/*
	 * Ready before the reader starts: /proc/PID/mem waits with this
	 * process's mmap_lock held, so allocating memory would wait for it.
	 */
	void *page = page_data(SZ_2M, 6);
	pthread_t tid;

	j.buf = malloc(j.len);
	ASSERT_NE(NULL, j.buf);
	ASSERT_NE(NULL, page);
	ASSERT_EQ(0, pthread_create(&tid, NULL, gup_thread, &j));
	ASSERT_EQ(6, next_request(self->f.src[0], SZ_2M, WAIT_MS));
	ASSERT_EQ(0, pp_send_page(self->f.src[PAGEPUSH_CHANNEL_POSTCOPY],
				  6 * SZ_2M, SZ_2M, SZ_2M, page));
	free(page);
	pthread_join(tid, NULL);
	ASSERT_EQ((ssize_t)j.len, j.ret) TH_LOG("errno %d", j.err);
	if (variant->kind == GUP_ODIRECT) {
		EXPECT_TRUE(pp_pattern_ok(j.mem, j.len, 0));
	} else {
		EXPECT_TRUE(pp_pattern_ok(j.buf, j.len, 6 * SZ_2M + 8192));
	}
	free(j.buf);
}

TEST_F(src, source_vanishes_session_pauses)
{
	struct pp_session_info info;
	uint32_t ps = variant->page_size;
	pid_t pid;
	int status, i;

	ASSERT_EQ(0, pp_send_pattern_page(self->f.src[0], ps, 0, ps));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		drop_source_fds(&self->f);
		(void)*(volatile char *)(self->mem + 4 * ps);
		_exit(0);
	}
	ASSERT_EQ(0, pp_wait_stat(&self->f.nl, self->f.info.index,
				  PAGEPUSH_STAT_FAULTS_HELD_NOW, 1, WAIT_MS));
	for (i = 0; i < PAGEPUSH_NR_CHANNELS; i++) {
		if (self->f.src[i] >= 0) {
			close(self->f.src[i]);
			self->f.src[i] = -1;
		}
	}
	/* Paused, not failed: the task stays held (recover_test resumes). */
	ASSERT_EQ(0, pp_wait_state(&self->f.nl, self->f.info.index,
				   PAGEPUSH_STATE_PAUSED, WAIT_MS, &info));
	EXPECT_NE(NULL, strstr(info.reason, "connection lost")) TH_LOG("%s", info.reason);
	usleep(200000);
	EXPECT_EQ(0, waitpid(pid, &status, WNOHANG));
	/* Given up: now SIGBUS. */
	ASSERT_EQ(0, pp_nl_del(&self->f.nl, self->f.info.index));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFSIGNALED(status));
	EXPECT_EQ(SIGBUS, WTERMSIG(status));
	/* What arrived stays usable. */
	EXPECT_TRUE(pp_pattern_ok(self->mem, ps, 0));
}

TEST_F(src, eos_with_pages_missing_fails)
{
	struct pp_session_info info;
	int i;

	ASSERT_EQ(0, pp_send_pattern_page(self->f.src[0], variant->page_size, 0,
				       variant->page_size));
	for (i = 0; i < PAGEPUSH_NR_CHANNELS; i++) {
		if (self->f.src[i] >= 0)
			ASSERT_EQ(0, pp_send_frame(self->f.src[i], PAGEPUSH_FRAME_EOS,
						   0, 0, NULL));
	}
	ASSERT_EQ(0, pp_wait_state(&self->f.nl, self->f.info.index,
				   PAGEPUSH_STATE_FAILED, WAIT_MS, &info));
	EXPECT_NE(NULL, strstr(info.reason, "7 pages missing")) TH_LOG("%s", info.reason);
}

/* Bad frames: each fails the session with a reason naming the fault. */
FIXTURE(bad)
{
	struct pp_fake f;
	int fd;
	char *mem;
};

FIXTURE_VARIANT(bad)
{
	const char *reason;
	int kind;
};

enum {
	BAD_OFFSET, BAD_LENGTH, BAD_CROSS, BAD_TYPE, BAD_VERSION, BAD_FLAGS,
	BAD_ORDER, BAD_MIDPAGE_START, BAD_NEW_BEFORE_DONE, BAD_SPLIT_BRAIN,
	BAD_ZERO_UNALIGNED, BAD_ZERO_MIDPAGE, BAD_AFTER_EOS, BAD_EOS_MIDPAGE,
	BAD_REQUEST_FROM_SOURCE, BAD_DISCARD, BAD_EMPTY,
};

FIXTURE_VARIANT_ADD(bad, offset_outside_region) { .kind = BAD_OFFSET, .reason = "outside the region" };
FIXTURE_VARIANT_ADD(bad, length_outside_region) { .kind = BAD_LENGTH, .reason = "outside the region" };
FIXTURE_VARIANT_ADD(bad, length_past_page) { .kind = BAD_CROSS, .reason = "crosses the end of page" };
FIXTURE_VARIANT_ADD(bad, unknown_type) { .kind = BAD_TYPE, .reason = "unexpected frame type 77" };
FIXTURE_VARIANT_ADD(bad, bad_version) { .kind = BAD_VERSION, .reason = "bad frame header" };
FIXTURE_VARIANT_ADD(bad, bad_flags) { .kind = BAD_FLAGS, .reason = "bad frame header" };
FIXTURE_VARIANT_ADD(bad, chunk_out_of_order) { .kind = BAD_ORDER, .reason = "out of order" };
FIXTURE_VARIANT_ADD(bad, chunk_not_at_page_start) { .kind = BAD_MIDPAGE_START, .reason = "does not start page" };
FIXTURE_VARIANT_ADD(bad, new_page_before_complete) { .kind = BAD_NEW_BEFORE_DONE, .reason = "before page 1 was complete" };
FIXTURE_VARIANT_ADD(bad, split_brain) { .kind = BAD_SPLIT_BRAIN, .reason = "split brain" };
FIXTURE_VARIANT_ADD(bad, zero_not_whole_pages) { .kind = BAD_ZERO_UNALIGNED, .reason = "not whole pages" };
FIXTURE_VARIANT_ADD(bad, zero_inside_partial_page) { .kind = BAD_ZERO_MIDPAGE, .reason = "ZERO frame" };
FIXTURE_VARIANT_ADD(bad, frame_after_eos) { .kind = BAD_AFTER_EOS, .reason = "after EOS" };
FIXTURE_VARIANT_ADD(bad, eos_inside_page) { .kind = BAD_EOS_MIDPAGE, .reason = "EOS" };
FIXTURE_VARIANT_ADD(bad, request_from_source) { .kind = BAD_REQUEST_FROM_SOURCE, .reason = "unexpected frame type 5" };
FIXTURE_VARIANT_ADD(bad, discard_reserved) { .kind = BAD_DISCARD, .reason = "DISCARD" };
FIXTURE_VARIANT_ADD(bad, empty_page_frame) { .kind = BAD_EMPTY, .reason = "empty" };

FIXTURE_SETUP(bad)
{
	ASSERT_EQ(0, pp_fake_new(&self->f, NR_PAGES * SZ_2M, SZ_2M));
	ASSERT_EQ(0, pp_fake_connect(&self->f, true));
	self->fd = open(self->f.dev, O_RDWR);
	ASSERT_GE(self->fd, 0);
	self->mem = mmap(NULL, self->f.size, PROT_READ | PROT_WRITE,
			 MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, self->mem);
}

FIXTURE_TEARDOWN(bad)
{
	munmap(self->mem, self->f.size);
	close(self->fd);
	pp_fake_close(&self->f);
}

static int send_raw(int fd, uint8_t version, uint8_t type, uint16_t flags,
		    uint64_t off, uint32_t len)
{
	struct pagepush_frame h = {
		.version = version,
		.type = type,
		.flags = htole16(flags),
		.length = htole32(len),
		.offset = htole64(off),
	};

	return write(fd, &h, sizeof(h)) == sizeof(h) ? 0 : -EIO;
}

TEST_F(bad, session_fails_with_reason)
{
	int pre = self->f.src[PAGEPUSH_CHANNEL_PRECOPY];
	int post = self->f.src[PAGEPUSH_CHANNEL_POSTCOPY];
	struct pp_session_info info;
	char *buf = page_data(SZ_2M, 1);
	pid_t pid;
	int status;

	ASSERT_NE(NULL, buf);
	/* A task waits on page 1 all along: it must get SIGBUS. */
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		drop_source_fds(&self->f);
		(void)*(volatile char *)(self->mem + SZ_2M + 100);
		_exit(0);
	}
	ASSERT_EQ(0, pp_wait_stat(&self->f.nl, self->f.info.index,
				  PAGEPUSH_STAT_FAULTS_HELD_NOW, 1, WAIT_MS));

	switch (variant->kind) {
	case BAD_OFFSET:
		send_raw(pre, 1, PAGEPUSH_FRAME_PAGE, 0, NR_PAGES * SZ_2M, 4096);
		break;
	case BAD_LENGTH:
		send_raw(pre, 1, PAGEPUSH_FRAME_PAGE, 0, (NR_PAGES - 1) * SZ_2M + 4096,
			 0xfffff000);
		break;
	case BAD_CROSS:
		send_raw(pre, 1, PAGEPUSH_FRAME_PAGE, 0, SZ_2M - 4096, 8192);
		break;
	case BAD_TYPE:
		send_raw(pre, 1, 77, 0, 0, 0);
		break;
	case BAD_VERSION:
		send_raw(pre, 2, PAGEPUSH_FRAME_PAGE, 0, 0, 4096);
		break;
	case BAD_FLAGS:
		send_raw(pre, 1, PAGEPUSH_FRAME_PAGE, 1, 0, 4096);
		break;
	case BAD_ORDER:
		pp_send_frame(pre, PAGEPUSH_FRAME_PAGE, SZ_2M, 4096, buf);
		pp_send_frame(pre, PAGEPUSH_FRAME_PAGE, SZ_2M + 8192, 4096, buf);
		break;
	case BAD_MIDPAGE_START:
		pp_send_frame(pre, PAGEPUSH_FRAME_PAGE, SZ_2M + 4096, 4096, buf);
		break;
	case BAD_NEW_BEFORE_DONE:
		pp_send_frame(pre, PAGEPUSH_FRAME_PAGE, SZ_2M, 4096, buf);
		pp_send_frame(pre, PAGEPUSH_FRAME_PAGE, 3 * SZ_2M, 4096, buf);
		break;
	case BAD_SPLIT_BRAIN:
		/* Page 1 half on precopy, then on postcopy. */
		pp_send_frame(pre, PAGEPUSH_FRAME_PAGE, SZ_2M, SZ_2M / 2, buf);
		ASSERT_EQ(0, pp_wait_stat(&self->f.nl, self->f.info.index,
					  PAGEPUSH_STAT_PAGES_PRESENT, 0, WAIT_MS));
		usleep(200000);
		pp_send_frame(post, PAGEPUSH_FRAME_PAGE, SZ_2M, SZ_2M, buf);
		break;
	case BAD_ZERO_UNALIGNED:
		send_raw(pre, 1, PAGEPUSH_FRAME_ZERO, 0, 4096, SZ_2M);
		break;
	case BAD_ZERO_MIDPAGE:
		pp_send_frame(pre, PAGEPUSH_FRAME_PAGE, SZ_2M, 4096, buf);
		send_raw(pre, 1, PAGEPUSH_FRAME_ZERO, 0, 0, SZ_2M);
		break;
	case BAD_AFTER_EOS:
		send_raw(post, 1, PAGEPUSH_FRAME_EOS, 0, 0, 0);
		send_raw(post, 1, PAGEPUSH_FRAME_ZERO, 0, 0, SZ_2M);
		break;
	case BAD_EOS_MIDPAGE:
		pp_send_frame(pre, PAGEPUSH_FRAME_PAGE, SZ_2M, 4096, buf);
		send_raw(pre, 1, PAGEPUSH_FRAME_EOS, 0, 0, 0);
		break;
	case BAD_REQUEST_FROM_SOURCE:
		send_raw(pre, 1, PAGEPUSH_FRAME_REQUEST, 0, 0, SZ_2M);
		break;
	case BAD_DISCARD:
		send_raw(pre, 1, PAGEPUSH_FRAME_DISCARD, 0, 0, SZ_2M);
		break;
	case BAD_EMPTY:
		send_raw(pre, 1, PAGEPUSH_FRAME_PAGE, 0, 0, 0);
		break;
	}

	ASSERT_EQ(0, pp_wait_state(&self->f.nl, self->f.info.index,
				   PAGEPUSH_STATE_FAILED, WAIT_MS, &info))
		TH_LOG("state %u", info.state);
	EXPECT_NE(NULL, strstr(info.reason, variant->reason))
		TH_LOG("reason '%s' lacks '%s'", info.reason, variant->reason);
	if (variant->kind == BAD_SPLIT_BRAIN) {
		EXPECT_EQ(1u, info.stats[PAGEPUSH_STAT_SPLIT_BRAIN]);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFSIGNALED(status));
	EXPECT_EQ(SIGBUS, WTERMSIG(status));
	/* Nothing became visible: no page is present. */
	EXPECT_EQ(0u, info.stats[PAGEPUSH_STAT_PAGES_PRESENT]);
	free(buf);
}

static long meminfo_kb(const char *field)
{
	char line[128];
	long v = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	while (f && fgets(line, sizeof(line), f)) {
		if (!strncmp(line, field, strlen(field)) && line[strlen(field)] == ':')
			v = strtol(line + strlen(field) + 1, NULL, 10);
	}
	if (f)
		fclose(f);
	return v;
}

/* A complete session, mapped and deleted: its memory goes back. */
TEST(memory_returns_after_delete)
{
	const uint64_t pages = 32, size = pages * SZ_2M;
	long base = pp_module_pages(), free0, free1;
	struct pp_session_info info;
	struct pp_fake f;
	char *mem;
	uint64_t i;
	int fd;

	if (base < 0)
		SKIP(return, "no /sys/kernel/debug/pagepush/pages");
	free0 = meminfo_kb("MemFree");
	ASSERT_EQ(0, pp_fake_new(&f, size, SZ_2M));
	ASSERT_EQ(0, pp_fake_connect(&f, true));
	for (i = 0; i < pages; i++)
		ASSERT_EQ(0, pp_send_pattern_page(f.src[i & 1], SZ_2M, i, SZ_2M));
	ASSERT_EQ(0, pp_wait_state(&f.nl, f.info.index, PAGEPUSH_STATE_COMPLETE,
				   WAIT_MS, &info));
	/* The source closes after COMPLETE; the teardown then drops any page
	 * the receive threads held beyond the session's own.
	 */
	for (i = 0; i < PAGEPUSH_NR_CHANNELS; i++) {
		close(f.src[i]);
		f.src[i] = -1;
	}
	for (i = 0; i < 500 && pp_module_pages() != base + (long)(size / 4096); i++)
		usleep(10000);
	EXPECT_EQ(base + (long)(size / 4096), pp_module_pages());
	fd = open(f.dev, O_RDWR);
	ASSERT_GE(fd, 0);
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, mem);
	EXPECT_TRUE(pp_pattern_ok(mem, size, 0));

	/* Deleted while mapped: still readable, freed with the last user. */
	ASSERT_EQ(0, pp_nl_del(&f.nl, f.info.index));
	EXPECT_TRUE(pp_pattern_ok(mem + size - SZ_2M, SZ_2M, size - SZ_2M));
	EXPECT_EQ(base + (long)(size / 4096), pp_module_pages());
	munmap(mem, size);
	close(fd);
	EXPECT_EQ(base, pp_module_pages());
	free1 = meminfo_kb("MemFree");
	/* Within 16 MiB of where it started (page cache, slabs move too). */
	EXPECT_LT(free0 - free1, 16 * 1024) TH_LOG("MemFree %ld -> %ld kB", free0, free1);
	pp_nl_close(&f.nl);
	f.nl.sk = NULL;
	pp_fake_close(&f);
}

static int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_TRUNC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	close(fd);
	return n == (ssize_t)strlen(val) ? 0 : -EIO;
}

static char *read_all(const char *path)
{
	size_t cap = 1 << 20, len = 0;
	char *buf = malloc(cap + 1);
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (!buf || fd < 0) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	while (len < cap && (n = read(fd, buf + len, cap - len)) > 0)
		len += n;
	buf[len] = '\0';
	close(fd);
	return buf;
}

/* The tracepoints tell a held fault's story, event by event. */
TEST(tracepoints)
{
	const char *tr = "/sys/kernel/tracing";
	char path[128], *trace, want[128];
	struct pp_session_info info;
	struct pp_fake f;
	struct toucher t;
	char *mem;
	int fd;

	snprintf(path, sizeof(path), "%s/events/pagepush/enable", tr);
	if (access(path, W_OK)) {
		tr = "/sys/kernel/debug/tracing";
		snprintf(path, sizeof(path), "%s/events/pagepush/enable", tr);
		if (access(path, W_OK))
			SKIP(return, "no tracefs with pagepush events");
	}
	ASSERT_EQ(0, write_file(path, "1"));
	snprintf(path, sizeof(path), "%s/trace", tr);
	ASSERT_EQ(0, write_file(path, ""));

	ASSERT_EQ(0, pp_fake_new(&f, NR_PAGES * SZ_2M, SZ_2M));
	ASSERT_EQ(0, pp_fake_connect(&f, true));
	fd = open(f.dev, O_RDWR);
	ASSERT_GE(fd, 0);
	mem = mmap(NULL, f.size, PROT_READ, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, mem);
	t.addr = mem + 2 * SZ_2M;
	t.len = 4096;
	t.offset = 2 * SZ_2M;
	ASSERT_EQ(0, pthread_create(&t.tid, NULL, touch_thread, &t));
	ASSERT_EQ(2, next_request(f.src[0], SZ_2M, WAIT_MS));
	ASSERT_EQ(0, pp_send_pattern_page(f.src[1], SZ_2M, 2, SZ_2M));
	pthread_join(t.tid, NULL);
	EXPECT_TRUE(t.ok);
	send_raw(f.src[0], 1, 77, 0, 0, 0);
	ASSERT_EQ(0, pp_wait_state(&f.nl, f.info.index, PAGEPUSH_STATE_FAILED,
				   WAIT_MS, &info));

	snprintf(path, sizeof(path), "%s/events/pagepush/enable", tr);
	write_file(path, "0");
	snprintf(path, sizeof(path), "%s/trace", tr);
	trace = read_all(path);
	ASSERT_NE(NULL, trace);
	snprintf(want, sizeof(want), "pagepush_state: session=%u new -> connected", f.info.index);
	EXPECT_NE(NULL, strstr(trace, want)) TH_LOG("no '%s'", want);
	snprintf(want, sizeof(want), "pagepush_fault_hold: session=%u page=2 ", f.info.index);
	EXPECT_NE(NULL, strstr(trace, want)) TH_LOG("no '%s'", want);
	snprintf(want, sizeof(want), "pagepush_request_sent: session=%u page=2", f.info.index);
	EXPECT_NE(NULL, strstr(trace, want)) TH_LOG("no '%s'", want);
	snprintf(want, sizeof(want), "pagepush_chunk: session=%u channel=postcopy page=2 offset=0 len=2097152",
		 f.info.index);
	EXPECT_NE(NULL, strstr(trace, want)) TH_LOG("no '%s'", want);
	snprintf(want, sizeof(want), "pagepush_page_placed: session=%u channel=postcopy page=2 zero=0",
		 f.info.index);
	EXPECT_NE(NULL, strstr(trace, want)) TH_LOG("no '%s'", want);
	snprintf(want, sizeof(want), "pagepush_fault_release: session=%u page=2 ", f.info.index);
	EXPECT_NE(NULL, strstr(trace, want)) TH_LOG("no '%s'", want);
	snprintf(want, sizeof(want), "pagepush_protocol_error: session=%u reason=precopy: unexpected frame type 77",
		 f.info.index);
	EXPECT_NE(NULL, strstr(trace, want)) TH_LOG("no '%s'", want);
	snprintf(want, sizeof(want), "pagepush_state: session=%u connected -> failed", f.info.index);
	EXPECT_NE(NULL, strstr(trace, want)) TH_LOG("no '%s'", want);
	free(trace);
	munmap(mem, f.size);
	close(fd);
	pp_fake_close(&f);
}

TEST_HARNESS_MAIN
