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
    deferred_.Reject(MakeCephError(env, -ret_, op_, object_, detail_).Value());
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
  // Once the environment is gone the operation is leaked on purpose: its promise belongs to a dead environment
  // and cannot be touched from here. The lock keeps teardown from freeing the TSFN during the call.
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_ || tsfn_.NonBlockingCall(op, settle) != napi_ok) return;
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
    try {
      std::thread([this] { Loop(); }).detach();
      ++threads_;
      return;
    } catch (const std::system_error&) {
      // Out of threads (pids limit): the task stays queued for the threads that exist, or the next Enqueue.
    }
  }
  cv_.notify_one();
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
