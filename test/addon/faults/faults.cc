// Test-only exports that drive the addon's real Operation, WorkerPool, GrowToFit and error code into failures no
// Ceph call can be made to produce on demand: C++ exceptions at the entry point, on a pool thread and while
// building the result, and results of any size for GrowToFit. Each must end as a rejected promise (or a thrown JS
// error), never as a C++ exception reaching N-API or ending a thread, which would abort the process.
#include <napi.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "args.h"
#include "grow.h"
#include "worker_pool.h"

namespace rbdnative {
namespace {

struct NotAStdException {};

// kind: 'bad_alloc', 'runtime_error' (its what() must not reach JS) or anything else (not a std::exception).
[[noreturn]] void Throw(const std::string& kind) {
  if (kind == "bad_alloc") throw std::bad_alloc();
  if (kind == "runtime_error") throw std::runtime_error("what() text that must stay out of the error");
  throw NotAStdException();
}

class ThrowingOperation : public Operation {
 public:
  ThrowingOperation(Napi::Env env, std::string where, std::string kind)
      : Operation(env, "fault_call", "pool/image"), where_(std::move(where)), kind_(std::move(kind)) {}
  int Execute() override {
    if (where_ == "execute") Throw(kind_);
    return 0;
  }
  Napi::Value Result(Napi::Env env) override {
    if (where_ == "result") Throw(kind_);
    return Napi::String::New(env, "ok");
  }

 private:
  std::string where_, kind_;
};

// throwIn(where, kind): where is 'entry', 'execute', 'result', or 'nowhere' (resolves with 'ok').
Napi::Value ThrowIn(const Napi::CallbackInfo& info) {
  std::string where = StringArg(info, 0, "where", "fault_call");
  std::string kind = StringArg(info, 1, "kind", "fault_call");
  if (where == "entry") Throw(kind);
  return Start(std::make_unique<ThrowingOperation>(info.Env(), where, kind));
}

// throwSync(kind): a synchronous export that throws.
Napi::Value ThrowSync(const Napi::CallbackInfo& info) { Throw(StringArg(info, 0, "kind", "fault_sync")); }

// growToFit(initial, needs, reports): GrowToFit over a stand-in for a librbd call whose result takes `needs`
// elements. With `reports` it says how many it needs when the buffer is too small (as rbd_list2 does), without it
// only -ERANGE (as rbd_get_id). Resolves with the sizes the call was given, in order.
class GrowOperation : public Operation {
 public:
  GrowOperation(Napi::Env env, uint64_t initial, uint64_t needs, bool reports)
      : Operation(env, "fault_grow", "pool/image"), initial_(initial), needs_(needs), reports_(reports) {}
  int Execute() override {
    return GrowToFit(*this, "entries", initial_, [&](size_t& size) {
      tried_.push_back(size);
      if (size >= needs_) return 0;
      if (reports_) size = needs_;
      return -ERANGE;
    });
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array a = Napi::Array::New(env, tried_.size());
    for (size_t i = 0; i < tried_.size(); ++i) a.Set(i, static_cast<double>(tried_[i]));
    return a;
  }

 private:
  size_t initial_, needs_;
  bool reports_;
  std::vector<size_t> tried_;
};

Napi::Value GrowFit(const Napi::CallbackInfo& info) {
  const char* op = "fault_grow";
  uint64_t initial = Uint64Arg(info, 0, "initial", op);
  uint64_t needs = Uint64Arg(info, 1, "needs", op);
  return Start(std::make_unique<GrowOperation>(info.Env(), initial, needs, BoolArg(info, 2, "reports", op)));
}

// releaseSlowly(ms, path): hands the pool a detached task, as a finalizer does with a collected handle, that
// takes `ms` (as rados_shutdown can) and then creates the file at `path`. The file exists after the process has
// exited only if exit waited for the task.
Napi::Value ReleaseSlowly(const Napi::CallbackInfo& info) {
  uint64_t ms = Uint64Arg(info, 0, "ms", "fault_release");
  std::string path = StringArg(info, 1, "path", "fault_release");
  WorkerPool::Instance().SubmitDetached([ms, path] {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    std::ofstream(path) << "released\n";
  });
  return info.Env().Undefined();
}

Napi::Value PoolStatsValue(const Napi::CallbackInfo& info) {
  PoolStats s = WorkerPool::Instance().Stats();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("inflight", s.inflight);
  o.Set("completed", static_cast<double>(s.completed));
  return o;
}

}  // namespace
}  // namespace rbdnative

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  using namespace rbdnative;
  env.SetInstanceData(new AddonState{CompletionChannel::Create(env)});
  Export<ThrowIn>(env, exports, "throwIn");
  ExportSync<ThrowSync>(env, exports, "throwSync");
  Export<GrowFit>(env, exports, "growToFit");
  ExportSync<PoolStatsValue>(env, exports, "poolStats");
  ExportSync<ReleaseSlowly>(env, exports, "releaseSlowly");
  return exports;
}

NODE_API_MODULE(rbd_native_faults, InitModule)
