// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Kernel mappings (GEM vmap) of FROM_REFS buffers, for importers that read
 * the pixels with the CPU: vkms composes every plane that way (its
 * framebuffers are vmapped through dma_buf_vmap of the imported dma-buf).
 *
 * In a PV domain a PTE that points at a foreign frame can only be written by
 * Xen: vmap() of the backing pages returns an address whose PTEs Xen silently
 * refused. So each grant is mapped a second time straight into a kernel PTE
 * (GNTMAP_contains_pte), as xenbus does for its rings. The kernel range is
 * reserved with vmap() of the zero page with PAGE_NONE (get_vm_area() is not
 * exported to modules), which also allocates the page tables; Xen replaces
 * each placeholder PTE with the grant mapping and clears it again on unmap,
 * before the range is given back. The placeholders are not present, so no
 * CPU can hold a stale translation of them when Xen writes the grant's PTE
 * (Xen does not flush on map; it does on unmap). The machine address of each PTE comes from
 * lookup_address() + arbitrary_virt_to_machine() (init_mm, which
 * apply_to_page_range() would need, is not exported either).
 *
 * Auto-translated domains (PVH/HVM, Arm) vmap() the backing pages; that path
 * has not run yet (autotranslated_unvalidated).
 *
 * One mapping serves all nested vmaps of an object (obj->vmap_count), and it
 * outlives the last vunmap until the object is freed (see xzc_gem_vunmap).
 * What the unmap needs is allocated at vmap time, so vunmap and the free path
 * allocate nothing.
 */
#include <linux/iosys-map.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <drm/drm_print.h>
#include <xen/grant_table.h>
#include <xen/xen.h>
#include <xen/page.h>
#include <asm/xen/hypercall.h>
#ifdef CONFIG_X86
#include <asm/pgtable_types.h>	/* lookup_address(): PV domains are x86 only */
#endif

#include "xen_zcopy.h"

/* GNTMAP_* of the kernel mappings of a PV vmap: writable, like the object's own. */
#define XZC_VMAP_FLAGS	(GNTMAP_host_map | GNTMAP_contains_pte)

/* One kernel mapping of a FROM_REFS object; owned by obj->vmap, under obj->vmap_lock. */
struct xzc_vmap {
	void *vaddr;
	u32 count;
	/* PV only */
	u64 *pte_maddr;			/* machine address of each page's PTE */
	grant_handle_t *handles;	/* INVALID_GRANT_HANDLE where not mapped */
	struct gnttab_unmap_grant_ref *unmap_ops;	/* preallocated for the unmap */
};

static void xzc_vmap_free(struct xzc_vmap *vm)
{
	kvfree(vm->unmap_ops);
	kvfree(vm->handles);
	kvfree(vm->pte_maddr);
	kfree(vm);
}

/*
 * Records the machine address of each PTE of the range. vmap() built the page
 * tables with 4 KiB entries; init_mm is not exported, so the kernel's own
 * page-table walk (lookup_address) finds them.
 */
static int xzc_vmap_find_ptes(struct xzc_vmap *vm)
{
#ifdef CONFIG_X86
	unsigned int level;
	pte_t *pte;
	u32 i;

	for (i = 0; i < vm->count; i++) {
		pte = lookup_address((unsigned long)vm->vaddr + ((unsigned long)i << PAGE_SHIFT),
				     &level);
		if (!pte || level != PG_LEVEL_4K)
			return -EFAULT;
		vm->pte_maddr[i] = arbitrary_virt_to_machine(pte).maddr;
	}
	return 0;
#else
	return -EOPNOTSUPP;	/* no PV domains here: never called */
#endif
}

/*
 * Unmaps the grants of a PV mapping through Xen, which clears their PTEs.
 * Returns false if any unmap failed: that PTE still maps the guest's frame
 * and the range must not be given back.
 */
static bool xzc_vmap_unmap_grants(struct xzc_obj *obj, struct xzc_vmap *vm)
{
	struct xzc_device *xdev = to_xzc_device(obj->base.dev);
	u32 i, n = 0;
	bool ok;

	for (i = 0; i < vm->count; i++) {
		if (vm->handles[i] == INVALID_GRANT_HANDLE)
			continue;
		gnttab_set_unmap_op(&vm->unmap_ops[n++], vm->pte_maddr[i], XZC_VMAP_FLAGS,
				    vm->handles[i]);
		vm->handles[i] = INVALID_GRANT_HANDLE;
	}
	ok = xzc_unmap_grants(obj, vm->unmap_ops, n);
	atomic64_sub(n, &xdev->vmapped_pages);
	return ok;
}

/* Gives the reserved range back, unless a grant may still be mapped in it. */
static void xzc_vmap_release_range(struct xzc_obj *obj, struct xzc_vmap *vm, bool grants_gone)
{
	if (grants_gone)
		vunmap(vm->vaddr);
	else
		drm_err(obj->base.dev, "leaking %u pages of kernel address space at %p\n",
			vm->count, vm->vaddr);
}

