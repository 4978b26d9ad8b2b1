// KMS (mode setting) ioctls on a DRM card fd: resources, connectors,
// encoders, planes and their properties, mode blobs, framebuffers (ADDFB2),
// atomic commits (with a writeback out-fence), DRM master, and the DRM
// events (flip complete) read without ever blocking. An FdWatch delivers an
// fd's readability on the event loop (the DRM fd's events, a fence's
// signal). Choosing outputs and what to commit is lib/drm/kms.ts's policy.
#include <poll.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "addon.h"
#include "drm_uapi.h"
#include "errors.h"

namespace xzc {
namespace {

inline __u64 Ptr(const void* p) { return static_cast<__u64>(reinterpret_cast<uintptr_t>(p)); }

Napi::Array U32Array(Napi::Env env, const std::vector<uint32_t>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); i++) a[i] = Napi::Number::New(env, v[i]);
  return a;
}

Napi::Object ModeObject(Napi::Env env, const drm_mode_modeinfo& m) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("clock", m.clock);
  o.Set("hdisplay", m.hdisplay);
  o.Set("hsyncStart", m.hsync_start);
  o.Set("hsyncEnd", m.hsync_end);
  o.Set("htotal", m.htotal);
  o.Set("hskew", m.hskew);
  o.Set("vdisplay", m.vdisplay);
  o.Set("vsyncStart", m.vsync_start);
  o.Set("vsyncEnd", m.vsync_end);
  o.Set("vtotal", m.vtotal);
  o.Set("vscan", m.vscan);
  o.Set("vrefresh", m.vrefresh);
  o.Set("flags", m.flags);
  o.Set("type", m.type);
  o.Set("name", std::string(m.name, strnlen(m.name, sizeof(m.name))));
  return o;
}

uint32_t FieldU32(Napi::Object o, const char* key, uint32_t max) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("mode.") + key + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= max) || d != static_cast<double>(static_cast<uint64_t>(d)))
    throw Napi::RangeError::New(o.Env(), std::string("mode.") + key + " is out of range");
  return static_cast<uint32_t>(d);
}

