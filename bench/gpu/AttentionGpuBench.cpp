//===- AttentionGpuBench.cpp - CUDA bitfield attention figures ------------===//
//
// mllm-bench-attention-gpu: per mask family and length, the CUDA bitfield
// flash attention's forward and backward next to a dense cuBLASLt
// reference on the same shapes (full S x S scores in query chunks, the
// same predicate, nothing skipped). TFLOP/s are per *useful* FLOP: allowed
// (query, key) pairs x heads x 4d for the forward and x 10d for the
// backward (2.5x the forward, FlashAttention's convention), the same
// numerator for both paths. Without a GPU it says so and exits 0.
//
//===----------------------------------------------------------------------===//

#include "Bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace mllm;
using namespace mllm::bench;
using namespace mllm::kernels;

namespace {

std::vector<std::string> split(const std::string &s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    out.push_back(s.substr(start, comma - start));
    if (comma == std::string::npos)
      break;
    start = comma + 1;
  }
  return out;
}

bool parse(int argc, char **argv, Options &o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char *flag) -> const char * {
      size_t n = std::strlen(flag);
      return a.compare(0, n, flag) == 0 ? a.c_str() + n : nullptr;
    };
    if (const char *v = value("--sizes=")) {
      o.sizes.clear();
      for (const std::string &s : split(v))
        o.sizes.push_back(std::atoll(s.c_str()));
    } else if (const char *v = value("--families=")) {
      o.families.clear();
      for (const std::string &s : split(v)) {
        bool found = false;
        for (MaskFamily f : allFamilies())
          if (s == familyName(f)) {
            o.families.push_back(f);
            found = true;
          }
        if (!found) {
          std::fprintf(stderr, "unknown family '%s'\n", s.c_str());
          return false;
        }
      }
    } else if (const char *v = value("--heads=")) {
      o.heads = std::atoi(v);
    } else if (const char *v = value("--head-dim=")) {
      o.headDim = std::atoi(v);
    } else if (const char *v = value("--reps=")) {
      o.reps = std::max(1, std::atoi(v));
    } else if (const char *v = value("--splits=")) {
      o.splits = std::atoi(v);
    } else if (const char *v = value("--kernel=")) {
      if (std::strcmp(v, "staged") == 0) {
        o.kernel = gpu::AttentionKernel::Staged;
      } else if (std::strcmp(v, "registers") == 0) {
        o.kernel = gpu::AttentionKernel::Registers;
      } else {
        std::fprintf(stderr, "unknown kernel '%s' (staged, registers)\n", v);
        return false;
      }
    } else if (const char *v = value("--check-up-to=")) {
      o.checkUpTo = std::atoll(v);
    } else if (const char *v = value("--dense-mem-gib=")) {
      o.denseGiB = std::atof(v);
    } else if (const char *v = value("--seed=")) {
      o.seed = std::strtoull(v, nullptr, 10);
    } else if (a == "--no-dense") {
      o.dense = false;
    } else {
      std::fprintf(stderr,
                   "usage: mllm-bench-attention-gpu [--sizes=4096,...] "
                   "[--families=causal,prefix_lm,mllm_embedded,"
                   "multimodal_packed] [--heads=16] [--head-dim=64|128] "
                   "[--reps=3] [--splits=0] [--kernel=staged|registers] "
                   "[--no-dense] [--check-up-to=N] [--dense-mem-gib=4] "
                   "[--seed=N]\n");
      return false;
    }
  }
  return true;
}

} // namespace

int main(int argc, char **argv) {
  Options o;
  if (!parse(argc, argv, o))
    return 1;
  int count = 0;
  cudaError_t rc = cudaGetDeviceCount(&count);
  if (rc != cudaSuccess || count == 0) {
    std::printf("mllm-bench-attention-gpu: no CUDA device (%s); nothing to "
                "measure. Run it on a machine with an NVIDIA GPU.\n",
                rc != cudaSuccess ? cudaGetErrorString(rc) : "none visible");
    return 0;
  }
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  std::printf("%s (sm_%d%d, %d SMs), heads %d, head dim %d, bf16, %s "
              "kernel, best of %d\n\n",
              prop.name, prop.major, prop.minor, prop.multiProcessorCount,
              o.heads, o.headDim,
              o.kernel == gpu::AttentionKernel::Staged ? "staged" : "registers",
              o.reps);
  std::printf("| S | mask | skip | partial | plan ms | fwd ms | fwd TFLOP/s "
              "| bwd ms | bwd TFLOP/s | dense fwd ms | dense fwd TFLOP/s | "
              "dense bwd ms | dense bwd TFLOP/s | fwd speed-up | bwd "
              "speed-up | 1/(1-skip) | max err |\n|");
  for (int i = 0; i < 17; ++i)
    std::printf("---|");
  std::printf("\n");
  gpu::Gemm gemm;
  CHECK_OK(gemm.init());
  for (MaskFamily family : o.families)
    for (int64_t s : o.sizes)
      runCase(o, gemm, family, s);
  return 0;
}
