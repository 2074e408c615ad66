//===- HostTwinTest.cpp - What only the host twin does --------------------===//
//
// The fake CUDA runtime of MLLMKernelsCUDAHost (one device, host memory,
// streams and events with queued work, error reporting) and the checks its
// kernels add (pointers in live device allocations, streams, alignment,
// convolution inputs apart from their outputs), plus the parts of the
// kernel API the GPU tests leave out: strided-batched GEMMs, empty
// attention calls, the plan's lists. Only in
// MLLMCUDAHostTwinTests (docs/cuda.md, "Host twin").
//
//===----------------------------------------------------------------------===//

#include "GpuTestUtil.h"

#include "mllm/kernels/MaskFamilies.h"
#include "mllm/kernels/cpu/Gemm.h"
#include "mllm/kernels/cuda/Attention.h"
#include "mllm/kernels/cuda/Gemm.h"
#include "mllm/kernels/cuda/HostTwin.h"
#include "mllm/kernels/cuda/Layers.h"

#include <cstring>

using namespace mllm;
using namespace mllm::kernels;
using namespace mllm::cuda_test;
namespace cpu = mllm::kernels::cpu;
namespace gpu = mllm::kernels::cuda;

namespace {

/// `s` failed and its message contains `part`.
void expectError(const gpu::Status &s, const std::string &part) {
  ASSERT_FALSE(s.ok()) << "expected an error containing \"" << part << "\"";
  EXPECT_NE(s.message().find(part), std::string::npos) << s.message();
}

gpu::Status tryCopy(void *dst, const void *src, size_t n, cudaMemcpyKind k) {
  MLLM_CUDA_TRY(cudaMemcpy(dst, src, n, k));
  return gpu::Status();
}

TEST(HostTwin, OneDevice) {
  int count = 0, device = -1;
  ASSERT_EQ(cudaGetDeviceCount(&count), cudaSuccess);
  EXPECT_EQ(count, 1);
  ASSERT_EQ(cudaGetDevice(&device), cudaSuccess);
  EXPECT_EQ(device, 0);
  cudaDeviceProp prop;
  ASSERT_EQ(cudaGetDeviceProperties(&prop, 0), cudaSuccess);
  EXPECT_STREQ(prop.name, "host twin");
  EXPECT_EQ(prop.major, 9);
  EXPECT_EQ(prop.minor, 0);
  EXPECT_GT(prop.totalGlobalMem, size_t(0));
  int sms = 0;
  ASSERT_EQ(
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device),
      cudaSuccess);
  EXPECT_EQ(sms, prop.multiProcessorCount);

  // A failed call is recorded until cudaGetLastError reads it.
  EXPECT_EQ(cudaSetDevice(1), cudaErrorInvalidDevice);
  EXPECT_EQ(cudaPeekAtLastError(), cudaErrorInvalidDevice);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidDevice);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_STREQ(cudaGetErrorName(cudaErrorInvalidDevice),
               "cudaErrorInvalidDevice");
  EXPECT_STREQ(cudaGetErrorString(cudaErrorInvalidDevice),
               "invalid device ordinal");
}

