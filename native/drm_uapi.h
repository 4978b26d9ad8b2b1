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
/* Layout checks below (LP64: x86-64 and arm64). */
#if defined(__cplusplus)
#define XZC_UAPI_ASSERT(c, m) static_assert(c, m)
#else
#define XZC_UAPI_ASSERT(c, m) _Static_assert(c, m)
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
#endif

/*
 * KMS: atomic modesetting with a writeback connector (the scan-out probe in
 * test/xen/probes/). Same rules as above: the kernel's names, layouts and
 * numbers, pinned for LP64 below.
 */
#define DRM_CLIENT_CAP_UNIVERSAL_PLANES		2
#define DRM_CLIENT_CAP_ATOMIC			3
#define DRM_CLIENT_CAP_WRITEBACK_CONNECTORS	5

#define DRM_MODE_OBJECT_CRTC		0xcccccccc
#define DRM_MODE_OBJECT_CONNECTOR	0xc0c0c0c0
#define DRM_MODE_OBJECT_PLANE		0xeeeeeeee

#define DRM_MODE_CONNECTOR_WRITEBACK	18
#define DRM_PLANE_TYPE_PRIMARY		1	/* value of a plane's "type" property */
#define DRM_MODE_ATOMIC_ALLOW_MODESET	0x0400
#define DRM_DISPLAY_MODE_LEN		32
#define DRM_PROP_NAME_LEN		32

#define XZC_FOURCC(a, b, c, d) \
	((__u32)(a) | ((__u32)(b) << 8) | ((__u32)(c) << 16) | ((__u32)(d) << 24))
#define DRM_FORMAT_XRGB8888		XZC_FOURCC('X', 'R', '2', '4')

#if defined(__cplusplus)
extern "C" {
#endif

struct drm_set_client_cap {
	__u64 capability;
	__u64 value;
};

struct drm_mode_card_res {
	__u64 fb_id_ptr;
	__u64 crtc_id_ptr;
	__u64 connector_id_ptr;
	__u64 encoder_id_ptr;
	__u32 count_fbs;
	__u32 count_crtcs;
	__u32 count_connectors;
	__u32 count_encoders;
	__u32 min_width;
	__u32 max_width;
	__u32 min_height;
	__u32 max_height;
};

struct drm_mode_modeinfo {
	__u32 clock;
	__u16 hdisplay;
	__u16 hsync_start;
	__u16 hsync_end;
	__u16 htotal;
	__u16 hskew;
	__u16 vdisplay;
	__u16 vsync_start;
	__u16 vsync_end;
	__u16 vtotal;
	__u16 vscan;
	__u32 vrefresh;
	__u32 flags;
	__u32 type;
	char name[DRM_DISPLAY_MODE_LEN];
};

struct drm_mode_get_connector {
	__u64 encoders_ptr;
	__u64 modes_ptr;
	__u64 props_ptr;
	__u64 prop_values_ptr;
	__u32 count_modes;
	__u32 count_props;
	__u32 count_encoders;
	__u32 encoder_id;
	__u32 connector_id;
	__u32 connector_type;
	__u32 connector_type_id;
	__u32 connection;
	__u32 mm_width;
	__u32 mm_height;
	__u32 subpixel;
	__u32 pad;
};

struct drm_mode_get_plane_res {
	__u64 plane_id_ptr;
	__u32 count_planes;
};

struct drm_mode_get_plane {
	__u32 plane_id;
	__u32 crtc_id;
	__u32 fb_id;
	__u32 possible_crtcs;
	__u32 gamma_size;
	__u32 count_format_types;
	__u64 format_type_ptr;
};

struct drm_mode_obj_get_properties {
	__u64 props_ptr;
	__u64 prop_values_ptr;
	__u32 count_props;
	__u32 obj_id;
	__u32 obj_type;
};

struct drm_mode_get_property {
	__u64 values_ptr;
	__u64 enum_blob_ptr;
	__u32 prop_id;
	__u32 flags;
	char name[DRM_PROP_NAME_LEN];
	__u32 count_values;
	__u32 count_enum_blobs;
};

struct drm_mode_create_blob {
	__u64 data;
	__u32 length;
	__u32 blob_id;
};

struct drm_mode_destroy_blob {
	__u32 blob_id;
};

struct drm_mode_fb_cmd2 {
	__u32 fb_id;
	__u32 width;
	__u32 height;
	__u32 pixel_format;
	__u32 flags;
	__u32 handles[4];
	__u32 pitches[4];
	__u32 offsets[4];
	__u64 modifier[4];
};

struct drm_mode_atomic {
	__u32 flags;
	__u32 count_objs;
	__u64 objs_ptr;
	__u64 count_props_ptr;
	__u64 props_ptr;
	__u64 prop_values_ptr;
	__u64 reserved;
	__u64 user_data;
};

#if defined(__cplusplus)
}
#endif

