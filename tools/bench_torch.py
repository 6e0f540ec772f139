#!/usr/bin/python3
"""The PyTorch peer of `llmsys bench train`: the same GPT, the same step.

Builds experiments/bench/gpt_s.toml's and gpt_m.toml's models in PyTorch
exactly as plugins/models/gpt builds them (GPT-2 pre-LN blocks, learned
positions, biases, tanh GELU, tied embeddings, no dropout; same parameter
count, printed), trains them with AdamW (weight decay on the matrices only,
gradient clipping at 1.0, as our trainer does) and prints ms/step (median and
mean), tokens/s, the peak RSS and, for S, greedy generation of 256 tokens with
a key/value cache (past the 128 positions, the last 128 tokens are re-run
from position 0, as framework/generate/decoding.h does).

The token ids are random: the cost of a step does not depend on them.

Run with Debian's python3-torch:
    /usr/bin/python3 tools/bench_torch.py --threads 2 [--config s|m|both]
    /usr/bin/python3 tools/bench_torch.py --smoke     # a few seconds, tests
OPENBLAS_CORETYPE (SkylakeX with AVX-512, Haswell with AVX2, as llmsys picks
it), OMP_WAIT_POLICY=PASSIVE and OPENBLAS_THREAD_TIMEOUT=12 are set before torch
is imported unless the environment sets them (docs/performance.md, "Training
speed vs PyTorch").
"""

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time



