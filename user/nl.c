// SPDX-License-Identifier: GPL-2.0
/*
 * pagepush helper: the "pagepush" generic netlink family over libnl-3.
 *
 * Extended acks are turned on so every error carries the kernel's own
 * explanation; pp_nl_strerror() returns it.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/netlink.h>

#include <netlink/netlink.h>
#include <netlink/genl/genl.h>
#include <netlink/genl/ctrl.h>

#include "nl.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

static const char *const pp_states[] = {
	[PAGEPUSH_STATE_NEW] = "new",
	[PAGEPUSH_STATE_CONNECTED] = "connected",
	[PAGEPUSH_STATE_COMPLETE] = "complete",
	[PAGEPUSH_STATE_FAILED] = "failed",
	[PAGEPUSH_STATE_PAUSED] = "paused",
};

static const char *const pp_events[] = {
	[PAGEPUSH_EVENT_CREATED] = "created",
	[PAGEPUSH_EVENT_CONNECTED] = "connected",
	[PAGEPUSH_EVENT_COMPLETE] = "complete",
	[PAGEPUSH_EVENT_FAILED] = "failed",
	[PAGEPUSH_EVENT_DELETED] = "deleted",
	[PAGEPUSH_EVENT_PAUSED] = "paused",
	[PAGEPUSH_EVENT_RESUMED] = "resumed",
};

const char *pp_state_name(uint32_t state)
{
	if (state < sizeof(pp_states) / sizeof(pp_states[0]) && pp_states[state])
		return pp_states[state];
	return "unknown";
}

const char *pp_event_name(uint32_t event)
{
	if (event < sizeof(pp_events) / sizeof(pp_events[0]) && pp_events[event])
		return pp_events[event];
	return "unknown";
}

static void pp_nl_set_err(struct pp_nl *nl, int err, const char *msg)
{
	nl->err = err;
	snprintf(nl->msg, sizeof(nl->msg), "%s", msg ? msg : "");
}

const char *pp_nl_strerror(const struct pp_nl *nl)
{
	static char buf[320];

	if (nl->msg[0])
		snprintf(buf, sizeof(buf), "%s (%s)", nl->msg, strerror(-nl->err));
	else
		snprintf(buf, sizeof(buf), "%s", strerror(-nl->err));
	return buf;
}

/**
 * pp_nl_open() - connect to the pagepush family
 * @nl: filled in
 *
 * Resolving the family loads the module if it is installed and not loaded.
 *
 * Return: 0, or a negative errno with @nl->msg explaining it.
 */
int pp_nl_open(struct pp_nl *nl)
{
	int one = 1;

	memset(nl, 0, sizeof(*nl));
	nl->mcgrp = -1;
	nl->sk = nl_socket_alloc();
	if (!nl->sk) {
		pp_nl_set_err(nl, -ENOMEM, "cannot allocate a netlink socket");
		return nl->err;
	}
	if (genl_connect(nl->sk)) {
		pp_nl_set_err(nl, -errno ? -errno : -EIO, "cannot open a generic netlink socket");
		goto fail;
	}
	setsockopt(nl_socket_get_fd(nl->sk), SOL_NETLINK, NETLINK_EXT_ACK,
		   &one, sizeof(one));
	setsockopt(nl_socket_get_fd(nl->sk), SOL_NETLINK, NETLINK_CAP_ACK,
		   &one, sizeof(one));
	nl->family = genl_ctrl_resolve(nl->sk, PAGEPUSH_GENL_NAME);
	if (nl->family < 0) {
		pp_nl_set_err(nl, -ENOENT,
			      "the pagepush kernel module is not loaded and could not be loaded: run 'modprobe pagepush' (or 'insmod kernel/pagepush.ko') as root");
		goto fail;
	}
	return 0;

fail:
	nl_socket_free(nl->sk);
	nl->sk = NULL;
	return nl->err;
}

void pp_nl_close(struct pp_nl *nl)
{
	if (nl->sk)
		nl_socket_free(nl->sk);
	nl->sk = NULL;
}

