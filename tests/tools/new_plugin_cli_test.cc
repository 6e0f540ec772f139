// `llmsys new-plugin` end to end through the built command: the files of a
// scaffold of every kind, filled in (no placeholder left), and every way
// the options can be wrong. Building the scaffolds out of tree against an
// installed llmsys is out_of_tree_plugins_test.sh's job.
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "llmsys/version.h"
#include "tests/tools/cli_test_util.h"

namespace llmsys::cli_test {
namespace {

namespace fs = std::filesystem;

std::string Read(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A fresh, absent folder under the test's temporary directory.
fs::path FreshDir(const std::string& name) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("new_plugin_" + name);
  fs::remove_all(dir);
  return dir;
}

TEST(NewPluginCliTest, HelpNamesTheKindsAndTheOpTemplates) {
  Result r = RunLlmsys("new-plugin --help");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Contains(r.out, "--kind KIND --name NAME")) << r.out;
  EXPECT_TRUE(Contains(r.out,
                       "operator, model, optimizer, sampler or "
                       "evaluator"))
      << r.out;
  EXPECT_TRUE(Contains(r.out, "relu, gelu, attention")) << r.out;
}

struct Scaffold {
  std::string args;       // after "new-plugin"
  std::string name;       // NAME
  std::string component;  // the component id
  std::string swap;       // the experiment's line that swaps it in
};

// Every kind (and every op with a template) writes the same set of files,
// filled in for it.
TEST(NewPluginCliTest, WritesAFilledInScaffoldOfEveryKind) {
  const std::vector<Scaffold> cases = {
      {"--kind operator --name np_relu", "np_relu", "relu.np_relu",
       "relu = \"np_relu\""},
      {"--kind operator --name np_gelu --op gelu", "np_gelu", "gelu.np_gelu",
       "gelu = \"np_gelu\""},
      {"--kind operator --name np_attn --op attention", "np_attn",
       "attention.np_attn", "attention = \"np_attn\""},
      {"--kind optimizer --name np_sgd", "np_sgd", "np_sgd",
       "use = \"np_sgd\""},
      {"--kind sampler --name np_topk", "np_topk", "np_topk",
       "sampler = \"np_topk\""},
      {"--kind evaluator --name np_em", "np_em", "np_em", "use = \"np_em\""},
      {"--kind model --name np_lm", "np_lm", "np_lm", "use = \"np_lm\""},
  };
  const std::regex placeholder("@[A-Z_]+@");
  for (const Scaffold& c : cases) {
    SCOPED_TRACE(c.args);
    const fs::path dir = FreshDir(c.name);
    Result r = RunLlmsys("new-plugin " + c.args + " " + dir.string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(Contains(r.out, "'" + c.component + "' in plugin 'local." +
                                    c.name + "' (" + c.name + ".so)"))
        << r.out;
    for (const std::string& file : std::vector<std::string>{
             "CMakeLists.txt", c.name + ".cc", "experiment.toml", "README.md",
             "tests/run_experiment.cmake", "data/tiny.txt", ".gitignore"}) {
      ASSERT_TRUE(fs::is_regular_file(dir / file)) << file;
      EXPECT_FALSE(std::regex_search(Read(dir / file), placeholder)) << file;
    }
    const std::string cmake = Read(dir / "CMakeLists.txt");
    EXPECT_TRUE(Contains(cmake, std::string("find_package(llmsys ") +
                                    LLMSYS_ABI_VERSION_STRING + " REQUIRED)"))
        << cmake;
    EXPECT_TRUE(Contains(
        cmake, "llmsys_add_plugin(" + c.name + " SOURCES " + c.name + ".cc)"))
        << cmake;
    EXPECT_TRUE(Contains(cmake, "llmsys_add_plugin_test(" + c.name +
                                    "_check PLUGIN " + c.name + ")"))
        << cmake;
    const std::string source = Read(dir / (c.name + ".cc"));
    EXPECT_TRUE(Contains(source, "kPluginId[] = \"local." + c.name + "\""));
    EXPECT_TRUE(Contains(source, "kId[] = \"" + c.component + "\""));
    const std::string experiment = Read(dir / "experiment.toml");
    EXPECT_TRUE(Contains(experiment, c.swap + "        # <- yours"))
        << experiment;
    EXPECT_TRUE(Contains(Read(dir / "README.md"), c.swap)) << c.swap;
    EXPECT_GT(fs::file_size(dir / "data/tiny.txt"), 4000u);
  }
}

TEST(NewPluginCliTest, RefusesANonEmptyFolderUnlessForced) {
  const fs::path dir = FreshDir("nonempty");
  fs::create_directories(dir);
  std::ofstream(dir / "notes.txt") << "mine\n";
  const std::string args = "new-plugin --kind sampler --name np_keep ";
  Result r = RunLlmsys(args + dir.string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(Contains(r.err, dir.string() + " is not empty")) << r.err;
  EXPECT_TRUE(Contains(r.err, "--force")) << r.err;
  EXPECT_FALSE(fs::exists(dir / "CMakeLists.txt"));

  r = RunLlmsys(args + "--force " + dir.string());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir / "np_keep.cc"));
  EXPECT_EQ(Read(dir / "notes.txt"), "mine\n");  // other files are kept

  const fs::path file = FreshDir("a_file");
  std::ofstream(file) << "x";
  r = RunLlmsys(args + file.string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(Contains(r.err, "exists and is not a folder")) << r.err;
}

TEST(NewPluginCliTest, BadOptionsSayWhatIsExpected) {
  const std::string dir = FreshDir("bad").string();
  struct Bad {
    std::string args;
    std::string message;
  };
  const std::vector<Bad> cases = {
      {"--name x " + dir, "--kind is required"},
      {"--kind operatr --name x " + dir,
       "unknown --kind 'operatr' (did you mean 'operator'?)"},
      {"--kind model " + dir, "--name is required"},
      {"--kind model --name My-Model " + dir,
       "--name 'My-Model' is not a plugin name"},
      {"--kind operator --name x --op atention " + dir,
       "--op 'atention' is not an op contract this host knows (did you mean "
       "'attention'?); the standard ops are matmul, add"},
      {"--kind operator --name x --op softmax " + dir,
       "no template for op 'softmax'; it has templates for relu, gelu, "
       "attention"},
      {"--kind optimizer --name x --op relu " + dir,
       "--op goes with --kind operator"},
      {"--kind model --name x --plugin-id Team.X " + dir,
       "--plugin-id 'Team.X' is not a plugin id"},
      {"--kind model --name x", "the folder to write is required"},
      {"--kind optimizer --name sgd " + dir,
       "a built-in plugin already provides optimizer 'sgd' (in "},
      {"--kind model --name x --colour red " + dir,
       "unrecognised option '--colour'"},
  };
  for (const Bad& c : cases) {
    Result r = RunLlmsys("new-plugin " + c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args;
    EXPECT_TRUE(Contains(r.err, c.message)) << c.args << "\n" << r.err;
  }
  EXPECT_FALSE(fs::exists(dir));  // nothing written
}

}  // namespace
}  // namespace llmsys::cli_test
