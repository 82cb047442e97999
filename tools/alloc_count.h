// Heap allocation counting for the no-allocation checks (amskv stress, test_no_alloc,
// test_llama). alloc_count.cpp replaces malloc and friends in the binary that links it with
// counting versions; sanitizer builds keep their own allocator and link
// alloc_count_none.cpp instead.
#pragma once

namespace amskv {

bool alloc_count_available();
long alloc_count_total();  // every allocation of every thread so far
// Allocations of the calling thread alone between begin and end (other threads running at
// the same time do not count; an OpenMP worker inside the call does not either, which is
// what the process-wide total in test_no_alloc covers).
void alloc_count_begin();
long alloc_count_end();

}  // namespace amskv
