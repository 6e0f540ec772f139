#!/usr/bin/python3
"""Recomputes the reference operators' results with PyTorch (float64).

    /usr/bin/python3 compare_with_torch.py reference_dump.json

The dump (written by reference_dump) holds, for every standard op and every
conformance case, the inputs, the reference's outputs, random output
gradients and the reference's input gradients. Each case is recomputed with
torch primitives and torch.autograd (loss = sum over non-aux outputs of
(w * out).sum()); every output (aux ones too) and every input gradient must
agree to |a - b| / max(1, |b|) < 1e-9, infinities and NaN exactly.

Exit status: 0 all pass, 1 any mismatch (or a case the reference failed),
77 when torch cannot be imported (a skip for ctest), 2 on a usage error.
"""

import json
import math
import sys

try:
    import torch
    import torch.nn.functional as F
except Exception as e:  # pylint: disable=broad-except
    print(f"compare_with_torch: skipped, cannot import torch: {e}")
    sys.exit(77)

TOLERANCE = 1e-9

# ---- Philox4x32-10 (llmsys/random.h), integer arithmetic ----

M32 = 0xFFFFFFFF


def philox4x32_10(c, k):
    c0, c1, c2, c3 = c
    k0, k1 = k
    for _ in range(10):
        p0 = 0xD2511F53 * c0
        p1 = 0xCD9E8D57 * c2
        hi0, lo0 = (p0 >> 32) & M32, p0 & M32
        hi1, lo1 = (p1 >> 32) & M32, p1 & M32
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0 = (k0 + 0x9E3779B9) & M32
        k1 = (k1 + 0xBB67AE85) & M32
    return (c0, c1, c2, c3)


def random_uniform(seed, offset, n):
    """llmsys_random_uniform(seed, offset, i) for i in [0, n), as floats
    (exact: multiples of 2^-24)."""
    key = (seed & M32, (seed >> 32) & M32)
    out = []
    for block in range((n + 3) // 4):
        counter = (offset + block) & 0xFFFFFFFFFFFFFFFF
        words = philox4x32_10((counter & M32, counter >> 32, 0, 0), key)
        for w in words:
            out.append((w >> 8) * 2.0**-24)
    return out[:n]


def keep_mask(rng, shape, p):
    """Bool tensor of `shape`: element i kept iff uniform(i) >= p."""
    n = math.prod(shape)
    u = random_uniform(int(rng["seed"]), int(rng["offset"]), n)
    return torch.tensor([x >= p for x in u], dtype=torch.bool).reshape(shape)


# ---- JSON <-> tensors ----

DTYPES = {
    "float64": torch.float64,
    "float32": torch.float32,
    "int64": torch.int64,
    "int32": torch.int32,
    "uint8": torch.uint8,
}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}


def number(v):
    return float(v) if isinstance(v, str) else v


def to_tensor(rec):
    if rec is None:
        return None
    dtype = DTYPES[rec["dtype"]]
    values = [number(v) for v in rec["values"]]
    return torch.tensor(values, dtype=dtype).reshape(rec["shape"])


# ---- the ops, in torch ----

DEFAULTS = {
    "matmul": {"transpose_a": False, "transpose_b": False},
    "pow": {},
    "gelu": {"approximate": "none"},
    "sum": {"dims": [], "keepdim": False},
    "mean": {"dims": [], "keepdim": False},
    "max": {"dims": [], "keepdim": False},
    "concat": {"dim": 0},
    "masked_fill": {},
    "layer_norm": {"eps": 1e-5},
    "rms_norm": {"eps": 1e-6},
    "softmax": {"dim": -1},
    "log_softmax": {"dim": -1},
    "cross_entropy": {"ignore_index": -100, "label_smoothing": 0.0,
                      "reduction": "mean"},
    "dropout": {"p": 0.5},
    "attention": {"causal": False, "dropout_p": 0.0, "scale": 0.0},
    "ctc_loss": {"blank": 0, "reduction": "mean", "zero_infinity": True},
}


def reduce_dims(x, a):
    dims = [d % x.dim() for d in a["dims"]] if a["dims"] else list(
        range(x.dim()))
    return sorted(set(dims))


def op_max(x, a):
    """Max over dims; the gradient goes to the first maximal element (in
    row-major order of the reduced dims), as torch.max(dim) does."""
    dims = reduce_dims(x, a)
    rest = [d for d in range(x.dim()) if d not in dims]
    y = x.permute(rest + dims)
    y = y.reshape([x.shape[d] for d in rest] + [-1])
    out = y.max(dim=-1).values
    if a["keepdim"]:
        out = out.reshape([1 if d in dims else x.shape[d]
                           for d in range(x.dim())])
    return [out]


