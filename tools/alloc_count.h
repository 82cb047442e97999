// Heap allocations made by the calling thread between begin and end, for `amskv stress`.
// The amskv binary replaces malloc and friends with counting versions (alloc_count.cpp);
// sanitizer builds keep their own allocator and link alloc_count_none.cpp instead.
#pragma once

namespace amskv {

bool alloc_count_available();
void alloc_count_begin();  // start counting this thread's allocations
long alloc_count_end();    // stop; how many there were

}  // namespace amskv
