//===- LinearConvTest.cpp - Linear, conv1d, depthwise, patch embed --------===//

#include "GradCheck.h"

#include "mllm/kernels/cpu/Conv.h"
#include "mllm/kernels/cpu/Gemm.h"
#include "mllm/kernels/cpu/Linear.h"
#include "mllm/kernels/cpu/PatchEmbed.h"

using namespace mllm::kernels::cpu;
using namespace mllm::test;

namespace {

TEST(Gemm, TransposesAndBeta) {
  // A = [[1 2] [3 4]], B = [[5 6] [7 8]]: A B^T = [[17 23] [39 53]],
  // A^T B = [[26 30] [38 44]]; beta = 1 adds onto C.
  Vec a = {1, 2, 3, 4}, b = {5, 6, 7, 8}, c = {1, 1, 1, 1};
  gemm(false, true, 2, 2, 2, 1.0, a.data(), 2, b.data(), 2, 1.0, c.data(), 2);
  expectAllNear(c, {18, 24, 40, 54});
  gemm(true, false, 2, 2, 2, 2.0, a.data(), 2, b.data(), 2, 0.0, c.data(), 2);
  expectAllNear(c, {52, 60, 76, 88});
  // An empty product (k = 0) leaves beta * C; beta = 0 clears NaNs.
  gemm(false, false, 2, 2, 0, 1.0, a.data(), 0, b.data(), 2, 0.5, c.data(), 2);
  expectAllNear(c, {26, 30, 38, 44});
  Vec n = nanVec(4);
  gemm(false, false, 2, 2, 0, 1.0, a.data(), 0, b.data(), 2, 0.0, n.data(), 2);
  expectAllNear(n, {0, 0, 0, 0});
}

TEST(Linear, ForwardByHand) {
  // x = [1 2], W = [[1 0] [0 1] [1 1]], b = [0.5 0 -1]: y = x W^T + b.
  Vec x = {1, 2}, w = {1, 0, 0, 1, 1, 1}, b = {0.5, 0, -1}, y(3);
  linearForward(x.data(), w.data(), b.data(), y.data(), 1, 2, 3);
  expectAllNear(y, {1.5, 2, 2});
  linearForward(x.data(), w.data(), static_cast<const double *>(nullptr),
                y.data(), 1, 2, 3);
  expectAllNear(y, {1, 2, 3});
}

TEST(Linear, Gradients) {
  struct Case {
    int64_t tokens, in, out;
    bool bias;
  };
  for (Case c : {Case{1, 1, 1, true}, Case{1, 5, 3, false},
                 Case{7, 13, 9, true}, Case{4, 8, 17, true}}) {
    SCOPED_TRACE(testing::Message()
                 << c.tokens << "x" << c.in << "->" << c.out);
    Vec x = randomVec(c.tokens * c.in, 1), w = randomVec(c.out * c.in, 2);
    Vec b = randomVec(c.out, 3), u = randomVec(c.tokens * c.out, 4);
    auto fwd = [&] {
      Vec y(c.tokens * c.out);
      linearForward(x.data(), w.data(), c.bias ? b.data() : nullptr, y.data(),
                    c.tokens, c.in, c.out);
      return y;
    };
    Vec dx = nanVec(x.size());
    linearBackwardInput(u.data(), w.data(), dx.data(), c.tokens, c.in, c.out);
    expectGradNear(dx, numericGrad(x, u, fwd));

    // Weight gradients accumulate onto what is there.
    Vec dw0 = randomVec(w.size(), 5), db0 = randomVec(b.size(), 6);
    Vec dw = dw0, db = db0;
    linearBackwardWeight(x.data(), u.data(), dw.data(), db.data(), c.tokens,
                         c.in, c.out);
    expectGradNear(minus(dw, dw0), numericGrad(w, u, fwd));
    if (c.bias)
      expectGradNear(minus(db, db0), numericGrad(b, u, fwd));
  }
}

TEST(Conv1d, ForwardByHand) {
  // One channel, W = [1 2 3], x = [1 2 3 4], zero padding 1:
  // y[t] = x[t-1] + 2 x[t] + 3 x[t+1].
  Vec x = {1, 2, 3, 4}, w = {1, 2, 3}, b = {0.5};
  Conv1dShape s{4, 1, 1, 3, 1, 1};
  ASSERT_EQ(s.outFrames(), 4);
  Vec y(4);
  conv1dForward(x.data(), w.data(), b.data(), y.data(), s);
  expectAllNear(y, {8.5, 14.5, 20.5, 11.5});
  s.stride = 2; // frames 0 and 2 of the above.
  ASSERT_EQ(s.outFrames(), 2);
  conv1dForward(x.data(), w.data(), static_cast<const double *>(nullptr),
                y.data(), s);
  expectAllNear({y[0], y[1]}, {8, 20});
}

TEST(Conv1d, ChannelsFollowTorchLayout) {
  // W[out=1, in=2, k=2] = [[a0 a1] [b0 b1]], no padding: y[t] = a0 x[t,0] +
  // a1 x[t+1,0] + b0 x[t,1] + b1 x[t+1,1]; x is token-major [frames, in].
  Vec x = {1, 10, 2, 20, 3, 30}, w = {1, 2, 3, 4};
  Conv1dShape s{3, 2, 1, 2, 1, 0};
  Vec y(2);
  conv1dForward(x.data(), w.data(), static_cast<const double *>(nullptr),
                y.data(), s);
  expectAllNear(y, {1 + 2 * 2 + 3 * 10 + 4 * 20, 2 + 2 * 3 + 3 * 20 + 4 * 30});
}

TEST(Conv1d, Gradients) {
  for (Conv1dShape s :
       {Conv1dShape{7, 3, 5, 3, 2, 1}, // Whisper conv2 shape
        Conv1dShape{6, 2, 3, 3, 1, 1}, // Whisper conv1 shape
        Conv1dShape{1, 2, 3, 1, 1, 0}, Conv1dShape{9, 3, 2, 4, 3, 2}}) {
    SCOPED_TRACE(testing::Message() << "frames " << s.frames << " k "
                                    << s.kernel << " s " << s.stride);
    Vec x = randomVec(s.frames * s.inChannels, 11);
    Vec w = randomVec(s.outChannels * s.inChannels * s.kernel, 12);
    Vec b = randomVec(s.outChannels, 13);
    Vec u = randomVec(s.outFrames() * s.outChannels, 14);
    auto fwd = [&] {
      Vec y(s.outFrames() * s.outChannels);
      conv1dForward(x.data(), w.data(), b.data(), y.data(), s);
      return y;
    };
    Vec dx = nanVec(x.size());
    conv1dBackwardInput(u.data(), w.data(), dx.data(), s);
    expectGradNear(dx, numericGrad(x, u, fwd));
    Vec dw0 = randomVec(w.size(), 15), db0 = randomVec(b.size(), 16);
    Vec dw = dw0, db = db0;
    conv1dBackwardWeight(x.data(), u.data(), dw.data(), db.data(), s);
    expectGradNear(minus(dw, dw0), numericGrad(w, u, fwd));
    expectGradNear(minus(db, db0), numericGrad(b, u, fwd));
  }
}

TEST(Conv1d, Col2imIsTheAdjointOfIm2col) {
  // <im2col(x), d> = <x, col2im(d)> for every x and d; col2im overwrites.
  for (Conv1dShape s :
       {Conv1dShape{7, 3, 5, 3, 2, 1}, Conv1dShape{9, 3, 2, 4, 3, 2},
        Conv1dShape{5, 2, 1, 5, 1, 0}, Conv1dShape{2, 1, 1, 3, 1, 2}}) {
    SCOPED_TRACE(testing::Message() << "frames " << s.frames << " k "
                                    << s.kernel << " s " << s.stride);
    Vec x = randomVec(s.frames * s.inChannels, 21);
    Vec d = randomVec(s.outFrames() * s.colsWidth(), 22);
    Vec cols = nanVec(d.size()), dx = nanVec(x.size());
    im2col1d(x.data(), cols.data(), s);
    col2im1d(d.data(), dx.data(), s);
    double lhs = 0, rhs = 0;
    for (size_t i = 0; i < d.size(); ++i)
      lhs += cols[i] * d[i];
    for (size_t i = 0; i < x.size(); ++i)
      rhs += x[i] * dx[i];
    EXPECT_NEAR(lhs, rhs, 1e-12 * (1 + std::fabs(lhs)));
  }
}

TEST(DepthwiseConv1d, ForwardByHand) {
  // Two channels, k = 3 ('same': one zero each side), W[c] = [1 2 3] and
  // [0 1 0] (identity), b = [0, 1].
  Vec x = {1, 5, 2, 6, 3, 7}, w = {1, 2, 3, 0, 1, 0}, b = {0, 1}, y(6);
  depthwiseConv1dForward(x.data(), w.data(), b.data(), y.data(), 3, 2, 3);
  expectAllNear(y, {2 + 6, 6, 1 + 4 + 9, 7, 2 + 6, 8});
  // Even kernel: PyTorch's 'same' puts (k-1)/2 = 1 zero left, 2 right.
  Vec w4 = {1, 10, 100, 1000, 0, 0, 0, 0};
  depthwiseConv1dForward(x.data(), w4.data(),
                         static_cast<const double *>(nullptr), y.data(), 3, 2,
                         4);
  // y[t] = x[t-1] + 10 x[t] + 100 x[t+1] + 1000 x[t+2] on channel 0.
  expectAllNear({y[0], y[2], y[4]}, {10 + 200 + 3000, 1 + 20 + 300, 2 + 30});
}

TEST(DepthwiseConv1d, Gradients) {
  struct Case {
    int64_t frames, channels, kernel;
  };
  for (Case c : {Case{6, 5, 3}, Case{7, 3, 4}, Case{1, 2, 5}, Case{5, 9, 1}}) {
    SCOPED_TRACE(testing::Message() << c.frames << " frames, k " << c.kernel);
    Vec x = randomVec(c.frames * c.channels, 21);
    Vec w = randomVec(c.channels * c.kernel, 22), b = randomVec(c.channels, 23);
    Vec u = randomVec(x.size(), 24);
    auto fwd = [&] {
      Vec y(x.size());
      depthwiseConv1dForward(x.data(), w.data(), b.data(), y.data(), c.frames,
                             c.channels, c.kernel);
      return y;
    };
    Vec dx = nanVec(x.size());
    depthwiseConv1dBackwardInput(u.data(), w.data(), dx.data(), c.frames,
                                 c.channels, c.kernel);
    expectGradNear(dx, numericGrad(x, u, fwd));
    Vec dw0 = randomVec(w.size(), 25), db0 = randomVec(b.size(), 26);
    Vec dw = dw0, db = db0;
    depthwiseConv1dBackwardWeight(x.data(), u.data(), dw.data(), db.data(),
                                  c.frames, c.channels, c.kernel);
    expectGradNear(minus(dw, dw0), numericGrad(w, u, fwd));
    expectGradNear(minus(db, db0), numericGrad(b, u, fwd));
  }
}

TEST(PatchEmbed, PatchOrder) {
  // One channel, one frame, a 4 x 4 image holding its own pixel index, 2 x 2
  // patches: row-major patches, row-major pixels within each.
  PatchShape s{1, 1, 4, 4, 1, 2};
  ASSERT_EQ(s.numPatches(), 4);
  ASSERT_EQ(s.patchDim(), 4);
  Vec image(16), patches(16);
  for (int i = 0; i < 16; ++i)
    image[i] = i;
  patchify(image.data(), patches.data(), s);
  expectAllNear(patches,
                {0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15});
}

/// A direct Conv3d with stride = kernel, as PyTorch defines it, for the
/// forward check: out[n, o] = b[o] + sum W[o, c, dt, dy, dx] * image[...].
Vec directConv3d(const Vec &image, const Vec &w, const Vec &b,
                 const PatchShape &s, int64_t hidden) {
  int64_t p = s.patch, tp = s.temporalPatch;
  int64_t nt = s.frames / tp, nh = s.height / p, nw = s.width / p;
  Vec out;
  for (int64_t ti = 0; ti < nt; ++ti)
    for (int64_t hi = 0; hi < nh; ++hi)
      for (int64_t wi = 0; wi < nw; ++wi)
        for (int64_t o = 0; o < hidden; ++o) {
          double acc = b[o];
          for (int64_t c = 0; c < s.channels; ++c)
            for (int64_t dt = 0; dt < tp; ++dt)
              for (int64_t dy = 0; dy < p; ++dy)
                for (int64_t dx = 0; dx < p; ++dx)
                  acc +=
                      w[(((o * s.channels + c) * tp + dt) * p + dy) * p + dx] *
                      image[((c * s.frames + ti * tp + dt) * s.height + hi * p +
                             dy) *
                                s.width +
                            wi * p + dx];
          out.push_back(acc);
        }
  return out;
}

TEST(PatchEmbed, MatchesDirectConv3d) {
  PatchShape s{3, 4, 4, 6, 2, 2};
  int64_t hidden = 5;
  Vec image = randomVec(3 * 4 * 4 * 6, 31);
  Vec w = randomVec(hidden * s.patchDim(), 32), b = randomVec(hidden, 33);
  Vec patches(s.numPatches() * s.patchDim()), y(s.numPatches() * hidden);
  patchEmbedForward(image.data(), w.data(), b.data(), patches.data(), y.data(),
                    s, hidden);
  expectAllNear(y, directConv3d(image, w, b, s, hidden));
}

TEST(PatchEmbed, WeightGradients) {
  PatchShape s{2, 2, 4, 6, 2, 2}; // 6 patches of 16 values
  int64_t hidden = 5;
  Vec image = randomVec(2 * 2 * 4 * 6, 41);
  Vec w = randomVec(hidden * s.patchDim(), 42), b = randomVec(hidden, 43);
  Vec u = randomVec(s.numPatches() * hidden, 44);
  Vec patches(s.numPatches() * s.patchDim());
  auto fwd = [&] {
    Vec y(s.numPatches() * hidden);
    patchEmbedForward(image.data(), w.data(), b.data(), patches.data(),
                      y.data(), s, hidden);
    return y;
  };
  fwd();
  Vec dw0 = randomVec(w.size(), 45), db0 = randomVec(b.size(), 46);
  Vec dw = dw0, db = db0;
  patchEmbedBackwardWeight(patches.data(), u.data(), dw.data(), db.data(), s,
                           hidden);
  expectGradNear(minus(dw, dw0), numericGrad(w, u, fwd));
  expectGradNear(minus(db, db0), numericGrad(b, u, fwd));
}

} // namespace
