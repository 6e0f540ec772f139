// The variants of `llmsys compare`: [[variants]] entries as the experiment
// loader reads and checks them (and `llmsys run` ignores them), --vary
// arguments, their cross product and its names, and a component swapped by
// --set leaving the old one's parameters behind.
#include "framework/report/variants.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "framework/config/experiment.h"

namespace llmsys::report {
namespace {

using config::Experiment;

runtime::PluginRegistry& Registry() {
  static runtime::PluginRegistry* r = [] {
    auto* reg = new runtime::PluginRegistry;
    EXPECT_TRUE(reg->AddSearchDir(LLMSYS_BUILTIN_PLUGIN_DIR, "test").ok());
    reg->LoadAll();
    return reg;
  }();
  return *r;
}

// A valid experiment (gpt, adamw) of 10 lines; `extra` is appended to its
// [optimizer] section.
std::string Valid(const std::string& extra = "") {
  return "[data]\ntrain = \"corpus.txt\"\n"
         "[model]\nuse = \"gpt\"\nn_layer = 1\n"
         "[train]\nsteps = 5\n"
         "[optimizer]\nuse = \"adamw\"\nbeta2 = 0.95\n" +
         extra;
}

absl::StatusOr<Experiment> Parse(const std::string& text,
                                 std::vector<std::string> sets = {}) {
  return Experiment::Parse(text, "x.toml", sets, Registry());
}

void ExpectError(const absl::StatusOr<Experiment>& e,
                 const std::string& expected) {
  ASSERT_FALSE(e.ok()) << "no error; expected: " << expected;
  EXPECT_NE(e.status().message().find(expected), std::string::npos)
      << "got: " << e.status().message() << "\nexpected: " << expected;
}

TEST(VariantsTest, EntriesAreReadInFileOrderWithTheirKeysAsTomlText) {
  absl::StatusOr<Experiment> e =
      Parse(Valid("[[variants]]\nname = \"base\"\n"
                  "[[variants]]\nname = \"sgd\"\noptimizer.use = \"sgd\"\n"
                  "optimizer.momentum = 0.9\n"
                  "[[variants]]\nname = \"big\"\n\"model.n_layer\" = 2\n"
                  "schedule.lr = 2.0\ngenerate.stop = [\"\\n\\n\"]\n"
                  "\"ops.attention\" = \"naive\"\n"));
  ASSERT_TRUE(e.ok()) << e.status();
  const std::vector<config::Variant>& v = e->variants();
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0].name, "base");
  EXPECT_TRUE(v[0].sets.empty());
  EXPECT_EQ(v[0].source.Describe(), "x.toml:12:8");
  EXPECT_EQ(v[1].name, "sgd");
  using Sets = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(v[1].sets, (Sets{{"optimizer.momentum", "0.9"},
                             {"optimizer.use", "\"sgd\""}}));
  EXPECT_EQ(v[2].sets, (Sets{{"generate.stop", "[\"\\n\\n\"]"},
                             {"model.n_layer", "2"},
                             {"ops.attention", "\"naive\""},
                             {"schedule.lr", "2.0"}}));
  // `llmsys run` ignores them: the run is the file's.
  EXPECT_EQ(e->Int("model", "n_layer"), 1);
  EXPECT_EQ(e->ResolvedToml().find("variants"), std::string::npos);
}

TEST(VariantsTest, AVariantsSetsGiveItsConfigurationThroughSet) {
  absl::StatusOr<Experiment> e = Parse(Valid(
      "[[variants]]\nname = \"big\"\nmodel.n_layer = 3\nschedule.lr = 2.0\n"
      "generate.stop = [\"a\", \"b\"]\n\"ops.attention\" = \"naive\"\n"
      "[[variants]]\nname = \"sgd\"\noptimizer.use = \"sgd\"\n"
      "optimizer.momentum = 0.5\n"));
  ASSERT_TRUE(e.ok()) << e.status();
  std::vector<std::string> big, sgd;
  for (const auto& [k, v] : e->variants()[0].sets) big.push_back(k + "=" + v);
  for (const auto& [k, v] : e->variants()[1].sets) sgd.push_back(k + "=" + v);
  absl::StatusOr<Experiment> b = Parse(Valid(), big);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->Int("model", "n_layer"), 3);
  EXPECT_DOUBLE_EQ(b->Float("schedule", "lr"), 2.0);
  EXPECT_EQ(b->Strings("generate", "stop"),
            (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(b->ops().at("attention"), "naive");
  // sgd takes no beta2: the file's adamw parameter is left out, not an error.
  absl::StatusOr<Experiment> s = Parse(Valid(), sgd);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->optimizer()->id, "sgd");
  EXPECT_DOUBLE_EQ(s->Float("optimizer", "momentum"), 0.5);
  EXPECT_FALSE(s->Has("optimizer", "beta2"));
}

