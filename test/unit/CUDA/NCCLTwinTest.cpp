//===- NCCLTwinTest.cpp - The NCCL twin acts as NCCL, not as MPI ----------===//
//
// The host twin of NCCL (runtime/lib/CUDA/NCCLTwin.h) under mpirun with two
// ranks, through NCCL's own C API on the twin's streams and memory: where
// MPI is more lenient than NCCL (unequal send and receive counts, eager
// sends, several streams per communicator) the twin must fail as NCCL
// would on GPUs, and its reductions must compute what NCCL's do. The
// expected values are formed here from the inputs. Every rank runs every
// test in the same order (the calls are collective).
//
//===----------------------------------------------------------------------===//

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>
#include <mpi.h>
#include <nccl.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

int rank = 0, size = 0;
ncclComm_t world = nullptr;

/// A fresh communicator of every rank (an error leaves its own state).
ncclComm_t fresh() {
  ncclComm_t comm = nullptr;
  EXPECT_EQ(ncclCommSplit(world, 0, rank, &comm, nullptr), ncclSuccess);
  return comm;
}

template <typename T>
std::vector<T> hostCopy(const T *p, size_t n) {
  std::vector<T> out(n);
  EXPECT_EQ(cudaMemcpy(out.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost),
            cudaSuccess);
  return out;
}

/// Each test's communicator and stream, and the device arrays it makes,
/// all released after it.
class NCCLTwin : public ::testing::Test {
protected:
  void SetUp() override {
    comm = fresh();
    ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking),
              cudaSuccess);
  }
  void TearDown() override {
    EXPECT_EQ(ncclCommFinalize(comm), ncclSuccess);
    EXPECT_EQ(ncclCommDestroy(comm), ncclSuccess);
    for (void *p : arrays)
      EXPECT_EQ(cudaFree(p), cudaSuccess);
    EXPECT_EQ(cudaStreamDestroy(stream), cudaSuccess);
  }
  /// Aborts the communicator (after an error: abort is how NCCL leaves
  /// one) and takes a fresh one.
  void renew() {
    EXPECT_EQ(ncclCommAbort(comm), ncclSuccess);
    comm = fresh();
  }
  template <typename T>
  T *device(const std::vector<T> &host) {
    void *p = nullptr;
    EXPECT_EQ(cudaMalloc(&p, host.size() * sizeof(T)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(p, host.data(), host.size() * sizeof(T),
                         cudaMemcpyHostToDevice),
              cudaSuccess);
    arrays.push_back(p);
    return static_cast<T *>(p);
  }
  /// The communicator's asynchronous state once the stream is done.
  ncclResult_t stateAfterStream() {
    EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    ncclResult_t state = ncclSuccess;
    EXPECT_EQ(ncclCommGetAsyncError(comm, &state), ncclSuccess);
    return state;
  }
  /// Whether the stream empties within `ms` (polling makes progress).
  bool finishesWithin(int ms) {
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < end) {
      if (cudaStreamQuery(stream) == cudaSuccess)
        return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
  }

  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  std::vector<void *> arrays;
};

TEST_F(NCCLTwin, AReceiveGetsExactlyTheBytesItPosted) {
  float *buf = device(std::vector<float>(4, 1.0f));
  // Rank 0 sends 2 floats, rank 1 posts a receive of 4: MPI would take
  // them, NCCL needs equal counts.
  if (rank == 0)
    ASSERT_EQ(ncclSend(buf, 2, ncclFloat, 1, comm, stream), ncclSuccess);
  else
    ASSERT_EQ(ncclRecv(buf, 4, ncclFloat, 0, comm, stream), ncclSuccess);
  ncclResult_t state = stateAfterStream();
  if (rank == 1) {
    EXPECT_EQ(state, ncclInvalidUsage);
    EXPECT_NE(std::string(ncclGetLastError(comm))
                  .find("ncclRecv: 8 bytes arrived from peer 0 where 16 "
                        "were posted"),
              std::string::npos)
        << ncclGetLastError(comm);
  } else {
    EXPECT_EQ(state, ncclSuccess);
  }
  renew();
  // The other way: 4 floats sent, 2 posted.
  if (rank == 0)
    ASSERT_EQ(ncclSend(buf, 4, ncclFloat, 1, comm, stream), ncclSuccess);
  else
    ASSERT_EQ(ncclRecv(buf, 2, ncclFloat, 0, comm, stream), ncclSuccess);
  state = stateAfterStream();
  if (rank == 1) {
    EXPECT_EQ(state, ncclInvalidUsage);
    EXPECT_NE(std::string(ncclGetLastError(comm))
                  .find("ncclRecv: more bytes arrived from peer 0 where 8 "
                        "were posted"),
              std::string::npos)
        << ncclGetLastError(comm);
  }
  renew();
}

