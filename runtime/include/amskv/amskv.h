/* amskv: decode attention for language models inside a fixed KV-cache byte budget.
 *
 * One session holds the KV cache of every layer of one sequence in a single block of
 * memory sized at creation. After creation nothing is allocated: attend, prefill and
 * eviction work inside that block.
 *
 * Threads: sessions are independent and may be used from different threads at once; one
 * session must be used by one thread at a time.
 *
 * Errors: every call that can fail returns an amskv_status. A rejected call leaves the
 * session exactly as it was; amskv_last_error() says why. */
#ifndef AMSKV_AMSKV_H
#define AMSKV_AMSKV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AMSKV_VERSION_MAJOR 0
#define AMSKV_VERSION_MINOR 1
#define AMSKV_VERSION_PATCH 0

typedef enum amskv_status {
  AMSKV_OK = 0,
  AMSKV_E_NULL = 1,        /* a required pointer is NULL */
  AMSKV_E_INVALID = 2,     /* an argument or config field is out of its range */
  AMSKV_E_RANGE = 3,       /* layer index out of range */
  AMSKV_E_POSITION = 4,    /* positions must strictly increase within a layer */
  AMSKV_E_NONFINITE = 5,   /* NaN, Inf or |x| > AMSKV_MAX_ABS in q, k or v */
  AMSKV_E_BUDGET = 6,      /* the byte budget is too small for this config */
  AMSKV_E_FULL = 7,        /* policy "full" and the layer has no room left */
  AMSKV_E_POLICY = 8,      /* unknown policy or bad policy option */
  AMSKV_E_UNSUPPORTED = 9, /* head_dim or ISA not supported here */
  AMSKV_E_WORKSPACE = 10   /* caller workspace too small */
} amskv_status;

/* The largest magnitude accepted in q, k and v: beyond it float attention scores could
 * overflow (found by fuzzing). Real activations stay many orders of magnitude below. */
#define AMSKV_MAX_ABS 1e15f

/* KV storage: F16 2 bytes an element; Q8 1 byte plus a float per row; Q4 blocks of 32
 * elements in 20 bytes (4-bit values, an f16 scale and min each: 0.625 bytes an element),
 * which needs head_dim % 32 == 0; K8V4 keys as Q8 and values as Q4 (keys lose far more at
 * 4 bits than values); Q4H as Q4, its keys first turned by a Walsh-Hadamard rotation
 * (x H / sqrt(head_dim), queries alike, so q . k is unchanged) that spreads the few outlier
 * channels of keys over all of them; needs head_dim a power of two. */
typedef enum amskv_dtype {
  AMSKV_F32 = 0,
  AMSKV_F16 = 1,
  AMSKV_Q8 = 2,
  AMSKV_Q4 = 3,
  AMSKV_K8V4 = 4,
  AMSKV_Q4H = 5
} amskv_dtype;

/* RoPE applied inside amskv at each token's absolute position. NORMAL rotates adjacent
 * pairs (2i, 2i+1) as llama GGUF files expect; NEOX rotates (i, i + head_dim/2); NONE
 * means the caller already rotated q and k. */
typedef enum amskv_rope_style {
  AMSKV_ROPE_NORMAL = 0,
  AMSKV_ROPE_NEOX = 1,
  AMSKV_ROPE_NONE = 2
} amskv_rope_style;

