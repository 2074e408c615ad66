//===- KernelsGpuTest.cpp - CUDA layer kernels against the CPU ------------===//
//
// Every kernel of kernels/cuda/Layers.h and the cuBLASLt GEMM on random
// bf16 inputs, against the CPU kernel run in fp32 on the same (bf16
// rounded) values: bf16 outputs within 2e-2 of max(1, max |ref|), fp32
// outputs within 1e-3, AdamW bit for bit. The vision kernels (ReLU, SiLU,
// row vectors, row copies, patchify) and the audio ones (im2col1d,
// col2im1d, the depthwise convolution, the GLU) are checked against
// references written here, at odd sizes. Skipped without a GPU.
//
//===----------------------------------------------------------------------===//

#include "GpuTestUtil.h"

#include "mllm/kernels/cpu/Activation.h"
#include "mllm/kernels/cpu/Conv.h"
#include "mllm/kernels/cpu/Embedding.h"
#include "mllm/kernels/cpu/Gemm.h"
#include "mllm/kernels/cpu/Norm.h"
#include "mllm/kernels/cpu/PatchEmbed.h"
#include "mllm/kernels/cpu/Rope.h"
#include "mllm/kernels/cuda/Gemm.h"
#include "mllm/kernels/cuda/Layers.h"

using namespace mllm;
using namespace mllm::cuda_test;
namespace cpu = mllm::kernels::cpu;
namespace gpu = mllm::kernels::cuda;

