// tests/torch/reference_dump.cc — runs the reference implementation of every
// standard op on every conformance case, in float64, forward and backward,
// and writes inputs, outputs, output gradients and input gradients as JSON
// for compare_with_torch.py to recompute with PyTorch.
//
//   reference_dump OUT.json [PLUGIN.so]
//
// PLUGIN.so defaults to the build's reference.so. Exit status 0 when the
// file was written (a case the reference fails on is recorded with its
// error and reported by the comparison), 1 on a usage or I/O error, or when
// the plugin cannot be loaded.
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "framework/conformance/conformance.h"
#include "framework/runtime/op_contract.h"
#include "framework/runtime/operator_call.h"
#include "framework/runtime/param_schema.h"
#include "framework/runtime/registry.h"
#include "framework/tensor/tensor.h"

namespace {

using llmsys::conformance::OpCase;
using llmsys::runtime::CallOptions;
using llmsys::runtime::Component;
using llmsys::runtime::OpContract;
using llmsys::runtime::OperatorImpl;
using llmsys::runtime::ParamPack;
using llmsys::runtime::ParamValue;
using llmsys::runtime::PluginRegistry;
using llmsys::runtime::TensorMeta;
using llmsys::tensor::Tensor;
using nlohmann::json;
namespace tensor = llmsys::tensor;

// A number, with the values JSON has no literal for as strings.
json Number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

// {"dtype", "shape", "values"} (row-major), or null for an undefined tensor.
json TensorJson(const Tensor& t) {
  if (!t.defined()) return nullptr;
  json values = json::array();
  const bool is_float = tensor::IsFloatDType(t.dtype());
  for (double v : t.ToDoubles()) {
    if (is_float) {
      values.push_back(Number(v));
    } else {
      values.push_back(static_cast<int64_t>(v));
    }
  }
  return {{"dtype", tensor::DTypeName(t.dtype())},
          {"shape", t.shape()},
          {"values", std::move(values)}};
}

json ParamJson(const ParamValue& value) {
  return std::visit(
      [](const auto& v) -> json {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, double>) {
          return Number(v);
        } else if constexpr (std::is_same_v<T, std::vector<double>>) {
          json a = json::array();
          for (double x : v) a.push_back(Number(x));
          return a;
        } else {
          return v;
        }
      },
      value);
}

// The case's inputs as the dump runs them: float inputs as compact float64,
// index and mask inputs as they are.
std::vector<Tensor> Float64Inputs(const std::vector<Tensor>& inputs) {
  std::vector<Tensor> out;
  for (const Tensor& t : inputs) {
    if (!t.defined() || !tensor::IsFloatDType(t.dtype())) {
      out.push_back(t);
      continue;
    }
    out.push_back((*t.To(tensor::kF64)).Contiguous());
  }
  return out;
}

// A seed from the op name and the case index: stable across builds.
uint64_t CaseSeed(const std::string& op, size_t index) {
  uint64_t seed = 0x9E3779B97F4A7C15ull;
  for (char ch : op) seed = seed * 1099511628211ull + static_cast<uint8_t>(ch);
  return seed ^ (index + 1) * 0xBF58476D1CE4E5B9ull;
}

