// The one place where a negative errno from librados/librbd becomes a JS error.
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

}  // namespace rbdnative