TEST(HostTwin, DeviceMemory) {
  size_t free0 = 0, total = 0, free1 = 0;
  ASSERT_EQ(cudaMemGetInfo(&free0, &total), cudaSuccess);
  void *p = nullptr;
  ASSERT_EQ(cudaMalloc(&p, 1000), cudaSuccess);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 256, 0u);
  ASSERT_EQ(cudaMemGetInfo(&free1, &total), cudaSuccess);
  EXPECT_EQ(free0 - free1, 1000u);
  // Fresh memory is NaN, not zero: reading what nobody wrote shows.
  EXPECT_TRUE(std::isnan(static_cast<float *>(p)[0]));

  std::vector<char> host(1000, 7), back(1000, 0);
  ASSERT_EQ(cudaMemcpy(p, host.data(), 1000, cudaMemcpyHostToDevice),
            cudaSuccess);
  ASSERT_EQ(cudaMemset(static_cast<char *>(p) + 10, 3, 5), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(back.data(), p, 1000, cudaMemcpyDeviceToHost),
            cudaSuccess);
  EXPECT_EQ(back[9], 7);
  EXPECT_EQ(back[10], 3);
  EXPECT_EQ(back[15], 7);

  // One byte past the allocation, a host pointer as device memory, an
  // interior pointer to cudaFree: invalid arguments, as on a GPU.
  EXPECT_EQ(cudaMemcpy(p, host.data(), 1001, cudaMemcpyHostToDevice),
            cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpy(back.data(), host.data(), 10, cudaMemcpyDeviceToHost),
            cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemset(host.data(), 0, 10), cudaErrorInvalidValue);
  EXPECT_EQ(cudaFree(static_cast<char *>(p) + 8), cudaErrorInvalidValue);
  EXPECT_EQ(cudaFreeHost(p), cudaErrorInvalidValue);
  cudaGetLastError();
  expectError(tryCopy(p, host.data(), 2000, cudaMemcpyHostToDevice),
              "CUDA: cudaMemcpy(dst, src, n, k): cudaErrorInvalidValue: "
              "invalid argument");

  cudaPointerAttributes attr;
  ASSERT_EQ(cudaPointerGetAttributes(&attr, static_cast<char *>(p) + 999),
            cudaSuccess);
  EXPECT_EQ(attr.type, cudaMemoryTypeDevice);
  ASSERT_EQ(cudaPointerGetAttributes(&attr, host.data()), cudaSuccess);
  EXPECT_EQ(attr.type, cudaMemoryTypeUnregistered);
  void *pinned = nullptr;
  ASSERT_EQ(cudaMallocHost(&pinned, 64), cudaSuccess);
  ASSERT_EQ(cudaPointerGetAttributes(&attr, pinned), cudaSuccess);
  EXPECT_EQ(attr.type, cudaMemoryTypeHost);
  EXPECT_EQ(cudaFree(pinned), cudaErrorInvalidValue);
  EXPECT_EQ(cudaFreeHost(pinned), cudaSuccess);

  EXPECT_EQ(cudaFree(p), cudaSuccess);
  EXPECT_EQ(cudaFree(p), cudaErrorInvalidValue); // twice
  EXPECT_EQ(cudaFree(nullptr), cudaSuccess);
  void *empty = &free0;
  EXPECT_EQ(cudaMalloc(&empty, 0), cudaSuccess);
  EXPECT_EQ(empty, nullptr);
  cudaGetLastError();
}

TEST(HostTwin, PitchedCopiesAndMemsets) {
  // A 3 x 4 block out of rows of 10 bytes, into rows of 6.
  std::vector<char> host(30);
  for (size_t i = 0; i < host.size(); ++i)
    host[i] = static_cast<char>(i);
  void *src = nullptr, *dst = nullptr;
  ASSERT_EQ(cudaMalloc(&src, 30), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dst, 18), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(src, host.data(), 30, cudaMemcpyHostToDevice),
            cudaSuccess);
  ASSERT_EQ(cudaMemset(dst, 0, 18), cudaSuccess);
  ASSERT_EQ(cudaMemcpy2DAsync(dst, 6, static_cast<char *>(src) + 1, 10, 4, 3,
                              cudaMemcpyDeviceToDevice, nullptr),
            cudaSuccess);
  ASSERT_EQ(
      cudaMemset2DAsync(static_cast<char *>(dst) + 4, 6, 9, 2, 3, nullptr),
      cudaSuccess);
  std::vector<char> back(18);
  ASSERT_EQ(cudaMemcpy2D(back.data(), 6, dst, 6, 6, 3, cudaMemcpyDeviceToHost),
            cudaSuccess);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 6; ++c)
      EXPECT_EQ(back[r * 6 + c], c < 4 ? 10 * r + c + 1 : 9) << r << "," << c;
  // A width wider than a pitch (no broadcast with pitch 0), a span past the
  // allocation (the last row's end counts, not height x pitch), a host
  // pointer as device memory.
  EXPECT_EQ(cudaMemcpy2D(dst, 6, src, 0, 4, 3, cudaMemcpyDeviceToDevice),
            cudaErrorInvalidPitchValue);
  EXPECT_EQ(cudaMemset2D(dst, 6, 0, 7, 1), cudaErrorInvalidPitchValue);
  // A pitch past memPitch (2^31 - 1), which CUDA refuses.
  EXPECT_EQ(cudaMemcpy2D(dst, size_t(1) << 31, src, 10, 4, 1,
                         cudaMemcpyDeviceToDevice),
            cudaErrorInvalidPitchValue);
  EXPECT_EQ(cudaMemcpy2D(dst, 6, src, size_t(1) << 31, 4, 1,
                         cudaMemcpyDeviceToDevice),
            cudaErrorInvalidPitchValue);
  EXPECT_EQ(cudaMemset2D(dst, size_t(1) << 31, 0, 4, 1),
            cudaErrorInvalidPitchValue);
  EXPECT_EQ(cudaMemcpy2D(dst, 7, src, 10, 4, 3, cudaMemcpyDeviceToDevice),
            cudaSuccess); // 7 * 2 + 4 = 18 bytes
  EXPECT_EQ(cudaMemcpy2D(dst, 7, src, 10, 5, 3, cudaMemcpyDeviceToDevice),
            cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemset2D(host.data(), 10, 0, 4, 3), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpy2D(dst, 6, src, 10, 0, 3, cudaMemcpyDeviceToDevice),
            cudaSuccess); // empty
  cudaGetLastError();
  EXPECT_EQ(cudaFree(src), cudaSuccess);
  EXPECT_EQ(cudaFree(dst), cudaSuccess);
}

