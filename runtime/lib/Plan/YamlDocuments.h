//===- YamlDocuments.h - counting the documents of a YAML stream -*- C++
//-*-===//
//
// yaml-cpp 0.7's LoadAll never returns on a ',' outside a flow collection
// (",/" as a whole plan file, or after a '---'): its parser reports an empty
// document there again and again without moving past it, and LoadAll
// collects them until memory runs out. countYamlDocuments walks the stream's
// events instead and takes a document that starts where the one before it
// did for that case.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_PLAN_YAMLDOCUMENTS_H
#define MLLM_RUNTIME_PLAN_YAMLDOCUMENTS_H

#include <cstddef>
#include <string>

namespace mllm::runtime {

/// The documents of the YAML stream `text`. Throws YAML::ParserException
/// where a syntax error stops the parser, and where it stops moving: at
/// the character it cannot get past.
size_t countYamlDocuments(const std::string &text);

} // namespace mllm::runtime

#endif // MLLM_RUNTIME_PLAN_YAMLDOCUMENTS_H
