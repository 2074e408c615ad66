//===- Layers.cpp - The layer kernels of cuda/Layers.h on the CPU ---------===//
//
// Each call checks its stream and every pointer it would touch (a live
// device allocation of the right size), widens its bf16 inputs to fp32,
// runs the CPU kernel of kernels/cpu/*.h and rounds its bf16 outputs to
// nearest even; fp32 outputs (statistics, weight gradients, optimizer
// state) are written directly, since device memory is host memory here.
// Accumulation follows the CUDA kernels: norm dw/db, the embedding
// gradient, sumRows, the depthwise dw/db and nothing else are added to;
// AdamW is cpu::adamwStep itself, which the CUDA kernel equals bit for bit.
// Inputs are read before any output is written, so every in-place call
// would work here; the convolutions, whose CUDA kernels read neighbours,
// reject an input that overlaps the output, as the GPU cannot run them.
//
//===----------------------------------------------------------------------===//

#include "mllm/kernels/cuda/Layers.h"

#include "Twin.h"

#include "mllm/kernels/cpu/Activation.h"
#include "mllm/kernels/cpu/Conv.h"
#include "mllm/kernels/cpu/CrossEntropy.h"
#include "mllm/kernels/cpu/Elementwise.h"
#include "mllm/kernels/cpu/Embedding.h"
#include "mllm/kernels/cpu/Norm.h"
#include "mllm/kernels/cpu/Optimizer.h"
#include "mllm/kernels/cpu/PatchEmbed.h"
#include "mllm/kernels/cpu/Rope.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

using namespace mllm::kernels;
using namespace mllm::kernels::cuda;
using twin::checkArg;
using twin::storeBf16;
using twin::toFloat;

namespace {

/// The widened values of an optional bf16 array (empty when null).
std::vector<float> widenOptional(const bf16 *p, int64_t n) {
  return p ? toFloat(p, n) : std::vector<float>();
}

const float *orNull(const std::vector<float> &v) {
  return v.empty() ? nullptr : v.data();
}

/// The address of row `row` of a [*, dim] table, computed without pointer
/// arithmetic (the row may be far outside the table).
template <typename T>
const void *rowAddress(const T *table, int64_t row, int64_t dim) {
  return reinterpret_cast<const void *>(reinterpret_cast<uintptr_t>(table) +
                                        static_cast<uintptr_t>(row * dim) *
                                            sizeof(T));
}

Status rowOutsideTable(const char *kernel, const char *what, int64_t index,
                       int64_t id) {
  return Status::error(std::string(kernel) + ": " + what + " " +
                       std::to_string(index) + " has id " + std::to_string(id) +
                       ", whose row is outside the table's allocation (host "
                       "twin; the GPU would read out of bounds)");
}

enum class Unary { Gelu, Relu, Silu };

Status unaryForward(const char *k, Unary act, const bf16 *x, bf16 *y, int64_t n,
                    cudaStream_t stream) {
  MLLM_STATUS_TRY(twin::checkStream(k, stream));
  MLLM_STATUS_TRY(twin::checkSizes(k, {n}));
  if (n == 0)
    return Status();
  MLLM_STATUS_TRY(checkArg(k, "x", x, n));
  MLLM_STATUS_TRY(checkArg(k, "y", y, n));
  std::vector<float> fx = toFloat(x, n), fy(n);
  if (act == Unary::Gelu)
    cpu::geluForward<float>(fx.data(), fy.data(), n);
  else if (act == Unary::Relu)
    cpu::reluForward<float>(fx.data(), fy.data(), n);
  else
    cpu::siluForward<float>(fx.data(), fy.data(), n);
  storeBf16(fy.data(), y, n);
  return Status();
}

Status unaryBackward(const char *k, Unary act, const bf16 *x, const bf16 *dy,
                     bf16 *dx, int64_t n, cudaStream_t stream) {
  MLLM_STATUS_TRY(twin::checkStream(k, stream));
  MLLM_STATUS_TRY(twin::checkSizes(k, {n}));
  if (n == 0)
    return Status();
  MLLM_STATUS_TRY(checkArg(k, "x", x, n));
  MLLM_STATUS_TRY(checkArg(k, "dy", dy, n));
  MLLM_STATUS_TRY(checkArg(k, "dx", dx, n));
  std::vector<float> fx = toFloat(x, n), fdy = toFloat(dy, n), fdx(n);
  if (act == Unary::Gelu)
    cpu::geluBackward<float>(fx.data(), fdy.data(), fdx.data(), n);
  else if (act == Unary::Relu)
    cpu::reluBackward<float>(fx.data(), fdy.data(), fdx.data(), n);
  else
    cpu::siluBackward<float>(fx.data(), fdy.data(), fdx.data(), n);
  storeBf16(fdx.data(), dx, n);
  return Status();
}

enum class Gated { SwiGlu, GeGlu, Glu };

Status gatedForward(const char *k, Gated act, const bf16 *in, bf16 *out,
                    int64_t tokens, int64_t ffn, cudaStream_t stream) {
  MLLM_STATUS_TRY(twin::checkStream(k, stream));
  MLLM_STATUS_TRY(twin::checkSizes(k, {tokens, ffn}));
  const int64_t n = tokens * ffn;
  if (n == 0)
    return Status();
  MLLM_STATUS_TRY(checkArg(k, "in", in, 2 * n));
  MLLM_STATUS_TRY(checkArg(k, "out", out, n));
  std::vector<float> fin = toFloat(in, 2 * n), fout(n);
  if (act == Gated::SwiGlu)
    cpu::swigluForward<float>(fin.data(), fout.data(), tokens, ffn);
  else if (act == Gated::GeGlu)
    cpu::gegluForward<float>(fin.data(), fout.data(), tokens, ffn);
  else
    cpu::gluForward<float>(fin.data(), fout.data(), tokens, ffn);
  storeBf16(fout.data(), out, n);
  return Status();
}

Status gatedBackward(const char *k, Gated act, const bf16 *in, const bf16 *dout,
                     bf16 *din, int64_t tokens, int64_t ffn,
                     cudaStream_t stream) {
  MLLM_STATUS_TRY(twin::checkStream(k, stream));
  MLLM_STATUS_TRY(twin::checkSizes(k, {tokens, ffn}));
  const int64_t n = tokens * ffn;
  if (n == 0)
    return Status();
  MLLM_STATUS_TRY(checkArg(k, "in", in, 2 * n));
  MLLM_STATUS_TRY(checkArg(k, "dout", dout, n));
  MLLM_STATUS_TRY(checkArg(k, "din", din, 2 * n));
  std::vector<float> fin = toFloat(in, 2 * n), fdout = toFloat(dout, n),
                     fdin(2 * n);
  if (act == Gated::SwiGlu)
    cpu::swigluBackward<float>(fin.data(), fdout.data(), fdin.data(), tokens,
                               ffn);
  else if (act == Gated::GeGlu)
    cpu::gegluBackward<float>(fin.data(), fdout.data(), fdin.data(), tokens,
                              ffn);
  else
    cpu::gluBackward<float>(fin.data(), fdout.data(), fdin.data(), tokens, ffn);
  storeBf16(fdin.data(), din, 2 * n);
  return Status();
}

Status rope(const char *k, const bf16 *x, bf16 *y, const int64_t *positions,
            int64_t tokens, int64_t heads, int64_t headDim, double theta,
            bool backward, cudaStream_t stream) {
  MLLM_STATUS_TRY(twin::checkStream(k, stream));
  if (headDim % 2 != 0)
    return Status::error("RoPE needs an even head dimension");
  MLLM_STATUS_TRY(twin::checkSizes(k, {tokens, heads, headDim}));
  const int64_t n = tokens * heads * headDim;
  if (n == 0)
    return Status();
  MLLM_STATUS_TRY(checkArg(k, backward ? "dy" : "x", x, n));
  MLLM_STATUS_TRY(checkArg(k, backward ? "dx" : "y", y, n));
  MLLM_STATUS_TRY(checkArg(k, "positions", positions, tokens));
  std::vector<float> fx = toFloat(x, n), fy(n);
  if (backward)
    cpu::ropeBackward<float>(fx.data(), fy.data(), positions, tokens, heads,
                             headDim, theta);
  else
    cpu::ropeForward<float>(fx.data(), fy.data(), positions, tokens, heads,
                            headDim, theta);
  storeBf16(fy.data(), y, n);
  return Status();
}

} // namespace

