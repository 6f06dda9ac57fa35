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

/* CONNECT with descriptors that are not connected TCP sockets. */
FIXTURE(bad_fd)
{
	struct pp_nl nl;
	struct pp_session_info info;
	int fd[2];
	int good[2];
};

FIXTURE_VARIANT(bad_fd)
{
	int kind;
	const char *msg;
};

enum { FD_PIPE, FD_UDP, FD_UNIX, FD_UNCONNECTED, FD_LISTENING, FD_CLOSED,
       FD_SAME_TWICE, FD_DUP_TWICE };

FIXTURE_VARIANT_ADD(bad_fd, pipe) { .kind = FD_PIPE, .msg = "not a socket" };
FIXTURE_VARIANT_ADD(bad_fd, udp) { .kind = FD_UDP, .msg = "not a TCP socket" };
FIXTURE_VARIANT_ADD(bad_fd, unix_stream) { .kind = FD_UNIX, .msg = "not a TCP socket" };
FIXTURE_VARIANT_ADD(bad_fd, unconnected_tcp) { .kind = FD_UNCONNECTED, .msg = "not connected" };
FIXTURE_VARIANT_ADD(bad_fd, listening_tcp) { .kind = FD_LISTENING, .msg = "not connected" };
FIXTURE_VARIANT_ADD(bad_fd, closed) { .kind = FD_CLOSED, .msg = "not open" };
FIXTURE_VARIANT_ADD(bad_fd, same_fd_twice) { .kind = FD_SAME_TWICE, .msg = "different" };
FIXTURE_VARIANT_ADD(bad_fd, dup_twice) { .kind = FD_DUP_TWICE, .msg = "in use" };

FIXTURE_SETUP(bad_fd)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int sv[2];

	self->fd[0] = self->fd[1] = self->good[0] = self->good[1] = -1;
	ASSERT_EQ(0, pp_nl_open(&self->nl));
	ASSERT_EQ(0, pp_nl_new(&self->nl, SZ_2M, SZ_2M, NULL, &self->info));
	ASSERT_EQ(0, pp_tcp_pair(&self->good[0], &self->good[1]));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

	switch (variant->kind) {
	case FD_PIPE:
		ASSERT_EQ(0, pipe(sv));
		self->fd[0] = sv[0];
		close(sv[1]);
		break;
	case FD_UDP:
		self->fd[0] = socket(AF_INET, SOCK_DGRAM, 0);
		ASSERT_EQ(0, connect(self->fd[0], (struct sockaddr *)&sin, sizeof(sin)));
		break;
	case FD_UNIX:
		ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
		self->fd[0] = sv[0];
		close(sv[1]);
		break;
	case FD_UNCONNECTED:
		self->fd[0] = socket(AF_INET, SOCK_STREAM, 0);
		break;
	case FD_LISTENING:
		self->fd[0] = socket(AF_INET, SOCK_STREAM, 0);
		ASSERT_EQ(0, bind(self->fd[0], (struct sockaddr *)&sin, sizeof(sin)));
		ASSERT_EQ(0, listen(self->fd[0], 1));
		break;
	case FD_CLOSED:
		self->fd[0] = dup(self->good[0]);
		close(self->fd[0]);
		break;
	case FD_SAME_TWICE:
		self->fd[0] = self->good[0];
		self->fd[1] = self->good[0];
		break;
	case FD_DUP_TWICE:
		self->fd[0] = self->good[0];
		self->fd[1] = dup(self->good[0]);
		break;
	}
}

FIXTURE_TEARDOWN(bad_fd)
{
	pp_nl_del(&self->nl, self->info.index);
	pp_nl_close(&self->nl);
	close(self->good[0]);
	close(self->good[1]);
}

TEST_F(bad_fd, connect_refused)
{
	struct pp_session_info info;
	int ret;

	ret = pp_nl_connect(&self->nl, self->info.index, self->fd[0],
			    self->fd[1], 0);
	if (variant->kind == FD_DUP_TWICE) {
		EXPECT_EQ(-EBUSY, ret);
	} else {
		EXPECT_EQ(-EINVAL, ret);
	}
	EXPECT_NE(NULL, strstr(self->nl.msg, variant->msg))
		TH_LOG("message '%s' lacks '%s'", self->nl.msg, variant->msg);
	/* The session is untouched and can still be connected. */
	ASSERT_EQ(0, pp_nl_get(&self->nl, self->info.index, &info));
	EXPECT_EQ(PAGEPUSH_STATE_NEW, info.state);
	EXPECT_EQ(0, pp_nl_connect(&self->nl, self->info.index, self->good[0], -1, 0))
		TH_LOG("%s", self->nl.msg);
	EXPECT_EQ(-EBUSY, pp_nl_connect(&self->nl, self->info.index, self->good[0], -1, 0));
}

TEST_HARNESS_MAIN
