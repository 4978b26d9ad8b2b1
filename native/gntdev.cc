// /dev/xen/gntdev: map grant references of another domain into this process.
#include <sys/ioctl.h>
#include <sys/types.h>
#include <cstdint>

// <xen/gntdev.h> uses the Xen public typedefs without defining them.
typedef uint32_t grant_ref_t;
typedef uint16_t domid_t;
#include <xen/gntdev.h>

#include <cerrno>
#include <cstdlib>
#include <memory>

#include <vector>

#include "addon.h"
#include "errors.h"
#include "pool.h"

namespace xzc {
namespace {

// GNTCOPY_source_gref from Xen's public grant_table.h (not in the Linux UAPI).
constexpr uint16_t kCopySourceGref = 1u << 0;

// gntdevMapGrantRefs(fd, domid, refs: Uint32Array) -> index (mmap offset)
Napi::Value MapGrantRefs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  uint32_t domid = ArgUint32(info, 1, "domid");
  Napi::Uint32Array refs = ArgUint32Array(info, 2, "refs");
  size_t count = refs.ElementLength();
  if (count == 0 || count > (1u << 24)) throw Napi::RangeError::New(env, "refs.length must be in 1..2^24");
  size_t size = sizeof(ioctl_gntdev_map_grant_ref) + (count - 1) * sizeof(ioctl_gntdev_grant_ref);
  std::unique_ptr<ioctl_gntdev_map_grant_ref, FreeDeleter> op(
      static_cast<ioctl_gntdev_map_grant_ref*>(std::calloc(1, size)));
  if (!op) throw Napi::Error::New(env, "out of memory");
  op->count = static_cast<uint32_t>(count);
  for (size_t i = 0; i < count; i++) {
    op->refs[i].domid = domid;
    op->refs[i].ref = refs[i];
  }
  if (IoctlRetry(fd, IOCTL_GNTDEV_MAP_GRANT_REF, op.get()) < 0)
    ThrowErrno(env, errno, "IOCTL_GNTDEV_MAP_GRANT_REF");
  return Napi::Number::New(env, static_cast<double>(op->index));
}

// gntdevUnmapGrantRef(fd, index, count)
Napi::Value UnmapGrantRef(const Napi::CallbackInfo& info) {
  ioctl_gntdev_unmap_grant_ref op{};
  op.index = ArgUint64(info, 1, "index");
  op.count = ArgUint32(info, 2, "count");
  if (IoctlRetry(ArgFd(info, 0), IOCTL_GNTDEV_UNMAP_GRANT_REF, &op) < 0)
    ThrowErrno(info.Env(), errno, "IOCTL_GNTDEV_UNMAP_GRANT_REF");
  return info.Env().Undefined();
}

// gntdevGrantCopyFromRefs(fd, domid, refs, dest: Uint8Array) -> Promise<void>
// Copies page i of the foreign grants into dest[i * 4096 ...] with one
// IOCTL_GNTDEV_GRANT_COPY (Xen does the copy). dest must stay alive and
// unchanged in size until the promise settles.
Napi::Value GrantCopyFromRefs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  uint32_t domid = ArgUint32(info, 1, "domid");
  if (domid > 0xffff) throw Napi::RangeError::New(env, "domid must fit in 16 bits");
  Napi::Uint32Array refs = ArgUint32Array(info, 2, "refs");
  Napi::Uint8Array dest = ArgUint8Array(info, 3, "dest");
  size_t count = refs.ElementLength();
  if (dest.ByteLength() < count * 4096) throw Napi::RangeError::New(env, "dest is smaller than refs.length pages");
  auto segs = std::make_shared<std::vector<gntdev_grant_copy_segment>>(count);
  for (size_t i = 0; i < count; i++) {
    gntdev_grant_copy_segment& seg = (*segs)[i];
    seg = {};
    seg.source.foreign.ref = refs[i];
    seg.source.foreign.offset = 0;
    seg.source.foreign.domid = static_cast<domid_t>(domid);
    seg.dest.virt = dest.Data() + i * 4096;
    seg.len = 4096;
    seg.flags = kCopySourceGref;
  }
  // Keep the destination's memory alive for the worker.
  auto keep = std::make_shared<Napi::Reference<Napi::Uint8Array>>(Napi::Persistent(dest));
  auto job = std::make_unique<BlockingJob>();
  job->syscall = "IOCTL_GNTDEV_GRANT_COPY";
  job->work = [fd, segs] {
    ioctl_gntdev_grant_copy op{};
    op.count = static_cast<unsigned int>(segs->size());
    op.segments = segs->data();
    if (IoctlRetry(fd, IOCTL_GNTDEV_GRANT_COPY, &op) < 0) return errno;
    for (const auto& seg : *segs)
      if (seg.status != 0) return EIO;  // GNTST_* of the first failed segment
    return 0;
  };
  job->resolve = [keep](Napi::Env e) -> Napi::Value {
    keep->Reset();
    return e.Undefined();
  };
  return RunBlocking(env, std::move(job));
}

}  // namespace

void InitGntdev(Napi::Env env, Napi::Object exports) {
  exports.Set("gntdevGrantCopyFromRefs", Napi::Function::New(env, GrantCopyFromRefs, "gntdevGrantCopyFromRefs"));
  exports.Set("gntdevMapGrantRefs", Napi::Function::New(env, MapGrantRefs, "gntdevMapGrantRefs"));
  exports.Set("gntdevUnmapGrantRef", Napi::Function::New(env, UnmapGrantRef, "gntdevUnmapGrantRef"));
}

}  // namespace xzc
