// File descriptors and memory mappings: open/close, mmap/munmap as external
// ArrayBuffers that are unmapped exactly once (explicitly or by the GC).
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>

#include "addon.h"
#include "errors.h"
#include "instance.h"
#include "pool.h"

namespace xzc {
namespace {

// Runs when the ArrayBuffer is collected (or at environment teardown):
// unmaps unless munmap() did already.
void ReleaseMapping(Napi::Env, void* data, Mapping* m) {
  {
    std::lock_guard<std::mutex> lock(m->registry->mu);
    auto it = m->registry->live.find(data);
    if (it != m->registry->live.end() && it->second == m) {
      munmap(m->addr, m->length);
      m->registry->live.erase(it);
    }
  }
  delete m;
}

Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "path must be a string");
  std::string path = info[0].As<Napi::String>();
  bool write = info.Length() < 2 || info[1].ToBoolean();
  int fd;
  do {
    fd = open(path.c_str(), (write ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) ThrowErrno(env, errno, "open", path);
  return Napi::Number::New(env, fd);
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  // close() must not be retried on EINTR on Linux: the fd is gone either way.
  if (close(fd) < 0 && errno != EINTR) ThrowErrno(info.Env(), errno, "close");
  return info.Env().Undefined();
}

// closeAsync(fd) -> Promise<void>: close on the blocking pool. Closing the
// last reference to a dma-buf runs its whole teardown (for a guest buffer:
// unmapping every grant) inside close(2), so it must not run on the JS thread.
Napi::Value CloseAsync(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  auto job = std::make_unique<BlockingJob>();
  job->syscall = "close";
  job->work = [fd] { return close(fd) < 0 && errno != EINTR ? errno : 0; };
  job->cancel = [fd] { close(fd); };  // environment teardown: still close it
  job->resolve = [](Napi::Env env) -> Napi::Value { return env.Undefined(); };
  return RunBlocking(info.Env(), std::move(job));
}

Napi::Value Dup(const Napi::CallbackInfo& info) {
  int fd = fcntl(ArgFd(info, 0), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) ThrowErrno(info.Env(), errno, "dup");
  return Napi::Number::New(info.Env(), fd);
}

// seekEnd(fd): the size of a dma-buf (lseek SEEK_END), rewinding afterwards.
Napi::Value SeekEnd(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  off_t end = lseek(fd, 0, SEEK_END);
  if (end < 0) ThrowErrno(info.Env(), errno, "lseek");
  lseek(fd, 0, SEEK_SET);
  return Napi::Number::New(info.Env(), static_cast<double>(end));
}

// mmap(fd, length, prot, offset) -> ArrayBuffer. prot: bit 0 read, bit 1 write.
Napi::Value Mmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  uint64_t length = ArgUint64(info, 1, "length");
  uint32_t protBits = ArgUint32(info, 2, "prot");
  uint64_t offset = ArgUint64(info, 3, "offset");
  if (length == 0) throw Napi::RangeError::New(env, "length must be > 0");
  int prot = ((protBits & 1) ? PROT_READ : 0) | ((protBits & 2) ? PROT_WRITE : 0);
  void* addr = mmap(nullptr, length, prot, MAP_SHARED, fd, static_cast<off_t>(offset));
  if (addr == MAP_FAILED) ThrowErrno(env, errno, "mmap");
  std::shared_ptr<MappingRegistry> reg = Instance(env)->mappings;
  auto* m = new Mapping{addr, static_cast<size_t>(length), reg};
  {
    std::lock_guard<std::mutex> lock(reg->mu);
    reg->live[addr] = m;
  }
  try {
    return Napi::ArrayBuffer::New(env, addr, length, ReleaseMapping, m);
  } catch (...) {
    {
      std::lock_guard<std::mutex> lock(reg->mu);
      reg->live.erase(addr);
    }
    munmap(addr, length);
    delete m;
    throw;
  }
}

// munmap(arrayBuffer): unmaps now and detaches the buffer so JS cannot touch
// the old address. Returns false if the buffer was not (or no longer) mapped.
Napi::Value Munmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) throw Napi::TypeError::New(env, "expected an ArrayBuffer");
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  void* data = ab.Data();
  if (!data) return Napi::Boolean::New(env, false);
  MappingRegistry& reg = *Instance(env)->mappings;
  Mapping* m;
  {
    std::lock_guard<std::mutex> lock(reg.mu);
    auto it = reg.live.find(data);
    if (it == reg.live.end()) return Napi::Boolean::New(env, false);
    m = it->second;
    reg.live.erase(it);
  }
  if (munmap(m->addr, m->length) < 0) ThrowErrno(env, errno, "munmap");
  ab.Detach();  // the finalizer still runs later and frees `m` only
  return Napi::Boolean::New(env, true);
}

}  // namespace

void InitFd(Napi::Env env, Napi::Object exports) {
  exports.Set("open", Napi::Function::New(env, Open, "open"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("dup", Napi::Function::New(env, Dup, "dup"));
  exports.Set("closeAsync", Napi::Function::New(env, CloseAsync, "closeAsync"));
  exports.Set("seekEnd", Napi::Function::New(env, SeekEnd, "seekEnd"));
  exports.Set("mmap", Napi::Function::New(env, Mmap, "mmap"));
  exports.Set("munmap", Napi::Function::New(env, Munmap, "munmap"));
}

}  // namespace xzc
