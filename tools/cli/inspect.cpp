// amskv inspect: the model's geometry and tensor types, and the KV capacity per budget.
#include <cstdio>
#include <map>

#include "tools/cli/generate.h"

namespace amskv {
namespace cli {

int cmd_inspect(int argc, char** argv) {
  std::string model = default_model(), policy = default_policy();
  std::vector<std::string> positional;
  Spec spec{"inspect",
            "[MODEL] [options]",
            "  Architecture, hyperparameters, tensor types and the KV capacity (tokens per layer)\n"
            "  for budgets of 1, 4, 16 and 64 MiB with each KV dtype.\n",
            {policy_flag(&policy, "policy the capacities are for"), model_flag(&model)},
            &positional};
  int rc;
  if (!parse(argc, argv, spec, &rc)) return rc;
  if (positional.size() > 1) return error(kUsage, "inspect takes one model path");
  if (positional.size() == 1) model = positional[0];
  LlamaModel m;
  if (int e = load_model(model, &m)) return e;
  const LlamaHparams& hp = m.hp;
  std::printf("%s\n", model.c_str());
  std::printf("architecture %s, GGUF v%u, %zu tensors, %.1f MiB\n", m.arch->name, m.file.version,
              m.file.tensors.size(), m.file.size / 1048576.0);
  std::printf(
      "layers %d, embedding %d, heads %d (KV heads %d, head_dim %d), ffn %d, vocab %d,\n"
      "rope theta %g, rms eps %g, embeddings %s\n",
      hp.n_layer, hp.n_embd, hp.n_head, hp.n_head_kv, hp.head_dim, hp.n_ff, hp.n_vocab,
      hp.rope_theta, hp.rms_eps, m.output.t == m.tok_embd ? "tied" : "separate output");
  std::map<std::string, int> types;
  for (const GgufTensor& t : m.file.tensors) types[ggml_type_name(t.type)]++;
  std::printf("tensor types:");
  for (auto& [name, count] : types) std::printf(" %s x%d", name.c_str(), count);
  std::printf("\ntokenizer: %s, %zu tokens, bos %d, eos %d; chat template %s\n",
              m.tok.spm ? "SentencePiece" : "BPE", m.tok.tokens.size(), m.tok.bos_id, m.tok.eos_id,
              m.chat ? m.chat->name : "not recognised");
  int n_local = 0;
  for (const LlamaLayer& L : m.layers) n_local += L.local;
  if (n_local) {
    // The local layers' rings come off the top of every budget.
    std::printf(
        "\n%d global layers, %d local layers (sliding window of %d tokens); the local "
        "layers hold their window when the budget can (a * below: it cannot, and every layer "
        "holds that many tokens, a local one its latest):",
        hp.n_layer - n_local, n_local, hp.sliding_window);
    for (int d = 0; d < amskv_dtype_count(); ++d) {
      const amskv_config cfg = llama_session_config(m, (amskv_dtype)d, "full", 1);
      amskv_session* s = nullptr;
      if (amskv_session_create(&cfg, amskv_budget_for_capacity(&cfg, 1), &s) != AMSKV_OK) continue;
      amskv_stats st;
      amskv_get_stats(s, &st);
      std::printf(" %s %.2f MiB%s", amskv_dtype_name((amskv_dtype)d), st.local_kv_bytes / 1048576.0,
                  d + 1 < amskv_dtype_count() ? "," : "\n");
      amskv_session_destroy(s);
    }
  }
  std::printf("\nKV capacity, tokens per %slayer (policy %s):\n| budget |",
              n_local ? "global " : "", policy.c_str());
  for (int d = 0; d < amskv_dtype_count(); ++d)
    std::printf(" %s |", amskv_dtype_name((amskv_dtype)d));
  std::printf("\n|---|");
  for (int d = 0; d < amskv_dtype_count(); ++d) std::printf("---|");
  std::printf("\n");
  for (int mib : {1, 4, 8, 16, 64}) {
    std::printf("| %d MiB |", mib);
    for (int d = 0; d < amskv_dtype_count(); ++d) {
      const amskv_config cfg = llama_session_config(m, (amskv_dtype)d, policy.c_str(), 1);
      amskv_session* s = nullptr;
      const amskv_status status = amskv_session_create(&cfg, (size_t)mib << 20, &s);
      if (status == AMSKV_E_POLICY) return error(kUsage, amskv_last_error(nullptr));
      if (status != AMSKV_OK) {
        std::printf(" too small |");
        continue;
      }
      amskv_stats st;
      amskv_get_stats(s, &st);
      std::printf(" %d%s |", st.capacity_tokens,
                  st.local_capacity_tokens < hp.sliding_window ? "*" : "");
      amskv_session_destroy(s);
    }
    std::printf("\n");
  }
  return 0;
}

}  // namespace cli
}  // namespace amskv