namespace {

constexpr double kBf16Tol = 2e-2, kF32Tol = 1e-3;

/// A bf16 tensor on the device and the float values it holds.
struct Tensor {
  std::vector<float> host;
  DeviceArray<bf16> dev;
  Tensor(size_t n, uint64_t seed, float scale = 1.0f)
      : host(roundBf16(randomFloats(n, seed, scale))),
        dev(upload(toBf16(host))) {}
  explicit Tensor(size_t n) : host(n, 0.0f), dev(upload(toBf16(host))) {}
  std::vector<float> read() const { return toFloat(download(dev)); }
};

TEST(KernelsGpu, RmsNorm) {
  MLLM_REQUIRE_GPU();
  const int64_t t = 37, d = 320;
  Tensor x(t * d, 1), w(d, 2), dy(t * d, 3), y(t * d), dx(t * d);
  DeviceArray<float> rstd = upload(std::vector<float>(t));
  DeviceArray<float> dw = upload(std::vector<float>(d, 0.5f));
  ASSERT_OK(gpu::rmsNormForward(x.dev.data(), w.dev.data(), y.dev.data(),
                                rstd.data(), t, d, 1e-5f, nullptr));
  ASSERT_OK(gpu::rmsNormBackward(dy.dev.data(), x.dev.data(), w.dev.data(),
                                 rstd.data(), dx.dev.data(), dw.data(), t, d,
                                 nullptr));
  std::vector<float> ry(t * d), rr(t), rdx(t * d), rdw(d, 0.5f);
  cpu::rmsNormForward(x.host.data(), w.host.data(), ry.data(), rr.data(), t, d,
                      1e-5);
  cpu::rmsNormBackwardInput(dy.host.data(), x.host.data(), w.host.data(),
                            rr.data(), rdx.data(), t, d);
  cpu::rmsNormBackwardWeight(dy.host.data(), x.host.data(), rr.data(),
                             rdw.data(), t, d);
  EXPECT_LT(relError(y.read(), ry), kBf16Tol);
  EXPECT_LT(relError(download(rstd), rr), kF32Tol);
  EXPECT_LT(relError(dx.read(), rdx), kBf16Tol);
  EXPECT_LT(relError(download(dw), rdw), kF32Tol);
}

TEST(KernelsGpu, LayerNormDeterministic) {
  MLLM_REQUIRE_GPU();
  const int64_t t = 300, d = 96;
  Tensor x(t * d, 4, 3.0f), w(d, 5), b(d, 6), dy(t * d, 7), y(t * d), dx(t * d);
  DeviceArray<float> mean = upload(std::vector<float>(t)),
                     rstd = upload(std::vector<float>(t));
  ASSERT_OK(gpu::layerNormForward(x.dev.data(), w.dev.data(), b.dev.data(),
                                  y.dev.data(), mean.data(), rstd.data(), t, d,
                                  1e-5f, nullptr));
  std::vector<float> gdw[2], gdb[2];
  for (int run = 0; run < 2; ++run) {
    DeviceArray<float> dw = upload(std::vector<float>(d)),
                       db = upload(std::vector<float>(d));
    ASSERT_OK(gpu::layerNormBackward(dy.dev.data(), x.dev.data(), w.dev.data(),
                                     mean.data(), rstd.data(), dx.dev.data(),
                                     dw.data(), db.data(), t, d, nullptr));
    gdw[run] = download(dw);
    gdb[run] = download(db);
  }
  EXPECT_EQ(gdw[0], gdw[1]); // fixed-order sums: same bits
  std::vector<float> ry(t * d), rm(t), rr(t), rdx(t * d), rdw(d), rdb(d);
  cpu::layerNormForward(x.host.data(), w.host.data(), b.host.data(), ry.data(),
                        rm.data(), rr.data(), t, d, 1e-5);
  cpu::layerNormBackwardInput(dy.host.data(), x.host.data(), w.host.data(),
                              rm.data(), rr.data(), rdx.data(), t, d);
  cpu::layerNormBackwardWeight(dy.host.data(), x.host.data(), rm.data(),
                               rr.data(), rdw.data(), rdb.data(), t, d);
  EXPECT_LT(relError(y.read(), ry), kBf16Tol);
  EXPECT_LT(relError(dx.read(), rdx), kBf16Tol);
  EXPECT_LT(relError(gdw[0], rdw), kF32Tol);
  EXPECT_LT(relError(gdb[0], rdb), kF32Tol);
}

TEST(KernelsGpu, RopeAtLongPositions) {
  MLLM_REQUIRE_GPU();
  const int64_t t = 19, h = 3, d = 64;
  std::vector<int64_t> pos(t);
  for (int64_t i = 0; i < t; ++i)
    pos[i] = i * 7001; // up to ~126k
  DeviceArray<int64_t> p = upload(pos);
  Tensor x(t * h * d, 8), y(t * h * d), back(t * h * d);
  ASSERT_OK(gpu::ropeForward(x.dev.data(), y.dev.data(), p.data(), t, h, d,
                             500000.0, nullptr));
  ASSERT_OK(gpu::ropeBackward(y.dev.data(), back.dev.data(), p.data(), t, h, d,
                              500000.0, nullptr));
  std::vector<float> ry(t * h * d);
  cpu::ropeForward(x.host.data(), ry.data(), pos.data(), t, h, d, 500000.0);
  EXPECT_LT(relError(y.read(), ry), kBf16Tol);
  EXPECT_LT(relError(back.read(), x.host), kBf16Tol); // a rotation inverts
}

TEST(KernelsGpu, Activations) {
  MLLM_REQUIRE_GPU();
  const int64_t t = 33, f = 130;
  Tensor in(t * 2 * f, 9, 4.0f), dout(t * f, 10), out(t * f), din(t * 2 * f);
  std::vector<float> ro(t * f), rdin(t * 2 * f);
  ASSERT_OK(gpu::swigluForward(in.dev.data(), out.dev.data(), t, f, nullptr));
  ASSERT_OK(gpu::swigluBackward(in.dev.data(), dout.dev.data(), din.dev.data(),
                                t, f, nullptr));
  cpu::swigluForward(in.host.data(), ro.data(), t, f);
  cpu::swigluBackward(in.host.data(), dout.host.data(), rdin.data(), t, f);
  EXPECT_LT(relError(out.read(), ro), kBf16Tol);
  EXPECT_LT(relError(din.read(), rdin), kBf16Tol);
  ASSERT_OK(gpu::gegluForward(in.dev.data(), out.dev.data(), t, f, nullptr));
  ASSERT_OK(gpu::gegluBackward(in.dev.data(), dout.dev.data(), din.dev.data(),
                               t, f, nullptr));
  cpu::gegluForward(in.host.data(), ro.data(), t, f);
  cpu::gegluBackward(in.host.data(), dout.host.data(), rdin.data(), t, f);
  EXPECT_LT(relError(out.read(), ro), kBf16Tol);
  EXPECT_LT(relError(din.read(), rdin), kBf16Tol);
  const int64_t n = t * f;
  ASSERT_OK(gpu::geluForward(in.dev.data(), out.dev.data(), n, nullptr));
  ASSERT_OK(gpu::geluBackward(in.dev.data(), dout.dev.data(), din.dev.data(), n,
                              nullptr));
  std::vector<float> rdx(n);
  cpu::geluForward(in.host.data(), ro.data(), n);
  cpu::geluBackward(in.host.data(), dout.host.data(), rdx.data(), n);
  EXPECT_LT(relError(out.read(), ro), kBf16Tol);
  std::vector<float> gdx = din.read();
  gdx.resize(n);
  EXPECT_LT(relError(gdx, rdx), kBf16Tol);
}

TEST(KernelsGpu, AddInPlaceRoundsTheSumOnce) {
  MLLM_REQUIRE_GPU();
  const int64_t n = 1000;
  Tensor y(n, 21, 3.0f), x(n, 22);
  ASSERT_OK(gpu::addInPlace(y.dev.data(), x.dev.data(), n, nullptr));
  // The fp32 sum of the two bf16 values, rounded to bf16 once.
  std::vector<float> want(n);
  for (int64_t i = 0; i < n; ++i)
    want[i] = y.host[i] + x.host[i];
  EXPECT_EQ(y.read(), roundBf16(want));
}

TEST(KernelsGpu, ScaleAddRoundsOnceWithoutFusing) {
  MLLM_REQUIRE_GPU();
  const int64_t n = 1000;
  Tensor y(n, 23, 3.0f), x(n, 24);
  ASSERT_OK(gpu::scaleAdd(y.dev.data(), x.dev.data(), 0.3f, n, nullptr));
  // fl(y + fl(a x)), rounded to bf16 once: the bits, not a tolerance (a
  // fused multiply-add would differ in some elements).
  std::vector<float> want(n);
  for (int64_t i = 0; i < n; ++i) {
    volatile float ax = 0.3f * x.host[i];
    want[i] = y.host[i] + ax;
  }
  EXPECT_EQ(y.read(), roundBf16(want));
  // A half step in place (y = x): exact in bf16.
  const std::vector<float> before = x.read();
  ASSERT_OK(gpu::scaleAdd(x.dev.data(), x.dev.data(), 0.5f, n, nullptr));
  for (int64_t i = 0; i < n; ++i)
    want[i] = 1.5f * before[i];
  EXPECT_EQ(x.read(), roundBf16(want));
  const gpu::Status bad =
      gpu::scaleAdd(y.dev.data(), x.dev.data(), 0.5f, -1, nullptr);
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("scaleAdd: negative size -1"), std::string::npos)
      << bad.message();
}