def blas_core():
    """The OpenBLAS core llmsys names for this CPU (tools/llmsys/main.cc)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((l.split(":", 1)[1].split() for l in f
                          if l.startswith("flags")), [])
    except OSError:
        return None
    if "avx512f" in flags and "avx512bw" in flags:
        return "SkylakeX"  # SkylakeX kernels on a CPU without them: SIGILL
    if "avx2" in flags and "fma" in flags:
        return "Haswell"
    return None


if blas_core() is not None:
    os.environ.setdefault("OPENBLAS_CORETYPE", blas_core())
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# The same OpenBLAS idle-thread timeout llmsys sets (tools/llmsys/main.cc).
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "12")

import torch  # noqa: E402  (after the environment above)
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# name: vocab, layers, d_model, heads, sequence, batch (experiments/bench/).
CONFIGS = {
    "s": dict(vocab=260, n_layer=4, n_embd=256, n_head=4, block=128, batch=16),
    "m": dict(vocab=8192, n_layer=6, n_embd=384, n_head=6, block=256, batch=8),
}


class Block(nn.Module):
    def __init__(self, c, n_head):
        super().__init__()
        self.n_head = n_head
        self.ln1 = nn.LayerNorm(c, eps=1e-5)
        self.qkv = nn.Linear(c, 3 * c)
        self.attn_proj = nn.Linear(c, c)
        self.ln2 = nn.LayerNorm(c, eps=1e-5)
        self.fc = nn.Linear(c, 4 * c)
        self.mlp_proj = nn.Linear(4 * c, c)

    def attention(self, x, cache):
        b, t, c = x.shape
        h, d = self.n_head, c // self.n_head
        q, k, v = self.qkv(x).split(c, dim=2)
        q = q.view(b, t, h, d).transpose(1, 2)
        k = k.view(b, t, h, d).transpose(1, 2)
        v = v.view(b, t, h, d).transpose(1, 2)
        if cache is not None and cache[0] is not None:
            k = torch.cat([cache[0], k], dim=2)
            v = torch.cat([cache[1], v], dim=2)
        m = k.shape[2]
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d))
        mask = torch.ones(t, m, dtype=torch.bool).tril(diagonal=m - t)
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, c)
        return self.attn_proj(y), (k, v)

    def forward(self, x, cache=None):
        a, new_cache = self.attention(self.ln1(x), cache)
        x = x + a
        x = x + self.mlp_proj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))
        return x, new_cache


class Gpt(nn.Module):
    def __init__(self, vocab, n_layer, n_embd, n_head, block, **_):
        super().__init__()
        self.block = block
        self.wte = nn.Embedding(vocab, n_embd)
        self.wpe = nn.Embedding(block, n_embd)
        self.blocks = nn.ModuleList(Block(n_embd, n_head) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd, eps=1e-5)
        for name, p in self.named_parameters():  # GPT-2 initialization
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif "ln" in name:
                nn.init.ones_(p)
            elif name.endswith("proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * n_layer))
            else:
                nn.init.normal_(p, 0.0, 0.02)

    def forward(self, tokens, past=0, caches=None):
        t = tokens.shape[1]
        pos = torch.arange(past, past + t)
        x = self.wte(tokens) + self.wpe(pos)
        new_caches = []
        for i, blk in enumerate(self.blocks):
            x, c = blk(x, caches[i] if caches else None)
            new_caches.append(c)
        return self.ln_f(x) @ self.wte.weight.t(), new_caches


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def generate(model, n_tokens):
    """Greedy, key/value cache; the tokens/s of n_tokens from one token."""
    seq = [10]
    with torch.inference_mode():
        start = time.perf_counter()
        logits, caches = model(torch.tensor([seq]))
        past = len(seq)
        for _ in range(n_tokens):
            seq.append(int(logits[0, -1].argmax()))
            if past + 1 > model.block:  # outgrown: the last block, from 0
                window = seq[-model.block:]
                logits, caches = model(torch.tensor([window]))
                past = len(window)
            else:
                logits, caches = model(torch.tensor([seq[-1:]]), past, caches)
                past += 1
        seconds = time.perf_counter() - start
    return n_tokens / seconds


def bench(name, cfg, steps, warmup, gen_tokens):
    torch.manual_seed(1337)
    model = Gpt(**cfg)
    n_params = sum(p.numel() for p in model.parameters())
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    gen = torch.Generator().manual_seed(1)
    seq = cfg.get("seq", cfg["block"])  # tokens per sequence
    times = []
    for step in range(warmup + steps):
        batch = torch.randint(0, cfg["vocab"], (cfg["batch"], seq + 1),
                              generator=gen)
        start = time.perf_counter()
        logits, _ = model(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, cfg["vocab"]),
                               batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step >= warmup:
            times.append(time.perf_counter() - start)
    tokens_per_step = cfg["batch"] * seq
    mean = statistics.mean(times)
    row = {
        "config": name,
        "parameters": n_params,
        "threads": torch.get_num_threads(),
        "tokens_per_step": tokens_per_step,
        "ms_per_step_median": statistics.median(times) * 1e3,
        "ms_per_step_mean": mean * 1e3,
        "tokens_per_second": tokens_per_step / mean,
        "peak_memory_bytes": peak_rss_bytes(),
        "loss": float(loss),
    }
    if gen_tokens > 0:
        row["generate_tokens"] = gen_tokens
        row["generate_tokens_per_second"] = generate(model, gen_tokens)
    return row


def print_row(row):
    print(f"torch {row['config'].upper()}: {row['parameters']} parameters, "
          f"{row['threads']} threads, {row['tokens_per_step']} tokens/step")
    print(f"  ms/step (median) {row['ms_per_step_median']:.2f}, "
          f"(mean) {row['ms_per_step_mean']:.2f}, "
          f"tokens/s {row['tokens_per_second']:.0f}, "
          f"peak memory {row['peak_memory_bytes'] / 2**20:.1f} MiB")
    if "generate_tokens" in row:
        print(f"  generate {row['generate_tokens']} tokens: "
              f"{row['generate_tokens_per_second']:.1f} tokens/s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", choices=["s", "m", "both"], default="both")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--generate", type=int, default=256,
                    help="greedy tokens for S (0: none)")
    ap.add_argument("--smoke", action="store_true",
                    help="2 x 16 tokens, 1 step: checks the script, not speed")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.steps < 1 or a.warmup < 0 or a.threads < 1 or a.generate < 0:
        ap.error("--steps >= 1, --warmup >= 0, --threads >= 1, --generate >= 0")
    torch.set_num_threads(a.threads)
    names = ["s", "m"] if a.config == "both" else [a.config]
    rows = []
    if a.config == "both" and not a.smoke:
        # One process per config, so that each peak RSS is its own.
        for n in names:
            cmd = [sys.executable, __file__, "--config", n, "--json",
                   "--steps", str(a.steps), "--warmup", str(a.warmup),
                   "--threads", str(a.threads), "--generate", str(a.generate)]
            rows += json.loads(subprocess.run(
                cmd, check=True, stdout=subprocess.PIPE).stdout)
    for n in names if not rows else []:
        cfg = dict(CONFIGS[n])
        steps, warmup, gen = a.steps, a.warmup, (a.generate if n == "s" else 0)
        if a.smoke:  # the real model (its parameter count), tiny batches
            cfg_run = dict(cfg, batch=2, seq=16)
            steps, warmup, gen = 1, 0, (8 if n == "s" else 0)
            row = bench(n, cfg_run, steps, warmup, gen)
            row["smoke"] = True
        else:
            row = bench(n, cfg, steps, warmup, gen)
        rows.append(row)
    if a.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            print_row(row)


if __name__ == "__main__":
    main()