def op_sum_mean(fn):
    def run(x, a):
        dims = reduce_dims(x, a)
        if not dims:  # a 0-d tensor
            return [x.clone()]
        return [fn(x, dim=dims, keepdim=a["keepdim"])]
    return run


def op_layer_norm(x, w, b, a):
    c = x.shape[-1]
    out, mean, rstd = torch.ops.aten.native_layer_norm(x, [c], w, b, a["eps"])
    return [out, mean.reshape(x.shape[:-1]), rstd.reshape(x.shape[:-1])]


def op_rms_norm(x, w, a):
    rstd = torch.rsqrt(x.pow(2).mean(dim=-1) + a["eps"])
    out = x * rstd.unsqueeze(-1)
    if w is not None:
        out = out * w
    return [out, rstd]


def op_cross_entropy(logits, targets, a):
    v = logits.shape[-1]
    loss = F.cross_entropy(logits.reshape(-1, v), targets.reshape(-1).long(),
                           ignore_index=a["ignore_index"],
                           label_smoothing=a["label_smoothing"],
                           reduction=a["reduction"])
    if a["reduction"] == "none":
        loss = loss.reshape(targets.shape)
    return [loss]


def op_ctc_loss(log_probs, targets, input_lengths, target_lengths, a):
    """F.ctc_loss, plus a term that is exactly 0 in value: torch's CTC
    backward returns d loss / d log_probs + exp(log_probs) on each sample's
    frames (the gradient through a log_softmax before it), the reference the
    plain derivative, so the extra exp(log_probs) is taken off (not for
    samples zero_infinity zeroes, whose gradient torch makes 0)."""
    il, tl = input_lengths.long(), target_lengths.long()
    kw = {"blank": a["blank"], "zero_infinity": a["zero_infinity"]}
    loss = F.ctc_loss(log_probs, targets.long(), il, tl,
                      reduction=a["reduction"], **kw)
    with torch.no_grad():
        raw = F.ctc_loss(log_probs, targets.long(), il, tl, reduction="none",
                         blank=a["blank"], zero_infinity=False)
    frames = torch.arange(log_probs.shape[0]).reshape(-1, 1) < il  # (T, N)
    e = log_probs.exp()
    extra = ((e - e.detach()) * frames.unsqueeze(-1)).sum(dim=(0, 2))  # (N)
    if a["zero_infinity"]:
        extra = torch.where(torch.isinf(raw), torch.zeros_like(extra), extra)
    if a["reduction"] == "sum":
        extra = extra.sum()
    elif a["reduction"] == "mean":
        extra = (extra / tl.clamp(min=1)).mean()
    return [loss - extra]


def op_dropout(x, a, rng):
    p = a["p"]
    keep = keep_mask(rng, list(x.shape), p)
    out = x * keep.to(x.dtype) / (1.0 - p) if p < 1 else x * 0
    return [out, keep.to(torch.uint8)]


def op_attention(q, k, v, kpm, a, rng):
    b, h, n, d = q.shape
    m = k.shape[2]
    scale = a["scale"] if a["scale"] != 0 else 1.0 / math.sqrt(d)
    scores = torch.matmul(q, k.transpose(-1, -2)) * scale
    masked = torch.zeros(b, h, n, m, dtype=torch.bool)
    if kpm is not None:
        masked = masked | (kpm != 0).reshape(b, 1, 1, m)
    if a["causal"]:
        # Key j is allowed for query i iff j <= i.
        allowed = torch.arange(m).reshape(1, m) <= torch.arange(n).reshape(
            n, 1)
        masked = masked | ~allowed
    scores = scores.masked_fill(masked, -math.inf)
    lse = torch.logsumexp(scores.detach(), dim=-1)
    full = masked.all(dim=-1, keepdim=True)
    probs = torch.softmax(scores.masked_fill(full, 0.0), dim=-1)
    probs = probs.masked_fill(full, 0.0)
    p = a["dropout_p"]
    if p > 0:
        keep = keep_mask(rng, [b, h, n, m], p)
        probs = probs * keep.to(probs.dtype) / (1.0 - p)
    return [torch.matmul(probs, v), lse]