TEST(KernelsGpu, EmbeddingGatherAndScatter) {
  MLLM_REQUIRE_GPU();
  const int64_t vocab = 50, d = 72;
  std::vector<int64_t> ids = {3, 7, 3, 49, 0, 7, 7, 12, 3};
  const int64_t t = static_cast<int64_t>(ids.size());
  Tensor table(vocab * d, 11), out(t * d), dout(t * d, 12);
  DeviceArray<int64_t> dids = upload(ids);
  ASSERT_OK(gpu::embeddingForward(dids.data(), table.dev.data(), out.dev.data(),
                                  t, d, nullptr));
  std::vector<float> ro(t * d), rdt(vocab * d, 0.25f);
  cpu::embeddingForward(ids.data(), table.host.data(), ro.data(), t, vocab, d);
  EXPECT_EQ(out.read(), ro); // a copy: exact
  gpu::EmbeddingGradPlan plan;
  ASSERT_OK(gpu::prepareEmbeddingGrad(ids, vocab, plan, nullptr));
  EXPECT_EQ(plan.uniqueIds, 5); // 0, 3, 7, 12, 49
  DeviceArray<float> dt = upload(std::vector<float>(vocab * d, 0.25f));
  ASSERT_OK(
      gpu::embeddingBackward(plan, dout.dev.data(), dt.data(), d, nullptr));
  cpu::embeddingBackwardWeight(ids.data(), dout.host.data(), rdt.data(), t,
                               vocab, d);
  EXPECT_LT(relError(download(dt), rdt), 1e-6);
  gpu::EmbeddingGradPlan bad;
  EXPECT_FALSE(gpu::prepareEmbeddingGrad({1, 50}, vocab, bad, nullptr).ok());
}

TEST(KernelsGpu, ReluAndSilu) {
  MLLM_REQUIRE_GPU();
  const int64_t n = 1001;
  Tensor x(n, 31, 4.0f), dy(n, 32), y(n), dx(n);
  // x = 0 exactly: ReLU's gradient there is 0, as PyTorch's.
  std::vector<float> xs = x.host;
  xs[0] = 0.0f;
  x.dev = upload(toBf16(xs));
  std::vector<float> ry(n), rdx(n), sy(n), sdx(n);
  for (int64_t i = 0; i < n; ++i) {
    const double v = xs[i], s = 1.0 / (1.0 + std::exp(-v));
    ry[i] = static_cast<float>(v > 0 ? v : 0);
    rdx[i] = static_cast<float>(v > 0 ? dy.host[i] : 0);
    sy[i] = static_cast<float>(v * s);
    sdx[i] = static_cast<float>(dy.host[i] * s * (1 + v * (1 - s)));
  }
  ASSERT_OK(gpu::reluForward(x.dev.data(), y.dev.data(), n, nullptr));
  ASSERT_OK(gpu::reluBackward(x.dev.data(), dy.dev.data(), dx.dev.data(), n,
                              nullptr));
  EXPECT_EQ(y.read(), ry); // exact: the input itself or 0
  EXPECT_EQ(dx.read(), rdx);
  ASSERT_OK(gpu::siluForward(x.dev.data(), y.dev.data(), n, nullptr));
  ASSERT_OK(gpu::siluBackward(x.dev.data(), dy.dev.data(), dx.dev.data(), n,
                              nullptr));
  EXPECT_LT(relError(y.read(), sy), kBf16Tol);
  EXPECT_LT(relError(dx.read(), sdx), kBf16Tol);
}

TEST(KernelsGpu, GluGatesTheFirstHalfWithTheSecond) {
  MLLM_REQUIRE_GPU();
  // F.glu(dim=-1) as the conformer's convolution module uses it: in[t] =
  // [a | b], out = a * sigmoid(b); odd widths, and a single token.
  for (auto [t, w] : {std::pair<int64_t, int64_t>{37, 129}, {1, 7}, {3, 1}}) {
    Tensor in(t * 2 * w, 40 + w, 4.0f), dout(t * w, 41 + w), out(t * w),
        din(t * 2 * w);
    std::vector<float> ro(t * w), rdin(t * 2 * w);
    for (int64_t r = 0; r < t; ++r)
      for (int64_t i = 0; i < w; ++i) {
        const double a = in.host[r * 2 * w + i], b = in.host[r * 2 * w + w + i],
                     d = dout.host[r * w + i], s = 1.0 / (1.0 + std::exp(-b));
        ro[r * w + i] = static_cast<float>(a * s);
        rdin[r * 2 * w + i] = static_cast<float>(d * s);
        rdin[r * 2 * w + w + i] = static_cast<float>(d * a * s * (1 - s));
      }
    ASSERT_OK(gpu::gluForward(in.dev.data(), out.dev.data(), t, w, nullptr));
    ASSERT_OK(gpu::gluBackward(in.dev.data(), dout.dev.data(), din.dev.data(),
                               t, w, nullptr));
    EXPECT_LT(relError(out.read(), ro), kBf16Tol) << t << "x" << w;
    EXPECT_LT(relError(din.read(), rdin), kBf16Tol) << t << "x" << w;
  }
  // Nothing to do, and a negative size refused before any launch.
  Tensor x(16, 42), y(8);
  ASSERT_OK(gpu::gluForward(x.dev.data(), y.dev.data(), 0, 8, nullptr));
  const gpu::Status fwd =
      gpu::gluForward(x.dev.data(), y.dev.data(), -1, 8, nullptr);
  EXPECT_FALSE(fwd.ok());
  EXPECT_NE(fwd.message().find("gluForward: negative size -1"),
            std::string::npos)
      << fwd.message();
  const gpu::Status bwd = gpu::gluBackward(x.dev.data(), y.dev.data(),
                                           x.dev.data(), 1, -8, nullptr);
  EXPECT_FALSE(bwd.ok());
  EXPECT_NE(bwd.message().find("gluBackward: negative size -8"),
            std::string::npos)
      << bwd.message();
}