/* Parse a session message (GET reply, NEW reply, event). */
static int pp_parse_session(struct nl_msg *msg, struct pp_session_info *info)
{
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct nlattr *tb[PAGEPUSH_A_MAX + 1];
	struct nlattr *attr;
	int rem;

	memset(info, 0, sizeof(*info));
	if (genlmsg_parse(nlh, 0, tb, PAGEPUSH_A_MAX, NULL))
		return -EINVAL;
	if (!tb[PAGEPUSH_A_INDEX])
		return -EINVAL;
	info->index = nla_get_u32(tb[PAGEPUSH_A_INDEX]);
	if (tb[PAGEPUSH_A_NAME])
		nla_strlcpy(info->name, tb[PAGEPUSH_A_NAME], sizeof(info->name));
	if (tb[PAGEPUSH_A_DEVICE])
		nla_strlcpy(info->device, tb[PAGEPUSH_A_DEVICE], sizeof(info->device));
	if (tb[PAGEPUSH_A_SIZE_BYTES])
		info->size = nla_get_u64(tb[PAGEPUSH_A_SIZE_BYTES]);
	if (tb[PAGEPUSH_A_PAGE_SIZE_BYTES])
		info->page_size = nla_get_u32(tb[PAGEPUSH_A_PAGE_SIZE_BYTES]);
	if (tb[PAGEPUSH_A_STATE])
		info->state = nla_get_u32(tb[PAGEPUSH_A_STATE]);
	if (tb[PAGEPUSH_A_REASON])
		nla_strlcpy(info->reason, tb[PAGEPUSH_A_REASON], sizeof(info->reason));
	if (tb[PAGEPUSH_A_COOKIE])
		info->cookie = nla_get_u64(tb[PAGEPUSH_A_COOKIE]);
	if (tb[PAGEPUSH_A_EVENT])
		info->event = nla_get_u32(tb[PAGEPUSH_A_EVENT]);
	if (tb[PAGEPUSH_A_PAUSE_TIMEOUT])
		info->pause_timeout = nla_get_u32(tb[PAGEPUSH_A_PAUSE_TIMEOUT]);

	if (tb[PAGEPUSH_A_STATS]) {
		info->has_stats = true;
		nla_for_each_nested(attr, tb[PAGEPUSH_A_STATS], rem) {
			int type = nla_type(attr);

			if (type <= PAGEPUSH_STAT_MAX && nla_len(attr) == 8)
				info->stats[type] = nla_get_u64(attr);
		}
	}
	if (tb[PAGEPUSH_A_LATENCY]) {
		nla_for_each_nested(attr, tb[PAGEPUSH_A_LATENCY], rem) {
			int type = nla_type(attr);

			if (type >= 1 && type <= PAGEPUSH_LATENCY_BUCKETS &&
			    nla_len(attr) == 8)
				info->latency[type - 1] = nla_get_u64(attr);
		}
	}
	nla_for_each_attr(attr, genlmsg_attrdata(nlmsg_data(nlh), 0),
			  genlmsg_attrlen(nlmsg_data(nlh), 0), rem) {
		struct nlattr *ctb[PAGEPUSH_CHAN_MAX + 1];
		uint32_t id;
		int i;

		if (nla_type(attr) != PAGEPUSH_A_CHANNEL)
			continue;
		if (nla_parse_nested(ctb, PAGEPUSH_CHAN_MAX, attr, NULL) ||
		    !ctb[PAGEPUSH_CHAN_ID])
			continue;
		id = nla_get_u32(ctb[PAGEPUSH_CHAN_ID]);
		if (id >= PAGEPUSH_NR_CHANNELS)
			continue;
		for (i = PAGEPUSH_CHAN_ID + 1; i <= PAGEPUSH_CHAN_MAX; i++) {
			if (ctb[i] && nla_len(ctb[i]) == 8)
				info->chan[id][i] = nla_get_u64(ctb[i]);
		}
	}
	return 0;
}

