// `llmsys bench cuda`: llmsys.cuda's kernels on this machine's GPU — GEMM
// (matmul.cublas, bf16), flash attention forward and backward (bf16), and
// the fused LayerNorm and softmax with a plain copy for the bandwidth
// they are held to. Prints a table and, with --json FILE, one record per
// measurement that tools/gpu_bench_table.py sets beside PyTorch's figures
// (tools/bench_cuda_torch.py) in tools/gpu_check.sh.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "boost/program_options.hpp"
#include "framework/core/status_macros.h"
#include "framework/cuda/cuda_backend.h"
#include "framework/runtime/operator_call.h"
#include "framework/runtime/registry.h"
#include "framework/tensor/device.h"
#include "framework/tensor/tensor.h"
#include "nlohmann/json.hpp"
#include "tools/llmsys/bench_command.h"

namespace llmsys::cli {
namespace {

namespace po = boost::program_options;
using runtime::OperatorImpl;
using tensor::Tensor;

constexpr DLDevice kGpu{kDLCUDA, 0};

struct Record {
  std::string bench;  // "gemm", "flash_fwd", "flash_bwd", "layer_norm", ...
  std::string shape;  // what torch must run to match, e.g. "4096x4096x4096"
  std::string dtype;
  double ms = 0;
  double tflops = 0;  // compute benches
  double gbs = 0;     // bandwidth benches
};

Tensor Random(const tensor::Shape& shape, DLDataType dtype, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  std::vector<double> v(static_cast<size_t>(tensor::Numel(shape)));
  for (double& x : v) x = dist(gen);
  return *(*Tensor::FromDoubles(shape, v, tensor::kF32)->To(dtype))
              .ToDevice(kGpu);
}

// Milliseconds per call of `fn`: warm-up, then enough calls to fill about
// 200 ms of GPU time, timed between two device synchronizations.
absl::StatusOr<double> TimeMs(const std::function<absl::Status()>& fn) {
  LLMSYS_ASSIGN_OR_RETURN(tensor::DeviceBackend * gpu,
                          tensor::BackendFor(kGpu));
  using Clock = std::chrono::steady_clock;
  for (int i = 0; i < 3; ++i) LLMSYS_RETURN_IF_ERROR(fn());
  LLMSYS_RETURN_IF_ERROR(gpu->Synchronize(kGpu));
  auto t0 = Clock::now();
  LLMSYS_RETURN_IF_ERROR(fn());
  LLMSYS_RETURN_IF_ERROR(gpu->Synchronize(kGpu));
  const double once =
      std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  const int reps =
      std::clamp(static_cast<int>(200.0 / std::max(once, 1e-3)), 3, 1000);
  t0 = Clock::now();
  for (int i = 0; i < reps; ++i) LLMSYS_RETURN_IF_ERROR(fn());
  LLMSYS_RETURN_IF_ERROR(gpu->Synchronize(kGpu));
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count() /
         reps;
}

class Bench {
 public:
  explicit Bench(runtime::PluginRegistry& registry) : registry_(registry) {}

  absl::StatusOr<std::unique_ptr<OperatorImpl>> Op(const std::string& id) {
    LLMSYS_ASSIGN_OR_RETURN(const runtime::Component* c,
                            registry_.Find(LLMSYS_KIND_OPERATOR, id, kDLCUDA));
    const runtime::OpContract* contract = registry_.FindOpContract(c->op);
    if (contract == nullptr)
      return absl::NotFoundError("no op contract " + c->op);
    return OperatorImpl::Create(*c, *contract);
  }

  // C (m, n) = A (m, k) @ B (k, n) in bf16.
  absl::Status Gemm(int64_t m, int64_t n, int64_t k) {
    LLMSYS_ASSIGN_OR_RETURN(auto op, Op("matmul.cublas"));
    const Tensor a = Random({m, k}, tensor::kBF16, 1);
    const Tensor b = Random({k, n}, tensor::kBF16, 2);
    LLMSYS_ASSIGN_OR_RETURN(runtime::ParamPack attrs, op->Attrs({}));
    LLMSYS_ASSIGN_OR_RETURN(double ms, TimeMs([&]() -> absl::Status {
                              return op->Forward({a, b}, attrs, {}).status();
                            }));
    const double flops = 2.0 * m * n * k;
    Add({"gemm", Shape3(m, n, k), "bfloat16", ms, flops / ms / 1e9, 0});
    return absl::OkStatus();
  }

