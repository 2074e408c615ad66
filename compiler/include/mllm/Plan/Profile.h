//===- Profile.h - measured per-layer times ---------------------*- C++ -*-===//
//
// A profile of measured layer times, the cost model's alternative to the
// roofline (docs/cost-model.md).
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_PLAN_PROFILE_H
#define MLLM_PLAN_PROFILE_H

#include "mllm/Plan/CostModel.h"

#include "llvm/Support/Error.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mllm::plan {

/// Measured per-layer times that override the analytic ones. File format
/// (YAML, documented in docs/cost-model.md):
///   layers:
///     - kind: transformer_block
///       hidden: 2048        # shape keys as in the mllm.layers config
///       tokens: 1753        # workload keys
///       tp: 1
///       cp: 1
///       forward_ms: 3.1
///       weight_grad_ms: 3.0
///       input_grad_ms: 3.2
class Profile {
public:
  /// Limits of a profile file (docs/cli.md, "Input limits"): YAML is read
  /// recursively, one level of recursion per level of nesting.
  static constexpr size_t kMaxBytes = size_t(16) << 20;
  static constexpr unsigned kMaxNesting = 64;

  static llvm::Expected<Profile> load(llvm::StringRef path);
  /// Parses profile text; `name` is the file name used in error messages.
  static llvm::Expected<Profile> parse(llvm::StringRef text,
                                       llvm::StringRef name = "<profile>");
  /// Whether `key` may appear in an entry to select layers: a shape key
  /// (as in the mllm.layers config) or a workload key (tokens,
  /// attention_span, tp, cp, element_bytes).
  static bool isMatchKey(llvm::StringRef key);
  /// Times for a layer, if the profile has an entry matching its kind,
  /// shape and workload. An entry matches when its kind and every key it
  /// gives equal the layer's; among matches the one giving the most keys
  /// wins, then the earliest in the file. Only `fwd`, `wgrad` and `igrad`
  /// of the result are set.
  std::optional<LayerCost> lookup(LayerKind kind,
                                  const model::LayerShape &shape,
                                  const Workload &workload) const;
  size_t size() const { return entries.size(); }

  struct Entry {
    LayerKind kind;
    std::map<std::string, int64_t> keys;
    double fwd, wgrad, igrad; ///< Seconds.
    /// Where the entry starts in the file (1-based; 0 when not parsed).
    unsigned line = 0, column = 0;
  };
  std::vector<Entry> entries;
  /// The file the profile was read from (its name in messages).
  std::string name;

  /// The entries no lookup() has chosen so far: measurements of a layer
  /// the job does not have (a key that differs, a typo in a value), which
  /// would otherwise be ignored without a word.
  std::vector<const Entry *> unused() const;

private:
  /// Per entry, whether a lookup() chose it (lookups run on one thread).
  mutable std::vector<bool> chosen;
};

} // namespace mllm::plan

#endif // MLLM_PLAN_PROFILE_H
