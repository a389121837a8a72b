#pragma once

#include <napi.h>

namespace rbdnative {

void InitRados(Napi::Env env, Napi::Object exports);
void InitRbdPool(Napi::Env env, Napi::Object exports);
void InitRbdImage(Napi::Env env, Napi::Object exports);

}  // namespace rbdnative
