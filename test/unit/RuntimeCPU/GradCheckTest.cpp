//===- GradCheckTest.cpp - finite-difference checks of every layer --------===//
//
// For every case of LayerCases.cpp, in double: the loss sum(out * dOut) (the
// LM head: its loss output) is differentiated by central differences with
// respect to input elements and parameter elements, and compared with
// backwardInput's and backwardWeight's results. Large tensors are sampled.
//
//===----------------------------------------------------------------------===//

#include "LayerCases.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <cmath>

using namespace mllm::runtime;
using namespace mllm::runtime::cpu;
using namespace mllm::runtime::cpu::test;

namespace {

constexpr double kStep = 1e-5;
/// max |analytic - numeric| / max |numeric| over the checked elements.
/// Central differences in double are good to ~1e-9 here.
constexpr double kTolerance = 1e-6;
constexpr int64_t kMaxChecked = 48;

class GradCheck : public ::testing::TestWithParam<LayerCase> {};

double lossOf(Layer<double> &layer, CaseData<double> &d) {
  Tensor<double> out;
  layer.forward(d.batch, d.in, out);
  if (layer.kind() == "lm_head")
    return out.data[0];
  double sum = 0;
  for (size_t i = 0; i < out.data.size(); ++i)
    sum += out.data[i] * d.dOut.data[i];
  return sum;
}

/// Indices to check: all of a small tensor, else a spread sample.
std::vector<size_t> sample(size_t n, TestRng &rng) {
  std::vector<size_t> idx;
  if (n <= static_cast<size_t>(kMaxChecked)) {
    for (size_t i = 0; i < n; ++i)
      idx.push_back(i);
    return idx;
  }
  idx.push_back(0);
  idx.push_back(n - 1);
  while (idx.size() < static_cast<size_t>(kMaxChecked))
    idx.push_back(rng.next() % n);
  return idx;
}

/// Relative error of `analytic` against central differences of the loss
/// with respect to values[idx].
double check(Layer<double> &layer, CaseData<double> &d,
             std::vector<double> &values, const std::vector<double> &analytic,
             TestRng &rng, std::string &worst) {
  double maxErr = 0, maxNum = 0;
  for (size_t i : sample(values.size(), rng)) {
    double saved = values[i];
    values[i] = saved + kStep;
    double plus = lossOf(layer, d);
    values[i] = saved - kStep;
    double minus = lossOf(layer, d);
    values[i] = saved;
    double num = (plus - minus) / (2 * kStep);
    maxNum = std::max(maxNum, std::abs(num));
    double err = std::abs(num - analytic[i]);
    // NaN (an element backward never wrote keeps its NaN) is the worst.
    if (std::isnan(err))
      err = INFINITY;
    if (err > maxErr) {
      maxErr = err;
      worst = "element " + std::to_string(i) + ": analytic " +
              std::to_string(analytic[i]) + ", numeric " + std::to_string(num);
    }
  }
  // A gradient that is zero in exact arithmetic (the key bias: softmax
  // ignores a shift shared by a query's scores) is checked absolutely.
  return maxNum > 1e-8 ? maxErr / maxNum : maxErr;
}

TEST_P(GradCheck, InputAndWeightGradients) {
  const LayerCase &c = GetParam();
  auto made = makeLayer<double>(c.kind, c.config, c.part, /*trainable=*/true);
  ASSERT_TRUE(static_cast<bool>(made)) << llvm::toString(made.takeError());
  Layer<double> &layer = **made;
  TestRng rng(7);
  randomizeParams(layer, rng);
  CaseData<double> d;
  makeCaseData(c, layer, rng, d);

  Tensor<double> out, dIn;
  auto state = layer.forward(d.batch, d.in, out);
  dIn.resize(d.in.shape, std::nan(""));
  layer.backwardInput(d.batch, *state, d.dOut, dIn);
  layer.backwardWeight(d.batch, *state, d.dOut);

  bool inputLayer = c.kind == "token_embedding" ||
                    c.kind == "patch_embedding" || c.kind == "audio_frontend";
  std::string worst;
  if (inputLayer) {
    EXPECT_TRUE(dIn.data.empty()) << "an input layer has no input gradient";
  } else {
    ASSERT_EQ(dIn.shape, d.in.shape);
    double err = check(layer, d, d.in.data, dIn.data, rng, worst);
    EXPECT_LE(err, kTolerance) << "input gradient, " << worst;
  }
  std::vector<Param<double> *> params = layer.params();
  if (d.tiedWeight)
    params.push_back(d.tiedWeight.get());
  int checked = 0;
  for (Param<double> *p : params) {
    if (!p->trainable) {
      EXPECT_EQ(p->init, ParamInit::Fixed) << p->name;
      EXPECT_TRUE(p->grad.data.empty()) << p->name;
      continue;
    }
    double err = check(layer, d, p->value.data, p->grad.data, rng, worst);
    EXPECT_LE(err, kTolerance) << p->name << ", " << worst;
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

INSTANTIATE_TEST_SUITE_P(Layers, GradCheck, ::testing::ValuesIn(layerCases()),
                         [](const ::testing::TestParamInfo<LayerCase> &info) {
                           return info.param.name;
                         });

} // namespace
