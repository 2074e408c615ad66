//===- Runtime.cpp - A fake CUDA runtime on host memory -------------------===//
//
// The subset of cuda_runtime_api.h that the kernel API, its tests and a
// simple executor use, defined with the header's exact signatures (CUDA 13:
// no versioned symbols among them) over host memory, so that code written
// against the CUDA API links and runs without a GPU or driver:
//
//  * one device, "host twin", compute capability 9.0 with 132
//    multiprocessors, whose global memory is the host's RAM;
//  * cudaMalloc returns 256-byte aligned host memory filled with 0xFF bytes
//    (NaN in bf16 and fp32): reading memory nobody wrote shows up, where a
//    fresh GPU allocation often reads as zeros and hides the bug;
//  * every call runs synchronously on the calling thread, after the work
//    its stream has queued (streams and events: Streams.cpp);
//  * copies and memsets (1-D and pitched 2-D) check that their device side
//    lies in one live allocation (cudaErrorInvalidValue otherwise, as the
//    real runtime);
//  * a failing call records its error for cudaGetLastError (per thread).
//
// Never link this together with libcudart.
//
//===----------------------------------------------------------------------===//

#include "Twin.h"

#include "mllm/kernels/cuda/HostTwin.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <unistd.h>

using namespace mllm::kernels;
using namespace mllm::kernels::cuda;

namespace {

constexpr size_t kAlignment = 256;
constexpr int kMultiprocessors = 132;

enum class Memory { Device, Host };

struct Allocation {
  size_t bytes; // as requested
  Memory kind;
};

/// Everything the fake runtime tracks. Never destroyed: static objects of
/// other translation units may free device memory during exit.
struct State {
  std::mutex mutex;
  std::map<uintptr_t, Allocation> allocations; // by base address
  size_t deviceBytes = 0;
  /// cudaMalloc and cudaFree calls (not the stream-ordered ones).
  int64_t deviceWideCalls = 0;
};

State &state() {
  static State *s = new State;
  return *s;
}

thread_local cudaError_t lastError = cudaSuccess;

cudaError_t fail(cudaError_t code) {
  lastError = code;
  return code;
}

/// The twin's global memory: the host's RAM, or MLLM_TWIN_DEVICE_BYTES (a
/// test's small GPU, to reach the out-of-memory paths).
size_t deviceMemory() {
  if (const char *bytes = std::getenv("MLLM_TWIN_DEVICE_BYTES"))
    if (unsigned long long n = std::strtoull(bytes, nullptr, 10); n > 0)
      return static_cast<size_t>(n);
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? size_t(pages) * size_t(page)
                               : size_t(64) << 30;
}

/// The allocation holding [p, p + bytes), if any; the caller holds the lock.
const Allocation *findLocked(const void *p, size_t bytes) {
  State &s = state();
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = s.allocations.upper_bound(a);
  if (it == s.allocations.begin())
    return nullptr;
  --it;
  const uintptr_t offset = a - it->first;
  if (offset >= it->second.bytes || bytes > it->second.bytes - offset)
    return nullptr;
  return &it->second;
}

bool inMemory(const void *p, size_t bytes, Memory kind) {
  std::lock_guard<std::mutex> lock(state().mutex);
  const Allocation *a = findLocked(p, bytes);
  return a && a->kind == kind;
}

cudaError_t allocate(void **out, size_t bytes, Memory kind) {
  if (!out)
    return fail(cudaErrorInvalidValue);
  *out = nullptr;
  if (bytes == 0)
    return cudaSuccess;
  const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded < bytes)
    return fail(cudaErrorMemoryAllocation);
  // A GPU's memory runs out at its size, not at the host's overcommit.
  if (kind == Memory::Device) {
    static const size_t total = deviceMemory();
    std::lock_guard<std::mutex> lock(state().mutex);
    if (bytes > total || state().deviceBytes > total - bytes)
      return fail(cudaErrorMemoryAllocation);
  }
  void *p = std::aligned_alloc(kAlignment, rounded);
  if (!p)
    return fail(cudaErrorMemoryAllocation);
  std::memset(p, 0xFF, rounded);
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.allocations[reinterpret_cast<uintptr_t>(p)] = {bytes, kind};
  if (kind == Memory::Device)
    s.deviceBytes += bytes;
  *out = p;
  return cudaSuccess;
}