//===----------------------------------------------------------------------===//
// Normalisation
//===----------------------------------------------------------------------===//

Status cuda::rmsNormForward(const bf16 *x, const bf16 *w, bf16 *y, float *rstd,
                            int64_t tokens, int64_t dim, float eps,
                            cudaStream_t stream) {
  const char *k = "rmsNormForward";
  MLLM_STATUS_TRY(twin::checkStream(k, stream));
  MLLM_STATUS_TRY(twin::checkSizes(k, {tokens, dim}));
  if (tokens == 0)
    return Status();
  const int64_t n = tokens * dim;
  MLLM_STATUS_TRY(checkArg(k, "x", x, n));
  MLLM_STATUS_TRY(checkArg(k, "w", w, dim, /*optional=*/true));
  MLLM_STATUS_TRY(checkArg(k, "y", y, n));
  MLLM_STATUS_TRY(checkArg(k, "rstd", rstd, tokens, /*optional=*/true));
  std::vector<float> fx = toFloat(x, n), fw = widenOptional(w, dim), fy(n),
                     fr(tokens);
  cpu::rmsNormForward<float>(fx.data(), orNull(fw), fy.data(), fr.data(),
                             tokens, dim, eps);
  storeBf16(fy.data(), y, n);
  if (rstd)
    std::copy(fr.begin(), fr.end(), rstd);
  return Status();
}

Status cuda::rmsNormBackward(const bf16 *dy, const bf16 *x, const bf16 *w,
                             const float *rstd, bf16 *dx, float *dw,
                             int64_t tokens, int64_t dim, cudaStream_t stream) {
  const char *k = "rmsNormBackward";
  MLLM_STATUS_TRY(twin::checkStream(k, stream));
  MLLM_STATUS_TRY(twin::checkSizes(k, {tokens, dim}));
  if (tokens == 0)
    return Status();
  const int64_t n = tokens * dim;
  MLLM_STATUS_TRY(checkArg(k, "dy", dy, n));
  MLLM_STATUS_TRY(checkArg(k, "x", x, n));
  MLLM_STATUS_TRY(checkArg(k, "w", w, dim, /*optional=*/true));
  MLLM_STATUS_TRY(checkArg(k, "rstd", rstd, tokens));
  MLLM_STATUS_TRY(checkArg(k, "dx", dx, n));
  MLLM_STATUS_TRY(checkArg(k, "dw", dw, dim, /*optional=*/true));
  std::vector<float> fdy = toFloat(dy, n), fx = toFloat(x, n),
                     fw = widenOptional(w, dim), fdx(n);
  cpu::rmsNormBackwardInput<float>(fdy.data(), fx.data(), orNull(fw), rstd,
                                   fdx.data(), tokens, dim);
  if (dw) // dw += sum_t dy * xhat
    cpu::rmsNormBackwardWeight<float>(fdy.data(), fx.data(), rstd, dw, tokens,
                                      dim);
  storeBf16(fdx.data(), dx, n);
  return Status();
}

Status cuda::layerNormForward(const bf16 *x, const bf16 *w, const bf16 *b,
                              bf16 *y, float *mean, float *rstd, int64_t tokens,
                              int64_t dim, float eps, cudaStream_t stream) {
  const char *k = "layerNormForward";
  MLLM_STATUS_TRY(twin::checkStream(k, stream));
  MLLM_STATUS_TRY(twin::checkSizes(k, {tokens, dim}));
  if (tokens == 0)
    return Status();
  const int64_t n = tokens * dim;
  MLLM_STATUS_TRY(checkArg(k, "x", x, n));
  MLLM_STATUS_TRY(checkArg(k, "w", w, dim, /*optional=*/true));
  MLLM_STATUS_TRY(checkArg(k, "b", b, dim, /*optional=*/true));
  MLLM_STATUS_TRY(checkArg(k, "y", y, n));
  MLLM_STATUS_TRY(checkArg(k, "mean", mean, tokens, /*optional=*/true));
  MLLM_STATUS_TRY(checkArg(k, "rstd", rstd, tokens, /*optional=*/true));
  std::vector<float> fx = toFloat(x, n), fw = widenOptional(w, dim),
                     fb = widenOptional(b, dim), fy(n), fm(tokens), fr(tokens);
  cpu::layerNormForward<float>(fx.data(), orNull(fw), orNull(fb), fy.data(),
                               fm.data(), fr.data(), tokens, dim, eps);
  storeBf16(fy.data(), y, n);
  if (mean)
    std::copy(fm.begin(), fm.end(), mean);
  if (rstd)
    std::copy(fr.begin(), fr.end(), rstd);
  return Status();
}

