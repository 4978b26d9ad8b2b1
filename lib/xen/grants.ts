/**
 * The frontend side and plain grant mappings: {@link GrantAllocator} shares
 * this domain's pages with another domain (gntalloc), {@link GrantMapper}
 * maps or copies pages another domain granted (gntdev). A Node process in a
 * guest, or a test, can play the frontend with them.
 *
 * @module
 */
import { native, PROT_READ, PROT_WRITE, type NativeBinding } from '../binding.js';
import { checkRefs, MAX_DOMID } from '../validate.js';
import { ClosedError, fromNative, ValidationError } from '../errors.js';
import { FdResource, MappingImpl, runAllSync, SyncClosable, type ReadonlyMapping, type WritableMapping } from '../resource.js';

const PAGE_SIZE = 4096;

function checkDomid(domid: number): number {
  if (!Number.isInteger(domid) || domid < 0 || domid > MAX_DOMID) {
    throw new ValidationError(`domid must be an integer in 0..${MAX_DOMID}, got ${domid}`);
  }
  return domid;
}

function checkPages(pages: number): number {
  if (!Number.isInteger(pages) || pages < 1 || pages > 1 << 20) {
    throw new ValidationError(`pages must be an integer in 1..${1 << 20}, got ${pages}`);
  }
  return pages;
}

/** Pages of this domain granted to another one: a writable mapping plus the grant references. */
export interface SharedPages extends WritableMapping {
  readonly domid: number;
  /** One grant reference per page: publish these to the other domain. */
  readonly refs: Uint32Array;
}

/** Another domain's grants mapped into this process, read-only (the default). */
export interface MappedGrants extends ReadonlyMapping {
  readonly domid: number;
}

/** Another domain's grants mapped writable (`{ writable: true }`). */
export interface WritableMappedGrants extends WritableMapping {
  readonly domid: number;
}

abstract class GrantDevice extends SyncClosable {
  protected readonly res: FdResource;
  protected readonly b: NativeBinding;

  protected constructor(readonly path: string, b: NativeBinding) {
    super();
    this.b = b;
    let fd: number;
    try {
      fd = b.open(path);
    } catch (e) {
      throw fromNative(e, `opening ${path} (is the xen-${path.endsWith('gntdev') ? 'gntdev' : 'gntalloc'} module loaded, and are you root?)`);
    }
    this.res = new FdResource(fd, b, path);
  }

  #closed = false;

  /** The fd; ClosedError after close(). */
  protected get fd(): number {
    if (this.#closed) throw new ClosedError(this.path);
    return this.res.fd;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Closes the device for new calls; open shares/mappings stay valid (they
   * keep the fd open) until their own close(). Idempotent; cheap.
   */
  closeSync(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.res.release();
  }

}

/** /dev/xen/gntalloc: share pages of this domain. */
export class GrantAllocator extends GrantDevice {
  private constructor(b: NativeBinding) {
    super('/dev/xen/gntalloc', b);
  }

  static open(opts: { binding?: NativeBinding } = {}): GrantAllocator {
    return new GrantAllocator(opts.binding ?? native());
  }

  /** Allocates `pages` zeroed pages and grants them to `domid`. */
  share(domid: number, pages: number, opts: { writable?: boolean } = {}): SharedPages {
    checkDomid(domid);
    checkPages(pages);
    const fd = this.fd;
    const b = this.b;
    let grant;
    try {
      grant = b.gntallocAlloc(fd, domid, pages, opts.writable ?? true);
    } catch (e) {
      throw fromNative(e, `granting ${pages} pages to domain ${domid}`);
    }
    let ab: ArrayBuffer;
    try {
      ab = b.mmap(fd, pages * PAGE_SIZE, PROT_READ | PROT_WRITE, grant.index);
    } catch (e) {
      b.gntallocDealloc(fd, grant.index, pages);
      throw fromNative(e, 'mapping the shared pages');
    }
    // the mapping holds the fd resource, never a bare fd number
    const res = this.res.acquire();
    const m = new MappingImpl(ab, true, (mapped) => {
      runAllSync([() => b.munmap(mapped), () => b.gntallocDealloc(res.fd, grant.index, pages), () => res.release()]);
    });
    return Object.assign(m, { domid, refs: grant.refs }) as unknown as SharedPages;
  }
}

/** /dev/xen/gntdev: map or copy pages another domain granted. */
export class GrantMapper extends GrantDevice {
  private constructor(b: NativeBinding) {
    super('/dev/xen/gntdev', b);
  }

  static open(opts: { binding?: NativeBinding } = {}): GrantMapper {
    return new GrantMapper(opts.binding ?? native());
  }

  /**
   * Maps `refs` of `domid` into this process: read-only by default (writing
   * through `bytes` throws instead of faulting), writable with `{ writable: true }`.
   */
  map(domid: number, refs: Uint32Array | readonly number[], opts: { writable: true }): WritableMappedGrants;
  map(domid: number, refs: Uint32Array | readonly number[], opts?: { writable?: false }): MappedGrants;
  map(domid: number, refs: Uint32Array | readonly number[], opts?: { writable?: boolean }): MappedGrants | WritableMappedGrants;
  map(domid: number, refs: Uint32Array | readonly number[], opts: { writable?: boolean } = {}): MappedGrants | WritableMappedGrants {
    checkDomid(domid);
    const r = checkRefs(refs);
    if (r.length === 0) throw new ValidationError('refs must not be empty');
    const fd = this.fd;
    const b = this.b;
    const writable = opts.writable === true;
    let index: number;
    try {
      index = b.gntdevMapGrantRefs(fd, domid, r);
    } catch (e) {
      throw fromNative(e, `reserving ${r.length} grant mappings of domain ${domid}`);
    }
    let ab: ArrayBuffer;
    try {
      ab = b.mmap(fd, r.length * PAGE_SIZE, PROT_READ | (writable ? PROT_WRITE : 0), index);
    } catch (e) {
      b.gntdevUnmapGrantRef(fd, index, r.length);
      throw fromNative(e, `mapping ${r.length} pages granted by domain ${domid}`);
    }
    const res = this.res.acquire();
    const m = new MappingImpl(ab, writable, (mapped) => {
      runAllSync([() => b.munmap(mapped), () => b.gntdevUnmapGrantRef(res.fd, index, r.length), () => res.release()]);
    });
    return Object.assign(m, { domid }) as unknown as MappedGrants | WritableMappedGrants;
  }

  /** Copies the granted pages into `dest` (Xen's GRANT_COPY: no mapping). */
  async copyFrom(domid: number, refs: Uint32Array | readonly number[], dest?: Uint8Array): Promise<Uint8Array> {
    checkDomid(domid);
    const r = checkRefs(refs);
    const out = dest ?? new Uint8Array(r.length * PAGE_SIZE);
    if (out.length < r.length * PAGE_SIZE) throw new ValidationError(`dest holds ${out.length} bytes, ${r.length} pages need ${r.length * PAGE_SIZE}`);
    const res = this.res.acquire(); // the fd stays open until the copy is done
    try {
      await this.b.gntdevGrantCopyFromRefs(res.fd, domid, r, out);
    } catch (e) {
      throw fromNative(e, `copying ${r.length} pages granted by domain ${domid}`);
    } finally {
      res.release();
    }
    return out;
  }
}
