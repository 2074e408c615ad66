//===- NCCLState.cpp - Shared communicator state, waits and aborts --------===//

#include "NCCLState.h"

#include "llvm/Support/FormatVariadic.h"

#include <thread>

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::cuda;
using namespace mllm::runtime::cuda::detail;

llvm::Error detail::fail(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

void NCCLState::abortAll(const std::string &why) {
  if (aborted)
    return;
  aborted = true;
  reason = why;
  for (ncclComm_t comm : comms)
    ncclCommAbort(comm);
  comms.clear();
}

llvm::Error NCCLState::checkAlive() const {
  if (aborted)
    return fail("the NCCL communicators were aborted after an earlier "
                "failure: " +
                reason);
  return llvm::Error::success();
}

/// Sleeps a little longer on every round, up to 100 us.
static void backOff(int &sleepUs) {
  sleepUs = std::min(2 * sleepUs + 1, 100);
  std::this_thread::sleep_for(std::chrono::microseconds(sleepUs));
}

static std::string timedOut(std::chrono::milliseconds timeout,
                            const llvm::Twine &what) {
  return llvm::formatv("timed out after {0} s waiting for ",
                       timeout.count() / 1000.0)
             .str() +
         what.str() + " (a peer died or never called it)";
}

/// Polls the communicator's state until it leaves ncclInProgress or the
/// deadline passes (then ncclInProgress is returned).
static ncclResult_t pollComm(ncclComm_t comm,
                             std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int sleepUs = 0;
  while (true) {
    ncclResult_t state = ncclInProgress;
    ncclResult_t rc = ncclCommGetAsyncError(comm, &state);
    if (rc != ncclSuccess)
      return rc;
    if (state != ncclInProgress || std::chrono::steady_clock::now() > deadline)
      return state;
    backOff(sleepUs);
  }
}

NCCLState::~NCCLState() {
  cudaSetDevice(device);
  // After abortAll the list is empty. Finalize flushes outstanding work; on
  // a non-blocking communicator it completes in the background, so it is
  // bounded by the deadline too, and a communicator that does not finish
  // is aborted instead of destroyed.
  for (ncclComm_t comm : comms) {
    ncclResult_t rc = ncclCommFinalize(comm);
    if (rc == ncclSuccess || rc == ncclInProgress)
      rc = pollComm(comm, timeout);
    if (rc == ncclSuccess)
      ncclCommDestroy(comm);
    else
      ncclCommAbort(comm);
  }
}

llvm::Error NCCLState::settle(ncclComm_t comm, const llvm::Twine &what) {
  ncclResult_t state = pollComm(comm, timeout);
  if (state == ncclSuccess)
    return llvm::Error::success();
  std::string message = state == ncclInProgress
                            ? timedOut(timeout, what)
                            : what.str() +
                                  " failed: " + ncclGetErrorString(state) +
                                  " (" + ncclGetLastError(comm) + ")";
  abortAll(message);
  return fail(message);
}

llvm::Error NCCLState::wait(ncclComm_t comm, cudaEvent_t event,
                            const llvm::Twine &what) {
  if (llvm::Error e = checkAlive())
    return e;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int sleepUs = 0;
  while (true) {
    cudaError_t done = cudaEventQuery(event);
    if (done == cudaSuccess)
      return llvm::Error::success();
    if (done != cudaErrorNotReady) {
      std::string message =
          what.str() + " failed on the device: " + cudaGetErrorString(done);
      abortAll(message);
      return fail(message);
    }
    ncclResult_t state = ncclSuccess;
    ncclCommGetAsyncError(comm, &state);
    if (state != ncclSuccess && state != ncclInProgress) {
      std::string message = what.str() +
                            " failed: " + ncclGetErrorString(state) + " (" +
                            ncclGetLastError(comm) + ")";
      abortAll(message);
      return fail(message);
    }
    if (std::chrono::steady_clock::now() > deadline) {
      std::string message = timedOut(timeout, what);
      abortAll(message);
      return fail(message);
    }
    backOff(sleepUs);
  }
}

llvm::Error detail::EventRequest::wait() {
  if (!done->launched)
    return fail(what + " was waited for inside an open P2P group "
                       "(call endP2PGroup first)");
  return state->wait(comm, done->event, what);
}

llvm::Expected<std::shared_ptr<Completion>>
detail::makeCompletion(cudaStream_t stream) {
  auto done = std::make_shared<Completion>();
  MLLM_RT_CUDA(cudaEventCreateWithFlags(&done->event, cudaEventDisableTiming));
  if (stream) {
    MLLM_RT_CUDA(cudaEventRecord(done->event, stream));
    done->launched = true;
  }
  return done;
}

llvm::Error detail::requireDevice(const void *ptr, int64_t bytes,
                                  const char *what) {
  if (bytes == 0)
    return llvm::Error::success();
  cudaPointerAttributes attributes;
  if (cudaPointerGetAttributes(&attributes, ptr) != cudaSuccess) {
    cudaGetLastError();
    return fail(llvm::Twine(what) + ": not a CUDA pointer");
  }
  if (attributes.type != cudaMemoryTypeDevice &&
      attributes.type != cudaMemoryTypeManaged)
    return fail(llvm::Twine(what) +
                ": NCCL moves device memory only, this is host memory (send "
                "host data over the bootstrap Comm)");
  return llvm::Error::success();
}

ncclConfig_t detail::nonBlockingConfig() {
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  return config;
}
