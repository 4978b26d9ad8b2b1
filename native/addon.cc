// Entry point of the xen_zcopy addon: thin mechanism over the kernel
// interfaces. Policy (validation, lifetime, teardown order) lives in lib/.
#include "addon.h"
#include "instance.h"
#include "pool.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  xzc::InitInstance(env);  // first: the others keep their state in it
  xzc::InitFd(env, exports);
  xzc::InitDrm(env, exports);
  xzc::InitGntalloc(env, exports);
  xzc::InitGntdev(env, exports);
  xzc::InitPool(env, exports);
  xzc::InitZcopy(env, exports);
  xzc::InitDmabuf(env, exports);
  xzc::InitEvtchn(env, exports);
  xzc::InitRing(env, exports);
  xzc::InitKms(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(xen_zcopy, Init)
