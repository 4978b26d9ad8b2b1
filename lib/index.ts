/**
 * xen-zcopy: zero-copy sharing of display buffers between Xen domains.
 *
 * @module
 */
export { native, isNativeError, PROT_READ, PROT_WRITE } from './binding.js';
export type { NativeBinding, NativeError, DrmVersion, GntallocGrant, DumbBuffer, FromRefsResult, PoolStats } from './binding.js';
