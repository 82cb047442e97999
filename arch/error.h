// arch: error messages without allocation, and what every status means. The bottom of the
// library: every layer above reports through these. A session keeps its own buffer; calls
// without a session (create, session_bytes, set_isa, ams_select) write to a per-thread one.
#pragma once

#include <cstddef>

#include "amskv/amskv.h"

namespace amskv {

constexpr size_t kErrorBytes = 256;

// printf-style; always NUL-terminates, truncates long messages.
void format_error(char* buf, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void set_thread_error(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
const char* thread_error();

// One line per status ("budget too small"); "unknown status" for other values.
const char* status_string(amskv_status status);

}  // namespace amskv
