/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/* xen_drm_zcopy internals shared by the driver's files. */
#ifndef XEN_ZCOPY_H
#define XEN_ZCOPY_H

#include <linux/atomic.h>
#include <linux/completion.h>
#include <linux/kref.h>
#include <linux/mutex.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>
#include <drm/drm_device.h>
#include <drm/drm_file.h>
#include <drm/drm_gem.h>
#include <xen/grant_table.h>
#include <xen/xen.h>

#include "xen_zcopy_drm.h"

struct xzc_device {
	struct drm_device drm;
	/*
	 * Wait handles of FROM_REFS objects, id >= 1 -> struct xzc_wait. The
	 * xarray's own lock guards lookups that take a reference, the
	 * allocation cursor and every xzc_file.waits count.
	 */
	struct xarray waits;
	u32 next_wait_id;		/* cyclic allocation cursor, under the xa lock */

	/* Imported objects whose grants a guest still uses. */
	spinlock_t reclaim_lock;
	struct list_head reclaim_list;	/* of xzc_obj.reclaim_link, under reclaim_lock */
	struct delayed_work reclaim_work;

	atomic64_t live_objects;
	atomic64_t mapped_pages;	/* foreign pages mapped by FROM_REFS */
	atomic64_t user_mapped_pages;	/* of those, mapped into user space (PV) */
	atomic64_t vmapped_pages;	/* of those, mapped into the kernel by vmap */
	atomic64_t granted_pages;	/* Dom0 pages granted by TO_REFS */
	atomic64_t deferred_pending;	/* objects waiting for a guest to unmap */
	atomic64_t deferred_total;
	atomic64_t waiters;
	atomic64_t wait_fds;		/* open WAIT_FREE_FD files */
};

static inline struct xzc_device *to_xzc_device(struct drm_device *drm)
{
	return container_of(drm, struct xzc_device, drm);
}

/* Per open file: how many wait handles it holds (bounded by max_wait_handles). */
struct xzc_file {
	unsigned int waits;		/* under xzc_device.waits' xa lock */
};

/* Signalled once a FROM_REFS object is freed; outlives it while waited on. */
struct xzc_wait {
	struct kref ref;
	struct completion freed;
	wait_queue_head_t pollq;	/* WAIT_FREE_FD files poll here */
	struct drm_file *owner;		/* only this file may wait on it */
	struct xzc_device *xdev;	/* for the wait_fds count */
	u32 id;
};

struct iosys_map;
struct xzc_vmap;

enum xzc_kind {
	XZC_FROM_REFS,		/* foreign pages mapped from a guest's grants */
	XZC_IMPORTED,		/* a PRIME-imported dma-buf, for TO_REFS */
};

struct xzc_obj {
	struct drm_gem_object base;
	enum xzc_kind kind;
	u32 num_pages;
	u16 domid;

	/* XZC_FROM_REFS: set up by the ioctl, read-only until the free */
	grant_ref_t *refs;
	struct page **pages;
	grant_handle_t *handles;	/* INVALID_GRANT_HANDLE where not mapped */
	/* preallocated at map time so that the free path never allocates */
	struct gnttab_unmap_grant_ref *unmap_ops;
	struct page **unmap_pages;
	struct xzc_wait *wait;
	bool contiguous;		/* backed by dma_page, else unpopulated pages */
	struct page *dma_page;
	dma_addr_t dma_addr;
	/*
	 * PV user mappings (xzc_umap.link). Taken under mmap_lock (vm close), so
	 * never held across anything that can fault user memory.
	 */
	struct mutex umap_lock;
	struct list_head umaps;		/* under umap_lock */
	/*
	 * The kernel mapping (xen_zcopy_vmap.c), shared by nested vmaps.
	 * vmap_lock guards vmap and vmap_count; it is taken under the
	 * dma-buf's lock (6.1) or reservation lock (6.12) by dma_buf_vmap.
	 */
	struct mutex vmap_lock;
	struct xzc_vmap *vmap;		/* under vmap_lock; NULL when unmapped */
	unsigned int vmap_count;	/* under vmap_lock */

	/* XZC_IMPORTED */
	struct sg_table *sgt;
	/* serialises TO_REFS (held across its copy_to_user); guards granted */
	struct mutex lock;
	grant_ref_t *granted;		/* refs handed out by TO_REFS, under lock */
	struct list_head reclaim_link;	/* in xzc_device.reclaim_list */
};

static inline struct xzc_obj *to_xzc_obj(struct drm_gem_object *gem)
{
	return container_of(gem, struct xzc_obj, base);
}

extern unsigned int xzc_max_pages;
extern unsigned int xzc_max_wait_handles;
extern bool xzc_contiguous;
extern bool xzc_autotranslated_unvalidated;

/*
 * Paths that only run in an auto-translated (PVH/HVM/Arm) domain have not
 * been run on one yet: they stay off unless the module is loaded with
 * autotranslated_unvalidated=1. See README.md.
 */
static inline bool xzc_autotranslated_allowed(void)
{
	return xen_pv_domain() || xzc_autotranslated_unvalidated;
}

int xzc_backing_alloc(struct xzc_obj *obj, bool contiguous);
void xzc_backing_free(struct xzc_obj *obj);

int xzc_ioctl_from_refs(struct drm_device *drm, void *data, struct drm_file *file);
int xzc_ioctl_to_refs(struct drm_device *drm, void *data, struct drm_file *file);
int xzc_ioctl_wait_free(struct drm_device *drm, void *data, struct drm_file *file);
int xzc_ioctl_wait_free_fd(struct drm_device *drm, void *data, struct drm_file *file);
struct drm_gem_object *xzc_gem_import_sg_table(struct drm_device *drm,
					       struct dma_buf_attachment *attach,
					       struct sg_table *sgt);
void xzc_file_release_waits(struct xzc_device *xdev, struct drm_file *file);
void xzc_reclaim_work(struct work_struct *work);
bool xzc_reclaim_all(struct xzc_device *xdev);

int xzc_file_open(struct drm_device *drm, struct drm_file *file);
struct sg_table *xzc_gem_get_sg_table(struct drm_gem_object *gem);

int xzc_gem_mmap(struct drm_gem_object *gem, struct vm_area_struct *vma);
extern const struct vm_operations_struct xzc_vm_ops;

int xzc_gnttab_errno(s16 status);
int xzc_map_grants(struct xzc_obj *obj, struct gnttab_map_grant_ref *ops, u32 count,
		   struct page **pages, grant_handle_t *handles, atomic64_t *mapped);
bool xzc_unmap_grants(struct xzc_obj *obj, struct gnttab_unmap_grant_ref *ops, u32 count);
int xzc_gem_vmap(struct drm_gem_object *gem, struct iosys_map *map);
void xzc_gem_vunmap(struct drm_gem_object *gem, struct iosys_map *map);
void xzc_vmap_release(struct xzc_obj *obj);

#endif /* XEN_ZCOPY_H */
