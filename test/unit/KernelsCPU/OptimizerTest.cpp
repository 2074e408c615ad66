//===- OptimizerTest.cpp - AdamW, Adam, SGD -------------------------------===//
//
// The references here are the textbook algorithms (bias-corrected moments
// m / bc1 and v / bc2, Loshchilov & Hutter's decoupled decay), written
// independently of the kernels' PyTorch-ordered expressions; in double they
// must agree to rounding.
//
//===----------------------------------------------------------------------===//

#include "GradCheck.h"

#include "mllm/kernels/cpu/Optimizer.h"

#include <cmath>

using namespace mllm::kernels::cpu;
using namespace mllm::test;

namespace {

TEST(Optimizer, FirstAdamWStepByHand) {
  // Step 1: m = (1-b1) g, v = (1-b2) g^2, so m/bc1 = g, v/bc2 = g^2 and the
  // update is lr * g / (|g| + eps) after decay by (1 - lr wd).
  AdamConfig c{0.1, 0.9, 0.999, 1e-8, 0.5};
  Vec p = {1, -2, 3}, g = {0.5, 0.25, -4}, m(3, 0), v(3, 0);
  adamwStep(p.data(), g.data(), m.data(), v.data(), 3, 1, c);
  double decay = 1 - 0.1 * 0.5;
  expectAllNear(p, {1 * decay - 0.1 * 0.5 / (0.5 + 1e-8),
                    -2 * decay - 0.1 * 0.25 / (0.25 + 1e-8),
                    3 * decay + 0.1 * 4 / (4 + 1e-8)});
  expectAllNear(m, {0.05, 0.025, -0.4});
  expectAllNear(v, {0.001 * 0.25, 0.001 * 0.0625, 0.001 * 16});
}

TEST(Optimizer, FirstAdamStepByHand) {
  // Adam adds wd * p to the gradient: g' = [0.5 + 0.1, -1 - 0.2].
  AdamConfig c{0.01, 0.9, 0.999, 1e-8, 0.1};
  Vec p = {1, -2}, g = {0.5, -1}, m(2, 0), v(2, 0);
  adamStep(p.data(), g.data(), m.data(), v.data(), 2, 1, c);
  expectAllNear(
      p, {1 - 0.01 * 0.6 / (0.6 + 1e-8), -2 + 0.01 * 1.2 / (1.2 + 1e-8)});
  expectAllNear(g, {0.5, -1}); // the gradient is read only
}

TEST(Optimizer, SgdByHand) {
  Vec p = {1, -2}, g = {0.5, 3};
  sgdStep(p.data(), g.data(), 2, 0.1, 0.01);
  expectAllNear(p, {1 - 0.1 * (0.5 + 0.01), -2 - 0.1 * (3 - 0.02)});
  sgdStep(p.data(), g.data(), 2, 0.1);
  expectAllNear(p, {1 - 0.1 * 0.51 - 0.05, -2 - 0.1 * 2.98 - 0.3});
}

/// The textbook Adam(W) over `steps` steps with gradient grads[s].
Vec referenceAdam(Vec p, const std::vector<Vec> &grads, const AdamConfig &c,
                  bool decoupled) {
  Vec m(p.size(), 0), v(p.size(), 0);
  for (size_t s = 1; s <= grads.size(); ++s) {
    for (size_t i = 0; i < p.size(); ++i) {
      double g = grads[s - 1][i];
      if (decoupled)
        p[i] -= c.lr * c.weightDecay * p[i];
      else
        g += c.weightDecay * p[i];
      m[i] = c.beta1 * m[i] + (1 - c.beta1) * g;
      v[i] = c.beta2 * v[i] + (1 - c.beta2) * g * g;
      double mHat = m[i] / (1 - std::pow(c.beta1, s));
      double vHat = v[i] / (1 - std::pow(c.beta2, s));
      p[i] -= c.lr * mHat / (std::sqrt(vHat) + c.eps);
    }
  }
  return p;
}

TEST(Optimizer, FiveStepsMatchTextbook) {
  AdamConfig c{1e-2, 0.85, 0.995, 1e-6, 0.1};
  Vec p0 = randomVec(23, 1);
  std::vector<Vec> grads;
  for (int s = 0; s < 5; ++s)
    grads.push_back(randomVec(23, 10 + s));
  for (bool decoupled : {true, false}) {
    SCOPED_TRACE(decoupled ? "adamw" : "adam");
    Vec p = p0, m(23, 0), v(23, 0);
    for (int s = 0; s < 5; ++s) {
      if (decoupled)
        adamwStep(p.data(), grads[s].data(), m.data(), v.data(), 23, s + 1, c);
      else
        adamStep(p.data(), grads[s].data(), m.data(), v.data(), 23, s + 1, c);
    }
    expectAllNear(p, referenceAdam(p0, grads, c, decoupled), 1e-13);
  }
}

} // namespace
