/**
 * The frontend side and plain grant mappings: {@link GrantAllocator} shares
 * this domain's pages with another domain (gntalloc), {@link GrantMapper}
 * maps or copies pages another domain granted (gntdev). A Node process in a
 * guest, or a test, can play the frontend with them.
 *
 * @module
 */
import { native, PROT_READ, PROT_WRITE, type NativeBinding } from './binding.js';
import { checkRefs, MAX_DOMID } from './device.js';
import { ClosedError, fromNative, ValidationError } from './errors.js';

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

/** Pages of this domain granted to another one. */
export interface SharedPages {
  readonly domid: number;
  /** One grant reference per page: publish these to the other domain. */
  readonly refs: Uint32Array;
  /** The pages themselves, valid until close(). */
  readonly buffer: Buffer;
  /** Unmaps and ends the grants (Xen keeps a page until the other side unmaps it). Idempotent. */
  close(): void;
}

/** Maps of another domain's grants into this process. */
export interface MappedGrants {
  readonly domid: number;
  readonly buffer: Buffer;
  close(): void;
}

abstract class GrantDevice {
  protected fdValue: number;
  protected readonly b: NativeBinding;

  protected constructor(readonly path: string, b: NativeBinding) {
    this.b = b;
    try {
      this.fdValue = b.open(path);
    } catch (e) {
      throw fromNative(e, `opening ${path} (is the xen-${path.endsWith('gntdev') ? 'gntdev' : 'gntalloc'} module loaded, and are you root?)`);
    }
  }

  protected get fd(): number {
    if (this.fdValue < 0) throw new ClosedError(this.path);
    return this.fdValue;
  }

  /** Closes the device; open shares/mappings stay valid until their own close(). Idempotent. */
  close(): void {
    if (this.fdValue < 0) return;
    const fd = this.fdValue;
    this.fdValue = -1;
    this.b.close(fd);
  }

  [Symbol.dispose](): void {
    this.close();
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
    let open = true;
    return {
      domid,
      refs: grant.refs,
      buffer: Buffer.from(ab),
      close() {
        if (!open) return;
        open = false;
        b.munmap(ab);
        b.gntallocDealloc(fd, grant.index, pages);
      },
    };
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

  /** Maps `refs` of `domid` into this process. */
  map(domid: number, refs: Uint32Array | readonly number[], opts: { writable?: boolean } = {}): MappedGrants {
    checkDomid(domid);
    const r = checkRefs(refs);
    if (r.length === 0) throw new ValidationError('refs must not be empty');
    const fd = this.fd;
    const b = this.b;
    let index: number;
    try {
      index = b.gntdevMapGrantRefs(fd, domid, r);
    } catch (e) {
      throw fromNative(e, `reserving ${r.length} grant mappings of domain ${domid}`);
    }
    let ab: ArrayBuffer;
    try {
      ab = b.mmap(fd, r.length * PAGE_SIZE, PROT_READ | (opts.writable ? PROT_WRITE : 0), index);
    } catch (e) {
      b.gntdevUnmapGrantRef(fd, index, r.length);
      throw fromNative(e, `mapping ${r.length} pages granted by domain ${domid}`);
    }
    let open = true;
    return {
      domid,
      buffer: Buffer.from(ab),
      close() {
        if (!open) return;
        open = false;
        b.munmap(ab);
        b.gntdevUnmapGrantRef(fd, index, r.length);
      },
    };
  }

  /** Copies the granted pages into `dest` (Xen's GRANT_COPY: no mapping). */
  async copyFrom(domid: number, refs: Uint32Array | readonly number[], dest?: Uint8Array): Promise<Uint8Array> {
    checkDomid(domid);
    const r = checkRefs(refs);
    const out = dest ?? new Uint8Array(r.length * PAGE_SIZE);
    if (out.length < r.length * PAGE_SIZE) throw new ValidationError(`dest holds ${out.length} bytes, ${r.length} pages need ${r.length * PAGE_SIZE}`);
    try {
      await this.b.gntdevGrantCopyFromRefs(this.fd, domid, r, out);
    } catch (e) {
      throw fromNative(e, `copying ${r.length} pages granted by domain ${domid}`);
    }
    return out;
  }
}
