// Thin C++ layer over amskv.h: an owning session handle and status checks. No exceptions;
// every call returns the C status.
#pragma once

#include <utility>

#include "amskv/amskv.h"

namespace amskv {

class Session {
 public:
  Session() = default;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  Session(Session&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  Session& operator=(Session&& o) noexcept {
    if (this != &o) {
      amskv_session_destroy(s_);
      s_ = std::exchange(o.s_, nullptr);
    }
    return *this;
  }
  ~Session() { amskv_session_destroy(s_); }

  // Heap block of at most `budget` bytes.
  amskv_status create(const amskv_config& config, size_t budget) {
    reset();
    return amskv_session_create(&config, budget, &s_);
  }
  // Caller-owned block (64-byte aligned); it must outlive the session.
  amskv_status create_in(const amskv_config& config, void* mem, size_t bytes) {
    reset();
    return amskv_session_create_in(&config, mem, bytes, &s_);
  }
  void reset() {
    amskv_session_destroy(s_);
    s_ = nullptr;
  }

  amskv_status attend(int layer, int32_t pos, const float* q, const float* k, const float* v,
                      float* out) {
    return amskv_attend(s_, layer, pos, q, k, v, out);
  }
  amskv_status prefill(int layer, int32_t pos0, int n_tokens, const float* q, const float* k,
                       const float* v, float* out) {
    return amskv_prefill(s_, layer, pos0, n_tokens, q, k, v, out);
  }
  amskv_stats stats() const {
    amskv_stats st{};
    amskv_get_stats(s_, &st);
    return st;
  }
  // This session takes what `src` holds (amskv_session_copy: same config and block size).
  amskv_status copy_from(const Session& src) { return amskv_session_copy(s_, src.s_); }
  amskv_status set_surprisal(int32_t pos, float nats) { return amskv_set_surprisal(s_, pos, nats); }
  int layer_tokens(int layer) const { return amskv_layer_tokens(s_, layer); }
  const char* last_error() const { return amskv_last_error(s_); }

  explicit operator bool() const { return s_ != nullptr; }
  amskv_session* get() const { return s_; }

 private:
  amskv_session* s_ = nullptr;
};

}  // namespace amskv
