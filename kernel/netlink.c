// SPDX-License-Identifier: GPL-2.0
/*
 * pagepush generic netlink family "pagepush", version 1.
 *
 * Documentation/netlink.rst and Documentation/netlink/specs/pagepush.yaml
 * describe it. Every operation needs CAP_NET_ADMIN; every error carries an
 * extended-ack message. The family is usable from any network namespace
 * (the sockets handed to CONNECT live in the caller's), sessions are
 * global like the device nodes they own, and events go to listeners in
 * every namespace that the initial user namespace owns.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/sizes.h>
#include <net/genetlink.h>
#include <net/netlink.h>
#include <net/sock.h>

#include "compat/compat.h"
#include "netlink.h"
#include "session.h"

static struct genl_family pp_family;

enum pp_nl_mcgrp {
	PP_NL_MCGRP_EVENTS,
};

/* Listeners need CAP_NET_ADMIN, as GET does, where the kernel can say so. */
static const struct genl_multicast_group pp_mcgrps[] = {
	[PP_NL_MCGRP_EVENTS] = {
		.name = PAGEPUSH_MCGRP_EVENTS,
		PP_MCGRP_ADMIN_FLAGS
	},
};

static struct netlink_range_validation pp_size_range = {
	.min = 1,
	.max = PAGEPUSH_SIZE_MAX,
};

static struct netlink_range_validation pp_page_size_range = {
	.min = SZ_4K,
	.max = SZ_2M,
};

static struct netlink_range_validation pp_fd_range = {
	.min = 0,
	.max = INT_MAX,
};

static struct netlink_range_validation pp_index_range = {
	.min = 0,
	.max = PP_MAX_SESSIONS - 1,
};

/* Attributes a request may carry; the others are replies only. */
static const struct nla_policy pp_policy[PAGEPUSH_A_MAX + 1] = {
	[PAGEPUSH_A_INDEX] = NLA_POLICY_FULL_RANGE(NLA_U32, &pp_index_range),
	[PAGEPUSH_A_NAME] = { .type = NLA_NUL_STRING,
			      .len = PAGEPUSH_NAME_MAX },
	[PAGEPUSH_A_SIZE_BYTES] = NLA_POLICY_FULL_RANGE(NLA_U64, &pp_size_range),
	[PAGEPUSH_A_PAGE_SIZE_BYTES] =
		NLA_POLICY_FULL_RANGE(NLA_U32, &pp_page_size_range),
	[PAGEPUSH_A_PRECOPY_FD] = NLA_POLICY_FULL_RANGE(NLA_U32, &pp_fd_range),
	[PAGEPUSH_A_POSTCOPY_FD] = NLA_POLICY_FULL_RANGE(NLA_U32, &pp_fd_range),
	[PAGEPUSH_A_COOKIE] = { .type = NLA_U64 },
	[PAGEPUSH_A_PAUSE_TIMEOUT] = { .type = NLA_U32 },
};

static int pp_nl_put_u64(struct sk_buff *skb, int type, u64 value, int pad)
{
	return nla_put_u64_64bit(skb, type, value, pad);
}

