/**
 * Lifetime building blocks shared by the API: reference-counted fds, CPU
 * mappings and the read-only view of read-only mappings.
 *
 * @module
 */
import type { NativeBinding } from './binding.js';
import { ClosedError } from './errors.js';

/**
 * @internal An fd shared by an owner and its children (a device and the
 * buffers or mappings made on it): closed when the last of them lets go, so a
 * child can always finish its own teardown on the right file, and never on an
 * fd number reused by something else.
 */
export class FdResource {
  #fd: number;
  #refs = 1;
  readonly #b: NativeBinding;

  constructor(fd: number, b: NativeBinding, readonly what: string) {
    this.#fd = fd;
    this.#b = b;
  }

  get fd(): number {
    if (this.#fd < 0) throw new ClosedError(this.what);
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  /** One more holder; the fd stays open until it calls release(). */
  acquire(): this {
    if (this.#fd < 0) throw new ClosedError(this.what);
    this.#refs++;
    return this;
  }

  /** Drops one holder; the last one closes the fd. */
  release(): void {
    if (this.#fd < 0 || --this.#refs > 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    this.#b.close(fd);
  }
}

/**
 * Runs every step even when earlier ones fail (a teardown must not stop
 * half-way), then rethrows the first failure.
 * @internal
 */
export async function runAll(steps: (() => unknown)[]): Promise<void> {
  let failed = false;
  let first: unknown;
  for (const step of steps) {
    try {
      await step();
    } catch (e) {
      if (!failed) first = e;
      failed = true;
    }
  }
  if (failed) throw first;
}

/** @internal The synchronous counterpart of {@link runAll}. */
export function runAllSync(steps: (() => unknown)[]): void {
  let failed = false;
  let first: unknown;
  for (const step of steps) {
    try {
      step();
    } catch (e) {
      if (!failed) first = e;
      failed = true;
    }
  }
  if (failed) throw first;
}

type Mutating = 'buffer' | 'parent' | 'fill' | 'set' | 'copyWithin' | 'reverse' | 'sort' | 'subarray' | 'slice' | 'valueOf'
  | `write${string}` | `swap${string}`;

/**
 * A read-only view of mapped pages: a `Buffer` without its writing members
 * (a compile-time error), backed at run time by a guard that throws a
 * `TypeError` on every write (`view[i] = x`, `fill`, `set`, `write*`, ...) and
 * refuses `.buffer` (which would give a writable view). Writing through a
 * read-only mapping would otherwise kill the process with SIGSEGV. Reading
 * methods (`readUInt32LE`, `equals`, `copy` into another buffer, `every`, ...)
 * run on the mapped memory without a copy; element access goes through a
 * Proxy, so for bulk reads prefer those methods or `toBuffer()` (a copy).
 */
export type ReadonlyBytes = {
  readonly [K in Exclude<keyof Buffer, Mutating> as K extends number ? never : K]: Buffer[K];
} & {
  readonly [index: number]: number;
  /** A read-only view of part of the pages. */
  subarray(start?: number, end?: number): ReadonlyBytes;
  /** Same as subarray (Buffer's slice is a view too). */
  slice(start?: number, end?: number): ReadonlyBytes;
  valueOf(): ReadonlyBytes;
};

const MUTATORS = new Set(['fill', 'set', 'copyWithin', 'reverse', 'sort']);

/** @internal Wraps `target` in the read-only guard. */
export function readonlyBytes(target: Buffer): ReadonlyBytes {
  const deny = (what: string): never => {
    throw new TypeError(`read-only mapping: ${what} is not allowed (map it for writing, or use toBuffer() for a copy)`);
  };
  const proxy: ReadonlyBytes = new Proxy(target, {
    get(t, p) {
      if (p === 'buffer' || p === 'parent') return deny(`.${p} (a writable view of the pages)`);
      if (typeof p === 'string' && (MUTATORS.has(p) || p.startsWith('write') || p.startsWith('swap'))) {
        return () => deny(`${p}()`);
      }
      if (p === 'subarray' || p === 'slice') return (s?: number, e?: number) => readonlyBytes(t.subarray(s, e));
      if (p === 'valueOf') return () => proxy;
      const v: unknown = Reflect.get(t, p, t);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
    set: (_t, p) => deny(`writing [${String(p)}]`),
    defineProperty: (_t, p) => deny(`defining [${String(p)}]`),
    deleteProperty: (_t, p) => deny(`deleting [${String(p)}]`),
    setPrototypeOf: () => deny('setPrototypeOf'),
  }) as unknown as ReadonlyBytes;
  return proxy;
}

/**
 * A resource whose release is cheap and synchronous (closeSync()), with the
 * same promise close() and disposal as every other resource of the API.
 */
export abstract class SyncClosable implements Disposable, AsyncDisposable {
  abstract closeSync(): void;

  /** closeSync() as a promise: rejects instead of throwing. */
  close(): Promise<void> {
    try {
      this.closeSync();
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  [Symbol.dispose](): void {
    this.closeSync();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** CPU access to mapped pages; unmapped by close(). */
export interface Mapping extends Disposable, AsyncDisposable {
  /** Bytes mapped. */
  readonly length: number;
  readonly writable: boolean;
  readonly closed: boolean;
  /** A copy of the pages (valid after close()). */
  toBuffer(): Buffer;
  /** Ends CPU access and unmaps; idempotent. Later access throws ClosedError. */
  close(): Promise<void>;
  /** Same as close(), synchronously (an munmap and an ioctl: cheap). */
  closeSync(): void;
}

/** A read-only mapping: `bytes` refuses writes (see {@link ReadonlyBytes}). */
export interface ReadonlyMapping extends Mapping {
  readonly writable: false;
  readonly bytes: ReadonlyBytes;
}

/** A writable mapping: `buffer` (= `bytes`) is a plain Buffer over the pages. */
export interface WritableMapping extends Mapping {
  readonly writable: true;
  readonly bytes: Buffer;
  readonly buffer: Buffer;
}

/** @internal */
export class MappingImpl extends SyncClosable implements Mapping {
  #ab: ArrayBuffer | undefined;
  readonly #buf: Buffer;
  readonly #view: ReadonlyBytes | undefined;
  readonly #end: (ab: ArrayBuffer) => void;
  readonly length: number;

  /** `end` ends CPU access and unmaps `ab`; it runs once. */
  constructor(ab: ArrayBuffer, readonly writable: boolean, end: (ab: ArrayBuffer) => void) {
    super();
    this.#ab = ab;
    this.#buf = Buffer.from(ab);
    this.#view = writable ? undefined : readonlyBytes(this.#buf);
    this.#end = end;
    this.length = ab.byteLength;
  }

  get closed(): boolean {
    return this.#ab === undefined;
  }

  get bytes(): Buffer | ReadonlyBytes {
    if (!this.#ab) throw new ClosedError('mapping');
    return this.#view ?? this.#buf;
  }

  get buffer(): Buffer {
    if (!this.writable) throw new TypeError('read-only mapping: there is no writable buffer; use bytes (read-only) or toBuffer() (a copy)');
    if (!this.#ab) throw new ClosedError('mapping');
    return this.#buf;
  }

  toBuffer(): Buffer {
    if (!this.#ab) throw new ClosedError('mapping');
    const copy = new Uint8Array(this.#buf);
    return Buffer.from(copy.buffer, 0, copy.byteLength);
  }

  closeSync(): void {
    const ab = this.#ab;
    if (!ab) return;
    this.#ab = undefined;
    this.#end(ab);
  }

}

/** Largest WAIT_FREE time-out the API accepts (one minute). */
export const MAX_RELEASE_TIMEOUT_MS = 60_000;

/** Rejects with `signal.reason` as soon as `signal` aborts; otherwise settles as `p`. */
export function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/** What a FinalizationRegistry entry releases when its owner was never closed. */
export interface Leak {
  what: string;
  release: () => void;
}

/** Warns about and releases what was garbage-collected without close(). */
export const leaks = new FinalizationRegistry<Leak>((held) => {
  process.emitWarning(`${held.what} was garbage-collected without close(); closing it now`, 'XenZcopyLeakWarning');
  try {
    held.release();
  } catch {
    // already gone
  }
});