TEST(VariantsTest, ASwapBySetLeavesOnlyTheOldComponentsParametersOut) {
  // The same through --set on the command line.
  absl::StatusOr<Experiment> s = Parse(Valid(), {"optimizer.use=sgd"});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->Has("optimizer", "beta2"));
  // A key of no component is still an error; so is an old parameter given
  // by --set, and any key when nothing was swapped.
  ExpectError(Parse(Valid("betaa2 = 1\n"), {"optimizer.use=sgd"}),
              "x.toml:11:1: [optimizer] unknown key 'betaa2'");
  ExpectError(Parse(Valid(), {"optimizer.use=sgd", "optimizer.beta1=0.5"}),
              "--set optimizer.beta1=0.5: [optimizer] unknown key 'beta1'");
  ExpectError(Parse(Valid("momentum = 0.5\n")),
              "x.toml:11:1: [optimizer] unknown key 'momentum'");
}

TEST(VariantsTest, BadEntriesAreErrorsNamingTheVariantAndKey) {
  const std::pair<std::string, std::string> cases[] = {
      {"[[variants]]\noptimizer.use = \"sgd\"\n",
       "x.toml:11:1: [[variants]] #1 needs name = \"...\""},
      {"[[variants]]\nname = 3\n", "x.toml:12:8: [[variants]] #1 needs name"},
      {"[[variants]]\nname = \"a\"\n[[variants]]\nname = \"a\"\n",
       "x.toml:14:8: [[variants]] name \"a\" is used twice (also at "
       "x.toml:12:8)"},
      {"[[variants]]\nname = \"a/b\"\n",
       "[[variants]] #1 name \"a/b\": it names a folder"},
      {"[[variants]]\nname = \"..\"\n", "name \"..\": it names a folder"},
      {"[[variants]]\nname = \"a\"\noptimizer.beta22 = 0.9\n",
       "x.toml:13:20: [[variants]] 'a': unknown key 'optimizer.beta22' (did "
       "you mean 'beta2'?)"},
      {"[[variants]]\nname = \"a\"\n\"trian.steps\" = 9\n",
       "[[variants]] 'a': unknown section 'trian' in 'trian.steps' (did you "
       "mean 'train'?)"},
      {"[[variants]]\nname = \"a\"\nsteps = 9\n",
       "[[variants]] 'a': 'steps' is not section.key"},
      {"[[variants]]\nname = \"a\"\ntrain.steps = 0\n",
       "[[variants]] 'a': train.steps: 'steps' = 0 is out of range"},
      {"[[variants]]\nname = \"a\"\ntrain.steps = \"many\"\n",
       "[[variants]] 'a': train.steps: 'steps' expects int"},
      {"[[variants]]\nname = \"a\"\noptimizer.use = \"lino\"\n",
       "[[variants]] 'a': optimizer.use = \"lino\": no plugin provides "
       "optimizer 'lino' (did you mean 'lion'?)"},
      // The keys of the component the variant names, not the file's.
      {"[[variants]]\nname = \"a\"\noptimizer.momentum = 0.9\n",
       "[[variants]] 'a': unknown key 'optimizer.momentum'"},
      {"[[variants]]\nname = \"a\"\noptimizer.use = \"sgd\"\n"
       "optimizer.beta2 = 0.9\n",
       "[[variants]] 'a': unknown key 'optimizer.beta2'"},
      {"[[variants]]\nname = \"a\"\n\"ops.atention\" = \"naive\"\n",
       "[[variants]] 'a': [ops] unknown op 'atention' in 'ops.atention' (did "
       "you mean 'attention'?)"},
      {"[[variants]]\nname = \"a\"\nexperiment.seed = 3\n",
       "[[variants]] 'a': experiment.seed: [experiment] keys are not varied"},
      {"[[variants]]\nname = \"a\"\nevaluate.use = \"bleu\"\n",
       "evaluate.use: [[evaluate]] entries are not varied"},
      {"[variants]\nname = \"a\"\n",
       "x.toml:11:1: 'variants' must be a list of entries, each written "
       "[[variants]]"},
      {"[[variant]]\nname = \"a\"\n",
       "unknown section [variant] (did you mean 'variants'?)"},
  };
  for (const auto& [text, expected] : cases) {
    SCOPED_TRACE(text);
    ExpectError(Parse(Valid(text)), expected);
  }
}

