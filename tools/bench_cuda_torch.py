#!/usr/bin/env python3
"""PyTorch's figures for the shapes `llmsys bench cuda` times, on the same GPU.

Writes one JSON record per measurement (bench, shape, dtype, ms, tflops, gbs)
with the same keys as `llmsys bench cuda --json`, so tools/gpu_bench_table.py
can set them side by side. GEMM is torch.matmul; flash attention is
scaled_dot_product_attention restricted to its flash backend; LayerNorm and
softmax are eager torch.nn.functional calls; the copy is Tensor.copy_.

Usage: python3 tools/bench_cuda_torch.py --json torch.json [--quick]
"""
import argparse
import json
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    try:
        import torch
        import torch.nn.functional as F
    except ImportError as e:
        sys.exit(f"bench_cuda_torch.py: PyTorch is not installed: {e}")
    if not torch.cuda.is_available():
        sys.exit("bench_cuda_torch.py: torch sees no CUDA GPU")
    dev = torch.device("cuda:0")
    torch.backends.cuda.matmul.allow_tf32 = False
    records = []

    def time_ms(fn):
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(
            enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        once = start.elapsed_time(end)
        reps = max(3, min(1000, int(200.0 / max(once, 1e-3))))
        start.record()
        for _ in range(reps):
            fn()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / reps

    def add(bench, shape, dtype, ms, tflops=0.0, gbs=0.0):
        r = dict(bench=bench, shape=shape, dtype=dtype, ms=ms, tflops=tflops,
                 gbs=gbs)
        print(f"{bench:<11} {shape:<26} {dtype:<9} {ms:10.4f} ms "
              f"{tflops if tflops else gbs:10.1f} "
              f"{'TFLOP/s' if tflops else 'GB/s'}", flush=True)
        records.append(r)

    gemms = [(4096, 4096, 4096)]
    if not args.quick:
        gemms += [(8192, 2304, 768), (8192, 768, 768), (8192, 3072, 768),
                  (8192, 768, 3072), (8192, 50304, 768)]
    for m, n, k in gemms:
        a = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
        b = torch.randn(k, n, device=dev, dtype=torch.bfloat16)
        ms = time_ms(lambda: torch.matmul(a, b))
        add("gemm", f"{m}x{n}x{k}", "bfloat16", ms, 2.0 * m * n * k / ms / 1e9)

    lengths = [1024] if args.quick else [512, 1024, 2048, 4096, 8192]
    from torch.nn.attention import SDPBackend, sdpa_kernel
    for d in (64, 128):
        for causal in (False, True):
            for n in lengths:
                b, h = 16384 // n, 2048 // d
                q, k, v = (torch.randn(b, h, n, d, device=dev,
                                       dtype=torch.bfloat16,
                                       requires_grad=True) for _ in range(3))
                g = torch.randn(b, h, n, d, device=dev, dtype=torch.bfloat16)
                shape = f"{b}x{h}x{n}x{d}" + (" causal" if causal else "")
                flops = 4.0 * b * h * n * n * d * (0.5 if causal else 1.0)
                with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                    fwd = time_ms(lambda: F.scaled_dot_product_attention(
                        q, k, v, is_causal=causal))
                    out = F.scaled_dot_product_attention(q, k, v,
                                                         is_causal=causal)
                    bwd = time_ms(lambda: torch.autograd.grad(
                        out, (q, k, v), g, retain_graph=True))
                add("flash_fwd", shape, "bfloat16", fwd, flops / fwd / 1e9)
                add("flash_bwd", shape, "bfloat16", bwd,
                    2.5 * flops / bwd / 1e9)

    for dtype, name in ((torch.float32, "float32"),
                        (torch.bfloat16, "bfloat16")):
        for bench, rows, cols in (("contiguous", 16384, 4096),
                                  ("layer_norm", 16384, 4096),
                                  ("layer_norm", 65536, 768),
                                  ("softmax", 16384, 4096)):
            x = torch.randn(rows, cols, device=dev, dtype=dtype)
            w = torch.randn(cols, device=dev, dtype=dtype)
            bias = torch.randn(cols, device=dev, dtype=dtype)
            y = torch.empty_like(x)
            fn = {
                "contiguous": lambda: y.copy_(x),
                "layer_norm": lambda: F.layer_norm(x, (cols,), w, bias),
                "softmax": lambda: torch.softmax(x, dim=-1),
            }[bench]
            ms = time_ms(fn)
            nbytes = 2.0 * rows * cols * x.element_size()
            add(bench, f"{rows}x{cols}", name, ms, gbs=nbytes / ms / 1e6)

    with open(args.json, "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
