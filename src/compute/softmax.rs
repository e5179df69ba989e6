//! The softmax-family task kinds `softmax` and `resnet_softmax` (papers 2310.11685,
//! 2309.13482), the linear-attention baselines, and the copyright option (2308.12247):
//! objective, derivatives, the seeded mining step and the off-chain Newton solver.
//!
//! Objective: `L(x) = ½||m∘(f(Ax) - b)||² + ½ Σ w²ᵢ zᵢ² [+ γ/ℓ₁(x)]` with `f = φ(z)/Σφ(z)`
//! (SOLVERS.md §0.4, §3.1, §9.1). Everything a step, a certificate or a cost computes goes
//! through `compute::det`. Owns no I/O.

use crate::compute::copyright::{Copyright, CopyrightVariant};
use crate::compute::det::{self, count_flops, math, Cholesky, DetRng, Mat};
use crate::compute::det::rng::tags;
use crate::compute::nmr::{self, Phi, Term};
use crate::compute::problem::{
    Certificate, Figure, IterReport, Params, Problem, ProblemError, SolveInfo, SolveOpts, StopReason,
    FLOPS_PER_WU,
};
use crate::hash::sha256_parts;

/// Oversampling factor of the leverage-score row sampling: `K = β·d` rows are drawn
/// (SOLVERS.md §0.5 item 3: β = 8).
pub const SAMPLE_BETA: usize = 8;
/// CountSketch rows per parameter when approximating leverage scores.
pub const SKETCH_ROWS_PER_DIM: usize = 8;
/// Step lengths the mining step evaluates, all of them: `2^-j`, `j < LINE_SEARCH_CANDIDATES`.
pub const LINE_SEARCH_CANDIDATES: usize = 8;
/// Armijo constant `c₁`.
pub const ARMIJO_C1: f64 = 1e-4;
/// Fixed ridge of the mining step, relative to `tr(H̃)/d`.
pub const STEP_RIDGE_REL: f64 = 1e-6;
/// Smallest protected loss ℓ₁ for which `γ/ℓ₁` is evaluated (SOLVERS.md §9.3).
pub const MIN_PROTECTED_LOSS: f64 = 1e-300;

/// A softmax-family regression task.
#[derive(Clone, Debug)]
pub struct SoftmaxProblem {
    phi: Phi,
    a: Mat,
    b: Vec<f64>,
    w2: Vec<f64>,
    has_reg: bool,
    mask: Option<Vec<f64>>,
    copyright: Option<CopyrightTerms>,
}

/// The copyright option, validated and expanded into masks.
#[derive(Clone, Debug)]
struct CopyrightTerms {
    spec: Copyright,
    /// `m₁`: 1 on protected rows.
    m1: Vec<f64>,
    /// `m₂ = 1 - m₁`.
    m2: Vec<f64>,
    /// Targets of the protected rows (per-block variant).
    b1: Vec<f64>,
}

/// The objective and its parts at one point.
#[derive(Clone, Debug)]
struct Eval {
    z: Vec<f64>,
    main: Term,
    /// ℓ₁ term: over all rows with mask m₁, or over the protected rows (per-block).
    prot: Option<Term>,
    reg: f64,
    value: f64,
}

impl Eval {
    fn l1(&self) -> Option<f64> {
        self.prot.as_ref().map(|t| t.loss)
    }
}

/// Options for [`SoftmaxProblem::new`].
#[derive(Clone, Debug, Default)]
pub struct SoftmaxOptions {
    /// Per-row regulariser weights `w²ᵢ >= 0` (none: no regulariser).
    pub w2: Option<Vec<f64>>,
    /// A 0/1 row mask on the data term.
    pub mask: Option<Vec<f64>>,
    /// The copyright option.
    pub copyright: Option<Copyright>,
}

