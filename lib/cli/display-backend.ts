/**
 * `xen-zcopy display-backend`: the PV display backend serving every guest's
 * vdispl devices, with a readable log (or JSON lines) of each connection and
 * the frames per second of each connector. SIGINT/SIGTERM tear down cleanly.
 *
 * @module
 */
import { Command, Option } from 'commander';

import { type BackendEvent, DisplayBackend } from '../displif/backend.js';
import { DisplOp } from '../displif/protocol.js';
import { KmsSink } from '../displif/kms-sink.js';
import { ImportSink, type DisplaySink } from '../displif/sink.js';
import { KmsDevice } from '../drm/kms.js';

const OP_NAMES = new Map(Object.entries(DisplOp).map(([k, v]) => [v as number, k]));

export function formatEvent(e: BackendEvent): string {
  const who = e.domid === undefined ? '' : `dom${e.domid}/vdispl${e.device} `;
  switch (e.type) {
    case 'device':
      return `${who}${e.state}${e.detail ? `: ${e.detail}` : ''}`;
    case 'request':
      return `${who}conn${e.connector} ${OP_NAMES.get(e.op) ?? `op 0x${e.op.toString(16)}`} #${e.id} -> ${e.status} (${e.ms.toFixed(1)} ms)`;
    case 'frame':
      return `${who}conn${e.connector} ${e.frames} fps`;
    case 'error':
      return `${who}error: ${e.message}`;
  }
}

export function displayBackendCommand(): Command {
  return new Command('display-backend')
    .description("serve every guest's PV display (drm_xen_front) from this Dom0, zero copy")
    .addOption(new Option('--sink <kind>', 'where frames go: scanned out on a KMS card, imported into vgem, or nowhere')
      .choices(['kms', 'vgem', 'none']).default('vgem'))
    .option('--kms-device <driver|path>', 'the KMS card for --sink kms (its DRM driver name or /dev/dri path)', 'vkms')
    .option('--copy', "copy each frame into a Dom0 buffer before scan-out (the baseline zero copy is measured against)")
    .option('--refresh <hz>', 'virtual refresh rate that paces frame-done events', (v) => Number(v), 60)
    .option('--be-alloc', 'serve guests that ask Dom0 to allocate their buffers (be-alloc=1; off: Dom0 memory on demand)')
    .option('--json', 'JSON lines instead of a readable log')
    .option('--verbose', 'log every request, not only connections, errors and frame rates')
    .option('--once', 'exit once the first device that connected has gone')
    .action(async (opts: { sink: 'kms' | 'vgem' | 'none'; kmsDevice: string; copy?: boolean; refresh: number; beAlloc?: boolean; json?: boolean; verbose?: boolean; once?: boolean }) => {
      const log = (e: BackendEvent) => {
        if (e.type === 'request' && !opts.verbose) return;
        console.log(opts.json ? JSON.stringify(e, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) : formatEvent(e));
      };
      let served = 0;
      let stop: (() => void) | undefined;
      const stopped = new Promise<void>((r) => {
        stop = r;
      });
      if (opts.copy && opts.sink !== 'kms') throw new Error('--copy needs --sink kms');
      // one card for every guest: this process is its DRM master
      const kms = opts.sink === 'kms' ? KmsDevice.open(opts.kmsDevice) : undefined;
      if (kms) {
        const outs = kms.outputs.map((o) => o.name).join(', ') || 'none';
        console.log(opts.json ? JSON.stringify({ type: 'kms', driver: kms.drm.driver, path: kms.drm.path, outputs: kms.outputs.map((o) => o.name), copy: !!opts.copy })
          : `scan-out on ${kms.drm.driver} (${kms.drm.path}), outputs: ${outs}${opts.copy ? ', copy mode' : ', zero copy'}`);
      }
      const backend = await DisplayBackend.start({
        allowBeAlloc: opts.beAlloc ?? false,
        sink: (): DisplaySink => {
          if (kms) return new KmsSink({ kms, copy: opts.copy });
          if (opts.sink === 'vgem') return new ImportSink({ refreshHz: opts.refresh });
          return { attach() {}, detach() {}, setConfig() {}, show: async () => {}, close: async () => {} };
        },
        onEvent: (e) => {
          log(e);
          if (e.type === 'device' && e.state === 'Connected') served++;
          if (opts.once && served > 0 && e.type === 'device' && (e.state === 'Closed' || e.state === 'gone')) stop?.();
        },
      });
      const last = new Map<string, number>();
      const fps = setInterval(() => {
        for (const [key, dev] of backend.devices) {
          dev.frames.forEach((n, i) => {
            const k = `${key}/${i}`;
            const rate = n - (last.get(k) ?? 0);
            last.set(k, n);
            if (rate > 0) log({ type: 'frame', domid: dev.domid, device: dev.device, connector: i, frames: rate });
          });
        }
      }, 1000);
      for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => stop?.());
      console.log(opts.json ? JSON.stringify({ type: 'ready' }) : 'display backend ready: watching /local/domain/0/backend/vdispl');
      await stopped;
      clearInterval(fps);
      await backend.close();
      await kms?.close();
      console.log(opts.json ? JSON.stringify({ type: 'stopped' }) : 'display backend stopped');
    });
}