Status cuda::layerNormBackward(const bf16 *dy, const bf16 *x, const bf16 *w,
                               const float *mean, const float *rstd, bf16 *dx,
                               float *dw, float *db, int64_t tokens,
                               int64_t dim, cudaStream_t stream) {
  const char *k = "layerNormBackward";
  if (!mean)
    return Status::error("layerNormBackward needs the saved mean");
  MLLM_STATUS_TRY(twin::checkStream(k, stream));
  MLLM_STATUS_TRY(twin::checkSizes(k, {tokens, dim}));
  if (tokens == 0)
    return Status();
  const int64_t n = tokens * dim;
  MLLM_STATUS_TRY(checkArg(k, "dy", dy, n));
  MLLM_STATUS_TRY(checkArg(k, "x", x, n));
  MLLM_STATUS_TRY(checkArg(k, "w", w, dim, /*optional=*/true));
  MLLM_STATUS_TRY(checkArg(k, "mean", mean, tokens));
  MLLM_STATUS_TRY(checkArg(k, "rstd", rstd, tokens));
  MLLM_STATUS_TRY(checkArg(k, "dx", dx, n));
  MLLM_STATUS_TRY(checkArg(k, "dw", dw, dim, /*optional=*/true));
  MLLM_STATUS_TRY(checkArg(k, "db", db, dim, /*optional=*/true));
  std::vector<float> fdy = toFloat(dy, n), fx = toFloat(x, n),
                     fw = widenOptional(w, dim), fdx(n);
  cpu::layerNormBackwardInput<float>(fdy.data(), fx.data(), orNull(fw), mean,
                                     rstd, fdx.data(), tokens, dim);
  if (dw || db) // dw += sum dy * xhat, db += sum dy
    cpu::layerNormBackwardWeight<float>(fdy.data(), fx.data(), mean, rstd, dw,
                                        db, tokens, dim);
  storeBf16(fdx.data(), dx, n);
  return Status();
}

//===----------------------------------------------------------------------===//
// RoPE and activations
//===----------------------------------------------------------------------===//

Status cuda::ropeForward(const bf16 *x, bf16 *y, const int64_t *positions,
                         int64_t tokens, int64_t heads, int64_t headDim,
                         double theta, cudaStream_t stream) {
  return rope("ropeForward", x, y, positions, tokens, heads, headDim, theta,
              /*backward=*/false, stream);
}

Status cuda::ropeBackward(const bf16 *dy, bf16 *dx, const int64_t *positions,
                          int64_t tokens, int64_t heads, int64_t headDim,
                          double theta, cudaStream_t stream) {
  return rope("ropeBackward", dy, dx, positions, tokens, heads, headDim, theta,
              /*backward=*/true, stream);
}

Status cuda::geluForward(const bf16 *x, bf16 *y, int64_t n,
                         cudaStream_t stream) {
  return unaryForward("geluForward", Unary::Gelu, x, y, n, stream);
}

Status cuda::geluBackward(const bf16 *x, const bf16 *dy, bf16 *dx, int64_t n,
                          cudaStream_t stream) {
  return unaryBackward("geluBackward", Unary::Gelu, x, dy, dx, n, stream);
}

Status cuda::reluForward(const bf16 *x, bf16 *y, int64_t n,
                         cudaStream_t stream) {
  return unaryForward("reluForward", Unary::Relu, x, y, n, stream);
}

Status cuda::reluBackward(const bf16 *x, const bf16 *dy, bf16 *dx, int64_t n,
                          cudaStream_t stream) {
  return unaryBackward("reluBackward", Unary::Relu, x, dy, dx, n, stream);
}

Status cuda::siluForward(const bf16 *x, bf16 *y, int64_t n,
                         cudaStream_t stream) {
  return unaryForward("siluForward", Unary::Silu, x, y, n, stream);
}

Status cuda::siluBackward(const bf16 *x, const bf16 *dy, bf16 *dx, int64_t n,
                          cudaStream_t stream) {
  return unaryBackward("siluBackward", Unary::Silu, x, dy, dx, n, stream);
}

Status cuda::swigluForward(const bf16 *in, bf16 *out, int64_t tokens,
                           int64_t ffn, cudaStream_t stream) {
  return gatedForward("swigluForward", Gated::SwiGlu, in, out, tokens, ffn,
                      stream);
}

Status cuda::swigluBackward(const bf16 *in, const bf16 *dout, bf16 *din,
                            int64_t tokens, int64_t ffn, cudaStream_t stream) {
  return gatedBackward("swigluBackward", Gated::SwiGlu, in, dout, din, tokens,
                       ffn, stream);
}

Status cuda::gegluForward(const bf16 *in, bf16 *out, int64_t tokens,
                          int64_t ffn, cudaStream_t stream) {
  return gatedForward("gegluForward", Gated::GeGlu, in, out, tokens, ffn,
                      stream);
}

Status cuda::gegluBackward(const bf16 *in, const bf16 *dout, bf16 *din,
                           int64_t tokens, int64_t ffn, cudaStream_t stream) {
  return gatedBackward("gegluBackward", Gated::GeGlu, in, dout, din, tokens,
                       ffn, stream);
}

Status cuda::gluForward(const bf16 *in, bf16 *out, int64_t tokens,
                        int64_t width, cudaStream_t stream) {
  return gatedForward("gluForward", Gated::Glu, in, out, tokens, width, stream);
}

Status cuda::gluBackward(const bf16 *in, const bf16 *dout, bf16 *din,
                         int64_t tokens, int64_t width, cudaStream_t stream) {
  return gatedBackward("gluBackward", Gated::Glu, in, dout, din, tokens, width,
                       stream);
}

namespace mllm {
namespace kernels {
namespace cuda {
// Defined inside the namespace rather than as cuda::addInPlace, so that
// this file also builds against a Layers.h that does not declare it yet.
Status addInPlace(bf16 *y, const bf16 *x, int64_t n, cudaStream_t stream) {
  const char *k = "addInPlace";
  MLLM_STATUS_TRY(twin::checkStream(k, stream));
  MLLM_STATUS_TRY(twin::checkSizes(k, {n}));
  if (n == 0)
    return Status();
  MLLM_STATUS_TRY(checkArg(k, "y", static_cast<const bf16 *>(y), n));
  MLLM_STATUS_TRY(checkArg(k, "x", x, n));
  std::vector<float> fy = toFloat(y, n), fx = toFloat(x, n);
  cpu::add<float>(fy.data(), fx.data(), n); // the sum in fp32, rounded once
  storeBf16(fy.data(), y, n);
  return Status();
}
} // namespace cuda
} // namespace kernels
} // namespace mllm

