// The xen_drm_zcopy ioctls (kernel-module/xen_zcopy_drm.h). All three can
// block (grant mapping of large buffers, waiting for a free), so they run on
// the blocking pool and return promises. zcopyImport and zcopyRelease are the
// API's import and teardown as one pool job each: a hop to the pool costs
// more than the syscalls of a small buffer, so each cycle makes two.
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "addon.h"
#include "errors.h"
#include "drm_uapi.h"
#include "pool.h"
#include "xen_zcopy_drm.h"

// The 2018 ABI on LP64, as the module checks it too.
static_assert(sizeof(drm_xen_zcopy_dumb_from_refs) == 64, "FROM_REFS layout");
static_assert(offsetof(drm_xen_zcopy_dumb_from_refs, dumb) == 24, "FROM_REFS layout");
static_assert(offsetof(drm_xen_zcopy_dumb_from_refs, wait_handle) == 56, "FROM_REFS layout");
static_assert(sizeof(drm_xen_zcopy_dumb_to_refs) == 32, "TO_REFS layout");
static_assert(sizeof(drm_xen_zcopy_dumb_wait_free) == 8, "WAIT_FREE layout");
static_assert(DRM_IOCTL_XEN_ZCOPY_DUMB_FROM_REFS == 0xC0406440, "FROM_REFS number");
static_assert(DRM_IOCTL_XEN_ZCOPY_DUMB_TO_REFS == 0xC0206441, "TO_REFS number");
static_assert(DRM_IOCTL_XEN_ZCOPY_DUMB_WAIT_FREE == 0xC0086442, "WAIT_FREE number");
// this driver's extension
static_assert(sizeof(drm_xen_zcopy_dumb_wait_free_fd) == 16, "WAIT_FREE_FD layout");
static_assert(DRM_IOCTL_XEN_ZCOPY_DUMB_WAIT_FREE_FD == 0xC0106443, "WAIT_FREE_FD number");

