#include "framework/runtime/param_schema.h"

#include <cstring>

#include "gtest/gtest.h"
#include "llmsys/sdk.hpp"

namespace llmsys::runtime {
namespace {

using sdk::ParamSpec;

absl::StatusOr<ParamSchema> Read(std::vector<ParamSpec> specs) {
  std::vector<const llmsys_param_spec_t*> ptrs;
  for (ParamSpec& s : specs) ptrs.push_back(s.Get());
  return ReadParamSchema(ptrs.data(), static_cast<uint32_t>(ptrs.size()));
}

std::string ErrorOf(std::vector<ParamSpec> specs) {
  absl::StatusOr<ParamSchema> s = Read(std::move(specs));
  if (s.ok()) return "(ok)";
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(s.status().message());
}

TEST(ParamSchemaTest, ReadsEveryType) {
  absl::StatusOr<ParamSchema> s =
      Read({ParamSpec::Bool("nesterov", true, "use Nesterov momentum"),
            ParamSpec::Int("k", 50, "keep the k best").Min(1),
            ParamSpec::Float("p", 0.9, "nucleus mass").Range(0, 1),
            ParamSpec::String("tokenize", "13a", "tokenizer")
                .Choices("13a|none|intl"),
            ParamSpec::IntList("dims", {1, 2}, "dims"),
            ParamSpec::FloatList("betas", {0.9, 0.999}, "betas").Range(0, 1),
            ParamSpec::Required("vocab", LLMSYS_TYPE_INT, "vocabulary size")});
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->size(), 7u);
  EXPECT_EQ(std::get<bool>(*(*s)[0].default_value), true);
  EXPECT_EQ(FormatParamValue(*(*s)[1].default_value), "50");
  EXPECT_EQ(FormatConstraint((*s)[1]), ">= 1");
  EXPECT_EQ(FormatParamValue(*(*s)[2].default_value), "0.9");
  EXPECT_EQ(FormatConstraint((*s)[2]), "in [0.0, 1.0]");
  EXPECT_EQ(FormatParamValue(*(*s)[3].default_value), "\"13a\"");
  EXPECT_EQ(FormatConstraint((*s)[3]), "one of 13a|none|intl");
  EXPECT_EQ(FormatParamValue(*(*s)[4].default_value), "[1, 2]");
  EXPECT_EQ(FormatParamValue(*(*s)[5].default_value), "[0.9, 0.999]");
  EXPECT_TRUE((*s)[6].required);
  EXPECT_FALSE((*s)[6].default_value.has_value());
}

TEST(ParamSchemaTest, MalformedSchemasAreRefusedWithTheRuleBroken) {
  EXPECT_NE(ErrorOf({ParamSpec::Float("lr", 5.0, "learning rate").Range(0, 1)})
                .find("parameter 'lr': default 5.0 is outside its range (in "
                      "[0.0, 1.0])"),
            std::string::npos);
  EXPECT_NE(ErrorOf({ParamSpec::Int("Bad-Name", 1, "doc")})
                .find("'Bad-Name' is not of the form"),
            std::string::npos);
  EXPECT_NE(ErrorOf({ParamSpec::Int("n", 1, "")})
                .find("parameter 'n': has no doc string"),
            std::string::npos);
  EXPECT_NE(ErrorOf({ParamSpec::Int("n", 1, "doc").Range(3, 2)})
                .find("min 3.0 > max 2.0"),
            std::string::npos);
  EXPECT_NE(ErrorOf({ParamSpec::String("s", "x", "doc").Choices("a|b")})
                .find("default \"x\" is not among its choices a|b"),
            std::string::npos);
  EXPECT_NE(ErrorOf({ParamSpec::Bool("b", true, "doc").Min(0)})
                .find("a range is given for a bool"),
            std::string::npos);
  EXPECT_NE(
      ErrorOf({ParamSpec::Int("a", 1, "doc"), ParamSpec::Int("a", 2, "doc")})
          .find("'a' is declared twice"),
      std::string::npos);
  EXPECT_NE(ErrorOf({ParamSpec::IntList("l", {1, 9}, "doc").Max(5)})
                .find("outside its range"),
            std::string::npos);
}

TEST(ParamSchemaTest, RawCDeclarationErrors) {
  llmsys_param_spec_t spec{};
  spec.struct_size = sizeof(spec);
  spec.name = "lr";
  spec.type = LLMSYS_TYPE_FLOAT;
  spec.doc = "learning rate";
  spec.default_value.type = LLMSYS_TYPE_INT;  // mismatched default
  const llmsys_param_spec_t* ptr = &spec;
  absl::StatusOr<ParamSchema> s = ReadParamSchema(&ptr, 1);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(std::string(s.status().message())
                .find("its default has type int, not float"),
            std::string::npos);

  spec.default_value.type = LLMSYS_TYPE_FLOAT;
  spec.struct_size = 8;
  s = ReadParamSchema(&ptr, 1);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(std::string(s.status().message()).find("struct_size 8 is smaller"),
            std::string::npos);

  spec.struct_size = sizeof(spec);
  spec.type = 99;
  spec.default_value.type = 99;
  s = ReadParamSchema(&ptr, 1);
  ASSERT_FALSE(s.ok());

  const llmsys_param_spec_t* null_ptr = nullptr;
  EXPECT_FALSE(ReadParamSchema(&null_ptr, 1).ok());
  EXPECT_FALSE(ReadParamSchema(nullptr, 2).ok());
  EXPECT_TRUE(ReadParamSchema(nullptr, 0).ok());
}

TEST(ParamSchemaTest, ParamPackFillsDefaultsAndOverrides) {
  absl::StatusOr<ParamSchema> s =
      Read({ParamSpec::Float("lr", 0.1, "learning rate"),
            ParamSpec::String("mode", "fast", "mode"),
            ParamSpec::Required("steps", LLMSYS_TYPE_INT, "steps")});
  ASSERT_TRUE(s.ok());
  absl::StatusOr<ParamPack> missing = ParamPack::Make(*s);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(std::string(missing.status().message()).find("'steps' is required"),
            std::string::npos);
  EXPECT_FALSE(ParamPack::Make(*s, {{"stpes", int64_t{3}}}).ok());

  absl::StatusOr<ParamPack> pack = ParamPack::Make(*s, {{"steps", int64_t{3}}});
  ASSERT_TRUE(pack.ok());
  ParamPack moved = *std::move(pack);  // the C view must survive a move
  sdk::Params p(moved.c_params());
  EXPECT_DOUBLE_EQ(p.Float("lr"), 0.1);
  EXPECT_EQ(p.String("mode"), "fast");
  EXPECT_EQ(p.Int("steps"), 3);
  EXPECT_THROW(p.Int("lr"), sdk::Error);
  EXPECT_THROW(p.Bool("nothing"), sdk::Error);
}

}  // namespace
}  // namespace llmsys::runtime
