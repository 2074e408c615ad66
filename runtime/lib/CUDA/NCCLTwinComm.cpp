//===- NCCLTwinComm.cpp - The NCCL twin's communicators and groups --------===//
//
// Part of the host twin of NCCL (NCCLTwin.h): communicators, errors and
// groups. Communicators span the MPI world (the program initialises MPI)
// and are ready at once. A group collects its operations per stream, and
// ncclGroupEnd queues each stream's as one stream work (NCCLTwinQueue.cpp).
//
//===----------------------------------------------------------------------===//

#include "NCCLTwin.h"

#include "mllm/kernels/cuda/HostTwin.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>

namespace twin = mllm::kernels::cuda::twin;

//===----------------------------------------------------------------------===//
// Errors and groups
//===----------------------------------------------------------------------===//

namespace mllm::runtime::cuda::nccltwin {

std::string globalLastError;

GroupState group;

ncclResult_t fail(CommState *comm, ncclResult_t rc, const char *format, ...) {
  char text[512];
  va_list args;
  va_start(args, format);
  std::vsnprintf(text, sizeof text, format, args);
  va_end(args);
  globalLastError = text;
  if (comm)
    comm->lastError = text;
  if (group.depth > 0 && group.error == ncclSuccess)
    group.error = rc;
  return rc;
}

std::string mpiErrorText(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS)
    return "MPI error " + std::to_string(code);
  return std::string(text, length);
}

} // namespace mllm::runtime::cuda::nccltwin

using namespace mllm::runtime::cuda::nccltwin;

//===----------------------------------------------------------------------===//
// Communicators
//===----------------------------------------------------------------------===//

namespace {

const char idTag[] = "mllm-nccl-twin";

bool isBlocking(const ncclConfig_t *config, bool otherwise) {
  if (!config || config->blocking == NCCL_CONFIG_UNDEF_INT)
    return otherwise;
  return config->blocking != 0;
}

/// MLLM_TWIN_NCCL_INIT_POLLS: how many polls a non-blocking communicator's
/// initialisation (or split) answers ncclInProgress, as NCCL's does while
/// it connects; so a caller's polling and its deadline run on the twin.
long initPolls() {
  static const long polls = [] {
    const char *value = std::getenv("MLLM_TWIN_NCCL_INIT_POLLS");
    return value ? std::max(0L, std::strtol(value, nullptr, 10)) : 0L;
  }();
  return polls;
}

ncclComm_t makeComm(MPI_Comm mpi, bool blocking) {
  auto state = std::make_shared<CommState>();
  state->mpi = mpi;
  state->blocking = blocking;
  state->initPolls = blocking ? 0 : initPolls();
  // A failed MPI call becomes the communicator's error, not an exit.
  MPI_Comm_set_errhandler(mpi, MPI_ERRORS_RETURN);
  MPI_Comm_rank(mpi, &state->rank);
  MPI_Comm_size(mpi, &state->size);
  return new ncclComm{std::move(state)};
}

/// Runs the streams until `comm` has no unfinished work (or failed).
void drain(CommState &comm) {
  while (comm.unfinished > 0 && !comm.aborted && comm.asyncError == ncclSuccess)
    if (!twin::progress())
      std::this_thread::yield();
}

} // namespace

ncclResult_t ncclGetUniqueId(ncclUniqueId *uniqueId) {
  if (!uniqueId)
    return fail(nullptr, ncclInvalidArgument, "ncclGetUniqueId: null id");
  std::random_device random;
  for (char &c : uniqueId->internal)
    c = static_cast<char>(random());
  std::memcpy(uniqueId->internal, idTag, sizeof idTag);
  return ncclSuccess;
}

ncclResult_t ncclCommInitRankConfig(ncclComm_t *comm, int nranks,
                                    ncclUniqueId commId, int rank,
                                    ncclConfig_t *config) {
  const char *call = "ncclCommInitRankConfig";
  if (!comm)
    return fail(nullptr, ncclInvalidArgument, "%s: comm is null", call);
  *comm = nullptr;
  int initialized = 0, worldSize = 0, worldRank = 0;
  MPI_Initialized(&initialized);
  if (!initialized)
    return fail(nullptr, ncclInvalidUsage,
                "%s: the host twin's NCCL runs over MPI, which is not "
                "initialised",
                call);
  MPI_Comm_size(MPI_COMM_WORLD, &worldSize);
  MPI_Comm_rank(MPI_COMM_WORLD, &worldRank);
  if (nranks != worldSize || rank != worldRank)
    return fail(nullptr, ncclInvalidArgument,
                "%s: rank %d of %d, but the host twin's communicators span "
                "the MPI world (rank %d of %d)",
                call, rank, nranks, worldRank, worldSize);
  if (std::memcmp(commId.internal, idTag, sizeof idTag) != 0)
    return fail(nullptr, ncclInvalidArgument,
                "%s: commId does not come from ncclGetUniqueId", call);
  MPI_Comm mpi = MPI_COMM_NULL;
  if (int rc = MPI_Comm_dup(MPI_COMM_WORLD, &mpi); rc != MPI_SUCCESS)
    return fail(nullptr, ncclSystemError, "%s: MPI_Comm_dup failed: %s", call,
                mpiErrorText(rc).c_str());
  *comm = makeComm(mpi, isBlocking(config, true));
  return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId commId,
                              int rank) {
  return ncclCommInitRankConfig(comm, nranks, commId, rank, nullptr);
}