namespace xzc {
namespace {

// GEM_CLOSE: 0 or the errno.
int GemClose(int fd, uint32_t handle) {
  drm_gem_close gc{};
  gc.handle = handle;
  return IoctlRetry(fd, DRM_IOCTL_GEM_CLOSE, &gc) < 0 ? errno : 0;
}

std::vector<uint32_t> ArgRefs(const Napi::CallbackInfo& info, size_t i) {
  Napi::Uint32Array a = ArgUint32Array(info, i, "refs");
  return std::vector<uint32_t>(a.Data(), a.Data() + a.ElementLength());
}

// The index of the first ref that is 0 (never a data page) or repeats an
// earlier one, or -1. One pass over an open-addressing set twice the size of
// the list (a JS Set of 2025 refs cost 40-60 µs on the JS thread).
long FirstBadRef(const std::vector<uint32_t>& refs) {
  size_t cap = 16;
  while (cap < refs.size() * 2) cap <<= 1;
  std::vector<uint32_t> set(cap, 0);  // 0 = empty: refs are never 0 here
  for (size_t i = 0; i < refs.size(); i++) {
    uint32_t r = refs[i];
    if (r == 0) return static_cast<long>(i);
    size_t slot = (r * 2654435761u) & (cap - 1);
    while (set[slot] != 0) {
      if (set[slot] == r) return static_cast<long>(i);
      slot = (slot + 1) & (cap - 1);
    }
    set[slot] = r;
  }
  return -1;
}

// The refs of an import, checked: a Uint32Array of at least `expected`
// entries, none 0, none repeated. Throws a RangeError with code
// ERR_XZC_BAD_REFS (the API turns it into a ValidationError).
std::vector<uint32_t> CheckedRefs(const Napi::CallbackInfo& info, size_t i, size_t expected) {
  Napi::Env env = info.Env();
  std::vector<uint32_t> refs = ArgRefs(info, i);
  std::string problem;
  if (refs.size() < expected) {
    problem = "refs has " + std::to_string(refs.size()) + " entries, the buffer needs " + std::to_string(expected) +
              " pages";
  } else if (long bad = FirstBadRef(refs); bad >= 0) {
    uint32_t r = refs[bad];
    problem = r == 0 ? "refs[" + std::to_string(bad) + "] must be a grant reference in 1..2^32-1 (0 is never a data page), got 0"
                     : "refs[" + std::to_string(bad) + "] repeats grant reference " + std::to_string(r);
  }
  if (!problem.empty()) {
    Napi::Error e = Napi::RangeError::New(env, problem);
    e.Set("code", Napi::String::New(env, "ERR_XZC_BAD_REFS"));
    throw e;
  }
  return refs;
}

// zcopyFromRefs(fd, domid, refs, width, height, bpp, flags)
//   -> Promise<{ handle, pitch, size, waitHandle }>
Napi::Value FromRefs(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  auto req = std::make_shared<drm_xen_zcopy_dumb_from_refs>();
  *req = {};
  req->otherend_id = ArgUint32(info, 1, "domid");
  auto refs = std::make_shared<std::vector<uint32_t>>(ArgRefs(info, 2));
  req->dumb.width = ArgUint32(info, 3, "width");
  req->dumb.height = ArgUint32(info, 4, "height");
  req->dumb.bpp = ArgUint32(info, 5, "bpp");
  req->dumb.flags = info.Length() > 6 ? ArgUint32(info, 6, "flags") : 0;
  req->num_grefs = static_cast<uint32_t>(refs->size());
  req->grefs = refs->empty() ? nullptr : refs->data();
  auto job = std::make_unique<BlockingJob>();
  job->syscall = "DRM_IOCTL_XEN_ZCOPY_DUMB_FROM_REFS";
  job->work = [fd, req, refs] {
    return IoctlRetry(fd, DRM_IOCTL_XEN_ZCOPY_DUMB_FROM_REFS, req.get()) < 0 ? errno : 0;
  };
  job->resolve = [req](Napi::Env env) -> Napi::Value {
    Napi::Object o = Napi::Object::New(env);
    o.Set("handle", req->dumb.handle);
    o.Set("pitch", req->dumb.pitch);
    o.Set("size", static_cast<double>(req->dumb.size));
    o.Set("waitHandle", req->wait_handle);
    return o;
  };
  return RunBlocking(info.Env(), std::move(job));
}

// One import: the request, its refs (checked), and the exported dma-buf.
struct ImportWork {
  drm_xen_zcopy_dumb_from_refs req{};
  std::vector<uint32_t> refs;
  int dmabuf = -1;
  const char* syscall = "DRM_IOCTL_XEN_ZCOPY_DUMB_FROM_REFS";

  explicit ImportWork(const Napi::CallbackInfo& info) {
    req.otherend_id = ArgUint32(info, 1, "domid");
    req.dumb.width = ArgUint32(info, 3, "width");
    req.dumb.height = ArgUint32(info, 4, "height");
    req.dumb.bpp = ArgUint32(info, 5, "bpp");
    req.dumb.flags = info.Length() > 6 ? ArgUint32(info, 6, "flags") : 0;
    uint64_t bytes = static_cast<uint64_t>(req.dumb.width) * req.dumb.height * (req.dumb.bpp / 8);
    refs = CheckedRefs(info, 2, (bytes + 4095) / 4096);
    req.num_grefs = static_cast<uint32_t>(refs.size());
    req.grefs = refs.empty() ? nullptr : refs.data();
  }
  ImportWork(const ImportWork&) = delete;  // req.grefs points into refs
  ImportWork& operator=(const ImportWork&) = delete;

  // FROM_REFS, then the PRIME export, undone (GEM_CLOSE) when it fails: errno or 0.
  int Run(int fd) {
    if (IoctlRetry(fd, DRM_IOCTL_XEN_ZCOPY_DUMB_FROM_REFS, &req) < 0) return errno;
    drm_prime_handle exp{};
    exp.handle = req.dumb.handle;
    exp.flags = DRM_CLOEXEC | DRM_RDWR;
    if (IoctlRetry(fd, DRM_IOCTL_PRIME_HANDLE_TO_FD, &exp) < 0) {
      int err = errno;
      GemClose(fd, req.dumb.handle);  // frees the import
      syscall = "DRM_IOCTL_PRIME_HANDLE_TO_FD";
      return err;
    }
    dmabuf = exp.fd;
    return 0;
  }

