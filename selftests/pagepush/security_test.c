// SPDX-License-Identifier: GPL-2.0
/*
 * What pagepush lets others do: callers without CAP_NET_ADMIN, users who
 * cannot open a device node, listeners of the events group, a malicious
 * source, and the limits on what one root caller can ask for.
 * Documentation/security.rst names the test behind each claim.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/capability.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <netlink/genl/genl.h>
#include <netlink/genl/ctrl.h>

#include "../kselftest_harness.h"
#include "pp_test.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

#define NOBODY		65534
#define WAIT_MS		10000
/* Sessions at once (kernel/session.h). */
#define PP_SESSIONS_MAX	1024

/* ---- dropping privileges ---------------------------------------------- */

enum drop {
	DROP_NONE,		/* root, as the caller is */
	DROP_NOBODY,		/* uid and gid 65534: no capability at all */
	DROP_NET_ADMIN,		/* still uid 0, every capability but one */
	DROP_USERNS,		/* nobody, then all of them in a new user and
				 * network namespace of its own */
};

static bool cap_effective(int cap)
{
	struct __user_cap_header_struct h = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d))
		return true;
	return d[cap / 32].effective & (1u << (cap % 32));
}

/*
 * A chrooted process may not create a user namespace, and the test VM
 * runs the suites chrooted into the host's root. Go back to the root of
 * the mount namespace (PID 1's) first, if it is another one. Paths are
 * then relative to it: open files through a descriptor of the old root.
 */
static int leave_chroot(void)
{
	struct stat a, b;

	if (stat("/", &a) || stat("/proc/1/root/", &b) ||
	    (a.st_dev == b.st_dev && a.st_ino == b.st_ino))
		return 0;
	if (chroot("/proc/1/root") || chdir("/"))
		return -errno;
	return 0;
}

/* 0, -errno, or 1 when this kernel cannot do it (the test is skipped). */
static int drop_privileges(enum drop how)
{
	struct __user_cap_header_struct h = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct d[2];
	const unsigned int bit = 1u << (CAP_NET_ADMIN % 32);
	int ret;

	switch (how) {
	case DROP_NONE:
		return 0;
	case DROP_NET_ADMIN:
		if (prctl(PR_CAPBSET_DROP, CAP_NET_ADMIN, 0, 0, 0) ||
		    syscall(SYS_capget, &h, d))
			return -errno;
		d[CAP_NET_ADMIN / 32].effective &= ~bit;
		d[CAP_NET_ADMIN / 32].permitted &= ~bit;
		d[CAP_NET_ADMIN / 32].inheritable &= ~bit;
		if (syscall(SYS_capset, &h, d))
			return -errno;
		prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
		return 0;
	case DROP_NOBODY:
	case DROP_USERNS:
		ret = how == DROP_USERNS ? leave_chroot() : 0;
		if (ret)
			return ret;
		if (setgroups(0, NULL) || setgid(NOBODY) || setuid(NOBODY))
			return -errno;
		if (how == DROP_USERNS && unshare(CLONE_NEWUSER | CLONE_NEWNET))
			return 1;
		return 0;
	}
	return -EINVAL;
}

/* The id of the events group, resolved through the controller. */
static int events_group(struct pp_nl *nl)
{
	return genl_ctrl_resolve_grp(nl->sk, PAGEPUSH_GENL_NAME,
				     PAGEPUSH_MCGRP_EVENTS);
}

/* Join the events group by hand: 0 or -errno. */
static int join_events(struct pp_nl *nl)
{
	int grp = events_group(nl);

	if (grp < 0)
		return -ENOENT;
	if (setsockopt(nl_socket_get_fd(nl->sk), SOL_NETLINK,
		       NETLINK_ADD_MEMBERSHIP, &grp, sizeof(grp)))
		return -errno;
	return 0;
}

