// A small pool of threads for calls that can block (WAIT_FREE, large grant
// maps). It is separate from libuv's pool, so pending waits never starve
// fs/dns, and bounded, so they cannot hold more than `max_threads` threads.
#pragma once

#include <napi.h>

#include <functional>
#include <memory>

namespace xzc {

// Work runs on a pool thread and returns an errno (0 = success); `resolve`
// then runs on the JS thread and builds the promise's value. On a non-zero
// errno the promise rejects with an ErrnoError naming `syscall`.
struct BlockingJob {
  const char* syscall;
  std::function<int()> work;
  std::function<Napi::Value(Napi::Env)> resolve;
};

Napi::Promise RunBlocking(Napi::Env env, std::unique_ptr<BlockingJob> job);

void InitPool(Napi::Env env, Napi::Object exports);

}  // namespace xzc
