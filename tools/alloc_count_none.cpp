// Sanitizer builds: the sanitizer owns malloc, so allocations are not counted here (the
// no-allocation tests run in the plain build).
#include "tools/alloc_count.h"

namespace amskv {

bool alloc_count_available() {
  return false;
}
long alloc_count_total() {
  return 0;
}
void alloc_count_begin() {}
long alloc_count_end() {
  return 0;
}

}  // namespace amskv
