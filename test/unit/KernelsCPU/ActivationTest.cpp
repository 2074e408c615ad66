//===- ActivationTest.cpp - Plain and gated activations -------------------===//

#include "GradCheck.h"

#include "mllm/kernels/cpu/Activation.h"

#include <cmath>

using namespace mllm::kernels::cpu;
using namespace mllm::test;

namespace {

using UnaryFn = void (*)(const double *, double *, int64_t);
using UnaryGrad = void (*)(const double *, const double *, double *, int64_t);
using GatedFn = void (*)(const double *, double *, int64_t, int64_t);
using GatedGrad = void (*)(const double *, const double *, double *, int64_t,
                           int64_t);

Vec applyUnary(UnaryFn f, Vec x) {
  Vec y(x.size());
  f(x.data(), y.data(), static_cast<int64_t>(x.size()));
  return y;
}

TEST(Activation, ForwardByHand) {
  // Phi(1) = 0.8413447460685429, Phi(-1) = 0.15865525393145707.
  expectAllNear(applyUnary(geluForward<double>, {0, 1, -1}),
                {0, 0.8413447460685429, -0.15865525393145707}, 1e-15);
  double k = std::sqrt(2 / M_PI), inner = k * (1 + 0.044715);
  expectAllNear(
      applyUnary(geluTanhForward<double>, {0, 1, -1}),
      {0, 0.5 * (1 + std::tanh(inner)), -0.5 * (1 - std::tanh(inner))});
  expectAllNear(applyUnary(reluForward<double>, {-2, 0, 3}), {0, 0, 3});
  // silu(1) = 1 / (1 + e^-1).
  expectAllNear(applyUnary(siluForward<double>, {0, 1, -1}),
                {0, 0.7310585786300049, -0.2689414213699951});
  // tanh GELU tracks exact GELU to ~1e-3 near 1.
  EXPECT_NEAR(applyUnary(geluTanhForward<double>, {1})[0], 0.8413447, 1e-3);
}

TEST(Activation, ReluGradientIsZeroAtZero) {
  Vec x = {-1, 0, 2}, dy = {5, 5, 5}, dx(3);
  reluBackward(x.data(), dy.data(), dx.data(), 3);
  expectAllNear(dx, {0, 0, 5});
}

TEST(Activation, UnaryGradients) {
  struct Case {
    const char *name;
    UnaryFn fwd;
    UnaryGrad bwd;
  };
  for (Case c :
       {Case{"gelu", geluForward<double>, geluBackward<double>},
        Case{"geluTanh", geluTanhForward<double>, geluTanhBackward<double>},
        Case{"relu", reluForward<double>, reluBackward<double>},
        Case{"silu", siluForward<double>, siluBackward<double>}}) {
    SCOPED_TRACE(c.name);
    Vec x = randomVec(37, 1, -4, 4);
    for (double &v : x) // keep away from relu's kink
      if (std::fabs(v) < 0.01)
        v += 0.05;
    Vec u = randomVec(x.size(), 2);
    auto fwd = [&] { return applyUnary(c.fwd, x); };
    Vec dx = nanVec(x.size());
    c.bwd(x.data(), u.data(), dx.data(), static_cast<int64_t>(x.size()));
    expectGradNear(dx, numericGrad(x, u, fwd));
    // In place: dx may alias dy.
    Vec inPlace = u;
    c.bwd(x.data(), inPlace.data(), inPlace.data(),
          static_cast<int64_t>(x.size()));
    expectAllNear(inPlace, dx, 0);
  }
}

TEST(Activation, GatedForwardByHand) {
  // One token, ffn 2, in = [gate0 gate1 | up0 up1] (GLU: [a0 a1 | b0 b1]).
  Vec in = {1, -1, 2, 3}, out(2);
  swigluForward(in.data(), out.data(), 1, 2);
  expectAllNear(out, {0.7310585786300049 * 2, -0.2689414213699951 * 3});
  gegluForward(in.data(), out.data(), 1, 2);
  expectAllNear(out, {0.8413447460685429 * 2, -0.15865525393145707 * 3});
  Vec glu = {2, 3, 0, 1e9}; // sigmoid(0) = 0.5, sigmoid(1e9) = 1
  gluForward(glu.data(), out.data(), 1, 2);
  expectAllNear(out, {1, 3});
}

TEST(Activation, GatedGradients) {
  struct Case {
    const char *name;
    GatedFn fwd;
    GatedGrad bwd;
  };
  for (Case c : {Case{"swiglu", swigluForward<double>, swigluBackward<double>},
                 Case{"geglu", gegluForward<double>, gegluBackward<double>},
                 Case{"glu", gluForward<double>, gluBackward<double>}}) {
    for (std::pair<int64_t, int64_t> size :
         {std::pair<int64_t, int64_t>{1, 1}, {3, 7}, {2, 12}}) {
      int64_t tokens = size.first, ffn = size.second;
      SCOPED_TRACE(testing::Message() << c.name << " " << tokens << "x" << ffn);
      Vec in = randomVec(tokens * 2 * ffn, 3, -3, 3);
      Vec u = randomVec(tokens * ffn, 4);
      auto fwd = [&] {
        Vec out(tokens * ffn);
        c.fwd(in.data(), out.data(), tokens, ffn);
        return out;
      };
      Vec din = nanVec(in.size());
      c.bwd(in.data(), u.data(), din.data(), tokens, ffn);
      expectGradNear(din, numericGrad(in, u, fwd));
    }
  }
}

TEST(Activation, FloatMatchesDouble) {
  Vec x = randomVec(64, 5, -5, 5);
  std::vector<float> xf(x.begin(), x.end()), yf(64);
  geluForward(xf.data(), yf.data(), 64);
  Vec yd = applyUnary(geluForward<double>, Vec(xf.begin(), xf.end()));
  for (int i = 0; i < 64; ++i)
    EXPECT_NEAR(yf[i], yd[i], 1e-6 * std::max(1.0, std::fabs(yd[i])));
}

} // namespace
