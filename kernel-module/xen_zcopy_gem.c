// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * xen_drm_zcopy GEM objects: FROM_REFS (a guest's granted pages mapped into
 * Dom0), imported dma-bufs granted to a guest by TO_REFS, wait handles.
 */
#include <linux/anon_inodes.h>
#include <linux/dma-buf.h>
#include <linux/file.h>
#include <linux/mm.h>
#include <linux/poll.h>
#include <linux/module.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <drm/drm_prime.h>
#include <drm/drm_print.h>
#include <xen/grant_table.h>
#include <xen/page.h>
#include <xen/xen.h>
#include <xen/interface/xen.h>
#include <asm/xen/hypercall.h>

#include "xen_zcopy.h"

#define XZC_RECLAIM_INTERVAL	(HZ / 2)
/*
 * Grant map and unmap go to Xen in batches of this many pages, with a
 * rescheduling point between batches: one call for a whole buffer (up to
 * max_pages) would hold its CPU for the whole map without a chance to
 * schedule on a kernel without full preemption.
 */
#define XZC_GNTTAB_BATCH	512

static const struct drm_gem_object_funcs xzc_gem_funcs;

/* Errno for a failed grant operation status. */
int xzc_gnttab_errno(s16 status)
{
	switch (status) {
	case GNTST_bad_domain:
		return -ESRCH;
	case GNTST_general_error:	/* entry not granted to us, or read-only */
	case GNTST_permission_denied:
		return -EPERM;
	case GNTST_no_device_space:
	case GNTST_eagain:
		return -ENOMEM;
	default:
		return -EINVAL;
	}
}

static void xzc_wait_release(struct kref *ref)
{
	kfree(container_of(ref, struct xzc_wait, ref));
}

static struct xzc_file *to_xzc_file(struct drm_file *file)
{
	return file->driver_priv;
}

int xzc_file_open(struct drm_device *drm, struct drm_file *file)
{
	struct xzc_file *xfile = kzalloc(sizeof(*xfile), GFP_KERNEL);

	if (!xfile)
		return -ENOMEM;
	file->driver_priv = xfile;
	return 0;
}

/*
 * Unmaps the foreign pages that are mapped and releases the backing pages.
 * Runs on the free path: it uses the unmap state preallocated at map time and
 * allocates nothing.
 */
static void xzc_unmap_foreign(struct xzc_device *xdev, struct xzc_obj *obj)
{
	struct gntab_unmap_queue_data q;
	u32 i, done, n = 0;

	if (!obj->pages)
		return;
	for (i = 0; i < obj->num_pages; i++) {
		if (obj->handles[i] == INVALID_GRANT_HANDLE)
			continue;
		gnttab_set_unmap_op(&obj->unmap_ops[n],
				    (phys_addr_t)pfn_to_kaddr(page_to_xen_pfn(obj->pages[i])),
				    GNTMAP_host_map, obj->handles[i]);
		obj->unmap_pages[n++] = obj->pages[i];
		obj->handles[i] = INVALID_GRANT_HANDLE;
	}
	for (done = 0; done < n; done += q.count) {
		q = (struct gntab_unmap_queue_data){
			.unmap_ops = obj->unmap_ops + done, .pages = obj->unmap_pages + done,
			.count = min_t(u32, n - done, XZC_GNTTAB_BATCH),
		};
		if (gnttab_unmap_refs_sync(&q))
			drm_err(&xdev->drm, "grant unmap of %u pages failed\n", q.count);
		cond_resched();
	}
	for (i = 0; i < n; i++)
		if (obj->unmap_ops[i].status != GNTST_okay)
			drm_err_ratelimited(&xdev->drm, "unmapping a page failed: %d\n",
					    obj->unmap_ops[i].status);
	atomic64_sub(n, &xdev->mapped_pages);
	xzc_backing_free(obj);
}

/*
 * Makes the @count map operations of @ops, XZC_GNTTAB_BATCH at a time with a
 * rescheduling point between batches: through gnttab_map_refs() for host
 * maps of @pages, or, with @pages NULL, the hypercall itself (PTE maps).
 * Each entry that mapped has its handle in @handles and is counted in
 * @mapped. Returns 0, or the errno of the first failure: its batch is the
 * last, and entries past it keep the error status their caller preset.
 */