impl SoftmaxProblem {
    /// Builds a task from data `a` (n x d), targets `b` (n) and options, checking every
    /// value: shapes, finiteness, `w² >= 0`, masks in {0, 1}, the copyright option.
    pub fn new(phi: Phi, a: Mat, b: Vec<f64>, opts: SoftmaxOptions) -> Result<SoftmaxProblem, ProblemError> {
        let (n, d) = (a.rows(), a.cols());
        if n == 0 || d == 0 {
            return Err(ProblemError::InvalidSpec { what: "data", reason: format!("A is {n}x{d}, need at least one row and column") });
        }
        if b.len() != n {
            return Err(ProblemError::Dimension { what: "target b", expected: n, got: b.len() });
        }
        if let Some(i) = a.data().iter().position(|v| !v.is_finite()) {
            return Err(ProblemError::NonFinite { what: "data A", index: i });
        }
        if let Some(i) = b.iter().position(|v| !v.is_finite()) {
            return Err(ProblemError::NonFinite { what: "target b", index: i });
        }
        let w2 = match opts.w2 {
            Some(w2) => {
                if w2.len() != n {
                    return Err(ProblemError::Dimension { what: "regulariser weights", expected: n, got: w2.len() });
                }
                if let Some(i) = w2.iter().position(|w| !(w.is_finite() && *w >= 0.0)) {
                    return Err(ProblemError::InvalidSpec {
                        what: "regulariser weights",
                        reason: format!("w2[{i}] = {} is not a finite non-negative number", w2[i]),
                    });
                }
                w2
            }
            None => vec![0.0; n],
        };
        let has_reg = w2.iter().any(|w| *w > 0.0);
        if let Some(m) = &opts.mask {
            if m.len() != n {
                return Err(ProblemError::Dimension { what: "mask", expected: n, got: m.len() });
            }
            if let Some(i) = m.iter().position(|v| *v != 0.0 && *v != 1.0) {
                return Err(ProblemError::InvalidSpec { what: "mask", reason: format!("mask[{i}] = {} is not 0 or 1", m[i]) });
            }
        }
        let copyright = match opts.copyright {
            Some(spec) => {
                spec.validate(n)?;
                let m1 = spec.protected_mask(n);
                let m2 = spec.unprotected_mask(n);
                let b1 = spec.rows.iter().map(|&r| b[r]).collect();
                Some(CopyrightTerms { spec, m1, m2, b1 })
            }
            None => None,
        };
        Ok(SoftmaxProblem { phi, a, b, w2, has_reg, mask: opts.mask, copyright })
    }

    /// The map φ.
    pub fn phi(&self) -> Phi {
        self.phi
    }

    /// The data matrix.
    pub fn a(&self) -> &Mat {
        &self.a
    }

    /// The targets.
    pub fn b(&self) -> &[f64] {
        &self.b
    }

    /// Number of data rows.
    pub fn n(&self) -> usize {
        self.a.rows()
    }

    /// The copyright option, if set.
    pub fn copyright(&self) -> Option<&Copyright> {
        self.copyright.as_ref().map(|c| &c.spec)
    }

    /// The mask of the main data term: the user mask, times `m₂` for the
    /// unprotected-only copyright variant.
    fn main_mask(&self) -> Option<Vec<f64>> {
        let cr = self.copyright.as_ref().filter(|c| c.spec.variant == CopyrightVariant::UnprotectedOnly);
        match (&self.mask, cr) {
            (None, None) => None,
            (Some(m), None) => Some(m.clone()),
            (None, Some(c)) => Some(c.m2.clone()),
            (Some(m), Some(c)) => Some(m.iter().zip(&c.m2).map(|(a, b)| a * b).collect()),
        }
    }

    /// Evaluates the objective at `x` (no derivatives).
    fn eval(&self, x: &[f64]) -> Result<Eval, ProblemError> {
        let n = self.n();
        let mut z = vec![0.0; n];
        det::gemv(self.a.view(), x, &mut z, false);
        let phi = nmr::eval_phi(self.phi, &z)?;
        let main_mask = self.main_mask();
        let prot = match &self.copyright {
            None => None,
            Some(c) if c.spec.variant == CopyrightVariant::PerBlock => {
                let z1: Vec<f64> = c.spec.rows.iter().map(|&r| z[r]).collect();
                let phi1 = nmr::eval_phi(self.phi, &z1)?;
                Some(nmr::term(phi1, &c.b1, None)?)
            }
            Some(c) => Some(nmr::term(phi.clone(), &self.b, Some(&c.m1))?),
        };
        let main = nmr::term(phi, &self.b, main_mask.as_deref())?;
        count_flops(n as u64);
        let wz: Vec<f64> = self.w2.iter().zip(&z).map(|(w, z)| w * z).collect();
        let reg = 0.5 * det::dot(&wz, &z);
        let mut value = main.loss + reg;
        if let (Some(c), Some(t)) = (&self.copyright, &prot) {
            if !(t.loss >= MIN_PROTECTED_LOSS) {
                return Err(ProblemError::ProtectedLossZero { l1: t.loss });
            }
            value += c.spec.gamma / t.loss;
        }
        if !value.is_finite() {
            return Err(ProblemError::NonFinite { what: "objective", index: 0 });
        }
        Ok(Eval { z, main, prot, reg, value })
    }