/* Open @path (absolute) below the directory @dir: 0 or -errno. */
static int open_errno(int dir, const char *path, int flags)
{
	int fd = openat(dir, path + 1, flags);

	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

/* ---- every operation, without CAP_NET_ADMIN ----------------------------- */

/* What the unprivileged child saw: 0 or -errno for each attempt. */
struct unpriv_result {
	int drop;		/* drop_privileges() */
	int net_admin;		/* CAP_NET_ADMIN effective after it, in the
				 * caller's own user namespace */
	int nl_open;		/* resolving the family */
	int new, get, dump, del, connect, recover;
	int join;		/* joining the events group */
	int open_rw, open_ro;	/* the device node */
	int map_inherited;	/* mmap of a descriptor root opened */
};

FIXTURE(unpriv)
{
	struct pp_nl nl;
	struct pp_session_info info;
	char path[64];
	int tcp[2];
	int fd;
};

FIXTURE_VARIANT(unpriv)
{
	enum drop drop;
	int join;		/* expected result of joining the events group */
	int open;		/* expected result of opening the node */
};

/* The common case: an ordinary user. */
FIXTURE_VARIANT_ADD(unpriv, nobody)
{
	.drop = DROP_NOBODY, .join = -EPERM, .open = -EACCES,
};

/*
 * uid 0 without CAP_NET_ADMIN: the capability, not the uid, is what the
 * family checks. The node belongs to uid 0, so it still opens.
 */
FIXTURE_VARIANT_ADD(unpriv, root_without_cap_net_admin)
{
	.drop = DROP_NET_ADMIN, .join = -EPERM, .open = 0,
};

/*
 * CAP_NET_ADMIN in a user namespace of one's own is not CAP_NET_ADMIN:
 * every command is refused. Joining the events group is checked against
 * the listener's network namespace, which this user owns: it succeeds,
 * but no event is sent there (see userns_listener_gets_no_events and
 * Documentation/security.rst).
 */
FIXTURE_VARIANT_ADD(unpriv, user_namespace_net_admin)
{
	.drop = DROP_USERNS, .join = 0, .open = -EACCES,
};

FIXTURE_SETUP(unpriv)
{
	ASSERT_EQ(0, pp_nl_open(&self->nl));
	ASSERT_EQ(0, pp_nl_new(&self->nl, 4 * SZ_2M, SZ_2M, "sec-unpriv",
			       &self->info)) TH_LOG("%s", self->nl.msg);
	snprintf(self->path, sizeof(self->path), "/dev/%s", self->info.device);
	ASSERT_EQ(0, pp_tcp_pair(&self->tcp[0], &self->tcp[1]));
	self->fd = open(self->path, O_RDWR);
	ASSERT_GE(self->fd, 0);
}

FIXTURE_TEARDOWN(unpriv)
{
	close(self->fd);
	close(self->tcp[0]);
	close(self->tcp[1]);
	pp_nl_del(&self->nl, self->info.index);
	pp_nl_close(&self->nl);
}

/* RECOVER of session @index with socket @fd: 0 or -errno. */
static int raw_recover(struct pp_nl *nl, uint32_t index, int fd)
{
	struct nl_msg *msg = pp_nl_msg(nl, PAGEPUSH_CMD_RECOVER, 0);

	if (!msg)
		return -ENOMEM;
	nla_put_u32(msg, PAGEPUSH_A_INDEX, index);
	if (fd >= 0)
		nla_put_u32(msg, PAGEPUSH_A_PRECOPY_FD, fd);
	nla_put_u64(msg, PAGEPUSH_A_COOKIE, 1);
	return pp_nl_send(nl, msg, NULL, NULL);
}

static int count_cb(const struct pp_session_info *info, void *arg)
{
	(void)info;
	(*(int *)arg)++;
	return 0;
}

static void unpriv_child(FIXTURE_DATA(unpriv) *self, enum drop drop, int out)
{
	struct unpriv_result r = { };
	struct pp_session_info info;
	int root = open("/", O_PATH | O_DIRECTORY);
	struct pp_nl nl;
	void *p;

	r.drop = drop_privileges(drop);
	if (r.drop)
		goto out;
	r.net_admin = cap_effective(CAP_NET_ADMIN);

	/* Opened after the drop: the socket carries the caller's creds. */
	r.nl_open = pp_nl_open(&nl);
	if (r.nl_open)
		goto out;
	r.new = pp_nl_new(&nl, SZ_2M, SZ_2M, "sec-intruder", &info);
	r.get = pp_nl_get(&nl, self->info.index, &info);
	r.dump = pp_nl_dump(&nl, NULL, NULL);
	r.del = pp_nl_del(&nl, self->info.index);
	r.connect = pp_nl_connect(&nl, self->info.index, self->tcp[0], -1, 1);
	r.recover = raw_recover(&nl, self->info.index, self->tcp[0]);
	r.join = join_events(&nl);
	pp_nl_close(&nl);

	r.open_rw = open_errno(root, self->path, O_RDWR);
	r.open_ro = open_errno(root, self->path, O_RDONLY);
	/* A descriptor root opened and handed down is access, though. */
	p = mmap(NULL, SZ_2M, PROT_READ, MAP_SHARED, self->fd, 0);
	r.map_inherited = p == MAP_FAILED ? -errno : 0;
out:
	if (write(out, &r, sizeof(r)) != sizeof(r))
		_exit(2);
	_exit(0);
}

TEST_F(unpriv, every_operation_refused)
{
	struct pp_session_info info;
	struct unpriv_result r;
	int pipefd[2], status, before = 0, after = 0, recover;
	struct stat st;
	pid_t pid;

	/* The node: a character device, 0600, root's. */
	ASSERT_EQ(0, stat(self->path, &st));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(0600, st.st_mode & 07777);
	EXPECT_EQ(0u, st.st_uid);
	EXPECT_EQ(0u, st.st_gid);

	ASSERT_EQ(0, pp_nl_dump(&self->nl, count_cb, &before));
	/*
	 * A kernel that knows RECOVER refuses it without CAP_NET_ADMIN; one
	 * that does not says so first, to anyone. Root, without a socket,
	 * tells which (and changes nothing).
	 */
	recover = raw_recover(&self->nl, self->info.index, -1) == -EOPNOTSUPP ?
		  -EOPNOTSUPP : -EPERM;
	ASSERT_EQ(0, pipe(pipefd));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		close(pipefd[0]);
		unpriv_child(self, variant->drop, pipefd[1]);
	}
	close(pipefd[1]);
	ASSERT_EQ(sizeof(r), read(pipefd[0], &r, sizeof(r)));
	close(pipefd[0]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status));

	if (r.drop == 1)
		SKIP(return, "no unprivileged user namespaces on this kernel");
	ASSERT_EQ(0, r.drop);
	/* Only in a user namespace of its own. */
	ASSERT_EQ(variant->drop == DROP_USERNS, r.net_admin);
	/* The family itself is visible to anyone, in any namespace. */
	ASSERT_EQ(0, r.nl_open);

	EXPECT_EQ(-EPERM, r.new);
	EXPECT_EQ(-EPERM, r.get);
	EXPECT_EQ(-EPERM, r.dump);
	EXPECT_EQ(-EPERM, r.del);
	EXPECT_EQ(-EPERM, r.connect);
	EXPECT_EQ(recover, r.recover);
	EXPECT_EQ(variant->join, r.join);
	EXPECT_EQ(variant->open, r.open_rw);
	EXPECT_EQ(variant->open, r.open_ro);
	EXPECT_EQ(0, r.map_inherited);

	/* None of it had an effect. */
	ASSERT_EQ(0, pp_nl_get(&self->nl, self->info.index, &info));
	EXPECT_EQ(PAGEPUSH_STATE_NEW, info.state);
	EXPECT_EQ(0u, info.cookie);
	ASSERT_EQ(0, pp_nl_dump(&self->nl, count_cb, &after));
	EXPECT_EQ(before, after);
	EXPECT_EQ(-ENOENT, pp_nl_find(&self->nl, "sec-intruder", &info));
}

