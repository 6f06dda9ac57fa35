// SPDX-License-Identifier: GPL-2.0
/*
 * Sessions over generic netlink: NEW, GET (do and dump), DEL, the device
 * node, events, and every way a request can be wrong.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netlink/genl/genl.h>

#include "../kselftest_harness.h"
#include "pp_test.h"

FIXTURE(session)
{
	struct pp_nl nl;
	int created[8];
	int n;
};

FIXTURE_SETUP(session)
{
	ASSERT_EQ(0, pp_nl_open(&self->nl)) TH_LOG("%s", pp_nl_strerror(&self->nl));
	self->n = 0;
}

FIXTURE_TEARDOWN(session)
{
	int i;

	for (i = 0; i < self->n; i++)
		pp_nl_del(&self->nl, self->created[i]);
	pp_nl_close(&self->nl);
}

static int new_session(FIXTURE_DATA(session) *self, uint64_t size,
		       uint32_t page_size, const char *name,
		       struct pp_session_info *info)
{
	int ret = pp_nl_new(&self->nl, size, page_size, name, info);

	if (!ret && self->n < 8)
		self->created[self->n++] = info->index;
	return ret;
}

TEST_F(session, new_get_del)
{
	struct pp_session_info info, got;
	char path[64];
	struct stat st;

	ASSERT_EQ(0, new_session(self, 64 << 20, SZ_2M, "roundtrip", &info));
	EXPECT_EQ(PAGEPUSH_STATE_NEW, info.state);
	EXPECT_EQ(64u << 20, info.size);
	EXPECT_EQ(SZ_2M, info.page_size);
	EXPECT_STREQ("roundtrip", info.name);
	EXPECT_EQ(32u, info.stats[PAGEPUSH_STAT_PAGES_TOTAL]);
	EXPECT_EQ(0u, info.stats[PAGEPUSH_STAT_PAGES_PRESENT]);

	ASSERT_EQ(0, pp_nl_get(&self->nl, info.index, &got));
	EXPECT_EQ(info.index, got.index);
	EXPECT_STREQ("roundtrip", got.name);
	EXPECT_EQ(PAGEPUSH_STATE_NEW, got.state);

	snprintf(path, sizeof(path), "/dev/%s", info.device);
	ASSERT_EQ(0, stat(path, &st)) TH_LOG("%s: %s", path, strerror(errno));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(0600, st.st_mode & 0777);

	ASSERT_EQ(0, pp_nl_del(&self->nl, info.index));
	EXPECT_EQ(-ENOENT, pp_nl_get(&self->nl, info.index, &got));
	EXPECT_NE(0, self->nl.msg[0]);
	EXPECT_EQ(-1, stat(path, &st));
	EXPECT_EQ(ENOENT, errno);
}

struct dump_ctx {
	uint32_t want[3];
	int seen[3];
	int total;
};

static int dump_cb(const struct pp_session_info *info, void *arg)
{
	struct dump_ctx *ctx = arg;
	int i;

	ctx->total++;
	for (i = 0; i < 3; i++)
		if (info->index == ctx->want[i])
			ctx->seen[i]++;
	return 0;
}

TEST_F(session, dump_lists_every_session)
{
	struct dump_ctx ctx = { };
	struct pp_session_info info;
	int i;

	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, new_session(self, (i + 1) * SZ_4K * 16,
					 SZ_4K, NULL, &info));
		ctx.want[i] = info.index;
	}
	ASSERT_EQ(0, pp_nl_dump(&self->nl, dump_cb, &ctx));
	for (i = 0; i < 3; i++)
		EXPECT_EQ(1, ctx.seen[i]);
	EXPECT_GE(ctx.total, 3);
}

TEST_F(session, name_by_lookup_and_unique)
{
	struct pp_session_info a, b, found;

	ASSERT_EQ(0, new_session(self, SZ_2M, SZ_2M, "dup.name-1", &a));
	EXPECT_EQ(-EEXIST, new_session(self, SZ_2M, SZ_2M, "dup.name-1", &b));
	EXPECT_NE(0, strstr(self->nl.msg, "name") != NULL);
	ASSERT_EQ(0, pp_nl_find(&self->nl, "dup.name-1", &found));
	EXPECT_EQ(a.index, found.index);
}

/* A NEW request with the given attributes; returns the errno. */
static int raw_new(struct pp_nl *nl, int64_t size, int64_t page_size,
		   const char *name)
{
	struct nl_msg *msg = pp_nl_msg(nl, PAGEPUSH_CMD_NEW, 0);
	struct pp_session_info info;
	int ret;

	if (size >= 0)
		nla_put_u64(msg, PAGEPUSH_A_SIZE_BYTES, size);
	if (page_size >= 0)
		nla_put_u32(msg, PAGEPUSH_A_PAGE_SIZE_BYTES, page_size);
	if (name)
		nla_put_string(msg, PAGEPUSH_A_NAME, name);
	ret = pp_nl_send(nl, msg, NULL, NULL);
	if (!ret) {
		/* Unexpected success: clean up by name or newest index. */
		if (name && !pp_nl_find(nl, name, &info))
			pp_nl_del(nl, info.index);
	}
	return ret;
}