TEST(KernelsGpu, AddRowVectorRoundsTheSumOnce) {
  MLLM_REQUIRE_GPU();
  // rows x cols: one element, one row, odd sizes, a position table added
  // to 3 sequences of 17 tokens x 75 hidden.
  const std::pair<int64_t, int64_t> sizes[] = {
      {1, 1}, {1, 1000}, {37, 333}, {300, 7}, {3, 17 * 75}};
  uint64_t seed = 40;
  for (auto [rows, cols] : sizes) {
    SCOPED_TRACE(std::to_string(rows) + " x " + std::to_string(cols));
    Tensor x(rows * cols, ++seed, 3.0f), v(cols, ++seed);
    ASSERT_OK(
        gpu::addRowVector(x.dev.data(), v.dev.data(), rows, cols, nullptr));
    std::vector<float> want(rows * cols);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c)
        want[r * cols + c] = x.host[r * cols + c] + v.host[c];
    EXPECT_EQ(x.read(), roundBf16(want));
  }
}

TEST(KernelsGpu, SumRowsAccumulatesReproducibly) {
  MLLM_REQUIRE_GPU();
  // One row, chunk edges (128 rows per chunk), many rows over few columns
  // (a bias), few rows over many columns (a position table).
  const std::pair<int64_t, int64_t> sizes[] = {
      {1, 5}, {128, 33}, {129, 300}, {20000, 7}, {3, 70001}};
  uint64_t seed = 50;
  for (auto [rows, cols] : sizes) {
    SCOPED_TRACE(std::to_string(rows) + " x " + std::to_string(cols));
    Tensor dx(rows * cols, ++seed);
    std::vector<float> init = randomFloats(cols, ++seed);
    std::vector<double> want(init.begin(), init.end());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c)
        want[c] += dx.host[r * cols + c];
    std::vector<float> got[2];
    for (int run = 0; run < 2; ++run) {
      DeviceArray<float> dv = upload(init);
      ASSERT_OK(gpu::sumRows(dx.dev.data(), dv.data(), rows, cols, nullptr));
      got[run] = download(dv);
    }
    EXPECT_EQ(got[0], got[1]); // a fixed order: the same bits
    EXPECT_LT(relError(got[0], std::vector<float>(want.begin(), want.end())),
              kF32Tol);
  }
  // No rows: dv is left as it is.
  DeviceArray<float> dv = upload(std::vector<float>(4, 0.5f));
  Tensor dx(4, 59);
  ASSERT_OK(gpu::sumRows(dx.dev.data(), dv.data(), 0, 4, nullptr));
  EXPECT_EQ(download(dv), std::vector<float>(4, 0.5f));
}

TEST(KernelsGpu, CopyRowsGathersScattersAndZeroes) {
  MLLM_REQUIRE_GPU();
  const int64_t width = 37, srcN = 9, dstN = 11;
  Tensor src(srcN * width, 60), dst(dstN * width, 61);
  const std::vector<int64_t> from = {8, 0, 3, 3}, to = {10, 2, 5, 0};
  DeviceArray<int64_t> dfrom = upload(from), dto = upload(to);
  const int64_t rows = static_cast<int64_t>(from.size());
  auto row = [&](const std::vector<float> &v, int64_t r) {
    return std::vector<float>(v.begin() + r * width,
                              v.begin() + (r + 1) * width);
  };
  // Gather + scatter: dst[to[i]] = src[from[i]], the other rows unchanged.
  std::vector<float> want = dst.host;
  for (int64_t i = 0; i < rows; ++i)
    std::copy_n(src.host.begin() + from[i] * width, width,
                want.begin() + to[i] * width);
  ASSERT_OK(gpu::copyRows(src.dev.data(), dfrom.data(), dst.dev.data(),
                          dto.data(), rows, width, nullptr));
  EXPECT_EQ(dst.read(), want);
  // Gather only: out[i] = src[from[i]].
  Tensor out(rows * width);
  ASSERT_OK(gpu::copyRows(src.dev.data(), dfrom.data(), out.dev.data(), nullptr,
                          rows, width, nullptr));
  std::vector<float> gathered = out.read();
  for (int64_t i = 0; i < rows; ++i)
    EXPECT_EQ(row(gathered, i), row(src.host, from[i])) << i;
  // Scatter only, then zeros: dst[to[i]] = src[i], then dst[to[i]] = 0.
  ASSERT_OK(gpu::copyRows(src.dev.data(), nullptr, dst.dev.data(), dto.data(),
                          rows, width, nullptr));
  std::vector<float> scattered = dst.read();
  for (int64_t i = 0; i < rows; ++i)
    EXPECT_EQ(row(scattered, to[i]), row(src.host, i)) << i;
  ASSERT_OK(gpu::copyRows(nullptr, nullptr, dst.dev.data(), dto.data(), rows,
                          width, nullptr));
  std::vector<float> zeroed = dst.read();
  for (int64_t i = 0; i < rows; ++i)
    EXPECT_EQ(row(zeroed, to[i]), std::vector<float>(width, 0.0f)) << i;
  EXPECT_EQ(row(zeroed, 1), row(want, 1)); // untouched
}

