// Batches of prompt tokens on oneDNN's matmul primitive (matmul.h): each weight matrix is
// unpacked tile by tile to bf16 (the kernel table's unpack_bf16) into a buffer of the plan and
// multiplied with the batch's activations, also bf16, accumulating in f32. The primitives are
// created with the plan, for batches of exactly m tokens (a shorter batch is padded with zero
// rows), with the scratchpad in the plan's block (user scratchpad mode).
#include <dnnl.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <cstdlib>
#include <cstring>
#include <string>

#include "arch/kernels.h"
#include "arch/matmul.h"
#include "runtime/model/matmul.h"

namespace amskv {
namespace {

// A tile of weights as bf16: enough rows to fill oneDNN's blocks, small enough for L2.
constexpr size_t kTileBytes = 512 << 10;
constexpr int kMaxShapes = 16;

size_t align64(size_t n) {
  return (n + 63) / 64 * 64;
}

// The tile height for a K x N matrix: N cut into equal tiles of at most kTileBytes, a
// multiple of 16 rows.
int tile_rows(int k, int n) {
  const size_t tiles = ((size_t)n * k * 2 + kTileBytes - 1) / kTileBytes;
  const int rows = (int)(((size_t)n + tiles - 1) / tiles);
  return (rows + 15) / 16 * 16;
}

struct Shape {
  int k = 0, nt = 0;  // K, and the rows of a tile
  dnnl_primitive_t prim = nullptr;
  dnnl_memory_t a = nullptr, b = nullptr, c = nullptr, scratch = nullptr;
};

}  // namespace

struct OnednnPlan {
  dnnl_engine_t engine = nullptr;
  dnnl_stream_t stream = nullptr;
  int m = 0, k_max = 0, nt_max = 0;
  Shape shapes[kMaxShapes];
  int n_shapes = 0;
  const MatmulKernels* kern = nullptr;
  uint8_t* block = nullptr;  // a [m][k_max] bf16, b [nt_max][k_max] bf16, c [m][nt_max] f32,
  size_t bytes = 0;          // then the scratchpad
  uint16_t *a = nullptr, *b = nullptr;
  float* c = nullptr;
  void* scratch = nullptr;

  ~OnednnPlan() {
    for (int i = 0; i < n_shapes; ++i) {
      Shape& s = shapes[i];
      for (dnnl_memory_t mem : {s.a, s.b, s.c, s.scratch})
        if (mem) dnnl_memory_destroy(mem);
      if (s.prim) dnnl_primitive_destroy(s.prim);
    }
    if (stream) dnnl_stream_destroy(stream);
    if (engine) dnnl_engine_destroy(engine);
    std::free(block);
  }

