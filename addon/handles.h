// Native resources and the JS handles that own them.
//
// Ownership is a chain of shared_ptr: an image keeps its ioctx alive, an ioctx keeps its cluster alive, and an
// operation in flight keeps whatever it uses alive. So rados_shutdown can never run under a live ioctx or image,
// a handle collected by the GC mid-call cannot free what the call is using, and close() of a parent with open
// children only takes effect when the last child goes. Destructors run on pool threads, never on the event loop.
#pragma once

#include <napi.h>
#include <rados/librados.h>
#include <rbd/librbd.h>

#include <memory>
#include <string>
#include <utility>

#include "errors.h"
#include "worker_pool.h"

namespace rbdnative {

struct ClusterNative {
  rados_t cluster = nullptr;
  std::string label;  // "client.<id>": what error messages name
  ~ClusterNative() {
    if (cluster != nullptr) rados_shutdown(cluster);
  }
};

struct IoCtxNative {
  std::shared_ptr<ClusterNative> cluster;
  rados_ioctx_t ioctx = nullptr;
  std::string label;  // "pool" or "pool/namespace"
  ~IoCtxNative() {
    if (ioctx != nullptr) rados_ioctx_destroy(ioctx);
  }
};

struct ImageNative {
  std::shared_ptr<IoCtxNative> ioctx;
  rbd_image_t image = nullptr;
  std::string label;  // "pool[/namespace]/image"
  ~ImageNative() {
    if (image != nullptr) rbd_close(image);
  }
};

template <typename T>
struct HandleTraits;

template <>
struct HandleTraits<ClusterNative> {
  static constexpr const char* kind = "Cluster";
  static constexpr napi_type_tag tag = {0x6c1b4b2e5f0a4d1dULL, 0x9a3e2c7b11d04e01ULL};
};
template <>
struct HandleTraits<IoCtxNative> {
  static constexpr const char* kind = "IoCtx";
  static constexpr napi_type_tag tag = {0x6c1b4b2e5f0a4d1dULL, 0x9a3e2c7b11d04e02ULL};
};
template <>
struct HandleTraits<ImageNative> {
  static constexpr const char* kind = "Image";
  static constexpr napi_type_tag tag = {0x6c1b4b2e5f0a4d1dULL, 0x9a3e2c7b11d04e03ULL};
};

// What a JS handle points at. `native` is null once close() has been called.
template <typename T>
struct Holder {
  std::shared_ptr<T> native;
  std::string label;
};

template <typename T>
Napi::Value WrapHandle(Napi::Env env, std::shared_ptr<T> native) {
  auto* holder = new Holder<T>{std::move(native), {}};
  holder->label = holder->native->label;
  auto external = Napi::External<Holder<T>>::New(env, holder, [](Napi::Env, Holder<T>* h) {
    // Collected without close(): release the native resource on a pool thread, since rbd_close and
    // rados_shutdown can block. Should even queueing fail (out of memory), it is released right here instead: a
    // C++ exception must not leave a finalizer.
    try {
      if (h->native) {
        WorkerPool::Instance().SubmitDetached([native = std::move(h->native)]() mutable { native.reset(); });
      }
    } catch (...) {
    }
    delete h;
  });
  napi_status status = napi_type_tag_object(env, external, &HandleTraits<T>::tag);
  NAPI_THROW_IF_FAILED(env, status, Napi::Value());
  return external;
}

// The holder behind a JS value, or a TypeError when the value is not a handle of this kind.
template <typename T>
Holder<T>* UnwrapHolder(Napi::Env env, Napi::Value value, const char* op) {
  bool tagged = false;
  if (value.IsExternal()) {
    napi_status status = napi_check_object_type_tag(env, value, &HandleTraits<T>::tag, &tagged);
    NAPI_THROW_IF_FAILED(env, status, nullptr);
  }
  if (!tagged) {
    throw MakeUsageError(env, "ERR_INVALID_ARG_TYPE", op, "",
                         std::string("expected an ") + HandleTraits<T>::kind + " handle");
  }
  return value.As<Napi::External<Holder<T>>>().Data();
}

// The live native object behind a handle; a closed handle is an EBADF error naming the object.
template <typename T>
std::shared_ptr<T> Unwrap(Napi::Env env, Napi::Value value, const char* op) {
  Holder<T>* holder = UnwrapHolder<T>(env, value, op);
  if (!holder->native) {
    throw MakeUsageError(env, "EBADF", op, holder->label,
                         std::string(HandleTraits<T>::kind) + " handle is closed");
  }
  return holder->native;
}

// Calls on a handle. Each pins the native object for the duration of the call (so neither close() nor the GC can
// free it under the call) and names it in errors.

class ClusterOperation : public Operation {
 public:
  ClusterOperation(Napi::Env env, const char* op, std::shared_ptr<ClusterNative> cluster, std::string object)
      : Operation(env, op, object.empty() ? cluster->label : std::move(object)), cluster_(cluster->cluster) {
    KeepAlive(std::move(cluster));
  }

 protected:
  rados_t cluster_;
};

// `image` names the image the call concerns, if any: the object is then "pool[/namespace]/image".
class IoCtxOperation : public Operation {
 public:
  IoCtxOperation(Napi::Env env, const char* op, std::shared_ptr<IoCtxNative> io, const std::string& image)
      : Operation(env, op, image.empty() ? io->label : io->label + "/" + image), io_(io->ioctx), image_(image) {
    KeepAlive(std::move(io));
  }

 protected:
  rados_ioctx_t io_;
  std::string image_;
};

class ImageOperation : public Operation {
 public:
  ImageOperation(Napi::Env env, const char* op, std::shared_ptr<ImageNative> image)
      : Operation(env, op, image->label), image_(image->image) {
    KeepAlive(std::move(image));
  }

 protected:
  rbd_image_t image_;
};

}  // namespace rbdnative