cudaError_t release(void *p, Memory kind) {
  if (!p)
    return cudaSuccess;
  State &s = state();
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    auto it = s.allocations.find(reinterpret_cast<uintptr_t>(p));
    if (it == s.allocations.end() || it->second.kind != kind)
      return fail(cudaErrorInvalidValue);
    if (kind == Memory::Device)
      s.deviceBytes -= it->second.bytes;
    s.allocations.erase(it);
  }
  std::free(p);
  return cudaSuccess;
}

/// Whether the device side(s) of a copy of `kind` lie in one allocation
/// each: `dstBytes` from dst, `srcBytes` from src.
bool sidesInMemory(const void *dst, size_t dstBytes, const void *src,
                   size_t srcBytes, cudaMemcpyKind kind) {
  const bool dstDevice =
      kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool srcDevice =
      kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  return (!dstDevice || inMemory(dst, dstBytes, Memory::Device)) &&
         (!srcDevice || inMemory(src, srcBytes, Memory::Device));
}

cudaError_t copy(void *dst, const void *src, size_t count,
                 cudaMemcpyKind kind) {
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault)
    return fail(cudaErrorInvalidMemcpyDirection);
  if (count == 0)
    return cudaSuccess;
  if (!dst || !src)
    return fail(cudaErrorInvalidValue);
  if (!sidesInMemory(dst, count, src, count, kind))
    return fail(cudaErrorInvalidValue);
  std::memmove(dst, src, count);
  return cudaSuccess;
}

cudaError_t fill(void *dst, int value, size_t count) {
  if (count == 0)
    return cudaSuccess;
  if (!inMemory(dst, count, Memory::Device))
    return fail(cudaErrorInvalidValue);
  std::memset(dst, value, count);
  return cudaSuccess;
}

/// The bytes a pitched 2-D region spans: from its first byte to the end of
/// its last row (0 for an empty one).
size_t span2D(size_t pitch, size_t width, size_t height) {
  return width == 0 || height == 0 ? 0 : pitch * (height - 1) + width;
}

/// Rows of `width` bytes at pitches; each side's whole span must lie in one
/// allocation, as copy() checks a 1-D copy.
cudaError_t copy2D(void *dst, size_t dpitch, const void *src, size_t spitch,
                   size_t width, size_t height, cudaMemcpyKind kind) {
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault)
    return fail(cudaErrorInvalidMemcpyDirection);
  if (width == 0 || height == 0)
    return cudaSuccess;
  // CUDA refuses a pitch past memPitch (2^31 - 1 bytes on current GPUs).
  if (width > dpitch || width > spitch || dpitch > 2147483647u ||
      spitch > 2147483647u)
    return fail(cudaErrorInvalidPitchValue);
  if (!dst || !src)
    return fail(cudaErrorInvalidValue);
  if (!sidesInMemory(dst, span2D(dpitch, width, height), src,
                     span2D(spitch, width, height), kind))
    return fail(cudaErrorInvalidValue);
  for (size_t r = 0; r < height; ++r)
    std::memmove(static_cast<char *>(dst) + r * dpitch,
                 static_cast<const char *>(src) + r * spitch, width);
  return cudaSuccess;
}

cudaError_t fill2D(void *dst, size_t pitch, int value, size_t width,
                   size_t height) {
  if (width == 0 || height == 0)
    return cudaSuccess;
  if (width > pitch || pitch > 2147483647u)
    return fail(cudaErrorInvalidPitchValue);
  if (!inMemory(dst, span2D(pitch, width, height), Memory::Device))
    return fail(cudaErrorInvalidValue);
  for (size_t r = 0; r < height; ++r)
    std::memset(static_cast<char *>(dst) + r * pitch, value, width);
  return cudaSuccess;
}

