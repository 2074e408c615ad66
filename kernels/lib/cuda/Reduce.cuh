//===- Reduce.cuh - Warp and block reductions in a fixed order --*- CUDA
//-*-===//
//
// Butterfly shuffles and a fixed two-level block reduction: the order of
// the additions depends only on the thread layout, never on timing, so the
// kernels that use them are bitwise reproducible (no float atomics).
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_KERNELS_LIB_CUDA_REDUCE_CUH
#define MLLM_KERNELS_LIB_CUDA_REDUCE_CUH

namespace mllm {
namespace kernels {
namespace cuda {
namespace dev {

template <typename T>
__device__ inline T warpSum(T v) {
  for (int o = 16; o > 0; o /= 2)
    v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ inline float warpMax(float v) {
  for (int o = 16; o > 0; o /= 2)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

/// Sum (or max) over the block; every thread gets the result. `scratch`
/// holds 32 values in shared memory; blockDim.x is a multiple of 32.
template <typename T, bool kMax = false>
__device__ inline T warpReduce(T v) {
  if constexpr (kMax)
    return warpMax(v);
  else
    return warpSum(v);
}

template <typename T, bool kMax = false>
__device__ inline T blockReduce(T v, T *scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int warps = blockDim.x / 32;
  v = warpReduce<T, kMax>(v);
  __syncthreads(); // scratch may still be read by a previous call
  if (lane == 0)
    scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    T identity = kMax ? -INFINITY : T(0);
    T w = lane < warps ? scratch[lane] : identity;
    w = warpReduce<T, kMax>(w);
    if (lane == 0)
      scratch[0] = w;
  }
  __syncthreads();
  return scratch[0];
}

/// out[i] += the sum over the chunks, in order, of part[chunk * n + i]: the
/// fixed-order second pass of the weight gradients' chunked sums (Norm.cu).
__global__ void sumChunks(const float *part, int64_t chunks, int64_t n,
                          float *out);

} // namespace dev
} // namespace cuda
} // namespace kernels
} // namespace mllm

#endif // MLLM_KERNELS_LIB_CUDA_REDUCE_CUH
