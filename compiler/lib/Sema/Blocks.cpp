//===- Blocks.cpp - checking blocks against their schema
//--------------------===//
#include "SemaImpl.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <optional>

using namespace mllm;
using namespace mllm::sema;

//===----------------------------------------------------------------------===//
// Block checks
//===----------------------------------------------------------------------===//

std::string Sema::suggest(llvm::StringRef name,
                          llvm::ArrayRef<std::string> candidates) {
  std::string best;
  // Only the case differs ('LPT' for 'lpt').
  for (const std::string &c : candidates)
    if (name.equals_insensitive(c))
      return "; did you mean '" + c + "'?";
  // A candidate that extends the name by a qualifier ("h100" ->
  // "h100_sxm") is what the user meant more often than one a letter away.
  for (const std::string &c : candidates)
    if (llvm::StringRef(c).starts_with((name + "_").str()) &&
        (best.empty() || c.size() < best.size()))
      best = c;
  if (!best.empty())
    return "; did you mean '" + best + "'?";
  unsigned bestDist = std::max<unsigned>(2, name.size() / 3) + 1;
  for (const std::string &c : candidates) {
    unsigned d = name.edit_distance(c, true, bestDist);
    if (d < bestDist) {
      bestDist = d;
      best = c;
    }
  }
  return best.empty() ? "" : "; did you mean '" + best + "'?";
}

/// The value of a boolean field as written, if it is one.
static std::optional<bool> boolValue(const ast::Expr *value) {
  if (!value || value->kind != ast::Expr::Kind::Ident)
    return std::nullopt;
  if (value->name == "true")
    return true;
  if (value->name == "false")
    return false;
  return std::nullopt;
}

/// What a name from another framework's config is called here, or how it
/// is set: such names are too far from ours for "did you mean". `context`
/// is checkBlock's ("llm 'llm'", "data", ...); `field` the field written.
/// Empty when nothing fits.
static std::string otherFrameworkHint(const ast::Field &field,
                                      llvm::StringRef context,
                                      llvm::ArrayRef<std::string> known) {
  std::string lower = field.name.name;
  lower = llvm::StringRef(lower).lower();
  auto is = [&](std::initializer_list<llvm::StringRef> names) {
    return llvm::is_contained(names, llvm::StringRef(lower));
  };
  auto ours = [&](llvm::StringRef field) -> std::string {
    if (llvm::is_contained(known, field))
      return ("; here it is called '" + field + "'").str();
    return "";
  };
  // A part's own block: its parallel degrees go in the parallel block.
  llvm::StringRef part = context;
  // A projector's degrees are its encoder's.
  bool inPart = part.consume_front("llm '") ||
                part.consume_front("encoder '") ||
                part.consume_front("projector of '");
  part = part.take_until([](char c) { return c == '\''; });
  if (is({"tp", "pp", "cp", "tensor_parallel", "pipeline_parallel",
          "context_parallel", "tensor_model_parallel_size",
          "pipeline_model_parallel_size", "context_parallel_size"})) {
    llvm::StringRef degree = lower[0] == 't'   ? "tp"
                             : lower[0] == 'p' ? "pp"
                                               : "cp";
    if (inPart)
      return ("; parallel degrees go in the parallel block: 'parallel { " +
              part + " { " + degree + " = 2; } }'")
          .str();
    if (std::string here = ours(degree); !here.empty())
      return here;
    // The job's blocks (parallel, cluster): the degrees are per part.
    return ("; parallel degrees are per part, in a block named after it: "
            "'parallel { llm { " +
            degree + " = 2; } }'")
        .str();
  }
  if (is({"dp", "data_parallel", "data_parallel_size", "dp_size"}))
    return "; the data-parallel degree is the whole job's, set at the top "
           "of the parallel block: 'parallel { dp = 2; }' (left out, it is "
           "derived: the cluster's GPUs over one replica's, its stages x tp x "
           "cp)";
  // The value says which way: 'trainable = false' freezes.
  bool freezes = is({"freeze", "frozen_params"});
  if (freezes || is({"trainable", "requires_grad"})) {
    if (ours("frozen").empty())
      return "";
    std::optional<bool> v = boolValue(field.value.get());
    if (!v)
      return "; write 'frozen = true;' to freeze the part (false trains it)";
    return *v == freezes ? "; write 'frozen = true;'"
                         : "; write 'frozen = false;'";
  }
  if (is({"seq_len", "seq_length", "max_seq_len", "sequence_length",
          "max_seq_length"}))
    return "; the sequence length is derived (text_tokens plus each "
           "encoder's tokens, times packing): set text_tokens";
  if (is({"global_batch_size", "batch_size", "train_batch_size"}))
    return "; a step trains dp x microbatches x microbatch_size sequences: "
           "set microbatches and microbatch_size";
  if (is({"micro_batch_size", "micro_batch", "mbs"}))
    return ours("microbatch_size");
  if (is({"num_microbatches", "gradient_accumulation_steps"}))
    return ours("microbatches");
  if (is({"resolution", "image_size", "img_size", "image_resolution"}))
    return ours("image");
  if (is({"gpus", "num_gpus", "world_size", "n_gpus"}))
    return "; the cluster's GPUs are nodes x gpus_per_node";
  if (is({"learning_rate"}))
    return ours("lr");
  if (is({"train_iters", "max_steps", "iterations", "train_steps"}))
    return ours("steps");
  return "";
}

