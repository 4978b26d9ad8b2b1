// Shared-ring mechanism for a backend (Xen's io/ring.h conventions, and the
// event page of io/displif.h): the index loads and stores shared with the
// other domain, with their memory ordering, and the copies of request slots
// into private memory. Everything runs on the JS thread on a page mapped
// from the frontend's grant (an ArrayBuffer plus offset).
//
// Layout (both rings of 64-byte entries in a 4096-byte page):
//   request/response ring: req_prod @0, req_event @4, rsp_prod @8,
//     rsp_event @12, entries from @64, 32 of them (the largest power of two
//     that fits);
//   event page: in_cons @0, in_prod @4, events from @64, 63 of them.
//
// The other domain is not trusted: an index that claims more entries than
// the ring holds is reported, never followed.
#include <atomic>
#include <cstdint>
#include <cstring>

#include "addon.h"
#include "errors.h"

namespace xzc {
namespace {

constexpr size_t kPage = 4096;
constexpr size_t kHeader = 64;
constexpr size_t kEntry = 64;
constexpr uint32_t kRingSize = 32;                          // (4096 - 64) / 64 rounded down to 2^n
constexpr uint32_t kEventSlots = (kPage - kHeader) / kEntry;  // 63

static_assert(kHeader + kRingSize * kEntry <= kPage, "ring fits the page");

// The ring page inside an ArrayBuffer argument (info[0], info[1] = byte offset).
uint8_t* RingPage(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsArrayBuffer()) throw Napi::TypeError::New(env, "ring must be an ArrayBuffer");
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  uint32_t offset = ArgUint32(info, 1, "offset");
  if (offset % kPage != 0 || ab.ByteLength() < offset + kPage || ab.Data() == nullptr)
    throw Napi::RangeError::New(env, "the ring is a whole, page-aligned page of the buffer");
  return static_cast<uint8_t*>(ab.Data()) + offset;
}

uint32_t LoadAcquire(uint8_t* page, size_t off) {
  return __atomic_load_n(reinterpret_cast<uint32_t*>(page + off), __ATOMIC_ACQUIRE);
}

void StoreRelease(uint8_t* page, size_t off, uint32_t v) {
  __atomic_store_n(reinterpret_cast<uint32_t*>(page + off), v, __ATOMIC_RELEASE);
}

// ringTakeRequests(ab, offset, reqCons)
//   -> { cons, requests: Buffer (n x 64, private copies), more: boolean }
//   | { overflow: true, prod }
// Copies every request between reqCons and req_prod, then (when all are
// taken) sets req_event = cons + 1 and checks again (RING_FINAL_CHECK_FOR_
// REQUESTS): `more` means call again.
Napi::Value TakeRequests(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t* page = RingPage(info);
  uint32_t cons = ArgUint32(info, 2, "reqCons");
  uint32_t prod = LoadAcquire(page, 0);
  uint32_t n = prod - cons;
  Napi::Object out = Napi::Object::New(env);
  if (n > kRingSize) {
    out.Set("overflow", true);
    out.Set("prod", prod);
    return out;
  }
  Napi::Buffer<uint8_t> reqs = Napi::Buffer<uint8_t>::New(env, static_cast<size_t>(n) * kEntry);
  for (uint32_t i = 0; i < n; i++)
    std::memcpy(reqs.Data() + static_cast<size_t>(i) * kEntry, page + kHeader + ((cons + i) % kRingSize) * kEntry, kEntry);
  cons = prod;
  StoreRelease(page, 4, cons + 1);
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  bool more = LoadAcquire(page, 0) != cons;
  out.Set("cons", cons);
  out.Set("requests", reqs);
  out.Set("more", more);
  return out;
}

// ringPushResponses(ab, offset, rspProd, responses: Uint8Array (k x 64))
//   -> { rspProd, notify }
// Writes the responses into the slots after rspProd (the backend's own
// count), publishes the new rsp_prod with release order, and says whether
// the frontend asked to be notified (RING_PUSH_RESPONSES_AND_CHECK_NOTIFY).
Napi::Value PushResponses(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t* page = RingPage(info);
  uint32_t old = ArgUint32(info, 2, "rspProd");
  Napi::Uint8Array rsp = ArgUint8Array(info, 3, "responses");
  if (rsp.ByteLength() % kEntry != 0 || rsp.ByteLength() / kEntry > kRingSize)
    throw Napi::RangeError::New(env, "responses must be whole 64-byte entries, at most a ring's worth");
  uint32_t k = static_cast<uint32_t>(rsp.ByteLength() / kEntry);
  for (uint32_t i = 0; i < k; i++)
    std::memcpy(page + kHeader + ((old + i) % kRingSize) * kEntry, rsp.Data() + static_cast<size_t>(i) * kEntry, kEntry);
  uint32_t now = old + k;
  StoreRelease(page, 8, now);
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  uint32_t event = LoadAcquire(page, 12);
  Napi::Object out = Napi::Object::New(env);
  out.Set("rspProd", now);
  out.Set("notify", static_cast<uint32_t>(now - event) < static_cast<uint32_t>(now - old));
  return out;
}

// eventPush(ab, offset, inProd, events: Uint8Array (k x 64)) -> { inProd, pushed }
// Pushes as many events as the page has room for (in_cons is the frontend's);
// `pushed` < k means the frontend is not keeping up. A nonsensical in_cons
// counts as no room.
Napi::Value EventPush(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t* page = RingPage(info);
  uint32_t prod = ArgUint32(info, 2, "inProd");
  Napi::Uint8Array ev = ArgUint8Array(info, 3, "events");
  if (ev.ByteLength() % kEntry != 0) throw Napi::RangeError::New(env, "events must be whole 64-byte entries");
  uint32_t k = static_cast<uint32_t>(ev.ByteLength() / kEntry);
  uint32_t used = prod - LoadAcquire(page, 0);
  uint32_t room = used > kEventSlots ? 0 : kEventSlots - used;
  uint32_t pushed = k < room ? k : room;
  for (uint32_t i = 0; i < pushed; i++)
    std::memcpy(page + kHeader + ((prod + i) % kEventSlots) * kEntry, ev.Data() + static_cast<size_t>(i) * kEntry, kEntry);
  prod += pushed;
  StoreRelease(page, 4, prod);
  Napi::Object out = Napi::Object::New(env);
  out.Set("inProd", prod);
  out.Set("pushed", pushed);
  return out;
}

// ringLoad32(ab, offset, byteOffset) / ringStore32(ab, offset, byteOffset, v):
// single shared words with acquire / release order (tests and frontends).
Napi::Value Load32(const Napi::CallbackInfo& info) {
  uint8_t* page = RingPage(info);
  uint32_t off = ArgUint32(info, 2, "byteOffset");
  if (off % 4 || off > kPage - 4) throw Napi::RangeError::New(info.Env(), "byteOffset");
  return Napi::Number::New(info.Env(), LoadAcquire(page, off));
}

Napi::Value Store32(const Napi::CallbackInfo& info) {
  uint8_t* page = RingPage(info);
  uint32_t off = ArgUint32(info, 2, "byteOffset");
  if (off % 4 || off > kPage - 4) throw Napi::RangeError::New(info.Env(), "byteOffset");
  StoreRelease(page, off, ArgUint32(info, 3, "value"));
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  return info.Env().Undefined();
}

}  // namespace

void InitRing(Napi::Env env, Napi::Object exports) {
  exports.Set("ringTakeRequests", Napi::Function::New(env, TakeRequests, "ringTakeRequests"));
  exports.Set("ringPushResponses", Napi::Function::New(env, PushResponses, "ringPushResponses"));
  exports.Set("eventPush", Napi::Function::New(env, EventPush, "eventPush"));
  exports.Set("ringLoad32", Napi::Function::New(env, Load32, "ringLoad32"));
  exports.Set("ringStore32", Napi::Function::New(env, Store32, "ringStore32"));
}

}  // namespace xzc