FIXTURE(bad_new)
{
	struct pp_nl nl;
};

FIXTURE_VARIANT(bad_new)
{
	int64_t size;
	int64_t page_size;
	const char *name;
	int err;
	const char *msg;	/* a word the kernel's message must hold */
};

FIXTURE_VARIANT_ADD(bad_new, missing_size)
{
	.size = -1, .page_size = SZ_2M, .err = -EINVAL, .msg = "missing",
};

FIXTURE_VARIANT_ADD(bad_new, missing_page_size)
{
	.size = SZ_2M, .page_size = -1, .err = -EINVAL, .msg = "missing",
};

FIXTURE_VARIANT_ADD(bad_new, size_zero)
{
	.size = 0, .page_size = SZ_2M, .err = -ERANGE, .msg = "range",
};

FIXTURE_VARIANT_ADD(bad_new, size_not_multiple)
{
	.size = SZ_2M + SZ_4K, .page_size = SZ_2M, .err = -EINVAL, .msg = "multiple",
};

FIXTURE_VARIANT_ADD(bad_new, size_too_large)
{
	.size = PAGEPUSH_SIZE_MAX + SZ_2M, .page_size = SZ_2M, .err = -ERANGE,
	.msg = "range",
};

FIXTURE_VARIANT_ADD(bad_new, page_size_1m)
{
	.size = 4 << 20, .page_size = 1 << 20, .err = -EINVAL, .msg = "page size",
};

FIXTURE_VARIANT_ADD(bad_new, page_size_8k)
{
	.size = 4 << 20, .page_size = 8192, .err = -EINVAL, .msg = "page size",
};

FIXTURE_VARIANT_ADD(bad_new, name_too_long)
{
	.size = SZ_2M, .page_size = SZ_2M,
	.name = "a-name-that-is-much-longer-than-31-characters",
	.err = -EINVAL, .msg = "policy",
};

FIXTURE_VARIANT_ADD(bad_new, name_bad_chars)
{
	.size = SZ_2M, .page_size = SZ_2M, .name = "no/slash",
	.err = -EINVAL, .msg = "name",
};

FIXTURE_SETUP(bad_new)
{
	ASSERT_EQ(0, pp_nl_open(&self->nl));
}

FIXTURE_TEARDOWN(bad_new)
{
	pp_nl_close(&self->nl);
}

TEST_F(bad_new, refused_with_message)
{
	int ret = raw_new(&self->nl, variant->size, variant->page_size,
			  variant->name);

	ASSERT_EQ(variant->err, ret) TH_LOG("got %d: %s", ret, self->nl.msg);
	EXPECT_NE(0, self->nl.msg[0]) TH_LOG("no extack message");
	EXPECT_NE(NULL, strstr(self->nl.msg, variant->msg))
		TH_LOG("message '%s' lacks '%s'", self->nl.msg, variant->msg);
}

