//===- Tensor.cpp - tensors, parameter lists, fatal errors ----------------===//
//
// The small containers of the CPU layers: Tensor's shape helpers, the
// parameter list a layer owns, and the one fatal-error path for calls that
// do not match the layer.
//
//===----------------------------------------------------------------------===//

#include "mllm/runtime/cpu/LayerParts.h"

#include "llvm/Support/ErrorHandling.h"

#include <algorithm>

using namespace mllm::runtime;
using namespace mllm::runtime::cpu;

static int64_t product(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

template <typename T>
Tensor<T>::Tensor(std::vector<int64_t> shape, T fill)
    : shape(std::move(shape)) {
  data.assign(static_cast<size_t>(product(this->shape)), fill);
}

template <typename T>
int64_t Tensor<T>::numel() const {
  return shape.empty() ? 0 : product(shape);
}

template <typename T>
int64_t Tensor<T>::rows() const {
  if (shape.empty())
    return 0;
  return product(std::vector<int64_t>(shape.begin(), shape.end() - 1));
}

template <typename T>
void Tensor<T>::resize(std::vector<int64_t> newShape, T fill) {
  shape = std::move(newShape);
  data.assign(static_cast<size_t>(product(shape)), fill);
}

void mllm::runtime::cpu::layerFatal(const llvm::Twine &message) {
  llvm::report_fatal_error("mllm CPU layer: " + message,
                           /*gen_crash_diag=*/false);
}

template <typename T>
Param<T> *ParamList<T>::add(std::string name, std::vector<int64_t> shape,
                            ParamInit init, bool trainable, ShardInfo shard) {
  auto p = std::make_unique<Param<T>>();
  p->name = std::move(name);
  p->shard = std::move(shard);
  p->value.resize(shape);
  // A fixed table is a constant of the layer, never trained.
  p->trainable = trainable && init != ParamInit::Fixed;
  if (p->trainable)
    p->grad.resize(shape);
  p->init = init;
  params.push_back(std::move(p));
  return params.back().get();
}

template <typename T>
std::vector<Param<T> *> ParamList<T>::all() const {
  std::vector<Param<T> *> out;
  for (const auto &p : params)
    out.push_back(p.get());
  return out;
}

template <typename T>
void mllm::runtime::cpu::copyTo(Tensor<T> &dst, std::vector<int64_t> shape,
                                const T *src) {
  dst.resize(std::move(shape));
  std::copy(src, src + dst.numel(), dst.data.begin());
}

namespace mllm::runtime::cpu {
template struct Tensor<float>;
template struct Tensor<double>;
template class ParamList<float>;
template class ParamList<double>;
template void copyTo(Tensor<float> &, std::vector<int64_t>, const float *);
template void copyTo(Tensor<double> &, std::vector<int64_t>, const double *);
} // namespace mllm::runtime::cpu