TEST_F(NCCLTwin, AnUngroupedSendThenReceiveHangsAsOnGpus) {
  const int peer = 1 - rank;
  float *out = device(std::vector<float>(1, float(rank)));
  float *in = device(std::vector<float>(1, -1.0f));
  // Both ranks send first: each send waits for a receive the other posts
  // only after its own send (a small message MPI would send eagerly).
  ASSERT_EQ(ncclSend(out, 1, ncclFloat, peer, comm, stream), ncclSuccess);
  ASSERT_EQ(ncclRecv(in, 1, ncclFloat, peer, comm, stream), ncclSuccess);
  EXPECT_FALSE(finishesWithin(300));
  // The abort ends them, as it ends NCCL's kernels.
  renew();
  EXPECT_TRUE(finishesWithin(1000));
  // Grouped, the same exchange completes.
  ASSERT_EQ(ncclGroupStart(), ncclSuccess);
  ASSERT_EQ(ncclSend(out, 1, ncclFloat, peer, comm, stream), ncclSuccess);
  ASSERT_EQ(ncclRecv(in, 1, ncclFloat, peer, comm, stream), ncclSuccess);
  ASSERT_EQ(ncclGroupEnd(), ncclSuccess);
  EXPECT_EQ(stateAfterStream(), ncclSuccess);
  EXPECT_EQ(hostCopy(in, 1)[0], float(peer));
}

/// A non-blocking communicator's state after polling it for up to `ms`
/// (until it leaves ncclInProgress).
ncclResult_t pollFor(ncclComm_t comm, int ms) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  ncclResult_t state = ncclInProgress;
  while (std::chrono::steady_clock::now() < end) {
    EXPECT_EQ(ncclCommGetAsyncError(comm, &state), ncclSuccess);
    if (state != ncclInProgress)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return state;
}

TEST_F(NCCLTwin, AFirstSendWaitsForThePeersFirstReceive) {
  // NCCL connects a pair at its first point-to-point operation on a
  // communicator; a non-blocking one stays in progress until the peer's
  // first operation connects the other end (NCCLWorld::connectPeers
  // connects its channels up front for this reason).
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclComm_t nb = nullptr;
  ASSERT_EQ(ncclCommSplit(world, 0, rank, &nb, &config), ncclSuccess);
  ASSERT_EQ(pollFor(nb, 5000), ncclSuccess);
  float *x = device(std::vector<float>(1, float(rank + 7)));
  if (rank == 0) {
    ASSERT_EQ(ncclSend(x, 1, ncclFloat, 1, nb, stream), ncclSuccess);
    EXPECT_EQ(pollFor(nb, 300), ncclInProgress);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 1) {
    EXPECT_EQ(pollFor(nb, 50), ncclSuccess); // nothing posted here yet
    ASSERT_EQ(ncclRecv(x, 1, ncclFloat, 0, nb, stream), ncclSuccess);
  }
  EXPECT_EQ(pollFor(nb, 5000), ncclSuccess);
  EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  EXPECT_EQ(hostCopy(x, 1)[0], 7.0f);
  EXPECT_EQ(ncclCommFinalize(nb), ncclSuccess);
  EXPECT_EQ(ncclCommDestroy(nb), ncclSuccess);
}

TEST_F(NCCLTwin, ACommunicatorRunsOnOneStream) {
  cudaStream_t other = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&other, cudaStreamNonBlocking),
            cudaSuccess);
  float *x = device(std::vector<float>(2, 1.0f));
  ASSERT_EQ(ncclAllReduce(x, x, 2, ncclFloat, ncclSum, comm, stream),
            ncclSuccess);
  EXPECT_EQ(ncclAllReduce(x, x, 2, ncclFloat, ncclSum, comm, other),
            ncclInvalidUsage);
  EXPECT_NE(std::string(ncclGetLastError(comm)).find("another stream"),
            std::string::npos);
  EXPECT_EQ(stateAfterStream(), ncclSuccess);
  EXPECT_EQ(hostCopy(x, 2), std::vector<float>(2, 2.0f));
  EXPECT_EQ(cudaStreamDestroy(other), cudaSuccess);
}

