#!/usr/bin/python3
"""Recomputes the built-in optimizers' trajectories with torch.optim (float64).

    /usr/bin/python3 optimizers_vs_torch.py optimizers_vs_torch.json

The dump (written by optimizers_vs_torch_dump) holds, for each configuration
of sgd, adam, adamw and lion, the parameters the plugin was created with,
the initial float64 parameters, every step's gradients and learning rate,
the no_decay mask, and the parameters and state tensors after every step.
Each run is replayed with torch.optim.SGD / Adam / AdamW (foreach=False, the
no-decay parameters in a second group with weight_decay 0, the group lr set
before every step) and with Lion written from its formula (Chen et al. 2023;
torch has no Lion):

    c = beta1 * m + (1 - beta1) * g
    p = p - lr * (sign(c) + weight_decay * p)
    m = beta2 * m + (1 - beta2) * g

Every parameter and state element after every step must agree to a relative
error |a - b| / max(|a|, |b|) < 1e-10 (0 when both are 0). It also checks
that the plugin's defaults are torch.optim's (and the paper's for Lion).

Exit status: 0 all pass, 1 any mismatch, 77 when torch cannot be imported
(a skip for ctest), 2 on a usage error.
"""

import inspect
import json
import sys

try:
    import torch
except Exception as e:  # pylint: disable=broad-except
    print(f"optimizers_vs_torch: skipped, cannot import torch: {e}")
    sys.exit(77)

TOLERANCE = 1e-10


def tensor(t):
    return torch.tensor(t["values"], dtype=torch.float64).reshape(t["shape"])


def rel_error(a, b):
    """Worst |a - b| / max(|a|, |b|) over the elements (0 where both are 0)."""
    scale = torch.maximum(a.abs(), b.abs())
    diff = (a - b).abs()
    if not bool(torch.isfinite(a).all() and torch.isfinite(b).all()):
        return float("inf")
    rel = torch.where(scale > 0, diff / torch.where(scale > 0, scale, 1.0),
                      torch.zeros_like(diff))
    return float(rel.max()) if rel.numel() else 0.0


class Lion:
    """Lion from its formula, in the same per-element order as the plugin."""

    def __init__(self, groups, beta1, beta2):
        self.param_groups = groups
        self.beta1, self.beta2 = beta1, beta2
        self.state = {}

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            lr, wd = group["lr"], group["weight_decay"]
            for p in group["params"]:
                st = self.state.setdefault(
                    p, {"exp_avg": torch.zeros_like(p)})
                m, g = st["exp_avg"], p.grad
                c = m * self.beta1 + g * (1 - self.beta1)
                p.add_(torch.sign(c) + wd * p, alpha=-lr)
                m.mul_(self.beta2).add_(g, alpha=1 - self.beta2)


def make_optimizer(run, params):
    kind, cfg = run["optimizer"], run["params"]
    decay = [p for p, nd in zip(params, run["no_decay"]) if not nd]
    keep = [p for p, nd in zip(params, run["no_decay"]) if nd]
    wd = cfg["weight_decay"]
    groups = [{"params": decay, "weight_decay": wd},
              {"params": keep, "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    lr = run["lrs"][0]
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=cfg["momentum"],
                               dampening=cfg["dampening"],
                               nesterov=cfg["nesterov"],
                               maximize=cfg["maximize"], foreach=False)
    if kind in ("adam", "adamw"):
        cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
        return cls(groups, lr=lr, betas=(cfg["beta1"], cfg["beta2"]),
                   eps=cfg["eps"], amsgrad=cfg["amsgrad"], foreach=False)
    if kind == "lion":
        for g in groups:
            g["lr"] = lr
        return Lion(groups, cfg["beta1"], cfg["beta2"])
    raise ValueError(f"unknown optimizer {kind}")


def check_defaults(defaults):
    """The plugin's defaults against torch.optim's signatures (and Lion's
    paper). Returns a list of complaints."""
    bad = []

    def sig(cls):
        return {k: v.default for k, v in
                inspect.signature(cls.__init__).parameters.items()}

    expected = {}
    s = sig(torch.optim.SGD)
    expected["sgd"] = {k: s[k] for k in ("momentum", "dampening", "nesterov",
                                          "weight_decay", "maximize")}
    for kind, cls in (("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)):
        s = sig(cls)
        expected[kind] = {"beta1": s["betas"][0], "beta2": s["betas"][1],
                          "eps": s["eps"], "weight_decay": s["weight_decay"],
                          "amsgrad": s["amsgrad"]}
    expected["lion"] = {"beta1": 0.9, "beta2": 0.99, "weight_decay": 0.0}
    for kind, values in expected.items():
        for name, want in values.items():
            got = defaults.get(kind, {}).get(name)
            if got != want:
                bad.append(f"{kind}.{name}: plugin default {got!r}, "
                           f"torch {want!r}")
    return bad


def compare_run(run, steps):
    """Replays one run; returns (worst param error, worst state error,
    complaints)."""
    params = [tensor(t).clone().requires_grad_(False) for t in run["initial"]]
    opt = make_optimizer(run, params)
    names = run["state_names"]
    worst_p = worst_s = 0.0
    bad = []
    for s in range(steps):
        for p, g in zip(params, run["grads"][s]):
            p.grad = tensor(g)
        for group in opt.param_groups:
            group["lr"] = run["lrs"][s]
        opt.step()
        for i, p in enumerate(params):
            e = rel_error(tensor(run["params_after"][s][i]), p.detach())
            worst_p = max(worst_p, e)
            if not e < TOLERANCE:
                bad.append(f"step {s + 1}, parameter {i}: relative error {e:.3g}")
            st = opt.state.get(p, {})
            for k, name in enumerate(names):
                if name not in st:
                    bad.append(f"step {s + 1}, parameter {i}: torch has no "
                               f"state '{name}' (has {sorted(st)})")
                    continue
                e = rel_error(tensor(run["state_after"][s][i][k]), st[name])
                worst_s = max(worst_s, e)
                if not e < TOLERANCE:
                    bad.append(f"step {s + 1}, parameter {i}, {name}: "
                               f"relative error {e:.3g}")
        # The plugin declares exactly the state torch keeps (but 'step';
        # SGD without momentum keeps momentum_buffer = None).
        if s == 0:
            torch_names = sorted(
                k for k, v in opt.state.get(params[0], {}).items()
                if k != "step" and v is not None)
            if torch_names != sorted(names):
                bad.append(f"state {sorted(names)} differs from torch's "
                           f"{torch_names}")
    return worst_p, worst_s, bad


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        dump = json.load(f)
    torch.set_default_dtype(torch.float64)
    failures = check_defaults(dump["defaults"])
    for line in failures:
        print(f"defaults: {line}")
    print(f"torch {torch.__version__}; tolerance {TOLERANCE:g} (relative)")
    print(f"{'optimizer':9} {'parameters':70} {'param err':>10} "
          f"{'state err':>10}  result")
    for run in dump["runs"]:
        cfg = {k: v for k, v in run["params"].items() if k != "state_dtype"}
        label = ", ".join(f"{k}={v}" for k, v in sorted(cfg.items()))
        worst_p, worst_s, bad = compare_run(run, dump["steps"])
        print(f"{run['optimizer']:9} {label[:70]:70} {worst_p:10.2e} "
              f"{worst_s:10.2e}  {'ok' if not bad else 'FAIL'}")
        for line in bad[:20]:
            print(f"    {line}")
        failures += bad
    if failures:
        print(f"optimizers_vs_torch: {len(failures)} mismatch(es)")
        return 1
    print(f"optimizers_vs_torch: all {len(dump['runs'])} runs agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
