// Matrix products of GGUF weight matrices with f32 activations, dequantizing on the fly.
//
// Quantized weights (Q4_0, Q4_1, Q8_0) work much as in llama.cpp: the activations are first
// quantized per block of 32 with a scale, and each block product is an integer dot product
// scaled once. Unlike llama.cpp's 8 bits, activations get 16 bits: as fast (the int16
// multiply-add, vpmaddwd, is the widest integer product x86 has) and as accurate as f32 to
// ~1e-5 relative, where 8 bits moved SmolLM2's logits by up to ~3. A weight row is unpacked
// to int16 once and then dotted with every token's activations by the arch kernel dot_i16
// (AVX-512, AVX2, NEON or the scalar reference), so prefill and batched decode read and
// unpack each row once per batch. F32 and F16 weights dot f32 activations directly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "runtime/model/gguf.h"

namespace amskv {

// The longest row (ne[0]) a quantized matrix may have: a row is unpacked on the stack.
constexpr int kMatmulMaxRow = 16384;

// F32, F16, Q8_0, Q4_0 and Q4_1 matrices whose rows are a multiple of 32 and at most
// kMatmulMaxRow long.
bool matmul_supported(int ggml_type, int64_t row_len);

// Activations quantized to 16 bits per block of 32: x[t][i] ~= d[t][i / 32] * q[t][i], and
// s[t][b] = d[t][b] * sum of the block's q (what Q4_1's offsets multiply).
struct MatmulScratch {
  std::vector<int16_t> q;   // [n_tok][k]
  std::vector<float> d, s;  // [n_tok][k / 32]
};

// Sizes the scratch for n_tok tokens of rows up to k long (allocates; do it once).
void matmul_scratch_init(MatmulScratch* s, int n_tok, int k);

// One output of a fused product: y[t][r] = dot(row r of w, x[t]) for every row of w.
struct MatmulOut {
  const GgufTensor* w;
  float* y;  // [n_tok][w->n_rows]
};

// x: [n_tok][k] with k = ne[0] of every w (a multiple of 32). The rows of all outputs (at
// most 8) are shared out over n_threads OpenMP threads in one parallel region: q, k and v
// in one go, say. Allocates nothing.
void matmul(const MatmulOut* outs, int n_outs, const float* x, int n_tok, MatmulScratch* xq,
            int n_threads);

}  // namespace amskv
