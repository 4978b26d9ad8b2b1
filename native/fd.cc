// File descriptors and memory mappings: open/close, mmap/munmap as external
// ArrayBuffers that are unmapped exactly once (explicitly or by the GC).
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <unordered_map>

#include "addon.h"
#include "errors.h"
#include "pool.h"

namespace xzc {
namespace {

struct Mapping {
  void* addr;
  size_t length;
};

// Live mappings by base address. Only touched on the JS thread.
std::unordered_map<void*, Mapping*> g_mappings;

void ReleaseMapping(Napi::Env, void* data, Mapping* m) {
  auto it = g_mappings.find(data);
  if (it != g_mappings.end() && it->second == m) {
    munmap(m->addr, m->length);
    g_mappings.erase(it);
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
  auto* m = new Mapping{addr, static_cast<size_t>(length)};
  g_mappings[addr] = m;
  return Napi::ArrayBuffer::New(env, addr, length, ReleaseMapping, m);
}

// munmap(arrayBuffer): unmaps now and detaches the buffer so JS cannot touch
// the old address. Returns false if the buffer was not (or no longer) mapped.
Napi::Value Munmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) throw Napi::TypeError::New(env, "expected an ArrayBuffer");
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  void* data = ab.Data();
  auto it = data ? g_mappings.find(data) : g_mappings.end();
  if (it == g_mappings.end()) return Napi::Boolean::New(env, false);
  Mapping* m = it->second;
  g_mappings.erase(it);
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
