// CPU detection (once) and the choice of kernel table. Generic code: compiled without any
// ISA flags, it only reads the per-ISA tables' data after checking the CPU.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#include "arch/error.h"
#include "arch/kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#elif defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace amskv {
namespace {

struct CpuFeatures {
  bool avx2_fma_f16c = false;
  bool avx512 = false;  // F, BW, DQ, VL and the OS saves zmm state
  bool avx512_vnni = false;
  bool avx512_bf16 = false;
  bool neon = false;
};

#if defined(__x86_64__) || defined(__i386__)
uint64_t xgetbv0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((uint64_t)hi << 32) | lo;
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & (1u << 27), avx = c & (1u << 28), fma = c & (1u << 12),
             f16c = c & (1u << 29);
  if (!osxsave || !avx) return f;
  const uint64_t xcr0 = xgetbv0();
  const bool ymm_state = (xcr0 & 0x6) == 0x6;    // SSE + AVX state
  const bool zmm_state = (xcr0 & 0xe6) == 0xe6;  // + opmask, zmm0-15 high, zmm16-31
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
  const bool avx2 = b & (1u << 5);
  const bool avx512 = (b & (1u << 16)) && (b & (1u << 17)) && (b & (1u << 30)) &&
                      (b & (1u << 31));  // F, DQ, BW, VL
  f.avx2_fma_f16c = ymm_state && avx2 && fma && f16c;
  f.avx512 = f.avx2_fma_f16c && zmm_state && avx512;
  f.avx512_vnni = f.avx512 && (c & (1u << 11));
  f.avx512_bf16 = f.avx512 && __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 5));
#elif defined(__aarch64__)
#if defined(__linux__)
  f.neon = getauxval(AT_HWCAP) & HWCAP_ASIMD;
#else
  f.neon = true;
#endif
#endif
  return f;
}

// Detected once, before main: a namespace-scope constant needs no lock (a function-local
// static would pull in the C++ runtime's guard functions, which C programs lack).
const CpuFeatures g_cpu = detect();
const CpuFeatures& cpu() {
  return g_cpu;
}

const Kernels* compiled(Isa isa) {
  switch (isa) {
    case Isa::kRef:
      return &kKernelsRef;
#ifdef AMSKV_HAVE_AVX2
    case Isa::kAvx2:
      return &kKernelsAvx2;
#endif
#ifdef AMSKV_HAVE_AVX512
    case Isa::kAvx512:
      return &kKernelsAvx512;
#endif
#ifdef AMSKV_HAVE_NEON
    case Isa::kNeon:
      return &kKernelsNeon;
#endif
    default:
      return nullptr;
  }
}

const char* const kNames[] = {"ref", "avx2", "avx512", "neon"};

// nullptr until the first use; then the environment's choice or the best.
std::atomic<const Kernels*> g_active{nullptr};

}  // namespace

const char* isa_name(Isa isa) {
  return kNames[(int)isa];
}

bool isa_from_name(const char* name, Isa* out) {
  for (int i = 0; i < (int)Isa::kCount; ++i)
    if (std::strcmp(name, kNames[i]) == 0) {
      *out = (Isa)i;
      return true;
    }
  return false;
}

bool isa_supported(Isa isa) {
  if (!compiled(isa)) return false;
  switch (isa) {
    case Isa::kRef:
      return true;
    case Isa::kAvx2:
      return cpu().avx2_fma_f16c;
    case Isa::kAvx512:
      return cpu().avx512;
    case Isa::kNeon:
      return cpu().neon;
    default:
      return false;
  }
}

bool cpu_avx512_vnni() {
  return cpu().avx512_vnni;
}

bool cpu_avx512_bf16() {
  return cpu().avx512_bf16;
}

const Kernels* kernels_for(Isa isa) {
  return isa_supported(isa) ? compiled(isa) : nullptr;
}

Isa best_isa() {
  for (Isa isa : {Isa::kAvx512, Isa::kAvx2, Isa::kNeon})
    if (isa_supported(isa)) return isa;
  return Isa::kRef;
}

bool set_active_isa(const char* name) {
  if (!name || !*name || std::strcmp(name, "auto") == 0) {
    g_active.store(kernels_for(best_isa()));
    return true;
  }
  Isa isa;
  if (!isa_from_name(name, &isa)) {
    set_thread_error("unknown ISA '%s' (expected ref, avx2, avx512, neon or auto)", name);
    return false;
  }
  if (!isa_supported(isa)) {
    set_thread_error("ISA '%s' is not available: %s", name,
                     compiled(isa) ? "this CPU lacks it" : "this build does not include it");
    return false;
  }
  g_active.store(compiled(isa));
  return true;
}

const Kernels* active_kernels() {
  const Kernels* k = g_active.load();
  if (k) return k;
  const char* env = std::getenv("AMSKV_ISA");
  Isa isa;
  // A forced ISA that cannot run is an error at session creation, not a silent fallback.
  if (env && *env && std::strcmp(env, "auto") != 0) {
    if (!isa_from_name(env, &isa) || !isa_supported(isa)) return nullptr;
    k = compiled(isa);
  } else {
    k = compiled(best_isa());
  }
  g_active.store(k);
  return k;
}

}  // namespace amskv
