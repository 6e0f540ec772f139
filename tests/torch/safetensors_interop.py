#!/usr/bin/python3
"""Safetensors interop between llmsys (C++) and PyTorch, both ways.

    /usr/bin/python3 safetensors_interop.py INTEROP_EXE WORK_DIR

1. INTEROP_EXE write: llmsys writes a file with every dtype; it is read
   here by a small reader of the format (json + torch.frombuffer, and numpy
   for the dtypes numpy has), its layout is checked (8-aligned header, no
   gaps, every tensor aligned to its element size), and its values are
   compared with the JSON llmsys wrote beside it. When the `safetensors`
   package can be imported, safetensors.torch.load_file must agree too.
2. Here, torch tensors are written in the format by a small writer (in the
   order given, so some tensors are unaligned), and INTEROP_EXE read must
   find the same values.

Exit status: 0 pass, 1 any mismatch, 77 when torch (or numpy) cannot be
imported (a skip for ctest), 2 on a usage error.
"""

import json
import math
import os
import subprocess
import sys

try:
    import numpy as np
    import torch
except Exception as e:  # pylint: disable=broad-except
    print(f"safetensors_interop: skipped, cannot import torch/numpy: {e}")
    sys.exit(77)

DTYPES = {
    "F32": torch.float32, "F64": torch.float64, "BF16": torch.bfloat16,
    "F16": torch.float16, "I32": torch.int32, "I64": torch.int64,
    "U8": torch.uint8, "BOOL": torch.bool,
}
NUMPY = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I32": "<i4", "I64": "<i8",
         "U8": "u1", "BOOL": "?"}
SIZES = {"F32": 4, "F64": 8, "BF16": 2, "F16": 2, "I32": 4, "I64": 8,
         "U8": 1, "BOOL": 1}
FAILURES = []


def read_safetensors(path):
    """The whole reader: {name: tensor}, metadata, and the raw header."""
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, e in header.items():
        begin, end = e["data_offsets"]
        buf = bytearray(data[8 + n + begin:8 + n + end])
        dtype = DTYPES[e["dtype"]]
        flat = (torch.frombuffer(buf, dtype=dtype) if buf
                else torch.empty(0, dtype=dtype))
        tensors[name] = flat.reshape(e["shape"])
        if e["dtype"] in NUMPY:  # a second, independent decoding
            arr = np.frombuffer(data, dtype=NUMPY[e["dtype"]],
                                count=(end - begin) // SIZES[e["dtype"]],
                                offset=8 + n + begin).reshape(e["shape"])
            check(np.array_equal(arr, tensors[name].numpy(), equal_nan=True)
                  if arr.dtype.kind == "f"
                  else np.array_equal(arr, tensors[name].numpy()),
                  f"{name}: numpy and torch decode differently")
    return tensors, metadata, (n, header, len(data))


def write_safetensors(path, tensors, metadata):
    """The whole writer: tensors in the order given, header space-padded."""
    header = {"__metadata__": metadata} if metadata else {}
    names = {v: k for k, v in DTYPES.items()}
    blobs, offset = [], 0
    for name, t in tensors.items():
        t = t.contiguous()
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + b"".join(blobs))


def check(ok, what):
    if not ok:
        FAILURES.append(what)
        print(f"safetensors_interop: MISMATCH {what}")


def float_of(v):
    return {"nan": math.nan, "inf": math.inf, "-inf": -math.inf,
            "-0.0": -0.0}.get(v, v) if isinstance(v, str) else float(v)


def json_value(v, is_float):
    if not is_float:
        return int(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0 and math.copysign(1, v) < 0:
        return "-0.0"
    return v


def same(a, b):
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1, a) == math.copysign(1, b)


def compare(name, t, want):
    check(t.dtype == DTYPES[want["dtype"]], f"{name}: dtype {t.dtype}")
    check(list(t.shape) == want["shape"], f"{name}: shape {list(t.shape)}")
    if t.is_floating_point():
        got = t.double().reshape(-1).tolist()
        ok = len(got) == len(want["values"]) and all(
            same(a, float_of(b)) for a, b in zip(got, want["values"]))
    else:
        got = t.long().reshape(-1).tolist()
        ok = got == [int(v) for v in want["values"]]
    check(ok, f"{name}: values {got} vs {want['values']}")