int xzc_map_grants(struct xzc_obj *obj, struct gnttab_map_grant_ref *ops, u32 count,
		   struct page **pages, grant_handle_t *handles, atomic64_t *mapped)
{
	int ret = 0;
	u32 i, n, done;

	for (done = 0; done < count && !ret; done += n) {
		n = min_t(u32, count - done, XZC_GNTTAB_BATCH);
		if (pages)
			ret = gnttab_map_refs(ops + done, NULL, pages + done, n);
		else
			ret = HYPERVISOR_grant_table_op(GNTTABOP_map_grant_ref, ops + done, n);
		for (i = done; i < done + n; i++) {
			if (ops[i].status == GNTST_okay) {
				handles[i] = ops[i].handle;
				atomic64_inc(mapped);
			} else if (!ret) {
				drm_dbg(obj->base.dev, "grant %u of dom%u: status %d\n",
					i, obj->domid, ops[i].status);
				ret = xzc_gnttab_errno(ops[i].status);
			}
		}
		cond_resched();
	}
	return ret;
}

/*
 * Unmaps the @count PTE mappings (GNTMAP_contains_pte) of @ops through Xen,
 * which clears each PTE, XZC_GNTTAB_BATCH at a time with a rescheduling
 * point between batches. Failures are logged. Returns true if every entry
 * was unmapped: a failed one still maps the guest's frame.
 */
bool xzc_unmap_grants(struct xzc_obj *obj, struct gnttab_unmap_grant_ref *ops, u32 count)
{
	bool ok = true;
	u32 i, n, done;

	for (i = 0; i < count; i++)
		ops[i].status = GNTST_general_error;	/* until Xen says otherwise */
	for (done = 0; done < count; done += n) {
		n = min_t(u32, count - done, XZC_GNTTAB_BATCH);
		if (HYPERVISOR_grant_table_op(GNTTABOP_unmap_grant_ref, ops + done, n))
			drm_err_ratelimited(obj->base.dev, "unmap of %u grants of dom%u failed\n",
					    n, obj->domid);
		cond_resched();
	}
	for (i = 0; i < count; i++) {
		if (ops[i].status == GNTST_okay)
			continue;
		drm_err_ratelimited(obj->base.dev, "unmap of grant handle %u (dom%u) failed: %d\n",
				    ops[i].handle, obj->domid, ops[i].status);
		ok = false;
	}
	return ok;
}

/* Maps every ref into obj->pages; all or nothing. */
static int xzc_map_foreign(struct xzc_device *xdev, struct xzc_obj *obj, bool contiguous)
{
	struct gnttab_map_grant_ref *ops;
	int ret;
	u32 i;

	obj->unmap_ops = kvcalloc(obj->num_pages, sizeof(*obj->unmap_ops), GFP_KERNEL);
	obj->unmap_pages = kvcalloc(obj->num_pages, sizeof(*obj->unmap_pages), GFP_KERNEL);
	if (!obj->unmap_ops || !obj->unmap_pages)
		return -ENOMEM;	/* the object's destroy frees them */
	ret = xzc_backing_alloc(obj, contiguous);
	if (ret)
		return ret;
	ops = kvcalloc(obj->num_pages, sizeof(*ops), GFP_KERNEL);
	if (!ops) {
		ret = -ENOMEM;
		goto err_free_pages;
	}
	for (i = 0; i < obj->num_pages; i++) {
		gnttab_set_map_op(&ops[i],
				  (phys_addr_t)pfn_to_kaddr(page_to_xen_pfn(obj->pages[i])),
				  GNTMAP_host_map, obj->refs[i], obj->domid);
		/* an entry the hypercall never reached must not count as mapped */
		ops[i].status = GNTST_general_error;
	}
	ret = xzc_map_grants(obj, ops, obj->num_pages, obj->pages, obj->handles,
			     &xdev->mapped_pages);
	kvfree(ops);
	if (ret) {
		/* unmaps exactly the entries that mapped, then frees the pages */
		xzc_unmap_foreign(xdev, obj);
		return ret;
	}
	return 0;

err_free_pages:
	xzc_backing_free(obj);
	return ret;
}

