/**
 * What this host offers: Xen, Dom0, PV or PVH, the xen_drm_zcopy module,
 * gntdev (and its dma-buf ioctls), gntalloc.
 *
 * @module
 */
import { accessSync, constants, readFileSync } from 'node:fs';

import { native, type NativeBinding } from './binding.js';
import { findDrmNode } from './drm/device.js';

export interface Capabilities {
  /** Running under Xen. */
  xen: boolean;
  /** In the control domain (Dom0). */
  dom0: boolean;
  /** 'PV', 'PVH' or 'HVM' when known. */
  guestType: string | undefined;
  zcopy: {
    loaded: boolean;
    /** The /dev/dri/card* node, if found. */
    node: string | undefined;
    version: string | undefined;
    /** Module parameter max_pages: largest buffer in pages. */
    maxPages: number | undefined;
  };
  gntdev: { present: boolean; accessible: boolean; dmabuf: boolean };
  gntalloc: { present: boolean; accessible: boolean; limit: number | undefined };
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function exists(path: string, mode = constants.F_OK): boolean {
  try {
    accessSync(path, mode);
    return true;
  } catch {
    return false;
  }
}

/** IOCTL_GNTDEV_DMABUF_EXP_FROM_REFS with no refs: ENOTTY when the kernel lacks it. */
function gntdevHasDmabuf(b: NativeBinding): boolean {
  let fd: number;
  try {
    fd = b.open('/dev/xen/gntdev');
  } catch {
    return false;
  }
  try {
    const IOCTL_GNTDEV_DMABUF_EXP_FROM_REFS = 0x144709;
    return b.zcopyIoctlRaw(fd, IOCTL_GNTDEV_DMABUF_EXP_FROM_REFS, new Uint8Array(20)) !== 25 /* ENOTTY */;
  } finally {
    b.close(fd);
  }
}

export function probe(opts: { binding?: NativeBinding } = {}): Capabilities {
  const b = opts.binding ?? native();
  const xen = read('/sys/hypervisor/type') === 'xen' || exists('/proc/xen/capabilities');
  const dom0 = (read('/proc/xen/capabilities') ?? '').includes('control_d');
  const node = findDrmNode('xen_drm_zcopy', b);
  let version: string | undefined;
  if (node) {
    const fd = b.open(node);
    try {
      const v = b.drmVersion(fd);
      version = `${v.major}.${v.minor}.${v.patchlevel}`;
    } finally {
      b.close(fd);
    }
  }
  const maxPages = read('/sys/module/xen_drm_zcopy/parameters/max_pages');
  const limit = read('/sys/module/xen_gntalloc/parameters/limit');
  return {
    xen,
    dom0,
    guestType: read('/sys/hypervisor/guest_type'),
    zcopy: { loaded: exists('/sys/module/xen_drm_zcopy'), node, version, maxPages: maxPages ? Number(maxPages) : undefined },
    gntdev: {
      present: exists('/dev/xen/gntdev'),
      accessible: exists('/dev/xen/gntdev', constants.R_OK | constants.W_OK),
      dmabuf: gntdevHasDmabuf(b),
    },
    gntalloc: {
      present: exists('/dev/xen/gntalloc'),
      accessible: exists('/dev/xen/gntalloc', constants.R_OK | constants.W_OK),
      limit: limit ? Number(limit) : undefined,
    },
  };
}
