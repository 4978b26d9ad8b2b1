/** The xen-zcopy command on the real module in Dom0. */
import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const cli = (...args: string[]) => spawnSync(process.execPath, ['dist/cli.js', ...args], { encoding: 'utf8' });

describe('xen-zcopy CLI in Dom0', () => {
  it('probe finds Xen, Dom0, the module and the grant devices', () => {
    const r = cli('probe', '--json');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ xen: true, dom0: true, zcopy: { loaded: true } });
    expect(cli('probe').stdout).not.toContain('MISS');
  });

  it('stats prints the live counters', () => {
    const r = cli('stats', '--json');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ live_objects: expect.any(Number), granted_pages: expect.any(Number) });
  });

  it('selftest passes on a real Dom0 and leaves nothing behind', () => {
    const r = cli('selftest');
    expect(r.stdout).toContain('selftest passed');
    expect(r.status).toBe(0);
    const dir = '/sys/devices/platform/xen_drm_zcopy.0/stats';
    const read = (name: string) => execFileSync('cat', [`${dir}/${name}`], { encoding: 'utf8' });
    expect(read('live_objects')).toBe('0\n');
    expect(read('mapped_foreign_pages')).toBe('0\n');
  });
});
