/** The CLI's parsing and output, without devices. */
import { describe, expect, it } from 'vitest';

import { buildCli, formatProbe, formatStats, parseStats } from '../../lib/cli.js';
import type { Capabilities } from '../../lib/probe.js';

const caps: Capabilities = {
  xen: true,
  dom0: true,
  guestType: 'PV',
  zcopy: { loaded: false, node: undefined, version: undefined, maxPages: undefined },
  gntdev: { present: true, accessible: false, dmabuf: false },
  gntalloc: { present: true, accessible: true, limit: 1024 },
};

describe('xen-zcopy CLI', () => {
  it('reports each capability and the fix for what is missing', () => {
    const out = formatProbe(caps);
    expect(out).toContain('ok   control domain (Dom0), PV');
    expect(out).toMatch(/MISS xen_drm_zcopy module\n {7}fix: sudo modprobe xen_drm_zcopy/);
    expect(out).toMatch(/MISS \/dev\/xen\/gntdev\n {7}fix: run as root or in the xen-zcopy group/);
    expect(out).toContain('ok   /dev/xen/gntalloc, limit 1024 pages');
  });

  it('parses and aligns the module counters', () => {
    const s = parseStats('live_objects 2\nmapped_foreign_pages 2025\n');
    expect(s).toEqual({ live_objects: 2, mapped_foreign_pages: 2025 });
    expect(formatStats(s)).toBe('live_objects          2\nmapped_foreign_pages  2025');
  });

  it('has its five commands and rejects unknown ones', async () => {
    const cli = buildCli();
    expect(cli.commands.map((c) => c.name())).toEqual(['probe', 'stats', 'selftest', 'display-backend', 'demo']);
    cli.exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    await expect(cli.parseAsync(['node', 'xen-zcopy', 'frobnicate'])).rejects.toMatchObject({ code: 'commander.unknownCommand' });
    const stats = buildCli().commands.find((c) => c.name() === 'stats')!;
    expect(stats.options.map((o) => o.long)).toEqual(['--json', '--watch']);
  });

  it('display-backend has its options, and formats its log lines', async () => {
    const cmd = buildCli().commands.find((c) => c.name() === 'display-backend')!;
    expect(cmd.options.map((o) => o.long)).toEqual(['--sink', '--kms-device', '--copy', '--refresh', '--be-alloc', '--json', '--verbose', '--once']);
    const { formatEvent } = await import('../../lib/cli/display-backend.js');
    expect(formatEvent({ type: 'device', domid: 3, device: 0, state: 'Connected' })).toBe('dom3/vdispl0 Connected');
    expect(formatEvent({ type: 'request', domid: 3, device: 0, connector: 1, op: 0x15, id: 9, status: -22, ms: 1.25 }))
      .toBe('dom3/vdispl0 conn1 PG_FLIP #9 -> -22 (1.3 ms)');
    expect(formatEvent({ type: 'frame', domid: 3, device: 0, connector: 0, frames: 60 })).toBe('dom3/vdispl0 conn0 60 fps');
  });
});