// kmsResources(fd) -> { crtcs, connectors, encoders, minWidth, maxWidth, minHeight, maxHeight }
Napi::Value Resources(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  std::vector<uint32_t> crtcs, conns, encs;
  drm_mode_card_res res{};
  // the counts may grow between the two calls (hotplug): retry until stable
  for (int attempt = 0;; attempt++) {
    res = {};
    if (IoctlRetry(fd, DRM_IOCTL_MODE_GETRESOURCES, &res) < 0) ThrowErrno(env, errno, "DRM_IOCTL_MODE_GETRESOURCES");
    crtcs.assign(res.count_crtcs, 0);
    conns.assign(res.count_connectors, 0);
    encs.assign(res.count_encoders, 0);
    drm_mode_card_res again = res;
    again.count_fbs = 0;
    again.crtc_id_ptr = Ptr(crtcs.data());
    again.connector_id_ptr = Ptr(conns.data());
    again.encoder_id_ptr = Ptr(encs.data());
    if (IoctlRetry(fd, DRM_IOCTL_MODE_GETRESOURCES, &again) < 0) ThrowErrno(env, errno, "DRM_IOCTL_MODE_GETRESOURCES");
    if ((again.count_crtcs <= crtcs.size() && again.count_connectors <= conns.size() &&
         again.count_encoders <= encs.size()) || attempt >= 3) {
      crtcs.resize(std::min<size_t>(again.count_crtcs, crtcs.size()));
      conns.resize(std::min<size_t>(again.count_connectors, conns.size()));
      encs.resize(std::min<size_t>(again.count_encoders, encs.size()));
      res = again;
      break;
    }
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("crtcs", U32Array(env, crtcs));
  o.Set("connectors", U32Array(env, conns));
  o.Set("encoders", U32Array(env, encs));
  o.Set("minWidth", res.min_width);
  o.Set("maxWidth", res.max_width);
  o.Set("minHeight", res.min_height);
  o.Set("maxHeight", res.max_height);
  return o;
}

// kmsConnector(fd, id) -> { id, type, typeId, connection, encoderId, encoders, modes, mmWidth, mmHeight }
// (probes the connector: GETCONNECTOR with count_modes = 0 asks the driver to reprobe)
Napi::Value Connector(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  uint32_t id = ArgUint32(info, 1, "connectorId");
  std::vector<uint32_t> encs;
  std::vector<drm_mode_modeinfo> modes;
  drm_mode_get_connector c{};
  for (int attempt = 0;; attempt++) {
    c = {};
    c.connector_id = id;
    if (IoctlRetry(fd, DRM_IOCTL_MODE_GETCONNECTOR, &c) < 0) ThrowErrno(env, errno, "DRM_IOCTL_MODE_GETCONNECTOR");
    encs.assign(c.count_encoders, 0);
    modes.assign(c.count_modes, drm_mode_modeinfo{});
    drm_mode_get_connector again{};
    again.connector_id = id;
    again.count_encoders = c.count_encoders;
    again.count_modes = c.count_modes;
    again.encoders_ptr = Ptr(encs.data());
    again.modes_ptr = Ptr(modes.data());
    if (IoctlRetry(fd, DRM_IOCTL_MODE_GETCONNECTOR, &again) < 0) ThrowErrno(env, errno, "DRM_IOCTL_MODE_GETCONNECTOR");
    if ((again.count_encoders <= encs.size() && again.count_modes <= modes.size()) || attempt >= 3) {
      encs.resize(std::min<size_t>(again.count_encoders, encs.size()));
      modes.resize(std::min<size_t>(again.count_modes, modes.size()));
      c = again;
      break;
    }
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", id);
  o.Set("type", c.connector_type);
  o.Set("typeId", c.connector_type_id);
  o.Set("connection", c.connection);
  o.Set("encoderId", c.encoder_id);
  o.Set("encoders", U32Array(env, encs));
  o.Set("mmWidth", c.mm_width);
  o.Set("mmHeight", c.mm_height);
  Napi::Array ms = Napi::Array::New(env, modes.size());
  for (size_t i = 0; i < modes.size(); i++) ms[i] = ModeObject(env, modes[i]);
  o.Set("modes", ms);
  return o;
}

// kmsEncoder(fd, id) -> { id, type, crtcId, possibleCrtcs }
Napi::Value Encoder(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  drm_mode_get_encoder e{};
  e.encoder_id = ArgUint32(info, 1, "encoderId");
  if (IoctlRetry(ArgFd(info, 0), DRM_IOCTL_MODE_GETENCODER, &e) < 0) ThrowErrno(env, errno, "DRM_IOCTL_MODE_GETENCODER");
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", e.encoder_id);
  o.Set("type", e.encoder_type);
  o.Set("crtcId", e.crtc_id);
  o.Set("possibleCrtcs", e.possible_crtcs);
  return o;
}

// kmsPlanes(fd) -> plane ids (needs the universal planes client cap for primaries)
Napi::Value Planes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  std::vector<uint32_t> ids;
  for (int attempt = 0;; attempt++) {
    drm_mode_get_plane_res r{};
    if (IoctlRetry(fd, DRM_IOCTL_MODE_GETPLANERESOURCES, &r) < 0) ThrowErrno(env, errno, "DRM_IOCTL_MODE_GETPLANERESOURCES");
    ids.assign(r.count_planes, 0);
    drm_mode_get_plane_res again{};
    again.count_planes = r.count_planes;
    again.plane_id_ptr = Ptr(ids.data());
    if (IoctlRetry(fd, DRM_IOCTL_MODE_GETPLANERESOURCES, &again) < 0) ThrowErrno(env, errno, "DRM_IOCTL_MODE_GETPLANERESOURCES");
    if (again.count_planes <= ids.size() || attempt >= 3) {
      ids.resize(std::min<size_t>(again.count_planes, ids.size()));
      break;
    }
  }
  return U32Array(env, ids);
}

// kmsPlane(fd, id) -> { id, crtcId, fbId, possibleCrtcs, formats }
Napi::Value Plane(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  uint32_t id = ArgUint32(info, 1, "planeId");
  drm_mode_get_plane p{};
  p.plane_id = id;
  if (IoctlRetry(fd, DRM_IOCTL_MODE_GETPLANE, &p) < 0) ThrowErrno(env, errno, "DRM_IOCTL_MODE_GETPLANE");
  std::vector<uint32_t> formats(p.count_format_types);
  drm_mode_get_plane again{};
  again.plane_id = id;
  again.count_format_types = p.count_format_types;
  again.format_type_ptr = Ptr(formats.data());
  if (IoctlRetry(fd, DRM_IOCTL_MODE_GETPLANE, &again) < 0) ThrowErrno(env, errno, "DRM_IOCTL_MODE_GETPLANE");
  formats.resize(std::min<size_t>(again.count_format_types, formats.size()));
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", id);
  o.Set("crtcId", again.crtc_id);
  o.Set("fbId", again.fb_id);
  o.Set("possibleCrtcs", again.possible_crtcs);
  o.Set("formats", U32Array(env, formats));
  return o;
}

// kmsProperties(fd, objectId, objectType) -> [{ id, name, value: bigint }]
Napi::Value Properties(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  uint32_t obj = ArgUint32(info, 1, "objectId");
  uint32_t type = ArgUint32(info, 2, "objectType");
  std::vector<uint32_t> ids;
  std::vector<uint64_t> values;
  for (int attempt = 0;; attempt++) {
    drm_mode_obj_get_properties q{};
    q.obj_id = obj;
    q.obj_type = type;
    if (IoctlRetry(fd, DRM_IOCTL_MODE_OBJ_GETPROPERTIES, &q) < 0) ThrowErrno(env, errno, "DRM_IOCTL_MODE_OBJ_GETPROPERTIES");
    ids.assign(q.count_props, 0);
    values.assign(q.count_props, 0);
    drm_mode_obj_get_properties again{};
    again.obj_id = obj;
    again.obj_type = type;
    again.count_props = q.count_props;
    again.props_ptr = Ptr(ids.data());
    again.prop_values_ptr = Ptr(values.data());
    if (IoctlRetry(fd, DRM_IOCTL_MODE_OBJ_GETPROPERTIES, &again) < 0)
      ThrowErrno(env, errno, "DRM_IOCTL_MODE_OBJ_GETPROPERTIES");
    if (again.count_props <= ids.size() || attempt >= 3) {
      ids.resize(std::min<size_t>(again.count_props, ids.size()));
      break;
    }
  }
  Napi::Array out = Napi::Array::New(env, ids.size());
  for (size_t i = 0; i < ids.size(); i++) {
    drm_mode_get_property p{};
    p.prop_id = ids[i];
    if (IoctlRetry(fd, DRM_IOCTL_MODE_GETPROPERTY, &p) < 0) ThrowErrno(env, errno, "DRM_IOCTL_MODE_GETPROPERTY");
    Napi::Object o = Napi::Object::New(env);
    o.Set("id", ids[i]);
    o.Set("name", std::string(p.name, strnlen(p.name, sizeof(p.name))));
    o.Set("value", Napi::BigInt::New(env, static_cast<uint64_t>(values[i])));
    out[i] = o;
  }
  return out;
}

// kmsSetClientCap(fd, cap, value)
Napi::Value SetClientCap(const Napi::CallbackInfo& info) {
  drm_set_client_cap c{};
  c.capability = ArgUint32(info, 1, "capability");
  c.value = ArgUint32(info, 2, "value");
  if (IoctlRetry(ArgFd(info, 0), DRM_IOCTL_SET_CLIENT_CAP, &c) < 0)
    ThrowErrno(info.Env(), errno, "DRM_IOCTL_SET_CLIENT_CAP");
  return info.Env().Undefined();
}

// kmsCreateModeBlob(fd, mode) -> blob id (a MODE_ID property value)
Napi::Value CreateModeBlob(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  if (info.Length() < 2 || !info[1].IsObject()) throw Napi::TypeError::New(env, "mode must be an object");
  Napi::Object o = info[1].As<Napi::Object>();
  drm_mode_modeinfo m{};
  m.clock = FieldU32(o, "clock", UINT32_MAX);
  m.hdisplay = FieldU32(o, "hdisplay", UINT16_MAX);
  m.hsync_start = FieldU32(o, "hsyncStart", UINT16_MAX);
  m.hsync_end = FieldU32(o, "hsyncEnd", UINT16_MAX);
  m.htotal = FieldU32(o, "htotal", UINT16_MAX);
  m.hskew = FieldU32(o, "hskew", UINT16_MAX);
  m.vdisplay = FieldU32(o, "vdisplay", UINT16_MAX);
  m.vsync_start = FieldU32(o, "vsyncStart", UINT16_MAX);
  m.vsync_end = FieldU32(o, "vsyncEnd", UINT16_MAX);
  m.vtotal = FieldU32(o, "vtotal", UINT16_MAX);
  m.vscan = FieldU32(o, "vscan", UINT16_MAX);
  m.vrefresh = FieldU32(o, "vrefresh", UINT32_MAX);
  m.flags = FieldU32(o, "flags", UINT32_MAX);
  m.type = FieldU32(o, "type", UINT32_MAX);
  Napi::Value name = o.Get("name");
  if (name.IsString()) {
    std::string s = name.As<Napi::String>().Utf8Value();
    memcpy(m.name, s.data(), std::min(s.size(), sizeof(m.name) - 1));
  }
  drm_mode_create_blob b{};
  b.data = Ptr(&m);
  b.length = sizeof(m);
  if (IoctlRetry(fd, DRM_IOCTL_MODE_CREATEPROPBLOB, &b) < 0) ThrowErrno(env, errno, "DRM_IOCTL_MODE_CREATEPROPBLOB");
  return Napi::Number::New(env, b.blob_id);
}

// kmsDestroyBlob(fd, id)
Napi::Value DestroyBlob(const Napi::CallbackInfo& info) {
  drm_mode_destroy_blob b{};
  b.blob_id = ArgUint32(info, 1, "blobId");
  if (IoctlRetry(ArgFd(info, 0), DRM_IOCTL_MODE_DESTROYPROPBLOB, &b) < 0)
    ThrowErrno(info.Env(), errno, "DRM_IOCTL_MODE_DESTROYPROPBLOB");
  return info.Env().Undefined();
}

// kmsAddFb2(fd, width, height, fourcc, handles[4], pitches[4], offsets[4]) -> fb id
Napi::Value AddFb2(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  drm_mode_fb_cmd2 f{};
  f.width = ArgUint32(info, 1, "width");
  f.height = ArgUint32(info, 2, "height");
  f.pixel_format = ArgUint32(info, 3, "fourcc");
  Napi::Uint32Array handles = ArgUint32Array(info, 4, "handles");
  Napi::Uint32Array pitches = ArgUint32Array(info, 5, "pitches");
  Napi::Uint32Array offsets = ArgUint32Array(info, 6, "offsets");
  if (handles.ElementLength() > 4 || pitches.ElementLength() != handles.ElementLength() ||
      offsets.ElementLength() != handles.ElementLength() || handles.ElementLength() == 0)
    throw Napi::RangeError::New(env, "handles, pitches and offsets: 1 to 4 planes each, the same count");
  for (size_t i = 0; i < handles.ElementLength(); i++) {
    f.handles[i] = handles[i];
    f.pitches[i] = pitches[i];
    f.offsets[i] = offsets[i];
  }
  if (IoctlRetry(ArgFd(info, 0), DRM_IOCTL_MODE_ADDFB2, &f) < 0) ThrowErrno(env, errno, "DRM_IOCTL_MODE_ADDFB2");
  return Napi::Number::New(env, f.fb_id);
}

// kmsRmFb(fd, id)
Napi::Value RmFb(const Napi::CallbackInfo& info) {
  unsigned int id = ArgUint32(info, 1, "fbId");
  if (IoctlRetry(ArgFd(info, 0), DRM_IOCTL_MODE_RMFB, &id) < 0) ThrowErrno(info.Env(), errno, "DRM_IOCTL_MODE_RMFB");
  return info.Env().Undefined();
}

// kmsAtomic(fd, flags, objects, counts, props, values: BigUint64Array, userData: bigint, fenceIndex)
//   -> the writeback out-fence fd, or -1. objects[i] has counts[i] consecutive
//   (props, values) pairs. fenceIndex >= 0 names the pair whose value is
//   WRITEBACK_OUT_FENCE_PTR: its value is replaced by a pointer the kernel
//   writes the fence fd to.
Napi::Value Atomic(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  uint32_t flags = ArgUint32(info, 1, "flags");
  Napi::Uint32Array objs = ArgUint32Array(info, 2, "objects");
  Napi::Uint32Array counts = ArgUint32Array(info, 3, "counts");
  Napi::Uint32Array props = ArgUint32Array(info, 4, "props");
  if (info.Length() < 6 || !info[5].IsTypedArray() ||
      info[5].As<Napi::TypedArray>().TypedArrayType() != napi_biguint64_array)
    throw Napi::TypeError::New(env, "values must be a BigUint64Array");
  Napi::TypedArrayOf<uint64_t> values = info[5].As<Napi::TypedArrayOf<uint64_t>>();
  bool lossless = true;
  uint64_t userData = info.Length() > 6 && info[6].IsBigInt() ? info[6].As<Napi::BigInt>().Uint64Value(&lossless) : 0;
  int32_t fenceIndex = info.Length() > 7 ? ArgInt32(info, 7, "fenceIndex") : -1;
  if (objs.ElementLength() != counts.ElementLength() || props.ElementLength() != values.ElementLength())
    throw Napi::RangeError::New(env, "objects/counts and props/values must have equal lengths");
  uint64_t total = 0;
  for (size_t i = 0; i < counts.ElementLength(); i++) total += counts[i];
  if (total != props.ElementLength()) throw Napi::RangeError::New(env, "counts must add up to the number of props");
  if (fenceIndex >= static_cast<int32_t>(props.ElementLength()))
    throw Napi::RangeError::New(env, "fenceIndex is out of range");
  // private copies: the kernel reads them during the call only
  std::vector<uint32_t> o(objs.Data(), objs.Data() + objs.ElementLength());
  std::vector<uint32_t> c(counts.Data(), counts.Data() + counts.ElementLength());
  std::vector<uint32_t> p(props.Data(), props.Data() + props.ElementLength());
  std::vector<uint64_t> v(values.Data(), values.Data() + values.ElementLength());
  int32_t fence = -1;
  if (fenceIndex >= 0) v[fenceIndex] = Ptr(&fence);
  drm_mode_atomic a{};
  a.flags = flags;
  a.count_objs = static_cast<uint32_t>(o.size());
  a.objs_ptr = Ptr(o.data());
  a.count_props_ptr = Ptr(c.data());
  a.props_ptr = Ptr(p.data());
  a.prop_values_ptr = Ptr(v.data());
  a.user_data = userData;
  if (IoctlRetry(fd, DRM_IOCTL_MODE_ATOMIC, &a) < 0) ThrowErrno(env, errno, "DRM_IOCTL_MODE_ATOMIC");
  return Napi::Number::New(env, fence);
}

// drmSetMaster(fd) / drmDropMaster(fd)
Napi::Value SetMaster(const Napi::CallbackInfo& info) {
  if (IoctlRetry(ArgFd(info, 0), DRM_IOCTL_SET_MASTER, nullptr) < 0)
    ThrowErrno(info.Env(), errno, "DRM_IOCTL_SET_MASTER");
  return info.Env().Undefined();
}

Napi::Value DropMaster(const Napi::CallbackInfo& info) {
  if (IoctlRetry(ArgFd(info, 0), DRM_IOCTL_DROP_MASTER, nullptr) < 0)
    ThrowErrno(info.Env(), errno, "DRM_IOCTL_DROP_MASTER");
  return info.Env().Undefined();
}

// drmModeDestroyDumb(fd, handle)
Napi::Value DestroyDumb(const Napi::CallbackInfo& info) {
  drm_mode_destroy_dumb d{};
  d.handle = ArgUint32(info, 1, "handle");
  if (IoctlRetry(ArgFd(info, 0), DRM_IOCTL_MODE_DESTROY_DUMB, &d) < 0)
    ThrowErrno(info.Env(), errno, "DRM_IOCTL_MODE_DESTROY_DUMB");
  return info.Env().Undefined();
}

// kmsReadEvents(fd) -> [{ type, userData: bigint, sequence, tvSec, tvUsec, crtcId }]
// Reads what is queued now and never blocks (each read is preceded by a
// zero-timeout poll, whatever the fd's O_NONBLOCK state). Unknown event
// types are returned with their type only.
Napi::Value ReadEvents(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  alignas(8) char buf[1024];
  for (;;) {
    pollfd pfd{fd, POLLIN, 0};
    int r = poll(&pfd, 1, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) ThrowErrno(env, errno, "poll");
    if (r == 0 || !(pfd.revents & POLLIN)) break;
    ssize_t len = read(fd, buf, sizeof(buf));
    if (len < 0 && errno == EINTR) continue;
    if (len < 0 && errno == EAGAIN) break;
    if (len < 0) ThrowErrno(env, errno, "read");
    if (len == 0) break;
    for (ssize_t off = 0; off + static_cast<ssize_t>(sizeof(drm_event)) <= len;) {
      drm_event h;
      memcpy(&h, buf + off, sizeof(h));
      if (h.length < sizeof(drm_event) || static_cast<size_t>(off) + h.length > static_cast<size_t>(len)) break;
      Napi::Object o = Napi::Object::New(env);
      o.Set("type", h.type);
      if ((h.type == DRM_EVENT_FLIP_COMPLETE || h.type == DRM_EVENT_VBLANK) && h.length >= sizeof(drm_event_vblank)) {
        drm_event_vblank e;
        memcpy(&e, buf + off, sizeof(e));
        o.Set("userData", Napi::BigInt::New(env, static_cast<uint64_t>(e.user_data)));
        o.Set("sequence", e.sequence);
        o.Set("tvSec", e.tv_sec);
        o.Set("tvUsec", e.tv_usec);
        o.Set("crtcId", e.crtc_id);
      }
      out[n++] = o;
      off += h.length;
    }
  }
  return out;
}

// FdWatch(fd): start(callback(err)) calls back on the event loop each time
// fd is readable (a DRM fd with events queued, a signalled fence), until
// stop(). It never reads or closes the fd: the caller owns it.
class FdWatch : public Napi::ObjectWrap<FdWatch> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "FdWatch",
                       {
                           InstanceMethod<&FdWatch::Start>("start"),
                           InstanceMethod<&FdWatch::Stop>("stop"),
                       });
  }

  explicit FdWatch(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FdWatch>(info) {
    fd_ = ArgFd(info, 0);
    env_ = info.Env();
    napi_add_env_cleanup_hook(env_, CleanupHook, this);
  }

  ~FdWatch() override {
    napi_remove_env_cleanup_hook(env_, CleanupHook, this);
    StopPoll();
  }

 private:
  static void CleanupHook(void* arg) { static_cast<FdWatch*>(arg)->StopPoll(); }

  void StopPoll() {
    if (!poll_) return;
    uv_poll_stop(poll_);
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
    callback_.Reset();
  }

  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsFunction()) throw Napi::TypeError::New(env, "callback must be a function");
    if (poll_) throw Napi::Error::New(env, "already started");
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok) throw Napi::Error::New(env, "no event loop");
    auto* p = new uv_poll_t;
    int r = uv_poll_init(loop, p, fd_);
    if (r < 0) {
      delete p;
      ThrowErrno(env, -r, "uv_poll_init");
    }
    p->data = this;
    r = uv_poll_start(p, UV_READABLE, OnReadable);
    if (r < 0) {
      uv_close(reinterpret_cast<uv_handle_t*>(p), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      ThrowErrno(env, -r, "uv_poll_start");
    }
    poll_ = p;
    callback_ = Napi::Persistent(info[0].As<Napi::Function>());
    return env.Undefined();
  }

  static void OnReadable(uv_poll_t* handle, int status, int events) {
    auto* self = static_cast<FdWatch*>(handle->data);
    Napi::Env env = self->env_;
    Napi::HandleScope scope(env);
    if (self->callback_.IsEmpty()) return;
    Napi::Value err = status < 0 ? ErrnoError(env, -status, "poll").Value() : env.Null();
    // the callback may stop() this watch: keep the function alive for the call
    Napi::Function cb = self->callback_.Value();
    cb.MakeCallback(self->Value(), {err});
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    StopPoll();
    return info.Env().Undefined();
  }

  napi_env env_ = nullptr;
  int fd_ = -1;
  uv_poll_t* poll_ = nullptr;  // owned until uv_close's callback
  Napi::FunctionReference callback_;
};

}  // namespace