TEST(VariantsTest, VaryArgumentsSplitAtTopLevelCommas) {
  absl::StatusOr<std::vector<VaryAxis>> axes = ParseVary(
      {"optimizer.use=adamw, lion", "model.sizes=[1,2],[3]", "a.b=\"x,y\",z"});
  ASSERT_TRUE(axes.ok()) << axes.status();
  ASSERT_EQ(axes->size(), 3u);
  EXPECT_EQ((*axes)[0].key, "optimizer.use");
  EXPECT_EQ((*axes)[0].values, (std::vector<std::string>{"adamw", "lion"}));
  EXPECT_EQ((*axes)[1].values, (std::vector<std::string>{"[1,2]", "[3]"}));
  EXPECT_EQ((*axes)[2].values, (std::vector<std::string>{"\"x,y\"", "z"}));
  const std::pair<std::string, std::string> bad[] = {
      {"optimizer.use", "--vary optimizer.use: expected section.key=value1"},
      {"use=a,b", "'use' is not section.key"},
      {"a.b.c=1", "'a.b.c' is not section.key"},
      {".b=1", "'.b' is not section.key"},
      {"optimizer.use=", "--vary optimizer.use=: an empty value"},
      {"optimizer.use=a,,b", "an empty value"},
      {"optimizer.use=a,b,a", "the value 'a' is listed twice"},
      {"experiment.seed=1,2", "[experiment] keys are not varied"},
      {"plugins.paths=a", "[plugins] is not varied"},
  };
  for (const auto& [arg, expected] : bad) {
    absl::StatusOr<std::vector<VaryAxis>> r = ParseVary({arg});
    ASSERT_FALSE(r.ok()) << arg;
    EXPECT_NE(r.status().message().find(expected), std::string::npos)
        << r.status().message();
  }
  absl::StatusOr<std::vector<VaryAxis>> twice =
      ParseVary({"train.steps=1,2", "train.steps=3"});
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.status().message().find("train.steps is varied twice"),
            std::string::npos);
}

TEST(VariantsTest, TheCrossProductIsNamedByItsValues) {
  absl::StatusOr<std::vector<VaryAxis>> axes =
      ParseVary({"ops.attention=naive,\"blas\"", "schedule.lr=1e-3,0.003"});
  ASSERT_TRUE(axes.ok());
  absl::StatusOr<std::vector<VariantSpec>> v = CrossVariants({}, *axes);
  ASSERT_TRUE(v.ok()) << v.status();
  std::vector<std::string> names;
  for (const VariantSpec& s : *v) names.push_back(s.name);
  EXPECT_EQ(names, (std::vector<std::string>{"naive+lr=1e-3", "naive+lr=0.003",
                                             "blas+lr=1e-3", "blas+lr=0.003"}));
  EXPECT_EQ((*v)[3].SetArgs(),
            (std::vector<std::string>{"ops.attention=\"blas\"",
                                      "schedule.lr=0.003"}));
  EXPECT_EQ((*v)[3].sets[1].origin, "--vary schedule.lr");

  // [[variants]] entries are one more axis, outermost.
  config::Variant fast{"fast", {}, {{"train.steps", "10"}}};
  config::Variant slow{"slow", {}, {{"train.steps", "20"}}};
  v = CrossVariants({fast, slow}, {{"optimizer.use", {"sgd", "lion"}}});
  ASSERT_TRUE(v.ok()) << v.status();
  names.clear();
  for (const VariantSpec& s : *v) names.push_back(s.name);
  EXPECT_EQ(names, (std::vector<std::string>{"fast+sgd", "fast+lion",
                                             "slow+sgd", "slow+lion"}));
  EXPECT_EQ((*v)[2].SetArgs(),
            (std::vector<std::string>{"train.steps=20", "optimizer.use=sgd"}));
  // Characters that cannot name a folder become '_'.
  v = CrossVariants({}, {{"data.train", {"a/b.txt", "c d"}}});
  ASSERT_TRUE(v.ok());
  EXPECT_EQ((*v)[0].name, "a_b.txt");
  EXPECT_EQ((*v)[1].name, "c_d");
}

TEST(VariantsTest, CrossingErrors) {
  absl::StatusOr<std::vector<VariantSpec>> none = CrossVariants({}, {});
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("no variants: add [[variants]]"),
            std::string::npos);
  EXPECT_NE(none.status().message().find("--vary"), std::string::npos);
  config::Variant lion{"lion", {}, {{"optimizer.use", "\"lion\""}}};
  absl::StatusOr<std::vector<VariantSpec>> both =
      CrossVariants({lion}, {{"optimizer.use", {"sgd"}}});
  ASSERT_FALSE(both.ok());
  EXPECT_NE(
      both.status().message().find("--vary optimizer.use: [[variants]] 'lion'"),
      std::string::npos)
      << both.status().message();
  absl::StatusOr<std::vector<VariantSpec>> same =
      CrossVariants({}, {{"data.train", {"a b", "a_b"}}});
  ASSERT_FALSE(same.ok());
  EXPECT_NE(same.status().message().find("both named 'a_b'"), std::string::npos)
      << same.status().message();
}

}  // namespace
}  // namespace llmsys::report
