//===- BalanceIlp.cpp - Exact makespan balancing with CBC -----------------===//
//
// Paper Eq. 4 over blocks: x[b][g] in {0,1}, minimise C subject to
// sum_g x[b][g] = 1, sum_b W[b] x[b][g] <= C and (ours) every rank gets a
// block. Ranks are interchangeable, so the k-th heaviest block may only go
// to ranks 0..k; that removes the cp! symmetric copies of each solution.
//
//===----------------------------------------------------------------------===//

#include "mllm/runtime/Balance.h"

#include "CbcModel.hpp"
#include "CoinPackedMatrix.hpp"
#include "CoinPackedVector.hpp"
#include "OsiClpSolverInterface.hpp"

#include <algorithm>
#include <numeric>

using namespace mllm::runtime;

llvm::Error mllm::runtime::detail::solveMakespanIlp(
    llvm::ArrayRef<int64_t> work, int64_t cp, double timeLimitSeconds,
    std::vector<int32_t> &assignment, bool &optimal) {
  int nb = static_cast<int>(work.size()), ng = static_cast<int>(cp);
  if (nb < ng)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "ilp: fewer blocks than ranks");
  std::vector<int> order(nb);
  std::iota(order.begin(), order.end(), 0);
  // Heaviest first, equal blocks in index order (a stable sort without
  // libstdc++'s deprecated temporary buffer).
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    return work[a] != work[b] ? work[a] > work[b] : a < b;
  });
  auto var = [&](int k, int g) { return k * ng + g; };
  int nCols = nb * ng + 1, cCol = nb * ng;

  double total = 0, maxW = 0;
  for (int64_t w : work) {
    total += static_cast<double>(w);
    maxW = std::max(maxW, static_cast<double>(w));
  }
  OsiClpSolverInterface solver;
  double inf = solver.getInfinity();
  std::vector<double> colLb(nCols, 0), colUb(nCols, 1), obj(nCols, 0);
  for (int k = 0; k < nb; ++k)
    for (int g = k + 1; g < ng; ++g)
      colUb[var(k, g)] = 0; // symmetry breaking
  colLb[cCol] = std::max(maxW, total / ng);
  colUb[cCol] = inf;
  obj[cCol] = 1;

  CoinPackedMatrix matrix(false, 0, 0);
  matrix.setDimensions(0, nCols);
  std::vector<double> rowLb, rowUb;
  for (int k = 0; k < nb; ++k) { // each block exactly once
    CoinPackedVector row;
    for (int g = 0; g < ng; ++g)
      row.insert(var(k, g), 1.0);
    matrix.appendRow(row);
    rowLb.push_back(1);
    rowUb.push_back(1);
  }
  for (int g = 0; g < ng; ++g) { // load <= C, and no empty rank
    CoinPackedVector load, used;
    for (int k = 0; k < nb; ++k) {
      load.insert(var(k, g), static_cast<double>(work[order[k]]));
      used.insert(var(k, g), 1.0);
    }
    load.insert(cCol, -1.0);
    matrix.appendRow(load);
    rowLb.push_back(-inf);
    rowUb.push_back(0);
    matrix.appendRow(used);
    rowLb.push_back(1);
    rowUb.push_back(inf);
  }
  solver.loadProblem(matrix, colLb.data(), colUb.data(), obj.data(),
                     rowLb.data(), rowUb.data());
  for (int i = 0; i < cCol; ++i)
    solver.setInteger(i);
  solver.messageHandler()->setLogLevel(0);

  CbcModel model(solver);
  model.setLogLevel(0);
  model.messageHandler()->setLogLevel(0);
  model.solver()->messageHandler()->setLogLevel(0);
  model.setMaximumSeconds(timeLimitSeconds);

  // Start from the given assignment, relabelled to respect the symmetry
  // breaking (ranks numbered by their heaviest block).
  std::vector<int> relabel(ng, -1);
  int next = 0;
  std::vector<double> start(nCols, 0), loads(ng, 0);
  for (int k = 0; k < nb; ++k) {
    int g = assignment[order[k]];
    if (relabel[g] < 0)
      relabel[g] = next++;
    start[var(k, relabel[g])] = 1;
    loads[relabel[g]] += static_cast<double>(work[order[k]]);
  }
  bool startValid = next == ng;
  for (int k = 0; k < nb && startValid; ++k)
    for (int g = k + 1; g < ng; ++g)
      startValid &= start[var(k, g)] == 0;
  if (startValid) {
    start[cCol] = *std::max_element(loads.begin(), loads.end());
    model.setBestSolution(start.data(), nCols, start[cCol], true);
  }
  model.branchAndBound();

  const double *sol = model.bestSolution();
  if (!sol)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "ilp: CBC found no feasible assignment within %.1f s",
        timeLimitSeconds);
  for (int k = 0; k < nb; ++k)
    for (int g = 0; g < ng; ++g)
      if (sol[var(k, g)] > 0.5)
        assignment[order[k]] = g;
  optimal = model.isProvenOptimal();
  return llvm::Error::success();
}
