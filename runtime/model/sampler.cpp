#include "runtime/model/sampler.h"

#include <algorithm>
#include <cmath>

namespace amskv {

bool sampler_init(Sampler* s, int n_vocab, const SamplerParams& p, std::string* err) {
  const char* bad =
      n_vocab < 1                                             ? "vocabulary size must be >= 1"
      : !(p.temperature <= 100.f)                             ? "temperature must be in 0..100"
      : p.top_k < 0                                           ? "top-k must be >= 0"
      : !(p.top_p > 0.f && p.top_p <= 1.f)                    ? "top-p must be in (0, 1]"
      : !(p.min_p >= 0.f && p.min_p <= 1.f)                   ? "min-p must be in 0..1"
      : !(p.repeat_penalty > 0.f && p.repeat_penalty <= 10.f) ? "repeat penalty must be in (0, 10]"
      : p.repeat_last_n < 0 || p.repeat_last_n > 4096         ? "repeat-last-n must be in 0..4096"
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
  s->work.assign(p.repeat_penalty != 1.f ? n_vocab : 0, 0.f);
  s->recent.assign(p.repeat_last_n, 0);
  s->n_recent = s->recent_at = 0;
  return true;
}

void sampler_accept(Sampler& s, int32_t token) {
  if (s.recent.empty() || token < 0 || token >= s.n_vocab) return;
  s.recent[s.recent_at] = token;
  s.recent_at = (s.recent_at + 1) % (int)s.recent.size();
  if (s.n_recent < (int)s.recent.size()) ++s.n_recent;
}

float sampler_uniform(Sampler& s) {
  s.state ^= s.state >> 12, s.state ^= s.state << 25, s.state ^= s.state >> 27;
  return (float)((s.state * 0x2545F4914F6CDD1Dull) >> 40) * 0x1.0p-24f;
}

int32_t sampler_sample(Sampler& s, const float* in) {
  const int n = s.n_vocab;
  const float* logits = in;
  if (s.p.repeat_penalty != 1.f && s.n_recent > 0) {
    float* w = s.work.data();
    std::copy(in, in + n, w);
    for (int i = 0; i < s.n_recent; ++i) {
      const int32_t t = s.recent[i];
      if (w[t] != in[t]) continue;  // once per token, however often it was seen
      w[t] = in[t] > 0.f ? in[t] / s.p.repeat_penalty : in[t] * s.p.repeat_penalty;
    }
    logits = w;
  }
  int32_t best = 0;
  for (int i = 1; i < n; ++i)
    if (logits[i] > logits[best]) best = i;
  if (s.p.temperature <= 0.f || s.p.top_k == 1) return best;

  // Probabilities at temperature 1, by id: what top-k, top-p and min-p cut.
  const float top = logits[best];
  double z = 0;
  for (int i = 0; i < n; ++i) z += s.prob[i] = std::exp(logits[i] - top);
  for (int i = 0; i < n; ++i) s.prob[i] = (float)(s.prob[i] / z);

  // Candidates, most likely first (ties: lower id first, so the order is total).
  int32_t* idx = s.idx.data();
  float* prob = s.prob.data();
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

  // The nucleus: the shortest prefix reaching top_p of the candidates' mass.
  if (s.p.top_p < 1.f) {
    double mass = 0, cum = 0;
    for (int i = 0; i < m; ++i) mass += prob[idx[i]];
    for (int i = 0; i < m; ++i) {
      cum += prob[idx[i]];
      if (cum >= s.p.top_p * mass) {
        m = i + 1;
        break;
      }
    }
  }
  // min-p: at least min_p times the best token's probability (the best always stays).
  if (s.p.min_p > 0.f) {
    const float floor = s.p.min_p * prob[best];
    int k = 0;
    for (int i = 0; i < m; ++i)
      if (prob[idx[i]] >= floor) idx[k++] = idx[i];
    m = k;
  }

  // The temperature on what is left, and the draw.
  const float inv_t = 1.f / s.p.temperature;
  double mass = 0;
  for (int i = 0; i < m; ++i) mass += prob[idx[i]] = std::exp((logits[idx[i]] - top) * inv_t);
  const double r = (double)sampler_uniform(s) * mass;
  double cum = 0;
  for (int i = 0; i < m; ++i) {
    cum += prob[idx[i]];
    if (r < cum) return idx[i];
  }
  return idx[m - 1];  // rounding left r at the very top
}

}  // namespace amskv
