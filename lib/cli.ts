#!/usr/bin/env node
/**
 * The `xen-zcopy` command: probe, stats, selftest, demo.
 *
 * @module
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Command, Option } from 'commander';

import { DrmDevice } from './drm/device.js';
import { ZeroCopyDevice } from './zcopy/device.js';
import { GrantAllocator, GrantMapper } from './xen/grants.js';
import { probe, type Capabilities } from './probe.js';
import { readModuleStats } from './zcopy/stats.js';
import { displayBackendCommand } from './cli/display-backend.js';


/** Human-readable probe report: one line per capability, with the fix for each missing piece. */
export function formatProbe(c: Capabilities): string {
  const line = (ok: boolean, what: string, fix?: string) => `${ok ? 'ok  ' : 'MISS'} ${what}${!ok && fix ? `\n       fix: ${fix}` : ''}`;
  return [
    line(c.xen, 'running under Xen', 'run on a Xen host (or use the QEMU-hosted harness: npm run vm)'),
    line(c.dom0, `control domain (Dom0)${c.guestType ? `, ${c.guestType}` : ''}`, 'run in Dom0 or a driver domain'),
    line(c.zcopy.loaded, `xen_drm_zcopy module${c.zcopy.version ? ` ${c.zcopy.version}` : ''}${c.zcopy.node ? ` at ${c.zcopy.node}` : ''}${c.zcopy.maxPages ? `, max ${c.zcopy.maxPages} pages` : ''}`,
      'sudo modprobe xen_drm_zcopy (DKMS) or sudo insmod kernel-module/xen_drm_zcopy.ko'),
    line(c.gntdev.present && c.gntdev.accessible, '/dev/xen/gntdev', c.gntdev.present ? 'run as root or in the xen-zcopy group (udev rule in kernel-module/README.md)' : 'sudo modprobe xen-gntdev'),
    `info mainline gntdev dma-buf ioctls: ${c.gntdev.dmabuf ? 'present' : 'absent (not needed: xen_drm_zcopy provides the path)'}`,
    line(c.gntalloc.present && c.gntalloc.accessible, `/dev/xen/gntalloc${c.gntalloc.limit ? `, limit ${c.gntalloc.limit} pages` : ''}`,
      c.gntalloc.present ? 'run as root or in the xen-zcopy group' : 'sudo modprobe xen-gntalloc'),
  ].join('\n');
}

export function parseStats(text: string): Record<string, number> {
  return Object.fromEntries(text.trim().split('\n').filter(Boolean).map((l) => {
    const [k, v] = l.trim().split(/\s+/);
    return [k!, Number(v)];
  }));
}

export function formatStats(s: Record<string, number>): string {
  const w = Math.max(...Object.keys(s).map((k) => k.length));
  return Object.entries(s).map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n');
}

/**
 * Self-grant loopback on a real Dom0: Dom0 grants pages to itself, imports
 * them zero-copy and checks the pixels, exports a vgem buffer and maps it
 * back, and tears down. Returns the failures (empty when all passed).
 */
export async function selftest(log: (s: string) => void = console.log): Promise<string[]> {
  const failures: string[] = [];
  const check = (ok: boolean, what: string) => {
    log(`${ok ? 'pass' : 'FAIL'} ${what}`);
    if (!ok) failures.push(what);
  };
  const alloc = GrantAllocator.open();
  const mapper = GrantMapper.open();
  const zc = ZeroCopyDevice.open();
  const vgem = DrmDevice.open('vgem');
  try {
    const shared = alloc.share(0, 16);
    for (let i = 0; i < shared.buffer.length; i += 4) shared.buffer.writeUInt32LE((i * 2654435761) >>> 0, i);
    const buf = await zc.importGuestBuffer({ domid: 0, refs: shared.refs, width: 128, height: 128, bpp: 32 });
    vgem.importDmaBuf(buf.dmabuf);
    const view = buf.dmabuf.map('read');
    check(view.bytes.equals(shared.buffer), 'FROM_REFS: the dma-buf shows the granted pages');
    await view.close();
    check((await buf.close()) === 'freed', 'teardown and WAIT_FREE');
    await shared.close();

    const mine = vgem.createDumbDmaBuf(64, 64, 32);
    const w = mine.map('write');
    w.buffer.fill(0x5a);
    await w.close();
    const granted = await zc.exportToGuest(mine, { domid: 0 });
    const m = mapper.map(0, granted.refs);
    check(m.bytes.every((x) => x === 0x5a), 'TO_REFS: the granted pages show the Dom0 buffer');
    await m.close();
    await granted.close();
    await mine.close();
  } catch (e) {
    check(false, `unexpected error: ${(e as Error).message}`);
  } finally {
    await vgem.close();
    await zc.close();
    await mapper.close();
    await alloc.close();
  }
  return failures;
}

export function buildCli(): Command {
  const program = new Command('xen-zcopy')
    .description('Zero-copy display buffers between Xen domains: inspect and test this host')
    .showHelpAfterError();

  program.command('probe')
    .description('what this host offers (Xen, Dom0, PV/PVH, module, gntdev, gntalloc), with the fix for each missing piece')
    .option('--json', 'machine-readable output')
    .action((opts: { json?: boolean }) => {
      const caps = probe();
      console.log(opts.json ? JSON.stringify(caps, null, 2) : formatProbe(caps));
    });

  program.command('stats')
    .description("the module's live counters")
    .option('--json', 'machine-readable output')
    .addOption(new Option('--watch [ms]', 'print again every ms milliseconds').argParser((v) => Number(v)))
    .action(async (opts: { json?: boolean; watch?: number | true }) => {
      if (!readModuleStats()) {
        console.error('xen_drm_zcopy is not loaded: sudo modprobe xen_drm_zcopy');
        process.exitCode = 1;
        return;
      }
      const show = () => {
        const s = readModuleStats() ?? {};
        console.log(opts.json ? JSON.stringify(s) : `${formatStats(s)}\n`);
      };
      show();
      if (opts.watch === undefined) return;
      const every = opts.watch === true ? 1000 : opts.watch;
      for (;;) {
        await new Promise((r) => setTimeout(r, every));
        show();
      }
    });

  program.command('selftest')
    .description('self-grant loopback import/export/wait round trip on this Dom0 (exit status 0/1)')
    .action(async () => {
      const failures = await selftest();
      console.log(failures.length === 0 ? 'selftest passed' : `selftest failed: ${failures.length} check(s)`);
      process.exitCode = failures.length === 0 ? 0 : 1;
    });

  program.addCommand(displayBackendCommand());

  program.command('demo')
    .description('the end-to-end demo in QEMU-hosted Xen (needs the repository checkout: npm run demo)')
    .action(() => {
      const root = dirname(dirname(fileURLToPath(import.meta.url)));
      const vm = join(root, 'test', 'xen', 'vm');
      if (!existsSync(vm)) {
        console.error('the demo runs from a checkout of the repository: git clone ... && npm ci && npm run demo');
        process.exitCode = 1;
        return;
      }
      const r = spawnSync('bash', [vm, 'run', '--', 'node', '--import', 'tsx', 'test/xen/demo.ts'], { cwd: root, stdio: 'inherit' });
      process.exitCode = r.status ?? 1;
    });

  return program;
}

// Run when executed (also through npm's bin symlink), not when imported.
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await buildCli().parseAsync(process.argv);
}
