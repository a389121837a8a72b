#include "worker_pool.h"

#include <thread>

#include "errors.h"

namespace rbdnative {

Operation::Operation(Napi::Env env, const char* op, std::string object)
    : env_(env),
      deferred_(Napi::Promise::Deferred::New(env)),
      op_(op),
      object_(std::move(object)),
      channel_(State(env).channel) {}

void Operation::Run() {
  ret_ = Execute();
  keep_alive_.clear();
}

void Operation::Settle(Napi::Env env) {
  Napi::HandleScope scope(env);
  if (ret_ < 0) {
    deferred_.Reject(MakeCephError(env, -ret_, op_, object_).Value());
    return;
  }
  try {
    deferred_.Resolve(Result(env));
  } catch (const Napi::Error& e) {
    deferred_.Reject(e.Value());
  }
}

CompletionChannel::CompletionChannel(Napi::Env env)
    : tsfn_(Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                          "rbd-native-completion", 0, 1)) {
  tsfn_.Unref(env);
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
    // env is null when the environment is being torn down: nobody is left to tell.
    if (env == nullptr) return;
    auto channel = owned->channel_;
    owned->Settle(env);
    channel->Done(env);
  };
  // After teardown the call fails with napi_closing; the operation is leaked on purpose, since its promise
  // belongs to a dead environment and cannot be touched from here.
  tsfn_.NonBlockingCall(op, settle);
}

WorkerPool& WorkerPool::Instance() {
  static WorkerPool* pool = new WorkerPool();
  return *pool;
}

void WorkerPool::SetMaxInflight(uint32_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  max_threads_ = n;
  // Surplus threads notice on their next wake-up and exit.
  cv_.notify_all();
}

void WorkerPool::Submit(std::unique_ptr<Operation> op) {
  Operation* raw = op.release();
  raw->channel_->Pending(raw->env_);
  Task task;
  task.op = raw;
  Enqueue(std::move(task));
}

void WorkerPool::SubmitDetached(std::function<void()> fn) {
  Task task;
  task.fn = std::move(fn);
  Enqueue(std::move(task));
}

void WorkerPool::Enqueue(Task task) {
  std::lock_guard<std::mutex> lock(mu_);
  queue_.push_back(std::move(task));
  if (queue_.size() > idle_ && threads_ < max_threads_) {
    ++threads_;
    std::thread([this] { Loop(); }).detach();
  } else {
    cv_.notify_one();
  }
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
      task.fn();
      task.fn = nullptr;  // destroy captured handles here, on the pool thread
    }

    lock.lock();
    --inflight_;
    ++completed_;
  }
}

PoolStats WorkerPool::Stats() {
  std::lock_guard<std::mutex> lock(mu_);
  return PoolStats{max_threads_, inflight_, static_cast<uint32_t>(queue_.size()), peak_inflight_, completed_};
}

AddonState& State(Napi::Env env) { return *env.GetInstanceData<AddonState>(); }

}  // namespace rbdnative