/* ---- the events group ---------------------------------------------------- */

/* What a listener saw of the session named "sec-events". */
struct listener_result {
	int drop;
	int join;
	int created, connected;
	uint64_t cookie;	/* largest seen: 0 if no event carried one */
	int stats;		/* events that carried counters */
};

static void listener_child(enum drop drop, int ready, int out)
{
	struct listener_result r = { };
	struct pp_session_info ev;
	struct pp_nl nl;
	int i;

	r.drop = drop_privileges(drop);
	if (r.drop)
		goto out;
	r.join = pp_nl_open(&nl);
	if (!r.join)
		r.join = join_events(&nl);
	if (r.join)
		goto out;
	nl_socket_disable_seq_check(nl.sk);
	if (write(ready, "r", 1) != 1)
		_exit(2);
	for (i = 0; i < 50 && !(r.created && r.connected); i++) {
		if (pp_nl_wait_event(&nl, &ev, 200) <= 0 ||
		    strcmp(ev.name, "sec-events"))
			continue;
		r.created += ev.event == PAGEPUSH_EVENT_CREATED;
		r.connected += ev.event == PAGEPUSH_EVENT_CONNECTED;
		if (ev.cookie > r.cookie)
			r.cookie = ev.cookie;
		r.stats += ev.has_stats;
	}
	pp_nl_close(&nl);
out:
	if (write(out, &r, sizeof(r)) != sizeof(r))
		_exit(2);
	_exit(0);
}

