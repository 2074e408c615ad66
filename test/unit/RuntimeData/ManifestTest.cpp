//===- ManifestTest.cpp - manifest problems, located and counted ----------===//

#include "TestFiles.h"

#include "mllm/runtime/data/DataSet.h"

#include "llvm/Support/FileSystem.h"

#include "gtest/gtest.h"

#include <sys/stat.h>

using namespace mllm::runtime::data;
using namespace mllm::runtime::data::test;

namespace {

uint8_t grey(int64_t, int64_t, int64_t) { return 100; }

/// A manifest with one problem of each kind the reader finds, and good
/// lines between them. Returns its path.
std::string badManifest(const TempDir &dir) {
  writePng(dir.path("ok.png"), 8, 8, 3, grey);
  dir.write("junk.png", "no image here");
  std::vector<float> longClip = tone(300, 0.5, 16000); // > 0.2 s per item
  writeSound(dir.path("long.wav"), longClip, 16000, 1);
  std::string manifest =
      "{\"text\": \"good one\", \"vision\": \"ok.png\"}\n" // 1
      "{\"text\": \"broken\" \"vision\": 1}\n"             // 2
      "\n"                                                 // 3
      "{\"text\": \"x\", \"video\": [\"ok.png\"]}\n"       // 4
      "{\"text\": \"x\", \"vision\": [\"ok.png\", \"ok.png\", "
      "\"ok.png\"]}\n"                                                // 5
      "{\"text\": \"x\", \"vision\": \"nope.png\"}\n"                 // 6
      "{\"text\": \"x\", \"vision\": \"junk.png\"}\n"                 // 7
      "{\"text\": \"x <vision> <vision>\", \"vision\": \"ok.png\"}\n" // 8
      "{\"vision\": \"ok.png\"}\n"                                    // 9
      "{\"text\": \"" +
      std::string(80, 'z') +
      "\"}\n"                                        // 10
      "{\"text\": \"x\", \"audio\": \"long.wav\"}\n" // 11
      "[1, 2]\n"                                     // 12
      "{\"text\": \"good two\"}\n";                  // 13
  return dir.write("data.jsonl", manifest);
}

} // namespace