TEST_F(session, unknown_index)
{
	struct pp_session_info info;

	EXPECT_EQ(-ENOENT, pp_nl_get(&self->nl, 1000, &info));
	EXPECT_STREQ("no session with that index", self->nl.msg);
	EXPECT_EQ(-ENOENT, pp_nl_del(&self->nl, 1000));
	EXPECT_STREQ("no session with that index", self->nl.msg);
	/* Out of the policy's range. */
	EXPECT_EQ(-ERANGE, pp_nl_del(&self->nl, 5000));
	EXPECT_NE(0, self->nl.msg[0]);
}

TEST_F(session, get_and_del_need_index)
{
	struct nl_msg *msg = pp_nl_msg(&self->nl, PAGEPUSH_CMD_DEL, 0);

	EXPECT_EQ(-EINVAL, pp_nl_send(&self->nl, msg, NULL, NULL));
	EXPECT_NE(NULL, strstr(self->nl.msg, "missing"));
}

TEST_F(session, reply_only_attribute_refused)
{
	struct nl_msg *msg = pp_nl_msg(&self->nl, PAGEPUSH_CMD_NEW, 0);

	nla_put_u64(msg, PAGEPUSH_A_SIZE_BYTES, SZ_2M);
	nla_put_u32(msg, PAGEPUSH_A_PAGE_SIZE_BYTES, SZ_2M);
	nla_put_u32(msg, PAGEPUSH_A_STATE, PAGEPUSH_STATE_COMPLETE);
	EXPECT_EQ(-EINVAL, pp_nl_send(&self->nl, msg, NULL, NULL));
	EXPECT_NE(0, self->nl.msg[0]);
}

