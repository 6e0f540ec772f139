// matmul.cublas: batched op(a) @ op(b) on cuBLASLt GEMMs; linear.cublas:
// x @ weight^T + bias as one cuBLASLt GEMM with the bias epilogue, its
// backward as two GEMMs, the weight's carrying the bias gradient
// (CUBLASLT_EPILOGUE_BGRADB).
//
// Row-major tensors run as column-major GEMMs through C^T = B^T A^T (the
// mapping and the batch plans are pure functions in cuda/matmul.h, tested
// on the CPU, and PlannedMatmul in plugins/cuda/matmul_plans.h runs them,
// as for matmul.cuda); a weight shared by every batch folds the batch into
// the GEMM's rows. Gradients of operands broadcast over batch dims are
// computed per batch into the workspace and summed by a kernel in a fixed
// order: no atomics, the same bits on every run.
//
// Both use the host's cuBLASLt handle and scratch (llmsys_call_context_t,
// ABI 1.4) on the call's stream. Matmul descriptors and the heuristic's
// choice are cached per problem (shape, dtype, pointer alignment) in the
// component instance, which one thread uses at a time. When cuBLASLt has
// no algorithm for an epilogue (bias, bias gradient) with some dtype, the
// same result comes from a plain GEMM plus a small kernel; when it has none
// for a broadcast (stride 0) batch, the batch runs one GEMM at a time.
//
// Dtypes: float32 (CUBLAS_COMPUTE_32F, or CUBLAS_COMPUTE_32F_FAST_TF32 with
// precision = "tf32"), bfloat16 and float16 (float accumulation), float64
// (CUBLAS_COMPUTE_64F). Sizes: every GEMM dim and batch count must fit in
// int32 (cuBLASLt's limit).
#include "cuda/matmul.h"

#include <cublasLt.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "plugins/cuda/common.h"
#include "plugins/cuda/matmul_plans.h"

