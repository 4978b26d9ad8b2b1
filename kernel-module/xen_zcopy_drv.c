// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * xen_drm_zcopy: Xen zero-copy helper DRM driver.
 *
 * Turns grant references of another domain into a dma-buf (FROM_REFS) and
 * grants the pages of an imported dma-buf to another domain (TO_REFS), with
 * the user-space API of the 2018 xen-zcopy patch. See README.md.
 */
#include <linux/debugfs.h>
#include <linux/dma-mapping.h>
#include <linux/module.h>
#include <linux/platform_device.h>
#include <linux/seq_file.h>
#include <linux/sizes.h>
#include <drm/drm_drv.h>
#include <drm/drm_file.h>
#include <drm/drm_gem.h>
#include <drm/drm_ioctl.h>
#include <drm/drm_managed.h>
#include <drm/drm_print.h>
#include <drm/drm_prime.h>
#include <xen/xen.h>
#include <xen/page.h>

#include "xen_zcopy.h"
#include "xen_zcopy_compat.h"

/*
 * Load-time parameters only (0444): the ioctls read them without locking, and
 * xzc_init() refuses values out of range.
 */
#define XZC_MAX_PAGES_LIMIT	SZ_1M	/* 4 GiB buffers */
#define XZC_MAX_WAITS_LIMIT	SZ_1M

unsigned int xzc_max_pages = 65536;
module_param_named(max_pages, xzc_max_pages, uint, 0444);
MODULE_PARM_DESC(max_pages, "Largest buffer in pages for FROM_REFS and TO_REFS, 1..1048576 (default 65536 = 256 MiB)");

unsigned int xzc_max_wait_handles = 4096;
module_param_named(max_wait_handles, xzc_max_wait_handles, uint, 0444);
MODULE_PARM_DESC(max_wait_handles, "Wait handles one open file may hold before FROM_REFS fails with EMFILE, 1..1048576 (default 4096)");

bool xzc_contiguous;
module_param_named(contiguous, xzc_contiguous, bool, 0444);
MODULE_PARM_DESC(contiguous, "Back every FROM_REFS buffer with DMA-contiguous memory (not in PV domains; default off)");

bool xzc_autotranslated_unvalidated;
module_param_named(autotranslated_unvalidated, xzc_autotranslated_unvalidated, bool, 0444);
MODULE_PARM_DESC(autotranslated_unvalidated,
		 "Enable the auto-translated (PVH/HVM/Arm) mmap and contiguous-backing paths, not yet run on such a domain (default off)");

/* The 2018 ABI, on 64-bit user space. */
static_assert(sizeof(struct drm_xen_zcopy_dumb_from_refs) == 64);
static_assert(offsetof(struct drm_xen_zcopy_dumb_from_refs, grefs) == 8);
static_assert(offsetof(struct drm_xen_zcopy_dumb_from_refs, otherend_id) == 16);
static_assert(offsetof(struct drm_xen_zcopy_dumb_from_refs, dumb) == 24);
static_assert(offsetof(struct drm_xen_zcopy_dumb_from_refs, wait_handle) == 56);
static_assert(sizeof(struct drm_xen_zcopy_dumb_to_refs) == 32);
static_assert(offsetof(struct drm_xen_zcopy_dumb_to_refs, handle) == 24);
static_assert(sizeof(struct drm_xen_zcopy_dumb_wait_free) == 8);
static_assert(DRM_IOCTL_XEN_ZCOPY_DUMB_FROM_REFS == 0xC0406440);
static_assert(DRM_IOCTL_XEN_ZCOPY_DUMB_TO_REFS == 0xC0206441);
static_assert(DRM_IOCTL_XEN_ZCOPY_DUMB_WAIT_FREE == 0xC0086442);

static struct platform_device *xzc_pdev;
static int xzc_probe_err;	/* why the probe failed, for xzc_init() */

static void xzc_postclose(struct drm_device *drm, struct drm_file *file)
{
	xzc_file_release_waits(to_xzc_device(drm), file);
	kfree(file->driver_priv);
	file->driver_priv = NULL;
}