  // `size` is the dma-buf's: one page per ref.
  Napi::Value Result(Napi::Env env) const {
    Napi::Object o = Napi::Object::New(env);
    o.Set("handle", req.dumb.handle);
    o.Set("pitch", req.dumb.pitch);
    o.Set("size", static_cast<double>(req.num_grefs) * 4096);
    o.Set("waitHandle", req.wait_handle);
    o.Set("dmabufFd", dmabuf);
    return o;
  }
};

// zcopyImport(fd, domid, refs, width, height, bpp, flags)
//   -> Promise<{ handle, pitch, size, waitHandle, dmabufFd }>
// FROM_REFS and its PRIME export in one pool job. The refs are checked
// (synchronously) on the copy the job uses.
Napi::Value Import(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  auto w = std::make_shared<ImportWork>(info);
  auto job = std::make_unique<BlockingJob>();
  BlockingJob* self = job.get();  // lives until the promise settles
  job->syscall = w->syscall;
  job->work = [self, fd, w] {
    int err = w->Run(fd);
    self->syscall = w->syscall;
    return err;
  };
  job->resolve = [w](Napi::Env env) { return w->Result(env); };
  return RunBlocking(info.Env(), std::move(job));
}

// zcopyImportSync(fd, ...): the same on the calling thread (the opt-in
// synchronous API: no hand-off, the JS thread blocks for the mapping).
Napi::Value ImportSync(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  ImportWork w(info);
  if (int err = w.Run(fd)) ThrowErrno(info.Env(), err, w.syscall);
  return w.Result(info.Env());
}

// WAIT_FREE_FD: the wait fd, or -errno.
int WaitFreeFd(int fd, uint32_t waitHandle) {
  drm_xen_zcopy_dumb_wait_free_fd req{};
  req.wait_handle = waitHandle;
  return IoctlRetry(fd, DRM_IOCTL_XEN_ZCOPY_DUMB_WAIT_FREE_FD, &req) < 0 ? -errno : req.fd;
}

// Set once a module answered EINVAL to WAIT_FREE_FD_IF_BUSY (a version
// without the flag): later calls ask without it.
std::atomic<bool> noIfBusy{false};

// WAIT_FREE_FD with IF_BUSY: 0 with *waitFd the wait fd, or -1 when the
// buffer was freed already (no file was made); else the errno. A module
// without the flag gets the plain call.
int WaitFreeFdIfBusy(int fd, uint32_t waitHandle, int* waitFd) {
  if (!noIfBusy.load(std::memory_order_relaxed)) {
    drm_xen_zcopy_dumb_wait_free_fd req{};
    req.wait_handle = waitHandle;
    req.flags = DRM_XEN_ZCOPY_WAIT_FREE_FD_IF_BUSY;
    if (IoctlRetry(fd, DRM_IOCTL_XEN_ZCOPY_DUMB_WAIT_FREE_FD, &req) == 0) {
      *waitFd = req.fd;
      return 0;
    }
    if (errno != EINVAL) return errno;
    noIfBusy.store(true, std::memory_order_relaxed);
  }
  int w = WaitFreeFd(fd, waitHandle);
  if (w < 0) return -w;
  *waitFd = w;
  return 0;
}

bool Readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

// One teardown: GEM_CLOSE of the zcopy handle (0: none to close), the dma-buf
// fd's close (< 0: none; the last close unmaps the grants, inside close(2)),
// then WAIT_FREE_FD with IF_BUSY (waitHandle 0: none, the caller has its wait
// fd already; then freed is false). freed when the buffer was freed by then
// (no wait fd was made, or it was readable and is closed); otherwise waitFd
// polls readable once it is. Fails with the
// GEM_CLOSE error (nothing is waited for then) or WAIT_FREE_FD's (ENOENT:
// freed and waited for before).
struct ReleaseWork {
  int fd;
  uint32_t handle;
  int dmabuf;
  uint32_t waitHandle;
  // importers' GEM_CLOSEs made first, as (fd, handle) pairs: only on the
  // calling thread (ReleaseSync), where those fds are still the importers'
  std::vector<uint32_t> gemCloses;
  int gemCloseErr = 0;  // the first of them that failed (the teardown goes on)
  int waitFd = -1;
  const char* syscall = "DRM_IOCTL_GEM_CLOSE";

