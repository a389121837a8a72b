// A fixed-size pool of our own threads for blocking librados/librbd calls.
//
// Why not libuv's pool (Napi::AsyncWorker)? It has 4 threads by default and is shared with dns.lookup and fs:
// a few hung OSD operations would starve the whole process. Here the pool size is the bound on Ceph calls in
// flight, and a hung call occupies exactly one of our threads, never one of libuv's.
#pragma once

#include <napi.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace rbdnative {

class CompletionChannel;

// One asynchronous call. Execute() runs on a pool thread and touches only C/C++ data copied from JS before
// queueing; Result() turns the outcome into JS values on the main thread. No C++ exception leaves either: one
// thrown by Execute() or Result() rejects the call's promise instead (see CurrentExceptionError).
class Operation {
 public:
  Operation(Napi::Env env, const char* op, std::string object);
  virtual ~Operation() = default;
  Operation(const Operation&) = delete;
  Operation& operator=(const Operation&) = delete;

  Napi::Promise Promise() const { return deferred_.Promise(); }

  // Pool thread. Returns 0 or a negative errno, as librados/librbd do.
  virtual int Execute() = 0;
  // Main thread, only after Execute() returned >= 0.
  virtual Napi::Value Result(Napi::Env env) { return env.Undefined(); }

  // Pool thread, from Execute(): fail with this negative errno, and `detail` instead of strerror's text in the
  // message (it must name no key or value). Returns err, for `return Fail(-ERANGE, "...")`.
  int Fail(int err, std::string detail) {
    detail_ = std::move(detail);
    return err;
  }

  // Native objects (cluster, ioctx, image) this call uses. They are released on the pool thread right after
  // Execute(), so a destructor that blocks (rbd_close, rados_shutdown) never runs on the event loop.
  void KeepAlive(std::shared_ptr<void> native) { keep_alive_.push_back(std::move(native)); }

 private:
  friend class WorkerPool;
  friend class CompletionChannel;
  // Pool thread: Execute(), catching whatever it throws.
  void Run() noexcept;
  // Main thread: resolve or reject the promise.
  void Settle(Napi::Env env) noexcept;

  Napi::Env env_;
  Napi::Promise::Deferred deferred_;
  const char* op_;
  std::string object_;
  std::vector<std::shared_ptr<void>> keep_alive_;
  std::shared_ptr<CompletionChannel> channel_;
  int ret_ = 0;
  std::string detail_;
  std::exception_ptr thrown_;  // what Execute() threw, if it did
};

struct PoolStats {
  uint32_t max_inflight;
  uint32_t inflight;
  uint32_t queued;
  uint32_t peak_inflight;
  uint64_t completed;
};

// Delivers finished operations back to the JS thread of one Node environment.
class CompletionChannel {
 public:
  // Use Create(): it also arranges for the channel to close when the environment is torn down.
  explicit CompletionChannel(Napi::Env env);
  static std::shared_ptr<CompletionChannel> Create(Napi::Env env);
  // Main thread: an operation of this environment was queued / settled. Keeps the event loop alive only while
  // something is pending, so an idle addon never holds the process open.
  void Pending(Napi::Env env);
  void Done(Napi::Env env);
  // Pool thread.
  void Deliver(Operation* op);

 private:
  static void OnEnvCleanup(void* arg);

  Napi::ThreadSafeFunction tsfn_;
  uint64_t pending_ = 0;
  // Set when the environment goes away: Node then frees tsfn_, so no pool thread may call it after this.
  std::mutex mu_;
  bool closed_ = false;
};

class WorkerPool {
 public:
  // Process-wide and never destroyed: finalizers may hand it work during environment teardown.
  static WorkerPool& Instance();

  void SetMaxInflight(uint32_t n);
  // Main thread: queue an operation whose promise the caller has already returned. When it needs a thread of
  // its own and none can be started, the promise is rejected (EAGAIN, say) rather than left to wait for a thread
  // that may never come.
  void Submit(std::unique_ptr<Operation> op);
  // Any thread: run fn on a pool thread (used to drop native handles collected by the GC). When no thread can be
  // started it waits in the queue for the next one.
  void SubmitDetached(std::function<void()> fn);
  PoolStats Stats();

 private:
  WorkerPool() = default;
  // At process exit: waits (bounded) until no task is queued or running. Without it, a pool thread still in
  // rados_shutdown (a handle collected during environment teardown, or a call in flight at process.exit) races
  // the exit-time destructors of librbd and libceph-common, and the process dies of SIGSEGV or SIGABRT.
  static void DrainAtExit();
  bool Drained(std::chrono::milliseconds limit);
  struct Task {
    Operation* op = nullptr;
    std::function<void()> fn;
  };
  int Enqueue(Task& task);
  int StartThread();
  void Loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable idle_cv_;  // a task finished
  std::deque<Task> queue_;
  uint32_t max_threads_ = 16;
  uint32_t threads_ = 0;
  uint32_t idle_ = 0;
  uint32_t inflight_ = 0;
  uint32_t peak_inflight_ = 0;
  uint64_t completed_ = 0;
};

// Per-environment state (instance data): the completion channel for operations started from this environment.
struct AddonState {
  std::shared_ptr<CompletionChannel> channel;
};
AddonState& State(Napi::Env env);

}  // namespace rbdnative