TEST_F(NCCLTwin, CollectivesAgreeOnTheirArguments) {
  float *x = device(std::vector<float>(3, 1.0f));
  // Counts 2 and 3: NCCL would hang or mix up data, MPI would stop the
  // job; the twin names the mismatch on every rank.
  ASSERT_EQ(ncclAllReduce(x, x, 2 + rank, ncclFloat, ncclSum, comm, stream),
            ncclSuccess);
  EXPECT_EQ(stateAfterStream(), ncclInvalidUsage);
  EXPECT_NE(std::string(ncclGetLastError(comm))
                .find("ncclAllReduce: the ranks called it with different "
                      "arguments"),
            std::string::npos)
      << ncclGetLastError(comm);
  EXPECT_EQ(hostCopy(x, 3), std::vector<float>(3, 1.0f)); // nothing moved
  renew();
  // Different collectives at the same point: an all-gather against a
  // broadcast.
  if (rank == 0)
    ASSERT_EQ(ncclAllGather(x, x, 1, ncclFloat, comm, stream), ncclSuccess);
  else
    ASSERT_EQ(ncclBroadcast(x, x, 1, ncclFloat, 0, comm, stream), ncclSuccess);
  EXPECT_EQ(stateAfterStream(), ncclInvalidUsage);
  renew();
}

TEST_F(NCCLTwin, AnErrorOnOneRankStopsItsCollectives) {
  float *buf = device(std::vector<float>(4, 1.0f));
  float *x = device(std::vector<float>(4, 1.0f));
  // Rank 1's receive fails (2 floats sent, 4 posted), then both ranks call
  // an all-reduce: rank 1 posts nothing after its error, so rank 0's waits
  // (until its deadline, on NCCL) instead of meeting another call.
  if (rank == 0)
    ASSERT_EQ(ncclSend(buf, 2, ncclFloat, 1, comm, stream), ncclSuccess);
  else
    ASSERT_EQ(ncclRecv(buf, 4, ncclFloat, 0, comm, stream), ncclSuccess);
  EXPECT_EQ(stateAfterStream(), rank == 1 ? ncclInvalidUsage : ncclSuccess);
  ASSERT_EQ(ncclAllReduce(x, x, 4, ncclFloat, ncclSum, comm, stream),
            ncclSuccess);
  if (rank == 0) {
    EXPECT_FALSE(finishesWithin(300));
  } else {
    EXPECT_TRUE(finishesWithin(1000));
  }
  EXPECT_EQ(hostCopy(x, 4), std::vector<float>(4, 1.0f)); // nothing moved
  renew();
  EXPECT_TRUE(finishesWithin(1000));
}

TEST_F(NCCLTwin, GroupingDoesNotChangeWhatMatches) {
  float *a = device(std::vector<float>(2, 1.0f + rank));
  float *b = device(std::vector<float>(3, 10.0f * (rank + 1)));
  // Rank 0 groups the two all-reduces, rank 1 calls them one by one.
  if (rank == 0)
    ASSERT_EQ(ncclGroupStart(), ncclSuccess);
  ASSERT_EQ(ncclAllReduce(a, a, 2, ncclFloat, ncclSum, comm, stream),
            ncclSuccess);
  ASSERT_EQ(ncclAllReduce(b, b, 3, ncclFloat, ncclSum, comm, stream),
            ncclSuccess);
  if (rank == 0)
    ASSERT_EQ(ncclGroupEnd(), ncclSuccess);
  EXPECT_EQ(stateAfterStream(), ncclSuccess);
  EXPECT_EQ(hostCopy(a, 2), std::vector<float>(2, 3.0f));
  EXPECT_EQ(hostCopy(b, 3), std::vector<float>(3, 30.0f));
  // A mismatch inside a group fails the group's later calls on both ranks
  // and leaves the earlier ones done.
  ASSERT_EQ(ncclGroupStart(), ncclSuccess);
  ASSERT_EQ(ncclAllReduce(a, a, 2, ncclFloat, ncclSum, comm, stream),
            ncclSuccess);
  ASSERT_EQ(ncclAllReduce(b, b, 2 + rank, ncclFloat, ncclSum, comm, stream),
            ncclSuccess);
  ASSERT_EQ(ncclGroupEnd(), ncclSuccess);
  EXPECT_EQ(stateAfterStream(), ncclInvalidUsage);
  EXPECT_EQ(hostCopy(a, 2), std::vector<float>(2, 6.0f));
  EXPECT_EQ(hostCopy(b, 3), std::vector<float>(3, 30.0f));
  renew();
}

