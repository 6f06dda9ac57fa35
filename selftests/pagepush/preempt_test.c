// SPDX-License-Identifier: GPL-2.0
/*
 * Postcopy preemption, end to end: 'pagepush serve' streams pages in the
 * background over a slow link (preempt.sh sets it up: two network
 * namespaces, a 2 MiB page takes hundreds of milliseconds), tasks on the
 * destination fault on pages the stream has not reached, and the
 * source's counters (--stats-json) and the session's show what happened:
 * the interruption, the requested page on the postcopy channel, the
 * interrupted page resumed on precopy, requests for the interrupted page
 * dropped, no split brain, every byte right.
 *
 * Without preempt.sh (no PP_SRC_NS in the environment) both ends run in
 * the current network namespace over loopback.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "../kselftest_harness.h"
#include "pp_test.h"

#define WAIT_MS 60000

static const char *pp_bin(void)
{
	const char *p = getenv("PAGEPUSH");

	return p ? p : "../../user/pagepush";
}

/* Run argv in network namespace @ns (NULL: here); stdout to a pipe. */
static pid_t spawn(const char *ns, char *const argv[], int *out)
{
	char *full[32];
	int pfd[2], i = 0, j;
	pid_t pid;

	if (pipe(pfd))
		return -1;
	if (ns) {
		full[i++] = "ip";
		full[i++] = "netns";
		full[i++] = "exec";
		full[i++] = (char *)ns;
	}
	for (j = 0; argv[j] && i < 31; j++)
		full[i++] = argv[j];
	full[i] = NULL;
	pid = fork();
	if (pid == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		execvp(full[0], full);
		_exit(127);
	}
	close(pfd[1]);
	*out = pfd[0];
	return pid;
}