namespace llmsys::cuda {
namespace {

// ---- cuBLASLt plumbing ----

[[noreturn]] void LtFail(const char* op, cublasStatus_t s, const char* what,
                         const char* file, int line) {
  Fail(s == CUBLAS_STATUS_ALLOC_FAILED ? LLMSYS_STATUS_RESOURCE_EXHAUSTED
                                       : LLMSYS_STATUS_INTERNAL,
       std::string(op) + ": cuBLASLt error " + cublasLtGetStatusName(s) + " (" +
           cublasLtGetStatusString(s) + ") in " + what + " at " + file + ":" +
           std::to_string(line));
}
#define LLMSYS_LT_CHECK(op, expr)                                      \
  do {                                                                 \
    if (const cublasStatus_t s_ = (expr); s_ != CUBLAS_STATUS_SUCCESS) \
      ::llmsys::cuda::LtFail((op), s_, #expr, __FILE__, __LINE__);     \
  } while (0)

// The types of one GEMM: storage, compute and alpha/beta.
struct LtTypes {
  cudaDataType_t data;
  cublasComputeType_t compute;
  cudaDataType_t scale;  // CUDA_R_32F (alpha, beta float) or CUDA_R_64F
};

LtTypes LtTypesOf(DType t, bool tf32) {
  switch (t) {
    case DType::kF64:
      return {CUDA_R_64F, CUBLAS_COMPUTE_64F, CUDA_R_64F};
    case DType::kBF16:
      return {CUDA_R_16BF, CUBLAS_COMPUTE_32F, CUDA_R_32F};
    case DType::kF16:
      return {CUDA_R_16F, CUBLAS_COMPUTE_32F, CUDA_R_32F};
    default:
      return {CUDA_R_32F,
              tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F,
              CUDA_R_32F};
  }
}

// The largest power of two up to 256 that divides the address (cuBLASLt's
// default assumption is 256; views into a tensor may be less aligned).
int64_t AlignmentOf(const void* p) {
  const auto v = reinterpret_cast<uintptr_t>(p);
  int64_t a = 256;
  while (a > 1 && v % static_cast<uintptr_t>(a) != 0) a /= 2;
  return a;
}

// What cuBLASLt needs from the host for one call.
struct LtContext {
  cublasLtHandle_t handle;
  void* workspace;
  size_t workspace_bytes;
  cudaStream_t stream;
};

LtContext LtContextOf(const llmsys_op_call_t& call) {
  const cudaStream_t stream = Stream(call);  // fails without a CUDA context
  const llmsys_call_context_t* ctx = call.ctx;
  if (!LLMSYS_CONTEXT_HAS(ctx, blas_workspace_bytes) ||
      ctx->blas_lt_handle == nullptr)
    Fail(LLMSYS_STATUS_FAILED_PRECONDITION,
         std::string(call.op) +
             ": the host passed no cuBLASLt handle "
             "(llmsys_call_context_t.blas_lt_handle, ABI 1.4); the cuBLAS "
             "components need a host of ABI 1.4 or later that owns a "
             "cuBLASLt handle for the device");
  LtContext c;
  c.handle = static_cast<cublasLtHandle_t>(ctx->blas_lt_handle);
  c.workspace = ctx->blas_workspace;
  c.workspace_bytes =
      ctx->blas_workspace != nullptr ? ctx->blas_workspace_bytes : 0;
  c.stream = stream;
  return c;
}

// The component instance's cache of cuBLASLt descriptors and algorithm
// choices, one entry per problem. Thread-safety: one thread at a time (the
// instance's).
class LtMatmuls {
 public:
  LtMatmuls() = default;
  LtMatmuls(const LtMatmuls&) = delete;
  LtMatmuls& operator=(const LtMatmuls&) = delete;

  // D = op(A) op(B) (+ D when `accumulate`), with `epilogue` (bias: `bias`
  // is read; bias gradient: `bias` is written). Returns false, having
  // enqueued nothing, when cuBLASLt has no algorithm for this problem;
  // throws on any other error.
  bool Run(const llmsys_op_call_t& call, const LtContext& lt,
           const LtTypes& types, const LtGemm& g, const void* a, const void* b,
           void* d, bool accumulate,
           cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_DEFAULT,
           void* bias = nullptr) {
    const bool uses_bias = epilogue != CUBLASLT_EPILOGUE_DEFAULT;
    const Key key = {
        g.m,
        g.n,
        g.k,
        g.trans_a,
        g.trans_b,
        g.a.rows,
        g.a.cols,
        g.a.ld,
        g.a.stride,
        g.b.rows,
        g.b.cols,
        g.b.ld,
        g.b.stride,
        g.d.rows,
        g.d.cols,
        g.d.ld,
        g.d.stride,
        g.batch,
        static_cast<int64_t>(types.data),
        static_cast<int64_t>(types.compute),
        static_cast<int64_t>(epilogue),
        accumulate,
        AlignmentOf(a),
        AlignmentOf(b),
        AlignmentOf(d),
        uses_bias ? AlignmentOf(bias) : 0,
        static_cast<int64_t>(lt.workspace_bytes),
        static_cast<int64_t>(reinterpret_cast<uintptr_t>(lt.handle))};
    auto it = cache_.find(key);
    if (it == cache_.end()) {
      if (cache_.size() >= kMaxEntries) cache_.clear();
      it = cache_
               .emplace(key, Plan(call, lt, types, g, a, b, d, accumulate,
                                  epilogue, bias))
               .first;
    }
    Entry& e = *it->second;
    last_status_ = e.status;
    if (!e.supported) return false;
    if (uses_bias)
      LLMSYS_LT_CHECK(call.op, cublasLtMatmulDescSetAttribute(
                                   e.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                   &bias, sizeof(bias)));
    const float alpha_f = 1.0f, beta_f = accumulate ? 1.0f : 0.0f;
    const double alpha_d = 1.0, beta_d = accumulate ? 1.0 : 0.0;
    const bool f64 = types.scale == CUDA_R_64F;
    const cublasStatus_t s = cublasLtMatmul(
        lt.handle, e.desc, f64 ? static_cast<const void*>(&alpha_d) : &alpha_f,
        a, e.a, b, e.b, f64 ? static_cast<const void*>(&beta_d) : &beta_f, d,
        e.d, d, e.d, &e.algo, lt.workspace, lt.workspace_bytes, lt.stream);
    if (s == CUBLAS_STATUS_NOT_SUPPORTED && uses_bias) {
      e.supported = false;  // the caller computes the epilogue itself
      e.status = last_status_ = s;
      return false;
    }
    if (s != CUBLAS_STATUS_SUCCESS)
      LtFail(call.op, s, "cublasLtMatmul", __FILE__, __LINE__);
    return true;
  }

  // Why the last Run that returned false had no algorithm.
  cublasStatus_t LastStatus() const { return last_status_; }

 private:
  static constexpr size_t kMaxEntries = 512;
  using Key = std::array<int64_t, 28>;

  struct Entry {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
    cublasLtMatmulAlgo_t algo{};
    bool supported = false;
    cublasStatus_t status = CUBLAS_STATUS_SUCCESS;  // why not, when not
    Entry() = default;
    Entry(const Entry&) = delete;
    Entry& operator=(const Entry&) = delete;
    ~Entry() {  // host-side frees; statuses are of no use here
      if (desc != nullptr) cublasLtMatmulDescDestroy(desc);
      if (a != nullptr) cublasLtMatrixLayoutDestroy(a);
      if (b != nullptr) cublasLtMatrixLayoutDestroy(b);
      if (d != nullptr) cublasLtMatrixLayoutDestroy(d);
    }
  };

  static void Layout(const char* op, cudaDataType_t type, const LtLayout& l,
                     int64_t batch, cublasLtMatrixLayout_t* out) {
    LLMSYS_LT_CHECK(
        op, cublasLtMatrixLayoutCreate(out, type, static_cast<uint64_t>(l.rows),
                                       static_cast<uint64_t>(l.cols), l.ld));
    if (batch > 1) {
      const int32_t count = static_cast<int32_t>(batch);
      const int64_t stride = l.stride;
      LLMSYS_LT_CHECK(op, cublasLtMatrixLayoutSetAttribute(
                              *out, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count,
                              sizeof(count)));
      LLMSYS_LT_CHECK(op, cublasLtMatrixLayoutSetAttribute(
                              *out, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                              &stride, sizeof(stride)));
    }
  }

  // Creates the descriptors and asks the heuristic for the best algorithm
  // within the workspace and the pointers' alignment.
  static std::unique_ptr<Entry> Plan(const llmsys_op_call_t& call,
                                     const LtContext& lt, const LtTypes& types,
                                     const LtGemm& g, const void* a,
                                     const void* b, const void* d,
                                     bool accumulate,
                                     cublasLtEpilogue_t epilogue, void* bias) {
    const char* op = call.op;
    auto e = std::make_unique<Entry>();
    LLMSYS_LT_CHECK(
        op, cublasLtMatmulDescCreate(&e->desc, types.compute, types.scale));
    const cublasOperation_t ta = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t tb = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    LLMSYS_LT_CHECK(
        op, cublasLtMatmulDescSetAttribute(e->desc, CUBLASLT_MATMUL_DESC_TRANSA,
                                           &ta, sizeof(ta)));
    LLMSYS_LT_CHECK(
        op, cublasLtMatmulDescSetAttribute(e->desc, CUBLASLT_MATMUL_DESC_TRANSB,
                                           &tb, sizeof(tb)));
    LLMSYS_LT_CHECK(op, cublasLtMatmulDescSetAttribute(
                            e->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue,
                            sizeof(epilogue)));
    if (epilogue != CUBLASLT_EPILOGUE_DEFAULT)  // the heuristic reads its
      LLMSYS_LT_CHECK(op, cublasLtMatmulDescSetAttribute(  // alignment
                              e->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                              sizeof(bias)));
    Layout(op, types.data, g.a, g.batch, &e->a);
    Layout(op, types.data, g.b, g.batch, &e->b);
    Layout(op, types.data, g.d, g.batch, &e->d);

    cublasLtMatmulPreference_t pref = nullptr;
    LLMSYS_LT_CHECK(op, cublasLtMatmulPreferenceCreate(&pref));
    struct PrefGuard {
      cublasLtMatmulPreference_t p;
      ~PrefGuard() { cublasLtMatmulPreferenceDestroy(p); }
    } guard{pref};
    const uint64_t ws = lt.workspace_bytes;
    LLMSYS_LT_CHECK(op, cublasLtMatmulPreferenceSetAttribute(
                            pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                            sizeof(ws)));
    const uint32_t align_a = static_cast<uint32_t>(AlignmentOf(a));
    const uint32_t align_b = static_cast<uint32_t>(AlignmentOf(b));
    const uint32_t align_d = static_cast<uint32_t>(AlignmentOf(d));
    LLMSYS_LT_CHECK(op, cublasLtMatmulPreferenceSetAttribute(
                            pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                            &align_a, sizeof(align_a)));
    LLMSYS_LT_CHECK(op, cublasLtMatmulPreferenceSetAttribute(
                            pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                            &align_b, sizeof(align_b)));
    LLMSYS_LT_CHECK(op, cublasLtMatmulPreferenceSetAttribute(
                            pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                            &align_d, sizeof(align_d)));
    LLMSYS_LT_CHECK(op, cublasLtMatmulPreferenceSetAttribute(
                            pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                            &align_d, sizeof(align_d)));
    (void)accumulate;  // part of the key: C = D is read only then

    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    const cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(
        lt.handle, e->desc, e->a, e->b, e->d, e->d, pref, 1, &result, &found);
    // No algorithm (an epilogue or a stride-0 batch this cuBLASLt does not
    // take, say): the caller has another way, or reports the status.
    if (s == CUBLAS_STATUS_NOT_SUPPORTED || s == CUBLAS_STATUS_INVALID_VALUE ||
        (s == CUBLAS_STATUS_SUCCESS &&
         (found < 1 || result.state != CUBLAS_STATUS_SUCCESS))) {
      e->supported = false;
      e->status = s != CUBLAS_STATUS_SUCCESS ? s
                  : found < 1                ? CUBLAS_STATUS_NOT_SUPPORTED
                                             : result.state;
      return e;
    }
    if (s != CUBLAS_STATUS_SUCCESS)
      LtFail(op, s, "cublasLtMatmulAlgoGetHeuristic", __FILE__, __LINE__);
    e->algo = result.algo;
    e->supported = true;
    return e;
  }

  std::map<Key, std::unique_ptr<Entry>> cache_;
  cublasStatus_t last_status_ = CUBLAS_STATUS_SUCCESS;
};

// ---- running plans ----

// "no algorithm for column-major m=.. n=.. k=.. batch=.. (...): STATUS",
// for messages.
std::string NoAlgorithm(const LtGemm& g, const LtTypes& types,
                        cublasStatus_t why) {
  return "cuBLASLt has no algorithm for column-major m=" + std::to_string(g.m) +
         " n=" + std::to_string(g.n) + " k=" + std::to_string(g.k) +
         " batch=" + std::to_string(g.batch) +
         (g.trans_a ? " op(A)=T" : " op(A)=N") +
         (g.trans_b ? " op(B)=T" : " op(B)=N") +
         " lda=" + std::to_string(g.a.ld) + " ldb=" + std::to_string(g.b.ld) +
         " ldd=" + std::to_string(g.d.ld) + " (cudaDataType " +
         std::to_string(static_cast<int>(types.data)) + ", cublasComputeType " +
         std::to_string(static_cast<int>(types.compute)) +
         "): " + cublasLtGetStatusName(why);
}

// cuBLASLt counts rows, columns and batches in int32.
void CheckLimits(const llmsys_op_call_t& call, const RowGemm& g) {
  constexpr int64_t kMax = INT32_MAX;
  if (g.rows > kMax || g.cols > kMax || g.inner > kMax || g.batch > kMax)
    ArgFail(call, "a GEMM of " + std::to_string(g.rows) + " x " +
                      std::to_string(g.cols) + " x " + std::to_string(g.inner) +
                      " (batch " + std::to_string(g.batch) +
                      ") exceeds cuBLASLt's int32 dims");
}

// One plain GEMM (no epilogue): C (element pointer `c`) = op(X) op(Y), plus
// C when `accumulate`. A batch cuBLASLt has no algorithm for (a broadcast
// stride 0, say) runs one matrix at a time.
void RunGemm(const llmsys_op_call_t& call, LtMatmuls& lts, const LtContext& lt,
             const LtTypes& types, int64_t elem_bytes, const RowGemm& g,
             const void* x, const void* y, void* c, bool accumulate = false) {
  CheckLimits(call, g);
  const LtGemm lg = LtGemmOf(g);
  if (lts.Run(call, lt, types, lg, y, x, c, accumulate)) return;
  if (g.batch > 1) {
    RowGemm one = g;
    one.batch = 1;
    one.stride_x = one.stride_y = one.stride_c = 0;
    const LtGemm l1 = LtGemmOf(one);
    for (int64_t i = 0; i < g.batch; ++i) {
      const auto* xi =
          static_cast<const char*>(x) + i * g.stride_x * elem_bytes;
      const auto* yi =
          static_cast<const char*>(y) + i * g.stride_y * elem_bytes;
      char* ci = static_cast<char*>(c) + i * g.stride_c * elem_bytes;
      if (!lts.Run(call, lt, types, l1, yi, xi, ci, accumulate))
        Fail(LLMSYS_STATUS_UNIMPLEMENTED,
             std::string(call.op) + ": " +
                 NoAlgorithm(l1, types, lts.LastStatus()));
    }
    return;
  }
  Fail(LLMSYS_STATUS_UNIMPLEMENTED,
       std::string(call.op) + ": " + NoAlgorithm(lg, types, lts.LastStatus()));
}

void ZeroTensor(const llmsys_op_call_t& call, DLTensor* t) {
  if (t == nullptr) return;
  LLMSYS_CUDA_CHECK(
      call, LaunchMatmulZero(llmsys_tensor_data(t),
                             llmsys_tensor_numel(t) * ((t->dtype.bits + 7) / 8),
                             Stream(call)));
}

sdk::ParamSpec PrecisionParam() {
  return sdk::ParamSpec::String(
             "precision", "highest",
             "float32 GEMMs: 'highest' computes in float32 "
             "(CUBLAS_COMPUTE_32F), 'tf32' lets tensor cores round inputs to "
             "TF32 (CUBLAS_COMPUTE_32F_FAST_TF32); other dtypes ignore it")
      .Choices("highest|tf32");
}

bool Tf32Of(const sdk::Params& p) {
  const std::string precision = p.String("precision");
  if (precision != "highest" && precision != "tf32")
    Fail(LLMSYS_STATUS_INVALID_ARGUMENT,
         "precision must be 'highest' or 'tf32', got '" + precision + "'");
  return precision == "tf32";
}

// ---- the components ----

class Matmul final : public PlannedMatmul {
 public:
  static sdk::Info Describe() {
    return {.id = "matmul.cublas",
            .description =
                "batched matmul on cuBLASLt (transposes in the GEMM, "
                "broadcast batches as stride-0 batched GEMMs, a shared "
                "weight folded into one GEMM; broadcast gradients summed "
                "deterministically)",
            .device_type = kDLCUDA,
            .params = {PrecisionParam()},
            .op = "matmul",
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS,
            .priority = 100};
  }
  explicit Matmul(const sdk::Params& p) : tf32_(Tf32Of(p)) {}

 private:
  void ZeroGrad(const llmsys_op_call_t& call, DLTensor* t) override {
    ZeroTensor(call, t);
  }

  void RunPlan(const llmsys_op_call_t& call, DType t, const MatmulPlan& plan,
               const void* a, const void* b, const void* g,
               DLTensor* target) override {
    const LtContext lt = LtContextOf(call);
    const LtTypes types = LtTypesOf(t, tf32_);
    RunPlanWith(
        call, t, plan, a, b, g, target,
        [&](const RowGemm& gemm, const void* x, const void* y, void* c) {
          RunGemm(call, lts_, lt, types, DTypeBytes(t), gemm, x, y, c);
        },
        [&](void* out, const void* work, const BroadcastReduce& spec) {
          LLMSYS_CUDA_CHECK(
              call, LaunchBroadcastReduce(t, out, work, spec, lt.stream));
        });
  }

  bool tf32_;
  LtMatmuls lts_;
};

class Linear : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "linear.cublas",
            .description =
                "x @ weight^T + bias as one cuBLASLt GEMM with the bias "
                "epilogue; backward: two GEMMs, the bias gradient from the "
                "weight GEMM's BGRADB epilogue",
            .device_type = kDLCUDA,
            .params = {PrecisionParam()},
            .op = "linear",
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS,
            .priority = 100};
  }
  explicit Linear(const sdk::Params& p) : tf32_(Tf32Of(p)) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    return reference::LinearOutputs(call);
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const reference::LinearDims d = reference::LinearDimsOf(call);
    const DType t = DTypeOf(call, call.inputs[0]->dtype);
    const void* x = llmsys_tensor_data(call.inputs[0]);          // (rows, K)
    const void* w = llmsys_tensor_data(call.inputs[1]);          // (M, K)
    void* bias = d.bias != nullptr ? llmsys_tensor_data(d.bias)  // (M)
                                   : nullptr;
    DLTensor* out_t = outputs[0];
    void* out = llmsys_tensor_data(out_t);  // (rows, M)
    if (d.rows * d.m == 0) return;
    const LtContext lt = LtContextOf(call);
    if (d.k == 0) {  // an empty sum: the bias rows, or zeros
      if (bias != nullptr)
        LLMSYS_CUDA_CHECK(call,
                          LaunchBiasRows(t, out, bias, d.rows, d.m, lt.stream));
      else
        ZeroTensor(call, out_t);
      return;
    }
    const LtTypes types = LtTypesOf(t, tf32_);
    const RowGemm g = LinearForwardGemm(d.rows, d.k, d.m);
    CheckLimits(call, g);
    if (bias != nullptr) {
      // D (M, rows) column-major: the bias runs along D's rows, as
      // CUBLASLT_EPILOGUE_BIAS wants.
      if (lts_.Run(call, lt, types, LtGemmOf(g), w, x, out, false,
                   CUBLASLT_EPILOGUE_BIAS, bias))
        return;
      // No bias epilogue for this dtype: start from the bias rows, add.
      LLMSYS_CUDA_CHECK(call,
                        LaunchBiasRows(t, out, bias, d.rows, d.m, lt.stream));
      RunGemm(call, lts_, lt, types, DTypeBytes(t), g, x, w, out, true);
      return;
    }
    RunGemm(call, lts_, lt, types, DTypeBytes(t), g, x, w, out);
  }

  void Backward(const llmsys_op_call_t& call, const DLTensor* const*,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    DLTensor* gx = grad_inputs[0];  // (rows, K)
    DLTensor* gw = grad_inputs[1];  // (M, K)
    DLTensor* gbias = call.num_inputs > 2 ? grad_inputs[2] : nullptr;  // (M)
    const DLTensor* g = grad_outputs[0];  // (rows, M)
    if (g == nullptr) {
      ZeroTensor(call, gx);
      ZeroTensor(call, gw);
      ZeroTensor(call, gbias);
      return;
    }
    const reference::LinearDims d = reference::LinearDimsOf(call);
    const DType t = DTypeOf(call, call.inputs[0]->dtype);
    const int64_t es = DTypeBytes(t);
    const LtContext lt = LtContextOf(call);
    const LtTypes types = LtTypesOf(t, tf32_);
    const void* x = llmsys_tensor_data(call.inputs[0]);  // (rows, K)
    const void* w = llmsys_tensor_data(call.inputs[1]);  // (M, K)
    const void* pg = llmsys_tensor_data(g);              // (rows, M)
    if (gx != nullptr && d.rows * d.k > 0) {
      if (d.m == 0)
        ZeroTensor(call, gx);
      else  // gx = g @ w
        RunGemm(call, lts_, lt, types, es, LinearGradXGemm(d.rows, d.k, d.m),
                pg, w, llmsys_tensor_data(gx));
    }
    bool bias_done = false;
    if (gw != nullptr && d.m * d.k > 0) {
      if (d.rows == 0) {
        ZeroTensor(call, gw);
      } else {  // gw = g^T @ x, and the bias gradient on the way
        const RowGemm gg = LinearGradWGemm(d.rows, d.k, d.m);
        CheckLimits(call, gg);
        if (gbias != nullptr)
          bias_done = lts_.Run(
              call, lt, types, LtGemmOf(gg), x, pg, llmsys_tensor_data(gw),
              false, CUBLASLT_EPILOGUE_BGRADB, llmsys_tensor_data(gbias));
        if (!bias_done)
          RunGemm(call, lts_, lt, types, es, gg, pg, x, llmsys_tensor_data(gw));
      }
    }
    if (gbias != nullptr && !bias_done && d.m > 0) {
      if (d.rows == 0)
        ZeroTensor(call, gbias);
      else  // the column sums of g, in a fixed order
        LLMSYS_CUDA_CHECK(
            call, LaunchBroadcastReduce(t, llmsys_tensor_data(gbias), pg,
                                        ColumnSums(d.rows, d.m), lt.stream));
    }
  }

 private:
  bool tf32_;
  LtMatmuls lts_;
};

}  // namespace

void RegisterMatmul(sdk::Registry& registry) {
  registry.Add<Matmul>();
  registry.Add<Linear>();
}

}  // namespace llmsys::cuda
