//===- YamlDocuments.cpp - counting the documents of a YAML stream --------===//
#include "YamlDocuments.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/parser.h>

#include <sstream>

using namespace mllm::runtime;

namespace {

/// Records where a document starts; the rest of the events are not needed.
class DocumentStart : public YAML::EventHandler {
public:
  YAML::Mark mark = YAML::Mark::null_mark();

  void OnDocumentStart(const YAML::Mark &at) override { mark = at; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark &, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark &, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark &, const std::string &, YAML::anchor_t,
                const std::string &) override {}
  void OnSequenceStart(const YAML::Mark &, const std::string &, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark &, const std::string &, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

} // namespace

size_t mllm::runtime::countYamlDocuments(const std::string &text) {
  std::istringstream stream(text);
  YAML::Parser parser(stream);
  size_t count = 0;
  YAML::Mark previous = YAML::Mark::null_mark();
  for (;;) {
    DocumentStart start;
    if (!parser.HandleNextDocument(start))
      return count;
    if (count > 0 && start.mark.pos == previous.pos) {
      std::string what = "unexpected character";
      if (start.mark.pos >= 0 &&
          static_cast<size_t>(start.mark.pos) < text.size())
        what += std::string(" '") + text[start.mark.pos] + "'";
      throw YAML::ParserException(start.mark, what);
    }
    previous = start.mark;
    ++count;
  }
}
