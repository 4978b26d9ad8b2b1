// DRM core ioctls.
#include <drm.h>

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

}  // namespace

void InitDrm(Napi::Env env, Napi::Object exports) {
  exports.Set("drmVersion", Napi::Function::New(env, Version, "drmVersion"));
}

}  // namespace xzc