const cudaDeviceProp &properties() {
  static const cudaDeviceProp prop = [] {
    cudaDeviceProp p;
    std::memset(&p, 0, sizeof(p));
    std::strncpy(p.name, "host twin", sizeof(p.name) - 1);
    p.totalGlobalMem = deviceMemory();
    p.sharedMemPerBlock = 48 << 10;
    p.sharedMemPerBlockOptin = 227 << 10;
    p.sharedMemPerMultiprocessor = 228 << 10;
    p.regsPerBlock = p.regsPerMultiprocessor = 65536;
    p.warpSize = 32;
    p.memPitch = 2147483647;
    p.maxThreadsPerBlock = 1024;
    p.maxThreadsDim[0] = p.maxThreadsDim[1] = 1024;
    p.maxThreadsDim[2] = 64;
    p.maxGridSize[0] = 2147483647;
    p.maxGridSize[1] = p.maxGridSize[2] = 65535;
    p.totalConstMem = 64 << 10;
    p.major = 9;
    p.minor = 0;
    p.textureAlignment = 512;
    p.multiProcessorCount = kMultiprocessors;
    p.canMapHostMemory = 1;
    p.concurrentKernels = 1;
    p.asyncEngineCount = 3;
    p.unifiedAddressing = 1;
    p.memoryBusWidth = 5120;
    p.l2CacheSize = 50 << 20;
    p.maxThreadsPerMultiProcessor = 2048;
    p.streamPrioritiesSupported = 1;
    p.maxBlocksPerMultiProcessor = 32;
    p.memoryPoolsSupported = 1;
    return p;
  }();
  return prop;
}

struct ErrorText {
  cudaError_t code;
  const char *name, *text;
};

constexpr ErrorText errorEntry(cudaError_t code, const char *name,
                               const char *text) {
  return ErrorText{code, name, text};
}

#define MLLM_TWIN_ERROR(code, text) errorEntry(code, #code, text)
const ErrorText kErrors[] = {
    MLLM_TWIN_ERROR(cudaSuccess, "no error"),
    MLLM_TWIN_ERROR(cudaErrorInvalidValue, "invalid argument"),
    MLLM_TWIN_ERROR(cudaErrorMemoryAllocation, "out of memory"),
    MLLM_TWIN_ERROR(cudaErrorInitializationError, "initialization error"),
    MLLM_TWIN_ERROR(cudaErrorInvalidConfiguration,
                    "invalid configuration argument"),
    MLLM_TWIN_ERROR(cudaErrorInvalidHostPointer, "invalid host pointer"),
    MLLM_TWIN_ERROR(cudaErrorInvalidDevicePointer, "invalid device pointer"),
    MLLM_TWIN_ERROR(cudaErrorInvalidMemcpyDirection,
                    "invalid copy direction for memcpy"),
    MLLM_TWIN_ERROR(
        cudaErrorInsufficientDriver,
        "CUDA driver version is insufficient for CUDA runtime version"),
    MLLM_TWIN_ERROR(cudaErrorNoDevice, "no CUDA-capable device is detected"),
    MLLM_TWIN_ERROR(cudaErrorInvalidDevice, "invalid device ordinal"),
    MLLM_TWIN_ERROR(cudaErrorInvalidResourceHandle, "invalid resource handle"),
    MLLM_TWIN_ERROR(cudaErrorNotReady, "device not ready"),
    MLLM_TWIN_ERROR(cudaErrorIllegalAddress,
                    "an illegal memory access was encountered"),
    MLLM_TWIN_ERROR(cudaErrorMisalignedAddress, "misaligned address"),
    MLLM_TWIN_ERROR(cudaErrorLaunchFailure, "unspecified launch failure"),
    MLLM_TWIN_ERROR(cudaErrorNotPermitted, "operation not permitted"),
    MLLM_TWIN_ERROR(cudaErrorNotSupported, "operation not supported"),
    MLLM_TWIN_ERROR(cudaErrorUnknown, "unknown error"),
};
#undef MLLM_TWIN_ERROR