  explicit ReleaseWork(const Napi::CallbackInfo& info)
      : fd(ArgFd(info, 0)),
        handle(ArgUint32(info, 1, "handle")),
        dmabuf(ArgFd(info, 2)),
        waitHandle(ArgUint32(info, 3, "waitHandle")) {}

  int Run() {
    int err = 0;
    for (size_t i = 0; i + 1 < gemCloses.size(); i += 2) {
      int e = GemClose(static_cast<int>(gemCloses[i]), gemCloses[i + 1]);
      if (gemCloseErr == 0) gemCloseErr = e;
    }
    if (handle != 0) err = GemClose(fd, handle);
    if (dmabuf >= 0) close(dmabuf);
    dmabuf = -1;
    if (err != 0) return err;
    if (waitHandle == 0) return 0;
    syscall = "DRM_IOCTL_XEN_ZCOPY_DUMB_WAIT_FREE_FD";
    int w = -1;
    if (int e = WaitFreeFdIfBusy(fd, waitHandle, &w)) return e;
    if (w >= 0 && Readable(w)) {  // freed between the two calls (or no IF_BUSY)
      close(w);
      w = -1;
    }
    waitFd = w;
    return 0;
  }

  Napi::Value Result(Napi::Env env) const {
    Napi::Object o = Napi::Object::New(env);
    o.Set("freed", waitHandle != 0 && waitFd < 0);
    o.Set("waitFd", waitFd);
    if (gemCloseErr != 0) o.Set("gemCloseError", ErrnoError(env, gemCloseErr, "DRM_IOCTL_GEM_CLOSE").Value());
    return o;
  }
};

// zcopyRelease(fd, handle, dmabufFd, waitHandle) -> Promise<{ freed, waitFd }>
// A guest buffer's teardown in one pool job (ReleaseWork).
Napi::Value Release(const Napi::CallbackInfo& info) {
  auto w = std::make_shared<ReleaseWork>(info);
  auto job = std::make_unique<BlockingJob>();
  BlockingJob* self = job.get();
  job->syscall = w->syscall;
  job->work = [self, w] {
    int err = w->Run();
    self->syscall = w->syscall;
    return err;
  };
  job->cancel = [w] {
    if (w->dmabuf >= 0) close(w->dmabuf);  // environment teardown: still close it
  };
  job->resolve = [w](Napi::Env env) { return w->Result(env); };
  return RunBlocking(info.Env(), std::move(job));
}

// zcopyReleaseSync(..., gemCloses?): the same on the calling thread, after
// the importers' GEM_CLOSEs (an array of fd, handle pairs).
Napi::Value ReleaseSync(const Napi::CallbackInfo& info) {
  ReleaseWork w(info);
  if (info.Length() > 4 && !info[4].IsUndefined()) {
    // a plain array: the usual one or two numbers cost less than a typed array
    if (!info[4].IsArray()) throw Napi::TypeError::New(info.Env(), "gemCloses must be an array of (fd, handle) pairs");
    Napi::Array pairs = info[4].As<Napi::Array>();
    if (pairs.Length() % 2 != 0) throw Napi::RangeError::New(info.Env(), "gemCloses must hold (fd, handle) pairs");
    for (uint32_t i = 0; i < pairs.Length(); i++) {
      Napi::Value v = pairs.Get(i);
      if (!v.IsNumber()) throw Napi::TypeError::New(info.Env(), "gemCloses must hold numbers");
      w.gemCloses.push_back(v.As<Napi::Number>().Uint32Value());
    }
  }
  if (int err = w.Run()) ThrowErrno(info.Env(), err, w.syscall);
  return w.Result(info.Env());
}

// zcopyWaitFreeFd(fd, waitHandle) -> wait fd (WAIT_FREE_FD; never blocks)
Napi::Value WaitFreeFdCall(const Napi::CallbackInfo& info) {
  int w = WaitFreeFd(ArgFd(info, 0), ArgUint32(info, 1, "waitHandle"));
  if (w < 0) ThrowErrno(info.Env(), -w, "DRM_IOCTL_XEN_ZCOPY_DUMB_WAIT_FREE_FD");
  return Napi::Number::New(info.Env(), w);
}

// fdReadable(fd) -> boolean: poll(POLLIN) with no wait
Napi::Value FdReadable(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), Readable(ArgFd(info, 0)));
}