static struct xzc_obj *xzc_obj_alloc(struct drm_device *drm, enum xzc_kind kind,
				     u32 num_pages)
{
	struct xzc_obj *obj = kzalloc(sizeof(*obj), GFP_KERNEL);

	if (!obj)
		return NULL;
	obj->kind = kind;
	obj->num_pages = num_pages;
	obj->base.funcs = &xzc_gem_funcs;
	mutex_init(&obj->lock);
	mutex_init(&obj->umap_lock);
	mutex_init(&obj->vmap_lock);
	INIT_LIST_HEAD(&obj->reclaim_link);
	INIT_LIST_HEAD(&obj->umaps);
	drm_gem_private_object_init(drm, &obj->base, (size_t)num_pages << PAGE_SHIFT);
	atomic64_inc(&to_xzc_device(drm)->live_objects);
	return obj;
}

static void xzc_obj_destroy(struct xzc_device *xdev, struct xzc_obj *obj)
{
	drm_gem_object_release(&obj->base);
	kvfree(obj->granted);
	kvfree(obj->refs);
	kvfree(obj->pages);
	kvfree(obj->handles);
	kvfree(obj->unmap_ops);
	kvfree(obj->unmap_pages);
	mutex_destroy(&obj->vmap_lock);
	mutex_destroy(&obj->umap_lock);
	mutex_destroy(&obj->lock);
	kfree(obj);
	atomic64_dec(&xdev->live_objects);
}

/* Ends foreign access for every ref still granted; true when none is left. */
static bool xzc_end_grants(struct xzc_device *xdev, struct xzc_obj *obj)
{
	bool all = true;
	u32 i;

	for (i = 0; i < obj->num_pages; i++) {
		if (obj->granted[i] == INVALID_GRANT_REF)
			continue;
		if (gnttab_try_end_foreign_access(obj->granted[i])) {
			obj->granted[i] = INVALID_GRANT_REF;
			atomic64_dec(&xdev->granted_pages);
		} else {
			all = false;
		}
	}
	return all;
}

/*
 * Frees what is left of an imported object once no guest maps its pages: the
 * dma-buf attachment keeps the exporter's pages alive until then.
 */
static void xzc_imported_finish(struct xzc_device *xdev, struct xzc_obj *obj)
{
	drm_prime_gem_destroy(&obj->base, obj->sgt);
	xzc_obj_destroy(xdev, obj);
}

static void xzc_gem_free(struct drm_gem_object *gem)
{
	struct xzc_device *xdev = to_xzc_device(gem->dev);
	struct xzc_obj *obj = to_xzc_obj(gem);
	struct xzc_wait *wait = obj->wait;

	if (obj->kind == XZC_IMPORTED) {
		if (obj->granted && !xzc_end_grants(xdev, obj)) {
			/* A guest still maps some pages: keep them until it lets go. */
			__module_get(THIS_MODULE);
			atomic64_inc(&xdev->deferred_pending);
			atomic64_inc(&xdev->deferred_total);
			spin_lock(&xdev->reclaim_lock);
			list_add_tail(&obj->reclaim_link, &xdev->reclaim_list);
			spin_unlock(&xdev->reclaim_lock);
			schedule_delayed_work(&xdev->reclaim_work, XZC_RECLAIM_INTERVAL);
			return;
		}
		xzc_imported_finish(xdev, obj);
		return;
	}

	/* a kernel mapping of the grants must go before the grants do */
	xzc_vmap_release(obj);
	xzc_unmap_foreign(xdev, obj);
	xzc_obj_destroy(xdev, obj);
	if (wait) {
		/* Grants unmapped and pages released: now waiters may go. */
		/*
		 * The handle stays in the xarray, completed, until a WAIT_FREE
		 * consumes it or its file closes: the first wait after the free
		 * returns 0, later ones ENOENT.
		 */
		complete_all(&wait->freed);
		wake_up_all(&wait->pollq);
		kref_put(&wait->ref, xzc_wait_release);	/* the object's */
	}
}

/* Retries ending the grants of objects a guest was still using. */
bool xzc_reclaim_all(struct xzc_device *xdev)
{
	struct xzc_obj *obj, *tmp;
	LIST_HEAD(done);
	bool empty;

	spin_lock(&xdev->reclaim_lock);
	list_for_each_entry_safe(obj, tmp, &xdev->reclaim_list, reclaim_link)
		if (xzc_end_grants(xdev, obj))
			list_move_tail(&obj->reclaim_link, &done);
	empty = list_empty(&xdev->reclaim_list);
	spin_unlock(&xdev->reclaim_lock);

	list_for_each_entry_safe(obj, tmp, &done, reclaim_link) {
		list_del(&obj->reclaim_link);
		xzc_imported_finish(xdev, obj);
		atomic64_dec(&xdev->deferred_pending);
		module_put(THIS_MODULE);
	}
	return empty;
}

