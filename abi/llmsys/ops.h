/* llmsys/ops.h — op contracts: what an op computes, declared once.
 *
 * An op contract is a signature plus a doc string. Every implementation of
 * the op (in any plugin, for any device) takes the same inputs and
 * attributes and produces the same outputs; the reference CPU
 * implementation is the oracle the conformance suite checks the others
 * against. The host parses signatures to validate calls and fill defaults.
 *
 * Signature grammar (after PyTorch's native_functions.yaml):
 *   signature := NAME "(" [arg {"," arg}] ")" "->" outputs
 *   arg       := TYPE NAME ["=" DEFAULT]
 *   TYPE      := "Tensor" | "Tensor?" (optional) | "Tensor[]" (variadic, at
 *                most one, among the tensor inputs)
 *              | "bool" | "int" | "float" | "str" | "int[]" | "float[]"
 *   outputs   := OUT | "(" OUT {"," OUT} ")"
 *   OUT       := "Tensor" NAME | "Tensor(aux)" NAME
 * An auxiliary output (saved statistics, a mask) is not differentiable: the
 * host gives it no gradient and backward receives NULL for it.
 *   DEFAULT   := true | false | an integer | a float | 'text' | [n, ...]
 * Tensor arguments come first, then attributes; an attribute without a
 * default is required. NAMEs are [a-z][a-z0-9_]*.
 *
 * The standard contracts are listed once, in LLMSYS_STANDARD_OPS; a plugin
 * declares a new one (say `rope`) by listing an llmsys_op_contract_t
 * under LLMSYS_KIND_OP_CONTRACT in its entry. Shapes use the letters
 * B batch, H heads, N query length, M key length, D head size, V vocabulary.
 *
 * Dtypes: float ops take float32 or float64 (bf16/fp16 where an
 * implementation says so) and every float input of a call has the same
 * dtype; index inputs (embedding indices, cross_entropy targets) are int32
 * or int64; masks and conditions are uint8, int32, int64 or float (non-zero
 * is true). Random numbers come from llmsys/random.h.
 *
 * Thread-safety: plain data. Ownership: the declaring plugin owns the
 * strings until its deinit() returns. */
#ifndef LLMSYS_OPS_H_
#define LLMSYS_OPS_H_

#include <stdint.h>

/* Grows only at its end. */
typedef struct llmsys_op_contract {
  uint32_t struct_size;
  const char* signature;
  const char* doc;
} llmsys_op_contract_t;