struct pp_req_ctx {
	struct pp_nl *nl;
	pp_session_cb cb;
	void *arg;
	bool done;
	int cb_err;
};

static int pp_valid_cb(struct nl_msg *msg, void *arg)
{
	struct pp_req_ctx *ctx = arg;
	struct pp_session_info info;

	if (!ctx->cb)
		return NL_OK;
	if (pp_parse_session(msg, &info))
		return NL_OK;
	ctx->cb_err = ctx->cb(&info, ctx->arg);
	return ctx->cb_err ? NL_STOP : NL_OK;
}

static int pp_finish_cb(struct nl_msg *msg, void *arg)
{
	struct pp_req_ctx *ctx = arg;

	(void)msg;
	ctx->done = true;
	return NL_STOP;
}

static int pp_err_cb(struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg)
{
	struct pp_req_ctx *ctx = arg;
	struct nlmsghdr *nlh = (struct nlmsghdr *)((char *)e - NLMSG_HDRLEN);
	struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];
	const char *msg = NULL;

	(void)nla;
	ctx->done = true;
	if (!e->error)
		return NL_STOP;
	if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
		size_t off = sizeof(*e);
		int len;

		if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
			off += e->msg.nlmsg_len - NLMSG_HDRLEN;
		len = (int)nlh->nlmsg_len - NLMSG_HDRLEN - (int)off;
		if (len > 0 &&
		    !nla_parse(tb, NLMSGERR_ATTR_MAX,
			       (struct nlattr *)((char *)e + off), len, NULL) &&
		    tb[NLMSGERR_ATTR_MSG])
			msg = nla_get_string(tb[NLMSGERR_ATTR_MSG]);
	}
	pp_nl_set_err(ctx->nl, e->error, msg);
	return NL_STOP;
}

/**
 * pp_nl_msg() - a request for the pagepush family
 * @nl: connection
 * @cmd: &enum pagepush_cmd
 * @flags: extra netlink flags (NLM_F_DUMP)
 *
 * Return: the message, or NULL.
 */
struct nl_msg *pp_nl_msg(struct pp_nl *nl, uint8_t cmd, int flags)
{
	struct nl_msg *msg = nlmsg_alloc();

	if (!msg)
		return NULL;
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, nl->family, 0,
			 flags | NLM_F_REQUEST | NLM_F_ACK, cmd,
			 PAGEPUSH_GENL_VERSION)) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

/**
 * pp_nl_send() - send a request and wait for its answer
 * @nl: connection
 * @msg: request, freed here
 * @cb: called for every session in the answer, or NULL
 * @arg: for @cb
 *
 * Return: 0, the non-zero value @cb returned, or a negative errno with the
 * kernel's explanation in @nl->msg.
 */
int pp_nl_send(struct pp_nl *nl, struct nl_msg *msg, pp_session_cb cb,
	       void *arg)
{
	struct pp_req_ctx ctx = { .nl = nl, .cb = cb, .arg = arg };
	struct nl_cb *nlcb;
	int ret;

	pp_nl_set_err(nl, 0, NULL);
	nlcb = nl_cb_clone(nl_socket_get_cb(nl->sk));
	if (!nlcb) {
		nlmsg_free(msg);
		pp_nl_set_err(nl, -ENOMEM, NULL);
		return nl->err;
	}
	nl_cb_set(nlcb, NL_CB_VALID, NL_CB_CUSTOM, pp_valid_cb, &ctx);
	nl_cb_set(nlcb, NL_CB_FINISH, NL_CB_CUSTOM, pp_finish_cb, &ctx);
	nl_cb_set(nlcb, NL_CB_ACK, NL_CB_CUSTOM, pp_finish_cb, &ctx);
	nl_cb_err(nlcb, NL_CB_CUSTOM, pp_err_cb, &ctx);

	ret = nl_send_auto(nl->sk, msg);
	nlmsg_free(msg);
	if (ret < 0) {
		pp_nl_set_err(nl, -EIO, nl_geterror(ret));
		goto out;
	}
	while (!ctx.done && !ctx.cb_err && !nl->err) {
		ret = nl_recvmsgs(nl->sk, nlcb);
		if (ret < 0 && !nl->err && !ctx.cb_err) {
			pp_nl_set_err(nl, ret == -NLE_PERM ? -EPERM : -EIO,
				      nl_geterror(ret));
		}
	}
out:
	nl_cb_put(nlcb);
	if (nl->err)
		return nl->err;
	return ctx.cb_err;
}