/* A listener in a child; root creates and connects a session meanwhile. */
static int listen_while_connecting(struct __test_metadata *_metadata,
				   enum drop drop, struct listener_result *r)
{
	struct pp_session_info info = { }, got;
	int ready[2], out[2], status, tcp[2];
	struct pp_nl nl = { };
	pid_t pid;
	char c;

	if (pipe(ready) || pipe(out))
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		close(ready[0]);
		close(out[0]);
		listener_child(drop, ready[1], out[1]);
	}
	close(ready[1]);
	close(out[1]);
	/* Joined, or gave up. */
	if (read(ready[0], &c, 1) == 1) {
		EXPECT_EQ(0, pp_nl_open(&nl));
		EXPECT_EQ(0, pp_nl_new(&nl, SZ_2M, SZ_2M, "sec-events", &info));
		EXPECT_EQ(0, pp_tcp_pair(&tcp[0], &tcp[1]));
		EXPECT_EQ(0, pp_nl_connect(&nl, info.index, tcp[0], -1,
					   0x5ec7e7c00c1eull));
		/* GET has the cookie, for CAP_NET_ADMIN callers. */
		EXPECT_EQ(0, pp_nl_get(&nl, info.index, &got));
		EXPECT_EQ(0x5ec7e7c00c1eull, got.cookie);
		close(tcp[1]);
		close(tcp[0]);
	}
	if (read(out[0], r, sizeof(*r)) != sizeof(*r))
		r->drop = -EIO;
	waitpid(pid, &status, 0);
	close(ready[0]);
	close(out[0]);
	if (nl.sk) {
		pp_nl_del(&nl, info.index);
		pp_nl_close(&nl);
	}
	return 0;
}

/*
 * Events say what happened to a session, to whoever may listen; the
 * cookie and the counters are not part of them (GET has them).
 */
TEST(events_carry_no_cookie)
{
	struct listener_result r = { };

	ASSERT_EQ(0, listen_while_connecting(_metadata, DROP_NONE, &r));
	ASSERT_EQ(0, r.drop);
	ASSERT_EQ(0, r.join);
	EXPECT_EQ(1, r.created);
	EXPECT_EQ(1, r.connected);
	EXPECT_EQ(0u, r.cookie);
	EXPECT_EQ(0, r.stats);
}

/*
 * An unprivileged user who creates a user and a network namespace holds
 * CAP_NET_ADMIN over that network namespace, so GENL_MCAST_CAP_NET_ADMIN
 * lets it join the events group; but the module sends events only to
 * network namespaces the initial user namespace owns, so it hears
 * nothing (and can do nothing: every_operation_refused).
 */
TEST(userns_listener_gets_no_events)
{
	struct listener_result r = { };

	ASSERT_EQ(0, listen_while_connecting(_metadata, DROP_USERNS, &r));
	if (r.drop == 1)
		SKIP(return, "no unprivileged user namespaces on this kernel");
	ASSERT_EQ(0, r.drop);
	ASSERT_EQ(0, r.join);
	EXPECT_EQ(0, r.created);
	EXPECT_EQ(0, r.connected);
	EXPECT_EQ(0u, r.cookie);
	EXPECT_EQ(0, r.stats);
}

/* ---- a malicious source ------------------------------------------------- */

#define SRC_PAGES	4

static void *pattern_page(uint32_t page_size, uint64_t offset)
{
	void *buf = malloc(page_size);

	if (buf)
		pp_pattern(buf, page_size, offset);
	return buf;
}

static int send_pattern(int fd, uint32_t page_size, uint64_t idx,
			uint64_t base, uint32_t chunk)
{
	void *buf = pattern_page(page_size, base + idx * page_size);
	int ret;

	if (!buf)
		return -ENOMEM;
	ret = pp_send_page(fd, idx * page_size, page_size, chunk, buf);
	free(buf);
	return ret;
}

/* Touch @addr in a child; the signal that killed it, or 0. */
static int touch_in_child(volatile char *addr)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		(void)*addr;
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

FIXTURE(evil)
{
	struct pp_fake a, b;	/* @a's source misbehaves, @b's does not */
	char *mem_a, *mem_b;
	int fd_a, fd_b;
};

