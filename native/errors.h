// Errno-carrying JS errors shaped like Node's own fs errors.
#pragma once

#include <napi.h>

#include <string>

namespace xzc {

// Builds `Error` with .errno (negative, as in Node), .code ('ENOENT') and
// .syscall (the ioctl or libc call). `path` is optional context.
Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall,
                       const std::string& path = std::string());

// Throws ErrnoError for the current errno.
[[noreturn]] void ThrowErrno(Napi::Env env, int err, const char* syscall,
                             const std::string& path = std::string());

// Argument helpers: throw TypeError/RangeError with a message naming the argument.
int32_t ArgInt32(const Napi::CallbackInfo& info, size_t i, const char* name);
uint32_t ArgUint32(const Napi::CallbackInfo& info, size_t i, const char* name);
int ArgFd(const Napi::CallbackInfo& info, size_t i);
uint64_t ArgUint64(const Napi::CallbackInfo& info, size_t i, const char* name);
Napi::Uint32Array ArgUint32Array(const Napi::CallbackInfo& info, size_t i, const char* name);
Napi::Uint8Array ArgUint8Array(const Napi::CallbackInfo& info, size_t i, const char* name);

// For variable-length ioctl structs allocated with calloc.
struct FreeDeleter {
  void operator()(void* p) const;
};

// Retries an ioctl on EINTR; returns its result with errno preserved.
int IoctlRetry(int fd, unsigned long request, void* arg);

}  // namespace xzc