    /// The ℓ₁ term's z-space gradient scattered to all `n` rows.
    fn prot_grad_z(&self, ev: &Eval) -> Option<Vec<f64>> {
        let (c, t) = (self.copyright.as_ref()?, ev.prot.as_ref()?);
        let g = t.grad_z();
        Some(match c.spec.variant {
            CopyrightVariant::PerBlock => scatter(&g, &c.spec.rows, self.n()),
            _ => g,
        })
    }

    /// `(∇L, ∇ℓ₁)` at an evaluated point.
    fn gradient(&self, ev: &Eval) -> (Vec<f64>, Option<Vec<f64>>) {
        let n = self.n();
        let mut gz = ev.main.grad_z();
        count_flops(2 * n as u64);
        for i in 0..n {
            gz[i] = self.w2[i].mul_add(ev.z[i], gz[i]);
        }
        let mut g1 = None;
        if let (Some(c), Some(gz1)) = (&self.copyright, self.prot_grad_z(ev)) {
            let l1 = ev.prot.as_ref().map_or(1.0, |t| t.loss);
            let coef = -(c.spec.gamma / (l1 * l1));
            count_flops(2 * n as u64);
            for i in 0..n {
                gz[i] = coef.mul_add(gz1[i], gz[i]);
            }
            let mut g = vec![0.0; self.a.cols()];
            det::gemv(self.a.t(), &gz1, &mut g, false);
            g1 = Some(g);
        }
        let mut g = vec![0.0; self.a.cols()];
        det::gemv(self.a.t(), &gz, &mut g, false);
        (g, g1)
    }

    /// The exact Hessian `∇²L` at an evaluated point (SOLVERS.md §0.4, §9.2).
    fn hessian(&self, ev: &Eval, g1: Option<&[f64]>) -> Mat {
        let (n, d) = (self.n(), self.a.cols());
        let main_mask = self.main_mask();
        let mut diag = ev.main.hess_diag(main_mask.as_deref());
        for i in 0..n {
            diag[i] += self.w2[i];
        }
        let mut h = Mat::zeros(d, d);
        let (p, kappa) = ev.main.rank2(&self.b, main_mask.as_deref());
        let mut low = vec![(1.0 / (ev.main.alpha * ev.main.alpha), kappa, ev.main.phi.v.clone(), p)];
        if let (Some(c), Some(t)) = (&self.copyright, &ev.prot) {
            let l1 = t.loss;
            let coef = -(c.spec.gamma / (l1 * l1));
            let (d1, v1, p1, kappa1) = match c.spec.variant {
                CopyrightVariant::PerBlock => {
                    let (p1, k1) = t.rank2(&c.b1, None);
                    let rows = &c.spec.rows;
                    (scatter(&t.hess_diag(None), rows, n), scatter(&t.phi.v, rows, n), scatter(&p1, rows, n), k1)
                }
                _ => {
                    let (p1, k1) = t.rank2(&self.b, Some(&c.m1));
                    (t.hess_diag(Some(&c.m1)), t.phi.v.clone(), p1, k1)
                }
            };
            for i in 0..n {
                diag[i] = coef.mul_add(d1[i], diag[i]);
            }
            low.push((coef / (t.alpha * t.alpha), kappa1, v1, p1));
        }
        det::syrk(self.a.view(), Some(&diag), &mut h);
        for (coef, kappa, v, p) in low {
            let mut av = vec![0.0; d];
            let mut ap = vec![0.0; d];
            det::gemv(self.a.t(), &v, &mut av, false);
            det::gemv(self.a.t(), &p, &mut ap, false);
            add_rank2(&mut h, coef, kappa, &av, &ap);
        }
        if let (Some(c), Some(g1), Some(t)) = (&self.copyright, g1, &ev.prot) {
            let l1 = t.loss;
            add_rank1(&mut h, 2.0 * c.spec.gamma / (l1 * l1 * l1), g1);
        }
        h
    }

