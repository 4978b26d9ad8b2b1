/*
 * The few DRM uapi structures and ioctl numbers this project uses, defined
 * here so that building needs no libdrm-dev: only the kernel's generic ioctl
 * encoding (<linux/ioctl.h>, part of every libc development setup). Names,
 * layouts and numbers are the kernel's (include/uapi/drm/drm.h and
 * drm_mode.h); the static asserts below pin them for LP64. Usable from C
 * (the test programs) and C++ (the addon).
 *
 * Include this instead of <drm.h>/<drm_mode.h>; it also satisfies the
 * user-space branch of kernel-module/xen_zcopy_drm.h.
 */
#ifndef XZC_DRM_UAPI_H
#define XZC_DRM_UAPI_H

#include <linux/ioctl.h>
#include <linux/types.h>
#include <stddef.h>

#if defined(_DRM_H_) || defined(_DRM_MODE_H)
#error "drm_uapi.h replaces libdrm's drm.h/drm_mode.h: include only one of them"
#endif
/* Keeps a later #include "drm.h" (e.g. via xen_zcopy_drm.h) from redefining these. */
#define XZC_HAVE_DRM_UAPI 1

#define DRM_IOCTL_BASE		'd'
#define DRM_IO(nr)		_IO(DRM_IOCTL_BASE, nr)
#define DRM_IOR(nr, type)	_IOR(DRM_IOCTL_BASE, nr, type)
#define DRM_IOW(nr, type)	_IOW(DRM_IOCTL_BASE, nr, type)
#define DRM_IOWR(nr, type)	_IOWR(DRM_IOCTL_BASE, nr, type)
/* Driver-private ioctls start here. */
#define DRM_COMMAND_BASE	0x40

/* O_CLOEXEC and O_RDWR as the kernel defines them (asm-generic, x86 and arm64 alike) */
#define DRM_CLOEXEC		02000000
#define DRM_RDWR		02

#if defined(__cplusplus)
extern "C" {
#endif

struct drm_version {
	int version_major;
	int version_minor;
	int version_patchlevel;
	size_t name_len;
	char *name;
	size_t date_len;
	char *date;
	size_t desc_len;
	char *desc;
};

struct drm_gem_close {
	__u32 handle;
	__u32 pad;
};

struct drm_prime_handle {
	__u32 handle;
	__u32 flags;
	__s32 fd;
};

struct drm_mode_create_dumb {
	__u32 height;
	__u32 width;
	__u32 bpp;
	__u32 flags;
	__u32 handle;
	__u32 pitch;
	__u64 size;
};

struct drm_mode_map_dumb {
	__u32 handle;
	__u32 pad;
	__u64 offset;
};

struct drm_mode_destroy_dumb {
	__u32 handle;
};

#if defined(__cplusplus)
}
#endif

#define DRM_IOCTL_VERSION		DRM_IOWR(0x00, struct drm_version)
#define DRM_IOCTL_GEM_CLOSE		DRM_IOW(0x09, struct drm_gem_close)
#define DRM_IOCTL_PRIME_HANDLE_TO_FD	DRM_IOWR(0x2d, struct drm_prime_handle)
#define DRM_IOCTL_PRIME_FD_TO_HANDLE	DRM_IOWR(0x2e, struct drm_prime_handle)
#define DRM_IOCTL_MODE_CREATE_DUMB	DRM_IOWR(0xB2, struct drm_mode_create_dumb)
#define DRM_IOCTL_MODE_MAP_DUMB		DRM_IOWR(0xB3, struct drm_mode_map_dumb)
#define DRM_IOCTL_MODE_DESTROY_DUMB	DRM_IOWR(0xB4, struct drm_mode_destroy_dumb)

/* The kernel's values on LP64 (x86-64 and arm64). */
#if defined(__LP64__)
#if defined(__cplusplus)
#define XZC_UAPI_ASSERT(c, m) static_assert(c, m)
#else
#define XZC_UAPI_ASSERT(c, m) _Static_assert(c, m)
#endif
XZC_UAPI_ASSERT(sizeof(struct drm_version) == 64, "drm_version layout");
XZC_UAPI_ASSERT(offsetof(struct drm_version, name) == 24, "drm_version layout");
XZC_UAPI_ASSERT(offsetof(struct drm_version, desc) == 56, "drm_version layout");
XZC_UAPI_ASSERT(sizeof(struct drm_gem_close) == 8, "drm_gem_close layout");
XZC_UAPI_ASSERT(sizeof(struct drm_prime_handle) == 12, "drm_prime_handle layout");
XZC_UAPI_ASSERT(sizeof(struct drm_mode_create_dumb) == 32, "drm_mode_create_dumb layout");
XZC_UAPI_ASSERT(offsetof(struct drm_mode_create_dumb, size) == 24, "drm_mode_create_dumb layout");
XZC_UAPI_ASSERT(sizeof(struct drm_mode_map_dumb) == 16, "drm_mode_map_dumb layout");
XZC_UAPI_ASSERT(DRM_IOCTL_VERSION == 0xC0406400, "DRM_IOCTL_VERSION");
XZC_UAPI_ASSERT(DRM_IOCTL_GEM_CLOSE == 0x40086409, "DRM_IOCTL_GEM_CLOSE");
XZC_UAPI_ASSERT(DRM_IOCTL_PRIME_HANDLE_TO_FD == 0xC00C642D, "DRM_IOCTL_PRIME_HANDLE_TO_FD");
XZC_UAPI_ASSERT(DRM_IOCTL_PRIME_FD_TO_HANDLE == 0xC00C642E, "DRM_IOCTL_PRIME_FD_TO_HANDLE");
XZC_UAPI_ASSERT(DRM_IOCTL_MODE_CREATE_DUMB == 0xC02064B2, "DRM_IOCTL_MODE_CREATE_DUMB");
XZC_UAPI_ASSERT(DRM_IOCTL_MODE_MAP_DUMB == 0xC01064B3, "DRM_IOCTL_MODE_MAP_DUMB");
XZC_UAPI_ASSERT(DRM_IOCTL_MODE_DESTROY_DUMB == 0xC00464B4, "DRM_IOCTL_MODE_DESTROY_DUMB");
#undef XZC_UAPI_ASSERT
#endif

#endif /* XZC_DRM_UAPI_H */
