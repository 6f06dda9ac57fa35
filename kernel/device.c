// SPDX-License-Identifier: GPL-2.0
/*
 * pagepush device nodes.
 *
 * /dev/pagepushN is session N's memory. It is mapped MAP_SHARED only: a
 * private mapping would copy-on-write into anonymous 4 KiB pages. Every
 * open file of a session uses the session's own address space (an inode
 * of a private pseudo filesystem) instead of the device node's: the node
 * may live on a filesystem with writeback, which would map read faults
 * read-only and split huge mappings on the first write.
 *
 * All sessions share one character device region; open() finds the
 * session by minor number and holds a reference on it until release().
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cdev.h>
#include <linux/device.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mount.h>
#include <linux/pseudo_fs.h>

#include "compat/compat.h"
#include "device.h"
#include "fault.h"
#include "session.h"

#define PP_FS_MAGIC	0x70707368	/* "ppsh" */

static dev_t pp_devt;
static struct cdev pp_cdev;
static struct class *pp_class;
static struct vfsmount *pp_mnt;

static int pp_open(struct inode *inode, struct file *file)
{
	struct pp_session *s;

	s = pp_session_lookup(iminor(inode));
	if (!s)
		return -ENXIO;
	file->private_data = s;
	file->f_mapping = s->inode->i_mapping;
	return 0;
}

static int pp_release(struct inode *inode, struct file *file)
{
	pp_session_put(file->private_data);
	return 0;
}

static int pp_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct pp_session *s = file->private_data;
	unsigned long pages = s->size >> PAGE_SHIFT;

	/* VM_MAYSHARE: also a MAP_SHARED mapping of a read-only file. */
	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	if (vma->vm_pgoff >= pages || vma_pages(vma) > pages - vma->vm_pgoff)
		return -EINVAL;

	/*
	 * A plain VMA (no PFNMAP, MIXEDMAP or IO) so the core maps our
	 * compound pages with one PMD and get_user_pages() works on them.
	 * Core dumps skip it: dumping would request every absent page.
	 */
	vm_flags_set(vma, VM_DONTDUMP);
	vma->vm_ops = &pp_vm_ops;
	return 0;
}

static const struct file_operations pp_fops = {
	.owner			= THIS_MODULE,
	.open			= pp_open,
	.release		= pp_release,
	.mmap			= pp_mmap,
	/* A 2 MiB-aligned address, so huge pages can be PMD-mapped. */
	.get_unmapped_area	= thp_get_unmapped_area,
	.llseek			= noop_llseek,
};

static char *pp_devnode(PP_DEVNODE_CONST struct device *dev, umode_t *mode)
{
	if (mode)
		*mode = 0600;
	return NULL;
}

/*
 * What udev learns about /dev/pagepushN: the session index and name
 * (udev/60-pagepush.rules links /dev/pagepush/by-name/NAME).
 */
static int pp_dev_uevent(PP_UEVENT_CONST struct device *dev,
			 struct kobj_uevent_env *env)
{
	struct pp_session *s = dev_get_drvdata(dev);

	if (!s)
		return 0;
	if (add_uevent_var(env, "PAGEPUSH_INDEX=%u", s->index))
		return -ENOMEM;
	if (s->name[0] && add_uevent_var(env, "PAGEPUSH_NAME=%s", s->name))
		return -ENOMEM;
	return 0;
}

static int pp_fs_init_fs_context(struct fs_context *fc)
{
	return init_pseudo(fc, PP_FS_MAGIC) ? 0 : -ENOMEM;
}

/*
 * Mounted by the module itself only, and unmounted on exit: no .owner,
 * which would make the mount pin the module for ever.
 */
static struct file_system_type pp_fs_type = {
	.name			= "pagepush",
	.init_fs_context	= pp_fs_init_fs_context,
	.kill_sb		= kill_anon_super,
};

/**
 * pp_device_alloc_inode() - a new private address space for a session
 *
 * Return: an inode of the module's pseudo filesystem, or an ERR_PTR.
 */
struct inode *pp_device_alloc_inode(void)
{
	return alloc_anon_inode(pp_mnt->mnt_sb);
}

/**
 * pp_device_add() - create /dev/pagepushN for a session
 * @s: the session, with its index set
 *
 * Context: under the registry lock.
 * Return: 0 or a negative errno.
 */
int pp_device_add(struct pp_session *s)
{
	struct device *dev;

	if (s->index >= PP_MAX_SESSIONS)
		return -ENOSPC;
	dev = device_create(pp_class, NULL, MKDEV(MAJOR(pp_devt), s->index),
			    s, "pagepush%u", s->index);
	if (IS_ERR(dev))
		return PTR_ERR(dev);
	s->dev = dev;
	return 0;
}

/**
 * pp_device_del() - remove a session's device node
 * @s: the session
 *
 * Open files are not affected. Context: under the registry lock.
 */
void pp_device_del(struct pp_session *s)
{
	if (!s->dev)
		return;
	device_destroy(pp_class, MKDEV(MAJOR(pp_devt), s->index));
	s->dev = NULL;
}

/**
 * pp_device_init() - register the device region, class and pseudo fs
 *
 * Return: 0 or a negative errno.
 */
int pp_device_init(void)
{
	int ret;

	pp_mnt = kern_mount(&pp_fs_type);
	if (IS_ERR(pp_mnt))
		return PTR_ERR(pp_mnt);

	ret = alloc_chrdev_region(&pp_devt, 0, PP_MAX_SESSIONS, "pagepush");
	if (ret)
		goto out_unmount;
	cdev_init(&pp_cdev, &pp_fops);
	pp_cdev.owner = THIS_MODULE;
	ret = cdev_add(&pp_cdev, pp_devt, PP_MAX_SESSIONS);
	if (ret)
		goto out_region;

	pp_class = pp_class_create("pagepush");
	if (IS_ERR(pp_class)) {
		ret = PTR_ERR(pp_class);
		goto out_cdev;
	}
	pp_class->devnode = pp_devnode;
	pp_class->dev_uevent = pp_dev_uevent;
	return 0;

out_cdev:
	cdev_del(&pp_cdev);
out_region:
	unregister_chrdev_region(pp_devt, PP_MAX_SESSIONS);
out_unmount:
	kern_unmount(pp_mnt);
	return ret;
}

/**
 * pp_device_exit() - undo pp_device_init()
 */
void pp_device_exit(void)
{
	class_destroy(pp_class);
	cdev_del(&pp_cdev);
	unregister_chrdev_region(pp_devt, PP_MAX_SESSIONS);
	kern_unmount(pp_mnt);
}