TEST(Manifest, SkipsAndCountsEveryKind) {
  MLLM_NEEDS_PNG();
  MLLM_NEEDS_AUDIO();
  TempDir dir;
  std::string path = badManifest(dir);
  DataOptions options;
  options.openThreads = 4; // reported in line order all the same
  auto set = DataSet::open(path, smallGeometry(), options);
  ASSERT_TRUE(static_cast<bool>(set)) << llvm::toString(set.takeError());
  const Problems &p = (*set)->problems();
  EXPECT_EQ((*set)->size(), 2);
  EXPECT_EQ((*set)->sample(0).line, 1);
  EXPECT_EQ((*set)->sample(1).line, 13);
  EXPECT_EQ(p.count(Problem::BadJson), 1);
  EXPECT_EQ(p.count(Problem::UnknownEncoder), 1);
  EXPECT_EQ(p.count(Problem::TooManyItems), 1);
  EXPECT_EQ(p.count(Problem::MissingFile), 1);
  EXPECT_EQ(p.count(Problem::UndecodableMedia), 1);
  EXPECT_EQ(p.count(Problem::BadMarker), 1);
  EXPECT_EQ(p.count(Problem::BadSample), 2); // no text; not an object
  EXPECT_EQ(p.count(Problem::TooLong), 1);
  EXPECT_EQ(p.count(Problem::AudioTooLong), 1);
  EXPECT_EQ(p.total(), 10);
  // Every message names the file and line, in line order.
  const std::vector<std::string> &ex = p.examples();
  ASSERT_EQ(ex.size(), 10u);
  const int lines[] = {2, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  for (size_t i = 0; i < ex.size(); ++i)
    EXPECT_EQ(ex[i].rfind(path + ":" + std::to_string(lines[i]) + ": ", 0), 0u)
        << ex[i];
  EXPECT_NE(ex[1].find("unknown encoder: 'video'"), std::string::npos) << ex[1];
  EXPECT_NE(ex[2].find("3 vision items"), std::string::npos) << ex[2];
  EXPECT_NE(ex[3].find("nope.png' does not exist"), std::string::npos);
  EXPECT_NE(ex[5].find("marker 2"), std::string::npos) << ex[5];
  EXPECT_NE(ex[7].find("too long: 81 tokens"), std::string::npos) << ex[7];
  EXPECT_NE(ex[8].find("audio too long"), std::string::npos) << ex[8];
  EXPECT_EQ(p.summary(), "10 skipped: 1 bad JSON, 2 bad sample, 1 unknown "
                         "encoder, 1 too many items, 1 bad marker, 1 missing "
                         "file, 1 undecodable media, 1 audio too long, 1 too "
                         "long");
}

// A pipe would block the header read forever, a directory is no image,
// and a sample of empty text without items teaches nothing.
TEST(Manifest, NotRegularFilesAndEmptySamplesAreProblems) {
  MLLM_NEEDS_PNG();
  TempDir dir;
  writePng(dir.path("ok.png"), 8, 8, 3, grey);
  ASSERT_EQ(::mkfifo(dir.path("pipe.png").c_str(), 0600), 0);
  ASSERT_FALSE(llvm::sys::fs::create_directory(dir.path("folder.png")));
  std::string path =
      dir.write("data.jsonl", "{\"text\": \"x\", \"vision\": \"pipe.png\"}\n"
                              "{\"text\": \"x\", \"vision\": \"folder.png\"}\n"
                              "{\"text\": \"\"}\n"
                              "{\"text\": \"\", \"vision\": \"ok.png\"}\n");
  auto set = DataSet::open(path, smallGeometry(), DataOptions());
  ASSERT_TRUE(static_cast<bool>(set)) << llvm::toString(set.takeError());
  EXPECT_EQ((*set)->size(), 1);
  const std::vector<std::string> &ex = (*set)->problems().examples();
  ASSERT_EQ(ex.size(), 3u);
  EXPECT_EQ(ex[0], path + ":1: undecodable media: '" + dir.path("pipe.png") +
                       "' is not a regular file");
  EXPECT_EQ(ex[1], path + ":2: undecodable media: '" + dir.path("folder.png") +
                       "' is not a regular file");
  EXPECT_EQ(ex[2],
            path + ":3: bad sample: the sample has no text and no items");
}

// A key given twice: llvm::json keeps the last copy, so a second (empty)
// list of media silently dropped the first. Keys inside strings and nested
// values are not keys of the sample.
TEST(Manifest, AKeyGivenTwiceIsABadSample) {
  MLLM_NEEDS_PNG();
  TempDir dir;
  writePng(dir.path("ok.png"), 8, 8, 3, grey);
  std::string path = dir.write(
      "data.jsonl",
      "{\"text\": \"first\", \"text\": \"second\"}\n"
      "{\"text\": \"x\", \"vision\": [\"ok.png\"], \"vision\": []}\n"
      "{\"text\": \"a\", \"t\\u0065xt\": \"b\"}\n"
      "{\"text\": \"\\\"text\\\": y, vision\", \"vision\": [\"ok.png\"]}\n");
  auto set = DataSet::open(path, smallGeometry(), DataOptions());
  ASSERT_TRUE(static_cast<bool>(set)) << llvm::toString(set.takeError());
  EXPECT_EQ((*set)->size(), 1);
  const std::vector<std::string> &ex = (*set)->problems().examples();
  ASSERT_EQ(ex.size(), 3u);
  EXPECT_EQ(ex[0], path + ":1: bad sample: \"text\" is given twice; JSON "
                          "readers disagree on which copy counts: give it "
                          "once");
  EXPECT_EQ(ex[1], path + ":2: bad sample: \"vision\" is given twice; JSON "
                          "readers disagree on which copy counts: give it "
                          "once");
  // Keys are compared as the parser reads them.
  EXPECT_EQ(ex[2], path + ":3: bad sample: \"text\" is given twice; JSON "
                          "readers disagree on which copy counts: give it "
                          "once");
}

TEST(Manifest, DeeplyNestedJsonIsABadLineNotACrash) {
  // llvm::json::parse recurses per level: 100000 levels overflowed the
  // stack. The reader measures the depth first.
  TempDir dir;
  std::string deep =
      "{\"text\": \"x\", \"vision\": " + std::string(100000, '[') +
      std::string(100000, ']') + "}\n{\"text\": \"fine\"}\n";
  std::string path = dir.write("deep.jsonl", deep);
  auto set = DataSet::open(path, smallGeometry(), DataOptions());
  ASSERT_TRUE(static_cast<bool>(set)) << llvm::toString(set.takeError());
  EXPECT_EQ((*set)->size(), 1);
  EXPECT_EQ((*set)->problems().count(Problem::BadJson), 1);
  ASSERT_EQ((*set)->problems().examples().size(), 1u);
  EXPECT_NE((*set)->problems().examples()[0].find(
                "100001 levels of nested [ and { (at most 32)"),
            std::string::npos)
      << (*set)->problems().examples()[0];
}

TEST(Manifest, StrictStopsAtTheFirstProblem) {
  TempDir dir;
  std::string path = badManifest(dir);
  DataOptions options;
  options.strict = true;
  options.openThreads = 4;
  auto set = DataSet::open(path, smallGeometry(), options);
  ASSERT_FALSE(static_cast<bool>(set));
  std::string message = llvm::toString(set.takeError());
  EXPECT_EQ(message.rfind(path + ":2: bad JSON: ", 0), 0u) << message;
}

TEST(Manifest, StrictAcceptsACleanFileAndResolvesPaths) {
  MLLM_NEEDS_PNG();
  TempDir dir;
  writePng(dir.path("a.png"), 8, 8, 3, grey);
  std::string abs = dir.path("a.png");
  std::string path =
      dir.write("clean.jsonl", "{\"text\": \"one\", \"vision\": \"a.png\"}\n"
                               "{\"text\": \"two\", \"vision\": [\"" +
                                   abs + "\"]}\n");
  DataOptions options;
  options.strict = true;
  auto set = DataSet::open(path, smallGeometry(), options);
  ASSERT_TRUE(static_cast<bool>(set)) << llvm::toString(set.takeError());
  EXPECT_EQ((*set)->size(), 2);
  EXPECT_EQ((*set)->sample(0).media[0][0], abs);
  EXPECT_EQ((*set)->sample(1).media[0][0], abs);
}

// Saved by an editor that starts UTF-8 files with a byte-order mark: the
// first line was bad JSON.
TEST(Manifest, AByteOrderMarkIsNotPartOfTheFirstLine) {
  TempDir dir;
  std::string path = dir.write("bom.jsonl", "\xEF\xBB\xBF{\"text\": \"one\"}\n"
                                            "{\"text\": \"two\"}\n");
  DataOptions options;
  options.strict = true;
  auto set = DataSet::open(path, smallGeometry(), options);
  ASSERT_TRUE(static_cast<bool>(set)) << llvm::toString(set.takeError());
  EXPECT_EQ((*set)->size(), 2);
  EXPECT_EQ((*set)->sample(0).line, 1);
}

TEST(Manifest, NothingUsableIsAnError) {
  TempDir dir;
  std::string path = dir.write("none.jsonl", "{\"text\": 3}\n");
  auto set = DataSet::open(path, smallGeometry(), DataOptions{});
  ASSERT_FALSE(static_cast<bool>(set));
  std::string error = llvm::toString(set.takeError());
  EXPECT_NE(error.find("no usable sample (1 "), std::string::npos);
  // ... and which line, with what is wrong with it.
  EXPECT_NE(error.find("\n  " + path + ":1: "), std::string::npos) << error;
  auto missing =
      DataSet::open(dir.path("absent.jsonl"), smallGeometry(), DataOptions{});
  ASSERT_FALSE(static_cast<bool>(missing));
  EXPECT_NE(llvm::toString(missing.takeError()).find("cannot read manifest"),
            std::string::npos);
}
