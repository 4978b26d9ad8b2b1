// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * User-space mappings of FROM_REFS buffers (dma-buf mmap, and importers such
 * as vgem that forward their mmap to it).
 *
 * In a PV domain a page table entry that points at a foreign frame can only
 * be written by Xen: ordinary helpers (vm_insert_page, remap_pfn_range) fail
 * for frames a real guest granted. So, as gntdev does, each grant is mapped a
 * second time straight into the user PTE (GNTMAP_contains_pte), and unmapped
 * again through Xen before Linux tears the PTEs down: an interval notifier
 * catches munmap and exit. Splitting or moving such a mapping is refused.
 *
 * The PTEs Xen writes hold the guest's machine frame, which this domain
 * cannot translate back to a page. So they are written with the
 * _GNTMAP_guest_avail0 bit, which marks them special (pte_special()), and
 * find_special_page() hands the core the backing page whose kernel mapping
 * shows the same grant: get_user_pages() and everything built on it
 * (process_vm_readv, O_DIRECT, vmsplice, /proc/<pid>/mem) then work instead
 * of reporting a bad page map.
 *
 * Auto-translated domains (PVH/HVM, Arm) map the pages with
 * vm_map_pages_zero(); that path has not run yet (autotranslated_unvalidated).
 */
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/slab.h>
#include <drm/drm_gem.h>
#include <drm/drm_print.h>
#include <drm/drm_vma_manager.h>
#include <xen/grant_table.h>
#include <xen/xen.h>
#include <asm/xen/hypercall.h>

#include "xen_zcopy.h"
#include "xen_zcopy_compat.h"

struct xzc_umap {
	struct xzc_obj *obj;
	struct list_head link;		/* in xzc_obj.umaps */
	struct mm_struct *mm;
	struct mmu_interval_notifier notifier;
	unsigned long start;		/* user address of page 0 of the mapping */
	u32 count;
	u32 flags;			/* GNTMAP_* of the user mappings */
	struct mutex lock;		/* guards handles and unmap_ops */
	u64 *pte_maddr;			/* machine address of each page's PTE */
	grant_handle_t *handles;	/* INVALID_GRANT_HANDLE once unmapped */
	/* preallocated: the unmap runs in the MMU notifier, which must not allocate */
	struct gnttab_unmap_grant_ref *unmap_ops;
};

/* Unmaps user pages [from, to) of the mapping through Xen; under um->lock. */
static void xzc_umap_unmap(struct xzc_umap *um, u32 from, u32 to)
{
	struct xzc_device *xdev = to_xzc_device(um->obj->base.dev);
	u32 i, n = 0;

	for (i = from; i < to; i++) {
		if (um->handles[i] == INVALID_GRANT_HANDLE)
			continue;
		gnttab_set_unmap_op(&um->unmap_ops[n++], um->pte_maddr[i], um->flags,
				    um->handles[i]);
		um->handles[i] = INVALID_GRANT_HANDLE;
	}
	xzc_unmap_grants(um->obj, um->unmap_ops, n);
	atomic64_sub(n, &xdev->user_mapped_pages);
}

static bool xzc_invalidate(struct mmu_interval_notifier *mn,
			   const struct mmu_notifier_range *range,
			   unsigned long cur_seq)
{
	struct xzc_umap *um = container_of(mn, struct xzc_umap, notifier);
	unsigned long end = um->start + ((unsigned long)um->count << PAGE_SHIFT);
	unsigned long lo = max(range->start, um->start);
	unsigned long hi = min(range->end, end);

	if (!mmu_notifier_range_blockable(range))
		return false;
	mutex_lock(&um->lock);
	mmu_interval_set_seq(mn, cur_seq);
	if (lo < hi)
		xzc_umap_unmap(um, (lo - um->start) >> PAGE_SHIFT,
			       DIV_ROUND_UP(hi - um->start, PAGE_SIZE));
	mutex_unlock(&um->lock);
	return true;
}

static const struct mmu_interval_notifier_ops xzc_notifier_ops = {
	.invalidate = xzc_invalidate,
};

static int xzc_find_pte(pte_t *pte, unsigned long addr, void *data)
{
	struct xzc_umap *um = data;

	um->pte_maddr[(addr - um->start) >> PAGE_SHIFT] = arbitrary_virt_to_machine(pte).maddr;
	return 0;
}

static void xzc_umap_free(struct xzc_umap *um)
{
	kvfree(um->unmap_ops);
	kvfree(um->pte_maddr);
	kvfree(um->handles);
	mutex_destroy(&um->lock);
	kfree(um);
}

