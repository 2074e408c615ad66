//===- Optimizer.cpp - AdamW, Adam and SGD parameter updates --------------===//
//
// The expressions follow torch/optim/{adamw,adam,sgd}.py (1.13, single
// tensor) operation by operation: Python computes the scalars in double and
// each tensor op rounds them to T, and addcmul/addcdiv evaluate
// `self + value * t1 * t2` and `self + value * t1 / t2` left to right. The
// remaining difference is FMA contraction inside PyTorch's vectorised
// kernels, a rounding or two per step.
//
//===----------------------------------------------------------------------===//

#include "mllm/kernels/cpu/Optimizer.h"
#include "mllm/kernels/cpu/Threads.h"

#include <cassert>
#include <cmath>

namespace mllm {
namespace kernels {
namespace cpu {

namespace {
/// The per-step scalars, rounded to T the way PyTorch's scalar arguments are.
template <typename T>
struct AdamScalars {
  T beta1, oneMinusBeta1, beta2, oneMinusBeta2, negStepSize, bc2Sqrt, eps;

  AdamScalars(const AdamConfig &c, int64_t step) {
    assert(step >= 1 && "optimizer steps are 1-based");
    double s = static_cast<double>(step);
    double bc1 = 1 - std::pow(c.beta1, s);
    double bc2 = 1 - std::pow(c.beta2, s);
    beta1 = static_cast<T>(c.beta1);
    oneMinusBeta1 = static_cast<T>(1 - c.beta1);
    beta2 = static_cast<T>(c.beta2);
    oneMinusBeta2 = static_cast<T>(1 - c.beta2);
    negStepSize = static_cast<T>(-(c.lr / bc1));
    bc2Sqrt = static_cast<T>(std::sqrt(bc2));
    eps = static_cast<T>(c.eps);
  }

  /// The shared moment update and parameter step for one element.
  void update(T &p, T g, T &m, T &v) const {
    m = m * beta1;
    m = m + oneMinusBeta1 * g;
    v = v * beta2;
    v = v + oneMinusBeta2 * g * g;
    T denom = std::sqrt(v) / bc2Sqrt + eps;
    p = p + negStepSize * m / denom;
  }
};
} // namespace

template <typename T>
void adamwStep(T *param, const T *grad, T *expAvg, T *expAvgSq, int64_t n,
               int64_t step, const AdamConfig &config) {
  AdamScalars<T> k(config, step);
  T decay = static_cast<T>(1 - config.lr * config.weightDecay);
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) {
    T p = param[i] * decay;
    k.update(p, grad[i], expAvg[i], expAvgSq[i]);
    param[i] = p;
  }
}

template <typename T>
void adamStep(T *param, const T *grad, T *expAvg, T *expAvgSq, int64_t n,
              int64_t step, const AdamConfig &config) {
  AdamScalars<T> k(config, step);
  T wd = static_cast<T>(config.weightDecay);
  bool decay = config.weightDecay != 0;
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) {
    T g = decay ? grad[i] + wd * param[i] : grad[i];
    k.update(param[i], g, expAvg[i], expAvgSq[i]);
  }
}

template <typename T>
void sgdStep(T *param, const T *grad, int64_t n, double lr,
             double weightDecay) {
  T negLr = static_cast<T>(-lr), wd = static_cast<T>(weightDecay);
  bool decay = weightDecay != 0;
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) {
    T g = decay ? grad[i] + wd * param[i] : grad[i];
    param[i] = param[i] + negLr * g;
  }
}

#define MLLM_INSTANTIATE(T)                                                    \
  template void adamwStep(T *, const T *, T *, T *, int64_t, int64_t,          \
                          const AdamConfig &);                                 \
  template void adamStep(T *, const T *, T *, T *, int64_t, int64_t,           \
                         const AdamConfig &);                                  \
  template void sgdStep(T *, const T *, int64_t, double, double);
MLLM_INSTANTIATE(float)
MLLM_INSTANTIATE(double)

} // namespace cpu
} // namespace kernels
} // namespace mllm
