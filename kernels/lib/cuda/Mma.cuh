//===- Mma.cuh - Warp-level tensor-core and async-copy primitives -*- CUDA
//-*-===//
//
// Not API: thin wrappers over the PTX instructions the register-tile
// attention kernels use (sm_80 and up): ldmatrix, mma.sync m16n8k16 in bf16
// with fp32 accumulation, and cp.async. The lane layouts of their operands
// are in mllm/kernels/cuda/MmaLayout.h, tested on the CPU.
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_KERNELS_LIB_CUDA_MMA_CUH
#define MLLM_KERNELS_LIB_CUDA_MMA_CUH

#include <cuda_bf16.h>

#include <cstdint>

namespace mllm {
namespace kernels {
namespace cuda {
namespace dev {

__device__ inline uint32_t sharedAddress(const void *p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

/// Four 8 x 8 bf16 matrices from shared memory: lanes 8j..8j+7 give the
/// row addresses of matrix j, and every lane receives (row g, columns 2t,
/// 2t + 1) of matrix j in register j.
__device__ inline void ldmatrixX4(uint32_t (&r)[4], const void *rowAddress) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, "
               "[%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(sharedAddress(rowAddress)));
}

/// As ldmatrixX4, transposed: every lane receives (rows 2t, 2t + 1,
/// column g) of matrix j.
__device__ inline void ldmatrixX4Trans(uint32_t (&r)[4],
                                       const void *rowAddress) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, "
               "%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(sharedAddress(rowAddress)));
}

/// c += a b on a 16 x 8 x 16 tile, bf16 in, fp32 accumulate.
__device__ inline void mma16816(float (&c)[4], const uint32_t (&a)[4],
                                uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
               "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
               "{%0, %1, %2, %3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/// Two floats as one register of bf16 (`lo` in the low half: the lower
/// column of a fragment pair).
__device__ inline uint32_t packBf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t *>(&v);
}

/// 16 bytes from global to shared memory without a register trip; zeros
/// when `valid` is false (`src` must still be a mapped address).
__device__ inline void cpAsync16(void *dst, const void *src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(
                   sharedAddress(dst)),
               "l"(src), "r"(valid ? 16 : 0));
}

/// 4 or 8 bytes (a token's segment, word or position; a row's LSE), cached
/// in L1 as well; zeros when `valid` is false.
template <int Bytes>
__device__ inline void cpAsyncSmall(void *dst, const void *src, bool valid) {
  static_assert(Bytes == 4 || Bytes == 8, "cp.async.ca copies 4, 8 or 16");
  asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(
                   sharedAddress(dst)),
               "l"(src), "n"(Bytes), "r"(valid ? Bytes : 0));
}

__device__ inline void cpAsyncCommit() {
  asm volatile("cp.async.commit_group;\n" ::);
}

/// Waits until at most N committed groups of this thread are in flight.
template <int N>
__device__ inline void cpAsyncWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

} // namespace dev
} // namespace cuda
} // namespace kernels
} // namespace mllm

#endif // MLLM_KERNELS_LIB_CUDA_MMA_CUH