def compute(op, inputs, a, rng):
    """The op's outputs, in contract order."""
    x = inputs
    if op == "matmul":
        ta = x[0].transpose(-1, -2) if a["transpose_a"] else x[0]
        tb = x[1].transpose(-1, -2) if a["transpose_b"] else x[1]
        return [torch.matmul(ta, tb)]
    if op == "linear":
        return [torch.nn.functional.linear(x[0], x[1], x[2])]
    binary = {"add": torch.add, "sub": torch.sub, "mul": torch.mul,
              "div": torch.div}
    if op in binary:
        return [binary[op](x[0], x[1])]
    unary = {"neg": torch.neg, "exp": torch.exp, "log": torch.log,
             "sqrt": torch.sqrt, "tanh": torch.tanh,
             "sigmoid": torch.sigmoid, "relu": torch.relu}
    if op in unary:
        return [unary[op](x[0])]
    if op == "pow":
        return [torch.pow(x[0], a["exponent"])]
    if op == "gelu":
        return [F.gelu(x[0], approximate=a["approximate"])]
    if op == "sum":
        return op_sum_mean(torch.sum)(x[0], a)
    if op == "mean":
        return op_sum_mean(torch.mean)(x[0], a)
    if op == "max":
        return op_max(x[0], a)
    if op == "contiguous":
        return [x[0].contiguous() * 1]
    if op == "concat":
        return [torch.cat(x, dim=a["dim"])]
    if op == "where":
        return [torch.where(x[0] != 0, x[1], x[2])]
    if op == "masked_fill":
        mask = (x[1] != 0).expand(x[0].shape)
        return [x[0].masked_fill(mask, a["value"])]
    if op == "embedding":
        return [F.embedding(x[1].long(), x[0])]
    if op == "layer_norm":
        return op_layer_norm(x[0], x[1], x[2], a)
    if op == "rms_norm":
        return op_rms_norm(x[0], x[1], a)
    if op == "softmax":
        return [torch.softmax(x[0], dim=a["dim"])]
    if op == "log_softmax":
        return [torch.log_softmax(x[0], dim=a["dim"])]
    if op == "cross_entropy":
        return op_cross_entropy(x[0], x[1], a)
    if op == "ctc_loss":
        return op_ctc_loss(x[0], x[1], x[2], x[3], a)
    if op == "dropout":
        return op_dropout(x[0], a, rng)
    if op == "attention":
        return op_attention(x[0], x[1], x[2], x[3], a, rng)
    raise NotImplementedError(f"no torch version of op '{op}'")


# ---- comparison ----


def rel_error(a, b):
    """Worst |a - b| / max(1, |b|) over two same-shape float64 tensors;
    infinities and NaN must match exactly. Returns (error, index)."""
    a = a.to(torch.float64).flatten()
    b = b.to(torch.float64).flatten()
    if a.numel() == 0:
        return 0.0, None
    both_nan = torch.isnan(a) & torch.isnan(b)
    same_inf = torch.isinf(a) & torch.isinf(b) & (a == b)
    special = torch.isnan(a) | torch.isnan(b) | torch.isinf(a) | torch.isinf(b)
    err = (a - b).abs() / torch.clamp(b.abs(), min=1.0)
    err = torch.where(special, torch.full_like(err, math.inf), err)
    err = torch.where(both_nan | same_inf, torch.zeros_like(err), err)
    i = int(torch.argmax(err))
    return float(err[i]), i


def describe(t, i):
    """Row-major index of flat element i of t: "[1, 2]"."""
    index = []
    for size in reversed(t.shape):
        index.append(i % size)
        i //= size
    return "[" + ", ".join(str(j) for j in reversed(index)) + "]"