TEST_F(session, unprivileged_gets_eperm)
{
	pid_t pid = fork();
	int status;

	ASSERT_GE(pid, 0);
	if (pid == 0) {
		struct pp_nl nl;
		struct pp_session_info info;

		if (setgid(65534) || setuid(65534))
			_exit(10);
		if (pp_nl_open(&nl))
			_exit(11);
		if (pp_nl_new(&nl, SZ_2M, SZ_2M, NULL, &info) != -EPERM)
			_exit(12);
		if (pp_nl_dump(&nl, NULL, NULL) != -EPERM)
			_exit(13);
		if (pp_nl_del(&nl, 0) != -EPERM)
			_exit(14);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

TEST_F(session, events_created_and_deleted)
{
	struct pp_session_info info, ev;
	struct pp_nl evnl;
	int got_created = 0, got_deleted = 0, i;

	ASSERT_EQ(0, pp_nl_open(&evnl));
	ASSERT_EQ(0, pp_nl_subscribe(&evnl));
	ASSERT_EQ(0, new_session(self, SZ_2M, SZ_2M, "evt", &info));
	ASSERT_EQ(0, pp_nl_del(&self->nl, info.index));
	for (i = 0; i < 20 && !(got_created && got_deleted); i++) {
		if (pp_nl_wait_event(&evnl, &ev, 500) <= 0 || ev.index != info.index)
			continue;
		if (ev.event == PAGEPUSH_EVENT_CREATED) {
			got_created++;
			EXPECT_STREQ("evt", ev.name);
			EXPECT_EQ(PAGEPUSH_STATE_NEW, ev.state);
		}
		if (ev.event == PAGEPUSH_EVENT_DELETED) {
			got_deleted++;
			EXPECT_EQ(PAGEPUSH_STATE_FAILED, ev.state);
			EXPECT_STREQ("session deleted", ev.reason);
		}
	}
	EXPECT_EQ(1, got_created);
	EXPECT_EQ(1, got_deleted);
	pp_nl_close(&evnl);
}

/*
 * Descriptors that are not a connected TCP socket free for a session,
 * handed to a command that adopts sockets: CONNECT on a NEW session, and
 * RECOVER on a PAUSED one, with the same table. Each is refused with
 * EINVAL (EBUSY when the kernel uses the socket already) and a message,
 * the session keeps its state, and the command then works with a good
 * socket: a refused one, even a good precopy socket refused along with a
 * bad postcopy one, is let go.
 */
FIXTURE(bad_fd)
{
	struct pp_nl nl;
	struct pp_session_info info;
	struct pp_fake other;	/* a session whose socket is adopted */
	int fd[2];		/* precopy, postcopy (-1: none) */
	int bad;		/* the wrong descriptor, closed at teardown */
	int good[2];		/* a connected pair; good[0] to the kernel */
	const char *skip;
};

FIXTURE_VARIANT(bad_fd)
{
	int kind;
	bool post;		/* the bad one as POSTCOPY, with a good PRECOPY */
	int err;
	const char *msg;
};

enum {
	FD_PIPE, FD_UDP, FD_UNIX, FD_UNCONNECTED, FD_LISTENING, FD_CLOSED,
	FD_NOT_OPEN, FD_PEER_CLOSED, FD_MPTCP, FD_ADOPTED, FD_SAME_TWICE,
	FD_DUP_TWICE,
};

FIXTURE_VARIANT_ADD(bad_fd, pipe)
{
	.kind = FD_PIPE, .err = -EINVAL, .msg = "not a socket",
};

FIXTURE_VARIANT_ADD(bad_fd, udp)
{
	.kind = FD_UDP, .err = -EINVAL, .msg = "not a TCP socket",
};

FIXTURE_VARIANT_ADD(bad_fd, unix_stream)
{
	.kind = FD_UNIX, .err = -EINVAL, .msg = "not a TCP socket",
};

FIXTURE_VARIANT_ADD(bad_fd, unconnected_tcp)
{
	.kind = FD_UNCONNECTED, .err = -EINVAL, .msg = "not connected",
};

FIXTURE_VARIANT_ADD(bad_fd, listening_tcp)
{
	.kind = FD_LISTENING, .err = -EINVAL, .msg = "not connected",
};

FIXTURE_VARIANT_ADD(bad_fd, closed)
{
	.kind = FD_CLOSED, .err = -EINVAL, .msg = "not open",
};

FIXTURE_VARIANT_ADD(bad_fd, fd_number_not_open)
{
	.kind = FD_NOT_OPEN, .err = -EINVAL, .msg = "not open",
};

FIXTURE_VARIANT_ADD(bad_fd, tcp_closed_by_peer)
{
	.kind = FD_PEER_CLOSED, .err = -EINVAL, .msg = "not connected",
};

FIXTURE_VARIANT_ADD(bad_fd, mptcp)
{
	.kind = FD_MPTCP, .err = -EINVAL, .msg = "not a TCP socket",
};

FIXTURE_VARIANT_ADD(bad_fd, adopted_by_another_session)
{
	.kind = FD_ADOPTED, .err = -EBUSY, .msg = "in use",
};

FIXTURE_VARIANT_ADD(bad_fd, same_fd_twice)
{
	.kind = FD_SAME_TWICE, .err = -EINVAL, .msg = "different",
};

FIXTURE_VARIANT_ADD(bad_fd, dup_twice)
{
	.kind = FD_DUP_TWICE, .err = -EBUSY, .msg = "in use",
};

FIXTURE_VARIANT_ADD(bad_fd, postcopy_pipe)
{
	.kind = FD_PIPE, .post = true, .err = -EINVAL, .msg = "not a socket",
};

FIXTURE_VARIANT_ADD(bad_fd, postcopy_udp)
{
	.kind = FD_UDP, .post = true, .err = -EINVAL, .msg = "not a TCP socket",
};

FIXTURE_VARIANT_ADD(bad_fd, postcopy_unix_stream)
{
	.kind = FD_UNIX, .post = true, .err = -EINVAL, .msg = "not a TCP socket",
};

FIXTURE_VARIANT_ADD(bad_fd, postcopy_unconnected_tcp)
{
	.kind = FD_UNCONNECTED, .post = true, .err = -EINVAL, .msg = "not connected",
};

FIXTURE_VARIANT_ADD(bad_fd, postcopy_listening_tcp)
{
	.kind = FD_LISTENING, .post = true, .err = -EINVAL, .msg = "not connected",
};

FIXTURE_VARIANT_ADD(bad_fd, postcopy_closed)
{
	.kind = FD_CLOSED, .post = true, .err = -EINVAL, .msg = "not open",
};

FIXTURE_VARIANT_ADD(bad_fd, postcopy_fd_number_not_open)
{
	.kind = FD_NOT_OPEN, .post = true, .err = -EINVAL, .msg = "not open",
};

FIXTURE_VARIANT_ADD(bad_fd, postcopy_adopted_by_another_session)
{
	.kind = FD_ADOPTED, .post = true, .err = -EBUSY, .msg = "in use",
};

/* A connected MPTCP pair over loopback: a stream socket, but not TCP. */
static int mptcp_client(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int lfd, fd;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP);
	if (lfd < 0)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP);
	if (fd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) ||
	    listen(lfd, 1) || getsockname(lfd, (struct sockaddr *)&sin, &len) ||
	    connect(fd, (struct sockaddr *)&sin, sizeof(sin))) {
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	close(lfd);
	return fd;
}

