//===- MPIComm.cpp - the communication interface over MPI -----------------===//
//
// Every call is the non-blocking MPI operation followed by a wait that
// polls MPI_Test (with a short back-off sleep, so an idle rank does not
// spin a core that another rank needs) until the operation completes or
// the deadline passes. Errors are returned (MPI_ERRORS_RETURN), never
// aborted on, so the caller can say which action failed.
//
//===----------------------------------------------------------------------===//
#include "mllm/runtime/MPIComm.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <mpi.h>

#include <climits>
#include <cstdlib>
#include <thread>

using namespace mllm;
using namespace mllm::runtime;

namespace {

using Clock = std::chrono::steady_clock;

llvm::Error fail(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

std::string mpiError(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS)
    return "MPI error " + std::to_string(code);
  return std::string(text, length);
}

/// Polls `request` until it completes or `timeout` passes. `what` names the
/// operation and its peers for the error.
llvm::Error waitFor(MPI_Request &request, std::chrono::milliseconds timeout,
                    const llvm::Twine &what, MPI_Status *status = nullptr) {
  Clock::time_point deadline = Clock::now() + timeout;
  MPI_Status local;
  int sleepUs = 0;
  while (true) {
    int done = 0;
    int rc = MPI_Test(&request, &done, status ? status : &local);
    if (rc != MPI_SUCCESS)
      return fail(what + " failed: " + mpiError(rc));
    if (done)
      return llvm::Error::success();
    if (Clock::now() > deadline)
      return fail(llvm::formatv("timed out after {0} s waiting for ",
                                timeout.count() / 1000.0)
                      .str() +
                  what);
    // Back off up to 100 us: a waiting rank must leave the cores to the
    // ranks that compute (tests run more ranks than cores), without adding
    // much latency to a message that is about to arrive.
    sleepUs = std::min(2 * sleepUs + 1, 100);
    std::this_thread::sleep_for(std::chrono::microseconds(sleepUs));
  }
}

llvm::Expected<int> toInt(int64_t count, const llvm::Twine &what) {
  if (count < 0 || count > INT_MAX)
    return fail(what + ": " + llvm::Twine(count) +
                " elements do not fit one MPI call");
  return static_cast<int>(count);
}

std::string describeRanks(const std::vector<int> &ranks) {
  return "[" +
         llvm::join(
             llvm::map_range(ranks, [](int r) { return std::to_string(r); }),
             ", ") +
         "]";
}

class MPIGroup : public Group {
public:
  MPIGroup(MPI_Comm comm, std::vector<int> ranks,
           std::chrono::milliseconds timeout)
      : comm(comm), ranks(std::move(ranks)), timeout(timeout) {
    MPI_Comm_rank(comm, &me);
  }
  ~MPIGroup() override {
    if (comm != MPI_COMM_NULL && comm != MPI_COMM_WORLD)
      MPI_Comm_free(&comm);
  }
  int size() const override { return static_cast<int>(ranks.size()); }
  int rank() const override { return me; }

  llvm::Error allReduceSum(float *data, int64_t count) override {
    return allReduce(data, count, MPI_FLOAT, MPI_SUM, "sum");
  }
  llvm::Error allReduceSum(double *data, int64_t count) override {
    return allReduce(data, count, MPI_DOUBLE, MPI_SUM, "sum");
  }
  llvm::Error allReduceMax(float *data, int64_t count) override {
    return allReduce(data, count, MPI_FLOAT, MPI_MAX, "max");
  }

  llvm::Error allGather(const float *local, llvm::ArrayRef<int64_t> counts,
                        float *out) override {
    std::vector<int> n, offsets;
    if (llvm::Error e = layout(counts, n, offsets))
      return e;
    MPI_Request request;
    int rc = MPI_Iallgatherv(local, n[me], MPI_FLOAT, out, n.data(),
                             offsets.data(), MPI_FLOAT, comm, &request);
    return finish(rc, request, "the all-gather");
  }

