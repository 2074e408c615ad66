//===- NCCLGpuTest.cpp - The NCCL communicator on real GPUs ---------------===//
//
// Ranks are threads bootstrapped over the in-process Comm (as MPI ranks are
// over MPI), one GPU each: a one-rank world on any GPU, and with two GPUs
// the channels, both directions at once, variable-sized collectives, the
// TP layers' typed all-reduces, inconsistent group calls and the per-pair
// order check. Skipped without
// a GPU (and the two-rank cases without two).
//
//===----------------------------------------------------------------------===//

#include "GpuTestUtil.h"

#include "mllm/runtime/LocalComm.h"
#include "mllm/runtime/cuda/Device.h"
#include "mllm/runtime/cuda/NCCLComm.h"

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::cuda;
using namespace mllm::cuda_test;
using namespace std::chrono_literals;

namespace {

/// A device copy of `v`, as an Expected-free helper.
template <typename T>
DeviceBuffer deviceCopy(const std::vector<T> &v) {
  auto b = DeviceBuffer::allocate(v.size() * sizeof(T));
  EXPECT_TRUE(static_cast<bool>(b));
  if (!b) {
    llvm::consumeError(b.takeError());
    return DeviceBuffer();
  }
  EXPECT_FALSE(llvm::errorToBool(b->upload(v.data(), v.size() * sizeof(T))));
  return std::move(*b);
}

template <typename T>
std::vector<T> hostCopy(const DeviceBuffer &b) {
  std::vector<T> v(b.bytes() / sizeof(T));
  EXPECT_FALSE(llvm::errorToBool(b.download(v.data(), b.bytes())));
  return v;
}

DeviceBuffer deviceFloats(const std::vector<float> &v) { return deviceCopy(v); }
std::vector<float> hostFloats(const DeviceBuffer &b) {
  return hostCopy<float>(b);
}

/// The TP layers' all-reduces (bf16 sums, double sums, float maxima) of
/// `group`, each waited for; rank `me` contributes values that make the
/// results over `ranks` ranks exact.
llvm::Error typedAllReduces(NCCLGroup &group, int me, int ranks) {
  std::vector<__nv_bfloat16> halves = {__float2bfloat16(0.5f * (me + 1)),
                                       __float2bfloat16(-2.0f)};
  DeviceBuffer b = deviceCopy(halves);
  DeviceBuffer d = deviceCopy(std::vector<double>{1e-9 * (me + 1), 3.0});
  DeviceBuffer f = deviceCopy(std::vector<float>{float(me), -float(me)});
  auto sum = group.allReduceSumAsync(b.as<__nv_bfloat16>(), 2);
  if (!sum)
    return sum.takeError();
  if (llvm::Error e = (*sum)->wait())
    return e;
  auto dsum = group.allReduceSumAsync(d.as<double>(), 2);
  if (!dsum)
    return dsum.takeError();
  if (llvm::Error e = (*dsum)->wait())
    return e;
  auto max = group.allReduceMaxAsync(f.as<float>(), 2);
  if (!max)
    return max.takeError();
  if (llvm::Error e = (*max)->wait())
    return e;
  std::vector<__nv_bfloat16> bs = hostCopy<__nv_bfloat16>(b);
  // 0.5 (1 + ... + ranks) and -2 ranks: exact in bf16.
  EXPECT_EQ(__bfloat162float(bs[0]), 0.25f * ranks * (ranks + 1));
  EXPECT_EQ(__bfloat162float(bs[1]), -2.0f * ranks);
  std::vector<double> ds = hostCopy<double>(d);
  EXPECT_NEAR(ds[0], 1e-9 * ranks * (ranks + 1) / 2, 1e-20);
  EXPECT_EQ(ds[1], 3.0 * ranks);
  EXPECT_EQ(hostCopy<float>(f), (std::vector<float>{float(ranks - 1), 0.0f}));
  return llvm::Error::success();
}

std::string errorText(llvm::Error e) {
  return e ? llvm::toString(std::move(e)) : "";
}

TEST(NCCLGpu, OneRankWorld) {
  MLLM_REQUIRE_GPU();
  std::string text = errorText(runLocalWorld(1, 60s, [](Comm &boot) {
    auto world = NCCLWorld::create(boot, {std::chrono::seconds(60), 0});
    if (!world)
      return world.takeError();
    auto group = (*world)->split({0});
    if (!group)
      return group.takeError();
    DeviceBuffer x = deviceFloats({1, 2, 3});
    if (llvm::Error e = (*group)->allReduceSum(x.as<float>(), 3))
      return e;
    EXPECT_EQ(hostFloats(x), (std::vector<float>{1, 2, 3}));
    DeviceBuffer out = deviceFloats({0, 0, 0});
    if (llvm::Error e =
            (*group)->allGather(x.as<float>(), {3}, out.as<float>()))
      return e;
    EXPECT_EQ(hostFloats(out), (std::vector<float>{1, 2, 3}));
    if (llvm::Error e = typedAllReduces(**group, 0, 1))
      return e;
    float host = 1;
    EXPECT_NE(errorText((*group)->allReduceSum(&host, 1)).find("host memory"),
              std::string::npos);
    return (*world)->barrier();
  }));
  EXPECT_EQ(text, "");
}

TEST(NCCLGpu, TwoRanksChannelsGroupsAndOrder) {
  MLLM_REQUIRE_GPU();
  if (gpuCount() < 2)
    GTEST_SKIP() << "needs 2 GPUs, " << gpuCount() << " visible";
  std::string text =
      errorText(runLocalWorld(2, 120s, [](Comm &boot) -> llvm::Error {
        const int me = boot.worldRank(), peer = 1 - me;
        auto world = NCCLWorld::create(boot, {std::chrono::seconds(60), me});
        if (!world)
          return world.takeError();
        NCCLWorld &w = **world;
        if (llvm::Error e = w.connectPeers({{0, 1}, {1, 0}}))
          return e;
        w.expectMessages({{me, peer, 4, 8}, {peer, me, 4, 8}});
        // Both ranks send before they receive: separate channels per direction
        // keep this from deadlocking, as MPI's asynchronous sends would.
        DeviceBuffer mine = deviceFloats({float(me), float(me) + 0.5f});
        DeviceBuffer theirs = deviceFloats({-1, -1});
        auto send = w.isend(mine.data(), 8, peer, 4);
        if (!send)
          return send.takeError();
        auto recv = w.irecv(theirs.data(), 8, peer, 4);
        if (!recv)
          return recv.takeError();
        if (llvm::Error e = (*recv)->wait())
          return e;
        if (llvm::Error e = (*send)->wait())
          return e;
        EXPECT_EQ(hostFloats(theirs),
                  (std::vector<float>{float(peer), float(peer) + 0.5f}));
        // A message past the expected order is refused before it is posted.
        EXPECT_NE(errorText(w.isend(mine.data(), 8, peer, 6).takeError())
                      .find("out of the verified per-pair order"),
                  std::string::npos);
        // Variable counts: rank 0 holds 1 float, rank 1 holds 2.
        auto group = w.split({0, 1});
        if (!group)
          return group.takeError();
        DeviceBuffer local =
            deviceFloats(me ? std::vector<float>{5, 6} : std::vector<float>{4});
        DeviceBuffer all = deviceFloats({0, 0, 0});
        if (llvm::Error e =
                (*group)->allGather(local.as<float>(), {1, 2}, all.as<float>()))
          return e;
        EXPECT_EQ(hostFloats(all), (std::vector<float>{4, 5, 6}));
        DeviceBuffer back =
            deviceFloats(me ? std::vector<float>{0, 0} : std::vector<float>{0});
        if (llvm::Error e = (*group)->reduceScatterSum(all.as<float>(), {1, 2},
                                                       back.as<float>()))
          return e;
        EXPECT_EQ(hostFloats(back),
                  me ? (std::vector<float>{10, 12}) : (std::vector<float>{8}));
        // A tensor-parallel shard's all-reduces.
        if (llvm::Error e = typedAllReduces(**group, me, 2))
          return e;
        // Context parallelism's bf16 K/V all-gather and dK/dV
        // reduce-scatter, of uneven shares.
        auto bf = [](std::vector<float> v) {
          std::vector<__nv_bfloat16> b;
          for (float x : v)
            b.push_back(__float2bfloat16(x));
          return b;
        };
        DeviceBuffer kLocal = deviceCopy(me ? bf({2, 3}) : bf({1}));
        DeviceBuffer kAll = deviceCopy(bf({0, 0, 0}));
        auto gathered = (*group)->allGatherAsync(
            kLocal.as<__nv_bfloat16>(), {1, 2}, kAll.as<__nv_bfloat16>());
        if (!gathered)
          return gathered.takeError();
        if (llvm::Error e = (*gathered)->wait())
          return e;
        std::vector<float> got;
        for (__nv_bfloat16 x : hostCopy<__nv_bfloat16>(kAll))
          got.push_back(__bfloat162float(x));
        EXPECT_EQ(got, (std::vector<float>{1, 2, 3}));
        DeviceBuffer dkLocal = deviceCopy(me ? bf({0, 0}) : bf({0}));
        auto scattered = (*group)->reduceScatterSumAsync(
            kAll.as<__nv_bfloat16>(), {1, 2}, dkLocal.as<__nv_bfloat16>());
        if (!scattered)
          return scattered.takeError();
        if (llvm::Error e = (*scattered)->wait())
          return e;
        got.clear();
        for (__nv_bfloat16 x : hostCopy<__nv_bfloat16>(dkLocal))
          got.push_back(__bfloat162float(x));
        EXPECT_EQ(got,
                  me ? (std::vector<float>{4, 6}) : (std::vector<float>{2}));
        // Inconsistent group calls are an error on both ranks, not a hang.
        std::string mismatch = errorText(
            w.split(me ? std::vector<int64_t>{1} : std::vector<int64_t>{0, 1})
                .takeError());
        EXPECT_NE(mismatch.find("asked for the group"), std::string::npos)
            << mismatch;
        return llvm::Error::success();
      }));
  EXPECT_EQ(text, "");
}

} // namespace
