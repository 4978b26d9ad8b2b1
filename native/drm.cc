// DRM core ioctls.
#include <fcntl.h>

#include "drm_uapi.h"

static_assert(DRM_CLOEXEC == O_CLOEXEC && DRM_RDWR == O_RDWR, "DRM PRIME flags are the open(2) flags");

#include <cerrno>
#include <string>
#include <vector>

#include "addon.h"
#include "errors.h"

namespace xzc {
namespace {

// version(fd) -> { major, minor, patchlevel, name, date, desc }
Napi::Value Version(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  drm_version v{};
  if (IoctlRetry(fd, DRM_IOCTL_VERSION, &v) < 0) ThrowErrno(env, errno, "DRM_IOCTL_VERSION");
  // The second call fills strings of the lengths the first one reported.
  std::vector<char> name(v.name_len + 1), date(v.date_len + 1), desc(v.desc_len + 1);
  v.name = name.data();
  v.date = date.data();
  v.desc = desc.data();
  if (IoctlRetry(fd, DRM_IOCTL_VERSION, &v) < 0) ThrowErrno(env, errno, "DRM_IOCTL_VERSION");
  Napi::Object o = Napi::Object::New(env);
  o.Set("major", v.version_major);
  o.Set("minor", v.version_minor);
  o.Set("patchlevel", v.version_patchlevel);
  o.Set("name", std::string(name.data(), v.name_len));
  o.Set("date", std::string(date.data(), v.date_len));
  o.Set("desc", std::string(desc.data(), v.desc_len));
  return o;
}

// drmPrimeHandleToFd(fd, handle) -> dma-buf fd (DRM_CLOEXEC | DRM_RDWR)
Napi::Value PrimeHandleToFd(const Napi::CallbackInfo& info) {
  drm_prime_handle args{};
  args.handle = ArgUint32(info, 1, "handle");
  args.flags = DRM_CLOEXEC | DRM_RDWR;
  if (IoctlRetry(ArgFd(info, 0), DRM_IOCTL_PRIME_HANDLE_TO_FD, &args) < 0)
    ThrowErrno(info.Env(), errno, "DRM_IOCTL_PRIME_HANDLE_TO_FD");
  return Napi::Number::New(info.Env(), args.fd);
}

// drmPrimeFdToHandle(fd, dmabufFd) -> GEM handle on fd
Napi::Value PrimeFdToHandle(const Napi::CallbackInfo& info) {
  drm_prime_handle args{};
  args.fd = ArgFd(info, 1);
  if (IoctlRetry(ArgFd(info, 0), DRM_IOCTL_PRIME_FD_TO_HANDLE, &args) < 0)
    ThrowErrno(info.Env(), errno, "DRM_IOCTL_PRIME_FD_TO_HANDLE");
  return Napi::Number::New(info.Env(), args.handle);
}

// drmGemClose(fd, handle)
Napi::Value GemClose(const Napi::CallbackInfo& info) {
  drm_gem_close args{};
  args.handle = ArgUint32(info, 1, "handle");
  if (IoctlRetry(ArgFd(info, 0), DRM_IOCTL_GEM_CLOSE, &args) < 0)
    ThrowErrno(info.Env(), errno, "DRM_IOCTL_GEM_CLOSE");
  return info.Env().Undefined();
}

// drmModeCreateDumb(fd, width, height, bpp) -> { handle, pitch, size }
Napi::Value ModeCreateDumb(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  drm_mode_create_dumb args{};
  args.width = ArgUint32(info, 1, "width");
  args.height = ArgUint32(info, 2, "height");
  args.bpp = ArgUint32(info, 3, "bpp");
  if (IoctlRetry(ArgFd(info, 0), DRM_IOCTL_MODE_CREATE_DUMB, &args) < 0)
    ThrowErrno(env, errno, "DRM_IOCTL_MODE_CREATE_DUMB");
  Napi::Object o = Napi::Object::New(env);
  o.Set("handle", args.handle);
  o.Set("pitch", args.pitch);
  o.Set("size", static_cast<double>(args.size));
  return o;
}

// drmModeMapDumb(fd, handle) -> mmap offset on fd
Napi::Value ModeMapDumb(const Napi::CallbackInfo& info) {
  drm_mode_map_dumb args{};
  args.handle = ArgUint32(info, 1, "handle");
  if (IoctlRetry(ArgFd(info, 0), DRM_IOCTL_MODE_MAP_DUMB, &args) < 0)
    ThrowErrno(info.Env(), errno, "DRM_IOCTL_MODE_MAP_DUMB");
  return Napi::Number::New(info.Env(), static_cast<double>(args.offset));
}

}  // namespace

void InitDrm(Napi::Env env, Napi::Object exports) {
  exports.Set("drmVersion", Napi::Function::New(env, Version, "drmVersion"));
  exports.Set("drmPrimeHandleToFd", Napi::Function::New(env, PrimeHandleToFd, "drmPrimeHandleToFd"));
  exports.Set("drmPrimeFdToHandle", Napi::Function::New(env, PrimeFdToHandle, "drmPrimeFdToHandle"));
  exports.Set("drmGemClose", Napi::Function::New(env, GemClose, "drmGemClose"));
  exports.Set("drmModeCreateDumb", Napi::Function::New(env, ModeCreateDumb, "drmModeCreateDumb"));
  exports.Set("drmModeMapDumb", Napi::Function::New(env, ModeMapDumb, "drmModeMapDumb"));
}

}  // namespace xzc