ncclResult_t ncclCommSplit(ncclComm_t comm, int color, int key,
                           ncclComm_t *newcomm, ncclConfig_t *config) {
  if (!comm || !newcomm)
    return fail(nullptr, ncclInvalidArgument,
                "ncclCommSplit: comm or newcomm is null");
  CommState &parent = *comm->state;
  *newcomm = nullptr;
  if (color < 0 && color != NCCL_SPLIT_NOCOLOR)
    return fail(&parent, ncclInvalidArgument,
                "ncclCommSplit: negative color %d", color);
  // MPI_Comm_split is a blocking collective on the parent's MPI
  // communicator: its queued operations go first (an open group's are not
  // queued yet).
  if (group.depth > 0)
    return fail(&parent, ncclInvalidUsage,
                "ncclCommSplit inside ncclGroupStart/End: the host twin "
                "splits outside groups only");
  if (parent.initPolls > 0)
    return fail(&parent, ncclInvalidUsage,
                "ncclCommSplit: the parent is still initialising (poll "
                "ncclCommGetAsyncError until ncclSuccess first)");
  drain(parent);
  MPI_Comm mpi = MPI_COMM_NULL;
  if (int rc = MPI_Comm_split(
          parent.mpi, color == NCCL_SPLIT_NOCOLOR ? MPI_UNDEFINED : color, key,
          &mpi);
      rc != MPI_SUCCESS)
    return fail(&parent, ncclSystemError,
                "ncclCommSplit: MPI_Comm_split failed: %s",
                mpiErrorText(rc).c_str());
  if (mpi != MPI_COMM_NULL) // a null config inherits the parent's
    *newcomm = makeComm(mpi, isBlocking(config, parent.blocking));
  return ncclSuccess;
}

ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t *asyncError) {
  if (!comm || !asyncError)
    return fail(nullptr, ncclInvalidArgument,
                "ncclCommGetAsyncError: comm or asyncError is null");
  CommState &state = *comm->state;
  twin::progress();
  if (state.initPolls > 0) {
    --state.initPolls;
    *asyncError = ncclInProgress;
  } else if (state.asyncError != ncclSuccess)
    *asyncError = state.asyncError;
  else if (!state.connected())
    *asyncError = ncclInProgress;
  else if (state.finalizing && state.unfinished > 0)
    *asyncError = ncclInProgress;
  else
    *asyncError = ncclSuccess;
  return ncclSuccess;
}

ncclResult_t ncclCommFinalize(ncclComm_t comm) {
  if (!comm)
    return fail(nullptr, ncclInvalidArgument, "ncclCommFinalize: null comm");
  CommState &state = *comm->state;
  state.finalizing = true;
  // A non-blocking communicator finishes its work in the background: the
  // caller polls ncclCommGetAsyncError, which says ncclInProgress until then.
  if (!state.blocking) {
    twin::progress();
    return state.unfinished > 0 ? ncclInProgress : state.asyncError;
  }
  drain(state);
  return state.asyncError;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  if (!comm)
    return ncclSuccess;
  drain(*comm->state); // NCCL finalizes a communicator not finalized yet
  delete comm;         // the MPI communicator goes with the last reference
  return ncclSuccess;
}

ncclResult_t ncclCommAbort(ncclComm_t comm) {
  if (!comm)
    return ncclSuccess;
  // Running work sees the flag when tested, gives up its MPI requests and
  // finishes; queued work finishes without posting any.
  comm->state->aborted = true;
  twin::progress();
  delete comm; // the state stays while queued work refers to it
  return ncclSuccess;
}

const char *ncclGetErrorString(ncclResult_t result) {
  static const char *const strings[] = {
      "no error",
      "unhandled cuda error",
      "unhandled system error",
      "internal error",
      "invalid argument",
      "invalid usage",
      "remote process exited or network error",
      "NCCL operation in progress"};
  static_assert(sizeof strings / sizeof strings[0] == ncclNumResults);
  const int index = static_cast<int>(result);
  if (index < 0 || index >= ncclNumResults)
    return "unknown result code";
  return strings[index];
}

const char *ncclGetLastError(ncclComm_t comm) {
  if (comm && !comm->state->lastError.empty())
    return comm->state->lastError.c_str();
  return globalLastError.c_str();
}

ncclResult_t ncclGroupStart() {
  ++group.depth;
  return ncclSuccess;
}

ncclResult_t ncclGroupEnd() {
  if (group.depth == 0)
    return fail(nullptr, ncclInvalidUsage, "ncclGroupEnd: no group is open");
  if (--group.depth > 0)
    return ncclSuccess;
  auto batches = std::move(group.batches);
  group.batches.clear();
  ncclResult_t result = group.error;
  group.error = ncclSuccess;
  if (result != ncclSuccess) // NCCL drops a group with a failed call
    return result;
  for (auto &[stream, ops] : batches) {
    CommState &comm = ops.front()->communicator();
    ncclResult_t rc = enqueue(comm, "ncclGroupEnd", stream, std::move(ops));
    if (result == ncclSuccess)
      result = rc;
  }
  return result;
}
