// The registry: search path, duplicates, conflicts, lookups with hints.
#include "framework/runtime/registry.h"

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "gtest/gtest.h"

namespace llmsys::runtime {
namespace {

namespace fs = std::filesystem;

fs::path Dir(const std::string& name) {
  return fs::path(LLMSYS_TEST_PLUGIN_DIR) / name;
}

std::string Message(const absl::Status& s) { return std::string(s.message()); }

TEST(RegistryTest, MissingDirectoryIsAnErrorNamingItsOrigin) {
  PluginRegistry r;
  absl::Status s = r.AddSearchDir("/no/such/plugins", "--plugin-dir");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(
      Message(s),
      "plugin directory '/no/such/plugins' (from --plugin-dir) does not exist");
  s = r.AddSearchDir(Dir("good") / "good.so", "[plugins] paths");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(Message(s).find("is not a directory"), std::string::npos);
}

TEST(RegistryTest, LoadsAndFindsComponentsWithHints) {
  PluginRegistry r;
  ASSERT_TRUE(r.AddSearchDir(Dir("good"), "test").ok());
  ASSERT_TRUE(r.AddSearchDir(Dir("pure_c"), "test").ok());
  r.LoadAll();
  EXPECT_TRUE(r.rejected().empty());
  EXPECT_EQ(r.plugins().size(), 2u);
  absl::StatusOr<const Component*> c = r.Find(LLMSYS_KIND_OPTIMIZER, "c_sgd");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->plugin->id(), "test.pure_c");

  absl::StatusOr<const Component*> missing =
      r.Find(LLMSYS_KIND_OPTIMIZER, "c_sdg");
  ASSERT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  std::string m = Message(missing.status());
  EXPECT_NE(
      m.find("no plugin provides optimizer 'c_sdg' (did you mean 'c_sgd'?)"),
      std::string::npos)
      << m;
  EXPECT_NE(m.find("available: c_sgd, plain_sgd"), std::string::npos) << m;
  EXPECT_NE(m.find(Dir("good").string()), std::string::npos) << m;

