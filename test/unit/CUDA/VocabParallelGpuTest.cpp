//===- VocabParallelGpuTest.cpp - Kernels over a vocabulary slice ---------===//
//
// The vocabulary-parallel embedding and cross-entropy kernels on a
// vocabulary cut unevenly into slices, one per simulated tensor-parallel
// rank; the host stands in for the all-reduces between the calls. Each
// slice's results, and the slices put together, are checked against the
// CPU kernels over the whole vocabulary (cpu/Embedding.h,
// cpu/CrossEntropy.h) and against sums formed here, never against the
// kernels under test. Skipped without a GPU.
//
//===----------------------------------------------------------------------===//

#include "GpuTestUtil.h"

#include "mllm/kernels/cpu/CrossEntropy.h"
#include "mllm/kernels/cpu/Embedding.h"
#include "mllm/kernels/cuda/Layers.h"

#include <limits>

using namespace mllm;
using namespace mllm::cuda_test;
namespace cpu = mllm::kernels::cpu;
namespace gpu = mllm::kernels::cuda;

namespace {

/// A slice [first, first + count) of the vocabulary: one rank's.
struct Slice {
  int64_t first, count;
  bool holds(int64_t id) const { return id >= first && id < first + count; }
};

/// Uneven slices covering [0, vocab), as Megatron's ranks would hold them.
std::vector<Slice> cut(const std::vector<int64_t> &bounds) {
  std::vector<Slice> slices;
  for (size_t i = 0; i + 1 < bounds.size(); ++i)
    slices.push_back({bounds[i], bounds[i + 1] - bounds[i]});
  return slices;
}

/// Columns [s.first, s.first + s.count) of every row of m[rows, cols].
template <typename T>
std::vector<T> columns(const std::vector<T> &m, int64_t rows, int64_t cols,
                       Slice s) {
  std::vector<T> out;
  for (int64_t r = 0; r < rows; ++r)
    out.insert(out.end(), m.begin() + r * cols + s.first,
               m.begin() + r * cols + s.first + s.count);
  return out;
}

TEST(VocabParallelGpu, EmbeddingSlicesSumToTheWholeGather) {
  MLLM_REQUIRE_GPU();
  const int64_t vocab = 50, d = 72;
  const std::vector<Slice> slices = cut({0, 17, 33, 50});
  // Every slice's first and last id, repeats, and ids in every slice.
  const std::vector<int64_t> ids = {3, 16, 17, 3, 49, 0, 32, 33, 7, 7, 40, 12};
  const int64_t t = static_cast<int64_t>(ids.size());
  const std::vector<float> table = roundBf16(randomFloats(vocab * d, 21, 1.0f));
  std::vector<float> whole(t * d);
  cpu::embeddingForward(ids.data(), table.data(), whole.data(), t, vocab, d);
  DeviceArray<int64_t> dids = upload(ids);
  DeviceArray<bf16> dtable = upload(toBf16(table));
  DeviceArray<bf16> out = upload(std::vector<bf16>(t * d));
  ASSERT_OK(gpu::embeddingForward(dids.data(), dtable.data(), out.data(), t, d,
                                  nullptr));
  EXPECT_EQ(toFloat(download(out)), whole);

  std::vector<float> summed(t * d, 0.0f);
  for (const Slice &s : slices) {
    SCOPED_TRACE("slice from " + std::to_string(s.first));
    const std::vector<float> part(table.begin() + s.first * d,
                                  table.begin() + (s.first + s.count) * d);
    DeviceArray<bf16> dpart = upload(toBf16(part));
    // Garbage first: rows of other slices' ids must be written as zeros.
    DeviceArray<bf16> sliceOut = upload(toBf16(std::vector<float>(t * d, 7)));
    ASSERT_OK(gpu::embeddingForwardSlice(dids.data(), dpart.data(),
                                         sliceOut.data(), t, d, s.first,
                                         s.count, nullptr));
    std::vector<float> got = toFloat(download(sliceOut)), want = whole;
    for (int64_t i = 0; i < t; ++i)
      if (!s.holds(ids[i]))
        std::fill(want.begin() + i * d, want.begin() + (i + 1) * d, 0.0f);
    EXPECT_EQ(got, want); // a copy: exact
    for (int64_t e = 0; e < t * d; ++e)
      summed[e] += got[e];
  }
  EXPECT_EQ(summed, whole); // what the all-reduce of the rows gives

  // Ids no slice holds are no slice's: zeros, not errors.
  DeviceArray<int64_t> outside = upload(std::vector<int64_t>{-1, 50, 1000});
  DeviceArray<bf16> zeros = upload(toBf16(std::vector<float>(3 * d, 7)));
  ASSERT_OK(gpu::embeddingForwardSlice(outside.data(), dtable.data(),
                                       zeros.data(), 3, d, 0, vocab, nullptr));
  EXPECT_EQ(toFloat(download(zeros)), std::vector<float>(3 * d, 0.0f));
  EXPECT_FALSE(gpu::embeddingForwardSlice(dids.data(), dtable.data(),
                                          out.data(), t, d, -1, vocab, nullptr)
                   .ok());
}

TEST(VocabParallelGpu, EmbeddingGradSlicesMakeTheWholeGradient) {
  MLLM_REQUIRE_GPU();
  const int64_t vocab = 50, d = 72;
  // The middle slice is the largest, so the reused plan first grows, then
  // is reused at a smaller size; [50, 60) holds no id at all.
  const std::vector<Slice> slices = {{0, 17}, {17, 16}, {33, 17}, {50, 10}};
  const std::vector<int64_t> ids = {3,  16, 17, 3,  49, 0,  32, 33,
                                    7,  7,  40, 12, 20, 20, 21, 22,
                                    23, 24, 25, 26, 27, 28, 29, 30};
  const int64_t t = static_cast<int64_t>(ids.size());
  const std::vector<float> dout = roundBf16(randomFloats(t * d, 22, 1.0f));
  std::vector<float> ref(vocab * d, 0.25f);
  cpu::embeddingBackwardWeight(ids.data(), dout.data(), ref.data(), t, vocab,
                               d);
  DeviceArray<bf16> ddout = upload(toBf16(dout));
  gpu::EmbeddingGradPlan plan; // reused, as the executor reuses its plans
  std::vector<float> joined;
  for (const Slice &s : slices) {
    SCOPED_TRACE("slice from " + std::to_string(s.first));
    ASSERT_OK(
        gpu::prepareEmbeddingGradSlice(ids, s.first, s.count, plan, nullptr));
    std::vector<int64_t> held;
    for (int64_t id : ids)
      if (s.holds(id) && std::find(held.begin(), held.end(), id) == held.end())
        held.push_back(id);
    EXPECT_EQ(plan.tokens, t);
    EXPECT_EQ(plan.uniqueIds, static_cast<int64_t>(held.size()));
    DeviceArray<float> dtable = upload(std::vector<float>(s.count * d, 0.25f));
    ASSERT_OK(
        gpu::embeddingBackward(plan, ddout.data(), dtable.data(), d, nullptr));
    std::vector<float> got = download(dtable);
    if (s.first >= vocab) {
      EXPECT_EQ(got, std::vector<float>(s.count * d, 0.25f));
      continue;
    }
    joined.insert(joined.end(), got.begin(), got.end());
  }
  EXPECT_LT(relError(joined, ref), 1e-6);

  // The whole-vocabulary plan still refuses an id outside it; a slice's
  // skips it.
  gpu::EmbeddingGradPlan other;
  EXPECT_FALSE(gpu::prepareEmbeddingGrad({1, 50}, vocab, other, nullptr).ok());
  ASSERT_OK(
      gpu::prepareEmbeddingGradSlice({1, 50, -3, 1}, 0, vocab, other, nullptr));
  EXPECT_EQ(other.uniqueIds, 1);
  EXPECT_FALSE(gpu::prepareEmbeddingGradSlice(ids, 0, -1, other, nullptr).ok());
}

TEST(VocabParallelGpu, CrossEntropyOverSlicesMatchesTheWholeVocabulary) {
  MLLM_REQUIRE_GPU();
  const int64_t t = 19, vocab = 37;
  const std::vector<Slice> slices = cut({0, 11, 25, 37});
  const std::vector<float> logits =
      roundBf16(randomFloats(t * vocab, 23, 8.0f));
  // Every third position is not text; the others hit each slice, its
  // first and last ids included.
  const int64_t hits[] = {0, 10, 11, 24, 25, 36, 5, 18, 30, 2, 13, 33, 20};
  std::vector<int64_t> targets(t);
  for (int64_t i = 0, h = 0; i < t; ++i)
    targets[i] = i % 3 == 1 ? cpu::kIgnoreIndex : hits[h++];
  std::vector<double> rlse(t);
  const cpu::CrossEntropyResult ref = cpu::softmaxCrossEntropyForward(
      logits.data(), targets.data(), rlse.data(), t, vocab);
  ASSERT_EQ(ref.count, 13);
  const double scale = 1.0 / static_cast<double>(ref.count);
  std::vector<float> rg(t * vocab);
  cpu::softmaxCrossEntropyBackward(logits.data(), targets.data(), rlse.data(),
                                   rg.data(), scale, t, vocab);

  struct Rank {
    DeviceArray<bf16> logits, dlogits;
    DeviceArray<float> rowMax, lse;
    DeviceArray<double> sums, lossSum;
    DeviceArray<int64_t> count;
  };
  DeviceArray<int64_t> dtargets = upload(targets);
  std::vector<Rank> ranks(slices.size());
  // Step 1: each rank's row maxima, all-reduced (max) here.
  std::vector<float> rowMax(t, -INFINITY);
  for (size_t r = 0; r < slices.size(); ++r) {
    Rank &k = ranks[r];
    k.logits = upload(toBf16(columns(logits, t, vocab, slices[r])));
    k.rowMax = upload(std::vector<float>(t));
    ASSERT_OK(gpu::crossEntropyRowMax(k.logits.data(), k.rowMax.data(), t,
                                      slices[r].count, nullptr));
    std::vector<float> m = download(k.rowMax);
    for (int64_t i = 0; i < t; ++i)
      rowMax[i] = std::max(rowMax[i], m[i]);
  }
  for (int64_t i = 0; i < t; ++i) // bf16 values: the max is exact
    EXPECT_EQ(rowMax[i], *std::max_element(logits.begin() + i * vocab,
                                           logits.begin() + (i + 1) * vocab));
  // Step 2: the sums of exponentials and the target logits, all-reduced.
  std::vector<double> sums(2 * t, 0.0);
  for (size_t r = 0; r < slices.size(); ++r) {
    Rank &k = ranks[r];
    k.rowMax = upload(rowMax);
    k.sums = upload(std::vector<double>(2 * t, 99.0));
    ASSERT_OK(gpu::crossEntropySliceSums(
        k.logits.data(), dtargets.data(), k.rowMax.data(), k.sums.data(), t,
        slices[r].count, slices[r].first, nullptr));
    std::vector<double> s = download(k.sums);
    for (int64_t e = 0; e < 2 * t; ++e)
      sums[e] += s[e];
  }
  for (int64_t i = 0; i < t; ++i) {
    double expSum = 0;
    for (int64_t v = 0; v < vocab; ++v)
      expSum += std::exp(double(logits[i * vocab + v]) - double(rowMax[i]));
    EXPECT_NEAR(sums[i], expSum, 1e-5 * expSum);
    // Exactly one rank gives a counted target's logit; ignored ones none.
    const bool counted = targets[i] != cpu::kIgnoreIndex;
    EXPECT_EQ(sums[t + i],
              counted ? double(logits[i * vocab + targets[i]]) : 0.0)
        << "token " << i;
  }
  // Step 3: every rank forms the same lse and loss.
  for (size_t r = 0; r < slices.size(); ++r) {
    SCOPED_TRACE("rank " + std::to_string(r));
    Rank &k = ranks[r];
    k.sums = upload(sums);
    k.lse = upload(std::vector<float>(t));
    k.lossSum = upload(std::vector<double>(1));
    k.count = upload(std::vector<int64_t>(1));
    ASSERT_OK(gpu::crossEntropyFromSums(
        k.rowMax.data(), k.sums.data(), dtargets.data(), k.lse.data(),
        k.lossSum.data(), k.count.data(), t, nullptr));
    EXPECT_EQ(download(k.count)[0], ref.count);
    EXPECT_NEAR(download(k.lossSum)[0], ref.lossSum, 1e-5 * ref.lossSum);
    std::vector<float> lse = download(k.lse);
    for (int64_t i = 0; i < t; ++i)
      EXPECT_NEAR(lse[i], rlse[i], 1e-5 * std::fabs(rlse[i]) + 1e-5);
  }
  // Step 4: the slices' gradients put together are the whole one.
  std::vector<float> joined(t * vocab);
  for (size_t r = 0; r < slices.size(); ++r) {
    Rank &k = ranks[r];
    const Slice s = slices[r];
    k.dlogits = upload(toBf16(std::vector<float>(t * s.count, 7)));
    ASSERT_OK(gpu::crossEntropySliceBackward(
        k.logits.data(), dtargets.data(), k.lse.data(), k.dlogits.data(),
        static_cast<float>(scale), t, s.count, s.first, nullptr));
    std::vector<float> g = toFloat(download(k.dlogits));
    for (int64_t i = 0; i < t; ++i)
      std::copy(g.begin() + i * s.count, g.begin() + (i + 1) * s.count,
                joined.begin() + i * vocab + s.first);
  }
  // bf16 rounding: half an ulp of each element, plus a little of the
  // largest for the fp32 exponentials (a misplaced one-hot is off by scale).
  const float largest =
      std::fabs(*std::max_element(rg.begin(), rg.end(), [](float a, float b) {
        return std::fabs(a) < std::fabs(b);
      }));
  for (int64_t e = 0; e < t * vocab; ++e)
    EXPECT_NEAR(joined[e], rg[e], 4e-3 * std::fabs(rg[e]) + 1e-4 * largest)
        << "token " << e / vocab << ", id " << e % vocab;
  for (int64_t v = 0; v < vocab; ++v)
    EXPECT_EQ(joined[1 * vocab + v], 0.0f); // an ignored position

  // One slice over the whole vocabulary is crossEntropyBackward.
  DeviceArray<bf16> all = upload(toBf16(logits));
  DeviceArray<bf16> g1 = upload(std::vector<bf16>(t * vocab));
  DeviceArray<bf16> g2 = upload(std::vector<bf16>(t * vocab));
  ASSERT_OK(gpu::crossEntropyBackward(
      all.data(), dtargets.data(), ranks[0].lse.data(), g1.data(),
      static_cast<float>(scale), t, vocab, nullptr));
  ASSERT_OK(gpu::crossEntropySliceBackward(
      all.data(), dtargets.data(), ranks[0].lse.data(), g2.data(),
      static_cast<float>(scale), t, vocab, 0, nullptr));
  EXPECT_EQ(toFloat(download(g1)), toFloat(download(g2)));
  // No tokens: a zero loss sum and count.
  ASSERT_OK(gpu::crossEntropyFromSums(nullptr, nullptr, nullptr, nullptr,
                                      ranks[0].lossSum.data(),
                                      ranks[0].count.data(), 0, nullptr));
  EXPECT_EQ(download(ranks[0].lossSum)[0], 0.0);
  EXPECT_EQ(download(ranks[0].count)[0], 0);
  EXPECT_FALSE(gpu::crossEntropySliceSums(
                   all.data(), dtargets.data(), ranks[0].rowMax.data(),
                   ranks[0].sums.data(), t, vocab, -1, nullptr)
                   .ok());
}

} // namespace

