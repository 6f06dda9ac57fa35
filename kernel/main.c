// SPDX-License-Identifier: GPL-2.0
/*
 * pagepush: postcopy memory migration into a kernel-owned mapping.
 *
 * A process maps /dev/pagepushN while its memory arrives over two TCP
 * connections; a task touching a page that has not arrived is held in
 * the kernel while the page is asked for. Documentation/design.rst tells
 * the whole story.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>

#include "debugfs.h"
#include "device.h"
#include "netlink.h"
#include "session.h"

#ifdef CONFIG_HIGHMEM
#error "pagepush receives into the direct map: 64-bit kernels only"
#endif

static int __init pp_init(void)
{
	int ret;

	ret = pp_device_init();
	if (ret)
		return ret;
	ret = pp_sessions_init();
	if (ret)
		goto out_device;
	pp_debugfs_init();
	/* Last: from here on user space can reach us. */
	ret = pp_nl_init();
	if (ret)
		goto out_sessions;
	pr_info("loaded (protocol %u, netlink family %s v%u)\n",
		PAGEPUSH_WIRE_VERSION, PAGEPUSH_GENL_NAME,
		PAGEPUSH_GENL_VERSION);
	return 0;

out_sessions:
	pp_debugfs_exit();
	pp_sessions_exit();
out_device:
	pp_device_exit();
	return ret;
}

static void __exit pp_exit(void)
{
	pp_nl_exit();
	pp_debugfs_exit();
	/* Work still queued may drop inodes of the pseudo filesystem. */
	pp_sessions_exit();
	pp_device_exit();
	pr_info("unloaded\n");
}

module_init(pp_init);
module_exit(pp_exit);

MODULE_DESCRIPTION("pagepush: postcopy memory migration into hugepage-backed mappings");
MODULE_LICENSE("GPL");
MODULE_VERSION(PAGEPUSH_VERSION);
