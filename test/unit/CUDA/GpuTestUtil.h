//===- GpuTestUtil.h - Helpers of the GPU tests -----------------*- C++ -*-===//
//
// Skipping without a device (visibly, with the reason), bf16 rounding on
// the host, device round trips and error measures. Test code only.
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_TEST_UNIT_CUDA_GPUTESTUTIL_H
#define MLLM_TEST_UNIT_CUDA_GPUTESTUTIL_H

#include "mllm/kernels/cuda/DeviceArray.h"

#include "gtest/gtest.h"

#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace mllm {
namespace cuda_test {

using kernels::cuda::DeviceArray;
using bf16 = __nv_bfloat16;

/// Whether a CUDA device is usable; `why` says why not.
inline bool gpuAvailable(std::string &why) {
  int count = 0;
  cudaError_t rc = cudaGetDeviceCount(&count);
  if (rc != cudaSuccess) {
    cudaGetLastError();
    why = cudaGetErrorString(rc);
    return false;
  }
  if (count == 0) {
    why = "the driver reports no GPU";
    return false;
  }
  return true;
}

inline int gpuCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return count;
}

} // namespace cuda_test
} // namespace mllm

/// First statement of every GPU test: CTest then reports it as skipped.
#define MLLM_REQUIRE_GPU()                                                     \
  do {                                                                         \
    std::string mllmWhy_;                                                      \
    if (!::mllm::cuda_test::gpuAvailable(mllmWhy_))                            \
      GTEST_SKIP() << "no CUDA device: " << mllmWhy_;                          \
  } while (0)

#define ASSERT_OK(expr)                                                        \
  do {                                                                         \
    ::mllm::kernels::cuda::Status mllmS_ = (expr);                             \
    ASSERT_TRUE(mllmS_.ok()) << mllmS_.message();                              \
  } while (0)

namespace mllm {
namespace cuda_test {

inline std::vector<float> randomFloats(size_t n, uint64_t seed,
                                       float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-scale, scale);
  std::vector<float> v(n);
  for (float &x : v)
    x = u(rng);
  return v;
}

inline std::vector<bf16> toBf16(const std::vector<float> &v) {
  std::vector<bf16> out(v.size());
  for (size_t i = 0; i < v.size(); ++i)
    out[i] = __float2bfloat16(v[i]);
  return out;
}

inline std::vector<float> toFloat(const std::vector<bf16> &v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i)
    out[i] = __bfloat162float(v[i]);
  return out;
}

/// The values bf16 storage holds: what both backends are given.
inline std::vector<float> roundBf16(const std::vector<float> &v) {
  return toFloat(toBf16(v));
}

template <typename T>
DeviceArray<T> upload(const std::vector<T> &host) {
  DeviceArray<T> d;
  kernels::cuda::Status s = d.upload(host, nullptr);
  EXPECT_TRUE(s.ok()) << s.message();
  return d;
}

template <typename T>
std::vector<T> download(const DeviceArray<T> &d) {
  std::vector<T> host;
  kernels::cuda::Status s = d.download(host, nullptr);
  EXPECT_TRUE(s.ok()) << s.message();
  return host;
}

/// max |a - b| / max(1, max |b|); infinities must agree, and a NaN on
/// either side is +inf (std::max would drop it).
inline double relError(const std::vector<float> &a,
                       const std::vector<float> &b) {
  if (a.size() != b.size())
    return INFINITY;
  double diff = 0, ref = 1;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) || std::isnan(b[i]))
      return INFINITY;
    if (std::isinf(b[i]) || std::isinf(a[i])) {
      if (a[i] != b[i])
        return INFINITY;
      continue;
    }
    diff = std::max(diff, std::fabs(double(a[i]) - double(b[i])));
    ref = std::max(ref, std::fabs(double(b[i])));
  }
  return diff / ref;
}

} // namespace cuda_test
} // namespace mllm

#endif // MLLM_TEST_UNIT_CUDA_GPUTESTUTIL_H
