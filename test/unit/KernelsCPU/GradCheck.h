//===- GradCheck.h - Finite-difference helpers for kernel tests -*- C++ -*-===//
//
// Gradient checks in double precision: for a forward f(p) and an upstream
// gradient u, the analytic gradient of L(p) = <u, f(p)> is compared with
// central differences. Inputs are seeded so failures reproduce.
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_TEST_KERNELSCPU_GRADCHECK_H
#define MLLM_TEST_KERNELSCPU_GRADCHECK_H

#include "gtest/gtest.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace mllm {
namespace test {

using Vec = std::vector<double>;

/// n values uniform in [lo, hi), reproducible from `seed`.
inline Vec randomVec(size_t n, uint64_t seed, double lo = -1.0,
                     double hi = 1.0) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  Vec v(n);
  for (double &x : v)
    x = dist(rng);
  return v;
}

inline Vec nanVec(size_t n) {
  return Vec(n, std::numeric_limits<double>::quiet_NaN());
}

inline Vec minus(const Vec &a, const Vec &b) {
  Vec r(a.size());
  for (size_t i = 0; i < a.size(); ++i)
    r[i] = a[i] - b[i];
  return r;
}

inline double dot(const Vec &a, const Vec &b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i)
    s += a[i] * b[i];
  return s;
}

/// dL/dp by central differences, L = <u, f()>, where f reads p.
template <typename F>
Vec numericGrad(Vec &p, const Vec &u, F &&f, double h = 1e-5) {
  Vec g(p.size());
  for (size_t i = 0; i < p.size(); ++i) {
    double saved = p[i];
    p[i] = saved + h;
    double plus = dot(u, f());
    p[i] = saved - h;
    double minusL = dot(u, f());
    p[i] = saved;
    g[i] = (plus - minusL) / (2 * h);
  }
  return g;
}

/// max |a - n| relative to max |n| (floored at 1e-3 so an all-tiny gradient
/// is compared absolutely). NaNs fail.
inline void expectGradNear(const Vec &analytic, const Vec &numeric,
                           double tol = 1e-6) {
  ASSERT_EQ(analytic.size(), numeric.size());
  double scale = 1e-3, err = 0;
  for (double n : numeric)
    scale = std::max(scale, std::fabs(n));
  for (size_t i = 0; i < analytic.size(); ++i) {
    double d = std::fabs(analytic[i] - numeric[i]);
    if (!(d <= err)) // also catches NaN
      err = std::isnan(d) ? std::numeric_limits<double>::infinity() : d;
  }
  EXPECT_LE(err / scale, tol) << "max abs error " << err << ", scale " << scale;
}

/// Elementwise |a - e| <= tol * max(1, |e|).
inline void expectAllNear(const Vec &actual, const Vec &expected,
                          double tol = 1e-12) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i)
    EXPECT_NEAR(actual[i], expected[i],
                tol * std::max(1.0, std::fabs(expected[i])))
        << "at index " << i;
}

} // namespace test
} // namespace mllm

#endif // MLLM_TEST_KERNELSCPU_GRADCHECK_H
