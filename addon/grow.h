// Sizing the buffer of a librbd/librados call that answers "too small" (-ERANGE) and, usually, how much it wants.
// Every list and string result of the addon goes through GrowToFit, so the bound below holds for all of them.
#pragma once

#include <cerrno>
#include <cstddef>
#include <string>

#include "worker_pool.h"

namespace rbdnative {

// The most GrowToFit hands a call: 256 Ki elements, that is 256 KiB for strings and 256 Ki entries for lists (the
// cap go-ceph uses). A result that needs more is refused, ERANGE naming the call, rather than followed wherever a
// wrong length or a result that keeps growing between tries would lead.
constexpr size_t kGrowLimit = 256 * 1024;

// Pool thread, inside Execute(). Calls call(size) with size = `initial`, then with larger sizes while it returns
// -ERANGE: the size the call asked for (it writes it into its argument), else twice the last, never more than
// kGrowLimit. Returns the call's last result, or, once the result needs more than kGrowLimit, op.Fail(-ERANGE, ...)
// saying how many `unit`s it needs.
template <typename Call>
int GrowToFit(Operation& op, const char* unit, size_t initial, Call&& call) {
  size_t size = initial < kGrowLimit ? initial : kGrowLimit;
  for (;;) {
    size_t wanted = size;
    int r = call(wanted);
    if (r != -ERANGE) return r;
    if (wanted > kGrowLimit || size == kGrowLimit) {
      std::string limit = "the addon's limit of " + std::to_string(kGrowLimit) + " " + unit;
      std::string needs = wanted > size ? std::to_string(wanted) + " " + unit + ", more than " : "more than ";
      return op.Fail(-ERANGE, "result needs " + needs + limit);
    }
    size = wanted > size ? wanted : (size * 2 < kGrowLimit ? size * 2 : kGrowLimit);
  }
}

}  // namespace rbdnative
