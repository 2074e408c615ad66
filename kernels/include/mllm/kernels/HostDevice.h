//===- HostDevice.h - Code shared by host and CUDA device -------*- C++ -*-===//
//
// The mask predicate, the tile summaries and the online-softmax pieces are
// written once and compiled twice: by the host compiler for the CPU kernels
// and the CP balancer, and by nvcc for the CUDA kernels. MLLM_HD marks such
// functions; for a host compiler it expands to nothing, so the CPU build is
// unchanged. MLLM_DEVICE_PASS is 1 while nvcc compiles device code, for the
// few spots that must spell a builtin differently there (a popcount).
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_KERNELS_HOSTDEVICE_H
#define MLLM_KERNELS_HOSTDEVICE_H

#if defined(__CUDACC__)
#define MLLM_HD __host__ __device__
#else
#define MLLM_HD
#endif

#if defined(__CUDA_ARCH__)
#define MLLM_DEVICE_PASS 1
#else
#define MLLM_DEVICE_PASS 0
#endif

#endif // MLLM_KERNELS_HOSTDEVICE_H