TEST(HostTwin, StreamsAndEvents) {
  cudaStream_t s = nullptr;
  cudaEvent_t a = nullptr, b = nullptr, untimed = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaEventCreate(&a), cudaSuccess);
  ASSERT_EQ(cudaEventCreate(&b), cudaSuccess);
  ASSERT_EQ(cudaEventCreateWithFlags(&untimed, cudaEventDisableTiming),
            cudaSuccess);
  float ms = -1;
  EXPECT_EQ(cudaEventQuery(a), cudaSuccess); // never recorded: complete
  EXPECT_EQ(cudaEventElapsedTime(&ms, a, b), cudaErrorInvalidResourceHandle);
  ASSERT_EQ(cudaEventRecord(a, s), cudaSuccess);
  ASSERT_EQ(cudaEventRecord(untimed, s), cudaSuccess);
  ASSERT_EQ(cudaStreamWaitEvent(nullptr, a, 0), cudaSuccess);
  ASSERT_EQ(cudaEventRecord(b, nullptr), cudaSuccess);
  ASSERT_EQ(cudaEventSynchronize(b), cudaSuccess);
  ASSERT_EQ(cudaEventElapsedTime(&ms, a, b), cudaSuccess);
  EXPECT_GE(ms, 0.0f);
  EXPECT_EQ(cudaEventElapsedTime(&ms, a, untimed),
            cudaErrorInvalidResourceHandle);
  ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  ASSERT_EQ(cudaStreamDestroy(s), cudaSuccess);
  for (cudaEvent_t e : {a, b, untimed})
    ASSERT_EQ(cudaEventDestroy(e), cudaSuccess);
  // Destroyed handles are invalid resource handles.
  EXPECT_EQ(cudaStreamSynchronize(s), cudaErrorInvalidResourceHandle);
  EXPECT_EQ(cudaEventRecord(a, nullptr), cudaErrorInvalidResourceHandle);
  EXPECT_EQ(cudaStreamDestroy(s), cudaErrorInvalidResourceHandle);
  cudaGetLastError();
  DeviceArray<bf16> x = upload(std::vector<bf16>(64));
  DeviceArray<bf16> y = upload(std::vector<bf16>(64));
  expectError(gpu::geluForward(x.data(), y.data(), 64, s),
              "is not a live stream");
}

/// Queued work that writes `value` into `*into` once it has been tested
/// `rounds` times after its start: a transfer in flight.
class Transfer final : public gpu::twin::AsyncWork {
public:
  Transfer(bf16 *into, bf16 value, int rounds, std::vector<int> &log, int id)
      : into(into), value(value), rounds(rounds), log(log), id(id) {}
  void start() override { log.push_back(id); }
  bool test() override {
    if (--rounds > 0)
      return false;
    *into = value;
    return true;
  }

private:
  bf16 *into;
  bf16 value;
  int rounds;
  std::vector<int> &log;
  int id;
};

