#include "pool.h"

#include <time.h>

#include <cerrno>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <string>
#include <thread>

#include "addon.h"
#include "errors.h"
#include "instance.h"

namespace xzc {

struct Pending {
  std::unique_ptr<BlockingJob> job;
  Napi::Promise::Deferred deferred;
  int err = 0;
};

namespace {

struct LaneState {
  std::condition_variable cv;
  std::deque<Pending*> queue;
  size_t threads = 0;  // alive, idle or busy
  size_t idle = 0;     // waiting on cv (each will take one queued job)
  size_t max_threads = 16;
};

// Everything the threads touch. Shared with them, so a thread still blocked
// in an ioctl when the environment goes away keeps it alive.
struct Shared {
  std::mutex mu;
  LaneState lanes[2];
  std::deque<Pending*> done;           // finished, for the JS thread
  napi_threadsafe_function tsfn = nullptr;  // null once stopping
  bool stopping = false;
};

void RunLane(std::shared_ptr<Shared> s, Lane which) {
  LaneState& lane = s->lanes[static_cast<int>(which)];
  std::unique_lock<std::mutex> lock(s->mu);
  for (;;) {
    lane.idle++;
    lane.cv.wait(lock, [&] { return s->stopping || !lane.queue.empty(); });
    lane.idle--;
    if (s->stopping) break;
    Pending* p = lane.queue.front();
    lane.queue.pop_front();
    lock.unlock();
    try {
      p->err = p->job->work();
    } catch (const std::bad_alloc&) {
      p->err = ENOMEM;
    } catch (...) {
      p->err = EIO;
    }
    lock.lock();
    if (s->stopping) {
      // The environment is gone: its promise and JS references with it.
      // Dropping `p` would run napi calls on a dead env; leak it instead.
      (void)p;
      break;
    }
    s->done.push_back(p);
    napi_call_threadsafe_function(s->tsfn, nullptr, napi_tsfn_nonblocking);
  }
  lane.threads--;
}

}  // namespace

class Pool {
 public:
  explicit Pool(Napi::Env env) : env_(env), shared_(std::make_shared<Shared>()) {
    napi_value name = Napi::String::New(env, "xen-zcopy-blocking");
    napi_status st = napi_create_threadsafe_function(env, nullptr, nullptr, name, 0, 1, nullptr, nullptr, this,
                                                     &Pool::Drain, &shared_->tsfn);
    NAPI_THROW_IF_FAILED_VOID(env, st);
    napi_unref_threadsafe_function(env, shared_->tsfn);
    // Registered after the tsfn: cleanup hooks run in reverse order, so this
    // one runs while the tsfn is still valid.
    napi_add_env_cleanup_hook(env, &Pool::Teardown, this);
  }

  ~Pool() {
    if (!torn_down_) napi_remove_env_cleanup_hook(env_, &Pool::Teardown, this);
    Stop();
  }

  Napi::Promise Submit(Napi::Env env, std::unique_ptr<BlockingJob> job) {
    Lane which = job->lane;
    auto* p = new Pending{std::move(job), Napi::Promise::Deferred::New(env)};
    Napi::Promise promise = p->deferred.Promise();
    std::string failure;
    {
      std::lock_guard<std::mutex> lock(shared_->mu);
      LaneState& lane = shared_->lanes[static_cast<int>(which)];
      if (shared_->stopping) {
        failure = "the environment is shutting down";
      } else {
        lane.queue.push_back(p);
        if (lane.queue.size() > lane.idle && lane.threads < lane.max_threads) {
          try {
            std::thread(RunLane, shared_, which).detach();
            lane.threads++;
          } catch (const std::exception& e) {
            // With other threads in the lane the job just waits for one.
            if (lane.threads == 0) {
              lane.queue.pop_back();
              failure = std::string("cannot start a pool thread: ") + e.what();
            }
          }
        }
        if (failure.empty()) lane.cv.notify_one();
      }
    }
    if (!failure.empty()) {
      std::unique_ptr<Pending> owned(p);
      p->deferred.Reject(Napi::Error::New(env, failure).Value());
      return promise;
    }
    if (outstanding_++ == 0) napi_ref_threadsafe_function(env, shared_->tsfn);
    return promise;
  }

  void SetMaxThreads(size_t n) {
    std::lock_guard<std::mutex> lock(shared_->mu);
    for (auto& lane : shared_->lanes) lane.max_threads = n;
  }

  Napi::Object Stats(Napi::Env env) {
    std::lock_guard<std::mutex> lock(shared_->mu);
    Napi::Object o = Napi::Object::New(env);
    Napi::Object lanes = Napi::Object::New(env);
    size_t threads = 0, idle = 0, queued = 0;
    const char* names[] = {"work", "wait"};
    for (int i = 0; i < 2; i++) {
      const LaneState& l = shared_->lanes[i];
      Napi::Object lo = Napi::Object::New(env);
      lo.Set("threads", static_cast<double>(l.threads));
      lo.Set("idle", static_cast<double>(l.idle));
      lo.Set("queued", static_cast<double>(l.queue.size()));
      lo.Set("maxThreads", static_cast<double>(l.max_threads));
      lanes.Set(names[i], lo);
      threads += l.threads;
      idle += l.idle;
      queued += l.queue.size();
    }
    o.Set("threads", static_cast<double>(threads));
    o.Set("idle", static_cast<double>(idle));
    o.Set("queued", static_cast<double>(queued));
    o.Set("maxThreads", static_cast<double>(shared_->lanes[0].max_threads));
    o.Set("outstanding", static_cast<double>(outstanding_));
    o.Set("lanes", lanes);
    return o;
  }