    /// Rows of the Gauss–Newton factor `M = [m∘J; diag(w) A]` (the regulariser rows only
    /// when the task has one), `J = (diag(v) A - f (vᵀA))/α`.
    fn gn_rows(&self, ev: &Eval) -> Mat {
        let (n, d) = (self.n(), self.a.cols());
        let rows = if self.has_reg { 2 * n } else { n };
        let mut m = Mat::zeros(rows, d);
        let t = &ev.main;
        let mut q = vec![0.0; d];
        det::gemv(self.a.t(), &t.phi.v, &mut q, false);
        let mask = self.main_mask();
        count_flops((4 * n * d) as u64);
        for i in 0..n {
            let mi = mask.as_ref().map_or(1.0, |m| m[i]);
            let (vi, fi) = (t.phi.v[i] * mi, t.f[i] * mi);
            let ai = self.a.row(i);
            let row = m.row_mut(i);
            for j in 0..d {
                row[j] = vi.mul_add(ai[j], -(fi * q[j])) / t.alpha;
            }
        }
        if self.has_reg {
            count_flops((n * d + n) as u64);
            for i in 0..n {
                let w = math::sqrt(self.w2[i]);
                let ai = self.a.row(i);
                let row = m.row_mut(n + i);
                for j in 0..d {
                    row[j] = w * ai[j];
                }
            }
        }
        m
    }

    /// Flops of one [`Problem::step`] by formula (the basis of [`Problem::cost`]); a test
    /// checks it against the kernels' own count.
    pub fn step_flops(&self) -> u64 {
        step_flops(&self.shape())
    }

    /// What the cost of a step depends on.
    pub fn shape(&self) -> StepShape {
        StepShape {
            n: self.n(),
            d: self.a.cols(),
            phi: self.phi,
            has_reg: self.has_reg,
            copyright: self.copyright.as_ref().map(|c| (c.spec.variant, c.spec.rows.len())),
        }
    }
}

/// Everything the cost of a step depends on: known from a task spec before any data is
/// built, so admission can refuse an over-priced task cheaply.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepShape {
    /// Data rows.
    pub n: usize,
    /// Parameters.
    pub d: usize,
    /// The map φ.
    pub phi: Phi,
    /// Whether any row has a non-zero regulariser weight.
    pub has_reg: bool,
    /// The copyright variant and the number of protected rows, if the option is on.
    pub copyright: Option<(CopyrightVariant, usize)>,
}

/// Flops of one step of a task of this shape, by formula (leading terms of every kernel
/// and elementwise pass the step performs; exps count [`nmr::EXP_FLOPS`]).
pub fn step_flops(shape: &StepShape) -> u64 {
    let (n, d) = (shape.n as u64, shape.d as u64);
    let has_reg = shape.has_reg;
    let rows = if has_reg { 2 * n } else { n };
    let s = (SKETCH_ROWS_PER_DIM as u64 * d).min(rows);
    let k = SAMPLE_BETA as u64 * d;
    let phi = shape.phi.eval_flops(1);
    let cr = shape.copyright;
    let n1 = cr.map_or(0, |c| c.1 as u64);
    // One objective value: gemv, φ, term, regulariser, and the ℓ₁ term.
    let term = |m: u64| 8 * m;
    let prot_eval = match cr.map(|c| c.0) {
        None => 0,
        Some(CopyrightVariant::PerBlock) => n1 * phi + term(n1),
        Some(_) => term(n),
    };
    let value = 2 * n * d + n * phi + term(n) + 3 * n + prot_eval;
    let grad = 4 * n + 2 * n + 2 * n * d
        + cr.map_or(0, |c| {
            let m = if c.0 == CopyrightVariant::PerBlock { n1 } else { n };
            4 * m + 2 * n + 2 * n * d
        });
    let gn = 2 * n * d + 4 * n * d + if has_reg { n * d + n } else { 0 };
    let sketch = 2 * rows * d + rows + s * d * (d + 1) + s * d + d * d * d / 3;
    let leverage = rows * d * d + 2 * rows * d + rows;
    let sample = k * (2 + 64 - rows.leading_zeros() as u64) + k * d + k * d * (d + 1) + k * d;
    let solve = d * d * d / 3 + 2 * d * d + 2 * d + if cr.is_some() { 2 * d * d } else { 0 };
    let search = LINE_SEARCH_CANDIDATES as u64 * (2 * d + value);
    3 * d + value + grad + gn + sketch + leverage + sample + solve + search
}