static int pp_copy_cb(const struct pp_session_info *info, void *arg)
{
	memcpy(arg, info, sizeof(*info));
	return 0;
}

/* NEW with a pause timeout (seconds; 0: wait for RECOVER or DEL for ever). */
int pp_nl_new_ex(struct pp_nl *nl, uint64_t size, uint32_t page_size,
		 const char *name, uint32_t pause_timeout,
		 struct pp_session_info *out)
{
	struct nl_msg *msg = pp_nl_msg(nl, PAGEPUSH_CMD_NEW, 0);

	if (!msg)
		return -ENOMEM;
	nla_put_u64(msg, PAGEPUSH_A_SIZE_BYTES, size);
	nla_put_u32(msg, PAGEPUSH_A_PAGE_SIZE_BYTES, page_size);
	if (name)
		nla_put_string(msg, PAGEPUSH_A_NAME, name);
	if (pause_timeout)
		nla_put_u32(msg, PAGEPUSH_A_PAUSE_TIMEOUT, pause_timeout);
	return pp_nl_send(nl, msg, out ? pp_copy_cb : NULL, out);
}

int pp_nl_new(struct pp_nl *nl, uint64_t size, uint32_t page_size,
	      const char *name, struct pp_session_info *out)
{
	return pp_nl_new_ex(nl, size, page_size, name, 0, out);
}

int pp_nl_get(struct pp_nl *nl, uint32_t index, struct pp_session_info *out)
{
	struct nl_msg *msg = pp_nl_msg(nl, PAGEPUSH_CMD_GET, 0);

	if (!msg)
		return -ENOMEM;
	nla_put_u32(msg, PAGEPUSH_A_INDEX, index);
	return pp_nl_send(nl, msg, pp_copy_cb, out);
}

int pp_nl_dump(struct pp_nl *nl, pp_session_cb cb, void *arg)
{
	struct nl_msg *msg = pp_nl_msg(nl, PAGEPUSH_CMD_GET, NLM_F_DUMP);

	if (!msg)
		return -ENOMEM;
	return pp_nl_send(nl, msg, cb, arg);
}

int pp_nl_del(struct pp_nl *nl, uint32_t index)
{
	struct nl_msg *msg = pp_nl_msg(nl, PAGEPUSH_CMD_DEL, 0);

	if (!msg)
		return -ENOMEM;
	nla_put_u32(msg, PAGEPUSH_A_INDEX, index);
	return pp_nl_send(nl, msg, NULL, NULL);
}

