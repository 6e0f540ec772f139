// Experiment files: values, defaults, --set, component parameters checked
// against the plugin's schema, and an error with file:line:column, the key,
// what was expected and a did-you-mean for every kind of mistake.
#include "framework/config/experiment.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace llmsys::config {
namespace {

runtime::PluginRegistry& Registry() {
  static runtime::PluginRegistry* r = [] {
    auto* reg = new runtime::PluginRegistry;
    EXPECT_TRUE(
        reg->AddSearchDir(std::string(LLMSYS_TEST_PLUGIN_DIR) + "/good", "test")
            .ok());
    reg->LoadAll();
    return reg;
  }();
  return *r;
}

// A valid experiment; `extra` is appended.
std::string Valid(const std::string& extra = "") {
  return "[data]\n"
         "train = \"corpus.txt\"\n"
         "[model]\n"
         "use = \"tiny\"\n"
         "width = 8\n"
         "[optimizer]\n"
         "use = \"plain_sgd\"\n"
         "[train]\n"
         "steps = 5\n" +
         extra;
}

absl::StatusOr<Experiment> Parse(const std::string& text,
                                 std::vector<std::string> sets = {}) {
  return Experiment::Parse(text, "x.toml", sets, Registry());
}

void ExpectError(const absl::StatusOr<Experiment>& e,
                 const std::string& expected) {
  ASSERT_FALSE(e.ok()) << "no error; expected: " << expected;
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument)
      << e.status();
  EXPECT_NE(e.status().message().find(expected), std::string::npos)
      << "got: " << e.status().message() << "\nexpected: " << expected;
}

TEST(ExperimentTest, ValuesDefaultsAndComponentParameters) {
  absl::StatusOr<Experiment> e = Parse(Valid("grad_clip = 0\n"));
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->Int("train", "steps"), 5);
  EXPECT_EQ(e->Float("train", "grad_clip"), 0.0);  // an int read as float
  EXPECT_EQ(e->Int("train", "batch_size"), 12);    // default
  EXPECT_TRUE(e->Get("train", "batch_size").is_default);
  EXPECT_EQ(e->Get("train", "steps").source.Describe(), "x.toml:9:9");
  EXPECT_EQ(e->String("data", "tokenizer"), "char");
  EXPECT_EQ(e->Int("experiment", "seed"), 1337);
  ASSERT_NE(e->model(), nullptr);
  EXPECT_EQ(e->model()->id, "tiny");
  EXPECT_EQ(e->optimizer()->id, "plain_sgd");
  auto params = e->ComponentParams("model");
  ASSERT_EQ(params.size(), 1u);
  EXPECT_EQ(params[0].first, "width");
  EXPECT_EQ(std::get<int64_t>(params[0].second), 8);
}

TEST(ExperimentTest, TheResolvedConfigurationReadsBackTheSame) {
  absl::StatusOr<Experiment> e =
      Parse(Valid("[generate]\nprompt = \"ROMEO:\\n\\\"quoted\\\"\"\n"));
  ASSERT_TRUE(e.ok()) << e.status();
  const std::string resolved = e->ResolvedToml();
  EXPECT_NE(resolved.find("steps = 5\n"), std::string::npos) << resolved;
  EXPECT_NE(resolved.find("batch_size = 12  # default"), std::string::npos)
      << resolved;
  absl::StatusOr<Experiment> again = Parse(resolved);
  ASSERT_TRUE(again.ok()) << again.status() << "\n" << resolved;
  EXPECT_EQ(again->String("generate", "prompt"), "ROMEO:\n\"quoted\"");
  EXPECT_EQ(again->Int("model", "width"), 8);
  // Every value now comes from the file: the same text without the marks.
  std::string unmarked = resolved;
  for (size_t at; (at = unmarked.find("  # default")) != std::string::npos;)
    unmarked.erase(at, 11);
  EXPECT_EQ(again->ResolvedToml(), unmarked);
}

TEST(ExperimentTest, SetOverridesAnyKey) {
  absl::StatusOr<Experiment> e =
      Parse(Valid(), {"train.steps=7", "data.train=other corpus.txt",
                      "model.width=16", "schedule.lr=3e-4"});
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->Int("train", "steps"), 7);
  EXPECT_EQ(e->String("data", "train"), "other corpus.txt");
  EXPECT_EQ(e->Int("model", "width"), 16);
  EXPECT_DOUBLE_EQ(e->Float("schedule", "lr"), 3e-4);
  EXPECT_EQ(e->Get("train", "steps").source.Describe(), "--set train.steps=7");
  ExpectError(Parse(Valid(), {"train.stpes=3"}),
              "--set train.stpes=3: [train] unknown key 'stpes' (did you "
              "mean 'steps'?)");
  ExpectError(Parse(Valid(), {"steps=3"}),
              "--set steps=3: expected section.key=value");
  ExpectError(Parse(Valid(), {"trian.steps=3"}),
              "--set trian.steps=3: unknown section [trian] (did you mean "
              "'train'?)");
}

