//===- Profile.cpp - measured per-layer times -----------------------------===//
//
// Reads a profile (docs/cost-model.md) and matches its entries against
// layers: the measured times that override the roofline.
//
//===----------------------------------------------------------------------===//
#include "mllm/Plan/Profile.h"
#include "mllm/runtime/ReadFile.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/YAMLParser.h"
#include "llvm/Support/raw_ostream.h"

using namespace mllm;
using namespace mllm::plan;
using model::LayerShape;

namespace {
/// A key an entry may give to select layers, and how to read it off a
/// layer: the integer and flag keys of the layer-config table
/// (runtime/LayerConfig.h), or a workload key.
struct MatchKey {
  const runtime::LayerConfigKey *shapeKey = nullptr;
  int64_t Workload::*workField = nullptr;
  bool isBool = false;
  int64_t get(const LayerShape &s, const Workload &w) const {
    if (workField)
      return w.*workField;
    if (shapeKey->type == runtime::LayerConfigKey::Bool)
      return s.*(shapeKey->boolField) ? 1 : 0;
    return s.*(shapeKey->intField);
  }
};

std::optional<MatchKey> findMatchKey(llvm::StringRef name) {
  static const std::pair<const char *, int64_t Workload::*> workKeys[] = {
      {"tokens", &Workload::tokens},
      {"attention_span", &Workload::attentionSpan},
      {"tp", &Workload::tp},
      {"cp", &Workload::cp},
      {"element_bytes", &Workload::elementBytes}};
  for (auto [key, field] : workKeys)
    if (name == key)
      return MatchKey{nullptr, field, false};
  const runtime::LayerConfigKey *k = runtime::findLayerConfigKey(name);
  if (!k || (k->type != runtime::LayerConfigKey::Int &&
             k->type != runtime::LayerConfigKey::Bool))
    return std::nullopt;
  return MatchKey{k, nullptr, k->type == runtime::LayerConfigKey::Bool};
}

/// The offset at which `text` nests YAML collections deeper than `limit`, if
/// it does. llvm::yaml parses (and validates) nodes recursively, so hostile
/// nesting must be refused before it sees the text. The count errs on the
/// deep side: flow brackets outside quotes and comments, plus the block
/// levels (a stack of indentations, and the compact "- " and "? "
/// indicators that open a level on the same line); block scalars are
/// skipped.
std::optional<size_t> findDeepNesting(llvm::StringRef text, unsigned limit) {
  llvm::SmallVector<size_t> indents; // Open block levels.
  unsigned flow = 0;
  std::optional<size_t> scalarIndent; // Inside a block scalar deeper than it.
  size_t lineStart = 0;
  while (lineStart < text.size()) {
    size_t lineEnd = text.find('\n', lineStart);
    if (lineEnd == llvm::StringRef::npos)
      lineEnd = text.size();
    llvm::StringRef line = text.slice(lineStart, lineEnd);
    size_t indent = line.find_first_not_of(' ');
    bool blank = indent == llvm::StringRef::npos ||
                 line.drop_front(indent).trim().empty() || line[indent] == '#';
    if (scalarIndent) {
      if (blank || indent > *scalarIndent) {
        lineStart = lineEnd + 1;
        continue;
      }
      scalarIndent.reset();
    }
    if (blank) {
      lineStart = lineEnd + 1;
      continue;
    }
    unsigned block = 0;
    size_t i = indent;
    if (flow == 0) {
      while (!indents.empty() && indents.back() >= indent)
        indents.pop_back();
      indents.push_back(indent);
      block = indents.size();
      // "- - - x" and "? ? x" open a level per indicator.
      while (i + 1 < line.size() && (line[i] == '-' || line[i] == '?') &&
             line[i + 1] == ' ') {
        ++block;
        i = line.find_first_not_of(' ', i + 1);
        if (i == llvm::StringRef::npos)
          i = line.size();
      }
    }
    char quote = 0;
    for (; i < line.size(); ++i) {
      char c = line[i];
      if (quote) {
        if (c == '\\' && quote == '"')
          ++i;
        else if (c == quote)
          quote = 0;
        continue;
      }
      if (c == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t'))
        break;
      if (c == '"' || c == '\'') {
        quote = c;
      } else if (c == '[' || c == '{') {
        ++flow;
      } else if ((c == ']' || c == '}') && flow > 0) {
        --flow;
      }
      if (block + flow > limit)
        return lineStart + i;
    }
    if (block > limit)
      return lineStart + indent;
    // `key: |` or `- >-` starts a block scalar: its lines are text.
    llvm::StringRef rest = line.rtrim();
    if (flow == 0 && !rest.empty()) {
      llvm::StringRef head = rest.rtrim("+-0123456789");
      if (head.ends_with("|") || head.ends_with(">")) {
        llvm::StringRef before = head.drop_back().rtrim();
        if (before.empty() || before.ends_with(":") || before.ends_with("-"))
          scalarIndent = indent;
      }
    }
    lineStart = lineEnd + 1;
  }
  return std::nullopt;
}

/// Reads a profile, stopping at the first error: a profile is a small
/// hand-edited or tool-written file, and one precise message is what its
/// author needs.
class ProfileParser {
public:
  ProfileParser(llvm::MemoryBufferRef buffer) : buffer(buffer) {
    // The YAML scanner reports syntax errors through the SourceMgr; keep
    // the first as our error instead of printing it.
    sm.setDiagHandler(
        [](const llvm::SMDiagnostic &diag, void *context) {
          auto *self = static_cast<ProfileParser *>(context);
          if (self->message.empty())
            self->message = render(diag);
        },
        this);
  }

  llvm::Expected<Profile> run() {
    llvm::StringRef text = buffer.getBuffer();
    if (text.size() > Profile::kMaxBytes)
      return fail("the profile has " + llvm::Twine(text.size()) +
                  " bytes; the limit is " + llvm::Twine(Profile::kMaxBytes));
    if (std::optional<size_t> at =
            findDeepNesting(text, Profile::kMaxNesting)) {
      // The YAML stream has not registered the buffer yet.
      llvm::SourceMgr local;
      local.AddNewSourceBuffer(
          llvm::MemoryBuffer::getMemBuffer(buffer, /*RequiresNull=*/false),
          llvm::SMLoc());
      llvm::SMLoc loc = llvm::SMLoc::getFromPointer(text.data() + *at);
      std::string msg = "nesting deeper than " +
                        std::to_string(Profile::kMaxNesting) +
                        " levels; a profile is a 'layers' list of flat entries";
      auto [line, column] = local.getLineAndColumn(loc);
      // Hostile nesting is often one very long line: no source excerpt then.
      size_t lineStart = text.rfind('\n', *at);
      size_t lineEnd = text.find('\n', *at);
      lineStart = lineStart == llvm::StringRef::npos ? 0 : lineStart + 1;
      lineEnd = lineEnd == llvm::StringRef::npos ? text.size() : lineEnd;
      if (lineEnd - lineStart <= 200)
        message = render(local.GetMessage(loc, llvm::SourceMgr::DK_Error, msg));
      else
        message = (buffer.getBufferIdentifier() + ":" + llvm::Twine(line) +
                   ":" + llvm::Twine(column) + ": error: " + msg)
                      .str();
      return takeError();
    }
    // The scanner finds syntax errors only as nodes are read; validate the
    // whole text first so that a syntax error is reported as such, not as
    // whatever shape the half-parsed node below it happens to have.
    {
      llvm::yaml::Stream syntax(buffer, sm, /*ShowColors=*/false);
      if (!syntax.validate() || !message.empty())
        return takeError();
    }
    llvm::yaml::Stream stream(buffer, sm, /*ShowColors=*/false);
    Profile profile;
    profile.name = buffer.getBufferIdentifier().str();
    auto docs = stream.begin();
    llvm::yaml::Node *root = docs == stream.end() ? nullptr : docs->getRoot();
    // An empty file parses as one document whose root is a null node.
    if (!root || (llvm::isa<llvm::yaml::NullNode>(root) && message.empty()))
      return fail("empty profile: expected a mapping with a 'layers' list");
    auto *top = llvm::dyn_cast<llvm::yaml::MappingNode>(root);
    if (!top) {
      if (message.empty())
        error(root, "expected a mapping with a 'layers' list");
      return takeError();
    }
    bool sawLayers = false;
    for (llvm::yaml::KeyValueNode &kv : *top) {
      std::optional<std::string> key = scalar(kv.getKey());
      if (!key)
        return takeError();
      if (*key == "layers") {
        sawLayers = true;
        if (!parseLayers(kv.getValue(), profile))
          return takeError();
      } else if (*key == "device") {
        // Informational: which GPU the numbers were measured on.
        if (!scalar(kv.getValue()))
          return takeError();
      } else {
        error(kv.getKey(), "unknown top-level key '" + *key +
                               "'; expected 'layers' (or 'device')");
        return takeError();
      }
    }
    if (!message.empty())
      return takeError();
    if (!sawLayers)
      return fail("profile has no 'layers' list");
    if (++docs != stream.end() && docs->getRoot())
      error(docs->getRoot(), "expected one YAML document");
    if (!message.empty())
      return takeError();
    return profile;
  }

private:
  static std::string render(const llvm::SMDiagnostic &diag) {
    std::string text;
    llvm::raw_string_ostream os(text);
    diag.print(/*ProgName=*/nullptr, os, /*ShowColors=*/false);
    os.flush();
    while (!text.empty() && text.back() == '\n')
      text.pop_back();
    return text;
  }

  void error(llvm::yaml::Node *node, const llvm::Twine &msg) {
    if (!message.empty())
      return;
    llvm::SMLoc loc = node ? node->getSourceRange().Start : llvm::SMLoc();
    if (!loc.isValid()) {
      message = (buffer.getBufferIdentifier() + ": error: " + msg).str();
      return;
    }
    message = render(sm.GetMessage(loc, llvm::SourceMgr::DK_Error, msg));
  }

  llvm::Error fail(const llvm::Twine &msg) {
    if (message.empty())
      message = (buffer.getBufferIdentifier() + ": error: " + msg).str();
    return takeError();
  }

  llvm::Error takeError() {
    if (message.empty())
      message =
          (buffer.getBufferIdentifier() + ": error: malformed profile").str();
    return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
  }

  std::optional<std::string> scalar(llvm::yaml::Node *node) {
    auto *s = llvm::dyn_cast_or_null<llvm::yaml::ScalarNode>(node);
    if (!s) {
      error(node, "expected a scalar");
      return std::nullopt;
    }
    llvm::SmallString<32> storage;
    return s->getValue(storage).str();
  }

  bool parseLayers(llvm::yaml::Node *node, Profile &profile) {
    auto *list = llvm::dyn_cast_or_null<llvm::yaml::SequenceNode>(node);
    if (!list) {
      error(node, "'layers' must be a list of entries");
      return false;
    }
    for (llvm::yaml::Node &item : *list)
      if (!parseEntry(&item, profile))
        return false;
    return message.empty();
  }

  bool parseEntry(llvm::yaml::Node *node, Profile &profile) {
    auto *map = llvm::dyn_cast<llvm::yaml::MappingNode>(node);
    if (!map) {
      error(node, "a 'layers' entry must be a mapping (kind, keys, times)");
      return false;
    }
    Profile::Entry entry{};
    if (llvm::SMLoc at = node->getSourceRange().Start; at.isValid())
      std::tie(entry.line, entry.column) = sm.getLineAndColumn(at);
    std::optional<LayerKind> kind;
    std::optional<double> times[3];
    static const char *const timeKeys[3] = {"forward_ms", "weight_grad_ms",
                                            "input_grad_ms"};
    llvm::StringSet<> seen;
    for (llvm::yaml::KeyValueNode &kv : *map) {
      std::optional<std::string> key = scalar(kv.getKey());
      if (!key)
        return false;
      if (!seen.insert(*key).second) {
        error(kv.getKey(), "duplicate key '" + *key + "'");
        return false;
      }
      std::optional<std::string> value = scalar(kv.getValue());
      if (!value)
        return false;
      llvm::StringRef text = llvm::StringRef(*value).trim();

      if (*key == "kind") {
        kind = symbolizeLayerKind(text);
        if (!kind) {
          error(kv.getValue(), "unknown layer kind '" + text + "'");
          return false;
        }
        continue;
      }
      if (const auto *t = llvm::find_if(
              timeKeys, [&](const char *name) { return *key == name; });
          t != std::end(timeKeys)) {
        double ms;
        // A day per layer is beyond any real measurement; larger values
        // would overflow the sums of a whole pipeline.
        if (text.getAsDouble(ms) || !std::isfinite(ms) || ms < 0 ||
            ms > 8.64e7) {
          error(kv.getValue(), "'" + *key +
                                   "' must be a number of milliseconds "
                                   "between 0 and 86400000, got '" +
                                   text + "'");
          return false;
        }
        times[t - std::begin(timeKeys)] = ms;
        continue;
      }
      std::optional<MatchKey> mk = findMatchKey(*key);
      if (!mk) {
        error(kv.getKey(), "unknown key '" + *key +
                               "'; expected kind, a shape key, tokens, "
                               "attention_span, tp, cp, element_bytes or "
                               "forward_ms/weight_grad_ms/input_grad_ms");
        return false;
      }
      int64_t v;
      if (mk->isBool) {
        if (text == "true" || text == "1")
          v = 1;
        else if (text == "false" || text == "0")
          v = 0;
        else {
          error(kv.getValue(),
                "'" + *key + "' must be true or false, got '" + text + "'");
          return false;
        }
      } else if (text.getAsInteger(10, v) || v < 0) {
        error(kv.getValue(), "'" + *key +
                                 "' must be a non-negative integer, got '" +
                                 text + "'");
        return false;
      } else if (v == 0) {
        // Every shape and workload value of a layer is positive: the entry
        // would never match.
        error(kv.getValue(), "'" + *key +
                                 "' must be at least 1, got '0'; no layer "
                                 "has a " +
                                 *key + " of 0");
        return false;
      }
      entry.keys[*key] = v;
    }
    if (!message.empty())
      return false;
    if (!kind) {
      error(node, "entry has no 'kind'");
      return false;
    }
    for (int i = 0; i < 3; ++i)
      if (!times[i]) {
        error(node, llvm::Twine("entry has no '") + timeKeys[i] + "'");
        return false;
      }
    entry.kind = *kind;
    entry.fwd = *times[0] / 1e3;
    entry.wgrad = *times[1] / 1e3;
    entry.igrad = *times[2] / 1e3;
    profile.entries.push_back(std::move(entry));
    return true;
  }

  llvm::MemoryBufferRef buffer;
  llvm::SourceMgr sm;
  std::string message;
};
} // namespace

bool Profile::isMatchKey(llvm::StringRef key) {
  return findMatchKey(key).has_value();
}

llvm::Expected<Profile> Profile::parse(llvm::StringRef text,
                                       llvm::StringRef name) {
  return ProfileParser(llvm::MemoryBufferRef(text, name)).run();
}

llvm::Expected<Profile> Profile::load(llvm::StringRef path) {
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> file =
      runtime::readFileAtMost(path, kMaxBytes);
  if (!file)
    return llvm::createStringError(file.getError(),
                                   "cannot read profile '" + path +
                                       "': " + file.getError().message());
  return ProfileParser((*file)->getMemBufferRef()).run();
}

std::vector<const Profile::Entry *> Profile::unused() const {
  std::vector<const Entry *> out;
  for (size_t i = 0; i < entries.size(); ++i)
    if (i >= chosen.size() || !chosen[i])
      out.push_back(&entries[i]);
  return out;
}

std::optional<LayerCost> Profile::lookup(LayerKind kind,
                                         const model::LayerShape &shape,
                                         const Workload &workload) const {
  const Entry *best = nullptr;
  for (const Entry &e : entries) {
    if (e.kind != kind)
      continue;
    bool matches = llvm::all_of(e.keys, [&](const auto &kv) {
      std::optional<MatchKey> k = findMatchKey(kv.first);
      return k && k->get(shape, workload) == kv.second;
    });
    // More keys = more specific; ties keep the earlier entry.
    if (matches && (!best || e.keys.size() > best->keys.size()))
      best = &e;
  }
  if (!best)
    return std::nullopt;
  chosen.resize(entries.size(), false);
  chosen[best - entries.data()] = true;
  LayerCost c;
  c.fwd = best->fwd;
  c.wgrad = best->wgrad;
  c.igrad = best->igrad;
  return c;
}