TEST_F(NCCLTwin, CollectivesComputeWhatNcclDoes) {
  // bf16 sums: each rank's values, summed in fp32 and rounded to nearest
  // even once (two ranks: one combination; 3 + 514 rounds to 516).
  auto value = [](int r, size_t i) {
    const float v[4] = {1.0f + r, 3.0f + 511 * r, -2.5f, 0.0078125f * r};
    return __float2bfloat16(v[i]);
  };
  std::vector<__nv_bfloat16> values;
  for (size_t i = 0; i < 4; ++i)
    values.push_back(value(rank, i));
  __nv_bfloat16 *x = device(values);
  ASSERT_EQ(ncclAllReduce(x, x, 4, ncclBfloat16, ncclSum, comm, stream),
            ncclSuccess);
  EXPECT_EQ(stateAfterStream(), ncclSuccess);
  std::vector<__nv_bfloat16> got = hostCopy(x, 4);
  for (size_t i = 0; i < 4; ++i)
    EXPECT_EQ(__bfloat162float(got[i]),
              __bfloat162float(__float2bfloat16(__bfloat162float(value(0, i)) +
                                                __bfloat162float(value(1, i)))))
        << i;
  EXPECT_EQ(__bfloat162float(got[1]), 516.0f);
  // Reduce-scatter in place (the output is this rank's block of the
  // input), then an all-gather in place puts the blocks back together.
  float *blocks =
      device(std::vector<float>{1.0f + rank, 2.0f + rank, 10.0f * rank, 5.0f});
  ASSERT_EQ(ncclReduceScatter(blocks, blocks + 2 * rank, 2, ncclFloat, ncclSum,
                              comm, stream),
            ncclSuccess);
  ASSERT_EQ(
      ncclAllGather(blocks + 2 * rank, blocks, 2, ncclFloat, comm, stream),
      ncclSuccess);
  EXPECT_EQ(stateAfterStream(), ncclSuccess);
  EXPECT_EQ(hostCopy(blocks, 4),
            (std::vector<float>{3.0f, 5.0f, 10.0f, 10.0f}));
  // A broadcast from rank 1 and a reduce to rank 0, in one group.
  float *from = device(std::vector<float>{7.0f + rank});
  float *to = device(std::vector<float>{0.0f});
  ASSERT_EQ(ncclGroupStart(), ncclSuccess);
  ASSERT_EQ(ncclBroadcast(from, to, 1, ncclFloat, 1, comm, stream),
            ncclSuccess);
  ASSERT_EQ(ncclReduce(from, from, 1, ncclFloat, ncclMax, 0, comm, stream),
            ncclSuccess);
  ASSERT_EQ(ncclGroupEnd(), ncclSuccess);
  EXPECT_EQ(stateAfterStream(), ncclSuccess);
  EXPECT_EQ(hostCopy(to, 1)[0], 8.0f);
  if (rank == 0)
    EXPECT_EQ(hostCopy(from, 1)[0], 8.0f);
}

TEST_F(NCCLTwin, OnlyDeviceMemoryMoves) {
  std::vector<float> host(4, 1.0f);
  EXPECT_EQ(ncclAllReduce(host.data(), host.data(), 4, ncclFloat, ncclSum, comm,
                          stream),
            ncclInvalidArgument);
  float *x = device(std::vector<float>(4, 1.0f));
  // Past the end of its allocation.
  EXPECT_EQ(ncclAllReduce(x, x, 5, ncclFloat, ncclSum, comm, stream),
            ncclInvalidArgument);
}

} // namespace

int main(int argc, char **argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  ::testing::InitGoogleTest(&argc, argv);
  int rc = 1;
  if (size != 2) {
    if (rank == 0)
      std::fprintf(stderr, "run under `mpirun -np 2`\n");
  } else {
    ncclUniqueId id;
    if (rank == 0)
      ncclGetUniqueId(&id);
    MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, MPI_COMM_WORLD);
    if (ncclCommInitRank(&world, size, id, rank) == ncclSuccess)
      rc = RUN_ALL_TESTS();
    ncclCommAbort(world);
  }
  // Every rank's result: the job fails if one rank's test did.
  int worst = 0;
  MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return worst;
}
