// expected_attention: the attention a future query is expected to pay to each token. Queries
// are modelled as a Gaussian from the statistics of the recent steps, rotated by the RoPE
// matrix averaged over the next `horizon` positions; the expected softmax is scaled by |v|.
#include <cmath>
#include <cstring>

#include "ams/policy.h"
#include "ams/score.h"
#include "ams/scorer.h"

namespace amskv {

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

namespace {

// Head state: per query head the sums of the un-rotated queries [d] and of q q^T ([d][d],
// or its diagonal [d] with cov=diag). Counter 0: query steps in those sums. Scratch: the
// keys [cap][d] and value norms [cap] as f32, and the score's own scratch.
void needs(const Policy& p, const Geometry& g, int capacity, ScorerNeeds* out) {
  const size_t d = (size_t)g.head_dim;
  needs_keys(p, g, capacity, out);
  out->head_floats = d + (p.ea_diag ? d : d * d);
  out->scratch[1] = (size_t)capacity * 4;
  out->scratch[2] = expected_attention_scratch_floats(capacity, g.head_dim) * 4;
}

// The first 4 positions of a sequence are outliers (attention sinks) and stay out.
bool counted(const ScorerCtx& c, int n_keys, int32_t pos) {
  return pos >= 4 && in_window(c.kv, n_keys, c.p.ea_window);
}

void observe(const ScorerCtx& c, int h, int n_keys, const float*, int, const float* q,
             int32_t pos) {
  if (!counted(c, n_keys, pos)) return;
  const int d = c.kv.g.head_dim;
  for (int g = 0; g < c.group; ++g) {
    const float* qg = q + (size_t)g * d;
    float* st = c.head_state + (size_t)(h * c.group + g) * (d + (c.p.ea_diag ? d : d * d));
    float* qq = st + d;
    for (int i = 0; i < d; ++i) st[i] += qg[i];
    if (c.p.ea_diag) {
      for (int i = 0; i < d; ++i) qq[i] += qg[i] * qg[i];
    } else {
      for (int a = 0; a < d; ++a)
        for (int b = 0; b < d; ++b) qq[(size_t)a * d + b] += qg[a] * qg[b];
    }
  }
}

void step(const ScorerCtx& c, int n_keys, int32_t pos) {
  if (counted(c, n_keys, pos)) c.counts.count[0]++;
}

void score(const ScorerCtx& c, int h, int T, char* const* scratch, float* out) {
  const int d = c.kv.g.head_dim, G = c.group;
  const float* keys = load_keys(c, h, T, scratch);
  float* vnorm = (float*)scratch[1];
  float* ws = (float*)scratch[2];
  for (int j = 0; j < T; ++j) {
    kv_load_values(c.kv, c.layer, h, j, 1, ws);  // one value row at a time
    double n2 = 0;
    for (int i = 0; i < d; ++i) n2 += (double)ws[i] * ws[i];
    vnorm[j] = (float)std::sqrt(n2);
  }
  const int stride = d + (c.p.ea_diag ? d : d * d);
  ExpectedAttentionArgs a{keys,
                          vnorm,
                          T,
                          d,
                          G,
                          c.head_state + (size_t)h * G * stride,
                          stride,
                          c.p.ea_diag,
                          c.counts.count[0],
                          c.cells.last_pos,
                          c.rope_theta,
                          c.neox,
                          c.p.ea_horizon,
                          0.01f,
                          4,
                          c.kv.kern};
  expected_attention_scores(a, ws, out);
}

void reset(const ScorerCtx& c, int) {
  const int d = c.kv.g.head_dim;
  const size_t stride = (size_t)d + (c.p.ea_diag ? d : (size_t)d * d);
  std::memset(c.head_state, 0, (size_t)c.kv.g.n_q_heads * stride * 4);
  c.counts.count[0] = 0;
}

}  // namespace

constexpr amskv_scorer_info kInfo = {
    "expected_attention", "attention a future query is expected to pay, times |v|", "queries", 0};
const Scorer kScorer_expected_attention = {kInfo, needs, nullptr, observe, step, score, reset};

}  // namespace amskv
