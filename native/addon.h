// One initialiser per kernel interface; addon.cc wires them into the exports.
#pragma once

#include <napi.h>

namespace xzc {

void InitFd(Napi::Env env, Napi::Object exports);
void InitDrm(Napi::Env env, Napi::Object exports);
void InitGntalloc(Napi::Env env, Napi::Object exports);
void InitGntdev(Napi::Env env, Napi::Object exports);
void InitZcopy(Napi::Env env, Napi::Object exports);
void InitDmabuf(Napi::Env env, Napi::Object exports);
void InitEvtchn(Napi::Env env, Napi::Object exports);
void InitRing(Napi::Env env, Napi::Object exports);
void InitKms(Napi::Env env, Napi::Object exports);

}  // namespace xzc