void xzc_reclaim_work(struct work_struct *work)
{
	struct xzc_device *xdev = container_of(to_delayed_work(work), struct xzc_device,
					       reclaim_work);

	if (!xzc_reclaim_all(xdev))
		schedule_delayed_work(&xdev->reclaim_work, XZC_RECLAIM_INTERVAL);
}

/*
 * The exported sg table: one entry per page. Pages that are adjacent in this
 * domain's pseudo-physical space show a guest's frames, which are not
 * machine-adjacent; a merged segment would be bounced by swiotlb-xen when an
 * importer DMA-maps it (a copy, and a stale one). Only contiguous backing is
 * described as one segment.
 */
struct sg_table *xzc_gem_get_sg_table(struct drm_gem_object *gem)
{
	struct xzc_obj *obj = to_xzc_obj(gem);
	struct scatterlist *sg;
	struct sg_table *sgt;
	int ret;
	u32 i;

	if (obj->kind != XZC_FROM_REFS)
		return ERR_PTR(-EINVAL);
	if (obj->contiguous)
		return drm_prime_pages_to_sg(gem->dev, obj->pages, obj->num_pages);
	sgt = kmalloc(sizeof(*sgt), GFP_KERNEL);
	if (!sgt)
		return ERR_PTR(-ENOMEM);
	ret = sg_alloc_table(sgt, obj->num_pages, GFP_KERNEL);
	if (ret) {
		kfree(sgt);
		return ERR_PTR(ret);
	}
	for_each_sgtable_sg(sgt, sg, i)
		sg_set_page(sg, obj->pages[i], PAGE_SIZE, 0);
	return sgt;
}

static const struct drm_gem_object_funcs xzc_gem_funcs = {
	.free = xzc_gem_free,
	.get_sg_table = xzc_gem_get_sg_table,
	.mmap = xzc_gem_mmap,
	.vmap = xzc_gem_vmap,
	.vunmap = xzc_gem_vunmap,
	.vm_ops = &xzc_vm_ops,
};

/* A valid foreign domain: not reserved (DOMID_SELF, DOMID_IO, ...). */
static bool xzc_domid_ok(u64 domid)
{
	return domid < DOMID_FIRST_RESERVED;
}