void InitKms(Napi::Env env, Napi::Object exports) {
  exports.Set("kmsResources", Napi::Function::New(env, Resources, "kmsResources"));
  exports.Set("kmsConnector", Napi::Function::New(env, Connector, "kmsConnector"));
  exports.Set("kmsEncoder", Napi::Function::New(env, Encoder, "kmsEncoder"));
  exports.Set("kmsPlanes", Napi::Function::New(env, Planes, "kmsPlanes"));
  exports.Set("kmsPlane", Napi::Function::New(env, Plane, "kmsPlane"));
  exports.Set("kmsProperties", Napi::Function::New(env, Properties, "kmsProperties"));
  exports.Set("kmsSetClientCap", Napi::Function::New(env, SetClientCap, "kmsSetClientCap"));
  exports.Set("kmsCreateModeBlob", Napi::Function::New(env, CreateModeBlob, "kmsCreateModeBlob"));
  exports.Set("kmsDestroyBlob", Napi::Function::New(env, DestroyBlob, "kmsDestroyBlob"));
  exports.Set("kmsAddFb2", Napi::Function::New(env, AddFb2, "kmsAddFb2"));
  exports.Set("kmsRmFb", Napi::Function::New(env, RmFb, "kmsRmFb"));
  exports.Set("kmsAtomic", Napi::Function::New(env, Atomic, "kmsAtomic"));
  exports.Set("kmsReadEvents", Napi::Function::New(env, ReadEvents, "kmsReadEvents"));
  exports.Set("drmSetMaster", Napi::Function::New(env, SetMaster, "drmSetMaster"));
  exports.Set("drmDropMaster", Napi::Function::New(env, DropMaster, "drmDropMaster"));
  exports.Set("drmModeDestroyDumb", Napi::Function::New(env, DestroyDumb, "drmModeDestroyDumb"));
  exports.Set("FdWatch", FdWatch::Define(env));
}

}  // namespace xzc