  // Flash attention, (B, H, N, D) bf16, forward and forward + backward.
  absl::Status Flash(int64_t b, int64_t h, int64_t n, int64_t d, bool causal) {
    LLMSYS_ASSIGN_OR_RETURN(auto op, Op("attention.flash"));
    const Tensor q = Random({b, h, n, d}, tensor::kBF16, 3);
    const Tensor k = Random({b, h, n, d}, tensor::kBF16, 4);
    const Tensor v = Random({b, h, n, d}, tensor::kBF16, 5);
    const Tensor g = Random({b, h, n, d}, tensor::kBF16, 6);
    LLMSYS_ASSIGN_OR_RETURN(runtime::ParamPack attrs,
                            op->Attrs({{"causal", causal}}));
    std::vector<Tensor> out;
    LLMSYS_ASSIGN_OR_RETURN(double fwd, TimeMs([&]() -> absl::Status {
                              LLMSYS_ASSIGN_OR_RETURN(
                                  out,
                                  op->Forward({q, k, v, Tensor()}, attrs, {}));
                              return absl::OkStatus();
                            }));
    const std::vector<runtime::TensorMeta> meta(
        3, runtime::TensorMeta{true, {b, h, n, d}, tensor::kBF16});
    std::vector<runtime::TensorMeta> all = meta;
    all.push_back({});
    LLMSYS_ASSIGN_OR_RETURN(double bwd, TimeMs([&]() -> absl::Status {
                              return op
                                  ->Backward({q, k, v, Tensor()}, all, attrs,
                                             {}, out, {g, Tensor()},
                                             {true, true, true, false})
                                  .status();
                            }));
    // 4 B H N^2 D forward (two GEMMs), 2.5x that backward; half causal.
    const double flops = 4.0 * b * h * n * n * d * (causal ? 0.5 : 1.0);
    const std::string shape = std::to_string(b) + "x" + std::to_string(h) +
                              "x" + std::to_string(n) + "x" +
                              std::to_string(d) + (causal ? " causal" : "");
    Add({"flash_fwd", shape, "bfloat16", fwd, flops / fwd / 1e9, 0});
    Add({"flash_bwd", shape, "bfloat16", bwd, 2.5 * flops / bwd / 1e9, 0});
    return absl::OkStatus();
  }

  // Row kernels over (rows, cols): bytes = what must be read and written.
  absl::Status Rows(const std::string& id, int64_t rows, int64_t cols,
                    DLDataType dtype) {
    LLMSYS_ASSIGN_OR_RETURN(auto op, Op(id));
    const Tensor x = Random({rows, cols}, dtype, 7);
    std::vector<Tensor> in = {x};
    if (id == "layer_norm.cuda") {
      in.push_back(Random({cols}, dtype, 8));
      in.push_back(Random({cols}, dtype, 9));
    }
    LLMSYS_ASSIGN_OR_RETURN(runtime::ParamPack attrs, op->Attrs({}));
    LLMSYS_ASSIGN_OR_RETURN(double ms, TimeMs([&]() -> absl::Status {
                              return op->Forward(in, attrs, {}).status();
                            }));
    const double bytes = 2.0 * rows * cols * tensor::DTypeSize(dtype);
    const std::string bench = id.substr(0, id.find('.'));
    Add({bench, std::to_string(rows) + "x" + std::to_string(cols),
         tensor::DTypeName(dtype), ms, 0, bytes / ms / 1e6});
    return absl::OkStatus();
  }

  void Add(Record r) {
    std::printf("%-11s %-26s %-9s %10.4f ms %10.1f %s\n", r.bench.c_str(),
                r.shape.c_str(), r.dtype.c_str(), r.ms,
                r.tflops > 0 ? r.tflops : r.gbs,
                r.tflops > 0 ? "TFLOP/s" : "GB/s");
    std::fflush(stdout);
    records_.push_back(std::move(r));
  }

