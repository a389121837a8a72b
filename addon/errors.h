// The one place where a negative errno from librados/librbd, or a C++ exception, becomes a JS error.
#pragma once

#include <napi.h>

#include <string>

namespace rbdnative {

// { message, code: 'ENOENT', errno: 2, op: 'rbd_create4', object: 'pool/image' }. The message names the operation
// and the object it concerned; it never contains configuration values, so no key can leak through it. `detail`,
// when given, replaces strerror's text in the message (e.g. which limit a result passed); the code stays the errno's.
Napi::Error MakeCephError(Napi::Env env, int err, const char* op, const std::string& object,
                          const std::string& detail = "");

// Errors raised before any librados call (bad arguments, closed handle): same shape, so callers handle one kind.
Napi::Error MakeUsageError(Napi::Env env, const char* code, const char* op, const std::string& object,
                           const std::string& message);

// Call inside a catch block: the C++ exception being handled, as a JS error of the same shape. A Napi::Error is
// returned as it is; std::bad_alloc becomes ENOMEM; anything else code 'ERR_NATIVE_EXCEPTION', with the
// exception's type in the message but never its what(), which could quote anything.
Napi::Error CurrentExceptionError(Napi::Env env, const char* op, const std::string& object);

}  // namespace rbdnative
