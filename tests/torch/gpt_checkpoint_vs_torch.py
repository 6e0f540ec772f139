"""A trained run, re-evaluated in PyTorch from its checkpoint alone.

Usage: gpt_checkpoint_vs_torch.py RUN_DIR

Reads RUN_DIR/checkpoint/model.safetensors with a small safetensors reader
(json + torch.frombuffer: the `safetensors` package is not in Debian),
rebuilds the `gpt` model in plain PyTorch from RUN_DIR/config.toml's sizes,
recomputes the validation loss over the same windows llmsys evaluates
(the last val_fraction of the text, char tokenizer from tokenizer.json,
non-overlapping windows of block_size, [train] eval_batches batches), and
compares it with RUN_DIR/summary.json's val_loss. Exit 0 when they agree
within float32 rounding, 1 otherwise, 77 when torch is missing.
"""

import json
import math
import os
import struct
import sys
import tomllib

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("gpt_checkpoint_vs_torch: skipped, no torch")
    sys.exit(77)

DTYPES = {"F32": torch.float32, "F64": torch.float64}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        t = torch.frombuffer(bytearray(body[begin:end]),
                             dtype=DTYPES[entry["dtype"]])
        tensors[name] = t.reshape(entry["shape"])
    return tensors, header.get("__metadata__", {})


def gpt_logits(w, cfg, tokens):
    B, T = tokens.shape
    C, H = cfg["n_embd"], cfg["n_head"]
    eps = cfg.get("layer_norm_eps", 1e-5)
    x = w["wte.weight"][tokens] + w["wpe.weight"][:T]

    def ln(x, prefix):
        return F.layer_norm(x, (C,), w[prefix + ".weight"],
                            w.get(prefix + ".bias"), eps)

    def linear(x, prefix):
        return F.linear(x, w[prefix + ".weight"], w.get(prefix + ".bias"))

    causal = torch.ones(T, T, dtype=torch.bool).tril()
    for i in range(cfg["n_layer"]):
        p = f"blocks.{i}"
        qkv = linear(ln(x, p + ".ln1"), p + ".attn.qkv")
        q, k, v = (qkv[..., j * C:(j + 1) * C].reshape(B, T, H, C // H)
                   .transpose(1, 2) for j in range(3))
        s = q @ k.transpose(-1, -2) / math.sqrt(C // H)
        s = s.masked_fill(~causal, float("-inf"))
        y = (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, C)
        x = x + linear(y, p + ".attn.proj")
        h = F.gelu(linear(ln(x, p + ".ln2"), p + ".mlp.fc"), approximate="tanh")
        x = x + linear(h, p + ".mlp.proj")
    x = ln(x, "ln_f")
    head = w.get("lm_head.weight", w["wte.weight"])
    return x @ head.t()


def main():
    run = sys.argv[1]
    with open(os.path.join(run, "config.toml"), "rb") as f:
        cfg = tomllib.load(f)
    with open(os.path.join(run, "tokenizer.json")) as f:
        tok = json.load(f)
    with open(os.path.join(run, "summary.json")) as f:
        summary = json.load(f)
    if tok["type"] != "char":
        print("gpt_checkpoint_vs_torch: only the char tokenizer is rebuilt here")
        return 1
    w, meta = read_safetensors(os.path.join(run, "checkpoint",
                                            "model.safetensors"))
    w = {k: v.double() for k, v in w.items()}
    with open(cfg["data"]["train"], "rb") as f:
        text = f.read().decode("utf-8")
    n = len(text.encode("utf-8"))
    cut = int((1 - cfg["data"]["val_fraction"]) * n)
    val = text.encode("utf-8")[cut:].decode("utf-8")
    ids = {t: i + 4 for i, t in enumerate(tok["tokens"])}
    val_ids = torch.tensor([ids.get(c, 3) for c in val])
    B, T = cfg["train"]["batch_size"], cfg["train"]["block_size"]
    windows = (len(val_ids) - 1) // T
    losses = []
    for b in range(cfg["train"]["eval_batches"]):
        starts = list(range(b * B, min((b + 1) * B, windows)))
        if not starts:
            break
        x = torch.stack([val_ids[s * T:s * T + T] for s in starts])
        y = torch.stack([val_ids[s * T + 1:s * T + T + 1] for s in starts])
        with torch.no_grad():
            logits = gpt_logits(w, cfg["model"], x)
        losses.append(F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                      y.reshape(-1)).item())
    torch_loss = sum(losses) / len(losses)
    ours = summary["val_loss"]
    print(f"checkpoint step {meta.get('step')}: validation loss llmsys "
          f"{ours:.6f}, PyTorch {torch_loss:.6f}")
    if abs(torch_loss - ours) > 1e-4 * max(1.0, abs(ours)):
        print("gpt_checkpoint_vs_torch: MISMATCH")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
