// framework/runtime/param_schema.h — the host's copy of a component's
// parameter schema, read (and checked) from the plugin's C declarations.
//
//   absl::StatusOr<ParamSchema> schema = ReadParamSchema(c->params,
//   c->num_params); ParamPack defaults(*schema);          // every default, as
//   llmsys_params_t optimizer->create(defaults.c_params(), &instance, &err);
//
// Thread-safety: values; no shared state. ParamPack owns the memory its C
// view points to.
#ifndef LLMSYS_FRAMEWORK_RUNTIME_PARAM_SCHEMA_H_
#define LLMSYS_FRAMEWORK_RUNTIME_PARAM_SCHEMA_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "llmsys/params.h"

namespace llmsys::runtime {

using ParamValue = std::variant<bool, int64_t, double, std::string,
                                std::vector<int64_t>, std::vector<double>>;

struct ParamSchemaEntry {
  std::string name;
  llmsys_type_t type = 0;
  bool required = false;
  std::optional<ParamValue> default_value;  // absent iff required
  std::optional<double> min_value;
  std::optional<double> max_value;
  std::vector<std::string> choices;  // strings only; empty allows any
  std::string doc;
};

using ParamSchema = std::vector<ParamSchemaEntry>;

// "bool", "int", "float", "str", "int[]", "float[]"; "?" otherwise.
std::string TypeName(llmsys_type_t type);

// [a-z][a-z0-9_]*
bool IsParamName(std::string_view name);

// Copies and checks a plugin's declarations. A malformed entry is an
// INVALID_ARGUMENT whose message names the parameter and the rule broken.
absl::StatusOr<ParamSchema> ReadParamSchema(
    const llmsys_param_spec_t* const* specs, uint32_t count);

// Checks one schema entry (used for op-contract attributes too).
absl::Status CheckParamSchemaEntry(const ParamSchemaEntry& entry);

// A value as it would be written in TOML: true, 3, 0.5, "mean", [1, 2].
std::string FormatParamValue(const ParamValue& value);

// The range and choices of an entry in words ("in [0, 1]", "one of a|b"),
// or "".
std::string FormatConstraint(const ParamSchemaEntry& entry);

// A C typed value as a ParamValue (any type; NULL strings and lists are
// errors).
absl::StatusOr<ParamValue> ParamValueFromC(const llmsys_typed_value_t& value);

// `value` checked against `entry` and converted to its type where that
// loses nothing (an int for a float, an int list for a float list). The
// error names the parameter, what was expected and what was given.
absl::StatusOr<ParamValue> CheckParamValue(const ParamSchemaEntry& entry,
                                           const ParamValue& value);

// A command-line "name=value" for a component with `schema`: the value is
// read as the named parameter's type ("true"/"false"/"yes"/"no"/"1"/"0"
// for bool; lists separated by commas) and checked with CheckParamValue.
// `what` names the component in errors ("evaluator bleu"); an unknown name
// lists the parameters with a did-you-mean.
absl::StatusOr<std::pair<std::string, ParamValue>> ParseParamAssignment(
    const ParamSchema& schema, const std::string& assignment,
    const std::string& what);

// A complete llmsys_params_t for a schema: the defaults, replaced by
// `overrides` where named (each checked with CheckParamValue). Required
// entries must be overridden.
class ParamPack {
 public:
  static absl::StatusOr<ParamPack> Make(
      const ParamSchema& schema,
      const std::vector<std::pair<std::string, ParamValue>>& overrides = {});

  ParamPack(ParamPack&& other) noexcept;
  ParamPack& operator=(ParamPack&& other) noexcept;
  ParamPack(const ParamPack&) = delete;
  ParamPack& operator=(const ParamPack&) = delete;

  const llmsys_params_t* c_params() const { return &c_params_; }

 private:
  ParamPack() = default;
  void Rebuild();

  std::vector<std::pair<std::string, ParamValue>> values_;
  std::vector<llmsys_param_t> items_;
  llmsys_params_t c_params_{};
};

}  // namespace llmsys::runtime

#endif  // LLMSYS_FRAMEWORK_RUNTIME_PARAM_SCHEMA_H_
