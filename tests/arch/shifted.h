// Test helper for kernels: data at a misaligned address.
#pragma once

#include <cstring>
#include <vector>

namespace amskv {

// A copy of `src` placed `offset` elements into a fresh buffer: a pointer misaligned by
// offset * sizeof(T) bytes.
template <typename T>
struct Shifted {
  std::vector<T> buf;
  T* p;
  Shifted(const std::vector<T>& src, int offset) : buf(src.size() + offset + 1) {
    p = buf.data() + offset;
    std::memcpy(p, src.data(), src.size() * sizeof(T));
  }
};

}  // namespace amskv