TEST(KernelsGpu, PatchifyHasTheConvLayout) {
  MLLM_REQUIRE_GPU();
  // A video (4 frames, temporal patch 2) and an image (Conv2d), both with
  // more rows than columns of patches and several items.
  cpu::PatchShape video, image;
  video.channels = 3, video.frames = 4, video.temporalPatch = 2;
  video.height = 15, video.width = 9, video.patch = 3;
  image.channels = 2, image.frames = 1, image.temporalPatch = 1;
  image.height = 14, image.width = 7, image.patch = 7;
  uint64_t seed = 70;
  for (const cpu::PatchShape &s : {video, image}) {
    const int64_t items = 3, C = s.channels, T = s.frames, H = s.height,
                  W = s.width, p = s.patch, tp = s.temporalPatch;
    const int64_t in = C * T * H * W, dim = s.patchDim(), num = s.numPatches();
    Tensor px(items * in, ++seed), patches(items * num * dim);
    ASSERT_OK(
        gpu::patchify(px.dev.data(), patches.dev.data(), s, items, nullptr));
    // Every pixel to its place: patch (t / tp, y / p, x / p), column
    // (c, t % tp, y % p, x % p).
    std::vector<float> want(items * num * dim, NAN);
    for (int64_t i = 0; i < items; ++i)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t t = 0; t < T; ++t)
          for (int64_t y = 0; y < H; ++y)
            for (int64_t x = 0; x < W; ++x) {
              int64_t n = ((t / tp) * (H / p) + y / p) * (W / p) + x / p;
              int64_t col = ((c * tp + t % tp) * p + y % p) * p + x % p;
              want[(i * num + n) * dim + col] =
                  px.host[i * in + ((c * T + t) * H + y) * W + x];
            }
    std::vector<float> got = patches.read();
    EXPECT_EQ(got, want);
    // And the CPU kernel's layout, item by item.
    std::vector<float> cpuPatches(num * dim);
    cpu::patchify(px.host.data() + in, cpuPatches.data(), s);
    EXPECT_EQ(std::vector<float>(got.begin() + num * dim,
                                 got.begin() + 2 * num * dim),
              cpuPatches);
  }
}

/// The vision input's row moves the caller does with these kernels and
/// pitched copies (docs/cuda.md §2): a class token in front of each item's
/// patches plus a position table, their gradients, and the projector's
/// input without the class token, merged 2 to 1 with a zero pad.
TEST(KernelsGpu, ClassTokenPositionsAndMergeRecipe) {
  MLLM_REQUIRE_GPU();
  const int64_t items = 3, grid = 5, h = 24, n = grid + 1, merge = 2;
  const int64_t merged = (grid + merge - 1) / merge, B = sizeof(bf16);
  Tensor y(items * grid * h, 90), cls(h, 91), pos(n * h, 92),
      out(items * n * h);
  std::vector<int64_t> firstRows(items);
  for (int64_t i = 0; i < items; ++i)
    firstRows[i] = i * n;
  DeviceArray<int64_t> zeros = upload(std::vector<int64_t>(items, 0)),
                       first = upload(firstRows);
  // out[i] = [cls | y rows of item i] + pos.
  ASSERT_EQ(cudaMemcpy2DAsync(out.dev.data() + h, n * h * B, y.dev.data(),
                              grid * h * B, grid * h * B, items,
                              cudaMemcpyDeviceToDevice, nullptr),
            cudaSuccess);
  ASSERT_OK(gpu::copyRows(cls.dev.data(), zeros.data(), out.dev.data(),
                          first.data(), items, h, nullptr));
  ASSERT_OK(
      gpu::addRowVector(out.dev.data(), pos.dev.data(), items, n * h, nullptr));
  std::vector<float> want(items * n * h);
  for (int64_t i = 0; i < items; ++i)
    for (int64_t t = 0; t < n; ++t)
      for (int64_t c = 0; c < h; ++c)
        want[(i * n + t) * h + c] =
            (t == 0 ? cls.host[c] : y.host[(i * grid + t - 1) * h + c]) +
            pos.host[t * h + c];
  EXPECT_EQ(out.read(), roundBf16(want));

  // Backward: dpos, dcls (the items' first rows gathered), the patch rows
  // made contiguous for the weight GEMM, and their bias gradient.
  Tensor dy(items * n * h, 93), firstDy(items * h), patchDy(items * grid * h);
  DeviceArray<float> dpos = upload(std::vector<float>(n * h)),
                     dcls = upload(std::vector<float>(h)),
                     db = upload(std::vector<float>(h));
  ASSERT_OK(gpu::sumRows(dy.dev.data(), dpos.data(), items, n * h, nullptr));
  ASSERT_EQ(cudaMemcpy2DAsync(firstDy.dev.data(), h * B, dy.dev.data(),
                              n * h * B, h * B, items, cudaMemcpyDeviceToDevice,
                              nullptr),
            cudaSuccess);
  ASSERT_OK(gpu::sumRows(firstDy.dev.data(), dcls.data(), items, h, nullptr));
  ASSERT_EQ(cudaMemcpy2DAsync(patchDy.dev.data(), grid * h * B,
                              dy.dev.data() + h, n * h * B, grid * h * B, items,
                              cudaMemcpyDeviceToDevice, nullptr),
            cudaSuccess);
  ASSERT_OK(
      gpu::sumRows(patchDy.dev.data(), db.data(), items * grid, h, nullptr));
  std::vector<float> rpos(n * h), rcls(h), rb(h);
  for (int64_t i = 0; i < items; ++i)
    for (int64_t t = 0; t < n; ++t)
      for (int64_t c = 0; c < h; ++c) {
        const float g = dy.host[(i * n + t) * h + c];
        rpos[t * h + c] += g;
        (t == 0 ? rcls : rb)[c] += g;
      }
  EXPECT_LT(relError(download(dpos), rpos), kF32Tol);
  EXPECT_LT(relError(download(dcls), rcls), kF32Tol);
  EXPECT_LT(relError(download(db), rb), kF32Tol);

  // The projector's input: item i's patch rows, 2 to a row, zero padded.
  const int64_t pitch = merged * merge * h;
  Tensor proj(items * pitch, 94); // not zero: the pad is written
  ASSERT_EQ(cudaMemcpy2DAsync(proj.dev.data(), pitch * B, out.dev.data() + h,
                              n * h * B, grid * h * B, items,
                              cudaMemcpyDeviceToDevice, nullptr),
            cudaSuccess);
  ASSERT_EQ(cudaMemset2DAsync(proj.dev.data() + grid * h, pitch * B, 0,
                              (pitch - grid * h) * B, items, nullptr),
            cudaSuccess);
  std::vector<float> got = proj.read(), ref = out.read();
  for (int64_t i = 0; i < items; ++i)
    for (int64_t k = 0; k < merged * merge * h; ++k)
      EXPECT_EQ(got[i * pitch + k],
                k < grid * h ? ref[(i * n + 1) * h + k] : 0.0f)
          << i << "," << k;
}