/* Live counters, one "name value" per line, in debugfs. */
static int xzc_debugfs_stats_show(struct seq_file *m, void *unused)
{
	struct xzc_device *xdev = m->private;

	seq_printf(m,
		   "live_objects %lld\nmapped_foreign_pages %lld\nuser_mapped_pages %lld\n"
		   "vmapped_pages %lld\n"
		   "granted_pages %lld\ndeferred_reclaims %lld\ndeferred_reclaims_total %lld\n"
		   "waiters %lld\nwait_fds %lld\n",
		   atomic64_read(&xdev->live_objects), atomic64_read(&xdev->mapped_pages),
		   atomic64_read(&xdev->user_mapped_pages), atomic64_read(&xdev->vmapped_pages),
		   atomic64_read(&xdev->granted_pages),
		   atomic64_read(&xdev->deferred_pending), atomic64_read(&xdev->deferred_total),
		   atomic64_read(&xdev->waiters), atomic64_read(&xdev->wait_fds));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(xzc_debugfs_stats);

static void xzc_debugfs_init(struct drm_minor *minor)
{
	debugfs_create_file("xen_zcopy_stats", 0444, minor->debugfs_root,
			    to_xzc_device(minor->dev), &xzc_debugfs_stats_fops);
}

static const struct drm_ioctl_desc xzc_ioctls[] = {
	DRM_IOCTL_DEF_DRV(XEN_ZCOPY_DUMB_FROM_REFS, xzc_ioctl_from_refs, DRM_AUTH),
	DRM_IOCTL_DEF_DRV(XEN_ZCOPY_DUMB_TO_REFS, xzc_ioctl_to_refs, DRM_AUTH),
	DRM_IOCTL_DEF_DRV(XEN_ZCOPY_DUMB_WAIT_FREE, xzc_ioctl_wait_free, DRM_AUTH),
	DRM_IOCTL_DEF_DRV(XEN_ZCOPY_DUMB_WAIT_FREE_FD, xzc_ioctl_wait_free_fd, DRM_AUTH),
};

DEFINE_DRM_GEM_FOPS(xzc_fops);

static const struct drm_driver xzc_driver = {
	.driver_features = DRIVER_GEM,
	.open = xzc_file_open,
	.postclose = xzc_postclose,
	.debugfs_init = xzc_debugfs_init,
	.gem_prime_import_sg_table = xzc_gem_import_sg_table,
	XZC_PRIME_DRIVER_HOOKS
	.ioctls = xzc_ioctls,
	.num_ioctls = ARRAY_SIZE(xzc_ioctls),
	.fops = &xzc_fops,
	.name = XENDRM_ZCOPY_DRIVER_NAME,
	.desc = "Xen PV DRM zero copy",
	XZC_DRIVER_DATE
	.major = 1,
	.minor = 0,
	.patchlevel = 1,
};

/* The same counters in sysfs, one value per file: .../xen_drm_zcopy.0/stats/<name>. */
#define XZC_STAT_ATTR(_name, _field)						\
static ssize_t _name##_show(struct device *dev, struct device_attribute *attr,	\
			    char *buf)						\
{										\
	struct xzc_device *xdev = to_xzc_device(dev_get_drvdata(dev));		\
										\
	return sysfs_emit(buf, "%lld\n", atomic64_read(&xdev->_field));	\
}										\
static DEVICE_ATTR_RO(_name)

XZC_STAT_ATTR(live_objects, live_objects);
XZC_STAT_ATTR(mapped_foreign_pages, mapped_pages);
XZC_STAT_ATTR(user_mapped_pages, user_mapped_pages);
XZC_STAT_ATTR(vmapped_pages, vmapped_pages);
XZC_STAT_ATTR(granted_pages, granted_pages);
XZC_STAT_ATTR(deferred_reclaims, deferred_pending);
XZC_STAT_ATTR(deferred_reclaims_total, deferred_total);
XZC_STAT_ATTR(waiters, waiters);
XZC_STAT_ATTR(wait_fds, wait_fds);

static struct attribute *xzc_stats_attrs[] = {
	&dev_attr_live_objects.attr,
	&dev_attr_mapped_foreign_pages.attr,
	&dev_attr_user_mapped_pages.attr,
	&dev_attr_vmapped_pages.attr,
	&dev_attr_granted_pages.attr,
	&dev_attr_deferred_reclaims.attr,
	&dev_attr_deferred_reclaims_total.attr,
	&dev_attr_waiters.attr,
	&dev_attr_wait_fds.attr,
	NULL,
};

static const struct attribute_group xzc_stats_group = {
	.name = "stats",
	.attrs = xzc_stats_attrs,
};
__ATTRIBUTE_GROUPS(xzc_stats);