FIXTURE_VARIANT(evil)
{
	uint32_t page_size;
	uint32_t chunk;
};

FIXTURE_VARIANT_ADD(evil, page_2m) { .page_size = SZ_2M, .chunk = 64 * 1024 };
FIXTURE_VARIANT_ADD(evil, page_4k) { .page_size = SZ_4K, .chunk = 1024 };

/* @b's content differs from @a's at every offset. */
#define B_BASE	(1ull << 50)

FIXTURE_SETUP(evil)
{
	uint64_t size = SRC_PAGES * variant->page_size;

	ASSERT_EQ(0, pp_fake_new(&self->a, size, variant->page_size));
	ASSERT_EQ(0, pp_fake_connect(&self->a, true));
	ASSERT_EQ(0, pp_fake_new(&self->b, size, variant->page_size));
	ASSERT_EQ(0, pp_fake_connect(&self->b, true));
	self->fd_a = open(self->a.dev, O_RDWR);
	self->fd_b = open(self->b.dev, O_RDWR);
	ASSERT_GE(self->fd_a, 0);
	ASSERT_GE(self->fd_b, 0);
	self->mem_a = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
			   self->fd_a, 0);
	self->mem_b = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
			   self->fd_b, 0);
	ASSERT_NE(MAP_FAILED, self->mem_a);
	ASSERT_NE(MAP_FAILED, self->mem_b);
}

FIXTURE_TEARDOWN(evil)
{
	munmap(self->mem_a, self->a.size);
	munmap(self->mem_b, self->b.size);
	close(self->fd_a);
	close(self->fd_b);
	pp_fake_close(&self->a);
	pp_fake_close(&self->b);
}

/*
 * A source that writes beyond its region fails its own session only:
 * the pages it delivered stay as they were, the other session neither
 * sees nor loses anything, and completes.
 */
TEST_F(evil, only_its_own_session)
{
	uint32_t ps = variant->page_size;
	int pre = self->a.src[PAGEPUSH_CHANNEL_PRECOPY];
	struct pp_session_info info;
	char *junk = malloc(ps);
	uint64_t i;

	ASSERT_NE(NULL, junk);
	memset(junk, 0x5a, ps);
	ASSERT_EQ(0, send_pattern(pre, ps, 0, 0, variant->chunk));
	ASSERT_EQ(0, send_pattern(self->b.src[0], ps, 0, B_BASE, variant->chunk));
	ASSERT_EQ(0, pp_wait_stat(&self->a.nl, self->a.info.index,
				  PAGEPUSH_STAT_PAGES_PRESENT, 1, WAIT_MS));
	ASSERT_EQ(0, pp_wait_stat(&self->b.nl, self->b.info.index,
				  PAGEPUSH_STAT_PAGES_PRESENT, 1, WAIT_MS));
	ASSERT_TRUE(pp_pattern_ok(self->mem_a, ps, 0));

	/* Just past the end of @a, with a payload. */
	ASSERT_EQ(0, pp_send_frame(pre, PAGEPUSH_FRAME_PAGE, self->a.size,
				   variant->chunk, junk));
	ASSERT_EQ(0, pp_wait_state(&self->a.nl, self->a.info.index,
				   PAGEPUSH_STATE_FAILED, WAIT_MS, &info));
	EXPECT_NE(NULL, strstr(info.reason, "outside the region"))
		TH_LOG("reason: %s", info.reason);

	/* @a: what arrived is intact and usable, the rest SIGBUS. */
	EXPECT_TRUE(pp_pattern_ok(self->mem_a, ps, 0));
	EXPECT_EQ(SIGBUS, touch_in_child(self->mem_a + ps));
	ASSERT_EQ(0, pp_nl_get(&self->a.nl, self->a.info.index, &info));
	EXPECT_EQ(1u, info.stats[PAGEPUSH_STAT_PAGES_PRESENT]);

	/* @b: untouched, still receiving, and it completes. */
	ASSERT_EQ(0, pp_nl_get(&self->b.nl, self->b.info.index, &info));
	EXPECT_EQ(PAGEPUSH_STATE_CONNECTED, info.state);
	EXPECT_EQ(1u, info.stats[PAGEPUSH_STAT_PAGES_PRESENT]);
	for (i = 1; i < SRC_PAGES; i++)
		ASSERT_EQ(0, send_pattern(self->b.src[i & 1], ps, i, B_BASE,
					  variant->chunk));
	ASSERT_EQ(0, pp_wait_state(&self->b.nl, self->b.info.index,
				   PAGEPUSH_STATE_COMPLETE, WAIT_MS, &info));
	EXPECT_TRUE(pp_pattern_ok(self->mem_b, self->b.size, B_BASE));
	free(junk);
}

