// Matrix products of GGUF weight matrices with f32 activations, dequantizing on the fly.
//
// Quantized weights (Q4_0, Q4_1, Q8_0) work much as in llama.cpp: the activations are first
// quantized per block of 32 with a scale, and each block product is an integer dot product
// scaled once. Unlike llama.cpp's 8 bits, activations get 16 bits: as fast (x86 multiplies
// 16-bit integers anyway) and as accurate as f32 to ~1e-5 relative, where 8 bits moved
// SmolLM2's logits by up to ~3. F32 and F16 weights dot f32 activations directly.
// One kernel serves decode (one token) and prefill (many): every token's product with a
// weight row is taken while that row is in L1, so prefill reads the weights once per batch.
#pragma once

#include <cstddef>
#include <cstdint>

#include "runtime/model/gguf.h"

namespace amskv {

// F32, F16, Q8_0, Q4_0 and Q4_1 matrices whose rows are a multiple of 32 long.
bool matmul_supported(int ggml_type);

// 32 activations quantized to int16: x[i] ~= d * q[i]; s = d * sum(q).
struct BlockQ16 {
  float d, s;
  int16_t q[32];
};

// One output of a fused product: y[t][r] = dot(row r of w, x[t]) for every row of w.
struct MatmulOut {
  const GgufTensor* w;
  float* y;  // [n_tok][w->n_rows]
};

// x: [n_tok][k] with k = ne[0] of every w (a multiple of 32). xq: scratch of n_tok * k / 32
// blocks. The rows of all outputs (at most 8) are shared out over n_threads OpenMP threads
// in one parallel region: q, k and v in one go, say.
void matmul(const MatmulOut* outs, int n_outs, const float* x, int n_tok, BlockQ16* xq,
            int n_threads);

}  // namespace amskv