typedef struct amskv_config {
  int n_layers;
  int n_q_heads; /* a multiple of n_kv_heads (GQA) */
  int n_kv_heads;
  int head_dim; /* a multiple of 8 in [32, 256]; of 32 for AMSKV_Q4 and AMSKV_K8V4; 32, 64, 128 or 256 for AMSKV_Q4H */
  amskv_dtype kv_dtype;
  float rope_theta;
  amskv_rope_style rope_style;
  const char* policy; /* "full", "streaming", ... with ",key=value" options; copied at creation */
  int n_threads;      /* OpenMP threads for one call; 1 runs without any thread pool */
  int interval;       /* tokens between compression events per layer; 0 = automatic */
  /* Sliding-window layers (Gemma 2/3 and other hybrid models): NULL, or [n_layers] where 0
   * marks a global layer and w > 0 a local one whose token at position p sees the positions
   * (p - w, p]. A local layer holds exactly its last w tokens in a ring of its own (no events,
   * no policy state); the global layers share the rest of the budget under the policy. When
   * the budget cannot hold every layer at its window, an evicting policy gives every layer
   * the same number of tokens instead, a local layer its latest ones (a shorter window;
   * "full" keeps the windows and is refused). Read at creation only. At least one layer must be
   * global. */
  const int32_t* layer_window;
} amskv_config;

typedef struct amskv_stats {
  size_t budget_bytes;     /* the budget given at creation */
  size_t bytes_used;       /* bytes of the block the session occupies (<= budget_bytes) */
  size_t kv_bytes;         /* of which: keys and values of every layer at capacity */
  int capacity_tokens;     /* tokens per KV head per layer the budget holds */
  int target_tokens;       /* tokens a layer holds right after a compression event */
  uint64_t events;         /* compression events, all layers */
  uint64_t tokens_seen;    /* tokens attended, all layers */
  uint64_t tokens_evicted; /* tokens dropped by events, summed over layers (per KV head) */
  const char* isa;         /* kernel variant in use: "ref", "avx2", "avx512", "neon" */
  /* expected_attention (top-k or ams:): the query statistics the session keeps, "full"
   * (covariance) or "diag" (variances; cov=auto picks it when the full one would cost more
   * than an eighth of the tokens); NULL for other policies. */
  const char* ea_cov;
  /* Region wipe-out (every evicting policy): at each event and KV head, a region is wiped
   * out when none of its tokens is kept. Regions: for ams:* policies the ones AMS cut; for
   * the others AMS step 4 applied to the event's window attention mass. */
  uint64_t wipe_segments;  /* regions seen, over events, layers and heads */
  uint64_t wiped_segments; /* of which wiped out */
  double wipe_rate;        /* wiped_segments / wipe_segments, 0 before any event */
  /* Sliding-window layers (config.layer_window): how many, the tokens each ring holds (the
   * largest window, or capacity_tokens when the budget cannot hold the windows) and their
   * keys and values; kv_bytes and capacity_tokens above are the
   * global layers'. Zero without local layers. */
  int local_layers;
  int local_capacity_tokens;
  size_t local_kv_bytes;
} amskv_stats;

/* What one compression event did to one KV head, for observers. Pointers are valid during
 * the callback only. */
typedef struct amskv_event_info {
  int layer, kv_head;
  int n_tokens, n_keep;     /* held before the event, kept after it */
  const int32_t* positions; /* [n_tokens] absolute positions held before the event */
  const float* mass;        /* [n_tokens] the event's attention mass (NULL if no window) */
  const int32_t* kept;      /* [n_keep] kept slots (indices into positions), ascending */
  int n_segments;           /* the regions of the wipe-out count (see amskv_stats) */
  const int32_t* seg_start; /* [n_segments] first slot of each region */
  int n_wiped;              /* regions with no kept token */
  /* ams:* policies: the segments AMS itself used (credit mixed in) and their quotas. */
  int n_ams_segments;
  const int32_t *ams_seg_start, *ams_seg_len, *ams_seg_quota;
  const float* ams_seg_mass;
} amskv_event_info;

typedef void (*amskv_event_observer)(const amskv_event_info* info, void* user);

typedef struct amskv_session amskv_session;

amskv_config amskv_config_default(void);

/* Bytes a session takes for this config under this budget: the largest block of at most
 * `budget` bytes that the session would carve; 0 if the budget is too small or the config
 * is invalid (amskv_last_error(NULL) says which). */
size_t amskv_session_bytes(const amskv_config* config, size_t budget);