TEST(VocabParallelGpu, RowArgmaxIsTheFirstLargestLogit) {
  MLLM_REQUIRE_GPU();
  const int64_t vocab = 1000;
  // Random rows (bf16 rounding makes ties), then rows built for the
  // corner cases: the maximum twice (the first wins), at the last index,
  // a NaN before it (skipped), every logit equal, -inf everywhere but
  // one NaN, and NaN only (no prediction: -1).
  std::vector<float> logits = roundBf16(randomFloats(6 * vocab, 5, 3.0f));
  auto row = [&](int64_t r) { return logits.data() + r * vocab; };
  const float inf = std::numeric_limits<float>::infinity();
  row(1)[700] = row(1)[300] = 9.0f;
  row(2)[vocab - 1] = 9.0f;
  row(3)[0] = std::numeric_limits<float>::quiet_NaN();
  row(3)[5] = 9.0f;
  std::vector<float> equal(vocab, 0.5f), none(vocab, -inf);
  none[17] = std::numeric_limits<float>::quiet_NaN();
  logits.insert(logits.end(), equal.begin(), equal.end());
  logits.insert(logits.end(), none.begin(), none.end());
  logits.insert(logits.end(), vocab, std::numeric_limits<float>::quiet_NaN());
  const int64_t tokens = static_cast<int64_t>(logits.size()) / vocab;
  // The reference: the first strictly larger, NaN skipped (the CPU
  // backend's vocabParallelArgmax).
  std::vector<int64_t> want(tokens, 0);
  for (int64_t t = 0; t < tokens; ++t) {
    int64_t best = -1;
    for (int64_t v = 0; v < vocab; ++v) {
      float z = row(t)[v];
      if (!std::isnan(z) && (best < 0 || z > row(t)[best]))
        best = v;
    }
    want[t] = best;
  }
  EXPECT_EQ(want[1], 300);
  EXPECT_EQ(want[2], vocab - 1);
  EXPECT_EQ(want[3], 5);
  EXPECT_EQ(want[6], 0);
  EXPECT_EQ(want[7], 0);
  EXPECT_EQ(want[8], -1);
  auto dLogits = upload(toBf16(logits));
  DeviceArray<int64_t> dArgmax = upload(std::vector<int64_t>(tokens, -7));
  ASSERT_TRUE(
      gpu::rowArgmax(dLogits.data(), dArgmax.data(), tokens, vocab, nullptr)
          .ok());
  EXPECT_EQ(download(dArgmax), want);
  // Indices are floats inside the kernel: exact below 2^24 only.
  EXPECT_FALSE(gpu::rowArgmax(dLogits.data(), dArgmax.data(), 1,
                              int64_t(1) << 24, nullptr)
                   .ok());
}