Status cuda::scaleAdd(bf16 *y, const bf16 *x, float a, int64_t n,
                      cudaStream_t stream) {
  const char *k = "scaleAdd";
  MLLM_STATUS_TRY(twin::checkStream(k, stream));
  MLLM_STATUS_TRY(twin::checkSizes(k, {n}));
  if (n == 0)
    return Status();
  MLLM_STATUS_TRY(checkArg(k, "y", static_cast<const bf16 *>(y), n));
  MLLM_STATUS_TRY(checkArg(k, "x", x, n));
  std::vector<float> fy = toFloat(y, n), ax(n);
  cpu::scale<float>(toFloat(x, n).data(), a, ax.data(), n);
  cpu::add<float>(fy.data(), ax.data(), n); // as the CUDA kernel: no FMA
  storeBf16(fy.data(), y, n);
  return Status();
}

//===----------------------------------------------------------------------===//
// Row vectors, rows and patches
//===----------------------------------------------------------------------===//

Status cuda::addRowVector(bf16 *x, const bf16 *v, int64_t rows, int64_t cols,
                          cudaStream_t stream) {
  const char *k = "addRowVector";
  MLLM_STATUS_TRY(twin::checkStream(k, stream));
  MLLM_STATUS_TRY(twin::checkSizes(k, {rows, cols}));
  const int64_t n = rows * cols;
  if (n == 0)
    return Status();
  MLLM_STATUS_TRY(checkArg(k, "x", static_cast<const bf16 *>(x), n));
  MLLM_STATUS_TRY(checkArg(k, "v", v, cols));
  std::vector<float> fx = toFloat(x, n), fv = toFloat(v, cols);
  for (int64_t r = 0; r < rows; ++r) // the sum in fp32, rounded once
    cpu::add<float>(fx.data() + r * cols, fv.data(), cols);
  storeBf16(fx.data(), x, n);
  return Status();
}

Status cuda::sumRows(const bf16 *dx, float *dv, int64_t rows, int64_t cols,
                     cudaStream_t stream) {
  const char *k = "sumRows";
  MLLM_STATUS_TRY(twin::checkStream(k, stream));
  MLLM_STATUS_TRY(twin::checkSizes(k, {rows, cols}));
  if (rows == 0 || cols == 0)
    return Status();
  MLLM_STATUS_TRY(checkArg(k, "dx", dx, rows * cols));
  MLLM_STATUS_TRY(checkArg(k, "dv", dv, cols));
  // The CPU column sum (double running sums) of this call, then one fp32
  // addition per element, as the CUDA kernel adds its total.
  std::vector<float> fdx = toFloat(dx, rows * cols), sums(cols, 0.0f);
  cpu::columnSum<float>(fdx.data(), sums.data(), rows, cols);
  for (int64_t c = 0; c < cols; ++c)
    dv[c] += sums[c];
  return Status();
}

Status cuda::copyRows(const bf16 *src, const int64_t *srcRows, bf16 *dst,
                      const int64_t *dstRows, int64_t rows, int64_t width,
                      cudaStream_t stream) {
  const char *k = "copyRows";
  MLLM_STATUS_TRY(twin::checkStream(k, stream));
  MLLM_STATUS_TRY(twin::checkSizes(k, {rows, width}));
  if (rows * width == 0)
    return Status();
  MLLM_STATUS_TRY(checkArg(k, "srcRows", srcRows, rows, /*optional=*/true));
  MLLM_STATUS_TRY(checkArg(k, "dstRows", dstRows, rows, /*optional=*/true));
  // With an index list, the first row must be device memory and every
  // indexed row must lie in the same allocation; without, all `rows`.
  MLLM_STATUS_TRY(checkArg(k, "dst", static_cast<const bf16 *>(dst),
                           dstRows ? width : rows * width));
  if (src)
    MLLM_STATUS_TRY(checkArg(k, "src", src, srcRows ? width : rows * width));
  auto outside = [&](const char *list, int64_t i, int64_t row,
                     const char *array, const char *access) {
    return Status::error(std::string(k) + ": " + list + "[" +
                         std::to_string(i) + "] = " + std::to_string(row) +
                         " is a row outside " + array +
                         "'s allocation (host twin; the GPU would " + access +
                         " out of bounds)");
  };
  for (int64_t i = 0; i < rows; ++i) {
    if (src && srcRows &&
        !twin::isInAllocationOf(src, rowAddress(src, srcRows[i], width),
                                width * sizeof(bf16)))
      return outside("srcRows", i, srcRows[i], "src", "read");
    if (dstRows &&
        !twin::isInAllocationOf(dst, rowAddress(dst, dstRows[i], width),
                                width * sizeof(bf16)))
      return outside("dstRows", i, dstRows[i], "dst", "write");
  }
  // Every source row is read before any row is written.
  std::vector<bf16> moved(rows * width, __float2bfloat16(0.0f));
  if (src)
    for (int64_t i = 0; i < rows; ++i) {
      const bf16 *from = src + (srcRows ? srcRows[i] : i) * width;
      std::copy(from, from + width, moved.data() + i * width);
    }
  for (int64_t i = 0; i < rows; ++i)
    std::copy(moved.data() + i * width, moved.data() + (i + 1) * width,
              dst + (dstRows ? dstRows[i] : i) * width);
  return Status();
}

Status cuda::patchify(const bf16 *image, bf16 *patches,
                      const cpu::PatchShape &shape, int64_t items,
                      cudaStream_t stream) {
  const char *k = "patchify";
  MLLM_STATUS_TRY(twin::checkStream(k, stream));
  if (std::string why = checkPatchShape(shape); !why.empty())
    return Status::error("patchify: " + why);
  MLLM_STATUS_TRY(twin::checkSizes(k, {items}));
  const int64_t in = shape.channels * shape.frames * shape.height * shape.width;
  const int64_t out = shape.numPatches() * shape.patchDim();
  if (items * out == 0)
    return Status();
  MLLM_STATUS_TRY(checkArg(k, "image", image, items * in));
  MLLM_STATUS_TRY(checkArg(k, "patches", patches, items * out));
  // The CPU kernel item by item on the widened values: a copy, exact.
  std::vector<float> fimage = toFloat(image, items * in), fpatches(out);
  for (int64_t i = 0; i < items; ++i) {
    cpu::patchify<float>(fimage.data() + i * in, fpatches.data(), shape);
    storeBf16(fpatches.data(), patches + i * out, out);
  }
  return Status();
}

