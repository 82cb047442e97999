#include <atomic>
#include <cstddef>

#include "tools/alloc_count.h"

extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
void __libc_free(void*);
}

namespace {
// Initial-exec TLS of the executable: reading it allocates nothing.
thread_local bool t_counting = false;
thread_local long t_allocs = 0;
std::atomic<long> g_total{0};
inline void count() {
  g_total.fetch_add(1, std::memory_order_relaxed);
  if (t_counting) ++t_allocs;
}
}  // namespace

extern "C" {
void* malloc(size_t n) {
  count();
  return __libc_malloc(n);
}
void* calloc(size_t a, size_t b) {
  count();
  return __libc_calloc(a, b);
}
void* realloc(void* p, size_t n) {
  count();
  return __libc_realloc(p, n);
}
void* aligned_alloc(size_t align, size_t n) {
  count();
  return __libc_memalign(align, n);
}
void* memalign(size_t align, size_t n) {
  count();
  return __libc_memalign(align, n);
}
int posix_memalign(void** out, size_t align, size_t n) {
  count();
  *out = __libc_memalign(align, n);
  return *out ? 0 : 12;
}
void free(void* p) {
  __libc_free(p);
}
}

namespace amskv {

bool alloc_count_available() {
  return true;
}
long alloc_count_total() {
  return g_total.load();
}
void alloc_count_begin() {
  t_allocs = 0;
  t_counting = true;
}
long alloc_count_end() {
  t_counting = false;
  return t_allocs;
}

}  // namespace amskv
