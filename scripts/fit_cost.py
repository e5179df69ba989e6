#!/usr/bin/env python3
"""Fits the cost weights of the softmax family's step (src/compute/softmax/step.rs,
CLASS_WEIGHTS_16 and STEP_OVERHEAD_FLOPS) to a calibration sweep.

Usage: scripts/fit_cost.sh   (builds the release binary, runs
`gradientcoin bench cost --classes`, sets up a venv with numpy and scipy, and runs this)
or:    python3 scripts/fit_cost.py SWEEP.txt

It minimises the spread (max/min of measured time over priced time) with the gram class
(the Gauss-Newton syrk) fixed at 16 sixteenths, from many random starts, and prints the
weights in sixteenths and the overhead, with the spread the fit reaches on this sweep.
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


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/dev/stdin")