//===----------------------------------------------------------------------===//
// 1-D convolutions
//===----------------------------------------------------------------------===//

namespace {

Status checkConvCall(const char *k, const cpu::Conv1dShape &shape,
                     int64_t items, cudaStream_t stream) {
  MLLM_STATUS_TRY(twin::checkStream(k, stream));
  if (std::string why = checkConv1dShape(shape); !why.empty())
    return Status::error(std::string(k) + ": " + why);
  return twin::checkSizes(k, {items});
}

/// Error when the `n` inputs at `in` and the `m` outputs at `out` overlap:
/// the CUDA kernels read neighbours another thread may already have
/// written.
Status checkApart(const char *k, const char *inArg, const bf16 *in, int64_t n,
                  const char *outArg, const bf16 *out, int64_t m) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(in),
                  b = reinterpret_cast<uintptr_t>(out);
  if (a < b + m * sizeof(bf16) && b < a + n * sizeof(bf16))
    return Status::error(std::string(k) + ": " + inArg + " and " + outArg +
                         " overlap (host twin; the GPU would read values "
                         "already overwritten)");
  return Status();
}

Status checkDepthwiseCall(const char *k, int64_t frames, int64_t channels,
                          int64_t taps, int64_t items, cudaStream_t stream) {
  MLLM_STATUS_TRY(twin::checkStream(k, stream));
  MLLM_STATUS_TRY(twin::checkSizes(k, {frames, channels, items}));
  if (taps < 1)
    return Status::error(std::string(k) + ": a kernel of " +
                         std::to_string(taps) + " taps is not positive");
  return Status();
}

} // namespace

Status cuda::im2col1d(const bf16 *x, bf16 *cols, const cpu::Conv1dShape &shape,
                      int64_t items, cudaStream_t stream) {
  const char *k = "im2col1d";
  MLLM_STATUS_TRY(checkConvCall(k, shape, items, stream));
  const int64_t in = shape.frames * shape.inChannels;
  const int64_t out = shape.outFrames() * shape.colsWidth();
  if (items * out == 0)
    return Status();
  MLLM_STATUS_TRY(checkArg(k, "x", x, items * in));
  MLLM_STATUS_TRY(checkArg(k, "cols", cols, items * out));
  MLLM_STATUS_TRY(checkApart(k, "x", x, items * in, "cols", cols, items * out));
  // The CPU kernel item by item on the widened values: a copy, exact.
  std::vector<float> fx = toFloat(x, items * in), fcols(out);
  for (int64_t i = 0; i < items; ++i) {
    cpu::im2col1d<float>(fx.data() + i * in, fcols.data(), shape);
    storeBf16(fcols.data(), cols + i * out, out);
  }
  return Status();
}

Status cuda::col2im1d(const bf16 *dcols, bf16 *dx,
                      const cpu::Conv1dShape &shape, int64_t items,
                      cudaStream_t stream) {
  const char *k = "col2im1d";
  MLLM_STATUS_TRY(checkConvCall(k, shape, items, stream));
  const int64_t in = shape.frames * shape.inChannels;
  const int64_t out = shape.outFrames() * shape.colsWidth();
  if (items * in == 0)
    return Status();
  MLLM_STATUS_TRY(checkArg(k, "dcols", dcols, items * out));
  MLLM_STATUS_TRY(checkArg(k, "dx", dx, items * in));
  MLLM_STATUS_TRY(
      checkApart(k, "dcols", dcols, items * out, "dx", dx, items * in));
  // The CPU gather in fp32 (the CUDA kernel's order: the same bits).
  std::vector<float> fdcols = toFloat(dcols, items * out), fdx(in);
  for (int64_t i = 0; i < items; ++i) {
    cpu::col2im1d<float>(fdcols.data() + i * out, fdx.data(), shape);
    storeBf16(fdx.data(), dx + i * in, in);
  }
  return Status();
}

Status cuda::depthwiseConv1dForward(const bf16 *x, const bf16 *w, const bf16 *b,
                                    bf16 *y, int64_t frames, int64_t channels,
                                    int64_t kernel, int64_t items,
                                    cudaStream_t stream) {
  const char *k = "depthwiseConv1dForward";
  MLLM_STATUS_TRY(
      checkDepthwiseCall(k, frames, channels, kernel, items, stream));
  const int64_t per = frames * channels;
  if (items * per == 0)
    return Status();
  MLLM_STATUS_TRY(checkArg(k, "x", x, items * per));
  MLLM_STATUS_TRY(checkArg(k, "w", w, channels * kernel));
  MLLM_STATUS_TRY(checkArg(k, "b", b, channels, /*optional=*/true));
  MLLM_STATUS_TRY(checkArg(k, "y", y, items * per));
  MLLM_STATUS_TRY(checkApart(k, "x", x, items * per, "y", y, items * per));
  std::vector<float> fx = toFloat(x, items * per),
                     fw = toFloat(w, channels * kernel),
                     fb = widenOptional(b, channels), fy(items * per);
  for (int64_t i = 0; i < items; ++i)
    cpu::depthwiseConv1dForward<float>(fx.data() + i * per, fw.data(),
                                       orNull(fb), fy.data() + i * per, frames,
                                       channels, kernel);
  storeBf16(fy.data(), y, items * per);
  return Status();
}

Status cuda::depthwiseConv1dBackwardInput(const bf16 *dy, const bf16 *w,
                                          bf16 *dx, int64_t frames,
                                          int64_t channels, int64_t kernel,
                                          int64_t items, cudaStream_t stream) {
  const char *k = "depthwiseConv1dBackwardInput";
  MLLM_STATUS_TRY(
      checkDepthwiseCall(k, frames, channels, kernel, items, stream));
  const int64_t per = frames * channels;
  if (items * per == 0)
    return Status();
  MLLM_STATUS_TRY(checkArg(k, "dy", dy, items * per));
  MLLM_STATUS_TRY(checkArg(k, "w", w, channels * kernel));
  MLLM_STATUS_TRY(checkArg(k, "dx", dx, items * per));
  MLLM_STATUS_TRY(checkApart(k, "dy", dy, items * per, "dx", dx, items * per));
  std::vector<float> fdy = toFloat(dy, items * per),
                     fw = toFloat(w, channels * kernel), fdx(items * per);
  for (int64_t i = 0; i < items; ++i)
    cpu::depthwiseConv1dBackwardInput<float>(fdy.data() + i * per, fw.data(),
                                             fdx.data() + i * per, frames,
                                             channels, kernel);
  storeBf16(fdx.data(), dx, items * per);
  return Status();
}

