/**
 * `npm run demo` (runs in Dom0, started by the harness): a DomU frontend
 * renders a 1920x1080 XRGB8888 test image into pages it grants to Dom0; the
 * Node backend imports them zero-copy through xen_drm_zcopy, hands the
 * dma-buf to a real DRM driver (vgem), reads the pixels back and saves
 * demo-out/guest-frame.png. Then the reverse path: a vgem buffer granted to
 * the guest, which draws into it; Dom0 saves demo-out/dom0-buffer.png. Both
 * are compared pixel for pixel with what the guest drew.
 *
 * Then the display path, the package's main job: the Node display backend
 * serves a second guest's drm_xen_front; a guest app draws 60 frames into its
 * own /dev/dri/card0 and page-flips them; the backend shows them (vgem import,
 * 60 Hz) and Dom0 saves frames 0, 29 and 59 as demo-out/display-frame-*.png.
 * Last, scan-out: the backend's KMS sink shows a guest's frames on vkms from
 * the guest's own pages, and vkms's writeback captures of frames 0, 14 and 29
 * become demo-out/scanout-frame-*.png.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { DisplayBackend, DrmDevice, ImportSink, KmsDevice, KmsSink, probe, ZeroCopyDevice } from '../../lib/index.js';
import { renderDemo } from './demo-image.js';
import { loadVkms, unloadVkms } from './drm.js';
import { DomU } from './fixture.js';
import { encodePng } from './png.js';

const WIDTH = 1920;
const HEIGHT = 1080;
const PAGES = (WIDTH * HEIGHT * 4) / 4096;
const outDir = join(process.env.XZC_OUT ?? '.', 'demo-out');
const t0 = performance.now();
const step = (msg: string) => console.log(`[${((performance.now() - t0) / 1000).toFixed(2).padStart(6)} s] ${msg}`);

function compare(what: string, got: Buffer, want: Uint32Array): void {
  const px = new Uint32Array(got.buffer, got.byteOffset, want.length);
  for (let i = 0; i < want.length; i++) {
    if (px[i] !== want[i]) {
      throw new Error(`${what}: pixel (${i % WIDTH}, ${Math.floor(i / WIDTH)}) is 0x${px[i]!.toString(16)}, the guest drew 0x${want[i]!.toString(16)}`);
    }
  }
}

mkdirSync(outDir, { recursive: true });
const images: Record<string, { style: 0 | 1; frame: number; domid: number; width?: number; height?: number }> = {};
const caps = probe();
step(`probe: xen=${caps.xen} dom0=${caps.dom0} ${caps.guestType ?? ''}; xen_drm_zcopy ${caps.zcopy.version ?? 'missing'} at ${caps.zcopy.node ?? '-'} (max ${caps.zcopy.maxPages} pages); gntdev dma-buf ${caps.gntdev.dmabuf ? 'yes' : 'no (Debian kernel)'}`);
step('starting a DomU frontend (PV guest, 128 MiB)');
const guest = await DomU.start({ name: `xzc-demo-${process.pid}` });
const zc = ZeroCopyDevice.open();
const vgem = DrmDevice.open('vgem');
try {
  step(`guest domid ${guest.domid} is up`);
  const frame = await guest.share({ pages: PAGES, seed: 0 });
  await guest.draw(frame.id, { width: WIDTH, height: HEIGHT, style: 0, frame: 1 });
  step(`the guest rendered a ${WIDTH}x${HEIGHT} XRGB8888 frame into ${PAGES} pages and granted them to Dom0`);
  const t1 = performance.now();
  const buf = await zc.importGuestBuffer({ domid: guest.domid, refs: frame.refs, width: WIDTH, height: HEIGHT, bpp: 32 });
  const handle = vgem.importDmaBuf(buf.dmabuf);
  step(`zero-copy import: FROM_REFS + dma-buf export + vgem import (handle ${handle}) in ${(performance.now() - t1).toFixed(1)} ms`);
  const view = buf.dmabuf.map('read');
  const pixels = view.toBuffer(); // a copy: the PNG encoder wants a plain Buffer
  await view.close();
  compare('guest frame', pixels, renderDemo({ width: WIDTH, height: HEIGHT, style: 0, frame: 1, domid: guest.domid }));
  writeFileSync(join(outDir, 'guest-frame.png'), encodePng(pixels, WIDTH, HEIGHT, buf.format.pitch));
  step('Dom0 read the guest\'s own pages through the dma-buf: every pixel as drawn -> demo-out/guest-frame.png');
  step(`released: ${await buf.close()} (vgem handle, zcopy handle, dma-buf fd closed; WAIT_FREE)`);
  await guest.unshare(frame.id);

  const mine = vgem.createDumbDmaBuf(WIDTH, HEIGHT, 32);
  const granted = await zc.exportToGuest(mine, { domid: guest.domid });
  step(`Dom0 granted a vgem buffer to the guest: ${granted.refs.length} refs`);
  await guest.mapDraw(granted.refs, { width: WIDTH, height: HEIGHT, style: 1, frame: 0 });
  const back = mine.map('read');
  const backPixels = back.toBuffer();
  await back.close();
  compare('Dom0 buffer', backPixels, renderDemo({ width: WIDTH, height: HEIGHT, style: 1, frame: 0, domid: guest.domid }));
  writeFileSync(join(outDir, 'dom0-buffer.png'), encodePng(backPixels, WIDTH, HEIGHT, mine.format!.pitch));
  await granted.close();
  await mine.close();
  step('the guest drew into the Dom0 buffer; Dom0 sees every pixel -> demo-out/dom0-buffer.png');
  images['guest-frame.png'] = { style: 0, frame: 1, domid: guest.domid };
  images['dom0-buffer.png'] = { style: 1, frame: 0, domid: guest.domid };
} finally {
  await vgem.close();
  await zc.close();
  await guest.destroy();
  step('guest destroyed');
}

// The display path: the Node backend serving a guest's drm_xen_front.
const DW = 1024;
const DH = 768;
const keep = new Set([0, 29, 59]);
let shown = 0;
const backend = await DisplayBackend.start({
  sink: () => new ImportSink({
    refreshHz: 60,
    onFrame: ({ fb, pixels }) => {
      const k = shown++;
      if (!keep.has(k)) return;
      const copy = Buffer.alloc(fb.buffer.pitch * fb.height); // the PNG's copy; the sink shows the guest's pages
      pixels.copy(copy, 0, 0, copy.length);
      writeFileSync(join(outDir, `display-frame-${k}.png`), encodePng(copy, DW, DH, fb.buffer.pitch));
    },
  }),
  onEvent: (e) => {
    if (e.type === 'device') step(`backend: dom${e.domid}/vdispl${e.device} ${e.state}`);
    if (e.type === 'error') step(`backend error: ${e.message}`);
  },
});
step('display backend started (watching /local/domain/0/backend/vdispl)');
const display = await DomU.start({ name: `xzc-demo-display-${process.pid}`, vdispl: `backend=0,be-alloc=0,connectors=id0:${DW}x${DH}` });
try {
  step(`guest domid ${display.domid} with a ${DW}x${DH} PV display is up; loading drm_xen_front`);
  await display.loadFront();
  await display.waitDisplay();
  const mode = await display.drmOpen(0);
  step(`the guest's /dev/dri/card0 is up: connector ${mode.connectorId}, ${mode.width}x${mode.height}@${mode.refresh}`);
  const loop = await display.drmLoop(60);
  step(`the guest app drew and page-flipped ${loop.flips} frames in ${(loop.ms / 1000).toFixed(1)} s (${(loop.flips * 1000 / loop.ms).toFixed(1)} fps under TCG); each frame-done came from the backend`);
  await display.drmClose();
  for (const k of keep) images[`display-frame-${k}.png`] = { style: 0, frame: k, domid: display.domid, width: DW, height: DH };
  step(`Dom0 saved frames ${[...keep].join(', ')} of the guest's own pages -> demo-out/display-frame-*.png`);
} finally {
  await display.destroy();
  await backend.close();
  step('display guest destroyed, backend stopped');
}
// Scan-out on a real KMS driver: the same guest app, the backend's KMS sink
// on vkms scanning out the guest's own pages, and what vkms composed
// captured through its writeback connector.
await loadVkms();
const kms = KmsDevice.open('vkms');
const scanKeep = new Set([0, 14, 29]);
let scanned = 0;
const scanBackend = await DisplayBackend.start({
  sink: () => new KmsSink({
    kms,
    onCapture: ({ fb, pixels }) => {
      const k = scanned++;
      if (!scanKeep.has(k)) return;
      const copy = Buffer.alloc(fb.width * 4 * fb.height); // the capture buffer is reused for the next frame
      pixels.copy(copy, 0, 0, copy.length);
      writeFileSync(join(outDir, `scanout-frame-${k}.png`), encodePng(copy, fb.width, fb.height, fb.width * 4));
    },
  }),
  onEvent: (e) => {
    if (e.type === 'error') step(`backend error: ${e.message}`);
  },
});
step(`display backend with the KMS sink on ${kms.drm.driver} (${kms.outputs.map((o) => o.name).join(', ')})`);
const scan = await DomU.start({ name: `xzc-demo-scanout-${process.pid}`, vdispl: `backend=0,be-alloc=0,connectors=id0:${DW}x${DH}` });
try {
  await scan.loadFront();
  await scan.waitDisplay();
  await scan.drmOpen(0);
  const loop = await scan.drmLoop(30);
  step(`the guest flipped ${loop.flips} frames; vkms scanned out the guest's own pages (${(loop.flips * 1000 / loop.ms).toFixed(1)} fps, each captured)`);
  await scan.drmClose();
  for (const k of scanKeep) images[`scanout-frame-${k}.png`] = { style: 0, frame: k, domid: scan.domid, width: DW, height: DH };
  step(`Dom0 saved vkms's writeback captures of frames ${[...scanKeep].join(', ')} -> demo-out/scanout-frame-*.png`);
} finally {
  await scan.destroy();
  await scanBackend.close();
  await kms.close();
  unloadVkms();
  step('scan-out guest destroyed, backend stopped, vkms unloaded');
}

// what was drawn, for checking the PNGs afterwards (test/xen/check-demo.ts)
writeFileSync(join(outDir, 'demo.json'), `${JSON.stringify({ width: WIDTH, height: HEIGHT, images }, null, 2)}\n`);