// Runs one case; returns its JSON record (with "error" if the reference
// refused it).
json RunCase(const Component& component, const OpContract& contract,
             const OpCase& c, size_t index) {
  json rec;
  rec["op"] = contract.name;
  rec["case"] = c.label;
  json attrs = json::object();
  for (const auto& [name, value] : c.attrs) attrs[name] = ParamJson(value);
  rec["attrs"] = attrs;
  rec["rng"] = {{"seed", c.rng.seed}, {"offset", c.rng.offset}};
  const std::vector<Tensor> in = Float64Inputs(c.inputs);
  json inputs = json::array();
  for (const Tensor& t : in) inputs.push_back(TensorJson(t));
  rec["inputs"] = inputs;
  json input_names = json::array();
  for (size_t i = 0; i < in.size(); ++i) {
    const auto& args = contract.inputs;
    if (args.size() == 1 && args[0].variadic) {
      input_names.push_back(args[0].name + "[" + std::to_string(i) + "]");
    } else {
      input_names.push_back(i < args.size() ? args[i].name
                                            : "input " + std::to_string(i));
    }
  }
  rec["input_names"] = input_names;
  json aux = json::array(), output_names = json::array();
  for (const auto& o : contract.outputs) {
    aux.push_back(o.aux);
    output_names.push_back(o.name);
  }
  rec["output_aux"] = aux;
  rec["output_names"] = output_names;

  auto fail = [&](const std::string& stage, const absl::Status& s) {
    rec["error"] = stage + ": " + std::string(s.message());
    return rec;
  };
  auto impl = OperatorImpl::Create(component, contract);
  if (!impl.ok()) return fail("create", impl.status());
  absl::StatusOr<ParamPack> pack = (*impl)->Attrs(c.attrs);
  if (!pack.ok()) return fail("attrs", pack.status());
  // Every attribute, defaults included, so the comparison can check the
  // contract's defaults against its own.
  json all_attrs = json::object();
  for (const auto& entry : contract.attributes) {
    if (entry.default_value.has_value())
      all_attrs[entry.name] = ParamJson(*entry.default_value);
  }
  for (const auto& [name, value] : c.attrs) all_attrs[name] = ParamJson(value);
  rec["all_attrs"] = all_attrs;

  CallOptions options;
  options.rng = c.rng;
  options.poison = true;
  absl::StatusOr<std::vector<Tensor>> out =
      (*impl)->Forward(in, *pack, options);
  if (!out.ok()) return fail("forward", out.status());
  json outputs = json::array();
  for (const Tensor& t : *out) outputs.push_back(TensorJson(t));
  rec["outputs"] = outputs;

  // Random output gradients for the non-aux float outputs.
  std::mt19937_64 rng(CaseSeed(contract.name, index));
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  std::vector<Tensor> w(out->size());
  json output_grads = json::array();
  for (size_t i = 0; i < out->size(); ++i) {
    const Tensor& o = (*out)[i];
    if (!contract.outputs[i].aux && tensor::IsFloatDType(o.dtype())) {
      std::vector<double> v(static_cast<size_t>(o.numel()));
      for (double& x : v) x = uniform(rng);
      w[i] = *Tensor::FromDoubles(o.shape(), v, tensor::kF64);
    }
    output_grads.push_back(TensorJson(w[i]));
  }
  rec["output_grads"] = output_grads;

  if (!(*impl)->has_backward()) {
    rec["error"] = "the reference has no backward";
    return rec;
  }
  std::vector<TensorMeta> meta;
  std::vector<bool> needs;
  for (const Tensor& t : in) {
    meta.push_back({t.defined(), t.defined() ? t.shape() : tensor::Shape{},
                    t.defined() ? t.dtype() : tensor::kF64});
    needs.push_back(t.defined() && tensor::IsFloatDType(t.dtype()));
  }
  std::vector<Tensor> saved_in(in.size()), saved_out(out->size());
  if ((*impl)->flags() & LLMSYS_OP_BACKWARD_NEEDS_INPUTS) saved_in = in;
  if ((*impl)->flags() & LLMSYS_OP_BACKWARD_NEEDS_OUTPUTS) saved_out = *out;
  absl::StatusOr<std::vector<Tensor>> grads =
      (*impl)->Backward(saved_in, meta, *pack, options, saved_out, w, needs);
  if (!grads.ok()) return fail("backward", grads.status());
  json input_grads = json::array();
  for (size_t i = 0; i < in.size(); ++i) {
    input_grads.push_back(i < grads->size() && needs[i]
                              ? TensorJson((*grads)[i])
                              : json(nullptr));
  }
  rec["input_grads"] = input_grads;
  return rec;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::cerr << "usage: reference_dump OUT.json [PLUGIN.so]\n";
    return 1;
  }
  const std::string plugin =
      argc == 3 ? argv[2]
                : std::string(LLMSYS_BUILTIN_PLUGIN_DIR) + "/reference.so";
  PluginRegistry registry;
  if (absl::Status s = registry.LoadFile(plugin); !s.ok()) {
    std::cerr << "reference_dump: " << s.message() << "\n";
    return 1;
  }
  json cases = json::array();
  int failed = 0;
  for (const OpContract& contract : llmsys::runtime::StandardOpContracts()) {
    absl::StatusOr<const Component*> component = registry.Find(
        LLMSYS_KIND_OPERATOR, contract.name + std::string(".reference"));
    const std::vector<OpCase> op_cases =
        llmsys::conformance::StandardCases(contract.name);
    if (!component.ok() || op_cases.empty()) {
      json rec;
      rec["op"] = contract.name;
      rec["case"] = "";
      rec["error"] = !component.ok() ? std::string(component.status().message())
                                     : std::string("no standard cases");
      cases.push_back(rec);
      ++failed;
      continue;
    }
    for (size_t i = 0; i < op_cases.size(); ++i) {
      json rec = RunCase(**component, contract, op_cases[i], i);
      if (rec.contains("error")) {
        ++failed;
        std::cerr << "reference_dump: " << contract.name << " \""
                  << op_cases[i].label
                  << "\": " << rec["error"].get<std::string>() << "\n";
      }
      cases.push_back(std::move(rec));
    }
  }
  std::ofstream file(argv[1]);
  file << json{{"version", 1}, {"cases", cases}}.dump(1) << "\n";
  file.close();
  if (!file) {
    std::cerr << "reference_dump: cannot write " << argv[1] << "\n";
    return 1;
  }
  std::cout << "reference_dump: " << cases.size() << " cases written to "
            << argv[1] << (failed ? " (" : "")
            << (failed ? std::to_string(failed) + " with errors)" : "") << "\n";
  return 0;
}
