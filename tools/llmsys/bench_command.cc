// `llmsys bench matmul`: the matmul ladder on this machine. See
// docs/performance.md ("The matmul ladder") for the table and how to read it.
#include "tools/llmsys/bench_command.h"

#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_join.h"
#include "framework/core/suggest.h"
#include "framework/runtime/operator_call.h"
#include "framework/runtime/registry.h"
#include "framework/tensor/tensor.h"
#include "nlohmann/json.hpp"
#include "tools/llmsys/parse_args.h"

namespace llmsys::cli {
namespace {

namespace po = boost::program_options;
using runtime::Component;
using runtime::OperatorImpl;
using runtime::PluginRegistry;
using tensor::Tensor;

// ---- the CPU's peak ----

struct Peak {
  double gflops = 0;
  std::string how;  // one line: the product and where each factor came from
};

// The first "key : value" of /proc/cpuinfo, or "".
std::string CpuInfo(const std::string& key) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string k = line.substr(0, colon);
    while (!k.empty() && (k.back() == ' ' || k.back() == '\t')) k.pop_back();
    if (k != key) continue;
    std::string v = line.substr(colon + 1);
    v.erase(0, v.find_first_not_of(' '));
    return v;
  }
  return "";
}

std::string Fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

// fp32 peak for `cores` cores: lanes per FMA pipe x FMA pipes x 2 FLOPs per
// FMA x clock x cores. The pipes and their width come from the vendor and
// family (an assumption for the model, said so); the clock from the model
// name's nominal "@ X.XXGHz", else /proc/cpuinfo's "cpu MHz".
Peak PeakOf(int cores) {
  int lanes = 4;  // SSE
  std::string isa = "SSE";
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) {
    lanes = 16;
    isa = "AVX-512";
  } else if (__builtin_cpu_supports("avx2")) {
    lanes = 8;
    isa = "AVX2";
  }
  const bool fma = __builtin_cpu_supports("fma");
#else
  const bool fma = false;
#endif
  const std::string vendor = CpuInfo("vendor_id");
  const int family = std::atoi(CpuInfo("cpu family").c_str());
  const std::string model = CpuInfo("model name");
  int pipes = 2;
  int pipe_lanes = lanes;
  std::string pipes_note;
  if (vendor == "AuthenticAMD" && (family == 23 || family == 25) && lanes > 8) {
    pipe_lanes = 8;  // Zen 4 runs a 512-bit FMA on two 256-bit halves
    pipes_note = "AMD family " + std::to_string(family) +
                 ": 2 FMA pipes of 256 bits, a 512-bit FMA uses both halves";
  } else if (vendor == "AuthenticAMD") {
    pipes_note = "AMD family " + std::to_string(family) +
                 ": 2 FMA pipes of the vector width, assumed";
  } else if (vendor == "GenuineIntel") {
    pipes_note =
        "Intel: 2 FMA units assumed (1 on some Xeon Silver/Bronze "
        "and client chips with AVX-512)";
  } else {
    pipes_note = "2 FMA units assumed";
  }
  if (!fma) {
    pipes = 1;  // one multiply and one add per cycle count as one FMA
    pipes_note = "no FMA: one multiply + one add pipe counted as 1 FMA";
  }
  double ghz = 0;
  std::string clock_note;
  const size_t at = model.find('@');
  if (at != std::string::npos) ghz = std::atof(model.c_str() + at + 1);
  if (ghz > 0) {
    clock_note = "nominal clock from the model name";
  } else {
    ghz = std::atof(CpuInfo("cpu MHz").c_str()) / 1000;
    clock_note = "clock from /proc/cpuinfo 'cpu MHz'";
  }
  if (!(ghz > 0)) {
    ghz = 2.0;
    clock_note = "clock unknown, 2 GHz assumed";
  }
  Peak p;
  p.gflops = double(pipe_lanes) * pipes * 2 * ghz * cores;
  p.how = "peak = " + std::to_string(pipe_lanes) + " fp32 lanes (" + isa +
          ") x " + std::to_string(pipes) + " FMA pipes x 2 FLOPs x " +
          Fixed(ghz, 2) + " GHz x " + std::to_string(cores) + " core" +
          (cores == 1 ? "" : "s") + " = " + Fixed(p.gflops, 1) + " GFLOPS (" +
          (model.empty() ? "unknown CPU" : model) + "; " + pipes_note + "; " +
          clock_note + ")";
  return p;
}