/*
 * A page is written once, while no task can see it. A second copy with
 * other bytes is dropped as a duplicate: it cannot change memory a task
 * already uses.
 */
TEST_F(evil, present_page_never_rewritten)
{
	uint32_t ps = variant->page_size;
	int pre = self->a.src[PAGEPUSH_CHANNEL_PRECOPY];
	int post = self->a.src[PAGEPUSH_CHANNEL_POSTCOPY];
	struct pp_session_info info;
	char *junk = malloc(ps);

	ASSERT_NE(NULL, junk);
	memset(junk, 0xa5, ps);
	ASSERT_EQ(0, send_pattern(pre, ps, 2, 0, variant->chunk));
	ASSERT_EQ(0, pp_wait_stat(&self->a.nl, self->a.info.index,
				  PAGEPUSH_STAT_PAGES_PRESENT, 1, WAIT_MS));
	ASSERT_TRUE(pp_pattern_ok(self->mem_a + 2 * ps, ps, 2 * ps));

	/* Again on each channel, and as a ZERO frame. */
	ASSERT_EQ(0, pp_send_page(pre, 2 * ps, ps, variant->chunk, junk));
	ASSERT_EQ(0, pp_send_page(post, 2 * ps, ps, variant->chunk, junk));
	ASSERT_EQ(0, pp_send_frame(pre, PAGEPUSH_FRAME_ZERO, 2 * ps, ps, NULL));
	/* A page after them on each: everything before was parsed. */
	ASSERT_EQ(0, send_pattern(pre, ps, 3, 0, variant->chunk));
	ASSERT_EQ(0, send_pattern(post, ps, 1, 0, variant->chunk));
	ASSERT_EQ(0, pp_wait_stat(&self->a.nl, self->a.info.index,
				  PAGEPUSH_STAT_PAGES_PRESENT, 3, WAIT_MS));
	ASSERT_EQ(0, pp_nl_get(&self->a.nl, self->a.info.index, &info));
	EXPECT_EQ(PAGEPUSH_STATE_CONNECTED, info.state);
	EXPECT_EQ(3u, info.chan[PAGEPUSH_CHANNEL_PRECOPY][PAGEPUSH_CHAN_DUPLICATES] +
		      info.chan[PAGEPUSH_CHANNEL_POSTCOPY][PAGEPUSH_CHAN_DUPLICATES]);
	EXPECT_TRUE(pp_pattern_ok(self->mem_a + ps, 3 * ps, ps));
	free(junk);
}

struct waiter {
	const char *addr;
	uint32_t len;
	uint64_t offset;
	bool ok;
	bool done;
	pthread_t tid;
};