#define DRM_IOCTL_SET_CLIENT_CAP	DRM_IOW(0x0d, struct drm_set_client_cap)
#define DRM_IOCTL_MODE_GETRESOURCES	DRM_IOWR(0xA0, struct drm_mode_card_res)
#define DRM_IOCTL_MODE_GETCONNECTOR	DRM_IOWR(0xA7, struct drm_mode_get_connector)
#define DRM_IOCTL_MODE_GETPROPERTY	DRM_IOWR(0xAA, struct drm_mode_get_property)
#define DRM_IOCTL_MODE_RMFB		DRM_IOWR(0xAF, unsigned int)
#define DRM_IOCTL_MODE_GETPLANERESOURCES DRM_IOWR(0xB5, struct drm_mode_get_plane_res)
#define DRM_IOCTL_MODE_GETPLANE		DRM_IOWR(0xB6, struct drm_mode_get_plane)
#define DRM_IOCTL_MODE_ADDFB2		DRM_IOWR(0xB8, struct drm_mode_fb_cmd2)
#define DRM_IOCTL_MODE_OBJ_GETPROPERTIES DRM_IOWR(0xB9, struct drm_mode_obj_get_properties)
#define DRM_IOCTL_MODE_ATOMIC		DRM_IOWR(0xBC, struct drm_mode_atomic)
#define DRM_IOCTL_MODE_CREATEPROPBLOB	DRM_IOWR(0xBD, struct drm_mode_create_blob)
#define DRM_IOCTL_MODE_DESTROYPROPBLOB	DRM_IOWR(0xBE, struct drm_mode_destroy_blob)

#if defined(__LP64__)
XZC_UAPI_ASSERT(sizeof(struct drm_set_client_cap) == 16, "drm_set_client_cap layout");
XZC_UAPI_ASSERT(sizeof(struct drm_mode_card_res) == 64, "drm_mode_card_res layout");
XZC_UAPI_ASSERT(sizeof(struct drm_mode_modeinfo) == 68, "drm_mode_modeinfo layout");
XZC_UAPI_ASSERT(offsetof(struct drm_mode_modeinfo, vrefresh) == 24, "drm_mode_modeinfo layout");
XZC_UAPI_ASSERT(sizeof(struct drm_mode_get_connector) == 80, "drm_mode_get_connector layout");
XZC_UAPI_ASSERT(offsetof(struct drm_mode_get_connector, connector_id) == 48, "drm_mode_get_connector layout");
XZC_UAPI_ASSERT(sizeof(struct drm_mode_get_plane_res) == 16, "drm_mode_get_plane_res layout");
XZC_UAPI_ASSERT(sizeof(struct drm_mode_get_plane) == 32, "drm_mode_get_plane layout");
XZC_UAPI_ASSERT(sizeof(struct drm_mode_obj_get_properties) == 32, "drm_mode_obj_get_properties layout");
XZC_UAPI_ASSERT(sizeof(struct drm_mode_get_property) == 64, "drm_mode_get_property layout");
XZC_UAPI_ASSERT(sizeof(struct drm_mode_create_blob) == 16, "drm_mode_create_blob layout");
XZC_UAPI_ASSERT(sizeof(struct drm_mode_fb_cmd2) == 104, "drm_mode_fb_cmd2 layout");
XZC_UAPI_ASSERT(offsetof(struct drm_mode_fb_cmd2, modifier) == 72, "drm_mode_fb_cmd2 layout");
XZC_UAPI_ASSERT(sizeof(struct drm_mode_atomic) == 56, "drm_mode_atomic layout");
XZC_UAPI_ASSERT(DRM_FORMAT_XRGB8888 == 0x34325258, "DRM_FORMAT_XRGB8888");
XZC_UAPI_ASSERT(DRM_IOCTL_SET_CLIENT_CAP == 0x4010640D, "DRM_IOCTL_SET_CLIENT_CAP");
XZC_UAPI_ASSERT(DRM_IOCTL_MODE_GETRESOURCES == 0xC04064A0, "DRM_IOCTL_MODE_GETRESOURCES");
XZC_UAPI_ASSERT(DRM_IOCTL_MODE_GETCONNECTOR == 0xC05064A7, "DRM_IOCTL_MODE_GETCONNECTOR");
XZC_UAPI_ASSERT(DRM_IOCTL_MODE_GETPROPERTY == 0xC04064AA, "DRM_IOCTL_MODE_GETPROPERTY");
XZC_UAPI_ASSERT(DRM_IOCTL_MODE_RMFB == 0xC00464AF, "DRM_IOCTL_MODE_RMFB");
XZC_UAPI_ASSERT(DRM_IOCTL_MODE_GETPLANERESOURCES == 0xC01064B5, "DRM_IOCTL_MODE_GETPLANERESOURCES");
XZC_UAPI_ASSERT(DRM_IOCTL_MODE_GETPLANE == 0xC02064B6, "DRM_IOCTL_MODE_GETPLANE");
XZC_UAPI_ASSERT(DRM_IOCTL_MODE_ADDFB2 == 0xC06864B8, "DRM_IOCTL_MODE_ADDFB2");
XZC_UAPI_ASSERT(DRM_IOCTL_MODE_OBJ_GETPROPERTIES == 0xC02064B9, "DRM_IOCTL_MODE_OBJ_GETPROPERTIES");
XZC_UAPI_ASSERT(DRM_IOCTL_MODE_ATOMIC == 0xC03864BC, "DRM_IOCTL_MODE_ATOMIC");
XZC_UAPI_ASSERT(DRM_IOCTL_MODE_CREATEPROPBLOB == 0xC01064BD, "DRM_IOCTL_MODE_CREATEPROPBLOB");
XZC_UAPI_ASSERT(DRM_IOCTL_MODE_DESTROYPROPBLOB == 0xC00464BE, "DRM_IOCTL_MODE_DESTROYPROPBLOB");
#endif

