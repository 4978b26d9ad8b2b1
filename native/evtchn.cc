// Event channels on /dev/xen/evtchn: bind to another domain's port, notify,
// unbind, and pending ports delivered on the event loop through uv_poll. The
// kernel masks a port when it fires; unmask(port) (a write of the port) lets
// it fire again: when to unmask is the caller's policy.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <uv.h>

#include <cstdint>
typedef uint16_t domid_t;  // <xen/evtchn.h> expects Xen's own type
#include <xen/evtchn.h>

#include <cerrno>
#include <cstdint>
#include <vector>

#include "addon.h"
#include "errors.h"

namespace xzc {
namespace {

class EvtchnDevice : public Napi::ObjectWrap<EvtchnDevice> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "EvtchnDevice",
                       {
                           InstanceMethod<&EvtchnDevice::BindInterdomain>("bindInterdomain"),
                           InstanceMethod<&EvtchnDevice::BindUnbound>("bindUnbound"),
                           InstanceMethod<&EvtchnDevice::Notify>("notify"),
                           InstanceMethod<&EvtchnDevice::Unbind>("unbind"),
                           InstanceMethod<&EvtchnDevice::Unmask>("unmask"),
                           InstanceMethod<&EvtchnDevice::Start>("start"),
                           InstanceMethod<&EvtchnDevice::Close>("close"),
                       });
  }

  explicit EvtchnDevice(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EvtchnDevice>(info) {
    Napi::Env env = info.Env();
    std::string path = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value()
                                                                  : std::string("/dev/xen/evtchn");
    fd_ = open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd_ < 0) ThrowErrno(env, errno, "open", path);
    napi_add_env_cleanup_hook(env, CleanupHook, this);
    env_ = env;
  }

  ~EvtchnDevice() override {
    napi_remove_env_cleanup_hook(env_, CleanupHook, this);
    Shutdown();
  }

 private:
  // Environment teardown (process exit, worker terminate): nothing may call
  // back into JS any more; the poll handle's memory outlives this object.
  static void CleanupHook(void* arg) { static_cast<EvtchnDevice*>(arg)->Shutdown(); }

  void Shutdown() {
    StopPoll();
    if (fd_ >= 0) {
      close(fd_);
      fd_ = -1;
    }
  }

  void StopPoll() {
    if (!poll_) return;
    uv_poll_stop(poll_);
    // the handle is freed in its close callback, after the loop lets go of it
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
    callback_.Reset();
  }

  int Fd(Napi::Env env) {
    if (fd_ < 0) ThrowErrno(env, EBADF, "evtchn");
    return fd_;
  }

  // bindInterdomain(remoteDomain, remotePort) -> local port
  Napi::Value BindInterdomain(const Napi::CallbackInfo& info) {
    ioctl_evtchn_bind_interdomain bind{};
    bind.remote_domain = ArgUint32(info, 0, "remoteDomain");
    bind.remote_port = ArgUint32(info, 1, "remotePort");
    int port = IoctlRetry(Fd(info.Env()), IOCTL_EVTCHN_BIND_INTERDOMAIN, &bind);
    if (port < 0) ThrowErrno(info.Env(), errno, "IOCTL_EVTCHN_BIND_INTERDOMAIN");
    return Napi::Number::New(info.Env(), port);
  }

  // bindUnbound(remoteDomain) -> a new local port that remoteDomain may bind
  // to (the frontend's side of a connection).
  Napi::Value BindUnbound(const Napi::CallbackInfo& info) {
    ioctl_evtchn_bind_unbound_port bind{};
    bind.remote_domain = ArgUint32(info, 0, "remoteDomain");
    int port = IoctlRetry(Fd(info.Env()), IOCTL_EVTCHN_BIND_UNBOUND_PORT, &bind);
    if (port < 0) ThrowErrno(info.Env(), errno, "IOCTL_EVTCHN_BIND_UNBOUND_PORT");
    return Napi::Number::New(info.Env(), port);
  }

  Napi::Value Notify(const Napi::CallbackInfo& info) {
    ioctl_evtchn_notify n{};
    n.port = ArgUint32(info, 0, "port");
    if (IoctlRetry(Fd(info.Env()), IOCTL_EVTCHN_NOTIFY, &n) < 0)
      ThrowErrno(info.Env(), errno, "IOCTL_EVTCHN_NOTIFY");
    return info.Env().Undefined();
  }

  Napi::Value Unbind(const Napi::CallbackInfo& info) {
    ioctl_evtchn_unbind u{};
    u.port = ArgUint32(info, 0, "port");
    if (IoctlRetry(Fd(info.Env()), IOCTL_EVTCHN_UNBIND, &u) < 0)
      ThrowErrno(info.Env(), errno, "IOCTL_EVTCHN_UNBIND");
    return info.Env().Undefined();
  }

  // unmask(port): the port may fire again.
  Napi::Value Unmask(const Napi::CallbackInfo& info) {
    uint32_t port = ArgUint32(info, 0, "port");
    ssize_t n;
    do {
      n = write(Fd(info.Env()), &port, sizeof(port));
    } while (n < 0 && errno == EINTR);
    if (n != static_cast<ssize_t>(sizeof(port))) ThrowErrno(info.Env(), n < 0 ? errno : EIO, "write");
    return info.Env().Undefined();
  }

  // start(callback(err, ports: number[])): pending ports on the event loop.
  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsFunction()) throw Napi::TypeError::New(env, "callback must be a function");
    int fd = Fd(env);
    if (poll_) throw Napi::Error::New(env, "already started");
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok) throw Napi::Error::New(env, "no event loop");
    auto* p = new uv_poll_t;
    int r = uv_poll_init(loop, p, fd);
    if (r < 0) {
      delete p;
      ThrowErrno(env, -r, "uv_poll_init");
    }
    p->data = this;
    r = uv_poll_start(p, UV_READABLE, OnReadable);
    if (r < 0) {
      uv_close(reinterpret_cast<uv_handle_t*>(p), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      ThrowErrno(env, -r, "uv_poll_start");
    }
    poll_ = p;
    callback_ = Napi::Persistent(info[0].As<Napi::Function>());
    return env.Undefined();
  }

  static void OnReadable(uv_poll_t* handle, int status, int events) {
    auto* self = static_cast<EvtchnDevice*>(handle->data);
    self->Deliver(status);
  }

  void Deliver(int status) {
    Napi::Env env = env_;
    Napi::HandleScope scope(env);
    std::vector<uint32_t> ports;
    int err = status < 0 ? -status : 0;
    while (!err && fd_ >= 0) {
      uint32_t buf[64];
      ssize_t n = read(fd_, buf, sizeof(buf));
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN) err = errno;
        break;
      }
      if (n == 0) break;
      ports.insert(ports.end(), buf, buf + n / sizeof(uint32_t));
      if (static_cast<size_t>(n) < sizeof(buf)) break;
    }
    if (callback_.IsEmpty()) return;
    Napi::Function cb = callback_.Value();
    Napi::Value errValue = err ? ErrnoError(env, err, "read").Value() : env.Null();
    Napi::Array arr = Napi::Array::New(env, ports.size());
    for (size_t i = 0; i < ports.size(); i++) arr[i] = Napi::Number::New(env, ports[i]);
    // an exception in the callback becomes the process's uncaught exception
    cb.MakeCallback(Value(), {errValue, arr});
  }

  // close(): stops delivery and closes the device (its bindings go with it).
  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  napi_env env_ = nullptr;
  int fd_ = -1;
  uv_poll_t* poll_ = nullptr;  // owned until uv_close's callback
  Napi::FunctionReference callback_;
};

}  // namespace

void InitEvtchn(Napi::Env env, Napi::Object exports) {
  exports.Set("EvtchnDevice", EvtchnDevice::Define(env));
}

}  // namespace xzc