  const Shape* find(int k, int n) const {
    const int nt = tile_rows(k, n);
    for (int i = 0; i < n_shapes; ++i)
      if (shapes[i].k == k && shapes[i].nt == nt) return &shapes[i];
    return nullptr;
  }
};

namespace {

bool fail(std::string* err, const std::string& msg) {
  if (err) *err = msg;
  return false;
}

bool ok(dnnl_status_t st, const char* what, std::string* err) {
  return st == dnnl_success ||
         fail(err, std::string("onednn: ") + what + " failed (status " + std::to_string(st) + ")");
}

// The primitive for batches of p->m tokens times one tile of a K x N matrix, and its
// memory objects; their buffers are set once the plan's block exists.
bool make_shape(OnednnPlan* p, Shape* s, size_t* scratch_bytes, std::string* err) {
  const dnnl_dims_t a_dims = {p->m, s->k}, b_dims = {s->k, s->nt}, c_dims = {p->m, s->nt};
  dnnl_memory_desc_t a_md, b_md, c_md;
  dnnl_matmul_desc_t desc;
  dnnl_primitive_attr_t attr = nullptr;
  dnnl_primitive_desc_t pd = nullptr;
  bool good = ok(dnnl_memory_desc_init_by_tag(&a_md, 2, a_dims, dnnl_bf16, dnnl_ab), "a", err) &&
              ok(dnnl_memory_desc_init_by_tag(&b_md, 2, b_dims, dnnl_bf16, dnnl_ba), "b", err) &&
              ok(dnnl_memory_desc_init_by_tag(&c_md, 2, c_dims, dnnl_f32, dnnl_ab), "c", err) &&
              ok(dnnl_matmul_desc_init(&desc, &a_md, &b_md, nullptr, &c_md), "matmul", err) &&
              ok(dnnl_primitive_attr_create(&attr), "attr", err) &&
              ok(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user),
                 "scratchpad mode", err) &&
              ok(dnnl_primitive_desc_create(&pd, &desc, attr, p->engine, nullptr),
                 "primitive descriptor", err);
  if (good) {
    const dnnl_memory_desc_t* smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    const size_t sb = smd ? dnnl_memory_desc_get_size(smd) : 0;
    if (sb > *scratch_bytes) *scratch_bytes = sb;
    good = ok(dnnl_primitive_create(&s->prim, pd), "primitive", err) &&
           ok(dnnl_memory_create(&s->a, &a_md, p->engine, DNNL_MEMORY_NONE), "memory", err) &&
           ok(dnnl_memory_create(&s->b, &b_md, p->engine, DNNL_MEMORY_NONE), "memory", err) &&
           ok(dnnl_memory_create(&s->c, &c_md, p->engine, DNNL_MEMORY_NONE), "memory", err) &&
           (!smd ||
            ok(dnnl_memory_create(&s->scratch, smd, p->engine, DNNL_MEMORY_NONE), "memory", err));
  }
  if (pd) dnnl_primitive_desc_destroy(pd);
  if (attr) dnnl_primitive_attr_destroy(attr);
  return good;
}

// oneDNN's parallel regions take the calling thread's OpenMP thread count: n while it runs.
struct Threads {
#ifdef _OPENMP
  int old;
  explicit Threads(int n) : old(omp_get_max_threads()) {
    omp_set_num_threads(n);
  }
  ~Threads() {
    omp_set_num_threads(old);
  }
#else
  explicit Threads(int) {}
#endif
};

}  // namespace

bool onednn_available(std::string* why) {
  if (!cpu_avx512_bf16()) return fail(why, "onednn: this CPU has no AVX512_BF16");
  const MatmulKernels* k = matmul_kernels();
  if (!k || !k->unpack_bf16)
    return fail(why, "onednn: the matrix kernels in use have no bf16 unpacking");
  return true;
}

OnednnPlan* onednn_plan_create(const Matrix* const* ws, int n_ws, int m, int n_threads,
                               std::string* err) {
  if (!onednn_available(err)) return nullptr;
  if (m < kOnednnMinBatch || m > 4096)
    return fail(err,
                "onednn: the batch size must be in " + std::to_string(kOnednnMinBatch) + "..4096"),
           nullptr;
  // A primitive keeps the thread count of its creation as the most it will use.
  Threads threads(n_threads);
  OnednnPlan* p = new OnednnPlan;
  p->m = m;
  p->kern = matmul_kernels();
  bool good =
      ok(dnnl_engine_create(&p->engine, dnnl_cpu, 0), "engine", err) &&
      ok(dnnl_stream_create(&p->stream, p->engine, dnnl_stream_default_flags), "stream", err);
  size_t scratch_bytes = 0;
  for (int i = 0; good && i < n_ws; ++i) {
    // F32, F16 and Q8S matrices stay on the project's kernels.
    if (ws[i]->packing != Packing::kQ4 && ws[i]->packing != Packing::kQ8) continue;
    const int k = (int)ws[i]->t->ne[0], n = (int)ws[i]->t->n_rows;
    if (p->find(k, n)) continue;
    if (p->n_shapes == kMaxShapes) break;  // the other shapes stay on the project's kernels
    Shape* s = &p->shapes[p->n_shapes++];
    s->k = k;
    s->nt = tile_rows(k, n);
    good = make_shape(p, s, &scratch_bytes, err);
    if (k > p->k_max) p->k_max = k;
    if (s->nt > p->nt_max) p->nt_max = s->nt;
  }
  if (good && p->n_shapes == 0) good = fail(err, "onednn: no quantized matrix to plan for");
  if (good) {
    const size_t a = align64((size_t)m * p->k_max * 2),
                 b = align64((size_t)p->nt_max * p->k_max * 2),
                 c = align64((size_t)m * p->nt_max * 4);
    p->bytes = a + b + c + align64(scratch_bytes);
    p->block = (uint8_t*)std::aligned_alloc(64, p->bytes);
    good = p->block || fail(err, "onednn: out of memory for the plan's buffers");
    if (good) {
      std::memset(p->block, 0, p->bytes);
      p->a = (uint16_t*)p->block;
      p->b = (uint16_t*)(p->block + a);
      p->c = (float*)(p->block + a + b);
      p->scratch = p->block + a + b + c;
      for (int i = 0; good && i < p->n_shapes; ++i) {
        Shape& s = p->shapes[i];
        good =
            ok(dnnl_memory_set_data_handle(s.a, p->a), "memory", err) &&
            ok(dnnl_memory_set_data_handle(s.b, p->b), "memory", err) &&
            ok(dnnl_memory_set_data_handle(s.c, p->c), "memory", err) &&
            (!s.scratch || ok(dnnl_memory_set_data_handle(s.scratch, p->scratch), "memory", err));
      }
    }
  }
  if (!good) {
    delete p;
    return nullptr;
  }
  return p;
}

