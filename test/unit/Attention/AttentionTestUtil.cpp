//===- AttentionTestUtil.cpp - Dense reference for the attention tests ----===//

#include "AttentionTestUtil.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

using namespace mllm::attention_test;

AttentionTokens Problem::tokens() const {
  AttentionTokens t;
  t.layout = &layout;
  t.policy = policy;
  t.tiles = tiles;
  t.qPos = qPos.data();
  t.qLen = qLen();
  t.kPos = kPos.data();
  t.kLen = kLen();
  return t;
}

AttentionHeads Problem::headSpec() const {
  AttentionHeads h;
  h.heads = heads;
  h.kvHeads = kvHeads;
  h.headDim = headDim;
  h.scale = scale != 0.0 ? scale : 1.0 / std::sqrt(double(headDim));
  h.alibiSlopes = slopes.empty() ? nullptr : slopes.data();
  return h;
}

Problem mllm::attention_test::plainProblem(TokenLayout layout,
                                           MaskPolicy policy, TileShape tiles,
                                           int64_t heads, int64_t kvHeads,
                                           int64_t headDim) {
  Problem p;
  p.layout = std::move(layout);
  p.policy = policy;
  p.tiles = tiles;
  p.qPos.resize(static_cast<size_t>(p.layout.size()));
  std::iota(p.qPos.begin(), p.qPos.end(), 0);
  p.kPos = p.qPos;
  p.heads = heads;
  p.kvHeads = kvHeads;
  p.headDim = headDim;
  return p;
}

std::vector<float> mllm::attention_test::alibiSlopes(int64_t heads) {
  std::vector<float> s(static_cast<size_t>(heads));
  for (int64_t h = 0; h < heads; ++h)
    s[h] = static_cast<float>(std::pow(2.0, -8.0 * double(h + 1) / heads));
  return s;
}

std::vector<int64_t>
mllm::attention_test::blockPositions(int64_t n, int64_t block,
                                     const std::vector<int64_t> &order) {
  std::vector<int64_t> pos;
  for (int64_t b : order)
    for (int64_t i = b * block; i < std::min(n, (b + 1) * block); ++i)
      pos.push_back(i);
  return pos;
}

TokenLayout mllm::attention_test::randomLayout(std::mt19937_64 &rng,
                                               int64_t n) {
  TokenLayout l;
  uint32_t sample = 0, item = 1;
  while (l.size() < n) {
    int64_t len = std::min<int64_t>(n - l.size(), 1 + rng() % 40);
    uint64_t word = 0;
    uint32_t seg = 0;
    switch (rng() % 9) {
    case 0:
      break; // padding
    case 1:
    case 2:
      word = textWord(2);
      seg = makeSegment(sample, 0, rng() % 5 == 0);
      break;
    case 3:
      word = textWord(2);
      seg = makeSegment(sample, item++);
      break;
    case 4:
      word = textWord(2) & ~kCausalBit; // bidirectional prefix
      seg = makeSegment(sample, item++);
      break;
    case 5:
    case 6:
      word = modalityWord(static_cast<int>(rng() % 2), rng() % 4 == 0);
      seg = makeSegment(sample, item++);
      break;
    case 7:
      ++sample;
      continue;
    default:
      word = kCausalBit | kTextBit; // text that sees no modality
      seg = makeSegment(sample, rng() % 2 ? 0 : item++);
      break;
    }
    l.words.insert(l.words.end(), len, word);
    l.segments.insert(l.segments.end(), len, seg);
  }
  return l;
}

template <typename T>
Inputs<T> mllm::attention_test::randomInputs(const Problem &p, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  auto fill = [&](int64_t n) {
    std::vector<T> x(static_cast<size_t>(n));
    for (T &e : x)
      e = static_cast<T>(u(rng));
    return x;
  };
  Inputs<T> in;
  in.q = fill(p.qLen() * p.heads * p.headDim);
  in.k = fill(p.kLen() * p.kvHeads * p.headDim);
  in.v = fill(p.kLen() * p.kvHeads * p.headDim);
  in.dO = fill(p.qLen() * p.heads * p.headDim);
  return in;
}

template <typename T>
Outputs<T> mllm::attention_test::runKernel(const Problem &p,
                                           const Inputs<T> &in, int threads,
                                           bool backward) {
  AttentionPlan plan = prepareAttention(p.tokens());
  AttentionHeads h = p.headSpec();
  AttentionOptions opt;
  opt.threads = threads;
  Outputs<T> out;
  out.o.assign(in.q.size(), T(7)); // garbage: every entry must be written
  out.lse.assign(static_cast<size_t>(p.heads * p.qLen()), T(7));
  attentionForward(plan, h, in.q.data(), in.k.data(), in.v.data(), out.o.data(),
                   out.lse.data(), opt);
  if (!backward)
    return out;
  out.dq.assign(in.q.size(), T(7));
  out.dk.assign(in.k.size(), T(7));
  out.dv.assign(in.v.size(), T(7));
  attentionBackward(plan, h, in.q.data(), in.k.data(), in.v.data(),
                    out.o.data(), out.lse.data(), in.dO.data(), out.dq.data(),
                    out.dk.data(), out.dv.data(), opt);
  return out;
}

