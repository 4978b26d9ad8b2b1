// /dev/xen/gntalloc: grant pages of this domain to another domain.
#include <sys/ioctl.h>
#include <sys/types.h>
#include <xen/gntalloc.h>

#include <cerrno>
#include <cstdlib>
#include <memory>

#include "addon.h"
#include "errors.h"

namespace xzc {
namespace {

// gntallocAlloc(fd, domid, count, writable) -> { index, refs: Uint32Array }
// `index` is the mmap offset of the new pages on this fd.
Napi::Value Alloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  uint32_t domid = ArgUint32(info, 1, "domid");
  uint32_t count = ArgUint32(info, 2, "count");
  bool writable = info.Length() > 3 && info[3].ToBoolean();
  if (domid > 0xffff) throw Napi::RangeError::New(env, "domid must fit in 16 bits");
  if (count == 0 || count > (1u << 24)) throw Napi::RangeError::New(env, "count must be in 1..2^24");
  size_t size = sizeof(ioctl_gntalloc_alloc_gref) + (count - 1) * sizeof(uint32_t);
  std::unique_ptr<ioctl_gntalloc_alloc_gref, FreeDeleter> op(
      static_cast<ioctl_gntalloc_alloc_gref*>(std::calloc(1, size)));
  if (!op) throw Napi::Error::New(env, "out of memory");
  op->domid = static_cast<uint16_t>(domid);
  op->flags = writable ? GNTALLOC_FLAG_WRITABLE : 0;
  op->count = count;
  if (IoctlRetry(fd, IOCTL_GNTALLOC_ALLOC_GREF, op.get()) < 0)
    ThrowErrno(env, errno, "IOCTL_GNTALLOC_ALLOC_GREF");
  Napi::Uint32Array refs = Napi::Uint32Array::New(env, count);
  for (uint32_t i = 0; i < count; i++) refs[i] = op->gref_ids[i];
  Napi::Object o = Napi::Object::New(env);
  o.Set("index", Napi::Number::New(env, static_cast<double>(op->index)));
  o.Set("refs", refs);
  return o;
}

// gntallocDealloc(fd, index, count)
Napi::Value Dealloc(const Napi::CallbackInfo& info) {
  ioctl_gntalloc_dealloc_gref op{};
  op.index = ArgUint64(info, 1, "index");
  op.count = ArgUint32(info, 2, "count");
  if (IoctlRetry(ArgFd(info, 0), IOCTL_GNTALLOC_DEALLOC_GREF, &op) < 0)
    ThrowErrno(info.Env(), errno, "IOCTL_GNTALLOC_DEALLOC_GREF");
  return info.Env().Undefined();
}

}  // namespace

void InitGntalloc(Napi::Env env, Napi::Object exports) {
  exports.Set("gntallocAlloc", Napi::Function::New(env, Alloc, "gntallocAlloc"));
  exports.Set("gntallocDealloc", Napi::Function::New(env, Dealloc, "gntallocDealloc"));
}

}  // namespace xzc
