//===- PatchEmbed.h - Image/video patch embedding ---------------*- C++ -*-===//
//
// A vision encoder's first layer: a Conv3d (or Conv2d when temporalPatch and
// frames are 1) whose stride equals its kernel, done as im2col + linear.
// The image is one item, image[channels, frames, height, width]; patches are
// numbered row-major over (temporal block, row, column) and each becomes a
// row of patches[numPatches, channels * temporalPatch * patch * patch] whose
// columns run over (c, dt, dy, dx), the order of PyTorch's Conv3d weight
// [hidden, channels, temporalPatch, patch, patch] flattened. So
//
//   y[numPatches, hidden] = patches W^T + b,  W viewed as [hidden, patchDim].
//
// The image is data: no input gradient. backward-weight needs the patch
// matrix only, so the forward writes it for the runtime to keep.
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_KERNELS_CPU_PATCHEMBED_H
#define MLLM_KERNELS_CPU_PATCHEMBED_H

#include <cstdint>

namespace mllm {
namespace kernels {
namespace cpu {

struct PatchShape {
  int64_t channels = 3;
  int64_t frames = 1; ///< Temporal extent of the item (1 for an image).
  int64_t height = 0;
  int64_t width = 0;
  int64_t temporalPatch = 1;
  int64_t patch = 0; ///< Spatial patch side.

  int64_t numPatches() const {
    return (frames / temporalPatch) * (height / patch) * (width / patch);
  }
  int64_t patchDim() const { return channels * temporalPatch * patch * patch; }
};

/// patches[numPatches, patchDim] from image[C, T, H, W]. T, H, W must be
/// multiples of the patch sizes (asserted).
template <typename T>
void patchify(const T *image, T *patches, const PatchShape &s);

/// patchify, then y[numPatches, hidden] = patches W^T + b (`b` may be null).
template <typename T>
void patchEmbedForward(const T *image, const T *w, const T *b, T *patches, T *y,
                       const PatchShape &s, int64_t hidden);

/// dW[hidden, patchDim] += dy^T patches, db += sum dy (when non-null).
template <typename T>
void patchEmbedBackwardWeight(const T *patches, const T *dy, T *dw, T *db,
                              const PatchShape &s, int64_t hidden);

} // namespace cpu
} // namespace kernels
} // namespace mllm

#endif // MLLM_KERNELS_CPU_PATCHEMBED_H