void Sema::checkBlock(const ast::Block &block, llvm::ArrayRef<Schema> schemas,
                      llvm::ArrayRef<llvm::StringRef> nestedKinds,
                      llvm::StringRef context, Header header) {
  if (!once(&block.fields))
    return;
  // A name or base the block does not read would look meaningful and do
  // nothing (`cluster c1 : a40`).
  if (!(header & Named) && !block.name.empty())
    diags.error(block.name.range)
        << context << " takes no name: remove '" << block.name.name << "'";
  if (header != NamedWithBase && !block.base.empty())
    diags.error(block.base.range)
        << context << " takes no base: remove ': " << block.base.name << "'";
  std::vector<std::string> known;
  for (Schema s : schemas)
    for (const FieldSpec &f : s)
      known.push_back(f.name);
  llvm::StringMap<const ast::Field *> seen;
  for (const ast::Field &field : block.fields) {
    llvm::StringRef name = field.name.name;
    if (!llvm::is_contained(known, name)) {
      bool isBlock = llvm::is_contained(nestedKinds, name);
      auto diag = diags.error(field.name.range)
                  << "unknown field '" << name << "' in " << context;
      if (isBlock)
        diag << "; '" << name << "' is a block: write '" << name
             << " ... { ... }'";
      else if (std::string hint = otherFrameworkHint(field, context, known);
               !hint.empty())
        diag << hint;
      else
        diag << suggest(name, known);
      continue;
    }
    auto [it, inserted] = seen.try_emplace(name, &field);
    if (!inserted) {
      auto diag = diags.error(field.name.range)
                  << "field '" << name << "' is set twice in " << context;
      diags.note(diag, it->second->name.range, "previously set here");
    }
  }
  // "*" means the caller checks nested blocks itself (they are named after
  // model parts).
  if (llvm::is_contained(nestedKinds, "*"))
    return;
  for (const auto &nested : block.blocks) {
    llvm::StringRef kind = nested->kind.name;
    if (llvm::is_contained(nestedKinds, kind))
      continue;
    auto diag = diags.error(nested->kind.range)
                << "unexpected block '" << kind << "' in " << context;
    if (llvm::is_contained(known, kind))
      diag << "; '" << kind << "' is a field: write '" << kind << " = ...;'";
    else if (nestedKinds.empty())
      diag << "; this block takes fields only";
    else
      diag << suggest(kind, std::vector<std::string>(nestedKinds.begin(),
                                                     nestedKinds.end()));
  }
}