int xzc_ioctl_from_refs(struct drm_device *drm, void *data, struct drm_file *file)
{
	struct drm_xen_zcopy_dumb_from_refs *req = data;
	struct drm_mode_create_dumb *dumb = &req->dumb;
	struct xzc_device *xdev = to_xzc_device(drm);
	u32 __user *urefs = (u32 __user *)req->grefs;
	u8 *raw = data;
	struct xzc_wait *wait;
	struct xzc_obj *obj;
	u64 pitch, size, needed;
	bool contiguous;
	u32 handle, id;
	int ret;

	/* implicit padding after num_grefs and at the end must be zero */
	if (memchr_inv(raw + 4, 0, 4) || memchr_inv(raw + 60, 0, 4))
		return -EINVAL;
	if (!req->num_grefs || req->num_grefs > xzc_max_pages || !urefs)
		return -EINVAL;
	if (!dumb->width || !dumb->height || !dumb->bpp || dumb->bpp % 8)
		return -EINVAL;
	if (dumb->flags & ~XEN_ZCOPY_FROM_REFS_FLAGS)
		return -EINVAL;
	if (!xzc_domid_ok(req->otherend_id))
		return -EINVAL;
	pitch = DIV_ROUND_UP((u64)dumb->width * dumb->bpp, 8);
	if (pitch > U32_MAX)
		return -EINVAL;
	size = pitch * dumb->height;
	needed = DIV_ROUND_UP(size, PAGE_SIZE);
	/* more refs than needed are mapped; the object is num_grefs pages */
	if (req->num_grefs < needed)
		return -EINVAL;

	obj = xzc_obj_alloc(drm, XZC_FROM_REFS, req->num_grefs);
	if (!obj)
		return -ENOMEM;
	obj->domid = req->otherend_id;
	obj->refs = kvmalloc_array(obj->num_pages, sizeof(*obj->refs), GFP_KERNEL);
	obj->pages = kvcalloc(obj->num_pages, sizeof(*obj->pages), GFP_KERNEL);
	obj->handles = kvmalloc_array(obj->num_pages, sizeof(*obj->handles), GFP_KERNEL);
	wait = kzalloc(sizeof(*wait), GFP_KERNEL);
	if (!obj->refs || !obj->pages || !obj->handles || !wait) {
		ret = -ENOMEM;
		goto err_free_obj;
	}
	memset(obj->handles, 0xff, obj->num_pages * sizeof(*obj->handles));
	if (copy_from_user(obj->refs, urefs, obj->num_pages * sizeof(u32))) {
		ret = -EFAULT;
		goto err_free_obj;
	}
	contiguous = xzc_contiguous || (dumb->flags & XEN_ZCOPY_FROM_REFS_FLAG_CONTIGUOUS);
	ret = xzc_map_foreign(xdev, obj, contiguous);
	if (ret)
		goto err_free_obj_unmapped;

	kref_init(&wait->ref);		/* the object's reference */
	kref_get(&wait->ref);		/* the xarray's reference */
	init_completion(&wait->freed);
	init_waitqueue_head(&wait->pollq);
	wait->owner = file;
	wait->xdev = xdev;
	/*
	 * Count the handle before allocating it: the allocation may drop the
	 * lock, and concurrent calls on one file must not overshoot the cap.
	 */
	xa_lock(&xdev->waits);
	if (to_xzc_file(file)->waits >= xzc_max_wait_handles) {
		xa_unlock(&xdev->waits);
		kfree(wait);
		ret = -EMFILE;
		goto err_put_obj;
	}
	to_xzc_file(file)->waits++;
	ret = __xa_alloc_cyclic(&xdev->waits, &id, wait, XA_LIMIT(1, U32_MAX),
				&xdev->next_wait_id, GFP_KERNEL);
	if (ret < 0)
		to_xzc_file(file)->waits--;
	xa_unlock(&xdev->waits);
	if (ret < 0) {
		kfree(wait);
		goto err_put_obj;
	}
	wait->id = id;
	obj->wait = wait;

	/* From here on the object's free callback undoes everything. */
	ret = drm_gem_handle_create(file, &obj->base, &handle);
	if (ret)
		goto err_put_obj;
	drm_gem_object_put(&obj->base);	/* the handle holds it now */

	dumb->pitch = pitch;
	dumb->size = size;
	dumb->handle = handle;
	req->wait_handle = id;
	return 0;

err_put_obj:
	drm_gem_object_put(&obj->base);
	return ret;
err_free_obj_unmapped:
	/* xzc_map_foreign released the backing pages on failure */
	kvfree(obj->pages);
	obj->pages = NULL;
err_free_obj:
	kfree(wait);
	xzc_obj_destroy(xdev, obj);
	return ret;
}

struct drm_gem_object *xzc_gem_import_sg_table(struct drm_device *drm,
					       struct dma_buf_attachment *attach,
					       struct sg_table *sgt)
{
	size_t size = attach->dmabuf->size;
	struct scatterlist *sg;
	struct xzc_obj *obj;
	u64 pages = 0;
	int i;

	if (!size || !PAGE_ALIGNED(size) || size / PAGE_SIZE > xzc_max_pages)
		return ERR_PTR(-EINVAL);
	/* Only struct page backed, page-aligned memory can be granted. */
	for_each_sgtable_sg(sgt, sg, i) {
		if (!sg_page(sg) || sg->offset || !PAGE_ALIGNED(sg->length))
			return ERR_PTR(-EINVAL);
		/* real memory of this domain only: no I/O or foreign frames */
		if (!pfn_valid(page_to_pfn(sg_page(sg))) ||
		    !pfn_valid(page_to_pfn(sg_page(sg)) + (sg->length >> PAGE_SHIFT) - 1))
			return ERR_PTR(-EINVAL);
		pages += sg->length >> PAGE_SHIFT;
	}
	if (pages != size / PAGE_SIZE)
		return ERR_PTR(-EINVAL);

	obj = xzc_obj_alloc(drm, XZC_IMPORTED, size / PAGE_SIZE);
	if (!obj)
		return ERR_PTR(-ENOMEM);
	obj->sgt = sgt;
	return &obj->base;
}

/*
 * Reserves count grant references without granting anything yet; on failure
 * none stays reserved. The allocator takes at most U16_MAX per call.
 */