Status cuda::depthwiseConv1dBackwardWeight(const bf16 *x, const bf16 *dy,
                                           float *dw, float *db, int64_t frames,
                                           int64_t channels, int64_t kernel,
                                           int64_t items, cudaStream_t stream) {
  const char *k = "depthwiseConv1dBackwardWeight";
  MLLM_STATUS_TRY(
      checkDepthwiseCall(k, frames, channels, kernel, items, stream));
  const int64_t per = frames * channels;
  if (items * per == 0)
    return Status();
  MLLM_STATUS_TRY(checkArg(k, "x", x, items * per));
  MLLM_STATUS_TRY(checkArg(k, "dy", dy, items * per));
  MLLM_STATUS_TRY(checkArg(k, "dw", dw, channels * kernel));
  MLLM_STATUS_TRY(checkArg(k, "db", db, channels, /*optional=*/true));
  // The CPU kernel item by item into zeroed sums (double within an item),
  // then one fp32 addition per element, as the CUDA kernel adds its total.
  std::vector<float> fx = toFloat(x, items * per),
                     fdy = toFloat(dy, items * per);
  std::vector<float> sw(channels * kernel, 0.0f), sb(db ? channels : 0, 0.0f);
  for (int64_t i = 0; i < items; ++i)
    cpu::depthwiseConv1dBackwardWeight<float>(
        fx.data() + i * per, fdy.data() + i * per, sw.data(),
        db ? sb.data() : nullptr, frames, channels, kernel);
  for (int64_t e = 0; e < channels * kernel; ++e)
    dw[e] += sw[e];
  for (int64_t c = 0; db && c < channels; ++c)
    db[c] += sb[c];
  return Status();
}

//===----------------------------------------------------------------------===//
// Cross-entropy
//===----------------------------------------------------------------------===//

Status cuda::crossEntropyForward(const bf16 *logits, const int64_t *targets,
                                 float *lse, double *lossSum, int64_t *count,
                                 int64_t tokens, int64_t vocab,
                                 cudaStream_t stream, int64_t ignoreIndex) {
  const char *k = "crossEntropyForward";
  MLLM_STATUS_TRY(twin::checkStream(k, stream));
  MLLM_STATUS_TRY(twin::checkSizes(k, {tokens, vocab}));
  MLLM_STATUS_TRY(checkArg(k, "lossSum", lossSum, 1));
  MLLM_STATUS_TRY(checkArg(k, "count", count, 1));
  if (tokens == 0) {
    *lossSum = 0;
    *count = 0;
    return Status();
  }
  MLLM_STATUS_TRY(checkArg(k, "logits", logits, tokens * vocab));
  MLLM_STATUS_TRY(checkArg(k, "targets", targets, tokens));
  MLLM_STATUS_TRY(checkArg(k, "lse", lse, tokens));
  // A counted target outside the vocabulary makes the CUDA kernel's loss
  // NaN (so the bug shows); the CPU kernel asserts instead, so it gets the
  // ignore index here and the NaN is added afterwards.
  std::vector<int64_t> cpuTargets(targets, targets + tokens);
  int64_t outside = 0;
  for (int64_t &t : cpuTargets)
    if (t != ignoreIndex && (t < 0 || t >= vocab)) {
      t = ignoreIndex;
      ++outside;
    }
  std::vector<double> rowLse(tokens, -std::numeric_limits<double>::infinity());
  cpu::CrossEntropyResult result;
  if (vocab > 0) {
    std::vector<float> fl = toFloat(logits, tokens * vocab);
    result = cpu::softmaxCrossEntropyForward<float>(
        fl.data(), cpuTargets.data(), rowLse.data(), tokens, vocab,
        ignoreIndex);
  }
  for (int64_t t = 0; t < tokens; ++t)
    lse[t] = static_cast<float>(rowLse[t]);
  *lossSum =
      outside ? std::numeric_limits<double>::quiet_NaN() : result.lossSum;
  *count = result.count + outside;
  return Status();
}

namespace {

/// crossEntropySliceBackward, and crossEntropyBackward as its slice from 0
/// (named `k` in errors).
Status ceBackward(const char *k, const bf16 *logits, const int64_t *targets,
                  const float *lse, bf16 *dlogits, float scale, int64_t tokens,
                  int64_t vocab, int64_t vocabFirst, cudaStream_t stream,
                  int64_t ignoreIndex) {
  MLLM_STATUS_TRY(twin::checkStream(k, stream));
  MLLM_STATUS_TRY(twin::checkSizes(k, {tokens, vocab, vocabFirst}));
  if (tokens == 0 || vocab == 0)
    return Status();
  const int64_t n = tokens * vocab;
  MLLM_STATUS_TRY(checkArg(k, "logits", logits, n));
  MLLM_STATUS_TRY(checkArg(k, "targets", targets, tokens));
  MLLM_STATUS_TRY(checkArg(k, "lse", lse, tokens));
  MLLM_STATUS_TRY(checkArg(k, "dlogits", dlogits, n));
  std::vector<float> fl = toFloat(logits, n), fg(n);
  std::vector<double> rowLse(lse, lse + tokens);
  // The CPU kernel on local targets. -1 (never a local target, whatever
  // the ignore index) marks the rows it must not one-hot: the ignored ones
  // and the counted ones whose target the slice lacks (another rank's, or,
  // unsplit, outside the vocabulary), which get the softmax alone below,
  // as the CUDA kernel gives them.
  constexpr int64_t kNoTarget = -1;
  std::vector<int64_t> local(tokens, kNoTarget), softmaxOnly;
  for (int64_t t = 0; t < tokens; ++t) {
    if (targets[t] == ignoreIndex)
      continue;
    if (targets[t] >= vocabFirst && targets[t] - vocabFirst < vocab)
      local[t] = targets[t] - vocabFirst;
    else
      softmaxOnly.push_back(t);
  }
  cpu::softmaxCrossEntropyBackward<float>(fl.data(), local.data(),
                                          rowLse.data(), fg.data(), scale,
                                          tokens, vocab, kNoTarget);
  for (int64_t t : softmaxOnly)
    for (int64_t v = 0; v < vocab; ++v)
      fg[t * vocab + v] = scale * std::exp(fl[t * vocab + v] - lse[t]);
  storeBf16(fg.data(), dlogits, n);
  return Status();
}

} // namespace

