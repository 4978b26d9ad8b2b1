// The addon's own threads for calls that can block. They are separate from
// libuv's pool, so pending waits never starve fs/dns, and split in two lanes
// so that waits (WAIT_FREE, up to 60 s each) never delay short work
// (FROM_REFS, TO_REFS, the last close of a dma-buf, GRANT_COPY). Each lane is
// bounded (`maxThreads`) and starts a thread whenever more jobs are queued
// than it has idle threads.
//
// One pool per environment (main thread or worker). At environment teardown
// (e.g. Worker.terminate()) it stops accepting jobs, drops the queued ones
// (running their `cancel`), and does not join threads still blocked in the
// kernel: they finish on their own and touch only state they share.
#pragma once
#include <napi.h>

#include <functional>
#include <memory>

namespace xzc {

enum class Lane { kWork = 0, kWait = 1 };

// Work runs on a pool thread and returns an errno (0 = success); `resolve`
// then runs on the JS thread and builds the promise's value. On a non-zero
// errno the promise rejects with an ErrnoError naming `syscall`. `cancel`
// (optional) runs instead of `work` when the environment goes away first.
struct BlockingJob {
  const char* syscall;
  std::function<int()> work;
  std::function<Napi::Value(Napi::Env)> resolve;
  std::function<void()> cancel;
  Lane lane = Lane::kWork;
};

Napi::Promise RunBlocking(Napi::Env env, std::unique_ptr<BlockingJob> job);

void InitPool(Napi::Env env, Napi::Object exports);

}  // namespace xzc