/* X(signature, doc) for every standard op, in a fixed order. */
#define LLMSYS_STANDARD_OPS(X)                                               \
  X("matmul(Tensor a, Tensor b, bool transpose_a=false, "                    \
    "bool transpose_b=false) -> Tensor out",                                 \
    "Batched matrix product op(a) @ op(b) over the last two dims; leading "  \
    "dims broadcast.")                                                       \
  X("add(Tensor a, Tensor b) -> Tensor out", "a + b, broadcasting.")         \
  X("sub(Tensor a, Tensor b) -> Tensor out", "a - b, broadcasting.")         \
  X("mul(Tensor a, Tensor b) -> Tensor out", "a * b, broadcasting.")         \
  X("div(Tensor a, Tensor b) -> Tensor out", "a / b, broadcasting.")         \
  X("neg(Tensor x) -> Tensor out", "-x.")                                    \
  X("exp(Tensor x) -> Tensor out", "e^x.")                                   \
  X("log(Tensor x) -> Tensor out", "Natural logarithm.")                     \
  X("pow(Tensor x, float exponent) -> Tensor out", "x^exponent.")            \
  X("sqrt(Tensor x) -> Tensor out", "Square root.")                          \
  X("tanh(Tensor x) -> Tensor out", "Hyperbolic tangent.")                   \
  X("sigmoid(Tensor x) -> Tensor out", "1 / (1 + e^-x).")                    \
  X("relu(Tensor x) -> Tensor out", "max(x, 0).")                            \
  X("gelu(Tensor x, str approximate='none') -> Tensor out",                  \
    "GELU; approximate 'none' is the erf form, 'tanh' the tanh form.")       \
  X("sum(Tensor x, int[] dims=[], bool keepdim=false) -> Tensor out",        \
    "Sum over dims (all dims when empty).")                                  \
  X("mean(Tensor x, int[] dims=[], bool keepdim=false) -> Tensor out",       \
    "Mean over dims (all dims when empty).")                                 \
  X("max(Tensor x, int[] dims=[], bool keepdim=false) -> Tensor out",        \
    "Maximum over dims; the gradient goes to the first maximal element.")    \
  X("contiguous(Tensor x) -> Tensor out", "A compact row-major copy.")       \
  X("concat(Tensor[] xs, int dim=0) -> Tensor out",                          \
    "Concatenation along dim.")                                              \
  X("where(Tensor cond, Tensor a, Tensor b) -> Tensor out",                  \
    "cond ? a : b elementwise, broadcasting; cond is bool-like (int or "     \
    "float, non-zero is true).")                                             \
  X("masked_fill(Tensor x, Tensor mask, float value) -> Tensor out",         \
    "x with value where mask (broadcast to x) is non-zero.")                 \
  X("embedding(Tensor weight, Tensor indices) -> Tensor out",                \
    "weight (V, C) rows gathered at int indices (...) -> (..., C).")         \
  X("layer_norm(Tensor x, Tensor? weight, Tensor? bias, float eps=1e-5) -> " \
    "(Tensor out, Tensor(aux) mean, Tensor(aux) rstd)",                      \
    "Normalizes the last dim; mean and rstd (x.shape[:-1]) are saved for "   \
    "backward.")                                                             \
  X("rms_norm(Tensor x, Tensor? weight, float eps=1e-6) -> "                 \
    "(Tensor out, Tensor(aux) rstd)",                                        \
    "x / sqrt(mean(x^2) + eps) * weight over the last dim.")                 \
  X("softmax(Tensor x, int dim=-1) -> Tensor out", "Softmax along dim.")     \
  X("log_softmax(Tensor x, int dim=-1) -> Tensor out",                       \
    "Log-softmax along dim.")                                                \
  X("cross_entropy(Tensor logits, Tensor targets, int ignore_index=-100, "   \
    "float label_smoothing=0.0, str reduction='mean') -> Tensor loss",       \
    "Fused log-softmax + NLL; logits (..., V), int targets (...); "          \
    "reduction 'mean' (over non-ignored), 'sum' or 'none'.")                 \
  X("dropout(Tensor x, float p=0.5) -> (Tensor out, Tensor(aux) mask)",      \
    "Zeroes elements with probability p and scales the rest by 1/(1-p); "    \
    "mask (uint8, x's shape, 1 = kept) keeps element i iff "                 \
    "llmsys_random_uniform(seed, offset, i) >= p (llmsys/random.h).")        \
  X("attention(Tensor q, Tensor k, Tensor v, Tensor? key_padding_mask, "     \
    "bool causal=false, float dropout_p=0.0, float scale=0.0) -> "           \
    "(Tensor out, Tensor(aux) lse)",                                         \
    "Scaled dot-product attention: q (B, H, N, D), k and v (B, H, M, D), "   \
    "key_padding_mask (B, M) non-zero = masked; scale 0 means 1/sqrt(D); "   \
    "lse (B, H, N) is the row log-sum-exp of the scaled, masked scores "     \
    "(float32 for 16-bit q, else q's dtype); a row with every key masked "   \
    "gives out 0 and lse -inf. Dropout keeps "                               \
    "probability (b, h, n, m) iff llmsys_random_uniform(seed, offset, i) "   \
    ">= dropout_p, i its row-major index in (B, H, N, M), and scales kept "  \
    "ones by 1/(1-dropout_p).")                                              \
  X("ctc_loss(Tensor log_probs, Tensor targets, Tensor input_lengths, "      \
    "Tensor target_lengths, int blank=0, str reduction='mean', "             \
    "bool zero_infinity=true) -> Tensor loss",                               \
    "Connectionist temporal classification loss (PyTorch's ctc_loss): "      \
    "log_probs (T, N, C), int targets (N, S) padded, input_lengths (N) "     \
    "and target_lengths (N); loss_n = -log sum over the alignments of "      \
    "the first input_lengths[n] frames that collapse (merge repeats, "       \
    "drop blanks) to targets[n, :target_lengths[n]]; reduction 'none' "      \
    "(N), 'sum', or 'mean' = mean_n loss_n / max(target_lengths[n], 1); "    \
    "zero_infinity gives an infeasible sample loss 0 and gradient 0. The "   \
    "gradient is d loss / d log_probs (targets and lengths have none).")     \
  X("linear(Tensor x, Tensor weight, Tensor? bias) -> Tensor out",           \
    "x (..., K) @ weight^T + bias: weight (M, K) (torch.nn.Linear's "        \
    "layout), bias (M) optional; out (..., M). Since ABI 1.3.")

/* Indices of the standard ops, in the order of LLMSYS_STANDARD_OPS. */
typedef enum llmsys_standard_op {
  LLMSYS_OP_MATMUL,
  LLMSYS_OP_ADD,
  LLMSYS_OP_SUB,
  LLMSYS_OP_MUL,
  LLMSYS_OP_DIV,
  LLMSYS_OP_NEG,
  LLMSYS_OP_EXP,
  LLMSYS_OP_LOG,
  LLMSYS_OP_POW,
  LLMSYS_OP_SQRT,
  LLMSYS_OP_TANH,
  LLMSYS_OP_SIGMOID,
  LLMSYS_OP_RELU,
  LLMSYS_OP_GELU,
  LLMSYS_OP_SUM,
  LLMSYS_OP_MEAN,
  LLMSYS_OP_MAX,
  LLMSYS_OP_CONTIGUOUS,
  LLMSYS_OP_CONCAT,
  LLMSYS_OP_WHERE,
  LLMSYS_OP_MASKED_FILL,
  LLMSYS_OP_EMBEDDING,
  LLMSYS_OP_LAYER_NORM,
  LLMSYS_OP_RMS_NORM,
  LLMSYS_OP_SOFTMAX,
  LLMSYS_OP_LOG_SOFTMAX,
  LLMSYS_OP_CROSS_ENTROPY,
  LLMSYS_OP_DROPOUT,
  LLMSYS_OP_ATTENTION,
  LLMSYS_OP_CTC_LOSS,
  LLMSYS_OP_LINEAR, /* since 1.3 */
  LLMSYS_OP_COUNT
} llmsys_standard_op_t;

/* Keeps the enum in step with the table (C11 and C++). */
#define LLMSYS_OPS_COUNT_ONE_(sig, doc) +1
#ifdef __cplusplus
static_assert(LLMSYS_OP_COUNT == 0 LLMSYS_STANDARD_OPS(LLMSYS_OPS_COUNT_ONE_),
              "LLMSYS_STANDARD_OPS and llmsys_standard_op_t disagree");
#else
_Static_assert(LLMSYS_OP_COUNT == 0 LLMSYS_STANDARD_OPS(LLMSYS_OPS_COUNT_ONE_),
               "LLMSYS_STANDARD_OPS and llmsys_standard_op_t disagree");
#endif

#endif /* LLMSYS_OPS_H_ */
