//===- Blocks.cpp - checking blocks against their schema
//--------------------===//
#include "SemaImpl.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>

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
