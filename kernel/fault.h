/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pagepush fault path: map present pages, hold tasks on absent ones.
 */
#ifndef _PAGEPUSH_FAULT_H
#define _PAGEPUSH_FAULT_H

#include <linux/mm.h>

extern const struct vm_operations_struct pp_vm_ops;

#endif /* _PAGEPUSH_FAULT_H */
