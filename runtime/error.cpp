#include "runtime/error.h"

#include <cstdarg>
#include <cstdio>

namespace amskv {

// Plain array: static TLS, no constructor, no allocation.
static thread_local char g_thread_error[kErrorBytes];

static void vformat(char* buf, const char* fmt, va_list ap) {
  vsnprintf(buf, kErrorBytes, fmt, ap);
}

void format_error(char* buf, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vformat(buf, fmt, ap);
  va_end(ap);
}

void set_thread_error(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vformat(g_thread_error, fmt, ap);
  va_end(ap);
}

const char* thread_error() {
  return g_thread_error;
}

}  // namespace amskv