def cpp_to_python(exe, work):
    path, expected_path = (os.path.join(work, "cpp.safetensors"),
                           os.path.join(work, "cpp.json"))
    subprocess.run([exe, "write", path, expected_path], check=True)
    with open(expected_path) as f:
        expected = json.load(f)
    tensors, metadata, (n, header, size) = read_safetensors(path)
    check(metadata == expected["metadata"], f"metadata {metadata}")
    check(sorted(tensors) == sorted(expected["tensors"]),
          f"names {sorted(tensors)}")
    for name, want in expected["tensors"].items():
        if name in tensors:
            compare(name, tensors[name], want)
    # Layout: an 8-aligned header, then tensors that tile the data section,
    # each starting at a multiple of its element size.
    check(n % 8 == 0, f"header length {n} is not a multiple of 8")
    spans = sorted((e["data_offsets"], e["dtype"], k) for k, e in header.items())
    end = 0
    for (b, e), dtype, name in spans:
        check(b == end, f"{name}: starts at {b}, previous ends at {end}")
        check(b % SIZES[dtype] == 0, f"{name}: {dtype} data at {b} unaligned")
        end = e
    check(8 + n + end == size, f"file is {size} bytes, tensors end at {8 + n + end}")
    try:
        from safetensors.torch import load_file  # pylint: disable=import-outside-toplevel
    except Exception:  # pylint: disable=broad-except
        print("safetensors_interop: (the safetensors package is not installed; "
              "checked with the reader here only)")
    else:
        loaded = load_file(path)
        check(sorted(loaded) == sorted(tensors), "safetensors.torch names")
        for name, t in loaded.items():
            compare(f"safetensors.torch {name}", t, expected["tensors"][name])
    print(f"safetensors_interop: C++ -> Python: {len(tensors)} tensors checked")


def python_to_cpp(exe, work):
    g = torch.Generator().manual_seed(7)
    wide = torch.randn(3, 5, generator=g, dtype=torch.float64)
    tensors = {
        # A 3-byte tensor first: everything after it is unaligned.
        "mask": torch.tensor([True, False, True]),
        "u8": torch.tensor([0, 7, 255], dtype=torch.uint8),
        "f32": torch.tensor([1.5, -math.inf, math.nan, -0.0, 1e-40]),
        "f64.transposed": wide.t(),
        "bf16": torch.randn(2, 3, generator=g).bfloat16(),
        "f16": torch.tensor([65504.0, -6.1e-5, 0.1], dtype=torch.float16),
        "i32": torch.tensor([-2**31, 2**31 - 1, 3], dtype=torch.int32),
        "i64": torch.tensor([-2**63, 2**63 - 1, 2**53 + 1], dtype=torch.int64),
        "scalar": torch.tensor(-4.25, dtype=torch.float64),
        "empty": torch.zeros(2, 0, dtype=torch.float16),
    }
    metadata = {"format": "pt", "source": "torch " + torch.__version__}
    path, expected_path = (os.path.join(work, "py.safetensors"),
                           os.path.join(work, "py.json"))
    write_safetensors(path, tensors, metadata)
    expected = {"metadata": metadata, "tensors": {}}
    names = {v: k for k, v in DTYPES.items()}
    for name, t in tensors.items():
        is_float = t.is_floating_point()
        flat = (t.double() if is_float else t.long()).reshape(-1).tolist()
        expected["tensors"][name] = {
            "dtype": names[t.dtype], "shape": list(t.shape),
            "values": [json_value(v, is_float) for v in flat]}
    with open(expected_path, "w") as f:
        json.dump(expected, f)
    # Our own reader agrees with what was written (a check of the writer).
    back, _, _ = read_safetensors(path)
    for name, t in tensors.items():
        compare(f"python round trip {name}", back[name],
                expected["tensors"][name])
    result = subprocess.run([exe, "read", path, expected_path], check=False)
    check(result.returncode == 0,
          f"llmsys could not read the file PyTorch wrote (exit {result.returncode})")
    print(f"safetensors_interop: Python -> C++: {len(tensors)} tensors written")


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    exe, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    cpp_to_python(exe, work)
    python_to_cpp(exe, work)
    if FAILURES:
        print(f"safetensors_interop: {len(FAILURES)} mismatches")
        return 1
    print("safetensors_interop: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
