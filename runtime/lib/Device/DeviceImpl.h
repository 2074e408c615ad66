//===- DeviceImpl.h - the state of a DeviceTrainer --------------*- C++ -*-===//
//
// Private to runtime/lib/Device: parameters on the device, the layers of
// the LLM with the buffers their forward keeps for the backward, and the
// helpers that turn a kernel's Status into an llvm::Error.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_DEVICE_DEVICEIMPL_H
#define MLLM_RUNTIME_DEVICE_DEVICEIMPL_H

#include "mllm/runtime/device/DeviceTrainer.h"
#include "mllm/runtime/exec/Optimizer.h"

#include "mllm/kernels/cuda/Attention.h"
#include "mllm/kernels/cuda/Gemm.h"
#include "mllm/kernels/cuda/Layers.h"

#include <map>
#include <string>
#include <vector>

namespace mllm::runtime::device {

using kernels::cuda::bf16;
using kernels::cuda::DeviceArray;
using kernels::cuda::Status;

/// `status` as an llvm::Error naming `what`.
llvm::Error check(const Status &status, const llvm::Twine &what);

/// One parameter: fp32 master weights, the bf16 copy the kernels read, and
/// when it trains its fp32 gradient and AdamW moments.
struct DeviceParam {
  cpu::Param<float> *host = nullptr;
  std::string name;
  int64_t n = 0;
  DeviceArray<float> master, grad, expAvg, expAvgSq;
  DeviceArray<bf16> value;
  bool trains() const { return grad.size() > 0; }
};

enum class LayerKind { Embedding, Block, Norm, Head };

/// One layer of the LLM with what its forward keeps for one microbatch.
struct DeviceLayer {
  LayerKind kind = LayerKind::Block;
  std::string name; ///< "llm.blocks.3", for messages.
  LayerConfig config;
  bool gelu = false, gated = false, geglu = false, rope = false;
  /// By the CPU layer's parameter name ("wq", "norm1.weight", "weight").
  std::map<std::string, DeviceParam *> params;
  DeviceParam &param(const std::string &name) const { return *params.at(name); }

  // Saved by the forward (rows = sequences x tokens of one microbatch).
  DeviceArray<bf16> x;        ///< The input.
  DeviceArray<bf16> xn1, xn2; ///< Block: the norms' outputs; Norm: xn1.
  DeviceArray<float> mean1, rstd1, mean2, rstd2;
  DeviceArray<bf16> q, k, v, o; ///< q, k after RoPE.
  DeviceArray<float> lse;       ///< Attention: [sequences, heads, tokens].
  DeviceArray<bf16> h;          ///< x + attention.
  DeviceArray<bf16> u, a;       ///< Feed-forward pre-activation, activation.
  DeviceArray<bf16> logits;     ///< Head: [rows, vocab].
  DeviceArray<float> rowLse;    ///< Head: per row.
};

/// Gradient scratch shared by the layers (one backward at a time).
struct Scratch {
  DeviceArray<bf16> dy, dx;    ///< [rows, hidden]: the chain's gradient.
  DeviceArray<bf16> dxn, dh;   ///< [rows, hidden].
  DeviceArray<bf16> dO, dq;    ///< [rows, heads x head_dim].
  DeviceArray<bf16> dk, dv;    ///< [rows, kv_heads x head_dim].
  DeviceArray<bf16> da, du;    ///< Feed-forward: [rows, ffn], [rows, 2 ffn].
  DeviceArray<bf16> dlogits;   ///< [rows, vocab].
  DeviceArray<double> lossSum; ///< The head's loss sum (device scalar).
  DeviceArray<int64_t> count;
};

/// One microbatch as the kernels read it.
struct DeviceBatch {
  int64_t sequences = 0, tokens = 0;
  DeviceArray<int64_t> ids, targets, positions;
  std::vector<int64_t> hostIds;
  kernels::cuda::AttentionPlan attention;
  kernels::cuda::EmbeddingGradPlan embeddingGrad;
  double lossScale = 1;
  int64_t rows() const { return sequences * tokens; }
};

struct DeviceTrainer::Impl {
  exec::Model *model = nullptr;
  exec::DataSource *data = nullptr;
  cudaStream_t stream = nullptr;
  kernels::cuda::Gemm gemm;
  std::vector<std::unique_ptr<DeviceParam>> params;
  std::vector<DeviceLayer> layers;
  Scratch scratch;
  DeviceBatch batch;
  kernels::cpu::AdamConfig adam;
  /// The host side of a checkpoint: the moments as the CPU optimizer keeps
  /// them (filled from the device by save, read by load).
  std::unique_ptr<exec::Optimizer> host;
  int64_t done = 0;
  bool resharded = false;
  int64_t rows = 0, bytes = 0;

  ~Impl();
  llvm::Error build();
  llvm::Error allocate();
  llvm::Error loadBatch(const exec::MicrobatchData &data);
  /// Forward of the whole LLM for the loaded batch; adds its loss.
  llvm::Error forward(double &loss);
  /// Backward of the whole LLM: input and weight gradients.
  llvm::Error backward();
  llvm::Error optimizerStep();
  llvm::Error zeroGrads();

  /// Row-major C = alpha op(A) op(B) + beta C for a linear layer's three
  /// products (W is [out, in]): y = x W^T, dx (+)= dy W, dW += dy^T x.
  llvm::Error linear(const bf16 *x, const DeviceParam &w, bf16 *y, int64_t rows,
                     int64_t in, int64_t out, float beta = 0);
  llvm::Error linearInput(const bf16 *dy, const DeviceParam &w, bf16 *dx,
                          int64_t rows, int64_t in, int64_t out,
                          float beta = 0);
  llvm::Error linearWeight(const bf16 *x, const bf16 *dy, DeviceParam &w,
                           int64_t rows, int64_t in, int64_t out);
};

} // namespace mllm::runtime::device

#endif // MLLM_RUNTIME_DEVICE_DEVICEIMPL_H
