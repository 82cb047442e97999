#include "ams/score.h"

#include <cmath>
#include <cstring>

namespace amskv {

float window_scores(const float* evidence_sum, int T, int w, float divisor, float* out) {
  const int n = T - w > 0 ? T - w : 0;  // tokens before the window
  const float inv = divisor > 0.f ? 1.f / divisor : 0.f;
  float mx = 0.f;
  for (int j = 0; j < n; ++j) {  // avg_pool1d(kernel 5, stride 1, padding 2): /5 always
    float s = 0.f;
    for (int t = j - 2; t <= j + 2; ++t)
      if (t >= 0 && t < n) s += evidence_sum[t] * inv;
    out[j] = s / 5.f;
    mx = j == 0 || out[j] > mx ? out[j] : mx;
  }
  for (int j = n; j < T; ++j) out[j] = mx;
  return mx;
}

void tova_scores(const float* latest_sum, int T, float divisor, float* out) {
  const float inv = divisor > 0.f ? 1.f / divisor : 0.f;
  float mx = 0.f;
  for (int j = 0; j < T; ++j) {
    out[j] = latest_sum[j] * inv;
    mx = out[j] > mx ? out[j] : mx;
  }
  out[T - 1] = mx;
}

void h2o_scores(const float* attn_sum, const int32_t* n_queries, int T, int G, float* out) {
  for (int j = 0; j < T; ++j)
    out[j] = attn_sum[j] / ((float)G * (float)(n_queries[j] > 0 ? n_queries[j] : 1));
}

void keydiff_scores(const float* keys, int T, int d, float* out) {
  // a = mean of the normalised keys; out = -cos(k_j, a). Sums in double: T can be large.
  double a[256] = {0};
  for (int j = 0; j < T; ++j) {
    const float* k = keys + (size_t)j * d;
    double n2 = 0;
    for (int c = 0; c < d; ++c) n2 += (double)k[c] * k[c];
    const double inv = n2 > 0 ? 1.0 / std::sqrt(n2) : 0.0;
    for (int c = 0; c < d; ++c) a[c] += k[c] * inv;
  }
  double an = 0;
  for (int c = 0; c < d; ++c) an += a[c] * a[c];
  an = std::sqrt(an);
  for (int j = 0; j < T; ++j) {
    const float* k = keys + (size_t)j * d;
    double dot = 0, n2 = 0;
    for (int c = 0; c < d; ++c) dot += k[c] * a[c], n2 += (double)k[c] * k[c];
    const double den = std::sqrt(n2) * an;
    out[j] = den > 0 ? (float)(-dot / den) : 0.f;
  }
}

void knorm_scores(const float* keys, int T, int d, float* out) {
  for (int j = 0; j < T; ++j) {
    const float* k = keys + (size_t)j * d;
    double n2 = 0;
    for (int c = 0; c < d; ++c) n2 += (double)k[c] * k[c];
    out[j] = (float)-std::sqrt(n2);
  }
}

void streaming_scores(int T, int n_sink, float* out) {
  for (int j = 0; j < T; ++j) out[j] = j < n_sink ? 1e30f : (float)j;
}

static uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

void random_scores(uint64_t seed, uint64_t event, int layer, int head, int T, float* out) {
  const uint64_t base = splitmix64(
      seed ^ splitmix64(event ^ splitmix64(((uint64_t)(uint32_t)layer << 32) | (uint32_t)head)));
  for (int j = 0; j < T; ++j) out[j] = (float)(splitmix64(base + (uint64_t)j) >> 40) / 16777216.f;
}

size_t expected_attention_scratch_floats(int T, int d) {
  // mu' [d], S' [d][d], R S [d][d], averaged cos/sin [d], logits [T], group mean [T],
  // S' k_j for every key [T][d]
  return (size_t)d + 2 * (size_t)d * d + (size_t)d + 2 * (size_t)T + (size_t)d * T;
}

void expected_attention_scores(const ExpectedAttentionArgs& a, float* scratch, float* out) {
  const int T = a.T, d = a.d, half = d / 2;
  float* mu = scratch;             // [d]
  float* S = mu + d;               // [d][d] (diag: first d used)
  float* RS = S + (size_t)d * d;   // [d][d]
  float* cs = RS + (size_t)d * d;  // [half] mean cos, [half] mean sin
  float* logit = cs + d;           // [T]
  float* p = logit + T;            // [T]
  float* SK = p + T;               // [T][d]: row j holds S' k_j
  // The RoPE matrix averaged over the next `horizon` positions: per frequency pair a 2x2
  // block [[c, -s], [s, c]] with c, s the mean cos and sin of the angles.
  // The angles step by f: walk them as a complex rotation (two sincos per pair, not 2H).
  for (int i = 0; i < half; ++i) {
    const double f = std::pow((double)a.rope_theta, -2.0 * i / d);
    const double a0 = (double)(a.newest_pos + 1) * f;
    const double wc = std::cos(f), ws = std::sin(f);
    double zc = std::cos(a0), zs = std::sin(a0), c = 0, s = 0;
    for (int k = 1; k <= a.horizon; ++k) {
      c += zc, s += zs;
      const double t = zc * wc - zs * ws;
      zs = zc * ws + zs * wc;
      zc = t;
    }
    cs[i] = (float)(c / a.horizon);
    cs[half + i] = (float)(s / a.horizon);
  }
  // Index of the two members of pair i in the head layout of the style.
  auto lo = [&](int i) { return a.neox ? i : 2 * i; };
  auto hi = [&](int i) { return a.neox ? i + half : 2 * i + 1; };
  for (int j = 0; j < T; ++j) p[j] = 0.f;
  const float inv_sqrt_d = 1.f / std::sqrt((float)d);
  const double n = a.n_steps > 0 ? a.n_steps : 1;
  for (int g = 0; g < a.G; ++g) {
    const float* st = a.stats + (size_t)g * a.stride;
    const float* qq = st + d;
    float m[256];
    for (int c = 0; c < d; ++c) m[c] = a.n_steps > 0 ? (float)(st[c] / n) : 0.f;
    // mu' = R m
    for (int i = 0; i < half; ++i) {
      const float c = cs[i], s = cs[half + i], x0 = m[lo(i)], x1 = m[hi(i)];
      mu[lo(i)] = c * x0 - s * x1;
      mu[hi(i)] = s * x0 + c * x1;
    }
    if (a.diag) {
      // S diagonal (variances v). R S R^T is then block-diagonal: per pair
      // [[c^2 v0 + s^2 v1, cs (v0 - v1)], [cs (v0 - v1), s^2 v0 + c^2 v1]]; S holds the
      // diagonal, RS[i] the off-diagonal of pair i.
      for (int i = 0; i < half; ++i) {
        const float c = cs[i], s = cs[half + i];
        const float v0 = a.n_steps > 0 ? (float)(qq[lo(i)] / n) - m[lo(i)] * m[lo(i)] : 0.f;
        const float v1 = a.n_steps > 0 ? (float)(qq[hi(i)] / n) - m[hi(i)] * m[hi(i)] : 0.f;
        S[lo(i)] = c * c * v0 + s * s * v1;
        S[hi(i)] = s * s * v0 + c * c * v1;
        RS[i] = c * s * (v0 - v1);
      }
    } else {
      // Full: S = E[q q^T] - m m^T, then RS = R S, then S' = RS R^T.
      for (int r = 0; r < d; ++r)
        for (int c = 0; c < d; ++c)
          S[(size_t)r * d + c] =
              a.n_steps > 0 ? (float)(qq[(size_t)r * d + c] / n) - m[r] * m[c] : 0.f;
      for (int i = 0; i < half; ++i) {  // rows lo(i), hi(i) of R S
        const float c = cs[i], s = cs[half + i];
        const float* r0 = S + (size_t)lo(i) * d;
        const float* r1 = S + (size_t)hi(i) * d;
        float* o0 = RS + (size_t)lo(i) * d;
        float* o1 = RS + (size_t)hi(i) * d;
        for (int k = 0; k < d; ++k) o0[k] = c * r0[k] - s * r1[k], o1[k] = s * r0[k] + c * r1[k];
      }
      for (int r = 0; r < d; ++r) {  // columns lo(i), hi(i) of (R S) R^T
        const float* in = RS + (size_t)r * d;
        float* o = S + (size_t)r * d;
        for (int i = 0; i < half; ++i) {
          const float c = cs[i], s = cs[half + i], x0 = in[lo(i)], x1 = in[hi(i)];
          o[lo(i)] = c * x0 - s * x1;
          o[hi(i)] = s * x0 + c * x1;
        }
      }
    }
    // Logits: the linear term and, for the full covariance, S' k_j for every key as one
    // T x d x d product on the SIMD kernel (S' is symmetric: row r of S' dotted with k_j).
    a.kern->qk_f32(mu, 1, a.keys, T, d, logit, T);
    if (!a.diag) a.kern->qk_f32(a.keys, T, S, d, d, SK, d);  // SK[j][r] = k_j . S'_r
    float mx = -INFINITY;
    for (int j = 0; j < T; ++j) {
      const float* k = a.keys + (size_t)j * d;
      float quad = 0.f;
      if (a.diag) {
        for (int i = 0; i < half; ++i) {
          const float k0 = k[lo(i)], k1 = k[hi(i)];
          quad += k0 * k0 * S[lo(i)] + k1 * k1 * S[hi(i)] + 2.f * k0 * k1 * RS[i];
        }
      } else {
        const float* sk = SK + (size_t)j * d;
        for (int r = 0; r < d; ++r) quad += k[r] * sk[r];
      }
      logit[j] = logit[j] * inv_sqrt_d + quad / (2.f * d);
      mx = logit[j] > mx ? logit[j] : mx;
    }
    double sum = 0;
    for (int j = 0; j < T; ++j) sum += (logit[j] = std::exp(logit[j] - mx));
    const float inv = (float)(1.0 / sum) / (float)a.G;
    for (int j = 0; j < T; ++j) p[j] += logit[j] * inv;
  }
  float mx = 0.f;
  for (int j = 0; j < T; ++j) {
    out[j] = (p[j] + a.eps) * a.vnorm[j];
    mx = out[j] > mx ? out[j] : mx;
  }
  for (int j = 0; j < a.n_outlier && j < T; ++j) out[j] = mx;
}

}  // namespace amskv
