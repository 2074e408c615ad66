//===- Manifest.cpp - a JSONL data set, one sample per line ---------------===//

#include "mllm/runtime/data/Manifest.h"
#include "mllm/runtime/JsonDepth.h"

#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <atomic>
#include <optional>
#include <thread>

using namespace mllm::runtime;
using namespace mllm::runtime::data;

char ProblemError::ID = 0;

static const char *const problemNames[kProblemKinds] = {
    "bad JSON",          "bad sample",     "unknown encoder",
    "too many items",    "bad marker",     "missing file",
    "undecodable media", "audio too long", "too long"};

const char *mllm::runtime::data::problemName(Problem problem) {
  return problemNames[static_cast<size_t>(problem)];
}

void ProblemError::log(llvm::raw_ostream &os) const {
  os << problemName(kind) << ": " << message;
}

llvm::Error mllm::runtime::data::problem(Problem kind,
                                         const llvm::Twine &message) {
  return llvm::make_error<ProblemError>(kind, message.str());
}

llvm::Error Problems::add(int64_t line, llvm::Error error) {
  Problem kind = Problem::BadSample;
  std::string message;
  llvm::handleAllErrors(
      std::move(error),
      [&](const ProblemError &p) {
        kind = p.kind;
        message = p.message;
      },
      [&](const llvm::ErrorInfoBase &e) { message = e.message(); });
  std::string located = file + ":" + std::to_string(line) + ": " +
                        problemName(kind) + ": " + message;
  ++counts[static_cast<size_t>(kind)];
  if (strict)
    return llvm::createStringError(llvm::inconvertibleErrorCode(), located);
  // Enough to see what is wrong without flooding a log.
  if (first.size() < 20)
    first.push_back(std::move(located));
  return llvm::Error::success();
}

int64_t Problems::total() const {
  int64_t n = 0;
  for (int64_t c : counts)
    n += c;
  return n;
}

std::string Problems::summary() const {
  if (total() == 0)
    return "";
  std::string s = std::to_string(total()) + " skipped:";
  const char *sep = " ";
  for (size_t k = 0; k < kProblemKinds; ++k)
    if (counts[k]) {
      s += sep + std::to_string(counts[k]) + " " + problemNames[k];
      sep = ", ";
    }
  return s;
}

namespace {

/// A key the line's top-level object holds twice, as written: llvm::json
/// keeps the last copy silently ({"text": "a", "text": "b"} reads as "b",
/// and a second, empty list of media drops the first).
std::optional<std::string> duplicateTopLevelKey(llvm::StringRef line) {
  llvm::StringSet<> keys;
  int depth = 0;
  char prev = 0; // The previous structural character.
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (c == '"') {
      size_t j = jsonStringEnd(line, i);
      llvm::StringRef token = line.slice(i + 1, j);
      i = j;
      // Compared decoded: "t\u0065xt" is "text" to the parser.
      std::string key = token.str();
      if (token.contains('\\'))
        if (auto v = llvm::json::parse("\"" + key + "\""))
          if (auto decoded = v->getAsString())
            key = decoded->str();
      if (depth == 1 && (prev == '{' || prev == ',') &&
          !keys.insert(key).second)
        return key;
      prev = '"';
    } else if (c == '{' || c == '[') {
      ++depth;
      prev = c;
    } else if (c == '}' || c == ']') {
      --depth;
      prev = c;
    } else if (c == ',' || c == ':') {
      prev = c;
    }
  }
  return std::nullopt;
}

/// One line's sample, or the problem with it.
llvm::Expected<ManifestSample> parseLine(llvm::StringRef line,
                                         llvm::StringRef dir,
                                         const DataGeometry &geometry) {
  // A sample nests a few levels; llvm::json::parse recurses per level.
  constexpr unsigned kMaxNesting = 32;
  if (unsigned depth = jsonNestingDepth(line); depth > kMaxNesting)
    return problem(Problem::BadJson,
                   llvm::formatv("{0} levels of nested [ and {{ (at most "
                                 "{1})",
                                 depth, kMaxNesting)
                       .str());
  auto value = llvm::json::parse(line);
  if (!value)
    return problem(Problem::BadJson, llvm::toString(value.takeError()));
  const llvm::json::Object *object = value->getAsObject();
  if (!object)
    return problem(Problem::BadSample, "a sample is a JSON object");
  if (std::optional<std::string> twice = duplicateTopLevelKey(line))
    return problem(Problem::BadSample,
                   "\"" + *twice +
                       "\" is given twice; JSON readers disagree on which "
                       "copy counts: give it once");
  ManifestSample sample;
  sample.media.resize(geometry.encoders.size());
  bool hasText = false;
  // Keys in sorted order, so the first problem reported does not depend on
  // the hash map's order.
  std::vector<std::string> keys;
  for (const auto &kv : *object)
    keys.push_back(kv.first.str());
  llvm::sort(keys);
  for (const std::string &key : keys) {
    const llvm::json::Value &v = *object->get(key);
    if (key == "text") {
      auto text = v.getAsString();
      if (!text)
        return problem(Problem::BadSample, "\"text\" must be a string");
      sample.text = text->str();
      hasText = true;
      continue;
    }
    int e = geometry.find(key);
    if (e < 0) {
      std::string known;
      for (const EncoderInput &in : geometry.encoders)
        known += (known.empty() ? "" : ", ") + in.name;
      return problem(Problem::UnknownEncoder,
                     "'" + key +
                         "' is not an encoder of the plan that takes "
                         "items (" +
                         (known.empty() ? "none" : known) + ")");
    }
    std::vector<std::string> &paths = sample.media[e];
    auto addPath = [&](const llvm::json::Value &p) -> llvm::Error {
      auto s = p.getAsString();
      if (!s || s->empty())
        return problem(Problem::BadSample,
                       "\"" + key + "\" holds a path or a list of paths");
      llvm::SmallString<256> full(*s);
      if (llvm::sys::path::is_relative(full)) {
        full = dir;
        llvm::sys::path::append(full, *s);
      }
      paths.push_back(full.str().str());
      return llvm::Error::success();
    };
    if (const llvm::json::Array *list = v.getAsArray()) {
      for (const llvm::json::Value &p : *list)
        if (llvm::Error err = addPath(p))
          return std::move(err);
    } else if (llvm::Error err = addPath(v)) {
      return std::move(err);
    }
    const EncoderInput &in = geometry.encoders[e];
    if (static_cast<int64_t>(paths.size()) > in.maxItems)
      return problem(Problem::TooManyItems,
                     llvm::Twine(paths.size()) + " " + key + " items; the " +
                         "plan's data layout allows " +
                         llvm::Twine(in.maxItems) + " per sample");
  }
  if (!hasText)
    return problem(Problem::BadSample, "no \"text\" string");
  bool items = false;
  for (const auto &paths : sample.media)
    for (const std::string &p : paths) {
      items = true;
      llvm::sys::fs::file_status status;
      if (llvm::sys::fs::status(p, status) || !llvm::sys::fs::exists(status))
        return problem(Problem::MissingFile, "'" + p + "' does not exist");
      // A pipe or a device would block the header read or never end.
      if (!llvm::sys::fs::is_regular_file(status))
        return problem(Problem::UndecodableMedia,
                       "'" + p + "' is not a regular file");
    }
  if (sample.text.empty() && !items)
    return problem(Problem::BadSample, "the sample has no text and no items");
  return sample;
}

} // namespace

