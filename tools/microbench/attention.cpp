// Decode attention for one query-head group over N cached tokens, per dtype and ISA, next
// to a plain streaming read of the same number of bytes. Each iteration works on a
// different slice of a 512 MiB pool, so every byte comes from DRAM (the L3 seen here is
// 32 MiB): the ratio of the two throughputs is how close decode runs to memory speed. The
// "l2" ones attend over the same 2048 tokens every time (at most 1 MiB of K and V, in L2
// here): the kernel's own speed, what bounds it when memory does not.
//
//   amskv_microbench_attention --benchmark_filter='32768'
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "amskv/amskv.h"
#include "arch/kernels.h"

namespace {

constexpr int kHeadDim = 64;
constexpr size_t kPoolBytes = (size_t)512 << 20;

unsigned char* pool() {
  static unsigned char* p = [] {
    auto* m = (unsigned char*)std::aligned_alloc(64, kPoolBytes);
    std::mt19937 rng(1);
    // Small random values: valid f32, f16 and int8 data alike.
    for (size_t i = 0; i < kPoolBytes; i += 4) {
      uint32_t r = rng();
      float f = ((r & 0xffff) / 65536.f - 0.5f) * 0.1f;
      uint16_t h = (uint16_t)(0x2000 | (r >> 16 & 0x13ff));
      if (i % 8 == 0)
        std::memcpy(m + i, &f, 4);
      else
        std::memcpy(m + i, &h, 2), std::memcpy(m + i + 2, &h, 2);
    }
    return m;
  }();
  return p;
}

size_t row_bytes(amskv_dtype dt) {
  if (dt == AMSKV_Q4) return (size_t)kHeadDim / amskv::kQ4Block * amskv::kQ4BlockBytes;
  return (size_t)kHeadDim * (dt == AMSKV_F32 ? 4 : dt == AMSKV_F16 ? 2 : 1);
}

// K and V of one KV head over n tokens (plus q8 scales).
size_t kv_bytes(amskv_dtype dt, int n) {
  return 2 * (size_t)n * row_bytes(dt) + (dt == AMSKV_Q8 ? 2 * (size_t)n * 4 : 0);
}

// range(0): cached tokens; range(1): query heads per KV head (3 in SmolLM2-135M).
void decode_attention(benchmark::State& state, const amskv::Kernels* k, amskv_dtype dt,
                      bool in_cache) {
  const int n = (int)state.range(0), kGroup = (int)state.range(1);
  const size_t bytes = kv_bytes(dt, n), slices = in_cache ? 1 : kPoolBytes / bytes;
  std::vector<float> q(kGroup * kHeadDim, 0.01f), scores((size_t)kGroup * n),
      out(kGroup * kHeadDim);
  std::vector<float> scales(n, 0.01f);
  size_t slice = 0;
  for (auto _ : state) {
    unsigned char* base = pool() + (slice++ % slices) * bytes;
    const unsigned char* K = base;
    const unsigned char* V = base + (size_t)n * row_bytes(dt);
    switch (dt) {
      case AMSKV_F32:
        k->qk_f32(q.data(), kGroup, (const float*)K, n, kHeadDim, scores.data(), n);
        break;
      case AMSKV_F16:
        k->qk_f16(q.data(), kGroup, (const uint16_t*)K, n, kHeadDim, scores.data(), n);
        break;
      case AMSKV_Q4:
        k->qk_q4(q.data(), kGroup, K, n, kHeadDim, scores.data(), n);
        break;
      default:
        k->qk_q8(q.data(), kGroup, (const int8_t*)K, scales.data(), n, kHeadDim, scores.data(), n);
    }
    for (int g = 0; g < kGroup; ++g) k->softmax(scores.data() + (size_t)g * n, n);
    switch (dt) {
      case AMSKV_F32:
        k->av_f32(scores.data(), kGroup, n, (const float*)V, n, kHeadDim, out.data());
        break;
      case AMSKV_F16:
        k->av_f16(scores.data(), kGroup, n, (const uint16_t*)V, n, kHeadDim, out.data());
        break;
      case AMSKV_Q4:
        k->av_q4(scores.data(), kGroup, n, V, n, kHeadDim, out.data());
        break;
      default:
        k->av_q8(scores.data(), kGroup, n, (const int8_t*)V, scales.data(), n, kHeadDim,
                 out.data());
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed((int64_t)(state.iterations() * bytes));
}

// The same bytes, read and summed with nothing else to do: the memory system's ceiling.
void streaming_read(benchmark::State& state, amskv_dtype dt) {
  const int n = (int)state.range(0);
  const size_t bytes = kv_bytes(dt, n), slices = kPoolBytes / bytes;
  size_t slice = 0;
  for (auto _ : state) {
    const uint64_t* p = (const uint64_t*)(pool() + (slice++ % slices) * bytes);
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (size_t i = 0; i + 4 <= bytes / 8; i += 4)
      a0 += p[i], a1 += p[i + 1], a2 += p[i + 2], a3 += p[i + 3];
    benchmark::DoNotOptimize(a0 + a1 + a2 + a3);
  }
  state.SetBytesProcessed((int64_t)(state.iterations() * bytes));
}

const char* dtype_name(amskv_dtype dt) {
  return amskv_dtype_name(dt);
}

}  // namespace

int main(int argc, char** argv) {
  pool();  // fill the pool before any timing
  for (amskv_dtype dt : {AMSKV_F32, AMSKV_F16, AMSKV_Q8, AMSKV_Q4}) {
    for (amskv::Isa isa :
         {amskv::Isa::kRef, amskv::Isa::kAvx2, amskv::Isa::kAvx512, amskv::Isa::kNeon}) {
      const amskv::Kernels* k = amskv::kernels_for(isa);
      if (!k) continue;
      std::string name = std::string("decode_attention/") + dtype_name(dt) + "/" + k->name;
      auto* b = benchmark::RegisterBenchmark(name.c_str(), decode_attention, k, dt, false);
      b->ArgsProduct({{512, 2048, 8192, 32768}, {1, 3}})->Unit(benchmark::kMicrosecond);
      name = std::string("decode_attention_l2/") + dtype_name(dt) + "/" + k->name;
      benchmark::RegisterBenchmark(name.c_str(), decode_attention, k, dt, true)
          ->ArgsProduct({{2048}, {1, 3}})
          ->Unit(benchmark::kMicrosecond);
    }
    std::string name = std::string("streaming_read/") + dtype_name(dt);
    benchmark::RegisterBenchmark(name.c_str(), streaming_read, dt)
        ->Arg(512)
        ->Arg(2048)
        ->Arg(8192)
        ->Arg(32768)
        ->Unit(benchmark::kMicrosecond);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