const ErrorText *errorText(cudaError_t code) {
  for (const ErrorText &e : kErrors)
    if (e.code == code)
      return &e;
  return nullptr;
}

std::string hex(const void *p) {
  std::ostringstream s;
  s << p;
  return s.str();
}

} // namespace

//===----------------------------------------------------------------------===//
// What the twin's kernels ask (Twin.h)
//===----------------------------------------------------------------------===//

bool twin::isDeviceMemory(const void *p, size_t bytes) {
  return bytes == 0 || inMemory(p, bytes, Memory::Device);
}

bool twin::isInAllocationOf(const void *base, const void *p, size_t bytes) {
  std::lock_guard<std::mutex> lock(state().mutex);
  const Allocation *a = findLocked(base, 0);
  return a && a->kind == Memory::Device && findLocked(p, bytes) == a;
}

cudaError_t twin::recordError(cudaError_t code) { return fail(code); }

// cudaMalloc and cudaFree wait for the whole device on a GPU: counted, so
// that a test can check that an executor makes none inside a step.
static void countDeviceWideCall() {
  std::lock_guard<std::mutex> lock(state().mutex);
  ++state().deviceWideCalls;
}

int64_t twin::deviceWideCalls() {
  std::lock_guard<std::mutex> lock(state().mutex);
  return state().deviceWideCalls;
}

Status twin::checkArg(const char *kernel, const char *arg, const void *p,
                      int64_t elements, size_t bytesPerElement, bool optional) {
  if (elements <= 0 || (optional && !p))
    return Status();
  const size_t bytes = size_t(elements) * bytesPerElement;
  if (!p)
    return Status::error(std::string(kernel) + ": " + arg +
                         " is null (host twin)");
  if (!isDeviceMemory(p, bytes))
    return Status::error(std::string(kernel) + ": " + arg + " (" + hex(p) +
                         ") is not device memory: no live cudaMalloc "
                         "allocation holds its " +
                         std::to_string(bytes) + " bytes (host twin)");
  return Status();
}

Status twin::checkStream(const char *kernel, cudaStream_t stream) {
  // The kernel runs now, after the stream's queued work (a GPU's stream
  // would run it then).
  if (twin::settle(stream) != cudaSuccess)
    return Status::error(std::string(kernel) + ": stream " + hex(stream) +
                         " is not a live stream (host twin)");
  return Status();
}

Status twin::checkAligned(const char *kernel, const char *arg, const void *p) {
  if (reinterpret_cast<uintptr_t>(p) % 16 != 0)
    return Status::error(std::string(kernel) + ": " + arg + " (" + hex(p) +
                         ") is not 16-byte aligned (host twin)");
  return Status();
}

Status twin::checkSizes(const char *kernel,
                        std::initializer_list<int64_t> sizes) {
  for (int64_t s : sizes)
    if (s < 0)
      return Status::error(std::string(kernel) + ": negative size " +
                           std::to_string(s) + " (host twin)");
  return Status();
}

//===----------------------------------------------------------------------===//
// cuda_runtime_api.h
//===----------------------------------------------------------------------===//

