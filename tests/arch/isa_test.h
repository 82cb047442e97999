// Helpers of the kernel tests: one fixture per kernel table, parametrised by ISA (skipped
// where the CPU or the build lacks it), and data at misaligned addresses.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "arch/kernels.h"

namespace amskv {

// k_: the table under test, ref_: the scalar reference; `For(isa)` gives a table or null.
template <class Table, const Table* (*For)(Isa), const Table* Ref>
class IsaTest : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!isa_supported(GetParam()))
      GTEST_SKIP() << "ISA " << isa_name(GetParam()) << " not available on this CPU/build";
    k_ = For(GetParam());
    ref_ = Ref;
  }
  const Table* k_ = nullptr;
  const Table* ref_ = nullptr;
  std::mt19937 rng_{1234};

  std::vector<float> random(size_t n, float mag) {
    std::uniform_real_distribution<float> u(-mag, mag);
    std::vector<float> v(n);
    for (auto& x : v) x = u(rng_);
    return v;
  }
};

#define AMSKV_ALL_ISAS(fixture)                                                                \
  INSTANTIATE_TEST_SUITE_P(AllIsas, fixture,                                                   \
                           ::testing::Values(Isa::kRef, Isa::kAvx2, Isa::kAvx512, Isa::kNeon), \
                           [](const auto& info) { return std::string(isa_name(info.param)); })

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