static void *waiter_thread(void *arg)
{
	struct waiter *w = arg;

	w->ok = pp_pattern_ok(w->addr, w->len, w->offset);
	__atomic_store_n(&w->done, true, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * No task sees a page before its last byte arrived: a task touching a
 * page whose chunks are all in but one is still held, then sees all of
 * it.
 */
TEST_F(evil, partial_page_never_visible)
{
	uint32_t ps = variant->page_size;
	int pre = self->a.src[PAGEPUSH_CHANNEL_PRECOPY];
	struct pp_session_info info;
	char *buf = pattern_page(ps, ps);
	struct waiter w = {
		/* The first bytes of the page, which arrive first. */
		.addr = self->mem_a + ps, .len = variant->chunk, .offset = ps,
	};
	uint32_t off;

	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, pthread_create(&w.tid, NULL, waiter_thread, &w));
	ASSERT_EQ(0, pp_wait_stat(&self->a.nl, self->a.info.index,
				  PAGEPUSH_STAT_FAULTS_HELD_NOW, 1, WAIT_MS));
	for (off = 0; off + variant->chunk < ps; off += variant->chunk)
		ASSERT_EQ(0, pp_send_frame(pre, PAGEPUSH_FRAME_PAGE, ps + off,
					   variant->chunk, buf + off));
	/* Every chunk but the last one was received... */
	for (int i = 0; i < 500; i++) {
		ASSERT_EQ(0, pp_nl_get(&self->a.nl, self->a.info.index, &info));
		if (info.chan[PAGEPUSH_CHANNEL_PRECOPY][PAGEPUSH_CHAN_BYTES] ==
		    ps - variant->chunk)
			break;
		usleep(10000);
	}
	EXPECT_EQ(ps - variant->chunk,
		  info.chan[PAGEPUSH_CHANNEL_PRECOPY][PAGEPUSH_CHAN_BYTES]);
	/* ...and the page is not there: the task still waits. */
	usleep(100000);
	ASSERT_EQ(0, pp_nl_get(&self->a.nl, self->a.info.index, &info));
	EXPECT_EQ(0u, info.stats[PAGEPUSH_STAT_PAGES_PRESENT]);
	EXPECT_EQ(1u, info.stats[PAGEPUSH_STAT_FAULTS_HELD_NOW]);
	EXPECT_FALSE(__atomic_load_n(&w.done, __ATOMIC_ACQUIRE));

	ASSERT_EQ(0, pp_send_frame(pre, PAGEPUSH_FRAME_PAGE, ps + off,
				   variant->chunk, buf + off));
	pthread_join(w.tid, NULL);
	EXPECT_TRUE(w.ok);
	EXPECT_TRUE(pp_pattern_ok(self->mem_a + ps, ps, ps));
	free(buf);
}

/* ---- the source: who gets the pages ------------------------------------- */

static const char *pagepush_path(char *buf, size_t len)
{
	const char *env = getenv("PAGEPUSH");
	char exe[PATH_MAX];
	ssize_t n;

	if (env && *env)
		return env;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return "pagepush";
	exe[n] = '\0';
	*strrchr(exe, '/') = '\0';
	snprintf(buf, len, "%s/../../user/pagepush", exe);
	return buf;
}

/* Start 'pagepush serve' on loopback; its port, or -1. */
static int start_serve(const char *file, pid_t *pid)
{
	char path[PATH_MAX + 32], line[128];
	const char *bin = pagepush_path(path, sizeof(path));
	int out[2], port = -1;
	FILE *f;

	if (pipe(out))
		return -1;
	*pid = fork();
	if (*pid < 0)
		return -1;
	if (*pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(out[1], STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		close(out[0]);
		execl(bin, bin, "serve", "--listen", "127.0.0.1:0",
		      "--page-size", "2M", file, (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	f = fdopen(out[0], "r");
	if (f && fgets(line, sizeof(line), f))
		sscanf(line, "listening on 127.0.0.1:%d", &port);
	if (f)
		fclose(f);
	return port;
}

/* Dial @port with a hello; the answer in @h. Returns the socket or -1. */
static int hello(int port, uint16_t role, uint32_t flags, uint64_t cookie,
		 struct pagepush_hello *h)
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_port = htons(port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(h, 0, sizeof(*h));
	h->magic = htole32(PAGEPUSH_WIRE_MAGIC);
	h->version = htole16(PAGEPUSH_WIRE_VERSION);
	h->role = htole16(role);
	h->flags = htole32(flags);
	h->cookie = htole64(cookie);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) ||
	    write(fd, h, sizeof(*h)) != sizeof(*h) ||
	    recv(fd, h, sizeof(*h), MSG_WAITALL) != sizeof(*h)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/*
 * The cookie pairs the two connections of one migration: the source
 * answers a PRECOPY hello with it and accepts a POSTCOPY connection only
 * with it. It does not choose the destination: whoever dials gets the
 * memory. The source's port must be reachable by the destination only.
 */
TEST(source_pairs_connections_by_cookie)
{
	char file[] = "/tmp/pp-sec-src-XXXXXX";
	struct pagepush_hello h;
	int fd, pre, post, port;
	uint64_t cookie;
	pid_t pid;

	fd = mkstemp(file);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, ftruncate(fd, 2 * SZ_2M));
	close(fd);
	port = start_serve(file, &pid);
	ASSERT_GT(port, 0);

	/* Anyone: the precopy role, the cookie, the size. */
	pre = hello(port, PAGEPUSH_CHANNEL_PRECOPY, PAGEPUSH_HELLO_PREEMPT, 0, &h);
	ASSERT_GE(pre, 0);
	EXPECT_EQ(PAGEPUSH_HELLO_OK, le32toh(h.status));
	cookie = le64toh(h.cookie);
	EXPECT_NE(0u, cookie);
	EXPECT_EQ(2u * SZ_2M, le64toh(h.size_bytes));

	/* A postcopy connection without the cookie, or with another one. */
	fd = hello(port, PAGEPUSH_CHANNEL_POSTCOPY, PAGEPUSH_HELLO_PREEMPT, 0, &h);
	ASSERT_GE(fd, 0);
	EXPECT_NE(PAGEPUSH_HELLO_OK, le32toh(h.status));
	close(fd);
	fd = hello(port, PAGEPUSH_CHANNEL_POSTCOPY, PAGEPUSH_HELLO_PREEMPT,
		   cookie ^ 1, &h);
	ASSERT_GE(fd, 0);
	EXPECT_EQ(PAGEPUSH_HELLO_ECOOKIE, le32toh(h.status));
	close(fd);

	/* With the cookie: paired. */
	post = hello(port, PAGEPUSH_CHANNEL_POSTCOPY, PAGEPUSH_HELLO_PREEMPT,
		     cookie, &h);
	ASSERT_GE(post, 0);
	EXPECT_EQ(PAGEPUSH_HELLO_OK, le32toh(h.status));
	EXPECT_EQ(cookie, le64toh(h.cookie));

	close(pre);
	close(post);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	unlink(file);
}

/* ---- limits --------------------------------------------------------------- */

FIXTURE(limits)
{
	struct pp_nl nl;
	int *made;
	int n;
};

FIXTURE_SETUP(limits)
{
	ASSERT_EQ(0, pp_nl_open(&self->nl));
	self->made = calloc(PP_SESSIONS_MAX + 1, sizeof(int));
	ASSERT_NE(NULL, self->made);
	self->n = 0;
}

FIXTURE_TEARDOWN(limits)
{
	int i;

	for (i = 0; i < self->n; i++)
		pp_nl_del(&self->nl, self->made[i]);
	free(self->made);
	pp_nl_close(&self->nl);
}

/*
 * 1024 sessions at most, whoever asks: the next NEW says so. Each costs
 * some kernel memory and a device node, nothing more until pages come.
 */
TEST_F_TIMEOUT(limits, at_most_1024_sessions, 300)
{
	struct pp_session_info info;
	long pages = pp_module_pages();
	int existing = 0, ret = 0;

	ASSERT_EQ(0, pp_nl_dump(&self->nl, count_cb, &existing));
	while (self->n <= PP_SESSIONS_MAX) {
		ret = pp_nl_new(&self->nl, SZ_4K, SZ_4K, NULL, &info);
		if (ret)
			break;
		self->made[self->n++] = info.index;
	}
	EXPECT_EQ(-ENOSPC, ret) TH_LOG("%s", self->nl.msg);
	EXPECT_STREQ("all 1024 sessions are in use", self->nl.msg);
	EXPECT_EQ(PP_SESSIONS_MAX, existing + self->n);
	EXPECT_EQ(pages, pp_module_pages());
	/* One freed: one can be made again. */
	ASSERT_EQ(0, pp_nl_del(&self->nl, self->made[--self->n]));
	ASSERT_EQ(0, pp_nl_new(&self->nl, SZ_4K, SZ_4K, NULL, &info));
	self->made[self->n++] = info.index;
}

/* The largest session, 1 TiB, is accepted and costs no page until used. */
TEST_F(limits, largest_session_costs_nothing_until_used)
{
	static const uint32_t sizes[] = { SZ_2M, SZ_4K };
	struct pp_session_info info;
	long pages = pp_module_pages();
	unsigned int i;

	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, pp_nl_new(&self->nl, PAGEPUSH_SIZE_MAX, sizes[i],
				       NULL, &info)) TH_LOG("%s", self->nl.msg);
		self->made[self->n++] = info.index;
		EXPECT_EQ(PAGEPUSH_SIZE_MAX / sizes[i],
			  info.stats[PAGEPUSH_STAT_PAGES_TOTAL]);
		EXPECT_EQ(pages, pp_module_pages());
	}
	/* One page more is refused by the policy. */
	EXPECT_EQ(-ERANGE, pp_nl_new(&self->nl, PAGEPUSH_SIZE_MAX + SZ_2M,
				     SZ_2M, NULL, &info));
}

TEST_HARNESS_MAIN