TEST(HostTwin, QueuedWorkRunsInStreamOrder) {
  cudaGetLastError();
  cudaStream_t comm = nullptr, compute = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&comm, cudaStreamNonBlocking),
            cudaSuccess);
  ASSERT_EQ(cudaStreamCreate(&compute), cudaSuccess);
  cudaEvent_t received = nullptr;
  ASSERT_EQ(cudaEventCreateWithFlags(&received, cudaEventDisableTiming),
            cudaSuccess);
  DeviceArray<bf16> buf = upload(std::vector<bf16>(2, bf16(0.0f)));
  DeviceArray<bf16> out = upload(std::vector<bf16>(2, bf16(0.0f)));
  std::vector<int> started;
  // Two transfers on one stream: the second starts when the first is done.
  ASSERT_EQ(gpu::twin::enqueue(comm, std::make_unique<Transfer>(buf.data(),
                                                                bf16(2.0f), 10,
                                                                started, 1)),
            cudaSuccess);
  ASSERT_EQ(gpu::twin::enqueue(comm, std::make_unique<Transfer>(buf.data() + 1,
                                                                bf16(5.0f), 10,
                                                                started, 2)),
            cudaSuccess);
  EXPECT_EQ(started, std::vector<int>{1});
  ASSERT_EQ(cudaEventRecord(received, comm), cudaSuccess);
  EXPECT_EQ(cudaEventQuery(received), cudaErrorNotReady);
  EXPECT_EQ(cudaStreamQuery(comm), cudaErrorNotReady);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess); // not ready is no error
  // The compute stream waits for them without the host waiting; its next
  // kernel then runs after both, on what they wrote.
  ASSERT_EQ(cudaStreamWaitEvent(compute, received, 0), cudaSuccess);
  EXPECT_EQ(cudaStreamQuery(compute), cudaErrorNotReady);
  ASSERT_TRUE(gpu::scaleAdd(out.data(), buf.data(), 1.0f, 2, compute).ok());
  EXPECT_EQ(started, (std::vector<int>{1, 2}));
  EXPECT_EQ(cudaEventQuery(received), cudaSuccess);
  std::vector<bf16> got = download(out);
  EXPECT_EQ(float(got[0]), 2.0f);
  EXPECT_EQ(float(got[1]), 5.0f);
  // A stream that does not wait runs at once, before queued work lands:
  // the race a missing cudaStreamWaitEvent is on a GPU.
  ASSERT_EQ(gpu::twin::enqueue(comm, std::make_unique<Transfer>(buf.data(),
                                                                bf16(7.0f), 2,
                                                                started, 3)),
            cudaSuccess);
  ASSERT_TRUE(gpu::scaleAdd(out.data(), buf.data(), 1.0f, 1, compute).ok());
  EXPECT_EQ(float(download(out)[0]), 4.0f);
  // The legacy stream's copies wait for blocking streams only: not for the
  // non-blocking one's transfer, but for the blocking one's, and an event
  // recorded on the legacy stream completes after the blocking streams'
  // work queued before it.
  EXPECT_EQ(float(download(buf)[0]), 2.0f);
  ASSERT_EQ(gpu::twin::enqueue(
                compute, std::make_unique<Transfer>(buf.data() + 1, bf16(8.0f),
                                                    10, started, 30)),
            cudaSuccess);
  cudaEvent_t legacy = nullptr;
  ASSERT_EQ(cudaEventCreate(&legacy), cudaSuccess);
  ASSERT_EQ(cudaEventRecord(legacy, nullptr), cudaSuccess);
  EXPECT_EQ(cudaEventQuery(legacy), cudaErrorNotReady);
  EXPECT_EQ(float(download(buf)[1]), 8.0f);
  EXPECT_EQ(cudaEventQuery(legacy), cudaSuccess);
  ASSERT_EQ(cudaEventDestroy(legacy), cudaSuccess);
  // A stream synchronisation finishes its own queue.
  ASSERT_EQ(cudaStreamSynchronize(comm), cudaSuccess);
  EXPECT_EQ(float(download(buf)[0]), 7.0f);
  // Work left on a destroyed stream still finishes.
  ASSERT_EQ(gpu::twin::enqueue(comm, std::make_unique<Transfer>(buf.data(),
                                                                bf16(9.0f), 2,
                                                                started, 4)),
            cudaSuccess);
  ASSERT_EQ(cudaStreamDestroy(comm), cudaSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(float(download(buf)[0]), 9.0f);
  EXPECT_EQ(started, (std::vector<int>{1, 2, 3, 30, 4}));
  // Only live, non-default streams queue work.
  EXPECT_EQ(
      gpu::twin::enqueue(nullptr, std::make_unique<Transfer>(
                                      buf.data(), bf16(1.0f), 1, started, 5)),
      cudaErrorInvalidResourceHandle);
  EXPECT_EQ(gpu::twin::enqueue(comm, std::make_unique<Transfer>(buf.data(),
                                                                bf16(1.0f), 1,
                                                                started, 6)),
            cudaErrorInvalidResourceHandle);
  cudaGetLastError();
  // cudaFree waits for the whole device: a queued transfer may still write
  // the memory.
  ASSERT_EQ(
      gpu::twin::enqueue(compute, std::make_unique<Transfer>(
                                      buf.data(), bf16(11.0f), 10, started, 7)),
      cudaSuccess);
  void *other = nullptr;
  ASSERT_EQ(cudaMalloc(&other, 64), cudaSuccess);
  ASSERT_EQ(cudaFree(other), cudaSuccess);
  EXPECT_EQ(cudaStreamQuery(compute), cudaSuccess);
  ASSERT_EQ(cudaEventDestroy(received), cudaSuccess);
  ASSERT_EQ(cudaStreamDestroy(compute), cudaSuccess);
}

