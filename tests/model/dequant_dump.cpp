// Test helper for tests/model/reference/check_dequant.py: a GGUF file's tensor dequantized by
// the runner's type table (gguf_dequantize_row), as raw float32 on stdout.
//
//   dequant_dump FILE TENSOR > values.f32
#include <cstdio>
#include <string>
#include <vector>

#include "runtime/model/gguf.h"

int main(int argc, char** argv) {
  using namespace amskv;
  if (argc != 3) {
    std::fprintf(stderr, "usage: dequant_dump FILE TENSOR\n");
    return 2;
  }
  GgufFile f;
  std::string err;
  if (!gguf_open(argv[1], &f, &err)) {
    std::fprintf(stderr, "dequant_dump: %s\n", err.c_str());
    return 2;
  }
  const GgufTensor* t = gguf_tensor(f, argv[2]);
  if (!t) {
    std::fprintf(stderr, "dequant_dump: no tensor '%s'\n", argv[2]);
    return 2;
  }
  std::vector<float> row((size_t)t->ne[0]);
  for (int64_t r = 0; r < t->n_rows; ++r) {
    if (!gguf_dequantize_row(t->type, t->data + (size_t)r * t->row_bytes, row.data(), t->ne[0])) {
      std::fprintf(stderr, "dequant_dump: cannot dequantize type %s\n", ggml_type_name(t->type));
      return 2;
    }
    std::fwrite(row.data(), 4, row.size(), stdout);
  }
  return 0;
}