// The kernels OpenBLAS runs, when a plugin loaded it ("" otherwise).
std::string BlasCore() {
  void* lib = dlopen("libopenblas.so.0", RTLD_LAZY | RTLD_NOLOAD);
  if (lib == nullptr) return "";
  auto* fn = reinterpret_cast<char* (*)()>(dlsym(lib, "openblas_get_corename"));
  std::string core = fn != nullptr ? fn() : "";
  dlclose(lib);
  return core;
}

// ---- bench matmul ----

// The ladder, slowest first; `llmsys bench matmul` times those found.
const std::vector<std::string>& LadderOrder() {
  static const std::vector<std::string> order = {
      "reference", "naive", "loop_order", "tiled", "simd", "parallel", "blas"};
  return order;
}

std::vector<std::string> Split(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

Tensor RandomMatrix(int64_t n, uint64_t seed) {
  Tensor t = *Tensor::Empty({n, n}, tensor::kF32);
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  float* p = t.data_as<float>();
  for (int64_t i = 0; i < n * n; ++i) p[i] = dist(gen);
  return t;
}

// Worst |x - y| / max(1, |y|).
double MaxRelError(const Tensor& x, const Tensor& y) {
  const float* a = x.data_as<float>();
  const float* b = y.data_as<float>();
  double worst = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double e = std::abs(double(a[i]) - double(b[i])) /
                     std::max(1.0, std::abs(double(b[i])));
    if (!(e <= worst)) worst = e;  // NaN wins
  }
  return worst;
}

struct Row {
  std::string impl;
  double seconds = 0;
  int runs = 0;
  double error = 0;
};

