#include "runtime/model/sampler.h"

#include <algorithm>
#include <cmath>

namespace amskv {

bool sampler_init(Sampler* s, int n_vocab, const SamplerParams& p, std::string* err) {
  const char* bad = n_vocab < 1                          ? "vocabulary size must be >= 1"
                    : !(p.temperature <= 100.f)          ? "temperature must be in 0..100"
                    : p.top_k < 0                        ? "top-k must be >= 0"
                    : !(p.top_p > 0.f && p.top_p <= 1.f) ? "top-p must be in (0, 1]"
                                                         : nullptr;
  if (bad) {
    if (err) *err = std::string("sampler: ") + bad;
    return false;
  }
  s->p = p;
  s->n_vocab = n_vocab;
  // splitmix64 of the seed: nearby seeds give unrelated streams, and the state is never 0.
  uint64_t z = p.seed + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  s->state = (z ^ (z >> 31)) | 1;
  s->idx.assign(n_vocab, 0);
  s->prob.assign(n_vocab, 0.f);
  return true;
}

float sampler_uniform(Sampler& s) {
  s.state ^= s.state >> 12, s.state ^= s.state << 25, s.state ^= s.state >> 27;
  return (float)((s.state * 0x2545F4914F6CDD1Dull) >> 40) * 0x1.0p-24f;
}

int32_t sampler_sample(Sampler& s, const float* logits) {
  const int n = s.n_vocab;
  int32_t best = 0;
  for (int i = 1; i < n; ++i)
    if (logits[i] > logits[best]) best = i;
  if (s.p.temperature <= 0.f || s.p.top_k == 1) return best;

  // Probabilities at this temperature, by id.
  const float inv_t = 1.f / s.p.temperature, top = logits[best];
  double z = 0;
  for (int i = 0; i < n; ++i) z += s.prob[i] = std::exp((logits[i] - top) * inv_t);
  for (int i = 0; i < n; ++i) s.prob[i] = (float)(s.prob[i] / z);

  // Candidates, most likely first (ties: lower id first, so the order is total).
  int32_t* idx = s.idx.data();
  const float* prob = s.prob.data();
  auto more_likely = [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  int m = 0;
  if (s.p.top_k > 0 && s.p.top_k < n) {
    for (int i = 0; i < n; ++i) idx[i] = i;
    m = s.p.top_k;
    std::partial_sort(idx, idx + m, idx + n, more_likely);
  } else if (s.p.top_p < 1.f) {
    // A token below (1 - top_p) / (n - 1) cannot be in the nucleus (llama2.c): sort only
    // the rest.
    const float cutoff = n > 1 ? (1.f - s.p.top_p) / (float)(n - 1) : 0.f;
    for (int i = 0; i < n; ++i)
      if (prob[i] >= cutoff) idx[m++] = i;
    std::sort(idx, idx + m, more_likely);
  } else {
    for (int i = 0; i < n; ++i) idx[i] = i;  // id order; no nucleus to cut
    m = n;
  }

  // Mass of the candidates, cut to the nucleus: the shortest prefix reaching top_p of it.
  double mass = 0;
  for (int i = 0; i < m; ++i) mass += prob[idx[i]];
  if (s.p.top_p < 1.f) {
    double cum = 0;
    for (int i = 0; i < m; ++i) {
      cum += prob[idx[i]];
      if (cum >= s.p.top_p * mass) {
        m = i + 1;
        break;
      }
    }
    mass = cum;
  }
  const double r = (double)sampler_uniform(s) * mass;
  double cum = 0;
  for (int i = 0; i < m; ++i) {
    cum += prob[idx[i]];
    if (r < cum) return idx[i];
  }
  return idx[m - 1];  // rounding left r at the very top
}

}  // namespace amskv
