// SPDX-License-Identifier: GPL-2.0
/*
 * pagepush channels: adopting a connected TCP socket from user space,
 * starting and stopping the thread that receives from it.
 *
 * A session owns the socket file it adopted (NBD-style) until teardown:
 * the caller may close its descriptor at once. A socket is marked through
 * sk_user_data while adopted, so it cannot serve two channels at once.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/file.h>
#include <linux/kthread.h>
#include <linux/net.h>
#include <linux/sched/task.h>
#include <net/netlink.h>
#include <net/sock.h>
#include <net/tcp.h>

#include "session.h"

/* How long the return path may block before the session fails. */
#define PP_SEND_TIMEOUT_SECS	15

static const char * const pp_channel_names[PAGEPUSH_NR_CHANNELS] = {
	[PAGEPUSH_CHANNEL_PRECOPY] = "precopy",
	[PAGEPUSH_CHANNEL_POSTCOPY] = "postcopy",
};

/**
 * pp_channel_name() - printable name of a channel
 * @id: &enum pagepush_channel
 *
 * Return: "precopy" or "postcopy".
 */
const char *pp_channel_name(unsigned int id)
{
	return id < PAGEPUSH_NR_CHANNELS ? pp_channel_names[id] : "unknown";
}

/**
 * pp_channel_init() - set up an idle channel
 * @ch: the channel, zeroed
 * @s: its session
 * @id: &enum pagepush_channel
 */
void pp_channel_init(struct pp_channel *ch, struct pp_session *s,
		     unsigned int id)
{
	ch->session = s;
	ch->id = id;
	ch->partial_idx = PP_NO_PAGE;
	init_completion(&ch->done);
}

/**
 * pp_channel_lookup_socket() - take a reference on a connected TCP socket
 * @fd: descriptor in the calling task
 * @attr: the attribute that carried @fd, for the error report
 * @extack: where errors are explained
 *
 * Return: the socket, its file referenced and marked as adopted, or
 * ERR_PTR(-EINVAL) for anything that is not a connected TCP stream
 * socket free for use (-EBUSY if another channel uses it).
 */
struct socket *pp_channel_lookup_socket(int fd, const struct nlattr *attr,
					struct netlink_ext_ack *extack)
{
	struct socket *sock;
	struct sock *sk;
	int err;

	sock = sockfd_lookup(fd, &err);
	if (!sock) {
		if (err == -ENOTSOCK)
			NL_SET_ERR_MSG_ATTR(extack, attr, "the descriptor is not a socket");
		else
			NL_SET_ERR_MSG_ATTR(extack, attr, "the descriptor is not open");
		return ERR_PTR(-EINVAL);
	}
	sk = sock->sk;
	if (sock->type != SOCK_STREAM || !sk_is_tcp(sk) ||
	    (sk->sk_family != AF_INET && sk->sk_family != AF_INET6)) {
		NL_SET_ERR_MSG_ATTR(extack, attr, "the socket is not a TCP socket");
		err = -EINVAL;
		goto out_put;
	}
	if (READ_ONCE(sk->sk_state) != TCP_ESTABLISHED) {
		NL_SET_ERR_MSG_ATTR(extack, attr, "the TCP socket is not connected");
		err = -EINVAL;
		goto out_put;
	}

	write_lock_bh(&sk->sk_callback_lock);
	if (sk->sk_user_data) {
		write_unlock_bh(&sk->sk_callback_lock);
		NL_SET_ERR_MSG_ATTR(extack, attr, "the socket is in use by the kernel already");
		err = -EBUSY;
		goto out_put;
	}
	rcu_assign_sk_user_data(sk, sock);
	write_unlock_bh(&sk->sk_callback_lock);
	return sock;

out_put:
	sockfd_put(sock);
	return ERR_PTR(err);
}

/**
 * pp_channel_put_socket() - release a socket from pp_channel_lookup_socket()
 * @sock: the socket
 */
void pp_channel_put_socket(struct socket *sock)
{
	struct sock *sk = sock->sk;

	write_lock_bh(&sk->sk_callback_lock);
	rcu_assign_sk_user_data(sk, NULL);
	write_unlock_bh(&sk->sk_callback_lock);
	sockfd_put(sock);
}

/**
 * pp_channel_prepare() - give a channel its socket and its (sleeping) thread
 * @ch: an idle channel
 * @sock: socket from pp_channel_lookup_socket(); the channel owns it from
 *	now on, also when this fails
 *
 * The thread runs only once pp_channel_run() wakes it, so nothing is
 * received before every channel and the return path are ready.
 *
 * Context: under the session's lock.
 * Return: 0 or a negative errno; pp_channel_stop() undoes either.
 */
int pp_channel_prepare(struct pp_channel *ch, struct socket *sock)
{
	struct pp_session *s = ch->session;
	struct task_struct *task;

	lockdep_assert_held(&s->lock);
	ch->sock = sock;
	ch->eos = false;
	/* Requests and COMPLETE are small and urgent: no Nagle delay. */
	tcp_sock_set_nodelay(sock->sk);
	sock_set_sndtimeo(sock->sk, PP_SEND_TIMEOUT_SECS);

	task = kthread_create(pp_receive_thread, ch, "pagepush%u-%s",
			      s->index, pp_channel_name(ch->id));
	if (IS_ERR(task))
		return PTR_ERR(task);
	get_task_struct(task);
	ch->thread = task;
	reinit_completion(&ch->done);
	return 0;
}

/**
 * pp_channel_run() - start receiving
 * @ch: a channel pp_channel_prepare() set up
 */
void pp_channel_run(struct pp_channel *ch)
{
	if (ch->thread)
		wake_up_process(ch->thread);
}

/**
 * pp_channel_wait_done() - wait for the receive loop to end by itself
 * @ch: the channel
 * @timeout: jiffies
 *
 * Return: true if it ended (or never ran), false on timeout.
 */
bool pp_channel_wait_done(struct pp_channel *ch, unsigned long timeout)
{
	if (!ch->thread)
		return true;
	return wait_for_completion_timeout(&ch->done, timeout);
}

/**
 * pp_channel_shutdown() - shut the channel's socket down
 * @ch: the channel
 * @how: SHUT_WR to close our direction gracefully, SHUT_RDWR to also
 *	wake the receive thread and any writer blocked on the socket
 * Context: under the session's lock.
 */
void pp_channel_shutdown(struct pp_channel *ch, enum sock_shutdown_cmd how)
{
	lockdep_assert_held(&ch->session->lock);
	if (ch->sock)
		kernel_sock_shutdown(ch->sock, how);
}

/**
 * pp_channel_stop() - stop the receive thread and release the socket
 * @ch: the channel, whose socket was shut down (or whose thread never ran)
 *
 * A page the channel was assembling is dropped: it was never visible.
 * Context: under the session's lock.
 */
void pp_channel_stop(struct pp_channel *ch)
{
	struct pp_session *s = ch->session;

	lockdep_assert_held(&s->lock);
	if (ch->thread) {
		kthread_stop(ch->thread);
		put_task_struct(ch->thread);
		ch->thread = NULL;
	}
	if (ch->partial) {
		pp_store_free(&s->store, ch->partial);
		ch->partial = NULL;
	}
	if (ch->spare) {
		pp_store_free(&s->store, ch->spare);
		ch->spare = NULL;
	}
	spin_lock(&s->claim_lock);
	ch->partial_idx = PP_NO_PAGE;
	spin_unlock(&s->claim_lock);
	ch->partial_len = 0;
	if (ch->sock) {
		pp_channel_put_socket(ch->sock);
		ch->sock = NULL;
	}
}
