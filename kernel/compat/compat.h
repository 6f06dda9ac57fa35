/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Every kernel-version difference pagepush depends on, in one place, so the
 * rest of the module reads like code for the newest kernel it supports.
 * The module is written for 6.1; see Documentation/design.rst for what
 * changes after it.
 */
#ifndef _PAGEPUSH_COMPAT_H
#define _PAGEPUSH_COMPAT_H

#include <linux/version.h>
#include <linux/device.h>
#include <linux/mm.h>

/* 6.2 made struct class's devnode callback take a const device. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0)
#define PP_DEVNODE_CONST const
#else
#define PP_DEVNODE_CONST
#endif

/* 6.3 made struct class's dev_uevent callback take a const device. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
#define PP_UEVENT_CONST const
#else
#define PP_UEVENT_CONST
#endif

/* 6.4 dropped the owner argument of class_create(). */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 4, 0)
#define pp_class_create(name) class_create(name)
#else
#define pp_class_create(name) class_create(THIS_MODULE, name)
#endif

/* 6.3 made vma->vm_flags read-only outside the vm_flags_*() helpers. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 3, 0)
static inline void vm_flags_set(struct vm_area_struct *vma, vm_flags_t flags)
{
	vma->vm_flags |= flags;
}
#endif

/*
 * 6.7 replaced mmap_read_unlock() in fault handlers with
 * release_fault_lock(), which also knows the per-VMA lock of 6.4+.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 7, 0)
#define pp_release_fault_lock(vmf) release_fault_lock(vmf)
#else
#define pp_release_fault_lock(vmf) mmap_read_unlock((vmf)->vma->vm_mm)
#endif

/*
 * Multicast groups may require CAP_NET_ADMIN of their listeners since
 * 6.9 (backported to 6.1.y and later stable trees).
 */
#ifdef GENL_MCAST_CAP_NET_ADMIN
#define PP_MCGRP_ADMIN_FLAGS	.flags = GENL_MCAST_CAP_NET_ADMIN,
#else
#define PP_MCGRP_ADMIN_FLAGS
#endif

/* 6.10 made __assign_str() take the field only: the source is known. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 10, 0)
#define pp_assign_str(field, src) __assign_str(field)
#else
#define pp_assign_str(field, src) __assign_str(field, src)
#endif

#endif /* _PAGEPUSH_COMPAT_H */