extern "C" {

cudaError_t cudaGetLastError(void) {
  cudaError_t e = lastError;
  lastError = cudaSuccess;
  return e;
}

cudaError_t cudaPeekAtLastError(void) { return lastError; }

const char *cudaGetErrorString(cudaError_t error) {
  const ErrorText *e = errorText(error);
  return e ? e->text : "unrecognized error code";
}

const char *cudaGetErrorName(cudaError_t error) {
  const ErrorText *e = errorText(error);
  return e ? e->name : "unrecognized error code";
}

cudaError_t cudaDriverGetVersion(int *driverVersion) {
  if (!driverVersion)
    return fail(cudaErrorInvalidValue);
  *driverVersion = CUDART_VERSION;
  return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int *runtimeVersion) {
  if (!runtimeVersion)
    return fail(cudaErrorInvalidValue);
  *runtimeVersion = CUDART_VERSION;
  return cudaSuccess;
}

// Devices: exactly one.

cudaError_t cudaGetDeviceCount(int *count) {
  if (!count)
    return fail(cudaErrorInvalidValue);
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  return device == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice);
}

cudaError_t cudaGetDevice(int *device) {
  if (!device)
    return fail(cudaErrorInvalidValue);
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device) {
  if (!prop)
    return fail(cudaErrorInvalidValue);
  if (device != 0)
    return fail(cudaErrorInvalidDevice);
  *prop = properties();
  return cudaSuccess;
}

/// The attributes that cudaDeviceProp also holds; others are
/// cudaErrorNotSupported (not modelled) rather than a made-up value.
cudaError_t cudaDeviceGetAttribute(int *value, enum cudaDeviceAttr attr,
                                   int device) {
  if (!value)
    return fail(cudaErrorInvalidValue);
  if (device != 0)
    return fail(cudaErrorInvalidDevice);
  const cudaDeviceProp &p = properties();
  switch (attr) {
  case cudaDevAttrMultiProcessorCount:
    *value = p.multiProcessorCount;
    return cudaSuccess;
  case cudaDevAttrComputeCapabilityMajor:
    *value = p.major;
    return cudaSuccess;
  case cudaDevAttrComputeCapabilityMinor:
    *value = p.minor;
    return cudaSuccess;
  case cudaDevAttrMaxThreadsPerBlock:
    *value = p.maxThreadsPerBlock;
    return cudaSuccess;
  case cudaDevAttrWarpSize:
    *value = p.warpSize;
    return cudaSuccess;
  case cudaDevAttrMaxSharedMemoryPerBlock:
    *value = static_cast<int>(p.sharedMemPerBlock);
    return cudaSuccess;
  case cudaDevAttrMaxSharedMemoryPerBlockOptin:
    *value = static_cast<int>(p.sharedMemPerBlockOptin);
    return cudaSuccess;
  case cudaDevAttrMaxSharedMemoryPerMultiprocessor:
    *value = static_cast<int>(p.sharedMemPerMultiprocessor);
    return cudaSuccess;
  case cudaDevAttrMaxThreadsPerMultiProcessor:
    *value = p.maxThreadsPerMultiProcessor;
    return cudaSuccess;
  case cudaDevAttrL2CacheSize:
    *value = p.l2CacheSize;
    return cudaSuccess;
  case cudaDevAttrUnifiedAddressing:
    *value = p.unifiedAddressing;
    return cudaSuccess;
  case cudaDevAttrConcurrentKernels:
    *value = p.concurrentKernels;
    return cudaSuccess;
  case cudaDevAttrMemoryPoolsSupported:
    *value = p.memoryPoolsSupported;
    return cudaSuccess;
  default:
    return fail(cudaErrorNotSupported);
  }
}

cudaError_t cudaMemGetInfo(size_t *free, size_t *total) {
  if (!free || !total)
    return fail(cudaErrorInvalidValue);
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  *total = properties().totalGlobalMem;
  *free = s.deviceBytes < *total ? *total - s.deviceBytes : 0;
  return cudaSuccess;
}

// Memory.

cudaError_t cudaMalloc(void **devPtr, size_t size) {
  countDeviceWideCall();
  return allocate(devPtr, size, Memory::Device);
}

// As on a GPU, freeing waits for the whole device: queued transfers may
// still write the memory.
cudaError_t cudaFree(void *devPtr) {
  if (devPtr) {
    countDeviceWideCall();
    cudaDeviceSynchronize();
  }
  return release(devPtr, Memory::Device);
}

