/**
 * What the harness tells the Xen suite about where it runs. Test code reads
 * this instead of caring whether it is in the QEMU-hosted Dom0 or a real one.
 */
import { readFileSync } from 'node:fs';

export interface XenEnv {
  /** 'vm': Dom0 booted by test/xen/vm under QEMU; 'host': a real Xen Dom0. */
  mode: 'vm' | 'host';
  /** Kernel ABI the module was built for. */
  kernelAbi: string;
  /** Path of the built xen_drm_zcopy.ko, '' when the repository has no module. */
  kmod: string;
  /** Writable directory for results and artefacts. */
  out: string;
  domUKernel: string;
  domURamdisk: string;
}

export function xenEnv(): XenEnv {
  const e = process.env;
  if (e.XZC_MODE !== 'vm' && e.XZC_MODE !== 'host') {
    throw new Error('the xen test project runs inside a Xen Dom0 started by the harness: use `npm run test:xen` (add `-- --host` on a real Xen host)');
  }
  return {
    mode: e.XZC_MODE,
    kernelAbi: e.XZC_KABI ?? '',
    kmod: e.XZC_KMOD ?? '',
    out: e.XZC_OUT ?? '/tmp',
    domUKernel: e.XZC_DOMU_KERNEL ?? '',
    domURamdisk: e.XZC_DOMU_RAMDISK ?? '',
  };
}

/** True in a Xen control domain (Dom0). */
export function inDom0(): boolean {
  try {
    return readFileSync('/proc/xen/capabilities', 'utf8').includes('control_d');
  } catch {
    return false;
  }
}

/**
 * True in a PV domain; false in an auto-translated one (an Arm Dom0, PVH/HVM),
 * where the module maps dma-bufs with vm_map_pages and its user_mapped_pages
 * counter (grant mappings into user PTEs, a PV mechanism) stays 0.
 */
export function pvDomain(): boolean {
  try {
    return readFileSync('/sys/hypervisor/guest_type', 'utf8').trim() === 'PV';
  } catch {
    return false;
  }
}