  llvm::Error reduceScatterSum(const float *in, llvm::ArrayRef<int64_t> counts,
                               float *local) override {
    std::vector<int> n, offsets;
    if (llvm::Error e = layout(counts, n, offsets))
      return e;
    MPI_Request request;
    int rc = MPI_Ireduce_scatter(in, local, n.data(), MPI_FLOAT, MPI_SUM, comm,
                                 &request);
    return finish(rc, request, "the reduce-scatter");
  }

  llvm::Error allGatherBytes(const void *local, int64_t bytes,
                             void *out) override {
    auto n = toInt(bytes, "all-gather");
    if (!n)
      return n.takeError();
    MPI_Request request;
    int rc =
        MPI_Iallgather(local, *n, MPI_BYTE, out, *n, MPI_BYTE, comm, &request);
    return finish(rc, request, "the all-gather");
  }

private:
  llvm::Error allReduce(void *data, int64_t count, MPI_Datatype type, MPI_Op op,
                        const char *name) {
    auto n = toInt(count, "all-reduce");
    if (!n)
      return n.takeError();
    MPI_Request request;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, data, *n, type, op, comm, &request);
    return finish(rc, request, llvm::Twine("the all-reduce (") + name + ")");
  }

  llvm::Error layout(llvm::ArrayRef<int64_t> counts, std::vector<int> &n,
                     std::vector<int> &offsets) {
    if (counts.size() != ranks.size())
      return fail(llvm::formatv("{0} counts for a group of {1} ranks",
                                counts.size(), ranks.size())
                      .str());
    int64_t offset = 0;
    for (int64_t c : counts) {
      auto ci = toInt(c, "collective");
      auto oi = toInt(offset, "collective");
      if (!ci || !oi)
        return ci ? oi.takeError() : ci.takeError();
      n.push_back(*ci);
      offsets.push_back(*oi);
      offset += c;
    }
    return llvm::Error::success();
  }

  llvm::Error finish(int rc, MPI_Request &request, const llvm::Twine &what) {
    std::string text = (what + " over ranks " + describeRanks(ranks)).str();
    if (rc != MPI_SUCCESS)
      return fail(text + " failed: " + mpiError(rc));
    return waitFor(request, timeout, text);
  }

  MPI_Comm comm;
  std::vector<int> ranks;
  std::chrono::milliseconds timeout;
  int me = 0;
};

class MPIRequest : public Request {
public:
  MPIRequest(MPI_Request request, std::chrono::milliseconds timeout,
             std::string what, int64_t expectBytes)
      : request(request), timeout(timeout), what(std::move(what)),
        expectBytes(expectBytes) {}
  ~MPIRequest() override {
    if (request != MPI_REQUEST_NULL) {
      // Never left pending: a receive may still write into its buffer.
      MPI_Cancel(&request);
      MPI_Request_free(&request);
    }
  }
  llvm::Error wait() override {
    MPI_Status status;
    if (llvm::Error e = waitFor(request, timeout, what, &status))
      return e;
    if (expectBytes >= 0) {
      int count = 0;
      MPI_Get_count(&status, MPI_BYTE, &count);
      if (count != expectBytes)
        return fail(llvm::formatv("{0}: {1} bytes arrived, {2} expected", what,
                                  count, expectBytes)
                        .str());
    }
    return llvm::Error::success();
  }

private:
  MPI_Request request;
  std::chrono::milliseconds timeout;
  std::string what;
  int64_t expectBytes; ///< Receives: the size to check; sends: -1.
};

