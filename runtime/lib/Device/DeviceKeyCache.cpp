//===- DeviceKeyCache.cpp - generation's keys and values on a GPU ---------===//
#include "DeviceKeyCache.h"

#include "llvm/Support/FormatVariadic.h"

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::device;

static llvm::Error internal(const llvm::Twine &why) {
  return llvm::createStringError(
      llvm::inconvertibleErrorCode(),
      "generation's key cache on the device: " + why + " (internal error)");
}

llvm::Error DeviceKeyCache::unused() {
  return internal("a collective other than the K/V all-gather");
}

llvm::Error DeviceKeyCache::allGather(const bf16 *local,
                                      llvm::ArrayRef<int64_t> counts, bf16 *out,
                                      cudaStream_t stream) {
  auto at = rounds.serve(counts);
  if (!at)
    return at.takeError();
  const int64_t kept = rounds.tokens(), added = rounds.newTokens();
  const int64_t perToken = counts[1] / added, width = perToken / sequences;
  if (perToken % sequences != 0 || kept + added > capacity)
    return internal(llvm::formatv("{0} values of {1} new tokens after {2} "
                                  "kept in {3} sequences of {4}",
                                  counts[1], added, kept, sequences, capacity));
  // Allocated in a sample's first round, kept for the next samples (a
  // failed allocation is tried again).
  if (*at >= blocks.size())
    blocks.resize(*at + 1);
  MLLM_TRY(check(
      blocks[*at].allocate(static_cast<size_t>(sequences * capacity * width)),
      "allocating the key cache"));
  bf16 *cache = blocks[*at].data();
  const size_t row = static_cast<size_t>(width) * sizeof(bf16),
               pitch = capacity * row;
  // Rank 0's block: the kept tokens of each sequence, back to back.
  if (kept > 0)
    MLLM_TRY(check(cudaStatus(copyRowsAsync(out, kept * row, cache, pitch,
                                            kept * row, sequences, stream)),
                   "reading the key cache"));
  MLLM_TRY(check(cudaStatus(cudaMemcpyAsync(out + sequences * kept * width,
                                            local, sequences * added * row,
                                            cudaMemcpyDeviceToDevice, stream)),
                 "placing the new tokens' keys"));
  return check(
      cudaStatus(copyRowsAsync(cache + kept * width, pitch, local, added * row,
                               added * row, sequences, stream)),
      "keeping the new tokens' keys");
}