static int xzc_mmap_pv(struct xzc_obj *obj, struct vm_area_struct *vma, u32 first, u32 count)
{
	struct xzc_device *xdev = to_xzc_device(obj->base.dev);
	unsigned long len = vma->vm_end - vma->vm_start;
	struct gnttab_map_grant_ref *ops;
	struct xzc_umap *um;
	int ret;
	u32 i;

	um = kzalloc(sizeof(*um), GFP_KERNEL);
	if (!um)
		return -ENOMEM;
	mutex_init(&um->lock);
	um->obj = obj;
	um->start = vma->vm_start;
	um->count = count;
	um->flags = GNTMAP_host_map | GNTMAP_application_map | GNTMAP_contains_pte |
		    (1 << _GNTMAP_guest_avail0);
	if (!(vma->vm_flags & VM_WRITE))
		um->flags |= GNTMAP_readonly;
	um->pte_maddr = kvcalloc(count, sizeof(*um->pte_maddr), GFP_KERNEL);
	um->handles = kvmalloc_array(count, sizeof(*um->handles), GFP_KERNEL);
	um->unmap_ops = kvcalloc(count, sizeof(*um->unmap_ops), GFP_KERNEL);
	ops = kvcalloc(count, sizeof(*ops), GFP_KERNEL);
	if (!um->pte_maddr || !um->handles || !um->unmap_ops || !ops) {
		ret = -ENOMEM;
		goto err_free;
	}
	memset(um->handles, 0xff, count * sizeof(*um->handles));

	/* Allocates the page tables and records where each PTE lives. */
	ret = apply_to_page_range(vma->vm_mm, vma->vm_start, len, xzc_find_pte, um);
	if (ret)
		goto err_free;
	ret = mmu_interval_notifier_insert_locked(&um->notifier, vma->vm_mm,
						  vma->vm_start, len, &xzc_notifier_ops);
	if (ret)
		goto err_free;

	for (i = 0; i < count; i++) {
		gnttab_set_map_op(&ops[i], um->pte_maddr[i], um->flags,
				  obj->refs[first + i], obj->domid);
		/* an entry the hypercall never reached must not count as mapped */
		ops[i].status = GNTST_general_error;
	}
	/* the notifier may run as soon as a PTE is mapped: handles go in under the lock */
	mutex_lock(&um->lock);
	ret = xzc_map_grants(obj, ops, count, NULL, um->handles, &xdev->user_mapped_pages);
	if (ret)
		xzc_umap_unmap(um, 0, count);
	mutex_unlock(&um->lock);
	kvfree(ops);
	if (ret) {
		mmu_interval_notifier_remove(&um->notifier);
		xzc_umap_free(um);
		return ret;
	}
	vm_flags_set(vma, VM_DONTCOPY | VM_DONTEXPAND | VM_DONTDUMP | VM_MIXEDMAP);
	vma->vm_ops = &xzc_vm_ops;
	um->mm = vma->vm_mm;
	mutex_lock(&obj->umap_lock);
	list_add(&um->link, &obj->umaps);
	mutex_unlock(&obj->umap_lock);
	return 0;

err_free:
	kvfree(ops);
	xzc_umap_free(um);
	return ret;
}

/* Auto-translated domains: ordinary page mappings, ordinary GEM lifetime. */
static const struct vm_operations_struct xzc_vm_ops_plain = {
	.open = drm_gem_vm_open,
	.close = drm_gem_vm_close,
};

/*
 * GEM mmap, reached through the dma-buf's mmap. The DRM core took a reference
 * on the object for this mapping; the vma's close drops it. (The core stores
 * the object in vm_private_data afterwards, so PV mappings are found again in
 * the object's list by mm and start address.)
 */
int xzc_gem_mmap(struct drm_gem_object *gem, struct vm_area_struct *vma)
{
	struct xzc_obj *obj = to_xzc_obj(gem);
	unsigned long count = vma_pages(vma);
	unsigned long first = vma->vm_pgoff - drm_vma_node_start(&gem->vma_node);

	if (obj->kind != XZC_FROM_REFS)
		return -EINVAL;
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (first >= obj->num_pages || count > obj->num_pages - first)
		return -EINVAL;
	if (!xen_pv_domain()) {
		if (!xzc_autotranslated_allowed())
			return -EOPNOTSUPP;
		vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP);
		vma->vm_ops = &xzc_vm_ops_plain;
		/* vm_pgoff still holds the fake offset: map from page `first` */
		return vm_map_pages_zero(vma, obj->pages + first, count);
	}
	return xzc_mmap_pv(obj, vma, first, count);
}

static void xzc_vm_close(struct vm_area_struct *vma)
{
	struct drm_gem_object *gem = vma->vm_private_data;
	struct xzc_obj *obj = to_xzc_obj(gem);
	struct xzc_umap *um, *found = NULL;

	mutex_lock(&obj->umap_lock);
	list_for_each_entry(um, &obj->umaps, link) {
		if (um->mm == vma->vm_mm && um->start == vma->vm_start) {
			list_del(&um->link);
			found = um;
			break;
		}
	}
	mutex_unlock(&obj->umap_lock);
	if (!found)
		return;	/* a copy that never got an object reference */
	mmu_interval_notifier_remove(&found->notifier);
	/* munmap and exit unmapped the grants already; this catches the rest */
	mutex_lock(&found->lock);
	xzc_umap_unmap(found, 0, found->count);
	mutex_unlock(&found->lock);
	xzc_umap_free(found);
	drm_gem_object_put(gem);
}

/*
 * The page behind a special PTE of a PV mapping: the backing page the grant
 * is also mapped on in the kernel (splitting is refused, so vm_start is the
 * start of the mapping and vm_pgoff, the fake offset plus the first page,
 * never changes).
 */
static struct page *xzc_vm_find_special_page(struct vm_area_struct *vma, unsigned long addr)
{
	struct drm_gem_object *gem = vma->vm_private_data;
	struct xzc_obj *obj = to_xzc_obj(gem);
	unsigned long first = vma->vm_pgoff - drm_vma_node_start(&gem->vma_node);
	unsigned long i = first + ((addr - vma->vm_start) >> PAGE_SHIFT);

	if (WARN_ON_ONCE(i >= obj->num_pages))
		return NULL;
	return obj->pages[i];
}

static int xzc_vm_may_split(struct vm_area_struct *vma, unsigned long addr)
{
	return -EINVAL;
}

static int xzc_vm_mremap(struct vm_area_struct *vma)
{
	return -EINVAL;
}

const struct vm_operations_struct xzc_vm_ops = {
	.close = xzc_vm_close,
	.find_special_page = xzc_vm_find_special_page,
	.may_split = xzc_vm_may_split,
	.mremap = xzc_vm_mremap,
};
