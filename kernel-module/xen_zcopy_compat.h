/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/* Differences between the kernels this module builds for (6.1 .. 6.12). */
#ifndef XEN_ZCOPY_COMPAT_H
#define XEN_ZCOPY_COMPAT_H

#include <linux/mm.h>
#include <linux/version.h>

#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 3, 0)
static inline void vm_flags_set(struct vm_area_struct *vma, unsigned long flags)
{
	vma->vm_flags |= flags;
}
#endif

/* 6.1 routes dma-buf mmap and the PRIME ioctls through driver hooks; 6.6+ has them built in. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 6, 0)
#define XZC_PRIME_DRIVER_HOOKS \
	.prime_handle_to_fd = drm_gem_prime_handle_to_fd, \
	.prime_fd_to_handle = drm_gem_prime_fd_to_handle, \
	.gem_prime_mmap = drm_gem_prime_mmap,
#else
#define XZC_PRIME_DRIVER_HOOKS
#endif

/* struct drm_driver lost .date in 6.14. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 14, 0)
#define XZC_DRIVER_DATE .date = "20180221",
#else
#define XZC_DRIVER_DATE
#endif

/* platform_driver.remove returns void from 6.11 on. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 11, 0)
typedef int xzc_remove_ret;
#define XZC_REMOVE_RETURN return 0
#else
typedef void xzc_remove_ret;
#define XZC_REMOVE_RETURN return
#endif

#endif /* XEN_ZCOPY_COMPAT_H */
