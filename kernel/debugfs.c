// SPDX-License-Identifier: GPL-2.0
/*
 * pagepush debugfs: /sys/kernel/debug/pagepush/pages holds the number of
 * base pages the module holds across all sessions. It drops back when
 * every session is deleted and unmapped; the selftests check that.
 */
#include <linux/debugfs.h>

#include "debugfs.h"
#include "store.h"

static struct dentry *pp_debugfs_dir;

static int pp_debugfs_pages_get(void *data, u64 *val)
{
	*val = pp_store_allocated_pages();
	return 0;
}

DEFINE_DEBUGFS_ATTRIBUTE(pp_debugfs_pages_fops, pp_debugfs_pages_get, NULL,
			 "%llu\n");

/**
 * pp_debugfs_init() - create /sys/kernel/debug/pagepush
 *
 * Failures are not fatal: debugfs is optional.
 */
void pp_debugfs_init(void)
{
	pp_debugfs_dir = debugfs_create_dir("pagepush", NULL);
	debugfs_create_file_unsafe("pages", 0400, pp_debugfs_dir, NULL,
				   &pp_debugfs_pages_fops);
}

/**
 * pp_debugfs_exit() - remove /sys/kernel/debug/pagepush
 */
void pp_debugfs_exit(void)
{
	debugfs_remove_recursive(pp_debugfs_dir);
}