/// `out[rows[k]] = v[k]`, zeros elsewhere.
fn scatter(v: &[f64], rows: &[usize], n: usize) -> Vec<f64> {
    let mut out = vec![0.0; n];
    for (k, &r) in rows.iter().enumerate() {
        out[r] = v[k];
    }
    out
}

/// `H += coef·(κ a aᵀ - p aᵀ - a pᵀ)` for `j <= l`, mirrored (so `H` stays exactly symmetric).
fn add_rank2(h: &mut Mat, coef: f64, kappa: f64, a: &[f64], p: &[f64]) {
    let d = a.len();
    count_flops((4 * d * (d + 1)) as u64);
    for j in 0..d {
        for l in j..d {
            let inner = (kappa * a[j]).mul_add(a[l], -(p[j] * a[l])) - a[j] * p[l];
            let v = coef.mul_add(inner, h.get(j, l));
            h.set(j, l, v);
            h.set(l, j, v);
        }
    }
}

/// `H += coef·g gᵀ` for `j <= l`, mirrored.
fn add_rank1(h: &mut Mat, coef: f64, g: &[f64]) {
    let d = g.len();
    count_flops((d * (d + 1)) as u64);
    for j in 0..d {
        for l in j..d {
            let v = (coef * g[j]).mul_add(g[l], h.get(j, l));
            h.set(j, l, v);
            h.set(l, j, v);
        }
    }
}

/// The mining ticket's first operation (DESIGN.md §3 (a)): `x_i = fma(2^-40·max(|x_i|,
/// 2^-20), r_i, x_i)` with `r_i = 2·u01() - 1` from stream `(tag 10, t = 0)`, in coordinate
/// order.
///
/// # Consensus
/// Part of every step of every kind.
pub fn perturb(x: &[f64], seed: &[u8; 32]) -> Vec<f64> {
    const SCALE: f64 = 1.0 / (1u64 << 40) as f64;
    const FLOOR: f64 = 1.0 / (1u64 << 20) as f64;
    let mut rng = DetRng::stream(seed, tags::TICKET_PERTURBATION, 0);
    count_flops(3 * x.len() as u64);
    x.iter()
        .map(|&xi| {
            let r = 2.0 * rng.u01() - 1.0;
            (xi.abs().max(FLOOR) * SCALE).mul_add(r, xi)
        })
        .collect()
}

/// Leverage scores of the rows of `m` relative to a CountSketch of it (stream tag 2):
/// `ℓ_i = ||L⁻¹ m_i||²` where `L Lᵀ = (S M)ᵀ(S M) + ridge`. `None` when the sketched Gram
/// does not factor. [R] SOLVERS.md §3.5 (the JL compression is not applied: d is small).
fn leverage_scores(m: &Mat, sketch_rows: usize, seed: &[u8; 32]) -> Option<Vec<f64>> {
    let (rows, d) = (m.rows(), m.cols());
    let mut rng = DetRng::stream(seed, tags::LEVERAGE_SKETCH, 0);
    let mut sm = Mat::zeros(sketch_rows, d);
    count_flops(rows as u64);
    for r in 0..rows {
        let h = rng.below(sketch_rows as u64) as usize;
        let sign = rng.sign();
        det::axpy(sign, m.row(r), sm.row_mut(h));
    }
    let mut g = Mat::zeros(d, d);
    det::syrk(sm.view(), None, &mut g);
    count_flops((sketch_rows * d) as u64);
    let trace: f64 = (0..d).map(|i| g.get(i, i)).sum();
    let chol = Cholesky::factor_shifted(&g, STEP_RIDGE_REL * trace / d as f64 + f64::MIN_POSITIVE).ok()?;
    let mut y = m.clone();
    det::trsm_rows(chol.l(), &mut y);
    Some((0..rows).map(|r| det::dot(y.row(r), y.row(r))).collect())
}

