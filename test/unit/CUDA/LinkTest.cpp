//===- LinkTest.cpp - The CUDA libraries link and fail cleanly ------------===//
//
// Built wherever the toolkit is, run everywhere (no GPU label): the kernel
// and runtime libraries link into an executable, their host-side checks
// work, and without a GPU every entry point returns an error instead of
// crashing or exiting.
//
//===----------------------------------------------------------------------===//

#include "mllm/kernels/MaskFamilies.h"
#include "mllm/kernels/cuda/Attention.h"
#include "mllm/kernels/cuda/Gemm.h"
#include "mllm/kernels/cuda/Layers.h"
#include "mllm/runtime/CUDABackend.h"
#include "mllm/runtime/LocalComm.h"
#include "mllm/runtime/cuda/NCCLComm.h"

#include "gtest/gtest.h"

using namespace mllm;
namespace gpu = mllm::kernels::cuda;

namespace {

// The CPU tests of TilePlan.h use the kernels' tile.
static_assert(gpu::kTileRows == 64 && gpu::kTileCols == 64, "kernel tile");

TEST(Link, HostChecks) {
  kernels::GeneratedMask g =
      kernels::generateMask(kernels::MaskFamily::Causal, 100, 1);
  gpu::AttentionTokens t = gpu::AttentionTokens::whole(g.layout, g.policy);
  EXPECT_EQ(gpu::checkAttentionTokens(t), "");
  t.qLen = 101;
  EXPECT_NE(gpu::checkAttentionTokens(t), "");
  // The tile lists' offsets are int32: 4M x 4M tokens are 2^32 tiles,
  // refused before any list is built (the key count alone passes).
  t.qLen = t.kLen = int64_t(1) << 22;
  EXPECT_EQ(gpu::checkAttentionTokens(t),
            "4194304 queries x 4194304 keys are 4294967296 tiles, more than "
            "one call lists (2^31 - 1); split the queries");
  gpu::AttentionHeads h;
  EXPECT_EQ(gpu::checkAttentionHeads(h), "");
  h.headDim = 96;
  EXPECT_NE(gpu::checkAttentionHeads(h).find("96"), std::string::npos);
  h.headDim = 128;
  h.heads = 6;
  h.kvHeads = 4;
  EXPECT_NE(gpu::checkAttentionHeads(h), "");
}

TEST(Link, EntryPointsFailCleanlyWithoutAGpu) {
  if (!llvm::errorToBool(runtime::checkCudaBackend()))
    GTEST_SKIP() << "a GPU is present: the gpu-labelled tests cover it";
  kernels::GeneratedMask g =
      kernels::generateMask(kernels::MaskFamily::Causal, 100, 1);
  gpu::AttentionPlan plan;
  gpu::Status s = gpu::prepareAttention(
      gpu::AttentionTokens::whole(g.layout, g.policy), plan);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("CUDA"), std::string::npos) << s.message();
  gpu::Gemm gemm;
  EXPECT_FALSE(gemm.init().ok());
  using namespace std::chrono_literals;
  llvm::Error e = runtime::runLocalWorld(1, 10s, [](runtime::Comm &boot) {
    auto world = runtime::cuda::NCCLWorld::create(boot);
    return world ? llvm::Error::success() : world.takeError();
  });
  std::string text = e ? llvm::toString(std::move(e)) : "";
  EXPECT_NE(text.find("CUDA"), std::string::npos) << text;
}

} // namespace
