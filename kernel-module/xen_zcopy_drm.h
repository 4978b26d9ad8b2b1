/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note OR MIT */
/*
 * xen_drm_zcopy: Xen zero-copy helper DRM driver, user-space API.
 *
 * Structures, numbers and names are bit-exact with the 2018 xen-zcopy patch
 * ("drm/xen-zcopy: Add Xen zero-copy helper DRM driver"), so code written
 * against that header works unchanged. The structures hold a raw user
 * pointer and are laid out for 64-bit user space only (LP64: 64, 32 and 8
 * bytes); the driver has no compat_ioctl.
 *
 * Additions that keep the layout: XEN_ZCOPY_FROM_REFS_FLAG_* in dumb.flags
 * (the 2018 driver ignored that field; unknown bits are now rejected), and
 * padding that must be zero.
 */
#ifndef __XEN_ZCOPY_DRM_H
#define __XEN_ZCOPY_DRM_H

#ifdef __KERNEL__
#include <linux/types.h>
#include <drm/drm.h>
#include <drm/drm_mode.h>
#else
#include <stdint.h>
/* libdrm's headers, unless the includer defined these (native/drm_uapi.h) */
#ifndef XZC_HAVE_DRM_UAPI
#include "drm.h"
#include "drm_mode.h"
#endif
#endif

#if defined(__cplusplus)
extern "C" {
#endif

#define XENDRM_ZCOPY_DRIVER_NAME	"xen_drm_zcopy"

/*
 * DRM_XEN_ZCOPY_DUMB_FROM_REFS: map the pages a frontend granted (grefs,
 * otherend_id) into a GEM object of width x height x bpp. Returns dumb.pitch,
 * dumb.size, dumb.handle and a wait_handle for DUMB_WAIT_FREE. Export it with
 * DRM_IOCTL_PRIME_HANDLE_TO_FD and import the fd into the real driver.
 * Teardown: close the real driver's handle, this handle, the dma-buf fd, then
 * DUMB_WAIT_FREE.
 */
#define DRM_XEN_ZCOPY_DUMB_FROM_REFS	0x00

struct drm_xen_zcopy_dumb_from_refs {
	uint32_t num_grefs;
	/* user-space uses uint32_t instead of grant_ref_t for mapping */
	uint32_t *grefs;
	uint64_t otherend_id;
	struct drm_mode_create_dumb dumb;
	uint32_t wait_handle;
};

/* dumb.flags of DUMB_FROM_REFS */
/*
 * Back the buffer with DMA-contiguous memory (a single sg entry). Refused with
 * EOPNOTSUPP in a PV domain, where bus addresses are the guest's frames.
 */
#define XEN_ZCOPY_FROM_REFS_FLAG_CONTIGUOUS	(1u << 0)
#define XEN_ZCOPY_FROM_REFS_FLAGS		XEN_ZCOPY_FROM_REFS_FLAG_CONTIGUOUS

/*
 * DRM_XEN_ZCOPY_DUMB_TO_REFS: grant otherend_id access to every page of a
 * buffer imported with DRM_IOCTL_PRIME_FD_TO_HANDLE; num_grefs must equal its
 * page count; grefs receives the references. Teardown: close this handle, the
 * real driver's handle, then the imported dma-buf fd.
 */
#define DRM_XEN_ZCOPY_DUMB_TO_REFS	0x01

struct drm_xen_zcopy_dumb_to_refs {
	uint32_t num_grefs;
	/* user-space uses uint32_t instead of grant_ref_t for mapping */
	uint32_t *grefs;
	uint64_t otherend_id;
	uint32_t handle;
};

/*
 * DRM_XEN_ZCOPY_DUMB_WAIT_FREE: wait up to wait_to_ms for the buffer of
 * wait_handle to be freed (grants unmapped, pages released). 0 = freed (at
 * once if it already was; this consumes the handle), ETIMEDOUT, ENOENT =
 * unknown, another file's, or already waited for. Wait handles belong to the
 * file that created them. The wait is killable.
 */
#define DRM_XEN_ZCOPY_DUMB_WAIT_FREE	0x02

struct drm_xen_zcopy_dumb_wait_free {
	uint32_t wait_handle;
	uint32_t wait_to_ms;
};

/*
 * DRM_XEN_ZCOPY_DUMB_WAIT_FREE_FD: this driver's extension, not in the 2018
 * patch. Turns wait_handle into a file descriptor (fd, close-on-exec) that
 * polls readable (POLLIN) once the buffer is freed, so a wait blocks no
 * thread: an event loop polls the fd, and closing it ends the wait. The fd
 * owns the wait: the handle is consumed (WAIT_FREE and WAIT_FREE_FD on it
 * then return ENOENT) and no longer counts against max_wait_handles. If the
 * buffer was freed already, the fd is readable at once, unless flags has
 * DRM_XEN_ZCOPY_WAIT_FREE_FD_IF_BUSY: then no file is made, the handle is
 * consumed and fd is -1 (the wait is over; a teardown's common case costs
 * one ioctl, as the 2018 WAIT_FREE does). Other flags bits and pad must be
 * 0 (EINVAL; a module without the flag also answers EINVAL). ENOENT =
 * unknown, another file's, or already waited for; EMFILE, ENFILE, ENOMEM =
 * no file could be made (the handle is left as it was).
 */
#define DRM_XEN_ZCOPY_DUMB_WAIT_FREE_FD	0x03

#define DRM_XEN_ZCOPY_WAIT_FREE_FD_IF_BUSY	(1 << 0)

struct drm_xen_zcopy_dumb_wait_free_fd {
	uint32_t wait_handle;
	uint32_t flags;
	int32_t fd;		/* out */
	uint32_t pad;
};

#define DRM_IOCTL_XEN_ZCOPY_DUMB_FROM_REFS DRM_IOWR(DRM_COMMAND_BASE + \
	DRM_XEN_ZCOPY_DUMB_FROM_REFS, struct drm_xen_zcopy_dumb_from_refs)

#define DRM_IOCTL_XEN_ZCOPY_DUMB_TO_REFS DRM_IOWR(DRM_COMMAND_BASE + \
	DRM_XEN_ZCOPY_DUMB_TO_REFS, struct drm_xen_zcopy_dumb_to_refs)

#define DRM_IOCTL_XEN_ZCOPY_DUMB_WAIT_FREE DRM_IOWR(DRM_COMMAND_BASE + \
	DRM_XEN_ZCOPY_DUMB_WAIT_FREE, struct drm_xen_zcopy_dumb_wait_free)

#define DRM_IOCTL_XEN_ZCOPY_DUMB_WAIT_FREE_FD DRM_IOWR(DRM_COMMAND_BASE + \
	DRM_XEN_ZCOPY_DUMB_WAIT_FREE_FD, struct drm_xen_zcopy_dumb_wait_free_fd)

#if defined(__cplusplus)
}
#endif

#endif /* __XEN_ZCOPY_DRM_H */