static int xzc_claim_refs(grant_ref_t *refs, u32 count)
{
	grant_ref_t head;
	u32 i = 0, chunk;
	int ret;

	while (i < count) {
		chunk = min_t(u32, count - i, U16_MAX);
		ret = gnttab_alloc_grant_references(chunk, &head);
		if (ret)
			goto err_free_claimed;
		while (chunk--)
			refs[i++] = gnttab_claim_grant_reference(&head);
	}
	return 0;

err_free_claimed:
	while (i--)
		gnttab_free_grant_reference(refs[i]);
	return ret;
}

int xzc_ioctl_to_refs(struct drm_device *drm, void *data, struct drm_file *file)
{
	struct drm_xen_zcopy_dumb_to_refs *req = data;
	struct xzc_device *xdev = to_xzc_device(drm);
	u32 __user *urefs = (u32 __user *)req->grefs;
	u8 *raw = data;
	struct drm_gem_object *gem;
	struct sg_page_iter iter;
	struct xzc_obj *obj;
	grant_ref_t *refs;
	u32 i = 0;
	int ret;

	if (memchr_inv(raw + 4, 0, 4) || memchr_inv(raw + 28, 0, 4))
		return -EINVAL;
	if (!req->num_grefs || !urefs || !xzc_domid_ok(req->otherend_id))
		return -EINVAL;
	gem = drm_gem_object_lookup(file, req->handle);	/* held until the end */
	if (!gem)
		return -EINVAL;
	obj = to_xzc_obj(gem);
	if (obj->kind != XZC_IMPORTED || !obj->sgt) {
		ret = -EINVAL;
		goto out_put;
	}
	if (req->num_grefs != obj->num_pages) {
		ret = -EINVAL;
		goto out_put;
	}
	mutex_lock(&obj->lock);
	if (obj->granted) {
		ret = -EBUSY;
		goto out_unlock;
	}
	refs = kvmalloc_array(obj->num_pages, sizeof(*refs), GFP_KERNEL);
	if (!refs) {
		ret = -ENOMEM;
		goto out_unlock;
	}
	ret = xzc_claim_refs(refs, obj->num_pages);	/* -ENOSPC: table exhausted */
	if (ret)
		goto err_free_refs;
	/*
	 * Hand the refs out before granting anything. Refs are small, guessable
	 * integers: a guest may try to map them at any time, so if the copy
	 * fails no page may ever have been reachable through them.
	 */
	if (copy_to_user(urefs, refs, obj->num_pages * sizeof(u32))) {
		ret = -EFAULT;
		goto err_release_refs;
	}
	/* import_sg_table checked that the table holds exactly num_pages pages */
	for_each_sgtable_page(obj->sgt, &iter, 0) {
		if (WARN_ON_ONCE(i == obj->num_pages))
			break;
		gnttab_grant_foreign_access_ref(refs[i++], req->otherend_id,
						xen_page_to_gfn(sg_page_iter_page(&iter)), 0);
	}
	atomic64_add(i, &xdev->granted_pages);
	for (; i < obj->num_pages; i++) {	/* never: keep the refs consistent */
		gnttab_free_grant_reference(refs[i]);
		refs[i] = INVALID_GRANT_REF;
	}
	obj->domid = req->otherend_id;
	obj->granted = refs;
	mutex_unlock(&obj->lock);
	drm_gem_object_put(gem);
	return 0;

err_release_refs:
	for (i = 0; i < obj->num_pages; i++)
		gnttab_free_grant_reference(refs[i]);
err_free_refs:
	kvfree(refs);
out_unlock:
	mutex_unlock(&obj->lock);
out_put:
	drm_gem_object_put(gem);
	return ret;
}

/*
 * The wait behind handle id with a reference for the caller, or NULL when it
 * is unknown, another file's, or already consumed.
 */
static struct xzc_wait *xzc_wait_get(struct xzc_device *xdev, struct drm_file *file, u32 id)
{
	struct xzc_wait *wait;

	xa_lock(&xdev->waits);
	wait = xa_load(&xdev->waits, id);
	if (wait && (wait->owner != file || !kref_get_unless_zero(&wait->ref)))
		wait = NULL;
	xa_unlock(&xdev->waits);
	return wait;
}

/* Takes the handle out of the xarray (if no one did yet) and uncounts it. */
static void xzc_wait_consume(struct xzc_device *xdev, struct drm_file *file,
			     struct xzc_wait *wait)
{
	bool consumed;

