/**
 * The xen_drm_zcopy module's live counters, from sysfs: one value per file
 * under `/sys/devices/platform/xen_drm_zcopy.0/stats/`.
 *
 * @module
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The module's counter directory. */
export const STATS_DIR = '/sys/devices/platform/xen_drm_zcopy.0/stats';

/** Counter name → value; undefined when the module is not loaded. */
export function readModuleStats(dir: string = STATS_DIR): Record<string, number> | undefined {
  if (!existsSync(dir)) return undefined;
  const out: Record<string, number> = {};
  for (const name of readdirSync(dir).sort()) out[name] = Number(readFileSync(join(dir, name), 'utf8').trim());
  return out;
}
