/**
 * A small xenstore client for Dom0 test code: the xsd_sockmsg wire protocol
 * over xenstored's Unix socket, with pipelined requests and watches.
 */
import { connect, type Socket } from 'node:net';

const XS = {
  DIRECTORY: 1,
  READ: 2,
  WATCH: 4,
  UNWATCH: 5,
  WRITE: 11,
  RM: 13,
  WATCH_EVENT: 15,
  ERROR: 16,
} as const;

const HEADER = 16;
const DEFAULT_SOCKET = '/run/xenstored/socket';

interface Pending {
  resolve(payload: Buffer): void;
  reject(err: Error): void;
}

/** A xenstore error reply such as ENOENT or EACCES, carried in `code`. */
export class XenstoreError extends Error {
  constructor(readonly code: string, readonly path: string) {
    super(`xenstore ${code}: ${path}`);
    this.name = 'XenstoreError';
  }
}

export class Xenstore {
  private nextId = 1;
  private nextToken = 1;
  private buffered = Buffer.alloc(0);
  private readonly pending = new Map<number, Pending>();
  private readonly watchers = new Map<string, (path: string) => void>();
  private closed = false;

  private constructor(private readonly sock: Socket) {
    sock.on('data', (chunk) => this.onData(chunk));
    sock.on('error', (err) => this.failAll(err));
    sock.on('close', () => this.failAll(new Error('xenstore connection closed')));
  }

  static connect(path = process.env.XENSTORED_PATH ?? DEFAULT_SOCKET): Promise<Xenstore> {
    return new Promise((resolve, reject) => {
      const sock = connect(path);
      sock.once('connect', () => {
        sock.off('error', reject);
        resolve(new Xenstore(sock));
      });
      sock.once('error', reject);
    });
  }

  async read(path: string): Promise<string> {
    return (await this.request(XS.READ, path, [path])).toString('utf8').replace(/\0$/, '');
  }

  /** Like read(), but undefined when the node does not exist. */
  async tryRead(path: string): Promise<string | undefined> {
    try {
      return await this.read(path);
    } catch (e) {
      if (e instanceof XenstoreError && e.code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async write(path: string, value: string): Promise<void> {
    await this.request(XS.WRITE, path, [path], value);
  }

  async rm(path: string): Promise<void> {
    try {
      await this.request(XS.RM, path, [path]);
    } catch (e) {
      if (!(e instanceof XenstoreError && e.code === 'ENOENT')) throw e;
    }
  }

  async directory(path: string): Promise<string[]> {
    const raw = (await this.request(XS.DIRECTORY, path, [path])).toString('utf8');
    return raw.split('\0').filter((s) => s.length > 0);
  }

  /**
   * Resolves with the value of `path` once `accept(value)` holds, re-checking on
   * every watch event. Rejects after `timeoutMs` with the last value seen.
   */
  async waitFor(path: string, accept: (value: string | undefined) => boolean, timeoutMs: number): Promise<string> {
    const token = `xzc-${process.pid}-${this.nextToken++}`;
    let last: string | undefined;
    return new Promise<string>((resolve, reject) => {
      let done = false;
      const finish = (err: Error | undefined, value?: string) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.watchers.delete(token);
        this.request(XS.UNWATCH, path, [path, token]).catch(() => undefined);
        if (err) reject(err);
        else resolve(value as string);
      };
      const check = () => {
        this.tryRead(path).then((v) => {
          last = v;
          if (accept(v)) finish(undefined, v);
        }, (err: Error) => finish(err));
      };
      const timer = setTimeout(
        () => finish(new Error(`timed out after ${timeoutMs} ms waiting for xenstore ${path} (last value: ${JSON.stringify(last)})`)),
        timeoutMs,
      );
      this.watchers.set(token, check);
      // A new watch fires once at once, so the current value is checked too.
      this.request(XS.WATCH, path, [path, token]).catch((err: Error) => finish(err));
    });
  }

  close(): void {
    this.closed = true;
    this.sock.destroy();
  }

  private request(type: number, path: string, strings: string[], tail?: string): Promise<Buffer> {
    if (this.closed) return Promise.reject(new Error('xenstore connection closed'));
    const body = Buffer.concat([
      ...strings.map((s) => Buffer.from(`${s}\0`, 'utf8')),
      ...(tail === undefined ? [] : [Buffer.from(tail, 'utf8')]),
    ]);
    const id = this.nextId++;
    const header = Buffer.alloc(HEADER);
    header.writeUInt32LE(type, 0);
    header.writeUInt32LE(id, 4);
    header.writeUInt32LE(0, 8);
    header.writeUInt32LE(body.length, 12);
    return new Promise((resolve, reject) => {
      this.pending.set(id, {
        resolve,
        // Replies carry only the error name; name the path the caller asked about.
        reject: (err) => reject(err instanceof XenstoreError ? new XenstoreError(err.code, path) : err),
      });
      this.sock.write(Buffer.concat([header, body]));
    });
  }

  private onData(chunk: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    while (this.buffered.length >= HEADER) {
      const len = this.buffered.readUInt32LE(12);
      if (this.buffered.length < HEADER + len) return;
      const type = this.buffered.readUInt32LE(0);
      const id = this.buffered.readUInt32LE(4);
      const payload = this.buffered.subarray(HEADER, HEADER + len);
      this.buffered = this.buffered.subarray(HEADER + len);
      if (type === XS.WATCH_EVENT) {
        const [, token] = payload.toString('utf8').split('\0');
        if (token !== undefined) this.watchers.get(token)?.(token);
        continue;
      }
      const p = this.pending.get(id);
      if (!p) continue;
      this.pending.delete(id);
      if (type === XS.ERROR) p.reject(new XenstoreError(payload.toString('utf8').replace(/\0$/, ''), ''));
      else p.resolve(Buffer.from(payload));
    }
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}
