/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pagepush helper: the "pagepush" generic netlink family over libnl-3.
 * Shared by the helper and the selftests.
 */
#ifndef PAGEPUSH_NL_H
#define PAGEPUSH_NL_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/pagepush.h>

struct nl_sock;
struct nl_msg;

/* A session as GET, NEW and events report it. */
struct pp_session_info {
	uint32_t index;
	char name[PAGEPUSH_NAME_MAX + 1];
	char device[32];
	uint64_t size;
	uint32_t page_size;
	uint32_t state;
	char reason[PAGEPUSH_REASON_MAX + 1];
	uint64_t cookie;
	uint32_t pause_timeout;
	uint32_t event;
	bool has_stats;
	uint64_t stats[PAGEPUSH_STAT_MAX + 1];
	uint64_t chan[PAGEPUSH_NR_CHANNELS][PAGEPUSH_CHAN_MAX + 1];
	uint64_t latency[PAGEPUSH_LATENCY_BUCKETS];
};

struct pp_nl {
	struct nl_sock *sk;
	int family;
	int mcgrp;
	/* Last error: negative errno and the kernel's extack message. */
	int err;
	char msg[256];
};

typedef int (*pp_session_cb)(const struct pp_session_info *info, void *arg);

int pp_nl_open(struct pp_nl *nl);
void pp_nl_close(struct pp_nl *nl);
const char *pp_nl_strerror(const struct pp_nl *nl);
const char *pp_state_name(uint32_t state);
const char *pp_event_name(uint32_t event);

int pp_nl_new(struct pp_nl *nl, uint64_t size, uint32_t page_size,
	      const char *name, struct pp_session_info *out);
int pp_nl_new_ex(struct pp_nl *nl, uint64_t size, uint32_t page_size,
		 const char *name, uint32_t pause_timeout,
		 struct pp_session_info *out);
int pp_nl_get(struct pp_nl *nl, uint32_t index, struct pp_session_info *out);
int pp_nl_dump(struct pp_nl *nl, pp_session_cb cb, void *arg);
int pp_nl_del(struct pp_nl *nl, uint32_t index);
int pp_nl_connect(struct pp_nl *nl, uint32_t index, int precopy_fd,
		  int postcopy_fd, uint64_t cookie);
int pp_nl_recover(struct pp_nl *nl, uint32_t index, int precopy_fd,
		  int postcopy_fd, uint64_t cookie);
int pp_nl_find(struct pp_nl *nl, const char *dev, struct pp_session_info *out);

int pp_nl_subscribe(struct pp_nl *nl);
int pp_nl_wait_event(struct pp_nl *nl, struct pp_session_info *out,
		     int timeout_ms);

/* Raw access, for tests that send what the helper never would. */
struct nl_msg *pp_nl_msg(struct pp_nl *nl, uint8_t cmd, int flags);
int pp_nl_send(struct pp_nl *nl, struct nl_msg *msg, pp_session_cb cb,
	       void *arg);

#endif /* PAGEPUSH_NL_H */