/// Draws `k` rows with replacement, row `i` with probability `ℓ_i / Σℓ`, one `u01()` per
/// draw from stream `(tag 1, t = 0)` and an inverse-CDF binary search over the running
/// (left-to-right) prefix sums. Returns the scaled rows `m_i / sqrt(k q_i)`, so that
/// `E[SᵀS] = MᵀM`. `None` if every score is zero.
///
/// [R] SOLVERS.md §0.5 item 3 samples each row by its own Bernoulli trial; this draws a
/// fixed number of rows instead, so the work of a step does not depend on the iterate
/// (DESIGN.md §3 (e)).
fn sample_rows(m: &Mat, lev: &[f64], k: usize, seed: &[u8; 32]) -> Option<Mat> {
    let (rows, d) = (m.rows(), m.cols());
    let mut prefix = Vec::with_capacity(rows);
    let mut acc = 0.0;
    count_flops(rows as u64);
    for &l in lev {
        acc += l;
        prefix.push(acc);
    }
    if !(acc > 0.0) || !acc.is_finite() {
        return None;
    }
    let mut rng = DetRng::stream(seed, tags::ROW_SAMPLING, 0);
    let mut s = Mat::zeros(k, d);
    count_flops((k * (2 + 64 - rows.leading_zeros() as usize) + k * d) as u64);
    for draw in 0..k {
        let target = rng.u01() * acc;
        let (mut lo, mut hi) = (0usize, rows - 1);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if prefix[mid] > target {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        let scale = math::sqrt(acc / (k as f64 * lev[lo]));
        for (o, v) in s.row_mut(draw).iter_mut().zip(m.row(lo)) {
            *o = v * scale;
        }
    }
    Some(s)
}

impl Problem for SoftmaxProblem {
    fn kind(&self) -> &'static str {
        match self.phi {
            Phi::Softmax => "softmax",
            Phi::ResnetSoftmax => "resnet_softmax",
            Phi::EluPlusOne => "linear_elu",
            Phi::Identity => "linear",
        }
    }

    fn dim(&self) -> usize {
        self.a.cols()
    }

    fn init(&self) -> Params {
        Params(vec![0.0; self.dim()])
    }

    /// One seeded sampled Gauss–Newton step (SOLVERS.md §0.5 item 3, [R]): perturb; GN
    /// factor `M`; CountSketch leverage scores (tag 2); `K = 8d` rows drawn by leverage
    /// (tag 1); `H̃ = SᵀS [+ 2γ/ℓ₁³ g₁g₁ᵀ] + ridge`; direction `H̃⁻¹∇L`; all
    /// [`LINE_SEARCH_CANDIDATES`] step lengths evaluated and the best satisfying Armijo taken.
    /// When no candidate qualifies, or a factorisation fails, the perturbed iterate is the
    /// output.
    fn step(&self, x: &Params, seed: &[u8; 32]) -> Result<Params, ProblemError> {
        x.check(self.dim())?;
        let d = self.dim();
        let x = perturb(&x.0, seed);
        let ev = self.eval(&x)?;
        let (g, g1) = self.gradient(&ev);
        let m = self.gn_rows(&ev);
        let sketch_rows = (SKETCH_ROWS_PER_DIM * d).min(m.rows());
        let Some(lev) = leverage_scores(&m, sketch_rows, seed) else { return Ok(Params(x)) };
        let Some(s) = sample_rows(&m, &lev, SAMPLE_BETA * d, seed) else { return Ok(Params(x)) };
        let mut h = Mat::zeros(d, d);
        det::syrk(s.view(), None, &mut h);
        if let (Some(c), Some(g1), Some(l1)) = (&self.copyright, &g1, ev.l1()) {
            add_rank1(&mut h, 2.0 * c.spec.gamma / (l1 * l1 * l1), g1);
        }
        count_flops(d as u64);
        let trace: f64 = (0..d).map(|i| h.get(i, i)).sum();
        let Ok(chol) = Cholesky::factor_shifted(&h, STEP_RIDGE_REL * trace / d as f64 + f64::MIN_POSITIVE) else {
            return Ok(Params(x));
        };
        let dir = chol.solve(&g);
        let slope = det::dot(&g, &dir);
        let mut best: Option<(f64, Vec<f64>)> = None;
        for j in 0..LINE_SEARCH_CANDIDATES {
            let t = 1.0 / (1u64 << j) as f64;
            count_flops(2 * d as u64);
            let cand: Vec<f64> = x.iter().zip(&dir).map(|(xi, di)| (-t).mul_add(*di, *xi)).collect();
            let Ok(e) = self.eval(&cand) else { continue };
            let armijo = e.value <= (-(ARMIJO_C1 * t)).mul_add(slope, ev.value);
            if armijo && best.as_ref().is_none_or(|(v, _)| e.value < *v) {
                best = Some((e.value, cand));
            }
        }
        Ok(Params(best.map_or(x, |(_, c)| c)))
    }

    fn certify(&self, x: &Params) -> Result<Certificate, ProblemError> {
        x.check(self.dim())?;
        let ev = self.eval(&x.0)?;
        let (g, _) = self.gradient(&ev);
        let grad_norm = det::nrm2(&g);
        let mut figures = vec![
            Figure { name: "loss_data".into(), value: ev.main.loss },
            Figure { name: "loss_reg".into(), value: ev.reg },
        ];
        if let (Some(c), Some(t)) = (&self.copyright, &ev.prot) {
            // ℓ₂ from the main term's residual on the unprotected rows.
            let c2: Vec<f64> = ev.main.c.iter().zip(&c.m2).map(|(a, b)| a * b).collect();
            let (l1, l2) = if c.spec.variant == CopyrightVariant::PerBlock {
                // ℓ₁ as the paper's criterion reads it: the protected rows of the global softmax.
                let c1: Vec<f64> = ev.main.c.iter().zip(&c.m1).map(|(a, b)| a * b).collect();
                (0.5 * det::dot(&c1, &c1), 0.5 * det::dot(&c2, &c2))
            } else {
                (t.loss, 0.5 * det::dot(&c2, &c2))
            };
            figures.push(Figure { name: "loss_protected".into(), value: l1 });
            figures.push(Figure { name: "loss_unprotected".into(), value: l2 });
            figures.push(Figure { name: "penalty".into(), value: c.spec.gamma / t.loss });
        }
        let cert = Certificate { score: ev.value, loss: ev.value, grad_norm, figures };
        cert.check_finite()?;
        Ok(cert)
    }

    fn cost(&self) -> u64 {
        self.step_flops().div_ceil(FLOPS_PER_WU).max(1)
    }

    fn predict(&self, x: &Params, input: &Mat) -> Result<Vec<f64>, ProblemError> {
        x.check(self.dim())?;
        if input.cols() != self.dim() {
            return Err(ProblemError::Dimension { what: "input columns", expected: self.dim(), got: input.cols() });
        }
        if input.rows() == 0 {
            return Err(ProblemError::InvalidSpec { what: "input", reason: "no rows".into() });
        }
        if let Some(i) = input.data().iter().position(|v| !v.is_finite()) {
            return Err(ProblemError::NonFinite { what: "input", index: i });
        }
        let mut z = vec![0.0; input.rows()];
        det::gemv(input.view(), &x.0, &mut z, false);
        let phi = nmr::eval_phi(self.phi, &z)?;
        let alpha = det::sum(&phi.u);
        if !(alpha > 0.0) || !alpha.is_finite() {
            return Err(ProblemError::AlphaNotPositive { alpha });
        }
        Ok(phi.u.iter().map(|u| u / alpha).collect())
    }

    /// Exact Newton with the Levenberg–Marquardt safeguard and Armijo backtracking
    /// (SOLVERS.md §0.5 items 1, 2, 4). Off-chain: iteration counts depend on the data.
    fn solve(&self, opts: &SolveOpts, observe: &mut dyn FnMut(&IterReport)) -> Result<(Params, SolveInfo), ProblemError> {
        let mut x = opts.x0.clone().unwrap_or_else(|| self.init());
        x.check(self.dim())?;
        let mut ev = self.eval(&x.0)?;
        let (mut g, mut g1) = self.gradient(&ev);
        let mut gnorm = det::nrm2(&g);
        let grad_norm0 = gnorm;
        let tol = opts.tol_grad * grad_norm0.max(1.0);
        let mut info = SolveInfo {
            iterations: 0,
            reason: StopReason::MaxIterations,
            converged: false,
            grad_norm0,
            max_mu: 0.0,
            history: Vec::new(),
        };
        for it in 1..=opts.max_iter {
            if gnorm <= tol {
                info.reason = StopReason::GradientTolerance;
                info.converged = true;
                break;
            }
            let h = self.hessian(&ev, g1.as_deref());
            let (chol, mu) = Cholesky::factor_lm(&h, 200)?;
            info.max_mu = info.max_mu.max(mu);
            let dir = chol.solve(&g);
            let decrement = det::dot(&g, &dir);
            let mut t = 1.0f64;
            let mut accepted = None;
            for _ in 0..=30 {
                let cand: Vec<f64> = x.0.iter().zip(&dir).map(|(xi, di)| (-t).mul_add(*di, *xi)).collect();
                if let Ok(e) = self.eval(&cand)
                    && e.value <= (-(ARMIJO_C1 * t)).mul_add(decrement, ev.value)
                {
                    accepted = Some((cand, e));
                    break;
                }
                t *= 0.5;
            }
            let Some((cand, e)) = accepted else {
                info.reason = StopReason::Stalled;
                break;
            };
            x = Params(cand);
            ev = e;
            (g, g1) = self.gradient(&ev);
            gnorm = det::nrm2(&g);
            info.iterations = it;
            let report = IterReport { iter: it, loss: ev.value, grad_norm: gnorm, step_len: t, mu };
            observe(&report);
            info.history.push(report);
            if gnorm <= tol {
                info.reason = StopReason::GradientTolerance;
                info.converged = true;
                break;
            }
            if decrement <= 2e-16 * ev.value.abs().max(1.0) {
                info.reason = StopReason::NewtonDecrement;
                info.converged = true;
                break;
            }
        }
        Ok((x, info))
    }
}

