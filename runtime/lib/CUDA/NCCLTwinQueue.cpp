//===- NCCLTwinQueue.cpp - The NCCL twin's operations on streams ----------===//
//
// Part of the host twin of NCCL (NCCLTwin.h): how a data call's MPI
// operation becomes work on one of the twin's streams, posted when the
// stream reaches it and tested until MPI completes it. The operations of an
// ncclGroupStart/End become one stream work per stream that posts all their
// MPI requests together, as NCCL runs a group's operations together (a send
// must not wait behind a receive of the same stream).
//
//===----------------------------------------------------------------------===//

#include "NCCLTwin.h"

#include "mllm/kernels/cuda/HostTwin.h"

#include <cstdlib>

namespace twin = mllm::kernels::cuda::twin;

namespace mllm::runtime::cuda::nccltwin {

namespace {

/// Whether MLLM_TWIN_NCCL_STALL names this MPI world rank.
bool stalledHere() {
  static const bool stalled = [] {
    const char *value = std::getenv("MLLM_TWIN_NCCL_STALL");
    if (!value || !*value)
      return false;
    char *end = nullptr;
    long rank = std::strtol(value, &end, 10);
    int me = -1;
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    return *end == '\0' && rank == me;
  }();
  return stalled;
}

/// The operations a stream runs together: one call's, or a group's.
class Batch final : public twin::AsyncWork {
public:
  explicit Batch(std::vector<std::unique_ptr<Op>> ops) : ops(std::move(ops)) {}
  void start() override {
    for (std::unique_ptr<Op> &op : ops)
      op->start();
  }
  bool test() override {
    bool done = true, earlierPosted = true;
    for (std::unique_ptr<Op> &op : ops) {
      done = op->test(earlierPosted) && done;
      earlierPosted = earlierPosted && op->postedOrDone();
    }
    return done;
  }

private:
  std::vector<std::unique_ptr<Op>> ops;
};

} // namespace

//===----------------------------------------------------------------------===//
// Operations
//===----------------------------------------------------------------------===//

Op::~Op() {
  if (!finished) {
    abandon();
    finish();
  }
}

void Op::start() {
  if (comm->aborted || stalledHere())
    return;
  started = true;
  // After an error on this rank nothing new moves: a peer's matching call
  // then waits for its deadline, as on NCCL, instead of meeting another.
  if (!signature && comm->asyncError == ncclSuccess)
    postData();
}

bool Op::checked() {
  if (!check) {
    // All equal exactly when the max of the signatures and the max of their
    // complements are this rank's.
    check = std::make_unique<Check>();
    check->mine[0] = signature, check->mine[1] = ~signature;
    if (int rc = MPI_Iallreduce(check->mine, check->agreed, 2, MPI_UINT64_T,
                                MPI_MAX, comm->mpi, &check->request);
        rc != MPI_SUCCESS) {
      failAsync(rc);
      return false;
    }
  }
  int done = 0;
  if (int rc = MPI_Test(&check->request, &done, MPI_STATUS_IGNORE);
      rc != MPI_SUCCESS) {
    failAsync(rc);
    return false;
  }
  if (!done)
    return false;
  if (check->agreed[0] != check->mine[0] ||
      check->agreed[1] != check->mine[1]) {
    comm->asyncError = ncclInvalidUsage;
    comm->lastError = std::string(call) +
                      ": the ranks called it with different arguments "
                      "(call, count, type, operation or root), or called "
                      "different collectives at this point (the host twin; "
                      "NCCL would hang or mix up the data)";
    globalLastError = comm->lastError;
    return false;
  }
  return true;
}

void Op::dropCheck() {
  if (!check || check->request == MPI_REQUEST_NULL)
    return;
  int done = 0, finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized)
    MPI_Test(&check->request, &done, MPI_STATUS_IGNORE);
  if (!done)
    (void)check.release(); // MPI may still write it
}

void Op::postData() {
  posted = true;
  if (int rc = post(comm->mpi, &request); rc != MPI_SUCCESS)
    failAsync(rc);
}

