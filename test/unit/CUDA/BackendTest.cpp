//===- BackendTest.cpp - checkCudaBackend without (or with) a GPU ---------===//
//
// What `mllm-run --backend=cuda` relies on: a clear error, never a crash,
// on a machine without a GPU or a build without CUDA, and success where a
// device is visible.
//
//===----------------------------------------------------------------------===//

#include "mllm/runtime/CUDABackend.h"

#include "gtest/gtest.h"

using namespace mllm::runtime;

namespace {

TEST(Backend, AnswersWithoutCrashing) {
  llvm::Error e = checkCudaBackend();
  if (!e) {
    EXPECT_TRUE(cudaBackendBuilt());
    EXPECT_GT(cudaDeviceCount(), 0);
    return;
  }
  std::string text = llvm::toString(std::move(e));
  EXPECT_EQ(cudaDeviceCount(), 0);
  if (cudaBackendBuilt())
    EXPECT_EQ(text.rfind("no CUDA device: ", 0), 0u) << text;
  else
    EXPECT_EQ(text.rfind("mllm-run was built without CUDA", 0), 0u) << text;
}

TEST(Backend, BuildFlagMatchesCMake) {
  EXPECT_EQ(cudaBackendBuilt(), MLLM_TEST_HAVE_CUDA != 0);
}

} // namespace
