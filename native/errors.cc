#include "errors.h"

#include <sys/ioctl.h>
#include <uv.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace xzc {

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall, const std::string& path) {
  const char* code = uv_err_name(-err);
  std::string msg = std::string(code) + ": " + uv_strerror(-err) + ", " + syscall;
  if (!path.empty()) msg += " '" + path + "'";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("code", Napi::String::New(env, code));
  e.Set("syscall", Napi::String::New(env, syscall));
  if (!path.empty()) e.Set("path", Napi::String::New(env, path));
  return e;
}

void ThrowErrno(Napi::Env env, int err, const char* syscall, const std::string& path) {
  throw ErrnoError(env, err, syscall, path);
}

static double ArgNumber(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsNumber())
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(v) || std::trunc(v) != v)
    throw Napi::RangeError::New(info.Env(), std::string(name) + " must be an integer");
  return v;
}

int32_t ArgInt32(const Napi::CallbackInfo& info, size_t i, const char* name) {
  double v = ArgNumber(info, i, name);
  if (v < INT32_MIN || v > INT32_MAX)
    throw Napi::RangeError::New(info.Env(), std::string(name) + " is out of int32 range");
  return static_cast<int32_t>(v);
}

uint32_t ArgUint32(const Napi::CallbackInfo& info, size_t i, const char* name) {
  double v = ArgNumber(info, i, name);
  if (v < 0 || v > UINT32_MAX)
    throw Napi::RangeError::New(info.Env(), std::string(name) + " is out of uint32 range");
  return static_cast<uint32_t>(v);
}

int ArgFd(const Napi::CallbackInfo& info, size_t i) {
  // Negative fds are passed through on purpose: the kernel's answer (EBADF) is
  // what callers probing error paths want to see.
  return ArgInt32(info, i, "fd");
}

uint64_t ArgUint64(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() > i && info[i].IsBigInt()) {
    bool lossless = false;
    uint64_t v = info[i].As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless)
      throw Napi::RangeError::New(info.Env(), std::string(name) + " is out of uint64 range");
    return v;
  }
  double v = ArgNumber(info, i, name);
  if (v < 0 || v > 9007199254740991.0)
    throw Napi::RangeError::New(info.Env(), std::string(name) + " must be a safe non-negative integer or a bigint");
  return static_cast<uint64_t>(v);
}

static Napi::TypedArray ArgTyped(const Napi::CallbackInfo& info, size_t i, const char* name,
                                 napi_typedarray_type type, const char* type_name) {
  if (info.Length() <= i || !info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != type)
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a " + type_name);
  return info[i].As<Napi::TypedArray>();
}

Napi::Uint32Array ArgUint32Array(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return ArgTyped(info, i, name, napi_uint32_array, "Uint32Array").As<Napi::Uint32Array>();
}

Napi::Uint8Array ArgUint8Array(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return ArgTyped(info, i, name, napi_uint8_array, "Uint8Array").As<Napi::Uint8Array>();
}

void FreeDeleter::operator()(void* p) const { std::free(p); }

int IoctlRetry(int fd, unsigned long request, void* arg) {
  int ret;
  do {
    ret = ioctl(fd, request, arg);
  } while (ret == -1 && errno == EINTR);
  return ret;
}

}  // namespace xzc
