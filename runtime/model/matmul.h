// Matrix products of GGUF weight matrices with f32 activations.
//
// Quantized weights are repacked once at load into the layout the kernels stream
// (arch/matmul.h: rows in groups of four, each block's values side by side, scales apart):
// Q4_0, Q4_1 and Q8_0 as the same bytes as the file's blocks, Q5_0 as Q8 (its values widened to
// a byte), Q5_1, Q4_K, Q5_K and Q6_K as Q8S (values widened to a byte, the file's own scale
// integers and f16 scales), so every type's products are exact integer sums scaled as the file
// defines. The widening costs bytes: Q8S takes 8.9 bits a weight (Q4_K files 4.5, Q6_K 6.6). The
// activations are quantized per block of 32 to 16 bits with a scale, so each block product is an
// exact integer sum scaled once: as accurate as f32 to ~1e-5 relative (8-bit activations, as
// llama.cpp uses, move SmolLM2's logits visibly), and decode is bound by reading the weights, not
// by the arithmetic. A group's rows are dotted with every token of a batch while they are in L1, so
// prefill and batched decode read the weights once per batch. F32 and F16 weights dot f32
// activations directly from the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "arch/matmul.h"
#include "runtime/model/gguf.h"

namespace amskv {

// The longest row (ne[0]) a matrix may have: a bound on what an untrusted file can ask for.
constexpr int kMatmulMaxRow = 16384;

// F32, F16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K matrices whose rows are a
// multiple of the type's block (32, or 256 for the K-quants) and at most kMatmulMaxRow long.
bool matmul_supported(int ggml_type, int64_t row_len);

struct OnednnPlan;

// Activations quantized to 16 bits per block of 32: x[t][i] ~= d[t][i / 32] * q[t][i], and
// s[t][b] = d[t][b] * sum of the block's q (what Q4_1's offsets multiply).
struct MatmulScratch {
  std::vector<int16_t> q;     // [n_tok][k]
  std::vector<float> d, s;    // [n_tok][k / 32]
  std::vector<uint8_t> lo;    // [n_tok][k]: q's low bytes
  std::vector<int8_t> hi;     // [n_tok][k]: q's high bytes (q = 256 hi + lo)
  OnednnPlan* dnn = nullptr;  // when set, the batches it takes go to oneDNN (not owned)
};

// Sizes the scratch for n_tok tokens of rows up to k long (allocates; do it once).
void matmul_scratch_init(MatmulScratch* s, int n_tok, int k);

// A weight matrix as the products read it: the file's tensor and, for the quantized types,
// its repacked copy (packed.q non-null).
enum class Packing { kNone, kQ4, kQ8, kQ8S };
struct Matrix {
  const GgufTensor* t = nullptr;
  PackedMatrix packed{};
  Packing packing = Packing::kNone;  // kNone: F32 or F16, read from the file
};

// Bytes the repacked copy of t takes (0 for F32 and F16, which are read from the file).
size_t matmul_packed_bytes(const GgufTensor& t);
// The matrix of t; its repacked copy goes to `mem` (matmul_packed_bytes(t) bytes, 64-byte
// aligned), which must outlive it.
Matrix matmul_pack(const GgufTensor& t, uint8_t* mem);

// Row r of w as f32: the same values the file's dequantization gives (for a packed matrix,
// read from the packed copy).
void matmul_row(const Matrix& w, int64_t r, float* out);

// One output of a fused product: y[t][r] = dot(row r of w, x[t]) for every row of w.
struct MatmulOut {
  const Matrix* w;
  float* y;  // [n_tok][n_rows of w]
};

// x: [n_tok][k] with k = ne[0] of every w (a multiple of 32). The rows of all outputs (at
// most 8) are shared out over n_threads OpenMP threads in one parallel region: q, k and v
// in one go, say. Allocates nothing, unless xq->dnn takes the batch (see below).
void matmul(const MatmulOut* outs, int n_outs, const float* x, int n_tok, MatmulScratch* xq,
            int n_threads);

// Prefill on oneDNN (builds with AMSKV_ONEDNN, CPUs with AVX512_BF16): a plan holds oneDNN
// matmul primitives for batches of exactly m tokens (m >= kOnednnMinBatch), one per shape of
// quantized matrix in ws (tiles of at most 512 KiB of bf16 weights), made for n_threads
// threads, and one block for every buffer they use: the batch and a weight tile as bf16, the
// f32 result tile, oneDNN's scratchpad. A batch of max(m / 2, kOnednnMinBatch) to m tokens
// then runs as bf16 products with f32 sums; smaller ones (every decode step), and F32/F16
// matrices, stay on the project's kernels. Not the default: oneDNN allocates a few small
// blocks of bookkeeping on the heap in every primitive call, which the rest of the runner
// never does.
constexpr int kOnednnMinBatch = 8;
bool onednn_available(std::string* why);  // false + why when this build or CPU has no path
OnednnPlan* onednn_plan_create(const Matrix* const* ws, int n_ws, int m, int n_threads,
                               std::string* err);
void onednn_plan_destroy(OnednnPlan* p);
size_t onednn_plan_bytes(const OnednnPlan* p);  // the plan's block (not oneDNN's own objects)
int onednn_plan_batch(const OnednnPlan* p);     // m
// The product through the plan: true, or false with nothing to rely on in y (not taken).
bool onednn_matmul(OnednnPlan* p, const MatmulOut* outs, int n_outs, const float* x, int n_tok,
                   int n_threads);

}  // namespace amskv