/* The first line of @fd, without its newline. */
static int read_line(int fd, char *buf, size_t len)
{
	size_t n = 0;

	while (n + 1 < len) {
		if (read(fd, buf + n, 1) != 1)
			return -1;
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = '\0';
	return 0;
}

/* A number from the source's --stats-json file. */
static long long stat_json(const char *path, const char *key)
{
	char buf[4096], pat[64], *p;
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(buf, pat);
	return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

FIXTURE(mig)
{
	struct pp_nl nl;
	struct pp_session_info info;
	char file[64];
	char stats[64];
	char dev[64];
	pid_t serve;
	int serve_out;
	int fd;
	char *mem;
	uint64_t size;
	uint32_t ps;
};

FIXTURE_VARIANT(mig)
{
	uint32_t page_size;
	bool preempt;
};

FIXTURE_VARIANT_ADD(mig, page_2m_preempt) { .page_size = SZ_2M, .preempt = true };
FIXTURE_VARIANT_ADD(mig, page_2m_no_preempt) { .page_size = SZ_2M, .preempt = false };
FIXTURE_VARIANT_ADD(mig, page_4k_preempt) { .page_size = SZ_4K, .preempt = true };
FIXTURE_VARIANT_ADD(mig, page_4k_no_preempt) { .page_size = SZ_4K, .preempt = false };

FIXTURE_SETUP(mig)
{
	const char *src_ns = getenv("PP_SRC_NS"), *dst_ns = getenv("PP_DST_NS");
	const char *addr = getenv("PP_SRC_ADDR");
	char listen[64], line[128], *argv[16];
	int i = 0, out;
	pid_t pid;

	self->ps = variant->page_size;
	self->size = variant->page_size == SZ_2M ? 24ull * SZ_2M : 4ull << 20;
	snprintf(self->file, sizeof(self->file), "/tmp/pp-preempt-%d.img", getpid());
	snprintf(self->stats, sizeof(self->stats), "/tmp/pp-preempt-%d.json", getpid());
	ASSERT_EQ(0, pp_write_pattern_file(self->file, self->size));
	ASSERT_EQ(0, pp_nl_open(&self->nl));

	snprintf(listen, sizeof(listen), "%s:0", addr ? addr : "127.0.0.1");
	argv[i++] = (char *)pp_bin();
	argv[i++] = "serve";
	argv[i++] = "--listen";
	argv[i++] = listen;
	argv[i++] = "--page-size";
	argv[i++] = variant->page_size == SZ_2M ? "2M" : "4K";
	argv[i++] = "--stats-json";
	argv[i++] = self->stats;
	if (!variant->preempt)
		argv[i++] = "--no-preempt";
	argv[i++] = self->file;
	argv[i] = NULL;
	self->serve = spawn(src_ns, argv, &self->serve_out);
	ASSERT_GT(self->serve, 0);
	ASSERT_EQ(0, read_line(self->serve_out, line, sizeof(line)));
	ASSERT_EQ(0, strncmp(line, "listening on ", 13)) TH_LOG("%s", line);

	i = 0;
	argv[i++] = (char *)pp_bin();
	argv[i++] = "attach";
	argv[i++] = line + 13;
	argv[i] = NULL;
	pid = spawn(dst_ns, argv, &out);
	ASSERT_GT(pid, 0);
	ASSERT_EQ(0, read_line(out, self->dev, sizeof(self->dev)));
	close(out);
	waitpid(pid, NULL, 0);
	ASSERT_EQ(0, pp_nl_find(&self->nl, self->dev, &self->info))
		TH_LOG("attach printed '%s'", self->dev);

	self->fd = open(self->dev, O_RDWR);
	ASSERT_GE(self->fd, 0);
	self->mem = mmap(NULL, self->size, PROT_READ | PROT_WRITE, MAP_SHARED,
			 self->fd, 0);
	ASSERT_NE(MAP_FAILED, self->mem);
}

FIXTURE_TEARDOWN(mig)
{
	if (self->mem && self->mem != MAP_FAILED)
		munmap(self->mem, self->size);
	if (self->fd >= 0)
		close(self->fd);
	if (self->serve > 0) {
		kill(self->serve, SIGKILL);
		waitpid(self->serve, NULL, 0);
	}
	pp_nl_del(&self->nl, self->info.index);
	pp_nl_close(&self->nl);
	unlink(self->file);
	unlink(self->stats);
}

/* Wait for the end: the source exits 0 after COMPLETE. */
static int finish(FIXTURE_DATA(mig) *self, struct pp_session_info *info)
{
	int status, ret;

	ret = pp_wait_state(&self->nl, self->info.index,
			    PAGEPUSH_STATE_COMPLETE, WAIT_MS, info);
	if (ret)
		return ret;
	if (waitpid(self->serve, &status, 0) != self->serve)
		return -ECHILD;
	self->serve = 0;
	return WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : -EIO;
}

/*
 * Wait until the background stream is under way: precopy bytes in
 * [lo, hi). For huge pages also page 0 not complete yet: the source is in
 * the middle of it. (Small pages complete with every chunk.)
 */
static int streaming(FIXTURE_DATA(mig) *self, uint64_t lo, uint64_t hi)
{
	bool huge = self->ps == SZ_2M;

	struct pp_session_info info;
	int i;

	for (i = 0; i < 20000; i++) {
		if (pp_nl_get(&self->nl, self->info.index, &info))
			return -1;
		if (info.chan[0][PAGEPUSH_CHAN_BYTES] >= lo &&
		    info.chan[0][PAGEPUSH_CHAN_BYTES] < hi &&
		    (!huge || !info.stats[PAGEPUSH_STAT_PAGES_PRESENT]))
			return 0;
		if (info.chan[0][PAGEPUSH_CHAN_BYTES] >= hi)
			return -1;
		usleep(1000);
	}
	return -1;
}

TEST_F(mig, fault_far_ahead)
{
	uint64_t last = self->size - self->ps;
	struct pp_session_info info;

	ASSERT_EQ(0, streaming(self, 1, self->size / 2));
	/* Far ahead of the background cursor. */
	EXPECT_TRUE(pp_pattern_ok(self->mem + last, self->ps, last));
	ASSERT_EQ(0, finish(self, &info));

	EXPECT_TRUE(pp_pattern_ok(self->mem, self->size, 0));
	EXPECT_EQ(0u, info.stats[PAGEPUSH_STAT_SPLIT_BRAIN]);
	EXPECT_GE(stat_json(self->stats, "requests_served"), 1);
	EXPECT_GE(info.stats[PAGEPUSH_STAT_FAULTS_HELD_TOTAL], 1u);
	if (variant->preempt) {
		/* The requested page came on the postcopy channel... */
		EXPECT_GE(info.chan[1][PAGEPUSH_CHAN_PAGES], 1u);
		EXPECT_GE(info.chan[1][PAGEPUSH_CHAN_FAULT_PAGES], 1u);
		if (variant->page_size == SZ_2M) {
			/* ...interrupting a huge page, which resumed. */
			EXPECT_GE(stat_json(self->stats, "preemptions"), 1);
			EXPECT_GE(stat_json(self->stats, "pages_resumed"), 1);
		} else {
			/* Small pages are never interrupted. */
			EXPECT_EQ(0, stat_json(self->stats, "preemptions"));
		}
	} else {
		EXPECT_EQ(0u, info.chan[1][PAGEPUSH_CHAN_PAGES]);
		EXPECT_EQ(0, stat_json(self->stats, "preemptions"));
	}
	/* Every page was placed once. */
	EXPECT_EQ(self->size / self->ps, info.chan[0][PAGEPUSH_CHAN_PAGES] +
		  info.chan[1][PAGEPUSH_CHAN_PAGES]);
}

TEST_F(mig, fault_in_interrupted_page)
{
	struct pp_session_info info;

	/* Page 0 partly arrived: the source is in the middle of it. */
	struct pp_session_info now;
	uint64_t next;

	ASSERT_EQ(0, streaming(self, 4096, self->ps == SZ_2M ? (1 << 20) : self->size / 2));
	/* The page the stream is at (page 0 for huge pages). */
	ASSERT_EQ(0, pp_nl_get(&self->nl, self->info.index, &now));
	next = now.stats[PAGEPUSH_STAT_PAGES_PRESENT] * self->ps;
	EXPECT_TRUE(pp_pattern_ok(self->mem + next, 64, next));
	ASSERT_EQ(0, finish(self, &info));
	EXPECT_TRUE(pp_pattern_ok(self->mem, self->size, 0));
	EXPECT_EQ(0u, info.stats[PAGEPUSH_STAT_SPLIT_BRAIN]);
	if (variant->page_size == SZ_2M && variant->preempt) {
		/* The request interrupted page 0 and was dropped: page 0
		 * completed on precopy, never split.
		 */
		EXPECT_GE(stat_json(self->stats, "requests_dropped_interrupted"), 1);
		EXPECT_GE(info.chan[0][PAGEPUSH_CHAN_FAULT_PAGES], 1u);
	}
	if (variant->page_size == SZ_2M && !variant->preempt) {
		/* Served after page 0 was complete: already sent. */
		EXPECT_GE(stat_json(self->stats, "requests_dropped_sent"), 1);
	}
}

struct rnd {
	char *mem;
	uint64_t size;
	uint32_t ps;
	unsigned int seed;
	bool ok;
	pthread_t tid;
};

static void *rnd_thread(void *arg)
{
	struct rnd *r = arg;
	uint64_t pages = r->size / r->ps, idx, off;
	int i;

	r->ok = true;
	for (i = 0; i < 6; i++) {
		/* Half of the threads share their pages with another. */
		idx = (rand_r(&r->seed) ^ (r->seed & 1 ? 0 : 0x55)) % pages;
		off = idx * r->ps + (rand_r(&r->seed) % (r->ps / 4096)) * 4096;
		if (!pp_pattern_ok(r->mem + off, 4096, off))
			r->ok = false;
	}
	return NULL;
}

TEST_F(mig, many_concurrent_requests)
{
	struct pp_session_info info;
	struct rnd r[16];
	long long recv, served, drop_i, drop_s;
	int i;

	ASSERT_EQ(0, streaming(self, 1, self->size / 2));
	for (i = 0; i < 16; i++) {
		r[i].mem = self->mem;
		r[i].size = self->size;
		r[i].ps = self->ps;
		r[i].seed = i / 2 + 1;
		ASSERT_EQ(0, pthread_create(&r[i].tid, NULL, rnd_thread, &r[i]));
	}
	for (i = 0; i < 16; i++) {
		pthread_join(r[i].tid, NULL);
		EXPECT_TRUE(r[i].ok) TH_LOG("thread %d read wrong bytes", i);
	}
	ASSERT_EQ(0, finish(self, &info));
	EXPECT_TRUE(pp_pattern_ok(self->mem, self->size, 0));
	EXPECT_EQ(0u, info.stats[PAGEPUSH_STAT_SPLIT_BRAIN]);
	EXPECT_EQ(0u, info.stats[PAGEPUSH_STAT_FAULTS_HELD_NOW]);
	recv = stat_json(self->stats, "requests_received");
	served = stat_json(self->stats, "requests_served");
	drop_i = stat_json(self->stats, "requests_dropped_interrupted");
	drop_s = stat_json(self->stats, "requests_dropped_sent");
	/* Every request the kernel sent reached the source, and each was
	 * served or dropped for a reason.
	 */
	EXPECT_EQ((long long)info.stats[PAGEPUSH_STAT_REQUESTS_SENT], recv);
	EXPECT_EQ(recv, served + drop_i + drop_s);
	EXPECT_GE(served, 1);
}

TEST_HARNESS_MAIN