/// A seeded synthetic planted instance (SOLVERS.md §1.2 Task A, §3.3): rows of `A` iid
/// `N(0, scale²·I/d)`, `x* ~ N(0, I)`, `b = f(A x*)` for the kind's φ, so the data loss is
/// zero at `x*`. Drawn from stream `(tag 8, t = 0)` of `synthetic_seed(seed)`: `A`
/// row-major, then `x*`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Synthetic {
    /// Rows.
    pub n: usize,
    /// Columns (parameters).
    pub d: usize,
    /// User seed.
    pub seed: u64,
    /// Row scale `s_A` (default 0.5).
    pub scale: f64,
}

/// The 32-byte seed of synthetic dataset `seed`: `SHA-256("gradientcoin/synthetic/v1" ||
/// seed as u64 LE)`.
pub fn synthetic_seed(seed: u64) -> [u8; 32] {
    sha256_parts(&[b"gradientcoin/synthetic/v1", &seed.to_le_bytes()]).0
}

impl Synthetic {
    /// Generates `(A, b, x*)`.
    pub fn generate(&self, phi: Phi) -> Result<(Mat, Vec<f64>, Vec<f64>), ProblemError> {
        if self.n == 0 || self.d == 0 {
            return Err(ProblemError::InvalidSpec { what: "synthetic", reason: format!("n = {}, d = {} must be positive", self.n, self.d) });
        }
        if !(self.scale > 0.0) || !self.scale.is_finite() {
            return Err(ProblemError::InvalidSpec { what: "synthetic scale", reason: format!("{} is not positive", self.scale) });
        }
        let seed = synthetic_seed(self.seed);
        let mut rng = DetRng::stream(&seed, tags::SYNTHETIC, 0);
        let s = self.scale / math::sqrt(self.d as f64);
        let a = Mat::from_fn(self.n, self.d, |_, _| rng.normal() * s);
        let xs: Vec<f64> = (0..self.d).map(|_| rng.normal()).collect();
        let mut z = vec![0.0; self.n];
        det::gemv(a.view(), &xs, &mut z, false);
        let phi_vals = nmr::eval_phi(phi, &z)?;
        let alpha = det::sum(&phi_vals.u);
        if !(alpha > 0.0) {
            return Err(ProblemError::AlphaNotPositive { alpha });
        }
        let b = phi_vals.u.iter().map(|u| u / alpha).collect();
        Ok((a, b, xs))
    }

    /// `count` distinct rows chosen by a seeded Fisher–Yates shuffle (stream `(tag 8,
    /// t = 1)`), sorted: the protected set of a synthetic copyright task (SOLVERS.md §9.5).
    pub fn protected_rows(&self, count: usize) -> Vec<usize> {
        let seed = synthetic_seed(self.seed);
        let mut rng = DetRng::stream(&seed, tags::SYNTHETIC, 1);
        let mut idx: Vec<usize> = (0..self.n).collect();
        rng.shuffle(&mut idx);
        let mut rows: Vec<usize> = idx.into_iter().take(count.min(self.n)).collect();
        rows.sort_unstable();
        rows
    }
}

/// Default regulariser weights `w²ᵢ = λ/n²` (SOLVERS.md §1.3: losses are O(1/n²)).
pub fn uniform_reg(lambda: f64, n: usize) -> Vec<f64> {
    vec![lambda / (n as f64 * n as f64); n]
}

#[cfg(test)]
mod tests;