class MPIWorld : public Comm {
public:
  explicit MPIWorld(std::chrono::milliseconds timeout) : timeout(timeout) {
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &tagUpperBound, &haveTagUB);
  }
  ~MPIWorld() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized)
      MPI_Finalize();
  }
  int worldRank() const override { return me; }
  int worldSize() const override { return world; }

  llvm::Expected<std::unique_ptr<Group>>
  group(llvm::ArrayRef<int64_t> ranks) override {
    std::vector<int> members;
    bool in = false;
    for (int64_t r : ranks) {
      if (r < 0 || r >= world)
        return fail(llvm::formatv("rank {0} of a group is outside the world "
                                  "of {1} ranks",
                                  r, world)
                        .str());
      members.push_back(static_cast<int>(r));
      in |= r == me;
    }
    if (!in)
      return fail(llvm::formatv("rank {0} is not in the group {1}", me,
                                describeRanks(members))
                      .str());
    MPI_Group worldGroup, sub;
    MPI_Comm_group(MPI_COMM_WORLD, &worldGroup);
    MPI_Group_incl(worldGroup, static_cast<int>(members.size()), members.data(),
                   &sub);
    MPI_Group_free(&worldGroup);
    // Only the members call MPI_Comm_create_group; the tag tells apart the
    // groups members of several create concurrently.
    int tag = static_cast<int>(llvm::hash_value(llvm::ArrayRef<int>(members)) &
                               0x7fff);
    MPI_Comm comm = MPI_COMM_NULL;
    int rc = MPI_Comm_create_group(MPI_COMM_WORLD, sub, tag, &comm);
    MPI_Group_free(&sub);
    if (rc != MPI_SUCCESS)
      return fail("creating the communicator of ranks " +
                  describeRanks(members) + " failed: " + mpiError(rc));
    return std::make_unique<MPIGroup>(comm, std::move(members), timeout);
  }

  llvm::Expected<std::unique_ptr<Request>>
  isend(const void *data, int64_t bytes, int peer, int64_t tag) override {
    return post(const_cast<void *>(data), bytes, peer, tag, /*send=*/true);
  }
  llvm::Expected<std::unique_ptr<Request>>
  irecv(void *data, int64_t bytes, int peer, int64_t tag) override {
    return post(data, bytes, peer, tag, /*send=*/false);
  }

  llvm::Error barrier() override {
    MPI_Request request;
    int rc = MPI_Ibarrier(MPI_COMM_WORLD, &request);
    if (rc != MPI_SUCCESS)
      return fail("the barrier failed: " + mpiError(rc));
    return waitFor(request, timeout, "the barrier of all ranks");
  }

private:
  llvm::Expected<std::unique_ptr<Request>>
  post(void *data, int64_t bytes, int peer, int64_t tag, bool send) {
    std::string what =
        llvm::formatv("the {0} rank {1} (tag {2}, {3} bytes)",
                      send ? "message to" : "message from", peer, tag, bytes)
            .str();
    auto n = toInt(bytes, what);
    if (!n)
      return n.takeError();
    if (haveTagUB && tag > *tagUpperBound)
      return fail(what + ": the tag is above this MPI's limit " +
                  llvm::Twine(*tagUpperBound));
    MPI_Request request;
    int rc = send ? MPI_Isend(data, *n, MPI_BYTE, peer, static_cast<int>(tag),
                              MPI_COMM_WORLD, &request)
                  : MPI_Irecv(data, *n, MPI_BYTE, peer, static_cast<int>(tag),
                              MPI_COMM_WORLD, &request);
    if (rc != MPI_SUCCESS)
      return fail(what + " failed: " + mpiError(rc));
    return std::make_unique<MPIRequest>(request, timeout, std::move(what),
                                        send ? -1 : bytes);
  }

  std::chrono::milliseconds timeout;
  int me = 0, world = 1;
  int *tagUpperBound = nullptr;
  int haveTagUB = 0;
};

} // namespace

llvm::Expected<std::unique_ptr<Comm>>
runtime::initMPI(int *argc, char ***argv, std::chrono::milliseconds timeout) {
  int provided = 0;
  int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
  if (rc != MPI_SUCCESS)
    return fail("MPI_Init failed: " + mpiError(rc));
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  return std::make_unique<MPIWorld>(timeout);
}

void runtime::abortMPI(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}