FIXTURE_SETUP(bad_fd)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int sv[2], bad = -1;

	self->fd[0] = self->fd[1] = self->bad = -1;
	self->good[0] = self->good[1] = -1;
	self->skip = NULL;
	memset(&self->other, 0, sizeof(self->other));
	ASSERT_EQ(0, pp_nl_open(&self->nl));
	ASSERT_EQ(0, pp_nl_new(&self->nl, SZ_2M, SZ_2M, NULL, &self->info));
	ASSERT_EQ(0, pp_tcp_pair(&self->good[0], &self->good[1]));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

	switch (variant->kind) {
	case FD_PIPE:
		ASSERT_EQ(0, pipe(sv));
		bad = sv[0];
		close(sv[1]);
		break;
	case FD_UDP:
		bad = socket(AF_INET, SOCK_DGRAM, 0);
		ASSERT_EQ(0, connect(bad, (struct sockaddr *)&sin, sizeof(sin)));
		break;
	case FD_UNIX:
		ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
		bad = sv[0];
		close(sv[1]);
		break;
	case FD_UNCONNECTED:
		bad = socket(AF_INET, SOCK_STREAM, 0);
		break;
	case FD_LISTENING:
		bad = socket(AF_INET, SOCK_STREAM, 0);
		ASSERT_EQ(0, bind(bad, (struct sockaddr *)&sin, sizeof(sin)));
		ASSERT_EQ(0, listen(bad, 1));
		break;
	case FD_PEER_CLOSED:
		/* Connected once; the peer closed: CLOSE_WAIT. */
		ASSERT_EQ(0, pp_tcp_pair(&bad, &sv[1]));
		close(sv[1]);
		usleep(100000);
		break;
	case FD_MPTCP:
		bad = mptcp_client();
		if (bad < 0)
			self->skip = "no MPTCP sockets here";
		break;
	case FD_ADOPTED:
		/* Another session's precopy socket, which we still hold. */
		ASSERT_EQ(0, pp_fake_new(&self->other, SZ_2M, SZ_2M));
		ASSERT_EQ(0, pp_fake_connect(&self->other, false));
		bad = dup(self->other.dst[0]);
		break;
	case FD_CLOSED:
		/* A number that was a socket a moment ago. */
		bad = dup(self->good[0]);
		close(bad);
		break;
	case FD_NOT_OPEN:
		/* The largest the policy allows, above any descriptor limit. */
		break;
	case FD_SAME_TWICE:
		self->fd[0] = self->good[0];
		self->fd[1] = self->good[0];
		return;
	case FD_DUP_TWICE:
		self->fd[0] = self->good[0];
		self->fd[1] = self->bad = dup(self->good[0]);
		return;
	}

	/* Closed at teardown, unless it is only a number. */
	if (variant->kind != FD_CLOSED)
		self->bad = bad;
	if (variant->kind == FD_NOT_OPEN)
		bad = INT32_MAX;
	if (variant->post) {
		self->fd[0] = self->good[0];
		self->fd[1] = bad;
	} else {
		self->fd[0] = bad;
		self->fd[1] = -1;
	}
}