static int pp_nl_sockets(struct pp_nl *nl, uint8_t cmd, uint32_t index,
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

/* Hand a NEW session its sockets (postcopy_fd -1: one connection). */
int pp_nl_connect(struct pp_nl *nl, uint32_t index, int precopy_fd,
		  int postcopy_fd, uint64_t cookie)
{
	return pp_nl_sockets(nl, PAGEPUSH_CMD_CONNECT, index, precopy_fd,
			     postcopy_fd, cookie);
}

/* Hand a PAUSED session new sockets to the same source, and resume it. */
int pp_nl_recover(struct pp_nl *nl, uint32_t index, int precopy_fd,
		  int postcopy_fd, uint64_t cookie)
{
	return pp_nl_sockets(nl, PAGEPUSH_CMD_RECOVER, index, precopy_fd,
			     postcopy_fd, cookie);
}

struct pp_find_ctx {
	const char *name;
	struct pp_session_info *out;
	bool found;
};

static int pp_find_cb(const struct pp_session_info *info, void *arg)
{
	struct pp_find_ctx *ctx = arg;

	if (!ctx->found && info->name[0] && !strcmp(info->name, ctx->name)) {
		*ctx->out = *info;
		ctx->found = true;
	}
	return 0;
}

/**
 * pp_nl_find() - look a session up by what a user types
 * @nl: connection
 * @dev: "/dev/pagepushN", "pagepushN", "N", or a session name
 * @out: the session
 *
 * Return: 0, -ENOENT, or another negative errno.
 */
int pp_nl_find(struct pp_nl *nl, const char *dev, struct pp_session_info *out)
{
	struct pp_find_ctx ctx = { .name = dev, .out = out };
	const char *p = dev;
	char *end;
	unsigned long index;
	int ret;

	if (!strncmp(p, "/dev/", 5))
		p += 5;
	if (!strncmp(p, "pagepush", 8))
		p += 8;
	if (*p >= '0' && *p <= '9') {
		index = strtoul(p, &end, 10);
		if (!*end && index <= UINT32_MAX)
			return pp_nl_get(nl, index, out);
	}
	ret = pp_nl_dump(nl, pp_find_cb, &ctx);
	if (ret)
		return ret;
	if (!ctx.found) {
		pp_nl_set_err(nl, -ENOENT, "no session has that device or name");
		return -ENOENT;
	}
	return 0;
}

/**
 * pp_nl_subscribe() - receive events on this connection from now on
 * @nl: a connection used for events only
 *
 * Return: 0 or a negative errno.
 */
int pp_nl_subscribe(struct pp_nl *nl)
{
	int grp = genl_ctrl_resolve_grp(nl->sk, PAGEPUSH_GENL_NAME,
					PAGEPUSH_MCGRP_EVENTS);

	if (grp < 0) {
		pp_nl_set_err(nl, -ENOENT, "the pagepush family has no events group");
		return nl->err;
	}
	nl_socket_disable_seq_check(nl->sk);
	if (nl_socket_add_membership(nl->sk, grp)) {
		pp_nl_set_err(nl, -EPERM, "cannot join the events group");
		return nl->err;
	}
	nl->mcgrp = grp;
	return 0;
}

struct pp_event_ctx {
	struct pp_session_info *out;
	bool got;
};

static int pp_event_cb(struct nl_msg *msg, void *arg)
{
	struct pp_event_ctx *ctx = arg;
	struct genlmsghdr *gh = nlmsg_data(nlmsg_hdr(msg));

	if (gh->cmd != PAGEPUSH_CMD_EVENT || ctx->got)
		return NL_SKIP;
	if (!pp_parse_session(msg, ctx->out))
		ctx->got = true;
	return NL_OK;
}

/**
 * pp_nl_wait_event() - the next event
 * @nl: a subscribed connection
 * @out: the event's session, with @out->event set
 * @timeout_ms: -1 to wait for ever
 *
 * Return: 1 with an event, 0 on timeout, or a negative errno.
 */
int pp_nl_wait_event(struct pp_nl *nl, struct pp_session_info *out,
		     int timeout_ms)
{
	struct pp_event_ctx ctx = { .out = out };
	struct pollfd pfd = { .fd = nl_socket_get_fd(nl->sk), .events = POLLIN };
	struct nl_cb *nlcb;
	int ret;

	ret = poll(&pfd, 1, timeout_ms);
	if (ret <= 0)
		return ret < 0 ? -errno : 0;
	nlcb = nl_cb_clone(nl_socket_get_cb(nl->sk));
	if (!nlcb)
		return -ENOMEM;
	nl_cb_set(nlcb, NL_CB_VALID, NL_CB_CUSTOM, pp_event_cb, &ctx);
	ret = nl_recvmsgs(nl->sk, nlcb);
	nl_cb_put(nlcb);
	if (ret < 0 && ret != -NLE_AGAIN)
		return -EIO;
	return ctx.got ? 1 : 0;
}