void onednn_plan_destroy(OnednnPlan* p) {
  delete p;
}

size_t onednn_plan_bytes(const OnednnPlan* p) {
  return p ? p->bytes : 0;
}

int onednn_plan_batch(const OnednnPlan* p) {
  return p ? p->m : 0;
}

bool onednn_matmul(OnednnPlan* p, const MatmulOut* outs, int n_outs, const float* x, int n_tok,
                   int n_threads) {
  if (!p || n_tok > p->m || 2 * n_tok < p->m || n_tok < kOnednnMinBatch || n_outs < 1 || n_outs > 8)
    return false;
  const int k = (int)outs[0].w->t->ne[0];
  const Shape* shape[8];
  for (int o = 0; o < n_outs; ++o) {
    const Matrix& w = *outs[o].w;
    if ((w.packing != Packing::kQ4 && w.packing != Packing::kQ8) || (int)w.t->ne[0] != k ||
        !(shape[o] = p->find(k, (int)w.t->n_rows)))
      return false;
  }
  // The batch as bf16, padded with zero rows.
  for (int t = 0; t < n_tok; ++t)
    for (int i = 0; i < k; ++i) p->a[(size_t)t * k + i] = f32_to_bf16(x[(size_t)t * k + i]);
  std::memset(p->a + (size_t)n_tok * k, 0, (size_t)(p->m - n_tok) * k * 2);
  Threads threads(n_threads);
  for (int o = 0; o < n_outs; ++o) {
    const Matrix& w = *outs[o].w;
    const Shape& s = *shape[o];
    const int n = (int)w.t->n_rows, groups = (n + kPackRows - 1) / kPackRows;
    const size_t ldy = (size_t)n;
    for (int r0 = 0; r0 < n; r0 += s.nt) {
      // Groups [g0, g1) of this tile; rows past the matrix stay zero.
      const int g0 = r0 / kPackRows, g_end = (r0 + s.nt) / kPackRows;
      const int g1 = g_end < groups ? g_end : groups;
      if (g1 < g_end)
        std::memset(p->b + (size_t)(g1 - g0) * kPackRows * k, 0,
                    (size_t)(g_end - g1) * kPackRows * k * 2);
#ifdef _OPENMP
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n_threads > 1)
#endif
      for (int g = g0; g < g1; ++g)
        p->kern->unpack_bf16(w.packed, w.packing == Packing::kQ4, g, g + 1,
                             p->b + (size_t)(g - g0) * kPackRows * k, (size_t)k);
      const dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, s.a},
                                      {DNNL_ARG_WEIGHTS, s.b},
                                      {DNNL_ARG_DST, s.c},
                                      {DNNL_ARG_SCRATCHPAD, s.scratch}};
      if (dnnl_primitive_execute(s.prim, p->stream, s.scratch ? 4 : 3, args) != dnnl_success)
        return false;  // nothing was written to y: the caller computes it without oneDNN
      dnnl_stream_wait(p->stream);
      const int cols = n - r0 < s.nt ? n - r0 : s.nt;
      for (int t = 0; t < n_tok; ++t)
        std::memcpy(outs[o].y + (size_t)t * ldy + r0, p->c + (size_t)t * s.nt, (size_t)cols * 4);
    }
  }
  return true;
}

}  // namespace amskv
