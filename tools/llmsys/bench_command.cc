// `llmsys bench`: the matmul ladder on this machine, training speed
// (`bench train`), and attention time and memory (`bench attention`). See
// docs/performance.md ("The matmul ladder", "Training speed vs PyTorch",
// "Flash attention on the CPU") for the tables and how to read them.
#include "tools/llmsys/bench_command.h"

#include <dlfcn.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_join.h"
#include "framework/core/process_memory.h"
#include "framework/core/suggest.h"
#include "framework/runtime/operator_call.h"
#include "framework/runtime/registry.h"
#include "framework/tensor/tensor.h"
#include "framework/train/trainer.h"
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

// Whether lo <= v <= hi; prints "error: FLAG must be in [lo, hi], got v"
// when not.
bool InRange(const char* flag, int64_t v, int64_t lo, int64_t hi) {
  if (v >= lo && v <= hi) return true;
  std::cerr << "error: " << flag << " must be in [" << lo << ", " << hi
            << "], got " << v << "\n";
  return false;
}

// Adds the options every benchmark has (--plugin-dir, --json, --help) to
// `desc` and parses `args`; returns -1 to go on, else the exit code (0
// after printing --help, 2 on bad usage).
int ParseBenchArgs(const std::vector<std::string>& args,
                   po::options_description& desc, const char* positional,
                   int max_positional, std::vector<std::string>* plugin_dirs,
                   bool* json, po::variables_map* vm) {
  bool help = false;
  desc.add_options()("plugin-dir", po::value(plugin_dirs)->composing(),
                     "also load plugins from DIR (repeatable)")(
      "json", po::bool_switch(json), "print the results as JSON")(
      "help,h", po::bool_switch(&help), "show this help");
  if (!ParseArgs(args, desc, positional, max_positional, vm)) return 2;
  if (help) {
    std::cout << desc << "\n";
    return 0;
  }
  return -1;
}

