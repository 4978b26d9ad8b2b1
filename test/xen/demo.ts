/**
 * `npm run demo`, smoke version: a DomU frontend grants a 1920x1080 XRGB8888
 * frame to Dom0, which maps it through the addon and checks every pixel; then
 * Dom0 grants a buffer back that the guest fills and Dom0 checks. The full
 * demo (zero-copy import through xen_drm_zcopy into vgem, PNGs) builds on the
 * kernel module and the TypeScript API.
 */
import { native, PROT_READ, PROT_WRITE } from '../../lib/binding.js';
import { DomU } from './fixture.js';
import { fillPattern, firstMismatch } from './pattern.js';

const WIDTH = 1920;
const HEIGHT = 1080;
const PAGES = Math.ceil((WIDTH * HEIGHT * 4) / 4096);
const b = native();
const t0 = performance.now();
const step = (msg: string) => console.log(`[${((performance.now() - t0) / 1000).toFixed(2)} s] ${msg}`);

step(`starting a DomU frontend`);
const guest = await DomU.start({ name: 'xzc-demo' });
const gntdev = b.open('/dev/xen/gntdev');
const gntalloc = b.open('/dev/xen/gntalloc');
try {
  step(`guest domid ${guest.domid} is up; it grants a ${WIDTH}x${HEIGHT} XRGB8888 frame (${PAGES} pages)`);
  const frame = await guest.share({ pages: PAGES, seed: 2026 });
  const index = b.gntdevMapGrantRefs(gntdev, guest.domid, frame.refs);
  const view = b.mmap(gntdev, PAGES * 4096, PROT_READ, index);
  const bad = firstMismatch(new Uint32Array(view), 2026);
  b.munmap(view);
  b.gntdevUnmapGrantRef(gntdev, index, PAGES);
  await guest.unshare(frame.id);
  if (bad !== -1) throw new Error(`guest frame differs at pixel ${bad}`);
  step('Dom0 mapped the guest frame and every pixel matches what the guest drew');

  const grant = b.gntallocAlloc(gntalloc, guest.domid, PAGES, true);
  const mine = b.mmap(gntalloc, PAGES * 4096, PROT_READ | PROT_WRITE, grant.index);
  fillPattern(new Uint32Array(mine), 0);
  await guest.mapWrite(grant.refs, 7);
  const back = firstMismatch(new Uint32Array(mine), 7);
  b.munmap(mine);
  b.gntallocDealloc(gntalloc, grant.index, PAGES);
  if (back !== -1) throw new Error(`Dom0 buffer differs at pixel ${back}`);
  step('the guest drew into a Dom0 buffer granted to it; Dom0 sees every pixel');
} finally {
  b.close(gntdev);
  b.close(gntalloc);
  await guest.destroy();
  step('guest destroyed');
}