static int pp_nl_put_stats(struct sk_buff *skb, struct pp_session *s)
{
	struct nlattr *nest;

	nest = nla_nest_start(skb, PAGEPUSH_A_STATS);
	if (!nest)
		return -EMSGSIZE;
	if (pp_nl_put_u64(skb, PAGEPUSH_STAT_PAGES_TOTAL, s->store.nr_pages,
			  PAGEPUSH_STAT_PAD) ||
	    pp_nl_put_u64(skb, PAGEPUSH_STAT_PAGES_PRESENT,
			  atomic_long_read(&s->store.nr_present),
			  PAGEPUSH_STAT_PAD) ||
	    pp_nl_put_u64(skb, PAGEPUSH_STAT_REQUESTS_SENT,
			  atomic64_read(&s->req.sent), PAGEPUSH_STAT_PAD) ||
	    pp_nl_put_u64(skb, PAGEPUSH_STAT_FAULTS_HELD_NOW,
			  atomic_long_read(&s->faults.held_now),
			  PAGEPUSH_STAT_PAD) ||
	    pp_nl_put_u64(skb, PAGEPUSH_STAT_FAULTS_HELD_TOTAL,
			  atomic64_read(&s->faults.held_total),
			  PAGEPUSH_STAT_PAD) ||
	    pp_nl_put_u64(skb, PAGEPUSH_STAT_FAULTS_SIGBUS,
			  atomic64_read(&s->faults.sigbus), PAGEPUSH_STAT_PAD) ||
	    pp_nl_put_u64(skb, PAGEPUSH_STAT_SPLIT_BRAIN,
			  atomic64_read(&s->split_brain), PAGEPUSH_STAT_PAD) ||
	    pp_nl_put_u64(skb, PAGEPUSH_STAT_PAUSES,
			  atomic64_read(&s->pauses), PAGEPUSH_STAT_PAD) ||
	    pp_nl_put_u64(skb, PAGEPUSH_STAT_RECOVERIES,
			  atomic64_read(&s->recoveries), PAGEPUSH_STAT_PAD)) {
		nla_nest_cancel(skb, nest);
		return -EMSGSIZE;
	}
	nla_nest_end(skb, nest);
	return 0;
}

static int pp_nl_put_channel(struct sk_buff *skb, struct pp_channel *ch)
{
	struct nlattr *nest;

	nest = nla_nest_start(skb, PAGEPUSH_A_CHANNEL);
	if (!nest)
		return -EMSGSIZE;
	if (nla_put_u32(skb, PAGEPUSH_CHAN_ID, ch->id) ||
	    pp_nl_put_u64(skb, PAGEPUSH_CHAN_PAGES, atomic64_read(&ch->pages),
			  PAGEPUSH_CHAN_PAD) ||
	    pp_nl_put_u64(skb, PAGEPUSH_CHAN_BYTES, atomic64_read(&ch->bytes),
			  PAGEPUSH_CHAN_PAD) ||
	    pp_nl_put_u64(skb, PAGEPUSH_CHAN_ZERO_PAGES,
			  atomic64_read(&ch->zero_pages), PAGEPUSH_CHAN_PAD) ||
	    pp_nl_put_u64(skb, PAGEPUSH_CHAN_DUPLICATES,
			  atomic64_read(&ch->duplicates), PAGEPUSH_CHAN_PAD) ||
	    pp_nl_put_u64(skb, PAGEPUSH_CHAN_FAULT_PAGES,
			  atomic64_read(&ch->held_faults), PAGEPUSH_CHAN_PAD) ||
	    pp_nl_put_u64(skb, PAGEPUSH_CHAN_CPU_NS,
			  atomic64_read(&ch->cpu_ns), PAGEPUSH_CHAN_PAD)) {
		nla_nest_cancel(skb, nest);
		return -EMSGSIZE;
	}
	nla_nest_end(skb, nest);
	return 0;
}

static int pp_nl_put_latency(struct sk_buff *skb, struct pp_session *s)
{
	struct nlattr *nest;
	unsigned int i;

	nest = nla_nest_start(skb, PAGEPUSH_A_LATENCY);
	if (!nest)
		return -EMSGSIZE;
	for (i = 0; i < PAGEPUSH_LATENCY_BUCKETS; i++) {
		if (nla_put_u64_64bit(skb, i + 1,
				      atomic64_read(&s->faults.latency[i]),
				      PAGEPUSH_LATENCY_PAD)) {
			nla_nest_cancel(skb, nest);
			return -EMSGSIZE;
		}
	}
	nla_nest_end(skb, nest);
	return 0;
}

