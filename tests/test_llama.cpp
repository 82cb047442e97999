// The llama runner on the default model (SmolLM2-135M-Instruct). These tests need the
// model file: they skip with a message when it is absent (tools/setup.sh fetches it).
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "runtime/model/llama.h"

namespace {

using namespace amskv;

std::string model_path() {
  const char* env = std::getenv("AMSKV_MODEL");
  if (env && *env) return env;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "/root") + "/.cache/amskv/SmolLM2-135M-Instruct.Q4_1.gguf";
}

class Llama : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!std::ifstream(model_path()).good()) return;
    model_ = new LlamaModel;
    ASSERT_TRUE(llama_load(model_path().c_str(), model_, &error_)) << error_;
  }
  static void TearDownTestSuite() {
    delete model_;
    model_ = nullptr;
  }
  void SetUp() override {
    if (!model_) GTEST_SKIP() << "needs the model at " << model_path() << " (tools/setup.sh)";
  }

  // Greedy continuation of `prompt` for n tokens under a KV budget and policy.
  static std::vector<int32_t> greedy(const std::string& prompt, int n, size_t budget,
                                     const char* policy, amskv_stats* stats = nullptr) {
    LlamaContext ctx;
    std::string err;
    EXPECT_TRUE(llama_context_init(&ctx, *model_, budget, AMSKV_F16, policy, 2, &err)) << err;
    std::vector<int32_t> ids, out;
    tokenize(model_->tok, prompt, false, false, &ids);
    for (int32_t id : ids) EXPECT_TRUE(llama_decode(&ctx, id, &err)) << err;
    for (int i = 0; i < n; ++i) {
      int best = 0;
      for (int v = 1; v < model_->hp.n_vocab; ++v)
        if (ctx.logits[v] > ctx.logits[best]) best = v;
      out.push_back(best);
      EXPECT_TRUE(llama_decode(&ctx, best, &err)) << err;
    }
    if (stats) amskv_get_stats(ctx.kv, stats);
    return out;
  }

  static LlamaModel* model_;
  static std::string error_;
};
LlamaModel* Llama::model_ = nullptr;
std::string Llama::error_;

TEST_F(Llama, HyperparametersOfTheDefaultModel) {
  const LlamaHparams& hp = model_->hp;
  EXPECT_EQ(hp.n_layer, 30);
  EXPECT_EQ(hp.n_embd, 576);
  EXPECT_EQ(hp.n_head, 9);
  EXPECT_EQ(hp.n_head_kv, 3);
  EXPECT_EQ(hp.head_dim, 64);
  EXPECT_EQ(hp.n_vocab, 49152);
  EXPECT_FLOAT_EQ(hp.rope_theta, 100000.f);
}

TEST_F(Llama, TheCapitalOfFranceIsParis) {
  std::string text;
  for (int32_t id : greedy("The capital of France is", 6, 8u << 20, "full"))
    text += detokenize_token(model_->tok, id);
  EXPECT_NE(text.find("Paris"), std::string::npos) << "continuation: '" << text << "'";
}

TEST_F(Llama, EvictionPolicyWithRoomToSpareChangesNothing) {
  // 16 MiB holds ~700 tokens per layer: no event happens, so every policy must give the
  // full cache's tokens.
  const std::string prompt = "Once upon a time, in a small village by the sea,";
  const auto full = greedy(prompt, 16, 16u << 20, "full");
  amskv_stats st;
  EXPECT_EQ(greedy(prompt, 16, 16u << 20, "ams:tova", &st), full);
  EXPECT_EQ(st.events, 0u);
  EXPECT_EQ(greedy(prompt, 16, 16u << 20, "streaming"), full);
}

TEST_F(Llama, ASmallBudgetStillDecodesAndEvicts) {
  std::string prompt;
  for (int i = 0; i < 12; ++i) prompt += "The quick brown fox jumps over the lazy dog. ";
  amskv_stats st;
  const auto out = greedy(prompt, 8, 3u << 20, "ams:tova", &st);  // ~120 tokens per layer
  EXPECT_EQ(out.size(), 8u);
  EXPECT_GT(st.events, 0u);
  EXPECT_LE(st.bytes_used, st.budget_bytes);
}

TEST(LlamaLoad, MissingFileIsAClearError) {
  LlamaModel m;
  std::string err;
  EXPECT_FALSE(llama_load("/nonexistent/model.gguf", &m, &err));
  EXPECT_NE(err.find("/nonexistent/model.gguf"), std::string::npos) << err;
}

}  // namespace
