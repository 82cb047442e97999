// RoPE tables: the angles of one position, laid out so both kernel styles are plain
// element-wise products.
#pragma once

#include <cmath>
#include <cstdint>

namespace amskv {

// table: 2 * d floats.
// normal (pairs 2i, 2i+1): table[c] = cos(a_{c/2}), table[d + c] = -sin / +sin for even / odd c
//   so that y = x * cos + swap_pairs(x) * table[d...].
// neox (pairs i, i + d/2): table[i] = cos(a_i), table[d/2 + i] = sin(a_i), i < d/2.
// Angles a_i = pos * inv_freq[i] in double: positions reach 10^6 and float angles would
// lose the low frequencies' phase.
inline void rope_inv_freq(float theta, int d, double* inv_freq) {
  for (int i = 0; i < d / 2; ++i) inv_freq[i] = std::pow((double)theta, -2.0 * i / d);
}

inline void rope_table(bool neox, int32_t pos, const double* inv_freq, int d, float* table) {
  const int half = d / 2;
  for (int i = 0; i < half; ++i) {
    double a = (double)pos * inv_freq[i];
    float c = (float)std::cos(a), s = (float)std::sin(a);
    if (neox) {
      table[i] = c;
      table[half + i] = s;
    } else {
      table[2 * i] = c;
      table[2 * i + 1] = c;
      table[d + 2 * i] = -s;
      table[d + 2 * i + 1] = s;
    }
  }
}

}  // namespace amskv
