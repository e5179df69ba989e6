#!/usr/bin/env python3
"""Fits step-cost weights to a calibration sweep.

Usage: scripts/fit_cost.sh [reps] [softmax|attention|ricl|all]   (builds the release
binary, runs `gradientcoin bench cost --classes`, sets up a venv with numpy and scipy, and
runs this)
or:    python3 scripts/fit_cost.py SWEEP.txt [softmax|attention|ricl|all]

SWEEP.txt may hold several sweeps one after the other: each case then counts with its
fastest time (the machine's other load only ever slows a case down).

`softmax` (the default): the softmax family's weights (src/compute/softmax/step.rs,
CLASS_WEIGHTS_16 and STEP_OVERHEAD_FLOPS). It minimises the spread (max/min of measured
time over priced time) with the gram class (the Gauss-Newton syrk) fixed at 16
sixteenths, from many random starts.

`attention`: each attention kernel's weights (src/compute/attention/step.rs,
ATTN_CLASS_WEIGHTS_16 and ATTN_STEP_OVERHEAD_FLOPS), fitted like ricl's below.

`ricl`: the ricl kind's weights (src/compute/ricl/step.rs, RICL_CLASS_WEIGHTS_16 and
RICL_STEP_OVERHEAD_FLOPS), fitted so that every ricl case replays at the softmax family's
median microseconds per mWU of the same sweep (the price must mean the same time on
every kind). The step takes only m exponentials per evaluation (the scores' are computed
once per task), too few for the fit to see, so their weight is held at a libm exp's
measured cost (RICL_EXP_WEIGHT).

`all`: the three in turn, on the same sweep (after a change that moves every kind's speed,
such as a kernel's: refit the family first, then fit the others to its new rate from a
sweep taken with the family's new weights).

It prints the weights in sixteenths and the overhead, with the spread the fit reaches.
"""
import re
import sys

import numpy as np
from scipy.optimize import minimize

PATTERN = re.compile(
    r"classes: transcendental (\d+) elementwise (\d+) level2 (\d+) gram (\d+) factor (\d+) seconds (\S+)"
)


def main(path):
    rows = [c for _, c in merged(path, PATTERN)]
    if not rows:
        sys.exit(f"{path}: no 'classes:' lines (run bench cost with --classes)")
    x = np.array([r[:5] + [1.0] for r in rows])
    t = np.array([r[5] for r in rows])

    def weights(p):
        tr, el, l2, fa, ov = np.exp(p)
        return np.array([tr, el, l2, 1.0, fa, ov])

    def log_spread(p):
        r = t / (x @ weights(p))
        return np.log(r.max() / r.min())

    rng = np.random.default_rng(1)
    best = None
    for _ in range(60):
        start = np.log([13, 0.3, 2, 30, 40000]) + rng.normal(0, 0.7, 5)
        o = minimize(log_spread, start, method="Nelder-Mead", options={"maxiter": 40000, "xatol": 1e-8, "fatol": 1e-11})
        if best is None or o.fun < best.fun:
            best = o
    w = weights(best.x)
    sixteenths = np.round(w[:5] * 16).astype(int)
    names = ["transcendental", "elementwise", "level2", "gram", "factor"]
    print("CLASS_WEIGHTS_16:", ", ".join(f"{n}: {v}" for n, v in zip(names, sixteenths)))
    print(f"STEP_OVERHEAD_FLOPS: {int(round(w[5]))}")
    print(f"spread of the fit on this sweep: {np.exp(best.fun):.3f} ({len(rows)} cases)")


ROW = re.compile(r"^  (\S.*?)\s+(\d+)\s+([\d.]+)\s+([\d.]+)$")
# A libm exp takes about 16 ns, 325 priced flops at the family's rate: 16.25 per counted
# flop (EXP_FLOPS = 20). Held fixed: the step has only m exponentials per evaluation, too
# few for the fit to see.
RICL_EXP_WEIGHT = 16.25
RICL = re.compile(r"ricl classes: transcendental (\d+) elementwise (\d+) gemm (\d+) factor (\d+) seconds (\S+)")
ATTN = re.compile(
    r"attention classes: transcendental (\d+) elementwise (\d+) gemm (\d+) factor (\d+) rows (\d+) seconds (\S+)"
)


def merged(path, pattern):
    """`(case name, [classes..., seconds])` for every case with a `pattern` line; a case
    measured in several sweeps (concatenated into one file) keeps its fastest time, the
    estimate least disturbed by the machine's other load."""
    best, name = {}, None
    for line in open(path):
        row = ROW.match(line.rstrip("\n"))
        if row:
            name = row.group(1)
        m = pattern.search(line)
        if m and name is not None:
            c = [float(x) for x in m.groups()]
            if name not in best or c[-1] < best[name][-1]:
                best[name] = c
    return list(best.items())


