#pragma once

#include <napi.h>

namespace rbdnative {

void InitRados(Napi::Env env, Napi::Object exports);
void InitRbd(Napi::Env env, Napi::Object exports);

}  // namespace rbdnative
