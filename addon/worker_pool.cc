#include "worker_pool.h"

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <new>
#include <system_error>
#include <thread>

#include "errors.h"

namespace rbdnative {

Operation::Operation(Napi::Env env, const char* op, std::string object)
    : env_(env),
      deferred_(Napi::Promise::Deferred::New(env)),
      op_(op),
      object_(std::move(object)),
      channel_(State(env).channel) {}

void Operation::Run() noexcept {
  try {
    ret_ = Execute();
  } catch (...) {
    // Leaving a pool thread, it would end the process (std::terminate): it rejects the promise instead. Taking
    // the exception_ptr allocates nothing, so this works for std::bad_alloc too.
    thrown_ = std::current_exception();
  }
  keep_alive_.clear();
}

void Operation::Settle(Napi::Env env) noexcept {
  try {
    Napi::HandleScope scope(env);
    try {
      if (thrown_) std::rethrow_exception(thrown_);
      if (ret_ < 0) {
        deferred_.Reject(MakeCephError(env, -ret_, op_, object_, detail_).Value());
      } else {
        deferred_.Resolve(Result(env));
      }
    } catch (...) {
      deferred_.Reject(CurrentExceptionError(env, op_, object_).Value());
    }
  } catch (...) {
    // Only when the environment can no longer take a value (it is being torn down): nothing can observe the
    // promise any more, so it is left as it is.
  }
}

CompletionChannel::CompletionChannel(Napi::Env env)
    : tsfn_(Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                          "rbd-native-completion", 0, 1)) {
  tsfn_.Unref(env);
}

// Registered after the TSFN, so it runs before Node's own cleanup frees it (hooks run in reverse order).
void CompletionChannel::OnEnvCleanup(void* arg) {
  auto* self = static_cast<std::shared_ptr<CompletionChannel>*>(arg);
  {
    std::lock_guard<std::mutex> lock((*self)->mu_);
    (*self)->closed_ = true;
  }
  delete self;
}

std::shared_ptr<CompletionChannel> CompletionChannel::Create(Napi::Env env) {
  auto channel = std::make_shared<CompletionChannel>(env);
  napi_add_env_cleanup_hook(env, OnEnvCleanup, new std::shared_ptr<CompletionChannel>(channel));
  return channel;
}

void CompletionChannel::Pending(Napi::Env env) {
  if (pending_++ == 0) tsfn_.Ref(env);
}

void CompletionChannel::Done(Napi::Env env) {
  if (--pending_ == 0) tsfn_.Unref(env);
}

void CompletionChannel::Deliver(Operation* op) {
  auto settle = [](Napi::Env env, Napi::Function, Operation* op) {
    std::unique_ptr<Operation> owned(op);
    auto channel = owned->channel_;
    owned->Settle(env);
    channel->Done(env);
  };
  // Queueing the call allocates: when that fails, try again for a while (a second) rather than give up at once.
  for (int attempt = 0; attempt < 100; ++attempt) {
    try {
      // Once the environment is gone the operation is leaked on purpose: its promise belongs to a dead environment
      // and cannot be touched from here. The lock keeps teardown from freeing the TSFN during the call.
      std::lock_guard<std::mutex> lock(mu_);
      if (!closed_) tsfn_.NonBlockingCall(op, settle);
      return;
    } catch (...) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

WorkerPool& WorkerPool::Instance() {
  static WorkerPool* pool = [] {
    auto* created = new WorkerPool();
    // Registered after librados and librbd are loaded (they are this addon's dependencies), so it runs before
    // their exit-time destructors.
    std::atexit(DrainAtExit);
    return created;
  }();
  return *pool;
}

void WorkerPool::DrainAtExit() {
  // librados calls are bounded by their own timeouts; past this, exit goes on rather than hang.
  Instance().Drained(std::chrono::seconds(30));
}

bool WorkerPool::Drained(std::chrono::milliseconds limit) {
  std::unique_lock<std::mutex> lock(mu_);
  return idle_cv_.wait_for(lock, limit, [this] { return queue_.empty() && inflight_ == 0; });
}

void WorkerPool::SetMaxInflight(uint32_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  max_threads_ = n;
  // Surplus threads notice on their next wake-up and exit.
  cv_.notify_all();
}

void WorkerPool::Submit(std::unique_ptr<Operation> op) {
  Napi::Env env = op->env_;
  std::shared_ptr<CompletionChannel> channel = op->channel_;
  Task task;
  task.op = op.get();
  int err = Enqueue(task);  // on a throw, op is still ours and goes with the exception
  if (err == 0) {
    // Queued: a pool thread owns it now. It settles on this thread, so not before Pending() below.
    op.release();
    channel->Pending(env);
    return;
  }
  // What the call pinned is released on a pool thread as usual, whenever one can be started (if even queueing
  // fails, it is released here).
  try {
    if (!op->keep_alive_.empty()) SubmitDetached([keep = std::move(op->keep_alive_)]() mutable { keep.clear(); });
  } catch (...) {
  }
  op->ret_ = -err;
  op->detail_ = "could not start a thread for the call";
  op->Settle(env);
}

void WorkerPool::SubmitDetached(std::function<void()> fn) {
  Task task;
  task.fn = std::move(fn);
  Enqueue(task);
}

int WorkerPool::Enqueue(Task& task) {
  std::lock_guard<std::mutex> lock(mu_);
  // A new thread when this task would find no idle one (up to the bound; past it, tasks wait their turn).
  if (queue_.size() >= idle_ && threads_ < max_threads_) {
    int err = StartThread();
    if (err != 0 && task.op != nullptr) return err;
  }
  queue_.push_back(std::move(task));
  cv_.notify_one();
  return 0;
}

// With mu_ held. Returns 0 or the errno of the failure (EAGAIN when out of threads: a pids or RLIMIT_NPROC limit).
int WorkerPool::StartThread() {
  try {
    std::thread([this] { Loop(); }).detach();
  } catch (const std::system_error& e) {
    return e.code().value() > 0 ? e.code().value() : EAGAIN;
  } catch (const std::bad_alloc&) {
    return ENOMEM;
  }
  ++threads_;
  return 0;
}

void WorkerPool::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    ++idle_;
    cv_.wait(lock, [this] { return !queue_.empty() || threads_ > max_threads_; });
    --idle_;
    if (threads_ > max_threads_) {
      --threads_;
      return;
    }
    Task task = std::move(queue_.front());
    queue_.pop_front();
    ++inflight_;
    if (inflight_ > peak_inflight_) peak_inflight_ = inflight_;
    lock.unlock();

    if (task.op != nullptr) {
      task.op->Run();
      task.op->channel_->Deliver(task.op);
    } else {
      try {
        task.fn();
        task.fn = nullptr;  // destroy captured handles here, on the pool thread
      } catch (...) {
        // Nothing waits on a detached task; the thread must outlive whatever it threw.
      }
    }

    lock.lock();
    --inflight_;
    ++completed_;
    if (inflight_ == 0 && queue_.empty()) idle_cv_.notify_all();
  }
}

PoolStats WorkerPool::Stats() {
  std::lock_guard<std::mutex> lock(mu_);
  return PoolStats{max_threads_, inflight_, static_cast<uint32_t>(queue_.size()), peak_inflight_, completed_};
}

AddonState& State(Napi::Env env) { return *env.GetInstanceData<AddonState>(); }

}  // namespace rbdnative