TEST(KernelsGpu, VisionKernelsRejectBadArguments) {
  MLLM_REQUIRE_GPU();
  Tensor x(64, 80), v(8);
  DeviceArray<float> dv = upload(std::vector<float>(8));
  auto fails = [](const gpu::Status &s, const std::string &kernel) {
    EXPECT_FALSE(s.ok()) << kernel;
    EXPECT_NE(s.message().find(kernel), std::string::npos) << s.message();
  };
  fails(gpu::addRowVector(x.dev.data(), v.dev.data(), -1, 8, nullptr),
        "addRowVector");
  fails(gpu::sumRows(x.dev.data(), dv.data(), 8, -8, nullptr), "sumRows");
  fails(gpu::copyRows(x.dev.data(), nullptr, v.dev.data(), nullptr, 1, -8,
                      nullptr),
        "copyRows");
  fails(gpu::reluForward(x.dev.data(), v.dev.data(), -1, nullptr),
        "reluForward");
  fails(
      gpu::siluBackward(x.dev.data(), x.dev.data(), v.dev.data(), -1, nullptr),
      "siluBackward");
  cpu::PatchShape s;
  s.channels = 1, s.height = 8, s.width = 8, s.patch = 4;
  fails(gpu::patchify(x.dev.data(), x.dev.data(), s, -1, nullptr), "patchify");
  s.width = 6; // not a whole number of patches
  fails(gpu::patchify(x.dev.data(), x.dev.data(), s, 1, nullptr),
        "not a whole number");
  s.width = 8, s.patch = 0;
  fails(gpu::patchify(x.dev.data(), x.dev.data(), s, 1, nullptr),
        "not positive");
  EXPECT_FALSE(gpu::checkPatchShape(s).empty());
  s.patch = 4;
  EXPECT_EQ(gpu::checkPatchShape(s), "");
}

/// Odd sizes, 3 items: Whisper's conv2 (k 3, stride 2, padding 1) and conv1
/// (k 3, stride 1, padding 1), an even kernel with wide padding, and a
/// stride past the kernel (frames 2 and 5 are read by no column).
const cpu::Conv1dShape kConvShapes[] = {{11, 5, 7, 3, 2, 1},
                                        {10, 3, 4, 3, 1, 1},
                                        {9, 2, 3, 4, 3, 2},
                                        {8, 3, 2, 2, 3, 0}};

std::string describe(const cpu::Conv1dShape &s) {
  return "frames " + std::to_string(s.frames) + " in " +
         std::to_string(s.inChannels) + " k " + std::to_string(s.kernel) +
         " stride " + std::to_string(s.stride) + " padding " +
         std::to_string(s.padding);
}

TEST(KernelsGpu, Im2colAndCol2imHaveTheConvLayout) {
  MLLM_REQUIRE_GPU();
  uint64_t seed = 100;
  for (const cpu::Conv1dShape &s : kConvShapes) {
    SCOPED_TRACE(describe(s));
    const int64_t items = 3, F = s.frames, C = s.inChannels, k = s.kernel;
    const int64_t T = s.outFrames(), width = C * k;
    Tensor x(items * F * C, ++seed), cols(items * T * width, ++seed);
    ASSERT_OK(gpu::im2col1d(x.dev.data(), cols.dev.data(), s, items, nullptr));
    // cols[(i, t), c k + j] = x[(i, t s - p + j), c], 0 outside item i.
    std::vector<float> want(items * T * width, NAN);
    for (int64_t i = 0; i < items; ++i)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t j = 0; j < k; ++j) {
            const int64_t f = t * s.stride - s.padding + j;
            want[(i * T + t) * width + c * k + j] =
                f >= 0 && f < F ? x.host[(i * F + f) * C + c] : 0.0f;
          }
    std::vector<float> got = cols.read();
    EXPECT_EQ(got, want); // a copy: exact
    std::vector<float> cpuCols(T * width);
    cpu::im2col1d(x.host.data() + 2 * F * C, cpuCols.data(), s);
    EXPECT_EQ(std::vector<float>(got.begin() + 2 * T * width, got.end()),
              cpuCols);

    // The adjoint as a scatter: every column entry added to the frame it
    // was read from, in double, rounded to bf16 once. dx starts as noise:
    // col2im1d overwrites it.
    Tensor dcols(items * T * width, ++seed), dx(items * F * C, ++seed);
    ASSERT_OK(
        gpu::col2im1d(dcols.dev.data(), dx.dev.data(), s, items, nullptr));
    std::vector<double> sum(items * F * C, 0.0);
    for (int64_t i = 0; i < items; ++i)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t j = 0; j < k; ++j) {
            const int64_t f = t * s.stride - s.padding + j;
            if (f >= 0 && f < F)
              sum[(i * F + f) * C + c] +=
                  dcols.host[(i * T + t) * width + c * k + j];
          }
    // The kernel adds in fp32: with at most ceil(k / stride) terms of these
    // magnitudes its sums are exact, so one rounding gives the same bits.
    EXPECT_EQ(dx.read(), roundBf16(std::vector<float>(sum.begin(), sum.end())));
  }
}