/* Runs when the last reference to the DRM device goes (all files closed). */
static void xzc_release_action(struct drm_device *drm, void *unused)
{
	struct xzc_device *xdev = to_xzc_device(drm);

	/* deferred reclaims hold module references: none can be left here */
	cancel_delayed_work_sync(&xdev->reclaim_work);
	WARN_ON(!xzc_reclaim_all(xdev));
	xa_destroy(&xdev->waits);
}

static int xzc_probe(struct platform_device *pdev)
{
	struct xzc_device *xdev;
	int ret;

	ret = dma_coerce_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(64));
	if (ret)
		return ret;
	xdev = devm_drm_dev_alloc(&pdev->dev, &xzc_driver, struct xzc_device, drm);
	if (IS_ERR(xdev))
		return PTR_ERR(xdev);
	xa_init_flags(&xdev->waits, XA_FLAGS_ALLOC1);
	spin_lock_init(&xdev->reclaim_lock);
	INIT_LIST_HEAD(&xdev->reclaim_list);
	INIT_DELAYED_WORK(&xdev->reclaim_work, xzc_reclaim_work);
	ret = drmm_add_action_or_reset(&xdev->drm, xzc_release_action, NULL);
	if (ret)
		return ret;
	/* everything the ioctls and attributes use is ready before the node appears */
	platform_set_drvdata(pdev, &xdev->drm);

	ret = drm_dev_register(&xdev->drm, 0);
	if (ret)
		return ret;
	drm_info(&xdev->drm, "Xen zero-copy helper on minor %d (%s domain)\n",
		 xdev->drm.primary->index, xen_pv_domain() ? "PV" : "auto-translated");
	return 0;
}

static xzc_remove_ret xzc_remove(struct platform_device *pdev)
{
	/* open files keep the drm_device; xzc_release_action runs after the last */
	drm_dev_unregister(platform_get_drvdata(pdev));
	XZC_REMOVE_RETURN;
}

static int xzc_probe_once(struct platform_device *pdev)
{
	xzc_probe_err = xzc_probe(pdev);
	return xzc_probe_err;
}

static struct platform_driver xzc_platform_driver = {
	.probe = xzc_probe_once,
	.remove = xzc_remove,
	.driver = {
		.name = XENDRM_ZCOPY_DRIVER_NAME,
		.dev_groups = xzc_stats_groups,
		/* no unbind while files are open: the device lives with the module */
		.suppress_bind_attrs = true,
	},
};

static int __init xzc_init(void)
{
	int ret;

	if (!xen_domain()) {
		pr_err("xen_drm_zcopy: not running under Xen\n");
		return -ENODEV;
	}
	if (XEN_PAGE_SIZE != PAGE_SIZE) {
		pr_err("xen_drm_zcopy: XEN_PAGE_SIZE (%lu) != PAGE_SIZE (%lu) is not supported\n",
		       XEN_PAGE_SIZE, PAGE_SIZE);
		return -ENODEV;
	}
	if (!xzc_max_pages || xzc_max_pages > XZC_MAX_PAGES_LIMIT ||
	    !xzc_max_wait_handles || xzc_max_wait_handles > XZC_MAX_WAITS_LIMIT) {
		pr_err("xen_drm_zcopy: max_pages and max_wait_handles must be in 1..%u\n",
		       XZC_MAX_PAGES_LIMIT);
		return -EINVAL;
	}
	if (!xen_initial_domain())
		pr_warn("xen_drm_zcopy: not the initial domain: only useful in a driver domain\n");

	ret = platform_driver_register(&xzc_platform_driver);
	if (ret)
		return ret;
	xzc_probe_err = -ENODEV;
	xzc_pdev = platform_device_register_simple(XENDRM_ZCOPY_DRIVER_NAME, 0, NULL, 0);
	if (IS_ERR(xzc_pdev)) {
		ret = PTR_ERR(xzc_pdev);
		goto err_unregister_driver;
	}
	/* the probe ran synchronously: a module without its device is useless */
	if (xzc_probe_err) {
		ret = xzc_probe_err;
		goto err_unregister_device;
	}
	return 0;

err_unregister_device:
	platform_device_unregister(xzc_pdev);
err_unregister_driver:
	platform_driver_unregister(&xzc_platform_driver);
	return ret;
}

static void __exit xzc_exit(void)
{
	platform_device_unregister(xzc_pdev);
	platform_driver_unregister(&xzc_platform_driver);
}

module_init(xzc_init);
module_exit(xzc_exit);

MODULE_DESCRIPTION("Xen zero-copy helper DRM driver: grant references <-> dma-buf");
MODULE_LICENSE("Dual MIT/GPL");
MODULE_IMPORT_NS(DMA_BUF);