int BenchMatmul(const std::vector<std::string>& args) {
  int64_t size = 1024;
  int threads = std::max(1u, std::thread::hardware_concurrency());
  int reps = 3;
  std::string impl_list;
  std::vector<std::string> plugin_dirs;
  bool help = false, json = false;
  po::options_description desc(
      "usage: llmsys bench matmul [--size N] [--threads T] [--reps R] "
      "[--impl a,b,...] [--json]\n\n"
      "Times each implementation of `matmul` on random N x N float32 "
      "matrices (best of R after a warm-up) and prints the matmul ladder: "
      "time, GFLOPS, speed-up over the first row and over the previous row, "
      "fraction of the CPU's fp32 peak, and the largest relative difference "
      "from matmul.blas (or matmul.reference without OpenBLAS). Above N = "
      "512 the reference and naive rows run once, without a warm-up. See "
      "docs/performance.md.\n\noptions");
  desc.add_options()("help,h", po::bool_switch(&help), "show this help")(
      "size", po::value(&size), "matrix size N (default 1024)")(
      "threads", po::value(&threads),
      "threads for every implementation (default: the CPUs online); only "
      "parallel and blas use more than one")(
      "reps", po::value(&reps), "timed runs per implementation (default 3)")(
      "impl", po::value(&impl_list),
      "comma-separated implementations, in table order (default: reference,"
      "naive,loop_order,tiled,simd,parallel,blas, those found)")(
      "plugin-dir", po::value(&plugin_dirs)->composing(),
      "also load plugins from DIR (repeatable)")("json", po::bool_switch(&json),
                                                 "print the table as JSON");
  po::variables_map vm;
  if (!ParseArgs(args, desc, "impl-positional", 0, &vm)) return 2;
  if (help) {
    std::cout << desc << "\n";
    return 0;
  }
  if (size < 1 || size > 16384) {
    std::cerr << "error: --size must be in [1, 16384], got " << size << "\n";
    return 2;
  }
  if (threads < 1 || threads > 1024) {
    std::cerr << "error: --threads must be in [1, 1024], got " << threads
              << "\n";
    return 2;
  }
  if (reps < 1 || reps > 1000) {
    std::cerr << "error: --reps must be in [1, 1000], got " << reps << "\n";
    return 2;
  }

  PluginRegistry registry;
  absl::Status s = registry.AddDefaultSearchDirs();
  for (const std::string& dir : plugin_dirs)
    if (s.ok()) s = registry.AddSearchDir(dir, "--plugin-dir");
  if (!s.ok()) {
    std::cerr << "error: " << s.message() << "\n";
    return 2;
  }
  registry.LoadAll();
  const runtime::OpContract* contract = registry.FindOpContract("matmul");
  std::map<std::string, const Component*> found;  // impl name -> component
  for (const Component* c : registry.Components())
    if (c->kind == LLMSYS_KIND_OPERATOR && c->op == "matmul" &&
        c->id.rfind("matmul.", 0) == 0)
      found[c->id.substr(7)] = c;
  if (contract == nullptr || found.empty()) {
    std::cerr << "error: no implementation of matmul was found (is the "
                 "built-in plugin folder "
              << runtime::BuiltinPluginDir().string() << " there?)\n";
    return 1;
  }
  std::vector<std::string> names;
  std::vector<std::string> known;
  for (const auto& [name, c] : found) known.push_back(name);
  const bool asked = !impl_list.empty();
  if (asked) {
    names = Split(impl_list);
    for (const std::string& name : names)
      if (found.count(name) == 0) {
        std::cerr << "error: --impl: no matmul implementation '" << name << "'"
                  << core::DidYouMean(name, known)
                  << " (found: " << absl::StrJoin(known, ", ") << ")\n";
        return 2;
      }
  } else {
    for (const std::string& name : LadderOrder())
      if (found.count(name) != 0) names.push_back(name);
    for (const std::string& name : known)  // others (third-party), last
      if (std::find(names.begin(), names.end(), name) == names.end())
        names.push_back(name);
  }
  if (names.empty()) {
    std::cerr << "error: --impl names no implementation\n";
    return 2;
  }

  const Tensor a = RandomMatrix(size, 1), b = RandomMatrix(size, 2);
  runtime::CallOptions options;
  options.num_threads = threads;
  // Runs one implementation once: its output and seconds, or an error.
  auto run = [&](const std::string& name, double* seconds,
                 Tensor* out) -> absl::Status {
    absl::StatusOr<std::unique_ptr<OperatorImpl>> impl =
        OperatorImpl::Create(*found[name], *contract);
    if (!impl.ok()) return impl.status();
    absl::StatusOr<runtime::ParamPack> pack = (*impl)->Attrs({});
    if (!pack.ok()) return pack.status();
    const auto t0 = std::chrono::steady_clock::now();
    absl::StatusOr<std::vector<Tensor>> o =
        (*impl)->Forward({a, b}, *pack, options);
    *seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
    if (!o.ok()) return o.status();
    *out = (*o)[0];
    return absl::OkStatus();
  };

  // The oracle: blas, else the reference.
  const std::string oracle_name = found.count("blas") != 0        ? "blas"
                                  : found.count("reference") != 0 ? "reference"
                                                                  : names[0];
  Tensor oracle;
  {
    double unused = 0;
    absl::Status st = run(oracle_name, &unused, &oracle);
    if (!st.ok()) {
      std::cerr << "error: matmul." << oracle_name << ": " << st.message()
                << "\n";
      return 1;
    }
  }

  std::vector<Row> rows;
  int failures = 0;
  for (const std::string& name : names) {
    const bool slow = (name == "reference" || name == "naive") && size > 512;
    const int runs = slow ? 1 : reps;
    Row row{name, INFINITY, runs, 0};
    Tensor out;
    double t = 0;
    absl::Status st = slow ? absl::OkStatus() : run(name, &t, &out);  // warm
    for (int r = 0; st.ok() && r < runs; ++r) {
      st = run(name, &t, &out);
      row.seconds = std::min(row.seconds, t);
    }
    if (!st.ok()) {
      std::cerr << "error: matmul." << name << ": " << st.message() << "\n";
      ++failures;
      continue;
    }
    row.error = MaxRelError(out, oracle);
    // float32 sums of N products: allow N * 2^-24 with a margin.
    if (!(row.error <= 1e-5 * std::max<double>(1.0, double(size) / 64))) {
      std::cerr << "error: matmul." << name << " differs from matmul."
                << oracle_name << " by " << row.error << "\n";
      ++failures;
    }
    rows.push_back(row);
  }

  const Peak peak = PeakOf(threads);
  const double flops = 2.0 * double(size) * double(size) * double(size);
  const std::string simd_note =
      found.count("simd") != 0 ? found["simd"]->description : std::string();
  const std::string blas_core = BlasCore();
  if (json) {
    nlohmann::json j;
    j["size"] = size;
    j["threads"] = threads;
    j["reps"] = reps;
    j["peak_gflops"] = peak.gflops;
    j["peak"] = peak.how;
    j["checked_against"] = "matmul." + oracle_name;
    if (!blas_core.empty()) j["openblas_core"] = blas_core;
    j["rows"] = nlohmann::json::array();
    for (size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      j["rows"].push_back(
          {{"impl", r.impl},
           {"seconds", r.seconds},
           {"runs", r.runs},
           {"gflops", flops / r.seconds / 1e9},
           {"speedup_abs", rows[0].seconds / r.seconds},
           {"speedup_rel",
            (i == 0 ? r.seconds : rows[i - 1].seconds) / r.seconds},
           {"fraction_of_peak", flops / r.seconds / 1e9 / peak.gflops},
           {"max_rel_error", r.error}});
    }
    std::cout << j.dump(2) << "\n";
    return failures == 0 ? 0 : 1;
  }
  std::printf("matmul %lld x %lld x %lld, float32, %d thread%s, best of %d\n",
              static_cast<long long>(size), static_cast<long long>(size),
              static_cast<long long>(size), threads, threads == 1 ? "" : "s",
              reps);
  std::printf("%-12s %12s %10s %10s %10s %9s %12s\n", "version", "time (ms)",
              "GFLOPS", "abs speedup", "rel speedup", "% of peak",
              "max rel err");
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    const double gflops = flops / r.seconds / 1e9;
    std::printf("%-12s %11.2f%s %10.2f %10.1fx %10.2fx %8.2f%% %12.1e\n",
                r.impl.c_str(), r.seconds * 1e3, r.runs < reps ? "*" : " ",
                gflops, rows[0].seconds / r.seconds,
                (i == 0 ? r.seconds : rows[i - 1].seconds) / r.seconds,
                100 * gflops / peak.gflops, r.error);
  }
  if (std::any_of(rows.begin(), rows.end(),
                  [&](const Row& r) { return r.runs < reps; }))
    std::printf("* one run, no warm-up (reference and naive above N = 512)\n");
  std::printf("%s\n", peak.how.c_str());
  std::printf("errors: max |x - y| / max(1, |y|) against matmul.%s%s\n",
              oracle_name.c_str(),
              blas_core.empty()
                  ? ""
                  : (" (OpenBLAS '" + blas_core + "' kernels)").c_str());
  if (!simd_note.empty()) std::printf("simd: %s\n", simd_note.c_str());
  return failures == 0 ? 0 : 1;
}