llvm::Expected<std::vector<ManifestSample>> mllm::runtime::data::parseManifest(
    llvm::StringRef contents, llvm::StringRef path,
    const DataGeometry &geometry, Problems &problems, SampleCheck check,
    int threads) {
  llvm::SmallString<256> dir(path);
  llvm::sys::path::remove_filename(dir);
  if (dir.empty())
    dir = ".";
  // The lines with their numbers; blank lines (and a final newline) are no
  // samples. A UTF-8 byte-order mark (as some editors save) is not part of
  // the first line.
  contents.consume_front("\xEF\xBB\xBF");
  std::vector<std::pair<int64_t, llvm::StringRef>> lines;
  for (int64_t lineNo = 1; !contents.empty(); ++lineNo) {
    auto [line, rest] = contents.split('\n');
    contents = rest;
    if (!line.trim().empty())
      lines.push_back({lineNo, line.trim()});
  }

  // Parsing and the checks touch the file system (existence, headers):
  // they run on `threads` threads, each line on its own.
  std::vector<std::optional<llvm::Expected<ManifestSample>>> parsed(
      lines.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < lines.size(); i = next++) {
      auto sample = parseLine(lines[i].second, dir, geometry);
      if (sample) {
        sample->line = lines[i].first;
        if (check)
          if (llvm::Error bad = check(*sample))
            sample = std::move(bad);
      }
      parsed[i].emplace(std::move(sample));
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads && static_cast<size_t>(t) < lines.size(); ++t)
    pool.emplace_back(work);
  work();
  for (std::thread &t : pool)
    t.join();

  // Reported in line order, so strict mode stops at the first line that
  // has a problem whatever the threads did.
  std::vector<ManifestSample> samples;
  llvm::Error stop = llvm::Error::success();
  for (size_t i = 0; i < lines.size(); ++i) {
    llvm::Expected<ManifestSample> &sample = *parsed[i];
    if (stop) {
      llvm::consumeError(sample.takeError());
      continue;
    }
    if (!sample) {
      stop = problems.add(lines[i].first, sample.takeError());
      continue;
    }
    samples.push_back(std::move(*sample));
  }
  if (stop)
    return std::move(stop);
  return samples;
}

llvm::Error mllm::runtime::data::checkManifestFile(llvm::StringRef path) {
  llvm::sys::fs::file_status status;
  if (llvm::sys::fs::status(path, status))
    return llvm::Error::success(); // the read says why
  switch (status.type()) {
  case llvm::sys::fs::file_type::character_file:
  case llvm::sys::fs::file_type::block_file:
  case llvm::sys::fs::file_type::directory_file:
    // A device reads without end (/dev/zero); a directory not at all.
    return llvm::createStringError(
        std::make_error_code(std::errc::invalid_argument),
        "cannot read manifest '%s': not a file; a manifest is a JSON-lines "
        "file (docs/data.md)",
        path.str().c_str());
  default:
    return llvm::Error::success();
  }
}

llvm::Expected<std::vector<ManifestSample>> mllm::runtime::data::readManifest(
    llvm::StringRef path, const DataGeometry &geometry, Problems &problems,
    SampleCheck check, int threads) {
  if (llvm::Error e = checkManifestFile(path))
    return std::move(e);
  auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/true);
  if (!buffer)
    return llvm::createStringError(buffer.getError(),
                                   "cannot read manifest '" + path +
                                       "': " + buffer.getError().message());
  return parseManifest((*buffer)->getBuffer(), path, geometry, problems, check,
                       threads);
}