/* KMS for the addon (native/kms.cc): encoders, events, DRM master, commit flags. */
#define DRM_MODE_PAGE_FLIP_EVENT	0x01
#define DRM_MODE_ATOMIC_TEST_ONLY	0x0100
#define DRM_MODE_ATOMIC_NONBLOCK	0x0200
#define DRM_EVENT_VBLANK		0x01
#define DRM_EVENT_FLIP_COMPLETE		0x02

#if defined(__cplusplus)
extern "C" {
#endif

struct drm_mode_get_encoder {
	__u32 encoder_id;
	__u32 encoder_type;
	__u32 crtc_id;
	__u32 possible_crtcs;
	__u32 possible_clones;
};

struct drm_event {
	__u32 type;
	__u32 length;
};

struct drm_event_vblank {
	struct drm_event base;
	__u64 user_data;
	__u32 tv_sec;
	__u32 tv_usec;
	__u32 sequence;
	__u32 crtc_id;
};

#if defined(__cplusplus)
}
#endif

#define DRM_IOCTL_SET_MASTER		DRM_IO(0x1e)
#define DRM_IOCTL_DROP_MASTER		DRM_IO(0x1f)
#define DRM_IOCTL_MODE_GETENCODER	DRM_IOWR(0xA6, struct drm_mode_get_encoder)

#if defined(__LP64__)
XZC_UAPI_ASSERT(sizeof(struct drm_mode_get_encoder) == 20, "drm_mode_get_encoder layout");
XZC_UAPI_ASSERT(sizeof(struct drm_event_vblank) == 32, "drm_event_vblank layout");
XZC_UAPI_ASSERT(offsetof(struct drm_event_vblank, crtc_id) == 28, "drm_event_vblank layout");
XZC_UAPI_ASSERT(DRM_IOCTL_SET_MASTER == 0x641E, "DRM_IOCTL_SET_MASTER");
XZC_UAPI_ASSERT(DRM_IOCTL_DROP_MASTER == 0x641F, "DRM_IOCTL_DROP_MASTER");
XZC_UAPI_ASSERT(DRM_IOCTL_MODE_GETENCODER == 0xC01464A6, "DRM_IOCTL_MODE_GETENCODER");
#endif

#undef XZC_UAPI_ASSERT

#endif /* XZC_DRM_UAPI_H */