Status cuda::crossEntropyBackward(const bf16 *logits, const int64_t *targets,
                                  const float *lse, bf16 *dlogits, float scale,
                                  int64_t tokens, int64_t vocab,
                                  cudaStream_t stream, int64_t ignoreIndex) {
  return ceBackward("crossEntropyBackward", logits, targets, lse, dlogits,
                    scale, tokens, vocab, 0, stream, ignoreIndex);
}

Status cuda::crossEntropySliceBackward(const bf16 *logits,
                                       const int64_t *targets, const float *lse,
                                       bf16 *dlogits, float scale,
                                       int64_t tokens, int64_t vocab,
                                       int64_t vocabFirst, cudaStream_t stream,
                                       int64_t ignoreIndex) {
  return ceBackward("crossEntropySliceBackward", logits, targets, lse, dlogits,
                    scale, tokens, vocab, vocabFirst, stream, ignoreIndex);
}

// The vocabulary-parallel steps have no CPU kernel of their own (the CPU
// backend's is runtime code): each is the CPU kernel's formula, exp in
// fp32 and sums in double.

Status cuda::rowArgmax(const bf16 *logits, int64_t *argmax, int64_t tokens,
                       int64_t vocab, cudaStream_t stream) {
  const char *k = "rowArgmax";
  MLLM_STATUS_TRY(twin::checkStream(k, stream));
  MLLM_STATUS_TRY(twin::checkSizes(k, {tokens, vocab}));
  if (vocab >= (int64_t(1) << 24))
    return Status::error("rowArgmax: a vocabulary of " + std::to_string(vocab) +
                         " ids; the kernel's indices are exact below 2^24");
  MLLM_STATUS_TRY(checkArg(k, "logits", logits, tokens * vocab));
  MLLM_STATUS_TRY(checkArg(k, "argmax", argmax, tokens));
  std::vector<float> fl = toFloat(logits, tokens * vocab);
  for (int64_t t = 0; t < tokens; ++t) {
    int64_t best = -1;
    for (int64_t v = 0; v < vocab; ++v)
      if (!std::isnan(fl[t * vocab + v]) &&
          (best < 0 || fl[t * vocab + v] > fl[t * vocab + best]))
        best = v;
    argmax[t] = best;
  }
  return Status();
}

Status cuda::crossEntropyRowMax(const bf16 *logits, float *rowMax,
                                int64_t tokens, int64_t vocab,
                                cudaStream_t stream) {
  const char *k = "crossEntropyRowMax";
  MLLM_STATUS_TRY(twin::checkStream(k, stream));
  MLLM_STATUS_TRY(twin::checkSizes(k, {tokens, vocab}));
  MLLM_STATUS_TRY(checkArg(k, "logits", logits, tokens * vocab));
  MLLM_STATUS_TRY(checkArg(k, "rowMax", rowMax, tokens));
  std::vector<float> fl = toFloat(logits, tokens * vocab);
  for (int64_t t = 0; t < tokens; ++t) {
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t v = 0; v < vocab; ++v)
      m = std::fmax(m, fl[t * vocab + v]); // skips NaN, as fmaxf
    rowMax[t] = m;
  }
  return Status();
}

Status cuda::crossEntropySliceSums(const bf16 *logits, const int64_t *targets,
                                   const float *rowMax, double *sums,
                                   int64_t tokens, int64_t vocab,
                                   int64_t vocabFirst, cudaStream_t stream) {
  const char *k = "crossEntropySliceSums";
  MLLM_STATUS_TRY(twin::checkStream(k, stream));
  MLLM_STATUS_TRY(twin::checkSizes(k, {tokens, vocab, vocabFirst}));
  MLLM_STATUS_TRY(checkArg(k, "logits", logits, tokens * vocab));
  MLLM_STATUS_TRY(checkArg(k, "targets", targets, tokens));
  MLLM_STATUS_TRY(checkArg(k, "rowMax", rowMax, tokens));
  MLLM_STATUS_TRY(checkArg(k, "sums", sums, 2 * tokens));
  std::vector<float> fl = toFloat(logits, tokens * vocab);
  for (int64_t t = 0; t < tokens; ++t) {
    const float *row = fl.data() + t * vocab;
    double sum = 0;
    for (int64_t v = 0; v < vocab; ++v)
      sum += static_cast<double>(std::exp(row[v] - rowMax[t]));
    const int64_t target = targets[t];
    const bool held = target >= vocabFirst && target - vocabFirst < vocab;
    sums[t] = sum;
    sums[tokens + t] =
        held ? static_cast<double>(row[target - vocabFirst]) : 0.0;
  }
  return Status();
}

Status cuda::crossEntropyFromSums(const float *rowMax, const double *sums,
                                  const int64_t *targets, float *lse,
                                  double *lossSum, int64_t *count,
                                  int64_t tokens, cudaStream_t stream,
                                  int64_t ignoreIndex) {
  const char *k = "crossEntropyFromSums";
  MLLM_STATUS_TRY(twin::checkStream(k, stream));
  MLLM_STATUS_TRY(twin::checkSizes(k, {tokens}));
  MLLM_STATUS_TRY(checkArg(k, "rowMax", rowMax, tokens));
  MLLM_STATUS_TRY(checkArg(k, "sums", sums, 2 * tokens));
  MLLM_STATUS_TRY(checkArg(k, "targets", targets, tokens));
  MLLM_STATUS_TRY(checkArg(k, "lse", lse, tokens));
  MLLM_STATUS_TRY(checkArg(k, "lossSum", lossSum, 1));
  MLLM_STATUS_TRY(checkArg(k, "count", count, 1));
  double sum = 0;
  int64_t n = 0;
  for (int64_t t = 0; t < tokens; ++t) {
    const double l = static_cast<double>(rowMax[t]) + std::log(sums[t]);
    lse[t] = static_cast<float>(l);
    if (targets[t] == ignoreIndex)
      continue;
    sum += l - sums[tokens + t];
    ++n;
  }
  *lossSum = sum;
  *count = n;
  return Status();
}

