// arch: threads. fn(item, thread) for item in [0, n): on the OpenMP pool when n_threads > 1
// and there is more than one item, else inline on the calling thread (no pool is touched).
#pragma once

#ifdef _OPENMP
#include <omp.h>
#endif

namespace amskv {

template <typename Fn>
void parallel_for(int n_threads, int n, Fn fn) {
#ifdef _OPENMP
  if (n_threads > 1 && n > 1) {
#pragma omp parallel for num_threads(n_threads) schedule(static)
    for (int i = 0; i < n; ++i) fn(i, omp_get_thread_num());
    return;
  }
#else
  (void)n_threads;  // built without OpenMP: always inline
#endif
  for (int i = 0; i < n; ++i) fn(i, 0);
}

}  // namespace amskv