/* The smallest budget that holds `capacity` tokens per layer with this config (the
 * inverse of the sizing above); 0 if the config is invalid or the size overflows. */
size_t amskv_budget_for_capacity(const amskv_config* config, int capacity);

/* Takes one block of amskv_session_bytes(config, budget) bytes from the heap. */
amskv_status amskv_session_create(const amskv_config* config, size_t budget, amskv_session** out);

/* Uses the caller's block (e.g. a static array): no heap at all. `mem` must be aligned to
 * 64 bytes; the session lives in it until amskv_session_destroy. */
amskv_status amskv_session_create_in(const amskv_config* config, void* mem, size_t bytes,
                                     amskv_session** out);

void amskv_session_destroy(amskv_session* session);

/* Makes `dst` hold exactly what `src` holds (tokens, positions, policy state, statistics):
 * for branching a conversation or asking several questions of one prompt. `dst` must have
 * been created with the same config and the same block size (amskv_session_bytes); it keeps
 * its own block, kernels and observer. One copy of the block, no allocation; on
 * AMSKV_E_INVALID (a different config) dst is unchanged. */
amskv_status amskv_session_copy(amskv_session* dst, const amskv_session* src);

/* Decode one token of one layer. q: [n_q_heads][head_dim], k and v: [n_kv_heads][head_dim],
 * out: [n_q_heads][head_dim]. `pos` is the token's absolute position. */
amskv_status amskv_attend(amskv_session* session, int layer, int32_t pos, const float* q,
                          const float* k, const float* v, float* out);

/* n_tokens tokens of one layer at positions pos0, pos0+1, ... with causal attention.
 * q and out: [n_tokens][n_q_heads][head_dim]; k and v: [n_tokens][n_kv_heads][head_dim]. */
amskv_status amskv_prefill(amskv_session* session, int layer, int32_t pos0, int n_tokens,
                           const float* q, const float* k, const float* v, float* out);

amskv_status amskv_get_stats(const amskv_session* session, amskv_stats* out);

/* Calls `fn` for every KV head of every compression event (NULL removes it). With an
 * observer set, events run their heads on the calling thread; without one they cost
 * nothing extra. */
amskv_status amskv_set_event_observer(amskv_session* session, amskv_event_observer fn, void* user);

/* The model's surprisal of the token at `pos`, -log p(token | the tokens before it) in nats,
 * for the `surprisal` scorer: call it once the token went through every layer (a token's
 * surprisal is 0 until then). A token no layer holds any more is skipped; with another
 * scorer the call does nothing. AMSKV_E_INVALID (session unchanged) for a value outside
 * [0, AMSKV_MAX_ABS] or NaN. */
amskv_status amskv_set_surprisal(amskv_session* session, int32_t pos, float nats);

/* 1 when the session's policy reads surprisals (amskv_set_surprisal), else 0. */
int amskv_uses_surprisal(const amskv_session* session);

/* Tokens layer `layer` holds now (per KV head); -1 for a bad session or layer. */
int amskv_layer_tokens(const amskv_session* session, int layer);

/* The positions KV head `kv_head` of layer `layer` holds now, in slot order (ascending for a
 * global layer), into out[0, max): returns how many it holds (which may exceed max), -1 for a
 * bad session, layer, head or out. */
int amskv_layer_positions(const amskv_session* session, int layer, int kv_head, int32_t* out,
                          int max);

const char* amskv_status_string(amskv_status status);

/* Why the last call on this session failed; with NULL, why the last session-less call of
 * this thread failed (create, session_bytes, set_isa, ams_select). Never NULL. */
const char* amskv_last_error(const amskv_session* session);

/* Kernel variants: "ref" (scalar reference), "avx2", "avx512", "neon". The best variant the
 * CPU runs is chosen once; the environment variable AMSKV_ISA or this call forces another
 * for sessions created afterwards. Forcing one the CPU (or this build) lacks fails with
 * AMSKV_E_UNSUPPORTED. NULL or "auto" returns to the best. */
