//===- DeviceKeyCacheTest.cpp - generation's keys on the device -----------===//
//
// device::DeviceKeyCache on the host twin of CUDA: what each all-gather
// gets for batches of several sequences (the staging layout the CP
// exchange uses: every rank's [sequences, tokens, width] block in rank
// order), what it keeps, and the internal errors of calls that do not fit.
//
//===----------------------------------------------------------------------===//
#include "DeviceKeyCache.h"

#include "gtest/gtest.h"

#include <vector>

using namespace mllm::runtime;
using namespace mllm::runtime::device;

namespace {
constexpr int64_t kSequences = 2, kWidth = 3, kCapacity = 4;

/// The rows of tokens [first, first + n) of every sequence, [sequences, n,
/// width]: value 1 + 64 s + 8 t + i for K, its negative for V (`sign`),
/// plus `sample` (exact in bf16).
std::vector<float> rows(int64_t first, int64_t n, float sign,
                        float sample = 0) {
  std::vector<float> v;
  for (int64_t s = 0; s < kSequences; ++s)
    for (int64_t t = first; t < first + n; ++t)
      for (int64_t i = 0; i < kWidth; ++i)
        v.push_back(sign * (1.0f + 64.0f * s + 8.0f * t + i) + sample);
  return v;
}

constexpr int64_t kSlack = 64; ///< Sentinels after each buffer's values.

struct Device {
  std::vector<bf16> host;
  DeviceArray<bf16> buffer;
  explicit Device(const std::vector<float> &values) {
    for (float x : values)
      host.push_back(__float2bfloat16(x));
    host.resize(host.size() + kSlack, __float2bfloat16(-7.0f));
    EXPECT_TRUE(buffer.allocate(host.size()).ok());
    EXPECT_EQ(cudaMemcpy(buffer.data(), host.data(), host.size() * sizeof(bf16),
                         cudaMemcpyHostToDevice),
              cudaSuccess);
  }
  std::vector<float> read(size_t n) {
    std::vector<bf16> got(n);
    EXPECT_EQ(cudaMemcpy(got.data(), buffer.data(), n * sizeof(bf16),
                         cudaMemcpyDeviceToHost),
              cudaSuccess);
    std::vector<float> v;
    for (bf16 x : got)
      v.push_back(__bfloat162float(x));
    return v;
  }
};

/// One round of `added` tokens after `kept` of `sample`: the all-gathers
/// of K and V each give the kept tokens' rows, then the new ones, and
/// write nothing after them.
void round(DeviceKeyCache &cache, int64_t kept, int64_t added,
           float sample = 0) {
  cache.store().beginRound(added);
  for (float sign : {1.0f, -1.0f}) {
    Device local(rows(kept, added, sign, sample));
    Device out(std::vector<float>(kSequences * (kept + added) * kWidth, -1));
    const int64_t per = kSequences * kWidth;
    ASSERT_FALSE(cache.allGather(local.buffer.data(), {kept * per, added * per},
                                 out.buffer.data(), nullptr));
    std::vector<float> expect = rows(0, kept, sign, sample),
                       mine = rows(kept, added, sign, sample);
    expect.insert(expect.end(), mine.begin(), mine.end());
    expect.insert(expect.end(), kSlack, -7.0f);
    EXPECT_EQ(out.read(expect.size()), expect);
  }
  ASSERT_FALSE(cache.store().endRound());
  EXPECT_EQ(cache.store().tokens(), kept + added);
}
} // namespace

TEST(DeviceKeyCache, ServesEachSequencesKeptRowsBeforeTheNew) {
  DeviceKeyCache cache(kSequences, kCapacity);
  EXPECT_EQ(cache.size(), 2);
  EXPECT_EQ(cache.rank(), 1);
  round(cache, 0, 2);
  round(cache, 2, 1);
  round(cache, 3, 1);
  // A new sample starts over in the same buffers, with its own rows.
  cache.store().clear();
  round(cache, 0, 3, 0.5f);
  round(cache, 3, 1, 0.5f);
}

TEST(DeviceKeyCache, CallsThatDoNotFitAreInternalErrors) {
  DeviceKeyCache cache(kSequences, kCapacity);
  round(cache, 0, 3);
  // Past the capacity.
  cache.store().beginRound(2);
  const int64_t per = kSequences * kWidth;
  Device local(rows(3, 2, 1)), out(std::vector<float>(5 * per, 0));
  llvm::Error e = cache.allGather(local.buffer.data(), {3 * per, 2 * per},
                                  out.buffer.data(), nullptr);
  ASSERT_TRUE(!!e);
  EXPECT_NE(llvm::toString(std::move(e)).find("internal error"),
            std::string::npos);
  // Collectives other than the all-gather are not generation's.
  llvm::Error other = cache.allReduceMax(nullptr, 0, nullptr);
  EXPECT_TRUE(!!other);
  llvm::consumeError(std::move(other));
}