//===----------------------------------------------------------------------===//
// Embedding
//===----------------------------------------------------------------------===//

Status cuda::embeddingForward(const int64_t *ids, const bf16 *table, bf16 *out,
                              int64_t tokens, int64_t dim,
                              cudaStream_t stream) {
  const char *k = "embeddingForward";
  MLLM_STATUS_TRY(twin::checkStream(k, stream));
  MLLM_STATUS_TRY(twin::checkSizes(k, {tokens, dim}));
  if (tokens * dim == 0)
    return Status();
  MLLM_STATUS_TRY(checkArg(k, "ids", ids, tokens));
  MLLM_STATUS_TRY(checkArg(k, "out", out, tokens * dim));
  MLLM_STATUS_TRY(checkArg(k, "table", table, dim));
  for (int64_t t = 0; t < tokens; ++t)
    if (!twin::isInAllocationOf(table, rowAddress(table, ids[t], dim),
                                dim * sizeof(bf16)))
      return rowOutsideTable(k, "token", t, ids[t]);
  // A gather: bf16 rows copied as they are (the CPU kernel's loop, on
  // bf16, whose vocabulary the CUDA API does not pass).
  for (int64_t t = 0; t < tokens; ++t)
    std::copy(table + ids[t] * dim, table + (ids[t] + 1) * dim, out + t * dim);
  return Status();
}

Status cuda::embeddingForwardSlice(const int64_t *ids, const bf16 *table,
                                   bf16 *out, int64_t tokens, int64_t dim,
                                   int64_t vocabFirst, int64_t vocabCount,
                                   cudaStream_t stream) {
  const char *k = "embeddingForwardSlice";
  MLLM_STATUS_TRY(twin::checkStream(k, stream));
  MLLM_STATUS_TRY(twin::checkSizes(k, {tokens, dim, vocabFirst, vocabCount}));
  if (tokens * dim == 0)
    return Status();
  MLLM_STATUS_TRY(checkArg(k, "ids", ids, tokens));
  MLLM_STATUS_TRY(checkArg(k, "out", out, tokens * dim));
  MLLM_STATUS_TRY(checkArg(k, "table", table, vocabCount * dim));
  for (int64_t t = 0; t < tokens; ++t) {
    bf16 *row = out + t * dim;
    if (ids[t] >= vocabFirst && ids[t] - vocabFirst < vocabCount)
      std::copy(table + (ids[t] - vocabFirst) * dim,
                table + (ids[t] - vocabFirst + 1) * dim, row);
    else
      std::fill(row, row + dim, __float2bfloat16(0.0f));
  }
  return Status();
}

Status cuda::embeddingBackward(const EmbeddingGradPlan &plan, const bf16 *dout,
                               float *dtable, int64_t dim,
                               cudaStream_t stream) {
  const char *k = "embeddingBackward";
  MLLM_STATUS_TRY(twin::checkStream(k, stream));
  MLLM_STATUS_TRY(twin::checkSizes(k, {dim}));
  const int64_t unique = plan.uniqueIds, tokens = plan.tokens;
  if (unique == 0 || dim == 0)
    return Status();
  MLLM_STATUS_TRY(checkArg(k, "dout", dout, tokens * dim));
  MLLM_STATUS_TRY(checkArg(k, "dtable", dtable, dim));
  const int64_t *ids = plan.ids.data();
  const int32_t *start = plan.start.data(), *order = plan.order.data();
  for (int64_t u = 0; u < unique; ++u)
    if (!twin::isInAllocationOf(dtable, rowAddress(dtable, ids[u], dim),
                                dim * sizeof(float)))
      return rowOutsideTable(k, "unique id", u, ids[u]);
  // The CPU scatter-add into a zeroed row per unique id (token order), then
  // one addition per table element: the CUDA kernel's order of additions,
  // so the same bits. A token the plan leaves out (a vocabulary slice's
  // plan) goes to one more row, dropped.
  std::vector<int64_t> slot(tokens, unique);
  for (int64_t u = 0; u < unique; ++u)
    for (int32_t i = start[u]; i < start[u + 1]; ++i)
      slot[order[i]] = u;
  std::vector<float> fdout = toFloat(dout, tokens * dim),
                     sums((unique + 1) * dim);
  cpu::embeddingBackwardWeight<float>(slot.data(), fdout.data(), sums.data(),
                                      tokens, unique + 1, dim);
  for (int64_t u = 0; u < unique; ++u)
    for (int64_t c = 0; c < dim; ++c)
      dtable[ids[u] * dim + c] += sums[u * dim + c];
  return Status();
}

//===----------------------------------------------------------------------===//
// AdamW
//===----------------------------------------------------------------------===//

Status cuda::adamwStep(const std::vector<AdamWTensor> &tensors, int64_t step,
                       const cpu::AdamConfig &config, cudaStream_t stream) {
  const char *k = "adamwStep";
  if (step < 1)
    return Status::error("adamwStep: steps are 1-based");
  MLLM_STATUS_TRY(twin::checkStream(k, stream));
  // Every tensor is checked before any is updated.
  for (size_t i = 0; i < tensors.size(); ++i) {
    const AdamWTensor &t = tensors[i];
    const std::string name = "tensors[" + std::to_string(i) + "].";
    MLLM_STATUS_TRY(twin::checkSizes(k, {t.n}));
    MLLM_STATUS_TRY(checkArg(k, (name + "param").c_str(), t.param, t.n));
    MLLM_STATUS_TRY(checkArg(k, (name + "grad").c_str(), t.grad, t.n));
    MLLM_STATUS_TRY(checkArg(k, (name + "expAvg").c_str(), t.expAvg, t.n));
    MLLM_STATUS_TRY(checkArg(k, (name + "expAvgSq").c_str(), t.expAvgSq, t.n));
    MLLM_STATUS_TRY(checkArg(k, (name + "paramBf16").c_str(), t.paramBf16, t.n,
                             /*optional=*/true));
  }
  for (const AdamWTensor &t : tensors) {
    if (t.n == 0)
      continue;
    cpu::adamwStep<float>(t.param, t.grad, t.expAvg, t.expAvgSq, t.n, step,
                          config);
    if (t.paramBf16)
      storeBf16(t.param, t.paramBf16, t.n);
  }
  return Status();
}