/// conv1d forward and backward as a device executor runs it (im2col1d, the
/// GEMMs, addRowVector, sumRows, col2im1d) against cpu::conv1d* item by
/// item on the same bf16 values.
TEST(KernelsGpu, Conv1dWithGemmsMatchesTheCpuConvolution) {
  MLLM_REQUIRE_GPU();
  gpu::Gemm gemm;
  ASSERT_OK(gemm.init());
  uint64_t seed = 120;
  for (const cpu::Conv1dShape &s : kConvShapes) {
    SCOPED_TRACE(describe(s));
    const int64_t items = 3, F = s.frames, C = s.inChannels, O = s.outChannels;
    const int64_t T = s.outFrames(), width = s.colsWidth(), rows = items * T;
    Tensor x(items * F * C, ++seed), w(O * width, ++seed), b(O, ++seed),
        dy(rows * O, ++seed), cols(rows * width), y(rows * O),
        dx(items * F * C, ++seed);
    std::vector<float> dw0 = randomFloats(O * width, ++seed),
                       db0 = randomFloats(O, ++seed);
    DeviceArray<float> dw = upload(dw0), db = upload(db0);
    // y = cols W^T + b.
    ASSERT_OK(gpu::im2col1d(x.dev.data(), cols.dev.data(), s, items, nullptr));
    gpu::GemmShape fwd;
    fwd.transB = true;
    fwd.m = rows, fwd.n = O, fwd.k = width;
    fwd.lda = width, fwd.ldb = width, fwd.ldc = O;
    ASSERT_OK(gemm.run(fwd, 1.0f, cols.dev.data(), w.dev.data(), 0.0f,
                       y.dev.data(), nullptr));
    ASSERT_OK(gpu::addRowVector(y.dev.data(), b.dev.data(), rows, O, nullptr));
    // dcols = dy W (into the column buffer), dx = col2im(dcols);
    // dW += dy^T cols (of x: recomputed), db += sum dy.
    gpu::GemmShape bwdIn;
    bwdIn.m = rows, bwdIn.n = width, bwdIn.k = O;
    bwdIn.lda = O, bwdIn.ldb = width, bwdIn.ldc = width;
    gpu::GemmShape bwdW;
    bwdW.transA = true;
    bwdW.m = O, bwdW.n = width, bwdW.k = rows;
    bwdW.lda = O, bwdW.ldb = width, bwdW.ldc = width;
    ASSERT_OK(gemm.run(bwdW, 1.0f, dy.dev.data(), cols.dev.data(), 1.0f,
                       dw.data(), nullptr));
    ASSERT_OK(gpu::sumRows(dy.dev.data(), db.data(), rows, O, nullptr));
    ASSERT_OK(gemm.run(bwdIn, 1.0f, dy.dev.data(), w.dev.data(), 0.0f,
                       cols.dev.data(), nullptr));
    ASSERT_OK(gpu::col2im1d(cols.dev.data(), dx.dev.data(), s, items, nullptr));

    std::vector<float> ry(rows * O), rdx(items * F * C), rdw = dw0, rdb = db0;
    for (int64_t i = 0; i < items; ++i) {
      cpu::conv1dForward(x.host.data() + i * F * C, w.host.data(),
                         b.host.data(), ry.data() + i * T * O, s);
      cpu::conv1dBackwardInput(dy.host.data() + i * T * O, w.host.data(),
                               rdx.data() + i * F * C, s);
      cpu::conv1dBackwardWeight(x.host.data() + i * F * C,
                                dy.host.data() + i * T * O, rdw.data(),
                                rdb.data(), s);
    }
    EXPECT_LT(relError(y.read(), ry), kBf16Tol);
    EXPECT_LT(relError(dx.read(), rdx), kBf16Tol); // dcols is rounded to bf16
    EXPECT_LT(relError(download(dw), rdw), kF32Tol);
    EXPECT_LT(relError(download(db), rdb), kF32Tol);
  }
}