	xa_lock(&xdev->waits);
	consumed = __xa_cmpxchg(&xdev->waits, wait->id, wait, NULL, 0) == wait;
	if (consumed)
		to_xzc_file(file)->waits--;
	xa_unlock(&xdev->waits);
	if (consumed)
		kref_put(&wait->ref, xzc_wait_release);	/* the xarray's */
}

int xzc_ioctl_wait_free(struct drm_device *drm, void *data, struct drm_file *file)
{
	struct drm_xen_zcopy_dumb_wait_free *req = data;
	struct xzc_device *xdev = to_xzc_device(drm);
	struct xzc_wait *wait;
	long left;

	wait = xzc_wait_get(xdev, file, req->wait_handle);
	if (!wait)
		return -ENOENT;	/* unknown, another file's, or already waited for */

	atomic64_inc(&xdev->waiters);
	left = wait_for_completion_killable_timeout(&wait->freed,
						    msecs_to_jiffies(req->wait_to_ms));
	atomic64_dec(&xdev->waiters);
	/* a successful wait consumes the handle (concurrent waiters all return 0) */
	if (left > 0)
		xzc_wait_consume(xdev, file, wait);
	kref_put(&wait->ref, xzc_wait_release);	/* this call's */
	if (left > 0)
		return 0;
	return left ? (int)left : -ETIMEDOUT;
}

/* A WAIT_FREE_FD file: readable once the buffer is freed. */
static __poll_t xzc_wait_file_poll(struct file *filp, poll_table *pt)
{
	struct xzc_wait *wait = filp->private_data;

	poll_wait(filp, &wait->pollq, pt);
	return completion_done(&wait->freed) ? EPOLLIN | EPOLLRDNORM : 0;
}

static int xzc_wait_file_release(struct inode *inode, struct file *filp)
{
	struct xzc_wait *wait = filp->private_data;

	atomic64_dec(&wait->xdev->wait_fds);
	kref_put(&wait->ref, xzc_wait_release);	/* the file's */
	return 0;
}

static const struct file_operations xzc_wait_file_fops = {
	.owner = THIS_MODULE,
	.poll = xzc_wait_file_poll,
	.release = xzc_wait_file_release,
	.llseek = noop_llseek,
};

int xzc_ioctl_wait_free_fd(struct drm_device *drm, void *data, struct drm_file *file)
{
	struct drm_xen_zcopy_dumb_wait_free_fd *req = data;
	struct xzc_device *xdev = to_xzc_device(drm);
	struct xzc_wait *wait;
	struct file *filp;
	int fd;

	if ((req->flags & ~DRM_XEN_ZCOPY_WAIT_FREE_FD_IF_BUSY) || req->pad)
		return -EINVAL;
	wait = xzc_wait_get(xdev, file, req->wait_handle);
	if (!wait)
		return -ENOENT;	/* unknown, another file's, or already waited for */

	if ((req->flags & DRM_XEN_ZCOPY_WAIT_FREE_FD_IF_BUSY) &&
	    completion_done(&wait->freed)) {
		/* freed already: the wait is over without a file */
		xzc_wait_consume(xdev, file, wait);
		kref_put(&wait->ref, xzc_wait_release);	/* this call's */
		req->fd = -1;
		return 0;
	}

	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0)
		goto err_put_wait;
	/* the file takes over this call's reference */
	filp = anon_inode_getfile("xen_zcopy_wait", &xzc_wait_file_fops, wait, O_RDONLY);
	if (IS_ERR(filp)) {
		put_unused_fd(fd);
		fd = PTR_ERR(filp);
		goto err_put_wait;
	}
	atomic64_inc(&xdev->wait_fds);

	/* the handle becomes the file: consumed, and no longer counted */
	xzc_wait_consume(xdev, file, wait);

	req->fd = fd;
	fd_install(fd, filp);
	return 0;

err_put_wait:
	kref_put(&wait->ref, xzc_wait_release);
	return fd;
}

/* The file is going away: its wait handles go with it. */
void xzc_file_release_waits(struct xzc_device *xdev, struct drm_file *file)
{
	struct xzc_wait *wait;
	unsigned long id;

	xa_for_each(&xdev->waits, id, wait) {
		if (wait->owner != file)
			continue;
		if (xa_cmpxchg(&xdev->waits, id, wait, NULL, 0) == wait)
			kref_put(&wait->ref, xzc_wait_release);
	}
}
