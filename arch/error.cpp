#include "arch/error.h"

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

const char* status_string(amskv_status status) {
  switch (status) {
    case AMSKV_OK:
      return "ok";
    case AMSKV_E_NULL:
      return "null pointer";
    case AMSKV_E_INVALID:
      return "invalid argument";
    case AMSKV_E_RANGE:
      return "layer out of range";
    case AMSKV_E_POSITION:
      return "position does not increase";
    case AMSKV_E_NONFINITE:
      return "NaN or Inf in input";
    case AMSKV_E_BUDGET:
      return "budget too small";
    case AMSKV_E_FULL:
      return "layer full";
    case AMSKV_E_POLICY:
      return "bad policy";
    case AMSKV_E_UNSUPPORTED:
      return "unsupported";
    case AMSKV_E_WORKSPACE:
      return "workspace too small";
  }
  return "unknown status";
}

}  // namespace amskv
