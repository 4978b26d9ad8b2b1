/**
 * A xenstore client for Dom0 programs: the xsd_sockmsg protocol over
 * xenstored's Unix socket, with pipelined requests, transactions, watches
 * that report the path that fired, permissions, and a bound on every reply.
 *
 * @module
 */
import { connect, type Socket } from 'node:net';

import { ClosedError, TimeoutError, ValidationError, XenZcopyError } from '../errors.js';

/** Message types of the xenstore wire protocol (xs_wire.h). */
export const XsType = {
  DIRECTORY: 1,
  READ: 2,
  GET_PERMS: 3,
  WATCH: 4,
  UNWATCH: 5,
  TRANSACTION_START: 6,
  TRANSACTION_END: 7,
  INTRODUCE: 8,
  RELEASE: 9,
  GET_DOMAIN_PATH: 10,
  WRITE: 11,
  MKDIR: 12,
  RM: 13,
  SET_PERMS: 14,
  WATCH_EVENT: 15,
  ERROR: 16,
} as const;

const HEADER = 16;
/** Largest payload xenstored accepts (XENSTORE_PAYLOAD_MAX). */
export const XENSTORE_PAYLOAD_MAX = 4096;
/** The socket of the C xenstored and of oxenstored in Dom0. */
export const DEFAULT_XENSTORED_SOCKET = '/run/xenstored/socket';
/** How long a reply may take before the request fails with a TimeoutError. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** Transactions that end in EAGAIN are retried this many times. */
export const TRANSACTION_RETRIES = 32;

/** A xenstore error reply (ENOENT, EACCES, EAGAIN, EINVAL, ...) for a path. */
export class XenstoreError extends XenZcopyError {
  constructor(code: string, readonly path: string) {
    super(code, `xenstore ${code}: ${path}`);
  }
}

/** One entry of a node's permission list: the first entry is the owner and the default. */
export interface XsPermission {
  domid: number;
  /** 'n' none, 'r' read, 'w' write, 'b' both. */
  access: 'n' | 'r' | 'w' | 'b';
}

/** The operations a transaction (and the client itself) offer. */
export interface XsOps {
  read(path: string): Promise<string>;
  /** Like read(), but undefined when the node does not exist. */
  tryRead(path: string): Promise<string | undefined>;
  write(path: string, value: string): Promise<void>;
  mkdir(path: string): Promise<void>;
  /** Removes a node and everything below it; a missing node is no error. */
  rm(path: string): Promise<void>;
  /** The names of a node's children ([] for a missing node with `tryDirectory`). */
  directory(path: string): Promise<string[]>;
  tryDirectory(path: string): Promise<string[]>;
  getPerms(path: string): Promise<XsPermission[]>;
  setPerms(path: string, perms: XsPermission[]): Promise<void>;
}

/** A registered watch; close() unregisters it. */
export interface XsWatch {
  readonly path: string;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

interface Pending {
  resolve(payload: Buffer): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

function checkPath(path: string): void {
  if (typeof path !== 'string' || path.length === 0 || path.length > 3072 || path.includes('\0')) {
    throw new ValidationError(`not a xenstore path: ${JSON.stringify(path)}`);
  }
}

function parsePerms(raw: string, path: string): XsPermission[] {
  return raw.split('\0').filter(Boolean).map((p) => {
    const access = p[0];
    const domid = Number(p.slice(1));
    if (!'nrwb'.includes(access ?? '?') || !Number.isInteger(domid)) throw new XenstoreError('EINVAL', path);
    return { access: access as XsPermission['access'], domid };
  });
}

/** Read-side helpers shared by the client and transactions. */
abstract class XsBase implements XsOps {
  protected abstract req(type: number, path: string, strings: string[], tail?: string): Promise<Buffer>;

  async read(path: string): Promise<string> {
    checkPath(path);
    return (await this.req(XsType.READ, path, [path])).toString('utf8').replace(/\0$/, '');
  }

