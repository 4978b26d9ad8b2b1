/**
 * The DomU fixture: a small PV guest started with `xl`, running
 * guest/xzc-guest.c, driven from Dom0 through xenstore. It grants pages filled
 * with a pattern to Dom0, maps pages Dom0 granted to it, and can be destroyed
 * on demand.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { inject } from 'vitest';

import { renderDemo } from './demo-image.js';
import { xenEnv } from './env.js';
import { patternWord } from './pattern.js';
import { Xenstore } from '../../lib/xen/xenstore.js';

const run = promisify(execFile);

/**
 * Refs per xenstore value, in hex: 200 refs of up to 8 digits stay below
 * xenstored's 2048-byte limit on a guest's values. Same as guest/xzc-guest.c.
 */
const REFS_PER_KEY = 200;
const BOOT_TIMEOUT_MS = 120_000;
const REQUEST_TIMEOUT_MS = 60_000;

export interface DomUOptions {
  name?: string;
  memoryMb?: number;
  /** `max_grant_frames` of the guest (Xen's gnttab_max_frames bounds it); xl's default when unset. */
  maxGrantFrames?: number;
  /**
   * A PV display device: the value of `vdispl = ['...']` in the xl config, e.g.
   * `backend=0,be-alloc=0,connectors=id0:1024x768`. `xl create` then waits up
   * to 10 s for the backend's state 2 (InitWait) in
   * /local/domain/0/backend/vdispl/<domid>/<dev>/state, and fails without it.
   */
  vdispl?: string;
}

/** What `dopen` picked: the connector, its CRTC and its first mode. */
export interface GuestDisplay {
  connectorId: number;
  crtcId: number;
  width: number;
  height: number;
  refresh: number;
  /** DRM connection status: 1 connected, 2 disconnected, 3 unknown. */
  connection: number;
}

/** A dumb buffer in the guest, mapped by the guest helper. */
export interface GuestDumbBuffer {
  /** The guest's id for the buffer (its GEM handle). */
  id: number;
  pitch: number;
  size: number;
}

/** The result of `drmLoop`. */
export interface GuestFlipLoop {
  flips: number;
  /** The whole loop, drawing included. */
  ms: number;
  /** Sum and maximum of the flips' PAGE_FLIP-ioctl-to-event times. */
  flipMs: number;
  maxFlipMs: number;
  /** The two buffers (frame k went into buffers[k % 2]) and their framebuffers. */
  buffers: [number, number];
  fbs: [number, number];
}

export interface SharedBuffer {
  /** The guest's id for the buffer (for check/fill/unshare). */
  id: number;
  /** One grant reference per page, in page order. */
  refs: Uint32Array;
}

/** Outcome of a pattern comparison made by the guest. */
export type Comparison = { match: true } | { match: false; word: number; got: number; want: number };

export class GuestRequestError extends Error {
  /** For replies "err <what> <errno> ..." (the DRM ops): what failed, e.g. CREATE_DUMB. */
  readonly what: string | undefined;
  /** For replies "err <what> <errno> ...": the errno. */
  readonly errno: number | undefined;

  constructor(readonly request: string, readonly reply: string) {
    super(`DomU request '${request}' failed: ${reply}`);
    this.name = 'GuestRequestError';
    const m = /^err (\S+) (\d+)(?: |$)/.exec(reply);
    this.what = m?.[1];
    this.errno = m ? Number(m[2]) : undefined;
  }
}

async function xl(...args: string[]): Promise<string> {
  const { stdout } = await run('xl', args, { timeout: BOOT_TIMEOUT_MS });
  return stdout;
}

