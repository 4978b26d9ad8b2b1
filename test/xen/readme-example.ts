// The backend program shown in README.md ("A Dom0 backend in 25 lines"); the
// Xen suite runs it against a real guest. Keep the two in sync.
import { DrmDevice, ZeroCopyDevice } from '../../lib/index.js';

export async function backend(domid: number, refs: Uint32Array, sendToGuest: (refs: Uint32Array) => Promise<void>) {
  const zc = ZeroCopyDevice.open(); // finds the xen_drm_zcopy node
  const gpu = DrmDevice.open('vgem'); // any DRM driver: vgem here, real hardware in production
  try {
    // 1. The guest's 1920x1080 XRGB8888 frame as a dma-buf: its pages, no copy.
    const frame = await zc.importGuestBuffer({ domid, refs, width: 1920, height: 1080, bpp: 32 });
    gpu.importDmaBuf(frame.dmabuf); // the driver now scans out / reads the guest's pages
    const view = frame.dmabuf.map('read'); // CPU access, bracketed by dma-buf sync
    const topLeft = view.bytes.readUInt32LE(0); // a read-only view: writing throws
    await view.close();

    // 2. The other way: a Dom0 buffer whose pages the guest may map.
    const mine = gpu.createDumbDmaBuf(1920, 1080, 32);
    const granted = await zc.exportToGuest(mine, { domid });
    await sendToGuest(granted.refs);
    await granted.close();
    await mine.close();

    // 3. Teardown in the documented order; resolves once the guest's pages are free.
    const released = await frame.close(); // 'freed' | 'already-freed'
    return { topLeft, released };
  } finally {
    await gpu.close();
    await zc.close();
  }
}
