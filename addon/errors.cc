#include "errors.h"

#include <cxxabi.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <typeinfo>

namespace rbdnative {
namespace {

// Names for the errno values librados and librbd return; anything else is reported as E<number>.
const char* ErrnoName(int err) {
  switch (err) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case ENXIO: return "ENXIO";
    case E2BIG: return "E2BIG";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case EXDEV: return "EXDEV";
    case ENODEV: return "ENODEV";
    case EINVAL: return "EINVAL";
    case EFBIG: return "EFBIG";
    case ENOSPC: return "ENOSPC";
    case EROFS: return "EROFS";
    case EMLINK: return "EMLINK";
    case EPIPE: return "EPIPE";
    case EDOM: return "EDOM";
    case ERANGE: return "ERANGE";
    case EDEADLK: return "EDEADLK";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENOSYS: return "ENOSYS";
    case ENOTEMPTY: return "ENOTEMPTY";
    case ELOOP: return "ELOOP";
    case ENODATA: return "ENODATA";
    case ETIME: return "ETIME";
    case EOVERFLOW: return "EOVERFLOW";
    case EBADMSG: return "EBADMSG";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ECONNRESET: return "ECONNRESET";
    case ENOTCONN: return "ENOTCONN";
    // Ceph reports a blocklisted client as ESHUTDOWN.
    case ESHUTDOWN: return "ESHUTDOWN";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case EALREADY: return "EALREADY";
    case EINPROGRESS: return "EINPROGRESS";
    case ESTALE: return "ESTALE";
    case EDQUOT: return "EDQUOT";
    case ECANCELED: return "ECANCELED";
    case EKEYREJECTED: return "EKEYREJECTED";
    default: return nullptr;
  }
}

Napi::Error BuildError(Napi::Env env, const std::string& code, int err, const char* op, const std::string& object,
                       const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  Napi::Object obj = error.Value();
  obj.Set("code", code);
  if (err != 0) obj.Set("errno", err);
  obj.Set("op", op);
  obj.Set("object", object);
  return error;
}

// The name of an exception's type ("std::length_error"), or "unknown type".
std::string TypeName(const std::type_info* type) {
  if (type == nullptr) return "unknown type";
  int status = 0;
  char* demangled = abi::__cxa_demangle(type->name(), nullptr, nullptr, &status);
  std::string name = status == 0 && demangled != nullptr ? demangled : type->name();
  std::free(demangled);
  return name;
}

}  // namespace

Napi::Error MakeCephError(Napi::Env env, int err, const char* op, const std::string& object,
                          const std::string& detail) {
  const char* name = ErrnoName(err);
  std::string code = name != nullptr ? name : "E" + std::to_string(err);
  char buf[128];
  // GNU strerror_r returns a pointer that may or may not be buf.
  const char* text = detail.empty() ? strerror_r(err, buf, sizeof buf) : detail.c_str();
  std::string message = std::string(op) + (object.empty() ? "" : " " + object) + ": " + text + " (" + code + ")";
  return BuildError(env, code, err, op, object, message);
}

Napi::Error MakeUsageError(Napi::Env env, const char* code, const char* op, const std::string& object,
                           const std::string& message) {
  std::string full = std::string(op) + (object.empty() ? "" : " " + object) + ": " + message;
  return BuildError(env, code, 0, op, object, full);
}

Napi::Error CurrentExceptionError(Napi::Env env, const char* op, const std::string& object) {
  try {
    throw;
  } catch (const Napi::Error& e) {
    return e;
  } catch (const std::bad_alloc&) {
    return MakeCephError(env, ENOMEM, op, object, "out of memory in the addon");
  } catch (...) {
    std::string what = "unexpected C++ exception (" + TypeName(abi::__cxa_current_exception_type()) + ") in the addon";
    return MakeUsageError(env, "ERR_NATIVE_EXCEPTION", op, object, what);
  }
}

}  // namespace rbdnative
