//===- ParallelHarness.cpp - parallel layers vs the whole layer -----------===//

#include "ParallelHarness.h"

#include "gtest/gtest.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

using namespace mllm::runtime;
using namespace mllm::runtime::cpu;
using namespace mllm::runtime::cpu::test;

template <typename T>
double mllm::runtime::cpu::test::relError(const std::vector<T> &a,
                                          const std::vector<T> &b) {
  if (a.size() != b.size())
    return std::numeric_limits<double>::infinity();
  double err = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    err = std::max(err, std::abs(double(a[i]) - double(b[i])));
    scale = std::max(scale, std::abs(double(b[i])));
    if (std::isnan(double(a[i])))
      return std::numeric_limits<double>::infinity();
  }
  return scale > 0 ? err / scale : err;
}

template <typename T>
Results<T>
mllm::runtime::cpu::test::runLayer(Layer<T> &layer, const Batch<T> &batch,
                                   const Tensor<T> &in, const Tensor<T> &dOut,
                                   Param<T> *tied) {
  Results<T> r;
  auto state = layer.forward(batch, in, r.out);
  layer.backwardInput(batch, *state, dOut, r.dIn);
  layer.backwardWeight(batch, *state, dOut);
  if (llvm::Error e = layer.takeCommError())
    ADD_FAILURE() << llvm::toString(std::move(e));
  for (Param<T> *p : layer.params())
    if (p->trainable)
      r.grads[p->name] = p->grad;
  if (tied)
    r.grads["tied.weight"] = tied->grad;
  return r;
}

template <typename T>
void mllm::runtime::cpu::test::copyShard(Layer<T> &whole, Layer<T> &shard) {
  std::map<std::string, Param<T> *> byName;
  for (Param<T> *p : whole.params())
    byName[p->name] = p;
  for (Param<T> *p : shard.params()) {
    Param<T> *w = byName.at(p->name);
    ASSERT_EQ(fullShape(p->shard, p->value.shape), w->value.shape) << p->name;
    for (const ShardRun &run : shardRuns(p->shard, p->value.shape))
      std::copy_n(w->value.ptr() + run.full, run.length,
                  p->value.ptr() + run.local);
  }
}

template <typename T>
std::unique_ptr<Param<T>>
mllm::runtime::cpu::test::tiedShard(const Param<T> &whole, VocabRange range,
                                    bool split) {
  auto p = std::make_unique<Param<T>>();
  const int64_t h = whole.value.shape[1];
  p->name = "tied.weight";
  p->trainable = true;
  p->value.resize({range.size(), h});
  p->grad.resize({range.size(), h});
  std::copy_n(whole.value.ptr() + range.begin * h, range.size() * h,
              p->value.ptr());
  if (split)
    p->shard = {0, 1, range.begin, whole.value.shape};
  return p;
}

template <typename T>
std::map<std::string, Tensor<T>> mllm::runtime::cpu::test::gatherTensorParallel(
    const std::vector<std::vector<Param<T> *>> &params,
    const std::vector<Results<T>> &results) {
  std::map<std::string, Tensor<T>> whole;
  for (size_t r = 0; r < params.size(); ++r) {
    for (Param<T> *p : params[r]) {
      if (!p->trainable)
        continue;
      const Tensor<T> &g = results[r].grads.at(p->name);
      Tensor<T> &dst = whole[p->name];
      if (p->shard.dim < 0) {
        if (r == 0)
          dst = g;
        else
          EXPECT_EQ(std::memcmp(dst.ptr(), g.ptr(), g.numel() * sizeof(T)), 0)
              << p->name << ": a replicated gradient differs on TP rank " << r;
        continue;
      }
      if (r == 0)
        dst.resize(p->shard.fullShape);
      for (const ShardRun &run : shardRuns(p->shard, p->value.shape))
        std::copy_n(g.ptr() + run.local, run.length, dst.ptr() + run.full);
    }
  }
  return whole;
}