def family_rate(path):
    """The softmax family's median microseconds per mWU in the sweep (per case, the
    fastest of the concatenated sweeps)."""
    best = {}
    for line in open(path):
        row = ROW.match(line.rstrip("\n"))
        if row and row.group(1).split()[0].split("+")[0] in ("softmax", "resnet_softmax"):
            best[row.group(1)] = min(best.get(row.group(1), np.inf), float(row.group(4)))
    family = list(best.values())
    if not family:
        sys.exit(f"{path}: no softmax-family rows (bench cost --classes)")
    return float(np.median(family)), len(family)


def fit_to_rate(rate, cases, fixed, start):
    """Weights (per counted flop, then the overhead) making every case's priced flops
    match `rate`: minimises the worst |log(priced / wanted)|. `fixed` maps a class index
    to its held weight; `start` gives the free ones' starting values."""
    x = np.array([c[:-1] + [1.0] for c in cases])
    want = np.array([c[-1] * 1e6 / rate * 1000.0 for c in cases])
    free = [i for i in range(x.shape[1]) if i not in fixed]

    def weights(p):
        w = np.zeros(x.shape[1])
        for i, v in fixed.items():
            w[i] = v
        w[free] = np.exp(p)
        return w

    def worst(p):
        return np.abs(np.log((x @ weights(p)) / want)).max()

    rng = np.random.default_rng(1)
    best = None
    for _ in range(60):
        p0 = np.log(start) + rng.normal(0, 0.7, len(free))
        o = minimize(worst, p0, method="Nelder-Mead", options={"maxiter": 40000, "xatol": 1e-8, "fatol": 1e-11})
        if best is None or o.fun < best.fun:
            best = o
    w = weights(best.x)
    r = (x @ w) / want
    return w, np.exp(best.fun), r.max() / r.min()


def print_fit(label, names, w, within, spread, n):
    sixteenths = np.round(w[:-1] * 16).astype(int)
    print(f"{label}_CLASS_WEIGHTS_16:", ", ".join(f"{k}: {v}" for k, v in zip(names, sixteenths)))
    print(f"{label}_STEP_OVERHEAD_FLOPS: {int(round(w[-1]))}")
    print(f"{label.lower()} cases within {within:.3f}x of the family's rate; spread over them {spread:.3f} ({n} cases)")


def main_ricl(path):
    rate, nf = family_rate(path)
    cases = [c for _, c in merged(path, RICL)]
    if not cases:
        sys.exit(f"{path}: no 'ricl classes:' lines (bench cost --classes)")
    print(f"softmax-family median: {rate:.4f} us/mWU over {nf} cases")
    w, within, spread = fit_to_rate(rate, cases, {0: RICL_EXP_WEIGHT}, [2, 2, 30, 100000])
    print_fit("RICL", ["transcendental", "elementwise", "gemm", "factor"], w, within, spread, len(cases))


def main_attention(path):
    """Per kernel (the row before each 'attention classes:' line names it): the exp weight
    held at one priced flop per counted flop (the exponentials and the elementwise passes
    around them come in a fixed ratio), the linear kernel's gemm weight at 1/16 (its gemms
    grow with the other classes on every admissible shape)."""
    rate, nf = family_rate(path)
    kernels = {"attention": [], "attention_linear": []}
    for name, c in merged(path, ATTN):
        if name.split()[0] in kernels:
            kernels[name.split()[0]].append(c)
    if not any(kernels.values()):
        sys.exit(f"{path}: no 'attention classes:' lines (bench cost --classes)")
    print(f"softmax-family median: {rate:.4f} us/mWU over {nf} cases")
    names = ["transcendental", "elementwise", "gemm", "factor", "rows"]
    for kernel, fixed in (("attention", {0: 1.0}), ("attention_linear", {0: 1.0, 2: 1 / 16})):
        cases = kernels[kernel]
        start = [40, 0.5, 30, 3000, 100000] if kernel == "attention" else [40, 30, 1000, 100000]
        w, within, spread = fit_to_rate(rate, cases, fixed, start)
        print_fit(kernel.upper(), names, w, within, spread, len(cases))


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else "/dev/stdin"
    mode = sys.argv[2] if len(sys.argv) > 2 else "softmax"
    modes = {"softmax": [main], "attention": [main_attention], "ricl": [main_ricl]}
    modes["all"] = [main, main_attention, main_ricl]
    if mode not in modes:
        sys.exit(f"unknown mode {mode!r}: softmax, attention, ricl or all")
    for run in modes[mode]:
        run(path)