export class DomU {
  private seq = 0;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly name: string,
    readonly domid: number,
    private readonly xs: Xenstore,
  ) {}

  private get home(): string {
    return `/local/domain/${this.domid}`;
  }

  /** Boots a new guest and waits until it serves requests. */
  static async start(opts: DomUOptions = {}): Promise<DomU> {
    const env = xenEnv();
    const name = opts.name ?? `xzc-guest-${process.pid}-${Date.now() % 100000}`;
    const dir = mkdtempSync(join(tmpdir(), 'xzc-domu-'));
    const cfg = join(dir, 'domu.cfg');
    writeFileSync(cfg, [
      `name = "${name}"`,
      // Arm has no PV guests: there every guest is auto-translated ("pvh").
      `type = "${process.arch === 'arm64' ? 'pvh' : 'pv'}"`,
      `kernel = "${env.domUKernel}"`,
      `ramdisk = "${env.domURamdisk}"`,
      'extra = "console=hvc0 quiet"',
      `memory = ${opts.memoryMb ?? 128}`,
      'vcpus = 1',
      ...(opts.maxGrantFrames === undefined ? [] : [`max_grant_frames = ${opts.maxGrantFrames}`]),
      'on_crash = "preserve"',
      ...(opts.vdispl === undefined ? [] : [`vdispl = ['${opts.vdispl}']`]),
      '',
    ].join('\n'));
    try {
      // xl create forks a console daemon that would keep inherited pipes open:
      // give it none.
      await new Promise<void>((resolve, reject) => {
        const child = spawn('xl', ['create', '-q', cfg], { stdio: 'ignore', timeout: BOOT_TIMEOUT_MS });
        child.on('error', reject);
        child.on('exit', (code, signal) =>
          code === 0 ? resolve() : reject(new Error(`xl create ${name} failed (${signal ?? `status ${code}`})`)));
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return DomU.attach(name);
  }

  /** Attaches to a running fixture guest by name and waits until it is ready. */
  static async attach(name: string): Promise<DomU> {
    const xs = await Xenstore.connect();
    // The guest may still be being created: its name appears in xenstore first.
    const domid = await findDomain(xs, name, BOOT_TIMEOUT_MS);
    const guest = new DomU(name, domid, xs);
    await xs.waitFor(`${guest.home}/data/ready`, (v) => v === '1', BOOT_TIMEOUT_MS);
    // Continue numbering after whatever an earlier client of this guest used.
    const res = await xs.tryRead(`${guest.home}/data/res`);
    guest.seq = Number(res?.split(' ')[0] ?? 0) || 0;
    return guest;
  }

  /** One request at a time; resolves with the reply's details after "ok". */
  private request(op: string, refs?: Uint32Array, timeoutMs = REQUEST_TIMEOUT_MS): Promise<string> {
    const next = this.queue.then(async () => {
      const seq = ++this.seq;
      if (refs) await this.writeRefs(`${this.home}/data/m${seq}`, refs);
      const cmd = `${seq} ${op}`;
      const prefix = `${seq} `;
      await this.xs.write(`${this.home}/data/cmd`, cmd);
      const res = await this.xs.waitFor(`${this.home}/data/res`, (v) => v?.startsWith(prefix) === true, timeoutMs);
      if (refs) await this.xs.rm(`${this.home}/data/m${seq}`);
      const reply = res.slice(prefix.length);
      if (!reply.startsWith('ok')) throw new GuestRequestError(op, reply);
      return reply.slice(2).trim();
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async writeRefs(dir: string, refs: Uint32Array): Promise<void> {
    const writes: Promise<void>[] = [];
    for (let k = 0; k * REFS_PER_KEY < refs.length; k++) {
      writes.push(this.xs.write(`${dir}/${k}`, Array.from(refs.subarray(k * REFS_PER_KEY, (k + 1) * REFS_PER_KEY), (r) => r.toString(16)).join(' ')));
    }
    await Promise.all(writes);
  }

  private async readRefs(dir: string): Promise<Uint32Array> {
    const n = Number(await this.xs.read(`${dir}/n`));
    const chunks = await Promise.all(
      Array.from({ length: Math.ceil(n / REFS_PER_KEY) }, (_, k) => this.xs.read(`${dir}/${k}`)),
    );
    const refs = Uint32Array.from(chunks.join(' ').split(' '), (h) => parseInt(h, 16));
    if (refs.length !== n) throw new Error(`guest published ${refs.length} refs, expected ${n}`);
    return refs;
  }

  async ping(): Promise<void> {
    await this.request('ping');
  }

  /** The guest grants `pages` pages holding pattern(seed) to domain `to` (Dom0 by default). */
  async share(opts: { pages: number; seed: number; writable?: boolean; to?: number }): Promise<SharedBuffer> {
    const writable = opts.writable ?? true;
    const details = await this.request(`share ${opts.pages} ${opts.seed >>> 0} ${writable ? 1 : 0} ${opts.to ?? 0}`);
    const id = Number(details.split(' ')[0]);
    return { id, refs: await this.readRefs(`${this.home}/data/s${id}`) };
  }

  /** The guest compares its shared buffer `id` with pattern(seed). */
  async check(id: number, seed: number): Promise<Comparison> {
    return parseComparison(await this.request(`check ${id} ${seed >>> 0}`));
  }

  /** The guest rewrites its shared buffer `id` with pattern(seed). */
  async fill(id: number, seed: number): Promise<void> {
    await this.request(`fill ${id} ${seed >>> 0}`);
  }

  /** The guest ends the grants of buffer `id` and frees it. */
  async unshare(id: number): Promise<void> {
    await this.request(`unshare ${id}`);
  }

  /** The guest maps `refs` granted by domain `from`, compares with pattern(seed) and unmaps. */
  async mapVerify(refs: Uint32Array, seed: number, from = 0): Promise<Comparison> {
    return parseComparison(await this.request(`map ${from} ${refs.length} verify ${seed >>> 0}`, refs));
  }

  /** The guest maps `refs` granted by domain `from`, writes pattern(seed) and unmaps. */
  async mapWrite(refs: Uint32Array, seed: number, from = 0): Promise<void> {
    await this.request(`map ${from} ${refs.length} write ${seed >>> 0}`, refs);
  }

  /** The guest maps `refs` and keeps them mapped until unmap(id). */
  async mapHold(refs: Uint32Array, from = 0): Promise<number> {
    return Number((await this.request(`map ${from} ${refs.length} hold 0`, refs)).split(' ')[0]);
  }

  /** The guest draws the demo image (demo-image.ts) into its shared buffer `id`. */
  async draw(id: number, img: { width: number; height: number; style: 0 | 1; frame: number }): Promise<void> {
    await this.request(`draw ${id} ${img.width} ${img.height} ${img.style} ${img.frame}`);
  }

  /** The guest maps `refs` granted by domain `from` and draws the demo image into them. */
  async mapDraw(refs: Uint32Array, img: { width: number; height: number; style: 0 | 1; frame: number }, from = 0): Promise<void> {
    await this.request(`mapdraw ${from} ${refs.length} ${img.width} ${img.height} ${img.style} ${img.frame}`, refs);
  }

  async unmap(id: number): Promise<void> {
    await this.request(`unmap ${id}`);
  }

  // ---- the display frontend and the guest DRM app (raw KMS ioctls on /dev/dri/card0) ----
  // Failing ioctls reject with a GuestRequestError whose `what`/`errno` say which and why.

  /**
   * Starts `insmod drm_xen_front.ko` in the guest, in the background (with a
   * vdispl device it returns only once connected, or after 30 s); resolves at
   * once with the insmod's pid.
   */
  async loadFront(): Promise<number> {
    return Number(await this.request('loadfront'));
  }

  /** Whether /dev/dri/card0 exists, and what became of loadFront()'s insmod. */
  async displayStatus(): Promise<{ card0: boolean; insmod: 'none' | 'running' | `exit:${number}` | `signal:${number}` }> {
    const [card, insmod] = (await this.request('dstat')).split(' ');
    return { card0: card === '1', insmod: insmod as 'none' };
  }

  /**
   * Waits until the frontend registered /dev/dri/card0 (after loadFront(), once
   * the backend is Connected); rejects if loadFront()'s insmod ended without it
   * or after `timeoutMs`.
   */
  async waitDisplay(timeoutMs = 40_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let insmodDone: number | undefined;
    for (;;) {
      const st = await this.displayStatus();
      if (st.card0) return;
      // insmod returns once the frontend connected; the card may register a moment later
      if (st.insmod !== 'running' && st.insmod !== 'none' && (st.insmod !== 'exit:0' || Date.now() > (insmodDone ??= Date.now() + 10_000))) {
        throw new Error(`drm_xen_front's insmod ended (${st.insmod}) without /dev/dri/card0`);
      }
      if (Date.now() > deadline) throw new Error(`no /dev/dri/card0 in the guest after ${timeoutMs} ms (insmod ${st.insmod})`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Opens card0 (as DRM master) and picks connector `connector`, its CRTC and first mode. */
  async drmOpen(connector = 0): Promise<GuestDisplay> {
    const [connectorId, crtcId, width, height, refresh, connection] = (await this.request(`dopen ${connector}`)).split(' ').map(Number);
    return { connectorId: connectorId!, crtcId: crtcId!, width: width!, height: height!, refresh: refresh!, connection: connection! };
  }

  /** CREATE_DUMB (32 bpp) + MAP_DUMB + mmap in the guest. */
  async drmCreateBuffer(width: number, height: number): Promise<GuestDumbBuffer> {
    const [id, pitch, size] = (await this.request(`dbuf ${width} ${height}`)).split(' ').map(Number);
    return { id: id!, pitch: pitch!, size: size! };
  }

  /**
   * Draws frame `frame` into buffer `id`: 'demo' (default) is
   * guestFrameImage(): renderDemo({ width, height, style: 0, frame, domid })
   * row by row at the buffer's pitch; 'pattern' fills the whole buffer with
   * pattern(frame) (pattern.ts).
   */
  async drmDraw(id: number, frame: number, kind: 'demo' | 'pattern' = 'demo'): Promise<void> {
    await this.request(`ddraw ${id} ${frame >>> 0} ${kind === 'demo' ? 0 : 1}`);
  }

  /** ADDFB (XRGB8888) for buffer `id`; resolves with the fb id. */
  async drmAddFb(id: number): Promise<number> {
    return Number(await this.request(`dfb ${id}`));
  }

  /** SETCRTC: the CRTC shows `fb` with the mode; fb 0 turns the CRTC off. */
  async drmSetCrtc(fb: number): Promise<void> {
    await this.request(`dset ${fb}`);
  }

  /**
   * PAGE_FLIP to `fb` with an event; resolves with the ms from the ioctl to the
   * flip-complete event (the guest waits at most 5 s; the frontend itself
   * completes a flip the backend never reports after ~3.1 s).
   */
  async drmFlip(fb: number): Promise<number> {
    return Number(await this.request(`dflip ${fb}`));
  }

  /**
   * Two buffers of width x height (0 x 0: the mode's size); unless a CRTC was
   * set, SETCRTC to buffers[1] (black) first; then frame k = 0..n-1 is drawn
   * (demo kind) into buffers[k % 2] and flipped to, waiting for each event.
   * The buffers and fbs stay until drmRmFb/drmFreeBuffer/drmClose.
   */
  async drmLoop(n: number, width = 0, height = 0): Promise<GuestFlipLoop> {
    const v = (await this.request(`dloop ${n} ${width} ${height}`, undefined, REQUEST_TIMEOUT_MS + n * 9000)).split(' ').map(Number);
    return { flips: v[0]!, ms: v[1]!, buffers: [v[2]!, v[3]!], fbs: [v[4]!, v[5]!], flipMs: v[6]!, maxFlipMs: v[7]! };
  }

  /** RMFB (removing the fb on screen turns the CRTC off). */
  async drmRmFb(fb: number): Promise<void> {
    await this.request(`drmfb ${fb}`);
  }

  /** munmap + DESTROY_DUMB of buffer `id`. */
  async drmFreeBuffer(id: number): Promise<void> {
    await this.request(`dfree ${id}`);
  }

  /** Removes every fb, frees every buffer and closes card0 (fine when not open). */
  async drmClose(): Promise<void> {
    await this.request('dclose', undefined, REQUEST_TIMEOUT_MS * 2);
  }

  /** Destroys the domain (xl destroy) and closes the xenstore connection. */
  async destroy(): Promise<void> {
    this.xs.close();
    await xl('destroy', this.name);
  }

  /** Closes this handle; the guest keeps running. */
  detach(): void {
    this.xs.close();
  }
}

async function findDomain(xs: Xenstore, name: string, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const id of await xs.directory('/local/domain')) {
      if (id !== '0' && (await xs.tryRead(`/local/domain/${id}/name`)) === name) return Number(id);
    }
    if (Date.now() > deadline) throw new Error(`no domain named ${name} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function parseComparison(details: string): Comparison {
  if (details === 'match') return { match: true };
  const m = /^mismatch (\d+) (0x[0-9a-f]+) (0x[0-9a-f]+)$/.exec(details);
  if (!m) throw new Error(`unexpected comparison reply '${details}'`);
  return { match: false, word: Number(m[1]), got: Number(m[2]), want: Number(m[3]) };
}

/**
 * The bytes the guest's `ddraw ID FRAME` (DomU.drmDraw) writes into a dumb
 * buffer of `height` rows `pitch` bytes apart (drm_xen_front: pitch = width * 4,
 * size = pitch * height rounded up to pages): 'demo' is
 * renderDemo({ width, height, style: 0, frame, domid }) (XRGB8888, little
 * endian) with the bytes past width * 4 in a row zero (a new dumb buffer's);
 * 'pattern' is pattern(frame) over the first `size` bytes (default
 * pitch * height). `xzc-guest frame W H PITCH FRAME KIND DOMID` prints the same.
 */
export function guestFrameImage(opts: {
  width: number;
  height: number;
  frame: number;
  domid: number;
  pitch?: number;
  size?: number;
  kind?: 'demo' | 'pattern';
}): Buffer {
  const pitch = opts.pitch ?? opts.width * 4;
  const size = opts.size ?? pitch * opts.height;
  const out = Buffer.alloc(size);
  if ((opts.kind ?? 'demo') === 'pattern') {
    for (let i = 0; i * 4 + 4 <= size; i++) out.writeUInt32LE(patternWord(opts.frame >>> 0, i), i * 4);
    return out;
  }
  const px = renderDemo({ width: opts.width, height: opts.height, style: 0, frame: opts.frame >>> 0, domid: opts.domid });
  const rows = Buffer.from(px.buffer, px.byteOffset, px.byteLength);
  for (let y = 0; y < opts.height; y++) rows.copy(out, y * pitch, y * opts.width * 4, (y + 1) * opts.width * 4);
  return out;
}

/** Whether a domain with this name exists. */
export async function domainExists(name: string): Promise<boolean> {
  const out = await xl('list');
  return out.split('\n').some((line) => line.split(/\s+/)[0] === name);
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** Name of the guest the global setup started for the whole suite. */
    sharedDomU: string;
  }
}

let shared: Promise<DomU> | undefined;

/**
 * The suite's shared guest, started once by the global setup; test files
 * attach to it by name. Tests that destroy a guest start their own.
 */
export function sharedDomU(): Promise<DomU> {
  shared ??= DomU.attach(inject('sharedDomU'));
  return shared;
}