 private:
  // JS thread: settles every finished job.
  static void Drain(napi_env raw, napi_value, void* context, void*) {
    if (raw == nullptr) return;  // tsfn finalizing: nothing of ours is queued in it
    auto* self = static_cast<Pool*>(context);
    std::deque<Pending*> done;
    {
      std::lock_guard<std::mutex> lock(self->shared_->mu);
      done.swap(self->shared_->done);
    }
    Napi::Env env(raw);
    for (Pending* p : done) {
      std::unique_ptr<Pending> owned(p);
      Napi::HandleScope scope(env);
      try {
        if (p->err)
          p->deferred.Reject(ErrnoError(env, p->err, p->job->syscall).Value());
        else
          p->deferred.Resolve(p->job->resolve(env));
      } catch (const Napi::Error& e) {
        p->deferred.Reject(e.Value());
      } catch (const std::exception& e) {
        p->deferred.Reject(Napi::Error::New(env, e.what()).Value());
      }
      if (--self->outstanding_ == 0) napi_unref_threadsafe_function(raw, self->shared_->tsfn);
    }
  }

  static void Teardown(void* arg) {
    auto* self = static_cast<Pool*>(arg);
    self->torn_down_ = true;
    self->Stop();
  }

  // Stops accepting jobs, cancels the queued and finished ones (their
  // promises can no longer be observed) and lets blocked threads go.
  void Stop() {
    std::deque<Pending*> dropped;
    napi_threadsafe_function tsfn;
    {
      std::lock_guard<std::mutex> lock(shared_->mu);
      if (shared_->stopping) return;
      shared_->stopping = true;
      for (auto& lane : shared_->lanes) {
        for (Pending* p : lane.queue) dropped.push_back(p);
        lane.queue.clear();
      }
      for (Pending* p : shared_->done) dropped.push_back(p);
      shared_->done.clear();
      tsfn = shared_->tsfn;
      shared_->tsfn = nullptr;
    }
    for (auto& lane : shared_->lanes) lane.cv.notify_all();
    for (Pending* p : dropped) {
      if (p->job->cancel) p->job->cancel();
      delete p;
    }
    if (tsfn) napi_release_threadsafe_function(tsfn, napi_tsfn_abort);
  }

  napi_env env_;
  std::shared_ptr<Shared> shared_;
  size_t outstanding_ = 0;  // JS thread only
  bool torn_down_ = false;
};

namespace {

Pool* GetPool(Napi::Env env) { return Instance(env)->pool; }

Napi::Value SetMaxThreads(const Napi::CallbackInfo& info) {
  uint32_t n = ArgUint32(info, 0, "maxThreads");
  if (n < 1 || n > 256) throw Napi::RangeError::New(info.Env(), "maxThreads must be in 1..256");
  GetPool(info.Env())->SetMaxThreads(n);
  return info.Env().Undefined();
}

Napi::Value Stats(const Napi::CallbackInfo& info) { return GetPool(info.Env())->Stats(info.Env()); }

// poolTestSleep(lane: 'work' | 'wait', ms) -> Promise<void>: a job that
// blocks a pool thread for `ms` (nanosleep), for testing the pool itself.
Napi::Value TestSleep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "lane must be 'work' or 'wait'");
  std::string lane = info[0].As<Napi::String>();
  if (lane != "work" && lane != "wait") throw Napi::TypeError::New(env, "lane must be 'work' or 'wait'");
  uint32_t ms = ArgUint32(info, 1, "ms");
  auto job = std::make_unique<BlockingJob>();
  job->syscall = "nanosleep";
  job->lane = lane == "wait" ? Lane::kWait : Lane::kWork;
  job->work = [ms] {
    timespec ts{static_cast<time_t>(ms / 1000), static_cast<long>(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
    return 0;
  };
  job->resolve = [](Napi::Env e) -> Napi::Value { return e.Undefined(); };
  return RunBlocking(env, std::move(job));
}

}  // namespace

InstanceData::~InstanceData() { delete pool; }

InstanceData* Instance(Napi::Env env) { return env.GetInstanceData<InstanceData>(); }

void InitInstance(Napi::Env env) { env.SetInstanceData(new InstanceData()); }

Napi::Promise RunBlocking(Napi::Env env, std::unique_ptr<BlockingJob> job) {
  return GetPool(env)->Submit(env, std::move(job));
}

void InitPool(Napi::Env env, Napi::Object exports) {
  Instance(env)->pool = new Pool(env);
  exports.Set("poolSetMaxThreads", Napi::Function::New(env, SetMaxThreads, "poolSetMaxThreads"));
  exports.Set("poolStats", Napi::Function::New(env, Stats, "poolStats"));
  exports.Set("poolTestSleep", Napi::Function::New(env, TestSleep, "poolTestSleep"));
}

}  // namespace xzc
