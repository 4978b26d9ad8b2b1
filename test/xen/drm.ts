/** DRM helpers for the Xen suite: devices by driver name, module control. */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';

import { native } from '../../lib/binding.js';
import { readModuleStats } from '../../lib/zcopy/stats.js';

const b = native();

/** The /dev/dri/card* node whose DRM driver is `name`, or undefined. */
export function findDrmNode(name: string): string | undefined {
  for (const entry of readdirSync('/dev/dri').filter((n) => n.startsWith('card')).sort()) {
    const path = `/dev/dri/${entry}`;
    const fd = b.open(path);
    try {
      if (b.drmVersion(fd).name === name) return path;
    } finally {
      b.close(fd);
    }
  }
  return undefined;
}

export function openDrm(name: string): number {
  const path = findDrmNode(name);
  if (!path) throw new Error(`no DRM device of driver ${name}`);
  return b.open(path);
}

export interface ZcopyStats {
  live_objects: number;
  mapped_foreign_pages: number;
  user_mapped_pages: number;
  vmapped_pages: number;
  granted_pages: number;
  deferred_reclaims: number;
  deferred_reclaims_total: number;
  waiters: number;
  wait_fds: number;
}

/** The module's live counters from sysfs. */
export function zcopyStats(): ZcopyStats {
  const s = readModuleStats();
  if (!s) throw new Error('xen_drm_zcopy is not loaded');
  return s as unknown as ZcopyStats;
}

export function moduleLoaded(): boolean {
  try {
    readFileSync('/sys/module/xen_drm_zcopy/refcnt');
    return true;
  } catch {
    return false;
  }
}

/** rmmod; returns the error text instead of throwing. */
export function rmmod(): string | undefined {
  try {
    execFileSync('rmmod', ['xen_drm_zcopy'], { stdio: ['ignore', 'pipe', 'pipe'] });
    return undefined;
  } catch (e) {
    return String((e as { stderr?: Buffer }).stderr ?? e);
  }
}

// The harness's module parameters (XZC_KMOD_PARAMS, e.g. the arm64 harness's
// autotranslated_unvalidated=1) apply to every load a test makes, before its own.
const harnessParams = (process.env.XZC_KMOD_PARAMS ?? '').split(' ').filter((p) => p !== '');

export function insmod(path: string, params: string[] = []): void {
  execFileSync('insmod', [path, ...harnessParams, ...params], { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Polls `cond` every 50 ms until it holds or `timeoutMs` passes. */
export async function until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

/**
 * Loads vkms (built out of tree by the harness, path in $XZC_VKMS; on a real
 * host without it, modprobe) unless it is loaded already. Returns the path of
 * its /dev/dri/card* node.
 */
export async function loadVkms(): Promise<string> {
  if (!existsSync('/sys/module/vkms')) {
    // The display belongs to the backend: no fbdev emulation (and so no fbcon
    // holding the CRTC and a reference on the module)
    const fbdev = '/sys/module/drm_kms_helper/parameters/fbdev_emulation';
    if (existsSync(fbdev)) writeFileSync(fbdev, 'N');
    const ko = process.env.XZC_VKMS ?? '';
    if (ko) execFileSync('insmod', [ko], { stdio: ['ignore', 'pipe', 'pipe'] });
    else execFileSync('modprobe', ['vkms'], { stdio: ['ignore', 'pipe', 'pipe'] });
  }
  let node: string | undefined;
  if (!(await until(() => (node = findDrmNode('vkms')) !== undefined, 10_000))) {
    throw new Error('vkms loaded but no /dev/dri/card* of driver vkms appeared');
  }
  return node as string;
}

/**
 * Unloads vkms. rmmod fails while anything still holds it (an open file, a
 * framebuffer, an imported buffer): that is the check that nobody leaked a
 * reference. Returns the error text instead of throwing; undefined when it
 * was not loaded.
 */
export function unloadVkms(): string | undefined {
  if (!existsSync('/sys/module/vkms')) return undefined;
  try {
    execFileSync('rmmod', ['vkms'], { stdio: ['ignore', 'pipe', 'pipe'] });
    return undefined;
  } catch (e) {
    return String((e as { stderr?: Buffer }).stderr ?? e);
  }
}
