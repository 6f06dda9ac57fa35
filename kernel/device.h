/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pagepush device nodes: /dev/pagepushN, open and mmap.
 */
#ifndef _PAGEPUSH_DEVICE_H
#define _PAGEPUSH_DEVICE_H

struct pp_session;
struct inode;

int pp_device_init(void);
void pp_device_exit(void);
int pp_device_add(struct pp_session *s);
void pp_device_del(struct pp_session *s);
struct inode *pp_device_alloc_inode(void);

#endif /* _PAGEPUSH_DEVICE_H */
