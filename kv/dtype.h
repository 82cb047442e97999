// kv: the storage formats of keys and values, as a table of named operations (the way ggml's
// type_traits names its fields). Everything that depends on the dtype goes through here, so
// a new dtype is one more row. The kernels come from the session's kernel table.
//
// A stored row is head_dim elements in blocks of `block` elements of `block_bytes` each (a q4
// block holds its own scale and min); dtypes with `row_scale` keep one float per row beside
// it (x ~= scale * q).
#pragma once

#include <cstddef>
#include <cstdint>

#include "arch/kernels.h"

namespace amskv {

struct DtypeOps {
  const char* name;    // "f32", "f16", "q8", "q4", "q4h": as users type it
  int block;           // elements per block: head_dim must be a multiple
  size_t block_bytes;  // bytes per block
  bool row_scale;      // a float scale per row (q8)
  bool rotated;        // rows stored in a Walsh-Hadamard basis: head_dim a power of two
  // Stores one row of d floats; returns its scale (1 when the dtype has none).
  float (*store)(const Kernels& k, const float* x, void* row, int d);
  // n rows to f32: out [n][d].
  void (*load)(const Kernels& k, const void* rows, const float* scales, int n, int d, float* out);
  // scores[g * ld + j] = q[g] . row j, for g < n_q, j < n.
  void (*qk)(const Kernels& k, const float* q, int n_q, const void* rows, const float* scales,
             int n, int d, float* scores, int ld);
  // out[g][c] = sum_j p[g * ld + j] * row j [c], for g < n_q.
  void (*av)(const Kernels& k, const float* p, int n_q, int ld, const void* rows,
             const float* scales, int n, int d, float* out);
};

// Bytes of one stored row of d elements (d a multiple of ops.block).
inline size_t dtype_row_bytes(const DtypeOps& ops, int d) {
  return (size_t)(d / ops.block) * ops.block_bytes;
}

// A storage format by index: 0 f32, 1 f16, 2 q8, 3 q4, 4 q4h; null for any other value.
const DtypeOps* dtype_ops(int format);

// A KV dtype as users choose it (amskv_dtype values are its indices): the format of the
// keys and that of the values.
struct KvDtype {
  const char* name;
  const DtypeOps* key;
  const DtypeOps* value;
};
const KvDtype* kv_dtype(int dtype);  // null when it is not a dtype
int kv_dtype_count();

}  // namespace amskv