static int pp_nl_fill(struct sk_buff *skb, struct pp_session *s, u32 portid,
		      u32 seq, int flags, u8 cmd, enum pagepush_event event)
{
	char reason[PAGEPUSH_REASON_MAX + 1];
	enum pagepush_state state;
	char dev[16];
	unsigned int i;
	void *hdr;

	hdr = genlmsg_put(skb, portid, seq, &pp_family, flags, cmd);
	if (!hdr)
		return -EMSGSIZE;

	pp_session_read_state(s, &state, reason, sizeof(reason));
	snprintf(dev, sizeof(dev), "pagepush%u", s->index);
	if (nla_put_u32(skb, PAGEPUSH_A_INDEX, s->index) ||
	    (s->name[0] && nla_put_string(skb, PAGEPUSH_A_NAME, s->name)) ||
	    nla_put_string(skb, PAGEPUSH_A_DEVICE, dev) ||
	    nla_put_u64_64bit(skb, PAGEPUSH_A_SIZE_BYTES, s->size,
			      PAGEPUSH_A_PAD) ||
	    nla_put_u32(skb, PAGEPUSH_A_PAGE_SIZE_BYTES,
			pp_session_page_size(s)) ||
	    nla_put_u32(skb, PAGEPUSH_A_STATE, state) ||
	    (reason[0] && nla_put_string(skb, PAGEPUSH_A_REASON, reason)) ||
	    (event && nla_put_u32(skb, PAGEPUSH_A_EVENT, event)))
		goto cancel;

	/* Events carry no cookie and no counters: GET has them. */
	if (cmd != PAGEPUSH_CMD_EVENT) {
		if (nla_put_u64_64bit(skb, PAGEPUSH_A_COOKIE,
				      READ_ONCE(s->cookie), PAGEPUSH_A_PAD) ||
		    nla_put_u32(skb, PAGEPUSH_A_PAUSE_TIMEOUT, s->pause_timeout))
			goto cancel;
		if (pp_nl_put_stats(skb, s))
			goto cancel;
		for (i = 0; i < PAGEPUSH_NR_CHANNELS; i++) {
			if (pp_nl_put_channel(skb, &s->chan[i]))
				goto cancel;
		}
		if (pp_nl_put_latency(skb, s))
			goto cancel;
	}
	genlmsg_end(skb, hdr);
	return 0;

cancel:
	genlmsg_cancel(skb, hdr);
	return -EMSGSIZE;
}

static int pp_nl_reply(struct genl_info *info, struct pp_session *s)
{
	struct sk_buff *msg;
	int ret;

	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	ret = pp_nl_fill(msg, s, info->snd_portid, info->snd_seq, 0,
			 info->genlhdr->cmd, 0);
	if (ret) {
		nlmsg_free(msg);
		return ret;
	}
	return genlmsg_reply(msg, info);
}

/*
 * GENL_REQ_ATTR_CHECK() names the missing attribute in the ack; this also
 * says it in words. @what must be a string literal.
 */
static bool pp_nl_missing(struct genl_info *info, int attr, const char *what)
{
	if (!GENL_REQ_ATTR_CHECK(info, attr))
		return false;
	info->extack->_msg = what;
	return true;
}

/* The session named by PAGEPUSH_A_INDEX, with a reference. */
static struct pp_session *pp_nl_session(struct genl_info *info)
{
	struct pp_session *s;

	if (pp_nl_missing(info, PAGEPUSH_A_INDEX, "missing attribute: session index"))
		return ERR_PTR(-EINVAL);
	s = pp_session_lookup(nla_get_u32(info->attrs[PAGEPUSH_A_INDEX]));
	if (!s) {
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[PAGEPUSH_A_INDEX],
				    "no session with that index");
		return ERR_PTR(-ENOENT);
	}
	return s;
}

static int pp_nl_new_doit(struct sk_buff *skb, struct genl_info *info)
{
	const char *name = NULL;
	u32 pause_timeout = 0;
	struct pp_session *s;
	int ret;

	if (pp_nl_missing(info, PAGEPUSH_A_SIZE_BYTES, "missing attribute: size") ||
	    pp_nl_missing(info, PAGEPUSH_A_PAGE_SIZE_BYTES,
			  "missing attribute: page size"))
		return -EINVAL;
	if (info->attrs[PAGEPUSH_A_NAME])
		name = nla_data(info->attrs[PAGEPUSH_A_NAME]);
	if (info->attrs[PAGEPUSH_A_PAUSE_TIMEOUT])
		pause_timeout = nla_get_u32(info->attrs[PAGEPUSH_A_PAUSE_TIMEOUT]);

	s = pp_session_create(nla_get_u64(info->attrs[PAGEPUSH_A_SIZE_BYTES]),
			      nla_get_u32(info->attrs[PAGEPUSH_A_PAGE_SIZE_BYTES]),
			      name, pause_timeout, info->extack);
	if (IS_ERR(s))
		return PTR_ERR(s);
	ret = pp_nl_reply(info, s);
	if (ret) {
		/* The caller never learns the index: undo. */
		NL_SET_ERR_MSG(info->extack, "out of memory for the reply");
		pp_session_delete(s->index);
	}
	pp_session_put(s);
	return ret;
}

