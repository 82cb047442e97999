// The model runner's decode product (one token through a packed matrix, arch/matmul.h) per
// kernel variant, next to a plain streaming read of the same bytes. The "dram" matrices are
// 96 MiB, about what SmolLM2's decode step reads, so every byte comes from DRAM (L3 here is
// 32 MiB): the ratio of the two throughputs is how close a decode step runs to memory speed.
// The "l2" ones (512 KiB) show the kernel's own speed.
//
//   amskv_microbench_matmul --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "arch/f16.h"
#include "arch/matmul.h"

namespace {

using namespace amskv;

constexpr int kCols = 576;     // SmolLM2's embedding: 18 blocks per row
constexpr int kBytesMiB = 96;  // of packed weights

// A packed matrix of random values and a token's activations, `rows` rows.
struct Weights {
  bool q4;
  int rows, nb = kCols / 32;
  std::vector<uint8_t> q;
  std::vector<uint16_t> d, m;
  std::vector<int16_t> xq;
  std::vector<uint8_t> lo;
  std::vector<int8_t> hi;
  std::vector<float> xd, xs, y;
  size_t bytes;

  Weights(bool is_q4, size_t total) : q4(is_q4) {
    const size_t per_row = (size_t)nb * (q4 ? 16 + 4 : 32 + 2);  // values and f16 scales
    rows = (int)(total / per_row) / kPackRows * kPackRows;
    const size_t groups = (size_t)rows / kPackRows;
    q.resize(groups * nb * (q4 ? 64 : 128));
    d.resize(groups * nb * kPackRows);
    m.resize(q4 ? d.size() : 0);
    std::mt19937 rng(5);
    for (auto& v : q) v = (uint8_t)rng();
    for (auto& v : d) v = f32_to_f16(1e-3f);
    for (auto& v : m) v = f32_to_f16(-1e-3f);
    xq.resize(kCols);
    for (auto& v : xq) v = (int16_t)(rng() % 2001 - 1000);
    for (int16_t v : xq) lo.push_back((uint8_t)(v & 255)), hi.push_back((int8_t)(v >> 8));
    xd.assign(nb, 1e-4f);
    xs.assign(nb, 0.f);
    y.resize(rows);
    bytes = q.size() + 2 * (d.size() + m.size());
  }
  PackedMatrix packed() const {
    return PackedMatrix{q.data(), d.data(), q4 ? m.data() : nullptr, -8.f, nb, rows};
  }
};

// 96 MiB: out of every cache, what SmolLM2's decode step reads; 512 KiB: in L2, the
// kernel's own speed.
const Weights& weights(bool q4, bool in_cache) {
  static const Weights w4(true, 96 << 20), w8(false, 96 << 20);
  static const Weights c4(true, 512 << 10), c8(false, 512 << 10);
  return in_cache ? (q4 ? c4 : c8) : (q4 ? w4 : w8);
}

void decode_matmul(benchmark::State& state, const MatmulKernels* k, bool q4, bool in_cache) {
  const Weights& w = weights(q4, in_cache);
  const PackedMatrix pm = w.packed();
  const QuantActs x{w.xq.data(), w.xd.data(), w.xs.data(), 1, w.lo.data(), w.hi.data()};
  float* y = const_cast<float*>(w.y.data());
  for (auto _ : state) {
    (q4 ? k->gemm_q4 : k->gemm_q8)(pm, 0, w.rows / kPackRows, x, y, (size_t)w.rows);
    benchmark::DoNotOptimize(y[0]);
  }
  state.SetBytesProcessed((int64_t)(state.iterations() * w.bytes));
}

void streaming_read(benchmark::State& state) {
  const Weights& w = weights(true, false);
  const uint64_t* p = (const uint64_t*)w.q.data();
  const size_t n = w.q.size() / 8;
  for (auto _ : state) {
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (size_t i = 0; i + 4 <= n; i += 4)
      a0 += p[i], a1 += p[i + 1], a2 += p[i + 2], a3 += p[i + 3];
    benchmark::DoNotOptimize(a0 + a1 + a2 + a3);
  }
  state.SetBytesProcessed((int64_t)(state.iterations() * w.q.size()));
}

}  // namespace

int main(int argc, char** argv) {
  for (bool c : {false, true}) weights(true, c), weights(false, c);  // fill before timing
  for (int v = 0; v < (int)MatmulVariant::kCount; ++v) {
    const MatmulKernels* k = matmul_kernels_for((MatmulVariant)v);
    if (!k) continue;
    for (bool in_cache : {false, true})
      for (bool q4 : {true, false}) {
        const std::string name = std::string("decode_matmul/") + (q4 ? "q4/" : "q8/") +
                                 (in_cache ? "l2/" : "dram/") + k->name;
        benchmark::RegisterBenchmark(name.c_str(), decode_matmul, k, q4, in_cache)
            ->Unit(benchmark::kMicrosecond)
            ->MinTime(0.5);
      }
  }
  benchmark::RegisterBenchmark("streaming_read", streaming_read)
      ->Unit(benchmark::kMillisecond)
      ->MinTime(0.5);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
