//===- Device.cpp - Device memory, streams and the rank's GPU -------------===//

#include "mllm/runtime/cuda/Device.h"
#include "mllm/runtime/cuda/Check.h"

#include "llvm/Support/FormatVariadic.h"

#include <cstdlib>
#include <string>
#include <thread>

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::cuda;

static llvm::Error fail(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

static std::string where(const char *file, int line) {
  std::string path(file);
  size_t slash = path.rfind('/');
  return (slash == std::string::npos ? path : path.substr(slash + 1)) + ":" +
         std::to_string(line) + ": ";
}

llvm::Error cuda::cudaError(cudaError_t code, const char *expr,
                            const char *file, int line) {
  return fail(where(file, line) + "CUDA: " + expr + ": " +
              cudaGetErrorString(code));
}

llvm::Error cuda::ncclError(ncclResult_t code, ncclComm_t comm,
                            const char *expr, const char *file, int line) {
  std::string detail = comm ? ncclGetLastError(comm) : "";
  return fail(where(file, line) + "NCCL: " + expr + ": " +
              ncclGetErrorString(code) + (detail.empty() ? "" : " (") + detail +
              (detail.empty() ? "" : ")"));
}

llvm::Error cuda::toError(const kernels::cuda::Status &status) {
  if (status.ok())
    return llvm::Error::success();
  return fail(status.message());
}

llvm::Expected<DeviceBuffer> DeviceBuffer::allocate(size_t bytes) {
  DeviceBuffer b;
  if (bytes)
    MLLM_RT_CUDA(cudaMalloc(&b.ptr, bytes));
  b.size = bytes;
  return std::move(b);
}

DeviceBuffer::~DeviceBuffer() {
  if (ptr)
    cudaFree(ptr);
}

DeviceBuffer::DeviceBuffer(DeviceBuffer &&o) noexcept
    : ptr(o.ptr), size(o.size) {
  o.ptr = nullptr;
  o.size = 0;
}

DeviceBuffer &DeviceBuffer::operator=(DeviceBuffer &&o) noexcept {
  std::swap(ptr, o.ptr);
  std::swap(size, o.size);
  return *this;
}

llvm::Error DeviceBuffer::upload(const void *host, size_t bytes) {
  if (bytes > size)
    return fail(
        llvm::formatv("upload of {0} bytes into a buffer of {1}", bytes, size));
  MLLM_RT_CUDA(cudaMemcpy(ptr, host, bytes, cudaMemcpyHostToDevice));
  // From pageable memory cudaMemcpy may return before the DMA lands, and
  // the streams that read the buffer next do not wait for the legacy one.
  MLLM_RT_CUDA(cudaStreamSynchronize(cudaStreamLegacy));
  return llvm::Error::success();
}

llvm::Error DeviceBuffer::download(void *host, size_t bytes) const {
  if (bytes > size)
    return fail(llvm::formatv("download of {0} bytes from a buffer of {1}",
                              bytes, size));
  MLLM_RT_CUDA(cudaMemcpy(host, ptr, bytes, cudaMemcpyDeviceToHost));
  return llvm::Error::success();
}

llvm::Expected<Stream> Stream::create() {
  Stream s;
  MLLM_RT_CUDA(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking));
  return std::move(s);
}

Stream::~Stream() {
  if (stream)
    cudaStreamDestroy(stream);
}

Stream::Stream(Stream &&o) noexcept : stream(o.stream) { o.stream = nullptr; }

Stream &Stream::operator=(Stream &&o) noexcept {
  std::swap(stream, o.stream);
  return *this;
}

/// Polls `query` (cudaSuccess when done, cudaErrorNotReady while running)
/// with a back-off up to 100 us, so a waiting rank leaves the CPU to others.
template <typename Query>
static llvm::Error poll(Query query, std::chrono::milliseconds timeout,
                        const llvm::Twine &what) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int sleepUs = 0;
  while (true) {
    cudaError_t rc = query();
    if (rc == cudaSuccess)
      return llvm::Error::success();
    if (rc != cudaErrorNotReady)
      return fail(what + " failed: " + cudaGetErrorString(rc));
    if (std::chrono::steady_clock::now() > deadline)
      return fail(llvm::formatv("timed out after {0} s waiting for ",
                                timeout.count() / 1000.0)
                      .str() +
                  what);
    sleepUs = std::min(2 * sleepUs + 1, 100);
    std::this_thread::sleep_for(std::chrono::microseconds(sleepUs));
  }
}

llvm::Error Stream::synchronize(std::chrono::milliseconds timeout,
                                const llvm::Twine &what) const {
  return poll([&] { return cudaStreamQuery(stream); }, timeout, what);
}

llvm::Error cuda::waitEvent(cudaEvent_t event,
                            std::chrono::milliseconds timeout,
                            const llvm::Twine &what) {
  return poll([&] { return cudaEventQuery(event); }, timeout, what);
}

int cuda::launcherLocalRank() {
  for (const char *var :
       {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID",
        "MV2_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "LOCAL_RANK"})
    if (const char *value = std::getenv(var))
      return std::atoi(value);
  return -1;
}

llvm::Expected<int> cuda::selectDevice(int requested, int worldRank) {
  int count = 0;
  MLLM_RT_CUDA(cudaGetDeviceCount(&count));
  if (count == 0)
    return fail("no CUDA device");
  int local = launcherLocalRank();
  int device = requested >= 0 ? requested : (local >= 0 ? local : worldRank);
  if (requested < 0)
    device %= count;
  if (device >= count)
    return fail(llvm::formatv("GPU {0} requested, {1} visible", device, count));
  MLLM_RT_CUDA(cudaSetDevice(device));
  return device;
}
