//===- DeviceKeyCache.h - generation's keys and values on a GPU -*- C++ -*-===//
//
// The device's side of exec::KeyCache (KeyCache.h): a round of generation
// runs the LLM's new tokens as CP rank 1 of a two-rank share, and this is
// the share's CP group. Each block's all-gather of K, then of V, gets the
// kept tokens' rows from the cache as rank 0's block and appends the new
// ones, all as copies on the executor's stream; an exec::KeyStore keeps
// the count of tokens and checks the calls, as the CPU's cache does.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_LIB_DEVICE_DEVICEKEYCACHE_H
#define MLLM_RUNTIME_LIB_DEVICE_DEVICEKEYCACHE_H

#include "DeviceImpl.h"

#include "mllm/runtime/exec/KeyCache.h"

namespace mllm::runtime::device {

class DeviceKeyCache final : public ShardCollectives {
public:
  /// For batches of `sequences` sequences of at most `capacity` tokens.
  DeviceKeyCache(int64_t sequences, int64_t capacity)
      : sequences(sequences), capacity(capacity) {}

  /// The tokens kept and the rounds' checks (exec::SampleKeys drives it).
  exec::KeyStore &store() { return rounds; }

  int size() const override { return 2; }
  int rank() const override { return 1; }
  /// [sequences, kept, width] from the cache, then `local` ([sequences,
  /// new tokens, width]), which the cache keeps after the kept tokens.
  llvm::Error allGather(const bf16 *local, llvm::ArrayRef<int64_t> counts,
                        bf16 *out, cudaStream_t stream) override;
  llvm::Error allReduceSum(bf16 *, int64_t, cudaStream_t) override {
    return unused();
  }
  llvm::Error allReduceSum(double *, int64_t, cudaStream_t) override {
    return unused();
  }
  llvm::Error allReduceMax(float *, int64_t, cudaStream_t) override {
    return unused();
  }
  llvm::Error reduceScatterSum(const bf16 *, llvm::ArrayRef<int64_t>, bf16 *,
                               cudaStream_t) override {
    return unused();
  }
  /// The copies are on the stream already.
  llvm::Error join(cudaStream_t) override { return llvm::Error::success(); }
  llvm::Error finish() override { return llvm::Error::success(); }

private:
  static llvm::Error unused();
  exec::KeyStore rounds;
  int64_t sequences, capacity;
  /// Per all-gather of the first round: [sequences, capacity, width].
  std::vector<DeviceArray<bf16>> blocks;
};

} // namespace mllm::runtime::device

#endif // MLLM_RUNTIME_LIB_DEVICE_DEVICEKEYCACHE_H
