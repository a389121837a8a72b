// Entry point of the rbd_native addon: registers the librados/librbd wrappers and the pool controls.
#include <napi.h>
#include <rbd/features.h>

#include "args.h"
#include "exports.h"
#include "worker_pool.h"

namespace rbdnative {
namespace {

// Sets how many librados/librbd calls may run at once in this process (the pool's thread count).
Napi::Value SetMaxInflight(const Napi::CallbackInfo& info) {
  uint64_t n = Uint64Arg(info, 0, "maxInflight", "setMaxInflight");
  if (n < 1 || n > 1024) throw ArgError(info.Env(), "setMaxInflight", "maxInflight must be between 1 and 1024");
  WorkerPool::Instance().SetMaxInflight(static_cast<uint32_t>(n));
  return info.Env().Undefined();
}

Napi::Value PoolStatsValue(const Napi::CallbackInfo& info) {
  PoolStats s = WorkerPool::Instance().Stats();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("maxInflight", s.max_inflight);
  o.Set("inflight", s.inflight);
  o.Set("queued", s.queued);
  o.Set("peakInflight", s.peak_inflight);
  o.Set("completed", static_cast<double>(s.completed));
  return o;
}

Napi::Object Constants(Napi::Env env) {
  Napi::Object features = Napi::Object::New(env);
  features.Set("layering", static_cast<double>(RBD_FEATURE_LAYERING));
  features.Set("striping", static_cast<double>(RBD_FEATURE_STRIPINGV2));
  features.Set("exclusive-lock", static_cast<double>(RBD_FEATURE_EXCLUSIVE_LOCK));
  features.Set("object-map", static_cast<double>(RBD_FEATURE_OBJECT_MAP));
  features.Set("fast-diff", static_cast<double>(RBD_FEATURE_FAST_DIFF));
  features.Set("deep-flatten", static_cast<double>(RBD_FEATURE_DEEP_FLATTEN));
  features.Set("journaling", static_cast<double>(RBD_FEATURE_JOURNALING));
  features.Set("data-pool", static_cast<double>(RBD_FEATURE_DATA_POOL));
  features.Set("operations", static_cast<double>(RBD_FEATURE_OPERATIONS));
  features.Set("migrating", static_cast<double>(RBD_FEATURE_MIGRATING));
  features.Set("non-primary", static_cast<double>(RBD_FEATURE_NON_PRIMARY));
  features.Set("dirty-cache", static_cast<double>(RBD_FEATURE_DIRTY_CACHE));
  Napi::Object constants = Napi::Object::New(env);
  constants.Set("features", features);
  return constants;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new AddonState{CompletionChannel::Create(env)});
  InitRados(env, exports);
  InitRbdPool(env, exports);
  InitRbdImage(env, exports);
  ExportSync<SetMaxInflight>(env, exports, "setMaxInflight");
  ExportSync<PoolStatsValue>(env, exports, "poolStats");
  exports.Set("constants", Constants(env));
  return exports;
}

}  // namespace rbdnative

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return rbdnative::Init(env, exports); }

NODE_API_MODULE(rbd_native, InitModule)