static int xzc_vmap_pv(struct xzc_obj *obj, struct xzc_vmap *vm)
{
	struct xzc_device *xdev = to_xzc_device(obj->base.dev);
	struct gnttab_map_grant_ref *ops;
	struct page **placeholders;
	int ret = 0;
	u32 i;

	vm->pte_maddr = kvcalloc(vm->count, sizeof(*vm->pte_maddr), GFP_KERNEL);
	vm->handles = kvmalloc_array(vm->count, sizeof(*vm->handles), GFP_KERNEL);
	vm->unmap_ops = kvcalloc(vm->count, sizeof(*vm->unmap_ops), GFP_KERNEL);
	placeholders = kvmalloc_array(vm->count, sizeof(*placeholders), GFP_KERNEL);
	if (!vm->pte_maddr || !vm->handles || !vm->unmap_ops || !placeholders) {
		kvfree(placeholders);
		return -ENOMEM;	/* the caller frees vm */
	}
	memset(vm->handles, 0xff, vm->count * sizeof(*vm->handles));

	/*
	 * Reserves the range and its page tables with PTEs that are not present
	 * (no TLB entry can exist for them); Xen replaces them below.
	 */
	for (i = 0; i < vm->count; i++)
		placeholders[i] = ZERO_PAGE(0);
	vm->vaddr = vmap(placeholders, vm->count, VM_MAP, PAGE_NONE);
	kvfree(placeholders);
	if (!vm->vaddr)
		return -ENOMEM;
	ret = xzc_vmap_find_ptes(vm);
	if (ret)
		goto err_release_range;

	ops = kvcalloc(vm->count, sizeof(*ops), GFP_KERNEL);
	if (!ops) {
		ret = -ENOMEM;
		goto err_release_range;
	}
	for (i = 0; i < vm->count; i++) {
		gnttab_set_map_op(&ops[i], vm->pte_maddr[i], XZC_VMAP_FLAGS, obj->refs[i],
				  obj->domid);
		/* an entry the hypercall never reached must not count as mapped */
		ops[i].status = GNTST_general_error;
	}
	ret = xzc_map_grants(obj, ops, vm->count, NULL, vm->handles, &xdev->vmapped_pages);
	kvfree(ops);
	if (ret)
		goto err_unmap_grants;
	return 0;

err_unmap_grants:
	xzc_vmap_release_range(obj, vm, xzc_vmap_unmap_grants(obj, vm));
	return ret;
err_release_range:
	vunmap(vm->vaddr);
	return ret;
}

/* Auto-translated domains: the backing pages map like any others. */
static int xzc_vmap_translated(struct xzc_obj *obj, struct xzc_vmap *vm)
{
	vm->vaddr = vmap(obj->pages, vm->count, VM_MAP, PAGE_KERNEL);
	if (!vm->vaddr)
		return -ENOMEM;
	atomic64_add(vm->count, &to_xzc_device(obj->base.dev)->vmapped_pages);
	return 0;
}

static struct xzc_vmap *xzc_vmap_create(struct xzc_obj *obj)
{
	struct xzc_vmap *vm;
	int ret;

	vm = kzalloc(sizeof(*vm), GFP_KERNEL);
	if (!vm)
		return ERR_PTR(-ENOMEM);
	vm->count = obj->num_pages;
	if (xen_pv_domain())
		ret = xzc_vmap_pv(obj, vm);
	else
		ret = xzc_vmap_translated(obj, vm);
	if (ret) {
		xzc_vmap_free(vm);
		return ERR_PTR(ret);
	}
	return vm;
}

static void xzc_vmap_destroy(struct xzc_obj *obj, struct xzc_vmap *vm)
{
	if (xen_pv_domain()) {
		/* grants first: Xen clears their PTEs, then the range goes */
		xzc_vmap_release_range(obj, vm, xzc_vmap_unmap_grants(obj, vm));
	} else {
		vunmap(vm->vaddr);
		atomic64_sub(vm->count, &to_xzc_device(obj->base.dev)->vmapped_pages);
	}
	xzc_vmap_free(vm);
}

int xzc_gem_vmap(struct drm_gem_object *gem, struct iosys_map *map)
{
	struct xzc_obj *obj = to_xzc_obj(gem);
	struct xzc_vmap *vm;
	int ret = 0;

	if (obj->kind != XZC_FROM_REFS)
		return -EOPNOTSUPP;
	if (!xzc_autotranslated_allowed())
		return -EOPNOTSUPP;
	mutex_lock(&obj->vmap_lock);
	if (!obj->vmap) {
		vm = xzc_vmap_create(obj);
		if (IS_ERR(vm)) {
			ret = PTR_ERR(vm);
			goto out_unlock;
		}
		obj->vmap = vm;
	}
	obj->vmap_count++;
	iosys_map_set_vaddr(map, obj->vmap->vaddr);
out_unlock:
	mutex_unlock(&obj->vmap_lock);
	return ret;
}

void xzc_gem_vunmap(struct drm_gem_object *gem, struct iosys_map *map)
{
	struct xzc_obj *obj = to_xzc_obj(gem);

	mutex_lock(&obj->vmap_lock);
	if (drm_WARN_ON(gem->dev, !obj->vmap || map->is_iomem || map->vaddr != obj->vmap->vaddr))
		goto out_unlock;
	/*
	 * The last user went; the mapping stays until the object is freed. A
	 * scan-out engine that composes with the CPU vmaps each framebuffer
	 * when it is flipped to and vunmaps it when it is flipped away: mapping
	 * every grant again on each flip would cost a hypercall batch per
	 * frame. The kernel address space this keeps is bounded by the
	 * object's own size.
	 */
	--obj->vmap_count;
out_unlock:
	mutex_unlock(&obj->vmap_lock);
}

/*
 * The object is being freed: its grants are unmapped next, so its kernel
 * mapping (kept after the last vunmap) goes first. Every vmap holds a
 * reference on the object (through its dma-buf), so a user left here is an
 * importer's unbalanced vmap.
 */
void xzc_vmap_release(struct xzc_obj *obj)
{
	if (!obj->vmap)
		return;
	drm_WARN_ON(obj->base.dev, obj->vmap_count);
	xzc_vmap_destroy(obj, obj->vmap);
	obj->vmap = NULL;
	obj->vmap_count = 0;
}