static int pp_nl_get_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct pp_session *s;
	int ret;

	s = pp_nl_session(info);
	if (IS_ERR(s))
		return PTR_ERR(s);
	ret = pp_nl_reply(info, s);
	if (ret)
		NL_SET_ERR_MSG(info->extack, "out of memory for the reply");
	pp_session_put(s);
	return ret;
}

static int pp_nl_get_dumpit(struct sk_buff *skb, struct netlink_callback *cb)
{
	u32 index = cb->args[0];
	struct pp_session *s;
	int ret;

	while ((s = pp_session_next(&index))) {
		ret = pp_nl_fill(skb, s, NETLINK_CB(cb->skb).portid,
				 cb->nlh->nlmsg_seq, NLM_F_MULTI,
				 PAGEPUSH_CMD_GET, 0);
		pp_session_put(s);
		if (ret)
			break;
		index++;
	}
	cb->args[0] = index;
	return skb->len;
}

static int pp_nl_del_doit(struct sk_buff *skb, struct genl_info *info)
{
	int ret;

	if (pp_nl_missing(info, PAGEPUSH_A_INDEX, "missing attribute: session index"))
		return -EINVAL;
	ret = pp_session_delete(nla_get_u32(info->attrs[PAGEPUSH_A_INDEX]));
	if (ret == -ENOENT)
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[PAGEPUSH_A_INDEX],
				    "no session with that index");
	return ret;
}

/*
 * The sockets and cookie of CONNECT and RECOVER, and the session they are
 * for; the caller hands the sockets to the session and puts it.
 */
static int pp_nl_sockets(struct genl_info *info, struct pp_session **sp,
			 struct socket **prep, struct socket **postp, u64 *cookie)
{
	struct nlattr *pre_attr = info->attrs[PAGEPUSH_A_PRECOPY_FD];
	struct nlattr *post_attr = info->attrs[PAGEPUSH_A_POSTCOPY_FD];
	struct socket *pre, *post = NULL;
	struct pp_session *s;
	int ret;

	if (pp_nl_missing(info, PAGEPUSH_A_PRECOPY_FD,
			  "missing attribute: precopy socket"))
		return -EINVAL;
	if (post_attr && nla_get_u32(post_attr) == nla_get_u32(pre_attr)) {
		NL_SET_ERR_MSG_ATTR(info->extack, post_attr,
				    "precopy and postcopy must be two different sockets");
		return -EINVAL;
	}
	*cookie = 0;
	if (info->attrs[PAGEPUSH_A_COOKIE])
		*cookie = nla_get_u64(info->attrs[PAGEPUSH_A_COOKIE]);

	s = pp_nl_session(info);
	if (IS_ERR(s))
		return PTR_ERR(s);

	pre = pp_channel_lookup_socket(nla_get_u32(pre_attr), pre_attr,
				       info->extack);
	if (IS_ERR(pre)) {
		ret = PTR_ERR(pre);
		goto out_put;
	}
	if (post_attr) {
		/* Also refuses a second descriptor of the same socket. */
		post = pp_channel_lookup_socket(nla_get_u32(post_attr),
						post_attr, info->extack);
		if (IS_ERR(post)) {
			pp_channel_put_socket(pre);
			ret = PTR_ERR(post);
			goto out_put;
		}
	}
	*sp = s;
	*prep = pre;
	*postp = post;
	return 0;

out_put:
	pp_session_put(s);
	return ret;
}

