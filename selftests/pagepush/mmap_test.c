// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/pagepushN: open and mmap rules, and what a touch does on a session
 * with no source.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "../kselftest_harness.h"
#include "pp_test.h"

FIXTURE(dev)
{
	struct pp_nl nl;
	struct pp_session_info info;
	char path[64];
	int fd;
};

FIXTURE_VARIANT(dev)
{
	uint32_t page_size;
};

FIXTURE_VARIANT_ADD(dev, page_2m) { .page_size = SZ_2M };
FIXTURE_VARIANT_ADD(dev, page_4k) { .page_size = SZ_4K };

#define DEV_SIZE	(16u << 20)

FIXTURE_SETUP(dev)
{
	ASSERT_EQ(0, pp_nl_open(&self->nl));
	ASSERT_EQ(0, pp_nl_new(&self->nl, DEV_SIZE, variant->page_size, NULL,
			       &self->info)) TH_LOG("%s", self->nl.msg);
	snprintf(self->path, sizeof(self->path), "/dev/%s", self->info.device);
	self->fd = open(self->path, O_RDWR);
	ASSERT_GE(self->fd, 0) TH_LOG("%s: %s", self->path, strerror(errno));
}

FIXTURE_TEARDOWN(dev)
{
	if (self->fd >= 0)
		close(self->fd);
	pp_nl_del(&self->nl, self->info.index);
	pp_nl_close(&self->nl);
}

TEST_F(dev, private_mapping_refused)
{
	void *p = mmap(NULL, DEV_SIZE, PROT_READ, MAP_PRIVATE, self->fd, 0);

	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(dev, beyond_size_refused)
{
	void *p;

	p = mmap(NULL, DEV_SIZE + SZ_2M, PROT_READ, MAP_SHARED, self->fd, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	p = mmap(NULL, SZ_2M, PROT_READ, MAP_SHARED, self->fd, DEV_SIZE);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	p = mmap(NULL, 2 * SZ_2M, PROT_READ, MAP_SHARED, self->fd, DEV_SIZE - SZ_2M);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	/* The last page alone is fine. */
	p = mmap(NULL, SZ_2M, PROT_READ, MAP_SHARED, self->fd, DEV_SIZE - SZ_2M);
	ASSERT_NE(MAP_FAILED, p);
	munmap(p, SZ_2M);
}

TEST_F(dev, address_is_2m_aligned)
{
	void *p[4];
	int i;

	for (i = 0; i < 4; i++) {
		p[i] = mmap(NULL, DEV_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
			    self->fd, 0);
		ASSERT_NE(MAP_FAILED, p[i]);
		EXPECT_EQ(0, (unsigned long)p[i] % SZ_2M)
			TH_LOG("mapping %d at %p", i, p[i]);
	}
	for (i = 0; i < 4; i++)
		munmap(p[i], DEV_SIZE);
}

/* Touch @addr in a child; returns the signal that killed it, or 0. */
static int touch_in_child(volatile char *addr, bool write)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		if (write)
			*addr = 1;
		else
			(void)*addr;
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

TEST_F(dev, touch_without_source_is_sigbus)
{
	struct pp_session_info info;
	char *p = mmap(NULL, DEV_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		       self->fd, 0);

	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(SIGBUS, touch_in_child(p, false));
	EXPECT_EQ(SIGBUS, touch_in_child(p + DEV_SIZE - 1, true));
	ASSERT_EQ(0, pp_nl_get(&self->nl, self->info.index, &info));
	EXPECT_EQ(2u, info.stats[PAGEPUSH_STAT_FAULTS_SIGBUS]);
	EXPECT_EQ(0u, info.stats[PAGEPUSH_STAT_FAULTS_HELD_TOTAL]);
	EXPECT_EQ(0u, info.stats[PAGEPUSH_STAT_REQUESTS_SENT]);
	munmap(p, DEV_SIZE);
}

TEST_F(dev, delete_while_mapped_is_safe)
{
	struct pp_session_info info;
	char *p = mmap(NULL, DEV_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		       self->fd, 0);
	int fd2;

	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, pp_nl_del(&self->nl, self->info.index));
	EXPECT_EQ(-ENOENT, pp_nl_get(&self->nl, self->info.index, &info));
	/* The node is gone; the open file and the mapping are not. */
	fd2 = open(self->path, O_RDWR);
	EXPECT_EQ(-1, fd2);
	EXPECT_EQ(SIGBUS, touch_in_child(p + SZ_2M, false));
	munmap(p, DEV_SIZE);
	p = mmap(NULL, DEV_SIZE, PROT_READ, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(SIGBUS, touch_in_child(p, false));
	munmap(p, DEV_SIZE);
}

TEST_F(dev, mremap_beyond_size_is_sigbus)
{
	char *p = mmap(NULL, DEV_SIZE, PROT_READ, MAP_SHARED, self->fd, 0);
	char *q;

	ASSERT_NE(MAP_FAILED, p);
	q = mremap(p, DEV_SIZE, DEV_SIZE + SZ_2M, MREMAP_MAYMOVE);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_EQ(SIGBUS, touch_in_child(q + DEV_SIZE, false));
	munmap(q, DEV_SIZE + SZ_2M);
}

TEST(open_unknown_minor_fails)
{
	struct pp_nl nl;
	struct pp_session_info info;
	char path[64];

	ASSERT_EQ(0, pp_nl_open(&nl));
	ASSERT_EQ(0, pp_nl_new(&nl, SZ_2M, SZ_2M, NULL, &info));
	snprintf(path, sizeof(path), "/dev/%s", info.device);
	ASSERT_EQ(0, pp_nl_del(&nl, info.index));
	EXPECT_EQ(-1, open(path, O_RDWR));
	pp_nl_close(&nl);
}

TEST_HARNESS_MAIN
