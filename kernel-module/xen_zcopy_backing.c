// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Backing pages for FROM_REFS buffers, onto which the foreign grants are
 * mapped: unpopulated (ballooned) pages by default, or DMA-contiguous memory
 * whose frames are handed back to Xen first (for display controllers that
 * cannot scatter-gather; the dma-buf then has a single sg entry).
 *
 * Contiguous backing is refused in a PV domain: there the bus address of a
 * page is the machine frame the grant maps, i.e. the guest's own scattered
 * frame, so pseudo-physical contiguity buys nothing, and swiotlb-xen would
 * try to bounce the "contiguous" segment. It is offered where the domain is
 * auto-translated (PVH/HVM, ARM), behind XEN_ZCOPY_FROM_REFS_FLAG_CONTIGUOUS
 * or the `contiguous` module parameter, and only with autotranslated_unvalidated=1
 * until it has run on such a domain. The pages come from dma_alloc_pages(),
 * whose struct pages are right on coherent and non-coherent devices alike
 * (a dma_alloc_coherent() address may be a vmap or uncached remap, where
 * virt_to_page() is wrong).
 */
#include <linux/dma-mapping.h>
#include <linux/slab.h>
#include <drm/drm_print.h>
#include <xen/grant_table.h>
#include <xen/mem-reservation.h>
#include <xen/page.h>
#include <xen/xen.h>

#include "xen_zcopy.h"

static xen_pfn_t *xzc_frames(struct xzc_obj *obj)
{
	xen_pfn_t *frames = kvmalloc_array(obj->num_pages, sizeof(*frames), GFP_KERNEL);
	u32 i;

	if (frames)
		for (i = 0; i < obj->num_pages; i++)
			frames[i] = xen_page_to_gfn(obj->pages[i]);
	return frames;
}

static int xzc_backing_alloc_contiguous(struct xzc_obj *obj)
{
	struct device *dev = obj->base.dev->dev;
	size_t size = (size_t)obj->num_pages << PAGE_SHIFT;
	xen_pfn_t *frames;
	int released, ret;
	u32 i;

	if (xen_pv_domain()) {
		drm_dbg(obj->base.dev, "contiguous backing is not available in a PV domain\n");
		return -EOPNOTSUPP;
	}
	if (!xzc_autotranslated_allowed())
		return -EOPNOTSUPP;
	obj->dma_page = dma_alloc_pages(dev, size, &obj->dma_addr, DMA_BIDIRECTIONAL,
					GFP_KERNEL | __GFP_NOWARN);
	if (!obj->dma_page)
		return -ENOMEM;
	for (i = 0; i < obj->num_pages; i++)
		obj->pages[i] = nth_page(obj->dma_page, i);
	frames = xzc_frames(obj);
	if (!frames) {
		ret = -ENOMEM;
		goto err_free_dma;
	}
	/* give the frames back to Xen: the grants are mapped in their place */
	released = xenmem_reservation_decrease(obj->num_pages, frames);
	if (released != obj->num_pages) {
		/* partial: take back what was released, then fail */
		if (released > 0 &&
		    xenmem_reservation_increase(released, frames) != released) {
			drm_err(obj->base.dev, "cannot repopulate %d frames: leaking the buffer\n",
				released);
			kvfree(frames);
			obj->dma_page = NULL;
			return -ENOMEM;
		}
		ret = -ENOMEM;
		goto err_free_frames;
	}
	kvfree(frames);
	ret = gnttab_pages_set_private(obj->num_pages, obj->pages);
	if (ret) {
		xzc_backing_free(obj);
		return ret;
	}
	obj->contiguous = true;
	return 0;

err_free_frames:
	kvfree(frames);
err_free_dma:
	dma_free_pages(dev, size, obj->dma_page, obj->dma_addr, DMA_BIDIRECTIONAL);
	obj->dma_page = NULL;
	return ret;
}

int xzc_backing_alloc(struct xzc_obj *obj, bool contiguous)
{
	if (contiguous)
		return xzc_backing_alloc_contiguous(obj);
	return gnttab_alloc_pages(obj->num_pages, obj->pages) ? -ENOMEM : 0;
}

/* Releases the backing; the grants must be unmapped already. Never allocates
 * in the common (non-contiguous) case.
 */
void xzc_backing_free(struct xzc_obj *obj)
{
	xen_pfn_t *frames;
	int got;

	if (!obj->dma_page) {
		gnttab_free_pages(obj->num_pages, obj->pages);
		return;
	}
	gnttab_pages_clear_private(obj->num_pages, obj->pages);
	frames = xzc_frames(obj);
	got = frames ? xenmem_reservation_increase(obj->num_pages, frames) : 0;
	kvfree(frames);
	if (got != obj->num_pages) {
		/* unpopulated frames must never reach the page allocator */
		drm_err(obj->base.dev, "repopulated %d of %u frames: leaking the buffer\n",
			got, obj->num_pages);
	} else {
		dma_free_pages(obj->base.dev->dev, (size_t)obj->num_pages << PAGE_SHIFT,
			       obj->dma_page, obj->dma_addr, DMA_BIDIRECTIONAL);
	}
	obj->dma_page = NULL;
}