FIXTURE_TEARDOWN(bad_fd)
{
	pp_nl_del(&self->nl, self->info.index);
	pp_nl_close(&self->nl);
	if (self->other.nl.sk)
		pp_fake_close(&self->other);
	if (self->bad >= 0)
		close(self->bad);
	close(self->good[0]);
	close(self->good[1]);
}

/*
 * @cmd with the variant's descriptors, on the fixture's session, which is
 * in @state: refused, nothing changes; then @cmd with the good socket
 * works. The same table serves CONNECT and RECOVER.
 */
static void bad_fd_refused(struct __test_metadata *_metadata,
			   FIXTURE_DATA(bad_fd) *self,
			   const FIXTURE_VARIANT(bad_fd) *variant,
			   uint8_t cmd, uint32_t state, uint64_t cookie)
{
	struct pp_session_info info;
	int ret;

	ret = pp_nl_attach(&self->nl, cmd, self->info.index, self->fd[0],
			   self->fd[1], cookie);
	EXPECT_EQ(variant->err, ret) TH_LOG("%s", self->nl.msg);
	EXPECT_NE(NULL, strstr(self->nl.msg, variant->msg))
		TH_LOG("message '%s' lacks '%s'", self->nl.msg, variant->msg);
	ASSERT_EQ(0, pp_nl_get(&self->nl, self->info.index, &info));
	EXPECT_EQ(state, info.state) TH_LOG("%s '%s'", pp_state_name(info.state),
					    info.reason);
	EXPECT_EQ(0, pp_nl_attach(&self->nl, cmd, self->info.index,
				  self->good[0], -1, cookie))
		TH_LOG("%s", pp_nl_strerror(&self->nl));
	ASSERT_EQ(0, pp_nl_get(&self->nl, self->info.index, &info));
	EXPECT_NE(state, info.state);
}

TEST_F(bad_fd, connect_refused)
{
	if (self->skip)
		SKIP(return, "%s", self->skip);
	bad_fd_refused(_metadata, self, variant, PAGEPUSH_CMD_CONNECT,
		       PAGEPUSH_STATE_NEW, 0);
	/* Connected now: a second CONNECT finds it busy. */
	EXPECT_EQ(-EBUSY, pp_nl_connect(&self->nl, self->info.index, self->good[0], -1, 0));
}

/*
 * The same table against RECOVER, on a session PAUSED by the loss of its
 * source. Skipped by a module that fails such a session instead, or that
 * has no RECOVER.
 */
TEST_F(bad_fd, recover_refused)
{
	struct pp_session_info info;
	int pre, src, ret, i;

	if (self->skip)
		SKIP(return, "%s", self->skip);
	ASSERT_EQ(0, pp_tcp_pair(&pre, &src));
	ASSERT_EQ(0, pp_nl_connect(&self->nl, self->info.index, pre, -1, 42))
		TH_LOG("%s", pp_nl_strerror(&self->nl));
	close(pre);
	close(src);
	for (i = 0; i < 1000; i++) {
		ASSERT_EQ(0, pp_nl_get(&self->nl, self->info.index, &info));
		if (info.state != PAGEPUSH_STATE_CONNECTED)
			break;
		usleep(10000);
	}
	if (info.state == PAGEPUSH_STATE_FAILED)
		SKIP(return, "a lost source fails the session: no PAUSED state ('%s')",
		     info.reason);
	ASSERT_EQ(PAGEPUSH_STATE_PAUSED, info.state)
		TH_LOG("%s '%s'", pp_state_name(info.state), info.reason);

	ret = pp_nl_attach(&self->nl, PAGEPUSH_CMD_RECOVER, self->info.index,
			   -1, -1, info.cookie);
	if (ret == -EOPNOTSUPP)
		SKIP(return, "no RECOVER command");
	bad_fd_refused(_metadata, self, variant, PAGEPUSH_CMD_RECOVER,
		       PAGEPUSH_STATE_PAUSED, info.cookie);
}

TEST_HARNESS_MAIN
