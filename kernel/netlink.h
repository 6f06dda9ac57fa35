/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pagepush generic netlink family.
 */
#ifndef _PAGEPUSH_NETLINK_H
#define _PAGEPUSH_NETLINK_H

#include "uapi/linux/pagepush.h"

struct pp_session;

int pp_nl_init(void);
void pp_nl_exit(void);
void pp_nl_notify(struct pp_session *s, enum pagepush_event event);

#endif /* _PAGEPUSH_NETLINK_H */