TEST(KernelsGpu, DepthwiseConv1dMatchesDirectSums) {
  MLLM_REQUIRE_GPU();
  struct Case {
    int64_t items, frames, channels, kernel;
  };
  // A conformer-like odd kernel over several weight-gradient chunks (128
  // frames each), an even kernel (one more zero on the right), a kernel
  // longer than the sequences, one frame.
  const Case cases[] = {
      {3, 301, 37, 31}, {3, 13, 37, 4}, {2, 5, 3, 9}, {4, 1, 8, 3}};
  uint64_t seed = 140;
  for (const Case &cs : cases) {
    const int64_t items = cs.items, F = cs.frames, C = cs.channels,
                  k = cs.kernel, n = items * F * C, left = (k - 1) / 2;
    SCOPED_TRACE("items " + std::to_string(items) + " frames " +
                 std::to_string(F) + " k " + std::to_string(k));
    Tensor x(n, ++seed), w(C * k, ++seed), b(C, ++seed), dy(n, ++seed),
        y(n, ++seed), dx(n, ++seed);
    std::vector<float> dw0 = randomFloats(C * k, ++seed),
                       db0 = randomFloats(C, ++seed);
    ASSERT_OK(gpu::depthwiseConv1dForward(x.dev.data(), w.dev.data(),
                                          b.dev.data(), y.dev.data(), F, C, k,
                                          items, nullptr));
    ASSERT_OK(gpu::depthwiseConv1dBackwardInput(
        dy.dev.data(), w.dev.data(), dx.dev.data(), F, C, k, items, nullptr));
    std::vector<float> gdw[2], gdb[2];
    for (int run = 0; run < 2; ++run) {
      DeviceArray<float> dw = upload(dw0), db = upload(db0);
      ASSERT_OK(gpu::depthwiseConv1dBackwardWeight(x.dev.data(), dy.dev.data(),
                                                   dw.data(), db.data(), F, C,
                                                   k, items, nullptr));
      gdw[run] = download(dw);
      gdb[run] = download(db);
    }
    EXPECT_EQ(gdw[0], gdw[1]); // a fixed order: the same bits
    EXPECT_EQ(gdb[0], gdb[1]);
    // y[t] = b + sum_j w[j] x[t - left + j]; the gradients by scattering
    // each output's dy back onto the inputs and weights it read.
    std::vector<double> ry(n), rdx(n, 0.0), rdw(dw0.begin(), dw0.end()),
        rdb(db0.begin(), db0.end());
    for (int64_t i = 0; i < items; ++i)
      for (int64_t t = 0; t < F; ++t)
        for (int64_t c = 0; c < C; ++c) {
          const int64_t o = (i * F + t) * C + c;
          ry[o] = b.host[c];
          rdb[c] += dy.host[o];
          for (int64_t j = 0; j < k; ++j) {
            const int64_t f = t - left + j;
            if (f < 0 || f >= F)
              continue;
            const int64_t src = (i * F + f) * C + c;
            ry[o] += double(w.host[c * k + j]) * x.host[src];
            rdx[src] += double(w.host[c * k + j]) * dy.host[o];
            rdw[c * k + j] += double(dy.host[o]) * x.host[src];
          }
        }
    auto toF = [](const std::vector<double> &v) {
      return std::vector<float>(v.begin(), v.end());
    };
    EXPECT_LT(relError(y.read(), toF(ry)), kBf16Tol);
    EXPECT_LT(relError(dx.read(), toF(rdx)), kBf16Tol);
    EXPECT_LT(relError(gdw[0], toF(rdw)), kF32Tol);
    EXPECT_LT(relError(gdb[0], toF(rdb)), kF32Tol);
    // No bias: y is the taps alone; no db: dw still accumulates.
    ASSERT_OK(gpu::depthwiseConv1dForward(x.dev.data(), w.dev.data(), nullptr,
                                          y.dev.data(), F, C, k, items,
                                          nullptr));
    for (int64_t e = 0; e < n; ++e)
      ry[e] -= b.host[e % C];
    EXPECT_LT(relError(y.read(), toF(ry)), kBf16Tol);
    DeviceArray<float> dw = upload(dw0);
    ASSERT_OK(gpu::depthwiseConv1dBackwardWeight(x.dev.data(), dy.dev.data(),
                                                 dw.data(), nullptr, F, C, k,
                                                 items, nullptr));
    EXPECT_EQ(download(dw), gdw[0]);
  }
}

TEST(KernelsGpu, AudioKernelsRejectBadArguments) {
  MLLM_REQUIRE_GPU();
  Tensor x(64, 150), cols(256);
  DeviceArray<float> dw = upload(std::vector<float>(16));
  auto fails = [](const gpu::Status &s, const std::string &part) {
    EXPECT_FALSE(s.ok()) << part;
    EXPECT_NE(s.message().find(part), std::string::npos) << s.message();
  };
  const cpu::Conv1dShape good{8, 4, 2, 3, 2, 1};
  EXPECT_EQ(gpu::checkConv1dShape(good), "");
  fails(gpu::im2col1d(x.dev.data(), cols.dev.data(), good, -1, nullptr),
        "im2col1d: negative size -1");
  fails(gpu::col2im1d(cols.dev.data(), x.dev.data(), good, -2, nullptr),
        "col2im1d: negative size -2");
  cpu::Conv1dShape bad = good;
  bad.stride = 0;
  fails(gpu::im2col1d(x.dev.data(), cols.dev.data(), bad, 1, nullptr),
        "im2col1d: kernel 3, stride 0 and padding 1 are not a convolution");
  bad = good, bad.kernel = 0;
  fails(gpu::col2im1d(cols.dev.data(), x.dev.data(), bad, 1, nullptr),
        "not a convolution");
  bad = good, bad.padding = -1;
  EXPECT_NE(gpu::checkConv1dShape(bad), "");
  bad = good, bad.inChannels = 0;
  fails(gpu::im2col1d(x.dev.data(), cols.dev.data(), bad, 1, nullptr),
        "input channel count of 0");
  bad = good, bad.frames = 1, bad.padding = 0; // shorter than the kernel
  fails(gpu::col2im1d(cols.dev.data(), x.dev.data(), bad, 1, nullptr),
        "fewer than the 3 of the kernel");
  bad.padding = 1; // 1 + 2 frames of padding: one output frame
  EXPECT_EQ(gpu::checkConv1dShape(bad), "");
  fails(gpu::depthwiseConv1dForward(x.dev.data(), cols.dev.data(), nullptr,
                                    cols.dev.data(), 8, 8, 0, 1, nullptr),
        "depthwiseConv1dForward: a kernel of 0 taps");
  fails(gpu::depthwiseConv1dBackwardInput(x.dev.data(), cols.dev.data(),
                                          cols.dev.data(), -8, 8, 3, 1,
                                          nullptr),
        "depthwiseConv1dBackwardInput: negative size -8");
  fails(gpu::depthwiseConv1dBackwardWeight(x.dev.data(), x.dev.data(),
                                           dw.data(), nullptr, 8, 8, 2, -1,
                                           nullptr),
        "depthwiseConv1dBackwardWeight: negative size -1");
}

} // namespace