TEST(ExperimentTest, MistakesNameThePlaceTheKeyAndWhatWasExpected) {
  ExpectError(Parse(Valid("stpes = 3\n")),
              "x.toml:10:1: [train] unknown key 'stpes' (did you mean "
              "'steps'?)");
  ExpectError(Parse(Valid("batch_size = \"ten\"\n")),
              "x.toml:10:14: [train] 'batch_size' expects int, got str "
              "\"ten\"");
  ExpectError(Parse(Valid(), {"data.val_fraction=0.9"}),
              "--set data.val_fraction=0.9: [data] 'val_fraction' = 0.9 is out "
              "of range "
              "(expected in [0.0, 0.5])");
  ExpectError(Parse(Valid("[trian]\nsteps = 1\n")),
              "unknown section [trian] (did you mean 'train'?)");
  ExpectError(Parse(Valid("device = \"tpu\"\n")),
              "[train] 'device' = \"tpu\" is not one of cpu|cuda");
  ExpectError(Parse("[data]\ntrain = \"a\"\n"),
              "[model] needs `use = \"...\"` naming the model to use");
  ExpectError(Parse("[data]\ntrain = \"a\"\n[model]\nuse = \"tiny\"\n"
                    "[optimizer]\nuse = \"plain_sgd\"\nsteps = 1\nsteps = 2\n"),
              "x.toml:8:9: Error while parsing key-value pair: cannot "
              "redefine existing integer 'steps'");
}

TEST(ExperimentTest, ComponentKeysAreCheckedAgainstThePluginSchema) {
  const std::string base =
      "[optimizer]\nuse = \"plain_sgd\"\n[data]\ntrain = \"a\"\n[model]\n"
      "use = \"tiny\"\n";
  ExpectError(Parse(base + "widht = 3\n"),
              "x.toml:7:1: [model] unknown key 'widht' (did you mean "
              "'width'?) (keys: use, width; `llmsys plugins describe tiny` "
              "explains tiny's)");
  ExpectError(Parse(base + "width = 0\n"),
              "x.toml:7:9: [model] 'width' = 0 is out of range");
  absl::StatusOr<Experiment> unknown =
      Parse("[data]\ntrain = \"a\"\n[model]\nuse = \"tinny\"\n");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("x.toml:4:7: [model] use = "
                                            "\"tinny\":"),
            std::string::npos)
      << unknown.status();
  EXPECT_NE(unknown.status().message().find("did you mean 'tiny'"),
            std::string::npos)
      << unknown.status();
}

TEST(ExperimentTest, OpsAndPluginPaths) {
  absl::StatusOr<Experiment> e =
      Parse(Valid("[ops]\nattention = \"naive\"\nmatmul = \"matmul.blas\"\n"));
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->ops().at("attention"), "naive");
  EXPECT_EQ(e->ops_sources().at("matmul").Describe(), "x.toml:12:10");
  ExpectError(Parse(Valid("[ops]\natention = \"naive\"\n")),
              "x.toml:11:1: [ops] unknown op 'atention' (did you mean "
              "'attention'?)");
  ExpectError(Parse(Valid("[ops]\nattention = 3\n")),
              "[ops] attention must be an implementation name in quotes");
  absl::StatusOr<Experiment> missing =
      Parse(Valid("[plugins]\npaths = [\"/no/such/folder\"]\n"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/no/such/folder"),
            std::string::npos)
      << missing.status();
  EXPECT_NE(missing.status().message().find("[plugins] paths"),
            std::string::npos)
      << missing.status();
  ExpectError(Parse(Valid("[plugins]\npaths = \"x\"\n")),
              "[plugins] paths must be a list of folder names");
}

TEST(ExperimentTest, AMissingFileIsNamed) {
  absl::StatusOr<Experiment> e =
      Experiment::Load("/no/such/experiment.toml", {}, Registry());
  ASSERT_FALSE(e.ok());
  EXPECT_TRUE(absl::IsNotFound(e.status()));
  EXPECT_NE(e.status().message().find("/no/such/experiment.toml"),
            std::string::npos);
}

}  // namespace
}  // namespace llmsys::config
