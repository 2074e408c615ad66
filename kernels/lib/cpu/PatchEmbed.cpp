//===- PatchEmbed.cpp - Image/video patch embedding -----------------------===//

#include "mllm/kernels/cpu/PatchEmbed.h"
#include "mllm/kernels/cpu/Linear.h"
#include "mllm/kernels/cpu/Threads.h"

#include <cassert>
#include <cstring>

namespace mllm {
namespace kernels {
namespace cpu {

template <typename T>
void patchify(const T *image, T *patches, const PatchShape &s) {
  assert(s.patch >= 1 && s.temporalPatch >= 1 && "bad patch size");
  assert(s.frames % s.temporalPatch == 0 && s.height % s.patch == 0 &&
         s.width % s.patch == 0 && "image not a whole number of patches");
  int64_t p = s.patch, tp = s.temporalPatch;
  int64_t rows = s.height / p, colsN = s.width / p;
  int64_t num = s.numPatches(), dim = s.patchDim();
#pragma omp parallel for schedule(static) if (num * dim >= kParallelGrain)
  for (int64_t n = 0; n < num; ++n) {
    int64_t ti = n / (rows * colsN), hi = (n / colsN) % rows, wi = n % colsN;
    T *out = patches + n * dim;
    // Columns run over (c, dt, dy, dx): each dx run is one contiguous copy.
    for (int64_t c = 0; c < s.channels; ++c)
      for (int64_t dt = 0; dt < tp; ++dt)
        for (int64_t dy = 0; dy < p; ++dy) {
          const T *src =
              image +
              ((c * s.frames + ti * tp + dt) * s.height + hi * p + dy) *
                  s.width +
              wi * p;
          std::memcpy(out + ((c * tp + dt) * p + dy) * p, src, sizeof(T) * p);
        }
  }
}

template <typename T>
void patchEmbedForward(const T *image, const T *w, const T *b, T *patches, T *y,
                       const PatchShape &s, int64_t hidden) {
  patchify(image, patches, s);
  linearForward(patches, w, b, y, s.numPatches(), s.patchDim(), hidden);
}

template <typename T>
void patchEmbedBackwardWeight(const T *patches, const T *dy, T *dw, T *db,
                              const PatchShape &s, int64_t hidden) {
  linearBackwardWeight(patches, dy, dw, db, s.numPatches(), s.patchDim(),
                       hidden);
}

#define MLLM_INSTANTIATE(T)                                                    \
  template void patchify(const T *, T *, const PatchShape &);                  \
  template void patchEmbedForward(const T *, const T *, const T *, T *, T *,   \
                                  const PatchShape &, int64_t);                \
  template void patchEmbedBackwardWeight(const T *, const T *, T *, T *,       \
                                         const PatchShape &, int64_t);
MLLM_INSTANTIATE(float)
MLLM_INSTANTIATE(double)

} // namespace cpu
} // namespace kernels
} // namespace mllm