template <typename T>
Tensor<T> mllm::runtime::cpu::test::pickRows(const Tensor<T> &t,
                                             int64_t sequences, int64_t tokens,
                                             const std::vector<int64_t> &rows) {
  const int64_t w = t.cols(), n = static_cast<int64_t>(rows.size());
  Tensor<T> out({sequences * n, w});
  for (int64_t s = 0; s < sequences; ++s)
    for (int64_t i = 0; i < n; ++i)
      std::copy_n(t.ptr() + (s * tokens + rows[i]) * w, w,
                  out.ptr() + (s * n + i) * w);
  return out;
}

std::vector<int64_t>
mllm::runtime::cpu::test::pickIds(const std::vector<int64_t> &ids,
                                  int64_t sequences, int64_t tokens,
                                  const std::vector<int64_t> &rows) {
  std::vector<int64_t> out;
  for (int64_t s = 0; s < sequences; ++s)
    for (int64_t r : rows)
      out.push_back(ids[s * tokens + r]);
  return out;
}

template <typename T>
void mllm::runtime::cpu::test::expectGradsNear(
    const std::map<std::string, Tensor<T>> &got,
    const std::map<std::string, Tensor<T>> &want, double tolerance,
    const std::string &what) {
  EXPECT_EQ(got.size(), want.size()) << what;
  for (const auto &[name, w] : want) {
    auto it = got.find(name);
    if (it == got.end()) {
      ADD_FAILURE() << what << ": no gradient of " << name;
      continue;
    }
    EXPECT_EQ(it->second.shape, w.shape) << what << ": " << name;
    // Without RoPE the key bias's gradient is zero in exact arithmetic (it
    // shifts all of a query's scores alike), so it is measured against the
    // scale of the key weight's gradient.
    llvm::StringRef n = name;
    double err = 0;
    if (!n.ends_with("bk") || !want.count(n.drop_back(2).str() + "wk")) {
      err = relError(it->second.data, w.data);
    } else {
      double diff = 0, scale = 0;
      for (size_t i = 0; i < w.data.size() && w.shape == it->second.shape; ++i)
        diff = std::max(
            diff, std::abs(double(it->second.data[i]) - double(w.data[i])));
      for (T v : want.at(n.drop_back(2).str() + "wk").data)
        scale = std::max(scale, std::abs(double(v)));
      err = diff / scale;
    }
    EXPECT_LE(err, tolerance) << what << ": gradient of " << name;
  }
}

std::vector<int64_t> mllm::runtime::cpu::test::iota(int64_t n) {
  std::vector<int64_t> v(n);
  std::iota(v.begin(), v.end(), int64_t(0));
  return v;
}

namespace mllm::runtime::cpu::test {
#define MLLM_INSTANTIATE(T)                                                    \
  template double relError(const std::vector<T> &, const std::vector<T> &);    \
  template Results<T> runLayer(Layer<T> &, const Batch<T> &,                   \
                               const Tensor<T> &, const Tensor<T> &,           \
                               Param<T> *);                                    \
  template void copyShard(Layer<T> &, Layer<T> &);                             \
  template std::unique_ptr<Param<T>> tiedShard(const Param<T> &, VocabRange,   \
                                               bool);                          \
  template std::map<std::string, Tensor<T>> gatherTensorParallel(              \
      const std::vector<std::vector<Param<T> *>> &,                            \
      const std::vector<Results<T>> &);                                        \
  template Tensor<T> pickRows(const Tensor<T> &, int64_t, int64_t,             \
                              const std::vector<int64_t> &);                   \
  template void expectGradsNear(const std::map<std::string, Tensor<T>> &,      \
                                const std::map<std::string, Tensor<T>> &,      \
                                double, const std::string &);
MLLM_INSTANTIATE(float)
MLLM_INSTANTIATE(double)
#undef MLLM_INSTANTIATE
} // namespace mllm::runtime::cpu::test