// ---- dispatch ----

struct What {
  const char* name;
  int (*run)(const std::vector<std::string>&);
  const char* help;
};

const std::vector<What>& Whats() {
  static const std::vector<What> whats = {
      {"matmul", BenchMatmul,
       "the matmul ladder: every matmul implementation, GFLOPS and "
       "fraction of peak"},
  };
  return whats;
}

void PrintUsage(std::ostream& out) {
  out << "usage: llmsys bench WHAT [OPTIONS]\n\nbenchmarks:\n";
  for (const What& w : Whats()) {
    std::string name = w.name;
    name.resize(12, ' ');
    out << "  " << name << " " << w.help << "\n";
  }
  out << "\nRun 'llmsys bench WHAT --help' for its options.\n";
}

}  // namespace

int BenchCommand(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    PrintUsage(args.empty() ? std::cerr : std::cout);
    return args.empty() ? 2 : 0;
  }
  std::vector<std::string> names;
  for (const What& w : Whats()) {
    names.push_back(w.name);
    if (args[0] == w.name)
      return w.run(std::vector<std::string>(args.begin() + 1, args.end()));
  }
  std::cerr << "llmsys bench: unknown benchmark '" << args[0] << "'"
            << core::DidYouMean(args[0], names) << "\n\n";
  PrintUsage(std::cerr);
  return 2;
}

}  // namespace llmsys::cli