// The built-in plugin folders and each --plugin-dir, loaded; false (after
// printing why) when a folder is unusable.
bool LoadPlugins(PluginRegistry& registry,
                 const std::vector<std::string>& plugin_dirs) {
  absl::Status s = registry.AddDefaultSearchDirs();
  for (const std::string& dir : plugin_dirs)
    if (s.ok()) s = registry.AddSearchDir(dir, "--plugin-dir");
  if (!s.ok()) {
    std::cerr << "error: " << s.message() << "\n";
    return false;
  }
  registry.LoadAll();
  return true;
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
  bool json = false;
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
  desc.add_options()("size", po::value(&size), "matrix size N (default 1024)")(
      "threads", po::value(&threads),
      "threads for every implementation (default: the CPUs online); only "
      "parallel and blas use more than one")(
      "reps", po::value(&reps), "timed runs per implementation (default 3)")(
      "impl", po::value(&impl_list),
      "comma-separated implementations, in table order (default: reference,"
      "naive,loop_order,tiled,simd,parallel,blas, those found)");
  po::variables_map vm;
  if (const int code = ParseBenchArgs(args, desc, "impl-positional", 0,
                                      &plugin_dirs, &json, &vm);
      code >= 0)
    return code;
  if (!InRange("--size", size, 1, 16384) ||
      !InRange("--threads", threads, 1, 1024) ||
      !InRange("--reps", reps, 1, 1000))
    return 2;

  PluginRegistry registry;
  if (!LoadPlugins(registry, plugin_dirs)) return 2;
  const runtime::OpContract* contract = registry.FindOpContract("matmul");
  std::map<std::string, const Component*> found;  // impl name -> component
  for (const Component* c : registry.Components())
    if (c->kind == LLMSYS_KIND_OPERATOR && c->op == "matmul" &&
        c->device_type == kDLCPU && c->id.rfind("matmul.", 0) == 0)
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

// ---- bench train ----

// The parameter count of a safetensors file, from its header (0 on error).
int64_t SafetensorsNumel(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  uint64_t size = 0;
  if (!in.read(reinterpret_cast<char*>(&size), 8) || size > (1u << 30))
    return 0;
  std::string header(size, '\0');
  if (!in.read(header.data(), static_cast<std::streamsize>(size))) return 0;
  const nlohmann::json j = nlohmann::json::parse(header, nullptr, false);
  if (!j.is_object()) return 0;
  int64_t n = 0;
  for (const auto& [name, t] : j.items()) {
    if (name == "__metadata__" || !t.contains("shape")) continue;
    int64_t numel = 1;
    for (const auto& d : t["shape"]) numel *= d.get<int64_t>();
    n += numel;
  }
  return n;
}

int BenchTrain(const std::vector<std::string>& args) {
  std::string file;
  int64_t steps = 20, warmup = 3, generate_tokens = 0;
  int threads = 0;
  bool profile = false, keep = false, json = false;
  std::vector<std::string> sets, plugin_dirs;
  po::options_description desc(
      "usage: llmsys bench train FILE.toml [--steps N] [--warmup W] "
      "[--threads T] [--profile] [--generate N] [--keep] [--json]\n\n"
      "Trains the experiment in this process for W + N steps into a "
      "temporary run directory (removed unless --keep), with a log line, "
      "no validation and no checkpoint before the end, and prints the "
      "median and mean time of the last N steps, tokens/s (tokens per step "
      "/ mean), the peak resident memory (VmHWM, the whole process, the "
      "final validation batch included) and the threads. --generate N also "
      "times greedy generation of N tokens with the key/value cache from "
      "the trained weights. Configs: experiments/bench/ (docs/"
      "performance.md, \"Training speed vs PyTorch\").\n\noptions");
  desc.add_options()("file", po::value(&file), "the experiment file")(
      "steps", po::value(&steps), "timed steps (default 20)")(
      "warmup", po::value(&warmup),
      "untimed steps first (default 3; the first step also hashes the "
      "plugins for provenance.json)")(
      "threads", po::value(&threads),
      "CPU threads: [train] threads (default: the config's; 0 there: all "
      "cores)")("profile", po::bool_switch(&profile),
                "time every op call; print the per-op table (llmsys run "
                "--profile)")(
      "generate", po::value(&generate_tokens),
      "then time greedy generation of N tokens after a newline")(
      "set", po::value(&sets)->composing(),
      "override a key: --set train.batch_size=8 (repeatable)")(
      "keep", po::bool_switch(&keep), "keep the run directory");
  po::variables_map vm;
  if (const int code =
          ParseBenchArgs(args, desc, "file", 1, &plugin_dirs, &json, &vm);
      code >= 0)
    return code;
  if (file.empty()) {
    std::cerr << "error: bench train needs an experiment file (e.g. "
                 "experiments/bench/gpt_s.toml)\n";
    return 2;
  }
  if (!std::filesystem::is_regular_file(file)) {
    std::cerr << "error: " << file << ": no such experiment file\n";
    return 2;
  }
  if (!InRange("--steps", steps, 1, 1000000) ||
      !InRange("--warmup", warmup, 0, 1000000) ||
      (vm.count("threads") && !InRange("--threads", threads, 1, 1024)) ||
      !InRange("--generate", generate_tokens, 0, 1000000))
    return 2;

  std::string tmpl =
      (std::filesystem::temp_directory_path() / "llmsys-bench-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) {
    std::cerr << "error: cannot create a temporary directory " << tmpl << "\n";
    return 1;
  }
  const std::filesystem::path out_dir = tmpl;
  struct Cleanup {
    std::filesystem::path dir;
    bool keep;
    ~Cleanup() {
      std::error_code ec;
      if (!keep) std::filesystem::remove_all(dir, ec);
    }
  } cleanup{out_dir, keep};

  train::RunOptions options;
  options.experiment = file;
  options.plugin_dirs = plugin_dirs;
  options.profile = profile;
  options.progress_bar = false;
  options.sets = sets;
  for (const std::string& s : std::vector<std::string>{
           "train.steps=" + std::to_string(warmup + steps), "train.log_every=1",
           "train.eval_every=0", "train.eval_batches=1",
           "train.checkpoint_every=0", "generate.samples=0",
           "experiment.output=" + out_dir.string()})
    options.sets.push_back(s);
  if (vm.count("threads"))
    options.sets.push_back("train.threads=" + std::to_string(threads));
  absl::StatusOr<train::RunResult> r = train::RunExperiment(options);
  if (!r.ok()) {
    std::cerr << "error: " << r.status().message() << "\n";
    return 1;
  }

  // Step times: differences of metrics.jsonl's elapsed_seconds.
  std::vector<double> seconds;
  std::vector<int64_t> tokens;
  {
    std::ifstream in(r->run_dir / "metrics.jsonl");
    std::string line;
    double last_elapsed = 0;
    int64_t last_tokens = 0;
    while (std::getline(in, line)) {
      const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_object() || !j.contains("elapsed_seconds") ||
          !j.contains("tokens"))
        continue;
      const double e = j["elapsed_seconds"].get<double>();
      const int64_t t = j["tokens"].get<int64_t>();
      seconds.push_back(e - last_elapsed);
      tokens.push_back(t - last_tokens);
      last_elapsed = e;
      last_tokens = t;
    }
  }
  if (seconds.size() != static_cast<size_t>(warmup + steps)) {
    std::cerr << "error: " << (r->run_dir / "metrics.jsonl").string()
              << ": expected " << warmup + steps << " step records, found "
              << seconds.size() << "\n";
    return 1;
  }
  std::vector<double> timed(seconds.begin() + warmup, seconds.end());
  int64_t timed_tokens = 0;
  for (size_t i = static_cast<size_t>(warmup); i < tokens.size(); ++i)
    timed_tokens += tokens[i];
  double total = 0;
  for (double s : timed) total += s;
  const double mean = total / static_cast<double>(timed.size());
  std::sort(timed.begin(), timed.end());
  const size_t n = timed.size();
  const double median =
      n % 2 == 1 ? timed[n / 2] : (timed[n / 2 - 1] + timed[n / 2]) / 2;
  const double tokens_per_step =
      static_cast<double>(timed_tokens) / static_cast<double>(n);

  nlohmann::json summary;
  {
    std::ifstream in(r->run_dir / "summary.json");
    summary = nlohmann::json::parse(in, nullptr, false);
  }
  const int64_t peak =
      summary.is_object() ? summary.value("peak_memory_bytes", int64_t{0}) : 0;
  int64_t used_threads =
      summary.is_object() ? summary.value("threads", int64_t{0}) : 0;
  if (used_threads <= 0)
    used_threads = std::max(1u, std::thread::hardware_concurrency());
  const int64_t n_params =
      SafetensorsNumel(r->run_dir / "checkpoint" / "model.safetensors");

  std::optional<train::GenerateResult> generated;
  if (generate_tokens > 0) {
    train::GenerateOptions g;
    g.run_dir = r->run_dir;
    g.prompts = {"\n"};
    g.max_tokens = generate_tokens;
    g.sampler = "greedy";
    g.plugin_dirs = plugin_dirs;
    absl::StatusOr<train::GenerateResult> gr = train::Generate(g);
    if (!gr.ok()) {
      std::cerr << "error: --generate: " << gr.status().message() << "\n";
      return 1;
    }
    generated = *std::move(gr);
  }

  if (json) {
    nlohmann::json j = {{"file", file},
                        {"steps", steps},
                        {"warmup", warmup},
                        {"threads", used_threads},
                        {"parameters", n_params},
                        {"tokens_per_step", tokens_per_step},
                        {"ms_per_step_median", median * 1e3},
                        {"ms_per_step_mean", mean * 1e3},
                        {"tokens_per_second", tokens_per_step / mean},
                        {"peak_memory_bytes", peak}};
    if (generated) {
      j["generate_tokens"] = generated->stats.generated_tokens;
      j["generate_tokens_per_second"] = generated->stats.TokensPerSecond();
      j["generate_cache"] = generated->used_cache;
    }
    if (keep) j["run_dir"] = r->run_dir.string();
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::printf("bench train %s: %lld steps timed after %lld warm-up\n",
              file.c_str(), static_cast<long long>(steps),
              static_cast<long long>(warmup));
  std::printf("%-22s %lld\n", "parameters", static_cast<long long>(n_params));
  std::printf("%-22s %lld\n", "threads", static_cast<long long>(used_threads));
  std::printf("%-22s %.0f\n", "tokens/step", tokens_per_step);
  std::printf("%-22s %.2f\n", "ms/step (median)", median * 1e3);
  std::printf("%-22s %.2f\n", "ms/step (mean)", mean * 1e3);
  std::printf("%-22s %.0f\n", "tokens/s", tokens_per_step / mean);
  std::printf("%-22s %.1f\n", "peak memory (MiB)",
              static_cast<double>(peak) / (1 << 20));
  if (generated) {
    std::printf("%-22s %lld\n", "generated tokens",
                static_cast<long long>(generated->stats.generated_tokens));
    std::printf("%-22s %.1f%s\n", "generate tokens/s",
                generated->stats.TokensPerSecond(),
                generated->used_cache ? "" : " (no cache)");
  }
  if (keep) std::printf("%-22s %s\n", "run directory", r->run_dir.c_str());
  return 0;
}

// ---- bench attention ----

Tensor RandomTensorOf(const tensor::Shape& shape, uint64_t seed) {
  Tensor t = *Tensor::Empty(shape, tensor::kF32);
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  float* p = t.data_as<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = dist(gen);
  return t;
}

struct AttentionRow {
  std::string impl;
  int64_t n = 0;
  bool skipped = false;
  std::string why;           // when skipped
  double seconds = 0;        // forward + backward, best of the runs
  int64_t peak_rss = -1;     // bytes above the RSS before the call
  int64_t peak_tensors = 0;  // bytes of host tensors above those before
};

int BenchAttention(const std::vector<std::string>& args) {
  std::string n_list = "256,1024,4096", impl_list = "materialized,blas,flash";
  int64_t b = 8, h = 8, d = 64;
  bool causal = false, json = false;
  int threads = std::max(1u, std::thread::hardware_concurrency());
  int reps = 1;
  double max_naive_s = 30;
  double max_gib = 0.75 * double(core::AvailableMemoryBytes()) / (1 << 30);
  std::vector<std::string> plugin_dirs;
  po::options_description desc(
      "usage: llmsys bench attention [--n 256,1024,4096] [--b 8] [--h 8] "
      "[--d 64] [--causal] [--threads T] [--reps R] [--impl a,b,...] "
      "[--json]\n\n"
      "Times forward + backward of each `attention` implementation on "
      "random float32 q, k, v (B, H, N, D) for each N (M = N), and its "
      "peak memory: the rise of the process's peak RSS during the call "
      "(host tensors and the plugin's own scratch; reset through "
      "/proc/self/clear_refs) and, separately, the peak of the host's "
      "tensor allocations (outputs and gradients only). The default rows: "
      "attention.materialized (the textbook algorithm, every (B, H, N, N) "
      "score at once), attention.blas (one (N, N) buffer per head in turn) "
      "and attention.flash (64 x 64 tiles); then flash's time and peak "
      "memory as fractions of materialized's. A row is skipped where its "
      "predicted memory would pass --max-gib, and attention.naive (the "
      "float64 reference, --impl naive) where its time, extrapolated from "
      "the smallest N as N^2, would pass --max-naive-s. See "
      "docs/performance.md.\n\noptions");
  desc.add_options()("n", po::value(&n_list),
                     "comma-separated sequence lengths N")(
      "b", po::value(&b), "batch B (default 8)")(
      "h", po::value(&h), "heads H (default 8)")("d", po::value(&d),
                                                 "head size D (default 64)")(
      "causal", po::bool_switch(&causal), "causal mask")(
      "threads", po::value(&threads), "threads (default: the CPUs online)")(
      "reps", po::value(&reps), "timed runs per row, best kept (default 1)")(
      "impl", po::value(&impl_list),
      "comma-separated implementations (default materialized,blas,flash)")(
      "max-gib", po::value(&max_gib),
      "skip a row whose predicted memory passes this (default: 3/4 of "
      "MemAvailable)")("max-naive-s", po::value(&max_naive_s),
                       "skip naive when its predicted time passes this "
                       "(default 30)");
  po::variables_map vm;
  if (const int code = ParseBenchArgs(args, desc, "impl-positional", 0,
                                      &plugin_dirs, &json, &vm);
      code >= 0)
    return code;
  std::vector<int64_t> ns;
  for (const std::string& item : Split(n_list)) {
    char* end = nullptr;
    const long long v = std::strtoll(item.c_str(), &end, 10);
    if (end == item.c_str() || *end != '\0' || v < 1 || v > 65536) {
      std::cerr << "error: --n: expected comma-separated integers in [1, "
                   "65536], got '"
                << item << "'\n";
      return 2;
    }
    ns.push_back(v);
  }
  if (ns.empty()) {
    std::cerr << "error: --n names no sequence length\n";
    return 2;
  }
  if (!InRange("--b", b, 1, 4096) || !InRange("--h", h, 1, 4096) ||
      !InRange("--d", d, 1, 4096) || !InRange("--threads", threads, 1, 1024) ||
      !InRange("--reps", reps, 1, 1000))
    return 2;

  PluginRegistry registry;
  if (!LoadPlugins(registry, plugin_dirs)) return 2;
  const runtime::OpContract* contract = registry.FindOpContract("attention");
  std::map<std::string, const Component*> found;
  std::vector<std::string> known;
  for (const Component* c : registry.Components())
    if (c->kind == LLMSYS_KIND_OPERATOR && c->op == "attention" &&
        c->device_type == kDLCPU && c->id.rfind("attention.", 0) == 0) {
      found[c->id.substr(10)] = c;
      known.push_back(c->id.substr(10));
    }
  if (contract == nullptr || found.empty()) {
    std::cerr << "error: no implementation of attention was found (is the "
                 "built-in plugin folder "
              << runtime::BuiltinPluginDir().string() << " there?)\n";
    return 1;
  }
  const std::vector<std::string> names = Split(impl_list);
  for (const std::string& name : names)
    if (found.count(name) == 0) {
      std::cerr << "error: --impl: no attention implementation '" << name << "'"
                << core::DidYouMean(name, known)
                << " (found: " << absl::StrJoin(known, ", ") << ")\n";
      return 2;
    }

  runtime::CallOptions options;
  options.num_threads = threads;
  options.rng = {1, 0};
  const bool rss_ok =
      core::ResetPeakResident() && core::PeakResidentBytes() > 0;
  // One forward + backward; fills seconds and the memory columns.
  auto run = [&](const std::string& name, const std::vector<Tensor>& in,
                 const Tensor& grad, AttentionRow* row) -> absl::Status {
    absl::StatusOr<std::unique_ptr<OperatorImpl>> impl =
        OperatorImpl::Create(*found[name], *contract);
    if (!impl.ok()) return impl.status();
    absl::StatusOr<runtime::ParamPack> pack =
        (*impl)->Attrs({{"causal", causal}});
    if (!pack.ok()) return pack.status();
    std::vector<runtime::TensorMeta> meta;
    std::vector<bool> needs;
    for (const Tensor& t : in) {
      meta.push_back({t.defined(), t.defined() ? t.shape() : tensor::Shape{},
                      t.defined() ? t.dtype() : tensor::kF32});
      needs.push_back(t.defined());
    }
    if (rss_ok) core::ResetPeakResident();  // trims the heap too
    tensor::ResetPeakHostTensorMemory();
    const int64_t tensors0 = tensor::HostTensorMemory().current;
    const int64_t rss0 = core::ProcKilobytesLine("/proc/self/status", "VmRSS");
    const auto t0 = std::chrono::steady_clock::now();
    {
      absl::StatusOr<std::vector<Tensor>> out =
          (*impl)->Forward(in, *pack, options);
      if (!out.ok()) return out.status();
      std::vector<Tensor> grads(out->size());
      grads[0] = grad;
      absl::StatusOr<std::vector<Tensor>> g =
          (*impl)->Backward(in, meta, *pack, options, *out, grads, needs);
      if (!g.ok()) return g.status();
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
    row->seconds = row->seconds == 0 ? secs : std::min(row->seconds, secs);
    if (rss_ok)
      row->peak_rss = std::max(row->peak_rss, core::PeakResidentBytes() - rss0);
    row->peak_tensors =
        std::max(row->peak_tensors, tensor::HostTensorMemory().peak - tensors0);
    return absl::OkStatus();
  };

  std::vector<AttentionRow> rows;
  int failures = 0;
  double naive_s_per_n2 = 0;  // from its first (smallest) measured N
  int64_t naive_n0 = 0;
  for (int64_t n : ns) {
    const std::vector<Tensor> in = {RandomTensorOf({b, h, n, d}, 1),
                                    RandomTensorOf({b, h, n, d}, 2),
                                    RandomTensorOf({b, h, n, d}, 3), Tensor()};
    const Tensor grad = RandomTensorOf({b, h, n, d}, 4);
    for (const std::string& name : names) {
      AttentionRow row;
      row.impl = name;
      row.n = n;
      // Predicted scratch: the reference holds float64 copies of q, k, v
      // and their gradients; materialized the whole (B, H, N, N) P and dP.
      double gib = 0;
      if (name == "naive") gib = 6.0 * double(b * h * n * d) * 8 / (1 << 30);
      if (name == "materialized")
        gib = 2.0 * double(b * h) * double(n) * double(n) * 4 / (1 << 30);
      const double predicted =
          name == "naive" ? naive_s_per_n2 * double(n) * double(n) : 0;
      char why[160] = "";
      if (gib > max_gib)
        std::snprintf(why, sizeof why,
                      "predicted memory %.1f GiB > --max-gib %.1f", gib,
                      max_gib);
      else if (predicted > max_naive_s)
        std::snprintf(why, sizeof why,
                      "predicted %.0f s (as N^2 from N = %lld) > "
                      "--max-naive-s %g",
                      predicted, static_cast<long long>(naive_n0), max_naive_s);
      if (why[0] != '\0') {
        row.skipped = true;
        row.why = why;
        rows.push_back(row);
        continue;
      }
      absl::Status st;
      for (int r = 0; st.ok() && r < reps; ++r) st = run(name, in, grad, &row);
      if (!st.ok()) {
        std::cerr << "error: attention." << name << " at N = " << n << ": "
                  << st.message() << "\n";
        ++failures;
        continue;
      }
      if (name == "naive" && naive_s_per_n2 == 0) {
        naive_s_per_n2 = row.seconds / (double(n) * double(n));
        naive_n0 = n;
      }
      rows.push_back(row);
    }
  }

  // The goal, per N: flash's time and peak memory over
  // materialized's (peak RSS when readable, else the tensors).
  struct Ratio {
    int64_t n;
    double time, memory;
  };
  std::vector<Ratio> ratios;
  auto measured = [&](const std::string& impl, int64_t n) {
    for (const AttentionRow& r : rows)
      if (r.impl == impl && r.n == n && !r.skipped) return &r;
    return static_cast<const AttentionRow*>(nullptr);
  };
  for (int64_t n : ns) {
    const AttentionRow* base = measured("materialized", n);
    const AttentionRow* flash = measured("flash", n);
    if (base == nullptr || flash == nullptr) continue;
    const bool rss = base->peak_rss > 0 && flash->peak_rss >= 0;
    ratios.push_back(
        {n, flash->seconds / base->seconds,
         rss ? double(flash->peak_rss) / double(base->peak_rss)
             : double(flash->peak_tensors) / double(base->peak_tensors)});
  }

  const std::string what =
      "counted: peak RSS rise during forward + backward "
      "(tensors + plugin scratch); tensors: host tensor "
      "allocations only (outputs, gradients)";
  if (json) {
    nlohmann::json j;
    j["b"] = b;
    j["h"] = h;
    j["d"] = d;
    j["causal"] = causal;
    j["threads"] = threads;
    j["reps"] = reps;
    j["memory"] = what;
    j["rows"] = nlohmann::json::array();
    for (const AttentionRow& r : rows) {
      nlohmann::json row = {{"impl", r.impl}, {"n", r.n}};
      if (r.skipped) {
        row["skipped"] = r.why;
      } else {
        row["seconds"] = r.seconds;
        row["peak_rss_bytes"] = r.peak_rss;
        row["peak_tensor_bytes"] = r.peak_tensors;
      }
      j["rows"].push_back(row);
    }
    j["flash_vs_materialized"] = nlohmann::json::array();
    for (const Ratio& r : ratios)
      j["flash_vs_materialized"].push_back(
          {{"n", r.n}, {"time", r.time}, {"peak_memory", r.memory}});
    std::cout << j.dump(2) << "\n";
    return failures == 0 ? 0 : 1;
  }
  std::printf(
      "attention forward + backward, float32, B %lld H %lld D %lld, M = N%s, "
      "%d thread%s, best of %d\n",
      static_cast<long long>(b), static_cast<long long>(h),
      static_cast<long long>(d), causal ? ", causal" : "", threads,
      threads == 1 ? "" : "s", reps);
  std::printf("%-6s %-13s %12s %14s %14s\n", "N", "impl", "time (ms)",
              "peak RSS MiB", "tensors MiB");
  for (const AttentionRow& r : rows) {
    if (r.skipped) {
      std::printf("%-6lld %-13s skipped: %s\n", static_cast<long long>(r.n),
                  r.impl.c_str(), r.why.c_str());
      continue;
    }
    char rss[32] = "n/a";
    if (r.peak_rss >= 0)
      std::snprintf(rss, sizeof rss, "%.3f", double(r.peak_rss) / (1 << 20));
    std::printf("%-6lld %-13s %12.2f %14s %14.3f\n",
                static_cast<long long>(r.n), r.impl.c_str(), r.seconds * 1e3,
                rss, double(r.peak_tensors) / (1 << 20));
  }
  std::printf("%s%s\n", what.c_str(),
              rss_ok ? ""
                     : " (peak RSS n/a: /proc/self/clear_refs not "
                       "writable)");
  for (const Ratio& r : ratios)
    std::printf("N %lld: flash / materialized: time %.2fx, peak memory %.3fx\n",
                static_cast<long long>(r.n), r.time, r.memory);
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
      {"attention", BenchAttention,
       "attention.materialized, .blas and .flash: forward + backward time "
       "and peak memory per sequence length"},
      {"train", BenchTrain,
       "training speed of an experiment: ms/step, tokens/s, peak memory"},
      {"cuda", BenchCuda,
       "llmsys.cuda on the GPU: bf16 GEMM and flash attention (TFLOP/s), "
       "LayerNorm and softmax (GB/s)"},
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
