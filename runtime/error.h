// Error messages without allocation: a session keeps its own buffer; calls without a
// session (create, session_bytes, set_isa, ams_select) write to a per-thread buffer.
#pragma once

#include <cstddef>

namespace amskv {

constexpr size_t kErrorBytes = 256;

// printf-style; always NUL-terminates, truncates long messages.
void format_error(char* buf, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void set_thread_error(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
const char* thread_error();

}  // namespace amskv