amskv_status amskv_set_isa(const char* name);
const char* amskv_active_isa(void);
int amskv_isa_available(const char* name);

/* ---- What this build offers: for menus, command-line flags and tests ------------------- */

/* One scorer of the policy table ("tova", "h2o", ...). A policy string names it alone (global
 * top-k) or after "ams:". */
typedef struct amskv_scorer_info {
  const char* name;     /* as it appears in policy strings */
  const char* summary;  /* one line: what a token's score is */
  const char* evidence; /* what it reads: "attention", "queries", "keys", "surprisal" or "none" */
  int baseline;         /* 1: a reference point (recency, chance), not an importance estimate */
} amskv_scorer_info;

/* Scorers in table order; amskv_scorer_at returns NULL outside [0, amskv_scorer_count()). The
 * first one is the project's reference scorer. */
int amskv_scorer_count(void);
const amskv_scorer_info* amskv_scorer_at(int i);

/* KV storage dtypes by name: "f32", "f16", "q8", "q4", "k8v4". amskv_dtype_name returns NULL for a
 * value that is not a dtype; amskv_dtype_from_name returns AMSKV_E_INVALID for an unknown name. */
int amskv_dtype_count(void);
const char* amskv_dtype_name(amskv_dtype dtype);
amskv_status amskv_dtype_from_name(const char* name, amskv_dtype* out);

/* ---- AMS selection alone, for engines that bring their own attention ---------------- */

typedef enum amskv_segmenter {
  AMSKV_SEG_MASS = 0,  /* cut at cumulative-mass steps of segment_mass (the reference) */
  AMSKV_SEG_FIXED = 1, /* fixed-length segments of fixed_seg_len (ablation) */
  AMSKV_SEG_VALLEY = 2 /* cut at local minima of the smoothed mass (extension) */
} amskv_segmenter;

typedef struct amskv_ams_params {
  float segment_mass;        /* 0.02 */
  int min_seg_len;           /* 32 */
  int max_seg_len;           /* 1024 */
  int min_keep_per_segment;  /* 8 */
  int n_sink;                /* 4 */
  int always_keep_last;      /* 32 */
  int use_credit;            /* 1 */
  float credit_decay;        /* 0.8 */
  float mix_beta;            /* 0.7 */
  int use_mass;              /* 1; 0 shares the remainder equally (ablation "no mass") */
  amskv_segmenter segmenter; /* AMSKV_SEG_MASS */
  int fixed_seg_len;         /* 128, for AMSKV_SEG_FIXED */
} amskv_ams_params;

amskv_ams_params amskv_ams_params_default(void);

/* Scratch amskv_ams_select_ws needs for n_tokens tokens. */
size_t amskv_ams_workspace_bytes(int n_tokens);

/* Steps 2 to 8 of AMS for one KV head. window_scores and select_scores: n_tokens each.
 * credit: NULL when p->use_credit is 0; else n_tokens values on entry (zeros for tokens new
 * since the last event) and the credit of the kept tokens, in kept order, on return.
 * kept: receives exactly n_keep ascending positions. */
amskv_status amskv_ams_select_ws(const amskv_ams_params* p, const float* window_scores,
                                 const float* select_scores, float* credit, int n_tokens,
                                 int n_keep, int32_t* kept, void* workspace,
                                 size_t workspace_bytes);

/* The same with scratch on the stack, for n_tokens <= AMSKV_AMS_STACK_TOKENS. */
#define AMSKV_AMS_STACK_TOKENS 4096
amskv_status amskv_ams_select(const amskv_ams_params* p, const float* window_scores,
                              const float* select_scores, float* credit, int n_tokens, int n_keep,
                              int32_t* kept);

#ifdef __cplusplus
}
#endif
#endif /* AMSKV_AMSKV_H */
