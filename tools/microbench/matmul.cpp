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

enum Kind { kQ4, kQ8, kQ8S };
const char* const kKindNames[] = {"q4", "q8", "q8s"};

// A packed matrix of random values and a token's activations, `rows` rows. Q8S (the
// K-quants' layout) has rows of 1024 (whole superblocks of 8 blocks), the others SmolLM2's 576.
struct Weights {
  Kind kind;
  int rows, nb;
  std::vector<uint8_t> q;
  std::vector<uint16_t> d, m;
  std::vector<int8_t> sc, mn;
  std::vector<int16_t> xq;
  std::vector<uint8_t> lo;
  std::vector<int8_t> hi;
  std::vector<float> xd, xs, y;
  size_t bytes;

  Weights(Kind k, size_t total) : kind(k), nb(k == kQ8S ? 1024 / 32 : kCols / 32) {
    const int sb = kind == kQ8S ? 8 : 1;
    // values and scales per row: Q4 16 + two f16, Q8 32 + one f16, Q8S 32 + three int8 per
    // block and two f16 per superblock
    const double per_row = nb * (kind == kQ4 ? 20.0 : kind == kQ8 ? 34.0 : 35.5);
    rows = (int)(total / per_row) / kPackRows * kPackRows;
    const size_t groups = (size_t)rows / kPackRows;
    q.resize(groups * nb * (kind == kQ4 ? 64 : 128));
    d.resize(groups * (nb / sb) * kPackRows);
    m.resize(kind == kQ8 ? 0 : d.size());
    std::mt19937 rng(5);
    for (auto& v : q) v = (uint8_t)rng();
    for (auto& v : d) v = f32_to_f16(1e-3f);
    for (auto& v : m) v = f32_to_f16(-1e-3f);
    if (kind == kQ8S) {
      sc.resize(groups * nb * 8);
      mn.resize(groups * nb * 4);
      for (auto& v : sc) v = (int8_t)(rng() % 64);
      for (auto& v : mn) v = (int8_t) - (int)(rng() % 64);
    }
    xq.resize((size_t)nb * 32);
    for (auto& v : xq) v = (int16_t)(rng() % 2001 - 1000);
    for (int16_t v : xq) lo.push_back((uint8_t)(v & 255)), hi.push_back((int8_t)(v >> 8));
    xd.assign(nb, 1e-4f);
    xs.assign(nb, 0.f);
    y.resize(rows);
    bytes = q.size() + 2 * (d.size() + m.size()) + sc.size() + mn.size();
  }
  PackedMatrix packed() const {
    PackedMatrix p{q.data(), d.data(), kind != kQ8 ? m.data() : nullptr, -8.f, nb, rows};
    if (kind == kQ8S) p.sc = sc.data(), p.mn = mn.data(), p.sb = 8;
    return p;
  }
};

// 96 MiB: out of every cache, what SmolLM2's decode step reads; 512 KiB: in L2, the
// kernel's own speed.
const Weights& weights(Kind kind, bool in_cache) {
  static const Weights w[3] = {Weights(kQ4, 96 << 20), Weights(kQ8, 96 << 20),
                               Weights(kQ8S, 96 << 20)};
  static const Weights c[3] = {Weights(kQ4, 512 << 10), Weights(kQ8, 512 << 10),
                               Weights(kQ8S, 512 << 10)};
  return in_cache ? c[kind] : w[kind];
}

void decode_matmul(benchmark::State& state, const MatmulKernels* k, Kind kind, bool in_cache) {
  const Weights& w = weights(kind, in_cache);
  const PackedMatrix pm = w.packed();
  const QuantActs x{w.xq.data(), w.xd.data(), w.xs.data(), 1, w.lo.data(), w.hi.data()};
  float* y = const_cast<float*>(w.y.data());
  auto gemm = kind == kQ4 ? k->gemm_q4 : kind == kQ8 ? k->gemm_q8 : k->gemm_q8s;
  for (auto _ : state) {
    gemm(pm, 0, w.rows / kPackRows, x, y, (size_t)w.rows);
    benchmark::DoNotOptimize(y[0]);
  }
  state.SetBytesProcessed((int64_t)(state.iterations() * w.bytes));
}

void streaming_read(benchmark::State& state) {
  const Weights& w = weights(kQ4, false);
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
  for (bool c : {false, true})
    for (Kind kind : {kQ4, kQ8, kQ8S}) weights(kind, c);  // fill before timing
  for (int v = 0; v < (int)MatmulVariant::kCount; ++v) {
    const MatmulKernels* k = matmul_kernels_for((MatmulVariant)v);
    if (!k) continue;
    for (bool in_cache : {false, true})
      for (Kind kind : {kQ4, kQ8, kQ8S}) {
        const std::string name = std::string("decode_matmul/") + kKindNames[kind] + "/" +
                                 (in_cache ? "l2/" : "dram/") + k->name;
        benchmark::RegisterBenchmark(name.c_str(), decode_matmul, k, kind, in_cache)
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
