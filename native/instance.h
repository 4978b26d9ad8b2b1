// Per-environment state of the addon. The main thread and every
// worker_threads Worker load the addon into an environment of their own, each
// with its own JS thread: nothing here is shared between environments.
#pragma once
#include <napi.h>

#include <cstddef>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace xzc {

class Pool;

struct Mapping;

// Live mappings of one environment by base address. Shared (shared_ptr) with
// every mapping's finalizer, which V8 may run after the environment's
// instance data is gone; the mutex covers finalizers on other threads.
struct MappingRegistry {
  std::mutex mu;
  std::unordered_map<void*, Mapping*> live;
};

struct Mapping {
  void* addr;
  size_t length;
  std::shared_ptr<MappingRegistry> registry;
};

struct InstanceData {
  std::shared_ptr<MappingRegistry> mappings = std::make_shared<MappingRegistry>();
  Pool* pool = nullptr;  // owned; see pool.cc
  ~InstanceData();
};

// The current environment's data (created by InitInstance, freed at teardown).
InstanceData* Instance(Napi::Env env);
void InitInstance(Napi::Env env);

}  // namespace xzc
