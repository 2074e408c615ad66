//===- NormTest.cpp - LayerNorm and RMSNorm -------------------------------===//

#include "GradCheck.h"

#include "mllm/kernels/cpu/Norm.h"

#include <cmath>

using namespace mllm::kernels::cpu;
using namespace mllm::test;

namespace {

TEST(LayerNorm, ForwardByHand) {
  // x = [1 2 3 4]: mean 2.5, biased variance 1.25.
  double eps = 1e-5, rs = 1 / std::sqrt(1.25 + eps);
  Vec x = {1, 2, 3, 4}, w = {1, 2, 1, 1}, b = {0, 0, 1, 0}, y(4), mean(1),
      rstd(1);
  layerNormForward(x.data(), w.data(), b.data(), y.data(), mean.data(),
                   rstd.data(), 1, 4, eps);
  expectAllNear(y, {-1.5 * rs, -0.5 * rs * 2, 0.5 * rs + 1, 1.5 * rs});
  expectAllNear(mean, {2.5});
  expectAllNear(rstd, {rs});
  Vec m2(1), r2(1);
  layerNormStats(x.data(), m2.data(), r2.data(), 1, 4, eps);
  expectAllNear(m2, mean);
  expectAllNear(r2, rstd);
}

TEST(LayerNorm, Gradients) {
  struct Case {
    int64_t tokens, dim;
    bool affine;
  };
  double eps = 1e-5;
  for (Case c : {Case{1, 3, true}, Case{5, 13, true}, Case{3, 8, false},
                 Case{2, 33, true}}) {
    SCOPED_TRACE(testing::Message() << c.tokens << "x" << c.dim);
    Vec x = randomVec(c.tokens * c.dim, 1, -2, 2);
    Vec w = randomVec(c.dim, 2, 0.5, 1.5), b = randomVec(c.dim, 3);
    Vec u = randomVec(x.size(), 4);
    const double *wp = c.affine ? w.data() : nullptr;
    const double *bp = c.affine ? b.data() : nullptr;
    auto fwd = [&] {
      Vec y(x.size());
      layerNormForward(x.data(), wp, bp, y.data(),
                       static_cast<double *>(nullptr),
                       static_cast<double *>(nullptr), c.tokens, c.dim, eps);
      return y;
    };
    Vec y(x.size()), mean(c.tokens), rstd(c.tokens);
    layerNormForward(x.data(), wp, bp, y.data(), mean.data(), rstd.data(),
                     c.tokens, c.dim, eps);
    Vec dx = nanVec(x.size());
    layerNormBackwardInput(u.data(), x.data(), wp, mean.data(), rstd.data(),
                           dx.data(), c.tokens, c.dim);
    expectGradNear(dx, numericGrad(x, u, fwd));
    if (!c.affine)
      continue;
    Vec dw0 = randomVec(w.size(), 5), db0 = randomVec(b.size(), 6);
    Vec dw = dw0, db = db0;
    layerNormBackwardWeight(u.data(), x.data(), mean.data(), rstd.data(),
                            dw.data(), db.data(), c.tokens, c.dim);
    expectGradNear(minus(dw, dw0), numericGrad(w, u, fwd));
    expectGradNear(minus(db, db0), numericGrad(b, u, fwd));
  }
}

TEST(RmsNorm, ForwardByHand) {
  // x = [3 4]: mean of squares 12.5.
  double eps = 1e-6, rs = 1 / std::sqrt(12.5 + eps);
  Vec x = {3, 4}, w = {2, 0.5}, y(2), rstd(1);
  rmsNormForward(x.data(), w.data(), y.data(), rstd.data(), 1, 2, eps);
  expectAllNear(y, {6 * rs, 2 * rs});
  expectAllNear(rstd, {rs});
  Vec r2(1);
  rmsNormStats(x.data(), r2.data(), 1, 2, eps);
  expectAllNear(r2, rstd);
}

TEST(RmsNorm, Gradients) {
  double eps = 1e-6;
  for (std::pair<int64_t, int64_t> size :
       {std::pair<int64_t, int64_t>{1, 1}, {4, 7}, {3, 16}, {2, 41}}) {
    int64_t tokens = size.first, dim = size.second;
    SCOPED_TRACE(testing::Message() << tokens << "x" << dim);
    Vec x = randomVec(tokens * dim, 7, -2, 2);
    Vec w = randomVec(dim, 8, 0.5, 1.5), u = randomVec(x.size(), 9);
    auto fwd = [&] {
      Vec y(x.size());
      rmsNormForward(x.data(), w.data(), y.data(),
                     static_cast<double *>(nullptr), tokens, dim, eps);
      return y;
    };
    Vec y(x.size()), rstd(tokens);
    rmsNormForward(x.data(), w.data(), y.data(), rstd.data(), tokens, dim, eps);
    Vec dx = nanVec(x.size());
    rmsNormBackwardInput(u.data(), x.data(), w.data(), rstd.data(), dx.data(),
                         tokens, dim);
    expectGradNear(dx, numericGrad(x, u, fwd));
    Vec dw0 = randomVec(w.size(), 10), dw = dw0;
    rmsNormBackwardWeight(u.data(), x.data(), rstd.data(), dw.data(), tokens,
                          dim);
    expectGradNear(minus(dw, dw0), numericGrad(w, u, fwd));
  }
}

} // namespace
