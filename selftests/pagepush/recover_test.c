// SPDX-License-Identifier: GPL-2.0
/*
 * Recovery in the kernel, with the test as the source: a lost connection
 * pauses the session (held tasks stay held, no SIGBUS), RECOVER hands it
 * new sockets, the return path then says which pages are present
 * (PRESENT frames, RESUME) before held tasks ask again, and the session
 * completes. Also: what RECOVER refuses, the pause timeout, and ABORT
 * when the destination gives up.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "../kselftest_harness.h"
#include "pp_test.h"

#define NR_PAGES	12
#define WAIT_MS		10000
#define COOKIE		42	/* what pp_fake_connect() hands over */

static void close_fds(int *fds)
{
	int i;

	for (i = 0; i < PAGEPUSH_NR_CHANNELS; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

/*
 * A child that touches page @idx, checks its content and exits 0 (1 if
 * the content is wrong). It lets go of the source's ends first, so that
 * closing them in the parent closes the connections.
 */
static pid_t touch_child(struct pp_fake *f, char *mem, uint64_t idx)
{
	pid_t pid = fork();

	if (pid)
		return pid;
	close_fds(f->src);
	_exit(pp_pattern_ok(mem + idx * f->page_size, f->page_size,
			    idx * f->page_size) ? 0 : 1);
}

/* Still running after @ms? */
static bool alive_after(pid_t pid, int ms)
{
	int status;

	usleep(ms * 1000);
	return waitpid(pid, &status, WNOHANG) == 0;
}

static int recv_frame_of(int fd, uint8_t type, struct pagepush_frame *f)
{
	int ret = pp_recv_frame(fd, f, WAIT_MS);

	if (ret != 1)
		return ret ? ret : -ETIMEDOUT;
	return f->type == type ? 0 : -EPROTO;
}

FIXTURE(rec)
{
	struct pp_fake f;
	int fd;
	char *mem;
};

FIXTURE_VARIANT(rec)
{
	uint32_t page_size;
	bool two;
};

FIXTURE_VARIANT_ADD(rec, page_2m_one_channel) { .page_size = SZ_2M };
FIXTURE_VARIANT_ADD(rec, page_2m_two_channels) { .page_size = SZ_2M, .two = true };
FIXTURE_VARIANT_ADD(rec, page_4k_two_channels) { .page_size = SZ_4K, .two = true };

FIXTURE_SETUP(rec)
{
	ASSERT_EQ(0, pp_fake_map(&self->f, NR_PAGES, variant->page_size,
				 variant->two, &self->fd, &self->mem))
		TH_LOG("%s", pp_nl_strerror(&self->f.nl));
}

FIXTURE_TEARDOWN(rec)
{
	pp_fake_unmap(&self->f, self->fd, self->mem);
}

/* Lose the connections: the session pauses. */
static int lose_connections(struct pp_fake *f, struct pp_session_info *info)
{
	close_fds(f->src);
	close_fds(f->dst);
	return pp_wait_state(&f->nl, f->info.index, PAGEPUSH_STATE_PAUSED,
			     WAIT_MS, info);
}

/* New connections for RECOVER (or CONNECT); the kernel gets f->dst. */
static int new_connections(struct pp_fake *f, bool two)
{
	int i, ret;

	for (i = 0; i < (two ? 2 : 1); i++) {
		ret = pp_tcp_pair(&f->dst[i], &f->src[i]);
		if (ret)
			return ret;
	}
	return 0;
}

TEST_F(rec, paused_then_recovered_nothing_lost)
{
	uint32_t ps = variant->page_size;
	int pre = self->f.src[PAGEPUSH_CHANNEL_PRECOPY];
	struct pp_session_info info;
	struct pagepush_frame fr;
	uint8_t bits[2] = { 0 }, want[2] = { 0x05, 0x00 };
	pid_t held, killed;
	int status, i;
	char *half;

	/* Pages 0 and 2 arrive; half of page 5 does, then the link breaks. */
	ASSERT_EQ(0, pp_send_pattern_page(pre, ps, 0, ps));
	ASSERT_EQ(0, pp_send_pattern_page(pre, ps, 2, ps));
	half = malloc(ps);
	ASSERT_NE(NULL, half);
	pp_pattern(half, ps, 5ull * ps);
	ASSERT_EQ(0, pp_send_frame(pre, PAGEPUSH_FRAME_PAGE, 5ull * ps, ps / 2, half));
	free(half);
	ASSERT_EQ(0, pp_wait_stat(&self->f.nl, self->f.info.index,
				  PAGEPUSH_STAT_PAGES_PRESENT, 2, WAIT_MS));
	held = touch_child(&self->f, self->mem, 3);
	ASSERT_GE(held, 0);
	ASSERT_EQ(0, recv_frame_of(pre, PAGEPUSH_FRAME_REQUEST, &fr));
	EXPECT_EQ(3ull * ps, le64toh(fr.offset));

	ASSERT_EQ(0, lose_connections(&self->f, &info));
	EXPECT_NE(NULL, strstr(info.reason, "connection lost")) TH_LOG("%s", info.reason);
	EXPECT_EQ(1u, info.stats[PAGEPUSH_STAT_PAUSES]);

	/* Paused: the task stays held, new faults are held too, no SIGBUS. */
	killed = touch_child(&self->f, self->mem, 7);
	ASSERT_GE(killed, 0);
	ASSERT_EQ(0, pp_wait_stat(&self->f.nl, self->f.info.index,
				  PAGEPUSH_STAT_FAULTS_HELD_NOW, 2, WAIT_MS));
	EXPECT_TRUE(alive_after(held, 300));
	/* A held task can still be killed while paused. */
	ASSERT_EQ(0, kill(killed, SIGKILL));
	ASSERT_EQ(killed, waitpid(killed, &status, 0));
	EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	ASSERT_EQ(0, pp_nl_get(&self->f.nl, self->f.info.index, &info));
	EXPECT_EQ(PAGEPUSH_STATE_PAUSED, info.state);
	EXPECT_EQ(1u, info.stats[PAGEPUSH_STAT_FAULTS_HELD_NOW]);
	EXPECT_EQ(0u, info.stats[PAGEPUSH_STAT_FAULTS_SIGBUS]);

	/* Resume on new connections: first what is present, then requests. */
	ASSERT_EQ(0, new_connections(&self->f, variant->two));
	ASSERT_EQ(0, pp_nl_recover(&self->f.nl, self->f.info.index,
				   self->f.dst[0], self->f.dst[1], COOKIE))
		TH_LOG("%s", pp_nl_strerror(&self->f.nl));
	pre = self->f.src[PAGEPUSH_CHANNEL_PRECOPY];
	ASSERT_EQ(0, recv_frame_of(pre, PAGEPUSH_FRAME_PRESENT, &fr));
	EXPECT_EQ(0u, le64toh(fr.offset));
	ASSERT_EQ((NR_PAGES + 7) / 8, le32toh(fr.length));
	ASSERT_EQ(sizeof(bits), recv(pre, bits, sizeof(bits), MSG_WAITALL));
	/* Pages 0 and 2; not the half page, which was dropped. */
	EXPECT_EQ(0, memcmp(bits, want, sizeof(bits)));
	ASSERT_EQ(0, recv_frame_of(pre, PAGEPUSH_FRAME_RESUME, &fr));
	ASSERT_EQ(0, recv_frame_of(pre, PAGEPUSH_FRAME_REQUEST, &fr));
	EXPECT_EQ(3ull * ps, le64toh(fr.offset));

	ASSERT_EQ(0, pp_nl_get(&self->f.nl, self->f.info.index, &info));
	EXPECT_EQ(PAGEPUSH_STATE_CONNECTED, info.state);
	EXPECT_STREQ("", info.reason);
	EXPECT_EQ(1u, info.stats[PAGEPUSH_STAT_RECOVERIES]);

	/* The held task gets its page, right. */
	ASSERT_EQ(0, pp_send_pattern_page(pre, ps, 3, ps));
	ASSERT_EQ(held, waitpid(held, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));

	/* Everything else, and the session completes. */
	for (i = 0; i < NR_PAGES; i++) {
		if (i != 0 && i != 2 && i != 3)
			ASSERT_EQ(0, pp_send_pattern_page(pre, ps, i, ps > 4096 ? 65536 : ps));
	}
	ASSERT_EQ(0, pp_wait_state(&self->f.nl, self->f.info.index,
				   PAGEPUSH_STATE_COMPLETE, WAIT_MS, &info));
	ASSERT_EQ(0, recv_frame_of(pre, PAGEPUSH_FRAME_COMPLETE, &fr));
	for (i = 0; i < NR_PAGES; i++)
		EXPECT_TRUE(pp_pattern_ok(self->mem + (uint64_t)i * ps, ps, (uint64_t)i * ps))
			TH_LOG("page %d", i);
	EXPECT_EQ(0u, info.stats[PAGEPUSH_STAT_FAULTS_SIGBUS]);
}

TEST_F(rec, paused_twice_recovered_twice)
{
	uint32_t ps = variant->page_size;
	struct pp_session_info info;
	struct pagepush_frame fr;
	int round, i;

	for (round = 1; round <= 2; round++) {
		ASSERT_EQ(0, pp_send_pattern_page(self->f.src[0], ps, round, ps));
		ASSERT_EQ(0, pp_wait_stat(&self->f.nl, self->f.info.index,
					  PAGEPUSH_STAT_PAGES_PRESENT, round, WAIT_MS));
		ASSERT_EQ(0, lose_connections(&self->f, &info));
		ASSERT_EQ(0, new_connections(&self->f, variant->two));
		ASSERT_EQ(0, pp_nl_recover(&self->f.nl, self->f.info.index,
					   self->f.dst[0], self->f.dst[1], COOKIE))
			TH_LOG("%s", pp_nl_strerror(&self->f.nl));
		ASSERT_EQ(0, recv_frame_of(self->f.src[0], PAGEPUSH_FRAME_PRESENT, &fr));
		for (i = le32toh(fr.length); i > 0; i--) {
			char c;

			ASSERT_EQ(1, recv(self->f.src[0], &c, 1, MSG_WAITALL));
		}
		ASSERT_EQ(0, recv_frame_of(self->f.src[0], PAGEPUSH_FRAME_RESUME, &fr));
	}
	ASSERT_EQ(0, pp_nl_get(&self->f.nl, self->f.info.index, &info));
	EXPECT_EQ(2u, info.stats[PAGEPUSH_STAT_PAUSES]);
	EXPECT_EQ(2u, info.stats[PAGEPUSH_STAT_RECOVERIES]);
	EXPECT_EQ(2u, info.stats[PAGEPUSH_STAT_PAGES_PRESENT]);
}

TEST_F(rec, recover_refused_unless_paused_with_the_cookie)
{
	struct pp_session_info info;
	int pre, post;

	/* Connected: nothing to recover. */
	ASSERT_EQ(0, pp_tcp_pair(&pre, &post));
	EXPECT_EQ(-EBUSY, pp_nl_recover(&self->f.nl, self->f.info.index, pre, -1, COOKIE));
	EXPECT_NE(NULL, strstr(pp_nl_strerror(&self->f.nl), "not paused"));
	close(pre);
	close(post);

	ASSERT_EQ(0, lose_connections(&self->f, &info));
	ASSERT_EQ(0, new_connections(&self->f, variant->two));
	/* Another migration's cookie, or none. */
	EXPECT_EQ(-EINVAL, pp_nl_recover(&self->f.nl, self->f.info.index,
					 self->f.dst[0], self->f.dst[1], COOKIE + 1));
	EXPECT_NE(NULL, strstr(pp_nl_strerror(&self->f.nl), "cookie"));
	/* Not a connected TCP socket. */
	pre = socket(AF_INET, SOCK_STREAM, 0);
	EXPECT_EQ(-EINVAL, pp_nl_recover(&self->f.nl, self->f.info.index, pre, -1, COOKIE));
	EXPECT_NE(NULL, strstr(pp_nl_strerror(&self->f.nl), "not connected"));
	close(pre);
	ASSERT_EQ(0, pp_nl_get(&self->f.nl, self->f.info.index, &info));
	EXPECT_EQ(PAGEPUSH_STATE_PAUSED, info.state);
	/* The sockets refused above were let go: they work for RECOVER. */
	EXPECT_EQ(0, pp_nl_recover(&self->f.nl, self->f.info.index,
				   self->f.dst[0], self->f.dst[1], COOKIE))
		TH_LOG("%s", pp_nl_strerror(&self->f.nl));
}

TEST_F(rec, delete_while_paused_and_held_gives_sigbus)
{
	uint32_t ps = variant->page_size;
	struct pp_session_info info;
	pid_t pid;
	int status;

	ASSERT_EQ(0, pp_send_pattern_page(self->f.src[0], ps, 0, ps));
	pid = touch_child(&self->f, self->mem, 4);
	ASSERT_GE(pid, 0);
	ASSERT_EQ(0, pp_wait_stat(&self->f.nl, self->f.info.index,
				  PAGEPUSH_STAT_FAULTS_HELD_NOW, 1, WAIT_MS));
	ASSERT_EQ(0, lose_connections(&self->f, &info));
	EXPECT_TRUE(alive_after(pid, 200));
	ASSERT_EQ(0, pp_nl_del(&self->f.nl, self->f.info.index));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFSIGNALED(status));
	EXPECT_EQ(SIGBUS, WTERMSIG(status));
	/* What arrived stays mapped and usable. */
	EXPECT_TRUE(pp_pattern_ok(self->mem, ps, 0));
}

TEST_F(rec, delete_tells_the_source)
{
	struct pagepush_frame fr;

	ASSERT_EQ(0, pp_nl_del(&self->f.nl, self->f.info.index));
	ASSERT_EQ(0, recv_frame_of(self->f.src[0], PAGEPUSH_FRAME_ABORT, &fr));
}

TEST_F(rec, protocol_error_fails_and_tells_the_source)
{
	struct pp_session_info info;
	struct pagepush_frame fr;

	ASSERT_EQ(0, pp_send_frame(self->f.src[0], 77, 0, 0, NULL));
	ASSERT_EQ(0, pp_wait_state(&self->f.nl, self->f.info.index,
				   PAGEPUSH_STATE_FAILED, WAIT_MS, &info));
	ASSERT_EQ(0, recv_frame_of(self->f.src[0], PAGEPUSH_FRAME_ABORT, &fr));
	EXPECT_EQ(0u, info.stats[PAGEPUSH_STAT_PAUSES]);
}

/* A session that may stay paused 1 s: then it fails, and held tasks get SIGBUS. */
TEST(pause_timeout_fails_the_session)
{
	struct pp_session_info info;
	struct pp_fake f;
	pid_t pid;
	char *mem;
	int fd, status;

	ASSERT_EQ(0, pp_fake_new(&f, 4 * SZ_2M, SZ_2M));
	/* Swap the session for one with a pause timeout. */
	ASSERT_EQ(0, pp_nl_del(&f.nl, f.info.index));
	ASSERT_EQ(0, pp_nl_new_ex(&f.nl, f.size, SZ_2M, NULL, 1, &f.info))
		TH_LOG("%s", pp_nl_strerror(&f.nl));
	EXPECT_EQ(1u, f.info.pause_timeout);
	snprintf(f.dev, sizeof(f.dev), "/dev/%s", f.info.device);
	ASSERT_EQ(0, pp_fake_connect(&f, true));
	fd = open(f.dev, O_RDWR);
	ASSERT_GE(fd, 0);
	mem = mmap(NULL, f.size, PROT_READ, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, mem);

	pid = touch_child(&f, mem, 1);
	ASSERT_GE(pid, 0);
	ASSERT_EQ(0, pp_wait_stat(&f.nl, f.info.index,
				  PAGEPUSH_STAT_FAULTS_HELD_NOW, 1, WAIT_MS));
	ASSERT_EQ(0, lose_connections(&f, &info));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFSIGNALED(status));
	EXPECT_EQ(SIGBUS, WTERMSIG(status));
	ASSERT_EQ(0, pp_nl_get(&f.nl, f.info.index, &info));
	EXPECT_EQ(PAGEPUSH_STATE_FAILED, info.state);
	EXPECT_NE(NULL, strstr(info.reason, "not recovered within 1 s")) TH_LOG("%s", info.reason);
	EXPECT_NE(NULL, strstr(info.reason, "connection lost")) TH_LOG("%s", info.reason);

	munmap(mem, f.size);
	close(fd);
	pp_fake_close(&f);
}

TEST_HARNESS_MAIN