template <typename T>
Outputs<double> mllm::attention_test::denseReference(const Problem &p,
                                                     const Inputs<T> &in) {
  const int64_t s = p.layout.size(), nq = p.qLen(), nk = p.kLen();
  const int64_t nh = p.heads, nkv = p.kvHeads, d = p.headDim;
  const double scale = p.headSpec().scale;
  std::vector<uint8_t> mask = buildDenseMask(p.layout, p.policy);
  auto at = [&](const std::vector<T> &x, int64_t tok, int64_t heads,
                int64_t h) {
    return &x[static_cast<size_t>((tok * heads + h) * d)];
  };
  Outputs<double> out;
  out.o.assign(static_cast<size_t>(nq * nh * d), 0.0);
  out.lse.assign(static_cast<size_t>(nh * nq), 0.0);
  out.dq = out.o;
  out.dk.assign(static_cast<size_t>(nk * nkv * d), 0.0);
  out.dv = out.dk;
  std::vector<double> score(static_cast<size_t>(nk)), prob(score.size()),
      dp(score.size());
  for (int64_t h = 0; h < nh; ++h) {
    int64_t g = h / (nh / nkv);
    for (int64_t i = 0; i < nq; ++i) {
      const T *qi = at(in.q, i, nh, h);
      double max = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < nk; ++j) {
        score[j] = -std::numeric_limits<double>::infinity();
        if (!mask[p.qPos[i] * s + p.kPos[j]])
          continue;
        const T *kj = at(in.k, j, nkv, g);
        double dot = 0;
        for (int64_t x = 0; x < d; ++x)
          dot += double(qi[x]) * double(kj[x]);
        score[j] = scale * dot;
        if (!p.slopes.empty())
          score[j] += double(p.slopes[h]) * double(p.kPos[j] - p.qPos[i]);
        max = std::max(max, score[j]);
      }
      double *oi = &out.o[static_cast<size_t>((i * nh + h) * d)];
      if (max == -std::numeric_limits<double>::infinity()) {
        out.lse[h * nq + i] = max; // nothing visible: O = 0, no gradient
        continue;
      }
      double sum = 0;
      for (int64_t j = 0; j < nk; ++j)
        sum += (prob[j] = std::exp(score[j] - max));
      out.lse[h * nq + i] = max + std::log(sum);
      for (int64_t j = 0; j < nk; ++j) {
        prob[j] /= sum;
        const T *vj = at(in.v, j, nkv, g);
        for (int64_t x = 0; x < d; ++x)
          oi[x] += prob[j] * double(vj[x]);
      }
      // Backward: dV = P^T dO, dP = dO V^T, dS = P (dP - rowsum(P dP)),
      // dQ = scale dS K, dK = scale dS^T Q.
      const T *doi = at(in.dO, i, nh, h);
      double delta = 0;
      for (int64_t j = 0; j < nk; ++j) {
        const T *vj = at(in.v, j, nkv, g);
        double dot = 0;
        for (int64_t x = 0; x < d; ++x)
          dot += double(doi[x]) * double(vj[x]);
        dp[j] = dot;
        delta += prob[j] * dot;
      }
      double *dqi = &out.dq[static_cast<size_t>((i * nh + h) * d)];
      for (int64_t j = 0; j < nk; ++j) {
        if (prob[j] == 0.0)
          continue;
        double ds = prob[j] * (dp[j] - delta);
        const T *kj = at(in.k, j, nkv, g);
        double *dkj = &out.dk[static_cast<size_t>((j * nkv + g) * d)];
        double *dvj = &out.dv[static_cast<size_t>((j * nkv + g) * d)];
        for (int64_t x = 0; x < d; ++x) {
          dqi[x] += scale * ds * double(kj[x]);
          dkj[x] += scale * ds * double(qi[x]);
          dvj[x] += prob[j] * double(doi[x]);
        }
      }
    }
  }
  return out;
}

template <typename T>
double mllm::attention_test::relativeError(const std::vector<T> &a,
                                           const std::vector<double> &b) {
  if (a.size() != b.size())
    return std::numeric_limits<double>::infinity();
  double maxRef = 1.0, maxErr = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    double x = double(a[i]), y = b[i];
    if (std::isinf(y) || std::isinf(x) || std::isnan(x)) {
      if (x != y)
        return std::numeric_limits<double>::infinity();
      continue;
    }
    maxRef = std::max(maxRef, std::abs(y));
    maxErr = std::max(maxErr, std::abs(x - y));
  }
  return maxErr / maxRef;
}

namespace mllm {
namespace attention_test {
template Inputs<float> randomInputs<float>(const Problem &, uint64_t);
template Inputs<double> randomInputs<double>(const Problem &, uint64_t);
template Outputs<float> runKernel<float>(const Problem &, const Inputs<float> &,
                                         int, bool);
template Outputs<double> runKernel<double>(const Problem &,
                                           const Inputs<double> &, int, bool);
template Outputs<double> denseReference<float>(const Problem &,
                                               const Inputs<float> &);
template Outputs<double> denseReference<double>(const Problem &,
                                                const Inputs<double> &);
template double relativeError<float>(const std::vector<float> &,
                                     const std::vector<double> &);
template double relativeError<double>(const std::vector<double> &,
                                      const std::vector<double> &);
} // namespace attention_test
} // namespace mllm
