//===- VocabularyTest.cpp - the dialect's words are the plan's and runtime's
//===//
//
// The compiler spells enumerated values with the mllm dialect's enums, the
// plan file carries those spellings, and the runtime acts on them by name
// (the CP balancer, the layer factory, the plan reader). These tests check
// every case in both directions, so the vocabularies cannot drift apart.
//
//===----------------------------------------------------------------------===//
#include "mllm/Dialect/MLLM/IR/MLLMOps.h"
#include "mllm/runtime/Balance.h"
#include "mllm/runtime/LayerConfig.h"
#include "mllm/runtime/PlanIO.h"

#include "llvm/ADT/STLExtras.h"

#include "gtest/gtest.h"

using namespace mllm;

namespace {

TEST(Vocabulary, CPPolicies) {
  for (CPBalance p : EnumCases<CPBalance>::all()) {
    auto policy = runtime::parseBalancePolicy(stringifyCPBalance(p));
    ASSERT_TRUE(policy.has_value()) << stringifyCPBalance(p).str();
    EXPECT_EQ(runtime::policyName(*policy), stringifyCPBalance(p));
  }
  for (runtime::BalancePolicy p :
       {runtime::BalancePolicy::Lpt, runtime::BalancePolicy::Ilp,
        runtime::BalancePolicy::Zigzag, runtime::BalancePolicy::Uniform})
    EXPECT_TRUE(symbolizeCPBalance(runtime::policyName(p)).has_value());
}

TEST(Vocabulary, LayerKinds) {
  std::vector<std::string> dialect;
  for (uint32_t i = 0; i <= getMaxEnumValForLayerKind(); ++i)
    dialect.push_back(stringifyLayerKind(*symbolizeLayerKind(i)).str());
  std::vector<std::string> runtimeKinds;
  for (llvm::StringRef k : runtime::layerKindNames())
    runtimeKinds.push_back(k.str());
  llvm::sort(dialect);
  llvm::sort(runtimeKinds);
  EXPECT_EQ(dialect, runtimeKinds);
}

/// A plan with the given training settings and layout reads back.
void expectReadable(llvm::StringRef optimizer, llvm::StringRef precision,
                    llvm::StringRef layout) {
  runtime::Plan p;
  p.job.layout = layout.str();
  p.train.optimizer = optimizer.str();
  p.train.precision = precision.str();
  p.data.textTokens = p.data.seqLen = 1; // What the layout gives.
  // Rates the reader requires positive.
  p.job.peakFlops = p.job.memoryBandwidth = 1e12;
  p.job.intraNodeBandwidth = p.job.interNodeBandwidth = 1e10;
  p.parts.emplace_back().isLLM = true;
  p.parts.back().name = "llm";
  p.parts.back().width = 1;
  auto read = runtime::readPlan(runtime::writePlan(p), "p.yaml");
  EXPECT_TRUE(static_cast<bool>(read))
      << optimizer.str() << " " << precision.str() << " " << layout.str()
      << ": " << llvm::toString(read.takeError());
}

TEST(Vocabulary, TrainingAndLayoutSpellingsReadBack) {
  for (Optimizer o : EnumCases<Optimizer>::all())
    expectReadable(stringifyOptimizer(o), "fp32", "encoders_parallel");
  for (Precision p : EnumCases<Precision>::all())
    expectReadable("adamw", stringifyPrecision(p), "encoders_parallel");
  for (EncoderLayout l : EnumCases<EncoderLayout>::all())
    expectReadable("adamw", "fp32", stringifyEncoderLayout(l));
}

} // namespace