TEST(HostTwin, KernelsCheckTheirPointers) {
  const int64_t t = 4, d = 32;
  DeviceArray<bf16> x = upload(toBf16(randomFloats(t * d, 1)));
  DeviceArray<bf16> y = upload(std::vector<bf16>(t * d));
  std::vector<bf16> host(t * d);
  expectError(gpu::rmsNormForward(host.data(), nullptr, y.data(), nullptr, t, d,
                                  1e-5f, nullptr),
              "rmsNormForward: x (");
  // One token more than the arrays hold.
  expectError(gpu::rmsNormForward(x.data(), nullptr, y.data(), nullptr, t + 1,
                                  d, 1e-5f, nullptr),
              "no live cudaMalloc allocation holds its");
  expectError(gpu::rmsNormBackward(x.data(), x.data(), nullptr, nullptr,
                                   y.data(), nullptr, t, d, nullptr),
              "rstd is null");
  ASSERT_OK(gpu::rmsNormForward(x.data(), nullptr, y.data(), nullptr, t, d,
                                1e-5f, nullptr));

  // An id past the table reads outside its allocation.
  DeviceArray<int64_t> ids = upload(std::vector<int64_t>{0, 1, 4});
  DeviceArray<bf16> table = upload(std::vector<bf16>(4 * d));
  expectError(
      gpu::embeddingForward(ids.data(), table.data(), y.data(), 3, d, nullptr),
      "token 2 has id 4");

  // copyRows' indices must keep every row inside its array's allocation.
  DeviceArray<int64_t> rows = upload(std::vector<int64_t>{1, -1});
  expectError(gpu::copyRows(table.data(), rows.data(), y.data(), nullptr, 2, d,
                            nullptr),
              "srcRows[1] = -1 is a row outside src's allocation");
  expectError(gpu::copyRows(table.data(), nullptr, table.data(), ids.data(), 3,
                            d, nullptr),
              "dstRows[2] = 4 is a row outside dst's allocation");
  ASSERT_OK(gpu::copyRows(table.data(), nullptr, y.data(), ids.data(), 2, d,
                          nullptr));
  // Patches must fit their arrays.
  cpu::PatchShape ps;
  ps.channels = 1, ps.height = 8, ps.width = 16, ps.patch = 4;
  expectError(gpu::patchify(x.data(), y.data(), ps, 2, nullptr),
              "patchify: image (");

  // Convolution columns must fit their arrays, and a gather must not read
  // what it writes.
  const cpu::Conv1dShape conv{t, d, d, 3, 2, 1}; // 2 output frames of 96
  DeviceArray<bf16> cols = upload(std::vector<bf16>(2 * 3 * d + t * d));
  expectError(
      gpu::im2col1d(x.data(), cols.data() + 2 * 3 * d, conv, 1, nullptr),
      "im2col1d: cols (");
  ASSERT_OK(gpu::im2col1d(x.data(), cols.data(), conv, 1, nullptr));
  expectError(gpu::col2im1d(cols.data(), cols.data() + 3 * d, conv, 1, nullptr),
              "col2im1d: dcols and dx overlap");
  expectError(gpu::depthwiseConv1dForward(x.data(), table.data(), nullptr,
                                          x.data(), t, d, 3, 1, nullptr),
              "depthwiseConv1dForward: x and y overlap");
  DeviceArray<float> dw = upload(std::vector<float>(d * 3));
  expectError(gpu::depthwiseConv1dBackwardWeight(x.data(), y.data(), dw.data(),
                                                 nullptr, t, d, 4, 1, nullptr),
              "depthwiseConv1dBackwardWeight: dw (");

  // Attention tensors must be 16-byte aligned.
  TokenLayout layout;
  layout.words.assign(10, 0);
  gpu::AttentionPlan plan;
  ASSERT_OK(gpu::prepareAttention(gpu::AttentionTokens::whole(layout, {}), plan,
                                  nullptr));
  gpu::AttentionHeads h;
  DeviceArray<bf16> q = upload(std::vector<bf16>(11 * 64));
  DeviceArray<float> lse = upload(std::vector<float>(10));
  expectError(gpu::attentionForward(plan, h, q.data() + 1, q.data(), q.data(),
                                    q.data(), lse.data()),
              "is not 16-byte aligned");
  h.headDim = 96;
  expectError(gpu::attentionForward(plan, h, q.data(), q.data(), q.data(),
                                    q.data(), lse.data()),
              "head dim 96 is not supported");
}

