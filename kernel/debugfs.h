/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pagepush debugfs: module-wide numbers for tests and leak hunting.
 */
#ifndef _PAGEPUSH_DEBUGFS_H
#define _PAGEPUSH_DEBUGFS_H

void pp_debugfs_init(void);
void pp_debugfs_exit(void);

#endif /* _PAGEPUSH_DEBUGFS_H */
