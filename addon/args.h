// Argument checks for the exported functions. They run on the main thread, before anything is queued, and
// raise the same error shape as librados failures so callers handle one kind of error.
#pragma once

#include <napi.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "errors.h"
#include "handles.h"
#include "worker_pool.h"

namespace rbdnative {

inline Napi::Error ArgError(Napi::Env env, const char* op, const std::string& what) {
  return MakeUsageError(env, "ERR_INVALID_ARG_TYPE", op, "", what);
}

inline std::string StringArg(const Napi::CallbackInfo& info, size_t i, const char* name, const char* op) {
  if (!info[i].IsString()) throw ArgError(info.Env(), op, std::string(name) + " must be a string");
  std::string value = info[i].As<Napi::String>().Utf8Value();
  // librados takes C strings: an embedded NUL would silently name a different object.
  if (value.find('\0') != std::string::npos) throw ArgError(info.Env(), op, std::string(name) + " must not contain NUL");
  return value;
}

// A copy of a Buffer argument: the caller's Buffer may be collected (or changed) while the call runs.
inline std::vector<char> BufferArg(const Napi::CallbackInfo& info, size_t i, const char* name, const char* op) {
  if (!info[i].IsBuffer()) throw ArgError(info.Env(), op, std::string(name) + " must be a Buffer");
  auto buffer = info[i].As<Napi::Buffer<char>>();
  return std::vector<char>(buffer.Data(), buffer.Data() + buffer.Length());
}

inline uint64_t Uint64(Napi::Env env, Napi::Value v, const char* name, const char* op) {
  if (!v.IsNumber()) throw ArgError(env, op, std::string(name) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > 9007199254740991.0 || std::floor(d) != d) {
    throw ArgError(env, op, std::string(name) + " must be a non-negative safe integer");
  }
  return static_cast<uint64_t>(d);
}

inline uint64_t Uint64Arg(const Napi::CallbackInfo& info, size_t i, const char* name, const char* op) {
  return Uint64(info.Env(), info[i], name, op);
}

inline bool BoolArg(const Napi::CallbackInfo& info, size_t i, const char* name, const char* op) {
  if (info[i].IsUndefined()) return false;
  if (!info[i].IsBoolean()) throw ArgError(info.Env(), op, std::string(name) + " must be a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

inline Napi::Object ObjectArg(const Napi::CallbackInfo& info, size_t i, const char* name, const char* op) {
  if (info[i].IsUndefined()) return Napi::Object::New(info.Env());
  if (!info[i].IsObject()) throw ArgError(info.Env(), op, std::string(name) + " must be an object");
  return info[i].As<Napi::Object>();
}

// The live native object behind handle argument i (see Unwrap).
template <typename T>
std::shared_ptr<T> HandleArg(const Napi::CallbackInfo& info, size_t i, const char* op) {
  return Unwrap<T>(info.Env(), info[i], op);
}

// Queue an operation and hand its promise back to JS.
inline Napi::Value Start(std::unique_ptr<Operation> op) {
  Napi::Promise promise = op->Promise();
  WorkerPool::Instance().Submit(std::move(op));
  return promise;
}

// The JS name a function was exported under (Export/ExportSync pass it as the function's data).
inline const char* ExportName(const Napi::CallbackInfo& info) {
  return info.Data() != nullptr ? static_cast<const char*>(info.Data()) : "rbd_native";
}

// Every export returns a promise; argument errors become rejections rather than synchronous throws, and so does any
// C++ exception (one reaching N-API would end the process).
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value Async(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (...) {
    Napi::Error error = CurrentExceptionError(info.Env(), ExportName(info), "");
    auto deferred = Napi::Promise::Deferred::New(info.Env());
    deferred.Reject(error.Value());
    return deferred.Promise();
  }
}

// The few synchronous exports (pool controls) throw a JS error instead, never a C++ exception.
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value Sync(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (...) {
    throw CurrentExceptionError(info.Env(), ExportName(info), "");
  }
}

template <Napi::Value (*F)(const Napi::CallbackInfo&)>
void Export(Napi::Env env, Napi::Object exports, const char* name) {
  exports.Set(name, Napi::Function::New<Async<F>>(env, name, const_cast<char*>(name)));
}

template <Napi::Value (*F)(const Napi::CallbackInfo&)>
void ExportSync(Napi::Env env, Napi::Object exports, const char* name) {
  exports.Set(name, Napi::Function::New<Sync<F>>(env, name, const_cast<char*>(name)));
}

// close() of any handle kind: detaches the native object from the JS handle at once (later calls see EBADF)
// and drops it on a pool thread. Closing twice is harmless.
template <typename T>
class CloseOperation : public Operation {
 public:
  CloseOperation(Napi::Env env, const char* op, std::shared_ptr<T> native, std::string label)
      : Operation(env, op, std::move(label)) {
    if (native) KeepAlive(std::move(native));
  }
  int Execute() override { return 0; }
};

template <typename T>
Napi::Value CloseHandle(const Napi::CallbackInfo& info, const char* op) {
  Holder<T>* holder = UnwrapHolder<T>(info.Env(), info[0], op);
  return Start(std::make_unique<CloseOperation<T>>(info.Env(), op, std::move(holder->native), holder->label));
}

}  // namespace rbdnative