TEST(HostTwin, ScaleAddChecksItsArraysAndHalvesExactly) {
  const int64_t n = 48;
  const std::vector<float> xs = roundBf16(randomFloats(n, 5, 8.0f));
  DeviceArray<bf16> x = upload(toBf16(xs));
  DeviceArray<bf16> y = upload(std::vector<bf16>(n, __float2bfloat16(0.0f)));
  // The backward's scaled copy (zeros + x / 2): every bf16 value halves
  // exactly, so these are x's values over 2 bit for bit.
  ASSERT_OK(gpu::scaleAdd(y.data(), x.data(), 0.5f, n, nullptr));
  std::vector<float> half(n);
  for (int64_t i = 0; i < n; ++i)
    half[i] = xs[i] / 2;
  EXPECT_EQ(toFloat(download(y)), half);
  // One element more than the arrays hold, a host array, nothing to do.
  expectError(gpu::scaleAdd(y.data(), x.data(), 0.5f, n + 1, nullptr),
              "scaleAdd: y (");
  std::vector<bf16> host(n);
  expectError(gpu::scaleAdd(y.data(), host.data(), 0.5f, n, nullptr),
              "scaleAdd: x (");
  ASSERT_OK(gpu::scaleAdd(nullptr, nullptr, 0.5f, 0, nullptr));
}

TEST(HostTwin, GemmStridedBatched) {
  gpu::Gemm gemm;
  const int64_t m = 5, n = 6, k = 7, batch = 3;
  gpu::GemmShape s;
  s.transB = true;
  s.m = m;
  s.n = n;
  s.k = k;
  s.lda = k + 1; // padded rows
  s.ldb = k;
  s.ldc = n + 2;
  s.batch = batch;
  s.strideA = m * s.lda;
  s.strideB = n * k;
  s.strideC = m * s.ldc;
  std::vector<float> a = roundBf16(randomFloats(batch * s.strideA, 3));
  std::vector<float> b = roundBf16(randomFloats(batch * s.strideB, 4));
  std::vector<float> c(batch * s.strideC, 0.5f);
  DeviceArray<bf16> da = upload(toBf16(a)), db = upload(toBf16(b)),
                    dc = upload(toBf16(c));
  expectError(gemm.run(s, 1.0f, da.data(), db.data(), 1.0f, dc.data(), nullptr),
              "Gemm::run before Gemm::init");
  ASSERT_OK(gemm.init(1 << 20));
  ASSERT_OK(gemm.run(s, 2.0f, da.data(), db.data(), 1.0f, dc.data(), nullptr));
  std::vector<float> ref = c;
  for (int64_t i = 0; i < batch; ++i)
    cpu::gemm<float>(false, true, m, n, k, 2.0f, a.data() + i * s.strideA,
                     s.lda, b.data() + i * s.strideB, s.ldb, 1.0f,
                     ref.data() + i * s.strideC, s.ldc);
  std::vector<float> got = toFloat(download(dc));
  EXPECT_LT(relError(got, ref), 2e-2);
  for (int64_t i = 0; i < batch; ++i) // the row padding is left alone
    EXPECT_EQ(got[i * s.strideC + n], 0.5f);
  s.ldb = k - 1;
  expectError(gemm.run(s, 1.0f, da.data(), db.data(), 0.0f, dc.data(), nullptr),
              "CUBLAS_STATUS_INVALID_VALUE");
}

