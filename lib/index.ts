/**
 * xen-zcopy: zero-copy sharing of display buffers between Xen domains.
 *
 * Dom0 backend: {@link ZeroCopyDevice} imports a guest's grant references as a
 * {@link DmaBuf} ({@link ZeroCopyDevice.importGuestBuffer}) and grants a Dom0
 * dma-buf to a guest ({@link ZeroCopyDevice.exportToGuest}); {@link DrmDevice}
 * hands dma-bufs to real DRM drivers; {@link probe} says what the host offers.
 *
 * @module
 */
export {
  ZeroCopyDevice,
  GuestBuffer,
  GrantedBuffer,
  DmaBuf,
  DrmDevice,
  findDrmNode,
  bufferGeometry,
  checkRefs,
  MAX_DOMID,
  DEFAULT_RELEASE_TIMEOUT_MS,
  MAX_RELEASE_TIMEOUT_MS,
} from './device.js';
export type {
  BufferFormat, ImportOptions, OpenOptions, ReleaseOptions, ReleaseResult, MappedDmaBuf, ReadonlyMappedDmaBuf,
} from './device.js';
export type { Mapping, ReadonlyMapping, WritableMapping, ReadonlyBytes } from './resource.js';
export { GrantAllocator, GrantMapper } from './grants.js';
export type { SharedPages, MappedGrants, WritableMappedGrants } from './grants.js';
export { buildPageDirectory, parsePageDirectory, directoryPages, REFS_PER_DIRECTORY_PAGE } from './displif.js';
export { probe } from './probe.js';
export type { Capabilities } from './probe.js';
export {
  XenZcopyError,
  ValidationError,
  ClosedError,
  DeviceNotFoundError,
  XenZcopySystemError,
  TimeoutError,
} from './errors.js';
// The raw addon (lib/binding.ts) is deliberately not exported: it bypasses
// every check and lifetime rule of this API. Tests import it directly.
