/*
 * The KMS part of the DRM uapi this project uses (mode setting, planes,
 * properties, atomic commits, framebuffers, events, DRM master), defined here
 * for the same reason as drm_uapi.h: building needs no libdrm-dev. Names,
 * layouts and numbers are the kernel's (include/uapi/drm/drm.h and
 * drm_mode.h); the static asserts pin them for LP64. Usable from C and C++.
 */
#ifndef XZC_DRM_MODE_UAPI_H
#define XZC_DRM_MODE_UAPI_H

#include "drm_uapi.h"

#if defined(__cplusplus)
extern "C" {
#endif

#define DRM_DISPLAY_MODE_LEN	32
#define DRM_PROP_NAME_LEN	32

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

struct drm_mode_get_encoder {
	__u32 encoder_id;
	__u32 encoder_type;
	__u32 crtc_id;
	__u32 possible_crtcs;
	__u32 possible_clones;
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

struct drm_set_client_cap {
	__u64 capability;
	__u64 value;
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

#define DRM_MODE_OBJECT_CRTC		0xcccccccc
#define DRM_MODE_OBJECT_CONNECTOR	0xc0c0c0c0
#define DRM_MODE_OBJECT_ENCODER		0xe0e0e0e0
#define DRM_MODE_OBJECT_PLANE		0xeeeeeeee

#define DRM_CLIENT_CAP_UNIVERSAL_PLANES		2
#define DRM_CLIENT_CAP_ATOMIC			3
#define DRM_CLIENT_CAP_WRITEBACK_CONNECTORS	5

#define DRM_MODE_PAGE_FLIP_EVENT	0x01
#define DRM_MODE_ATOMIC_TEST_ONLY	0x0100
#define DRM_MODE_ATOMIC_NONBLOCK	0x0200
#define DRM_MODE_ATOMIC_ALLOW_MODESET	0x0400

#define DRM_EVENT_VBLANK		0x01
#define DRM_EVENT_FLIP_COMPLETE		0x02

#define DRM_IOCTL_SET_MASTER		DRM_IO(0x1e)
#define DRM_IOCTL_DROP_MASTER		DRM_IO(0x1f)
#define DRM_IOCTL_SET_CLIENT_CAP	DRM_IOW(0x0d, struct drm_set_client_cap)
#define DRM_IOCTL_MODE_GETRESOURCES	DRM_IOWR(0xA0, struct drm_mode_card_res)
#define DRM_IOCTL_MODE_GETENCODER	DRM_IOWR(0xA6, struct drm_mode_get_encoder)
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
#if defined(__cplusplus)
#define XZC_UAPI_ASSERT(c, m) static_assert(c, m)
#else
#define XZC_UAPI_ASSERT(c, m) _Static_assert(c, m)
#endif
XZC_UAPI_ASSERT(sizeof(struct drm_mode_modeinfo) == 68, "drm_mode_modeinfo layout");
XZC_UAPI_ASSERT(offsetof(struct drm_mode_modeinfo, vrefresh) == 24, "drm_mode_modeinfo layout");
XZC_UAPI_ASSERT(offsetof(struct drm_mode_modeinfo, name) == 36, "drm_mode_modeinfo layout");
XZC_UAPI_ASSERT(sizeof(struct drm_mode_card_res) == 64, "drm_mode_card_res layout");
XZC_UAPI_ASSERT(sizeof(struct drm_mode_get_encoder) == 20, "drm_mode_get_encoder layout");
XZC_UAPI_ASSERT(sizeof(struct drm_mode_get_connector) == 80, "drm_mode_get_connector layout");
XZC_UAPI_ASSERT(sizeof(struct drm_mode_get_plane_res) == 16, "drm_mode_get_plane_res layout");
XZC_UAPI_ASSERT(sizeof(struct drm_mode_get_plane) == 32, "drm_mode_get_plane layout");
XZC_UAPI_ASSERT(sizeof(struct drm_mode_obj_get_properties) == 32, "drm_mode_obj_get_properties layout");
XZC_UAPI_ASSERT(sizeof(struct drm_mode_get_property) == 64, "drm_mode_get_property layout");
XZC_UAPI_ASSERT(sizeof(struct drm_mode_fb_cmd2) == 104, "drm_mode_fb_cmd2 layout");
XZC_UAPI_ASSERT(offsetof(struct drm_mode_fb_cmd2, modifier) == 72, "drm_mode_fb_cmd2 layout");
XZC_UAPI_ASSERT(sizeof(struct drm_mode_atomic) == 56, "drm_mode_atomic layout");
XZC_UAPI_ASSERT(sizeof(struct drm_event_vblank) == 32, "drm_event_vblank layout");
XZC_UAPI_ASSERT(DRM_IOCTL_SET_MASTER == 0x641E, "DRM_IOCTL_SET_MASTER");
XZC_UAPI_ASSERT(DRM_IOCTL_SET_CLIENT_CAP == 0x4010640D, "DRM_IOCTL_SET_CLIENT_CAP");
XZC_UAPI_ASSERT(DRM_IOCTL_MODE_GETRESOURCES == 0xC04064A0, "DRM_IOCTL_MODE_GETRESOURCES");
XZC_UAPI_ASSERT(DRM_IOCTL_MODE_GETCONNECTOR == 0xC05064A7, "DRM_IOCTL_MODE_GETCONNECTOR");
XZC_UAPI_ASSERT(DRM_IOCTL_MODE_RMFB == 0xC00464AF, "DRM_IOCTL_MODE_RMFB");
XZC_UAPI_ASSERT(DRM_IOCTL_MODE_ADDFB2 == 0xC06864B8, "DRM_IOCTL_MODE_ADDFB2");
XZC_UAPI_ASSERT(DRM_IOCTL_MODE_ATOMIC == 0xC03864BC, "DRM_IOCTL_MODE_ATOMIC");
XZC_UAPI_ASSERT(DRM_IOCTL_MODE_CREATEPROPBLOB == 0xC01064BD, "DRM_IOCTL_MODE_CREATEPROPBLOB");
#undef XZC_UAPI_ASSERT
#endif

#endif /* XZC_DRM_MODE_UAPI_H */