TEST(HostTwin, AttentionPlanListsAndEmptyCalls) {
  GeneratedMask m = generateMask(MaskFamily::Causal, 300, 1);
  const TokenLayout &layout = m.layout;
  const MaskPolicy causal = m.policy;
  gpu::AttentionPlan plan;
  ASSERT_OK(gpu::prepareAttention(gpu::AttentionTokens::whole(layout, causal),
                                  plan, nullptr));
  ASSERT_EQ(plan.rowTiles, 5);
  EXPECT_EQ(plan.nonSkippedTiles, 15); // the lower triangle
  EXPECT_EQ(plan.partialTiles, 5);     // its diagonal
  EXPECT_EQ(plan.visiblePairs, 300 * 301 / 2);
  std::vector<int32_t> rowStart = download(plan.rowStart),
                       rowCols = download(plan.rowCols),
                       rowOrder = download(plan.rowOrder),
                       colStart = download(plan.colStart);
  EXPECT_EQ(rowStart.back(), plan.nonSkippedTiles);
  EXPECT_EQ(colStart.back(), plan.nonSkippedTiles);
  EXPECT_EQ(static_cast<int64_t>(rowCols.size()), plan.nonSkippedTiles);
  EXPECT_EQ(plan.maxRowWork, rowStart[rowOrder[0] + 1] - rowStart[rowOrder[0]]);
  gpu::AttentionHeads h;
  EXPECT_EQ(gpu::autoSplits(plan, h),
            std::min<int64_t>(plan.maxRowWork, 16)); // 5 tasks, 132 SMs

  // Queries without keys: O = 0, LSE = -inf; the gradients are 0.
  gpu::AttentionTokens tokens = gpu::AttentionTokens::whole(layout, causal);
  tokens.kLen = 0;
  ASSERT_OK(gpu::prepareAttention(tokens, plan, nullptr));
  const int64_t qn = 300 * 64;
  DeviceArray<bf16> q = upload(toBf16(randomFloats(qn, 5))),
                    o = upload(toBf16(randomFloats(qn, 6))),
                    dq = upload(toBf16(randomFloats(qn, 7)));
  DeviceArray<float> lse = upload(std::vector<float>(300));
  ASSERT_OK(gpu::attentionForward(plan, h, q.data(), nullptr, nullptr, o.data(),
                                  lse.data()));
  EXPECT_EQ(toFloat(download(o)), std::vector<float>(qn, 0.0f));
  EXPECT_EQ(download(lse), std::vector<float>(300, -INFINITY));
  ASSERT_OK(gpu::attentionBackward(plan, h, q.data(), nullptr, nullptr,
                                   o.data(), lse.data(), q.data(), dq.data(),
                                   nullptr, nullptr));
  EXPECT_EQ(toFloat(download(dq)), std::vector<float>(qn, 0.0f));
}

// A kernel whose shared memory passes the GPU's opt-in limit (a head-dim
// 128 backward on compute capability 8.6) is refused by name, with the
// sizes, before cudaFuncSetAttribute's "invalid argument". The twin is a
// 9.0 device with 227 KiB.
TEST(HostTwin, SharedMemoryBeyondTheGpuIsNamed) {
  EXPECT_TRUE(gpu::checkSharedMemory(227 << 10, "k", "r").ok());
  gpu::Status s = gpu::checkSharedMemory((227 << 10) + 512, "the kernel",
                                         "use a bigger GPU");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "the kernel needs 227.5 KiB of shared memory per "
                         "block, and this GPU (compute capability 9.0) gives "
                         "at most 227.0 KiB; use a bigger GPU");
  EXPECT_EQ(gpu::checkSharedMemory(1 << 30, "k", "").message(),
            "k needs 1048576.0 KiB of shared memory per block, and this GPU "
            "(compute capability 9.0) gives at most 227.0 KiB");
}

} // namespace
