#include "pool.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "addon.h"
#include "errors.h"

namespace xzc {
namespace {

struct Pending {
  std::unique_ptr<BlockingJob> job;
  Napi::Promise::Deferred deferred;
  int err = 0;
};

class Pool {
 public:
  explicit Pool(Napi::Env env) {
    tsfn_ = Napi::ThreadSafeFunction::New(env, Napi::Function(), "xen-zcopy-blocking", 0, 1);
    tsfn_.Unref(env);
  }

  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
    tsfn_.Release();
  }

  void Submit(Napi::Env env, Pending* p) {
    if (outstanding_++ == 0) tsfn_.Ref(env);
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(p);
    if (idle_ == 0 && threads_.size() < max_threads_) threads_.emplace_back([this] { Run(); });
    cv_.notify_one();
  }

  void SetMaxThreads(size_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    max_threads_ = n;
  }

  Napi::Object Stats(Napi::Env env) {
    std::lock_guard<std::mutex> lock(mu_);
    Napi::Object o = Napi::Object::New(env);
    o.Set("threads", static_cast<double>(threads_.size()));
    o.Set("idle", static_cast<double>(idle_));
    o.Set("queued", static_cast<double>(queue_.size()));
    o.Set("maxThreads", static_cast<double>(max_threads_));
    o.Set("outstanding", static_cast<double>(outstanding_));
    return o;
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      idle_++;
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      idle_--;
      if (stopping_) return;
      Pending* p = queue_.front();
      queue_.pop_front();
      lock.unlock();
      p->err = p->job->work();
      tsfn_.BlockingCall(p, [this](Napi::Env env, Napi::Function, Pending* done) { Complete(env, done); });
      lock.lock();
    }
  }

  void Complete(Napi::Env env, Pending* p) {
    std::unique_ptr<Pending> owned(p);
    Napi::HandleScope scope(env);
    try {
      if (p->err)
        p->deferred.Reject(ErrnoError(env, p->err, p->job->syscall).Value());
      else
        p->deferred.Resolve(p->job->resolve(env));
    } catch (const Napi::Error& e) {
      p->deferred.Reject(e.Value());
    }
    if (--outstanding_ == 0) tsfn_.Unref(env);
  }

  Napi::ThreadSafeFunction tsfn_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending*> queue_;     // guarded by mu_
  std::vector<std::thread> threads_;  // guarded by mu_
  size_t idle_ = 0;                // guarded by mu_
  size_t max_threads_ = 16;        // guarded by mu_
  bool stopping_ = false;          // guarded by mu_
  size_t outstanding_ = 0;         // JS thread only
};

Pool* GetPool(Napi::Env env) { return env.GetInstanceData<Pool>(); }

Napi::Value SetMaxThreads(const Napi::CallbackInfo& info) {
  uint32_t n = ArgUint32(info, 0, "maxThreads");
  if (n < 1 || n > 256) throw Napi::RangeError::New(info.Env(), "maxThreads must be in 1..256");
  GetPool(info.Env())->SetMaxThreads(n);
  return info.Env().Undefined();
}

Napi::Value Stats(const Napi::CallbackInfo& info) { return GetPool(info.Env())->Stats(info.Env()); }

}  // namespace

Napi::Promise RunBlocking(Napi::Env env, std::unique_ptr<BlockingJob> job) {
  auto* p = new Pending{std::move(job), Napi::Promise::Deferred::New(env)};
  Napi::Promise promise = p->deferred.Promise();
  GetPool(env)->Submit(env, p);
  return promise;
}

void InitPool(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new Pool(env));
  exports.Set("poolSetMaxThreads", Napi::Function::New(env, SetMaxThreads, "poolSetMaxThreads"));
  exports.Set("poolStats", Napi::Function::New(env, Stats, "poolStats"));
}

}  // namespace xzc
