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
export { ZeroCopyDevice, GuestBuffer, GrantedBuffer, DEFAULT_RELEASE_TIMEOUT_MS, MAX_RELEASE_TIMEOUT_MS } from './zcopy/device.js';
export { DmaBuf } from './drm/dmabuf.js';
export { DrmDevice, findDrmNode } from './drm/device.js';
export { KmsDevice, KmsFramebuffer, KmsError, modeFor, DRM_FORMAT_XRGB8888, KMS_TIMEOUT_MS } from './drm/kms.js';
export type { KmsOutput, KmsDumbBuffer, KmsModeInfo } from './drm/kms.js';
export { bufferGeometry, checkRefs, MAX_DOMID } from './validate.js';
export type { ImportOptions, OpenOptions, ReleaseOptions, ReleaseResult } from './zcopy/device.js';
export type { BufferFormat, MappedDmaBuf, ReadonlyMappedDmaBuf } from './drm/dmabuf.js';
export type { Mapping, ReadonlyMapping, WritableMapping, ReadonlyBytes } from './resource.js';
export { GrantAllocator, GrantMapper } from './xen/grants.js';
export type { SharedPages, MappedGrants, WritableMappedGrants } from './xen/grants.js';
export { buildPageDirectory, parsePageDirectory, directoryPages, REFS_PER_DIRECTORY_PAGE } from './displif/directory.js';
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
export { readModuleStats, STATS_DIR } from './zcopy/stats.js';
export { DisplayBackend, DisplayDevice, DEFAULT_LIMITS } from './displif/backend.js';
export type { BackendEvent, DisplayBackendOptions, DisplayLimits } from './displif/backend.js';
export { ImportSink, nextVblank } from './displif/sink.js';
export { KmsSink } from './displif/kms-sink.js';
export type { KmsSinkOptions } from './displif/kms-sink.js';
export type { ConnectorInfo, DisplayBuffer, DisplaySink, Framebuffer, ImportSinkOptions, ShownFrame, SinkContext, SinkFactory } from './displif/sink.js';
export { XenbusState, DisplOp, DisplEvent, FOURCC, DBUF_FLG_REQ_ALLOC, decodeRequest, encodeRequest, encodeResponse, decodeResponse, encodePageFlipEvent } from './displif/protocol.js';
export type { DisplRequest } from './displif/protocol.js';
export { Xenstore, XenstoreError } from './xen/xenstore.js';
export type { XsOps, XsPermission, XsWatch } from './xen/xenstore.js';
export { EventChannels } from './xen/evtchn.js';
export type { EventChannel } from './xen/evtchn.js';
export { BackRing, EventRing, RingProtocolError, RING_SIZE, EVENT_RING_SIZE, RING_ENTRY_SIZE } from './xen/ring.js';