// zcopyToRefs(fd, handle, domid, count) -> Promise<Uint32Array>
Napi::Value ToRefs(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  auto req = std::make_shared<drm_xen_zcopy_dumb_to_refs>();
  *req = {};
  req->handle = ArgUint32(info, 1, "handle");
  req->otherend_id = ArgUint32(info, 2, "domid");
  uint32_t count = ArgUint32(info, 3, "count");
  if (count > (1u << 24)) throw Napi::RangeError::New(info.Env(), "count must be at most 2^24");
  auto refs = std::make_shared<std::vector<uint32_t>>(count);
  req->num_grefs = count;
  req->grefs = count ? refs->data() : nullptr;
  auto job = std::make_unique<BlockingJob>();
  job->syscall = "DRM_IOCTL_XEN_ZCOPY_DUMB_TO_REFS";
  job->work = [fd, req, refs] {
    return IoctlRetry(fd, DRM_IOCTL_XEN_ZCOPY_DUMB_TO_REFS, req.get()) < 0 ? errno : 0;
  };
  job->resolve = [refs](Napi::Env env) -> Napi::Value {
    Napi::Uint32Array out = Napi::Uint32Array::New(env, refs->size());
    for (size_t i = 0; i < refs->size(); i++) out[i] = (*refs)[i];
    return out;
  };
  return RunBlocking(info.Env(), std::move(job));
}

// zcopyWaitFree(fd, waitHandle, timeoutMs) -> Promise<void>
Napi::Value WaitFree(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  auto req = std::make_shared<drm_xen_zcopy_dumb_wait_free>();
  req->wait_handle = ArgUint32(info, 1, "waitHandle");
  req->wait_to_ms = ArgUint32(info, 2, "timeoutMs");
  auto job = std::make_unique<BlockingJob>();
  job->syscall = "DRM_IOCTL_XEN_ZCOPY_DUMB_WAIT_FREE";
  job->lane = Lane::kWait;  // may block for the whole timeout: never ahead of imports and closes
  // Not retried on EINTR: the wait is killable only, so EINTR means the
  // process is dying anyway.
  job->work = [fd, req] { return ioctl(fd, DRM_IOCTL_XEN_ZCOPY_DUMB_WAIT_FREE, req.get()) < 0 ? errno : 0; };
  job->resolve = [](Napi::Env env) -> Napi::Value { return env.Undefined(); };
  return RunBlocking(info.Env(), std::move(job));
}