  EXPECT_EQ(r.FindAnyKind("seven").size(), 1u);
  EXPECT_NE(r.FindOpContract("scale"), nullptr);
  EXPECT_NE(r.FindOpContract("matmul"), nullptr);
  EXPECT_EQ(r.FindOpContract("mystery"), nullptr);
  EXPECT_TRUE(r.UnknownContracts().empty());
  // Sorted by kind, then id.
  std::vector<const Component*> all = r.Components();
  ASSERT_EQ(all.size(), 6u);
  EXPECT_EQ(all[0]->kind, static_cast<llmsys_kind_t>(LLMSYS_KIND_OPERATOR));
  EXPECT_EQ(all[1]->id, "c_sgd");
  EXPECT_EQ(all[2]->id, "plain_sgd");
}

TEST(RegistryTest, RejectedFilesAreRecordedAndTheRestLoads) {
  PluginRegistry r;
  for (const char* d : {"not_a_library", "abi_major2", "good", "no_entry"})
    ASSERT_TRUE(r.AddSearchDir(Dir(d), "test").ok());
  r.LoadAll();
  EXPECT_EQ(r.plugins().size(), 1u);
  ASSERT_EQ(r.rejected().size(), 3u);
  EXPECT_NE(r.rejected()[0].reason.find("no ELF header"), std::string::npos);
  EXPECT_NE(r.rejected()[1].reason.find("ABI 2.0"), std::string::npos);
  EXPECT_NE(r.rejected()[2].reason.find("entry symbol"), std::string::npos);
}

TEST(RegistryTest, SameFileTwiceLoadsOnce) {
  PluginRegistry r;
  ASSERT_TRUE(r.AddSearchDir(Dir("good"), "a").ok());
  ASSERT_TRUE(r.AddSearchDir(Dir("good") / ".." / "good", "b").ok());
  r.LoadAll();
  EXPECT_EQ(r.plugins().size(), 1u);
  EXPECT_TRUE(r.rejected().empty());
}

// Two registries that load one file share its Plugin (one dlopen, one
// init): the second registry's load must not deinit the first's, and the
// plugin lives on while either holds it.
TEST(RegistryTest, TwoRegistriesShareOneInstanceOfAFile) {
  auto first = std::make_unique<PluginRegistry>();
  ASSERT_TRUE(first->AddSearchDir(Dir("good"), "a").ok());
  first->LoadAll();
  ASSERT_EQ(first->plugins().size(), 1u);
  PluginRegistry second;
  ASSERT_TRUE(second.AddSearchDir(Dir("good"), "b").ok());
  second.LoadAll();
  ASSERT_EQ(second.plugins().size(), 1u);
  EXPECT_EQ(first->plugins()[0].get(), second.plugins()[0].get());
  const std::string id = second.plugins()[0]->id();
  first.reset();  // the second's components stay usable
  EXPECT_EQ(second.plugins()[0]->id(), id);
  EXPECT_FALSE(second.Components().empty());
}

TEST(RegistryTest, SamePluginIdInTwoFilesNamesBoth) {
  fs::path tmp = fs::temp_directory_path() /
                 ("llmsys_registry_test_" + std::to_string(getpid()));
  fs::create_directories(tmp);
  fs::copy_file(Dir("good") / "good.so", tmp / "good_copy.so",
                fs::copy_options::overwrite_existing);
  PluginRegistry r;
  ASSERT_TRUE(r.AddSearchDir(Dir("good"), "a").ok());
  ASSERT_TRUE(r.AddSearchDir(tmp, "b").ok());
  r.LoadAll();
  EXPECT_EQ(r.plugins().size(), 1u);
  ASSERT_EQ(r.rejected().size(), 1u);
  const std::string& reason = r.rejected()[0].reason;
  EXPECT_NE(reason.find((tmp / "good_copy.so").string()), std::string::npos)
      << reason;
  EXPECT_NE(reason.find("plugin id 'test.good' is already provided by " +
                        (Dir("good") / "good.so").string()),
            std::string::npos)
      << reason;
  fs::remove_all(tmp);
}

TEST(RegistryTest, DuplicateComponentIdsAreAConflictUnlessPreferred) {
  PluginRegistry r;
  ASSERT_TRUE(r.AddSearchDir(Dir("dup_a"), "test").ok());
  ASSERT_TRUE(r.AddSearchDir(Dir("dup_b"), "test").ok());
  r.LoadAll();
  ASSERT_EQ(r.plugins().size(), 2u);
  std::vector<Conflict> conflicts = r.Conflicts();
  ASSERT_EQ(conflicts.size(), 1u);
  EXPECT_EQ(conflicts[0].id, "dup");
  EXPECT_EQ(conflicts[0].providers.size(), 2u);

  absl::StatusOr<const Component*> c = r.Find(LLMSYS_KIND_OPTIMIZER, "dup");
  ASSERT_EQ(c.status().code(), absl::StatusCode::kFailedPrecondition);
  const std::string a = (Dir("dup_a") / "dup_a.so").string();
  const std::string b = (Dir("dup_b") / "dup_b.so").string();
  EXPECT_EQ(Message(c.status()),
            "optimizer 'dup' is provided by several plugins: " + a + " and " +
                b +
                "; remove one, or say in the experiment which "
                "file to use");
  r.Prefer(LLMSYS_KIND_OPTIMIZER, "dup", b);
  c = r.Find(LLMSYS_KIND_OPTIMIZER, "dup");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->plugin->id(), "test.dup_b");
}

TEST(RegistryTest, OperatorForAnUndeclaredContractIsReported) {
  PluginRegistry r;
  ASSERT_TRUE(r.AddSearchDir(Dir("unknown_op"), "test").ok());
  r.LoadAll();
  auto unknown = r.UnknownContracts();
  ASSERT_EQ(unknown.size(), 1u);
  EXPECT_EQ(unknown[0].first->id, "mystery.naive");
  EXPECT_NE(unknown[0].second.find(
                "implements op 'mystery', which is not a standard op"),
            std::string::npos)
      << unknown[0].second;
}

TEST(RegistryTest, PluginPathVariable) {
  const std::string good = Dir("good").string();
  ASSERT_EQ(setenv("LLMSYS_PLUGIN_PATH",
                   (good + "::" + Dir("pure_c").string()).c_str(), 1),
            0);
  PluginRegistry r;
  ASSERT_TRUE(r.AddDefaultSearchDirs().ok());
  size_t from_env = 0;
  for (const SearchDir& d : r.search_path())
    from_env += d.origin == "LLMSYS_PLUGIN_PATH";
  EXPECT_EQ(from_env, 2u);

  ASSERT_EQ(setenv("LLMSYS_PLUGIN_PATH", "/no/such/dir", 1), 0);
  PluginRegistry bad;
  absl::Status s = bad.AddDefaultSearchDirs();
  EXPECT_EQ(Message(s),
            "plugin directory '/no/such/dir' (from LLMSYS_PLUGIN_PATH) does "
            "not exist");
  unsetenv("LLMSYS_PLUGIN_PATH");
}

TEST(RegistryTest, BuiltinDirIsBesideTheExecutable) {
  fs::path dir = BuiltinPluginDir();
  EXPECT_EQ(dir.filename(), "plugins");
  EXPECT_EQ(dir.parent_path().filename(), "llmsys");
}

}  // namespace
}  // namespace llmsys::runtime
