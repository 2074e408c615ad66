//===- SemaImpl.h - semantic analysis internals -----------------*- C++ -*-===//
#ifndef MLLM_LIB_SEMA_SEMAIMPL_H
#define MLLM_LIB_SEMA_SEMAIMPL_H

#include "Schema.h"
#include "Value.h"

#include "mllm/Dialect/MLLM/IR/Bounds.h"
#include "mllm/Sema/Sema.h"

#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"

#include <optional>

namespace mllm::sema {

class Sema;

/// The fields visible in one context: the blocks of an inheritance chain,
/// base first, later blocks overriding earlier ones. Typed reads report
/// errors once per field and leave the output untouched when the field is
/// absent (so callers set defaults first).
class Fields {
public:
  Fields(Sema &sema, llvm::StringRef context) : sema(sema), context(context) {}

  /// Adds the fields of `block` whose names are in `schema`.
  void add(const ast::Block &block, Schema schema);
  const ast::Field *get(llvm::StringRef name) const;
  bool has(llvm::StringRef name) const { return get(name) != nullptr; }
  /// The most derived block, where "missing field" errors point.
  llvm::SMRange where() const { return last; }

  /// Reports a missing field; returns false if missing.
  bool require(llvm::StringRef name);
  /// The default bound keeps every derived product (parameters, token and
  /// GPU counts) far from int64 overflow (Bounds.h).
  bool readInt(llvm::StringRef name, int64_t &out, int64_t min = 1,
               int64_t max = bounds::kMaxInt);
  /// A list of positive integers of at most `max` each.
  bool readIntList(llvm::StringRef name, std::vector<int64_t> &out,
                   int64_t max);
  bool readFloat(llvm::StringRef name, double &out, double min, bool exclusive);
  bool readBool(llvm::StringRef name, bool &out);
  bool readDim(llvm::StringRef name, double &out, Dim dim);
  bool readBytes(llvm::StringRef name, int64_t &out);
  /// Enum fields: `choices` is "a|b|c"; `out` receives the index.
  bool readChoice(llvm::StringRef name, llvm::StringRef choices, int &out);
  template <typename E>
  bool readEnum(llvm::StringRef name, llvm::StringRef choices, E &out) {
    int index = static_cast<int>(out);
    bool ok = readChoice(name, choices, index);
    out = static_cast<E>(index);
    return ok;
  }
  /// An enum of the mllm dialect, spelled as the dialect spells it.
  template <typename E>
  bool readDialectEnum(llvm::StringRef name, E &out) {
    std::vector<E> cases = EnumCases<E>::all();
    int index = static_cast<int>(llvm::find(cases, out) - cases.begin());
    bool ok = readChoice(name, enumChoices<E>(), index);
    out = cases[static_cast<size_t>(index)];
    return ok;
  }
  bool readSize2D(llvm::StringRef name, int64_t &width, int64_t &height);
  bool readRecompute(llvm::StringRef name, spec::Recompute &out);
  /// Reads a name; returns the identifier and its range via `value`.
  bool readName(llvm::StringRef name, Value &value);

  /// Evaluates a present field (invalid Value if absent or erroneous).
  Value value(llvm::StringRef name);
  /// Reports that `value` of field `name` is not `expected`, with a "did you
  /// mean" among `names` for a misspelt name.
  void typeError(llvm::StringRef name, const Value &value,
                 llvm::StringRef expected,
                 llvm::ArrayRef<std::string> names = {});

  Sema &sema;

private:
  std::string context;
  llvm::StringMap<const ast::Field *> fields;
  llvm::StringMap<Type> types; ///< Of `fields`, from their schema.
  llvm::SMRange last;
};

class Sema {
public:
  Sema(const Program &program, Diagnostics &diags)
      : diags(diags), program(program) {}

  std::optional<spec::Job> run(bool requireJob, spec::Library *library);

  Diagnostics &diags;
  /// True the first time `key` is seen: errors about shared blocks (a family
  /// used by many instances) are reported once.
  bool once(const void *key) { return reported.insert(key).second; }
  bool onceKey(const std::string &key) {
    return reportedKeys.insert(key).second;
  }
  /// Evaluated field values, computed once per field.
  llvm::DenseMap<const ast::Field *, Value> values;

  /// Warns when every part of the model is frozen, counting `trainSteps`
  /// (a tool's --steps) or else the spec's train.steps.
  void warnIfNothingTrains(const spec::Job &job);
  std::optional<int64_t> trainSteps;

  /// What a block's header may have besides its kind: `kind NAME : BASE`.
  enum Header { Bare = 0, Named = 1, NamedWithBase = 3 };
  /// Unknown-field, duplicate-field and nested-block checks of one block,
  /// and a name or base its header may not have (`header`).
  void checkBlock(const ast::Block &block, llvm::ArrayRef<Schema> schemas,
                  llvm::ArrayRef<llvm::StringRef> nestedKinds,
                  llvm::StringRef context, Header header = NamedWithBase);

  /// "did you mean" over `candidates`, or empty.
  static std::string suggest(llvm::StringRef name,
                             llvm::ArrayRef<std::string> candidates);

  // Declarations (Sema.cpp).
  void collect();
  std::optional<spec::ArchConfig> resolveInstance(const ast::Block &decl);
  /// Checks the values a family sets, without requiring completeness.
  bool checkFamily(const ast::Block &decl);
  std::optional<spec::Hardware> resolveHardware(const ast::Block &decl);
  const ast::Block *findDecl(llvm::StringRef name) const {
    auto it = decls.find(name);
    return it == decls.end() ? nullptr : it->second;
  }
  std::vector<std::string> declNames(llvm::StringRef kind) const;
  /// The standard library module ("llama") whose file declares `name` as an
  /// instance, or "" (a forgotten import).
  std::string stdlibModuleDeclaring(llvm::StringRef name) const;

  // The job (Job.cpp).
  bool resolveModel(const ast::Block &block, spec::Model &model);
  bool resolveData(const ast::Block *block, spec::Job &job);
  bool resolveCluster(const ast::Block &block, spec::Cluster &cluster);
  bool resolveParallel(const ast::Block *block, spec::Job &job);
  bool resolveTrain(const ast::Block *block, spec::Train &train);
  bool resolveArchAt(const ast::Block &site, llvm::StringRef role,
                     spec::ArchConfig &config);

  const Program &program;
  llvm::StringMap<const ast::Block *> decls;
  const ast::Block *model = nullptr, *data = nullptr, *cluster = nullptr,
                   *parallel = nullptr, *train = nullptr;

private:
  struct Chain {
    spec::Arch arch;
    std::vector<const ast::Block *> blocks; ///< Base first.
  };
  std::optional<Chain> chainOf(const ast::Block &decl);
  std::optional<spec::ArchConfig> readArch(const Chain &chain,
                                           const ast::Block *site,
                                           llvm::StringRef name,
                                           bool complete = true);

  llvm::DenseMap<const ast::Block *, std::optional<Chain>> chains;
  /// resolveInstance's answers: an instance is checked (and its errors
  /// reported) once, however many parts use it.
  llvm::DenseMap<const ast::Block *, std::optional<spec::ArchConfig>> instances;
  llvm::DenseSet<const ast::Block *> resolving;
  llvm::DenseSet<const void *> reported;
  llvm::StringSet<> reportedKeys;
};

Schema archSchema(spec::Arch arch);
/// The architecture a builtin base names (`decoder`, `vision_encoder`,
/// `audio_encoder`), or none.
std::optional<spec::Arch> builtinArch(llvm::StringRef name);

} // namespace mllm::sema

#endif // MLLM_LIB_SEMA_SEMAIMPL_H