cudaError_t cudaMallocAsync(void **devPtr, size_t size, cudaStream_t hStream) {
  if (twin::settle(hStream) != cudaSuccess)
    return cudaErrorInvalidResourceHandle;
  return allocate(devPtr, size, Memory::Device);
}

cudaError_t cudaFreeAsync(void *devPtr, cudaStream_t hStream) {
  if (twin::settle(hStream) != cudaSuccess)
    return cudaErrorInvalidResourceHandle;
  return release(devPtr, Memory::Device);
}

cudaError_t cudaMallocHost(void **ptr, size_t size) {
  return allocate(ptr, size, Memory::Host);
}

cudaError_t cudaHostAlloc(void **pHost, size_t size, unsigned int flags) {
  (void)flags;
  return allocate(pHost, size, Memory::Host);
}

cudaError_t cudaFreeHost(void *ptr) {
  if (ptr)
    cudaDeviceSynchronize();
  return release(ptr, Memory::Host);
}

cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes *attributes,
                                     const void *ptr) {
  if (!attributes)
    return fail(cudaErrorInvalidValue);
  std::memset(attributes, 0, sizeof(*attributes));
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  const Allocation *a = findLocked(ptr, 0);
  void *p = const_cast<void *>(ptr);
  if (!ptr || !a) {
    attributes->type = cudaMemoryTypeUnregistered;
    attributes->device = -2;
    attributes->hostPointer = p;
  } else if (a->kind == Memory::Device) {
    attributes->type = cudaMemoryTypeDevice;
    attributes->devicePointer = p;
  } else {
    attributes->type = cudaMemoryTypeHost;
    attributes->devicePointer = attributes->hostPointer = p;
  }
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t count,
                       enum cudaMemcpyKind kind) {
  twin::settle(nullptr); // the legacy stream: after the blocking streams
  return copy(dst, src, count, kind);
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t count,
                            enum cudaMemcpyKind kind, cudaStream_t stream) {
  if (twin::settle(stream) != cudaSuccess)
    return cudaErrorInvalidResourceHandle;
  return copy(dst, src, count, kind);
}

cudaError_t cudaMemset(void *devPtr, int value, size_t count) {
  twin::settle(nullptr); // the legacy stream: after the blocking streams
  return fill(devPtr, value, count);
}

cudaError_t cudaMemsetAsync(void *devPtr, int value, size_t count,
                            cudaStream_t stream) {
  if (twin::settle(stream) != cudaSuccess)
    return cudaErrorInvalidResourceHandle;
  return fill(devPtr, value, count);
}

cudaError_t cudaMemcpy2D(void *dst, size_t dpitch, const void *src,
                         size_t spitch, size_t width, size_t height,
                         enum cudaMemcpyKind kind) {
  twin::settle(nullptr); // the legacy stream: after the blocking streams
  return copy2D(dst, dpitch, src, spitch, width, height, kind);
}

cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src,
                              size_t spitch, size_t width, size_t height,
                              enum cudaMemcpyKind kind, cudaStream_t stream) {
  if (twin::settle(stream) != cudaSuccess)
    return cudaErrorInvalidResourceHandle;
  return copy2D(dst, dpitch, src, spitch, width, height, kind);
}

cudaError_t cudaMemset2D(void *devPtr, size_t pitch, int value, size_t width,
                         size_t height) {
  twin::settle(nullptr); // the legacy stream: after the blocking streams
  return fill2D(devPtr, pitch, value, width, height);
}

cudaError_t cudaMemset2DAsync(void *devPtr, size_t pitch, int value,
                              size_t width, size_t height,
                              cudaStream_t stream) {
  if (twin::settle(stream) != cudaSuccess)
    return cudaErrorInvalidResourceHandle;
  return fill2D(devPtr, pitch, value, width, height);
}

} // extern "C"
