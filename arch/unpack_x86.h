// The int16 unpacking of GGUF quantized blocks with 256-bit integer instructions, shared by
// the AVX2 and AVX-512 kernel files (a block's 32 int16 fill two 256-bit stores). Include
// only from a file compiled with AVX2 or higher.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace amskv {

// A block: 16 bytes of nibbles -> low and high halves widened to int16, or 32 int8
// sign-extended. static: each including file gets its own copy, built with its own flags
// (one shared inline copy could carry AVX-512 into the AVX2 table).
static inline void unpack_i16_x86(const uint8_t* src, int block_bytes, int offset, int nb,
                                  int nibbles, int zero, int16_t* out) {
  const __m256i z = _mm256_set1_epi16((short)zero);
  const __m128i lo4 = _mm_set1_epi8(15);
  for (int b = 0; b < nb; ++b, out += 32) {
    const uint8_t* v = src + (size_t)b * block_bytes + offset;
    __m256i a, c;
    if (nibbles) {
      const __m128i x = _mm_loadu_si128((const __m128i*)v);
      a = _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_and_si128(x, lo4)), z);
      c = _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(x, 4), lo4)), z);
    } else {
      a = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)v));
      c = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(v + 16)));
    }
    _mm256_storeu_si256((__m256i*)out, a);
    _mm256_storeu_si256((__m256i*)(out + 16), c);
  }
}

}  // namespace amskv
