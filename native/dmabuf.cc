// dma-buf: CPU access bracketing (DMA_BUF_IOCTL_SYNC). mmap and the size
// (lseek) are the generic fd.cc calls.
#include <linux/dma-buf.h>

#include <cerrno>

#include "addon.h"
#include "errors.h"

namespace xzc {
namespace {

// dmabufSync(fd, flags): flags are DMA_BUF_SYNC_* (START/END | READ/WRITE).
Napi::Value Sync(const Napi::CallbackInfo& info) {
  dma_buf_sync args{};
  args.flags = ArgUint32(info, 1, "flags");
  if (IoctlRetry(ArgFd(info, 0), DMA_BUF_IOCTL_SYNC, &args) < 0)
    ThrowErrno(info.Env(), errno, "DMA_BUF_IOCTL_SYNC");
  return info.Env().Undefined();
}

}  // namespace

void InitDmabuf(Napi::Env env, Napi::Object exports) {
  exports.Set("dmabufSync", Napi::Function::New(env, Sync, "dmabufSync"));
  Napi::Object f = Napi::Object::New(env);
  f.Set("READ", DMA_BUF_SYNC_READ);
  f.Set("WRITE", DMA_BUF_SYNC_WRITE);
  f.Set("START", DMA_BUF_SYNC_START);
  f.Set("END", DMA_BUF_SYNC_END);
  exports.Set("DMA_BUF_SYNC", f);
}

}  // namespace xzc