  const std::vector<Record>& records() const { return records_; }

 private:
  static std::string Shape3(int64_t m, int64_t n, int64_t k) {
    return std::to_string(m) + "x" + std::to_string(n) + "x" +
           std::to_string(k);
  }

  runtime::PluginRegistry& registry_;
  std::vector<Record> records_;
};

}  // namespace

int BenchCuda(const std::vector<std::string>& args) {
  std::string json_path;
  bool quick = false;
  po::options_description desc(
      "usage: llmsys bench cuda [--json FILE] [--quick]\n\n"
      "Times llmsys.cuda on GPU 0: bf16 GEMM (4096^3 and GPT-2 shapes), "
      "flash attention forward and backward (bf16, d 64 and 128, causal and "
      "not, sequence 512..8192 at 16k tokens per batch), LayerNorm and "
      "softmax (GB/s) and a plain copy. tools/gpu_check.sh sets the figures "
      "beside PyTorch's.\n\noptions");
  desc.add_options()("help,h", "this help")(
      "json", po::value(&json_path), "also write the records as JSON lines")(
      "quick", po::bool_switch(&quick), "a few shapes only");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(desc).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "llmsys bench cuda: " << e.what() << "\n\n" << desc << "\n";
    return 2;
  }
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return 0;
  }
  if (absl::Status s = cuda::GpuAvailable(); !s.ok()) {
    std::cerr << "llmsys bench cuda: no GPU can run here: " << s.message()
              << "\n";
    return 1;
  }
  runtime::PluginRegistry registry;
  const std::string plugin = (runtime::BuiltinPluginDir() / "cuda.so").string();
  if (absl::Status s = registry.LoadFile(plugin); !s.ok()) {
    std::cerr << "llmsys bench cuda: " << s.message() << "\n";
    return 1;
  }
  std::printf("GPU: %s\n", cuda::DeviceDescription().c_str());
  Bench bench(registry);
  int failures = 0;
  auto run = [&](const char* what, const absl::Status& s) {
    if (s.ok()) return;
    ++failures;
    std::printf("%-11s FAILED: %s\n", what, std::string(s.message()).c_str());
  };
  run("gemm", bench.Gemm(4096, 4096, 4096));
  if (!quick) {
    // GPT-2 small at 8192 tokens: qkv, attention projection, MLP up and
    // down, the LM head.
    for (auto [m, n, k] :
         std::vector<std::array<int64_t, 3>>{{8192, 2304, 768},
                                             {8192, 768, 768},
                                             {8192, 3072, 768},
                                             {8192, 768, 3072},
                                             {8192, 50304, 768}})
      run("gemm", bench.Gemm(m, n, k));
  }
  const std::vector<int64_t> lengths =
      quick ? std::vector<int64_t>{1024}
            : std::vector<int64_t>{512, 1024, 2048, 4096, 8192};
  for (int64_t d : {64, 128})
    for (bool causal : {false, true})
      for (int64_t n : lengths)
        run("flash", bench.Flash(16384 / n, 2048 / d, n, d, causal));
  for (DLDataType dt : {tensor::kF32, tensor::kBF16}) {
    run("contiguous", bench.Rows("contiguous.cuda", 16384, 4096, dt));
    run("layer_norm", bench.Rows("layer_norm.cuda", 16384, 4096, dt));
    run("layer_norm", bench.Rows("layer_norm.cuda", 65536, 768, dt));
    run("softmax", bench.Rows("softmax.cuda", 16384, 4096, dt));
  }
  if (!json_path.empty()) {
    std::ofstream out(json_path);
    for (const Record& r : bench.records())
      out << nlohmann::json{{"bench", r.bench},   {"shape", r.shape},
                            {"dtype", r.dtype},   {"ms", r.ms},
                            {"tflops", r.tflops}, {"gbs", r.gbs}}
                 .dump()
          << "\n";
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace llmsys::cli
