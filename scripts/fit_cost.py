#!/usr/bin/env python3
"""Fits step-cost weights to a calibration sweep.

Usage: scripts/fit_cost.sh [reps] [ricl]   (builds the release binary, runs
`gradientcoin bench cost --classes`, sets up a venv with numpy and scipy, and runs this)
or:    python3 scripts/fit_cost.py SWEEP.txt [ricl]

Without `ricl`: the softmax family's weights (src/compute/softmax/step.rs,
CLASS_WEIGHTS_16 and STEP_OVERHEAD_FLOPS). It minimises the spread (max/min of measured
time over priced time) with the gram class (the Gauss-Newton syrk) fixed at 16
sixteenths, from many random starts.

With `ricl`: the ricl kind's weights (src/compute/ricl/step.rs, RICL_CLASS_WEIGHTS_16 and
RICL_STEP_OVERHEAD_FLOPS), fitted so that every ricl case replays at the softmax family's
median microseconds per mWU of the same sweep (the price must mean the same time on
every kind). The step takes only m exponentials per evaluation (the scores' are computed
once per task), too few for the fit to see, so their weight is held at a libm exp's
measured cost (RICL_EXP_WEIGHT).

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
    rows = [[float(x) for x in m.groups()] for m in map(PATTERN.search, open(path)) if m]
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


def main_ricl(path):
    family, cases = [], []
    for line in open(path):
        row = ROW.match(line.rstrip("\n"))
        if row and row.group(1).split()[0] in ("softmax", "resnet_softmax") or (
            row and row.group(1).split()[0].startswith(("softmax+", "resnet_softmax+"))
        ):
            family.append(float(row.group(4)))
        m = RICL.search(line)
        if m:
            cases.append([float(x) for x in m.groups()])
    if not family or not cases:
        sys.exit(f"{path}: needs softmax-family rows and 'ricl classes:' lines (bench cost --classes)")
    rate = float(np.median(family))  # microseconds per mWU
    x = np.array([c[:4] + [1.0] for c in cases])
    # The priced flops each case must have to replay at `rate`: t[us] / rate * 1000.
    want = np.array([c[4] * 1e6 / rate * 1000.0 for c in cases])

    def weights(p):
        el, gm, fa, ov = np.exp(p)
        return np.array([RICL_EXP_WEIGHT, el, gm, fa, ov])

    def worst(p):
        return np.abs(np.log((x @ weights(p)) / want)).max()

    rng = np.random.default_rng(1)
    best = None
    for _ in range(60):
        start = np.log([2, 2, 30, 100000]) + rng.normal(0, 0.7, 4)
        o = minimize(worst, start, method="Nelder-Mead", options={"maxiter": 40000, "xatol": 1e-8, "fatol": 1e-11})
        if best is None or o.fun < best.fun:
            best = o
    w = weights(best.x)
    sixteenths = np.round(w[:4] * 16).astype(int)
    names = ["transcendental", "elementwise", "gemm", "factor"]
    print(f"softmax-family median: {rate:.4f} us/mWU over {len(family)} cases")
    print("RICL_CLASS_WEIGHTS_16:", ", ".join(f"{n}: {v}" for n, v in zip(names, sixteenths)))
    print(f"RICL_STEP_OVERHEAD_FLOPS: {int(round(w[4]))}")
    r = (x @ weights(best.x)) / want
    print(f"ricl cases within {np.exp(best.fun):.3f}x of the family's rate; spread over them {r.max() / r.min():.3f} ({len(cases)} cases)")


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else "/dev/stdin"
    if len(sys.argv) > 2 and sys.argv[2] == "ricl":
        main_ricl(path)
    else:
        main(path)