static int pp_nl_connect_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct socket *pre, *post;
	struct pp_session *s;
	u64 cookie;
	int ret;

	ret = pp_nl_sockets(info, &s, &pre, &post, &cookie);
	if (ret)
		return ret;
	ret = pp_session_connect(s, pre, post, cookie, info->extack);
	pp_session_put(s);
	return ret;
}

static int pp_nl_recover_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct socket *pre, *post;
	struct pp_session *s;
	u64 cookie;
	int ret;

	if (pp_nl_missing(info, PAGEPUSH_A_COOKIE,
			  "missing attribute: the migration cookie"))
		return -EINVAL;
	ret = pp_nl_sockets(info, &s, &pre, &post, &cookie);
	if (ret)
		return ret;
	ret = pp_session_recover(s, pre, post, cookie, info->extack);
	pp_session_put(s);
	return ret;
}

static const struct genl_ops pp_ops[] = {
	{
		.cmd	= PAGEPUSH_CMD_NEW,
		.doit	= pp_nl_new_doit,
		.flags	= GENL_ADMIN_PERM,
	},
	{
		.cmd	= PAGEPUSH_CMD_GET,
		.doit	= pp_nl_get_doit,
		.dumpit	= pp_nl_get_dumpit,
		.flags	= GENL_ADMIN_PERM,
	},
	{
		.cmd	= PAGEPUSH_CMD_DEL,
		.doit	= pp_nl_del_doit,
		.flags	= GENL_ADMIN_PERM,
	},
	{
		.cmd	= PAGEPUSH_CMD_CONNECT,
		.doit	= pp_nl_connect_doit,
		.flags	= GENL_ADMIN_PERM,
	},
	{
		.cmd	= PAGEPUSH_CMD_RECOVER,
		.doit	= pp_nl_recover_doit,
		.flags	= GENL_ADMIN_PERM,
	},
};

static struct genl_family pp_family __ro_after_init = {
	.name		= PAGEPUSH_GENL_NAME,
	.version	= PAGEPUSH_GENL_VERSION,
	.maxattr	= PAGEPUSH_A_MAX,
	.policy		= pp_policy,
	.netnsok	= true,
	/* Sessions have their own locks; DEL may wait for threads. */
	.parallel_ops	= true,
	.module		= THIS_MODULE,
	.ops		= pp_ops,
	.n_ops		= ARRAY_SIZE(pp_ops),
	/*
	 * resv_start_op 0: every command gets strict attribute validation
	 * and its header's reserved fields checked.
	 */
	.mcgrps		= pp_mcgrps,
	.n_mcgrps	= ARRAY_SIZE(pp_mcgrps),
};

/**
 * pp_nl_notify() - announce a session event on the events group
 * @s: the session
 * @event: what happened
 *
 * Context: process context.
 */
void pp_nl_notify(struct pp_session *s, enum pagepush_event event)
{
	struct sk_buff *msg, *copy;
	struct net *net;

	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return;
	if (pp_nl_fill(msg, s, 0, 0, 0, PAGEPUSH_CMD_EVENT, event)) {
		nlmsg_free(msg);
		return;
	}
	/*
	 * Sessions are global, so their events go to every network
	 * namespace, but only to those the initial user namespace owns: a
	 * listener must hold CAP_NET_ADMIN over its namespace's owner, which
	 * anyone has over a user namespace of their own.
	 */
	rcu_read_lock();
	for_each_net_rcu(net) {
		if (net->user_ns != &init_user_ns)
			continue;
		copy = skb_clone(msg, GFP_ATOMIC);
		if (!copy)
			break;
		genlmsg_multicast_netns(&pp_family, net, copy, 0,
					PP_NL_MCGRP_EVENTS, GFP_ATOMIC);
	}
	rcu_read_unlock();
	nlmsg_free(msg);
}

/**
 * pp_nl_init() - register the family
 *
 * Return: 0 or a negative errno.
 */
int __init pp_nl_init(void)
{
	return genl_register_family(&pp_family);
}

/**
 * pp_nl_exit() - unregister the family; waits for running operations
 */
void pp_nl_exit(void)
{
	genl_unregister_family(&pp_family);
}

MODULE_ALIAS_GENL_FAMILY(PAGEPUSH_GENL_NAME);
