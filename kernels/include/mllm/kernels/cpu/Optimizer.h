//===- Optimizer.h - AdamW, Adam and SGD parameter updates ------*- C++ -*-===//
//
// One optimizer step over a flat buffer of n parameters, elementwise, with
// the exact order of operations of PyTorch 1.13's single-tensor (foreach =
// False) torch.optim implementations, so results match to rounding. With
// g = grad, bc1 = 1 - beta1^step, bc2 = 1 - beta2^step (step is 1-based,
// scalars computed in double and rounded to T as PyTorch does):
//
//   adamwStep:  p  = p * (1 - lr * wd)                 (decoupled decay)
//               m  = m * beta1 + (1 - beta1) * g
//               v  = v * beta2 + (1 - beta2) * g * g
//               p  = p + (-lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
//   adamStep:   g' = g + wd * p                        (L2, into the gradient)
//               then m, v, p as AdamW without the decay line
//   sgdStep:    p  = p + (-lr) * (g + wd * p)          (momentum 0)
//
// m and v (exp_avg, exp_avg_sq) start as zeros and belong to the caller. The
// gradient buffer is read only.
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_KERNELS_CPU_OPTIMIZER_H
#define MLLM_KERNELS_CPU_OPTIMIZER_H

#include <cstdint>

namespace mllm {
namespace kernels {
namespace cpu {

/// Hyper-parameters of Adam and AdamW. The defaults are PyTorch's, except
/// weightDecay: torch.optim.AdamW defaults to 1e-2, Adam to 0; set it.
struct AdamConfig {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weightDecay = 0.0;
};

template <typename T>
void adamwStep(T *param, const T *grad, T *expAvg, T *expAvgSq, int64_t n,
               int64_t step, const AdamConfig &config);

template <typename T>
void adamStep(T *param, const T *grad, T *expAvg, T *expAvgSq, int64_t n,
              int64_t step, const AdamConfig &config);

template <typename T>
void sgdStep(T *param, const T *grad, int64_t n, double lr,
             double weightDecay = 0.0);

} // namespace cpu
} // namespace kernels
} // namespace mllm

#endif // MLLM_KERNELS_CPU_OPTIMIZER_H