bool Op::test(bool mayPost) {
  if (finished)
    return true;
  if (comm->aborted) {
    abandon();
    return finish();
  }
  if (!started)
    return false; // stalled
  if (!posted) {
    // After a failed call or an earlier one's mismatch nothing new moves.
    if (comm->asyncError != ncclSuccess) {
      dropCheck();
      return finish();
    }
    if (!mayPost)
      return false;
    if (!checked()) {
      if (comm->asyncError == ncclSuccess)
        return false; // the check runs
      dropCheck();
      return finish();
    }
    postData();
    if (comm->asyncError != ncclSuccess)
      return finish();
  }
  if (request != MPI_REQUEST_NULL) {
    int done = 0;
    MPI_Status status;
    const int rc = MPI_Test(&request, &done, &status);
    int errorClass = MPI_SUCCESS;
    if (rc != MPI_SUCCESS)
      MPI_Error_class(rc, &errorClass);
    // A longer message than the receive posted is MPI's truncation error.
    const bool longer = expectBytes >= 0 && errorClass == MPI_ERR_TRUNCATE;
    if (rc != MPI_SUCCESS && !longer) {
      failAsync(rc);
      return finish();
    }
    if (!done && !longer)
      return false;
    int got = expectBytes;
    if (expectBytes >= 0 && !longer)
      MPI_Get_count(&status, MPI_BYTE, &got);
    if (got != expectBytes || longer) {
      request = MPI_REQUEST_NULL;
      comm->asyncError = ncclInvalidUsage;
      comm->lastError = std::string(call) + ": " +
                        (longer ? "more" : std::to_string(got)) +
                        " bytes arrived from peer " + std::to_string(peer) +
                        " where " + std::to_string(expectBytes) +
                        " were posted (NCCL needs the same count and type "
                        "at both ends; the host twin)";
      globalLastError = comm->lastError;
      return finish();
    }
  }
  if (comm->asyncError == ncclSuccess && onSuccess)
    onSuccess();
  return finish();
}

void Op::abandon() {
  dropCheck();
  if (request == MPI_REQUEST_NULL)
    return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (pointToPoint && !finalized) {
    MPI_Cancel(&request);
    MPI_Request_free(&request);
  } else if (!pointToPoint) {
    (void)scratch.release();
  }
  request = MPI_REQUEST_NULL;
}

void Op::failAsync(int code) {
  request = MPI_REQUEST_NULL;
  if (check)
    check->request = MPI_REQUEST_NULL;
  comm->asyncError = ncclSystemError;
  comm->lastError = std::string(call) + " failed in MPI: " + mpiErrorText(code);
  globalLastError = comm->lastError;
}

bool Op::finish() {
  finished = true;
  --comm->unfinished;
  return true;
}

//===----------------------------------------------------------------------===//
// Stream work
//===----------------------------------------------------------------------===//

ncclResult_t enqueue(CommState &comm, const char *call, cudaStream_t stream,
                     std::vector<std::unique_ptr<Op>> ops) {
  cudaError_t rc =
      twin::enqueue(stream, std::make_unique<Batch>(std::move(ops)));
  if (rc != cudaSuccess)
    return fail(&comm, ncclUnhandledCudaError,
                "%s: queueing on the stream failed: %s", call,
                cudaGetErrorString(rc));
  return ncclSuccess;
}

ncclResult_t submit(CommState &comm, const char *call, cudaStream_t stream,
                    std::unique_ptr<Op> op) {
  if (!comm.stream)
    comm.stream = stream;
  else if (stream != comm.stream)
    return fail(&comm, ncclInvalidUsage,
                "%s: this communicator's operations ran on another stream "
                "before; the host twin keeps a communicator's operations in "
                "order on one stream only",
                call);
  if (group.depth > 0) {
    for (auto &[s, batch] : group.batches)
      if (s == stream) {
        batch.push_back(std::move(op));
        return ncclSuccess;
      }
    group.batches.emplace_back(stream, std::vector<std::unique_ptr<Op>>());
    group.batches.back().second.push_back(std::move(op));
    return ncclSuccess;
  }
  std::vector<std::unique_ptr<Op>> ops;
  ops.push_back(std::move(op));
  return enqueue(comm, call, stream, std::move(ops));
}

} // namespace mllm::runtime::cuda::nccltwin