def check_case(rec):
    """(forward error, gradient error, [problems])."""
    op = rec["op"]
    problems = []
    if "error" in rec:
        return math.inf, math.inf, [f"the reference failed: {rec['error']}"]
    attrs = dict(DEFAULTS.get(op, {}))
    attrs.update(rec["attrs"])
    attrs = {k: number(v) if isinstance(v, str) and v in ("inf", "-inf",
                                                         "nan") else v
             for k, v in attrs.items()}
    # The contract's defaults must be the ones PyTorch's semantics assume.
    for name, value in rec.get("all_attrs", {}).items():
        if name in attrs and attrs[name] != value:
            problems.append(f"attribute '{name}': the reference used {value!r}"
                            f", torch {attrs[name]!r}")
    inputs = [to_tensor(t) for t in rec["inputs"]]
    for t in inputs:
        if t is not None and t.is_floating_point():
            t.requires_grad_(True)
    in_names = rec.get("input_names") or [
        f"input {i}" for i in range(len(inputs))]
    out_names = rec.get("output_names") or [
        f"output {i}" for i in range(len(rec["outputs"]))]
    outputs = compute(op, inputs, attrs, rec["rng"])
    want = [to_tensor(t) for t in rec["outputs"]]
    fwd = 0.0
    if len(outputs) != len(want):
        problems.append(f"{len(want)} outputs, torch gives {len(outputs)}")
    for i, (got, ref) in enumerate(zip(outputs, want)):
        got = got.detach()
        if list(got.shape) != list(ref.shape) or got.dtype != ref.dtype:
            problems.append(
                f"output '{out_names[i]}': reference {DTYPE_NAMES.get(ref.dtype)} "
                f"{list(ref.shape)}, torch {DTYPE_NAMES.get(got.dtype)} "
                f"{list(got.shape)}")
            fwd = math.inf
            continue
        e, at = rel_error(ref, got)
        fwd = max(fwd, e)
        if not e < TOLERANCE:
            problems.append(
                f"output '{out_names[i]}' differs at {describe(got, at)}: reference "
                f"{ref.flatten()[at].item()!r}, torch "
                f"{got.flatten()[at].item()!r} (error {e:.3g})")

    # Backward: loss = sum of (w * out).sum() over the non-aux outputs.
    aux = rec["output_aux"]
    loss = None
    for out, w, is_aux in zip(outputs, rec["output_grads"], aux):
        if is_aux or w is None or not out.requires_grad:
            continue
        term = (to_tensor(w) * out).sum()
        loss = term if loss is None else loss + term
    float_inputs = [t for t in inputs
                    if t is not None and t.is_floating_point()]
    grads = [None] * len(float_inputs)
    if loss is not None and float_inputs:
        grads = torch.autograd.grad(loss, float_inputs, allow_unused=True)
    grad_of = {id(t): g for t, g in zip(float_inputs, grads)}
    bwd = 0.0
    for i, (t, ref) in enumerate(zip(inputs, rec["input_grads"])):
        if t is None or not t.is_floating_point():
            if ref is not None:
                problems.append(f"'{in_names[i]}': the reference gives a gradient "
                                f"of a non-float or absent input")
            continue
        got = grad_of[id(t)]
        if got is None:
            got = torch.zeros_like(t)
        if ref is None:
            problems.append(f"'{in_names[i]}': the reference gives no "
                            f"gradient")
            bwd = math.inf
            continue
        ref = to_tensor(ref)
        if list(got.shape) != list(ref.shape):
            problems.append(f"gradient of '{in_names[i]}': reference "
                            f"{list(ref.shape)}, torch {list(got.shape)}")
            bwd = math.inf
            continue
        e, at = rel_error(ref, got)
        bwd = max(bwd, e)
        if not e < TOLERANCE:
            problems.append(
                f"gradient of '{in_names[i]}' differs at {describe(got, at)}: "
                f"reference {ref.flatten()[at].item()!r}, torch "
                f"{got.flatten()[at].item()!r} (error {e:.3g})")
    return fwd, bwd, problems


def main(argv):
    if len(argv) != 2:
        print("usage: compare_with_torch.py REFERENCE_DUMP.json",
              file=sys.stderr)
        return 2
    torch.set_default_dtype(torch.float64)
    with open(argv[1], encoding="utf-8") as f:
        dump = json.load(f)
    table = {}  # op -> [cases, forward error, gradient error, failures]
    details = []
    for rec in dump["cases"]:
        op = rec["op"]
        row = table.setdefault(op, [0, 0.0, 0.0, 0])
        try:
            fwd, bwd, problems = check_case(rec)
        except Exception as e:  # pylint: disable=broad-except
            fwd, bwd, problems = math.inf, math.inf, [
                f"{type(e).__name__}: {e}"]
        row[0] += 1
        row[1] = max(row[1], fwd)
        row[2] = max(row[2], bwd)
        if problems:
            row[3] += 1
            details.append((op, rec.get("case", ""), problems))
    print(f"torch {torch.__version__}, float64, tolerance {TOLERANCE:g} "
          f"(|a - b| / max(1, |b|))\n")
    print(f"{'op':<14} {'cases':>5} {'forward':>10} {'gradient':>10}  result")
    for op, (n, fwd, bwd, bad) in table.items():
        result = "ok" if bad == 0 else f"FAIL ({bad} of {n})"
        print(f"{op:<14} {n:>5} {fwd:>10.2e} {bwd:>10.2e}  {result}")
    total = sum(r[0] for r in table.values())
    failed = sum(r[3] for r in table.values())
    print(f"\n{len(table)} ops, {total} cases, {failed} failed")
    for op, label, problems in details:
        print(f"\n{op} \"{label}\":")
        for p in problems:
            print(f"  {p}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