  async tryRead(path: string): Promise<string | undefined> {
    try {
      return await this.read(path);
    } catch (e) {
      if (e instanceof XenstoreError && e.code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async write(path: string, value: string): Promise<void> {
    checkPath(path);
    if (Buffer.byteLength(value) + path.length + 1 > XENSTORE_PAYLOAD_MAX) {
      throw new ValidationError(`xenstore value for ${path} is larger than ${XENSTORE_PAYLOAD_MAX} bytes`);
    }
    await this.req(XsType.WRITE, path, [path], value);
  }

  async mkdir(path: string): Promise<void> {
    checkPath(path);
    await this.req(XsType.MKDIR, path, [path]);
  }

  async rm(path: string): Promise<void> {
    checkPath(path);
    try {
      await this.req(XsType.RM, path, [path]);
    } catch (e) {
      if (!(e instanceof XenstoreError && e.code === 'ENOENT')) throw e;
    }
  }

  async directory(path: string): Promise<string[]> {
    checkPath(path);
    return (await this.req(XsType.DIRECTORY, path, [path])).toString('utf8').split('\0').filter(Boolean);
  }

  async tryDirectory(path: string): Promise<string[]> {
    try {
      return await this.directory(path);
    } catch (e) {
      if (e instanceof XenstoreError && e.code === 'ENOENT') return [];
      throw e;
    }
  }

  async getPerms(path: string): Promise<XsPermission[]> {
    checkPath(path);
    return parsePerms((await this.req(XsType.GET_PERMS, path, [path])).toString('utf8'), path);
  }

  async setPerms(path: string, perms: XsPermission[]): Promise<void> {
    checkPath(path);
    if (perms.length === 0) throw new ValidationError('a permission list needs at least the owner');
    for (const p of perms) {
      if (!Number.isInteger(p.domid) || p.domid < 0 || p.domid > 0xffff || !'nrwb'.includes(p.access)) {
        throw new ValidationError(`bad xenstore permission ${JSON.stringify(p)}`);
      }
    }
    await this.req(XsType.SET_PERMS, path, [path, ...perms.map((p) => `${p.access}${p.domid}`)]);
  }
}

/** Operations inside one xenstore transaction. */
class Transaction extends XsBase {
  constructor(private readonly xs: Xenstore, readonly id: number) {
    super();
  }

  protected req(type: number, path: string, strings: string[], tail?: string): Promise<Buffer> {
    return this.xs.request(type, path, strings, tail, this.id);
  }
}

/** A connection to xenstored. */
export class Xenstore extends XsBase {
  #nextId = 1;
  #nextToken = 1;
  #buffered: Buffer = Buffer.alloc(0);
  readonly #pending = new Map<number, Pending>();
  readonly #watchers = new Map<string, (path: string) => void>();
  /** Rejecters of waitFor() calls in progress: close() settles them. */
  readonly #waits = new Set<(err: Error) => void>();
  #closed = false;
  readonly #timeoutMs: number;
  /** Resolves once the socket is closed, whoever closed it. */
  readonly #sockClosed: Promise<void>;

  private constructor(private readonly sock: Socket, timeoutMs: number) {
    super();
    this.#timeoutMs = timeoutMs;
    this.#sockClosed = new Promise((resolve) => sock.once('close', () => resolve()));
    sock.on('data', (chunk: Buffer) => this.#onData(chunk));
    sock.on('error', (err) => this.#failAll(err));
    // xenstored went away: fail fast from now on
    sock.on('close', () => this.#shutdown());
  }

  /** Connects to xenstored (`XENSTORED_PATH`, or its usual socket). */
  static connect(opts: { path?: string; timeoutMs?: number } = {}): Promise<Xenstore> {
    const path = opts.path ?? process.env.XENSTORED_PATH ?? DEFAULT_XENSTORED_SOCKET;
    return new Promise((resolve, reject) => {
      const sock = connect(path);
      sock.once('connect', () => {
        sock.off('error', reject);
        resolve(new Xenstore(sock, opts.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS));
      });
      sock.once('error', reject);
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  protected req(type: number, path: string, strings: string[], tail?: string): Promise<Buffer> {
    return this.request(type, path, strings, tail, 0);
  }

  /**
   * Runs `fn` in a transaction and commits it; when xenstored answers EAGAIN
   * (a conflicting change), runs it again, up to {@link TRANSACTION_RETRIES}
   * times. `fn` must only touch xenstore through the transaction it is given.
   */
  async transaction<T>(fn: (tx: XsOps) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const id = Number((await this.request(XsType.TRANSACTION_START, "(transaction)", [""], undefined, 0)).toString('utf8').replace(/\0$/, ''));
      let result: T;
      try {
        result = await fn(new Transaction(this, id));
      } catch (e) {
        await this.request(XsType.TRANSACTION_END, '(transaction)', ['F'], undefined, id).catch(() => undefined);
        throw e;
      }
      try {
        await this.request(XsType.TRANSACTION_END, '(transaction)', ['T'], undefined, id);
        return result;
      } catch (e) {
        if (!(e instanceof XenstoreError && e.code === 'EAGAIN') || attempt >= TRANSACTION_RETRIES) throw e;
      }
    }
  }

  /**
   * Watches `path` and everything below it (or a special path such as
   * `@releaseDomain`); `onFire` gets the path that changed. A new watch fires
   * once at once for `path` itself.
   */
  async watch(path: string, onFire: (firedPath: string) => void): Promise<XsWatch> {
    checkPath(path);
    const token = `xzc-${process.pid}-${this.#nextToken++}`;
    this.#watchers.set(token, onFire);
    try {
      await this.request(XsType.WATCH, path, [path, token], undefined, 0);
    } catch (e) {
      this.#watchers.delete(token);
      throw e;
    }
    let open = true;
    const close = async () => {
      if (!open) return;
      open = false;
      this.#watchers.delete(token);
      if (!this.#closed) await this.request(XsType.UNWATCH, path, [path, token], undefined, 0).catch(() => undefined);
    };
    return { path, close, [Symbol.asyncDispose]: close };
  }

  /**
   * Resolves with the value of `path` once `accept(value)` holds, checking on
   * every watch event; rejects with a TimeoutError after `timeoutMs`.
   */
  async waitFor(path: string, accept: (value: string | undefined) => boolean, timeoutMs: number): Promise<string> {
    let last: string | undefined;
    let watch: XsWatch | undefined;
    let timer: NodeJS.Timeout | undefined;
    let rejecter: ((err: Error) => void) | undefined;
    try {
      return await new Promise<string>((resolve, reject) => {
        if (this.#closed) {
          reject(new ClosedError('xenstore connection'));
          return;
        }
        rejecter = reject;
        this.#waits.add(reject);
        timer = setTimeout(() => reject(new TimeoutError('xenstore',
          `timed out after ${timeoutMs} ms waiting for xenstore ${path} (last value: ${JSON.stringify(last)})`)), timeoutMs);
        const check = () => {
          this.tryRead(path).then((v) => {
            last = v;
            if (accept(v)) resolve(v as string);
          }, reject);
        };
        this.watch(path, check).then((w) => {
          watch = w;
        }, reject);
      });
    } finally {
      clearTimeout(timer);
      if (rejecter) this.#waits.delete(rejecter);
      await watch?.close();
    }
  }

  /** Closes the connection; requests in flight reject with ClosedError. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#shutdown();
    this.sock.destroy();
    await this.#sockClosed;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** @internal */
  request(type: number, path: string, strings: string[], tail: string | undefined, txId: number): Promise<Buffer> {
    if (this.#closed) return Promise.reject(new ClosedError('xenstore connection'));
    const body = Buffer.concat([
      ...strings.map((s) => Buffer.from(`${s}\0`, 'utf8')),
      ...(tail === undefined ? [] : [Buffer.from(tail, 'utf8')]),
    ]);
    if (body.length > XENSTORE_PAYLOAD_MAX) return Promise.reject(new ValidationError(`xenstore request for ${path} is too large`));
    const id = this.#nextId++;
    const header = Buffer.alloc(HEADER);
    header.writeUInt32LE(type, 0);
    header.writeUInt32LE(id, 4);
    header.writeUInt32LE(txId, 8);
    header.writeUInt32LE(body.length, 12);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new TimeoutError('xenstore', `xenstored did not answer within ${this.#timeoutMs} ms (${path})`));
      }, this.#timeoutMs);
      this.#pending.set(id, {
        resolve,
        // replies carry only the error name: name the path asked about
        reject: (err) => reject(err instanceof XenstoreError ? new XenstoreError(err.code, path) : err),
        timer,
      });
      this.sock.write(Buffer.concat([header, body]));
    });
  }

  #onData(chunk: Buffer): void {
    this.#buffered = this.#buffered.length ? Buffer.concat([this.#buffered, chunk]) : chunk;
    while (this.#buffered.length >= HEADER) {
      const len = this.#buffered.readUInt32LE(12);
      if (len > XENSTORE_PAYLOAD_MAX) {
        this.#failAll(new XenstoreError('EPROTO', `(reply of ${len} bytes)`));
        this.sock.destroy();
        return;
      }
      if (this.#buffered.length < HEADER + len) return;
      const type = this.#buffered.readUInt32LE(0);
      const id = this.#buffered.readUInt32LE(4);
      const payload = Buffer.from(this.#buffered.subarray(HEADER, HEADER + len));
      this.#buffered = this.#buffered.subarray(HEADER + len);
      if (type === XsType.WATCH_EVENT) {
        const [fired, token] = payload.toString('utf8').split('\0');
        if (fired !== undefined && token !== undefined) this.#watchers.get(token)?.(fired);
        continue;
      }
      const p = this.#pending.get(id);
      if (!p) continue;
      this.#pending.delete(id);
      clearTimeout(p.timer);
      if (type === XsType.ERROR) p.reject(new XenstoreError(payload.toString('utf8').replace(/\0$/, ''), ''));
      else p.resolve(payload);
    }
  }

  /** No more requests: everything in flight and every waitFor() rejects with ClosedError. */
  #shutdown(): void {
    this.#closed = true;
    this.#failAll(new ClosedError('xenstore connection'));
    for (const reject of this.#waits) reject(new ClosedError('xenstore connection'));
    this.#waits.clear();
  }

  #failAll(err: Error): void {
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.#pending.clear();
  }
}