// zcopyIoctlRaw(fd, request, bytes: Uint8Array, refsArg) -> errno (0 = ok)
// Issues a zcopy ioctl with caller-built struct bytes, bypassing every check
// in this addon, for probing the kernel's own validation (tests only: not
// exported from the package root). `bytes` must hold at least
// _IOC_SIZE(request) bytes (a RangeError otherwise). The `grefs` field
// (offset 8) is set from refsArg: a Uint32Array (its address), 'null', or
// 'unmapped' (an address with nothing mapped); undefined leaves the bytes.
Napi::Value IoctlRaw(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  uint32_t request = ArgUint32(info, 1, "request");
  Napi::Uint8Array bytes = ArgUint8Array(info, 2, "bytes");
  // The kernel copies _IOC_SIZE(request) bytes in and out of the argument
  // (drm_ioctl does, for any request number): the buffer must hold that many.
  size_t need = _IOC_SIZE(request);
  bool hasRefsArg = info.Length() > 3 && !info[3].IsUndefined();
  if (hasRefsArg && need < 16) need = 16;  // the pointer at offset 8 must fit
  if (bytes.ByteLength() < need)
    throw Napi::RangeError::New(env, "bytes holds " + std::to_string(bytes.ByteLength()) +
                                         " bytes, the request needs " + std::to_string(need) +
                                         " (_IOC_SIZE)");
  // One spare byte so that data() is never null for a zero-sized request.
  std::vector<uint8_t> buf(bytes.ByteLength() + 1);
  std::memcpy(buf.data(), bytes.Data(), bytes.ByteLength());
  uint64_t ptr = 0;
  bool setPtr = false;
  if (info.Length() > 3 && info[3].IsTypedArray()) {
    ptr = reinterpret_cast<uint64_t>(info[3].As<Napi::TypedArray>().ArrayBuffer().Data()) +
          info[3].As<Napi::TypedArray>().ByteOffset();
    setPtr = true;
  } else if (info.Length() > 3 && info[3].IsString()) {
    std::string mode = info[3].As<Napi::String>();
    if (mode == "null") ptr = 0;
    else if (mode == "unmapped") ptr = 0x1000;  // page 1 is never mapped (mmap_min_addr)
    else throw Napi::TypeError::New(env, "refsArg must be a Uint32Array, 'null' or 'unmapped'");
    setPtr = true;
  }
  if (setPtr) std::memcpy(buf.data() + 8, &ptr, sizeof(ptr));
  int ret = ioctl(fd, request, buf.data());
  int err = ret < 0 ? errno : 0;
  std::memcpy(bytes.Data(), buf.data(), bytes.ByteLength());
  return Napi::Number::New(env, err);
}

}  // namespace

void InitZcopy(Napi::Env env, Napi::Object exports) {
  exports.Set("zcopyFromRefs", Napi::Function::New(env, FromRefs, "zcopyFromRefs"));
  exports.Set("zcopyImport", Napi::Function::New(env, Import, "zcopyImport"));
  exports.Set("zcopyRelease", Napi::Function::New(env, Release, "zcopyRelease"));
  exports.Set("zcopyImportSync", Napi::Function::New(env, ImportSync, "zcopyImportSync"));
  exports.Set("zcopyReleaseSync", Napi::Function::New(env, ReleaseSync, "zcopyReleaseSync"));
  exports.Set("zcopyWaitFreeFd", Napi::Function::New(env, WaitFreeFdCall, "zcopyWaitFreeFd"));
  exports.Set("fdReadable", Napi::Function::New(env, FdReadable, "fdReadable"));
  exports.Set("zcopyToRefs", Napi::Function::New(env, ToRefs, "zcopyToRefs"));
  exports.Set("zcopyWaitFree", Napi::Function::New(env, WaitFree, "zcopyWaitFree"));
  exports.Set("zcopyIoctlRaw", Napi::Function::New(env, IoctlRaw, "zcopyIoctlRaw"));
  Napi::Object ioctls = Napi::Object::New(env);
  ioctls.Set("FROM_REFS", static_cast<double>(DRM_IOCTL_XEN_ZCOPY_DUMB_FROM_REFS));
  ioctls.Set("TO_REFS", static_cast<double>(DRM_IOCTL_XEN_ZCOPY_DUMB_TO_REFS));
  ioctls.Set("WAIT_FREE", static_cast<double>(DRM_IOCTL_XEN_ZCOPY_DUMB_WAIT_FREE));
  ioctls.Set("WAIT_FREE_FD", static_cast<double>(DRM_IOCTL_XEN_ZCOPY_DUMB_WAIT_FREE_FD));
  ioctls.Set("WAIT_FREE_FD_IF_BUSY", static_cast<double>(DRM_XEN_ZCOPY_WAIT_FREE_FD_IF_BUSY));
  ioctls.Set("FLAG_CONTIGUOUS", static_cast<double>(XEN_ZCOPY_FROM_REFS_FLAG_CONTIGUOUS));
  exports.Set("zcopyIoctls", ioctls);
}

}  // namespace xzc
